/*
 * The coordinator's catalog: which agents and databases it has seen, and every backup it was asked
 * for, with its state, size, digest and where it is stored; every restore and verification; the
 * audit log of who did what; and each schedule's last run. One SQLite file in WAL mode.
 *
 * The catalog is a cache of the bucket, not the source of truth: every stored object has a sidecar
 * manifest, so a lost catalog can be rebuilt from storage alone. What only the catalog knows is the
 * history of failures and of backups still in flight; crash recovery (catalog_recover) turns the
 * latter into failures with a reason, at coordinator start.
 *
 * A backup moves queued -> running -> complete | failed, or queued -> failed; complete and failed
 * are final. Each transition is one UPDATE that names the state it leaves, so two callers cannot
 * both win; a trigger in the schema refuses any other change of state, and a CHECK constraint
 * refuses a complete row without a storage key, a SHA-256 and a size. An illegal transition
 * returns PGS_EORDER with the row's current state in the message; an unknown id PGS_ENOTFOUND.
 *
 * Every string from outside is checked at the API and refused when it breaks its rule
 * (PGS_EINVAL, or PGS_ELIMIT when too long), with one exception: failure reasons are diagnostics
 * that must always be recorded, so they are cleaned (invalid UTF-8 and control characters
 * replaced) and cut to CATALOG_ERROR_MAX bytes instead. Backup ids are checked on every entry, so
 * an id that came from the network is safe to put in an object key once a call has accepted it.
 *
 * Times are RFC 3339 UTC text with milliseconds and a fixed width ("2026-11-21T16:05:29.123Z"):
 * readable in the sqlite3 shell and in the HTTP API, and ordered as text.
 *
 * Threads: a catalog handle is used by one thread at a time (the coordinator's main loop). Another
 * thread or process opens its own handle on the same file: WAL lets readers run beside the writer,
 * and writers wait for each other up to a busy timeout. Callbacks of the _list functions run
 * inside the iteration and must not call into the same handle (such calls fail with PGS_EINVAL);
 * collect ids and act after the list returns.
 */
#ifndef PGSHIP_COORDINATOR_CATALOG_H
#define PGSHIP_COORDINATOR_CATALOG_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* The schema version this code writes (PRAGMA user_version). */
#define CATALOG_SCHEMA_VERSION 3

/* "YYYYMMDDTHHMMSSZ-" + 8 lowercase hex digits, and a buffer that holds it with its NUL. */
#define CATALOG_ID_LEN 25
#define CATALOG_ID_SIZE 32
/* "YYYY-MM-DDTHH:MM:SS.mmmZ" and its buffer. */
#define CATALOG_TIME_LEN 24
#define CATALOG_TIME_SIZE 32

/* Limits, in bytes. Agent, database and environment names: 1..CATALOG_NAME_MAX of
 * [A-Za-z0-9._-], not starting with '.' or '-' (they become parts of object keys). */
#define CATALOG_NAME_MAX 63
#define CATALOG_LABEL_MAX 128        /* UTF-8 text without control characters; may be empty */
#define CATALOG_REQUESTED_BY_MAX 128 /* as the label */
#define CATALOG_ERROR_MAX 1000       /* failure reasons are cut to this */
#define CATALOG_VERSION_MAX 127      /* server, pg_dump and agent versions: printable ASCII */
#define CATALOG_KEY_ID_MAX 64        /* an agent's identity key id: printable ASCII, no space */
#define CATALOG_PUBLIC_KEY_MAX 256   /* its public key text: printable ASCII */
#define CATALOG_STORAGE_KEY_MAX 1024 /* S3's limit; relative, no empty, "." or ".." segment */
#define CATALOG_RECIPIENTS_MAX 32    /* as ENVELOPE_RECIPIENTS_MAX */
#define CATALOG_RECIPIENT_ID_LEN 16  /* a recipient key id: 16 lowercase hex (KEY_ID_HEX_LEN) */
#define CATALOG_SHA256_HEX_LEN 64
#define CATALOG_VERIFY_RESULT_MAX (CATALOG_ERROR_MAX + 8) /* "ok" or "failed: " and a reason */

typedef struct catalog catalog;

enum catalog_state {
    CATALOG_STATE_ANY = 0, /* only in filters */
    CATALOG_QUEUED = 1,
    CATALOG_RUNNING = 2,
    CATALOG_COMPLETE = 3,
    CATALOG_FAILED = 4,
};

/* "queued", "running", "complete", "failed"; "any" for CATALOG_STATE_ANY; "?" otherwise. */
const char *catalog_state_name(enum catalog_state s);
/* Parses one of the four state names; returns 0 or PGS_EINVAL. */
int catalog_state_parse(const char *name, enum catalog_state *out);

/* True when id has the backup id format (digits of a plausible date and time, lowercase hex). */
int catalog_id_valid(const char *id);
/* True when name may be an agent, database or environment name. */
int catalog_name_valid(const char *name);

/* Opens (creating when missing, with mode 0600) and migrates the catalog at path. A catalog
 * written by a newer pgship (a higher schema version) is refused with PGS_EVERSION; a SQLite file
 * that belongs to another program with PGS_EFORMAT. On success *out is the handle. */
int catalog_open(const char *path, catalog **out, pgs_error *e);
/* Closes the handle; NULL is allowed. */
void catalog_close(catalog *cat);

/* Test hook: the clock that stamps times and ids, in unix milliseconds. NULL restores the real
 * clock. Lets tests place backups in time without sleeping. */
void catalog_set_clock(catalog *cat, int64_t (*now_ms)(void *arg), void *arg);

/* Test hook: creates (or migrates) the catalog file at path up to schema version `version` (1 ..
 * CATALOG_SCHEMA_VERSION) with this code's own migrations, and closes it, so that tests hold a
 * file exactly as an older pgship wrote it. No handle is returned: this code reads only the
 * current schema. */
int catalog_create_at_version(const char *path, int version, pgs_error *e);

/* Catalog times: writes unix milliseconds as "YYYY-MM-DDTHH:MM:SS.mmmZ". */
void catalog_time_format(int64_t unix_ms, char out[CATALOG_TIME_SIZE]);
/* Parses exactly that form (a plausible date and time, UTC) into unix milliseconds; PGS_EINVAL
 * otherwise. */
int catalog_time_parse(const char *text, int64_t *unix_ms);

/* ---- agents and databases ---- */

typedef struct catalog_agent {
    char name[CATALOG_NAME_MAX + 1];
    char key_id[CATALOG_KEY_ID_MAX + 1];         /* "" until known */
    char public_key[CATALOG_PUBLIC_KEY_MAX + 1]; /* "" until known */
    char version[CATALOG_VERSION_MAX + 1];       /* pgship version the agent reported */
    char first_seen[CATALOG_TIME_SIZE];
    char last_seen[CATALOG_TIME_SIZE];
    int connected;
} catalog_agent;

/* Records that agent name was seen now (creating it on first sight). key_id, public_key and version
 * may be NULL to keep what is recorded. connected sets the connected flag (0 or 1). */
int catalog_agent_seen(catalog *cat, const char *name, const char *key_id, const char *public_key,
                       const char *version, int connected, pgs_error *e);
/* Clears the connected flag and stamps last_seen. PGS_ENOTFOUND for an unknown agent. */
int catalog_agent_disconnected(catalog *cat, const char *name, pgs_error *e);
/* Calls cb for every agent, by name. cb returns 0 to go on, > 0 to stop (the list then returns
 * 0), < 0 to stop with that code. */
int catalog_agents_list(catalog *cat, int (*cb)(void *arg, const catalog_agent *a), void *arg,
                        pgs_error *e);

typedef struct catalog_database {
    char agent[CATALOG_NAME_MAX + 1];
    char name[CATALOG_NAME_MAX + 1];
    char environment[CATALOG_NAME_MAX + 1];
    char server_version[CATALOG_VERSION_MAX + 1];
    char first_seen[CATALOG_TIME_SIZE];
    char last_seen[CATALOG_TIME_SIZE];
} catalog_database;

/* Records that agent serves database db in environment, now. server_version may be NULL to keep
 * what is recorded. The agent must be known (PGS_ENOTFOUND otherwise). */
int catalog_database_seen(catalog *cat, const char *agent, const char *db, const char *environment,
                          const char *server_version, pgs_error *e);
/* Calls cb (as for catalog_agents_list) for every database of agent (NULL: of every agent), by
 * agent and name. */
int catalog_databases_list(catalog *cat, const char *agent,
                           int (*cb)(void *arg, const catalog_database *d), void *arg,
                           pgs_error *e);

/* ---- backups ---- */

typedef struct catalog_backup {
    char id[CATALOG_ID_SIZE];
    char agent[CATALOG_NAME_MAX + 1];
    char database[CATALOG_NAME_MAX + 1];
    char environment[CATALOG_NAME_MAX + 1];
    char label[CATALOG_LABEL_MAX + 1];
    enum catalog_state state;
    char error[CATALOG_ERROR_MAX + 1]; /* "" unless failed */
    char requested_by[CATALOG_REQUESTED_BY_MAX + 1];
    char created_at[CATALOG_TIME_SIZE];
    char started_at[CATALOG_TIME_SIZE];  /* "" while queued (and when failed while queued) */
    char finished_at[CATALOG_TIME_SIZE]; /* "" until complete or failed */
    uint64_t bytes;                      /* size of the stored object; 0 until complete */
    uint64_t dump_bytes;                 /* size of pg_dump's output; 0 when unknown */
    char storage_key[CATALOG_STORAGE_KEY_MAX + 1]; /* "" until planned */
    char sha256[CATALOG_SHA256_HEX_LEN + 1];       /* of the stored object; "" until complete */
    char server_version[CATALOG_VERSION_MAX + 1];
    char pg_dump_version[CATALOG_VERSION_MAX + 1];
    size_t nrecipients;
    char recipients[CATALOG_RECIPIENTS_MAX][CATALOG_RECIPIENT_ID_LEN + 1];
    char source_backup_id[CATALOG_ID_SIZE]; /* "" unless this is a derived (sanitized) copy */
    /* version 3 */
    int pinned; /* 1: never deleted by prune (nor by catalog_backup_delete) */
    char verified_at[CATALOG_TIME_SIZE];               /* "" until a verification finished */
    char verify_result[CATALOG_VERIFY_RESULT_MAX + 1]; /* "" (never), "ok", "failed: reason" */
    char scheduled[CATALOG_NAME_MAX + 1]; /* the schedule's name that asked for it; "" if none */
} catalog_backup;

/* What a new backup is for. label, requested_by, source_backup_id and scheduled may be NULL. */
typedef struct catalog_backup_req {
    const char *agent;
    const char *database;
    const char *environment;
    const char *label;
    const char *requested_by;     /* "schedule", an operator, an API token's name */
    const char *source_backup_id; /* an existing backup this one is derived from */
    const char *scheduled;        /* the name of the schedule that asked (catalog_name_valid) */
} catalog_backup_req;

/* What is known once a backup runs; every field may be NULL (0 recipients) to leave it as it is.
 * recipients are key ids (16 lowercase hex), at most CATALOG_RECIPIENTS_MAX, no duplicates. */
typedef struct catalog_backup_info {
    const char *server_version;
    const char *pg_dump_version;
    const char *const *recipients;
    size_t nrecipients;
    const char *storage_key; /* where the object is going: recovery hands it back for cleanup */
} catalog_backup_info;

/* Creates a queued backup and writes its new id into id_out. The agent must be known
 * (PGS_ENOTFOUND), and so must source_backup_id when given. */
int catalog_backup_new(catalog *cat, const catalog_backup_req *req, char id_out[CATALOG_ID_SIZE],
                       pgs_error *e);
/* queued -> running; stamps started_at and records info (which may be NULL). */
int catalog_backup_start(catalog *cat, const char *id, const catalog_backup_info *info,
                         pgs_error *e);
/* Records info learnt while running (for example from the archive's manifest); running only. */
int catalog_backup_update_info(catalog *cat, const char *id, const catalog_backup_info *info,
                               pgs_error *e);
/* running -> complete, only with the stored object's size (> 0), its SHA-256 (64 hex digits,
 * stored lowercase) and its storage key, all in the same statement. dump_bytes may be 0. */
int catalog_backup_complete(catalog *cat, const char *id, uint64_t bytes, uint64_t dump_bytes,
                            const char *sha256_hex, const char *storage_key, pgs_error *e);
/* queued or running -> failed, with reason (cleaned and cut; NULL or "" records "no reason
 * given"). */
int catalog_backup_fail(catalog *cat, const char *id, const char *reason, pgs_error *e);

/* Fills *out with backup id; PGS_ENOTFOUND when there is none. */
int catalog_backup_get(catalog *cat, const char *id, catalog_backup *out, pgs_error *e);

/* NULL strings and CATALOG_STATE_ANY match everything; limit 0 means no limit. */
typedef struct catalog_filter {
    const char *agent;
    const char *database;
    const char *environment;
    enum catalog_state state;
    unsigned limit;
} catalog_filter;

/* Calls cb for every backup that matches f (NULL: all), newest first (by creation time, then by
 * insertion order). cb returns as for catalog_agents_list. */
int catalog_backup_list(catalog *cat, const catalog_filter *f,
                        int (*cb)(void *arg, const catalog_backup *b), void *arg, pgs_error *e);

/* The newest complete backup of agent/db (the one whose dump started last), for "AGENT/DB@latest".
 * Derived copies (source_backup_id set: a sanitized re-dump) are never "the latest backup" of a
 * database and are skipped. PGS_ENOTFOUND when there is none. */
int catalog_latest_complete(catalog *cat, const char *agent, const char *db, catalog_backup *out,
                            pgs_error *e);

/* Pins (pinned 1) or unpins (0) a backup, in any state. A pinned backup is never planned for
 * deletion by prune and catalog_backup_delete refuses it. PGS_ENOTFOUND for an unknown id. */
int catalog_backup_pin(catalog *cat, const char *id, int pinned, pgs_error *e);

/*
 * Removes backup id's row (not its object: prune deletes the object and its sidecar first, so that
 * a crash in between leaves a row that the next prune finishes). Refused with PGS_EORDER, naming
 * the reason, when the backup is queued or running, pinned, the source of a derived backup still
 * in the catalog (delete the derived copy first: a derived row never loses its link), or used by
 * a restore or verification still queued or running. PGS_ENOTFOUND for an unknown id. Finished
 * restores and verifications keep naming the id as history.
 */
int catalog_backup_delete(catalog *cat, const char *id, pgs_error *e);
/* The checks of catalog_backup_delete without the delete: 0 when it would be accepted now. */
int catalog_backup_delete_check(catalog *cat, const char *id, pgs_error *e);

/*
 * A complete backup as `catalog rebuild` found it in storage, inserted with its own id and times.
 * The agent is created when the catalog does not know it (no key, disconnected), and so is the
 * database (in the backup's environment) unless the backup is a derived copy. Every field is
 * checked as the other calls check it; times use the catalog's format; optional strings may be
 * NULL. A backup with this id already in the catalog is PGS_EEXIST; a source_backup_id not in the
 * catalog PGS_ENOTFOUND (import sources first: they are older).
 */
typedef struct catalog_backup_import_req {
    const char *id, *agent, *database, *environment;
    const char *label, *requested_by, *scheduled, *source_backup_id; /* optional */
    const char *created_at, *started_at, *finished_at;               /* required */
    uint64_t bytes;                                                  /* > 0 */
    uint64_t dump_bytes;                                             /* 0: unknown */
    const char *sha256, *storage_key;                                /* required */
    const char *server_version, *pg_dump_version;                    /* optional */
    const char *const *recipients;
    size_t nrecipients;
} catalog_backup_import_req;
int catalog_backup_import(catalog *cat, const catalog_backup_import_req *r, pgs_error *e);

/* One database's backups at a glance (monitoring, `pgship stats`). Times are "" when none. */
typedef struct catalog_db_stats {
    char agent[CATALOG_NAME_MAX + 1];
    char database[CATALOG_NAME_MAX + 1];
    char environment[CATALOG_NAME_MAX + 1];
    uint64_t complete;                       /* complete backups */
    uint64_t total_bytes;                    /* their stored size */
    uint64_t average_bytes;                  /* total_bytes / complete, 0 when none */
    char newest_complete[CATALOG_TIME_SIZE]; /* started_at (the data's time) of the newest */
    char oldest_complete[CATALOG_TIME_SIZE]; /* ... and of the oldest */
    uint64_t failed;                         /* failed backups still in the catalog */
    char last_failure_at[CATALOG_TIME_SIZE]; /* finished_at of the latest failure */
    char last_failure[CATALOG_ERROR_MAX + 1];
} catalog_db_stats;

/* Calls cb (as for catalog_agents_list) once per (agent, database, environment) that has backups
 * in the catalog, by agent, database and environment. A derived copy counts for the triple it is
 * stored under. */
int catalog_stats(catalog *cat, int (*cb)(void *arg, const catalog_db_stats *s), void *arg,
                  pgs_error *e);
/* {"agent", "database", "environment", "complete", "total_bytes", "average_bytes",
 * "newest_complete", "oldest_complete", "failed", "last_failure_at", "last_failure"}; unset
 * times and reasons are null. NULL when out of memory. */
json_t *catalog_stats_to_json(const catalog_db_stats *s);

/* A backup that catalog_recover failed. */
typedef struct catalog_recovered {
    char id[CATALOG_ID_SIZE];
    char agent[CATALOG_NAME_MAX + 1];
    char database[CATALOG_NAME_MAX + 1];
    char environment[CATALOG_NAME_MAX + 1];
    enum catalog_state was;                        /* CATALOG_QUEUED or CATALOG_RUNNING */
    char storage_key[CATALOG_STORAGE_KEY_MAX + 1]; /* "" when none was planned */
} catalog_recovered;

/* At coordinator start: in one transaction, marks every queued or running backup and every queued
 * or running restore failed with reason (a restore keeps its step, so its record says where it
 * was; each one is logged) and every agent disconnected (no connection survives a restart).
 * *out receives a
 * malloc'd array of the failed backups, oldest first (NULL when none; the caller frees it), so
 * that the caller can remove what they left in storage; out may be NULL when only the count is
 * wanted. */
int catalog_recover(catalog *cat, const char *reason, catalog_recovered **out, size_t *count,
                    pgs_error *e);

/* ---- restores ----
 *
 * Every restore and sync asked of the coordinator, from the request to its outcome: who asked,
 * what was restored where, through which profile, and how it went. A restore moves queued ->
 * running -> complete | failed like a backup (same rules, same PGS_EORDER); while running, step
 * names where it is. catalog_recover also fails restores left queued or running.
 */

#define CATALOG_STEP_MAX 31           /* step names: [a-z_], e.g. "backup", "pg_restore", "swap" */
#define CATALOG_PROFILE_MAX 63        /* as a name (catalog_name_valid) */
#define CATALOG_SOURCE_MAX 160        /* the source as asked: an id, AGENT/DB@latest, AGENT/DB */
#define CATALOG_REPORT_MAX (1u << 20) /* the report, JSON text */
#define CATALOG_OPTIONS_MAX (16u << 10) /* the options, JSON text */

typedef struct catalog_restore {
    char id[CATALOG_ID_SIZE];
    char kind[16]; /* "restore" or "sync" */
    char requested_by[CATALOG_REQUESTED_BY_MAX + 1];
    char source[CATALOG_SOURCE_MAX + 1];     /* as asked */
    char source_backup_id[CATALOG_ID_SIZE];  /* the backup restored ("" until known) */
    char source_agent[CATALOG_NAME_MAX + 1]; /* "" until known */
    char source_database[CATALOG_NAME_MAX + 1];
    char source_environment[CATALOG_NAME_MAX + 1];
    char target_agent[CATALOG_NAME_MAX + 1];
    char target_database[CATALOG_NAME_MAX + 1];
    char target_environment[CATALOG_NAME_MAX + 1];
    char profile[CATALOG_PROFILE_MAX + 1];      /* "" when none */
    char sanitizer_agent[CATALOG_NAME_MAX + 1]; /* "" unless sanitized at the source */
    char sanitized_backup_id[CATALOG_ID_SIZE];  /* "" unless sanitized at the source */
    char safety_backup_id[CATALOG_ID_SIZE];     /* "" unless --safety-backup */
    enum catalog_state state;
    char step[CATALOG_STEP_MAX + 1]; /* running: the current step; failed: the one that failed;
                                        complete: "done"; queued: "" */
    char error[CATALOG_ERROR_MAX + 1];
    char created_at[CATALOG_TIME_SIZE];
    char started_at[CATALOG_TIME_SIZE];
    char finished_at[CATALOG_TIME_SIZE];
    char *options_json; /* malloc'd JSON object text, never NULL after a get ("{}" at least) */
    char *report_json;  /* malloc'd JSON object text, or NULL until finished */
} catalog_restore;

/* Frees what a get or list filled in (options_json, report_json); the struct may be reused. */
void catalog_restore_clear(catalog_restore *r);

typedef struct catalog_restore_req {
    const char *kind;             /* "restore" or "sync" */
    const char *requested_by;     /* may be NULL */
    const char *source;           /* as asked (bounded printable text) */
    const char *source_backup_id; /* NULL when not yet known (a sync's fresh backup) */
    const char *source_agent, *source_database, *source_environment; /* NULL when unknown */
    const char *target_agent, *target_database, *target_environment;
    const char *profile;         /* NULL: none */
    const char *sanitizer_agent; /* NULL: none */
    const char *options_json;    /* a JSON object's text, <= CATALOG_OPTIONS_MAX; NULL: "{}" */
} catalog_restore_req;

/* Creates a queued restore; writes its id (the backup id format) into id_out. Every optional
 * field may also be "" for none. Names follow catalog_name_valid, ids catalog_id_valid, the
 * source is printable ASCII without spaces; the target agent (PGS_ENOTFOUND otherwise) and the
 * source backup, when given, must be in the catalog. options_json is stored compact. */
int catalog_restore_new(catalog *cat, const catalog_restore_req *req, char id_out[CATALOG_ID_SIZE],
                        pgs_error *e);
/* queued -> running, stamps started_at, step = step. */
int catalog_restore_start(catalog *cat, const char *id, const char *step, pgs_error *e);
/* While running: records progress and what became known. Every field may be NULL (or "") to keep
 * it; a backup id given must be in the catalog (PGS_ENOTFOUND). */
typedef struct catalog_restore_update {
    const char *step;
    const char *source_backup_id, *source_agent, *source_database, *source_environment;
    const char *sanitized_backup_id;
    const char *safety_backup_id;
} catalog_restore_change;
int catalog_restore_update(catalog *cat, const char *id, const catalog_restore_change *u,
                           pgs_error *e);
/* running (or queued, when failing) -> complete | failed. ok: step "done", error "" (step and
 * error are ignored), and only once source_backup_id is recorded (PGS_EINVAL otherwise).
 * Otherwise step names the failed step (NULL or "": the current step stays) and error says why
 * (cleaned and cut like backup failures). report_json may be NULL (a JSON object's text
 * otherwise, <= CATALOG_REPORT_MAX: longer is PGS_ELIMIT, and nothing changes). */
int catalog_restore_finish(catalog *cat, const char *id, int ok, const char *step,
                           const char *error, const char *report_json, pgs_error *e);
/* Fills *out (catalog_restore_clear it after); PGS_ENOTFOUND when there is none. On any error
 * *out holds nothing to free. */
int catalog_restore_get(catalog *cat, const char *id, catalog_restore *out, pgs_error *e);
/* Newest first; f's agent/database/environment match the target; the callback's restore is
 * cleared by the list after cb returns (copy what you keep). */
int catalog_restore_list(catalog *cat, const catalog_filter *f,
                         int (*cb)(void *arg, const catalog_restore *r), void *arg, pgs_error *e);
/* The API's view: every field above (unset ones null), "options" and "report" as JSON values. */
json_t *catalog_restore_to_json(const catalog_restore *r);

/* The API's view of a backup: id, agent, database, environment, label, state, error, created_at,
 * started_at, finished_at, size_bytes, dump_bytes, sha256, storage_key, server_version,
 * pg_dump_version, recipients, requested_by, source_backup_id, pinned (a boolean), verified_at,
 * verify_result, scheduled. Unset values are null. Returns a new reference, or NULL when out of
 * memory. */
json_t *catalog_backup_to_json(const catalog_backup *b);

/* ---- verifications (version 3) ----
 *
 * Every check of a stored backup: its digest read back from storage, or a test restore on an
 * agent (restore_test 1). A verification moves queued -> running -> ok | failed, or straight from
 * queued to ok or failed; ok and failed are final (a trigger refuses any change after). Finishing
 * one also records the result on the backup (verified_at, verify_result), in the same
 * transaction. Only a complete backup can be verified. The record names the backup by id and
 * outlives it: a pruned backup's verifications stay as history.
 */

enum catalog_verify_state {
    CATALOG_VERIFY_ANY = 0, /* only in filters */
    CATALOG_VERIFY_QUEUED = 1,
    CATALOG_VERIFY_RUNNING = 2,
    CATALOG_VERIFY_OK = 3,
    CATALOG_VERIFY_FAILED = 4,
};

/* "queued", "running", "ok", "failed"; "any"; "?" otherwise. */
const char *catalog_verify_state_name(enum catalog_verify_state s);
/* Parses one of the four names; 0 or PGS_EINVAL. */
int catalog_verify_state_parse(const char *name, enum catalog_verify_state *out);

typedef struct catalog_verification {
    char id[CATALOG_ID_SIZE];
    char backup_id[CATALOG_ID_SIZE];
    char agent[CATALOG_NAME_MAX + 1]; /* who verifies: an agent's name (or "coordinator") */
    int restore_test;                 /* 1: a test restore; 0: the digest only */
    enum catalog_verify_state state;
    char error[CATALOG_ERROR_MAX + 1]; /* "" unless failed */
    char created_at[CATALOG_TIME_SIZE];
    char started_at[CATALOG_TIME_SIZE];  /* "" unless it ran */
    char finished_at[CATALOG_TIME_SIZE]; /* "" until ok or failed */
    char *report_json; /* malloc'd JSON object text, or NULL (catalog_verification_clear) */
} catalog_verification;

/* Frees what a get or list filled in (report_json); the struct may be reused. */
void catalog_verification_clear(catalog_verification *v);

/* A queued verification of backup_id (which must be complete: PGS_ENOTFOUND, PGS_EORDER) by
 * agent (a name); writes its id (the backup id format, a namespace of its own) into id_out. */
int catalog_verify_new(catalog *cat, const char *backup_id, const char *agent, int restore_test,
                       char id_out[CATALOG_ID_SIZE], pgs_error *e);
/* queued -> running; stamps started_at. */
int catalog_verify_start(catalog *cat, const char *id, pgs_error *e);
/* queued or running -> ok (error ignored) or failed (error cleaned and cut like backup failures),
 * with report_json (NULL, or a JSON object's text of at most CATALOG_REPORT_MAX bytes: longer is
 * PGS_ELIMIT and nothing changes). Sets the backup's verified_at to the finish time and its
 * verify_result to "ok" or "failed: " and the reason, when the backup is still in the catalog. */
int catalog_verify_finish(catalog *cat, const char *id, int ok, const char *error,
                          const char *report_json, pgs_error *e);
/* Fills *out (catalog_verification_clear it after); PGS_ENOTFOUND when there is none. On any
 * error *out holds nothing to free. */
int catalog_verify_get(catalog *cat, const char *id, catalog_verification *out, pgs_error *e);

/* NULL strings and CATALOG_VERIFY_ANY match everything; limit 0 means no limit. */
typedef struct catalog_verify_filter {
    const char *backup_id;
    const char *agent;
    enum catalog_verify_state state;
    unsigned limit;
} catalog_verify_filter;

/* Newest first (creation time, then insertion order); the verification handed to cb is cleared
 * after cb returns (copy what you keep). cb returns as for catalog_agents_list. */
int catalog_verify_list(catalog *cat, const catalog_verify_filter *f,
                        int (*cb)(void *arg, const catalog_verification *v), void *arg,
                        pgs_error *e);
/* Every field above (unset ones null), restore_test a boolean, "report" as a JSON value. */
json_t *catalog_verification_to_json(const catalog_verification *v);

/* ---- audit (version 3) ----
 *
 * Who did what, for operators and auditors: one row per action asked of the coordinator through
 * the API or the CLI, or done by it on its own (schedules, prune). Append-only: a trigger refuses
 * any UPDATE. An audit record must never be lost because of what it describes, so the free text
 * (who, role, target, result) is cleaned and cut like failure reasons rather than refused; only
 * the action name (a constant of the caller's code) and the detail's being a JSON object are
 * checked.
 */

#define CATALOG_AUDIT_WHO_MAX 128 /* as CATALOG_REQUESTED_BY_MAX */
#define CATALOG_AUDIT_ROLE_MAX 31
#define CATALOG_AUDIT_ACTION_MAX 31 /* [a-z_]: "backup", "restore", "prune", "pin", ... */
#define CATALOG_AUDIT_TARGET_MAX 255
#define CATALOG_AUDIT_DETAIL_MAX 4096 /* compact JSON object text */

typedef struct catalog_audit_entry {
    int64_t id; /* grows with every entry, never reused */
    char at[CATALOG_TIME_SIZE];
    char who[CATALOG_AUDIT_WHO_MAX + 1];
    char role[CATALOG_AUDIT_ROLE_MAX + 1];
    char action[CATALOG_AUDIT_ACTION_MAX + 1];
    char target[CATALOG_AUDIT_TARGET_MAX + 1];
    char result[CATALOG_ERROR_MAX + 1];             /* "ok" or the error */
    char detail_json[CATALOG_AUDIT_DETAIL_MAX + 1]; /* "" when none */
} catalog_audit_entry;

/*
 * Appends an entry stamped now. who ("" or NULL: "unknown"), role and target (NULL: "") are
 * cleaned and cut to their limits; result NULL means "ok", otherwise it is cleaned like a failure
 * reason. action must be 1..CATALOG_AUDIT_ACTION_MAX of [a-z_] (PGS_EINVAL). detail_json is NULL
 * or a JSON object's text (PGS_EINVAL otherwise), stored compact; one whose compact form is longer
 * than CATALOG_AUDIT_DETAIL_MAX is replaced by {"truncated": N} (N its size in bytes), so the
 * entry is still written.
 */
int catalog_audit_add(catalog *cat, const char *who, const char *role, const char *action,
                      const char *target, const char *result, const char *detail_json,
                      pgs_error *e);
/* Calls cb (as for catalog_agents_list) for the newest `limit` entries (0: all), newest first. */
int catalog_audit_list(catalog *cat, unsigned limit,
                       int (*cb)(void *arg, const catalog_audit_entry *a), void *arg, pgs_error *e);
/* {"id", "at", "who", "role", "action", "target", "result", "detail"}: detail as a JSON value
 * (null when none), role and target null when empty. */
json_t *catalog_audit_to_json(const catalog_audit_entry *a);

/* ---- schedule runs (version 3) ----
 *
 * For the scheduler's catch-up after downtime: per (schedule, agent, database), the last due time
 * it handled (unix seconds) and the backup it asked for then. Names follow catalog_name_valid.
 */

/* *last_due (and last_backup_id, which may be NULL; "" when none was recorded) of the triple;
 * PGS_ENOTFOUND when the schedule never ran for it. */
int catalog_schedule_last_due_get(catalog *cat, const char *schedule, const char *agent,
                                  const char *db, int64_t *last_due,
                                  char last_backup_id[CATALOG_ID_SIZE], pgs_error *e);
/* Records (insert or replace) last_due (>= 0) and last_backup_id (NULL or "" for none; an id,
 * not checked against the backups: it may be pruned later). */
int catalog_schedule_last_due_set(catalog *cat, const char *schedule, const char *agent,
                                  const char *db, int64_t last_due, const char *last_backup_id,
                                  pgs_error *e);

/* ---- what failed since (the alerter) ----
 *
 * The failed backups (missed runs included), restores and verifications whose finished_at is at
 * or after since (a catalog time, catalog_time_parse's form: PGS_EINVAL otherwise), oldest end
 * first (finished_at, then insertion order), for a reader that asks every second "what failed
 * since I last looked" (coordinator/alerter.c). finished_at is stamped before the write that
 * records it commits, and writers wait for each other (up to the busy timeout), so a row can
 * become visible after rows with a later finished_at: a reader that must see every row once asks
 * again from some time before its last look and remembers the ids it has handled. cb returns as
 * for catalog_agents_list.
 */
int catalog_backup_failed_since(catalog *cat, const char *since,
                                int (*cb)(void *arg, const catalog_backup *b), void *arg,
                                pgs_error *e);
int catalog_restore_failed_since(catalog *cat, const char *since,
                                 int (*cb)(void *arg, const catalog_restore *r), void *arg,
                                 pgs_error *e);
int catalog_verify_failed_since(catalog *cat, const char *since,
                                int (*cb)(void *arg, const catalog_verification *v), void *arg,
                                pgs_error *e);

/* SQLite's data version of this handle: it changes after another handle (of this process or
 * another) commits a change to the file, and only then, so a reader can skip its queries while
 * nothing changed. Writes through this same handle do not change it. */
int catalog_data_version(catalog *cat, int64_t *out, pgs_error *e);

#endif
