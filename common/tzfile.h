/*
 * Time zones for the coordinator's schedules, read from the system's compiled zone files (TZif,
 * RFC 8536) without touching the process's own time zone: the coordinator is multi-threaded, so
 * setenv("TZ") and localtime() are not options, and a schedule's zone must not depend on the
 * host's.
 *
 * A zone is loaded once (tz_load) and then answers, for any instant, its offset from UTC
 * (tz_utc_offset) and when that offset next changes (tz_next_change). Versions 1 to 4 of the
 * format are read; for version 2 and later only the 64-bit data block is used, and the footer's
 * POSIX TZ string ("CET-1CEST,M3.5.0,M10.5.0/3") gives the offsets after the last stored
 * transition, which matters for "slim" files that store no future transitions at all. Zones with
 * leap-second records (the right/ tree) are refused: our clock is POSIX seconds.
 *
 * Where zones come from: tz_load(dir, name) reads dir/name. dir NULL means the environment
 * variable PGSHIP_ZONEINFO when it is set and not empty (for tests and for hosts that keep tzdata
 * elsewhere), otherwise TZ_DEFAULT_DIR. "UTC" and "Etc/UTC" need no file. Names are checked
 * before any path is built (tz_name_valid) and the file must be a regular file of at most
 * TZ_FILE_MAX bytes. The data is read once; a tzdata upgrade reaches a zone at its next load.
 *
 * Every count in a file is checked against the file's size and every index against its table
 * before anything is used, so tz_load_bytes may be given arbitrary bytes.
 *
 * Civil dates: the proleptic Gregorian calendar, days counted from 1970-01-01, computed here
 * (tz_days_from_civil, tz_civil_from_days) and shared with the cron module.
 *
 * Ownership: a tz_zone is immutable once loaded and may be read from several threads at once;
 * tz_free releases it.
 */
#ifndef PGSHIP_COMMON_TZFILE_H
#define PGSHIP_COMMON_TZFILE_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define TZ_DEFAULT_DIR "/usr/share/zoneinfo"
#define TZ_ENV_DIR "PGSHIP_ZONEINFO" /* overrides TZ_DEFAULT_DIR when set and not empty */
#define TZ_FILE_MAX (1u << 20)       /* bytes in a zone file */
#define TZ_NAME_MAX 255              /* bytes in a zone name */
#define TZ_FOOTER_MAX 255            /* bytes in the footer's TZ string */
#define TZ_TYPES_MAX 256             /* local time types in a file (indices are one byte) */

/* Instants this module reasons about: years 1 to 9999 would do; the limits leave slack on both
 * sides so that offsets and a few days' arithmetic never overflow. tz_next_change answers
 * TZ_NEVER beyond them. */
#define TZ_TIME_MIN INT64_C(-62167219200) /* 0000-01-01T00:00:00Z */
#define TZ_TIME_MAX INT64_C(253402300799) /* 9999-12-31T23:59:59Z */
#define TZ_NEVER INT64_MAX

typedef struct tz_zone tz_zone;

/* True when name is 1..TZ_NAME_MAX bytes of [A-Za-z0-9_+-/], does not start with '/' and has no
 * empty component ("a//b", "a/"). With '.' not allowed, "." and ".." cannot appear. */
int tz_name_valid(const char *name);

/* Loads the zone name from dir (see above for dir NULL). Errors: PGS_EINVAL for a bad name,
 * PGS_ENOTFOUND when there is no such file, PGS_EIO when it cannot be read, PGS_ELIMIT when it is
 * too large, and the tz_load_bytes codes for its contents. The message names the zone. */
int tz_load(const char *dir, const char *name, tz_zone **out, pgs_error *e);

/* Decodes a TZif image of len bytes (not necessarily a file's; for tests and fuzzing). The zone
 * is named "-" until tz_load names it. Errors: PGS_EFORMAT (not TZif, inconsistent tables, bad
 * footer), PGS_ETRUNC (ends inside a table), PGS_EVERSION (unknown version byte), PGS_ELIMIT
 * (more than TZ_FILE_MAX bytes, too many types, leap-second records), PGS_ETRAIL (bytes after the
 * footer), PGS_ENOMEM. */
int tz_load_bytes(const void *buf, size_t len, tz_zone **out, pgs_error *e);

/* The zone that is UTC at every instant, named "UTC". */
int tz_utc(tz_zone **out, pgs_error *e);

/* Seconds east of UTC in effect at the instant unix_s (local time = unix_s + offset). Defined for
 * every int64_t. */
int64_t tz_utc_offset(const tz_zone *z, int64_t unix_s);

/* The first instant T > unix_s at which the offset differs from the offset just before it (a
 * daylight saving switch, a change of standard time), or TZ_NEVER when there is none up to
 * TZ_TIME_MAX. Records that change only a zone's abbreviation or its isdst flag are not changes. */
int64_t tz_next_change(const tz_zone *z, int64_t unix_s);

/* The zone's name as loaded ("Europe/Berlin", "UTC", "-" from tz_load_bytes). */
const char *tz_name(const tz_zone *z);

void tz_free(tz_zone *z);

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (m 1..12, d 1..31; a day
 * past the month's end counts on into the next month). Exact for |y| < 2^40. */
int64_t tz_days_from_civil(int64_t y, int m, int d);
/* The inverse: the date of a day number. */
void tz_civil_from_days(int64_t days, int64_t *y, int *m, int *d);
/* 0 = Sunday ... 6 = Saturday. */
int tz_weekday(int64_t days);
int tz_is_leap(int64_t y);
/* Days in month m (1..12) of year y. */
int tz_month_days(int64_t y, int m);
/* "2024-03-31T01:00:00Z" into buf (at least 32 bytes). */
const char *tz_format_utc(int64_t unix_s, char *buf, size_t len);

#endif
