/*
 * Database selectors: which databases a schedule or a retention policy applies to, by the agent
 * that serves them, their name and their environment.
 *
 * Syntax: terms separated by spaces (or tabs), each KEY=GLOB[,GLOB...] with KEY one of
 *
 *   agent         the agent's name
 *   database      the database's name
 *   environment   the database's environment (alias: env)
 *
 * For example `env=prod agent=db-*,pg? database=app*`. Within a key the globs are OR'ed (any may
 * match); the keys are AND'ed (each given key must match); a key not given matches everything.
 * The text `*` or `all`, alone, matches every database. A glob is an fnmatch(3) pattern without
 * FNM_PATHNAME or FNM_PERIOD: `*` any run of characters, `?` one character, `[...]` a set, and
 * `\` quotes the next character. Matching is case-sensitive, on whole names.
 *
 * Limits, each refused with an error naming the bad term: the text is at most SELECT_TEXT_MAX
 * bytes; a glob is 1..SELECT_GLOB_MAX bytes of printable ASCII without spaces or commas; a key
 * has at most SELECT_GLOBS_MAX globs and appears at most once (env and environment are the same
 * key); nothing else is accepted (an empty text, an unknown key, a term without '=', an empty
 * glob, `*` or `all` beside other terms).
 *
 * Ownership: select_parse hands a new selector to the caller, who releases it with select_free.
 * A parsed selector is read-only, so several threads may match against it at once.
 */
#ifndef PGSHIP_COORDINATOR_SELECT_H
#define PGSHIP_COORDINATOR_SELECT_H

#include "common/error.h"

#define SELECT_TEXT_MAX 32768 /* bytes of selector text (three keys of 32 long globs fit) */
#define SELECT_GLOB_MAX 255   /* bytes in one glob */
#define SELECT_GLOBS_MAX 32   /* globs for one key */

typedef struct db_select db_select;

/* Parses text (NUL-terminated). On success *out is a new selector; on failure *out is NULL and
 * the code is PGS_EINVAL (bad syntax) or PGS_ELIMIT (a limit above), with e naming the term. */
int select_parse(const char *text, db_select **out, pgs_error *e);

/* 1 when the database (agent, database, environment) is selected, else 0. A NULL name is taken
 * as "" (an agent that reports no environment). */
int select_match(const db_select *s, const char *agent, const char *database,
                 const char *environment);

/* The selector in canonical form: "*" for everything, else the given keys in the order agent,
 * database, environment, each with its globs as written (`agent=a,b environment=prod`). Owned
 * by the selector. */
const char *select_text(const db_select *s);

/* Releases s; NULL is allowed. */
void select_free(db_select *s);

#endif
