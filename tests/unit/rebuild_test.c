/*
 * Tests of catalog rebuild (coordinator/rebuild.c): backups made through the real ingest path
 * (coordinator/ingest.c) into the local-directory storage backend, the catalog deleted, a fresh
 * one rebuilt from storage, and the two listings compared field by field -- with the sidecars
 * ingest writes today, and with sidecars that also carry the catalog's own fields. Then what must
 * never be imported: objects without sidecars, sidecars without objects, sidecars that are not
 * JSON, too large, of another version, with wrong types, or describing another object; and the
 * sidecar decoder itself.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/fsutil.h"
#include "common/log.h"
#include "coordinator/ingest.h"
#include "coordinator/prune.h"
#include "coordinator/rebuild.h"
#include "proto/manifest.h"
#include "tests/unit/testutil.h"

/* 2026-11-21T16:05:29Z: whole seconds, so that an id says its created_at exactly. */
#define T0 (1795277129LL * 1000)

typedef struct fixture {
    char dir[256];
    storage *st;
    catalog *cat; /* the original */
    catalog *fresh;
    int64_t now;
} fixture;

static int64_t fixture_clock(void *arg)
{
    return ((fixture *)arg)->now;
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    char path[300];
    pgs_error e = {0};
    snprintf(f->dir, sizeof(f->dir), "/tmp/pgship-rebuild-test-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(path, sizeof(path), "%s/store", f->dir);
    storage_config sc = {.type = "fs", .path = path, .prefix = "pgship"};
    if (storage_open(&f->st, &sc, &e) != 0)
        return -1;
    snprintf(path, sizeof(path), "%s/catalog.db", f->dir);
    if (catalog_open(path, &f->cat, &e) != 0)
        return -1;
    snprintf(path, sizeof(path), "%s/rebuilt.db", f->dir);
    if (catalog_open(path, &f->fresh, &e) != 0)
        return -1;
    f->now = T0;
    catalog_set_clock(f->cat, fixture_clock, f);
    if (catalog_agent_seen(f->cat, "a1", "0123456789abcdef", NULL, "t", 1, &e) != 0 ||
        catalog_agent_seen(f->cat, "a2", NULL, NULL, "t", 1, &e) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    catalog_close(f->cat);
    catalog_close(f->fresh);
    storage_close(f->st);
    int rc = fs_rm_rf(f->dir);
    free(f);
    return rc;
}

/* A manifest as an agent sends it. */
static json_t *a_manifest(const char *db)
{
    manifest m;
    memset(&m, 0, sizeof(m));
    strcpy(m.format, "custom");
    snprintf(m.database, sizeof(m.database), "%s", db);
    strcpy(m.server_version, "15.20");
    m.server_version_num = 150020;
    strcpy(m.pg_dump_version, "15.20");
    strcpy(m.created_by, "pgship-agent test");
    strcpy(m.host, "db1");
    strcpy(m.started_at, "2026-11-21T16:05:29Z");
    m.nrecipients = 2;
    strcpy(m.recipients[0].key_id, "175f6e15cc3eedc7");
    strcpy(m.recipients[0].name, "ops");
    strcpy(m.recipients[1].key_id, "0011223344556677");
    strcpy(m.recipients[1].name, "dr");
    char *text = NULL;
    size_t len = 0;
    pgs_error e = {0};
    assert_int_equal(manifest_encode(&m, &text, &len, &e), 0);
    json_t *j = json_loadb(text, len, 0, NULL);
    free(text);
    return j;
}

/* One backup through ingest, as the coordinator runs it; `seconds` after T0. */
static void ingest_one(fixture *f, const char *agent, const char *db, const char *env,
                       const char *label, const char *source, const char *scheduled, int seconds,
                       char id[CATALOG_ID_SIZE])
{
    pgs_error e = {0};
    f->now = T0 + seconds * 1000LL;
    catalog_backup_req req = {.agent = agent,
                              .database = db,
                              .environment = env,
                              .label = label,
                              .requested_by = "alice",
                              .source_backup_id = source,
                              .scheduled = scheduled};
    if (catalog_backup_new(f->cat, &req, id, &e) != 0)
        fail_msg("catalog_backup_new: %s", e.msg);
    ingest *g = NULL;
    ingest_backup b = {.id = id, .agent = agent, .database = db, .environment = env};
    f->now += 250; /* started a little later, in the same second */
    if (ingest_begin(&g, f->st, f->cat, &b, &e) != 0)
        fail_msg("ingest_begin: %s", e.msg);
    char data[200];
    int n = snprintf(data, sizeof(data), "the archive of backup %s of %s/%s", id, agent, db);
    uint8_t sha[SHA256_LEN];
    sha256_ctx *h = sha256_new();
    sha256_update(h, data, (size_t)n);
    sha256_final(h, sha);
    sha256_free(h);
    json_t *man = a_manifest(db);
    f->now += 500;
    if (ingest_data(g, 0, data, (size_t)n, &e) != 0 ||
        ingest_end(g, 1, (uint64_t)n, sha, man, NULL, &e) != 0)
        fail_msg("ingest: %s", e.msg);
    json_decref(man);
    ingest_free(g);
}

/* Every complete backup of cat, as the API lists it (newest first). */
static int list_cb(void *arg, const catalog_backup *b)
{
    json_array_append_new(arg, catalog_backup_to_json(b));
    return 0;
}

static json_t *listing(catalog *cat)
{
    json_t *arr = json_array();
    pgs_error e = {0};
    catalog_filter fl = {.state = CATALOG_COMPLETE};
    if (catalog_backup_list(cat, &fl, list_cb, arr, &e) != 0)
        fail_msg("catalog_backup_list: %s", e.msg);
    return arr;
}

/* Compares the two listings backup by backup and field by field; fields named in `lost` may
 * differ (and are returned in *differed as a bit per entry), every other one must be equal. */
static void compare(json_t *orig, json_t *rebuilt, const char *const *lost, unsigned *differed)
{
    *differed = 0;
    assert_int_equal(json_array_size(orig), json_array_size(rebuilt));
    for (size_t i = 0; i < json_array_size(orig); i++) {
        json_t *a = json_array_get(orig, i), *b = json_array_get(rebuilt, i);
        assert_int_equal(json_object_size(a), json_object_size(b));
        const char *key;
        json_t *va;
        json_object_foreach(a, key, va)
        {
            json_t *vb = json_object_get(b, key);
            if (vb == NULL)
                fail_msg("backup %zu: field %s missing after the rebuild", i, key);
            if (json_equal(va, vb))
                continue;
            int allowed = 0;
            for (unsigned k = 0; lost[k] != NULL; k++)
                if (strcmp(lost[k], key) == 0) {
                    allowed = 1;
                    *differed |= 1u << k;
                }
            if (!allowed) {
                char *sa = json_dumps(va, JSON_ENCODE_ANY), *sb = json_dumps(vb, JSON_ENCODE_ANY);
                fail_msg("backup %s: field %s is %s, rebuilt %s",
                         json_string_value(json_object_get(a, "id")), key, sa, sb);
            }
        }
    }
}

static void rebuild(fixture *f, catalog *into, rebuild_counts *c)
{
    pgs_error e = {0};
    if (rebuild_catalog(f->st, "", into, c, &e) != 0)
        fail_msg("rebuild_catalog: %s", e.msg);
}

static int count_agent_cb(void *arg, const catalog_agent *a)
{
    (void)a;
    (*(int *)arg)++;
    return 0;
}

/* The sidecars ingest writes: the catalog is rebuilt, and the only field that differs is
 * finished_at (the time the object was stored, the sidecar's stored_at). */
static void test_rebuild_from_ingested_backups(void **state)
{
    fixture *f = *state;
    char id[4][CATALOG_ID_SIZE], failed[CATALOG_ID_SIZE];
    pgs_error e = {0};
    ingest_one(f, "a1", "appdb", "prod", "pre-upgrade", NULL, "nightly", 0, id[0]);
    ingest_one(f, "a1", "appdb", "prod", NULL, NULL, NULL, 3600, id[1]);
    ingest_one(f, "a2", "other", "staging", NULL, NULL, NULL, 7200, id[2]);
    /* a failure: only the catalog knows it */
    f->now = T0 + 9000 * 1000LL;
    catalog_backup_req req = {.agent = "a1", .database = "appdb", .environment = "prod"};
    assert_int_equal(catalog_backup_new(f->cat, &req, failed, &e), 0);
    assert_int_equal(catalog_backup_fail(f->cat, failed, "pg_dump failed", &e), 0);

    rebuild_counts c;
    rebuild(f, f->fresh, &c);
    assert_int_equal(c.objects, 3);
    assert_int_equal(c.sidecars, 3);
    assert_int_equal(c.imported, 3);
    assert_int_equal(c.bad + c.orphan_objects + c.orphan_sidecars + c.ignored, 0);
    assert_int_equal(c.nproblems, 0);
    rebuild_counts_clear(&c);

    json_t *a = listing(f->cat), *b = listing(f->fresh);
    static const char *const lost[] = {"finished_at", NULL};
    unsigned differed;
    compare(a, b, lost, &differed);
    assert_int_equal(differed, 0x1); /* it did differ */
    /* label, requested_by and the rest came back from the sidecar */
    json_t *r0 = json_array_get(b, 2);
    assert_string_equal(json_string_value(json_object_get(r0, "id")), id[0]);
    assert_string_equal(json_string_value(json_object_get(r0, "label")), "pre-upgrade");
    assert_true(json_is_string(json_object_get(r0, "finished_at")));
    /* created_at comes from the id, exact to the second (here: exact) */
    assert_string_equal(json_string_value(json_object_get(r0, "created_at")),
                        "2026-11-21T16:05:29.000Z");
    json_decref(a);
    json_decref(b);
    catalog_backup bk;
    TU_ASSERT_ERR(catalog_backup_get(f->fresh, failed, &bk, &e), e, PGS_ENOTFOUND, failed);
    int n = 0;
    assert_int_equal(catalog_agents_list(f->fresh, count_agent_cb, &n, &e), 0);
    assert_int_equal(n, 2);
    assert_int_equal(catalog_latest_complete(f->fresh, "a1", "appdb", &bk, &e), 0);
    assert_string_equal(bk.id, id[1]);

    /* Run again: nothing new, nothing bad. */
    rebuild(f, f->fresh, &c);
    assert_int_equal(c.imported, 0);
    assert_int_equal(c.existing, 3);
    rebuild_counts_clear(&c);
}

static json_t *read_json(fixture *f, const char *key)
{
    tu_buf b = {0};
    pgs_error e = {0};
    if (storage_get(f->st, key, tu_buf_sink, &b, &e) != 0)
        fail_msg("storage_get %s: %s", key, e.msg);
    json_t *j = json_loadb((const char *)b.data, b.len, 0, NULL);
    tu_buf_free(&b);
    assert_non_null(j);
    return j;
}

static void put_json(fixture *f, const char *key, json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT);
    pgs_error e = {0};
    if (storage_put(f->st, key, text, strlen(text), &e) != 0)
        fail_msg("storage_put %s: %s", key, e.msg);
    free(text);
}

static void sidecar_key_of(const char *env, const char *agent, const char *db, const char *id,
                           char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s/%s/%s.manifest.json", env, agent, db, id);
}

/* What ingest should add to its sidecar (the catalog's row before completion): then everything
 * but finished_at survives, and finished_at is the time the object was stored. */
static void add_catalog_fields(fixture *f, const char *env, const char *agent, const char *db,
                               const char *id)
{
    char key[512];
    catalog_backup b;
    pgs_error e = {0};
    assert_int_equal(catalog_backup_get(f->cat, id, &b, &e), 0);
    sidecar_key_of(env, agent, db, id, key, sizeof(key));
    json_t *j = read_json(f, key);
    json_object_set_new(j, "created_at", json_string(b.created_at));
    json_object_set_new(j, "started_at", json_string(b.started_at));
    json_object_set_new(j, "label", json_string(b.label));
    json_object_set_new(j, "requested_by", json_string(b.requested_by));
    json_object_set_new(j, "scheduled", b.scheduled[0] ? json_string(b.scheduled) : json_null());
    json_object_set_new(j, "source_backup_id",
                        b.source_backup_id[0] ? json_string(b.source_backup_id) : json_null());
    put_json(f, key, j);
    json_decref(j);
}

static void test_rebuild_full_sidecars_are_identical(void **state)
{
    fixture *f = *state;
    char src[CATALOG_ID_SIZE], copy[CATALOG_ID_SIZE], other[CATALOG_ID_SIZE];
    pgs_error e = {0};
    ingest_one(f, "a1", "appdb", "prod", "weekly", NULL, "nightly", 0, src);
    /* a sanitized copy, in an environment whose directory sorts before the source's */
    ingest_one(f, "a1", "appdb", "dev", "sanitized", src, NULL, 60, copy);
    ingest_one(f, "a2", "other", "prod", "", NULL, NULL, 120, other);
    add_catalog_fields(f, "prod", "a1", "appdb", src);
    add_catalog_fields(f, "dev", "a1", "appdb", copy);
    add_catalog_fields(f, "prod", "a2", "other", other);

    rebuild_counts c;
    rebuild(f, f->fresh, &c);
    assert_int_equal(c.imported, 3);
    assert_int_equal(c.bad, 0);
    rebuild_counts_clear(&c);
    json_t *a = listing(f->cat), *b = listing(f->fresh);
    static const char *const lost[] = {"finished_at", NULL};
    unsigned differed;
    compare(a, b, lost, &differed);
    json_decref(a);
    json_decref(b);
    catalog_backup bk;
    assert_int_equal(catalog_backup_get(f->fresh, copy, &bk, &e), 0);
    assert_string_equal(bk.source_backup_id, src);
    assert_string_equal(bk.label, "sanitized");
    /* the copy is not the latest backup of its source database, and does not move it */
    assert_int_equal(catalog_latest_complete(f->fresh, "a1", "appdb", &bk, &e), 0);
    assert_string_equal(bk.id, src);
    assert_int_equal(catalog_backup_get(f->fresh, src, &bk, &e), 0);
    assert_string_equal(bk.scheduled, "nightly");
    assert_string_equal(bk.requested_by, "alice");
}

static int null_sink(void *arg, const void *buf, size_t len)
{
    (void)arg;
    (void)buf;
    (void)len;
    return 0;
}

/* Pins live in storage too (prune_pin's markers), so a rebuilt catalog keeps them. */
static void test_rebuild_keeps_pins(void **state)
{
    fixture *f = *state;
    char id[2][CATALOG_ID_SIZE], key[512];
    pgs_error e = {0};
    ingest_one(f, "a1", "appdb", "prod", NULL, NULL, NULL, 0, id[0]);
    ingest_one(f, "a1", "appdb", "prod", NULL, NULL, NULL, 60, id[1]);
    assert_int_equal(prune_pin(f->cat, f->st, id[0], 1, "alice", &e), 0);
    assert_int_equal(prune_pin(f->cat, f->st, id[1], 1, "alice", &e), 0);
    assert_int_equal(prune_pin(f->cat, f->st, id[1], 0, "alice", &e), 0); /* unpinned again */
    snprintf(key, sizeof(key), "prod/a1/appdb/%s.pin", id[1]);
    TU_ASSERT_ERR(storage_get(f->st, key, null_sink, NULL, &e), e, PGS_ENOTFOUND, "");
    snprintf(key, sizeof(key), "prod/a1/appdb/%s.pin", id[0]);
    assert_int_equal(storage_get(f->st, key, null_sink, NULL, &e), 0);
    /* a marker whose backup is gone, and an object with a marker but no sidecar */
    assert_int_equal(storage_put(f->st, "prod/a1/appdb/20261121T000000Z-00000000.pin", "{}", 2, &e),
                     0);
    assert_int_equal(storage_put(f->st, "prod/a1/appdb/20261121T000001Z-00000001.pgship", "x", 1, &e),
                     0);
    assert_int_equal(storage_put(f->st, "prod/a1/appdb/20261121T000001Z-00000001.pin", "{}", 2, &e),
                     0);
    TU_ASSERT_ERR(prune_pin(f->cat, f->st, "20261121T000000Z-00000000", 1, "x", &e), e,
                  PGS_ENOTFOUND, "");

    rebuild_counts c;
    rebuild(f, f->fresh, &c);
    assert_int_equal(c.imported, 2);
    assert_int_equal(c.pinned, 1);
    assert_int_equal(c.orphan_objects, 1); /* its pin marker is not taken for a sidecar */
    assert_int_equal(c.ignored, 2);        /* the two markers without a backup */
    rebuild_counts_clear(&c);
    catalog_backup b;
    assert_int_equal(catalog_backup_get(f->fresh, id[0], &b, &e), 0);
    assert_int_equal(b.pinned, 1);
    assert_int_equal(catalog_backup_get(f->fresh, id[1], &b, &e), 0);
    assert_int_equal(b.pinned, 0);
}

static int has_problem(const rebuild_counts *c, const char *key, const char *why)
{
    for (size_t i = 0; i < c->nproblems; i++)
        if (strcmp(c->problems[i].key, key) == 0 && strstr(c->problems[i].why, why) != NULL)
            return 1;
    return 0;
}

/* A hostile sidecar next to an object of the size it claims. */
static void put_pair(fixture *f, const char *env, const char *agent, const char *db, const char *id,
                     const void *side, size_t side_len, uint64_t object_len)
{
    char key[512];
    pgs_error e = {0};
    char *obj = calloc(1, object_len ? object_len : 1);
    snprintf(key, sizeof(key), "%s/%s/%s/%s.pgship", env, agent, db, id);
    assert_int_equal(storage_put(f->st, key, obj, object_len, &e), 0);
    free(obj);
    sidecar_key_of(env, agent, db, id, key, sizeof(key));
    assert_int_equal(storage_put(f->st, key, side, side_len, &e), 0);
}

/* A valid sidecar for id (agent a1, appdb, prod) of n bytes, to be broken by the caller. */
static json_t *valid_sidecar(const char *id, uint64_t n)
{
    char key[256];
    snprintf(key, sizeof(key), "prod/a1/appdb/%s.pgship", id);
    return json_pack(
        "{s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:o}", "pgship_sidecar", 1, "backup_id", id,
        "agent", "a1", "database", "appdb", "environment", "prod", "storage_key", key, "sha256",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "bytes", (json_int_t)n,
        "stored_at", "2026-11-21T16:05:29Z", "manifest", a_manifest("appdb"));
}

static void put_sidecar_json(fixture *f, const char *id, json_t *j, uint64_t object_len)
{
    char *text = json_dumps(j, JSON_COMPACT);
    put_pair(f, "prod", "a1", "appdb", id, text, strlen(text), object_len);
    free(text);
    json_decref(j);
}

static void test_rebuild_reports_what_it_cannot_import(void **state)
{
    fixture *f = *state;
    char good[3][CATALOG_ID_SIZE], key[512];
    pgs_error e = {0};
    ingest_one(f, "a1", "appdb", "prod", NULL, NULL, NULL, 0, good[0]);
    ingest_one(f, "a1", "appdb", "prod", NULL, NULL, NULL, 10, good[1]);
    ingest_one(f, "a1", "appdb", "prod", NULL, NULL, NULL, 20, good[2]);
    /* An object without its sidecar, a sidecar without its object. */
    sidecar_key_of("prod", "a1", "appdb", good[1], key, sizeof(key));
    assert_int_equal(storage_delete(f->st, key, &e), 0);
    snprintf(key, sizeof(key), "prod/a1/appdb/%s.pgship", good[2]);
    assert_int_equal(storage_delete(f->st, key, &e), 0);

    /* Hostile sidecars, each beside an object. */
#define ID(n) "20261122T00000" #n "Z-0000000" #n
    put_pair(f, "prod", "a1", "appdb", ID(1), "not json at all", 15, 10);
    char *big = malloc(REBUILD_SIDECAR_MAX + 1);
    memset(big, ' ', REBUILD_SIDECAR_MAX + 1);
    big[0] = '{';
    big[REBUILD_SIDECAR_MAX] = '}';
    put_pair(f, "prod", "a1", "appdb", ID(2), big, REBUILD_SIDECAR_MAX + 1, 10);
    free(big);
    json_t *j = valid_sidecar(ID(3), 10);
    json_object_set_new(j, "bytes", json_string("10"));
    put_sidecar_json(f, ID(3), j, 10);
    /* the sidecar of another backup, copied beside this object */
    j = valid_sidecar(ID(5), 10);
    put_sidecar_json(f, ID(4), j, 10);
    j = valid_sidecar(ID(6), 10);
    put_sidecar_json(f, ID(6), j, 11); /* the object is not the size the sidecar says */
    j = valid_sidecar(ID(7), 10);
    json_object_set_new(j, "pgship_sidecar", json_integer(2));
    put_sidecar_json(f, ID(7), j, 10);
    j = valid_sidecar(ID(8), 10);
    json_object_set_new(json_object_get(j, "manifest"), "recipients", json_array());
    put_sidecar_json(f, ID(8), j, 10);
    j = valid_sidecar(ID(9), 10);
    json_object_set_new(j, "source_backup_id", json_string("20200101T000000Z-00000000"));
    put_sidecar_json(f, ID(9), j, 10);
    /* a label the catalog refuses (a control character) */
    j = valid_sidecar("20261122T000010Z-00000010", 10);
    json_object_set_new(j, "label", json_string("bad\x01label"));
    put_sidecar_json(f, "20261122T000010Z-00000010", j, 10);
    /* Keys that are not pgship's: ignored. */
    assert_int_equal(storage_put(f->st, "README.txt", "hello", 5, &e), 0);
    assert_int_equal(storage_put(f->st, "prod/a1/appdb/notes.txt", "x", 1, &e), 0);
    assert_int_equal(
        storage_put(f->st, "prod/a1/appdb/20261399T000000Z-00000000.pgship", "x", 1, &e), 0);
    assert_int_equal(storage_put(f->st, "prod/a1/appdb/extra/x.pgship", "x", 1, &e), 0);

    rebuild_counts c;
    rebuild(f, f->fresh, &c);
    assert_int_equal(c.imported, 1);
    assert_int_equal(c.orphan_objects, 1);
    assert_int_equal(c.orphan_sidecars, 1);
    assert_int_equal(c.bad, 9);
    assert_int_equal(c.ignored, 4);
    assert_int_equal(c.nproblems, 11);
    snprintf(key, sizeof(key), "prod/a1/appdb/%s.pgship", good[1]);
    assert_true(has_problem(&c, key, "object without a sidecar"));
    sidecar_key_of("prod", "a1", "appdb", good[2], key, sizeof(key));
    assert_true(has_problem(&c, key, "sidecar without an object"));
    assert_true(has_problem(&c, "prod/a1/appdb/" ID(1) ".manifest.json", "not valid JSON"));
    assert_true(has_problem(&c, "prod/a1/appdb/" ID(2) ".manifest.json", "larger than"));
    assert_true(has_problem(&c, "prod/a1/appdb/" ID(3) ".manifest.json", "\"bytes\""));
    assert_true(has_problem(&c, "prod/a1/appdb/" ID(4) ".manifest.json", "another object"));
    assert_true(has_problem(&c, "prod/a1/appdb/" ID(6) ".manifest.json", "storage holds 11"));
    assert_true(has_problem(&c, "prod/a1/appdb/" ID(7) ".manifest.json", "version 2"));
    assert_true(has_problem(&c, "prod/a1/appdb/" ID(8) ".manifest.json", "recipients"));
    assert_true(has_problem(&c, "prod/a1/appdb/" ID(9) ".manifest.json", "source backup"));
    assert_true(has_problem(&c, "prod/a1/appdb/20261122T000010Z-00000010.manifest.json",
                            "control character"));
    for (size_t i = 0; i < c.nproblems; i++)
        for (const char *p = c.problems[i].why; *p; p++)
            assert_true(*p >= 0x20 && *p <= 0x7e);
    rebuild_counts_clear(&c);
    catalog_backup b;
    assert_int_equal(catalog_backup_get(f->fresh, good[0], &b, &e), 0);
    TU_ASSERT_ERR(catalog_backup_get(f->fresh, ID(4), &b, &e), e, PGS_ENOTFOUND, "");
    TU_ASSERT_ERR(catalog_backup_get(f->fresh, ID(5), &b, &e), e, PGS_ENOTFOUND, "");
    TU_ASSERT_ERR(catalog_backup_get(f->fresh, ID(9), &b, &e), e, PGS_ENOTFOUND, "");
#undef ID
}

/* A listing prefix rebuilds one environment only. */
static void test_rebuild_under_a_prefix(void **state)
{
    fixture *f = *state;
    char a[CATALOG_ID_SIZE], b[CATALOG_ID_SIZE];
    pgs_error e = {0};
    ingest_one(f, "a1", "appdb", "prod", NULL, NULL, NULL, 0, a);
    ingest_one(f, "a2", "other", "staging", NULL, NULL, NULL, 1, b);
    rebuild_counts c;
    assert_int_equal(rebuild_catalog(f->st, "staging/", f->fresh, &c, &e), 0);
    assert_int_equal(c.imported, 1);
    assert_int_equal(c.objects, 1);
    rebuild_counts_clear(&c);
    catalog_backup bk;
    assert_int_equal(catalog_backup_get(f->fresh, b, &bk, &e), 0);
    TU_ASSERT_ERR(catalog_backup_get(f->fresh, a, &bk, &e), e, PGS_ENOTFOUND, a);
    TU_ASSERT_ERR(rebuild_catalog(f->st, "../", f->fresh, &c, &e), e, PGS_EINVAL, "");
    rebuild_counts_clear(&c);
    TU_ASSERT_ERR(rebuild_catalog(NULL, "", f->fresh, &c, &e), e, PGS_EINVAL, "storage");
}

/* The decoder on its own: what it accepts, and each way a sidecar can be wrong. */
static int decode_json(json_t *j, rebuild_sidecar *sc, pgs_error *e)
{
    char *text = json_dumps(j, JSON_COMPACT);
    int rc = rebuild_sidecar_decode(text, strlen(text), sc, e);
    free(text);
    json_decref(j);
    return rc;
}

static void test_rebuild_sidecar_decoder(void **state)
{
    (void)state;
    const char *id = "20261121T160529Z-0000abcd";
    rebuild_sidecar sc;
    pgs_error e = {0};
    json_t *j = valid_sidecar(id, 42);
    json_object_set_new(j, "label", json_null());        /* null: absent */
    json_object_set_new(j, "future_field", json_true()); /* unknown: ignored */
    json_object_set_new(j, "dump_bytes", json_integer(99));
    json_object_set_new(j, "created_at", json_string("2026-11-21T16:05:29.123Z"));
    assert_int_equal(decode_json(j, &sc, &e), 0);
    assert_string_equal(sc.backup_id, id);
    assert_int_equal(sc.bytes, 42);
    assert_int_equal(sc.dump_bytes, 99);
    assert_string_equal(sc.stored_at, "2026-11-21T16:05:29.000Z");
    assert_string_equal(sc.created_at, "2026-11-21T16:05:29.123Z");
    assert_string_equal(sc.label, "");
    assert_int_equal(sc.man.nrecipients, 2);
    rebuild_sidecar_clear(&sc);

    struct {
        const char *field;
        json_t *value; /* NULL: removed */
        int code;
        const char *msg;
    } cases[] = {
        {"pgship_sidecar", NULL, PGS_EFORMAT, "pgship_sidecar"},
        {"pgship_sidecar", json_integer(-1), PGS_ELIMIT, "pgship_sidecar"},
        {"backup_id", json_string("x"), PGS_EFORMAT, "backup_id"},
        {"backup_id", json_integer(5), PGS_EFORMAT, "backup_id"},
        {"agent", json_string("../etc"), PGS_EFORMAT, "agent"},
        {"agent", json_stringn("a1\0x", 4), PGS_EFORMAT, "NUL"},
        {"database", NULL, PGS_EFORMAT, "database"},
        {"environment", json_string("dev"), PGS_EFORMAT, "storage_key"},
        {"storage_key", json_string("prod/a1/appdb/other.pgship"), PGS_EFORMAT, "storage_key"},
        {"sha256", json_string("ABCDEF"), PGS_EFORMAT, "sha256"},
        {"sha256", json_string("0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef"),
         PGS_EFORMAT, "sha256"},
        {"bytes", json_integer(0), PGS_EFORMAT, "bytes"},
        {"bytes", json_integer(-5), PGS_ELIMIT, "bytes"},
        {"bytes", json_real(1.5), PGS_EFORMAT, "bytes"},
        {"stored_at", json_string("yesterday"), PGS_EFORMAT, "stored_at"},
        {"stored_at", json_string("2026-02-30T00:00:00Z"), PGS_EFORMAT, "stored_at"},
        {"created_at", json_string("2026-11-21T16:05:29Z"), PGS_EFORMAT, "created_at"},
        {"started_at", json_integer(1), PGS_EFORMAT, "started_at"},
        {"scheduled", json_string("a b"), PGS_EFORMAT, "scheduled"},
        {"source_backup_id", json_string("nope"), PGS_EFORMAT, "source_backup_id"},
        {"source_backup_id", json_string(id), PGS_EFORMAT, "itself"},
        {"dump_bytes", json_string("1"), PGS_EFORMAT, "dump_bytes"},
        {"label", json_integer(3), PGS_EFORMAT, "label"},
        {"manifest", json_string("{}"), PGS_EFORMAT, "manifest"},
        {"manifest", json_object(), PGS_EFORMAT, "manifest"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        j = valid_sidecar(id, 42);
        if (cases[i].value)
            json_object_set_new(j, cases[i].field, cases[i].value);
        else
            json_object_del(j, cases[i].field);
        memset(&e, 0, sizeof(e));
        int rc = decode_json(j, &sc, &e);
        if (rc != cases[i].code || strstr(e.msg, cases[i].msg) == NULL)
            fail_msg("case %zu (%s): got %d \"%s\", expected %d with \"%s\"", i, cases[i].field, rc,
                     e.msg, cases[i].code, cases[i].msg);
        assert_null(sc.man.options);
    }
    /* a label over its limit */
    char label[CATALOG_LABEL_MAX + 2];
    memset(label, 'l', sizeof(label) - 1);
    label[sizeof(label) - 1] = '\0';
    j = valid_sidecar(id, 42);
    json_object_set_new(j, "label", json_string(label));
    TU_ASSERT_ERR(decode_json(j, &sc, &e), e, PGS_ELIMIT, "label");
    /* not an object, duplicate keys, too large, empty */
    TU_ASSERT_ERR(rebuild_sidecar_decode("[1]", 3, &sc, &e), e, PGS_EFORMAT, "object");
    const char dup[] = "{\"pgship_sidecar\":1,\"pgship_sidecar\":1}";
    TU_ASSERT_ERR(rebuild_sidecar_decode(dup, sizeof(dup) - 1, &sc, &e), e, PGS_EFORMAT, "JSON");
    TU_ASSERT_ERR(rebuild_sidecar_decode("{}", REBUILD_SIDECAR_MAX + 1, &sc, &e), e, PGS_ELIMIT,
                  "larger");
    TU_ASSERT_ERR(rebuild_sidecar_decode("", 0, &sc, &e), e, PGS_EFORMAT, "JSON");
    j = valid_sidecar(id, 42);
    json_object_set_new(j, "pgship_sidecar", json_integer(2));
    TU_ASSERT_ERR(decode_json(j, &sc, &e), e, PGS_EVERSION, "version 2");
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    log_set_level(LOG_ERROR); /* rebuild logs every problem as a warning */
    const struct CMUnitTest tests[] = {
        T(test_rebuild_from_ingested_backups),          T(test_rebuild_full_sidecars_are_identical),
        T(test_rebuild_reports_what_it_cannot_import),  T(test_rebuild_under_a_prefix),
        cmocka_unit_test(test_rebuild_sidecar_decoder),
        T(test_rebuild_keeps_pins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
