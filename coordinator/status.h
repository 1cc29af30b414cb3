/*
 * The coordinator's status page (GET /status, docs/monitoring.md "Status page"): one read-only
 * HTML page for a person with a browser, where the API's JSON is for programs. It shows the
 * fleet (agents, connected or not, their versions and databases), each database's last complete
 * backup with its age and size and whether the last attempt failed, the recent failures and the
 * scheduler's next runs.
 *
 * The renderer is a pure function from one JSON document (which api_status.c gathers from the
 * catalog, the fleet and the scheduler) to one self-contained HTML5 document: inline CSS, no
 * script, no external resource, so the page works under a Content-Security-Policy of
 * "default-src 'none'". Every value in the input came from agents or the network at some point
 * (names, versions, failure reasons): the renderer treats it all as hostile. Text is cut to a
 * bound on a UTF-8 boundary, invalid UTF-8, NUL and control characters become U+FFFD, and
 * & < > " ' are written as character references; no input ever lands in an attribute. Rows are
 * capped per section, so the page's size is bounded whatever the input.
 *
 * The page is also where a browser first meets the API's authentication, which it cannot do
 * with a Bearer header; status_auth_token therefore also reads HTTP Basic credentials (any user
 * name, the token as the password). api.c decides where Basic is accepted.
 */
#ifndef PGSHIP_COORDINATOR_STATUS_H
#define PGSHIP_COORDINATOR_STATUS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "common/error.h"

/* Rows shown per section; what is beyond is counted in a note under the table. */
#define STATUS_AGENTS_MAX 500
#define STATUS_DATABASES_MAX 1000
#define STATUS_FAILURES_MAX 20
#define STATUS_RUNS_MAX 200
#define STATUS_SCHEDULES_MAX 100
#define STATUS_AGENT_DBS_MAX 50 /* database names listed in one agent's row */
/* Bytes of one value shown (longer ones are cut and end with "..."): failure reasons in the
 * failures table may be as long as the catalog keeps them; everything else is shorter. */
#define STATUS_TEXT_MAX 200
#define STATUS_REASON_MAX 1000
/* The document never grows past this (PGS_ELIMIT); the caps above keep it far below. */
#define STATUS_HTML_MAX (16u << 20)
/* The page reloads itself this often (a meta refresh: no script). */
#define STATUS_REFRESH_S 30

/*
 * Renders the status page from in (any JSON value; what is missing or of the wrong type shows
 * as absent):
 *
 *   {"agents":    [{"name", "version", "last_seen", "connected" (bool)}]   -- the catalog's
 *    "live":      fleet_agents_json's array (connected agents, their databases and jobs); when
 *                 it is an array, it alone says who is connected
 *    "databases": [{"agent", "database", "environment", "last_complete": a backup as
 *                   catalog_backup_to_json gives it, or null, "complete", "failed" (counts),
 *                   "last_failure_at", "last_failure"}]
 *    "failures":  [backups as catalog_backup_to_json gives them, newest first]
 *    "schedule":  schedd_next_runs_json's object (its "schedules" and "runs")
 *    "more_databases": N  -- rows the caller left out (shown as a note)}
 *
 * now_ms (unix milliseconds) is the generated-at time and what ages are measured against. A
 * database is marked (class "bad" and the word FAILED or NO BACKUP in its row) when it has no
 * complete backup or its last failure is newer than its last complete backup.
 *
 * On success *html is a malloc'd, NUL-terminated document of *len bytes (the caller frees it).
 * PGS_ENOMEM, or PGS_ELIMIT past STATUS_HTML_MAX; *html is then NULL.
 */
int status_render(const json_t *in, int64_t now_ms, char **html, size_t *len, pgs_error *e);

/* 1 when uri (its path, before any '?') is the status page: "/status" or "/status/". */
int status_is_page(const char *uri);

enum status_auth { STATUS_AUTH_NONE = 0, STATUS_AUTH_BEARER = 1, STATUS_AUTH_BASIC = 2 };

/*
 * The token an Authorization header carries, NUL-terminated into tok (cap bytes):
 *   "Bearer <token>"                 -> STATUS_AUTH_BEARER
 *   "Basic <base64 of user:token>"   -> STATUS_AUTH_BASIC (the user name, which may be empty,
 *                                       is ignored; the token is what follows the first ':')
 * Scheme names are case-insensitive; spaces after the scheme and trailing spaces and tabs are
 * ignored. The base64 is the standard alphabet with padding, nothing else inside it. Returns
 * STATUS_AUTH_NONE (tok "") for a NULL header, another scheme, and anything malformed: bad
 * base64, no ':', an empty token, a token with a NUL or a control character, or one of cap bytes
 * or more. *len (may be NULL) receives the token's length. The decoded bytes are wiped.
 */
int status_auth_token(const char *header, char *tok, size_t cap, size_t *len);

#endif
