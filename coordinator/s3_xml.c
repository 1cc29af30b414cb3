/*
 * The bounded XML extractor for S3 responses (see s3_xml.h). One scanner walks the fragment
 * once, checking it as it goes, and a query tells it what to pick up on the way: nothing (a
 * check only), the text of the first element at a path, or the span of every element at a path.
 * Memory is a fixed stack of S3_XML_MAX_DEPTH open elements and the caller's output buffer;
 * nothing is allocated, and every loop advances through the input, so time is linear in it.
 */
#include "coordinator/s3_xml.h"

#include <stdio.h>
#include <string.h>

enum xml_mode { XML_CHECK, XML_GET, XML_EACH };

typedef struct xml_query {
    enum xml_mode mode;
    const char *seg[S3_XML_MAX_DEPTH];
    size_t seglen[S3_XML_MAX_DEPTH];
    int nseg;
    /* XML_GET */
    char *out;
    size_t cap;
    size_t outlen;
    int capturing;
    int found;
    /* XML_EACH */
    s3_xml_each_fn cb;
    void *arg;
    size_t frag_start;
    int count;
} xml_query;

typedef struct xml_open {
    const char *name;
    size_t len;
    int match; /* this element and all its ancestors match the path so far */
} xml_open;

static int xml_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int xml_is_name_start(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c == ':';
}

static int xml_is_name_char(char c)
{
    return xml_is_name_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '.';
}

/* The characters XML 1.0 allows (production [2] of the specification). */
static int xml_char_ok(unsigned long cp)
{
    return cp == 0x9 || cp == 0xA || cp == 0xD || (cp >= 0x20 && cp <= 0xD7FF) ||
           (cp >= 0xE000 && cp <= 0xFFFD) || (cp >= 0x10000 && cp <= 0x10FFFF);
}

static int xml_bad(pgs_error *e, size_t at, const char *what)
{
    return pgs_fail(e, PGS_EFORMAT, "malformed XML at byte %zu: %s", at, what);
}

/* Finds needle (nlen bytes) in d[from, n); returns its offset or n. */
static size_t xml_find(const char *d, size_t n, size_t from, const char *needle, size_t nlen)
{
    for (size_t i = from; i + nlen <= n; i++)
        if (memcmp(d + i, needle, nlen) == 0)
            return i;
    return n;
}

/* Reads a name at d[*i]; sets *len and advances *i. */
static int xml_name(const char *d, size_t n, size_t *i, size_t *len, pgs_error *e)
{
    size_t start = *i;
    if (start >= n)
        return pgs_fail(e, PGS_ETRUNC, "XML ends inside a tag");
    if (!xml_is_name_start(d[start]))
        return xml_bad(e, start, "expected an element name");
    size_t j = start + 1;
    while (j < n && xml_is_name_char(d[j])) {
        if (j - start >= S3_XML_MAX_NAME)
            return pgs_fail(e, PGS_ELIMIT, "XML name at byte %zu is longer than %d bytes", start,
                            S3_XML_MAX_NAME);
        j++;
    }
    *len = j - start;
    *i = j;
    return 0;
}

static int xml_append(xml_query *q, const char *s, size_t k, pgs_error *e)
{
    if (q->outlen + k >= q->cap)
        return pgs_fail(e, PGS_ELIMIT, "XML element %.*s is longer than %zu bytes",
                        (int)q->seglen[q->nseg - 1], q->seg[q->nseg - 1],
                        q->cap > 0 ? q->cap - 1 : 0);
    memcpy(q->out + q->outlen, s, k);
    q->outlen += k;
    q->out[q->outlen] = '\0';
    return 0;
}

/* Decodes the entity or character reference at d[i] == '&', within the text that ends at d[to],
 * into UTF-8 (utf8, *k bytes); *used is its length in the input. */
static int xml_entity(const char *d, size_t n, size_t to, size_t i, char utf8[4], size_t *k,
                      size_t *used, pgs_error *e)
{
    size_t lim = to - i < 12 ? to - i : 12;
    size_t semi = 1;
    while (semi < lim && d[i + semi] != ';')
        semi++;
    if (semi >= lim)
        return i + semi == n ? pgs_fail(e, PGS_ETRUNC, "XML ends inside an entity")
                             : xml_bad(e, i, "unterminated or overlong entity");
    const char *name = d + i + 1;
    size_t nl = semi - 1;
    unsigned long cp = 0;
    static const struct {
        const char *name;
        char ch;
    } named[] = {{"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}};
    int ok = 0;
    for (size_t j = 0; j < sizeof(named) / sizeof(named[0]); j++)
        if (nl == strlen(named[j].name) && memcmp(name, named[j].name, nl) == 0) {
            cp = (unsigned char)named[j].ch;
            ok = 1;
        }
    if (!ok && nl >= 2 && name[0] == '#') {
        int hex = name[1] == 'x';
        size_t j = hex ? 2 : 1;
        if (j == nl)
            return xml_bad(e, i, "empty character reference");
        for (; j < nl; j++) {
            char c = name[j];
            int v = (c >= '0' && c <= '9')        ? c - '0'
                    : hex && c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : hex && c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                  : -1;
            if (v < 0)
                return xml_bad(e, i, "bad digit in a character reference");
            cp = cp * (hex ? 16 : 10) + (unsigned long)v;
            if (cp > 0x10FFFF)
                return xml_bad(e, i, "character reference out of range");
        }
        ok = 1;
    }
    if (!ok)
        return xml_bad(e, i, "unknown entity (only the five predefined ones are decoded)");
    if (!xml_char_ok(cp))
        return xml_bad(e, i, "character reference to a character XML does not allow");
    if (cp < 0x80) {
        utf8[0] = (char)cp;
        *k = 1;
    } else if (cp < 0x800) {
        utf8[0] = (char)(0xC0 | (cp >> 6));
        utf8[1] = (char)(0x80 | (cp & 0x3F));
        *k = 2;
    } else if (cp < 0x10000) {
        utf8[0] = (char)(0xE0 | (cp >> 12));
        utf8[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        utf8[2] = (char)(0x80 | (cp & 0x3F));
        *k = 3;
    } else {
        utf8[0] = (char)(0xF0 | (cp >> 18));
        utf8[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        utf8[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        utf8[3] = (char)(0x80 | (cp & 0x3F));
        *k = 4;
    }
    *used = semi + 1;
    return 0;
}

/* Checks the text d[from, to) (between two tags) and, when capturing, decodes it into out. */
static int xml_text(const char *d, size_t n, size_t from, size_t to, int depth, xml_query *q,
                    pgs_error *e)
{
    int rc;
    size_t i = from;
    while (i < to) {
        unsigned char c = (unsigned char)d[i];
        if (depth == 0 && !xml_is_space((char)c))
            return xml_bad(e, i, "text outside any element");
        if (c < 0x20 && c != '\t' && c != '\n' && c != '\r')
            return xml_bad(e, i, "control character");
        if (c == '&') {
            char u[4];
            size_t k = 0, used = 0;
            if ((rc = xml_entity(d, n, to, i, u, &k, &used, e)) != 0)
                return rc;
            if (q->capturing && (rc = xml_append(q, u, k, e)) != 0)
                return rc;
            i += used;
            continue;
        }
        /* A run of plain bytes up to the next '&' or control character. */
        size_t j = i + 1;
        while (j < to && d[j] != '&' && (unsigned char)d[j] >= 0x20)
            j++;
        if (depth == 0) {
            i++;
            continue;
        }
        if (q->capturing && (rc = xml_append(q, d + i, j - i, e)) != 0)
            return rc;
        i = j;
    }
    return 0;
}

/* Skips the attributes of a start tag from d[*i] to its '>'; *self_close is set for "/>". */
static int xml_attrs(const char *d, size_t n, size_t *i, int *self_close, pgs_error *e)
{
    size_t j = *i;
    for (;;) {
        int had_space = 0;
        while (j < n && xml_is_space(d[j])) {
            j++;
            had_space = 1;
        }
        if (j >= n)
            return pgs_fail(e, PGS_ETRUNC, "XML ends inside a tag");
        if (d[j] == '>') {
            *self_close = 0;
            *i = j + 1;
            return 0;
        }
        if (d[j] == '/') {
            if (j + 1 >= n)
                return pgs_fail(e, PGS_ETRUNC, "XML ends inside a tag");
            if (d[j + 1] != '>')
                return xml_bad(e, j, "'/' not followed by '>'");
            *self_close = 1;
            *i = j + 2;
            return 0;
        }
        if (!had_space)
            return xml_bad(e, j, "attribute not separated by white space");
        size_t nl = 0;
        int rc = xml_name(d, n, &j, &nl, e);
        if (rc != 0)
            return rc;
        while (j < n && xml_is_space(d[j]))
            j++;
        if (j >= n)
            return pgs_fail(e, PGS_ETRUNC, "XML ends inside a tag");
        if (d[j] != '=')
            return xml_bad(e, j, "attribute without '='");
        j++;
        while (j < n && xml_is_space(d[j]))
            j++;
        if (j >= n)
            return pgs_fail(e, PGS_ETRUNC, "XML ends inside a tag");
        char quote = d[j];
        if (quote != '"' && quote != '\'')
            return xml_bad(e, j, "attribute value without quotes");
        j++;
        while (j < n && d[j] != quote) {
            if (d[j] == '<' || d[j] == '\0')
                return xml_bad(e, j, "'<' or NUL in an attribute value");
            j++;
        }
        if (j >= n)
            return pgs_fail(e, PGS_ETRUNC, "XML ends inside an attribute value");
        j++;
    }
}

/* Whether the element just opened (name, at depth) continues a matching path. */
static int xml_matches(const xml_query *q, const xml_open *st, int depth, const char *name,
                       size_t len)
{
    if (depth >= q->nseg || (depth > 0 && !st[depth - 1].match))
        return 0;
    return len == q->seglen[depth] && memcmp(name, q->seg[depth], len) == 0;
}

static int xml_scan(const char *d, size_t n, xml_query *q, pgs_error *e)
{
    xml_open st[S3_XML_MAX_DEPTH];
    int depth = 0;
    size_t i = 0;
    int rc;

    if (n > S3_XML_MAX_DOC)
        return pgs_fail(e, PGS_ELIMIT, "XML document of %zu bytes is over the limit of %u", n,
                        S3_XML_MAX_DOC);
    if (memchr(d, '\0', n) != NULL)
        return xml_bad(e, (size_t)((const char *)memchr(d, '\0', n) - d), "NUL byte");
    while (i < n) {
        if (d[i] != '<') {
            size_t j = i;
            while (j < n && d[j] != '<')
                j++;
            if ((rc = xml_text(d, n, i, j, depth, q, e)) != 0)
                return rc;
            i = j;
            continue;
        }
        if (i + 1 >= n)
            return pgs_fail(e, PGS_ETRUNC, "XML ends inside a tag");
        if (d[i + 1] == '?') {
            size_t end = xml_find(d, n, i + 2, "?>", 2);
            if (end == n)
                return pgs_fail(e, PGS_ETRUNC, "XML ends inside a processing instruction");
            i = end + 2;
            continue;
        }
        if (d[i + 1] == '!') {
            if (n - i >= 4 && memcmp(d + i, "<!--", 4) == 0) {
                size_t end = xml_find(d, n, i + 4, "-->", 3);
                if (end == n)
                    return pgs_fail(e, PGS_ETRUNC, "XML ends inside a comment");
                i = end + 3;
                continue;
            }
            return xml_bad(e, i, "DOCTYPE, CDATA and declarations are not accepted");
        }
        if (d[i + 1] == '/') {
            size_t j = i + 2, nl = 0;
            if ((rc = xml_name(d, n, &j, &nl, e)) != 0)
                return rc;
            while (j < n && xml_is_space(d[j]))
                j++;
            if (j >= n)
                return pgs_fail(e, PGS_ETRUNC, "XML ends inside an end tag");
            if (d[j] != '>')
                return xml_bad(e, j, "junk in an end tag");
            if (depth == 0)
                return xml_bad(e, i, "end tag without a start tag");
            xml_open *top = &st[depth - 1];
            if (top->len != nl || memcmp(top->name, d + i + 2, nl) != 0)
                return xml_bad(e, i, "end tag does not match the open element");
            depth--;
            if (top->match && depth == q->nseg - 1) {
                if (q->mode == XML_GET && q->capturing) {
                    q->capturing = 0;
                    q->found = 1;
                } else if (q->mode == XML_EACH) {
                    q->count++;
                    if ((rc = q->cb(q->arg, d + q->frag_start, i - q->frag_start)) != 0)
                        return rc;
                }
            }
            i = j + 1;
            continue;
        }
        /* A start tag. */
        size_t j = i + 1, nl = 0;
        int self_close = 0;
        if ((rc = xml_name(d, n, &j, &nl, e)) != 0)
            return rc;
        const char *name = d + i + 1;
        if ((rc = xml_attrs(d, n, &j, &self_close, e)) != 0)
            return rc;
        if (q->capturing)
            return pgs_fail(e, PGS_EFORMAT, "XML element %.*s holds child elements",
                            (int)q->seglen[q->nseg - 1], q->seg[q->nseg - 1]);
        int match = xml_matches(q, st, depth, name, nl);
        if (match && depth == q->nseg - 1) {
            if (q->mode == XML_GET && !q->found) {
                q->outlen = 0;
                q->out[0] = '\0';
                if (self_close)
                    q->found = 1;
                else
                    q->capturing = 1;
            } else if (q->mode == XML_EACH) {
                if (self_close) {
                    q->count++;
                    if ((rc = q->cb(q->arg, d + j, 0)) != 0)
                        return rc;
                } else {
                    q->frag_start = j;
                }
            }
        }
        if (!self_close) {
            if (depth >= S3_XML_MAX_DEPTH)
                return pgs_fail(e, PGS_ELIMIT, "XML nests deeper than %d elements at byte %zu",
                                S3_XML_MAX_DEPTH, i);
            st[depth].name = name;
            st[depth].len = nl;
            st[depth].match = match;
            depth++;
        }
        i = j;
    }
    if (depth > 0)
        return pgs_fail(e, PGS_ETRUNC, "XML ends inside element %.*s", (int)st[depth - 1].len,
                        st[depth - 1].name);
    return 0;
}

static int xml_path(xml_query *q, const char *path, pgs_error *e)
{
    const char *p = path;
    q->nseg = 0;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (len == 0 || len > S3_XML_MAX_NAME || q->nseg >= S3_XML_MAX_DEPTH)
            return pgs_fail(e, PGS_EINVAL, "bad XML path \"%s\"", path);
        q->seg[q->nseg] = p;
        q->seglen[q->nseg] = len;
        q->nseg++;
        if (slash == NULL)
            return 0;
        p = slash + 1;
    }
}

int s3_xml_get(const char *doc, size_t len, const char *path, char *out, size_t cap, pgs_error *e)
{
    xml_query q;
    memset(&q, 0, sizeof(q));
    if (cap == 0)
        return pgs_fail(e, PGS_EINVAL, "no room for an XML value");
    out[0] = '\0';
    int rc = xml_path(&q, path, e);
    if (rc != 0)
        return rc;
    q.mode = XML_GET;
    q.out = out;
    q.cap = cap;
    rc = xml_scan(doc, len, &q, e);
    if (rc != 0) {
        out[0] = '\0';
        return rc;
    }
    if (!q.found)
        out[0] = '\0';
    return q.found;
}

int s3_xml_get_u64(const char *doc, size_t len, const char *path, uint64_t *out, pgs_error *e)
{
    char buf[32];
    int rc = s3_xml_get(doc, len, path, buf, sizeof(buf), e);
    if (rc <= 0)
        return rc;
    uint64_t v = 0;
    size_t i = 0;
    if (buf[0] == '\0')
        return pgs_fail(e, PGS_EFORMAT, "XML element %s is empty, expected a number", path);
    for (; buf[i] != '\0'; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            return pgs_fail(e, PGS_EFORMAT, "XML element %s is not a decimal number", path);
        unsigned d = (unsigned)(buf[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return pgs_fail(e, PGS_ELIMIT, "XML element %s is out of range", path);
        v = v * 10 + d;
    }
    *out = v;
    return 1;
}

int s3_xml_each(const char *doc, size_t len, const char *path, s3_xml_each_fn cb, void *arg,
                pgs_error *e)
{
    xml_query check, q;
    memset(&check, 0, sizeof(check));
    memset(&q, 0, sizeof(q));
    int rc = xml_path(&q, path, e);
    if (rc != 0)
        return rc;
    /* Check the whole fragment first, so that the callback never sees part of a bad one. */
    check.mode = XML_CHECK;
    if ((rc = xml_scan(doc, len, &check, e)) != 0)
        return rc;
    q.mode = XML_EACH;
    q.cb = cb;
    q.arg = arg;
    if ((rc = xml_scan(doc, len, &q, e)) != 0)
        return rc;
    return q.count;
}

int s3_xml_escape(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    if (cap == 0)
        return PGS_ELIMIT;
    for (const unsigned char *p = (const unsigned char *)in; *p != '\0'; p++) {
        const char *rep = NULL;
        char one[2] = {(char)*p, '\0'};
        switch (*p) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&apos;";
            break;
        default:
            if (*p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r') {
                out[0] = '\0';
                return PGS_EINVAL;
            }
            rep = one;
        }
        size_t k = strlen(rep);
        if (o + k >= cap) {
            out[0] = '\0';
            return PGS_ELIMIT;
        }
        memcpy(out + o, rep, k);
        o += k;
    }
    out[o] = '\0';
    return 0;
}
