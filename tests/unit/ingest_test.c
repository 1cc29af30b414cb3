/*
 * Tests of the coordinator's ingest core (coordinator/ingest.c) on a real local-directory storage
 * and a real catalog file: a complete backup is stored, described by a sidecar and complete in the
 * catalog; every way a stream can go wrong (a gap or a repeat in seq, a short stream, a digest that
 * does not match, a missing manifest, an abort) leaves no visible object and a failed row that says
 * why.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/fsutil.h"
#include "coordinator/ingest.h"
#include "proto/manifest.h"
#include "tests/unit/testutil.h"

typedef struct fixture {
    char dir[256];
    char store[300];
    storage *st;
    catalog *cat;
    char id[CATALOG_ID_SIZE];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/pgship-ingest-test-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->store, sizeof(f->store), "%s/store", f->dir);
    char cpath[300];
    snprintf(cpath, sizeof(cpath), "%s/catalog.db", f->dir);
    pgs_error e = {0};
    storage_config sc = {.type = "fs", .path = f->store, .prefix = "pgship"};
    if (storage_open(&f->st, &sc, &e) != 0 || catalog_open(cpath, &f->cat, &e) != 0 ||
        catalog_agent_seen(f->cat, "prod-db1", "0123456789abcdef", NULL, "test", 1, &e) != 0) {
        fprintf(stderr, "setup: %s\n", e.msg);
        return -1;
    }
    catalog_backup_req req = {.agent = "prod-db1", .database = "appdb", .environment = "prod",
                              .label = "", .requested_by = "test"};
    if (catalog_backup_new(f->cat, &req, f->id, &e) != 0) {
        fprintf(stderr, "setup: %s\n", e.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    catalog_close(f->cat);
    storage_close(f->st);
    int rc = fs_rm_rf(f->dir);
    free(f);
    return rc;
}

/* A manifest as an agent sends it. */
static json_t *a_manifest(void)
{
    manifest m;
    memset(&m, 0, sizeof(m));
    strcpy(m.format, "custom");
    strcpy(m.database, "appdb");
    strcpy(m.server_version, "15.20");
    m.server_version_num = 150020;
    strcpy(m.pg_dump_version, "15.20");
    strcpy(m.created_by, "pgship-agent test");
    strcpy(m.host, "db1");
    strcpy(m.started_at, "2026-11-21T16:05:29Z");
    m.nrecipients = 1;
    strcpy(m.recipients[0].key_id, "175f6e15cc3eedc7");
    strcpy(m.recipients[0].name, "ops");
    char *text = NULL;
    size_t len = 0;
    pgs_error e = {0};
    assert_int_equal(manifest_encode(&m, &text, &len, &e), 0);
    json_t *j = json_loadb(text, len, 0, NULL);
    free(text);
    return j;
}

/* Counts regular files under dir (recursively): what a reader of the store could see. */
static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' && (de->d_name[1] == '\0' || strcmp(de->d_name, "..") == 0))
            continue;
        char p[1024];
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        if (de->d_type == DT_DIR)
            n += count_files(p);
        else
            n++;
    }
    closedir(d);
    return n;
}

static ingest *begin(fixture *f)
{
    ingest *g = NULL;
    pgs_error e = {0};
    ingest_backup b = {.id = f->id, .agent = "prod-db1", .database = "appdb", .environment = "prod"};
    if (ingest_begin(&g, f->st, f->cat, &b, &e) != 0)
        fail_msg("ingest_begin: %s", e.msg);
    return g;
}

static void expect_failed(fixture *f, const char *reason_part)
{
    catalog_backup b;
    pgs_error e = {0};
    assert_int_equal(catalog_backup_get(f->cat, f->id, &b, &e), 0);
    assert_int_equal(b.state, CATALOG_FAILED);
    if (strstr(b.error, reason_part) == NULL)
        fail_msg("failure reason \"%s\" lacks \"%s\"", b.error, reason_part);
    assert_int_equal(count_files(f->store), 0);
}

static void digest(const void *data, size_t len, uint8_t out[SHA256_LEN])
{
    sha256_ctx *h = sha256_new();
    sha256_update(h, data, len);
    sha256_final(h, out);
    sha256_free(h);
}

static void test_ingest_complete_backup(void **state)
{
    fixture *f = *state;
    ingest *g = begin(f);
    static uint8_t data[3 * 100000];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 31 + 7);
    pgs_error e = {0};
    for (int i = 0; i < 3; i++)
        assert_int_equal(ingest_data(g, (uint64_t)i, data + i * 100000, 100000, &e), 0);
    uint8_t sha[SHA256_LEN];
    digest(data, sizeof(data), sha);
    json_t *man = a_manifest();
    const char *key = NULL;
    if (ingest_end(g, 3, sizeof(data), sha, man, &key, &e) != 0)
        fail_msg("ingest_end: %s", e.msg);
    char want[128];
    snprintf(want, sizeof(want), "prod/prod-db1/appdb/%s.pgship", f->id);
    assert_string_equal(key, want);

    /* The catalog says complete, with size, digest, key, versions and recipients. */
    catalog_backup b;
    assert_int_equal(catalog_backup_get(f->cat, f->id, &b, &e), 0);
    assert_int_equal(b.state, CATALOG_COMPLETE);
    assert_int_equal(b.bytes, sizeof(data));
    char hex[SHA256_HEX_LEN + 1];
    hex_encode(sha, SHA256_LEN, hex);
    assert_string_equal(b.sha256, hex);
    assert_string_equal(b.storage_key, want);
    assert_string_equal(b.server_version, "15.20");

    /* The object holds exactly the bytes; the sidecar names the backup and its digest. */
    tu_buf got = {0};
    assert_int_equal(storage_get(f->st, want, (storage_sink_fn)tu_buf_sink, &got, &e), 0);
    assert_int_equal(got.len, sizeof(data));
    assert_memory_equal(got.data, data, sizeof(data));
    tu_buf_free(&got);
    char side[128];
    snprintf(side, sizeof(side), "prod/prod-db1/appdb/%s.manifest.json", f->id);
    assert_int_equal(storage_get(f->st, side, (storage_sink_fn)tu_buf_sink, &got, &e), 0);
    json_t *j = json_loadb((const char *)got.data, got.len, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "backup_id")), f->id);
    assert_string_equal(json_string_value(json_object_get(j, "sha256")), hex);
    assert_non_null(json_object_get(json_object_get(j, "manifest"), "recipients"));
    json_decref(j);
    tu_buf_free(&got);
    assert_int_equal(count_files(f->store), 2);
    json_decref(man);
    ingest_free(g);
}

static void test_ingest_refuses_gaps_and_repeats(void **state)
{
    fixture *f = *state;
    ingest *g = begin(f);
    pgs_error e = {0};
    assert_int_equal(ingest_data(g, 0, "abc", 3, &e), 0);
    TU_ASSERT_ERR(ingest_data(g, 2, "def", 3, &e), e, PGS_EORDER, "seq 2 where 1 was expected");
    expect_failed(f, "seq 2 where 1");
    /* Nothing more is accepted for a failed stream. */
    TU_ASSERT_ERR(ingest_data(g, 1, "def", 3, &e), e, PGS_EINVAL, "already finished");
    ingest_free(g);
}

static void test_ingest_refuses_a_repeat(void **state)
{
    fixture *f = *state;
    ingest *g = begin(f);
    pgs_error e = {0};
    assert_int_equal(ingest_data(g, 0, "abc", 3, &e), 0);
    TU_ASSERT_ERR(ingest_data(g, 0, "abc", 3, &e), e, PGS_EORDER, "seq 0 where 1");
    expect_failed(f, "where 1 was expected");
    ingest_free(g);
}

static void test_ingest_end_must_match_what_arrived(void **state)
{
    fixture *f = *state;
    ingest *g = begin(f);
    pgs_error e = {0};
    assert_int_equal(ingest_data(g, 0, "hello", 5, &e), 0);
    uint8_t sha[SHA256_LEN];
    digest("hellx", 5, sha);
    json_t *man = a_manifest();
    TU_ASSERT_ERR(ingest_end(g, 1, 5, sha, man, NULL, &e), e, PGS_ESUM, "SHA-256 of what arrived");
    expect_failed(f, "SHA-256");
    json_decref(man);
    ingest_free(g);
}

static void test_ingest_end_counts(void **state)
{
    fixture *f = *state;
    ingest *g = begin(f);
    pgs_error e = {0};
    assert_int_equal(ingest_data(g, 0, "hello", 5, &e), 0);
    uint8_t sha[SHA256_LEN];
    digest("hello", 5, sha);
    json_t *man = a_manifest();
    /* The agent sent a chunk the coordinator never saw. */
    TU_ASSERT_ERR(ingest_end(g, 2, 10, sha, man, NULL, &e), e, PGS_ETRUNC, "2 chunks");
    expect_failed(f, "arrived");
    json_decref(man);
    ingest_free(g);
}

static void test_ingest_end_needs_a_valid_manifest(void **state)
{
    fixture *f = *state;
    ingest *g = begin(f);
    pgs_error e = {0};
    assert_int_equal(ingest_data(g, 0, "hello", 5, &e), 0);
    uint8_t sha[SHA256_LEN];
    digest("hello", 5, sha);
    json_t *bad = json_pack("{s:s}", "database", "appdb");
    TU_ASSERT_ERR(ingest_end(g, 1, 5, sha, bad, NULL, &e), e, PGS_EFORMAT, "manifest");
    expect_failed(f, "manifest");
    json_decref(bad);
    ingest_free(g);
}

static void test_ingest_abort_and_drop(void **state)
{
    fixture *f = *state;
    ingest *g = begin(f);
    pgs_error e = {0};
    static uint8_t big[200000];
    assert_int_equal(ingest_data(g, 0, big, sizeof(big), &e), 0);
    ingest_abort(g, "agent said: pg_dump failed");
    expect_failed(f, "pg_dump failed");
    ingest_free(g);
}

static void test_ingest_dropped_stream_fails(void **state)
{
    fixture *f = *state;
    ingest *g = begin(f);
    pgs_error e = {0};
    assert_int_equal(ingest_data(g, 0, "abc", 3, &e), 0);
    ingest_free(g); /* the connection went away */
    expect_failed(f, "dropped");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ingest_complete_backup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ingest_refuses_gaps_and_repeats, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ingest_refuses_a_repeat, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ingest_end_must_match_what_arrived, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ingest_end_counts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ingest_end_needs_a_valid_manifest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ingest_abort_and_drop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ingest_dropped_stream_fails, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
