/*
 * The TZif reader (see tzfile.h). A file is decoded into what the schedules need and nothing
 * else: the instants at which the UTC offset changes and the offset from then on, plus the
 * footer's rule for the years after the table. Abbreviations, isdst flags and the isstd/isut
 * indicators are validated and then dropped: a record that only renames "CEST" changes no
 * offset, and the schedules care about offsets only.
 *
 * The layout, from RFC 8536: a 44-byte header ("TZif", a version byte, 15 unused bytes, six
 * big-endian 32-bit counts: isutcnt isstdcnt leapcnt timecnt typecnt charcnt), then the data
 * block: timecnt transition times, timecnt type indices, typecnt 6-byte records (utoff int32,
 * isdst, desigidx), charcnt designation bytes, leapcnt leap records, isstdcnt and isutcnt
 * indicators. Version 1 stops there with 32-bit times. Version 2 and later repeat header and
 * block with 64-bit times (and 12-byte leap records) and end with "\n<TZ string>\n". Version 4
 * (RFC 9636) only relaxes rules for leap records, which we refuse anyway.
 */
#include "common/tzfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsutil.h"

/* RFC 8536 section 3.2: offsets outside (-25h, +26h) are not to be expected; bounding them also
 * bounds how far a wall clock can jump, which the cron search relies on. */
#define TZ_UTOFF_MIN (-89999)
#define TZ_UTOFF_MAX 93599
/* The Gregorian calendar repeats exactly every 400 years, weekdays included. */
#define TZ_400Y_DAYS INT64_C(146097)
#define TZ_400Y_SECS (TZ_400Y_DAYS * 86400)

/* A date of the footer's rule: Jn (1..365, February 29 never counted), n (0..365, counted), or
 * Mm.w.d (weekday d of week w, 5 = last, of month m), and the local time of day of the switch,
 * which version 3 lets run from -167 to +167 hours. */
struct tz_rdate {
    char kind; /* 'J', 'N', 'M' */
    int n, m, w, d;
    int32_t secs;
};

/* The footer's POSIX TZ string, offsets as seconds east of UTC (the string counts west). */
struct tz_rule {
    int32_t std_off;
    int32_t dst_off;
    int has_dst;
    struct tz_rdate start, end; /* daylight time starts (in standard time), ends (in daylight) */
};

struct tz_zone {
    char name[TZ_NAME_MAX + 1];
    int32_t off0;     /* before the first change: time type 0 */
    size_t nch;       /* the table's offset changes, ascending */
    int64_t *ch_time; /* from this instant on ... */
    int32_t *ch_off;  /* ... this offset */
    int has_trans;    /* the table has transitions; the rule applies after last_trans */
    int64_t last_trans;
    int has_rule; /* a non-empty footer */
    struct tz_rule rule;
};

/* ---- civil dates ---- */

static int64_t tz_floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int tz_is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

int tz_month_days(int64_t y, int m)
{
    static const int len[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m < 1 || m > 12)
        return 0;
    return m == 2 && tz_is_leap(y) ? 29 : len[m - 1];
}

/*
 * Counting years from March makes February, and its leap day, the end of a year, so every month
 * but the last has a fixed place and the day of the year follows from the month by one linear
 * formula ((153 * month_from_march + 2) / 5 is the count of days before that month). Leap days
 * are then yoe/4 - yoe/100 within a 400-year era.
 */
int64_t tz_days_from_civil(int64_t y, int m, int d)
{
    if (m <= 2)
        y--;
    int64_t era = tz_floordiv(y, 400);
    int64_t yoe = y - era * 400;              /* 0..399 */
    int64_t mp = (m + 9) % 12;                /* March = 0 ... February = 11 */
    int64_t doy = (153 * mp + 2) / 5 + d - 1; /* from March 1 */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * TZ_400Y_DAYS + doe - 719468; /* 719468: days from 0000-03-01 to 1970-01-01 */
}

void tz_civil_from_days(int64_t days, int64_t *y, int *m, int *d)
{
    int64_t z = days + 719468;
    int64_t era = tz_floordiv(z, TZ_400Y_DAYS);
    int64_t doe = z - era * TZ_400Y_DAYS; /* 0..146096 */
    /* Years of the era: remove the leap days before doe (one every 1460 days, minus the
     * century years, plus the 400th), then divide by 365. */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

int tz_weekday(int64_t days)
{
    return (int)((days % 7 + 7 + 4) % 7); /* 1970-01-01 was a Thursday */
}

const char *tz_format_utc(int64_t unix_s, char *buf, size_t len)
{
    int64_t days = tz_floordiv(unix_s, 86400);
    int64_t secs = unix_s - days * 86400;
    int64_t y;
    int m, d;
    tz_civil_from_days(days, &y, &m, &d);
    snprintf(buf, len, "%04lld-%02d-%02dT%02d:%02d:%02dZ", (long long)y, m, d, (int)(secs / 3600),
             (int)(secs / 60 % 60), (int)(secs % 60));
    return buf;
}

/* ---- the footer's rule ---- */

static int64_t tz_rdate_day(const struct tz_rdate *r, int64_t y)
{
    int64_t jan1 = tz_days_from_civil(y, 1, 1);
    switch (r->kind) {
    case 'J':
        return jan1 + r->n - 1 + (tz_is_leap(y) && r->n >= 60);
    case 'N':
        return jan1 + r->n;
    default: {
        int64_t first = tz_days_from_civil(y, r->m, 1);
        int64_t day = first + (r->d - tz_weekday(first) + 7) % 7 + (int64_t)(r->w - 1) * 7;
        while (day >= first + tz_month_days(y, r->m)) /* w = 5: the last one */
            day -= 7;
        return day;
    }
    }
}

/* The instant daylight time starts (is_start) or ends in year y. */
static int64_t tz_rule_switch(const struct tz_rule *r, int64_t y, int is_start)
{
    const struct tz_rdate *rd = is_start ? &r->start : &r->end;
    int32_t off = is_start ? r->std_off : r->dst_off;
    return tz_rdate_day(rd, y) * 86400 + rd->secs - off;
}

/* The offset the rule gives at t. The state is that of the latest switch at or before t among
 * the years around t's own (a switch may lie up to a week into the neighbouring year); when a
 * start and an end fall on the same instant, as in the all-year daylight time of version 3
 * ("EST5EDT4,0/0,J365/25"), daylight time wins. */
static int32_t tz_rule_offset(const struct tz_rule *r, int64_t t)
{
    if (!r->has_dst)
        return r->std_off;
    if (t > TZ_TIME_MAX || t < TZ_TIME_MIN)
        t %= TZ_400Y_SECS; /* same calendar, same answer, no overflow */
    int64_t y0;
    int m, d;
    tz_civil_from_days(tz_floordiv(t + r->std_off, 86400), &y0, &m, &d);
    int64_t best = INT64_MIN;
    int best_dst = 0, found = 0;
    for (int64_t y = y0 - 2; y <= y0 + 1; y++) {
        for (int s = 0; s < 2; s++) {
            int64_t sw = tz_rule_switch(r, y, s);
            if (sw > t)
                continue;
            if (!found || sw > best || (sw == best && s)) {
                best = sw;
                best_dst = s;
                found = 1;
            }
        }
    }
    return best_dst ? r->dst_off : r->std_off;
}

/* The first instant after t (> t) at which the rule's offset changes, or TZ_NEVER. */
static int64_t tz_rule_next(const struct tz_rule *r, int64_t t)
{
    if (!r->has_dst || t >= TZ_TIME_MAX)
        return TZ_NEVER;
    int64_t y0;
    int m, d;
    tz_civil_from_days(tz_floordiv(t + r->std_off, 86400), &y0, &m, &d);
    int64_t best = TZ_NEVER;
    /* Switches of years y0-1 .. y0+2, in any order; keep the earliest real change after t. */
    for (int64_t y = y0 - 1; y <= y0 + 2; y++) {
        for (int s = 0; s < 2; s++) {
            int64_t sw = tz_rule_switch(r, y, s);
            if (sw > t && sw < best && tz_rule_offset(r, sw) != tz_rule_offset(r, sw - 1))
                best = sw;
        }
    }
    return best > TZ_TIME_MAX ? TZ_NEVER : best;
}

/* A POSIX TZ string's pieces. Each parser advances *p and returns 0, or -1 on a syntax error. */

static int tz_parse_num(const char **p, int maxdigits, int max, int *out)
{
    int v = 0, n = 0;
    while (n < maxdigits && **p >= '0' && **p <= '9') {
        v = v * 10 + (**p - '0');
        (*p)++;
        n++;
    }
    if (n == 0 || v > max)
        return -1;
    *out = v;
    return 0;
}

/* [+-]hh[:mm[:ss]] with hh at most maxh (24 for offsets, 167 for switch times). */
static int tz_parse_hms(const char **p, int maxh, int hdigits, int32_t *out)
{
    int sign = 1, h, mi = 0, s = 0;
    if (**p == '+' || **p == '-')
        sign = *(*p)++ == '-' ? -1 : 1;
    if (tz_parse_num(p, hdigits, maxh, &h) != 0)
        return -1;
    if (**p == ':') {
        (*p)++;
        if (tz_parse_num(p, 2, 59, &mi) != 0)
            return -1;
        if (**p == ':') {
            (*p)++;
            if (tz_parse_num(p, 2, 59, &s) != 0)
                return -1;
        }
    }
    *out = sign * (h * 3600 + mi * 60 + s);
    return 0;
}

/* An abbreviation: three or more letters, or <...> around three or more of [A-Za-z0-9+-]. */
static int tz_parse_abbr(const char **p)
{
    const char *s = *p;
    size_t n = 0;
    if (*s == '<') {
        s++;
        while ((s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= 'a' && s[n] <= 'z') ||
               (s[n] >= '0' && s[n] <= '9') || s[n] == '+' || s[n] == '-')
            n++;
        if (n < 3 || s[n] != '>')
            return -1;
        *p = s + n + 1;
        return 0;
    }
    while ((s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= 'a' && s[n] <= 'z'))
        n++;
    if (n < 3)
        return -1;
    *p = s + n;
    return 0;
}

static int tz_parse_rdate(const char **p, struct tz_rdate *r)
{
    memset(r, 0, sizeof(*r));
    if (**p == 'J') {
        (*p)++;
        r->kind = 'J';
        if (tz_parse_num(p, 3, 365, &r->n) != 0 || r->n < 1)
            return -1;
    } else if (**p == 'M') {
        (*p)++;
        r->kind = 'M';
        if (tz_parse_num(p, 2, 12, &r->m) != 0 || r->m < 1 || *(*p)++ != '.' ||
            tz_parse_num(p, 1, 5, &r->w) != 0 || r->w < 1 || *(*p)++ != '.' ||
            tz_parse_num(p, 1, 6, &r->d) != 0)
            return -1;
    } else {
        r->kind = 'N';
        if (tz_parse_num(p, 3, 365, &r->n) != 0)
            return -1;
    }
    r->secs = 2 * 3600;
    if (**p == '/') {
        (*p)++;
        if (tz_parse_hms(p, 167, 3, &r->secs) != 0)
            return -1;
    }
    return 0;
}

/* std offset [dst [offset] [,start[/time],end[/time]]]; NUL-terminated s. */
static int tz_parse_rule(const char *s, struct tz_rule *r)
{
    const char *p = s;
    int32_t west;
    memset(r, 0, sizeof(*r));
    if (tz_parse_abbr(&p) != 0 || tz_parse_hms(&p, 24, 2, &west) != 0)
        return -1;
    r->std_off = -west;
    if (*p == '\0')
        return 0;
    if (tz_parse_abbr(&p) != 0)
        return -1;
    r->has_dst = 1;
    r->dst_off = r->std_off + 3600;
    if (*p != ',' && *p != '\0') {
        if (tz_parse_hms(&p, 24, 2, &west) != 0)
            return -1;
        r->dst_off = -west;
    }
    if (*p == '\0') {
        /* POSIX leaves the rule to the implementation; zic always writes one. Use the common
         * default, the United States' rule since 2007. */
        r->start = (struct tz_rdate){'M', 0, 3, 2, 0, 7200};
        r->end = (struct tz_rdate){'M', 0, 11, 1, 0, 7200};
        return 0;
    }
    if (*p++ != ',' || tz_parse_rdate(&p, &r->start) != 0 || *p++ != ',' ||
        tz_parse_rdate(&p, &r->end) != 0 || *p != '\0')
        return -1;
    return 0;
}

/* ---- the zone ---- */

static int32_t tz_table_offset(const tz_zone *z, int64_t t)
{
    /* the last change at or before t */
    size_t lo = 0, hi = z->nch;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->ch_time[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == 0 ? z->off0 : z->ch_off[lo - 1];
}

static int tz_rule_applies(const tz_zone *z, int64_t t)
{
    return z->has_rule && (!z->has_trans || t > z->last_trans);
}

int64_t tz_utc_offset(const tz_zone *z, int64_t unix_s)
{
    if (tz_rule_applies(z, unix_s))
        return tz_rule_offset(&z->rule, unix_s);
    return tz_table_offset(z, unix_s);
}

int64_t tz_next_change(const tz_zone *z, int64_t t)
{
    if (t >= TZ_TIME_MAX)
        return TZ_NEVER;
    if (t < TZ_TIME_MIN - 1)
        t = TZ_TIME_MIN - 1;
    if (!tz_rule_applies(z, t)) {
        size_t lo = 0, hi = z->nch;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (z->ch_time[mid] <= t)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo < z->nch)
            return z->ch_time[lo] > TZ_TIME_MAX ? TZ_NEVER : z->ch_time[lo];
        if (!z->has_rule || z->last_trans >= TZ_TIME_MAX)
            return TZ_NEVER;
        /* Where the table hands over to the rule, their offsets may differ. */
        int64_t join = z->last_trans + 1;
        if (tz_utc_offset(z, join) != tz_utc_offset(z, z->last_trans))
            return join;
        t = join;
    }
    return tz_rule_next(&z->rule, t);
}

const char *tz_name(const tz_zone *z)
{
    return z->name;
}

void tz_free(tz_zone *z)
{
    if (z == NULL)
        return;
    free(z->ch_time);
    free(z->ch_off);
    free(z);
}

int tz_utc(tz_zone **out, pgs_error *e)
{
    *out = calloc(1, sizeof(**out));
    if (*out == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    strcpy((*out)->name, "UTC");
    return 0;
}

int tz_name_valid(const char *name)
{
    size_t n = strnlen(name, TZ_NAME_MAX + 1);
    if (n == 0 || n > TZ_NAME_MAX || name[0] == '/' || name[n - 1] == '/')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '+' || c == '-' || c == '/'))
            return 0;
        if (c == '/' && name[i + 1] == '/')
            return 0;
    }
    return 1;
}

/* ---- TZif decoding ---- */

static uint32_t tz_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t tz_be64(const uint8_t *p)
{
    return (int64_t)((uint64_t)tz_be32(p) << 32 | tz_be32(p + 4));
}

struct tz_header {
    int version; /* 1, 2, 3, 4 */
    uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

#define TZ_HEADER_LEN 44

static int tz_read_header(const uint8_t *p, size_t avail, struct tz_header *h, const char *which,
                          pgs_error *e)
{
    if (avail < TZ_HEADER_LEN) {
        if (avail >= 4 && memcmp(p, "TZif", 4) != 0)
            return pgs_fail(e, PGS_EFORMAT, "not a TZif file (%s header has no \"TZif\")", which);
        return pgs_fail(e, PGS_ETRUNC, "TZif data ends inside its %s header", which);
    }
    if (memcmp(p, "TZif", 4) != 0)
        return pgs_fail(e, PGS_EFORMAT, "not a TZif file (%s header has no \"TZif\")", which);
    switch (p[4]) {
    case 0:
        h->version = 1;
        break;
    case '2':
        h->version = 2;
        break;
    case '3':
        h->version = 3;
        break;
    case '4':
        h->version = 4;
        break;
    default:
        return pgs_fail(e, PGS_EVERSION, "TZif version byte 0x%02x is not supported", p[4]);
    }
    h->isutcnt = tz_be32(p + 20);
    h->isstdcnt = tz_be32(p + 24);
    h->leapcnt = tz_be32(p + 28);
    h->timecnt = tz_be32(p + 32);
    h->typecnt = tz_be32(p + 36);
    h->charcnt = tz_be32(p + 40);
    return 0;
}

/* Bytes of a data block with tsize-byte times; the counts are 32-bit, so this cannot overflow. */
static uint64_t tz_block_len(const struct tz_header *h, unsigned tsize)
{
    return (uint64_t)h->timecnt * (tsize + 1) + (uint64_t)h->typecnt * 6 + h->charcnt +
           (uint64_t)h->leapcnt * (tsize + 4) + h->isstdcnt + h->isutcnt;
}

/* Validates the data block at p (its length checked by the caller) and fills z's table. */
static int tz_decode_block(const uint8_t *p, const struct tz_header *h, unsigned tsize, tz_zone *z,
                           pgs_error *e)
{
    if (h->typecnt == 0)
        return pgs_fail(e, PGS_EFORMAT, "TZif data has no local time types");
    if (h->typecnt > TZ_TYPES_MAX)
        return pgs_fail(e, PGS_ELIMIT, "TZif data has %u local time types (at most %u)", h->typecnt,
                        TZ_TYPES_MAX);
    if (h->charcnt == 0)
        return pgs_fail(e, PGS_EFORMAT, "TZif data has no time zone designations");
    if ((h->isstdcnt != 0 && h->isstdcnt != h->typecnt) ||
        (h->isutcnt != 0 && h->isutcnt != h->typecnt))
        return pgs_fail(e, PGS_EFORMAT,
                        "TZif data has %u standard/wall and %u UT/local indicators for %u types",
                        h->isstdcnt, h->isutcnt, h->typecnt);
    if (h->leapcnt != 0)
        return pgs_fail(e, PGS_ELIMIT,
                        "TZif data has leap-second records (right/ zones are not supported)");

    const uint8_t *times = p;
    const uint8_t *idx = times + (size_t)h->timecnt * tsize;
    const uint8_t *types = idx + h->timecnt;
    const uint8_t *isstd = types + (size_t)h->typecnt * 6 + h->charcnt; /* no leap records */
    const uint8_t *isut = isstd + h->isstdcnt;
    int32_t utoff[TZ_TYPES_MAX];

    for (uint32_t i = 0; i < h->typecnt; i++) {
        const uint8_t *t = types + (size_t)i * 6;
        int32_t off = (int32_t)tz_be32(t);
        if (off < TZ_UTOFF_MIN || off > TZ_UTOFF_MAX)
            return pgs_fail(e, PGS_EFORMAT,
                            "TZif local time type %u has offset %ld s (outside "
                            "-25h..+26h)",
                            i, (long)off);
        if (t[4] > 1)
            return pgs_fail(e, PGS_EFORMAT, "TZif local time type %u has isdst %u", i, t[4]);
        if (t[5] >= h->charcnt)
            return pgs_fail(e, PGS_EFORMAT,
                            "TZif local time type %u names designation %u of %u bytes", i, t[5],
                            h->charcnt);
        utoff[i] = off;
    }
    for (uint32_t i = 0; i < h->isstdcnt; i++) {
        if (isstd[i] > 1 || (h->isutcnt != 0 && isut[i] > 1) ||
            (h->isutcnt != 0 && isut[i] == 1 && isstd[i] == 0))
            return pgs_fail(e, PGS_EFORMAT, "TZif indicators of local time type %u are invalid", i);
    }
    for (uint32_t i = 0; h->isstdcnt == 0 && i < h->isutcnt; i++)
        if (isut[i] != 0) /* UT without standard time is not a combination the RFC allows */
            return pgs_fail(e, PGS_EFORMAT, "TZif indicators of local time type %u are invalid", i);

    z->off0 = utoff[0];
    if (h->timecnt > 0) {
        z->ch_time = malloc((size_t)h->timecnt * sizeof(*z->ch_time));
        z->ch_off = malloc((size_t)h->timecnt * sizeof(*z->ch_off));
        if (z->ch_time == NULL || z->ch_off == NULL)
            return pgs_fail(e, PGS_ENOMEM, "out of memory");
    }
    int32_t cur = z->off0;
    int64_t prev = 0;
    for (uint32_t i = 0; i < h->timecnt; i++) {
        const uint8_t *tp = times + (size_t)i * tsize;
        int64_t t = tsize == 8 ? tz_be64(tp) : (int64_t)(int32_t)tz_be32(tp);
        if (i > 0 && t <= prev)
            return pgs_fail(e, PGS_EFORMAT, "TZif transition %u is not after the one before it", i);
        if (idx[i] >= h->typecnt)
            return pgs_fail(e, PGS_EFORMAT, "TZif transition %u names local time type %u of %u", i,
                            idx[i], h->typecnt);
        prev = t;
        if (utoff[idx[i]] != cur) {
            cur = utoff[idx[i]];
            z->ch_time[z->nch] = t;
            z->ch_off[z->nch] = cur;
            z->nch++;
        }
    }
    z->has_trans = h->timecnt > 0;
    z->last_trans = prev;
    return 0;
}

int tz_load_bytes(const void *buf, size_t len, tz_zone **out, pgs_error *e)
{
    const uint8_t *p = buf;
    struct tz_header h1, h2;
    tz_zone *z = NULL;
    int rc;

    *out = NULL;
    if (len > TZ_FILE_MAX)
        return pgs_fail(e, PGS_ELIMIT, "TZif data is %zu bytes (at most %u)", len, TZ_FILE_MAX);
    if ((rc = tz_read_header(p, len, &h1, "first", e)) != 0)
        return rc;
    z = calloc(1, sizeof(*z));
    if (z == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    strcpy(z->name, "-");

    size_t pos = TZ_HEADER_LEN;
    uint64_t blen = tz_block_len(&h1, 4);
    if (blen > len - pos) {
        rc = pgs_fail(e, PGS_ETRUNC,
                      "TZif data ends inside its version 1 data block (%llu bytes "
                      "announced, %zu left)",
                      (unsigned long long)blen, len - pos);
        goto out;
    }
    if (h1.version == 1) {
        if ((rc = tz_decode_block(p + pos, &h1, 4, z, e)) != 0)
            goto out;
        pos += (size_t)blen;
        if (pos != len) {
            rc = pgs_fail(e, PGS_ETRAIL, "TZif version 1 data has %zu bytes after its data block",
                          len - pos);
            goto out;
        }
        *out = z;
        return 0;
    }

    /* Version 2+: the 32-bit block is only for old readers; skip it. */
    pos += (size_t)blen;
    if ((rc = tz_read_header(p + pos, len - pos, &h2, "second", e)) != 0)
        goto out;
    if (h2.version != h1.version) {
        rc = pgs_fail(e, PGS_EFORMAT, "TZif headers disagree on the version (%d and %d)",
                      h1.version, h2.version);
        goto out;
    }
    pos += TZ_HEADER_LEN;
    blen = tz_block_len(&h2, 8);
    if (blen > len - pos) {
        rc = pgs_fail(e, PGS_ETRUNC,
                      "TZif data ends inside its 64-bit data block (%llu bytes "
                      "announced, %zu left)",
                      (unsigned long long)blen, len - pos);
        goto out;
    }
    if ((rc = tz_decode_block(p + pos, &h2, 8, z, e)) != 0)
        goto out;
    pos += (size_t)blen;

    /* The footer: "\n", a TZ string without newlines (maybe empty), "\n". */
    if (pos >= len) {
        rc = pgs_fail(e, PGS_ETRUNC, "TZif data ends before its footer");
        goto out;
    }
    if (p[pos] != '\n') {
        rc = pgs_fail(e, PGS_EFORMAT, "TZif footer does not start with a newline");
        goto out;
    }
    pos++;
    const uint8_t *nl = memchr(p + pos, '\n', len - pos);
    if (nl == NULL) {
        rc = pgs_fail(e, PGS_ETRUNC, "TZif footer has no final newline");
        goto out;
    }
    size_t flen = (size_t)(nl - (p + pos));
    if (flen > TZ_FOOTER_MAX) {
        rc = pgs_fail(e, PGS_ELIMIT, "TZif footer is %zu bytes (at most %u)", flen, TZ_FOOTER_MAX);
        goto out;
    }
    if (flen > 0) {
        char footer[TZ_FOOTER_MAX + 1];
        memcpy(footer, p + pos, flen);
        footer[flen] = '\0';
        if (strlen(footer) != flen || tz_parse_rule(footer, &z->rule) != 0) {
            rc = pgs_fail(e, PGS_EFORMAT, "TZif footer \"%.*s\" is not a valid TZ string",
                          (int)(flen > 64 ? 64 : flen), footer[0] ? footer : "");
            /* the message may carry odd bytes: cut them out */
            for (char *c = e ? e->msg : NULL; c != NULL && *c; c++)
                if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
                    *c = '?';
            goto out;
        }
        z->has_rule = 1;
    }
    pos += flen + 1;
    if (pos != len) {
        rc = pgs_fail(e, PGS_ETRAIL, "TZif data has %zu bytes after its footer", len - pos);
        goto out;
    }
    *out = z;
    return 0;
out:
    tz_free(z);
    return rc;
}

/* ---- files ---- */

int tz_load(const char *dir, const char *name, tz_zone **out, pgs_error *e)
{
    *out = NULL;
    if (!tz_name_valid(name))
        return pgs_fail(e, PGS_EINVAL,
                        "time zone name is not valid (1-%d characters of A-Z a-z 0-9 _ + - /, "
                        "no leading '/', no empty, \".\" or \"..\" part)",
                        TZ_NAME_MAX);
    if (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0) {
        int rc = tz_utc(out, e);
        if (rc == 0)
            snprintf((*out)->name, sizeof((*out)->name), "%s", name);
        return rc;
    }
    if (dir == NULL) {
        dir = getenv(TZ_ENV_DIR);
        if (dir == NULL || dir[0] == '\0')
            dir = TZ_DEFAULT_DIR;
    }
    char path[4096];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >= sizeof(path))
        return pgs_fail(e, PGS_ELIMIT, "time zone %s: the path is too long", name);

    int rc;
    uint8_t *buf = NULL;
    /* O_NONBLOCK: a FIFO planted in the directory must not hang the coordinator */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return pgs_fail(e, PGS_ENOTFOUND, "time zone %s is unknown: %s does not exist", name,
                            path);
        return pgs_fail(e, PGS_EIO, "time zone %s: cannot open %s: %s", name, path,
                        strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = pgs_fail(e, PGS_EIO, "time zone %s: cannot stat %s: %s", name, path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = pgs_fail(e, PGS_EINVAL, "time zone %s: %s is not a regular file", name, path);
        goto out;
    }
    if (st.st_size > (off_t)TZ_FILE_MAX) {
        rc = pgs_fail(e, PGS_ELIMIT, "time zone %s: %s is %lld bytes (at most %u)", name, path,
                      (long long)st.st_size, TZ_FILE_MAX);
        goto out;
    }
    /* One byte more than the limit, in case the file grew after fstat. */
    buf = malloc((size_t)TZ_FILE_MAX + 1);
    if (buf == NULL) {
        rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
        goto out;
    }
    ssize_t n = fs_read_full(fd, buf, (size_t)TZ_FILE_MAX + 1);
    if (n < 0) {
        rc = pgs_fail(e, PGS_EIO, "time zone %s: cannot read %s: %s", name, path, strerror(errno));
        goto out;
    }
    if ((rc = tz_load_bytes(buf, (size_t)n, out, e)) != 0) {
        if (e != NULL)
            pgs_wrap(e, "time zone %s (%s)", name, path);
        goto out;
    }
    snprintf((*out)->name, sizeof((*out)->name), "%s", name);
out:
    free(buf);
    close(fd);
    return rc;
}
