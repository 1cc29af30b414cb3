/*
 * Tests of the alerter (coordinator/alerter.c) and of the catalog queries it reads with
 * (catalog_*_failed_since, catalog_data_version): a real catalog file in a temp directory, written
 * through a second handle with a clock of the test's, and a real HTTP receiver on 127.0.0.1 that
 * records every POST. Checks that each failure is posted exactly once -- rows ending in the same
 * millisecond, a row whose write commits after later rows were seen, nothing from before the
 * start point -- to the webhooks subscribed to its event, with the payload docs/monitoring.md
 * documents; the overdue rule's episodes; and the metrics the monitor's scrape gets from it.
 */
#include <arpa/inet.h>
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
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/timeutil.h"
#include "coordinator/alerter.h"
#include "coordinator/catalog.h"
#include "coordinator/metrics.h"
#include "coordinator/monitor.h"
#include "coordinator/webhook.h"
#include "tests/unit/testutil.h"

#define RX_MAX 256
#define SECRET "alerter-test-secret-0123456789"
#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define POLL_MS 50

/* ---- the receiver: answers every POST with status, keeps its event, headers and body ---- */

typedef struct rx_req {
    char head[4096];
    char *body;
} rx_req;

typedef struct rx {
    int lfd, port, status, quit, nreq;
    pthread_t th;
    pthread_mutex_t mu;
    rx_req req[RX_MAX];
} rx;

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
    size_t head_len = (size_t)(end - r->head) + 4, clen = 0;
    for (char *p = r->head; (p = strstr(p, "\r\n")) != NULL; p += 2)
        if (strncasecmp(p + 2, "Content-Length:", 15) == 0)
            clen = strtoul(p + 17, NULL, 10);
    if (clen > WEBHOOK_BODY_MAX || (r->body = calloc(1, clen + 1)) == NULL)
        return -1;
    size_t have = got - head_len;
    memcpy(r->body, r->head + head_len, have);
    while (have < clen) {
        ssize_t n = recv(fd, r->body + have, clen - have, 0);
        if (n <= 0)
            return -1;
        have += (size_t)n;
    }
    r->head[head_len] = '\0';
    return 0;
}

static void *rx_main(void *arg)
{
    rx *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        int quit = s->quit, status = s->status;
        pthread_mutex_unlock(&s->mu);
        if (quit)
            return NULL;
        struct pollfd p = {s->lfd, POLLIN, 0};
        if (poll(&p, 1, 20) <= 0)
            continue;
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        rx_req r = {0};
        if (rx_read(fd, &r) == 0) {
            pthread_mutex_lock(&s->mu);
            if (s->nreq < RX_MAX)
                s->req[s->nreq++] = r;
            else
                free(r.body);
            pthread_mutex_unlock(&s->mu);
            char resp[128];
            int n = snprintf(
                resp, sizeof(resp),
                "HTTP/1.1 %d Scripted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", status);
            (void)!send(fd, resp, (size_t)n, MSG_NOSIGNAL);
        } else {
            free(r.body);
        }
        close(fd);
    }
}

static rx *rx_start(int status)
{
    rx *s = calloc(1, sizeof(*s));
    assert_non_null(s);
    s->status = status;
    pthread_mutex_init(&s->mu, NULL);
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->lfd >= 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->lfd, 64), 0);
    socklen_t al = sizeof(a);
    assert_int_equal(getsockname(s->lfd, (struct sockaddr *)&a, &al), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->th, NULL, rx_main, s), 0);
    return s;
}

static void rx_stop(rx *s)
{
    pthread_mutex_lock(&s->mu);
    s->quit = 1;
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->th, NULL);
    close(s->lfd);
    for (int i = 0; i < s->nreq; i++)
        free(s->req[i].body);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* How many requests carried event (NULL: any) and, when id is given, data naming it in field. */
static int rx_count(rx *s, const char *event, const char *field, const char *id)
{
    int n = 0;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->nreq; i++) {
        json_t *j = json_loads(s->req[i].body, 0, NULL);
        const char *ev = json_string_value(json_object_get(j, "event"));
        const char *v =
            field ? json_string_value(json_object_get(json_object_get(j, "data"), field)) : NULL;
        if ((event == NULL || (ev && strcmp(ev, event) == 0)) &&
            (id == NULL || (v && strcmp(v, id) == 0)))
            n++;
        json_decref(j);
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* Waits up to 10 s until rx_count(...) >= want; returns the count. */
static int rx_wait(rx *s, const char *event, const char *field, const char *id, int want)
{
    int64_t until = time_mono_ms() + 10000;
    int n;
    while ((n = rx_count(s, event, field, id)) < want && time_mono_ms() < until)
        usleep(10000);
    return n;
}

/* The data of the (first) request whose data names id in field, a new reference; and its head. */
static json_t *rx_find(rx *s, const char *field, const char *id, char *head, size_t cap)
{
    json_t *out = NULL;
    pthread_mutex_lock(&s->mu);
    for (int i = 0; i < s->nreq && out == NULL; i++) {
        json_t *j = json_loads(s->req[i].body, 0, NULL);
        const char *v = json_string_value(json_object_get(json_object_get(j, "data"), field));
        if (v != NULL && strcmp(v, id) == 0) {
            out = json_incref(j);
            if (head != NULL) {
                snprintf(head, cap, "%s", s->req[i].head);
                /* The signature must be over these exact bytes. */
                char sig[72], want[100];
                webhook_signature((const uint8_t *)SECRET, strlen(SECRET), s->req[i].body,
                                  strlen(s->req[i].body), sig);
                snprintf(want, sizeof(want), "X-Pgship-Signature: %s\r\n", sig);
                assert_non_null(strstr(s->req[i].head, want));
            }
        }
        json_decref(j);
    }
    pthread_mutex_unlock(&s->mu);
    return out;
}

/* ---- the catalog, written by the test with a clock of its own ---- */

typedef struct fake_clock {
    int64_t ms; /* 0: the real clock */
} fake_clock;

static int64_t fake_now(void *arg)
{
    fake_clock *c = arg;
    return c->ms ? c->ms : time_now_ms();
}

static catalog *open_writer(void **state, const char *name, fake_clock *clk)
{
    char path[600];
    pgs_error e = {0};
    catalog *cat = NULL;
    tu_path_in(state, name, path, sizeof(path));
    assert_int_equal(catalog_open(path, &cat, &e), 0);
    catalog_set_clock(cat, fake_now, clk);
    assert_int_equal(catalog_agent_seen(cat, "a1", NULL, NULL, "0.1", 1, &e), 0);
    assert_int_equal(catalog_database_seen(cat, "a1", "app", "prod", "15.5", &e), 0);
    assert_int_equal(catalog_database_seen(cat, "a1", "other", "dev", "15.5", &e), 0);
    return cat;
}

static void new_backup(catalog *cat, const char *db, const char *scheduled,
                       char id[CATALOG_ID_SIZE])
{
    pgs_error e = {0};
    catalog_backup_req req = {.agent = "a1",
                              .database = db,
                              .environment = strcmp(db, "app") == 0 ? "prod" : "dev",
                              .requested_by = scheduled ? "schedule:nightly" : "ops",
                              .scheduled = scheduled};
    if (catalog_backup_new(cat, &req, id, &e) != 0)
        fail_msg("catalog_backup_new: %s", e.msg);
}

static void failed_backup(catalog *cat, const char *db, const char *why, char id[CATALOG_ID_SIZE])
{
    pgs_error e = {0};
    new_backup(cat, db, NULL, id);
    if (catalog_backup_fail(cat, id, why, &e) != 0)
        fail_msg("catalog_backup_fail: %s", e.msg);
}

static void complete_backup(catalog *cat, const char *db, char id[CATALOG_ID_SIZE])
{
    pgs_error e = {0};
    new_backup(cat, db, NULL, id);
    catalog_backup_info info = {.storage_key = "k/x"};
    if (catalog_backup_start(cat, id, &info, &e) != 0 ||
        catalog_backup_complete(cat, id, 1234, 0, SHA_A, "k/x", &e) != 0)
        fail_msg("complete: %s", e.msg);
}

/* ---- catalog queries ---- */

typedef struct ids {
    char id[16][CATALOG_ID_SIZE];
    int n;
} ids;

static int collect_backup(void *arg, const catalog_backup *b)
{
    ids *l = arg;
    assert_int_equal(b->state, CATALOG_FAILED);
    if (l->n < 16)
        snprintf(l->id[l->n++], CATALOG_ID_SIZE, "%s", b->id);
    return 0;
}

static int collect_restore(void *arg, const catalog_restore *r)
{
    ids *l = arg;
    assert_int_equal(r->state, CATALOG_FAILED);
    if (l->n < 16)
        snprintf(l->id[l->n++], CATALOG_ID_SIZE, "%s", r->id);
    return 0;
}

static int collect_verify(void *arg, const catalog_verification *v)
{
    ids *l = arg;
    assert_int_equal(v->state, CATALOG_VERIFY_FAILED);
    if (l->n < 16)
        snprintf(l->id[l->n++], CATALOG_ID_SIZE, "%s", v->id);
    return 0;
}

static int stop_at_first(void *arg, const catalog_backup *b)
{
    (void)b;
    (*(int *)arg)++;
    return 1;
}

static void test_catalog_failed_since_order(void **state)
{
    fake_clock clk = {1763740800000}; /* 2025-11-21T16:00:00.000Z */
    catalog *cat = open_writer(state, "c.db", &clk);
    pgs_error e = {0};
    char early[CATALOG_ID_SIZE], same[3][CATALOG_ID_SIZE], later[CATALOG_ID_SIZE];
    char ok[CATALOG_ID_SIZE], running[CATALOG_ID_SIZE];
    failed_backup(cat, "app", "pg_dump exited with status 1", early);
    clk.ms += 1000;
    for (int i = 0; i < 3; i++) /* three ends in the same millisecond */
        failed_backup(cat, i == 1 ? "other" : "app", "boom", same[i]);
    clk.ms += 1;
    complete_backup(cat, "app", ok);
    new_backup(cat, "app", NULL, running);
    failed_backup(cat, "app", "missed: the agent stayed away", later);

    ids l = {0};
    assert_int_equal(
        catalog_backup_failed_since(cat, "2025-11-21T16:00:01.000Z", collect_backup, &l, &e), 0);
    assert_int_equal(l.n, 4); /* not the earlier one, not the complete or queued ones */
    for (int i = 0; i < 3; i++)
        assert_string_equal(l.id[i], same[i]); /* ties in the order they were written */
    assert_string_equal(l.id[3], later);
    memset(&l, 0, sizeof(l));
    assert_int_equal(
        catalog_backup_failed_since(cat, "2025-11-21T16:00:00.000Z", collect_backup, &l, &e), 0);
    assert_int_equal(l.n, 5);
    assert_string_equal(l.id[0], early);
    memset(&l, 0, sizeof(l));
    assert_int_equal(
        catalog_backup_failed_since(cat, "2025-11-21T16:00:01.002Z", collect_backup, &l, &e), 0);
    assert_int_equal(l.n, 0);
    int calls = 0;
    assert_int_equal(
        catalog_backup_failed_since(cat, "2025-11-21T16:00:00.000Z", stop_at_first, &calls, &e), 0);
    assert_int_equal(calls, 1);

    /* Restores and verifications, the same way. */
    char rid[CATALOG_ID_SIZE], rid2[CATALOG_ID_SIZE], vid[CATALOG_ID_SIZE], vid2[CATALOG_ID_SIZE];
    catalog_restore_req rq = {.kind = "restore",
                              .source = ok,
                              .source_backup_id = ok,
                              .target_agent = "a1",
                              .target_database = "app_copy",
                              .target_environment = "dev"};
    assert_int_equal(catalog_restore_new(cat, &rq, rid, &e), 0);
    assert_int_equal(catalog_restore_new(cat, &rq, rid2, &e), 0);
    assert_int_equal(catalog_restore_start(cat, rid, "pg_restore", &e), 0);
    assert_int_equal(catalog_restore_finish(cat, rid, 0, NULL, "pg_restore failed", NULL, &e), 0);
    assert_int_equal(catalog_restore_start(cat, rid2, "pg_restore", &e), 0);
    assert_int_equal(catalog_restore_finish(cat, rid2, 1, NULL, NULL, NULL, &e), 0);
    assert_int_equal(catalog_verify_new(cat, ok, "a1", 0, vid, &e), 0);
    assert_int_equal(catalog_verify_new(cat, ok, "a1", 1, vid2, &e), 0);
    assert_int_equal(catalog_verify_finish(cat, vid, 0, "chunk 3: bad tag", NULL, &e), 0);
    assert_int_equal(catalog_verify_finish(cat, vid2, 1, NULL, NULL, &e), 0);
    memset(&l, 0, sizeof(l));
    assert_int_equal(
        catalog_restore_failed_since(cat, "2025-11-21T16:00:00.000Z", collect_restore, &l, &e), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.id[0], rid);
    memset(&l, 0, sizeof(l));
    assert_int_equal(
        catalog_verify_failed_since(cat, "2025-11-21T16:00:00.000Z", collect_verify, &l, &e), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.id[0], vid);
    memset(&l, 0, sizeof(l));
    assert_int_equal(
        catalog_verify_failed_since(cat, "2025-11-21T16:00:01.002Z", collect_verify, &l, &e), 0);
    assert_int_equal(l.n, 0);

    /* Hostile or missing arguments. */
    static const char *const bad[] = {"",
                                      "2025-11-21 16:00:00.000Z",
                                      "2025-11-21T16:00:00Z",
                                      "2025-11-21T16:00:00.000Z' OR 1=1 --",
                                      "2025-13-21T16:00:00.000Z",
                                      "9999-99-99T99:99:99.999Z"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        TU_ASSERT_ERR(catalog_backup_failed_since(cat, bad[i], collect_backup, &l, &e), e,
                      PGS_EINVAL, "since");
        TU_ASSERT_ERR(catalog_restore_failed_since(cat, bad[i], collect_restore, &l, &e), e,
                      PGS_EINVAL, "since");
        TU_ASSERT_ERR(catalog_verify_failed_since(cat, bad[i], collect_verify, &l, &e), e,
                      PGS_EINVAL, "since");
    }
    TU_ASSERT_ERR(catalog_backup_failed_since(cat, NULL, collect_backup, &l, &e), e, PGS_EINVAL,
                  "since");
    TU_ASSERT_ERR(catalog_backup_failed_since(cat, "2025-11-21T16:00:00.000Z", NULL, NULL, &e), e,
                  PGS_EINVAL, "callback");
    TU_ASSERT_ERR(
        catalog_verify_failed_since(NULL, "2025-11-21T16:00:00.000Z", collect_verify, &l, &e), e,
        PGS_EINVAL, "not open");
    catalog_close(cat);
}

static void test_catalog_data_version_moves_on_others_commits(void **state)
{
    fake_clock clk = {0};
    catalog *w = open_writer(state, "c.db", &clk), *r = NULL;
    char path[600], id[CATALOG_ID_SIZE];
    pgs_error e = {0};
    tu_path_in(state, "c.db", path, sizeof(path));
    assert_int_equal(catalog_open(path, &r, &e), 0);
    int64_t v1 = 0, v2 = 0, v3 = 0;
    assert_int_equal(catalog_data_version(r, &v1, &e), 0);
    assert_int_equal(catalog_data_version(r, &v2, &e), 0);
    assert_int_equal(v1, v2); /* nothing committed in between */
    failed_backup(w, "app", "boom", id);
    assert_int_equal(catalog_data_version(r, &v3, &e), 0);
    assert_true(v3 != v2);
    TU_ASSERT_ERR(catalog_data_version(r, NULL, &e), e, PGS_EINVAL, "nowhere");
    TU_ASSERT_ERR(catalog_data_version(NULL, &v1, &e), e, PGS_EINVAL, "not open");
    catalog_close(r);
    catalog_close(w);
}

/* ---- the alerter ---- */

typedef struct hooks_cfg {
    coordinator_config cfg;
    coordinator_webhook_config wh[2];
    char url[2][64];
} hooks_cfg;

/* Webhook "all" (every event, signed) to rx_all; "backups" (backup.failed only) to rx_b. */
static void hooks_setup(hooks_cfg *h, rx *rx_all, rx *rx_b)
{
    memset(h, 0, sizeof(*h));
    snprintf(h->url[0], sizeof(h->url[0]), "http://127.0.0.1:%d/hook", rx_all->port);
    h->wh[0].name = "all";
    h->wh[0].url = h->url[0];
    h->wh[0].events = COORDINATOR_EVENTS_ALL;
    h->wh[0].timeout_ms = 2000;
    h->wh[0].max_attempts = 3;
    h->wh[0].secret = (uint8_t *)SECRET;
    h->wh[0].secret_len = strlen(SECRET);
    h->cfg.nwebhooks = 1;
    if (rx_b != NULL) {
        snprintf(h->url[1], sizeof(h->url[1]), "http://127.0.0.1:%d/b", rx_b->port);
        h->wh[1].name = "backups";
        h->wh[1].url = h->url[1];
        h->wh[1].events = COORDINATOR_EVENT_BACKUP_FAILED;
        h->wh[1].timeout_ms = 2000;
        h->wh[1].max_attempts = 1;
        h->cfg.nwebhooks = 2;
    }
    h->cfg.webhooks = h->wh;
}

static int64_t never_overdue(void *arg, const char *agent, const char *db, const char *env,
                             int64_t now)
{
    (void)arg, (void)agent, (void)db, (void)env, (void)now;
    return 0;
}

/* Waits a few polls and checks that nothing more arrives: n requests in all. */
static void rx_settle(rx *s, int n)
{
    usleep(6 * POLL_MS * 1000);
    assert_int_equal(rx_count(s, NULL, NULL, NULL), n);
}

static void test_alerter_posts_each_failure_once(void **state)
{
    fake_clock clk = {0};
    catalog *w = open_writer(state, "c.db", &clk);
    char path[600], old[CATALOG_ID_SIZE], b1[CATALOG_ID_SIZE], tie[3][CATALOG_ID_SIZE];
    char late[CATALOG_ID_SIZE], missed[CATALOG_ID_SIZE], ok[CATALOG_ID_SIZE];
    char rid[CATALOG_ID_SIZE], vid[CATALOG_ID_SIZE];
    pgs_error e = {0};
    tu_path_in(state, "c.db", path, sizeof(path));
    int64_t since = time_now_ms() - 10000;

    /* Before the start point: never posted. */
    clk.ms = since - 1;
    failed_backup(w, "app", "coordinator restarted", old);
    clk.ms = 0;

    rx *ra = rx_start(200), *rb = rx_start(200);
    hooks_cfg h;
    hooks_setup(&h, ra, rb);
    alerter *a = NULL;
    alerter_opts o = {.cfg = &h.cfg,
                      .catalog_path = path,
                      .name = "coord-test",
                      .since_ms = since,
                      .poll_ms = POLL_MS,
                      .overdue_after = never_overdue};
    assert_int_equal(alerter_start(&o, &a, &e), 0);

    /* A failure after the start: to both webhooks, once. */
    failed_backup(w, "app", "pg_dump exited with status 1: database \"app\" does not exist", b1);
    assert_int_equal(rx_wait(ra, "backup.failed", "backup_id", b1, 1), 1);
    assert_int_equal(rx_wait(rb, "backup.failed", "backup_id", b1, 1), 1);
    char head[4096];
    json_t *j = rx_find(ra, "backup_id", b1, head, sizeof(head));
    assert_non_null(j);
    assert_non_null(strstr(head, "X-Pgship-Event: backup.failed\r\n"));
    assert_string_equal(json_string_value(json_object_get(j, "coordinator")), "coord-test");
    json_t *d = json_object_get(j, "data");
    assert_string_equal(json_string_value(json_object_get(d, "agent")), "a1");
    assert_string_equal(json_string_value(json_object_get(d, "database")), "app");
    assert_string_equal(json_string_value(json_object_get(d, "environment")), "prod");
    assert_string_equal(json_string_value(json_object_get(d, "reason")), "dump");
    assert_non_null(strstr(json_string_value(json_object_get(d, "error")), "does not exist"));
    assert_string_equal(json_string_value(json_object_get(d, "requested_by")), "ops");
    assert_true(json_is_null(json_object_get(d, "scheduled")));
    assert_true(json_is_null(json_object_get(d, "started_at"))); /* failed while queued */
    assert_non_null(json_string_value(json_object_get(d, "finished_at")));
    assert_non_null(json_string_value(json_object_get(d, "created_at")));
    json_decref(j);

    /* Three failures in one millisecond: each once. */
    clk.ms = time_now_ms();
    int64_t tie_ms = clk.ms;
    for (int i = 0; i < 3; i++)
        failed_backup(w, "other", "boom", tie[i]);
    clk.ms = 0;
    for (int i = 0; i < 3; i++)
        assert_int_equal(rx_wait(ra, "backup.failed", "backup_id", tie[i], 1), 1);

    /* A failure stamped before the ones already posted, committed after them (its writer
     * waited for the lock): still posted. */
    clk.ms = tie_ms - 700;
    failed_backup(w, "app", "connection to the agent was lost", late);
    clk.ms = 0;
    assert_int_equal(rx_wait(ra, "backup.failed", "backup_id", late, 1), 1);

    /* A missed scheduled run. */
    new_backup(w, "app", "nightly", missed);
    assert_int_equal(catalog_backup_fail(w, missed, "missed: the agent was not connected", &e), 0);
    assert_int_equal(rx_wait(ra, "backup.failed", "backup_id", missed, 1), 1);
    j = rx_find(ra, "backup_id", missed, NULL, 0);
    d = json_object_get(j, "data");
    assert_string_equal(json_string_value(json_object_get(d, "reason")), "missed");
    assert_string_equal(json_string_value(json_object_get(d, "scheduled")), "nightly");
    assert_string_equal(json_string_value(json_object_get(d, "requested_by")), "schedule:nightly");
    json_decref(j);

    /* A restore and a verification that failed: to "all" only. */
    complete_backup(w, "app", ok);
    catalog_restore_req rq = {.kind = "restore",
                              .requested_by = "ops",
                              .source = "a1/app@latest",
                              .source_backup_id = ok,
                              .source_agent = "a1",
                              .source_database = "app",
                              .source_environment = "prod",
                              .target_agent = "a1",
                              .target_database = "app_copy",
                              .target_environment = "dev"};
    assert_int_equal(catalog_restore_new(w, &rq, rid, &e), 0);
    assert_int_equal(catalog_restore_start(w, rid, "pg_restore", &e), 0);
    assert_int_equal(
        catalog_restore_finish(w, rid, 0, NULL, "pg_restore exited with status 1", NULL, &e), 0);
    assert_int_equal(catalog_verify_new(w, ok, "a1", 1, vid, &e), 0);
    assert_int_equal(catalog_verify_finish(w, vid, 0, "chunk 3: authentication failed", NULL, &e),
                     0);
    assert_int_equal(rx_wait(ra, "restore.failed", "restore_id", rid, 1), 1);
    assert_int_equal(rx_wait(ra, "verify.failed", "verification_id", vid, 1), 1);
    j = rx_find(ra, "restore_id", rid, head, sizeof(head));
    assert_non_null(strstr(head, "X-Pgship-Event: restore.failed\r\n"));
    d = json_object_get(j, "data");
    assert_string_equal(json_string_value(json_object_get(d, "agent")), "a1");
    assert_string_equal(json_string_value(json_object_get(d, "database")), "app_copy");
    assert_string_equal(json_string_value(json_object_get(d, "environment")), "dev");
    assert_string_equal(json_string_value(json_object_get(d, "source_backup_id")), ok);
    assert_string_equal(json_string_value(json_object_get(d, "step")), "pg_restore");
    assert_string_equal(json_string_value(json_object_get(d, "error")),
                        "pg_restore exited with status 1");
    json_decref(j);
    j = rx_find(ra, "verification_id", vid, head, sizeof(head));
    d = json_object_get(j, "data");
    assert_string_equal(json_string_value(json_object_get(d, "backup_id")), ok);
    assert_string_equal(json_string_value(json_object_get(d, "agent")), "a1");
    assert_string_equal(json_string_value(json_object_get(d, "database")), "app");
    assert_string_equal(json_string_value(json_object_get(d, "environment")), "prod");
    assert_string_equal(json_string_value(json_object_get(d, "verifier")), "a1");
    assert_true(json_is_true(json_object_get(d, "restore_test")));
    json_decref(j);

    /* Nothing twice, nothing old, nothing unsubscribed: 6 backups + 1 restore + 1 verification
     * to "all", the 6 backups to "backups". */
    rx_settle(ra, 8);
    rx_settle(rb, 6);
    assert_int_equal(rx_count(ra, NULL, "backup_id", old), 0);
    alerter_counts c;
    alerter_counts_get(a, &c);
    assert_int_equal(c.backup_failed, 6);
    assert_int_equal(c.restore_failed, 1);
    assert_int_equal(c.verify_failed, 1);
    assert_true(c.polls > 0);
    alerter_stop(a);

    /* A restart: a new alerter whose start point is now posts nothing of the above. */
    o.since_ms = 0;
    assert_int_equal(alerter_start(&o, &a, &e), 0);
    usleep(6 * POLL_MS * 1000);
    alerter_stop(a);
    assert_int_equal(rx_count(ra, NULL, NULL, NULL), 8);
    rx_stop(ra);
    rx_stop(rb);
    catalog_close(w);
}

/* The stand-in for schedd_overdue_after_s: "app" may go limit_s without a backup, "other" is
 * not scheduled. */
typedef struct overdue_rule {
    int64_t limit_s;
    int calls;   /* from the alerter's thread: atomics, and no cmocka assert there */
    int bad_now; /* a now that is not Unix seconds */
} overdue_rule;

static int64_t rule_overdue(void *arg, const char *agent, const char *db, const char *env,
                            int64_t now)
{
    overdue_rule *r = arg;
    (void)env;
    if (now < 1700000000 || now > 4000000000)
        __atomic_store_n(&r->bad_now, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&r->calls, 1, __ATOMIC_RELAXED);
    return strcmp(agent, "a1") == 0 && strcmp(db, "app") == 0 ? r->limit_s : 0;
}

static char *scrape(monitor *mo)
{
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(metrics_render(monitor_metrics(mo), &text, &len), 0);
    return text;
}

static void assert_has(const char *text, const char *want)
{
    if (strstr(text, want) == NULL)
        fail_msg("missing \"%s\" in:\n%s", want, text);
}

/* Scrapes until the page has want (a webhook counts an event once its answer is read, a moment
 * after the receiver has it), for at most 10 s; the last page, which has it. */
static char *scrape_until(monitor *mo, const char *want)
{
    int64_t until = time_mono_ms() + 10000;
    char *text = scrape(mo);
    while (strstr(text, want) == NULL && time_mono_ms() < until) {
        free(text);
        usleep(20000);
        text = scrape(mo);
    }
    assert_has(text, want);
    return text;
}

static void test_alerter_overdue_episodes(void **state)
{
    fake_clock clk = {0};
    catalog *w = open_writer(state, "c.db", &clk);
    char path[600], b1[CATALOG_ID_SIZE];
    pgs_error e = {0};
    tu_path_in(state, "c.db", path, sizeof(path));
    monitor *mo = NULL;
    assert_int_equal(monitor_new(&mo, path, NULL, &e), 0);
    rx *ra = rx_start(200);
    hooks_cfg h;
    hooks_setup(&h, ra, NULL);
    overdue_rule rule = {.limit_s = 1};
    alerter *a = NULL;
    alerter_opts o = {.cfg = &h.cfg,
                      .catalog_path = path,
                      .monitor = mo,
                      .poll_ms = POLL_MS,
                      .overdue_after = rule_overdue,
                      .overdue_arg = &rule};
    int64_t t0 = time_now_ms();
    assert_int_equal(alerter_start(&o, &a, &e), 0);

    /* No backup yet: counted from the start, so not overdue for the first second. */
    usleep(300 * 1000);
    char *text = scrape(mo);
    assert_has(text, "pgship_backup_overdue{agent=\"a1\",database=\"app\"} 0\n");
    assert_has(text, "pgship_backup_overdue{agent=\"a1\",database=\"other\"} 0\n");
    free(text);
    assert_int_equal(rx_count(ra, "backup.overdue", NULL, NULL), 0);

    /* Then overdue: one event, the gauge at 1, and no second event while it lasts. */
    assert_int_equal(rx_wait(ra, "backup.overdue", "database", "app", 1), 1);
    assert_true(time_now_ms() - t0 >= 1000);
    text = scrape(mo);
    assert_has(text, "pgship_backup_overdue{agent=\"a1\",database=\"app\"} 1\n");
    assert_has(text, "pgship_backup_overdue{agent=\"a1\",database=\"other\"} 0\n");
    free(text);
    usleep(500 * 1000);
    assert_int_equal(rx_count(ra, "backup.overdue", NULL, NULL), 1);
    char head[4096];
    json_t *j = rx_find(ra, "database", "app", head, sizeof(head));
    assert_non_null(strstr(head, "X-Pgship-Event: backup.overdue\r\n"));
    json_t *d = json_object_get(j, "data");
    assert_string_equal(json_string_value(json_object_get(d, "agent")), "a1");
    assert_string_equal(json_string_value(json_object_get(d, "environment")), "prod");
    assert_int_equal(json_integer_value(json_object_get(d, "overdue_after_s")), 1);
    assert_true(json_is_null(json_object_get(d, "last_backup_id")));
    assert_non_null(json_string_value(json_object_get(d, "counted_from")));
    assert_non_null(json_string_value(json_object_get(d, "overdue_since")));
    json_decref(j);
    alerter_counts c;
    alerter_counts_get(a, &c);
    assert_int_equal(c.backup_overdue, 1);
    assert_int_equal(c.overdue_now, 1);

    /* A failed backup does not end the episode; a complete one does, and the gauge goes to 0. */
    char f1[CATALOG_ID_SIZE];
    failed_backup(w, "app", "boom", f1);
    assert_int_equal(rx_wait(ra, "backup.failed", "backup_id", f1, 1), 1);
    complete_backup(w, "app", b1);
    usleep(6 * POLL_MS * 1000);
    text = scrape(mo);
    assert_has(text, "pgship_backup_overdue{agent=\"a1\",database=\"app\"} 0\n");
    free(text);
    assert_int_equal(rx_count(ra, "backup.overdue", NULL, NULL), 1);

    /* A second of that backup's age later, a new episode: a second event naming it. */
    assert_int_equal(rx_wait(ra, "backup.overdue", "last_backup_id", b1, 1), 1);
    usleep(500 * 1000);
    assert_int_equal(rx_count(ra, "backup.overdue", NULL, NULL), 2);
    j = rx_find(ra, "last_backup_id", b1, NULL, 0);
    assert_non_null(
        json_string_value(json_object_get(json_object_get(j, "data"), "last_backup_at")));
    json_decref(j);
    assert_true(__atomic_load_n(&rule.calls, __ATOMIC_RELAXED) > 0);
    assert_int_equal(__atomic_load_n(&rule.bad_now, __ATOMIC_RELAXED), 0);

    /* The webhook's counts in the scrape, and the verifications from the catalog. */
    char vid[CATALOG_ID_SIZE], vid2[CATALOG_ID_SIZE];
    assert_int_equal(catalog_verify_new(w, b1, "a1", 0, vid, &e), 0);
    assert_int_equal(catalog_verify_finish(w, vid, 1, NULL, NULL, &e), 0);
    assert_int_equal(catalog_verify_new(w, b1, "coordinator", 0, vid2, &e), 0);
    assert_int_equal(catalog_verify_finish(w, vid2, 0, "sha-256 mismatch", NULL, &e), 0);
    assert_int_equal(rx_wait(ra, "verify.failed", "verification_id", vid2, 1), 1);
    text = scrape_until(
        mo, "pgship_webhook_deliveries_total{webhook=\"all\",result=\"delivered\"} 4\n");
    assert_has(text, "pgship_webhook_deliveries_total{webhook=\"all\",result=\"failed\"} 0\n");
    assert_has(text, "pgship_webhook_deliveries_total{webhook=\"all\",result=\"dropped\"} 0\n");
    assert_has(text, "pgship_webhook_retries_total{webhook=\"all\"} 0\n");
    assert_has(text, "pgship_verifications_total{result=\"complete\"} 1\n");
    assert_has(text, "pgship_verifications_total{result=\"failed\"} 1\n");
    /* vid passed, then vid2 failed: the backup's latest check failed, so no passed one shows */
    assert_true(strstr(text, "pgship_last_verification_timestamp_seconds{") == NULL);
    free(text);

    alerter_stop(a);
    /* Unregistered: a scrape after the stop still works and no longer has the alerter's series
     * refreshed (nor crashes). */
    text = scrape(mo);
    free(text);
    monitor_free(mo);
    rx_stop(ra);
    catalog_close(w);
}

static void test_monitor_last_verification(void **state)
{
    fake_clock clk = {0};
    catalog *w = open_writer(state, "c.db", &clk);
    char path[600], b1[CATALOG_ID_SIZE], b2[CATALOG_ID_SIZE], vid[CATALOG_ID_SIZE];
    pgs_error e = {0};
    tu_path_in(state, "c.db", path, sizeof(path));
    complete_backup(w, "app", b1);
    complete_backup(w, "app", b2);
    clk.ms = 1763740800000; /* 2025-11-21T16:00:00.000Z */
    assert_int_equal(catalog_verify_new(w, b1, "a1", 0, vid, &e), 0);
    assert_int_equal(catalog_verify_finish(w, vid, 1, NULL, NULL, &e), 0);
    clk.ms += 60000;
    assert_int_equal(catalog_verify_new(w, b2, "a1", 0, vid, &e), 0);
    assert_int_equal(catalog_verify_finish(w, vid, 1, NULL, NULL, &e), 0);
    monitor *mo = NULL;
    assert_int_equal(monitor_new(&mo, path, NULL, &e), 0);
    char *text = scrape(mo);
    assert_has(text, "pgship_last_verification_timestamp_seconds{agent=\"a1\",database=\"app\"} "
                     "1763740860\n");
    assert_has(text, "pgship_verifications_total{result=\"complete\"} 2\n");
    /* No alerter: no overdue series and no webhook series. */
    assert_true(strstr(text, "pgship_backup_overdue{") == NULL);
    assert_true(strstr(text, "pgship_webhook_deliveries_total{") == NULL);
    free(text);
    monitor_free(mo);
    catalog_close(w);
}

static void test_alerter_counts_refused_deliveries(void **state)
{
    fake_clock clk = {0};
    catalog *w = open_writer(state, "c.db", &clk);
    char path[600], b1[CATALOG_ID_SIZE];
    pgs_error e = {0};
    tu_path_in(state, "c.db", path, sizeof(path));
    monitor *mo = NULL;
    assert_int_equal(monitor_new(&mo, path, NULL, &e), 0);
    rx *ra = rx_start(503); /* retried, then failed */
    hooks_cfg h;
    hooks_setup(&h, ra, NULL);
    alerter *a = NULL;
    alerter_opts o = {.cfg = &h.cfg,
                      .catalog_path = path,
                      .monitor = mo,
                      .poll_ms = POLL_MS,
                      .overdue_after = never_overdue,
                      .webhook_backoff_ms = 10};
    assert_int_equal(alerter_start(&o, &a, &e), 0);
    failed_backup(w, "app", "boom", b1);
    assert_int_equal(rx_wait(ra, "backup.failed", "backup_id", b1, 3), 3); /* max_attempts */
    char *text =
        scrape_until(mo, "pgship_webhook_deliveries_total{webhook=\"all\",result=\"failed\"} 1\n");
    assert_has(text, "pgship_webhook_deliveries_total{webhook=\"all\",result=\"delivered\"} 0\n");
    assert_has(text, "pgship_webhook_retries_total{webhook=\"all\"} 2\n");
    free(text);
    alerter_stop(a);
    monitor_free(mo);
    rx_stop(ra);
    catalog_close(w);
}

static void test_alerter_start_refusals(void **state)
{
    char path[600];
    pgs_error e = {0};
    tu_path_in(state, "c.db", path, sizeof(path));
    coordinator_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    coordinator_webhook_config wh = {
        .name = "pager", .url = "ftp://example.com/x", .events = COORDINATOR_EVENTS_ALL};
    cfg.webhooks = &wh;
    cfg.nwebhooks = 1;
    alerter *a = NULL;
    alerter_opts o = {.cfg = &cfg, .catalog_path = path, .poll_ms = POLL_MS};
    TU_ASSERT_ERR(alerter_start(&o, &a, &e), e, PGS_EINVAL, "[webhook pager]");
    assert_null(a);
    o.cfg = NULL;
    TU_ASSERT_ERR(alerter_start(&o, &a, &e), e, PGS_EINVAL, "alerter");
    /* No webhooks at all: it runs (the overdue gauges still count), and stops. */
    cfg.nwebhooks = 0;
    o.cfg = &cfg;
    assert_int_equal(alerter_start(&o, &a, &e), 0);
    usleep(2 * POLL_MS * 1000);
    alerter_stop(a);
    alerter_stop(NULL);
    alerter_counts c;
    alerter_counts_get(NULL, &c);
    assert_int_equal(c.polls, 0);
}

static void test_monitor_failure_reason_missed_first(void **state)
{
    (void)state;
    /* What the scheduler writes for a missed run names another cause after the prefix. */
    assert_string_equal(monitor_failure_reason("missed: agent not connected (due x)"), "missed");
    assert_string_equal(monitor_failure_reason("missed: could not start: storage"), "missed");
    assert_string_equal(monitor_failure_reason("agent not connected"), "agent_lost");
    assert_string_equal(monitor_failure_reason(NULL), "other");
    assert_string_equal(monitor_failure_reason("agent: cannot connect to the database: connection "
                                               "to server failed: Connection refused"),
                        "database");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, tu_tmpdir_setup, tu_tmpdir_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_catalog_failed_since_order),
        T(test_catalog_data_version_moves_on_others_commits),
        T(test_alerter_posts_each_failure_once),
        T(test_alerter_overdue_episodes),
        T(test_monitor_last_verification),
        T(test_alerter_counts_refused_deliveries),
        T(test_alerter_start_refusals),
        cmocka_unit_test(test_monitor_failure_reason_missed_first),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
