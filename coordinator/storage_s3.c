/*
 * The S3 backend, over libcurl with its SigV4 signer (CURLOPT_AWS_SIGV4). Two things the signer
 * of libcurl 7.88 leaves to us, and S3 refuses requests without: the x-amz-content-sha256 header
 * (the hex SHA-256 of the body; we always know it, because bodies are whole buffers), and a
 * canonical query string (libcurl signs the query as it is given, so every query here is built
 * already sorted and URI-encoded).
 *
 * Uploads: data is copied into a part buffer. An object that fits in one part goes out as a
 * single PUT at commit. Otherwise, when a full buffer is followed by more data, a multipart
 * upload is created and the buffer is handed to a fixed pool of parallel_parts worker threads,
 * each with its own connection, while the caller fills the next buffer; the caller blocks when
 * every buffer is taken, so memory stays at part_size x (parallel_parts + 1) and a slow bucket
 * slows the sender down. Commit sends the last part, waits for all of them, and completes the
 * upload with the parts' ETags; before that nothing is visible under the key.
 *
 * Retries: every request is tried up to max_attempts times with doubling back-off (with jitter)
 * on connection failures, timeouts, 500/502/503/504, 429 and S3's RequestTimeout, and on
 * nothing else: a 4xx is an answer, not an accident. Each retry is logged. A GET is retried only
 * while no byte has reached the caller's sink.
 */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "common/log.h"
#include "common/sha256.h"
#include "coordinator/s3_xml.h"
#include "coordinator/storage_intern.h"

#define S3_ETAG_MAX 128
#define S3_UPLOAD_ID_MAX 1024
#define S3_TOKEN_MAX 4096
#define S3_ERR_BODY_MAX (64u << 10) /* error and small XML answers are kept up to this */
#define S3_LIST_BODY_MAX (8u << 20) /* one ListObjectsV2 page of 1000 keys is well under */
#define S3_URL_MAX (STORAGE_KEY_MAX * 3 + S3_UPLOAD_ID_MAX * 3 + 1024)
#define S3_BACKOFF_CAP_MS 30000u
#define S3_IDLE_HANDLES 4
#define S3_EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

typedef struct s3_store {
    char base[1024]; /* scheme://host[:port]/bucket (path style) or scheme://bucket.host[:port] */
    int path_style;
    char sigv4[160]; /* "aws:amz:<region>:s3" */
    char *access_key;
    char *secret;
    char *token_header; /* "x-amz-security-token: <token>" or NULL */
    char *ca_file;
    size_t part_size;
    unsigned parallel;
    long connect_timeout_s;
    long low_speed_time_s;
    long request_timeout_s;
    unsigned max_attempts;
    unsigned retry_base_ms;
    pthread_mutex_t mu; /* guards idle */
    CURL *idle[S3_IDLE_HANDLES];
    int nidle;
} s3_store;

/* A growable response body with a bound. */
typedef struct s3_body {
    char *data;
    size_t len;
    size_t cap;
    size_t max;
    int overflow;
} s3_body;

typedef struct s3_req {
    const char *method; /* GET PUT POST DELETE */
    const char *key;    /* full key, or NULL for the bucket */
    const char *query;  /* canonical (sorted, encoded) or NULL */
    const char *content_type;
    const uint8_t *body; /* PUT and POST */
    size_t body_len;
    char payload_hash[SHA256_HEX_LEN + 1];
    storage_sink_fn sink; /* GET: 2xx bodies go here instead of resp */
    void *sink_arg;
    size_t resp_max;
    int error_in_200;   /* a 200 may carry <Error> (CompleteMultipartUpload) */
    atomic_int *cancel; /* set: stop now (an upload being aborted) */

    /* per attempt */
    CURL *h;
    size_t read_pos;
    long status;
    char etag[S3_ETAG_MAX];
    int etag_bad;
    s3_body resp;
    uint64_t delivered;
    int sink_rc;
    /* across attempts: some attempt may have been carried out without our seeing the answer */
    int maybe_done;
} s3_req;

static pthread_once_t s3_curl_once = PTHREAD_ONCE_INIT;
static CURLcode s3_curl_init_rc;
static atomic_int s3_abort_unsupported_logged;

static void s3_curl_init(void)
{
    s3_curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- small helpers ---- */

static char *s3_strdup(const char *s)
{
    return s != NULL ? strdup(s) : NULL;
}

/* URI-encodes in as SigV4 wants it: unreserved characters stay, everything else is %XX (and "/"
 * stays too when keep_slash, for object paths). 0 or PGS_ELIMIT. */
static int s3_uri_encode(const char *in, int keep_slash, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p != '\0'; p++) {
        int keep = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                   (*p >= '0' && *p <= '9') || *p == '-' || *p == '_' || *p == '.' || *p == '~' ||
                   (keep_slash && *p == '/');
        if (o + (keep ? 1 : 3) >= cap)
            return PGS_ELIMIT;
        if (keep) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = '\0';
    return 0;
}

/* Copies an untrusted string (an S3 error message) for a log line or an error message. */
static void s3_clean(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    for (; *in != '\0' && o + 1 < cap; in++)
        out[o++] = (*in >= ' ' && *in <= '~') ? *in : '?';
    out[o] = '\0';
}

static int s3_body_add(s3_body *b, const void *data, size_t len)
{
    if (b->overflow || b->len + len > b->max) {
        b->overflow = 1;
        return 0; /* keep draining; the caller decides whether a cut body matters */
    }
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + len + 1)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (p == NULL)
            return -1;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

static void s3_body_free(s3_body *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

static void s3_sleep_ms(unsigned ms, atomic_int *cancel)
{
    /* In slices, so that an abort does not wait out a long back-off. */
    while (ms > 0 && (cancel == NULL || !atomic_load(cancel))) {
        unsigned slice = ms < 50 ? ms : 50;
        struct timespec ts = {0, (long)slice * 1000000L};
        while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
            ;
        ms -= slice;
    }
}

/* ---- curl handles ---- */

static CURL *s3_handle_take(s3_store *s)
{
    CURL *h = NULL;
    pthread_mutex_lock(&s->mu);
    if (s->nidle > 0)
        h = s->idle[--s->nidle];
    pthread_mutex_unlock(&s->mu);
    return h != NULL ? h : curl_easy_init();
}

/* Keeps a few handles (and so their open connections) for the next request. */
static void s3_handle_give(s3_store *s, CURL *h)
{
    if (h == NULL)
        return;
    pthread_mutex_lock(&s->mu);
    if (s->nidle < S3_IDLE_HANDLES) {
        s->idle[s->nidle++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    if (h != NULL)
        curl_easy_cleanup(h);
}

/* ---- one request ---- */

static size_t s3_read_cb(char *buf, size_t size, size_t nitems, void *arg)
{
    s3_req *r = arg;
    size_t room = size * nitems, left = r->body_len - r->read_pos;
    size_t n = left < room ? left : room;
    if (n > 0)
        memcpy(buf, r->body + r->read_pos, n);
    r->read_pos += n;
    return n;
}

static int s3_seek_cb(void *arg, curl_off_t offset, int origin)
{
    s3_req *r = arg;
    if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > r->body_len)
        return CURL_SEEKFUNC_FAIL;
    r->read_pos = (size_t)offset;
    return CURL_SEEKFUNC_OK;
}

static size_t s3_write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
    s3_req *r = arg;
    size_t n = size * nmemb;
    if (r->status == 0)
        curl_easy_getinfo(r->h, CURLINFO_RESPONSE_CODE, &r->status);
    if (r->sink != NULL && r->status >= 200 && r->status < 300) {
        int rc = r->sink(r->sink_arg, data, n);
        if (rc != 0) {
            r->sink_rc = rc;
            return 0; /* curl stops with CURLE_WRITE_ERROR */
        }
        r->delivered += n;
        return n;
    }
    if (s3_body_add(&r->resp, data, n) != 0)
        return 0;
    return n;
}

static size_t s3_header_cb(char *data, size_t size, size_t nitems, void *arg)
{
    s3_req *r = arg;
    size_t n = size * nitems;
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        /* A new response (after a 100 Continue, say): forget the last one's headers. */
        r->etag[0] = '\0';
        r->etag_bad = 0;
        r->status = 0;
        return n;
    }
    if (n > 5 && strncasecmp(data, "etag:", 5) == 0) {
        size_t a = 5, b = n;
        while (a < b && (data[a] == ' ' || data[a] == '\t'))
            a++;
        while (b > a && (data[b - 1] == '\r' || data[b - 1] == '\n' || data[b - 1] == ' '))
            b--;
        r->etag_bad = 0;
        if (b - a == 0 || b - a >= sizeof(r->etag)) {
            r->etag_bad = 1;
            r->etag[0] = '\0';
            return n;
        }
        for (size_t i = a; i < b; i++)
            if ((unsigned char)data[i] < 0x20 || (unsigned char)data[i] > 0x7e)
                r->etag_bad = 1;
        memcpy(r->etag, data + a, b - a);
        r->etag[b - a] = '\0';
    }
    return n;
}

static int s3_xferinfo_cb(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                          curl_off_t ulnow)
{
    (void)dltotal;
    (void)dlnow;
    (void)ultotal;
    (void)ulnow;
    s3_req *r = arg;
    return atomic_load(r->cancel) ? 1 : 0;
}

static int s3_url(const s3_store *s, const char *key, const char *query, char *url, size_t cap)
{
    char enc[STORAGE_KEY_MAX * 3 + 1];
    if (key != NULL && s3_uri_encode(key, 1, enc, sizeof(enc)) != 0)
        return PGS_ELIMIT;
    int n;
    if (key != NULL)
        n = snprintf(url, cap, "%s/%s%s%s", s->base, enc, query ? "?" : "", query ? query : "");
    else
        n = snprintf(url, cap, "%s%s%s%s", s->base, s->path_style ? "" : "/", query ? "?" : "",
                     query ? query : "");
    return (n < 0 || (size_t)n >= cap) ? PGS_ELIMIT : 0;
}

/* One attempt. Returns the curl code; r->status holds the HTTP status when there was one. */
static CURLcode s3_attempt(s3_store *s, s3_req *r, const char *url)
{
    CURL *h = r->h;
    struct curl_slist *hdrs = NULL, *t;
    char line[128];
    CURLcode cc;

    curl_easy_reset(h);
    r->read_pos = 0;
    r->status = 0;
    r->etag[0] = '\0';
    r->etag_bad = 0;
    r->sink_rc = 0;
    s3_body_free(&r->resp);
    r->resp.max = r->resp_max;

    snprintf(line, sizeof(line), "x-amz-content-sha256: %s", r->payload_hash);
    if ((t = curl_slist_append(hdrs, line)) == NULL)
        goto nomem;
    hdrs = t;
    if (s->token_header != NULL) {
        if ((t = curl_slist_append(hdrs, s->token_header)) == NULL)
            goto nomem;
        hdrs = t;
    }
    if (r->content_type != NULL) {
        snprintf(line, sizeof(line), "Content-Type: %s", r->content_type);
        if ((t = curl_slist_append(hdrs, line)) == NULL)
            goto nomem;
        hdrs = t;
    }

    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, s->sigv4);
    curl_easy_setopt(h, CURLOPT_USERNAME, s->access_key);
    curl_easy_setopt(h, CURLOPT_PASSWORD, s->secret);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, s->connect_timeout_s);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, s->low_speed_time_s);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, s->request_timeout_s);
    curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
    /* Send bodies at once rather than wait a second for a "100 Continue" S3 may never send. */
    curl_easy_setopt(h, CURLOPT_EXPECT_100_TIMEOUT_MS, 0L);
    if (s->ca_file != NULL)
        curl_easy_setopt(h, CURLOPT_CAINFO, s->ca_file);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, s3_write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, s3_header_cb);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    if (r->cancel != NULL) {
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, s3_xferinfo_cb);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, r);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    }
    if (strcmp(r->method, "PUT") == 0) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, s3_read_cb);
        curl_easy_setopt(h, CURLOPT_READDATA, r);
        curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, s3_seek_cb);
        curl_easy_setopt(h, CURLOPT_SEEKDATA, r);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->body_len);
    } else if (strcmp(r->method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, r->body != NULL ? (const char *)r->body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
    } else if (strcmp(r->method, "DELETE") == 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
    }
    cc = curl_easy_perform(h);
    if (r->status == 0)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hdrs);
    return cc;
nomem:
    curl_slist_free_all(hdrs);
    return CURLE_OUT_OF_MEMORY;
}

static int s3_curl_retryable(CURLcode cc)
{
    switch (cc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return 1;
    default:
        return 0;
    }
}

/* S3's documented transient answers. */
static int s3_status_retryable(long status, const char *code)
{
    if (status == 500 || status == 502 || status == 503 || status == 504 || status == 429)
        return 1;
    return strcmp(code, "RequestTimeout") == 0 || strcmp(code, "InternalError") == 0 ||
           strcmp(code, "SlowDown") == 0 || strcmp(code, "ServiceUnavailable") == 0;
}

/* The storage operation a request serves, for the retry counters. */
static int s3_req_op(const s3_req *r)
{
    if (strcmp(r->method, "GET") == 0)
        return r->key != NULL ? STORAGE_OP_GET : STORAGE_OP_LIST;
    if (strcmp(r->method, "DELETE") == 0)
        return STORAGE_OP_DELETE;
    if (strcmp(r->method, "PUT") == 0 && r->query == NULL)
        return STORAGE_OP_PUT;
    return STORAGE_OP_UPLOAD;
}

/*
 * Runs r with retries. Returns 0 for a 2xx answer (r->resp, r->etag filled), or a negative code
 * with e naming the request, the last answer or failure, and how many attempts were made.
 */
static int s3_perform(s3_store *s, CURL *h, s3_req *r, pgs_error *e)
{
    char url[S3_URL_MAX];
    char what[STORAGE_KEY_MAX + 64];
    char reason[600];
    char code[64], msg[300], clean[300];
    unsigned attempt;
    int rc = 0;

    snprintf(what, sizeof(what), "s3 %s %s%s%s", r->method, r->key ? r->key : "(bucket)",
             r->query && strncmp(r->query, "uploads", 7) == 0 ? " (create multipart upload)" : "",
             r->query && strstr(r->query, "partNumber=") ? " (part)" : "");
    if (s3_url(s, r->key, r->query, url, sizeof(url)) != 0)
        return pgs_fail(e, PGS_ELIMIT, "%s: URL too long", what);
    r->h = h;
    r->maybe_done = 0;
    for (attempt = 1;; attempt++) {
        int retry = 0;
        CURLcode cc = s3_attempt(s, r, url);
        code[0] = msg[0] = '\0';
        if (cc == CURLE_OUT_OF_MEMORY) {
            rc = pgs_fail(e, PGS_ENOMEM, "%s: out of memory", what);
            break;
        }
        if (r->sink_rc != 0) {
            rc = storage_stopped(e, r->sink_rc, "reading", r->key ? r->key : "");
            break;
        }
        if (cc == CURLE_ABORTED_BY_CALLBACK && r->cancel != NULL && atomic_load(r->cancel)) {
            rc = pgs_fail(e, PGS_EINTR, "%s: cancelled", what);
            break;
        }
        if (cc != CURLE_OK) {
            snprintf(reason, sizeof(reason), "%s", curl_easy_strerror(cc));
            retry = s3_curl_retryable(cc);
            /* The request may have reached the service before the connection failed. */
            if (cc != CURLE_COULDNT_CONNECT && cc != CURLE_COULDNT_RESOLVE_HOST)
                r->maybe_done = 1;
            rc = PGS_EIO;
        } else {
            int is_error = r->status < 200 || r->status >= 300;
            if (r->resp.len > 0 && (is_error || r->error_in_200)) {
                pgs_error xe = {0};
                if (s3_xml_get(r->resp.data, r->resp.len, "Error/Code", code, sizeof(code), &xe) ==
                    1) {
                    is_error = 1;
                    s3_xml_get(r->resp.data, r->resp.len, "Error/Message", msg, sizeof(msg), &xe);
                }
            }
            if (!is_error) {
                rc = 0;
                break;
            }
            s3_clean(msg, clean, sizeof(clean));
            char ccode[64];
            s3_clean(code, ccode, sizeof(ccode));
            snprintf(reason, sizeof(reason), "HTTP %ld%s%s%s%s", r->status, ccode[0] ? " " : "",
                     ccode, clean[0] ? ": " : "", clean);
            retry = s3_status_retryable(r->status, code);
            if (r->status >= 500)
                r->maybe_done = 1;
            rc = (r->status == 401 || r->status == 403) ? PGS_EAUTH
                 : r->status == 404                     ? PGS_ENOTFOUND
                                                        : PGS_EIO;
        }
        if (retry && r->sink != NULL && r->delivered > 0)
            retry = 0; /* bytes already went to the caller: a retry would repeat them */
        if (!retry || attempt >= s->max_attempts || (r->cancel != NULL && atomic_load(r->cancel))) {
            rc = pgs_fail(e, rc, "%s: %s (%u attempt%s)", what, reason, attempt,
                          attempt == 1 ? "" : "s");
            break;
        }
        unsigned delay = s->retry_base_ms;
        for (unsigned i = 1; i < attempt && delay < S3_BACKOFF_CAP_MS; i++)
            delay *= 2;
        if (delay > S3_BACKOFF_CAP_MS)
            delay = S3_BACKOFF_CAP_MS;
        unsigned jitter = 0;
        if (getrandom(&jitter, sizeof(jitter), GRND_NONBLOCK) != (ssize_t)sizeof(jitter))
            jitter = (unsigned)attempt * 7919u;
        delay = delay / 2 + (delay > 1 ? jitter % (delay / 2 + 1) : 0);
        log_warn("%s: %s; retrying in %u ms (attempt %u of %u)", what, reason, delay, attempt + 1,
                 s->max_attempts);
        storage_note_retry(s3_req_op(r));
        s3_sleep_ms(delay, r->cancel);
    }
    if (rc != 0)
        s3_body_free(&r->resp);
    return rc;
}

/* A request on a handle from the store's idle set. */
static int s3_perform_pooled(s3_store *s, s3_req *r, pgs_error *e)
{
    CURL *h = s3_handle_take(s);
    if (h == NULL)
        return pgs_fail(e, PGS_ENOMEM, "cannot create a curl handle");
    int rc = s3_perform(s, h, r, e);
    s3_handle_give(s, h);
    return rc;
}

static void s3_req_init(s3_req *r, const char *method, const char *key, const char *query)
{
    memset(r, 0, sizeof(*r));
    r->method = method;
    r->key = key;
    r->query = query;
    r->resp_max = S3_ERR_BODY_MAX;
    snprintf(r->payload_hash, sizeof(r->payload_hash), "%s", S3_EMPTY_SHA256);
}

static int s3_req_body(s3_req *r, const void *body, size_t len, pgs_error *e)
{
    uint8_t digest[SHA256_LEN];
    sha256_ctx *c = sha256_new();
    if (c == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    r->body = body;
    r->body_len = len;
    sha256_update(c, body, len);
    sha256_final(c, digest);
    sha256_free(c);
    hex_encode(digest, sizeof(digest), r->payload_hash);
    return 0;
}

/* ---- open and close ---- */

static int s3_bucket_ok(const char *b, int path_style)
{
    size_t n = strlen(b);
    if (n < 3 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = b[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
                 (path_style && (c == '_' || (c >= 'A' && c <= 'Z')));
        if (!ok)
            return 0;
    }
    return 1;
}

static void s3_close(void *impl)
{
    s3_store *s = impl;
    if (s == NULL)
        return;
    for (int i = 0; i < s->nidle; i++)
        curl_easy_cleanup(s->idle[i]);
    if (s->secret != NULL) {
        explicit_bzero(s->secret, strlen(s->secret));
        free(s->secret);
    }
    if (s->token_header != NULL) {
        explicit_bzero(s->token_header, strlen(s->token_header));
        free(s->token_header);
    }
    free(s->access_key);
    free(s->ca_file);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static int s3_open(void **impl, const storage_config *cfg, pgs_error *e)
{
    s3_store *s = NULL;
    CURLU *u = NULL;
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *query = NULL, *user = NULL;
    int rc = 0;

    pthread_once(&s3_curl_once, s3_curl_init);
    if (s3_curl_init_rc != CURLE_OK)
        return pgs_fail(e, PGS_EIO, "cannot initialise libcurl: %s",
                        curl_easy_strerror(s3_curl_init_rc));
    if (cfg->bucket == NULL || !s3_bucket_ok(cfg->bucket, cfg->path_style))
        return pgs_fail(e, PGS_EINVAL, "storage bucket \"%.64s\" is not a valid bucket name%s",
                        cfg->bucket ? cfg->bucket : "",
                        cfg->path_style ? "" : " for virtual-host style (3-63 of a-z 0-9 . -)");
    if (cfg->access_key_id == NULL || cfg->access_key_id[0] == '\0' ||
        strlen(cfg->access_key_id) > 128)
        return pgs_fail(e, PGS_EINVAL, "storage type s3 needs an access key id");
    if (cfg->secret_access_key == NULL || cfg->secret_access_key[0] == '\0' ||
        strlen(cfg->secret_access_key) > 256)
        return pgs_fail(e, PGS_EINVAL, "storage type s3 needs a secret access key");
    const char *region = cfg->region != NULL && cfg->region[0] != '\0' ? cfg->region : "us-east-1";
    for (const char *p = region; *p != '\0'; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-') || p - region > 64)
            return pgs_fail(e, PGS_EINVAL, "storage region \"%.64s\" is not a region name", region);
    char aws_endpoint[128];
    const char *endpoint = cfg->endpoint;
    if (endpoint == NULL || endpoint[0] == '\0') {
        snprintf(aws_endpoint, sizeof(aws_endpoint), "https://s3.%s.amazonaws.com", region);
        endpoint = aws_endpoint;
    }
    /* The token goes into a header line: nothing but its base64-like alphabet. */
    const char *token =
        cfg->session_token != NULL && cfg->session_token[0] != '\0' ? cfg->session_token : NULL;
    if (token != NULL && (strlen(token) > 4096 ||
                          strspn(token, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                        "0123456789+/=_-") != strlen(token)))
        return pgs_fail(e, PGS_EINVAL, "storage session token is not a token");
    unsigned part_mib = cfg->part_size_mib ? cfg->part_size_mib : STORAGE_PART_SIZE_MIB_DEFAULT;
    if (part_mib < STORAGE_PART_SIZE_MIB_MIN || part_mib > STORAGE_PART_SIZE_MIB_MAX)
        return pgs_fail(e, PGS_EINVAL, "storage part_size_mib %u is outside [%d, %d]", part_mib,
                        STORAGE_PART_SIZE_MIB_MIN, STORAGE_PART_SIZE_MIB_MAX);
    unsigned parallel = cfg->parallel_parts ? cfg->parallel_parts : STORAGE_PARALLEL_PARTS_DEFAULT;
    if (parallel > STORAGE_PARALLEL_PARTS_MAX)
        return pgs_fail(e, PGS_EINVAL, "storage parallel_parts %u is outside [1, %d]", parallel,
                        STORAGE_PARALLEL_PARTS_MAX);

    u = curl_url();
    if (u == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    if (curl_url_set(u, CURLUPART_URL, endpoint, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
        rc = pgs_fail(e, PGS_EINVAL, "storage endpoint \"%.200s\" is not a URL", endpoint);
        goto out;
    }
    curl_url_get(u, CURLUPART_PORT, &port, 0);
    curl_url_get(u, CURLUPART_PATH, &path, 0);
    curl_url_get(u, CURLUPART_QUERY, &query, 0);
    curl_url_get(u, CURLUPART_USER, &user, 0);
    if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        rc = pgs_fail(e, PGS_EINVAL, "storage endpoint must be http:// or https://");
        goto out;
    }
    if ((path != NULL && strcmp(path, "/") != 0 && path[0] != '\0') || query != NULL ||
        user != NULL) {
        rc = pgs_fail(e, PGS_EINVAL,
                      "storage endpoint \"%.200s\" must be a bare "
                      "scheme://host[:port] (no path, query or user)",
                      endpoint);
        goto out;
    }
    if (!cfg->path_style && (host[0] == '[' || strspn(host, "0123456789.") == strlen(host))) {
        rc = pgs_fail(e, PGS_EINVAL,
                      "storage endpoint %s is an IP address: virtual-host style "
                      "needs a host name, or set path_style",
                      host);
        goto out;
    }

    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
        goto out;
    }
    pthread_mutex_init(&s->mu, NULL);
    s->path_style = cfg->path_style;
    int n = s->path_style ? snprintf(s->base, sizeof(s->base), "%s://%s%s%s/%s", scheme, host,
                                     port ? ":" : "", port ? port : "", cfg->bucket)
                          : snprintf(s->base, sizeof(s->base), "%s://%s.%s%s%s", scheme,
                                     cfg->bucket, host, port ? ":" : "", port ? port : "");
    if (n < 0 || (size_t)n >= sizeof(s->base)) {
        rc = pgs_fail(e, PGS_EINVAL, "storage endpoint is too long");
        goto out;
    }
    snprintf(s->sigv4, sizeof(s->sigv4), "aws:amz:%s:s3", region);
    s->access_key = s3_strdup(cfg->access_key_id);
    s->secret = s3_strdup(cfg->secret_access_key);
    s->ca_file = s3_strdup(cfg->ca_file);
    if (token != NULL && asprintf(&s->token_header, "x-amz-security-token: %s", token) < 0)
        s->token_header = NULL;
    if (s->access_key == NULL || s->secret == NULL || (cfg->ca_file && s->ca_file == NULL) ||
        (token != NULL && s->token_header == NULL)) {
        rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
        goto out;
    }
    s->part_size = (size_t)part_mib << 20;
    s->parallel = parallel;
    s->connect_timeout_s = cfg->connect_timeout_s ? (long)cfg->connect_timeout_s : 10;
    s->low_speed_time_s = cfg->low_speed_time_s ? (long)cfg->low_speed_time_s : 30;
    s->request_timeout_s = (long)cfg->request_timeout_s;
    s->max_attempts = cfg->max_attempts ? cfg->max_attempts : 5;
    s->retry_base_ms = cfg->retry_base_ms ? cfg->retry_base_ms : 500;
    if (s->max_attempts > 20)
        s->max_attempts = 20;
    log_debug("storage: s3 at %s, region %s, parts of %u MiB, %u in flight", s->base, region,
              part_mib, parallel);
    *impl = s;
    s = NULL;
out:
    s3_close(s);
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(query);
    curl_free(user);
    curl_url_cleanup(u);
    return rc;
}

/* ---- simple operations ---- */

static int s3_put(void *impl, const char *key, const void *buf, size_t len, pgs_error *e)
{
    s3_req r;
    s3_req_init(&r, "PUT", key, NULL);
    r.content_type = "application/octet-stream";
    int rc = s3_req_body(&r, buf, len, e);
    if (rc == 0)
        rc = s3_perform_pooled(impl, &r, e);
    s3_body_free(&r.resp);
    return rc;
}

static int s3_get(void *impl, const char *key, storage_sink_fn sink, void *arg, pgs_error *e)
{
    s3_req r;
    s3_req_init(&r, "GET", key, NULL);
    r.sink = sink;
    r.sink_arg = arg;
    int rc = s3_perform_pooled(impl, &r, e);
    s3_body_free(&r.resp);
    return rc;
}

static int s3_del(void *impl, const char *key, pgs_error *e)
{
    s3_req r;
    s3_req_init(&r, "DELETE", key, NULL);
    int rc = s3_perform_pooled(impl, &r, e);
    s3_body_free(&r.resp);
    if (rc == PGS_ENOTFOUND)
        rc = 0; /* S3 itself answers 204; a service that says 404 means the same */
    return rc;
}

typedef struct s3_list_ctx {
    const char *prefix;
    storage_list_fn cb;
    void *arg;
    pgs_error *e;
    int cb_rc;
} s3_list_ctx;

static int s3_list_one(void *arg, const char *frag, size_t len)
{
    s3_list_ctx *lc = arg;
    char key[STORAGE_KEY_MAX * 2];
    uint64_t size = 0;
    int rc = s3_xml_get(frag, len, "Key", key, sizeof(key), lc->e);
    if (rc < 0)
        return rc;
    if (rc == 0)
        return pgs_fail(lc->e, PGS_EFORMAT, "a Contents entry has no Key");
    if ((rc = s3_xml_get_u64(frag, len, "Size", &size, lc->e)) < 0)
        return rc;
    if (rc == 0)
        return pgs_fail(lc->e, PGS_EFORMAT, "a Contents entry has no Size");
    if (strncmp(key, lc->prefix, strlen(lc->prefix)) != 0)
        return 0; /* not asked for */
    if ((rc = lc->cb(lc->arg, key, size)) != 0) {
        lc->cb_rc = rc;
        return rc;
    }
    return 0;
}

static int s3_list(void *impl, const char *prefix, storage_list_fn cb, void *arg, pgs_error *e)
{
    s3_store *s = impl;
    char *token = NULL, *query = NULL;
    char epfx[STORAGE_KEY_MAX * 3 + 1];
    char *etok = NULL;
    char truncated[16] = "";
    unsigned pages = 0;
    int rc = 0;
    CURL *h = NULL;

    if (s3_uri_encode(prefix, 0, epfx, sizeof(epfx)) != 0)
        return pgs_fail(e, PGS_ELIMIT, "listing prefix too long");
    token = malloc(S3_TOKEN_MAX);
    etok = malloc(S3_TOKEN_MAX * 3 + 1);
    query = malloc(S3_TOKEN_MAX * 3 + sizeof(epfx) + 128);
    h = s3_handle_take(s);
    if (token == NULL || etok == NULL || query == NULL || h == NULL) {
        rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
        goto out;
    }
    token[0] = '\0';
    for (;;) {
        /* Parameters in sorted order: this string is what libcurl signs. No delimiter: a service
         * may leave out "folders" that hold only folders (s3rver does). */
        if (token[0] != '\0') {
            if (s3_uri_encode(token, 0, etok, S3_TOKEN_MAX * 3 + 1) != 0) {
                rc = pgs_fail(e, PGS_ELIMIT, "listing continuation token too long");
                goto out;
            }
            sprintf(query, "continuation-token=%s&list-type=2&max-keys=1000&prefix=%s", etok, epfx);
        } else {
            sprintf(query, "list-type=2&max-keys=1000&prefix=%s", epfx);
        }
        s3_req r;
        s3_req_init(&r, "GET", NULL, query);
        r.resp_max = S3_LIST_BODY_MAX;
        if ((rc = s3_perform(s, h, &r, e)) != 0)
            goto out;
        if (r.resp.overflow) {
            s3_body_free(&r.resp);
            rc = pgs_fail(e, PGS_ELIMIT, "s3 listing of %s: a page is larger than %u bytes", prefix,
                          S3_LIST_BODY_MAX);
            goto out;
        }
        const char *doc = r.resp.data ? r.resp.data : "";
        s3_list_ctx lc = {prefix, cb, arg, e, 0};
        rc = s3_xml_each(doc, r.resp.len, "ListBucketResult/Contents", s3_list_one, &lc, e);
        if (rc >= 0)
            rc = s3_xml_get(doc, r.resp.len, "ListBucketResult/IsTruncated", truncated,
                            sizeof(truncated), e);
        if (rc >= 0 && strcmp(truncated, "true") == 0)
            rc = s3_xml_get(doc, r.resp.len, "ListBucketResult/NextContinuationToken", token,
                            S3_TOKEN_MAX, e);
        else if (rc >= 0)
            token[0] = '\0';
        s3_body_free(&r.resp);
        if (lc.cb_rc != 0) {
            rc = storage_stopped(e, lc.cb_rc, "listing", prefix);
            goto out;
        }
        if (rc < 0) {
            pgs_wrap(e, "s3 listing of \"%s\"", prefix);
            goto out;
        }
        rc = 0;
        if (strcmp(truncated, "true") != 0)
            break;
        if (token[0] == '\0') {
            rc = pgs_fail(e, PGS_EFORMAT,
                          "s3 listing of \"%s\": a truncated page without a "
                          "continuation token",
                          prefix);
            goto out;
        }
        if (++pages > 1000000) {
            rc = pgs_fail(e, PGS_ELIMIT, "s3 listing of \"%s\" does not end", prefix);
            goto out;
        }
    }
out:
    s3_handle_give(s, h);
    free(token);
    free(etok);
    free(query);
    return rc;
}

/* ---- uploads ---- */

typedef struct s3_job {
    uint8_t *buf;
    size_t len;
    unsigned part;
} s3_job;

typedef struct s3_upload {
    s3_store *s;
    char key[STORAGE_FULL_KEY_MAX];
    sha256_ctx *sha;
    uint64_t size;
    uint8_t *cur; /* the buffer being filled */
    size_t cur_len;

    /* multipart, once started */
    char upload_id[S3_UPLOAD_ID_MAX];
    char query_id[S3_UPLOAD_ID_MAX * 3 + 16]; /* "uploadId=<encoded>" */
    unsigned parts;                           /* parts handed out so far */

    pthread_mutex_t mu;
    pthread_cond_t cv;
    s3_job queue[STORAGE_PARALLEL_PARTS_MAX + 1];
    unsigned qhead, qlen;
    uint8_t *spare[STORAGE_PARALLEL_PARTS_MAX + 1]; /* buffers back from the workers */
    unsigned nspare;
    unsigned nbufs; /* buffers allocated, cur included */
    unsigned done;  /* parts stored */
    char (*etags)[S3_ETAG_MAX];
    unsigned etags_cap;
    int failed;
    pgs_error err;
    int stop;
    atomic_int cancel;
    pthread_t threads[STORAGE_PARALLEL_PARTS_MAX];
    unsigned nthreads;
} s3_upload;

/* Stores one part; called by a worker without the lock. */
static int s3_upload_part(s3_upload *u, CURL *h, const s3_job *j, char etag[S3_ETAG_MAX],
                          pgs_error *e)
{
    char query[sizeof(u->query_id) + 32];
    s3_req r;
    snprintf(query, sizeof(query), "partNumber=%u&%s", j->part, u->query_id);
    s3_req_init(&r, "PUT", u->key, query);
    r.cancel = &u->cancel;
    int rc = s3_req_body(&r, j->buf, j->len, e);
    if (rc == 0)
        rc = s3_perform(u->s, h, &r, e);
    if (rc == 0 && (r.etag[0] == '\0' || r.etag_bad))
        rc = pgs_fail(e, PGS_EFORMAT, "s3 PUT %s part %u: the answer has no usable ETag", u->key,
                      j->part);
    if (rc == 0)
        memcpy(etag, r.etag, S3_ETAG_MAX);
    s3_body_free(&r.resp);
    return rc;
}

static void *s3_worker(void *arg)
{
    s3_upload *u = arg;
    CURL *h = curl_easy_init();
    pthread_mutex_lock(&u->mu);
    for (;;) {
        while (u->qlen == 0 && !u->stop)
            pthread_cond_wait(&u->cv, &u->mu);
        if (u->qlen == 0)
            break;
        s3_job j = u->queue[u->qhead];
        u->qhead = (u->qhead + 1) % (STORAGE_PARALLEL_PARTS_MAX + 1);
        u->qlen--;
        int skip = u->failed;
        pthread_mutex_unlock(&u->mu);

        char etag[S3_ETAG_MAX];
        pgs_error pe = {0};
        int rc = skip        ? PGS_EINTR
                 : h == NULL ? pgs_fail(&pe, PGS_ENOMEM, "cannot create a curl handle")
                             : s3_upload_part(u, h, &j, etag, &pe);

        pthread_mutex_lock(&u->mu);
        if (rc == 0) {
            memcpy(u->etags[j.part - 1], etag, S3_ETAG_MAX);
            u->done++;
        } else if (!u->failed) {
            u->failed = 1;
            u->err = pe;
        }
        u->spare[u->nspare++] = j.buf;
        pthread_cond_broadcast(&u->cv);
    }
    pthread_mutex_unlock(&u->mu);
    if (h != NULL)
        curl_easy_cleanup(h);
    return NULL;
}

static int s3_upload_begin(void *impl, const char *key, void **out, pgs_error *e)
{
    s3_store *s = impl;
    s3_upload *u = calloc(1, sizeof(*u));
    if (u == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    u->s = s;
    snprintf(u->key, sizeof(u->key), "%s", key);
    u->sha = sha256_new();
    if (u->sha == NULL) {
        free(u);
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    }
    pthread_mutex_init(&u->mu, NULL);
    pthread_cond_init(&u->cv, NULL);
    atomic_init(&u->cancel, 0);
    *out = u;
    return 0;
}

/* Creates the multipart upload and starts the workers. */
static int s3_multipart_start(s3_upload *u, pgs_error *e)
{
    s3_store *s = u->s;
    s3_req r;
    char enc[sizeof(u->query_id)];
    int rc;

    /* "uploads=" rather than "uploads": libcurl signs the query as written, and SigV4's
     * canonical form of a bare parameter has the "=". */
    s3_req_init(&r, "POST", u->key, "uploads=");
    r.content_type = "application/octet-stream";
    if ((rc = s3_perform_pooled(s, &r, e)) != 0)
        return rc;
    rc =
        s3_xml_get(r.resp.data ? r.resp.data : "", r.resp.len,
                   "InitiateMultipartUploadResult/UploadId", u->upload_id, sizeof(u->upload_id), e);
    s3_body_free(&r.resp);
    if (rc == 0)
        rc = pgs_fail(e, PGS_EFORMAT, "the answer has no UploadId");
    if (rc < 0)
        return pgs_wrap(e, "s3 create multipart upload of %s", u->key);
    if (u->upload_id[0] == '\0' || s3_uri_encode(u->upload_id, 0, enc, sizeof(enc)) != 0)
        return pgs_fail(e, PGS_EFORMAT, "s3 create multipart upload of %s: unusable UploadId",
                        u->key);
    snprintf(u->query_id, sizeof(u->query_id), "uploadId=%s", enc);
    log_debug("storage: multipart upload of %s started", u->key);

    for (unsigned i = 0; i < s->parallel; i++) {
        if (pthread_create(&u->threads[i], NULL, s3_worker, u) != 0)
            break;
        u->nthreads++;
    }
    if (u->nthreads == 0)
        return pgs_fail(e, PGS_EIO, "cannot start upload threads: %s", strerror(errno));
    return 0;
}

/* Queues the current buffer as the next part; the caller holds no lock. With want_next, waits
 * for a buffer to fill next (backpressure). */
static int s3_dispatch(s3_upload *u, int want_next, pgs_error *e)
{
    s3_store *s = u->s;
    int rc;
    if (u->upload_id[0] == '\0' && (rc = s3_multipart_start(u, e)) != 0)
        return rc;
    if (u->parts + 1 > STORAGE_MAX_PARTS || (want_next && u->parts + 2 > STORAGE_MAX_PARTS))
        return pgs_fail(e, PGS_ELIMIT,
                        "object %s would need more than %d parts of %zu MiB: "
                        "raise part_size_mib",
                        u->key, STORAGE_MAX_PARTS, s->part_size >> 20);

    pthread_mutex_lock(&u->mu);
    if (u->parts + 1 > u->etags_cap) {
        unsigned cap = u->etags_cap ? u->etags_cap * 2 : 64;
        if (cap > STORAGE_MAX_PARTS)
            cap = STORAGE_MAX_PARTS;
        void *p = realloc(u->etags, (size_t)cap * S3_ETAG_MAX);
        if (p == NULL) {
            pthread_mutex_unlock(&u->mu);
            return pgs_fail(e, PGS_ENOMEM, "out of memory");
        }
        u->etags = p;
        u->etags_cap = cap;
    }
    if (u->failed) {
        *e = u->err;
        pthread_mutex_unlock(&u->mu);
        return e->code;
    }
    unsigned slot = (u->qhead + u->qlen) % (STORAGE_PARALLEL_PARTS_MAX + 1);
    u->queue[slot] = (s3_job){u->cur, u->cur_len, ++u->parts};
    u->qlen++;
    u->cur = NULL;
    u->cur_len = 0;
    pthread_cond_broadcast(&u->cv);
    if (want_next) {
        /* One buffer per worker plus the one being filled: wait when all are taken. */
        while (!u->failed && u->nspare == 0 && u->nbufs >= s->parallel + 1)
            pthread_cond_wait(&u->cv, &u->mu);
        if (u->failed) {
            *e = u->err;
            pthread_mutex_unlock(&u->mu);
            return e->code;
        }
        if (u->nspare > 0)
            u->cur = u->spare[--u->nspare];
    }
    pthread_mutex_unlock(&u->mu);
    if (want_next && u->cur == NULL) {
        if ((u->cur = malloc(s->part_size)) == NULL)
            return pgs_fail(e, PGS_ENOMEM, "out of memory for a part buffer of %zu MiB",
                            s->part_size >> 20);
        u->nbufs++;
    }
    return 0;
}

static int s3_upload_write(void *upload, const void *buf, size_t len, pgs_error *e)
{
    s3_upload *u = upload;
    const uint8_t *p = buf;
    int rc;
    while (len > 0) {
        if (u->cur == NULL) {
            if ((u->cur = malloc(u->s->part_size)) == NULL)
                return pgs_fail(e, PGS_ENOMEM, "out of memory for a part buffer of %zu MiB",
                                u->s->part_size >> 20);
            u->nbufs++;
        }
        /* A full buffer leaves only when more data follows, so that an object of exactly one
         * part still goes out as a single PUT. */
        if (u->cur_len == u->s->part_size && (rc = s3_dispatch(u, 1, e)) != 0)
            return rc;
        size_t n = u->s->part_size - u->cur_len;
        if (n > len)
            n = len;
        memcpy(u->cur + u->cur_len, p, n);
        sha256_update(u->sha, p, n);
        u->cur_len += n;
        u->size += n;
        p += n;
        len -= n;
    }
    return 0;
}

/* Stops the workers (cancelling their transfers when cancel) and waits for them. */
static void s3_workers_stop(s3_upload *u, int cancel)
{
    if (cancel)
        atomic_store(&u->cancel, 1);
    pthread_mutex_lock(&u->mu);
    u->stop = 1;
    if (cancel)
        u->failed = u->failed ? u->failed : 1;
    pthread_cond_broadcast(&u->cv);
    pthread_mutex_unlock(&u->mu);
    for (unsigned i = 0; i < u->nthreads; i++)
        pthread_join(u->threads[i], NULL);
    u->nthreads = 0;
}

/* Aborts the multipart upload at the service, best effort. */
static void s3_multipart_abort(s3_upload *u)
{
    s3_req r;
    pgs_error e = {0};
    if (u->upload_id[0] == '\0')
        return;
    s3_req_init(&r, "DELETE", u->key, u->query_id);
    int rc = s3_perform_pooled(u->s, &r, &e);
    s3_body_free(&r.resp);
    if (rc == 0 || rc == PGS_ENOTFOUND)
        return;
    if (r.status == 405 || r.status == 501) {
        /* s3rver has no AbortMultipartUpload. The parts stay stored but no object appears. */
        if (atomic_exchange(&s3_abort_unsupported_logged, 1) == 0)
            log_warn("storage: the S3 service does not support aborting multipart uploads "
                     "(HTTP %ld); parts of unfinished uploads stay stored, invisible, until a "
                     "bucket lifecycle rule removes them",
                     r.status);
        return;
    }
    log_warn("storage: could not abort the multipart upload of %s: %s (its parts stay stored, "
             "invisible)",
             u->key, e.msg);
}

static void s3_upload_free(s3_upload *u)
{
    if (u == NULL)
        return;
    free(u->cur);
    for (unsigned i = 0; i < u->nspare; i++)
        free(u->spare[i]);
    for (unsigned i = 0; i < u->qlen; i++)
        free(u->queue[(u->qhead + i) % (STORAGE_PARALLEL_PARTS_MAX + 1)].buf);
    free(u->etags);
    sha256_free(u->sha);
    pthread_mutex_destroy(&u->mu);
    pthread_cond_destroy(&u->cv);
    free(u);
}

static void s3_upload_abort(void *upload)
{
    s3_upload *u = upload;
    s3_workers_stop(u, 1);
    s3_multipart_abort(u);
    s3_upload_free(u);
}

static int s3_complete(s3_upload *u, pgs_error *e)
{
    size_t cap = 64 + (size_t)u->parts * (S3_ETAG_MAX * 6 + 64);
    char *xml = malloc(cap), *esc = malloc(S3_ETAG_MAX * 6);
    size_t n = 0;
    int rc = 0;
    s3_req r;

    if (xml == NULL || esc == NULL) {
        rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
        goto out;
    }
    n += (size_t)snprintf(xml + n, cap - n, "<CompleteMultipartUpload>");
    for (unsigned i = 0; i < u->parts; i++) {
        if (s3_xml_escape(u->etags[i], esc, S3_ETAG_MAX * 6) != 0) {
            rc = pgs_fail(e, PGS_EFORMAT, "part %u of %s has an unusable ETag", i + 1, u->key);
            goto out;
        }
        n +=
            (size_t)snprintf(xml + n, cap - n,
                             "<Part><PartNumber>%u</PartNumber><ETag>%s</ETag></Part>", i + 1, esc);
    }
    n += (size_t)snprintf(xml + n, cap - n, "</CompleteMultipartUpload>");
    s3_req_init(&r, "POST", u->key, u->query_id);
    r.content_type = "application/xml";
    r.error_in_200 = 1;
    if ((rc = s3_req_body(&r, xml, n, e)) != 0)
        goto out;
    rc = s3_perform_pooled(u->s, &r, e);
    s3_body_free(&r.resp);
    if (rc != 0 && r.maybe_done) {
        /* An attempt may have completed the upload without our seeing the answer: take the
         * object away again, so that a failure never leaves one that looks complete. */
        pgs_error de = {0};
        int drc = s3_del(u->s, u->key, &de);
        log_warn("storage: completing %s failed after an attempt with no answer; %s", u->key,
                 drc == 0 ? "removed the object in case it was completed"
                          : "could not remove the object it may have completed");
    }
out:
    free(xml);
    free(esc);
    return rc;
}

static int s3_upload_commit(void *upload, uint8_t sha256[32], uint64_t *size, pgs_error *e)
{
    s3_upload *u = upload;
    int rc = 0;

    if (u->upload_id[0] == '\0') {
        /* Everything fit in one part: one PUT, whose body hash is the object's. */
        s3_req r;
        uint8_t digest[SHA256_LEN];
        sha256_final(u->sha, digest);
        s3_req_init(&r, "PUT", u->key, NULL);
        r.content_type = "application/octet-stream";
        r.body = u->cur;
        r.body_len = u->cur_len;
        hex_encode(digest, sizeof(digest), r.payload_hash);
        rc = s3_perform_pooled(u->s, &r, e);
        s3_body_free(&r.resp);
        if (rc == 0) {
            memcpy(sha256, digest, SHA256_LEN);
            *size = u->size;
        }
        s3_upload_free(u);
        return rc;
    }

    if (u->cur_len > 0 && (rc = s3_dispatch(u, 0, e)) != 0)
        goto fail;
    pthread_mutex_lock(&u->mu);
    while (!u->failed && u->done < u->parts)
        pthread_cond_wait(&u->cv, &u->mu);
    if (u->failed) {
        *e = u->err;
        rc = e->code;
    }
    pthread_mutex_unlock(&u->mu);
    if (rc != 0)
        goto fail;
    s3_workers_stop(u, 0);
    if ((rc = s3_complete(u, e)) != 0)
        goto fail;
    sha256_final(u->sha, sha256);
    *size = u->size;
    log_debug("storage: completed %s in %u parts", u->key, u->parts);
    s3_upload_free(u);
    return 0;
fail:
    s3_upload_abort(u);
    return rc;
}

const storage_backend storage_backend_s3 = {
    .name = "s3",
    .open = s3_open,
    .close = s3_close,
    .upload_begin = s3_upload_begin,
    .upload_write = s3_upload_write,
    .upload_commit = s3_upload_commit,
    .upload_abort = s3_upload_abort,
    .put = s3_put,
    .get = s3_get,
    .list = s3_list,
    .del = s3_del,
};
