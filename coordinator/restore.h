/*
 * Restores and syncs on the coordinator (docs/restore.md): checks a request against the policy,
 * records it in the catalog, and runs its steps in a thread of its own:
 *
 *   backup     (sync without --from-latest) a fresh backup of the source database
 *   safety     (--safety-backup) a backup of the target database, labelled "safety"
 *   sanitizer  (a profile with a sanitizer agent) restore, sanitize, check and re-dump inside the
 *              source's zone, encrypted to the target agent's restore keys only: a new backup
 *              labelled "sanitized", linked to its source
 *   restore    the target agent restores (and, without a sanitizer, sanitizes and checks) and swaps
 *
 * Each step waits for the one before; the first failure ends the restore, named in the catalog
 * with its reason. The API calls restorer_request; everything else happens here.
 */
#ifndef PGSHIP_COORDINATOR_RESTORE_H
#define PGSHIP_COORDINATOR_RESTORE_H

#include <stddef.h>

#include "common/error.h"
#include "coordinator/catalog.h"
#include "coordinator/config.h"
#include "coordinator/fleet.h"

typedef struct restorer restorer;

typedef struct restorer_opts {
    fleet *fleet;
    const char *catalog_path;      /* each restore's thread opens its own handle */
    const coordinator_config *cfg; /* profiles_dir and the [policy] section */
} restorer_opts;

int restorer_start(const restorer_opts *o, restorer **out, pgs_error *e);
/* Fails restores still running ("the coordinator is stopping") and waits for their threads.
 * NULL is allowed. Order at shutdown: api_stop, restorer_stop, fleet_stop (which tells the
 * restorer how the jobs it still had on agents ended), restorer_free. */
void restorer_stop(restorer *r);
void restorer_free(restorer *r);

#define RESTORE_PATTERNS_MAX 64 /* WIRE_PATTERNS_MAX */
#define RESTORE_JOBS_DEFAULT 2
#define RESTORE_JOBS_MAX 64
/* Restores running or waiting at once; more are refused (PGS_ELIMIT). */
#define RESTORE_ACTIVE_MAX 64

/* POST /v1/restores, decoded (api_restore_body_parse fills it). */
typedef struct restore_request {
    char source[CATALOG_SOURCE_MAX + 1]; /* a backup id, AGENT/DB@latest, or (fresh) AGENT/DB */
    int fresh;                           /* sync: back up AGENT/DB first */
    char target_agent[CATALOG_NAME_MAX + 1];
    char target_database[CATALOG_NAME_MAX + 1];
    char profile[CATALOG_PROFILE_MAX + 1]; /* "" when none */
    int overwrite_prod, safety_backup, keep_old;
    int schema_only, data_only, no_owner;
    char role[CATALOG_NAME_MAX + 1]; /* "" when none */
    unsigned jobs;                   /* 0: RESTORE_JOBS_DEFAULT */
    size_t nschemas, ntables;
    char schemas[RESTORE_PATTERNS_MAX][128];
    char tables[RESTORE_PATTERNS_MAX][128];
} restore_request;

/*
 * Checks req (resolving the source, the target and the profile), records a queued restore
 * requested by requested_by (may be NULL) through cat (the caller's handle) and starts it.
 * id_out receives its id. Errors, each with a message that says what to do:
 *   PGS_EINVAL     the request itself is wrong (schema_only with data_only, bad jobs, ...)
 *   PGS_ENOTFOUND  no such backup / no complete backup for @latest / the target agent is not
 *                  connected or does not serve that database / no such profile
 *   PGS_EORDER     the source backup is not complete
 *   PGS_EDENIED    the policy refuses: into a prod database without overwrite_prod, a prod backup
 *                  into another environment without a profile (and no allow_unsanitized pair)
 *   PGS_ELIMIT     too many restores at once
 */
int restorer_request(restorer *r, catalog *cat, const restore_request *req,
                     const char *requested_by, char id_out[CATALOG_ID_SIZE], pgs_error *e);

/* Live progress of restore id: 1 and *out filled while its thread runs, 0 otherwise (the
 * catalog has the rest). step is the restore's current step; when a job runs on an agent, the
 * agent's own step and bytes served are in job. */
typedef struct restorer_progress {
    char step[CATALOG_STEP_MAX + 1];
    int has_job;
    fleet_progress job;
} restorer_progress;
int restorer_progress_get(restorer *r, const char *id, restorer_progress *out);

#endif
