/*
 * The API's verification routes (docs/api.md, "Verifications"):
 *
 *   POST /v1/backups/ID/verify   {"restore_test": bool} -> 202 {"id", "verification"}; role
 *                                operate. The verifier (coordinator/verify.h) picks the agent.
 *   GET  /v1/verifications       ?backup=ID&agent=NAME&state=S&limit=N -> {"verifications",
 *                                "more"}, newest first
 *   GET  /v1/verifications/ID    one verification, its report, and its live progress while it
 *                                is queued or running
 *
 * The decoders of what a client sends (the body, the query) are strict and exposed in
 * api_verify.h for the tests and the fuzzer; nothing else of a request is read.
 */
#include "coordinator/api_verify.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "coordinator/api_internal.h"
#include "coordinator/verify.h"
#include "proto/jsonutil.h"

/* A listing stops adding verifications once their reports pass this many bytes (and says
 * "more"), as restores do: each report may be up to 1 MiB. */
#define API_VERIFY_REPORT_BUDGET (16u * 1024 * 1024)

/* ---- decoders ---- */

int api_verify_body_parse(const void *body, size_t len, api_verify_body *out, pgs_error *e)
{
    static const char *const allowed[] = {"restore_test", NULL};
    memset(out, 0, sizeof(*out));
    if (len == 0)
        return 0; /* no body: a plain verification */
    json_t *root = jsonu_load_object(body, len, API_BODY_MAX, "the request body", e);
    if (root == NULL)
        return e != NULL ? e->code : PGS_EFORMAT;
    int rc = jsonu_only_keys(root, allowed, e);
    json_t *v = json_object_get(root, "restore_test");
    if (rc == 0 && v != NULL && !json_is_boolean(v))
        rc = pgs_fail(e, PGS_EFORMAT, "field \"restore_test\" is not true or false");
    if (rc == 0)
        out->restore_test = json_is_true(v);
    json_decref(root);
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* %XX and '+' decoded in place; -1 on a bad escape or an escaped NUL. */
static int pct_decode(char *s)
{
    char *w = s;
    for (const char *r = s; *r; r++) {
        if (*r == '%') {
            int hi = hexval(r[1]), lo = hi < 0 ? -1 : hexval(r[2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return -1;
            *w++ = (char)(hi * 16 + lo);
            r += 2;
        } else {
            *w++ = *r == '+' ? ' ' : *r;
        }
    }
    *w = '\0';
    return 0;
}

int api_verify_query_parse(const char *query, api_verify_query *out, pgs_error *e)
{
    static const char *const keys[] = {"backup", "agent", "state", "limit"};
    memset(out, 0, sizeof(*out));
    out->limit = API_VERIFY_LIST_DEFAULT;
    if (query == NULL || query[0] == '\0')
        return 0;
    if (strnlen(query, API_VERIFY_QUERY_MAX + 1) > API_VERIFY_QUERY_MAX)
        return pgs_fail(e, PGS_ELIMIT, "the query string is longer than %d bytes",
                        API_VERIFY_QUERY_MAX);
    char buf[API_VERIFY_QUERY_MAX + 1];
    snprintf(buf, sizeof(buf), "%s", query);
    unsigned seen = 0;
    char *save = NULL;
    for (char *p = strtok_r(buf, "&", &save); p != NULL; p = strtok_r(NULL, "&", &save)) {
        char *v = strchr(p, '=');
        if (v == NULL)
            return pgs_fail(e, PGS_EINVAL, "query parameters are name=value");
        *v++ = '\0';
        if (pct_decode(p) != 0 || pct_decode(v) != 0)
            return pgs_fail(e, PGS_EINVAL, "bad %%-escape in the query string");
        unsigned k = 0;
        while (k < 4 && strcmp(keys[k], p) != 0)
            k++;
        if (k == 4)
            return pgs_fail(e, PGS_EINVAL,
                            "unknown query parameter (known: backup, agent, state, limit)");
        if (seen & (1u << k))
            return pgs_fail(e, PGS_EINVAL, "query parameter %s is given twice", keys[k]);
        seen |= 1u << k;
        if (k == 0) {
            if (!catalog_id_valid(v))
                return pgs_fail(e, PGS_EINVAL, "backup is not a backup id");
            snprintf(out->backup, sizeof(out->backup), "%s", v);
        } else if (k == 1) {
            if (!catalog_name_valid(v))
                return pgs_fail(e, PGS_EINVAL, "agent is not a valid name");
            snprintf(out->agent, sizeof(out->agent), "%s", v);
        } else if (k == 2) {
            if (strcmp(v, "any") == 0)
                out->state = CATALOG_VERIFY_ANY;
            else if (catalog_verify_state_parse(v, &out->state) != 0)
                return pgs_fail(e, PGS_EINVAL, "state must be queued, running, ok, failed or any");
        } else {
            size_t n = strlen(v);
            unsigned long x = 0;
            int ok = n >= 1 && n <= 5 && strspn(v, "0123456789") == n;
            if (ok)
                x = strtoul(v, NULL, 10);
            if (!ok || x < 1 || x > API_VERIFY_LIST_MAX)
                return pgs_fail(e, PGS_EINVAL, "limit must be a number from 1 to %d",
                                API_VERIFY_LIST_MAX);
            out->limit = (unsigned)x;
        }
    }
    return 0;
}

/* ---- helpers ---- */

/* Where a live verification is, from the fleet (the job id on the wire is the verification's):
 * {"phase", "step", "detail", "bytes", "started_at"}; json null when the fleet no longer has it. */
static json_t *progress_json(api *a, const char *id)
{
    fleet_progress p;
    if (a->fleet == NULL || fleet_job_progress(a->fleet, id, &p) != 1)
        return json_null();
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    json_object_set_new(o, "phase", json_string(fleet_phase_name(p.phase)));
    json_object_set_new(o, "step", api_agent_text(p.step));
    json_object_set_new(o, "detail", api_agent_text(p.detail));
    json_object_set_new(o, "bytes", json_integer((json_int_t)p.bytes));
    if (p.started_ms > 0) {
        char t[CATALOG_TIME_SIZE];
        api_time_ms_text(p.started_ms, t);
        json_object_set_new(o, "started_at", json_string(t));
    } else {
        json_object_set_new(o, "started_at", json_null());
    }
    return o;
}

/* The status and code for verifier_request's refusals (verify.h lists them). */
static uint16_t verify_status(int code, const char **name)
{
    switch (code) {
    case PGS_EINVAL:
    case PGS_EFORMAT:
        *name = "bad_request";
        return 400;
    case PGS_ENOTFOUND: /* the backup was found: no agent can do it now */
        *name = "no_agent";
        return 409;
    case PGS_EORDER:
        *name = "not_complete";
        return 409;
    case PGS_ELIMIT:
        *name = "busy";
        return 429;
    default:
        *name = "internal";
        return 500;
    }
}

/* ---- POST /v1/backups/ID/verify ---- */

/* The audit entry of a refused verification: "error: " and why (api_audit in api_ops.c). */
static void audit_error(api *a, api_job *job, const char *backup_id, const char *why)
{
    char result[CATALOG_ERROR_MAX + 8];
    snprintf(result, sizeof(result), "error: %s", why);
    api_audit(a, job, "verify", backup_id, result);
}

static void post_verify(api *a, api_job *job, const char *backup_id)
{
    nng_aio *aio = job->aio;
    pgs_error e = {0};
    void *body = NULL;
    size_t len = 0;
    nng_http_req_get_data(job->req, &body, &len);
    if (len > 0 && !api_json_content_type(job->req)) {
        audit_error(a, job, backup_id, "not application/json");
        api_reply_error(aio, 415, "unsupported_media_type",
                        "send the body as Content-Type: application/json");
        return;
    }
    api_verify_body in;
    if (api_verify_body_parse(body, len, &in, &e) != 0) {
        audit_error(a, job, backup_id, e.msg);
        api_reply_error(aio, 400, "bad_request", "%s", e.msg);
        return;
    }
    if (!catalog_id_valid(backup_id)) {
        audit_error(a, job, backup_id, "not a backup id");
        api_reply_error(aio, 404, "not_found", "no such backup (not a backup id)");
        return;
    }
    if (a->verifier == NULL) {
        static const char why[] =
            "this coordinator runs no verifications (its API serves without agents)";
        audit_error(a, job, backup_id, why);
        api_reply_error(aio, 409, "not_connected", "%s", why);
        return;
    }
    char id[CATALOG_ID_SIZE] = "";
    catalog_backup b;
    catalog_verification v;
    memset(&v, 0, sizeof(v));
    api_cat_lock(a);
    int found = catalog_backup_get(a->cat, backup_id, &b, &e);
    int rc = found == 0 ? verifier_request(a->verifier, a->cat, backup_id, in.restore_test,
                                           job->who, id, &e)
                        : found;
    int got = rc == 0 ? catalog_verify_get(a->cat, id, &v, &e) : rc;
    api_cat_unlock(a);
    if (found == PGS_ENOTFOUND) {
        audit_error(a, job, backup_id, "no such backup");
        api_reply_error(aio, 404, "not_found", "no backup %s in the catalog", backup_id);
        return;
    }
    if (rc != 0) {
        const char *name = "internal";
        uint16_t st = found != 0 ? 500 : verify_status(rc, &name);
        if (st == 500)
            log_error("api: verify %s: %s", backup_id, e.msg);
        audit_error(a, job, backup_id, e.msg);
        api_reply_error(aio, st, name, "%s", e.msg);
        return;
    }
    api_audit(a, job, "verify", backup_id, "ok");
    if (got != 0) { /* queued, but it cannot be read back: say so, with its id */
        log_error("api: verification %s: %s", id, e.msg);
        api_reply_error(aio, 500, "internal", "verification %s was queued but cannot be read: %s",
                        id, e.msg);
        return;
    }
    log_info("api: verification %s of backup %s requested by %s%s", id, backup_id, job->who,
             in.restore_test ? " (restore test)" : "");
    json_t *o = json_object(), *vo = catalog_verification_to_json(&v);
    catalog_verification_clear(&v);
    if (o == NULL || vo == NULL || json_object_set_new(o, "id", json_string(id)) != 0 ||
        json_object_set_new(o, "verification", vo) != 0) {
        json_decref(o);
        api_reply_error(aio, 500, "internal", "out of memory");
        return;
    }
    api_reply_json(aio, 202, o);
}

/* ---- GET /v1/verifications ---- */

typedef struct vlist {
    json_t *arr;
    unsigned limit;
    size_t report_bytes;
    int more;
    int bad;
} vlist;

static int list_cb(void *arg, const catalog_verification *v)
{
    vlist *l = arg;
    size_t n = json_array_size(l->arr);
    if (n >= l->limit || (n > 0 && l->report_bytes > API_VERIFY_REPORT_BUDGET)) {
        l->more = 1;
        return 1;
    }
    l->report_bytes += v->report_json != NULL ? strlen(v->report_json) : 0;
    if (json_array_append_new(l->arr, catalog_verification_to_json(v)) != 0)
        return l->bad = PGS_ENOMEM;
    return 0;
}

static void get_verifications(api *a, nng_aio *aio, const char *query)
{
    pgs_error e = {0};
    api_verify_query q;
    if (api_verify_query_parse(query, &q, &e) != 0) {
        api_reply_error(aio, 400, "bad_request", "%s", e.msg);
        return;
    }
    catalog_verify_filter f = {.backup_id = q.backup[0] ? q.backup : NULL,
                               .agent = q.agent[0] ? q.agent : NULL,
                               .state = q.state,
                               .limit = q.limit + 1}; /* one more tells whether there are more */
    vlist l = {json_array(), q.limit, 0, 0, 0};
    if (l.arr == NULL) {
        api_reply_error(aio, 500, "internal", "out of memory");
        return;
    }
    api_cat_lock(a);
    int rc = catalog_verify_list(a->cat, &f, list_cb, &l, &e);
    api_cat_unlock(a);
    if (rc == 0 && l.bad != 0)
        rc = pgs_fail(&e, l.bad, "out of memory");
    if (rc != 0) {
        json_decref(l.arr);
        api_reply_pgs(aio, &e);
        return;
    }
    json_t *res = json_object();
    if (res == NULL) {
        json_decref(l.arr);
        api_reply_error(aio, 500, "internal", "out of memory");
        return;
    }
    json_object_set_new(res, "verifications", l.arr);
    json_object_set_new(res, "more", json_boolean(l.more));
    api_reply_json(aio, 200, res);
}

static void get_verification(api *a, nng_aio *aio, const char *id)
{
    pgs_error e = {0};
    if (!catalog_id_valid(id)) {
        api_reply_error(aio, 404, "not_found", "no such verification (not a verification id)");
        return;
    }
    catalog_verification v;
    api_cat_lock(a);
    int rc = catalog_verify_get(a->cat, id, &v, &e);
    api_cat_unlock(a);
    if (rc != 0) {
        api_reply_pgs(aio, &e);
        return;
    }
    int live = v.state == CATALOG_VERIFY_QUEUED || v.state == CATALOG_VERIFY_RUNNING;
    json_t *o = catalog_verification_to_json(&v);
    catalog_verification_clear(&v);
    json_t *p = live ? progress_json(a, id) : json_null();
    if (o == NULL || p == NULL || json_object_set_new(o, "progress", p) != 0) {
        json_decref(o);
        api_reply_error(aio, 500, "internal", "out of memory");
        return;
    }
    api_reply_json(aio, 200, o);
}

/* ---- routing ---- */

int api_verify_route(api *a, api_job *job, const char *method, const char *path, const char *query)
{
    nng_aio *aio = job->aio;
    int has_query = query != NULL && query[0] != '\0';
    if (strncmp(path, "/v1/backups/", 12) == 0) {
        const char *rest = path + 12, *slash = strchr(rest, '/');
        if (slash == NULL || strcmp(slash, "/verify") != 0)
            return 0;
        size_t idlen = (size_t)(slash - rest);
        char id[CATALOG_ID_SIZE];
        if (idlen == 0 || idlen >= sizeof(id)) {
            api_reply_error(aio, 404, "not_found", "no such backup (not a backup id)");
            return 1;
        }
        memcpy(id, rest, idlen);
        id[idlen] = '\0';
        if (strcmp(method, "POST") != 0)
            api_method_not_allowed(aio, "POST");
        else if (has_query)
            api_reply_error(aio, 400, "bad_request", "POST /v1/backups/ID/verify takes no query");
        else if (api_allowed_audit(a, job, API_ROLE_OPERATE, "POST /v1/backups/ID/verify", "verify",
                                   id))
            post_verify(a, job, id);
        return 1;
    }
    if (strcmp(path, "/v1/verifications") == 0) {
        if (!api_is_get(method))
            api_method_not_allowed(aio, "GET, HEAD");
        else
            get_verifications(a, aio, query);
        return 1;
    }
    if (strncmp(path, "/v1/verifications/", 18) == 0) {
        const char *id = path + 18;
        if (id[0] == '\0' || strlen(id) >= CATALOG_ID_SIZE || strchr(id, '/') != NULL)
            api_reply_error(aio, 404, "not_found", "no such endpoint");
        else if (!api_is_get(method))
            api_method_not_allowed(aio, "GET, HEAD");
        else if (has_query)
            api_reply_error(aio, 400, "bad_request", "this endpoint takes no query parameters");
        else
            get_verification(a, aio, id);
        return 1;
    }
    return 0;
}
