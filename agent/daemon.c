/*
 * The agent daemon (see daemon.h and docs/wire-protocol.md).
 *
 * One connection is one nng socket. The REQ socket's automatic resend is off (a lost reply is a
 * lost connection, never a silently repeated DATA frame), but a request still queued when its
 * connection goes would be sent on the dialer's next connection, to a coordinator that knows
 * nothing of that pipe and drops it. So each session opens its own socket, accepts exactly one
 * pipe on it (later ones are refused in ADD_PRE) and closes the whole socket when that pipe goes:
 * no request or reply ever crosses from one connection to the next, and every new connection
 * starts with a handshake.
 *
 * Threads: the main thread runs the session and the dump; dump_run calls job_sink with the
 * archive's bytes, which cuts them into DATA frames. nng's callbacks only record what happened
 * (a reply, an error, the pipe gone) under s->mu and wake the main thread, which does all the
 * decoding, checking and logging. It waits in steps of WAIT_STEP_MS so that a stop request,
 * recorded by sig_guard_start's signal thread (which also kills pg_dump), is seen promptly even
 * when nothing arrives.
 *
 * Replies are matched to requests by nng's contexts: one for control requests (HELLO, AUTH,
 * POLL, END, FAIL) and one per DATA frame in flight, `window` of them. Every reply has a deadline
 * after which the connection is declared dead.
 */
#include "agent/daemon.h"

#include <inttypes.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/dump.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/net.h"
#include "common/sha256.h"
#include "common/spawn.h"
#include "proto/wire.h"

_Static_assert(AGENT_ENVIRONMENT_MAX <= WIRE_ENV_MAX, "AUTH must carry every environment");

#define WAIT_STEP_MS 100
#define WINDOW_MAX 64
/* The largest reply a coordinator sends: a control frame. nng drops anything larger. */
#define REPLY_MAX (WIRE_HEADER_LEN + WIRE_CONTROL_MAX)
#define UNREACHABLE "unreachable"

/* How a session, or a step of it, ended. */
typedef enum sess_rc {
    SESS_OK = 0,
    SESS_LOST,    /* the connection went, went silent or broke the protocol: reconnect */
    SESS_REFUSED, /* the coordinator (or our own key file) refused the handshake: back off */
    SESS_STOP,    /* a stop was requested */
} sess_rc;

enum wait_rc { W_READY, W_LOST, W_TIMEOUT, W_STOP };

enum slot_state { SLOT_IDLE, SLOT_SEND, SLOT_RECV, SLOT_DONE };

typedef struct session session;

/* One request in flight on its own context. */
typedef struct slot {
    session *s;
    nng_ctx ctx;
    nng_aio *aio;
    enum slot_state state; /* under s->mu */
    int rv;                /* nng's result once DONE */
    nng_msg *reply;        /* once DONE with rv 0 */
    uint64_t seq;          /* DATA: the frame it carries */
    int64_t deadline;      /* for the reply, monotonic ms */
} slot;

struct session {
    const agent_config *cfg;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    nng_socket sock;
    int sock_open;
    uint32_t pipe_id; /* the one pipe this socket accepts; 0 before it came */
    int connected;    /* its ADD_POST was seen */
    int lost;         /* its REM_POST was seen */
    slot ctl;
    slot data[WINDOW_MAX];
    uint32_t ndata; /* data slots opened: the window */
    /* From WELCOME. */
    int welcomed;
    uint32_t heartbeat_ms, window, data_max;
    /* What AUTH announces; versions read before each connection. */
    wire_db *dbs;
    size_t ndbs;
    int64_t stop_at; /* when a stop was first seen (monotonic ms), else 0 */
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- waiting ---- */

/* Waits, with s->mu held, until ready() holds, the pipe is gone, deadline passes or a stop is
 * requested. With grace set, a stop ends the wait only AGENT_STOP_GRACE_MS after it was first
 * seen: time to report a job as failed before leaving. */
static int wait_locked(session *s, int (*ready)(session *, const void *), const void *arg,
                       int64_t deadline, int grace)
{
    for (;;) {
        if (ready(s, arg))
            return W_READY;
        if (s->lost)
            return W_LOST;
        int64_t now = now_ms(), until = deadline;
        if (sig_stop_requested()) {
            if (s->stop_at == 0)
                s->stop_at = now;
            if (!grace || now >= s->stop_at + AGENT_STOP_GRACE_MS)
                return W_STOP;
            if (until > s->stop_at + AGENT_STOP_GRACE_MS)
                until = s->stop_at + AGENT_STOP_GRACE_MS;
        }
        if (now >= deadline)
            return W_TIMEOUT;
        if (until > now + WAIT_STEP_MS)
            until = now + WAIT_STEP_MS;
        struct timespec ts = {.tv_sec = until / 1000, .tv_nsec = (until % 1000) * 1000000};
        pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    }
}

static int ready_connected(session *s, const void *arg)
{
    (void)arg;
    return s->connected;
}

static int ready_slot(session *s, const void *arg)
{
    (void)s;
    return ((const slot *)arg)->state == SLOT_DONE;
}

static int ready_any_data(session *s, const void *arg)
{
    (void)arg;
    for (uint32_t i = 0; i < s->ndata; i++)
        if (s->data[i].state == SLOT_DONE)
            return 1;
    return 0;
}

/* Sleeps ms, or less when a stop is requested. */
static void sleep_unless_stopped(int64_t ms)
{
    int64_t end = now_ms() + ms;
    while (!sig_stop_requested() && now_ms() < end) {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = WAIT_STEP_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/* ---- nng callbacks: record and wake, nothing else ---- */

static void pipe_cb(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    session *s = arg;
    uint32_t id = (uint32_t)nng_pipe_id(p);
    pthread_mutex_lock(&s->mu);
    if (ev == NNG_PIPE_EV_ADD_PRE) {
        if (s->pipe_id != 0) {
            /* One connection per socket (see the top of this file). */
            pthread_mutex_unlock(&s->mu);
            nng_pipe_close(p);
            return;
        }
        s->pipe_id = id;
    } else if (id == s->pipe_id) {
        if (ev == NNG_PIPE_EV_ADD_POST)
            s->connected = 1;
        else if (ev == NNG_PIPE_EV_REM_POST)
            s->lost = 1;
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
}

static void slot_cb(void *arg)
{
    slot *sl = arg;
    session *s = sl->s;
    int rv = nng_aio_result(sl->aio);
    pthread_mutex_lock(&s->mu);
    if (sl->state == SLOT_SEND && rv == 0) {
        /* Sent: the same aio now waits for the reply. */
        sl->state = SLOT_RECV;
        pthread_mutex_unlock(&s->mu);
        nng_ctx_recv(sl->ctx, sl->aio);
        return;
    }
    nng_msg *m = nng_aio_get_msg(sl->aio);
    nng_aio_set_msg(sl->aio, NULL);
    if (sl->state == SLOT_SEND || rv != 0) {
        /* A failed send leaves the request with us. */
        if (m != NULL)
            nng_msg_free(m);
        m = NULL;
    }
    sl->reply = m;
    sl->rv = rv;
    sl->state = SLOT_DONE;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* ---- requests ---- */

static int slot_open(session *s, slot *sl)
{
    memset(sl, 0, sizeof(*sl));
    sl->s = s;
    int rv = nng_ctx_open(&sl->ctx, s->sock);
    if (rv == 0)
        rv = nng_ctx_set_ms(sl->ctx, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
    if (rv == 0)
        rv = nng_aio_alloc(&sl->aio, slot_cb, sl);
    return rv;
}

/* Sends m (which the slot now owns) and arms the reply's deadline. */
static void slot_send(session *s, slot *sl, nng_msg *m, int64_t deadline)
{
    pthread_mutex_lock(&s->mu);
    sl->state = SLOT_SEND;
    sl->rv = 0;
    sl->reply = NULL;
    sl->deadline = deadline;
    pthread_mutex_unlock(&s->mu);
    nng_aio_set_msg(sl->aio, m);
    nng_ctx_send(sl->ctx, sl->aio);
}

/* Takes a DONE slot's outcome and makes it IDLE. */
static int slot_take(session *s, slot *sl, nng_msg **reply)
{
    pthread_mutex_lock(&s->mu);
    int rv = sl->rv;
    *reply = sl->reply;
    sl->reply = NULL;
    sl->state = SLOT_IDLE;
    pthread_mutex_unlock(&s->mu);
    return rv;
}

static int decode_reply(nng_msg *m, wire_msg *rep, pgs_error *e)
{
    int rc = wire_decode(nng_msg_body(m), nng_msg_len(m), rep, e);
    nng_msg_free(m);
    if (rc == 0 && rep->type < WIRE_CHALLENGE) {
        wire_msg_clear(rep);
        return pgs_fail(e, PGS_EFORMAT, "a request frame came back as a reply");
    }
    return rc;
}

/* Sends a control request on the control context and waits for its reply, decoded into rep.
 * Anything but a decoded reply is logged here and ends the session. */
static sess_rc request(session *s, const wire_msg *req, int64_t timeout_ms, int grace,
                       wire_msg *rep)
{
    const char *name = wire_type_name(req->type);
    pgs_error e = {0};
    uint8_t *buf = NULL;
    size_t len = 0;
    nng_msg *m = NULL;
    memset(rep, 0, sizeof(*rep));
    pthread_mutex_lock(&s->mu);
    int busy = s->ctl.state != SLOT_IDLE;
    pthread_mutex_unlock(&s->mu);
    if (busy) {
        log_error("internal: %s while another control request is in flight; reconnecting",
                  name);
        return SESS_LOST;
    }
    if (wire_encode(req, &buf, &len, &e) != 0) {
        log_error("cannot encode %s: %s; reconnecting", name, e.msg);
        return SESS_LOST;
    }
    int rv = nng_msg_alloc(&m, len);
    if (rv == 0)
        memcpy(nng_msg_body(m), buf, len);
    free(buf);
    if (rv != 0) {
        log_error("cannot send %s: %s; reconnecting", name, nng_strerror(rv));
        return SESS_LOST;
    }
    slot_send(s, &s->ctl, m, now_ms() + timeout_ms);
    pthread_mutex_lock(&s->mu);
    int w = wait_locked(s, ready_slot, &s->ctl, s->ctl.deadline, grace);
    pthread_mutex_unlock(&s->mu);
    switch (w) {
    case W_STOP:
        return SESS_STOP;
    case W_LOST:
        log_warn("connection to the coordinator lost while waiting for the reply to %s", name);
        return SESS_LOST;
    case W_TIMEOUT:
        log_error("no reply to %s within %" PRId64 " s; closing the connection", name,
                  timeout_ms / 1000);
        return SESS_LOST;
    default:
        break;
    }
    nng_msg *r = NULL;
    if ((rv = slot_take(s, &s->ctl, &r)) != 0) {
        log_warn("connection to the coordinator lost while waiting for the reply to %s (%s)",
                 name, nng_strerror(rv));
        return SESS_LOST;
    }
    if (decode_reply(r, rep, &e) != 0) {
        log_error("protocol error: malformed reply to %s: %s; closing the connection", name,
                  e.msg);
        return SESS_LOST;
    }
    return SESS_OK;
}

/* Logs a reply the protocol does not allow here and ends the session. */
static sess_rc unexpected(const char *to, wire_msg *rep)
{
    log_error("protocol error: %s reply to %s; closing the connection", wire_type_name(rep->type),
              to);
    wire_msg_clear(rep);
    return SESS_LOST;
}

/* ---- error text ---- */

/* The length of the valid UTF-8 sequence at p (as jansson accepts it), or 0. */
static size_t utf8_len(const unsigned char *p)
{
    unsigned char c = p[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else
        return 0;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return n;
}

/* Copies s as a wire error message: UTF-8 kept, other bytes as '?', control characters as spaces
 * (pg_dump's stderr and libpq's messages span lines), trailing spaces dropped, cut on a character
 * boundary to fit out. */
static void text_clean(const char *s, char *out, size_t cap)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0;
    while (*p) {
        size_t n = utf8_len(p);
        char c1 = 0;
        if (n == 0) {
            c1 = '?';
            n = 1;
        } else if (n == 1 && (*p < 0x20 || *p == 0x7f))
            c1 = ' ';
        if (o + (c1 ? 1 : n) >= cap)
            break;
        if (c1)
            out[o++] = c1;
        else {
            memcpy(out + o, p, n);
            o += n;
        }
        p += n;
    }
    while (o > 0 && out[o - 1] == ' ')
        o--;
    out[o] = '\0';
    if (o == 0)
        snprintf(out, cap, "unknown error");
}

/* ---- databases ---- */

/* Reads the server's version with a short connect timeout: "15.5" (the first word of
 * server_version), or UNREACHABLE. The conninfo goes last so that its own settings win. */
static void probe_version(const agent_database_config *d, char *out, size_t cap, char *err,
                          size_t errcap)
{
    char timeout[16];
    snprintf(timeout, sizeof(timeout), "%d", AGENT_PROBE_TIMEOUT_S);
    const char *const kw[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *const val[] = {timeout, "pgship-agent", d->conninfo, NULL};
    PGconn *c = PQconnectdbParams(kw, val, 1);
    const char *v = NULL;
    err[0] = '\0';
    if (c != NULL && PQstatus(c) == CONNECTION_OK)
        v = PQparameterStatus(c, "server_version");
    else
        text_clean(c ? PQerrorMessage(c) : "out of memory", err, errcap);
    size_t o = 0;
    for (; v != NULL && v[o] > 0x20 && v[o] < 0x7f && o + 1 < cap; o++)
        out[o] = v[o];
    out[o] = '\0';
    if (o == 0) {
        snprintf(out, cap, "%s", UNREACHABLE);
        if (err[0] == '\0')
            snprintf(err, errcap, "the server did not report its version");
    }
    PQfinish(c);
}

/* Reads every database's version for AUTH; logs only changes, so a database that stays down
 * is not reported at every reconnection. */
static void probe_databases(session *s)
{
    for (size_t i = 0; i < s->ndbs && !sig_stop_requested(); i++) {
        const agent_database_config *d = &s->cfg->databases[i];
        wire_db *w = &s->dbs[i];
        char v[WIRE_VERSION_STR_MAX + 1], err[512];
        probe_version(d, v, sizeof(v), err, sizeof(err));
        if (strcmp(v, w->server_version) != 0) {
            if (strcmp(v, UNREACHABLE) == 0)
                log_warn("database %s: cannot connect to read its version, announced as %s: %s",
                         d->name, UNREACHABLE, err);
            else
                log_info("database %s: server %s", d->name, v);
        }
        snprintf(w->server_version, sizeof(w->server_version), "%s", v);
    }
}

static const agent_database_config *find_database(const agent_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->ndatabases; i++)
        if (strcmp(cfg->databases[i].name, name) == 0)
            return &cfg->databases[i];
    return NULL;
}

int agent_daemon_check(const agent_config *cfg, pgs_error *e)
{
    if (cfg->ndatabases > WIRE_DBS_MAX)
        return pgs_fail(e, PGS_ELIMIT, "%s: %zu databases; an agent can announce at most %d",
                        cfg->path, cfg->ndatabases, WIRE_DBS_MAX);
    return 0;
}

/* ---- a backup job ---- */

typedef struct job {
    session *s;
    char id[WIRE_JOB_ID_LEN + 1];
    char database[WIRE_NAME_MAX + 1];
    uint64_t seq;   /* of the next DATA frame */
    uint64_t bytes; /* archive bytes sent in frames */
    nng_msg *cur;   /* the DATA frame being filled: header room, then payload */
    size_t cur_len; /* payload bytes in cur */
    sess_rc end;    /* not SESS_OK once the connection can no longer carry this job */
    int refused;    /* the coordinator answered a DATA with ERROR: it failed the job */
    char why[WIRE_TEXT_MAX + 1]; /* why the stream stopped, when it was us or the coordinator */
} job;

static void job_break(job *j, sess_rc rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void job_break(job *j, sess_rc rc, const char *fmt, ...)
{
    if (j->end != SESS_OK)
        return;
    j->end = rc;
    if (j->refused)
        return; /* the first reason is the one that counts */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->why, sizeof(j->why), fmt, ap);
    va_end(ap);
}

/* Checks the reply to one DATA frame: an ACK of exactly that job and seq. */
static void job_reap(job *j, slot *sl)
{
    nng_msg *m = NULL;
    uint64_t seq = sl->seq;
    int rv = slot_take(j->s, sl, &m);
    if (j->end != SESS_OK) {
        if (m != NULL)
            nng_msg_free(m);
        return;
    }
    if (rv != 0) {
        job_break(j, SESS_LOST, "connection to the coordinator lost (%s)", nng_strerror(rv));
        return;
    }
    wire_msg rep;
    pgs_error e = {0};
    if (decode_reply(m, &rep, &e) != 0) {
        job_break(j, SESS_LOST, "protocol error: malformed reply to DATA seq %" PRIu64 ": %s", seq,
                  e.msg);
        return;
    }
    if (rep.type == WIRE_ACK) {
        if (strcmp(rep.u.ack.job, j->id) != 0 || rep.u.ack.seq != seq)
            job_break(j, SESS_LOST,
                      "protocol error: ACK of job %s seq %" PRIu64 " for DATA seq %" PRIu64,
                      rep.u.ack.job, rep.u.ack.seq, seq);
    } else if (rep.type == WIRE_ERROR) {
        if (!j->refused) {
            j->refused = 1;
            snprintf(j->why, sizeof(j->why), "the coordinator refused DATA seq %" PRIu64 ": %s (%s)",
                     seq, rep.u.error.message, rep.u.error.code);
        }
    } else {
        job_break(j, SESS_LOST, "protocol error: %s reply to DATA", wire_type_name(rep.type));
    }
    wire_msg_clear(&rep);
}

/* Reaps every DATA reply that has arrived. */
static void job_reap_done(job *j)
{
    session *s = j->s;
    for (uint32_t i = 0; i < s->ndata; i++) {
        pthread_mutex_lock(&s->mu);
        int done = s->data[i].state == SLOT_DONE;
        pthread_mutex_unlock(&s->mu);
        if (done)
            job_reap(j, &s->data[i]);
    }
}

/* Waits for the next DATA reply; with all set, until none is outstanding. Returns 0, or -1 once
 * the job cannot go on (j->end or j->refused say why). A stop within the grace period only ends
 * the wait AGENT_STOP_GRACE_MS after it came. */
static int job_wait(job *j, int all, int grace)
{
    session *s = j->s;
    for (;;) {
        job_reap_done(j);
        if (j->end != SESS_OK)
            return -1;
        slot *oldest = NULL;
        int idle = 0;
        pthread_mutex_lock(&s->mu);
        for (uint32_t i = 0; i < s->ndata; i++) {
            slot *sl = &s->data[i];
            if (sl->state == SLOT_IDLE)
                idle = 1;
            else if (oldest == NULL || sl->deadline < oldest->deadline)
                oldest = sl;
        }
        if (oldest == NULL || (idle && !all)) {
            pthread_mutex_unlock(&s->mu);
            return j->refused ? -1 : 0;
        }
        int w = wait_locked(s, ready_any_data, NULL, oldest->deadline, grace);
        uint64_t seq = oldest->seq;
        pthread_mutex_unlock(&s->mu);
        if (w == W_LOST)
            job_break(j, SESS_LOST, "connection to the coordinator lost");
        else if (w == W_TIMEOUT)
            job_break(j, SESS_LOST, "no ACK of DATA seq %" PRIu64 " within %d s", seq,
                      AGENT_ACK_TIMEOUT_MS / 1000);
        else if (w == W_STOP)
            job_break(j, SESS_STOP, "agent stopping");
    }
}

/* Sends the frame being filled on a free DATA context, waiting for one if the window is full. */
static int job_flush(job *j)
{
    session *s = j->s;
    if (job_wait(j, 0, 0) != 0)
        return -1;
    slot *sl = NULL;
    pthread_mutex_lock(&s->mu);
    for (uint32_t i = 0; i < s->ndata && sl == NULL; i++)
        if (s->data[i].state == SLOT_IDLE) /* only this thread makes a slot busy */
            sl = &s->data[i];
    pthread_mutex_unlock(&s->mu);
    if (sl == NULL)
        abort(); /* job_wait returned with a free slot */
    wire_data_header(nng_msg_body(j->cur), j->id, j->seq, j->cur_len);
    sl->seq = j->seq;
    slot_send(s, sl, j->cur, now_ms() + AGENT_ACK_TIMEOUT_MS);
    j->cur = NULL;
    j->seq++;
    j->bytes += j->cur_len;
    j->cur_len = 0;
    return 0;
}

/* dump_run's sink: the archive's bytes, in order, copied once into DATA frames of data_max. */
static int job_sink(void *arg, const void *buf, size_t len)
{
    job *j = arg;
    session *s = j->s;
    const uint8_t *p = buf;
    while (len > 0) {
        if (j->end != SESS_OK || j->refused)
            return PGS_EIO;
        if (j->cur == NULL) {
            int rv = nng_msg_alloc(&j->cur, WIRE_DATA_HDR_MAX);
            if (rv == 0)
                rv = nng_msg_reserve(j->cur, WIRE_DATA_HDR_MAX + s->data_max);
            if (rv != 0) {
                snprintf(j->why, sizeof(j->why), "cannot allocate a DATA frame: %s",
                         nng_strerror(rv));
                return PGS_ENOMEM;
            }
        }
        size_t n = s->data_max - j->cur_len;
        if (n > len)
            n = len;
        int rv = nng_msg_append(j->cur, p, n);
        if (rv != 0) {
            snprintf(j->why, sizeof(j->why), "cannot fill a DATA frame: %s", nng_strerror(rv));
            return PGS_ENOMEM;
        }
        j->cur_len += n;
        p += n;
        len -= n;
        if (j->cur_len == s->data_max && job_flush(j) != 0)
            return PGS_EIO;
    }
    return 0;
}

/* Reports the job as failed (FAIL) and logs why. When stopping, only within the grace period. */
static sess_rc job_fail(job *j, const char *why)
{
    session *s = j->s;
    int stopping = sig_stop_requested() != 0;
    wire_msg m = {.type = WIRE_FAIL};
    snprintf(m.u.fail.job, sizeof(m.u.fail.job), "%s", j->id);
    text_clean(why, m.u.fail.error, sizeof(m.u.fail.error));
    log_error("job %s: backup of %s failed: %s", j->id, j->database, m.u.fail.error);
    wire_msg rep;
    sess_rc rc = request(s, &m, AGENT_FAIL_TIMEOUT_MS, 1, &rep);
    if (rc == SESS_STOP)
        log_warn("job %s: stopping before the coordinator answered FAIL", j->id);
    if (rc != SESS_OK)
        return rc;
    if (rep.type == WIRE_ERROR)
        log_warn("job %s: the coordinator refused FAIL: %s (%s)", j->id, rep.u.error.message,
                 rep.u.error.code);
    else if (rep.type != WIRE_RESULT || strcmp(rep.u.result.job, j->id) != 0)
        return unexpected("FAIL", &rep);
    wire_msg_clear(&rep);
    return stopping ? SESS_STOP : SESS_OK;
}

/* Sends END and logs the coordinator's RESULT. */
static sess_rc job_end(job *j, const dump_result *res)
{
    session *s = j->s;
    char hex[SHA256_HEX_LEN + 1], size[32];
    hex_encode(res->sha256, SHA256_LEN, hex);
    if (res->archive_bytes != j->bytes)
        return job_fail(j, "internal error: the archive's size differs from what was sent");
    json_error_t jerr;
    json_t *man = res->manifest_json ? json_loads(res->manifest_json, 0, &jerr) : NULL;
    if (!json_is_object(man)) {
        json_decref(man);
        return job_fail(j, "internal error: the archive's manifest is not a JSON object");
    }
    wire_msg m = {.type = WIRE_END};
    snprintf(m.u.end.job, sizeof(m.u.end.job), "%s", j->id);
    m.u.end.chunks = j->seq;
    m.u.end.bytes = j->bytes;
    memcpy(m.u.end.sha256, res->sha256, SHA256_LEN);
    m.u.end.manifest = man;
    uint8_t *probe = NULL;
    size_t plen = 0;
    pgs_error e = {0};
    if (wire_encode(&m, &probe, &plen, &e) != 0) {
        wire_msg_clear(&m);
        return job_fail(j, e.msg); /* a manifest beyond END's limit, say */
    }
    free(probe);
    log_debug("job %s: sent %" PRIu64 " DATA frames, %" PRIu64 " bytes; END", j->id, j->seq,
              j->bytes);
    wire_msg rep;
    /* The coordinator commits the object before it answers: a stop waits for that a little. */
    sess_rc rc = request(s, &m, AGENT_END_TIMEOUT_MS, 1, &rep);
    wire_msg_clear(&m);
    if (rc == SESS_STOP)
        log_warn("job %s: stopping before the coordinator answered END; the coordinator decides "
                 "whether backup is complete",
                 j->id);
    if (rc != SESS_OK)
        return rc;
    if (rep.type == WIRE_ERROR) {
        log_error("job %s: backup of %s failed: the coordinator refused END: %s (%s)", j->id,
                  j->database, rep.u.error.message, rep.u.error.code);
    } else if (rep.type == WIRE_RESULT && strcmp(rep.u.result.job, j->id) == 0) {
        if (rep.u.result.complete)
            log_info("job %s: backup of %s complete: %s in %" PRIu64 " frames, sha256 %s, stored "
                     "as %s",
                     j->id, j->database, fs_human_bytes(j->bytes, size, sizeof(size)), j->seq,
                     hex, rep.u.result.storage_key);
        else
            log_error("job %s: backup of %s failed at the coordinator: %s", j->id, j->database,
                      rep.u.result.error);
    } else {
        return unexpected("END", &rep);
    }
    wire_msg_clear(&rep);
    return SESS_OK;
}

static sess_rc run_job(session *s, const wire_msg *jm)
{
    const agent_config *cfg = s->cfg;
    job j;
    memset(&j, 0, sizeof(j));
    j.s = s;
    snprintf(j.id, sizeof(j.id), "%s", jm->u.job.job);
    snprintf(j.database, sizeof(j.database), "%s", jm->u.job.database);
    log_info("job %s: backup of %s started (label \"%s\")", j.id, j.database, jm->u.job.label);
    const agent_database_config *d = find_database(cfg, j.database);
    if (d == NULL) {
        char why[256];
        snprintf(why, sizeof(why), "database %s is not configured on agent %s", j.database,
                 cfg->agent.name);
        return job_fail(&j, why);
    }

    dump_opts o;
    dump_opts_init(&o);
    o.conninfo = d->conninfo;
    const ini_list *r = d->recipients.n ? &d->recipients : &cfg->agent.recipients;
    for (size_t i = 0; i < r->n && i < DUMP_PATTERNS_MAX; i++)
        o.recipients.v[o.recipients.n++] = r->items[i];
    o.sink = job_sink;
    o.sink_arg = &j;
    o.spool_dir = cfg->agent.spool_dir;
    o.progress = 0;
    dump_result res;
    memset(&res, 0, sizeof(res));
    pgs_error e = {0};
    int rc = dump_run(&o, &res, &e);
    if (rc == 0 && j.cur_len > 0 && j.end == SESS_OK && !j.refused)
        job_flush(&j);
    if (j.cur != NULL) {
        nng_msg_free(j.cur);
        j.cur = NULL;
    }
    /* Every frame sent is answered (or the connection is given up) before END or FAIL. */
    job_wait(&j, 1, rc != 0);
    sess_rc out;
    if (j.end == SESS_LOST) {
        log_error("job %s: backup of %s failed: %s", j.id, j.database, j.why);
        out = SESS_LOST;
    } else if (j.refused) {
        /* The coordinator failed the job (ERROR job_failed to a DATA, and to every later one);
         * FAIL closes it on both sides. */
        out = job_fail(&j, j.why);
    } else if (sig_stop_requested()) {
        job_fail(&j, "agent stopping");
        out = SESS_STOP;
    } else if (rc != 0) {
        out = job_fail(&j, j.why[0] ? j.why : e.msg);
    } else {
        out = job_end(&j, &res);
    }
    free(res.manifest_json);
    return out;
}

/* ---- a connection ---- */

static sess_rc handshake(session *s)
{
    const agent_config *cfg = s->cfg;
    pgs_identity_sec sec;
    pgs_error e = {0};
    /* The secret is read for each handshake and wiped right after signing: it is in memory for
     * milliseconds, not for the daemon's life. */
    if (identity_load_secret(cfg->agent.identity_key, &sec, &e) != 0) {
        identity_secret_wipe(&sec);
        log_error("cannot load the identity key: %s", e.msg);
        return SESS_REFUSED;
    }
    wire_msg m = {.type = WIRE_HELLO}, rep;
    snprintf(m.u.hello.agent, sizeof(m.u.hello.agent), "%s", cfg->agent.name);
    snprintf(m.u.hello.version, sizeof(m.u.hello.version), "pgship-agent %s", PGSHIP_VERSION);
    key_id_hex(sec.id, m.u.hello.key_id);
    sess_rc rc = request(s, &m, AGENT_HANDSHAKE_TIMEOUT_MS, 0, &rep);
    if (rc != SESS_OK)
        goto out;
    if (rep.type == WIRE_ERROR) {
        log_error("the coordinator refused agent %s (key %s): %s (%s)", cfg->agent.name,
                  m.u.hello.key_id, rep.u.error.message, rep.u.error.code);
        rc = SESS_REFUSED;
        goto out;
    }
    if (rep.type != WIRE_CHALLENGE) {
        rc = unexpected("HELLO", &rep);
        goto out;
    }
    char coord_version[WIRE_VERSION_STR_MAX + 1];
    snprintf(coord_version, sizeof(coord_version), "%s", rep.u.challenge.version);
    uint8_t msg[WIRE_AUTH_MSG_MAX];
    size_t n = wire_auth_message(rep.u.challenge.nonce, cfg->agent.name, sec.id, msg);
    wire_msg_clear(&rep);
    wire_msg a = {.type = WIRE_AUTH};
    identity_sign(&sec, msg, n, a.u.auth.signature);
    identity_secret_wipe(&sec);
    a.u.auth.dbs = s->dbs; /* ours: a is not cleared */
    a.u.auth.ndbs = s->ndbs;
    if ((rc = request(s, &a, AGENT_HANDSHAKE_TIMEOUT_MS, 0, &rep)) != SESS_OK)
        goto out;
    if (rep.type == WIRE_ERROR) {
        log_error("the coordinator refused agent %s at authentication: %s (%s)", cfg->agent.name,
                  rep.u.error.message, rep.u.error.code);
        rc = SESS_REFUSED;
        goto out;
    }
    if (rep.type != WIRE_WELCOME) {
        rc = unexpected("AUTH", &rep);
        goto out;
    }
    s->heartbeat_ms = rep.u.welcome.heartbeat_ms;
    s->window = rep.u.welcome.window;
    s->data_max = rep.u.welcome.data_max;
    wire_msg_clear(&rep);
    for (s->ndata = 0; s->ndata < s->window; s->ndata++) {
        int rv = slot_open(s, &s->data[s->ndata]);
        if (rv != 0) {
            if (s->data[s->ndata].aio != NULL)
                nng_aio_free(s->data[s->ndata].aio);
            log_error("cannot open %u request contexts: %s; reconnecting", s->window,
                      nng_strerror(rv));
            rc = SESS_LOST;
            goto out;
        }
    }
    s->welcomed = 1;
    log_info("authenticated as %s to coordinator %s (%s): heartbeat %u ms, window %u, "
             "data_max %u",
             cfg->agent.name, cfg->agent.coordinator, coord_version, s->heartbeat_ms, s->window,
             s->data_max);
out:
    identity_secret_wipe(&sec);
    return rc;
}

/* Long-polls for jobs and runs them, one at a time, until the connection ends. */
static sess_rc serve(session *s)
{
    for (;;) {
        wire_msg m = {.type = WIRE_POLL}, rep;
        sess_rc rc = request(s, &m, (int64_t)s->heartbeat_ms + AGENT_POLL_SLACK_MS, 0, &rep);
        if (rc != SESS_OK)
            return rc;
        switch (rep.type) {
        case WIRE_IDLE:
            log_debug("no work");
            break;
        case WIRE_JOB:
            rc = run_job(s, &rep);
            break;
        case WIRE_ERROR:
            log_error("the coordinator refused POLL: %s (%s); reconnecting", rep.u.error.message,
                      rep.u.error.code);
            rc = SESS_REFUSED;
            break;
        default:
            return unexpected("POLL", &rep);
        }
        wire_msg_clear(&rep);
        if (rc != SESS_OK)
            return rc;
    }
}

/* Opens this session's socket and starts dialing in the background. */
static int session_open(session *s, pgs_error *e)
{
    const agent_section_config *a = &s->cfg->agent;
    s->pipe_id = 0;
    s->connected = s->lost = s->welcomed = 0;
    s->ndata = 0;
    memset(&s->ctl, 0, sizeof(s->ctl));
    int rv = nng_req0_open(&s->sock);
    if (rv != 0)
        return pgs_fail(e, PGS_EIO, "cannot open a socket: %s", nng_strerror(rv));
    s->sock_open = 1;
    /* Contexts take the socket's resend time when they open: set it first. */
    if ((rv = nng_socket_set_ms(s->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE)) != 0 ||
        (rv = nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, REPLY_MAX)) != 0 ||
        (rv = nng_pipe_notify(s->sock, NNG_PIPE_EV_ADD_PRE, pipe_cb, s)) != 0 ||
        (rv = nng_pipe_notify(s->sock, NNG_PIPE_EV_ADD_POST, pipe_cb, s)) != 0 ||
        (rv = nng_pipe_notify(s->sock, NNG_PIPE_EV_REM_POST, pipe_cb, s)) != 0 ||
        (rv = slot_open(s, &s->ctl)) != 0)
        return pgs_fail(e, PGS_EIO, "cannot set up the socket: %s", nng_strerror(rv));
    net_tls t = {.ca_file = a->tls_ca,
                 .cert_file = a->tls_cert,
                 .key_file = a->tls_key,
                 .server_name = a->tls_server_name,
                 .allow_insecure = a->allow_insecure_transport};
    nng_dialer d;
    return net_dial(s->sock, a->coordinator, &t, 0, AGENT_DIAL_MIN_MS, AGENT_DIAL_MAX_MS, &d, e);
}

/* Closes the socket (and with it the pipe, the dialer and every context); after nng_close no
 * callback runs, so the slots can be freed. */
static void session_close(session *s)
{
    if (s->sock_open)
        nng_close(s->sock);
    s->sock_open = 0;
    slot *all[WINDOW_MAX + 1];
    size_t n = 0;
    all[n++] = &s->ctl;
    for (uint32_t i = 0; i < s->ndata; i++)
        all[n++] = &s->data[i];
    for (size_t i = 0; i < n; i++) {
        if (all[i]->aio != NULL)
            nng_aio_free(all[i]->aio); /* waits for its callback */
        all[i]->aio = NULL;
        if (all[i]->reply != NULL)
            nng_msg_free(all[i]->reply);
        all[i]->reply = NULL;
        all[i]->state = SLOT_IDLE;
    }
    s->ndata = 0;
}

/* Waits for the connection, then handshakes and serves until it ends. */
static sess_rc session_run(session *s)
{
    const char *url = s->cfg->agent.coordinator;
    int64_t started = now_ms(), next_warn = AGENT_HANDSHAKE_TIMEOUT_MS;
    log_info("connecting to %s", url);
    pthread_mutex_lock(&s->mu);
    int w;
    while ((w = wait_locked(s, ready_connected, NULL, started + next_warn, 0)) == W_TIMEOUT) {
        pthread_mutex_unlock(&s->mu);
        log_warn("not connected to %s after %" PRId64 " s; still trying (is it up%s?)", url,
                 next_warn / 1000,
                 strncmp(url, "tls+", 4) == 0
                     ? ", and do its certificate and name match tls_ca and tls_server_name"
                     : "");
        next_warn = next_warn * 2 > 600000 ? next_warn + 600000 : next_warn * 2;
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    if (w == W_STOP)
        return SESS_STOP;
    if (w == W_LOST) {
        log_warn("connection to %s closed before the handshake", url);
        return SESS_LOST;
    }
    log_info("connected to %s", url);
    sess_rc rc = handshake(s);
    if (rc == SESS_OK)
        rc = serve(s);
    return rc;
}

int agent_daemon_run(const agent_config *cfg, pgs_error *e)
{
    session s;
    memset(&s, 0, sizeof(s));
    s.cfg = cfg;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s.cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&s.mu, NULL);
    int rc = 0;
    s.ndbs = cfg->ndatabases;
    s.dbs = calloc(s.ndbs ? s.ndbs : 1, sizeof(wire_db));
    if (s.dbs == NULL) {
        rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < s.ndbs; i++) {
        snprintf(s.dbs[i].name, sizeof(s.dbs[i].name), "%s", cfg->databases[i].name);
        snprintf(s.dbs[i].environment, sizeof(s.dbs[i].environment), "%s",
                 cfg->databases[i].environment);
    }
    log_info("pgship-agent %s starting: agent %s, coordinator %s, %zu database%s", PGSHIP_VERSION,
             cfg->agent.name, cfg->agent.coordinator, s.ndbs, s.ndbs == 1 ? "" : "s");
    if (cfg->insecure_transport)
        log_warn("the connection to the coordinator is not encrypted "
                 "(allow_insecure_transport = true)");

    int64_t retry = AGENT_RETRY_MIN_MS;
    for (int first = 1; !sig_stop_requested(); first = 0) {
        probe_databases(&s);
        if (sig_stop_requested())
            break;
        sess_rc r;
        pgs_error de = {0};
        if (session_open(&s, &de) != 0) {
            session_close(&s);
            if (first) {
                rc = pgs_fail(e, de.code ? de.code : PGS_EIO, "%s", de.msg);
                goto out;
            }
            log_error("%s", de.msg);
            r = SESS_REFUSED;
        } else {
            r = session_run(&s);
            session_close(&s);
        }
        if (r == SESS_STOP || sig_stop_requested())
            break;
        if (s.welcomed)
            retry = AGENT_RETRY_MIN_MS;
        log_info("reconnecting in %" PRId64 " s", retry / 1000);
        sleep_unless_stopped(retry);
        if (!s.welcomed)
            retry = retry * 2 > AGENT_RETRY_MAX_MS ? AGENT_RETRY_MAX_MS : retry * 2;
    }
    log_info("stopped (signal %d)", sig_stop_requested());
out:
    session_close(&s);
    free(s.dbs);
    pthread_mutex_destroy(&s.mu);
    pthread_cond_destroy(&s.cv);
    return rc;
}
