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

#include <errno.h>
#include <fcntl.h>
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
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "agent/dump.h"
#include "agent/restore.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/net.h"
#include "common/sha256.h"
#include "common/spawn.h"
#include "proto/wire.h"

_Static_assert(AGENT_ENVIRONMENT_MAX <= WIRE_ENV_MAX, "AUTH must carry every environment");

#define WAIT_STEP_MS 100
#define WINDOW_MAX 64
/* The largest reply a coordinator sends: a PIECE (laid out as DATA), or a JOB, which for a restore
 * carries its profile's SQL. nng drops anything larger (and with it the connection). */
#define REPLY_PIECE_MAX (WIRE_DATA_HDR_MAX + WIRE_DATA_MAX)
#define REPLY_JOB_MAX (WIRE_HEADER_LEN + WIRE_JOB_MAX)
#define REPLY_MAX (REPLY_PIECE_MAX > REPLY_JOB_MAX ? REPLY_PIECE_MAX : REPLY_JOB_MAX)
_Static_assert(REPLY_MAX >= WIRE_HEADER_LEN + WIRE_CONTROL_MAX, "control replies fit too");
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
    wire_type req;         /* data contexts: DATA or FETCH */
    uint64_t seq;          /* the seq of that DATA or FETCH */
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
    char (*restore_keys)[WIRE_PUBKEY_TEXT_MAX + 1]; /* the public halves of restore_keys */
    size_t nrestore_keys;
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

/* Encodes req into a new message. */
static int msg_encode(const wire_msg *req, nng_msg **out, pgs_error *e)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    *out = NULL;
    if (wire_encode(req, &buf, &len, e) != 0)
        return e->code ? e->code : PGS_EFORMAT;
    int rv = nng_msg_alloc(out, len);
    if (rv == 0)
        memcpy(nng_msg_body(*out), buf, len);
    free(buf);
    if (rv != 0)
        return pgs_fail(e, PGS_ENOMEM, "%s", nng_strerror(rv));
    return 0;
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
    nng_msg *m = NULL;
    memset(rep, 0, sizeof(*rep));
    pthread_mutex_lock(&s->mu);
    int busy = s->ctl.state != SLOT_IDLE;
    pthread_mutex_unlock(&s->mu);
    if (busy) {
        log_error("internal: %s while another control request is in flight; reconnecting", name);
        return SESS_LOST;
    }
    if (msg_encode(req, &m, &e) != 0) {
        log_error("cannot send %s: %s; reconnecting", name, e.msg);
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
    int rv = slot_take(s, &s->ctl, &r);
    if (rv != 0) {
        log_warn("connection to the coordinator lost while waiting for the reply to %s (%s)", name,
                 nng_strerror(rv));
        return SESS_LOST;
    }
    if (decode_reply(r, rep, &e) != 0) {
        log_error("protocol error: malformed reply to %s: %s; closing the connection", name, e.msg);
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

/* ---- jobs ---- */

/*
 * One job at a time. A backup sends its archive as DATA frames; a restore pulls its source as
 * FETCH requests; a sanitize job does both, one after the other, under the same job id. Both
 * directions use the data contexts, so neither has more than `window` requests in flight.
 */
typedef struct job {
    session *s;
    char id[WIRE_JOB_ID_LEN + 1];
    char database[WIRE_NAME_MAX + 1];
    char what[WIRE_NAME_MAX + WIRE_JOB_ID_LEN + 40];      /* for log lines: "backup of appdb" */
    char sent_what[WIRE_NAME_MAX + WIRE_JOB_ID_LEN + 40]; /* what DATA carries: the same for a
                                                           * backup, the new backup for sanitize */
    /* DATA: the archive being sent (a backup, or a sanitize job's new backup) */
    uint64_t seq;     /* of the next DATA frame */
    uint64_t bytes;   /* archive bytes sent in frames */
    nng_msg *cur;     /* the DATA frame being filled: header room, then payload */
    size_t cur_len;   /* payload bytes in cur */
    sha256_ctx *sent; /* sanitize: the digest of what was sent (dump_run's result is not ours) */
    /* FETCH: the source being received (restore, sanitize) */
    uint64_t fetch_seq;    /* of the next FETCH to send */
    uint64_t piece_seq;    /* of the next PIECE to hand to restore_run */
    uint64_t got;          /* source bytes received */
    uint64_t source_bytes; /* the source's size, as the job said */
    sha256_ctx *got_sha;
    nng_msg *piece; /* the PIECE being handed out: its payload points into it */
    const uint8_t *piece_at;
    size_t piece_left;
    int eof;          /* EOF came and matched what arrived */
    char got_hex[SHA256_HEX_LEN + 1]; /* then: the source's SHA-256, as the catalog has it */
    int fetch_failed; /* the source failed a check, or the coordinator could not serve it */
    /* END's outcome (backup, sanitize) */
    int stored;                          /* RESULT complete */
    char store_error[WIRE_TEXT_MAX + 1]; /* why not */
    sess_rc end;                 /* not SESS_OK once the connection can no longer carry this job */
    int refused;                 /* the coordinator answered a DATA with ERROR: it failed the job */
    char why[WIRE_TEXT_MAX + 1]; /* why the job stopped, when it was us or the coordinator */
} job;

static void job_break(job *j, sess_rc rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void job_break(job *j, sess_rc rc, const char *fmt, ...)
{
    if (j->end != SESS_OK)
        return;
    j->end = rc;
    if (j->refused || j->fetch_failed)
        return; /* the first reason is the one that counts */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->why, sizeof(j->why), fmt, ap);
    va_end(ap);
}

/* The source failed (a check, or the coordinator's ERROR): the job ends in step "fetch" while the
 * connection stays. */
static void fetch_fail(job *j, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fetch_fail(job *j, const char *fmt, ...)
{
    if (j->end != SESS_OK || j->fetch_failed || j->refused)
        return;
    j->fetch_failed = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->why, sizeof(j->why), fmt, ap);
    va_end(ap);
}

/* Checks the reply to one request of the data contexts: for DATA, an ACK of exactly that job and
 * seq. A FETCH reaped here is one past the end of the source or one the job no longer needs (it
 * failed): its reply is dropped unread. */
static void job_reap(job *j, slot *sl)
{
    nng_msg *m = NULL;
    uint64_t seq = sl->seq;
    wire_type req = sl->req;
    int rv = slot_take(j->s, sl, &m);
    if (j->end != SESS_OK || (rv == 0 && req == WIRE_FETCH)) {
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
            snprintf(j->why, sizeof(j->why),
                     "the coordinator refused DATA seq %" PRIu64 ": %s (%s)", seq,
                     rep.u.error.message, rep.u.error.code);
        }
    } else {
        job_break(j, SESS_LOST, "protocol error: %s reply to DATA", wire_type_name(rep.type));
    }
    wire_msg_clear(&rep);
}

/* Reaps every reply that has arrived on the data contexts. */
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

/* Records why a wait for the reply to req seq ended without it. */
static void job_waited(job *j, int w, wire_type req, uint64_t seq)
{
    if (w == W_LOST)
        job_break(j, SESS_LOST, "connection to the coordinator lost");
    else if (w == W_TIMEOUT && req == WIRE_DATA)
        job_break(j, SESS_LOST, "no ACK of DATA seq %" PRIu64 " within %d s", seq,
                  AGENT_ACK_TIMEOUT_MS / 1000);
    else if (w == W_TIMEOUT)
        job_break(j, SESS_LOST, "no reply to %s seq %" PRIu64 " within %d s", wire_type_name(req),
                  seq, AGENT_FETCH_TIMEOUT_MS / 1000);
    else if (w == W_STOP)
        job_break(j, SESS_STOP, "agent stopping");
}

/* Waits for the next reply on the data contexts; with all set, until none is outstanding.
 * Returns 0, or -1 once the job cannot go on (j->end, j->refused or j->fetch_failed say why). A
 * stop within the grace period only ends the wait AGENT_STOP_GRACE_MS after it came. */
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
            return j->refused || j->fetch_failed ? -1 : 0;
        }
        int w = wait_locked(s, ready_any_data, NULL, oldest->deadline, grace);
        uint64_t seq = oldest->seq;
        wire_type req = oldest->req;
        pthread_mutex_unlock(&s->mu);
        job_waited(j, w, req, seq);
    }
}

/* A data context with nothing in flight, or NULL. Only this thread makes a slot busy. */
static slot *slot_idle(session *s)
{
    slot *sl = NULL;
    pthread_mutex_lock(&s->mu);
    for (uint32_t i = 0; i < s->ndata && sl == NULL; i++)
        if (s->data[i].state == SLOT_IDLE)
            sl = &s->data[i];
    pthread_mutex_unlock(&s->mu);
    return sl;
}

/* Sends the frame being filled on a free DATA context, waiting for one if the window is full. */
static int job_flush(job *j)
{
    session *s = j->s;
    if (job_wait(j, 0, 0) != 0)
        return -1;
    slot *sl = slot_idle(s);
    if (sl == NULL)
        abort(); /* job_wait returned with a free slot */
    wire_data_header(nng_msg_body(j->cur), j->id, j->seq, j->cur_len);
    if (j->sent != NULL)
        sha256_update(j->sent, (const uint8_t *)nng_msg_body(j->cur) + WIRE_DATA_HDR_MAX,
                      j->cur_len);
    sl->seq = j->seq;
    sl->req = WIRE_DATA;
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
    log_error("job %s: %s failed: %s", j->id, j->sent_what, m.u.fail.error);
    snprintf(j->store_error, sizeof(j->store_error), "%s", m.u.fail.error);
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

/* Sends END and logs the coordinator's RESULT (j->stored, or j->store_error says why not). */
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
                 "whether %s is complete",
                 j->id, j->sent_what);
    if (rc != SESS_OK)
        return rc;
    if (rep.type == WIRE_ERROR) {
        snprintf(j->store_error, sizeof(j->store_error), "the coordinator refused END: %s (%s)",
                 rep.u.error.message, rep.u.error.code);
        log_error("job %s: %s failed: %s", j->id, j->sent_what, j->store_error);
    } else if (rep.type == WIRE_RESULT && strcmp(rep.u.result.job, j->id) == 0) {
        if (rep.u.result.complete) {
            j->stored = 1;
            log_info("job %s: %s complete: %s in %" PRIu64 " frames, sha256 %s, stored as %s",
                     j->id, j->sent_what, fs_human_bytes(j->bytes, size, sizeof(size)), j->seq, hex,
                     rep.u.result.storage_key);
        } else {
            snprintf(j->store_error, sizeof(j->store_error), "%s", rep.u.result.error);
            log_error("job %s: %s failed at the coordinator: %s", j->id, j->sent_what,
                      rep.u.result.error);
        }
    } else {
        return unexpected("END", &rep);
    }
    wire_msg_clear(&rep);
    return SESS_OK;
}

static sess_rc run_backup(session *s, const wire_msg *jm)
{
    const agent_config *cfg = s->cfg;
    job j;
    memset(&j, 0, sizeof(j));
    j.s = s;
    snprintf(j.id, sizeof(j.id), "%s", jm->u.job.job);
    snprintf(j.database, sizeof(j.database), "%s", jm->u.job.database);
    snprintf(j.what, sizeof(j.what), "backup of %s", j.database);
    snprintf(j.sent_what, sizeof(j.sent_what), "%s", j.what);
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

/* ---- the source of a restore: FETCH -> PIECE ... EOF ---- */

/* Sends FETCH for the next pieces on every free data context: up to `window` in flight, in seq
 * order. None after EOF came. */
static void fetch_fill(job *j)
{
    session *s = j->s;
    slot *sl;
    while (!j->eof && j->end == SESS_OK && !j->fetch_failed && (sl = slot_idle(s)) != NULL) {
        wire_msg m = {.type = WIRE_FETCH};
        snprintf(m.u.fetch.job, sizeof(m.u.fetch.job), "%s", j->id);
        m.u.fetch.seq = j->fetch_seq;
        nng_msg *msg = NULL;
        pgs_error e = {0};
        if (msg_encode(&m, &msg, &e) != 0) {
            job_break(j, SESS_LOST, "cannot send FETCH: %s", e.msg);
            return;
        }
        sl->seq = j->fetch_seq++;
        sl->req = WIRE_FETCH;
        slot_send(s, sl, msg, now_ms() + AGENT_FETCH_TIMEOUT_MS);
    }
}

/* The data context carrying the FETCH of seq, or NULL. */
static slot *fetch_slot(session *s, uint64_t seq)
{
    slot *sl = NULL;
    pthread_mutex_lock(&s->mu);
    for (uint32_t i = 0; i < s->ndata && sl == NULL; i++)
        if (s->data[i].state != SLOT_IDLE && s->data[i].req == WIRE_FETCH && s->data[i].seq == seq)
            sl = &s->data[i];
    pthread_mutex_unlock(&s->mu);
    return sl;
}

/* Checks EOF against what arrived: the piece count, the size (also the job's), the SHA-256. */
static void fetch_eof(job *j, const wire_msg *rep)
{
    uint8_t d[SHA256_LEN];
    char want[SHA256_HEX_LEN + 1], got[SHA256_HEX_LEN + 1];
    sha256_final(j->got_sha, d);
    hex_encode(rep->u.eof.sha256, SHA256_LEN, want);
    hex_encode(d, SHA256_LEN, got);
    if (rep->u.eof.pieces != j->piece_seq)
        fetch_fail(j, "the source ended after %" PRIu64 " pieces, but EOF says %" PRIu64,
                   j->piece_seq, rep->u.eof.pieces);
    else if (rep->u.eof.bytes != j->got)
        fetch_fail(j, "the source ended after %" PRIu64 " bytes, but EOF says %" PRIu64, j->got,
                   rep->u.eof.bytes);
    else if (j->got != j->source_bytes)
        fetch_fail(j, "the source is %" PRIu64 " bytes, but the job said %" PRIu64, j->got,
                   j->source_bytes);
    else if (memcmp(d, rep->u.eof.sha256, SHA256_LEN) != 0)
        fetch_fail(j,
                   "the source's SHA-256 is %s, but the coordinator's catalog says %s: the "
                   "archive changed in storage or on the way",
                   got, want);
    else {
        j->eof = 1;
        memcpy(j->got_hex, got, sizeof(j->got_hex));
    }
}

/* Brings in the next piece of the source, or its EOF. Returns 0 with j->piece_left > 0 or j->eof
 * set, or -1 when the job cannot go on (j->end, j->refused or j->fetch_failed say why). */
static int fetch_next(job *j)
{
    session *s = j->s;
    fetch_fill(j);
    if (j->end != SESS_OK || j->fetch_failed)
        return -1;
    slot *sl = fetch_slot(s, j->piece_seq);
    if (sl == NULL)
        abort(); /* fetch_fill keeps a FETCH in flight for every seq from piece_seq on */
    pthread_mutex_lock(&s->mu);
    int w = wait_locked(s, ready_slot, sl, sl->deadline, 0);
    pthread_mutex_unlock(&s->mu);
    if (w != W_READY) {
        job_waited(j, w, WIRE_FETCH, j->piece_seq);
        return -1;
    }
    nng_msg *m = NULL;
    int rv = slot_take(s, sl, &m);
    if (rv != 0) {
        job_break(j, SESS_LOST, "connection to the coordinator lost (%s)", nng_strerror(rv));
        return -1;
    }
    wire_msg rep;
    pgs_error e = {0};
    if (wire_decode(nng_msg_body(m), nng_msg_len(m), &rep, &e) != 0) {
        nng_msg_free(m);
        job_break(j, SESS_LOST, "protocol error: malformed reply to FETCH seq %" PRIu64 ": %s",
                  j->piece_seq, e.msg);
        return -1;
    }
    switch (rep.type) {
    case WIRE_PIECE:
        if (strcmp(rep.u.data.job, j->id) != 0 || rep.u.data.seq != j->piece_seq) {
            job_break(j, SESS_LOST,
                      "protocol error: PIECE of job %s seq %" PRIu64 " for FETCH seq %" PRIu64,
                      rep.u.data.job, rep.u.data.seq, j->piece_seq);
        } else if (rep.u.data.len > j->source_bytes - j->got) {
            fetch_fail(j, "the coordinator sent more than the source's %" PRIu64 " bytes",
                       j->source_bytes);
        } else {
            sha256_update(j->got_sha, rep.u.data.payload, rep.u.data.len);
            j->got += rep.u.data.len;
            j->piece_seq++;
            j->piece = m; /* the payload points into it */
            j->piece_at = rep.u.data.payload;
            j->piece_left = rep.u.data.len;
            m = NULL;
            fetch_fill(j); /* the context is free again: keep the window full */
        }
        break;
    case WIRE_EOF:
        if (strcmp(rep.u.eof.job, j->id) != 0)
            job_break(j, SESS_LOST, "protocol error: EOF of job %s for job %s", rep.u.eof.job,
                      j->id);
        else
            fetch_eof(j, &rep);
        break;
    case WIRE_ERROR:
        /* job_failed: the coordinator cannot read the object; unknown_job: it dropped the job. */
        fetch_fail(j, "the coordinator could not serve the source (FETCH seq %" PRIu64 "): %s (%s)",
                   j->piece_seq, rep.u.error.message, rep.u.error.code);
        break;
    default:
        job_break(j, SESS_LOST, "protocol error: %s reply to FETCH", wire_type_name(rep.type));
        break;
    }
    wire_msg_clear(&rep);
    if (m != NULL)
        nng_msg_free(m);
    if (j->eof) {
        /* The FETCHes sent past the end are answered (EOF again, or an ERROR) before the source
         * says it ended, so that the contexts are free for what follows (a sanitize job's DATA). */
        if (job_wait(j, 1, 0) != 0)
            return -1;
        log_info("job %s: %s: source received, %" PRIu64 " bytes in %" PRIu64 " pieces, sha256 "
                 "verified",
                 j->id, j->what, j->got, j->piece_seq);
        return 0;
    }
    return j->end == SESS_OK && !j->fetch_failed && j->piece_left > 0 ? 0 : -1;
}

/* restore_run's source: the archive's bytes in order, then 0 once EOF matched them; -1 when the
 * source failed or the connection cannot carry the job (restore_run then drops its temporary
 * database). */
static ssize_t fetch_source(void *arg, void *buf, size_t len)
{
    job *j = arg;
    while (j->piece_left == 0) {
        if (j->piece != NULL) {
            nng_msg_free(j->piece);
            j->piece = NULL;
        }
        if (j->eof)
            return 0;
        if (fetch_next(j) != 0)
            return -1;
    }
    size_t n = len < j->piece_left ? len : j->piece_left;
    memcpy(buf, j->piece_at, n);
    j->piece_at += n;
    j->piece_left -= n;
    return (ssize_t)n;
}

/* ---- a restore or sanitize job ---- */

/* restore_run's on_step: logs the step and tells the coordinator (STEP -> ACK). Anything but the
 * ACK (a lost connection, a stop, a coordinator that no longer knows the job) stops the restore
 * before the step: nothing is swapped in that the coordinator would not record, and the job ends
 * without a REPORT. */
static int job_step(void *arg, const char *step, const char *detail)
{
    job *j = arg;
    session *s = j->s;
    wire_msg m = {.type = WIRE_STEP}, rep;
    snprintf(m.u.step.job, sizeof(m.u.step.job), "%s", j->id);
    snprintf(m.u.step.step, sizeof(m.u.step.step), "%s", step);
    if (detail != NULL && detail[0] != '\0')
        text_clean(detail, m.u.step.detail, sizeof(m.u.step.detail));
    log_info("job %s: %s: step %s%s%s", j->id, j->what, m.u.step.step,
             m.u.step.detail[0] ? ": " : "", m.u.step.detail);
    if (j->end != SESS_OK)
        return -1;
    sess_rc rc = request(s, &m, AGENT_STEP_TIMEOUT_MS, 0, &rep);
    if (rc == SESS_STOP) {
        job_break(j, SESS_STOP, "agent stopping");
        return -1;
    }
    if (rc != SESS_OK) {
        job_break(j, rc, "connection to the coordinator lost");
        return -1;
    }
    int ok = 0;
    if (rep.type == WIRE_ERROR) {
        log_warn("job %s: the coordinator refused STEP %s: %s (%s)", j->id, m.u.step.step,
                 rep.u.error.message, rep.u.error.code);
        job_break(j, SESS_LOST, "the coordinator refused STEP %s: %s", m.u.step.step,
                  rep.u.error.message);
    } else if (rep.type != WIRE_ACK || strcmp(rep.u.ack.job, j->id) != 0) {
        job_break(j, SESS_LOST, "protocol error: %s reply to STEP", wire_type_name(rep.type));
    } else {
        ok = 1;
    }
    wire_msg_clear(&rep);
    return ok ? 0 : -1;
}

/* Cuts a report to fit REPORT (WIRE_REPORT_MAX with room for the other fields): the per-table
 * counts first, then the check failures, halved until it fits; the report keeps their totals and
 * says it was cut. As a last resort only the steps are kept. */
#define REPORT_SLACK (16u << 10)

static size_t report_size(const json_t *report)
{
    /* The largest encoding the codec could choose: ASCII only, every other character escaped. */
    return json_dumpb(report, NULL, 0, JSON_COMPACT | JSON_ENSURE_ASCII);
}

static void report_bound(json_t *report)
{
    static const char *const lists[] = {"tables", "check_failures"};
    static const char *const totals[] = {"tables_total", "check_failures_total"};
    size_t li = 0;
    while (report_size(report) > WIRE_REPORT_MAX - REPORT_SLACK) {
        json_t *a = NULL;
        for (; li < 2; li++)
            if (json_array_size(a = json_object_get(report, lists[li])) > 0)
                break;
        json_object_set_new(report, "truncated", json_true());
        if (li == 2) {
            json_t *steps = json_incref(json_object_get(report, "steps"));
            json_object_clear(report);
            json_object_set_new(report, "truncated", json_true());
            if (steps != NULL)
                json_object_set_new(report, "steps", steps);
            return;
        }
        size_t n = json_array_size(a);
        if (json_object_get(report, totals[li]) == NULL)
            json_object_set_new(report, totals[li], json_integer((json_int_t)n));
        json_t *half = json_array();
        for (size_t i = 0; i < n / 2; i++)
            json_array_append(half, json_array_get(a, i));
        json_object_set_new(report, lists[li], half);
    }
}

/* Sends the job's REPORT (always its last request) and logs the outcome and the RESULT. Takes
 * report. */
static sess_rc job_report(job *j, int ok, const char *step, const char *error, json_t *report,
                          int64_t started)
{
    session *s = j->s;
    wire_msg m = {.type = WIRE_REPORT}, rep;
    snprintf(m.u.report.job, sizeof(m.u.report.job), "%s", j->id);
    m.u.report.ok = ok;
    snprintf(m.u.report.step, sizeof(m.u.report.step), "%s", ok ? "done" : step);
    if (!ok)
        text_clean(error, m.u.report.error, sizeof(m.u.report.error));
    m.u.report.report = report != NULL ? report : json_object();
    report_bound(m.u.report.report);
    if (ok)
        log_info("job %s: %s complete in %.1f s", j->id, j->what,
                 (double)(now_ms() - started) / 1000.0);
    else
        log_error("job %s: %s failed in step %s: %s", j->id, j->what, m.u.report.step,
                  m.u.report.error);
    int stopping = sig_stop_requested() != 0;
    if (stopping) {
        /* Cleaning up may have taken the stop's grace: the REPORT gets its own. */
        pthread_mutex_lock(&s->mu);
        s->stop_at = now_ms();
        pthread_mutex_unlock(&s->mu);
    }
    sess_rc rc = request(s, &m, AGENT_REPORT_TIMEOUT_MS, 1, &rep);
    wire_msg_clear(&m);
    if (rc == SESS_STOP)
        log_warn("job %s: stopping before the coordinator answered REPORT", j->id);
    if (rc != SESS_OK)
        return rc;
    if (rep.type == WIRE_ERROR)
        log_warn("job %s: the coordinator refused REPORT: %s (%s)", j->id, rep.u.error.message,
                 rep.u.error.code);
    else if (rep.type != WIRE_RESULT || strcmp(rep.u.result.job, j->id) != 0)
        return unexpected("REPORT", &rep);
    else if (rep.u.result.complete != ok)
        log_warn("job %s: the coordinator recorded %s as %s%s%s", j->id, j->what,
                 rep.u.result.complete ? "complete" : "failed", rep.u.result.error[0] ? ": " : "",
                 rep.u.result.error);
    wire_msg_clear(&rep);
    return stopping ? SESS_STOP : SESS_OK;
}

/* A sanitize job's recipients as key files, which is what dump_run takes: each one parsed, then
 * held in an anonymous in-memory file (memfd) named by /proc/self/fd, so that nothing is written
 * to the spool and a crash leaves nothing behind. */
typedef struct rcpt_files {
    int fds[WIRE_RECIPIENTS_MAX];
    char paths[WIRE_RECIPIENTS_MAX][40];
    size_t n;
} rcpt_files;

static void rcpt_files_close(rcpt_files *rf)
{
    for (size_t i = 0; i < rf->n; i++)
        close(rf->fds[i]);
    rf->n = 0;
}

static int rcpt_files_open(rcpt_files *rf, const wire_restore_spec *r, char *why, size_t whycap)
{
    memset(rf, 0, sizeof(*rf));
    if (r->nrecipients == 0 || r->nrecipients > WIRE_RECIPIENTS_MAX) {
        snprintf(why, whycap, "the job names %zu recipients; a sanitize job needs 1-%d",
                 r->nrecipients, WIRE_RECIPIENTS_MAX);
        return -1;
    }
    for (size_t i = 0; i < r->nrecipients; i++) {
        pgs_pubkey key;
        pgs_error e = {0};
        char line[WIRE_PUBKEY_TEXT_MAX + 2];
        if (key_parse_public(r->recipients[i], strlen(r->recipients[i]), &key, &e) != 0) {
            snprintf(why, whycap, "recipient %zu of the job is not a public key: %s", i + 1, e.msg);
            rcpt_files_close(rf);
            return -1;
        }
        int fd = memfd_create("pgship-recipient", MFD_CLOEXEC);
        if (fd < 0 || key_format_public(&key, line, sizeof(line)) != 0 ||
            fs_write_all(fd, line, strlen(line)) != 0) {
            snprintf(why, whycap, "cannot hold the job's recipient keys in memory: %s",
                     strerror(errno));
            if (fd >= 0)
                close(fd);
            rcpt_files_close(rf);
            return -1;
        }
        rf->fds[rf->n] = fd;
        snprintf(rf->paths[rf->n], sizeof(rf->paths[rf->n]), "/proc/self/fd/%d", fd);
        rf->n++;
    }
    return 0;
}

/* The sanitized backup's END: its size and digest are what was sent; its manifest comes with
 * restore_run's report ("dump"), which also says what dump_run counted. */
static sess_rc sanitize_end(job *j, const json_t *report)
{
    dump_result res;
    memset(&res, 0, sizeof(res));
    res.archive_bytes = j->bytes;
    sha256_final(j->sent, res.sha256);
    const json_t *dump = json_object_get(report, "dump");
    const json_t *man = json_object_get(dump, "manifest");
    const char *sha = json_string_value(json_object_get(dump, "sha256"));
    json_t *ab = json_object_get(dump, "archive_bytes");
    char hex[SHA256_HEX_LEN + 1];
    hex_encode(res.sha256, SHA256_LEN, hex);
    if ((sha != NULL && strcmp(sha, hex) != 0) ||
        (json_is_integer(ab) && (uint64_t)json_integer_value(ab) != j->bytes))
        return job_fail(j, "internal error: the dump's size or SHA-256 differs from what was sent");
    if (json_is_object(man))
        res.manifest_json = json_dumps(man, JSON_COMPACT);
    sess_rc rc = job_end(j, &res);
    free(res.manifest_json);
    return rc;
}

static sess_rc run_restore(session *s, const wire_msg *jm)
{
    const agent_config *cfg = s->cfg;
    const wire_restore_spec *r = jm->u.job.restore;
    int sanitize = strcmp(jm->u.job.kind, "sanitize") == 0;
    int verify = strcmp(jm->u.job.kind, "verify") == 0;
    int64_t started = now_ms();
    job j;
    memset(&j, 0, sizeof(j));
    j.s = s;
    snprintf(j.id, sizeof(j.id), "%s", jm->u.job.job);
    snprintf(j.database, sizeof(j.database), "%s", jm->u.job.database);
    if (sanitize) {
        snprintf(j.what, sizeof(j.what), "sanitize of %s in %s", r->source, j.database);
        snprintf(j.sent_what, sizeof(j.sent_what), "sanitized backup %s", r->output);
    } else if (verify && r->restore_test) {
        snprintf(j.what, sizeof(j.what), "verify of %s with a restore test beside %s", r->source,
                 j.database);
    } else if (verify) {
        snprintf(j.what, sizeof(j.what), "verify of %s", r->source);
    } else
        snprintf(j.what, sizeof(j.what), "restore of %s into %s", r->source, j.database);
    const char *keep = !sanitize && r->keep_old ? ", keep old" : "";
    if (verify)
        log_info("job %s: %s started%s%s", j.id, j.what,
                 r->restore_test ? ": scratch database " : "", r->restore_test ? r->scratch : "");
    else
        log_info("job %s: %s started (profile %s, %u job%s%s%s%s)", j.id, j.what,
                 r->profile[0] ? r->profile : "none", r->jobs, r->jobs == 1 ? "" : "s",
                 r->schema_only ? ", schema only" : "", r->data_only ? ", data only" : "", keep);
    char why[WIRE_TEXT_MAX + 1];
    const agent_database_config *d = find_database(cfg, j.database);
    if (d == NULL) {
        snprintf(why, sizeof(why), "database %s is not configured on agent %s", j.database,
                 cfg->agent.name);
        return job_report(&j, 0, "dispatch", why, NULL, started);
    }

    const char *schemas[WIRE_PATTERNS_MAX], *tables[WIRE_PATTERNS_MAX];
    for (size_t i = 0; i < r->nschemas && i < WIRE_PATTERNS_MAX; i++)
        schemas[i] = r->schemas[i];
    for (size_t i = 0; i < r->ntables && i < WIRE_PATTERNS_MAX; i++)
        tables[i] = r->tables[i];
    restore_opts o = {.id = j.id,
                      .conninfo = d->conninfo,
                      .target = d->name,
                      .src = fetch_source,
                      .src_arg = &j,
                      .keys = cfg->restore_keys,
                      .nkeys = cfg->nrestore_keys,
                      .spool_dir = cfg->agent.spool_dir,
                      .pg_bindir = NULL,
                      .jobs = (int)r->jobs,
                      .schema_only = r->schema_only,
                      .data_only = r->data_only,
                      .no_owner = r->no_owner,
                      .role = r->role[0] ? r->role : NULL,
                      .schemas = schemas,
                      .nschemas = r->nschemas < WIRE_PATTERNS_MAX ? r->nschemas : WIRE_PATTERNS_MAX,
                      .tables = tables,
                      .ntables = r->ntables < WIRE_PATTERNS_MAX ? r->ntables : WIRE_PATTERNS_MAX,
                      .profile = r->profile[0] ? r->profile : NULL,
                      .sanitize_sql = r->sanitize_sql,
                      .check_sql = r->check_sql,
                      .keep_old = r->keep_old,
                      .scratch = verify && r->restore_test ? r->scratch : NULL,
                      .on_step = job_step,
                      .step_arg = &j};
    dump_opts redump;
    rcpt_files rf;
    memset(&rf, 0, sizeof(rf));
    if (sanitize) {
        /* Sealed to the job's recipients only (the target environment's keys), never to this
         * agent's own recipients: the sanitized copy is meant for the target's hosts. */
        if (rcpt_files_open(&rf, r, why, sizeof(why)) != 0)
            return job_report(&j, 0, "dispatch", why, NULL, started);
        dump_opts_init(&redump);
        for (size_t i = 0; i < rf.n; i++)
            redump.recipients.v[redump.recipients.n++] = rf.paths[i];
        redump.sink = job_sink;
        redump.sink_arg = &j;
        redump.spool_dir = cfg->agent.spool_dir;
        redump.progress = 0;
        o.redump = &redump;
    }
    j.source_bytes = r->source_bytes;
    j.got_sha = sha256_new();
    j.sent = sanitize ? sha256_new() : NULL;
    if (j.got_sha == NULL || (sanitize && j.sent == NULL)) {
        sha256_free(j.got_sha);
        sha256_free(j.sent);
        rcpt_files_close(&rf);
        return job_report(&j, 0, "dispatch", "out of memory", NULL, started);
    }

    json_t *report = NULL;
    char step[32] = "", size[32];
    pgs_error e = {0};
    snprintf(why, sizeof(why), "%s from the coordinator",
             fs_human_bytes(r->source_bytes, size, sizeof(size)));
    job_step(&j, "fetch", why);
    /* A verification without a restore test reads the archive to its verified end and keeps
     * nothing; with one, it is a restore into the scratch database, which is then dropped. */
    int rc = verify && !r->restore_test ? restore_verify(&o, &report, step, &e)
                                        : restore_run(&o, &report, step, &e);
    if (j.piece != NULL)
        nng_msg_free(j.piece);
    j.piece = NULL;
    if (sanitize && rc == 0 && j.cur_len > 0 && j.end == SESS_OK && !j.refused)
        job_flush(&j);
    if (j.cur != NULL)
        nng_msg_free(j.cur);
    j.cur = NULL;
    /* Every FETCH and DATA sent is answered (or the connection given up) before FAIL, END or
     * REPORT: the contexts are free for the next job. */
    job_wait(&j, 1, 1);
    rcpt_files_close(&rf);
    if (rc == 0 && !j.eof && !j.fetch_failed)
        log_warn("job %s: %s: restore_run ended before the source's EOF", j.id, j.what);
    if (verify && report != NULL) {
        /* What the fetch checked: the whole object against the catalog's size and digest. */
        json_object_set_new(report, "object",
                            j.eof ? json_pack("{s:I, s:I, s:s}", "bytes", (json_int_t)j.got,
                                              "pieces", (json_int_t)j.piece_seq, "sha256",
                                              j.got_hex)
                                  : json_null());
        json_object_set_new(report, "restore_test", json_boolean(r->restore_test));
    }
    if (verify && rc == 0 && !j.eof && !j.fetch_failed && j.end == SESS_OK) {
        /* A verification proves the whole object, or nothing. */
        rc = pgs_fail(&e, PGS_ETRUNC,
                      "the archive ended before the object did: its SHA-256 was not checked");
        snprintf(step, sizeof(step), "fetch");
    }

    sess_rc out = SESS_OK;
    if (j.end == SESS_LOST) {
        /* A step cannot be interrupted: a connection lost after the source arrived does not
         * stop restore_run, which may then have finished. */
        if (rc == 0 && !sanitize)
            log_warn("job %s: %s complete, but the coordinator cannot be told: %s", j.id, j.what,
                     j.why);
        else
            log_error("job %s: %s failed: %s", j.id, j.what, j.why);
        json_decref(report);
        out = SESS_LOST;
    } else if (j.fetch_failed) {
        out = job_report(&j, 0, "fetch", j.why, report, started);
    } else if ((j.end == SESS_STOP || sig_stop_requested()) && (rc != 0 || sanitize)) {
        /* Stopped: restore_run has dropped its temporary database; say so within the grace. */
        if (sanitize && j.seq > 0)
            job_fail(&j, "agent stopping");
        job_report(&j, 0, step[0] ? step : "dispatch", "agent stopping", report, started);
        out = SESS_STOP;
    } else if (rc != 0 || j.refused) {
        const char *err = j.refused ? j.why : e.msg[0] ? e.msg : "failed";
        /* No step: restore_run refused the job's options before starting. */
        const char *at = step[0] ? step : "dispatch";
        /* A sanitize job that has begun sending closes its new backup first, as a backup does. */
        if (sanitize && j.seq > 0)
            out = job_fail(&j, err);
        if (out == SESS_OK)
            out = job_report(&j, 0, at, err, report, started);
        else
            json_decref(report);
    } else if (sanitize) {
        out = sanitize_end(&j, report);
        if (out == SESS_OK)
            out = job_report(&j, j.stored, "upload", j.store_error, report, started);
        else
            json_decref(report);
    } else {
        out = job_report(&j, 1, "done", "", report, started);
    }
    sha256_free(j.got_sha);
    sha256_free(j.sent);
    return out;
}

static sess_rc run_job(session *s, const wire_msg *jm)
{
    if (strcmp(jm->u.job.kind, "backup") == 0)
        return run_backup(s, jm);
    if (jm->u.job.restore != NULL &&
        (strcmp(jm->u.job.kind, "restore") == 0 || strcmp(jm->u.job.kind, "sanitize") == 0 ||
         strcmp(jm->u.job.kind, "verify") == 0))
        return run_restore(s, jm);
    /* The codec refuses other kinds; this is a guard against a codec that stops doing so. */
    log_error("protocol error: a JOB of kind \"%s\"%s; closing the connection", jm->u.job.kind,
              jm->u.job.restore == NULL ? " without its restore spec" : "");
    return SESS_LOST;
}

/* ---- start-up ---- */

/* A server as libpq would reach it (the conninfo's host, hostaddr, port, service and user;
 * environment defaults are the same for every database), so that restore_cleanup runs once per
 * server. Never logged. */
static void server_key(const char *conninfo, char *out, size_t cap)
{
    static const char *const keys[] = {"host", "hostaddr", "port", "service", "user", NULL};
    PQconninfoOption *opts = PQconninfoParse(conninfo, NULL);
    size_t o = 0;
    out[0] = '\0';
    for (size_t k = 0; keys[k] != NULL && opts != NULL; k++) {
        const char *v = "";
        for (PQconninfoOption *p = opts; p->keyword != NULL; p++)
            if (strcmp(p->keyword, keys[k]) == 0 && p->val != NULL)
                v = p->val;
        int n = snprintf(out + o, cap - o, "%s\x1f", v);
        if (n < 0 || (size_t)n >= cap - o)
            break;
        o += (size_t)n;
    }
    if (opts == NULL)
        snprintf(out, cap, "%s", conninfo); /* unparsable: never equal to another */
    PQconninfoFree(opts);
}

/* A restore that died with the agent (kill -9, a crash, a power cut) left its temporary database
 * behind, or a database closed to connections mid-swap, and its decrypted dump in the spool:
 * restore_cleanup and restore_spool_cleanup put that right before any new work, the former once
 * per server. Failures are warnings: the database may be down now, and backups can go on. */
static void cleanup_restores(const agent_config *cfg)
{
    enum { KEY_MAX = 1024 };
    char(*seen)[KEY_MAX] = calloc(cfg->ndatabases ? cfg->ndatabases : 1, KEY_MAX);
    size_t nseen = 0;
    for (size_t i = 0; i < cfg->ndatabases && !sig_stop_requested(); i++) {
        const agent_database_config *d = &cfg->databases[i];
        int dup = 0;
        if (seen != NULL) {
            server_key(d->conninfo, seen[nseen], KEY_MAX);
            for (size_t k = 0; k < nseen && !dup; k++)
                dup = strcmp(seen[k], seen[nseen]) == 0;
            if (!dup)
                nseen++;
        }
        if (dup)
            continue;
        pgs_error e = {0};
        int n = restore_cleanup(d->conninfo, &e);
        if (n < 0)
            log_warn("database %s: cannot clean up after earlier restores on its server: %s",
                     d->name, e.msg);
        else
            log_debug("database %s: %d temporary database%s of earlier restores dropped on its "
                      "server",
                      d->name, n, n == 1 ? "" : "s");
    }
    free(seen);
    int spools = restore_spool_cleanup(cfg->agent.spool_dir);
    if (spools > 0)
        log_info("removed %d spool director%s of earlier restores", spools,
                 spools == 1 ? "y" : "ies");
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
    a.u.auth.restore_keys = s->restore_keys;
    a.u.auth.nrestore_keys = s->nrestore_keys;
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
    s.nrestore_keys = cfg->nrestore_keys;
    s.restore_keys = calloc(s.nrestore_keys ? s.nrestore_keys : 1, sizeof(*s.restore_keys));
    if (s.restore_keys == NULL) {
        rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
        goto out;
    }
    char ids[WIRE_RECIPIENTS_MAX * (KEY_ID_HEX_LEN + 2) + 1] = "";
    for (size_t i = 0; i < s.nrestore_keys; i++) {
        const pgs_seckey *k = &cfg->restore_keys[i];
        pgs_pubkey pub;
        memset(&pub, 0, sizeof(pub));
        memcpy(pub.pk, k->pk, KEY_LEN);
        memcpy(pub.id, k->id, KEY_ID_LEN);
        memcpy(pub.name, k->name, sizeof(pub.name));
        if (key_format_public(&pub, s.restore_keys[i], sizeof(s.restore_keys[i])) != 0) {
            rc = pgs_fail(e, PGS_ELIMIT, "restore key %zu does not fit the wire", i + 1);
            goto out;
        }
        /* The key line without its newline: the wire carries the line, not the file. */
        s.restore_keys[i][strcspn(s.restore_keys[i], "\r\n")] = '\0';
        size_t o = strlen(ids);
        char id[KEY_ID_HEX_LEN + 1];
        key_id_hex(k->id, id);
        snprintf(ids + o, sizeof(ids) - o, "%s%s", i ? ", " : "", id);
    }
    log_info("pgship-agent %s starting: agent %s, coordinator %s, %zu database%s, %s%s",
             PGSHIP_VERSION, cfg->agent.name, cfg->agent.coordinator, s.ndbs,
             s.ndbs == 1 ? "" : "s", s.nrestore_keys ? "restore keys " : "no restore keys", ids);
    if (cfg->insecure_transport)
        log_warn("the connection to the coordinator is not encrypted "
                 "(allow_insecure_transport = true)");
    cleanup_restores(cfg);

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
    free(s.restore_keys);
    pthread_mutex_destroy(&s.mu);
    pthread_cond_destroy(&s.cv);
    return rc;
}
