/*
 * The scheduler's planning core: given the [schedule NAME] sections, the databases the
 * coordinator knows, what each schedule last did for each database, what is running and the
 * time, decide which scheduled backups start now, which wait, which were missed, and when each
 * database runs next (`pgship schedules`). It is pure: no threads, no catalog, no network, no
 * clock. The daemon calls sched_plan on every tick, carries out the decisions (starts the
 * backups, records missed ones as failed backups with reason "missed", stores each entry's new
 * last_due) and feeds the result back on the next tick.
 *
 * Entries. An entry is one (schedule, database) pair whose selector matches the database. Its
 * state is last_due: every due time of the schedule at or before last_due has been dealt with
 * (run, missed or merged); the caller keeps it per (schedule, agent, database), e.g. in the
 * catalog's schedule runs. SCHED_NEVER (0) means the entry was never seen: it does not run at
 * once and nothing before now is caught up; its first run is at the schedule's first due time
 * after now, and the plan hands back last_due = now to store.
 *
 * Jitter. Each entry runs at run_at = due + offset, with offset in [0, jitter_s) derived from a
 * hash of the schedule's, agent's and database's names (sched_jitter): a fleet's runs spread
 * over the jitter, yet one database's run time is the same on every tick, after a restart and
 * on every machine, so it can be listed in advance. A due time is ripe when run_at <= now.
 *
 * Catch-up and misses. up_since is when the scheduler started (the coordinator's start). A ripe
 * due time is late when run_at + grace_s < up_since: it passed while the coordinator was down.
 * Only the LATEST ripe due time of an entry is ever run, so an entry makes at most one run per
 * plan, never a burst:
 *   - the latest is not late: it runs (an ordinary run, or one held back by the limits);
 *   - the latest is late and catch_up is on: it runs once as the catch-up run, standing for all
 *     the late ones (why SCHED_WHY_CATCH_UP), and none is reported missed;
 *   - the latest is late and catch_up is off: nothing runs; the entry is SCHED_MISSED
 *     (SCHED_WHY_DOWN) and last_due moves to the latest.
 * Without catch_up, late due times before a latest that runs are reported missed too. Ripe due
 * times that were on time but were held back (limits, a busy database) until a later due time
 * ripened are folded into that later run, silently: the run that follows covers them.
 *
 * Whenever a decision has missed_first != 0, the caller records one missed backup for the due
 * times missed_first .. missed_last of that entry (both are due times of the schedule; there may
 * be others between them). A missed range is only reported together with a last_due at or past
 * it, so storing last_due guarantees it is reported once.
 *
 * Agents. A run whose agent is not connected waits (SCHED_WHY_AGENT_WAIT) for grace_s after
 * the later of up_since and the run_at of the entry's first ripe due time, so that agents can
 * reconnect after a coordinator restart or a short outage; after that it is SCHED_MISSED
 * (SCHED_WHY_AGENT_GONE) for all its ripe due times, and last_due advances.
 *
 * Limits. Runs that may start are taken by seniority -- the run_at of their FIRST ripe due time
 * after last_due, so that an entry held back while new due times ripen does not lose its place
 * to entries that ran last time -- then by schedule name, agent name and database name (so the
 * order is total and does not depend on the input's order), and
 * started while the scheduled backups running (the databases' `running`, plus those started by
 * this plan) stay below max_concurrent in total and max_per_agent on the agent. The others wait
 * (SCHED_WHY_LIMIT_TOTAL, SCHED_WHY_LIMIT_AGENT) with last_due unchanged; as they keep their
 * old run_at they come first on the next tick. A database whose backup is queued or running
 * (`busy`) waits too (SCHED_WHY_BUSY), and at most one scheduled backup of a database starts in
 * one plan (SCHED_WHY_DB_STARTING for another schedule's run of it).
 *
 * Two schedules, one database. A database that several schedules select is backed up by each of
 * them, but when two of them are at the same due time for it (a daily and a weekly schedule, both
 * at 02:00 on Sunday), one backup serves both: the first of them in configuration order leads,
 * the group runs at the leader's run_at with the leader's limits and fate, and the others
 * follow: SCHED_MERGED (merged_into: the leader's decision) when the leader starts, or waiting
 * or missed with it. A follower's last_due advances with the leader's, so the caller records the
 * leader's backup for it. Different due times are not merged: those are separate runs.
 *
 * Changing a schedule's cron expression keeps its entries' last_due: the first due time of the
 * new expression after last_due is the next run (it may be ripe at once).
 *
 * Bounds: SCHED_SCHEDULES_MAX schedules, SCHED_DATABASES_MAX databases, SCHED_ENTRIES_MAX
 * matched entries and states; a plan costs O(entries log entries) and a few dozen cron_next calls
 * per entry that has several ripe due times (a binary search for the latest). Refused inputs
 * (PGS_EINVAL, PGS_ELIMIT) leave *out NULL.
 *
 * Ownership: the inputs are only read. The output array is one allocation that the caller
 * releases with free(); its string pointers point into the inputs (the schedules' and databases'
 * names, cron_text and cron_zone of the schedules' expressions), so they live as long as those.
 */
#ifndef PGSHIP_COORDINATOR_SCHEDULER_H
#define PGSHIP_COORDINATOR_SCHEDULER_H

#include <stddef.h>
#include <stdint.h>

#include "common/cron.h"
#include "common/error.h"
#include "coordinator/select.h"

#define SCHED_SCHEDULES_MAX 4096
#define SCHED_DATABASES_MAX 100000
#define SCHED_ENTRIES_MAX 1000000      /* matched (schedule, database) pairs, and states */
#define SCHED_JITTER_MAX_S (24 * 3600) /* as [schedule NAME] jitter */
#define SCHED_GRACE_MAX_S (24 * 3600)  /* the largest grace_s */
#define SCHED_GRACE_DEFAULT_S 300      /* the grace the daemon passes: five minutes */
#define SCHED_NEVER INT64_C(0)         /* last_due of an entry never seen */
#define SCHED_NONE ((size_t)-1)        /* merged_into of a decision that leads or is alone */

/* A [schedule NAME]: names must be unique. */
typedef struct sched_schedule {
    const char *name;
    const cron_expr *cron;
    const db_select *select;
    int64_t jitter_s; /* 0 .. SCHED_JITTER_MAX_S */
} sched_schedule;

/* A database the coordinator knows; (agent, database) must be unique. Databases with a
 * scheduled backup running must be listed (connected or not), since their `running` counts
 * toward the limits. */
typedef struct sched_database {
    const char *agent;
    const char *database;
    const char *environment; /* NULL: none ("" for selectors) */
    int connected;           /* 1: its agent is connected now */
    int busy;                /* 1: a backup of it (scheduled or not) is queued or running */
    int running;             /* scheduled backups of it running now, >= 0 (the limits) */
} sched_database;

/* The stored state of one entry. States that match no entry are ignored; an entry without a
 * state is new (SCHED_NEVER). A (schedule, agent, database) triple may appear once. */
typedef struct sched_state {
    const char *schedule, *agent, *database;
    int64_t last_due; /* SCHED_NEVER or 1 .. CRON_TIME_MAX */
} sched_state;

/* [scheduler] */
typedef struct sched_limits {
    int max_concurrent; /* >= 1: scheduled backups running at once, over all agents */
    int max_per_agent;  /* >= 1: ... on one agent */
    int catch_up;       /* 1: one catch-up run after downtime; 0: late due times are missed */
    int64_t grace_s;    /* 0 .. SCHED_GRACE_MAX_S; SCHED_GRACE_DEFAULT_S in the daemon */
} sched_limits;

typedef struct sched_input {
    const sched_schedule *schedules; /* in configuration order: it decides merges */
    size_t nschedules;
    const sched_database *databases;
    size_t ndatabases;
    const sched_state *states;
    size_t nstates;
    sched_limits limits; /* sched_next_runs reads none of it */
    int64_t now;         /* unix seconds, CRON_TIME_MIN .. CRON_TIME_MAX */
    int64_t up_since;    /* when the scheduler started: 0 .. now */
} sched_input;

enum sched_action {
    SCHED_IDLE = 0, /* nothing due yet: due and run_at say when */
    SCHED_START,    /* start a scheduled backup now */
    SCHED_WAIT,     /* due, held back; last_due unchanged, tried again next tick */
    SCHED_MISSED,   /* not run: record missed_first .. missed_last as missed */
    SCHED_MERGED,   /* covered by the backup that merged_into starts */
};

enum sched_why {
    SCHED_WHY_NONE = 0,
    SCHED_WHY_FIRST_SEEN,  /* idle: a new entry, its first run is its next due time */
    SCHED_WHY_NEVER,       /* idle: the expression has no due time left (before 9999) */
    SCHED_WHY_CATCH_UP,    /* start: the one catch-up run of due times passed while down */
    SCHED_WHY_DOWN,        /* missed: passed while the coordinator was down, catch_up off */
    SCHED_WHY_AGENT_WAIT,  /* wait: the agent is not connected (yet) */
    SCHED_WHY_AGENT_GONE,  /* missed: the agent stayed disconnected past the grace */
    SCHED_WHY_BUSY,        /* wait: a backup of the database is queued or running */
    SCHED_WHY_DB_STARTING, /* wait: another schedule's backup of it starts in this plan */
    SCHED_WHY_LIMIT_TOTAL, /* wait: max_concurrent scheduled backups are running */
    SCHED_WHY_LIMIT_AGENT, /* wait: max_per_agent scheduled backups run on its agent */
    SCHED_WHY_MERGED,      /* merged into, or idle until, its leader's run (merged_into); a
                              follower that waits or is missed with its leader has the leader's
                              why */
};

/* One entry's decision. */
typedef struct sched_decision {
    size_t isched, idb;           /* indices into schedules and databases */
    const char *schedule;         /* the schedule's name */
    const char *agent, *database; /* the database's */
    int action;                   /* enum sched_action */
    int why;                      /* enum sched_why */
    int64_t due;    /* the due time decided on; for SCHED_IDLE the next one (0: never) */
    int64_t run_at; /* when it runs or ran: due + the leader's offset */
    int64_t offset; /* this entry's own jitter offset */
    int64_t missed_first, missed_last; /* 0, 0: nothing to record as missed */
    int64_t last_due;                  /* the state to store from now on */
    int changed;                       /* 1: last_due differs from the state given (store it) */
    size_t merged_into;                /* the leader's index in the decisions, or SCHED_NONE */
} sched_decision;

/*
 * Plans one tick: one decision per entry, ordered by database (input order), then schedule
 * (configuration order). *out is NULL when there is no entry. PGS_EINVAL for a malformed input
 * (a NULL name, expression or selector, a jitter, limit, time or count out of range, duplicate
 * schedule names, databases or states), PGS_ELIMIT past the bounds above, PGS_ENOMEM.
 */
int sched_plan(const sched_input *in, sched_decision **out, size_t *nout, pgs_error *e);

/* One line of `pgship schedules`: when an entry runs next. */
typedef struct sched_run {
    size_t isched, idb;
    const char *schedule, *cron_text, *zone;    /* cron_text and cron_zone of the expression */
    const char *agent, *database, *environment; /* environment "" when none */
    int64_t due;             /* the due time it runs for next (when several are ripe, the
                                latest: the others fold into it); 0: never runs again */
    int64_t run_at;          /* its run time (the leader's, when merged) */
    int due_now;             /* 1: run_at <= now, so it starts or waits now */
    const char *merged_into; /* the leading schedule's name when merged, else NULL */
} sched_run;

/*
 * Lists the entries' next runs, as sched_plan sees them (limits aside): sorted by run_at, then
 * configuration order, agent and database; entries that never run again last. The same input
 * rules and errors as sched_plan; in->limits is not read.
 */
int sched_next_runs(const sched_input *in, sched_run **out, size_t *nout, pgs_error *e);

/* The jitter offset of (schedule, agent, database) in [0, jitter_s) (0 when jitter_s <= 0):
 * BLAKE2b of the three names, so it is stable across ticks, restarts and machines. */
int64_t sched_jitter(const char *schedule, const char *agent, const char *database,
                     int64_t jitter_s);

/* The action's and the reason's names ("start", "agent not connected"), for logs and listings. */
const char *sched_action_name(int action);
const char *sched_why_text(int why);

#endif
