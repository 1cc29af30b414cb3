/*
 * The coordinator's metrics, computed at scrape time (see monitor.h).
 */
#include "coordinator/monitor.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "coordinator/catalog.h"
#include "coordinator/storage.h"

struct monitor {
    metrics *m;
    catalog *cat;
    fleet *fleet;
    pthread_mutex_t mu; /* the catalog handle and the source, one scrape at a time */
    void (*source)(void *arg, metrics *m);
    void *source_arg;
};

const char *monitor_failure_reason(const char *error)
{
    if (error == NULL)
        return "other";
    /* First: a missed run's reason says why it was missed ("missed: agent not connected"),
     * which would read as another reason below. */
    if (strncmp(error, "missed", 6) == 0)
        return "missed";
    if (strstr(error, "connection to the agent was lost") != NULL ||
        strstr(error, "agent disconnected") != NULL || strstr(error, "went silent") != NULL ||
        strstr(error, "not connected") != NULL)
        return "agent_lost";
    if (strstr(error, "coordinator stopped") != NULL ||
        strstr(error, "coordinator restarted") != NULL)
        return "coordinator_stopped";
    /* Before "refused": libpq's "Connection refused" is the database's, not ours. */
    if (strstr(error, "cannot connect to the database") != NULL)
        return "database";
    if (strstr(error, "refused") != NULL)
        return "refused";
    if (strncmp(error, "s3 ", 3) == 0 || strstr(error, "storage") != NULL)
        return "storage";
    if (strstr(error, "pg_dump") != NULL || strstr(error, "pg_dumpall") != NULL)
        return "dump";
    return "other";
}

/* A catalog time in Unix seconds; -1 when unset or not the catalog's form. */
static double unix_s(const char *t)
{
    int64_t ms;
    return t[0] != '\0' && catalog_time_parse(t, &ms) == 0 ? (double)ms / 1000.0 : -1;
}

/* ---- one scrape ---- */

typedef struct seen {
    char agent[CATALOG_NAME_MAX + 1], database[CATALOG_NAME_MAX + 1];
} seen;

/* A database's newest passed verification (Unix seconds). */
typedef struct verified {
    char agent[CATALOG_NAME_MAX + 1], database[CATALOG_NAME_MAX + 1];
    double at;
} verified;

typedef struct scrape {
    metrics *m;
    seen *dbs; /* databases whose newest complete backup was set */
    size_t ndbs, cap;
    verified *ver; /* databases with a passed verification */
    size_t nver, vcap;
    double queued, running;
} scrape;

static int db_seen(scrape *s, const char *agent, const char *db)
{
    for (size_t i = 0; i < s->ndbs; i++)
        if (strcmp(s->dbs[i].agent, agent) == 0 && strcmp(s->dbs[i].database, db) == 0)
            return 1;
    if (s->ndbs == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        seen *n = realloc(s->dbs, cap * sizeof(*n));
        if (n == NULL)
            return 1; /* out of memory: the gauge is left out rather than wrong */
        s->dbs = n;
        s->cap = cap;
    }
    snprintf(s->dbs[s->ndbs].agent, sizeof(s->dbs[0].agent), "%s", agent);
    snprintf(s->dbs[s->ndbs].database, sizeof(s->dbs[0].database), "%s", db);
    s->ndbs++;
    return 0;
}

/* Keeps the latest of a database's passed verifications. A backup records its latest
 * verification's time and result, so this sees the newest passed one of each backup still in the
 * catalog whose latest check passed. */
static void verified_note(scrape *s, const catalog_backup *b)
{
    double at = unix_s(b->verified_at);
    if (at < 0 || strcmp(b->verify_result, "ok") != 0)
        return;
    for (size_t i = 0; i < s->nver; i++)
        if (strcmp(s->ver[i].agent, b->agent) == 0 &&
            strcmp(s->ver[i].database, b->database) == 0) {
            if (at > s->ver[i].at)
                s->ver[i].at = at;
            return;
        }
    if (s->nver == s->vcap) {
        size_t cap = s->vcap ? 2 * s->vcap : 64;
        verified *n = realloc(s->ver, cap * sizeof(*n));
        if (n == NULL)
            return; /* out of memory: the gauge is left out rather than wrong */
        s->ver = n;
        s->vcap = cap;
    }
    snprintf(s->ver[s->nver].agent, sizeof(s->ver[0].agent), "%s", b->agent);
    snprintf(s->ver[s->nver].database, sizeof(s->ver[0].database), "%s", b->database);
    s->ver[s->nver].at = at;
    s->nver++;
}

static int on_backup(void *arg, const catalog_backup *b)
{
    scrape *s = arg;
    if (b->verified_at[0] != '\0')
        verified_note(s, b);
    const char *by_result[] = {b->agent, b->database, catalog_state_name(b->state), NULL};
    if (b->state == CATALOG_COMPLETE || b->state == CATALOG_FAILED)
        metrics_add(s->m, METRICS_BACKUPS, by_result, 1);
    if (b->state == CATALOG_QUEUED)
        s->queued++;
    else if (b->state == CATALOG_RUNNING)
        s->running++;
    else if (b->state == CATALOG_FAILED) {
        const char *by_reason[] = {b->agent, b->database, monitor_failure_reason(b->error), NULL};
        metrics_add(s->m, METRICS_BACKUP_FAILURES, by_reason, 1);
    } else if (b->state == CATALOG_COMPLETE && b->source_backup_id[0] == '\0' &&
               !db_seen(s, b->agent, b->database)) {
        /* Newest first: the first complete backup of a database is its last good one. */
        const char *db[] = {b->agent, b->database, b->environment, NULL};
        double fin = unix_s(b->finished_at), start = unix_s(b->started_at);
        if (fin >= 0)
            metrics_set(s->m, METRICS_BACKUP_LAST_SUCCESS, db, fin);
        if (fin >= 0 && start >= 0 && fin >= start)
            metrics_set(s->m, METRICS_BACKUP_DURATION, db, fin - start);
        metrics_set(s->m, METRICS_BACKUP_BYTES, db, (double)b->bytes);
    }
    return 0;
}

static int on_restore(void *arg, const catalog_restore *r)
{
    scrape *s = arg;
    const char *by_result[] = {catalog_state_name(r->state), NULL};
    if (r->state == CATALOG_COMPLETE || r->state == CATALOG_FAILED)
        metrics_add(s->m, METRICS_RESTORES, by_result, 1);
    return 0;
}

/* Verifications by result: "complete" for those that passed (state ok), like backups and
 * restores, so that one result="failed" selects the failures of all three. */
static int on_verification(void *arg, const catalog_verification *v)
{
    scrape *s = arg;
    const char *by_result[] = {v->state == CATALOG_VERIFY_OK ? "complete" : "failed", NULL};
    if (v->state == CATALOG_VERIFY_OK || v->state == CATALOG_VERIFY_FAILED)
        metrics_add(s->m, METRICS_VERIFICATIONS, by_result, 1);
    return 0;
}

static void render_hook(void *arg, metrics *m)
{
    monitor *mo = arg;
    static const char *const per_db[] = {METRICS_BACKUP_LAST_SUCCESS, METRICS_BACKUP_DURATION,
                                         METRICS_BACKUP_BYTES,        METRICS_BACKUPS,
                                         METRICS_BACKUP_FAILURES,     METRICS_RESTORES,
                                         METRICS_VERIFICATIONS,       MONITOR_LAST_VERIFICATION};
    for (size_t i = 0; i < sizeof(per_db) / sizeof(per_db[0]); i++)
        metrics_clear(m, per_db[i]);
    scrape s = {.m = m};
    pgs_error e = {0};
    pthread_mutex_lock(&mo->mu);
    if (catalog_backup_list(mo->cat, NULL, on_backup, &s, &e) != 0 ||
        catalog_restore_list(mo->cat, NULL, on_restore, &s, &e) != 0 ||
        catalog_verify_list(mo->cat, NULL, on_verification, &s, &e) != 0)
        log_warn("metrics: reading the catalog: %s", e.msg);
    for (size_t i = 0; i < s.nver; i++) {
        const char *db[] = {s.ver[i].agent, s.ver[i].database, NULL};
        metrics_set(m, MONITOR_LAST_VERIFICATION, db, s.ver[i].at);
    }
    if (mo->source != NULL)
        mo->source(mo->source_arg, m);
    pthread_mutex_unlock(&mo->mu);
    free(s.dbs);
    free(s.ver);
    metrics_set(m, METRICS_JOBS_QUEUED, NULL, s.queued);
    metrics_set(m, METRICS_JOBS_RUNNING, NULL, s.running);

    json_t *agents = fleet_agents_json(mo->fleet);
    metrics_set(m, METRICS_AGENTS_CONNECTED, NULL, agents ? (double)json_array_size(agents) : 0);
    json_decref(agents);

    storage_counts sc;
    storage_counts_get(&sc);
    for (int op = 0; op < STORAGE_OPS; op++) {
        const char *lv[] = {storage_op_name(op), NULL};
        metrics_set(m, METRICS_STORAGE_ERRORS, lv, (double)sc.errors[op]);
        metrics_set(m, METRICS_STORAGE_RETRIES, lv, (double)sc.retries[op]);
    }
}

int monitor_new(monitor **out, const char *catalog_path, fleet *f, pgs_error *e)
{
    *out = NULL;
    monitor *mo = calloc(1, sizeof(*mo));
    if (mo == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    pthread_mutex_init(&mo->mu, NULL);
    mo->fleet = f;
    static const char *const adb[] = {"agent", "database", NULL};
    int rc = catalog_open(catalog_path, &mo->cat, e);
    if (rc == 0 && (metrics_new(&mo->m) != 0 || metrics_declare_standard(mo->m) != 0 ||
                    metrics_declare(mo->m, MONITOR_LAST_VERIFICATION, METRICS_GAUGE,
                                    "Finish time of the database's newest verification that "
                                    "passed (Unix seconds).",
                                    adb) != 0 ||
                    metrics_on_render(mo->m, render_hook, mo) != 0))
        rc = pgs_fail(e, PGS_ENOMEM, "metrics: cannot set up the registry");
    if (rc != 0) {
        monitor_free(mo);
        return rc;
    }
    *out = mo;
    return 0;
}

metrics *monitor_metrics(monitor *m)
{
    return m ? m->m : NULL;
}

void monitor_set_source(monitor *m, void (*fn)(void *arg, metrics *reg), void *arg)
{
    if (m == NULL)
        return;
    /* Scrapes call the source under mu: once this holds mu, none is running the old one. */
    pthread_mutex_lock(&m->mu);
    m->source = fn;
    m->source_arg = fn ? arg : NULL;
    pthread_mutex_unlock(&m->mu);
}

void monitor_free(monitor *m)
{
    if (m == NULL)
        return;
    metrics_free(m->m);
    catalog_close(m->cat);
    pthread_mutex_destroy(&m->mu);
    free(m);
}
