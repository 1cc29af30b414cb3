/*
 * Tests of the status page (coordinator/status.c): the Authorization header's reader against
 * good and hostile headers, and the renderer -- sections, the marking of databases without a
 * good last backup, caps, and hostile names and reasons that must come out as inert text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "coordinator/status.h"

/* 2026-11-21T12:00:00.000Z */
#define NOW_MS INT64_C(1795262400000)

/* ---- status_auth_token ---- */

/* "Basic " and the base64 of raw[0..n). */
static void basic_of(const char *raw, size_t n, char *out, size_t cap)
{
    size_t need = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
    assert_true(6 + need <= cap);
    memcpy(out, "Basic ", 6);
    sodium_bin2base64(out + 6, cap - 6, (const unsigned char *)raw, n,
                      sodium_base64_VARIANT_ORIGINAL);
}

static void test_status_auth_bearer(void **state)
{
    (void)state;
    char tok[64];
    size_t n = 99;
    assert_int_equal(status_auth_token("Bearer abc123", tok, sizeof(tok), &n), STATUS_AUTH_BEARER);
    assert_string_equal(tok, "abc123");
    assert_int_equal(n, 6);
    assert_int_equal(status_auth_token("bEaReR   abc \t", tok, sizeof(tok), &n),
                     STATUS_AUTH_BEARER);
    assert_string_equal(tok, "abc");
    assert_int_equal(status_auth_token("Bearer ", tok, sizeof(tok), &n), STATUS_AUTH_NONE);
    assert_int_equal(n, 0);
    assert_string_equal(tok, "");
    assert_int_equal(status_auth_token("Bearer", tok, sizeof(tok), NULL), STATUS_AUTH_NONE);
    assert_int_equal(status_auth_token("Bearerabc", tok, sizeof(tok), NULL), STATUS_AUTH_NONE);
    assert_int_equal(status_auth_token("Bearer a\001b", tok, sizeof(tok), NULL), STATUS_AUTH_NONE);
    assert_int_equal(status_auth_token(NULL, tok, sizeof(tok), NULL), STATUS_AUTH_NONE);
    assert_int_equal(status_auth_token("Digest abc", tok, sizeof(tok), NULL), STATUS_AUTH_NONE);
    assert_int_equal(status_auth_token("", tok, sizeof(tok), NULL), STATUS_AUTH_NONE);
    /* Exactly cap - 1 bytes fit; cap do not. */
    char h[80];
    snprintf(h, sizeof(h), "Bearer %063d", 7);
    assert_int_equal(status_auth_token(h, tok, sizeof(tok), &n), STATUS_AUTH_BEARER);
    assert_int_equal(n, 63);
    snprintf(h, sizeof(h), "Bearer %064d", 7);
    assert_int_equal(status_auth_token(h, tok, sizeof(tok), &n), STATUS_AUTH_NONE);
    assert_int_equal(n, 0);
}

static void test_status_auth_basic(void **state)
{
    (void)state;
    char tok[64], h[256];
    size_t n = 0;
    basic_of("u:s3cret", 8, h, sizeof(h));
    assert_string_equal(h, "Basic dTpzM2NyZXQ=");
    assert_int_equal(status_auth_token(h, tok, sizeof(tok), &n), STATUS_AUTH_BASIC);
    assert_string_equal(tok, "s3cret");
    assert_int_equal(n, 6);
    /* An empty user name, and a token with a colon: the first colon splits. */
    basic_of(":tok", 4, h, sizeof(h));
    assert_int_equal(status_auth_token(h, tok, sizeof(tok), NULL), STATUS_AUTH_BASIC);
    assert_string_equal(tok, "tok");
    basic_of("me:a:b", 6, h, sizeof(h));
    assert_int_equal(status_auth_token(h, tok, sizeof(tok), NULL), STATUS_AUTH_BASIC);
    assert_string_equal(tok, "a:b");
    /* The scheme in any case, spaces around the credentials. */
    assert_int_equal(status_auth_token("bASIC   dTpzM2NyZXQ=  ", tok, sizeof(tok), NULL),
                     STATUS_AUTH_BASIC);
    assert_string_equal(tok, "s3cret");
}

static void test_status_auth_basic_hostile(void **state)
{
    (void)state;
    char tok[64], h[512];
    static const char *const bad[] = {
        "Basic ",                 /* nothing */
        "Basic dTpzM2NyZXQ",      /* no padding */
        "Basic dTpz M2NyZXQ=",    /* a space inside */
        "Basic dTpzM2NyZXQ=\n",   /* a newline at the end */
        "Basic !!!!",             /* not base64 */
        "Basic dTpzM2NyZXQ==",    /* too much padding */
        "Basic dTpzM2NyZXQ=dTpz", /* data after the padding */
        "Basic dXNlcg==",         /* "user": no colon */
        "Basic dTo=",             /* "u:": an empty token */
        "Basic dTpzM2NyZXQ-",     /* the URL-safe alphabet */
        "Basic",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t n = 42;
        memset(tok, 'x', sizeof(tok));
        assert_int_equal(status_auth_token(bad[i], tok, sizeof(tok), &n), STATUS_AUTH_NONE);
        assert_int_equal(n, 0);
        assert_int_equal(tok[0], '\0');
    }
    /* NUL and control characters in the token, a NUL in the user name. */
    basic_of("u:a\0b", 5, h, sizeof(h));
    assert_int_equal(status_auth_token(h, tok, sizeof(tok), NULL), STATUS_AUTH_NONE);
    basic_of("u:a\nb", 5, h, sizeof(h));
    assert_int_equal(status_auth_token(h, tok, sizeof(tok), NULL), STATUS_AUTH_NONE);
    basic_of("u\0x:ab", 6, h, sizeof(h));
    assert_int_equal(status_auth_token(h, tok, sizeof(tok), NULL), STATUS_AUTH_NONE);
    /* A token of cap - 1 bytes fits, one of cap does not; a huge header is refused unread. */
    char raw[100];
    raw[0] = 'u';
    raw[1] = ':';
    memset(raw + 2, 'k', sizeof(raw) - 2);
    basic_of(raw, 2 + 63, h, sizeof(h));
    assert_int_equal(status_auth_token(h, tok, sizeof(tok), NULL), STATUS_AUTH_BASIC);
    assert_int_equal(strlen(tok), 63);
    basic_of(raw, 2 + 64, h, sizeof(h));
    assert_int_equal(status_auth_token(h, tok, sizeof(tok), NULL), STATUS_AUTH_NONE);
    size_t big = 1u << 20;
    char *huge = malloc(big + 8);
    assert_non_null(huge);
    memcpy(huge, "Basic ", 6);
    memset(huge + 6, 'A', big);
    huge[6 + big] = '\0';
    assert_int_equal(status_auth_token(huge, tok, sizeof(tok), NULL), STATUS_AUTH_NONE);
    free(huge);
    /* No room at all. */
    assert_int_equal(status_auth_token("Bearer abc", tok, 0, NULL), STATUS_AUTH_NONE);
    assert_int_equal(status_auth_token("Bearer abc", NULL, 10, NULL), STATUS_AUTH_NONE);
}

static void test_status_is_page(void **state)
{
    (void)state;
    assert_true(status_is_page("/status"));
    assert_true(status_is_page("/status/"));
    assert_true(status_is_page("/status?x=1"));
    assert_true(status_is_page("/status/?"));
    assert_false(status_is_page("/statusx"));
    assert_false(status_is_page("/status/x"));
    assert_false(status_is_page("/v1/status"));
    assert_false(status_is_page("/"));
    assert_false(status_is_page(""));
    assert_false(status_is_page(NULL));
}

/* ---- status_render ---- */

static char *render(const char *json_text)
{
    json_error_t jerr;
    json_t *in = json_loads(json_text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (in == NULL)
        fail_msg("bad test JSON: %s (line %d)", jerr.text, jerr.line);
    char *html = NULL;
    size_t len = 0;
    pgs_error e = {0};
    assert_int_equal(status_render(in, NOW_MS, &html, &len, &e), 0);
    json_decref(in);
    assert_non_null(html);
    assert_int_equal(strlen(html), len);
    return html;
}

/* The part of html from section id's start to its end. */
static char *section(const char *html, const char *id)
{
    char open[64];
    snprintf(open, sizeof(open), "<section id=\"%s\">", id);
    const char *s = strstr(html, open);
    assert_non_null(s);
    const char *end = strstr(s, "</section>");
    assert_non_null(end);
    return strndup(s, (size_t)(end - s));
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    return n;
}

static const char fixture[] =
    "{\"agents\": [{\"name\": \"db1\", \"version\": \"0.5.0\", \"last_seen\": "
    "\"2026-11-21T11:00:00.000Z\", \"connected\": false},"
    "              {\"name\": \"db2\", \"version\": \"0.4.0\", \"last_seen\": "
    "\"2026-11-20T11:00:00.000Z\", \"connected\": true}],"
    " \"live\": [{\"name\": \"db1\", \"version\": \"0.5.1\", \"connected_at\": "
    "\"2026-11-21T10:00:00.000Z\", \"databases\": [{\"name\": \"app\", \"environment\": "
    "\"prod\"}], \"jobs\": [\"20261121T115900Z-0000000a\"]}],"
    " \"databases\": ["
    "  {\"agent\": \"db1\", \"database\": \"app\", \"environment\": \"prod\","
    "   \"last_complete\": {\"id\": \"20261121T090000Z-00000001\", \"started_at\": "
    "\"2026-11-21T09:00:00.000Z\", \"finished_at\": \"2026-11-21T09:01:00.000Z\", "
    "\"size_bytes\": 1572864},"
    "   \"complete\": 3, \"failed\": 1, \"last_failure_at\": \"2026-11-20T09:00:00.000Z\", "
    "\"last_failure\": \"old\"},"
    "  {\"agent\": \"db1\", \"database\": \"shop\", \"environment\": \"prod\","
    "   \"last_complete\": {\"id\": \"20261120T090000Z-00000002\", \"started_at\": "
    "\"2026-11-20T09:00:00.000Z\", \"finished_at\": \"2026-11-20T09:01:00.000Z\", "
    "\"size_bytes\": 100},"
    "   \"complete\": 1, \"failed\": 1, \"last_failure_at\": \"2026-11-21T08:00:00.000Z\", "
    "\"last_failure\": \"pg_dump: connection refused\"},"
    "  {\"agent\": \"db2\", \"database\": \"empty\", \"environment\": \"dev\", "
    "\"last_complete\": null}],"
    " \"failures\": [{\"id\": \"20261121T080000Z-00000003\", \"agent\": \"db1\", \"database\": "
    "\"shop\", \"finished_at\": \"2026-11-21T08:00:00.000Z\", \"error\": \"pg_dump: connection "
    "refused\"}],"
    " \"schedule\": {\"speed\": 1, \"schedules\": [{\"name\": \"nightly\", \"cron\": \"0 3 * * "
    "*\", \"select\": \"env=prod\", \"retention\": null}],"
    "   \"runs\": [{\"schedule\": \"nightly\", \"agent\": \"db1\", \"database\": \"app\", "
    "\"run_at\": \"2026-11-22T03:00:00.000Z\", \"due_now\": false, \"merged_into\": null}]}}";

static void test_status_render_sections(void **state)
{
    (void)state;
    char *html = render(fixture);
    assert_true(strncmp(html, "<!DOCTYPE html>\n", 16) == 0);
    assert_non_null(strstr(html, "<meta http-equiv=\"refresh\" content=\"30\">"));
    assert_non_null(strstr(html, "<meta charset=\"utf-8\">"));
    assert_non_null(strstr(html, "<time id=\"generated\">2026-11-21T12:00:00.000Z</time>"));
    assert_null(strstr(html, "<script"));
    assert_null(strstr(html, "src="));
    assert_null(strstr(html, "http://"));
    assert_null(strstr(html, "https://"));
    assert_non_null(strstr(html, "2 agents, 1 connected"));
    assert_non_null(strstr(html, "3 databases"));
    assert_non_null(strstr(html, "2 without a good last backup"));

    char *fleet = section(html, "fleet");
    /* The fleet's live view wins: db1 is connected with the version it announced now; db2 is
     * not live, whatever the catalog's flag says. */
    assert_non_null(strstr(fleet, "<tr class=\"ok\"><td>db1</td><td>connected</td><td>0.5.1</td>"
                                  "<td>connected since 2026-11-21T10:00:00.000Z</td>"));
    assert_non_null(strstr(fleet, "<tr class=\"off\"><td>db2</td><td>disconnected</td>"
                                  "<td>0.4.0</td><td>last seen 2026-11-20T11:00:00.000Z</td>"));
    assert_non_null(strstr(fleet, "app <span class=\"env\">(prod)</span></td><td>1</td>"));
    assert_non_null(strstr(fleet, "empty <span class=\"env\">(dev)</span></td><td>0</td>"));
    free(fleet);

    char *dbs = section(html, "databases");
    assert_non_null(strstr(dbs, "<tr class=\"ok\"><td>db1/app</td><td>prod</td>"
                                "<td class=\"state\">OK</td><td>2026-11-21T09:00:00.000Z</td>"
                                "<td>3 h 0 min</td><td>1.5 MiB</td>"
                                "<td>20261121T090000Z-00000001</td><td>complete</td>"));
    assert_non_null(strstr(dbs, "<tr class=\"bad\"><td>db1/shop</td><td>prod</td>"
                                "<td class=\"state\">FAILED</td>"));
    assert_non_null(strstr(dbs, "<td>1 d 3 h</td><td>100 B</td>"));
    assert_non_null(strstr(dbs, "failed 2026-11-21T08:00:00.000Z: pg_dump: connection refused"));
    assert_non_null(strstr(dbs, "<tr class=\"bad\"><td>db2/empty</td><td>dev</td>"
                                "<td class=\"state\">NO BACKUP</td><td class=\"none\">never</td>"));
    assert_non_null(strstr(dbs, "no backup yet"));
    free(dbs);

    char *fails = section(html, "failures");
    assert_non_null(strstr(fails, "<tr class=\"bad\"><td>20261121T080000Z-00000003</td>"
                                  "<td>db1/shop</td><td>2026-11-21T08:00:00.000Z</td>"
                                  "<td>pg_dump: connection refused</td></tr>"));
    free(fails);

    char *runs = section(html, "next-runs");
    assert_non_null(strstr(runs, "<h2>Next runs</h2>"));
    assert_non_null(strstr(runs, "<td>nightly</td><td>0 3 * * *</td><td>env=prod</td>"));
    assert_non_null(strstr(runs, "<td>nightly</td><td>db1/app</td>"
                                 "<td>2026-11-22T03:00:00.000Z</td>"));
    free(runs);
    free(html);
}

static void test_status_render_empty(void **state)
{
    (void)state;
    /* Nothing, and the wrong types everywhere: every section is there and says so. */
    static const char *const inputs[] = {
        "{}",
        "null",
        "[]",
        "42",
        "\"x\"",
        "{\"agents\": 1, \"live\": {}, \"databases\": \"x\", \"failures\": {}, \"schedule\": 3}",
        ("{\"agents\": [1, null, {}], \"databases\": [1, {}], \"failures\": [[]], "
         "\"schedule\": {\"schedules\": [1], \"runs\": [{}]}}"),
    };
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        char *html = render(inputs[i]);
        assert_non_null(strstr(html, "<section id=\"fleet\">"));
        assert_non_null(strstr(html, "<section id=\"databases\">"));
        assert_non_null(strstr(html, "<section id=\"failures\">"));
        assert_non_null(strstr(html, "<section id=\"next-runs\">"));
        assert_non_null(strstr(html, "</html>\n"));
        free(html);
    }
    char *html = render("{}");
    assert_non_null(strstr(html, "No agent has connected yet."));
    assert_non_null(strstr(html, "No database is known yet."));
    assert_non_null(strstr(html, "No failed backup."));
    assert_non_null(strstr(html, "This coordinator runs no scheduler."));
    free(html);
    html = render("{\"schedule\": {\"schedules\": [], \"runs\": []}}");
    assert_non_null(strstr(html, "No schedule is configured."));
    assert_non_null(strstr(html, "No run is planned."));
    free(html);
}

static void test_status_render_escapes_hostile_text(void **state)
{
    (void)state;
    /* Names, versions and reasons that try to be markup, with NUL, control characters, a
     * lone surrogate escape and U+FFFE in them. */
    char *html = render(
        "{\"agents\": [{\"name\": \"<script>alert(1)</script>\", \"version\": \"\\\"onx='1'\","
        " \"last_seen\": \"<img src=x>\"}],"
        " \"databases\": [{\"agent\": \"a&b\", \"database\": \"</td></tr></table><b>\","
        "  \"environment\": \"<i>\", \"last_failure_at\": \"<u>\", \"last_failure\": "
        "\"x\\u0000y\\u0001z\\u0085\\uFFFE<iframe>\"}],"
        " \"failures\": [{\"id\": \"<a href=//evil>\", \"agent\": \"'\", \"database\": \"\\\"\","
        "  \"error\": \"</section><script>\\n\\r\\t\"}],"
        " \"schedule\": {\"schedules\": [{\"name\": \"<s>\", \"cron\": \"<c>\", \"select\": "
        "\"<x>\"}], \"runs\": [{\"schedule\": \"<r>\", \"merged_into\": \"<m>\"}]}}");
    assert_null(strstr(html, "<script"));
    assert_null(strstr(html, "<img"));
    assert_null(strstr(html, "<iframe"));
    assert_null(strstr(html, "<a "));
    assert_null(strstr(html, "<b>"));
    assert_null(strstr(html, "<i>"));
    assert_null(strstr(html, "<u>"));
    assert_null(strstr(html, "<s>"));
    assert_null(strstr(html, "<m>"));
    assert_non_null(strstr(html, "&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert_non_null(strstr(html, "&quot;onx=&#39;1&#39;"));
    assert_non_null(strstr(html, "a&amp;b/&lt;/td&gt;&lt;/tr&gt;&lt;/table&gt;&lt;b&gt;"));
    /* NUL, U+0001, U+0085 and U+FFFE each became U+FFFD. */
    assert_non_null(strstr(html, "x\xef\xbf\xbdy\xef\xbf\xbdz\xef\xbf\xbd\xef\xbf\xbd&lt;iframe"));
    assert_non_null(strstr(html, "&lt;/section&gt;&lt;script&gt;   </td>"));
    /* The sections are still all there, once each. */
    assert_int_equal(count(html, "<section "), 4);
    assert_int_equal(count(html, "</section>"), 4);
    free(html);
}

static void test_status_render_cuts_long_text(void **state)
{
    (void)state;
    /* A reason of 3000 "é" (2 bytes each): cut on a character boundary with an ellipsis. */
    size_t n = 3000;
    char *reason = malloc(2 * n + 1);
    assert_non_null(reason);
    for (size_t i = 0; i < n; i++)
        memcpy(reason + 2 * i, "\xc3\xa9", 2);
    reason[2 * n] = '\0';
    json_t *in = json_pack("{s:[{s:s, s:s, s:s, s:s}], s:[{s:s, s:s, s:s, s:s}]}", "failures", "id",
                           "x", "agent", "a", "database", "d", "error", reason, "databases",
                           "agent", "a", "database", "d", "last_failure_at",
                           "2026-11-21T08:00:00.000Z", "last_failure", reason);
    assert_non_null(in);
    char *html = NULL;
    size_t len = 0;
    assert_int_equal(status_render(in, NOW_MS, &html, &len, NULL), 0);
    char *fails = section(html, "failures");
    char *dbs = section(html, "databases");
    /* STATUS_REASON_MAX bytes of it in the failures table, STATUS_TEXT_MAX in the other. */
    assert_int_equal(count(fails, "\xc3\xa9"), STATUS_REASON_MAX / 2);
    assert_non_null(strstr(fails, "\xc3\xa9\xe2\x80\xa6</td>"));
    assert_int_equal(count(dbs, "\xc3\xa9"), STATUS_TEXT_MAX / 2);
    free(fails);
    free(dbs);
    free(html);
    free(reason);
    json_decref(in);
}

static void test_status_render_caps_rows(void **state)
{
    (void)state;
    json_t *fails = json_array(), *dbs = json_array();
    for (int i = 0; i < 50; i++)
        json_array_append_new(fails, json_pack("{s:s, s:s}", "id", "f", "error", "boom"));
    for (int i = 0; i < STATUS_DATABASES_MAX + 5; i++)
        json_array_append_new(dbs, json_pack("{s:s, s:s}", "agent", "a", "database", "d"));
    json_t *in =
        json_pack("{s:o, s:o, s:i}", "failures", fails, "databases", dbs, "more_databases", 7);
    char *html = NULL;
    size_t len = 0;
    assert_int_equal(status_render(in, NOW_MS, &html, &len, NULL), 0);
    char *f = section(html, "failures");
    assert_int_equal(count(f, "<td>boom</td>"), STATUS_FAILURES_MAX);
    free(f);
    char *d = section(html, "databases");
    assert_int_equal(count(d, "<td>a/d</td>"), STATUS_DATABASES_MAX);
    assert_non_null(strstr(d, "7 more databases not shown."));
    assert_non_null(strstr(d, "5 more databases not shown."));
    free(d);
    free(html);
    json_decref(in);
}

static void test_status_render_ages_and_sizes(void **state)
{
    (void)state;
    static const struct {
        const char *started;
        long long bytes;
        const char *age, *size;
    } cases[] = {
        {"2026-11-21T11:59:15.000Z", 0, "<td>45 s</td>", "<td>0 B</td>"},
        {"2026-11-21T11:48:00.000Z", 1023, "<td>12 min</td>", "<td>1023 B</td>"},
        {"2026-11-17T06:00:00.000Z", 1024, "<td>4 d 6 h</td>", "<td>1.0 KiB</td>"},
        {"2026-11-21T12:30:00.000Z", 5LL << 40, "<td>in the future</td>", "<td>5.0 TiB</td>"},
        {"not a time", -1, "<td>?</td>", "<td>?</td>"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *in = json_pack("{s:[{s:s, s:s, s:{s:s, s:s, s:I}}]}", "databases", "agent", "a",
                               "database", "d", "last_complete", "id", "x", "started_at",
                               cases[i].started, "size_bytes", (json_int_t)cases[i].bytes);
        char *html = NULL;
        assert_int_equal(status_render(in, NOW_MS, &html, NULL, NULL), 0);
        if (strstr(html, cases[i].age) == NULL || strstr(html, cases[i].size) == NULL)
            fail_msg("case %zu: %s and %s not in the page", i, cases[i].age, cases[i].size);
        free(html);
        json_decref(in);
    }
}

static void test_status_render_run_notes(void **state)
{
    (void)state;
    char *html = render("{\"schedule\": {\"speed\": 60, \"runs\": ["
                        "{\"schedule\": \"v\", \"agent\": \"a\", \"database\": \"d\", "
                        "\"run_at\": null, \"action\": \"restore-test\", \"due_now\": true},"
                        "{\"schedule\": \"w\", \"agent\": \"a\", \"database\": \"d\", "
                        "\"run_at\": \"2026-11-22T03:00:00.000Z\", \"action\": \"backup\", "
                        "\"merged_into\": \"v\"}]}}");
    char *runs = section(html, "next-runs");
    assert_non_null(strstr(runs, "60 times faster"));
    assert_non_null(strstr(runs, "<td>v</td><td>a/d</td><td class=\"none\">never again</td>"
                                 "<td>restore-test due now </td>"));
    assert_non_null(strstr(runs, "<td>w</td><td>a/d</td><td>2026-11-22T03:00:00.000Z</td>"
                                 "<td>runs with v</td>"));
    free(runs);
    free(html);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_status_auth_bearer),
        cmocka_unit_test(test_status_auth_basic),
        cmocka_unit_test(test_status_auth_basic_hostile),
        cmocka_unit_test(test_status_is_page),
        cmocka_unit_test(test_status_render_sections),
        cmocka_unit_test(test_status_render_empty),
        cmocka_unit_test(test_status_render_escapes_hostile_text),
        cmocka_unit_test(test_status_render_cuts_long_text),
        cmocka_unit_test(test_status_render_caps_rows),
        cmocka_unit_test(test_status_render_ages_and_sizes),
        cmocka_unit_test(test_status_render_run_notes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
