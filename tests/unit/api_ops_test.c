/*
 * Tests of the API's fleet-operation routes (coordinator/api_ops.c): the decoders on their own
 * (POST /v1/prune's body, the empty body of pin and unpin, GET /v1/audit's query), with hostile
 * input; then the routes over real HTTP on loopback (libcurl as the client) against a real
 * catalog file, local-directory storage and a configuration parsed from text with one retention
 * policy, with three tokens of the three roles: who may pin, unpin and prune, what the audit
 * log records of each (refusals included), stats, and a prune that deletes objects and rows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "common/fsutil.h"
#include "common/log.h"
#include "coordinator/api.h"
#include "coordinator/api_ops.h"
#include "coordinator/config.h"
#include "tests/unit/testutil.h"

#define TOK_READ "tok-read-0123456789"
#define TOK_OPERATE "tok-operate-0123456789"
#define TOK_ADMIN "tok-admin-0123456789"
#define NBACKUPS 4

typedef struct env {
    char dir[256];
    char cpath[300];
    char store[300];
    storage *st;
    catalog *cat;
    coordinator_config cfg;
    api *api;
    int port;
    char ids[NBACKUPS][CATALOG_ID_SIZE]; /* complete, oldest first */
    char keys[NBACKUPS][256];
    char failed_id[CATALOG_ID_SIZE];
} env;

/* ---- decoders ---- */

static int prune_parse(const char *text, api_prune_body *out, pgs_error *e)
{
    return api_prune_body_parse(text, strlen(text), out, e);
}

static void test_api_ops_prune_body_accepts_dry_run_true_and_false(void **state)
{
    (void)state;
    api_prune_body b;
    pgs_error e = {0};
    assert_int_equal(prune_parse("{\"dry_run\": true}", &b, &e), 0);
    assert_int_equal(b.dry_run, 1);
    assert_int_equal(prune_parse(" { \"dry_run\" : false } \n", &b, &e), 0);
    assert_int_equal(b.dry_run, 0);
}

static void test_api_ops_prune_body_refuses_hostile_input(void **state)
{
    (void)state;
    api_prune_body b;
    pgs_error e = {0};
    b.dry_run = 7;
    TU_ASSERT_ERR(api_prune_body_parse("", 0, &b, &e), e, PGS_EFORMAT, "empty");
    assert_int_equal(b.dry_run, 0);
    /* required: a prune is never the default of an empty object */
    TU_ASSERT_ERR(prune_parse("{}", &b, &e), e, PGS_EINVAL, "\"dry_run\" is required");
    TU_ASSERT_ERR(prune_parse("{\"dry_run\": 1}", &b, &e), e, PGS_EFORMAT, "true or false");
    TU_ASSERT_ERR(prune_parse("{\"dry_run\": \"false\"}", &b, &e), e, PGS_EFORMAT, "true or false");
    TU_ASSERT_ERR(prune_parse("{\"dry_run\": null}", &b, &e), e, PGS_EFORMAT, "true or false");
    TU_ASSERT_ERR(prune_parse("{\"dry_run\": true, \"all\": true}", &b, &e), e, PGS_EFORMAT,
                  "unexpected field \"all\"");
    TU_ASSERT_ERR(prune_parse("{\"dry_run\": true, \"dry_run\": false}", &b, &e), e, PGS_EFORMAT,
                  "not valid JSON");
    TU_ASSERT_ERR(prune_parse("[true]", &b, &e), e, PGS_EFORMAT, "not a JSON object");
    TU_ASSERT_ERR(prune_parse("true", &b, &e), e, PGS_EFORMAT, "");
    TU_ASSERT_ERR(prune_parse("{\"dry_run\": true} {}", &b, &e), e, PGS_EFORMAT, "not valid JSON");
    TU_ASSERT_ERR(prune_parse("{\"dry_run\": tru", &b, &e), e, PGS_EFORMAT, "not valid JSON");
    static const char nul[] = "{\"dry_run\": true}\0{}";
    TU_ASSERT_ERR(api_prune_body_parse(nul, sizeof(nul) - 1, &b, &e), e, PGS_EFORMAT,
                  "not valid JSON");
    static const char bad_utf8[] = "{\"dry\xff_run\": true}";
    TU_ASSERT_ERR(prune_parse(bad_utf8, &b, &e), e, PGS_EFORMAT, "not valid JSON");
    /* too large, even when it would be valid */
    size_t big = API_BODY_MAX + 1;
    char *s = malloc(big + 1);
    memset(s, ' ', big);
    memcpy(s, "{\"dry_run\": true}", 17);
    s[big] = '\0';
    TU_ASSERT_ERR(api_prune_body_parse(s, big, &b, &e), e, PGS_ELIMIT, "larger than");
    free(s);
    /* deep nesting is refused by the schema without recursion trouble */
    char deep[4096];
    size_t n = 0;
    n += (size_t)snprintf(deep, sizeof(deep), "{\"dry_run\": ");
    while (n < 2000)
        deep[n++] = '[';
    deep[n] = '\0';
    assert_int_not_equal(prune_parse(deep, &b, &e), 0);
    assert_int_equal(b.dry_run, 0);
}

static void test_api_ops_empty_body(void **state)
{
    (void)state;
    pgs_error e = {0};
    assert_int_equal(api_empty_body_parse(NULL, 0, &e), 0);
    assert_int_equal(api_empty_body_parse("{}", 2, &e), 0);
    assert_int_equal(api_empty_body_parse(" {\n} ", 5, &e), 0);
    TU_ASSERT_ERR(api_empty_body_parse("{\"x\":1}", 7, &e), e, PGS_EINVAL, "no fields");
    TU_ASSERT_ERR(api_empty_body_parse("[]", 2, &e), e, PGS_EFORMAT, "not a JSON object");
    TU_ASSERT_ERR(api_empty_body_parse(" ", 1, &e), e, PGS_EFORMAT, "not valid JSON");
    TU_ASSERT_ERR(api_empty_body_parse("{}\0", 3, &e), e, PGS_EFORMAT, "not valid JSON");
    char *s = malloc(API_BODY_MAX + 2);
    memset(s, ' ', API_BODY_MAX + 1);
    s[0] = '{';
    s[API_BODY_MAX] = '}';
    TU_ASSERT_ERR(api_empty_body_parse(s, API_BODY_MAX + 1, &e), e, PGS_ELIMIT, "larger than");
    free(s);
}

static void test_api_ops_audit_query(void **state)
{
    (void)state;
    pgs_error e = {0};
    unsigned limit = 0;
    assert_int_equal(api_audit_query_parse(NULL, &limit, &e), 0);
    assert_int_equal(limit, API_AUDIT_DEFAULT);
    limit = 0;
    assert_int_equal(api_audit_query_parse("", &limit, &e), 0);
    assert_int_equal(limit, API_AUDIT_DEFAULT);
    assert_int_equal(api_audit_query_parse("limit=1", &limit, &e), 0);
    assert_int_equal(limit, 1);
    assert_int_equal(api_audit_query_parse("limit=10000", &limit, &e), 0);
    assert_int_equal(limit, 10000);
    assert_int_equal(api_audit_query_parse("limit=00042", &limit, &e), 0);
    assert_int_equal(limit, 42);

    static const struct {
        const char *q;
        const char *msg;
    } bad[] = {
        {"limit=0", "from 1 to"},
        {"limit=10001", "from 1 to"},
        {"limit=99999", "from 1 to"},
        {"limit=123456", "from 1 to"},
        {"limit=4294967297", "from 1 to"},
        {"limit=", "from 1 to"},
        {"limit=-1", "from 1 to"},
        {"limit=+1", "from 1 to"},
        {"limit= 1", "from 1 to"},
        {"limit=1 ", "from 1 to"},
        {"limit=0x10", "from 1 to"},
        {"limit=%31", "from 1 to"},
        {"limit", "name=value"},
        {"limit=1&", "name=value"},
        {"&", "name=value"},
        {"&limit=1", "name=value"},
        {"limit=1&limit=2", "twice"},
        {"LIMIT=1", "unknown"},
        {"lim%69t=1", "unknown"},
        {"limits=1", "unknown"},
        {"limit=1&agent=x", "unknown"},
        {"=1", "unknown"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        limit = 77;
        e.code = 0;
        int rc = api_audit_query_parse(bad[i].q, &limit, &e);
        if (rc != PGS_EINVAL || e.code != PGS_EINVAL || strstr(e.msg, bad[i].msg) == NULL)
            fail_msg("query \"%s\": rc %d, \"%s\"", bad[i].q, rc, e.msg);
        assert_int_equal(limit, 77);
    }
    char longq[API_OPS_QUERY_MAX + 8];
    memset(longq, '1', sizeof(longq) - 1);
    memcpy(longq, "limit=", 6);
    longq[sizeof(longq) - 1] = '\0';
    TU_ASSERT_ERR(api_audit_query_parse(longq, &limit, &e), e, PGS_ELIMIT, "longer than");
}

/* ---- the routes: fixture ---- */

static int64_t fake_ms;
static int64_t fake_clock(void *arg)
{
    (void)arg;
    return fake_ms += 3600 * 1000; /* an hour per stamp: distinct, ordered times */
}

static int lookup(void *arg, const char *presented, char *name, size_t cap)
{
    (void)arg;
    static const struct {
        const char *tok, *name;
        int role;
    } toks[] = {{TOK_READ, "grafana", API_ROLE_READ},
                {TOK_OPERATE, "ci", API_ROLE_OPERATE},
                {TOK_ADMIN, "alice", API_ROLE_ADMIN}};
    for (size_t i = 0; i < 3; i++) {
        if (strcmp(presented, toks[i].tok) == 0) {
            snprintf(name, cap, "%s", toks[i].name);
            return toks[i].role;
        }
    }
    return 0;
}

static int setup(void **state)
{
    env *v = calloc(1, sizeof(*v));
    snprintf(v->dir, sizeof(v->dir), "/tmp/pgship-api-ops-test-XXXXXX");
    if (v == NULL || mkdtemp(v->dir) == NULL)
        return -1;
    snprintf(v->cpath, sizeof(v->cpath), "%s/catalog.db", v->dir);
    snprintf(v->store, sizeof(v->store), "%s/store", v->dir);
    pgs_error e = {0};
    static const char conf[] = "[coordinator]\ntls_cert = /nonexistent/c\n"
                               "tls_key = /nonexistent/k\napi_token_file = /nonexistent/t\n"
                               "[storage]\ntype = fs\npath = /nonexistent/s\n"
                               "[retention keep2]\nkeep_last = 2\nselect = *\n";
    storage_config sc = {.type = "fs", .path = v->store};
    if (coordinator_config_parse("mem", conf, sizeof(conf) - 1, &v->cfg, &e) != 0 ||
        storage_open(&v->st, &sc, &e) != 0 || catalog_open(v->cpath, &v->cat, &e) != 0 ||
        catalog_agent_seen(v->cat, "db1", NULL, NULL, "0.1.0", 0, &e) != 0 ||
        catalog_database_seen(v->cat, "db1", "appdb", "prod", "15.4", &e) != 0) {
        fprintf(stderr, "setup: %s\n", e.msg);
        return -1;
    }
    fake_ms = 1795000000000;
    catalog_set_clock(v->cat, fake_clock, NULL);
    for (int i = 0; i < NBACKUPS; i++) {
        catalog_backup_req req = {.agent = "db1", .database = "appdb", .environment = "prod"};
        char sha[65];
        memset(sha, 'a' + i, 64);
        sha[64] = '\0';
        if (catalog_backup_new(v->cat, &req, v->ids[i], &e) != 0)
            return -1;
        snprintf(v->keys[i], sizeof(v->keys[i]), "prod/db1/appdb/%s.pgship", v->ids[i]);
        catalog_backup_info info = {.storage_key = v->keys[i]};
        if (storage_put(v->st, v->keys[i], "object", 6, &e) != 0 ||
            catalog_backup_start(v->cat, v->ids[i], &info, &e) != 0 ||
            catalog_backup_complete(v->cat, v->ids[i], 1000 * (uint64_t)(i + 1), 0, sha, v->keys[i],
                                    &e) != 0) {
            fprintf(stderr, "setup: %s\n", e.msg);
            return -1;
        }
    }
    catalog_backup_req req = {.agent = "db1", .database = "appdb", .environment = "prod"};
    if (catalog_backup_new(v->cat, &req, v->failed_id, &e) != 0 ||
        catalog_backup_fail(v->cat, v->failed_id, "missed: the coordinator was down", &e) != 0)
        return -1;

    api_opts o = {.url = "http://127.0.0.1:0",
                  .token = "unused-because-lookup-is-set",
                  .lookup = lookup,
                  .storage = v->st,
                  .cfg = &v->cfg,
                  .catalog_path = v->cpath};
    if (api_start(&o, &v->api, &e) != 0) {
        fprintf(stderr, "setup: %s\n", e.msg);
        return -1;
    }
    v->port = api_port(v->api);
    *state = v;
    return 0;
}

static int teardown(void **state)
{
    env *v = *state;
    if (v == NULL)
        return 0;
    api_stop(v->api);
    catalog_close(v->cat);
    storage_close(v->st);
    coordinator_config_free(&v->cfg);
    int rc = fs_rm_rf(v->dir);
    free(v);
    return rc;
}

/* ---- an HTTP client ---- */

typedef struct resp {
    long status;
    tu_buf body;
    json_t *json;
} resp;

static size_t on_body(char *p, size_t sz, size_t n, void *arg)
{
    resp *r = arg;
    return tu_buf_append(&r->body, p, sz * n) == 0 ? sz * n : 0;
}

/* One request with token; body (may be NULL) is sent as JSON unless ctype says otherwise. */
static void http(env *v, const char *method, const char *path, const char *token, const char *body,
                 const char *ctype, resp *r)
{
    memset(r, 0, sizeof(*r));
    CURL *c = curl_easy_init();
    assert_non_null(c);
    char url[512], auth[256], ct[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", v->port, path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    struct curl_slist *h = curl_slist_append(NULL, auth);
    if (body != NULL) {
        snprintf(ct, sizeof(ct), "Content-Type: %s", ctype != NULL ? ctype : "application/json");
        h = curl_slist_append(h, ct);
    }
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body != NULL ? body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)(body != NULL ? strlen(body) : 0));
    }
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK)
        fail_msg("%s %s: %s", method, path, curl_easy_strerror(cc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (r->body.len > 0)
        r->json = json_loadb((const char *)r->body.data, r->body.len, 0, NULL);
}

static void resp_free(resp *r)
{
    tu_buf_free(&r->body);
    json_decref(r->json);
}

static void expect_status(resp *r, long status, const char *code)
{
    if (r->status != status)
        fail_msg("expected status %ld, got %ld: %.*s", status, r->status, (int)r->body.len,
                 (const char *)r->body.data);
    if (code != NULL)
        assert_string_equal(json_string_value(json_object_get(r->json, "code")), code);
}

static const char *jstr(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* The newest n audit entries as "who role action target result" lines, newest first. */
static void audit_lines(env *v, unsigned n, char *out, size_t cap)
{
    resp r;
    char path[64];
    snprintf(path, sizeof(path), "/v1/audit?limit=%u", n);
    http(v, "GET", path, TOK_ADMIN, NULL, NULL, &r);
    expect_status(&r, 200, NULL);
    json_t *x;
    size_t i, used = 0;
    out[0] = '\0';
    json_array_foreach(json_object_get(r.json, "entries"), i, x)
    {
        int k = snprintf(out + used, cap - used, "%s %s %s %s %s\n", jstr(x, "who"),
                         jstr(x, "role"), jstr(x, "action"), jstr(x, "target"), jstr(x, "result"));
        assert_true(k > 0 && (size_t)k < cap - used);
        used += (size_t)k;
    }
    resp_free(&r);
}

/* ---- the routes ---- */

static void test_api_ops_pin_needs_operate_unpin_needs_admin(void **state)
{
    env *v = *state;
    char path[128], lines[2048], want[2048];
    const char *id = v->ids[0];
    resp r;
    snprintf(path, sizeof(path), "/v1/backups/%s/pin", id);
    http(v, "POST", path, TOK_READ, NULL, NULL, &r);
    expect_status(&r, 403, "forbidden");
    resp_free(&r);
    http(v, "POST", path, TOK_OPERATE, "{}", NULL, &r);
    expect_status(&r, 200, NULL);
    assert_string_equal(jstr(r.json, "id"), id);
    assert_true(json_is_true(json_object_get(r.json, "pinned")));
    resp_free(&r);
    http(v, "POST", path, TOK_OPERATE, NULL, NULL, &r); /* again, without a body: still pinned */
    expect_status(&r, 200, NULL);
    resp_free(&r);

    snprintf(path, sizeof(path), "/v1/backups/%s/unpin", id);
    http(v, "POST", path, TOK_OPERATE, "{}", NULL, &r);
    expect_status(&r, 403, "forbidden");
    assert_non_null(strstr(jstr(r.json, "error"), "admin"));
    resp_free(&r);
    snprintf(path, sizeof(path), "/v1/backups/%s", id);
    http(v, "GET", path, TOK_READ, NULL, NULL, &r);
    assert_true(json_is_true(json_object_get(r.json, "pinned"))); /* the refusal changed nothing */
    resp_free(&r);
    snprintf(path, sizeof(path), "/v1/backups/%s/unpin", id);
    http(v, "POST", path, TOK_ADMIN, "{}", NULL, &r);
    expect_status(&r, 200, NULL);
    assert_true(json_is_false(json_object_get(r.json, "pinned")));
    resp_free(&r);

    audit_lines(v, 5, lines, sizeof(lines));
    snprintf(want, sizeof(want),
             "alice admin unpin %s ok\n"
             "ci operate unpin %s denied\n"
             "ci operate pin %s ok\n"
             "ci operate pin %s ok\n"
             "grafana read pin %s denied\n",
             id, id, id, id, id);
    assert_string_equal(lines, want);
}

static void test_api_ops_pin_refusals(void **state)
{
    env *v = *state;
    char path[128];
    resp r;
    http(v, "POST", "/v1/backups/20260101T000000Z-00000000/pin", TOK_ADMIN, NULL, NULL, &r);
    expect_status(&r, 404, "not_found");
    resp_free(&r);
    http(v, "POST", "/v1/backups/not-an-id/pin", TOK_ADMIN, NULL, NULL, &r);
    expect_status(&r, 404, "not_found");
    resp_free(&r);
    http(v, "POST", "/v1/backups/20260101T000000Z-000000000000000000/pin", TOK_ADMIN, NULL, NULL,
         &r);
    expect_status(&r, 404, "not_found");
    resp_free(&r);
    snprintf(path, sizeof(path), "/v1/backups/%s/pin", v->ids[1]);
    http(v, "POST", path, TOK_ADMIN, "{\"pinned\": false}", NULL, &r);
    expect_status(&r, 400, "bad_request");
    resp_free(&r);
    http(v, "POST", path, TOK_ADMIN, "{}", "text/plain", &r);
    expect_status(&r, 415, NULL);
    resp_free(&r);
    http(v, "GET", path, TOK_ADMIN, NULL, NULL, &r);
    expect_status(&r, 405, NULL);
    resp_free(&r);
    snprintf(path, sizeof(path), "/v1/backups/%s/pin?x=1", v->ids[1]);
    http(v, "POST", path, TOK_ADMIN, NULL, NULL, &r);
    expect_status(&r, 400, "bad_request");
    resp_free(&r);
    /* other paths under a backup are not this file's */
    snprintf(path, sizeof(path), "/v1/backups/%s/pinned", v->ids[1]);
    http(v, "POST", path, TOK_ADMIN, NULL, NULL, &r);
    expect_status(&r, 404, "not_found");
    resp_free(&r);
    snprintf(path, sizeof(path), "/v1/backups/%s", v->ids[1]);
    http(v, "GET", path, TOK_READ, NULL, NULL, &r);
    assert_true(json_is_false(json_object_get(r.json, "pinned")));
    resp_free(&r);
    char lines[4096];
    audit_lines(v, 5, lines, sizeof(lines));
    assert_non_null(strstr(lines, "alice admin pin 20260101T000000Z-00000000 error: no backup"));
    assert_non_null(strstr(lines, "alice admin pin not-an-id error: no such backup"));
    assert_non_null(strstr(lines, "error: this request takes no fields"));
    assert_non_null(strstr(lines, "error: not application/json"));
}

static void test_api_ops_stats(void **state)
{
    env *v = *state;
    resp r;
    http(v, "GET", "/v1/stats", TOK_READ, NULL, NULL, &r);
    expect_status(&r, 200, NULL);
    json_t *dbs = json_object_get(r.json, "databases"), *t = json_object_get(r.json, "total");
    assert_int_equal(json_array_size(dbs), 1);
    json_t *d = json_array_get(dbs, 0);
    assert_string_equal(jstr(d, "agent"), "db1");
    assert_int_equal(json_integer_value(json_object_get(d, "complete")), NBACKUPS);
    assert_int_equal(json_integer_value(json_object_get(d, "total_bytes")), 10000);
    assert_int_equal(json_integer_value(json_object_get(d, "failed")), 1);
    assert_int_equal(json_integer_value(json_object_get(t, "databases")), 1);
    assert_int_equal(json_integer_value(json_object_get(t, "complete")), NBACKUPS);
    assert_int_equal(json_integer_value(json_object_get(t, "total_bytes")), 10000);
    assert_int_equal(json_integer_value(json_object_get(t, "average_bytes")), 2500);
    assert_int_equal(json_integer_value(json_object_get(t, "failed")), 1);
    assert_string_equal(jstr(t, "newest_complete"), jstr(d, "newest_complete"));
    assert_string_equal(jstr(t, "oldest_complete"), jstr(d, "oldest_complete"));
    assert_true(strcmp(jstr(t, "oldest_complete"), jstr(t, "newest_complete")) < 0);
    resp_free(&r);
    http(v, "GET", "/v1/stats?x=1", TOK_READ, NULL, NULL, &r);
    expect_status(&r, 400, "bad_request");
    resp_free(&r);
    http(v, "POST", "/v1/stats", TOK_ADMIN, "{}", NULL, &r);
    expect_status(&r, 405, NULL);
    resp_free(&r);
}

static void test_api_ops_schedules_without_scheduler_404(void **state)
{
    env *v = *state;
    resp r;
    http(v, "GET", "/v1/schedules", TOK_READ, NULL, NULL, &r);
    expect_status(&r, 404, "not_found");
    assert_non_null(strstr(jstr(r.json, "error"), "scheduler"));
    resp_free(&r);
}

static void test_api_ops_prune_refusals(void **state)
{
    env *v = *state;
    resp r;
    http(v, "POST", "/v1/prune", TOK_OPERATE, "{\"dry_run\": false}", NULL, &r);
    expect_status(&r, 403, "forbidden");
    resp_free(&r);
    http(v, "POST", "/v1/prune", TOK_ADMIN, "{}", NULL, &r);
    expect_status(&r, 400, "bad_request");
    resp_free(&r);
    http(v, "POST", "/v1/prune", TOK_ADMIN, "", NULL, &r);
    expect_status(&r, 400, "bad_request");
    resp_free(&r);
    http(v, "POST", "/v1/prune", TOK_ADMIN, "{\"dry_run\": false}", "text/plain", &r);
    expect_status(&r, 415, NULL);
    resp_free(&r);
    http(v, "GET", "/v1/prune", TOK_ADMIN, NULL, NULL, &r);
    expect_status(&r, 405, NULL);
    resp_free(&r);
    char lines[2048];
    audit_lines(v, 4, lines, sizeof(lines));
    assert_string_equal(lines,
                        "alice admin prune all databases error: not application/json\n"
                        "alice admin prune all databases error: the request body is empty; "
                        "send {\"dry_run\": true} or {\"dry_run\": false}\n"
                        "alice admin prune all databases error: field \"dry_run\" is required "
                        "(true or false): a prune deletes backups, so it is never implied\n"
                        "ci operate prune all databases denied\n");
    /* nothing was deleted */
    for (int i = 0; i < NBACKUPS; i++) {
        char p[600];
        struct stat sb;
        snprintf(p, sizeof(p), "%s/%s", v->store, v->keys[i]);
        assert_int_equal(stat(p, &sb), 0);
    }
}

/* The fate of each backup in a plan: "K" or "D" per id of v->ids (oldest first), then the
 * failed one's. */
static void fates(env *v, json_t *plan, char out[NBACKUPS + 2])
{
    memset(out, '?', NBACKUPS + 1);
    out[NBACKUPS + 1] = '\0';
    json_t *b;
    size_t i;
    json_array_foreach(json_object_get(plan, "backups"), i, b)
    {
        const char *id = jstr(b, "id");
        char f = strcmp(jstr(b, "fate"), "keep") == 0 ? 'K' : 'D';
        for (int k = 0; k < NBACKUPS; k++)
            if (strcmp(id, v->ids[k]) == 0)
                out[k] = f;
        if (strcmp(id, v->failed_id) == 0)
            out[NBACKUPS] = f;
    }
}

static void test_api_ops_prune_dry_run_then_prune(void **state)
{
    env *v = *state;
    char path[128], f[NBACKUPS + 2];
    resp r;
    snprintf(path, sizeof(path), "/v1/backups/%s/pin", v->ids[0]);
    http(v, "POST", path, TOK_OPERATE, NULL, NULL, &r);
    expect_status(&r, 200, NULL);
    resp_free(&r);

    http(v, "POST", "/v1/prune", TOK_ADMIN, "{\"dry_run\": true}", NULL, &r);
    expect_status(&r, 200, NULL);
    assert_true(json_is_true(json_object_get(r.json, "dry_run")));
    fates(v, r.json, f);
    assert_string_equal(f, "KDKKD"); /* pinned oldest, newest two; the failed one goes */
    assert_int_equal(json_integer_value(json_object_get(r.json, "delete")), 2);
    assert_int_equal(json_integer_value(json_object_get(r.json, "delete_bytes")), 2000);
    assert_null(json_object_get(r.json, "deleted")); /* a dry run deletes nothing */
    json_t *b;
    size_t i;
    json_array_foreach(json_object_get(r.json, "backups"), i, b)
    {
        if (strcmp(jstr(b, "id"), v->ids[0]) == 0) {
            assert_string_equal(jstr(b, "policy"), "keep2");
            assert_string_equal(json_string_value(json_array_get(json_object_get(b, "reasons"), 0)),
                                "pinned");
        }
    }
    resp_free(&r);

    http(v, "POST", "/v1/prune", TOK_ADMIN, "{\"dry_run\": false}", NULL, &r);
    expect_status(&r, 200, NULL);
    assert_true(json_is_false(json_object_get(r.json, "dry_run")));
    assert_int_equal(json_integer_value(json_object_get(r.json, "deleted")), 2);
    assert_int_equal(json_integer_value(json_object_get(r.json, "failed")), 0);
    assert_int_equal(json_integer_value(json_object_get(r.json, "skipped")), 0);
    assert_int_equal(json_integer_value(json_object_get(r.json, "bytes_deleted")), 2000);
    assert_int_equal(json_array_size(json_object_get(r.json, "failures")), 0);
    resp_free(&r);

    for (int k = 0; k < NBACKUPS; k++) {
        char p[600];
        struct stat sb;
        snprintf(p, sizeof(p), "%s/%s", v->store, v->keys[k]);
        assert_int_equal(stat(p, &sb) == 0, k != 1); /* only the second oldest is gone */
        snprintf(path, sizeof(path), "/v1/backups/%s", v->ids[k]);
        http(v, "GET", path, TOK_READ, NULL, NULL, &r);
        assert_int_equal(r.status, k != 1 ? 200 : 404);
        resp_free(&r);
    }
    snprintf(path, sizeof(path), "/v1/backups/%s", v->failed_id);
    http(v, "GET", path, TOK_READ, NULL, NULL, &r);
    assert_int_equal(r.status, 404);
    resp_free(&r);

    char lines[1024];
    audit_lines(v, 1, lines, sizeof(lines));
    assert_string_equal(lines, "alice admin prune all databases ok\n");
    http(v, "GET", "/v1/audit?limit=1", TOK_ADMIN, NULL, NULL, &r);
    json_t *d = json_object_get(json_array_get(json_object_get(r.json, "entries"), 0), "detail");
    assert_int_equal(json_integer_value(json_object_get(d, "deleted")), 2);
    assert_true(json_is_true(json_object_get(r.json, "more")));
    resp_free(&r);

    /* again: nothing left to delete */
    http(v, "POST", "/v1/prune", TOK_ADMIN, "{\"dry_run\": false}", NULL, &r);
    expect_status(&r, 200, NULL);
    assert_int_equal(json_integer_value(json_object_get(r.json, "deleted")), 0);
    resp_free(&r);
}

static void test_api_ops_audit_needs_admin_and_a_good_query(void **state)
{
    env *v = *state;
    resp r;
    http(v, "GET", "/v1/audit", TOK_OPERATE, NULL, NULL, &r);
    expect_status(&r, 403, "forbidden");
    resp_free(&r);
    http(v, "GET", "/v1/audit?limit=0", TOK_ADMIN, NULL, NULL, &r);
    expect_status(&r, 400, "bad_request");
    resp_free(&r);
    http(v, "GET", "/v1/audit?since=1", TOK_ADMIN, NULL, NULL, &r);
    expect_status(&r, 400, "bad_request");
    resp_free(&r);
    http(v, "POST", "/v1/audit", TOK_ADMIN, "{}", NULL, &r);
    expect_status(&r, 405, NULL);
    resp_free(&r);
    http(v, "GET", "/v1/audit", TOK_ADMIN, NULL, NULL, &r);
    expect_status(&r, 200, NULL);
    json_t *list = json_object_get(r.json, "entries");
    assert_true(json_array_size(list) > 10);
    /* newest first: ids decrease */
    for (size_t i = 1; i < json_array_size(list); i++)
        assert_true(json_integer_value(json_object_get(json_array_get(list, i - 1), "id")) >
                    json_integer_value(json_object_get(json_array_get(list, i), "id")));
    assert_true(json_is_false(json_object_get(r.json, "more")));
    resp_free(&r);
}

int main(void)
{
    log_init("api_ops_test");
    log_set_level(LOG_ERROR);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_ops_prune_body_accepts_dry_run_true_and_false),
        cmocka_unit_test(test_api_ops_prune_body_refuses_hostile_input),
        cmocka_unit_test(test_api_ops_empty_body),
        cmocka_unit_test(test_api_ops_audit_query),
        /* in this order: each route test builds on the catalog the last one left */
        cmocka_unit_test(test_api_ops_pin_needs_operate_unpin_needs_admin),
        cmocka_unit_test(test_api_ops_pin_refusals),
        cmocka_unit_test(test_api_ops_stats),
        cmocka_unit_test(test_api_ops_schedules_without_scheduler_404),
        cmocka_unit_test(test_api_ops_prune_refusals),
        cmocka_unit_test(test_api_ops_prune_dry_run_then_prune),
        cmocka_unit_test(test_api_ops_audit_needs_admin_and_a_good_query),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
