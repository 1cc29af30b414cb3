/*
 * libFuzzer target: the status page (coordinator/status.c) over any JSON, and the Authorization
 * header reader over any bytes. The page must always render, and be well-formed in a way that
 * proves no input escaped into markup: a small lexer walks the output and requires that
 *   - outside tags, '>' '"' '\'' never appear and '&' starts one of the five references the
 *     renderer writes;
 *   - every tag is one the renderer writes (by name), with attributes of the form a="v" only;
 *   - tags nest: every element but the void ones is closed, in order;
 *   - the text is valid UTF-8 without control characters other than '\n'.
 * An input character that slipped through unescaped breaks one of these at once.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "coordinator/status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const tags[] = {
    "html",  "head",  "meta", "link", "title", "style",  "body",    "header",
    "h1",    "h2",    "h3",   "p",    "time",  "span",   "section", "table",
    "thead", "tbody", "tr",   "th",   "td",    "footer", NULL,
};

static int is_void(const char *name, size_t n)
{
    return (n == 4 && memcmp(name, "meta", 4) == 0) || (n == 4 && memcmp(name, "link", 4) == 0);
}

static int known_tag(const char *name, size_t n)
{
    for (size_t i = 0; tags[i] != NULL; i++)
        if (strlen(tags[i]) == n && memcmp(tags[i], name, n) == 0)
            return 1;
    return 0;
}

static int valid_utf8(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t len = c < 0x80             ? 1
                     : (c & 0xe0) == 0xc0 ? 2
                     : (c & 0xf0) == 0xe0 ? 3
                     : (c & 0xf8) == 0xf0 ? 4
                                          : 0;
        if (len == 0 || i + len > n)
            return 0;
        if (c < 0x80 && c < 0x20 && c != '\n')
            return 0;
        for (size_t k = 1; k < len; k++)
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
        i += len;
    }
    return 1;
}

/* Attributes: ( ' ' name '="' value '"' )* with name [a-z-]+ and a value without < > & ' ". */
static int attrs_ok(const char *p, const char *end)
{
    while (p < end) {
        if (*p++ != ' ')
            return 0;
        const char *name = p;
        while (p < end && ((*p >= 'a' && *p <= 'z') || *p == '-'))
            p++;
        if (p == name || end - p < 2 || p[0] != '=' || p[1] != '"')
            return 0;
        p += 2;
        while (p < end && *p != '"') {
            if (strchr("<>&'", *p) != NULL)
                return 0;
            p++;
        }
        if (p == end)
            return 0;
        p++;
    }
    return 1;
}

static void check_page(const char *html, size_t len)
{
    static const char *const refs[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&#39;", NULL};
    const char *stack[64];
    size_t stack_n[64];
    size_t depth = 0;
    if (strlen(html) != len || !valid_utf8((const unsigned char *)html, len))
        abort();
    const char *doctype = "<!DOCTYPE html>\n";
    if (strncmp(html, doctype, strlen(doctype)) != 0)
        abort();
    for (const char *p = html + strlen(doctype); *p != '\0';) {
        if (*p == '<') {
            const char *end = strchr(p, '>');
            if (end == NULL)
                abort();
            int closing = p[1] == '/';
            const char *name = p + 1 + closing;
            size_t n = 0;
            while (name + n < end &&
                   ((name[n] >= 'a' && name[n] <= 'z') || (name[n] >= '1' && name[n] <= '3')))
                n++;
            if (!known_tag(name, n) || (closing && name + n != end) ||
                (!closing && !attrs_ok(name + n, end)))
                abort();
            if (closing) {
                if (depth == 0 || stack_n[depth - 1] != n || memcmp(stack[depth - 1], name, n) != 0)
                    abort();
                depth--;
            } else if (!is_void(name, n)) {
                if (depth == sizeof(stack) / sizeof(stack[0]))
                    abort();
                stack[depth] = name;
                stack_n[depth++] = n;
            }
            p = end + 1;
            continue;
        }
        if (*p == '>' || *p == '"' || *p == '\'')
            abort();
        if (*p == '&') {
            size_t i = 0;
            while (refs[i] != NULL && strncmp(p, refs[i], strlen(refs[i])) != 0)
                i++;
            if (refs[i] == NULL)
                abort();
            p += strlen(refs[i]);
            continue;
        }
        p++;
    }
    if (depth != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* As a header: a NUL-terminated copy (nng hands the API C strings). */
    char *h = malloc(size + 1);
    if (h == NULL)
        return 0;
    memcpy(h, data, size);
    h[size] = '\0';
    char tok[128];
    size_t n = 0;
    int scheme = status_auth_token(h, tok, sizeof(tok), &n);
    if (scheme != STATUS_AUTH_NONE && (n == 0 || n >= sizeof(tok) || strlen(tok) != n))
        abort();
    if (scheme == STATUS_AUTH_NONE && (n != 0 || tok[0] != '\0'))
        abort();
    free(h);

    /* As the page's input. */
    json_t *in = json_loadb((const char *)data, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    if (in == NULL)
        return 0;
    char *html = NULL;
    size_t len = 0;
    pgs_error e = {0};
    if (status_render(in, 1795262400000, &html, &len, &e) == 0) {
        check_page(html, len);
        free(html);
    } else if (html != NULL) {
        abort();
    }
    json_decref(in);
    return 0;
}
