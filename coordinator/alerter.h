/*
 * The alerter: one thread in the coordinator that turns what the catalog records into webhook
 * events (docs/monitoring.md, "Webhooks") and keeps the overdue state that GET /metrics shows.
 *
 * Every poll (a second) it reads, from a catalog handle of its own, what failed since it last
 * looked -- backups (missed scheduled runs included), restores, verifications -- and posts
 * backup.failed, restore.failed or verify.failed to every [webhook NAME] whose events include it.
 * It also checks each database the catalog knows against its expected interval
 * (schedd_overdue_after_s): a database whose newest complete backup is older than that is
 * overdue, which sets pgship_backup_overdue and posts one backup.overdue per episode (the next one
 * only after a good backup has ended the episode).
 *
 * Why it polls the catalog rather than being called by the jobs: the catalog is where every
 * failure ends up, whoever recorded it (the fleet, the restorer, the scheduler's missed runs,
 * verification, another process on the same file), so one reader sees them all and no code path
 * can forget to alert.
 *
 * Exactly once: a row's finished_at is stamped before its write commits, so a failure can become
 * visible after failures that ended later. Each poll therefore reads from ALERTER_LOOKBACK_MS
 * before now (never before the start point) and remembers the ids it has posted whose end is
 * still inside that window: every failure is posted once, including those that ended in the same
 * millisecond, as long as its write committed within the window (writers give up after the
 * catalog's 5 s busy timeout).
 *
 * Start point: only failures that end after the alerter starts (opts.since_ms) are posted. A
 * restarted coordinator does not send again what the previous run already sent, or what an
 * operator has long known about; the catalog keeps the history for `pgship ls` and the metrics.
 *
 * The alerter owns the webhooks: it starts one per [webhook NAME] and stops them at
 * alerter_stop.
 */
#ifndef PGSHIP_COORDINATOR_ALERTER_H
#define PGSHIP_COORDINATOR_ALERTER_H

#include <stdint.h>

#include "common/error.h"
#include "coordinator/config.h"
#include "coordinator/monitor.h"
#include "coordinator/schedd.h"

#define ALERTER_POLL_MS 1000
/* How far back each poll reads: well past the catalog's busy timeout (5 s), the longest a
 * finished_at can wait for its commit in practice. */
#define ALERTER_LOOKBACK_MS 60000

typedef struct alerter alerter;

typedef struct alerter_opts {
    const coordinator_config *cfg; /* [webhook NAME] sections, schedules, [scheduler] (borrowed) */
    const schedd *sched;           /* for schedd_overdue_after_s (borrowed; NULL: speed 1) */
    const char *catalog_path;      /* the alerter opens its own handle */
    monitor *monitor; /* NULL: no metrics; else its scrapes get the alerter's (borrowed) */
    const char *name; /* the payload's "coordinator"; NULL: this host's name */
    int64_t since_ms; /* the start point (Unix ms): failures that end before are not posted;
                         0: now */
    unsigned poll_ms; /* 0: ALERTER_POLL_MS */
    /* For tests: instead of schedd_overdue_after_s (NULL: it), and the webhooks' first retry
     * wait (0: the webhook's default). */
    int64_t (*overdue_after)(void *arg, const char *agent, const char *db, const char *env,
                             int64_t now);
    void *overdue_arg;
    int webhook_backoff_ms;
} alerter_opts;

/* What the alerter has posted since it started (each event once, whatever the webhooks made of
 * it: their own counts are in the metrics). */
typedef struct alerter_counts {
    uint64_t polls;         /* polls that read the catalog without an error */
    uint64_t backup_failed; /* events posted, by kind */
    uint64_t restore_failed;
    uint64_t verify_failed;
    uint64_t backup_overdue;
    uint64_t overdue_now; /* databases overdue at the last poll */
} alerter_counts;

/*
 * Opens the catalog, starts a webhook per [webhook NAME] and the thread, and registers with the
 * monitor. PGS_EINVAL (a webhook's options), PGS_ENOMEM, PGS_EIO or a catalog error; nothing is
 * left running on failure.
 */
int alerter_start(const alerter_opts *o, alerter **out, pgs_error *e);

/* The counts so far. */
void alerter_counts_get(alerter *a, alerter_counts *out);

/*
 * Stops the thread, unregisters from the monitor, stops the webhooks (each gets at most its
 * timeout to deliver what is queued, all at once) and frees everything. NULL is fine.
 */
void alerter_stop(alerter *a);

#endif
