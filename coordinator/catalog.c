/*
 * The catalog in SQLite (see catalog.h for the model, docs/catalog.md for the schema and its
 * history).
 *
 * Rules this file keeps: every value from a caller goes through a check at the API and into a
 * bound parameter of a prepared statement, never into SQL text; every state change is a single
 * UPDATE whose WHERE names the state it leaves, so the database decides who wins; the schema
 * repeats the rules (CHECK constraints, a transition trigger) so that a future code path or a
 * hand edit in the sqlite3 shell cannot produce a complete row without an object.
 */
#include "coordinator/catalog.h"
#include "common/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

/* "PGSH": marks the file as ours, so that another program's SQLite file is not migrated. */
#define CATALOG_APPLICATION_ID 0x50475348
/* How long a statement waits for another connection's write lock before giving up: long enough
 * for the CLI's or the API's short transactions, short enough not to stall the main loop for
 * long. */
#define CATALOG_BUSY_TIMEOUT_MS 5000
/* A new id collides only when two backups are created in the same second with the same 32
 * random bits; a few retries make that impossible in practice. */
#define CATALOG_ID_TRIES 8
/* The recipients column as we write it is at most 32 ids of 16 hex digits in JSON; anything much
 * longer was not written by us. */
#define CATALOG_RECIPIENTS_JSON_MAX 1024

struct catalog {
    sqlite3 *db;
    int iterating; /* inside a list callback: calls into this handle are refused */
    int64_t (*now_ms)(void *arg);
    void *clock_arg;
    char path[1024];
};

/*
 * Migrations, in order: migrations[i] takes a catalog from schema version i to i + 1. Each runs in
 * one transaction together with the user_version bump, so a crash leaves the old version or the
 * new one. Never edit a released entry; append a new one (and raise CATALOG_SCHEMA_VERSION).
 */
static const char *const migrations[] = {
    /* 0 -> 1: the first schema. */
    "PRAGMA application_id = 1346851656;\n" /* CATALOG_APPLICATION_ID */
    "CREATE TABLE agents (\n"
    "    name        TEXT PRIMARY KEY NOT NULL,\n"
    "    key_id      TEXT,\n"
    "    public_key  TEXT,\n"
    "    version     TEXT NOT NULL DEFAULT '',\n"
    "    first_seen  TEXT NOT NULL,\n"
    "    last_seen   TEXT NOT NULL,\n"
    "    connected   INTEGER NOT NULL DEFAULT 0 CHECK (connected IN (0, 1))\n"
    ") STRICT;\n"
    "CREATE TABLE databases (\n"
    "    agent          TEXT NOT NULL REFERENCES agents (name) ON DELETE CASCADE,\n"
    "    name           TEXT NOT NULL,\n"
    "    environment    TEXT NOT NULL,\n"
    "    server_version TEXT NOT NULL DEFAULT '',\n"
    "    first_seen     TEXT NOT NULL,\n"
    "    last_seen      TEXT NOT NULL,\n"
    "    PRIMARY KEY (agent, name)\n"
    ") STRICT;\n"
    "CREATE TABLE backups (\n"
    "    id               TEXT PRIMARY KEY NOT NULL CHECK (id GLOB\n"
    "        '[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z-"
    "[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]'),\n"
    "    agent            TEXT NOT NULL REFERENCES agents (name),\n"
    "    database         TEXT NOT NULL,\n"
    "    environment      TEXT NOT NULL,\n"
    "    label            TEXT NOT NULL DEFAULT '',\n"
    "    state            TEXT NOT NULL DEFAULT 'queued'\n"
    "                     CHECK (state IN ('queued', 'running', 'complete', 'failed')),\n"
    "    error            TEXT,\n"
    "    requested_by     TEXT NOT NULL DEFAULT '',\n"
    "    created_at       TEXT NOT NULL,\n"
    "    started_at       TEXT,\n"
    "    finished_at      TEXT,\n"
    "    bytes            INTEGER CHECK (bytes >= 0),\n"
    "    dump_bytes       INTEGER CHECK (dump_bytes >= 0),\n"
    "    storage_key      TEXT,\n"
    "    sha256           TEXT CHECK (length(sha256) = 64 AND sha256 NOT GLOB '*[^0-9a-f]*'),\n"
    "    server_version   TEXT,\n"
    "    pg_dump_version  TEXT,\n"
    "    recipients       TEXT NOT NULL DEFAULT '[]'\n"
    /* The shape of a JSON array of hex key ids, by GLOB: the JSON functions are not marked
     * innocuous in SQLite 3.40, and trusted_schema is off. */
    "                     CHECK (recipients GLOB '[[]*[]]'\n"
    "                            AND recipients NOT GLOB '*[^][\",0-9a-f]*'),\n"
    "    source_backup_id TEXT REFERENCES backups (id),\n"
    /* coalesce: a CHECK that evaluates to NULL passes, so every test here must be true or false. */
    "    CHECK (state <> 'complete' OR (coalesce(length(storage_key), 0) > 0\n"
    "           AND coalesce(length(sha256), 0) = 64 AND coalesce(bytes, 0) > 0\n"
    "           AND started_at IS NOT NULL AND finished_at IS NOT NULL)),\n"
    "    CHECK (state <> 'failed' OR (error IS NOT NULL AND finished_at IS NOT NULL)),\n"
    "    CHECK (state <> 'running' OR started_at IS NOT NULL)\n"
    ") STRICT;\n"
    "CREATE INDEX backups_by_database ON backups (agent, database, created_at);\n"
    "CREATE INDEX backups_by_created ON backups (created_at);\n"
    "CREATE INDEX backups_in_flight ON backups (state) WHERE state IN ('queued', 'running');\n"
    "CREATE TRIGGER backups_state_transition BEFORE UPDATE OF state ON backups\n"
    "FOR EACH ROW WHEN NOT ((OLD.state = 'queued' AND NEW.state IN ('running', 'failed'))\n"
    "                    OR (OLD.state = 'running' AND NEW.state IN ('complete', 'failed')))\n"
    "BEGIN SELECT RAISE(ABORT, 'illegal backup state transition'); END;\n"
    "CREATE TRIGGER backups_complete_is_final\n"
    "BEFORE UPDATE OF id, agent, database, environment, started_at, finished_at, bytes,\n"
    "                 storage_key, sha256 ON backups\n"
    "FOR EACH ROW WHEN OLD.state = 'complete'\n"
    "BEGIN SELECT RAISE(ABORT, 'a complete backup does not change'); END;\n",

    /* 1 -> 2: restores and syncs. Nothing else changes, so a version 1 catalog keeps every row. */
    "CREATE TABLE restores (\n"
    "    id                  TEXT PRIMARY KEY NOT NULL CHECK (id GLOB\n"
    "        '[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z-"
    "[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]'),\n"
    "    kind                TEXT NOT NULL CHECK (kind IN ('restore', 'sync')),\n"
    "    requested_by        TEXT NOT NULL DEFAULT '',\n"
    "    source              TEXT NOT NULL\n"
    "                        CHECK (length(CAST(source AS BLOB)) BETWEEN 1 AND 160),\n"
    "    source_backup_id    TEXT REFERENCES backups (id),\n"
    "    source_agent        TEXT,\n"
    "    source_database     TEXT,\n"
    "    source_environment  TEXT,\n"
    "    target_agent        TEXT NOT NULL REFERENCES agents (name),\n"
    "    target_database     TEXT NOT NULL,\n"
    "    target_environment  TEXT NOT NULL,\n"
    "    profile             TEXT,\n"
    "    sanitizer_agent     TEXT,\n"
    "    sanitized_backup_id TEXT REFERENCES backups (id),\n"
    "    safety_backup_id    TEXT REFERENCES backups (id),\n"
    "    state               TEXT NOT NULL DEFAULT 'queued'\n"
    "                        CHECK (state IN ('queued', 'running', 'complete', 'failed')),\n"
    "    step                TEXT NOT NULL DEFAULT ''\n"
    "                        CHECK (length(step) <= 31 AND step NOT GLOB '*[^a-z_]*'),\n"
    "    error               TEXT,\n"
    "    created_at          TEXT NOT NULL,\n"
    "    started_at          TEXT,\n"
    "    finished_at         TEXT,\n"
    /* JSON object texts, bounded in bytes (CATALOG_OPTIONS_MAX, CATALOG_REPORT_MAX); the code
     * checks they parse, the schema only their shape and size (see the note on recipients). */
    "    options             TEXT NOT NULL DEFAULT '{}'\n"
    "                        CHECK (options GLOB '{*}' AND length(CAST(options AS BLOB)) <= "
    "16384),\n"
    "    report              TEXT\n"
    "                        CHECK (report GLOB '{*}' AND length(CAST(report AS BLOB)) <= "
    "1048576),\n"
    "    CHECK (state <> 'complete' OR (step = 'done' AND error IS NULL\n"
    "           AND source_backup_id IS NOT NULL AND started_at IS NOT NULL\n"
    "           AND finished_at IS NOT NULL)),\n"
    "    CHECK (state <> 'failed' OR (error IS NOT NULL AND finished_at IS NOT NULL)),\n"
    "    CHECK (state <> 'running' OR (started_at IS NOT NULL AND step <> ''))\n"
    ") STRICT;\n"
    "CREATE INDEX restores_by_target ON restores (target_agent, target_database, created_at);\n"
    "CREATE INDEX restores_by_created ON restores (created_at);\n"
    "CREATE INDEX restores_in_flight ON restores (state) WHERE state IN ('queued', 'running');\n"
    "CREATE TRIGGER restores_state_transition BEFORE UPDATE OF state ON restores\n"
    "FOR EACH ROW WHEN NOT ((OLD.state = 'queued' AND NEW.state IN ('running', 'failed'))\n"
    "                    OR (OLD.state = 'running' AND NEW.state IN ('complete', 'failed')))\n"
    "BEGIN SELECT RAISE(ABORT, 'illegal restore state transition'); END;\n"
    /* The record of what was done to a database: once finished, nothing in it changes. */
    "CREATE TRIGGER restores_finished_are_final BEFORE UPDATE ON restores\n"
    "FOR EACH ROW WHEN OLD.state IN ('complete', 'failed')\n"
    "BEGIN SELECT RAISE(ABORT, 'a finished restore does not change'); END;\n",

    /*
     * 2 -> 3: fleet operations. Backups get a pin, the last verification's result and the
     * schedule that asked; verifications, audit and schedule_runs are new.
     *
     * Restores are rebuilt without their foreign keys to backups: prune deletes backups, and a
     * finished restore (which no UPDATE may touch) keeps naming the backup it restored as history.
     * Triggers check instead that a restore names existing backups when it is written. The copy
     * keeps every row and column in order; the indexes and triggers go with the old table and
     * are made again.
     */
    "ALTER TABLE backups ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0 CHECK (pinned IN (0, 1));\n"
    "ALTER TABLE backups ADD COLUMN verified_at TEXT;\n"
    "ALTER TABLE backups ADD COLUMN verify_result TEXT\n"
    "    CHECK (verify_result = 'ok' OR (verify_result GLOB 'failed: ?*'\n"
    "           AND length(CAST(verify_result AS BLOB)) <= 1008));\n"
    "ALTER TABLE backups ADD COLUMN scheduled TEXT\n"
    "    CHECK (length(scheduled) BETWEEN 1 AND 63 AND scheduled NOT GLOB '*[^A-Za-z0-9._-]*');\n"
    /* Finds derived copies of a backup (and serves the foreign key's check on delete). */
    "CREATE INDEX backups_by_source ON backups (source_backup_id)\n"
    "    WHERE source_backup_id IS NOT NULL;\n"
    /* The rules of catalog_backup_delete that the row itself can show; the foreign key
     * source_backup_id refuses deleting the source of a derived copy. */
    "CREATE TRIGGER backups_delete_finished_unpinned BEFORE DELETE ON backups\n"
    "FOR EACH ROW WHEN OLD.state NOT IN ('complete', 'failed') OR OLD.pinned <> 0\n"
    "BEGIN SELECT RAISE(ABORT, 'only an unpinned complete or failed backup can be deleted'); END;\n"
    "CREATE TABLE restores_v3 (\n"
    "    id                  TEXT PRIMARY KEY NOT NULL CHECK (id GLOB\n"
    "        '[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z-"
    "[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]'),\n"
    "    kind                TEXT NOT NULL CHECK (kind IN ('restore', 'sync')),\n"
    "    requested_by        TEXT NOT NULL DEFAULT '',\n"
    "    source              TEXT NOT NULL\n"
    "                        CHECK (length(CAST(source AS BLOB)) BETWEEN 1 AND 160),\n"
    "    source_backup_id    TEXT,\n"
    "    source_agent        TEXT,\n"
    "    source_database     TEXT,\n"
    "    source_environment  TEXT,\n"
    "    target_agent        TEXT NOT NULL REFERENCES agents (name),\n"
    "    target_database     TEXT NOT NULL,\n"
    "    target_environment  TEXT NOT NULL,\n"
    "    profile             TEXT,\n"
    "    sanitizer_agent     TEXT,\n"
    "    sanitized_backup_id TEXT,\n"
    "    safety_backup_id    TEXT,\n"
    "    state               TEXT NOT NULL DEFAULT 'queued'\n"
    "                        CHECK (state IN ('queued', 'running', 'complete', 'failed')),\n"
    "    step                TEXT NOT NULL DEFAULT ''\n"
    "                        CHECK (length(step) <= 31 AND step NOT GLOB '*[^a-z_]*'),\n"
    "    error               TEXT,\n"
    "    created_at          TEXT NOT NULL,\n"
    "    started_at          TEXT,\n"
    "    finished_at         TEXT,\n"
    "    options             TEXT NOT NULL DEFAULT '{}'\n"
    "                        CHECK (options GLOB '{*}' AND length(CAST(options AS BLOB)) <= "
    "16384),\n"
    "    report              TEXT\n"
    "                        CHECK (report GLOB '{*}' AND length(CAST(report AS BLOB)) <= "
    "1048576),\n"
    "    CHECK (state <> 'complete' OR (step = 'done' AND error IS NULL\n"
    "           AND source_backup_id IS NOT NULL AND started_at IS NOT NULL\n"
    "           AND finished_at IS NOT NULL)),\n"
    "    CHECK (state <> 'failed' OR (error IS NOT NULL AND finished_at IS NOT NULL)),\n"
    "    CHECK (state <> 'running' OR (started_at IS NOT NULL AND step <> ''))\n"
    ") STRICT;\n"
    "INSERT INTO restores_v3 SELECT * FROM restores;\n"
    "DROP TABLE restores;\n"
    "ALTER TABLE restores_v3 RENAME TO restores;\n"
    "CREATE INDEX restores_by_target ON restores (target_agent, target_database, created_at);\n"
    "CREATE INDEX restores_by_created ON restores (created_at);\n"
    "CREATE INDEX restores_in_flight ON restores (state) WHERE state IN ('queued', 'running');\n"
    "CREATE TRIGGER restores_state_transition BEFORE UPDATE OF state ON restores\n"
    "FOR EACH ROW WHEN NOT ((OLD.state = 'queued' AND NEW.state IN ('running', 'failed'))\n"
    "                    OR (OLD.state = 'running' AND NEW.state IN ('complete', 'failed')))\n"
    "BEGIN SELECT RAISE(ABORT, 'illegal restore state transition'); END;\n"
    "CREATE TRIGGER restores_finished_are_final BEFORE UPDATE ON restores\n"
    "FOR EACH ROW WHEN OLD.state IN ('complete', 'failed')\n"
    "BEGIN SELECT RAISE(ABORT, 'a finished restore does not change'); END;\n"
    "CREATE TRIGGER restores_insert_names_backups BEFORE INSERT ON restores\n"
    "FOR EACH ROW WHEN (NEW.source_backup_id IS NOT NULL\n"
    "                   AND NOT EXISTS (SELECT 1 FROM backups WHERE id = NEW.source_backup_id))\n"
    "               OR (NEW.sanitized_backup_id IS NOT NULL\n"
    "                   AND NOT EXISTS (SELECT 1 FROM backups WHERE id = "
    "NEW.sanitized_backup_id))\n"
    "               OR (NEW.safety_backup_id IS NOT NULL\n"
    "                   AND NOT EXISTS (SELECT 1 FROM backups WHERE id = NEW.safety_backup_id))\n"
    "BEGIN SELECT RAISE(ABORT, 'a restore names a backup that is not in the catalog'); END;\n"
    /* Only a reference that changes is checked: a running restore whose backup went keeps its
     * record writable. */
    "CREATE TRIGGER restores_update_names_backups\n"
    "BEFORE UPDATE OF source_backup_id, sanitized_backup_id, safety_backup_id ON restores\n"
    "FOR EACH ROW WHEN (NEW.source_backup_id IS NOT OLD.source_backup_id\n"
    "                   AND NEW.source_backup_id IS NOT NULL\n"
    "                   AND NOT EXISTS (SELECT 1 FROM backups WHERE id = NEW.source_backup_id))\n"
    "               OR (NEW.sanitized_backup_id IS NOT OLD.sanitized_backup_id\n"
    "                   AND NEW.sanitized_backup_id IS NOT NULL\n"
    "                   AND NOT EXISTS (SELECT 1 FROM backups WHERE id = "
    "NEW.sanitized_backup_id))\n"
    "               OR (NEW.safety_backup_id IS NOT OLD.safety_backup_id\n"
    "                   AND NEW.safety_backup_id IS NOT NULL\n"
    "                   AND NOT EXISTS (SELECT 1 FROM backups WHERE id = NEW.safety_backup_id))\n"
    "BEGIN SELECT RAISE(ABORT, 'a restore names a backup that is not in the catalog'); END;\n"
    "CREATE TABLE verifications (\n"
    "    id           TEXT PRIMARY KEY NOT NULL CHECK (id GLOB\n"
    "        '[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z-"
    "[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]'),\n"
    "    backup_id    TEXT NOT NULL CHECK (backup_id GLOB\n"
    "        '[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z-"
    "[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]'),\n"
    "    agent        TEXT NOT NULL\n"
    "                 CHECK (length(agent) BETWEEN 1 AND 63 AND agent NOT GLOB "
    "'*[^A-Za-z0-9._-]*'),\n"
    "    restore_test INTEGER NOT NULL DEFAULT 0 CHECK (restore_test IN (0, 1)),\n"
    "    state        TEXT NOT NULL DEFAULT 'queued'\n"
    "                 CHECK (state IN ('queued', 'running', 'ok', 'failed')),\n"
    "    error        TEXT,\n"
    "    created_at   TEXT NOT NULL,\n"
    "    started_at   TEXT,\n"
    "    finished_at  TEXT,\n"
    "    report       TEXT\n"
    "                 CHECK (report GLOB '{*}' AND length(CAST(report AS BLOB)) <= 1048576),\n"
    "    CHECK (state <> 'ok' OR (error IS NULL AND finished_at IS NOT NULL)),\n"
    "    CHECK (state <> 'failed' OR (error IS NOT NULL AND finished_at IS NOT NULL)),\n"
    "    CHECK (state <> 'running' OR started_at IS NOT NULL)\n"
    ") STRICT;\n"
    "CREATE INDEX verifications_by_backup ON verifications (backup_id, created_at);\n"
    "CREATE INDEX verifications_by_created ON verifications (created_at);\n"
    "CREATE INDEX verifications_in_flight ON verifications (state)\n"
    "    WHERE state IN ('queued', 'running');\n"
    "CREATE TRIGGER verifications_state_transition BEFORE UPDATE OF state ON verifications\n"
    "FOR EACH ROW WHEN NOT ((OLD.state = 'queued' AND NEW.state IN ('running', 'ok', 'failed'))\n"
    "                    OR (OLD.state = 'running' AND NEW.state IN ('ok', 'failed')))\n"
    "BEGIN SELECT RAISE(ABORT, 'illegal verification state transition'); END;\n"
    "CREATE TRIGGER verifications_finished_are_final BEFORE UPDATE ON verifications\n"
    "FOR EACH ROW WHEN OLD.state IN ('ok', 'failed')\n"
    "BEGIN SELECT RAISE(ABORT, 'a finished verification does not change'); END;\n"
    "CREATE TRIGGER verifications_name_a_backup BEFORE INSERT ON verifications\n"
    "FOR EACH ROW WHEN NOT EXISTS (SELECT 1 FROM backups WHERE id = NEW.backup_id)\n"
    "BEGIN SELECT RAISE(ABORT, 'a verification names a backup that is not in the catalog'); END;\n"
    "CREATE TABLE audit (\n"
    "    id     INTEGER PRIMARY KEY AUTOINCREMENT,\n"
    "    at     TEXT NOT NULL,\n"
    "    who    TEXT NOT NULL CHECK (length(CAST(who AS BLOB)) BETWEEN 1 AND 128),\n"
    "    role   TEXT NOT NULL DEFAULT '' CHECK (length(CAST(role AS BLOB)) <= 31),\n"
    "    action TEXT NOT NULL\n"
    "           CHECK (length(action) BETWEEN 1 AND 31 AND action NOT GLOB '*[^a-z_]*'),\n"
    "    target TEXT NOT NULL DEFAULT '' CHECK (length(CAST(target AS BLOB)) <= 255),\n"
    "    result TEXT NOT NULL CHECK (length(CAST(result AS BLOB)) BETWEEN 1 AND 1000),\n"
    "    detail TEXT CHECK (detail GLOB '{*}' AND length(CAST(detail AS BLOB)) <= 4096)\n"
    ") STRICT;\n"
    "CREATE TRIGGER audit_is_append_only BEFORE UPDATE ON audit\n"
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;\n"
    "CREATE TABLE schedule_runs (\n"
    "    schedule       TEXT NOT NULL,\n"
    "    agent          TEXT NOT NULL,\n"
    "    database       TEXT NOT NULL,\n"
    "    last_due       INTEGER NOT NULL CHECK (last_due >= 0),\n"
    "    last_backup_id TEXT CHECK (last_backup_id GLOB\n"
    "        '[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]T[0-9][0-9][0-9][0-9][0-9][0-9]Z-"
    "[0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f][0-9a-f]'),\n"
    "    updated_at     TEXT NOT NULL,\n"
    "    PRIMARY KEY (schedule, agent, database)\n"
    ") STRICT;\n",
};

#define CATALOG_NMIGRATIONS ((int)(sizeof(migrations) / sizeof(migrations[0])))

_Static_assert(CATALOG_NMIGRATIONS == CATALOG_SCHEMA_VERSION, "one migration per schema version");
_Static_assert(CATALOG_APPLICATION_ID == 1346851656, "the migration spells the id in decimal");

/* The columns every backup query reads, in the order row_to_backup expects. */
#define BACKUP_COLUMNS                                                                             \
    "id, agent, database, environment, label, state, error, requested_by, created_at, "            \
    "started_at, finished_at, bytes, dump_bytes, storage_key, sha256, server_version, "            \
    "pg_dump_version, recipients, source_backup_id, pinned, verified_at, verify_result, scheduled"

/* ---- states, names and checks ---- */

static const char *const state_names[] = {"any", "queued", "running", "complete", "failed"};

const char *catalog_state_name(enum catalog_state s)
{
    if ((int)s < 0 || (int)s > CATALOG_FAILED)
        return "?";
    return state_names[s];
}

int catalog_state_parse(const char *name, enum catalog_state *out)
{
    for (int s = CATALOG_QUEUED; name != NULL && s <= CATALOG_FAILED; s++) {
        if (strcmp(name, state_names[s]) == 0) {
            *out = (enum catalog_state)s;
            return 0;
        }
    }
    return PGS_EINVAL;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_lower_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f');
}

/* The number in s[0..n), which must be digits. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

int catalog_id_valid(const char *id)
{
    if (id == NULL || strnlen(id, CATALOG_ID_LEN + 1) != CATALOG_ID_LEN)
        return 0;
    for (int i = 0; i < 15; i++)
        if (i != 8 && !is_digit(id[i]))
            return 0;
    if (id[8] != 'T' || id[15] != 'Z' || id[16] != '-')
        return 0;
    for (int i = 17; i < CATALOG_ID_LEN; i++)
        if (!is_lower_hex(id[i]))
            return 0;
    int month = digits(id + 4, 2), day = digits(id + 6, 2);
    int hour = digits(id + 9, 2), min = digits(id + 11, 2), sec = digits(id + 13, 2);
    return month >= 1 && month <= 12 && day >= 1 && day <= 31 && hour <= 23 && min <= 59 &&
           sec <= 60;
}

_Static_assert(CATALOG_NAME_MAX == KEY_NAME_MAX, "catalog names follow the key name rule");

int catalog_name_valid(const char *name)
{
    return key_name_valid(name);
}

/*
 * Length of the well-formed UTF-8 sequence at s (at most avail bytes) and its code point, or 0 when
 * there is none: overlong forms, surrogates and values past U+10FFFF are refused, as JSON
 * encoders refuse them.
 */
static size_t utf8_seq(const unsigned char *s, size_t avail, uint32_t *cp)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xe0) == 0xc0) {
        len = 2, v = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3, v = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len > avail)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = (v << 6) | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *cp = v;
    return len;
}

static int is_control(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f);
}

/* Names are required and follow catalog_name_valid. Invalid values are not echoed: they may hold
 * anything, and the message ends up in logs. */
static int check_name(const char *what, const char *s, pgs_error *e)
{
    if (s == NULL || s[0] == '\0')
        return pgs_fail(e, PGS_EINVAL, "%s is missing", what);
    if (strnlen(s, CATALOG_NAME_MAX + 1) > CATALOG_NAME_MAX)
        return pgs_fail(e, PGS_ELIMIT, "%s is longer than %d bytes", what, CATALOG_NAME_MAX);
    if (!catalog_name_valid(s))
        return pgs_fail(e, PGS_EINVAL,
                        "%s is not valid: use A-Z a-z 0-9 . _ - and do not start with . or -",
                        what);
    return 0;
}

/* An optional name: NULL passes. */
static int check_opt_name(const char *what, const char *s, pgs_error *e)
{
    return s == NULL ? 0 : check_name(what, s, e);
}

static int check_id(const char *what, const char *id, pgs_error *e)
{
    if (id == NULL || id[0] == '\0')
        return pgs_fail(e, PGS_EINVAL, "%s is missing", what);
    if (!catalog_id_valid(id))
        return pgs_fail(e, PGS_EINVAL, "%s is not valid (expected YYYYMMDDTHHMMSSZ-xxxxxxxx)",
                        what);
    return 0;
}

/* Free text (labels, requester names): optional, UTF-8, no control characters, at most max
 * bytes. */
static int check_text(const char *what, const char *s, size_t max, pgs_error *e)
{
    if (s == NULL)
        return 0;
    size_t n = strnlen(s, max + 1);
    if (n > max)
        return pgs_fail(e, PGS_ELIMIT, "%s is longer than %zu bytes", what, max);
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = utf8_seq((const unsigned char *)s + i, n - i, &cp);
        if (len == 0)
            return pgs_fail(e, PGS_EINVAL, "%s is not valid UTF-8", what);
        if (is_control(cp))
            return pgs_fail(e, PGS_EINVAL, "%s contains a control character", what);
        i += len;
    }
    return 0;
}

/* Optional printable ASCII (versions, keys): spaces allowed when space is set, empty when
 * empty_ok is. */
static int check_ascii(const char *what, const char *s, size_t max, int space, int empty_ok,
                       pgs_error *e)
{
    if (s == NULL)
        return 0;
    size_t n = strnlen(s, max + 1);
    if (n > max)
        return pgs_fail(e, PGS_ELIMIT, "%s is longer than %zu bytes", what, max);
    if (n == 0 && !empty_ok)
        return pgs_fail(e, PGS_EINVAL, "%s is empty", what);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c > 0x7e || c < (space ? 0x20 : 0x21))
            return pgs_fail(e, PGS_EINVAL, "%s has a character outside printable ASCII%s", what,
                            space ? "" : " or a space");
    }
    return 0;
}

/* Storage keys are relative paths of printable ASCII without empty, "." or ".." segments, so that
 * a directory driver that joins them to its root cannot be led outside it. */
static int check_storage_key(const char *s, pgs_error *e)
{
    int rc = check_ascii("storage key", s, CATALOG_STORAGE_KEY_MAX, 1, 0, e);
    if (rc != 0)
        return rc;
    const char *seg = s;
    for (;;) {
        const char *end = strchr(seg, '/');
        size_t len = end ? (size_t)(end - seg) : strlen(seg);
        if (len == 0 || (len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
            return pgs_fail(e, PGS_EINVAL,
                            "storage key has an empty, \".\" or \"..\" path segment");
        if (end == NULL)
            break;
        seg = end + 1;
    }
    if (strchr(s, '\\') != NULL)
        return pgs_fail(e, PGS_EINVAL, "storage key contains a backslash");
    return 0;
}

/* 64 hex digits of either case, written lowercase to out. */
static int check_sha256(const char *s, char out[CATALOG_SHA256_HEX_LEN + 1], pgs_error *e)
{
    if (s == NULL || strnlen(s, CATALOG_SHA256_HEX_LEN + 1) != CATALOG_SHA256_HEX_LEN)
        return pgs_fail(e, PGS_EINVAL, "SHA-256 must be %d hex digits", CATALOG_SHA256_HEX_LEN);
    for (int i = 0; i < CATALOG_SHA256_HEX_LEN; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'F')
            c = (char)(c - 'A' + 'a');
        if (!is_lower_hex(c))
            return pgs_fail(e, PGS_EINVAL, "SHA-256 must be %d hex digits", CATALOG_SHA256_HEX_LEN);
        out[i] = c;
    }
    out[CATALOG_SHA256_HEX_LEN] = '\0';
    return 0;
}

/* Checks the recipients of info and writes them as a JSON array into out. Key ids are hex, so
 * the text needs no escaping. */
static int encode_recipients(const catalog_backup_info *info, char *out, size_t outlen,
                             pgs_error *e)
{
    if (info->nrecipients > CATALOG_RECIPIENTS_MAX)
        return pgs_fail(e, PGS_ELIMIT, "more than %d recipients", CATALOG_RECIPIENTS_MAX);
    if (info->nrecipients > 0 && info->recipients == NULL)
        return pgs_fail(e, PGS_EINVAL, "recipients are missing");
    size_t pos = 0;
    out[pos++] = '[';
    for (size_t i = 0; i < info->nrecipients; i++) {
        const char *r = info->recipients[i];
        int ok = r != NULL && strnlen(r, CATALOG_RECIPIENT_ID_LEN + 1) == CATALOG_RECIPIENT_ID_LEN;
        for (int j = 0; ok && j < CATALOG_RECIPIENT_ID_LEN; j++)
            ok = is_lower_hex(r[j]);
        if (!ok)
            return pgs_fail(e, PGS_EINVAL,
                            "recipient %zu is not a key id (%d lowercase hex digits)", i + 1,
                            CATALOG_RECIPIENT_ID_LEN);
        for (size_t k = 0; k < i; k++)
            if (strcmp(info->recipients[k], r) == 0)
                return pgs_fail(e, PGS_EINVAL, "recipient %s is listed twice", r);
        if (pos + CATALOG_RECIPIENT_ID_LEN + 4 > outlen)
            return pgs_fail(e, PGS_ELIMIT, "recipients do not fit");
        pos += (size_t)snprintf(out + pos, outlen - pos, "%s\"%s\"", i ? "," : "", r);
    }
    out[pos++] = ']';
    out[pos] = '\0';
    return 0;
}

static int check_info(const catalog_backup_info *info, char *recipients, size_t rlen, pgs_error *e)
{
    int rc;
    if ((rc = check_ascii("server version", info->server_version, CATALOG_VERSION_MAX, 1, 1, e)) ||
        (rc = check_ascii("pg_dump version", info->pg_dump_version, CATALOG_VERSION_MAX, 1, 1, e)))
        return rc;
    if (info->storage_key != NULL && (rc = check_storage_key(info->storage_key, e)) != 0)
        return rc;
    return encode_recipients(info, recipients, rlen, e);
}

/*
 * Failure reasons are recorded whatever they hold (often the last lines of pg_dump's stderr): bytes
 * that are not UTF-8 become '?', control characters other than newline and tab become spaces,
 * trailing white space goes, and text past max bytes (out holds max + 1) is cut at a character
 * boundary and marked with "...". Empty text becomes empty_text (which may be "").
 */
static void clean_text(const char *in, char *out, size_t max, const char *empty_text)
{
    const unsigned char *s = (const unsigned char *)(in ? in : "");
    size_t j = 0, n = strlen((const char *)s);
    int cut = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t len = utf8_seq(s + i, n - i, &cp);
        const unsigned char *src = s + i;
        unsigned char sub;
        if (len == 0) {
            sub = '?';
            src = &sub;
            i++, len = 1;
        } else {
            i += len;
            if (is_control(cp) && cp != '\n' && cp != '\t') {
                sub = ' ';
                src = &sub;
                len = 1;
            }
        }
        if (j + len > max) {
            cut = 1;
            break;
        }
        memcpy(out + j, src, len);
        j += len;
    }
    if (cut) {
        /* Make room for the marker, backing up to the first byte of a character (out[0..j) holds
         * whole characters only). */
        if (j > max - 3) {
            j = max - 3;
            while (j > 0 && ((unsigned char)out[j] & 0xc0) == 0x80)
                j--;
        }
        memcpy(out + j, "...", 3);
        j += 3;
    }
    while (j > 0 && (out[j - 1] == ' ' || out[j - 1] == '\n' || out[j - 1] == '\t'))
        j--;
    out[j] = '\0';
    if (j == 0)
        snprintf(out, max + 1, "%s", empty_text);
}

static void clean_reason(const char *in, char out[CATALOG_ERROR_MAX + 1])
{
    clean_text(in, out, CATALOG_ERROR_MAX, "no reason given");
}

/* ---- time and ids ---- */

static int64_t real_now_ms(void *arg)
{
    (void)arg;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void catalog_set_clock(catalog *cat, int64_t (*now_ms)(void *arg), void *arg)
{
    if (cat == NULL)
        return;
    cat->now_ms = now_ms ? now_ms : real_now_ms;
    cat->clock_arg = now_ms ? arg : NULL;
}

static void split_time(int64_t ms, struct tm *tm, int *millis)
{
    if (ms < 0)
        ms = 0;
    time_t t = (time_t)(ms / 1000);
    gmtime_r(&t, tm);
    *millis = (int)(ms % 1000);
}

static void format_time(int64_t ms, char out[CATALOG_TIME_SIZE])
{
    struct tm tm;
    int millis;
    split_time(ms, &tm, &millis);
    snprintf(out, CATALOG_TIME_SIZE, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
}

void catalog_time_format(int64_t unix_ms, char out[CATALOG_TIME_SIZE])
{
    format_time(unix_ms, out);
}

/* Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (no time zone, no libc). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

int catalog_time_parse(const char *text, int64_t *unix_ms)
{
    /* "YYYY-MM-DDTHH:MM:SS.mmmZ": digits where the pattern has 'd'. */
    static const char pattern[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    if (text == NULL || strnlen(text, CATALOG_TIME_LEN + 1) != CATALOG_TIME_LEN)
        return PGS_EINVAL;
    for (int i = 0; i < CATALOG_TIME_LEN; i++)
        if (pattern[i] == 'd' ? !is_digit(text[i]) : text[i] != pattern[i])
            return PGS_EINVAL;
    int y = digits(text, 4), mo = digits(text + 5, 2), d = digits(text + 8, 2);
    int h = digits(text + 11, 2), mi = digits(text + 14, 2), sec = digits(text + 17, 2);
    int ms = digits(text + 20, 3);
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 ||
        sec > 59)
        return PGS_EINVAL;
    *unix_ms = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000 + sec * 1000 + ms;
    return 0;
}

static void make_id(int64_t ms, char out[CATALOG_ID_SIZE])
{
    struct tm tm;
    int millis;
    uint32_t r;
    split_time(ms, &tm, &millis);
    randombytes_buf(&r, sizeof(r));
    snprintf(out, CATALOG_ID_SIZE, "%04d%02d%02dT%02d%02d%02dZ-%08x", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)r);
}

/* ---- SQLite plumbing ---- */

static int sql_code(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_NOMEM:
        return PGS_ENOMEM;
    case SQLITE_CONSTRAINT:
        return PGS_EINVAL;
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
        return PGS_EFORMAT;
    case SQLITE_TOOBIG:
        return PGS_ELIMIT;
    default:
        return PGS_EIO;
    }
}

/* Reports SQLite's error rc for "what", with SQLite's own message (which names a constraint, a
 * lock or a disk problem). */
static int sql_fail(catalog *cat, int rc, pgs_error *e, const char *what)
{
    const char *msg = cat->db ? sqlite3_errmsg(cat->db) : sqlite3_errstr(rc);
    return pgs_fail(e, sql_code(rc), "catalog %s: %s: %s", cat->path, what, msg);
}

static int sql_exec(catalog *cat, const char *sql, pgs_error *e, const char *what)
{
    int rc = sqlite3_exec(cat->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : sql_fail(cat, rc, e, what);
}

static int sql_prepare(catalog *cat, const char *sql, sqlite3_stmt **st, pgs_error *e)
{
    int rc = sqlite3_prepare_v3(cat->db, sql, -1, 0, st, NULL);
    return rc == SQLITE_OK ? 0 : sql_fail(cat, rc, e, "cannot prepare a statement");
}

/* Binds s, or NULL when s is NULL. The caller's strings outlive the statement's execution. */
static int bind_text(sqlite3_stmt *st, int i, const char *s)
{
    return s ? sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

/* Runs a statement that returns no rows. */
static int sql_step_done(catalog *cat, sqlite3_stmt *st, pgs_error *e, const char *what)
{
    int rc = sqlite3_step(st);
    return rc == SQLITE_DONE ? 0 : sql_fail(cat, rc, e, what);
}

static int pragma_int(catalog *cat, const char *sql, int64_t *out, pgs_error *e)
{
    sqlite3_stmt *st = NULL;
    int rc = sql_prepare(cat, sql, &st, e);
    if (rc != 0)
        return rc;
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else
        rc = sql_fail(cat, src, e, "cannot read the file header");
    sqlite3_finalize(st);
    return rc;
}

/* Every entry point starts here. */
static int catalog_enter(catalog *cat, pgs_error *e)
{
    if (cat == NULL || cat->db == NULL)
        return pgs_fail(e, PGS_EINVAL, "catalog is not open");
    if (cat->iterating)
        return pgs_fail(e, PGS_EINVAL, "catalog called from inside one of its list callbacks");
    return 0;
}

/* Copies column i (NULL as "") into out; a value longer than its field was not written by this
 * code and is refused rather than cut. */
static int col_text(sqlite3_stmt *st, int i, char *out, size_t size)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    size_t n = (size_t)sqlite3_column_bytes(st, i);
    if (s == NULL) {
        out[0] = '\0';
        return 0;
    }
    if (n >= size)
        return -1;
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

#define COL_TEXT(st, i, field) col_text((st), (i), (field), sizeof(field))

/* ---- open, migrate, close ---- */

static void rollback(catalog *cat)
{
    sqlite3_exec(cat->db, "ROLLBACK", NULL, NULL, NULL);
}

/*
 * One step towards target (CATALOG_SCHEMA_VERSION but in tests): applies the next migration in its
 * own transaction, or sets *done when there is none left. The version is read inside the write
 * transaction, so two processes opening an old catalog at once migrate it once.
 */
static int catalog_migrate_step(catalog *cat, int target, int *done, pgs_error *e)
{
    int64_t version = 0, app = 0, nobjects = 0;
    char bump[64];
    int rc = sql_exec(cat, "BEGIN IMMEDIATE", e, "cannot begin the migration");
    if (rc != 0)
        return rc;
    if ((rc = pragma_int(cat, "PRAGMA user_version", &version, e)) != 0 ||
        (rc = pragma_int(cat, "PRAGMA application_id", &app, e)) != 0 ||
        (rc = pragma_int(cat, "SELECT count(*) FROM sqlite_schema", &nobjects, e)) != 0)
        goto out;
    if (version > CATALOG_SCHEMA_VERSION) {
        rc = pgs_fail(e, PGS_EVERSION,
                      "catalog %s has schema version %lld, newer than version %d that this pgship "
                      "(%s) knows; use a newer pgship with this catalog",
                      cat->path, (long long)version, CATALOG_SCHEMA_VERSION, PGSHIP_VERSION);
        goto out;
    }
    /* Version 0 is a new file only when it is empty: never migrate another program's data. */
    if (app != CATALOG_APPLICATION_ID && (app != 0 || version != 0 || nobjects != 0)) {
        rc = pgs_fail(e, PGS_EFORMAT,
                      "%s is a SQLite database of another program (application id %lld, schema "
                      "version %lld), not a pgship catalog",
                      cat->path, (long long)app, (long long)version);
        goto out;
    }
    if (version >= target) {
        *done = 1;
        rc = sql_exec(cat, "COMMIT", e, "cannot end the migration check");
        goto out;
    }
    /* The version is a number from this code, not input: the one SQL text built at run time. */
    snprintf(bump, sizeof(bump), "PRAGMA user_version = %d", (int)version + 1);
    if ((rc = sql_exec(cat, migrations[version], e, "migration failed")) != 0 ||
        (rc = sql_exec(cat, bump, e, "cannot record the schema version")) != 0 ||
        (rc = sql_exec(cat, "COMMIT", e, "cannot commit the migration")) != 0) {
        pgs_wrap(e, "schema version %lld to %lld", (long long)version, (long long)version + 1);
        goto out;
    }
    log_info("catalog %s: schema migrated from version %lld to %lld", cat->path, (long long)version,
             (long long)version + 1);
out:
    if (rc != 0)
        rollback(cat);
    return rc;
}

static int catalog_migrate(catalog *cat, int target, pgs_error *e)
{
    int done = 0, rc = 0;
    while (rc == 0 && !done)
        rc = catalog_migrate_step(cat, target, &done, e);
    return rc;
}

/* catalog_open, migrating up to schema version target. */
static int catalog_open_to(const char *path, int target, catalog **out, pgs_error *e)
{
    catalog *cat = NULL;
    sqlite3_stmt *st = NULL;
    int rc = 0, src, fd;

    *out = NULL;
    if (path == NULL || path[0] == '\0')
        return pgs_fail(e, PGS_EINVAL, "catalog path is missing");
    if (strlen(path) >= sizeof(cat->path))
        return pgs_fail(e, PGS_ELIMIT, "catalog path is longer than %zu bytes",
                        sizeof(cat->path) - 1);
    if (sodium_init() < 0)
        return pgs_fail(e, PGS_EIO, "cannot initialize libsodium");
    if ((cat = calloc(1, sizeof(*cat))) == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    snprintf(cat->path, sizeof(cat->path), "%s", path);
    catalog_set_clock(cat, NULL, NULL);

    /* Create the file ourselves so that it is private from the start; SQLite gives its -wal and
     * -shm files the mode of the database file. */
    if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
        rc = pgs_fail(e, PGS_EIO, "cannot open catalog %s: %s", path, strerror(errno));
        goto out;
    }
    close(fd);
    src = sqlite3_open_v2(
        path, &cat->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE, NULL);
    if (src != SQLITE_OK) {
        rc = sql_fail(cat, src, e, "cannot open");
        goto out;
    }
    sqlite3_busy_timeout(cat->db, CATALOG_BUSY_TIMEOUT_MS);
    /* Defensive: no writes to the schema through SQL tricks; the file's schema may only call
     * functions marked harmless. */
    sqlite3_db_config(cat->db, SQLITE_DBCONFIG_DEFENSIVE, 1, (int *)NULL);
    sqlite3_db_config(cat->db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, (int *)NULL);

    /* Reading the header first turns "not a database" into one clear error. */
    int64_t ignored;
    if ((rc = pragma_int(cat, "PRAGMA application_id", &ignored, e)) != 0)
        goto out;
    if ((rc = sql_exec(cat, "PRAGMA foreign_keys = ON", e, "cannot enable foreign keys")) != 0)
        goto out;
    /* WAL lets the HTTP API and the CLI read while the coordinator writes. */
    if ((rc = sql_prepare(cat, "PRAGMA journal_mode = WAL", &st, e)) != 0)
        goto out;
    src = sqlite3_step(st);
    if (src != SQLITE_ROW) {
        rc = sql_fail(cat, src, e, "cannot switch to WAL mode");
        goto out;
    }
    const unsigned char *m = sqlite3_column_text(st, 0);
    if (m == NULL || strcmp((const char *)m, "wal") != 0) {
        rc = pgs_fail(e, PGS_EIO,
                      "catalog %s: cannot use WAL mode (journal mode stays \"%s\"); keep the "
                      "catalog on a local file system",
                      path, m ? (const char *)m : "?");
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    /*
     * FULL, not WAL's usual NORMAL: "complete" must be on disk before the agent is told so. Were it
     * lost in a power cut, the row would come back as running, recovery would fail it and hand its
     * storage key to the caller for removal: a good backup, already acknowledged, deleted.
     */
    if ((rc = sql_exec(cat, "PRAGMA synchronous = FULL", e, "cannot set synchronous")) != 0)
        goto out;
    if ((rc = catalog_migrate(cat, target, e)) != 0)
        goto out;
    *out = cat;
    cat = NULL;
out:
    sqlite3_finalize(st);
    catalog_close(cat);
    return rc;
}

int catalog_open(const char *path, catalog **out, pgs_error *e)
{
    return catalog_open_to(path, CATALOG_SCHEMA_VERSION, out, e);
}

int catalog_create_at_version(const char *path, int version, pgs_error *e)
{
    catalog *cat = NULL;
    if (version < 1 || version > CATALOG_SCHEMA_VERSION)
        return pgs_fail(e, PGS_EINVAL, "schema version %d is not one of 1..%d", version,
                        CATALOG_SCHEMA_VERSION);
    int rc = catalog_open_to(path, version, &cat, e);
    catalog_close(cat);
    return rc;
}

void catalog_close(catalog *cat)
{
    if (cat == NULL)
        return;
    if (cat->db != NULL) {
        /* Keeps the planner's statistics current at little cost, as SQLite advises on close. */
        sqlite3_exec(cat->db, "PRAGMA optimize", NULL, NULL, NULL);
        sqlite3_close_v2(cat->db);
    }
    free(cat);
}

/* ---- agents and databases ---- */

int catalog_agent_seen(catalog *cat, const char *name, const char *key_id, const char *public_key,
                       const char *version, int connected, pgs_error *e)
{
    static const char sql[] =
        "INSERT INTO agents (name, key_id, public_key, version, first_seen, last_seen, connected)"
        " VALUES (?1, ?2, ?3, coalesce(?4, ''), ?5, ?5, ?6)"
        " ON CONFLICT (name) DO UPDATE SET key_id = coalesce(?2, key_id),"
        " public_key = coalesce(?3, public_key), version = coalesce(?4, version),"
        " last_seen = ?5, connected = ?6";
    sqlite3_stmt *st = NULL;
    char now[CATALOG_TIME_SIZE];
    int rc;
    if ((rc = catalog_enter(cat, e)) || (rc = check_name("agent name", name, e)) ||
        (rc = check_ascii("agent key id", key_id, CATALOG_KEY_ID_MAX, 0, 0, e)) ||
        (rc = check_ascii("agent public key", public_key, CATALOG_PUBLIC_KEY_MAX, 1, 0, e)) ||
        (rc = check_ascii("agent version", version, CATALOG_VERSION_MAX, 1, 1, e)))
        return rc;
    format_time(cat->now_ms(cat->clock_arg), now);
    if ((rc = sql_prepare(cat, sql, &st, e)) != 0)
        return rc;
    if ((rc = bind_text(st, 1, name)) || (rc = bind_text(st, 2, key_id)) ||
        (rc = bind_text(st, 3, public_key)) || (rc = bind_text(st, 4, version)) ||
        (rc = bind_text(st, 5, now)) || (rc = sqlite3_bind_int(st, 6, connected ? 1 : 0))) {
        rc = sql_fail(cat, rc, e, "cannot record an agent");
        goto out;
    }
    if ((rc = sql_step_done(cat, st, e, "cannot record an agent")) != 0)
        pgs_wrap(e, "agent %s", name);
out:
    sqlite3_finalize(st);
    return rc;
}

int catalog_agent_disconnected(catalog *cat, const char *name, pgs_error *e)
{
    sqlite3_stmt *st = NULL;
    char now[CATALOG_TIME_SIZE];
    int rc;
    if ((rc = catalog_enter(cat, e)) || (rc = check_name("agent name", name, e)))
        return rc;
    format_time(cat->now_ms(cat->clock_arg), now);
    if ((rc = sql_prepare(cat, "UPDATE agents SET connected = 0, last_seen = ?2 WHERE name = ?1",
                          &st, e)) != 0)
        return rc;
    if ((rc = bind_text(st, 1, name)) || (rc = bind_text(st, 2, now))) {
        rc = sql_fail(cat, rc, e, "cannot record a disconnection");
        goto out;
    }
    if ((rc = sql_step_done(cat, st, e, "cannot record a disconnection")) != 0)
        goto out;
    if (sqlite3_changes(cat->db) == 0)
        rc = pgs_fail(e, PGS_ENOTFOUND, "no agent %s in the catalog", name);
out:
    sqlite3_finalize(st);
    return rc;
}

/*
 * Steps a query and hands each row to row(), which reads it and calls the caller's callback.
 * Callback results: 0 goes on, > 0 stops with success, < 0 stops with that code. While a
 * callback runs the handle refuses calls, since a write between two steps of a read on the same
 * connection may or may not show in the rows still to come.
 */
typedef int (*row_fn)(catalog *cat, sqlite3_stmt *st, void *ctx, pgs_error *e);

static int run_list(catalog *cat, sqlite3_stmt *st, row_fn row, void *ctx, pgs_error *e)
{
    for (;;) {
        int src = sqlite3_step(st);
        if (src == SQLITE_DONE)
            return 0;
        if (src != SQLITE_ROW)
            return sql_fail(cat, src, e, "cannot list");
        cat->iterating = 1;
        int rc = row(cat, st, ctx, e);
        cat->iterating = 0;
        if (rc > 0)
            return 0;
        if (rc < 0)
            return rc;
    }
}

struct agent_ctx {
    int (*cb)(void *arg, const catalog_agent *a);
    void *arg;
};

static int agent_row(catalog *cat, sqlite3_stmt *st, void *ctx, pgs_error *e)
{
    struct agent_ctx *c = ctx;
    catalog_agent a;
    memset(&a, 0, sizeof(a));
    if (COL_TEXT(st, 0, a.name) || COL_TEXT(st, 1, a.key_id) || COL_TEXT(st, 2, a.public_key) ||
        COL_TEXT(st, 3, a.version) || COL_TEXT(st, 4, a.first_seen) || COL_TEXT(st, 5, a.last_seen))
        return pgs_fail(e, PGS_EFORMAT,
                        "catalog %s: an agent row has a value longer than its limit", cat->path);
    a.connected = sqlite3_column_int(st, 6) != 0;
    return c->cb(c->arg, &a);
}

int catalog_agents_list(catalog *cat, int (*cb)(void *arg, const catalog_agent *a), void *arg,
                        pgs_error *e)
{
    sqlite3_stmt *st = NULL;
    struct agent_ctx c = {cb, arg};
    int rc;
    if ((rc = catalog_enter(cat, e)) != 0)
        return rc;
    if (cb == NULL)
        return pgs_fail(e, PGS_EINVAL, "no callback");
    if ((rc = sql_prepare(cat,
                          "SELECT name, key_id, public_key, version, first_seen, last_seen,"
                          " connected FROM agents ORDER BY name",
                          &st, e)) != 0)
        return rc;
    rc = run_list(cat, st, agent_row, &c, e);
    sqlite3_finalize(st);
    return rc;
}

int catalog_database_seen(catalog *cat, const char *agent, const char *db, const char *environment,
                          const char *server_version, pgs_error *e)
{
    static const char sql[] =
        "INSERT INTO databases (agent, name, environment, server_version, first_seen, last_seen)"
        " VALUES (?1, ?2, ?3, coalesce(?4, ''), ?5, ?5)"
        " ON CONFLICT (agent, name) DO UPDATE SET environment = ?3,"
        " server_version = coalesce(?4, server_version), last_seen = ?5";
    sqlite3_stmt *st = NULL;
    char now[CATALOG_TIME_SIZE];
    int rc, src;
    if ((rc = catalog_enter(cat, e)) || (rc = check_name("agent name", agent, e)) ||
        (rc = check_name("database name", db, e)) ||
        (rc = check_name("environment", environment, e)) ||
        (rc = check_ascii("server version", server_version, CATALOG_VERSION_MAX, 1, 1, e)))
        return rc;
    format_time(cat->now_ms(cat->clock_arg), now);
    if ((rc = sql_prepare(cat, sql, &st, e)) != 0)
        return rc;
    if ((rc = bind_text(st, 1, agent)) || (rc = bind_text(st, 2, db)) ||
        (rc = bind_text(st, 3, environment)) || (rc = bind_text(st, 4, server_version)) ||
        (rc = bind_text(st, 5, now))) {
        rc = sql_fail(cat, rc, e, "cannot record a database");
        goto out;
    }
    src = sqlite3_step(st);
    if (src == SQLITE_CONSTRAINT_FOREIGNKEY)
        rc = pgs_fail(e, PGS_ENOTFOUND, "no agent %s in the catalog (database %s)", agent, db);
    else if (src != SQLITE_DONE)
        rc = sql_fail(cat, src, e, "cannot record a database");
out:
    sqlite3_finalize(st);
    return rc;
}

struct database_ctx {
    int (*cb)(void *arg, const catalog_database *d);
    void *arg;
};

static int database_row(catalog *cat, sqlite3_stmt *st, void *ctx, pgs_error *e)
{
    struct database_ctx *c = ctx;
    catalog_database d;
    memset(&d, 0, sizeof(d));
    if (COL_TEXT(st, 0, d.agent) || COL_TEXT(st, 1, d.name) || COL_TEXT(st, 2, d.environment) ||
        COL_TEXT(st, 3, d.server_version) || COL_TEXT(st, 4, d.first_seen) ||
        COL_TEXT(st, 5, d.last_seen))
        return pgs_fail(e, PGS_EFORMAT,
                        "catalog %s: a database row has a value longer than its limit", cat->path);
    return c->cb(c->arg, &d);
}

int catalog_databases_list(catalog *cat, const char *agent,
                           int (*cb)(void *arg, const catalog_database *d), void *arg, pgs_error *e)
{
    sqlite3_stmt *st = NULL;
    struct database_ctx c = {cb, arg};
    int rc;
    if ((rc = catalog_enter(cat, e)) || (rc = check_opt_name("agent name", agent, e)))
        return rc;
    if (cb == NULL)
        return pgs_fail(e, PGS_EINVAL, "no callback");
    if ((rc = sql_prepare(cat,
                          "SELECT agent, name, environment, server_version, first_seen, last_seen"
                          " FROM databases WHERE ?1 IS NULL OR agent = ?1 ORDER BY agent, name",
                          &st, e)) != 0)
        return rc;
    if ((rc = bind_text(st, 1, agent)) != SQLITE_OK)
        rc = sql_fail(cat, rc, e, "cannot list databases");
    else
        rc = run_list(cat, st, database_row, &c, e);
    sqlite3_finalize(st);
    return rc;
}

/* ---- backups ---- */

/* Parses the recipients column (a JSON array of key ids, as encode_recipients wrote it). */
static int parse_recipients(const char *text, size_t len, catalog_backup *b)
{
    json_error_t jerr;
    if (len > CATALOG_RECIPIENTS_JSON_MAX)
        return -1;
    json_t *arr = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_array(arr) || json_array_size(arr) > CATALOG_RECIPIENTS_MAX) {
        json_decref(arr);
        return -1;
    }
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        const char *s = json_string_value(v);
        if (s == NULL || strlen(s) != CATALOG_RECIPIENT_ID_LEN) {
            json_decref(arr);
            return -1;
        }
        memcpy(b->recipients[i], s, CATALOG_RECIPIENT_ID_LEN + 1);
    }
    b->nrecipients = json_array_size(arr);
    json_decref(arr);
    return 0;
}

static int row_to_backup(catalog *cat, sqlite3_stmt *st, catalog_backup *b, pgs_error *e)
{
    char state[16];
    memset(b, 0, sizeof(*b));
    if (COL_TEXT(st, 0, b->id) || COL_TEXT(st, 1, b->agent) || COL_TEXT(st, 2, b->database) ||
        COL_TEXT(st, 3, b->environment) || COL_TEXT(st, 4, b->label) || COL_TEXT(st, 5, state) ||
        COL_TEXT(st, 6, b->error) || COL_TEXT(st, 7, b->requested_by) ||
        COL_TEXT(st, 8, b->created_at) || COL_TEXT(st, 9, b->started_at) ||
        COL_TEXT(st, 10, b->finished_at) || COL_TEXT(st, 13, b->storage_key) ||
        COL_TEXT(st, 14, b->sha256) || COL_TEXT(st, 15, b->server_version) ||
        COL_TEXT(st, 16, b->pg_dump_version) || COL_TEXT(st, 18, b->source_backup_id) ||
        COL_TEXT(st, 20, b->verified_at) || COL_TEXT(st, 21, b->verify_result) ||
        COL_TEXT(st, 22, b->scheduled))
        return pgs_fail(e, PGS_EFORMAT,
                        "catalog %s: a backup row has a value longer than its limit", cat->path);
    b->pinned = sqlite3_column_int(st, 19) != 0;
    if (catalog_state_parse(state, &b->state) != 0)
        return pgs_fail(e, PGS_EFORMAT, "catalog %s: backup %s has an unknown state", cat->path,
                        b->id);
    sqlite3_int64 bytes = sqlite3_column_int64(st, 11), dump = sqlite3_column_int64(st, 12);
    b->bytes = bytes > 0 ? (uint64_t)bytes : 0;
    b->dump_bytes = dump > 0 ? (uint64_t)dump : 0;
    const char *r = (const char *)sqlite3_column_text(st, 17);
    if (r != NULL && parse_recipients(r, (size_t)sqlite3_column_bytes(st, 17), b) != 0)
        return pgs_fail(e, PGS_EFORMAT, "catalog %s: backup %s has malformed recipients", cat->path,
                        b->id);
    return 0;
}

int catalog_backup_new(catalog *cat, const catalog_backup_req *req, char id_out[CATALOG_ID_SIZE],
                       pgs_error *e)
{
    static const char sql[] =
        "INSERT INTO backups (id, agent, database, environment, label, state, requested_by,"
        " created_at, source_backup_id, scheduled)"
        " VALUES (?1, ?2, ?3, ?4, coalesce(?5, ''), 'queued', coalesce(?6, ''), ?7, ?8, ?9)";
    sqlite3_stmt *st = NULL;
    char id[CATALOG_ID_SIZE], now[CATALOG_TIME_SIZE];
    int rc, src = SQLITE_OK;
    if ((rc = catalog_enter(cat, e)) != 0)
        return rc;
    if (req == NULL || id_out == NULL)
        return pgs_fail(e, PGS_EINVAL, "no backup request");
    if ((rc = check_name("agent name", req->agent, e)) ||
        (rc = check_name("database name", req->database, e)) ||
        (rc = check_name("environment", req->environment, e)) ||
        (rc = check_text("label", req->label, CATALOG_LABEL_MAX, e)) ||
        (rc = check_text("requester", req->requested_by, CATALOG_REQUESTED_BY_MAX, e)) ||
        (req->source_backup_id && (rc = check_id("source backup id", req->source_backup_id, e))) ||
        (rc = check_opt_name("schedule name", req->scheduled, e)))
        return rc;
    if ((rc = sql_prepare(cat, sql, &st, e)) != 0)
        return rc;
    for (int tries = 0; tries < CATALOG_ID_TRIES; tries++) {
        int64_t ms = cat->now_ms(cat->clock_arg);
        format_time(ms, now);
        make_id(ms, id);
        sqlite3_reset(st);
        if ((src = bind_text(st, 1, id)) || (src = bind_text(st, 2, req->agent)) ||
            (src = bind_text(st, 3, req->database)) || (src = bind_text(st, 4, req->environment)) ||
            (src = bind_text(st, 5, req->label)) || (src = bind_text(st, 6, req->requested_by)) ||
            (src = bind_text(st, 7, now)) || (src = bind_text(st, 8, req->source_backup_id)) ||
            (src = bind_text(st, 9, req->scheduled)))
            break;
        src = sqlite3_step(st);
        if (src != SQLITE_CONSTRAINT_PRIMARYKEY && src != SQLITE_CONSTRAINT_UNIQUE)
            break;
    }
    if (src == SQLITE_DONE) {
        memcpy(id_out, id, CATALOG_ID_SIZE);
        log_debug("catalog: backup %s queued for %s/%s", id, req->agent, req->database);
    } else if (src == SQLITE_CONSTRAINT_FOREIGNKEY) {
        /* Which reference failed: the agent, or the source backup. */
        sqlite3_finalize(st);
        st = NULL;
        int64_t n = 0;
        if ((rc = sql_prepare(cat, "SELECT count(*) FROM agents WHERE name = ?1", &st, e)) != 0)
            goto out;
        if (bind_text(st, 1, req->agent) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int64(st, 0);
        if (n == 0)
            rc = pgs_fail(e, PGS_ENOTFOUND, "no agent %s in the catalog", req->agent);
        else
            rc = pgs_fail(e, PGS_ENOTFOUND, "no source backup %s in the catalog",
                          req->source_backup_id ? req->source_backup_id : "?");
    } else {
        rc = sql_fail(cat, src, e, "cannot create a backup");
    }
out:
    sqlite3_finalize(st);
    return rc;
}

/* A kind of row (backups, restores) as the shared code sees it: the noun in messages, how to read
 * the row's state for a guarded transition, the query for one row by id, and how to turn a
 * selected row into the caller's struct. */
typedef struct row_kind {
    const char *noun;
    const char *state_sql;
    const char *get_sql;
    int (*read)(catalog *cat, sqlite3_stmt *st, void *out, pgs_error *e);
} row_kind;

static int read_backup(catalog *cat, sqlite3_stmt *st, void *out, pgs_error *e)
{
    return row_to_backup(cat, st, out, e);
}

static const row_kind backup_kind = {"backup", "SELECT state FROM backups WHERE id = ?1",
                                     "SELECT " BACKUP_COLUMNS " FROM backups WHERE id = ?1",
                                     read_backup};

/* After a guarded UPDATE changed nothing: says whether the row is missing or in the wrong state
 * for verb. */
static int transition_refused(catalog *cat, const row_kind *k, const char *id, const char *verb,
                              const char *rule, pgs_error *e)
{
    sqlite3_stmt *st = NULL;
    int rc = sql_prepare(cat, k->state_sql, &st, e);
    if (rc != 0)
        return rc;
    if ((rc = bind_text(st, 1, id)) != SQLITE_OK) {
        rc = sql_fail(cat, rc, e, "cannot read a row's state");
        goto out;
    }
    int src = sqlite3_step(st);
    if (src == SQLITE_DONE)
        rc = pgs_fail(e, PGS_ENOTFOUND, "no %s %s in the catalog", k->noun, id);
    else if (src == SQLITE_ROW)
        rc = pgs_fail(e, PGS_EORDER, "cannot %s %s %s: it is %s, and %s", verb, k->noun, id,
                      (const char *)sqlite3_column_text(st, 0), rule);
    else
        rc = sql_fail(cat, src, e, "cannot read a row's state");
out:
    sqlite3_finalize(st);
    return rc;
}

/* Runs a guarded UPDATE (its first parameter is the id, already bound) and turns "no row changed"
 * into transition_refused's error. */
static int transition_step(catalog *cat, const row_kind *k, sqlite3_stmt *st, const char *id,
                           const char *verb, const char *rule, pgs_error *e)
{
    char what[80];
    snprintf(what, sizeof(what), "cannot %s %s %s", verb, k->noun, id);
    int rc = sql_step_done(cat, st, e, what);
    if (rc != 0)
        return rc;
    if (sqlite3_changes(cat->db) == 0)
        return transition_refused(cat, k, id, verb, rule, e);
    log_debug("catalog: %s %s: %s", k->noun, id, verb);
    return 0;
}

/* start (queued -> running) and update_info (running, no change of state) share one shape. */
static int backup_set_info(catalog *cat, const char *id, const catalog_backup_info *info, int start,
                           pgs_error *e)
{
    static const char start_sql[] =
        "UPDATE backups SET state = 'running', started_at = ?2,"
        " server_version = coalesce(?3, server_version),"
        " pg_dump_version = coalesce(?4, pg_dump_version), recipients = coalesce(?5, recipients),"
        " storage_key = coalesce(?6, storage_key) WHERE id = ?1 AND state = 'queued'";
    static const char info_sql[] =
        "UPDATE backups SET server_version = coalesce(?3, server_version),"
        " pg_dump_version = coalesce(?4, pg_dump_version), recipients = coalesce(?5, recipients),"
        " storage_key = coalesce(?6, storage_key) WHERE id = ?1 AND state = 'running'";
    static const catalog_backup_info none = {0};
    sqlite3_stmt *st = NULL;
    char now[CATALOG_TIME_SIZE];
    char recipients[CATALOG_RECIPIENTS_MAX * (CATALOG_RECIPIENT_ID_LEN + 3) + 3];
    int rc;
    if ((rc = catalog_enter(cat, e)) || (rc = check_id("backup id", id, e)))
        return rc;
    if (info == NULL)
        info = &none;
    if ((rc = check_info(info, recipients, sizeof(recipients), e)) != 0) {
        pgs_wrap(e, "backup %s", id);
        return rc;
    }
    format_time(cat->now_ms(cat->clock_arg), now);
    if ((rc = sql_prepare(cat, start ? start_sql : info_sql, &st, e)) != 0)
        return rc;
    /* Only start stamps started_at (?2). */
    if ((rc = bind_text(st, 1, id)) || (start && (rc = bind_text(st, 2, now))) ||
        (rc = bind_text(st, 3, info->server_version)) ||
        (rc = bind_text(st, 4, info->pg_dump_version)) ||
        (rc = bind_text(st, 5, info->nrecipients ? recipients : NULL)) ||
        (rc = bind_text(st, 6, info->storage_key))) {
        rc = sql_fail(cat, rc, e, "cannot update a backup");
        goto out;
    }
    rc = start ? transition_step(cat, &backup_kind, st, id, "start",
                                 "only a queued backup can start", e)
               : transition_step(cat, &backup_kind, st, id, "update",
                                 "only a running backup takes details", e);
out:
    sqlite3_finalize(st);
    return rc;
}

int catalog_backup_start(catalog *cat, const char *id, const catalog_backup_info *info,
                         pgs_error *e)
{
    return backup_set_info(cat, id, info, 1, e);
}

int catalog_backup_update_info(catalog *cat, const char *id, const catalog_backup_info *info,
                               pgs_error *e)
{
    return backup_set_info(cat, id, info, 0, e);
}

int catalog_backup_complete(catalog *cat, const char *id, uint64_t bytes, uint64_t dump_bytes,
                            const char *sha256_hex, const char *storage_key, pgs_error *e)
{
    static const char sql[] =
        "UPDATE backups SET state = 'complete', finished_at = ?2, bytes = ?3, dump_bytes = ?4,"
        " sha256 = ?5, storage_key = ?6 WHERE id = ?1 AND state = 'running'";
    sqlite3_stmt *st = NULL;
    char now[CATALOG_TIME_SIZE], sha[CATALOG_SHA256_HEX_LEN + 1];
    int rc;
    if ((rc = catalog_enter(cat, e)) || (rc = check_id("backup id", id, e)))
        return rc;
    if (bytes == 0)
        return pgs_fail(e, PGS_EINVAL, "backup %s cannot complete with an empty object", id);
    if (bytes > INT64_MAX || dump_bytes > INT64_MAX)
        return pgs_fail(e, PGS_ELIMIT, "backup %s: size out of range", id);
    if (storage_key == NULL)
        return pgs_fail(e, PGS_EINVAL, "backup %s cannot complete without a storage key", id);
    if ((rc = check_sha256(sha256_hex, sha, e)) || (rc = check_storage_key(storage_key, e))) {
        pgs_wrap(e, "backup %s cannot complete", id);
        return rc;
    }
    format_time(cat->now_ms(cat->clock_arg), now);
    if ((rc = sql_prepare(cat, sql, &st, e)) != 0)
        return rc;
    if ((rc = bind_text(st, 1, id)) || (rc = bind_text(st, 2, now)) ||
        (rc = sqlite3_bind_int64(st, 3, (sqlite3_int64)bytes)) ||
        (rc = sqlite3_bind_int64(st, 4, (sqlite3_int64)dump_bytes)) ||
        (rc = bind_text(st, 5, sha)) || (rc = bind_text(st, 6, storage_key))) {
        rc = sql_fail(cat, rc, e, "cannot complete a backup");
        goto out;
    }
    rc = transition_step(cat, &backup_kind, st, id, "complete",
                         "only a running backup can complete", e);
out:
    sqlite3_finalize(st);
    return rc;
}

int catalog_backup_fail(catalog *cat, const char *id, const char *reason, pgs_error *e)
{
    static const char sql[] = "UPDATE backups SET state = 'failed', finished_at = ?2, error = ?3"
                              " WHERE id = ?1 AND state IN ('queued', 'running')";
    sqlite3_stmt *st = NULL;
    char now[CATALOG_TIME_SIZE], why[CATALOG_ERROR_MAX + 1];
    int rc;
    if ((rc = catalog_enter(cat, e)) || (rc = check_id("backup id", id, e)))
        return rc;
    clean_reason(reason, why);
    format_time(cat->now_ms(cat->clock_arg), now);
    if ((rc = sql_prepare(cat, sql, &st, e)) != 0)
        return rc;
    if ((rc = bind_text(st, 1, id)) || (rc = bind_text(st, 2, now)) ||
        (rc = bind_text(st, 3, why))) {
        rc = sql_fail(cat, rc, e, "cannot fail a backup");
        goto out;
    }
    rc = transition_step(cat, &backup_kind, st, id, "fail",
                         "only a queued or running backup can fail", e);
out:
    sqlite3_finalize(st);
    return rc;
}

/* Runs a query that selects k's columns of at most one row into *out. */
static int row_one(catalog *cat, const row_kind *k, sqlite3_stmt *st, void *out, pgs_error *e,
                   int *found)
{
    int src = sqlite3_step(st);
    char what[40];
    *found = 0;
    if (src == SQLITE_DONE)
        return 0;
    if (src != SQLITE_ROW) {
        snprintf(what, sizeof(what), "cannot read a %s", k->noun);
        return sql_fail(cat, src, e, what);
    }
    *found = 1;
    return k->read(cat, st, out, e);
}

/* catalog_backup_get and catalog_restore_get: the row of kind k with this id into *out. */
static int row_get(catalog *cat, const row_kind *k, const char *id, void *out, pgs_error *e)
{
    sqlite3_stmt *st = NULL;
    int rc, found;
    char what[40];
    snprintf(what, sizeof(what), "%s id", k->noun);
    if ((rc = catalog_enter(cat, e)) || (rc = check_id(what, id, e)))
        return rc;
    if (out == NULL)
        return pgs_fail(e, PGS_EINVAL, "nowhere to put %s %s", k->noun, id);
    if ((rc = sql_prepare(cat, k->get_sql, &st, e)))
        return rc;
    if ((rc = bind_text(st, 1, id)) != SQLITE_OK) {
        snprintf(what, sizeof(what), "cannot read a %s", k->noun);
        rc = sql_fail(cat, rc, e, what);
    } else if ((rc = row_one(cat, k, st, out, e, &found)) == 0 && !found) {
        rc = pgs_fail(e, PGS_ENOTFOUND, "no %s %s in the catalog", k->noun, id);
    }
    sqlite3_finalize(st);
    return rc;
}

int catalog_backup_get(catalog *cat, const char *id, catalog_backup *out, pgs_error *e)
{
    return row_get(cat, &backup_kind, id, out, e);
}

struct backup_ctx {
    int (*cb)(void *arg, const catalog_backup *b);
    void *arg;
};

static int backup_row(catalog *cat, sqlite3_stmt *st, void *ctx, pgs_error *e)
{
    struct backup_ctx *c = ctx;
    catalog_backup b;
    int rc = row_to_backup(cat, st, &b, e);
    return rc != 0 ? rc : c->cb(c->arg, &b);
}

/*
 * catalog_backup_list and catalog_restore_list: sql selects k's rows with the filter's agent,
 * database, environment, state and limit as ?1 to ?5 (each NULL or -1 for "any"); every row goes
 * to row with ctx. have_cb is whether the caller gave a callback: checked once the catalog is
 * known to be open, so that a closed catalog is the error reported first.
 */
static int row_list(catalog *cat, const row_kind *k, const char *sql, const catalog_filter *f,
                    int have_cb, row_fn row, void *ctx, pgs_error *e)
{
    static const catalog_filter all = {0};
    sqlite3_stmt *st = NULL;
    char what[40];
    int rc;
    if ((rc = catalog_enter(cat, e)) != 0)
        return rc;
    if (f == NULL)
        f = &all;
    if (!have_cb)
        return pgs_fail(e, PGS_EINVAL, "no callback");
    if ((rc = check_opt_name("agent name", f->agent, e)) ||
        (rc = check_opt_name("database name", f->database, e)) ||
        (rc = check_opt_name("environment", f->environment, e)))
        return rc;
    if ((int)f->state < CATALOG_STATE_ANY || (int)f->state > CATALOG_FAILED)
        return pgs_fail(e, PGS_EINVAL, "unknown %s state %d", k->noun, (int)f->state);
    if ((rc = sql_prepare(cat, sql, &st, e)) != 0)
        return rc;
    if ((rc = bind_text(st, 1, f->agent)) || (rc = bind_text(st, 2, f->database)) ||
        (rc = bind_text(st, 3, f->environment)) ||
        (rc = bind_text(st, 4, f->state ? catalog_state_name(f->state) : NULL)) ||
        (rc = sqlite3_bind_int64(st, 5, f->limit ? (sqlite3_int64)f->limit : -1))) {
        snprintf(what, sizeof(what), "cannot list %ss", k->noun);
        rc = sql_fail(cat, rc, e, what);
    } else {
        rc = run_list(cat, st, row, ctx, e);
    }
    sqlite3_finalize(st);
    return rc;
}

int catalog_backup_list(catalog *cat, const catalog_filter *f,
                        int (*cb)(void *arg, const catalog_backup *b), void *arg, pgs_error *e)
{
    /* rowid breaks ties between backups created in the same millisecond: it grows with each
     * insert. */
    static const char sql[] = "SELECT " BACKUP_COLUMNS " FROM backups"
                              " WHERE (?1 IS NULL OR agent = ?1) AND (?2 IS NULL OR database = ?2)"
                              " AND (?3 IS NULL OR environment = ?3) AND (?4 IS NULL OR state = ?4)"
                              " ORDER BY created_at DESC, rowid DESC LIMIT ?5";
    struct backup_ctx c = {cb, arg};
    return row_list(cat, &backup_kind, sql, f, cb != NULL, backup_row, &c, e);
}

int catalog_latest_complete(catalog *cat, const char *agent, const char *db, catalog_backup *out,
                            pgs_error *e)
{
    /* By started_at: that is when pg_dump took its snapshot, so it orders the data itself.
     * Derived copies (a sanitized re-dump) are not the database's backups: never "latest". */
    static const char sql[] = "SELECT " BACKUP_COLUMNS " FROM backups"
                              " WHERE agent = ?1 AND database = ?2 AND state = 'complete'"
                              " AND source_backup_id IS NULL"
                              " ORDER BY started_at DESC, created_at DESC, rowid DESC LIMIT 1";
    sqlite3_stmt *st = NULL;
    int rc, found;
    if ((rc = catalog_enter(cat, e)) || (rc = check_name("agent name", agent, e)) ||
        (rc = check_name("database name", db, e)))
        return rc;
    if (out == NULL)
        return pgs_fail(e, PGS_EINVAL, "nowhere to put the backup");
    if ((rc = sql_prepare(cat, sql, &st, e)) != 0)
        return rc;
    if ((rc = bind_text(st, 1, agent)) || (rc = bind_text(st, 2, db)))
        rc = sql_fail(cat, rc, e, "cannot find the latest backup");
    else if ((rc = row_one(cat, &backup_kind, st, out, e, &found)) == 0 && !found)
        rc = pgs_fail(e, PGS_ENOTFOUND, "no complete backup of %s/%s in the catalog", agent, db);
    sqlite3_finalize(st);
    return rc;
}

/* ---- restores ---- */

_Static_assert(CATALOG_SOURCE_MAX == 160, "the schema spells the source limit");
_Static_assert(CATALOG_STEP_MAX == 31, "the schema spells the step limit");
_Static_assert(CATALOG_OPTIONS_MAX == 16384, "the schema spells the options limit");
_Static_assert(CATALOG_REPORT_MAX == 1048576, "the schema spells the report limit");
_Static_assert(CATALOG_PROFILE_MAX == CATALOG_NAME_MAX, "profiles are names");

/* The columns every restore query reads, in the order row_to_restore expects. */
#define RESTORE_COLUMNS                                                                            \
    "id, kind, requested_by, source, source_backup_id, source_agent, source_database, "            \
    "source_environment, target_agent, target_database, target_environment, profile, "             \
    "sanitizer_agent, sanitized_backup_id, safety_backup_id, state, step, error, created_at, "     \
    "started_at, finished_at, options, report"

/* Optional strings of a restore: NULL and "" both mean "none" (bound as NULL). */
static const char *opt(const char *s)
{
    return s != NULL && s[0] != '\0' ? s : NULL;
}

/* A step name: 1..CATALOG_STEP_MAX of [a-z_]. */
static int check_step(const char *s, pgs_error *e)
{
    if (s == NULL || s[0] == '\0')
        return pgs_fail(e, PGS_EINVAL, "step is missing");
    size_t n = strnlen(s, CATALOG_STEP_MAX + 1);
    if (n > CATALOG_STEP_MAX)
        return pgs_fail(e, PGS_ELIMIT, "step is longer than %d bytes", CATALOG_STEP_MAX);
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_'))
            return pgs_fail(e, PGS_EINVAL, "step is not valid: use a-z and _");
    return 0;
}

static int check_opt_id(const char *what, const char *id, pgs_error *e)
{
    return opt(id) == NULL ? 0 : check_id(what, id, e);
}

/*
 * Checks that text is a JSON object of at most max bytes and writes its compact encoding into a
 * malloc'd *out (the caller frees it). Stored that way, what the catalog hands back always parses,
 * whatever the caller's formatting was.
 */
static int normalize_object(const char *what, const char *text, size_t max, char **out,
                            pgs_error *e)
{
    *out = NULL;
    size_t n = strnlen(text, max + 1);
    if (n > max)
        return pgs_fail(e, PGS_ELIMIT, "%s is longer than %zu bytes", what, max);
    json_error_t jerr;
    json_t *j = json_loadb(text, n, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(j)) {
        json_decref(j);
        return pgs_fail(e, PGS_EINVAL, "%s is not a JSON object", what);
    }
    char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (s == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    if (strlen(s) > max) {
        free(s);
        return pgs_fail(e, PGS_ELIMIT, "%s is longer than %zu bytes", what, max);
    }
    *out = s;
    return 0;
}

/* 1 when backup id is in the catalog (0 when not, or when the question fails). */
static int backup_exists(catalog *cat, const char *id)
{
    sqlite3_stmt *st = NULL;
    int found = 0;
    if (sqlite3_prepare_v3(cat->db, "SELECT 1 FROM backups WHERE id = ?1", -1, 0, &st, NULL) ==
            SQLITE_OK &&
        bind_text(st, 1, id) == SQLITE_OK)
        found = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return found;
}

/* After a foreign key refused a restore's row: which backup of ids (NULL entries skipped) is
 * missing. */
static int missing_backup(catalog *cat, const char *const *ids, size_t n, pgs_error *e)
{
    for (size_t i = 0; i < n; i++)
        if (ids[i] != NULL && !backup_exists(cat, ids[i]))
            return pgs_fail(e, PGS_ENOTFOUND, "no backup %s in the catalog", ids[i]);
    return pgs_fail(e, PGS_ENOTFOUND, "a backup the restore names is not in the catalog");
}

void catalog_restore_clear(catalog_restore *r)
{
    if (r == NULL)
        return;
    free(r->options_json);
    free(r->report_json);
    r->options_json = NULL;
    r->report_json = NULL;
}

/* Copies a JSON text column into a malloc'd string; NULL stays NULL. -1 when it is longer than
 * max (not written by this code) or memory runs out. */
static int col_json(sqlite3_stmt *st, int i, size_t max, char **out)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    size_t n = (size_t)sqlite3_column_bytes(st, i);
    *out = NULL;
    if (s == NULL)
        return 0;
    if (n > max || (*out = malloc(n + 1)) == NULL)
        return -1;
    memcpy(*out, s, n);
    (*out)[n] = '\0';
    return 0;
}

static int row_to_restore(catalog *cat, sqlite3_stmt *st, catalog_restore *r, pgs_error *e)
{
    char state[16];
    memset(r, 0, sizeof(*r));
    if (COL_TEXT(st, 0, r->id) || COL_TEXT(st, 1, r->kind) || COL_TEXT(st, 2, r->requested_by) ||
        COL_TEXT(st, 3, r->source) || COL_TEXT(st, 4, r->source_backup_id) ||
        COL_TEXT(st, 5, r->source_agent) || COL_TEXT(st, 6, r->source_database) ||
        COL_TEXT(st, 7, r->source_environment) || COL_TEXT(st, 8, r->target_agent) ||
        COL_TEXT(st, 9, r->target_database) || COL_TEXT(st, 10, r->target_environment) ||
        COL_TEXT(st, 11, r->profile) || COL_TEXT(st, 12, r->sanitizer_agent) ||
        COL_TEXT(st, 13, r->sanitized_backup_id) || COL_TEXT(st, 14, r->safety_backup_id) ||
        COL_TEXT(st, 15, state) || COL_TEXT(st, 16, r->step) || COL_TEXT(st, 17, r->error) ||
        COL_TEXT(st, 18, r->created_at) || COL_TEXT(st, 19, r->started_at) ||
        COL_TEXT(st, 20, r->finished_at))
        return pgs_fail(e, PGS_EFORMAT,
                        "catalog %s: a restore row has a value longer than its limit", cat->path);
    if (catalog_state_parse(state, &r->state) != 0)
        return pgs_fail(e, PGS_EFORMAT, "catalog %s: restore %s has an unknown state", cat->path,
                        r->id);
    if (col_json(st, 21, CATALOG_OPTIONS_MAX, &r->options_json) != 0 ||
        col_json(st, 22, CATALOG_REPORT_MAX, &r->report_json) != 0) {
        catalog_restore_clear(r);
        return pgs_fail(e, PGS_EFORMAT, "catalog %s: restore %s: options or report too large",
                        cat->path, r->id);
    }
    if (r->options_json == NULL && (r->options_json = strdup("{}")) == NULL) {
        catalog_restore_clear(r);
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    }
    return 0;
}

static int read_restore(catalog *cat, sqlite3_stmt *st, void *out, pgs_error *e)
{
    return row_to_restore(cat, st, out, e);
}

static const row_kind restore_kind = {"restore", "SELECT state FROM restores WHERE id = ?1",
                                      "SELECT " RESTORE_COLUMNS " FROM restores WHERE id = ?1",
                                      read_restore};

int catalog_restore_new(catalog *cat, const catalog_restore_req *req, char id_out[CATALOG_ID_SIZE],
                        pgs_error *e)
{
    static const char sql[] =
        "INSERT INTO restores (id, kind, requested_by, source, source_backup_id, source_agent,"
        " source_database, source_environment, target_agent, target_database, target_environment,"
        " profile, sanitizer_agent, state, created_at, options)"
        " VALUES (?1, ?2, coalesce(?3, ''), ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 'queued',"
        " ?14, ?15)";
    sqlite3_stmt *st = NULL;
    char id[CATALOG_ID_SIZE], now[CATALOG_TIME_SIZE];
    char *options = NULL;
    int rc, src = SQLITE_OK;
    if ((rc = catalog_enter(cat, e)) != 0)
        return rc;
    if (req == NULL || id_out == NULL)
        return pgs_fail(e, PGS_EINVAL, "no restore request");
    if (req->kind == NULL || (strcmp(req->kind, "restore") != 0 && strcmp(req->kind, "sync") != 0))
        return pgs_fail(e, PGS_EINVAL, "a restore's kind is \"restore\" or \"sync\"");
    if ((rc = check_text("requester", req->requested_by, CATALOG_REQUESTED_BY_MAX, e)) ||
        (rc = check_ascii("source", req->source, CATALOG_SOURCE_MAX, 0, 0, e)) ||
        (req->source == NULL && (rc = pgs_fail(e, PGS_EINVAL, "source is missing"))) ||
        (rc = check_opt_id("source backup id", req->source_backup_id, e)) ||
        (rc = check_opt_name("source agent", opt(req->source_agent), e)) ||
        (rc = check_opt_name("source database", opt(req->source_database), e)) ||
        (rc = check_opt_name("source environment", opt(req->source_environment), e)) ||
        (rc = check_name("target agent", req->target_agent, e)) ||
        (rc = check_name("target database", req->target_database, e)) ||
        (rc = check_name("target environment", req->target_environment, e)) ||
        (rc = check_opt_name("profile", opt(req->profile), e)) ||
        (rc = check_opt_name("sanitizer agent", opt(req->sanitizer_agent), e)))
        return rc;
    if ((rc = normalize_object("options", req->options_json ? req->options_json : "{}",
                               CATALOG_OPTIONS_MAX, &options, e)) != 0)
        return rc;
    if ((rc = sql_prepare(cat, sql, &st, e)) != 0)
        goto out;
    for (int tries = 0; tries < CATALOG_ID_TRIES; tries++) {
        int64_t ms = cat->now_ms(cat->clock_arg);
        format_time(ms, now);
        make_id(ms, id);
        sqlite3_reset(st);
        if ((src = bind_text(st, 1, id)) || (src = bind_text(st, 2, req->kind)) ||
            (src = bind_text(st, 3, req->requested_by)) || (src = bind_text(st, 4, req->source)) ||
            (src = bind_text(st, 5, opt(req->source_backup_id))) ||
            (src = bind_text(st, 6, opt(req->source_agent))) ||
            (src = bind_text(st, 7, opt(req->source_database))) ||
            (src = bind_text(st, 8, opt(req->source_environment))) ||
            (src = bind_text(st, 9, req->target_agent)) ||
            (src = bind_text(st, 10, req->target_database)) ||
            (src = bind_text(st, 11, req->target_environment)) ||
            (src = bind_text(st, 12, opt(req->profile))) ||
            (src = bind_text(st, 13, opt(req->sanitizer_agent))) ||
            (src = bind_text(st, 14, now)) || (src = bind_text(st, 15, options)))
            break;
        src = sqlite3_step(st);
        if (src != SQLITE_CONSTRAINT_PRIMARYKEY && src != SQLITE_CONSTRAINT_UNIQUE)
            break;
    }
    if (src == SQLITE_DONE) {
        memcpy(id_out, id, CATALOG_ID_SIZE);
        log_debug("catalog: restore %s queued into %s/%s", id, req->target_agent,
                  req->target_database);
    } else if (src == SQLITE_CONSTRAINT_FOREIGNKEY || src == SQLITE_CONSTRAINT_TRIGGER) {
        /* Which reference failed: the target agent (a foreign key), or the source backup (a
         * trigger since version 3). */
        sqlite3_finalize(st);
        st = NULL;
        int64_t n = 0;
        if ((rc = sql_prepare(cat, "SELECT count(*) FROM agents WHERE name = ?1", &st, e)) != 0)
            goto out;
        if (bind_text(st, 1, req->target_agent) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int64(st, 0);
        if (n == 0) {
            rc = pgs_fail(e, PGS_ENOTFOUND, "no agent %s in the catalog", req->target_agent);
        } else {
            const char *ids[] = {opt(req->source_backup_id)};
            rc = missing_backup(cat, ids, 1, e);
        }
    } else {
        rc = sql_fail(cat, src, e, "cannot create a restore");
    }
out:
    sqlite3_finalize(st);
    free(options);
    return rc;
}

int catalog_restore_start(catalog *cat, const char *id, const char *step, pgs_error *e)
{
    static const char sql[] = "UPDATE restores SET state = 'running', started_at = ?2, step = ?3"
                              " WHERE id = ?1 AND state = 'queued'";
    sqlite3_stmt *st = NULL;
    char now[CATALOG_TIME_SIZE];
    int rc;
    if ((rc = catalog_enter(cat, e)) || (rc = check_id("restore id", id, e)) ||
        (rc = check_step(step, e)))
        return rc;
    format_time(cat->now_ms(cat->clock_arg), now);
    if ((rc = sql_prepare(cat, sql, &st, e)) != 0)
        return rc;
    if ((rc = bind_text(st, 1, id)) || (rc = bind_text(st, 2, now)) ||
        (rc = bind_text(st, 3, step)))
        rc = sql_fail(cat, rc, e, "cannot start a restore");
    else
        rc = transition_step(cat, &restore_kind, st, id, "start", "only a queued restore can start",
                             e);
    sqlite3_finalize(st);
    return rc;
}

int catalog_restore_update(catalog *cat, const char *id, const catalog_restore_change *u,
                           pgs_error *e)
{
    static const char sql[] =
        "UPDATE restores SET step = coalesce(?2, step),"
        " source_backup_id = coalesce(?3, source_backup_id),"
        " source_agent = coalesce(?4, source_agent),"
        " source_database = coalesce(?5, source_database),"
        " source_environment = coalesce(?6, source_environment),"
        " sanitized_backup_id = coalesce(?7, sanitized_backup_id),"
        " safety_backup_id = coalesce(?8, safety_backup_id) WHERE id = ?1 AND state = 'running'";
    static const catalog_restore_change none = {0};
    sqlite3_stmt *st = NULL;
    int rc, src;
    if ((rc = catalog_enter(cat, e)) || (rc = check_id("restore id", id, e)))
        return rc;
    if (u == NULL)
        u = &none;
    if ((opt(u->step) && (rc = check_step(u->step, e))) ||
        (rc = check_opt_id("source backup id", u->source_backup_id, e)) ||
        (rc = check_opt_name("source agent", opt(u->source_agent), e)) ||
        (rc = check_opt_name("source database", opt(u->source_database), e)) ||
        (rc = check_opt_name("source environment", opt(u->source_environment), e)) ||
        (rc = check_opt_id("sanitized backup id", u->sanitized_backup_id, e)) ||
        (rc = check_opt_id("safety backup id", u->safety_backup_id, e))) {
        pgs_wrap(e, "restore %s", id);
        return rc;
    }
    if ((rc = sql_prepare(cat, sql, &st, e)) != 0)
        return rc;
    if ((rc = bind_text(st, 1, id)) || (rc = bind_text(st, 2, opt(u->step))) ||
        (rc = bind_text(st, 3, opt(u->source_backup_id))) ||
        (rc = bind_text(st, 4, opt(u->source_agent))) ||
        (rc = bind_text(st, 5, opt(u->source_database))) ||
        (rc = bind_text(st, 6, opt(u->source_environment))) ||
        (rc = bind_text(st, 7, opt(u->sanitized_backup_id))) ||
        (rc = bind_text(st, 8, opt(u->safety_backup_id)))) {
        rc = sql_fail(cat, rc, e, "cannot update a restore");
        goto out;
    }
    src = sqlite3_step(st);
    if (src == SQLITE_CONSTRAINT_TRIGGER) {
        /* The one trigger an update of a running restore can meet: a backup it names. */
        const char *ids[] = {opt(u->source_backup_id), opt(u->sanitized_backup_id),
                             opt(u->safety_backup_id)};
        rc = missing_backup(cat, ids, 3, e);
        pgs_wrap(e, "restore %s", id);
    } else if (src != SQLITE_DONE) {
        rc = sql_fail(cat, src, e, "cannot update a restore");
    } else if (sqlite3_changes(cat->db) == 0) {
        rc = transition_refused(cat, &restore_kind, id, "update",
                                "only a running restore takes progress", e);
    }
out:
    sqlite3_finalize(st);
    return rc;
}

int catalog_restore_finish(catalog *cat, const char *id, int ok, const char *step,
                           const char *error, const char *report_json, pgs_error *e)
{
    static const char ok_sql[] =
        "UPDATE restores SET state = 'complete', step = 'done', error = NULL, finished_at = ?2,"
        " report = ?3 WHERE id = ?1 AND state = 'running'";
    static const char fail_sql[] =
        "UPDATE restores SET state = 'failed', step = coalesce(?4, step), error = ?5,"
        " finished_at = ?2, report = coalesce(?3, report)"
        " WHERE id = ?1 AND state IN ('queued', 'running')";
    sqlite3_stmt *st = NULL;
    char now[CATALOG_TIME_SIZE], why[CATALOG_ERROR_MAX + 1];
    char *report = NULL;
    int rc, src;
    if ((rc = catalog_enter(cat, e)) || (rc = check_id("restore id", id, e)))
        return rc;
    if (!ok && opt(step) != NULL && (rc = check_step(step, e)) != 0) {
        pgs_wrap(e, "restore %s cannot fail", id);
        return rc;
    }
    if (report_json != NULL &&
        (rc = normalize_object("report", report_json, CATALOG_REPORT_MAX, &report, e)) != 0) {
        pgs_wrap(e, "restore %s", id);
        return rc;
    }
    clean_reason(error, why);
    format_time(cat->now_ms(cat->clock_arg), now);
    if ((rc = sql_prepare(cat, ok ? ok_sql : fail_sql, &st, e)) != 0)
        goto out;
    if ((rc = bind_text(st, 1, id)) || (rc = bind_text(st, 2, now)) ||
        (rc = bind_text(st, 3, report)) || (!ok && (rc = bind_text(st, 4, opt(step)))) ||
        (!ok && (rc = bind_text(st, 5, why)))) {
        rc = sql_fail(cat, rc, e, "cannot finish a restore");
        goto out;
    }
    src = sqlite3_step(st);
    if (src == SQLITE_CONSTRAINT_CHECK && ok) {
        /* The one rule a caller can break here: complete names the backup that was restored. */
        rc = pgs_fail(e, PGS_EINVAL,
                      "restore %s cannot complete: its source backup was never recorded", id);
    } else if (src != SQLITE_DONE) {
        rc = sql_fail(cat, src, e, "cannot finish a restore");
    } else if (sqlite3_changes(cat->db) == 0) {
        rc = transition_refused(cat, &restore_kind, id, ok ? "complete" : "fail",
                                ok ? "only a running restore can complete"
                                   : "only a queued or running restore can fail",
                                e);
    } else {
        log_debug("catalog: restore %s: %s", id, ok ? "complete" : "failed");
    }
out:
    sqlite3_finalize(st);
    free(report);
    return rc;
}

int catalog_restore_get(catalog *cat, const char *id, catalog_restore *out, pgs_error *e)
{
    if (out != NULL)
        memset(out, 0, sizeof(*out));
    return row_get(cat, &restore_kind, id, out, e);
}

struct restore_ctx {
    int (*cb)(void *arg, const catalog_restore *r);
    void *arg;
};

static int restore_row(catalog *cat, sqlite3_stmt *st, void *ctx, pgs_error *e)
{
    struct restore_ctx *c = ctx;
    catalog_restore r;
    int rc = row_to_restore(cat, st, &r, e);
    if (rc != 0)
        return rc;
    rc = c->cb(c->arg, &r);
    catalog_restore_clear(&r);
    return rc;
}

int catalog_restore_list(catalog *cat, const catalog_filter *f,
                         int (*cb)(void *arg, const catalog_restore *r), void *arg, pgs_error *e)
{
    static const char sql[] =
        "SELECT " RESTORE_COLUMNS " FROM restores"
        " WHERE (?1 IS NULL OR target_agent = ?1) AND (?2 IS NULL OR target_database = ?2)"
        " AND (?3 IS NULL OR target_environment = ?3) AND (?4 IS NULL OR state = ?4)"
        " ORDER BY created_at DESC, rowid DESC LIMIT ?5";
    struct restore_ctx c = {cb, arg};
    return row_list(cat, &restore_kind, sql, f, cb != NULL, restore_row, &c, e);
}

/* ---- crash recovery ---- */

/* Recovery's UPDATE of rows in flight (fail_sql binds the time and the reason): it must fail
 * exactly the n rows the SELECT before it found. Both ran in one write transaction, so a
 * difference means a broken invariant somewhere, which is no reason to commit half of it. */
static int fail_in_flight(catalog *cat, const char *fail_sql, const char *now, const char *why,
                          size_t n, const char *what, pgs_error *e)
{
    sqlite3_stmt *st = NULL;
    char msg[64];
    snprintf(msg, sizeof(msg), "cannot fail %s in flight", what);
    int rc = sql_prepare(cat, fail_sql, &st, e);
    if (rc == 0 && ((rc = bind_text(st, 1, now)) || (rc = bind_text(st, 2, why))))
        rc = sql_fail(cat, rc, e, msg);
    if (rc == 0)
        rc = sql_step_done(cat, st, e, msg);
    if (rc == 0 && (size_t)sqlite3_changes(cat->db) != n)
        rc = pgs_fail(e, PGS_EIO, "catalog %s: recovery found %zu %s in flight but failed %d",
                      cat->path, n, what, sqlite3_changes(cat->db));
    sqlite3_finalize(st);
    return rc;
}

/*
 * Recovery's part for restores, inside its transaction: a restore's thread died with the process,
 * so every queued or running one is failed with the reason. The step stays, so the record says
 * where each one was; each is logged, since nothing else will report it.
 */
static int recover_restores(catalog *cat, const char *now, const char *why, size_t *count,
                            pgs_error *e)
{
    static const char select_sql[] =
        "SELECT id, target_agent, target_database, state, step FROM restores"
        " WHERE state IN ('queued', 'running') ORDER BY created_at, rowid";
    static const char fail_sql[] = "UPDATE restores SET state = 'failed', finished_at = ?1,"
                                   " error = ?2 WHERE state IN ('queued', 'running')";
    sqlite3_stmt *st = NULL;
    size_t n = 0;
    int rc, src;
    if ((rc = sql_prepare(cat, select_sql, &st, e)) != 0)
        return rc;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        char id[CATALOG_ID_SIZE], agent[CATALOG_NAME_MAX + 1], db[CATALOG_NAME_MAX + 1];
        char state[16], step[CATALOG_STEP_MAX + 1];
        if (COL_TEXT(st, 0, id) || COL_TEXT(st, 1, agent) || COL_TEXT(st, 2, db) ||
            COL_TEXT(st, 3, state) || COL_TEXT(st, 4, step)) {
            rc = pgs_fail(e, PGS_EFORMAT, "catalog %s: a restore row is malformed", cat->path);
            goto out;
        }
        log_warn("restore %s into %s/%s was %s%s%s when the coordinator stopped: marked failed", id,
                 agent, db, state, step[0] ? " in step " : "", step);
        n++;
    }
    if (src != SQLITE_DONE) {
        rc = sql_fail(cat, src, e, "cannot list restores in flight");
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    if ((rc = fail_in_flight(cat, fail_sql, now, why, n, "restores", e)) != 0)
        goto out;
    *count = n;
out:
    sqlite3_finalize(st);
    return rc;
}

int catalog_recover(catalog *cat, const char *reason, catalog_recovered **out, size_t *count,
                    pgs_error *e)
{
    static const char select_sql[] =
        "SELECT id, agent, database, environment, state, storage_key FROM backups"
        " WHERE state IN ('queued', 'running') ORDER BY created_at, rowid";
    static const char fail_sql[] = "UPDATE backups SET state = 'failed', finished_at = ?1,"
                                   " error = ?2 WHERE state IN ('queued', 'running')";
    sqlite3_stmt *st = NULL;
    catalog_recovered *items = NULL;
    size_t n = 0, cap = 0, nrestores = 0;
    char now[CATALOG_TIME_SIZE], why[CATALOG_ERROR_MAX + 1];
    int rc, src, in_tx = 0;

    if (out != NULL)
        *out = NULL;
    if (count != NULL)
        *count = 0;
    if ((rc = catalog_enter(cat, e)) != 0)
        return rc;
    clean_reason(reason && reason[0] ? reason : "coordinator restarted", why);
    format_time(cat->now_ms(cat->clock_arg), now);

    if ((rc = sql_exec(cat, "BEGIN IMMEDIATE", e, "cannot begin recovery")) != 0)
        return rc;
    in_tx = 1;
    if ((rc = sql_prepare(cat, select_sql, &st, e)) != 0)
        goto out;
    while ((src = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            catalog_recovered *p = realloc(items, ncap * sizeof(*p));
            if (p == NULL) {
                rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
                goto out;
            }
            items = p;
            cap = ncap;
        }
        catalog_recovered *r = &items[n];
        char state[16];
        memset(r, 0, sizeof(*r));
        if (COL_TEXT(st, 0, r->id) || COL_TEXT(st, 1, r->agent) || COL_TEXT(st, 2, r->database) ||
            COL_TEXT(st, 3, r->environment) || COL_TEXT(st, 4, state) ||
            COL_TEXT(st, 5, r->storage_key) || catalog_state_parse(state, &r->was) != 0) {
            rc = pgs_fail(e, PGS_EFORMAT, "catalog %s: a backup row is malformed", cat->path);
            goto out;
        }
        n++;
    }
    if (src != SQLITE_DONE) {
        rc = sql_fail(cat, src, e, "cannot list backups in flight");
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    if ((rc = fail_in_flight(cat, fail_sql, now, why, n, "backups", e)) != 0)
        goto out;
    if ((rc = recover_restores(cat, now, why, &nrestores, e)) != 0)
        goto out;
    if ((rc = sql_exec(cat, "UPDATE agents SET connected = 0 WHERE connected = 1", e,
                       "cannot mark agents disconnected")) != 0 ||
        (rc = sql_exec(cat, "COMMIT", e, "cannot commit recovery")) != 0)
        goto out;
    in_tx = 0;
    if (n > 0)
        log_info("catalog %s: recovery failed %zu backups left queued or running", cat->path, n);
    if (nrestores > 0)
        log_info("catalog %s: recovery failed %zu restores left queued or running", cat->path,
                 nrestores);
    if (count != NULL)
        *count = n;
    if (out != NULL && n > 0) {
        *out = items;
        items = NULL;
    }
out:
    sqlite3_finalize(st);
    if (in_tx)
        rollback(cat);
    free(items);
    return rc;
}

/* ---- JSON ---- */

/* Sets key to s, or to null when s is empty. */
static int json_set_text(json_t *o, const char *key, const char *s)
{
    return json_object_set_new(o, key, s[0] ? json_string(s) : json_null());
}

json_t *catalog_backup_to_json(const catalog_backup *b)
{
    json_t *o = json_object(), *rcpts = json_array();
    int bad = o == NULL || rcpts == NULL;
    for (size_t i = 0; !bad && i < b->nrecipients && i < CATALOG_RECIPIENTS_MAX; i++)
        bad |= json_array_append_new(rcpts, json_string(b->recipients[i]));
    if (bad) {
        json_decref(o);
        json_decref(rcpts);
        return NULL;
    }
    bad |= json_object_set_new(o, "id", json_string(b->id));
    bad |= json_object_set_new(o, "agent", json_string(b->agent));
    bad |= json_object_set_new(o, "database", json_string(b->database));
    bad |= json_object_set_new(o, "environment", json_string(b->environment));
    bad |= json_set_text(o, "label", b->label);
    bad |= json_object_set_new(o, "state", json_string(catalog_state_name(b->state)));
    bad |= json_set_text(o, "error", b->error);
    bad |= json_set_text(o, "created_at", b->created_at);
    bad |= json_set_text(o, "started_at", b->started_at);
    bad |= json_set_text(o, "finished_at", b->finished_at);
    bad |= json_object_set_new(o, "size_bytes",
                               b->bytes ? json_integer((json_int_t)b->bytes) : json_null());
    bad |= json_object_set_new(
        o, "dump_bytes", b->dump_bytes ? json_integer((json_int_t)b->dump_bytes) : json_null());
    bad |= json_set_text(o, "sha256", b->sha256);
    bad |= json_set_text(o, "storage_key", b->storage_key);
    bad |= json_set_text(o, "server_version", b->server_version);
    bad |= json_set_text(o, "pg_dump_version", b->pg_dump_version);
    bad |= json_object_set_new(o, "recipients", rcpts);
    bad |= json_set_text(o, "requested_by", b->requested_by);
    bad |= json_set_text(o, "source_backup_id", b->source_backup_id);
    bad |= json_object_set_new(o, "pinned", json_boolean(b->pinned));
    bad |= json_set_text(o, "verified_at", b->verified_at);
    bad |= json_set_text(o, "verify_result", b->verify_result);
    bad |= json_set_text(o, "scheduled", b->scheduled);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* A JSON text the catalog stored, as a value; null when absent or (a hand edit) unreadable. */
static json_t *json_text_value(const char *text)
{
    if (text == NULL)
        return json_null();
    json_t *v = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    return v != NULL ? v : json_null();
}

json_t *catalog_restore_to_json(const catalog_restore *r)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    int bad = 0;
    bad |= json_object_set_new(o, "id", json_string(r->id));
    bad |= json_set_text(o, "kind", r->kind);
    bad |= json_object_set_new(o, "state", json_string(catalog_state_name(r->state)));
    bad |= json_set_text(o, "step", r->step);
    bad |= json_set_text(o, "error", r->error);
    bad |= json_set_text(o, "requested_by", r->requested_by);
    bad |= json_set_text(o, "source", r->source);
    bad |= json_set_text(o, "source_backup_id", r->source_backup_id);
    bad |= json_set_text(o, "source_agent", r->source_agent);
    bad |= json_set_text(o, "source_database", r->source_database);
    bad |= json_set_text(o, "source_environment", r->source_environment);
    bad |= json_set_text(o, "target_agent", r->target_agent);
    bad |= json_set_text(o, "target_database", r->target_database);
    bad |= json_set_text(o, "target_environment", r->target_environment);
    bad |= json_set_text(o, "profile", r->profile);
    bad |= json_set_text(o, "sanitizer_agent", r->sanitizer_agent);
    bad |= json_set_text(o, "sanitized_backup_id", r->sanitized_backup_id);
    bad |= json_set_text(o, "safety_backup_id", r->safety_backup_id);
    bad |= json_set_text(o, "created_at", r->created_at);
    bad |= json_set_text(o, "started_at", r->started_at);
    bad |= json_set_text(o, "finished_at", r->finished_at);
    bad |= json_object_set_new(o, "options", json_text_value(r->options_json));
    bad |= json_object_set_new(o, "report", json_text_value(r->report_json));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---- version 3: pins, deletion, import, statistics ---- */

/* A catalog time from a caller (an import): required, in the catalog's own format. */
static int check_time(const char *what, const char *s, pgs_error *e)
{
    int64_t ms;
    if (s == NULL || s[0] == '\0')
        return pgs_fail(e, PGS_EINVAL, "%s is missing", what);
    if (catalog_time_parse(s, &ms) != 0)
        return pgs_fail(e, PGS_EINVAL, "%s is not a catalog time (YYYY-MM-DDTHH:MM:SS.mmmZ)", what);
    return 0;
}

int catalog_backup_pin(catalog *cat, const char *id, int pinned, pgs_error *e)
{
    sqlite3_stmt *st = NULL;
    int rc;
    if ((rc = catalog_enter(cat, e)) || (rc = check_id("backup id", id, e)))
        return rc;
    if ((rc = sql_prepare(cat, "UPDATE backups SET pinned = ?2 WHERE id = ?1", &st, e)) != 0)
        return rc;
    if ((rc = bind_text(st, 1, id)) || (rc = sqlite3_bind_int(st, 2, pinned ? 1 : 0)))
        rc = sql_fail(cat, rc, e, "cannot pin a backup");
    else if ((rc = sql_step_done(cat, st, e, "cannot pin a backup")) == 0 &&
             sqlite3_changes(cat->db) == 0)
        rc = pgs_fail(e, PGS_ENOTFOUND, "no backup %s in the catalog", id);
    if (rc == 0)
        log_debug("catalog: backup %s %s", id, pinned ? "pinned" : "unpinned");
    sqlite3_finalize(st);
    return rc;
}

/* Runs sql (with id as ?1) and copies the first column of its first row into out (size bytes):
 * *found says whether there was a row. */
static int query_text(catalog *cat, const char *sql, const char *id, char *out, size_t size,
                      int *found, pgs_error *e)
{
    sqlite3_stmt *st = NULL;
    int rc = sql_prepare(cat, sql, &st, e), src;
    *found = 0;
    out[0] = '\0';
    if (rc != 0)
        return rc;
    if ((rc = bind_text(st, 1, id)) != SQLITE_OK) {
        rc = sql_fail(cat, rc, e, "cannot read the catalog");
    } else if ((src = sqlite3_step(st)) == SQLITE_ROW) {
        *found = 1;
        if (col_text(st, 0, out, size) != 0)
            rc =
                pgs_fail(e, PGS_EFORMAT, "catalog %s: a value is longer than its limit", cat->path);
    } else if (src != SQLITE_DONE) {
        rc = sql_fail(cat, src, e, "cannot read the catalog");
    }
    sqlite3_finalize(st);
    return rc;
}

/* catalog_backup_delete's rules, read inside the caller's transaction (or alone for the check). */
static int delete_refused(catalog *cat, const char *id, pgs_error *e)
{
    char text[CATALOG_ID_SIZE + 16];
    int found, rc;
    if ((rc = query_text(cat,
                         "SELECT CASE WHEN pinned <> 0 AND state IN ('complete', 'failed')"
                         " THEN 'pinned' ELSE state END FROM backups WHERE id = ?1",
                         id, text, sizeof(text), &found, e)) != 0)
        return rc;
    if (!found)
        return pgs_fail(e, PGS_ENOTFOUND, "no backup %s in the catalog", id);
    if (strcmp(text, "pinned") == 0)
        return pgs_fail(e, PGS_EORDER, "cannot delete backup %s: it is pinned (unpin it first)",
                        id);
    if (strcmp(text, "complete") != 0 && strcmp(text, "failed") != 0)
        return pgs_fail(e, PGS_EORDER,
                        "cannot delete backup %s: it is %s, and only a complete or failed backup "
                        "can be deleted",
                        id, text);
    if ((rc = query_text(cat,
                         "SELECT id FROM backups WHERE source_backup_id = ?1"
                         " ORDER BY created_at, rowid LIMIT 1",
                         id, text, sizeof(text), &found, e)) != 0)
        return rc;
    if (found)
        return pgs_fail(e, PGS_EORDER,
                        "cannot delete backup %s: it is the source of derived backup %s (delete "
                        "that first)",
                        id, text);
    if ((rc = query_text(cat,
                         "SELECT id FROM restores WHERE state IN ('queued', 'running') AND"
                         " (source_backup_id = ?1 OR sanitized_backup_id = ?1"
                         " OR safety_backup_id = ?1) LIMIT 1",
                         id, text, sizeof(text), &found, e)) != 0)
        return rc;
    if (found)
        return pgs_fail(e, PGS_EORDER, "cannot delete backup %s: restore %s in flight uses it", id,
                        text);
    if ((rc = query_text(cat,
                         "SELECT id FROM verifications WHERE state IN ('queued', 'running')"
                         " AND backup_id = ?1 LIMIT 1",
                         id, text, sizeof(text), &found, e)) != 0)
        return rc;
    if (found)
        return pgs_fail(e, PGS_EORDER, "cannot delete backup %s: verification %s in flight uses it",
                        id, text);
    return 0;
}

int catalog_backup_delete_check(catalog *cat, const char *id, pgs_error *e)
{
    int rc;
    if ((rc = catalog_enter(cat, e)) || (rc = check_id("backup id", id, e)))
        return rc;
    return delete_refused(cat, id, e);
}

int catalog_backup_delete(catalog *cat, const char *id, pgs_error *e)
{
    sqlite3_stmt *st = NULL;
    int rc;
    if ((rc = catalog_enter(cat, e)) || (rc = check_id("backup id", id, e)))
        return rc;
    /* The checks and the delete in one write transaction: nothing can pin the backup or derive a
     * copy from it in between. */
    if ((rc = sql_exec(cat, "BEGIN IMMEDIATE", e, "cannot begin a delete")) != 0)
        return rc;
    if ((rc = delete_refused(cat, id, e)) != 0)
        goto out;
    if ((rc = sql_prepare(cat, "DELETE FROM backups WHERE id = ?1", &st, e)) != 0)
        goto out;
    if ((rc = bind_text(st, 1, id)) != SQLITE_OK) {
        rc = sql_fail(cat, rc, e, "cannot delete a backup");
        goto out;
    }
    if ((rc = sql_step_done(cat, st, e, "cannot delete a backup")) != 0 ||
        (rc = sql_exec(cat, "COMMIT", e, "cannot commit a delete")) != 0)
        goto out;
    log_debug("catalog: backup %s deleted", id);
out:
    sqlite3_finalize(st);
    if (rc != 0)
        rollback(cat);
    return rc;
}

/* Runs one statement of an import; its parameters are bound by the caller. */
static int import_step(catalog *cat, sqlite3_stmt *st, const catalog_backup_import_req *r,
                       pgs_error *e)
{
    int src = sqlite3_step(st);
    if (src == SQLITE_DONE)
        return 0;
    if (src == SQLITE_CONSTRAINT_PRIMARYKEY)
        return pgs_fail(e, PGS_EEXIST, "backup %s is already in the catalog", r->id);
    if (src == SQLITE_CONSTRAINT_FOREIGNKEY)
        return pgs_fail(e, PGS_ENOTFOUND, "backup %s: no source backup %s in the catalog", r->id,
                        r->source_backup_id ? r->source_backup_id : "?");
    return sql_fail(cat, src, e, "cannot import a backup");
}

int catalog_backup_import(catalog *cat, const catalog_backup_import_req *r, pgs_error *e)
{
    static const char agent_sql[] =
        "INSERT INTO agents (name, version, first_seen, last_seen, connected)"
        " VALUES (?1, '', ?2, ?2, 0) ON CONFLICT (name) DO NOTHING";
    static const char db_sql[] =
        "INSERT INTO databases (agent, name, environment, server_version, first_seen, last_seen)"
        " VALUES (?1, ?2, ?3, coalesce(?4, ''), ?5, ?5) ON CONFLICT (agent, name) DO NOTHING";
    static const char backup_sql[] =
        "INSERT INTO backups (id, agent, database, environment, label, state, requested_by,"
        " created_at, started_at, finished_at, bytes, dump_bytes, storage_key, sha256,"
        " server_version, pg_dump_version, recipients, source_backup_id, scheduled)"
        " VALUES (?1, ?2, ?3, ?4, coalesce(?5, ''), 'complete', coalesce(?6, ''), ?7, ?8, ?9,"
        " ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)";
    sqlite3_stmt *st = NULL;
    char now[CATALOG_TIME_SIZE], sha[CATALOG_SHA256_HEX_LEN + 1];
    char recipients[CATALOG_RECIPIENTS_MAX * (CATALOG_RECIPIENT_ID_LEN + 3) + 3];
    int rc;
    if ((rc = catalog_enter(cat, e)) != 0)
        return rc;
    if (r == NULL)
        return pgs_fail(e, PGS_EINVAL, "no backup to import");
    catalog_backup_info info = {.server_version = r->server_version,
                                .pg_dump_version = r->pg_dump_version,
                                .recipients = r->recipients,
                                .nrecipients = r->nrecipients,
                                .storage_key = r->storage_key};
    if ((rc = check_id("backup id", r->id, e)) != 0)
        return rc;
    if ((rc = check_name("agent name", r->agent, e)) ||
        (rc = check_name("database name", r->database, e)) ||
        (rc = check_name("environment", r->environment, e)) ||
        (rc = check_text("label", r->label, CATALOG_LABEL_MAX, e)) ||
        (rc = check_text("requester", r->requested_by, CATALOG_REQUESTED_BY_MAX, e)) ||
        (rc = check_opt_name("schedule name", opt(r->scheduled), e)) ||
        (rc = check_opt_id("source backup id", r->source_backup_id, e)) ||
        (rc = check_time("created_at", r->created_at, e)) ||
        (rc = check_time("started_at", r->started_at, e)) ||
        (rc = check_time("finished_at", r->finished_at, e)) ||
        (rc = check_sha256(r->sha256, sha, e)) ||
        (r->storage_key == NULL && (rc = pgs_fail(e, PGS_EINVAL, "storage key is missing"))) ||
        (rc = check_info(&info, recipients, sizeof(recipients), e)))
        return pgs_wrap(e, "backup %s", r->id);
    if (r->bytes == 0 || r->bytes > INT64_MAX || r->dump_bytes > INT64_MAX)
        return pgs_fail(e, PGS_ELIMIT, "backup %s: size out of range", r->id);
    format_time(cat->now_ms(cat->clock_arg), now);

    if ((rc = sql_exec(cat, "BEGIN IMMEDIATE", e, "cannot begin an import")) != 0)
        return rc;
    if ((rc = sql_prepare(cat, agent_sql, &st, e)) != 0)
        goto out;
    if ((rc = bind_text(st, 1, r->agent)) || (rc = bind_text(st, 2, now))) {
        rc = sql_fail(cat, rc, e, "cannot import an agent");
        goto out;
    }
    if ((rc = import_step(cat, st, r, e)) != 0)
        goto out;
    sqlite3_finalize(st);
    st = NULL;
    /* A derived copy is stored under the source database's agent and name but in another
     * environment: it does not say where that database lives. */
    if (opt(r->source_backup_id) == NULL) {
        if ((rc = sql_prepare(cat, db_sql, &st, e)) != 0)
            goto out;
        if ((rc = bind_text(st, 1, r->agent)) || (rc = bind_text(st, 2, r->database)) ||
            (rc = bind_text(st, 3, r->environment)) || (rc = bind_text(st, 4, r->server_version)) ||
            (rc = bind_text(st, 5, now))) {
            rc = sql_fail(cat, rc, e, "cannot import a database");
            goto out;
        }
        if ((rc = import_step(cat, st, r, e)) != 0)
            goto out;
        sqlite3_finalize(st);
        st = NULL;
    }
    if ((rc = sql_prepare(cat, backup_sql, &st, e)) != 0)
        goto out;
    if ((rc = bind_text(st, 1, r->id)) || (rc = bind_text(st, 2, r->agent)) ||
        (rc = bind_text(st, 3, r->database)) || (rc = bind_text(st, 4, r->environment)) ||
        (rc = bind_text(st, 5, r->label)) || (rc = bind_text(st, 6, r->requested_by)) ||
        (rc = bind_text(st, 7, r->created_at)) || (rc = bind_text(st, 8, r->started_at)) ||
        (rc = bind_text(st, 9, r->finished_at)) ||
        (rc = sqlite3_bind_int64(st, 10, (sqlite3_int64)r->bytes)) ||
        (rc = sqlite3_bind_int64(st, 11, (sqlite3_int64)r->dump_bytes)) ||
        (rc = bind_text(st, 12, r->storage_key)) || (rc = bind_text(st, 13, sha)) ||
        (rc = bind_text(st, 14, r->server_version)) ||
        (rc = bind_text(st, 15, r->pg_dump_version)) || (rc = bind_text(st, 16, recipients)) ||
        (rc = bind_text(st, 17, opt(r->source_backup_id))) ||
        (rc = bind_text(st, 18, opt(r->scheduled)))) {
        rc = sql_fail(cat, rc, e, "cannot import a backup");
        goto out;
    }
    if ((rc = import_step(cat, st, r, e)) != 0 ||
        (rc = sql_exec(cat, "COMMIT", e, "cannot commit an import")) != 0)
        goto out;
    log_debug("catalog: backup %s imported for %s/%s", r->id, r->agent, r->database);
out:
    sqlite3_finalize(st);
    if (rc != 0)
        rollback(cat);
    return rc;
}

struct stats_ctx {
    int (*cb)(void *arg, const catalog_db_stats *s);
    void *arg;
};

static int stats_row(catalog *cat, sqlite3_stmt *st, void *ctx, pgs_error *e)
{
    struct stats_ctx *c = ctx;
    catalog_db_stats s;
    memset(&s, 0, sizeof(s));
    if (COL_TEXT(st, 0, s.agent) || COL_TEXT(st, 1, s.database) || COL_TEXT(st, 2, s.environment) ||
        COL_TEXT(st, 5, s.newest_complete) || COL_TEXT(st, 6, s.oldest_complete) ||
        COL_TEXT(st, 8, s.last_failure_at) || COL_TEXT(st, 9, s.last_failure))
        return pgs_fail(e, PGS_EFORMAT,
                        "catalog %s: a backup row has a value longer than its limit", cat->path);
    sqlite3_int64 n = sqlite3_column_int64(st, 3), bytes = sqlite3_column_int64(st, 4);
    sqlite3_int64 failed = sqlite3_column_int64(st, 7);
    s.complete = n > 0 ? (uint64_t)n : 0;
    s.total_bytes = bytes > 0 ? (uint64_t)bytes : 0;
    s.average_bytes = s.complete ? s.total_bytes / s.complete : 0;
    s.failed = failed > 0 ? (uint64_t)failed : 0;
    return c->cb(c->arg, &s);
}

int catalog_stats(catalog *cat, int (*cb)(void *arg, const catalog_db_stats *s), void *arg,
                  pgs_error *e)
{
    static const char sql[] =
        "SELECT agent, database, environment,"
        " count(*) FILTER (WHERE state = 'complete'),"
        " coalesce(sum(bytes) FILTER (WHERE state = 'complete'), 0),"
        " max(started_at) FILTER (WHERE state = 'complete'),"
        " min(started_at) FILTER (WHERE state = 'complete'),"
        " count(*) FILTER (WHERE state = 'failed'),"
        " max(finished_at) FILTER (WHERE state = 'failed'),"
        " (SELECT f.error FROM backups f WHERE f.agent = b.agent AND f.database = b.database"
        "  AND f.environment = b.environment AND f.state = 'failed'"
        "  ORDER BY f.finished_at DESC, f.rowid DESC LIMIT 1)"
        " FROM backups b GROUP BY agent, database, environment"
        " ORDER BY agent, database, environment";
    sqlite3_stmt *st = NULL;
    struct stats_ctx c = {cb, arg};
    int rc;
    if ((rc = catalog_enter(cat, e)) != 0)
        return rc;
    if (cb == NULL)
        return pgs_fail(e, PGS_EINVAL, "no callback");
    if ((rc = sql_prepare(cat, sql, &st, e)) != 0)
        return rc;
    rc = run_list(cat, st, stats_row, &c, e);
    sqlite3_finalize(st);
    return rc;
}

json_t *catalog_stats_to_json(const catalog_db_stats *s)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    int bad = 0;
    bad |= json_object_set_new(o, "agent", json_string(s->agent));
    bad |= json_object_set_new(o, "database", json_string(s->database));
    bad |= json_object_set_new(o, "environment", json_string(s->environment));
    bad |= json_object_set_new(o, "complete", json_integer((json_int_t)s->complete));
    bad |= json_object_set_new(o, "total_bytes", json_integer((json_int_t)s->total_bytes));
    bad |= json_object_set_new(o, "average_bytes", json_integer((json_int_t)s->average_bytes));
    bad |= json_set_text(o, "newest_complete", s->newest_complete);
    bad |= json_set_text(o, "oldest_complete", s->oldest_complete);
    bad |= json_object_set_new(o, "failed", json_integer((json_int_t)s->failed));
    bad |= json_set_text(o, "last_failure_at", s->last_failure_at);
    bad |= json_set_text(o, "last_failure", s->last_failure);
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---- version 3: verifications ---- */

static const char *const verify_state_names[] = {"any", "queued", "running", "ok", "failed"};

const char *catalog_verify_state_name(enum catalog_verify_state s)
{
    if ((int)s < 0 || (int)s > CATALOG_VERIFY_FAILED)
        return "?";
    return verify_state_names[s];
}

int catalog_verify_state_parse(const char *name, enum catalog_verify_state *out)
{
    for (int s = CATALOG_VERIFY_QUEUED; name != NULL && s <= CATALOG_VERIFY_FAILED; s++) {
        if (strcmp(name, verify_state_names[s]) == 0) {
            *out = (enum catalog_verify_state)s;
            return 0;
        }
    }
    return PGS_EINVAL;
}

#define VERIFY_COLUMNS                                                                             \
    "id, backup_id, agent, restore_test, state, error, created_at, started_at, finished_at, "      \
    "report"

void catalog_verification_clear(catalog_verification *v)
{
    if (v == NULL)
        return;
    free(v->report_json);
    v->report_json = NULL;
}

static int row_to_verification(catalog *cat, sqlite3_stmt *st, catalog_verification *v,
                               pgs_error *e)
{
    char state[16];
    memset(v, 0, sizeof(*v));
    if (COL_TEXT(st, 0, v->id) || COL_TEXT(st, 1, v->backup_id) || COL_TEXT(st, 2, v->agent) ||
        COL_TEXT(st, 4, state) || COL_TEXT(st, 5, v->error) || COL_TEXT(st, 6, v->created_at) ||
        COL_TEXT(st, 7, v->started_at) || COL_TEXT(st, 8, v->finished_at))
        return pgs_fail(e, PGS_EFORMAT,
                        "catalog %s: a verification row has a value longer than its limit",
                        cat->path);
    v->restore_test = sqlite3_column_int(st, 3) != 0;
    if (catalog_verify_state_parse(state, &v->state) != 0)
        return pgs_fail(e, PGS_EFORMAT, "catalog %s: verification %s has an unknown state",
                        cat->path, v->id);
    if (col_json(st, 9, CATALOG_REPORT_MAX, &v->report_json) != 0)
        return pgs_fail(e, PGS_EFORMAT, "catalog %s: verification %s: report too large", cat->path,
                        v->id);
    return 0;
}

static int read_verification(catalog *cat, sqlite3_stmt *st, void *out, pgs_error *e)
{
    return row_to_verification(cat, st, out, e);
}

static const row_kind verify_kind = {
    "verification", "SELECT state FROM verifications WHERE id = ?1",
    "SELECT " VERIFY_COLUMNS " FROM verifications WHERE id = ?1", read_verification};

int catalog_verify_new(catalog *cat, const char *backup_id, const char *agent, int restore_test,
                       char id_out[CATALOG_ID_SIZE], pgs_error *e)
{
    static const char sql[] =
        "INSERT INTO verifications (id, backup_id, agent, restore_test, state, created_at)"
        " VALUES (?1, ?2, ?3, ?4, 'queued', ?5)";
    sqlite3_stmt *st = NULL;
    char id[CATALOG_ID_SIZE], now[CATALOG_TIME_SIZE], state[16];
    int rc, src = SQLITE_OK, found;
    if ((rc = catalog_enter(cat, e)) != 0)
        return rc;
    if (id_out == NULL)
        return pgs_fail(e, PGS_EINVAL, "nowhere to put the verification's id");
    if ((rc = check_id("backup id", backup_id, e)) || (rc = check_name("agent name", agent, e)))
        return rc;
    if ((rc = query_text(cat, "SELECT state FROM backups WHERE id = ?1", backup_id, state,
                         sizeof(state), &found, e)) != 0)
        return rc;
    if (!found)
        return pgs_fail(e, PGS_ENOTFOUND, "no backup %s in the catalog", backup_id);
    if (strcmp(state, "complete") != 0)
        return pgs_fail(e, PGS_EORDER,
                        "cannot verify backup %s: it is %s, and only a complete backup can be "
                        "verified",
                        backup_id, state);
    if ((rc = sql_prepare(cat, sql, &st, e)) != 0)
        return rc;
    for (int tries = 0; tries < CATALOG_ID_TRIES; tries++) {
        int64_t ms = cat->now_ms(cat->clock_arg);
        format_time(ms, now);
        make_id(ms, id);
        sqlite3_reset(st);
        if ((src = bind_text(st, 1, id)) || (src = bind_text(st, 2, backup_id)) ||
            (src = bind_text(st, 3, agent)) ||
            (src = sqlite3_bind_int(st, 4, restore_test ? 1 : 0)) || (src = bind_text(st, 5, now)))
            break;
        src = sqlite3_step(st);
        if (src != SQLITE_CONSTRAINT_PRIMARYKEY && src != SQLITE_CONSTRAINT_UNIQUE)
            break;
    }
    if (src == SQLITE_DONE) {
        memcpy(id_out, id, CATALOG_ID_SIZE);
        log_debug("catalog: verification %s of backup %s queued on %s", id, backup_id, agent);
    } else if (src == SQLITE_CONSTRAINT_TRIGGER) {
        rc = pgs_fail(e, PGS_ENOTFOUND, "no backup %s in the catalog", backup_id);
    } else {
        rc = sql_fail(cat, src, e, "cannot create a verification");
    }
    sqlite3_finalize(st);
    return rc;
}

int catalog_verify_start(catalog *cat, const char *id, pgs_error *e)
{
    sqlite3_stmt *st = NULL;
    char now[CATALOG_TIME_SIZE];
    int rc;
    if ((rc = catalog_enter(cat, e)) || (rc = check_id("verification id", id, e)))
        return rc;
    format_time(cat->now_ms(cat->clock_arg), now);
    if ((rc = sql_prepare(cat,
                          "UPDATE verifications SET state = 'running', started_at = ?2"
                          " WHERE id = ?1 AND state = 'queued'",
                          &st, e)) != 0)
        return rc;
    if ((rc = bind_text(st, 1, id)) || (rc = bind_text(st, 2, now)))
        rc = sql_fail(cat, rc, e, "cannot start a verification");
    else
        rc = transition_step(cat, &verify_kind, st, id, "start",
                             "only a queued verification can start", e);
    sqlite3_finalize(st);
    return rc;
}

int catalog_verify_finish(catalog *cat, const char *id, int ok, const char *error,
                          const char *report_json, pgs_error *e)
{
    static const char sql[] =
        "UPDATE verifications SET state = ?2, error = ?3, finished_at = ?4, report = ?5"
        " WHERE id = ?1 AND state IN ('queued', 'running')";
    static const char backup_sql[] =
        "UPDATE backups SET verified_at = ?2, verify_result = ?3"
        " WHERE id = (SELECT backup_id FROM verifications WHERE id = ?1)";
    sqlite3_stmt *st = NULL;
    char now[CATALOG_TIME_SIZE], why[CATALOG_ERROR_MAX + 1], result[CATALOG_VERIFY_RESULT_MAX + 1];
    char *report = NULL;
    int rc;
    if ((rc = catalog_enter(cat, e)) || (rc = check_id("verification id", id, e)))
        return rc;
    if (report_json != NULL &&
        (rc = normalize_object("report", report_json, CATALOG_REPORT_MAX, &report, e)) != 0)
        return pgs_wrap(e, "verification %s", id);
    clean_reason(error, why);
    snprintf(result, sizeof(result), "%s%s", ok ? "ok" : "failed: ", ok ? "" : why);
    format_time(cat->now_ms(cat->clock_arg), now);
    if ((rc = sql_exec(cat, "BEGIN IMMEDIATE", e, "cannot begin a verification's end")) != 0)
        goto out;
    if ((rc = sql_prepare(cat, sql, &st, e)) != 0)
        goto out;
    if ((rc = bind_text(st, 1, id)) || (rc = bind_text(st, 2, ok ? "ok" : "failed")) ||
        (rc = bind_text(st, 3, ok ? NULL : why)) || (rc = bind_text(st, 4, now)) ||
        (rc = bind_text(st, 5, report))) {
        rc = sql_fail(cat, rc, e, "cannot finish a verification");
        goto out;
    }
    if ((rc = transition_step(cat, &verify_kind, st, id, ok ? "complete" : "fail",
                              "only a queued or running verification can finish", e)) != 0)
        goto out;
    sqlite3_finalize(st);
    st = NULL;
    if ((rc = sql_prepare(cat, backup_sql, &st, e)) != 0)
        goto out;
    if ((rc = bind_text(st, 1, id)) || (rc = bind_text(st, 2, now)) ||
        (rc = bind_text(st, 3, result))) {
        rc = sql_fail(cat, rc, e, "cannot record a verification on its backup");
        goto out;
    }
    if ((rc = sql_step_done(cat, st, e, "cannot record a verification on its backup")) != 0 ||
        (rc = sql_exec(cat, "COMMIT", e, "cannot commit a verification's end")) != 0)
        goto out;
out:
    sqlite3_finalize(st);
    if (rc != 0)
        rollback(cat);
    free(report);
    return rc;
}

int catalog_verify_get(catalog *cat, const char *id, catalog_verification *out, pgs_error *e)
{
    if (out != NULL)
        memset(out, 0, sizeof(*out));
    return row_get(cat, &verify_kind, id, out, e);
}

struct verify_ctx {
    int (*cb)(void *arg, const catalog_verification *v);
    void *arg;
};

static int verify_row(catalog *cat, sqlite3_stmt *st, void *ctx, pgs_error *e)
{
    struct verify_ctx *c = ctx;
    catalog_verification v;
    int rc = row_to_verification(cat, st, &v, e);
    if (rc == 0)
        rc = c->cb(c->arg, &v);
    catalog_verification_clear(&v);
    return rc;
}

int catalog_verify_list(catalog *cat, const catalog_verify_filter *f,
                        int (*cb)(void *arg, const catalog_verification *v), void *arg,
                        pgs_error *e)
{
    static const char sql[] = "SELECT " VERIFY_COLUMNS " FROM verifications"
                              " WHERE (?1 IS NULL OR backup_id = ?1) AND (?2 IS NULL OR agent = ?2)"
                              " AND (?3 IS NULL OR state = ?3)"
                              " ORDER BY created_at DESC, rowid DESC LIMIT ?4";
    static const catalog_verify_filter all = {0};
    struct verify_ctx c = {cb, arg};
    sqlite3_stmt *st = NULL;
    int rc;
    if ((rc = catalog_enter(cat, e)) != 0)
        return rc;
    if (f == NULL)
        f = &all;
    if (cb == NULL)
        return pgs_fail(e, PGS_EINVAL, "no callback");
    if ((f->backup_id && (rc = check_id("backup id", f->backup_id, e))) ||
        (rc = check_opt_name("agent name", f->agent, e)))
        return rc;
    if ((int)f->state < CATALOG_VERIFY_ANY || (int)f->state > CATALOG_VERIFY_FAILED)
        return pgs_fail(e, PGS_EINVAL, "unknown verification state %d", (int)f->state);
    if ((rc = sql_prepare(cat, sql, &st, e)) != 0)
        return rc;
    if ((rc = bind_text(st, 1, f->backup_id)) || (rc = bind_text(st, 2, f->agent)) ||
        (rc = bind_text(st, 3, f->state ? catalog_verify_state_name(f->state) : NULL)) ||
        (rc = sqlite3_bind_int64(st, 4, f->limit ? (sqlite3_int64)f->limit : -1)))
        rc = sql_fail(cat, rc, e, "cannot list verifications");
    else
        rc = run_list(cat, st, verify_row, &c, e);
    sqlite3_finalize(st);
    return rc;
}

json_t *catalog_verification_to_json(const catalog_verification *v)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    int bad = 0;
    bad |= json_object_set_new(o, "id", json_string(v->id));
    bad |= json_object_set_new(o, "backup_id", json_string(v->backup_id));
    bad |= json_set_text(o, "agent", v->agent);
    bad |= json_object_set_new(o, "restore_test", json_boolean(v->restore_test));
    bad |= json_object_set_new(o, "state", json_string(catalog_verify_state_name(v->state)));
    bad |= json_set_text(o, "error", v->error);
    bad |= json_set_text(o, "created_at", v->created_at);
    bad |= json_set_text(o, "started_at", v->started_at);
    bad |= json_set_text(o, "finished_at", v->finished_at);
    bad |= json_object_set_new(o, "report", json_text_value(v->report_json));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---- version 3: audit ---- */

_Static_assert(CATALOG_AUDIT_WHO_MAX == 128 && CATALOG_AUDIT_ROLE_MAX == 31 &&
                   CATALOG_AUDIT_ACTION_MAX == 31 && CATALOG_AUDIT_TARGET_MAX == 255 &&
                   CATALOG_AUDIT_DETAIL_MAX == 4096 && CATALOG_ERROR_MAX == 1000,
               "the schema spells the audit limits");
_Static_assert(CATALOG_VERIFY_RESULT_MAX == 1008, "the schema spells the verify_result limit");

int catalog_audit_add(catalog *cat, const char *who, const char *role, const char *action,
                      const char *target, const char *result, const char *detail_json, pgs_error *e)
{
    static const char sql[] = "INSERT INTO audit (at, who, role, action, target, result, detail)"
                              " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
    sqlite3_stmt *st = NULL;
    char now[CATALOG_TIME_SIZE], w[CATALOG_AUDIT_WHO_MAX + 1], r[CATALOG_AUDIT_ROLE_MAX + 1];
    char t[CATALOG_AUDIT_TARGET_MAX + 1], res[CATALOG_ERROR_MAX + 1];
    char *detail = NULL;
    int rc;
    if ((rc = catalog_enter(cat, e)) != 0)
        return rc;
    size_t an = action ? strnlen(action, CATALOG_AUDIT_ACTION_MAX + 1) : 0;
    int action_ok = an >= 1 && an <= CATALOG_AUDIT_ACTION_MAX;
    for (size_t i = 0; action_ok && i < an; i++)
        action_ok = (action[i] >= 'a' && action[i] <= 'z') || action[i] == '_';
    if (!action_ok)
        return pgs_fail(e, PGS_EINVAL, "audit action must be 1 to %d of a-z and _",
                        CATALOG_AUDIT_ACTION_MAX);
    if (detail_json != NULL) {
        /* Read at the report's bound, kept at the audit's: a detail too large to keep is
         * replaced by its size rather than lose the entry. */
        rc = normalize_object("audit detail", detail_json, CATALOG_REPORT_MAX, &detail, e);
        size_t n = rc == 0 ? strlen(detail) : strnlen(detail_json, CATALOG_REPORT_MAX + 1);
        if (rc != 0 && rc != PGS_ELIMIT)
            return rc;
        if (rc == PGS_ELIMIT || n > CATALOG_AUDIT_DETAIL_MAX) {
            free(detail);
            if ((detail = malloc(64)) == NULL)
                return pgs_fail(e, PGS_ENOMEM, "out of memory");
            snprintf(detail, 64, "{\"truncated\":%zu}", n);
        }
        rc = 0;
    }
    clean_text(who, w, CATALOG_AUDIT_WHO_MAX, "unknown");
    clean_text(role, r, CATALOG_AUDIT_ROLE_MAX, "");
    clean_text(target, t, CATALOG_AUDIT_TARGET_MAX, "");
    if (result == NULL)
        snprintf(res, sizeof(res), "ok");
    else
        clean_reason(result, res);
    format_time(cat->now_ms(cat->clock_arg), now);
    if ((rc = sql_prepare(cat, sql, &st, e)) != 0)
        goto out;
    if ((rc = bind_text(st, 1, now)) || (rc = bind_text(st, 2, w)) || (rc = bind_text(st, 3, r)) ||
        (rc = bind_text(st, 4, action)) || (rc = bind_text(st, 5, t)) ||
        (rc = bind_text(st, 6, res)) || (rc = bind_text(st, 7, detail))) {
        rc = sql_fail(cat, rc, e, "cannot add to the audit log");
        goto out;
    }
    rc = sql_step_done(cat, st, e, "cannot add to the audit log");
out:
    sqlite3_finalize(st);
    free(detail);
    return rc;
}

struct audit_ctx {
    int (*cb)(void *arg, const catalog_audit_entry *a);
    void *arg;
};

static int audit_row(catalog *cat, sqlite3_stmt *st, void *ctx, pgs_error *e)
{
    struct audit_ctx *c = ctx;
    catalog_audit_entry a;
    memset(&a, 0, sizeof(a));
    a.id = sqlite3_column_int64(st, 0);
    if (COL_TEXT(st, 1, a.at) || COL_TEXT(st, 2, a.who) || COL_TEXT(st, 3, a.role) ||
        COL_TEXT(st, 4, a.action) || COL_TEXT(st, 5, a.target) || COL_TEXT(st, 6, a.result) ||
        COL_TEXT(st, 7, a.detail_json))
        return pgs_fail(e, PGS_EFORMAT,
                        "catalog %s: an audit row has a value longer than its limit", cat->path);
    return c->cb(c->arg, &a);
}

int catalog_audit_list(catalog *cat, unsigned limit,
                       int (*cb)(void *arg, const catalog_audit_entry *a), void *arg, pgs_error *e)
{
    sqlite3_stmt *st = NULL;
    struct audit_ctx c = {cb, arg};
    int rc;
    if ((rc = catalog_enter(cat, e)) != 0)
        return rc;
    if (cb == NULL)
        return pgs_fail(e, PGS_EINVAL, "no callback");
    if ((rc = sql_prepare(cat,
                          "SELECT id, at, who, role, action, target, result, detail FROM audit"
                          " ORDER BY id DESC LIMIT ?1",
                          &st, e)) != 0)
        return rc;
    if ((rc = sqlite3_bind_int64(st, 1, limit ? (sqlite3_int64)limit : -1)) != SQLITE_OK)
        rc = sql_fail(cat, rc, e, "cannot list the audit log");
    else
        rc = run_list(cat, st, audit_row, &c, e);
    sqlite3_finalize(st);
    return rc;
}

json_t *catalog_audit_to_json(const catalog_audit_entry *a)
{
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    int bad = 0;
    bad |= json_object_set_new(o, "id", json_integer((json_int_t)a->id));
    bad |= json_set_text(o, "at", a->at);
    bad |= json_set_text(o, "who", a->who);
    bad |= json_set_text(o, "role", a->role);
    bad |= json_set_text(o, "action", a->action);
    bad |= json_set_text(o, "target", a->target);
    bad |= json_set_text(o, "result", a->result);
    bad |= json_object_set_new(o, "detail",
                               json_text_value(a->detail_json[0] ? a->detail_json : NULL));
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---- version 3: schedule runs ---- */

int catalog_schedule_last_due_get(catalog *cat, const char *schedule, const char *agent,
                                  const char *db, int64_t *last_due,
                                  char last_backup_id[CATALOG_ID_SIZE], pgs_error *e)
{
    sqlite3_stmt *st = NULL;
    int rc, src;
    if ((rc = catalog_enter(cat, e)) || (rc = check_name("schedule name", schedule, e)) ||
        (rc = check_name("agent name", agent, e)) || (rc = check_name("database name", db, e)))
        return rc;
    if (last_due == NULL)
        return pgs_fail(e, PGS_EINVAL, "nowhere to put the last due time");
    if ((rc = sql_prepare(cat,
                          "SELECT last_due, last_backup_id FROM schedule_runs"
                          " WHERE schedule = ?1 AND agent = ?2 AND database = ?3",
                          &st, e)) != 0)
        return rc;
    if ((rc = bind_text(st, 1, schedule)) || (rc = bind_text(st, 2, agent)) ||
        (rc = bind_text(st, 3, db))) {
        rc = sql_fail(cat, rc, e, "cannot read a schedule's last run");
    } else if ((src = sqlite3_step(st)) == SQLITE_ROW) {
        char id[CATALOG_ID_SIZE];
        *last_due = sqlite3_column_int64(st, 0);
        if (COL_TEXT(st, 1, id) != 0)
            rc = pgs_fail(e, PGS_EFORMAT, "catalog %s: a schedule run has a malformed backup id",
                          cat->path);
        else if (last_backup_id != NULL)
            memcpy(last_backup_id, id, CATALOG_ID_SIZE);
    } else if (src == SQLITE_DONE) {
        rc = pgs_fail(e, PGS_ENOTFOUND, "schedule %s never ran for %s/%s", schedule, agent, db);
    } else {
        rc = sql_fail(cat, src, e, "cannot read a schedule's last run");
    }
    sqlite3_finalize(st);
    return rc;
}

int catalog_schedule_last_due_set(catalog *cat, const char *schedule, const char *agent,
                                  const char *db, int64_t last_due, const char *last_backup_id,
                                  pgs_error *e)
{
    static const char sql[] =
        "INSERT INTO schedule_runs (schedule, agent, database, last_due, last_backup_id,"
        " updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
        " ON CONFLICT (schedule, agent, database) DO UPDATE SET last_due = ?4,"
        " last_backup_id = ?5, updated_at = ?6";
    sqlite3_stmt *st = NULL;
    char now[CATALOG_TIME_SIZE];
    int rc;
    if ((rc = catalog_enter(cat, e)) || (rc = check_name("schedule name", schedule, e)) ||
        (rc = check_name("agent name", agent, e)) || (rc = check_name("database name", db, e)) ||
        (rc = check_opt_id("last backup id", last_backup_id, e)))
        return rc;
    if (last_due < 0)
        return pgs_fail(e, PGS_EINVAL, "a schedule's last due time cannot be negative");
    format_time(cat->now_ms(cat->clock_arg), now);
    if ((rc = sql_prepare(cat, sql, &st, e)) != 0)
        return rc;
    if ((rc = bind_text(st, 1, schedule)) || (rc = bind_text(st, 2, agent)) ||
        (rc = bind_text(st, 3, db)) || (rc = sqlite3_bind_int64(st, 4, last_due)) ||
        (rc = bind_text(st, 5, opt(last_backup_id))) || (rc = bind_text(st, 6, now)))
        rc = sql_fail(cat, rc, e, "cannot record a schedule's run");
    else
        rc = sql_step_done(cat, st, e, "cannot record a schedule's run");
    sqlite3_finalize(st);
    return rc;
}

/* ---- what failed since (the alerter) ---- */

/* The failed rows of one table whose finished_at is at or after since; sql binds since as ?1 and
 * orders by finished_at, then rowid, so rows ending in the same millisecond come in the order
 * they were created and a reader's pass is stable. */
static int failed_since(catalog *cat, const char *sql, const char *since, int have_cb, row_fn row,
                        void *ctx, pgs_error *e)
{
    sqlite3_stmt *st = NULL;
    int rc;
    if ((rc = catalog_enter(cat, e)) != 0)
        return rc;
    if (!have_cb)
        return pgs_fail(e, PGS_EINVAL, "no callback");
    if ((rc = check_time("since", since, e)) != 0)
        return rc;
    if ((rc = sql_prepare(cat, sql, &st, e)) != 0)
        return rc;
    if ((rc = bind_text(st, 1, since)) != 0)
        rc = sql_fail(cat, rc, e, "cannot list failures");
    else
        rc = run_list(cat, st, row, ctx, e);
    sqlite3_finalize(st);
    return rc;
}

int catalog_backup_failed_since(catalog *cat, const char *since,
                                int (*cb)(void *arg, const catalog_backup *b), void *arg,
                                pgs_error *e)
{
    static const char sql[] = "SELECT " BACKUP_COLUMNS " FROM backups"
                              " WHERE state = 'failed' AND finished_at >= ?1"
                              " ORDER BY finished_at, rowid";
    struct backup_ctx c = {cb, arg};
    return failed_since(cat, sql, since, cb != NULL, backup_row, &c, e);
}

int catalog_restore_failed_since(catalog *cat, const char *since,
                                 int (*cb)(void *arg, const catalog_restore *r), void *arg,
                                 pgs_error *e)
{
    static const char sql[] = "SELECT " RESTORE_COLUMNS " FROM restores"
                              " WHERE state = 'failed' AND finished_at >= ?1"
                              " ORDER BY finished_at, rowid";
    struct restore_ctx c = {cb, arg};
    return failed_since(cat, sql, since, cb != NULL, restore_row, &c, e);
}

int catalog_verify_failed_since(catalog *cat, const char *since,
                                int (*cb)(void *arg, const catalog_verification *v), void *arg,
                                pgs_error *e)
{
    static const char sql[] = "SELECT " VERIFY_COLUMNS " FROM verifications"
                              " WHERE state = 'failed' AND finished_at >= ?1"
                              " ORDER BY finished_at, rowid";
    struct verify_ctx c = {cb, arg};
    return failed_since(cat, sql, since, cb != NULL, verify_row, &c, e);
}

int catalog_data_version(catalog *cat, int64_t *out, pgs_error *e)
{
    int rc;
    if ((rc = catalog_enter(cat, e)) != 0)
        return rc;
    if (out == NULL)
        return pgs_fail(e, PGS_EINVAL, "nowhere to put the data version");
    sqlite3_stmt *st = NULL;
    if ((rc = sql_prepare(cat, "PRAGMA data_version", &st, e)) != 0)
        return rc;
    int src = sqlite3_step(st);
    if (src == SQLITE_ROW)
        *out = sqlite3_column_int64(st, 0);
    else
        rc = sql_fail(cat, src, e, "cannot read the data version");
    sqlite3_finalize(st);
    return rc;
}
