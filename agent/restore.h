/*
 * Restoring one archive into one database, safely: the agent's side of `pgship restore` and
 * `pgship sync` (docs/restore.md). Run by the agent daemon for restore and sanitize jobs (the
 * archive's bytes come over the wire) and by `pgship-agent restore` (from a local file).
 *
 * The procedure, each step timed and named in the report:
 *   unpack      the encrypted archive (from src) into the spool, every checksum verified
 *   create      CREATE DATABASE <target>__pgship_tmp_<id> (owner, encoding and locale of the
 *               existing target when there is one)
 *   pg_restore  pg_restore -j N into it, with the options below
 *   sanitize    sanitize_sql in one transaction, stopping at the first error (the report names
 *               the line)
 *   check       every query in check_sql; each row one returns is a failure, shown in the report
 *   analyze     ANALYZE, then per-table row counts (exact)
 *   swap        (restore) connections to the target are ended and it is renamed to
 *               <target>__pgship_old_<time>, the temporary database to <target>, in one
 *               transaction; then the old one is dropped unless keep_old
 *   dump        (sanitize) the temporary database is dumped again, encrypted to the given
 *               recipients, through dump_opts' sink; then it is dropped
 *   drop        (verify --restore-test, with scratch set) the restore went into the new database
 *               `scratch` instead of a temporary one, beside the target, which is only read for
 *               its server; after analyze it is dropped: nothing is swapped or dumped
 * Any failure before the swap drops the temporary database: the target is untouched.
 *
 * A custom-format archive is streamed: once its manifest is read, create runs and pg_restore's
 * pre-data and data sections are fed from the unpack as it goes (unverified bytes, into the
 * temporary database only); post-data runs -j N from the spool once every checksum is verified.
 * The report's steps are then unpack (to the manifest), create, pg_restore (the rest).
 *
 * Database names are cut so that they fit PostgreSQL's 63 bytes: the target's part is shortened,
 * the __pgship_tmp_ / __pgship_old_ marker and the suffix are kept (restore_cleanup finds them by
 * the marker, and scratch databases by their exact form, WIRE_SCRATCH_PREFIX and 8 hex digits).
 *
 * restore_verify is a verification without a restore: the unpack step alone, into nowhere.
 */
#ifndef PGSHIP_AGENT_RESTORE_H
#define PGSHIP_AGENT_RESTORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/dump.h"
#include "common/error.h"
#include "common/keys.h"
#include "proto/envelope.h"

#define RESTORE_TMP_MARK "__pgship_tmp_"
#define RESTORE_OLD_MARK "__pgship_old_"

/* Called as each step starts (step is one of the names above; detail may be ""). A non-zero
 * return stops the restore there, as a failure of that step (the agent daemon returns one when
 * its coordinator is gone, so that nothing is swapped in that the coordinator will not record). */
typedef int (*restore_step_fn)(void *arg, const char *step, const char *detail);

typedef struct restore_opts {
    const char *id;             /* the restore's id (names the temporary database) */
    const char *conninfo;       /* of the target database (its dbname is the target); secret */
    const char *target;         /* pgship's name for it, for messages */
    envelope_source_fn src;     /* the encrypted archive */
    void *src_arg;
    const pgs_seckey *keys;     /* restore_keys: the one that opens the archive is used */
    size_t nkeys;
    const char *spool_dir;
    const char *pg_bindir;      /* NULL: found as dump.c finds pg_dump */
    /* pg_restore's options */
    int jobs;                   /* 1..64 */
    int schema_only, data_only, no_owner;
    const char *role;           /* NULL or "" for none */
    const char *const *schemas; size_t nschemas;
    const char *const *tables; size_t ntables;
    /* sanitization (NULL when none) */
    const char *profile;        /* its name, for the report */
    const char *sanitize_sql;
    const char *check_sql;
    int keep_old;
    /* sanitize instead of swap: dump the sanitized temporary database into this (its conninfo
     * and output are set by restore_run; sink and recipients by the caller). NULL: swap. */
    dump_opts *redump;
    /* a restore test instead of swap: restore into this new database (WIRE_SCRATCH_PREFIX and 8
     * lowercase hex; it must not exist), count its rows, drop it. Not with redump or SQL. */
    const char *scratch;
    restore_step_fn on_step;
    void *step_arg;
} restore_opts;

/*
 * Runs the procedure. Returns 0 when everything succeeded. On failure returns a negative code
 * with e saying why, and *failed_step (if not NULL) names the step that failed ("" when the
 * options were refused before any step). A stop requested through common/spawn.h (SIGTERM)
 * cancels the running query or kills pg_restore, and returns PGS_EINTR after the undo.
 *
 * *report (if not NULL) always receives a new JSON object, also on failure:
 *   {"target": "appdb" (o->target, else the database's name), "temp_database": "...",
 *    "old_database": "..." (kept, or left because it could not be dropped) or null,
 *    "profile": "..." or null,
 *    "source": {"manifest": {...}} (the archive's manifest.json, once unpacked) or null,
 *    "archive": {"bytes", "chunks", "chunk_size", "members", "parts", "files", "dump_bytes",
 *        "format"} (what the unpack read and verified: envelope bytes and chunks, tar members,
 *        custom parts or directory files), once unpacked,
 *    "steps": [{"name": "unpack", "ms": 1234, "ok": true}, ...] (in order, the failed one last),
 *    "tables": [{"schema": "public", "name": "users", "rows": 50000}, ...] (after analyze; at
 *        most 10000 listed), "tables_total": N, "rows_total": N,
 *    "check_failures": [{"query": 1, "line": 12, "columns": [...], "row": [...]}, ...]
 *        (query: the statement's number in check_sql; at most 100 rows shown, 32 columns, values
 *        cut at 200 bytes; "check_failures_total" counts them all),
 *    "sanitize_error": {"line": 7, "statement": 3, "message": "..."} when sanitize failed,
 *    "check_error": {...} the same, when a check query itself failed,
 *    "dump": {"bytes": ..., "archive_bytes": ..., "sha256": "...", "manifest": {...}} (sanitize),
 *    "warnings": ["..."] (only when there are: the old database could not be dropped, an undo
 *        left something for restore_cleanup),
 *    "scratch_database": "...", "scratch_dropped": true, false (it may be left: the agent's next
 *        start drops it) or null (never created) (scratch only),
 *    "error": "..." (only on failure: e's message)}
 */
int restore_run(const restore_opts *o, json_t **report, char failed_step[32], pgs_error *e);

/*
 * A verification without a restore (a verify job): reads the archive from o->src to its verified
 * end (header MAC, every chunk's authentication, every member against SHA256SUMS, end.json) in
 * one step, "verify", and keeps nothing: no spool, no database. Only id, src, keys, on_step and
 * step_arg of o are used. Returns as restore_run; *report (if not NULL) always receives
 *   {"source": {"manifest": {...}} or null, "steps": [...], "archive": {...} (as above) or null,
 *    "error": "..." (only on failure)}
 */
int restore_verify(const restore_opts *o, json_t **report, char failed_step[32], pgs_error *e);

/*
 * At agent start: drops every database whose name carries RESTORE_TMP_MARK on the server behind
 * conninfo (a restore that died with the agent; its sessions are terminated first), and
 * re-allows connections to a database a swap left closed, only when such a temporary database
 * was made for it (an administrator's own ALLOW_CONNECTIONS false is never touched). Logs each
 * one. Returns how many it dropped, or a negative code.
 */
int restore_cleanup(const char *conninfo, pgs_error *e);

/*
 * At agent start: removes the spool directories (decrypted dumps) of restores that died with the
 * agent, in spool_dir (NULL: $TMPDIR or /tmp). A running restore holds a lock on its own, so it
 * is never touched. Returns how many it removed.
 */
int restore_spool_cleanup(const char *spool_dir);

#endif
