/*
 * The live fleet and the nng server the agents dial (see fleet.h and docs/wire-protocol.md).
 *
 * Threads and ownership:
 *   - A fixed pool of REP contexts, each with its own aio, receives requests. Handshakes and
 *     polls are answered from the aio callback (they are quick); nothing there blocks on storage.
 *   - A POLL without work parks its context on the session; the timer thread answers IDLE at the
 *     deadline, or fleet_backup_request answers JOB at once.
 *   - Each job in flight has a stream thread. DATA, END and FAIL requests are queued on the
 *     stream with their context; the stream thread feeds them to ingest (which may block on
 *     storage: that is the backpressure the agent feels, through its window) and replies.
 *   - f->mu guards sessions, queues and streams; f->cat_mu guards the fleet's own catalog handle.
 *     Lock order: mu, then cat_mu, never the other way. Nothing per frame runs under mu; the one
 *     slow thing that does is recording an agent in the catalog when it authenticates (once per
 *     connection, a few milliseconds of SQLite), so that no backup can be asked of an agent the
 *     catalog does not know yet.
 *
 * Bounds: an authenticated agent may park at most one POLL, `window` DATA and one END or FAIL;
 * more is a protocol error that drops it. Unauthenticated peers never park a context. So the pool
 * (agents x (window + 2) + spare) can never be exhausted by one peer.
 */
#include "coordinator/fleet.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <nng/protocol/reqrep0/rep.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "coordinator/ingest.h"
#include "proto/wire.h"

#define SPARE_CONTEXTS 16
#define END_ORDER_WAIT_MS 30000 /* END waits this long for DATA still being queued */
#define FAILED_LINGER_MS 60000  /* a failed stream waits this long for the agent's FAIL/END */
#define REFUSED_CLOSE_MS 1000   /* a refused peer's ERROR reply gets this long to leave */

typedef struct rctx rctx;
typedef struct session session;
typedef struct stream stream;

enum rctx_state { RC_RECV, RC_BUSY, RC_SEND };

struct rctx {
    fleet *f;
    nng_ctx ctx;
    nng_aio *aio;
    enum rctx_state state;
};

/* A request waiting in a stream's queue; msg keeps the frame alive (DATA points into it). */
typedef struct pending {
    rctx *rc;
    nng_msg *msg;
    wire_msg m;
} pending;

/* What a restore or sanitize job needs beyond a backup's fields (owned by its queue entry, then
 * by its stream). */
typedef struct rjob {
    char id[CATALOG_ID_SIZE];
    char kind[16];
    wire_restore_spec *spec;
    char storage_key[CATALOG_STORAGE_KEY_MAX + 1];
    uint64_t bytes;
    uint8_t sha256[SHA256_LEN];
    char output_id[CATALOG_ID_SIZE];
    char output_agent[CATALOG_NAME_MAX + 1];
    char output_database[CATALOG_NAME_MAX + 1];
    char output_env[CATALOG_NAME_MAX + 1];
    fleet_restore_done_fn done;
    void *done_arg;
} rjob;

typedef struct queued_job {
    char id[CATALOG_ID_SIZE];
    char database[CATALOG_NAME_MAX + 1];
    char environment[CATALOG_NAME_MAX + 1];
    char label[CATALOG_LABEL_MAX + 1];
    rjob *r; /* NULL for a backup */
} queued_job;

enum session_state { S_NEW, S_CHALLENGED, S_READY };

struct session {
    session *next;
    nng_pipe pipe;
    enum session_state state;
    uint8_t nonce[WIRE_NONCE_LEN];
    const coordinator_agent_config *agent; /* after HELLO */
    char name[WIRE_NAME_MAX + 1];
    char version[WIRE_VERSION_STR_MAX + 1];
    char addr[80];
    int64_t connected_ms;
    wire_db *dbs;
    size_t ndbs;
    size_t nrestore_keys;
    char (*restore_keys)[WIRE_PUBKEY_TEXT_MAX + 1];
    int64_t close_at_ms; /* refused: the timer closes the pipe then (its ERROR has left) */
    rctx *poll;          /* a parked POLL */
    int64_t poll_deadline_ms;
    queued_job queue[FLEET_QUEUE_MAX];
    size_t nqueue;
    stream *stream; /* the job in flight */
};

struct stream {
    stream *next;
    fleet *f;
    session *s; /* NULL once the session is gone */
    nng_pipe pipe;
    queued_job job;
    char agent[WIRE_NAME_MAX + 1];
    pthread_t thread;
    pthread_cond_t cv;
    pending *q; /* window + 1 slots: DATA and one END/FAIL */
    size_t nq, qcap;
    int dead;     /* pipe gone or stopping: give up */
    int finished; /* the thread is done; the timer thread joins it */
    const char *dead_reason;
    enum fleet_phase phase;
    uint64_t bytes;
    int64_t started_ms, updated_ms;
    char step[32], detail[256]; /* restore/sanitize: the agent's last STEP */

    /* Restore and sanitize: the source object, read from storage by src_thread into at most
     * `window` PIECE frames (ring, by seq) that wait for the agent's FETCH (parked in fetch). */
    rjob *r;
    pthread_t src_thread;
    int src_started;
    pthread_cond_t src_cv; /* the reader waits here for room in the ring */
    nng_msg **ring;
    size_t ring_cap, held;
    uint64_t src_next; /* pieces read so far */
    rctx **fetch_rc;
    uint64_t *fetch_seq;
    size_t nfetch;
    uint64_t *ring_seq;
    int src_stop;   /* the stream is over: the reader gives up */
    int src_done;   /* the whole object was read: src_next pieces */
    int src_failed; /* reading failed: src_error */
    char src_error[WIRE_TEXT_MAX + 1];
    /* the reader's own (no lock) */
    nng_msg *cur;
    size_t cur_len;
    uint64_t src_bytes;
    sha256_ctx *sha;
};

struct fleet {
    fleet_opts o;
    nng_socket sock;
    nng_listener listener;
    rctx *ctxs;
    size_t nctxs;
    pthread_mutex_t mu;
    pthread_cond_t timer_cv;
    pthread_t timer;
    int stopping;
    session *sessions;
    stream *streams;
    unsigned nstreams; /* running, not yet finished */
    pthread_mutex_t cat_mu;
    catalog *cat;
};

static void rfc3339(int64_t ms, char out[CATALOG_TIME_SIZE])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char b[24];
    strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, CATALOG_TIME_SIZE, "%s.%03dZ", b, (int)(ms % 1000));
}

/* ---- replies and receiving ---- */

static void rctx_recv(rctx *rc)
{
    rc->state = RC_RECV;
    nng_ctx_recv(rc->ctx, rc->aio);
}

/* Sends m as the reply on rc; the callback goes back to receiving. */
static void reply(rctx *rc, const wire_msg *m)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    pgs_error e = {0};
    nng_msg *msg = NULL;
    if (wire_encode(m, &buf, &len, &e) != 0 || nng_msg_alloc(&msg, 0) != 0 ||
        nng_msg_append(msg, buf, len) != 0) {
        log_error("cannot encode a %s reply: %s", wire_type_name(m->type), e.msg);
        free(buf);
        if (msg != NULL)
            nng_msg_free(msg);
        rctx_recv(rc);
        return;
    }
    free(buf);
    rc->state = RC_SEND;
    nng_aio_set_msg(rc->aio, msg);
    nng_ctx_send(rc->ctx, rc->aio);
}

static void reply_error(rctx *rc, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void reply_error(rctx *rc, const char *code, const char *fmt, ...)
{
    wire_msg m = {.type = WIRE_ERROR};
    snprintf(m.u.error.code, sizeof(m.u.error.code), "%s", code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m.u.error.message, sizeof(m.u.error.message), fmt, ap);
    va_end(ap);
    reply(rc, &m);
}

static void reply_result(rctx *rc, const char *job, int complete, const char *error,
                         const char *key)
{
    wire_msg m = {.type = WIRE_RESULT};
    snprintf(m.u.result.job, sizeof(m.u.result.job), "%s", job);
    m.u.result.complete = complete;
    snprintf(m.u.result.error, sizeof(m.u.result.error), "%s", error != NULL ? error : "");
    snprintf(m.u.result.storage_key, sizeof(m.u.result.storage_key), "%s", key != NULL ? key : "");
    reply(rc, &m);
}

static void pipe_addr(nng_pipe p, char *out, size_t cap)
{
    nng_sockaddr sa;
    snprintf(out, cap, "?");
    if (nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa) != 0)
        return;
    if (sa.s_family == NNG_AF_INET) {
        const uint8_t *a = (const uint8_t *)&sa.s_in.sa_addr;
        snprintf(out, cap, "%u.%u.%u.%u:%u", a[0], a[1], a[2], a[3],
                 (unsigned)ntohs(sa.s_in.sa_port));
    } else if (sa.s_family == NNG_AF_INET6) {
        char h[48] = "";
        for (int i = 0; i < 16; i += 2)
            snprintf(h + strlen(h), sizeof(h) - strlen(h), "%s%x", i ? ":" : "",
                     (sa.s_in6.sa_addr[i] << 8) | sa.s_in6.sa_addr[i + 1]);
        snprintf(out, cap, "[%s]:%u", h, (unsigned)ntohs(sa.s_in6.sa_port));
    } else if (sa.s_family == NNG_AF_IPC) {
        snprintf(out, cap, "ipc");
    }
}

/* ---- sessions (under f->mu) ---- */

static session *session_find(fleet *f, nng_pipe p)
{
    for (session *s = f->sessions; s != NULL; s = s->next)
        if (nng_pipe_id(s->pipe) == nng_pipe_id(p))
            return s;
    return NULL;
}

static session *session_by_name(fleet *f, const char *name)
{
    for (session *s = f->sessions; s != NULL; s = s->next)
        if (s->state == S_READY && strcmp(s->name, name) == 0)
            return s;
    return NULL;
}

static int pipe_alive(nng_pipe p)
{
    nng_sockaddr sa;
    return nng_pipe_get_addr(p, NNG_OPT_REMADDR, &sa) == 0;
}

/* The ids of the queued jobs of s, failed once f->mu is released (fail_jobs). */
typedef struct job_ids {
    size_t n;
    char id[FLEET_QUEUE_MAX][CATALOG_ID_SIZE];
    rjob *r[FLEET_QUEUE_MAX]; /* restore jobs: their done callback is told */
} job_ids;

static void rjob_free(rjob *r)
{
    if (r == NULL)
        return;
    wire_restore_spec_free(r->spec);
    free(r);
}

/* Tells a restore job's owner how it ended (exactly once), then frees it. */
static void rjob_finish(rjob *r, int ok, const char *step, const char *error, json_t *report)
{
    if (r == NULL)
        return;
    fleet_restore_outcome out = {.id = r->id,
                                 .ok = ok,
                                 .step = ok ? "done" : step,
                                 .error = ok ? "" : error,
                                 .report = report,
                                 .output_backup_id = r->output_id};
    if (r->done != NULL)
        r->done(r->done_arg, &out);
    rjob_free(r);
}

static void stream_kill(stream *t, const char *reason)
{
    if (t->dead)
        return;
    t->dead = 1;
    t->dead_reason = reason;
    pthread_cond_broadcast(&t->cv);
}

/* Unlinks s and frees it. A parked poll goes back to receiving (its pipe is gone: no reply);
 * the stream learns that its agent is gone; queued jobs are collected in dropped. */
static void session_remove(fleet *f, session *s, job_ids *dropped)
{
    for (session **pp = &f->sessions; *pp != NULL; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            break;
        }
    if (s->poll != NULL)
        rctx_recv(s->poll);
    if (s->stream != NULL) {
        s->stream->s = NULL;
        stream_kill(s->stream, "the connection to the agent was lost");
    }
    for (size_t i = 0; i < s->nqueue; i++) {
        dropped->r[dropped->n] = s->queue[i].r;
        snprintf(dropped->id[dropped->n++], CATALOG_ID_SIZE, "%s", s->queue[i].id);
    }
    if (s->state == S_READY)
        log_info("agent %s disconnected (%s)", s->name, s->addr);
    free(s->dbs);
    free(s->restore_keys);
    free(s);
}

static void fail_jobs(fleet *f, const job_ids *ids, const char *reason)
{
    if (ids->n == 0)
        return;
    for (size_t i = 0; i < ids->n; i++)
        if (ids->r[i] != NULL) {
            log_info("%s %s failed: %s", ids->r[i]->kind, ids->id[i], reason);
            if (ids->r[i]->output_id[0] != 0) {
                pthread_mutex_lock(&f->cat_mu);
                catalog_backup_fail(f->cat, ids->r[i]->output_id, reason, &(pgs_error){0});
                pthread_mutex_unlock(&f->cat_mu);
            }
            rjob_finish(ids->r[i], 0, "dispatch", reason, NULL);
        }
    pthread_mutex_lock(&f->cat_mu);
    for (size_t i = 0; i < ids->n; i++) {
        if (ids->r[i] != NULL)
            continue;
        pgs_error e = {0};
        if (catalog_backup_fail(f->cat, ids->id[i], reason, &e) != 0)
            log_warn("backup %s: %s", ids->id[i], e.msg);
        else
            log_info("backup %s failed: %s", ids->id[i], reason);
    }
    pthread_mutex_unlock(&f->cat_mu);
}

static void catalog_disconnected(fleet *f, const char *name)
{
    pthread_mutex_lock(&f->cat_mu);
    pgs_error e = {0};
    if (catalog_agent_disconnected(f->cat, name, &e) != 0)
        log_warn("catalog: %s", e.msg);
    pthread_mutex_unlock(&f->cat_mu);
}

/* Drops a peer for a protocol violation: logs why and closes its pipe (the pipe event then
 * removes the session). rc goes back to receiving without a reply. */
static void drop_peer(fleet *f, rctx *rc, nng_pipe p, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void drop_peer(fleet *f, rctx *rc, nng_pipe p, const char *fmt, ...)
{
    char why[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    char addr[80];
    pipe_addr(p, addr, sizeof(addr));
    pthread_mutex_lock(&f->mu);
    session *s = session_find(f, p);
    const char *who = s != NULL && s->name[0] ? s->name : "unauthenticated peer";
    log_warn("dropping %s (%s): %s", who, addr, why);
    pthread_mutex_unlock(&f->mu);
    nng_pipe_close(p);
    if (rc != NULL)
        rctx_recv(rc);
}

/* Index of the queued request that comes next: DATA with seq == next, or END/FAIL once
 * everything it counts has been consumed (or END_ORDER_WAIT_MS passed), or REPORT once nothing
 * else is queued (the agent sends it last). */
static long stream_next(stream *t, uint64_t next, int64_t *end_since)
{
    long end = -1, report = -1;
    for (size_t i = 0; i < t->nq; i++) {
        const wire_msg *m = &t->q[i].m;
        if (m->type == WIRE_DATA && m->u.data.seq == next)
            return (long)i;
        if (m->type == WIRE_FAIL)
            return (long)i;
        if (m->type == WIRE_END)
            end = (long)i;
        if (m->type == WIRE_REPORT)
            report = (long)i;
    }
    if (end >= 0) {
        const wire_msg *m = &t->q[end].m;
        if (m->u.end.chunks <= next)
            return end;
        if (*end_since == 0)
            *end_since = time_now_ms();
        if (time_now_ms() - *end_since > END_ORDER_WAIT_MS)
            return end; /* ingest_end reports the mismatch */
        return -1;
    }
    if (report >= 0 && t->nq == 1)
        return report;
    return -1;
}

static void pending_release(pending *p)
{
    wire_msg_clear(&p->m);
    if (p->msg != NULL)
        nng_msg_free(p->msg);
    p->msg = NULL;
}

/* ---- the source of a restore: storage -> PIECE frames -> the agent's FETCH ---- */

static void reply_msg(rctx *rc, nng_msg *msg)
{
    rc->state = RC_SEND;
    nng_aio_set_msg(rc->aio, msg);
    nng_ctx_send(rc->ctx, rc->aio);
}

/* Answers the parked FETCHes that can be answered now (under f->mu). */
static void serve_fetches(stream *t)
{
    for (size_t i = 0; i < t->nfetch;) {
        uint64_t seq = t->fetch_seq[i];
        rctx *rc = t->fetch_rc[i];
        size_t slot = (size_t)(seq % t->ring_cap);
        int answered = 1;
        if (t->src_failed) {
            reply_error(rc, "job_failed", "%s %s: %s", t->r->kind, t->job.id, t->src_error);
        } else if (t->ring[slot] != NULL && t->ring_seq[slot] == seq) {
            t->bytes += nng_msg_len(t->ring[slot]) - WIRE_DATA_HDR_MAX;
            t->updated_ms = time_now_ms();
            reply_msg(rc, t->ring[slot]);
            t->ring[slot] = NULL;
            pthread_cond_broadcast(&t->src_cv);
        } else if (seq < t->src_next) {
            reply_error(rc, "bad_request", "piece %" PRIu64 " of %s was already sent", seq,
                        t->job.id);
        } else if (t->src_done) { /* at or past the end: a window of FETCH overshoots */
            wire_msg m = {.type = WIRE_EOF};
            snprintf(m.u.eof.job, sizeof(m.u.eof.job), "%s", t->job.id);
            m.u.eof.pieces = t->src_next;
            m.u.eof.bytes = t->r->bytes;
            memcpy(m.u.eof.sha256, t->r->sha256, SHA256_LEN);
            reply(rc, &m);
        } else {
            answered = 0;
        }
        if (answered) {
            t->nfetch--;
            t->fetch_rc[i] = t->fetch_rc[t->nfetch];
            t->fetch_seq[i] = t->fetch_seq[t->nfetch];
        } else {
            i++;
        }
    }
}

/* The reader thread: hands the filled piece to the ring, waiting for its slot. */
static int piece_flush(stream *t)
{
    fleet *f = t->f;
    uint64_t seq = t->src_next; /* only this thread moves it */
    uint8_t *body = nng_msg_body(t->cur);
    wire_piece_header(body, t->job.id, seq, t->cur_len);
    nng_msg_chop(t->cur, (size_t)f->o.data_max - t->cur_len);
    size_t slot = (size_t)(seq % t->ring_cap);
    pthread_mutex_lock(&f->mu);
    while (!t->dead && !t->src_stop && t->ring[slot] != NULL)
        time_cond_wait_ms(&t->src_cv, &f->mu, 1000);
    if (t->dead || t->src_stop) {
        pthread_mutex_unlock(&f->mu);
        return PGS_EINTR;
    }
    t->ring[slot] = t->cur;
    t->ring_seq[slot] = seq;
    t->src_next++;
    serve_fetches(t);
    pthread_mutex_unlock(&f->mu);
    t->cur = NULL;
    t->cur_len = 0;
    return 0;
}

static int source_sink(void *arg, const void *buf, size_t len)
{
    stream *t = arg;
    const uint8_t *p = buf;
    sha256_update(t->sha, buf, len);
    t->src_bytes += len;
    while (len > 0) {
        if (t->cur == NULL) {
            if (nng_msg_alloc(&t->cur, WIRE_DATA_HDR_MAX + t->f->o.data_max) != 0)
                return PGS_ENOMEM;
            t->cur_len = 0;
        }
        size_t n = t->f->o.data_max - t->cur_len;
        if (n > len)
            n = len;
        memcpy((uint8_t *)nng_msg_body(t->cur) + WIRE_DATA_HDR_MAX + t->cur_len, p, n);
        t->cur_len += n;
        p += n;
        len -= n;
        if (t->cur_len == t->f->o.data_max) {
            int rc = piece_flush(t);
            if (rc != 0)
                return rc;
        }
    }
    return 0;
}

static void *source_main(void *arg)
{
    stream *t = arg;
    fleet *f = t->f;
    pgs_error e = {0};
    int rc = (t->sha = sha256_new()) == NULL
                 ? pgs_fail(&e, PGS_ENOMEM, "out of memory")
                 : storage_get(f->o.st, t->r->storage_key, source_sink, t, &e);
    if (rc == 0 && t->cur != NULL)
        rc = piece_flush(t);
    char why[WIRE_TEXT_MAX + 1] = "";
    if (rc != 0) {
        snprintf(why, sizeof(why), "reading %s from storage: %s", t->r->storage_key, e.msg);
    } else {
        uint8_t d[SHA256_LEN];
        sha256_final(t->sha, d);
        if (t->src_bytes != t->r->bytes)
            snprintf(why, sizeof(why),
                     "the stored object %s has %" PRIu64 " bytes, the catalog says %" PRIu64,
                     t->r->storage_key, t->src_bytes, t->r->bytes);
        else if (sodium_memcmp(d, t->r->sha256, SHA256_LEN) != 0)
            snprintf(why, sizeof(why),
                     "the stored object %s does not match the catalog's SHA-256 (damaged in "
                     "storage?)",
                     t->r->storage_key);
    }
    sha256_free(t->sha);
    t->sha = NULL;
    if (t->cur != NULL)
        nng_msg_free(t->cur);
    t->cur = NULL;

    pthread_mutex_lock(&f->mu);
    if (why[0] != 0 && !t->dead && !t->src_stop) {
        t->src_failed = 1;
        snprintf(t->src_error, sizeof(t->src_error), "%s", why);
        log_error("%s %s (%s/%s): %s", t->r->kind, t->job.id, t->agent, t->job.database, why);
    } else if (why[0] == 0) {
        t->src_done = 1;
        log_info("%s %s (%s/%s): %" PRIu64 " bytes of %s read from storage", t->r->kind,
                 t->job.id, t->agent, t->job.database, t->src_bytes, t->r->storage_key);
    }
    serve_fetches(t);
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

/* Stops the reader and answers nothing more (under f->mu, released while joining). */
static void source_stop(stream *t)
{
    fleet *f = t->f;
    t->src_stop = 1;
    pthread_cond_broadcast(&t->src_cv);
    if (t->src_started) {
        pthread_mutex_unlock(&f->mu);
        pthread_join(t->src_thread, NULL);
        pthread_mutex_lock(&f->mu);
        t->src_started = 0;
    }
    for (size_t i = 0; i < t->ring_cap; i++)
        if (t->ring[i] != NULL) {
            nng_msg_free(t->ring[i]);
            t->ring[i] = NULL;
        }
    for (size_t i = 0; i < t->nfetch; i++)
        rctx_recv(t->fetch_rc[i]);
    t->nfetch = 0;
}

/* ---- streams ---- */

/* The ingest of a stream: a backup's, or a sanitize job's new backup. */
typedef struct stream_ingest {
    ingest *g;
    int begun, ended, ok;
    char failure[CATALOG_ERROR_MAX + 1];
    int64_t failed_at;
} stream_ingest;

static const char *ingest_id(const stream *t)
{
    return t->r != NULL ? t->r->output_id : t->job.id;
}

static void stream_ingest_begin(stream *t, catalog *cat, stream_ingest *si, pgs_error *e)
{
    si->begun = 1;
    ingest_backup b = {.id = ingest_id(t),
                       .agent = t->r ? t->r->output_agent : t->agent,
                       .database = t->r ? t->r->output_database : t->job.database,
                       .environment = t->r ? t->r->output_env : t->job.environment};
    if (cat == NULL || ingest_begin(&si->g, t->f->o.st, cat, &b, e) != 0) {
        si->g = NULL;
        if (cat != NULL)
            catalog_backup_fail(cat, b.id, e->msg, &(pgs_error){0});
        snprintf(si->failure, sizeof(si->failure), "%s", e->msg);
        si->failed_at = time_now_ms();
        log_error("backup %s (%s/%s): %s", b.id, b.agent, b.database, e->msg);
    } else {
        log_info("backup %s (%s/%s) started: %s", b.id, b.agent, b.database, ingest_key(si->g));
    }
}

/* DATA, FAIL or END of the stream's backup: feeds ingest and replies. */
static void stream_ingest_request(stream *t, stream_ingest *si, pending *p, uint64_t *next)
{
    pgs_error e = {0};
    const char *id = ingest_id(t);
    if (p->m.type == WIRE_DATA) {
        if (si->failure[0] != 0) {
            reply_error(p->rc, "job_failed", "backup %s failed: %s", id, si->failure);
        } else if (ingest_data(si->g, p->m.u.data.seq, p->m.u.data.payload, p->m.u.data.len,
                               &e) != 0) {
            snprintf(si->failure, sizeof(si->failure), "%s", e.msg);
            si->failed_at = time_now_ms();
            log_error("backup %s (%s/%s) failed: %s", id, t->agent, t->job.database, si->failure);
            reply_error(p->rc, "job_failed", "backup %s failed: %s", id, si->failure);
        } else {
            wire_msg ack = {.type = WIRE_ACK};
            snprintf(ack.u.ack.job, sizeof(ack.u.ack.job), "%s", t->job.id);
            ack.u.ack.seq = p->m.u.data.seq;
            reply(p->rc, &ack);
        }
        *next = p->m.u.data.seq + 1;
    } else if (p->m.type == WIRE_FAIL) {
        if (si->failure[0] == 0) {
            snprintf(si->failure, sizeof(si->failure), "agent: %s", p->m.u.fail.error);
            ingest_abort(si->g, si->failure);
            log_warn("backup %s (%s/%s) failed on the agent: %s", id, t->agent, t->job.database,
                     p->m.u.fail.error);
        }
        reply_result(p->rc, t->job.id, 0, si->failure, NULL);
        si->ended = 1;
    } else { /* END */
        const char *key = NULL;
        if (si->failure[0] == 0 &&
            ingest_end(si->g, p->m.u.end.chunks, p->m.u.end.bytes, p->m.u.end.sha256,
                       p->m.u.end.manifest, &key, &e) != 0) {
            snprintf(si->failure, sizeof(si->failure), "%s", e.msg);
            log_error("backup %s (%s/%s) failed: %s", id, t->agent, t->job.database,
                      si->failure);
        }
        if (si->failure[0] == 0) {
            log_info("backup %s (%s/%s) complete: %" PRIu64 " bytes in %s", id, t->agent,
                     t->job.database, ingest_bytes(si->g), key);
            reply_result(p->rc, t->job.id, 1, NULL, key);
            si->ok = 1;
        } else {
            reply_result(p->rc, t->job.id, 0, si->failure, NULL);
        }
        si->ended = 1;
    }
}

/*
 * One job in flight. A backup: DATA and END (or FAIL) into ingest; done at END/FAIL. A restore:
 * the reader thread serves the object to the agent's FETCHes, STEPs are answered where they
 * arrive, and the REPORT ends it. A sanitize job does both: serve, then ingest its new backup,
 * then the REPORT.
 */
static void *stream_main(void *arg)
{
    stream *t = arg;
    fleet *f = t->f;
    rjob *r = t->r;
    pgs_error e = {0};
    catalog *cat = NULL;
    stream_ingest si = {0};
    int done = 0;
    uint64_t next = 0;
    int64_t end_since = 0;
    int report_ok = 0;
    char report_step[WIRE_STEP_MAX + 1] = "", report_error[WIRE_TEXT_MAX + 1] = "";
    json_t *report = NULL;

    if (catalog_open(f->o.catalog_path, &cat, &e) != 0) {
        cat = NULL;
        log_error("%s %s: %s", r ? r->kind : "backup", t->job.id, e.msg);
    }
    if (r == NULL) {
        stream_ingest_begin(t, cat, &si, &e);
    } else if (pthread_create(&t->src_thread, NULL, source_main, t) == 0) {
        t->src_started = 1;
    } else {
        pthread_mutex_lock(&f->mu);
        t->src_failed = 1;
        snprintf(t->src_error, sizeof(t->src_error), "cannot start a thread to read storage");
        pthread_mutex_unlock(&f->mu);
    }

    pthread_mutex_lock(&f->mu);
    while (!done) {
        long i = -1;
        while (!t->dead && (i = stream_next(t, next, &end_since)) < 0) {
            if (si.failed_at != 0 && time_now_ms() - si.failed_at > FAILED_LINGER_MS)
                break;
            time_cond_wait_ms(&t->cv, &f->mu, 1000);
            if (!t->dead && !pipe_alive(t->pipe)) /* in case the pipe event is late */
                stream_kill(t, "the connection to the agent was lost");
        }
        if (t->dead || i < 0)
            break;
        pending p = t->q[i];
        t->q[i] = t->q[--t->nq];
        if (p.m.type == WIRE_DATA)
            t->phase = FLEET_STREAMING;
        else if (p.m.type != WIRE_REPORT)
            t->phase = FLEET_FINISHING;
        pthread_mutex_unlock(&f->mu);

        if (p.m.type == WIRE_REPORT) {
            report_ok = p.m.u.report.ok;
            snprintf(report_step, sizeof(report_step), "%s", p.m.u.report.step);
            snprintf(report_error, sizeof(report_error), "%s", p.m.u.report.error);
            report = p.m.u.report.report;
            p.m.u.report.report = NULL;
            if (si.begun && !si.ended && si.failure[0] == 0) {
                snprintf(si.failure, sizeof(si.failure), "the agent reported before END: %s",
                         report_ok ? "no archive sent" : report_error);
                ingest_abort(si.g, si.failure);
            }
            int ok = report_ok && (r->output_id[0] == 0 || si.ok);
            reply_result(p.rc, t->job.id, ok, ok ? NULL : report_ok ? si.failure : report_error,
                         NULL);
            done = 1;
        } else {
            if (!si.begun)
                stream_ingest_begin(t, cat, &si, &e);
            stream_ingest_request(t, &si, &p, &next);
            if (r == NULL && si.ended)
                done = 1;
        }
        pthread_mutex_lock(&f->mu);
        pending_release(&p);
        if (r == NULL && si.g != NULL)
            t->bytes = ingest_bytes(si.g);
        t->updated_ms = time_now_ms();
    }
    /* Whatever is still queued gets no reply: the agent is gone or we stop. */
    for (size_t i = 0; i < t->nq; i++) {
        rctx_recv(t->q[i].rc);
        pending_release(&t->q[i]);
    }
    t->nq = 0;
    if (r != NULL)
        source_stop(t);
    const char *reason = t->dead ? t->dead_reason : "the agent went silent after a failure";
    char last_step[sizeof(t->step)];
    snprintf(last_step, sizeof(last_step), "%s", t->step[0] ? t->step : "dispatch");
    pthread_mutex_unlock(&f->mu);

    if (!done && si.begun && !si.ended && si.failure[0] == 0) {
        log_warn("backup %s (%s/%s) failed: %s", ingest_id(t), t->agent, t->job.database,
                 reason);
        ingest_abort(si.g, reason);
    }
    if (r != NULL && si.begun == 0 && r->output_id[0] != 0 && cat != NULL)
        catalog_backup_fail(cat, r->output_id,
                            done ? (report_ok ? "the agent sent no archive" : report_error)
                                 : reason,
                            &(pgs_error){0});
    ingest_free(si.g);
    catalog_close(cat);

    if (r != NULL) {
        t->r = NULL;
        if (!done) {
            log_warn("%s %s (%s/%s) failed in step %s: %s", r->kind, t->job.id, t->agent,
                     t->job.database, last_step, reason);
            rjob_finish(r, 0, last_step, reason, NULL);
        } else if (report_ok && r->output_id[0] != 0 && !si.ok) {
            log_warn("%s %s (%s/%s) failed uploading: %s", r->kind, t->job.id, t->agent,
                     t->job.database, si.failure);
            rjob_finish(r, 0, "upload", si.failure, report);
        } else {
            if (report_ok)
                log_info("%s %s (%s/%s) complete", r->kind, t->job.id, t->agent,
                         t->job.database);
            else
                log_warn("%s %s (%s/%s) failed in step %s: %s", r->kind, t->job.id, t->agent,
                         t->job.database, report_step, report_error);
            rjob_finish(r, report_ok, report_step, report_error, report);
        }
    }
    json_decref(report);

    pthread_mutex_lock(&f->mu);
    if (t->s != NULL && t->s->stream == t)
        t->s->stream = NULL;
    t->finished = 1;
    f->nstreams--;
    pthread_cond_broadcast(&f->timer_cv);
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

/* Frees a stream whose threads are done (or never started). */
static void stream_free(stream *t)
{
    pthread_cond_destroy(&t->cv);
    pthread_cond_destroy(&t->src_cv);
    rjob_free(t->r);
    free(t->ring);
    free(t->ring_seq);
    free(t->fetch_rc);
    free(t->fetch_seq);
    free(t->q);
    free(t);
}

/* Hands the first queued job of s to its parked poll and starts its stream (under f->mu). */
static void dispatch(fleet *f, session *s)
{
    if (s->poll == NULL || s->stream != NULL || s->nqueue == 0 || f->stopping ||
        f->nstreams >= f->o.max_streams)
        return;
    stream *t = calloc(1, sizeof(*t));
    pending *q = calloc(f->o.window + 3, sizeof(*q));
    int restore = s->queue[0].r != NULL;
    if (t != NULL && restore) {
        t->ring_cap = f->o.window;
        t->ring = calloc(t->ring_cap, sizeof(*t->ring));
        t->ring_seq = calloc(t->ring_cap, sizeof(*t->ring_seq));
        t->fetch_rc = calloc(t->ring_cap, sizeof(*t->fetch_rc));
        t->fetch_seq = calloc(t->ring_cap, sizeof(*t->fetch_seq));
    }
    if (t == NULL || q == NULL ||
        (restore && (!t->ring || !t->ring_seq || !t->fetch_rc || !t->fetch_seq))) {
        if (t != NULL)
            stream_free(t);
        free(q);
        log_error("out of memory starting a stream");
        return;
    }
    t->f = f;
    t->s = s;
    t->pipe = s->pipe;
    t->job = s->queue[0];
    memmove(&s->queue[0], &s->queue[1], (s->nqueue - 1) * sizeof(s->queue[0]));
    s->nqueue--;
    snprintf(t->agent, sizeof(t->agent), "%s", s->name);
    t->q = q;
    t->qcap = f->o.window + 3;
    t->r = t->job.r;
    t->phase = FLEET_SENT;
    t->started_ms = t->updated_ms = time_now_ms();
    pthread_cond_init(&t->cv, NULL);
    pthread_cond_init(&t->src_cv, NULL);
    if (pthread_create(&t->thread, NULL, stream_main, t) != 0) {
        log_error("cannot start a stream thread for job %s", t->job.id);
        /* back into the queue: the next poll tries again */
        memmove(&s->queue[1], &s->queue[0], s->nqueue * sizeof(s->queue[0]));
        s->queue[0] = t->job;
        s->nqueue++;
        t->r = NULL;
        stream_free(t);
        return;
    }
    t->next = f->streams;
    f->streams = t;
    f->nstreams++;
    s->stream = t;

    wire_msg m = {.type = WIRE_JOB};
    snprintf(m.u.job.job, sizeof(m.u.job.job), "%s", t->job.id);
    snprintf(m.u.job.kind, sizeof(m.u.job.kind), "%s", t->r ? t->r->kind : "backup");
    snprintf(m.u.job.database, sizeof(m.u.job.database), "%s", t->job.database);
    snprintf(m.u.job.label, sizeof(m.u.job.label), "%s", t->job.label);
    m.u.job.restore = t->r ? t->r->spec : NULL; /* borrowed: not cleared */
    rctx *rc = s->poll;
    s->poll = NULL;
    log_info("%s %s (%s/%s) sent to the agent", t->r ? t->r->kind : "backup", t->job.id, s->name,
             t->job.database);
    reply(rc, &m);
}

/* ---- requests ---- */

static void on_hello(fleet *f, rctx *rc, session *s, const wire_msg *m)
{
    const coordinator_agent_config *a = NULL;
    for (size_t i = 0; i < f->o.nagents; i++)
        if (strcmp(f->o.agents[i].name, m->u.hello.agent) == 0)
            a = &f->o.agents[i];
    char want[KEY_ID_HEX_LEN + 1] = "";
    if (a != NULL)
        key_id_hex(a->key.id, want);
    const char *why = NULL;
    if (s->state != S_NEW)
        why = "HELLO sent twice";
    else if (a == NULL)
        why = "no [agent] section in the configuration has this name";
    else if (strcmp(want, m->u.hello.key_id) != 0)
        why = "its identity key is not the one configured for it";
    if (why == NULL) {
        session *other = session_by_name(f, m->u.hello.agent);
        if (other != NULL && pipe_alive(other->pipe))
            why = "an agent with this name is already connected";
    }
    if (why != NULL) {
        log_warn("refused agent %s (%s, key %s): %s", m->u.hello.agent, s->addr,
                 m->u.hello.key_id, why);
        s->state = S_CHALLENGED;
        s->agent = NULL;
        s->close_at_ms = time_now_ms() + REFUSED_CLOSE_MS;
        reply_error(rc, "refused", "agent %s: %s", m->u.hello.agent, why);
        return;
    }
    s->agent = a;
    snprintf(s->name, sizeof(s->name), "%s", a->name);
    snprintf(s->version, sizeof(s->version), "%s", m->u.hello.version);
    randombytes_buf(s->nonce, sizeof(s->nonce));
    s->state = S_CHALLENGED;
    wire_msg c = {.type = WIRE_CHALLENGE};
    memcpy(c.u.challenge.nonce, s->nonce, sizeof(s->nonce));
    snprintf(c.u.challenge.version, sizeof(c.u.challenge.version), "pgship-coordinator %s",
             PGSHIP_VERSION);
    reply(rc, &c);
}

/* AUTH: returns 0 when the agent is in (reply sent), or -1 with why filled (drop it). */
static int on_auth(fleet *f, rctx *rc, session *s, wire_msg *m, char *why, size_t cap)
{
    if (s->state != S_CHALLENGED || s->agent == NULL) {
        snprintf(why, cap, "AUTH without an accepted HELLO");
        return -1;
    }
    uint8_t msg[WIRE_AUTH_MSG_MAX];
    size_t len = wire_auth_message(s->nonce, s->name, s->agent->key.id, msg);
    if (identity_verify(&s->agent->key, msg, len, m->u.auth.signature) != 0) {
        snprintf(why, cap, "bad signature for agent %s", s->name);
        return -1;
    }
    session *other = session_by_name(f, s->name);
    if (other != NULL && other != s) {
        if (pipe_alive(other->pipe)) {
            snprintf(why, cap, "agent %s is already connected", s->name);
            return -1;
        }
        job_ids dropped = {0};
        session_remove(f, other, &dropped); /* its pipe is gone; the event was not seen yet */
        fail_jobs(f, &dropped, "the connection to the agent was lost");
    }
    s->dbs = m->u.auth.dbs;
    s->ndbs = m->u.auth.ndbs;
    m->u.auth.dbs = NULL;
    m->u.auth.ndbs = 0;
    free(s->restore_keys);
    s->restore_keys = m->u.auth.restore_keys;
    s->nrestore_keys = m->u.auth.nrestore_keys;
    m->u.auth.restore_keys = NULL;
    m->u.auth.nrestore_keys = 0;
    s->state = S_READY;
    s->connected_ms = time_now_ms();

    pthread_mutex_lock(&f->cat_mu);
    pgs_error e = {0};
    char kid[KEY_ID_HEX_LEN + 1], pub[CATALOG_PUBLIC_KEY_MAX + 1];
    key_id_hex(s->agent->key.id, kid);
    snprintf(pub, sizeof(pub), "%s", s->agent->public_key);
    int rc2 = catalog_agent_seen(f->cat, s->name, kid, pub, s->version, 1, &e);
    for (size_t i = 0; rc2 == 0 && i < s->ndbs; i++)
        rc2 = catalog_database_seen(f->cat, s->name, s->dbs[i].name, s->dbs[i].environment,
                                    s->dbs[i].server_version, &e);
    pthread_mutex_unlock(&f->cat_mu);
    if (rc2 != 0)
        log_warn("catalog: agent %s: %s", s->name, e.msg);

    log_info("agent %s connected from %s (%s, %zu database%s)", s->name, s->addr, s->version,
             s->ndbs, s->ndbs == 1 ? "" : "s");
    wire_msg w = {.type = WIRE_WELCOME};
    w.u.welcome.heartbeat_ms = f->o.heartbeat_ms;
    w.u.welcome.window = f->o.window;
    w.u.welcome.data_max = f->o.data_max;
    reply(rc, &w);
    return 0;
}

static const char *request_job(const wire_msg *m)
{
    switch (m->type) {
    case WIRE_DATA: return m->u.data.job;
    case WIRE_END: return m->u.end.job;
    case WIRE_FAIL: return m->u.fail.job;
    case WIRE_FETCH: return m->u.fetch.job;
    case WIRE_STEP: return m->u.step.job;
    case WIRE_REPORT: return m->u.report.job;
    default: return "";
    }
}

/* A job's requests go to the session's stream: DATA, END, FAIL and REPORT are queued for its
 * thread; FETCH waits for its piece (or gets it at once); STEP is answered here. Returns 0, or
 * -1 with why (drop the peer). */
static int to_stream(session *s, rctx *rc, nng_msg *msg, wire_msg *m, char *why, size_t cap)
{
    const char *job = request_job(m);
    stream *t = s->stream;
    if (t == NULL || strcmp(t->job.id, job) != 0) {
        /* A job that already ended here (after a failure) or was never sent. */
        reply_error(rc, "unknown_job", "job %s is not running for agent %s", job, s->name);
        nng_msg_free(msg);
        wire_msg_clear(m);
        return 0;
    }
    int restore_msg = m->type == WIRE_FETCH || m->type == WIRE_STEP || m->type == WIRE_REPORT;
    if (restore_msg && t->r == NULL) {
        snprintf(why, cap, "%s for backup job %s", wire_type_name(m->type), job);
        return -1;
    }
    if (!restore_msg && t->r != NULL && t->r->output_id[0] == 0) {
        snprintf(why, cap, "%s for restore job %s", wire_type_name(m->type), job);
        return -1;
    }
    if (m->type == WIRE_FETCH) {
        if (t->nfetch >= t->ring_cap) {
            snprintf(why, cap, "more FETCH in flight than the window of %zu", t->ring_cap);
            return -1;
        }
        t->fetch_rc[t->nfetch] = rc;
        t->fetch_seq[t->nfetch++] = m->u.fetch.seq;
        if (t->phase == FLEET_SENT)
            t->phase = FLEET_STREAMING;
        serve_fetches(t);
        nng_msg_free(msg);
        wire_msg_clear(m);
        return 0;
    }
    if (m->type == WIRE_STEP) {
        snprintf(t->step, sizeof(t->step), "%s", m->u.step.step);
        snprintf(t->detail, sizeof(t->detail), "%s", m->u.step.detail);
        t->phase = strcmp(t->step, "unpack") == 0 ? FLEET_STREAMING : FLEET_RESTORING;
        t->updated_ms = time_now_ms();
        log_info("%s %s (%s/%s): %s%s%s", t->r->kind, job, s->name, t->job.database, t->step,
                 t->detail[0] ? ": " : "", t->detail);
        wire_msg ack = {.type = WIRE_ACK};
        snprintf(ack.u.ack.job, sizeof(ack.u.ack.job), "%s", job);
        reply(rc, &ack);
        nng_msg_free(msg);
        wire_msg_clear(m);
        return 0;
    }
    size_t ndata = 0, nend = 0, nreport = 0;
    for (size_t i = 0; i < t->nq; i++)
        if (t->q[i].m.type == WIRE_DATA)
            ndata++;
        else if (t->q[i].m.type == WIRE_REPORT)
            nreport++;
        else
            nend++;
    if (m->type == WIRE_DATA && ndata >= t->qcap - 3) {
        snprintf(why, cap, "more DATA in flight than the window of %zu", t->qcap - 3);
        return -1;
    }
    if ((m->type == WIRE_END || m->type == WIRE_FAIL) && nend > 0) {
        snprintf(why, cap, "%s sent twice for job %s", wire_type_name(m->type), job);
        return -1;
    }
    if (m->type == WIRE_REPORT && nreport > 0) {
        snprintf(why, cap, "REPORT sent twice for job %s", job);
        return -1;
    }
    t->q[t->nq].rc = rc;
    t->q[t->nq].msg = msg;
    t->q[t->nq].m = *m;
    t->nq++;
    memset(m, 0, sizeof(*m)); /* ownership moved */
    pthread_cond_broadcast(&t->cv);
    return 0;
}

static void handle(fleet *f, rctx *rc, nng_msg *msg)
{
    nng_pipe p = nng_msg_get_pipe(msg);
    wire_msg m;
    pgs_error e = {0};
    if (wire_decode(nng_msg_body(msg), nng_msg_len(msg), &m, &e) != 0) {
        nng_msg_free(msg);
        drop_peer(f, rc, p, "malformed frame: %s", e.msg);
        return;
    }
    if (m.type >= WIRE_CHALLENGE) {
        wire_type t = m.type;
        wire_msg_clear(&m);
        nng_msg_free(msg);
        drop_peer(f, rc, p, "a %s is not a request", wire_type_name(t));
        return;
    }
    char why[600] = "";
    pthread_mutex_lock(&f->mu);
    session *s = session_find(f, p);
    if (s == NULL) {
        if (f->stopping || !pipe_alive(p)) {
            pthread_mutex_unlock(&f->mu);
            wire_msg_clear(&m);
            nng_msg_free(msg);
            rctx_recv(rc);
            return;
        }
        s = calloc(1, sizeof(*s));
        if (s == NULL) {
            pthread_mutex_unlock(&f->mu);
            wire_msg_clear(&m);
            nng_msg_free(msg);
            drop_peer(f, rc, p, "out of memory");
            return;
        }
        s->pipe = p;
        pipe_addr(p, s->addr, sizeof(s->addr));
        s->next = f->sessions;
        f->sessions = s;
    }
    if (m.type != WIRE_HELLO && m.type != WIRE_AUTH && s->state != S_READY) {
        snprintf(why, sizeof(why), "%s before authentication", wire_type_name(m.type));
    } else {
        switch (m.type) {
        case WIRE_HELLO:
            on_hello(f, rc, s, &m);
            break;
        case WIRE_AUTH: {
            char refused[600];
            if (on_auth(f, rc, s, &m, refused, sizeof(refused)) != 0) {
                log_warn("refused agent %s (%s): %s", s->name[0] ? s->name : "?", s->addr,
                         refused);
                s->state = S_CHALLENGED;
                s->agent = NULL;
                s->close_at_ms = time_now_ms() + REFUSED_CLOSE_MS;
                reply_error(rc, "refused", "%s", refused);
            }
            break;
        }
        case WIRE_POLL:
            if (s->poll != NULL) {
                snprintf(why, sizeof(why), "a second POLL while one is waiting");
                break;
            }
            s->poll = rc;
            s->poll_deadline_ms = time_now_ms() + f->o.heartbeat_ms;
            dispatch(f, s);
            break;
        case WIRE_DATA:
        case WIRE_END:
        case WIRE_FAIL:
        case WIRE_FETCH:
        case WIRE_STEP:
        case WIRE_REPORT:
            if (to_stream(s, rc, msg, &m, why, sizeof(why)) == 0) {
                pthread_mutex_unlock(&f->mu);
                return; /* msg now belongs to the stream (or was answered and freed) */
            }
            break;
        default:
            snprintf(why, sizeof(why), "unexpected %s", wire_type_name(m.type));
        }
    }
    pthread_mutex_unlock(&f->mu);
    wire_msg_clear(&m);
    nng_msg_free(msg);
    if (why[0] != 0)
        drop_peer(f, rc, p, "%s", why);
}

static void rctx_cb(void *arg)
{
    rctx *rc = arg;
    fleet *f = rc->f;
    int rv = nng_aio_result(rc->aio);
    if (rc->state == RC_SEND) {
        if (rv != 0) {
            nng_msg *msg = nng_aio_get_msg(rc->aio);
            if (msg != NULL)
                nng_msg_free(msg);
        }
        if (rv == NNG_ECLOSED)
            return;
        rctx_recv(rc);
        return;
    }
    if (rv != 0) {
        if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
            return;
        log_warn("receive: %s", nng_strerror(rv));
        rctx_recv(rc);
        return;
    }
    rc->state = RC_BUSY;
    handle(f, rc, nng_aio_get_msg(rc->aio));
}

static void pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    fleet *f = arg;
    if (ev != NNG_PIPE_EV_REM_POST)
        return;
    job_ids dropped = {0};
    char name[WIRE_NAME_MAX + 1] = "";
    pthread_mutex_lock(&f->mu);
    session *s = session_find(f, p);
    if (s != NULL) {
        if (s->state == S_READY)
            snprintf(name, sizeof(name), "%s", s->name);
        session_remove(f, s, &dropped);
    }
    pthread_mutex_unlock(&f->mu);
    fail_jobs(f, &dropped, "the agent disconnected before the backup started");
    if (name[0] != 0)
        catalog_disconnected(f, name);
}

/* IDLE for polls past their deadline; joins finished streams. */
static void *timer_main(void *arg)
{
    fleet *f = arg;
    pthread_mutex_lock(&f->mu);
    while (!f->stopping) {
        int64_t now = time_now_ms();
        for (session *s = f->sessions; s != NULL; s = s->next) {
            if (s->close_at_ms != 0 && now >= s->close_at_ms) {
                /* closed outside the lock (the pipe event takes it); the list may change
                 * meanwhile, so the other sessions wait for the next round */
                s->close_at_ms = 0;
                nng_pipe p = s->pipe;
                pthread_mutex_unlock(&f->mu);
                nng_pipe_close(p);
                pthread_mutex_lock(&f->mu);
                break;
            }
            if (s->poll != NULL && now >= s->poll_deadline_ms) {
                rctx *rc = s->poll;
                s->poll = NULL;
                reply(rc, &(wire_msg){.type = WIRE_IDLE});
            } else if (s->poll != NULL) {
                dispatch(f, s); /* a job waiting for a free stream slot */
            }
        }
        for (stream **pp = &f->streams; *pp != NULL;) {
            stream *t = *pp;
            if (!t->finished) {
                pp = &t->next;
                continue;
            }
            *pp = t->next;
            pthread_mutex_unlock(&f->mu);
            pthread_join(t->thread, NULL);
            stream_free(t);
            pthread_mutex_lock(&f->mu);
            pp = &f->streams; /* the list may have changed meanwhile */
        }
        time_cond_wait_ms(&f->timer_cv, &f->mu, 100);
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

/* ---- public ---- */

int fleet_start(const fleet_opts *o, fleet **out, pgs_error *e)
{
    *out = NULL;
    fleet *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    f->o = *o;
    pthread_mutex_init(&f->mu, NULL);
    pthread_mutex_init(&f->cat_mu, NULL);
    pthread_cond_init(&f->timer_cv, NULL);
    int rc = catalog_open(o->catalog_path, &f->cat, e);
    if (rc != 0)
        goto fail_early;
    int rv;
    if ((rv = nng_rep0_open(&f->sock)) != 0) {
        rc = pgs_fail(e, PGS_EIO, "cannot open the agents' socket: %s", nng_strerror(rv));
        goto fail_early;
    }
    nng_socket_set_size(f->sock, NNG_OPT_RECVMAXSZ,
                        WIRE_HEADER_LEN + 1 + WIRE_JOB_ID_LEN + 8 + WIRE_DATA_MAX);
    nng_socket_set_bool(f->sock, NNG_OPT_TCP_KEEPALIVE, true);
    nng_pipe_notify(f->sock, NNG_PIPE_EV_REM_POST, pipe_cb, f);

    f->nctxs = o->nagents * (o->window + 3) + SPARE_CONTEXTS;
    f->ctxs = calloc(f->nctxs, sizeof(*f->ctxs));
    if (f->ctxs == NULL) {
        rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < f->nctxs; i++) {
        rctx *c = &f->ctxs[i];
        c->f = f;
        if ((rv = nng_ctx_open(&c->ctx, f->sock)) != 0 ||
            (rv = nng_aio_alloc(&c->aio, rctx_cb, c)) != 0) {
            rc = pgs_fail(e, PGS_EIO, "cannot open a context: %s", nng_strerror(rv));
            goto fail;
        }
    }
    if (pthread_create(&f->timer, NULL, timer_main, f) != 0) {
        rc = pgs_fail(e, PGS_EIO, "cannot start the timer thread");
        goto fail;
    }
    for (size_t i = 0; i < f->nctxs; i++)
        rctx_recv(&f->ctxs[i]);
    if ((rc = net_listen(f->sock, o->listen, o->tls, &f->listener, e)) != 0) {
        fleet_stop(f);
        return rc;
    }
    log_info("listening for agents on %s (%zu allowed, window %u x %u bytes, heartbeat %u ms)",
             o->listen, o->nagents, o->window, o->data_max, o->heartbeat_ms);
    *out = f;
    return 0;
fail:
    nng_close(f->sock);
    for (size_t i = 0; f->ctxs != NULL && i < f->nctxs; i++)
        if (f->ctxs[i].aio != NULL)
            nng_aio_free(f->ctxs[i].aio);
    free(f->ctxs);
fail_early:
    catalog_close(f->cat);
    free(f);
    return rc;
}

void fleet_stop(fleet *f)
{
    if (f == NULL)
        return;
    pthread_mutex_lock(&f->mu);
    f->stopping = 1;
    pthread_cond_broadcast(&f->timer_cv);
    pthread_mutex_unlock(&f->mu);
    pthread_join(f->timer, NULL);
    nng_listener_close(f->listener);

    /* Every stream gives up; its thread aborts the upload and fails the row. */
    pthread_mutex_lock(&f->mu);
    for (stream *t = f->streams; t != NULL; t = t->next)
        stream_kill(t, "the coordinator is stopping");
    pthread_mutex_unlock(&f->mu);
    for (stream *t = f->streams, *n; t != NULL; t = n) {
        n = t->next;
        pthread_join(t->thread, NULL);
        stream_free(t);
    }
    f->streams = NULL;

    nng_close(f->sock);
    for (size_t i = 0; i < f->nctxs; i++)
        nng_aio_stop(f->ctxs[i].aio);
    for (size_t i = 0; i < f->nctxs; i++)
        nng_aio_free(f->ctxs[i].aio);
    free(f->ctxs);

    job_ids dropped = {0};
    while (f->sessions != NULL) {
        session *s = f->sessions;
        if (s->state == S_READY)
            catalog_disconnected(f, s->name);
        s->poll = NULL; /* its context is closed */
        session_remove(f, s, &dropped);
        fail_jobs(f, &dropped, "the coordinator stopped before the backup started");
        dropped.n = 0;
    }
    catalog_close(f->cat);
    pthread_cond_destroy(&f->timer_cv);
    pthread_mutex_destroy(&f->cat_mu);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

json_t *fleet_agents_json(fleet *f)
{
    json_t *arr = json_array();
    if (arr == NULL || f == NULL)
        return arr;
    pthread_mutex_lock(&f->mu);
    for (session *s = f->sessions; s != NULL; s = s->next) {
        if (s->state != S_READY)
            continue;
        char at[CATALOG_TIME_SIZE], kid[KEY_ID_HEX_LEN + 1];
        rfc3339(s->connected_ms, at);
        key_id_hex(s->agent->key.id, kid);
        json_t *dbs = json_array(), *jobs = json_array();
        for (size_t i = 0; i < s->ndbs; i++)
            json_array_append_new(dbs, json_pack("{s:s, s:s, s:s}", "name", s->dbs[i].name,
                                                 "environment", s->dbs[i].environment,
                                                 "server_version", s->dbs[i].server_version));
        if (s->stream != NULL)
            json_array_append_new(jobs, json_string(s->stream->job.id));
        for (size_t i = 0; i < s->nqueue; i++)
            json_array_append_new(jobs, json_string(s->queue[i].id));
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o}", "name",
                                             s->name, "version", s->version, "key_id", kid,
                                             "address", s->addr, "connected_at", at, "databases",
                                             dbs, "jobs", jobs));
    }
    pthread_mutex_unlock(&f->mu);
    return arr;
}

/* The database db of s, or NULL. */
static const wire_db *session_db(const session *s, const char *db)
{
    for (size_t i = 0; i < s->ndbs; i++)
        if (strcmp(s->dbs[i].name, db) == 0)
            return &s->dbs[i];
    return NULL;
}

int fleet_backup_request(fleet *f, catalog *cat, const char *agent, const char *db,
                         const char *label, const char *requested_by, char id_out[CATALOG_ID_SIZE],
                         pgs_error *e)
{
    return fleet_backup_request_scheduled(f, cat, agent, db, label, requested_by, NULL, id_out, e);
}

int fleet_backup_request_scheduled(fleet *f, catalog *cat, const char *agent, const char *db,
                                   const char *label, const char *requested_by,
                                   const char *schedule, char id_out[CATALOG_ID_SIZE],
                                   pgs_error *e)
{
    id_out[0] = 0;
    if (f == NULL)
        return pgs_fail(e, PGS_ENOTFOUND, "agent %s is not connected", agent);
    queued_job j = {0};
    pthread_mutex_lock(&f->mu);
    session *s = session_by_name(f, agent);
    const wire_db *d = s != NULL ? session_db(s, db) : NULL;
    int rc = 0;
    if (s == NULL)
        rc = pgs_fail(e, PGS_ENOTFOUND, "agent %s is not connected", agent);
    else if (d == NULL)
        rc = pgs_fail(e, PGS_ENOTFOUND, "agent %s has no database %s in its configuration",
                      agent, db);
    else if (s->nqueue >= FLEET_QUEUE_MAX)
        rc = pgs_fail(e, PGS_ELIMIT, "agent %s already has %d backups waiting", agent,
                      FLEET_QUEUE_MAX);
    else
        snprintf(j.environment, sizeof(j.environment), "%s", d->environment);
    pthread_mutex_unlock(&f->mu);
    if (rc != 0)
        return rc;

    catalog_backup_req req = {.agent = agent,
                              .database = db,
                              .environment = j.environment,
                              .label = label,
                              .requested_by = requested_by,
                              .scheduled = schedule};
    if ((rc = catalog_backup_new(cat, &req, id_out, e)) != 0)
        return rc;
    snprintf(j.id, sizeof(j.id), "%s", id_out);
    snprintf(j.database, sizeof(j.database), "%s", db);
    snprintf(j.label, sizeof(j.label), "%s", label != NULL ? label : "");

    pthread_mutex_lock(&f->mu);
    s = session_by_name(f, agent);
    if (s == NULL || s->nqueue >= FLEET_QUEUE_MAX) {
        pthread_mutex_unlock(&f->mu);
        const char *why = s == NULL ? "the agent disconnected before the backup started"
                                    : "the agent's queue is full";
        catalog_backup_fail(cat, id_out, why, &(pgs_error){0});
        return pgs_fail(e, s == NULL ? PGS_ENOTFOUND : PGS_ELIMIT, "backup %s: %s", id_out, why);
    }
    s->queue[s->nqueue++] = j;
    log_info("backup %s (%s/%s) queued%s%s", j.id, agent, db, label && *label ? ", label " : "",
             label && *label ? label : "");
    dispatch(f, s);
    pthread_mutex_unlock(&f->mu);
    return 0;
}

const char *fleet_phase_name(enum fleet_phase p)
{
    switch (p) {
    case FLEET_QUEUED: return "queued";
    case FLEET_SENT: return "sent";
    case FLEET_STREAMING: return "streaming";
    case FLEET_FINISHING: return "finishing";
    case FLEET_RESTORING: return "restoring";
    }
    return "?";
}

int fleet_job_progress(fleet *f, const char *id, fleet_progress *out)
{
    if (f == NULL)
        return 0;
    int found = 0;
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&f->mu);
    for (stream *t = f->streams; t != NULL && !found; t = t->next)
        if (!t->finished && strcmp(t->job.id, id) == 0) {
            out->phase = t->phase;
            out->bytes = t->bytes;
            out->started_ms = t->started_ms;
            out->updated_ms = t->updated_ms;
            snprintf(out->step, sizeof(out->step), "%s", t->step);
            snprintf(out->detail, sizeof(out->detail), "%s", t->detail);
            found = 1;
        }
    for (session *s = f->sessions; s != NULL && !found; s = s->next)
        for (size_t i = 0; i < s->nqueue && !found; i++)
            if (strcmp(s->queue[i].id, id) == 0) {
                out->phase = FLEET_QUEUED;
                found = 1;
            }
    pthread_mutex_unlock(&f->mu);
    return found;
}

/* A deep copy of a restore spec (NULL when out of memory). */
static wire_restore_spec *spec_dup(const wire_restore_spec *in)
{
    wire_restore_spec *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    *r = *in;
    r->sanitize_sql = r->check_sql = NULL;
    r->schemas = r->tables = NULL;
    r->recipients = NULL;
    int bad = 0;
    if (in->sanitize_sql != NULL && (r->sanitize_sql = strdup(in->sanitize_sql)) == NULL)
        bad = 1;
    if (in->check_sql != NULL && (r->check_sql = strdup(in->check_sql)) == NULL)
        bad = 1;
    if (in->nschemas > 0 && (r->schemas = calloc(in->nschemas, sizeof(*r->schemas))) == NULL)
        bad = 1;
    if (in->ntables > 0 && (r->tables = calloc(in->ntables, sizeof(*r->tables))) == NULL)
        bad = 1;
    if (in->nrecipients > 0 &&
        (r->recipients = calloc(in->nrecipients, sizeof(*r->recipients))) == NULL)
        bad = 1;
    if (bad) {
        wire_restore_spec_free(r);
        return NULL;
    }
    if (in->nschemas > 0)
        memcpy(r->schemas, in->schemas, in->nschemas * sizeof(*r->schemas));
    if (in->ntables > 0)
        memcpy(r->tables, in->tables, in->ntables * sizeof(*r->tables));
    if (in->nrecipients > 0)
        memcpy(r->recipients, in->recipients, in->nrecipients * sizeof(*r->recipients));
    return r;
}

int fleet_restore_request(fleet *f, const fleet_restore_job *j, pgs_error *e)
{
    if (f == NULL)
        return pgs_fail(e, PGS_ENOTFOUND, "agent %s is not connected", j->agent);
    const catalog_backup *b = j->source;
    int sanitize = strcmp(j->kind, "sanitize") == 0;
    if (b->state != CATALOG_COMPLETE || b->storage_key[0] == 0)
        return pgs_fail(e, PGS_EORDER, "backup %s is not complete", b->id);
    rjob *r = calloc(1, sizeof(*r));
    if (r == NULL || (r->spec = spec_dup(j->spec)) == NULL) {
        free(r);
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    }
    snprintf(r->id, sizeof(r->id), "%s", j->id);
    snprintf(r->kind, sizeof(r->kind), "%s", j->kind);
    snprintf(r->storage_key, sizeof(r->storage_key), "%s", b->storage_key);
    r->bytes = b->bytes;
    if (hex_decode(b->sha256, strlen(b->sha256), r->sha256, SHA256_LEN) != 0) {
        rjob_free(r);
        return pgs_fail(e, PGS_EFORMAT, "backup %s has no valid SHA-256 in the catalog", b->id);
    }
    snprintf(r->spec->source, sizeof(r->spec->source), "%s", b->id);
    r->spec->source_bytes = b->bytes;
    if (sanitize) {
        snprintf(r->output_id, sizeof(r->output_id), "%s", j->output_backup_id);
        snprintf(r->output_agent, sizeof(r->output_agent), "%s", j->output_agent);
        snprintf(r->output_database, sizeof(r->output_database), "%s", j->output_database);
        snprintf(r->output_env, sizeof(r->output_env), "%s", j->output_environment);
        snprintf(r->spec->output, sizeof(r->spec->output), "%s", j->output_backup_id);
    }
    r->done = j->done;
    r->done_arg = j->done_arg;

    pthread_mutex_lock(&f->mu);
    session *s = session_by_name(f, j->agent);
    const wire_db *d = s != NULL ? session_db(s, j->database) : NULL;
    int rc = 0;
    if (f->stopping)
        rc = pgs_fail(e, PGS_ENOTFOUND, "the coordinator is stopping");
    else if (s == NULL)
        rc = pgs_fail(e, PGS_ENOTFOUND, "agent %s is not connected", j->agent);
    else if (d == NULL)
        rc = pgs_fail(e, PGS_ENOTFOUND, "agent %s has no database %s in its configuration",
                      j->agent, j->database);
    else if (s->nqueue >= FLEET_QUEUE_MAX)
        rc = pgs_fail(e, PGS_ELIMIT, "agent %s already has %d jobs waiting", j->agent,
                      FLEET_QUEUE_MAX);
    if (rc != 0) {
        pthread_mutex_unlock(&f->mu);
        rjob_free(r);
        return rc;
    }
    queued_job q = {.r = r};
    snprintf(q.id, sizeof(q.id), "%s", j->id);
    snprintf(q.database, sizeof(q.database), "%s", j->database);
    snprintf(q.environment, sizeof(q.environment), "%s", d->environment);
    s->queue[s->nqueue++] = q;
    log_info("%s %s (%s/%s) queued: backup %s", r->kind, q.id, j->agent, j->database, b->id);
    dispatch(f, s);
    pthread_mutex_unlock(&f->mu);
    return 0;
}

json_t *fleet_agent_restore_keys(fleet *f, const char *agent)
{
    if (f == NULL)
        return NULL;
    json_t *arr = NULL;
    pthread_mutex_lock(&f->mu);
    session *s = session_by_name(f, agent);
    if (s != NULL && (arr = json_array()) != NULL)
        for (size_t i = 0; i < s->nrestore_keys; i++)
            json_array_append_new(arr, json_string(s->restore_keys[i]));
    pthread_mutex_unlock(&f->mu);
    return arr;
}

int fleet_database_environment(fleet *f, const char *agent, const char *db, char *env, size_t cap)
{
    if (f == NULL)
        return PGS_ENOTFOUND;
    int rc = PGS_ENOTFOUND;
    pthread_mutex_lock(&f->mu);
    session *s = session_by_name(f, agent);
    const wire_db *d = s != NULL ? session_db(s, db) : NULL;
    if (d != NULL) {
        snprintf(env, cap, "%s", d->environment);
        rc = 0;
    }
    pthread_mutex_unlock(&f->mu);
    return rc;
}
