/*
 * Tests of the metrics registry (coordinator/metrics.c): the exact text of a few series, value
 * formatting, escaping, hostile label values (long, invalid UTF-8), declaration checks, the
 * series bound, render hooks, and several threads updating while another renders.
 */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/error.h"
#include "coordinator/metrics.h"

#define L(...) ((const char *const[]){__VA_ARGS__, NULL})

static char *render(metrics *m)
{
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(metrics_render(m, &text, &len), 0);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    return text;
}

static void assert_render(metrics *m, const char *want)
{
    char *text = render(m);
    if (strcmp(text, want) != 0)
        fail_msg("rendered:\n%s\nwanted:\n%s", text, want);
    free(text);
}

static void test_metrics_render_exact(void **state)
{
    (void)state;
    metrics *m;
    assert_int_equal(metrics_new(&m), 0);
    assert_int_equal(metrics_declare(m, "pgship_backups_total", METRICS_COUNTER,
                                     "Backups that ended.", L("agent", "database", "result")),
                     0);
    assert_int_equal(
        metrics_declare(m, "pgship_agents_connected", METRICS_GAUGE, "Agents connected now.", NULL),
        0);
    assert_int_equal(metrics_declare(m, "pgship_storage_errors_total", METRICS_COUNTER,
                                     "Storage errors.", L("op")),
                     0);
    /* a labelled metric without series shows its HELP and TYPE only; an unlabelled one is 0 */
    assert_render(m, "# HELP pgship_agents_connected Agents connected now.\n"
                     "# TYPE pgship_agents_connected gauge\n"
                     "pgship_agents_connected 0\n"
                     "# HELP pgship_backups_total Backups that ended.\n"
                     "# TYPE pgship_backups_total counter\n"
                     "# HELP pgship_storage_errors_total Storage errors.\n"
                     "# TYPE pgship_storage_errors_total counter\n");

    metrics_add(m, "pgship_backups_total", L("db1", "app", "success"), 1);
    metrics_add(m, "pgship_backups_total", L("db1", "app", "success"), 1);
    metrics_add(m, "pgship_backups_total", L("db1", "app", "failure"), 1);
    metrics_add(m, "pgship_backups_total", L("db0", "zz", "success"), 1);
    metrics_set(m, "pgship_agents_connected", NULL, 3);
    metrics_add(m, "pgship_storage_errors_total", L("put"), 0.5);
    assert_render(m, "# HELP pgship_agents_connected Agents connected now.\n"
                     "# TYPE pgship_agents_connected gauge\n"
                     "pgship_agents_connected 3\n"
                     "# HELP pgship_backups_total Backups that ended.\n"
                     "# TYPE pgship_backups_total counter\n"
                     "pgship_backups_total{agent=\"db0\",database=\"zz\",result=\"success\"} 1\n"
                     "pgship_backups_total{agent=\"db1\",database=\"app\",result=\"failure\"} 1\n"
                     "pgship_backups_total{agent=\"db1\",database=\"app\",result=\"success\"} 2\n"
                     "# HELP pgship_storage_errors_total Storage errors.\n"
                     "# TYPE pgship_storage_errors_total counter\n"
                     "pgship_storage_errors_total{op=\"put\"} 0.5\n");

    metrics_remove_series(m, "pgship_backups_total", L("db1", "app", "failure"));
    metrics_remove_series(m, "pgship_backups_total", L("nope", "app", "failure"));
    metrics_clear(m, "pgship_storage_errors_total");
    metrics_clear(m, "pgship_agents_connected");
    assert_render(m, "# HELP pgship_agents_connected Agents connected now.\n"
                     "# TYPE pgship_agents_connected gauge\n"
                     "pgship_agents_connected 0\n"
                     "# HELP pgship_backups_total Backups that ended.\n"
                     "# TYPE pgship_backups_total counter\n"
                     "pgship_backups_total{agent=\"db0\",database=\"zz\",result=\"success\"} 1\n"
                     "pgship_backups_total{agent=\"db1\",database=\"app\",result=\"success\"} 2\n"
                     "# HELP pgship_storage_errors_total Storage errors.\n"
                     "# TYPE pgship_storage_errors_total counter\n");
    assert_int_equal(metrics_series_count(m), 3);
    assert_int_equal(metrics_rejected(m), 0);
    metrics_free(m);
}

static void test_metrics_render_empty(void **state)
{
    (void)state;
    metrics *m;
    assert_int_equal(metrics_new(&m), 0);
    assert_render(m, "");
    metrics_free(m);
    metrics_free(NULL);
}

/* Series order is by the first label value, then the next: a value that is a prefix of another
 * sorts first, whatever the values after it. */
static void test_metrics_series_sorted_by_values(void **state)
{
    (void)state;
    metrics *m;
    assert_int_equal(metrics_new(&m), 0);
    assert_int_equal(metrics_declare(m, "x", METRICS_GAUGE, "h", L("a", "b")), 0);
    metrics_set(m, "x", L("ab", "a"), 1);
    metrics_set(m, "x", L("a", "zz"), 2);
    metrics_set(m, "x", L("", "b"), 3);
    metrics_set(m, "x", L("a", "b"), 4);
    assert_render(m, "# HELP x h\n# TYPE x gauge\n"
                     "x{a=\"\",b=\"b\"} 3\n"
                     "x{a=\"a\",b=\"b\"} 4\n"
                     "x{a=\"a\",b=\"zz\"} 2\n"
                     "x{a=\"ab\",b=\"a\"} 1\n");
    metrics_free(m);
}

static void test_metrics_escaping(void **state)
{
    (void)state;
    metrics *m;
    assert_int_equal(metrics_new(&m), 0);
    assert_int_equal(metrics_declare(m, "esc:total", METRICS_COUNTER,
                                     "a \\ backslash,\na newline and \"quotes\"", L("v")),
                     0);
    metrics_add(m, "esc:total", L("back\\slash \"quoted\"\nnext line"), 7);
    assert_render(m, "# HELP esc:total a \\\\ backslash,\\na newline and \"quotes\"\n"
                     "# TYPE esc:total counter\n"
                     "esc:total{v=\"back\\\\slash \\\"quoted\\\"\\nnext line\"} 7\n");
    metrics_free(m);
}

static void check_value(double v, const char *want)
{
    char out[40];
    size_t n = metrics_format_value(v, out, sizeof(out));
    assert_string_equal(out, want);
    assert_int_equal(n, strlen(want));
}

static void test_metrics_format_value(void **state)
{
    (void)state;
    check_value(0, "0");
    check_value(1, "1");
    check_value(-1, "-1");
    check_value(0.1, "0.1");
    check_value(1.0 / 3, "0.3333333333333333");
    check_value(1e6, "1000000");
    check_value(123456789012.0, "123456789012");
    check_value(1732205129.123, "1732205129.123");
    check_value(9007199254740993.0, "9007199254740992"); /* the double it really is */
    check_value(1e300, "1e+300");
    check_value(5e-324, "4.94065645841247e-324");
    check_value(-0.0, "-0");
    check_value(INFINITY, "+Inf");
    check_value(-INFINITY, "-Inf");
    check_value(NAN, "NaN");
}

static void test_metrics_special_values_rendered(void **state)
{
    (void)state;
    metrics *m;
    assert_int_equal(metrics_new(&m), 0);
    assert_int_equal(metrics_declare(m, "g", METRICS_GAUGE, "h", L("k")), 0);
    metrics_set(m, "g", L("inf"), INFINITY);
    metrics_set(m, "g", L("nan"), NAN);
    metrics_set(m, "g", L("neg"), -INFINITY);
    assert_render(m, "# HELP g h\n# TYPE g gauge\n"
                     "g{k=\"inf\"} +Inf\n"
                     "g{k=\"nan\"} NaN\n"
                     "g{k=\"neg\"} -Inf\n");
    metrics_free(m);
}

/* The one label value of the only series of metric "v", as rendered (no escapes involved). */
static char *rendered_value(metrics *m)
{
    char *text = render(m);
    char *p = strstr(text, "v{k=\"");
    assert_non_null(p);
    p += 5;
    char *q = strstr(p, "\"} 1\n");
    assert_non_null(q);
    char *out = strndup(p, (size_t)(q - p));
    free(text);
    return out;
}

static void test_metrics_label_value_cut_and_sanitized(void **state)
{
    (void)state;
    metrics *m;
    char *big = malloc(5000);
    assert_int_equal(metrics_new(&m), 0);
    assert_int_equal(metrics_declare(m, "v", METRICS_GAUGE, "h", L("k")), 0);

    /* 2-byte characters: the cut lands on a boundary at exactly 1024 bytes */
    big[0] = '\0';
    for (int i = 0; i < 1000; i++)
        strcat(big, "\xc3\xa9");
    metrics_set(m, "v", L(big), 1);
    char *got = rendered_value(m);
    assert_int_equal(strlen(got), METRICS_LABEL_VALUE_MAX);
    free(got);
    metrics_clear(m, "v");

    /* "ab" then 3-byte characters: 1022 bytes fit, the next character would cross 1024 */
    strcpy(big, "ab");
    for (int i = 0; i < 1000; i++)
        strcat(big, "\xe2\x82\xac");
    metrics_set(m, "v", L(big), 1);
    got = rendered_value(m);
    assert_int_equal(strlen(got), 1022);
    assert_memory_equal(got + 1019, "\xe2\x82\xac", 3);
    free(got);
    metrics_clear(m, "v");

    /* invalid UTF-8 becomes U+FFFD per bad byte: a stray continuation, a truncated sequence,
     * an overlong slash, a surrogate, a code point past U+10FFFF, 0xff */
    metrics_set(m, "v",
                L("a\x80"
                  "b\xc3"
                  "c\xc0\xaf"
                  "d\xed\xa0\x80"
                  "e\xf4\x90\x80\x80"
                  "f\xff"),
                1);
    got = rendered_value(m);
    assert_string_equal(got, "a\xef\xbf\xbd"
                             "b\xef\xbf\xbd"
                             "c\xef\xbf\xbd\xef\xbf\xbd"
                             "d\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                             "e\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                             "f\xef\xbf\xbd");
    free(got);
    metrics_clear(m, "v");

    /* valid 4-byte characters stay */
    metrics_set(m, "v", L("\xf0\x9f\x98\x80 ok"), 1);
    got = rendered_value(m);
    assert_string_equal(got, "\xf0\x9f\x98\x80 ok");
    free(got);

    /* two values that are the same after the cut are the same series */
    metrics_clear(m, "v");
    memset(big, 'x', 4000);
    big[4000] = '\0';
    metrics_add(m, "v", L(big), 0.5);
    big[3000] = 'y';
    metrics_add(m, "v", L(big), 0.5);
    assert_int_equal(metrics_series_count(m), 1);
    free(big);
    metrics_free(m);
}

static void test_metrics_declare_checks(void **state)
{
    (void)state;
    metrics *m;
    char longname[METRICS_NAME_MAX + 2];
    assert_int_equal(metrics_new(&m), 0);
    assert_int_equal(metrics_declare(m, "", METRICS_GAUGE, "h", NULL), PGS_EINVAL);
    assert_int_equal(metrics_declare(m, "1abc", METRICS_GAUGE, "h", NULL), PGS_EINVAL);
    assert_int_equal(metrics_declare(m, "a-b", METRICS_GAUGE, "h", NULL), PGS_EINVAL);
    assert_int_equal(metrics_declare(m, "a b", METRICS_GAUGE, "h", NULL), PGS_EINVAL);
    assert_int_equal(metrics_declare(m, "a", (metrics_type)7, "h", NULL), PGS_EINVAL);
    assert_int_equal(metrics_declare(m, "a", METRICS_GAUGE, NULL, NULL), PGS_EINVAL);
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(metrics_declare(m, longname, METRICS_GAUGE, "h", NULL), PGS_EINVAL);
    longname[METRICS_NAME_MAX] = '\0';
    assert_int_equal(metrics_declare(m, longname, METRICS_GAUGE, "h", NULL), 0);
    assert_int_equal(metrics_declare(m, ":ok_1:", METRICS_GAUGE, "h", NULL), 0);

    /* label names: no colon, not reserved, distinct, at most METRICS_LABELS_MAX */
    assert_int_equal(metrics_declare(m, "l", METRICS_GAUGE, "h", L("a:b")), PGS_EINVAL);
    assert_int_equal(metrics_declare(m, "l", METRICS_GAUGE, "h", L("__name__")), PGS_EINVAL);
    assert_int_equal(metrics_declare(m, "l", METRICS_GAUGE, "h", L("le")), PGS_EINVAL);
    assert_int_equal(metrics_declare(m, "l", METRICS_GAUGE, "h", L("a", "b", "a")), PGS_EINVAL);
    assert_int_equal(metrics_declare(m, "l", METRICS_GAUGE, "h", L("9")), PGS_EINVAL);
    assert_int_equal(
        metrics_declare(m, "l", METRICS_GAUGE, "h", L("a", "b", "c", "d", "e", "f", "g", "h", "i")),
        PGS_ELIMIT);
    assert_int_equal(metrics_declare(m, "l", METRICS_GAUGE, "h", L("_a", "B9")), 0);

    /* the same again is fine; different is not */
    assert_int_equal(metrics_declare(m, "l", METRICS_GAUGE, "other help", L("_a", "B9")), 0);
    assert_int_equal(metrics_declare(m, "l", METRICS_COUNTER, "h", L("_a", "B9")), PGS_EEXIST);
    assert_int_equal(metrics_declare(m, "l", METRICS_GAUGE, "h", L("_a")), PGS_EEXIST);
    assert_int_equal(metrics_declare(m, "l", METRICS_GAUGE, "h", L("_a", "B9", "c")), PGS_EEXIST);
    assert_int_equal(metrics_declare(m, "l", METRICS_GAUGE, "h", NULL), PGS_EEXIST);

    char *help = malloc(METRICS_HELP_MAX + 2);
    memset(help, 'h', METRICS_HELP_MAX + 1);
    help[METRICS_HELP_MAX + 1] = '\0';
    assert_int_equal(metrics_declare(m, "toolong", METRICS_GAUGE, help, NULL), PGS_EINVAL);
    free(help);

    /* the metric count is bounded too */
    int rc = 0;
    for (int i = 0; i < METRICS_METRICS_MAX + 1 && rc == 0; i++) {
        char name[32];
        snprintf(name, sizeof(name), "many_%d", i);
        rc = metrics_declare(m, name, METRICS_COUNTER, "h", L("x"));
    }
    assert_int_equal(rc, PGS_ELIMIT);
    metrics_free(m);
}

static void test_metrics_rejected_updates(void **state)
{
    (void)state;
    metrics *m;
    assert_int_equal(metrics_new(&m), 0);
    assert_int_equal(metrics_declare(m, "c_total", METRICS_COUNTER, "h", L("a", "b")), 0);
    assert_int_equal(metrics_declare(m, "g", METRICS_GAUGE, "h", NULL), 0);
    metrics_add(m, "nope", L("x"), 1);
    metrics_add(m, NULL, NULL, 1);
    metrics_add(m, "c_total", L("x"), 1);
    metrics_add(m, "c_total", L("x", "y", "z"), 1);
    metrics_add(m, "c_total", NULL, 1);
    metrics_add(m, "c_total", L("x", "y"), -1);
    metrics_add(m, "c_total", L("x", "y"), NAN);
    metrics_add(m, "c_total", L("1", "2", "3", "4", "5", "6", "7", "8", "9"), 1);
    metrics_set(m, "g", L("x"), 1);
    assert_int_equal(metrics_rejected(m), 9);
    /* a counter may be set (mirroring a count kept elsewhere), a gauge may go down */
    metrics_set(m, "c_total", L("x", "y"), 41);
    metrics_add(m, "c_total", L("x", "y"), 1);
    metrics_add(m, "g", NULL, -2.5);
    assert_int_equal(metrics_rejected(m), 9);
    assert_render(m, "# HELP c_total h\n# TYPE c_total counter\n"
                     "c_total{a=\"x\",b=\"y\"} 42\n"
                     "# HELP g h\n# TYPE g gauge\n"
                     "g -2.5\n");
    metrics_free(m);
}

static void test_metrics_series_bound(void **state)
{
    (void)state;
    metrics *m;
    char v[32];
    assert_int_equal(metrics_new(&m), 0);
    assert_int_equal(metrics_declare(m, "s", METRICS_GAUGE, "h", L("i")), 0);
    for (int i = 0; i < METRICS_SERIES_MAX; i++) {
        snprintf(v, sizeof(v), "%d", i);
        metrics_set(m, "s", L(v), i);
    }
    assert_int_equal(metrics_series_count(m), METRICS_SERIES_MAX);
    assert_int_equal(metrics_rejected(m), 0);

    /* past the bound: new series are left out, existing ones still change */
    metrics_set(m, "s", L("new"), 1);
    assert_int_equal(metrics_rejected(m), 1);
    assert_int_equal(metrics_declare(m, "unlabelled", METRICS_GAUGE, "h", NULL), PGS_ELIMIT);
    assert_int_equal(metrics_declare(m, "labelled", METRICS_GAUGE, "h", L("x")), 0);
    metrics_set(m, "labelled", L("x"), 1);
    assert_int_equal(metrics_rejected(m), 2);
    metrics_set(m, "s", L("7"), 70);
    assert_int_equal(metrics_rejected(m), 2);

    /* a removed series makes room */
    metrics_remove_series(m, "s", L("0"));
    metrics_set(m, "s", L("new"), 1);
    assert_int_equal(metrics_rejected(m), 2);
    assert_int_equal(metrics_series_count(m), METRICS_SERIES_MAX);

    char *text = render(m);
    size_t lines = 0;
    for (char *p = text; *p != '\0'; p++)
        lines += *p == '\n';
    assert_int_equal(lines, METRICS_SERIES_MAX + 4); /* and 2 HELP + 2 TYPE */
    assert_non_null(strstr(text, "\ns{i=\"7\"} 70\n"));
    assert_non_null(strstr(text, "\ns{i=\"new\"} 1\n"));
    assert_null(strstr(text, "\ns{i=\"0\"}"));
    free(text);

    metrics_clear(m, "s");
    assert_int_equal(metrics_series_count(m), 0);
    metrics_free(m);
}

typedef struct hook_state {
    int calls;
    int stale; /* the database that went away after the first render */
} hook_state;

static void refresh(void *arg, metrics *m)
{
    hook_state *h = arg;
    h->calls++;
    metrics_set(m, "renders", NULL, h->calls);
    metrics_clear(m, "overdue");
    metrics_set(m, "overdue", L("app"), 1);
    if (h->calls == 1)
        metrics_set(m, "overdue", L("old"), 0);
}

static void test_metrics_render_hook(void **state)
{
    (void)state;
    metrics *m;
    hook_state h = {0};
    assert_int_equal(metrics_new(&m), 0);
    assert_int_equal(metrics_declare(m, "renders", METRICS_GAUGE, "h", NULL), 0);
    assert_int_equal(metrics_declare(m, "overdue", METRICS_GAUGE, "h", L("database")), 0);
    assert_int_equal(metrics_on_render(m, refresh, &h), 0);
    assert_render(m, "# HELP overdue h\n# TYPE overdue gauge\n"
                     "overdue{database=\"app\"} 1\n"
                     "overdue{database=\"old\"} 0\n"
                     "# HELP renders h\n# TYPE renders gauge\n"
                     "renders 1\n");
    assert_render(m, "# HELP overdue h\n# TYPE overdue gauge\n"
                     "overdue{database=\"app\"} 1\n"
                     "# HELP renders h\n# TYPE renders gauge\n"
                     "renders 2\n");
    for (int i = 1; i < METRICS_RENDER_HOOKS_MAX; i++)
        assert_int_equal(metrics_on_render(m, refresh, &h), 0);
    assert_int_equal(metrics_on_render(m, refresh, &h), PGS_ELIMIT);
    metrics_free(m);
}

static void test_metrics_standard_names(void **state)
{
    (void)state;
    metrics *m;
    assert_int_equal(metrics_new(&m), 0);
    assert_int_equal(metrics_declare_standard(m), 0);
    assert_int_equal(metrics_declare_standard(m), 0); /* twice is fine */
    metrics_set(m, METRICS_BACKUP_LAST_SUCCESS, L("db1", "app", "prod"), 1732205129);
    metrics_add(m, METRICS_BACKUP_FAILURES, L("db1", "app", "storage"), 1);
    metrics_set(m, METRICS_BACKUP_OVERDUE, L("db1", "app"), 1);
    assert_int_equal(metrics_rejected(m), 0);
    char *text = render(m);
    static const char *const want[] = {
        "# TYPE pgship_backup_last_success_timestamp_seconds gauge\n",
        ("pgship_backup_last_success_timestamp_seconds{agent=\"db1\",database=\"app\","
         "environment=\"prod\"} 1732205129\n"),
        "# TYPE pgship_backup_duration_seconds gauge\n",
        "# TYPE pgship_backup_bytes gauge\n",
        "# TYPE pgship_backups_total counter\n",
        "pgship_backup_failures_total{agent=\"db1\",database=\"app\",reason=\"storage\"} 1\n",
        "pgship_backup_overdue{agent=\"db1\",database=\"app\"} 1\n",
        "\npgship_agents_connected 0\n",
        "# TYPE pgship_storage_errors_total counter\n",
        "# TYPE pgship_storage_retries_total counter\n",
        "\npgship_jobs_queued 0\n",
        "\npgship_jobs_running 0\n",
        "# TYPE pgship_restores_total counter\n",
        "# TYPE pgship_verifications_total counter\n",
        "# TYPE pgship_webhook_deliveries_total counter\n",
        "# TYPE pgship_webhook_retries_total counter\n",
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        if (strstr(text, want[i]) == NULL)
            fail_msg("missing \"%s\" in:\n%s", want[i], text);
    free(text);
    metrics_free(m);
}

#define THREADS 6
#define ROUNDS 20000

typedef struct worker {
    metrics *m;
    int id;
} worker;

static void *adder(void *arg)
{
    worker *w = arg;
    char mine[16];
    snprintf(mine, sizeof(mine), "t%d", w->id);
    for (int i = 0; i < ROUNDS; i++) {
        metrics_add(w->m, "ops_total", L("shared"), 1);
        metrics_add(w->m, "ops_total", L(mine), 0.5);
        metrics_set(w->m, "last", L(mine), i);
    }
    return NULL;
}

static void *renderer(void *arg)
{
    metrics *m = arg;
    for (int i = 0; i < 50; i++) {
        char *text;
        size_t len;
        assert_int_equal(metrics_render(m, &text, &len), 0);
        free(text);
    }
    return NULL;
}

static void test_metrics_threads_add(void **state)
{
    (void)state;
    metrics *m;
    pthread_t th[THREADS + 1];
    worker w[THREADS];
    assert_int_equal(metrics_new(&m), 0);
    assert_int_equal(metrics_declare(m, "ops_total", METRICS_COUNTER, "h", L("t")), 0);
    assert_int_equal(metrics_declare(m, "last", METRICS_GAUGE, "h", L("t")), 0);
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){m, i};
        assert_int_equal(pthread_create(&th[i], NULL, adder, &w[i]), 0);
    }
    assert_int_equal(pthread_create(&th[THREADS], NULL, renderer, m), 0);
    for (int i = 0; i <= THREADS; i++)
        pthread_join(th[i], NULL);

    char *text = render(m);
    char line[128];
    snprintf(line, sizeof(line), "ops_total{t=\"shared\"} %d\n", THREADS * ROUNDS);
    assert_non_null(strstr(text, line));
    for (int i = 0; i < THREADS; i++) {
        snprintf(line, sizeof(line), "ops_total{t=\"t%d\"} %d\n", i, ROUNDS / 2);
        assert_non_null(strstr(text, line));
        snprintf(line, sizeof(line), "last{t=\"t%d\"} %d\n", i, ROUNDS - 1);
        assert_non_null(strstr(text, line));
    }
    free(text);
    assert_int_equal(metrics_series_count(m), 2 * THREADS + 1);
    assert_int_equal(metrics_rejected(m), 0);
    metrics_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_render_exact),
        cmocka_unit_test(test_metrics_render_empty),
        cmocka_unit_test(test_metrics_series_sorted_by_values),
        cmocka_unit_test(test_metrics_escaping),
        cmocka_unit_test(test_metrics_format_value),
        cmocka_unit_test(test_metrics_special_values_rendered),
        cmocka_unit_test(test_metrics_label_value_cut_and_sanitized),
        cmocka_unit_test(test_metrics_declare_checks),
        cmocka_unit_test(test_metrics_rejected_updates),
        cmocka_unit_test(test_metrics_series_bound),
        cmocka_unit_test(test_metrics_render_hook),
        cmocka_unit_test(test_metrics_standard_names),
        cmocka_unit_test(test_metrics_threads_add),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
