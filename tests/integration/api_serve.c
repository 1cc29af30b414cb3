/*
 * api_serve DIR TOKEN_FILE: the coordinator's HTTP API over a fixture, for the client's
 * integration test (api_client.sh). It makes a catalog (DIR/catalog.db) and a local-directory
 * storage (DIR/store) holding:
 *
 *   prod-db1 (connected, databases appdb and billing in prod) and stage-db1 (offline);
 *   a complete backup with a 3 MiB object, a failed one, and a "corrupt" one whose stored bytes
 *   no longer match the catalog's SHA-256;
 *
 * serves them on http://127.0.0.1:<any port>, writes DIR/ids.sh (port=, id_complete=, id_failed=,
 * id_corrupt=) and runs until SIGTERM or SIGINT.
 *
 * The fleet is scripted here instead of coordinator/fleet.c (whose symbols the linker then never
 * pulls in): a requested backup is queued for a moment, then "streams" 1 MiB every 100 ms into
 * storage and completes, so that `pgship backup --wait` sees every phase; a backup whose label
 * is "fail" fails after two pieces with pg_dump's kind of reason.
 *
 * The restorer is scripted too, instead of coordinator/restore.c (see "the restorer, scripted"),
 * and the catalog gets one running backup (id_running=), a source that cannot be restored.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/log.h"
#include "common/sha256.h"
#include "coordinator/api.h"
#include "coordinator/restore.h"

#define JOB_PIECES 12
#define JOB_PIECE (1024 * 1024)
#define MAX_JOBS 32

typedef struct job {
    char id[CATALOG_ID_SIZE];
    char db[CATALOG_NAME_MAX + 1];
    int fail;
    int live;
    fleet_progress p;
    pthread_t thread;
} job;

struct fleet {
    pthread_mutex_t mu;
    job jobs[MAX_JOBS];
    int njobs;
    storage *st;
    char catalog_path[512];
    char connected_at[CATALOG_TIME_SIZE];
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static const char *const dbs[] = {"appdb", "billing"};

json_t *fleet_agents_json(fleet *f)
{
    json_t *arr = json_array(), *a = json_object(), *d = json_array(), *jobs = json_array();
    for (size_t i = 0; i < 2; i++)
        json_array_append_new(d, json_pack("{s:s, s:s, s:s}", "name", dbs[i], "environment", "prod",
                                           "server_version", "15.4"));
    pthread_mutex_lock(&f->mu);
    for (int i = 0; i < f->njobs; i++)
        if (f->jobs[i].live)
            json_array_append_new(jobs, json_string(f->jobs[i].id));
    pthread_mutex_unlock(&f->mu);
    json_object_set_new(a, "name", json_string("prod-db1"));
    json_object_set_new(a, "version", json_string("0.1.0-test"));
    json_object_set_new(a, "key_id", json_string("0123456789abcdef"));
    json_object_set_new(a, "connected_at", json_string(f->connected_at));
    json_object_set_new(a, "databases", d);
    json_object_set_new(a, "jobs", jobs);
    json_array_append_new(arr, a);
    return arr;
}

const char *fleet_phase_name(enum fleet_phase p)
{
    switch (p) {
    case FLEET_QUEUED:
        return "queued";
    case FLEET_SENT:
        return "sent";
    case FLEET_STREAMING:
        return "streaming";
    case FLEET_FINISHING:
        return "finishing";
    case FLEET_RESTORING:
        return "restoring";
    }
    return "?";
}

int fleet_job_progress(fleet *f, const char *id, fleet_progress *out)
{
    int found = 0;
    pthread_mutex_lock(&f->mu);
    for (int i = 0; i < f->njobs; i++) {
        if (f->jobs[i].live && strcmp(f->jobs[i].id, id) == 0) {
            *out = f->jobs[i].p;
            found = 1;
        }
    }
    pthread_mutex_unlock(&f->mu);
    return found;
}

static void set_phase(fleet *f, job *j, enum fleet_phase ph, uint64_t bytes)
{
    pthread_mutex_lock(&f->mu);
    j->p.phase = ph;
    j->p.bytes = bytes;
    if (ph >= FLEET_SENT && j->p.started_ms == 0)
        j->p.started_ms = now_ms();
    if (bytes > 0)
        j->p.updated_ms = now_ms();
    pthread_mutex_unlock(&f->mu);
}

typedef struct job_arg {
    fleet *f;
    job *j;
} job_arg;

static void *job_main(void *arg)
{
    job_arg *ja = arg;
    fleet *f = ja->f;
    job *j = ja->j;
    free(ja);
    pgs_error e = {0};
    catalog *cat = NULL;
    storage_upload *u = NULL;
    uint8_t *piece = malloc(JOB_PIECE);
    char key[256], sha_hex[65];
    snprintf(key, sizeof(key), "prod/prod-db1/%s/%s.pgship", j->db, j->id);
    sleep_ms(300);
    if (catalog_open(f->catalog_path, &cat, &e) != 0)
        goto out;
    catalog_backup_info info = {
        .server_version = "15.4", .pg_dump_version = "15.4", .storage_key = key};
    set_phase(f, j, FLEET_SENT, 0);
    if (catalog_backup_start(cat, j->id, &info, &e) != 0)
        goto out;
    sleep_ms(200);
    if (storage_upload_begin(f->st, key, &u, &e) != 0)
        goto fail;
    for (int i = 0; i < JOB_PIECES; i++) {
        memset(piece, 'a' + i, JOB_PIECE);
        if (storage_upload_write(u, piece, JOB_PIECE, &e) != 0)
            goto fail;
        set_phase(f, j, FLEET_STREAMING, (uint64_t)(i + 1) * JOB_PIECE);
        if (j->fail && i == 1) {
            storage_upload_abort(u);
            u = NULL;
            pgs_fail(&e, PGS_ECHILD, "pg_dump exited with status 1: relation \"x\" is locked");
            goto fail;
        }
        sleep_ms(100);
    }
    set_phase(f, j, FLEET_FINISHING, (uint64_t)JOB_PIECES * JOB_PIECE);
    uint8_t sha[32];
    uint64_t size;
    int rc = storage_upload_commit(u, sha, &size, &e);
    u = NULL;
    if (rc != 0)
        goto fail;
    hex_encode(sha, 32, sha_hex);
    if (catalog_backup_complete(cat, j->id, size, size, sha_hex, key, &e) != 0)
        goto fail;
    goto out;
fail:
    storage_upload_abort(u);
    catalog_backup_fail(cat, j->id, e.msg, NULL);
out:
    if (e.code != 0 && e.code != PGS_ECHILD)
        fprintf(stderr, "api_serve: job %s: %s\n", j->id, e.msg);
    catalog_close(cat);
    free(piece);
    pthread_mutex_lock(&f->mu);
    j->live = 0;
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

int fleet_backup_request(fleet *f, catalog *cat, const char *agent, const char *db,
                         const char *label, const char *requested_by, char id_out[CATALOG_ID_SIZE],
                         pgs_error *e)
{
    if (strcmp(agent, "prod-db1") != 0)
        return pgs_fail(e, PGS_ENOTFOUND, "agent %s is not connected", agent);
    if (strcmp(db, dbs[0]) != 0 && strcmp(db, dbs[1]) != 0)
        return pgs_fail(e, PGS_ENOTFOUND, "agent %s did not announce database %s", agent, db);
    pthread_mutex_lock(&f->mu);
    if (f->njobs == MAX_JOBS) {
        pthread_mutex_unlock(&f->mu);
        return pgs_fail(e, PGS_ELIMIT, "agent %s has %d jobs queued already", agent, MAX_JOBS);
    }
    job *j = &f->jobs[f->njobs];
    pthread_mutex_unlock(&f->mu);
    catalog_backup_req req = {.agent = agent,
                              .database = db,
                              .environment = "prod",
                              .label = label,
                              .requested_by = requested_by};
    int rc = catalog_backup_new(cat, &req, id_out, e);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&f->mu);
    memset(j, 0, sizeof(*j));
    snprintf(j->id, sizeof(j->id), "%s", id_out);
    snprintf(j->db, sizeof(j->db), "%s", db);
    j->fail = label != NULL && strcmp(label, "fail") == 0;
    j->live = 1;
    j->p.phase = FLEET_QUEUED;
    f->njobs++;
    pthread_mutex_unlock(&f->mu);
    job_arg *ja = malloc(sizeof(*ja));
    ja->f = f;
    ja->j = j;
    pthread_create(&j->thread, NULL, job_main, ja);
    return 0;
}

/* The scheduler's way in (no [schedule] here: never called, but linked). */
int fleet_backup_request_scheduled(fleet *f, catalog *cat, const char *agent, const char *db,
                                   const char *label, const char *requested_by,
                                   const char *schedule, char id_out[CATALOG_ID_SIZE],
                                   pgs_error *e)
{
    (void)schedule;
    return fleet_backup_request(f, cat, agent, db, label, requested_by, id_out, e);
}

/* ---- the restorer, scripted ---- */

/*
 * Instead of coordinator/restore.c: requests are checked as the real restorer checks them
 * (target and sources from the catalog, profiles by name, the prod policy) and then "run" in a
 * thread through the coordinator's and the agent's steps, a moment each, with a report shaped as
 * agent/restore.h describes. Profiles: "app-anonymize" works; "slow-anonymize" too, ten times
 * slower (for the client's timeouts and signals); "broken-check" fails in step "check" with two
 * rows that break the checks; any other is unknown.
 */

#define MAX_RESTORES 32
#define TICK_MS 100

typedef struct fake_restore {
    restorer *r;
    char id[CATALOG_ID_SIZE];
    restore_request req;
    char src_id[CATALOG_ID_SIZE]; /* "" for a sync until its backup is made */
    char src_agent[CATALOG_NAME_MAX + 1], src_db[CATALOG_NAME_MAX + 1];
    char src_env[CATALOG_NAME_MAX + 1], target_env[CATALOG_NAME_MAX + 1];
    int live;
    restorer_progress p;
    pthread_t thread;
} fake_restore;

struct restorer {
    pthread_mutex_t mu;
    fake_restore runs[MAX_RESTORES];
    int n;
    const char *catalog_path;
};

typedef struct db_lookup {
    const char *agent, *db;
    char env[CATALOG_NAME_MAX + 1];
} db_lookup;

static int db_lookup_cb(void *arg, const catalog_database *d)
{
    db_lookup *l = arg;
    if (strcmp(d->name, l->db) == 0)
        snprintf(l->env, sizeof(l->env), "%s", d->environment);
    return 0;
}

/* The environment of agent/db from the catalog into env; -1 when it has none. */
static int db_env(catalog *cat, const char *agent, const char *db, char env[CATALOG_NAME_MAX + 1])
{
    db_lookup l = {.agent = agent, .db = db};
    pgs_error e = {0};
    if (catalog_databases_list(cat, agent, db_lookup_cb, &l, &e) != 0 || l.env[0] == '\0')
        return -1;
    snprintf(env, CATALOG_NAME_MAX + 1, "%s", l.env);
    return 0;
}

static void split2(const char *s, size_t n, char *agent, char *db)
{
    const char *slash = memchr(s, '/', n);
    snprintf(agent, CATALOG_NAME_MAX + 1, "%.*s", (int)(slash - s), s);
    snprintf(db, CATALOG_NAME_MAX + 1, "%.*s", (int)(n - (size_t)(slash - s) - 1), slash + 1);
}

static void set_progress(restorer *r, fake_restore *u, const char *step, const char *agent_step,
                         const char *detail, uint64_t bytes)
{
    pthread_mutex_lock(&r->mu);
    snprintf(u->p.step, sizeof(u->p.step), "%s", step);
    u->p.has_job = agent_step != NULL;
    if (agent_step != NULL) {
        u->p.job.phase = FLEET_RESTORING;
        snprintf(u->p.job.step, sizeof(u->p.job.step), "%s", agent_step);
        snprintf(u->p.job.detail, sizeof(u->p.job.detail), "%s", detail ? detail : "");
        u->p.job.bytes = bytes;
    }
    pthread_mutex_unlock(&r->mu);
}

/* A complete backup in the catalog only (nothing restores from it here). */
static int fake_backup(catalog *cat, const char *agent, const char *db, const char *env,
                       const char *label, char id[CATALOG_ID_SIZE], pgs_error *e)
{
    catalog_backup_req req = {
        .agent = agent, .database = db, .environment = env, .label = label, .requested_by = "api"};
    char key[256];
    int rc = catalog_backup_new(cat, &req, id, e);
    if (rc != 0)
        return rc;
    snprintf(key, sizeof(key), "%s/%s/%s/%s.pgship", env, agent, db, id);
    catalog_backup_info info = {.server_version = "15.4", .storage_key = key};
    if ((rc = catalog_backup_start(cat, id, &info, e)) != 0)
        return rc;
    return catalog_backup_complete(
        cat, id, 4096, 8192, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        key, e);
}

static void step_json(json_t *arr, const char *name, int ms, int ok)
{
    json_array_append_new(arr, json_pack("{s:s, s:i, s:b}", "name", name, "ms", ms, "ok", ok));
}

static void *restore_main(void *arg)
{
    fake_restore *u = arg;
    restorer *r = u->r;
    pgs_error e = {0};
    catalog *cat = NULL;
    json_t *report = json_object(), *csteps = json_array(), *asteps = json_array();
    char step[32] = "starting", failed[32] = "";
    int broken = strcmp(u->req.profile, "broken-check") == 0;
    int tick = strcmp(u->req.profile, "slow-anonymize") == 0 ? 10 * TICK_MS : TICK_MS;
    sleep_ms(tick);
    if (catalog_open(r->catalog_path, &cat, &e) != 0 ||
        catalog_restore_start(cat, u->id, "starting", &e) != 0)
        goto out;
    if (u->req.fresh) {
        snprintf(step, sizeof(step), "backup");
        set_progress(r, u, step, NULL, NULL, 0);
        catalog_restore_change c = {.step = step};
        catalog_restore_update(cat, u->id, &c, &e);
        sleep_ms(3 * tick);
        if (fake_backup(cat, u->src_agent, u->src_db, u->src_env, NULL, u->src_id, &e) != 0)
            goto out;
        c = (catalog_restore_change){.source_backup_id = u->src_id};
        if (catalog_restore_update(cat, u->id, &c, &e) != 0)
            goto out;
        json_array_append_new(csteps, json_pack("{s:s, s:i, s:b, s:s}", "name", "backup", "ms",
                                                3 * tick, "ok", 1, "backup_id", u->src_id));
    }
    if (u->req.safety_backup) {
        char sid[CATALOG_ID_SIZE];
        snprintf(step, sizeof(step), "safety");
        set_progress(r, u, step, NULL, NULL, 0);
        catalog_restore_change c = {.step = step};
        catalog_restore_update(cat, u->id, &c, &e);
        sleep_ms(2 * tick);
        if (fake_backup(cat, u->req.target_agent, u->req.target_database, u->target_env, "safety",
                        sid, &e) != 0)
            goto out;
        c = (catalog_restore_change){.safety_backup_id = sid};
        if (catalog_restore_update(cat, u->id, &c, &e) != 0)
            goto out;
        json_array_append_new(csteps, json_pack("{s:s, s:i, s:b, s:s}", "name", "safety", "ms",
                                                2 * tick, "ok", 1, "backup_id", sid));
    }
    snprintf(step, sizeof(step), "restore");
    catalog_restore_change c = {.step = step};
    catalog_restore_update(cat, u->id, &c, &e);
    static const char *const agent_steps[] = {"fetch",    "unpack", "create",  "pg_restore",
                                              "sanitize", "check",  "analyze", "swap"};
    for (size_t i = 0; i < sizeof(agent_steps) / sizeof(agent_steps[0]); i++) {
        const char *as = agent_steps[i];
        int sanitizing = strcmp(as, "sanitize") == 0 || strcmp(as, "check") == 0;
        if (sanitizing && u->req.profile[0] == '\0')
            continue;
        int ticks = strcmp(as, "fetch") == 0 ? 4 : 1;
        for (int t = 1; t <= ticks; t++) {
            set_progress(r, u, step, as, strcmp(as, "pg_restore") == 0 ? "-j 2" : "",
                         (uint64_t)t * 786432);
            sleep_ms(tick);
        }
        int ok = !(broken && strcmp(as, "check") == 0);
        step_json(asteps, as, ticks * tick, ok);
        if (!ok) {
            snprintf(failed, sizeof(failed), "%s", as);
            break;
        }
    }
    json_array_append_new(csteps, json_pack("{s:s, s:i, s:b}", "name", "restore", "ms", 9 * tick,
                                            "ok", failed[0] == '\0'));
    json_object_set_new(report, "target", json_string(u->req.target_database));
    json_object_set_new(report, "steps", asteps);
    asteps = NULL;
    json_object_set_new(report, "tables",
                        json_pack("[{s:s, s:s, s:i}, {s:s, s:s, s:i}]", "schema", "public", "name",
                                  "users", "rows", 50000, "schema", "public", "name", "orders",
                                  "rows", 120000));
    if (failed[0] != '\0') {
        json_object_set_new(
            report, "check_failures",
            json_pack("[{s:i, s:i, s:[s,s], s:[i,s]}, {s:i, s:i, s:[s,s], s:[i,s]}]", "query", 1,
                      "line", 3, "columns", "id", "email", "row", 17, "alice@example.com", "query",
                      1, "line", 3, "columns", "id", "email", "row", 42, "bob@example.com"));
        json_object_set_new(report, "check_failures_total", json_integer(2));
        pgs_fail(&e, PGS_EINVAL, "2 rows failed the profile's checks; the target is untouched");
    }
    json_object_set_new(report, "coordinator_steps", csteps);
    csteps = NULL;
out:;
    char *text = json_dumps(report, JSON_COMPACT);
    if (cat != NULL)
        catalog_restore_finish(cat, u->id, e.code == 0, failed[0] ? failed : step,
                               e.code ? e.msg : NULL, text, NULL);
    if (e.code != 0 && failed[0] == '\0')
        fprintf(stderr, "api_serve: restore %s: %s\n", u->id, e.msg);
    free(text);
    json_decref(report);
    json_decref(csteps);
    json_decref(asteps);
    catalog_close(cat);
    pthread_mutex_lock(&r->mu);
    u->live = 0;
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

int restorer_request(restorer *r, catalog *cat, const restore_request *req,
                     const char *requested_by, char id_out[CATALOG_ID_SIZE], pgs_error *e)
{
    fake_restore u;
    memset(&u, 0, sizeof(u));
    u.req = *req;
    if (db_env(cat, req->target_agent, req->target_database, u.target_env) != 0)
        return pgs_fail(e, PGS_ENOTFOUND,
                        "agent %s is not connected or has no database %s in its configuration",
                        req->target_agent, req->target_database);
    size_t n = strlen(req->source);
    if (req->fresh) {
        split2(req->source, n, u.src_agent, u.src_db);
        if (db_env(cat, u.src_agent, u.src_db, u.src_env) != 0)
            return pgs_fail(e, PGS_ENOTFOUND,
                            "agent %s is not connected or has no database %s in its "
                            "configuration: a sync backs it up first (or use --from-latest)",
                            u.src_agent, u.src_db);
    } else {
        catalog_backup b;
        int rc;
        if (catalog_id_valid(req->source)) {
            if ((rc = catalog_backup_get(cat, req->source, &b, e)) != 0)
                return rc;
            if (b.state != CATALOG_COMPLETE)
                return pgs_fail(e, PGS_EORDER, "backup %s is %s, not complete", req->source,
                                catalog_state_name(b.state));
        } else {
            split2(req->source, n - 7, u.src_agent, u.src_db);
            if ((rc = catalog_latest_complete(cat, u.src_agent, u.src_db, &b, e)) != 0)
                return rc;
        }
        snprintf(u.src_id, sizeof(u.src_id), "%s", b.id);
        snprintf(u.src_agent, sizeof(u.src_agent), "%s", b.agent);
        snprintf(u.src_db, sizeof(u.src_db), "%s", b.database);
        snprintf(u.src_env, sizeof(u.src_env), "%s", b.environment);
    }
    if (req->profile[0] != '\0' && strcmp(req->profile, "app-anonymize") != 0 &&
        strcmp(req->profile, "slow-anonymize") != 0 && strcmp(req->profile, "broken-check") != 0)
        return pgs_fail(e, PGS_ENOTFOUND, "no profile %s in /etc/pgship/profiles", req->profile);
    if (strcmp(u.target_env, "prod") == 0 && !req->overwrite_prod)
        return pgs_fail(e, PGS_EDENIED,
                        "%s/%s is a prod database: restoring replaces it; add --overwrite-prod if "
                        "that is what you want",
                        req->target_agent, req->target_database);
    if (strcmp(u.src_env, "prod") == 0 && strcmp(u.target_env, "prod") != 0 &&
        req->profile[0] == '\0')
        return pgs_fail(e, PGS_EDENIED,
                        "%s/%s holds prod data; it goes into %s only through a sanitization "
                        "profile (--sanitize NAME)",
                        u.src_agent, u.src_db, u.target_env);
    pthread_mutex_lock(&r->mu);
    int full = r->n == MAX_RESTORES;
    pthread_mutex_unlock(&r->mu);
    if (full)
        return pgs_fail(e, PGS_ELIMIT, "%d restores are running already", MAX_RESTORES);
    catalog_restore_req cr = {.kind = req->fresh ? "sync" : "restore",
                              .requested_by = requested_by,
                              .source = req->source,
                              .source_backup_id = u.src_id,
                              .source_agent = u.src_agent,
                              .source_database = u.src_db,
                              .source_environment = u.src_env,
                              .target_agent = req->target_agent,
                              .target_database = req->target_database,
                              .target_environment = u.target_env,
                              .profile = req->profile,
                              .options_json = "{\"scripted\": true}"};
    int rc = catalog_restore_new(cat, &cr, u.id, e);
    if (rc != 0)
        return rc;
    snprintf(u.p.step, sizeof(u.p.step), "queued");
    u.live = 1;
    u.r = r;
    pthread_mutex_lock(&r->mu);
    fake_restore *slot = &r->runs[r->n++];
    *slot = u;
    pthread_create(&slot->thread, NULL, restore_main, slot);
    pthread_mutex_unlock(&r->mu);
    snprintf(id_out, CATALOG_ID_SIZE, "%s", u.id);
    return 0;
}

int restorer_progress_get(restorer *r, const char *id, restorer_progress *out)
{
    int found = 0;
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < r->n; i++) {
        if (r->runs[i].live && strcmp(r->runs[i].id, id) == 0) {
            *out = r->runs[i].p;
            found = 1;
        }
    }
    pthread_mutex_unlock(&r->mu);
    return found;
}

/* The fleet's restore calls, which only coordinator/restore.c makes: never called here. */
int fleet_restore_request(fleet *f, const fleet_restore_job *j, pgs_error *e)
{
    (void)f, (void)j;
    return pgs_fail(e, PGS_EINVAL, "api_serve runs no restore jobs");
}

json_t *fleet_agent_restore_keys(fleet *f, const char *agent)
{
    (void)f, (void)agent;
    return NULL;
}

int fleet_database_environment(fleet *f, const char *agent, const char *db, char *env, size_t cap)
{
    (void)f, (void)agent, (void)db, (void)env, (void)cap;
    return PGS_ENOTFOUND;
}

/* ---- the fixture ---- */

__attribute__((noreturn)) static void die(const char *what, const pgs_error *e)
{
    fprintf(stderr, "api_serve: %s: %s\n", what, e != NULL ? e->msg : "");
    exit(1);
}

static void complete_with(catalog *cat, storage *st, const char *db, const char *label,
                          const void *buf, size_t len, char id[CATALOG_ID_SIZE])
{
    pgs_error e = {0};
    catalog_backup_req req = {.agent = "prod-db1",
                              .database = db,
                              .environment = "prod",
                              .label = label,
                              .requested_by = "test"};
    char key[256], hex[65];
    if (catalog_backup_new(cat, &req, id, &e) != 0)
        die("catalog_backup_new", &e);
    snprintf(key, sizeof(key), "prod/prod-db1/%s/%s.pgship", db, id);
    catalog_backup_info info = {
        .server_version = "15.4", .pg_dump_version = "15.4", .storage_key = key};
    storage_upload *u;
    uint8_t sha[32];
    uint64_t size;
    if (catalog_backup_start(cat, id, &info, &e) != 0 ||
        storage_upload_begin(st, key, &u, &e) != 0 || storage_upload_write(u, buf, len, &e) != 0 ||
        storage_upload_commit(u, sha, &size, &e) != 0)
        die("storing a fixture object", &e);
    hex_encode(sha, 32, hex);
    if (catalog_backup_complete(cat, id, size, size * 2, hex, key, &e) != 0)
        die("catalog_backup_complete", &e);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: api_serve DIR TOKEN_FILE\n");
        return 2;
    }
    log_init("api_serve");
    const char *dir = argv[1];
    char token[256] = "", store[512], ids[512], tmp[520];
    FILE *tf = fopen(argv[2], "r");
    if (tf == NULL || fgets(token, sizeof(token), tf) == NULL)
        die("cannot read the token file", NULL);
    fclose(tf);
    token[strcspn(token, "\r\n")] = '\0';

    static fleet fl;
    static restorer rs;
    pthread_mutex_init(&fl.mu, NULL);
    pthread_mutex_init(&rs.mu, NULL);
    rs.catalog_path = fl.catalog_path;
    snprintf(fl.catalog_path, sizeof(fl.catalog_path), "%s/catalog.db", dir);
    snprintf(store, sizeof(store), "%s/store", dir);
    snprintf(fl.connected_at, sizeof(fl.connected_at), "2026-11-21T16:00:00.000Z");

    pgs_error e = {0};
    storage_config sc = {.type = "fs", .path = store};
    catalog *cat = NULL;
    if (storage_open(&fl.st, &sc, &e) != 0 || catalog_open(fl.catalog_path, &cat, &e) != 0 ||
        catalog_agent_seen(cat, "prod-db1", "0123456789abcdef", NULL, "0.1.0", 1, &e) != 0 ||
        catalog_agent_seen(cat, "stage-db1", NULL, NULL, "0.1.0", 0, &e) != 0 ||
        catalog_database_seen(cat, "prod-db1", "appdb", "prod", "15.4", &e) != 0 ||
        catalog_database_seen(cat, "prod-db1", "billing", "prod", "15.4", &e) != 0 ||
        catalog_database_seen(cat, "stage-db1", "appdb", "staging", "15.4", &e) != 0)
        die("fixture", &e);

    size_t n = 3u * 1024 * 1024;
    uint8_t *obj = malloc(n);
    for (size_t i = 0; i < n; i++)
        obj[i] = (uint8_t)((i * 2654435761u) >> 11);
    char complete[CATALOG_ID_SIZE], failed[CATALOG_ID_SIZE], corrupt[CATALOG_ID_SIZE];
    complete_with(cat, fl.st, "appdb", "before migration", obj, n, complete);
    complete_with(cat, fl.st, "billing", NULL, obj, 4096, corrupt);
    char key[256];
    snprintf(key, sizeof(key), "prod/prod-db1/billing/%s.pgship", corrupt);
    obj[100] ^= 1; /* same size, other bytes */
    if (storage_put(fl.st, key, obj, 4096, &e) != 0)
        die("storage_put", &e);
    catalog_backup_req req = {.agent = "prod-db1", .database = "appdb", .environment = "prod"};
    if (catalog_backup_new(cat, &req, failed, &e) != 0 ||
        catalog_backup_fail(cat, failed, "pg_dump exited with status 1", &e) != 0)
        die("failed fixture", &e);
    char running[CATALOG_ID_SIZE];
    req.database = "billing";
    if (catalog_backup_new(cat, &req, running, &e) != 0 ||
        catalog_backup_start(cat, running, NULL, &e) != 0)
        die("running fixture", &e);
    catalog_close(cat);
    free(obj);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    api *a = NULL;
    api_opts o = {.url = "http://127.0.0.1:0",
                  .token = token,
                  .fleet = &fl,
                  .restorer = &rs,
                  .storage = fl.st,
                  .catalog_path = fl.catalog_path};
    if (api_start(&o, &a, &e) != 0)
        die("api_start", &e);
    snprintf(ids, sizeof(ids), "%s/ids.sh", dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", ids);
    FILE *f = fopen(tmp, "w");
    fprintf(f, "port=%d\nid_complete=%s\nid_failed=%s\nid_corrupt=%s\nid_running=%s\n", api_port(a),
            complete, failed, corrupt, running);
    fclose(f);
    rename(tmp, ids);

    int sig;
    sigwait(&set, &sig);
    api_stop(a);
    for (int i = 0; i < fl.njobs; i++)
        pthread_join(fl.jobs[i].thread, NULL);
    for (int i = 0; i < rs.n; i++)
        pthread_join(rs.runs[i].thread, NULL);
    storage_close(fl.st);
    return 0;
}
