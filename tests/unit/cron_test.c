/*
 * Tests of cron expressions (common/cron.c): a table of expressions with their next run after a
 * given instant (every field kind, month ends, February 29 in 2000, 2028 and not 2100, the
 * day-of-month/day-of-week rule, macros, Sunday as 0 and 7, DST gaps and overlaps in Berlin, New
 * York and Lord Howe's half-hour shift, Kolkata's half-hour offset), runs counted over a whole
 * year through both DST switches, a comparison with a brute-force minute-by-minute search around
 * the switches, normalized text, the search bounds, and every kind of malformed expression.
 * Zones come from /usr/share/zoneinfo; the tests that need them are skipped (and say so) when
 * tzdata is missing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>

#include "common/cron.h"
#include "common/tzfile.h"
#include "tests/unit/testutil.h"

#define ZONEINFO "/usr/share/zoneinfo"

static int64_t iso(const char *s)
{
    int y, mo, d, h, mi, se;
    if (sscanf(s, "%d-%d-%dT%d:%d:%dZ", &y, &mo, &d, &h, &mi, &se) != 6)
        fail_msg("bad time %s", s);
    return tz_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
}

static int have_tzdata(void)
{
    static const char *const need[] = {"Europe/Berlin", "America/New_York", "Asia/Kolkata",
                                       "Australia/Lord_Howe"};
    for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
        char path[128];
        struct stat st;
        snprintf(path, sizeof(path), ZONEINFO "/%s", need[i]);
        if (stat(path, &st) != 0) {
            print_message("tzdata is missing: no %s; zone tests skipped\n", path);
            return 0;
        }
    }
    return 1;
}

static cron_expr *parse(const char *zone, const char *text)
{
    char buf[512];
    if (zone != NULL)
        snprintf(buf, sizeof(buf), "CRON_TZ=%s %s", zone, text);
    else
        snprintf(buf, sizeof(buf), "%s", text);
    cron_expr *c = NULL;
    pgs_error e = {0};
    if (cron_parse_dir(buf, ZONEINFO, &c, &e) != 0)
        fail_msg("cron_parse \"%s\": %s", buf, e.msg);
    return c;
}

static int64_t next_of(const cron_expr *c, int64_t after)
{
    int64_t n = 0;
    pgs_error e = {0};
    if (cron_next(c, after, &n, &e) != 0)
        fail_msg("cron_next \"%s\": %s", cron_text(c), e.msg);
    return n;
}

struct row {
    const char *expr;
    const char *zone; /* NULL: UTC */
    const char *after, *next;
};

/* 2024-01-01 is a Monday. Berlin: CET (+1) / CEST (+2), switches at 01:00Z on the last Sundays
 * of March (02:00 -> 03:00) and October (03:00 -> 02:00). New York: EST (-5) / EDT (-4), at
 * 02:00 local on the second Sunday of March and the first of November (07:00Z and 06:00Z in
 * 2024). Lord Howe: +10:30 / +11, 2024-04-07 02:00 -> 01:30 (15:00Z the day before) and
 * 2024-10-06 02:00 -> 02:30 (15:30Z the day before). */
static const struct row rows[] = {
    /* every field kind */
    {"* * * * *", NULL, "2024-01-01T00:00:00Z", "2024-01-01T00:01:00Z"},
    {"* * * * *", NULL, "2024-01-01T00:00:30Z", "2024-01-01T00:01:00Z"},
    {"0 * * * *", NULL, "2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z"},
    {"*/15 * * * *", NULL, "2024-01-01T00:50:00Z", "2024-01-01T01:00:00Z"},
    {"5-10/2 * * * *", NULL, "2024-01-01T00:07:00Z", "2024-01-01T00:09:00Z"},
    {"5,10,59 * * * *", NULL, "2024-01-01T00:10:00Z", "2024-01-01T00:59:00Z"},
    {"30 2 * * *", NULL, "2024-01-01T03:00:00Z", "2024-01-02T02:30:00Z"},
    {"0 0-23/6 * * *", NULL, "2024-01-01T06:00:00Z", "2024-01-01T12:00:00Z"},
    {"0 9-17 * * 1-5", NULL, "2024-01-05T17:00:00Z", "2024-01-08T09:00:00Z"},
    {"0 9 * * mon-FRI", NULL, "2024-01-05T09:00:00Z", "2024-01-08T09:00:00Z"},
    {"0 0 * * 1-7/3", NULL, "2024-01-01T00:00:00Z", "2024-01-04T00:00:00Z"}, /* Mon Thu Sun */
    {"0 0 1 */3 *", NULL, "2024-01-01T00:00:00Z", "2024-04-01T00:00:00Z"},
    {"0 0 1 FEB-APR/2 *", NULL, "2024-02-01T00:00:00Z", "2024-04-01T00:00:00Z"},
    {"0 0 1 jan *", NULL, "2024-06-01T00:00:00Z", "2025-01-01T00:00:00Z"},
    {"59 23 31 12 *", NULL, "2024-12-31T23:59:00Z", "2025-12-31T23:59:00Z"},
    {"0 12 * 2 *", NULL, "2024-02-29T12:00:00Z", "2025-02-01T12:00:00Z"},
    /* month ends: the 31st (or 30th) is skipped in months without it */
    {"0 0 31 * *", NULL, "2024-01-31T00:00:00Z", "2024-03-31T00:00:00Z"},
    {"0 0 31 * *", NULL, "2024-03-31T00:00:00Z", "2024-05-31T00:00:00Z"},
    {"0 0 30 * *", NULL, "2024-01-30T00:00:00Z", "2024-03-30T00:00:00Z"},
    {"0 0 29-31 * *", NULL, "2023-01-31T00:00:00Z", "2023-03-29T00:00:00Z"},
    /* February 29 */
    {"0 0 29 2 *", NULL, "2024-03-01T00:00:00Z", "2028-02-29T00:00:00Z"},
    {"0 0 29 2 *", NULL, "1999-03-01T00:00:00Z", "2000-02-29T00:00:00Z"},   /* 2000 is leap */
    {"0 0 29 2 *", NULL, "2096-03-01T00:00:00Z", "2104-02-29T00:00:00Z"},   /* 2100 is not */
    {"0 0 29 2 */7", NULL, "2088-03-01T00:00:00Z", "2128-02-29T00:00:00Z"}, /* and a Sunday */
    /* day-of-month OR day-of-week when both are restricted; AND when one starts with '*' */
    {"0 0 13 * 5", NULL, "2024-01-01T00:00:00Z", "2024-01-05T00:00:00Z"},
    {"0 0 13 * 5", NULL, "2024-01-12T00:00:00Z", "2024-01-13T00:00:00Z"},
    {"0 0 1,15 * 3", NULL, "2024-01-01T00:00:00Z", "2024-01-03T00:00:00Z"},
    {"0 0 */2 * 1", NULL, "2024-01-01T00:00:00Z", "2024-01-15T00:00:00Z"},
    {"0 0 */31 2 1", NULL, "2027-02-02T00:00:00Z", "2038-02-01T00:00:00Z"},
    /* macros */
    {"@yearly", NULL, "2024-01-01T00:00:00Z", "2025-01-01T00:00:00Z"},
    {"@annually", NULL, "2023-12-31T23:59:59Z", "2024-01-01T00:00:00Z"},
    {"@monthly", NULL, "2024-01-31T12:00:00Z", "2024-02-01T00:00:00Z"},
    {"@weekly", NULL, "2024-01-01T00:00:00Z", "2024-01-07T00:00:00Z"},
    {"@daily", NULL, "2024-02-28T00:00:00Z", "2024-02-29T00:00:00Z"},
    {"@midnight", NULL, "2023-02-28T00:00:00Z", "2023-03-01T00:00:00Z"},
    {"@hourly", NULL, "2024-01-01T00:59:59Z", "2024-01-01T01:00:00Z"},
    {"@DAILY", "Europe/Berlin", "2024-01-01T00:00:00Z", "2024-01-01T23:00:00Z"},
    /* Sunday is 0, 7 and SUN */
    {"0 0 * * 0", NULL, "2024-01-01T00:00:00Z", "2024-01-07T00:00:00Z"},
    {"0 0 * * 7", NULL, "2024-01-01T00:00:00Z", "2024-01-07T00:00:00Z"},
    {"0 0 * * sun", NULL, "2024-01-01T00:00:00Z", "2024-01-07T00:00:00Z"},
    {"0 0 * * 5-7", NULL, "2024-01-06T00:00:00Z", "2024-01-07T00:00:00Z"},
    /* Berlin, spring forward: 02:30 does not exist and runs at the end of the gap */
    {"30 2 * * *", "Europe/Berlin", "2024-03-30T12:00:00Z", "2024-03-31T01:00:00Z"},
    {"30 2 * * *", "Europe/Berlin", "2024-03-31T01:00:00Z", "2024-04-01T00:30:00Z"},
    {"0 3 * * *", "Europe/Berlin", "2024-03-30T12:00:00Z", "2024-03-31T01:00:00Z"},
    {"*/30 * * * *", "Europe/Berlin", "2024-03-31T00:45:00Z", "2024-03-31T01:00:00Z"},
    {"0 */2 * * *", "Europe/Berlin", "2024-03-31T00:30:00Z", "2024-03-31T02:00:00Z"},
    {"30 2 * * *", "Europe/Berlin", "2050-03-26T12:00:00Z", "2050-03-27T01:00:00Z"}, /* footer */
    /* Berlin, fall back: fixed times run at the first 02:30, interval ones at both */
    {"30 2 * * *", "Europe/Berlin", "2024-10-26T12:00:00Z", "2024-10-27T00:30:00Z"},
    {"30 2 * * *", "Europe/Berlin", "2024-10-27T00:30:00Z", "2024-10-28T01:30:00Z"},
    {"30 2 * * *", "Europe/Berlin", "2024-10-27T01:15:00Z", "2024-10-28T01:30:00Z"},
    {"0 1-3 * * *", "Europe/Berlin", "2024-10-27T00:00:00Z", "2024-10-27T02:00:00Z"},
    {"0 * * * *", "Europe/Berlin", "2024-10-27T00:30:00Z", "2024-10-27T01:00:00Z"},
    {"*/15 2 * * *", "Europe/Berlin", "2024-10-27T00:45:00Z", "2024-10-27T01:00:00Z"},
    /* New York */
    {"0 2 * * *", "America/New_York", "2024-03-09T12:00:00Z", "2024-03-10T07:00:00Z"},
    {"0 2 * * *", "America/New_York", "2050-03-12T12:00:00Z", "2050-03-13T07:00:00Z"},
    {"0 */2 * * *", "America/New_York", "2024-03-10T05:30:00Z", "2024-03-10T08:00:00Z"},
    {"30 1 * * *", "America/New_York", "2024-11-02T12:00:00Z", "2024-11-03T05:30:00Z"},
    {"30 1 * * *", "America/New_York", "2024-11-03T05:30:00Z", "2024-11-04T06:30:00Z"},
    {"30 * * * *", "America/New_York", "2024-11-03T05:30:00Z", "2024-11-03T06:30:00Z"},
    {"0 0 * * *", "America/New_York", "2024-11-03T03:00:00Z", "2024-11-03T04:00:00Z"},
    {"0 9 * * 1-5", "America/New_York", "2024-03-08T15:00:00Z", "2024-03-11T13:00:00Z"},
    /* Kolkata: +05:30 all year */
    {"0 9 * * *", "Asia/Kolkata", "2024-01-01T00:00:00Z", "2024-01-01T03:30:00Z"},
    {"*/45 * * * *", "Asia/Kolkata", "2024-01-01T00:00:00Z", "2024-01-01T00:15:00Z"},
    /* Lord Howe: a 30-minute daylight saving shift */
    {"45 1 * * *", "Australia/Lord_Howe", "2024-04-06T12:00:00Z", "2024-04-06T14:45:00Z"},
    {"45 1 * * *", "Australia/Lord_Howe", "2024-04-06T14:45:00Z", "2024-04-07T15:15:00Z"},
    {"45 * * * *", "Australia/Lord_Howe", "2024-04-06T14:45:00Z", "2024-04-06T15:15:00Z"},
    {"15 2 * * *", "Australia/Lord_Howe", "2024-10-05T12:00:00Z", "2024-10-05T15:30:00Z"},
    {"15 2 * * *", "Australia/Lord_Howe", "2024-10-05T15:30:00Z", "2024-10-06T15:15:00Z"},
    /* explicit UTC */
    {"0 0 * * *", "UTC", "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"},
    {"0 0 * * *", "Etc/UTC", "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"},
};

static void test_cron_next_table(void **state)
{
    (void)state;
    int tzdata = have_tzdata();
    size_t checked = 0;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const struct row *r = &rows[i];
        if (r->zone != NULL && strstr(r->zone, "UTC") == NULL && !tzdata)
            continue;
        cron_expr *c = parse(r->zone, r->expr);
        char got[32];
        tz_format_utc(next_of(c, iso(r->after)), got, sizeof(got));
        if (strcmp(got, r->next) != 0)
            fail_msg("row %zu: \"%s\" in %s after %s: got %s, expected %s", i, r->expr,
                     r->zone ? r->zone : "UTC", r->after, got, r->next);
        cron_free(c);
        checked++;
    }
    assert_true(checked >= 40);
}

/* Runs counted through Berlin's and New York's 2024, both switches included. */
static void test_cron_year_counts(void **state)
{
    (void)state;
    if (!have_tzdata())
        skip();
    static const struct {
        const char *zone, *expr;
        int runs;
    } counts[] = {
        {"Europe/Berlin", "30 2 * * *", 366}, /* the gap day once, the overlap day once */
        {"Europe/Berlin", "0 2 * * *", 366},
        {"Europe/Berlin", "0 * * * *", 8784},    /* every real hour: 23 + 25 on the switch days */
        {"Europe/Berlin", "*/15 2 * * *", 1464}, /* 4 a day, none on Mar 31, 8 on Oct 27 */
        {"Europe/Berlin", "0 1-3 * * *", 1097},  /* 3 a day, 2 on Mar 31 (02:00 runs at 03:00) */
        {"America/New_York", "30 1 * * *", 366},
        {"America/New_York", "0 2 * * *", 366},
        {"America/New_York", "@hourly", 8784},
        {"America/New_York", "@weekly", 52},
    };
    for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
        cron_expr *c = parse(counts[i].zone, counts[i].expr);
        tz_zone *z = NULL;
        pgs_error e = {0};
        assert_int_equal(tz_load(ZONEINFO, counts[i].zone, &z, &e), 0);
        /* the local year 2024: from local 2024-01-01 00:00 to 2025-01-01 00:00 */
        int64_t from = iso("2024-01-01T00:00:00Z"), to = iso("2025-01-01T00:00:00Z");
        from -= tz_utc_offset(z, from);
        to -= tz_utc_offset(z, to);
        int n = 0;
        int64_t prev = 0;
        for (int64_t t = next_of(c, from - 1); t < to; t = next_of(c, t)) {
            assert_true(t > prev);
            prev = t;
            n++;
        }
        if (n != counts[i].runs)
            fail_msg("\"%s\" in %s: %d runs in 2024, expected %d", counts[i].expr, counts[i].zone,
                     n, counts[i].runs);
        tz_free(z);
        cron_free(c);
    }
}

/* ---- a brute-force search to compare with ---- */

struct opt {
    const char *text;
    int lo, hi, step; /* one item: lo-hi/step */
    int lo2;          /* a second single value, or -1 */
};

static const struct opt o_min[] = {
    {"*", 0, 59, 1, -1},   {"*/15", 0, 59, 15, -1}, {"0", 0, 0, 1, -1},    {"30", 30, 30, 1, -1},
    {"0,30", 0, 0, 1, 30}, {"5-10", 5, 10, 1, -1},  {"*/7", 0, 59, 7, -1}, {"45", 45, 45, 1, -1},
};
static const struct opt o_hour[] = {
    {"*", 0, 23, 1, -1}, {"2", 2, 2, 1, -1}, {"1-3", 1, 3, 1, -1}, {"*/2", 0, 23, 2, -1},
    {"0", 0, 0, 1, -1},  {"3", 3, 3, 1, -1}, {"1,2", 1, 1, 1, 2},  {"22-23", 22, 23, 1, -1},
};
static const struct opt o_dom[] = {
    {"*", 1, 31, 1, -1},      {"*", 1, 31, 1, -1},     {"1", 1, 1, 1, -1},    {"31", 31, 31, 1, -1},
    {"15-20", 15, 20, 1, -1}, {"*/10", 1, 31, 10, -1}, {"29", 29, 29, 1, -1},
};
static const struct opt o_mon[] = {
    {"*", 1, 12, 1, -1},      {"*", 1, 12, 1, -1},   {"*", 1, 12, 1, -1}, {"3", 3, 3, 1, -1},
    {"10,11", 10, 10, 1, 11}, {"*/2", 1, 12, 2, -1}, {"4", 4, 4, 1, -1},
};
static const struct opt o_dow[] = {
    {"*", 0, 6, 1, -1},   {"*", 0, 6, 1, -1}, {"0", 0, 0, 1, -1},   {"1-5", 1, 5, 1, -1},
    {"SUN", 0, 0, 1, -1}, {"7", 0, 0, 1, -1}, {"*/3", 0, 6, 3, -1},
};

static int o_has(const struct opt *o, int v)
{
    return (v >= o->lo && v <= o->hi && (v - o->lo) % o->step == 0) || v == o->lo2;
}

struct oexpr {
    const struct opt *f[5];
};

static int o_matches(const struct oexpr *x, int64_t wall)
{
    int64_t days = wall / 86400 - (wall % 86400 < 0);
    int64_t secs = wall - days * 86400;
    int64_t y;
    int m, d;
    tz_civil_from_days(days, &y, &m, &d);
    if (!o_has(x->f[0], (int)(secs / 60 % 60)) || !o_has(x->f[1], (int)(secs / 3600)) ||
        !o_has(x->f[3], m))
        return 0;
    int dom = o_has(x->f[2], d), dow = o_has(x->f[4], tz_weekday(days));
    if (x->f[2]->text[0] == '*' || x->f[4]->text[0] == '*')
        return dom && dow;
    return dom || dow;
}

static int64_t o_ceil60(int64_t v)
{
    int64_t r = ((v % 60) + 60) % 60;
    return r == 0 ? v : v + (60 - r);
}

/* The first run after `after` by the rules of cron.h, found by walking every local minute and
 * every offset change up to `until`; 0 when there is none before it. */
static int64_t oracle(const struct oexpr *x, const tz_zone *z, int interval, int64_t after,
                      int64_t until)
{
    int64_t high = after + tz_utc_offset(z, after);
    for (int64_t u = after - 200000; u <= after; u += 60)
        if (u + tz_utc_offset(z, u) > high)
            high = u + tz_utc_offset(z, u);
    for (int64_t ch = tz_next_change(z, after - 200000); ch <= after; ch = tz_next_change(z, ch))
        if (ch - 1 + tz_utc_offset(z, ch - 1) > high)
            high = ch - 1 + tz_utc_offset(z, ch - 1);
    int64_t t = after;
    while (t < until) {
        int64_t off = tz_utc_offset(z, t + 1);
        int64_t u = t + 1 + (o_ceil60(t + 1 + off) - (t + 1 + off)); /* next local minute */
        int64_t ch = tz_next_change(z, t);
        if (ch < u)
            u = ch;
        int64_t local = u + tz_utc_offset(z, u);
        if (interval) {
            if (local % 60 == 0 && o_matches(x, local))
                return u;
        } else {
            for (int64_t w = o_ceil60(high + 1); w <= local; w += 60)
                if (o_matches(x, w))
                    return u;
            if (local > high)
                high = local;
        }
        t = u;
    }
    return 0;
}

static void test_cron_matches_brute_force(void **state)
{
    (void)state;
    if (!have_tzdata())
        skip();
    static const struct {
        const char *zone, *at;
    } around[] = {
        {"Europe/Berlin", "2024-03-31T01:00:00Z"},
        {"Europe/Berlin", "2024-10-27T01:00:00Z"},
        {"Europe/Berlin", "2061-10-30T01:00:00Z"},
        {"America/New_York", "2024-03-10T07:00:00Z"},
        {"America/New_York", "2024-11-03T06:00:00Z"},
        {"Australia/Lord_Howe", "2024-04-06T15:00:00Z"},
        {"Australia/Lord_Howe", "2024-10-05T15:30:00Z"},
        {"Asia/Kolkata", "2024-06-01T00:00:00Z"},
        {"UTC", "2024-02-28T12:00:00Z"},
    };
    srand(20240331);
    int compared = 0;
    for (size_t a = 0; a < sizeof(around) / sizeof(around[0]); a++) {
        tz_zone *z = NULL;
        pgs_error e = {0};
        assert_int_equal(tz_load(ZONEINFO, around[a].zone, &z, &e), 0);
        for (int k = 0; k < 160; k++) {
            struct oexpr x = {{&o_min[rand() % 8], &o_hour[rand() % 8], &o_dom[rand() % 7],
                               &o_mon[rand() % 7], &o_dow[rand() % 7]}};
            char text[128];
            snprintf(text, sizeof(text), "%s %s %s %s %s", x.f[0]->text, x.f[1]->text, x.f[2]->text,
                     x.f[3]->text, x.f[4]->text);
            cron_expr *c = NULL;
            if (cron_parse_dir(text, NULL, &c, &e) != 0) {
                /* only "never runs" combinations may be refused */
                assert_non_null(strstr(e.msg, "never runs"));
                continue;
            }
            cron_free(c);
            c = parse(around[a].zone, text);
            int interval = x.f[0]->text[0] == '*' || x.f[1]->text[0] == '*';
            /* half of them within two hours of the switch, inside the gap or overlap */
            int64_t after = k % 2 ? iso(around[a].at) - 7200 + rand() % 14400
                                  : iso(around[a].at) - 3 * 86400 + rand() % (4 * 86400);
            if (k % 3 == 0)
                after -= after % 60; /* on a minute */
            for (int step = 0; step < 4; step++) {
                int64_t until = after + 6 * 86400;
                int64_t want = oracle(&x, z, interval, after, until);
                int64_t got = next_of(c, after);
                if ((want != 0 && got != want) || (want == 0 && got < until)) {
                    char a1[32], g[32], w[32];
                    fail_msg("\"%s\" in %s after %s: got %s, brute force %s", text, around[a].zone,
                             tz_format_utc(after, a1, sizeof(a1)), tz_format_utc(got, g, sizeof(g)),
                             want ? tz_format_utc(want, w, sizeof(w)) : "none");
                }
                compared++;
                if (want == 0)
                    break;
                after = got; /* and the run after that */
            }
            cron_free(c);
        }
        tz_free(z);
    }
    print_message("compared %d runs with the brute-force search\n", compared);
    assert_true(compared > 1000);
}

/* ---- text, zones, bounds ---- */

static void test_cron_text_and_zone(void **state)
{
    (void)state;
    static const struct {
        const char *in, *text, *zone;
    } t[] = {
        {"  0  3 *\t* *  ", "0 3 * * *", "UTC"},
        {"CRON_TZ=UTC 0 3 * * *", "CRON_TZ=UTC 0 3 * * *", "UTC"},
        {"TZ=Etc/UTC\t@DAILY", "TZ=Etc/UTC @daily", "Etc/UTC"},
        {"@Hourly", "@hourly", "UTC"},
        {"0 9 * jan-Mar MON-fri", "0 9 * jan-Mar MON-fri", "UTC"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        cron_expr *c = NULL, *c2 = NULL;
        pgs_error e = {0};
        assert_int_equal(cron_parse(t[i].in, &c, &e), 0);
        assert_string_equal(cron_text(c), t[i].text);
        assert_string_equal(cron_zone(c), t[i].zone);
        /* the normalized text is the same schedule */
        assert_int_equal(cron_parse(cron_text(c), &c2, &e), 0);
        assert_string_equal(cron_text(c2), cron_text(c));
        int64_t a = iso("2024-01-01T00:00:00Z");
        for (int k = 0; k < 50; k++) {
            int64_t n1 = next_of(c, a), n2 = next_of(c2, a);
            assert_int_equal(n1, n2);
            a = n1;
        }
        cron_free(c);
        cron_free(c2);
    }
    if (have_tzdata()) {
        cron_expr *c = parse(NULL, "TZ=Europe/Berlin 30 2 * * *");
        assert_string_equal(cron_zone(c), "Europe/Berlin");
        assert_string_equal(cron_text(c), "TZ=Europe/Berlin 30 2 * * *");
        cron_free(c);
    }
    /* an expression of exactly CRON_TEXT_MAX bytes: its normalized text parses again */
    char big[CRON_TEXT_MAX + 1] = "TZ=UTC  ";
    for (int m = 0; m < 60; m++)
        snprintf(big + strlen(big), sizeof(big) - strlen(big), "%s%d", m ? "," : "", m);
    strcat(big, "   1-3  * * *");
    while (strlen(big) < CRON_TEXT_MAX)
        strcat(big, " ");
    cron_expr *c = NULL, *c2 = NULL;
    pgs_error e = {0};
    assert_int_equal(cron_parse(big, &c, &e), 0);
    assert_true(strlen(cron_text(c)) < CRON_TEXT_MAX);
    assert_int_equal(cron_parse(cron_text(c), &c2, &e), 0);
    cron_free(c);
    cron_free(c2);
    cron_free(NULL);
}

static void test_cron_bounds(void **state)
{
    (void)state;
    cron_expr *c = parse(NULL, "0 0 29 2 *");
    int64_t n = 0;
    pgs_error e = {0};
    TU_ASSERT_ERR(cron_next(c, -1, &n, &e), e, PGS_EINVAL, "outside");
    TU_ASSERT_ERR(cron_next(c, CRON_TIME_MAX + 1, &n, &e), e, PGS_EINVAL, "outside");
    TU_ASSERT_ERR(cron_next(c, iso("9996-03-01T00:00:00Z"), &n, &e), e, PGS_ENOTFOUND,
                  "never runs");
    assert_int_equal(cron_next(c, iso("9996-02-28T00:00:00Z"), &n, &e), 0);
    assert_int_equal(n, iso("9996-02-29T00:00:00Z"));
    assert_int_equal(cron_next(c, 0, &n, &e), 0);
    assert_int_equal(n, iso("1972-02-29T00:00:00Z"));
    cron_free(c);

    c = parse(NULL, "* * * * *");
    assert_int_equal(cron_next(c, CRON_TIME_MAX - 60, &n, &e), 0);
    assert_int_equal(n, CRON_TIME_MAX - 59); /* 9999-12-31T23:59:00Z */
    TU_ASSERT_ERR(cron_next(c, CRON_TIME_MAX - 59, &n, &e), e, PGS_ENOTFOUND, "never runs");
    TU_ASSERT_ERR(cron_next(c, CRON_TIME_MAX, &n, &e), e, PGS_ENOTFOUND, "never runs");
    cron_free(c);

    if (have_tzdata()) {
        /* a zone west of UTC at the very start, one east at the very end */
        c = parse("America/New_York", "0 0 1 1 *");
        assert_int_equal(next_of(c, 0), iso("1970-01-01T05:00:00Z"));
        cron_free(c);
        c = parse("Asia/Kolkata", "59 23 31 12 *");
        assert_int_equal(next_of(c, iso("9999-12-30T00:00:00Z")), iso("9999-12-31T18:29:00Z"));
        cron_free(c);
    }

    /* rare schedules are found quickly (the search skips by month, day and hour) */
    c = parse(NULL, "0 0 29 2 */7");
    clock_t t0 = clock();
    int64_t a = 0;
    for (int i = 0; i < 200; i++)
        a = next_of(c, a);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    print_message("200 runs of \"0 0 29 2 */7\" (to %lld) in %.3f s\n", (long long)a, secs);
    assert_true(secs < 5.0);
    cron_free(c);
}

/* ---- hostile text ---- */

static void test_cron_parse_errors(void **state)
{
    (void)state;
    char longtext[CRON_TEXT_MAX + 16];
    memset(longtext, ' ', sizeof(longtext));
    memcpy(longtext + CRON_TEXT_MAX - 9, "* * * * *", 9);
    longtext[CRON_TEXT_MAX] = '\0'; /* exactly the limit: fine */
    cron_expr *ok = NULL;
    pgs_error e = {0};
    assert_int_equal(cron_parse(longtext, &ok, &e), 0);
    cron_free(ok);
    longtext[CRON_TEXT_MAX] = ' ';
    longtext[CRON_TEXT_MAX + 1] = '\0';

    const struct {
        const char *text;
        int code;
        const char *msg;
    } bad[] = {
        {"", PGS_EINVAL, "empty"},
        {"   \t ", PGS_EINVAL, "empty"},
        {"* * * *", PGS_EINVAL, "4 fields, expected 5"},
        {"*", PGS_EINVAL, "1 field,"},
        {"* * * * * *", PGS_EINVAL, "seconds and years are not supported"},
        {"0 0 0 * * * 2024", PGS_EINVAL, "7 fields"},
        {"@reboot", PGS_EINVAL, "@reboot is not supported"},
        {"@every", PGS_EINVAL, "unknown macro \"@every\""},
        {"@", PGS_EINVAL, "unknown macro"},
        {"@daily *", PGS_EINVAL, "@daily takes no fields"},
        {"60 * * * *", PGS_EINVAL, "cron: minute: 60 is out of range 0-59"},
        {"61 * * * *", PGS_EINVAL, "cron: minute: 61 is out of range 0-59"},
        {"* 24 * * *", PGS_EINVAL, "cron: hour: 24 is out of range 0-23"},
        {"* * 0 * *", PGS_EINVAL, "cron: day-of-month: 0 is out of range 1-31"},
        {"* * 32 * *", PGS_EINVAL, "day-of-month: 32 is out of range"},
        {"* * * 13 *", PGS_EINVAL, "cron: month: 13 is out of range 1-12"},
        {"* * * 0 *", PGS_EINVAL, "month: 0 is out of range"},
        {"* * * * 8", PGS_EINVAL, "cron: day-of-week: 8 is out of range 0-7"},
        {"99999999999999999999 * * * *", PGS_EINVAL, "minute: 99999999999999999999 is out"},
        {"*/0 * * * *", PGS_EINVAL, "minute: step 0 is out of range 1-60"},
        {"*/61 * * * *", PGS_EINVAL, "step 61 is out of range 1-60"},
        {"0 */99999999999 * * *", PGS_EINVAL, "hour: step 99999999999 is out of range 1-24"},
        {"5/15 * * * *", PGS_EINVAL, "a step needs a range or * before it, as in 5-59/n"},
        {"*/ * * * *", PGS_EINVAL, "a step must be a number"},
        {"*/MON * * * *", PGS_EINVAL, "a step must be a number"},
        {"1-5/2/3 * * * *", PGS_EINVAL, "unexpected '/'"},
        {"1-2-3 * * * *", PGS_EINVAL, "unexpected '-'"},
        {"10-5 * * * *", PGS_EINVAL, "range \"10-5\" goes backwards"},
        {"* * * * FRI-MON", PGS_EINVAL, "range \"FRI-MON\" goes backwards"},
        {"1,,2 * * * *", PGS_EINVAL, "empty item"},
        {",1 * * * *", PGS_EINVAL, "empty item"},
        {"1, * * * *", PGS_EINVAL, "empty item"},
        {"a * * * *", PGS_EINVAL, "minute: \"a\" is not a number"},
        {"* * * FOO *", PGS_EINVAL, "month: \"FOO\" is not a month (1-12 or JAN-DEC)"},
        {"* * * JANUARY *", PGS_EINVAL, "\"JANUARY\" is not a month"},
        {"* * * * MONDAY", PGS_EINVAL, "\"MONDAY\" is not a day of the week"},
        {"* * * * JAN", PGS_EINVAL, "not a day of the week"},
        {"* * * JAN-MON *", PGS_EINVAL, "\"MON\" is not a month"},
        {"* * MON * *", PGS_EINVAL, "day-of-month: \"MON\" is not a number"},
        {"*5 * * * *", PGS_EINVAL, "unexpected '5'"},
        {"** * * * *", PGS_EINVAL, "unexpected '*'"},
        {"*-5 * * * *", PGS_EINVAL, "unexpected '-'"},
        {"? * * * *", PGS_EINVAL, "expected a number at \"?\""},
        {"0 0 ? * *", PGS_EINVAL, "day-of-month: expected a number"},
        {"0 0 L * *", PGS_EINVAL, "\"L\" is not a number"},
        {"0 0 1W * *", PGS_EINVAL, "unexpected 'W'"},
        {"0 0 * * 5#3", PGS_EINVAL, "unexpected '#'"},
        {"0 0 * * 5L", PGS_EINVAL, "unexpected 'L'"},
        {"-1 * * * *", PGS_EINVAL, "expected a number"},
        {"+1 * * * *", PGS_EINVAL, "expected a number"},
        {"1.5 * * * *", PGS_EINVAL, "unexpected '.'"},
        {"0x10 * * * *", PGS_EINVAL, "unexpected 'x'"},
        {"0 0 30 2 *", PGS_EINVAL, "never runs: no day \"30\" exists in month \"2\""},
        {"0 0 31 4,6,9,11 *", PGS_EINVAL, "never runs"},
        {"0 0 30-31 FEB *", PGS_EINVAL, "never runs"},
        {"0 0 31 2 */2", PGS_EINVAL, "never runs"},
        {"0 0 * * *\n", PGS_EINVAL, "control character or non-ASCII byte 0x0a at offset 9"},
        {"0\r0 * * *", PGS_EINVAL, "0x0d"},
        {"0 0 * * *\x7f", PGS_EINVAL, "0x7f"},
        {"0 0 * * \xc3\xa9", PGS_EINVAL, "non-ASCII byte 0xc3"},
        {"\x1b[31m0 0 * * *", PGS_EINVAL, "0x1b"},
        {longtext, PGS_ELIMIT, "longer than 256 bytes"},
        {"CRON_TZ=", PGS_EINVAL, "empty zone name after CRON_TZ="},
        {"CRON_TZ= 0 0 * * *", PGS_EINVAL, "empty zone name"},
        {"TZ=", PGS_EINVAL, "empty zone name after TZ="},
        {"CRON_TZ=UTC", PGS_EINVAL, "no schedule after the time zone"},
        {"CRON_TZ=UTC   ", PGS_EINVAL, "no schedule"},
        {"CRON_TZ=../etc/passwd 0 0 * * *", PGS_EINVAL,
         "time zone: \"../etc/passwd\" is not a valid"},
        {"CRON_TZ=/etc/localtime 0 0 * * *", PGS_EINVAL, "is not a valid zone name"},
        {"CRON_TZ=Europe//Berlin 0 0 * * *", PGS_EINVAL, "is not a valid zone name"},
        {"CRON_TZ=Europe/Nowhere 0 0 * * *", PGS_ENOTFOUND,
         "cron: time zone Europe/Nowhere is unknown"},
        {"TZ=UTC CRON_TZ=UTC 0 0 * * *", PGS_EINVAL, "6 fields"},
        {"0 0 * * * CRON_TZ=UTC", PGS_EINVAL, "6 fields"},
        {"cron_tz=UTC 0 0 * * *", PGS_EINVAL, "6 fields"},
        {"CRON_TZ=UTC @reboot", PGS_EINVAL, "@reboot"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cron_expr *c = (cron_expr *)1;
        memset(&e, 0, sizeof(e));
        int rc = cron_parse_dir(bad[i].text, ZONEINFO, &c, &e);
        if (rc != bad[i].code || e.code != rc || strstr(e.msg, bad[i].msg) == NULL)
            fail_msg("\"%.40s\": rc %d, message \"%s\"; expected %d with \"%s\"", bad[i].text, rc,
                     e.msg, bad[i].code, bad[i].msg);
        assert_null(c);
    }
    if (have_tzdata()) {
        cron_expr *c = NULL;
        TU_ASSERT_ERR(cron_parse_dir("CRON_TZ=Europe 0 0 * * *", ZONEINFO, &c, &e), e, PGS_EINVAL,
                      "not a regular file");
        TU_ASSERT_ERR(cron_parse_dir("CRON_TZ=zone.tab 0 0 * * *", ZONEINFO, &c, &e), e, PGS_EINVAL,
                      "not a valid zone name");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cron_next_table),
        cmocka_unit_test(test_cron_year_counts),
        cmocka_unit_test(test_cron_matches_brute_force),
        cmocka_unit_test(test_cron_text_and_zone),
        cmocka_unit_test(test_cron_bounds),
        cmocka_unit_test(test_cron_parse_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
