/*
 * Encoding and strict decoding of wire frames (see wire.h and docs/wire-protocol.md). Control
 * bodies are JSON because they are small, rare and must evolve readably; DATA is binary because
 * it carries every byte of every backup.
 */
#include "proto/wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/jsonutil.h"

static const char WIRE_MAGIC[2] = {'P', 'W'};

const char *wire_type_name(wire_type t)
{
    switch (t) {
    case WIRE_HELLO: return "HELLO";
    case WIRE_AUTH: return "AUTH";
    case WIRE_POLL: return "POLL";
    case WIRE_DATA: return "DATA";
    case WIRE_END: return "END";
    case WIRE_FAIL: return "FAIL";
    case WIRE_CHALLENGE: return "CHALLENGE";
    case WIRE_WELCOME: return "WELCOME";
    case WIRE_JOB: return "JOB";
    case WIRE_IDLE: return "IDLE";
    case WIRE_ACK: return "ACK";
    case WIRE_RESULT: return "RESULT";
    case WIRE_ERROR: return "ERROR";
    case WIRE_FETCH: return "FETCH";
    case WIRE_STEP: return "STEP";
    case WIRE_REPORT: return "REPORT";
    case WIRE_PIECE: return "PIECE";
    case WIRE_EOF: return "EOF";
    }
    return NULL;
}

/* The largest body a frame of type t may carry. */
static size_t body_max(wire_type t)
{
    switch (t) {
    case WIRE_DATA: return 1 + WIRE_JOB_ID_LEN + 8 + WIRE_DATA_MAX;
    case WIRE_END: return WIRE_END_MAX;
    default: return WIRE_CONTROL_MAX;
    }
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void put_header(uint8_t *p, wire_type t, size_t body_len)
{
    p[0] = (uint8_t)WIRE_MAGIC[0];
    p[1] = (uint8_t)WIRE_MAGIC[1];
    p[2] = WIRE_VERSION;
    p[3] = (uint8_t)t;
    put_u32(p + 4, (uint32_t)body_len);
}

/* ---- field rules ---- */

int wire_job_id_valid(const char *id)
{
    if (strlen(id) != WIRE_JOB_ID_LEN)
        return 0;
    for (int i = 0; i < WIRE_JOB_ID_LEN; i++) {
        char c = id[i];
        int ok;
        if (i == 8)
            ok = c == 'T';
        else if (i == 15)
            ok = c == 'Z';
        else if (i == 16)
            ok = c == '-';
        else if (i > 16)
            ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
        else
            ok = c >= '0' && c <= '9';
        if (!ok)
            return 0;
    }
    return 1;
}

static int env_valid(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= WIRE_ENV_MAX && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

/* Printable ASCII, for versions, labels and codes. */
static int printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return 0;
    return 1;
}

/* Free text (error messages): UTF-8 (jansson checked it), no control characters but tab. */
static int text_ok(const char *s)
{
    for (; *s; s++)
        if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
            return 0;
    return 1;
}

#define FIELD_CHECK(ok, name)                                                                     \
    do {                                                                                          \
        if (!(ok))                                                                                \
            return pgs_fail(e, PGS_EFORMAT, "field \"%s\" is not valid", name);                  \
    } while (0)

static int get_hex(json_t *o, const char *key, uint8_t *dst, size_t n, pgs_error *e)
{
    char hex[2 * 64 + 1];
    int rc = jsonu_get_str(o, key, hex, 2 * n + 1, e);
    if (rc != 0)
        return rc;
    if (strlen(hex) != 2 * n || hex_decode(hex, 2 * n, dst, n) != 0)
        return pgs_fail(e, PGS_EFORMAT, "field \"%s\" is not %zu hex digits", key, 2 * n);
    return 0;
}

static int get_job(json_t *o, char job[WIRE_JOB_ID_LEN + 1], pgs_error *e)
{
    int rc = jsonu_get_str(o, "job", job, WIRE_JOB_ID_LEN + 1, e);
    if (rc != 0)
        return rc;
    FIELD_CHECK(wire_job_id_valid(job), "job");
    return 0;
}

/* A required string field of at most cap-1 bytes that must pass valid(). */
static int get_checked(json_t *o, const char *key, char *dst, size_t cap,
                       int (*valid)(const char *), pgs_error *e)
{
    int rc = jsonu_get_str(o, key, dst, cap, e);
    if (rc != 0)
        return rc;
    FIELD_CHECK(valid(dst), key);
    return 0;
}

static int get_name(json_t *o, const char *key, char dst[WIRE_NAME_MAX + 1], pgs_error *e)
{
    return get_checked(o, key, dst, WIRE_NAME_MAX + 1, key_name_valid, e);
}

static int get_printable(json_t *o, const char *key, char *dst, size_t cap, pgs_error *e)
{
    return get_checked(o, key, dst, cap, printable, e);
}

static int get_text(json_t *o, const char *key, char *dst, size_t cap, pgs_error *e)
{
    return get_checked(o, key, dst, cap, text_ok, e);
}

static int get_u32_range(json_t *o, const char *key, uint32_t lo, uint32_t hi, uint32_t *dst,
                         pgs_error *e)
{
    uint64_t v = 0;
    int rc = jsonu_get_uint(o, key, hi, &v, e);
    if (rc != 0)
        return rc;
    if (v < lo)
        return pgs_fail(e, PGS_ELIMIT, "field \"%s\" is below %u", key, lo);
    *dst = (uint32_t)v;
    return 0;
}

/* ---- decode ---- */

static int decode_auth(json_t *o, wire_msg *m, pgs_error *e)
{
    static const char *const keys[] = {"signature", "databases", NULL};
    static const char *const dbkeys[] = {"name", "environment", "server_version", NULL};
    int rc = jsonu_only_keys(o, keys, e);
    if (rc == 0)
        rc = get_hex(o, "signature", m->u.auth.signature, IDENTITY_SIG_LEN, e);
    if (rc != 0)
        return rc;
    json_t *dbs = json_object_get(o, "databases");
    if (!json_is_array(dbs) || json_array_size(dbs) > WIRE_DBS_MAX)
        return pgs_fail(e, PGS_ELIMIT, "field \"databases\" must list at most %d databases",
                        WIRE_DBS_MAX);
    size_t n = json_array_size(dbs);
    m->u.auth.dbs = calloc(n ? n : 1, sizeof(wire_db));
    if (m->u.auth.dbs == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *d = json_array_get(dbs, i);
        wire_db *w = &m->u.auth.dbs[i];
        if (!json_is_object(d))
            return pgs_fail(e, PGS_EFORMAT, "database %zu is not an object", i);
        if ((rc = jsonu_only_keys(d, dbkeys, e)) || (rc = get_name(d, "name", w->name, e)) ||
            (rc = jsonu_get_str(d, "environment", w->environment, sizeof(w->environment), e)) ||
            (rc = get_printable(d, "server_version", w->server_version, sizeof(w->server_version),
                                e)))
            return pgs_wrap(e, "database %zu", i);
        if (!env_valid(w->environment))
            return pgs_fail(e, PGS_EFORMAT, "database %zu: field \"environment\" is not valid",
                            i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(m->u.auth.dbs[j].name, w->name) == 0)
                return pgs_fail(e, PGS_EFORMAT, "database %s is listed twice", w->name);
        m->u.auth.ndbs = i + 1;
    }
    return 0;
}

static int decode_control(json_t *o, wire_msg *m, pgs_error *e)
{
    int rc = 0;
    switch (m->type) {
    case WIRE_FETCH: case WIRE_STEP: case WIRE_REPORT: case WIRE_PIECE: case WIRE_EOF:
        return pgs_fail(e, PGS_EFORMAT, "%s: not implemented yet", wire_type_name(m->type));
    case WIRE_HELLO: {
        static const char *const k[] = {"agent", "version", "key_id", NULL};
        uint8_t id[KEY_ID_LEN];
        if ((rc = jsonu_only_keys(o, k, e)) || (rc = get_name(o, "agent", m->u.hello.agent, e)) ||
            (rc = get_printable(o, "version", m->u.hello.version, sizeof(m->u.hello.version), e)) ||
            (rc = get_hex(o, "key_id", id, KEY_ID_LEN, e)))
            return rc;
        hex_encode(id, KEY_ID_LEN, m->u.hello.key_id);
        return 0;
    }
    case WIRE_CHALLENGE: {
        static const char *const k[] = {"nonce", "version", NULL};
        if ((rc = jsonu_only_keys(o, k, e)) ||
            (rc = get_hex(o, "nonce", m->u.challenge.nonce, WIRE_NONCE_LEN, e)))
            return rc;
        return get_printable(o, "version", m->u.challenge.version,
                             sizeof(m->u.challenge.version), e);
    }
    case WIRE_AUTH:
        return decode_auth(o, m, e);
    case WIRE_POLL:
    case WIRE_IDLE: {
        static const char *const k[] = {NULL};
        return jsonu_only_keys(o, k, e);
    }
    case WIRE_WELCOME: {
        static const char *const k[] = {"heartbeat_ms", "window", "data_max", NULL};
        if ((rc = jsonu_only_keys(o, k, e)) ||
            (rc = get_u32_range(o, "heartbeat_ms", 100, 600000, &m->u.welcome.heartbeat_ms, e)) ||
            (rc = get_u32_range(o, "window", 1, 64, &m->u.welcome.window, e)))
            return rc;
        return get_u32_range(o, "data_max", 4096, WIRE_DATA_MAX, &m->u.welcome.data_max, e);
    }
    case WIRE_JOB: {
        static const char *const k[] = {"job", "kind", "database", "label", NULL};
        if ((rc = jsonu_only_keys(o, k, e)) || (rc = get_job(o, m->u.job.job, e)) ||
            (rc = jsonu_get_str(o, "kind", m->u.job.kind, sizeof(m->u.job.kind), e)) ||
            (rc = get_name(o, "database", m->u.job.database, e)) ||
            (rc = get_printable(o, "label", m->u.job.label, sizeof(m->u.job.label), e)))
            return rc;
        if (strcmp(m->u.job.kind, "backup") != 0)
            return pgs_fail(e, PGS_EFORMAT, "unknown job kind \"%s\"", m->u.job.kind);
        return 0;
    }
    case WIRE_ACK: {
        static const char *const k[] = {"job", "seq", NULL};
        if ((rc = jsonu_only_keys(o, k, e)) || (rc = get_job(o, m->u.ack.job, e)))
            return rc;
        return jsonu_get_uint(o, "seq", INT64_MAX, &m->u.ack.seq, e);
    }
    case WIRE_END: {
        static const char *const k[] = {"job", "chunks", "bytes", "sha256", "manifest", NULL};
        if ((rc = jsonu_only_keys(o, k, e)) || (rc = get_job(o, m->u.end.job, e)) ||
            (rc = jsonu_get_uint(o, "chunks", INT64_MAX, &m->u.end.chunks, e)) ||
            (rc = jsonu_get_uint(o, "bytes", INT64_MAX, &m->u.end.bytes, e)) ||
            (rc = get_hex(o, "sha256", m->u.end.sha256, SHA256_LEN, e)))
            return rc;
        json_t *man = json_object_get(o, "manifest");
        if (!json_is_object(man))
            return pgs_fail(e, PGS_EFORMAT, "field \"manifest\" is missing or not an object");
        m->u.end.manifest = json_incref(man);
        return 0;
    }
    case WIRE_FAIL: {
        static const char *const k[] = {"job", "error", NULL};
        if ((rc = jsonu_only_keys(o, k, e)) || (rc = get_job(o, m->u.fail.job, e)))
            return rc;
        return get_text(o, "error", m->u.fail.error, sizeof(m->u.fail.error), e);
    }
    case WIRE_RESULT: {
        static const char *const k[] = {"job", "state", "error", "storage_key", NULL};
        char state[16];
        if ((rc = jsonu_only_keys(o, k, e)) || (rc = get_job(o, m->u.result.job, e)) ||
            (rc = jsonu_get_str(o, "state", state, sizeof(state), e)) ||
            (rc = get_text(o, "error", m->u.result.error, sizeof(m->u.result.error), e)) ||
            (rc = get_printable(o, "storage_key", m->u.result.storage_key,
                                sizeof(m->u.result.storage_key), e)))
            return rc;
        if (strcmp(state, "complete") != 0 && strcmp(state, "failed") != 0)
            return pgs_fail(e, PGS_EFORMAT, "field \"state\" is not complete or failed");
        m->u.result.complete = strcmp(state, "complete") == 0;
        return 0;
    }
    case WIRE_ERROR: {
        static const char *const k[] = {"code", "message", NULL};
        if ((rc = jsonu_only_keys(o, k, e)) ||
            (rc = get_printable(o, "code", m->u.error.code, sizeof(m->u.error.code), e)))
            return rc;
        return get_text(o, "message", m->u.error.message, sizeof(m->u.error.message), e);
    }
    case WIRE_DATA:
        break;
    }
    return pgs_fail(e, PGS_EFORMAT, "not a control frame");
}

static int decode_data(const uint8_t *b, size_t n, wire_msg *m, pgs_error *e)
{
    if (n < 1)
        return pgs_fail(e, PGS_ETRUNC, "DATA frame has no body");
    size_t jl = b[0];
    if (jl != WIRE_JOB_ID_LEN)
        return pgs_fail(e, PGS_EFORMAT, "DATA frame: job id length %zu is not %d", jl,
                        WIRE_JOB_ID_LEN);
    if (n < 1 + jl + 8)
        return pgs_fail(e, PGS_ETRUNC, "DATA frame is shorter than its fixed part");
    memcpy(m->u.data.job, b + 1, jl);
    m->u.data.job[jl] = '\0';
    if (memchr(m->u.data.job, '\0', jl) != NULL || !wire_job_id_valid(m->u.data.job))
        return pgs_fail(e, PGS_EFORMAT, "DATA frame: job id is not valid");
    m->u.data.seq = get_u64(b + 1 + jl);
    if (m->u.data.seq > INT64_MAX)
        return pgs_fail(e, PGS_ELIMIT, "DATA frame: seq is out of range");
    m->u.data.payload = b + 1 + jl + 8;
    m->u.data.len = n - (1 + jl + 8);
    if (m->u.data.len == 0)
        return pgs_fail(e, PGS_EFORMAT, "DATA frame has no payload");
    return 0;
}

int wire_decode(const void *buf, size_t len, wire_msg *m, pgs_error *e)
{
    memset(m, 0, sizeof(*m));
    const uint8_t *p = buf;
    if (len < WIRE_HEADER_LEN)
        return pgs_fail(e, PGS_ETRUNC, "frame of %zu bytes is shorter than its header", len);
    if (p[0] != (uint8_t)WIRE_MAGIC[0] || p[1] != (uint8_t)WIRE_MAGIC[1])
        return pgs_fail(e, PGS_EFORMAT, "not a pgship frame (bad magic)");
    if (p[2] != WIRE_VERSION)
        return pgs_fail(e, PGS_EVERSION, "wire protocol version %u is not supported (this is %d)",
                        p[2], WIRE_VERSION);
    wire_type t = (wire_type)p[3];
    if (wire_type_name(t) == NULL)
        return pgs_fail(e, PGS_EFORMAT, "unknown frame type %u", p[3]);
    uint32_t blen = (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 | (uint32_t)p[6] << 8 | p[7];
    if (blen > body_max(t))
        return pgs_fail(e, PGS_ELIMIT, "%s frame body of %u bytes exceeds %zu", wire_type_name(t),
                        blen, body_max(t));
    if ((size_t)blen != len - WIRE_HEADER_LEN)
        return pgs_fail(e, len - WIRE_HEADER_LEN < blen ? PGS_ETRUNC : PGS_ETRAIL,
                        "%s frame says %u body bytes but carries %zu", wire_type_name(t), blen,
                        len - WIRE_HEADER_LEN);
    m->type = t;
    int rc;
    if (t == WIRE_DATA) {
        rc = decode_data(p + WIRE_HEADER_LEN, blen, m, e);
    } else {
        json_t *o = jsonu_load_object(p + WIRE_HEADER_LEN, blen, body_max(t), wire_type_name(t), e);
        if (o == NULL)
            return e ? e->code : PGS_EFORMAT;
        rc = decode_control(o, m, e);
        json_decref(o);
        if (rc != 0)
            pgs_wrap(e, "%s frame", wire_type_name(t));
    }
    if (rc != 0)
        wire_msg_clear(m);
    return rc;
}

void wire_restore_spec_free(wire_restore_spec *r)
{
    if (r == NULL)
        return;
    free(r->sanitize_sql);
    free(r->check_sql);
    free(r->schemas);
    free(r->tables);
    free(r->recipients);
    free(r);
}

void wire_msg_clear(wire_msg *m)
{
    if (m->type == WIRE_AUTH)
        free(m->u.auth.dbs);
    if (m->type == WIRE_END)
        json_decref(m->u.end.manifest);
    memset(m, 0, sizeof(*m));
}

/* ---- encode ---- */

size_t wire_data_header(uint8_t *hdr, const char *job, uint64_t seq, size_t payload_len)
{
    size_t body = 1 + WIRE_JOB_ID_LEN + 8 + payload_len;
    put_header(hdr, WIRE_DATA, body);
    hdr[WIRE_HEADER_LEN] = WIRE_JOB_ID_LEN;
    memcpy(hdr + WIRE_HEADER_LEN + 1, job, WIRE_JOB_ID_LEN);
    put_u64(hdr + WIRE_HEADER_LEN + 1 + WIRE_JOB_ID_LEN, seq);
    return WIRE_DATA_HDR_MAX;
}

static int set_hex(json_t *o, const char *key, const uint8_t *b, size_t n)
{
    char hex[2 * 64 + 1];
    hex_encode(b, n, hex);
    return json_object_set_new(o, key, json_string(hex));
}

static int encode_body(const wire_msg *m, json_t *o, pgs_error *e)
{
    int rc = 0;
    switch (m->type) {
    case WIRE_FETCH: case WIRE_STEP: case WIRE_REPORT: case WIRE_PIECE: case WIRE_EOF:
        return pgs_fail(e, PGS_EFORMAT, "%s: not implemented yet", wire_type_name(m->type));
    case WIRE_HELLO:
        if ((rc = jsonu_set_str(o, "agent", m->u.hello.agent, e)) ||
            (rc = jsonu_set_str(o, "version", m->u.hello.version, e)) ||
            (rc = jsonu_set_str(o, "key_id", m->u.hello.key_id, e)))
            return rc;
        return 0;
    case WIRE_CHALLENGE:
        set_hex(o, "nonce", m->u.challenge.nonce, WIRE_NONCE_LEN);
        return jsonu_set_str(o, "version", m->u.challenge.version, e);
    case WIRE_AUTH: {
        set_hex(o, "signature", m->u.auth.signature, IDENTITY_SIG_LEN);
        json_t *a = json_array();
        json_object_set_new(o, "databases", a);
        for (size_t i = 0; i < m->u.auth.ndbs; i++) {
            json_t *d = json_object();
            json_array_append_new(a, d);
            const wire_db *w = &m->u.auth.dbs[i];
            if ((rc = jsonu_set_str(d, "name", w->name, e)) ||
                (rc = jsonu_set_str(d, "environment", w->environment, e)) ||
                (rc = jsonu_set_str(d, "server_version", w->server_version, e)))
                return rc;
        }
        return 0;
    }
    case WIRE_POLL:
    case WIRE_IDLE:
        return 0;
    case WIRE_WELCOME:
        json_object_set_new(o, "heartbeat_ms", json_integer(m->u.welcome.heartbeat_ms));
        json_object_set_new(o, "window", json_integer(m->u.welcome.window));
        json_object_set_new(o, "data_max", json_integer(m->u.welcome.data_max));
        return 0;
    case WIRE_JOB:
        if ((rc = jsonu_set_str(o, "job", m->u.job.job, e)) ||
            (rc = jsonu_set_str(o, "kind", m->u.job.kind, e)) ||
            (rc = jsonu_set_str(o, "database", m->u.job.database, e)) ||
            (rc = jsonu_set_str(o, "label", m->u.job.label, e)))
            return rc;
        return 0;
    case WIRE_ACK:
        json_object_set_new(o, "job", json_string(m->u.ack.job));
        json_object_set_new(o, "seq", json_integer((json_int_t)m->u.ack.seq));
        return 0;
    case WIRE_END:
        json_object_set_new(o, "job", json_string(m->u.end.job));
        json_object_set_new(o, "chunks", json_integer((json_int_t)m->u.end.chunks));
        json_object_set_new(o, "bytes", json_integer((json_int_t)m->u.end.bytes));
        set_hex(o, "sha256", m->u.end.sha256, SHA256_LEN);
        json_object_set_new(o, "manifest",
                            m->u.end.manifest ? json_incref(m->u.end.manifest) : json_object());
        return 0;
    case WIRE_FAIL:
        json_object_set_new(o, "job", json_string(m->u.fail.job));
        return jsonu_set_str(o, "error", m->u.fail.error, e);
    case WIRE_RESULT:
        json_object_set_new(o, "job", json_string(m->u.result.job));
        json_object_set_new(o, "state", json_string(m->u.result.complete ? "complete" : "failed"));
        if ((rc = jsonu_set_str(o, "error", m->u.result.error, e)) ||
            (rc = jsonu_set_str(o, "storage_key", m->u.result.storage_key, e)))
            return rc;
        return 0;
    case WIRE_ERROR:
        if ((rc = jsonu_set_str(o, "code", m->u.error.code, e)) ||
            (rc = jsonu_set_str(o, "message", m->u.error.message, e)))
            return rc;
        return 0;
    case WIRE_DATA:
        break;
    }
    return pgs_fail(e, PGS_EINVAL, "cannot encode frame type %d", (int)m->type);
}

int wire_encode(const wire_msg *m, uint8_t **out, size_t *len, pgs_error *e)
{
    *out = NULL;
    *len = 0;
    if (m->type == WIRE_DATA) {
        if (m->u.data.len == 0 || m->u.data.len > WIRE_DATA_MAX ||
            !wire_job_id_valid(m->u.data.job))
            return pgs_fail(e, PGS_EINVAL, "DATA frame: bad job id or payload size");
        uint8_t *f = malloc(WIRE_DATA_HDR_MAX + m->u.data.len);
        if (f == NULL)
            return pgs_fail(e, PGS_ENOMEM, "out of memory");
        size_t h = wire_data_header(f, m->u.data.job, m->u.data.seq, m->u.data.len);
        memcpy(f + h, m->u.data.payload, m->u.data.len);
        *out = f;
        *len = h + m->u.data.len;
        return 0;
    }
    json_t *o = json_object();
    if (o == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    int rc = encode_body(m, o, e);
    char *text = NULL;
    if (rc == 0 && (text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL)
        rc = pgs_fail(e, PGS_ENOMEM, "cannot encode JSON");
    json_decref(o);
    if (rc != 0)
        return rc;
    size_t blen = strlen(text);
    if (blen > body_max(m->type)) {
        free(text);
        return pgs_fail(e, PGS_ELIMIT, "%s frame body of %zu bytes exceeds %zu",
                        wire_type_name(m->type), blen, body_max(m->type));
    }
    uint8_t *f = malloc(WIRE_HEADER_LEN + blen);
    if (f == NULL) {
        free(text);
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    }
    put_header(f, m->type, blen);
    memcpy(f + WIRE_HEADER_LEN, text, blen);
    free(text);
    *out = f;
    *len = WIRE_HEADER_LEN + blen;
    return 0;
}

size_t wire_auth_message(const uint8_t nonce[WIRE_NONCE_LEN], const char *agent,
                         const uint8_t key_id[KEY_ID_LEN], uint8_t *out)
{
    static const char tag[] = "pgship-auth-v1";
    size_t n = 0, al = strnlen(agent, WIRE_NAME_MAX);
    memcpy(out + n, tag, sizeof(tag)); /* with its NUL: the tag cannot run into the nonce */
    n += sizeof(tag);
    memcpy(out + n, nonce, WIRE_NONCE_LEN);
    n += WIRE_NONCE_LEN;
    out[n++] = (uint8_t)al;
    memcpy(out + n, agent, al);
    n += al;
    memcpy(out + n, key_id, KEY_ID_LEN);
    n += KEY_ID_LEN;
    return n;
}
