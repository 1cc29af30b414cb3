/*
 * Cron expressions (see cron.h for the syntax and the daylight saving rules).
 *
 * An expression becomes five bit sets and a zone. Finding the next run is done in two layers:
 *
 *   - cron_next_wall searches wall-clock time only, as if local time were a clock without
 *     jumps: from a local instant it finds the first matching minute, skipping whole months,
 *     days and hours that cannot match, so a search across years costs a few hundred steps.
 *   - cron_next maps wall-clock times onto real instants through the zone's offset changes. Between
 *     two changes the offset is constant, so local time there is a plain shift of UTC; the search
 *     walks from one such segment to the next.
 *
 * Interval expressions take, segment by segment, the first instant whose local time matches.
 * Fixed-time expressions run each matching wall time L at the first instant the local clock
 * reaches or passes L. That instant only grows with L, so the next run after `after` belongs to
 * the smallest matching L above the highest reading the local clock has shown up to `after`
 * (which, after a fall-back, is the reading just before the clock was set back: a time of the
 * repeated hour has run already).
 */
#include "common/cron.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/tzfile.h"

enum { F_MINUTE, F_HOUR, F_DOM, F_MONTH, F_DOW, F_COUNT };

struct cron_field {
    const char *name;
    int min, max;
    const char *const *names; /* names[i] is value i + name_base */
    int name_base;
    const char *name_hint;
};

static const char *const cron_months[] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL",
                                          "AUG", "SEP", "OCT", "NOV", "DEC", NULL};
static const char *const cron_days[] = {"SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", NULL};

static const struct cron_field cron_fields[F_COUNT] = {
    {"minute", 0, 59, NULL, 0, NULL},
    {"hour", 0, 23, NULL, 0, NULL},
    {"day-of-month", 1, 31, NULL, 0, NULL},
    {"month", 1, 12, cron_months, 1, "a month (1-12 or JAN-DEC)"},
    {"day-of-week", 0, 7, cron_days, 0, "a day of the week (0-7 or SUN-SAT)"},
};

static const struct {
    const char *name;
    const char *fields;
} cron_macros[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

struct cron_expr {
    uint64_t bits[F_COUNT]; /* bit v set: value v matches (day-of-week 7 folded onto 0) */
    int dom_star, dow_star; /* the field starts with '*' (for the day-of-month/week rule) */
    int interval;           /* the minute or hour field starts with '*' (for DST) */
    char text[CRON_TEXT_MAX + 1];
    tz_zone *zone;
};

/* How far back a fall-back can reach: the largest difference of two offsets tzfile accepts. */
#define CRON_JUMP_MAX (89999 + 93599 + 2)
/* Offset changes cron_next walks through before it gives up: far more than any real zone has
 * in 400 years. */
#define CRON_SEGMENTS_MAX 100000

/* ---- parsing ---- */

/* tok (n bytes) quoted for a message, cut at 24 bytes. */
static const char *cron_quote(char *buf, size_t len, const char *tok, size_t n)
{
    if (n > 24)
        snprintf(buf, len, "\"%.24s...\"", tok);
    else
        snprintf(buf, len, "\"%.*s\"", (int)n, tok);
    return buf;
}

static int cron_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int cron_alpha(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

/* A value at *p (before end): digits, or a name when the field has names. */
static int cron_value(const struct cron_field *f, const char **p, const char *end, int *out,
                      pgs_error *e)
{
    const char *s = *p;
    size_t n = 0;
    char q[40];
    if (s < end && cron_digit(*s)) {
        long v = 0;
        while (s + n < end && cron_digit(s[n])) {
            if (v < 1000000)
                v = v * 10 + (s[n] - '0');
            n++;
        }
        if (v < f->min || v > f->max)
            return pgs_fail(e, PGS_EINVAL, "cron: %s: %.*s is out of range %d-%d", f->name,
                            (int)(n > 24 ? 24 : n), s, f->min, f->max);
        *p = s + n;
        *out = (int)v;
        return 0;
    }
    while (s + n < end && cron_alpha(s[n]))
        n++;
    if (n == 0) {
        size_t m = 0;
        while (s + m < end && s[m] != ',')
            m++;
        return pgs_fail(e, PGS_EINVAL, "cron: %s: expected a number at %s", f->name,
                        cron_quote(q, sizeof(q), s, m));
    }
    if (f->names == NULL)
        return pgs_fail(e, PGS_EINVAL, "cron: %s: %s is not a number", f->name,
                        cron_quote(q, sizeof(q), s, n));
    for (int i = 0; n == 3 && f->names[i] != NULL; i++) {
        if (strncasecmp(s, f->names[i], 3) == 0) {
            *p = s + n;
            *out = i + f->name_base;
            return 0;
        }
    }
    return pgs_fail(e, PGS_EINVAL, "cron: %s: %s is not %s", f->name,
                    cron_quote(q, sizeof(q), s, n), f->name_hint);
}

/* One field (n bytes at s, no blanks) into *bits. */
static int cron_field_parse(const struct cron_field *f, const char *s, size_t n, uint64_t *bits,
                            pgs_error *e)
{
    const char *end = s + n;
    const char *p = s;
    char q[40];
    int rc;
    *bits = 0;
    for (;;) {
        const char *item = p;
        const char *iend = memchr(p, ',', (size_t)(end - p));
        if (iend == NULL)
            iend = end;
        if (iend == item)
            return pgs_fail(e, PGS_EINVAL, "cron: %s: empty item in %s", f->name,
                            cron_quote(q, sizeof(q), s, n));
        int lo, hi, step = 1, star = 0, range = 0;
        if (*p == '*') {
            star = 1;
            lo = f->min;
            hi = f->max;
            p++;
        } else {
            if ((rc = cron_value(f, &p, iend, &lo, e)) != 0)
                return rc;
            hi = lo;
            if (p < iend && *p == '-') {
                p++;
                range = 1;
                if ((rc = cron_value(f, &p, iend, &hi, e)) != 0)
                    return rc;
                if (hi < lo)
                    return pgs_fail(e, PGS_EINVAL, "cron: %s: range %s goes backwards", f->name,
                                    cron_quote(q, sizeof(q), item, (size_t)(p - item)));
            }
        }
        if (p < iend && *p == '/') {
            if (!star && !range)
                return pgs_fail(e, PGS_EINVAL,
                                "cron: %s: a step needs a range or * before it, as in %d-%d/n "
                                "(found %s)",
                                f->name, lo, f->max,
                                cron_quote(q, sizeof(q), item, (size_t)(iend - item)));
            p++;
            const char *st = p;
            long v = 0;
            while (p < iend && cron_digit(*p)) {
                if (v < 1000000)
                    v = v * 10 + (*p - '0');
                p++;
            }
            if (p == st)
                return pgs_fail(e, PGS_EINVAL, "cron: %s: a step must be a number (found %s)",
                                f->name, cron_quote(q, sizeof(q), item, (size_t)(iend - item)));
            if (v < 1 || v > f->max - f->min + 1)
                return pgs_fail(e, PGS_EINVAL, "cron: %s: step %.*s is out of range 1-%d", f->name,
                                (int)(p - st > 24 ? 24 : p - st), st, f->max - f->min + 1);
            step = (int)v;
        }
        if (p != iend)
            return pgs_fail(e, PGS_EINVAL, "cron: %s: unexpected '%c' in %s", f->name, *p,
                            cron_quote(q, sizeof(q), item, (size_t)(iend - item)));
        for (int v = lo; v <= hi; v += step)
            *bits |= UINT64_C(1) << v;
        if (iend == end)
            break;
        p = iend + 1;
    }
    return 0;
}

static int cron_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Splits s into blank-separated words; returns their count (at most max are stored). */
static size_t cron_words(const char *s, const char **w, size_t *wl, size_t max)
{
    size_t n = 0;
    while (*s) {
        while (cron_blank(*s))
            s++;
        if (*s == '\0')
            break;
        const char *b = s;
        while (*s && !cron_blank(*s))
            s++;
        if (n < max) {
            w[n] = b;
            wl[n] = (size_t)(s - b);
        }
        n++;
    }
    return n;
}

/* Every day-of-month the expression allows must exist in some month it allows, else it never
 * runs. Only needed when day-of-month decides alone: with day-of-week restricted (either rule)
 * every month has matching days, and a day-of-month starting with '*' includes the 1st. */
static int cron_check_possible(const cron_expr *c, const char *domtext, size_t domlen,
                               const char *montext, size_t monlen, pgs_error *e)
{
    if (c->dom_star || !c->dow_star)
        return 0;
    for (int m = 1; m <= 12; m++) {
        if (!(c->bits[F_MONTH] >> m & 1))
            continue;
        int last = m == 2 ? 29 : tz_month_days(2001, m);
        for (int d = 1; d <= last; d++)
            if (c->bits[F_DOM] >> d & 1)
                return 0;
    }
    char q1[40], q2[40];
    return pgs_fail(e, PGS_EINVAL, "cron: day-of-month: never runs: no day %s exists in month %s",
                    cron_quote(q1, sizeof(q1), domtext, domlen),
                    cron_quote(q2, sizeof(q2), montext, monlen));
}

int cron_parse_dir(const char *text, const char *zoneinfo_dir, cron_expr **out, pgs_error *e)
{
    cron_expr *c = NULL;
    char buf[CRON_TEXT_MAX + 1];
    char zone[TZ_NAME_MAX + 1] = "";
    char q[40];
    int rc;

    *out = NULL;
    size_t len = strnlen(text, CRON_TEXT_MAX + 1);
    if (len > CRON_TEXT_MAX)
        return pgs_fail(e, PGS_ELIMIT, "cron: expression is longer than %d bytes", CRON_TEXT_MAX);
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)text[i];
        if ((ch < 0x20 && ch != '\t') || ch > 0x7e)
            return pgs_fail(e, PGS_EINVAL,
                            "cron: control character or non-ASCII byte 0x%02x at offset %zu", ch,
                            i);
    }
    memcpy(buf, text, len + 1);

    const char *p = buf;
    while (cron_blank(*p))
        p++;
    if (*p == '\0')
        return pgs_fail(e, PGS_EINVAL, "cron: empty expression");

    /* CRON_TZ=<zone> or TZ=<zone> */
    size_t plen = strncmp(p, "CRON_TZ=", 8) == 0 ? 8 : strncmp(p, "TZ=", 3) == 0 ? 3 : 0;
    if (plen > 0) {
        p += plen;
        size_t zl = 0;
        while (p[zl] && !cron_blank(p[zl]))
            zl++;
        if (zl == 0)
            return pgs_fail(e, PGS_EINVAL, "cron: time zone: empty zone name after %.*s", (int)plen,
                            p - plen);
        memcpy(zone, p, zl);
        zone[zl] = '\0';
        if (!tz_name_valid(zone))
            return pgs_fail(e, PGS_EINVAL,
                            "cron: time zone: %s is not a valid zone name (like Europe/Berlin)",
                            cron_quote(q, sizeof(q), zone, zl));
        p += zl;
        while (cron_blank(*p))
            p++;
        if (*p == '\0')
            return pgs_fail(e, PGS_EINVAL, "cron: no schedule after the time zone");
    }

    const char *w[F_COUNT + 1];
    size_t wl[F_COUNT + 1];
    size_t nw = cron_words(p, w, wl, F_COUNT + 1);
    const char *macro = NULL;
    if (*p == '@') {
        size_t i;
        for (i = 0; i < sizeof(cron_macros) / sizeof(cron_macros[0]); i++)
            if (strlen(cron_macros[i].name) == wl[0] &&
                strncasecmp(w[0], cron_macros[i].name, wl[0]) == 0)
                break;
        if (wl[0] == 7 && strncasecmp(w[0], "@reboot", 7) == 0)
            return pgs_fail(e, PGS_EINVAL,
                            "cron: @reboot is not supported (a schedule needs times)");
        if (i == sizeof(cron_macros) / sizeof(cron_macros[0]))
            return pgs_fail(e, PGS_EINVAL,
                            "cron: unknown macro %s (expected @yearly, @annually, @monthly, "
                            "@weekly, @daily, @midnight or @hourly)",
                            cron_quote(q, sizeof(q), w[0], wl[0]));
        if (nw > 1)
            return pgs_fail(e, PGS_EINVAL, "cron: %s takes no fields (found %s)",
                            cron_macros[i].name, cron_quote(q, sizeof(q), w[1], wl[1]));
        macro = cron_macros[i].name;
        nw = cron_words(cron_macros[i].fields, w, wl, F_COUNT + 1);
    }
    if (nw != F_COUNT)
        return pgs_fail(e, PGS_EINVAL,
                        "cron: %zu field%s, expected 5 (minute hour day-of-month month "
                        "day-of-week)%s",
                        nw, nw == 1 ? "" : "s",
                        nw > F_COUNT ? "; seconds and years are not supported" : "");

    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    for (int f = 0; f < F_COUNT; f++)
        if ((rc = cron_field_parse(&cron_fields[f], w[f], wl[f], &c->bits[f], e)) != 0)
            goto out;
    if (c->bits[F_DOW] >> 7 & 1)
        c->bits[F_DOW] = (c->bits[F_DOW] | 1) & 0x7f; /* 7 is Sunday */
    c->dom_star = w[F_DOM][0] == '*';
    c->dow_star = w[F_DOW][0] == '*';
    c->interval = w[F_MINUTE][0] == '*' || w[F_HOUR][0] == '*';
    if ((rc = cron_check_possible(c, w[F_DOM], wl[F_DOM], w[F_MONTH], wl[F_MONTH], e)) != 0)
        goto out;

    /* the normalized text */
    size_t tl = 0;
    if (zone[0] != '\0') /* the prefix as written: the text must not grow past the limit */
        tl = (size_t)snprintf(c->text, sizeof(c->text), "%s%s ",
                              plen == 8 ? "CRON_TZ=" : "TZ=", zone);
    if (macro != NULL) {
        snprintf(c->text + tl, sizeof(c->text) - tl, "%s", macro);
    } else {
        for (int f = 0; f < F_COUNT; f++)
            tl += (size_t)snprintf(c->text + tl, sizeof(c->text) - tl, "%s%.*s", f ? " " : "",
                                   (int)wl[f], w[f]);
    }

    if (zone[0] != '\0') {
        if ((rc = tz_load(zoneinfo_dir, zone, &c->zone, e)) != 0) {
            if (e != NULL)
                pgs_wrap(e, "cron");
            goto out;
        }
    } else if ((rc = tz_utc(&c->zone, e)) != 0) {
        goto out;
    }
    *out = c;
    return 0;
out:
    cron_free(c);
    return rc;
}

int cron_parse(const char *text, cron_expr **out, pgs_error *e)
{
    return cron_parse_dir(text, NULL, out, e);
}

const char *cron_text(const cron_expr *c)
{
    return c->text;
}

const char *cron_zone(const cron_expr *c)
{
    return tz_name(c->zone);
}

void cron_free(cron_expr *c)
{
    if (c == NULL)
        return;
    tz_free(c->zone);
    free(c);
}

/* ---- searching ---- */

static int64_t cron_floordiv(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int cron_day_matches(const cron_expr *c, int d, int wd)
{
    int dom = (int)(c->bits[F_DOM] >> d & 1);
    int dow = (int)(c->bits[F_DOW] >> wd & 1);
    if (c->dom_star || c->dow_star)
        return dom && dow;
    return dom || dow;
}

/* The lowest set bit of bits at or above from, or -1. */
static int cron_next_bit(uint64_t bits, int from, int max)
{
    for (int v = from; v <= max; v++)
        if (bits >> v & 1)
            return v;
    return -1;
}

/*
 * The first matching wall-clock minute at or after w (seconds on the local clock counted like
 * unix time), in *out. Fails only when none lies within 401 years, which cron_parse's check
 * rules out (the calendar repeats every 400 years).
 */
static int cron_next_wall(const cron_expr *c, int64_t w, int64_t *out)
{
    int64_t mins = cron_floordiv(w, 60);
    if (mins * 60 < w)
        mins++;
    int64_t days = cron_floordiv(mins, 1440);
    int hh = (int)(mins - days * 1440) / 60, mm = (int)(mins - days * 1440) % 60;
    int64_t y;
    int mon, d;
    tz_civil_from_days(days, &y, &mon, &d);
    int64_t ylimit = y + 401;

    while (y <= ylimit) {
        if (!(c->bits[F_MONTH] >> mon & 1) || d > tz_month_days(y, mon)) {
            if (++mon > 12) {
                mon = 1;
                y++;
            }
            d = 1;
            hh = mm = 0;
            continue;
        }
        days = tz_days_from_civil(y, mon, d);
        if (!cron_day_matches(c, d, tz_weekday(days))) {
            d++;
            hh = mm = 0;
            continue;
        }
        int h = cron_next_bit(c->bits[F_HOUR], hh, 23);
        if (h < 0) {
            d++;
            hh = mm = 0;
            continue;
        }
        if (h != hh) {
            hh = h;
            mm = 0;
        }
        int m = cron_next_bit(c->bits[F_MINUTE], mm, 59);
        if (m < 0) {
            mm = 0;
            if (++hh > 23) {
                hh = 0;
                d++;
            }
            continue;
        }
        *out = ((days * 24 + hh) * 60 + m) * 60;
        return 0;
    }
    return -1;
}

/* cron_next_wall remembering its last answer: no wall time in [from, found) matches and found
 * does, so any query inside that interval is answered at once. */
struct cron_wall_cache {
    int valid;
    int64_t from, found;
};

static int cron_wall(const cron_expr *c, struct cron_wall_cache *wc, int64_t w, int64_t *out)
{
    if (wc->valid && wc->from <= w && w <= wc->found) {
        *out = wc->found;
        return 0;
    }
    if (cron_next_wall(c, w, out) != 0)
        return -1;
    wc->valid = 1;
    wc->from = w;
    wc->found = *out;
    return 0;
}

static int cron_never(const cron_expr *c, int64_t after, pgs_error *e)
{
    char at[32];
    return pgs_fail(e, PGS_ENOTFOUND, "cron: %s never runs after %s (searched up to year 9999)",
                    c->text, tz_format_utc(after, at, sizeof(at)));
}

int cron_next(const cron_expr *c, int64_t after, int64_t *next, pgs_error *e)
{
    const tz_zone *z = c->zone;
    struct cron_wall_cache wc = {0};
    int64_t t = 0, L;

    if (after < CRON_TIME_MIN || after > CRON_TIME_MAX)
        return pgs_fail(e, PGS_EINVAL, "cron: time %lld is outside 1970-01-01..9999-12-31",
                        (long long)after);
    int64_t s = after + 1;
    int found = 0;
    if (c->interval) {
        /* Segment by segment: the first instant whose local time matches. */
        for (int i = 0; i < CRON_SEGMENTS_MAX && s <= CRON_TIME_MAX; i++) {
            int64_t off = tz_utc_offset(z, s);
            int64_t end = tz_next_change(z, s);
            if (cron_wall(c, &wc, s + off, &L) != 0)
                break;
            if (end == TZ_NEVER || L - off < end) {
                t = L - off;
                found = 1;
                break;
            }
            s = end;
        }
    } else {
        /* The highest reading of the local clock up to after: its reading at after, or just
         * before a change that set it back and is recent enough to matter. */
        int64_t high = after + tz_utc_offset(z, after);
        for (int64_t ch = tz_next_change(z, after - CRON_JUMP_MAX); ch <= after;
             ch = tz_next_change(z, ch)) {
            int64_t before = ch - 1 + tz_utc_offset(z, ch - 1);
            if (before > high)
                high = before;
        }
        if (cron_wall(c, &wc, high + 1, &L) == 0) {
            /* The first instant at which the local clock reaches or passes L. */
            for (int i = 0; i < CRON_SEGMENTS_MAX && s <= CRON_TIME_MAX; i++) {
                int64_t off = tz_utc_offset(z, s);
                int64_t end = tz_next_change(z, s);
                if (s + off >= L) { /* L was skipped by the change at s */
                    t = s;
                    found = 1;
                    break;
                }
                if (end == TZ_NEVER || L - off < end) {
                    t = L - off;
                    found = 1;
                    break;
                }
                s = end;
            }
        }
    }
    if (!found || t > CRON_TIME_MAX)
        return cron_never(c, after, e);
    *next = t;
    return 0;
}
