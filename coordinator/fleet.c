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

typedef struct queued_job {
    char id[CATALOG_ID_SIZE];
    char database[CATALOG_NAME_MAX + 1];
    char environment[CATALOG_NAME_MAX + 1];
    char label[CATALOG_LABEL_MAX + 1];
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

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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
} job_ids;

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
    for (size_t i = 0; i < s->nqueue; i++)
        snprintf(dropped->id[dropped->n++], CATALOG_ID_SIZE, "%s", s->queue[i].id);
    if (s->state == S_READY)
        log_info("agent %s disconnected (%s)", s->name, s->addr);
    free(s->dbs);
    free(s);
}

static void fail_jobs(fleet *f, const job_ids *ids, const char *reason)
{
    if (ids->n == 0)
        return;
    pthread_mutex_lock(&f->cat_mu);
    for (size_t i = 0; i < ids->n; i++) {
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

/* ---- streams ---- */

/* Index of the queued request that comes next: DATA with seq == next, or END/FAIL. With
 * end_ok, an END is taken only once everything it counts has been consumed. */
static long stream_next(stream *t, uint64_t next, int64_t *end_since)
{
    long end = -1;
    for (size_t i = 0; i < t->nq; i++) {
        const wire_msg *m = &t->q[i].m;
        if (m->type == WIRE_DATA && m->u.data.seq == next)
            return (long)i;
        if (m->type == WIRE_FAIL)
            return (long)i;
        if (m->type == WIRE_END)
            end = (long)i;
    }
    if (end >= 0) {
        const wire_msg *m = &t->q[end].m;
        if (m->u.end.chunks <= next)
            return end;
        if (*end_since == 0)
            *end_since = now_ms();
        if (now_ms() - *end_since > END_ORDER_WAIT_MS)
            return end; /* ingest_end reports the mismatch */
    }
    return -1;
}

static void pending_release(pending *p)
{
    wire_msg_clear(&p->m);
    if (p->msg != NULL)
        nng_msg_free(p->msg);
    p->msg = NULL;
}

static void timed_wait(pthread_cond_t *cv, pthread_mutex_t *mu, int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(cv, mu, &ts);
}

static void *stream_main(void *arg)
{
    stream *t = arg;
    fleet *f = t->f;
    pgs_error e = {0};
    catalog *cat = NULL;
    ingest *g = NULL;
    char failure[CATALOG_ERROR_MAX + 1] = "";
    int done = 0;
    uint64_t next = 0;
    int64_t end_since = 0, failed_at = 0;

    if (catalog_open(f->o.catalog_path, &cat, &e) == 0) {
        ingest_backup b = {.id = t->job.id,
                           .agent = t->agent,
                           .database = t->job.database,
                           .environment = t->job.environment};
        if (ingest_begin(&g, f->o.st, cat, &b, &e) != 0) {
            g = NULL;
            catalog_backup_fail(cat, t->job.id, e.msg, &(pgs_error){0});
        }
    }
    if (g == NULL) {
        snprintf(failure, sizeof(failure), "%s", e.msg);
        log_error("backup %s (%s/%s): %s", t->job.id, t->agent, t->job.database, e.msg);
        failed_at = now_ms();
    } else {
        log_info("backup %s (%s/%s) started: %s", t->job.id, t->agent, t->job.database,
                 ingest_key(g));
    }

    pthread_mutex_lock(&f->mu);
    while (!done) {
        long i = -1;
        while (!t->dead && (i = stream_next(t, next, &end_since)) < 0) {
            if (failed_at != 0 && now_ms() - failed_at > FAILED_LINGER_MS)
                break;
            timed_wait(&t->cv, &f->mu, 1000);
            if (!t->dead && !pipe_alive(t->pipe)) /* in case the pipe event is late */
                stream_kill(t, "the connection to the agent was lost");
        }
        if (t->dead || i < 0)
            break;
        pending p = t->q[i];
        t->q[i] = t->q[--t->nq];
        if (p.m.type == WIRE_DATA)
            t->phase = FLEET_STREAMING;
        else
            t->phase = FLEET_FINISHING;
        pthread_mutex_unlock(&f->mu);

        if (p.m.type == WIRE_DATA) {
            if (failure[0] != 0) {
                reply_error(p.rc, "job_failed", "backup %s failed: %s", t->job.id, failure);
            } else if (ingest_data(g, p.m.u.data.seq, p.m.u.data.payload, p.m.u.data.len, &e) !=
                       0) {
                snprintf(failure, sizeof(failure), "%s", e.msg);
                failed_at = now_ms();
                log_error("backup %s (%s/%s) failed: %s", t->job.id, t->agent, t->job.database,
                          failure);
                reply_error(p.rc, "job_failed", "backup %s failed: %s", t->job.id, failure);
            } else {
                wire_msg ack = {.type = WIRE_ACK};
                snprintf(ack.u.ack.job, sizeof(ack.u.ack.job), "%s", t->job.id);
                ack.u.ack.seq = p.m.u.data.seq;
                reply(p.rc, &ack);
            }
            next = p.m.u.data.seq + 1;
        } else if (p.m.type == WIRE_FAIL) {
            if (failure[0] == 0) {
                snprintf(failure, sizeof(failure), "agent: %s", p.m.u.fail.error);
                ingest_abort(g, failure);
                log_warn("backup %s (%s/%s) failed on the agent: %s", t->job.id, t->agent,
                         t->job.database, p.m.u.fail.error);
            }
            reply_result(p.rc, t->job.id, 0, failure, NULL);
            done = 1;
        } else { /* END */
            const char *key = NULL;
            if (failure[0] == 0 &&
                ingest_end(g, p.m.u.end.chunks, p.m.u.end.bytes, p.m.u.end.sha256,
                           p.m.u.end.manifest, &key, &e) != 0) {
                snprintf(failure, sizeof(failure), "%s", e.msg);
                log_error("backup %s (%s/%s) failed: %s", t->job.id, t->agent, t->job.database,
                          failure);
            }
            if (failure[0] == 0) {
                log_info("backup %s (%s/%s) complete: %" PRIu64 " bytes in %s", t->job.id,
                         t->agent, t->job.database, ingest_bytes(g), key);
                reply_result(p.rc, t->job.id, 1, NULL, key);
            } else {
                reply_result(p.rc, t->job.id, 0, failure, NULL);
            }
            done = 1;
        }
        pthread_mutex_lock(&f->mu);
        pending_release(&p);
        if (g != NULL)
            t->bytes = ingest_bytes(g);
        t->updated_ms = now_ms();
    }
    /* Whatever is still queued gets no reply: the agent is gone or we stop. */
    for (size_t i = 0; i < t->nq; i++) {
        rctx_recv(t->q[i].rc);
        pending_release(&t->q[i]);
    }
    t->nq = 0;
    const char *reason = t->dead ? t->dead_reason : "the agent went silent after a failure";
    pthread_mutex_unlock(&f->mu);

    if (!done && failure[0] == 0) {
        log_warn("backup %s (%s/%s) failed: %s", t->job.id, t->agent, t->job.database, reason);
        if (g != NULL)
            ingest_abort(g, reason);
    }
    ingest_free(g);
    catalog_close(cat);

    pthread_mutex_lock(&f->mu);
    if (t->s != NULL && t->s->stream == t)
        t->s->stream = NULL;
    t->finished = 1;
    f->nstreams--;
    pthread_cond_broadcast(&f->timer_cv);
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

/* Hands the first queued job of s to its parked poll and starts its stream (under f->mu). */
static void dispatch(fleet *f, session *s)
{
    if (s->poll == NULL || s->stream != NULL || s->nqueue == 0 || f->stopping ||
        f->nstreams >= f->o.max_streams)
        return;
    stream *t = calloc(1, sizeof(*t));
    pending *q = calloc(f->o.window + 2, sizeof(*q));
    if (t == NULL || q == NULL) {
        free(t);
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
    t->qcap = f->o.window + 2;
    t->phase = FLEET_SENT;
    t->started_ms = t->updated_ms = now_ms();
    pthread_cond_init(&t->cv, NULL);
    if (pthread_create(&t->thread, NULL, stream_main, t) != 0) {
        log_error("cannot start a stream thread for backup %s", t->job.id);
        /* back into the queue: the next poll tries again */
        memmove(&s->queue[1], &s->queue[0], s->nqueue * sizeof(s->queue[0]));
        s->queue[0] = t->job;
        s->nqueue++;
        pthread_cond_destroy(&t->cv);
        free(q);
        free(t);
        return;
    }
    t->next = f->streams;
    f->streams = t;
    f->nstreams++;
    s->stream = t;

    wire_msg m = {.type = WIRE_JOB};
    snprintf(m.u.job.job, sizeof(m.u.job.job), "%s", t->job.id);
    snprintf(m.u.job.kind, sizeof(m.u.job.kind), "backup");
    snprintf(m.u.job.database, sizeof(m.u.job.database), "%s", t->job.database);
    snprintf(m.u.job.label, sizeof(m.u.job.label), "%s", t->job.label);
    rctx *rc = s->poll;
    s->poll = NULL;
    log_info("backup %s (%s/%s) sent to the agent", t->job.id, s->name, t->job.database);
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
        s->close_at_ms = now_ms() + REFUSED_CLOSE_MS;
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
    s->state = S_READY;
    s->connected_ms = now_ms();

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

/* DATA, END and FAIL go to the session's stream. Returns 0, or -1 with why (drop the peer). */
static int to_stream(session *s, rctx *rc, nng_msg *msg, wire_msg *m, char *why, size_t cap)
{
    const char *job = m->type == WIRE_DATA  ? m->u.data.job
                      : m->type == WIRE_END ? m->u.end.job
                                            : m->u.fail.job;
    stream *t = s->stream;
    if (t == NULL || strcmp(t->job.id, job) != 0) {
        /* A job that already ended here (after a failure) or was never sent. */
        reply_error(rc, "unknown_job", "job %s is not running for agent %s", job, s->name);
        nng_msg_free(msg);
        wire_msg_clear(m);
        return 0;
    }
    size_t ndata = 0, nend = 0;
    for (size_t i = 0; i < t->nq; i++)
        if (t->q[i].m.type == WIRE_DATA)
            ndata++;
        else
            nend++;
    if (m->type == WIRE_DATA && ndata >= t->qcap - 2) {
        snprintf(why, cap, "more DATA in flight than the window of %zu", t->qcap - 2);
        return -1;
    }
    if (m->type != WIRE_DATA && nend > 0) {
        snprintf(why, cap, "%s sent twice for job %s", wire_type_name(m->type), job);
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
                s->close_at_ms = now_ms() + REFUSED_CLOSE_MS;
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
            s->poll_deadline_ms = now_ms() + f->o.heartbeat_ms;
            dispatch(f, s);
            break;
        case WIRE_DATA:
        case WIRE_END:
        case WIRE_FAIL:
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
        int64_t now = now_ms();
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
            pthread_cond_destroy(&t->cv);
            free(t->q);
            free(t);
            pthread_mutex_lock(&f->mu);
            pp = &f->streams; /* the list may have changed meanwhile */
        }
        timed_wait(&f->timer_cv, &f->mu, 100);
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
        pthread_cond_destroy(&t->cv);
        free(t->q);
        free(t);
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
                              .requested_by = requested_by};
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

int fleet_restore_request(fleet *f, const fleet_restore_job *j, pgs_error *e)
{
    (void)f, (void)j;
    return pgs_fail(e, PGS_EINVAL, "restore jobs are not available yet");
}

json_t *fleet_agent_restore_keys(fleet *f, const char *agent)
{
    (void)f, (void)agent;
    return NULL;
}

int fleet_database_environment(fleet *f, const char *agent, const char *db, char *env, size_t cap)
{
    (void)f, (void)agent, (void)db, (void)env, (void)cap;
    return PGS_ENOTFOUND;
}
