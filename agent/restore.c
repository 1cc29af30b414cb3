/*
 * The agent's restore procedure (see restore.h for the steps and the report).
 *
 * The target is never written to until the very end: everything happens in a temporary database
 * beside it, and the swap is two renames in one transaction on the maintenance database. So the
 * rule "any failure before the swap leaves the target untouched" needs only one undo path, at the
 * end of restore_run: re-allow connections to the target if we closed them, drop the temporary
 * database if we created it, remove the spool directory. The same names let restore_cleanup
 * finish that undo after a crash.
 *
 * Every SQL identifier is quoted with PQescapeIdentifier and every literal with PQescapeLiteral
 * or passed as a parameter; the conninfo reaches pg_restore only through agent/pgconn.c. Queries
 * that can run long are sent asynchronously and cancelled when a stop is requested
 * (common/spawn.h); the undo path's own queries are never cancelled.
 */
#include "agent/restore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/loader.h"
#include "agent/pgbin.h"
#include "agent/pgconn.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/progress.h"
#include "common/sha256.h"
#include "common/spawn.h"
#include "proto/extract.h"
#include "proto/wire.h"

#define DBNAME_MAX 63
#define SPOOL_PREFIX "pgship-restore-"
#define CHECK_ROWS_MAX 100   /* check failures shown in the report */
#define CHECK_COLUMNS_MAX 32 /* columns shown per failing row */
#define CHECK_VALUE_MAX 200  /* bytes shown per value */
#define TABLES_MAX 10000     /* tables listed in the report (WIRE_REPORT_MAX is 1 MiB) */
#define SWAP_WAIT_MS 30000   /* for the target's connections to end */
#define QUERY_POLL_MS 200

typedef struct script_error {
    int stmt; /* 1-based statement of the script that failed */
    int line; /* its line, or the line of the server's error position */
    char msg[400];
} script_error;

typedef struct restore_ctx {
    const restore_opts *o;
    pgs_error *e;
    json_t *report, *steps, *warnings;
    char step[32];
    double step_t0;
    char dbname[DBNAME_MAX + 1]; /* the target database's real name */
    char tmp[DBNAME_MAX + 1];
    char old[DBNAME_MAX + 1];
    char spool[4096];
    int spool_fd; /* holds a flock while the spool is ours */
    extract_info info;
    char dump_path[4200];
    PGconn *admin; /* the maintenance database */
    PGconn *db;    /* the temporary database */
    int server_num;
    /* the existing target */
    int target_exists, target_allowconn;
    char owner[DBNAME_MAX + 1], encoding[64], collate[256], ctype[256], provider[4], icu[256];
    /* what we did, for the undo path */
    int created_tmp, closed_target, swapped;
    int dropped_tmp; /* the temporary (or scratch) database we created was dropped again */
    int no_cancel; /* set on the undo path: its queries are not cancelled by a stop */
    /* the custom format's pre-data and data, fed to pg_restore while the archive is unpacked */
    int streamed;     /* create and pg_restore's first part ran inside the unpack */
    spawn_proc *feed; /* that pg_restore, reading the FIFO */
    int feed_fd;      /* the FIFO's write end, -1 when closed */
    /* or the schema's pg_restore and the parallel loader (agent/loader.h) */
    int mode;               /* STREAM_* */
    loader *ld;             /* NULL unless mode is UNDECIDED or PARALLEL */
    uint64_t dump_written;  /* bytes of the dump in the spool file */
    int own_error;          /* the unpack stopped on the load's error, not the archive's */
} restore_ctx;

enum { STREAM_SERIAL = 0, STREAM_UNDECIDED, STREAM_PARALLEL };

/* ---- names ---- */

/* target cut to fit, then mark and suffix: "<target>__pgship_tmp_<id>" in at most 63 bytes. The
 * cut never splits a UTF-8 character. */
static int db_name(char out[DBNAME_MAX + 1], const char *target, const char *mark,
                   const char *suffix)
{
    size_t fixed = strlen(mark) + strlen(suffix);
    if (fixed >= DBNAME_MAX)
        return -1;
    size_t room = DBNAME_MAX - fixed, n = strlen(target);
    if (n > room) {
        n = room;
        while (n > 0 && ((unsigned char)target[n] & 0xC0) == 0x80)
            n--;
    }
    snprintf(out, DBNAME_MAX + 1, "%.*s%s%s", (int)n, target, mark, suffix);
    return 0;
}

/* ---- SQL ---- */

static char *ident(PGconn *conn, const char *s)
{
    return PQescapeIdentifier(conn, s, strlen(s));
}

static char *literal(PGconn *conn, const char *s)
{
    return PQescapeLiteral(conn, s, strlen(s));
}

static int stopped(restore_ctx *c)
{
    return !c->no_cancel && sig_stop_requested() != 0;
}

static int fail_stop(pgs_error *e)
{
    return pgs_fail(e, PGS_EINTR, "interrupted by signal %d", sig_stop_requested());
}

/* The next result of the query in flight. Unless on the undo path, a requested stop cancels the
 * query: the server then answers with an error, which the caller reports as the interruption. */
static PGresult *pq_result(restore_ctx *c, PGconn *conn, int *cancelled)
{
    while (PQisBusy(conn)) {
        struct pollfd p = {.fd = PQsocket(conn), .events = POLLIN};
        if (p.fd < 0)
            break;
        int n = poll(&p, 1, QUERY_POLL_MS);
        if (n < 0 && errno != EINTR)
            break;
        if (n > 0 && !PQconsumeInput(conn))
            break;
        if (!*cancelled && stopped(c)) {
            PGcancel *k = PQgetCancel(conn);
            char buf[256];
            if (k != NULL) {
                PQcancel(k, buf, sizeof(buf));
                PQfreeCancel(k);
            }
            *cancelled = 1;
        }
    }
    return PQgetResult(conn);
}

/* The server's message of a failed result (or the connection's), on one line. */
static void result_message(const PGconn *conn, const PGresult *r, char *out, size_t cap)
{
    const char *m = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (m != NULL) {
        const char *d = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL);
        snprintf(out, cap, "%s%s%s", m, d ? " (" : "", d ? d : "");
        if (d != NULL && strlen(out) + 1 < cap)
            strcat(out, ")");
        for (char *p = out; *p; p++)
            if (*p == '\n' || *p == '\t')
                *p = ' ';
        return;
    }
    pgconn_error_line(conn, out, cap);
    if (out[0] == '\0')
        snprintf(out, cap, "the server sent no result");
}

/*
 * Runs one statement (with text parameters) and waits for it. *out (if not NULL) receives the
 * result of a statement returning rows; the caller clears it. Errors read "<what>: <message>".
 */
static int pq_exec(restore_ctx *c, PGconn *conn, const char *what, const char *sql, int nparams,
                   const char *const *params, PGresult **out, pgs_error *e)
{
    if (out != NULL)
        *out = NULL;
    if (conn == NULL)
        return pgs_fail(e, PGS_EIO, "%s: no connection", what);
    if (!PQsendQueryParams(conn, sql, nparams, NULL, params, NULL, NULL, 0)) {
        char msg[400];
        pgconn_error_line(conn, msg, sizeof(msg));
        return pgs_fail(e, PGS_EIO, "%s: %s", what, msg);
    }
    PGresult *keep = NULL, *r;
    int cancelled = 0;
    while ((r = pq_result(c, conn, &cancelled)) != NULL) {
        ExecStatusType st = PQresultStatus(r);
        /* Keep the first error, else the last result. */
        if (keep == NULL || (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK &&
                             PQresultStatus(keep) != PGRES_FATAL_ERROR)) {
            PQclear(keep);
            keep = r;
        } else {
            PQclear(r);
        }
    }
    int rc = 0;
    ExecStatusType st = keep ? PQresultStatus(keep) : PGRES_FATAL_ERROR;
    if (cancelled && sig_stop_requested()) {
        rc = fail_stop(e);
    } else if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        char msg[450];
        result_message(conn, keep, msg, sizeof(msg));
        rc = pgs_fail(e, PQstatus(conn) == CONNECTION_OK ? PGS_EINVAL : PGS_EIO, "%s: %s", what,
                      msg);
    }
    if (rc == 0 && out != NULL && st == PGRES_TUPLES_OK) {
        *out = keep;
        keep = NULL;
    }
    PQclear(keep);
    return rc;
}

/* pq_exec of a statement built as "fmt" with %s replaced by one quoted identifier. */
static int pq_exec_ident(restore_ctx *c, PGconn *conn, const char *what, const char *fmt,
                         const char *name, pgs_error *e)
{
    char *q = conn ? ident(conn, name) : NULL;
    if (q == NULL)
        return pgs_fail(e, PGS_EIO, "%s: cannot quote %s", what, name);
    char sql[512];
    snprintf(sql, sizeof(sql), fmt, q);
    PQfreemem(q);
    return pq_exec(c, conn, what, sql, 0, NULL, NULL, e);
}

/* ---- splitting a script, to name the line of a failing statement ---- */

static int ident_char(unsigned char ch)
{
    return ch == '_' || ch >= 0x80 || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch >= '0' && ch <= '9');
}

/* Skips white space and comments from p. */
static const char *skip_blank(const char *p)
{
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == '\f')
            p++;
        if (p[0] == '-' && p[1] == '-') {
            while (*p && *p != '\n')
                p++;
        } else if (p[0] == '/' && p[1] == '*') {
            int depth = 1;
            p += 2;
            while (*p && depth > 0) {
                if (p[0] == '/' && p[1] == '*')
                    depth++, p += 2;
                else if (p[0] == '*' && p[1] == '/')
                    depth--, p += 2;
                else
                    p++;
            }
        } else {
            return p;
        }
    }
}

/* The end of the statement starting at p: its ';' or the end of the text. Knows the lexical
 * forms that can hide a ';': quotes, E'' strings, quoted identifiers, comments, dollar quotes. */
static const char *stmt_end(const char *start, const char *p)
{
    while (*p && *p != ';') {
        if (*p == '\'') {
            int esc = p > start && (p[-1] == 'E' || p[-1] == 'e') &&
                      (p - 1 == start || !ident_char((unsigned char)p[-2]));
            for (p++; *p; p++) {
                if (esc && *p == '\\' && p[1]) {
                    p++;
                } else if (*p == '\'') {
                    if (p[1] != '\'')
                        break;
                    p++;
                }
            }
            if (*p)
                p++;
        } else if (*p == '"') {
            for (p++; *p; p++)
                if (*p == '"' && p[1] != '"')
                    break;
                else if (*p == '"')
                    p++;
            if (*p)
                p++;
        } else if ((p[0] == '-' && p[1] == '-') || (p[0] == '/' && p[1] == '*')) {
            p = skip_blank(p);
        } else if (*p == '$' && (p == start || !ident_char((unsigned char)p[-1])) &&
                   (p[1] == '$' ||
                    ((ident_char((unsigned char)p[1]) && !(p[1] >= '0' && p[1] <= '9'))))) {
            const char *t = p + 1;
            while (ident_char((unsigned char)*t) && *t != '$')
                t++;
            if (*t != '$') {
                p++;
                continue;
            }
            size_t taglen = (size_t)(t - p) + 1;
            const char *close = strstr(t + 1, "$");
            while (close != NULL && strncmp(close, p, taglen) != 0)
                close = strstr(close + 1, "$");
            p = close ? close + taglen : p + strlen(p);
        } else {
            p++;
        }
    }
    return p;
}

/* Line (1-based) where the n-th (1-based) non-empty statement of sql starts; 0 if none. */
static int stmt_line(const char *sql, int n)
{
    const char *p = sql;
    for (int k = 1;; k++) {
        p = skip_blank(p);
        while (*p == ';')
            p = skip_blank(p + 1);
        if (*p == '\0')
            return 0;
        if (k == n) {
            int line = 1;
            for (const char *q = sql; q < p; q++)
                line += *q == '\n';
            return line;
        }
        p = stmt_end(p, p);
    }
}

/* Line of the character at the server's error position (1-based, in characters). */
static int char_line(const char *sql, long pos)
{
    int line = 1;
    long chars = 0;
    for (const unsigned char *q = (const unsigned char *)sql; *q; q++) {
        if ((*q & 0xC0) != 0x80 && ++chars >= pos)
            break;
        line += *q == '\n';
    }
    return line;
}

/* A JSON string of s cut to max bytes at a character boundary ("..." marks the cut). */
static json_t *json_cut(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n <= max) {
        json_t *j = json_stringn(s, n);
        return j ? j : json_string("(not UTF-8)");
    }
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    char *t = malloc(n + 4);
    if (t == NULL)
        return json_null();
    memcpy(t, s, n);
    memcpy(t + n, "...", 4);
    json_t *j = json_string(t);
    free(t);
    return j ? j : json_string("(not UTF-8)");
}

typedef void (*row_fn)(restore_ctx *c, int stmt, const PGresult *row);

/*
 * Sends the whole script as one simple query, as psql -1 would, and reads each statement's result
 * one row at a time (so a check that returns millions of rows costs no memory). The server stops
 * at the first error; its statement and line go to *se. Returns 0, PGS_EINVAL for an error in the
 * script, or another negative code.
 */
static int run_script(restore_ctx *c, PGconn *db, const char *what, const char *sql, row_fn on_row,
                      script_error *se, pgs_error *e)
{
    memset(se, 0, sizeof(*se));
    if (!PQsendQuery(db, sql)) {
        char msg[400];
        pgconn_error_line(db, msg, sizeof(msg));
        return pgs_fail(e, PGS_EIO, "%s: %s", what, msg);
    }
    PQsetSingleRowMode(db);
    int stmt = 1, failed = 0, cancelled = 0;
    long pos = 0;
    PGresult *r;
    while ((r = pq_result(c, db, &cancelled)) != NULL) {
        switch (PQresultStatus(r)) {
        case PGRES_SINGLE_TUPLE:
            if (!failed && on_row != NULL)
                on_row(c, stmt, r);
            break;
        case PGRES_TUPLES_OK:
        case PGRES_COMMAND_OK:
        case PGRES_EMPTY_QUERY:
            stmt++;
            break;
        case PGRES_COPY_IN:
            /* There is no data to give; the server answers with an error naming the line. */
            PQputCopyEnd(db, "COPY FROM STDIN cannot be used here");
            break;
        case PGRES_COPY_OUT: {
            char *buf = NULL;
            while (PQgetCopyData(db, &buf, 0) > 0)
                PQfreemem(buf);
            break;
        }
        default:
            if (!failed) {
                failed = 1;
                se->stmt = stmt;
                result_message(db, r, se->msg, sizeof(se->msg));
                const char *p = PQresultErrorField(r, PG_DIAG_STATEMENT_POSITION);
                pos = p ? strtol(p, NULL, 10) : 0;
            }
            break;
        }
        PQclear(r);
        if (PQstatus(db) != CONNECTION_OK && !failed) {
            failed = 1;
            se->stmt = stmt;
            pgconn_error_line(db, se->msg, sizeof(se->msg));
        }
    }
    if (cancelled && sig_stop_requested())
        return fail_stop(e);
    if (!failed)
        return 0;
    se->line = pos > 0 ? char_line(sql, pos) : stmt_line(sql, se->stmt);
    if (PQstatus(db) != CONNECTION_OK)
        return pgs_fail(e, PGS_EIO, "%s: %s", what, se->msg);
    return pgs_fail(e, PGS_EINVAL, "%s failed at line %d (statement %d): %s", what, se->line,
                    se->stmt, se->msg);
}

/* ---- steps ---- */

static int step_begin(restore_ctx *c, const char *name, const char *detail)
{
    snprintf(c->step, sizeof(c->step), "%s", name);
    c->step_t0 = progress_now();
    if (sig_stop_requested())
        return fail_stop(c->e);
    if (c->o->on_step != NULL && c->o->on_step(c->o->step_arg, name, detail ? detail : "") != 0)
        return pgs_fail(c->e, PGS_EINTR, "the connection to the coordinator was lost before step %s",
                        name);
    return 0;
}

static void step_end(restore_ctx *c, int ok)
{
    double ms = (progress_now() - c->step_t0) * 1000.0;
    json_array_append_new(c->steps, json_pack("{s:s, s:I, s:b}", "name", c->step, "ms",
                                              (json_int_t)(ms < 0 ? 0 : ms + 0.5), "ok", ok));
}

static void warn(restore_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(restore_ctx *c, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_warn("restore %s: %s", c->o->id, msg);
    if (c->warnings == NULL) {
        c->warnings = json_array();
        json_object_set(c->report, "warnings", c->warnings);
    }
    json_array_append_new(c->warnings, json_cut(msg, sizeof(msg)));
}

/* A live connection to the maintenance database (a new one if the first was lost). */
static PGconn *admin_conn(restore_ctx *c, pgs_error *e)
{
    if (c->admin != NULL && PQstatus(c->admin) == CONNECTION_OK)
        return c->admin;
    PQfinish(c->admin);
    /* Renaming the target needs a connection to another database. */
    c->admin = strcmp(c->dbname, "postgres") == 0 ? pgconn_connect(c->o->conninfo, "template1", e)
                                                  : pgconn_connect_maintenance(c->o->conninfo, e);
    if (c->admin == NULL && e != NULL)
        pgs_wrap(e, "the maintenance database");
    return c->admin;
}

static void close_db(restore_ctx *c)
{
    PQfinish(c->db);
    c->db = NULL;
}

static int open_db(restore_ctx *c, pgs_error *e)
{
    if (c->db != NULL && PQstatus(c->db) == CONNECTION_OK)
        return 0;
    close_db(c);
    c->db = pgconn_connect(c->o->conninfo, c->tmp, e);
    return c->db ? 0 : e->code;
}

/* Takes the spool directory for this restore: a private directory holding a flock, so that
 * restore_spool_cleanup can tell a live restore's spool from one a crash left behind. */
static int spool_open(restore_ctx *c, pgs_error *e)
{
    const char *base = c->o->spool_dir && c->o->spool_dir[0] ? c->o->spool_dir : getenv("TMPDIR");
    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    snprintf(c->spool, sizeof(c->spool), "%s/" SPOOL_PREFIX "XXXXXX", base);
    if (mkdtemp(c->spool) == NULL) {
        int err = errno;
        c->spool[0] = '\0';
        return pgs_fail(e, PGS_EIO, "cannot create a spool directory in %s: %s", base,
                        strerror(err));
    }
    c->spool_fd = open(c->spool, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (c->spool_fd < 0 || flock(c->spool_fd, LOCK_EX | LOCK_NB) != 0)
        return pgs_fail(e, PGS_EIO, "cannot lock the spool directory %s: %s", c->spool,
                        strerror(errno));
    return 0;
}

/* "its recipients are key ids A, B; the agent's restore keys are C (name), D (name)": the
 * archive's header names its recipients by key id only (their names are in the encrypted
 * manifest). */
static int no_key_error(restore_ctx *c, envelope_reader *env, pgs_error *e)
{
    char have[600] = "", ours[600] = "";
    size_t n = envelope_reader_recipient_count(env);
    for (size_t i = 0; i < n; i++) {
        char id[KEY_ID_HEX_LEN + 1];
        key_id_hex(envelope_reader_recipient_id(env, i), id);
        size_t l = strlen(have);
        snprintf(have + l, sizeof(have) - l, "%s%s", i ? ", " : "", id);
    }
    for (size_t i = 0; i < c->o->nkeys; i++) {
        char id[KEY_ID_HEX_LEN + 1];
        key_id_hex(c->o->keys[i].id, id);
        size_t l = strlen(ours);
        snprintf(ours + l, sizeof(ours) - l, "%s%s (%s)", i ? ", " : "", id, c->o->keys[i].name);
    }
    return pgs_fail(e, PGS_ENOKEY,
                    "no restore key opens this archive: its recipient%s key id%s %s; the "
                    "agent's restore keys are %s",
                    n == 1 ? " is" : "s are", n == 1 ? "" : "s", have,
                    c->o->nkeys ? ours : "none (set restore_keys in [agent])");
}

enum pgr_part {
    PGR_ALL,  /* the whole archive, -j N, from the spool file */
    PGR_FEED, /* pre-data and data, serially, from the FIFO the unpack writes: started, not waited
               */
    PGR_PRE,  /* pre-data from the spool file while the data is still arriving: started, not
                 waited for (the loader's schema) */
    PGR_REST, /* the data the loader left (sequence values, large objects), listed in REST_LIST */
    PGR_PRE_DATA, /* pre-data and data from the complete spool file, serially */
    PGR_POST  /* post-data (indexes, constraints, ...), -j N, from the spool file */
};

#define FEED_FIFO "feed.fifo"
#define REST_LIST "rest.list"
#define TOC_MAX (256u << 20) /* header and TOC of a dump held by the loader */

static int do_create(restore_ctx *c, pgs_error *e);
static int do_pg_restore(restore_ctx *c, int part, pgs_error *e);
static int wait_child(spawn_proc *p, const char *what, pgs_error *e);

/*
 * Streaming (docs/restore.md, "On the agent"): a custom-format dump is read by pg_restore in
 * order anyway, so its pre-data and data sections are fed to one pg_restore through a FIFO while
 * the archive is still being unpacked, and only the post-data section (indexes and constraints,
 * which read no data) runs -j N from the spool file afterwards. The bytes pg_restore reads are
 * not verified yet (SHA256SUMS and end.json come last); that is safe only because they go into
 * the temporary database, created before the first of them, and every failure of the unpack,
 * whatever pg_restore did, drops it before anything is swapped in.
 */
static int stream_wanted(const restore_ctx *c, const extract_info *info)
{
    const restore_opts *o = c->o;
    /* --data-only loads the target's own schema around the data; --schema-only has no data. */
    return strcmp(info->man.format, "custom") == 0 && !o->data_only && !o->schema_only;
}

/* The FIFO's pg_restore (pre-data and data, serially) and its write end. */
static int feed_start(restore_ctx *c, pgs_error *e)
{
    char fifo[4200];
    snprintf(fifo, sizeof(fifo), "%s/" FEED_FIFO, c->spool);
    if (mkfifo(fifo, 0600) != 0)
        return pgs_fail(e, PGS_EIO, "%s: %s", fifo, strerror(errno));
    int rc = do_pg_restore(c, PGR_FEED, e);
    if (rc != 0)
        return rc;
    /* Non-blocking, so that a stop is seen while pg_restore is slow to read; the open succeeds
     * once pg_restore has opened its end. */
    for (;;) {
        c->feed_fd = open(fifo, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (c->feed_fd >= 0)
            return 0;
        if (errno != ENXIO && errno != EINTR)
            return pgs_fail(e, PGS_EIO, "%s: %s", fifo, strerror(errno));
        if (sig_stop_requested())
            return fail_stop(e);
        if (!spawn_running(c->feed))
            return 0; /* it ended without reading: stream_end reports how */
        usleep(2000);
    }
}

/* The dump's bytes to the FIFO's pg_restore, with backpressure. */
static int feed_write(restore_ctx *c, const char *buf, size_t len, pgs_error *e)
{
    size_t off = 0;
    while (c->feed_fd >= 0 && off < len) {
        ssize_t n = write(c->feed_fd, buf + off, len - off);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EAGAIN) {
            struct pollfd p = {.fd = c->feed_fd, .events = POLLOUT};
            if (poll(&p, 1, QUERY_POLL_MS) < 0 && errno != EINTR)
                return pgs_fail(e, PGS_EIO, "feeding pg_restore: %s", strerror(errno));
            if (sig_stop_requested())
                return fail_stop(e);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        /* EPIPE: pg_restore stopped reading (it failed, or wants nothing further: a --table).
         * The unpack goes on to verify and spool the rest; stream_end reports its exit. */
        close(c->feed_fd);
        c->feed_fd = -1;
    }
    return 0;
}

/* The loader declined the dump: pg_restore gets all of it through the FIFO, starting with what
 * the spool file already holds. */
static int feed_catch_up(restore_ctx *c, pgs_error *e)
{
    int rc = feed_start(c, e);
    int fd = rc == 0 ? open(c->dump_path, O_RDONLY | O_CLOEXEC) : -1;
    if (rc == 0 && fd < 0)
        rc = pgs_fail(e, PGS_EIO, "%s: %s", c->dump_path, strerror(errno));
    char *buf = rc == 0 ? malloc(1u << 20) : NULL;
    if (rc == 0 && buf == NULL)
        rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
    for (uint64_t pos = 0; rc == 0 && pos < c->dump_written;) {
        uint64_t want = c->dump_written - pos;
        ssize_t n = pread(fd, buf, want > (1u << 20) ? (1u << 20) : (size_t)want, (off_t)pos);
        if (n <= 0)
            rc = pgs_fail(e, PGS_EIO, "%s: %s", c->dump_path, n < 0 ? strerror(errno) : "short");
        else if ((rc = feed_write(c, buf, (size_t)n, e)) == 0)
            pos += (uint64_t)n;
    }
    free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* extract_hooks.on_manifest: the unpack step ends here; create, then get ready for the dump. */
static int stream_on_manifest(void *arg, const extract_info *info, pgs_error *e)
{
    restore_ctx *c = arg;
    if (!stream_wanted(c, info))
        return 0;
    c->streamed = 1;
    step_end(c, 1);
    int rc = step_begin(c, "create", c->tmp);
    if (rc == 0)
        rc = do_create(c, e);
    if (rc != 0)
        return rc;
    step_end(c, 1);
    char detail[64];
    snprintf(detail, sizeof(detail), "jobs %d, data streamed", c->o->jobs);
    if ((rc = step_begin(c, "pg_restore", detail)) != 0)
        return rc;
    snprintf(c->dump_path, sizeof(c->dump_path), "%s/%s", c->spool, extract_dump_name(info));
    if (c->o->nschemas > 0 || c->o->ntables > 0) {
        /* pg_restore's own selection decides what is loaded: it reads everything in order. */
        c->mode = STREAM_SERIAL;
        return feed_start(c, e);
    }
    loader_opts lo = {.conninfo = c->o->conninfo,
                      .dbname = c->tmp,
                      .path = c->dump_path,
                      .role = c->o->role,
                      .id = c->o->id,
                      .jobs = c->o->jobs,
                      .toc_max = TOC_MAX};
    c->mode = STREAM_UNDECIDED;
    return loader_new(&c->ld, &lo, e);
}

static int stream_dump(restore_ctx *c, const char *buf, size_t len, pgs_error *e);

/* extract_hooks.on_dump: the dump's bytes, just appended to the spool file. */
static int stream_on_dump(void *arg, const char *buf, size_t len, pgs_error *e)
{
    restore_ctx *c = arg;
    int rc = stream_dump(c, buf, len, e);
    if (rc != 0 && rc != PGS_EINTR)
        c->own_error = 1;
    return rc;
}

static int stream_dump(restore_ctx *c, const char *buf, size_t len, pgs_error *e)
{
    c->dump_written += len;
    if (c->mode == STREAM_SERIAL)
        return feed_write(c, buf, len, e);
    int state, rc = loader_feed(c->ld, buf, len, &state, e);
    if (rc != 0)
        return rc;
    if (state == LOADER_DECLINED) {
        log_info("restore %s: pg_restore loads the data alone, in one session: %s", c->o->id,
                 loader_why(c->ld));
        loader_free(c->ld);
        c->ld = NULL;
        c->mode = STREAM_SERIAL;
        return feed_catch_up(c, e);
    }
    if (state == LOADER_PARALLEL && c->mode == STREAM_UNDECIDED) {
        /* The TOC is in the spool file: the schema goes in while the data keeps arriving. */
        c->mode = STREAM_PARALLEL;
        return do_pg_restore(c, PGR_PRE, e);
    }
    if (c->mode == STREAM_PARALLEL && c->feed != NULL && !spawn_running(c->feed)) {
        spawn_proc *p = c->feed;
        c->feed = NULL;
        if ((rc = wait_child(p, "pg_restore of the schema", e)) != 0)
            return rc;
        return loader_go(c->ld, e);
    }
    return 0;
}

/* The parallel load's end: the schema's pg_restore, the loader, then what it left. */
static int stream_end_parallel(restore_ctx *c, pgs_error *e)
{
    int rc = 0;
    if (c->feed != NULL) {
        spawn_proc *p = c->feed;
        c->feed = NULL;
        rc = wait_child(p, "pg_restore of the schema", e);
    }
    if (rc == 0)
        rc = loader_go(c->ld, e);
    int ld = loader_finish(c->ld, rc == 0, e);
    if (rc == 0)
        rc = ld;
    if (rc != 0)
        return rc;
    json_object_set_new(c->report, "load", loader_report(c->ld));
    char list[4200];
    size_t n = 0;
    snprintf(list, sizeof(list), "%s/" REST_LIST, c->spool);
    if ((rc = loader_rest_list(c->ld, list, &n, e)) == 0 && n > 0)
        rc = do_pg_restore(c, PGR_REST, e);
    return rc;
}

/* After the unpack (rc its result): ends the feed or the loader, then the post-data part. */
static int stream_end(restore_ctx *c, int rc, pgs_error *e)
{
    if (!c->streamed)
        return rc;
    if (c->feed_fd >= 0)
        close(c->feed_fd);
    c->feed_fd = -1;
    if (rc != 0) {
        /* The archive failed (or a stop): what was loaded dies with the temporary database on
         * the undo path. The failure is the unpack's. */
        if (c->feed != NULL) {
            spawn_kill(c->feed, SIGTERM);
            pgs_error ignored;
            spawn_wait(c->feed, &ignored);
            spawn_free(c->feed);
            c->feed = NULL;
        }
        if (c->ld != NULL) {
            pgs_error ignored;
            loader_finish(c->ld, 0, &ignored);
        }
        if (rc != PGS_EINTR && strcmp(c->step, "pg_restore") == 0 && c->own_error == 0)
            snprintf(c->step, sizeof(c->step), "unpack");
        return rc;
    }
    switch (c->mode) {
    case STREAM_PARALLEL:
        rc = stream_end_parallel(c, e);
        break;
    case STREAM_UNDECIDED:
        /* The whole dump is shorter than its TOC could be read ahead: pg_restore reads it. */
        rc = do_pg_restore(c, PGR_PRE_DATA, e);
        break;
    default:
        if (c->feed != NULL) {
            spawn_proc *p = c->feed;
            c->feed = NULL;
            rc = wait_child(p, "pg_restore", e);
        }
        break;
    }
    if (rc != 0)
        return rc;
    return do_pg_restore(c, PGR_POST, e);
}

/* What reading the archive to its verified end checked: "archive" in the reports. */
static json_t *archive_json(const envelope_reader *env, const extract_info *info)
{
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s}", "bytes",
                     (json_int_t)envelope_reader_offset(env), "chunks",
                     (json_int_t)envelope_reader_chunks(env), "chunk_size",
                     (json_int_t)envelope_reader_chunk_size(env), "members",
                     (json_int_t)info->members, "parts", (json_int_t)info->parts, "files",
                     (json_int_t)info->files, "dump_bytes", (json_int_t)info->dump_bytes, "format",
                     info->man.format);
}

static int do_unpack(restore_ctx *c, pgs_error *e)
{
    envelope_reader *env = NULL;
    int ours = 0;
    int rc = spool_open(c, e);
    if (rc != 0)
        return rc;
    if ((rc = envelope_reader_new(&env, c->o->src, c->o->src_arg)) != 0)
        return pgs_fail(e, rc, "out of memory");
    if ((rc = envelope_reader_read_header(env, e)) != 0)
        goto out;
    if (c->o->nkeys == 0) {
        rc = no_key_error(c, env, e);
        goto out;
    }
    if ((rc = envelope_reader_unlock(env, c->o->keys, c->o->nkeys, e)) == PGS_ENOKEY) {
        rc = no_key_error(c, env, e);
        goto out;
    }
    /* ours: a failure of create or pg_restore when streamed, not the archive's */
    if (rc == 0) {
        extract_hooks h = {.on_manifest = stream_on_manifest, .on_dump = stream_on_dump, .arg = c};
        rc = extract_archive_hooks(env, c->spool, 0, &h, &c->info, e);
        ours = (rc != 0 && strcmp(c->step, "create") == 0) || c->own_error;
        if (rc == 0)
            ours = 1;
        rc = stream_end(c, rc, e);
    }
    if (rc != 0)
        goto out;
    json_t *src = json_object();
    json_object_set_new(src, "manifest",
                        c->info.manifest_json ? json_incref(c->info.manifest_json) : json_object());
    json_object_set_new(c->report, "source", src);
    json_object_set_new(c->report, "archive", archive_json(env, &c->info));
    snprintf(c->dump_path, sizeof(c->dump_path), "%s/%s", c->spool, extract_dump_name(&c->info));
    char b[32];
    log_info("restore %s: unpacked %s (%s format, %s, pg_dump %s, every checksum verified)",
             c->o->id, c->info.man.database, c->info.man.format,
             fs_human_bytes(c->info.dump_bytes, b, sizeof(b)), c->info.man.pg_dump_version);
out:
    envelope_reader_free(env);
    if (rc != 0 && rc != PGS_ENOKEY && rc != PGS_EINTR && !ours)
        pgs_wrap(e, "reading the archive");
    return rc;
}

/* Reads the existing target's owner, encoding, locale and whether it takes connections. */
static int read_target(restore_ctx *c, pgs_error *e)
{
    const char *prov = c->server_num >= 150000 ? "datlocprovider::text" : "'c'";
    const char *icu = c->server_num >= 170000   ? "coalesce(datlocale, '')"
                      : c->server_num >= 150000 ? "coalesce(daticulocale, '')"
                                                : "''";
    char sql[600];
    snprintf(sql, sizeof(sql),
             "SELECT pg_get_userbyid(datdba), pg_encoding_to_char(encoding), datcollate, "
             "datctype, datallowconn, %s, %s FROM pg_database WHERE datname = $1",
             prov, icu);
    const char *params[] = {c->dbname};
    PGresult *r = NULL;
    int rc = pq_exec(c, c->admin, "reading the target database", sql, 1, params, &r, e);
    if (rc != 0)
        return rc;
    c->target_exists = 0;
    if (PQntuples(r) == 1) {
        c->target_exists = 1;
        snprintf(c->owner, sizeof(c->owner), "%s", PQgetvalue(r, 0, 0));
        snprintf(c->encoding, sizeof(c->encoding), "%s", PQgetvalue(r, 0, 1));
        snprintf(c->collate, sizeof(c->collate), "%s", PQgetvalue(r, 0, 2));
        snprintf(c->ctype, sizeof(c->ctype), "%s", PQgetvalue(r, 0, 3));
        c->target_allowconn = strcmp(PQgetvalue(r, 0, 4), "t") == 0;
        snprintf(c->provider, sizeof(c->provider), "%s", PQgetvalue(r, 0, 5));
        snprintf(c->icu, sizeof(c->icu), "%s", PQgetvalue(r, 0, 6));
    }
    PQclear(r);
    return 0;
}

/* Appends " KEYWORD 'value'" (a quoted literal) to sql. */
static int add_option(PGconn *conn, char *sql, size_t cap, const char *kw, const char *val)
{
    char *lit = literal(conn, val);
    if (lit == NULL)
        return -1;
    size_t l = strlen(sql);
    int n = snprintf(sql + l, cap - l, " %s %s", kw, lit);
    PQfreemem(lit);
    return n < 0 || (size_t)n >= cap - l ? -1 : 0;
}

/*
 * Copies the target's database-level grants and settings to the temporary database: pg_dump
 * without --create carries neither, and a swap must not quietly widen who may connect or change
 * the settings the application runs with.
 */
static int copy_grants_and_settings(restore_ctx *c, pgs_error *e)
{
    const char *params[] = {c->dbname};
    PGresult *r = NULL;
    int rc = pq_exec(c, c->admin, "reading the target's grants",
                     "SELECT a.privilege_type, a.is_grantable, "
                     "CASE WHEN a.grantee = 0 THEN '' ELSE pg_get_userbyid(a.grantee) END "
                     "FROM pg_database d, aclexplode(d.datacl) a WHERE d.datname = $1 "
                     "ORDER BY 3, 1",
                     1, params, &r, e);
    if (rc != 0)
        return rc;
    char *tmpq = ident(c->admin, c->tmp), *ownq = ident(c->admin, c->owner);
    char sql[1024];
    if (tmpq == NULL || ownq == NULL) {
        rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
        goto out;
    }
    if (PQntuples(r) > 0) {
        /* An explicit ACL replaces the defaults (PUBLIC: CONNECT, TEMPORARY; the owner: all). */
        snprintf(sql, sizeof(sql), "REVOKE ALL ON DATABASE %s FROM PUBLIC, %s", tmpq, ownq);
        if ((rc = pq_exec(c, c->admin, "copying the target's grants", sql, 0, NULL, NULL, e)))
            goto out;
    }
    for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
        const char *grantee = PQgetvalue(r, i, 2);
        char *gq = grantee[0] ? ident(c->admin, grantee) : NULL;
        if (grantee[0] && gq == NULL) {
            rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
            break;
        }
        /* privilege_type is one of CREATE, CONNECT, TEMPORARY: keywords, not input. */
        const char *priv = PQgetvalue(r, i, 0);
        if (strcmp(priv, "CREATE") != 0 && strcmp(priv, "CONNECT") != 0 &&
            strcmp(priv, "TEMPORARY") != 0) {
            PQfreemem(gq);
            continue;
        }
        snprintf(sql, sizeof(sql), "GRANT %s ON DATABASE %s TO %s%s", priv, tmpq,
                 gq ? gq : "PUBLIC",
                 strcmp(PQgetvalue(r, i, 1), "t") == 0 ? " WITH GRANT OPTION" : "");
        PQfreemem(gq);
        rc = pq_exec(c, c->admin, "copying the target's grants", sql, 0, NULL, NULL, e);
    }
    PQclear(r);
    r = NULL;
    if (rc != 0)
        goto out;

    rc = pq_exec(c, c->admin, "reading the target's settings",
                 "SELECT CASE WHEN s.setrole = 0 THEN '' ELSE pg_get_userbyid(s.setrole) END, "
                 "split_part(u.cfg, '=', 1), substr(u.cfg, strpos(u.cfg, '=') + 1), "
                 "lower(split_part(u.cfg, '=', 1)) IN ('local_preload_libraries', 'search_path', "
                 "'session_preload_libraries', 'shared_preload_libraries', 'temp_tablespaces', "
                 "'unix_socket_directories') "
                 "FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase, "
                 "unnest(s.setconfig) WITH ORDINALITY u(cfg, k) WHERE d.datname = $1 "
                 "ORDER BY 1, u.k",
                 1, params, &r, e);
    for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
        const char *role = PQgetvalue(r, i, 0), *name = PQgetvalue(r, i, 1),
                   *value = PQgetvalue(r, i, 2);
        int list = strcmp(PQgetvalue(r, i, 3), "t") == 0;
        /* The name may be dotted (a custom setting): each part quoted. */
        char qname[512] = "", part[256];
        for (const char *p = name; rc == 0 && *p;) {
            size_t n = strcspn(p, ".");
            snprintf(part, sizeof(part), "%.*s", (int)n, p);
            char *q = ident(c->admin, part);
            if (q == NULL) {
                rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
                break;
            }
            size_t l = strlen(qname);
            snprintf(qname + l, sizeof(qname) - l, "%s%s", l ? "." : "", q);
            PQfreemem(q);
            p += n + (p[n] == '.');
        }
        /* A list setting (search_path) is stored as its elements, each quoted as an identifier
         * when needed ("$user", public): given back as one literal per element, as pg_dump does. */
        char *vals = NULL;
        size_t vlen = 0;
        FILE *vf = open_memstream(&vals, &vlen);
        if (vf == NULL) {
            rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
            break;
        }
        if (!list) {
            char *lit = literal(c->admin, value);
            fputs(lit ? lit : "''", vf);
            PQfreemem(lit);
        } else {
            const char *p = value;
            int first = 1;
            while (*p) {
                while (*p == ' ')
                    p++;
                char elem[1024];
                size_t o = 0;
                if (*p == '"') {
                    for (p++; *p && o + 1 < sizeof(elem); p++) {
                        if (*p == '"' && p[1] == '"')
                            elem[o++] = *p++;
                        else if (*p == '"')
                            break;
                        else
                            elem[o++] = *p;
                    }
                    if (*p == '"')
                        p++;
                } else {
                    while (*p && *p != ',' && o + 1 < sizeof(elem))
                        elem[o++] = *p++;
                    while (o > 0 && elem[o - 1] == ' ')
                        o--;
                }
                elem[o] = '\0';
                while (*p == ' ')
                    p++;
                if (*p == ',')
                    p++;
                char *lit = literal(c->admin, elem);
                fprintf(vf, "%s%s", first ? "" : ", ", lit ? lit : "''");
                PQfreemem(lit);
                first = 0;
            }
            if (first)
                fputs("''", vf);
        }
        fclose(vf);
        char *rq = role[0] ? ident(c->admin, role) : NULL;
        size_t cap = strlen(vals) + strlen(qname) + 256 + 2 * DBNAME_MAX + (rq ? strlen(rq) : 0);
        char *stmt = malloc(cap);
        if (stmt == NULL) {
            rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
        } else {
            if (rq != NULL)
                snprintf(stmt, cap, "ALTER ROLE %s IN DATABASE %s SET %s = %s", rq, tmpq, qname,
                         vals);
            else
                snprintf(stmt, cap, "ALTER DATABASE %s SET %s = %s", tmpq, qname, vals);
            rc = pq_exec(c, c->admin, "copying the target's settings", stmt, 0, NULL, NULL, e);
        }
        free(stmt);
        free(vals);
        PQfreemem(rq);
    }
out:
    PQclear(r);
    PQfreemem(tmpq);
    PQfreemem(ownq);
    return rc;
}

static int do_create(restore_ctx *c, pgs_error *e)
{
    if (admin_conn(c, e) == NULL)
        return e->code;
    c->server_num = PQserverVersion(c->admin);
    /* A scratch database copies nothing of the database it sits beside. */
    int rc = c->o->scratch != NULL ? 0 : read_target(c, e);
    if (rc != 0)
        return rc;
    char sql[2048];
    char *q = ident(c->admin, c->tmp);
    if (q == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s TEMPLATE template0", q);
    PQfreemem(q);
    if (c->target_exists) {
        char *oq = ident(c->admin, c->owner);
        if (oq == NULL)
            return pgs_fail(e, PGS_ENOMEM, "out of memory");
        size_t l = strlen(sql);
        snprintf(sql + l, sizeof(sql) - l, " OWNER %s", oq);
        PQfreemem(oq);
        int bad = add_option(c->admin, sql, sizeof(sql), "ENCODING", c->encoding) ||
                  add_option(c->admin, sql, sizeof(sql), "LC_COLLATE", c->collate) ||
                  add_option(c->admin, sql, sizeof(sql), "LC_CTYPE", c->ctype);
        if (!bad && strcmp(c->provider, "i") == 0)
            bad = add_option(c->admin, sql, sizeof(sql), "LOCALE_PROVIDER", "icu") ||
                  add_option(c->admin, sql, sizeof(sql), "ICU_LOCALE", c->icu);
        else if (!bad && strcmp(c->provider, "b") == 0)
            bad = add_option(c->admin, sql, sizeof(sql), "LOCALE_PROVIDER", "builtin") ||
                  add_option(c->admin, sql, sizeof(sql), "BUILTIN_LOCALE", c->icu);
        if (bad)
            return pgs_fail(e, PGS_ELIMIT, "the target's locale settings are too long");
    }
    char what[200];
    snprintf(what, sizeof(what), "creating database %s", c->tmp);
    rc = pq_exec(c, c->admin, what, sql, 0, NULL, NULL, e);
    /* Ours when it succeeded, and perhaps when the connection broke on the way (the undo path
     * drops it IF EXISTS); never when it failed otherwise: a database of that name that already
     * exists is not ours to drop. */
    if (rc == 0 || PQstatus(c->admin) != CONNECTION_OK)
        c->created_tmp = 1;
    if (rc != 0)
        return rc;
    if (c->target_exists)
        rc = copy_grants_and_settings(c, e);
    return rc;
}

/* "pg_restore failed (exited with status 1):" and the end of what it said on stderr. */
static int child_failed(spawn_proc *p, const char *what, pgs_error *e)
{
    char how[sizeof(e->msg)];
    snprintf(how, sizeof(how), "%s", e->msg);
    const char *tail = spawn_stderr_tail(p);
    return pgs_fail(e, PGS_ECHILD, "%s failed (%s)%s%s", what, how, tail[0] ? ":\n" : "", tail);
}

/* Waits for a started PostgreSQL program and frees p; a requested stop kills it. */
static int wait_child(spawn_proc *p, const char *what, pgs_error *e)
{
    int rc;
    while (spawn_running(p)) {
        if (sig_stop_requested()) {
            spawn_kill(p, SIGTERM);
            break;
        }
        usleep(100 * 1000);
    }
    rc = spawn_wait(p, e);
    if (sig_stop_requested())
        rc = fail_stop(e);
    else if (rc != 0 && e->code == PGS_ECHILD)
        rc = child_failed(p, what, e);
    spawn_free(p);
    return rc;
}

/* Runs a PostgreSQL program to its end; a requested stop kills it. */
static int run_child(restore_ctx *c, const char *const *argv, char *const *env, const char *what,
                     pgs_error *e)
{
    (void)c;
    spawn_proc *p = NULL;
    spawn_opts so = {.argv = argv, .envp = env, .stdout_mode = SPAWN_OUT_NULL};
    int rc = spawn_start(&p, &so, e);
    if (rc != 0)
        return rc;
    return wait_child(p, what, e);
}

/* Adds "--flag=value" (allocated into owned) to argv. */
static int add_arg(const char **argv, size_t *n, char **owned, size_t *no, const char *flag,
                   const char *v)
{
    size_t len = strlen(flag) + strlen(v) + 1;
    if ((owned[*no] = malloc(len)) == NULL)
        return -1;
    snprintf(owned[*no], len, "%s%s", flag, v);
    argv[(*n)++] = owned[(*no)++];
    return 0;
}

/*
 * pg_restore -j N into the temporary database. With --data-only, the temporary database first
 * gets the target's own schema (pg_dump --schema-only of it): its pre-data before the archive's
 * data, its post-data (indexes, constraints, foreign keys) after, so that the data loads in any
 * order and the indexes are built once.
 */
static int do_pg_restore(restore_ctx *c, int part, pgs_error *e)
{
    const restore_opts *o = c->o;
    int major = c->server_num / 10000, dump_major = 0;
    /* pg_restore refuses archives from a newer pg_dump: at least the dump's major version. */
    char ver[64], text[96];
    snprintf(text, sizeof(text), "(PostgreSQL) %s", c->info.man.pg_dump_version);
    if (pgbin_parse_version(text, ver, sizeof(ver), &dump_major) != 0)
        dump_major = 0;
    if (o->data_only && !c->target_exists)
        return pgs_fail(e, PGS_EINVAL,
                        "--data-only keeps the target's schema, but database %s does not exist",
                        c->dbname);
    pgbin bin, dumpbin;
    int rc =
        pgbin_find("pg_restore", dump_major > major ? dump_major : major, o->pg_bindir, &bin, e);
    if (rc == 0 && o->data_only)
        rc = pgbin_find("pg_dump", major, o->pg_bindir, &dumpbin, e);
    if (rc != 0)
        return rc;
    pgconn_child child, tchild;
    memset(&tchild, 0, sizeof(tchild));
    if ((rc = pgconn_child_build(&child, o->conninfo, c->tmp, e)) != 0)
        return rc;
    size_t cap = 24 + o->nschemas + o->ntables;
    const char **argv = calloc(cap, sizeof(char *));
    char **owned = calloc(cap, sizeof(char *));
    size_t n = 0, no = 0;
    char jobs[32], schema_file[4200];
    snprintf(jobs, sizeof(jobs), "--jobs=%d", o->jobs);
    snprintf(schema_file, sizeof(schema_file), "%s/target-schema.pgdump", c->spool);
    if (argv == NULL || owned == NULL) {
        rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
        goto out;
    }
    if (o->data_only && part == PGR_ALL) {
        if ((rc = pgconn_child_build(&tchild, o->conninfo, NULL, e)) != 0)
            goto out;
        const char *dargv[] = {dumpbin.path,
                               "--format=custom",
                               "--schema-only",
                               "--no-password",
                               "--file",
                               schema_file,
                               tchild.dbname_arg ? "--dbname" : NULL,
                               tchild.dbname_arg,
                               NULL};
        log_info("restore %s: --data-only: copying the schema of %s", o->id, c->dbname);
        if ((rc = run_child(c, dargv, tchild.env, "pg_dump --schema-only of the target", e)) != 0)
            goto out;
        const char *pargv[] = {
            bin.path,          "--dbname",           child.dbname_arg, "--no-password",
            "--exit-on-error", "--section=pre-data", schema_file,      NULL};
        if ((rc = run_child(c, pargv, child.env, "pg_restore of the target's schema", e)) != 0)
            goto out;
    }
    argv[n++] = bin.path;
    argv[n++] = "--dbname";
    argv[n++] = child.dbname_arg;
    argv[n++] = "--no-password";
    argv[n++] = "--exit-on-error";
    char rest_list[4200];
    snprintf(rest_list, sizeof(rest_list), "%s/" REST_LIST, c->spool);
    if (part == PGR_FEED || part == PGR_PRE || part == PGR_PRE_DATA) {
        /* Named, else pg_restore opens the input once to guess its format, closes it and opens
         * it again: a FIFO would lose the bytes that first look consumed. */
        argv[n++] = "--format=custom";
        argv[n++] = "--section=pre-data";
        if (part != PGR_PRE)
            argv[n++] = "--section=data";
    } else if (part == PGR_REST) {
        argv[n++] = "--format=custom";
        argv[n++] = "--section=data";
        argv[n++] = "--use-list";
        argv[n++] = rest_list;
    } else {
        argv[n++] = jobs;
        if (part == PGR_POST)
            argv[n++] = "--section=post-data";
    }
    if (o->schema_only)
        argv[n++] = "--schema-only";
    if (o->data_only)
        argv[n++] = "--data-only";
    if (o->no_owner)
        argv[n++] = "--no-owner";
    for (size_t i = 0; i < o->nschemas && rc == 0; i++)
        rc = add_arg(argv, &n, owned, &no, "--schema=", o->schemas[i]);
    for (size_t i = 0; i < o->ntables && rc == 0; i++)
        rc = add_arg(argv, &n, owned, &no, "--table=", o->tables[i]);
    if (rc == 0 && o->role != NULL && o->role[0] != '\0')
        rc = add_arg(argv, &n, owned, &no, "--role=", o->role);
    if (rc != 0) {
        rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
        goto out;
    }
    char fifo[4200];
    snprintf(fifo, sizeof(fifo), "%s/" FEED_FIFO, c->spool);
    argv[n++] = part == PGR_FEED ? fifo : c->dump_path;
    argv[n] = NULL;
    if (part == PGR_FEED || part == PGR_PRE) {
        log_info("restore %s: %s (%s) %s into %s, %s", o->id, bin.path, bin.version,
                 part == PGR_FEED ? "pre-data and data" : "pre-data", c->tmp,
                 part == PGR_FEED ? "fed as the archive is unpacked"
                                  : "while the data is still arriving");
        spawn_opts so = {.argv = argv, .envp = child.env, .stdout_mode = SPAWN_OUT_NULL};
        rc = spawn_start(&c->feed, &so, e);
        goto out;
    }
    if (part == PGR_REST || part == PGR_PRE_DATA)
        log_info("restore %s: %s (%s) %s into %s", o->id, bin.path, bin.version,
                 part == PGR_REST ? "the data the loader left (sequences, large objects)"
                                  : "pre-data and data",
                 c->tmp);
    else
        log_info("restore %s: %s (%s) -j %d%s into %s", o->id, bin.path, bin.version, o->jobs,
                 part == PGR_POST ? " post-data" : "", c->tmp);
    if ((rc = run_child(c, argv, child.env, "pg_restore", e)) != 0)
        goto out;
    if (o->data_only && part == PGR_ALL) {
        const char *pargv[] = {bin.path,
                               "--dbname",
                               child.dbname_arg,
                               "--no-password",
                               "--exit-on-error",
                               "--section=post-data",
                               jobs,
                               schema_file,
                               NULL};
        rc =
            run_child(c, pargv, child.env, "pg_restore of the target's indexes and constraints", e);
    }
out:
    for (size_t i = 0; i < no; i++)
        free(owned[i]);
    free(owned);
    free(argv);
    pgconn_child_free(&child);
    pgconn_child_free(&tchild);
    return rc;
}

static int do_sanitize(restore_ctx *c, pgs_error *e)
{
    int rc = open_db(c, e);
    if (rc != 0 || (rc = pq_exec(c, c->db, "sanitize.sql", "BEGIN", 0, NULL, NULL, e)) != 0)
        return rc;
    script_error se;
    rc = run_script(c, c->db, "sanitize.sql", c->o->sanitize_sql, NULL, &se, e);
    if (rc == PGS_EINVAL || (rc == PGS_EIO && se.stmt > 0)) {
        json_t *j = json_pack("{s:i, s:i}", "line", se.line, "statement", se.stmt);
        json_object_set_new(j, "message", json_cut(se.msg, sizeof(se.msg)));
        json_object_set_new(c->report, "sanitize_error", j);
    }
    if (rc != 0) {
        /* Nothing to keep: the temporary database is dropped on the way out. */
        close_db(c);
        return rc;
    }
    /* A script that ended our transaction itself (COMMIT in it) has nothing left to commit. */
    if (PQtransactionStatus(c->db) == PQTRANS_INTRANS)
        rc = pq_exec(c, c->db, "sanitize.sql: COMMIT", "COMMIT", 0, NULL, NULL, e);
    else if (PQtransactionStatus(c->db) == PQTRANS_INERROR)
        rc = pgs_fail(e, PGS_EINVAL, "sanitize.sql left its transaction failed");
    return rc;
}

static void on_check_row(restore_ctx *c, int stmt, const PGresult *row)
{
    json_t *fails = json_object_get(c->report, "check_failures");
    json_t *total = json_object_get(c->report, "check_failures_total");
    json_int_t t = json_integer_value(total) + 1;
    json_object_set_new(c->report, "check_failures_total", json_integer(t));
    if (json_array_size(fails) >= CHECK_ROWS_MAX)
        return;
    int ncol = PQnfields(row);
    json_t *cols = json_array(), *vals = json_array();
    for (int i = 0; i < ncol && i < CHECK_COLUMNS_MAX; i++) {
        json_array_append_new(cols, json_cut(PQfname(row, i), CHECK_VALUE_MAX));
        json_array_append_new(vals, PQgetisnull(row, 0, i)
                                        ? json_null()
                                        : json_cut(PQgetvalue(row, 0, i), CHECK_VALUE_MAX));
    }
    json_t *f = json_pack("{s:i, s:i}", "query", stmt, "line", stmt_line(c->o->check_sql, stmt));
    json_object_set_new(f, "columns", cols);
    json_object_set_new(f, "row", vals);
    json_array_append_new(fails, f);
}

static int do_check(restore_ctx *c, pgs_error *e)
{
    int rc = open_db(c, e);
    /* The checks look; they must not change what is about to be swapped in. */
    if (rc != 0 ||
        (rc = pq_exec(c, c->db, "check.sql", "BEGIN TRANSACTION READ ONLY", 0, NULL, NULL, e)) != 0)
        return rc;
    script_error se;
    rc = run_script(c, c->db, "check.sql", c->o->check_sql, on_check_row, &se, e);
    if (rc == PGS_EINVAL || (rc == PGS_EIO && se.stmt > 0)) {
        json_t *j = json_pack("{s:i, s:i}", "line", se.line, "statement", se.stmt);
        json_object_set_new(j, "message", json_cut(se.msg, sizeof(se.msg)));
        json_object_set_new(c->report, "check_error", j);
    }
    if (PQstatus(c->db) == CONNECTION_OK) {
        pgs_error ignore;
        c->no_cancel++;
        pq_exec(c, c->db, "check.sql: ROLLBACK", "ROLLBACK", 0, NULL, NULL, &ignore);
        c->no_cancel--;
    }
    if (rc != 0)
        return rc;
    json_int_t total = json_integer_value(json_object_get(c->report, "check_failures_total"));
    if (total > 0) {
        json_t *first = json_array_get(json_object_get(c->report, "check_failures"), 0);
        return pgs_fail(e, PGS_EINVAL,
                        "check.sql: %lld row%s returned, each a failure (the first by query %d at "
                        "line %d)",
                        (long long)total, total == 1 ? "" : "s",
                        (int)json_integer_value(json_object_get(first, "query")),
                        (int)json_integer_value(json_object_get(first, "line")));
    }
    return 0;
}

/* One table of the analyze step: its ANALYZE (and count) and what came back. */
typedef struct table_work {
    const char *schema, *name;
    int count; /* an ordinary table or partition: counted and reported */
    char *sql; /* "ANALYZE s.t; SELECT count(*) FROM ONLY s.t" */
    json_int_t rows;
} table_work;

/* Reads what a connection has; returns 1 when its query is over, 0 while it runs, and records
 * the first failure in *rc/e. */
static int collect(restore_ctx *c, PGconn *conn, table_work *w, int *rc, pgs_error *e)
{
    if (!PQconsumeInput(conn) && *rc == 0) {
        char msg[400];
        pgconn_error_line(conn, msg, sizeof(msg));
        *rc = pgs_fail(e, PGS_EIO, "ANALYZE of %s.%s: %s", w->schema, w->name, msg);
    }
    while (!PQisBusy(conn)) {
        PGresult *r = PQgetResult(conn);
        if (r == NULL)
            return 1;
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_TUPLES_OK && PQntuples(r) == 1) {
            w->rows = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        } else if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && *rc == 0) {
            char msg[450];
            result_message(conn, r, msg, sizeof(msg));
            *rc = sig_stop_requested()
                      ? fail_stop(e)
                      : pgs_fail(e, PGS_EINVAL, "ANALYZE of %s.%s: %s", w->schema, w->name, msg);
        }
        PQclear(r);
        if (PQstatus(conn) != CONNECTION_OK)
            return 1;
    }
    (void)c;
    return 0;
}

/*
 * ANALYZE and an exact count(*) of every user table. ANALYZE of a text-heavy table is CPU-bound
 * (the sampled values are sorted for its histograms), so the tables are spread over as many
 * connections as pg_restore had jobs.
 */
static int do_analyze(restore_ctx *c, pgs_error *e)
{
    int rc = open_db(c, e);
    if (rc != 0)
        return rc;
    PGresult *r = NULL;
    /* Partitioned tables and materialized views are analyzed too (as a database-wide ANALYZE
     * would); rows are counted in the tables that hold them. */
    rc = pq_exec(c, c->db, "listing the tables",
                 "SELECT n.nspname, c.relname, c.relkind = 'r' FROM pg_class c "
                 "JOIN pg_namespace n ON n.oid = c.relnamespace "
                 "WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname <> 'information_schema' "
                 "AND n.nspname !~ '^pg_' "
                 "ORDER BY n.nspname COLLATE \"C\", c.relname COLLATE \"C\"",
                 0, NULL, &r, e);
    if (rc != 0)
        return rc;
    int nt = PQntuples(r), k = c->o->jobs < nt ? c->o->jobs : nt;
    table_work *w = calloc((size_t)nt + 1, sizeof(*w));
    PGconn **conns = calloc((size_t)k + 1, sizeof(*conns));
    int *busy = calloc((size_t)k + 1, sizeof(int));
    struct pollfd *pfd = calloc((size_t)k + 1, sizeof(*pfd));
    if (w == NULL || conns == NULL || busy == NULL || pfd == NULL) {
        rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < nt && rc == 0; i++) {
        w[i].schema = PQgetvalue(r, i, 0);
        w[i].name = PQgetvalue(r, i, 1);
        w[i].count = strcmp(PQgetvalue(r, i, 2), "t") == 0;
        char *sq = ident(c->db, w[i].schema), *nq = ident(c->db, w[i].name);
        size_t len = (sq ? strlen(sq) : 0) + (nq ? strlen(nq) : 0);
        if (sq != NULL && nq != NULL && (w[i].sql = malloc(2 * len + 64)) != NULL) {
            if (w[i].count)
                sprintf(w[i].sql, "ANALYZE %s.%s; SELECT count(*) FROM ONLY %s.%s", sq, nq, sq, nq);
            else
                sprintf(w[i].sql, "ANALYZE %s.%s", sq, nq);
        }
        PQfreemem(sq);
        PQfreemem(nq);
        if (w[i].sql == NULL)
            rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
    }
    conns[0] = c->db;
    for (int j = 1; j < k && rc == 0; j++)
        if ((conns[j] = pgconn_connect(c->o->conninfo, c->tmp, e)) == NULL)
            rc = e->code;
    for (int j = 0; j < k; j++)
        busy[j] = -1;
    int next = 0, running = 0, cancelled = 0;
    for (;;) {
        for (int j = 0; j < k && rc == 0 && next < nt; j++) {
            if (busy[j] >= 0)
                continue;
            if (!PQsendQuery(conns[j], w[next].sql)) {
                char msg[400];
                pgconn_error_line(conns[j], msg, sizeof(msg));
                rc =
                    pgs_fail(e, PGS_EIO, "ANALYZE of %s.%s: %s", w[next].schema, w[next].name, msg);
                break;
            }
            busy[j] = next++;
            running++;
        }
        if (running == 0)
            break;
        int np = 0;
        for (int j = 0; j < k; j++)
            if (busy[j] >= 0)
                pfd[np++] = (struct pollfd){.fd = PQsocket(conns[j]), .events = POLLIN};
        if (poll(pfd, (nfds_t)np, QUERY_POLL_MS) < 0 && errno != EINTR && rc == 0)
            rc = pgs_fail(e, PGS_EIO, "waiting for ANALYZE: %s", strerror(errno));
        if (!cancelled && (stopped(c) || rc != 0)) {
            /* Stop: or another table failed; the rest need not finish. */
            for (int j = 0; j < k; j++) {
                PGcancel *kc = busy[j] >= 0 ? PQgetCancel(conns[j]) : NULL;
                char buf[256];
                if (kc != NULL) {
                    PQcancel(kc, buf, sizeof(buf));
                    PQfreeCancel(kc);
                }
            }
            cancelled = 1;
            if (rc == 0)
                rc = fail_stop(e);
        }
        for (int j = 0; j < k; j++) {
            if (busy[j] < 0)
                continue;
            if (collect(c, conns[j], &w[busy[j]], &rc, e)) {
                busy[j] = -1;
                running--;
            }
        }
    }
    if (rc != 0)
        goto out;
    json_t *tables = json_object_get(c->report, "tables");
    json_int_t rows_total = 0, counted = 0;
    for (int i = 0; i < nt; i++) {
        if (!w[i].count)
            continue;
        rows_total += w[i].rows;
        if (counted++ < TABLES_MAX) {
            json_t *t = json_object();
            json_object_set_new(t, "schema", json_cut(w[i].schema, 256));
            json_object_set_new(t, "name", json_cut(w[i].name, 256));
            json_object_set_new(t, "rows", json_integer(w[i].rows));
            json_array_append_new(tables, t);
        }
    }
    json_object_set_new(c->report, "tables_total", json_integer(counted));
    json_object_set_new(c->report, "rows_total", json_integer(rows_total));
out:
    for (int j = 1; conns != NULL && j < k; j++)
        PQfinish(conns[j]);
    for (int i = 0; w != NULL && i < nt; i++)
        free(w[i].sql);
    free(w);
    free(conns);
    free(busy);
    free(pfd);
    PQclear(r);
    if (rc != 0)
        close_db(c); /* it may be mid-query; the undo path opens what it needs */
    return rc;
}

/* Ends every session on the target (and on the temporary database: ALTER DATABASE RENAME needs
 * both free) and waits until none remains. */
static int end_connections(restore_ctx *c, pgs_error *e)
{
    const char *params[] = {c->dbname, c->tmp};
    double t0 = progress_now();
    for (;;) {
        PGresult *r = NULL;
        int rc = pq_exec(c, c->admin, "ending the connections to the target",
                         "SELECT count(*) FILTER (WHERE NOT pg_terminate_backend(pid)), count(*) "
                         "FROM pg_stat_activity WHERE datname IN ($1, $2) "
                         "AND pid <> pg_backend_pid()",
                         2, params, &r, e);
        if (rc != 0)
            return rc;
        long refused = strtol(PQgetvalue(r, 0, 0), NULL, 10);
        long left = strtol(PQgetvalue(r, 0, 1), NULL, 10);
        PQclear(r);
        if (left == 0)
            return 0;
        if ((progress_now() - t0) * 1000 > SWAP_WAIT_MS)
            return pgs_fail(e, PGS_EIO, "%ld connection%s to %s did not end within %d s%s", left,
                            left == 1 ? "" : "s", c->dbname, SWAP_WAIT_MS / 1000,
                            refused ? " (some could not be terminated)" : "");
        if (sig_stop_requested())
            return fail_stop(e);
        usleep(100 * 1000);
    }
}

static int do_swap(restore_ctx *c, pgs_error *e)
{
    close_db(c);
    if (admin_conn(c, e) == NULL)
        return e->code;
    int rc = read_target(c, e);
    if (rc != 0)
        return rc;
    char *tq = ident(c->admin, c->dbname), *mq = ident(c->admin, c->tmp), *oq = NULL;
    char sql[512];
    if (tq == NULL || mq == NULL) {
        rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
        goto out;
    }
    if (c->target_exists) {
        char stamp[32];
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
        if (db_name(c->old, c->dbname, RESTORE_OLD_MARK, stamp) != 0 ||
            (oq = ident(c->admin, c->old)) == NULL) {
            rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
            goto out;
        }
        if (c->target_allowconn) {
            snprintf(sql, sizeof(sql), "ALTER DATABASE %s ALLOW_CONNECTIONS false", tq);
            /* Set before it runs: if the answer is lost, the undo path re-allows anyway. */
            c->closed_target = 1;
            if ((rc = pq_exec(c, c->admin, "closing the target to new connections", sql, 0, NULL,
                              NULL, e)) != 0)
                goto out;
        }
    }
    if ((rc = end_connections(c, e)) != 0)
        goto out;
    if ((rc = pq_exec(c, c->admin, "swap: BEGIN", "BEGIN", 0, NULL, NULL, e)) != 0)
        goto out;
    if (c->target_exists) {
        snprintf(sql, sizeof(sql), "ALTER DATABASE %s RENAME TO %s", tq, oq);
        rc = pq_exec(c, c->admin, "swap: renaming the target", sql, 0, NULL, NULL, e);
    }
    if (rc == 0) {
        snprintf(sql, sizeof(sql), "ALTER DATABASE %s RENAME TO %s", mq, tq);
        rc = pq_exec(c, c->admin, "swap: renaming the temporary database", sql, 0, NULL, NULL, e);
    }
    /* The commit is the swap: no cancel from here on, one way or the other it completes. */
    c->no_cancel++;
    if (rc == 0)
        rc = pq_exec(c, c->admin, "swap: COMMIT", "COMMIT", 0, NULL, NULL, e);
    c->no_cancel--;
    if (rc != 0) {
        pgs_error ignore;
        c->no_cancel++;
        if (PQstatus(c->admin) == CONNECTION_OK)
            pq_exec(c, c->admin, "swap: ROLLBACK", "ROLLBACK", 0, NULL, NULL, &ignore);
        c->no_cancel--;
        goto out;
    }
    c->swapped = 1;
    log_info("restore %s: swapped: %s is the restored database%s%s", c->o->id, c->dbname,
             c->target_exists ? ", the previous one is " : "", c->target_exists ? c->old : "");
    if (!c->target_exists)
        goto out;
    /* After the swap nothing fails the restore: the new database is in place. */
    pgs_error we = {0};
    c->no_cancel++;
    if (!c->o->keep_old) {
        snprintf(sql, sizeof(sql), "DROP DATABASE %s", oq);
        if (pq_exec(c, c->admin, "dropping the previous database", sql, 0, NULL, NULL, &we) == 0) {
            c->old[0] = '\0';
        } else {
            warn(c, "%s; it is kept as %s", we.msg, c->old);
        }
    }
    if (c->old[0] != '\0') {
        snprintf(sql, sizeof(sql), "ALTER DATABASE %s ALLOW_CONNECTIONS true", oq);
        if (c->target_allowconn &&
            pq_exec(c, c->admin, "re-allowing connections to the previous database", sql, 0, NULL,
                    NULL, &we) != 0)
            warn(c, "%s", we.msg);
        json_object_set_new(c->report, "old_database", json_string(c->old));
    }
    c->no_cancel--;
out:
    PQfreemem(tq);
    PQfreemem(mq);
    PQfreemem(oq);
    return rc;
}

static int do_redump(restore_ctx *c, pgs_error *e)
{
    close_db(c);
    dump_opts *d = c->o->redump;
    char *ci = pgconn_with_dbname(c->o->conninfo, c->tmp);
    if (ci == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    d->conninfo = ci;
    if (d->sink != NULL)
        d->output = NULL;
    dump_result res;
    memset(&res, 0, sizeof(res));
    int rc = dump_run(d, &res, e);
    d->conninfo = NULL;
    pgconn_secret_free(ci);
    if (rc != 0)
        return pgs_wrap(e, "dumping the sanitized database");
    char hex[SHA256_HEX_LEN + 1];
    hex_encode(res.sha256, SHA256_LEN, hex);
    json_t *j = json_pack("{s:I, s:I, s:s}", "bytes", (json_int_t)res.dump_bytes, "archive_bytes",
                          (json_int_t)res.archive_bytes, "sha256", hex);
    json_t *man = res.manifest_json ? json_loads(res.manifest_json, 0, NULL) : NULL;
    json_object_set_new(j, "manifest", man ? man : json_object());
    json_object_set_new(c->report, "dump", j);
    free(res.manifest_json);
    return 0;
}

/* Drops the temporary (or scratch) database we created, ending its sessions first (c->admin is
 * connected). */
static int drop_tmp(restore_ctx *c, pgs_error *e)
{
    char *mq = ident(c->admin, c->tmp);
    char sql[256];
    if (c->server_num >= 130000 || c->server_num == 0)
        snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", mq ? mq : "\"\"");
    else
        snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s", mq ? mq : "\"\"");
    PQfreemem(mq);
    if (c->server_num < 130000) {
        const char *params[] = {c->tmp};
        pq_exec(c, c->admin, "ending the connections to the temporary database",
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", 1,
                params, NULL, &(pgs_error){0});
    }
    int rc = pq_exec(c, c->admin,
                     c->o->scratch ? "dropping the scratch database"
                                   : "dropping the temporary database",
                     sql, 0, NULL, NULL, e);
    if (rc == 0) {
        c->created_tmp = 0;
        c->dropped_tmp = 1;
    }
    return rc;
}

/* The undo path: whatever a failure (or the sanitize mode) leaves to take back. Never cancelled. */
static void undo(restore_ctx *c)
{
    c->no_cancel++;
    close_db(c);
    pgs_error e = {0};
    if ((c->closed_target || (c->created_tmp && !c->swapped)) && admin_conn(c, &e) == NULL) {
        warn(c, "cannot undo: %s; the agent's next start finishes it", e.msg);
        c->no_cancel--;
        return;
    }
    if (c->closed_target && !c->swapped) {
        char *tq = ident(c->admin, c->dbname);
        char sql[256];
        snprintf(sql, sizeof(sql), "ALTER DATABASE %s ALLOW_CONNECTIONS true", tq ? tq : "\"\"");
        PQfreemem(tq);
        if (pq_exec(c, c->admin, "re-allowing connections to the target", sql, 0, NULL, NULL, &e) !=
            0)
            warn(c, "%s", e.msg);
    }
    if (c->created_tmp && !c->swapped) {
        if (drop_tmp(c, &e) != 0)
            warn(c, "%s; the agent's next start drops it", e.msg);
        else
            log_info("restore %s: dropped the %s database %s", c->o->id,
                     c->o->scratch ? "scratch" : "temporary", c->tmp);
    }
    c->no_cancel--;
}

/* verify --restore-test's last step: the scratch database goes, its connections ended. */
static int do_drop_scratch(restore_ctx *c, pgs_error *e)
{
    close_db(c);
    c->no_cancel++; /* a stop must not leave the scratch database behind */
    int rc = admin_conn(c, e) == NULL ? e->code : drop_tmp(c, e);
    c->no_cancel--;
    if (rc == 0)
        log_info("restore %s: dropped the scratch database %s", c->o->id, c->tmp);
    return rc;
}

static int validate(const restore_opts *o, pgs_error *e)
{
    if (o->id == NULL || o->id[0] == '\0' || strlen(o->id) > 32)
        return pgs_fail(e, PGS_EINVAL, "the restore id must be 1 to 32 characters");
    for (const char *p = o->id; *p; p++)
        if (!ident_char((unsigned char)*p) && *p != '-')
            return pgs_fail(e, PGS_EINVAL, "the restore id may hold only letters, digits, _ and -");
    if (o->conninfo == NULL || o->src == NULL)
        return pgs_fail(e, PGS_EINVAL, "a conninfo and a source are required");
    if (o->jobs < 1 || o->jobs > 64)
        return pgs_fail(e, PGS_EINVAL, "jobs must be between 1 and 64");
    if (o->schema_only && o->data_only)
        return pgs_fail(e, PGS_EINVAL, "schema_only and data_only exclude each other");
    if (o->scratch != NULL && !wire_scratch_name_valid(o->scratch))
        return pgs_fail(e, PGS_EINVAL, "a scratch database is named %s and 8 lowercase hex digits",
                        WIRE_SCRATCH_PREFIX);
    if (o->scratch != NULL &&
        (o->redump != NULL || o->sanitize_sql != NULL || o->check_sql != NULL))
        return pgs_fail(e, PGS_EINVAL, "a restore test into a scratch database only restores");
    return 0;
}

int restore_run(const restore_opts *o, json_t **report, char failed_step[32], pgs_error *e)
{
    restore_ctx cx;
    restore_ctx *c = &cx;
    memset(c, 0, sizeof(*c));
    c->o = o;
    c->e = e;
    c->spool_fd = -1;
    c->feed_fd = -1;
    if (failed_step != NULL)
        failed_step[0] = '\0';
    c->report = json_object();
    c->steps = json_array();
    json_object_set_new(c->report, "target", json_string(o->target ? o->target : ""));
    json_object_set_new(c->report, "temp_database", json_null());
    json_object_set_new(c->report, "old_database", json_null());
    json_object_set_new(c->report, "profile", o->profile ? json_string(o->profile) : json_null());
    json_object_set_new(c->report, "source", json_null());
    json_object_set(c->report, "steps", c->steps);
    json_object_set_new(c->report, "tables", json_array());
    json_object_set_new(c->report, "check_failures", json_array());
    json_object_set_new(c->report, "check_failures_total", json_integer(0));

    int rc = validate(o, e);
    if (rc == 0)
        rc = pgconn_dbname(o->conninfo, c->dbname, sizeof(c->dbname), e);
    if (rc == 0 && o->scratch != NULL)
        snprintf(c->tmp, sizeof(c->tmp), "%s", o->scratch);
    else if (rc == 0 && db_name(c->tmp, c->dbname, RESTORE_TMP_MARK, o->id) != 0)
        rc = pgs_fail(e, PGS_EINVAL, "the restore id is too long for a database name");
    if (rc == 0 && o->scratch != NULL && strcmp(c->dbname, o->scratch) == 0)
        rc = pgs_fail(e, PGS_EINVAL, "the scratch database cannot be the database %s itself",
                      c->dbname);
    /* restore_cleanup drops what carries the mark: never let a target carry it. */
    if (rc == 0 && (strstr(c->dbname, RESTORE_TMP_MARK) || strstr(c->dbname, RESTORE_OLD_MARK)))
        rc = pgs_fail(e, PGS_EINVAL,
                      "database %s carries pgship's %s or %s mark; restore into "
                      "another name",
                      c->dbname, RESTORE_TMP_MARK, RESTORE_OLD_MARK);
    if (rc != 0)
        goto out;
    if (o->target == NULL)
        json_object_set_new(c->report, "target", json_string(c->dbname));
    json_object_set_new(c->report, "temp_database", json_string(c->tmp));
    if (o->scratch != NULL)
        json_object_set_new(c->report, "scratch_database", json_string(c->tmp));

#define STEP(name, detail, call)                                                                   \
    do {                                                                                           \
        if ((rc = step_begin(c, name, detail)) == 0)                                               \
            rc = call;                                                                             \
        step_end(c, rc == 0);                                                                      \
        if (rc != 0)                                                                               \
            goto out;                                                                              \
    } while (0)

    char jobs[32];
    snprintf(jobs, sizeof(jobs), "jobs %d", o->jobs);
    STEP("unpack", "", do_unpack(c, e));
    if (!c->streamed) {
        STEP("create", c->tmp, do_create(c, e));
        STEP("pg_restore", jobs, do_pg_restore(c, PGR_ALL, e));
    }
    if (o->sanitize_sql != NULL)
        STEP("sanitize", o->profile ? o->profile : "", do_sanitize(c, e));
    if (o->check_sql != NULL)
        STEP("check", o->profile ? o->profile : "", do_check(c, e));
    STEP("analyze", "", do_analyze(c, e));
    if (o->scratch != NULL)
        STEP("drop", c->tmp, do_drop_scratch(c, e));
    else if (o->redump != NULL)
        STEP("dump", "", do_redump(c, e));
    else
        STEP("swap", c->dbname, do_swap(c, e));
#undef STEP
    c->step[0] = '\0';
out:
    if (rc != 0 && sig_stop_requested() && rc != PGS_EINTR) {
        /* A stop we were asked for explains whatever failed after it (pg_restore killed). */
        char was[sizeof(e->msg)];
        snprintf(was, sizeof(was), "%s", e->msg);
        rc = pgs_fail(e, PGS_EINTR, "interrupted by signal %d (%s)", sig_stop_requested(), was);
    }
    if (rc != 0 && failed_step != NULL)
        snprintf(failed_step, 32, "%s", c->step);
    if (rc != 0)
        log_info("restore %s: %s failed: %s", o->id, c->step[0] ? c->step : "restore", e->msg);
    loader_free(c->ld); /* its sessions end before the undo drops their database */
    c->ld = NULL;
    int made_tmp = c->created_tmp || c->dropped_tmp;
    undo(c);
    if (o->scratch != NULL)
        json_object_set_new(c->report, "scratch_dropped",
                            made_tmp ? json_boolean(c->dropped_tmp) : json_null());
    PQfinish(c->admin);
    if (c->spool[0] != '\0' && fs_rm_rf(c->spool) != 0)
        log_warn("restore %s: could not remove the spool directory %s: %s", o->id, c->spool,
                 strerror(errno));
    if (c->spool_fd >= 0)
        close(c->spool_fd);
    extract_info_clear(&c->info);
    json_decref(c->steps);
    json_decref(c->warnings);
    if (rc != 0)
        json_object_set_new(c->report, "error", json_string(e->msg));
    if (report != NULL)
        *report = c->report;
    else
        json_decref(c->report);
    return rc;
}

/* ---- verification without a restore ---- */

/* The archive behind c->o->src read to its verified end and thrown away. */
static int verify_archive(restore_ctx *c, pgs_error *e)
{
    envelope_reader *env = NULL;
    int rc = envelope_reader_new(&env, c->o->src, c->o->src_arg);
    if (rc != 0)
        return pgs_fail(e, rc, "out of memory");
    if ((rc = envelope_reader_read_header(env, e)) != 0)
        goto out;
    if (c->o->nkeys == 0 ||
        (rc = envelope_reader_unlock(env, c->o->keys, c->o->nkeys, e)) == PGS_ENOKEY) {
        rc = no_key_error(c, env, e);
        goto out;
    }
    if (rc != 0)
        goto out;
    /* No directory: every member is hashed and compared with SHA256SUMS, nothing is written. */
    if ((rc = extract_archive(env, NULL, 0, &c->info, e)) != 0)
        goto out;
    json_t *src = json_object();
    json_object_set_new(src, "manifest",
                        c->info.manifest_json ? json_incref(c->info.manifest_json) : json_object());
    json_object_set_new(c->report, "source", src);
    json_object_set_new(c->report, "archive", archive_json(env, &c->info));
    char b[32];
    log_info("verify %s: %s checked (%s format, %" PRIu64 " chunks, %" PRIu64 " members, %s of "
             "dump, every checksum verified)",
             c->o->id, c->info.man.database, c->info.man.format, envelope_reader_chunks(env),
             c->info.members, fs_human_bytes(c->info.dump_bytes, b, sizeof(b)));
out:
    envelope_reader_free(env);
    if (rc != 0 && rc != PGS_ENOKEY && rc != PGS_EINTR)
        pgs_wrap(e, "reading the archive");
    return rc;
}

int restore_verify(const restore_opts *o, json_t **report, char failed_step[32], pgs_error *e)
{
    restore_ctx cx;
    restore_ctx *c = &cx;
    memset(c, 0, sizeof(*c));
    c->o = o;
    c->e = e;
    c->spool_fd = -1;
    c->feed_fd = -1;
    if (failed_step != NULL)
        failed_step[0] = '\0';
    c->report = json_object();
    c->steps = json_array();
    json_object_set_new(c->report, "source", json_null());
    json_object_set(c->report, "steps", c->steps);
    json_object_set_new(c->report, "archive", json_null());
    int rc = 0;
    if (o->id == NULL || o->id[0] == '\0' || o->src == NULL)
        rc = pgs_fail(e, PGS_EINVAL, "a verification needs an id and a source");
    else {
        if ((rc = step_begin(c, "verify", "every chunk and checksum")) == 0)
            rc = verify_archive(c, e);
        step_end(c, rc == 0);
    }
    if (rc != 0 && sig_stop_requested() && rc != PGS_EINTR) {
        char was[sizeof(e->msg)];
        snprintf(was, sizeof(was), "%s", e->msg);
        rc = pgs_fail(e, PGS_EINTR, "interrupted by signal %d (%s)", sig_stop_requested(), was);
    }
    if (rc != 0) {
        if (failed_step != NULL)
            snprintf(failed_step, 32, "%s", c->step);
        log_info("verify %s: %s failed: %s", o->id ? o->id : "?",
                 c->step[0] ? c->step : "verify", e->msg);
        json_object_set_new(c->report, "error", json_string(e->msg));
    }
    extract_info_clear(&c->info);
    json_decref(c->steps);
    if (report != NULL)
        *report = c->report;
    else
        json_decref(c->report);
    return rc;
}

/* ---- after a crash ---- */

int restore_cleanup(const char *conninfo, pgs_error *e)
{
    PGconn *conn = pgconn_connect_maintenance(conninfo, e);
    if (conn == NULL)
        return e ? e->code : PGS_EIO;
    restore_ctx cx;
    memset(&cx, 0, sizeof(cx));
    restore_opts none = {.id = "cleanup"};
    cx.o = &none;
    cx.no_cancel = 1;
    cx.admin = conn;
    int dropped = 0, rc = 0;
    PGresult *r = NULL;
    rc = pq_exec(&cx, conn, "listing databases",
                 "SELECT datname, datallowconn FROM pg_database ORDER BY 1", 0, NULL, &r, e);
    if (rc != 0)
        goto out;
    int n = PQntuples(r);
    for (int i = 0; i < n; i++) {
        const char *name = PQgetvalue(r, i, 0);
        const char *mark = strstr(name, RESTORE_TMP_MARK);
        if (mark == NULL && !wire_scratch_name_valid(name))
            continue;
        const char *id = mark != NULL ? mark + strlen(RESTORE_TMP_MARK) : "";
        /* A target a crash left closed: the one whose name, cut the same way, made this one (a
         * verification's scratch database replaces nothing). */
        for (int j = 0; mark != NULL && j < n; j++) {
            const char *t = PQgetvalue(r, j, 0);
            char expect[DBNAME_MAX + 1];
            if (strcmp(PQgetvalue(r, j, 1), "f") != 0 || strstr(t, RESTORE_TMP_MARK) != NULL ||
                db_name(expect, t, RESTORE_TMP_MARK, id) != 0 || strcmp(expect, name) != 0)
                continue;
            pgs_error ae = {0};
            if (pq_exec_ident(&cx, conn, "re-allowing connections",
                              "ALTER DATABASE %s ALLOW_CONNECTIONS true", t, &ae) == 0)
                log_warn("re-allowed connections to database %s, closed by a restore that did "
                         "not finish",
                         t);
            else
                log_warn("database %s: %s", t, ae.msg);
        }
        pgs_error de = {0};
        const char *params[] = {name};
        pq_exec(&cx, conn, "ending connections",
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", 1,
                params, NULL, &de);
        if (pq_exec_ident(&cx, conn, "dropping a temporary database",
                          PQserverVersion(conn) >= 130000 ? "DROP DATABASE %s WITH (FORCE)"
                                                          : "DROP DATABASE %s",
                          name, &de) == 0) {
            log_warn("dropped database %s, left by a restore that did not finish", name);
            dropped++;
        } else {
            log_warn("could not drop database %s, left by a restore that did not finish: %s", name,
                     de.msg);
        }
    }
    for (int i = 0; i < n; i++)
        if (strstr(PQgetvalue(r, i, 0), RESTORE_OLD_MARK) != NULL &&
            strcmp(PQgetvalue(r, i, 1), "f") == 0)
            log_warn("database %s is a previous database an interrupted swap left closed to "
                     "connections; drop it, or ALTER DATABASE ... ALLOW_CONNECTIONS true to keep "
                     "it",
                     PQgetvalue(r, i, 0));
out:
    PQclear(r);
    PQfinish(conn);
    return rc != 0 ? rc : dropped;
}

int restore_spool_cleanup(const char *spool_dir)
{
    const char *base = spool_dir && spool_dir[0] ? spool_dir : getenv("TMPDIR");
    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    DIR *d = opendir(base);
    if (d == NULL)
        return 0;
    int removed = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, SPOOL_PREFIX, strlen(SPOOL_PREFIX)) != 0)
            continue;
        int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            continue;
        /* A live restore holds the lock; a crashed one released it with its process. */
        if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
            char path[4400];
            snprintf(path, sizeof(path), "%s/%s", base, de->d_name);
            if (fs_rm_rf(path) == 0) {
                log_warn("removed the spool directory %s, left by a restore that did not finish",
                         path);
                removed++;
            }
        }
        close(fd);
    }
    closedir(d);
    return removed;
}
