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
    pthread_mutex_init(&fl.mu, NULL);
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
                  .storage = fl.st,
                  .catalog_path = fl.catalog_path};
    if (api_start(&o, &a, &e) != 0)
        die("api_start", &e);
    snprintf(ids, sizeof(ids), "%s/ids.sh", dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", ids);
    FILE *f = fopen(tmp, "w");
    fprintf(f, "port=%d\nid_complete=%s\nid_failed=%s\nid_corrupt=%s\n", api_port(a), complete,
            failed, corrupt);
    fclose(f);
    rename(tmp, ids);

    int sig;
    sigwait(&set, &sig);
    api_stop(a);
    for (int i = 0; i < fl.njobs; i++)
        pthread_join(fl.jobs[i].thread, NULL);
    storage_close(fl.st);
    return 0;
}
