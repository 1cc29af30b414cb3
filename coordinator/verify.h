/*
 * Verifications on the coordinator (docs/api.md, "Verifications"; docs/wire-protocol.md, "Verify
 * jobs"): a stored backup checked end to end by an agent that holds one of its keys. The
 * coordinator never holds a private key, so it cannot open an archive itself; what it can do is
 * pick the agent, serve it the object exactly as for a restore, and record what the agent found.
 *
 *   plain         the agent decrypts every chunk, checks the checksum list and the whole
 *                 object's SHA-256, and keeps nothing
 *   restore test  it also restores the archive into a scratch database (pgship_verify_<8 hex>)
 *                 on the server of one of its databases, counts every table's rows and drops it
 *
 * Each verification is a catalog row (catalog_verify_*) that goes queued -> running (when its
 * agent takes the job) -> ok | failed with the agent's report; finishing it also records the
 * result on the backup (verified_at, verify_result), which `pgship ls` and `pgship show` show.
 * The API and the scheduler daemon call verifier_request; one thread of the verifier does the
 * rest.
 */
#ifndef PGSHIP_COORDINATOR_VERIFY_H
#define PGSHIP_COORDINATOR_VERIFY_H

#include "common/error.h"
#include "coordinator/catalog.h"
#include "coordinator/config.h"
#include "coordinator/fleet.h"

typedef struct verifier verifier;

typedef struct verifier_opts {
    fleet *fleet;                  /* connected agents, and the jobs (borrowed) */
    const char *catalog_path;      /* the verifier's thread opens its own handle */
    const coordinator_config *cfg; /* borrowed; may be NULL */
} verifier_opts;

/* Verifications queued or running at once; more are refused (PGS_ELIMIT). */
#define VERIFY_ACTIVE_MAX 64
/* pg_restore -j of a restore test. */
#define VERIFY_RESTORE_JOBS 2

/*
 * Opens the catalog, fails the verifications a previous run left queued or running ("the
 * coordinator stopped before it finished": their agents' jobs died with it) and starts the
 * verifier's thread.
 */
int verifier_start(const verifier_opts *o, verifier **out, pgs_error *e);
/* Fails the verifications still queued or running ("the coordinator is stopping") and stops the
 * thread. NULL is allowed. Order at shutdown: api_stop, schedd_stop, verifier_stop, fleet_stop
 * (which may still tell the verifier how jobs ended: it no longer listens), verifier_free. */
void verifier_stop(verifier *v);
void verifier_free(verifier *v);

/*
 * Verifies backup backup_id (which must be complete), with a restore test when restore_test is
 * set; requested_by (may be NULL) is recorded in the report. Thread-safe; cat is the caller's
 * handle. The agent: the backup's own when it is connected and one of its restore keys is among
 * the backup's recipients, else a connected agent holding such a key (the least busy, then by
 * name). The job names the backup's database when that agent serves it, else the agent's first
 * (a restore test's scratch database is made on its server). id_out receives the new
 * verification's id. Errors, each with a message that says what to do:
 *   PGS_EINVAL     backup_id is not a backup id
 *   PGS_ENOTFOUND  no such backup; no connected agent holds one of its keys (the message lists
 *                  the key ids); the coordinator is stopping
 *   PGS_EORDER     the backup is not complete
 *   PGS_ELIMIT     VERIFY_ACTIVE_MAX verifications run already, or every agent that could is busy
 */
int verifier_request(verifier *v, catalog *cat, const char *backup_id, int restore_test,
                     const char *requested_by, char id_out[CATALOG_ID_SIZE], pgs_error *e);

#endif
