/*
 * Tests of webhook delivery (coordinator/webhook.c) against a real HTTP receiver written here:
 * a thread with a listening socket on 127.0.0.1 (port 0) that records each request and answers
 * with scripted statuses, holds its first answer until released, or never answers. Checks the
 * retries and what is not retried, the payload and headers, the signature (recomputed here from
 * SHA-256 by RFC 2104, independently of libsodium), the bounded stop, and the queue that drops
 * its oldest event.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/sha256.h"
#include "common/timeutil.h"
#include "coordinator/webhook.h"
#include "tests/unit/testutil.h"

#define RX_MAX 16
#define SECRET "whsec_0123456789abcdef-0123456789abcdef" /* 39 bytes: not a block size */

/* ---- the receiver ---- */

typedef struct rx_req {
    char head[4096]; /* request line and headers */
    char *body;
    size_t body_len;
} rx_req;

typedef struct rx {
    int lfd;
    int port;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int statuses[RX_MAX]; /* answer to request i; past nstatuses: the last one */
    int nstatuses;
    int hang;       /* never answer */
    int hold_first; /* keep the first answer until released */
    int released;
    int quit;
    int nreq;
    rx_req req[RX_MAX];
} rx;

/* Reads one request from fd into r; 0, or -1 when the client went away. */
static int rx_read(int fd, rx_req *r)
{
    size_t got = 0;
    char *end = NULL;
    while (end == NULL) {
        if (got + 1 >= sizeof(r->head))
            return -1;
        ssize_t n = recv(fd, r->head + got, sizeof(r->head) - 1 - got, 0);
        if (n <= 0)
            return -1;
        got += (size_t)n;
        r->head[got] = '\0';
        end = strstr(r->head, "\r\n\r\n");
    }
    size_t head_len = (size_t)(end - r->head) + 4;
    size_t clen = 0;
    for (char *p = r->head; (p = strstr(p, "\r\n")) != NULL; p += 2)
        if (strncasecmp(p + 2, "Content-Length:", 15) == 0)
            clen = strtoul(p + 17, NULL, 10);
    r->body = calloc(1, clen + 1);
    size_t have = got - head_len;
    memcpy(r->body, r->head + head_len, have);
    while (have < clen) {
        ssize_t n = recv(fd, r->body + have, clen - have, 0);
        if (n <= 0)
            return -1;
        have += (size_t)n;
    }
    r->body_len = clen;
    r->head[head_len] = '\0';
    return 0;
}

static void *rx_main(void *arg)
{
    rx *s = arg;
    for (;;) {
        struct pollfd p = {s->lfd, POLLIN, 0};
        pthread_mutex_lock(&s->mu);
        int quit = s->quit;
        pthread_mutex_unlock(&s->mu);
        if (quit)
            break;
        if (poll(&p, 1, 20) <= 0)
            continue;
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        rx_req r = {0};
        if (rx_read(fd, &r) != 0) {
            free(r.body);
            close(fd);
            continue;
        }
        pthread_mutex_lock(&s->mu);
        int i = s->nreq;
        if (i < RX_MAX)
            s->req[i] = r;
        else
            free(r.body);
        s->nreq++;
        pthread_cond_broadcast(&s->cv);
        while (!s->quit && (s->hang || (s->hold_first && i == 0 && !s->released)))
            time_cond_wait_ms(&s->cv, &s->mu, 50);
        int status = s->nstatuses == 0  ? 200
                     : i < s->nstatuses ? s->statuses[i]
                                        : s->statuses[s->nstatuses - 1];
        quit = s->quit;
        pthread_mutex_unlock(&s->mu);
        if (!quit) {
            char resp[128];
            int n = snprintf(resp, sizeof(resp),
                             "HTTP/1.1 %d Scripted\r\nContent-Length: 2\r\n"
                             "Connection: close\r\n\r\nok",
                             status);
            (void)!send(fd, resp, (size_t)n, MSG_NOSIGNAL);
        }
        close(fd);
    }
    return NULL;
}

static rx *rx_start(const int *statuses, int n)
{
    rx *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    for (int i = 0; i < n; i++)
        s->statuses[i] = statuses[i];
    s->nstatuses = n;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->lfd >= 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->lfd, 16), 0);
    socklen_t al = sizeof(a);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
    s->port = ntohs(a.sin_port);
    return s;
}

static void rx_run(rx *s)
{
    assert_int_equal(pthread_create(&s->th, NULL, rx_main, s), 0);
}

static void rx_stop(rx *s)
{
    pthread_mutex_lock(&s->mu);
    s->quit = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->th, NULL);
    close(s->lfd);
    for (int i = 0; i < s->nreq && i < RX_MAX; i++)
        free(s->req[i].body);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static void rx_wait_requests(rx *s, int n)
{
    int64_t until = time_mono_ms() + 10000;
    pthread_mutex_lock(&s->mu);
    while (s->nreq < n && time_mono_ms() < until)
        time_cond_wait_ms(&s->cv, &s->mu, 50);
    int got = s->nreq;
    pthread_mutex_unlock(&s->mu);
    assert_true(got >= n);
}

static void rx_release(rx *s)
{
    pthread_mutex_lock(&s->mu);
    s->released = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* The value of header name in a request head (copied to out), or NULL. */
static const char *header(const rx_req *r, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *p = r->head; (p = strstr(p, "\r\n")) != NULL; p += 2) {
        if (strncasecmp(p + 2, name, nl) == 0 && p[2 + nl] == ':') {
            const char *v = p + 2 + nl + 1;
            while (*v == ' ')
                v++;
            size_t len = strcspn(v, "\r");
            assert_true(len < cap);
            memcpy(out, v, len);
            out[len] = '\0';
            return out;
        }
    }
    return NULL;
}

/* ---- helpers ---- */

static webhook *start(int port, const char *secret, int timeout_ms, int max_attempts,
                      size_t queue_max)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hooks/pgship?token=t0ps3cret", port);
    webhook_opts o = {
        .name = "coord-test",
        .url = url,
        .secret = (const uint8_t *)secret,
        .secret_len = secret != NULL ? strlen(secret) : 0,
        .timeout_ms = timeout_ms,
        .max_attempts = max_attempts,
        .backoff_ms = 10,
        .backoff_max_ms = 40,
        .queue_max = queue_max,
    };
    webhook *w = NULL;
    pgs_error e = {0};
    int rc = webhook_start(&o, &w, &e);
    if (rc != 0)
        fail_msg("webhook_start: %s", e.msg);
    return w;
}

/* Waits until n events have an outcome (delivered, failed or dropped). */
static webhook_counts wait_done(webhook *w, uint64_t n)
{
    webhook_counts c;
    int64_t until = time_mono_ms() + 10000;
    for (;;) {
        webhook_stats(w, &c);
        if (c.delivered + c.failed + c.dropped >= n || time_mono_ms() > until)
            break;
        usleep(5000);
    }
    assert_true(c.delivered + c.failed + c.dropped >= n);
    return c;
}

/* HMAC-SHA-256 by RFC 2104 over common/sha256.h, as a receiver in any language would check. */
static void hmac_hex(const char *key, size_t klen, const char *msg, size_t mlen, char *hex)
{
    uint8_t k[64] = {0}, pad[64], inner[SHA256_LEN], mac[SHA256_LEN];
    sha256_ctx *c = sha256_new();
    assert_non_null(c);
    if (klen > sizeof(k)) {
        sha256_update(c, key, klen);
        sha256_final(c, k);
        sha256_reset(c);
    } else {
        memcpy(k, key, klen);
    }
    for (int i = 0; i < 64; i++)
        pad[i] = k[i] ^ 0x36;
    sha256_update(c, pad, 64);
    sha256_update(c, msg, mlen);
    sha256_final(c, inner);
    sha256_reset(c);
    for (int i = 0; i < 64; i++)
        pad[i] = k[i] ^ 0x5c;
    sha256_update(c, pad, 64);
    sha256_update(c, inner, sizeof(inner));
    sha256_final(c, mac);
    sha256_free(c);
    hex_encode(mac, sizeof(mac), hex);
}

/* ---- tests ---- */

static void test_webhook_signature_known_answer(void **state)
{
    (void)state;
    char sig[72];
    /* RFC 4231, test case 2 */
    const char *data = "what do ya want for nothing?";
    webhook_signature((const uint8_t *)"Jefe", 4, data, strlen(data), sig);
    assert_string_equal(sig,
                        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
    /* a key longer than a block is hashed first, on both sides */
    char key[100], hex[SHA256_HEX_LEN + 1];
    memset(key, 0xaa, sizeof(key));
    webhook_signature((const uint8_t *)key, sizeof(key), data, strlen(data), sig);
    hmac_hex(key, sizeof(key), data, strlen(data), hex);
    assert_string_equal(sig + 7, hex);
}

static void test_webhook_retries_then_delivers(void **state)
{
    (void)state;
    static const int script[] = {500, 500, 200};
    rx *s = rx_start(script, 3);
    rx_run(s);
    webhook *w = start(s->port, SECRET, 2000, 5, 0);

    json_t *data = json_pack("{s:s, s:s, s:s, s:s}", "agent", "db1", "database", "app", "backup_id",
                             "b-123", "error", "pg_dump exited with status 1");
    int64_t before = time_now_ms();
    assert_int_equal(webhook_post(w, WEBHOOK_EVENT_BACKUP_FAILED, data), 0);
    webhook_counts c = wait_done(w, 1);
    assert_int_equal(c.delivered, 1);
    assert_int_equal(c.failed, 0);
    assert_int_equal(c.dropped, 0);
    assert_int_equal(c.retried, 2);
    webhook_free(w);

    pthread_mutex_lock(&s->mu);
    assert_int_equal(s->nreq, 3);
    pthread_mutex_unlock(&s->mu);

    char v[256], hex[SHA256_HEX_LEN + 1], want[80];
    const rx_req *r0 = &s->req[0];
    for (int i = 0; i < 3; i++) {
        const rx_req *r = &s->req[i];
        /* every attempt sends the same bytes, so the same signature and delivery id */
        assert_int_equal(r->body_len, r0->body_len);
        assert_memory_equal(r->body, r0->body, r0->body_len);
        assert_int_equal(strncmp(r->head, "POST /hooks/pgship?token=t0ps3cret HTTP/1.1\r\n", 45),
                         0);
        assert_string_equal(header(r, "Content-Type", v, sizeof(v)), "application/json");
        assert_string_equal(header(r, "User-Agent", v, sizeof(v)),
                            "pgship-coordinator/" PGSHIP_VERSION);
        assert_string_equal(header(r, "X-Pgship-Event", v, sizeof(v)), "backup.failed");
        snprintf(want, sizeof(want), "%d", i + 1);
        assert_string_equal(header(r, "X-Pgship-Attempt", v, sizeof(v)), want);
        hmac_hex(SECRET, strlen(SECRET), r->body, r->body_len, hex);
        snprintf(want, sizeof(want), "sha256=%s", hex);
        assert_string_equal(header(r, "X-Pgship-Signature", v, sizeof(v)), want);
        assert_null(header(r, "Expect", v, sizeof(v)));
    }

    json_error_t je;
    json_t *b = json_loadb(r0->body, r0->body_len, 0, &je);
    assert_non_null(b);
    assert_int_equal(json_object_size(b), 5);
    assert_string_equal(json_string_value(json_object_get(b, "event")), "backup.failed");
    assert_string_equal(json_string_value(json_object_get(b, "coordinator")), "coord-test");
    const char *id = json_string_value(json_object_get(b, "id"));
    assert_non_null(id);
    assert_int_equal(strlen(id), WEBHOOK_ID_LEN);
    assert_int_equal(strspn(id, "0123456789abcdef"), WEBHOOK_ID_LEN);
    assert_string_equal(header(r0, "X-Pgship-Delivery", v, sizeof(v)), id);
    /* "time": RFC 3339 UTC with milliseconds, between the post and now */
    const char *t = json_string_value(json_object_get(b, "time"));
    assert_non_null(t);
    int y, mo, d, h, mi, sec, ms;
    char z;
    assert_int_equal(
        sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c", &y, &mo, &d, &h, &mi, &sec, &ms, &z), 8);
    assert_int_equal(z, 'Z');
    assert_int_equal(strlen(t), 24);
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = sec};
    int64_t stamp = (int64_t)timegm(&tm) * 1000 + ms;
    assert_true(stamp >= before - 1 && stamp <= time_now_ms());
    json_t *dj = json_object_get(b, "data");
    assert_true(json_is_object(dj));
    assert_string_equal(json_string_value(json_object_get(dj, "agent")), "db1");
    assert_string_equal(json_string_value(json_object_get(dj, "error")),
                        "pg_dump exited with status 1");
    /* the documented order of the fields */
    assert_int_equal(strncmp(r0->body, "{\"event\":\"backup.failed\",\"id\":\"", 31), 0);
    json_decref(b);
    rx_stop(s);
}

static void test_webhook_client_error_not_retried(void **state)
{
    (void)state;
    static const int script[] = {400};
    rx *s = rx_start(script, 1);
    rx_run(s);
    webhook *w = start(s->port, NULL, 2000, 5, 0);
    assert_int_equal(webhook_post(w, WEBHOOK_EVENT_RESTORE_FAILED, NULL), 0);
    webhook_counts c = wait_done(w, 1);
    assert_int_equal(c.failed, 1);
    assert_int_equal(c.delivered, 0);
    assert_int_equal(c.retried, 0);
    usleep(100 * 1000); /* a retry would have come by now (backoff at most 40 ms) */
    webhook_free(w);
    pthread_mutex_lock(&s->mu);
    assert_int_equal(s->nreq, 1);
    pthread_mutex_unlock(&s->mu);
    char v[128];
    /* no secret: no signature; the body holds an empty data object */
    assert_null(header(&s->req[0], "X-Pgship-Signature", v, sizeof(v)));
    assert_non_null(strstr(s->req[0].body, ",\"data\":{}}"));
    rx_stop(s);
}

static void test_webhook_429_and_408_retried(void **state)
{
    (void)state;
    static const int script[] = {429, 408, 302, 204};
    rx *s = rx_start(script, 4);
    rx_run(s);
    webhook *w = start(s->port, NULL, 2000, 4, 0);
    assert_int_equal(webhook_post(w, WEBHOOK_EVENT_TEST, json_pack("{s:i}", "n", 1)), 0);
    webhook_counts c = wait_done(w, 1);
    assert_int_equal(c.delivered, 1);
    assert_int_equal(c.retried, 3);
    webhook_free(w);
    rx_stop(s);
}

static void test_webhook_gives_up_after_max_attempts(void **state)
{
    (void)state;
    static const int script[] = {503};
    rx *s = rx_start(script, 1);
    rx_run(s);
    webhook *w = start(s->port, NULL, 2000, 3, 0);
    assert_int_equal(webhook_post(w, WEBHOOK_EVENT_VERIFY_FAILED, NULL), 0);
    webhook_counts c = wait_done(w, 1);
    assert_int_equal(c.failed, 1);
    assert_int_equal(c.retried, 2);
    webhook_free(w);
    pthread_mutex_lock(&s->mu);
    assert_int_equal(s->nreq, 3);
    pthread_mutex_unlock(&s->mu);
    rx_stop(s);
}

static void test_webhook_connection_refused_retried(void **state)
{
    (void)state;
    /* a port that was just free: nothing listens there */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t al = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    close(fd);
    webhook *w = start(ntohs(a.sin_port), NULL, 1000, 3, 0);
    assert_int_equal(webhook_post(w, WEBHOOK_EVENT_BACKUP_OVERDUE, NULL), 0);
    webhook_counts c = wait_done(w, 1);
    assert_int_equal(c.failed, 1);
    assert_int_equal(c.retried, 2);
    webhook_free(w);
}

static void test_webhook_stop_bounded_by_timeout(void **state)
{
    (void)state;
    rx *s = rx_start(NULL, 0);
    s->hang = 1;
    rx_run(s);
    webhook *w = start(s->port, NULL, 500, 5, 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(webhook_post(w, WEBHOOK_EVENT_BACKUP_FAILED, NULL), 0);
    rx_wait_requests(s, 1);
    int64_t t0 = time_mono_ms();
    webhook_stop(w);
    int64_t took = time_mono_ms() - t0;
    assert_true(took <= 500 + 400);
    /* the one in flight is abandoned after its attempt, the two queued never started */
    webhook_counts c;
    webhook_stats(w, &c);
    assert_int_equal(c.delivered, 0);
    assert_int_equal(c.failed, 0);
    assert_int_equal(c.dropped, 3);
    assert_int_equal(webhook_post(w, WEBHOOK_EVENT_TEST, NULL), PGS_EINVAL);
    webhook_stop(w); /* again: nothing */
    webhook_free(w);
    rx_stop(s);
}

static void test_webhook_stop_delivers_queued_in_time(void **state)
{
    (void)state;
    rx *s = rx_start(NULL, 0);
    s->hold_first = 1;
    rx_run(s);
    webhook *w = start(s->port, NULL, 3000, 5, 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(webhook_post(w, WEBHOOK_EVENT_BACKUP_FAILED, NULL), 0);
    rx_wait_requests(s, 1);
    rx_release(s);
    /* the receiver answers at once now: everything goes out before the deadline */
    webhook_stop(w);
    webhook_counts c;
    webhook_stats(w, &c);
    assert_int_equal(c.delivered, 3);
    assert_int_equal(c.dropped, 0);
    webhook_free(w);
    rx_stop(s);
}

static void test_webhook_full_queue_drops_oldest(void **state)
{
    (void)state;
    rx *s = rx_start(NULL, 0);
    s->hold_first = 1;
    rx_run(s);
    webhook *w = start(s->port, NULL, 5000, 5, 2);
    assert_int_equal(webhook_post(w, WEBHOOK_EVENT_TEST, json_pack("{s:i}", "n", 0)), 0);
    rx_wait_requests(s, 1); /* event 0 is in flight, out of the queue */
    for (int i = 1; i <= 3; i++)
        assert_int_equal(webhook_post(w, WEBHOOK_EVENT_TEST, json_pack("{s:i}", "n", i)), 0);
    webhook_counts c;
    webhook_stats(w, &c);
    assert_int_equal(c.dropped, 1); /* event 1 went when 3 came */
    rx_release(s);
    c = wait_done(w, 4);
    assert_int_equal(c.delivered, 3);
    assert_int_equal(c.dropped, 1);
    webhook_free(w);

    static const int want[] = {0, 2, 3};
    pthread_mutex_lock(&s->mu);
    assert_int_equal(s->nreq, 3);
    for (int i = 0; i < 3; i++) {
        json_t *b = json_loadb(s->req[i].body, s->req[i].body_len, 0, NULL);
        assert_non_null(b);
        assert_int_equal(json_integer_value(json_object_get(json_object_get(b, "data"), "n")),
                         want[i]);
        json_decref(b);
    }
    pthread_mutex_unlock(&s->mu);
    rx_stop(s);
}

static void test_webhook_start_checks(void **state)
{
    (void)state;
    static const struct {
        const char *url;
        const char *msg;
    } bad[] = {
        {"ftp://example.com/secret-token", "is not http or https"},
        {"file:///etc/secret-token", "is not http or https"},
        {"example.com/secret-token", "not a valid absolute URL"},
        {"http://", "not a valid absolute URL"},
        {"http://exa mple.com/secret-token", "not a valid absolute URL"},
        {"", "missing"},
    };
    webhook *w = (webhook *)&w;
    pgs_error e = {0};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        webhook_opts o = {.name = "c", .url = bad[i].url};
        TU_ASSERT_ERR(webhook_start(&o, &w, &e), e, PGS_EINVAL, bad[i].msg);
        assert_null(w);
        assert_null(strstr(e.msg, "secret-token"));
    }
    char *huge = malloc(WEBHOOK_URL_MAX + 20);
    snprintf(huge, WEBHOOK_URL_MAX + 20, "http://h/%0*d", WEBHOOK_URL_MAX, 0);
    webhook_opts o = {.name = "c", .url = huge};
    TU_ASSERT_ERR(webhook_start(&o, &w, &e), e, PGS_EINVAL, "more than");
    free(huge);

    webhook_opts base = {.name = "c", .url = "https://hooks.example.com/x"};
    o = base;
    o.timeout_ms = 50;
    TU_ASSERT_ERR(webhook_start(&o, &w, &e), e, PGS_EINVAL, "timeout_ms");
    o = base;
    o.max_attempts = 101;
    TU_ASSERT_ERR(webhook_start(&o, &w, &e), e, PGS_EINVAL, "max_attempts");
    o = base;
    o.backoff_ms = -1;
    TU_ASSERT_ERR(webhook_start(&o, &w, &e), e, PGS_EINVAL, "backoff_ms");
    o = base;
    o.queue_max = 100001;
    TU_ASSERT_ERR(webhook_start(&o, &w, &e), e, PGS_EINVAL, "queue_max");
    o = base;
    o.name = "bad\xff";
    TU_ASSERT_ERR(webhook_start(&o, &w, &e), e, PGS_EINVAL, "name");
    o = base;
    o.name = NULL;
    TU_ASSERT_ERR(webhook_start(&o, &w, &e), e, PGS_EINVAL, "name");
    o = base;
    o.secret = (const uint8_t *)"s";
    o.secret_len = WEBHOOK_SECRET_MAX + 1;
    TU_ASSERT_ERR(webhook_start(&o, &w, &e), e, PGS_EINVAL, "secret");

    /* a good one (nothing is posted, so nothing is sent); HTTPS and upper case scheme too */
    o = base;
    o.url = "HTTPS://hooks.example.com:8443/x?token=1";
    assert_int_equal(webhook_start(&o, &w, &e), 0);
    webhook_free(w);
    webhook_free(NULL);
}

static void test_webhook_post_checks(void **state)
{
    (void)state;
    rx *s = rx_start(NULL, 0);
    rx_run(s);
    webhook *w = start(s->port, "k", 2000, 1, 0);
    assert_int_equal(webhook_post(w, "backup.succeeded", NULL), PGS_EINVAL);
    assert_int_equal(webhook_post(w, NULL, json_object()), PGS_EINVAL);
    assert_int_equal(webhook_post(w, WEBHOOK_EVENT_TEST, json_array()), PGS_EINVAL);
    assert_int_equal(webhook_post(w, WEBHOOK_EVENT_TEST, json_string("x")), PGS_EINVAL);
    char *big = malloc(WEBHOOK_BODY_MAX + 1);
    memset(big, 'x', WEBHOOK_BODY_MAX);
    big[WEBHOOK_BODY_MAX] = '\0';
    assert_int_equal(webhook_post(w, WEBHOOK_EVENT_TEST, json_pack("{s:s}", "big", big)),
                     PGS_ELIMIT);
    /* just under the bound goes out whole */
    big[WEBHOOK_BODY_MAX - 200] = '\0';
    assert_int_equal(webhook_post(w, WEBHOOK_EVENT_TEST, json_pack("{s:s}", "big", big)), 0);
    free(big);
    webhook_counts c = wait_done(w, 1);
    assert_int_equal(c.delivered, 1);
    assert_int_equal(c.failed + c.dropped, 0); /* refused posts are not counted */
    webhook_free(w);
    pthread_mutex_lock(&s->mu);
    assert_int_equal(s->nreq, 1);
    assert_true(s->req[0].body_len > WEBHOOK_BODY_MAX - 200);
    pthread_mutex_unlock(&s->mu);
    rx_stop(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_webhook_signature_known_answer),
        cmocka_unit_test(test_webhook_retries_then_delivers),
        cmocka_unit_test(test_webhook_client_error_not_retried),
        cmocka_unit_test(test_webhook_429_and_408_retried),
        cmocka_unit_test(test_webhook_gives_up_after_max_attempts),
        cmocka_unit_test(test_webhook_connection_refused_retried),
        cmocka_unit_test(test_webhook_stop_bounded_by_timeout),
        cmocka_unit_test(test_webhook_stop_delivers_queued_in_time),
        cmocka_unit_test(test_webhook_full_queue_drops_oldest),
        cmocka_unit_test(test_webhook_start_checks),
        cmocka_unit_test(test_webhook_post_checks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
