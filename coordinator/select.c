/*
 * Database selectors (see select.h). The text comes from the configuration file and from the
 * API, so the parser checks every byte and every limit and names the term it refuses. A parsed
 * selector keeps its globs in one copy of the text, cut into C strings in place.
 */
#include "coordinator/select.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { KEY_AGENT, KEY_DATABASE, KEY_ENVIRONMENT, KEY_COUNT };

static const char *const key_names[KEY_COUNT] = {"agent", "database", "environment"};

struct db_select {
    int all;                                        /* `*` or `all`: every database */
    size_t nglobs[KEY_COUNT];                       /* 0: the key was not given */
    const char *globs[KEY_COUNT][SELECT_GLOBS_MAX]; /* into buf */
    char *buf;                                      /* the text, cut into globs */
    char *text;                                     /* canonical form */
};

/* Renders len bytes of untrusted text for a message: printable ASCII as is, anything else as
 * \xNN, cut after 64 bytes of input, so that a hostile term cannot garble a log line. */
static const char *quote(const char *p, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    size_t shown = len > 64 ? 64 : len;
    for (size_t i = 0; i < shown && o + 8 < cap; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
            out[o++] = (char)c;
        else
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
    }
    if (shown < len && o + 4 < cap) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}

static int is_sep(char c)
{
    return c == ' ' || c == '\t';
}

static int key_lookup(const char *k, size_t len)
{
    if (len == 5 && memcmp(k, "agent", 5) == 0)
        return KEY_AGENT;
    if (len == 8 && memcmp(k, "database", 8) == 0)
        return KEY_DATABASE;
    if ((len == 11 && memcmp(k, "environment", 11) == 0) || (len == 3 && memcmp(k, "env", 3) == 0))
        return KEY_ENVIRONMENT;
    return -1;
}

/* Checks one KEY=GLOBS term (term[0..len), NUL-terminated in place at len) and records its
 * globs. */
static int parse_term(db_select *s, char *term, size_t len, pgs_error *e)
{
    char q[300];
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)term[i];
        if (c < 0x21 || c > 0x7e)
            return pgs_fail(e, PGS_EINVAL,
                            "select: \"%s\" has a byte that is not printable ASCII (0x%02x)",
                            quote(term, len, q, sizeof(q)), c);
    }
    char *eq = memchr(term, '=', len);
    if (eq == NULL)
        return pgs_fail(e, PGS_EINVAL,
                        "select: \"%s\" is not KEY=GLOB[,GLOB...] (keys: agent, database, "
                        "environment; or * alone for every database)",
                        quote(term, len, q, sizeof(q)));
    size_t klen = (size_t)(eq - term);
    int k = key_lookup(term, klen);
    if (k < 0)
        return pgs_fail(e, PGS_EINVAL,
                        "select: unknown key \"%s\" (use agent, database, environment)",
                        quote(term, klen, q, sizeof(q)));
    if (s->nglobs[k] != 0)
        return pgs_fail(e, PGS_EINVAL, "select: key %s given twice (list its globs with commas)",
                        key_names[k]);
    char *p = eq + 1;
    char *end = term + len;
    size_t n = 0;
    for (;;) {
        char *comma = memchr(p, ',', (size_t)(end - p));
        char *gend = comma != NULL ? comma : end;
        size_t glen = (size_t)(gend - p);
        if (glen == 0)
            return pgs_fail(e, PGS_EINVAL, "select: \"%s\" has an empty glob",
                            quote(term, len, q, sizeof(q)));
        if (glen > SELECT_GLOB_MAX)
            return pgs_fail(e, PGS_ELIMIT, "select: %s glob \"%s\" is longer than %d bytes",
                            key_names[k], quote(p, glen, q, sizeof(q)), SELECT_GLOB_MAX);
        if (n == SELECT_GLOBS_MAX)
            return pgs_fail(e, PGS_ELIMIT, "select: key %s has more than %d globs", key_names[k],
                            SELECT_GLOBS_MAX);
        *gend = '\0';
        s->globs[k][n++] = p;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    s->nglobs[k] = n;
    return 0;
}

/* Builds the canonical text; cap bounds it (the input length plus room for key spellings). */
static int build_text(db_select *s, size_t cap, pgs_error *e)
{
    s->text = malloc(cap);
    if (s->text == NULL)
        return pgs_fail(e, PGS_ENOMEM, "select: out of memory");
    if (s->all) {
        memcpy(s->text, "*", 2);
        return 0;
    }
    size_t o = 0;
    for (int k = 0; k < KEY_COUNT; k++) {
        if (s->nglobs[k] == 0)
            continue;
        o += (size_t)snprintf(s->text + o, cap - o, "%s%s=", o ? " " : "", key_names[k]);
        for (size_t i = 0; i < s->nglobs[k]; i++)
            o += (size_t)snprintf(s->text + o, cap - o, "%s%s", i ? "," : "", s->globs[k][i]);
    }
    return 0;
}

int select_parse(const char *text, db_select **out, pgs_error *e)
{
    *out = NULL;
    if (text == NULL)
        return pgs_fail(e, PGS_EINVAL, "select: no selector given");
    size_t len = strnlen(text, SELECT_TEXT_MAX + 1);
    if (len > SELECT_TEXT_MAX)
        return pgs_fail(e, PGS_ELIMIT, "select: longer than %d bytes", SELECT_TEXT_MAX);
    db_select *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return pgs_fail(e, PGS_ENOMEM, "select: out of memory");
    int rc = 0;
    s->buf = malloc(len + 1);
    if (s->buf == NULL) {
        rc = pgs_fail(e, PGS_ENOMEM, "select: out of memory");
        goto out;
    }
    memcpy(s->buf, text, len + 1);

    size_t nterms = 0;
    size_t i = 0;
    while (rc == 0) {
        while (i < len && is_sep(s->buf[i]))
            i++;
        if (i == len)
            break;
        size_t start = i;
        while (i < len && !is_sep(s->buf[i]))
            i++;
        char *term = s->buf + start;
        size_t tlen = i - start;
        if (i < len)
            s->buf[i++] = '\0';
        nterms++;
        if ((tlen == 1 && term[0] == '*') || (tlen == 3 && memcmp(term, "all", 3) == 0))
            s->all = 1;
        else
            rc = parse_term(s, term, tlen, e);
    }
    if (rc == 0 && nterms == 0)
        rc = pgs_fail(e, PGS_EINVAL, "select: empty selector (use * for every database)");
    if (rc == 0 && s->all && nterms > 1)
        rc = pgs_fail(e, PGS_EINVAL,
                      "select: * (or all) selects every database and must stand alone");
    if (rc == 0)
        rc = build_text(s, len + 3 * 16, e);
out:
    if (rc != 0) {
        select_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

static int key_match(const db_select *s, int k, const char *name)
{
    if (s->nglobs[k] == 0)
        return 1;
    if (name == NULL)
        name = "";
    for (size_t i = 0; i < s->nglobs[k]; i++)
        if (fnmatch(s->globs[k][i], name, 0) == 0)
            return 1;
    return 0;
}

int select_match(const db_select *s, const char *agent, const char *database,
                 const char *environment)
{
    if (s->all)
        return 1;
    return key_match(s, KEY_AGENT, agent) && key_match(s, KEY_DATABASE, database) &&
           key_match(s, KEY_ENVIRONMENT, environment);
}

const char *select_text(const db_select *s)
{
    return s->text;
}

void select_free(db_select *s)
{
    if (s == NULL)
        return;
    free(s->buf);
    free(s->text);
    free(s);
}
