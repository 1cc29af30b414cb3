/*
 * Tests of the wire codec (proto/wire.c): every frame type round-trips, and the decoder refuses
 * each kind of hostile frame with its own code: short, bad magic, unknown version or type, lengths
 * that disagree, oversize bodies, malformed JSON, unknown, missing or ill-typed fields, bad names,
 * ids and text. The auth message binds nonce, name and key.
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
        size_t n_ = frame(buf, 1, type, body);                                                    \
        TU_ASSERT_ERR(wire_decode(buf, n_, &m, &e), e, code, substr);                             \
    } while (0)

static void test_wire_decode_rejects_hostile_frames(void **state)
{
    (void)state;
    static uint8_t buf[1 << 16];
    wire_msg m;
    pgs_error e = {0};

    TU_ASSERT_ERR(wire_decode(buf, 3, &m, &e), e, PGS_ETRUNC, "shorter than its header");
    size_t n = frame(buf, 1, WIRE_POLL, "{}");
    buf[0] = 'X';
    TU_ASSERT_ERR(wire_decode(buf, n, &m, &e), e, PGS_EFORMAT, "bad magic");
    n = frame(buf, 2, WIRE_POLL, "{}");
    TU_ASSERT_ERR(wire_decode(buf, n, &m, &e), e, PGS_EVERSION, "version 2");
    EXPECT(9, "{}", PGS_EFORMAT, "unknown frame type 9");

    /* The length field must equal what the frame carries, both ways. */
    n = frame(buf, 1, WIRE_POLL, "{}");
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wire_round_trip_every_type),
        cmocka_unit_test(test_wire_decode_rejects_hostile_frames),
        cmocka_unit_test(test_wire_decode_rejects_bad_data_frames),
        cmocka_unit_test(test_wire_job_ids),
        cmocka_unit_test(test_wire_auth_message_binds_nonce_name_and_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
