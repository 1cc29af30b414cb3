/*
 * Verifications on the coordinator (see verify.h).
 *
 * verifier_request does every check on its caller's thread (the API's worker, the scheduler), so
 * that a refusal is the caller's answer, not a failed row: the backup, and an agent that holds one
 * of its keys. What passes becomes a queued catalog row and a verify job on that agent, through
 * the same fleet machinery that serves restores (fleet_restore_request with kind "verify": the
 * object streamed as PIECE frames, checked against the catalog's digest at EOF).
 *
 * The rest happens on the verifier's one thread, which owns its catalog handle: it marks a
 * verification running once the fleet has handed its job to the agent, and finishes it (ok or
 * failed, with the agent's report) once the fleet's done callback has said how the job ended. The
 * callback runs on a fleet stream thread and only records the outcome under v->mu; nothing here
 * calls into the fleet while holding v->mu, so the two locks never nest the other way round.
 */
#include "coordinator/verify.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/keys.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "proto/wire.h"

#define TICK_MS 250

typedef struct vjob vjob;

struct vjob {
    vjob *next;
    char id[CATALOG_ID_SIZE];
    char backup_id[CATALOG_ID_SIZE];
    char agent[CATALOG_NAME_MAX + 1];
    char database[CATALOG_NAME_MAX + 1];
    char requested_by[CATALOG_REQUESTED_BY_MAX + 1];
    int restore_test;
    int64_t t0; /* monotonic ms at the request */
    /* under v->mu */
    int started; /* the catalog row is running */
    int done;    /* the outcome below is final */
    int ok;
    char step[WIRE_STEP_MAX + 1];
    char error[WIRE_TEXT_MAX + 1];
    json_t *report; /* the agent's, or NULL */
};

struct verifier {
    verifier_opts o;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stopping;
    int thread_started;
    pthread_t thread;
    vjob *jobs; /* queued or running, newest first; only the thread removes them */
    size_t njobs;
    catalog *cat; /* the thread's (and verifier_start's, before the thread runs) */
};

static void vjob_free(vjob *j)
{
    if (j != NULL)
        json_decref(j->report);
    free(j);
}

/* ---- finishing ---- */

/* Records how j ended: the catalog row (and the backup's verify_result), the log. */
static void vjob_record(verifier *v, vjob *j, int ok, const char *step, const char *error,
                        json_t *agent_report)
{
    pgs_error e = {0};
    json_t *rep = agent_report != NULL ? json_deep_copy(agent_report) : json_object();
    if (rep != NULL) {
        json_object_set_new(rep, "agent", json_string(j->agent));
        json_object_set_new(rep, "database", json_string(j->database));
        json_object_set_new(rep, "requested_by",
                            j->requested_by[0] ? json_string(j->requested_by) : json_null());
        json_object_set_new(rep, "restore_test", json_boolean(j->restore_test));
        json_object_set_new(rep, "elapsed_ms", json_integer((json_int_t)(time_mono_ms() - j->t0)));
        json_object_set_new(rep, "failed_step", ok ? json_null() : json_string(step));
    }
    char *text = rep != NULL ? json_dumps(rep, JSON_COMPACT) : NULL;
    json_decref(rep);
    /* "verify: reading the archive: chunk 3 failed authentication: ...": the step says where. */
    char why[CATALOG_ERROR_MAX + 1];
    snprintf(why, sizeof(why), "%s: %s", step && *step ? step : "verify",
             error && *error ? error : "failed");
    /* A job that reached its agent ran: its start time is the catalog's too. */
    if (!j->started && agent_report != NULL && catalog_verify_start(v->cat, j->id, &e) != 0)
        log_warn("verification %s: catalog: %s", j->id, e.msg);
    int rc = catalog_verify_finish(v->cat, j->id, ok, ok ? NULL : why, text, &e);
    if (rc == PGS_ELIMIT) /* a report too large for the catalog still leaves the outcome */
        rc = catalog_verify_finish(v->cat, j->id, ok, ok ? NULL : why, NULL, &e);
    if (rc != 0)
        log_error("verification %s: catalog: %s", j->id, e.msg);
    free(text);
    if (ok)
        log_info("verification %s of backup %s on %s: ok%s", j->id, j->backup_id, j->agent,
                 j->restore_test ? " (restore test)" : "");
    else
        log_warn("verification %s of backup %s on %s failed: %s", j->id, j->backup_id, j->agent,
                 why);
}

/* fleet_restore_done_fn: how a verify job ended (on a fleet stream thread). */
static void job_done(void *arg, const fleet_restore_outcome *o)
{
    verifier *v = arg;
    pthread_mutex_lock(&v->mu);
    for (vjob *j = v->jobs; j != NULL; j = j->next) {
        if (j->done || strcmp(j->id, o->id) != 0)
            continue;
        j->done = 1;
        j->ok = o->ok;
        snprintf(j->step, sizeof(j->step), "%s", o->step ? o->step : "");
        snprintf(j->error, sizeof(j->error), "%s", o->error ? o->error : "");
        j->report = o->report != NULL ? json_deep_copy(o->report) : NULL;
        pthread_cond_broadcast(&v->cv);
        break;
    }
    pthread_mutex_unlock(&v->mu);
}

/* Unlinks j (v->mu held). */
static void vjob_unlink(verifier *v, vjob *j)
{
    for (vjob **pp = &v->jobs; *pp != NULL; pp = &(*pp)->next)
        if (*pp == j) {
            *pp = j->next;
            v->njobs--;
            return;
        }
}

/* ---- the thread ---- */

/* One pass: starts what its agent took, finishes what ended. Returns 1 when it did something
 * (another pass may find more), 0 when nothing was left to do. */
static int verifier_pass(verifier *v, int stopping)
{
    vjob *todo = NULL;
    int start = 0;
    pthread_mutex_lock(&v->mu);
    for (vjob *j = v->jobs; j != NULL && todo == NULL; j = j->next)
        if (j->done || stopping)
            todo = j;
    if (todo != NULL)
        vjob_unlink(v, todo);
    pthread_mutex_unlock(&v->mu);

    if (todo != NULL) {
        /* done is final and the job is unlinked: its fields are ours now */
        if (todo->done)
            vjob_record(v, todo, todo->ok, todo->step, todo->error, todo->report);
        else
            vjob_record(v, todo, 0, "dispatch", "the coordinator is stopping", NULL);
        vjob_free(todo);
        return 1;
    }

    /* Queued rows whose agent has taken the job become running. */
    char ids[VERIFY_ACTIVE_MAX][CATALOG_ID_SIZE];
    size_t n = 0;
    pthread_mutex_lock(&v->mu);
    for (vjob *j = v->jobs; j != NULL && n < VERIFY_ACTIVE_MAX; j = j->next)
        if (!j->started && !j->done)
            snprintf(ids[n++], CATALOG_ID_SIZE, "%s", j->id);
    pthread_mutex_unlock(&v->mu);
    for (size_t i = 0; i < n; i++) {
        fleet_progress p;
        if (fleet_job_progress(v->o.fleet, ids[i], &p) != 1 || p.phase == FLEET_QUEUED)
            continue;
        pgs_error e = {0};
        if (catalog_verify_start(v->cat, ids[i], &e) != 0)
            log_warn("verification %s: catalog: %s", ids[i], e.msg);
        pthread_mutex_lock(&v->mu);
        for (vjob *j = v->jobs; j != NULL; j = j->next)
            if (strcmp(j->id, ids[i]) == 0)
                j->started = 1;
        pthread_mutex_unlock(&v->mu);
        start = 1;
    }
    return start;
}

static void *verifier_main(void *arg)
{
    verifier *v = arg;
    for (;;) {
        pthread_mutex_lock(&v->mu);
        int stopping = v->stopping;
        pthread_mutex_unlock(&v->mu);
        while (verifier_pass(v, stopping))
            ;
        pthread_mutex_lock(&v->mu);
        if (stopping && v->jobs == NULL) {
            pthread_mutex_unlock(&v->mu);
            return NULL;
        }
        int pending = 0;
        for (vjob *j = v->jobs; j != NULL; j = j->next)
            pending |= j->done;
        if (!pending && !v->stopping)
            time_cond_wait_ms(&v->cv, &v->mu, TICK_MS);
        pthread_mutex_unlock(&v->mu);
    }
}

/* ---- start and stop ---- */

typedef struct stale_ids {
    size_t n, cap;
    char (*id)[CATALOG_ID_SIZE];
    int bad;
} stale_ids;

static int stale_cb(void *arg, const catalog_verification *vr)
{
    stale_ids *s = arg;
    if (s->n == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 16;
        void *p = realloc(s->id, cap * sizeof(*s->id));
        if (p == NULL)
            return s->bad = PGS_ENOMEM;
        s->id = p;
        s->cap = cap;
    }
    snprintf(s->id[s->n++], CATALOG_ID_SIZE, "%s", vr->id);
    return 0;
}

/* Fails what a previous run left queued or running: no agent still works on it. */
static int recover_stale(verifier *v, pgs_error *e)
{
    stale_ids s = {0};
    static const enum catalog_verify_state states[] = {CATALOG_VERIFY_QUEUED,
                                                       CATALOG_VERIFY_RUNNING};
    int rc = 0;
    for (size_t k = 0; k < 2 && rc == 0; k++) {
        catalog_verify_filter f = {.state = states[k]};
        rc = catalog_verify_list(v->cat, &f, stale_cb, &s, e);
        if (rc == 0 && s.bad != 0)
            rc = pgs_fail(e, s.bad, "out of memory");
    }
    for (size_t i = 0; rc == 0 && i < s.n; i++) {
        pgs_error fe = {0};
        if (catalog_verify_finish(v->cat, s.id[i], 0,
                                  "dispatch: the coordinator stopped before it finished", NULL,
                                  &fe) != 0)
            log_warn("verification %s: catalog: %s", s.id[i], fe.msg);
        else
            log_warn("verification %s failed: the coordinator stopped before it finished", s.id[i]);
    }
    free(s.id);
    return rc;
}

int verifier_start(const verifier_opts *o, verifier **out, pgs_error *e)
{
    *out = NULL;
    verifier *v = calloc(1, sizeof(*v));
    if (v == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    v->o = *o;
    pthread_mutex_init(&v->mu, NULL);
    pthread_cond_init(&v->cv, NULL);
    int rc = catalog_open(o->catalog_path, &v->cat, e);
    if (rc != 0)
        v->cat = NULL;
    if (rc == 0)
        rc = recover_stale(v, e);
    if (rc == 0 && pthread_create(&v->thread, NULL, verifier_main, v) != 0)
        rc = pgs_fail(e, PGS_ENOMEM, "cannot start the verifier's thread");
    if (rc != 0) {
        verifier_free(v);
        return pgs_wrap(e, "verifier");
    }
    v->thread_started = 1;
    *out = v;
    return 0;
}

void verifier_stop(verifier *v)
{
    if (v == NULL)
        return;
    pthread_mutex_lock(&v->mu);
    v->stopping = 1;
    pthread_cond_broadcast(&v->cv);
    pthread_mutex_unlock(&v->mu);
    if (v->thread_started) {
        pthread_join(v->thread, NULL);
        v->thread_started = 0;
    }
}

void verifier_free(verifier *v)
{
    if (v == NULL)
        return;
    verifier_stop(v);
    /* Jobs the thread never saw (it was not started) go with it. */
    while (v->jobs != NULL) {
        vjob *j = v->jobs;
        v->jobs = j->next;
        vjob_free(j);
    }
    catalog_close(v->cat);
    pthread_cond_destroy(&v->cv);
    pthread_mutex_destroy(&v->mu);
    free(v);
}

/* ---- the request ---- */

/* 1 when one of the public keys (text form) in keys has a key id among b's recipients. */
static int holds_key(json_t *keys, const catalog_backup *b)
{
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k)
    {
        const char *text = json_string_value(k);
        pgs_pubkey pub;
        char hex[KEY_ID_HEX_LEN + 1];
        if (text == NULL || key_parse_public(text, strlen(text), &pub, &(pgs_error){0}) != 0)
            continue;
        key_id_hex(pub.id, hex);
        for (size_t r = 0; r < b->nrecipients; r++)
            if (strcmp(hex, b->recipients[r]) == 0)
                return 1;
    }
    return 0;
}

/*
 * The agent that verifies b and the database its job names: the backup's own agent when it holds
 * a key, else the least busy holder (then by name). An agent that announced no database cannot
 * take a job; one whose queue is full is skipped (PGS_ELIMIT when only such ones hold a key).
 */
static int pick_agent(fleet *f, const catalog_backup *b, char agent[CATALOG_NAME_MAX + 1],
                      char db[CATALOG_NAME_MAX + 1], pgs_error *e)
{
    char ids[CATALOG_RECIPIENTS_MAX * (CATALOG_RECIPIENT_ID_LEN + 2) + 1] = "";
    for (size_t r = 0; r < b->nrecipients; r++) {
        size_t l = strlen(ids);
        snprintf(ids + l, sizeof(ids) - l, "%s%s", r ? ", " : "", b->recipients[r]);
    }
    if (b->nrecipients == 0)
        return pgs_fail(e, PGS_ENOTFOUND,
                        "backup %s records no recipient keys, so no agent can be shown to hold "
                        "one",
                        b->id);
    json_t *agents = fleet_agents_json(f), *a;
    if (agents == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    size_t i, best_load = SIZE_MAX;
    int found = 0, busy = 0, own = 0;
    json_array_foreach(agents, i, a)
    {
        const char *name = json_string_value(json_object_get(a, "name"));
        json_t *dbs = json_object_get(a, "databases");
        size_t load = json_array_size(json_object_get(a, "jobs"));
        if (name == NULL || json_array_size(dbs) == 0)
            continue;
        json_t *keys = fleet_agent_restore_keys(f, name);
        int holds = keys != NULL && holds_key(keys, b);
        json_decref(keys);
        if (!holds)
            continue;
        if (load >= FLEET_QUEUE_MAX) { /* its queue is full, or nearly (running + queued) */
            busy = 1;
            continue;
        }
        int is_own = strcmp(name, b->agent) == 0;
        if (own || (found && !is_own && load >= best_load))
            continue; /* the backup's own agent wins; then the least busy, first by name */
        found = 1;
        own = is_own;
        best_load = load;
        snprintf(agent, CATALOG_NAME_MAX + 1, "%s", name);
        /* the backup's own database when it serves one of that name, else its first */
        const char *pick = json_string_value(json_object_get(json_array_get(dbs, 0), "name"));
        size_t k;
        json_t *d;
        json_array_foreach(dbs, k, d)
        {
            const char *dn = json_string_value(json_object_get(d, "name"));
            if (dn != NULL && strcmp(dn, b->database) == 0)
                pick = dn;
        }
        snprintf(db, CATALOG_NAME_MAX + 1, "%s", pick ? pick : "");
    }
    json_decref(agents);
    if (found && db[0] != '\0')
        return 0;
    if (busy)
        return pgs_fail(e, PGS_ELIMIT,
                        "every connected agent that holds a key of backup %s has %d jobs "
                        "waiting; try again later",
                        b->id, FLEET_QUEUE_MAX);
    return pgs_fail(e, PGS_ENOTFOUND,
                    "no connected agent holds a key of backup %s (its recipients are key ids "
                    "%s): an agent verifies with one of them in its restore_keys",
                    b->id, ids);
}

int verifier_request(verifier *v, catalog *cat, const char *backup_id, int restore_test,
                     const char *requested_by, char id_out[CATALOG_ID_SIZE], pgs_error *e)
{
    id_out[0] = '\0';
    if (v == NULL)
        return pgs_fail(e, PGS_ENOTFOUND, "this coordinator runs no verifications");
    if (backup_id == NULL || !catalog_id_valid(backup_id))
        return pgs_fail(e, PGS_EINVAL, "a backup id is YYYYMMDDTHHMMSSZ-xxxxxxxx");
    catalog_backup b;
    int rc = catalog_backup_get(cat, backup_id, &b, e);
    if (rc == PGS_ENOTFOUND)
        return pgs_fail(e, PGS_ENOTFOUND, "no backup %s in the catalog", backup_id);
    if (rc != 0)
        return rc;
    if (b.state != CATALOG_COMPLETE)
        return pgs_fail(e, PGS_EORDER, "backup %s is %s: only a complete backup can be verified",
                        backup_id, catalog_state_name(b.state));
    char agent[CATALOG_NAME_MAX + 1] = "", db[CATALOG_NAME_MAX + 1] = "";
    if ((rc = pick_agent(v->o.fleet, &b, agent, db, e)) != 0)
        return rc;

    vjob *j = calloc(1, sizeof(*j));
    if (j == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    pthread_mutex_lock(&v->mu);
    if (v->stopping)
        rc = pgs_fail(e, PGS_ENOTFOUND, "the coordinator is stopping");
    else if (v->njobs >= VERIFY_ACTIVE_MAX)
        rc = pgs_fail(e, PGS_ELIMIT, "%d verifications are running already; try again later",
                      VERIFY_ACTIVE_MAX);
    else
        v->njobs++; /* reserved */
    pthread_mutex_unlock(&v->mu);
    if (rc != 0) {
        vjob_free(j);
        return rc;
    }
    if ((rc = catalog_verify_new(cat, backup_id, agent, restore_test, j->id, e)) != 0) {
        pthread_mutex_lock(&v->mu);
        v->njobs--;
        pthread_mutex_unlock(&v->mu);
        vjob_free(j);
        return rc;
    }
    snprintf(j->backup_id, sizeof(j->backup_id), "%s", backup_id);
    snprintf(j->agent, sizeof(j->agent), "%s", agent);
    snprintf(j->database, sizeof(j->database), "%s", db);
    snprintf(j->requested_by, sizeof(j->requested_by), "%s", requested_by ? requested_by : "");
    j->restore_test = restore_test != 0;
    j->t0 = time_mono_ms();
    char id[CATALOG_ID_SIZE];
    snprintf(id, sizeof(id), "%s", j->id);
    wire_restore_spec sp;
    memset(&sp, 0, sizeof(sp));
    sp.jobs = VERIFY_RESTORE_JOBS;
    sp.no_owner = 1; /* the scratch server need not have the source's roles */
    sp.restore_test = j->restore_test;
    if (sp.restore_test) /* the id's random part: unique enough, and one form the agent checks */
        snprintf(sp.scratch, sizeof(sp.scratch), "%s%s", WIRE_SCRATCH_PREFIX, id + 17);

    /* Linked before the fleet has it: its done callback must find it. From here on j belongs
     * to the thread (a stop may finish and free it at any time): only found again by id. */
    pthread_mutex_lock(&v->mu);
    j->next = v->jobs;
    v->jobs = j;
    pthread_mutex_unlock(&v->mu);
    fleet_restore_job fj = {.id = id,
                            .kind = "verify",
                            .agent = agent,
                            .database = db,
                            .source = &b,
                            .spec = &sp,
                            .done = job_done,
                            .done_arg = v};
    rc = fleet_restore_request(v->o.fleet, &fj, e);
    if (rc != 0) {
        /* Recorded as failed by the thread, and refused to the caller. */
        pthread_mutex_lock(&v->mu);
        for (vjob *x = v->jobs; x != NULL; x = x->next)
            if (strcmp(x->id, id) == 0 && !x->done) {
                x->done = 1;
                x->ok = 0;
                snprintf(x->step, sizeof(x->step), "dispatch");
                snprintf(x->error, sizeof(x->error), "%s", e->msg);
            }
        pthread_cond_broadcast(&v->cv);
        pthread_mutex_unlock(&v->mu);
        return rc;
    }
    pthread_mutex_lock(&v->mu);
    pthread_cond_broadcast(&v->cv);
    pthread_mutex_unlock(&v->mu);
    snprintf(id_out, CATALOG_ID_SIZE, "%s", id);
    log_info("verification %s of backup %s queued by %s on %s/%s%s", id, backup_id,
             requested_by && *requested_by ? requested_by : "?", agent, db,
             restore_test ? " with a restore test" : "");
    return 0;
}
