/*
 * Tests of prune (coordinator/prune.c) on a real catalog file and the local-directory storage
 * backend in a fresh directory: what the plan keeps and deletes and why (policies per database,
 * failed and pinned backups, databases without a policy, backups in flight, derived copies and
 * their sources, restores and verifications in flight), the dry run's JSON, and what applying
 * does to storage and the catalog: objects then sidecars then rows, a crash between them finished
 * by the next prune, backups pinned since the plan skipped, one failed deletion reported while
 * the rest goes on.
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
#include "common/sha256.h"
#include "coordinator/prune.h"
#include "tests/unit/testutil.h"

/* 2026-11-21T16:05:29Z */
#define T0 (1795277129LL * 1000)
#define DAY (86400LL * 1000)

typedef struct fixture {
    char dir[256];
    storage *st;
    catalog *cat;
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
    snprintf(f->dir, sizeof(f->dir), "/tmp/pgship-prune-test-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(path, sizeof(path), "%s/store", f->dir);
    storage_config sc = {.type = "fs", .path = path, .prefix = "pgship"};
    if (storage_open(&f->st, &sc, &e) != 0)
        return -1;
    snprintf(path, sizeof(path), "%s/catalog.db", f->dir);
    if (catalog_open(path, &f->cat, &e) != 0)
        return -1;
    f->now = T0;
    catalog_set_clock(f->cat, fixture_clock, f);
    if (catalog_agent_seen(f->cat, "a1", NULL, NULL, "t", 1, &e) != 0 ||
        catalog_agent_seen(f->cat, "a2", NULL, NULL, "t", 1, &e) != 0)
        return -1;
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

static void object_key(const char *env, const char *agent, const char *db, const char *id,
                       const char *ext, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s/%s/%s%s", env, agent, db, id, ext);
}

/* A complete backup of agent/db in env made at day `day` (the clock then), with its object and
 * sidecar in storage, as ingest leaves them. source may be NULL. */
static void make_backup_at(fixture *f, const char *agent, const char *db, const char *env,
                           int64_t at_ms, const char *source, char id[CATALOG_ID_SIZE])
{
    char key[512], side[512], hex[SHA256_HEX_LEN + 1];
    uint8_t sha[SHA256_LEN];
    pgs_error e = {0};
    f->now = at_ms;
    catalog_backup_req req = {
        .agent = agent, .database = db, .environment = env, .source_backup_id = source};
    if (catalog_backup_new(f->cat, &req, id, &e) != 0)
        fail_msg("catalog_backup_new: %s", e.msg);
    object_key(env, agent, db, id, ".pgship", key, sizeof(key));
    object_key(env, agent, db, id, ".manifest.json", side, sizeof(side));
    catalog_backup_info info = {.storage_key = key};
    if (catalog_backup_start(f->cat, id, &info, &e) != 0)
        fail_msg("catalog_backup_start: %s", e.msg);
    char data[64];
    int n = snprintf(data, sizeof(data), "archive of %s", id);
    sha256_ctx *h = sha256_new();
    sha256_update(h, data, (size_t)n);
    sha256_final(h, sha);
    sha256_free(h);
    hex_encode(sha, SHA256_LEN, hex);
    if (storage_put(f->st, key, data, (size_t)n, &e) != 0 ||
        storage_put(f->st, side, "{}", 2, &e) != 0 ||
        catalog_backup_complete(f->cat, id, (uint64_t)n, 0, hex, key, &e) != 0)
        fail_msg("make_backup: %s", e.msg);
}

static void make_backup(fixture *f, const char *agent, const char *db, const char *env, int day,
                        const char *source, char id[CATALOG_ID_SIZE])
{
    make_backup_at(f, agent, db, env, T0 + day * DAY, source, id);
}

/* A failed backup at day `day`; started ones have a planned key (and nothing stored). */
static void make_failed(fixture *f, const char *agent, const char *db, const char *env, int day,
                        int started, char id[CATALOG_ID_SIZE])
{
    char key[512];
    pgs_error e = {0};
    f->now = T0 + day * DAY;
    catalog_backup_req req = {.agent = agent, .database = db, .environment = env};
    if (catalog_backup_new(f->cat, &req, id, &e) != 0)
        fail_msg("catalog_backup_new: %s", e.msg);
    object_key(env, agent, db, id, ".pgship", key, sizeof(key));
    catalog_backup_info info = {.storage_key = key};
    if ((started && catalog_backup_start(f->cat, id, &info, &e) != 0) ||
        catalog_backup_fail(f->cat, id, "pg_dump failed", &e) != 0)
        fail_msg("make_failed: %s", e.msg);
}

static int stored(fixture *f, const char *key)
{
    tu_buf b = {0};
    pgs_error e = {0};
    int rc = storage_get(f->st, key, tu_buf_sink, &b, &e);
    tu_buf_free(&b);
    if (rc != 0 && rc != PGS_ENOTFOUND)
        fail_msg("storage_get %s: %s", key, e.msg);
    return rc == 0;
}

/* Whether backup id's object and sidecar are stored, and its row is in the catalog. */
static int object_stored(fixture *f, const char *env, const char *agent, const char *db,
                         const char *id)
{
    char key[512];
    object_key(env, agent, db, id, ".pgship", key, sizeof(key));
    return stored(f, key);
}

static int sidecar_stored(fixture *f, const char *env, const char *agent, const char *db,
                          const char *id)
{
    char key[512];
    object_key(env, agent, db, id, ".manifest.json", key, sizeof(key));
    return stored(f, key);
}

static int in_catalog(fixture *f, const char *id)
{
    catalog_backup b;
    pgs_error e = {0};
    int rc = catalog_backup_get(f->cat, id, &b, &e);
    if (rc != 0 && rc != PGS_ENOTFOUND)
        fail_msg("catalog_backup_get: %s", e.msg);
    return rc == 0;
}

/* The rules of the tests: one policy per (agent, db, env), NULL elsewhere. */
typedef struct rule {
    const char *agent, *db, *env, *name;
    retention_policy p;
} rule;

typedef struct rule_set {
    rule r[4];
    int n;
    int calls;
} rule_set;

static const retention_policy *rules_fn(void *arg, const char *agent, const char *db,
                                        const char *env, const char **name)
{
    rule_set *rs = arg;
    rs->calls++;
    for (int i = 0; i < rs->n; i++)
        if (strcmp(rs->r[i].agent, agent) == 0 && strcmp(rs->r[i].db, db) == 0 &&
            strcmp(rs->r[i].env, env) == 0) {
            *name = rs->r[i].name;
            return &rs->r[i].p;
        }
    return NULL;
}

static prune_plan_t *plan_of(fixture *f, rule_set *rs)
{
    prune_rules rules = {rules_fn, rs};
    prune_plan_t *plan = NULL;
    pgs_error e = {0};
    if (prune_plan(f->cat, &rules, &plan, &e) != 0)
        fail_msg("prune_plan: %s", e.msg);
    return plan;
}

static const prune_entry *entry(const prune_plan_t *plan, const char *id)
{
    for (size_t i = 0; i < plan->n; i++)
        if (strcmp(plan->entries[i].id, id) == 0)
            return &plan->entries[i];
    return NULL;
}

static void expect(const prune_plan_t *plan, const char *id, int keep, const char *reasons)
{
    const prune_entry *pe = entry(plan, id);
    if (pe == NULL)
        fail_msg("backup %s is not in the plan", id);
    if (pe->keep != keep || strcmp(pe->reasons, reasons) != 0)
        fail_msg("backup %s: keep %d \"%s\", expected keep %d \"%s\"", id, pe->keep, pe->reasons,
                 keep, reasons);
}

static void apply(fixture *f, const prune_plan_t *plan, prune_counts *c)
{
    pgs_error e = {0};
    if (prune_apply(f->cat, f->st, plan, c, &e) != 0)
        fail_msg("prune_apply: %s", e.msg);
}

/* Backups made in the same second: keep_last keeps the ones made last, whatever their ids'
 * random parts say. */
static void test_prune_same_second_keeps_the_newest(void **state)
{
    fixture *f = *state;
    char id[8][CATALOG_ID_SIZE];
    for (int i = 0; i < 8; i++)
        make_backup_at(f, "a1", "db1", "prod", T0 + 100 * i, NULL, id[i]);
    rule_set rs = {.r = {{"a1", "db1", "prod", "p", {.keep_last = 2}}}, .n = 1};
    prune_plan_t *plan = plan_of(f, &rs);
    for (int i = 0; i < 8; i++)
        assert_int_equal(entry(plan, id[i])->keep, i >= 6);
    prune_plan_free(plan);
}

/* keep_last 2 on a1/db1/prod: the two newest complete stay, older ones and failures go; other
 * databases and backups in flight are not in the plan. */
static void test_prune_plan_and_apply(void **state)
{
    fixture *f = *state;
    char id[6][CATALOG_ID_SIZE], failed[CATALOG_ID_SIZE], early[CATALOG_ID_SIZE];
    char other[CATALOG_ID_SIZE], queued[CATALOG_ID_SIZE];
    pgs_error e = {0};
    make_failed(f, "a1", "db1", "prod", 0, 0, early);
    for (int i = 0; i < 5; i++)
        make_backup(f, "a1", "db1", "prod", i + 1, NULL, id[i]);
    make_failed(f, "a1", "db1", "prod", 6, 1, failed);
    make_backup(f, "a2", "db2", "prod", 1, NULL, other);
    f->now = T0 + 7 * DAY;
    catalog_backup_req req = {.agent = "a1", .database = "db1", .environment = "prod"};
    assert_int_equal(catalog_backup_new(f->cat, &req, queued, &e), 0);

    rule_set rs = {.r = {{"a1", "db1", "prod", "short", {.keep_last = 2}}}, .n = 1};
    prune_plan_t *plan = plan_of(f, &rs);
    assert_int_equal(rs.calls, 2); /* a1/db1/prod and a2/db2/prod */
    assert_int_equal(plan->n, 7);
    assert_int_equal(plan->ndatabases, 1);
    assert_int_equal(plan->ndelete, 5);
    expect(plan, id[4], 1, "last 1, newest complete");
    expect(plan, id[3], 1, "last 2");
    expect(plan, id[2], 0, "");
    expect(plan, id[0], 0, "");
    expect(plan, failed, 0, "failed");
    expect(plan, early, 0, "failed");
    assert_null(entry(plan, other));
    assert_null(entry(plan, queued));
    /* newest first, with the policy's name and the backup's time */
    assert_string_equal(plan->entries[0].id, failed);
    assert_string_equal(plan->entries[0].policy, "short");
    assert_string_equal(entry(plan, id[0])->time, "2026-11-22T16:05:29.000Z");
    assert_string_equal(entry(plan, early)->time, "2026-11-21T16:05:29.000Z");
    assert_int_equal(plan->delete_bytes, 3 * strlen("archive of ") + 3 * CATALOG_ID_LEN);

    /* Planning changes nothing. */
    assert_true(object_stored(f, "prod", "a1", "db1", id[0]));
    assert_true(in_catalog(f, id[0]));

    prune_counts c;
    apply(f, plan, &c);
    assert_int_equal(c.planned, 5);
    assert_int_equal(c.deleted, 5);
    assert_int_equal(c.failed, 0);
    assert_int_equal(c.skipped, 0);
    assert_int_equal(c.bytes_deleted, plan->delete_bytes);
    for (int i = 0; i < 3; i++) {
        assert_false(object_stored(f, "prod", "a1", "db1", id[i]));
        assert_false(sidecar_stored(f, "prod", "a1", "db1", id[i]));
        assert_false(in_catalog(f, id[i]));
    }
    assert_false(in_catalog(f, failed));
    assert_false(in_catalog(f, early));
    for (int i = 3; i < 5; i++) {
        assert_true(object_stored(f, "prod", "a1", "db1", id[i]));
        assert_true(sidecar_stored(f, "prod", "a1", "db1", id[i]));
        assert_true(in_catalog(f, id[i]));
    }
    assert_true(object_stored(f, "prod", "a2", "db2", other));
    assert_true(in_catalog(f, queued));
    prune_plan_free(plan);

    /* Pruning again finds nothing more to do. */
    plan = plan_of(f, &rs);
    assert_int_equal(plan->ndelete, 0);
    apply(f, plan, &c);
    assert_int_equal(c.deleted, 0);
    prune_plan_free(plan);
}

/* A crash after the object was deleted and before the row was: the next prune finishes. */
static void test_prune_finishes_after_crash(void **state)
{
    fixture *f = *state;
    char id[3][CATALOG_ID_SIZE], key[512];
    pgs_error e = {0};
    for (int i = 0; i < 3; i++)
        make_backup(f, "a1", "db1", "prod", i, NULL, id[i]);
    /* The first prune got as far as deleting the oldest object, then died. */
    object_key("prod", "a1", "db1", id[0], ".pgship", key, sizeof(key));
    assert_int_equal(storage_delete(f->st, key, &e), 0);
    assert_true(in_catalog(f, id[0]));
    assert_true(sidecar_stored(f, "prod", "a1", "db1", id[0]));

    rule_set rs = {.r = {{"a1", "db1", "prod", "p", {.keep_last = 1}}}, .n = 1};
    prune_plan_t *plan = plan_of(f, &rs);
    expect(plan, id[0], 0, "");
    prune_counts c;
    apply(f, plan, &c);
    assert_int_equal(c.deleted, 2);
    assert_int_equal(c.failed, 0);
    assert_false(in_catalog(f, id[0]));
    assert_false(sidecar_stored(f, "prod", "a1", "db1", id[0]));
    assert_false(in_catalog(f, id[1]));
    assert_true(in_catalog(f, id[2]));
    prune_plan_free(plan);

    /* The same with only the row left (object and sidecar gone). */
    make_backup(f, "a1", "db1", "prod", 5, NULL, id[0]);
    object_key("prod", "a1", "db1", id[2], ".pgship", key, sizeof(key));
    assert_int_equal(storage_delete(f->st, key, &e), 0);
    object_key("prod", "a1", "db1", id[2], ".manifest.json", key, sizeof(key));
    assert_int_equal(storage_delete(f->st, key, &e), 0);
    plan = plan_of(f, &rs);
    apply(f, plan, &c);
    assert_int_equal(c.deleted, 1);
    assert_false(in_catalog(f, id[2]));
    prune_plan_free(plan);
}

static void test_prune_pinned_and_skipped(void **state)
{
    fixture *f = *state;
    char id[4][CATALOG_ID_SIZE];
    pgs_error e = {0};
    for (int i = 0; i < 4; i++)
        make_backup(f, "a1", "db1", "prod", i, NULL, id[i]);
    assert_int_equal(catalog_backup_pin(f->cat, id[0], 1, &e), 0);
    rule_set rs = {.r = {{"a1", "db1", "prod", "p", {.keep_last = 1}}}, .n = 1};
    prune_plan_t *plan = plan_of(f, &rs);
    expect(plan, id[0], 1, "pinned");
    assert_true(entry(plan, id[0])->pinned);
    expect(plan, id[1], 0, "");
    expect(plan, id[2], 0, "");
    /* Pinned between the plan and its application: skipped, its object kept. */
    assert_int_equal(catalog_backup_pin(f->cat, id[1], 1, &e), 0);
    prune_counts c;
    apply(f, plan, &c);
    assert_int_equal(c.planned, 2);
    assert_int_equal(c.deleted, 1);
    assert_int_equal(c.skipped, 1);
    assert_int_equal(c.failed, 0);
    assert_true(in_catalog(f, id[1]));
    assert_true(object_stored(f, "prod", "a1", "db1", id[1]));
    assert_false(in_catalog(f, id[2]));
    /* Deleted by someone else since: skipped too. */
    prune_plan_free(plan);
    assert_int_equal(catalog_backup_pin(f->cat, id[1], 0, &e), 0);
    plan = plan_of(f, &rs);
    expect(plan, id[1], 0, "");
    assert_int_equal(catalog_backup_delete(f->cat, id[1], &e), 0);
    apply(f, plan, &c);
    assert_int_equal(c.skipped, 1);
    assert_int_equal(c.deleted, 0);
    prune_plan_free(plan);
}

/* A derived copy keeps its source; the copies' own policy deletes them, and then the source goes
 * in the same run. */
static void test_prune_derived_copies(void **state)
{
    fixture *f = *state;
    char src[3][CATALOG_ID_SIZE], copy[2][CATALOG_ID_SIZE];
    make_backup(f, "a1", "db1", "prod", 0, NULL, src[0]);
    make_backup(f, "a1", "db1", "staging", 1, src[0], copy[0]);
    make_backup(f, "a1", "db1", "prod", 2, NULL, src[1]);
    make_backup(f, "a1", "db1", "staging", 3, src[1], copy[1]);
    make_backup(f, "a1", "db1", "prod", 4, NULL, src[2]);

    /* No policy for staging: both copies stay, and so do their sources. */
    rule_set rs = {.r = {{"a1", "db1", "prod", "prod", {.keep_last = 1}}}, .n = 1};
    prune_plan_t *plan = plan_of(f, &rs);
    assert_null(entry(plan, copy[0]));
    char want[96];
    snprintf(want, sizeof(want), "source of derived backup %s", copy[0]);
    expect(plan, src[0], 1, want);
    snprintf(want, sizeof(want), "source of derived backup %s", copy[1]);
    expect(plan, src[1], 1, want);
    expect(plan, src[2], 1, "last 1, newest complete");
    assert_int_equal(plan->ndelete, 0);
    /* the dry run says so */
    json_t *j = prune_plan_to_json(plan);
    json_t *b0 = NULL;
    for (size_t i = 0; i < json_array_size(json_object_get(j, "backups")); i++) {
        json_t *b = json_array_get(json_object_get(j, "backups"), i);
        if (strcmp(json_string_value(json_object_get(b, "id")), src[0]) == 0)
            b0 = b;
    }
    assert_non_null(b0);
    assert_string_equal(json_string_value(json_object_get(b0, "fate")), "keep");
    snprintf(want, sizeof(want), "source of derived backup %s", copy[0]);
    assert_string_equal(json_string_value(json_array_get(json_object_get(b0, "reasons"), 0)), want);
    json_decref(j);
    prune_plan_free(plan);

    /* staging keeps its newest copy: the older copy goes, then its source. */
    rs.r[1] = (rule){"a1", "db1", "staging", "staging", {.keep_last = 1}};
    rs.n = 2;
    plan = plan_of(f, &rs);
    expect(plan, copy[0], 0, "");
    expect(plan, src[0], 0, "");
    snprintf(want, sizeof(want), "source of derived backup %s", copy[1]);
    expect(plan, src[1], 1, want);
    prune_counts c;
    apply(f, plan, &c);
    assert_int_equal(c.deleted, 2);
    assert_int_equal(c.failed, 0);
    assert_false(in_catalog(f, copy[0]));
    assert_false(in_catalog(f, src[0]));
    assert_false(object_stored(f, "staging", "a1", "db1", copy[0]));
    assert_true(in_catalog(f, src[1]));
    prune_plan_free(plan);
}

/* Restores and verifications in flight keep the backups they use. */
static void test_prune_keeps_backups_in_use(void **state)
{
    fixture *f = *state;
    char id[4][CATALOG_ID_SIZE], rid[CATALOG_ID_SIZE], vid[CATALOG_ID_SIZE];
    pgs_error e = {0};
    for (int i = 0; i < 4; i++)
        make_backup(f, "a1", "db1", "prod", i, NULL, id[i]);
    catalog_restore_req req = {.kind = "restore",
                               .source = id[0],
                               .source_backup_id = id[0],
                               .target_agent = "a2",
                               .target_database = "db1",
                               .target_environment = "staging"};
    assert_int_equal(catalog_restore_new(f->cat, &req, rid, &e), 0);
    assert_int_equal(catalog_verify_new(f->cat, id[1], "a1", 1, vid, &e), 0);
    assert_int_equal(catalog_verify_start(f->cat, vid, &e), 0);
    rule_set rs = {.r = {{"a1", "db1", "prod", "p", {.keep_last = 1}}}, .n = 1};
    prune_plan_t *plan = plan_of(f, &rs);
    char want[96];
    snprintf(want, sizeof(want), "used by restore %s", rid);
    expect(plan, id[0], 1, want);
    snprintf(want, sizeof(want), "used by verification %s", vid);
    expect(plan, id[1], 1, want);
    expect(plan, id[2], 0, "");
    prune_plan_free(plan);

    /* Once they are finished, the backups can go; the records keep their ids. */
    assert_int_equal(catalog_restore_finish(f->cat, rid, 0, NULL, "cancelled", NULL, &e), 0);
    assert_int_equal(catalog_verify_finish(f->cat, vid, 1, NULL, NULL, &e), 0);
    plan = plan_of(f, &rs);
    assert_int_equal(plan->ndelete, 3);
    prune_counts c;
    apply(f, plan, &c);
    assert_int_equal(c.deleted, 3);
    catalog_restore r;
    assert_int_equal(catalog_restore_get(f->cat, rid, &r, &e), 0);
    assert_string_equal(r.source_backup_id, id[0]);
    catalog_restore_clear(&r);
    prune_plan_free(plan);
}

/* One deletion that fails is reported; the others go on. */
static void test_prune_failure_does_not_stop_the_rest(void **state)
{
    fixture *f = *state;
    char id[4][CATALOG_ID_SIZE], bad[CATALOG_ID_SIZE], key[512];
    pgs_error e = {0};
    make_backup(f, "a1", "db1", "prod", 0, NULL, id[0]);
    /* A row whose storage key names another object (a hand edit): prune must not follow it. */
    f->now = T0 + DAY;
    catalog_backup_req req = {.agent = "a1", .database = "db1", .environment = "prod"};
    assert_int_equal(catalog_backup_new(f->cat, &req, bad, &e), 0);
    object_key("prod", "a1", "db1", id[0], ".pgship", key, sizeof(key));
    assert_int_equal(catalog_backup_start(f->cat, bad, NULL, &e), 0);
    assert_int_equal(
        catalog_backup_complete(f->cat, bad, 5, 0,
                                "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                                key, &e),
        0);
    for (int i = 1; i < 4; i++)
        make_backup(f, "a1", "db1", "prod", i + 1, NULL, id[i]);
    rule_set rs = {.r = {{"a1", "db1", "prod", "p", {.keep_last = 1}}}, .n = 1};
    prune_plan_t *plan = plan_of(f, &rs);
    assert_int_equal(plan->ndelete, 4);
    prune_counts c;
    TU_ASSERT_ERR(prune_apply(f->cat, f->st, plan, &c, &e), e, PGS_EINVAL, bad);
    assert_non_null(strstr(e.msg, "1 of 4 deletions failed"));
    assert_int_equal(c.failed, 1);
    assert_int_equal(c.deleted, 3);
    assert_int_equal(c.nfailures, 1);
    assert_string_equal(c.failures[0].id, bad);
    assert_non_null(strstr(c.failures[0].error, "does not name it"));
    assert_true(in_catalog(f, bad));
    assert_false(in_catalog(f, id[0]));
    assert_false(in_catalog(f, id[1]));
    assert_true(in_catalog(f, id[3]));
    prune_plan_free(plan);
}

static void test_prune_plan_json(void **state)
{
    fixture *f = *state;
    char id[2][CATALOG_ID_SIZE], failed[CATALOG_ID_SIZE];
    make_backup(f, "a1", "db1", "prod", 0, NULL, id[0]);
    make_backup(f, "a1", "db1", "prod", 1, NULL, id[1]);
    make_failed(f, "a1", "db1", "prod", 2, 0, failed);
    rule_set rs = {.r = {{"a1", "db1", "prod", "nightly", {.keep_last = 1, .keep_daily = 7}}},
                   .n = 1};
    prune_plan_t *plan = plan_of(f, &rs);
    json_t *j = prune_plan_to_json(plan);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "databases")), 1);
    assert_int_equal(json_integer_value(json_object_get(j, "keep")), 2);
    assert_int_equal(json_integer_value(json_object_get(j, "delete")), 1);
    assert_int_equal(json_integer_value(json_object_get(j, "delete_bytes")), 0);
    json_t *arr = json_object_get(j, "backups");
    assert_int_equal(json_array_size(arr), 3);
    json_t *b = json_array_get(arr, 0);
    assert_string_equal(json_string_value(json_object_get(b, "id")), failed);
    assert_string_equal(json_string_value(json_object_get(b, "fate")), "delete");
    assert_string_equal(json_string_value(json_object_get(b, "state")), "failed");
    assert_string_equal(json_string_value(json_array_get(json_object_get(b, "reasons"), 0)),
                        "failed");
    assert_true(json_is_null(json_object_get(b, "size_bytes")));
    b = json_array_get(arr, 1);
    assert_string_equal(json_string_value(json_object_get(b, "id")), id[1]);
    assert_string_equal(json_string_value(json_object_get(b, "fate")), "keep");
    assert_string_equal(json_string_value(json_object_get(b, "policy")), "nightly");
    assert_string_equal(json_string_value(json_object_get(b, "database")), "db1");
    assert_string_equal(json_string_value(json_object_get(b, "agent")), "a1");
    assert_string_equal(json_string_value(json_object_get(b, "environment")), "prod");
    assert_string_equal(json_string_value(json_object_get(b, "time")), "2026-11-22T16:05:29.000Z");
    assert_true(json_is_false(json_object_get(b, "pinned")));
    assert_true(json_is_null(json_object_get(b, "source_backup_id")));
    json_t *reasons = json_object_get(b, "reasons");
    assert_int_equal(json_array_size(reasons), 3);
    assert_string_equal(json_string_value(json_array_get(reasons, 0)), "last 1");
    assert_string_equal(json_string_value(json_array_get(reasons, 1)), "daily 1");
    assert_string_equal(json_string_value(json_array_get(reasons, 2)), "newest complete");
    assert_int_equal(json_integer_value(json_object_get(b, "size_bytes")),
                     strlen("archive of ") + CATALOG_ID_LEN);
    b = json_array_get(arr, 2);
    assert_string_equal(json_string_value(json_object_get(b, "fate")), "keep");
    assert_string_equal(json_string_value(json_array_get(json_object_get(b, "reasons"), 0)),
                        "daily 2");
    json_decref(j);
    prune_plan_free(plan);
}

static void test_prune_refuses_bad_rules(void **state)
{
    fixture *f = *state;
    char id[CATALOG_ID_SIZE];
    prune_plan_t *plan = NULL;
    pgs_error e = {0};
    make_backup(f, "a1", "db1", "prod", 0, NULL, id);
    rule_set rs = {.r = {{"a1", "db1", "prod", "empty", {0}}}, .n = 1};
    prune_rules rules = {rules_fn, &rs};
    TU_ASSERT_ERR(prune_plan(f->cat, &rules, &plan, &e), e, PGS_EINVAL, "a1/db1 in prod");
    assert_null(plan);
    assert_non_null(strstr(e.msg, "empty"));
    TU_ASSERT_ERR(prune_plan(f->cat, NULL, &plan, &e), e, PGS_EINVAL, "rules");
    TU_ASSERT_ERR(prune_apply(f->cat, f->st, NULL, NULL, &e), e, PGS_EINVAL, "plan");
    /* nothing planned for an empty catalog or without policies */
    rs.n = 0;
    plan = plan_of(f, &rs);
    assert_int_equal(plan->n, 0);
    prune_counts c;
    apply(f, plan, &c);
    assert_int_equal(c.planned, 0);
    prune_plan_free(plan);
    prune_plan_free(NULL);
}

static void test_prune_sidecar_key(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(prune_sidecar_key("prod/a/b/x.pgship", out, sizeof(out)), 0);
    assert_string_equal(out, "prod/a/b/x.manifest.json");
    assert_int_equal(prune_sidecar_key("x.pgship", out, sizeof(out)), 0);
    assert_string_equal(out, "x.manifest.json");
    assert_int_equal(prune_sidecar_key(".pgship", out, sizeof(out)), PGS_EINVAL);
    assert_int_equal(prune_sidecar_key("prod/a/b/x.tar", out, sizeof(out)), PGS_EINVAL);
    assert_int_equal(prune_sidecar_key(NULL, out, sizeof(out)), PGS_EINVAL);
    assert_int_equal(prune_sidecar_key("prod/a/b/x.pgship", out, 24), PGS_ELIMIT);
    assert_int_equal(prune_sidecar_key("prod/a/b/x.pgship", out, 25), 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    log_set_level(LOG_ERROR); /* prune logs every deletion at info, failures as warnings */
    const struct CMUnitTest tests[] = {
        T(test_prune_plan_and_apply),
        T(test_prune_same_second_keeps_the_newest),
        T(test_prune_finishes_after_crash),
        T(test_prune_pinned_and_skipped),
        T(test_prune_derived_copies),
        T(test_prune_keeps_backups_in_use),
        T(test_prune_failure_does_not_stop_the_rest),
        T(test_prune_plan_json),
        T(test_prune_refuses_bad_rules),
        cmocka_unit_test(test_prune_sidecar_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
