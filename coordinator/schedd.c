/*
 * The scheduler daemon (schedd.h). The planning is scheduler.c's; this file gathers its inputs
 * from the catalog and the fleet, carries out the decisions, prunes, and answers what is planned.
 *
 * One thread, one catalog handle of its own. Each tick:
 *   1. the databases: the catalog's (every database an agent ever announced), marked connected
 *      when the fleet has that agent now; busy when a backup of it is queued or running;
 *   2. the scheduled backups this scheduler started and that have ended since are dropped from
 *      its list; a database whose schedule names a retention is marked for pruning;
 *   3. the entries' stored last_due, read from the catalog once per entry and cached (a hash of
 *      schedule, agent and database), then kept in step with every write;
 *   4. sched_plan, and its decisions carried out (leaders before the followers merged into
 *      them, so that a follower can record its leader's backup);
 *   5. one prune over the databases marked in step 2, if any.
 * The last tick's databases and states stay for schedd_next_runs_json (under the mutex), so a
 * listing costs one sched_next_runs and never touches the catalog.
 */
/* scheduler.h first: glibc's <sched.h> (through pthread.h, with _GNU_SOURCE) defines a macro
 * SCHED_IDLE, which would break the planner's enum. */
#include "coordinator/scheduler.h"

#include "coordinator/schedd.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cron.h"
#include "common/log.h"
#include "coordinator/select.h"

#define NAME_CAP (CATALOG_NAME_MAX + 1)
#define OVERDUE_YEARS 8  /* how far back a schedule's last two due times are looked for */
#define OVERDUE_STEPS 64 /* due times looked at in one window */

typedef struct sd_db {
    char agent[NAME_CAP], name[NAME_CAP], env[NAME_CAP];
    int connected, busy, running;
} sd_db;

typedef struct sd_state {
    char schedule[NAME_CAP], agent[NAME_CAP], db[NAME_CAP];
    int64_t last_due; /* SCHED_NEVER when the catalog has none */
} sd_state;

/* A scheduled backup this scheduler started and has not seen end. */
typedef struct sd_job {
    char id[CATALOG_ID_SIZE];
    size_t isched;
    char agent[NAME_CAP], db[NAME_CAP];
} sd_job;

/* A database to prune after its scheduled backup ended. */
typedef struct sd_key {
    char agent[NAME_CAP], db[NAME_CAP];
} sd_key;

struct schedd {
    const coordinator_config *cfg;
    fleet *fleet;
    storage *st;
    verifier *verifier;
    schedd_verify_fn verify;
    catalog *cat; /* the thread's */
    unsigned tick_ms;
    unsigned speed;
    int64_t up_real; /* wall-clock unix seconds at start: the sped-up clock's origin */
    /* The schedules in two planning groups, backups then verifications, each in file order:
     * the planner merges the runs of one database's schedules that fall due together, which
     * is right within a group and wrong across them (a verification never stands in for a
     * backup). map[i] is scheds[i]'s index in cfg->schedules. */
    sched_schedule *scheds;
    size_t *map;
    size_t nscheds;
    size_t ngroup[2];
    sched_limits limits;

    pthread_t thread;
    int started;
    pthread_mutex_t mu; /* stopping, and the snapshot below (the thread writes, readers list) */
    pthread_cond_t cv;
    int stopping;
    sd_db *dbs;
    size_t ndbs;
    sd_state *states; /* the cache: every entry seen so far */
    size_t nstates, capstates;
    size_t *index; /* open addressing over states; SIZE_MAX is empty */
    size_t capindex;

    /* the thread's alone */
    sd_job *jobs;
    size_t njobs, capjobs;
    sd_key *prune;
    size_t nprune, capprune;
};

static int64_t wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

int64_t schedd_now(const schedd *s)
{
    int64_t now = wall_now();
    if (s == NULL || s->speed <= 1)
        return now;
    return s->up_real + (now - s->up_real) * (int64_t)s->speed;
}

/* ---- policies ---- */

const retention_policy *schedd_policy_for(const coordinator_config *cfg, const char *agent,
                                          const char *db, const char *env, const char **name)
{
    for (size_t i = 0; i < cfg->nschedules; i++) {
        const coordinator_schedule_config *sc = &cfg->schedules[i];
        if (sc->retention_ref != NULL && select_match(sc->select, agent, db, env)) {
            if (name != NULL)
                *name = sc->retention_ref->name;
            return &sc->retention_ref->policy;
        }
    }
    for (size_t i = 0; i < cfg->nretentions; i++) {
        const coordinator_retention_config *rc = &cfg->retentions[i];
        if (rc->select != NULL && select_match(rc->select, agent, db, env)) {
            if (name != NULL)
                *name = rc->name;
            return &rc->policy;
        }
    }
    return NULL;
}

static const retention_policy *rules_policy(void *arg, const char *agent, const char *db,
                                            const char *env, const char **name)
{
    return schedd_policy_for(arg, agent, db, env, name);
}

void schedd_prune_rules(const coordinator_config *cfg, prune_rules *rules)
{
    rules->policy = rules_policy;
    rules->arg = (void *)cfg;
}

/* The interval between the last two due times of c at or before now (0: fewer than two in
 * the last OVERDUE_YEARS years). The window before now doubles until it holds two. */
static int64_t last_gap(const cron_expr *c, int64_t now)
{
    pgs_error e = {0};
    for (int64_t w = 120; w <= OVERDUE_YEARS * 366 * 86400; w *= 2) {
        int64_t t = now - w > CRON_TIME_MIN ? now - w : CRON_TIME_MIN, a = 0, b = 0, next;
        for (int n = 0; n < OVERDUE_STEPS && cron_next(c, t, &next, &e) == 0 && next <= now; n++) {
            a = b;
            b = next;
            t = next;
        }
        if (a != 0)
            return b - a;
        if (t == CRON_TIME_MIN)
            break;
    }
    return 0;
}

int64_t schedd_overdue_after_s(const schedd *s, const coordinator_config *cfg, const char *agent,
                               const char *db, const char *env, int64_t now)
{
    int64_t best = 0, jitter = 0;
    for (size_t i = 0; i < cfg->nschedules; i++) {
        const coordinator_schedule_config *sc = &cfg->schedules[i];
        if (sc->action != SCHEDULE_BACKUP || !select_match(sc->select, agent, db, env))
            continue;
        int64_t gap = last_gap(sc->cron, s != NULL ? schedd_now(s) : now);
        if (gap > 0 && (best == 0 || gap < best))
            best = gap;
        if (sc->jitter_s > jitter)
            jitter = sc->jitter_s;
    }
    if (best == 0)
        return 0;
    double factor = cfg->scheduler.overdue_factor >= 1.0 ? cfg->scheduler.overdue_factor : 1.0;
    double limit = (double)best * factor + (double)jitter;
    unsigned speed = s != NULL && s->speed > 1 ? s->speed : 1;
    int64_t out = (int64_t)(limit / speed);
    return out > 0 ? out : 1;
}

/* ---- the state cache ---- */

static uint64_t key_hash(const char *sched, const char *agent, const char *db)
{
    uint64_t h = 1469598103934665603ull;
    const char *parts[3] = {sched, agent, db};
    for (int i = 0; i < 3; i++) {
        for (const unsigned char *p = (const unsigned char *)parts[i]; *p; p++)
            h = (h ^ *p) * 1099511628211ull;
        h = (h ^ 0xff) * 1099511628211ull; /* a separator no name contains */
    }
    return h;
}

static sd_state *state_find(schedd *s, const char *sched, const char *agent, const char *db)
{
    if (s->capindex == 0)
        return NULL;
    size_t mask = s->capindex - 1;
    for (size_t i = key_hash(sched, agent, db) & mask;; i = (i + 1) & mask) {
        size_t k = s->index[i];
        if (k == SIZE_MAX)
            return NULL;
        sd_state *st = &s->states[k];
        if (strcmp(st->schedule, sched) == 0 && strcmp(st->agent, agent) == 0 &&
            strcmp(st->db, db) == 0)
            return st;
    }
}

static int index_rebuild(schedd *s, size_t cap)
{
    size_t *ix = malloc(cap * sizeof(*ix));
    if (ix == NULL)
        return -1;
    for (size_t i = 0; i < cap; i++)
        ix[i] = SIZE_MAX;
    for (size_t k = 0; k < s->nstates; k++) {
        const sd_state *st = &s->states[k];
        size_t i = key_hash(st->schedule, st->agent, st->db) & (cap - 1);
        while (ix[i] != SIZE_MAX)
            i = (i + 1) & (cap - 1);
        ix[i] = k;
    }
    free(s->index);
    s->index = ix;
    s->capindex = cap;
    return 0;
}

/* Adds an entry's state (under s->mu: the snapshot's arrays move). */
static sd_state *state_add(schedd *s, const char *sched, const char *agent, const char *db,
                           int64_t last_due)
{
    if (s->nstates == s->capstates) {
        size_t cap = s->capstates ? s->capstates * 2 : 64;
        sd_state *n = realloc(s->states, cap * sizeof(*n));
        if (n == NULL)
            return NULL;
        s->states = n;
        s->capstates = cap;
    }
    sd_state *st = &s->states[s->nstates++];
    snprintf(st->schedule, sizeof(st->schedule), "%s", sched);
    snprintf(st->agent, sizeof(st->agent), "%s", agent);
    snprintf(st->db, sizeof(st->db), "%s", db);
    st->last_due = last_due;
    if (s->nstates * 2 > s->capindex) {
        size_t cap = s->capindex ? s->capindex * 2 : 128;
        while (cap < s->nstates * 2)
            cap *= 2;
        if (index_rebuild(s, cap) != 0) {
            s->nstates--;
            return NULL;
        }
    } else {
        size_t mask = s->capindex - 1, i = key_hash(sched, agent, db) & mask;
        while (s->index[i] != SIZE_MAX)
            i = (i + 1) & mask;
        s->index[i] = s->nstates - 1;
    }
    return st;
}

/* Makes sure every (schedule, database) entry has a cached state, reading the catalog for those
 * seen for the first time. */
static void states_load(schedd *s)
{
    for (size_t j = 0; j < s->ndbs; j++) {
        const sd_db *d = &s->dbs[j];
        for (size_t i = 0; i < s->nscheds; i++) {
            const sched_schedule *sc = &s->scheds[i];
            if (!select_match(sc->select, d->agent, d->name, d->env) ||
                state_find(s, sc->name, d->agent, d->name) != NULL)
                continue;
            int64_t last = SCHED_NEVER;
            pgs_error e = {0};
            int rc =
                catalog_schedule_last_due_get(s->cat, sc->name, d->agent, d->name, &last, NULL, &e);
            if (rc != 0 && rc != PGS_ENOTFOUND) {
                log_warn("scheduler: %s", e.msg);
                continue; /* tried again next tick */
            }
            if (rc != 0 || last < 0)
                last = SCHED_NEVER;
            pthread_mutex_lock(&s->mu);
            state_add(s, sc->name, d->agent, d->name, last);
            pthread_mutex_unlock(&s->mu);
        }
    }
}

/* Stores an entry's new last_due (and the backup that served it) in the catalog and the cache. */
static void state_store(schedd *s, const char *sched, const char *agent, const char *db,
                        int64_t last_due, const char *backup_id)
{
    pgs_error e = {0};
    if (catalog_schedule_last_due_set(s->cat, sched, agent, db, last_due, backup_id, &e) != 0)
        log_warn("scheduler: schedule %s, %s/%s: cannot record its last run: %s", sched, agent, db,
                 e.msg);
    pthread_mutex_lock(&s->mu);
    sd_state *st = state_find(s, sched, agent, db);
    if (st != NULL)
        st->last_due = last_due;
    else
        state_add(s, sched, agent, db, last_due);
    pthread_mutex_unlock(&s->mu);
}

/* ---- gathering the databases ---- */

typedef struct db_acc {
    sd_db *dbs;
    size_t n, cap;
} db_acc;

static int db_cb(void *arg, const catalog_database *d)
{
    db_acc *acc = arg;
    if (acc->n == acc->cap) {
        size_t cap = acc->cap ? acc->cap * 2 : 64;
        sd_db *n = realloc(acc->dbs, cap * sizeof(*n));
        if (n == NULL)
            return -1;
        acc->dbs = n;
        acc->cap = cap;
    }
    sd_db *x = &acc->dbs[acc->n++];
    memset(x, 0, sizeof(*x));
    snprintf(x->agent, sizeof(x->agent), "%s", d->agent);
    snprintf(x->name, sizeof(x->name), "%s", d->name);
    snprintf(x->env, sizeof(x->env), "%s", d->environment);
    return 0;
}

static sd_db *db_find(sd_db *dbs, size_t n, const char *agent, const char *db)
{
    for (size_t i = 0; i < n; i++) /* a tick's cost is dominated by the catalog, not this */
        if (strcmp(dbs[i].agent, agent) == 0 && strcmp(dbs[i].name, db) == 0)
            return &dbs[i];
    return NULL;
}

static int busy_cb(void *arg, const catalog_backup *b)
{
    db_acc *acc = arg;
    sd_db *d = db_find(acc->dbs, acc->n, b->agent, b->database);
    if (d != NULL)
        d->busy = 1;
    return 0;
}

/* The databases as of now, with connected, busy and running filled. 0, or -1 (logged). */
static int gather(schedd *s, db_acc *acc)
{
    pgs_error e = {0};
    if (catalog_databases_list(s->cat, NULL, db_cb, acc, &e) != 0) {
        log_warn("scheduler: cannot list the databases: %s", e.msg);
        return -1;
    }
    json_t *agents = fleet_agents_json(s->fleet);
    size_t i;
    json_t *a;
    json_array_foreach(agents, i, a)
    {
        const char *name = json_string_value(json_object_get(a, "name"));
        for (size_t k = 0; name != NULL && k < acc->n; k++)
            if (strcmp(acc->dbs[k].agent, name) == 0)
                acc->dbs[k].connected = 1;
    }
    json_decref(agents);
    static const enum catalog_state live[] = {CATALOG_QUEUED, CATALOG_RUNNING};
    for (size_t k = 0; k < 2; k++) {
        catalog_filter f = {.state = live[k]};
        if (catalog_backup_list(s->cat, &f, busy_cb, acc, &e) != 0) {
            log_warn("scheduler: cannot list the backups in flight: %s", e.msg);
            return -1;
        }
    }
    return 0;
}

/* ---- jobs and prunes ---- */

static void prune_mark(schedd *s, const char *agent, const char *db)
{
    for (size_t i = 0; i < s->nprune; i++)
        if (strcmp(s->prune[i].agent, agent) == 0 && strcmp(s->prune[i].db, db) == 0)
            return;
    if (s->nprune == s->capprune) {
        size_t cap = s->capprune ? s->capprune * 2 : 16;
        sd_key *n = realloc(s->prune, cap * sizeof(*n));
        if (n == NULL)
            return;
        s->prune = n;
        s->capprune = cap;
    }
    sd_key *k = &s->prune[s->nprune++];
    snprintf(k->agent, sizeof(k->agent), "%s", agent);
    snprintf(k->db, sizeof(k->db), "%s", db);
}

/* Drops the jobs that have ended (marking their databases for pruning when their schedule
 * names a retention) and counts the rest as running on their databases. */
static void jobs_refresh(schedd *s, sd_db *dbs, size_t ndbs)
{
    size_t kept = 0;
    for (size_t i = 0; i < s->njobs; i++) {
        sd_job *j = &s->jobs[i];
        catalog_backup b;
        pgs_error e = {0};
        int rc = catalog_backup_get(s->cat, j->id, &b, &e);
        if (rc == 0 && (b.state == CATALOG_QUEUED || b.state == CATALOG_RUNNING)) {
            sd_db *d = db_find(dbs, ndbs, j->agent, j->db);
            if (d != NULL)
                d->running++;
            s->jobs[kept++] = *j;
            continue;
        }
        if (rc != 0 && rc != PGS_ENOTFOUND) {
            log_warn("scheduler: backup %s: %s", j->id, e.msg);
            s->jobs[kept++] = *j; /* looked at again next tick */
            continue;
        }
        if (s->cfg->schedules[j->isched].retention_ref != NULL)
            prune_mark(s, j->agent, j->db);
    }
    s->njobs = kept;
}

static void job_add(schedd *s, const char *id, size_t isched, const char *agent, const char *db)
{
    if (s->njobs == s->capjobs) {
        size_t cap = s->capjobs ? s->capjobs * 2 : 16;
        sd_job *n = realloc(s->jobs, cap * sizeof(*n));
        if (n == NULL)
            return; /* the backup runs; it only does not count toward the limits */
        s->jobs = n;
        s->capjobs = cap;
    }
    sd_job *j = &s->jobs[s->njobs++];
    snprintf(j->id, sizeof(j->id), "%s", id);
    j->isched = isched;
    snprintf(j->agent, sizeof(j->agent), "%s", agent);
    snprintf(j->db, sizeof(j->db), "%s", db);
}

static const retention_policy *marked_policy(void *arg, const char *agent, const char *db,
                                             const char *env, const char **name)
{
    schedd *s = arg;
    for (size_t i = 0; i < s->nprune; i++)
        if (strcmp(s->prune[i].agent, agent) == 0 && strcmp(s->prune[i].db, db) == 0)
            return schedd_policy_for(s->cfg, agent, db, env, name);
    return NULL;
}

/* Applies the retention of the databases whose scheduled backups ended since the last prune. */
static void prune_marked(schedd *s)
{
    if (s->nprune == 0)
        return;
    prune_rules rules = {marked_policy, s};
    prune_plan_t *plan = NULL;
    pgs_error e = {0};
    if (prune_plan(s->cat, &rules, &plan, &e) != 0) {
        log_warn("scheduler: prune: %s", e.msg);
        s->nprune = 0; /* the next scheduled backup of these databases tries again */
        return;
    }
    prune_counts c;
    memset(&c, 0, sizeof(c));
    if (plan->ndelete > 0) {
        int rc = prune_apply(s->cat, s->st, plan, &c, &e);
        log_info("scheduler: prune after scheduled backups of %zu database(s): %zu deleted "
                 "(%" PRIu64 " bytes), %zu skipped, %zu failed%s%s",
                 s->nprune, c.deleted, c.bytes_deleted, c.skipped, c.failed, rc ? ": " : "",
                 rc ? e.msg : "");
    }
    prune_plan_free(plan);
    s->nprune = 0;
}

/* ---- carrying out the plan ---- */

static void due_text(int64_t t, char out[CATALOG_TIME_SIZE])
{
    catalog_time_format(t * 1000, out);
}

/* A failed backup row that says why a scheduled run did not happen; its id into id_out. */
static void record_missed(schedd *s, const char *sched, const char *agent, const char *db,
                          const char *env, const char *why, char id_out[CATALOG_ID_SIZE])
{
    char by[CATALOG_REQUESTED_BY_MAX + 1];
    snprintf(by, sizeof(by), "schedule:%s", sched);
    catalog_backup_req req = {.agent = agent,
                              .database = db,
                              .environment = env[0] ? env : NULL,
                              .requested_by = by,
                              .scheduled = sched};
    pgs_error e = {0};
    id_out[0] = 0;
    if (catalog_backup_new(s->cat, &req, id_out, &e) != 0) {
        log_warn("scheduler: schedule %s, %s/%s: cannot record a missed run (%s): %s", sched, agent,
                 db, why, e.msg);
        return;
    }
    /* A row left queued would count as a backup in flight and hold the database's schedule
     * until the next restart: the failure is written a few times before giving up. */
    int rc = -1;
    for (int attempt = 0; attempt < 3 && rc != 0; attempt++) {
        if (attempt > 0)
            nanosleep(&(struct timespec){0, 200 * 1000000L}, NULL);
        rc = catalog_backup_fail(s->cat, id_out, why, &e);
    }
    if (rc != 0) {
        log_warn("scheduler: schedule %s, %s/%s: backup %s stays queued (the next start fails "
                 "it): cannot record its missed run (%s): %s",
                 sched, agent, db, id_out, why, e.msg);
        return;
    }
    log_warn("scheduler: schedule %s, %s/%s: backup %s failed: %s", sched, agent, db, id_out, why);
}

/* A scheduled verification: of the database's newest complete backup. */
static void start_verify(schedd *s, const sched_decision *d, int restore_test)
{
    char by[CATALOG_REQUESTED_BY_MAX + 1], vid[CATALOG_ID_SIZE] = "";
    snprintf(by, sizeof(by), "schedule:%s", d->schedule);
    catalog_backup b;
    pgs_error e = {0};
    if (s->verifier == NULL || s->verify == NULL) {
        log_warn("scheduler: schedule %s, %s/%s: verifications are not available in this "
                 "coordinator",
                 d->schedule, d->agent, d->database);
    } else if (catalog_latest_complete(s->cat, d->agent, d->database, &b, &e) != 0) {
        log_warn("scheduler: schedule %s, %s/%s: nothing to verify: %s", d->schedule, d->agent,
                 d->database, e.msg);
    } else if (s->verify(s->verifier, s->cat, b.id, restore_test, by, vid, &e) != 0) {
        log_warn("scheduler: schedule %s, %s/%s: cannot verify backup %s: %s", d->schedule,
                 d->agent, d->database, b.id, e.msg);
    } else {
        log_info("scheduler: schedule %s, %s/%s: verification %s of backup %s started%s",
                 d->schedule, d->agent, d->database, vid, b.id,
                 restore_test ? " (with a test restore)" : "");
    }
}

/* Carries out decision d of the schedule cfg->schedules[icfg]; a backup's id into id. */
static void carry_out(schedd *s, const sched_decision *d, size_t icfg, const sd_db *db,
                      char id[CATALOG_ID_SIZE])
{
    char first[CATALOG_TIME_SIZE], last[CATALOG_TIME_SIZE], why[CATALOG_ERROR_MAX + 1];
    id[0] = 0;
    int action = s->cfg->schedules[icfg].action;
    if (d->action == SCHED_START && action != SCHEDULE_BACKUP) {
        start_verify(s, d, action == SCHEDULE_RESTORE_TEST);
    } else if (d->action == SCHED_START) {
        char by[CATALOG_REQUESTED_BY_MAX + 1];
        snprintf(by, sizeof(by), "schedule:%s", d->schedule);
        pgs_error e = {0};
        due_text(d->due, first);
        if (fleet_backup_request_scheduled(s->fleet, s->cat, d->agent, d->database, NULL, by,
                                           d->schedule, id, &e) == 0) {
            log_info("scheduler: schedule %s, %s/%s: backup %s started (due %s%s)", d->schedule,
                     d->agent, d->database, id, first,
                     d->why == SCHED_WHY_CATCH_UP ? ", catch-up run" : "");
            job_add(s, id, icfg, d->agent, d->database);
        } else if (id[0] != 0) {
            /* created, then failed by the fleet: it is in the catalog as failed already */
            log_warn("scheduler: schedule %s, %s/%s: %s", d->schedule, d->agent, d->database,
                     e.msg);
        } else {
            snprintf(why, sizeof(why), "missed: could not start (due %s): %s", first, e.msg);
            record_missed(s, d->schedule, d->agent, d->database, db->env, why, id);
        }
    } else if (d->action == SCHED_MISSED && d->missed_first != 0 && action != SCHEDULE_BACKUP) {
        log_warn("scheduler: schedule %s, %s/%s: a verification was missed: %s", d->schedule,
                 d->agent, d->database, sched_why_text(d->why));
    } else if (d->action == SCHED_MISSED && d->missed_first != 0) {
        due_text(d->missed_first, first);
        due_text(d->missed_last, last);
        if (d->missed_first == d->missed_last)
            snprintf(why, sizeof(why), "missed: %s (due %s)", sched_why_text(d->why), first);
        else
            snprintf(why, sizeof(why), "missed: %s (due %s to %s)", sched_why_text(d->why), first,
                     last);
        record_missed(s, d->schedule, d->agent, d->database, db->env, why, id);
    }
}

/* Plans one group of schedules and carries out its decisions. */
static void plan_group(schedd *s, const sched_schedule *scheds, const size_t *map, size_t n,
                       const sched_database *dbs, const sched_state *states, size_t nstates)
{
    sched_input in = {.schedules = scheds,
                      .nschedules = n,
                      .databases = dbs,
                      .ndatabases = s->ndbs,
                      .states = states,
                      .nstates = nstates,
                      .limits = s->limits,
                      .now = schedd_now(s),
                      .up_since = s->up_real};
    sched_decision *dec = NULL;
    size_t ndec = 0;
    pgs_error e = {0};
    if (sched_plan(&in, &dec, &ndec, &e) != 0) {
        log_warn("scheduler: %s", e.msg);
        return;
    }
    char(*ids)[CATALOG_ID_SIZE] = calloc(ndec ? ndec : 1, CATALOG_ID_SIZE);
    if (ids == NULL) {
        free(dec);
        return;
    }
    /* leaders and lone entries first, so that followers can name their leader's backup */
    for (int pass = 0; pass < 2; pass++) {
        for (size_t k = 0; k < ndec; k++) {
            const sched_decision *d = &dec[k];
            int follower = d->merged_into != SCHED_NONE;
            if (follower != pass)
                continue;
            if (!follower || d->action == SCHED_MISSED)
                carry_out(s, d, map[d->isched], &s->dbs[d->idb], ids[k]);
            const char *bid = follower && d->action == SCHED_MERGED ? ids[d->merged_into] : ids[k];
            if (d->changed)
                state_store(s, d->schedule, d->agent, d->database, d->last_due, bid);
        }
    }
    free(ids);
    free(dec);
}

static void tick(schedd *s)
{
    db_acc acc = {0};
    if (gather(s, &acc) != 0) {
        free(acc.dbs);
        return;
    }
    jobs_refresh(s, acc.dbs, acc.n);
    pthread_mutex_lock(&s->mu);
    free(s->dbs);
    s->dbs = acc.dbs;
    s->ndbs = acc.n;
    pthread_mutex_unlock(&s->mu);
    states_load(s);
    if (s->nscheds == 0 || s->ndbs == 0) {
        prune_marked(s);
        return;
    }

    sched_database *in_dbs = calloc(s->ndbs, sizeof(*in_dbs));
    sched_state *in_states = calloc(s->nstates ? s->nstates : 1, sizeof(*in_states));
    sd_state *snap = malloc((s->nstates ? s->nstates : 1) * sizeof(*snap));
    size_t nsnap = s->nstates;
    if (in_dbs == NULL || in_states == NULL || snap == NULL) {
        log_warn("scheduler: out of memory");
        goto out;
    }
    /* the plans read a copy: state_store below may move the cache */
    memcpy(snap, s->states, nsnap * sizeof(*snap));
    for (size_t k = 0; k < nsnap; k++)
        in_states[k] = (sched_state){snap[k].schedule, snap[k].agent, snap[k].db, snap[k].last_due};
    for (int g = 0, off = 0; g < 2; off += (int)s->ngroup[g], g++) {
        if (s->ngroup[g] == 0)
            continue;
        /* verifications neither wait for nor count toward the backups in flight */
        for (size_t j = 0; j < s->ndbs; j++) {
            const sd_db *d = &s->dbs[j];
            in_dbs[j] = (sched_database){.agent = d->agent,
                                         .database = d->name,
                                         .environment = d->env[0] ? d->env : NULL,
                                         .connected = d->connected,
                                         .busy = g == 0 ? d->busy : 0,
                                         .running = g == 0 ? d->running : 0};
        }
        plan_group(s, &s->scheds[off], &s->map[off], s->ngroup[g], in_dbs, in_states, nsnap);
    }
out:
    free(in_dbs);
    free(in_states);
    free(snap);
    prune_marked(s);
}

static void *schedd_main(void *arg)
{
    schedd *s = arg;
    for (;;) {
        tick(s);
        pthread_mutex_lock(&s->mu);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += s->tick_ms / 1000;
        until.tv_nsec += (long)(s->tick_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!s->stopping && pthread_cond_timedwait(&s->cv, &s->mu, &until) != ETIMEDOUT)
            ;
        int stop = s->stopping;
        pthread_mutex_unlock(&s->mu);
        if (stop)
            break;
    }
    return NULL;
}

/* ---- start, stop, listing ---- */

/* PGSHIP_SCHEDULER_SPEED: 1..SCHEDD_SPEED_MAX, or 1 when unset. */
static int speed_from_env(unsigned *out, pgs_error *e)
{
    const char *v = getenv("PGSHIP_SCHEDULER_SPEED");
    *out = 1;
    if (v == NULL || v[0] == '\0')
        return 0;
    char *end;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (v[0] < '0' || v[0] > '9' || *end != '\0' || errno != 0 || n < 1 || n > SCHEDD_SPEED_MAX)
        return pgs_fail(e, PGS_EINVAL, "PGSHIP_SCHEDULER_SPEED must be a whole number from 1 to %d",
                        SCHEDD_SPEED_MAX);
    *out = (unsigned)n;
    return 0;
}

int schedd_start(const schedd_opts *o, schedd **out, pgs_error *e)
{
    *out = NULL;
    if (o == NULL || o->cfg == NULL || o->catalog_path == NULL)
        return pgs_fail(e, PGS_EINVAL, "scheduler: cfg and catalog_path are required");
    unsigned speed = o->speed;
    int rc;
    if (speed == 0 && (rc = speed_from_env(&speed, e)) != 0)
        return rc;
    if (speed > SCHEDD_SPEED_MAX)
        return pgs_fail(e, PGS_EINVAL, "scheduler: speed %u is above %d", speed, SCHEDD_SPEED_MAX);
    schedd *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->cfg = o->cfg;
    s->fleet = o->fleet;
    s->st = o->st;
    s->verifier = o->verifier;
    s->verify = o->verify;
    s->tick_ms = o->tick_ms ? o->tick_ms : SCHEDD_TICK_MS;
    s->speed = speed;
    s->up_real = wall_now();
    const coordinator_config *cfg = o->cfg;
    s->nscheds = cfg->nschedules;
    s->scheds = calloc(s->nscheds ? s->nscheds : 1, sizeof(*s->scheds));
    s->map = calloc(s->nscheds ? s->nscheds : 1, sizeof(*s->map));
    if (s->scheds == NULL || s->map == NULL) {
        schedd_stop(s);
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    }
    size_t k = 0;
    for (int g = 0; g < 2; g++)
        for (size_t i = 0; i < s->nscheds; i++) {
            const coordinator_schedule_config *sc = &cfg->schedules[i];
            if ((sc->action == SCHEDULE_BACKUP) != (g == 0))
                continue;
            s->scheds[k] = (sched_schedule){sc->name, sc->cron, sc->select, sc->jitter_s};
            s->map[k++] = i;
            s->ngroup[g]++;
        }
    s->limits = (sched_limits){.max_concurrent = (int)cfg->scheduler.max_concurrent,
                               .max_per_agent = (int)cfg->scheduler.max_per_agent,
                               .catch_up = cfg->scheduler.catch_up,
                               .grace_s = SCHED_GRACE_DEFAULT_S};
    rc = catalog_open(o->catalog_path, &s->cat, e);
    if (rc != 0) {
        pgs_wrap(e, "scheduler");
        schedd_stop(s);
        return rc;
    }
    if (pthread_create(&s->thread, NULL, schedd_main, s) != 0) {
        schedd_stop(s);
        return pgs_fail(e, PGS_EIO, "scheduler: cannot start its thread");
    }
    s->started = 1;
    if (s->speed > 1)
        log_warn("scheduler: PGSHIP_SCHEDULER_SPEED=%u: scheduled time runs %u times faster "
                 "than the clock (for tests only)",
                 s->speed, s->speed);
    if (s->nscheds > 0)
        log_info(
            "scheduler: %zu schedule(s), at most %d scheduled backups at once (%d per agent)%s",
            s->nscheds, s->limits.max_concurrent, s->limits.max_per_agent,
            s->limits.catch_up ? ", one catch-up run after downtime" : "");
    *out = s;
    return 0;
}

void schedd_stop(schedd *s)
{
    if (s == NULL)
        return;
    if (s->started) {
        pthread_mutex_lock(&s->mu);
        s->stopping = 1;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
    }
    catalog_close(s->cat);
    free(s->scheds);
    free(s->map);
    free(s->dbs);
    free(s->states);
    free(s->index);
    free(s->jobs);
    free(s->prune);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static json_t *time_or_null(int64_t t)
{
    if (t <= 0)
        return json_null();
    char buf[CATALOG_TIME_SIZE];
    catalog_time_format(t * 1000, buf);
    return json_string(buf);
}

static json_t *text_or_null(const char *t)
{
    return t != NULL && t[0] != '\0' ? json_string(t) : json_null();
}

static const char *schedule_action_name(int action)
{
    return action == SCHEDULE_VERIFY         ? "verify"
           : action == SCHEDULE_RESTORE_TEST ? "restore-test"
                                             : "backup";
}

json_t *schedd_next_runs_json(schedd *s)
{
    if (s == NULL)
        return NULL;
    int64_t now = schedd_now(s);
    json_t *scheds = json_array();
    for (size_t i = 0; scheds != NULL && i < s->nscheds; i++) {
        const coordinator_schedule_config *sc = &s->cfg->schedules[i];
        json_array_append_new(
            scheds, json_pack("{s:s, s:s, s:s, s:o, s:s, s:I, s:o}", "name", sc->name, "action",
                              schedule_action_name(sc->action), "cron", cron_text(sc->cron), "zone",
                              text_or_null(cron_zone(sc->cron)), "select", select_text(sc->select),
                              "jitter_s", (json_int_t)sc->jitter_s, "retention",
                              text_or_null(sc->retention_ref ? sc->retention_ref->name : NULL)));
    }
    json_t *runs = json_array();
    pthread_mutex_lock(&s->mu);
    size_t ndbs = s->ndbs;
    sched_database *dbs = calloc(ndbs ? ndbs : 1, sizeof(*dbs));
    sched_state *sts = calloc(s->nstates ? s->nstates : 1, sizeof(*sts));
    for (int g = 0, off = 0; g < 2; off += (int)s->ngroup[g], g++) {
        sched_run *r = NULL;
        size_t nr = 0;
        pgs_error e = {0};
        if (dbs != NULL && sts != NULL && s->ngroup[g] > 0 && ndbs > 0) {
            for (size_t j = 0; j < ndbs; j++)
                dbs[j] = (sched_database){.agent = s->dbs[j].agent,
                                          .database = s->dbs[j].name,
                                          .environment = s->dbs[j].env[0] ? s->dbs[j].env : NULL,
                                          .connected = s->dbs[j].connected};
            for (size_t k = 0; k < s->nstates; k++)
                sts[k] = (sched_state){s->states[k].schedule, s->states[k].agent, s->states[k].db,
                                       s->states[k].last_due};
            sched_input in = {.schedules = &s->scheds[off],
                              .nschedules = s->ngroup[g],
                              .databases = dbs,
                              .ndatabases = ndbs,
                              .states = sts,
                              .nstates = s->nstates,
                              .now = now,
                              .up_since = s->up_real};
            if (sched_next_runs(&in, &r, &nr, &e) != 0)
                log_warn("scheduler: %s", e.msg);
        }
        for (size_t k = 0; runs != NULL && k < nr; k++) {
            const sched_run *x = &r[k];
            json_array_append_new(
                runs,
                json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:b, s:o, s:s}", "schedule", x->schedule,
                          "agent", x->agent, "database", x->database, "environment",
                          text_or_null(x->environment), "due", time_or_null(x->due), "run_at",
                          time_or_null(x->due ? x->run_at : 0), "due_now", x->due_now,
                          "merged_into", text_or_null(x->merged_into), "action",
                          schedule_action_name(s->cfg->schedules[s->map[off + x->isched]].action)));
        }
        free(r);
    }
    pthread_mutex_unlock(&s->mu);
    free(dbs);
    free(sts);
    json_t *o =
        json_pack("{s:o, s:I, s:o, s:o}", "now", time_or_null(now), "speed", (json_int_t)s->speed,
                  "schedules", scheds ? scheds : json_array(), "runs", runs ? runs : json_array());
    return o;
}
