/*
 * Tests of manifest.json and end.json (proto/manifest.c): round trips, and the strict decoder's
 * refusals, one field at a time: missing, wrong type, too long, out of range. Unknown fields must
 * pass, so that a newer agent's archive stays readable.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "proto/bundle.h"
#include "proto/manifest.h"
#include "tests/unit/testutil.h"

static void fill_manifest(manifest *m)
{
    memset(m, 0, sizeof(*m));
    m->version = MANIFEST_VERSION;
    snprintf(m->format, sizeof(m->format), "custom");
    snprintf(m->database, sizeof(m->database), "app_db");
    snprintf(m->server_version, sizeof(m->server_version), "16.2 (Debian 16.2-1)");
    m->server_version_num = 160002;
    snprintf(m->pg_dump_version, sizeof(m->pg_dump_version), "pg_dump (PostgreSQL) 16.2");
    snprintf(m->created_by, sizeof(m->created_by), "pgship-agent 0.1.0");
    snprintf(m->host, sizeof(m->host), "db1.example.net");
    manifest_time(1700000000, m->started_at);
    m->estimated_bytes = 123456789012ull;
    m->part_size = 64u << 20;
    m->globals = 1;
    m->nrecipients = 2;
    snprintf(m->recipients[0].key_id, sizeof(m->recipients[0].key_id), "0123456789abcdef");
    snprintf(m->recipients[0].name, sizeof(m->recipients[0].name), "ops");
    snprintf(m->recipients[1].key_id, sizeof(m->recipients[1].key_id), "fedcba9876543210");
    snprintf(m->recipients[1].name, sizeof(m->recipients[1].name), "escrow.2026");
    m->options = json_pack("{s:i, s:s, s:b}", "compress", 3, "exclude", "audit.*", "blobs", 1);
    assert_non_null(m->options);
}

/* The JSON object of a valid manifest, to be edited by a test. */
static json_t *valid_json(void)
{
    manifest m;
    fill_manifest(&m);
    char *text = NULL;
    size_t len = 0;
    pgs_error e = {0};
    assert_int_equal(manifest_encode(&m, &text, &len, &e), 0);
    manifest_clear(&m);
    json_t *root = json_loadb(text, len, 0, NULL);
    assert_non_null(root);
    free(text);
    return root;
}

/* Decodes the text of root from a buffer of exactly its length (no NUL after it). */
static int decode_json(json_t *root, manifest *m, pgs_error *e)
{
    char *text = json_dumps(root, JSON_COMPACT);
    assert_non_null(text);
    size_t len = strlen(text);
    char *exact = malloc(len);
    memcpy(exact, text, len);
    free(text);
    int rc = manifest_decode(exact, len, m, e);
    free(exact);
    return rc;
}

/* Sets key to v (stolen) in a copy of the valid manifest and decodes it. */
static int decode_with(const char *key, json_t *v, pgs_error *e)
{
    json_t *root = valid_json();
    if (v == NULL)
        json_object_del(root, key);
    else
        json_object_set_new(root, key, v);
    manifest m;
    int rc = decode_json(root, &m, e);
    if (rc == 0)
        manifest_clear(&m);
    else
        assert_null(m.options);
    json_decref(root);
    return rc;
}

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static const char *const STRING_FIELDS[] = {
    "created_by", "host", "database", "server_version", "format", "started_at", "pg_dump_version"};
static const size_t STRING_CAPS[] = {64, 256, 256, 32, 16, 32, 64};
static const char *const INT_FIELDS[] = {"pgship_archive", "server_version_num", "estimated_bytes",
                                         "part_size"};

/* ---- manifest.json ---- */

static void test_manifest_round_trip(void **state)
{
    (void)state;
    manifest m, back;
    fill_manifest(&m);
    char *text = NULL;
    size_t len = 0;
    pgs_error e = {0};
    assert_int_equal(manifest_encode(&m, &text, &len, &e), 0);
    assert_int_equal(strlen(text), len);
    assert_int_equal(manifest_decode(text, len, &back, &e), 0);
    assert_int_equal(back.version, 1);
    assert_string_equal(back.format, m.format);
    assert_string_equal(back.database, m.database);
    assert_string_equal(back.server_version, m.server_version);
    assert_int_equal(back.server_version_num, m.server_version_num);
    assert_string_equal(back.pg_dump_version, m.pg_dump_version);
    assert_string_equal(back.created_by, m.created_by);
    assert_string_equal(back.host, m.host);
    assert_string_equal(back.started_at, "2023-11-14T22:13:20Z");
    assert_true(back.estimated_bytes == m.estimated_bytes);
    assert_int_equal(back.part_size, m.part_size);
    assert_int_equal(back.globals, 1);
    assert_int_equal(back.nrecipients, 2);
    for (size_t i = 0; i < 2; i++) {
        assert_string_equal(back.recipients[i].key_id, m.recipients[i].key_id);
        assert_string_equal(back.recipients[i].name, m.recipients[i].name);
    }
    assert_true(json_equal(back.options, m.options));
    /* The text holds no secret-looking field and starts with the format marker. */
    assert_non_null(strstr(text, "\"pgship_archive\": 1"));
    free(text);
    manifest_clear(&back);
    manifest_clear(&back); /* twice is fine */
    manifest_clear(&m);

    /* No options and no globals: options come back as an empty object. */
    fill_manifest(&m);
    json_decref(m.options);
    m.options = NULL;
    m.globals = 0;
    snprintf(m.format, sizeof(m.format), "directory");
    assert_int_equal(manifest_encode(&m, &text, &len, &e), 0);
    assert_int_equal(manifest_decode(text, len, &back, &e), 0);
    assert_true(json_is_object(back.options));
    assert_int_equal(json_object_size(back.options), 0);
    assert_int_equal(back.globals, 0);
    assert_string_equal(back.format, "directory");
    manifest_clear(&back);
    free(text);
}

static void test_manifest_decode_rejects_invalid_json(void **state)
{
    (void)state;
    static const char *bad[] = {"",     " ",    "{",        "{\"a\":}",    "nul",
                                "{} x", "{}{}", "{'a': 1}", "{\"a\": 1,}", "\xff\xfe{}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        manifest m;
        pgs_error e = {0};
        TU_ASSERT_ERR(manifest_decode(bad[i], strlen(bad[i]), &m, &e), e, PGS_EFORMAT,
                      "manifest.json is not valid JSON");
        assert_null(m.options);
    }
    /* A NUL byte inside the buffer is not JSON either. */
    manifest m;
    pgs_error e = {0};
    TU_ASSERT_ERR(manifest_decode("{}\0", 3, &m, &e), e, PGS_EFORMAT, "not valid JSON");
}

static void test_manifest_decode_rejects_non_object(void **state)
{
    (void)state;
    static const char *bad[] = {"[]", "[{}]", "[\"manifest\"]"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        manifest m;
        pgs_error e = {0};
        TU_ASSERT_ERR(manifest_decode(bad[i], strlen(bad[i]), &m, &e), e, PGS_EFORMAT,
                      "manifest.json is not a JSON object");
    }
    /* jansson itself refuses a bare scalar at the top level. */
    static const char *scalars[] = {"1", "\"manifest\"", "null", "true"};
    for (size_t i = 0; i < sizeof(scalars) / sizeof(scalars[0]); i++) {
        manifest m;
        pgs_error e = {0};
        TU_ASSERT_ERR(manifest_decode(scalars[i], strlen(scalars[i]), &m, &e), e, PGS_EFORMAT,
                      "manifest.json is not");
    }
    manifest m;
    pgs_error e = {0};
    TU_ASSERT_ERR(manifest_decode("{}", 2, &m, &e), e, PGS_EFORMAT, "\"pgship_archive\"");
}

static void test_manifest_decode_rejects_missing_fields(void **state)
{
    (void)state;
    static const char *fields[] = {
        "pgship_archive",     "created_by",      "host",       "database",   "server_version",
        "server_version_num", "pg_dump_version", "format",     "started_at", "estimated_bytes",
        "part_size",          "globals",         "recipients", "options"};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        pgs_error e = {0};
        char quoted[64];
        snprintf(quoted, sizeof(quoted), "field \"%s\"", fields[i]);
        TU_ASSERT_ERR(decode_with(fields[i], NULL, &e), e, PGS_EFORMAT, quoted);
    }
}

static void test_manifest_decode_rejects_wrong_types(void **state)
{
    (void)state;
    pgs_error e = {0};
    char quoted[64];
    for (size_t i = 0; i < sizeof(STRING_FIELDS) / sizeof(STRING_FIELDS[0]); i++) {
        snprintf(quoted, sizeof(quoted), "field \"%s\" is missing or not a string",
                 STRING_FIELDS[i]);
        TU_ASSERT_ERR(decode_with(STRING_FIELDS[i], json_integer(5), &e), e, PGS_EFORMAT, quoted);
        TU_ASSERT_ERR(decode_with(STRING_FIELDS[i], json_null(), &e), e, PGS_EFORMAT, quoted);
        TU_ASSERT_ERR(decode_with(STRING_FIELDS[i], json_array(), &e), e, PGS_EFORMAT, quoted);
    }
    for (size_t i = 0; i < sizeof(INT_FIELDS) / sizeof(INT_FIELDS[0]); i++) {
        snprintf(quoted, sizeof(quoted), "field \"%s\" is missing or not an integer",
                 INT_FIELDS[i]);
        TU_ASSERT_ERR(decode_with(INT_FIELDS[i], json_string("1"), &e), e, PGS_EFORMAT, quoted);
        TU_ASSERT_ERR(decode_with(INT_FIELDS[i], json_real(1.0), &e), e, PGS_EFORMAT, quoted);
        TU_ASSERT_ERR(decode_with(INT_FIELDS[i], json_true(), &e), e, PGS_EFORMAT, quoted);
    }
    TU_ASSERT_ERR(decode_with("globals", json_integer(1), &e), e, PGS_EFORMAT,
                  "field \"globals\" is missing or not a boolean");
    TU_ASSERT_ERR(decode_with("globals", json_string("true"), &e), e, PGS_EFORMAT, "\"globals\"");
    TU_ASSERT_ERR(decode_with("recipients", json_object(), &e), e, PGS_EFORMAT,
                  "field \"recipients\"");
    TU_ASSERT_ERR(decode_with("recipients", json_string("ops"), &e), e, PGS_EFORMAT,
                  "field \"recipients\"");
    TU_ASSERT_ERR(decode_with("options", json_array(), &e), e, PGS_EFORMAT,
                  "field \"options\" is missing or not an object");
    TU_ASSERT_ERR(decode_with("options", json_null(), &e), e, PGS_EFORMAT, "\"options\"");

    /* Inside a recipient. */
    TU_ASSERT_ERR(decode_with("recipients", json_pack("[s]", "ops"), &e), e, PGS_EFORMAT,
                  "recipient 0 is not an object");
    TU_ASSERT_ERR(decode_with("recipients", json_pack("[{s:s}]", "name", "ops"), &e), e,
                  PGS_EFORMAT, "field \"key_id\"");
    TU_ASSERT_ERR(decode_with("recipients",
                              json_pack("[{s:s, s:s}, {s:s, s:i}]", "key_id", "0123456789abcdef",
                                        "name", "a", "key_id", "0123456789abcdee", "name", 7),
                              &e),
                  e, PGS_EFORMAT, "field \"name\"");
}

static void test_manifest_decode_rejects_duplicate_keys(void **state)
{
    (void)state;
    json_t *root = valid_json();
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    /* Insert a second "host" (and one inside options) by text, since jansson cannot build one. */
    static const char *inserts[] = {"\"host\":\"evil\",", "\"pgship_archive\":1,"};
    for (size_t i = 0; i < 2; i++) {
        size_t len = strlen(text) + strlen(inserts[i]);
        char *dup = malloc(len + 1);
        snprintf(dup, len + 1, "{%s%s", inserts[i], text + 1);
        manifest m;
        pgs_error e = {0};
        TU_ASSERT_ERR(manifest_decode(dup, len, &m, &e), e, PGS_EFORMAT, "duplicate");
        free(dup);
    }
    char *opts = strstr(text, "\"options\":{");
    assert_non_null(opts);
    size_t at = (size_t)(opts - text) + strlen("\"options\":{");
    const char *ins = "\"compress\":9,";
    size_t len = strlen(text) + strlen(ins);
    char *dup = malloc(len + 1);
    snprintf(dup, len + 1, "%.*s%s%s", (int)at, text, ins, text + at);
    manifest m;
    pgs_error e = {0};
    TU_ASSERT_ERR(manifest_decode(dup, len, &m, &e), e, PGS_EFORMAT, "duplicate");
    free(dup);
    free(text);
}

static void test_manifest_decode_rejects_long_strings(void **state)
{
    (void)state;
    pgs_error e = {0};
    for (size_t i = 0; i < sizeof(STRING_FIELDS) / sizeof(STRING_FIELDS[0]); i++) {
        char want[80];
        snprintf(want, sizeof(want), "field \"%s\" is longer than %zu bytes", STRING_FIELDS[i],
                 STRING_CAPS[i] - 1);
        char *s = repeat('x', STRING_CAPS[i]);
        TU_ASSERT_ERR(decode_with(STRING_FIELDS[i], json_string(s), &e), e, PGS_ELIMIT, want);
        free(s);
        /* One byte shorter fits (format then fails on its value, not its length). */
        s = repeat('x', STRING_CAPS[i] - 1);
        int rc = decode_with(STRING_FIELDS[i], json_string(s), &e);
        if (strcmp(STRING_FIELDS[i], "format") == 0)
            TU_ASSERT_ERR(rc, e, PGS_EFORMAT, "unknown dump format");
        else
            assert_int_equal(rc, 0);
        free(s);
    }
    char *id = repeat('a', KEY_ID_HEX_LEN + 1), *name = repeat('n', KEY_NAME_MAX + 1);
    TU_ASSERT_ERR(
        decode_with("recipients", json_pack("[{s:s, s:s}]", "key_id", id, "name", "a"), &e), e,
        PGS_ELIMIT, "field \"key_id\" is longer than 16 bytes");
    TU_ASSERT_ERR(decode_with("recipients",
                              json_pack("[{s:s, s:s}]", "key_id", "0123456789abcdef", "name", name),
                              &e),
                  e, PGS_ELIMIT, "field \"name\" is longer than 63 bytes");
    free(id);
    free(name);
    /* A NUL byte hidden in a string (\u0000): jansson refuses it while parsing already. */
    TU_ASSERT_ERR(decode_with("host", json_stringn("db1\0evil", 8), &e), e, PGS_EFORMAT,
                  "manifest.json is not valid JSON");
}

static void test_manifest_decode_rejects_versions(void **state)
{
    (void)state;
    pgs_error e = {0};
    TU_ASSERT_ERR(decode_with("pgship_archive", json_integer(2), &e), e, PGS_EVERSION,
                  "manifest version 2 is not supported");
    TU_ASSERT_ERR(decode_with("pgship_archive", json_integer(0), &e), e, PGS_EVERSION,
                  "manifest version 0");
    TU_ASSERT_ERR(decode_with("pgship_archive", json_integer(1001), &e), e, PGS_ELIMIT,
                  "\"pgship_archive\" is out of range");
    TU_ASSERT_ERR(decode_with("pgship_archive", json_integer(-1), &e), e, PGS_ELIMIT,
                  "out of range");
}

static void test_manifest_decode_rejects_unknown_format(void **state)
{
    (void)state;
    pgs_error e = {0};
    static const char *bad[] = {"tar", "plain", "Custom", "", "custom "};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char want[64];
        snprintf(want, sizeof(want), "unknown dump format \"%s\"", bad[i]);
        TU_ASSERT_ERR(decode_with("format", json_string(bad[i]), &e), e, PGS_EFORMAT, want);
    }
}

static void test_manifest_decode_rejects_recipient_counts(void **state)
{
    (void)state;
    pgs_error e = {0};
    TU_ASSERT_ERR(decode_with("recipients", json_array(), &e), e, PGS_EFORMAT,
                  "must list 1 to 32 recipients");
    json_t *many = json_array();
    for (int i = 0; i < ENVELOPE_RECIPIENTS_MAX; i++)
        json_array_append_new(many,
                              json_pack("{s:s, s:s}", "key_id", "0123456789abcdef", "name", "r"));
    json_incref(many);
    assert_int_equal(decode_with("recipients", many, &e), 0);
    json_array_append_new(many, json_pack("{s:s, s:s}", "key_id", "0123456789abcdef", "name", "r"));
    TU_ASSERT_ERR(decode_with("recipients", many, &e), e, PGS_EFORMAT,
                  "must list 1 to 32 recipients");
}

static void test_manifest_decode_rejects_out_of_range_numbers(void **state)
{
    (void)state;
    pgs_error e = {0};
    TU_ASSERT_ERR(decode_with("server_version_num", json_integer(10000001), &e), e, PGS_ELIMIT,
                  "\"server_version_num\" is out of range");
    TU_ASSERT_ERR(decode_with("part_size", json_integer(1ll << 32), &e), e, PGS_ELIMIT,
                  "\"part_size\" is out of range");
    TU_ASSERT_ERR(decode_with("estimated_bytes", json_integer(-5), &e), e, PGS_ELIMIT,
                  "\"estimated_bytes\" is out of range");
    assert_int_equal(decode_with("part_size", json_integer(0xffffffffll), &e), 0);
    /* Larger than any JSON integer jansson holds: not valid JSON for this decoder. */
    json_t *root = valid_json();
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    char *big = malloc(strlen(text) + 64);
    sprintf(big, "{\"part_size\":99999999999999999999999,%s", text + 1);
    manifest m;
    int rc = manifest_decode(big, strlen(big), &m, &e);
    assert_true(rc == PGS_EFORMAT || rc == PGS_ELIMIT);
    free(big);
    free(text);
}

static void test_manifest_decode_rejects_oversize_input(void **state)
{
    (void)state;
    /* A valid manifest padded past 1 MiB with an unknown field. */
    json_t *root = valid_json();
    char *pad = repeat('p', BUNDLE_MANIFEST_MAX);
    json_object_set_new(root, "padding", json_string(pad));
    free(pad);
    manifest m;
    pgs_error e = {0};
    TU_ASSERT_ERR(decode_json(root, &m, &e), e, PGS_ELIMIT,
                  "manifest.json is larger than 1048576 bytes");
    json_decref(root);
    /* Whitespace counts too. */
    char *spaces = repeat(' ', BUNDLE_MANIFEST_MAX + 1);
    spaces[0] = '{';
    spaces[BUNDLE_MANIFEST_MAX] = '}';
    TU_ASSERT_ERR(manifest_decode(spaces, BUNDLE_MANIFEST_MAX + 1, &m, &e), e, PGS_ELIMIT,
                  "larger than");
    free(spaces);
}

static void test_manifest_decode_accepts_unknown_fields(void **state)
{
    (void)state;
    json_t *root = valid_json();
    json_object_set_new(root, "compression", json_pack("{s:s, s:i}", "algo", "zstd", "level", 3));
    json_object_set_new(root, "zz_future", json_array());
    json_t *r0 = json_array_get(json_object_get(root, "recipients"), 0);
    json_object_set_new(r0, "fingerprint_v2", json_string("abc"));
    manifest m;
    pgs_error e = {0};
    int rc = decode_json(root, &m, &e);
    if (rc != 0)
        fail_msg("%s", e.msg);
    assert_string_equal(m.recipients[0].name, "ops");
    manifest_clear(&m);
    json_decref(root);
}

static void test_manifest_encode_invalid_utf8(void **state)
{
    (void)state;
    /* A database name that is not UTF-8 (possible with SQL_ASCII or LATIN1 servers) cannot go
     * into JSON: encoding must fail cleanly. options stays set here: with options NULL the same
     * failure leaks (see test_manifest_encode_invalid_utf8_no_leak). */
    manifest m;
    fill_manifest(&m);
    snprintf(m.database, sizeof(m.database), "caf\xe9");
    char *text = NULL;
    size_t len = 0;
    pgs_error e = {0};
    int rc = manifest_encode(&m, &text, &len, &e);
    manifest_clear(&m);
    assert_true(rc < 0);
    assert_null(text);
    /* Regression (was a bug): json_pack's failure is reported as PGS_ENOMEM "cannot encode the
     * manifest", which sends an operator looking for a memory problem. */
    assert_int_not_equal(rc, PGS_ENOMEM);
}

static void test_manifest_encode_invalid_utf8_no_leak(void **state)
{
    (void)state;
    /* Regression (was a bug): with options == NULL a failed json_pack leaks the temporary
     * json_object() (manifest.c, manifest_encode: "O" took a reference that is only dropped on
     * success). LeakSanitizer reports it at exit. */
    manifest m;
    fill_manifest(&m);
    json_decref(m.options);
    m.options = NULL;
    snprintf(m.database, sizeof(m.database), "caf\xe9");
    char *text = NULL;
    size_t len = 0;
    pgs_error e = {0};
    assert_true(manifest_encode(&m, &text, &len, &e) < 0);
}

static void test_manifest_encode_keeps_every_recipient(void **state)
{
    (void)state;
    /* Regression (was a bug): a recipient whose name is not UTF-8 is silently dropped
     * (json_array_append_new(rcpts, NULL) is unchecked), so encoding "succeeds" with fewer
     * recipients than given. */
    manifest m;
    fill_manifest(&m);
    snprintf(m.recipients[1].name, sizeof(m.recipients[1].name), "\xff");
    char *text = NULL;
    size_t len = 0;
    pgs_error e = {0};
    int rc = manifest_encode(&m, &text, &len, &e);
    manifest_clear(&m);
    if (rc == 0) {
        manifest back;
        rc = manifest_decode(text, len, &back, &e);
        free(text);
        assert_int_equal(rc, 0);
        size_t n = back.nrecipients;
        manifest_clear(&back);
        assert_int_equal(n, 2);
    }
}

static void test_manifest_time_formats_utc(void **state)
{
    (void)state;
    char t[32];
    manifest_time(0, t);
    assert_string_equal(t, "1970-01-01T00:00:00Z");
    manifest_time(951782400, t);
    assert_string_equal(t, "2000-02-29T00:00:00Z");
    manifest_time(1700000000, t);
    assert_string_equal(t, "2023-11-14T22:13:20Z");
    manifest_time(4102444799ll, t);
    assert_string_equal(t, "2099-12-31T23:59:59Z");
}

/* ---- end.json ---- */

static int end_decode_with(const char *key, json_t *v, pgs_error *e)
{
    json_t *root = json_pack("{s:s, s:I, s:I}", "ended_at", "2026-01-01T00:00:00Z", "dump_bytes",
                             (json_int_t)1000, "dump_members", (json_int_t)3);
    if (key != NULL && v == NULL)
        json_object_del(root, key);
    else if (key != NULL)
        json_object_set_new(root, key, v);
    char *text = json_dumps(root, 0);
    json_decref(root);
    manifest_end m;
    int rc = manifest_end_decode(text, strlen(text), &m, e);
    free(text);
    return rc;
}

static void test_manifest_end_round_trip(void **state)
{
    (void)state;
    manifest_end m = {.dump_bytes = 9876543210ull, .dump_members = 147};
    manifest_time(1800000000, m.ended_at);
    char *text = NULL;
    size_t len = 0;
    pgs_error e = {0};
    assert_int_equal(manifest_end_encode(&m, &text, &len, &e), 0);
    manifest_end back;
    assert_int_equal(manifest_end_decode(text, len, &back, &e), 0);
    assert_string_equal(back.ended_at, m.ended_at);
    assert_true(back.dump_bytes == m.dump_bytes);
    assert_true(back.dump_members == m.dump_members);
    free(text);
    assert_int_equal(end_decode_with("extra", json_string("fine"), &e), 0);
}

static void test_manifest_end_decode_rejects(void **state)
{
    (void)state;
    pgs_error e = {0};
    static const char *fields[] = {"ended_at", "dump_bytes", "dump_members"};
    for (size_t i = 0; i < 3; i++) {
        char want[64];
        snprintf(want, sizeof(want), "field \"%s\" is missing", fields[i]);
        TU_ASSERT_ERR(end_decode_with(fields[i], NULL, &e), e, PGS_EFORMAT, want);
        TU_ASSERT_ERR(end_decode_with(fields[i], json_array(), &e), e, PGS_EFORMAT, want);
    }
    TU_ASSERT_ERR(end_decode_with("ended_at", json_string("2026-01-01T00:00:00.000000000000Z"), &e),
                  e, PGS_ELIMIT, "field \"ended_at\" is longer than 31 bytes");
    TU_ASSERT_ERR(end_decode_with("dump_bytes", json_integer(-1), &e), e, PGS_ELIMIT,
                  "out of range");
    manifest_end m;
    TU_ASSERT_ERR(manifest_end_decode("[1]", 3, &m, &e), e, PGS_EFORMAT,
                  "end.json is not a JSON object");
    TU_ASSERT_ERR(manifest_end_decode("{", 1, &m, &e), e, PGS_EFORMAT,
                  "end.json is not valid JSON");
    const char *dup = "{\"ended_at\":\"a\",\"dump_bytes\":1,\"dump_members\":1,\"dump_bytes\":2}";
    TU_ASSERT_ERR(manifest_end_decode(dup, strlen(dup), &m, &e), e, PGS_EFORMAT, "duplicate");
    char *big = repeat(' ', BUNDLE_END_MAX + 1);
    big[0] = '{';
    big[BUNDLE_END_MAX] = '}';
    TU_ASSERT_ERR(manifest_end_decode(big, BUNDLE_END_MAX + 1, &m, &e), e, PGS_ELIMIT,
                  "end.json is larger than 65536 bytes");
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_manifest_round_trip),
        cmocka_unit_test(test_manifest_decode_rejects_invalid_json),
        cmocka_unit_test(test_manifest_decode_rejects_non_object),
        cmocka_unit_test(test_manifest_decode_rejects_missing_fields),
        cmocka_unit_test(test_manifest_decode_rejects_wrong_types),
        cmocka_unit_test(test_manifest_decode_rejects_duplicate_keys),
        cmocka_unit_test(test_manifest_decode_rejects_long_strings),
        cmocka_unit_test(test_manifest_decode_rejects_versions),
        cmocka_unit_test(test_manifest_decode_rejects_unknown_format),
        cmocka_unit_test(test_manifest_decode_rejects_recipient_counts),
        cmocka_unit_test(test_manifest_decode_rejects_out_of_range_numbers),
        cmocka_unit_test(test_manifest_decode_rejects_oversize_input),
        cmocka_unit_test(test_manifest_decode_accepts_unknown_fields),
        cmocka_unit_test(test_manifest_encode_invalid_utf8),
        cmocka_unit_test(test_manifest_encode_invalid_utf8_no_leak),
        cmocka_unit_test(test_manifest_encode_keeps_every_recipient),
        cmocka_unit_test(test_manifest_time_formats_utc),
        cmocka_unit_test(test_manifest_end_round_trip),
        cmocka_unit_test(test_manifest_end_decode_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
