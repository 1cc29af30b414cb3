/*
 * What the API's files share (coordinator/api.c defines it): the request queue's job, the api
 * struct, and the response helpers. The routes live in several files -- api.c (agents, backups,
 * restores, metrics), api_ops.c (schedules, prune, pins, stats, audit), api_verify.c
 * (verifications), api_status.c (the status page) -- each with a route function the dispatcher
 * asks first.
 */
#ifndef PGSHIP_COORDINATOR_API_INTERNAL_H
#define PGSHIP_COORDINATOR_API_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include <jansson.h>
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>

#include "coordinator/api.h"

#define API_WORKERS 2
#define API_TOKEN_HASH_LEN 32

typedef struct api_job {
    struct api_job *next;
    nng_aio *aio; /* the server's: finished with the response */
    nng_http_req *req;
    nng_http_conn *conn;
    int role;                    /* API_ROLE_* of the token presented */
    char who[API_WHO_MAX + 1];   /* its name: requested_by of what it starts */
} api_job;

typedef struct api_fetch api_fetch;

struct api {
    pthread_mutex_t mu; /* everything below up to the resources */
    pthread_cond_t cv;
    int refs; /* api_stop's and the handler's */
    int stopping;
    api_job *head, *tail;
    size_t queued;
    api_fetch *fetches[API_FETCH_MAX];

    uint8_t token_hash[API_TOKEN_HASH_LEN]; /* set at start, wiped at stop */

    pthread_t workers[API_WORKERS];
    int nworkers;
    nng_http_server *server;
    int server_started;
    int port;
    fleet *fleet;
    restorer *restorer;
    storage *storage;
    metrics *metrics;
    api_token_lookup lookup;
    void *lookup_arg;
    const coordinator_config *cfg; /* retention policies, schedules (may be NULL) */
    schedd *sched;                 /* next runs; NULL: no scheduler */
    verifier *verifier;            /* verifications; NULL: none */
    pthread_mutex_t cat_mu; /* one catalog call at a time */
    catalog *cat;
    char *catalog_path; /* for handles of their own (a prune: api_ops.c) */
    int pruning;        /* a POST /v1/prune is running (under mu) */
};

/* Responses. Each completes the job's aio exactly once. */
void api_finish_res(nng_aio *aio, nng_http_res *res); /* NULL res: out of memory, closes */
void api_reply_json(nng_aio *aio, uint16_t status, json_t *json); /* json is taken */
void api_reply_error(nng_aio *aio, uint16_t status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A pgs_error as its HTTP status: ENOTFOUND 404, EINVAL/ELIMIT/EFORMAT 400, EORDER/EEXIST 409,
 * EDENIED 403, others 500 (logged). */
void api_reply_pgs(nng_aio *aio, const pgs_error *e);
void api_method_not_allowed(nng_aio *aio, const char *allow);
/* 1 when job's token has at least role need; else answers 403 naming what is missing. */
int api_allowed(api_job *job, int need, const char *what);
const char *api_role_name(int role);

/* The API's catalog handle is one call at a time. */
void api_cat_lock(api *a);
void api_cat_unlock(api *a);

int api_is_get(const char *method);
/* 1 when the request says Content-Type: application/json. */
int api_json_content_type(nng_http_req *req);
json_t *api_text_or_null(const char *s);
/* Text from an agent (a step's detail), or null when it is empty or not UTF-8. */
json_t *api_agent_text(const char *s);
/* RFC 3339 UTC with milliseconds, as the catalog writes times. */
void api_time_ms_text(int64_t ms, char out[CATALOG_TIME_SIZE]);
int64_t api_now_ms(void);
/* A printable, bounded copy of request text for logs. */
void api_log_clean(const char *s, char *out, size_t outlen);

/*
 * The audit log (api_ops.c): records that job's token asked for action on target with result
 * ("ok", "denied", or "error: " and why) in the catalog, under the catalog lock (never call it
 * holding that lock). Every request that changes something records one entry, refusals
 * included, before its answer is sent. action is a constant of the caller: lowercase letters
 * with '_' or '.' between words ("backup.request", "pin"); the catalog keeps '.' as '_'. A
 * failure to record is logged, never answered: the request's own outcome stands.
 */
void api_audit(api *a, api_job *job, const char *action, const char *target, const char *result);
/* api_allowed that first records a refusal as action on target with result "denied". */
int api_allowed_audit(api *a, api_job *job, int need, const char *what, const char *action,
                      const char *target);

/* The routes of api_ops.c, api_verify.c and api_status.c: each returns 1 when path is one of its
 * own (and the request has been answered), 0 to let the dispatcher go on. query is NULL when
 * the URI has none. */
int api_ops_route(api *a, api_job *job, const char *method, const char *path, const char *query);
int api_verify_route(api *a, api_job *job, const char *method, const char *path,
                     const char *query);
int api_status_route(api *a, api_job *job, const char *method, const char *path,
                     const char *query);

#endif
