/*
 * Tests of the coordinator's catalog (coordinator/catalog.c) on real SQLite files in a fresh
 * directory per test: creation and migration, refusal of newer or foreign files, every legal and
 * illegal state transition (through the API and, for the schema's own rules, through raw SQL),
 * crash recovery after a process that died mid-backup, listing, "@latest", ids, input bounds and
 * the JSON view; and the same for restores, with the upgrade of a version 1 catalog; and version
 * 3's pins, deletion rules, verifications, audit log, schedule runs, statistics and rebuilt rows,
 * with the upgrade of a version 2 catalog made by the version 2 code itself.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "common/log.h"
#include "coordinator/catalog.h"
#include "tests/unit/testutil.h"

/* 2026-11-21T16:05:29Z */
#define T0 (1795277129LL * 1000)
#define SHA_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_B "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define RCPT_1 "0011223344556677"
#define RCPT_2 "8899aabbccddeeff"

static int64_t fixed_clock(void *arg)
{
    return *(const int64_t *)arg;
}

static catalog *open_in(void **state, const char *name)
{
    char path[600];
    catalog *cat = NULL;
    pgs_error e = {0};
    tu_path_in(state, name, path, sizeof(path));
    int rc = catalog_open(path, &cat, &e);
    if (rc != 0)
        fail_msg("catalog_open %s: %d %s", path, rc, e.msg);
    return cat;
}

/* Runs SQL on the file with a separate raw connection; returns SQLite's code. */
static int raw_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    return rc;
}

static long long raw_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    long long v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* An agent "a1" with database "db1" in "prod", ready for backups. */
static void add_agent(catalog *cat, const char *agent, const char *db, const char *env)
{
    pgs_error e = {0};
    if (catalog_agent_seen(cat, agent, "ed25519:0102030405060708", NULL, "0.1.0", 1, &e) != 0 ||
        catalog_database_seen(cat, agent, db, env, "15.5", &e) != 0)
        fail_msg("add_agent: %s", e.msg);
}

static void new_backup(catalog *cat, const char *agent, const char *db, const char *env,
                       char id[CATALOG_ID_SIZE])
{
    pgs_error e = {0};
    catalog_backup_req req = {.agent = agent, .database = db, .environment = env};
    int rc = catalog_backup_new(cat, &req, id, &e);
    if (rc != 0)
        fail_msg("catalog_backup_new: %d %s", rc, e.msg);
}

static void start_backup(catalog *cat, const char *id, const char *key)
{
    pgs_error e = {0};
    const char *rcpts[] = {RCPT_1, RCPT_2};
    catalog_backup_info info = {.server_version = "15.5",
                                .pg_dump_version = "pg_dump (PostgreSQL) 15.5",
                                .recipients = rcpts,
                                .nrecipients = 2,
                                .storage_key = key};
    int rc = catalog_backup_start(cat, id, &info, &e);
    if (rc != 0)
        fail_msg("catalog_backup_start: %d %s", rc, e.msg);
}

static void complete_backup(catalog *cat, const char *id, const char *key)
{
    pgs_error e = {0};
    int rc = catalog_backup_complete(cat, id, 1234, 5678, SHA_A, key, &e);
    if (rc != 0)
        fail_msg("catalog_backup_complete: %d %s", rc, e.msg);
}

static enum catalog_state state_of(catalog *cat, const char *id)
{
    catalog_backup b;
    pgs_error e = {0};
    assert_int_equal(catalog_backup_get(cat, id, &b, &e), 0);
    return b.state;
}

/* ---- open, migrate, refuse ---- */

static int count_agents_cb(void *arg, const catalog_agent *a)
{
    (void)a;
    (*(int *)arg)++;
    return 0;
}

static void test_catalog_open_creates_and_reopen_keeps_data(void **state)
{
    char path[600], id[CATALOG_ID_SIZE];
    struct stat st;
    catalog_backup b;
    pgs_error e = {0};
    tu_path_in(state, "catalog.db", path, sizeof(path));

    catalog *cat = open_in(state, "catalog.db");
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    add_agent(cat, "a1", "db1", "prod");
    new_backup(cat, "a1", "db1", "prod", id);
    start_backup(cat, id, "pgship/prod/a1/db1/x.pgship");
    catalog_close(cat);

    /* The file is a WAL-mode catalog at the current schema version, marked as ours. */
    assert_int_equal(raw_int(path, "PRAGMA user_version"), CATALOG_SCHEMA_VERSION);
    assert_int_equal(raw_int(path, "PRAGMA application_id"), 0x50475348);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM pragma_journal_mode WHERE journal_mode "
                                   "= 'wal'"),
                     1);

    cat = open_in(state, "catalog.db");
    assert_int_equal(catalog_backup_get(cat, id, &b, &e), 0);
    assert_string_equal(b.id, id);
    assert_int_equal(b.state, CATALOG_RUNNING);
    assert_string_equal(b.storage_key, "pgship/prod/a1/db1/x.pgship");
    assert_int_equal(b.nrecipients, 2);
    assert_string_equal(b.recipients[1], RCPT_2);
    int n = 0;
    assert_int_equal(catalog_agents_list(cat, count_agents_cb, &n, &e), 0);
    assert_int_equal(n, 1);
    catalog_close(cat);
    catalog_close(NULL);
}

static void test_catalog_migrates_an_empty_file(void **state)
{
    char path[600];
    tu_path_in(state, "empty.db", path, sizeof(path));
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    catalog *cat = open_in(state, "empty.db");
    catalog_close(cat);
    assert_int_equal(raw_int(path, "PRAGMA user_version"), CATALOG_SCHEMA_VERSION);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM sqlite_schema WHERE name IN "
                                   "('agents', 'databases', 'backups')"),
                     3);
    /* Opening again applies nothing and keeps the version. */
    cat = open_in(state, "empty.db");
    catalog_close(cat);
    assert_int_equal(raw_int(path, "PRAGMA user_version"), CATALOG_SCHEMA_VERSION);
}

static void test_catalog_refuses_newer_schema(void **state)
{
    char path[600];
    catalog *cat = NULL;
    pgs_error e = {0};
    tu_path_in(state, "future.db", path, sizeof(path));
    assert_int_equal(raw_exec(path, "PRAGMA application_id = 1346851656; PRAGMA user_version = 99;"
                                    " CREATE TABLE later (x);"),
                     SQLITE_OK);
    TU_ASSERT_ERR(catalog_open(path, &cat, &e), e, PGS_EVERSION, "schema version 99");
    assert_null(cat);
    char want[64];
    snprintf(want, sizeof(want), "version %d", CATALOG_SCHEMA_VERSION);
    assert_non_null(strstr(e.msg, want));
    /* Untouched. */
    assert_int_equal(raw_int(path, "PRAGMA user_version"), 99);
}

static void test_catalog_refuses_foreign_files(void **state)
{
    char path[600];
    catalog *cat = NULL;
    pgs_error e = {0};

    /* Another program's SQLite database is not migrated into a catalog. */
    tu_path_in(state, "other.db", path, sizeof(path));
    assert_int_equal(raw_exec(path, "CREATE TABLE mine (x); INSERT INTO mine VALUES (1);"),
                     SQLITE_OK);
    TU_ASSERT_ERR(catalog_open(path, &cat, &e), e, PGS_EFORMAT, "another program");
    assert_null(cat);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM sqlite_schema"), 1);

    /* Not SQLite at all. */
    tu_path_in(state, "text.db", path, sizeof(path));
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < 100; i++)
        fputs("this is not a database, just text\n", f);
    fclose(f);
    TU_ASSERT_ERR(catalog_open(path, &cat, &e), e, PGS_EFORMAT, "text.db");
    assert_null(cat);

    /* A directory, and a missing parent. */
    TU_ASSERT_ERR(catalog_open((const char *)*state, &cat, &e), e, PGS_EIO, "cannot open");
    tu_path_in(state, "no/such/dir/c.db", path, sizeof(path));
    TU_ASSERT_ERR(catalog_open(path, &cat, &e), e, PGS_EIO, "No such file");
    TU_ASSERT_ERR(catalog_open("", &cat, &e), e, PGS_EINVAL, "missing");
}

/* ---- transitions ---- */

static void test_catalog_legal_transitions(void **state)
{
    char a[CATALOG_ID_SIZE], b[CATALOG_ID_SIZE], c[CATALOG_ID_SIZE];
    catalog_backup r;
    pgs_error e = {0};
    int64_t now = T0;
    catalog *cat = open_in(state, "c.db");
    catalog_set_clock(cat, fixed_clock, &now);
    add_agent(cat, "a1", "db1", "prod");

    /* queued -> running -> complete */
    new_backup(cat, "a1", "db1", "prod", a);
    assert_int_equal(catalog_backup_get(cat, a, &r, &e), 0);
    assert_int_equal(r.state, CATALOG_QUEUED);
    assert_string_equal(r.created_at, "2026-11-21T16:05:29.000Z");
    assert_string_equal(r.started_at, "");
    now += 1500;
    start_backup(cat, a, NULL);
    assert_int_equal(catalog_backup_get(cat, a, &r, &e), 0);
    assert_int_equal(r.state, CATALOG_RUNNING);
    assert_string_equal(r.started_at, "2026-11-21T16:05:30.500Z");
    assert_string_equal(r.storage_key, "");
    /* Details learnt while running; NULL fields keep what is there. */
    catalog_backup_info more = {.storage_key = "p/prod/a1/db1/a.pgship"};
    assert_int_equal(catalog_backup_update_info(cat, a, &more, &e), 0);
    assert_int_equal(catalog_backup_update_info(cat, a, NULL, &e), 0);
    assert_int_equal(catalog_backup_get(cat, a, &r, &e), 0);
    assert_string_equal(r.storage_key, "p/prod/a1/db1/a.pgship");
    assert_string_equal(r.server_version, "15.5");
    now += 60000;
    /* Upper-case digests are accepted and stored lower-case. */
    assert_int_equal(catalog_backup_complete(cat, a, 4096, 9000,
                                             "0123456789ABCDEF0123456789abcdef0123456789abcdef01234"
                                             "56789ABCDEF",
                                             "p/prod/a1/db1/a.pgship", &e),
                     0);
    assert_int_equal(catalog_backup_get(cat, a, &r, &e), 0);
    assert_int_equal(r.state, CATALOG_COMPLETE);
    assert_string_equal(r.sha256, SHA_B);
    assert_int_equal(r.bytes, 4096);
    assert_int_equal(r.dump_bytes, 9000);
    assert_string_equal(r.finished_at, "2026-11-21T16:06:30.500Z");
    assert_string_equal(r.error, "");

    /* queued -> failed */
    new_backup(cat, "a1", "db1", "prod", b);
    assert_int_equal(catalog_backup_fail(cat, b, "agent went away", &e), 0);
    assert_int_equal(catalog_backup_get(cat, b, &r, &e), 0);
    assert_int_equal(r.state, CATALOG_FAILED);
    assert_string_equal(r.error, "agent went away");
    assert_string_equal(r.started_at, "");
    assert_string_not_equal(r.finished_at, "");

    /* queued -> running -> failed */
    new_backup(cat, "a1", "db1", "prod", c);
    start_backup(cat, c, "p/c.pgship");
    assert_int_equal(catalog_backup_fail(cat, c, "pg_dump: error: connection lost\n", &e), 0);
    assert_int_equal(catalog_backup_get(cat, c, &r, &e), 0);
    assert_int_equal(r.state, CATALOG_FAILED);
    assert_string_equal(r.error, "pg_dump: error: connection lost");
    catalog_close(cat);
}

static void test_catalog_illegal_transitions(void **state)
{
    char q[CATALOG_ID_SIZE], run[CATALOG_ID_SIZE], done[CATALOG_ID_SIZE], bad[CATALOG_ID_SIZE];
    pgs_error e = {0};
    catalog *cat = open_in(state, "c.db");
    add_agent(cat, "a1", "db1", "prod");
    new_backup(cat, "a1", "db1", "prod", q);
    new_backup(cat, "a1", "db1", "prod", run);
    start_backup(cat, run, "k/run");
    new_backup(cat, "a1", "db1", "prod", done);
    start_backup(cat, done, "k/done");
    complete_backup(cat, done, "k/done");
    new_backup(cat, "a1", "db1", "prod", bad);
    assert_int_equal(catalog_backup_fail(cat, bad, "x", &e), 0);

    /* start: only from queued */
    TU_ASSERT_ERR(catalog_backup_start(cat, run, NULL, &e), e, PGS_EORDER, "it is running");
    TU_ASSERT_ERR(catalog_backup_start(cat, done, NULL, &e), e, PGS_EORDER, "it is complete");
    TU_ASSERT_ERR(catalog_backup_start(cat, bad, NULL, &e), e, PGS_EORDER, "it is failed");
    /* complete: only from running */
    TU_ASSERT_ERR(catalog_backup_complete(cat, q, 1, 1, SHA_A, "k/q", &e), e, PGS_EORDER,
                  "it is queued");
    TU_ASSERT_ERR(catalog_backup_complete(cat, done, 1, 1, SHA_B, "k/other", &e), e, PGS_EORDER,
                  "it is complete");
    TU_ASSERT_ERR(catalog_backup_complete(cat, bad, 1, 1, SHA_A, "k/bad", &e), e, PGS_EORDER,
                  "it is failed");
    /* fail: nothing leaves complete or failed */
    TU_ASSERT_ERR(catalog_backup_fail(cat, done, "late", &e), e, PGS_EORDER, "it is complete");
    TU_ASSERT_ERR(catalog_backup_fail(cat, bad, "twice", &e), e, PGS_EORDER, "it is failed");
    /* details: only while running */
    catalog_backup_info info = {.server_version = "16.1"};
    TU_ASSERT_ERR(catalog_backup_update_info(cat, q, &info, &e), e, PGS_EORDER, "queued");
    TU_ASSERT_ERR(catalog_backup_update_info(cat, done, &info, &e), e, PGS_EORDER, "complete");
    /* unknown ids */
    const char *ghost = "20200101T000000Z-00000000";
    TU_ASSERT_ERR(catalog_backup_start(cat, ghost, NULL, &e), e, PGS_ENOTFOUND, ghost);
    TU_ASSERT_ERR(catalog_backup_complete(cat, ghost, 1, 1, SHA_A, "k", &e), e, PGS_ENOTFOUND,
                  ghost);
    TU_ASSERT_ERR(catalog_backup_fail(cat, ghost, "x", &e), e, PGS_ENOTFOUND, ghost);
    catalog_backup r;
    TU_ASSERT_ERR(catalog_backup_get(cat, ghost, &r, &e), e, PGS_ENOTFOUND, ghost);

    /* Nothing changed on the way. */
    assert_int_equal(state_of(cat, q), CATALOG_QUEUED);
    assert_int_equal(state_of(cat, run), CATALOG_RUNNING);
    assert_int_equal(state_of(cat, done), CATALOG_COMPLETE);
    assert_int_equal(state_of(cat, bad), CATALOG_FAILED);
    assert_int_equal(catalog_backup_get(cat, done, &r, &e), 0);
    assert_string_equal(r.sha256, SHA_A);
    assert_string_equal(r.storage_key, "k/done");
    assert_int_equal(catalog_backup_get(cat, bad, &r, &e), 0);
    assert_string_equal(r.error, "x");
    catalog_close(cat);
}

static void test_catalog_complete_requires_object(void **state)
{
    char id[CATALOG_ID_SIZE];
    pgs_error e = {0};
    catalog *cat = open_in(state, "c.db");
    add_agent(cat, "a1", "db1", "prod");
    new_backup(cat, "a1", "db1", "prod", id);
    start_backup(cat, id, "k/planned");

    TU_ASSERT_ERR(catalog_backup_complete(cat, id, 1, 1, NULL, "k/x", &e), e, PGS_EINVAL,
                  "SHA-256");
    TU_ASSERT_ERR(catalog_backup_complete(cat, id, 1, 1, &SHA_A[1], "k/x", &e), e, PGS_EINVAL,
                  "SHA-256");
    TU_ASSERT_ERR(catalog_backup_complete(cat, id, 1, 1, SHA_A "a", "k/x", &e), e, PGS_EINVAL,
                  "SHA-256");
    TU_ASSERT_ERR(
        catalog_backup_complete(cat, id, 1, 1,
                                "zaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                                "k/x", &e),
        e, PGS_EINVAL, "SHA-256");
    TU_ASSERT_ERR(catalog_backup_complete(cat, id, 1, 1, SHA_A, NULL, &e), e, PGS_EINVAL,
                  "storage key");
    TU_ASSERT_ERR(catalog_backup_complete(cat, id, 1, 1, SHA_A, "", &e), e, PGS_EINVAL,
                  "storage key is empty");
    TU_ASSERT_ERR(catalog_backup_complete(cat, id, 0, 1, SHA_A, "k/x", &e), e, PGS_EINVAL,
                  "empty object");
    TU_ASSERT_ERR(catalog_backup_complete(cat, id, UINT64_MAX, 1, SHA_A, "k/x", &e), e, PGS_ELIMIT,
                  "size");
    static const char *const bad_keys[] = {"/abs/key", "a//b", "a/../b", "../x", "a/./b",
                                           "a/b/",     "a\\b", "a/\n/b", ".."};
    for (size_t i = 0; i < sizeof(bad_keys) / sizeof(bad_keys[0]); i++) {
        int rc = catalog_backup_complete(cat, id, 1, 1, SHA_A, bad_keys[i], &e);
        if (rc != PGS_EINVAL)
            fail_msg("storage key #%zu accepted (rc %d)", i, rc);
    }
    char longkey[CATALOG_STORAGE_KEY_MAX + 2];
    memset(longkey, 'k', sizeof(longkey) - 1);
    longkey[sizeof(longkey) - 1] = '\0';
    TU_ASSERT_ERR(catalog_backup_complete(cat, id, 1, 1, SHA_A, longkey, &e), e, PGS_ELIMIT,
                  "storage key");
    assert_int_equal(state_of(cat, id), CATALOG_RUNNING);
    catalog_close(cat);
}

/* The schema enforces the same rules against any other writer. */
static void test_catalog_schema_enforces_rules(void **state)
{
    char path[600], id[CATALOG_ID_SIZE], done[CATALOG_ID_SIZE], sql[512];
    tu_path_in(state, "c.db", path, sizeof(path));
    catalog *cat = open_in(state, "c.db");
    add_agent(cat, "a1", "db1", "prod");
    new_backup(cat, "a1", "db1", "prod", id);
    new_backup(cat, "a1", "db1", "prod", done);
    start_backup(cat, id, "k/id");
    start_backup(cat, done, "k/done");
    complete_backup(cat, done, "k/done");

    /* complete without a digest, without a size, without a key */
    snprintf(sql, sizeof(sql),
             "UPDATE backups SET state = 'complete', finished_at = 'x', bytes = 1 WHERE id = '%s'",
             id);
    assert_int_equal(raw_exec(path, sql), SQLITE_CONSTRAINT);
    snprintf(sql, sizeof(sql),
             "UPDATE backups SET state = 'complete', finished_at = 'x', sha256 = '" SHA_A
             "' WHERE id = '%s'",
             id);
    assert_int_equal(raw_exec(path, sql), SQLITE_CONSTRAINT);
    snprintf(sql, sizeof(sql),
             "UPDATE backups SET state = 'complete', finished_at = 'x', sha256 = '" SHA_A
             "', bytes = 1, storage_key = NULL WHERE id = '%s'",
             id);
    assert_int_equal(raw_exec(path, sql), SQLITE_CONSTRAINT);
    /* an unknown state, a malformed digest */
    snprintf(sql, sizeof(sql), "UPDATE backups SET state = 'done' WHERE id = '%s'", id);
    assert_int_equal(raw_exec(path, sql), SQLITE_CONSTRAINT);
    snprintf(sql, sizeof(sql), "UPDATE backups SET sha256 = 'XYZ' WHERE id = '%s'", id);
    assert_int_equal(raw_exec(path, sql), SQLITE_CONSTRAINT);
    /* leaving complete, going back to queued, changing a complete backup's object */
    snprintf(sql, sizeof(sql), "UPDATE backups SET state = 'failed', error = 'x' WHERE id = '%s'",
             done);
    assert_int_equal(raw_exec(path, sql), SQLITE_CONSTRAINT);
    snprintf(sql, sizeof(sql), "UPDATE backups SET state = 'queued' WHERE id = '%s'", id);
    assert_int_equal(raw_exec(path, sql), SQLITE_CONSTRAINT);
    snprintf(sql, sizeof(sql), "UPDATE backups SET sha256 = '" SHA_B "' WHERE id = '%s'", done);
    assert_int_equal(raw_exec(path, sql), SQLITE_CONSTRAINT);
    /* a malformed id */
    assert_int_equal(raw_exec(path, "INSERT INTO backups (id, agent, database, environment,"
                                    " created_at) VALUES ('../x', 'a1', 'db1', 'prod', 'now')"),
                     SQLITE_CONSTRAINT);
    /* the legal path still works by hand */
    snprintf(sql, sizeof(sql),
             "UPDATE backups SET state = 'complete', finished_at = 'x', sha256 = '" SHA_A
             "', bytes = 1 WHERE id = '%s'",
             id);
    assert_int_equal(raw_exec(path, sql), SQLITE_OK);
    assert_int_equal(state_of(cat, id), CATALOG_COMPLETE);
    catalog_close(cat);
}

/* ---- crash recovery ---- */

/* The coordinator as it dies: backups created and started, then the process is killed (SIGKILL)
 * with its catalog open. */
static void crash_with_backups_in_flight(const char *path, char ids[3][CATALOG_ID_SIZE])
{
    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        catalog *cat = NULL;
        pgs_error e = {0};
        char out[3][CATALOG_ID_SIZE];
        catalog_backup_req req = {.agent = "a1", .database = "db1", .environment = "prod"};
        catalog_backup_info info = {.storage_key = "p/prod/a1/db1/run1.pgship"};
        if (catalog_open(path, &cat, &e) != 0 || catalog_backup_new(cat, &req, out[0], &e) ||
            catalog_backup_start(cat, out[0], &info, &e) ||
            catalog_backup_new(cat, &req, out[1], &e) ||
            catalog_backup_start(cat, out[1], NULL, &e) ||
            catalog_backup_new(cat, &req, out[2], &e))
            _exit(1);
        if (write(pipefd[1], out, sizeof(out)) != (ssize_t)sizeof(out))
            _exit(1);
        kill(getpid(), SIGKILL); /* as kill -9: no catalog_close, no exit handlers */
        _exit(1);
    }
    close(pipefd[1]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    assert_int_equal(read(pipefd[0], ids, 3 * CATALOG_ID_SIZE), 3 * CATALOG_ID_SIZE);
    close(pipefd[0]);
}

static int find_connected_cb(void *arg, const catalog_agent *a)
{
    if (a->connected)
        (*(int *)arg)++;
    return 0;
}

static void test_catalog_recover_after_crash(void **state)
{
    char path[600], ids[3][CATALOG_ID_SIZE], done[CATALOG_ID_SIZE], failed[CATALOG_ID_SIZE];
    catalog_recovered *rec = NULL;
    catalog_backup r;
    size_t n = 99;
    pgs_error e = {0};
    tu_path_in(state, "c.db", path, sizeof(path));

    catalog *cat = open_in(state, "c.db");
    add_agent(cat, "a1", "db1", "prod");
    new_backup(cat, "a1", "db1", "prod", done);
    start_backup(cat, done, "k/done");
    complete_backup(cat, done, "k/done");
    new_backup(cat, "a1", "db1", "prod", failed);
    assert_int_equal(catalog_backup_fail(cat, failed, "earlier", &e), 0);
    catalog_close(cat);

    crash_with_backups_in_flight(path, ids);

    cat = open_in(state, "c.db");
    assert_int_equal(state_of(cat, ids[0]), CATALOG_RUNNING);
    assert_int_equal(state_of(cat, ids[2]), CATALOG_QUEUED);
    const char *why = "coordinator restarted while the backup was running";
    assert_int_equal(catalog_recover(cat, why, &rec, &n, &e), 0);
    assert_int_equal(n, 3);
    assert_non_null(rec);
    /* Oldest first, with the storage key each had planned. */
    assert_string_equal(rec[0].id, ids[0]);
    assert_int_equal(rec[0].was, CATALOG_RUNNING);
    assert_string_equal(rec[0].storage_key, "p/prod/a1/db1/run1.pgship");
    assert_string_equal(rec[0].agent, "a1");
    assert_string_equal(rec[0].database, "db1");
    assert_string_equal(rec[0].environment, "prod");
    assert_string_equal(rec[1].id, ids[1]);
    assert_int_equal(rec[1].was, CATALOG_RUNNING);
    assert_string_equal(rec[1].storage_key, "");
    assert_string_equal(rec[2].id, ids[2]);
    assert_int_equal(rec[2].was, CATALOG_QUEUED);
    free(rec);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(catalog_backup_get(cat, ids[i], &r, &e), 0);
        assert_int_equal(r.state, CATALOG_FAILED);
        assert_string_equal(r.error, why);
        assert_string_not_equal(r.finished_at, "");
    }
    /* Finished backups are left alone; no agent is connected after a restart. */
    assert_int_equal(state_of(cat, done), CATALOG_COMPLETE);
    assert_int_equal(catalog_backup_get(cat, failed, &r, &e), 0);
    assert_string_equal(r.error, "earlier");
    int connected = 0;
    assert_int_equal(catalog_agents_list(cat, find_connected_cb, &connected, &e), 0);
    assert_int_equal(connected, 0);

    /* A second recovery finds nothing; out may be NULL. */
    rec = (catalog_recovered *)&n;
    assert_int_equal(catalog_recover(cat, NULL, &rec, &n, &e), 0);
    assert_int_equal(n, 0);
    assert_null(rec);
    assert_int_equal(catalog_recover(cat, NULL, NULL, NULL, &e), 0);
    catalog_close(cat);
}

/* ---- lists and latest ---- */

struct collect {
    int n;
    int stop_after; /* 0: never */
    int fail_with;  /* returned on the first row when < 0 */
    catalog *cat;   /* when set, tries to call into the catalog from the callback */
    int reentry_rc;
    char ids[16][CATALOG_ID_SIZE];
};

static int collect_cb(void *arg, const catalog_backup *b)
{
    struct collect *c = arg;
    if (c->fail_with < 0)
        return c->fail_with;
    if (c->cat != NULL) {
        catalog_backup other;
        pgs_error e = {0};
        c->reentry_rc = catalog_backup_get(c->cat, b->id, &other, &e);
    }
    if (c->n < 16)
        snprintf(c->ids[c->n], CATALOG_ID_SIZE, "%s", b->id);
    c->n++;
    return c->stop_after && c->n >= c->stop_after ? 1 : 0;
}

static void list(catalog *cat, const catalog_filter *f, struct collect *c)
{
    pgs_error e = {0};
    memset(c, 0, sizeof(*c));
    int rc = catalog_backup_list(cat, f, collect_cb, c, &e);
    if (rc != 0)
        fail_msg("catalog_backup_list: %d %s", rc, e.msg);
}

static void test_catalog_list_filters_and_order(void **state)
{
    /* ids[i] is created at T0 + i seconds, except 4 and 5 which share a millisecond. */
    char ids[7][CATALOG_ID_SIZE];
    struct collect c;
    pgs_error e = {0};
    int64_t now = T0;
    catalog *cat = open_in(state, "c.db");
    catalog_set_clock(cat, fixed_clock, &now);
    add_agent(cat, "a1", "db1", "prod");
    add_agent(cat, "a1", "db2", "prod");
    add_agent(cat, "a2", "db1", "staging");
    const char *agents[7] = {"a1", "a1", "a2", "a1", "a2", "a2", "a1"};
    const char *dbs[7] = {"db1", "db2", "db1", "db1", "db1", "db1", "db2"};
    for (int i = 0; i < 7; i++) {
        now = T0 + (i == 5 ? 4 : i) * 1000;
        new_backup(cat, agents[i], dbs[i], strcmp(agents[i], "a2") == 0 ? "staging" : "prod",
                   ids[i]);
    }
    start_backup(cat, ids[0], "k/0");
    complete_backup(cat, ids[0], "k/0");
    start_backup(cat, ids[3], "k/3");
    assert_int_equal(catalog_backup_fail(cat, ids[1], "x", &e), 0);

    /* All, newest first; 5 and 4 share a millisecond and come in reverse insertion order. */
    list(cat, NULL, &c);
    assert_int_equal(c.n, 7);
    const int all[7] = {6, 5, 4, 3, 2, 1, 0};
    for (int i = 0; i < 7; i++)
        assert_string_equal(c.ids[i], ids[all[i]]);
    /* The id's time is the creation time, so ids sort like backups (to the second). */
    assert_true(strncmp(ids[6], ids[0], 16) > 0);
    assert_memory_equal(ids[4], ids[5], 16);

    catalog_filter f = {.agent = "a1"};
    list(cat, &f, &c);
    assert_int_equal(c.n, 4);
    assert_string_equal(c.ids[0], ids[6]);
    assert_string_equal(c.ids[3], ids[0]);
    f = (catalog_filter){.agent = "a1", .database = "db1"};
    list(cat, &f, &c);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.ids[0], ids[3]);
    assert_string_equal(c.ids[1], ids[0]);
    f = (catalog_filter){.database = "db1"};
    list(cat, &f, &c);
    assert_int_equal(c.n, 5);
    f = (catalog_filter){.environment = "staging"};
    list(cat, &f, &c);
    assert_int_equal(c.n, 3);
    assert_string_equal(c.ids[0], ids[5]);
    f = (catalog_filter){.state = CATALOG_QUEUED};
    list(cat, &f, &c);
    assert_int_equal(c.n, 4);
    f = (catalog_filter){.state = CATALOG_COMPLETE};
    list(cat, &f, &c);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.ids[0], ids[0]);
    f = (catalog_filter){.agent = "a1", .state = CATALOG_RUNNING};
    list(cat, &f, &c);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.ids[0], ids[3]);
    f = (catalog_filter){.agent = "nobody"};
    list(cat, &f, &c);
    assert_int_equal(c.n, 0);
    f = (catalog_filter){.limit = 2};
    list(cat, &f, &c);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.ids[1], ids[5]);

    /* The callback stops the list (> 0), or fails it (< 0) with its own code. */
    memset(&c, 0, sizeof(c));
    c.stop_after = 3;
    assert_int_equal(catalog_backup_list(cat, NULL, collect_cb, &c, &e), 0);
    assert_int_equal(c.n, 3);
    memset(&c, 0, sizeof(c));
    c.fail_with = PGS_EINTR;
    assert_int_equal(catalog_backup_list(cat, NULL, collect_cb, &c, &e), PGS_EINTR);
    /* Calls from inside a callback are refused; the handle works again afterwards. */
    memset(&c, 0, sizeof(c));
    c.cat = cat;
    assert_int_equal(catalog_backup_list(cat, NULL, collect_cb, &c, &e), 0);
    assert_int_equal(c.reentry_rc, PGS_EINVAL);
    assert_int_equal(state_of(cat, ids[0]), CATALOG_COMPLETE);

    /* Bad filters are refused, not matched. */
    f = (catalog_filter){.agent = "a1' OR 1=1 --"};
    TU_ASSERT_ERR(catalog_backup_list(cat, &f, collect_cb, &c, &e), e, PGS_EINVAL, "agent name");
    f = (catalog_filter){.state = (enum catalog_state)9};
    TU_ASSERT_ERR(catalog_backup_list(cat, &f, collect_cb, &c, &e), e, PGS_EINVAL, "state");
    catalog_close(cat);
}

static void test_catalog_latest_complete(void **state)
{
    char a[CATALOG_ID_SIZE], b[CATALOG_ID_SIZE], c[CATALOG_ID_SIZE], d[CATALOG_ID_SIZE],
        other[CATALOG_ID_SIZE];
    catalog_backup r;
    pgs_error e = {0};
    int64_t now = T0;
    catalog *cat = open_in(state, "c.db");
    catalog_set_clock(cat, fixed_clock, &now);
    add_agent(cat, "a1", "db1", "prod");
    add_agent(cat, "a1", "db2", "prod");

    TU_ASSERT_ERR(catalog_latest_complete(cat, "a1", "db1", &r, &e), e, PGS_ENOTFOUND, "a1/db1");
    /* a is created first but its dump starts last: it holds the newest data. */
    new_backup(cat, "a1", "db1", "prod", a);
    now += 1000;
    new_backup(cat, "a1", "db1", "prod", b);
    now += 1000;
    start_backup(cat, b, "k/b");
    now += 1000;
    start_backup(cat, a, "k/a");
    complete_backup(cat, b, "k/b");
    complete_backup(cat, a, "k/a");
    /* Newer, but not complete: running, failed; and a newer complete one of another database. */
    now += 1000;
    new_backup(cat, "a1", "db1", "prod", c);
    start_backup(cat, c, "k/c");
    new_backup(cat, "a1", "db1", "prod", d);
    assert_int_equal(catalog_backup_fail(cat, d, "x", &e), 0);
    new_backup(cat, "a1", "db2", "prod", other);
    start_backup(cat, other, "k/o");
    complete_backup(cat, other, "k/o");

    /* A derived copy (a sanitized re-dump) of a, newer than everything: never "latest". */
    now += 1000;
    char derived[CATALOG_ID_SIZE];
    catalog_backup_req dreq = {
        .agent = "a1", .database = "db1", .environment = "prod", .source_backup_id = a};
    assert_int_equal(catalog_backup_new(cat, &dreq, derived, &e), 0);
    start_backup(cat, derived, "k/derived");
    complete_backup(cat, derived, "k/derived");

    assert_int_equal(catalog_latest_complete(cat, "a1", "db1", &r, &e), 0);
    assert_string_equal(r.id, a);
    assert_int_equal(r.state, CATALOG_COMPLETE);
    assert_int_equal(catalog_latest_complete(cat, "a1", "db2", &r, &e), 0);
    assert_string_equal(r.id, other);
    TU_ASSERT_ERR(catalog_latest_complete(cat, "a2", "db1", &r, &e), e, PGS_ENOTFOUND, NULL);
    TU_ASSERT_ERR(catalog_latest_complete(cat, "a1", "../db1", &r, &e), e, PGS_EINVAL,
                  "database name");
    catalog_close(cat);
}

/* ---- ids ---- */

static void test_catalog_id_format_and_validation(void **state)
{
    char id[CATALOG_ID_SIZE], src[CATALOG_ID_SIZE];
    catalog_backup r;
    pgs_error e = {0};
    int64_t now = T0 + 999;
    catalog *cat = open_in(state, "c.db");
    catalog_set_clock(cat, fixed_clock, &now);
    add_agent(cat, "a1", "db1", "prod");

    /* The time part comes from the clock; ids made in the same second still differ. */
    char seen[64][CATALOG_ID_SIZE];
    for (int i = 0; i < 64; i++) {
        new_backup(cat, "a1", "db1", "prod", seen[i]);
        assert_int_equal(strlen(seen[i]), CATALOG_ID_LEN);
        assert_true(catalog_id_valid(seen[i]));
        assert_memory_equal(seen[i], "20261121T160529Z-", 17);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(seen[i], seen[j]);
    }
    catalog_set_clock(cat, NULL, NULL);
    /* With the real clock, the id carries the current UTC time. */
    char before[32], after[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(before, sizeof(before), "%Y%m%dT%H%M%SZ", &tm);
    new_backup(cat, "a1", "db1", "prod", id);
    t = time(NULL);
    gmtime_r(&t, &tm);
    strftime(after, sizeof(after), "%Y%m%dT%H%M%SZ", &tm);
    assert_true(catalog_id_valid(id));
    assert_true(strncmp(id, before, 16) >= 0 && strncmp(id, after, 16) <= 0);

    static const char *const hostile[] = {
        "",
        "../../etc/passwd",
        "20261121T160529Z-0000000",   /* short */
        "20261121T160529Z-000000000", /* long */
        "20261121T160529Z-0000000G",  /* not hex */
        "20261121T160529Z-ABCDEF01",  /* upper case */
        "20261121t160529Z-00000000",  /* lower-case T */
        "20261121T160529z-00000000",  /* lower-case Z */
        "20261121T160529Z_00000000",  /* separator */
        "20261321T160529Z-00000000",  /* month 13 */
        "20261100T160529Z-00000000",  /* day 0 */
        "20261121T250529Z-00000000",  /* hour 25 */
        "20261121T166029Z-00000000",  /* minute 60 */
        "2026112XT160529Z-00000000",  /* letter in the date */
        "20261121T160529Z-0000/../",  /* path */
        "x' OR '1'='1",               /* SQL */
        "20261121T160529Z-0000000\n", /* newline */
        " 20261121T160529Z-00000000", /* leading space */
    };
    for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
        const char *h = hostile[i];
        if (catalog_id_valid(h))
            fail_msg("hostile id #%zu accepted", i);
        if (catalog_backup_get(cat, h, &r, &e) != PGS_EINVAL ||
            catalog_backup_start(cat, h, NULL, &e) != PGS_EINVAL ||
            catalog_backup_update_info(cat, h, NULL, &e) != PGS_EINVAL ||
            catalog_backup_complete(cat, h, 1, 1, SHA_A, "k", &e) != PGS_EINVAL ||
            catalog_backup_fail(cat, h, "x", &e) != PGS_EINVAL)
            fail_msg("hostile id #%zu not refused with PGS_EINVAL: %s", i, e.msg);
        /* The message does not echo the value. */
        if (h[0] != '\0' && strstr(e.msg, h) != NULL)
            fail_msg("hostile id #%zu echoed: %s", i, e.msg);
    }
    TU_ASSERT_ERR(catalog_backup_get(cat, NULL, &r, &e), e, PGS_EINVAL, "missing");
    assert_false(catalog_id_valid(NULL));

    /* source_backup_id: checked, must exist, kept. */
    catalog_backup_req req = {
        .agent = "a1", .database = "db1", .environment = "staging", .source_backup_id = "../x"};
    TU_ASSERT_ERR(catalog_backup_new(cat, &req, src, &e), e, PGS_EINVAL, "source backup id");
    req.source_backup_id = "20200101T000000Z-00000000";
    TU_ASSERT_ERR(catalog_backup_new(cat, &req, src, &e), e, PGS_ENOTFOUND, "source backup");
    req.source_backup_id = seen[0];
    assert_int_equal(catalog_backup_new(cat, &req, src, &e), 0);
    assert_int_equal(catalog_backup_get(cat, src, &r, &e), 0);
    assert_string_equal(r.source_backup_id, seen[0]);
    catalog_close(cat);
}

/* ---- agents, databases, bounds ---- */

static int find_agent_cb(void *arg, const catalog_agent *a)
{
    catalog_agent *want = arg;
    if (strcmp(a->name, want->name) == 0)
        *want = *a;
    return 0;
}

static int count_db_cb(void *arg, const catalog_database *d)
{
    (void)d;
    (*(int *)arg)++;
    return 0;
}

static void test_catalog_agents_and_databases(void **state)
{
    catalog_agent a;
    char id[CATALOG_ID_SIZE];
    pgs_error e = {0};
    int64_t now = T0;
    catalog *cat = open_in(state, "c.db");
    catalog_set_clock(cat, fixed_clock, &now);

    assert_int_equal(
        catalog_agent_seen(cat, "web-1", "ed25519:aa", "pgship-identity-v1 AAAA", "0.1.0", 1, &e),
        0);
    now += 5000;
    /* NULL keeps what is recorded. */
    assert_int_equal(catalog_agent_seen(cat, "web-1", NULL, NULL, NULL, 1, &e), 0);
    memset(&a, 0, sizeof(a));
    strcpy(a.name, "web-1");
    assert_int_equal(catalog_agents_list(cat, find_agent_cb, &a, &e), 0);
    assert_string_equal(a.key_id, "ed25519:aa");
    assert_string_equal(a.public_key, "pgship-identity-v1 AAAA");
    assert_string_equal(a.version, "0.1.0");
    assert_string_equal(a.first_seen, "2026-11-21T16:05:29.000Z");
    assert_string_equal(a.last_seen, "2026-11-21T16:05:34.000Z");
    assert_int_equal(a.connected, 1);
    now += 1000;
    assert_int_equal(catalog_agent_disconnected(cat, "web-1", &e), 0);
    assert_int_equal(catalog_agents_list(cat, find_agent_cb, &a, &e), 0);
    assert_int_equal(a.connected, 0);
    assert_string_equal(a.last_seen, "2026-11-21T16:05:35.000Z");
    TU_ASSERT_ERR(catalog_agent_disconnected(cat, "ghost", &e), e, PGS_ENOTFOUND, "ghost");

    /* Databases belong to known agents. */
    assert_int_equal(catalog_database_seen(cat, "web-1", "shop", "prod", "15.5", &e), 0);
    assert_int_equal(catalog_database_seen(cat, "web-1", "shop", "prod", NULL, &e), 0);
    assert_int_equal(catalog_database_seen(cat, "web-1", "blog", "prod", "15.5", &e), 0);
    TU_ASSERT_ERR(catalog_database_seen(cat, "ghost", "shop", "prod", NULL, &e), e, PGS_ENOTFOUND,
                  "ghost");
    int n = 0;
    assert_int_equal(catalog_databases_list(cat, "web-1", count_db_cb, &n, &e), 0);
    assert_int_equal(n, 2);
    n = 0;
    assert_int_equal(catalog_databases_list(cat, NULL, count_db_cb, &n, &e), 0);
    assert_int_equal(n, 2);

    /* Backups too. */
    catalog_backup_req req = {.agent = "ghost", .database = "shop", .environment = "prod"};
    TU_ASSERT_ERR(catalog_backup_new(cat, &req, id, &e), e, PGS_ENOTFOUND, "agent ghost");
    TU_ASSERT_ERR(catalog_backup_new(cat, NULL, id, &e), e, PGS_EINVAL, NULL);
    catalog_close(cat);
}

static void test_catalog_strings_bounded(void **state)
{
    char id[CATALOG_ID_SIZE], big[4096];
    catalog_backup r;
    pgs_error e = {0};
    catalog *cat = open_in(state, "c.db");
    add_agent(cat, "a1", "db1", "prod");

    /* Names: 63 bytes of the safe set. */
    char name[CATALOG_NAME_MAX + 2];
    memset(name, 'n', CATALOG_NAME_MAX);
    name[CATALOG_NAME_MAX] = '\0';
    assert_int_equal(catalog_agent_seen(cat, name, NULL, NULL, NULL, 0, &e), 0);
    name[CATALOG_NAME_MAX] = 'n';
    name[CATALOG_NAME_MAX + 1] = '\0';
    TU_ASSERT_ERR(catalog_agent_seen(cat, name, NULL, NULL, NULL, 0, &e), e, PGS_ELIMIT,
                  "agent name");
    static const char *const bad_names[] = {"",  "a b",    "a/b", "../a", ".a", "-a", "a\nb",
                                            "é", "a;DROP", "a'",  "a\"",  "a%", "a*", "a\\b"};
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        if (catalog_name_valid(bad_names[i]))
            fail_msg("bad name #%zu accepted", i);
        catalog_backup_req req = {.agent = "a1", .database = bad_names[i], .environment = "prod"};
        if (catalog_agent_seen(cat, bad_names[i], NULL, NULL, NULL, 0, &e) != PGS_EINVAL ||
            catalog_backup_new(cat, &req, id, &e) != PGS_EINVAL)
            fail_msg("bad name #%zu not refused: %s", i, e.msg);
    }
    assert_true(catalog_name_valid("db_1.v2-x"));

    /* Labels: 128 bytes of UTF-8 without control characters. */
    catalog_backup_req req = {.agent = "a1", .database = "db1", .environment = "prod"};
    char label[CATALOG_LABEL_MAX + 2];
    memset(label, 'l', CATALOG_LABEL_MAX);
    label[CATALOG_LABEL_MAX] = '\0';
    req.label = label;
    assert_int_equal(catalog_backup_new(cat, &req, id, &e), 0);
    assert_int_equal(catalog_backup_get(cat, id, &r, &e), 0);
    assert_string_equal(r.label, label);
    strcat(label, "l");
    TU_ASSERT_ERR(catalog_backup_new(cat, &req, id, &e), e, PGS_ELIMIT, "label");
    req.label = "before migration \xc3\xa9\xe2\x82\xac \xf0\x9f\x90\x98";
    assert_int_equal(catalog_backup_new(cat, &req, id, &e), 0);
    static const char *const bad_labels[] = {"tab\there",
                                             "nl\n",
                                             "esc\x1b[31m",
                                             "del\x7f",
                                             "c1 \xc2\x85",
                                             "bad \xff",
                                             "cut \xc3",
                                             "overlong \xc0\xaf",
                                             "surrogate \xed\xa0\x80"};
    for (size_t i = 0; i < sizeof(bad_labels) / sizeof(bad_labels[0]); i++) {
        req.label = bad_labels[i];
        if (catalog_backup_new(cat, &req, id, &e) != PGS_EINVAL)
            fail_msg("bad label #%zu accepted", i);
    }
    req.label = NULL;
    memset(big, 'r', CATALOG_REQUESTED_BY_MAX + 1);
    big[CATALOG_REQUESTED_BY_MAX + 1] = '\0';
    req.requested_by = big;
    TU_ASSERT_ERR(catalog_backup_new(cat, &req, id, &e), e, PGS_ELIMIT, "requester");
    req.requested_by = "operator alice";
    assert_int_equal(catalog_backup_new(cat, &req, id, &e), 0);

    /* Versions, recipients, agent keys. */
    memset(big, 'v', CATALOG_VERSION_MAX + 1);
    big[CATALOG_VERSION_MAX + 1] = '\0';
    catalog_backup_info info = {.server_version = big};
    TU_ASSERT_ERR(catalog_backup_start(cat, id, &info, &e), e, PGS_ELIMIT, "server version");
    info = (catalog_backup_info){.pg_dump_version = "pg_dump\n15"};
    TU_ASSERT_ERR(catalog_backup_start(cat, id, &info, &e), e, PGS_EINVAL, "pg_dump version");
    const char *dup[] = {RCPT_1, RCPT_1};
    info = (catalog_backup_info){.recipients = dup, .nrecipients = 2};
    TU_ASSERT_ERR(catalog_backup_start(cat, id, &info, &e), e, PGS_EINVAL, "twice");
    const char *badr[] = {RCPT_1, "001122334455667G"};
    info = (catalog_backup_info){.recipients = badr, .nrecipients = 2};
    TU_ASSERT_ERR(catalog_backup_start(cat, id, &info, &e), e, PGS_EINVAL, "recipient 2");
    const char *many[CATALOG_RECIPIENTS_MAX + 1];
    char manybuf[CATALOG_RECIPIENTS_MAX + 1][CATALOG_RECIPIENT_ID_LEN + 1];
    for (int i = 0; i <= CATALOG_RECIPIENTS_MAX; i++) {
        snprintf(manybuf[i], sizeof(manybuf[i]), "%016x", i);
        many[i] = manybuf[i];
    }
    info = (catalog_backup_info){.recipients = many, .nrecipients = CATALOG_RECIPIENTS_MAX + 1};
    TU_ASSERT_ERR(catalog_backup_start(cat, id, &info, &e), e, PGS_ELIMIT, "recipients");
    info.nrecipients = CATALOG_RECIPIENTS_MAX;
    assert_int_equal(catalog_backup_start(cat, id, &info, &e), 0);
    assert_int_equal(catalog_backup_get(cat, id, &r, &e), 0);
    assert_int_equal(r.nrecipients, CATALOG_RECIPIENTS_MAX);
    assert_string_equal(r.recipients[CATALOG_RECIPIENTS_MAX - 1], many[CATALOG_RECIPIENTS_MAX - 1]);
    TU_ASSERT_ERR(catalog_agent_seen(cat, "a1", "key id", NULL, NULL, 1, &e), e, PGS_EINVAL,
                  "key id");
    memset(big, 'p', CATALOG_PUBLIC_KEY_MAX + 1);
    big[CATALOG_PUBLIC_KEY_MAX + 1] = '\0';
    TU_ASSERT_ERR(catalog_agent_seen(cat, "a1", NULL, big, NULL, 1, &e), e, PGS_ELIMIT,
                  "public key");

    /* Failure reasons are always recorded: cleaned, cut to 1000 bytes at a character. */
    char reason[5000];
    size_t pos = 0;
    pos += (size_t)snprintf(reason, sizeof(reason), "pg_dump: error:\x01 bad \xff byte\r\n");
    while (pos + 2 < sizeof(reason) - 1) {
        memcpy(reason + pos, "\xc3\xa9", 2); /* é: a cut may fall inside it */
        pos += 2;
    }
    reason[pos] = '\0';
    assert_int_equal(catalog_backup_fail(cat, id, reason, &e), 0);
    assert_int_equal(catalog_backup_get(cat, id, &r, &e), 0);
    assert_true(strlen(r.error) <= CATALOG_ERROR_MAX);
    assert_true(strlen(r.error) >= CATALOG_ERROR_MAX - 4);
    assert_memory_equal(r.error, "pg_dump: error:  bad ? byte \n", 29);
    assert_string_equal(r.error + strlen(r.error) - 5, "\xc3\xa9...");
    json_t *j = catalog_backup_to_json(&r); /* proves it is valid UTF-8 */
    assert_non_null(j);
    json_decref(j);

    /* Cuts inside 3- and 4-byte characters, at every alignment. */
    static const char *const wide[] = {"\xe2\x82\xac", "\xf0\x9f\x90\x98"};
    for (int w = 0; w < 2; w++) {
        for (size_t shift = 0; shift < 4; shift++) {
            size_t wl = strlen(wide[w]);
            memset(reason, 'x', shift);
            for (pos = shift; pos + wl < 1100; pos += wl)
                memcpy(reason + pos, wide[w], wl);
            reason[pos] = '\0';
            new_backup(cat, "a1", "db1", "prod", id);
            assert_int_equal(catalog_backup_fail(cat, id, reason, &e), 0);
            assert_int_equal(catalog_backup_get(cat, id, &r, &e), 0);
            size_t len = strlen(r.error);
            assert_true(len <= CATALOG_ERROR_MAX && len > CATALOG_ERROR_MAX - 3 - wl);
            assert_string_equal(r.error + len - 3, "...");
            assert_memory_equal(r.error + len - 3 - wl, wide[w], wl);
            j = catalog_backup_to_json(&r);
            assert_non_null(j);
            json_decref(j);
        }
    }

    new_backup(cat, "a1", "db1", "prod", id);
    assert_int_equal(catalog_backup_fail(cat, id, " \n\t", &e), 0);
    assert_int_equal(catalog_backup_get(cat, id, &r, &e), 0);
    assert_string_equal(r.error, "no reason given");
    new_backup(cat, "a1", "db1", "prod", id);
    assert_int_equal(catalog_backup_fail(cat, id, NULL, &e), 0);
    catalog_close(cat);
}

/* ---- JSON ---- */

static void test_catalog_json_fields(void **state)
{
    char id[CATALOG_ID_SIZE];
    catalog_backup r;
    pgs_error e = {0};
    int64_t now = T0;
    catalog *cat = open_in(state, "c.db");
    catalog_set_clock(cat, fixed_clock, &now);
    add_agent(cat, "a1", "db1", "prod");
    catalog_backup_req req = {.agent = "a1",
                              .database = "db1",
                              .environment = "prod",
                              .label = "pre-migration",
                              .requested_by = "alice",
                              .scheduled = "-bad"};
    TU_ASSERT_ERR(catalog_backup_new(cat, &req, id, &e), e, PGS_EINVAL, "schedule name");
    req.scheduled = "nightly";
    assert_int_equal(catalog_backup_new(cat, &req, id, &e), 0);

    /* Queued: nothing of the object yet. */
    assert_int_equal(catalog_backup_get(cat, id, &r, &e), 0);
    json_t *j = catalog_backup_to_json(&r);
    assert_non_null(j);
    static const char *const fields[] = {
        "id",          "agent",       "database",      "environment",
        "label",       "state",       "error",         "started_at",
        "finished_at", "size_bytes",  "sha256",        "storage_key",
        "created_at",  "recipients",  "requested_by",  "source_backup_id",
        "pinned",      "verified_at", "verify_result", "scheduled"};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (json_object_get(j, fields[i]) == NULL)
            fail_msg("field %s missing", fields[i]);
    assert_string_equal(json_string_value(json_object_get(j, "id")), id);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "queued");
    assert_string_equal(json_string_value(json_object_get(j, "label")), "pre-migration");
    assert_string_equal(json_string_value(json_object_get(j, "requested_by")), "alice");
    assert_true(json_is_null(json_object_get(j, "error")));
    assert_true(json_is_null(json_object_get(j, "started_at")));
    assert_true(json_is_null(json_object_get(j, "size_bytes")));
    assert_true(json_is_null(json_object_get(j, "sha256")));
    assert_true(json_is_null(json_object_get(j, "storage_key")));
    assert_true(json_is_null(json_object_get(j, "source_backup_id")));
    assert_true(json_is_false(json_object_get(j, "pinned")));
    assert_true(json_is_null(json_object_get(j, "verified_at")));
    assert_true(json_is_null(json_object_get(j, "verify_result")));
    assert_string_equal(json_string_value(json_object_get(j, "scheduled")), "nightly");
    json_decref(j);
    assert_int_equal(catalog_backup_pin(cat, id, 1, &e), 0);
    assert_int_equal(catalog_backup_get(cat, id, &r, &e), 0);
    j = catalog_backup_to_json(&r);
    assert_true(json_is_true(json_object_get(j, "pinned")));
    json_decref(j);

    /* Complete. */
    now += 1000;
    start_backup(cat, id, "p/prod/a1/db1/x.pgship");
    now += 1000;
    complete_backup(cat, id, "p/prod/a1/db1/x.pgship");
    assert_int_equal(catalog_backup_get(cat, id, &r, &e), 0);
    j = catalog_backup_to_json(&r);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "complete");
    assert_string_equal(json_string_value(json_object_get(j, "agent")), "a1");
    assert_string_equal(json_string_value(json_object_get(j, "database")), "db1");
    assert_string_equal(json_string_value(json_object_get(j, "environment")), "prod");
    assert_string_equal(json_string_value(json_object_get(j, "started_at")),
                        "2026-11-21T16:05:30.000Z");
    assert_string_equal(json_string_value(json_object_get(j, "finished_at")),
                        "2026-11-21T16:05:31.000Z");
    assert_int_equal(json_integer_value(json_object_get(j, "size_bytes")), 1234);
    assert_int_equal(json_integer_value(json_object_get(j, "dump_bytes")), 5678);
    assert_string_equal(json_string_value(json_object_get(j, "sha256")), SHA_A);
    assert_string_equal(json_string_value(json_object_get(j, "storage_key")),
                        "p/prod/a1/db1/x.pgship");
    json_t *rc = json_object_get(j, "recipients");
    assert_int_equal(json_array_size(rc), 2);
    assert_string_equal(json_string_value(json_array_get(rc, 0)), RCPT_1);
    assert_true(json_is_null(json_object_get(j, "error")));
    json_decref(j);

    /* Failed. */
    new_backup(cat, "a1", "db1", "prod", id);
    assert_int_equal(catalog_backup_fail(cat, id, "no space left on device", &e), 0);
    assert_int_equal(catalog_backup_get(cat, id, &r, &e), 0);
    j = catalog_backup_to_json(&r);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "failed");
    assert_string_equal(json_string_value(json_object_get(j, "error")), "no space left on device");
    assert_true(json_is_null(json_object_get(j, "label")));
    json_decref(j);
    catalog_close(cat);
}

static void test_catalog_state_names(void **state)
{
    (void)state;
    enum catalog_state s;
    for (int i = CATALOG_QUEUED; i <= CATALOG_FAILED; i++) {
        assert_int_equal(catalog_state_parse(catalog_state_name((enum catalog_state)i), &s), 0);
        assert_int_equal(s, i);
    }
    assert_int_equal(catalog_state_parse("any", &s), PGS_EINVAL);
    assert_int_equal(catalog_state_parse("RUNNING", &s), PGS_EINVAL);
    assert_int_equal(catalog_state_parse(NULL, &s), PGS_EINVAL);
    assert_string_equal(catalog_state_name((enum catalog_state)42), "?");
}

/* ---- restores ---- */

/* A complete backup of agent/db: a restore's source. */
static void complete_source(catalog *cat, const char *agent, const char *db, const char *env,
                            char id[CATALOG_ID_SIZE])
{
    new_backup(cat, agent, db, env, id);
    start_backup(cat, id, "k/src");
    complete_backup(cat, id, "k/src");
}

/* A queued restore of source (a backup id) into a2/db1 in staging. */
static void new_restore(catalog *cat, const char *kind, const char *source, const char *profile,
                        char id[CATALOG_ID_SIZE])
{
    pgs_error e = {0};
    catalog_restore_req req = {.kind = kind,
                               .requested_by = "api",
                               .source = source,
                               .source_backup_id = catalog_id_valid(source) ? source : NULL,
                               .target_agent = "a2",
                               .target_database = "db1",
                               .target_environment = "staging",
                               .profile = profile,
                               .options_json = "{\"jobs\": 4, \"keep_old\": false}"};
    int rc = catalog_restore_new(cat, &req, id, &e);
    if (rc != 0)
        fail_msg("catalog_restore_new: %d %s", rc, e.msg);
}

static void get_restore(catalog *cat, const char *id, catalog_restore *r)
{
    pgs_error e = {0};
    int rc = catalog_restore_get(cat, id, r, &e);
    if (rc != 0)
        fail_msg("catalog_restore_get: %d %s", rc, e.msg);
}

static enum catalog_state restore_state_of(catalog *cat, const char *id)
{
    catalog_restore r;
    get_restore(cat, id, &r);
    catalog_restore_clear(&r);
    return r.state;
}

static void test_catalog_restore_legal_transitions(void **state)
{
    char src[CATALOG_ID_SIZE], safety[CATALOG_ID_SIZE], a[CATALOG_ID_SIZE], b[CATALOG_ID_SIZE],
        c[CATALOG_ID_SIZE];
    catalog_restore r;
    pgs_error e = {0};
    int64_t now = T0;
    catalog *cat = open_in(state, "c.db");
    catalog_set_clock(cat, fixed_clock, &now);
    add_agent(cat, "a1", "db1", "prod");
    add_agent(cat, "a2", "db1", "staging");
    complete_source(cat, "a1", "db1", "prod", src);
    complete_source(cat, "a2", "db1", "staging", safety);

    /* queued -> running -> complete, a sync whose source becomes known on the way */
    catalog_restore_req req = {.kind = "sync",
                               .requested_by = "alice",
                               .source = "a1/db1",
                               .source_agent = "a1",
                               .source_database = "db1",
                               .source_environment = "prod",
                               .target_agent = "a2",
                               .target_database = "db1",
                               .target_environment = "staging",
                               .profile = "app-anonymize",
                               .sanitizer_agent = "",
                               .options_json = "{ \"jobs\" : 4,\n \"tables\": [\"users\"] }"};
    assert_int_equal(catalog_restore_new(cat, &req, a, &e), 0);
    assert_true(catalog_id_valid(a));
    get_restore(cat, a, &r);
    assert_int_equal(r.state, CATALOG_QUEUED);
    assert_string_equal(r.kind, "sync");
    assert_string_equal(r.requested_by, "alice");
    assert_string_equal(r.source, "a1/db1");
    assert_string_equal(r.source_backup_id, "");
    assert_string_equal(r.source_environment, "prod");
    assert_string_equal(r.target_agent, "a2");
    assert_string_equal(r.target_environment, "staging");
    assert_string_equal(r.profile, "app-anonymize");
    assert_string_equal(r.sanitizer_agent, "");
    assert_string_equal(r.step, "");
    assert_string_equal(r.created_at, "2026-11-21T16:05:29.000Z");
    assert_string_equal(r.started_at, "");
    /* options are stored compact */
    assert_string_equal(r.options_json, "{\"jobs\":4,\"tables\":[\"users\"]}");
    assert_null(r.report_json);
    catalog_restore_clear(&r);
    catalog_restore_clear(&r); /* twice is harmless */

    now += 1000;
    assert_int_equal(catalog_restore_start(cat, a, "backup", &e), 0);
    get_restore(cat, a, &r);
    assert_int_equal(r.state, CATALOG_RUNNING);
    assert_string_equal(r.step, "backup");
    assert_string_equal(r.started_at, "2026-11-21T16:05:30.000Z");
    catalog_restore_clear(&r);
    catalog_restore_change u = {.step = "safety", .source_backup_id = src};
    assert_int_equal(catalog_restore_update(cat, a, &u, &e), 0);
    u = (catalog_restore_change){.step = "restore", .safety_backup_id = safety};
    assert_int_equal(catalog_restore_update(cat, a, &u, &e), 0);
    assert_int_equal(catalog_restore_update(cat, a, NULL, &e), 0); /* nothing: keeps all */
    get_restore(cat, a, &r);
    assert_string_equal(r.step, "restore");
    assert_string_equal(r.source_backup_id, src);
    assert_string_equal(r.safety_backup_id, safety);
    assert_string_equal(r.source_agent, "a1");
    catalog_restore_clear(&r);
    now += 60000;
    assert_int_equal(catalog_restore_finish(cat, a, 1, "ignored", "ignored",
                                            "{\"steps\": [{\"name\": \"unpack\", \"ms\": 12, "
                                            "\"ok\": true}], \"tables\": []}",
                                            &e),
                     0);
    get_restore(cat, a, &r);
    assert_int_equal(r.state, CATALOG_COMPLETE);
    assert_string_equal(r.step, "done");
    assert_string_equal(r.error, "");
    assert_string_equal(r.finished_at, "2026-11-21T16:06:30.000Z");
    assert_string_equal(r.report_json,
                        "{\"steps\":[{\"name\":\"unpack\",\"ms\":12,\"ok\":true}],\"tables\":[]}");
    catalog_restore_clear(&r);

    /* queued -> failed: the step stays empty when none is given */
    new_restore(cat, "restore", src, NULL, b);
    assert_int_equal(catalog_restore_finish(cat, b, 0, NULL, "target agent went away", NULL, &e),
                     0);
    get_restore(cat, b, &r);
    assert_int_equal(r.state, CATALOG_FAILED);
    assert_string_equal(r.step, "");
    assert_string_equal(r.error, "target agent went away");
    assert_string_equal(r.started_at, "");
    assert_string_not_equal(r.finished_at, "");
    assert_null(r.report_json);
    assert_string_equal(r.options_json, "{\"jobs\":4,\"keep_old\":false}");
    catalog_restore_clear(&r);

    /* queued -> running -> failed, in the agent's step, with its report */
    new_restore(cat, "restore", src, "app-anonymize", c);
    assert_int_equal(catalog_restore_start(cat, c, "restore", &e), 0);
    assert_int_equal(
        catalog_restore_finish(cat, c, 0, "check", "2 rows failed the checks\n",
                               "{\"check_failures\": [{\"query\": 1, \"row\": [\"x\"]}]}", &e),
        0);
    get_restore(cat, c, &r);
    assert_int_equal(r.state, CATALOG_FAILED);
    assert_string_equal(r.step, "check");
    assert_string_equal(r.error, "2 rows failed the checks");
    assert_non_null(strstr(r.report_json, "check_failures"));
    catalog_restore_clear(&r);
    catalog_close(cat);
}

static void test_catalog_restore_illegal_transitions(void **state)
{
    char src[CATALOG_ID_SIZE], q[CATALOG_ID_SIZE], run[CATALOG_ID_SIZE], done[CATALOG_ID_SIZE],
        bad[CATALOG_ID_SIZE], nosrc[CATALOG_ID_SIZE];
    pgs_error e = {0};
    catalog *cat = open_in(state, "c.db");
    add_agent(cat, "a1", "db1", "prod");
    add_agent(cat, "a2", "db1", "staging");
    complete_source(cat, "a1", "db1", "prod", src);
    new_restore(cat, "restore", src, NULL, q);
    new_restore(cat, "restore", src, NULL, run);
    assert_int_equal(catalog_restore_start(cat, run, "restore", &e), 0);
    new_restore(cat, "restore", src, NULL, done);
    assert_int_equal(catalog_restore_start(cat, done, "restore", &e), 0);
    assert_int_equal(catalog_restore_finish(cat, done, 1, NULL, NULL, "{}", &e), 0);
    new_restore(cat, "restore", src, NULL, bad);
    assert_int_equal(catalog_restore_finish(cat, bad, 0, "dispatch", "x", NULL, &e), 0);

    /* start: only from queued */
    TU_ASSERT_ERR(catalog_restore_start(cat, run, "restore", &e), e, PGS_EORDER, "it is running");
    TU_ASSERT_ERR(catalog_restore_start(cat, done, "restore", &e), e, PGS_EORDER, "it is complete");
    TU_ASSERT_ERR(catalog_restore_start(cat, bad, "restore", &e), e, PGS_EORDER, "it is failed");
    /* progress: only while running */
    catalog_restore_change u = {.step = "swap"};
    TU_ASSERT_ERR(catalog_restore_update(cat, q, &u, &e), e, PGS_EORDER, "it is queued");
    TU_ASSERT_ERR(catalog_restore_update(cat, done, &u, &e), e, PGS_EORDER, "it is complete");
    TU_ASSERT_ERR(catalog_restore_update(cat, bad, &u, &e), e, PGS_EORDER, "it is failed");
    /* complete: only from running */
    TU_ASSERT_ERR(catalog_restore_finish(cat, q, 1, NULL, NULL, NULL, &e), e, PGS_EORDER,
                  "it is queued");
    TU_ASSERT_ERR(catalog_restore_finish(cat, done, 1, NULL, NULL, NULL, &e), e, PGS_EORDER,
                  "it is complete");
    TU_ASSERT_ERR(catalog_restore_finish(cat, bad, 1, NULL, NULL, NULL, &e), e, PGS_EORDER,
                  "it is failed");
    /* fail: nothing leaves complete or failed */
    TU_ASSERT_ERR(catalog_restore_finish(cat, done, 0, "swap", "late", NULL, &e), e, PGS_EORDER,
                  "it is complete");
    TU_ASSERT_ERR(catalog_restore_finish(cat, bad, 0, "swap", "twice", NULL, &e), e, PGS_EORDER,
                  "it is failed");
    /* complete names what was restored */
    catalog_restore_req req = {.kind = "sync",
                               .source = "a1/db1",
                               .target_agent = "a2",
                               .target_database = "db1",
                               .target_environment = "staging"};
    assert_int_equal(catalog_restore_new(cat, &req, nosrc, &e), 0);
    assert_int_equal(catalog_restore_start(cat, nosrc, "backup", &e), 0);
    TU_ASSERT_ERR(catalog_restore_finish(cat, nosrc, 1, NULL, NULL, NULL, &e), e, PGS_EINVAL,
                  "source backup was never recorded");
    assert_int_equal(restore_state_of(cat, nosrc), CATALOG_RUNNING);
    /* unknown ids, unknown backups */
    const char *ghost = "20200101T000000Z-00000000";
    catalog_restore r;
    TU_ASSERT_ERR(catalog_restore_start(cat, ghost, "restore", &e), e, PGS_ENOTFOUND, ghost);
    TU_ASSERT_ERR(catalog_restore_update(cat, ghost, &u, &e), e, PGS_ENOTFOUND, ghost);
    TU_ASSERT_ERR(catalog_restore_finish(cat, ghost, 0, NULL, "x", NULL, &e), e, PGS_ENOTFOUND,
                  ghost);
    TU_ASSERT_ERR(catalog_restore_get(cat, ghost, &r, &e), e, PGS_ENOTFOUND, ghost);
    assert_null(r.options_json);
    u = (catalog_restore_change){.safety_backup_id = ghost};
    TU_ASSERT_ERR(catalog_restore_update(cat, run, &u, &e), e, PGS_ENOTFOUND, ghost);
    req.source_backup_id = ghost;
    TU_ASSERT_ERR(catalog_restore_new(cat, &req, nosrc, &e), e, PGS_ENOTFOUND, ghost);
    req.source_backup_id = NULL;
    req.target_agent = "nobody";
    TU_ASSERT_ERR(catalog_restore_new(cat, &req, nosrc, &e), e, PGS_ENOTFOUND, "agent nobody");

    /* Nothing changed on the way. */
    assert_int_equal(restore_state_of(cat, q), CATALOG_QUEUED);
    assert_int_equal(restore_state_of(cat, run), CATALOG_RUNNING);
    assert_int_equal(restore_state_of(cat, done), CATALOG_COMPLETE);
    get_restore(cat, bad, &r);
    assert_int_equal(r.state, CATALOG_FAILED);
    assert_string_equal(r.error, "x");
    assert_string_equal(r.step, "dispatch");
    catalog_restore_clear(&r);
    get_restore(cat, run, &r);
    assert_string_equal(r.step, "restore");
    assert_string_equal(r.safety_backup_id, "");
    catalog_restore_clear(&r);
    catalog_close(cat);
}

/* The schema enforces the same rules against any other writer. */
static void test_catalog_restore_schema_enforces_rules(void **state)
{
    char path[600], src[CATALOG_ID_SIZE], q[CATALOG_ID_SIZE], run[CATALOG_ID_SIZE],
        done[CATALOG_ID_SIZE], failed[CATALOG_ID_SIZE], sql[600];
    pgs_error e = {0};
    tu_path_in(state, "c.db", path, sizeof(path));
    catalog *cat = open_in(state, "c.db");
    add_agent(cat, "a1", "db1", "prod");
    add_agent(cat, "a2", "db1", "staging");
    complete_source(cat, "a1", "db1", "prod", src);
    new_restore(cat, "restore", src, NULL, q);
    new_restore(cat, "restore", src, NULL, run);
    assert_int_equal(catalog_restore_start(cat, run, "pg_restore", &e), 0);
    new_restore(cat, "restore", src, NULL, done);
    assert_int_equal(catalog_restore_start(cat, done, "restore", &e), 0);
    assert_int_equal(catalog_restore_finish(cat, done, 1, NULL, NULL, NULL, &e), 0);
    new_restore(cat, "restore", src, NULL, failed);
    assert_int_equal(catalog_restore_finish(cat, failed, 0, NULL, "x", NULL, &e), 0);

    static const char *const refused[] = {
        /* skipping running, going back, leaving a final state */
        "UPDATE restores SET state = 'complete', step = 'done', finished_at = 'x' WHERE id = '%s'",
        "UPDATE restores SET state = 'queued' WHERE id = '%s'",
        "UPDATE restores SET state = 'done' WHERE id = '%s'",
        /* running without a step, failed without a reason */
        "UPDATE restores SET state = 'running', started_at = 'x' WHERE id = '%s'",
        "UPDATE restores SET state = 'failed', finished_at = 'x' WHERE id = '%s'",
        /* malformed steps, options, reports */
        "UPDATE restores SET step = 'Pg Restore' WHERE id = '%s'",
        "UPDATE restores SET step = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' WHERE id = '%s'",
        "UPDATE restores SET options = '[]' WHERE id = '%s'",
        "UPDATE restores SET options = '{' || zeroblob(20000) || '}' WHERE id = '%s'",
        "UPDATE restores SET report = 'text' WHERE id = '%s'",
        "UPDATE restores SET kind = 'copy' WHERE id = '%s'",
        "UPDATE restores SET source = '' WHERE id = '%s'",
        /* references (a connection enforces them when it turns foreign keys on, as ours do) */
        "PRAGMA foreign_keys = ON; UPDATE restores SET target_agent = 'nobody' WHERE id = '%s'",
        ("PRAGMA foreign_keys = ON; UPDATE restores SET source_backup_id = "
         "'20200101T000000Z-00000000' WHERE id = '%s'"),
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        snprintf(sql, sizeof(sql), refused[i], q);
        if (raw_exec(path, sql) != SQLITE_CONSTRAINT)
            fail_msg("statement #%zu on a queued restore accepted", i);
    }
    /* complete without the backup it restored, or without "done" */
    snprintf(sql, sizeof(sql),
             "UPDATE restores SET state = 'complete', step = 'done', finished_at = 'x',"
             " source_backup_id = NULL WHERE id = '%s'",
             run);
    assert_int_equal(raw_exec(path, sql), SQLITE_CONSTRAINT);
    snprintf(sql, sizeof(sql),
             "UPDATE restores SET state = 'complete', finished_at = 'x' WHERE id = '%s'", run);
    assert_int_equal(raw_exec(path, sql), SQLITE_CONSTRAINT);
    /* a finished restore does not change at all, not even its report */
    snprintf(sql, sizeof(sql), "UPDATE restores SET report = '{}' WHERE id = '%s'", done);
    assert_int_equal(raw_exec(path, sql), SQLITE_CONSTRAINT);
    snprintf(sql, sizeof(sql), "UPDATE restores SET error = 'other' WHERE id = '%s'", failed);
    assert_int_equal(raw_exec(path, sql), SQLITE_CONSTRAINT);
    snprintf(sql, sizeof(sql), "UPDATE restores SET state = 'running' WHERE id = '%s'", failed);
    assert_int_equal(raw_exec(path, sql), SQLITE_CONSTRAINT);
    /* a malformed id */
    assert_int_equal(raw_exec(path,
                              "INSERT INTO restores (id, kind, source, target_agent,"
                              " target_database, target_environment, created_at)"
                              " VALUES ('../x', 'restore', 's', 'a2', 'db1', 'staging', 'x')"),
                     SQLITE_CONSTRAINT);
    /* the legal path still works by hand */
    snprintf(sql, sizeof(sql),
             "UPDATE restores SET state = 'complete', step = 'done', finished_at = 'x'"
             " WHERE id = '%s'",
             run);
    assert_int_equal(raw_exec(path, sql), SQLITE_OK);
    assert_int_equal(restore_state_of(cat, run), CATALOG_COMPLETE);
    assert_int_equal(restore_state_of(cat, q), CATALOG_QUEUED);
    catalog_close(cat);
}

static void test_catalog_restore_strings_bounded(void **state)
{
    char src[CATALOG_ID_SIZE], id[CATALOG_ID_SIZE], big[CATALOG_REPORT_MAX + 64];
    catalog_restore r;
    pgs_error e = {0};
    catalog *cat = open_in(state, "c.db");
    add_agent(cat, "a1", "db1", "prod");
    add_agent(cat, "a2", "db1", "staging");
    complete_source(cat, "a1", "db1", "prod", src);
    const catalog_restore_req good = {.kind = "restore",
                                      .requested_by = "api",
                                      .source = "a1/db1@latest",
                                      .source_backup_id = src,
                                      .target_agent = "a2",
                                      .target_database = "db1",
                                      .target_environment = "staging"};
    catalog_restore_req req = good;
    assert_int_equal(catalog_restore_new(cat, &req, id, &e), 0);
    TU_ASSERT_ERR(catalog_restore_new(cat, NULL, id, &e), e, PGS_EINVAL, NULL);

    /* kind */
    static const char *const kinds[] = {"", "Restore", "copy", "restore ", "sync\n"};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        req = good;
        req.kind = kinds[i];
        if (catalog_restore_new(cat, &req, id, &e) != PGS_EINVAL)
            fail_msg("kind #%zu accepted", i);
    }
    req = good;
    req.kind = NULL;
    TU_ASSERT_ERR(catalog_restore_new(cat, &req, id, &e), e, PGS_EINVAL, "kind");

    /* the source as asked: printable ASCII without spaces, 1..160 bytes */
    req = good;
    memset(big, 's', CATALOG_SOURCE_MAX);
    big[CATALOG_SOURCE_MAX] = '\0';
    req.source = big;
    assert_int_equal(catalog_restore_new(cat, &req, id, &e), 0);
    big[CATALOG_SOURCE_MAX] = 's';
    big[CATALOG_SOURCE_MAX + 1] = '\0';
    TU_ASSERT_ERR(catalog_restore_new(cat, &req, id, &e), e, PGS_ELIMIT, "source");
    static const char *const sources[] = {"",          "a1/db1 @latest", "a1/db1\n", "caf\xc3\xa9",
                                          "x\x1b[31m", "tab\t"};
    for (size_t i = 0; i < sizeof(sources) / sizeof(sources[0]); i++) {
        req.source = sources[i];
        if (catalog_restore_new(cat, &req, id, &e) != PGS_EINVAL)
            fail_msg("source #%zu accepted", i);
        if (sources[i][0] != '\0' && strstr(e.msg, sources[i]) != NULL)
            fail_msg("source #%zu echoed: %s", i, e.msg);
    }
    req.source = NULL;
    TU_ASSERT_ERR(catalog_restore_new(cat, &req, id, &e), e, PGS_EINVAL, "source");

    /* names: targets required, the rest optional, every one checked */
    static const char *const bad_names[] = {"a b",      "../a",   ".a", "-a", "a\nb",
                                            "\xc3\xa9", "a;DROP", "a'", "a/b"};
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        const char **fields[] = {&req.source_agent, &req.source_database, &req.source_environment,
                                 &req.target_agent, &req.target_database, &req.target_environment,
                                 &req.profile,      &req.sanitizer_agent};
        for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
            req = good;
            *fields[f] = bad_names[i];
            if (catalog_restore_new(cat, &req, id, &e) != PGS_EINVAL)
                fail_msg("bad name #%zu in field #%zu accepted", i, f);
        }
    }
    req = good;
    req.target_database = NULL;
    TU_ASSERT_ERR(catalog_restore_new(cat, &req, id, &e), e, PGS_EINVAL, "target database");
    req = good;
    req.target_environment = "";
    TU_ASSERT_ERR(catalog_restore_new(cat, &req, id, &e), e, PGS_EINVAL, "target environment");
    char name[CATALOG_NAME_MAX + 2];
    memset(name, 'p', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    req = good;
    req.profile = name;
    TU_ASSERT_ERR(catalog_restore_new(cat, &req, id, &e), e, PGS_ELIMIT, "profile");
    req = good;
    req.source_backup_id = "../x";
    TU_ASSERT_ERR(catalog_restore_new(cat, &req, id, &e), e, PGS_EINVAL, "source backup id");
    req = good;
    memset(big, 'r', CATALOG_REQUESTED_BY_MAX + 1);
    big[CATALOG_REQUESTED_BY_MAX + 1] = '\0';
    req.requested_by = big;
    TU_ASSERT_ERR(catalog_restore_new(cat, &req, id, &e), e, PGS_ELIMIT, "requester");
    req.requested_by = "op\x1b[2J";
    TU_ASSERT_ERR(catalog_restore_new(cat, &req, id, &e), e, PGS_EINVAL, "requester");

    /* options: a JSON object within its limit */
    static const char *const bad_options[] = {"",
                                              "[]",
                                              "null",
                                              "\"x\"",
                                              "{",
                                              "{\"a\": 1} x",
                                              "{\"a\": 1, \"a\": 2}",
                                              "{\"a\": \"\xff\"}"};
    for (size_t i = 0; i < sizeof(bad_options) / sizeof(bad_options[0]); i++) {
        req = good;
        req.options_json = bad_options[i];
        if (catalog_restore_new(cat, &req, id, &e) != PGS_EINVAL)
            fail_msg("options #%zu accepted: %s", i, e.msg);
    }
    size_t n = (size_t)snprintf(big, sizeof(big), "{\"pad\": \"");
    memset(big + n, 'o', CATALOG_OPTIONS_MAX - n - 2);
    memcpy(big + CATALOG_OPTIONS_MAX - 2, "\"}", 3);
    req = good;
    req.options_json = big;
    assert_int_equal(catalog_restore_new(cat, &req, id, &e), 0);
    /* one byte more is refused, even when its compact form would fit */
    memcpy(big + CATALOG_OPTIONS_MAX - 2, "\"} ", 4);
    TU_ASSERT_ERR(catalog_restore_new(cat, &req, id, &e), e, PGS_ELIMIT, "options");

    /* steps: [a-z_], 1..31 */
    req = good;
    assert_int_equal(catalog_restore_new(cat, &req, id, &e), 0);
    static const char *const bad_steps[] = {"",       "Swap",   "pg-restore",
                                            "step 2", "swap\n", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    for (size_t i = 0; i < sizeof(bad_steps) / sizeof(bad_steps[0]); i++) {
        int rc = catalog_restore_start(cat, id, bad_steps[i], &e);
        if (rc != PGS_EINVAL && rc != PGS_ELIMIT)
            fail_msg("step #%zu accepted by start", i);
    }
    TU_ASSERT_ERR(catalog_restore_start(cat, id, NULL, &e), e, PGS_EINVAL, "step");
    assert_int_equal(catalog_restore_start(cat, id, "pg_restore", &e), 0);
    catalog_restore_change u = {.step = "Swap"};
    TU_ASSERT_ERR(catalog_restore_update(cat, id, &u, &e), e, PGS_EINVAL, "step");
    u = (catalog_restore_change){.source_agent = "a/b"};
    TU_ASSERT_ERR(catalog_restore_update(cat, id, &u, &e), e, PGS_EINVAL, "source agent");
    u = (catalog_restore_change){.sanitized_backup_id = "x"};
    TU_ASSERT_ERR(catalog_restore_update(cat, id, &u, &e), e, PGS_EINVAL, "sanitized backup id");
    TU_ASSERT_ERR(catalog_restore_finish(cat, id, 0, "Bad Step", "x", NULL, &e), e, PGS_EINVAL,
                  "step");

    /* reports: a JSON object of at most 1 MiB; a refused one changes nothing */
    n = (size_t)snprintf(big, sizeof(big), "{\"pad\": \"");
    memset(big + n, 'x', CATALOG_REPORT_MAX + 1 - n - 2);
    memcpy(big + CATALOG_REPORT_MAX + 1 - 2, "\"}", 3);
    TU_ASSERT_ERR(catalog_restore_finish(cat, id, 0, "swap", "x", big, &e), e, PGS_ELIMIT,
                  "report");
    TU_ASSERT_ERR(catalog_restore_finish(cat, id, 0, "swap", "x", "[1]", &e), e, PGS_EINVAL,
                  "report");
    assert_int_equal(restore_state_of(cat, id), CATALOG_RUNNING);
    memcpy(big + CATALOG_REPORT_MAX - 2, "\"}", 3); /* exactly the limit */
    /* reasons are cleaned and cut, as for backups */
    char reason[3000];
    memset(reason, 'r', sizeof(reason) - 1);
    reason[sizeof(reason) - 1] = '\0';
    memcpy(reason, "bad \xff\x01", 6);
    assert_int_equal(catalog_restore_finish(cat, id, 0, "swap", reason, big, &e), 0);
    get_restore(cat, id, &r);
    assert_int_equal(r.state, CATALOG_FAILED);
    assert_string_equal(r.step, "swap");
    assert_true(strlen(r.error) <= CATALOG_ERROR_MAX);
    assert_memory_equal(r.error, "bad ? rrr", 9);
    assert_int_equal(strlen(r.report_json), CATALOG_REPORT_MAX - 1); /* compact: no space */
    json_t *j = catalog_restore_to_json(&r);
    assert_non_null(j);
    json_decref(j);
    catalog_restore_clear(&r);

    /* hostile ids are refused everywhere, and not echoed */
    static const char *const hostile[] = {"", "../../etc/passwd", "x' OR '1'='1",
                                          "20261121T160529Z-ABCDEF01"};
    for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
        const char *h = hostile[i];
        if (catalog_restore_get(cat, h, &r, &e) != PGS_EINVAL ||
            catalog_restore_start(cat, h, "restore", &e) != PGS_EINVAL ||
            catalog_restore_update(cat, h, NULL, &e) != PGS_EINVAL ||
            catalog_restore_finish(cat, h, 0, NULL, "x", NULL, &e) != PGS_EINVAL)
            fail_msg("hostile id #%zu not refused: %s", i, e.msg);
        if (h[0] != '\0' && strstr(e.msg, h) != NULL)
            fail_msg("hostile id #%zu echoed: %s", i, e.msg);
    }
    catalog_close(cat);
}

/* A catalog written by the previous version (1) is upgraded in place and keeps its rows. */
/* The rows an older catalog holds, written by hand (its schema is older than the API's). */
#define OLD_SRC "20261121T160529Z-00000001"
#define OLD_DERIVED "20261121T160600Z-00000002"
#define OLD_FAILED "20261121T160700Z-00000003"
#define OLD_ROWS                                                                                   \
    "INSERT INTO agents (name, first_seen, last_seen) VALUES"                                      \
    " ('a1', '2026-11-21T16:00:00.000Z', '2026-11-21T16:00:00.000Z'),"                             \
    " ('a2', '2026-11-21T16:00:00.000Z', '2026-11-21T16:00:00.000Z');"                             \
    "INSERT INTO databases (agent, name, environment, first_seen, last_seen) VALUES"               \
    " ('a1', 'db1', 'prod', '2026-11-21T16:00:00.000Z', '2026-11-21T16:00:00.000Z');"              \
    "INSERT INTO backups (id, agent, database, environment, label, state, created_at, started_at," \
    " finished_at, bytes, storage_key, sha256, recipients) VALUES ('" OLD_SRC "', 'a1', 'db1',"    \
    " 'prod', 'old', 'complete', '2026-11-21T16:05:29.000Z', '2026-11-21T16:05:30.000Z',"          \
    " '2026-11-21T16:05:31.000Z', 1234, 'prod/a1/db1/" OLD_SRC ".pgship', '" SHA_A "',"            \
    " '[\"" RCPT_1 "\"]');"                                                                        \
    "INSERT INTO backups (id, agent, database, environment, label, state, created_at, started_at," \
    " finished_at, bytes, storage_key, sha256, source_backup_id) VALUES ('" OLD_DERIVED "', 'a1'," \
    " 'db1', 'staging', 'sanitized', 'complete', '2026-11-21T16:06:00.000Z',"                      \
    " '2026-11-21T16:06:01.000Z', '2026-11-21T16:06:02.000Z', 99,"                                 \
    " 'staging/a1/db1/" OLD_DERIVED ".pgship', '" SHA_B "', '" OLD_SRC "');"                       \
    "INSERT INTO backups (id, agent, database, environment, state, error, created_at,"             \
    " finished_at) VALUES ('" OLD_FAILED "', 'a1', 'db1', 'prod', 'failed', 'disk full',"          \
    " '2026-11-21T16:07:00.000Z', '2026-11-21T16:07:01.000Z');"

/* Objects in a freshly created catalog's schema: what every migrated one must end up with. */
static long long fresh_schema_objects(void **state)
{
    char path[600];
    catalog *cat = open_in(state, "fresh.db");
    catalog_close(cat);
    tu_path_in(state, "fresh.db", path, sizeof(path));
    return raw_int(path, "SELECT count(*) FROM sqlite_schema");
}

static void test_catalog_migrates_version_1(void **state)
{
    char path[600], id[CATALOG_ID_SIZE];
    catalog_backup b;
    pgs_error e = {0};
    tu_path_in(state, "v1.db", path, sizeof(path));
    /* A file exactly as version 1 wrote it: no restores table. */
    assert_int_equal(catalog_create_at_version(path, 1, &e), 0);
    assert_int_equal(raw_int(path, "PRAGMA user_version"), 1);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM sqlite_schema WHERE tbl_name = "
                                   "'restores'"),
                     0);
    assert_int_equal(raw_exec(path, OLD_ROWS), SQLITE_OK);

    catalog *cat = open_in(state, "v1.db");
    assert_int_equal(raw_int(path, "PRAGMA user_version"), CATALOG_SCHEMA_VERSION);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM sqlite_schema"),
                     fresh_schema_objects(state));
    /* the old rows are there, and the new table works */
    assert_int_equal(catalog_backup_get(cat, OLD_SRC, &b, &e), 0);
    assert_int_equal(b.state, CATALOG_COMPLETE);
    assert_string_equal(b.sha256, SHA_A);
    new_restore(cat, "restore", OLD_SRC, NULL, id);
    assert_int_equal(restore_state_of(cat, id), CATALOG_QUEUED);
    catalog_close(cat);
    /* and the upgrade happens once */
    cat = open_in(state, "v1.db");
    assert_int_equal(restore_state_of(cat, id), CATALOG_QUEUED);
    catalog_close(cat);
    assert_int_equal(raw_int(path, "PRAGMA user_version"), CATALOG_SCHEMA_VERSION);
}

static void test_catalog_migrates_version_2(void **state)
{
    char path[600], id[CATALOG_ID_SIZE];
    catalog_backup b;
    catalog_restore r;
    pgs_error e = {0};
    tu_path_in(state, "v2.db", path, sizeof(path));
    assert_int_equal(catalog_create_at_version(path, 2, &e), 0);
    assert_int_equal(raw_int(path, "PRAGMA user_version"), 2);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM sqlite_schema WHERE name IN "
                                   "('verifications', 'audit', 'schedule_runs')"),
                     0);
    /* Rows of version 2: backups (one derived), a finished restore of the source (final: no
     * UPDATE may touch it) and a queued one. */
    assert_int_equal(raw_exec(path, OLD_ROWS
                              "INSERT INTO restores (id, kind, requested_by, source,"
                              " source_backup_id, target_agent, target_database,"
                              " target_environment, state, step, created_at, started_at,"
                              " finished_at, options, report) VALUES"
                              " ('20261121T170000Z-0000000a', 'restore', 'alice', '" OLD_SRC "',"
                              " '" OLD_SRC "', 'a2', 'db1', 'staging', 'complete', 'done',"
                              " '2026-11-21T17:00:00.000Z', '2026-11-21T17:00:01.000Z',"
                              " '2026-11-21T17:00:09.000Z', '{\"jobs\":2}', '{\"ok\":true}'),"
                              " ('20261121T170100Z-0000000b', 'sync', 'bob', 'a1/db1', NULL, 'a2',"
                              " 'db1', 'staging', 'queued', '', '2026-11-21T17:01:00.000Z', NULL,"
                              " NULL, '{}', NULL);"),
                     SQLITE_OK);

    catalog *cat = open_in(state, "v2.db");
    assert_int_equal(raw_int(path, "PRAGMA user_version"), 3);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM sqlite_schema"),
                     fresh_schema_objects(state));
    assert_int_equal(raw_int(path, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM pragma_integrity_check WHERE "
                                   "integrity_check = 'ok'"),
                     1);
    /* Every backup is kept, with the new columns at their defaults. */
    assert_int_equal(catalog_backup_get(cat, OLD_SRC, &b, &e), 0);
    assert_int_equal(b.state, CATALOG_COMPLETE);
    assert_string_equal(b.label, "old");
    assert_string_equal(b.recipients[0], RCPT_1);
    assert_int_equal(b.pinned, 0);
    assert_string_equal(b.verified_at, "");
    assert_string_equal(b.verify_result, "");
    assert_string_equal(b.scheduled, "");
    assert_int_equal(catalog_backup_get(cat, OLD_DERIVED, &b, &e), 0);
    assert_string_equal(b.source_backup_id, OLD_SRC);
    assert_int_equal(catalog_backup_get(cat, OLD_FAILED, &b, &e), 0);
    assert_string_equal(b.error, "disk full");
    /* Every restore too, column for column. */
    get_restore(cat, "20261121T170000Z-0000000a", &r);
    assert_int_equal(r.state, CATALOG_COMPLETE);
    assert_string_equal(r.requested_by, "alice");
    assert_string_equal(r.source_backup_id, OLD_SRC);
    assert_string_equal(r.finished_at, "2026-11-21T17:00:09.000Z");
    assert_string_equal(r.options_json, "{\"jobs\":2}");
    assert_string_equal(r.report_json, "{\"ok\":true}");
    catalog_restore_clear(&r);
    get_restore(cat, "20261121T170100Z-0000000b", &r);
    assert_int_equal(r.state, CATALOG_QUEUED);
    assert_string_equal(r.kind, "sync");
    catalog_restore_clear(&r);
    /* The new tables work. */
    assert_int_equal(catalog_backup_pin(cat, OLD_SRC, 1, &e), 0);
    assert_int_equal(catalog_audit_add(cat, "alice", "admin", "pin", OLD_SRC, NULL, NULL, &e), 0);
    assert_int_equal(catalog_verify_new(cat, OLD_SRC, "a1", 0, id, &e), 0);
    assert_int_equal(catalog_schedule_last_due_set(cat, "nightly", "a1", "db1", 100, NULL, &e), 0);
    /* The finished restore no longer holds its backup: the derived copy, then its source, can go,
     * and the restore still names the source as history. */
    assert_int_equal(catalog_backup_pin(cat, OLD_SRC, 0, &e), 0);
    assert_int_equal(catalog_verify_finish(cat, id, 1, NULL, NULL, &e), 0);
    TU_ASSERT_ERR(catalog_backup_delete(cat, OLD_SRC, &e), e, PGS_EORDER, OLD_DERIVED);
    assert_int_equal(catalog_backup_delete(cat, OLD_DERIVED, &e), 0);
    assert_int_equal(catalog_backup_delete(cat, OLD_SRC, &e), 0);
    get_restore(cat, "20261121T170000Z-0000000a", &r);
    assert_string_equal(r.source_backup_id, OLD_SRC);
    catalog_restore_clear(&r);
    /* but a new restore must still name a backup that exists */
    catalog_restore_req req = {.kind = "restore",
                               .source = OLD_SRC,
                               .source_backup_id = OLD_SRC,
                               .target_agent = "a2",
                               .target_database = "db1",
                               .target_environment = "staging"};
    TU_ASSERT_ERR(catalog_restore_new(cat, &req, id, &e), e, PGS_ENOTFOUND, OLD_SRC);
    catalog_close(cat);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM pragma_foreign_key_check"), 0);
}

/* Restores left in flight by a coordinator that died are failed at the next start. */
static void test_catalog_recover_fails_restores(void **state)
{
    char path[600], src[CATALOG_ID_SIZE], q[CATALOG_ID_SIZE], run[CATALOG_ID_SIZE],
        done[CATALOG_ID_SIZE], failed[CATALOG_ID_SIZE];
    catalog_restore r;
    pgs_error e = {0};
    size_t n = 99;
    tu_path_in(state, "c.db", path, sizeof(path));
    catalog *cat = open_in(state, "c.db");
    add_agent(cat, "a1", "db1", "prod");
    add_agent(cat, "a2", "db1", "staging");
    complete_source(cat, "a1", "db1", "prod", src);
    new_restore(cat, "restore", src, NULL, q);
    new_restore(cat, "sync", src, NULL, run);
    assert_int_equal(catalog_restore_start(cat, run, "backup", &e), 0);
    catalog_restore_change u = {.step = "pg_restore"};
    assert_int_equal(catalog_restore_update(cat, run, &u, &e), 0);
    new_restore(cat, "restore", src, NULL, done);
    assert_int_equal(catalog_restore_start(cat, done, "restore", &e), 0);
    assert_int_equal(catalog_restore_finish(cat, done, 1, NULL, NULL, "{}", &e), 0);
    new_restore(cat, "restore", src, NULL, failed);
    assert_int_equal(catalog_restore_finish(cat, failed, 0, "check", "earlier", NULL, &e), 0);
    /* as a crash would leave it: the handle is simply gone */
    catalog_close(cat);

    cat = open_in(state, "c.db");
    const char *why = "the coordinator stopped while it was in flight";
    assert_int_equal(catalog_recover(cat, why, NULL, &n, &e), 0);
    assert_int_equal(n, 0); /* no backups were in flight */
    get_restore(cat, q, &r);
    assert_int_equal(r.state, CATALOG_FAILED);
    assert_string_equal(r.error, why);
    assert_string_equal(r.step, "");
    assert_string_not_equal(r.finished_at, "");
    catalog_restore_clear(&r);
    get_restore(cat, run, &r);
    assert_int_equal(r.state, CATALOG_FAILED);
    assert_string_equal(r.step, "pg_restore"); /* where it was */
    assert_string_equal(r.error, why);
    catalog_restore_clear(&r);
    /* finished ones are left alone */
    get_restore(cat, done, &r);
    assert_int_equal(r.state, CATALOG_COMPLETE);
    assert_string_equal(r.error, "");
    catalog_restore_clear(&r);
    get_restore(cat, failed, &r);
    assert_string_equal(r.error, "earlier");
    assert_string_equal(r.step, "check");
    catalog_restore_clear(&r);
    assert_int_equal(catalog_recover(cat, NULL, NULL, NULL, &e), 0);
    catalog_close(cat);
}

struct rcollect {
    int n;
    int stop_after;
    catalog *cat;
    int reentry_rc;
    char ids[16][CATALOG_ID_SIZE];
};

static int rcollect_cb(void *arg, const catalog_restore *r)
{
    struct rcollect *c = arg;
    if (c->cat != NULL) {
        catalog_restore other;
        pgs_error e = {0};
        c->reentry_rc = catalog_restore_get(c->cat, r->id, &other, &e);
    }
    assert_non_null(r->options_json);
    if (c->n < 16)
        snprintf(c->ids[c->n], CATALOG_ID_SIZE, "%s", r->id);
    c->n++;
    return c->stop_after && c->n >= c->stop_after ? 1 : 0;
}

static void rlist(catalog *cat, const catalog_filter *f, struct rcollect *c)
{
    pgs_error e = {0};
    memset(c, 0, sizeof(*c));
    int rc = catalog_restore_list(cat, f, rcollect_cb, c, &e);
    if (rc != 0)
        fail_msg("catalog_restore_list: %d %s", rc, e.msg);
}

static void test_catalog_restore_list_filters_and_order(void **state)
{
    /* ids[i] is created at T0 + i seconds, except 3 and 4 which share a millisecond. */
    char src[CATALOG_ID_SIZE], ids[6][CATALOG_ID_SIZE];
    struct rcollect c;
    pgs_error e = {0};
    int64_t now = T0;
    catalog *cat = open_in(state, "c.db");
    catalog_set_clock(cat, fixed_clock, &now);
    add_agent(cat, "a1", "db1", "prod");
    add_agent(cat, "a2", "db1", "staging");
    add_agent(cat, "a2", "db2", "staging");
    add_agent(cat, "a3", "db1", "qa");
    complete_source(cat, "a1", "db1", "prod", src);
    const char *agents[6] = {"a2", "a2", "a3", "a2", "a3", "a2"};
    const char *dbs[6] = {"db1", "db2", "db1", "db1", "db1", "db2"};
    for (int i = 0; i < 6; i++) {
        now = T0 + (i == 4 ? 3 : i) * 1000;
        catalog_restore_req req = {.kind = "restore",
                                   .source = src,
                                   .source_backup_id = src,
                                   .target_agent = agents[i],
                                   .target_database = dbs[i],
                                   .target_environment =
                                       strcmp(agents[i], "a3") ? "staging" : "qa"};
        assert_int_equal(catalog_restore_new(cat, &req, ids[i], &e), 0);
    }
    assert_int_equal(catalog_restore_start(cat, ids[0], "restore", &e), 0);
    assert_int_equal(catalog_restore_finish(cat, ids[0], 1, NULL, NULL, NULL, &e), 0);
    assert_int_equal(catalog_restore_finish(cat, ids[1], 0, NULL, "x", NULL, &e), 0);
    assert_int_equal(catalog_restore_start(cat, ids[2], "restore", &e), 0);

    rlist(cat, NULL, &c);
    assert_int_equal(c.n, 6);
    const int all[6] = {5, 4, 3, 2, 1, 0};
    for (int i = 0; i < 6; i++)
        assert_string_equal(c.ids[i], ids[all[i]]);
    catalog_filter f = {.agent = "a2"};
    rlist(cat, &f, &c);
    assert_int_equal(c.n, 4);
    assert_string_equal(c.ids[0], ids[5]);
    assert_string_equal(c.ids[3], ids[0]);
    f = (catalog_filter){.agent = "a2", .database = "db1"};
    rlist(cat, &f, &c);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.ids[0], ids[3]);
    f = (catalog_filter){.environment = "qa"};
    rlist(cat, &f, &c);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.ids[0], ids[4]);
    f = (catalog_filter){.state = CATALOG_QUEUED};
    rlist(cat, &f, &c);
    assert_int_equal(c.n, 3);
    f = (catalog_filter){.state = CATALOG_COMPLETE};
    rlist(cat, &f, &c);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.ids[0], ids[0]);
    f = (catalog_filter){.agent = "a1"}; /* the source's agent is not a filter */
    rlist(cat, &f, &c);
    assert_int_equal(c.n, 0);
    f = (catalog_filter){.limit = 2};
    rlist(cat, &f, &c);
    assert_int_equal(c.n, 2);
    assert_string_equal(c.ids[1], ids[4]);

    /* the callback stops the list; calls from inside are refused */
    memset(&c, 0, sizeof(c));
    c.stop_after = 2;
    c.cat = cat;
    assert_int_equal(catalog_restore_list(cat, NULL, rcollect_cb, &c, &e), 0);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.reentry_rc, PGS_EINVAL);
    assert_int_equal(restore_state_of(cat, ids[0]), CATALOG_COMPLETE);
    f = (catalog_filter){.database = "db1' OR 1=1 --"};
    TU_ASSERT_ERR(catalog_restore_list(cat, &f, rcollect_cb, &c, &e), e, PGS_EINVAL,
                  "database name");
    f = (catalog_filter){.state = (enum catalog_state)7};
    TU_ASSERT_ERR(catalog_restore_list(cat, &f, rcollect_cb, &c, &e), e, PGS_EINVAL, "state");
    TU_ASSERT_ERR(catalog_restore_list(cat, NULL, NULL, NULL, &e), e, PGS_EINVAL, "callback");
    catalog_close(cat);
}

static void test_catalog_restore_json_fields(void **state)
{
    char src[CATALOG_ID_SIZE], id[CATALOG_ID_SIZE];
    catalog_restore r;
    pgs_error e = {0};
    int64_t now = T0;
    catalog *cat = open_in(state, "c.db");
    catalog_set_clock(cat, fixed_clock, &now);
    add_agent(cat, "a1", "db1", "prod");
    add_agent(cat, "a2", "db1", "staging");
    complete_source(cat, "a1", "db1", "prod", src);
    new_restore(cat, "restore", src, "app-anonymize", id);

    get_restore(cat, id, &r);
    json_t *j = catalog_restore_to_json(&r);
    catalog_restore_clear(&r);
    assert_non_null(j);
    static const char *const fields[] = {"id",
                                         "kind",
                                         "state",
                                         "step",
                                         "error",
                                         "requested_by",
                                         "source",
                                         "source_backup_id",
                                         "source_agent",
                                         "source_database",
                                         "source_environment",
                                         "target_agent",
                                         "target_database",
                                         "target_environment",
                                         "profile",
                                         "sanitizer_agent",
                                         "sanitized_backup_id",
                                         "safety_backup_id",
                                         "created_at",
                                         "started_at",
                                         "finished_at",
                                         "options",
                                         "report"};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        if (json_object_get(j, fields[i]) == NULL)
            fail_msg("field %s missing", fields[i]);
    assert_int_equal(json_object_size(j), sizeof(fields) / sizeof(fields[0]));
    assert_string_equal(json_string_value(json_object_get(j, "id")), id);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "queued");
    assert_string_equal(json_string_value(json_object_get(j, "kind")), "restore");
    assert_string_equal(json_string_value(json_object_get(j, "source_backup_id")), src);
    assert_string_equal(json_string_value(json_object_get(j, "profile")), "app-anonymize");
    assert_string_equal(json_string_value(json_object_get(j, "target_environment")), "staging");
    assert_true(json_is_null(json_object_get(j, "step")));
    assert_true(json_is_null(json_object_get(j, "error")));
    assert_true(json_is_null(json_object_get(j, "source_agent")));
    assert_true(json_is_null(json_object_get(j, "safety_backup_id")));
    assert_true(json_is_null(json_object_get(j, "started_at")));
    assert_true(json_is_null(json_object_get(j, "report")));
    json_t *o = json_object_get(j, "options");
    assert_true(json_is_object(o));
    assert_int_equal(json_integer_value(json_object_get(o, "jobs")), 4);
    json_decref(j);

    now += 1000;
    assert_int_equal(catalog_restore_start(cat, id, "restore", &e), 0);
    assert_int_equal(catalog_restore_finish(cat, id, 0, "check", "1 row failed a check",
                                            "{\"tables\": [{\"schema\": \"public\", \"name\": "
                                            "\"users\", \"rows\": 50000}]}",
                                            &e),
                     0);
    get_restore(cat, id, &r);
    j = catalog_restore_to_json(&r);
    catalog_restore_clear(&r);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "failed");
    assert_string_equal(json_string_value(json_object_get(j, "step")), "check");
    assert_string_equal(json_string_value(json_object_get(j, "error")), "1 row failed a check");
    assert_string_equal(json_string_value(json_object_get(j, "started_at")),
                        "2026-11-21T16:05:30.000Z");
    json_t *t = json_array_get(json_object_get(json_object_get(j, "report"), "tables"), 0);
    assert_int_equal(json_integer_value(json_object_get(t, "rows")), 50000);
    json_decref(j);
    catalog_close(cat);
}

/* Two handles on one file, as the coordinator's loop and its HTTP API thread would hold. */
static void test_catalog_two_handles_share_the_file(void **state)
{
    char id[CATALOG_ID_SIZE];
    pgs_error e = {0};
    catalog *w = open_in(state, "c.db");
    catalog *r = open_in(state, "c.db");
    add_agent(w, "a1", "db1", "prod");
    new_backup(w, "a1", "db1", "prod", id);
    assert_int_equal(state_of(r, id), CATALOG_QUEUED);
    start_backup(r, id, "k");
    assert_int_equal(state_of(w, id), CATALOG_RUNNING);
    TU_ASSERT_ERR(catalog_backup_start(w, id, NULL, &e), e, PGS_EORDER, "running");
    catalog_close(r);
    catalog_close(w);
}

/* ---- version 3: pins, deletion, verifications, audit, schedules, statistics, import ---- */

/* A complete backup of a1/db1 in env with key "k/<id>", optionally derived from source. */
static void complete_in(catalog *cat, const char *env, const char *source, char id[CATALOG_ID_SIZE])
{
    pgs_error e = {0};
    catalog_backup_req req = {
        .agent = "a1", .database = "db1", .environment = env, .source_backup_id = source};
    if (catalog_backup_new(cat, &req, id, &e) != 0)
        fail_msg("catalog_backup_new: %s", e.msg);
    start_backup(cat, id, "k/x");
    complete_backup(cat, id, "k/x");
}

static void test_catalog_pin_and_delete(void **state)
{
    char path[600], sql[256], src[CATALOG_ID_SIZE], derived[CATALOG_ID_SIZE];
    char queued[CATALOG_ID_SIZE], running[CATALOG_ID_SIZE], failed[CATALOG_ID_SIZE];
    char rid[CATALOG_ID_SIZE], vid[CATALOG_ID_SIZE];
    catalog_backup b;
    pgs_error e = {0};
    tu_path_in(state, "c.db", path, sizeof(path));
    catalog *cat = open_in(state, "c.db");
    add_agent(cat, "a1", "db1", "prod");
    add_agent(cat, "a2", "db1", "staging");
    complete_in(cat, "prod", NULL, src);
    complete_in(cat, "staging", src, derived);
    new_backup(cat, "a1", "db1", "prod", queued);
    new_backup(cat, "a1", "db1", "prod", running);
    start_backup(cat, running, "k/r");
    new_backup(cat, "a1", "db1", "prod", failed);
    assert_int_equal(catalog_backup_fail(cat, failed, "boom", &e), 0);

    /* Pins, in any state, and back. */
    assert_int_equal(catalog_backup_pin(cat, src, 1, &e), 0);
    assert_int_equal(catalog_backup_get(cat, src, &b, &e), 0);
    assert_int_equal(b.pinned, 1);
    assert_int_equal(catalog_backup_pin(cat, queued, 7, &e), 0); /* any non-zero pins */
    assert_int_equal(catalog_backup_get(cat, queued, &b, &e), 0);
    assert_int_equal(b.pinned, 1);
    assert_int_equal(catalog_backup_pin(cat, queued, 0, &e), 0);
    TU_ASSERT_ERR(catalog_backup_pin(cat, "20261121T160529Z-deadbeef", 1, &e), e, PGS_ENOTFOUND,
                  "deadbeef");
    TU_ASSERT_ERR(catalog_backup_pin(cat, "../x", 1, &e), e, PGS_EINVAL, "not valid");

    /* Refusals, each naming its reason; the check says the same as the delete. */
    TU_ASSERT_ERR(catalog_backup_delete(cat, queued, &e), e, PGS_EORDER, "it is queued");
    TU_ASSERT_ERR(catalog_backup_delete(cat, running, &e), e, PGS_EORDER, "it is running");
    TU_ASSERT_ERR(catalog_backup_delete(cat, src, &e), e, PGS_EORDER, "pinned");
    TU_ASSERT_ERR(catalog_backup_delete_check(cat, src, &e), e, PGS_EORDER, "pinned");
    assert_int_equal(catalog_backup_pin(cat, src, 0, &e), 0);
    TU_ASSERT_ERR(catalog_backup_delete(cat, src, &e), e, PGS_EORDER, derived);
    TU_ASSERT_ERR(catalog_backup_delete(cat, "20261121T160529Z-deadbeef", &e), e, PGS_ENOTFOUND,
                  "deadbeef");
    /* a restore or a verification in flight holds its backup */
    new_restore(cat, "restore", derived, NULL, rid);
    TU_ASSERT_ERR(catalog_backup_delete(cat, derived, &e), e, PGS_EORDER, rid);
    assert_int_equal(catalog_restore_finish(cat, rid, 0, NULL, "given up", NULL, &e), 0);
    assert_int_equal(catalog_verify_new(cat, derived, "a2", 1, vid, &e), 0);
    TU_ASSERT_ERR(catalog_backup_delete_check(cat, derived, &e), e, PGS_EORDER, vid);
    assert_int_equal(catalog_verify_finish(cat, vid, 0, "bad digest", NULL, &e), 0);

    /* Now the derived copy goes, then its source, then a failed backup. */
    assert_int_equal(catalog_backup_delete_check(cat, derived, &e), 0);
    assert_int_equal(catalog_backup_delete(cat, derived, &e), 0);
    TU_ASSERT_ERR(catalog_backup_get(cat, derived, &b, &e), e, PGS_ENOTFOUND, derived);
    assert_int_equal(catalog_backup_delete(cat, src, &e), 0);
    assert_int_equal(catalog_backup_delete(cat, failed, &e), 0);
    TU_ASSERT_ERR(catalog_backup_delete(cat, failed, &e), e, PGS_ENOTFOUND, failed);
    /* the history that named them stays */
    catalog_verification v;
    assert_int_equal(catalog_verify_get(cat, vid, &v, &e), 0);
    assert_string_equal(v.backup_id, derived);
    catalog_verification_clear(&v);

    /* The schema refuses what the API refuses, by hand too. */
    assert_int_equal(catalog_backup_pin(cat, queued, 1, &e), 0);
    snprintf(sql, sizeof(sql), "DELETE FROM backups WHERE id = '%s'", running);
    assert_int_equal(raw_exec(path, sql), SQLITE_CONSTRAINT);
    catalog_backup_fail(cat, queued, "x", &e);
    snprintf(sql, sizeof(sql), "DELETE FROM backups WHERE id = '%s'", queued);
    assert_int_equal(raw_exec(path, sql), SQLITE_CONSTRAINT); /* failed but pinned */
    catalog_close(cat);
}

static int collect_verify_cb(void *arg, const catalog_verification *v)
{
    char(*ids)[CATALOG_ID_SIZE] = arg;
    for (int i = 0; i < 8; i++)
        if (ids[i][0] == '\0') {
            memcpy(ids[i], v->id, CATALOG_ID_SIZE);
            break;
        }
    return 0;
}

static void test_catalog_verifications(void **state)
{
    char path[600], sql[256], src[CATALOG_ID_SIZE], queued[CATALOG_ID_SIZE];
    char v1[CATALOG_ID_SIZE], v2[CATALOG_ID_SIZE], v3[CATALOG_ID_SIZE];
    char ids[8][CATALOG_ID_SIZE];
    catalog_backup b;
    catalog_verification v;
    pgs_error e = {0};
    int64_t now = T0;
    tu_path_in(state, "c.db", path, sizeof(path));
    catalog *cat = open_in(state, "c.db");
    catalog_set_clock(cat, fixed_clock, &now);
    add_agent(cat, "a1", "db1", "prod");
    complete_in(cat, "prod", NULL, src);
    new_backup(cat, "a1", "db1", "prod", queued);

    TU_ASSERT_ERR(catalog_verify_new(cat, queued, "a1", 0, v1, &e), e, PGS_EORDER,
                  "only a complete backup");
    TU_ASSERT_ERR(catalog_verify_new(cat, "20261121T160529Z-deadbeef", "a1", 0, v1, &e), e,
                  PGS_ENOTFOUND, "deadbeef");
    TU_ASSERT_ERR(catalog_verify_new(cat, src, "-x", 0, v1, &e), e, PGS_EINVAL, "agent name");

    /* queued -> running -> ok: the backup records it. */
    now += 1000;
    assert_int_equal(catalog_verify_new(cat, src, "a1", 1, v1, &e), 0);
    assert_int_equal(catalog_verify_get(cat, v1, &v, &e), 0);
    assert_int_equal(v.state, CATALOG_VERIFY_QUEUED);
    assert_int_equal(v.restore_test, 1);
    assert_string_equal(v.backup_id, src);
    assert_null(v.report_json);
    catalog_verification_clear(&v);
    now += 1000;
    assert_int_equal(catalog_verify_start(cat, v1, &e), 0);
    TU_ASSERT_ERR(catalog_verify_start(cat, v1, &e), e, PGS_EORDER, "it is running");
    now += 1000;
    assert_int_equal(catalog_verify_finish(cat, v1, 1, "ignored", "{\"tables\": 3}", &e), 0);
    assert_int_equal(catalog_verify_get(cat, v1, &v, &e), 0);
    assert_int_equal(v.state, CATALOG_VERIFY_OK);
    assert_string_equal(v.error, "");
    assert_string_equal(v.started_at, "2026-11-21T16:05:31.000Z");
    assert_string_equal(v.finished_at, "2026-11-21T16:05:32.000Z");
    assert_string_equal(v.report_json, "{\"tables\":3}");
    json_t *j = catalog_verification_to_json(&v);
    assert_string_equal(json_string_value(json_object_get(j, "state")), "ok");
    assert_true(json_is_true(json_object_get(j, "restore_test")));
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "report"), "tables")),
                     3);
    assert_true(json_is_null(json_object_get(j, "error")));
    json_decref(j);
    catalog_verification_clear(&v);
    assert_int_equal(catalog_backup_get(cat, src, &b, &e), 0);
    assert_string_equal(b.verified_at, "2026-11-21T16:05:32.000Z");
    assert_string_equal(b.verify_result, "ok");

    /* Final: no second finish, no start, not even by hand. */
    TU_ASSERT_ERR(catalog_verify_finish(cat, v1, 0, "x", NULL, &e), e, PGS_EORDER, "it is ok");
    TU_ASSERT_ERR(catalog_verify_start(cat, v1, &e), e, PGS_EORDER, "it is ok");
    snprintf(sql, sizeof(sql), "UPDATE verifications SET report = '{}' WHERE id = '%s'", v1);
    assert_int_equal(raw_exec(path, sql), SQLITE_CONSTRAINT);

    /* queued -> failed, the reason cleaned; the backup's result follows the latest. */
    now += 1000;
    assert_int_equal(catalog_verify_new(cat, src, "coordinator", 0, v2, &e), 0);
    now += 1000;
    assert_int_equal(catalog_verify_finish(cat, v2, 0, "sha256 mismatch\x01", NULL, &e), 0);
    assert_int_equal(catalog_backup_get(cat, src, &b, &e), 0);
    assert_string_equal(b.verify_result, "failed: sha256 mismatch");
    assert_string_equal(b.verified_at, "2026-11-21T16:05:34.000Z");
    j = catalog_backup_to_json(&b);
    assert_string_equal(json_string_value(json_object_get(j, "verify_result")),
                        "failed: sha256 mismatch");
    json_decref(j);
    /* a reason at its limit still fits the backup's column */
    char big[CATALOG_ERROR_MAX + 200];
    memset(big, 'r', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(catalog_verify_new(cat, src, "a1", 0, v3, &e), 0);
    /* a report over its limit changes nothing */
    char *huge = malloc(CATALOG_REPORT_MAX + 16);
    memset(huge, ' ', CATALOG_REPORT_MAX + 15);
    huge[0] = '{';
    huge[CATALOG_REPORT_MAX + 14] = '}';
    huge[CATALOG_REPORT_MAX + 15] = '\0';
    TU_ASSERT_ERR(catalog_verify_finish(cat, v3, 0, "x", huge, &e), e, PGS_ELIMIT, "report");
    free(huge);
    TU_ASSERT_ERR(catalog_verify_finish(cat, v3, 0, "x", "[1]", &e), e, PGS_EINVAL, "object");
    assert_int_equal(catalog_verify_finish(cat, v3, 0, big, NULL, &e), 0);
    assert_int_equal(catalog_backup_get(cat, src, &b, &e), 0);
    assert_int_equal(strlen(b.verify_result), CATALOG_VERIFY_RESULT_MAX);

    /* Lists: newest first, by backup, agent, state, limit. */
    memset(ids, 0, sizeof(ids));
    assert_int_equal(catalog_verify_list(cat, NULL, collect_verify_cb, ids, &e), 0);
    assert_string_equal(ids[0], v3);
    assert_string_equal(ids[1], v2);
    assert_string_equal(ids[2], v1);
    memset(ids, 0, sizeof(ids));
    catalog_verify_filter f = {.agent = "coordinator"};
    assert_int_equal(catalog_verify_list(cat, &f, collect_verify_cb, ids, &e), 0);
    assert_string_equal(ids[0], v2);
    assert_string_equal(ids[1], "");
    memset(ids, 0, sizeof(ids));
    f = (catalog_verify_filter){.backup_id = src, .state = CATALOG_VERIFY_FAILED, .limit = 1};
    assert_int_equal(catalog_verify_list(cat, &f, collect_verify_cb, ids, &e), 0);
    assert_string_equal(ids[0], v3);
    assert_string_equal(ids[1], "");
    f = (catalog_verify_filter){.state = (enum catalog_verify_state)9};
    TU_ASSERT_ERR(catalog_verify_list(cat, &f, collect_verify_cb, ids, &e), e, PGS_EINVAL, "state");
    TU_ASSERT_ERR(catalog_verify_get(cat, "20261121T160529Z-deadbeef", &v, &e), e, PGS_ENOTFOUND,
                  "verification");

    enum catalog_verify_state vs;
    assert_int_equal(catalog_verify_state_parse("ok", &vs), 0);
    assert_int_equal(vs, CATALOG_VERIFY_OK);
    assert_int_equal(catalog_verify_state_parse("complete", &vs), PGS_EINVAL);
    assert_string_equal(catalog_verify_state_name((enum catalog_verify_state)42), "?");
    catalog_close(cat);
}

static int collect_audit_cb(void *arg, const catalog_audit_entry *a)
{
    catalog_audit_entry *out = arg;
    for (int i = 0; i < 8; i++)
        if (out[i].action[0] == '\0') {
            out[i] = *a;
            break;
        }
    return 0;
}

static void test_catalog_audit(void **state)
{
    char path[600];
    pgs_error e = {0};
    int64_t now = T0;
    catalog_audit_entry got[8];
    tu_path_in(state, "c.db", path, sizeof(path));
    catalog *cat = open_in(state, "c.db");
    catalog_set_clock(cat, fixed_clock, &now);

    assert_int_equal(catalog_audit_add(cat, "alice", "admin", "backup", "a1/db1", NULL,
                                       "{\"label\": \"pre\"}", &e),
                     0);
    now += 1000;
    /* Free text is cleaned, never refused: the entry must be written. */
    assert_int_equal(catalog_audit_add(cat, "", NULL, "restore", "bad\x1b[31mtarget\xff",
                                       "refused: prod\n", NULL, &e),
                     0);
    now += 1000;
    char *detail = malloc(CATALOG_AUDIT_DETAIL_MAX + 100);
    memset(detail, 'x', CATALOG_AUDIT_DETAIL_MAX + 99);
    memcpy(detail, "{\"k\":\"", 6);
    memcpy(detail + CATALOG_AUDIT_DETAIL_MAX + 97, "\"}", 2);
    detail[CATALOG_AUDIT_DETAIL_MAX + 99] = '\0';
    assert_int_equal(catalog_audit_add(cat, "cron", "system", "prune", "", NULL, detail, &e), 0);
    free(detail);

    TU_ASSERT_ERR(catalog_audit_add(cat, "a", "r", "Backup", "t", NULL, NULL, &e), e, PGS_EINVAL,
                  "action");
    TU_ASSERT_ERR(catalog_audit_add(cat, "a", "r", "", "t", NULL, NULL, &e), e, PGS_EINVAL,
                  "action");
    TU_ASSERT_ERR(catalog_audit_add(cat, "a", "r", NULL, "t", NULL, NULL, &e), e, PGS_EINVAL,
                  "action");
    TU_ASSERT_ERR(catalog_audit_add(cat, "a", "r", "pin", "t", NULL, "[1]", &e), e, PGS_EINVAL,
                  "object");
    TU_ASSERT_ERR(catalog_audit_add(cat, "a", "r", "pin", "t", NULL, "{", &e), e, PGS_EINVAL,
                  "object");

    memset(got, 0, sizeof(got));
    assert_int_equal(catalog_audit_list(cat, 0, collect_audit_cb, got, &e), 0);
    assert_string_equal(got[0].action, "prune");
    assert_string_equal(got[0].detail_json, "{\"truncated\":4195}");
    assert_string_equal(got[0].target, "");
    assert_string_equal(got[1].action, "restore");
    assert_string_equal(got[1].who, "unknown");
    assert_string_equal(got[1].role, "");
    assert_string_equal(got[1].target, "bad [31mtarget?");
    assert_string_equal(got[1].result, "refused: prod");
    assert_string_equal(got[1].detail_json, "");
    assert_string_equal(got[2].action, "backup");
    assert_string_equal(got[2].who, "alice");
    assert_string_equal(got[2].result, "ok");
    assert_string_equal(got[2].at, "2026-11-21T16:05:29.000Z");
    assert_string_equal(got[2].detail_json, "{\"label\":\"pre\"}");
    assert_true(got[0].id > got[1].id && got[1].id > got[2].id);
    assert_string_equal(got[3].action, "");
    json_t *j = catalog_audit_to_json(&got[2]);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "detail"), "label")),
                        "pre");
    assert_string_equal(json_string_value(json_object_get(j, "role")), "admin");
    json_decref(j);
    j = catalog_audit_to_json(&got[1]);
    assert_true(json_is_null(json_object_get(j, "detail")));
    assert_true(json_is_null(json_object_get(j, "role")));
    json_decref(j);

    memset(got, 0, sizeof(got));
    assert_int_equal(catalog_audit_list(cat, 1, collect_audit_cb, got, &e), 0);
    assert_string_equal(got[0].action, "prune");
    assert_string_equal(got[1].action, "");
    /* Append-only, even by hand. */
    assert_int_equal(raw_exec(path, "UPDATE audit SET result = 'ok'"), SQLITE_CONSTRAINT);
    catalog_close(cat);
}

static void test_catalog_schedule_runs(void **state)
{
    char id[CATALOG_ID_SIZE], last[CATALOG_ID_SIZE];
    int64_t due = -1;
    pgs_error e = {0};
    catalog *cat = open_in(state, "c.db");
    add_agent(cat, "a1", "db1", "prod");
    new_backup(cat, "a1", "db1", "prod", id);

    TU_ASSERT_ERR(catalog_schedule_last_due_get(cat, "nightly", "a1", "db1", &due, last, &e), e,
                  PGS_ENOTFOUND, "never ran");
    assert_int_equal(catalog_schedule_last_due_set(cat, "nightly", "a1", "db1", 1795277100, id, &e),
                     0);
    assert_int_equal(catalog_schedule_last_due_get(cat, "nightly", "a1", "db1", &due, last, &e), 0);
    assert_int_equal(due, 1795277100);
    assert_string_equal(last, id);
    /* Replaced, not added; the backup id is optional. */
    assert_int_equal(
        catalog_schedule_last_due_set(cat, "nightly", "a1", "db1", 1795363500, NULL, &e), 0);
    assert_int_equal(catalog_schedule_last_due_get(cat, "nightly", "a1", "db1", &due, NULL, &e), 0);
    assert_int_equal(due, 1795363500);
    assert_int_equal(catalog_schedule_last_due_get(cat, "nightly", "a1", "db1", &due, last, &e), 0);
    assert_string_equal(last, "");
    /* Other triples are separate. */
    TU_ASSERT_ERR(catalog_schedule_last_due_get(cat, "hourly", "a1", "db1", &due, last, &e), e,
                  PGS_ENOTFOUND, "hourly");
    TU_ASSERT_ERR(catalog_schedule_last_due_set(cat, "../x", "a1", "db1", 1, NULL, &e), e,
                  PGS_EINVAL, "schedule name");
    TU_ASSERT_ERR(catalog_schedule_last_due_set(cat, "n", "a1", "db1", -5, NULL, &e), e, PGS_EINVAL,
                  "negative");
    TU_ASSERT_ERR(catalog_schedule_last_due_set(cat, "n", "a1", "db1", 5, "nope", &e), e,
                  PGS_EINVAL, "last backup id");
    catalog_close(cat);
}

static int collect_stats_cb(void *arg, const catalog_db_stats *s)
{
    catalog_db_stats *out = arg;
    for (int i = 0; i < 4; i++)
        if (out[i].agent[0] == '\0') {
            out[i] = *s;
            break;
        }
    return 0;
}

static void test_catalog_stats(void **state)
{
    char id[CATALOG_ID_SIZE], first[CATALOG_ID_SIZE];
    catalog_db_stats got[4];
    pgs_error e = {0};
    int64_t now = T0;
    catalog *cat = open_in(state, "c.db");
    catalog_set_clock(cat, fixed_clock, &now);
    add_agent(cat, "a1", "db1", "prod");
    add_agent(cat, "a2", "db2", "prod");
    /* a1/db1/prod: two complete (1234 bytes each), two failures; a1/db1/staging: one derived;
     * a2/db2: only a queued backup. */
    complete_in(cat, "prod", NULL, first);
    now += 60000;
    complete_in(cat, "prod", NULL, id);
    now += 60000;
    new_backup(cat, "a1", "db1", "prod", id);
    assert_int_equal(catalog_backup_fail(cat, id, "first failure", &e), 0);
    now += 60000;
    new_backup(cat, "a1", "db1", "prod", id);
    assert_int_equal(catalog_backup_fail(cat, id, "second failure", &e), 0);
    complete_in(cat, "staging", first, id);
    new_backup(cat, "a2", "db2", "prod", id);

    memset(got, 0, sizeof(got));
    assert_int_equal(catalog_stats(cat, collect_stats_cb, got, &e), 0);
    assert_string_equal(got[0].environment, "prod");
    assert_int_equal(got[0].complete, 2);
    assert_int_equal(got[0].total_bytes, 2468);
    assert_int_equal(got[0].average_bytes, 1234);
    assert_string_equal(got[0].oldest_complete, "2026-11-21T16:05:29.000Z");
    assert_string_equal(got[0].newest_complete, "2026-11-21T16:06:29.000Z");
    assert_int_equal(got[0].failed, 2);
    assert_string_equal(got[0].last_failure, "second failure");
    assert_string_equal(got[0].last_failure_at, "2026-11-21T16:08:29.000Z");
    assert_string_equal(got[1].environment, "staging");
    assert_int_equal(got[1].complete, 1);
    assert_int_equal(got[1].failed, 0);
    assert_string_equal(got[1].last_failure, "");
    assert_string_equal(got[2].agent, "a2");
    assert_int_equal(got[2].complete, 0);
    assert_int_equal(got[2].average_bytes, 0);
    assert_string_equal(got[2].newest_complete, "");
    assert_string_equal(got[3].agent, "");
    json_t *j = catalog_stats_to_json(&got[2]);
    assert_true(json_is_null(json_object_get(j, "newest_complete")));
    assert_true(json_is_null(json_object_get(j, "last_failure")));
    assert_int_equal(json_integer_value(json_object_get(j, "complete")), 0);
    json_decref(j);
    j = catalog_stats_to_json(&got[0]);
    assert_int_equal(json_integer_value(json_object_get(j, "total_bytes")), 2468);
    assert_string_equal(json_string_value(json_object_get(j, "last_failure")), "second failure");
    json_decref(j);
    catalog_close(cat);
}

static int count_dbs_cb(void *arg, const catalog_database *d)
{
    (void)d;
    (*(int *)arg)++;
    return 0;
}

static void test_catalog_import(void **state)
{
    catalog_backup b;
    pgs_error e = {0};
    catalog *cat = open_in(state, "c.db");
    const char *rcpts[] = {RCPT_2, RCPT_1};
    catalog_backup_import_req r = {
        .id = OLD_SRC,
        .agent = "a9",
        .database = "db9",
        .environment = "prod",
        .label = "weekly",
        .requested_by = "schedule",
        .scheduled = "nightly",
        .created_at = "2026-11-21T16:05:29.123Z",
        .started_at = "2026-11-21T16:05:30.000Z",
        .finished_at = "2026-11-21T16:06:00.000Z",
        .bytes = 4096,
        .sha256 = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        .storage_key = "prod/a9/db9/" OLD_SRC ".pgship",
        .server_version = "16.2",
        .pg_dump_version = "16.2",
        .recipients = rcpts,
        .nrecipients = 2};
    assert_int_equal(catalog_backup_import(cat, &r, &e), 0);
    assert_int_equal(catalog_backup_get(cat, OLD_SRC, &b, &e), 0);
    assert_int_equal(b.state, CATALOG_COMPLETE);
    assert_string_equal(b.created_at, "2026-11-21T16:05:29.123Z");
    assert_string_equal(b.finished_at, "2026-11-21T16:06:00.000Z");
    assert_string_equal(b.sha256, SHA_A);
    assert_string_equal(b.scheduled, "nightly");
    assert_string_equal(b.label, "weekly");
    assert_string_equal(b.recipients[0], RCPT_2);
    assert_int_equal(b.bytes, 4096);
    assert_int_equal(b.dump_bytes, 0);
    /* the agent and its database were created */
    int n = 0;
    assert_int_equal(catalog_agents_list(cat, count_agents_cb, &n, &e), 0);
    assert_int_equal(n, 1);
    n = 0;
    assert_int_equal(catalog_databases_list(cat, "a9", count_dbs_cb, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_int_equal(catalog_latest_complete(cat, "a9", "db9", &b, &e), 0);
    assert_string_equal(b.id, OLD_SRC);

    TU_ASSERT_ERR(catalog_backup_import(cat, &r, &e), e, PGS_EEXIST, OLD_SRC);
    /* A derived copy needs its source, and says nothing of where its database lives. */
    catalog_backup_import_req d = r;
    d.id = OLD_DERIVED;
    d.environment = "staging";
    d.source_backup_id = "20261121T160529Z-deadbeef";
    TU_ASSERT_ERR(catalog_backup_import(cat, &d, &e), e, PGS_ENOTFOUND, "deadbeef");
    d.source_backup_id = OLD_SRC;
    assert_int_equal(catalog_backup_import(cat, &d, &e), 0);
    n = 0;
    assert_int_equal(catalog_databases_list(cat, "a9", count_dbs_cb, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_int_equal(catalog_latest_complete(cat, "a9", "db9", &b, &e), 0);
    assert_string_equal(b.id, OLD_SRC);

    /* Every field is checked. */
    catalog_backup_import_req bad = r;
    bad.id = OLD_FAILED;
    bad.started_at = "2026-11-21 16:05:30";
    TU_ASSERT_ERR(catalog_backup_import(cat, &bad, &e), e, PGS_EINVAL, "started_at");
    bad = r;
    bad.id = OLD_FAILED;
    bad.created_at = "2026-02-30T16:05:30.000Z";
    TU_ASSERT_ERR(catalog_backup_import(cat, &bad, &e), e, PGS_EINVAL, "created_at");
    bad = r;
    bad.id = OLD_FAILED;
    bad.bytes = 0;
    TU_ASSERT_ERR(catalog_backup_import(cat, &bad, &e), e, PGS_ELIMIT, "size");
    bad = r;
    bad.id = OLD_FAILED;
    bad.storage_key = "../x";
    TU_ASSERT_ERR(catalog_backup_import(cat, &bad, &e), e, PGS_EINVAL, "storage key");
    bad.storage_key = NULL;
    TU_ASSERT_ERR(catalog_backup_import(cat, &bad, &e), e, PGS_EINVAL, "storage key");
    bad = r;
    bad.id = OLD_FAILED;
    bad.sha256 = "abc";
    TU_ASSERT_ERR(catalog_backup_import(cat, &bad, &e), e, PGS_EINVAL, "SHA-256");
    bad = r;
    bad.id = "20261121T160529Z-XYZ";
    TU_ASSERT_ERR(catalog_backup_import(cat, &bad, &e), e, PGS_EINVAL, "backup id");
    bad = r;
    bad.id = OLD_FAILED;
    bad.agent = "a/b";
    TU_ASSERT_ERR(catalog_backup_import(cat, &bad, &e), e, PGS_EINVAL, "agent name");
    TU_ASSERT_ERR(catalog_backup_get(cat, OLD_FAILED, &b, &e), e, PGS_ENOTFOUND, OLD_FAILED);
    catalog_close(cat);
}

static void test_catalog_time_format_and_parse(void **state)
{
    (void)state;
    char out[CATALOG_TIME_SIZE];
    int64_t ms = 0;
    catalog_time_format(T0 + 123, out);
    assert_string_equal(out, "2026-11-21T16:05:29.123Z");
    assert_int_equal(catalog_time_parse(out, &ms), 0);
    assert_int_equal(ms, T0 + 123);
    assert_int_equal(catalog_time_parse("1970-01-01T00:00:00.000Z", &ms), 0);
    assert_int_equal(ms, 0);
    assert_int_equal(catalog_time_parse("2024-02-29T23:59:59.999Z", &ms), 0);
    assert_int_equal(ms, 1709251199999LL);
    static const char *const bad[] = {
        "2023-02-29T00:00:00.000Z", "2026-13-01T00:00:00.000Z", "2026-11-21T24:00:00.000Z",
        "2026-11-21T16:05:29Z",     "2026-11-21T16:05:29.123",  "2026-11-21 16:05:29.123Z",
        "1969-12-31T23:59:59.999Z", "2026-11-21T16:05:29.12xZ", "",
        "2026-11-21T16:05:29.123Z "};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (catalog_time_parse(bad[i], &ms) != PGS_EINVAL)
            fail_msg("accepted \"%s\"", bad[i]);
    assert_int_equal(catalog_time_parse(NULL, &ms), PGS_EINVAL);
}

static void test_catalog_create_at_version_bounds(void **state)
{
    char path[600];
    pgs_error e = {0};
    tu_path_in(state, "x.db", path, sizeof(path));
    TU_ASSERT_ERR(catalog_create_at_version(path, 0, &e), e, PGS_EINVAL, "schema version");
    TU_ASSERT_ERR(catalog_create_at_version(path, CATALOG_SCHEMA_VERSION + 1, &e), e, PGS_EINVAL,
                  "schema version");
    assert_int_equal(catalog_create_at_version(path, CATALOG_SCHEMA_VERSION, &e), 0);
    assert_int_equal(raw_int(path, "PRAGMA user_version"), CATALOG_SCHEMA_VERSION);
}

#define T(name) cmocka_unit_test_setup_teardown(name, tu_tmpdir_setup, tu_tmpdir_teardown)

int main(void)
{
    log_set_level(LOG_WARN); /* migrations and recoveries log at info */
    const struct CMUnitTest tests[] = {
        T(test_catalog_open_creates_and_reopen_keeps_data),
        T(test_catalog_migrates_an_empty_file),
        T(test_catalog_refuses_newer_schema),
        T(test_catalog_refuses_foreign_files),
        T(test_catalog_legal_transitions),
        T(test_catalog_illegal_transitions),
        T(test_catalog_complete_requires_object),
        T(test_catalog_schema_enforces_rules),
        T(test_catalog_recover_after_crash),
        T(test_catalog_list_filters_and_order),
        T(test_catalog_latest_complete),
        T(test_catalog_id_format_and_validation),
        T(test_catalog_agents_and_databases),
        T(test_catalog_strings_bounded),
        T(test_catalog_json_fields),
        cmocka_unit_test(test_catalog_state_names),
        T(test_catalog_two_handles_share_the_file),
        T(test_catalog_restore_legal_transitions),
        T(test_catalog_restore_illegal_transitions),
        T(test_catalog_restore_schema_enforces_rules),
        T(test_catalog_restore_strings_bounded),
        T(test_catalog_migrates_version_1),
        T(test_catalog_migrates_version_2),
        T(test_catalog_pin_and_delete),
        T(test_catalog_verifications),
        T(test_catalog_audit),
        T(test_catalog_schedule_runs),
        T(test_catalog_stats),
        T(test_catalog_import),
        cmocka_unit_test(test_catalog_time_format_and_parse),
        T(test_catalog_create_at_version_bounds),
        T(test_catalog_recover_fails_restores),
        T(test_catalog_restore_list_filters_and_order),
        T(test_catalog_restore_json_fields),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
