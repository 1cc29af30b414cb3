/*
 * Tests of the TZif reader (common/tzfile.c): offsets and offset changes of real zones from
 * /usr/share/zoneinfo (Berlin, New York, Kolkata, Lord Howe, Dublin's negative daylight time,
 * Santiago's 24:00 switches) before and after the last stored transition; files built here in
 * versions 1, 2 and 3, slim ones with only a footer; the footer's TZ string in all its forms;
 * zone names and file checks; the civil-date helpers; and hostile files: every truncation,
 * counts larger than the file, bad indices, bad footers, trailing bytes, oversized files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/tzfile.h"
#include "tests/unit/testutil.h"

#define ZONEINFO "/usr/share/zoneinfo"

/* "2024-03-31T01:00:00Z" to unix seconds. */
static int64_t iso(const char *s)
{
    int y, mo, d, h, mi, se;
    if (sscanf(s, "%d-%d-%dT%d:%d:%dZ", &y, &mo, &d, &h, &mi, &se) != 6)
        fail_msg("bad time %s", s);
    return tz_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
}

static int have_tzdata(void)
{
    struct stat st;
    return stat(ZONEINFO "/Europe/Berlin", &st) == 0 &&
           stat(ZONEINFO "/America/New_York", &st) == 0;
}

static tz_zone *load(const char *name)
{
    tz_zone *z = NULL;
    pgs_error e = {0};
    int rc = tz_load(ZONEINFO, name, &z, &e);
    if (rc != 0)
        fail_msg("tz_load %s: %s", name, e.msg);
    assert_string_equal(tz_name(z), name);
    return z;
}

/* ---- a TZif writer for the tests ---- */

typedef struct tzb {
    uint8_t *p;
    size_t len, cap;
} tzb;

static void tzb_bytes(tzb *b, const void *data, size_t n)
{
    if (n == 0)
        return;
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void tzb_u32(tzb *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    tzb_bytes(b, x, 4);
}

static void tzb_u64(tzb *b, uint64_t v)
{
    tzb_u32(b, (uint32_t)(v >> 32));
    tzb_u32(b, (uint32_t)v);
}

typedef struct tzspec {
    char version; /* 0, '2', '3', '4' */
    size_t n;     /* transitions */
    const int64_t *times;
    const uint8_t *idx;
    size_t ntypes;
    const int32_t *utoff;
    const uint8_t *isdst; /* NULL: derived from nothing, all 0 */
    const char *footer;   /* version 2+: the TZ string (may be "") */
} tzspec;

static void tzb_header(tzb *b, char version, uint32_t n, uint32_t ntypes)
{
    tzb_bytes(b, "TZif", 4);
    uint8_t v = (uint8_t)version;
    tzb_bytes(b, &v, 1);
    uint8_t zero[15] = {0};
    tzb_bytes(b, zero, 15);
    tzb_u32(b, ntypes); /* isutcnt */
    tzb_u32(b, ntypes); /* isstdcnt */
    tzb_u32(b, 0);      /* leapcnt */
    tzb_u32(b, n);      /* timecnt */
    tzb_u32(b, ntypes); /* typecnt */
    tzb_u32(b, 4);      /* charcnt: "ZZZ\0" */
}

static void tzb_block(tzb *b, const tzspec *s, int wide)
{
    for (size_t i = 0; i < s->n; i++) {
        if (wide)
            tzb_u64(b, (uint64_t)s->times[i]);
        else
            tzb_u32(b, (uint32_t)(int32_t)s->times[i]);
    }
    tzb_bytes(b, s->idx, s->n);
    for (size_t i = 0; i < s->ntypes; i++) {
        tzb_u32(b, (uint32_t)s->utoff[i]);
        uint8_t rest[2] = {s->isdst ? s->isdst[i] : 0, 0};
        tzb_bytes(b, rest, 2);
    }
    tzb_bytes(b, "ZZZ", 4);
    for (size_t i = 0; i < 2 * s->ntypes; i++) /* isstd, isut */
        tzb_bytes(b, "", 1);
}

/* The whole file; *second (if not NULL) receives the offset of the second header. */
static tzb tzb_build(const tzspec *s, size_t *second)
{
    tzb b = {0};
    tzb_header(&b, s->version, (uint32_t)s->n, (uint32_t)s->ntypes);
    tzb_block(&b, s, 0);
    if (second != NULL)
        *second = b.len;
    if (s->version != 0) {
        tzb_header(&b, s->version, (uint32_t)s->n, (uint32_t)s->ntypes);
        tzb_block(&b, s, 1);
        tzb_bytes(&b, "\n", 1);
        tzb_bytes(&b, s->footer, strlen(s->footer));
        tzb_bytes(&b, "\n", 1);
    }
    return b;
}

static tz_zone *from_bytes(const tzb *b)
{
    tz_zone *z = NULL;
    pgs_error e = {0};
    int rc = tz_load_bytes(b->p, b->len, &z, &e);
    if (rc != 0)
        fail_msg("tz_load_bytes: %s", e.msg);
    return z;
}

/* A zone with only a footer, as zic -b slim writes fixed and rule-only zones. */
static tz_zone *footer_zone(const char *footer)
{
    static const int32_t off[] = {0};
    tzspec s = {'2', 0, NULL, NULL, 1, off, NULL, footer};
    tzb b = tzb_build(&s, NULL);
    tz_zone *z = from_bytes(&b);
    free(b.p);
    return z;
}

static void expect_fail(const tzb *b, int code, const char *substr)
{
    tz_zone *z = (tz_zone *)1;
    pgs_error e = {0};
    int rc = tz_load_bytes(b->p, b->len, &z, &e);
    TU_ASSERT_ERR(rc, e, code, substr);
    assert_null(z);
}

/* ---- civil dates ---- */

static void test_tzfile_civil_dates(void **state)
{
    (void)state;
    assert_int_equal(tz_days_from_civil(1970, 1, 1), 0);
    assert_int_equal(tz_days_from_civil(2000, 3, 1), 11017);
    assert_int_equal(tz_days_from_civil(1969, 12, 31), -1);
    assert_int_equal(tz_days_from_civil(1600, 1, 1), -135140);
    assert_int_equal(tz_days_from_civil(2024, 2, 30), tz_days_from_civil(2024, 3, 1));
    assert_true(tz_is_leap(2000));
    assert_true(tz_is_leap(2028));
    assert_false(tz_is_leap(2100));
    assert_false(tz_is_leap(1900));
    assert_false(tz_is_leap(2023));
    assert_int_equal(tz_month_days(2100, 2), 28);
    assert_int_equal(tz_month_days(2000, 2), 29);
    assert_int_equal(tz_month_days(2024, 4), 30);
    assert_int_equal(tz_month_days(2024, 13), 0);
    assert_int_equal(tz_weekday(tz_days_from_civil(2024, 3, 31)), 0); /* a Sunday */
    assert_int_equal(tz_weekday(tz_days_from_civil(1970, 1, 1)), 4);
    assert_int_equal(tz_weekday(tz_days_from_civil(1969, 12, 28)), 0);
    /* every day of 0000..2500 round-trips, and consecutive days are consecutive dates */
    int64_t py = 0;
    int pm = 0, pd = 0;
    for (int64_t d = tz_days_from_civil(0, 1, 1); d < tz_days_from_civil(2500, 1, 1); d++) {
        int64_t y;
        int m, dd;
        tz_civil_from_days(d, &y, &m, &dd);
        assert_int_equal(tz_days_from_civil(y, m, dd), d);
        assert_true(dd >= 1 && dd <= tz_month_days(y, m));
        if (pm != 0 && !(dd == pd + 1 && m == pm && y == py))
            assert_true(dd == 1 && (m == pm + 1 || (m == 1 && pm == 12 && y == py + 1)));
        py = y;
        pm = m;
        pd = dd;
    }
    char buf[32];
    assert_string_equal(tz_format_utc(iso("2024-03-31T01:00:00Z"), buf, sizeof(buf)),
                        "2024-03-31T01:00:00Z");
    assert_string_equal(tz_format_utc(-1, buf, sizeof(buf)), "1969-12-31T23:59:59Z");
}

/* ---- names and files ---- */

static void test_tzfile_names(void **state)
{
    (void)state;
    static const char *const good[] = {
        "UTC",       "Europe/Berlin", "America/Argentina/Buenos_Aires",
        "Etc/GMT+5", "Etc/GMT-14",    "posixrules",
        "a"};
    static const char *const bad[] = {"",
                                      "/etc/passwd",
                                      "../etc/passwd",
                                      "Europe/../x",
                                      "Europe/./Berlin",
                                      ".",
                                      "..",
                                      "a//b",
                                      "Europe/",
                                      "Europe/Berlin\n",
                                      "Europe/Ber lin",
                                      "zone.tab",
                                      "Europe\\Berlin",
                                      "Europe/Berlin\t"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(tz_name_valid(good[i]));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (tz_name_valid(bad[i]))
            fail_msg("\"%s\" was accepted", bad[i]);
    char longname[TZ_NAME_MAX + 2];
    memset(longname, 'a', sizeof(longname));
    longname[TZ_NAME_MAX] = '\0';
    assert_true(tz_name_valid(longname));
    longname[TZ_NAME_MAX] = 'a';
    longname[TZ_NAME_MAX + 1] = '\0';
    assert_false(tz_name_valid(longname));

    tz_zone *z = NULL;
    pgs_error e = {0};
    TU_ASSERT_ERR(tz_load(ZONEINFO, "../etc/passwd", &z, &e), e, PGS_EINVAL, "not valid");
    assert_null(z);
    TU_ASSERT_ERR(tz_load(ZONEINFO, "/etc/passwd", &z, &e), e, PGS_EINVAL, "not valid");
    TU_ASSERT_ERR(tz_load(ZONEINFO, longname, &z, &e), e, PGS_EINVAL, "not valid");
}

static void test_tzfile_utc_needs_no_file(void **state)
{
    (void)state;
    const char *names[] = {"UTC", "Etc/UTC"};
    for (int i = 0; i < 2; i++) {
        tz_zone *z = NULL;
        pgs_error e = {0};
        assert_int_equal(tz_load("/nonexistent/zoneinfo", names[i], &z, &e), 0);
        assert_string_equal(tz_name(z), names[i]);
        assert_int_equal(tz_utc_offset(z, 0), 0);
        assert_int_equal(tz_utc_offset(z, INT64_MAX), 0);
        assert_int_equal(tz_next_change(z, 0), TZ_NEVER);
        tz_free(z);
    }
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void test_tzfile_load_files(void **state)
{
    char dir[4096], path[4096 + 64];
    tu_path_in(state, "zi", dir, sizeof(dir));
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof(path), "%s/Test", dir);
    assert_int_equal(mkdir(path, 0700), 0);

    static const int32_t off[] = {19800};
    tzspec s = {'2', 0, NULL, NULL, 1, off, NULL, "IST-5:30"};
    tzb b = tzb_build(&s, NULL);
    snprintf(path, sizeof(path), "%s/Test/Zone", dir);
    write_file(path, b.p, b.len);
    free(b.p);

    tz_zone *z = NULL;
    pgs_error e = {0};
    assert_int_equal(tz_load(dir, "Test/Zone", &z, &e), 0);
    assert_string_equal(tz_name(z), "Test/Zone");
    assert_int_equal(tz_utc_offset(z, 0), 19800);
    tz_free(z);

    /* dir NULL: PGSHIP_ZONEINFO, when set (the test is single-threaded) */
    assert_int_equal(setenv(TZ_ENV_DIR, dir, 1), 0);
    assert_int_equal(tz_load(NULL, "Test/Zone", &z, &e), 0);
    tz_free(z);
    TU_ASSERT_ERR(tz_load(NULL, "Europe/Berlin", &z, &e), e, PGS_ENOTFOUND, "Europe/Berlin");
    assert_int_equal(unsetenv(TZ_ENV_DIR), 0);
    if (have_tzdata()) {
        assert_int_equal(tz_load(NULL, "Europe/Berlin", &z, &e), 0);
        tz_free(z);
    }

    TU_ASSERT_ERR(tz_load(dir, "Test/Nowhere", &z, &e), e, PGS_ENOTFOUND, "is unknown");
    assert_null(z);
    TU_ASSERT_ERR(tz_load(dir, "Test/Zone/x", &z, &e), e, PGS_ENOTFOUND, "is unknown");
    TU_ASSERT_ERR(tz_load(dir, "Test", &z, &e), e, PGS_EINVAL, "not a regular file");

    snprintf(path, sizeof(path), "%s/Test/Fifo", dir);
    assert_int_equal(mkfifo(path, 0600), 0);
    TU_ASSERT_ERR(tz_load(dir, "Test/Fifo", &z, &e), e, PGS_EINVAL, "not a regular file");

    snprintf(path, sizeof(path), "%s/Test/Big", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fseek(f, TZ_FILE_MAX, SEEK_SET), 0);
    assert_int_equal(fputc('x', f), 'x');
    assert_int_equal(fclose(f), 0);
    TU_ASSERT_ERR(tz_load(dir, "Test/Big", &z, &e), e, PGS_ELIMIT, "at most");

    snprintf(path, sizeof(path), "%s/Test/Text", dir);
    write_file(path, "Europe/Berlin\n", 14);
    TU_ASSERT_ERR(tz_load(dir, "Test/Text", &z, &e), e, PGS_EFORMAT, "time zone Test/Text");
    assert_null(z);
}

/* ---- real zones ---- */

struct offset_row {
    const char *zone;
    const char *at;
    int64_t off;
};

static void test_tzfile_real_offsets(void **state)
{
    (void)state;
    if (!have_tzdata()) {
        print_message("tzdata is missing from " ZONEINFO "\n");
        skip();
    }
    static const struct offset_row rows[] = {
        {"Europe/Berlin", "2024-01-15T12:00:00Z", 3600},
        {"Europe/Berlin", "2024-03-31T00:59:59Z", 3600},
        {"Europe/Berlin", "2024-03-31T01:00:00Z", 7200},
        {"Europe/Berlin", "2024-10-27T00:59:59Z", 7200},
        {"Europe/Berlin", "2024-10-27T01:00:00Z", 3600},
        {"Europe/Berlin", "2061-07-01T00:00:00Z", 7200}, /* after the table: the footer */
        {"Europe/Berlin", "2061-12-01T00:00:00Z", 3600},
        {"Europe/Berlin", "1945-06-01T00:00:00Z", 10800}, /* double summer time */
        {"Europe/Berlin", "1800-01-01T00:00:00Z", 3208},  /* local mean time, 0:53:28 */
        {"America/New_York", "2024-03-10T06:59:59Z", -18000},
        {"America/New_York", "2024-03-10T07:00:00Z", -14400},
        {"America/New_York", "2024-11-03T05:59:59Z", -14400},
        {"America/New_York", "2024-11-03T06:00:00Z", -18000},
        {"America/New_York", "2090-08-01T00:00:00Z", -14400},
        {"Asia/Kolkata", "2024-06-01T00:00:00Z", 19800},
        {"Asia/Kolkata", "2200-06-01T00:00:00Z", 19800},
        {"Australia/Lord_Howe", "2024-04-06T14:59:59Z", 39600},
        {"Australia/Lord_Howe", "2024-04-06T15:00:00Z", 37800},
        {"Australia/Lord_Howe", "2024-10-05T15:29:59Z", 37800},
        {"Australia/Lord_Howe", "2024-10-05T15:30:00Z", 39600},
        {"Europe/Dublin", "2024-01-15T00:00:00Z", 0}, /* winter is Dublin's negative DST */
        {"Europe/Dublin", "2024-07-15T00:00:00Z", 3600},
        {"Europe/Dublin", "2070-01-15T00:00:00Z", 0},
        {"Europe/Dublin", "2070-07-15T00:00:00Z", 3600},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        tz_zone *z = load(rows[i].zone);
        int64_t got = tz_utc_offset(z, iso(rows[i].at));
        if (got != rows[i].off)
            fail_msg("%s at %s: offset %lld, expected %lld", rows[i].zone, rows[i].at,
                     (long long)got, (long long)rows[i].off);
        tz_free(z);
    }
}

static void test_tzfile_real_changes(void **state)
{
    (void)state;
    if (!have_tzdata())
        skip();
    static const struct {
        const char *zone, *after, *next;
    } rows[] = {
        {"Europe/Berlin", "2024-01-01T00:00:00Z", "2024-03-31T01:00:00Z"},
        {"Europe/Berlin", "2024-03-31T01:00:00Z", "2024-10-27T01:00:00Z"},
        {"Europe/Berlin", "2060-01-01T00:00:00Z", "2060-03-28T01:00:00Z"},
        {"Europe/Berlin", "2037-10-26T00:00:00Z", "2038-03-28T01:00:00Z"},
        {"America/New_York", "2024-01-01T00:00:00Z", "2024-03-10T07:00:00Z"},
        {"America/New_York", "2050-06-01T00:00:00Z", "2050-11-06T06:00:00Z"},
        {"Australia/Lord_Howe", "2024-01-01T00:00:00Z", "2024-04-06T15:00:00Z"},
        {"America/Santiago", "2024-01-01T00:00:00Z", "2024-04-07T03:00:00Z"},
        {"America/Santiago", "2080-01-01T00:00:00Z", "2080-04-07T03:00:00Z"},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        tz_zone *z = load(rows[i].zone);
        char got[32];
        tz_format_utc(tz_next_change(z, iso(rows[i].after)), got, sizeof(got));
        if (strcmp(got, rows[i].next) != 0)
            fail_msg("%s after %s: next change %s, expected %s", rows[i].zone, rows[i].after, got,
                     rows[i].next);
        tz_free(z);
    }
    tz_zone *z = load("Asia/Kolkata");
    assert_int_equal(tz_next_change(z, iso("2024-01-01T00:00:00Z")), TZ_NEVER);
    tz_free(z);

    /* Each change in 1900..2100 changes the offset, and nothing changes in between. */
    z = load("Europe/Berlin");
    int n = 0;
    for (int64_t t = iso("1900-01-01T00:00:00Z"), c;
         (c = tz_next_change(z, t)) < iso("2100-01-01T00:00:00Z"); t = c) {
        assert_true(c > t);
        assert_int_not_equal(tz_utc_offset(z, c), tz_utc_offset(z, c - 1));
        assert_int_equal(tz_utc_offset(z, c - 1), tz_utc_offset(z, t));
        n++;
    }
    assert_true(n > 2 * 130);
    assert_int_equal(tz_next_change(z, TZ_TIME_MAX - 10), TZ_NEVER);
    assert_int_equal(tz_next_change(z, INT64_MAX), TZ_NEVER);
    assert_true(tz_next_change(z, INT64_MIN) > TZ_TIME_MIN);
    int64_t o = tz_utc_offset(z, INT64_MAX);
    assert_true(o == 3600 || o == 7200);
    assert_int_equal(tz_utc_offset(z, INT64_MIN), 3208);
    tz_free(z);
}

/* A slim Berlin (footer only) gives the real file's offsets after 1996. */
static void test_tzfile_slim_footer_only(void **state)
{
    (void)state;
    tz_zone *slim = footer_zone("CET-1CEST,M3.5.0,M10.5.0/3");
    assert_int_equal(tz_utc_offset(slim, iso("2024-03-31T00:59:59Z")), 3600);
    assert_int_equal(tz_utc_offset(slim, iso("2024-03-31T01:00:00Z")), 7200);
    assert_int_equal(tz_next_change(slim, iso("2024-03-31T01:00:00Z")),
                     iso("2024-10-27T01:00:00Z"));
    if (have_tzdata()) {
        tz_zone *fat = load("Europe/Berlin");
        for (int64_t t = iso("1997-01-01T00:00:00Z"); t < iso("2200-01-01T00:00:00Z"); t += 3557)
            if (tz_utc_offset(slim, t) != tz_utc_offset(fat, t))
                fail_msg("slim and fat Berlin differ at %lld", (long long)t);
        tz_free(fat);
    }
    tz_free(slim);
}

/* ---- footers ---- */

static void test_tzfile_footer_rules(void **state)
{
    (void)state;
    static const struct {
        const char *footer, *at;
        int64_t off;
    } rows[] = {
        {"EST5EDT,M3.2.0,M11.1.0", "2031-03-09T06:59:59Z", -18000},
        {"EST5EDT,M3.2.0,M11.1.0", "2031-03-09T07:00:00Z", -14400},
        {"EST5EDT", "2031-03-09T07:00:00Z", -14400}, /* no rule: the US one */
        {"EST5EDT", "2031-11-02T06:00:00Z", -18000},
        {"<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", "2031-01-01T00:00:00Z", 39600},
        {"<+1030>-10:30<+11>-11,M10.1.0,M4.1.0", "2031-06-01T00:00:00Z", 37800},
        {"IST-1GMT0,M10.5.0,M3.5.0/1", "2031-01-15T00:00:00Z", 0},
        {"IST-1GMT0,M10.5.0,M3.5.0/1", "2031-07-15T00:00:00Z", 3600},
        {"<-04>4<-03>,M9.1.6/24,M4.1.6/24", "2031-01-15T00:00:00Z", -10800},
        {"<-04>4<-03>,M9.1.6/24,M4.1.6/24", "2031-07-15T00:00:00Z", -14400},
        /* September 6 2031 is the first Saturday: at 24:00 local, Sunday 04:00Z */
        {"<-04>4<-03>,M9.1.6/24,M4.1.6/24", "2031-09-07T03:59:59Z", -14400},
        {"<-04>4<-03>,M9.1.6/24,M4.1.6/24", "2031-09-07T04:00:00Z", -10800},
        /* March 30 2031 is the last Sunday: at -1:00 local, 01:00Z */
        {"<-02>2<-01>,M3.5.0/-1,M10.5.0/0", "2031-03-30T00:59:59Z", -7200},
        {"<-02>2<-01>,M3.5.0/-1,M10.5.0/0", "2031-03-30T01:00:00Z", -3600},
        {"EST5EDT4,0/0,J365/25", "2031-01-01T04:59:59Z", -14400}, /* daylight all year */
        {"EST5EDT4,0/0,J365/25", "2031-01-01T05:00:00Z", -14400},
        {"EST5EDT4,0/0,J365/25", "2031-12-31T23:00:00Z", -14400},
        {"AAA3BBB,J60/2,J300/2", "2032-03-01T04:59:59Z", -10800}, /* J60 is March 1 */
        {"AAA3BBB,J60/2,J300/2", "2032-03-01T05:00:00Z", -7200},
        {"AAA3BBB,59/2,300/2", "2032-02-29T04:59:59Z", -10800}, /* day 59 counts Feb 29 */
        {"AAA3BBB,59/2,300/2", "2032-02-29T05:00:00Z", -7200},
        {"AAA+3:30:15", "2031-01-01T00:00:00Z", -12615},
        {"<-05>5", "2031-01-01T00:00:00Z", -18000},
        {"UTC0", "2031-01-01T00:00:00Z", 0},
        {"CET-1CEST,M3.5.0,M10.5.0/3", "9999-07-01T00:00:00Z", 7200},
        {"CET-1CEST,M3.5.0,M10.5.0/3", "0001-07-01T00:00:00Z", 7200},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        tz_zone *z = footer_zone(rows[i].footer);
        int64_t got = tz_utc_offset(z, iso(rows[i].at));
        if (got != rows[i].off)
            fail_msg("\"%s\" at %s: offset %lld, expected %lld", rows[i].footer, rows[i].at,
                     (long long)got, (long long)rows[i].off);
        tz_free(z);
    }
    tz_zone *z = footer_zone("EST5EDT4,0/0,J365/25");
    assert_int_equal(tz_next_change(z, 0), TZ_NEVER);
    tz_free(z);
    z = footer_zone("");
    assert_int_equal(tz_utc_offset(z, 0), 0);
    tz_free(z);
}

static void test_tzfile_bad_footers(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "CET",
        "CET-1CEST,M3.5.0",
        "CET-1CEST,M13.5.0,M10.5.0",
        "CET-1CEST,M3.6.0,M10.5.0",
        "CET-1CEST,M3.5.7,M10.5.0",
        "CET-1CEST,M0.5.0,M10.5.0",
        "CET-25",
        "CET-1:60",
        "CET-1CEST,M3.5.0/168,M10.5.0",
        "CET-1CEST,J0,J365",
        "CET-1CEST,J366,J1",
        "CET-1CEST,366,1",
        "C-1",
        "<CE>-1",
        "<CET-1",
        "CET-1CEST,M3.5.0,M10.5.0/3x",
        "CET-1CEST,M3.5.0,M10.5.0,",
        "CET-1C",
        "CET-1CEST-25",
        "CET1\x01",
        "-1",
        "CET+",
        "CET-1CEST,M3.5.0;M10.5.0",
        "CET-1CEST,,",
        "CET 1",
    };
    static const int32_t off[] = {3600};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tzspec s = {'2', 0, NULL, NULL, 1, off, NULL, bad[i]};
        tzb b = tzb_build(&s, NULL);
        tz_zone *z = NULL;
        pgs_error e = {0};
        int rc = tz_load_bytes(b.p, b.len, &z, &e);
        if (rc != PGS_EFORMAT || strstr(e.msg, "footer") == NULL)
            fail_msg("footer \"%s\": rc %d, %s", bad[i], rc, e.msg);
        for (const char *c = e.msg; *c; c++)
            assert_true(*c >= 0x20 && *c <= 0x7e);
        free(b.p);
    }

    /* too long, no final newline, no leading newline, a NUL, bytes after it */
    char longf[TZ_FOOTER_MAX + 2];
    memset(longf, 'A', sizeof(longf) - 1);
    longf[sizeof(longf) - 1] = '\0';
    tzspec s = {'2', 0, NULL, NULL, 1, off, NULL, longf};
    tzb b = tzb_build(&s, NULL);
    expect_fail(&b, PGS_ELIMIT, "footer");
    free(b.p);

    s.footer = "CET-1";
    b = tzb_build(&s, NULL);
    b.len--;
    expect_fail(&b, PGS_ETRUNC, "footer");
    b.len -= 6;
    expect_fail(&b, PGS_ETRUNC, "before its footer");
    b.len += 6;
    b.p[b.len - 6] = 'x';
    b.len++;
    expect_fail(&b, PGS_EFORMAT, "newline");
    b.p[b.len - 7] = '\n';
    b.p[b.len - 3] = '\0';
    expect_fail(&b, PGS_EFORMAT, "footer");
    free(b.p);

    s.footer = "CET-1";
    b = tzb_build(&s, NULL);
    tzb_bytes(&b, "x", 1);
    expect_fail(&b, PGS_ETRAIL, "after its footer");
    free(b.p);
}

/* ---- built files ---- */

static void test_tzfile_versions(void **state)
{
    (void)state;
    /* Three types: 1h, 2h (dst), 1h again under another name: a no-op change at 3000. */
    static const int64_t times[] = {1000, 2000, 3000, 4000};
    static const uint8_t idx[] = {1, 0, 2, 1};
    static const int32_t off[] = {3600, 7200, 3600};
    static const uint8_t dst[] = {0, 1, 0};
    const char versions[] = {0, '2', '3', '4'};
    for (size_t v = 0; v < sizeof(versions); v++) {
        tzspec s = {versions[v], 4, times, idx, 3, off, dst, "CET-1CEST,M3.5.0,M10.5.0/3"};
        tzb b = tzb_build(&s, NULL);
        tz_zone *z = from_bytes(&b);
        assert_string_equal(tz_name(z), "-");
        assert_int_equal(tz_utc_offset(z, 999), 3600); /* before the first: type 0 */
        assert_int_equal(tz_utc_offset(z, 1000), 7200);
        assert_int_equal(tz_utc_offset(z, 1999), 7200);
        assert_int_equal(tz_utc_offset(z, 2000), 3600);
        assert_int_equal(tz_utc_offset(z, 3500), 3600);
        assert_int_equal(tz_utc_offset(z, 4000), 7200);
        assert_int_equal(tz_next_change(z, 0), 1000);
        assert_int_equal(tz_next_change(z, 1000), 2000);
        assert_int_equal(tz_next_change(z, 2000), 4000); /* 3000 changes no offset */
        if (versions[v] == 0) {
            /* no footer: the last type forever */
            assert_int_equal(tz_utc_offset(z, iso("2024-01-01T00:00:00Z")), 7200);
            assert_int_equal(tz_next_change(z, 4000), TZ_NEVER);
        } else {
            /* the footer from 4001 on: January 1970 is winter, a change at 4001 */
            assert_int_equal(tz_utc_offset(z, 4001), 3600);
            assert_int_equal(tz_next_change(z, 4000), 4001);
            assert_int_equal(tz_next_change(z, 4001), iso("1970-03-29T01:00:00Z"));
            assert_int_equal(tz_utc_offset(z, iso("2024-07-01T00:00:00Z")), 7200);
        }
        tz_free(z);
        free(b.p);
    }
}

/* Sets the 32-bit count at byte off of the file. */
static void poke32(tzb *b, size_t off, uint32_t v)
{
    b->p[off] = (uint8_t)(v >> 24);
    b->p[off + 1] = (uint8_t)(v >> 16);
    b->p[off + 2] = (uint8_t)(v >> 8);
    b->p[off + 3] = (uint8_t)v;
}

enum { C_ISUT = 20, C_ISSTD = 24, C_LEAP = 28, C_TIME = 32, C_TYPE = 36, C_CHAR = 40 };

static void test_tzfile_hostile_tables(void **state)
{
    (void)state;
    static const int64_t times[] = {1000, 2000};
    static const uint8_t idx[] = {1, 0};
    static const int32_t off[] = {3600, 7200};
    static const uint8_t dst[] = {0, 1};
    tzspec s = {'2', 2, times, idx, 2, off, dst, "CET-1CEST,M3.5.0,M10.5.0/3"};
    size_t h2;
    tzb good = tzb_build(&s, &h2);
    size_t blk = h2 + 44; /* the 64-bit block */
    tz_zone *z = from_bytes(&good);
    tz_free(z);

    /* every truncation fails, with a reason */
    for (size_t n = 0; n < good.len; n++) {
        tzb b = {good.p, n, n};
        pgs_error e = {0};
        z = NULL;
        int rc = tz_load_bytes(b.p, b.len, &z, &e);
        if (rc == 0 || e.msg[0] == '\0' || z != NULL)
            fail_msg("truncated to %zu bytes: rc %d", n, rc);
    }

#define MUTATE(stmt, code, text)                                                                   \
    do {                                                                                           \
        tzb b = {malloc(good.len), good.len, good.len};                                            \
        assert_non_null(b.p);                                                                      \
        memcpy(b.p, good.p, good.len);                                                             \
        stmt;                                                                                      \
        expect_fail(&b, code, text);                                                               \
        free(b.p);                                                                                 \
    } while (0)

    MUTATE(b.p[0] = 'X', PGS_EFORMAT, "not a TZif");
    MUTATE(b.p[h2] = 'X', PGS_EFORMAT, "second header");
    MUTATE(b.p[4] = '5', PGS_EVERSION, "0x35");
    MUTATE(b.p[4] = 1, PGS_EVERSION, "0x01");
    MUTATE(b.p[h2 + 4] = '3', PGS_EFORMAT, "disagree");
    /* counts larger than the file, in either header */
    MUTATE(poke32(&b, C_TIME, 0xffffffffu), PGS_ETRUNC, "version 1 data block");
    MUTATE(poke32(&b, C_CHAR, 0x7fffffffu), PGS_ETRUNC, "version 1 data block");
    MUTATE(poke32(&b, h2 + C_TIME, 0xffffffffu), PGS_ETRUNC, "64-bit data block");
    MUTATE(poke32(&b, h2 + C_TYPE, 0x10000000u), PGS_ETRUNC, "64-bit data block");
    MUTATE(poke32(&b, h2 + C_LEAP, 0xffffffffu), PGS_ETRUNC, "64-bit data block");
    MUTATE(poke32(&b, h2 + C_ISSTD, 1000), PGS_ETRUNC, "64-bit data block");
    /* leap records (the count and room for them) */
    MUTATE((poke32(&b, h2 + C_LEAP, 1), poke32(&b, h2 + C_ISUT, 0), poke32(&b, h2 + C_ISSTD, 0)),
           PGS_ELIMIT, "leap");
    /* inconsistent counts: the block shrinks, the footer moves: still caught by its check */
    MUTATE(poke32(&b, h2 + C_ISUT, 1), PGS_EFORMAT, "indicators");
    MUTATE(poke32(&b, h2 + C_TYPE, 0), PGS_EFORMAT, "no local time types");
    MUTATE(poke32(&b, h2 + C_CHAR, 0), PGS_EFORMAT, "no time zone designations");
    /* field values */
    MUTATE(b.p[blk + 16] = 2, PGS_EFORMAT, "names local time type 2"); /* idx[0] */
    MUTATE(b.p[blk + 6] = 0x10, PGS_EFORMAT, "not after");            /* times[0] 4328 > times[1] */
    MUTATE(poke32(&b, blk + 18, 0x80000000u), PGS_EFORMAT, "offset"); /* utoff[0] */
    MUTATE(poke32(&b, blk + 18, 93600), PGS_EFORMAT, "offset");
    MUTATE(poke32(&b, blk + 18, (uint32_t)-90000), PGS_EFORMAT, "offset");
    MUTATE(b.p[blk + 22] = 2, PGS_EFORMAT, "isdst");
    MUTATE(b.p[blk + 23] = 4, PGS_EFORMAT, "designation");
    MUTATE(b.p[blk + 34] = 2, PGS_EFORMAT, "indicators"); /* isstd[0] */
    MUTATE(b.p[blk + 36] = 1, PGS_EFORMAT, "indicators"); /* isut[0] without isstd */
#undef MUTATE

    /* more types than an index can name */
    int32_t many[TZ_TYPES_MAX + 1];
    for (size_t i = 0; i <= TZ_TYPES_MAX; i++)
        many[i] = (int32_t)i;
    tzspec m = {'2', 0, NULL, NULL, TZ_TYPES_MAX + 1, many, NULL, ""};
    tzb b = tzb_build(&m, NULL);
    expect_fail(&b, PGS_ELIMIT, "local time types");
    free(b.p);

    /* version 1 with bytes after its block */
    tzspec v1 = {0, 2, times, idx, 2, off, dst, ""};
    b = tzb_build(&v1, NULL);
    tzb_bytes(&b, "\n", 1);
    expect_fail(&b, PGS_ETRAIL, "after its data block");
    free(b.p);

    /* more than TZ_FILE_MAX bytes */
    uint8_t *big = calloc(1, (size_t)TZ_FILE_MAX + 1);
    assert_non_null(big);
    memcpy(big, good.p, good.len);
    pgs_error e = {0};
    z = NULL;
    TU_ASSERT_ERR(tz_load_bytes(big, (size_t)TZ_FILE_MAX + 1, &z, &e), e, PGS_ELIMIT, "at most");
    free(big);
    TU_ASSERT_ERR(tz_load_bytes("", 0, &z, &e), e, PGS_ETRUNC, "header");
    TU_ASSERT_ERR(tz_load_bytes("TZ", 2, &z, &e), e, PGS_ETRUNC, "header");
    TU_ASSERT_ERR(tz_load_bytes("GIF89a", 6, &z, &e), e, PGS_EFORMAT, "not a TZif");
    free(good.p);
}

/* Every truncation and many single-byte corruptions of real files fail cleanly or load a zone
 * whose answers stay in range. */
static void test_tzfile_hostile_real_files(void **state)
{
    (void)state;
    if (!have_tzdata())
        skip();
    static const char *const names[] = {"Europe/Berlin", "Asia/Kolkata", "America/Santiago"};
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
        char path[256];
        snprintf(path, sizeof(path), ZONEINFO "/%s", names[k]);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        static uint8_t buf[65536];
        size_t len = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        assert_true(len > 44 && len < sizeof(buf));
        for (size_t n = 0; n < len; n++) {
            tz_zone *z = NULL;
            pgs_error e = {0};
            if (tz_load_bytes(buf, n, &z, &e) == 0 || e.msg[0] == '\0')
                fail_msg("%s cut to %zu bytes loaded", names[k], n);
        }
        for (size_t pos = 0; pos < len; pos++) {
            uint8_t keep = buf[pos];
            buf[pos] ^= (uint8_t)(0x5a + pos);
            tz_zone *z = NULL;
            pgs_error e = {0};
            if (tz_load_bytes(buf, len, &z, &e) == 0) {
                for (int64_t t = -3000000000; t < 5000000000; t += 100000007) {
                    int64_t o = tz_utc_offset(z, t);
                    assert_true(o >= -89999 && o <= 93599);
                }
                int64_t c = tz_next_change(z, 0);
                assert_true(c > 0);
                tz_free(z);
            } else {
                assert_true(e.msg[0] != '\0');
            }
            buf[pos] = keep;
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tzfile_civil_dates),
        cmocka_unit_test(test_tzfile_names),
        cmocka_unit_test(test_tzfile_utc_needs_no_file),
        cmocka_unit_test(test_tzfile_load_files),
        cmocka_unit_test(test_tzfile_real_offsets),
        cmocka_unit_test(test_tzfile_real_changes),
        cmocka_unit_test(test_tzfile_slim_footer_only),
        cmocka_unit_test(test_tzfile_footer_rules),
        cmocka_unit_test(test_tzfile_bad_footers),
        cmocka_unit_test(test_tzfile_versions),
        cmocka_unit_test(test_tzfile_hostile_tables),
        cmocka_unit_test(test_tzfile_hostile_real_files),
    };
    return cmocka_run_group_tests(tests, tu_tmpdir_setup, tu_tmpdir_teardown);
}
