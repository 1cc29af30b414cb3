/*
 * Tests of the coordinator's HTTP API (coordinator/api.c) over real HTTP on loopback: libcurl as
 * the client, a real catalog file and a local-directory storage in a fresh temporary directory,
 * and no fleet (fleet == NULL: no agent is connected). Covers the token, every endpoint, strict
 * query and body checks, restores through a scripted restorer (the refusals it maps, the
 * listing, live progress), the download of a stored archive (headers, bytes, digest, several
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

/* ---- restores ---- */

/*
 * The restorer, scripted here instead of coordinator/restore.c (whose object the linker then
 * never pulls in): restorer_request records what the API decoded and either refuses with rc or
 * queues a restore in the catalog through the API's own handle, as the real one does;
 * restorer_progress_get reports progress for live_id only.
 */
struct restorer {
    int rc;
    int calls;
    restore_request last;
    char requested_by[CATALOG_REQUESTED_BY_MAX + 1];
    char live_id[CATALOG_ID_SIZE];
};

int restorer_request(restorer *r, catalog *cat, const restore_request *req,
                     const char *requested_by, char id_out[CATALOG_ID_SIZE], pgs_error *e)
{
    r->calls++;
    r->last = *req;
    snprintf(r->requested_by, sizeof(r->requested_by), "%s", requested_by ? requested_by : "");
    if (r->rc != 0)
        return pgs_fail(e, r->rc, "scripted refusal (%s)", pgs_strerror(r->rc));
    catalog_restore_req cr = {.kind = req->fresh ? "sync" : "restore",
                              .requested_by = requested_by,
                              .source = req->source,
                              .target_agent = req->target_agent,
                              .target_database = req->target_database,
                              .target_environment = "staging",
                              .profile = req->profile};
    return catalog_restore_new(cat, &cr, id_out, e);
}

int restorer_progress_get(restorer *r, const char *id, restorer_progress *out)
{
    memset(out, 0, sizeof(*out));
    if (strcmp(id, r->live_id) != 0)
        return 0;
    snprintf(out->step, sizeof(out->step), "restore");
    out->has_job = 1;
    out->job.phase = FLEET_RESTORING;
    out->job.bytes = 1234;
    snprintf(out->job.step, sizeof(out->job.step), "pg_restore");
    snprintf(out->job.detail, sizeof(out->job.detail), "bad \xff utf-8"); /* from an agent */
    return 1;
}

static void post_restore(int port, const char *body, resp *r)
{
    env v = {.port = port};
    http(&v, "POST", "/v1/restores", TOKEN, body, strlen(body), "application/json", r);
}

/* A second API on the fixture's catalog, with the scripted restorer. */
static api *start_with_restorer(env *v, restorer *rs)
{
    pgs_error e = {0};
    api *a = NULL;
    api_opts o = {.url = "http://127.0.0.1:0",
                  .token = TOKEN,
                  .restorer = rs,
                  .storage = v->st,
                  .catalog_path = v->cpath};
    if (api_start(&o, &a, &e) != 0)
        fail_msg("api_start: %s", e.msg);
    return a;
}

static void test_api_post_restore_without_restorer_409(void **state)
{
    env *v = *state;
    resp r;
    char body[256];
    snprintf(body, sizeof(body), "{\"source\": \"%s\", \"target\": \"stage-db1/appdb\"}",
             v->complete_id);
    post_restore(v->port, body, &r);
    assert_error(&r, 409, "not_connected");
    assert_non_null(strstr(jstr(r.json, "error"), "runs no restores"));
    resp_free(&r);
    /* the body is checked first */
    post_restore(v->port, "{\"source\": \"x\"}", &r);
    assert_error(&r, 400, "bad_request");
    resp_free(&r);
}

static void test_api_post_restore_refuses_malformed_bodies(void **state)
{
    env *v = *state;
    static const char *bad[] = {
        "",
        "[]",
        "{\"target\": \"stage-db1/appdb\"}",
        "{\"source\": \"prod-db1/appdb@latest\"}",
        "{\"source\": \"prod-db1/appdb@latest\", \"target\": \"stage-db1/appdb\", \"x\": 1}",
        "{\"source\": \"prod-db1/appdb\", \"target\": \"stage-db1/appdb\"}",
        "{\"source\": \"prod-db1/appdb@latest\", \"target\": \"stage-db1\"}",
        "{\"source\": \"prod-db1/appdb@latest\", \"target\": \"stage-db1/appdb\", \"jobs\": 0}",
        "{\"source\": \"prod-db1/appdb@latest\", \"target\": \"stage-db1/appdb\", \"keep_old\": 1}",
        "{\"source\": \"prod-db1/appdb@latest\", \"target\": \"stage-db1/appdb\"} {}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        resp r;
        post_restore(v->port, bad[i], &r);
        if (r.status != 400)
            fail_msg("body %zu: expected 400, got %ld", i, r.status);
        assert_error(&r, 400, "bad_request");
        resp_free(&r);
    }
    resp r;
    const char *ok = "{\"source\": \"prod-db1/appdb@latest\", \"target\": \"stage-db1/appdb\"}";
    http(v, "POST", "/v1/restores", TOKEN, ok, strlen(ok), "text/plain", &r);
    assert_error(&r, 415, "unsupported_media_type");
    resp_free(&r);
    http(v, "POST", "/v1/restores?x=1", TOKEN, ok, strlen(ok), "application/json", &r);
    assert_error(&r, 400, "bad_request");
    resp_free(&r);
    http(v, "DELETE", "/v1/restores", TOKEN, NULL, 0, NULL, &r);
    assert_error(&r, 405, "method_not_allowed");
    assert_string_equal(r.allow, "GET, HEAD, POST");
    resp_free(&r);
}

static void test_api_post_restore_maps_restorer_codes(void **state)
{
    env *v = *state;
    restorer rs;
    memset(&rs, 0, sizeof(rs));
    api *a = start_with_restorer(v, &rs);
    int port = api_port(a);
    resp r;

    /* accepted: 202 with the id and the queued restore; the restorer got the decoded request */
    const char *body = "{\"source\": \"prod-db1/appdb\", \"fresh\": true,"
                       " \"target\": \"stage-db1/appdb\", \"profile\": \"app-anonymize\","
                       " \"safety_backup\": true, \"jobs\": 4, \"tables\": [\"public.users\"]}";
    post_restore(port, body, &r);
    assert_int_equal(r.status, 202);
    const char *id = jstr(r.json, "id");
    assert_non_null(id);
    assert_true(catalog_id_valid(id));
    json_t *ro = json_object_get(r.json, "restore");
    assert_string_equal(jstr(ro, "id"), id);
    assert_string_equal(jstr(ro, "state"), "queued");
    assert_string_equal(jstr(ro, "kind"), "sync");
    assert_string_equal(jstr(ro, "requested_by"), "api");
    assert_string_equal(jstr(ro, "target_agent"), "stage-db1");
    assert_string_equal(jstr(ro, "profile"), "app-anonymize");
    assert_true(json_is_object(json_object_get(ro, "options")));
    assert_true(json_is_null(json_object_get(ro, "report")));
    assert_int_equal(rs.calls, 1);
    assert_string_equal(rs.requested_by, "api");
    assert_string_equal(rs.last.source, "prod-db1/appdb");
    assert_true(rs.last.fresh);
    assert_true(rs.last.safety_backup);
    assert_false(rs.last.keep_old);
    assert_int_equal(rs.last.jobs, 4);
    assert_int_equal(rs.last.ntables, 1);
    assert_string_equal(rs.last.tables[0], "public.users");
    resp_free(&r);

    /* refusals keep the restorer's message and map its code */
    static const struct {
        int rc;
        long status;
        const char *code;
    } maps[] = {
        {PGS_EINVAL, 400, "bad_request"},  {PGS_ENOTFOUND, 404, "not_found"},
        {PGS_EORDER, 409, "not_complete"}, {PGS_EDENIED, 403, "denied"},
        {PGS_ELIMIT, 429, "busy"},         {PGS_EIO, 500, "internal"},
    };
    for (size_t i = 0; i < sizeof(maps) / sizeof(maps[0]); i++) {
        rs.rc = maps[i].rc;
        post_restore(
            port, "{\"source\": \"prod-db1/appdb@latest\", \"target\": \"stage-db1/appdb\"}", &r);
        if (r.status != maps[i].status)
            fail_msg("code %d: expected %ld, got %ld", maps[i].rc, maps[i].status, r.status);
        assert_error(&r, maps[i].status, maps[i].code);
        assert_non_null(strstr(jstr(r.json, "error"), "scripted refusal"));
        resp_free(&r);
    }
    assert_int_equal(rs.calls, 7);
    /* a malformed body never reaches the restorer */
    post_restore(port, "{\"source\": \"prod-db1/appdb@latest\"}", &r);
    assert_error(&r, 400, "bad_request");
    resp_free(&r);
    assert_int_equal(rs.calls, 7);
    api_stop(a);
}

static void test_api_restores_list_and_show(void **state)
{
    env *v = *state;
    pgs_error e = {0};
    char ids[4][CATALOG_ID_SIZE], path[160];
    restorer rs;
    memset(&rs, 0, sizeof(rs));
    /* into prod-db1: earlier tests queued restores into stage-db1 through the API */
    static const char *const targets[4] = {"appdb", "billing", "appdb", "appdb"};
    for (int i = 0; i < 4; i++) {
        catalog_restore_req req = {.kind = i == 3 ? "sync" : "restore",
                                   .requested_by = "alice",
                                   .source = v->complete_id,
                                   .source_backup_id = v->complete_id,
                                   .target_agent = "prod-db1",
                                   .target_database = targets[i],
                                   .target_environment = i == 2 ? "qa" : "staging"};
        assert_int_equal(catalog_restore_new(v->cat, &req, ids[i], &e), 0);
    }
    assert_int_equal(catalog_restore_start(v->cat, ids[0], "restore", &e), 0);
    assert_int_equal(catalog_restore_finish(v->cat, ids[0], 1, NULL, NULL,
                                            "{\"tables\": [{\"schema\": \"public\", \"name\": "
                                            "\"users\", \"rows\": 7}]}",
                                            &e),
                     0);
    assert_int_equal(catalog_restore_finish(v->cat, ids[1], 0, "dispatch", "agent gone", NULL, &e),
                     0);
    assert_int_equal(catalog_restore_start(v->cat, ids[3], "backup", &e), 0);
    snprintf(rs.live_id, sizeof(rs.live_id), "%s", ids[3]);
    api *a = start_with_restorer(v, &rs);
    env w = {.port = api_port(a)};
    resp r;

    get(&w, "/v1/restores?agent=prod-db1", &r);
    assert_int_equal(r.status, 200);
    json_t *list = json_object_get(r.json, "restores");
    assert_int_equal(json_array_size(list), 4);
    for (int i = 0; i < 4; i++) /* newest first */
        assert_string_equal(jstr(json_array_get(list, (size_t)i), "id"), ids[3 - i]);
    assert_true(json_is_false(json_object_get(r.json, "more")));
    resp_free(&r);
    get(&w, "/v1/restores?agent=prod-db1&database=billing", &r);
    list = json_object_get(r.json, "restores");
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(jstr(json_array_get(list, 0), "state"), "failed");
    assert_string_equal(jstr(json_array_get(list, 0), "step"), "dispatch");
    assert_string_equal(jstr(json_array_get(list, 0), "error"), "agent gone");
    resp_free(&r);
    get(&w, "/v1/restores?environment=qa", &r);
    list = json_object_get(r.json, "restores");
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(jstr(json_array_get(list, 0), "id"), ids[2]);
    resp_free(&r);
    get(&w, "/v1/restores?state=complete&agent=prod-db1", &r);
    list = json_object_get(r.json, "restores");
    assert_int_equal(json_array_size(list), 1);
    json_t *rep = json_object_get(json_array_get(list, 0), "report");
    assert_int_equal(json_integer_value(json_object_get(
                         json_array_get(json_object_get(rep, "tables"), 0), "rows")),
                     7);
    resp_free(&r);
    get(&w, "/v1/restores?agent=prod-db1&limit=2", &r);
    assert_int_equal(json_array_size(json_object_get(r.json, "restores")), 2);
    assert_true(json_is_true(json_object_get(r.json, "more")));
    resp_free(&r);
    static const char *bad[] = {"/v1/restores?limit=0", "/v1/restores?agent=../x",
                                "/v1/restores?state=done", "/v1/restores?colour=red"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        get(&w, bad[i], &r);
        assert_error(&r, 400, "bad_request");
        resp_free(&r);
    }

    /* one restore; progress only while its thread runs */
    snprintf(path, sizeof(path), "/v1/restores/%s", ids[3]);
    get(&w, path, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.json, "state"), "running");
    assert_string_equal(jstr(r.json, "kind"), "sync");
    json_t *p = json_object_get(r.json, "progress");
    assert_true(json_is_object(p));
    assert_string_equal(jstr(p, "step"), "restore");
    assert_string_equal(jstr(p, "agent_step"), "pg_restore");
    assert_true(json_is_null(json_object_get(p, "detail"))); /* not UTF-8: not passed on */
    assert_int_equal(json_integer_value(json_object_get(p, "bytes")), 1234);
    assert_string_equal(jstr(p, "phase"), "restoring");
    resp_free(&r);
    snprintf(path, sizeof(path), "/v1/restores/%s", ids[0]);
    get(&w, path, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(jstr(r.json, "state"), "complete");
    assert_string_equal(jstr(r.json, "step"), "done");
    assert_null(json_object_get(r.json, "progress"));
    assert_true(json_is_object(json_object_get(r.json, "report")));
    resp_free(&r);
    /* the first API has no restorer: the catalog only */
    snprintf(path, sizeof(path), "/v1/restores/%s", ids[3]);
    get(v, path, &r);
    assert_int_equal(r.status, 200);
    assert_null(json_object_get(r.json, "progress"));
    resp_free(&r);

    get(&w, "/v1/restores/20260101T000000Z-00000000", &r);
    assert_error(&r, 404, "not_found");
    resp_free(&r);
    get(&w, "/v1/restores/not-an-id", &r);
    assert_error(&r, 404, "not_found");
    resp_free(&r);
    snprintf(path, sizeof(path), "/v1/restores/%s/report", ids[0]);
    get(&w, path, &r);
    assert_error(&r, 404, "not_found");
    resp_free(&r);
    snprintf(path, sizeof(path), "/v1/restores/%s?x=1", ids[0]);
    get(&w, path, &r);
    assert_error(&r, 400, "bad_request");
    resp_free(&r);
    snprintf(path, sizeof(path), "/v1/restores/%s", ids[0]);
    http(&w, "POST", path, TOKEN, "{}", 2, "application/json", &r);
    assert_error(&r, 405, "method_not_allowed");
    resp_free(&r);
    api_stop(a);
}

static void test_api_restore_body_parse(void **state)
{
    (void)state;
    restore_request q;
    pgs_error e = {0};
    const char *full =
        "{\"source\": \"20261121T160529Z-0a1b2c3d\", \"target\": \"stage-db1/app.db\","
        " \"profile\": \"app-anonymize\", \"overwrite_prod\": true,"
        " \"safety_backup\": true, \"keep_old\": true, \"schema_only\": false,"
        " \"data_only\": true, \"no_owner\": true, \"role\": \"app_owner\","
        " \"jobs\": 64, \"schemas\": [\"public\", \"sch\u00e9ma\"],"
        " \"tables\": [\"users\"], \"fresh\": false}";
    assert_int_equal(api_restore_body_parse(full, strlen(full), &q, &e), 0);
    assert_string_equal(q.source, "20261121T160529Z-0a1b2c3d");
    assert_false(q.fresh);
    assert_string_equal(q.target_agent, "stage-db1");
    assert_string_equal(q.target_database, "app.db");
    assert_string_equal(q.profile, "app-anonymize");
    assert_true(q.overwrite_prod && q.safety_backup && q.keep_old && q.data_only && q.no_owner);
    assert_false(q.schema_only);
    assert_string_equal(q.role, "app_owner");
    assert_int_equal(q.jobs, 64);
    assert_int_equal(q.nschemas, 2);
    assert_string_equal(q.schemas[1], "sch\u00e9ma");
    assert_int_equal(q.ntables, 1);
    assert_string_equal(q.tables[0], "users");

    const char *min = "{\"source\": \"prod-db1/appdb@latest\", \"target\": \"s/d\"}";
    assert_int_equal(api_restore_body_parse(min, strlen(min), &q, &e), 0);
    assert_string_equal(q.source, "prod-db1/appdb@latest");
    assert_int_equal(q.jobs, 0);
    assert_string_equal(q.profile, "");
    assert_string_equal(q.role, "");
    assert_int_equal(q.nschemas + q.ntables, 0);
    assert_false(q.fresh || q.overwrite_prod || q.safety_backup || q.keep_old || q.schema_only ||
                 q.data_only || q.no_owner);
    const char *sync = "{\"source\": \"prod-db1/appdb\", \"fresh\": true, \"target\": \"s/d\"}";
    assert_int_equal(api_restore_body_parse(sync, strlen(sync), &q, &e), 0);
    assert_true(q.fresh);
    assert_string_equal(q.source, "prod-db1/appdb");

    char many[8192], big[1024];
    size_t n = (size_t)snprintf(many, sizeof(many),
                                "{\"source\": \"a/b@latest\", \"target\": "
                                "\"s/d\", \"tables\": [");
    for (int i = 0; i <= RESTORE_PATTERNS_MAX; i++)
        n += (size_t)snprintf(many + n, sizeof(many) - n, "%s\"t%d\"", i ? ", " : "", i);
    snprintf(many + n, sizeof(many) - n, "]}");
    char longpat[200];
    memset(longpat, 'p', 128);
    longpat[128] = '\0';
    snprintf(big, sizeof(big),
             "{\"source\": \"a/b@latest\", \"target\": \"s/d\", \"schemas\": [\"%s\"]}", longpat);
    char longsrc[300];
    memset(longpat, 's', CATALOG_SOURCE_MAX + 1);
    longpat[CATALOG_SOURCE_MAX + 1] = '\0';
    snprintf(longsrc, sizeof(longsrc), "{\"source\": \"%s\", \"target\": \"s/d\"}", longpat);
    static const struct {
        const char *body;
        int code;
        const char *msg;
    } bad[] = {
        {"{\"source\": \"a/b@latest\"}", PGS_EFORMAT, "\"target\""},
        {"{\"target\": \"s/d\"}", PGS_EFORMAT, "\"source\""},
        {"{\"source\": \"a/b@latest\", \"target\": \"s/d\", \"when\": 1}", PGS_EFORMAT,
         "unexpected field \"when\""},
        {"{\"source\": \"a/b@latest\", \"source\": \"a/b@latest\", \"target\": \"s/d\"}",
         PGS_EFORMAT, NULL},
        /* sources */
        {"{\"source\": \"a/b\", \"target\": \"s/d\"}", PGS_EINVAL, "only with \"fresh\": true"},
        {"{\"source\": \"a/b@latest\", \"fresh\": true, \"target\": \"s/d\"}", PGS_EINVAL,
         "\"fresh\": true"},
        {"{\"source\": \"20261121T160529Z-0a1b2c3d\", \"fresh\": true, \"target\": \"s/d\"}",
         PGS_EINVAL, "\"fresh\": true"},
        {"{\"source\": \"20261121T160529Z-0A1B2C3D\", \"target\": \"s/d\"}", PGS_EINVAL,
         "\"source\""},
        {"{\"source\": \"../etc@latest\", \"target\": \"s/d\"}", PGS_EINVAL, "\"source\""},
        {"{\"source\": \"a/b/c@latest\", \"target\": \"s/d\"}", PGS_EINVAL, "\"source\""},
        {"{\"source\": \"a/@latest\", \"target\": \"s/d\"}", PGS_EINVAL, "\"source\""},
        {"{\"source\": \"@latest\", \"target\": \"s/d\"}", PGS_EINVAL, "\"source\""},
        {"{\"source\": \"\", \"target\": \"s/d\"}", PGS_EINVAL, "\"source\""},
        {"{\"source\": 7, \"target\": \"s/d\"}", PGS_EFORMAT, "\"source\""},
        /* targets */
        {"{\"source\": \"a/b@latest\", \"target\": \"s\"}", PGS_EINVAL, "\"target\""},
        {"{\"source\": \"a/b@latest\", \"target\": \"s/d/e\"}", PGS_EINVAL, "\"target\""},
        {"{\"source\": \"a/b@latest\", \"target\": \"/d\"}", PGS_EINVAL, "\"target\""},
        {"{\"source\": \"a/b@latest\", \"target\": \"s/.d\"}", PGS_EINVAL, "\"target\""},
        {"{\"source\": \"a/b@latest\", \"target\": \"s/d@latest\"}", PGS_EINVAL, "\"target\""},
        {"{\"source\": \"a/b@latest\", \"target\": [\"s\", \"d\"]}", PGS_EFORMAT, "\"target\""},
        /* the rest */
        {"{\"source\": \"a/b@latest\", \"target\": \"s/d\", \"profile\": \"../p\"}", PGS_EINVAL,
         "\"profile\""},
        {"{\"source\": \"a/b@latest\", \"target\": \"s/d\", \"profile\": null}", PGS_EFORMAT,
         "\"profile\""},
        {"{\"source\": \"a/b@latest\", \"target\": \"s/d\", \"role\": \"a b\"}", PGS_EINVAL,
         "\"role\""},
        {"{\"source\": \"a/b@latest\", \"target\": \"s/d\", \"keep_old\": \"yes\"}", PGS_EFORMAT,
         "\"keep_old\""},
        {"{\"source\": \"a/b@latest\", \"target\": \"s/d\", \"fresh\": 1}", PGS_EFORMAT,
         "\"fresh\""},
        {"{\"source\": \"a/b@latest\", \"target\": \"s/d\", \"schema_only\": true, \"data_only\": "
         "true}",
         PGS_EINVAL, "exclude each other"},
        {"{\"source\": \"a/b@latest\", \"target\": \"s/d\", \"jobs\": 0}", PGS_ELIMIT, "\"jobs\""},
        {"{\"source\": \"a/b@latest\", \"target\": \"s/d\", \"jobs\": 65}", PGS_ELIMIT, "\"jobs\""},
        {"{\"source\": \"a/b@latest\", \"target\": \"s/d\", \"jobs\": -1}", PGS_ELIMIT, "\"jobs\""},
        {"{\"source\": \"a/b@latest\", \"target\": \"s/d\", \"jobs\": 2.0}", PGS_EFORMAT,
         "\"jobs\""},
        {"{\"source\": \"a/b@latest\", \"target\": \"s/d\", \"tables\": \"users\"}", PGS_EFORMAT,
         "\"tables\""},
        {"{\"source\": \"a/b@latest\", \"target\": \"s/d\", \"tables\": [1]}", PGS_EFORMAT,
         "\"tables\""},
        {"{\"source\": \"a/b@latest\", \"target\": \"s/d\", \"tables\": [\"\"]}", PGS_EINVAL,
         "empty"},
        {"{\"source\": \"a/b@latest\", \"target\": \"s/d\", \"tables\": [\"a\\nb\"]}", PGS_EINVAL,
         "control character"},
        {"{\"source\": \"a/b@latest\", \"target\": \"s/d\", \"schemas\": [\"x\\u009b\"]}",
         PGS_EINVAL, "control character"},
        {"{\"source\": \"a/b@latest\", \"target\": \"s/d\", \"schemas\": [\"x\\u0000\"]}",
         PGS_EFORMAT, NULL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&e, 0, sizeof(e));
        int rc = api_restore_body_parse(bad[i].body, strlen(bad[i].body), &q, &e);
        if (rc != bad[i].code || e.code != rc ||
            (bad[i].msg != NULL && strstr(e.msg, bad[i].msg) == NULL))
            fail_msg("body #%zu: rc %d, message \"%s\"", i, rc, e.msg);
        assert_string_equal(q.source, ""); /* zeroed on failure */
    }
    TU_ASSERT_ERR(api_restore_body_parse(many, strlen(many), &q, &e), e, PGS_ELIMIT, "tables");
    TU_ASSERT_ERR(api_restore_body_parse(big, strlen(big), &q, &e), e, PGS_ELIMIT, "127 bytes");
    TU_ASSERT_ERR(api_restore_body_parse(longsrc, strlen(longsrc), &q, &e), e, PGS_ELIMIT,
                  "source");
    TU_ASSERT_ERR(api_restore_body_parse("", 0, &q, &e), e, PGS_EFORMAT, "empty");
    TU_ASSERT_ERR(api_restore_body_parse("{}", API_BODY_MAX + 1, &q, &e), e, PGS_ELIMIT, NULL);
    const char nul[] = "{\"source\": \"a/b@latest\", \"target\": \"s/d\"}\0{";
    TU_ASSERT_ERR(api_restore_body_parse(nul, sizeof(nul) - 1, &q, &e), e, PGS_EFORMAT, NULL);
    /* the hostile value is not echoed */
    const char *echo = "{\"source\": \"<script>@latest\", \"target\": \"s/d\"}";
    assert_int_equal(api_restore_body_parse(echo, strlen(echo), &q, &e), PGS_EINVAL);
    assert_null(strstr(e.msg, "<script>"));
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
        cmocka_unit_test(test_api_post_restore_without_restorer_409),
        cmocka_unit_test(test_api_post_restore_refuses_malformed_bodies),
        cmocka_unit_test(test_api_post_restore_maps_restorer_codes),
        cmocka_unit_test(test_api_restores_list_and_show),
        cmocka_unit_test(test_api_restore_body_parse),
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
