/*
 * GET /status: the read-only status page (coordinator/status.h renders it; docs/monitoring.md
 * "Status page"). This file gathers what the page shows into one JSON document -- the
 * catalog's agents and databases, each database's last complete backup and last failure, the
 * recent failures, the fleet's live view and the scheduler's next runs -- and answers with the
 * rendered HTML and headers that keep a browser from doing anything but show it.
 *
 * Any valid token may read the page (role read). Browsers send it as HTTP Basic credentials,
 * which api.c accepts for GET and HEAD; its 401 for this path asks for Basic.
 */
#include "coordinator/api_internal.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "coordinator/schedd.h"
#include "coordinator/status.h"

/* ---- gathering ---- */

typedef struct status_acc {
    json_t *agents;
    json_t *dbs;   /* rows of the "databases" array */
    json_t *index; /* "agent/db/env" -> its row */
    json_t *fails;
    size_t more; /* database rows left out past STATUS_DATABASES_MAX */
    int bad;
} status_acc;

static int st_agents_cb(void *arg, const catalog_agent *ca)
{
    status_acc *acc = arg;
    json_t *o = json_pack("{s:s, s:o, s:o, s:b}", "name", ca->name, "version",
                          api_text_or_null(ca->version), "last_seen",
                          api_text_or_null(ca->last_seen), "connected", ca->connected);
    if (o == NULL || json_array_append_new(acc->agents, o) != 0)
        return acc->bad = PGS_ENOMEM;
    return 0;
}

/* The row of (agent, db, env), made when new; NULL past the cap (counted in acc->more when
 * count is set: the databases list counts, the stats, which mostly repeat it, do not) or when
 * out of memory. */
static json_t *db_row(status_acc *acc, const char *agent, const char *db, const char *env,
                      int count)
{
    char key[3 * (CATALOG_NAME_MAX + 1)];
    snprintf(key, sizeof(key), "%s/%s/%s", agent, db, env);
    json_t *row = json_object_get(acc->index, key);
    if (row != NULL)
        return row;
    if (json_array_size(acc->dbs) >= STATUS_DATABASES_MAX) {
        acc->more += count != 0;
        return NULL;
    }
    row = json_pack("{s:s, s:s, s:s, s:n, s:i, s:i, s:n, s:n}", "agent", agent, "database", db,
                    "environment", env, "last_complete", "complete", 0, "failed", 0,
                    "last_failure_at", "last_failure");
    if (row == NULL || json_array_append_new(acc->dbs, row) != 0 ||
        json_object_set(acc->index, key, row) != 0) {
        acc->bad = PGS_ENOMEM;
        return NULL;
    }
    return row;
}

static int st_databases_cb(void *arg, const catalog_database *d)
{
    status_acc *acc = arg;
    db_row(acc, d->agent, d->name, d->environment, 1);
    return acc->bad;
}

static int st_stats_cb(void *arg, const catalog_db_stats *s)
{
    status_acc *acc = arg;
    json_t *row = db_row(acc, s->agent, s->database, s->environment, 0);
    if (row == NULL)
        return acc->bad;
    json_object_set_new(row, "complete", json_integer((json_int_t)s->complete));
    json_object_set_new(row, "failed", json_integer((json_int_t)s->failed));
    json_object_set_new(row, "last_failure_at", api_text_or_null(s->last_failure_at));
    json_object_set_new(row, "last_failure", api_text_or_null(s->last_failure));
    return 0;
}

static int st_fails_cb(void *arg, const catalog_backup *b)
{
    status_acc *acc = arg;
    if (json_array_append_new(acc->fails, catalog_backup_to_json(b)) != 0)
        return acc->bad = PGS_ENOMEM;
    return 0;
}

/* The configured schedules in schedd_next_runs_json's shape: what the page lists when the
 * scheduler has none to tell (it has not planned yet). */
static json_t *config_schedules(const coordinator_config *cfg)
{
    json_t *arr = json_array();
    for (size_t i = 0; arr != NULL && cfg != NULL && i < cfg->nschedules; i++) {
        const coordinator_schedule_config *s = &cfg->schedules[i];
        json_t *o = json_pack("{s:s?, s:s?, s:s?, s:I, s:s?}", "name", s->name, "cron",
                              s->cron_text, "select", s->select_text, "jitter_s",
                              (json_int_t)s->jitter_s, "retention", s->retention);
        if (o == NULL || json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

/* The scheduler's next runs, or null when there is no scheduler; NULL when out of memory. */
static json_t *schedule_json(api *a)
{
    if (a->sched == NULL)
        return a->cfg != NULL && a->cfg->nschedules > 0
                   ? json_pack("{s:o, s:[]}", "schedules", config_schedules(a->cfg), "runs")
                   : json_null();
    json_t *s = schedd_next_runs_json(a->sched);
    if (s == NULL)
        return NULL;
    json_t *list = json_object_get(s, "schedules");
    if (a->cfg != NULL && a->cfg->nschedules > 0 && json_array_size(list) == 0) {
        json_t *c = config_schedules(a->cfg);
        if (c == NULL || json_object_set_new(s, "schedules", c) != 0) {
            json_decref(s);
            return NULL;
        }
    }
    return s;
}

/* The page's input (status_render's shape), or NULL with e set. */
static json_t *gather(api *a, pgs_error *e)
{
    status_acc acc = {json_array(), json_array(), json_object(), json_array(), 0, 0};
    json_t *in = NULL;
    int rc = 0;
    if (acc.agents == NULL || acc.dbs == NULL || acc.index == NULL || acc.fails == NULL) {
        rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
        goto out;
    }
    catalog_filter failed = {.state = CATALOG_FAILED, .limit = STATUS_FAILURES_MAX};
    api_cat_lock(a);
    rc = catalog_agents_list(a->cat, st_agents_cb, &acc, e);
    if (rc == 0 && acc.bad == 0)
        rc = catalog_databases_list(a->cat, NULL, st_databases_cb, &acc, e);
    if (rc == 0 && acc.bad == 0)
        rc = catalog_stats(a->cat, st_stats_cb, &acc, e);
    if (rc == 0 && acc.bad == 0)
        rc = catalog_backup_list(a->cat, &failed, st_fails_cb, &acc, e);
    api_cat_unlock(a);
    if (rc == 0 && acc.bad != 0)
        rc = pgs_fail(e, acc.bad, "out of memory");
    if (rc != 0)
        goto out;

    /* Each database's newest complete backup: one indexed query per row, each under the lock
     * on its own so that other requests get their turn on a big fleet. */
    json_t *row;
    size_t i;
    json_array_foreach(acc.dbs, i, row)
    {
        catalog_backup b;
        pgs_error le = {0};
        api_cat_lock(a);
        int lrc =
            catalog_latest_complete(a->cat, json_string_value(json_object_get(row, "agent")),
                                    json_string_value(json_object_get(row, "database")), &b, &le);
        api_cat_unlock(a);
        if (lrc == PGS_ENOTFOUND)
            continue;
        if (lrc != 0) {
            rc = pgs_fail(e, lrc, "%s", le.msg);
            goto out;
        }
        json_t *bj = catalog_backup_to_json(&b);
        if (bj == NULL || json_object_set_new(row, "last_complete", bj) != 0) {
            rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
            goto out;
        }
    }

    /* "o" hands over live and sched, also when the pack fails (or either is NULL). */
    json_t *live = a->fleet != NULL ? fleet_agents_json(a->fleet) : json_array();
    json_t *sched = schedule_json(a);
    in = json_pack("{s:o, s:o, s:O, s:O, s:O, s:I}", "live", live, "schedule", sched, "agents",
                   acc.agents, "databases", acc.dbs, "failures", acc.fails, "more_databases",
                   (json_int_t)acc.more);
    if (in == NULL)
        rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
out:
    json_decref(acc.agents);
    json_decref(acc.dbs);
    json_decref(acc.index);
    json_decref(acc.fails);
    return rc == 0 ? in : NULL;
}

/* ---- the response ---- */

static void get_status(api *a, nng_aio *aio, int head)
{
    pgs_error e = {0};
    char *html = NULL;
    size_t len = 0;
    json_t *in = gather(a, &e);
    if (in == NULL) {
        api_reply_pgs(aio, &e);
        return;
    }
    int rc = status_render(in, api_now_ms(), &html, &len, &e);
    json_decref(in);
    if (rc != 0) {
        api_reply_pgs(aio, &e);
        return;
    }
    /* The page shows names and reasons from agents: even though every one is escaped, the
     * headers make sure nothing on it could run, load, be framed or be sniffed as another type. */
    static const char *const headers[][2] = {
        {"Content-Type", "text/html; charset=utf-8"},
        {"Cache-Control", "no-store"},
        {"Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; "
                                    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"},
        {"X-Content-Type-Options", "nosniff"},
        {"X-Frame-Options", "DENY"},
        {"Referrer-Policy", "no-referrer"},
    };
    nng_http_res *res = NULL;
    int ok = nng_http_res_alloc(&res) == 0;
    for (size_t i = 0; ok && i < sizeof(headers) / sizeof(headers[0]); i++)
        ok = nng_http_res_set_header(res, headers[i][0], headers[i][1]) == 0;
    if (ok)
        ok = (head ? nng_http_res_set_header(res, "Content-Length", "0")
                   : nng_http_res_copy_data(res, html, len)) == 0;
    if (!ok && res != NULL) {
        nng_http_res_free(res);
        res = NULL;
    }
    free(html);
    api_finish_res(aio, res);
}

int api_status_route(api *a, api_job *job, const char *method, const char *path, const char *query)
{
    (void)query; /* a page: whatever a browser or a bookmark adds is ignored */
    if (!status_is_page(path))
        return 0;
    if (!api_is_get(method))
        api_method_not_allowed(job->aio, "GET, HEAD");
    else if (api_allowed(job, API_ROLE_READ, "GET /status"))
        get_status(a, job->aio, strcmp(method, "HEAD") == 0);
    return 1;
}
