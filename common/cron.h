/*
 * Cron expressions for the coordinator's schedules: when does a schedule run next.
 *
 * Syntax (crontab(5)'s time fields, nothing else):
 *
 *   [CRON_TZ=<zone> | TZ=<zone>] <minute> <hour> <day-of-month> <month> <day-of-week>
 *   [CRON_TZ=<zone> | TZ=<zone>] @yearly | @annually | @monthly | @weekly | @daily | @midnight
 *                                | @hourly
 *
 * Fields are separated by spaces or tabs. Each field is a comma-separated list of items; an item
 * is `*`, a value `a`, a range `a-b` (a <= b, no wrapping), or `*` or a range followed by a step
 * `/n` (every n-th value of the range, from its start). Ranges: minute 0-59, hour 0-23,
 * day-of-month 1-31, month 1-12 or JAN-DEC, day-of-week 0-7 or SUN-SAT (0 and 7 are Sunday).
 * Names are three letters in any case and may appear in ranges (MON-FRI). A step needs a range or
 * `*` ("5/15" is refused: write "5-59/15"). The macros are: @yearly and @annually "0 0 1 1 *",
 * @monthly "0 0 1 * *", @weekly "0 0 * * 0", @daily and @midnight "0 0 * * *", @hourly
 * "0 * * * *"; macros and names are case-insensitive. Not accepted: @reboot, a sixth field
 * (seconds or years), Quartz's ? L W #, text after the fields, control characters, non-ASCII
 * bytes, more than CRON_TEXT_MAX bytes.
 *
 * Day-of-month and day-of-week, as crontab(5) has it: when both fields are restricted, i.e. when
 * neither starts with `*`, a day matches if EITHER matches ("0 0 13 * 5": the 13th and every
 * Friday). When one of them starts with `*` (also a star with a step), a day must match both.
 *
 * An expression that can never match ("0 0 30 2 *", "0 0 31 4,6 *") is refused by cron_parse:
 * "never runs". (Every other expression runs at least once in any 400 years, the period of the
 * Gregorian calendar; cron_next searches that far and also fails with "never runs" only when the
 * next run would fall after CRON_TIME_MAX.)
 *
 * Time zone: without a prefix, fields are read in UTC. CRON_TZ=<zone> (or TZ=<zone>) reads them
 * in that zone's local time, the zone being loaded by tz_load (common/tzfile.h) from the system's
 * zoneinfo directory, or PGSHIP_ZONEINFO's, when the expression is parsed.
 *
 * Daylight saving time and other offset changes. Two kinds of expressions, as cronie has them:
 *
 *   - Fixed-time expressions, whose minute and hour fields both do not start with `*`
 *     ("30 2 * * *", "0 9-17 * * 1-5", @daily): each matching wall-clock time runs once, at the
 *     first instant at which the local clock reaches or passes it. So a time skipped by a
 *     spring-forward gap (02:30 in Berlin on the last Sunday of March) runs once, at the end of the
 *     gap (03:00 CEST, 01:00 UTC); a time that occurs twice in a fall-back overlap (02:30 on the
 *     last Sunday of October) runs once, at its first occurrence (02:30 CEST, 00:30 UTC). Times
 * that fall into the same gap run once together.
 *   - Interval expressions, whose minute or hour field starts with `*` ("* * * * *", "0 * * * *",
 *     a star with a step, "* 3 * * *", @hourly): they run at every real instant whose
 *     local time matches. Local times inside a gap never happen, so they are not run; local times
 *     in an overlap happen twice, so they run twice ("0 * * * *" runs at 02:00 CEST and again at
 *     02:00 CET).
 *
 * Instants are unix seconds (UTC, no leap seconds). cron_next accepts `after` in
 * [CRON_TIME_MIN, CRON_TIME_MAX] and answers within the same range.
 *
 * Ownership: a cron_expr is immutable after cron_parse and may be used by several threads at
 * once; cron_free releases it with its zone.
 */
#ifndef PGSHIP_COMMON_CRON_H
#define PGSHIP_COMMON_CRON_H

#include <stdint.h>

#include "common/error.h"

#define CRON_TEXT_MAX 256                   /* bytes of an expression, prefix included */
#define CRON_TIME_MIN INT64_C(0)            /* 1970-01-01T00:00:00Z */
#define CRON_TIME_MAX INT64_C(253402300799) /* 9999-12-31T23:59:59Z */

typedef struct cron_expr cron_expr;

/* Parses text (NUL-terminated) and loads its zone from the default zoneinfo directory. Errors are
 * PGS_EINVAL ("cron: minute: 61 is out of range 0-59", "cron: day-of-month: never runs: ...")
 * or PGS_ELIMIT (too long), or the zone's error from tz_load prefixed "cron: " ("cron: time
 * zone Europe/Nowhere is unknown: ..."). */
int cron_parse(const char *text, cron_expr **out, pgs_error *e);

/* cron_parse with the zone read from zoneinfo_dir (NULL: as cron_parse). */
int cron_parse_dir(const char *text, const char *zoneinfo_dir, cron_expr **out, pgs_error *e);

/* The first run strictly after `after` (unix seconds), in *next. PGS_EINVAL when after is out of
 * [CRON_TIME_MIN, CRON_TIME_MAX]; PGS_ENOTFOUND ("never runs ...") when there is no run up to
 * CRON_TIME_MAX. */
int cron_next(const cron_expr *c, int64_t after, int64_t *next, pgs_error *e);

/* The expression, normalized: the zone prefix as written ("CRON_TZ=<zone> " or "TZ=<zone> ")
 * when there is one, then the five fields as written separated by one space, or the macro in
 * lower case. Never longer than the text parsed; cron_parse of it gives the same schedule. */
const char *cron_text(const cron_expr *c);

/* The zone's name: "UTC" when the expression has no prefix. */
const char *cron_zone(const cron_expr *c);

void cron_free(cron_expr *c);

#endif
