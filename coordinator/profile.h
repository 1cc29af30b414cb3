/*
 * Sanitization profiles (docs/profiles.md): the directory profiles_dir/NAME/ with
 *
 *   sanitize.sql  required: run by the agent in one transaction in the restored copy
 *   check.sql     optional: queries that must return no rows afterwards
 *   profile.ini   optional: [profile] description, sanitizer, sanitizer_database
 *
 * Read when a restore names the profile (so profiles change without a restart), bounded and
 * checked: the SQL is UTF-8 text of at most PROFILE_SQL_MAX bytes without NUL, the settings are
 * pgship's INI syntax with exactly these keys.
 */
#ifndef PGSHIP_COORDINATOR_PROFILE_H
#define PGSHIP_COORDINATOR_PROFILE_H

#include <stddef.h>

#include "common/error.h"
#include "coordinator/catalog.h"

#define PROFILE_SQL_MAX (512u << 10) /* WIRE_SQL_MAX */
#define PROFILE_DESCRIPTION_MAX 200

typedef struct profile {
    char name[CATALOG_PROFILE_MAX + 1];
    char *sanitize_sql; /* malloc'd, never NULL after a load */
    char *check_sql;    /* malloc'd, NULL when the profile has none */
    char description[PROFILE_DESCRIPTION_MAX + 1];
    char sanitizer[CATALOG_NAME_MAX + 1];          /* "" unless sanitized at the source */
    char sanitizer_database[CATALOG_NAME_MAX + 1]; /* set with sanitizer */
} profile;

/* Loads profile name from dir. PGS_ENOTFOUND when there is no such profile (or no
 * sanitize.sql), PGS_EINVAL / PGS_ELIMIT / PGS_EFORMAT when a file breaks the rules above, with
 * e naming the file (and line). */
int profile_load(const char *dir, const char *name, profile *out, pgs_error *e);

/* The settings file alone, from memory (for tests and the fuzzer); fills the settings fields. */
int profile_parse_settings(const char *file, const char *text, size_t len, profile *out,
                           pgs_error *e);

/* Checks SQL text: at most PROFILE_SQL_MAX bytes, valid UTF-8, no NUL. */
int profile_sql_check(const char *what, const char *text, size_t len, pgs_error *e);

void profile_clear(profile *p);

#endif
