/*
 * Webhooks: the coordinator tells an operator's endpoint, by an HTTP POST of one JSON object,
 * that a backup, restore or verification failed or that a database has gone too long without a
 * good backup (docs/monitoring.md has the payload, the headers and how to check the signature).
 *
 * A webhook is one endpoint with its own delivery thread and a bounded queue in front of it.
 * Posting never blocks the caller (a job's thread, the scheduler): when the queue is full the
 * OLDEST waiting event is dropped and counted, because the newest failure is the one an
 * operator must see. The thread delivers events one at a time, in order, retrying a failed
 * attempt with exponential backoff and jitter. Every accepted event ends up counted exactly once
 * as delivered, failed or dropped.
 *
 * The URL may carry a token (in its path or query, as chat services do): it is never logged,
 * only its scheme, host and port. The secret is never logged either.
 */
#ifndef PGSHIP_COORDINATOR_WEBHOOK_H
#define PGSHIP_COORDINATOR_WEBHOOK_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define WEBHOOK_URL_MAX 2048
#define WEBHOOK_NAME_MAX 128
#define WEBHOOK_SECRET_MAX 1024
#define WEBHOOK_BODY_MAX (64u << 10) /* bytes of one serialized payload */
#define WEBHOOK_ID_LEN 32            /* hex digits of a delivery id (16 random bytes) */

/* Defaults for the zero values of webhook_opts. */
#define WEBHOOK_DEFAULT_TIMEOUT_MS 10000
#define WEBHOOK_DEFAULT_MAX_ATTEMPTS 5
#define WEBHOOK_DEFAULT_BACKOFF_MS 1000
#define WEBHOOK_DEFAULT_BACKOFF_MAX_MS 60000
#define WEBHOOK_DEFAULT_QUEUE_MAX 1000

/* The events (the payload's "event" and the X-Pgship-Event header). */
#define WEBHOOK_EVENT_BACKUP_FAILED "backup.failed"
#define WEBHOOK_EVENT_RESTORE_FAILED "restore.failed"
#define WEBHOOK_EVENT_VERIFY_FAILED "verify.failed"
#define WEBHOOK_EVENT_BACKUP_OVERDUE "backup.overdue"
#define WEBHOOK_EVENT_TEST "test"

typedef struct webhook webhook;

typedef struct webhook_opts {
    const char *name;      /* the coordinator's name: the payload's "coordinator" (UTF-8) */
    const char *url;       /* http:// or https:// */
    const uint8_t *secret; /* NULL or secret_len 0: no X-Pgship-Signature; copied */
    size_t secret_len;
    int timeout_ms;      /* one attempt, connection included; 0: 10 s; 100 ms to 10 min */
    int max_attempts;    /* 0: 5; 1 to 100 */
    int backoff_ms;      /* wait before the first retry, doubled each time; 0: 1 s */
    int backoff_max_ms;  /* cap of that wait; 0: 60 s */
    size_t queue_max;    /* events waiting; 0: 1000; at most 100000 */
    const char *ca_file; /* NULL: the system's CA bundle (https) */
} webhook_opts;

typedef struct webhook_counts {
    uint64_t delivered; /* a 2xx answer */
    uint64_t failed;    /* a 4xx other than 408/429, or every attempt failed */
    uint64_t dropped;   /* pushed out of a full queue, or left at webhook_stop */
    uint64_t retried;   /* attempts after the first, over all events */
} webhook_counts;

/*
 * Checks o and starts the delivery thread (o and what it points to may be freed afterwards).
 * PGS_EINVAL with e saying which option is wrong (a URL that is not http or https, without a
 * host, a bad number), or PGS_ENOMEM / PGS_EIO.
 */
int webhook_start(const webhook_opts *o, webhook **out, pgs_error *e);

/*
 * Queues an event: event is one of WEBHOOK_EVENT_*, data a JSON object (NULL: {}) that becomes
 * the payload's "data". The reference to data is taken in every case, success or not. The
 * payload (with its delivery id and time) is made now, so "time" is when the event happened.
 * Never blocks on the network: a full queue drops its oldest event.
 * 0, or PGS_EINVAL (unknown event, data not an object, after webhook_stop), PGS_ELIMIT (the
 * payload is larger than WEBHOOK_BODY_MAX) or PGS_ENOMEM; a refused event is not counted.
 */
int webhook_post(webhook *w, const char *event, json_t *data);

/* The counts so far (also valid after webhook_stop). */
void webhook_stats(webhook *w, webhook_counts *out);

/*
 * Stops: refuses new events, lets the thread go on delivering for at most timeout_ms (an
 * attempt under way finishes or times out, each queued event gets one attempt in the time that
 * is left, no more retries), then counts what is left as dropped and joins the thread. Returns
 * within about timeout_ms. Calling it again does nothing.
 */
void webhook_stop(webhook *w);

/* Stops if needed and frees w (NULL is fine). The secret's copy is wiped. */
void webhook_free(webhook *w);

/* The HMAC-SHA-256 of body with secret as the X-Pgship-Signature header carries it:
 * "sha256=" and 64 lowercase hex digits, NUL-terminated (out has at least 72 bytes). */
void webhook_signature(const uint8_t *secret, size_t secret_len, const char *body, size_t len,
                       char out[72]);

#endif
