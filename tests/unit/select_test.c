/*
 * Tests of database selectors (coordinator/select.c): the syntax and its canonical text, how
 * globs combine (OR within a key, AND across keys, a missing key matches all), fnmatch's
 * patterns without path semantics, and every refusal with the term it names, hostile bytes and
 * the limits included.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "coordinator/select.h"
#include "tests/unit/testutil.h"

static db_select *parse_ok(const char *text)
{
    db_select *s = NULL;
    pgs_error e = {0};
    int rc = select_parse(text, &s, &e);
    if (rc != 0)
        fail_msg("select_parse(\"%s\"): %d %s", text, rc, e.msg);
    assert_non_null(s);
    return s;
}

static void parse_fails(const char *text, int want, const char *substr)
{
    db_select *s = (db_select *)0x1;
    pgs_error e = {0};
    int rc = select_parse(text, &s, &e);
    TU_ASSERT_ERR(rc, e, want, substr);
    assert_null(s);
}

static void test_select_all(void **state)
{
    (void)state;
    const char *texts[] = {"*", "all", "  *  ", "\tall\t"};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        db_select *s = parse_ok(texts[i]);
        assert_string_equal(select_text(s), "*");
        assert_true(select_match(s, "a", "b", "c"));
        assert_true(select_match(s, "", "", ""));
        assert_true(select_match(s, "x", "y", NULL));
        select_free(s);
    }
}

static void test_select_keys_and_or(void **state)
{
    (void)state;
    db_select *s = parse_ok("env=prod agent=db-*,pg? database=app*");
    assert_string_equal(select_text(s), "agent=db-*,pg? database=app* environment=prod");
    assert_true(select_match(s, "db-1", "app", "prod"));
    assert_true(select_match(s, "pg1", "appdb", "prod"));
    assert_false(select_match(s, "pg12", "appdb", "prod")); /* ? is one character */
    assert_false(select_match(s, "db-1", "app", "stage"));  /* AND across keys */
    assert_false(select_match(s, "db-1", "billing", "prod"));
    assert_false(select_match(s, "x-db-1", "app", "prod")); /* whole names only */
    assert_false(select_match(s, "db-1", "app", NULL));
    select_free(s);

    /* a missing key matches everything, an environment left empty included */
    s = parse_ok("database=app");
    assert_string_equal(select_text(s), "database=app");
    assert_true(select_match(s, "any", "app", NULL));
    assert_true(select_match(s, "other", "app", "stage"));
    assert_false(select_match(s, "any", "App", "prod")); /* case-sensitive */
    assert_false(select_match(s, "any", "app2", "prod"));
    select_free(s);

    s = parse_ok("environment=prod,stage");
    assert_true(select_match(s, "a", "b", "prod"));
    assert_true(select_match(s, "a", "b", "stage"));
    assert_false(select_match(s, "a", "b", "dev"));
    assert_false(select_match(s, "a", "b", ""));
    select_free(s);

    /* "*" as a glob matches the empty environment too */
    s = parse_ok("env=*");
    assert_true(select_match(s, "a", "b", NULL));
    select_free(s);
}

static void test_select_fnmatch_patterns(void **state)
{
    (void)state;
    db_select *s = parse_ok("database=[a-c]x*,d[!0-9]");
    assert_true(select_match(s, "a", "bx", "e"));
    assert_true(select_match(s, "a", "cxyz", "e"));
    assert_false(select_match(s, "a", "ex", "e"));
    assert_true(select_match(s, "a", "dz", "e"));
    assert_false(select_match(s, "a", "d5", "e"));
    select_free(s);

    /* no path semantics: * crosses '/' and a leading '.' */
    s = parse_ok("agent=*");
    assert_true(select_match(s, "a/b", "x", "y"));
    assert_true(select_match(s, ".hidden", "x", "y"));
    select_free(s);

    /* a backslash quotes; an unclosed '[' is an ordinary character */
    s = parse_ok("database=a\\*,b[");
    assert_true(select_match(s, "x", "a*", "y"));
    assert_false(select_match(s, "x", "ab", "y"));
    assert_true(select_match(s, "x", "b[", "y"));
    select_free(s);
}

static void test_select_canonical_text_reparses(void **state)
{
    (void)state;
    const char *texts[] = {"env=a", "database=x,y   agent=z", "agent=a environment=b database=c",
                           "*", "all"};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        db_select *s = parse_ok(texts[i]);
        db_select *t = parse_ok(select_text(s));
        assert_string_equal(select_text(s), select_text(t));
        select_free(s);
        select_free(t);
    }
}

static void test_select_errors_name_the_term(void **state)
{
    (void)state;
    parse_fails("host=db1", PGS_EINVAL,
                "select: unknown key \"host\" (use agent, database, environment)");
    parse_fails("Agent=db1", PGS_EINVAL, "unknown key \"Agent\"");
    parse_fails("=db1", PGS_EINVAL, "unknown key \"\"");
    parse_fails("db1", PGS_EINVAL, "\"db1\" is not KEY=GLOB[,GLOB...]");
    parse_fails("agent=a db1", PGS_EINVAL, "\"db1\" is not KEY=GLOB");
    parse_fails("agent=", PGS_EINVAL, "\"agent=\" has an empty glob");
    parse_fails("agent=a,,b", PGS_EINVAL, "empty glob");
    parse_fails("agent=a,", PGS_EINVAL, "empty glob");
    parse_fails("agent=,a", PGS_EINVAL, "empty glob");
    parse_fails("agent=a agent=b", PGS_EINVAL, "key agent given twice");
    parse_fails("env=a environment=b", PGS_EINVAL, "key environment given twice");
    parse_fails("", PGS_EINVAL, "empty selector");
    parse_fails("   \t ", PGS_EINVAL, "empty selector");
    parse_fails("* agent=a", PGS_EINVAL, "must stand alone");
    parse_fails("all all", PGS_EINVAL, "must stand alone");
    parse_fails("agent = a", PGS_EINVAL, "\"agent\" is not KEY=GLOB");
    parse_fails(NULL, PGS_EINVAL, "no selector");
}

static void test_select_hostile_bytes(void **state)
{
    (void)state;
    parse_fails("agent=a\nb", PGS_EINVAL, "\"agent=a\\x0ab\" has a byte that is not printable");
    parse_fails("agent=a\rb", PGS_EINVAL, "not printable ASCII (0x0d)");
    parse_fails("agent=\x7f", PGS_EINVAL, "(0x7f)");
    parse_fails("agent=caf\xc3\xa9", PGS_EINVAL, "\"agent=caf\\xc3\\xa9\"");
    parse_fails("ho\x1bst=1", PGS_EINVAL, "\\x1b");
    /* a quote or a backslash in an unknown key is escaped in the message */
    parse_fails("a\"b=1", PGS_EINVAL, "unknown key \"a\\x22b\"");
    /* a long bad key is cut in the message */
    char key[400];
    memset(key, 'k', 300);
    memcpy(key + 300, "=x", 3);
    db_select *s = NULL;
    pgs_error e = {0};
    assert_int_equal(select_parse(key, &s, &e), PGS_EINVAL);
    assert_non_null(strstr(e.msg, "kkk...\""));
    assert_true(strlen(e.msg) < 200);
}

static void test_select_limits(void **state)
{
    (void)state;
    /* a glob of exactly SELECT_GLOB_MAX bytes is fine, one more is not */
    char text[SELECT_TEXT_MAX + 64];
    memcpy(text, "agent=", 6);
    memset(text + 6, 'a', SELECT_GLOB_MAX);
    text[6 + SELECT_GLOB_MAX] = '\0';
    db_select *s = parse_ok(text);
    char name[SELECT_GLOB_MAX + 1];
    memset(name, 'a', SELECT_GLOB_MAX);
    name[SELECT_GLOB_MAX] = '\0';
    assert_true(select_match(s, name, "d", "e"));
    select_free(s);
    text[6 + SELECT_GLOB_MAX] = 'a';
    text[7 + SELECT_GLOB_MAX] = '\0';
    parse_fails(text, PGS_ELIMIT, "agent glob \"aaaa");

    /* 32 globs for a key, not 33; three full keys fit in the text limit */
    size_t o = 0;
    const char *keys[] = {"agent", "database", "environment"};
    for (int k = 0; k < 3; k++) {
        o += (size_t)snprintf(text + o, sizeof(text) - o, "%s%s=", k ? " " : "", keys[k]);
        for (int i = 0; i < SELECT_GLOBS_MAX; i++) {
            if (i > 0)
                text[o++] = ',';
            memset(text + o, 'a' + (i % 26), SELECT_GLOB_MAX);
            o += SELECT_GLOB_MAX;
        }
    }
    text[o] = '\0';
    assert_true(o <= SELECT_TEXT_MAX);
    s = parse_ok(text);
    assert_string_equal(select_text(s), text);
    select_free(s);

    s = parse_ok("agent=a,b,c");
    select_free(s);
    o = (size_t)snprintf(text, sizeof(text), "database=x");
    for (int i = 1; i <= SELECT_GLOBS_MAX; i++)
        o += (size_t)snprintf(text + o, sizeof(text) - o, ",g%d", i);
    parse_fails(text, PGS_ELIMIT, "key database has more than 32 globs");

    /* the whole text: padding with spaces counts too */
    memset(text, ' ', SELECT_TEXT_MAX + 1);
    memcpy(text, "agent=a", 7);
    text[SELECT_TEXT_MAX + 1] = '\0';
    parse_fails(text, PGS_ELIMIT, "longer than 32768 bytes");
    text[SELECT_TEXT_MAX] = '\0';
    s = parse_ok(text);
    assert_string_equal(select_text(s), "agent=a");
    select_free(s);
}

static void test_select_free_null(void **state)
{
    (void)state;
    select_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_select_all),
        cmocka_unit_test(test_select_keys_and_or),
        cmocka_unit_test(test_select_fnmatch_patterns),
        cmocka_unit_test(test_select_canonical_text_reparses),
        cmocka_unit_test(test_select_errors_name_the_term),
        cmocka_unit_test(test_select_hostile_bytes),
        cmocka_unit_test(test_select_limits),
        cmocka_unit_test(test_select_free_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
