/*
 * Prune: applies retention policies to the catalog and to storage (`pgship prune`).
 *
 * prune_plan reads every backup in the catalog, groups them by database -- the triple (agent,
 * database, environment) a backup is stored under, so a derived (sanitized) copy, which carries
 * its source's agent and database but the target's environment, is planned with the other copies
 * in that environment, never with the production backups -- and asks the caller which retention
 * policy applies to each database (none: the database is left out of the plan and keeps
 * everything). The planner (retention.h) then decides, from the complete and failed backups of the
 * database with their pins; queued and running backups are never planned nor touched.
 *
 * The plan then keeps, whatever the policy says, a backup that something still needs, and says
 * why: "source of derived backup ID" while a derived copy of it stays in the catalog (a derived
 * row never loses its link; the copy's own policy deletes it first), "used by restore ID" and
 * "used by verification ID" while those are queued or running. These are the rules
 * catalog_backup_delete enforces, so an applied plan does not fail on them.
 *
 * prune_apply deletes, for each backup planned for deletion, the object, then its sidecar
 * manifest, then the catalog row, in that order: a crash in between leaves a row whose object is
 * gone, and the next prune plans it again and finishes (storage says "deleted" for a missing
 * object). Just before touching storage it checks the row again (catalog_backup_delete_check): a
 * backup pinned, used or already deleted since the plan is skipped, not failed. Derived copies go
 * before their sources. One failed deletion is counted, logged and reported, and the rest goes on.
 */
#ifndef PGSHIP_COORDINATOR_PRUNE_H
#define PGSHIP_COORDINATOR_PRUNE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "coordinator/catalog.h"
#include "coordinator/retention.h"
#include "coordinator/storage.h"

#define PRUNE_REASONS_MAX 256    /* the reasons text of one backup, with its NUL */
#define PRUNE_POLICY_NAME_MAX 63 /* a policy's name as shown; longer names are cut */
#define PRUNE_FAILURES_MAX 16    /* failed deletions kept in prune_counts (all are counted) */

/*
 * Which policy applies to the database (agent, db, env): a policy that stays valid until
 * prune_plan returns, or NULL for none (keep everything). *policy_name may be set to the policy's
 * name for the plan's output (it is copied; NULL or unset: ""). Called once per database that has
 * backups.
 */
typedef const retention_policy *(*prune_policy_fn)(void *arg, const char *agent, const char *db,
                                                   const char *env, const char **policy_name);

typedef struct prune_rules {
    prune_policy_fn policy;
    void *arg;
} prune_rules;

/* One backup of the plan. */
typedef struct prune_entry {
    char id[CATALOG_ID_SIZE];
    char agent[CATALOG_NAME_MAX + 1];
    char database[CATALOG_NAME_MAX + 1];
    char environment[CATALOG_NAME_MAX + 1];
    char time[CATALOG_TIME_SIZE]; /* the backup's time for the rules: started_at, or created_at
                                     for a backup that failed before it started */
    enum catalog_state state;     /* CATALOG_COMPLETE or CATALOG_FAILED */
    int pinned;
    int keep;                        /* 1: kept; 0: to delete */
    char reasons[PRUNE_REASONS_MAX]; /* the planner's reasons ("last 1, daily 1"), then prune's */
    char policy[PRUNE_POLICY_NAME_MAX + 1];
    uint64_t bytes;                         /* stored size (0 for a failed backup) */
    char source_backup_id[CATALOG_ID_SIZE]; /* "" unless a derived copy */
} prune_entry;

/* A plan: entries grouped by database (agent, database, environment, in that order), newest
 * first within each. */
typedef struct prune_plan_t {
    prune_entry *entries;
    size_t n;
    size_t ndatabases;     /* databases with a policy and at least one planned backup */
    size_t ndelete;        /* entries with keep 0 */
    uint64_t delete_bytes; /* their stored bytes */
} prune_plan_t;

/* Plans the catalog's retention under rules (see the top of this file). On success *out is a new
 * plan (prune_plan_free it). A policy the planner refuses fails the whole plan (PGS_EINVAL, naming
 * the database); so does a catalog row whose time cannot be read (PGS_EFORMAT). The plan holds no
 * storage keys: prune_apply reads each row again when it deletes. */
int prune_plan(catalog *cat, const prune_rules *rules, prune_plan_t **out, pgs_error *e);
void prune_plan_free(prune_plan_t *plan);

/*
 * `pgship prune --dry-run --json`: {"backups": [{"id", "agent", "database", "environment",
 * "state", "time", "size_bytes", "pinned", "fate" ("keep" or "delete"), "reasons" (an array of
 * strings), "policy", "source_backup_id" (or null)}, ...], "databases": N, "keep": N,
 * "delete": N, "delete_bytes": N}. NULL when out of memory.
 */
json_t *prune_plan_to_json(const prune_plan_t *plan);

typedef struct prune_failure {
    char id[CATALOG_ID_SIZE];
    char error[256];
} prune_failure;

typedef struct prune_counts {
    size_t planned;         /* deletions in the plan */
    size_t deleted;         /* backups whose object, sidecar and row are gone */
    size_t skipped;         /* no longer deletable when applied (pinned, used, already gone) */
    size_t failed;          /* deletions that failed (storage or catalog errors) */
    uint64_t bytes_deleted; /* the stored bytes of the deleted backups */
    size_t nfailures;       /* entries in failures: the first PRUNE_FAILURES_MAX */
    prune_failure failures[PRUNE_FAILURES_MAX];
} prune_counts;

/*
 * Applies plan's deletions to storage and the catalog (see the top of this file) and fills *out.
 * Returns 0 when no deletion failed; otherwise the first failure's code, with e saying how many
 * failed and why the first did (every failure is also logged, and listed in out up to
 * PRUNE_FAILURES_MAX). A backup whose storage key does not name it (not ".../<id>.pgship") is a
 * failure: its object is not deleted.
 */
int prune_apply(catalog *cat, storage *st, const prune_plan_t *plan, prune_counts *out,
                pgs_error *e);

/* The sidecar of an object key ("<...>/<id>.pgship" -> "<...>/<id>.manifest.json") into out;
 * PGS_EINVAL when the key does not end in ".pgship" (or has nothing before it), PGS_ELIMIT when
 * out (cap bytes) is too small. */
int prune_sidecar_key(const char *object_key, char *out, size_t cap);

/*
 * Pins: a pin is the operator's intent, so it lives in storage too, where `catalog rebuild`
 * finds it again: a small marker "<...>/<id>.pin" beside the object (JSON: backup_id,
 * pinned_at, pinned_by). prune_pin pins (writes the marker, then the row) or unpins (the row,
 * then the marker), so that a failure half-way leaves the backup pinned somewhere: never a
 * pin lost. st may be NULL (the catalog only). A backup without an object (failed, running) is
 * pinned in the catalog only. PGS_ENOTFOUND for an unknown id. prune_apply deletes a backup's
 * marker with it.
 */
int prune_pin(catalog *cat, storage *st, const char *id, int pinned, const char *by,
              pgs_error *e);
/* The pin marker of an object key ("<...>/<id>.pgship" -> "<...>/<id>.pin"); errors as
 * prune_sidecar_key. */
int prune_pin_key(const char *object_key, char *out, size_t cap);
#endif
