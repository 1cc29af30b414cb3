/*
 * The strict INI layer (see ini.h). inih splits lines into "key = value"; everything that decides
 * what a line means to pgship is here, because inih r55 is lenient in ways a daemon's
 * configuration must not be:
 *
 * - It truncates section names to 49 bytes without a word, so `[agent <a 63-byte name>]` would
 *   silently become another name, and it does not tell its handler about a section without keys.
 *   Our line reader (ini_line_reader below) therefore sees every line before inih does, and
 *   opens the section itself when a line is a header. inih's section argument is ignored.
 * - Lines that start with whitespace continue the previous value, ';' after whitespace starts an
 *   inline comment, "key: value" is a pair, and a line longer than its buffer is cut and the rest
 *   parsed as a new line. The Debian build of r55 makes these run-time options (ini_allow_*
 *   globals); we turn them off before each parse, refuse over-long lines before inih sees them, and
 *   check that each value inih hands over is exactly the text after the line's first '=', so a
 *   differently built inih cannot misread a file silently.
 * - It reports only the number of the first bad line. We count lines ourselves (the reader hands
 *   inih one line per call) and stop at our first error with a message that names the line.
 *   (Debian's build also passes the line number to handlers, INI_HANDLER_LINENO; we do not rely
 *   on it.)
 */
#include "common/ini.h"
#include "common/keys.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsutil.h"

/* Debian's libinih is built with INI_HANDLER_LINENO (its handlers get the line number as a fifth
 * argument); the handler's type must match the library's. We use our own count anyway. */
#define INI_HANDLER_LINENO 1
#include <ini.h>

#define FIELD(inst, off, type) ((type *)(void *)((char *)(inst) + (off)))
#define CFIELD(inst, off, type) ((const type *)(const void *)((const char *)(inst) + (off)))

/* inih's options are process-wide globals: one parse at a time. */
static pthread_mutex_t ini_lock = PTHREAD_MUTEX_INITIALIZER;

struct ini_ctx {
    const char *file;
    const char *text;
    size_t len;
    size_t pos;
    int lineno;
    const char *raw; /* the current line in text, without its line end */
    size_t raw_len;
    const ini_section *specs;
    size_t nspecs;
    ini_target *targets;
    size_t *caps;     /* allocated instances of each named spec */
    size_t cur_spec;  /* SIZE_MAX: no section yet */
    size_t cur_index; /* instance of a named spec */
    size_t nnamed;
    pgs_error *e;
    int rc; /* first error (then e is filled) */
};

int ini_fail_at(pgs_error *e, int code, const char *file, int line, const char *fmt, ...)
{
    char msg[sizeof(e->msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (line > 0)
        return pgs_fail(e, code, "%s:%d: %s", file, line, msg);
    return pgs_fail(e, code, "%s: %s", file, msg);
}

_Static_assert(INI_NAME_MAX == KEY_NAME_MAX, "section names follow the key name rule");

int ini_name_valid(const char *name)
{
    return key_name_valid(name);
}

/* The whitespace inih strips (isspace in the C locale); \v, \f and lone \r never get this far. */
static int ini_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

const ini_key *ini_find_key(const ini_section *spec, const char *key)
{
    for (size_t i = 0; i < spec->nkeys; i++)
        if (strcmp(spec->keys[i].name, key) == 0)
            return &spec->keys[i];
    return NULL;
}

static const ini_src *ini_src_of(const ini_section *spec, const void *inst)
{
    return CFIELD(inst, spec->src_offset, ini_src);
}

int ini_key_line(const ini_section *spec, const void *inst, const char *key)
{
    const ini_key *k = ini_find_key(spec, key);
    const ini_src *src = ini_src_of(spec, inst);
    if (k != NULL && src->key_line[k - spec->keys] > 0)
        return src->key_line[k - spec->keys];
    return src->line;
}

int ini_key_set(const ini_section *spec, const void *inst, const char *key)
{
    const ini_key *k = ini_find_key(spec, key);
    return k != NULL && ini_src_of(spec, inst)->key_line[k - spec->keys] > 0;
}

const char *ini_section_label(const ini_section *spec, const void *inst, char *buf, size_t len)
{
    if (spec->named) {
        const char *name = *CFIELD(inst, spec->name_offset, char *);
        snprintf(buf, len, "[%s %s]", spec->name, name ? name : "?");
    } else {
        snprintf(buf, len, "[%s]", spec->name);
    }
    return buf;
}

/* ---- URLs ---- */

static int ini_host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
}

static const char *const ini_all_schemes[] = {"tls+tcp", "tcp", "ipc", "http", "https", NULL};

int ini_url_parse(const char *url, const char *const *schemes, ini_url *out, pgs_error *e)
{
    memset(out, 0, sizeof(*out));
    if (schemes == NULL)
        schemes = ini_all_schemes;
    const char *sep = strstr(url, "://");
    size_t slen = sep ? (size_t)(sep - url) : 0;
    int known = 0;
    for (size_t i = 0; sep != NULL && schemes[i] != NULL; i++)
        if (strlen(schemes[i]) == slen && strncmp(url, schemes[i], slen) == 0)
            known = 1;
    if (!known) {
        char list[128] = "";
        for (size_t i = 0; schemes[i] != NULL; i++) {
            strncat(list, i ? ", " : "", sizeof(list) - strlen(list) - 1);
            strncat(list, schemes[i], sizeof(list) - strlen(list) - 1);
            strncat(list, "://", sizeof(list) - strlen(list) - 1);
        }
        if (sep == NULL)
            return pgs_fail(e, PGS_EINVAL, "not a URL (expected one of %s)", list);
        return pgs_fail(e, PGS_EINVAL, "scheme \"%.*s\" is not allowed here (expected one of %s)",
                        (int)(slen > 16 ? 16 : slen), url, list);
    }
    memcpy(out->scheme, url, slen);
    const char *rest = sep + 3;

    if (strcmp(out->scheme, "ipc") == 0) {
        if (rest[0] != '/' || rest[1] == '\0')
            return pgs_fail(e, PGS_EINVAL, "ipc URL needs an absolute socket path (ipc:///path)");
        out->path = rest;
        return 0;
    }

    const char *p = rest;
    size_t hlen = 0;
    if (*p == '[') {
        const char *close = strchr(p, ']');
        if (close == NULL)
            return pgs_fail(e, PGS_EINVAL, "IPv6 address without ']'");
        for (const char *q = p + 1; q < close; q++)
            if (!isxdigit((unsigned char)*q) && *q != ':' && *q != '.')
                return pgs_fail(e, PGS_EINVAL, "bad character in IPv6 address");
        hlen = (size_t)(close - p - 1);
        if (hlen == 0 || hlen >= sizeof(out->host))
            return pgs_fail(e, PGS_EINVAL, "bad IPv6 address");
        memcpy(out->host, p + 1, hlen);
        p = close + 1;
    } else {
        while (ini_host_char(p[hlen]))
            hlen++;
        if (hlen == 0)
            return pgs_fail(e, PGS_EINVAL, "URL has no host");
        if (hlen >= sizeof(out->host))
            return pgs_fail(e, PGS_EINVAL, "host name is too long");
        memcpy(out->host, p, hlen);
        p += hlen;
    }
    if (*p == ':') {
        p++;
        unsigned long port = 0;
        size_t nd = 0;
        while (p[nd] >= '0' && p[nd] <= '9' && nd < 6)
            port = port * 10 + (unsigned long)(p[nd++] - '0');
        if (nd == 0 || port == 0 || port > 65535)
            return pgs_fail(e, PGS_EINVAL, "port must be a number from 1 to 65535");
        out->port = (unsigned)port;
        p += nd;
    }
    int web = strcmp(out->scheme, "http") == 0 || strcmp(out->scheme, "https") == 0;
    if (*p == '@')
        return pgs_fail(e, PGS_EINVAL, "user names and passwords do not belong in URLs");
    if (web && p[0] == '/' && p[1] == '\0')
        p++; /* "https://host/" is the same as "https://host" */
    if (*p != '\0')
        return pgs_fail(e, PGS_EINVAL, "unexpected \"%.32s\" after the host%s", p,
                        out->port ? " and port" : "");
    if (!web && out->port == 0)
        return pgs_fail(e, PGS_EINVAL, "%s URL needs a port (%s://host:port)", out->scheme,
                        out->scheme);
    return 0;
}

/* ---- values ---- */

static int ini_parse_u64(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

static const struct {
    const char *unit;
    unsigned shift;
} ini_units[] = {
    {"", 0},     {"B", 0},  {"K", 10},   {"KiB", 10}, {"M", 20},
    {"MiB", 20}, {"G", 30}, {"GiB", 30}, {"T", 40},   {"TiB", 40},
};

static int ini_parse_size(const char *s, uint64_t *out)
{
    size_t nd = 0;
    while (s[nd] >= '0' && s[nd] <= '9')
        nd++;
    uint64_t v;
    if (ini_parse_u64(s, nd, &v) != 0)
        return -1;
    const char *u = s + nd;
    while (*u == ' ' || *u == '\t')
        u++;
    for (size_t i = 0; i < sizeof(ini_units) / sizeof(ini_units[0]); i++) {
        if (strcmp(u, ini_units[i].unit) != 0)
            continue;
        if (v > (UINT64_MAX >> ini_units[i].shift))
            return -1;
        *out = v << ini_units[i].shift;
        return 0;
    }
    return -1;
}

static const char *const ini_true[] = {"true", "yes", "on", "1", NULL};
static const char *const ini_false[] = {"false", "no", "off", "0", NULL};

static int ini_path_check(const char *p, size_t n, pgs_error *e)
{
    if (n == 0)
        return pgs_fail(e, PGS_EINVAL, "empty path");
    if (p[0] != '/')
        return pgs_fail(e, PGS_EINVAL, "\"%.*s\" is not an absolute path", (int)(n > 64 ? 64 : n),
                        p);
    if (n >= 4096)
        return pgs_fail(e, PGS_ELIMIT, "path is longer than 4095 bytes");
    return 0;
}

static void ini_list_free(ini_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

static int ini_set_paths(const char *value, ini_list *out, pgs_error *e)
{
    ini_list l = {0};
    int rc = 0;
    l.items = calloc(INI_LIST_MAX, sizeof(char *));
    if (l.items == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    const char *p = value;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        const char *s = p;
        while (n > 0 && ini_space(*s))
            s++, n--;
        while (n > 0 && ini_space(s[n - 1]))
            n--;
        if (n == 0) {
            rc = pgs_fail(e, PGS_EINVAL, "empty item in the list (items are separated by commas)");
            goto out;
        }
        if (l.n == INI_LIST_MAX) {
            rc = pgs_fail(e, PGS_ELIMIT, "more than %d items in the list", INI_LIST_MAX);
            goto out;
        }
        if ((rc = ini_path_check(s, n, e)) != 0)
            goto out;
        if ((l.items[l.n] = strndup(s, n)) == NULL) {
            rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
            goto out;
        }
        l.n++;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    *out = l;
    l.items = NULL;
    l.n = 0;
out:
    ini_list_free(&l);
    return rc;
}

static int ini_is_text_type(enum ini_type t)
{
    return t == INI_STRING || t == INI_PATH || t == INI_URL;
}

/*
 * Parses value for key k into its field of inst. The message says only what is wrong with the
 * value; the caller adds file, line, section and key. Secret values are never echoed.
 */
static int ini_value_set(const ini_key *k, void *inst, const char *value, pgs_error *e)
{
    size_t n = strlen(value);
    int vn = n > 64 ? 64 : (int)n;
    if (n > INI_VALUE_MAX)
        return pgs_fail(e, PGS_ELIMIT, "value is longer than %d bytes", INI_VALUE_MAX);
    if (n == 0)
        return pgs_fail(e, PGS_EINVAL, "empty value (leave the key out to use its default)");

    switch (k->type) {
    case INI_STRING:
    case INI_PATH:
    case INI_URL: {
        if (k->type == INI_PATH && ini_path_check(value, n, e) != 0)
            return e->code;
        if (k->type == INI_URL && !((k->flags & INI_OFF) && strcmp(value, "off") == 0)) {
            ini_url u;
            if (ini_url_parse(value, k->choices, &u, e) != 0)
                return e->code;
        }
        char *s = strdup(value);
        if (s == NULL)
            return pgs_fail(e, PGS_ENOMEM, "out of memory");
        *FIELD(inst, k->offset, char *) = s;
        return 0;
    }
    case INI_PATHS:
        return ini_set_paths(value, FIELD(inst, k->offset, ini_list), e);
    case INI_BOOL:
        for (size_t i = 0; ini_true[i] != NULL; i++) {
            if (strcasecmp(value, ini_true[i]) == 0) {
                *FIELD(inst, k->offset, int) = 1;
                return 0;
            }
            if (strcasecmp(value, ini_false[i]) == 0) {
                *FIELD(inst, k->offset, int) = 0;
                return 0;
            }
        }
        return pgs_fail(e, PGS_EINVAL, "\"%.*s\" is not a boolean (use true or false)", vn, value);
    case INI_UINT:
    case INI_SIZE: {
        uint64_t v = 0;
        int bad = k->type == INI_UINT ? ini_parse_u64(value, n, &v) : ini_parse_size(value, &v);
        if (bad != 0 && k->type == INI_UINT)
            return pgs_fail(e, PGS_EINVAL, "\"%.*s\" is not a whole number", vn, value);
        if (bad != 0)
            return pgs_fail(e, PGS_EINVAL,
                            "\"%.*s\" is not a size (a whole number with an optional unit: B, "
                            "K, M, G, T or KiB, MiB, GiB, TiB)",
                            vn, value);
        if (v < k->min || v > k->max)
            return pgs_fail(e, PGS_EINVAL,
                            "%" PRIu64 " is out of range (%" PRIu64 "..%" PRIu64 "%s)", v, k->min,
                            k->max, k->type == INI_SIZE ? " bytes" : "");
        *FIELD(inst, k->offset, uint64_t) = v;
        return 0;
    }
    case INI_ENUM: {
        char list[256] = "";
        for (size_t i = 0; k->choices[i] != NULL; i++) {
            if (strcmp(value, k->choices[i]) == 0) {
                *FIELD(inst, k->offset, int) = (int)i;
                return 0;
            }
            strncat(list, i ? ", " : "", sizeof(list) - strlen(list) - 1);
            strncat(list, k->choices[i], sizeof(list) - strlen(list) - 1);
        }
        return pgs_fail(e, PGS_EINVAL, "\"%.*s\" is not one of: %s", vn, value, list);
    }
    }
    return pgs_fail(e, PGS_EINVAL, "internal error: unknown key type");
}

/* ---- the parse ---- */

static void *ini_instance(const ini_section *spec, ini_target *t, size_t index)
{
    if (!spec->named)
        return t->one;
    return (char *)t->many + index * spec->size;
}

static void *ini_current(struct ini_ctx *c)
{
    return ini_instance(&c->specs[c->cur_spec], &c->targets[c->cur_spec], c->cur_index);
}

static int ini_ctx_fail(struct ini_ctx *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int ini_ctx_fail(struct ini_ctx *c, int code, const char *fmt, ...)
{
    char msg[sizeof(c->e->msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    c->rc = ini_fail_at(c->e, code, c->file, c->lineno, "%s", msg);
    return c->rc;
}

/* Opens the section named by a header line (s..s+n, trimmed, starting with '['). */
static int ini_open_section(struct ini_ctx *c, const char *s, size_t n)
{
    const char *close = memchr(s, ']', n);
    if (close == NULL)
        return ini_ctx_fail(c, PGS_EFORMAT, "section header without a closing ']'");
    if (close != s + n - 1)
        return ini_ctx_fail(c, PGS_EFORMAT,
                            "text after the ']' of a section header (comments go on their own "
                            "line)");
    const char *p = s + 1, *end = close;
    while (p < end && ini_space(*p))
        p++;
    while (end > p && ini_space(end[-1]))
        end--;
    const char *kind = p;
    while (p < end && !ini_space(*p))
        p++;
    size_t kind_len = (size_t)(p - kind);
    while (p < end && ini_space(*p))
        p++;
    const char *name = p;
    size_t name_len = (size_t)(end - p);
    if (kind_len == 0)
        return ini_ctx_fail(c, PGS_EFORMAT, "empty section header");
    if (memchr(name, ' ', name_len) != NULL || memchr(name, '\t', name_len) != NULL)
        return ini_ctx_fail(c, PGS_EFORMAT, "a section header holds a kind and at most one name");

    size_t si;
    for (si = 0; si < c->nspecs; si++)
        if (strlen(c->specs[si].name) == kind_len && memcmp(c->specs[si].name, kind, kind_len) == 0)
            break;
    if (si == c->nspecs) {
        char list[256] = "";
        for (size_t i = 0; i < c->nspecs; i++) {
            char one[96];
            snprintf(one, sizeof(one), "%s[%s%s]", i ? ", " : "", c->specs[i].name,
                     c->specs[i].named ? " NAME" : "");
            strncat(list, one, sizeof(list) - strlen(list) - 1);
        }
        return ini_ctx_fail(c, PGS_EINVAL, "unknown section [%.*s] (expected %s)",
                            (int)(kind_len > 64 ? 64 : kind_len), kind, list);
    }
    const ini_section *spec = &c->specs[si];
    ini_target *t = &c->targets[si];

    if (!spec->named) {
        if (name_len > 0)
            return ini_ctx_fail(c, PGS_EINVAL, "section [%s] takes no name", spec->name);
        ini_src *src = FIELD(t->one, spec->src_offset, ini_src);
        if (src->line > 0)
            return ini_ctx_fail(c, PGS_EINVAL,
                                "section [%s] appears twice (first on line %d); merge them",
                                spec->name, src->line);
        src->line = c->lineno;
        c->cur_spec = si;
        c->cur_index = 0;
        return 0;
    }

    if (name_len == 0)
        return ini_ctx_fail(c, PGS_EINVAL, "section [%s] needs a name: [%s NAME]", spec->name,
                            spec->name);
    char nm[INI_NAME_MAX + 1];
    if (name_len > INI_NAME_MAX)
        return ini_ctx_fail(c, PGS_EINVAL, "name of [%s ...] is longer than %d characters",
                            spec->name, INI_NAME_MAX);
    memcpy(nm, name, name_len);
    nm[name_len] = '\0';
    if (!ini_name_valid(nm))
        return ini_ctx_fail(c, PGS_EINVAL,
                            "section name \"%s\" is not valid: use 1-%d of A-Z a-z 0-9 . _ - "
                            "(not starting with . or -)",
                            nm, INI_NAME_MAX);
    for (size_t i = 0; i < t->count; i++) {
        const void *other = ini_instance(spec, t, i);
        const char *oname = *CFIELD(other, spec->name_offset, char *);
        if (strcasecmp(oname, nm) == 0)
            return ini_ctx_fail(c, PGS_EINVAL, "duplicate section [%s %s] (first on line %d%s)",
                                spec->name, nm, ini_src_of(spec, other)->line,
                                strcmp(oname, nm) != 0 ? ", names differing only in case are "
                                                         "the same name"
                                                       : "");
    }
    if (c->nnamed == INI_SECTIONS_MAX)
        return ini_ctx_fail(c, PGS_ELIMIT, "more than %d named sections", INI_SECTIONS_MAX);
    if (t->count == c->caps[si]) {
        size_t cap = c->caps[si] ? c->caps[si] * 2 : 4;
        void *p2 = realloc(t->many, cap * spec->size);
        if (p2 == NULL)
            return ini_ctx_fail(c, PGS_ENOMEM, "out of memory");
        t->many = p2;
        c->caps[si] = cap;
    }
    void *inst = ini_instance(spec, t, t->count);
    memset(inst, 0, spec->size);
    char *dup = strdup(nm);
    if (dup == NULL)
        return ini_ctx_fail(c, PGS_ENOMEM, "out of memory");
    *FIELD(inst, spec->name_offset, char *) = dup;
    FIELD(inst, spec->src_offset, ini_src)->line = c->lineno;
    c->cur_spec = si;
    c->cur_index = t->count++;
    c->nnamed++;
    return 0;
}

/* inih's reader: hands over one line per call, so c->lineno is the number of the line inih is
 * working on while it calls the handler. Section headers are ours (see the top of the file). */
static char *ini_line_reader(char *str, int num, void *stream)
{
    struct ini_ctx *c = stream;
    if (c->rc != 0 || c->pos >= c->len)
        return NULL;
    const char *p = c->text + c->pos;
    const char *nl = memchr(p, '\n', c->len - c->pos);
    size_t n = nl ? (size_t)(nl - p) + 1 : c->len - c->pos;
    c->lineno++;
    if (n + 1 > (size_t)num) {
        /* The prescan bounded lines to INI_LINE_MAX and inih's buffer is larger. */
        ini_ctx_fail(c, PGS_EINVAL, "internal error: line does not fit inih's buffer");
        return NULL;
    }
    memcpy(str, p, n);
    str[n] = '\0';
    c->pos += n;

    c->raw = p;
    c->raw_len = n;
    while (c->raw_len > 0 && (p[c->raw_len - 1] == '\n' || p[c->raw_len - 1] == '\r'))
        c->raw_len--;
    const char *s = p, *end = p + c->raw_len;
    while (s < end && ini_space(*s))
        s++;
    while (end > s && ini_space(end[-1]))
        end--;
    if (s < end && *s == '[' && ini_open_section(c, s, (size_t)(end - s)) != 0)
        return NULL;
    return str;
}

static int ini_pair_handler(void *user, const char *section, const char *name, const char *value,
                            int lineno)
{
    struct ini_ctx *c = user;
    (void)section; /* truncated by inih; ours is c->cur_spec */
    (void)lineno;
    if (c->rc != 0)
        return 0;
    if (value == NULL) {
        ini_ctx_fail(c, PGS_EFORMAT, "expected key = value");
        return 0;
    }

    /* The pair must be exactly what the line says: first '=' (not ':') splits it, both sides
     * trimmed, nothing removed from the value. */
    const char *eq = NULL;
    for (size_t i = 0; i < c->raw_len && eq == NULL; i++) {
        if (c->raw[i] == ':') {
            ini_ctx_fail(c, PGS_EFORMAT, "use '=' between key and value (not ':')");
            return 0;
        }
        if (c->raw[i] == '=')
            eq = c->raw + i;
    }
    const char *vs = eq ? eq + 1 : NULL, *ve = c->raw + c->raw_len;
    while (vs != NULL && vs < ve && ini_space(*vs))
        vs++;
    while (vs != NULL && ve > vs && ini_space(ve[-1]))
        ve--;
    if (vs == NULL || strlen(value) != (size_t)(ve - vs) || memcmp(value, vs, ve - vs) != 0) {
        ini_ctx_fail(c, PGS_EFORMAT,
                     "internal error: inih split this line differently (is it built with "
                     "inline comments or multi-line values?)");
        return 0;
    }

    if (c->cur_spec == SIZE_MAX) {
        ini_ctx_fail(c, PGS_EINVAL, "key \"%.64s\" before any [section]", name);
        return 0;
    }
    if (name[0] == '\0') {
        ini_ctx_fail(c, PGS_EFORMAT, "missing key name before '='");
        return 0;
    }
    const ini_section *spec = &c->specs[c->cur_spec];
    void *inst = ini_current(c);
    char label[INI_NAME_MAX + 80];
    ini_section_label(spec, inst, label, sizeof(label));
    const ini_key *k = ini_find_key(spec, name);
    if (k == NULL) {
        ini_ctx_fail(c, PGS_EINVAL, "unknown key \"%.64s\" in %s", name, label);
        return 0;
    }
    ini_src *src = FIELD(inst, spec->src_offset, ini_src);
    size_t ki = (size_t)(k - spec->keys);
    if (src->key_line[ki] > 0) {
        ini_ctx_fail(c, PGS_EINVAL, "duplicate key %s in %s (first set on line %d)", k->name, label,
                     src->key_line[ki]);
        return 0;
    }
    pgs_error ve_ = {0};
    if (ini_value_set(k, inst, value, &ve_) != 0) {
        ini_ctx_fail(c, ve_.code, "%s %s: %s", label, k->name, ve_.msg);
        return 0;
    }
    src->key_line[ki] = c->lineno;
    return 1;
}

/* Refuses what inih would accept with surprises: NUL bytes, control characters, a CR inside a
 * line, lines longer than INI_LINE_MAX. */
static int ini_prescan(const char *file, const char *text, size_t len, pgs_error *e)
{
    int line = 1;
    size_t line_start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || text[i] == '\n') {
            size_t n = i - line_start;
            if (n > 0 && text[i - 1] == '\r')
                n--;
            if (n > INI_LINE_MAX)
                return ini_fail_at(e, PGS_ELIMIT, file, line, "line is longer than %d bytes",
                                   INI_LINE_MAX);
            line++;
            line_start = i + 1;
            continue;
        }
        unsigned char ch = (unsigned char)text[i];
        if (ch == '\0')
            return ini_fail_at(e, PGS_EFORMAT, file, line, "NUL byte in the file");
        if (ch == '\r' && (i + 1 == len || text[i + 1] != '\n'))
            return ini_fail_at(e, PGS_EFORMAT, file, line,
                               "carriage return inside a line (only CRLF line ends are accepted)");
        if ((ch < 0x20 && ch != '\t' && ch != '\r') || ch == 0x7f)
            return ini_fail_at(e, PGS_EFORMAT, file, line, "control character 0x%02x", ch);
    }
    return 0;
}

/* Defaults, then required keys and sections, in spec order. */
static int ini_finish(const char *file, const ini_section *specs, size_t nspecs,
                      ini_target *targets, pgs_error *e)
{
    for (size_t si = 0; si < nspecs; si++) {
        const ini_section *spec = &specs[si];
        ini_target *t = &targets[si];
        size_t count = spec->named ? t->count : 1;
        if (!spec->named && spec->required && ini_src_of(spec, t->one)->line == 0)
            return ini_fail_at(e, PGS_EINVAL, file, 0, "missing section [%s]", spec->name);
        for (size_t ii = 0; ii < count; ii++) {
            void *inst = ini_instance(spec, t, ii);
            const ini_src *src = ini_src_of(spec, inst);
            char label[INI_NAME_MAX + 80];
            ini_section_label(spec, inst, label, sizeof(label));
            for (size_t ki = 0; ki < spec->nkeys; ki++) {
                const ini_key *k = &spec->keys[ki];
                if (src->key_line[ki] > 0)
                    continue;
                if (k->flags & INI_REQUIRED)
                    return ini_fail_at(e, PGS_EINVAL, file, src->line,
                                       "%s: missing required key %s", label, k->name);
                if (k->def == NULL)
                    continue;
                pgs_error de = {0};
                if (ini_value_set(k, inst, k->def, &de) != 0)
                    return pgs_fail(e, PGS_EINVAL, "internal error: default of %s %s: %s", label,
                                    k->name, de.msg);
            }
        }
    }
    return 0;
}

int ini_parse_buffer(const char *file, const char *text, size_t len, const ini_section *specs,
                     size_t nspecs, ini_target *targets, pgs_error *e)
{
    int rc = 0;
    struct ini_ctx c;
    memset(&c, 0, sizeof(c));
    for (size_t i = 0; i < nspecs; i++)
        if (specs[i].nkeys > INI_KEYS_MAX)
            return pgs_fail(e, PGS_EINVAL, "internal error: [%s] has too many keys", specs[i].name);
    if (len > INI_FILE_MAX)
        return ini_fail_at(e, PGS_ELIMIT, file, 0, "larger than %u bytes", INI_FILE_MAX);
    /* A UTF-8 byte order mark, as some editors write, is not part of the first line. */
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) {
        text += 3;
        len -= 3;
    }
    if ((rc = ini_prescan(file, text, len, e)) != 0)
        return rc;

    c.file = file;
    c.text = text;
    c.len = len;
    c.specs = specs;
    c.nspecs = nspecs;
    c.targets = targets;
    c.cur_spec = SIZE_MAX;
    c.e = e;
    c.caps = calloc(nspecs ? nspecs : 1, sizeof(size_t));
    if (c.caps == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");

    pthread_mutex_lock(&ini_lock);
    ini_allow_multiline = false;
    ini_allow_bom = false;
    ini_allow_inline_comments = false;
    ini_start_comment_prefixes = "#;";
    ini_allow_no_value = false;
    ini_stop_on_first_error = true;
    ini_use_stack = false;
    ini_allow_realloc = false;
    ini_initial_alloc = INI_LINE_MAX + 3; /* the line, "\r\n" and the NUL */
    ini_max_line = INI_LINE_MAX + 3;
    int bad_line = ini_parse_stream(ini_line_reader, &c, ini_pair_handler, &c);
    pthread_mutex_unlock(&ini_lock);
    free(c.caps);

    if (bad_line == -2)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    if (bad_line < 0)
        return pgs_fail(e, PGS_EIO, "%s: inih failed (%d)", file, bad_line);
    if (bad_line > 0 && (c.rc == 0 || bad_line < c.lineno))
        return ini_fail_at(e, PGS_EFORMAT, file, bad_line,
                           "expected \"key = value\", a [section] or a comment (lines do not "
                           "continue on the next one)");
    if (c.rc != 0)
        return c.rc;
    return ini_finish(file, specs, nspecs, targets, e);
}

/* Opens path for reading to prove it can be read; a secret file must be private to its owner. */
static int ini_check_one_file(const char *path, int private_file, pgs_error *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return pgs_fail(e, PGS_EIO, "%s: %s", path, strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0)
        rc = pgs_fail(e, PGS_EIO, "%s: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = pgs_fail(e, PGS_EINVAL, "%s: not a regular file", path);
    else if (private_file && (st.st_mode & 077) != 0)
        rc = pgs_fail(e, PGS_EINVAL,
                      "%s holds a secret but is accessible by group or others (mode %04o); "
                      "chmod 600 it",
                      path, (unsigned)(st.st_mode & 07777));
    close(fd);
    return rc;
}

int ini_check_files(const char *file, const ini_section *specs, size_t nspecs,
                    const ini_target *targets, pgs_error *e)
{
    for (size_t si = 0; si < nspecs; si++) {
        const ini_section *spec = &specs[si];
        size_t count = spec->named ? targets[si].count : 1;
        for (size_t ii = 0; ii < count; ii++) {
            const void *inst =
                spec->named ? (const char *)targets[si].many + ii * spec->size : targets[si].one;
            for (size_t ki = 0; ki < spec->nkeys; ki++) {
                const ini_key *k = &spec->keys[ki];
                if (!(k->flags & (INI_FILE | INI_PRIVATE)))
                    continue;
                const char *one = NULL;
                const ini_list *list = NULL;
                if (k->type == INI_PATHS)
                    list = CFIELD(inst, k->offset, ini_list);
                else
                    one = *CFIELD(inst, k->offset, char *);
                size_t n = list ? list->n : (one != NULL);
                for (size_t i = 0; i < n; i++) {
                    pgs_error fe = {0};
                    if (ini_check_one_file(list ? list->items[i] : one,
                                           (k->flags & INI_PRIVATE) != 0, &fe) != 0) {
                        char label[INI_NAME_MAX + 80];
                        return ini_fail_at(
                            e, fe.code, file, ini_key_line(spec, inst, k->name), "%s %s: %s",
                            ini_section_label(spec, inst, label, sizeof(label)), k->name, fe.msg);
                    }
                }
            }
        }
    }
    return 0;
}

int ini_read_file(const char *path, char **text, size_t *len, pgs_error *e)
{
    int rc = 0;
    char *buf = NULL;
    ssize_t n = 0;
    *text = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return pgs_fail(e, PGS_EIO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = pgs_fail(e, PGS_EIO, "%s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = pgs_fail(e, PGS_EINVAL, "%s: not a regular file", path);
        goto out;
    }
    if (st.st_size > (off_t)INI_FILE_MAX) {
        rc = ini_fail_at(e, PGS_ELIMIT, path, 0, "larger than %u bytes", INI_FILE_MAX);
        goto out;
    }
    /* One byte more than the limit, in case the file grew since fstat. */
    if ((buf = malloc(INI_FILE_MAX + 1)) == NULL) {
        rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
        goto out;
    }
    if ((n = fs_read_full(fd, buf, INI_FILE_MAX + 1)) < 0) {
        rc = pgs_fail(e, PGS_EIO, "%s: %s", path, strerror(errno));
        n = 0;
        goto out;
    }
    if ((size_t)n > INI_FILE_MAX) {
        rc = ini_fail_at(e, PGS_ELIMIT, path, 0, "larger than %u bytes", INI_FILE_MAX);
        goto out;
    }
    *text = buf;
    *len = (size_t)n;
    buf = NULL;
out:
    ini_text_free(buf, (size_t)n);
    close(fd);
    return rc;
}

void ini_text_free(char *text, size_t len)
{
    if (text == NULL)
        return;
    explicit_bzero(text, len);
    free(text);
}

int ini_load_file(const char *path, const ini_section *specs, size_t nspecs, ini_target *targets,
                  pgs_error *e)
{
    char *text = NULL;
    size_t len = 0;
    int rc = ini_read_file(path, &text, &len, e);
    if (rc != 0)
        return rc;
    rc = ini_parse_buffer(path, text, len, specs, nspecs, targets, e);
    ini_text_free(text, len);
    if (rc == 0)
        rc = ini_check_files(path, specs, nspecs, targets, e);
    return rc;
}

static void ini_free_instance(const ini_section *spec, void *inst)
{
    if (spec->named) {
        free(*FIELD(inst, spec->name_offset, char *));
        *FIELD(inst, spec->name_offset, char *) = NULL;
    }
    for (size_t ki = 0; ki < spec->nkeys; ki++) {
        const ini_key *k = &spec->keys[ki];
        if (k->type == INI_PATHS) {
            ini_list_free(FIELD(inst, k->offset, ini_list));
        } else if (ini_is_text_type(k->type)) {
            char **s = FIELD(inst, k->offset, char *);
            if (*s != NULL && (k->flags & INI_SECRET))
                explicit_bzero(*s, strlen(*s));
            free(*s);
            *s = NULL;
        }
    }
    memset(FIELD(inst, spec->src_offset, ini_src), 0, sizeof(ini_src));
}

void ini_free(const ini_section *specs, size_t nspecs, ini_target *targets)
{
    for (size_t si = 0; si < nspecs; si++) {
        const ini_section *spec = &specs[si];
        ini_target *t = &targets[si];
        if (!spec->named) {
            if (t->one != NULL)
                ini_free_instance(spec, t->one);
            continue;
        }
        for (size_t i = 0; i < t->count; i++)
            ini_free_instance(spec, (char *)t->many + i * spec->size);
        free(t->many);
        t->many = NULL;
        t->count = 0;
    }
}

/* ---- printing ---- */

static void ini_format_size(uint64_t v, char *out, size_t len)
{
    static const char *const units[] = {"TiB", "GiB", "MiB", "KiB"};
    for (size_t i = 0; i < 4; i++) {
        unsigned shift = 40 - 10 * (unsigned)i;
        if (v != 0 && (v & ((UINT64_C(1) << shift) - 1)) == 0) {
            snprintf(out, len, "%" PRIu64 " %s", v >> shift, units[i]);
            return;
        }
    }
    snprintf(out, len, "%" PRIu64 " B", v);
}

void ini_print_section(FILE *out, const ini_section *spec, const void *inst)
{
    char label[INI_NAME_MAX + 80];
    const ini_src *src = ini_src_of(spec, inst);
    fprintf(out, "%s\n", ini_section_label(spec, inst, label, sizeof(label)));
    for (size_t ki = 0; ki < spec->nkeys; ki++) {
        const ini_key *k = &spec->keys[ki];
        char num[64];
        const char *def = src->key_line[ki] > 0 ? "" : "  (default)";
        fprintf(out, "%-24s = ", k->name);
        switch (k->type) {
        case INI_STRING:
        case INI_PATH:
        case INI_URL: {
            const char *s = *CFIELD(inst, k->offset, char *);
            if (s == NULL)
                fprintf(out, "(not set)\n");
            else if (k->flags & INI_SECRET)
                fprintf(out, "(set)\n");
            else
                fprintf(out, "%s%s\n", s, def);
            break;
        }
        case INI_PATHS: {
            const ini_list *l = CFIELD(inst, k->offset, ini_list);
            if (l->n == 0)
                fprintf(out, "(not set)");
            for (size_t i = 0; i < l->n; i++)
                fprintf(out, "%s%s", i ? ", " : "", l->items[i]);
            fprintf(out, "%s\n", l->n ? def : "");
            break;
        }
        case INI_BOOL:
            fprintf(out, "%s%s\n", *CFIELD(inst, k->offset, int) ? "true" : "false", def);
            break;
        case INI_UINT:
            fprintf(out, "%" PRIu64 "%s\n", *CFIELD(inst, k->offset, uint64_t), def);
            break;
        case INI_SIZE:
            ini_format_size(*CFIELD(inst, k->offset, uint64_t), num, sizeof(num));
            fprintf(out, "%s%s\n", num, def);
            break;
        case INI_ENUM:
            fprintf(out, "%s%s\n", k->choices[*CFIELD(inst, k->offset, int)], def);
            break;
        }
    }
}

int ini_vfail_key(pgs_error *e, int code, const char *path, const ini_section *s, const void *inst,
                  const char *key, const char *fmt, va_list ap)
{
    char msg[sizeof(e->msg)], label[INI_NAME_MAX + 80];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    return ini_fail_at(e, code, path, ini_key_line(s, inst, key), "%s %s: %s",
                       ini_section_label(s, inst, label, sizeof(label)), key, msg);
}
