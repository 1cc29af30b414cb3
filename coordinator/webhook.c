/*
 * Webhook delivery (see webhook.h).
 *
 * One thread per endpoint with one reused libcurl handle, so that consecutive events share a
 * kept-alive connection. The payload is serialized when the event is posted: its "time" is the
 * event's, and every attempt sends the same bytes, so a receiver can deduplicate retries by the
 * delivery id and the signature stays the same across them.
 */
#include "coordinator/webhook.h"

#include <curl/curl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "common/log.h"
#include "common/sha256.h"
#include "common/timeutil.h"

#ifndef PGSHIP_VERSION
#define PGSHIP_VERSION "unknown"
#endif

#define WH_SHOWN_URL_MAX 300 /* scheme://host:port, what logs show of the URL */
#define WH_EVENT_MAX 32

typedef struct wh_event {
    struct wh_event *next;
    char event[WH_EVENT_MAX];
    char id[WEBHOOK_ID_LEN + 1];
    char *body; /* from json_dumps */
    size_t len;
} wh_event;

struct webhook {
    char *name;
    char *url;
    char shown[WH_SHOWN_URL_MAX];
    uint8_t *secret;
    size_t secret_len;
    char *ca_file;
    int timeout_ms;
    int max_attempts;
    int backoff_ms;
    int backoff_max_ms;
    size_t queue_max;
    CURL *h;

    pthread_t thread;
    int thread_started;
    int joined;

    pthread_mutex_t mu; /* guards what follows */
    pthread_cond_t cv;  /* an event queued, or stop */
    wh_event *head;     /* oldest first */
    wh_event *tail;
    size_t queued;
    int stopping;
    int64_t deadline; /* time_mono_ms when the delivery thread gives up, once stopping */
    webhook_counts counts;
};

static const char *const wh_events[] = {
    WEBHOOK_EVENT_BACKUP_FAILED,  WEBHOOK_EVENT_RESTORE_FAILED, WEBHOOK_EVENT_VERIFY_FAILED,
    WEBHOOK_EVENT_BACKUP_OVERDUE, WEBHOOK_EVENT_TEST,
};

static pthread_once_t wh_curl_once = PTHREAD_ONCE_INIT;
static CURLcode wh_curl_init_rc;

static void wh_curl_init(void)
{
    wh_curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void event_free(wh_event *ev)
{
    if (ev == NULL)
        return;
    free(ev->body);
    free(ev);
}

void webhook_signature(const uint8_t *secret, size_t secret_len, const char *body, size_t len,
                       char out[72])
{
    /* libsodium's multi-part HMAC takes a key of any length (hashed when longer than a block),
     * as RFC 2104 says, so any HMAC-SHA-256 library checks the same value */
    crypto_auth_hmacsha256_state st;
    uint8_t mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_init(&st, secret, secret_len);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)body, len);
    crypto_auth_hmacsha256_final(&st, mac);
    memcpy(out, "sha256=", 7);
    hex_encode(mac, sizeof(mac), out + 7);
    sodium_memzero(&st, sizeof(st));
}

/* ---- options ---- */

/* Checks the URL with libcurl's own parser (the one that will use it) and keeps in w->shown
 * the part that may be logged. */
static int check_url(webhook *w, const char *url, pgs_error *e)
{
    int rc = PGS_EINVAL;
    char *scheme = NULL, *host = NULL, *port = NULL;
    CURLU *u = curl_url();
    if (u == NULL)
        return pgs_fail(e, PGS_ENOMEM, "webhook url: out of memory");
    if (strlen(url) > WEBHOOK_URL_MAX) {
        rc = pgs_fail(e, PGS_EINVAL, "webhook url: more than %d bytes", WEBHOOK_URL_MAX);
        goto out;
    }
    /* the URL is not quoted in these messages: it may hold a token */
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) {
        rc = pgs_fail(e, PGS_EINVAL, "webhook url: not a valid absolute URL");
        goto out;
    }
    if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0) {
        rc = pgs_fail(e, PGS_EINVAL, "webhook url: scheme %.16s is not http or https", scheme);
        goto out;
    }
    if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || host[0] == '\0') {
        rc = pgs_fail(e, PGS_EINVAL, "webhook url: no host");
        goto out;
    }
    if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        rc = pgs_fail(e, PGS_EINVAL, "webhook url: no port");
        goto out;
    }
    snprintf(w->shown, sizeof(w->shown), "%s://%s:%s", scheme, host, port);
    rc = 0;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

static int check_int(const char *what, int v, int def, int lo, int hi, int *out, pgs_error *e)
{
    if (v == 0)
        v = def;
    if (v < lo || v > hi)
        return pgs_fail(e, PGS_EINVAL, "webhook %s: %d is not between %d and %d", what, v, lo, hi);
    *out = v;
    return 0;
}

/* ---- delivery ---- */

static size_t discard_cb(char *ptr, size_t size, size_t nmemb, void *arg)
{
    (void)ptr;
    (void)arg;
    return size * nmemb;
}

static int add_header(struct curl_slist **list, const char *line)
{
    struct curl_slist *t = curl_slist_append(*list, line);
    if (t == NULL)
        return -1;
    *list = t;
    return 0;
}

/* One POST of ev. Returns the CURLcode; *status is the HTTP status (0 without an answer). */
static CURLcode attempt(webhook *w, const wh_event *ev, int n, int timeout_ms, long *status)
{
    struct curl_slist *hdrs = NULL;
    char line[160];
    CURLcode cc = CURLE_OUT_OF_MEMORY;
    CURL *h = w->h;
    *status = 0;

    if (add_header(&hdrs, "Content-Type: application/json") != 0 ||
        add_header(&hdrs, "User-Agent: pgship-coordinator/" PGSHIP_VERSION) != 0 ||
        /* curl would otherwise wait for "100 Continue" before sending a body past 1 KiB */
        add_header(&hdrs, "Expect:") != 0)
        goto out;
    snprintf(line, sizeof(line), "X-Pgship-Event: %s", ev->event);
    if (add_header(&hdrs, line) != 0)
        goto out;
    snprintf(line, sizeof(line), "X-Pgship-Delivery: %s", ev->id);
    if (add_header(&hdrs, line) != 0)
        goto out;
    snprintf(line, sizeof(line), "X-Pgship-Attempt: %d", n);
    if (add_header(&hdrs, line) != 0)
        goto out;
    if (w->secret_len > 0) {
        char sig[72];
        webhook_signature(w->secret, w->secret_len, ev->body, ev->len, sig);
        snprintf(line, sizeof(line), "X-Pgship-Signature: %s", sig);
        if (add_header(&hdrs, line) != 0)
            goto out;
    }

    curl_easy_setopt(h, CURLOPT_URL, w->url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L); /* a redirect is an answer, not a 2xx */
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)timeout_ms);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, ev->body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)ev->len);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard_cb);
    if (w->ca_file != NULL)
        curl_easy_setopt(h, CURLOPT_CAINFO, w->ca_file);
    cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
out:
    curl_slist_free_all(hdrs);
    return cc;
}

enum outcome { DELIVERED, FAILED, ABANDONED };

/* The wait before attempt n+1: backoff_ms doubled n-1 times, capped, then a random point in
 * its upper half, so that coordinators restarted together do not retry in step. */
static int backoff_wait(const webhook *w, int n)
{
    int64_t base = w->backoff_ms;
    for (int i = 1; i < n && base < w->backoff_max_ms; i++)
        base *= 2;
    if (base > w->backoff_max_ms)
        base = w->backoff_max_ms;
    uint32_t half = (uint32_t)(base / 2);
    return (int)(base - half + randombytes_uniform(half + 1));
}

/* Delivers ev with its retries. Called without mu. */
static enum outcome deliver(webhook *w, const wh_event *ev)
{
    char why[128];
    for (int n = 1;; n++) {
        int tmo = w->timeout_ms;
        pthread_mutex_lock(&w->mu);
        if (w->stopping) {
            /* stopping: no more retries, and a first attempt only in the time left */
            int64_t left = w->deadline - time_mono_ms();
            if (n > 1 || left <= 0) {
                pthread_mutex_unlock(&w->mu);
                return ABANDONED;
            }
            if (left < tmo)
                tmo = (int)left;
        }
        if (n > 1)
            w->counts.retried++;
        pthread_mutex_unlock(&w->mu);

        long status = 0;
        CURLcode cc = attempt(w, ev, n, tmo, &status);
        int retry = 1;
        if (cc == CURLE_OK && status >= 200 && status <= 299) {
            log_debug("webhook %s: %s %s delivered (attempt %d, http %ld)", w->shown, ev->event,
                      ev->id, n, status);
            return DELIVERED;
        }
        if (cc != CURLE_OK) {
            /* curl's generic text: it names no URL */
            snprintf(why, sizeof(why), "%s", curl_easy_strerror(cc));
        } else {
            snprintf(why, sizeof(why), "http status %ld", status);
            /* the receiver refused this payload: sending it again will not change that */
            if (status >= 400 && status <= 499 && status != 408 && status != 429)
                retry = 0;
        }
        if (!retry || n >= w->max_attempts) {
            log_warn("webhook %s: %s %s not delivered after %d attempt%s: %s", w->shown, ev->event,
                     ev->id, n, n == 1 ? "" : "s", why);
            return FAILED;
        }
        pthread_mutex_lock(&w->mu);
        int stopping = w->stopping;
        pthread_mutex_unlock(&w->mu);
        if (stopping) {
            log_warn("webhook %s: %s %s abandoned at shutdown after %d attempt%s: %s", w->shown,
                     ev->event, ev->id, n, n == 1 ? "" : "s", why);
            return ABANDONED;
        }
        int wait = backoff_wait(w, n);
        log_info("webhook %s: %s %s attempt %d failed (%s), next in %d ms", w->shown, ev->event,
                 ev->id, n, why, wait);
        int64_t until = time_mono_ms() + wait;
        pthread_mutex_lock(&w->mu);
        for (int64_t now = time_mono_ms(); !w->stopping && now < until; now = time_mono_ms())
            time_cond_wait_ms(&w->cv, &w->mu, (int)(until - now));
        pthread_mutex_unlock(&w->mu);
    }
}

static void *deliver_thread(void *arg)
{
    webhook *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (w->head == NULL && !w->stopping)
            pthread_cond_wait(&w->cv, &w->mu);
        if (w->head == NULL || (w->stopping && time_mono_ms() >= w->deadline))
            break;
        wh_event *ev = w->head;
        w->head = ev->next;
        if (w->head == NULL)
            w->tail = NULL;
        w->queued--;
        pthread_mutex_unlock(&w->mu);

        enum outcome o = deliver(w, ev);

        pthread_mutex_lock(&w->mu);
        if (o == DELIVERED)
            w->counts.delivered++;
        else if (o == FAILED)
            w->counts.failed++;
        else
            w->counts.dropped++;
        event_free(ev);
    }
    /* stopping: what is still queued is abandoned */
    size_t left = 0;
    while (w->head != NULL) {
        wh_event *ev = w->head;
        w->head = ev->next;
        event_free(ev);
        left++;
    }
    w->tail = NULL;
    w->queued = 0;
    w->counts.dropped += left;
    pthread_mutex_unlock(&w->mu);
    if (left > 0)
        log_warn("webhook %s: %zu queued event%s dropped at shutdown", w->shown, left,
                 left == 1 ? "" : "s");
    return NULL;
}

/* ---- public ---- */

int webhook_start(const webhook_opts *o, webhook **out, pgs_error *e)
{
    int rc;
    webhook *w = NULL;
    *out = NULL;

    if (sodium_init() < 0)
        return pgs_fail(e, PGS_EIO, "webhook: libsodium failed to initialize");
    pthread_once(&wh_curl_once, wh_curl_init);
    if (wh_curl_init_rc != CURLE_OK)
        return pgs_fail(e, PGS_EIO, "webhook: libcurl failed to initialize: %s",
                        curl_easy_strerror(wh_curl_init_rc));
    if (o->url == NULL || o->url[0] == '\0')
        return pgs_fail(e, PGS_EINVAL, "webhook url: missing");
    if (o->name == NULL || o->name[0] == '\0' || strlen(o->name) > WEBHOOK_NAME_MAX)
        return pgs_fail(e, PGS_EINVAL, "webhook name: 1 to %d bytes", WEBHOOK_NAME_MAX);
    json_t *probe = json_string(o->name);
    if (probe == NULL)
        return pgs_fail(e, PGS_EINVAL, "webhook name: not valid UTF-8");
    json_decref(probe);
    if (o->secret_len > WEBHOOK_SECRET_MAX || (o->secret == NULL && o->secret_len > 0))
        return pgs_fail(e, PGS_EINVAL, "webhook secret: at most %d bytes", WEBHOOK_SECRET_MAX);

    if ((w = calloc(1, sizeof(*w))) == NULL)
        return pgs_fail(e, PGS_ENOMEM, "webhook: out of memory");
    if ((rc = check_url(w, o->url, e)) != 0 ||
        (rc = check_int("timeout_ms", o->timeout_ms, WEBHOOK_DEFAULT_TIMEOUT_MS, 100, 600000,
                        &w->timeout_ms, e)) != 0 ||
        (rc = check_int("max_attempts", o->max_attempts, WEBHOOK_DEFAULT_MAX_ATTEMPTS, 1, 100,
                        &w->max_attempts, e)) != 0 ||
        (rc = check_int("backoff_ms", o->backoff_ms, WEBHOOK_DEFAULT_BACKOFF_MS, 1, 3600000,
                        &w->backoff_ms, e)) != 0 ||
        (rc = check_int("backoff_max_ms", o->backoff_max_ms, WEBHOOK_DEFAULT_BACKOFF_MAX_MS, 1,
                        3600000, &w->backoff_max_ms, e)) != 0) {
        free(w);
        return rc;
    }
    w->queue_max = o->queue_max == 0 ? WEBHOOK_DEFAULT_QUEUE_MAX : o->queue_max;
    if (w->queue_max > 100000) {
        free(w);
        return pgs_fail(e, PGS_EINVAL, "webhook queue_max: %zu is more than 100000", o->queue_max);
    }
    if (pthread_mutex_init(&w->mu, NULL) != 0) {
        free(w);
        return pgs_fail(e, PGS_ENOMEM, "webhook: out of memory");
    }
    if (pthread_cond_init(&w->cv, NULL) != 0) {
        pthread_mutex_destroy(&w->mu);
        free(w);
        return pgs_fail(e, PGS_ENOMEM, "webhook: out of memory");
    }
    w->joined = 1; /* nothing to join until the thread runs */

    if ((w->name = strdup(o->name)) == NULL || (w->url = strdup(o->url)) == NULL ||
        (o->ca_file != NULL && (w->ca_file = strdup(o->ca_file)) == NULL))
        goto nomem;
    if (o->secret_len > 0) {
        if ((w->secret = malloc(o->secret_len)) == NULL)
            goto nomem;
        memcpy(w->secret, o->secret, o->secret_len);
        w->secret_len = o->secret_len;
    }
    if ((w->h = curl_easy_init()) == NULL)
        goto nomem;
    if (pthread_create(&w->thread, NULL, deliver_thread, w) != 0) {
        rc = pgs_fail(e, PGS_EIO, "webhook: cannot start the delivery thread");
        goto fail;
    }
    w->thread_started = 1;
    w->joined = 0;
    *out = w;
    return 0;
nomem:
    rc = pgs_fail(e, PGS_ENOMEM, "webhook: out of memory");
fail:
    webhook_free(w);
    return rc;
}

int webhook_post(webhook *w, const char *event, json_t *data)
{
    char stamp[32];
    uint8_t rnd[WEBHOOK_ID_LEN / 2];
    wh_event *ev = NULL;
    json_t *body = NULL;
    int rc = PGS_EINVAL;
    size_t i;

    for (i = 0; i < sizeof(wh_events) / sizeof(wh_events[0]); i++)
        if (event != NULL && strcmp(event, wh_events[i]) == 0)
            break;
    if (i == sizeof(wh_events) / sizeof(wh_events[0]))
        goto out;
    if (data == NULL && (data = json_object()) == NULL) {
        rc = PGS_ENOMEM;
        goto out;
    }
    if (!json_is_object(data))
        goto out;

    if ((ev = calloc(1, sizeof(*ev))) == NULL) {
        rc = PGS_ENOMEM;
        goto out;
    }
    snprintf(ev->event, sizeof(ev->event), "%s", event);
    randombytes_buf(rnd, sizeof(rnd));
    hex_encode(rnd, sizeof(rnd), ev->id);

    int64_t ms = time_now_ms();
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));

    /* jansson keeps insertion order, so the fields come out in the documented order */
    body = json_pack("{s:s, s:s, s:s, s:s, s:O}", "event", event, "id", ev->id, "time", stamp,
                     "coordinator", w->name, "data", data);
    if (body == NULL || (ev->body = json_dumps(body, JSON_COMPACT)) == NULL) {
        rc = PGS_ENOMEM;
        goto out;
    }
    ev->len = strlen(ev->body);
    if (ev->len > WEBHOOK_BODY_MAX) {
        rc = PGS_ELIMIT;
        goto out;
    }

    wh_event *dropped = NULL;
    pthread_mutex_lock(&w->mu);
    if (w->stopping) {
        pthread_mutex_unlock(&w->mu);
        rc = PGS_EINVAL;
        goto out;
    }
    if (w->queued >= w->queue_max) {
        /* the oldest goes: the newest failure is the one an operator must see */
        dropped = w->head;
        w->head = dropped->next;
        if (w->head == NULL)
            w->tail = NULL;
        w->queued--;
        w->counts.dropped++;
    }
    if (w->tail != NULL)
        w->tail->next = ev;
    else
        w->head = ev;
    w->tail = ev;
    w->queued++;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    if (dropped != NULL) {
        log_warn("webhook %s: queue full (%zu events), dropped %s %s", w->shown, w->queue_max,
                 dropped->event, dropped->id);
        event_free(dropped);
    }
    ev = NULL;
    rc = 0;
out:
    json_decref(body);
    json_decref(data);
    event_free(ev);
    return rc;
}

void webhook_stats(webhook *w, webhook_counts *out)
{
    pthread_mutex_lock(&w->mu);
    *out = w->counts;
    pthread_mutex_unlock(&w->mu);
}

void webhook_stop(webhook *w)
{
    if (w == NULL || w->joined)
        return;
    pthread_mutex_lock(&w->mu);
    if (!w->stopping) {
        w->stopping = 1;
        w->deadline = time_mono_ms() + w->timeout_ms;
    }
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    w->joined = 1;
}

void webhook_free(webhook *w)
{
    if (w == NULL)
        return;
    if (w->thread_started)
        webhook_stop(w);
    if (w->h != NULL)
        curl_easy_cleanup(w->h);
    if (w->secret != NULL) {
        sodium_memzero(w->secret, w->secret_len);
        free(w->secret);
    }
    while (w->head != NULL) {
        wh_event *ev = w->head;
        w->head = ev->next;
        event_free(ev);
    }
    free(w->name);
    if (w->url != NULL) {
        sodium_memzero(w->url, strlen(w->url)); /* it may carry a token */
        free(w->url);
    }
    free(w->ca_file);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
