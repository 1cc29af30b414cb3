/*
 * The coordinator's live state: which agents are connected (with the databases they announced)
 * and the jobs handed to them. The transport (coordinator/server.c) fills it; the HTTP API
 * (coordinator/api.c) reads it and asks it for backups. Every function here is thread-safe.
 *
 * The catalog stays the record of what happened; the fleet knows only what is live in this
 * process: a restart forgets it (and catalog_recover fails what was in flight).
 */
#ifndef PGSHIP_COORDINATOR_FLEET_H
#define PGSHIP_COORDINATOR_FLEET_H

#include <jansson.h>
#include <stdint.h>

#include "common/error.h"
#include "common/net.h"
#include "coordinator/catalog.h"
#include "coordinator/config.h"
#include "coordinator/storage.h"
#include "proto/wire.h"

typedef struct fleet fleet;

/* What the daemon hands the fleet. The fleet keeps the pointers (cfg and st outlive it). */
typedef struct fleet_opts {
    const char *listen; /* nng URL */
    const net_tls *tls;
    const coordinator_agent_config *agents; /* allowed agents and their identity keys */
    size_t nagents;
    storage *st;
    const char *catalog_path; /* each stream opens its own handle */
    unsigned window;          /* unacknowledged DATA per stream (1..64) */
    unsigned max_streams;     /* streams at once; more jobs wait in their agents' queues */
    unsigned heartbeat_ms;    /* the long-poll: IDLE after this long without work */
    unsigned data_max;        /* DATA payload announced to agents */
} fleet_opts;

/* Starts listening for agents. */
int fleet_start(const fleet_opts *o, fleet **out, pgs_error *e);
/* Stops: no new connections, every job in flight fails with "coordinator stopping" (uploads
 * aborted, nothing visible), then frees. NULL is allowed. */
void fleet_stop(fleet *f);

/* Jobs queued for one agent beyond the one it runs. */
#define FLEET_QUEUE_MAX 16

/*
 * The connected agents, by name, as a new JSON array (NULL when out of memory):
 *   [{"name", "version", "key_id", "connected_at" (RFC 3339), "databases": [{"name",
 *     "environment", "server_version"}], "jobs": [ids, running first]}]
 */
json_t *fleet_agents_json(fleet *f);

/*
 * Asks connected agent for a backup of its database db. Checks that the agent is connected and
 * announced db (PGS_ENOTFOUND otherwise, with a message saying which), that its queue has room
 * (PGS_ELIMIT), creates the queued backup in the catalog through cat (the caller's handle;
 * label and requested_by may be NULL) and hands the job to the agent. id_out receives the
 * backup's id.
 */
int fleet_backup_request(fleet *f, catalog *cat, const char *agent, const char *db,
                         const char *label, const char *requested_by, char id_out[CATALOG_ID_SIZE],
                         pgs_error *e);
/* The same for the scheduler: the backup is recorded as asked for by schedule (its name). */
int fleet_backup_request_scheduled(fleet *f, catalog *cat, const char *agent, const char *db,
                                   const char *label, const char *requested_by,
                                   const char *schedule, char id_out[CATALOG_ID_SIZE],
                                   pgs_error *e);

/* How a restore or sanitize job ended, handed to its done callback (on the job's stream thread,
 * exactly once, after which the fleet forgets the job). */
typedef struct fleet_restore_outcome {
    const char *id;     /* the job's id */
    int ok;
    const char *step;   /* the failed step ("done" when ok); the agent's, or the coordinator's:
                           "dispatch", "fetch" (storage or transport), "upload" (sanitize) */
    const char *error;  /* "" when ok */
    json_t *report;     /* the agent's REPORT (borrowed, may be NULL: no report arrived) */
    const char *output_backup_id; /* sanitize: the new backup, complete when ok */
} fleet_restore_outcome;

typedef void (*fleet_restore_done_fn)(void *arg, const fleet_restore_outcome *out);

/* A restore or sanitize job for one agent. */
typedef struct fleet_restore_job {
    const char *id;     /* the restore's id: the job id on the wire */
    const char *kind;   /* "restore", "sanitize" or "verify" */
    const char *agent;  /* who runs it */
    const char *database; /* restored into (restore), or the scratch database (sanitize) */
    const catalog_backup *source; /* complete; its storage_key, bytes and sha256 are served */
    const wire_restore_spec *spec; /* copied; source/source_bytes are filled from source */
    /* sanitize: the new backup (already created queued in the catalog by the caller, with the
     * target's environment, label "sanitized" and source_backup_id); DATA/END ingest into it,
     * stored as <output_environment>/<output_agent>/<output_database>/<id>.pgship */
    const char *output_backup_id;
    const char *output_agent;
    const char *output_database;
    const char *output_environment;
    fleet_restore_done_fn done;
    void *done_arg;
} fleet_restore_job;

/*
 * Queues a restore or sanitize job for its agent, like fleet_backup_request: PGS_ENOTFOUND when
 * the agent is not connected or did not announce the database, PGS_ELIMIT when its queue is
 * full. On success done is called exactly once later (also when the job fails before it starts,
 * or the coordinator stops).
 */
int fleet_restore_request(fleet *f, const fleet_restore_job *j, pgs_error *e);

/* The public keys (text form) agent announced for its restore_keys, as a new JSON array of
 * strings; NULL when it is not connected. */
json_t *fleet_agent_restore_keys(fleet *f, const char *agent);

/* The environment agent announced for database db into env (cap bytes): 0, or PGS_ENOTFOUND
 * when the agent is not connected or did not announce db. */
int fleet_database_environment(fleet *f, const char *agent, const char *db, char *env, size_t cap);

/* Where a live job is. */
enum fleet_phase {
    FLEET_QUEUED = 1,    /* waiting for the agent to ask for work */
    FLEET_SENT = 2,      /* the agent has it; no data yet */
    FLEET_STREAMING = 3, /* data arriving */
    FLEET_FINISHING = 4, /* END received: checks, commit, sidecar, catalog */
    FLEET_RESTORING = 5, /* restore/sanitize: the agent is working; step says where */
};
const char *fleet_phase_name(enum fleet_phase p); /* "queued", "sent", "streaming", "finishing" */

typedef struct fleet_progress {
    enum fleet_phase phase;
    uint64_t bytes;     /* archive bytes received and stored so far */
    int64_t started_ms; /* unix ms when the job was handed to the agent (0 while queued) */
    int64_t updated_ms; /* unix ms of the last data */
    char step[32];      /* restore/sanitize: the agent's last STEP ("" before one) */
    char detail[256];   /* and its detail */
} fleet_progress;

/* 1 and *out filled when job id is live in this coordinator, 0 when it is not (finished, or
 * never here: the catalog knows the rest). */
int fleet_job_progress(fleet *f, const char *id, fleet_progress *out);

#endif
