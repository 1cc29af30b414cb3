/*
 * The scheduler's planning core (see scheduler.h). A plan is built in four passes over the
 * entries (the matched (schedule, database) pairs, kept grouped by database in configuration
 * order): evaluate each entry on its own (its first pending due time, whether it is ripe, the
 * latest ripe one); group the entries of a database that are at the same due time behind the
 * first schedule in configuration order; decide each group's leader without the limits; then
 * hand out the limits to the leaders that may start, oldest run_at first. Followers copy their
 * leader at the end.
 *
 * Cron expressions only answer "the next due time after t". The latest due time at or before t,
 * which catch-up needs, is found by a binary search on that monotone function rather than by
 * walking every due time a long downtime skipped (a month of "* * * * *" is 43200 of them).
 */
#include "coordinator/scheduler.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* One matched (schedule, database) pair. */
typedef struct entry {
    size_t isched, idb;
    int64_t last;   /* the state given, or SCHED_NEVER */
    int64_t off;    /* its jitter offset */
    int64_t first;  /* the first due time after last (after now when first seen); 0: none */
    int64_t cand;   /* the due time it is about: the latest ripe, else first; 0: none */
    int ripe;       /* cand + off <= now */
    int first_seen; /* no state was given */
    size_t leader;  /* the entry leading its group: itself when it leads */
} entry;

/* ---- the jitter ---- */

int64_t sched_jitter(const char *schedule, const char *agent, const char *database,
                     int64_t jitter_s)
{
    if (jitter_s <= 0)
        return 0;
    /* sodium_init picks the fastest BLAKE2b; should it fail, the portable one gives the same
     * digest, so the offset does not depend on it. */
    if (sodium_init() < 0) {
    }
    /* Length-prefixed names, so that ("ab", "c") and ("a", "bc") hash apart. The domain string
     * is part of the contract: changing it would move every database's run time. */
    static const char domain[] = "pgship-schedule-jitter-v1";
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 8);
    crypto_generichash_update(&st, (const unsigned char *)domain, sizeof(domain) - 1);
    const char *names[3] = {schedule, agent, database};
    for (int i = 0; i < 3; i++) {
        const char *n = names[i] != NULL ? names[i] : "";
        uint64_t len = strlen(n);
        unsigned char lb[8];
        for (int k = 0; k < 8; k++)
            lb[k] = (unsigned char)(len >> (8 * k));
        crypto_generichash_update(&st, lb, sizeof(lb));
        crypto_generichash_update(&st, (const unsigned char *)n, len);
    }
    unsigned char h[8];
    crypto_generichash_final(&st, h, sizeof(h));
    uint64_t v = 0;
    for (int k = 0; k < 8; k++)
        v |= (uint64_t)h[k] << (8 * k);
    /* The modulo bias is below 2^-47 for jitters up to a day. */
    return (int64_t)(v % (uint64_t)jitter_s);
}

/* ---- names ---- */

const char *sched_action_name(int action)
{
    switch (action) {
    case SCHED_IDLE:
        return "idle";
    case SCHED_START:
        return "start";
    case SCHED_WAIT:
        return "wait";
    case SCHED_MISSED:
        return "missed";
    case SCHED_MERGED:
        return "merged";
    default:
        return "unknown";
    }
}

const char *sched_why_text(int why)
{
    switch (why) {
    case SCHED_WHY_NONE:
        return "";
    case SCHED_WHY_FIRST_SEEN:
        return "new: first run at the next due time";
    case SCHED_WHY_NEVER:
        return "the cron expression has no due time left";
    case SCHED_WHY_CATCH_UP:
        return "catch-up run: due while the coordinator was down";
    case SCHED_WHY_DOWN:
        return "due while the coordinator was down and catch_up is off";
    case SCHED_WHY_AGENT_WAIT:
        return "waiting for the agent to connect";
    case SCHED_WHY_AGENT_GONE:
        return "agent not connected";
    case SCHED_WHY_BUSY:
        return "a backup of the database is queued or running";
    case SCHED_WHY_DB_STARTING:
        return "another schedule's backup of the database starts now";
    case SCHED_WHY_LIMIT_TOTAL:
        return "max_concurrent scheduled backups are running";
    case SCHED_WHY_LIMIT_AGENT:
        return "max_per_agent scheduled backups are running on the agent";
    case SCHED_WHY_MERGED:
        return "merged with another schedule's run at the same due time";
    default:
        return "unknown";
    }
}

/* ---- due times ---- */

/* The next due time after t, INT64_MAX when there is none up to CRON_TIME_MAX. */
static int next_due(const cron_expr *c, int64_t t, int64_t *out, pgs_error *e)
{
    pgs_error tmp = {0};
    int rc = cron_next(c, t, out, &tmp);
    if (rc == PGS_ENOTFOUND) {
        *out = INT64_MAX;
        return 0;
    }
    if (rc != 0) {
        if (e != NULL)
            *e = tmp;
        return rc;
    }
    return 0;
}

/* The latest due time <= t, given lo, a due time <= t. Binary search on x -> next_due(x): it is
 * <= t at lo and > t at t itself, so the largest x where it is <= t has next_due(x) = x + 1,
 * the answer. About log2(t - lo) calls. */
static int latest_due(const cron_expr *c, int64_t lo, int64_t t, int64_t *out, pgs_error *e)
{
    int64_t n;
    int rc = next_due(c, lo, &n, e);
    if (rc != 0)
        return rc;
    if (n > t) {
        *out = lo;
        return 0;
    }
    int64_t hi = t;
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        rc = next_due(c, mid, &n, e);
        if (rc != 0)
            return rc;
        if (n <= t)
            lo = mid;
        else
            hi = mid;
    }
    return next_due(c, lo, out, e);
}

/* ---- input checks and lookups ---- */

static int cmp_str_ptr(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_db_ptr(const void *a, const void *b)
{
    const sched_database *x = *(const sched_database *const *)a;
    const sched_database *y = *(const sched_database *const *)b;
    int c = strcmp(x->agent, y->agent);
    return c != 0 ? c : strcmp(x->database, y->database);
}

static int cmp_state_triple(const char *s1, const char *a1, const char *d1, const sched_state *y)
{
    int c = strcmp(s1, y->schedule);
    if (c == 0)
        c = strcmp(a1, y->agent);
    if (c == 0)
        c = strcmp(d1, y->database);
    return c;
}

static int cmp_state_ptr(const void *a, const void *b)
{
    const sched_state *x = *(const sched_state *const *)a;
    return cmp_state_triple(x->schedule, x->agent, x->database, *(const sched_state *const *)b);
}

typedef struct state_key {
    const char *schedule, *agent, *database;
} state_key;

static int cmp_key_state(const void *k, const void *b)
{
    const state_key *x = k;
    return cmp_state_triple(x->schedule, x->agent, x->database, *(const sched_state *const *)b);
}

static int check_input(const sched_input *in, int plan, pgs_error *e)
{
    if (in == NULL)
        return pgs_fail(e, PGS_EINVAL, "scheduler: no input");
    if (in->nschedules > SCHED_SCHEDULES_MAX)
        return pgs_fail(e, PGS_ELIMIT, "scheduler: %zu schedules, more than %d", in->nschedules,
                        SCHED_SCHEDULES_MAX);
    if (in->ndatabases > SCHED_DATABASES_MAX)
        return pgs_fail(e, PGS_ELIMIT, "scheduler: %zu databases, more than %d", in->ndatabases,
                        SCHED_DATABASES_MAX);
    if (in->nstates > SCHED_ENTRIES_MAX)
        return pgs_fail(e, PGS_ELIMIT, "scheduler: %zu states, more than %d", in->nstates,
                        SCHED_ENTRIES_MAX);
    if ((in->nschedules > 0 && in->schedules == NULL) ||
        (in->ndatabases > 0 && in->databases == NULL) || (in->nstates > 0 && in->states == NULL))
        return pgs_fail(e, PGS_EINVAL, "scheduler: an array is NULL with a count");
    if (in->now < CRON_TIME_MIN || in->now > CRON_TIME_MAX)
        return pgs_fail(e, PGS_EINVAL, "scheduler: now %lld is out of range", (long long)in->now);
    if (in->up_since < 0 || in->up_since > in->now)
        return pgs_fail(e, PGS_EINVAL, "scheduler: up_since %lld is not within 0 .. now",
                        (long long)in->up_since);
    if (plan) {
        const sched_limits *l = &in->limits;
        if (l->max_concurrent < 1 || l->max_per_agent < 1)
            return pgs_fail(e, PGS_EINVAL,
                            "scheduler: max_concurrent %d and max_per_agent %d must be >= 1",
                            l->max_concurrent, l->max_per_agent);
        if (l->grace_s < 0 || l->grace_s > SCHED_GRACE_MAX_S)
            return pgs_fail(e, PGS_EINVAL, "scheduler: grace %lld s is not within 0 .. %d",
                            (long long)l->grace_s, SCHED_GRACE_MAX_S);
    }
    for (size_t i = 0; i < in->nschedules; i++) {
        const sched_schedule *s = &in->schedules[i];
        if (s->name == NULL || s->cron == NULL || s->select == NULL)
            return pgs_fail(e, PGS_EINVAL, "scheduler: schedule %zu has no name, cron or select",
                            i + 1);
        if (s->jitter_s < 0 || s->jitter_s > SCHED_JITTER_MAX_S)
            return pgs_fail(e, PGS_EINVAL,
                            "scheduler: schedule %.64s: jitter %lld s is not within 0 .. %d",
                            s->name, (long long)s->jitter_s, SCHED_JITTER_MAX_S);
    }
    for (size_t i = 0; i < in->ndatabases; i++) {
        const sched_database *d = &in->databases[i];
        if (d->agent == NULL || d->database == NULL)
            return pgs_fail(e, PGS_EINVAL, "scheduler: database %zu has no agent or name", i + 1);
        if (d->running < 0)
            return pgs_fail(e, PGS_EINVAL, "scheduler: database %.64s on %.64s: running %d < 0",
                            d->database, d->agent, d->running);
    }
    for (size_t i = 0; i < in->nstates; i++) {
        const sched_state *s = &in->states[i];
        if (s->schedule == NULL || s->agent == NULL || s->database == NULL)
            return pgs_fail(e, PGS_EINVAL, "scheduler: state %zu has a NULL name", i + 1);
        if (s->last_due < 0 || s->last_due > CRON_TIME_MAX)
            return pgs_fail(e, PGS_EINVAL, "scheduler: state %zu: last_due %lld is out of range",
                            i + 1, (long long)s->last_due);
    }
    return 0;
}

/* Everything both calls share: checks, matching, states, evaluation, groups. */
typedef struct plan_ctx {
    const sched_input *in;
    entry *entries;
    size_t n;
    const sched_database **dbs; /* sorted by (agent, database) */
    size_t *agent_of;           /* per database index: its agent's number */
    size_t nagents;
} plan_ctx;

static void ctx_free(plan_ctx *p)
{
    free(p->entries);
    free(p->dbs);
    free(p->agent_of);
    memset(p, 0, sizeof(*p));
}

/* Sets first, cand and ripe of x. */
static int entry_eval(const sched_input *in, entry *x, pgs_error *e)
{
    const cron_expr *c = in->schedules[x->isched].cron;
    int64_t base = x->first_seen ? in->now : x->last;
    int64_t first;
    int rc = next_due(c, base, &first, e);
    if (rc != 0)
        return rc;
    x->ripe = 0;
    if (first == INT64_MAX) {
        x->first = x->cand = 0;
        return 0;
    }
    x->first = x->cand = first;
    /* A first-seen entry's first due time is after now, so never ripe. */
    int64_t t = in->now - x->off;
    if (!x->first_seen && first <= t) {
        x->ripe = 1;
        return latest_due(c, first, t, &x->cand, e);
    }
    return 0;
}

/* Group order inside one database: by cand, then configuration order. */
static int cmp_group(const void *a, const void *b)
{
    const entry *x = *(const entry *const *)a;
    const entry *y = *(const entry *const *)b;
    if (x->cand != y->cand)
        return x->cand < y->cand ? -1 : 1;
    return x->isched < y->isched ? -1 : x->isched > y->isched;
}

static int ctx_build(plan_ctx *p, const sched_input *in, int plan, pgs_error *e)
{
    memset(p, 0, sizeof(*p));
    p->in = in;
    int rc = check_input(in, plan, e);
    if (rc != 0)
        return rc;
    const sched_state **states = NULL;
    const char **names = NULL;
    entry **group = NULL;
    size_t cap = 0;

    /* Unique schedule names. */
    names = malloc((in->nschedules + 1) * sizeof(*names));
    if (names == NULL)
        goto nomem;
    for (size_t i = 0; i < in->nschedules; i++)
        names[i] = in->schedules[i].name;
    qsort(names, in->nschedules, sizeof(*names), cmp_str_ptr);
    for (size_t i = 1; i < in->nschedules; i++)
        if (strcmp(names[i - 1], names[i]) == 0) {
            rc = pgs_fail(e, PGS_EINVAL, "scheduler: two schedules are named %.64s", names[i]);
            goto out;
        }

    /* Unique databases, and a number per agent for the per-agent limit. */
    p->dbs = malloc((in->ndatabases + 1) * sizeof(*p->dbs));
    p->agent_of = malloc((in->ndatabases + 1) * sizeof(*p->agent_of));
    if (p->dbs == NULL || p->agent_of == NULL)
        goto nomem;
    for (size_t i = 0; i < in->ndatabases; i++)
        p->dbs[i] = &in->databases[i];
    qsort(p->dbs, in->ndatabases, sizeof(*p->dbs), cmp_db_ptr);
    for (size_t i = 0; i < in->ndatabases; i++) {
        if (i > 0 && cmp_db_ptr(&p->dbs[i - 1], &p->dbs[i]) == 0) {
            rc = pgs_fail(e, PGS_EINVAL, "scheduler: database %.64s on agent %.64s is listed twice",
                          p->dbs[i]->database, p->dbs[i]->agent);
            goto out;
        }
        if (i == 0 || strcmp(p->dbs[i - 1]->agent, p->dbs[i]->agent) != 0)
            p->nagents++;
        p->agent_of[p->dbs[i] - in->databases] = p->nagents - 1;
    }

    /* States, sorted for lookups; a triple given twice is the caller's bug. */
    states = malloc((in->nstates + 1) * sizeof(*states));
    if (states == NULL)
        goto nomem;
    for (size_t i = 0; i < in->nstates; i++)
        states[i] = &in->states[i];
    qsort(states, in->nstates, sizeof(*states), cmp_state_ptr);
    for (size_t i = 1; i < in->nstates; i++)
        if (cmp_state_ptr(&states[i - 1], &states[i]) == 0) {
            rc = pgs_fail(e, PGS_EINVAL,
                          "scheduler: two states of schedule %.64s for %.64s on agent %.64s",
                          states[i]->schedule, states[i]->database, states[i]->agent);
            goto out;
        }

    /* Entries, by database then configuration order, so that a database's group is one run. */
    for (size_t d = 0; d < in->ndatabases; d++) {
        const sched_database *db = &in->databases[d];
        for (size_t s = 0; s < in->nschedules; s++) {
            const sched_schedule *sc = &in->schedules[s];
            if (!select_match(sc->select, db->agent, db->database, db->environment))
                continue;
            if (p->n == SCHED_ENTRIES_MAX) {
                rc = pgs_fail(e, PGS_ELIMIT,
                              "scheduler: more than %d (schedule, database) pairs match",
                              SCHED_ENTRIES_MAX);
                goto out;
            }
            if (p->n == cap) {
                size_t ncap = cap == 0 ? 64 : cap * 2;
                entry *ne = realloc(p->entries, ncap * sizeof(*ne));
                if (ne == NULL)
                    goto nomem;
                p->entries = ne;
                cap = ncap;
            }
            entry *x = &p->entries[p->n];
            memset(x, 0, sizeof(*x));
            x->isched = s;
            x->idb = d;
            x->leader = p->n;
            x->off = sched_jitter(sc->name, db->agent, db->database, sc->jitter_s);
            state_key k = {sc->name, db->agent, db->database};
            const sched_state **hit =
                in->nstates > 0 ? bsearch(&k, states, in->nstates, sizeof(*states), cmp_key_state)
                                : NULL;
            x->first_seen = hit == NULL || (*hit)->last_due == SCHED_NEVER;
            x->last = hit != NULL ? (*hit)->last_due : SCHED_NEVER;
            rc = entry_eval(in, x, e);
            if (rc != 0) {
                pgs_wrap(e, "scheduler: schedule %.64s", sc->name);
                goto out;
            }
            p->n++;
        }
    }

    /* Groups: within a database, entries at the same due time follow the first of them in
     * configuration order. */
    group = malloc((in->nschedules + 1) * sizeof(*group));
    if (group == NULL)
        goto nomem;
    for (size_t i = 0; i < p->n;) {
        size_t j = i;
        while (j < p->n && p->entries[j].idb == p->entries[i].idb)
            j++;
        size_t k = j - i;
        for (size_t m = 0; m < k; m++)
            group[m] = &p->entries[i + m];
        qsort(group, k, sizeof(*group), cmp_group);
        for (size_t m = 1; m < k; m++)
            if (group[m]->cand != 0 && group[m]->cand == group[m - 1]->cand)
                group[m]->leader = group[m - 1]->leader;
        i = j;
    }
    rc = 0;
    goto out;
nomem:
    rc = pgs_fail(e, PGS_ENOMEM, "scheduler: out of memory");
out:
    free(names);
    free(states);
    free(group);
    if (rc != 0)
        ctx_free(p);
    return rc;
}

/* ---- the plan ---- */

/* A ripe due time d of entry x passed while the coordinator was down. */
static int is_late(const sched_input *in, const entry *x, int64_t d)
{
    return d + x->off + in->limits.grace_s < in->up_since;
}

/* The missed range of x when its cand runs (or merges) without catch_up: its late due times
 * before cand. */
static int missed_before(const sched_input *in, const entry *x, sched_decision *d, pgs_error *e)
{
    if (in->limits.catch_up || !x->ripe || x->first == x->cand || !is_late(in, x, x->first))
        return 0;
    int64_t bound = in->up_since - in->limits.grace_s - x->off - 1;
    if (bound > x->cand - 1)
        bound = x->cand - 1;
    d->missed_first = x->first;
    return latest_due(in->schedules[x->isched].cron, x->first, bound, &d->missed_last, e);
}

/* A leader that may start, in the order the limits are handed out. */
typedef struct cand_key {
    int64_t run_at;
    const char *schedule, *agent, *database;
    size_t idx;
} cand_key;

static int cmp_cand(const void *a, const void *b)
{
    const cand_key *x = a, *y = b;
    if (x->run_at != y->run_at)
        return x->run_at < y->run_at ? -1 : 1;
    int c = strcmp(x->schedule, y->schedule);
    if (c == 0)
        c = strcmp(x->agent, y->agent);
    if (c == 0)
        c = strcmp(x->database, y->database);
    return c;
}

static void set_wait(sched_decision *d, int why)
{
    d->action = SCHED_WAIT;
    d->why = why;
    d->missed_first = d->missed_last = 0;
}

int sched_plan(const sched_input *in, sched_decision **out, size_t *nout, pgs_error *e)
{
    *out = NULL;
    *nout = 0;
    plan_ctx p;
    int rc = ctx_build(&p, in, 1, e);
    if (rc != 0)
        return rc;
    if (p.n == 0) {
        ctx_free(&p);
        return 0;
    }
    const sched_limits *lim = &in->limits;
    sched_decision *dec = calloc(p.n, sizeof(*dec));
    cand_key *cands = malloc(p.n * sizeof(*cands));
    int64_t *agent_running = calloc(p.nagents + 1, sizeof(*agent_running));
    unsigned char *db_started = calloc(in->ndatabases + 1, 1);
    size_t ncands = 0;
    if (dec == NULL || cands == NULL || agent_running == NULL || db_started == NULL) {
        rc = pgs_fail(e, PGS_ENOMEM, "scheduler: out of memory");
        goto out;
    }

    /* Leaders and lone entries, without the limits. */
    for (size_t i = 0; i < p.n; i++) {
        const entry *x = &p.entries[i];
        const sched_database *db = &in->databases[x->idb];
        sched_decision *d = &dec[i];
        d->isched = x->isched;
        d->idb = x->idb;
        d->schedule = in->schedules[x->isched].name;
        d->agent = db->agent;
        d->database = db->database;
        d->offset = x->off;
        d->due = x->cand;
        d->last_due = x->first_seen ? in->now : x->last;
        d->merged_into = x->leader == i ? SCHED_NONE : x->leader;
        if (x->leader != i)
            continue;
        d->run_at = x->cand != 0 ? x->cand + x->off : 0;
        if (!x->ripe) {
            d->action = SCHED_IDLE;
            d->why = x->cand == 0 ? SCHED_WHY_NEVER
                                  : (x->first_seen ? SCHED_WHY_FIRST_SEEN : SCHED_WHY_NONE);
            continue;
        }
        int late = is_late(in, x, x->cand);
        if (late && !lim->catch_up) {
            d->action = SCHED_MISSED;
            d->why = SCHED_WHY_DOWN;
            d->missed_first = x->first;
            d->missed_last = x->cand;
            d->last_due = x->cand;
            continue;
        }
        if (!db->connected) {
            /* The grace counts from the first ripe due time, so that an agent that stays away
             * is reported even when the schedule keeps ripening new due times. */
            int64_t from = x->first + x->off;
            if (from < in->up_since)
                from = in->up_since;
            if (in->now < from + lim->grace_s) {
                set_wait(d, SCHED_WHY_AGENT_WAIT);
            } else {
                d->action = SCHED_MISSED;
                d->why = SCHED_WHY_AGENT_GONE;
                d->missed_first = x->first;
                d->missed_last = x->cand;
                d->last_due = x->cand;
            }
            continue;
        }
        if (db->busy) {
            set_wait(d, SCHED_WHY_BUSY);
            continue;
        }
        d->action = SCHED_START;
        d->why = late ? SCHED_WHY_CATCH_UP : SCHED_WHY_NONE;
        rc = missed_before(in, x, d, e);
        if (rc != 0)
            goto out;
        /* Seniority is the first ripe due time's: an entry held back by the limits while new
         * due times ripen keeps its place ahead of entries that were not held back. */
        cands[ncands++] = (cand_key){x->first + x->off, d->schedule, d->agent, d->database, i};
    }

    /* The limits, oldest run first. */
    int64_t total = 0;
    for (size_t i = 0; i < in->ndatabases; i++) {
        total += in->databases[i].running;
        agent_running[p.agent_of[i]] += in->databases[i].running;
    }
    qsort(cands, ncands, sizeof(*cands), cmp_cand);
    for (size_t k = 0; k < ncands; k++) {
        size_t i = cands[k].idx;
        const entry *x = &p.entries[i];
        sched_decision *d = &dec[i];
        size_t agent = p.agent_of[x->idb];
        if (db_started[x->idb]) {
            set_wait(d, SCHED_WHY_DB_STARTING);
        } else if (total >= lim->max_concurrent) {
            set_wait(d, SCHED_WHY_LIMIT_TOTAL);
        } else if (agent_running[agent] >= lim->max_per_agent) {
            set_wait(d, SCHED_WHY_LIMIT_AGENT);
        } else {
            d->last_due = x->cand;
            db_started[x->idb] = 1;
            total++;
            agent_running[agent]++;
        }
    }

    /* Followers share their leader's fate at the leader's run time. */
    for (size_t i = 0; i < p.n; i++) {
        const entry *x = &p.entries[i];
        if (x->leader == i)
            continue;
        const sched_decision *l = &dec[x->leader];
        sched_decision *d = &dec[i];
        d->run_at = l->run_at;
        d->why = l->why;
        switch (l->action) {
        case SCHED_IDLE:
            d->action = SCHED_IDLE;
            d->why = SCHED_WHY_MERGED;
            break;
        case SCHED_WAIT:
            d->action = SCHED_WAIT;
            break;
        case SCHED_MISSED:
            d->action = SCHED_MISSED;
            d->missed_first = x->first;
            d->missed_last = x->cand;
            d->last_due = x->cand;
            break;
        default: /* SCHED_START */
            d->action = SCHED_MERGED;
            d->why = SCHED_WHY_MERGED;
            d->last_due = x->cand;
            rc = missed_before(in, x, d, e);
            if (rc != 0)
                goto out;
            break;
        }
    }
    for (size_t i = 0; i < p.n; i++)
        dec[i].changed = dec[i].last_due != p.entries[i].last;
    *out = dec;
    *nout = p.n;
    dec = NULL;
    rc = 0;
out:
    free(dec);
    free(cands);
    free(agent_running);
    free(db_started);
    ctx_free(&p);
    return rc;
}

/* ---- the listing ---- */

static int cmp_run(const void *a, const void *b)
{
    const sched_run *x = a, *y = b;
    /* Entries that never run again go last. */
    if ((x->due == 0) != (y->due == 0))
        return x->due == 0 ? 1 : -1;
    if (x->run_at != y->run_at)
        return x->run_at < y->run_at ? -1 : 1;
    if (x->isched != y->isched)
        return x->isched < y->isched ? -1 : 1;
    int c = strcmp(x->agent, y->agent);
    return c != 0 ? c : strcmp(x->database, y->database);
}

int sched_next_runs(const sched_input *in, sched_run **out, size_t *nout, pgs_error *e)
{
    *out = NULL;
    *nout = 0;
    plan_ctx p;
    int rc = ctx_build(&p, in, 0, e);
    if (rc != 0)
        return rc;
    if (p.n == 0) {
        ctx_free(&p);
        return 0;
    }
    sched_run *runs = calloc(p.n, sizeof(*runs));
    if (runs == NULL) {
        ctx_free(&p);
        return pgs_fail(e, PGS_ENOMEM, "scheduler: out of memory");
    }
    for (size_t i = 0; i < p.n; i++) {
        const entry *x = &p.entries[i];
        const entry *l = &p.entries[x->leader];
        const sched_schedule *s = &in->schedules[x->isched];
        const sched_database *db = &in->databases[x->idb];
        sched_run *r = &runs[i];
        r->isched = x->isched;
        r->idb = x->idb;
        r->schedule = s->name;
        r->cron_text = cron_text(s->cron);
        r->zone = cron_zone(s->cron);
        r->agent = db->agent;
        r->database = db->database;
        r->environment = db->environment != NULL ? db->environment : "";
        r->due = x->cand;
        r->run_at = x->cand != 0 ? l->cand + l->off : 0;
        r->due_now = x->cand != 0 && l->ripe;
        r->merged_into = x->leader != i ? in->schedules[l->isched].name : NULL;
    }
    qsort(runs, p.n, sizeof(*runs), cmp_run);
    *out = runs;
    *nout = p.n;
    ctx_free(&p);
    return 0;
}
