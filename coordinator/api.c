/*
 * The coordinator's admin HTTP API (see api.h for the threads, docs/api.md for the endpoints).
 *
 * One nng handler takes every path and method. It runs on nng's task threads, which also carry
 * the agents' traffic, so it does no more than check the token (a constant-time comparison of
 * BLAKE2b digests, which hides the token's length too) and queue the request; API_WORKERS
 * threads route it, do the catalog and fleet work and complete nng's aio with a response.
 *
 * Downloads cannot go through nng's handler API, which wants a whole body in memory: the worker
 * takes the connection over (nng_http_hijack) and gives it to a thread of its own, which writes
 * the response header and then each piece storage_get hands it, waiting for every write before
 * taking the next piece. A slow client therefore slows the storage read instead of growing a
 * buffer (docs/decisions.md says why this and not HTTP ranges).
 *
 * Lifetime: nng may run the handler until its last reference to the handler is dropped, which
 * can be after api_stop has returned. The handler therefore holds a reference to the api struct
 * (dropped by the handler's destructor) and, once stopping is set, answers 503 from the struct
 * alone; everything else (catalog, threads, server) is released by api_stop.
 */
#include "coordinator/api.h"
#include "coordinator/api_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <sodium.h>

#include "common/log.h"
#include "common/sha256.h"
#include "coordinator/status.h"
#include "proto/jsonutil.h"

/* Downloads are written in pieces of at most API_WRITE_PIECE bytes; a client that does not take
 * one piece within API_WRITE_TIMEOUT_MS (about 2 KiB/s) is dropped, so that a stalled client
 * cannot hold a download slot and its storage read for ever. */
#define API_WRITE_PIECE (256 * 1024)
#define API_WRITE_TIMEOUT_MS (120 * 1000)
#define API_QUERY_MAX 2048
#define API_TOKEN_MAX 4096 /* as the coordinator's secret files */


struct api_fetch {
    api *a;
    pthread_t thread;
    int started; /* thread was created: join it */
    int done;    /* the thread has ended (under a->mu) */
    nng_http_conn *conn;
    nng_http_req *req;
    nng_aio *aio;
    int head;
    char id[CATALOG_ID_SIZE];
    char key[CATALOG_STORAGE_KEY_MAX + 1];
    char sha256[CATALOG_SHA256_HEX_LEN + 1];
    uint64_t size;
    uint64_t sent;
    int header_sent;
    int client_gone; /* a write to the client failed or stalled */
};


/* ---- lifetime ---- */

static void api_unref(api *a)
{
    pthread_mutex_lock(&a->mu);
    int left = --a->refs;
    pthread_mutex_unlock(&a->mu);
    if (left > 0)
        return;
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->mu);
    pthread_mutex_destroy(&a->cat_mu);
    free(a->catalog_path);
    free(a);
}

static void api_handler_dtor(void *arg)
{
    api_unref(arg);
}

/* ---- responses ---- */

/* A printable, bounded copy of request text for logs: a path may hold anything. */
void api_log_clean(const char *s, char *out, size_t outlen)
{
    size_t j = 0;
    for (size_t i = 0; s != NULL && s[i] != '\0' && j + 1 < outlen; i++) {
        unsigned char c = (unsigned char)s[i];
        out[j++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    out[j] = '\0';
}

/* A response with a JSON body (json is taken), or NULL when out of memory. */
static nng_http_res *json_res(uint16_t status, json_t *json)
{
    nng_http_res *res = NULL;
    char *text = json != NULL ? json_dumps(json, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(json);
    if (text == NULL || nng_http_res_alloc(&res) != 0)
        goto fail;
    if (nng_http_res_set_status(res, status) != 0 ||
        nng_http_res_set_header(res, "Content-Type", "application/json") != 0 ||
        nng_http_res_set_header(res, "Cache-Control", "no-store") != 0)
        goto fail;
    /* nng's reason phrase comes from the status; a body ends with a newline for curl users. */
    size_t n = strlen(text);
    text[n] = '\n';
    int rv = nng_http_res_copy_data(res, text, n + 1);
    text[n] = '\0';
    if (rv != 0)
        goto fail;
    free(text);
    return res;
fail:
    free(text);
    if (res != NULL)
        nng_http_res_free(res);
    return NULL;
}

static json_t *error_json(const char *code, const char *msg)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    json_t *m = json_string(msg);
    if (m == NULL) /* not UTF-8: keep what a reader can use */
        m = json_string("(message not valid UTF-8)");
    json_object_set_new(o, "error", m);
    json_object_set_new(o, "code", json_string(code));
    return o;
}

/* Completes a handler's aio with res; NULL (out of memory) closes the connection. */
void api_finish_res(nng_aio *aio, nng_http_res *res)
{
    if (res == NULL) {
        nng_aio_finish(aio, NNG_ENOMEM);
        return;
    }
    nng_aio_set_output(aio, 0, res);
    nng_aio_finish(aio, 0);
}

void api_reply_json(nng_aio *aio, uint16_t status, json_t *json)
{
    api_finish_res(aio, json_res(status, json));
}

void api_reply_error(nng_aio *aio, uint16_t status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

void api_reply_error(nng_aio *aio, uint16_t status, const char *code, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    nng_http_res *res = json_res(status, error_json(code, msg));
    if (res != NULL && status == 401)
        nng_http_res_set_header(res, "WWW-Authenticate", "Bearer realm=\"pgship\"");
    api_finish_res(aio, res);
}

/* The HTTP status and code for a pgs_error from the catalog or the fleet. */
static uint16_t status_of(int code, const char **name)
{
    switch (code) {
    case PGS_ENOTFOUND:
        *name = "not_found";
        return 404;
    case PGS_EINVAL:
    case PGS_ELIMIT:
    case PGS_EFORMAT:
        *name = "bad_request";
        return 400;
    case PGS_EORDER:
    case PGS_EEXIST:
        *name = "conflict";
        return 409;
    case PGS_EDENIED:
        *name = "denied";
        return 403;
    default:
        *name = "internal";
        return 500;
    }
}

void api_reply_pgs(nng_aio *aio, const pgs_error *e)
{
    const char *name;
    uint16_t st = status_of(e->code, &name);
    if (st == 500)
        log_error("api: %s", e->msg);
    api_reply_error(aio, st, name, "%s", e->msg);
}

/* ---- authentication ---- */

static void token_hash(const char *token, size_t len, uint8_t out[API_TOKEN_HASH_LEN])
{
    crypto_generichash(out, API_TOKEN_HASH_LEN, (const unsigned char *)token, len, NULL, 0);
}

/* The role of the token req carries (its name into who), or 0: "Authorization: Bearer <token>",
 * or, for GET and HEAD only, "Basic" with the token as the password (browsers on the status
 * page). Basic is kept to the read methods because a browser, once it holds Basic credentials,
 * sends them with every request to the origin, cross-site form posts included: a POST that does
 * not insist on a JSON body would then be open to any web page the operator visits. Called
 * under a->mu. */
static int authorized(const api *a, nng_http_req *req, char who[API_WHO_MAX + 1])
{
    char tok[API_TOKEN_MAX + 1];
    size_t n = 0;
    int scheme = status_auth_token(nng_http_req_get_header(req, "Authorization"), tok,
                                   sizeof(tok), &n);
    int role = 0;
    if (scheme == STATUS_AUTH_NONE ||
        (scheme == STATUS_AUTH_BASIC && !api_is_get(nng_http_req_get_method(req))))
        goto out;
    if (a->lookup != NULL) {
        role = a->lookup(a->lookup_arg, tok, who, API_WHO_MAX + 1);
        role = role >= API_ROLE_READ && role <= API_ROLE_ADMIN ? role : 0;
        goto out;
    }
    uint8_t got[API_TOKEN_HASH_LEN];
    token_hash(tok, n, got);
    if (sodium_memcmp(got, a->token_hash, API_TOKEN_HASH_LEN) == 0) {
        snprintf(who, API_WHO_MAX + 1, "api");
        role = API_ROLE_ADMIN;
    }
    sodium_memzero(got, sizeof(got));
out:
    sodium_memzero(tok, sizeof(tok));
    return role;
}

const char *api_role_name(int role)
{
    return role == API_ROLE_ADMIN ? "admin" : role == API_ROLE_OPERATE ? "operate" : "read";
}

/* 1 when job's token has at least role need; else answers 403 naming what is missing. */
int api_allowed(api_job *job, int need, const char *what)
{
    if (job->role >= need)
        return 1;
    log_warn("api: refused %s to %s (role %s): it needs role %s", what, job->who,
             api_role_name(job->role), api_role_name(need));
    api_reply_error(job->aio, 403, "forbidden", "%s needs a token with role %s; %s has role %s", what,
                api_role_name(need), job->who, api_role_name(job->role));
    return 0;
}

/* ---- the handler (nng's threads) ---- */

static void api_handle(nng_aio *aio)
{
    nng_http_req *req = nng_aio_get_input(aio, 0);
    nng_http_handler *h = nng_aio_get_input(aio, 1);
    nng_http_conn *conn = nng_aio_get_input(aio, 2);
    api *a = nng_http_handler_get_data(h);

    api_job *job = calloc(1, sizeof(*job));
    pthread_mutex_lock(&a->mu);
    if (a->stopping) {
        pthread_mutex_unlock(&a->mu);
        free(job);
        api_reply_error(aio, 503, "unavailable", "the coordinator is shutting down");
        return;
    }
    char who[API_WHO_MAX + 1] = "";
    int role = authorized(a, req, who);
    if (role == 0) {
        pthread_mutex_unlock(&a->mu);
        free(job);
        char path[128];
        api_log_clean(nng_http_req_get_uri(req), path, sizeof(path));
        log_warn("api: refused %s %s: no valid token", nng_http_req_get_method(req), path);
        if (status_is_page(nng_http_req_get_uri(req))) {
            /* A browser asks its user for Basic credentials only when challenged for Basic. */
            nng_http_res *res =
                json_res(401, error_json("unauthorized", "a valid API token is required"));
            if (res != NULL)
                nng_http_res_set_header(res, "WWW-Authenticate", "Basic realm=\"pgship\"");
            api_finish_res(aio, res);
        } else {
            api_reply_error(aio, 401, "unauthorized", "a valid API token is required");
        }
        return;
    }
    if (job == NULL || a->queued >= API_QUEUE_MAX) {
        pthread_mutex_unlock(&a->mu);
        free(job);
        api_reply_error(aio, 429, "busy", "too many requests in progress; try again");
        return;
    }
    job->role = role;
    memcpy(job->who, who, sizeof(job->who));
    job->aio = aio;
    job->req = req;
    job->conn = conn;
    if (a->tail != NULL)
        a->tail->next = job;
    else
        a->head = job;
    a->tail = job;
    a->queued++;
    pthread_cond_signal(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

/* ---- small helpers ---- */

void api_cat_lock(api *a)
{
    pthread_mutex_lock(&a->cat_mu);
}

void api_cat_unlock(api *a)
{
    pthread_mutex_unlock(&a->cat_mu);
}

/* RFC 3339 UTC with milliseconds, as the catalog writes times. */
void api_time_ms_text(int64_t ms, char out[CATALOG_TIME_SIZE])
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char buf[CATALOG_TIME_SIZE];
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, CATALOG_TIME_SIZE, "%s.%03dZ", buf, (int)(ms % 1000));
}

int64_t api_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

json_t *api_text_or_null(const char *s)
{
    return s != NULL && s[0] != '\0' ? json_string(s) : json_null();
}

int api_is_get(const char *m)
{
    return strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
}

/* ---- POST /v1/backups body ---- */

/* Length of the UTF-8 sequence at s and its code point; jansson has checked the encoding. */
static size_t utf8_next(const unsigned char *s, uint32_t *cp)
{
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if ((s[0] & 0xe0) == 0xc0) {
        *cp = ((uint32_t)(s[0] & 0x1f) << 6) | (s[1] & 0x3f);
        return 2;
    }
    if ((s[0] & 0xf0) == 0xe0) {
        *cp = ((uint32_t)(s[0] & 0x0f) << 12) | ((uint32_t)(s[1] & 0x3f) << 6) | (s[2] & 0x3f);
        return 3;
    }
    *cp = ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3f) << 12) |
          ((uint32_t)(s[2] & 0x3f) << 6) | (s[3] & 0x3f);
    return 4;
}

static int body_name(json_t *root, const char *field, char *dst, size_t cap, pgs_error *e)
{
    int rc = jsonu_get_str(root, field, dst, cap, e);
    if (rc != 0)
        return rc;
    if (!catalog_name_valid(dst))
        return pgs_fail(e, PGS_EINVAL,
                        "field \"%s\" is not a valid name (1-%d of A-Z a-z 0-9 . _ -, not "
                        "starting with . or -)",
                        field, CATALOG_NAME_MAX);
    return 0;
}

int api_backup_body_parse(const void *body, size_t len, api_backup_body *out, pgs_error *e)
{
    static const char *const allowed[] = {"agent", "database", "label", NULL};
    memset(out, 0, sizeof(*out));
    if (len == 0)
        return pgs_fail(e, PGS_EFORMAT, "the request body is empty; send a JSON object");
    json_t *root = jsonu_load_object(body, len, API_BODY_MAX, "the request body", e);
    if (root == NULL)
        return e != NULL ? e->code : PGS_EFORMAT;
    int rc = jsonu_only_keys(root, allowed, e);
    if (rc == 0)
        rc = body_name(root, "agent", out->agent, sizeof(out->agent), e);
    if (rc == 0)
        rc = body_name(root, "database", out->database, sizeof(out->database), e);
    if (rc == 0 && json_object_get(root, "label") != NULL) {
        rc = jsonu_get_str(root, "label", out->label, sizeof(out->label), e);
        const unsigned char *s = (const unsigned char *)out->label;
        for (size_t i = 0; rc == 0 && s[i] != '\0';) {
            uint32_t cp;
            i += utf8_next(s + i, &cp);
            if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
                rc = pgs_fail(e, PGS_EINVAL, "field \"label\" contains a control character");
        }
    }
    json_decref(root);
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

/* ---- POST /v1/restores body ---- */

/* 1 when s[0..n) is "AGENT/DATABASE" with both names valid; the names go to agent and db. */
static int split_names(const char *s, size_t n, char agent[CATALOG_NAME_MAX + 1],
                       char db[CATALOG_NAME_MAX + 1])
{
    const char *slash = memchr(s, '/', n);
    if (slash == NULL)
        return 0;
    size_t al = (size_t)(slash - s), dl = n - al - 1;
    if (al == 0 || al > CATALOG_NAME_MAX || dl == 0 || dl > CATALOG_NAME_MAX)
        return 0;
    memcpy(agent, s, al);
    agent[al] = '\0';
    memcpy(db, slash + 1, dl);
    db[dl] = '\0';
    return catalog_name_valid(agent) && catalog_name_valid(db);
}

/* An optional boolean field: absent is false. */
static int body_bool(json_t *root, const char *field, int *dst, pgs_error *e)
{
    json_t *v = json_object_get(root, field);
    if (v == NULL)
        return 0;
    if (!json_is_boolean(v))
        return pgs_fail(e, PGS_EFORMAT, "field \"%s\" is not true or false", field);
    *dst = json_is_true(v);
    return 0;
}

/* An optional name field (a profile, a role): absent is "". */
static int body_opt_name(json_t *root, const char *field, char *dst, size_t cap, pgs_error *e)
{
    if (json_object_get(root, field) == NULL)
        return 0;
    return body_name(root, field, dst, cap, e);
}

/* 0 when s (n bytes as jansson decoded them) is text without NULs or control characters. */
static int body_text_ok(const char *s, size_t n)
{
    if (strlen(s) != n)
        return -1;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        i += utf8_next((const unsigned char *)s + i, &cp);
        if (cp < 0x20 || (cp >= 0x7f && cp <= 0x9f))
            return -1;
    }
    return 0;
}

/* An optional array of pg_restore patterns (--schema, --table). */
static int body_patterns(json_t *root, const char *field, char (*dst)[128], size_t *count,
                         pgs_error *e)
{
    json_t *arr = json_object_get(root, field), *v;
    size_t i;
    if (arr == NULL)
        return 0;
    if (!json_is_array(arr))
        return pgs_fail(e, PGS_EFORMAT, "field \"%s\" is not an array of strings", field);
    if (json_array_size(arr) > RESTORE_PATTERNS_MAX)
        return pgs_fail(e, PGS_ELIMIT, "field \"%s\" has more than %d entries", field,
                        RESTORE_PATTERNS_MAX);
    json_array_foreach(arr, i, v)
    {
        if (!json_is_string(v))
            return pgs_fail(e, PGS_EFORMAT, "field \"%s\" is not an array of strings", field);
        size_t n = json_string_length(v);
        if (n == 0)
            return pgs_fail(e, PGS_EINVAL, "field \"%s\": entry %zu is empty", field, i + 1);
        if (n > 127)
            return pgs_fail(e, PGS_ELIMIT, "field \"%s\": entry %zu is longer than 127 bytes",
                            field, i + 1);
        if (body_text_ok(json_string_value(v), n) != 0)
            return pgs_fail(e, PGS_EINVAL, "field \"%s\": entry %zu contains a control character",
                            field, i + 1);
        memcpy(dst[i], json_string_value(v), n + 1);
    }
    *count = json_array_size(arr);
    return 0;
}

/* "source": a backup id or AGENT/DB@latest; AGENT/DB (the database to back up first) exactly
 * when fresh. */
static int body_source(json_t *root, restore_request *out, pgs_error *e)
{
    char agent[CATALOG_NAME_MAX + 1], db[CATALOG_NAME_MAX + 1];
    int rc = jsonu_get_str(root, "source", out->source, sizeof(out->source), e);
    if (rc != 0)
        return rc;
    const char *s = out->source;
    size_t n = strlen(s);
    int id = catalog_id_valid(s);
    int latest = n > 7 && strcmp(s + n - 7, "@latest") == 0 && split_names(s, n - 7, agent, db);
    int plain = !id && !latest && split_names(s, n, agent, db);
    if (out->fresh && !plain)
        return pgs_fail(e, PGS_EINVAL,
                        "with \"fresh\": true, field \"source\" is AGENT/DATABASE: the database "
                        "to back up first");
    if (!out->fresh && plain)
        return pgs_fail(e, PGS_EINVAL,
                        "field \"source\" is a backup id or AGENT/DATABASE@latest (AGENT/DATABASE "
                        "alone only with \"fresh\": true)");
    if (!id && !latest && !plain)
        return pgs_fail(e, PGS_EINVAL,
                        "field \"source\" is not a backup id (YYYYMMDDTHHMMSSZ-xxxxxxxx) or "
                        "AGENT/DATABASE@latest");
    return 0;
}

int api_restore_body_parse(const void *body, size_t len, restore_request *out, pgs_error *e)
{
    static const char *const allowed[] = {
        "source",        "fresh",    "target",      "profile",   "overwrite_prod",
        "safety_backup", "keep_old", "schema_only", "data_only", "no_owner",
        "role",          "jobs",     "schemas",     "tables",    NULL};
    char target[2 * CATALOG_NAME_MAX + 2];
    memset(out, 0, sizeof(*out));
    if (len == 0)
        return pgs_fail(e, PGS_EFORMAT, "the request body is empty; send a JSON object");
    json_t *root = jsonu_load_object(body, len, API_BODY_MAX, "the request body", e);
    if (root == NULL)
        return e != NULL ? e->code : PGS_EFORMAT;
    int rc = jsonu_only_keys(root, allowed, e);
    if (rc == 0)
        rc = body_bool(root, "fresh", &out->fresh, e);
    if (rc == 0)
        rc = body_source(root, out, e);
    if (rc == 0)
        rc = jsonu_get_str(root, "target", target, sizeof(target), e);
    if (rc == 0 && !split_names(target, strlen(target), out->target_agent, out->target_database))
        rc = pgs_fail(e, PGS_EINVAL,
                      "field \"target\" is not AGENT/DATABASE (names: 1-%d of A-Z a-z 0-9 . _ -, "
                      "not starting with . or -)",
                      CATALOG_NAME_MAX);
    if (rc == 0)
        rc = body_opt_name(root, "profile", out->profile, sizeof(out->profile), e);
    if (rc == 0)
        rc = body_opt_name(root, "role", out->role, sizeof(out->role), e);
    if (rc == 0)
        rc = body_bool(root, "overwrite_prod", &out->overwrite_prod, e);
    if (rc == 0)
        rc = body_bool(root, "safety_backup", &out->safety_backup, e);
    if (rc == 0)
        rc = body_bool(root, "keep_old", &out->keep_old, e);
    if (rc == 0)
        rc = body_bool(root, "schema_only", &out->schema_only, e);
    if (rc == 0)
        rc = body_bool(root, "data_only", &out->data_only, e);
    if (rc == 0)
        rc = body_bool(root, "no_owner", &out->no_owner, e);
    if (rc == 0 && out->schema_only && out->data_only)
        rc = pgs_fail(e, PGS_EINVAL, "\"schema_only\" and \"data_only\" exclude each other");
    json_t *jobs = json_object_get(root, "jobs");
    if (rc == 0 && jobs != NULL) {
        if (!json_is_integer(jobs))
            rc = pgs_fail(e, PGS_EFORMAT, "field \"jobs\" is not an integer");
        else if (json_integer_value(jobs) < 1 || json_integer_value(jobs) > RESTORE_JOBS_MAX)
            rc = pgs_fail(e, PGS_ELIMIT, "field \"jobs\" must be 1-%d", RESTORE_JOBS_MAX);
        else
            out->jobs = (unsigned)json_integer_value(jobs);
    }
    if (rc == 0)
        rc = body_patterns(root, "schemas", out->schemas, &out->nschemas, e);
    if (rc == 0)
        rc = body_patterns(root, "tables", out->tables, &out->ntables, e);
    json_decref(root);
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

/* ---- GET /v1/agents ---- */

typedef struct agents_acc {
    json_t *list;  /* the answer, by name */
    json_t *index; /* name -> the agent's object in list */
    int bad;
} agents_acc;

static int agents_cb(void *arg, const catalog_agent *ca)
{
    agents_acc *acc = arg;
    json_t *o = json_object();
    if (o == NULL)
        return acc->bad = PGS_ENOMEM;
    json_object_set_new(o, "name", json_string(ca->name));
    json_object_set_new(o, "connected", json_false());
    json_object_set_new(o, "version", api_text_or_null(ca->version));
    json_object_set_new(o, "key_id", api_text_or_null(ca->key_id));
    json_object_set_new(o, "first_seen", api_text_or_null(ca->first_seen));
    json_object_set_new(o, "last_seen", api_text_or_null(ca->last_seen));
    json_object_set_new(o, "connected_at", json_null());
    json_object_set_new(o, "databases", json_array());
    json_object_set_new(o, "jobs", json_array());
    if (json_array_append(acc->list, o) != 0 || json_object_set_new(acc->index, ca->name, o) != 0)
        return acc->bad = PGS_ENOMEM;
    return 0;
}

static int databases_cb(void *arg, const catalog_database *d)
{
    agents_acc *acc = arg;
    json_t *agent = json_object_get(acc->index, d->agent);
    if (agent == NULL)
        return 0;
    json_t *o = json_object();
    if (o == NULL)
        return acc->bad = PGS_ENOMEM;
    json_object_set_new(o, "name", json_string(d->name));
    json_object_set_new(o, "environment", json_string(d->environment));
    json_object_set_new(o, "server_version", api_text_or_null(d->server_version));
    json_object_set_new(o, "announced", json_false());
    json_object_set_new(o, "first_seen", api_text_or_null(d->first_seen));
    json_object_set_new(o, "last_seen", api_text_or_null(d->last_seen));
    if (json_array_append_new(json_object_get(agent, "databases"), o) != 0)
        return acc->bad = PGS_ENOMEM;
    return 0;
}

/* Copies a string field of the fleet's object when it is one. */
static void merge_text(json_t *dst, json_t *src, const char *key)
{
    json_t *v = json_object_get(src, key);
    if (json_is_string(v) && json_string_length(v) > 0)
        json_object_set(dst, key, v);
}

/* Folds one live agent (fleet_agents_json's shape) into the catalog's view. */
static int merge_live(agents_acc *acc, json_t *live)
{
    const char *name = json_string_value(json_object_get(live, "name"));
    if (name == NULL)
        return 0;
    json_t *o = json_object_get(acc->index, name);
    if (o == NULL) { /* live but not yet in the catalog: show it anyway */
        catalog_agent ca;
        memset(&ca, 0, sizeof(ca));
        snprintf(ca.name, sizeof(ca.name), "%s", name);
        if (agents_cb(acc, &ca) != 0)
            return acc->bad;
        o = json_object_get(acc->index, ca.name);
    }
    json_object_set_new(o, "connected", json_true());
    merge_text(o, live, "version");
    merge_text(o, live, "key_id");
    merge_text(o, live, "connected_at");
    json_t *jobs = json_object_get(live, "jobs");
    if (json_is_array(jobs))
        json_object_set(o, "jobs", jobs);
    json_t *dbs = json_object_get(o, "databases"), *ld;
    size_t i;
    json_array_foreach(json_object_get(live, "databases"), i, ld)
    {
        const char *dname = json_string_value(json_object_get(ld, "name"));
        if (dname == NULL)
            continue;
        json_t *d = NULL, *x;
        size_t j;
        json_array_foreach(dbs, j, x)
        {
            if (strcmp(json_string_value(json_object_get(x, "name")), dname) == 0) {
                d = x;
                break;
            }
        }
        if (d == NULL) {
            d = json_object();
            if (d == NULL || json_array_append_new(dbs, d) != 0)
                return acc->bad = PGS_ENOMEM;
            json_object_set_new(d, "name", json_string(dname));
            json_object_set_new(d, "environment", json_null());
            json_object_set_new(d, "server_version", json_null());
            json_object_set_new(d, "announced", json_true());
            json_object_set_new(d, "first_seen", json_null());
            json_object_set_new(d, "last_seen", json_null());
        }
        json_object_set_new(d, "announced", json_true());
        merge_text(d, ld, "environment");
        merge_text(d, ld, "server_version");
    }
    return 0;
}

static void get_agents(api *a, nng_aio *aio)
{
    pgs_error e = {0};
    agents_acc acc = {json_array(), json_object(), 0};
    json_t *live = NULL;
    if (acc.list == NULL || acc.index == NULL) {
        api_reply_error(aio, 500, "internal", "out of memory");
        goto out;
    }
    api_cat_lock(a);
    int rc = catalog_agents_list(a->cat, agents_cb, &acc, &e);
    if (rc == 0 && acc.bad == 0)
        rc = catalog_databases_list(a->cat, NULL, databases_cb, &acc, &e);
    api_cat_unlock(a);
    if (rc == 0 && acc.bad != 0)
        rc = pgs_fail(&e, acc.bad, "out of memory");
    if (rc != 0) {
        api_reply_pgs(aio, &e);
        goto out;
    }
    live = a->fleet != NULL ? fleet_agents_json(a->fleet) : json_array();
    if (live == NULL) {
        api_reply_error(aio, 500, "internal", "out of memory");
        goto out;
    }
    json_t *x;
    size_t i;
    json_array_foreach(live, i, x)
    {
        if (merge_live(&acc, x) != 0) {
            api_reply_error(aio, 500, "internal", "out of memory");
            goto out;
        }
    }
    json_t *res = json_object();
    if (res != NULL)
        json_object_set(res, "agents", acc.list);
    api_reply_json(aio, 200, res);
out:
    json_decref(live);
    json_decref(acc.list);
    json_decref(acc.index);
}

/* ---- GET /v1/backups ---- */

/* Decodes %XX in place; -1 on a broken escape or a NUL. */
static int pct_decode(char *s)
{
    char *d = s;
    for (; *s != '\0'; s++) {
        if (*s != '%') {
            *d++ = *s;
            continue;
        }
        int hi = hex_digit((unsigned char)s[1]), lo = hi >= 0 ? hex_digit((unsigned char)s[2]) : -1;
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
            return -1;
        *d++ = (char)(hi * 16 + lo);
        s += 2;
    }
    *d = '\0';
    return 0;
}

typedef struct list_query {
    char agent[CATALOG_NAME_MAX + 1];
    char database[CATALOG_NAME_MAX + 1];
    char environment[CATALOG_NAME_MAX + 1];
    enum catalog_state state;
    unsigned limit;
} list_query;

/* Parses "agent=&database=&environment=&state=&limit=" strictly: known keys, once each. */
static int parse_list_query(const char *query, list_query *q, pgs_error *e)
{
    memset(q, 0, sizeof(*q));
    q->limit = API_LIST_DEFAULT;
    if (query == NULL || query[0] == '\0')
        return 0;
    if (strlen(query) > API_QUERY_MAX)
        return pgs_fail(e, PGS_ELIMIT, "the query string is longer than %d bytes", API_QUERY_MAX);
    char buf[API_QUERY_MAX + 1];
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
        static const char *const keys[] = {"agent", "database", "environment", "state", "limit"};
        unsigned k = 0;
        while (k < 5 && strcmp(keys[k], p) != 0)
            k++;
        if (k == 5)
            return pgs_fail(e, PGS_EINVAL,
                            "unknown query parameter (known: agent, database, environment, "
                            "state, limit)");
        if (seen & (1u << k))
            return pgs_fail(e, PGS_EINVAL, "query parameter %s is given twice", keys[k]);
        seen |= 1u << k;
        if (k <= 2) {
            if (!catalog_name_valid(v))
                return pgs_fail(e, PGS_EINVAL, "%s is not a valid name", keys[k]);
            char *dst = k == 0 ? q->agent : k == 1 ? q->database : q->environment;
            snprintf(dst, CATALOG_NAME_MAX + 1, "%s", v);
        } else if (k == 3) {
            if (strcmp(v, "any") != 0 && catalog_state_parse(v, &q->state) != 0)
                return pgs_fail(e, PGS_EINVAL,
                                "state must be queued, running, complete, failed or any");
        } else {
            char *end;
            errno = 0;
            unsigned long n = strtoul(v, &end, 10);
            if (v[0] < '0' || v[0] > '9' || *end != '\0' || errno != 0 || n < 1 || n > API_LIST_MAX)
                return pgs_fail(e, PGS_EINVAL, "limit must be a number from 1 to %d", API_LIST_MAX);
            q->limit = (unsigned)n;
        }
    }
    return 0;
}

/* What a list callback gathers: the JSON rows, whether there are more than limit, and a
 * PGS_ENOMEM met on the way. */
typedef struct list_acc {
    json_t *arr;
    unsigned limit;
    size_t report_bytes; /* restores: the size of the reports listed so far */
    int more;
    int bad;
} list_acc;

static int backups_cb(void *arg, const catalog_backup *b)
{
    list_acc *acc = arg;
    if (json_array_size(acc->arr) >= acc->limit) {
        acc->more = 1;
        return 1;
    }
    if (json_array_append_new(acc->arr, catalog_backup_to_json(b)) != 0)
        return acc->bad = PGS_ENOMEM;
    return 0;
}

/* A catalog list (backups or restores) with a filter, feeding acc through its callback. */
typedef int (*list_fn)(catalog *cat, const catalog_filter *f, list_acc *acc, pgs_error *e);

/* GET /v1/backups and GET /v1/restores: the query's filter, at most limit rows under key, and
 * "more" when the catalog has another. */
static void get_list(api *a, nng_aio *aio, const char *query, const char *key, list_fn list)
{
    pgs_error e = {0};
    list_query q;
    if (parse_list_query(query, &q, &e) != 0) {
        api_reply_error(aio, 400, "bad_request", "%s", e.msg);
        return;
    }
    catalog_filter f = {
        .agent = q.agent[0] ? q.agent : NULL,
        .database = q.database[0] ? q.database : NULL,
        .environment = q.environment[0] ? q.environment : NULL,
        .state = q.state,
        .limit = q.limit + 1, /* one more tells whether there are more */
    };
    list_acc acc = {json_array(), q.limit, 0, 0, 0};
    if (acc.arr == NULL) {
        api_reply_error(aio, 500, "internal", "out of memory");
        return;
    }
    api_cat_lock(a);
    int rc = list(a->cat, &f, &acc, &e);
    api_cat_unlock(a);
    if (rc == 0 && acc.bad != 0)
        rc = pgs_fail(&e, acc.bad, "out of memory");
    if (rc != 0) {
        json_decref(acc.arr);
        api_reply_pgs(aio, &e);
        return;
    }
    json_t *res = json_object();
    if (res != NULL) {
        json_object_set_new(res, key, acc.arr);
        json_object_set_new(res, "more", json_boolean(acc.more));
    } else {
        json_decref(acc.arr);
    }
    api_reply_json(aio, 200, res);
}

static int list_backups(catalog *cat, const catalog_filter *f, list_acc *acc, pgs_error *e)
{
    return catalog_backup_list(cat, f, backups_cb, acc, e);
}

static void get_backups(api *a, nng_aio *aio, const char *query)
{
    get_list(a, aio, query, "backups", list_backups);
}

/* ---- GET /v1/backups/ID ---- */

static json_t *progress_json(api *a, const char *id)
{
    fleet_progress p;
    if (a->fleet == NULL || fleet_job_progress(a->fleet, id, &p) != 1)
        return json_null();
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    char t[CATALOG_TIME_SIZE];
    json_object_set_new(o, "phase", json_string(fleet_phase_name(p.phase)));
    json_object_set_new(o, "bytes", json_integer((json_int_t)p.bytes));
    if (p.started_ms > 0) {
        api_time_ms_text(p.started_ms, t);
        json_object_set_new(o, "started_at", json_string(t));
        int64_t el = api_now_ms() - p.started_ms;
        json_object_set_new(o, "elapsed", json_real(el > 0 ? (double)el / 1000.0 : 0.0));
    } else {
        json_object_set_new(o, "started_at", json_null());
        json_object_set_new(o, "elapsed", json_null());
    }
    if (p.updated_ms > 0) {
        api_time_ms_text(p.updated_ms, t);
        json_object_set_new(o, "updated_at", json_string(t));
    } else {
        json_object_set_new(o, "updated_at", json_null());
    }
    return o;
}

/* The catalog row of id into *b, or a reply and -1. */
static int load_backup(api *a, nng_aio *aio, const char *id, catalog_backup *b)
{
    pgs_error e = {0};
    if (!catalog_id_valid(id)) {
        api_reply_error(aio, 404, "not_found", "no such backup (not a backup id)");
        return -1;
    }
    api_cat_lock(a);
    int rc = catalog_backup_get(a->cat, id, b, &e);
    api_cat_unlock(a);
    if (rc != 0) {
        api_reply_pgs(aio, &e);
        return -1;
    }
    return 0;
}

static void get_backup(api *a, nng_aio *aio, const char *id)
{
    catalog_backup b;
    if (load_backup(a, aio, id, &b) != 0)
        return;
    json_t *o = catalog_backup_to_json(&b);
    json_t *p = b.state == CATALOG_QUEUED || b.state == CATALOG_RUNNING ? progress_json(a, id)
                                                                        : json_null();
    if (o == NULL || p == NULL || json_object_set_new(o, "progress", p) != 0) {
        json_decref(o);
        api_reply_error(aio, 500, "internal", "out of memory");
        return;
    }
    api_reply_json(aio, 200, o);
}

/* ---- POST /v1/backups ---- */

/* 1 when the fleet knows agent as connected; sets *has_db when it announced db. */
static int fleet_has(api *a, const char *agent, const char *db, int *has_db)
{
    *has_db = 0;
    if (a->fleet == NULL)
        return 0;
    json_t *live = fleet_agents_json(a->fleet), *x, *d;
    size_t i, j;
    int found = 0;
    json_array_foreach(live, i, x)
    {
        const char *name = json_string_value(json_object_get(x, "name"));
        if (name == NULL || strcmp(name, agent) != 0)
            continue;
        found = 1;
        json_array_foreach(json_object_get(x, "databases"), j, d)
        {
            const char *dn = json_string_value(json_object_get(d, "name"));
            if (dn != NULL && strcmp(dn, db) == 0)
                *has_db = 1;
        }
    }
    json_decref(live);
    return found;
}

/* 1 when req says its body is JSON. */
int api_json_content_type(nng_http_req *req)
{
    const char *ct = nng_http_req_get_header(req, "Content-Type");
    return ct != NULL && strncasecmp(ct, "application/json", 16) == 0 &&
           (ct[16] == '\0' || ct[16] == ';' || ct[16] == ' ');
}

/* The audit entry of a request that failed, "error: " and why. */
static void audit_error(api *a, api_job *job, const char *action, const char *target,
                        const char *why)
{
    char result[600];
    snprintf(result, sizeof(result), "error: %s", why);
    api_audit(a, job, action, target, result);
}

static void post_backup(api *a, api_job *job)
{
    nng_aio *aio = job->aio;
    nng_http_req *req = job->req;
    pgs_error e = {0};
    char target[2 * CATALOG_NAME_MAX + 2] = "", why[600];
    void *body = NULL;
    size_t len = 0;
    nng_http_req_get_data(req, &body, &len);
    api_backup_body in;
    /* Decoded before the role check only to name the target of a refusal in the audit log. */
    int parsed = api_backup_body_parse(body, len, &in, &e);
    if (parsed == 0)
        snprintf(target, sizeof(target), "%s/%s", in.agent, in.database);
    if (!api_allowed_audit(a, job, API_ROLE_OPERATE, "POST /v1/backups", "backup.request",
                           target))
        return;
    if (!api_json_content_type(req)) {
        audit_error(a, job, "backup.request", target, "not application/json");
        api_reply_error(aio, 415, "unsupported_media_type",
                    "send the body as Content-Type: application/json");
        return;
    }
    if (parsed != 0) {
        audit_error(a, job, "backup.request", target, e.msg);
        api_reply_error(aio, 400, "bad_request", "%s", e.msg);
        return;
    }
    int has_db;
    if (!fleet_has(a, in.agent, in.database, &has_db)) {
        snprintf(why, sizeof(why), "agent %s is not connected", in.agent);
        audit_error(a, job, "backup.request", target, why);
        api_reply_error(aio, 409, "not_connected", "%s", why);
        return;
    }
    if (!has_db) {
        snprintf(why, sizeof(why), "agent %s did not announce a database %s", in.agent,
                 in.database);
        audit_error(a, job, "backup.request", target, why);
        api_reply_error(aio, 404, "not_found", "%s", why);
        return;
    }
    char id[CATALOG_ID_SIZE];
    catalog_backup b;
    api_cat_lock(a);
    int rc = fleet_backup_request(a->fleet, a->cat, in.agent, in.database,
                                  in.label[0] ? in.label : NULL, job->who, id, &e);
    if (rc == 0)
        rc = catalog_backup_get(a->cat, id, &b, &e);
    api_cat_unlock(a);
    if (rc != 0)
        audit_error(a, job, "backup.request", target, e.msg);
    if (rc == PGS_ENOTFOUND) {
        api_reply_error(aio, 409, "not_connected", "%s", e.msg);
        return;
    }
    if (rc == PGS_ELIMIT) {
        api_reply_error(aio, 429, "queue_full", "%s", e.msg);
        return;
    }
    if (rc != 0) {
        api_reply_pgs(aio, &e);
        return;
    }
    log_info("api: backup %s of %s/%s requested", id, in.agent, in.database);
    snprintf(why, sizeof(why), "%s %s", target, id); /* the new backup's id with its database */
    api_audit(a, job, "backup.request", why, "ok");
    json_t *o = catalog_backup_to_json(&b);
    if (o != NULL)
        json_object_set_new(o, "progress", progress_json(a, id));
    api_reply_json(aio, 202, o);
}

/* ---- restores ---- */

/* A restore's reports are up to 1 MiB each: a listing stops adding restores once their reports
 * pass this many bytes (and says "more"), so that its answer stays within what a client takes. */
#define API_RESTORES_REPORT_BUDGET (16u * 1024 * 1024)

/* A string from an agent (a step's detail), or null when it is not UTF-8. */
json_t *api_agent_text(const char *s)
{
    json_t *v = s != NULL && s[0] != '\0' ? json_string(s) : NULL;
    return v != NULL ? v : json_null();
}

/* The live progress of restore id, or NULL when its thread is not running (or no memory). */
static json_t *restore_progress_json(api *a, const char *id)
{
    restorer_progress p;
    if (a->restorer == NULL || restorer_progress_get(a->restorer, id, &p) != 1)
        return NULL;
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    json_object_set_new(o, "step", api_agent_text(p.step));
    json_object_set_new(o, "agent_step", p.has_job ? api_agent_text(p.job.step) : json_null());
    json_object_set_new(o, "detail", p.has_job ? api_agent_text(p.job.detail) : json_null());
    json_object_set_new(o, "bytes",
                        p.has_job ? json_integer((json_int_t)p.job.bytes) : json_null());
    json_object_set_new(o, "phase",
                        p.has_job ? json_string(fleet_phase_name(p.job.phase)) : json_null());
    return o;
}

/* The status and code for restorer_request's refusals (restore.h lists them). */
static uint16_t restore_status(int code, const char **name)
{
    switch (code) {
    case PGS_EINVAL:
    case PGS_EFORMAT:
        *name = "bad_request";
        return 400;
    case PGS_ENOTFOUND:
        *name = "not_found";
        return 404;
    case PGS_EORDER:
        *name = "not_complete";
        return 409;
    case PGS_EDENIED:
        *name = "denied";
        return 403;
    case PGS_ELIMIT:
        *name = "busy";
        return 429;
    default:
        *name = "internal";
        return 500;
    }
}

static void post_restore(api *a, api_job *job)
{
    nng_aio *aio = job->aio;
    nng_http_req *req = job->req;
    pgs_error e = {0};
    void *body = NULL;
    size_t len = 0;
    nng_http_req_get_data(req, &body, &len);
    restore_request *in = malloc(sizeof(*in));
    if (in == NULL) {
        api_reply_error(aio, 500, "internal", "out of memory");
        return;
    }
    catalog_restore r;
    memset(&r, 0, sizeof(r));
    char id[CATALOG_ID_SIZE] = "";
    /* "SOURCE -> AGENT/DB" for the audit log; decoded before the role check for that only. */
    char target[CATALOG_SOURCE_MAX + 2 * CATALOG_NAME_MAX + 8] = "";
    int parsed = api_restore_body_parse(body, len, in, &e);
    if (parsed == 0)
        snprintf(target, sizeof(target), "%s -> %s/%s", in->source, in->target_agent,
                 in->target_database);
    if (!api_allowed_audit(a, job, API_ROLE_OPERATE, "POST /v1/restores", "restore.request",
                           target))
        goto out;
    if (!api_json_content_type(req)) {
        audit_error(a, job, "restore.request", target, "not application/json");
        api_reply_error(aio, 415, "unsupported_media_type",
                    "send the body as Content-Type: application/json");
        goto out;
    }
    if (parsed != 0) {
        audit_error(a, job, "restore.request", target, e.msg);
        api_reply_error(aio, 400, "bad_request", "%s", e.msg);
        goto out;
    }
    /* Writing over a prod database is an admin's decision (the policy asks for overwrite_prod
     * on top of it). */
    if (in->overwrite_prod && !api_allowed_audit(a, job, API_ROLE_ADMIN,
                                                 "a restore with overwrite_prod",
                                                 "restore.request", target))
        goto out;
    if (a->restorer == NULL) {
        audit_error(a, job, "restore.request", target, "this coordinator runs no restores");
        api_reply_error(aio, 409, "not_connected",
                    "this coordinator runs no restores (its API serves without agents)");
        goto out;
    }
    api_cat_lock(a);
    int rc = restorer_request(a->restorer, a->cat, in, job->who, id, &e);
    int got = rc == 0 ? catalog_restore_get(a->cat, id, &r, &e) : rc;
    api_cat_unlock(a);
    if (rc != 0) {
        audit_error(a, job, "restore.request", target, e.msg);
    } else {
        char done[sizeof(target) + CATALOG_ID_SIZE + 16];
        snprintf(done, sizeof(done), "%s (restore %s)", target, id);
        api_audit(a, job, "restore.request", done, "ok");
    }
    if (rc != 0) {
        const char *name;
        uint16_t st = restore_status(rc, &name);
        if (st == 500)
            log_error("api: restore of %s into %s/%s: %s", in->source, in->target_agent,
                      in->target_database, e.msg);
        api_reply_error(aio, st, name, "%s", e.msg);
        goto out;
    }
    if (got != 0) { /* queued, but it cannot be read back: say so, with its id */
        log_error("api: restore %s: %s", id, e.msg);
        api_reply_error(aio, 500, "internal", "restore %s was queued but cannot be read: %s", id,
                    e.msg);
        goto out;
    }
    log_info("api: restore %s of %s into %s/%s requested", id, in->source, in->target_agent,
             in->target_database);
    json_t *o = json_object(), *ro = catalog_restore_to_json(&r);
    if (o == NULL || ro == NULL || json_object_set_new(o, "id", json_string(id)) != 0 ||
        json_object_set_new(o, "restore", ro) != 0) {
        json_decref(o);
        api_reply_error(aio, 500, "internal", "out of memory");
        goto out;
    }
    api_reply_json(aio, 202, o);
out:
    catalog_restore_clear(&r);
    free(in);
}

static int restores_cb(void *arg, const catalog_restore *r)
{
    list_acc *acc = arg;
    size_t n = json_array_size(acc->arr);
    if (n >= acc->limit || (n > 0 && acc->report_bytes > API_RESTORES_REPORT_BUDGET)) {
        acc->more = 1;
        return 1;
    }
    acc->report_bytes += r->report_json != NULL ? strlen(r->report_json) : 0;
    if (json_array_append_new(acc->arr, catalog_restore_to_json(r)) != 0)
        return acc->bad = PGS_ENOMEM;
    return 0;
}

static int list_restores(catalog *cat, const catalog_filter *f, list_acc *acc, pgs_error *e)
{
    return catalog_restore_list(cat, f, restores_cb, acc, e);
}

static void get_restores(api *a, nng_aio *aio, const char *query)
{
    get_list(a, aio, query, "restores", list_restores);
}

static void get_restore(api *a, nng_aio *aio, const char *id)
{
    pgs_error e = {0};
    catalog_restore r;
    if (!catalog_id_valid(id)) {
        api_reply_error(aio, 404, "not_found", "no such restore (not a restore id)");
        return;
    }
    api_cat_lock(a);
    int rc = catalog_restore_get(a->cat, id, &r, &e);
    api_cat_unlock(a);
    if (rc != 0) {
        api_reply_pgs(aio, &e);
        return;
    }
    json_t *o = catalog_restore_to_json(&r);
    int live = r.state == CATALOG_QUEUED || r.state == CATALOG_RUNNING;
    catalog_restore_clear(&r);
    if (o == NULL) {
        api_reply_error(aio, 500, "internal", "out of memory");
        return;
    }
    json_t *p = live ? restore_progress_json(a, id) : NULL;
    if (p != NULL)
        json_object_set_new(o, "progress", p);
    api_reply_json(aio, 200, o);
}

/* ---- GET /v1/backups/ID/object ---- */

/* Sends the request's response or a piece of the body; PGS_EINTR when stopping, PGS_EIO when the
 * client went away or stalled. The aio is started under a->mu so that api_stop either sees it
 * running (and cancels it) or this sees stopping. */
static int fetch_send(api_fetch *f, nng_http_res *res, const void *buf, size_t len)
{
    api *a = f->a;
    pthread_mutex_lock(&a->mu);
    if (a->stopping) {
        pthread_mutex_unlock(&a->mu);
        return PGS_EINTR;
    }
    if (res != NULL) {
        nng_http_conn_write_res(f->conn, res, f->aio);
    } else {
        nng_iov iov = {.iov_buf = (void *)buf, .iov_len = len};
        nng_aio_set_iov(f->aio, 1, &iov);
        nng_http_conn_write_all(f->conn, f->aio);
    }
    pthread_mutex_unlock(&a->mu);
    nng_aio_wait(f->aio);
    int rv = nng_aio_result(f->aio);
    if (rv == 0)
        return 0;
    pthread_mutex_lock(&a->mu);
    int stopping = a->stopping;
    pthread_mutex_unlock(&a->mu);
    if (stopping)
        return PGS_EINTR;
    f->client_gone = 1;
    return PGS_EIO;
}

static int fetch_header(api_fetch *f)
{
    nng_http_res *res = NULL;
    char len[32];
    char disp[80];
    snprintf(len, sizeof(len), "%" PRIu64, f->size);
    snprintf(disp, sizeof(disp), "attachment; filename=\"%s.pgship\"", f->id);
    int rc = PGS_ENOMEM;
    if (nng_http_res_alloc(&res) == 0 && nng_http_res_set_status(res, 200) == 0 &&
        nng_http_res_set_header(res, "Content-Type", "application/octet-stream") == 0 &&
        nng_http_res_set_header(res, "Content-Length", len) == 0 &&
        nng_http_res_set_header(res, "X-Pgship-Sha256", f->sha256) == 0 &&
        nng_http_res_set_header(res, "X-Pgship-Backup-Id", f->id) == 0 &&
        nng_http_res_set_header(res, "Content-Disposition", disp) == 0 &&
        nng_http_res_set_header(res, "Cache-Control", "no-store") == 0 &&
        nng_http_res_set_header(res, "Connection", "close") == 0)
        rc = fetch_send(f, res, NULL, 0);
    if (res != NULL)
        nng_http_res_free(res);
    if (rc == 0)
        f->header_sent = 1;
    return rc;
}

static int fetch_sink(void *arg, const void *buf, size_t len)
{
    api_fetch *f = arg;
    int rc;
    if (!f->header_sent && (rc = fetch_header(f)) != 0)
        return rc;
    size_t n = len;
    if (f->size - f->sent < (uint64_t)n)
        n = (size_t)(f->size - f->sent);
    for (size_t done = 0; done < n;) {
        size_t k = n - done < API_WRITE_PIECE ? n - done : API_WRITE_PIECE;
        if ((rc = fetch_send(f, NULL, (const uint8_t *)buf + done, k)) != 0)
            return rc;
        done += k;
        f->sent += k;
    }
    if (n < len)
        return PGS_ELIMIT; /* longer than the catalog says: stop at what was promised */
    return 0;
}

/* An error answer on the hijacked connection, when nothing else has been sent. */
static void fetch_error(api_fetch *f, uint16_t status, const char *code, const char *msg)
{
    nng_http_res *res = json_res(status, error_json(code, msg));
    if (res == NULL)
        return;
    nng_http_res_set_header(res, "Connection", "close");
    fetch_send(f, res, NULL, 0);
    nng_http_res_free(res);
}

static void *fetch_main(void *arg)
{
    api_fetch *f = arg;
    api *a = f->a;
    pgs_error e = {0};
    int rc;
    double t0 = (double)api_now_ms();
    if (f->head) {
        rc = fetch_header(f);
    } else {
        rc = storage_get(a->storage, f->key, fetch_sink, f, &e);
        if (rc == 0 && !f->header_sent && f->size == 0)
            rc = fetch_header(f);
    }
    if (f->head) {
        /* headers only */
    } else if (rc == PGS_EINTR) {
        log_warn("api: download of backup %s stopped after %" PRIu64 " of %" PRIu64 " bytes", f->id,
                 f->sent, f->size);
    } else if (f->client_gone) {
        log_warn("api: download of backup %s: the client went away after %" PRIu64 " bytes", f->id,
                 f->sent);
    } else if (rc == PGS_ELIMIT) {
        log_error("api: backup %s: the stored object %s is larger than the catalog's %" PRIu64
                  " bytes; the download was cut there",
                  f->id, f->key, f->size);
    } else if (rc != 0) {
        log_error("api: download of backup %s failed: %s", f->id, e.msg);
        if (!f->header_sent) {
            char msg[700];
            snprintf(msg, sizeof(msg), "cannot read backup %s from storage: %s", f->id, e.msg);
            fetch_error(f, rc == PGS_ENOTFOUND ? 404 : 500,
                        rc == PGS_ENOTFOUND ? "not_found" : "storage_error", msg);
        }
    } else if (f->sent != f->size) {
        log_error("api: backup %s: the stored object %s has %" PRIu64
                  " bytes, the catalog says %" PRIu64 "; the download was cut short",
                  f->id, f->key, f->sent, f->size);
    } else {
        double s = ((double)api_now_ms() - t0) / 1000.0;
        log_info("api: sent backup %s (%" PRIu64 " bytes) in %.1f s", f->id, f->sent, s);
    }
    nng_http_conn_close(f->conn); /* closes and frees */
    f->conn = NULL;
    nng_http_req_free(f->req);
    f->req = NULL;
    pthread_mutex_lock(&a->mu);
    f->done = 1;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

static void fetch_free(api_fetch *f)
{
    if (f == NULL)
        return;
    if (f->aio != NULL)
        nng_aio_free(f->aio);
    free(f);
}

/* Joins and frees ended downloads; returns a free slot or -1. Called under a->mu. */
static int fetch_slot(api *a)
{
    int slot = -1;
    for (int i = 0; i < API_FETCH_MAX; i++) {
        api_fetch *f = a->fetches[i];
        if (f != NULL && f->done) {
            pthread_join(f->thread, NULL);
            fetch_free(f);
            a->fetches[i] = NULL;
        }
        if (a->fetches[i] == NULL && slot < 0)
            slot = i;
    }
    return slot;
}

static void get_object(api *a, api_job *job, const char *id, int head)
{
    nng_aio *aio = job->aio;
    catalog_backup b;
    if (load_backup(a, aio, id, &b) != 0)
        return;
    if (b.state != CATALOG_COMPLETE) {
        api_reply_error(aio, 409, "not_complete",
                    "backup %s is in state %s; only a complete backup can be fetched", id,
                    catalog_state_name(b.state));
        return;
    }
    if (a->storage == NULL) {
        api_reply_error(aio, 500, "internal", "this coordinator has no storage configured");
        return;
    }
    api_fetch *f = calloc(1, sizeof(*f));
    if (f == NULL || nng_aio_alloc(&f->aio, NULL, NULL) != 0) {
        free(f);
        api_reply_error(aio, 500, "internal", "out of memory");
        return;
    }
    nng_aio_set_timeout(f->aio, API_WRITE_TIMEOUT_MS);
    f->a = a;
    f->head = head;
    f->size = b.bytes;
    snprintf(f->id, sizeof(f->id), "%s", b.id);
    snprintf(f->key, sizeof(f->key), "%s", b.storage_key);
    snprintf(f->sha256, sizeof(f->sha256), "%s", b.sha256);

    pthread_mutex_lock(&a->mu);
    int slot = a->stopping ? -1 : fetch_slot(a);
    if (slot < 0) {
        int stopping = a->stopping;
        pthread_mutex_unlock(&a->mu);
        fetch_free(f);
        if (stopping)
            api_reply_error(aio, 503, "unavailable", "the coordinator is shutting down");
        else
            api_reply_error(aio, 429, "busy",
                        "%d downloads are in progress already; try again when one ends",
                        API_FETCH_MAX);
        return;
    }
    a->fetches[slot] = f;
    /* From here the connection and the request are ours; the server forgets them once the
     * handler's aio finishes without a response. */
    nng_http_hijack(job->conn);
    f->conn = job->conn;
    f->req = job->req;
    if (pthread_create(&f->thread, NULL, fetch_main, f) != 0) {
        a->fetches[slot] = NULL;
        pthread_mutex_unlock(&a->mu);
        log_error("api: cannot start a thread for the download of backup %s", id);
        nng_http_conn_close(f->conn);
        nng_http_req_free(f->req);
        fetch_free(f);
    } else {
        f->started = 1;
        pthread_mutex_unlock(&a->mu);
        if (!head)
            log_info("api: sending backup %s (%" PRIu64 " bytes)", id, b.bytes);
    }
    nng_aio_set_output(aio, 0, NULL);
    nng_aio_finish(aio, 0);
}

/* ---- GET /metrics ---- */

static void get_metrics(api *a, nng_aio *aio, int head)
{
    char *text = NULL;
    size_t len = 0;
    if (a->metrics == NULL) {
        api_reply_error(aio, 404, "not_found", "metrics are off");
        return;
    }
    if (metrics_render(a->metrics, &text, &len) != 0) {
        api_reply_error(aio, 500, "internal", "cannot render the metrics");
        return;
    }
    nng_http_res *res = NULL;
    if (nng_http_res_alloc(&res) != 0 ||
        nng_http_res_set_header(res, "Content-Type", METRICS_CONTENT_TYPE) != 0 ||
        nng_http_res_set_header(res, "Cache-Control", "no-store") != 0 ||
        (head ? nng_http_res_set_header(res, "Content-Length", "0")
              : nng_http_res_copy_data(res, text, len)) != 0) {
        if (res != NULL)
            nng_http_res_free(res);
        res = NULL;
    }
    free(text);
    api_finish_res(aio, res);
}

/* ---- routing (workers) ---- */

void api_method_not_allowed(nng_aio *aio, const char *allow)
{
    nng_http_res *res =
        json_res(405, error_json("method_not_allowed", "method not allowed on this path"));
    if (res != NULL)
        nng_http_res_set_header(res, "Allow", allow);
    api_finish_res(aio, res);
}

static void dispatch(api *a, api_job *job)
{
    nng_aio *aio = job->aio;
    const char *method = nng_http_req_get_method(job->req);
    const char *uri = nng_http_req_get_uri(job->req);
    char path[256];
    const char *query = strchr(uri, '?');
    size_t plen = query != NULL ? (size_t)(query - uri) : strlen(uri);
    if (query != NULL)
        query++;
    if (plen >= sizeof(path)) {
        api_reply_error(aio, 404, "not_found", "no such endpoint");
        return;
    }
    memcpy(path, uri, plen);
    path[plen] = '\0';
    if (nng_http_req_get_header(job->req, "Transfer-Encoding") != NULL) {
        /* nng reads bodies by Content-Length only; what follows would be read as a request. */
        nng_http_res *res = json_res(
            411, error_json("length_required", "send request bodies with a Content-Length"));
        if (res != NULL)
            nng_http_res_set_header(res, "Connection", "close");
        api_finish_res(aio, res);
        return;
    }
    {
        char lp[128];
        api_log_clean(uri, lp, sizeof(lp));
        log_debug("api: %s %s", method, lp);
    }

    /* The routes of the other api_*.c files first: some live under /v1/backups/ID/. */
    if (api_ops_route(a, job, method, path, query) || api_verify_route(a, job, method, path, query) ||
        api_status_route(a, job, method, path, query))
        return;
    const char *rest;
    if (strcmp(path, "/metrics") == 0) {
        if (!api_is_get(method))
            api_method_not_allowed(aio, "GET, HEAD");
        else
            get_metrics(a, aio, strcmp(method, "HEAD") == 0);
        return;
    }
    if (strcmp(path, "/v1/agents") == 0) {
        if (!api_is_get(method))
            api_method_not_allowed(aio, "GET, HEAD");
        else if (query != NULL && query[0] != '\0')
            api_reply_error(aio, 400, "bad_request", "/v1/agents takes no query parameters");
        else
            get_agents(a, aio);
        return;
    }
    if (strcmp(path, "/v1/backups") == 0) {
        if (strcmp(method, "POST") == 0) {
            if (query != NULL && query[0] != '\0')
                api_reply_error(aio, 400, "bad_request", "POST /v1/backups takes no query");
            else
                post_backup(a, job); /* checks the role, to audit a refusal with its target */
        } else if (api_is_get(method)) {
            get_backups(a, aio, query);
        } else {
            api_method_not_allowed(aio, "GET, HEAD, POST");
        }
        return;
    }
    if (strncmp(path, "/v1/backups/", 12) == 0) {
        rest = path + 12;
        char id[CATALOG_ID_SIZE];
        const char *slash = strchr(rest, '/');
        size_t idlen = slash != NULL ? (size_t)(slash - rest) : strlen(rest);
        int object = slash != NULL && strcmp(slash, "/object") == 0;
        if (idlen == 0 || idlen >= sizeof(id) || (slash != NULL && !object)) {
            api_reply_error(aio, 404, "not_found", "no such endpoint");
            return;
        }
        memcpy(id, rest, idlen);
        id[idlen] = '\0';
        if (!api_is_get(method)) {
            api_method_not_allowed(aio, "GET, HEAD");
        } else if (query != NULL && query[0] != '\0') {
            api_reply_error(aio, 400, "bad_request", "this endpoint takes no query parameters");
        } else if (object) {
            get_object(a, job, id, strcmp(method, "HEAD") == 0);
        } else {
            get_backup(a, aio, id);
        }
        return;
    }
    if (strcmp(path, "/v1/restores") == 0) {
        if (strcmp(method, "POST") == 0) {
            if (query != NULL && query[0] != '\0')
                api_reply_error(aio, 400, "bad_request", "POST /v1/restores takes no query");
            else
                post_restore(a, job); /* checks the role, as post_backup */
        } else if (api_is_get(method)) {
            get_restores(a, aio, query);
        } else {
            api_method_not_allowed(aio, "GET, HEAD, POST");
        }
        return;
    }
    if (strncmp(path, "/v1/restores/", 13) == 0) {
        rest = path + 13;
        if (rest[0] == '\0' || strlen(rest) >= CATALOG_ID_SIZE || strchr(rest, '/') != NULL) {
            api_reply_error(aio, 404, "not_found", "no such endpoint");
        } else if (!api_is_get(method)) {
            api_method_not_allowed(aio, "GET, HEAD");
        } else if (query != NULL && query[0] != '\0') {
            api_reply_error(aio, 400, "bad_request", "this endpoint takes no query parameters");
        } else {
            get_restore(a, aio, rest);
        }
        return;
    }
    api_reply_error(aio, 404, "not_found", "no such endpoint");
}

static void *worker_main(void *arg)
{
    api *a = arg;
    for (;;) {
        pthread_mutex_lock(&a->mu);
        while (a->head == NULL && !a->stopping)
            pthread_cond_wait(&a->cv, &a->mu);
        api_job *job = a->head;
        if (job == NULL) {
            pthread_mutex_unlock(&a->mu);
            break;
        }
        a->head = job->next;
        if (a->head == NULL)
            a->tail = NULL;
        a->queued--;
        int stopping = a->stopping;
        pthread_mutex_unlock(&a->mu);
        if (stopping)
            api_reply_error(job->aio, 503, "unavailable", "the coordinator is shutting down");
        else
            dispatch(a, job);
        free(job);
    }
    return NULL;
}

/* ---- start and stop ---- */

int api_start(const api_opts *o, api **out, pgs_error *e)
{
    *out = NULL;
    if (o == NULL || o->url == NULL || o->catalog_path == NULL)
        return pgs_fail(e, PGS_EINVAL, "api: url and catalog_path are required");
    size_t tlen = o->token != NULL ? strlen(o->token) : 0;
    if (tlen == 0 || tlen > API_TOKEN_MAX)
        return pgs_fail(e, PGS_EINVAL, "api: the token is missing or too long");
    if (sodium_init() < 0)
        return pgs_fail(e, PGS_EIO, "api: libsodium failed to initialize");

    api *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    pthread_mutex_init(&a->cat_mu, NULL);
    a->refs = 1;
    a->port = -1;
    a->fleet = o->fleet;
    a->restorer = o->restorer;
    a->storage = o->storage;
    a->metrics = o->metrics;
    a->lookup = o->lookup;
    a->lookup_arg = o->lookup_arg;
    a->cfg = o->cfg;
    a->sched = o->sched;
    a->verifier = o->verifier;
    token_hash(o->token, tlen, a->token_hash);

    nng_url *url = NULL;
    nng_http_handler *h = NULL;
    int rv, rc;
    if ((a->catalog_path = strdup(o->catalog_path)) == NULL) {
        rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = catalog_open(o->catalog_path, &a->cat, e)) != 0) {
        pgs_wrap(e, "api");
        goto fail;
    }
    if ((rv = nng_url_parse(&url, o->url)) != 0 || strcmp(url->u_scheme, "http") != 0) {
        rc = pgs_fail(e, PGS_EINVAL, "api: %s is not an http://host:port URL", o->url);
        goto fail;
    }
    if ((rv = nng_http_server_hold(&a->server, url)) != 0) {
        rc = pgs_fail(e, PGS_EIO, "api: cannot serve %s: %s", o->url, nng_strerror(rv));
        goto fail;
    }
    if ((rv = nng_http_handler_alloc(&h, "/", api_handle)) != 0 ||
        (rv = nng_http_handler_set_method(h, NULL)) != 0 ||
        (rv = nng_http_handler_set_tree(h)) != 0 ||
        (rv = nng_http_handler_collect_body(h, true, API_BODY_MAX)) != 0) {
        if (h != NULL)
            nng_http_handler_free(h);
        rc = pgs_fail(e, PGS_ENOMEM, "api: %s", nng_strerror(rv));
        goto fail;
    }
    a->refs++; /* the handler's, dropped by api_handler_dtor */
    nng_http_handler_set_data(h, a, api_handler_dtor);
    if ((rv = nng_http_server_add_handler(a->server, h)) != 0) {
        nng_http_handler_free(h);
        rc = pgs_fail(e, PGS_EIO, "api: cannot serve %s: %s", o->url, nng_strerror(rv));
        goto fail;
    }
    for (; a->nworkers < API_WORKERS; a->nworkers++) {
        if (pthread_create(&a->workers[a->nworkers], NULL, worker_main, a) != 0) {
            rc = pgs_fail(e, PGS_EIO, "api: cannot start a worker thread");
            goto fail;
        }
    }
    if ((rv = nng_http_server_start(a->server)) != 0) {
        rc = pgs_fail(e, PGS_EIO, "api: cannot listen on %s: %s", o->url, nng_strerror(rv));
        goto fail;
    }
    a->server_started = 1;
    nng_sockaddr sa;
    if (nng_http_server_get_addr(a->server, &sa) == 0) {
        if (sa.s_family == NNG_AF_INET)
            a->port = ntohs(sa.s_in.sa_port);
        else if (sa.s_family == NNG_AF_INET6)
            a->port = ntohs(sa.s_in6.sa_port);
    }
    log_info("api: listening on http://%s:%d", url->u_hostname, a->port);
    nng_url_free(url);
    *out = a;
    return 0;
fail:
    if (url != NULL)
        nng_url_free(url);
    api_stop(a);
    return rc;
}

int api_port(const api *a)
{
    return a != NULL ? a->port : -1;
}

void api_stop(api *a)
{
    if (a == NULL)
        return;
    pthread_mutex_lock(&a->mu);
    a->stopping = 1;
    for (int i = 0; i < API_FETCH_MAX; i++)
        if (a->fetches[i] != NULL && a->fetches[i]->aio != NULL)
            nng_aio_cancel(a->fetches[i]->aio);
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);

    if (a->server_started)
        nng_http_server_stop(a->server);
    for (int i = 0; i < a->nworkers; i++)
        pthread_join(a->workers[i], NULL);
    a->nworkers = 0;
    for (int i = 0; i < API_FETCH_MAX; i++) {
        api_fetch *f = a->fetches[i];
        if (f == NULL)
            continue;
        if (f->started)
            pthread_join(f->thread, NULL);
        fetch_free(f);
        a->fetches[i] = NULL;
    }
    if (a->server != NULL)
        nng_http_server_release(a->server);
    a->server = NULL;
    catalog_close(a->cat);
    a->cat = NULL;
    pthread_mutex_lock(&a->mu);
    sodium_memzero(a->token_hash, sizeof(a->token_hash));
    pthread_mutex_unlock(&a->mu);
    api_unref(a);
}
