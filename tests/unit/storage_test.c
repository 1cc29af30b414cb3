/*
 * Tests of the storage interface's shared checks (keys, configuration) and of the S3 backend's
 * behaviour against a scripted HTTP server on loopback, in the manner of pgBackRest's S3 tests:
 * the server records each request (method, target, headers, body digest) and answers as the test
 * says. That shows what no real S3 stand-in shows on demand: which answers are retried and which
 * are not, a GET cut short after bytes reached the caller, a 200 carrying an <Error>, a server
 * that stops answering, pagination, the order and encoding of query parameters, and what a failed
 * multipart upload sends.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/fsutil.h"
#include "common/sha256.h"
#include "coordinator/storage.h"
#include "tests/unit/testutil.h"

/* ---- a scripted S3 server ---- */

#define FAKE_MAX_REQ 128

typedef struct fake_req {
    char method[16];
    char target[2048];
    char headers[4096];
    size_t body_len;
    char body_sha[SHA256_HEX_LEN + 1];
    char body[4096]; /* the first bytes, NUL-terminated */
} fake_req;

typedef struct fake_resp {
    int status;
    char headers[512];   /* extra header lines, each ending in \r\n */
    const char *body;    /* NULL: empty */
    size_t body_len;     /* 0 with body set: strlen */
    size_t declared_len; /* 0: the body's length; else announce this many and send body only */
    int no_answer;       /* read the request, then say nothing until the client gives up */
} fake_resp;

typedef struct fake_s3 fake_s3;
typedef void (*fake_handler)(fake_s3 *f, const fake_req *r, int nth, fake_resp *out);

struct fake_s3 {
    int lfd;
    int port;
    pthread_t th;
    volatile int stop;
    pthread_mutex_t mu;
    fake_req reqs[FAKE_MAX_REQ];
    int nreq;
    fake_handler handler;
    int count; /* free for handlers: calls of a kind so far */
    char scratch[1 << 16];
};

static int fake_read_request(int fd, fake_req *r)
{
    char buf[8192];
    size_t got = 0;
    char *end = NULL;
    while (end == NULL) {
        if (got + 1 >= sizeof(buf))
            return -1;
        ssize_t n = read(fd, buf + got, sizeof(buf) - 1 - got);
        if (n <= 0)
            return -1;
        got += (size_t)n;
        buf[got] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    size_t hlen = (size_t)(end - buf) + 4;
    memset(r, 0, sizeof(*r));
    if (sscanf(buf, "%15s %2047s", r->method, r->target) != 2)
        return -1;
    snprintf(r->headers, sizeof(r->headers), "%.*s", (int)hlen, buf);
    size_t clen = 0;
    for (char *p = buf; p < end; p = strstr(p, "\r\n") + 2) {
        if (strncasecmp(p, "Content-Length:", 15) == 0)
            clen = strtoul(p + 15, NULL, 10);
        if (strstr(p, "\r\n") == NULL)
            break;
    }
    sha256_ctx *c = sha256_new();
    size_t have = got - hlen;
    if (have > clen)
        have = clen;
    sha256_update(c, buf + hlen, have);
    memcpy(r->body, buf + hlen, have < sizeof(r->body) - 1 ? have : sizeof(r->body) - 1);
    size_t done = have;
    while (done < clen) {
        char chunk[65536];
        size_t want = clen - done < sizeof(chunk) ? clen - done : sizeof(chunk);
        ssize_t n = read(fd, chunk, want);
        if (n <= 0)
            break;
        if (done < sizeof(r->body) - 1) {
            size_t k =
                (size_t)n < sizeof(r->body) - 1 - done ? (size_t)n : sizeof(r->body) - 1 - done;
            memcpy(r->body + done, chunk, k);
        }
        sha256_update(c, chunk, (size_t)n);
        done += (size_t)n;
    }
    uint8_t d[32];
    sha256_final(c, d);
    sha256_free(c);
    hex_encode(d, 32, r->body_sha);
    r->body_len = done;
    return done == clen ? 0 : -1;
}

static void *fake_main(void *arg)
{
    fake_s3 *f = arg;
    while (!f->stop) {
        struct pollfd p = {f->lfd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int fd = accept(f->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        fake_req r;
        if (fake_read_request(fd, &r) != 0) {
            close(fd);
            continue;
        }
        fake_resp out;
        memset(&out, 0, sizeof(out));
        out.status = 200;
        pthread_mutex_lock(&f->mu);
        int nth = f->nreq;
        if (f->nreq < FAKE_MAX_REQ)
            f->reqs[f->nreq++] = r;
        f->handler(f, &r, nth, &out);
        pthread_mutex_unlock(&f->mu);
        if (out.no_answer) {
            while (!f->stop) { /* wait for the client to hang up */
                struct pollfd q = {fd, POLLIN, 0};
                char c;
                if (poll(&q, 1, 50) > 0 && read(fd, &c, 1) <= 0)
                    break;
            }
            close(fd);
            continue;
        }
        size_t blen = out.body ? (out.body_len ? out.body_len : strlen(out.body)) : 0;
        char head[1024];
        int hl = snprintf(head, sizeof(head),
                          "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n%s\r\n",
                          out.status, out.declared_len ? out.declared_len : blen, out.headers);
        fs_write_all(fd, head, (size_t)hl);
        if (blen > 0 && strcmp(r.method, "HEAD") != 0)
            fs_write_all(fd, out.body, blen);
        shutdown(fd, SHUT_WR);
        close(fd);
    }
    return NULL;
}

static fake_s3 *fake_start(fake_handler h)
{
    fake_s3 *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->handler = h;
    pthread_mutex_init(&f->mu, NULL);
    f->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(f->lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(f->lfd, 64), 0);
    assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&a, &al), 0);
    f->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&f->th, NULL, fake_main, f), 0);
    return f;
}

static void fake_stop(fake_s3 *f)
{
    f->stop = 1;
    pthread_join(f->th, NULL);
    close(f->lfd);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

static int fake_count(fake_s3 *f, const char *method, const char *target_part)
{
    int n = 0;
    pthread_mutex_lock(&f->mu);
    for (int i = 0; i < f->nreq; i++)
        if (strcmp(f->reqs[i].method, method) == 0 && strstr(f->reqs[i].target, target_part))
            n++;
    pthread_mutex_unlock(&f->mu);
    return n;
}

static void set_error(fake_resp *out, int status, const char *code)
{
    static char body[256];
    snprintf(body, sizeof(body),
             "<?xml version=\"1.0\"?><Error><Code>%s</Code>"
             "<Message>scripted %s</Message></Error>",
             code, code);
    out->status = status;
    out->body = body;
}

static const char *g_session_token; /* for open_s3 */

static storage *open_s3(int port, unsigned attempts)
{
    storage_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.type = "s3";
    char endpoint[64];
    snprintf(endpoint, sizeof(endpoint), "http://127.0.0.1:%d", port);
    cfg.endpoint = endpoint;
    cfg.bucket = "bkt";
    cfg.path_style = 1;
    cfg.prefix = "it";
    cfg.access_key_id = "AKIDEXAMPLE";
    cfg.secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    cfg.session_token = g_session_token;
    cfg.part_size_mib = 5;
    cfg.parallel_parts = 2;
    cfg.max_attempts = attempts;
    cfg.retry_base_ms = 10;
    cfg.low_speed_time_s = 1;
    cfg.connect_timeout_s = 2;
    storage *s = NULL;
    pgs_error e = {0};
    if (storage_open(&s, &cfg, &e) != 0)
        fail_msg("storage_open: %s", e.msg);
    return s;
}

static int sink_buf(void *arg, const void *buf, size_t len)
{
    return tu_buf_append(arg, buf, len);
}

/* ---- key and configuration checks ---- */

static void test_storage_key_check(void **state)
{
    (void)state;
    pgs_error e = {0};
    assert_int_equal(storage_key_check("prod/agent-1/db_1/20260101T000000Z-ab12.pgship", 0, &e), 0);
    assert_int_equal(storage_key_check("a", 0, &e), 0);
    assert_int_equal(storage_key_check("", 1, &e), 0);
    assert_int_equal(storage_key_check("prod/", 1, &e), 0);
    assert_int_equal(storage_key_check("prod/ag", 1, &e), 0);
    TU_ASSERT_ERR(storage_key_check("", 0, &e), e, PGS_EINVAL, "empty");
    TU_ASSERT_ERR(storage_key_check("prod/", 0, &e), e, PGS_EINVAL, "ends with");
    TU_ASSERT_ERR(storage_key_check("prod//", 1, &e), e, PGS_EINVAL, "empty segment");
    TU_ASSERT_ERR(storage_key_check("/prod", 1, &e), e, PGS_EINVAL, "starts with");
    TU_ASSERT_ERR(storage_key_check(NULL, 0, &e), e, PGS_EINVAL, "missing");
    TU_ASSERT_ERR(storage_key_check("a/./b", 0, &e), e, PGS_EINVAL, "starting with \".\"");
    TU_ASSERT_ERR(storage_key_check("a/\x7f", 0, &e), e, PGS_EINVAL, "printable ASCII at byte 2");
}

static void expect_open_fails(const storage_config *cfg, const char *substr)
{
    storage *s = NULL;
    pgs_error e = {0};
    int rc = storage_open(&s, cfg, &e);
    if (rc != PGS_EINVAL || strstr(e.msg, substr) == NULL)
        fail_msg("expected EINVAL with \"%s\", got %d \"%s\"", substr, rc, e.msg);
    assert_null(s);
}

static void test_storage_open_refusals(void **state)
{
    (void)state;
    storage_config c;
    memset(&c, 0, sizeof(c));
    c.type = "ftp";
    expect_open_fails(&c, "unknown storage type");
    c.type = "fs";
    expect_open_fails(&c, "needs a path");

    storage_config good;
    memset(&good, 0, sizeof(good));
    good.type = "s3";
    good.endpoint = "http://127.0.0.1:9";
    good.bucket = "pgship";
    good.path_style = 1;
    good.access_key_id = "AK";
    good.secret_access_key = "SK";
    storage *s = NULL;
    pgs_error e = {0};
    assert_int_equal(storage_open(&s, &good, &e), 0); /* nothing is contacted */
    storage_close(s);
    storage_close(NULL);

    c = good;
    c.endpoint = NULL; /* AWS's endpoint for the region, which needs virtual-host style */
    c.path_style = 0;
    assert_int_equal(storage_open(&s, &c, &e), 0);
    storage_close(s);
    c = good;
    c.endpoint = "ftp://host";
    expect_open_fails(&c, "http:// or https://");
    c = good;
    c.endpoint = "http://host/some/path";
    expect_open_fails(&c, "bare scheme://host[:port]");
    c = good;
    c.endpoint = "http://user@host";
    expect_open_fails(&c, "bare scheme://host[:port]");
    c = good;
    c.endpoint = "not a url";
    expect_open_fails(&c, "not a URL");
    c = good;
    c.path_style = 0;
    expect_open_fails(&c, "virtual-host style needs a host name");
    c = good;
    c.bucket = "ab";
    expect_open_fails(&c, "not a valid bucket name");
    c = good;
    c.path_style = 0;
    c.endpoint = "https://s3.example.com";
    c.bucket = "Has_Upper";
    expect_open_fails(&c, "virtual-host style");
    c = good;
    c.access_key_id = "";
    expect_open_fails(&c, "access key id");
    c = good;
    c.secret_access_key = NULL;
    expect_open_fails(&c, "secret access key");
    c = good;
    c.part_size_mib = 4;
    expect_open_fails(&c, "part_size_mib 4 is outside [5, 5120]");
    c = good;
    c.part_size_mib = 5121;
    expect_open_fails(&c, "part_size_mib 5121");
    c = good;
    c.parallel_parts = 65;
    expect_open_fails(&c, "parallel_parts 65");
    c = good;
    c.session_token = "tok\r\nX-Injected: 1";
    expect_open_fails(&c, "session token");
    c = good;
    c.region = "us-east-1\nx";
    expect_open_fails(&c, "not a region name");
    c = good;
    c.prefix = "a/../b";
    expect_open_fails(&c, "storage prefix");
}

/* ---- S3 requests ---- */

static void handle_ok(fake_s3 *f, const fake_req *r, int nth, fake_resp *out)
{
    (void)f;
    (void)r;
    (void)nth;
    out->status = 200;
    snprintf(out->headers, sizeof(out->headers), "ETag: \"0123abcd\"\r\n");
}

static void test_storage_s3_put_signed_and_encoded(void **state)
{
    (void)state;
    fake_s3 *f = fake_start(handle_ok);
    g_session_token = "FQoGZXIvYXdzEXAMPLE+token/value==";
    storage *s = open_s3(f->port, 3);
    g_session_token = NULL;
    pgs_error e = {0};
    assert_int_equal(storage_put(s, "prod/a+b=c,d@e:f~g.pgship", "hello", 5, &e), 0);
    storage_close(s);
    assert_int_equal(f->nreq, 1);
    const fake_req *r = &f->reqs[0];
    assert_string_equal(r->method, "PUT");
    /* The prefix joined, the key URI-encoded as SigV4 wants (unreserved and "/" kept). */
    assert_string_equal(r->target, "/bkt/it/prod/a%2Bb%3Dc%2Cd%40e%3Af~g.pgship");
    assert_int_equal(r->body_len, 5);
    /* The body's SHA-256, which libcurl alone does not send, and it is signed. */
    char want[80];
    snprintf(want, sizeof(want), "x-amz-content-sha256: %s", r->body_sha);
    assert_non_null(strstr(r->headers, want));
    assert_non_null(strstr(r->headers, "Authorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"));
    assert_non_null(strstr(r->headers, "/us-east-1/s3/aws4_request"));
    /* Temporary credentials: the session token is sent, and signed. */
    assert_non_null(
        strstr(r->headers, "x-amz-security-token: FQoGZXIvYXdzEXAMPLE+token/value==\r\n"));
    assert_non_null(strstr(r->headers, "x-amz-content-sha256;x-amz-date;x-amz-security-token"));
    assert_null(strstr(r->headers, "wJalrXUtnFEMI"));
    fake_stop(f);
}

static void handle_503_twice(fake_s3 *f, const fake_req *r, int nth, fake_resp *out)
{
    (void)f;
    (void)r;
    if (nth < 2)
        set_error(out, 503, "SlowDown");
}

static void test_storage_s3_retries_5xx(void **state)
{
    (void)state;
    fake_s3 *f = fake_start(handle_503_twice);
    storage *s = open_s3(f->port, 3);
    pgs_error e = {0};
    assert_int_equal(storage_put(s, "k", "x", 1, &e), 0);
    assert_int_equal(f->nreq, 3);
    storage_close(s);
    fake_stop(f);
}

static void handle_always_500(fake_s3 *f, const fake_req *r, int nth, fake_resp *out)
{
    (void)f;
    (void)r;
    (void)nth;
    set_error(out, 500, "InternalError");
}

static void test_storage_s3_gives_up_after_max_attempts(void **state)
{
    (void)state;
    fake_s3 *f = fake_start(handle_always_500);
    storage *s = open_s3(f->port, 3);
    pgs_error e = {0};
    TU_ASSERT_ERR(storage_put(s, "k", "x", 1, &e), e, PGS_EIO,
                  "s3 PUT it/k: HTTP 500 InternalError: scripted InternalError (3 attempts)");
    assert_int_equal(f->nreq, 3);
    storage_close(s);
    fake_stop(f);
}

static const char *g_status_code; /* for handle_status */
static int g_status;

static void handle_status(fake_s3 *f, const fake_req *r, int nth, fake_resp *out)
{
    (void)f;
    (void)r;
    (void)nth;
    set_error(out, g_status, g_status_code);
}

static void test_storage_s3_4xx_not_retried(void **state)
{
    (void)state;
    static const struct {
        int status;
        const char *code;
        int want_rc;
        int want_requests;
    } cases[] = {
        {403, "AccessDenied", PGS_EAUTH, 1},  {403, "SignatureDoesNotMatch", PGS_EAUTH, 1},
        {400, "InvalidArgument", PGS_EIO, 1}, {404, "NoSuchBucket", PGS_ENOTFOUND, 1},
        {400, "RequestTimeout", PGS_EIO, 3}, /* S3 documents this one as worth retrying */
        {429, "TooManyRequests", PGS_EIO, 3},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        g_status = cases[i].status;
        g_status_code = cases[i].code;
        fake_s3 *f = fake_start(handle_status);
        storage *s = open_s3(f->port, 3);
        pgs_error e = {0};
        int rc = storage_put(s, "k", "x", 1, &e);
        if (rc != cases[i].want_rc || f->nreq != cases[i].want_requests ||
            strstr(e.msg, cases[i].code) == NULL)
            fail_msg("HTTP %d %s: rc %d after %d requests, \"%s\"", cases[i].status, cases[i].code,
                     rc, f->nreq, e.msg);
        storage_close(s);
        fake_stop(f);
    }
}

static void handle_get(fake_s3 *f, const fake_req *r, int nth, fake_resp *out)
{
    memset(f->scratch, 'g', 1000);
    if (strstr(r->target, "missing")) {
        set_error(out, 404, "NoSuchKey");
    } else if (strstr(r->target, "flaky") && nth == 0) {
        set_error(out, 503, "ServiceUnavailable");
    } else if (strstr(r->target, "cut")) {
        out->body = f->scratch;
        out->body_len = 100;
        out->declared_len = 1000; /* then the connection closes */
    } else {
        out->body = f->scratch;
        out->body_len = 1000;
    }
}

static void test_storage_s3_get(void **state)
{
    (void)state;
    fake_s3 *f = fake_start(handle_get);
    storage *s = open_s3(f->port, 3);
    pgs_error e = {0};
    tu_buf got = {0};
    assert_int_equal(storage_get(s, "flaky", sink_buf, &got, &e), 0);
    assert_int_equal(got.len, 1000); /* retried before any byte: delivered once */
    assert_int_equal(fake_count(f, "GET", "/bkt/it/flaky"), 2);
    tu_buf_free(&got);

    TU_ASSERT_ERR(storage_get(s, "missing", sink_buf, &got, &e), e, PGS_ENOTFOUND,
                  "HTTP 404 NoSuchKey");
    assert_int_equal(got.len, 0); /* the error body never reaches the sink */

    /* Bytes already went to the caller: no retry, or they would arrive twice. */
    int rc = storage_get(s, "cut", sink_buf, &got, &e);
    assert_int_equal(rc, PGS_EIO);
    assert_non_null(strstr(e.msg, "(1 attempt)"));
    assert_int_equal(got.len, 100);
    assert_int_equal(fake_count(f, "GET", "/bkt/it/cut"), 1);
    tu_buf_free(&got);
    storage_close(s);
    fake_stop(f);
}

static void handle_list(fake_s3 *f, const fake_req *r, int nth, fake_resp *out)
{
    (void)nth;
    if (strstr(r->target, "prefix=it%2Fbroken")) {
        out->body = "<ListBucketResult><Contents><Key>it/broken/x</Key>";
    } else if (strstr(r->target, "continuation-token=") == NULL) {
        out->body = "<ListBucketResult><IsTruncated>true</IsTruncated>"
                    "<Contents><Key>it/p/1</Key><Size>1</Size></Contents>"
                    "<Contents><Key>it/p/bad key</Key><Size>5</Size></Contents>"
                    "<NextContinuationToken>tok/+= x</NextContinuationToken>"
                    "</ListBucketResult>";
    } else {
        out->body = "<ListBucketResult><IsTruncated>false</IsTruncated>"
                    "<Contents><Key>it/p/2</Key><Size>22</Size></Contents>"
                    "<Contents><Key>it/p/3 &amp;</Key><Size>3</Size></Contents>"
                    "<Contents><Key>it/p/4&#x2B;</Key><Size>4</Size></Contents>"
                    "</ListBucketResult>";
    }
    (void)f;
}

typedef struct listed {
    int n;
    char keys[8][64];
    uint64_t sizes[8];
} listed;

static int list_collect(void *arg, const char *key, uint64_t size)
{
    listed *l = arg;
    assert_true(l->n < 8);
    snprintf(l->keys[l->n], 64, "%s", key);
    l->sizes[l->n++] = size;
    return 0;
}

static void test_storage_s3_list_pages(void **state)
{
    (void)state;
    fake_s3 *f = fake_start(handle_list);
    storage *s = open_s3(f->port, 3);
    pgs_error e = {0};
    listed l = {0};
    assert_int_equal(storage_list(s, "p/", list_collect, &l, &e), 0);
    /* Prefix stripped; keys that no pgship key can be are skipped. */
    assert_int_equal(l.n, 3);
    assert_string_equal(l.keys[0], "p/1");
    assert_string_equal(l.keys[1], "p/2");
    assert_int_equal(l.sizes[1], 22);
    assert_string_equal(l.keys[2], "p/4+");
    assert_int_equal(f->nreq, 2);
    /* Parameters sorted and encoded, as libcurl signs them; no delimiter. */
    assert_string_equal(f->reqs[0].target, "/bkt?list-type=2&max-keys=1000&prefix=it%2Fp%2F");
    assert_string_equal(f->reqs[1].target, "/bkt?continuation-token=tok%2F%2B%3D%20x&list-type=2"
                                           "&max-keys=1000&prefix=it%2Fp%2F");

    memset(&l, 0, sizeof(l));
    TU_ASSERT_ERR(storage_list(s, "broken/", list_collect, &l, &e), e, PGS_ETRUNC,
                  "s3 listing of \"it/broken/\"");
    assert_int_equal(l.n, 0);
    storage_close(s);
    fake_stop(f);
}

/* Multipart: create, parts (some failing when asked), complete, abort. */
static int g_fail_part;      /* part number that always fails with 400, or 0 */
static int g_complete_flaky; /* first complete answers 200 with an <Error> */

static void handle_multipart(fake_s3 *f, const fake_req *r, int nth, fake_resp *out)
{
    (void)nth;
    if (strcmp(r->method, "POST") == 0 && strstr(r->target, "?uploads=")) {
        out->body = "<InitiateMultipartUploadResult><Bucket>bkt</Bucket>"
                    "<UploadId>up/id+1=</UploadId></InitiateMultipartUploadResult>";
    } else if (strcmp(r->method, "PUT") == 0 && strstr(r->target, "partNumber=")) {
        int part = atoi(strstr(r->target, "partNumber=") + 11);
        if (part == g_fail_part) {
            set_error(out, 400, "InvalidPart");
            return;
        }
        snprintf(out->headers, sizeof(out->headers), "ETag: \"etag-%d\"\r\n", part);
    } else if (strcmp(r->method, "POST") == 0 && strstr(r->target, "uploadId=")) {
        if (g_complete_flaky && f->count++ == 0) {
            out->status = 200; /* S3 may fail a completion after it started answering */
            out->body = "\n\n<Error><Code>InternalError</Code><Message>later</Message></Error>";
            return;
        }
        out->body = "<CompleteMultipartUploadResult><ETag>\"x-3\"</ETag>"
                    "</CompleteMultipartUploadResult>";
    } else if (strcmp(r->method, "PUT") == 0 && strchr(r->target, '?') == NULL) {
        snprintf(out->headers, sizeof(out->headers), "ETag: \"whole\"\r\n");
    } else if (strcmp(r->method, "DELETE") == 0 && strstr(r->target, "uploadId=")) {
        out->status = 405; /* as s3rver */
        out->body = "<Error><Code>MethodNotAllowed</Code></Error>";
    } else {
        set_error(out, 400, "Unexpected");
    }
}

static void upload_bytes(storage *s, const char *key, size_t len, int *write_rc, int *commit_rc,
                         uint8_t sha[32], uint64_t *size, pgs_error *e)
{
    storage_upload *u = NULL;
    assert_int_equal(storage_upload_begin(s, key, &u, e), 0);
    uint8_t *buf = malloc(65536);
    assert_non_null(buf);
    *write_rc = 0;
    for (size_t off = 0; off < len && *write_rc == 0; off += 65536) {
        size_t n = len - off < 65536 ? len - off : 65536;
        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t)((off + i) * 31);
        *write_rc = storage_upload_write(u, buf, n, e);
    }
    free(buf);
    if (*write_rc != 0) {
        storage_upload_abort(u);
        *commit_rc = 1;
        return;
    }
    *commit_rc = storage_upload_commit(u, sha, size, e);
}

static void test_storage_s3_multipart(void **state)
{
    (void)state;
    g_fail_part = 0;
    g_complete_flaky = 1;
    fake_s3 *f = fake_start(handle_multipart);
    storage *s = open_s3(f->port, 3);
    pgs_error e = {0};
    int wrc, crc;
    uint8_t sha[32];
    uint64_t size = 0;
    size_t len = 12 * 1048576 + 5;
    upload_bytes(s, "m/obj.pgship", len, &wrc, &crc, sha, &size, &e);
    if (wrc != 0 || crc != 0)
        fail_msg("upload: %d %d %s", wrc, crc, e.msg);
    assert_int_equal(size, len);
    assert_int_equal(fake_count(f, "POST", "/bkt/it/m/obj.pgship?uploads="), 1);
    /* Parts: sorted parameters, the upload id encoded. */
    assert_int_equal(fake_count(f, "PUT", "?partNumber=1&uploadId=up%2Fid%2B1%3D"), 1);
    assert_int_equal(fake_count(f, "PUT", "?partNumber=3&uploadId=up%2Fid%2B1%3D"), 1);
    assert_int_equal(fake_count(f, "PUT", "partNumber="), 3);
    /* The 200 carrying an <Error> was retried. */
    assert_int_equal(fake_count(f, "POST", "?uploadId=up%2Fid%2B1%3D"), 2);
    const fake_req *complete = NULL;
    for (int i = 0; i < f->nreq; i++)
        if (strcmp(f->reqs[i].method, "POST") == 0 && strstr(f->reqs[i].target, "uploadId"))
            complete = &f->reqs[i];
    assert_non_null(complete);
    assert_string_equal(complete->body,
                        "<CompleteMultipartUpload>"
                        "<Part><PartNumber>1</PartNumber><ETag>&quot;etag-1&quot;</ETag></Part>"
                        "<Part><PartNumber>2</PartNumber><ETag>&quot;etag-2&quot;</ETag></Part>"
                        "<Part><PartNumber>3</PartNumber><ETag>&quot;etag-3&quot;</ETag></Part>"
                        "</CompleteMultipartUpload>");
    /* Each part carried its own SHA-256, so that S3 checks what it received. */
    for (int i = 0; i < f->nreq; i++) {
        if (strstr(f->reqs[i].target, "partNumber=") == NULL)
            continue;
        char want[80];
        snprintf(want, sizeof(want), "x-amz-content-sha256: %s", f->reqs[i].body_sha);
        assert_non_null(strstr(f->reqs[i].headers, want));
        assert_true(f->reqs[i].body_len == 5 * 1048576 || f->reqs[i].body_len == 2 * 1048576 + 5);
    }
    assert_int_equal(fake_count(f, "DELETE", ""), 0);
    storage_close(s);
    fake_stop(f);
}

static void test_storage_s3_exactly_one_part_is_a_put(void **state)
{
    (void)state;
    g_fail_part = 0;
    g_complete_flaky = 0;
    fake_s3 *f = fake_start(handle_multipart);
    storage *s = open_s3(f->port, 3);
    pgs_error e = {0};
    int wrc, crc;
    uint8_t sha[32];
    uint64_t size = 0;
    upload_bytes(s, "one", 5 * 1048576, &wrc, &crc, sha, &size, &e);
    assert_int_equal(wrc, 0);
    assert_int_equal(crc, 0);
    assert_int_equal(f->nreq, 1);
    assert_string_equal(f->reqs[0].method, "PUT");
    assert_string_equal(f->reqs[0].target, "/bkt/it/one");
    char want[80], hex[65];
    hex_encode(sha, 32, hex);
    assert_string_equal(hex, f->reqs[0].body_sha); /* commit reports what was sent */
    snprintf(want, sizeof(want), "x-amz-content-sha256: %s", hex);
    assert_non_null(strstr(f->reqs[0].headers, want));
    storage_close(s);
    fake_stop(f);
}

static void test_storage_s3_failed_part_aborts(void **state)
{
    (void)state;
    g_fail_part = 2;
    g_complete_flaky = 0;
    fake_s3 *f = fake_start(handle_multipart);
    storage *s = open_s3(f->port, 3);
    pgs_error e = {0};
    int wrc, crc;
    uint8_t sha[32];
    uint64_t size = 0;
    upload_bytes(s, "fail.pgship", 23 * 1048576, &wrc, &crc, sha, &size, &e);
    assert_true(wrc != 0 || crc != 0);
    assert_non_null(strstr(e.msg, "HTTP 400 InvalidPart"));
    assert_non_null(strstr(e.msg, "(1 attempt)"));
    /* Never completed; the upload was aborted (the 405 is survived and logged). */
    assert_int_equal(fake_count(f, "POST", "?uploadId="), 0);
    assert_int_equal(fake_count(f, "DELETE", "/bkt/it/fail.pgship?uploadId=up%2Fid%2B1%3D"), 1);
    storage_close(s);
    fake_stop(f);
}

static void handle_no_answer(fake_s3 *f, const fake_req *r, int nth, fake_resp *out)
{
    (void)f;
    (void)r;
    (void)nth;
    out->no_answer = 1;
}

static void test_storage_s3_silent_server_times_out(void **state)
{
    (void)state;
    fake_s3 *f = fake_start(handle_no_answer);
    storage *s = open_s3(f->port, 2); /* low_speed_time_s is 1 */
    pgs_error e = {0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    TU_ASSERT_ERR(storage_put(s, "k", "x", 1, &e), e, PGS_EIO, "(2 attempts)");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_non_null(strstr(e.msg, "Timeout"));
    assert_true(t1.tv_sec - t0.tv_sec < 10);
    storage_close(s);
    fake_stop(f);
}

static void test_storage_s3_nobody_listening(void **state)
{
    (void)state;
    /* A port that was free a moment ago. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &al), 0);
    close(fd);
    storage *s = open_s3(ntohs(a.sin_port), 3);
    pgs_error e = {0};
    TU_ASSERT_ERR(storage_put(s, "k", "x", 1, &e), e, PGS_EIO, "(3 attempts)");
    assert_non_null(strstr(e.msg, "connect"));
    storage_close(s);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_storage_key_check),
        cmocka_unit_test(test_storage_open_refusals),
        cmocka_unit_test(test_storage_s3_put_signed_and_encoded),
        cmocka_unit_test(test_storage_s3_retries_5xx),
        cmocka_unit_test(test_storage_s3_gives_up_after_max_attempts),
        cmocka_unit_test(test_storage_s3_4xx_not_retried),
        cmocka_unit_test(test_storage_s3_get),
        cmocka_unit_test(test_storage_s3_list_pages),
        cmocka_unit_test(test_storage_s3_multipart),
        cmocka_unit_test(test_storage_s3_exactly_one_part_is_a_put),
        cmocka_unit_test(test_storage_s3_failed_part_aborts),
        cmocka_unit_test(test_storage_s3_silent_server_times_out),
        cmocka_unit_test(test_storage_s3_nobody_listening),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
