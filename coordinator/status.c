/*
 * The status page's renderer and the Authorization header's reader (status.h says what and why).
 *
 * The document is written into one growing buffer that refuses to pass STATUS_HTML_MAX. All text
 * that did not come from this file goes through put_text, which is the only place input reaches
 * the output: it validates UTF-8 itself (jansson does too, but a renderer that is safe only
 * because of its caller's parser is one refactoring away from a hole), replaces what a page
 * should not show, escapes the five characters that mean something in HTML, and cuts long
 * values. Values are only ever written as element content, never into attributes, so the
 * escaping needed is the simple one.
 */
#include "coordinator/status.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sodium.h>

#include "coordinator/catalog.h"

/* ---- the output buffer ---- */

typedef struct obuf {
    char *p;
    size_t len, cap;
    int err; /* PGS_ENOMEM or PGS_ELIMIT once something failed; later writes do nothing */
} obuf;

static void put_raw(obuf *b, const char *s, size_t n)
{
    if (b->err != 0)
        return;
    if (n > STATUS_HTML_MAX || b->len + n > STATUS_HTML_MAX) {
        b->err = PGS_ELIMIT;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap != 0 ? b->cap : 16384;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->err = PGS_ENOMEM;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

/* Markup and text of this file's own (never input). */
static void put(obuf *b, const char *s)
{
    put_raw(b, s, strlen(s));
}

static void putf(obuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void putf(obuf *b, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    put_raw(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/* ---- text from the input ---- */

/* The code point of the UTF-8 sequence at s (n bytes left) and its length; a byte that does not
 * start a valid sequence (overlong, surrogate, past U+10FFFF, cut short) is one byte of
 * U+FFFD. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if ((c & 0xe0) == 0xc0) {
        len = 2, v = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3, v = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        *cp = 0xfffd;
        return 1;
    }
    if (len > n) {
        *cp = 0xfffd;
        return 1;
    }
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) {
            *cp = 0xfffd;
            return 1;
        }
        v = (v << 6) | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) {
        *cp = 0xfffd;
        return 1;
    }
    *cp = v;
    return len;
}

/* s[0..n) as escaped element content, at most max bytes of it (then "..."). */
static void put_textn(obuf *b, const char *s, size_t n, size_t max)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n && b->err == 0) {
        uint32_t cp;
        size_t k = utf8_decode(u + i, n - i, &cp);
        if (i + k > max) {
            put(b, "\xe2\x80\xa6"); /* U+2026: there was more */
            return;
        }
        switch (cp) {
        case '&':
            put(b, "&amp;");
            break;
        case '<':
            put(b, "&lt;");
            break;
        case '>':
            put(b, "&gt;");
            break;
        case '"':
            put(b, "&quot;");
            break;
        case '\'':
            put(b, "&#39;");
            break;
        case '\t':
        case '\n':
        case '\r':
            put(b, " ");
            break;
        default:
            /* C0 and C1 controls, DEL and NUL are not text; nor are U+FFFE and U+FFFF. */
            if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0xfffe || cp == 0xffff ||
                cp == 0xfffd)
                put(b, "\xef\xbf\xbd");
            else
                put_raw(b, s + i, k);
        }
        i += k;
    }
}

static void put_text(obuf *b, const char *s, size_t max)
{
    put_textn(b, s, s != NULL ? strlen(s) : 0, max);
}

/* ---- reading the input ---- */

/* The string under key, with its length (jansson strings may hold NULs), or NULL. */
static const char *jstr(const json_t *o, const char *key, size_t *n)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v))
        return NULL;
    if (n != NULL)
        *n = json_string_length(v);
    return json_string_value(v);
}

/* A cell with the string under key, escaped, or a dash when there is none. */
static void put_cell_str(obuf *b, const json_t *o, const char *key, size_t max)
{
    size_t n = 0;
    const char *s = jstr(o, key, &n);
    put(b, "<td>");
    if (s != NULL && n > 0)
        put_textn(b, s, n, max);
    else
        put(b, "<span class=\"none\">\xe2\x80\x94</span>");
    put(b, "</td>");
}

static int jint(const json_t *o, const char *key, int64_t *out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        return 0;
    *out = (int64_t)json_integer_value(v);
    return 1;
}

/* An array's element count, 0 for anything else. */
static size_t jlen(const json_t *a)
{
    return json_is_array(a) ? json_array_size(a) : 0;
}

/* The unix milliseconds of a catalog time string under key; 0 when absent or not one. */
static int jtime(const json_t *o, const char *key, int64_t *ms)
{
    size_t n = 0;
    const char *s = jstr(o, key, &n);
    if (s == NULL || n != strlen(s))
        return 0;
    return catalog_time_parse(s, ms) == 0;
}

/* ---- formatting ---- */

static void put_size(obuf *b, int64_t bytes)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
    if (bytes < 0) {
        put(b, "?");
        return;
    }
    if (bytes < 1024) {
        putf(b, "%" PRId64 " B", bytes);
        return;
    }
    double v = (double)bytes / 1024.0;
    size_t u = 0;
    while (v >= 1024.0 && u + 1 < sizeof(units) / sizeof(units[0])) {
        v /= 1024.0;
        u++;
    }
    putf(b, "%.1f %s", v, units[u]);
}

/* How long ago then_ms was: "45 s", "12 min", "3 h 20 min", "4 d 6 h". */
static void put_age(obuf *b, int64_t now_ms, int64_t then_ms)
{
    if (then_ms > now_ms + 60000) {
        put(b, "in the future");
        return;
    }
    int64_t s = then_ms < now_ms ? (now_ms - then_ms) / 1000 : 0;
    if (s < 60)
        putf(b, "%" PRId64 " s", s);
    else if (s < 3600)
        putf(b, "%" PRId64 " min", s / 60);
    else if (s < 86400)
        putf(b, "%" PRId64 " h %" PRId64 " min", s / 3600, s % 3600 / 60);
    else
        putf(b, "%" PRId64 " d %" PRId64 " h", s / 86400, s % 86400 / 3600);
}

static void put_more(obuf *b, size_t shown, size_t total, const char *what)
{
    if (total > shown)
        putf(b, "<p class=\"note\">%zu more %s not shown.</p>\n", total - shown, what);
}

/* ---- the sections ---- */

/* The live (fleet) entry of agent name, or NULL. */
static json_t *live_agent(const json_t *live, const char *name, size_t n)
{
    json_t *x;
    size_t i;
    json_array_foreach(live, i, x)
    {
        size_t m = 0;
        const char *s = jstr(x, "name", &m);
        if (s != NULL && m == n && memcmp(s, name, n) == 0)
            return x;
    }
    return NULL;
}

/* The names in arr's objects (key "name"), with an environment in parentheses when given. */
static void put_db_names(obuf *b, const json_t *arr, const char *agent, size_t agent_len,
                         int by_agent)
{
    json_t *x;
    size_t i, shown = 0, total = 0;
    json_array_foreach(arr, i, x)
    {
        size_t n = 0, an = 0;
        const char *name = jstr(x, by_agent ? "database" : "name", &n);
        if (by_agent) {
            const char *a = jstr(x, "agent", &an);
            if (a == NULL || an != agent_len || memcmp(a, agent, an) != 0)
                continue;
        }
        if (name == NULL)
            continue;
        total++;
        if (shown >= STATUS_AGENT_DBS_MAX)
            continue;
        if (shown++ > 0)
            put(b, ", ");
        put_textn(b, name, n, STATUS_TEXT_MAX);
        size_t en = 0;
        const char *env = jstr(x, "environment", &en);
        if (env != NULL && en > 0) {
            put(b, " <span class=\"env\">(");
            put_textn(b, env, en, STATUS_TEXT_MAX);
            put(b, ")</span>");
        }
    }
    if (total > shown)
        putf(b, " and %zu more", total - shown);
    if (total == 0)
        put(b, "<span class=\"none\">\xe2\x80\x94</span>");
}

/* One agent's row; cat is its catalog object (may be NULL), live its fleet object (may be
 * NULL). */
static void agent_row(obuf *b, const json_t *in, const json_t *cat, const json_t *live,
                      int has_live)
{
    const json_t *o = live != NULL ? live : cat;
    size_t n = 0;
    const char *name = jstr(o, "name", &n);
    int connected = has_live ? live != NULL : json_is_true(json_object_get(cat, "connected"));
    putf(b, "<tr class=\"%s\"><td>", connected ? "ok" : "off");
    put_textn(b, name, n, STATUS_TEXT_MAX);
    putf(b, "</td><td>%s</td>", connected ? "connected" : "disconnected");
    const json_t *ver = live != NULL && jstr(live, "version", NULL) != NULL ? live : cat;
    put_cell_str(b, ver, "version", STATUS_TEXT_MAX);
    if (connected && live != NULL && jstr(live, "connected_at", NULL) != NULL) {
        put(b, "<td>connected since ");
        put_text(b, jstr(live, "connected_at", NULL), STATUS_TEXT_MAX);
        put(b, "</td>");
    } else if (cat != NULL && jstr(cat, "last_seen", NULL) != NULL) {
        put(b, "<td>last seen ");
        put_text(b, jstr(cat, "last_seen", NULL), STATUS_TEXT_MAX);
        put(b, "</td>");
    } else {
        put(b, "<td><span class=\"none\">\xe2\x80\x94</span></td>");
    }
    put(b, "<td>");
    if (live != NULL && json_is_array(json_object_get(live, "databases")))
        put_db_names(b, json_object_get(live, "databases"), NULL, 0, 0);
    else
        put_db_names(b, json_object_get(in, "databases"), name != NULL ? name : "", n, 1);
    putf(b, "</td><td>%zu</td></tr>\n", live != NULL ? jlen(json_object_get(live, "jobs")) : 0);
}

static void section_fleet(obuf *b, const json_t *in)
{
    const json_t *agents = json_object_get(in, "agents");
    const json_t *live = json_object_get(in, "live");
    int has_live = json_is_array(live);
    json_t *x;
    size_t i, shown = 0, total = 0;

    put(b, "<section id=\"fleet\">\n<h2>Fleet</h2>\n");
    put(b, "<table>\n<thead><tr><th>Agent</th><th>State</th><th>Version</th><th>Since</th>"
           "<th>Databases</th><th>Jobs</th></tr></thead>\n<tbody>\n");
    /* The catalog's agents first (they are by name), with what the fleet knows of them. */
    json_array_foreach(agents, i, x)
    {
        size_t n = 0;
        const char *name = jstr(x, "name", &n);
        if (name == NULL)
            continue;
        total++;
        if (shown >= STATUS_AGENTS_MAX)
            continue;
        shown++;
        agent_row(b, in, x, has_live ? live_agent(live, name, n) : NULL, has_live);
    }
    /* Then connected agents the catalog does not list (yet). */
    json_array_foreach(live, i, x)
    {
        size_t n = 0;
        const char *name = jstr(x, "name", &n);
        if (name == NULL || live_agent(agents, name, n) != NULL)
            continue;
        total++;
        if (shown >= STATUS_AGENTS_MAX)
            continue;
        shown++;
        agent_row(b, in, NULL, x, 1);
    }
    if (total == 0)
        put(b, "<tr><td colspan=\"6\" class=\"none\">No agent has connected yet.</td></tr>\n");
    put(b, "</tbody>\n</table>\n");
    put_more(b, shown, total, "agents");
    put(b, "</section>\n");
}

/* Whether a database row needs attention: 1 no complete backup, 2 its last attempt failed. */
static int db_problem(const json_t *d)
{
    const json_t *last = json_object_get(d, "last_complete");
    int64_t fail_ms = 0, ok_ms = 0;
    int has_fail = jstr(d, "last_failure_at", NULL) != NULL;
    if (!json_is_object(last))
        return 1;
    if (!has_fail)
        return 0;
    /* A time that does not parse cannot prove the failure older: say so. */
    if (!jtime(d, "last_failure_at", &fail_ms) ||
        !(jtime(last, "finished_at", &ok_ms) || jtime(last, "started_at", &ok_ms)))
        return 2;
    return fail_ms > ok_ms ? 2 : 0;
}

static void section_databases(obuf *b, const json_t *in, int64_t now_ms, size_t *bad_out)
{
    const json_t *dbs = json_object_get(in, "databases");
    json_t *d;
    size_t i, shown = 0, total = 0, bad = 0;
    int64_t more = 0;

    put(b, "<section id=\"databases\">\n<h2>Databases</h2>\n");
    put(b, "<table>\n<thead><tr><th>Database</th><th>Environment</th><th>Status</th>"
           "<th>Last complete backup</th><th>Age</th><th>Size</th><th>Backup id</th>"
           "<th>Last result</th></tr></thead>\n<tbody>\n");
    json_array_foreach(dbs, i, d)
    {
        if (!json_is_object(d))
            continue;
        total++;
        int problem = db_problem(d);
        bad += problem != 0;
        if (shown >= STATUS_DATABASES_MAX)
            continue;
        shown++;
        const json_t *last = json_object_get(d, "last_complete");
        putf(b, "<tr class=\"%s\"><td>", problem ? "bad" : "ok");
        size_t an = 0, dn = 0;
        const char *agent = jstr(d, "agent", &an), *db = jstr(d, "database", &dn);
        put_textn(b, agent, agent != NULL ? an : 0, STATUS_TEXT_MAX);
        put(b, "/");
        put_textn(b, db, db != NULL ? dn : 0, STATUS_TEXT_MAX);
        put(b, "</td>");
        put_cell_str(b, d, "environment", STATUS_TEXT_MAX);
        putf(b, "<td class=\"state\">%s</td>",
             problem == 1   ? "NO BACKUP"
             : problem == 2 ? "FAILED"
                            : "OK");
        if (json_is_object(last)) {
            int64_t t = 0, bytes = -1;
            put_cell_str(b, last, "started_at", STATUS_TEXT_MAX);
            put(b, "<td>");
            if (jtime(last, "started_at", &t))
                put_age(b, now_ms, t);
            else
                put(b, "?");
            put(b, "</td><td>");
            if (jint(last, "size_bytes", &bytes) || jint(last, "bytes", &bytes))
                put_size(b, bytes);
            else
                put(b, "?");
            put(b, "</td>");
            put_cell_str(b, last, "id", STATUS_TEXT_MAX);
        } else {
            put(b, "<td class=\"none\">never</td><td></td><td></td><td></td>");
        }
        put(b, "<td>");
        if (problem == 2 || (problem == 1 && jstr(d, "last_failure_at", NULL) != NULL)) {
            put(b, "failed ");
            put_text(b, jstr(d, "last_failure_at", NULL), STATUS_TEXT_MAX);
            size_t rn = 0;
            const char *r = jstr(d, "last_failure", &rn);
            if (r != NULL) {
                put(b, ": ");
                put_textn(b, r, rn, STATUS_TEXT_MAX);
            }
        } else if (problem == 1) {
            put(b, "no backup yet");
        } else {
            put(b, "complete");
        }
        put(b, "</td></tr>\n");
    }
    if (total == 0)
        put(b, "<tr><td colspan=\"8\" class=\"none\">No database is known yet.</td></tr>\n");
    put(b, "</tbody>\n</table>\n");
    if (jint(in, "more_databases", &more) && more > 0)
        putf(b, "<p class=\"note\">%" PRId64 " more databases not shown.</p>\n", more);
    put_more(b, shown, total, "databases");
    put(b, "<p class=\"note\">Times are UTC; the time of a backup is when its dump started (the "
           "time of its data).</p>\n");
    put(b, "</section>\n");
    *bad_out = bad;
}

static void section_failures(obuf *b, const json_t *in)
{
    const json_t *fails = json_object_get(in, "failures");
    json_t *f;
    size_t i, shown = 0;

    put(b, "<section id=\"failures\">\n<h2>Recent failures</h2>\n");
    put(b, "<table>\n<thead><tr><th>Backup id</th><th>Database</th><th>When</th>"
           "<th>Reason</th></tr></thead>\n<tbody>\n");
    json_array_foreach(fails, i, f)
    {
        if (!json_is_object(f) || shown >= STATUS_FAILURES_MAX)
            continue;
        shown++;
        put(b, "<tr class=\"bad\">");
        put_cell_str(b, f, "id", STATUS_TEXT_MAX);
        put(b, "<td>");
        size_t an = 0, dn = 0;
        const char *agent = jstr(f, "agent", &an), *db = jstr(f, "database", &dn);
        put_textn(b, agent, agent != NULL ? an : 0, STATUS_TEXT_MAX);
        put(b, "/");
        put_textn(b, db, db != NULL ? dn : 0, STATUS_TEXT_MAX);
        put(b, "</td>");
        put_cell_str(b, f, jstr(f, "finished_at", NULL) != NULL ? "finished_at" : "created_at",
                     STATUS_TEXT_MAX);
        put_cell_str(b, f, "error", STATUS_REASON_MAX);
        put(b, "</tr>\n");
    }
    if (shown == 0)
        put(b, "<tr><td colspan=\"4\" class=\"none\">No failed backup.</td></tr>\n");
    put(b, "</tbody>\n</table>\n</section>\n");
}

static void section_next_runs(obuf *b, const json_t *in)
{
    const json_t *sch = json_object_get(in, "schedule");
    const json_t *schedules = json_object_get(sch, "schedules");
    const json_t *runs = json_object_get(sch, "runs");
    json_t *x;
    size_t i, shown = 0;
    int64_t speed = 1;

    put(b, "<section id=\"next-runs\">\n<h2>Next runs</h2>\n");
    if (!json_is_object(sch)) {
        put(b, "<p class=\"none\">This coordinator runs no scheduler.</p>\n</section>\n");
        return;
    }
    if (jint(sch, "speed", &speed) && speed > 1)
        putf(b,
             "<p class=\"note\">The clock of the scheduler runs %" PRId64 " times faster than "
             "the wall clock (PGSHIP_SCHEDULER_SPEED): a test setting.</p>\n",
             speed);
    put(b, "<h3>Schedules</h3>\n<table id=\"schedules\">\n<thead><tr><th>Schedule</th>"
           "<th>Cron</th><th>Select</th><th>Retention</th></tr></thead>\n<tbody>\n");
    json_array_foreach(schedules, i, x)
    {
        if (!json_is_object(x) || shown >= STATUS_SCHEDULES_MAX)
            continue;
        shown++;
        put(b, "<tr>");
        put_cell_str(b, x, "name", STATUS_TEXT_MAX);
        put_cell_str(b, x, "cron", STATUS_TEXT_MAX);
        put_cell_str(b, x, "select", STATUS_TEXT_MAX);
        put_cell_str(b, x, "retention", STATUS_TEXT_MAX);
        put(b, "</tr>\n");
    }
    if (shown == 0)
        put(b, "<tr><td colspan=\"4\" class=\"none\">No schedule is configured.</td></tr>\n");
    put(b, "</tbody>\n</table>\n");
    put_more(b, shown, jlen(schedules), "schedules");

    shown = 0;
    put(b, "<h3>Runs</h3>\n<table id=\"runs\">\n<thead><tr><th>Schedule</th><th>Database</th>"
           "<th>Run at</th><th>Note</th></tr></thead>\n<tbody>\n");
    json_array_foreach(runs, i, x)
    {
        if (!json_is_object(x) || shown >= STATUS_RUNS_MAX)
            continue;
        shown++;
        put(b, "<tr>");
        put_cell_str(b, x, "schedule", STATUS_TEXT_MAX);
        put(b, "<td>");
        size_t an = 0, dn = 0;
        const char *agent = jstr(x, "agent", &an), *db = jstr(x, "database", &dn);
        put_textn(b, agent, agent != NULL ? an : 0, STATUS_TEXT_MAX);
        put(b, "/");
        put_textn(b, db, db != NULL ? dn : 0, STATUS_TEXT_MAX);
        put(b, "</td>");
        if (jstr(x, "run_at", NULL) != NULL)
            put_cell_str(b, x, "run_at", STATUS_TEXT_MAX);
        else
            put(b, "<td class=\"none\">never again</td>");
        put(b, "<td>");
        /* Scheduled verifications and restore tests say so; backups are the rule. */
        const char *action = jstr(x, "action", NULL);
        if (action != NULL && strcmp(action, "backup") != 0) {
            put_text(b, action, STATUS_TEXT_MAX);
            put(b, " ");
        }
        if (json_is_true(json_object_get(x, "due_now")))
            put(b, "due now ");
        if (jstr(x, "merged_into", NULL) != NULL) {
            put(b, "runs with ");
            put_text(b, jstr(x, "merged_into", NULL), STATUS_TEXT_MAX);
        }
        put(b, "</td></tr>\n");
    }
    if (shown == 0)
        put(b, "<tr><td colspan=\"4\" class=\"none\">No run is planned.</td></tr>\n");
    put(b, "</tbody>\n</table>\n");
    put_more(b, shown, jlen(runs), "runs");
    put(b, "</section>\n");
}

/* The stylesheet: plain, legible, the problem rows visible from across a room. */
static const char css[] =
    "body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1d1d1d;background:#fafafa}"
    "h1{font-size:1.5em;margin:0 0 .2em}h2{font-size:1.2em;margin:1.6em 0 .4em}"
    "h3{font-size:1em;margin:1em 0 .3em}"
    "table{border-collapse:collapse;width:100%;background:#fff}"
    "th,td{border:1px solid #ddd;padding:.3em .5em;text-align:left;vertical-align:top;"
    "overflow-wrap:break-word}"
    "th{background:#eee}tr.bad td{background:#fde8e8}tr.bad td.state{color:#a40000;"
    "font-weight:bold}tr.off td{color:#777}td.state{font-weight:bold;color:#1a6b1a}"
    ".none{color:#888}.env{color:#555}.note{color:#555;font-size:.9em}"
    ".summary{font-size:1.05em}.summary .bad{color:#a40000;font-weight:bold}";

int status_render(const json_t *in, int64_t now_ms, char **html, size_t *len, pgs_error *e)
{
    obuf b = {0};
    obuf body = {0};
    char now[CATALOG_TIME_SIZE];
    size_t bad = 0, agents = 0, connected = 0;
    *html = NULL;
    if (len != NULL)
        *len = 0;
    catalog_time_format(now_ms, now);

    /* The sections first, into their own buffer: the summary above them needs their counts. */
    section_fleet(&body, in);
    section_databases(&body, in, now_ms, &bad);
    section_failures(&body, in);
    section_next_runs(&body, in);

    const json_t *live = json_object_get(in, "live");
    json_t *x;
    size_t i;
    json_array_foreach(json_object_get(in, "agents"), i, x)
    {
        size_t n = 0;
        const char *name = jstr(x, "name", &n);
        if (name == NULL)
            continue;
        agents++;
        if (json_is_array(live) ? live_agent(live, name, n) != NULL
                                : json_is_true(json_object_get(x, "connected")))
            connected++;
    }
    json_array_foreach(live, i, x)
    {
        size_t n = 0;
        const char *name = jstr(x, "name", &n);
        if (name != NULL && live_agent(json_object_get(in, "agents"), name, n) == NULL)
            agents++, connected++;
    }
    size_t fails = jlen(json_object_get(in, "failures"));

    put(&b, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    putf(&b, "<meta http-equiv=\"refresh\" content=\"%d\">\n", STATUS_REFRESH_S);
    put(&b, "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            "<meta name=\"robots\" content=\"noindex\">\n"
            "<link rel=\"icon\" href=\"data:,\">\n"
            "<title>pgship status</title>\n<style>");
    put(&b, css);
    put(&b, "</style>\n</head>\n<body>\n<header>\n<h1>pgship status</h1>\n");
    putf(&b,
         "<p>Generated at <time id=\"generated\">%s</time> (UTC); this page reloads every "
         "%d s.</p>\n",
         now, STATUS_REFRESH_S);
    putf(&b, "<p class=\"summary\">%zu agent%s, %zu connected. ", agents, agents == 1 ? "" : "s",
         connected);
    size_t ndb = 0;
    json_array_foreach(json_object_get(in, "databases"), i, x) ndb += json_is_object(x);
    putf(&b, "%zu database%s", ndb, ndb == 1 ? "" : "s");
    if (bad > 0)
        putf(&b, ", <span class=\"bad\">%zu without a good last backup</span>", bad);
    putf(&b, ". %zu recent failure%s.</p>\n</header>\n",
         fails < STATUS_FAILURES_MAX ? fails : STATUS_FAILURES_MAX, fails == 1 ? "" : "s");
    if (body.err == 0)
        put_raw(&b, body.p != NULL ? body.p : "", body.len);
    else
        b.err = body.err;
    put(&b, "<footer><p class=\"note\">pgship coordinator, read-only view. The same data as JSON: "
            "GET /v1/agents, /v1/backups, /v1/schedules.</p></footer>\n</body>\n</html>\n");
    free(body.p);
    if (b.err != 0) {
        free(b.p);
        return b.err == PGS_ENOMEM
                   ? pgs_fail(e, PGS_ENOMEM, "status page: out of memory")
                   : pgs_fail(e, PGS_ELIMIT, "status page: the page would be larger than %u bytes",
                              STATUS_HTML_MAX);
    }
    *html = b.p;
    if (len != NULL)
        *len = b.len;
    return 0;
}

/* ---- requests ---- */

int status_is_page(const char *uri)
{
    if (uri == NULL)
        return 0;
    size_t n = strcspn(uri, "?");
    return (n == 7 && strncmp(uri, "/status", 7) == 0) ||
           (n == 8 && strncmp(uri, "/status/", 8) == 0);
}

/* Copies s[0..n) into tok when it is a token: 1..cap-1 bytes, no NUL, no control character. */
static int take_token(const char *s, size_t n, char *tok, size_t cap, size_t *len)
{
    if (n == 0 || n >= cap)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            return 0;
    }
    memcpy(tok, s, n);
    tok[n] = '\0';
    if (len != NULL)
        *len = n;
    return 1;
}

int status_auth_token(const char *header, char *tok, size_t cap, size_t *len)
{
    int scheme = STATUS_AUTH_NONE;
    if (len != NULL)
        *len = 0;
    if (tok == NULL || cap == 0)
        return STATUS_AUTH_NONE;
    tok[0] = '\0';
    if (header == NULL)
        return STATUS_AUTH_NONE;
    if (strncasecmp(header, "Bearer ", 7) == 0)
        scheme = STATUS_AUTH_BEARER;
    else if (strncasecmp(header, "Basic ", 6) == 0)
        scheme = STATUS_AUTH_BASIC;
    else
        return STATUS_AUTH_NONE;
    const char *h = header + (scheme == STATUS_AUTH_BEARER ? 7 : 6);
    while (*h == ' ')
        h++;
    size_t n = strlen(h);
    while (n > 0 && (h[n - 1] == ' ' || h[n - 1] == '\t'))
        n--;
    if (scheme == STATUS_AUTH_BEARER)
        return take_token(h, n, tok, cap, len) ? scheme : STATUS_AUTH_NONE;

    /* Basic: user ':' token, base64. The user name is bounded like the token, so the decoded
     * text fits in cap + 256 bytes and the base64 in 4/3 of that; longer is refused before any
     * decoding. */
    size_t bin_max = cap + 256;
    if (n == 0 || n % 4 != 0 || n / 4 * 3 > bin_max)
        return STATUS_AUTH_NONE;
    unsigned char *bin = malloc(bin_max);
    if (bin == NULL)
        return STATUS_AUTH_NONE;
    size_t bin_len = 0;
    const char *end = NULL;
    int ok = sodium_base642bin(bin, bin_max, h, n, NULL, &bin_len, &end,
                               sodium_base64_VARIANT_ORIGINAL) == 0 &&
             end == h + n;
    const unsigned char *colon = ok ? memchr(bin, ':', bin_len) : NULL;
    if (colon != NULL) {
        size_t user_len = (size_t)(colon - bin);
        ok = memchr(bin, '\0', user_len) == NULL &&
             take_token((const char *)colon + 1, bin_len - user_len - 1, tok, cap, len);
    } else {
        ok = 0;
    }
    sodium_memzero(bin, bin_max);
    free(bin);
    if (!ok) {
        sodium_memzero(tok, cap);
        if (len != NULL)
            *len = 0;
        return STATUS_AUTH_NONE;
    }
    return scheme;
}
