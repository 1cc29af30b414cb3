/*
 * Tests of the two daemons' configuration files (coordinator/config.c, agent/config.c): defaults,
 * named sections in order, the transport and TLS rules, secret file modes, S3 credentials and
 * their precedence, identity and recipient keys, the coordinator's fleet-operations sections
 * (scheduler, schedules with their cron expressions, selectors and jitter durations, retention
 * policies, API tokens with roles and their constant-time lookup, webhooks), the printers'
 * redaction, and two checks that
 * keep the documentation honest: the example files in deploy/examples load (with the key files
 * they name made by the test), and docs/configuration.md lists exactly the keys of the spec
 * tables with their types and defaults. Every test gets its own temporary directory.
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

#include "agent/config.h"
#include "common/ini.h"
#include "common/keys.h"
#include "coordinator/config.h"
#include "tests/unit/testutil.h"

#define TOKEN "0123456789abcdef0123456789abcdef"

/* ---- helpers ---- */

static void mkdirs(const char *path)
{
    char tmp[1024];
    snprintf(tmp, sizeof(tmp), "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        mkdir(tmp, 0755);
        *p = '/';
    }
    mkdir(tmp, 0755);
}

static void parent_dirs(const char *path)
{
    char tmp[1024];
    snprintf(tmp, sizeof(tmp), "%s", path);
    char *slash = strrchr(tmp, '/');
    if (slash != NULL && slash != tmp) {
        *slash = '\0';
        mkdirs(tmp);
    }
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    parent_dirs(path);
    unlink(path);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static char *read_whole(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        fail_msg("%s: cannot open", path);
    char *buf = malloc(1 << 20);
    assert_non_null(buf);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Replaces every occurrence of from with to in s (a malloc'd string), returning a new one. */
static char *replace_all(char *s, const char *from, const char *to)
{
    size_t fl = strlen(from), tl = strlen(to), count = 0;
    for (const char *p = strstr(s, from); p != NULL; p = strstr(p + fl, from))
        count++;
    char *out = malloc(strlen(s) + count * tl + 1);
    assert_non_null(out);
    char *o = out;
    const char *p = s, *q;
    while ((q = strstr(p, from)) != NULL) {
        memcpy(o, p, (size_t)(q - p));
        o += q - p;
        memcpy(o, to, tl);
        o += tl;
        p = q + fl;
    }
    strcpy(o, p);
    free(s);
    return out;
}

/* The public key line of an identity .pub file (without its newline). */
static void identity_line(const char *prefix, char *out, size_t len)
{
    char path[600];
    snprintf(path, sizeof(path), "%s.pub", prefix);
    char *text = read_whole(path);
    char *line = strstr(text, "pgship-identity-public-v1");
    assert_non_null(line);
    line[strcspn(line, "\r\n")] = '\0';
    snprintf(out, len, "%s", line);
    free(text);
}

/*
 * The fixture's files in the test's directory D: TLS files, the API token, an S3 secret, two
 * identity pairs (id-a, id-b) for the coordinator's agents, the agent's identity (agent-id), and
 * two recipient pairs (rcpt-1, rcpt-2).
 */
typedef struct fx {
    char dir[512];
    char pub_a[256], pub_b[256];
    pgs_identity_pub id_a, agent_id;
    pgs_pubkey rcpt1, rcpt2;
} fx;

static void fx_make(void **state, fx *f)
{
    char p[600];
    pgs_error e = {0};
    pgs_identity_pub ib;
    memset(f, 0, sizeof(*f));
    tu_path_in(state, "", f->dir, sizeof(f->dir));
    size_t dl = strlen(f->dir);
    if (dl > 1 && f->dir[dl - 1] == '/')
        f->dir[dl - 1] = '\0';
#define P(name) (snprintf(p, sizeof(p), "%s/%s", f->dir, name), p)
    write_file(P("ca.crt"), "-----BEGIN CERTIFICATE-----\n", 0644);
    write_file(P("server.crt"), "-----BEGIN CERTIFICATE-----\n", 0644);
    write_file(P("server.key"), "-----BEGIN PRIVATE KEY-----\n", 0600);
    write_file(P("token"), TOKEN "\n", 0600);
    write_file(P("s3secret"), "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n", 0600);
    if (identity_generate_files(P("id-a"), &f->id_a, &e) != 0 ||
        identity_generate_files(P("id-b"), &ib, &e) != 0 ||
        identity_generate_files(P("agent-id"), &f->agent_id, &e) != 0 ||
        key_generate_files(P("rcpt-1"), &f->rcpt1, &e) != 0 ||
        key_generate_files(P("rcpt-2"), &f->rcpt2, &e) != 0)
        fail_msg("%s", e.msg);
    identity_line(P("id-a"), f->pub_a, sizeof(f->pub_a));
    identity_line(P("id-b"), f->pub_b, sizeof(f->pub_b));
#undef P
}

/* Writes template (with @D@ for the directory, @A@ and @B@ for the identity lines) to D/name
 * and returns its path in out. */
static void fx_write(const fx *f, const char *name, const char *tmpl, char *out, size_t len)
{
    char *text = strdup(tmpl);
    assert_non_null(text);
    text = replace_all(text, "@D@", f->dir);
    text = replace_all(text, "@A@", f->pub_a);
    text = replace_all(text, "@B@", f->pub_b);
    snprintf(out, len, "%s/%s", f->dir, name);
    write_file(out, text, 0644);
    free(text);
}

static int coord_load(const fx *f, const char *tmpl, coordinator_config *cfg, pgs_error *e)
{
    char path[600];
    fx_write(f, "coord.conf", tmpl, path, sizeof(path));
    memset(e, 0, sizeof(*e));
    return coordinator_config_load(path, cfg, e);
}

static int agent_load(const fx *f, const char *tmpl, agent_config *cfg, pgs_error *e)
{
    char path[600];
    fx_write(f, "agent.conf", tmpl, path, sizeof(path));
    memset(e, 0, sizeof(*e));
    return agent_config_load(path, cfg, e);
}

/* msg matches got: exactly, or as a prefix when want ends with '*' (for the parts of a message
 * that come from keys.c, whose wording is its own). */
static int msg_matches(const char *got, const char *want)
{
    size_t n = strlen(want);
    if (n > 0 && want[n - 1] == '*')
        return strncmp(got, want, n - 1) == 0;
    return strcmp(got, want) == 0;
}

/* Expects the load to fail with code and a message that, after "<dir>/", is msg (which may
 * itself contain @D@; see msg_matches). The cfg must then hold nothing. */
static void coord_expect(const fx *f, const char *tmpl, int code, const char *msg)
{
    coordinator_config cfg;
    pgs_error e;
    int rc = coord_load(f, tmpl, &cfg, &e);
    char *want = replace_all(strdup(msg), "@D@", f->dir);
    char full[1024];
    snprintf(full, sizeof(full), "%s/%s", f->dir, want);
    if (rc != code || e.code != code || !msg_matches(e.msg, full))
        fail_msg("expected %d \"%s\"\ngot      %d \"%s\"", code, full, rc, e.msg);
    assert_null(cfg.path);
    assert_null(cfg.agents);
    free(want);
}

static void agent_expect(const fx *f, const char *tmpl, int code, const char *msg)
{
    agent_config cfg;
    pgs_error e;
    int rc = agent_load(f, tmpl, &cfg, &e);
    char *want = replace_all(strdup(msg), "@D@", f->dir);
    char full[1024];
    snprintf(full, sizeof(full), "%s/%s", f->dir, want);
    if (rc != code || e.code != code || !msg_matches(e.msg, full))
        fail_msg("expected %d \"%s\"\ngot      %d \"%s\"", code, full, rc, e.msg);
    assert_null(cfg.path);
    assert_null(cfg.databases);
    free(want);
}

static char *print_coord(const coordinator_config *cfg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    coordinator_config_print(f, cfg);
    fclose(f);
    return buf;
}

static char *print_agent(const agent_config *cfg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    agent_config_print(f, cfg);
    fclose(f);
    return buf;
}

#define COORD_TLS                                                                                  \
    "[coordinator]\n"                                                                              \
    "tls_cert = @D@/server.crt\n"                                                                  \
    "tls_key = @D@/server.key\n"                                                                   \
    "api_token_file = @D@/token\n"

static void unset_aws(void)
{
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    unsetenv("AWS_SESSION_TOKEN");
}

/* ---- coordinator ---- */

static void test_coordinator_minimal_file_gets_defaults(void **state)
{
    fx f;
    fx_make(state, &f);
    coordinator_config cfg;
    pgs_error e;
    if (coord_load(&f, COORD_TLS, &cfg, &e) != 0)
        fail_msg("%s", e.msg);
    assert_string_equal(cfg.coordinator.listen, "tls+tcp://0.0.0.0:7433");
    assert_null(cfg.coordinator.tls_ca);
    assert_string_equal(cfg.coordinator.api_listen, "http://127.0.0.1:7434");
    assert_string_equal(cfg.coordinator.catalog, "/var/lib/pgship/catalog.db");
    assert_int_equal(cfg.coordinator.allow_insecure_transport, 0);
    assert_int_equal(cfg.coordinator.log_level, 2);
    assert_int_equal(cfg.coordinator.max_streams, 8);
    assert_int_equal(cfg.coordinator.window, 4);
    assert_int_equal(cfg.storage.type, COORDINATOR_STORAGE_FS);
    assert_string_equal(cfg.storage.path, "/var/lib/pgship/archive");
    assert_null(cfg.storage.prefix);
    assert_null(cfg.storage.endpoint);
    assert_string_equal(cfg.storage.region, "us-east-1");
    assert_int_equal(cfg.storage.path_style, 0);
    assert_int_equal(cfg.storage.part_size_mib, 12);
    assert_int_equal(cfg.storage.parallel_parts, 1);
    assert_int_equal(cfg.storage.src.line, 0);
    assert_int_equal(cfg.nagents, 0);
    assert_int_equal(cfg.insecure_transport, 0);
    assert_string_equal(cfg.api_token, TOKEN);
    assert_null(cfg.s3_access_key_id);
    coordinator_config_free(&cfg);
    assert_null(cfg.path);
    coordinator_config_free(&cfg); /* twice is harmless */
}

static void test_coordinator_agents_collected_in_order(void **state)
{
    fx f;
    fx_make(state, &f);
    coordinator_config cfg;
    pgs_error e;
    if (coord_load(&f,
                   COORD_TLS "[agent zed]\npublic_key = @B@\n\n[agent alpha]\npublic_key = @A@\n",
                   &cfg, &e) != 0)
        fail_msg("%s", e.msg);
    assert_int_equal(cfg.nagents, 2);
    assert_string_equal(cfg.agents[0].name, "zed");
    assert_int_equal(cfg.agents[0].src.line, 5);
    assert_string_equal(cfg.agents[1].name, "alpha");
    assert_int_equal(cfg.agents[1].src.line, 8);
    assert_memory_equal(cfg.agents[1].key.pk, f.id_a.pk, KEY_LEN);
    assert_memory_equal(cfg.agents[1].key.id, f.id_a.id, KEY_ID_LEN);
    assert_string_equal(cfg.agents[1].public_key, f.pub_a);
    coordinator_config_free(&cfg);

    coord_expect(&f, COORD_TLS "[agent a]\npublic_key = @A@\n[agent a]\npublic_key = @B@\n",
                 PGS_EINVAL, "coord.conf:7: duplicate section [agent a] (first on line 5)");
    coord_expect(&f, COORD_TLS "[agent a]\npublic_key = @A@\n[agent b]\npublic_key = @A@\n",
                 PGS_EINVAL,
                 "coord.conf:8: [agent b] public_key: same identity key as [agent a] (line 5): "
                 "each agent needs its own");
    coord_expect(&f, COORD_TLS "[agent a]\n", PGS_EINVAL,
                 "coord.conf:5: [agent a]: missing required key public_key");
}

static void test_coordinator_public_key_must_be_an_identity_line(void **state)
{
    fx f;
    fx_make(state, &f);
    char tmpl[2048], line[256];
    char *text = read_whole(strcat(strcpy(tmpl, f.dir), "/rcpt-1.pub"));
    char *l = strstr(text, "pgship-public-key-v1");
    assert_non_null(l);
    l[strcspn(l, "\n")] = '\0';
    snprintf(line, sizeof(line), "%s", l);
    free(text);
    snprintf(tmpl, sizeof(tmpl), COORD_TLS "[agent a]\npublic_key = %s\n", line);
    coord_expect(&f, tmpl, PGS_EINVAL,
                 "coord.conf:6: [agent a] public_key: this is a public key file*");
    coord_expect(&f,
                 COORD_TLS "[agent a]\npublic_key = QqSQDrsar+v1mR58aG1SkQ2eFn8U6jMSIzfbOAe/3mM=\n",
                 PGS_EFORMAT, "coord.conf:6: [agent a] public_key: not a pgship key*");
}

static void test_coordinator_insecure_transport_rules(void **state)
{
    fx f;
    fx_make(state, &f);
    coord_expect(&f, "[coordinator]\nlisten = tcp://0.0.0.0:7433\napi_listen = off\n", PGS_EINVAL,
                 "coord.conf:2: [coordinator] listen: tcp:// is not encrypted; use tls+tcp:// or "
                 "set allow_insecure_transport = true");
    coord_expect(&f, "[coordinator]\nlisten = ipc:///run/pgship.sock\napi_listen = off\n",
                 PGS_EINVAL,
                 "coord.conf:2: [coordinator] listen: ipc:// is not encrypted; use tls+tcp:// or "
                 "set allow_insecure_transport = true");
    coord_expect(&f,
                 "[coordinator]\nlisten = tcp://127.0.0.1:7433\nallow_insecure_transport = yes\n"
                 "tls_cert = @D@/server.crt\napi_listen = off\n",
                 PGS_EINVAL,
                 "coord.conf:4: [coordinator] tls_cert: is set but listen is tcp:// (no TLS); "
                 "remove it or listen on tls+tcp://");
    /* TLS (the default listen) needs a certificate: the error points at the section. */
    coord_expect(&f, "\n[coordinator]\napi_listen = off\n", PGS_EINVAL,
                 "coord.conf:2: [coordinator] listen: tls+tcp:// needs tls_cert and tls_key in "
                 "[coordinator]");
    coord_expect(&f, "[coordinator]\ntls_cert = @D@/server.crt\napi_listen = off\n", PGS_EINVAL,
                 "coord.conf:1: [coordinator] listen: tls+tcp:// needs tls_key in [coordinator]");

    coordinator_config cfg;
    pgs_error e;
    if (coord_load(&f,
                   "[coordinator]\nlisten = tcp://127.0.0.1:7433\nallow_insecure_transport = "
                   "true\napi_listen = off\n",
                   &cfg, &e) != 0)
        fail_msg("%s", e.msg);
    assert_int_equal(cfg.insecure_transport, 1);
    assert_null(cfg.api_token);
    char *out = print_coord(&cfg);
    assert_non_null(strstr(out, "WARNING: agents connect without TLS"));
    free(out);
    coordinator_config_free(&cfg);
}

static void test_coordinator_api_rules(void **state)
{
    fx f;
    fx_make(state, &f);
    coord_expect(&f,
                 "[coordinator]\ntls_cert = @D@/server.crt\ntls_key = @D@/server.key\n"
                 "api_listen = off\napi_token_file = @D@/token\n",
                 PGS_EINVAL,
                 "coord.conf:5: [coordinator] api_token_file: is set but api_listen = off");
    coord_expect(&f, "[coordinator]\ntls_cert = @D@/server.crt\ntls_key = @D@/server.key\n",
                 PGS_EINVAL,
                 "coord.conf:1: [coordinator] api_listen: the HTTP API needs api_token_file (or "
                 "set api_listen = off)");
    coord_expect(&f, COORD_TLS "api_listen = http://0.0.0.0:7434\n", PGS_EINVAL,
                 "coord.conf:5: [coordinator] api_listen: the HTTP API is plain HTTP and its "
                 "token would cross the network in clear; listen on a loopback address "
                 "(127.0.0.1, ::1, localhost) or set allow_insecure_transport = true");
    coord_expect(&f, COORD_TLS "api_listen = http://127.evil.example:7434\n", PGS_EINVAL,
                 "coord.conf:5: [coordinator] api_listen: the HTTP API is plain HTTP and its "
                 "token would cross the network in clear; listen on a loopback address "
                 "(127.0.0.1, ::1, localhost) or set allow_insecure_transport = true");
    coord_expect(&f, COORD_TLS "api_listen = https://127.0.0.1:7434\n", PGS_EINVAL,
                 "coord.conf:5: [coordinator] api_listen: scheme \"https\" is not allowed here "
                 "(expected one of http://)");

    static const char *const ok[] = {"http://[::1]:7434", "http://localhost:80",
                                     "http://127.1.2.3:7434"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        char tmpl[512];
        coordinator_config cfg;
        pgs_error e;
        snprintf(tmpl, sizeof(tmpl), COORD_TLS "api_listen = %s\n", ok[i]);
        if (coord_load(&f, tmpl, &cfg, &e) != 0)
            fail_msg("%s: %s", ok[i], e.msg);
        coordinator_config_free(&cfg);
    }
    coordinator_config cfg;
    pgs_error e;
    if (coord_load(&f, COORD_TLS "api_listen = http://0.0.0.0:7434\nallow_insecure_transport = 1\n",
                   &cfg, &e) != 0)
        fail_msg("%s", e.msg);
    coordinator_config_free(&cfg);

    char p[600];
    snprintf(p, sizeof(p), "%s/token", f.dir);
    write_file(p, "short\n", 0600);
    coord_expect(&f, COORD_TLS, PGS_EINVAL,
                 "coord.conf:4: [coordinator] api_token_file: @D@/token: shorter than 16 "
                 "characters (make one with: openssl rand -hex 32)");
    write_file(p, "0123456789abcdef 0123456789abcdef\n", 0600);
    coord_expect(&f, COORD_TLS, PGS_EFORMAT,
                 "coord.conf:4: [coordinator] api_token_file: @D@/token: must hold one line of "
                 "printable characters without spaces");
    write_file(p, TOKEN "\n", 0644);
    coord_expect(&f, COORD_TLS, PGS_EINVAL,
                 "coord.conf:4: [coordinator] api_token_file: @D@/token holds a secret but is "
                 "accessible by group or others (mode 0644); chmod 600 it");
    /* A token file written on Windows still works. */
    write_file(p, TOKEN "\r\n", 0600);
    if (coord_load(&f, COORD_TLS, &cfg, &e) != 0)
        fail_msg("%s", e.msg);
    assert_string_equal(cfg.api_token, TOKEN);
    coordinator_config_free(&cfg);
}

static void test_coordinator_secret_file_modes(void **state)
{
    fx f;
    fx_make(state, &f);
    char p[600];
    snprintf(p, sizeof(p), "%s/server.key", f.dir);
    assert_int_equal(chmod(p, 0640), 0);
    coord_expect(&f, COORD_TLS, PGS_EINVAL,
                 "coord.conf:3: [coordinator] tls_key: @D@/server.key holds a secret but is "
                 "accessible by group or others (mode 0640); chmod 600 it");
    assert_int_equal(chmod(p, 0600), 0);
    snprintf(p, sizeof(p), "%s/ca.crt", f.dir);
    assert_int_equal(unlink(p), 0);
    coord_expect(&f, COORD_TLS "tls_ca = @D@/ca.crt\n", PGS_EIO,
                 "coord.conf:5: [coordinator] tls_ca: @D@/ca.crt: No such file or directory");
    coord_expect(&f, COORD_TLS "tls_ca = @D@\n", PGS_EINVAL,
                 "coord.conf:5: [coordinator] tls_ca: @D@: not a regular file");
}

static void test_coordinator_storage_rules(void **state)
{
    fx f;
    fx_make(state, &f);
    unset_aws();
    coord_expect(&f, COORD_TLS "[storage]\nbucket = b\n", PGS_EINVAL,
                 "coord.conf:6: [storage] bucket: is a key of type = s3, but type = fs");
    coord_expect(&f, COORD_TLS "[storage]\ntype = fs\npart_size_mib = 8\n", PGS_EINVAL,
                 "coord.conf:7: [storage] part_size_mib: is a key of type = s3, but type = fs");
    coord_expect(&f, COORD_TLS "[storage]\ntype = s3\npath = /x\nbucket = bkt\n", PGS_EINVAL,
                 "coord.conf:7: [storage] path: is a key of type = fs, but type = s3");
    coord_expect(&f, COORD_TLS "[storage]\ntype = s3\n", PGS_EINVAL,
                 "coord.conf:6: [storage] type: type = s3 needs bucket in [storage]");
    coord_expect(&f, COORD_TLS "[storage]\ntype = s3\nbucket = My_Bucket\n", PGS_EINVAL,
                 "coord.conf:7: [storage] bucket: \"My_Bucket\" is not a valid bucket name (3-63 "
                 "of a-z 0-9 . -, starting and ending with a letter or digit)");
    coord_expect(&f, COORD_TLS "[storage]\ntype = s3\nbucket = bkt\nregion = EU\n", PGS_EINVAL,
                 "coord.conf:8: [storage] region: \"EU\" is not a region name (a-z 0-9 -, e.g. "
                 "us-east-1)");
    coord_expect(&f, COORD_TLS "[storage]\nprefix = a/../b\n", PGS_EINVAL,
                 "coord.conf:6: [storage] prefix: must be up to 256 characters of A-Z a-z 0-9 . "
                 "_ - in segments separated by '/', without empty, \".\" or \"..\" segments or a "
                 "leading or trailing '/'");
    coord_expect(&f, COORD_TLS "[storage]\nprefix = /abs\n", PGS_EINVAL,
                 "coord.conf:6: [storage] prefix: must be up to 256 characters of A-Z a-z 0-9 . "
                 "_ - in segments separated by '/', without empty, \".\" or \"..\" segments or a "
                 "leading or trailing '/'");
    coord_expect(&f, COORD_TLS "[storage]\ntype = s3\nbucket = bkt\npart_size_mib = 4\n",
                 PGS_EINVAL, "coord.conf:8: [storage] part_size_mib: 4 is out of range (5..5120)");
    coord_expect(&f, COORD_TLS "[storage]\ntype = s3\nbucket = bkt\naccess_key_id = AKIA1\n",
                 PGS_EINVAL,
                 "coord.conf:8: [storage] access_key_id: access_key_id and "
                 "secret_access_key_file go together: set both, or neither to use "
                 "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY from the environment");
    coord_expect(&f, COORD_TLS "[storage]\ntype = s3\nbucket = bkt\n", PGS_EINVAL,
                 "coord.conf:6: [storage] type: no S3 credentials: set access_key_id and "
                 "secret_access_key_file in [storage], or AWS_ACCESS_KEY_ID and "
                 "AWS_SECRET_ACCESS_KEY in the environment (AWS_ACCESS_KEY_ID is missing)");

    coordinator_config cfg;
    pgs_error e;
    if (coord_load(&f,
                   COORD_TLS "[storage]\ntype = s3\nbucket = my.bucket-1\nregion = eu-west-3\n"
                             "prefix = team/pg\naccess_key_id = AKIA1\n"
                             "secret_access_key_file = @D@/s3secret\n",
                   &cfg, &e) != 0)
        fail_msg("%s", e.msg);
    assert_int_equal(cfg.storage.type, COORDINATOR_STORAGE_S3);
    assert_string_equal(cfg.storage.endpoint, "https://s3.eu-west-3.amazonaws.com");
    assert_false(ini_key_set(&coordinator_config_spec(&(size_t){0})[1], &cfg.storage, "endpoint"));
    assert_string_equal(cfg.storage.prefix, "team/pg");
    assert_string_equal(cfg.s3_access_key_id, "AKIA1");
    assert_string_equal(cfg.s3_secret_access_key, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
    assert_int_equal(cfg.s3_credentials_from_env, 0);
    char *out = print_coord(&cfg);
    assert_null(strstr(out, "wJalrXUtnFEMI"));
    assert_null(strstr(out, TOKEN));
    assert_non_null(strstr(out, "endpoint                 = https://s3.eu-west-3.amazonaws.com  "
                                "(default)\n"));
    assert_non_null(strstr(out, "# S3 credentials: from this file"));
    free(out);
    coordinator_config_free(&cfg);

    char p[600];
    snprintf(p, sizeof(p), "%s/s3secret", f.dir);
    assert_int_equal(chmod(p, 0604), 0);
    coord_expect(&f,
                 COORD_TLS "[storage]\ntype = s3\nbucket = bkt\naccess_key_id = AKIA1\n"
                           "secret_access_key_file = @D@/s3secret\n",
                 PGS_EINVAL,
                 "coord.conf:9: [storage] secret_access_key_file: @D@/s3secret holds a secret "
                 "but is accessible by group or others (mode 0604); chmod 600 it");
}

static void test_coordinator_s3_credentials_precedence(void **state)
{
    fx f;
    fx_make(state, &f);
    coordinator_config cfg;
    pgs_error e;
    unset_aws();
    setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
    coord_expect(&f, COORD_TLS "[storage]\ntype = s3\nbucket = bkt\n", PGS_EINVAL,
                 "coord.conf:6: [storage] type: no S3 credentials: set access_key_id and "
                 "secret_access_key_file in [storage], or AWS_ACCESS_KEY_ID and "
                 "AWS_SECRET_ACCESS_KEY in the environment (AWS_SECRET_ACCESS_KEY is missing)");

    setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
    setenv("AWS_SESSION_TOKEN", "envsession", 1);
    if (coord_load(&f, COORD_TLS "[storage]\ntype = s3\nbucket = bkt\n", &cfg, &e) != 0)
        fail_msg("%s", e.msg);
    assert_int_equal(cfg.s3_credentials_from_env, 1);
    assert_string_equal(cfg.s3_access_key_id, "AKIAENV");
    assert_string_equal(cfg.s3_secret_access_key, "envsecret");
    assert_string_equal(cfg.s3_session_token, "envsession");
    char *out = print_coord(&cfg);
    assert_null(strstr(out, "envsecret"));
    assert_null(strstr(out, "envsession"));
    assert_non_null(strstr(out, "from the environment (AWS_ACCESS_KEY_ID = AKIAENV"));
    free(out);
    coordinator_config_free(&cfg);

    /* The file wins: the environment is not consulted at all. */
    if (coord_load(&f,
                   COORD_TLS "[storage]\ntype = s3\nbucket = bkt\naccess_key_id = AKIAFILE\n"
                             "secret_access_key_file = @D@/s3secret\n",
                   &cfg, &e) != 0)
        fail_msg("%s", e.msg);
    assert_int_equal(cfg.s3_credentials_from_env, 0);
    assert_string_equal(cfg.s3_access_key_id, "AKIAFILE");
    assert_string_equal(cfg.s3_secret_access_key, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
    assert_null(cfg.s3_session_token);
    coordinator_config_free(&cfg);

    setenv("AWS_SECRET_ACCESS_KEY", "has space", 1);
    coord_expect(&f, COORD_TLS "[storage]\ntype = s3\nbucket = bkt\n", PGS_EINVAL,
                 "coord.conf:6: [storage] type: environment variable AWS_SECRET_ACCESS_KEY must "
                 "be printable characters without spaces");
    unset_aws();
}

/* coordinator_config_parse touches no file: the fuzzer relies on it. */
static void test_coordinator_parse_needs_no_files(void **state)
{
    (void)state;
    static const char text[] =
        "[coordinator]\ntls_cert = /nonexistent/c\ntls_key = /nonexistent/k\n"
        "api_token_file = /nonexistent/t\n[storage]\ntype = s3\n"
        "bucket = bkt\n";
    coordinator_config cfg;
    pgs_error e = {0};
    unset_aws();
    if (coordinator_config_parse("mem", text, sizeof(text) - 1, &cfg, &e) != 0)
        fail_msg("%s", e.msg);
    assert_null(cfg.api_token);
    assert_null(cfg.s3_access_key_id);
    coordinator_config_free(&cfg);
    assert_int_equal(coordinator_config_parse("mem", "[storage]\n", 10, &cfg, &e), PGS_EINVAL);
    assert_string_equal(e.msg, "mem: missing section [coordinator]");
    assert_null(cfg.path);
}

/* ---- coordinator: scheduler, schedules, retention, tokens, webhooks ---- */

#define TOKEN_B "tokB-0123456789abcdef0123456789abcdef"
#define TOKEN_C "tokC-0123456789abcdef0123456789abcdef"
#define HOOK_SECRET "hook-secret-0123456789abcdef"

/* Writes text to D/name with mode. */
static void fx_file(const fx *f, const char *name, const char *text, mode_t mode)
{
    char p[700];
    snprintf(p, sizeof(p), "%s/%s", f->dir, name);
    write_file(p, text, mode);
}

static int have_zone(const char *zone)
{
    char p[256];
    snprintf(p, sizeof(p), "/usr/share/zoneinfo/%s", zone);
    return access(p, R_OK) == 0;
}

static void test_coordinator_duration_parse(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int64_t want;
    } ok[] = {{"0", 0},       {"0s", 0},         {"30s", 30},         {"5m", 300},    {"90m", 5400},
              {"1h", 3600},   {"1h30m", 5400},   {"2h0m15s", 7215},   {"24h", 86400}, {"1m30s", 90},
              {"000001s", 1}, {"86400s", 86400}, {"23h59m60s", 86400}};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int64_t v = -1;
        pgs_error e = {0};
        if (coordinator_duration_parse(ok[i].text, 86400, &v, &e) != 0)
            fail_msg("%s: %s", ok[i].text, e.msg);
        assert_int_equal(v, ok[i].want);
    }
    static const struct {
        const char *text;
        const char *msg;
    } bad[] = {
        {"", "empty duration (write e.g. 30s, 5m or 1h30m)"},
        {"24h1s", "\"24h1s\" is more than 24h"},
        {"1440m1s", "\"1440m1s\" is more than 24h"},
        {"999999h", "\"999999h\" is more than 24h"},
        {"1234567s", "\"1234567s\": a number of more than 6 digits"},
        {"5", "\"5\": a number without a unit (use h, m or s; 0 alone is zero)"},
        {"00", "\"00\": a number without a unit (use h, m or s; 0 alone is zero)"},
        {"1h5", "\"1h5\": a number without a unit (use h, m or s; 0 alone is zero)"},
        {"1d", "\"1d\": unknown unit 'd' (use h, m or s)"},
        {"1.5h", "\"1.5h\": unknown unit '.' (use h, m or s)"},
        {"5s ", "\"5s \" is not a duration (write e.g. 30s, 5m or 1h30m, or 0)"},
        {"1h30", "\"1h30\": a number without a unit (use h, m or s; 0 alone is zero)"},
        {"1hm", "\"1hm\": unexpected 'm' after \"1h\" (write e.g. 30s, 5m or 1h30m: whole "
                "seconds at most)"},
        {" 5s", "\" 5s\" is not a duration (write e.g. 30s, 5m or 1h30m, or 0)"},
        {"-5s", "\"-5s\" is not a duration (write e.g. 30s, 5m or 1h30m, or 0)"},
        {"h", "\"h\" is not a duration (write e.g. 30s, 5m or 1h30m, or 0)"},
        {"30s5m", "\"30s5m\": the units go in the order h, m, s, each at most once"},
        {"1h1h", "\"1h1h\": the units go in the order h, m, s, each at most once"},
        {"1m2m", "\"1m2m\": the units go in the order h, m, s, each at most once"},
        {"1h\t", "\"1h\t\" is not a duration (write e.g. 30s, 5m or 1h30m, or 0)"},
        {"1s1s1s1s1s1s1s1s1s1s1s1s1s1s1s1s1", "a duration is at most 32 characters"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t v = -7;
        pgs_error e = {0};
        int rc = coordinator_duration_parse(bad[i].text, 86400, &v, &e);
        if (rc != PGS_EINVAL || strcmp(e.msg, bad[i].msg) != 0)
            fail_msg("%s: expected \"%s\", got %d \"%s\"", bad[i].text, bad[i].msg, rc, e.msg);
        assert_int_equal(v, -7);
    }
    pgs_error e = {0};
    int64_t v;
    assert_int_equal(coordinator_duration_parse(NULL, 10, &v, &e), PGS_EINVAL);
    assert_int_equal(coordinator_duration_parse("11s", 10, &v, &e), PGS_EINVAL);
    assert_string_equal(e.msg, "\"11s\" is more than 10s");
    assert_int_equal(coordinator_duration_parse("10m1s", 600, &v, &e), PGS_EINVAL);
    assert_string_equal(e.msg, "\"10m1s\" is more than 10m");
    assert_int_equal(coordinator_duration_parse("2h", 5400, &v, &e), PGS_EINVAL);
    assert_string_equal(e.msg, "\"2h\" is more than 1h30m");
}

static void test_coordinator_scheduler_section(void **state)
{
    fx f;
    fx_make(state, &f);
    coordinator_config cfg;
    pgs_error e;
    if (coord_load(&f, COORD_TLS, &cfg, &e) != 0)
        fail_msg("%s", e.msg);
    assert_int_equal(cfg.scheduler.max_concurrent, 4);
    assert_int_equal(cfg.scheduler.max_per_agent, 1);
    assert_int_equal(cfg.scheduler.catch_up, 1);
    assert_true(cfg.scheduler.overdue_factor == 2.0);
    assert_int_equal(cfg.scheduler.src.line, 0);
    assert_int_equal(cfg.nschedules, 0);
    assert_int_equal(cfg.nretentions, 0);
    assert_int_equal(cfg.ntokens, 0);
    assert_int_equal(cfg.nwebhooks, 0);
    char *out = print_coord(&cfg);
    assert_non_null(strstr(out, "\n[scheduler]\nmax_concurrent           = 4  (default)\n"
                                "max_per_agent            = 1  (default)\n"
                                "catch_up                 = true  (default)\n"
                                "overdue_factor           = 2.0  (default)\n"));
    assert_non_null(strstr(out, "# no [schedule NAME] sections: backups run only when asked for"));
    free(out);
    coordinator_config_free(&cfg);

    if (coord_load(&f,
                   COORD_TLS "[scheduler]\nmax_concurrent = 1000\nmax_per_agent = 64\n"
                             "catch_up = no\noverdue_factor = 1.5\n",
                   &cfg, &e) != 0)
        fail_msg("%s", e.msg);
    assert_int_equal(cfg.scheduler.max_concurrent, 1000);
    assert_int_equal(cfg.scheduler.max_per_agent, 64);
    assert_int_equal(cfg.scheduler.catch_up, 0);
    assert_true(cfg.scheduler.overdue_factor == 1.5);
    out = print_coord(&cfg);
    assert_non_null(strstr(out, "overdue_factor           = 1.5\n"));
    free(out);
    coordinator_config_free(&cfg);

    static const struct {
        const char *factor;
        double want;
    } factors[] = {
        {"1", 1.0}, {"100", 100.0}, {"2.25", 2.25}, {"99.999999", 99.999999}, {"001.0", 1.0}};
    for (size_t i = 0; i < sizeof(factors) / sizeof(factors[0]); i++) {
        char tmpl[512];
        snprintf(tmpl, sizeof(tmpl), COORD_TLS "[scheduler]\noverdue_factor = %s\n",
                 factors[i].factor);
        if (coord_load(&f, tmpl, &cfg, &e) != 0)
            fail_msg("%s: %s", factors[i].factor, e.msg);
        assert_true(cfg.scheduler.overdue_factor > factors[i].want - 1e-9 &&
                    cfg.scheduler.overdue_factor < factors[i].want + 1e-9);
        coordinator_config_free(&cfg);
    }
    static const char *const bad_factors[] = {"0.5", "0.999999", "100.000001", "101",  "1e2",
                                              "inf", "nan",      "2.",         ".5",   "-2",
                                              "2,5", "1000",     "1.1234567",  "0x10", "2 "};
    for (size_t i = 0; i < sizeof(bad_factors) / sizeof(bad_factors[0]); i++) {
        char tmpl[512], msg[256];
        snprintf(tmpl, sizeof(tmpl), COORD_TLS "[scheduler]\n\noverdue_factor = %s\n",
                 bad_factors[i]);
        /* the INI layer trims the value as written */
        char trimmed[32];
        snprintf(trimmed, sizeof(trimmed), "%s", bad_factors[i]);
        trimmed[strcspn(trimmed, " ")] = '\0';
        snprintf(msg, sizeof(msg),
                 "coord.conf:7: [scheduler] overdue_factor: \"%s\" is not a number from 1.0 to "
                 "100 (e.g. 2, 1.5 or 3.25)",
                 trimmed);
        if (strcmp(bad_factors[i], "2 ") == 0)
            continue; /* trailing spaces are trimmed by the INI layer: "2" is fine */
        coord_expect(&f, tmpl, PGS_EINVAL, msg);
    }
    coord_expect(&f, COORD_TLS "[scheduler]\nmax_concurrent = 0\n", PGS_EINVAL,
                 "coord.conf:6: [scheduler] max_concurrent: 0 is out of range (1..1000)");
    coord_expect(&f, COORD_TLS "[scheduler]\nmax_concurrent = 1001\n", PGS_EINVAL,
                 "coord.conf:6: [scheduler] max_concurrent: 1001 is out of range (1..1000)");
    coord_expect(&f, COORD_TLS "[scheduler]\nmax_per_agent = 65\n", PGS_EINVAL,
                 "coord.conf:6: [scheduler] max_per_agent: 65 is out of range (1..64)");
    coord_expect(&f, COORD_TLS "[scheduler]\ncatch_up = sometimes\n", PGS_EINVAL,
                 "coord.conf:6: [scheduler] catch_up: \"sometimes\" is not a boolean (use true or "
                 "false)");
    coord_expect(&f, COORD_TLS "[scheduler NAME]\n", PGS_EINVAL,
                 "coord.conf:5: section [scheduler] takes no name");
    coord_expect(&f, COORD_TLS "[scheduler]\n[scheduler]\n", PGS_EINVAL,
                 "coord.conf:6: section [scheduler] appears twice (first on line 5); merge them");
}

#define RET_STD "[retention std]\nkeep_last = 3\nkeep_daily = 7\n"

static void test_coordinator_schedules(void **state)
{
    fx f;
    fx_make(state, &f);
    coordinator_config cfg;
    pgs_error e;
    if (coord_load(&f,
                   COORD_TLS "[schedule nightly]\ncron = 30 2 * * *\nselect = env=prod agent=db-*\n"
                             "jitter = 1h30m\nretention = STD\n\n" RET_STD
                             "[schedule hourly]\ncron = @HOURLY\nselect = *\n",
                   &cfg, &e) != 0)
        fail_msg("%s", e.msg);
    assert_int_equal(cfg.nschedules, 2);
    assert_int_equal(cfg.nretentions, 1);
    coordinator_schedule_config *s = &cfg.schedules[0];
    assert_string_equal(s->name, "nightly");
    assert_int_equal(s->src.line, 5);
    assert_string_equal(s->cron_text, "30 2 * * *");
    assert_string_equal(cron_text(s->cron), "30 2 * * *");
    assert_string_equal(cron_zone(s->cron), "UTC");
    int64_t next = 0;
    assert_int_equal(cron_next(s->cron, 0, &next, &e), 0);
    assert_int_equal(next, 2 * 3600 + 30 * 60);
    assert_string_equal(select_text(s->select), "agent=db-* environment=prod");
    assert_int_equal(select_match(s->select, "db-1", "app", "prod"), 1);
    assert_int_equal(select_match(s->select, "db-1", "app", "staging"), 0);
    assert_int_equal(s->jitter_s, 5400);
    assert_string_equal(s->retention, "STD");
    assert_ptr_equal(s->retention_ref, &cfg.retentions[0]);
    s = &cfg.schedules[1];
    assert_string_equal(s->name, "hourly");
    assert_string_equal(cron_text(s->cron), "@hourly");
    assert_string_equal(s->jitter_text, "0");
    assert_false(ini_key_set(&coordinator_config_spec(&(size_t){0})[5], s, "jitter"));
    assert_int_equal(s->jitter_s, 0);
    assert_null(s->retention);
    assert_null(s->retention_ref);
    char *out = print_coord(&cfg);
    assert_non_null(strstr(out, "\n[schedule nightly]\ncron                     = 30 2 * * *\n"
                                "select                   = env=prod agent=db-*\n"
                                "jitter                   = 1h30m\n"
                                "retention                = STD\n"
                                "action                   = backup  (default)\n"
                                "# runs at \"30 2 * * *\" (time zone UTC) for the databases "
                                "agent=db-* environment=prod\n"));
    assert_non_null(strstr(out, "jitter                   = 0  (default)\n"
                                "retention                = (not set)\n"));
    assert_null(strstr(out, "no [schedule NAME] sections"));
    free(out);
    coordinator_config_free(&cfg);
    assert_null(cfg.schedules);
    assert_int_equal(cfg.nschedules, 0);

    if (have_zone("Europe/Berlin")) {
        if (coord_load(&f,
                       COORD_TLS "[schedule b]\ncron = CRON_TZ=Europe/Berlin  0 3 * * MON-FRI\n"
                                 "select = all\n",
                       &cfg, &e) != 0)
            fail_msg("%s", e.msg);
        assert_string_equal(cron_zone(cfg.schedules[0].cron), "Europe/Berlin");
        assert_string_equal(cron_text(cfg.schedules[0].cron),
                            "CRON_TZ=Europe/Berlin 0 3 * * MON-FRI");
        coordinator_config_free(&cfg);
    } else {
        print_message("no /usr/share/zoneinfo/Europe/Berlin: zone case skipped\n");
    }

    /* Errors, each with the line of the key. */
    coord_expect(&f, COORD_TLS "[schedule s]\nselect = *\n", PGS_EINVAL,
                 "coord.conf:5: [schedule s]: missing required key cron");
    coord_expect(&f, COORD_TLS "[schedule s]\ncron = @daily\n", PGS_EINVAL,
                 "coord.conf:5: [schedule s]: missing required key select");
    coord_expect(&f, COORD_TLS "[schedule s]\nselect = *\ncron = 61 * * * *\n", PGS_EINVAL,
                 "coord.conf:7: [schedule s] cron: minute: 61 is out of range 0-59");
    coord_expect(&f, COORD_TLS "[schedule s]\nselect = *\ncron = 0 0 30 2 *\n", PGS_EINVAL,
                 "coord.conf:7: [schedule s] cron: day-of-month: never runs*");
    coord_expect(&f, COORD_TLS "[schedule s]\nselect = *\ncron = @reboot\n", PGS_EINVAL,
                 "coord.conf:7: [schedule s] cron: *");
    coord_expect(&f, COORD_TLS "[schedule s]\nselect = *\ncron = 0 0 * * * *\n", PGS_EINVAL,
                 "coord.conf:7: [schedule s] cron: *");
    coord_expect(&f,
                 COORD_TLS "[schedule s]\nselect = *\ncron = CRON_TZ=Nowhere/Atlantis 0 0 * * *\n",
                 PGS_ENOTFOUND, "coord.conf:7: [schedule s] cron: time zone Nowhere/Atlantis*");
    coord_expect(&f,
                 COORD_TLS "[schedule s]\nselect = *\ncron = CRON_TZ=../../etc/passwd 0 0 * * *\n",
                 PGS_EINVAL, "coord.conf:7: [schedule s] cron: *");
    coord_expect(&f, COORD_TLS "[schedule s]\ncron = @daily\nselect = colour=blue\n", PGS_EINVAL,
                 "coord.conf:7: [schedule s] select: unknown key \"colour\" (use agent, database, "
                 "environment)");
    coord_expect(&f, COORD_TLS "[schedule s]\ncron = @daily\nselect = * env=prod\n", PGS_EINVAL,
                 "coord.conf:7: [schedule s] select: * (or all) selects every database and must "
                 "stand alone");
    coord_expect(&f, COORD_TLS "[schedule s]\ncron = @daily\nselect = env=prod\njitter = 25h\n",
                 PGS_EINVAL, "coord.conf:8: [schedule s] jitter: \"25h\" is more than 24h");
    coord_expect(&f, COORD_TLS "[schedule s]\ncron = @daily\nselect = env=prod\njitter = 2d\n",
                 PGS_EINVAL,
                 "coord.conf:8: [schedule s] jitter: \"2d\": unknown unit 'd' (use h, m or s)");
    coord_expect(&f, COORD_TLS "[schedule s]\ncron = @daily\nselect = env=prod\njitter = 10\n",
                 PGS_EINVAL,
                 "coord.conf:8: [schedule s] jitter: \"10\": a number without a unit (use h, m or "
                 "s; 0 alone is zero)");
    coord_expect(
        &f, COORD_TLS "[schedule s]\ncron = @daily\nselect = env=prod\nretention = nope\n" RET_STD,
        PGS_EINVAL,
        "coord.conf:8: [schedule s] retention: there is no [retention nope] section in "
        "this file");
    coord_expect(&f, COORD_TLS "[schedule s]\ncron = @daily\nselect = *\nretention = std\n",
                 PGS_EINVAL,
                 "coord.conf:8: [schedule s] retention: there is no [retention std] section in "
                 "this file");
    coord_expect(&f,
                 COORD_TLS "[schedule s]\ncron = @daily\nselect = *\nretention = std\n"
                           "action = verify\n" RET_STD,
                 PGS_EINVAL,
                 "coord.conf:8: [schedule s] retention: only a schedule of backups (action = "
                 "backup) prunes; this one verifies");
    coord_expect(&f, COORD_TLS "[schedule s]\ncron = @daily\nselect = *\naction = drill\n",
                 PGS_EINVAL, "coord.conf:8: [schedule s] action: *");
    coord_expect(&f, COORD_TLS "[schedule s]\ncron = @daily\nselect = *\nkeep_daily = 7\n",
                 PGS_EINVAL, "coord.conf:8: unknown key \"keep_daily\" in [schedule s]*");
    coord_expect(&f,
                 COORD_TLS "[schedule a]\ncron = @daily\nselect = *\n[schedule A]\ncron = @daily\n"
                           "select = *\n",
                 PGS_EINVAL, "coord.conf:8: duplicate section [schedule A] (first on line 5*");
}

static void test_coordinator_retentions(void **state)
{
    fx f;
    fx_make(state, &f);
    coordinator_config cfg;
    pgs_error e;
    if (coord_load(&f,
                   COORD_TLS "[retention full]\nkeep_last = 1\nkeep_within = 1y6m\n"
                             "keep_hourly = 24\nkeep_daily = 7\nkeep_weekly = 4\n"
                             "keep_monthly = 12\nkeep_yearly = unlimited\nselect = env=prod\n"
                             "[retention unused]\nkeep_last = 2\n",
                   &cfg, &e) != 0)
        fail_msg("%s", e.msg);
    assert_int_equal(cfg.nretentions, 2);
    const coordinator_retention_config *r = &cfg.retentions[0];
    assert_string_equal(r->name, "full");
    assert_int_equal(r->policy.keep_last, 1);
    assert_int_equal(r->policy.keep_within.years, 1);
    assert_int_equal(r->policy.keep_within.months, 6);
    assert_int_equal(r->policy.keep_within.days, 0);
    assert_int_equal(r->policy.keep_hourly, 24);
    assert_int_equal(r->policy.keep_daily, 7);
    assert_int_equal(r->policy.keep_weekly, 4);
    assert_int_equal(r->policy.keep_monthly, 12);
    assert_int_equal(r->policy.keep_yearly, RETENTION_UNLIMITED);
    assert_non_null(r->select);
    assert_int_equal(select_match(r->select, "a", "b", "prod"), 1);
    r = &cfg.retentions[1];
    assert_int_equal(r->policy.keep_last, 2);
    assert_int_equal(r->policy.keep_daily, 0);
    assert_null(r->select_text);
    assert_null(r->select);
    char *out = print_coord(&cfg);
    assert_non_null(strstr(out, "\n[retention full]\nkeep_last                = 1\n"
                                "keep_within              = 1y6m\n"));
    assert_non_null(strstr(out, "# applies to the databases it selects: environment=prod\n"));
    assert_non_null(strstr(out, "\n[retention unused]\nkeep_last                = 2\n"
                                "keep_within              = (not set)\n"));
    assert_non_null(
        strstr(out, "# no schedule names it and it has no select: it applies to nothing\n"));
    free(out);
    coordinator_config_free(&cfg);

    coord_expect(&f, COORD_TLS "\n[retention r]\n", PGS_EINVAL,
                 "coord.conf:6: [retention r]: no keep_* rule (give at least one of keep_last, "
                 "keep_within, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly, "
                 "above 0)");
    coord_expect(&f, COORD_TLS "[retention r]\nkeep_daily = 0\nselect = *\n", PGS_EINVAL,
                 "coord.conf:5: [retention r]: no keep_* rule*");
    coord_expect(&f, COORD_TLS "[retention r]\nkeep_daily = seven\n", PGS_EINVAL,
                 "coord.conf:6: [retention r] keep_daily: \"seven\" is not a count (0..1000000 or "
                 "unlimited)");
    coord_expect(&f, COORD_TLS "[retention r]\nkeep_last = 1000001\n", PGS_ELIMIT,
                 "coord.conf:6: [retention r] keep_last: more than 1000000");
    coord_expect(&f, COORD_TLS "[retention r]\nkeep_last = -1\n", PGS_EINVAL,
                 "coord.conf:6: [retention r] keep_last: \"-1\" is not a count*");
    coord_expect(&f, COORD_TLS "[retention r]\nkeep_last = 1\nkeep_within = 2w\n", PGS_EINVAL,
                 "coord.conf:7: [retention r] keep_within: duration \"2w\": no unit w (write "
                 "weeks as days: 7d)");
    coord_expect(&f, COORD_TLS "[retention r]\nkeep_within = 30m0d\nkeep_within = 1d\n", PGS_EINVAL,
                 "coord.conf:7: duplicate key keep_within in [retention r] (first set on line 6)");
    coord_expect(&f, COORD_TLS "[retention r]\nkeep_last = 1\nselect = env\n", PGS_EINVAL,
                 "coord.conf:7: [retention r] select: \"env\" is not KEY=GLOB[,GLOB...]*");
    coord_expect(&f, COORD_TLS "[retention r]\nkeep_last = 1\nkeep_forever = 1\n", PGS_EINVAL,
                 "coord.conf:7: unknown key \"keep_forever\" in [retention r]*");
}

/* The fixture's coordinator with tokens: D/tok-b (TOKEN_B, read), D/tok-c (TOKEN_C, operate). */
#define TOKENS_BC                                                                                  \
    "[token dash]\nfile = @D@/tok-b\nrole = read\n"                                                \
    "[token ci]\nrole = operate\nfile = @D@/tok-c\n"

static void test_coordinator_tokens(void **state)
{
    fx f;
    fx_make(state, &f);
    fx_file(&f, "tok-b", TOKEN_B "\n", 0600);
    fx_file(&f, "tok-c", TOKEN_C "\r\n", 0400);
    coordinator_config cfg;
    pgs_error e;
    if (coord_load(&f, COORD_TLS TOKENS_BC "[token boss]\nfile = @D@/tok-d\nrole = admin\n", &cfg,
                   &e) == 0)
        fail_msg("a missing token file loaded");
    fx_file(&f, "tok-d", "tokD-" TOKEN, 0600); /* no newline at all is fine too */
    if (coord_load(&f, COORD_TLS TOKENS_BC "[token boss]\nfile = @D@/tok-d\nrole = admin\n", &cfg,
                   &e) != 0)
        fail_msg("%s", e.msg);
    assert_int_equal(cfg.ntokens, 3);
    assert_string_equal(cfg.tokens[0].name, "dash");
    assert_int_equal(cfg.tokens[0].role, ROLE_READ);
    assert_string_equal(cfg.tokens[0].token, TOKEN_B);
    assert_int_equal(cfg.tokens[1].role, ROLE_OPERATE);
    assert_string_equal(cfg.tokens[1].token, TOKEN_C);
    assert_int_equal(cfg.tokens[2].role, ROLE_ADMIN);
    assert_string_equal(cfg.tokens[2].token, "tokD-" TOKEN);

    /* The lookup. */
    const coordinator_token_config *t = coordinator_config_token(&cfg, TOKEN);
    assert_non_null(t);
    assert_string_equal(t->name, "(api_token_file)");
    assert_int_equal(t->role, ROLE_ADMIN);
    assert_null(t->token);
    assert_ptr_equal(coordinator_config_token(&cfg, TOKEN_B), &cfg.tokens[0]);
    assert_ptr_equal(coordinator_config_token(&cfg, TOKEN_C), &cfg.tokens[1]);
    assert_ptr_equal(coordinator_config_token(&cfg, "tokD-" TOKEN), &cfg.tokens[2]);
    static const char *const wrong[] = {"",
                                        "x",
                                        TOKEN "x",
                                        "0123456789abcdef0123456789abcdeF",
                                        TOKEN_B " ",
                                        " " TOKEN_B,
                                        "tokB-0123456789abcdef0123456789abcde",
                                        TOKEN "\n"};
    for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++)
        if (coordinator_config_token(&cfg, wrong[i]) != NULL)
            fail_msg("\"%s\" was taken for a token", wrong[i]);
    assert_null(coordinator_config_token(&cfg, NULL));
    assert_null(coordinator_config_token(NULL, TOKEN));
    char *huge = malloc(COORDINATOR_SECRET_MAX + 10);
    assert_non_null(huge);
    memset(huge, 'a', COORDINATOR_SECRET_MAX + 9);
    huge[COORDINATOR_SECRET_MAX + 9] = '\0';
    assert_null(coordinator_config_token(&cfg, huge));
    free(huge);

    /* --check-config shows files and roles, never a token. */
    char *out = print_coord(&cfg);
    assert_null(strstr(out, TOKEN));
    assert_null(strstr(out, "tokB-"));
    assert_null(strstr(out, "tokC-"));
    assert_null(strstr(out, "tokD-"));
    char want[1024];
    snprintf(want, sizeof(want),
             "\n[token dash]\nfile                     = %s/tok-b\nrole                     = "
             "read\n",
             f.dir);
    assert_non_null(strstr(out, want));
    assert_non_null(strstr(out, "role                     = operate\n"));
    assert_non_null(strstr(out, "# api_token_file's token has role admin, beside the [token NAME] "
                                "sections\n"));
    free(out);
    coordinator_config_free(&cfg);
    assert_null(cfg.tokens);

    /* coordinator_config_parse reads no token: nothing to find. */
    static const char text[] = "[coordinator]\ntls_cert = /x/c\ntls_key = /x/k\n"
                               "api_token_file = /x/t\n[token a]\nfile = /x/a\nrole = read\n";
    if (coordinator_config_parse("mem", text, sizeof(text) - 1, &cfg, &e) != 0)
        fail_msg("%s", e.msg);
    assert_int_equal(cfg.ntokens, 1);
    assert_int_equal(cfg.tokens[0].role, ROLE_READ);
    assert_null(cfg.tokens[0].token);
    assert_null(coordinator_config_token(&cfg, TOKEN));
    assert_null(coordinator_config_token(&cfg, ""));
    coordinator_config_free(&cfg);
}

static void test_coordinator_token_errors(void **state)
{
    fx f;
    fx_make(state, &f);
    fx_file(&f, "tok-b", TOKEN_B "\n", 0600);
    fx_file(&f, "tok-c", TOKEN_C "\n", 0600);
    coord_expect(&f, COORD_TLS "[token t]\nrole = read\n", PGS_EINVAL,
                 "coord.conf:5: [token t]: missing required key file");
    coord_expect(&f, COORD_TLS "[token t]\nfile = @D@/tok-b\n", PGS_EINVAL,
                 "coord.conf:5: [token t]: missing required key role");
    coord_expect(&f, COORD_TLS "[token t]\nfile = @D@/tok-b\nrole = root\n", PGS_EINVAL,
                 "coord.conf:7: [token t] role: \"root\" is not one of: read, operate, admin");
    coord_expect(&f, COORD_TLS "[token t]\nfile = @D@/tok-b\nrole = Admin\n", PGS_EINVAL,
                 "coord.conf:7: [token t] role: \"Admin\" is not one of: read, operate, admin");
    coord_expect(&f, COORD_TLS "[token t]\nfile = tok-b\nrole = read\n", PGS_EINVAL,
                 "coord.conf:6: [token t] file: \"tok-b\" is not an absolute path");
    coord_expect(&f, COORD_TLS "[token t]\nfile = @D@/nope\nrole = read\n", PGS_EIO,
                 "coord.conf:6: [token t] file: @D@/nope: No such file or directory");
    coord_expect(&f,
                 "[coordinator]\ntls_cert = @D@/server.crt\ntls_key = @D@/server.key\n"
                 "api_listen = off\n[token t]\nfile = @D@/tok-b\nrole = read\n",
                 PGS_EINVAL,
                 "coord.conf:5: [token t]: a token for the HTTP API, but api_listen = off");

    /* The file's mode, length and contents. */
    fx_file(&f, "tok-x", TOKEN_B "\n", 0640);
    coord_expect(&f, COORD_TLS "[token t]\nfile = @D@/tok-x\nrole = read\n", PGS_EINVAL,
                 "coord.conf:6: [token t] file: @D@/tok-x holds a secret but is accessible by "
                 "group or others (mode 0640); chmod 600 it");
    fx_file(&f, "tok-x", TOKEN_B "\n", 0604);
    coord_expect(&f, COORD_TLS "[token t]\nfile = @D@/tok-x\nrole = read\n", PGS_EINVAL,
                 "coord.conf:6: [token t] file: @D@/tok-x holds a secret but is accessible by "
                 "group or others (mode 0604); chmod 600 it");
    /* 31 characters: one short of the minimum (api_token_file's 16 do not apply). */
    fx_file(&f, "tok-x", "0123456789abcdef0123456789abcde\n", 0600);
    coord_expect(&f, COORD_TLS "[token t]\nfile = @D@/tok-x\nrole = read\n", PGS_EINVAL,
                 "coord.conf:6: [token t] file: @D@/tok-x: shorter than 32 characters (make one "
                 "with: openssl rand -hex 32)");
    fx_file(&f, "tok-x", "", 0600);
    coord_expect(&f, COORD_TLS "[token t]\nfile = @D@/tok-x\nrole = read\n", PGS_EFORMAT,
                 "coord.conf:6: [token t] file: @D@/tok-x: must hold one line of printable "
                 "characters without spaces");
    char big[600];
    memset(big, 'z', 513);
    strcpy(big + 513, "\n");
    fx_file(&f, "tok-x", big, 0600);
    coord_expect(&f, COORD_TLS "[token t]\nfile = @D@/tok-x\nrole = read\n", PGS_EINVAL,
                 "coord.conf:6: [token t] file: @D@/tok-x: longer than 512 characters");
    big[512] = '\0'; /* exactly 512 is fine */
    fx_file(&f, "tok-x", big, 0600);
    coordinator_config cfg;
    pgs_error e;
    if (coord_load(&f, COORD_TLS "[token t]\nfile = @D@/tok-x\nrole = read\n", &cfg, &e) != 0)
        fail_msg("%s", e.msg);
    assert_int_equal(strlen(cfg.tokens[0].token), 512);
    coordinator_config_free(&cfg);
    fx_file(&f, "tok-x", "tok-0123456789abcdef 0123456789abcdef\n", 0600);
    coord_expect(&f, COORD_TLS "[token t]\nfile = @D@/tok-x\nrole = read\n", PGS_EFORMAT,
                 "coord.conf:6: [token t] file: @D@/tok-x: must hold one line of printable "
                 "characters without spaces");
    fx_file(&f, "tok-x", TOKEN_B "\n" TOKEN_C "\n", 0600);
    coord_expect(&f, COORD_TLS "[token t]\nfile = @D@/tok-x\nrole = read\n", PGS_EFORMAT,
                 "coord.conf:6: [token t] file: @D@/tok-x: must hold one line of printable "
                 "characters without spaces");
    fx_file(&f, "tok-x", "tok-0123456789abcdef\t0123456789abcdef\n", 0600);
    coord_expect(&f, COORD_TLS "[token t]\nfile = @D@/tok-x\nrole = read\n", PGS_EFORMAT,
                 "coord.conf:6: [token t] file: @D@/tok-x: must hold one line of printable "
                 "characters without spaces");
    fx_file(&f, "tok-x",
            "tok-0123456789abcdef\xc3\xa9"
            "0123456789abcdef\n",
            0600);
    coord_expect(&f, COORD_TLS "[token t]\nfile = @D@/tok-x\nrole = read\n", PGS_EFORMAT,
                 "coord.conf:6: [token t] file: @D@/tok-x: must hold one line of printable "
                 "characters without spaces");

    /* No two tokens alike: not two sections, not a section and api_token_file, not one file
     * named twice. The message never shows the token. */
    fx_file(&f, "tok-x", TOKEN_B "\n", 0600);
    coord_expect(&f,
                 COORD_TLS "[token a]\nfile = @D@/tok-b\nrole = read\n\n[token b]\nrole = admin\n"
                           "file = @D@/tok-x\n",
                 PGS_EINVAL,
                 "coord.conf:11: [token b] file: @D@/tok-x holds the same token as [token a] "
                 "(line 5): each token needs its own");
    coord_expect(&f,
                 COORD_TLS "[token a]\nfile = @D@/tok-b\nrole = read\n[token b]\n"
                           "file = @D@/tok-b\nrole = read\n",
                 PGS_EINVAL,
                 "coord.conf:9: [token b] file: @D@/tok-b holds the same token as [token a] "
                 "(line 5): each token needs its own");
    fx_file(&f, "tok-x", TOKEN "0\n", 0600); /* longer than api_token_file's: differs */
    if (coord_load(&f, COORD_TLS "[token a]\nfile = @D@/tok-x\nrole = read\n", &cfg, &e) != 0)
        fail_msg("%s", e.msg);
    coordinator_config_free(&cfg);
    fx_file(&f, "tok-x", TOKEN "\n", 0600);
    coord_expect(&f, COORD_TLS "[token a]\nfile = @D@/tok-x\nrole = read\n", PGS_EINVAL,
                 "coord.conf:6: [token a] file: @D@/tok-x holds the same token as [coordinator] "
                 "api_token_file (line 4): each token needs its own");
    pgs_error pe;
    memset(&pe, 0, sizeof(pe));
    int rc = coord_load(&f, COORD_TLS "[token a]\nfile = @D@/tok-x\nrole = read\n", &cfg, &pe);
    assert_int_equal(rc, PGS_EINVAL);
    assert_null(strstr(pe.msg, TOKEN));
}

#define HOOK                                                                                       \
    "[webhook chat]\nurl = https://hooks.example.com:8443/services/T00/B00/SeCrEtPaTh?x=1\n"

static void test_coordinator_webhooks(void **state)
{
    fx f;
    fx_make(state, &f);
    fx_file(&f, "hook-secret", HOOK_SECRET "\n", 0600);
    coordinator_config cfg;
    pgs_error e;
    if (coord_load(&f,
                   COORD_TLS HOOK "[webhook pager]\nurl = http://127.0.0.1\n"
                                  "secret_file = @D@/hook-secret\n"
                                  "events = backup.overdue ,backup.failed\ntimeout = 1m30s\n"
                                  "max_attempts = 20\n",
                   &cfg, &e) != 0)
        fail_msg("%s", e.msg);
    assert_int_equal(cfg.nwebhooks, 2);
    coordinator_webhook_config *w = &cfg.webhooks[0];
    assert_string_equal(w->name, "chat");
    assert_string_equal(w->url, "https://hooks.example.com:8443/services/T00/B00/SeCrEtPaTh?x=1");
    assert_int_equal(w->events, COORDINATOR_EVENTS_ALL);
    assert_int_equal(w->timeout_ms, 10000);
    assert_int_equal(w->max_attempts, 5);
    assert_null(w->secret_file);
    assert_null(w->secret);
    assert_int_equal(w->secret_len, 0);
    w = &cfg.webhooks[1];
    assert_int_equal(w->events, COORDINATOR_EVENT_BACKUP_OVERDUE | COORDINATOR_EVENT_BACKUP_FAILED);
    assert_int_equal(w->timeout_ms, 90000);
    assert_int_equal(w->max_attempts, 20);
    assert_int_equal(w->secret_len, strlen(HOOK_SECRET));
    assert_memory_equal(w->secret, HOOK_SECRET, strlen(HOOK_SECRET));

    char *out = print_coord(&cfg);
    assert_null(strstr(out, "SeCrEtPaTh"));
    assert_null(strstr(out, "/services"));
    assert_null(strstr(out, HOOK_SECRET));
    assert_non_null(strstr(out, "\n[webhook chat]\nurl                      = (set)\n"));
    assert_non_null(strstr(out, "events                   = backup.failed, restore.failed, "
                                "verify.failed, backup.overdue  (default)\n"
                                "timeout                  = 10s  (default)\n"
                                "max_attempts             = 5  (default)\n"
                                "# url: https://hooks.example.com:8443 (its path and query are "
                                "not shown: they may hold a token)\n"));
    assert_non_null(strstr(out, "# url: http://127.0.0.1 (its path"));
    free(out);
    coordinator_config_free(&cfg);
    assert_null(cfg.webhooks);

    /* The secret: bytes as written, less one LF or CRLF; binary is fine. */
    fx_file(&f, "hook-secret", HOOK_SECRET "\r\n", 0600);
    if (coord_load(&f, COORD_TLS HOOK "secret_file = @D@/hook-secret\n", &cfg, &e) != 0)
        fail_msg("%s", e.msg);
    assert_int_equal(cfg.webhooks[0].secret_len, strlen(HOOK_SECRET));
    coordinator_config_free(&cfg);
    char p[700];
    snprintf(p, sizeof(p), "%s/hook-secret", f.dir);
    {
        uint8_t bin[1024 + 1];
        for (size_t i = 0; i < sizeof(bin); i++)
            bin[i] = (uint8_t)(i * 7 + 1);
        bin[5] = 0;
        bin[1024] = '\n';
        FILE *fp = fopen(p, "w");
        assert_non_null(fp);
        assert_int_equal(fwrite(bin, 1, sizeof(bin), fp), sizeof(bin));
        fclose(fp);
        if (coord_load(&f, COORD_TLS HOOK "secret_file = @D@/hook-secret\n", &cfg, &e) != 0)
            fail_msg("%s", e.msg);
        assert_int_equal(cfg.webhooks[0].secret_len, 1024);
        assert_memory_equal(cfg.webhooks[0].secret, bin, 1024);
        coordinator_config_free(&cfg);
        fp = fopen(p, "w");
        assert_non_null(fp);
        bin[1024] = 'x';
        assert_int_equal(fwrite(bin, 1, sizeof(bin), fp), sizeof(bin));
        fclose(fp);
        coord_expect(&f, COORD_TLS HOOK "secret_file = @D@/hook-secret\n", PGS_EINVAL,
                     "coord.conf:7: [webhook chat] secret_file: @D@/hook-secret: longer than 1024 "
                     "bytes");
    }
    fx_file(&f, "hook-secret", "0123456789abcde\n", 0600);
    coord_expect(&f, COORD_TLS HOOK "secret_file = @D@/hook-secret\n", PGS_EINVAL,
                 "coord.conf:7: [webhook chat] secret_file: @D@/hook-secret: shorter than 16 bytes "
                 "(make one with: openssl rand -hex 32)");
    fx_file(&f, "hook-secret", "\n", 0600);
    coord_expect(&f, COORD_TLS HOOK "secret_file = @D@/hook-secret\n", PGS_EINVAL,
                 "coord.conf:7: [webhook chat] secret_file: @D@/hook-secret: shorter than 16 bytes "
                 "(make one with: openssl rand -hex 32)");
    fx_file(&f, "hook-secret", HOOK_SECRET "\n", 0660);
    coord_expect(&f, COORD_TLS HOOK "secret_file = @D@/hook-secret\n", PGS_EINVAL,
                 "coord.conf:7: [webhook chat] secret_file: @D@/hook-secret holds a secret but is "
                 "accessible by group or others (mode 0660); chmod 600 it");

    /* URLs: the messages never quote past the host. */
    static const struct {
        const char *url;
        const char *msg;
    } bad_urls[] = {
        {"ftp://h/x", "scheme \"ftp\" is not allowed here (expected one of https://, http://)"},
        {"hooks.example.com/x", "not a URL (expected one of https://, http://)"},
        {"https:///SeCrEt", "URL has no host"},
        {"https://user:SeCrEt@h/x",
         "user names and passwords do not belong in the URL (put a token in its path, or sign "
         "requests with secret_file)"},
        {"https://h:0/SeCrEt", "port must be a number from 1 to 65535"},
        {"https://h:99999/SeCrEt", "port must be a number from 1 to 65535"},
        {"https://h/SeCrEt with space", "must be printable ASCII without spaces (percent-encode "
                                        "the rest)"},
        {"https://h/SeCr\xc3\xa9t", "must be printable ASCII without spaces (percent-encode the "
                                    "rest)"},
        {"https://h!x/SeCrEt", "unexpected \"!x\" after the host"},
        {"https://[::1/SeCrEt", "*"},
    };
    for (size_t i = 0; i < sizeof(bad_urls) / sizeof(bad_urls[0]); i++) {
        char tmpl[512], msg[512];
        snprintf(tmpl, sizeof(tmpl), COORD_TLS "[webhook w]\nurl = %s\n", bad_urls[i].url);
        snprintf(msg, sizeof(msg), "coord.conf:6: [webhook w] url: %s", bad_urls[i].msg);
        coord_expect(&f, tmpl, PGS_EINVAL, msg);
        memset(&e, 0, sizeof(e));
        assert_int_not_equal(coord_load(&f, tmpl, &cfg, &e), 0);
        if (strstr(e.msg, "SeCr") != NULL)
            fail_msg("the message shows the URL's path: %s", e.msg);
    }
    {
        char tmpl[2600];
        char path[2100];
        memset(path, 'p', 2048 - strlen("https://h/") + 1);
        path[2048 - strlen("https://h/") + 1] = '\0';
        snprintf(tmpl, sizeof(tmpl), COORD_TLS "[webhook w]\nurl = https://h/%s\n", path);
        coord_expect(&f, tmpl, PGS_ELIMIT, "coord.conf:6: [webhook w] url: longer than 2048 bytes");
        path[strlen(path) - 1] = '\0'; /* 2048 exactly */
        snprintf(tmpl, sizeof(tmpl), COORD_TLS "[webhook w]\nurl = https://h/%s\n", path);
        if (coord_load(&f, tmpl, &cfg, &e) != 0)
            fail_msg("%s", e.msg);
        coordinator_config_free(&cfg);
    }
    static const char *const ok_urls[] = {"https://h", "http://[::1]:8080/x?y=z&w=%20",
                                          "https://hooks.slack.com/services/T/B/X",
                                          "http://localhost:9/"};
    for (size_t i = 0; i < sizeof(ok_urls) / sizeof(ok_urls[0]); i++) {
        char tmpl[512];
        snprintf(tmpl, sizeof(tmpl), COORD_TLS "[webhook w]\nurl = %s\n", ok_urls[i]);
        if (coord_load(&f, tmpl, &cfg, &e) != 0)
            fail_msg("%s: %s", ok_urls[i], e.msg);
        coordinator_config_free(&cfg);
    }

    coord_expect(&f, COORD_TLS "[webhook w]\nevents = backup.failed\n", PGS_EINVAL,
                 "coord.conf:5: [webhook w]: missing required key url");
    coord_expect(&f, COORD_TLS HOOK "events = backup.failed, backup.exploded\n", PGS_EINVAL,
                 "coord.conf:7: [webhook chat] events: \"backup.exploded\" is not an event (use a "
                 "comma-separated list of backup.failed, restore.failed, verify.failed, "
                 "backup.overdue)");
    coord_expect(&f, COORD_TLS HOOK "events = test\n", PGS_EINVAL,
                 "coord.conf:7: [webhook chat] events: \"test\" is not an event*");
    coord_expect(&f, COORD_TLS HOOK "events = backup.failed,,verify.failed\n", PGS_EINVAL,
                 "coord.conf:7: [webhook chat] events: \"\" is not an event*");
    coord_expect(&f, COORD_TLS HOOK "events = Backup.Failed\n", PGS_EINVAL,
                 "coord.conf:7: [webhook chat] events: \"Backup.Failed\" is not an event*");
    coord_expect(&f, COORD_TLS HOOK "events = verify.failed, verify.failed\n", PGS_EINVAL,
                 "coord.conf:7: [webhook chat] events: verify.failed is listed twice");
    coord_expect(&f, COORD_TLS HOOK "timeout = 0\n", PGS_EINVAL,
                 "coord.conf:7: [webhook chat] timeout: must be at least 1s");
    coord_expect(&f, COORD_TLS HOOK "timeout = 10m1s\n", PGS_EINVAL,
                 "coord.conf:7: [webhook chat] timeout: \"10m1s\" is more than 10m");
    coord_expect(&f, COORD_TLS HOOK "timeout = 500ms\n", PGS_EINVAL,
                 "coord.conf:7: [webhook chat] timeout: \"500ms\": unexpected 's' after \"500m\" "
                 "(write e.g. 30s, 5m or 1h30m: whole seconds at most)");
    coord_expect(&f, COORD_TLS HOOK "max_attempts = 0\n", PGS_EINVAL,
                 "coord.conf:7: [webhook chat] max_attempts: 0 is out of range (1..20)");
    coord_expect(&f, COORD_TLS HOOK "max_attempts = 21\n", PGS_EINVAL,
                 "coord.conf:7: [webhook chat] max_attempts: 21 is out of range (1..20)");

    assert_int_equal(coordinator_webhook_event_bit("backup.failed"),
                     COORDINATOR_EVENT_BACKUP_FAILED);
    assert_int_equal(coordinator_webhook_event_bit("restore.failed"),
                     COORDINATOR_EVENT_RESTORE_FAILED);
    assert_int_equal(coordinator_webhook_event_bit("verify.failed"),
                     COORDINATOR_EVENT_VERIFY_FAILED);
    assert_int_equal(coordinator_webhook_event_bit("backup.overdue"),
                     COORDINATOR_EVENT_BACKUP_OVERDUE);
    assert_int_equal(coordinator_webhook_event_bit("test"), 0);
    assert_int_equal(coordinator_webhook_event_bit(NULL), 0);
}

/* Everything at once: --check-config shows no token, no webhook secret, no URL path. */
static void test_coordinator_print_never_shows_secrets(void **state)
{
    fx f;
    fx_make(state, &f);
    fx_file(&f, "tok-b", TOKEN_B "\n", 0600);
    fx_file(&f, "tok-c", TOKEN_C "\n", 0600);
    fx_file(&f, "hook-secret", HOOK_SECRET "\n", 0600);
    coordinator_config cfg;
    pgs_error e;
    if (coord_load(&f,
                   COORD_TLS TOKENS_BC HOOK
                   "secret_file = @D@/hook-secret\n" RET_STD
                   "[schedule s]\ncron = @daily\nselect = *\nretention = std\n",
                   &cfg, &e) != 0)
        fail_msg("%s", e.msg);
    char *out = print_coord(&cfg);
    static const char *const secrets[] = {TOKEN,       TOKEN_B,      TOKEN_C,
                                          HOOK_SECRET, "SeCrEtPaTh", "services/T00",
                                          "tokB",      "tokC",       "0123456789abcdef"};
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
        if (strstr(out, secrets[i]) != NULL)
            fail_msg("--check-config shows \"%s\":\n%s", secrets[i], out);
    assert_non_null(strstr(out, "# the policy: keep_last 3, keep_daily 7\n"));
    free(out);
    coordinator_config_free(&cfg);
}

/* ---- agent ---- */

#define AGENT_MIN                                                                                  \
    "[agent]\n"                                                                                    \
    "name = a1\n"                                                                                  \
    "coordinator = tls+tcp://coord.example:7433\n"                                                 \
    "tls_ca = @D@/ca.crt\n"                                                                        \
    "identity_key = @D@/agent-id.key\n"                                                            \
    "recipients = @D@/rcpt-1.pub\n"

#define DB1 "[database db1]\nconninfo = dbname=db1 password=hunter2\nenvironment = prod\n"

static void test_agent_minimal_file_gets_defaults(void **state)
{
    fx f;
    fx_make(state, &f);
    agent_config cfg;
    pgs_error e;
    if (agent_load(&f, AGENT_MIN DB1, &cfg, &e) != 0)
        fail_msg("%s", e.msg);
    assert_string_equal(cfg.agent.name, "a1");
    assert_string_equal(cfg.agent.tls_server_name, "coord.example");
    assert_false(ini_key_set(&agent_config_spec(&(size_t){0})[0], &cfg.agent, "tls_server_name"));
    assert_null(cfg.agent.tls_cert);
    assert_null(cfg.agent.tls_key);
    assert_string_equal(cfg.agent.spool_dir, "/var/lib/pgship/spool");
    assert_int_equal(cfg.agent.log_level, 2);
    assert_int_equal(cfg.agent.allow_insecure_transport, 0);
    assert_int_equal(cfg.insecure_transport, 0);
    assert_memory_equal(cfg.identity.pk, f.agent_id.pk, KEY_LEN);
    assert_string_equal(cfg.identity.name, "agent-id");
    assert_int_equal(cfg.ndatabases, 1);
    assert_string_equal(cfg.databases[0].name, "db1");
    assert_string_equal(cfg.databases[0].conninfo, "dbname=db1 password=hunter2");
    assert_string_equal(cfg.databases[0].environment, "prod");
    assert_int_equal(cfg.databases[0].recipients.n, 0);
    assert_int_equal(cfg.databases[0].nkeys, 1);
    assert_memory_equal(cfg.databases[0].keys[0].pk, f.rcpt1.pk, KEY_LEN);
    agent_config_free(&cfg);
    agent_config_free(&cfg);
}

static void test_agent_databases_in_order_with_own_recipients(void **state)
{
    fx f;
    fx_make(state, &f);
    agent_config cfg;
    pgs_error e;
    if (agent_load(&f,
                   "[database zz]\nconninfo = service=zz\nenvironment = staging\n"
                   "recipients = @D@/rcpt-2.pub ,@D@/rcpt-1.pub\n" AGENT_MIN
                   "tls_server_name = coordinator.internal\n"
                   "[database aa]\nconninfo = postgresql://u@h/aa\nenvironment = dev_2-x\n",
                   &cfg, &e) != 0)
        fail_msg("%s", e.msg);
    assert_string_equal(cfg.agent.tls_server_name, "coordinator.internal");
    assert_int_equal(cfg.ndatabases, 2);
    assert_string_equal(cfg.databases[0].name, "zz");
    assert_int_equal(cfg.databases[0].src.line, 1);
    assert_int_equal(cfg.databases[0].nkeys, 2);
    assert_memory_equal(cfg.databases[0].keys[0].pk, f.rcpt2.pk, KEY_LEN);
    assert_memory_equal(cfg.databases[0].keys[1].pk, f.rcpt1.pk, KEY_LEN);
    assert_string_equal(cfg.databases[1].name, "aa");
    assert_string_equal(cfg.databases[1].environment, "dev_2-x");
    assert_int_equal(cfg.databases[1].nkeys, 1);
    assert_memory_equal(cfg.databases[1].keys[0].pk, f.rcpt1.pk, KEY_LEN);
    agent_config_free(&cfg);

    agent_expect(&f, AGENT_MIN DB1 DB1, PGS_EINVAL,
                 "agent.conf:10: duplicate section [database db1] (first on line 7)");
}

static void test_agent_insecure_transport_rules(void **state)
{
    fx f;
    fx_make(state, &f);
    agent_expect(&f,
                 "[agent]\nname = a1\ncoordinator = tcp://coord:7433\n"
                 "identity_key = @D@/agent-id.key\nrecipients = @D@/rcpt-1.pub\n",
                 PGS_EINVAL,
                 "agent.conf:3: [agent] coordinator: tcp:// is not encrypted; use tls+tcp:// or "
                 "set allow_insecure_transport = true");
    agent_expect(&f,
                 "[agent]\nname = a1\ncoordinator = tcp://coord:7433\nallow_insecure_transport = "
                 "on\ntls_ca = @D@/ca.crt\nidentity_key = @D@/agent-id.key\n",
                 PGS_EINVAL,
                 "agent.conf:5: [agent] tls_ca: is set but coordinator is tcp:// (no TLS); remove "
                 "it or use tls+tcp://");
    agent_expect(&f,
                 "[agent]\nname = a1\ncoordinator = tls+tcp://coord:7433\n"
                 "identity_key = @D@/agent-id.key\n",
                 PGS_EINVAL,
                 "agent.conf:3: [agent] coordinator: tls+tcp:// needs tls_ca in [agent]: the CA "
                 "certificate that signed the coordinator's certificate");
    agent_expect(&f, AGENT_MIN "tls_cert = @D@/server.crt\n", PGS_EINVAL,
                 "agent.conf:7: [agent] tls_cert: tls_cert and tls_key go together: set both or "
                 "neither");
    agent_expect(&f, AGENT_MIN "tls_key = @D@/server.key\n", PGS_EINVAL,
                 "agent.conf:7: [agent] tls_key: tls_cert and tls_key go together: set both or "
                 "neither");
    agent_expect(&f,
                 "[agent]\nname = a1\ncoordinator = http://coord:7433\n"
                 "identity_key = @D@/agent-id.key\n",
                 PGS_EINVAL,
                 "agent.conf:3: [agent] coordinator: scheme \"http\" is not allowed here "
                 "(expected one of tls+tcp://, tcp://, ipc://)");

    agent_expect(&f,
                 "[agent]\nname = a1\ncoordinator = tls+tcp://10.0.0.1:7433\ntls_ca = @D@/ca.crt\n"
                 "identity_key = @D@/agent-id.key\n",
                 PGS_EINVAL,
                 "agent.conf:1: [agent] tls_server_name: \"10.0.0.1\" is not a DNS name; the "
                 "coordinator's certificate is checked by DNS name only, so set tls_server_name "
                 "to the name it carries");
    agent_expect(&f,
                 "[agent]\nname = a1\ncoordinator = tls+tcp://[::1]:7433\ntls_ca = @D@/ca.crt\n"
                 "identity_key = @D@/agent-id.key\ntls_server_name = ::1\n",
                 PGS_EINVAL,
                 "agent.conf:6: [agent] tls_server_name: \"::1\" is not a DNS name; the "
                 "coordinator's certificate is checked by DNS name only, so set tls_server_name "
                 "to the name it carries");

    agent_config cfg;
    pgs_error e;
    if (agent_load(
            &f,
            "[agent]\nname = a1\ncoordinator = tls+tcp://10.0.0.1:7433\ntls_ca = @D@/ca.crt\n"
            "identity_key = @D@/agent-id.key\ntls_server_name = coord.internal\n",
            &cfg, &e) != 0)
        fail_msg("%s", e.msg);
    agent_config_free(&cfg);
    if (agent_load(&f,
                   "[agent]\nname = a1\ncoordinator = ipc:///run/pgship.sock\n"
                   "allow_insecure_transport = true\nidentity_key = @D@/agent-id.key\n",
                   &cfg, &e) != 0)
        fail_msg("%s", e.msg);
    assert_int_equal(cfg.insecure_transport, 1);
    assert_null(cfg.agent.tls_server_name);
    assert_int_equal(cfg.ndatabases, 0);
    char *out = print_agent(&cfg);
    assert_non_null(strstr(out, "WARNING: connects to the coordinator without TLS"));
    assert_non_null(strstr(out, "no [database NAME] sections"));
    free(out);
    agent_config_free(&cfg);

    if (agent_load(&f, AGENT_MIN "tls_cert = @D@/server.crt\ntls_key = @D@/server.key\n", &cfg,
                   &e) != 0)
        fail_msg("%s", e.msg);
    agent_config_free(&cfg);
}

static void test_agent_identity_key_checks(void **state)
{
    fx f;
    fx_make(state, &f);
    char p[600];
    snprintf(p, sizeof(p), "%s/agent-id.key", f.dir);
    assert_int_equal(chmod(p, 0644), 0);
    agent_expect(&f, AGENT_MIN DB1, PGS_EINVAL,
                 "agent.conf:5: [agent] identity_key: @D@/agent-id.key holds a secret but is "
                 "accessible by group or others (mode 0644); chmod 600 it");
    assert_int_equal(chmod(p, 0600), 0);
    /* A recipient's secret key is not an identity key. */
    agent_expect(&f,
                 "[agent]\nname = a1\ncoordinator = tls+tcp://coord.example:7433\n"
                 "tls_ca = @D@/ca.crt\nidentity_key = @D@/rcpt-1.key\n",
                 PGS_EINVAL,
                 "agent.conf:5: [agent] identity_key: @D@/rcpt-1.key: this is a secret key file*");
    agent_expect(&f,
                 "[agent]\nname = a1\ncoordinator = tls+tcp://coord.example:7433\n"
                 "tls_ca = @D@/ca.crt\nidentity_key = @D@/missing.key\n",
                 PGS_EIO,
                 "agent.conf:5: [agent] identity_key: @D@/missing.key: No such file or "
                 "directory");
    agent_expect(&f, "[agent]\nname = a1\ncoordinator = tls+tcp://coord.example:7433\n", PGS_EINVAL,
                 "agent.conf:1: [agent]: missing required key identity_key");
    agent_expect(&f,
                 "[agent]\nname = .a1\ncoordinator = tls+tcp://c:1\ntls_ca = @D@/ca.crt\n"
                 "identity_key = @D@/agent-id.key\n",
                 PGS_EINVAL,
                 "agent.conf:2: [agent] name: \".a1\" is not a valid name: use 1-63 of A-Z a-z "
                 "0-9 . _ - (not starting with . or -)");
}

static void test_agent_recipients(void **state)
{
    fx f;
    fx_make(state, &f);
    agent_expect(&f,
                 "[agent]\nname = a1\ncoordinator = tls+tcp://c:1\ntls_ca = @D@/ca.crt\n"
                 "identity_key = @D@/agent-id.key\n" DB1,
                 PGS_EINVAL,
                 "agent.conf:6: [database db1] recipients: no recipients: set recipients in "
                 "[agent] or in this section, or backups could be opened by nobody");
    agent_expect(&f, AGENT_MIN DB1 "recipients = @D@/rcpt-1.pub, @D@/nope.pub\n", PGS_EIO,
                 "agent.conf:10: [database db1] recipients: @D@/nope.pub: No such file or "
                 "directory");
    agent_expect(&f, AGENT_MIN DB1 "recipients = @D@/rcpt-2.key\n", PGS_EINVAL,
                 "agent.conf:10: [database db1] recipients: @D@/rcpt-2.key: this is a secret key "
                 "file*");
    agent_expect(&f, AGENT_MIN DB1 "recipients = @D@/id-a.pub\n", PGS_EINVAL,
                 "agent.conf:10: [database db1] recipients: @D@/id-a.pub: this is an identity "
                 "public key file*");
    char id[KEY_ID_HEX_LEN + 1], want[512];
    key_id_hex(f.rcpt2.id, id);
    snprintf(want, sizeof(want),
             "agent.conf:10: [database db1] recipients: @D@/rcpt-2.pub and @D@/rcpt-2.pub hold "
             "the same key (id %s)",
             id);
    agent_expect(&f, AGENT_MIN DB1 "recipients = @D@/rcpt-2.pub, @D@/rcpt-2.pub\n", PGS_EINVAL,
                 want);
}

static void test_agent_database_values(void **state)
{
    fx f;
    fx_make(state, &f);
    agent_expect(&f, AGENT_MIN "[database db1]\nconninfo = dbname=x\nenvironment = Prod\n",
                 PGS_EINVAL,
                 "agent.conf:9: [database db1] environment: \"Prod\" is not valid: use 1-31 of "
                 "a-z 0-9 _ - (e.g. prod, staging, dev)");
    agent_expect(&f, AGENT_MIN "[database db1]\nenvironment = prod\n", PGS_EINVAL,
                 "agent.conf:7: [database db1]: missing required key conninfo");
    agent_expect(&f, AGENT_MIN "[database db1]\nconninfo = dbname=x\n", PGS_EINVAL,
                 "agent.conf:7: [database db1]: missing required key environment");
    /* libpq's message would quote the password: it is not shown. */
    agent_config cfg;
    pgs_error e;
    int rc = agent_load(&f,
                        AGENT_MIN "[database db1]\nconninfo = host=h password hunter2\n"
                                  "environment = prod\n",
                        &cfg, &e);
    assert_int_equal(rc, PGS_EINVAL);
    assert_null(strstr(e.msg, "hunter2"));
    assert_non_null(strstr(e.msg, "agent.conf:8: [database db1] conninfo: is not a valid libpq "
                                  "connection string"));
    assert_null(cfg.path);
}

static void test_agent_print_never_shows_conninfo(void **state)
{
    fx f;
    fx_make(state, &f);
    agent_config cfg;
    pgs_error e;
    if (agent_load(&f, AGENT_MIN DB1, &cfg, &e) != 0)
        fail_msg("%s", e.msg);
    char *out = print_agent(&cfg);
    assert_null(strstr(out, "hunter2"));
    assert_non_null(strstr(out, "\nconninfo                 = (set)\n"));
    assert_non_null(strstr(out, "[database db1]\n"));
    assert_non_null(strstr(out, "tls_server_name          = coord.example  (default)\n"));
    char id[KEY_ID_HEX_LEN + 1], want[128];
    key_id_hex(f.rcpt1.id, id);
    snprintf(want, sizeof(want), "# recipient (from [agent]) %s (rcpt-1)\n", id);
    assert_non_null(strstr(out, want));
    key_id_hex(f.agent_id.id, id);
    snprintf(want, sizeof(want), "# identity key id %s (agent-id)\n", id);
    assert_non_null(strstr(out, want));
    free(out);
    agent_config_free(&cfg);
}

static void test_agent_restore_keys_loaded_in_order_and_never_printed(void **state)
{
    fx f;
    fx_make(state, &f);
    agent_config cfg;
    pgs_error e;
    if (agent_load(&f, AGENT_MIN "restore_keys = @D@/rcpt-2.key, @D@/rcpt-1.key\n" DB1, &cfg, &e) !=
        0)
        fail_msg("%s", e.msg);
    assert_int_equal(cfg.nrestore_keys, 2);
    assert_memory_equal(cfg.restore_keys[0].pk, f.rcpt2.pk, KEY_LEN);
    assert_memory_equal(cfg.restore_keys[0].id, f.rcpt2.id, KEY_ID_LEN);
    assert_string_equal(cfg.restore_keys[0].name, "rcpt-2");
    assert_memory_equal(cfg.restore_keys[1].pk, f.rcpt1.pk, KEY_LEN);
    assert_int_equal(cfg.agent.restore_keys.n, 2);
    char *out = print_agent(&cfg);
    char id[KEY_ID_HEX_LEN + 1], want[128], line[256];
    key_id_hex(f.rcpt2.id, id);
    snprintf(want, sizeof(want), "# restore key %s (rcpt-2)\n", id);
    assert_non_null(strstr(out, want));
    key_id_hex(f.rcpt1.id, id);
    snprintf(want, sizeof(want), "# restore key %s (rcpt-1)\n", id);
    assert_non_null(strstr(out, want));
    /* The secret's text form (its base64) appears nowhere. */
    for (size_t i = 0; i < cfg.nrestore_keys; i++) {
        assert_int_equal(key_format_secret(&cfg.restore_keys[i], line, sizeof(line)), 0);
        char *b64 = strstr(line, " x25519 ") + 8;
        b64[strcspn(b64, " ")] = '\0';
        assert_null(strstr(out, b64));
    }
    free(out);
    agent_config_free(&cfg);
    assert_null(cfg.restore_keys);
    assert_int_equal(cfg.nrestore_keys, 0);
    agent_config_free(&cfg);

    /* None by default: the agent cannot restore, and says so. */
    if (agent_load(&f, AGENT_MIN DB1, &cfg, &e) != 0)
        fail_msg("%s", e.msg);
    assert_null(cfg.restore_keys);
    assert_int_equal(cfg.nrestore_keys, 0);
    out = print_agent(&cfg);
    assert_non_null(strstr(out, "# no restore_keys: this agent cannot restore\n"));
    free(out);
    agent_config_free(&cfg);

    /* The parser alone reads no key file. */
    static const char text[] = "[agent]\nname = a1\ncoordinator = tcp://c:1\n"
                               "allow_insecure_transport = true\nidentity_key = /x/id.key\n"
                               "restore_keys = /x/a.key, /x/b.key\n";
    if (agent_config_parse("mem", text, sizeof(text) - 1, &cfg, &e) != 0)
        fail_msg("%s", e.msg);
    assert_int_equal(cfg.agent.restore_keys.n, 2);
    assert_int_equal(cfg.nrestore_keys, 0);
    agent_config_free(&cfg);
}

static void test_agent_restore_keys_checks(void **state)
{
    fx f;
    fx_make(state, &f);
    char p[600];
    snprintf(p, sizeof(p), "%s/rcpt-1.key", f.dir);
    assert_int_equal(chmod(p, 0640), 0);
    agent_expect(&f, AGENT_MIN "restore_keys = @D@/rcpt-2.key, @D@/rcpt-1.key\n", PGS_EINVAL,
                 "agent.conf:7: [agent] restore_keys: @D@/rcpt-1.key holds a secret but is "
                 "accessible by group or others (mode 0640); chmod 600 it");
    assert_int_equal(chmod(p, 0600), 0);
    agent_expect(&f, AGENT_MIN "restore_keys = @D@/nope.key\n", PGS_EIO,
                 "agent.conf:7: [agent] restore_keys: @D@/nope.key: No such file or directory");
    /* A public key, even one kept private, cannot decrypt. */
    snprintf(p, sizeof(p), "%s/rcpt-1.pub", f.dir);
    assert_int_equal(chmod(p, 0600), 0);
    agent_expect(&f, AGENT_MIN "restore_keys = @D@/rcpt-1.pub\n", PGS_EINVAL,
                 "agent.conf:7: [agent] restore_keys: @D@/rcpt-1.pub: this is a public key file*");
    agent_expect(&f, AGENT_MIN "restore_keys = @D@/agent-id.key\n", PGS_EINVAL,
                 "agent.conf:7: [agent] restore_keys: @D@/agent-id.key: this is an identity*");
    agent_expect(&f, AGENT_MIN "restore_keys = relative/k.key\n", PGS_EINVAL,
                 "agent.conf:7: [agent] restore_keys: *");
    char id[KEY_ID_HEX_LEN + 1], want[512];
    key_id_hex(f.rcpt1.id, id);
    snprintf(want, sizeof(want),
             "agent.conf:7: [agent] restore_keys: @D@/rcpt-1.key and @D@/rcpt-1.key hold the "
             "same key (id %s)",
             id);
    agent_expect(&f, AGENT_MIN "restore_keys = @D@/rcpt-1.key, @D@/rcpt-1.key\n", PGS_EINVAL, want);
}

/* ---- the examples and the documentation ---- */

/* Creates every file that a key with INI_FILE or INI_PRIVATE names in inst, as the key wants it. */
static void make_named_files(const ini_section *spec, const void *inst)
{
    for (size_t ki = 0; ki < spec->nkeys; ki++) {
        const ini_key *k = &spec->keys[ki];
        if (!(k->flags & (INI_FILE | INI_PRIVATE)))
            continue;
        const char *paths[INI_LIST_MAX];
        size_t n = 0;
        if (k->type == INI_PATHS) {
            const ini_list *l = (const ini_list *)((const char *)inst + k->offset);
            for (size_t i = 0; i < l->n; i++)
                paths[n++] = l->items[i];
        } else {
            const char *v = *(char *const *)((const char *)inst + k->offset);
            if (v != NULL)
                paths[n++] = v;
        }
        for (size_t i = 0; i < n; i++) {
            struct stat st;
            if (stat(paths[i], &st) == 0)
                continue;
            parent_dirs(paths[i]);
            char prefix[1024];
            snprintf(prefix, sizeof(prefix), "%s", paths[i]);
            char *dot = strrchr(prefix, '.');
            pgs_error e = {0};
            int rc = 0;
            if (strcmp(k->name, "identity_key") == 0) {
                assert_non_null(dot);
                *dot = '\0';
                pgs_identity_pub pk;
                rc = identity_generate_files(prefix, &pk, &e);
            } else if (strcmp(k->name, "recipients") == 0 || strcmp(k->name, "restore_keys") == 0) {
                assert_non_null(dot);
                *dot = '\0';
                pgs_pubkey pk;
                rc = key_generate_files(prefix, &pk, &e);
            } else if (strcmp(spec->name, "token") == 0 && strcmp(k->name, "file") == 0) {
                /* [token NAME] file: each its own token, none api_token_file's */
                char tok[1200];
                snprintf(tok, sizeof(tok), "%s-" TOKEN "\n", strrchr(paths[i], '/') + 1);
                write_file(paths[i], tok, 0600);
            } else if (strstr(k->name, "_file") != NULL) {
                write_file(paths[i], TOKEN "\n", 0600);
            } else {
                write_file(paths[i], "-----BEGIN PEM-----\n",
                           (k->flags & INI_PRIVATE) ? 0600 : 0644);
            }
            if (rc != 0)
                fail_msg("%s: %s", paths[i], e.msg);
        }
    }
}

/* An example with /etc/pgship and /var/lib/pgship moved under D, written to D/name. */
static void example_in(const fx *f, const char *example, const char *name, char *path, size_t len,
                       char **text_out)
{
    char src[1024], to[700];
    snprintf(src, sizeof(src), "%s/deploy/examples/%s", PGSHIP_SOURCE_DIR, example);
    char *text = read_whole(src);
    snprintf(to, sizeof(to), "%s/etc/pgship/", f->dir);
    text = replace_all(text, "/etc/pgship/", to);
    snprintf(to, sizeof(to), "%s/var/lib/pgship/", f->dir);
    text = replace_all(text, "/var/lib/pgship/", to);
    snprintf(path, len, "%s/%s", f->dir, name);
    write_file(path, text, 0644);
    *text_out = text;
}

/* Every key of spec appears in the example as "key =" or commented "# key =". */
static void example_has_every_key(const char *text, const ini_section *spec, const char *example)
{
    for (size_t ki = 0; ki < spec->nkeys; ki++) {
        const char *key = spec->keys[ki].name;
        int found = 0;
        for (const char *l = text; l != NULL && !found; l = strchr(l, '\n')) {
            if (*l == '\n')
                l++;
            while (*l == '#' || *l == ' ')
                l++;
            size_t kl = strlen(key);
            found = strncmp(l, key, kl) == 0 && strncmp(l + kl, " =", 2) == 0;
        }
        if (!found)
            fail_msg("%s does not show key %s of [%s]", example, key, spec->name);
    }
}

static void test_examples_load(void **state)
{
    fx f;
    fx_make(state, &f);
    unset_aws();
    char path[1024];
    char *text = NULL;
    pgs_error e = {0};
    size_t nspecs;
    const ini_section *specs;

    example_in(&f, "coordinator.conf", "coordinator.conf", path, sizeof(path), &text);
    if (!have_zone("Europe/Berlin")) {
        /* the example's zone: without tzdata, the example still loads in UTC */
        print_message("no /usr/share/zoneinfo/Europe/Berlin: the example's schedule in UTC\n");
        text = replace_all(text, "CRON_TZ=Europe/Berlin", "CRON_TZ=UTC");
        write_file(path, text, 0644);
    }
    coordinator_config cfg;
    if (coordinator_config_parse(path, text, strlen(text), &cfg, &e) != 0)
        fail_msg("%s", e.msg);
    specs = coordinator_config_spec(&nspecs);
    make_named_files(&specs[0], &cfg.coordinator);
    make_named_files(&specs[1], &cfg.storage);
    for (size_t i = 0; i < cfg.ntokens; i++)
        make_named_files(&specs[7], &cfg.tokens[i]);
    for (size_t i = 0; i < cfg.nwebhooks; i++)
        make_named_files(&specs[8], &cfg.webhooks[i]);
    for (size_t i = 0; i < nspecs; i++)
        example_has_every_key(text, &specs[i], "coordinator.conf");
    coordinator_config_free(&cfg);
    free(text);
    if (coordinator_config_load(path, &cfg, &e) != 0)
        fail_msg("%s", e.msg);
    assert_int_equal(cfg.storage.type, COORDINATOR_STORAGE_S3);
    assert_int_equal(cfg.nagents, 2);
    assert_string_equal(cfg.agents[0].name, "db-prod-1");
    assert_string_equal(cfg.agents[0].key.name, "db-prod-1");
    assert_string_equal(cfg.agents[1].name, "db-staging-1");
    assert_int_equal(cfg.scheduler.src.line > 0, 1);
    assert_int_equal(cfg.nretentions, 2);
    assert_int_equal(cfg.nschedules, 3);
    assert_int_equal(cfg.schedules[2].action, SCHEDULE_RESTORE_TEST);
    assert_ptr_equal(cfg.schedules[0].retention_ref, &cfg.retentions[0]);
    assert_int_equal(cfg.schedules[0].jitter_s, 15 * 60);
    assert_int_equal(cfg.ntokens, 2);
    assert_int_equal(cfg.tokens[0].role, ROLE_READ);
    assert_int_equal(cfg.tokens[1].role, ROLE_OPERATE);
    assert_string_equal(coordinator_config_token(&cfg, "grafana-" TOKEN)->name, "grafana");
    assert_string_equal(coordinator_config_token(&cfg, TOKEN)->name, "(api_token_file)");
    assert_int_equal(cfg.nwebhooks, 1);
    assert_int_equal(cfg.webhooks[0].secret_len, strlen(TOKEN));
    assert_int_equal(cfg.webhooks[0].events, COORDINATOR_EVENTS_ALL);
    char *out = print_coord(&cfg);
    assert_null(strstr(out, "XXXXXXXX"));
    assert_null(strstr(out, TOKEN));
    free(out);
    coordinator_config_free(&cfg);

    example_in(&f, "agent.conf", "agent.conf", path, sizeof(path), &text);
    agent_config acfg;
    if (agent_config_parse(path, text, strlen(text), &acfg, &e) != 0)
        fail_msg("%s", e.msg);
    specs = agent_config_spec(&nspecs);
    make_named_files(&specs[0], &acfg.agent);
    for (size_t i = 0; i < acfg.ndatabases; i++)
        make_named_files(&specs[1], &acfg.databases[i]);
    for (size_t i = 0; i < nspecs; i++)
        example_has_every_key(text, &specs[i], "agent.conf");
    agent_config_free(&acfg);
    free(text);
    if (agent_config_load(path, &acfg, &e) != 0)
        fail_msg("%s", e.msg);
    assert_string_equal(acfg.agent.name, "db-prod-1");
    assert_int_equal(acfg.ndatabases, 2);
    assert_int_equal(acfg.databases[0].nkeys, 2);
    assert_int_equal(acfg.databases[1].nkeys, 1);
    agent_config_free(&acfg);
}

/* The cells of a markdown table row "| a | b | c | d |", trimmed, into cells (at most max). */
static size_t row_cells(const char *line, char cells[][1024], size_t max)
{
    size_t n = 0;
    const char *p = strchr(line, '|');
    while (p != NULL && n < max) {
        const char *q = strchr(p + 1, '|');
        if (q == NULL)
            break;
        const char *s = p + 1, *t = q;
        while (s < t && *s == ' ')
            s++;
        while (t > s && t[-1] == ' ')
            t--;
        size_t len = (size_t)(t - s) < 1023 ? (size_t)(t - s) : 1023;
        memcpy(cells[n], s, len);
        cells[n][len] = '\0';
        n++;
        p = q;
    }
    return n;
}

static const char *type_word(const ini_key *k)
{
    switch (k->type) {
    case INI_STRING:
        return "string";
    case INI_BOOL:
        return "bool";
    case INI_UINT:
        return "integer";
    case INI_SIZE:
        return "size";
    case INI_ENUM:
        return "one of";
    case INI_PATH:
        return "path";
    case INI_PATHS:
        return "list of paths";
    case INI_URL:
        return "URL";
    }
    return "?";
}

/*
 * Checks the table under heading in docs against spec: one row per key, no row for anything
 * else; the type cell starts with the type's word (and gives the range, the choices, "secret
 * file" or "secret" as the key's flags say); the default cell is the default in backquotes,
 * "required" for required keys, and neither for keys without a fixed default.
 */
static void check_doc_table(const char *docs, const char *heading, const ini_section *spec)
{
    const char *h = strstr(docs, heading);
    if (h == NULL)
        fail_msg("docs/configuration.md has no heading \"%s\"", heading);
    const char *end = strstr(h + strlen(heading), "\n#");
    if (end == NULL)
        end = docs + strlen(docs);
    int seen[INI_KEYS_MAX] = {0};
    for (const char *l = strchr(h, '\n'); l != NULL && l < end; l = strchr(l + 1, '\n')) {
        if (strncmp(l, "\n| `", 4) != 0)
            continue;
        char line[4096];
        size_t ll = strcspn(l + 1, "\n");
        snprintf(line, sizeof(line), "%.*s", (int)ll, l + 1);
        static char cells[4][1024];
        if (row_cells(line, cells, 4) != 4)
            fail_msg("%s: row without 4 cells: %s", heading, line);
        char key[128];
        size_t kl = strlen(cells[0]);
        assert_true(kl > 2 && cells[0][kl - 1] == '`');
        snprintf(key, sizeof(key), "%.*s", (int)(kl - 2), cells[0] + 1);
        const ini_key *k = ini_find_key(spec, key);
        if (k == NULL)
            fail_msg("%s documents \"%s\", which the code does not have", heading, key);
        size_t ki = (size_t)(k - spec->keys);
        if (seen[ki]++)
            fail_msg("%s documents %s twice", heading, key);
        const char *type = cells[1], *def = cells[2];
        if (strncmp(type, type_word(k), strlen(type_word(k))) != 0)
            fail_msg("%s %s: type \"%s\" should start with \"%s\"", heading, key, type,
                     type_word(k));
        if (k->type == INI_UINT || k->type == INI_SIZE) {
            char range[64];
            snprintf(range, sizeof(range), "%llu..%llu", (unsigned long long)k->min,
                     (unsigned long long)k->max);
            if (strstr(type, range) == NULL)
                fail_msg("%s %s: type \"%s\" should give the range %s", heading, key, type, range);
        }
        for (size_t i = 0; k->choices != NULL && k->choices[i] != NULL; i++) {
            char c[64];
            snprintf(c, sizeof(c), "`%s`", k->choices[i]);
            if (strstr(type, c) == NULL)
                fail_msg("%s %s: type \"%s\" should list %s", heading, key, type, c);
        }
        if ((k->flags & INI_PRIVATE) && strstr(type, "secret file") == NULL)
            fail_msg("%s %s: type should say \"secret file\"", heading, key);
        if ((k->flags & INI_SECRET) && strstr(type, "secret") == NULL)
            fail_msg("%s %s: type should say \"secret\"", heading, key);
        if ((k->flags & INI_FILE) && strstr(type, "readable file") == NULL)
            fail_msg("%s %s: type should say \"readable file\"", heading, key);
        char want[256];
        if (k->def != NULL) {
            snprintf(want, sizeof(want), "`%s`", k->def);
            if (strcmp(def, want) != 0)
                fail_msg("%s %s: default \"%s\", the code says %s", heading, key, def, want);
        } else if (k->flags & INI_REQUIRED) {
            if (strcmp(def, "required") != 0)
                fail_msg("%s %s: default \"%s\", the code says required", heading, key, def);
        } else if (strcmp(def, "required") == 0 || def[0] == '`') {
            fail_msg("%s %s: default \"%s\", but the code has no fixed default", heading, key, def);
        }
    }
    for (size_t ki = 0; ki < spec->nkeys; ki++)
        if (!seen[ki])
            fail_msg("%s does not document %s", heading, spec->keys[ki].name);
}

static void test_docs_list_every_key(void **state)
{
    (void)state;
    char path[1024];
    snprintf(path, sizeof(path), "%s/docs/configuration.md", PGSHIP_SOURCE_DIR);
    char *docs = read_whole(path);
    size_t n;
    const ini_section *c = coordinator_config_spec(&n);
    assert_int_equal(n, 9);
    const char *coord_part = strstr(docs, "\n## The coordinator's file\n");
    const char *agent_part = strstr(docs, "\n## The agent's file\n");
    assert_non_null(coord_part);
    assert_non_null(agent_part);
    check_doc_table(coord_part, "\n### `[coordinator]`\n", &c[0]);
    check_doc_table(coord_part, "\n### `[storage]`\n", &c[1]);
    check_doc_table(coord_part, "\n### `[policy]`\n", &c[2]);
    check_doc_table(coord_part, "\n### `[agent NAME]` (coordinator)\n", &c[3]);
    check_doc_table(coord_part, "\n### `[scheduler]`\n", &c[4]);
    check_doc_table(coord_part, "\n### `[schedule NAME]`\n", &c[5]);
    check_doc_table(coord_part, "\n### `[retention NAME]`\n", &c[6]);
    check_doc_table(coord_part, "\n### `[token NAME]`\n", &c[7]);
    check_doc_table(coord_part, "\n### `[webhook NAME]`\n", &c[8]);
    const ini_section *a = agent_config_spec(&n);
    assert_int_equal(n, 2);
    check_doc_table(agent_part, "\n### `[agent]`\n", &a[0]);
    check_doc_table(agent_part, "\n### `[database NAME]`\n", &a[1]);
    free(docs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(fn) cmocka_unit_test_setup_teardown(fn, tu_tmpdir_setup, tu_tmpdir_teardown)
        T(test_coordinator_minimal_file_gets_defaults),
        T(test_coordinator_agents_collected_in_order),
        T(test_coordinator_public_key_must_be_an_identity_line),
        T(test_coordinator_insecure_transport_rules),
        T(test_coordinator_api_rules),
        T(test_coordinator_secret_file_modes),
        T(test_coordinator_storage_rules),
        T(test_coordinator_s3_credentials_precedence),
        cmocka_unit_test(test_coordinator_parse_needs_no_files),
        cmocka_unit_test(test_coordinator_duration_parse),
        T(test_coordinator_scheduler_section),
        T(test_coordinator_schedules),
        T(test_coordinator_retentions),
        T(test_coordinator_tokens),
        T(test_coordinator_token_errors),
        T(test_coordinator_webhooks),
        T(test_coordinator_print_never_shows_secrets),
        T(test_agent_minimal_file_gets_defaults),
        T(test_agent_databases_in_order_with_own_recipients),
        T(test_agent_insecure_transport_rules),
        T(test_agent_identity_key_checks),
        T(test_agent_recipients),
        T(test_agent_database_values),
        T(test_agent_print_never_shows_conninfo),
        T(test_agent_restore_keys_loaded_in_order_and_never_printed),
        T(test_agent_restore_keys_checks),
        T(test_examples_load),
        cmocka_unit_test(test_docs_list_every_key),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
