/*
 * The restore's parallel data loader (see loader.h for what and why).
 *
 * Threads: the caller's thread feeds the dump (loader_feed: the block boundaries are found by
 * agent/pgcustom.c and queued), and o->jobs workers each take the next queued block, read it from
 * the spool file with pread and COPY its rows on their own connection. One mutex guards the
 * queue, the count of bytes written, the flags and the first error; one condition variable wakes
 * workers waiting for a block or for bytes, and the caller waiting for the workers to finish.
 */
#include "agent/loader.h"

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/pgconn.h"
#include "agent/pgcustom.h"
#include "common/log.h"
#include "common/spawn.h"
#include "common/timeutil.h"

#define LOADER_BUF (256u * 1024)
#define LOADER_JOBS_MAX 64
#define WAIT_MS 200

typedef struct block {
    int dump_id;
    uint64_t start;
    int64_t rows; /* -1 until loaded */
    int frozen;
    double ms;
} block;

struct loader {
    loader_opts o;
    char *conninfo, *dbname, *path, *role, *id;
    pgc_reader *pgc;
    const pgc_toc *toc;
    int state; /* LOADER_* */
    char why[sizeof(((pgs_error *)0)->msg)];
    char encoding[64];
    unsigned char *loaded; /* by dump id: 1 when queued here */
    size_t loaded_cap;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t written;
    int go, eof, abort, failed, running, started, finished, nthreads;
    pgs_error err;
    block *blocks;
    size_t nblocks, cap, next;
    PGcancel *cancel[LOADER_JOBS_MAX];
    pthread_t th[LOADER_JOBS_MAX];
};

typedef struct worker {
    loader *l;
    int slot;
    PGconn *conn;
    int fd;
    int superuser;
    unsigned char *buf;
    const char *table; /* for errors: "schema.table" of the block being loaded */
} worker;

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* The first error wins; the others are only logged. Called with mu held. */
static void set_failed_locked(loader *l, const pgs_error *e)
{
    if (!l->failed) {
        l->failed = 1;
        l->err = *e;
    }
    l->abort = 1;
    pthread_cond_broadcast(&l->cv);
}

static void set_failed(loader *l, const pgs_error *e)
{
    pthread_mutex_lock(&l->mu);
    set_failed_locked(l, e);
    pthread_mutex_unlock(&l->mu);
}

/* ---- what the dump says ---- */

/* "SET client_encoding = 'UTF8';" -> UTF8 */
static int parse_encoding(const char *defn, char *out, size_t cap)
{
    const char *q = defn ? strchr(defn, '\'') : NULL;
    const char *end = q ? strchr(q + 1, '\'') : NULL;
    if (q == NULL || end == NULL || end - q - 1 <= 0 || (size_t)(end - q - 1) >= cap)
        return -1;
    for (const char *p = q + 1; p < end; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-'))
            return -1;
    snprintf(out, cap, "%.*s", (int)(end - q - 1), q + 1);
    return 0;
}

/* An identifier pg_dump writes without quotes: lowercase letters, digits and underscores, not
 * starting with a digit (it also quotes keywords, which then match the quoted form). */
static int simple_ident(const char *s)
{
    if (*s == '\0' || (*s >= '0' && *s <= '9'))
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    return 1;
}

/* Matches name at p, bare or double-quoted; returns the length matched or 0. */
static size_t match_ident(const char *p, const char *name)
{
    size_t n = strlen(name);
    if (simple_ident(name) && strncmp(p, name, n) == 0)
        return n;
    if (*p != '"')
        return 0;
    const char *q = p + 1;
    for (const char *s = name; *s; s++) {
        if (*q != *s)
            return 0;
        q++;
        if (*s == '"') {
            if (*q != '"')
                return 0;
            q++;
        }
    }
    return *q == '"' ? (size_t)(q + 1 - p) : 0;
}

/* pg_dump's "COPY schema.table (cols) FROM stdin;" must be one COPY ... FROM stdin. Returns its
 * length without the ';' and trailing blanks, or 0 when it is not one we load ourselves; *own
 * says whether it names the entry's own table (not a partition root). */
static size_t copy_stmt_core(const pgc_entry *t, int *own)
{
    const char *s = t->copy_stmt;
    size_t n = s ? strlen(s) : 0;
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\r' || s[n - 1] == '\t'))
        n--;
    static const char tail[] = " FROM stdin;";
    if (n < 5 + sizeof(tail) - 1 || strncmp(s, "COPY ", 5) != 0 ||
        strncmp(s + n - (sizeof(tail) - 1), tail, sizeof(tail) - 1) != 0)
        return 0;
    *own = 0;
    size_t a = match_ident(s + 5, t->nspace);
    if (a > 0 && s[5 + a] == '.') {
        size_t b = match_ident(s + 5 + a + 1, t->tag);
        const char *after = s + 5 + a + 1 + b;
        *own = b > 0 && (strncmp(after, " (", 2) == 0 || strncmp(after, " FROM ", 6) == 0);
    }
    return n - 1;
}

static int loadable(const pgc_entry *t)
{
    int own;
    return t != NULL && strcmp(t->desc, "TABLE DATA") == 0 && copy_stmt_core(t, &own) > 0;
}

/* ---- pgcustom hooks (the caller's thread) ---- */

static int on_toc(void *arg, const pgc_toc *toc, pgs_error *e)
{
    loader *l = arg;
    (void)e;
    l->toc = toc;
    const pgc_entry *enc = NULL;
    size_t tables = 0;
    int max_id = 0;
    for (size_t i = 0; i < toc->nentries; i++) {
        const pgc_entry *t = &toc->entries[i];
        if (strcmp(t->desc, "ENCODING") == 0)
            enc = t;
        if (t->has_data && loadable(t))
            tables++;
        if (t->dump_id > max_id)
            max_id = t->dump_id;
    }
    if (toc->compressed)
        snprintf(l->why, sizeof(l->why), "its table data is compressed inside the dump");
    else if (enc == NULL || parse_encoding(enc->defn, l->encoding, sizeof(l->encoding)) != 0)
        snprintf(l->why, sizeof(l->why), "it names no client encoding");
    else if (tables == 0)
        snprintf(l->why, sizeof(l->why), "it holds no table data");
    else if ((l->loaded = calloc((size_t)max_id + 1, 1)) == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    if (l->why[0] != '\0') {
        l->state = LOADER_DECLINED;
        return 0;
    }
    l->loaded_cap = (size_t)max_id + 1;
    l->state = LOADER_PARALLEL;
    return 0;
}

static int on_block(void *arg, int type, int dump_id, uint64_t start, pgs_error *e)
{
    loader *l = arg;
    if (l->state != LOADER_PARALLEL || type != PGC_BLK_DATA)
        return 0;
    const pgc_entry *t = pgc_toc_find(l->toc, dump_id);
    if (!loadable(t) || (size_t)dump_id >= l->loaded_cap || l->loaded[dump_id])
        return 0; /* pg_restore's part (loader_rest_list) */
    pthread_mutex_lock(&l->mu);
    if (l->nblocks == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        block *nb = realloc(l->blocks, cap * sizeof(*nb));
        if (nb == NULL) {
            pthread_mutex_unlock(&l->mu);
            return pgs_fail(e, PGS_ENOMEM, "out of memory");
        }
        l->blocks = nb;
        l->cap = cap;
    }
    l->blocks[l->nblocks++] = (block){.dump_id = dump_id, .start = start, .rows = -1};
    l->loaded[dump_id] = 1;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    return 0;
}

/* ---- workers ---- */

static int pq_ok(worker *w, PGresult *r, const char *what, pgs_error *e)
{
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_COPY_IN)
        return 0;
    char msg[400];
    const char *m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    if (m != NULL)
        snprintf(msg, sizeof(msg), "%s", m);
    else
        pgconn_error_line(w->conn, msg, sizeof(msg));
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\t')
            *p = ' ';
    int stopped = sig_stop_requested() != 0;
    return pgs_fail(e, stopped ? PGS_EINTR : PGS_EINVAL, "%s%s%s: %s", what, w->table ? " of " : "",
                    w->table ? w->table : "", stopped ? "interrupted" : msg);
}

static int exec(worker *w, const char *sql, const char *what, pgs_error *e)
{
    PGresult *r = PQexec(w->conn, sql);
    int rc = pq_ok(w, r, what, e);
    PQclear(r);
    return rc;
}

static int connect_worker(worker *w, pgs_error *e)
{
    loader *l = w->l;
    w->conn = pgconn_connect(l->conninfo, l->dbname, e);
    if (w->conn == NULL)
        return e->code;
    if (PQsetClientEncoding(w->conn, l->encoding) != 0)
        return pgs_fail(e, PGS_EINVAL, "the server does not know the dump's encoding %s",
                        l->encoding);
    /* What pg_restore sets for its sessions, so that COPY reads the rows the same way. */
    int rc = exec(w,
                  "SET statement_timeout = 0; SET lock_timeout = 0; "
                  "SET idle_in_transaction_session_timeout = 0; SET client_min_messages = warning; "
                  "SET row_security = off; SET xmloption = content; SET synchronous_commit = off; "
                  "SELECT pg_catalog.set_config('search_path', '', false)",
                  "setting up a loading session", e);
    if (rc == 0 && l->role != NULL && l->role[0] != '\0') {
        char *q = PQescapeIdentifier(w->conn, l->role, strlen(l->role));
        char sql[300];
        if (q == NULL || strlen(q) > 250)
            rc = pgs_fail(e, PGS_EINVAL, "cannot quote role %s", l->role);
        else {
            snprintf(sql, sizeof(sql), "SET ROLE %s", q);
            rc = exec(w, sql, "SET ROLE", e);
        }
        PQfreemem(q);
    }
    if (rc != 0)
        return rc;
    /* TRUNCATE needs the table's owner; a superuser is the usual restore user. Without it the
     * rows are loaded all the same, only neither WAL-skipped nor frozen. */
    const char *su = PQparameterStatus(w->conn, "is_superuser");
    w->superuser = su != NULL && strcmp(su, "on") == 0;
    PGcancel *k = PQgetCancel(w->conn);
    pthread_mutex_lock(&l->mu);
    l->cancel[w->slot] = k;
    pthread_mutex_unlock(&l->mu);
    return 0;
}

static int emit_copy(void *arg, const void *data, size_t n, pgs_error *e)
{
    worker *w = arg;
    if (PQputCopyData(w->conn, data, (int)n) != 1) {
        char msg[400];
        pgconn_error_line(w->conn, msg, sizeof(msg));
        return pgs_fail(e, PGS_EIO, "COPY of %s: %s", w->table, msg);
    }
    return 0;
}

/* Waits until bytes past pos are written (or the end, or a stop); returns how many, 0 at a
 * premature end, -1 on abort. */
static int64_t wait_bytes(loader *l, uint64_t pos)
{
    pthread_mutex_lock(&l->mu);
    while (pos >= l->written && !l->eof && !l->abort)
        pthread_cond_wait(&l->cv, &l->mu);
    int64_t n = l->abort ? -1 : (int64_t)(l->written > pos ? l->written - pos : 0);
    pthread_mutex_unlock(&l->mu);
    return n;
}

static int load_block(worker *w, block *b, pgs_error *e)
{
    loader *l = w->l;
    const pgc_entry *t = pgc_toc_find(l->toc, b->dump_id);
    char table[300];
    snprintf(table, sizeof(table), "%s.%s", t->nspace, t->tag);
    w->table = table;
    int own = 0;
    size_t core = copy_stmt_core(t, &own);
    int freeze = own && w->superuser;
    double t0 = (double)time_mono_ms();
    char *sql = malloc(core + 32);
    if (sql == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    snprintf(sql, core + 32, "%.*s%s", (int)core, t->copy_stmt, freeze ? " WITH (FREEZE)" : "");
    int rc = 0;
    if (freeze) {
        char *ns = PQescapeIdentifier(w->conn, t->nspace, strlen(t->nspace));
        char *tg = PQescapeIdentifier(w->conn, t->tag, strlen(t->tag));
        char *tr = ns && tg ? malloc(strlen(ns) + strlen(tg) + 64) : NULL;
        if (tr == NULL)
            rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
        else {
            /* The table was created by this restore's pre-data step: it is empty, and emptying
             * it again in this transaction is what lets COPY skip WAL and freeze the rows. */
            sprintf(tr, "BEGIN; TRUNCATE ONLY %s.%s", ns, tg);
            rc = exec(w, tr, "TRUNCATE", e);
        }
        free(tr);
        PQfreemem(ns);
        PQfreemem(tg);
    }
    if (rc == 0) {
        PGresult *r = PQexec(w->conn, sql);
        if (PQresultStatus(r) != PGRES_COPY_IN)
            rc = pq_ok(w, r, "COPY", e);
        if (rc == 0 && PQresultStatus(r) != PGRES_COPY_IN)
            rc = pgs_fail(e, PGS_EINVAL, "COPY of %s did not start", table);
        PQclear(r);
    }
    free(sql);
    if (rc != 0)
        return rc;
    pgc_payload p;
    pgc_payload_init(&p, l->toc->int_size);
    uint64_t pos = b->start;
    while (rc == 0 && !p.done) {
        int64_t avail = wait_bytes(l, pos);
        if (avail < 0) {
            rc = pgs_fail(e, PGS_EINTR, "loading %s: stopped", table);
            break;
        }
        if (avail == 0) {
            rc = pgs_fail(e, PGS_ETRUNC, "the dump ends inside the data of %s", table);
            break;
        }
        size_t want = avail > (int64_t)LOADER_BUF ? LOADER_BUF : (size_t)avail;
        ssize_t n = pread(w->fd, w->buf, want, (off_t)pos);
        if (n <= 0) {
            rc = pgs_fail(e, PGS_EIO, "reading %s: %s", l->path, n < 0 ? strerror(errno) : "ended");
            break;
        }
        int64_t used = pgc_payload_feed(&p, w->buf, (size_t)n, emit_copy, w, e);
        if (used < 0)
            rc = (int)used;
        else
            pos += (uint64_t)used;
    }
    if (rc != 0) {
        PQputCopyEnd(w->conn, "pgship: restore stopped");
        PGresult *r;
        while ((r = PQgetResult(w->conn)) != NULL)
            PQclear(r);
        return rc;
    }
    if (PQputCopyEnd(w->conn, NULL) != 1)
        return pgs_fail(e, PGS_EIO, "COPY of %s: cannot end it", table);
    PGresult *r, *first = NULL;
    while ((r = PQgetResult(w->conn)) != NULL) {
        if (first == NULL)
            first = r;
        else
            PQclear(r);
    }
    rc = first ? pq_ok(w, first, "COPY", e) : pgs_fail(e, PGS_EIO, "COPY of %s: no result", table);
    if (rc == 0) {
        b->rows = strtoll(PQcmdTuples(first), NULL, 10);
        b->frozen = freeze;
    }
    PQclear(first);
    if (rc == 0 && freeze)
        rc = exec(w, "COMMIT", "COMMIT", e);
    b->ms = (double)time_mono_ms() - t0;
    if (rc == 0)
        log_debug("restore %s: loaded %s: %lld rows in %.0f ms%s", l->id, table,
                  (long long)b->rows, b->ms, freeze ? " (frozen)" : "");
    w->table = NULL;
    return rc;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    loader *l = w->l;
    pgs_error e = {0};
    int rc = 0;
    if ((w->buf = malloc(LOADER_BUF)) == NULL)
        rc = pgs_fail(&e, PGS_ENOMEM, "out of memory");
    else if ((w->fd = open(l->path, O_RDONLY | O_CLOEXEC)) < 0)
        rc = pgs_fail(&e, PGS_EIO, "%s: %s", l->path, strerror(errno));
    else
        rc = connect_worker(w, &e);
    while (rc == 0) {
        pthread_mutex_lock(&l->mu);
        while (l->next >= l->nblocks && !l->eof && !l->abort)
            pthread_cond_wait(&l->cv, &l->mu);
        if (l->abort || l->next >= l->nblocks) {
            pthread_mutex_unlock(&l->mu);
            break;
        }
        size_t i = l->next++;
        block b = l->blocks[i];
        pthread_mutex_unlock(&l->mu);
        rc = load_block(w, &b, &e);
        pthread_mutex_lock(&l->mu);
        l->blocks[i] = b;
        pthread_mutex_unlock(&l->mu);
    }
    pthread_mutex_lock(&l->mu);
    if (rc != 0)
        set_failed_locked(l, &e);
    if (l->cancel[w->slot] != NULL) {
        PQfreeCancel(l->cancel[w->slot]);
        l->cancel[w->slot] = NULL;
    }
    l->running--;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    PQfinish(w->conn);
    if (w->fd >= 0)
        close(w->fd);
    free(w->buf);
    free(w);
    return NULL;
}

/* ---- the API ---- */

int loader_new(loader **out, const loader_opts *o, pgs_error *e)
{
    *out = NULL;
    if (o->jobs < 1 || o->jobs > LOADER_JOBS_MAX || o->path == NULL || o->dbname == NULL)
        return pgs_fail(e, PGS_EINVAL, "loader: bad options");
    loader *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    l->o = *o;
    l->conninfo = dup_or_null(o->conninfo);
    l->dbname = dup_or_null(o->dbname);
    l->path = dup_or_null(o->path);
    l->role = dup_or_null(o->role);
    l->id = dup_or_null(o->id ? o->id : "");
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    pgc_hooks h = {.on_toc = on_toc, .on_block = on_block, .arg = l};
    if (l->dbname == NULL || l->path == NULL || l->id == NULL ||
        (o->conninfo != NULL && l->conninfo == NULL) || (o->role != NULL && l->role == NULL) ||
        pgc_reader_new(&l->pgc, o->toc_max, &h) != 0) {
        loader_free(l);
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    }
    *out = l;
    return 0;
}

int loader_feed(loader *l, const void *buf, size_t len, int *state, pgs_error *e)
{
    if (l->state != LOADER_DECLINED) {
        int rc = pgc_reader_feed(l->pgc, buf, len, e);
        if (rc != 0 && rc != PGS_ENOMEM && l->state == LOADER_UNDECIDED) {
            /* Not a dump we can read ahead of pg_restore: it gets the whole of it. */
            snprintf(l->why, sizeof(l->why), "%s", e->msg);
            l->state = LOADER_DECLINED;
        } else if (rc != 0) {
            pgs_wrap(e, "reading the dump's data blocks");
            set_failed(l, e);
            *state = l->state;
            return rc;
        }
    }
    *state = l->state;
    pthread_mutex_lock(&l->mu);
    l->written += len;
    int failed = l->failed;
    if (failed)
        *e = l->err;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    return failed ? e->code : 0;
}

const char *loader_why(const loader *l)
{
    return l->why;
}

int loader_go(loader *l, pgs_error *e)
{
    if (l->started)
        return 0;
    l->started = 1;
    pthread_mutex_lock(&l->mu);
    l->go = 1;
    pthread_mutex_unlock(&l->mu);
    for (int i = 0; i < l->o.jobs; i++) {
        worker *w = calloc(1, sizeof(*w));
        if (w == NULL)
            return pgs_fail(e, PGS_ENOMEM, "out of memory");
        w->l = l;
        w->slot = i;
        w->fd = -1;
        pthread_mutex_lock(&l->mu);
        l->running++;
        pthread_mutex_unlock(&l->mu);
        if (pthread_create(&l->th[i], NULL, worker_main, w) != 0) {
            pthread_mutex_lock(&l->mu);
            l->running--;
            pthread_mutex_unlock(&l->mu);
            free(w);
            return pgs_fail(e, PGS_ENOMEM, "cannot start a loading thread");
        }
        l->nthreads = i + 1; /* joined by loader_finish */
    }
    log_info("restore %s: loading the table data over %d connections as it arrives", l->id,
             l->o.jobs);
    return 0;
}

static void cancel_all_locked(loader *l)
{
    for (int i = 0; i < LOADER_JOBS_MAX; i++) {
        char buf[256];
        if (l->cancel[i] != NULL)
            PQcancel(l->cancel[i], buf, sizeof(buf));
    }
}

int loader_finish(loader *l, int ok, pgs_error *e)
{
    if (l->finished)
        return l->failed && ok ? pgs_fail(e, l->err.code, "%s", l->err.msg) : 0;
    pthread_mutex_lock(&l->mu);
    l->eof = 1;
    if (!ok)
        l->abort = 1;
    pthread_cond_broadcast(&l->cv);
    int cancelled = 0;
    while (l->running > 0) {
        if (!cancelled && (l->abort || sig_stop_requested())) {
            if (!l->abort && !l->failed) {
                pgs_error st;
                pgs_fail(&st, PGS_EINTR, "interrupted by signal %d", sig_stop_requested());
                set_failed_locked(l, &st);
            }
            l->abort = 1;
            cancel_all_locked(l);
            cancelled = 1;
            pthread_cond_broadcast(&l->cv);
        }
        time_cond_wait_ms(&l->cv, &l->mu, WAIT_MS);
    }
    pthread_mutex_unlock(&l->mu);
    for (int i = 0; i < l->nthreads; i++)
        pthread_join(l->th[i], NULL);
    l->finished = 1;
    if (ok && l->failed) {
        *e = l->err;
        return e->code;
    }
    if (ok && l->state == LOADER_PARALLEL) {
        int rc = pgc_reader_finish(l->pgc, e);
        if (rc != 0)
            return rc;
        for (size_t i = 0; i < l->nblocks; i++)
            if (l->blocks[i].rows < 0)
                return pgs_fail(e, PGS_EORDER, "the data of dump entry %d was not loaded",
                                l->blocks[i].dump_id);
    }
    return 0;
}

int loader_rest_list(loader *l, const char *path, size_t *n, pgs_error *e)
{
    *n = 0;
    FILE *f = fopen(path, "wx");
    if (f == NULL)
        return pgs_fail(e, PGS_EIO, "%s: %s", path, strerror(errno));
    for (size_t i = 0; l->toc != NULL && i < l->toc->nentries; i++) {
        const pgc_entry *t = &l->toc->entries[i];
        if (t->section != PGC_SECTION_DATA)
            continue;
        if ((size_t)t->dump_id < l->loaded_cap && l->loaded[t->dump_id])
            continue;
        fprintf(f, "%d; %s %s %s\n", t->dump_id, t->desc, t->nspace, t->tag);
        (*n)++;
    }
    if (fclose(f) != 0)
        return pgs_fail(e, PGS_EIO, "%s: %s", path, strerror(errno));
    return 0;
}

json_t *loader_report(const loader *l)
{
    json_int_t rows = 0;
    size_t frozen = 0;
    double ms = 0;
    for (size_t i = 0; i < l->nblocks; i++) {
        if (l->blocks[i].rows > 0)
            rows += l->blocks[i].rows;
        frozen += l->blocks[i].frozen != 0;
        ms += l->blocks[i].ms;
    }
    return json_pack("{s:i, s:I, s:i, s:i, s:I}", "jobs", l->o.jobs, "tables", (json_int_t)l->nblocks,
                     "frozen", (int)frozen, "rows", rows, "copy_ms", (json_int_t)ms);
}

void loader_free(loader *l)
{
    if (l == NULL)
        return;
    pgs_error ignored;
    loader_finish(l, 0, &ignored);
    pgc_reader_free(l->pgc);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    free(l->blocks);
    free(l->loaded);
    free(l->conninfo);
    free(l->dbname);
    free(l->path);
    free(l->role);
    free(l->id);
    free(l);
}
