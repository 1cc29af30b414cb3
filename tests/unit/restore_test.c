/*
 * Tests of what the coordinator checks before a restore runs: sanitization profiles
 * (coordinator/profile.c) from real directories, hostile ones included, and the [policy]
 * section (coordinator/config.c) that decides which copies are allowed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "coordinator/config.h"
#include "coordinator/profile.h"
#include "tests/unit/testutil.h"

static int setup_dir(void **state)
{
    return tu_tmpdir_setup(state);
}

static int teardown_dir(void **state)
{
    return tu_tmpdir_teardown(state);
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* dir/name/ with the given files (NULL: absent). */
static void make_profile(void **state, const char *name, const char *sanitize, const char *check,
                         const char *ini)
{
    char d[512], p[600];
    tu_path_in(state, name, d, sizeof(d));
    assert_int_equal(mkdir(d, 0700), 0);
    if (sanitize != NULL) {
        snprintf(p, sizeof(p), "%s/sanitize.sql", d);
        write_file(p, sanitize, strlen(sanitize));
    }
    if (check != NULL) {
        snprintf(p, sizeof(p), "%s/check.sql", d);
        write_file(p, check, strlen(check));
    }
    if (ini != NULL) {
        snprintf(p, sizeof(p), "%s/profile.ini", d);
        write_file(p, ini, strlen(ini));
    }
}

static const char *root(void **state)
{
    return (const char *)*state;
}

static void test_profile_complete(void **state)
{
    make_profile(state, "app", "UPDATE users SET email = 'x';\n", "SELECT 1 WHERE false;\n",
                 "[profile]\ndescription = users anonymised\nsanitizer = prod-sanitizer\n"
                 "sanitizer_database = scratch\n");
    profile p;
    pgs_error e = {0};
    assert_int_equal(profile_load(root(state), "app", &p, &e), 0);
    assert_string_equal(p.name, "app");
    assert_string_equal(p.sanitize_sql, "UPDATE users SET email = 'x';\n");
    assert_string_equal(p.check_sql, "SELECT 1 WHERE false;\n");
    assert_string_equal(p.description, "users anonymised");
    assert_string_equal(p.sanitizer, "prod-sanitizer");
    assert_string_equal(p.sanitizer_database, "scratch");
    profile_clear(&p);
}

static void test_profile_minimal(void **state)
{
    make_profile(state, "min", "SELECT 1;", NULL, NULL);
    profile p;
    pgs_error e = {0};
    assert_int_equal(profile_load(root(state), "min", &p, &e), 0);
    assert_null(p.check_sql);
    assert_string_equal(p.sanitizer, "");
    profile_clear(&p);
}

static void test_profile_missing(void **state)
{
    profile p;
    pgs_error e = {0};
    TU_ASSERT_ERR(profile_load(root(state), "nope", &p, &e), e, PGS_ENOTFOUND, "no profile nope");
    make_profile(state, "nosql", NULL, "SELECT 1;", NULL);
    TU_ASSERT_ERR(profile_load(root(state), "nosql", &p, &e), e, PGS_ENOTFOUND,
                  "has no sanitize.sql");
}

static void test_profile_bad_names(void **state)
{
    profile p;
    pgs_error e = {0};
    const char *bad[] = {"..", "../etc", "a/b", "", ".hidden", "-x", NULL};
    for (size_t i = 0; bad[i] != NULL; i++)
        TU_ASSERT_ERR(profile_load(root(state), bad[i], &p, &e), e, PGS_EINVAL,
                      "is not a profile name");
}

static void test_profile_hostile_sql(void **state)
{
    profile p;
    pgs_error e = {0};
    char d[512], f[600];
    make_profile(state, "nul", NULL, NULL, NULL);
    tu_path_in(state, "nul", d, sizeof(d));
    snprintf(f, sizeof(f), "%s/sanitize.sql", d);
    write_file(f, "SELECT 1;\0DROP", 14);
    TU_ASSERT_ERR(profile_load(root(state), "nul", &p, &e), e, PGS_EFORMAT, "NUL byte");

    make_profile(state, "latin1", "UPDATE t SET n = '\xe9t\xe9';", NULL, NULL);
    TU_ASSERT_ERR(profile_load(root(state), "latin1", &p, &e), e, PGS_EFORMAT, "not valid UTF-8");

    make_profile(state, "badcheck", "SELECT 1;", "SELECT '\xff';", NULL);
    TU_ASSERT_ERR(profile_load(root(state), "badcheck", &p, &e), e, PGS_EFORMAT, "check.sql");

    make_profile(state, "big", NULL, NULL, NULL);
    tu_path_in(state, "big", d, sizeof(d));
    snprintf(f, sizeof(f), "%s/sanitize.sql", d);
    size_t n = PROFILE_SQL_MAX + 1;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, ' ', n);
    write_file(f, big, n);
    free(big);
    TU_ASSERT_ERR(profile_load(root(state), "big", &p, &e), e, PGS_ELIMIT, "allowed");

    /* a symlink is not followed: the file must be the profile's own */
    make_profile(state, "link", NULL, NULL, NULL);
    tu_path_in(state, "link", d, sizeof(d));
    snprintf(f, sizeof(f), "%s/sanitize.sql", d);
    assert_int_equal(symlink("/etc/passwd", f), 0);
    TU_ASSERT_ERR(profile_load(root(state), "link", &p, &e), e, PGS_EIO, "sanitize.sql");

    /* a directory in place of the file */
    make_profile(state, "dir", NULL, NULL, NULL);
    tu_path_in(state, "dir", d, sizeof(d));
    snprintf(f, sizeof(f), "%s/sanitize.sql", d);
    assert_int_equal(mkdir(f, 0700), 0);
    TU_ASSERT_ERR(profile_load(root(state), "dir", &p, &e), e, PGS_EINVAL, "not a regular file");
}

static void test_profile_settings(void **state)
{
    (void)state;
    profile p;
    pgs_error e = {0};
    const char *ok = "# comment\n[profile]\ndescription = x\n";
    memset(&p, 0, sizeof(p));
    assert_int_equal(profile_parse_settings("p.ini", ok, strlen(ok), &p, &e), 0);
    assert_string_equal(p.description, "x");

    struct {
        const char *text;
        const char *msg;
    } bad[] = {
        {"[profile]\nsanitizer = a\n", "go together"},
        {"[profile]\nsanitizer_database = s\n", "go together"},
        {"[profile]\nsanitizer = ../x\nsanitizer_database = s\n", "not an agent name"},
        {"[profile]\nsanitizer = a\nsanitizer_database = s;drop\n", "not a database name"},
        {"[profile]\nunknown = 1\n", "unknown"},
        {"[other]\n", "other"},
        {"[profile]\ndescription\n", ""},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&p, 0, sizeof(p));
        int rc = profile_parse_settings("p.ini", bad[i].text, strlen(bad[i].text), &p, &e);
        assert_true(rc < 0);
        if (bad[i].msg[0] != 0 && strstr(e.msg, bad[i].msg) == NULL)
            fail_msg("profile.ini %zu: \"%s\" does not mention \"%s\"", i, e.msg, bad[i].msg);
    }
    char longdesc[400] = "[profile]\ndescription = ";
    memset(longdesc + strlen(longdesc), 'd', 250);
    strcat(longdesc, "\n");
    TU_ASSERT_ERR(profile_parse_settings("p.ini", longdesc, strlen(longdesc), &p, &e), e,
                  PGS_ELIMIT, "description");
}

static int parse_policy(const char *policy, coordinator_config *cfg, pgs_error *e)
{
    char text[2048];
    snprintf(text, sizeof(text),
             "[coordinator]\nlisten = tcp://127.0.0.1:1\nallow_insecure_transport = true\n"
             "api_listen = off\n%s",
             policy);
    return coordinator_config_parse("c.conf", text, strlen(text), cfg, e);
}

static void test_policy(void **state)
{
    (void)state;
    coordinator_config cfg;
    pgs_error e = {0};
    assert_int_equal(parse_policy("", &cfg, &e), 0);
    assert_true(coordinator_policy_is_prod(&cfg.policy, "prod"));
    assert_false(coordinator_policy_is_prod(&cfg.policy, "production"));
    assert_false(coordinator_policy_allows_unsanitized(&cfg.policy, "prod", "staging"));
    coordinator_config_free(&cfg);

    assert_int_equal(parse_policy("[policy]\nprod_environments = prod, production\n"
                                  "allow_unsanitized = prod:dr ,production:dr\n",
                                  &cfg, &e),
                     0);
    assert_true(coordinator_policy_is_prod(&cfg.policy, "production"));
    assert_true(coordinator_policy_allows_unsanitized(&cfg.policy, "prod", "dr"));
    assert_true(coordinator_policy_allows_unsanitized(&cfg.policy, "production", "dr"));
    assert_false(coordinator_policy_allows_unsanitized(&cfg.policy, "dr", "prod"));
    assert_false(coordinator_policy_allows_unsanitized(&cfg.policy, "prod", "staging"));
    coordinator_config_free(&cfg);

    const char *bad[] = {
        "[policy]\nprod_environments = PROD\n",
        "[policy]\nprod_environments = prod,,x\n",
        "[policy]\nallow_unsanitized = prod\n",
        "[policy]\nallow_unsanitized = prod:\n",
        "[policy]\nallow_unsanitized = :staging\n",
        "[policy]\nallow_unsanitized = prod:staging:x\n",
        "[policy]\nallow_unsanitized = prod:st aging\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (parse_policy(bad[i], &cfg, &e) == 0)
            fail_msg("accepted: %s", bad[i]);
        assert_non_null(strstr(e.msg, "[policy]"));
    }
    char many[2048] = "[policy]\nallow_unsanitized = ";
    for (int i = 0; i < COORDINATOR_POLICY_PAIRS_MAX + 1; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "%sa:b%d", i ? "," : "", i);
    strcat(many, "\n");
    TU_ASSERT_ERR(parse_policy(many, &cfg, &e), e, PGS_ELIMIT, "at most");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_profile_complete, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_profile_minimal, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_profile_missing, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_profile_bad_names, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_profile_hostile_sql, setup_dir, teardown_dir),
        cmocka_unit_test(test_profile_settings),
        cmocka_unit_test(test_policy),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
