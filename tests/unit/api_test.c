/*
 * Tests of the coordinator's HTTP API (coordinator/api.c) over real HTTP on loopback: libcurl as
 * the client, a real catalog file and a local-directory storage in a fresh temporary directory,
 * and no fleet (fleet == NULL: no agent is connected). Covers the token, every endpoint, strict
 * query and body checks, the download of a stored archive (headers, bytes, digest, several
 * storage reads long), and what happens to downloads when too many run or the API stops.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "common/fsutil.h"
#include "common/log.h"
#include "common/sha256.h"
#include "coordinator/api.h"
#include "tests/unit/testutil.h"

#define TOKEN "test-token-0123456789abcdef"
#define BIG_SIZE (24u * 1024 * 1024) /* several storage reads, more than socket buffers */

typedef struct env {
    char dir[256];
    char cpath[300];
    storage *st;
    catalog *cat;
    api *api;
    int port;
    char complete_id[CATALOG_ID_SIZE]; /* small object */
    char big_id[CATALOG_ID_SIZE];
    char running_id[CATALOG_ID_SIZE];
    char failed_id[CATALOG_ID_SIZE];
    char missing_id[CATALOG_ID_SIZE]; /* complete in the catalog, nothing in storage */
    char small_sha[SHA256_HEX_LEN + 1];
    char big_sha[SHA256_HEX_LEN + 1];
    uint8_t *big;
} env;

/* ---- fixture ---- */

static int64_t fake_ms;
static int64_t fake_clock(void *arg)
{
    (void)arg;
    return fake_ms += 1000; /* one second per stamp: ordered creation times */
}

static uint8_t small_obj[] = "pgship test object: not really an archive\n";

/* Stores buf under key and completes backup id with it. */
static void store_complete(env *v, const char *id, const char *key, const void *buf, size_t len,
                           char sha_hex[SHA256_HEX_LEN + 1])
{
    pgs_error e = {0};
    storage_upload *u;
    uint8_t sha[32];
    uint64_t size;
    assert_int_equal(storage_upload_begin(v->st, key, &u, &e), 0);
    assert_int_equal(storage_upload_write(u, buf, len, &e), 0);
    assert_int_equal(storage_upload_commit(u, sha, &size, &e), 0);
    hex_encode(sha, 32, sha_hex);
    catalog_backup_info info = {.storage_key = key};
    assert_int_equal(catalog_backup_start(v->cat, id, &info, &e), 0);
    assert_int_equal(catalog_backup_complete(v->cat, id, size, 0, sha_hex, key, &e), 0);
}

static void new_backup(env *v, const char *db, const char *label, char id[CATALOG_ID_SIZE])
{
    pgs_error e = {0};
    catalog_backup_req req = {.agent = "prod-db1",
                              .database = db,
                              .environment = "prod",
                              .label = label,
                              .requested_by = "test"};
    if (catalog_backup_new(v->cat, &req, id, &e) != 0)
        fail_msg("catalog_backup_new: %s", e.msg);
}

static void env_start_api(env *v)
{
    pgs_error e = {0};
    api_opts o = {.url = "http://127.0.0.1:0",
                  .token = TOKEN,
                  .fleet = NULL,
                  .storage = v->st,
                  .catalog_path = v->cpath};
    if (api_start(&o, &v->api, &e) != 0)
        fail_msg("api_start: %s", e.msg);
    v->port = api_port(v->api);
    assert_true(v->port > 0);
}

static int setup(void **state)
{
    env *v = calloc(1, sizeof(*v));
    snprintf(v->dir, sizeof(v->dir), "/tmp/pgship-api-test-XXXXXX");
    if (mkdtemp(v->dir) == NULL)
        return -1;
    snprintf(v->cpath, sizeof(v->cpath), "%s/catalog.db", v->dir);
    char store[300];
    snprintf(store, sizeof(store), "%s/store", v->dir);
    pgs_error e = {0};
    storage_config sc = {.type = "fs", .path = store};
    if (storage_open(&v->st, &sc, &e) != 0 || catalog_open(v->cpath, &v->cat, &e) != 0 ||
        catalog_agent_seen(v->cat, "prod-db1", "0123456789abcdef", NULL, "0.1.0", 1, &e) != 0 ||
        catalog_agent_seen(v->cat, "stage-db1", NULL, NULL, "0.1.0", 0, &e) != 0 ||
        catalog_database_seen(v->cat, "prod-db1", "appdb", "prod", "15.4", &e) != 0 ||
        catalog_database_seen(v->cat, "prod-db1", "billing", "prod", "15.4", &e) != 0) {
        fprintf(stderr, "setup: %s\n", e.msg);
        return -1;
    }
    fake_ms = 1795000000000;
    catalog_set_clock(v->cat, fake_clock, NULL);

    char key[256];
    new_backup(v, "appdb", "before migration", v->complete_id);
    snprintf(key, sizeof(key), "prod/prod-db1/appdb/%s.pgship", v->complete_id);
    store_complete(v, v->complete_id, key, small_obj, sizeof(small_obj) - 1, v->small_sha);

    v->big = malloc(BIG_SIZE);
    for (size_t i = 0; i < BIG_SIZE; i++)
        v->big[i] = (uint8_t)(i * 2654435761u >> 13);
    new_backup(v, "billing", NULL, v->big_id);
    snprintf(key, sizeof(key), "prod/prod-db1/billing/%s.pgship", v->big_id);
    store_complete(v, v->big_id, key, v->big, BIG_SIZE, v->big_sha);

    new_backup(v, "appdb", NULL, v->failed_id);
    if (catalog_backup_fail(v->cat, v->failed_id, "pg_dump exited with status 1", &e) != 0)
        return -1;

    new_backup(v, "appdb", NULL, v->missing_id);
    char mkey[256], msha[65];
    snprintf(mkey, sizeof(mkey), "prod/prod-db1/appdb/%s.pgship", v->missing_id);
    store_complete(v, v->missing_id, mkey, "x", 1, msha);
    if (storage_delete(v->st, mkey, &e) != 0)
        return -1;

    new_backup(v, "appdb", "in flight", v->running_id);
    if (catalog_backup_start(v->cat, v->running_id, NULL, &e) != 0)
        return -1;

    env_start_api(v);
    *state = v;
    return 0;
}

static int teardown(void **state)
{
    env *v = *state;
    api_stop(v->api);
    catalog_close(v->cat);
    storage_close(v->st);
    int rc = fs_rm_rf(v->dir);
    free(v->big);
    free(v);
    return rc;
}

/* ---- an HTTP client ---- */

typedef struct resp {
    long status;
    tu_buf body;
    char sha_header[80];
    char content_type[80];
    char allow[80];
    char www_auth[80];
    json_t *json;
} resp;

static size_t on_body(char *p, size_t sz, size_t n, void *arg)
{
    resp *r = arg;
    return tu_buf_append(&r->body, p, sz * n) == 0 ? sz * n : 0;
}

static void header_value(const char *line, size_t len, const char *name, char *dst, size_t cap)
{
    size_t nl = strlen(name);
    if (len <= nl + 1 || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return;
    const char *v = line + nl + 1;
    size_t vl = len - nl - 1;
    while (vl > 0 && *v == ' ')
        v++, vl--;
    while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n'))
        vl--;
    snprintf(dst, cap, "%.*s", (int)vl, v);
}

static size_t on_header(char *p, size_t sz, size_t n, void *arg)
{
    resp *r = arg;
    header_value(p, sz * n, "X-Pgship-Sha256", r->sha_header, sizeof(r->sha_header));
    header_value(p, sz * n, "Content-Type", r->content_type, sizeof(r->content_type));
    header_value(p, sz * n, "Allow", r->allow, sizeof(r->allow));
    header_value(p, sz * n, "WWW-Authenticate", r->www_auth, sizeof(r->www_auth));
    return sz * n;
}

/* One request; token NULL sends no Authorization header. body with ctype for POST. */
static void http(env *v, const char *method, const char *path, const char *token, const char *body,
                 size_t blen, const char *ctype, resp *r)
{
    memset(r, 0, sizeof(*r));
    CURL *c = curl_easy_init();
    assert_non_null(c);
    char url[512], auth[256], ct[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", v->port, path);
    struct curl_slist *h = NULL;
    if (token != NULL) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        h = curl_slist_append(h, auth);
    }
    if (ctype != NULL) {
        snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
        h = curl_slist_append(h, ct);
    }
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        if (body != NULL) {
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)blen);
        }
    }
    CURLcode cc = curl_easy_perform(c);
    if (cc != CURLE_OK)
        fail_msg("%s %s: %s", method, path, curl_easy_strerror(cc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (strncmp(r->content_type, "application/json", 16) == 0 && r->body.len > 0)
        r->json = json_loadb((const char *)r->body.data, r->body.len, 0, NULL);
}

static void resp_free(resp *r)
{
    tu_buf_free(&r->body);
    json_decref(r->json);
}

static void get(env *v, const char *path, resp *r)
{
    http(v, "GET", path, TOKEN, NULL, 0, NULL, r);
}

static void post(env *v, const char *body, resp *r)
{
    http(v, "POST", "/v1/backups", TOKEN, body, strlen(body), "application/json", r);
}

/* Asserts an error answer: status, JSON {"error", "code"}. */
static void assert_error(resp *r, long status, const char *code)
{
    if (r->status != status)
        fail_msg("expected status %ld, got %ld: %.*s", status, r->status, (int)r->body.len,
                 (const char *)r->body.data);
    assert_non_null(r->json);
    assert_true(json_is_string(json_object_get(r->json, "error")));
    assert_string_equal(json_string_value(json_object_get(r->json, "code")), code);
}

static const char *jstr(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* ---- authentication ---- */

static void test_api_auth_missing_token_401(void **state)
{
    env *v = *state;
    resp r;
    http(v, "GET", "/v1/backups", NULL, NULL, 0, NULL, &r);
    assert_error(&r, 401, "unauthorized");
    assert_string_equal(r.www_auth, "Bearer realm=\"pgship\"");
    resp_free(&r);
    /* unknown paths too: nothing is revealed without the token */
    http(v, "GET", "/nothing/here", NULL, NULL, 0, NULL, &r);
    assert_error(&r, 401, "unauthorized");
    resp_free(&r);
}

static void test_api_auth_wrong_token_401(void **state)
{
    env *v = *state;
    static const char *bad[] = {"test-token-0123456789abcdeX", "test-token", TOKEN "0", "x", ""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        resp r;
        http(v, "GET", "/v1/agents", bad[i], NULL, 0, NULL, &r);
        assert_error(&r, 401, "unauthorized");
        resp_free(&r);
    }
    /* another scheme with the right token */
    resp r;
    memset(&r, 0, sizeof(r));
    CURL *c = curl_easy_init();
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/agents", v->port);
    struct curl_slist *h = curl_slist_append(NULL, "Authorization: Basic " TOKEN);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    assert_int_equal(r.status, 401);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    resp_free(&r);
}

static void test_api_auth_right_token_case_insensitive_scheme(void **state)
{
    env *v = *state;
    resp r;
    memset(&r, 0, sizeof(r));
    CURL *c = curl_easy_init();
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/agents", v->port);
    struct curl_slist *h = curl_slist_append(NULL, "Authorization: bearer " TOKEN);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    assert_int_equal(r.status, 200);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    resp_free(&r);
}

/* ---- agents ---- */

static void test_api_agents_lists_catalog_agents_offline_without_fleet(void **state)
{
    env *v = *state;
    resp r;
    get(v, "/v1/agents", &r);
    assert_int_equal(r.status, 200);
    assert_non_null(r.json);
    json_t *agents = json_object_get(r.json, "agents");
    assert_int_equal(json_array_size(agents), 2);
    json_t *a0 = json_array_get(agents, 0);
    assert_string_equal(jstr(a0, "name"), "prod-db1");
    /* no fleet: nobody is connected to this process, whatever the catalog's flag says */
    assert_true(json_is_false(json_object_get(a0, "connected")));
    assert_string_equal(jstr(a0, "version"), "0.1.0");
    assert_string_equal(jstr(a0, "key_id"), "0123456789abcdef");
    assert_true(json_is_null(json_object_get(a0, "connected_at")));
    assert_int_equal(json_array_size(json_object_get(a0, "jobs")), 0);
    json_t *dbs = json_object_get(a0, "databases");
    assert_int_equal(json_array_size(dbs), 2);
    assert_string_equal(jstr(json_array_get(dbs, 0), "name"), "appdb");
    assert_string_equal(jstr(json_array_get(dbs, 0), "environment"), "prod");
    assert_string_equal(jstr(json_array_get(dbs, 0), "server_version"), "15.4");
    json_t *a1 = json_array_get(agents, 1);
    assert_string_equal(jstr(a1, "name"), "stage-db1");
    assert_int_equal(json_array_size(json_object_get(a1, "databases")), 0);
    resp_free(&r);

    http(v, "GET", "/v1/agents?x=1", TOKEN, NULL, 0, NULL, &r);
    assert_error(&r, 400, "bad_request");
    resp_free(&r);
}

/* ---- backups: list and show ---- */

static void test_api_backups_list_newest_first(void **state)
{
    env *v = *state;
    resp r;
    get(v, "/v1/backups", &r);
    assert_int_equal(r.status, 200);
    json_t *b = json_object_get(r.json, "backups");
    assert_int_equal(json_array_size(b), 5);
    assert_true(json_is_false(json_object_get(r.json, "more")));
    assert_string_equal(jstr(json_array_get(b, 0), "id"), v->running_id);
    assert_string_equal(jstr(json_array_get(b, 4), "id"), v->complete_id);
    json_t *c = json_array_get(b, 4);
    assert_string_equal(jstr(c, "state"), "complete");
    assert_string_equal(jstr(c, "sha256"), v->small_sha);
    assert_int_equal(json_integer_value(json_object_get(c, "size_bytes")), sizeof(small_obj) - 1);
    assert_string_equal(jstr(c, "label"), "before migration");
    assert_string_equal(jstr(c, "environment"), "prod");
    assert_non_null(jstr(c, "storage_key"));
    assert_non_null(jstr(c, "started_at"));
    assert_non_null(jstr(c, "finished_at"));
    assert_true(json_is_null(json_object_get(c, "error")));
    resp_free(&r);
}

static void test_api_backups_list_filters_and_limit(void **state)
{
    env *v = *state;
    resp r;
    get(v, "/v1/backups?state=complete", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(json_object_get(r.json, "backups")), 3);
    resp_free(&r);

    get(v, "/v1/backups?agent=prod-db1&database=billing", &r);
    assert_int_equal(json_array_size(json_object_get(r.json, "backups")), 1);
    assert_string_equal(jstr(json_array_get(json_object_get(r.json, "backups"), 0), "id"),
                        v->big_id);
    resp_free(&r);

    get(v, "/v1/backups?state=failed&environment=prod", &r);
    json_t *f = json_array_get(json_object_get(r.json, "backups"), 0);
    assert_string_equal(jstr(f, "id"), v->failed_id);
    assert_string_equal(jstr(f, "error"), "pg_dump exited with status 1");
    resp_free(&r);

    get(v, "/v1/backups?agent=stage-db1", &r);
    assert_int_equal(json_array_size(json_object_get(r.json, "backups")), 0);
    resp_free(&r);

    get(v, "/v1/backups?limit=2", &r);
    assert_int_equal(json_array_size(json_object_get(r.json, "backups")), 2);
    assert_true(json_is_true(json_object_get(r.json, "more")));
    resp_free(&r);

    get(v, "/v1/backups?limit=5", &r);
    assert_int_equal(json_array_size(json_object_get(r.json, "backups")), 5);
    assert_true(json_is_false(json_object_get(r.json, "more")));
    resp_free(&r);

    get(v, "/v1/backups?agent=prod%2Ddb1&state=any", &r); /* %-escapes are decoded */
    assert_int_equal(json_array_size(json_object_get(r.json, "backups")), 5);
    resp_free(&r);
}

static void test_api_backups_list_refuses_bad_queries(void **state)
{
    env *v = *state;
    static const char *bad[] = {
        "/v1/backups?limit=0",         "/v1/backups?limit=10001", "/v1/backups?limit=-1",
        "/v1/backups?limit=1x",        "/v1/backups?state=done",  "/v1/backups?agent=",
        "/v1/backups?agent=.hidden",   "/v1/backups?agent=a/b",   "/v1/backups?colour=red",
        "/v1/backups?agent=a&agent=b", "/v1/backups?agent",       "/v1/backups?agent=%zz",
        "/v1/backups?agent=a%00b",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        resp r;
        get(v, bad[i], &r);
        if (r.status != 400)
            fail_msg("%s: expected 400, got %ld", bad[i], r.status);
        assert_error(&r, 400, "bad_request");
        resp_free(&r);
    }
}

static void test_api_backup_show_and_404(void **state)
{
    env *v = *state;
    char path[128];
    resp r;
    snprintf(path, sizeof(path), "/v1/backups/%s", v->running_id);
    get(v, path, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.json, "id"), v->running_id);
    assert_string_equal(jstr(r.json, "state"), "running");
    assert_string_equal(jstr(r.json, "label"), "in flight");
    assert_true(json_is_null(json_object_get(r.json, "progress"))); /* no fleet: not live */
    resp_free(&r);

    get(v, "/v1/backups/20260101T000000Z-00000000", &r);
    assert_error(&r, 404, "not_found");
    resp_free(&r);
    get(v, "/v1/backups/not-an-id", &r);
    assert_error(&r, 404, "not_found");
    resp_free(&r);
    snprintf(path, sizeof(path), "/v1/backups/%s/nothing", v->running_id);
    get(v, path, &r);
    assert_error(&r, 404, "not_found");
    resp_free(&r);
    get(v, "/v2/backups", &r);
    assert_error(&r, 404, "not_found");
    resp_free(&r);
}

static void test_api_methods_not_allowed_405(void **state)
{
    env *v = *state;
    resp r;
    http(v, "DELETE", "/v1/backups", TOKEN, NULL, 0, NULL, &r);
    assert_error(&r, 405, "method_not_allowed");
    assert_string_equal(r.allow, "GET, HEAD, POST");
    resp_free(&r);
    http(v, "POST", "/v1/agents", TOKEN, "{}", 2, "application/json", &r);
    assert_error(&r, 405, "method_not_allowed");
    resp_free(&r);
}

/* ---- POST /v1/backups ---- */

static void test_api_post_backup_without_fleet_409(void **state)
{
    env *v = *state;
    resp r;
    post(v, "{\"agent\": \"prod-db1\", \"database\": \"appdb\", \"label\": \"before x\"}", &r);
    assert_error(&r, 409, "not_connected");
    assert_non_null(strstr(jstr(r.json, "error"), "prod-db1 is not connected"));
    resp_free(&r);
}

static void test_api_post_backup_refuses_malformed_bodies(void **state)
{
    env *v = *state;
    static const char *bad[] = {
        "",
        "not json",
        "[]",
        "{\"agent\": \"prod-db1\"}",
        "{\"agent\": \"prod-db1\", \"database\": \"appdb\", \"extra\": 1}",
        "{\"agent\": \"prod-db1\", \"database\": 7}",
        "{\"agent\": \"prod-db1\", \"database\": \"../etc\"}",
        "{\"agent\": \"prod-db1\", \"agent\": \"x\", \"database\": \"appdb\"}",
        "{\"agent\": \"prod-db1\", \"database\": \"appdb\", \"label\": null}",
        "{\"agent\": \"prod-db1\", \"database\": \"appdb\", \"label\": \"a\\nb\"}",
        "{\"agent\": \"prod-db1\", \"database\": \"appdb\", \"label\": \"a\\u0000b\"}",
        "{\"agent\": \"prod-db1\", \"database\": \"appdb\"} trailing",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        resp r;
        post(v, bad[i], &r);
        if (r.status != 400)
            fail_msg("body %zu: expected 400, got %ld", i, r.status);
        assert_error(&r, 400, "bad_request");
        resp_free(&r);
    }
    /* the wrong media type */
    resp r;
    const char *ok = "{\"agent\": \"prod-db1\", \"database\": \"appdb\"}";
    http(v, "POST", "/v1/backups", TOKEN, ok, strlen(ok), "application/x-www-form-urlencoded", &r);
    assert_error(&r, 415, "unsupported_media_type");
    resp_free(&r);
    /* a body over the limit is refused by the HTTP layer before the API sees it */
    size_t n = API_BODY_MAX + 10;
    char *big = malloc(n);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    http(v, "POST", "/v1/backups", TOKEN, big, n, "application/json", &r);
    assert_int_equal(r.status, 400);
    resp_free(&r);
    free(big);
}

static void test_api_backup_body_parse(void **state)
{
    (void)state;
    api_backup_body b;
    pgs_error e = {0};
    const char *ok = "{\"database\": \"appdb\", \"agent\": \"prod-db1\", \"label\": \"été\"}";
    assert_int_equal(api_backup_body_parse(ok, strlen(ok), &b, &e), 0);
    assert_string_equal(b.agent, "prod-db1");
    assert_string_equal(b.database, "appdb");
    assert_string_equal(b.label, "été");
    const char *nolabel = "{\"database\": \"appdb\", \"agent\": \"prod-db1\"}";
    assert_int_equal(api_backup_body_parse(nolabel, strlen(nolabel), &b, &e), 0);
    assert_string_equal(b.label, "");

    const char *unknown = "{\"database\": \"appdb\", \"agent\": \"a\", \"when\": \"now\"}";
    TU_ASSERT_ERR(api_backup_body_parse(unknown, strlen(unknown), &b, &e), e, PGS_EFORMAT,
                  "unexpected field \"when\"");
    const char *badname = "{\"database\": \"-x\", \"agent\": \"a\"}";
    TU_ASSERT_ERR(api_backup_body_parse(badname, strlen(badname), &b, &e), e, PGS_EINVAL,
                  "field \"database\" is not a valid name");
    char longlabel[400];
    snprintf(longlabel, sizeof(longlabel),
             "{\"database\": \"d\", \"agent\": \"a\", \"label\": \"%0129d\"}", 0);
    TU_ASSERT_ERR(api_backup_body_parse(longlabel, strlen(longlabel), &b, &e), e, PGS_ELIMIT,
                  "label");
    const char *c1 = "{\"database\": \"d\", \"agent\": \"a\", \"label\": \"x\\u0085\"}";
    TU_ASSERT_ERR(api_backup_body_parse(c1, strlen(c1), &b, &e), e, PGS_EINVAL,
                  "control character");
    TU_ASSERT_ERR(api_backup_body_parse("{}", API_BODY_MAX + 1, &b, &e), e, PGS_ELIMIT, NULL);
    /* a NUL inside the buffer is not the end of the text */
    const char nul[] = "{\"database\": \"d\", \"agent\": \"a\"}\0{";
    TU_ASSERT_ERR(api_backup_body_parse(nul, sizeof(nul) - 1, &b, &e), e, PGS_EFORMAT, NULL);
}

/* ---- downloads ---- */

static void test_api_object_streams_complete_backup(void **state)
{
    env *v = *state;
    char path[128];
    resp r;
    snprintf(path, sizeof(path), "/v1/backups/%s/object", v->complete_id);
    get(v, path, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "application/octet-stream");
    assert_string_equal(r.sha_header, v->small_sha);
    assert_int_equal(r.body.len, sizeof(small_obj) - 1);
    assert_memory_equal(r.body.data, small_obj, r.body.len);
    resp_free(&r);

    snprintf(path, sizeof(path), "/v1/backups/%s/object", v->big_id);
    get(v, path, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.sha_header, v->big_sha);
    assert_int_equal(r.body.len, BIG_SIZE);
    assert_memory_equal(r.body.data, v->big, BIG_SIZE);
    resp_free(&r);

    http(v, "HEAD", path, TOKEN, NULL, 0, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.sha_header, v->big_sha);
    assert_int_equal(r.body.len, 0);
    resp_free(&r);
}

static void test_api_object_refuses_incomplete_409(void **state)
{
    env *v = *state;
    char path[128];
    resp r;
    snprintf(path, sizeof(path), "/v1/backups/%s/object", v->running_id);
    get(v, path, &r);
    assert_error(&r, 409, "not_complete");
    resp_free(&r);
    snprintf(path, sizeof(path), "/v1/backups/%s/object", v->failed_id);
    get(v, path, &r);
    assert_error(&r, 409, "not_complete");
    resp_free(&r);
    get(v, "/v1/backups/20260101T000000Z-00000000/object", &r);
    assert_error(&r, 404, "not_found");
    resp_free(&r);
}

static void test_api_object_missing_from_storage_404(void **state)
{
    env *v = *state;
    char path[128];
    resp r;
    snprintf(path, sizeof(path), "/v1/backups/%s/object", v->missing_id);
    get(v, path, &r);
    assert_error(&r, 404, "not_found");
    assert_non_null(strstr(jstr(r.json, "error"), "cannot read backup"));
    resp_free(&r);
    /* the API still serves after a hijacked connection was answered by hand */
    get(v, "/v1/agents", &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
}

/* A download whose client reads the status line and then nothing: the socket fills. */
static int stalled_download(env *v, const char *id, char *status_line, size_t cap)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)v->port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "GET /v1/backups/%s/object HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Authorization: Bearer " TOKEN "\r\n\r\n",
                     id);
    assert_int_equal(write(fd, req, (size_t)n), n);
    size_t got = 0;
    while (got + 1 < cap) {
        ssize_t k = read(fd, status_line + got, 1);
        if (k <= 0 || status_line[got] == '\n')
            break;
        got++;
    }
    status_line[got] = '\0';
    return fd;
}

static void test_api_object_concurrent_downloads_limited_429(void **state)
{
    env *v = *state;
    int fds[API_FETCH_MAX];
    char line[128];
    for (int i = 0; i < API_FETCH_MAX; i++) {
        fds[i] = stalled_download(v, v->big_id, line, sizeof(line));
        assert_non_null(strstr(line, " 200 "));
    }
    char path[128];
    resp r;
    snprintf(path, sizeof(path), "/v1/backups/%s/object", v->big_id);
    get(v, path, &r);
    assert_error(&r, 429, "busy");
    resp_free(&r);
    for (int i = 0; i < API_FETCH_MAX; i++)
        close(fds[i]);
    /* the slots come back once the writes notice their clients are gone */
    for (int tries = 0;; tries++) {
        http(v, "HEAD", path, TOKEN, NULL, 0, NULL, &r);
        long st = r.status;
        resp_free(&r);
        if (st == 200)
            break;
        assert_true(tries < 100);
        usleep(100 * 1000);
    }
}

static void *stop_thread(void *arg)
{
    api_stop(arg);
    return NULL;
}

static void test_api_stop_aborts_stalled_download(void **state)
{
    env *v = *state;
    char line[128];
    int fd = stalled_download(v, v->big_id, line, sizeof(line));
    assert_non_null(strstr(line, " 200 "));
    /* api_stop must not wait for the client (the write timeout is minutes) */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, stop_thread, v->api), 0);
    pthread_join(t, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(t1.tv_sec - t0.tv_sec < 10);
    close(fd);
    /* a new API on the same catalog and storage serves again */
    v->api = NULL;
    env_start_api(v);
    resp r;
    get(v, "/v1/agents", &r);
    assert_int_equal(r.status, 200);
    resp_free(&r);
}

static void test_api_start_refuses_bad_options(void **state)
{
    env *v = *state;
    api *a = NULL;
    pgs_error e = {0};
    api_opts o = {.url = "tcp://127.0.0.1:0", .token = TOKEN, .catalog_path = v->cpath};
    TU_ASSERT_ERR(api_start(&o, &a, &e), e, PGS_EINVAL, "http://");
    o.url = "http://127.0.0.1:0";
    o.token = "";
    TU_ASSERT_ERR(api_start(&o, &a, &e), e, PGS_EINVAL, "token");
    o.token = TOKEN;
    char bad[400];
    snprintf(bad, sizeof(bad), "%s/no/such/dir/catalog.db", v->dir);
    o.catalog_path = bad;
    assert_int_not_equal(api_start(&o, &a, &e), 0);
    assert_null(a);
    /* the port in use */
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", v->port);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof(sa);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 1), 0);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", ntohs(sa.sin_port));
    o.url = url;
    o.catalog_path = v->cpath;
    TU_ASSERT_ERR(api_start(&o, &a, &e), e, PGS_EIO, "cannot listen");
    close(fd);
}

int main(void)
{
    log_init("api_test");
    log_set_level(LOG_ERROR);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_auth_missing_token_401),
        cmocka_unit_test(test_api_auth_wrong_token_401),
        cmocka_unit_test(test_api_auth_right_token_case_insensitive_scheme),
        cmocka_unit_test(test_api_agents_lists_catalog_agents_offline_without_fleet),
        cmocka_unit_test(test_api_backups_list_newest_first),
        cmocka_unit_test(test_api_backups_list_filters_and_limit),
        cmocka_unit_test(test_api_backups_list_refuses_bad_queries),
        cmocka_unit_test(test_api_backup_show_and_404),
        cmocka_unit_test(test_api_methods_not_allowed_405),
        cmocka_unit_test(test_api_post_backup_without_fleet_409),
        cmocka_unit_test(test_api_post_backup_refuses_malformed_bodies),
        cmocka_unit_test(test_api_backup_body_parse),
        cmocka_unit_test(test_api_object_streams_complete_backup),
        cmocka_unit_test(test_api_object_refuses_incomplete_409),
        cmocka_unit_test(test_api_object_missing_from_storage_404),
        cmocka_unit_test(test_api_object_concurrent_downloads_limited_429),
        cmocka_unit_test(test_api_stop_aborts_stalled_download),
        cmocka_unit_test(test_api_start_refuses_bad_options),
    };
    int rc = cmocka_run_group_tests(tests, setup, teardown);
    curl_global_cleanup();
    return rc;
}
