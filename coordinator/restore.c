/*
 * Restores and syncs on the coordinator (see restore.h and docs/restore.md).
 *
 * restorer_request checks a request on the API's worker thread, so that every refusal (policy,
 * an unknown backup, an agent not connected, a profile that does not load) is the HTTP answer,
 * not a failed row. What passes becomes a queued catalog row and a thread (a "run") that takes
 * the steps one after the other, each waiting for the one before:
 *
 *   backup / safety  fleet_backup_request, then the catalog row is watched until it is final
 *   sanitizer        a sanitize job on the sanitizer agent, whose new backup is the next source
 *   restore          the restore job on the target agent
 *
 * Jobs on agents report back through fleet_restore_done_fn (job_done below), which finds its run
 * by job id under r->mu; a run that gave up (the coordinator stopping) is simply not found.
 * Runs are joined and freed by the next request, or at stop.
 */
#include "coordinator/restore.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "coordinator/profile.h"
#include "proto/wire.h"

#define POLL_MS 250

_Static_assert(RESTORE_PATTERNS_MAX == WIRE_PATTERNS_MAX, "patterns travel in the JOB");
_Static_assert(sizeof(((restore_request *)0)->schemas[0]) == WIRE_PATTERN_MAX + 1,
               "a request's patterns are the JOB's");

typedef struct run run;

struct run {
    run *next;
    restorer *r;
    pthread_t thread;
    int finished; /* the thread is done: join and free it */
    char id[CATALOG_ID_SIZE];
    char requested_by[CATALOG_REQUESTED_BY_MAX + 1];
    restore_request req;
    profile prof; /* prof.name "" when none */
    char src_agent[CATALOG_NAME_MAX + 1];
    char src_db[CATALOG_NAME_MAX + 1];
    char src_env[CATALOG_NAME_MAX + 1];
    catalog_backup source; /* once known */
    char target_env[CATALOG_NAME_MAX + 1];
    /* live, under r->mu */
    char step[CATALOG_STEP_MAX + 1];
    char job_id[CATALOG_ID_SIZE]; /* the backup or agent job being waited for */
    int job_done, job_ok;
    char job_step[WIRE_STEP_MAX + 1];
    char job_error[WIRE_TEXT_MAX + 1];
    json_t *job_report;
};

struct restorer {
    restorer_opts o;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stopping;
    run *runs;
    size_t nactive;
};

static void run_free(run *u)
{
    profile_clear(&u->prof);
    json_decref(u->job_report);
    free(u);
}

int restorer_start(const restorer_opts *o, restorer **out, pgs_error *e)
{
    restorer *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    r->o = *o;
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    *out = r;
    return 0;
}

/* Joins and frees the runs whose threads are done (r->mu held; released while joining). */
static void reap(restorer *r)
{
    for (run **pp = &r->runs; *pp != NULL;) {
        run *u = *pp;
        if (!u->finished) {
            pp = &u->next;
            continue;
        }
        *pp = u->next;
        pthread_mutex_unlock(&r->mu);
        pthread_join(u->thread, NULL);
        run_free(u);
        pthread_mutex_lock(&r->mu);
        pp = &r->runs;
    }
}

void restorer_stop(restorer *r)
{
    if (r == NULL)
        return;
    pthread_mutex_lock(&r->mu);
    r->stopping = 1;
    pthread_cond_broadcast(&r->cv);
    while (r->runs != NULL) {
        reap(r);
        if (r->runs != NULL)
            time_cond_wait_ms(&r->cv, &r->mu, 100);
    }
    pthread_mutex_unlock(&r->mu);
}

void restorer_free(restorer *r)
{
    if (r == NULL)
        return;
    restorer_stop(r);
    pthread_cond_destroy(&r->cv);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

/* ---- a run ---- */

/* fleet_restore_done_fn: the outcome of a job on an agent. */
static void job_done(void *arg, const fleet_restore_outcome *o)
{
    restorer *r = arg;
    pthread_mutex_lock(&r->mu);
    for (run *u = r->runs; u != NULL; u = u->next) {
        if (u->finished || u->job_done || strcmp(u->job_id, o->id) != 0)
            continue;
        u->job_done = 1;
        u->job_ok = o->ok;
        snprintf(u->job_step, sizeof(u->job_step), "%s", o->step ? o->step : "");
        snprintf(u->job_error, sizeof(u->job_error), "%s", o->error ? o->error : "");
        u->job_report = o->report != NULL ? json_deep_copy(o->report) : NULL;
        pthread_cond_broadcast(&r->cv);
        break;
    }
    pthread_mutex_unlock(&r->mu);
}

static void set_step(run *u, catalog *cat, const char *step, const char *job_id)
{
    pthread_mutex_lock(&u->r->mu);
    snprintf(u->step, sizeof(u->step), "%s", step);
    snprintf(u->job_id, sizeof(u->job_id), "%s", job_id ? job_id : "");
    u->job_done = 0;
    json_decref(u->job_report);
    u->job_report = NULL;
    pthread_mutex_unlock(&u->r->mu);
    catalog_restore_change c = {.step = step};
    pgs_error e = {0};
    if (catalog_restore_update(cat, u->id, &c, &e) != 0)
        log_warn("restore %s: catalog: %s", u->id, e.msg);
}

/* Waits until backup id is final; 0 when complete (*out filled). */
static int wait_backup(run *u, catalog *cat, const char *id, catalog_backup *out, pgs_error *e)
{
    for (;;) {
        int rc = catalog_backup_get(cat, id, out, e);
        if (rc != 0)
            return rc;
        if (out->state == CATALOG_COMPLETE)
            return 0;
        if (out->state == CATALOG_FAILED)
            return pgs_fail(e, PGS_ECHILD, "backup %s failed: %s", id, out->error);
        pthread_mutex_lock(&u->r->mu);
        if (!u->r->stopping)
            time_cond_wait_ms(&u->r->cv, &u->r->mu, POLL_MS);
        int stop = u->r->stopping;
        pthread_mutex_unlock(&u->r->mu);
        if (stop)
            return pgs_fail(e, PGS_EINTR, "the coordinator is stopping");
    }
}

/* Waits for the job in u->job_id to report; 0 when it did (u->job_ok says how it went). */
static int wait_job(run *u)
{
    pthread_mutex_lock(&u->r->mu);
    while (!u->job_done && !u->r->stopping)
        time_cond_wait_ms(&u->r->cv, &u->r->mu, 1000);
    int done = u->job_done;
    pthread_mutex_unlock(&u->r->mu);
    return done ? 0 : PGS_EINTR;
}

static void step_record(json_t *steps, const char *name, int64_t t0, int ok, const char *backup)
{
    json_t *s = json_pack("{s:s, s:I, s:b}", "name", name, "ms", (json_int_t)(time_mono_ms() - t0),
                          "ok", ok);
    if (s != NULL && backup != NULL && backup[0] != 0)
        json_object_set_new(s, "backup_id", json_string(backup));
    json_array_append_new(steps, s);
}

/* A backup of agent/db labelled label, waited for: the first two steps of a sync. */
static int backup_step(run *u, catalog *cat, json_t *steps, const char *step, const char *agent,
                       const char *db, const char *label, catalog_backup *out, pgs_error *e)
{
    int64_t t0 = time_mono_ms();
    char id[CATALOG_ID_SIZE] = "";
    set_step(u, cat, step, NULL);
    int rc = fleet_backup_request(u->r->o.fleet, cat, agent, db, label, u->requested_by, id, e);
    if (rc == 0) {
        set_step(u, cat, step, id);
        catalog_restore_change c = {.step = step};
        if (strcmp(step, "safety") == 0)
            c.safety_backup_id = id;
        else
            c.source_backup_id = id;
        catalog_restore_update(cat, u->id, &c, &(pgs_error){0});
        log_info("restore %s: %s backup %s of %s/%s", u->id, step, id, agent, db);
        rc = wait_backup(u, cat, id, out, e);
    }
    step_record(steps, step, t0, rc == 0, id);
    return rc;
}

/* Fills sp for a job of this run. final: the restore on the target (with the request's
 * filters); otherwise the sanitizer's full restore. */
static void spec_fill(run *u, wire_restore_spec *sp, int final, int with_sanitize)
{
    memset(sp, 0, sizeof(*sp));
    sp->jobs = u->req.jobs;
    snprintf(sp->profile, sizeof(sp->profile), "%s", u->prof.name);
    if (u->prof.name[0] != 0) {
        sp->sanitize_sql = with_sanitize ? u->prof.sanitize_sql : NULL;
        sp->check_sql = u->prof.check_sql;
    }
    if (final) {
        sp->schema_only = u->req.schema_only;
        sp->data_only = u->req.data_only;
        sp->no_owner = u->req.no_owner;
        sp->keep_old = u->req.keep_old;
        snprintf(sp->role, sizeof(sp->role), "%s", u->req.role);
        sp->nschemas = u->req.nschemas;
        sp->schemas = u->req.nschemas ? u->req.schemas : NULL;
        sp->ntables = u->req.ntables;
        sp->tables = u->req.ntables ? u->req.tables : NULL;
    } else {
        sp->no_owner = 1; /* the scratch server need not have production's roles */
    }
}

/* A job on an agent, waited for. *report receives its report (a new reference, or NULL). */
static int agent_step(run *u, catalog *cat, json_t *steps, const char *step,
                      const fleet_restore_job *j, json_t **report, pgs_error *e)
{
    int64_t t0 = time_mono_ms();
    *report = NULL;
    set_step(u, cat, step, j->id);
    int rc = fleet_restore_request(u->r->o.fleet, j, e);
    if (rc != 0 && j->output_backup_id != NULL)
        /* never handed to the fleet, which would otherwise settle the new backup's row */
        catalog_backup_fail(cat, j->output_backup_id, e->msg, &(pgs_error){0});
    if (rc == 0) {
        log_info("restore %s: %s job %s on %s/%s", u->id, step, j->id, j->agent, j->database);
        if (wait_job(u) != 0) {
            rc = pgs_fail(e, PGS_EINTR, "the coordinator is stopping");
        } else {
            pthread_mutex_lock(&u->r->mu);
            *report = u->job_report;
            u->job_report = NULL;
            if (!u->job_ok)
                rc = pgs_fail(e, PGS_ECHILD, "agent %s failed in step %s: %s", j->agent,
                              u->job_step, u->job_error);
            pthread_mutex_unlock(&u->r->mu);
        }
    }
    step_record(steps, step, t0, rc == 0, strcmp(j->kind, "sanitize") == 0 ? j->id : NULL);
    return rc;
}

static void *run_main(void *arg)
{
    run *u = arg;
    restorer *r = u->r;
    pgs_error e = {0};
    catalog *cat = NULL;
    json_t *steps = json_array(), *report = NULL, *sanitizer_report = NULL;
    const char *failed_step = NULL;
    int rc = catalog_open(r->o.catalog_path, &cat, &e);
    if (rc != 0) {
        log_error("restore %s: %s", u->id, e.msg);
        cat = NULL;
        goto out;
    }
    if ((rc = catalog_restore_start(cat, u->id, "starting", &e)) != 0) {
        failed_step = "starting";
        goto out;
    }
    log_info("restore %s started: %s -> %s/%s%s%s", u->id, u->req.source, u->req.target_agent,
             u->req.target_database, u->prof.name[0] ? ", profile " : "", u->prof.name);

    if (u->req.fresh) {
        failed_step = "backup";
        if ((rc = backup_step(u, cat, steps, "backup", u->src_agent, u->src_db, "sync",
                              &u->source, &e)) != 0)
            goto out;
    }
    if (u->req.safety_backup) {
        catalog_backup safety;
        failed_step = "safety";
        if ((rc = backup_step(u, cat, steps, "safety", u->req.target_agent,
                              u->req.target_database, "safety", &safety, &e)) != 0)
            goto out;
    }
    if (u->prof.sanitizer[0] != 0) {
        failed_step = "sanitizer";
        /* The new backup: the source database's, in the target's environment, encrypted to
         * the target agent's restore keys only. */
        json_t *keys = fleet_agent_restore_keys(r->o.fleet, u->req.target_agent);
        size_t nkeys = keys ? json_array_size(keys) : 0;
        char(*rcpts)[WIRE_PUBKEY_TEXT_MAX + 1] = nkeys ? calloc(nkeys, sizeof(*rcpts)) : NULL;
        char out_id[CATALOG_ID_SIZE] = "";
        if (nkeys == 0 || nkeys > WIRE_RECIPIENTS_MAX || rcpts == NULL) {
            rc = pgs_fail(&e, PGS_EINVAL,
                          "agent %s announced no usable restore_keys (%zu): the sanitized copy "
                          "has no one to be encrypted to",
                          u->req.target_agent, nkeys);
        } else {
            for (size_t i = 0; i < nkeys; i++)
                snprintf(rcpts[i], sizeof(rcpts[i]), "%s",
                         json_string_value(json_array_get(keys, i)));
            catalog_backup_req br = {.agent = u->source.agent,
                                     .database = u->source.database,
                                     .environment = u->target_env,
                                     .label = "sanitized",
                                     .requested_by = u->requested_by,
                                     .source_backup_id = u->source.id};
            rc = catalog_backup_new(cat, &br, out_id, &e);
        }
        json_decref(keys);
        if (rc == 0) {
            catalog_restore_change c = {.sanitized_backup_id = out_id};
            catalog_restore_update(cat, u->id, &c, &(pgs_error){0});
            wire_restore_spec sp;
            spec_fill(u, &sp, 0, 1);
            sp.nrecipients = nkeys;
            sp.recipients = rcpts;
            fleet_restore_job j = {.id = out_id,
                                   .kind = "sanitize",
                                   .agent = u->prof.sanitizer,
                                   .database = u->prof.sanitizer_database,
                                   .source = &u->source,
                                   .spec = &sp,
                                   .output_backup_id = out_id,
                                   .output_agent = u->source.agent,
                                   .output_database = u->source.database,
                                   .output_environment = u->target_env,
                                   .done = job_done,
                                   .done_arg = r};
            rc = agent_step(u, cat, steps, "sanitizer", &j, &sanitizer_report, &e);
        }
        free(rcpts);
        if (rc == 0)
            rc = catalog_backup_get(cat, out_id, &u->source, &e);
        if (rc == 0 && u->source.state != CATALOG_COMPLETE)
            rc = pgs_fail(&e, PGS_EORDER, "the sanitized backup %s is not complete", out_id);
        if (rc != 0)
            goto out;
    }

    failed_step = "restore";
    {
        wire_restore_spec sp;
        spec_fill(u, &sp, 1, u->prof.sanitizer[0] == 0);
        fleet_restore_job j = {.id = u->id,
                               .kind = "restore",
                               .agent = u->req.target_agent,
                               .database = u->req.target_database,
                               .source = &u->source,
                               .spec = &sp,
                               .done = job_done,
                               .done_arg = r};
        rc = agent_step(u, cat, steps, "restore", &j, &report, &e);
        if (rc != 0) {
            pthread_mutex_lock(&r->mu);
            if (u->job_done && u->job_step[0] != 0)
                failed_step = NULL; /* the agent's own step names it */
            pthread_mutex_unlock(&r->mu);
        }
    }

out:
    if (cat != NULL) {
        if (report == NULL)
            report = json_object();
        if (report != NULL) {
            json_object_set(report, "coordinator_steps", steps);
            if (sanitizer_report != NULL)
                json_object_set(report, "sanitizer_report", sanitizer_report);
        }
        char *text = report ? json_dumps(report, JSON_COMPACT) : NULL;
        const char *step = failed_step;
        if (rc != 0 && step == NULL) {
            pthread_mutex_lock(&r->mu);
            step = u->job_step[0] ? u->job_step : "restore";
            pthread_mutex_unlock(&r->mu);
        }
        char stepbuf[CATALOG_STEP_MAX + 1];
        snprintf(stepbuf, sizeof(stepbuf), "%s", step ? step : "done");
        pgs_error fe = {0};
        if (catalog_restore_finish(cat, u->id, rc == 0, stepbuf, rc == 0 ? NULL : e.msg, text,
                                   &fe) != 0) {
            /* a report too large for the catalog still leaves the outcome recorded */
            if (catalog_restore_finish(cat, u->id, rc == 0, stepbuf, rc == 0 ? NULL : e.msg,
                                       NULL, &fe) != 0)
                log_error("restore %s: catalog: %s", u->id, fe.msg);
        }
        free(text);
        if (rc == 0)
            log_info("restore %s complete: %s/%s from backup %s", u->id, u->req.target_agent,
                     u->req.target_database, u->source.id);
        else
            log_warn("restore %s failed in step %s: %s", u->id, stepbuf, e.msg);
        catalog_close(cat);
    }
    json_decref(report);
    json_decref(sanitizer_report);
    json_decref(steps);
    pthread_mutex_lock(&r->mu);
    u->finished = 1;
    r->nactive--;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* ---- the request ---- */

/* "AGENT/DB" (with an optional "@latest" when latest is not NULL) into agent and db. */
static int split_target(const char *s, char *agent, char *db, int *latest)
{
    const char *slash = strchr(s, '/');
    if (slash == NULL || (size_t)(slash - s) > CATALOG_NAME_MAX)
        return -1;
    memcpy(agent, s, (size_t)(slash - s));
    agent[slash - s] = '\0';
    const char *d = slash + 1;
    size_t n = strlen(d);
    if (latest != NULL) {
        *latest = n > 7 && strcmp(d + n - 7, "@latest") == 0;
        if (*latest)
            n -= 7;
    }
    if (n == 0 || n > CATALOG_NAME_MAX)
        return -1;
    memcpy(db, d, n);
    db[n] = '\0';
    return catalog_name_valid(agent) && catalog_name_valid(db) ? 0 : -1;
}

static json_t *options_json(const restore_request *q)
{
    json_t *schemas = json_array(), *tables = json_array();
    for (size_t i = 0; i < q->nschemas; i++)
        json_array_append_new(schemas, json_string(q->schemas[i]));
    for (size_t i = 0; i < q->ntables; i++)
        json_array_append_new(tables, json_string(q->tables[i]));
    return json_pack("{s:b, s:b, s:b, s:b, s:b, s:b, s:b, s:s, s:i, s:o, s:o}", "fresh",
                     q->fresh, "overwrite_prod", q->overwrite_prod, "safety_backup",
                     q->safety_backup, "keep_old", q->keep_old, "schema_only", q->schema_only,
                     "data_only", q->data_only, "no_owner", q->no_owner, "role", q->role, "jobs",
                     (int)q->jobs, "schemas", schemas, "tables", tables);
}

/* Resolves and checks everything about u's request (cat: the caller's handle). */
static int resolve(restorer *r, catalog *cat, run *u, pgs_error *e)
{
    restore_request *q = &u->req;
    if (q->schema_only && q->data_only)
        return pgs_fail(e, PGS_EINVAL, "--schema-only and --data-only exclude each other");
    if (q->jobs == 0)
        q->jobs = RESTORE_JOBS_DEFAULT;
    if (q->jobs > RESTORE_JOBS_MAX)
        return pgs_fail(e, PGS_EINVAL, "jobs must be 1..%d", RESTORE_JOBS_MAX);
    if (q->nschemas > RESTORE_PATTERNS_MAX || q->ntables > RESTORE_PATTERNS_MAX)
        return pgs_fail(e, PGS_ELIMIT, "at most %d schemas and %d tables", RESTORE_PATTERNS_MAX,
                        RESTORE_PATTERNS_MAX);

    /* the target: connected, and the database is in its configuration */
    if (fleet_database_environment(r->o.fleet, q->target_agent, q->target_database,
                                   u->target_env, sizeof(u->target_env)) != 0)
        return pgs_fail(e, PGS_ENOTFOUND,
                        "agent %s is not connected or has no database %s in its configuration",
                        q->target_agent, q->target_database);

    /* the source */
    int latest = 0;
    if (q->fresh) {
        if (split_target(q->source, u->src_agent, u->src_db, NULL) != 0)
            return pgs_fail(e, PGS_EINVAL, "a sync's source is AGENT/DB, not \"%.80s\"",
                            q->source);
        if (fleet_database_environment(r->o.fleet, u->src_agent, u->src_db, u->src_env,
                                       sizeof(u->src_env)) != 0)
            return pgs_fail(e, PGS_ENOTFOUND,
                            "agent %s is not connected or has no database %s in its "
                            "configuration: a sync backs it up first (or use --from-latest)",
                            u->src_agent, u->src_db);
    } else if (catalog_id_valid(q->source)) {
        int rc = catalog_backup_get(cat, q->source, &u->source, e);
        if (rc == PGS_ENOTFOUND)
            return pgs_fail(e, PGS_ENOTFOUND, "no backup %s in the catalog", q->source);
        if (rc != 0)
            return rc;
        if (u->source.state != CATALOG_COMPLETE)
            return pgs_fail(e, PGS_EORDER, "backup %s is %s, not complete", q->source,
                            catalog_state_name(u->source.state));
    } else if (split_target(q->source, u->src_agent, u->src_db, &latest) == 0 && latest) {
        int rc = catalog_latest_complete(cat, u->src_agent, u->src_db, &u->source, e);
        if (rc == PGS_ENOTFOUND)
            return pgs_fail(e, PGS_ENOTFOUND, "no complete backup of %s/%s in the catalog",
                            u->src_agent, u->src_db);
        if (rc != 0)
            return rc;
    } else {
        return pgs_fail(e, PGS_EINVAL,
                        "the source is a backup id or AGENT/DB@latest, not \"%.80s\"", q->source);
    }
    if (!q->fresh) {
        snprintf(u->src_agent, sizeof(u->src_agent), "%s", u->source.agent);
        snprintf(u->src_db, sizeof(u->src_db), "%s", u->source.database);
        snprintf(u->src_env, sizeof(u->src_env), "%s", u->source.environment);
    }

    /* the profile */
    if (q->profile[0] != 0) {
        int rc = profile_load(r->o.cfg->coordinator.profiles_dir, q->profile, &u->prof, e);
        if (rc != 0)
            return rc;
        if (u->prof.sanitizer[0] != 0) {
            char env[CATALOG_NAME_MAX + 1];
            if (fleet_database_environment(r->o.fleet, u->prof.sanitizer,
                                           u->prof.sanitizer_database, env, sizeof(env)) != 0)
                return pgs_fail(e, PGS_ENOTFOUND,
                                "profile %s sanitizes on agent %s, which is not connected or "
                                "has no database %s in its configuration",
                                q->profile, u->prof.sanitizer, u->prof.sanitizer_database);
            json_t *keys = fleet_agent_restore_keys(r->o.fleet, q->target_agent);
            size_t n = keys ? json_array_size(keys) : 0;
            json_decref(keys);
            if (n == 0)
                return pgs_fail(e, PGS_EINVAL,
                                "profile %s sanitizes at the source, but agent %s announced no "
                                "restore_keys to encrypt the sanitized copy to",
                                q->profile, q->target_agent);
        }
    }

    /* the policy */
    const coordinator_policy_config *pol = &r->o.cfg->policy;
    if (coordinator_policy_is_prod(pol, u->target_env) && !q->overwrite_prod)
        return pgs_fail(e, PGS_EDENIED,
                        "%s/%s is a %s database: restoring replaces it; add --overwrite-prod if "
                        "that is what you want",
                        q->target_agent, q->target_database, u->target_env);
    if (coordinator_policy_is_prod(pol, u->src_env) &&
        !coordinator_policy_is_prod(pol, u->target_env) && q->profile[0] == 0 &&
        !coordinator_policy_allows_unsanitized(pol, u->src_env, u->target_env))
        return pgs_fail(e, PGS_EDENIED,
                        "%s/%s holds %s data; it goes into %s only through a sanitization "
                        "profile (--sanitize NAME), or with \"%s:%s\" in [policy] "
                        "allow_unsanitized",
                        u->src_agent, u->src_db, u->src_env, u->target_env, u->src_env,
                        u->target_env);
    return 0;
}

int restorer_request(restorer *r, catalog *cat, const restore_request *req,
                     const char *requested_by, char id_out[CATALOG_ID_SIZE], pgs_error *e)
{
    id_out[0] = '\0';
    if (r == NULL)
        return pgs_fail(e, PGS_ENOTFOUND, "this coordinator runs no restores");
    run *u = calloc(1, sizeof(*u));
    if (u == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    u->r = r;
    u->req = *req;
    snprintf(u->requested_by, sizeof(u->requested_by), "%s", requested_by ? requested_by : "");
    int rc = resolve(r, cat, u, e);
    if (rc != 0) {
        run_free(u);
        return rc;
    }

    pthread_mutex_lock(&r->mu);
    reap(r);
    if (r->stopping)
        rc = pgs_fail(e, PGS_ENOTFOUND, "the coordinator is stopping");
    else if (r->nactive >= RESTORE_ACTIVE_MAX)
        rc = pgs_fail(e, PGS_ELIMIT, "%d restores are running already", RESTORE_ACTIVE_MAX);
    else
        r->nactive++; /* reserved */
    pthread_mutex_unlock(&r->mu);
    if (rc != 0) {
        run_free(u);
        return rc;
    }

    json_t *opts = options_json(&u->req);
    char *opts_text = opts ? json_dumps(opts, JSON_COMPACT) : NULL;
    json_decref(opts);
    catalog_restore_req cr = {.kind = req->fresh ? "sync" : "restore",
                              .requested_by = requested_by,
                              .source = req->source,
                              .source_backup_id = req->fresh ? NULL : u->source.id,
                              .source_agent = u->src_agent,
                              .source_database = u->src_db,
                              .source_environment = u->src_env,
                              .target_agent = req->target_agent,
                              .target_database = req->target_database,
                              .target_environment = u->target_env,
                              .profile = u->prof.name[0] ? u->prof.name : NULL,
                              .sanitizer_agent = u->prof.sanitizer[0] ? u->prof.sanitizer : NULL,
                              .options_json = opts_text};
    rc = opts_text == NULL ? pgs_fail(e, PGS_ENOMEM, "out of memory")
                           : catalog_restore_new(cat, &cr, u->id, e);
    free(opts_text);

    pthread_mutex_lock(&r->mu);
    if (rc == 0) {
        snprintf(u->step, sizeof(u->step), "queued");
        u->next = r->runs;
        r->runs = u;
        if (pthread_create(&u->thread, NULL, run_main, u) != 0) {
            r->runs = u->next;
            rc = pgs_fail(e, PGS_ENOMEM, "cannot start a thread for restore %s", u->id);
            pthread_mutex_unlock(&r->mu);
            catalog_restore_finish(cat, u->id, 0, "starting", e->msg, NULL, &(pgs_error){0});
            pthread_mutex_lock(&r->mu);
        }
    }
    if (rc != 0) {
        r->nactive--;
        pthread_mutex_unlock(&r->mu);
        run_free(u);
        return rc;
    }
    snprintf(id_out, CATALOG_ID_SIZE, "%s", u->id);
    pthread_mutex_unlock(&r->mu);
    log_info("restore %s queued by %s: %s -> %s/%s", id_out,
             requested_by && *requested_by ? requested_by : "?", req->source, req->target_agent,
             req->target_database);
    return 0;
}

int restorer_progress_get(restorer *r, const char *id, restorer_progress *out)
{
    memset(out, 0, sizeof(*out));
    if (r == NULL)
        return 0;
    char job[CATALOG_ID_SIZE] = "";
    int found = 0;
    pthread_mutex_lock(&r->mu);
    for (run *u = r->runs; u != NULL; u = u->next)
        if (!u->finished && strcmp(u->id, id) == 0) {
            snprintf(out->step, sizeof(out->step), "%s", u->step);
            snprintf(job, sizeof(job), "%s", u->job_id);
            found = 1;
            break;
        }
    pthread_mutex_unlock(&r->mu);
    if (found && job[0] != 0)
        out->has_job = fleet_job_progress(r->o.fleet, job, &out->job);
    return found;
}
