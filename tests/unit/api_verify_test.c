/*
 * Tests of the verification routes' decoders (coordinator/api_verify.c): POST
 * /v1/backups/ID/verify's body and GET /v1/verifications' query accept exactly what docs/api.md
 * says, and refuse hostile input (wrong types, unknown or repeated fields, oversize text, bad
 * escapes, NULs, numbers out of range) with a message that names the field and never echoes it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "coordinator/api.h"
#include "coordinator/api_verify.h"
#include "tests/unit/testutil.h"

#define BACKUP "20261121T160529Z-0a1b2c3d"

static int body(const char *text, api_verify_body *out, pgs_error *e)
{
    return api_verify_body_parse(text, strlen(text), out, e);
}

static void test_api_verify_body_accepts(void **state)
{
    (void)state;
    api_verify_body b;
    pgs_error e = {0};
    assert_int_equal(api_verify_body_parse(NULL, 0, &b, &e), 0);
    assert_false(b.restore_test);
    assert_int_equal(body("{}", &b, &e), 0);
    assert_false(b.restore_test);
    assert_int_equal(body("{\"restore_test\": true}", &b, &e), 0);
    assert_true(b.restore_test);
    assert_int_equal(body(" {\"restore_test\":false}\n", &b, &e), 0);
    assert_false(b.restore_test);
}

static void test_api_verify_body_refuses_hostile(void **state)
{
    (void)state;
    api_verify_body b;
    pgs_error e = {0};
    TU_ASSERT_ERR(body("{\"restore_test\": 1}", &b, &e), e, PGS_EFORMAT,
                  "\"restore_test\" is not true or false");
    assert_false(b.restore_test); /* zeroed on failure */
    TU_ASSERT_ERR(body("{\"restore_test\": \"true\"}", &b, &e), e, PGS_EFORMAT,
                  "not true or false");
    TU_ASSERT_ERR(body("{\"restore_test\": null}", &b, &e), e, PGS_EFORMAT, "not true or false");
    TU_ASSERT_ERR(body("{\"restore_test\": true, \"restore_test\": false}", &b, &e), e, PGS_EFORMAT,
                  "not valid JSON");
    TU_ASSERT_ERR(body("{\"restore_test\": true, \"drop\": \"appdb\"}", &b, &e), e, PGS_EFORMAT,
                  "unexpected field \"drop\"");
    TU_ASSERT_ERR(body("[true]", &b, &e), e, PGS_EFORMAT, "not a JSON object");
    TU_ASSERT_ERR(body("true", &b, &e), e, PGS_EFORMAT, NULL);
    TU_ASSERT_ERR(body("{\"restore_test\": tru", &b, &e), e, PGS_EFORMAT, "not valid JSON");
    TU_ASSERT_ERR(body("   ", &b, &e), e, PGS_EFORMAT, "not valid JSON");
    static const char nul[] = "{\"restore_test\":true}\0{}";
    TU_ASSERT_ERR(api_verify_body_parse(nul, sizeof(nul) - 1, &b, &e), e, PGS_EFORMAT,
                  "not valid JSON");
    /* Larger than any body the API takes. */
    size_t n = API_BODY_MAX + 64;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, ' ', n);
    memcpy(big, "{\"restore_test\":true}", 21);
    big[n] = '\0';
    TU_ASSERT_ERR(api_verify_body_parse(big, n, &b, &e), e, PGS_ELIMIT, "larger than");
    free(big);
}

static int query(const char *q, api_verify_query *out, pgs_error *e)
{
    return api_verify_query_parse(q, out, e);
}

static void test_api_verify_query_accepts(void **state)
{
    (void)state;
    api_verify_query q;
    pgs_error e = {0};
    assert_int_equal(query(NULL, &q, &e), 0);
    assert_int_equal(q.limit, API_VERIFY_LIST_DEFAULT);
    assert_string_equal(q.backup, "");
    assert_int_equal(q.state, CATALOG_VERIFY_ANY);
    assert_int_equal(query("", &q, &e), 0);
    assert_int_equal(query("backup=" BACKUP "&limit=5", &q, &e), 0);
    assert_string_equal(q.backup, BACKUP);
    assert_int_equal(q.limit, 5);
    assert_int_equal(query("agent=prod-db1&state=failed&limit=10000", &q, &e), 0);
    assert_string_equal(q.agent, "prod-db1");
    assert_int_equal(q.state, CATALOG_VERIFY_FAILED);
    assert_int_equal(q.limit, API_VERIFY_LIST_MAX);
    assert_int_equal(query("state=any", &q, &e), 0);
    assert_int_equal(q.state, CATALOG_VERIFY_ANY);
    assert_int_equal(query("agent=prod%2Ddb1", &q, &e), 0); /* %-escaped */
    assert_string_equal(q.agent, "prod-db1");
}

static void test_api_verify_query_refuses_hostile(void **state)
{
    (void)state;
    api_verify_query q;
    pgs_error e = {0};
    TU_ASSERT_ERR(query("limit=0", &q, &e), e, PGS_EINVAL, "limit must be a number from 1 to");
    TU_ASSERT_ERR(query("limit=10001", &q, &e), e, PGS_EINVAL, "limit must be");
    TU_ASSERT_ERR(query("limit=-1", &q, &e), e, PGS_EINVAL, "limit must be");
    TU_ASSERT_ERR(query("limit=+5", &q, &e), e, PGS_EINVAL, "limit must be");
    TU_ASSERT_ERR(query("limit=5x", &q, &e), e, PGS_EINVAL, "limit must be");
    TU_ASSERT_ERR(query("limit=", &q, &e), e, PGS_EINVAL, "limit must be");
    TU_ASSERT_ERR(query("limit=99999999999999999999", &q, &e), e, PGS_EINVAL, "limit must be");
    TU_ASSERT_ERR(query("limit=1&limit=2", &q, &e), e, PGS_EINVAL, "limit is given twice");
    TU_ASSERT_ERR(query("backup=latest", &q, &e), e, PGS_EINVAL, "backup is not a backup id");
    TU_ASSERT_ERR(query("backup=" BACKUP "%00", &q, &e), e, PGS_EINVAL, "bad %-escape");
    TU_ASSERT_ERR(query("backup=%zz", &q, &e), e, PGS_EINVAL, "bad %-escape");
    TU_ASSERT_ERR(query("backup=%4", &q, &e), e, PGS_EINVAL, "bad %-escape");
    TU_ASSERT_ERR(query("agent=../../etc", &q, &e), e, PGS_EINVAL, "agent is not a valid name");
    TU_ASSERT_ERR(query("agent=a%20b", &q, &e), e, PGS_EINVAL, "agent is not a valid name");
    TU_ASSERT_ERR(query("state=complete", &q, &e), e, PGS_EINVAL,
                  "state must be queued, running, ok, failed or any");
    TU_ASSERT_ERR(query("database=appdb", &q, &e), e, PGS_EINVAL, "unknown query parameter");
    TU_ASSERT_ERR(query("backup", &q, &e), e, PGS_EINVAL, "name=value");
    char big[API_VERIFY_QUERY_MAX + 16];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    memcpy(big, "agent=", 6);
    TU_ASSERT_ERR(query(big, &q, &e), e, PGS_ELIMIT, "longer than 512 bytes");
    /* The value is never echoed. */
    TU_ASSERT_ERR(query("agent=<script>", &q, &e), e, PGS_EINVAL, NULL);
    assert_null(strstr(e.msg, "script"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_verify_body_accepts),
        cmocka_unit_test(test_api_verify_body_refuses_hostile),
        cmocka_unit_test(test_api_verify_query_accepts),
        cmocka_unit_test(test_api_verify_query_refuses_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
