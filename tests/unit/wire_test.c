/*
 * Tests of the wire codec (proto/wire.c): every frame type round-trips, and the decoder refuses
 * each kind of hostile frame with its own code: short, bad magic, unknown version or type, lengths
 * that disagree, oversize bodies, malformed JSON, unknown, missing or ill-typed fields, bad names,
 * ids and text. The auth message binds nonce, name and key. Verify jobs carry only what a
 * verification uses, and their scratch database has exactly one form.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "proto/wire.h"
#include "tests/unit/testutil.h"

#define JOB "20261121T164301Z-3f9a0c1d"

static void round_trip(const wire_msg *in, wire_msg *out)
{
    uint8_t *f = NULL;
    size_t n = 0;
    pgs_error e = {0};
    int rc = wire_encode(in, &f, &n, &e);
    if (rc != 0)
        fail_msg("encode %s: %s", wire_type_name(in->type), e.msg);
    rc = wire_decode(f, n, out, &e);
    if (rc != 0)
        fail_msg("decode %s: %s", wire_type_name(in->type), e.msg);
    assert_int_equal(out->type, in->type);
    /* DATA points into the frame: keep it alive for the caller's checks. */
    if (in->type != WIRE_DATA)
        free(f);
}

static void test_wire_round_trip_every_type(void **state)
{
    (void)state;
    wire_msg in, out;

    memset(&in, 0, sizeof(in));
    in.type = WIRE_HELLO;
    strcpy(in.u.hello.agent, "prod-db1");
    strcpy(in.u.hello.version, "pgship-agent 0.1.0");
    strcpy(in.u.hello.key_id, "0123456789abcdef");
    round_trip(&in, &out);
    assert_string_equal(out.u.hello.agent, "prod-db1");
    assert_string_equal(out.u.hello.key_id, "0123456789abcdef");
    wire_msg_clear(&out);

    memset(&in, 0, sizeof(in));
    in.type = WIRE_CHALLENGE;
    randombytes_buf(in.u.challenge.nonce, WIRE_NONCE_LEN);
    strcpy(in.u.challenge.version, "pgship-coordinator 0.1.0");
    round_trip(&in, &out);
    assert_memory_equal(out.u.challenge.nonce, in.u.challenge.nonce, WIRE_NONCE_LEN);
    wire_msg_clear(&out);

    memset(&in, 0, sizeof(in));
    in.type = WIRE_AUTH;
    wire_db dbs[2] = {{"appdb", "prod", "15.20"}, {"billing", "staging", "16.4"}};
    in.u.auth.dbs = dbs;
    in.u.auth.ndbs = 2;
    randombytes_buf(in.u.auth.signature, IDENTITY_SIG_LEN);
    round_trip(&in, &out);
    assert_int_equal(out.u.auth.ndbs, 2);
    assert_string_equal(out.u.auth.dbs[1].name, "billing");
    assert_string_equal(out.u.auth.dbs[1].environment, "staging");
    assert_memory_equal(out.u.auth.signature, in.u.auth.signature, IDENTITY_SIG_LEN);
    wire_msg_clear(&out);

    memset(&in, 0, sizeof(in));
    in.type = WIRE_WELCOME;
    in.u.welcome.heartbeat_ms = 5000;
    in.u.welcome.window = 4;
    in.u.welcome.data_max = 1 << 20;
    round_trip(&in, &out);
    assert_int_equal(out.u.welcome.window, 4);
    wire_msg_clear(&out);

    memset(&in, 0, sizeof(in));
    in.type = WIRE_JOB;
    strcpy(in.u.job.job, JOB);
    strcpy(in.u.job.kind, "backup");
    strcpy(in.u.job.database, "appdb");
    strcpy(in.u.job.label, "before migration 42");
    round_trip(&in, &out);
    assert_string_equal(out.u.job.label, "before migration 42");
    wire_msg_clear(&out);

    static const uint8_t payload[] = "encrypted bytes";
    memset(&in, 0, sizeof(in));
    in.type = WIRE_DATA;
    strcpy(in.u.data.job, JOB);
    in.u.data.seq = 123456789012ULL;
    in.u.data.payload = payload;
    in.u.data.len = sizeof(payload);
    uint8_t *f = NULL;
    size_t n = 0;
    pgs_error e = {0};
    assert_int_equal(wire_encode(&in, &f, &n, &e), 0);
    assert_int_equal(wire_decode(f, n, &out, &e), 0);
    assert_int_equal(out.u.data.seq, 123456789012ULL);
    assert_int_equal(out.u.data.len, sizeof(payload));
    assert_memory_equal(out.u.data.payload, payload, sizeof(payload));
    wire_msg_clear(&out);
    free(f);

    memset(&in, 0, sizeof(in));
    in.type = WIRE_END;
    strcpy(in.u.end.job, JOB);
    in.u.end.chunks = 7;
    in.u.end.bytes = 7000000;
    randombytes_buf(in.u.end.sha256, SHA256_LEN);
    in.u.end.manifest = json_pack("{s:s}", "database", "appdb");
    round_trip(&in, &out);
    assert_memory_equal(out.u.end.sha256, in.u.end.sha256, SHA256_LEN);
    assert_string_equal(json_string_value(json_object_get(out.u.end.manifest, "database")),
                        "appdb");
    json_decref(in.u.end.manifest);
    wire_msg_clear(&out);

    memset(&in, 0, sizeof(in));
    in.type = WIRE_RESULT;
    strcpy(in.u.result.job, JOB);
    in.u.result.complete = 1;
    strcpy(in.u.result.storage_key, "pgship/prod/prod-db1/appdb/" JOB ".pgship");
    round_trip(&in, &out);
    assert_true(out.u.result.complete);
    wire_msg_clear(&out);

    static const wire_type empty[] = {WIRE_POLL, WIRE_IDLE};
    for (size_t i = 0; i < 2; i++) {
        memset(&in, 0, sizeof(in));
        in.type = empty[i];
        round_trip(&in, &out);
        wire_msg_clear(&out);
    }

    memset(&in, 0, sizeof(in));
    in.type = WIRE_ERROR;
    strcpy(in.u.error.code, "refused");
    strcpy(in.u.error.message, "unknown identity key 0123456789abcdef — ask an operator");
    round_trip(&in, &out);
    assert_string_equal(out.u.error.message, in.u.error.message);
    wire_msg_clear(&out);
}

/* A frame with the given header fields and body. */
static size_t frame(uint8_t *buf, uint8_t version, uint8_t type, const char *body)
{
    size_t n = strlen(body);
    buf[0] = 'P';
    buf[1] = 'W';
    buf[2] = version;
    buf[3] = type;
    buf[4] = (uint8_t)(n >> 24);
    buf[5] = (uint8_t)(n >> 16);
    buf[6] = (uint8_t)(n >> 8);
    buf[7] = (uint8_t)n;
    memcpy(buf + 8, body, n);
    return 8 + n;
}

#define EXPECT(type, body, code, substr)                                                          \
    do {                                                                                          \
        size_t n_ = frame(buf, WIRE_VERSION, type, body);                                                    \
        TU_ASSERT_ERR(wire_decode(buf, n_, &m, &e), e, code, substr);                             \
    } while (0)

static void test_wire_decode_rejects_hostile_frames(void **state)
{
    (void)state;
    static uint8_t buf[1 << 16];
    wire_msg m;
    pgs_error e = {0};

    TU_ASSERT_ERR(wire_decode(buf, 3, &m, &e), e, PGS_ETRUNC, "shorter than its header");
    size_t n = frame(buf, WIRE_VERSION, WIRE_POLL, "{}");
    buf[0] = 'X';
    TU_ASSERT_ERR(wire_decode(buf, n, &m, &e), e, PGS_EFORMAT, "bad magic");
    n = frame(buf, 4, WIRE_POLL, "{}");
    TU_ASSERT_ERR(wire_decode(buf, n, &m, &e), e, PGS_EVERSION, "version 4 is not supported");
    n = frame(buf, 0, WIRE_POLL, "{}");
    TU_ASSERT_ERR(wire_decode(buf, n, &m, &e), e, PGS_EVERSION, "version 0 is not supported");
    /* An older peer is told what to do about it. */
    n = frame(buf, 1, WIRE_POLL, "{}");
    TU_ASSERT_ERR(wire_decode(buf, n, &m, &e), e, PGS_EVERSION,
                  "speaks wire protocol 1 and this side speaks 3: upgrade the coordinator and its "
                  "agents together");
    n = frame(buf, 2, WIRE_POLL, "{}");
    TU_ASSERT_ERR(wire_decode(buf, n, &m, &e), e, PGS_EVERSION,
                  "speaks wire protocol 2 and this side speaks 3");
    EXPECT(10, "{}", PGS_EFORMAT, "unknown frame type 10");
    EXPECT(72, "{}", PGS_EFORMAT, "unknown frame type 72");

    /* The length field must equal what the frame carries, both ways. */
    n = frame(buf, WIRE_VERSION, WIRE_POLL, "{}");
    TU_ASSERT_ERR(wire_decode(buf, n - 1, &m, &e), e, PGS_ETRUNC, "says 2 body bytes");
    buf[n] = ' ';
    TU_ASSERT_ERR(wire_decode(buf, n + 1, &m, &e), e, PGS_ETRAIL, "carries 3");
    /* Oversize bodies are refused from the header alone. */
    buf[4] = 0x7f;
    TU_ASSERT_ERR(wire_decode(buf, n, &m, &e), e, PGS_ELIMIT, "exceeds");

    EXPECT(WIRE_POLL, "[]", PGS_EFORMAT, "not a JSON object");
    EXPECT(WIRE_POLL, "{", PGS_EFORMAT, "not valid JSON");
    EXPECT(WIRE_POLL, "{\"x\":1}", PGS_EFORMAT, "unexpected field \"x\"");
    EXPECT(WIRE_HELLO, "{\"agent\":\"a\",\"agent\":\"b\",\"version\":\"v\",\"key_id\":\"0123456789abcdef\"}",
           PGS_EFORMAT, "duplicate");
    EXPECT(WIRE_HELLO, "{\"version\":\"v\",\"key_id\":\"0123456789abcdef\"}", PGS_EFORMAT,
           "\"agent\" is missing");
    EXPECT(WIRE_HELLO, "{\"agent\":\"../x\",\"version\":\"v\",\"key_id\":\"0123456789abcdef\"}",
           PGS_EFORMAT, "\"agent\" is not valid");
    EXPECT(WIRE_HELLO, "{\"agent\":\"a\",\"version\":\"v\\n\",\"key_id\":\"0123456789abcdef\"}",
           PGS_EFORMAT, "\"version\" is not valid");
    EXPECT(WIRE_HELLO, "{\"agent\":\"a\",\"version\":\"v\",\"key_id\":\"0123\"}", PGS_EFORMAT,
           "\"key_id\" is not 16 hex digits");
    EXPECT(WIRE_HELLO, "{\"agent\":1,\"version\":\"v\",\"key_id\":\"0123456789abcdef\"}",
           PGS_EFORMAT, "not a string");
    EXPECT(WIRE_WELCOME, "{\"heartbeat_ms\":5000,\"window\":0,\"data_max\":65536}", PGS_ELIMIT,
           "\"window\" is below 1");
    EXPECT(WIRE_WELCOME, "{\"heartbeat_ms\":5000,\"window\":65,\"data_max\":65536}", PGS_ELIMIT,
           "\"window\" is out of range");
    EXPECT(WIRE_WELCOME, "{\"heartbeat_ms\":5000,\"window\":4,\"data_max\":-1}", PGS_ELIMIT,
           "\"data_max\" is out of range");
    EXPECT(WIRE_JOB, "{\"job\":\"../../etc/passwd\",\"kind\":\"backup\",\"database\":\"d\",\"label\":\"\"}",
           PGS_EFORMAT, "\"job\" is not valid");
    EXPECT(WIRE_JOB, "{\"job\":\"" JOB "\",\"kind\":\"rm\",\"database\":\"d\",\"label\":\"\"}",
           PGS_EFORMAT, "unknown job kind");
    EXPECT(WIRE_RESULT, "{\"job\":\"" JOB "\",\"state\":\"maybe\",\"error\":\"\",\"storage_key\":\"k\"}",
           PGS_EFORMAT, "complete or failed");
    EXPECT(WIRE_FAIL, "{\"job\":\"" JOB "\",\"error\":\"a\\u0007b\"}", PGS_EFORMAT,
           "\"error\" is not valid");
    EXPECT(WIRE_END, "{\"job\":\"" JOB "\",\"chunks\":1,\"bytes\":1,\"sha256\":\"00\",\"manifest\":{}}",
           PGS_EFORMAT, "\"sha256\" is not 64 hex digits");
    EXPECT(WIRE_AUTH, "{\"signature\":\"00\",\"databases\":[]}", PGS_EFORMAT,
           "not 128 hex digits");

    /* AUTH database entries: names, environments, duplicates, count. */
    char body[60000], sig[129];
    memset(sig, 'a', 128);
    sig[128] = '\0';
    snprintf(body, sizeof(body),
             "{\"signature\":\"%s\",\"databases\":[{\"name\":\"a\",\"environment\":\"PROD\","
             "\"server_version\":\"15\"}]}",
             sig);
    EXPECT(WIRE_AUTH, body, PGS_EFORMAT, "\"environment\" is not valid");
    snprintf(body, sizeof(body),
             "{\"signature\":\"%s\",\"databases\":[{\"name\":\"a\",\"environment\":\"prod\","
             "\"server_version\":\"15\"},{\"name\":\"a\",\"environment\":\"prod\","
             "\"server_version\":\"15\"}]}",
             sig);
    EXPECT(WIRE_AUTH, body, PGS_EFORMAT, "listed twice");
    size_t off = (size_t)snprintf(body, sizeof(body), "{\"signature\":\"%s\",\"databases\":[", sig);
    for (int i = 0; i <= WIRE_DBS_MAX; i++)
        off += (size_t)snprintf(body + off, sizeof(body) - off,
                                "%s{\"name\":\"d%d\",\"environment\":\"p\",\"server_version\":\"1\"}",
                                i ? "," : "", i);
    snprintf(body + off, sizeof(body) - off, "]}");
    EXPECT(WIRE_AUTH, body, PGS_ELIMIT, "at most 256 databases");
}

static void test_wire_decode_rejects_bad_data_frames(void **state)
{
    (void)state;
    uint8_t buf[256];
    wire_msg m;
    pgs_error e = {0};
    size_t h = wire_data_header(buf, JOB, 5, 4);
    memcpy(buf + h, "abcd", 4);
    assert_int_equal(wire_decode(buf, h + 4, &m, &e), 0);
    wire_msg_clear(&m);

    /* No payload at all. */
    h = wire_data_header(buf, JOB, 5, 0);
    TU_ASSERT_ERR(wire_decode(buf, h, &m, &e), e, PGS_EFORMAT, "no payload");
    /* A job id of another length, or one with a NUL or a slash. */
    h = wire_data_header(buf, JOB, 5, 4);
    buf[WIRE_HEADER_LEN] = 24;
    TU_ASSERT_ERR(wire_decode(buf, h + 4, &m, &e), e, PGS_EFORMAT, "job id length 24");
    h = wire_data_header(buf, JOB, 5, 4);
    buf[WIRE_HEADER_LEN + 20] = '/';
    TU_ASSERT_ERR(wire_decode(buf, h + 4, &m, &e), e, PGS_EFORMAT, "job id is not valid");
    h = wire_data_header(buf, JOB, 5, 4);
    buf[WIRE_HEADER_LEN + 3] = '\0';
    TU_ASSERT_ERR(wire_decode(buf, h + 4, &m, &e), e, PGS_EFORMAT, "job id is not valid");
    /* A seq beyond 2^63. */
    h = wire_data_header(buf, JOB, UINT64_MAX, 4);
    TU_ASSERT_ERR(wire_decode(buf, h + 4, &m, &e), e, PGS_ELIMIT, "seq is out of range");
    /* A body too short for its fixed part. */
    h = wire_data_header(buf, JOB, 5, 4);
    buf[7] = 10;
    TU_ASSERT_ERR(wire_decode(buf, WIRE_HEADER_LEN + 10, &m, &e), e, PGS_ETRUNC, "fixed part");
}

static void test_wire_job_ids(void **state)
{
    (void)state;
    assert_true(wire_job_id_valid(JOB));
    static const char *bad[] = {"", "20261121T164301Z-3f9a0c1", "20261121T164301Z-3f9a0c1dd",
                                "20261121X164301Z-3f9a0c1d", "20261121T164301Z_3f9a0c1d",
                                "20261121T164301Z-3F9A0C1D", "2026112aT164301Z-3f9a0c1d",
                                "20261121T164301Z-3f9a0c1g"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(wire_job_id_valid(bad[i]));
}

static void test_wire_auth_message_binds_nonce_name_and_key(void **state)
{
    (void)state;
    pgs_identity_pub pub;
    pgs_identity_sec sec;
    assert_true(sodium_init() >= 0);
    uint8_t seed[32] = {1};
    memset(&pub, 0, sizeof(pub));
    memset(&sec, 0, sizeof(sec));
    crypto_sign_seed_keypair(sec.pk, sec.sk, seed);
    memcpy(pub.pk, sec.pk, KEY_LEN);
    uint8_t nonce[WIRE_NONCE_LEN], other[WIRE_NONCE_LEN], id[KEY_ID_LEN] = {9};
    randombytes_buf(nonce, sizeof(nonce));
    memcpy(other, nonce, sizeof(other));
    other[0] ^= 1;
    uint8_t msg[WIRE_AUTH_MSG_MAX], msg2[WIRE_AUTH_MSG_MAX], sig[IDENTITY_SIG_LEN];
    size_t n = wire_auth_message(nonce, "prod-db1", id, msg);
    assert_true(n <= WIRE_AUTH_MSG_MAX);
    identity_sign(&sec, msg, n, sig);
    assert_int_equal(identity_verify(&pub, msg, n, sig), 0);
    /* Another nonce (another connection), another name, another key: the signature fails. */
    size_t n2 = wire_auth_message(other, "prod-db1", id, msg2);
    assert_int_equal(identity_verify(&pub, msg2, n2, sig), PGS_EAUTH);
    n2 = wire_auth_message(nonce, "prod-db2", id, msg2);
    assert_int_equal(identity_verify(&pub, msg2, n2, sig), PGS_EAUTH);
    id[0] ^= 1;
    n2 = wire_auth_message(nonce, "prod-db1", id, msg2);
    assert_int_equal(identity_verify(&pub, msg2, n2, sig), PGS_EAUTH);
}

/* A recipient public key in its wire text form (key_format_public without the newline). */
static void pubkey_text(uint8_t seed, const char *name, char out[WIRE_PUBKEY_TEXT_MAX + 1])
{
    pgs_pubkey pub;
    pgs_seckey sec;
    tu_fixed_keypair(seed, name, &pub, &sec);
    assert_int_equal(key_format_public(&pub, out, WIRE_PUBKEY_TEXT_MAX + 1), 0);
    out[strcspn(out, "\n")] = '\0';
}

/* A restore spec with every list filled; the caller owns it (wire_restore_spec_free). */
static wire_restore_spec *spec_new(int sanitize)
{
    wire_restore_spec *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    strcpy(r->source, "20261120T010203Z-0badcafe");
    r->source_bytes = 123456789012ULL;
    strcpy(r->profile, "app-anonymize");
    r->sanitize_sql = strdup("UPDATE users SET email = 'u' || id || '@example.invalid';\r\n"
                             "\tDELETE FROM sessions; -- «personnes»\n");
    r->check_sql = NULL;
    r->jobs = 4;
    r->data_only = 1;
    r->no_owner = 1;
    r->keep_old = !sanitize;
    strcpy(r->role, "app_owner");
    r->nschemas = 2;
    r->schemas = calloc(2, sizeof(*r->schemas));
    strcpy(r->schemas[0], "public");
    strcpy(r->schemas[1], "Billing \"Q3\" données");
    r->ntables = 1;
    r->tables = calloc(1, sizeof(*r->tables));
    strcpy(r->tables[0], "orders_*");
    if (sanitize) {
        strcpy(r->output, "20261121T164302Z-00c0ffee");
        r->nrecipients = 2;
        r->recipients = calloc(2, sizeof(*r->recipients));
        pubkey_text(1, "staging-db1", r->recipients[0]);
        pubkey_text(2, "ops", r->recipients[1]);
    }
    return r;
}

static void assert_spec_equal(const wire_restore_spec *a, const wire_restore_spec *b)
{
    assert_string_equal(a->source, b->source);
    assert_int_equal(a->source_bytes, b->source_bytes);
    assert_string_equal(a->profile, b->profile);
    if (a->sanitize_sql == NULL)
        assert_null(b->sanitize_sql);
    else
        assert_string_equal(a->sanitize_sql, b->sanitize_sql);
    if (a->check_sql == NULL)
        assert_null(b->check_sql);
    else
        assert_string_equal(a->check_sql, b->check_sql);
    assert_int_equal(a->jobs, b->jobs);
    assert_int_equal(!!a->schema_only, b->schema_only);
    assert_int_equal(!!a->data_only, b->data_only);
    assert_int_equal(!!a->no_owner, b->no_owner);
    assert_int_equal(!!a->keep_old, b->keep_old);
    assert_string_equal(a->role, b->role);
    assert_int_equal(a->nschemas, b->nschemas);
    for (size_t i = 0; i < a->nschemas; i++)
        assert_string_equal(a->schemas[i], b->schemas[i]);
    assert_int_equal(a->ntables, b->ntables);
    for (size_t i = 0; i < a->ntables; i++)
        assert_string_equal(a->tables[i], b->tables[i]);
    assert_string_equal(a->output, b->output);
    assert_int_equal(a->nrecipients, b->nrecipients);
    for (size_t i = 0; i < a->nrecipients; i++)
        assert_string_equal(a->recipients[i], b->recipients[i]);
    assert_int_equal(!!a->restore_test, b->restore_test);
    assert_string_equal(a->scratch, b->scratch);
}

/* Encodes m, decodes it, encodes the result: both frames must be the same bytes. */
static void assert_stable(const wire_msg *in)
{
    uint8_t *f1 = NULL, *f2 = NULL;
    size_t n1 = 0, n2 = 0;
    wire_msg out;
    pgs_error e = {0};
    assert_int_equal(wire_encode(in, &f1, &n1, &e), 0);
    assert_int_equal(wire_decode(f1, n1, &out, &e), 0);
    assert_int_equal(wire_encode(&out, &f2, &n2, &e), 0);
    assert_int_equal(n1, n2);
    assert_memory_equal(f1, f2, n1);
    wire_msg_clear(&out);
    free(f1);
    free(f2);
}

static void test_wire_round_trip_restore_messages(void **state)
{
    (void)state;
    wire_msg in, out;

    /* JOB restore and sanitize, with every field of the spec set. */
    static const char *const kinds[] = {"restore", "sanitize"};
    for (int k = 0; k < 2; k++) {
        memset(&in, 0, sizeof(in));
        in.type = WIRE_JOB;
        strcpy(in.u.job.job, JOB);
        strcpy(in.u.job.kind, kinds[k]);
        strcpy(in.u.job.database, k ? "scratch" : "appdb");
        in.u.job.restore = spec_new(k);
        round_trip(&in, &out);
        assert_string_equal(out.u.job.kind, kinds[k]);
        assert_string_equal(out.u.job.label, "");
        assert_non_null(out.u.job.restore);
        assert_spec_equal(in.u.job.restore, out.u.job.restore);
        wire_msg_clear(&out);
        assert_stable(&in);
        /* Both SQL texts, at their limit; no lists at all. */
        wire_restore_spec *r = in.u.job.restore;
        free(r->sanitize_sql);
        r->sanitize_sql = malloc(WIRE_SQL_MAX + 1);
        memset(r->sanitize_sql, 'x', WIRE_SQL_MAX);
        r->sanitize_sql[WIRE_SQL_MAX] = '\0';
        r->check_sql = strdup(r->sanitize_sql);
        r->nschemas = r->ntables = 0;
        r->data_only = 0;
        r->schema_only = 1;
        r->role[0] = r->profile[0] = '\0';
        round_trip(&in, &out);
        assert_spec_equal(in.u.job.restore, out.u.job.restore);
        wire_msg_clear(&out);
        wire_restore_spec_free(in.u.job.restore);
    }
    /* A backup job still has no spec. */
    memset(&in, 0, sizeof(in));
    in.type = WIRE_JOB;
    strcpy(in.u.job.job, JOB);
    strcpy(in.u.job.kind, "backup");
    strcpy(in.u.job.database, "appdb");
    round_trip(&in, &out);
    assert_null(out.u.job.restore);
    wire_msg_clear(&out);

    /* AUTH with restore keys. */
    memset(&in, 0, sizeof(in));
    in.type = WIRE_AUTH;
    wire_db db = {"appdb", "staging", "16.4"};
    char keys[2][WIRE_PUBKEY_TEXT_MAX + 1];
    pubkey_text(3, "staging-db1-restore", keys[0]);
    pubkey_text(4, "old-restore", keys[1]);
    in.u.auth.dbs = &db;
    in.u.auth.ndbs = 1;
    in.u.auth.restore_keys = keys;
    in.u.auth.nrestore_keys = 2;
    round_trip(&in, &out);
    assert_int_equal(out.u.auth.nrestore_keys, 2);
    assert_string_equal(out.u.auth.restore_keys[0], keys[0]);
    assert_string_equal(out.u.auth.restore_keys[1], keys[1]);
    wire_msg_clear(&out);
    assert_stable(&in);

    memset(&in, 0, sizeof(in));
    in.type = WIRE_FETCH;
    strcpy(in.u.fetch.job, JOB);
    in.u.fetch.seq = INT64_MAX;
    round_trip(&in, &out);
    assert_string_equal(out.u.fetch.job, JOB);
    assert_int_equal(out.u.fetch.seq, INT64_MAX);
    wire_msg_clear(&out);

    memset(&in, 0, sizeof(in));
    in.type = WIRE_EOF;
    strcpy(in.u.eof.job, JOB);
    in.u.eof.pieces = 3;
    in.u.eof.bytes = 9000000;
    randombytes_buf(in.u.eof.sha256, SHA256_LEN);
    round_trip(&in, &out);
    assert_int_equal(out.u.eof.pieces, 3);
    assert_int_equal(out.u.eof.bytes, 9000000);
    assert_memory_equal(out.u.eof.sha256, in.u.eof.sha256, SHA256_LEN);
    wire_msg_clear(&out);
    in.u.eof.pieces = in.u.eof.bytes = 0; /* an empty object: no piece at all */
    round_trip(&in, &out);
    wire_msg_clear(&out);

    memset(&in, 0, sizeof(in));
    in.type = WIRE_STEP;
    strcpy(in.u.step.job, JOB);
    strcpy(in.u.step.step, "pg_restore");
    strcpy(in.u.step.detail, "4 jobs into appdb__pgship_tmp_" JOB "\tété");
    round_trip(&in, &out);
    assert_string_equal(out.u.step.step, "pg_restore");
    assert_string_equal(out.u.step.detail, in.u.step.detail);
    wire_msg_clear(&out);
    in.u.step.detail[0] = '\0';
    round_trip(&in, &out);
    assert_string_equal(out.u.step.detail, "");
    wire_msg_clear(&out);

    memset(&in, 0, sizeof(in));
    in.type = WIRE_REPORT;
    strcpy(in.u.report.job, JOB);
    in.u.report.ok = 1;
    strcpy(in.u.report.step, "done");
    in.u.report.report = json_pack("{s:[{s:s,s:i}],s:{s:i}}", "steps", "name", "pg_restore", "ms",
                                   1234, "rows", "public.users", 42);
    round_trip(&in, &out);
    assert_true(out.u.report.ok);
    assert_string_equal(out.u.report.error, "");
    assert_true(json_equal(out.u.report.report, in.u.report.report));
    wire_msg_clear(&out);
    assert_stable(&in);
    in.u.report.ok = 0;
    strcpy(in.u.report.step, "check");
    strcpy(in.u.report.error, "check.sql: 3 rows still hold real e-mail addresses");
    round_trip(&in, &out);
    assert_false(out.u.report.ok);
    assert_string_equal(out.u.report.step, "check");
    assert_string_equal(out.u.report.error, in.u.report.error);
    wire_msg_clear(&out);
    json_decref(in.u.report.report);

    /* PIECE: the DATA layout under its own type. */
    static const uint8_t payload[] = "a piece of the stored archive";
    memset(&in, 0, sizeof(in));
    in.type = WIRE_PIECE;
    strcpy(in.u.data.job, JOB);
    in.u.data.seq = 17;
    in.u.data.payload = payload;
    in.u.data.len = sizeof(payload);
    uint8_t *f = NULL;
    size_t n = 0;
    pgs_error e = {0};
    assert_int_equal(wire_encode(&in, &f, &n, &e), 0);
    assert_int_equal(f[3], WIRE_PIECE);
    assert_int_equal(wire_decode(f, n, &out, &e), 0);
    assert_int_equal(out.type, WIRE_PIECE);
    assert_string_equal(out.u.data.job, JOB);
    assert_int_equal(out.u.data.seq, 17);
    assert_int_equal(out.u.data.len, sizeof(payload));
    assert_memory_equal(out.u.data.payload, payload, sizeof(payload));
    wire_msg_clear(&out);
    /* wire_piece_header writes what the encoder writes, and differs from DATA in the type only. */
    uint8_t hdr[WIRE_DATA_HDR_MAX], dhdr[WIRE_DATA_HDR_MAX];
    assert_int_equal(wire_piece_header(hdr, JOB, 17, sizeof(payload)), WIRE_DATA_HDR_MAX);
    assert_memory_equal(hdr, f, WIRE_DATA_HDR_MAX);
    wire_data_header(dhdr, JOB, 17, sizeof(payload));
    assert_int_equal(dhdr[3], WIRE_DATA);
    dhdr[3] = WIRE_PIECE;
    assert_memory_equal(hdr, dhdr, WIRE_DATA_HDR_MAX);
    free(f);
}

/* The JSON text of a valid restore spec with one field replaced (or dropped, when val is NULL, or
 * added, when key is new). */
static void restore_body(char *out, size_t cap, const char *kind, const char *key, const char *val)
{
    char rcpt[WIRE_PUBKEY_TEXT_MAX + 1];
    pubkey_text(1, "staging-db1", rcpt);
    int sanitize = strcmp(kind, "sanitize") == 0;
    struct {
        const char *k;
        char v[512];
    } f[] = {
        {"source", "\"20261120T010203Z-0badcafe\""},
        {"source_bytes", "1000"},
        {"profile", "\"app-anonymize\""},
        {"sanitize_sql", "\"DELETE FROM sessions;\\n\""},
        {"check_sql", "null"},
        {"jobs", "2"},
        {"schema_only", "false"},
        {"data_only", "false"},
        {"no_owner", "true"},
        {"keep_old", "false"},
        {"role", "\"\""},
        {"schemas", "[\"public\"]"},
        {"tables", "[]"},
        {"output", ""},
        {"recipients", ""},
        {"restore_test", "false"},
        {"scratch", "\"\""},
        {NULL, ""},
    };
    snprintf(f[13].v, sizeof(f[13].v), "%s", sanitize ? "\"20261121T164302Z-00c0ffee\"" : "\"\"");
    if (sanitize)
        snprintf(f[14].v, sizeof(f[14].v), "[\"%s\"]", rcpt);
    else
        snprintf(f[14].v, sizeof(f[14].v), "[]");
    if (strcmp(kind, "verify") == 0) {
        /* the valid verify job: a restore test, and nothing a verification does not use */
        snprintf(f[2].v, sizeof(f[2].v), "\"\"");
        snprintf(f[3].v, sizeof(f[3].v), "null");
        snprintf(f[11].v, sizeof(f[11].v), "[]");
        snprintf(f[15].v, sizeof(f[15].v), "true");
        snprintf(f[16].v, sizeof(f[16].v), "\"pgship_verify_0a1b2c3d\"");
    }
    size_t off = (size_t)snprintf(out, cap,
                                  "{\"job\":\"" JOB "\",\"kind\":\"%s\",\"database\":\"appdb\","
                                  "\"label\":\"\",\"restore\":{",
                                  kind);
    int first = 1, replaced = 0;
    for (size_t i = 0; f[i].k != NULL; i++) {
        const char *v = f[i].v;
        if (key != NULL && strcmp(key, f[i].k) == 0) {
            replaced = 1;
            if (val == NULL)
                continue;
            v = val;
        }
        off += (size_t)snprintf(out + off, cap - off, "%s\"%s\":%s", first ? "" : ",", f[i].k, v);
        first = 0;
    }
    if (key != NULL && !replaced)
        off += (size_t)snprintf(out + off, cap - off, ",\"%s\":%s", key, val);
    snprintf(out + off, cap - off, "}}");
}

#define EXPECT_RESTORE(kind, key, val, code, substr)                                              \
    do {                                                                                          \
        restore_body(body, sizeof(body), kind, key, val);                                         \
        EXPECT(WIRE_JOB, body, code, substr);                                                     \
    } while (0)

static void test_wire_decode_rejects_hostile_restore_jobs(void **state)
{
    (void)state;
    static uint8_t buf[WIRE_HEADER_LEN + WIRE_JOB_MAX + 64];
    static char body[WIRE_JOB_MAX + 1];
    wire_msg m;
    pgs_error e = {0};

    /* The bodies below differ from a valid one by one thing. */
    for (int k = 0; k < 2; k++) {
        restore_body(body, sizeof(body), k ? "sanitize" : "restore", NULL, NULL);
        size_t n = frame(buf, WIRE_VERSION, WIRE_JOB, body);
        if (wire_decode(buf, n, &m, &e) != 0)
            fail_msg("valid %s job refused: %s", k ? "sanitize" : "restore", e.msg);
        wire_msg_clear(&m);
    }

    /* Missing, extra and ill-typed fields. */
    EXPECT_RESTORE("restore", "jobs", NULL, PGS_EFORMAT, "field \"jobs\" is missing");
    EXPECT_RESTORE("restore", "check_sql", NULL, PGS_EFORMAT, "\"check_sql\" is missing");
    EXPECT_RESTORE("restore", "recipients", NULL, PGS_EFORMAT, "\"recipients\" is missing");
    EXPECT_RESTORE("restore", "compress", "true", PGS_EFORMAT, "unexpected field \"compress\"");
    EXPECT_RESTORE("restore", "no_owner", "1", PGS_EFORMAT, "\"no_owner\" is missing or not a boolean");
    EXPECT_RESTORE("restore", "jobs", "\"4\"", PGS_EFORMAT, "\"jobs\" is missing or not an integer");
    EXPECT_RESTORE("restore", "sanitize_sql", "[]", PGS_EFORMAT, "not a string or null");
    EXPECT_RESTORE("restore", "schemas", "\"public\"", PGS_EFORMAT, "\"schemas\" is missing or not an array");
    EXPECT_RESTORE("restore", "tables", "[1]", PGS_EFORMAT, "\"tables\": entry 0 is not a string");
    EXPECT(WIRE_JOB, "{\"job\":\"" JOB "\",\"kind\":\"restore\",\"database\":\"d\",\"label\":\"\","
                     "\"restore\":[]}",
           PGS_EFORMAT, "\"restore\" is not an object");

    /* Values out of their range. */
    EXPECT_RESTORE("restore", "jobs", "0", PGS_ELIMIT, "\"jobs\" must be 1 to 64");
    EXPECT_RESTORE("restore", "jobs", "65", PGS_ELIMIT, "\"jobs\" is out of range");
    EXPECT_RESTORE("restore", "source_bytes", "-1", PGS_ELIMIT, "\"source_bytes\" is out of range");
    EXPECT_RESTORE("restore", "source", "\"latest\"", PGS_EFORMAT, "\"source\" is not valid");
    EXPECT_RESTORE("restore", "profile", "\"../etc\"", PGS_EFORMAT, "\"profile\" is not valid");
    EXPECT_RESTORE("restore", "role", "\"a b\"", PGS_EFORMAT, "\"role\" is not valid");
    restore_body(body, sizeof(body), "restore", "data_only", "true");
    char *so = strstr(body, "\"schema_only\":false");
    assert_non_null(so);
    memcpy(so + strlen("\"schema_only\":"), "true ", 5);
    EXPECT(WIRE_JOB, body, PGS_EFORMAT, "\"schema_only\" and \"data_only\" are both true");

    /* SQL: its size, and control characters other than tab and line ends. */
    EXPECT_RESTORE("restore", "check_sql", "\"SELECT 1;\\u001b[2J\"", PGS_EFORMAT,
                   "\"check_sql\" holds a control character");
    EXPECT_RESTORE("restore", "sanitize_sql", "\"a\\u0000b\"", PGS_EFORMAT, "not valid JSON");
    char *big = malloc(WIRE_SQL_MAX + 8);
    big[0] = '"';
    memset(big + 1, 'x', WIRE_SQL_MAX + 1);
    strcpy(big + 2 + WIRE_SQL_MAX, "\"");
    EXPECT_RESTORE("restore", "sanitize_sql", big, PGS_ELIMIT,
                   "\"sanitize_sql\" is longer than 524288 bytes");
    free(big);

    /* Patterns: count, size, control characters, empty. */
    char list[WIRE_PATTERNS_MAX * 8 + 16];
    size_t off = (size_t)snprintf(list, sizeof(list), "[");
    for (int i = 0; i <= WIRE_PATTERNS_MAX; i++)
        off += (size_t)snprintf(list + off, sizeof(list) - off, "%s\"s%d\"", i ? "," : "", i);
    snprintf(list + off, sizeof(list) - off, "]");
    EXPECT_RESTORE("restore", "schemas", list, PGS_ELIMIT, "\"schemas\" must list at most 64");
    char longp[WIRE_PATTERN_MAX + 8];
    longp[0] = '[';
    longp[1] = '"';
    memset(longp + 2, 't', WIRE_PATTERN_MAX + 1);
    strcpy(longp + 3 + WIRE_PATTERN_MAX, "\"]");
    EXPECT_RESTORE("restore", "tables", longp, PGS_ELIMIT, "\"tables\": entry 0 is longer than 127");
    EXPECT_RESTORE("restore", "tables", "[\"a\\nb\"]", PGS_EFORMAT, "\"tables\": entry 0 is not 1-127");
    EXPECT_RESTORE("restore", "schemas", "[\"ok\",\"\"]", PGS_EFORMAT, "\"schemas\": entry 1 is not 1-127");

    /* Kinds and what they carry. */
    EXPECT(WIRE_JOB, "{\"job\":\"" JOB "\",\"kind\":\"restore\",\"database\":\"d\",\"label\":\"\"}",
           PGS_EFORMAT, "a restore job needs field \"restore\"");
    restore_body(body, sizeof(body), "backup", NULL, NULL);
    EXPECT(WIRE_JOB, body, PGS_EFORMAT, "a backup job carries no field \"restore\"");
    restore_body(body, sizeof(body), "restore", NULL, NULL);
    char *label = strstr(body, "\"label\":\"\"") + 9;
    memmove(label + 7, label, strlen(label) + 1);
    memcpy(label, "nightly", 7);
    EXPECT(WIRE_JOB, body, PGS_EFORMAT, "field \"label\" is for backup jobs only");
    EXPECT_RESTORE("restore", "output", "\"20261121T164302Z-00c0ffee\"", PGS_EFORMAT,
                   "for sanitize jobs only");
    char rcpt[WIRE_PUBKEY_TEXT_MAX + 1], val[WIRE_PUBKEY_TEXT_MAX * 2];
    pubkey_text(1, "staging-db1", rcpt);
    snprintf(val, sizeof(val), "[\"%s\"]", rcpt);
    EXPECT_RESTORE("restore", "recipients", val, PGS_EFORMAT, "for sanitize jobs only");
    EXPECT_RESTORE("sanitize", "recipients", "[]", PGS_ELIMIT, "must list 1 to 32 public keys");
    EXPECT_RESTORE("sanitize", "output", "\"\"", PGS_EFORMAT, "\"output\" is not a job id");

    /* Recipients: a key of another kind, a bad key, a second line, another spelling. */
    EXPECT_RESTORE("sanitize", "recipients", "[\"pgship-public-key-v1 x25519 AAAA ops\"]",
                   PGS_EFORMAT, "entry 0 is not a public key: key material is not 32 bytes");
    snprintf(val, sizeof(val), "[\"%s\\n# x\"]", rcpt);
    EXPECT_RESTORE("sanitize", "recipients", val, PGS_EFORMAT, "not one line of printable text");
    char spaced[WIRE_PUBKEY_TEXT_MAX + 8];
    snprintf(spaced, sizeof(spaced), "%s", rcpt);
    char *sp = strchr(spaced, ' ');
    memmove(sp + 1, sp, strlen(sp) + 1);
    snprintf(val, sizeof(val), "[\"%s\"]", spaced);
    EXPECT_RESTORE("sanitize", "recipients", val, PGS_EFORMAT, "not a public key in its text form");
    pgs_identity_pub ipub;
    memset(&ipub, 0, sizeof(ipub));
    strcpy(ipub.name, "agent1");
    char iline[WIRE_PUBKEY_TEXT_MAX + 2];
    assert_int_equal(identity_format_public(&ipub, iline, sizeof(iline)), 0);
    iline[strcspn(iline, "\n")] = '\0';
    snprintf(val, sizeof(val), "[\"%s\",\"%s\"]", rcpt, iline);
    EXPECT_RESTORE("sanitize", "recipients", val, PGS_EINVAL, "entry 1 is not a public key");
    char many[(WIRE_RECIPIENTS_MAX + 1) * (WIRE_PUBKEY_TEXT_MAX + 4) + 8];
    off = (size_t)snprintf(many, sizeof(many), "[");
    for (int i = 0; i <= WIRE_RECIPIENTS_MAX; i++)
        off += (size_t)snprintf(many + off, sizeof(many) - off, "%s\"%s\"", i ? "," : "", rcpt);
    snprintf(many + off, sizeof(many) - off, "]");
    EXPECT_RESTORE("sanitize", "recipients", many, PGS_ELIMIT, "\"recipients\" must list at most 32");
}

/* The encoder refuses what the decoder would: a coordinator cannot build a job its agent drops. */
static void test_wire_encode_refuses_invalid_restore_messages(void **state)
{
    (void)state;
    wire_msg m;
    uint8_t *f = NULL;
    size_t n = 0;
    pgs_error e = {0};

    memset(&m, 0, sizeof(m));
    m.type = WIRE_JOB;
    strcpy(m.u.job.job, JOB);
    strcpy(m.u.job.kind, "backup");
    strcpy(m.u.job.database, "appdb");
    m.u.job.restore = spec_new(0);
    TU_ASSERT_ERR(wire_encode(&m, &f, &n, &e), e, PGS_EFORMAT, "carries no field \"restore\"");
    strcpy(m.u.job.kind, "sanitize");
    TU_ASSERT_ERR(wire_encode(&m, &f, &n, &e), e, PGS_EFORMAT, "\"output\" is not a job id");
    strcpy(m.u.job.kind, "restore");
    m.u.job.restore->schema_only = 1;
    TU_ASSERT_ERR(wire_encode(&m, &f, &n, &e), e, PGS_EFORMAT, "both true");
    m.u.job.restore->schema_only = 0;
    m.u.job.restore->jobs = 0;
    TU_ASSERT_ERR(wire_encode(&m, &f, &n, &e), e, PGS_ELIMIT, "\"jobs\" must be 1 to 64");
    m.u.job.restore->jobs = 1;
    m.u.job.restore->sanitize_sql[3] = '\b';
    TU_ASSERT_ERR(wire_encode(&m, &f, &n, &e), e, PGS_EFORMAT, "control character");
    m.u.job.restore->sanitize_sql[3] = 'A';
    strcpy(m.u.job.label, "nightly");
    TU_ASSERT_ERR(wire_encode(&m, &f, &n, &e), e, PGS_EINVAL, "for backup jobs only");
    m.u.job.label[0] = '\0';
    assert_int_equal(wire_encode(&m, &f, &n, &e), 0);
    free(f);
    wire_restore_spec_free(m.u.job.restore);
    m.u.job.restore = NULL;
    TU_ASSERT_ERR(wire_encode(&m, &f, &n, &e), e, PGS_EFORMAT, "needs field \"restore\"");

    /* A key line with its newline is not the text form. */
    memset(&m, 0, sizeof(m));
    m.type = WIRE_AUTH;
    char keys[1][WIRE_PUBKEY_TEXT_MAX + 1];
    pgs_pubkey pub;
    pgs_seckey sec;
    tu_fixed_keypair(5, "k", &pub, &sec);
    assert_int_equal(key_format_public(&pub, keys[0], sizeof(keys[0])), 0);
    m.u.auth.restore_keys = keys;
    m.u.auth.nrestore_keys = 1;
    TU_ASSERT_ERR(wire_encode(&m, &f, &n, &e), e, PGS_EFORMAT, "\"restore_keys\": entry 0");
    keys[0][strcspn(keys[0], "\n")] = '\0';
    assert_int_equal(wire_encode(&m, &f, &n, &e), 0);
    free(f);
    m.u.auth.nrestore_keys = WIRE_RECIPIENTS_MAX + 1;
    TU_ASSERT_ERR(wire_encode(&m, &f, &n, &e), e, PGS_ELIMIT, "0 to 32 public keys");

    memset(&m, 0, sizeof(m));
    m.type = WIRE_REPORT;
    strcpy(m.u.report.job, JOB);
    m.u.report.ok = 1;
    strcpy(m.u.report.step, "swap");
    TU_ASSERT_ERR(wire_encode(&m, &f, &n, &e), e, PGS_EFORMAT, "step \"done\" and error \"\"");
    strcpy(m.u.report.step, "done");
    strcpy(m.u.report.error, "oops");
    TU_ASSERT_ERR(wire_encode(&m, &f, &n, &e), e, PGS_EFORMAT, "step \"done\" and error \"\"");
    m.u.report.ok = 0;
    m.u.report.report = json_array();
    TU_ASSERT_ERR(wire_encode(&m, &f, &n, &e), e, PGS_EINVAL, "\"report\" is not an object");
    json_decref(m.u.report.report);
    m.u.report.report = NULL;
    assert_int_equal(wire_encode(&m, &f, &n, &e), 0); /* NULL: an empty report */
    free(f);

    memset(&m, 0, sizeof(m));
    m.type = WIRE_STEP;
    strcpy(m.u.step.job, JOB);
    strcpy(m.u.step.step, "Fetch");
    TU_ASSERT_ERR(wire_encode(&m, &f, &n, &e), e, PGS_EFORMAT, "\"step\" is not valid");

    memset(&m, 0, sizeof(m));
    m.type = WIRE_EOF;
    strcpy(m.u.eof.job, JOB);
    m.u.eof.pieces = 2;
    m.u.eof.bytes = 1;
    TU_ASSERT_ERR(wire_encode(&m, &f, &n, &e), e, PGS_EFORMAT, "2 pieces cannot carry 1 bytes");

    memset(&m, 0, sizeof(m));
    m.type = WIRE_PIECE;
    strcpy(m.u.data.job, JOB);
    TU_ASSERT_ERR(wire_encode(&m, &f, &n, &e), e, PGS_EINVAL, "PIECE frame: bad job id or payload");
}

/* A verify spec without a restore test: only what a verification uses. */
static wire_restore_spec *verify_spec_new(void)
{
    wire_restore_spec *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    strcpy(r->source, "20261120T010203Z-0badcafe");
    r->source_bytes = 4096;
    r->jobs = 2;
    r->no_owner = 1;
    return r;
}

static void test_wire_scratch_names(void **state)
{
    (void)state;
    assert_true(wire_scratch_name_valid("pgship_verify_0a1b2c3d"));
    assert_true(wire_scratch_name_valid("pgship_verify_00000000"));
    assert_false(wire_scratch_name_valid("pgship_verify_0A1B2C3D"));
    assert_false(wire_scratch_name_valid("pgship_verify_0a1b2c3"));
    assert_false(wire_scratch_name_valid("pgship_verify_0a1b2c3d0"));
    assert_false(wire_scratch_name_valid("pgship_verify_0a1b2c3g"));
    assert_false(wire_scratch_name_valid("pgship_verify_"));
    assert_false(wire_scratch_name_valid("pgship_verify__pgship_tmp_"));
    assert_false(wire_scratch_name_valid("xgship_verify_0a1b2c3d"));
    assert_false(wire_scratch_name_valid("appdb"));
    assert_false(wire_scratch_name_valid(""));
}

/* Verify jobs round-trip with and without a restore test; the encoder refuses what the decoder
 * would. */
static void test_wire_round_trip_verify_jobs(void **state)
{
    (void)state;
    wire_msg in, out;
    uint8_t *f = NULL;
    size_t n = 0;
    pgs_error e = {0};
    memset(&in, 0, sizeof(in));
    in.type = WIRE_JOB;
    strcpy(in.u.job.job, JOB);
    strcpy(in.u.job.kind, "verify");
    strcpy(in.u.job.database, "appdb");
    wire_restore_spec *r = in.u.job.restore = verify_spec_new();
    round_trip(&in, &out);
    assert_string_equal(out.u.job.kind, "verify");
    assert_spec_equal(r, out.u.job.restore);
    assert_false(out.u.job.restore->restore_test);
    wire_msg_clear(&out);
    assert_stable(&in);
    r->restore_test = 1;
    strcpy(r->scratch, "pgship_verify_00c0ffee");
    round_trip(&in, &out);
    assert_true(out.u.job.restore->restore_test);
    assert_string_equal(out.u.job.restore->scratch, "pgship_verify_00c0ffee");
    wire_msg_clear(&out);
    assert_stable(&in);

    /* The scratch database: its one form, and only with a restore test. */
    strcpy(r->scratch, "appdb");
    TU_ASSERT_ERR(wire_encode(&in, &f, &n, &e), e, PGS_EFORMAT,
                  "\"scratch\" is not pgship_verify_ followed by 8 lowercase hex digits");
    r->scratch[0] = '\0';
    TU_ASSERT_ERR(wire_encode(&in, &f, &n, &e), e, PGS_EFORMAT, "needs its scratch database");
    r->restore_test = 0;
    strcpy(r->scratch, "pgship_verify_00c0ffee");
    TU_ASSERT_ERR(wire_encode(&in, &f, &n, &e), e, PGS_EFORMAT, "without \"restore_test\"");
    r->scratch[0] = '\0';
    /* Nothing a verification does not use. */
    r->keep_old = 1;
    TU_ASSERT_ERR(wire_encode(&in, &f, &n, &e), e, PGS_EFORMAT, "a verify job takes only");
    r->keep_old = 0;
    r->check_sql = strdup("SELECT 1");
    TU_ASSERT_ERR(wire_encode(&in, &f, &n, &e), e, PGS_EFORMAT, "a verify job takes only");
    free(r->check_sql);
    r->check_sql = NULL;
    strcpy(r->role, "postgres");
    TU_ASSERT_ERR(wire_encode(&in, &f, &n, &e), e, PGS_EFORMAT, "a verify job takes only");
    r->role[0] = '\0';
    r->schema_only = 1;
    TU_ASSERT_ERR(wire_encode(&in, &f, &n, &e), e, PGS_EFORMAT, "a verify job takes only");
    r->schema_only = 0;
    strcpy(r->output, JOB);
    TU_ASSERT_ERR(wire_encode(&in, &f, &n, &e), e, PGS_EFORMAT, "a verify job takes only");
    r->output[0] = '\0';
    r->jobs = 65;
    TU_ASSERT_ERR(wire_encode(&in, &f, &n, &e), e, PGS_ELIMIT, "\"jobs\" must be 1 to 64");
    r->jobs = 1;
    assert_int_equal(wire_encode(&in, &f, &n, &e), 0);
    free(f);
    /* A restore (or sanitize) job has no restore test. */
    r->restore_test = 1;
    strcpy(r->scratch, "pgship_verify_00c0ffee");
    strcpy(in.u.job.kind, "restore");
    TU_ASSERT_ERR(wire_encode(&in, &f, &n, &e), e, PGS_EFORMAT, "for verify jobs only");
    wire_restore_spec_free(r);
    in.u.job.restore = NULL;
    strcpy(in.u.job.kind, "verify");
    TU_ASSERT_ERR(wire_encode(&in, &f, &n, &e), e, PGS_EFORMAT,
                  "a verify job needs field \"restore\"");
}

static void test_wire_decode_rejects_hostile_verify_jobs(void **state)
{
    (void)state;
    static uint8_t buf[WIRE_HEADER_LEN + WIRE_JOB_MAX + 64];
    static char body[WIRE_JOB_MAX + 1];
    wire_msg m;
    pgs_error e = {0};

    restore_body(body, sizeof(body), "verify", NULL, NULL);
    size_t n = frame(buf, WIRE_VERSION, WIRE_JOB, body);
    if (wire_decode(buf, n, &m, &e) != 0)
        fail_msg("valid verify job refused: %s", e.msg);
    assert_true(m.u.job.restore->restore_test);
    assert_string_equal(m.u.job.restore->scratch, "pgship_verify_0a1b2c3d");
    wire_msg_clear(&m);
    restore_body(body, sizeof(body), "verify", "restore_test", "false");
    char *sc = strstr(body, "\"pgship_verify_0a1b2c3d\"");
    assert_non_null(sc);
    memmove(sc + 1, sc + 23, strlen(sc + 23) + 1); /* scratch "" */
    n = frame(buf, WIRE_VERSION, WIRE_JOB, body);
    if (wire_decode(buf, n, &m, &e) != 0)
        fail_msg("valid verify job without a restore test refused: %s", e.msg);
    assert_false(m.u.job.restore->restore_test);
    wire_msg_clear(&m);

    /* The scratch database: the one name an agent may create and drop for a verification. */
    EXPECT_RESTORE("verify", "scratch", "\"postgres\"", PGS_EFORMAT,
                   "\"scratch\" is not pgship_verify_");
    EXPECT_RESTORE("verify", "scratch", "\"pgship_verify_0A1B2C3D\"", PGS_EFORMAT,
                   "\"scratch\" is not pgship_verify_");
    EXPECT_RESTORE("verify", "scratch", "\"pgship_verify_0a1b2c3d; DROP\"", PGS_EFORMAT,
                   "\"scratch\" is not pgship_verify_");
    EXPECT_RESTORE("verify", "scratch", "\"\"", PGS_EFORMAT, "needs its scratch database");
    EXPECT_RESTORE("verify", "scratch",
                   "\"pgship_verify_0a1b2c3dxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                   "xxxxxx\"",
                   PGS_ELIMIT, "\"scratch\" is longer than 63 bytes");
    EXPECT_RESTORE("verify", "scratch", "7", PGS_EFORMAT, "\"scratch\" is missing or not a string");
    EXPECT_RESTORE("verify", "scratch", NULL, PGS_EFORMAT, "\"scratch\" is missing");
    EXPECT_RESTORE("verify", "restore_test", NULL, PGS_EFORMAT,
                   "\"restore_test\" is missing or not a boolean");
    EXPECT_RESTORE("verify", "restore_test", "1", PGS_EFORMAT,
                   "\"restore_test\" is missing or not a boolean");
    EXPECT_RESTORE("verify", "restore_test", "false", PGS_EFORMAT, "without \"restore_test\"");
    /* What a verification does not use. */
    EXPECT_RESTORE("verify", "keep_old", "true", PGS_EFORMAT, "a verify job takes only");
    EXPECT_RESTORE("verify", "sanitize_sql", "\"DROP DATABASE appdb;\"", PGS_EFORMAT,
                   "a verify job takes only");
    EXPECT_RESTORE("verify", "check_sql", "\"SELECT 1\"", PGS_EFORMAT, "a verify job takes only");
    EXPECT_RESTORE("verify", "profile", "\"app-anonymize\"", PGS_EFORMAT,
                   "a verify job takes only");
    EXPECT_RESTORE("verify", "tables", "[\"t\"]", PGS_EFORMAT, "a verify job takes only");
    EXPECT_RESTORE("verify", "data_only", "true", PGS_EFORMAT, "a verify job takes only");
    EXPECT_RESTORE("verify", "output", "\"20261121T164302Z-00c0ffee\"", PGS_EFORMAT,
                   "a verify job takes only");
    EXPECT_RESTORE("verify", "jobs", "0", PGS_ELIMIT, "\"jobs\" must be 1 to 64");
    EXPECT_RESTORE("verify", "source", "\"../x\"", PGS_EFORMAT, "\"source\" is not valid");
    /* The other kinds have no restore test. */
    EXPECT_RESTORE("restore", "restore_test", "true", PGS_EFORMAT, "for verify jobs only");
    EXPECT_RESTORE("restore", "scratch", "\"pgship_verify_0a1b2c3d\"", PGS_EFORMAT,
                   "for verify jobs only");
    EXPECT_RESTORE("sanitize", "restore_test", "true", PGS_EFORMAT, "for verify jobs only");
    EXPECT(WIRE_JOB, "{\"job\":\"" JOB "\",\"kind\":\"verify\",\"database\":\"d\",\"label\":\"\"}",
           PGS_EFORMAT, "a verify job needs field \"restore\"");
    EXPECT(WIRE_JOB, "{\"job\":\"" JOB "\",\"kind\":\"verify2\",\"database\":\"d\",\"label\":\"\"}",
           PGS_EFORMAT, "unknown job kind \"verify2\"");
    restore_body(body, sizeof(body), "verify", NULL, NULL);
    char *label = strstr(body, "\"label\":\"\"") + 9;
    memmove(label + 1, label, strlen(label) + 1);
    *label = 'x';
    EXPECT(WIRE_JOB, body, PGS_EFORMAT, "field \"label\" is for backup jobs only");
}

static void test_wire_decode_rejects_hostile_restore_frames(void **state)
{
    (void)state;
    static uint8_t buf[WIRE_HEADER_LEN + WIRE_REPORT_MAX + WIRE_CONTROL_MAX + 64];
    wire_msg m;
    pgs_error e = {0};
    char sha[65];
    memset(sha, 'a', 64);
    sha[64] = '\0';
    char body[512];

    /* FETCH */
    EXPECT(WIRE_FETCH, "{\"job\":\"" JOB "\"}", PGS_EFORMAT, "\"seq\" is missing");
    EXPECT(WIRE_FETCH, "{\"job\":\"" JOB "\",\"seq\":-1}", PGS_ELIMIT, "\"seq\" is out of range");
    EXPECT(WIRE_FETCH, "{\"job\":\"" JOB "\",\"seq\":1,\"window\":4}", PGS_EFORMAT,
           "unexpected field \"window\"");
    EXPECT(WIRE_FETCH, "{\"job\":\"x\",\"seq\":1}", PGS_EFORMAT, "\"job\" is not valid");

    /* EOF: hex, counts that cannot be, fields */
    EXPECT(WIRE_EOF, "{\"job\":\"" JOB "\",\"pieces\":1,\"bytes\":1,\"sha256\":\"00\"}", PGS_EFORMAT,
           "\"sha256\" is not 64 hex digits");
    snprintf(body, sizeof(body),
             "{\"job\":\"" JOB "\",\"pieces\":1,\"bytes\":1,\"sha256\":\"%.63sg\"}", sha);
    EXPECT(WIRE_EOF, body, PGS_EFORMAT, "\"sha256\" is not 64 hex digits");
    snprintf(body, sizeof(body),
             "{\"job\":\"" JOB "\",\"pieces\":1,\"bytes\":1,\"sha256\":\"%s0\"}", sha);
    EXPECT(WIRE_EOF, body, PGS_ELIMIT, "\"sha256\" is longer than 64 bytes");
    snprintf(body, sizeof(body), "{\"job\":\"" JOB "\",\"pieces\":0,\"bytes\":5,\"sha256\":\"%s\"}",
             sha);
    EXPECT(WIRE_EOF, body, PGS_EFORMAT, "0 pieces cannot carry 5 bytes");
    snprintf(body, sizeof(body), "{\"job\":\"" JOB "\",\"pieces\":1,\"bytes\":1,\"sha256\":\"%s\","
             "\"manifest\":{}}", sha);
    EXPECT(WIRE_EOF, body, PGS_EFORMAT, "unexpected field \"manifest\"");
    snprintf(body, sizeof(body), "{\"job\":\"" JOB "\",\"bytes\":1,\"sha256\":\"%s\"}", sha);
    EXPECT(WIRE_EOF, body, PGS_EFORMAT, "\"pieces\" is missing");

    /* STEP */
    EXPECT(WIRE_STEP, "{\"job\":\"" JOB "\",\"step\":\"pg-restore\",\"detail\":\"\"}", PGS_EFORMAT,
           "\"step\" is not valid");
    EXPECT(WIRE_STEP, "{\"job\":\"" JOB "\",\"step\":\"\",\"detail\":\"\"}", PGS_EFORMAT,
           "\"step\" is not valid");
    EXPECT(WIRE_STEP, "{\"job\":\"" JOB "\",\"step\":\"abcdefghijklmnopqrstuvwxyz_abcde\","
                      "\"detail\":\"\"}",
           PGS_ELIMIT, "\"step\" is longer than 31");
    EXPECT(WIRE_STEP, "{\"job\":\"" JOB "\",\"step\":\"fetch\",\"detail\":\"a\\rb\"}", PGS_EFORMAT,
           "\"detail\" is not valid");
    EXPECT(WIRE_STEP, "{\"job\":\"" JOB "\",\"step\":\"fetch\"}", PGS_EFORMAT,
           "\"detail\" is missing");

    /* REPORT */
    EXPECT(WIRE_REPORT, "{\"job\":\"" JOB "\",\"ok\":true,\"step\":\"done\",\"error\":\"\","
                        "\"report\":[]}",
           PGS_EFORMAT, "\"report\" is missing or not an object");
    EXPECT(WIRE_REPORT, "{\"job\":\"" JOB "\",\"ok\":true,\"step\":\"done\",\"error\":\"\","
                        "\"report\":null}",
           PGS_EFORMAT, "\"report\" is missing or not an object");
    EXPECT(WIRE_REPORT, "{\"job\":\"" JOB "\",\"ok\":1,\"step\":\"done\",\"error\":\"\","
                        "\"report\":{}}",
           PGS_EFORMAT, "\"ok\" is missing or not a boolean");
    EXPECT(WIRE_REPORT, "{\"job\":\"" JOB "\",\"ok\":true,\"step\":\"done\",\"error\":\"no\","
                        "\"report\":{}}",
           PGS_EFORMAT, "step \"done\" and error \"\"");
    EXPECT(WIRE_REPORT, "{\"job\":\"" JOB "\",\"ok\":false,\"step\":\"x y\",\"error\":\"no\","
                        "\"report\":{}}",
           PGS_EFORMAT, "\"step\" is not valid");
    EXPECT(WIRE_REPORT, "{\"job\":\"" JOB "\",\"ok\":false,\"step\":\"fetch\",\"error\":\"no\","
                        "\"report\":{},\"restore\":{}}",
           PGS_EFORMAT, "unexpected field \"restore\"");
    /* A report up to its limit passes; the body beyond its slack is refused from the header. */
    size_t n = frame(buf, WIRE_VERSION, WIRE_REPORT,
                     "{\"job\":\"" JOB "\",\"ok\":false,\"step\":\"fetch\",\"error\":\"e\","
                     "\"report\":{\"pad\":\"");
    size_t pad = WIRE_REPORT_MAX - 16;
    memset(buf + n, 'p', pad);
    memcpy(buf + n + pad, "\"}}", 3);
    n += pad + 3;
    uint32_t bl = (uint32_t)(n - WIRE_HEADER_LEN);
    buf[4] = (uint8_t)(bl >> 24), buf[5] = (uint8_t)(bl >> 16), buf[6] = (uint8_t)(bl >> 8),
    buf[7] = (uint8_t)bl;
    if (wire_decode(buf, n, &m, &e) != 0)
        fail_msg("a report of %zu bytes is refused: %s", pad, e.msg);
    wire_msg_clear(&m);
    bl = WIRE_REPORT_MAX + WIRE_CONTROL_MAX + 1;
    buf[4] = (uint8_t)(bl >> 24), buf[5] = (uint8_t)(bl >> 16), buf[6] = (uint8_t)(bl >> 8),
    buf[7] = (uint8_t)bl;
    TU_ASSERT_ERR(wire_decode(buf, WIRE_HEADER_LEN + bl, &m, &e), e, PGS_ELIMIT,
                  "REPORT frame body of 1114113 bytes exceeds 1114112");
    /* Other control bodies keep their 64 KiB. */
    buf[3] = WIRE_STEP;
    bl = WIRE_CONTROL_MAX + 1;
    buf[4] = (uint8_t)(bl >> 24), buf[5] = (uint8_t)(bl >> 16), buf[6] = (uint8_t)(bl >> 8),
    buf[7] = (uint8_t)bl;
    TU_ASSERT_ERR(wire_decode(buf, WIRE_HEADER_LEN + bl, &m, &e), e, PGS_ELIMIT, "exceeds 65536");
    buf[3] = WIRE_JOB;
    bl = WIRE_JOB_MAX + 1;
    buf[4] = (uint8_t)(bl >> 24), buf[5] = (uint8_t)(bl >> 16), buf[6] = (uint8_t)(bl >> 8),
    buf[7] = (uint8_t)bl;
    TU_ASSERT_ERR(wire_decode(buf, WIRE_HEADER_LEN + bl, &m, &e), e, PGS_ELIMIT,
                  "exceeds 2097152");

    /* AUTH: restore_keys is required, a list of public keys. */
    char sig[129];
    memset(sig, 'a', 128);
    sig[128] = '\0';
    snprintf(body, sizeof(body), "{\"signature\":\"%s\",\"databases\":[]}", sig);
    EXPECT(WIRE_AUTH, body, PGS_EFORMAT, "\"restore_keys\" is missing or not an array");
    snprintf(body, sizeof(body), "{\"signature\":\"%s\",\"databases\":[],\"restore_keys\":[\"x\"]}",
             sig);
    EXPECT(WIRE_AUTH, body, PGS_EFORMAT, "\"restore_keys\": entry 0 is not a public key");

    /* PIECE: the DATA rules, named PIECE. */
    uint8_t *p = buf;
    size_t h = wire_piece_header(p, JOB, 5, 4);
    memcpy(p + h, "abcd", 4);
    assert_int_equal(wire_decode(p, h + 4, &m, &e), 0);
    assert_int_equal(m.type, WIRE_PIECE);
    wire_msg_clear(&m);
    p[WIRE_HEADER_LEN] = 26;
    TU_ASSERT_ERR(wire_decode(p, h + 4, &m, &e), e, PGS_EFORMAT,
                  "PIECE frame: job id length 26 is not 25");
    h = wire_piece_header(p, JOB, 5, 0);
    TU_ASSERT_ERR(wire_decode(p, h, &m, &e), e, PGS_EFORMAT, "PIECE frame has no payload");
    h = wire_piece_header(p, JOB, (uint64_t)INT64_MAX + 1, 4);
    TU_ASSERT_ERR(wire_decode(p, h + 4, &m, &e), e, PGS_ELIMIT, "PIECE frame: seq is out of range");
    h = wire_piece_header(p, JOB, 5, WIRE_DATA_MAX + 1);
    TU_ASSERT_ERR(wire_decode(p, h + WIRE_DATA_MAX + 1, &m, &e), e, PGS_ELIMIT, "exceeds");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wire_round_trip_every_type),
        cmocka_unit_test(test_wire_decode_rejects_hostile_frames),
        cmocka_unit_test(test_wire_decode_rejects_bad_data_frames),
        cmocka_unit_test(test_wire_round_trip_restore_messages),
        cmocka_unit_test(test_wire_decode_rejects_hostile_restore_jobs),
        cmocka_unit_test(test_wire_encode_refuses_invalid_restore_messages),
        cmocka_unit_test(test_wire_decode_rejects_hostile_restore_frames),
        cmocka_unit_test(test_wire_scratch_names),
        cmocka_unit_test(test_wire_round_trip_verify_jobs),
        cmocka_unit_test(test_wire_decode_rejects_hostile_verify_jobs),
        cmocka_unit_test(test_wire_job_ids),
        cmocka_unit_test(test_wire_auth_message_binds_nonce_name_and_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
