/*
 * The API's fleet-operation routes (docs/api.md): the scheduler's next runs, prune, pins,
 * per-database statistics, and the audit log with api_audit, which every route that changes
 * something calls (api.c's backups and restores, api_verify.c's verifications, these).
 *
 *   GET  /v1/schedules            read     schedd_next_runs_json
 *   POST /v1/prune                admin    {"dry_run": bool}: the plan, and what was deleted
 *   POST /v1/backups/ID/pin       operate  keeps a backup out of every prune
 *   POST /v1/backups/ID/unpin     admin    lets retention delete it again
 *   GET  /v1/stats                read     per database, and the fleet's total
 *   GET  /v1/audit?limit=N        admin    newest first
 *
 * A prune may take long: each deletion is a storage call (an S3 round trip or two). It runs on
 * a catalog handle of its own, so the API's shared handle (one call at a time for every route)
 * stays free for the other worker, and one prune at a time (a second one is refused with 409
 * rather than queued behind it: two would only race for the same rows). The scheduler's prunes
 * run in its own thread on its own handle; prune_apply re-checks each row before it deletes,
 * so the two cannot undo each other, at worst one skips what the other deleted. A prune under
 * way holds its worker until it ends (prune_apply cannot be cancelled between deletions), so
 * api_stop waits for it.
 *
 * Audit entries are written before the answer is sent, so that a client that reads the audit
 * log right after an answer finds the entry there.
 */
#include "coordinator/api_ops.h"
#include "coordinator/api_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/log.h"
#include "coordinator/prune.h"
#include "coordinator/schedd.h"
#include "proto/jsonutil.h"

#define AUDIT_RESULT_MAX 600

/* ---- decoders ---- */

int api_prune_body_parse(const void *body, size_t len, api_prune_body *out, pgs_error *e)
{
    static const char *const allowed[] = {"dry_run", NULL};
    memset(out, 0, sizeof(*out));
    if (len == 0)
        return pgs_fail(e, PGS_EFORMAT,
                        "the request body is empty; send {\"dry_run\": true} or "
                        "{\"dry_run\": false}");
    json_t *root = jsonu_load_object(body, len, API_BODY_MAX, "the request body", e);
    if (root == NULL)
        return e != NULL ? e->code : PGS_EFORMAT;
    int rc = jsonu_only_keys(root, allowed, e);
    json_t *v = json_object_get(root, "dry_run");
    if (rc == 0 && v == NULL)
        rc = pgs_fail(e, PGS_EINVAL,
                      "field \"dry_run\" is required (true or false): a prune deletes backups, "
                      "so it is never implied");
    else if (rc == 0 && !json_is_boolean(v))
        rc = pgs_fail(e, PGS_EFORMAT, "field \"dry_run\" is not true or false");
    else if (rc == 0)
        out->dry_run = json_is_true(v);
    json_decref(root);
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

int api_empty_body_parse(const void *body, size_t len, pgs_error *e)
{
    if (len == 0)
        return 0;
    json_t *root = jsonu_load_object(body, len, API_BODY_MAX, "the request body", e);
    if (root == NULL)
        return e != NULL ? e->code : PGS_EFORMAT;
    int rc = json_object_size(root) == 0
                 ? 0
                 : pgs_fail(e, PGS_EINVAL, "this request takes no fields: send nothing or {}");
    json_decref(root);
    return rc;
}

int api_audit_query_parse(const char *query, unsigned *limit, pgs_error *e)
{
    if (query == NULL || query[0] == '\0') {
        *limit = API_AUDIT_DEFAULT;
        return 0;
    }
    if (strnlen(query, API_OPS_QUERY_MAX + 1) > API_OPS_QUERY_MAX)
        return pgs_fail(e, PGS_ELIMIT, "the query string is longer than %d bytes",
                        API_OPS_QUERY_MAX);
    unsigned value = 0;
    int seen = 0;
    for (const char *p = query;;) {
        size_t seg = strcspn(p, "&");
        const char *eq = memchr(p, '=', seg);
        if (eq == NULL)
            return pgs_fail(e, PGS_EINVAL, "query parameters are name=value");
        if ((size_t)(eq - p) != 5 || memcmp(p, "limit", 5) != 0)
            return pgs_fail(e, PGS_EINVAL, "unknown query parameter (known: limit)");
        if (seen++)
            return pgs_fail(e, PGS_EINVAL, "query parameter limit is given twice");
        const char *v = eq + 1;
        size_t digits = (size_t)(p + seg - v);
        int ok = digits >= 1 && digits <= 5;
        value = 0;
        for (size_t i = 0; ok && i < digits; i++) {
            ok = v[i] >= '0' && v[i] <= '9';
            value = value * 10 + (unsigned)(v[i] - '0');
        }
        if (!ok || value < 1 || value > API_AUDIT_MAX)
            return pgs_fail(e, PGS_EINVAL, "limit must be a number from 1 to %d", API_AUDIT_MAX);
        if (p[seg] == '\0')
            break;
        p += seg + 1;
    }
    *limit = value;
    return 0;
}

/* ---- the audit log ---- */

/* api_audit with a detail (a JSON object's text, or NULL). */
static void audit_detail(api *a, api_job *job, const char *action, const char *target,
                         const char *result, const char *detail_json)
{
    /* The catalog's action names are [a-z_]; callers may write "backup.request". */
    char act[CATALOG_AUDIT_ACTION_MAX + 1];
    size_t n = 0;
    for (; action != NULL && action[n] != '\0' && n + 1 < sizeof(act); n++)
        act[n] = action[n] == '.' ? '_' : action[n];
    act[n] = '\0';
    pgs_error e = {0};
    api_cat_lock(a);
    int rc = catalog_audit_add(a->cat, job->who, api_role_name(job->role), act, target, result,
                               detail_json, &e);
    api_cat_unlock(a);
    if (rc != 0) {
        char t[128];
        api_log_clean(target, t, sizeof(t));
        log_error("api: cannot record %s of %s by %s in the audit log: %s", act, t, job->who,
                  e.msg);
    }
}

void api_audit(api *a, api_job *job, const char *action, const char *target, const char *result)
{
    audit_detail(a, job, action, target, result, NULL);
}

int api_allowed_audit(api *a, api_job *job, int need, const char *what, const char *action,
                      const char *target)
{
    if (job->role >= need)
        return 1;
    api_audit(a, job, action, target, "denied");
    return api_allowed(job, need, what); /* logs the refusal and answers 403 */
}

/* The entry of a request that failed: "error: " and why. */
static void audit_error(api *a, api_job *job, const char *action, const char *target,
                        const char *why)
{
    char result[AUDIT_RESULT_MAX];
    snprintf(result, sizeof(result), "error: %s", why);
    api_audit(a, job, action, target, result);
}

/* ---- GET /v1/schedules ---- */

static void get_schedules(api *a, nng_aio *aio)
{
    if (a->sched == NULL) {
        api_reply_error(aio, 404, "not_found", "this coordinator runs no scheduler");
        return;
    }
    json_t *o = schedd_next_runs_json(a->sched);
    if (o == NULL) {
        api_reply_error(aio, 500, "internal", "out of memory");
        return;
    }
    api_reply_json(aio, 200, o);
}

/* ---- POST /v1/prune ---- */

/* No [retention] rules (an API without a configuration, as in tests): nothing is planned. */
static const retention_policy *no_policy(void *arg, const char *agent, const char *db,
                                         const char *env, const char **name)
{
    (void)arg, (void)agent, (void)db, (void)env, (void)name;
    return NULL;
}

/* What prune_apply did, added to the plan's JSON. */
static int counts_to_json(json_t *o, const prune_counts *c)
{
    json_t *failures = json_array();
    int bad = failures == NULL;
    for (size_t i = 0; !bad && i < c->nfailures && i < PRUNE_FAILURES_MAX; i++) {
        json_t *f = json_object();
        bad |= f == NULL;
        if (f == NULL)
            break;
        bad |= json_object_set_new(f, "id", json_string(c->failures[i].id));
        json_t *msg = json_string(c->failures[i].error);
        bad |= json_object_set_new(f, "error", msg != NULL ? msg : json_string("(not UTF-8)"));
        bad |= json_array_append_new(failures, f);
    }
    if (bad) {
        json_decref(failures);
        return PGS_ENOMEM;
    }
    bad |= json_object_set_new(o, "deleted", json_integer((json_int_t)c->deleted));
    bad |= json_object_set_new(o, "skipped", json_integer((json_int_t)c->skipped));
    bad |= json_object_set_new(o, "failed", json_integer((json_int_t)c->failed));
    bad |= json_object_set_new(o, "bytes_deleted", json_integer((json_int_t)c->bytes_deleted));
    bad |= json_object_set_new(o, "failures", failures);
    return bad ? PGS_ENOMEM : 0;
}

/* Plans (and unless dry_run applies) the prune on a catalog handle of its own; *out is the
 * answer. The audit entry of an applied prune is written here, before the answer. Returns 0,
 * or an error with e set (nothing answered yet). */
static int run_prune(api *a, api_job *job, int dry_run, json_t **out, pgs_error *e)
{
    catalog *cat = NULL;
    prune_plan_t *plan = NULL;
    json_t *o = NULL;
    prune_rules rules = {no_policy, NULL};
    int rc;
    if (a->cfg != NULL)
        schedd_prune_rules(a->cfg, &rules);
    if ((rc = catalog_open(a->catalog_path, &cat, e)) != 0)
        goto out;
    if ((rc = prune_plan(cat, &rules, &plan, e)) != 0) {
        pgs_wrap(e, "cannot plan the prune");
        goto out;
    }
    if ((o = prune_plan_to_json(plan)) == NULL ||
        json_object_set_new(o, "dry_run", json_boolean(dry_run)) != 0) {
        rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
        goto out;
    }
    if (dry_run)
        goto out;

    prune_counts c;
    memset(&c, 0, sizeof(c));
    pgs_error ae = {0};
    int arc = prune_apply(cat, a->storage, plan, &c, &ae);
    if (counts_to_json(o, &c) != 0) {
        rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
        goto out;
    }
    char hb[32], detail[256], result[AUDIT_RESULT_MAX];
    snprintf(hb, sizeof(hb), "%" PRIu64, c.bytes_deleted);
    snprintf(detail, sizeof(detail),
             "{\"planned\":%zu,\"deleted\":%zu,\"skipped\":%zu,\"failed\":%zu,"
             "\"bytes_deleted\":%s}",
             c.planned, c.deleted, c.skipped, c.failed, hb);
    if (arc != 0 || c.failed > 0)
        snprintf(result, sizeof(result), "error: %s", ae.msg[0] ? ae.msg : "deletions failed");
    else
        snprintf(result, sizeof(result), "ok");
    log_info("api: prune by %s: deleted %zu of %zu backups (%s bytes), %zu skipped, %zu failed",
             job->who, c.deleted, c.planned, hb, c.skipped, c.failed);
    audit_detail(a, job, "prune", "all databases", result, detail);
out:
    prune_plan_free(plan);
    catalog_close(cat);
    if (rc != 0) {
        json_decref(o);
        o = NULL;
    }
    *out = o;
    return rc;
}

static void post_prune(api *a, api_job *job)
{
    nng_aio *aio = job->aio;
    pgs_error e = {0};
    void *body = NULL;
    size_t len = 0;
    nng_http_req_get_data(job->req, &body, &len);
    api_prune_body in;
    /* Decoded before the role check only to name a refusal in the audit log. */
    int parsed = api_prune_body_parse(body, len, &in, &e);
    const char *target = parsed == 0 && in.dry_run ? "all databases (dry run)" : "all databases";
    if (!api_allowed_audit(a, job, API_ROLE_ADMIN, "POST /v1/prune", "prune", target))
        return;
    if (!api_json_content_type(job->req)) {
        audit_error(a, job, "prune", target, "not application/json");
        api_reply_error(aio, 415, "unsupported_media_type",
                        "send the body as Content-Type: application/json");
        return;
    }
    if (parsed != 0) {
        audit_error(a, job, "prune", target, e.msg);
        api_reply_error(aio, 400, "bad_request", "%s", e.msg);
        return;
    }
    if (!in.dry_run && a->storage == NULL) {
        audit_error(a, job, "prune", target, "this coordinator has no storage configured");
        api_reply_error(aio, 500, "internal", "this coordinator has no storage configured");
        return;
    }
    pthread_mutex_lock(&a->mu);
    int busy = a->pruning;
    a->pruning = 1;
    pthread_mutex_unlock(&a->mu);
    if (busy) {
        if (!in.dry_run)
            audit_error(a, job, "prune", target, "a prune is already running");
        api_reply_error(aio, 409, "conflict",
                        "a prune is already running; try again when it has ended");
        return;
    }
    json_t *o = NULL;
    int rc = run_prune(a, job, in.dry_run, &o, &e);
    pthread_mutex_lock(&a->mu);
    a->pruning = 0;
    pthread_mutex_unlock(&a->mu);
    if (rc != 0) {
        log_error("api: prune by %s: %s", job->who, e.msg);
        if (!in.dry_run)
            audit_error(a, job, "prune", target, e.msg);
        api_reply_error(aio, 500, "internal", "%s", e.msg);
        return;
    }
    api_reply_json(aio, 200, o);
}

/* ---- POST /v1/backups/ID/pin and /unpin ---- */

static void post_pin(api *a, api_job *job, const char *id, int pin)
{
    nng_aio *aio = job->aio;
    const char *action = pin ? "pin" : "unpin";
    pgs_error e = {0};
    char what[48];
    snprintf(what, sizeof(what), "POST /v1/backups/ID/%s", action);
    if (!api_allowed_audit(a, job, pin ? API_ROLE_OPERATE : API_ROLE_ADMIN, what, action, id))
        return;
    void *body = NULL;
    size_t len = 0;
    nng_http_req_get_data(job->req, &body, &len);
    if (len > 0 && !api_json_content_type(job->req)) {
        audit_error(a, job, action, id, "not application/json");
        api_reply_error(aio, 415, "unsupported_media_type",
                        "send no body, or {} as Content-Type: application/json");
        return;
    }
    if (api_empty_body_parse(body, len, &e) != 0) {
        audit_error(a, job, action, id, e.msg);
        api_reply_error(aio, 400, "bad_request", "%s", e.msg);
        return;
    }
    if (!catalog_id_valid(id)) {
        audit_error(a, job, action, id, "no such backup (not a backup id)");
        api_reply_error(aio, 404, "not_found", "no such backup (not a backup id)");
        return;
    }
    catalog_backup b;
    api_cat_lock(a);
    /* with its marker in storage, so that a catalog rebuild keeps the pin (prune.h) */
    int rc = prune_pin(a->cat, a->storage, id, pin, job->who, &e);
    if (rc == 0)
        rc = catalog_backup_get(a->cat, id, &b, &e);
    api_cat_unlock(a);
    if (rc != 0) {
        audit_error(a, job, action, id, e.msg);
        api_reply_pgs(aio, &e);
        return;
    }
    log_info("api: backup %s %s by %s", id, pin ? "pinned" : "unpinned", job->who);
    api_audit(a, job, action, id, "ok");
    json_t *o = catalog_backup_to_json(&b);
    if (o == NULL) {
        api_reply_error(aio, 500, "internal", "out of memory");
        return;
    }
    api_reply_json(aio, 200, o);
}

/* ---- GET /v1/stats ---- */

typedef struct stats_acc {
    json_t *list;
    size_t ndb;
    uint64_t complete, bytes, failed;
    char newest[CATALOG_TIME_SIZE], oldest[CATALOG_TIME_SIZE];
    int bad;
} stats_acc;

static int stats_cb(void *arg, const catalog_db_stats *s)
{
    stats_acc *acc = arg;
    if (json_array_append_new(acc->list, catalog_stats_to_json(s)) != 0)
        return acc->bad = PGS_ENOMEM;
    acc->ndb++;
    acc->complete += s->complete;
    acc->bytes += s->total_bytes;
    acc->failed += s->failed;
    /* Catalog times have one fixed width: their text order is their time order. */
    if (s->newest_complete[0] != '\0' &&
        (acc->newest[0] == '\0' || strcmp(s->newest_complete, acc->newest) > 0))
        snprintf(acc->newest, sizeof(acc->newest), "%s", s->newest_complete);
    if (s->oldest_complete[0] != '\0' &&
        (acc->oldest[0] == '\0' || strcmp(s->oldest_complete, acc->oldest) < 0))
        snprintf(acc->oldest, sizeof(acc->oldest), "%s", s->oldest_complete);
    return 0;
}

static void get_stats(api *a, nng_aio *aio)
{
    pgs_error e = {0};
    stats_acc acc;
    memset(&acc, 0, sizeof(acc));
    if ((acc.list = json_array()) == NULL) {
        api_reply_error(aio, 500, "internal", "out of memory");
        return;
    }
    api_cat_lock(a);
    int rc = catalog_stats(a->cat, stats_cb, &acc, &e);
    api_cat_unlock(a);
    if (rc == 0 && acc.bad != 0)
        rc = pgs_fail(&e, acc.bad, "out of memory");
    if (rc != 0) {
        json_decref(acc.list);
        api_reply_pgs(aio, &e);
        return;
    }
    json_t *total = json_object(), *o = json_object();
    int bad = total == NULL || o == NULL;
    if (!bad) {
        bad |= json_object_set_new(total, "databases", json_integer((json_int_t)acc.ndb));
        bad |= json_object_set_new(total, "complete", json_integer((json_int_t)acc.complete));
        bad |= json_object_set_new(total, "total_bytes", json_integer((json_int_t)acc.bytes));
        bad |= json_object_set_new(
            total, "average_bytes",
            json_integer(acc.complete ? (json_int_t)(acc.bytes / acc.complete) : 0));
        bad |= json_object_set_new(total, "newest_complete", api_text_or_null(acc.newest));
        bad |= json_object_set_new(total, "oldest_complete", api_text_or_null(acc.oldest));
        bad |= json_object_set_new(total, "failed", json_integer((json_int_t)acc.failed));
        bad |= json_object_set(o, "databases", acc.list);
        bad |= json_object_set(o, "total", total);
    }
    json_decref(acc.list);
    json_decref(total);
    if (bad) {
        json_decref(o);
        api_reply_error(aio, 500, "internal", "out of memory");
        return;
    }
    api_reply_json(aio, 200, o);
}

/* ---- GET /v1/audit ---- */

typedef struct audit_acc {
    json_t *list;
    unsigned limit;
    int more;
    int bad;
} audit_acc;

static int audit_cb(void *arg, const catalog_audit_entry *en)
{
    audit_acc *acc = arg;
    if (json_array_size(acc->list) >= acc->limit) {
        acc->more = 1;
        return 1;
    }
    if (json_array_append_new(acc->list, catalog_audit_to_json(en)) != 0)
        return acc->bad = PGS_ENOMEM;
    return 0;
}

static void get_audit(api *a, api_job *job, const char *query)
{
    nng_aio *aio = job->aio;
    pgs_error e = {0};
    unsigned limit = API_AUDIT_DEFAULT;
    if (!api_allowed(job, API_ROLE_ADMIN, "GET /v1/audit"))
        return;
    if (api_audit_query_parse(query, &limit, &e) != 0) {
        api_reply_error(aio, 400, "bad_request", "%s", e.msg);
        return;
    }
    audit_acc acc = {json_array(), limit, 0, 0};
    if (acc.list == NULL) {
        api_reply_error(aio, 500, "internal", "out of memory");
        return;
    }
    api_cat_lock(a);
    int rc = catalog_audit_list(a->cat, limit + 1, audit_cb, &acc, &e); /* one more: "more" */
    api_cat_unlock(a);
    if (rc == 0 && acc.bad != 0)
        rc = pgs_fail(&e, acc.bad, "out of memory");
    if (rc != 0) {
        json_decref(acc.list);
        api_reply_pgs(aio, &e);
        return;
    }
    json_t *o = json_object();
    if (o == NULL || json_object_set_new(o, "entries", acc.list) != 0 ||
        json_object_set_new(o, "more", json_boolean(acc.more)) != 0) {
        json_decref(o);
        api_reply_error(aio, 500, "internal", "out of memory");
        return;
    }
    api_reply_json(aio, 200, o);
}

/* ---- routing ---- */

/* A GET (or HEAD) without a query: 1 when the request may go on, else answered. */
static int plain_get(nng_aio *aio, const char *method, const char *query)
{
    if (!api_is_get(method)) {
        api_method_not_allowed(aio, "GET, HEAD");
        return 0;
    }
    if (query != NULL && query[0] != '\0') {
        api_reply_error(aio, 400, "bad_request", "this endpoint takes no query parameters");
        return 0;
    }
    return 1;
}

/* A POST without a query: 1 when the request may go on, else answered. */
static int plain_post(nng_aio *aio, const char *method, const char *query)
{
    if (strcmp(method, "POST") != 0) {
        api_method_not_allowed(aio, "POST");
        return 0;
    }
    if (query != NULL && query[0] != '\0') {
        api_reply_error(aio, 400, "bad_request", "this endpoint takes no query parameters");
        return 0;
    }
    return 1;
}

int api_ops_route(api *a, api_job *job, const char *method, const char *path, const char *query)
{
    nng_aio *aio = job->aio;
    if (strcmp(path, "/v1/schedules") == 0) {
        if (plain_get(aio, method, query))
            get_schedules(a, aio);
        return 1;
    }
    if (strcmp(path, "/v1/prune") == 0) {
        if (plain_post(aio, method, query))
            post_prune(a, job);
        return 1;
    }
    if (strcmp(path, "/v1/stats") == 0) {
        if (plain_get(aio, method, query))
            get_stats(a, aio);
        return 1;
    }
    if (strcmp(path, "/v1/audit") == 0) {
        if (!api_is_get(method))
            api_method_not_allowed(aio, "GET, HEAD");
        else
            get_audit(a, job, query);
        return 1;
    }
    if (strncmp(path, "/v1/backups/", 12) == 0) {
        const char *rest = path + 12, *slash = strchr(rest, '/');
        if (slash == NULL)
            return 0;
        int pin = strcmp(slash, "/pin") == 0;
        if (!pin && strcmp(slash, "/unpin") != 0)
            return 0; /* another file's, or api.c's 404 */
        char id[CATALOG_ID_SIZE];
        size_t idlen = (size_t)(slash - rest);
        if (idlen == 0 || idlen >= sizeof(id)) {
            api_reply_error(aio, 404, "not_found", "no such backup (not a backup id)");
            return 1;
        }
        memcpy(id, rest, idlen);
        id[idlen] = '\0';
        if (plain_post(aio, method, query))
            post_pin(a, job, id, pin);
        return 1;
    }
    return 0;
}
