/*
 * The coordinator's admin HTTP API (docs/api.md): the operator's view of the catalog and of the
 * live fleet, backups asked for on demand, and stored archives streamed back. Plain HTTP on
 * nng's server, meant for loopback (the configuration refuses other addresses unless told to);
 * every request carries "Authorization: Bearer <token>".
 *
 * Threads: nng runs request handlers on its own task threads, which the agents' transport shares,
 * so a handler only checks the token and queues the request; the API's worker threads do the
 * catalog and fleet work (the API has its own catalog handle, one call at a time under a mutex).
 * A download takes over its connection and gets a thread of its own, which reads the object from
 * storage and writes it out one piece at a time: memory stays one storage read per download,
 * whatever the archive's size.
 */
#ifndef PGSHIP_COORDINATOR_API_H
#define PGSHIP_COORDINATOR_API_H

#include <stddef.h>

#include "common/error.h"
#include "coordinator/catalog.h"
#include "coordinator/config.h"
#include "coordinator/fleet.h"
#include "coordinator/metrics.h"
#include "coordinator/restore.h"
#include "coordinator/storage.h"

typedef struct api api;
typedef struct schedd schedd;     /* coordinator/schedd.h */
typedef struct verifier verifier; /* coordinator/verify.h */

/* Token roles (docs/api.md, "Authentication"): read looks, operate also starts backups and
 * restores, admin may also overwrite a prod database. */
enum { API_ROLE_READ = 1, API_ROLE_OPERATE = 2, API_ROLE_ADMIN = 3 };
#define API_WHO_MAX 63
/* The role (API_ROLE_*) of a presented token, its name into name (recorded as requested_by of
 * what it starts), or 0 for no such token. Called from nng's threads, under the API's lock. */
typedef int (*api_token_lookup)(void *arg, const char *presented, char *name, size_t cap);

typedef struct api_opts {
    const char *url;          /* http://host:port (port 0: any free port; see api_port) */
    const char *token;        /* the bearer token (role admin, named "api"); copied, never
                                 logged, wiped at api_stop; not used when lookup is set */
    api_token_lookup lookup;  /* the tokens of [token NAME] sections, with their roles */
    void *lookup_arg;
    fleet *fleet;             /* live agents and jobs; NULL: none (POST /v1/backups -> 409) */
    restorer *restorer;       /* restores and syncs; NULL: none (POST /v1/restores -> 409) */
    storage *storage;         /* where GET /v1/backups/ID/object reads from; NULL: 500 there */
    const char *catalog_path; /* the API opens its own handle on this file */
    metrics *metrics;         /* what GET /metrics renders (borrowed); NULL: 404 there */
    const coordinator_config *cfg; /* retention policies and schedules (borrowed); may be NULL */
    schedd *sched;            /* the scheduler: GET /v1/schedules (borrowed); NULL: none */
    verifier *verifier;       /* verifications (borrowed); NULL: POST .../verify -> 409 */
} api_opts;

/* Request bodies larger than this are refused. */
#define API_BODY_MAX (64 * 1024)
/* Requests waiting for a worker; more are refused with 429. */
#define API_QUEUE_MAX 64
/* Downloads served at once; more are refused with 429. */
#define API_FETCH_MAX 4
/* GET /v1/backups: rows when no limit is given, and the largest limit accepted. */
#define API_LIST_DEFAULT 100
#define API_LIST_MAX 10000

/*
 * Opens the catalog, starts listening on o->url and serving. fleet and storage are borrowed:
 * they must outlive api_stop. On failure nothing is left running and e says why (an address
 * in use, an unreadable catalog).
 */
int api_start(const api_opts *o, api **out, pgs_error *e);

/* The TCP port the API listens on (useful after asking for port 0), or -1. */
int api_port(const api *a);

/*
 * Stops accepting connections, answers requests still queued with 503, aborts downloads in
 * flight (their clients see a short body, which the Content-Length and digest expose), waits
 * for every API thread to end, closes the catalog handle and frees a. NULL is allowed.
 */
void api_stop(api *a);

/* POST /v1/backups, decoded. */
typedef struct api_backup_body {
    char agent[CATALOG_NAME_MAX + 1];
    char database[CATALOG_NAME_MAX + 1];
    char label[CATALOG_LABEL_MAX + 1]; /* "" when not given */
} api_backup_body;

/*
 * Decodes and checks a POST /v1/backups body: a JSON object of at most API_BODY_MAX bytes with
 * "agent" and "database" (names, catalog_name_valid) and an optional "label" (UTF-8 without
 * control characters, at most CATALOG_LABEL_MAX bytes); any other field, a duplicate key or a
 * value of another type is refused. 0, or PGS_EFORMAT / PGS_EINVAL / PGS_ELIMIT with e saying
 * which field (values are not echoed). Exposed for the tests and the fuzzer.
 */
int api_backup_body_parse(const void *body, size_t len, api_backup_body *out, pgs_error *e);

/*
 * Decodes and checks a POST /v1/restores body into *out, as strictly: a JSON object of at most
 * API_BODY_MAX bytes with exactly these fields, each at most once and of its type:
 *   "source"  (required) a backup id, or "AGENT/DB@latest", or (only with "fresh": true, and
 *             then required) "AGENT/DB", the database to back up first
 *   "target"  (required) "AGENT/DB", split into target_agent and target_database
 *   "fresh", "overwrite_prod", "safety_backup", "keep_old", "schema_only", "data_only",
 *             "no_owner": true or false (absent: false); schema_only and data_only not both
 *   "profile", "role": names (catalog_name_valid)
 *   "jobs"    1..RESTORE_JOBS_MAX (absent: 0, the restorer's default)
 *   "schemas", "tables": arrays of at most RESTORE_PATTERNS_MAX strings of 1..127 bytes of UTF-8
 *             without control characters
 * Names are checked with catalog_name_valid. 0, or PGS_EFORMAT / PGS_EINVAL / PGS_ELIMIT with e
 * saying which field (values are not echoed); on failure *out is zeroed. Exposed for the tests
 * and the fuzzer.
 */
int api_restore_body_parse(const void *body, size_t len, restore_request *out, pgs_error *e);

#endif
