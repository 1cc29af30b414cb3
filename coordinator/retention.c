/*
 * Retention policies and the planner (see retention.h). The planner follows the rules of
 * restic's forget as its documentation describes them, so an operator's restic habits carry
 * over: walk the complete backups from the newest, and let each calendar rule keep the first
 * backup it meets in each new period until its count runs out. The calendar is computed here in
 * UTC from the unix time (days_from_civil and its inverse), never through localtime(), so the
 * plan is the same on every machine and at every moment.
 */
#include "coordinator/retention.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the calendar, in UTC ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Days since 1970-01-01 of the proleptic Gregorian date y-m-d (m 1..12, d 1..31). Counts in
 * 400-year eras (146097 days) from 0000-03-01, so that the leap day ends each era's year. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;                                   /* 0..399 */
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* 0..365 */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* 0..146096 */
    return era * 146097 + doe - 719468;
}

/* The inverse of days_from_civil. */
static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

int64_t retention_duration_before(const retention_duration *d, int64_t t)
{
    int64_t day = floor_div(t, 86400);
    int64_t sod = t - day * 86400;
    int64_t y;
    int m, md;
    civil_from_days(day, &y, &m, &md);
    /* As a calendar does it: months first (normalising the year), then days counted from the
     * first of that month, so that a day the month does not have rolls over into the next. */
    int64_t months = y * 12 + (m - 1) - ((int64_t)d->years * 12 + d->months);
    int64_t ny = floor_div(months, 12);
    int nm = (int)(months - ny * 12) + 1;
    int64_t nday = days_from_civil(ny, nm, 1) + (md - 1) - d->days;
    return nday * 86400 + sod - (int64_t)d->hours * 3600;
}

/* ---- durations and counts ---- */

/* True when text is printable ASCII, so that messages may quote it. */
static int printable(const char *text)
{
    for (; *text != '\0'; text++)
        if ((unsigned char)*text < 0x20 || (unsigned char)*text > 0x7e)
            return 0;
    return 1;
}

int retention_duration_parse(const char *text, retention_duration *out, pgs_error *e)
{
    memset(out, 0, sizeof(*out));
    if (text == NULL || text[0] == '\0')
        return pgs_fail(e, PGS_EINVAL, "empty duration (write e.g. 7d, 1y6m or 36h)");
    size_t len = strnlen(text, RETENTION_DURATION_TEXT_MAX + 1);
    if (len > RETENTION_DURATION_TEXT_MAX)
        return pgs_fail(e, PGS_ELIMIT, "duration longer than %d bytes",
                        RETENTION_DURATION_TEXT_MAX);
    if (!printable(text))
        return pgs_fail(e, PGS_EINVAL,
                        "duration with a byte that is not printable ASCII (write "
                        "e.g. 7d, 1y6m or 36h)");
    retention_duration d = {0};
    int seen = 0;
    size_t i = 0;
    while (i < len) {
        if (text[i] < '0' || text[i] > '9')
            return pgs_fail(e, PGS_EINVAL,
                            "duration \"%s\": expected a number at byte %zu (write e.g. 7d, "
                            "1y6m or 36h)",
                            text, i + 1);
        long v = 0;
        while (i < len && text[i] >= '0' && text[i] <= '9') {
            v = v * 10 + (text[i] - '0');
            if (v > RETENTION_DURATION_PART_MAX)
                return pgs_fail(e, PGS_ELIMIT, "duration \"%s\": a number above %d", text,
                                RETENTION_DURATION_PART_MAX);
            i++;
        }
        if (i == len)
            return pgs_fail(e, PGS_EINVAL, "duration \"%s\": no unit after %ld (use y, m, d or h)",
                            text, v);
        int *slot, bit;
        switch (text[i]) {
        case 'y':
            slot = &d.years, bit = 1;
            break;
        case 'm':
            slot = &d.months, bit = 2;
            break;
        case 'd':
            slot = &d.days, bit = 4;
            break;
        case 'h':
            slot = &d.hours, bit = 8;
            break;
        case 'w':
            return pgs_fail(e, PGS_EINVAL, "duration \"%s\": no unit w (write weeks as days: 7d)",
                            text);
        default:
            return pgs_fail(e, PGS_EINVAL,
                            "duration \"%s\": unknown unit at byte %zu (use y, m, d or h)", text,
                            i + 1);
        }
        if (seen & bit)
            return pgs_fail(e, PGS_EINVAL, "duration \"%s\": unit %c given twice", text, text[i]);
        seen |= bit;
        *slot = (int)v;
        i++;
    }
    if (d.years == 0 && d.months == 0 && d.days == 0 && d.hours == 0)
        return pgs_fail(e, PGS_EINVAL, "duration \"%s\" is zero", text);
    *out = d;
    return 0;
}

int retention_duration_format(const retention_duration *d, char *buf, size_t cap)
{
    char tmp[64];
    size_t o = 0;
    const int v[4] = {d->years, d->months, d->days, d->hours};
    const char u[4] = {'y', 'm', 'd', 'h'};
    for (int k = 0; k < 4; k++)
        if (v[k] != 0)
            o += (size_t)snprintf(tmp + o, sizeof(tmp) - o, "%d%c", v[k], u[k]);
    if (o == 0)
        o = (size_t)snprintf(tmp, sizeof(tmp), "0h");
    return snprintf(buf, cap, "%s", tmp);
}

static int duration_zero(const retention_duration *d)
{
    return d->years == 0 && d->months == 0 && d->days == 0 && d->hours == 0;
}

static int duration_valid(const retention_duration *d)
{
    const int v[4] = {d->years, d->months, d->days, d->hours};
    for (int k = 0; k < 4; k++)
        if (v[k] < 0 || v[k] > RETENTION_DURATION_PART_MAX)
            return 0;
    return 1;
}

static int count_valid(int c)
{
    return c == RETENTION_UNLIMITED || (c >= 0 && c <= RETENTION_COUNT_MAX);
}

static int count_parse(const char *key, const char *text, int *out, pgs_error *e)
{
    if (!printable(text))
        return pgs_fail(e, PGS_EINVAL, "%s: not a count (0..%d or unlimited)", key,
                        RETENTION_COUNT_MAX);
    if (strcmp(text, "unlimited") == 0) {
        *out = RETENTION_UNLIMITED;
        return 0;
    }
    long v = 0;
    size_t i = 0;
    for (; text[i] >= '0' && text[i] <= '9'; i++) {
        v = v * 10 + (text[i] - '0');
        if (v > RETENTION_COUNT_MAX)
            return pgs_fail(e, PGS_ELIMIT, "%s: more than %d", key, RETENTION_COUNT_MAX);
    }
    if (i == 0 || text[i] != '\0')
        return pgs_fail(e, PGS_EINVAL, "%s: \"%.40s\" is not a count (0..%d or unlimited)", key,
                        text, RETENTION_COUNT_MAX);
    *out = (int)v;
    return 0;
}

/* The six counted rules, in the order of reasons and descriptions. */
enum { R_LAST, R_HOURLY, R_DAILY, R_WEEKLY, R_MONTHLY, R_YEARLY, R_COUNT };

static const char *const rule_names[R_COUNT] = {"last",   "hourly",  "daily",
                                                "weekly", "monthly", "yearly"};

static int *rule_count(retention_policy *p, int r)
{
    int *const c[R_COUNT] = {&p->keep_last,   &p->keep_hourly,  &p->keep_daily,
                             &p->keep_weekly, &p->keep_monthly, &p->keep_yearly};
    return c[r];
}

static int rule_get(const retention_policy *p, int r)
{
    const int c[R_COUNT] = {p->keep_last,   p->keep_hourly,  p->keep_daily,
                            p->keep_weekly, p->keep_monthly, p->keep_yearly};
    return c[r];
}

int retention_policy_set(retention_policy *p, const char *key, const char *value, pgs_error *e)
{
    if (key == NULL || value == NULL)
        return pgs_fail(e, PGS_EINVAL, "retention: missing key or value");
    if (strcmp(key, "keep_within") == 0) {
        retention_duration d;
        if (retention_duration_parse(value, &d, e) != 0)
            return pgs_wrap(e, "keep_within");
        p->keep_within = d;
        return 0;
    }
    for (int r = 0; r < R_COUNT; r++) {
        char name[16];
        snprintf(name, sizeof(name), "keep_%s", rule_names[r]);
        if (strcmp(key, name) == 0)
            return count_parse(name, value, rule_count(p, r), e);
    }
    return pgs_fail(e, PGS_EINVAL,
                    "unknown key \"%.40s\" (use keep_last, keep_within, keep_hourly, keep_daily, "
                    "keep_weekly, keep_monthly, keep_yearly)",
                    printable(key) ? key : "?");
}

int retention_policy_check(const char *name, const retention_policy *p, pgs_error *e)
{
    int any = 0;
    for (int r = 0; r < R_COUNT; r++) {
        int c = rule_get(p, r);
        if (!count_valid(c))
            return pgs_fail(e, PGS_EINVAL,
                            "retention %s: keep_%s %d is out of range (0..%d or unlimited)", name,
                            rule_names[r], c, RETENTION_COUNT_MAX);
        any |= c != 0;
    }
    if (!duration_valid(&p->keep_within))
        return pgs_fail(e, PGS_EINVAL, "retention %s: keep_within has a part out of range (0..%d)",
                        name, RETENTION_DURATION_PART_MAX);
    any |= !duration_zero(&p->keep_within);
    if (!any)
        return pgs_fail(e, PGS_EINVAL,
                        "retention %s: no keep_* rule (give at least one of keep_last, "
                        "keep_within, keep_hourly, keep_daily, keep_weekly, keep_monthly, "
                        "keep_yearly, above 0)",
                        name);
    return 0;
}

int retention_policy_text(const retention_policy *p, char *buf, size_t cap)
{
    char tmp[320], dur[64];
    size_t o = 0;
    for (int r = 0; r < R_COUNT; r++) {
        int c = rule_get(p, r);
        if (c == 0)
            continue;
        if (c == RETENTION_UNLIMITED)
            o += (size_t)snprintf(tmp + o, sizeof(tmp) - o, "%skeep_%s unlimited", o ? ", " : "",
                                  rule_names[r]);
        else
            o += (size_t)snprintf(tmp + o, sizeof(tmp) - o, "%skeep_%s %d", o ? ", " : "",
                                  rule_names[r], c);
    }
    if (!duration_zero(&p->keep_within)) {
        retention_duration_format(&p->keep_within, dur, sizeof(dur));
        o += (size_t)snprintf(tmp + o, sizeof(tmp) - o, "%skeep_within %s", o ? ", " : "", dur);
    }
    if (o == 0)
        snprintf(tmp, sizeof(tmp), "no rule");
    return snprintf(buf, cap, "%s", tmp);
}

/* ---- the planner ---- */

typedef struct entry {
    int64_t time;
    const char *id;
    size_t idx; /* into items */
} entry;

/* Newest first; equal times by id, from the greatest, so the order never depends on the
 * caller's; equal ids last by position, which only matters for duplicates. */
static int entry_cmp(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (x->time != y->time)
        return x->time > y->time ? -1 : 1;
    int c = strcmp(y->id, x->id);
    if (c != 0)
        return c;
    return x->idx < y->idx ? -1 : (x->idx > y->idx);
}

static void add_reason(retention_item *it, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void add_reason(retention_item *it, const char *fmt, ...)
{
    size_t o = strlen(it->reasons);
    size_t cap = sizeof(it->reasons);
    if (o != 0 && o + 2 < cap) {
        memcpy(it->reasons + o, ", ", 3);
        o += 2;
    }
    if (o + 1 < cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(it->reasons + o, cap - o, fmt, ap);
        va_end(ap);
    }
    it->keep = 1;
}

/* The calendar period of time t for a counted rule, as a number that differs between periods. */
static int64_t period(int r, int64_t t)
{
    int64_t day = floor_div(t, 86400);
    int64_t y;
    int m, d;
    switch (r) {
    case R_HOURLY:
        return floor_div(t, 3600);
    case R_DAILY:
        return day;
    case R_WEEKLY:
        /* 1970-01-01 was a Thursday: day + 3 counts from Monday 1969-12-29, so whole weeks of
         * that count are ISO weeks (Monday to Sunday), the same periods as ISO year and week. */
        return floor_div(day + 3, 7);
    case R_MONTHLY:
        civil_from_days(day, &y, &m, &d);
        return y * 12 + (m - 1);
    default: /* R_YEARLY */
        civil_from_days(day, &y, &m, &d);
        return y;
    }
}

int retention_plan(const retention_policy *p, retention_item *items, size_t n, pgs_error *e)
{
    int rc = retention_policy_check("policy", p, e);
    if (rc != 0)
        return rc;
    if (n > RETENTION_ITEMS_MAX)
        return pgs_fail(e, PGS_ELIMIT, "retention: %zu backups, more than the %u allowed", n,
                        RETENTION_ITEMS_MAX);
    if (n > 0 && items == NULL)
        return pgs_fail(e, PGS_EINVAL, "retention: no items");
    size_t nc = 0;
    for (size_t i = 0; i < n; i++) {
        if (items[i].time < RETENTION_TIME_MIN || items[i].time > RETENTION_TIME_MAX)
            return pgs_fail(e, PGS_EINVAL,
                            "retention: backup %.40s has time %lld, outside 1970..9999",
                            items[i].id ? items[i].id : "(no id)", (long long)items[i].time);
        nc += items[i].complete != 0;
    }
    entry *list = NULL;
    if (nc > 0 && (list = malloc(nc * sizeof(*list))) == NULL)
        return pgs_fail(e, PGS_ENOMEM, "retention: out of memory for %zu backups", nc);

    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        items[i].keep = 0;
        items[i].reasons[0] = '\0';
        if (items[i].complete)
            list[k++] = (entry){items[i].time, items[i].id ? items[i].id : "", i};
    }
    if (nc > 0)
        qsort(list, nc, sizeof(*list), entry_cmp);

    struct {
        int left;     /* periods still to keep; RETENTION_UNLIMITED: all */
        int64_t last; /* the period of the last backup kept */
        int rank;     /* backups kept so far, for "daily K" */
    } rule[R_COUNT];
    for (int r = 0; r < R_COUNT; r++) {
        rule[r].left = rule_get(p, r);
        rule[r].last = INT64_MIN;
        rule[r].rank = 0;
    }
    int within = !duration_zero(&p->keep_within);
    int64_t cutoff = 0;
    char dur[64];
    if (within && nc > 0) {
        cutoff = retention_duration_before(&p->keep_within, list[0].time);
        retention_duration_format(&p->keep_within, dur, sizeof(dur));
    }

    for (size_t nr = 0; nr < nc; nr++) {
        retention_item *it = &items[list[nr].idx];
        int oldest = nr == nc - 1;
        for (int r = 0; r < R_COUNT; r++) {
            if (rule[r].left == 0)
                continue;
            /* keep_last treats every backup as a period of its own */
            int64_t per = r == R_LAST ? (int64_t)nr : period(r, list[nr].time);
            if (per == rule[r].last && !oldest)
                continue;
            /* Past the oldest backup there is nothing left to keep with this rule's remaining
             * count, so the oldest stays even when a newer backup already stands for its
             * period: that keeps the history as long as the rule asks for. */
            if (per == rule[r].last)
                add_reason(it, "oldest %s", rule_names[r]);
            else
                add_reason(it, "%s %d", rule_names[r], ++rule[r].rank);
            rule[r].last = per;
            if (rule[r].left > 0)
                rule[r].left--;
        }
        if (within && list[nr].time > cutoff)
            add_reason(it, "within %s", dur);
    }
    if (nc > 0)
        add_reason(&items[list[0].idx], "newest complete");
    for (size_t i = 0; i < n; i++) {
        if (items[i].pinned)
            add_reason(&items[i], "pinned");
        else if (!items[i].complete)
            snprintf(items[i].reasons, sizeof(items[i].reasons), "failed");
    }
    free(list);
    return 0;
}
