/*
 * The scheduler daemon: one thread in the coordinator that carries out the [schedule NAME]
 * sections. Every tick it gathers the databases the coordinator knows (the catalog's, with the
 * fleet's live view of which agents are connected and which backups run), asks sched_plan
 * (scheduler.h) what to do, and does it:
 *   - start: a backup through fleet_backup_request, requested_by "schedule:NAME", marked
 *     scheduled in the catalog; for a schedule with action = verify or restore-test, a
 *     verification of the database's newest complete backup instead;
 *   - missed: a failed backup row whose reason starts with "missed:" and says why (the
 *     coordinator was down, the agent stayed away), so `pgship ls`, the metrics and the alerts
 *     all see it like any failed backup;
 *   - every decision that moves an entry's last_due is stored in the catalog's schedule runs, so
 *     a restart neither repeats a run nor forgets one (one catch-up run when configured);
 *   - a schedule that names a retention prunes the databases it selected once their scheduled
 *     backups of that due time have ended (prune.h), in the same thread.
 *
 * The scheduler's clock is the wall clock. For tests, PGSHIP_SCHEDULER_SPEED=N (1..3600) makes
 * the scheduler's time run N times faster from the moment it starts (a "* * * * *" schedule
 * then fires every 60/N seconds); it is logged as a warning and never meant for production.
 */
#ifndef PGSHIP_COORDINATOR_SCHEDD_H
#define PGSHIP_COORDINATOR_SCHEDD_H

#include <jansson.h>
#include <stdint.h>

#include "common/error.h"
#include "coordinator/catalog.h"
#include "coordinator/config.h"
#include "coordinator/fleet.h"
#include "coordinator/prune.h"
#include "coordinator/storage.h"

typedef struct schedd schedd;
typedef struct verifier verifier;

#define SCHEDD_TICK_MS 1000
#define SCHEDD_SPEED_MAX 3600

/* Starts a verification of backup_id (verify.h's verifier_request, through the daemon, so that
 * the scheduler does not depend on the verifier's module): 0 and its id in id_out, or an
 * error. */
typedef int (*schedd_verify_fn)(verifier *v, catalog *cat, const char *backup_id, int restore_test,
                                const char *requested_by, char id_out[CATALOG_ID_SIZE],
                                pgs_error *e);

typedef struct schedd_opts {
    const coordinator_config *cfg; /* schedules, retentions, [scheduler] (borrowed) */
    fleet *fleet;                  /* borrowed */
    storage *st;                   /* for prune (borrowed) */
    const char *catalog_path;      /* the scheduler opens its own handle */
    verifier *verifier;            /* scheduled verifications (action = verify or
                                      restore-test) through verify; NULL: none (logged) */
    schedd_verify_fn verify;
    unsigned tick_ms; /* 0: SCHEDD_TICK_MS */
    unsigned speed;   /* 0: PGSHIP_SCHEDULER_SPEED or 1 */
} schedd_opts;

/* Starts the thread (also with no schedules: it then only answers schedd_next_runs_json). */
int schedd_start(const schedd_opts *o, schedd **out, pgs_error *e);
/* Stops the thread (a prune under way finishes its current deletion) and frees; NULL is fine. */
void schedd_stop(schedd *s);

/*
 * GET /v1/schedules: {"now": RFC 3339, "speed": N, "schedules": [{"name", "action" ("backup",
 * "verify", "restore-test"), "cron", "zone", "select", "jitter_s", "retention" (or null)}],
 * "runs": [{"schedule", "agent", "database", "environment" (or null), "due", "run_at" (RFC 3339,
 * or null: never again), "due_now", "merged_into" (or null), "action"}]} -- every (schedule, database) pair by next run time, as
 * of the last tick. A new reference, NULL when out of memory.
 */
json_t *schedd_next_runs_json(schedd *s);

/* The scheduler's idea of now (unix seconds): the wall clock, sped up by speed. */
int64_t schedd_now(const schedd *s);

/*
 * The retention policy that applies to (agent, db, env) under cfg: the first schedule in file
 * order that selects the database and names a retention, else the first [retention NAME] whose
 * own select matches it; NULL (keep everything) when none does. *name is set to the policy's
 * name when one applies. The rules `pgship prune` and the scheduler's prunes use.
 */
const retention_policy *schedd_policy_for(const coordinator_config *cfg, const char *agent,
                                          const char *db, const char *env, const char **name);
/* prune_rules over schedd_policy_for (rules->arg is cfg, which must outlive the rules). */
void schedd_prune_rules(const coordinator_config *cfg, prune_rules *rules);

/*
 * How long (real seconds) database (agent, db, env) may go without a complete backup before it
 * is overdue: the shortest of the intervals of the schedules that select it -- each one's
 * interval is the time between its last two due times at or before now (for "0 2 * * 1-5",
 * one day on a Tuesday, three days on a Monday) -- times [scheduler] overdue_factor, plus the
 * largest of their jitters, divided by the scheduler's speed (s may be NULL: speed 1, and now
 * is used; else the scheduler's own now). 0 when no backup schedule selects the database (it
 * is never overdue). now is unix seconds.
 */
int64_t schedd_overdue_after_s(const schedd *s, const coordinator_config *cfg, const char *agent,
                               const char *db, const char *env, int64_t now);

#endif
