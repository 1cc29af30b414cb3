/*
 * A scripted coordinator for the agent daemon's integration test (agent_daemon.sh): a REP socket
 * that answers the agent by the protocol, checks what it sends, and prints one line on stdout per
 * event so that the test can wait for and assert them:
 *
 *   hello AGENT KEY_ID VERSION        refused AGENT (--refuse N: the first N HELLOs get ERROR)
 *   auth ok DB:ENV:VERSION ...        auth badsig
 *   job ID DB                         data ID SEQ LEN        dropped ID SEQ
 *   data-refused ID SEQ (--fail-at SEQ: the first job's DATA SEQ and every later one get
 *                        ERROR job_failed)
 *   end ok ID CHUNKS BYTES            end mismatch ID WHAT
 *   fail ID ERROR                     garbage                protocol ERROR
 *   silent (--silent-poll: the first POLL gets no answer)
 *   restore-key TEXT                  (after auth ok: each public key AUTH announced)
 *
 * Restore and sanitize jobs (--jobs restore:DB or sanitize:DB) serve the archive --source FILE:
 *   job ID DB restore|sanitize        fetch ID SEQ piece|eof|past-end|refused
 *   step ID STEP DETAIL               report ID ok|failed STEP ERROR
 *   report-json ID {the report}       (then RESULT; REPORT ends the job)
 * A sanitize job's DATA/END are taken as for a backup (into OUTDIR/ID.pgship), sealed to
 * --recipient FILE.pub (repeatable). --bad-sha sends EOF with a wrong SHA-256; --fetch-fail-at SEQ
 * answers that FETCH and every later one with ERROR job_failed; --fetch-drop-at SEQ closes the
 * connection at that FETCH (once: "dropped ID SEQ"); --fetch-delay MS waits before each PIECE;
 * --sanitize-sql FILE and --check-sql FILE go into the spec.
 *
 * It hands out the jobs of --jobs one per POLL (each once, across reconnections), answers
 * the other POLLs with IDLE after --heartbeat ms, and exits 0 --linger seconds after the last job
 * ended (END or FAIL; REPORT for restore and sanitize) or was dropped. The archive of each job
 * goes to OUTDIR/ID.pgship.
 *
 * usage: agent_peer URL --identity FILE.pub --out OUTDIR [--cert F --key F]
 *                   [--jobs [KIND:]DB,...] [--window N] [--data-max N] [--heartbeat MS]
 *                   [--drop-at SEQ] [--fail-at SEQ] [--ack-delay MS] [--refuse N]
 *                   [--garbage-poll] [--silent-poll] [--linger S]
 *                   [--source FILE] [--recipient FILE.pub]... [--bad-sha] [--fetch-fail-at SEQ]
 *                   [--fetch-drop-at SEQ] [--fetch-delay MS] [--sanitize-sql FILE]
 *                   [--check-sql FILE]
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/supplemental/util/platform.h>
#include <sodium.h>

#include "common/keys.h"
#include "common/net.h"
#include "common/sha256.h"
#include "proto/wire.h"

static nng_socket sock;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static void reply(const wire_msg *m)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    pgs_error e = {0};
    nng_msg *msg = NULL;
    if (wire_encode(m, &buf, &len, &e) != 0 || nng_msg_alloc(&msg, 0) != 0 ||
        nng_msg_append(msg, buf, len) != 0 || nng_sendmsg(sock, msg, 0) != 0) {
        fprintf(stderr, "agent_peer: cannot reply: %s\n", e.msg);
        exit(1);
    }
    free(buf);
}

static void reply_type(wire_type t)
{
    wire_msg m = {.type = t};
    reply(&m);
}

static void reply_error(const char *code, const char *message)
{
    wire_msg r = {.type = WIRE_ERROR};
    snprintf(r.u.error.code, sizeof(r.u.error.code), "%s", code);
    snprintf(r.u.error.message, sizeof(r.u.error.message), "%s", message);
    reply(&r);
}

/* A whole (small) file into memory; exits on failure. */
static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "agent_peer: %s: cannot open\n", path);
        exit(1);
    }
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap + 1);
    for (size_t r; buf != NULL && (r = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += r;
        if (n == cap)
            buf = realloc(buf, (cap *= 2) + 1);
    }
    fclose(f);
    if (buf == NULL) {
        fprintf(stderr, "agent_peer: out of memory\n");
        exit(1);
    }
    buf[n] = 0;
    *len = n;
    return buf;
}

/* The spec of a restore or sanitize job serving the --source archive. */
static wire_restore_spec *restore_spec(int sanitize, uint64_t bytes, const char *sanitize_sql,
                                       const char *check_sql, char **rcpts, int nrcpts, unsigned n)
{
    wire_restore_spec *r = calloc(1, sizeof(*r));
    snprintf(r->source, sizeof(r->source), "20261121T110000Z-%08x", n);
    r->source_bytes = bytes;
    r->jobs = 2;
    if (sanitize_sql != NULL) {
        snprintf(r->profile, sizeof(r->profile), "test-profile");
        r->sanitize_sql = strdup(sanitize_sql);
    }
    if (check_sql != NULL)
        r->check_sql = strdup(check_sql);
    if (sanitize) {
        snprintf(r->output, sizeof(r->output), "20261121T130000Z-%08x", n);
        r->nrecipients = (size_t)nrcpts;
        r->recipients = calloc((size_t)nrcpts + 1, sizeof(*r->recipients));
        for (int i = 0; i < nrcpts; i++) {
            size_t len = 0;
            char *text = (char *)slurp(rcpts[i], &len);
            char *line = strstr(text, "pgship-public-key-v1");
            if (line == NULL) {
                fprintf(stderr, "agent_peer: %s: not a public key file\n", rcpts[i]);
                exit(1);
            }
            line[strcspn(line, "\r\n")] = '\0';
            snprintf(r->recipients[i], sizeof(r->recipients[i]), "%s", line);
            free(text);
        }
    }
    return r;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"identity", required_argument, NULL, 'i'},
        {"out", required_argument, NULL, 'o'},
        {"cert", required_argument, NULL, 'c'},
        {"key", required_argument, NULL, 'k'},
        {"jobs", required_argument, NULL, 'j'},
        {"window", required_argument, NULL, 'w'},
        {"data-max", required_argument, NULL, 'd'},
        {"heartbeat", required_argument, NULL, 'h'},
        {"drop-at", required_argument, NULL, 'D'},
        {"ack-delay", required_argument, NULL, 'A'},
        {"refuse", required_argument, NULL, 'r'},
        {"garbage-poll", no_argument, NULL, 'g'},
        {"linger", required_argument, NULL, 'l'},
        {"fail-at", required_argument, NULL, 'F'},
        {"silent-poll", no_argument, NULL, 's'},
        {"source", required_argument, NULL, 'S'},
        {"recipient", required_argument, NULL, 'R'},
        {"bad-sha", no_argument, NULL, 'B'},
        {"fetch-fail-at", required_argument, NULL, 'X'},
        {"fetch-drop-at", required_argument, NULL, 'Z'},
        {"fetch-delay", required_argument, NULL, 'Y'},
        {"sanitize-sql", required_argument, NULL, 'Q'},
        {"check-sql", required_argument, NULL, 'C'},
        {NULL, 0, NULL, 0},
    };
    const char *source = NULL, *sanitize_file = NULL, *check_file = NULL;
    char *rcpts[WIRE_RECIPIENTS_MAX];
    int nrcpts = 0, bad_sha = 0, fetch_delay = 0;
    long long fetch_fail_at = -1, fetch_drop_at = -1;
    const char *idfile = NULL, *outdir = NULL, *cert = NULL, *key = NULL;
    char *jobs = NULL;
    int window = 4, data_max = 65536, heartbeat = 500, ack_delay = 0, refuse = 0, garbage = 0;
    int linger = 2, silent = 0;
    long long drop_at = -1, fail_at = -1;
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 'i':
            idfile = optarg;
            break;
        case 'o':
            outdir = optarg;
            break;
        case 'c':
            cert = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 'j':
            jobs = optarg;
            break;
        case 'w':
            window = atoi(optarg);
            break;
        case 'd':
            data_max = atoi(optarg);
            break;
        case 'h':
            heartbeat = atoi(optarg);
            break;
        case 'D':
            drop_at = atoll(optarg);
            break;
        case 'F':
            fail_at = atoll(optarg);
            break;
        case 'A':
            ack_delay = atoi(optarg);
            break;
        case 'r':
            refuse = atoi(optarg);
            break;
        case 'g':
            garbage = 1;
            break;
        case 's':
            silent = 1;
            break;
        case 'l':
            linger = atoi(optarg);
            break;
        case 'S':
            source = optarg;
            break;
        case 'R':
            if (nrcpts < WIRE_RECIPIENTS_MAX)
                rcpts[nrcpts++] = optarg;
            break;
        case 'B':
            bad_sha = 1;
            break;
        case 'Z':
            fetch_drop_at = atoll(optarg);
            break;
        case 'X':
            fetch_fail_at = atoll(optarg);
            break;
        case 'Y':
            fetch_delay = atoi(optarg);
            break;
        case 'Q':
            sanitize_file = optarg;
            break;
        case 'C':
            check_file = optarg;
            break;
        default:
            return 2;
        }
    }
    if (optind + 1 != argc || idfile == NULL || outdir == NULL) {
        fprintf(stderr, "usage: agent_peer URL --identity FILE.pub --out DIR [options]\n");
        return 2;
    }
    pgs_error e = {0};
    pgs_identity_pub pub;
    if (sodium_init() < 0 || identity_load_public(idfile, &pub, &e) != 0) {
        fprintf(stderr, "agent_peer: %s\n", e.msg);
        return 1;
    }
    char *job_dbs[16];
    const char *job_kinds[16];
    int njobs = 0, next_job = 0, jobs_ended = 0;
    for (char *t = jobs ? strtok(jobs, ",") : NULL; t && njobs < 16; t = strtok(NULL, ",")) {
        char *colon = strchr(t, ':');
        job_kinds[njobs] = "backup";
        if (colon != NULL) {
            *colon = '\0';
            job_kinds[njobs] = t;
            t = colon + 1;
        }
        job_dbs[njobs++] = t;
    }
    /* The archive restore and sanitize jobs serve, cut into pieces of data_max bytes. */
    size_t src_len = 0;
    uint8_t *src = source ? slurp(source, &src_len) : NULL;
    uint8_t src_sha[SHA256_LEN] = {0};
    if (src != NULL) {
        sha256_ctx *c = sha256_new();
        sha256_update(c, src, src_len);
        sha256_final(c, src_sha);
        sha256_free(c);
        if (bad_sha)
            src_sha[0] ^= 1;
    }
    uint64_t src_pieces = src_len == 0 ? 0 : (src_len + (size_t)data_max - 1) / (size_t)data_max;
    char *sanitize_sql = sanitize_file ? (char *)slurp(sanitize_file, &(size_t){0}) : NULL;
    char *check_sql = check_file ? (char *)slurp(check_file, &(size_t){0}) : NULL;
    const char *kind = "backup"; /* of the job in hand */

    nng_listener l;
    net_tls t = {.cert_file = cert, .key_file = key, .allow_insecure = cert == NULL};
    if (nng_rep0_open(&sock) != 0 ||
        nng_socket_set_size(sock, NNG_OPT_RECVMAXSZ, WIRE_DATA_HDR_MAX + WIRE_DATA_MAX) != 0 ||
        net_listen(sock, argv[optind], &t, &l, &e) != 0) {
        fprintf(stderr, "agent_peer: %s\n", e.msg);
        return 1;
    }
    nng_socket_set_ms(sock, NNG_OPT_RECVTIMEO, 1000);

    uint8_t nonce[WIRE_NONCE_LEN];
    char hello_agent[WIRE_NAME_MAX + 1] = "";
    uint32_t authed_pipe = 0;
    char job[WIRE_JOB_ID_LEN + 1] = "";
    uint64_t seq = 0, bytes = 0;
    sha256_ctx *h = sha256_new();
    FILE *out = NULL;
    int hellos = 0;
    int garbage_done = 0, job_failed = 0;
    time_t quiet_since = 0;

    for (;;) {
        if (njobs > 0 && jobs_ended == njobs && quiet_since == 0)
            quiet_since = time(NULL);
        if (quiet_since != 0 && time(NULL) - quiet_since >= linger)
            return 0;
        nng_msg *msg = NULL;
        int rv = nng_recvmsg(sock, &msg, 0);
        if (rv == NNG_ETIMEDOUT)
            continue;
        if (rv != 0) {
            fprintf(stderr, "agent_peer: recv: %s\n", nng_strerror(rv));
            return 1;
        }
        uint32_t pipe = (uint32_t)nng_pipe_id(nng_msg_get_pipe(msg));
        wire_msg m;
        if (wire_decode(nng_msg_body(msg), nng_msg_len(msg), &m, &e) != 0) {
            say("protocol %s", e.msg);
            nng_pipe_close(nng_msg_get_pipe(msg));
            nng_msg_free(msg);
            continue;
        }
        if (m.type != WIRE_HELLO && m.type != WIRE_AUTH && pipe != authed_pipe) {
            say("protocol %s on an unauthenticated pipe", wire_type_name(m.type));
            nng_pipe_close(nng_msg_get_pipe(msg));
            nng_msg_free(msg);
            wire_msg_clear(&m);
            continue;
        }
        nng_pipe p = nng_msg_get_pipe(msg); /* msg lives on: a DATA payload points into it */
        switch (m.type) {
        case WIRE_HELLO: {
            snprintf(hello_agent, sizeof(hello_agent), "%s", m.u.hello.agent);
            if (++hellos <= refuse) {
                say("refused %s", m.u.hello.agent);
                wire_msg r = {.type = WIRE_ERROR};
                snprintf(r.u.error.code, sizeof(r.u.error.code), "refused");
                snprintf(r.u.error.message, sizeof(r.u.error.message), "not now (test)");
                reply(&r);
                break;
            }
            say("hello %s %s %s", m.u.hello.agent, m.u.hello.key_id, m.u.hello.version);
            randombytes_buf(nonce, sizeof(nonce));
            wire_msg r = {.type = WIRE_CHALLENGE};
            memcpy(r.u.challenge.nonce, nonce, sizeof(nonce));
            snprintf(r.u.challenge.version, sizeof(r.u.challenge.version), "agent_peer");
            reply(&r);
            break;
        }
        case WIRE_AUTH: {
            uint8_t am[WIRE_AUTH_MSG_MAX];
            size_t n = wire_auth_message(nonce, hello_agent, pub.id, am);
            if (identity_verify(&pub, am, n, m.u.auth.signature) != 0) {
                say("auth badsig");
                wire_msg r = {.type = WIRE_ERROR};
                snprintf(r.u.error.code, sizeof(r.u.error.code), "refused");
                snprintf(r.u.error.message, sizeof(r.u.error.message), "bad signature");
                reply(&r);
                break;
            }
            char line[4096] = "auth ok";
            for (size_t i = 0; i < m.u.auth.ndbs; i++) {
                size_t o = strlen(line);
                snprintf(line + o, sizeof(line) - o, " %s:%s:%s", m.u.auth.dbs[i].name,
                         m.u.auth.dbs[i].environment, m.u.auth.dbs[i].server_version);
            }
            say("%s", line);
            for (size_t i = 0; i < m.u.auth.nrestore_keys; i++)
                say("restore-key %s", m.u.auth.restore_keys[i]);
            authed_pipe = pipe;
            wire_msg r = {.type = WIRE_WELCOME};
            r.u.welcome.heartbeat_ms = (uint32_t)heartbeat;
            r.u.welcome.window = (uint32_t)window;
            r.u.welcome.data_max = (uint32_t)data_max;
            reply(&r);
            break;
        }
        case WIRE_POLL:
            if (silent) {
                /* Never answered: the next receive drops it, and the agent's deadline runs. */
                silent = 0;
                say("silent");
                break;
            }
            if (garbage && !garbage_done) {
                garbage_done = 1;
                say("garbage");
                nng_msg *g = NULL;
                nng_msg_alloc(&g, 0);
                nng_msg_append(g, "garbage!", 8);
                nng_sendmsg(sock, g, 0);
                break;
            }
            if (next_job < njobs) {
                wire_msg r = {.type = WIRE_JOB};
                snprintf(job, sizeof(job), "20261121T120000Z-%08x", (unsigned)next_job + 1);
                snprintf(r.u.job.job, sizeof(r.u.job.job), "%s", job);
                kind = job_kinds[next_job];
                snprintf(r.u.job.kind, sizeof(r.u.job.kind), "%s", kind);
                snprintf(r.u.job.database, sizeof(r.u.job.database), "%s", job_dbs[next_job]);
                if (strcmp(kind, "backup") == 0)
                    snprintf(r.u.job.label, sizeof(r.u.job.label), "test");
                else
                    r.u.job.restore =
                        restore_spec(strcmp(kind, "sanitize") == 0, src_len, sanitize_sql,
                                     check_sql, rcpts, nrcpts, (unsigned)next_job + 1);
                next_job++;
                seq = bytes = 0;
                job_failed = 0;
                sha256_reset(h);
                char path[4096];
                snprintf(path, sizeof(path), "%s/%s.pgship", outdir, job);
                if (out)
                    fclose(out);
                out = NULL;
                /* A restore job sends nothing; a backup or sanitize job its archive. */
                if (strcmp(kind, "restore") != 0 && (out = fopen(path, "wb")) == NULL) {
                    fprintf(stderr, "agent_peer: %s: cannot create\n", path);
                    return 1;
                }
                if (strcmp(kind, "backup") == 0)
                    say("job %s %s", job, r.u.job.database);
                else
                    say("job %s %s %s", job, r.u.job.database, kind);
                reply(&r);
                wire_msg_clear(&r);
                break;
            }
            nng_msleep(heartbeat);
            reply_type(WIRE_IDLE);
            break;
        case WIRE_DATA:
            if (job_failed || (next_job == 1 && (long long)m.u.data.seq == fail_at)) {
                /* As the coordinator does: this DATA and every later one of the job. */
                if (!job_failed)
                    say("data-refused %s %llu", job, (unsigned long long)m.u.data.seq);
                job_failed = 1;
                wire_msg r = {.type = WIRE_ERROR};
                snprintf(r.u.error.code, sizeof(r.u.error.code), "job_failed");
                snprintf(r.u.error.message, sizeof(r.u.error.message), "storage said no (test)");
                reply(&r);
                break;
            }
            if (strcmp(m.u.data.job, job) != 0 || m.u.data.seq != seq) {
                say("protocol DATA %s seq %llu, expected %s seq %llu", m.u.data.job,
                    (unsigned long long)m.u.data.seq, job, (unsigned long long)seq);
                nng_pipe_close(p);
                break;
            }
            if ((long long)seq == drop_at) {
                say("dropped %s %llu", job, (unsigned long long)seq);
                jobs_ended++;
                nng_pipe_close(p);
                break;
            }
            if (out == NULL) {
                say("protocol DATA for a restore job");
                nng_pipe_close(p);
                break;
            }
            say("data %s %llu %zu", job, (unsigned long long)seq, m.u.data.len);
            fwrite(m.u.data.payload, 1, m.u.data.len, out);
            sha256_update(h, m.u.data.payload, m.u.data.len);
            bytes += m.u.data.len;
            if (ack_delay)
                nng_msleep(ack_delay);
            {
                wire_msg r = {.type = WIRE_ACK};
                snprintf(r.u.ack.job, sizeof(r.u.ack.job), "%s", job);
                r.u.ack.seq = seq++;
                reply(&r);
            }
            break;
        case WIRE_END: {
            uint8_t d[SHA256_LEN];
            sha256_final(h, d);
            wire_msg r = {.type = WIRE_RESULT};
            snprintf(r.u.result.job, sizeof(r.u.result.job), "%s", m.u.end.job);
            const char *bad = strcmp(m.u.end.job, job)                  ? "job"
                              : m.u.end.chunks != seq                   ? "chunks"
                              : m.u.end.bytes != bytes                  ? "bytes"
                              : memcmp(d, m.u.end.sha256, SHA256_LEN)   ? "sha256"
                              : json_object_size(m.u.end.manifest) == 0 ? "manifest"
                                                                        : NULL;
            if (out != NULL)
                fflush(out);
            if (bad) {
                say("end mismatch %s %s", m.u.end.job, bad);
                snprintf(r.u.result.error, sizeof(r.u.result.error), "%s mismatch", bad);
            } else {
                say("end ok %s %llu %llu", m.u.end.job, (unsigned long long)seq,
                    (unsigned long long)bytes);
                r.u.result.complete = 1;
                snprintf(r.u.result.storage_key, sizeof(r.u.result.storage_key), "test/%s.pgship",
                         m.u.end.job);
            }
            if (strcmp(kind, "backup") == 0)
                jobs_ended++;
            reply(&r);
            break;
        }
        case WIRE_FAIL: {
            say("fail %s %s", m.u.fail.job, m.u.fail.error);
            wire_msg r = {.type = WIRE_RESULT};
            snprintf(r.u.result.job, sizeof(r.u.result.job), "%s", m.u.fail.job);
            snprintf(r.u.result.error, sizeof(r.u.result.error), "%s", m.u.fail.error);
            if (strcmp(kind, "backup") == 0)
                jobs_ended++;
            reply(&r);
            break;
        }
        case WIRE_FETCH: {
            uint64_t fs = m.u.fetch.seq;
            if (strcmp(m.u.fetch.job, job) != 0 || strcmp(kind, "backup") == 0) {
                say("fetch %s %llu unknown", m.u.fetch.job, (unsigned long long)fs);
                reply_error("unknown_job", "no such restore job (test)");
            } else if ((long long)fs == fetch_drop_at) {
                say("dropped %s %llu", job, (unsigned long long)fs);
                fetch_drop_at = -1;
                jobs_ended++;
                nng_pipe_close(p);
            } else if (fetch_fail_at >= 0 && (long long)fs >= fetch_fail_at) {
                say("fetch %s %llu refused", job, (unsigned long long)fs);
                reply_error("job_failed", "storage could not read the object (test)");
            } else if (fs < src_pieces) {
                say("fetch %s %llu piece", job, (unsigned long long)fs);
                if (fetch_delay)
                    nng_msleep(fetch_delay);
                size_t off = (size_t)fs * (size_t)data_max;
                size_t n = src_len - off < (size_t)data_max ? src_len - off : (size_t)data_max;
                uint8_t hdr[WIRE_DATA_HDR_MAX];
                size_t hl = wire_piece_header(hdr, job, fs, n);
                nng_msg *pm = NULL;
                if (nng_msg_alloc(&pm, 0) != 0 || nng_msg_append(pm, hdr, hl) != 0 ||
                    nng_msg_append(pm, src + off, n) != 0 || nng_sendmsg(sock, pm, 0) != 0) {
                    fprintf(stderr, "agent_peer: cannot send a PIECE\n");
                    return 1;
                }
            } else {
                /* EOF at the end, and to the FETCHes already in flight past it. */
                say("fetch %s %llu %s", job, (unsigned long long)fs,
                    fs == src_pieces ? "eof" : "past-end");
                wire_msg r = {.type = WIRE_EOF};
                snprintf(r.u.eof.job, sizeof(r.u.eof.job), "%s", job);
                r.u.eof.pieces = src_pieces;
                r.u.eof.bytes = src_len;
                memcpy(r.u.eof.sha256, src_sha, SHA256_LEN);
                reply(&r);
            }
            break;
        }
        case WIRE_STEP: {
            say("step %s %s %s", m.u.step.job, m.u.step.step, m.u.step.detail);
            wire_msg r = {.type = WIRE_ACK};
            snprintf(r.u.ack.job, sizeof(r.u.ack.job), "%s", m.u.step.job);
            reply(&r);
            break;
        }
        case WIRE_REPORT: {
            say("report %s %s %s %s", m.u.report.job, m.u.report.ok ? "ok" : "failed",
                m.u.report.step, m.u.report.error);
            char *js = json_dumps(m.u.report.report, JSON_COMPACT);
            say("report-json %s %s", m.u.report.job, js ? js : "null");
            free(js);
            wire_msg r = {.type = WIRE_RESULT};
            snprintf(r.u.result.job, sizeof(r.u.result.job), "%s", m.u.report.job);
            r.u.result.complete = m.u.report.ok;
            snprintf(r.u.result.error, sizeof(r.u.result.error), "%s", m.u.report.error);
            jobs_ended++;
            reply(&r);
            break;
        }
        default:
            say("protocol unexpected %s", wire_type_name(m.type));
            nng_pipe_close(p);
            break;
        }
        wire_msg_clear(&m);
        nng_msg_free(msg);
    }
}
