/*
 * Retention: which backups of one database `pgship prune` deletes, and why each survivor stays.
 *
 * A policy ([retention NAME] in the coordinator's configuration) has the rules of restic's
 * `forget`, which is what operators already know:
 *
 *   keep_last N      the N newest backups
 *   keep_hourly N    for the last N hours that have backups, the newest backup of each hour
 *   keep_daily N     ... of each day
 *   keep_weekly N    ... of each ISO week (Monday 00:00 to Sunday 24:00)
 *   keep_monthly N   ... of each month
 *   keep_yearly N    ... of each year
 *   keep_within D    every backup made within D of the newest backup (not of "now"), where D is
 *                    years, months, days and hours, as in 1y6m or 7d12h (see
 *                    retention_duration_parse)
 *
 * A backup is kept when any rule keeps it. The calendar rules count only periods that have
 * backups, and work on natural boundaries in UTC (never the coordinator's local time zone), so
 * the plan does not depend on when prune runs or where. N may be "unlimited" (every period). As
 * in restic since 0.16, when a calendar rule still has periods left to keep after the oldest
 * backup, that oldest backup is kept too ("oldest daily"), so a young history is not cut short.
 *
 * pgship adds three things: only complete backups count for the rules (a failed backup is
 * deleted, reason "failed"; the caller never passes backups still queued or running); a pinned
 * backup is always kept ("pinned"); and the newest complete backup is always kept ("newest
 * complete"). A policy without any rule is refused, as restic refuses an empty policy, rather
 * than read as "keep everything" or "delete everything".
 *
 * Backup times are the coordinator's own (the catalog stamps them), so unlike restic nothing is
 * set aside for backups dated in the future: keep_within counts back from the newest complete
 * backup whatever its time.
 */
#ifndef PGSHIP_COORDINATOR_RETENTION_H
#define PGSHIP_COORDINATOR_RETENTION_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define RETENTION_UNLIMITED (-1)          /* a count that keeps every period */
#define RETENTION_COUNT_MAX 1000000       /* the largest count N */
#define RETENTION_DURATION_PART_MAX 99999 /* the largest number in a duration (1y, 99999h) */
#define RETENTION_DURATION_TEXT_MAX 64    /* bytes of duration text */
#define RETENTION_ITEMS_MAX 10000000u     /* backups in one plan */
#define RETENTION_REASONS_MAX 192         /* the reasons text of one backup, with its NUL */
/* Backup times the planner accepts, in unix seconds: 1970-01-01 to 9999-12-31 UTC. */
#define RETENTION_TIME_MIN INT64_C(0)
#define RETENTION_TIME_MAX INT64_C(253402300799)

/* A calendar duration: applied by subtracting years, months and days from a date (then hours),
 * the way restic does, not as a fixed number of seconds. All zero: no duration. */
typedef struct retention_duration {
    int years, months, days, hours;
} retention_duration;

/* Each count is 0 (rule off), 1..RETENTION_COUNT_MAX, or RETENTION_UNLIMITED. */
typedef struct retention_policy {
    int keep_last;
    int keep_hourly;
    int keep_daily;
    int keep_weekly;
    int keep_monthly;
    int keep_yearly;
    retention_duration keep_within; /* all zero: rule off */
} retention_policy;

/* One backup of the database: the inputs, then the planner's outputs. */
typedef struct retention_item {
    const char *id; /* the backup id: ties in time are ordered by id, so ids should differ */
    int64_t time;   /* when the backup was made, unix seconds (UTC) */
    int complete;   /* 1: complete; 0: failed */
    int pinned;     /* 1: never deleted */
    /* outputs */
    int keep;                            /* 1: kept; 0: to delete */
    char reasons[RETENTION_REASONS_MAX]; /* why, see retention_plan */
} retention_item;

/*
 * Parses a duration: one or more NUMBER UNIT parts, UNIT one of y (years), m (months), d (days)
 * and h (hours), each unit at most once, in any order: "1y", "2y6m", "7d12h", "36h". NUMBER is
 * decimal, 0..RETENTION_DURATION_PART_MAX, and at least one part is not zero. There is no week
 * unit (as in restic: write 7d) and no minutes; surrounding spaces are not accepted. PGS_EINVAL
 * or PGS_ELIMIT with e saying what is wrong.
 */
int retention_duration_parse(const char *text, retention_duration *out, pgs_error *e);

/* Writes the duration as parsed ("1y6m", "7d"; "0h" for none) into buf (NUL-terminated, cut to
 * cap). Returns the length it needed, as snprintf does. */
int retention_duration_format(const retention_duration *d, char *buf, size_t cap);

/* The time d before t (unix seconds, UTC): years, months and days are subtracted from t's date
 * (a day past the month's end rolls over: 31 March less 1m is 2 March in a leap year, 3 March
 * otherwise), then hours. t and the duration must be within the limits above. */
int64_t retention_duration_before(const retention_duration *d, int64_t t);

/* Sets one [retention NAME] key from its configuration text: keep_last ... keep_yearly take a
 * count (decimal 0..RETENTION_COUNT_MAX, or "unlimited"); keep_within takes a duration. An
 * unknown key is PGS_EINVAL. Messages start with "keep_daily: " and so on; the caller adds the
 * file, line and section. */
int retention_policy_set(retention_policy *p, const char *key, const char *value, pgs_error *e);

/* Checks a whole policy: every count in range, the duration within limits, and at least one
 * rule ("retention NAME: no keep_* rule ..."). name is the section's NAME, for the message. */
int retention_policy_check(const char *name, const retention_policy *p, pgs_error *e);

/* Describes the policy for prune's header, e.g. "keep 1 last, 7 daily, all monthly, within 1y",
 * into buf (NUL-terminated, cut to cap). Returns the length it needed, as snprintf does. */
int retention_policy_text(const retention_policy *p, char *buf, size_t cap);

/*
 * Plans one database's retention: sets keep and reasons of each of the n items (in any order;
 * the result does not depend on it). reasons is a comma-separated list in this order:
 *
 *   "last K", "hourly K", "daily K", "weekly K", "monthly K", "yearly K"
 *                         the K-th backup kept by that rule, counting from the newest
 *   "oldest daily" ...    the oldest complete backup, kept because that rule had periods left
 *   "within 1y6m"         within keep_within of the newest complete backup
 *   "newest complete"     the newest complete backup
 *   "pinned"              a pinned backup (complete or not)
 *
 * e.g. "last 1, daily 1, newest complete". A deleted backup has keep 0 and reasons "failed" when
 * it failed, "" otherwise. Every kept backup has at least one reason.
 *
 * Refuses (PGS_EINVAL, nothing planned) a policy retention_policy_check refuses, more than
 * RETENTION_ITEMS_MAX items (PGS_ELIMIT), and an item with a time outside
 * RETENTION_TIME_MIN..RETENTION_TIME_MAX. O(n log n) time; n indices of scratch memory
 * (PGS_ENOMEM).
 */
int retention_plan(const retention_policy *p, retention_item *items, size_t n, pgs_error *e);

#endif
