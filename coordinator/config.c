/*
 * The coordinator's configuration (see config.h). The spec tables below are the whole list of
 * keys: docs/configuration.md documents each of them, and a unit test checks that it still does.
 * What one key cannot say alone (which keys TLS needs, which keys belong to which storage type,
 * the insecure-transport rule) is checked in coordinator_config_check, with the line of the key
 * that is wrong.
 */
#include "coordinator/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "common/log.h"

static const char *const listen_schemes[] = {"tls+tcp", "tcp", "ipc", NULL};
static const char *const api_schemes[] = {"http", NULL};
static const char *const endpoint_schemes[] = {"https", "http", NULL};
static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};
_Static_assert(LOG_ERROR == 0 && LOG_WARN == 1 && LOG_INFO == 2 && LOG_DEBUG == 3,
               "log_levels[] is indexed by enum log_level");
static const char *const storage_types[] = {"fs", "s3", NULL};

#define CS(f) offsetof(coordinator_section_config, f)
#define ST(f) offsetof(coordinator_storage_config, f)
#define AG(f) offsetof(coordinator_agent_config, f)

static const ini_key coordinator_keys[] = {
    {"listen", INI_URL, 0, "tls+tcp://0.0.0.0:7433", 0, 0, listen_schemes, CS(listen)},
    {"tls_cert", INI_PATH, INI_FILE, NULL, 0, 0, NULL, CS(tls_cert)},
    {"tls_key", INI_PATH, INI_PRIVATE, NULL, 0, 0, NULL, CS(tls_key)},
    {"tls_ca", INI_PATH, INI_FILE, NULL, 0, 0, NULL, CS(tls_ca)},
    {"api_listen", INI_URL, INI_OFF, "http://127.0.0.1:7434", 0, 0, api_schemes, CS(api_listen)},
    {"api_token_file", INI_PATH, INI_PRIVATE, NULL, 0, 0, NULL, CS(api_token_file)},
    {"catalog", INI_PATH, 0, "/var/lib/pgship/catalog.db", 0, 0, NULL, CS(catalog)},
    {"allow_insecure_transport", INI_BOOL, 0, "false", 0, 0, NULL, CS(allow_insecure_transport)},
    {"log_level", INI_ENUM, 0, "info", 0, 0, log_levels, CS(log_level)},
    {"max_streams", INI_UINT, 0, "8", 1, 1024, NULL, CS(max_streams)},
    {"window", INI_UINT, 0, "4", 1, 64, NULL, CS(window)},
    {"profiles_dir", INI_PATH, 0, "/etc/pgship/profiles", 0, 0, NULL, CS(profiles_dir)},
};

#define PO(f) offsetof(coordinator_policy_config, f)

static const ini_key policy_keys[] = {
    {"prod_environments", INI_STRING, 0, "prod", 0, 0, NULL, PO(prod_environments)},
    {"allow_unsanitized", INI_STRING, 0, NULL, 0, 0, NULL, PO(allow_unsanitized)},
};

static const ini_key storage_keys[] = {
    {"type", INI_ENUM, 0, "fs", 0, 0, storage_types, ST(type)},
    {"path", INI_PATH, 0, "/var/lib/pgship/archive", 0, 0, NULL, ST(path)},
    {"prefix", INI_STRING, 0, NULL, 0, 0, NULL, ST(prefix)},
    {"endpoint", INI_URL, 0, NULL, 0, 0, endpoint_schemes, ST(endpoint)},
    {"region", INI_STRING, 0, "us-east-1", 0, 0, NULL, ST(region)},
    {"bucket", INI_STRING, 0, NULL, 0, 0, NULL, ST(bucket)},
    {"path_style", INI_BOOL, 0, "false", 0, 0, NULL, ST(path_style)},
    {"access_key_id", INI_STRING, 0, NULL, 0, 0, NULL, ST(access_key_id)},
    {"secret_access_key_file", INI_PATH, INI_PRIVATE, NULL, 0, 0, NULL, ST(secret_access_key_file)},
    {"part_size_mib", INI_UINT, 0, "12", 5, 5120, NULL, ST(part_size_mib)},
    {"parallel_parts", INI_UINT, 0, "1", 1, 64, NULL, ST(parallel_parts)},
};

static const ini_key agent_keys[] = {
    {"public_key", INI_STRING, INI_REQUIRED, NULL, 0, 0, NULL, AG(public_key)},
};

enum { SPEC_COORDINATOR, SPEC_STORAGE, SPEC_POLICY, SPEC_AGENT, SPEC_COUNT };

static const ini_section coordinator_specs[SPEC_COUNT] = {
    [SPEC_COORDINATOR] = {"coordinator", 0, 1, coordinator_keys,
                          sizeof(coordinator_keys) / sizeof(coordinator_keys[0]),
                          sizeof(coordinator_section_config), 0, CS(src)},
    [SPEC_STORAGE] = {"storage", 0, 0, storage_keys, sizeof(storage_keys) / sizeof(storage_keys[0]),
                      sizeof(coordinator_storage_config), 0, ST(src)},
    [SPEC_POLICY] = {"policy", 0, 0, policy_keys, sizeof(policy_keys) / sizeof(policy_keys[0]),
                     sizeof(coordinator_policy_config), 0, PO(src)},
    [SPEC_AGENT] = {"agent", 1, 0, agent_keys, sizeof(agent_keys) / sizeof(agent_keys[0]),
                    sizeof(coordinator_agent_config), AG(name), AG(src)},
};

/* Keys that mean something only to the s3 driver. */
static const char *const s3_only_keys[] = {
    "endpoint",      "region",         "bucket",
    "path_style",    "access_key_id",  "secret_access_key_file",
    "part_size_mib", "parallel_parts", NULL};

const ini_section *coordinator_config_spec(size_t *nspecs)
{
    *nspecs = SPEC_COUNT;
    return coordinator_specs;
}

static void coordinator_targets(coordinator_config *cfg, ini_target t[SPEC_COUNT])
{
    memset(t, 0, sizeof(ini_target) * SPEC_COUNT);
    t[SPEC_COORDINATOR].one = &cfg->coordinator;
    t[SPEC_STORAGE].one = &cfg->storage;
    t[SPEC_POLICY].one = &cfg->policy;
    t[SPEC_AGENT].many = cfg->agents;
    t[SPEC_AGENT].count = cfg->nagents;
}

static void coordinator_take_targets(coordinator_config *cfg, const ini_target t[SPEC_COUNT])
{
    cfg->agents = t[SPEC_AGENT].many;
    cfg->nagents = t[SPEC_AGENT].count;
}

/* Fails with "file:line: [section] key: message", the line being the key's (or its section's). */
static int cfg_fail(pgs_error *e, const coordinator_config *cfg, int spec, const void *inst,
                    const char *key, int code, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

static int cfg_fail(pgs_error *e, const coordinator_config *cfg, int spec, const void *inst,
                    const char *key, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = ini_vfail_key(e, code, cfg->path, &coordinator_specs[spec], inst, key, fmt, ap);
    va_end(ap);
    return rc;
}

static int is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (strcmp(host, "localhost") == 0)
        return 1;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

/* One line of printable ASCII without spaces: tokens, key ids and secrets as the APIs take them. */
static int is_token(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (*s < 0x21 || *s > 0x7e)
            return 0;
    return 1;
}

/* S3 bucket names: 3-63 of a-z 0-9 . -, starting and ending with a letter or digit. */
static int bucket_valid(const char *b)
{
    size_t n = strlen(b);
    if (n < 3 || n > 63 || strstr(b, "..") != NULL)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = b[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && c != '.' && c != '-')
            return 0;
        if ((i == 0 || i == n - 1) && !alnum)
            return 0;
    }
    return 1;
}

static int region_valid(const char *r)
{
    size_t n = strlen(r);
    if (n == 0 || n > 32)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((r[i] >= 'a' && r[i] <= 'z') || (r[i] >= '0' && r[i] <= '9') || r[i] == '-'))
            return 0;
    return 1;
}

/* An object key prefix: segments of [A-Za-z0-9._-] joined by '/', none empty, "." or "..", no
 * leading or trailing '/'. It becomes part of paths under the fs root, so it must not climb. */
static int prefix_valid(const char *p)
{
    size_t n = strlen(p);
    if (n == 0 || n > 256)
        return 0;
    const char *seg = p;
    for (size_t i = 0; i <= n; i++) {
        char c = p[i];
        if (c == '/' || c == '\0') {
            size_t sl = (size_t)(p + i - seg);
            if (sl == 0 || (sl == 1 && seg[0] == '.') ||
                (sl == 2 && seg[0] == '.' && seg[1] == '.'))
                return 0;
            seg = p + i + 1;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static int check_coordinator_section(coordinator_config *cfg, pgs_error *e)
{
    coordinator_section_config *c = &cfg->coordinator;
    const void *inst = c;
    ini_url u;
    pgs_error ue = {0};
    if (ini_url_parse(c->listen, listen_schemes, &u, &ue) != 0)
        return cfg_fail(e, cfg, SPEC_COORDINATOR, inst, "listen", ue.code, "%s", ue.msg);
    cfg->insecure_transport = strcmp(u.scheme, "tls+tcp") != 0;
    if (!cfg->insecure_transport) {
        if (c->tls_cert == NULL)
            return cfg_fail(e, cfg, SPEC_COORDINATOR, inst, "listen", PGS_EINVAL,
                            "tls+tcp:// needs tls_cert and tls_key in [coordinator]");
        if (c->tls_key == NULL)
            return cfg_fail(e, cfg, SPEC_COORDINATOR, inst, "listen", PGS_EINVAL,
                            "tls+tcp:// needs tls_key in [coordinator]");
    } else {
        if (!c->allow_insecure_transport)
            return cfg_fail(e, cfg, SPEC_COORDINATOR, inst, "listen", PGS_EINVAL,
                            "%s:// is not encrypted; use tls+tcp:// or set "
                            "allow_insecure_transport = true",
                            u.scheme);
        static const char *const tls_keys[] = {"tls_cert", "tls_key", "tls_ca", NULL};
        for (size_t i = 0; tls_keys[i] != NULL; i++)
            if (ini_key_set(&coordinator_specs[SPEC_COORDINATOR], inst, tls_keys[i]))
                return cfg_fail(e, cfg, SPEC_COORDINATOR, inst, tls_keys[i], PGS_EINVAL,
                                "is set but listen is %s:// (no TLS); remove it or listen on "
                                "tls+tcp://",
                                u.scheme);
    }

    if (strcmp(c->api_listen, "off") == 0) {
        if (c->api_token_file != NULL)
            return cfg_fail(e, cfg, SPEC_COORDINATOR, inst, "api_token_file", PGS_EINVAL,
                            "is set but api_listen = off");
    } else {
        if (ini_url_parse(c->api_listen, api_schemes, &u, &ue) != 0)
            return cfg_fail(e, cfg, SPEC_COORDINATOR, inst, "api_listen", ue.code, "%s", ue.msg);
        if (c->api_token_file == NULL)
            return cfg_fail(e, cfg, SPEC_COORDINATOR, inst, "api_listen", PGS_EINVAL,
                            "the HTTP API needs api_token_file (or set api_listen = off)");
        if (!is_loopback(u.host) && !c->allow_insecure_transport)
            return cfg_fail(e, cfg, SPEC_COORDINATOR, inst, "api_listen", PGS_EINVAL,
                            "the HTTP API is plain HTTP and its token would cross the network "
                            "in clear; listen on a loopback address (127.0.0.1, ::1, localhost) "
                            "or set allow_insecure_transport = true");
    }
    return 0;
}

static int check_storage_section(coordinator_config *cfg, pgs_error *e)
{
    coordinator_storage_config *s = &cfg->storage;
    const ini_section *spec = &coordinator_specs[SPEC_STORAGE];
    if (s->prefix != NULL && !prefix_valid(s->prefix))
        return cfg_fail(e, cfg, SPEC_STORAGE, s, "prefix", PGS_EINVAL,
                        "must be up to 256 characters of A-Z a-z 0-9 . _ - in segments separated "
                        "by '/', without empty, \".\" or \"..\" segments or a leading or trailing "
                        "'/'");
    if (s->type == COORDINATOR_STORAGE_FS) {
        for (size_t i = 0; s3_only_keys[i] != NULL; i++)
            if (ini_key_set(spec, s, s3_only_keys[i]))
                return cfg_fail(e, cfg, SPEC_STORAGE, s, s3_only_keys[i], PGS_EINVAL,
                                "is a key of type = s3, but type = fs");
        return 0;
    }

    if (ini_key_set(spec, s, "path"))
        return cfg_fail(e, cfg, SPEC_STORAGE, s, "path", PGS_EINVAL,
                        "is a key of type = fs, but type = s3");
    if (s->bucket == NULL)
        return cfg_fail(e, cfg, SPEC_STORAGE, s, "type", PGS_EINVAL,
                        "type = s3 needs bucket in [storage]");
    if (!bucket_valid(s->bucket))
        return cfg_fail(e, cfg, SPEC_STORAGE, s, "bucket", PGS_EINVAL,
                        "\"%.64s\" is not a valid bucket name (3-63 of a-z 0-9 . -, starting and "
                        "ending with a letter or digit)",
                        s->bucket);
    if (!region_valid(s->region))
        return cfg_fail(e, cfg, SPEC_STORAGE, s, "region", PGS_EINVAL,
                        "\"%.64s\" is not a region name (a-z 0-9 -, e.g. us-east-1)", s->region);
    if (s->access_key_id != NULL && (strlen(s->access_key_id) > 128 || !is_token(s->access_key_id)))
        return cfg_fail(e, cfg, SPEC_STORAGE, s, "access_key_id", PGS_EINVAL,
                        "must be 1-128 printable characters without spaces");
    if ((s->access_key_id == NULL) != (s->secret_access_key_file == NULL))
        return cfg_fail(e, cfg, SPEC_STORAGE, s,
                        s->access_key_id ? "access_key_id" : "secret_access_key_file", PGS_EINVAL,
                        "access_key_id and secret_access_key_file go together: set both, or "
                        "neither to use AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY from the "
                        "environment");
    if (s->endpoint == NULL) {
        /* AWS itself: the regional endpoint. Marked as a default by the printer. */
        char url[128];
        snprintf(url, sizeof(url), "https://s3.%s.amazonaws.com", s->region);
        if ((s->endpoint = strdup(url)) == NULL)
            return pgs_fail(e, PGS_ENOMEM, "out of memory");
    }
    return 0;
}

/* An environment name as agents announce them: 1-31 of a-z 0-9 _ -. */
static int env_valid(const char *s, size_t n)
{
    if (n == 0 || n > COORDINATOR_ENV_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' ||
              s[i] == '-'))
            return 0;
    return 1;
}

/* Calls item for each comma-separated item of list, spaces around it trimmed. */
static int split_list(const char *list, int (*item)(void *arg, const char *s, size_t n), void *arg)
{
    const char *p = list;
    for (;;) {
        const char *end = strchr(p, ',');
        const char *stop = end ? end : p + strlen(p);
        while (p < stop && *p == ' ')
            p++;
        const char *q = stop;
        while (q > p && q[-1] == ' ')
            q--;
        int rc = item(arg, p, (size_t)(q - p));
        if (rc != 0)
            return rc;
        if (end == NULL)
            return 0;
        p = end + 1;
    }
}

static int add_prod(void *arg, const char *s, size_t n)
{
    coordinator_policy_config *p = arg;
    if (!env_valid(s, n))
        return 1;
    if (p->nprod == COORDINATOR_POLICY_ENVS_MAX)
        return 2;
    memcpy(p->prod[p->nprod], s, n);
    p->prod[p->nprod++][n] = '\0';
    return 0;
}

static int add_pair(void *arg, const char *s, size_t n)
{
    coordinator_policy_config *p = arg;
    const char *colon = memchr(s, ':', n);
    if (colon == NULL)
        return 1;
    size_t a = (size_t)(colon - s), b = n - a - 1;
    if (!env_valid(s, a) || !env_valid(colon + 1, b))
        return 1;
    if (p->npairs == COORDINATOR_POLICY_PAIRS_MAX)
        return 2;
    memcpy(p->pair_from[p->npairs], s, a);
    p->pair_from[p->npairs][a] = '\0';
    memcpy(p->pair_to[p->npairs], colon + 1, b);
    p->pair_to[p->npairs++][b] = '\0';
    return 0;
}

static int check_policy_section(coordinator_config *cfg, pgs_error *e)
{
    coordinator_policy_config *p = &cfg->policy;
    p->nprod = p->npairs = 0;
    int rc = split_list(p->prod_environments, add_prod, p);
    if (rc == 1)
        return cfg_fail(e, cfg, SPEC_POLICY, p, "prod_environments", PGS_EINVAL,
                        "must be a comma-separated list of environment names (1-31 of a-z 0-9 "
                        "_ -)");
    if (rc == 2)
        return cfg_fail(e, cfg, SPEC_POLICY, p, "prod_environments", PGS_ELIMIT,
                        "at most %d environments", COORDINATOR_POLICY_ENVS_MAX);
    if (p->allow_unsanitized != NULL)
        rc = split_list(p->allow_unsanitized, add_pair, p);
    if (rc == 1)
        return cfg_fail(e, cfg, SPEC_POLICY, p, "allow_unsanitized", PGS_EINVAL,
                        "must be a comma-separated list of FROM:TO environment pairs, e.g. "
                        "\"prod:staging\"");
    if (rc == 2)
        return cfg_fail(e, cfg, SPEC_POLICY, p, "allow_unsanitized", PGS_ELIMIT,
                        "at most %d pairs", COORDINATOR_POLICY_PAIRS_MAX);
    return 0;
}

int coordinator_policy_is_prod(const coordinator_policy_config *p, const char *env)
{
    for (size_t i = 0; i < p->nprod; i++)
        if (strcmp(p->prod[i], env) == 0)
            return 1;
    return 0;
}

int coordinator_policy_allows_unsanitized(const coordinator_policy_config *p, const char *from,
                                          const char *to)
{
    for (size_t i = 0; i < p->npairs; i++)
        if (strcmp(p->pair_from[i], from) == 0 && strcmp(p->pair_to[i], to) == 0)
            return 1;
    return 0;
}

static int check_agents(coordinator_config *cfg, pgs_error *e)
{
    for (size_t i = 0; i < cfg->nagents; i++) {
        coordinator_agent_config *a = &cfg->agents[i];
        pgs_error ke = {0};
        if (identity_parse_public(a->public_key, strlen(a->public_key), &a->key, &ke) != 0)
            return cfg_fail(e, cfg, SPEC_AGENT, a, "public_key", ke.code,
                            "%s (expected the line of the agent's identity .pub file: "
                            "\"pgship-identity-public-v1 ed25519 <base64> <name>\")",
                            ke.msg);
        for (size_t j = 0; j < i; j++)
            if (memcmp(cfg->agents[j].key.pk, a->key.pk, KEY_LEN) == 0)
                return cfg_fail(e, cfg, SPEC_AGENT, a, "public_key", PGS_EINVAL,
                                "same identity key as [agent %s] (line %d): each agent needs "
                                "its own",
                                cfg->agents[j].name, cfg->agents[j].src.line);
    }
    return 0;
}

static int coordinator_config_check(coordinator_config *cfg, pgs_error *e)
{
    int rc = check_coordinator_section(cfg, e);
    if (rc == 0)
        rc = check_storage_section(cfg, e);
    if (rc == 0)
        rc = check_policy_section(cfg, e);
    if (rc == 0)
        rc = check_agents(cfg, e);
    return rc;
}

/* Parses text into a zeroed cfg and applies the checks that need no file system. */
static int coordinator_config_build(const char *name, const char *text, size_t len,
                                    coordinator_config *cfg, pgs_error *e)
{
    ini_target t[SPEC_COUNT];
    memset(cfg, 0, sizeof(*cfg));
    if ((cfg->path = strdup(name)) == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    coordinator_targets(cfg, t);
    int rc = ini_parse_buffer(name, text, len, coordinator_specs, SPEC_COUNT, t, e);
    coordinator_take_targets(cfg, t);
    if (rc == 0)
        rc = coordinator_config_check(cfg, e);
    return rc;
}

int coordinator_config_parse(const char *name, const char *text, size_t len,
                             coordinator_config *cfg, pgs_error *e)
{
    int rc = coordinator_config_build(name, text, len, cfg, e);
    if (rc != 0)
        coordinator_config_free(cfg);
    return rc;
}

/*
 * Reads a one-line secret (a token or a key): at most COORDINATOR_SECRET_MAX bytes, one trailing
 * newline allowed, printable characters without spaces. The caller checked the file's mode.
 */
static int read_secret_file(const char *path, size_t min, char **out, pgs_error *e)
{
    char buf[COORDINATOR_SECRET_MAX + 2];
    ssize_t n = -1;
    int rc = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return pgs_fail(e, PGS_EIO, "%s: %s", path, strerror(errno));
    n = fs_read_full(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n < 0) {
        rc = pgs_fail(e, PGS_EIO, "%s: %s", path, strerror(errno));
        n = 0;
        goto out;
    }
    buf[n] = '\0';
    size_t len = (size_t)n;
    if (len > 0 && buf[len - 1] == '\n')
        buf[--len] = '\0';
    if (len > 0 && buf[len - 1] == '\r')
        buf[--len] = '\0';
    if (len > COORDINATOR_SECRET_MAX) {
        rc = pgs_fail(e, PGS_ELIMIT, "%s: longer than %d bytes", path, COORDINATOR_SECRET_MAX);
        goto out;
    }
    if (strlen(buf) != len || !is_token(buf)) {
        rc = pgs_fail(e, PGS_EFORMAT,
                      "%s: must hold one line of printable characters without spaces", path);
        goto out;
    }
    if (len < min) {
        rc = pgs_fail(e, PGS_EINVAL,
                      "%s: shorter than %zu characters (make one with: openssl "
                      "rand -hex 32)",
                      path, min);
        goto out;
    }
    if ((*out = strdup(buf)) == NULL)
        rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
out:
    explicit_bzero(buf, sizeof(buf));
    return rc;
}

static int env_secret(const char *var, char **out, pgs_error *e)
{
    const char *v = getenv(var);
    if (v == NULL || *v == '\0')
        return 0;
    if (strlen(v) > COORDINATOR_SECRET_MAX || !is_token(v))
        return pgs_fail(e, PGS_EINVAL,
                        "environment variable %s must be printable characters without spaces", var);
    if ((*out = strdup(v)) == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    return 0;
}

/* The S3 credentials: the file's when it names them, else the environment's (see the docs). */
static int load_s3_credentials(coordinator_config *cfg, pgs_error *e)
{
    coordinator_storage_config *s = &cfg->storage;
    pgs_error se = {0};
    if (s->access_key_id != NULL) {
        if ((cfg->s3_access_key_id = strdup(s->access_key_id)) == NULL)
            return pgs_fail(e, PGS_ENOMEM, "out of memory");
        if (read_secret_file(s->secret_access_key_file, 1, &cfg->s3_secret_access_key, &se) != 0)
            return cfg_fail(e, cfg, SPEC_STORAGE, s, "secret_access_key_file", se.code, "%s",
                            se.msg);
        return 0;
    }
    int rc = env_secret("AWS_ACCESS_KEY_ID", &cfg->s3_access_key_id, &se);
    if (rc == 0)
        rc = env_secret("AWS_SECRET_ACCESS_KEY", &cfg->s3_secret_access_key, &se);
    if (rc == 0)
        rc = env_secret("AWS_SESSION_TOKEN", &cfg->s3_session_token, &se);
    if (rc != 0)
        return cfg_fail(e, cfg, SPEC_STORAGE, s, "type", se.code, "%s", se.msg);
    if (cfg->s3_access_key_id == NULL || cfg->s3_secret_access_key == NULL)
        return cfg_fail(e, cfg, SPEC_STORAGE, s, "type", PGS_EINVAL,
                        "no S3 credentials: set access_key_id and secret_access_key_file in "
                        "[storage], or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the "
                        "environment (%s is missing)",
                        cfg->s3_access_key_id == NULL ? "AWS_ACCESS_KEY_ID"
                                                      : "AWS_SECRET_ACCESS_KEY");
    cfg->s3_credentials_from_env = 1;
    return 0;
}

int coordinator_config_load(const char *path, coordinator_config *cfg, pgs_error *e)
{
    char *text = NULL;
    size_t len = 0;
    ini_target t[SPEC_COUNT];
    memset(cfg, 0, sizeof(*cfg));
    int rc = ini_read_file(path, &text, &len, e);
    if (rc != 0)
        return rc;
    rc = coordinator_config_build(path, text, len, cfg, e);
    ini_text_free(text, len);
    if (rc != 0)
        goto out;
    coordinator_targets(cfg, t);
    if ((rc = ini_check_files(cfg->path, coordinator_specs, SPEC_COUNT, t, e)) != 0)
        goto out;

    if (cfg->coordinator.api_token_file != NULL) {
        pgs_error se = {0};
        if ((rc = read_secret_file(cfg->coordinator.api_token_file, COORDINATOR_API_TOKEN_MIN,
                                   &cfg->api_token, &se)) != 0) {
            rc = cfg_fail(e, cfg, SPEC_COORDINATOR, &cfg->coordinator, "api_token_file", se.code,
                          "%s", se.msg);
            goto out;
        }
    }
    if (cfg->storage.type == COORDINATOR_STORAGE_S3)
        rc = load_s3_credentials(cfg, e);
out:
    if (rc != 0)
        coordinator_config_free(cfg);
    return rc;
}

static void free_secret(char **s)
{
    if (*s != NULL) {
        explicit_bzero(*s, strlen(*s));
        free(*s);
        *s = NULL;
    }
}

void coordinator_config_free(coordinator_config *cfg)
{
    ini_target t[SPEC_COUNT];
    coordinator_targets(cfg, t);
    ini_free(coordinator_specs, SPEC_COUNT, t);
    free_secret(&cfg->api_token);
    free_secret(&cfg->s3_secret_access_key);
    free_secret(&cfg->s3_session_token);
    free(cfg->s3_access_key_id);
    free(cfg->path);
    memset(cfg, 0, sizeof(*cfg));
}

void coordinator_config_print(FILE *out, const coordinator_config *cfg)
{
    fprintf(out,
            "# pgship-coordinator configuration from %s\n"
            "# \"(default)\" marks values not written in the file; secrets are not printed\n",
            cfg->path);
    ini_print_section(out, &coordinator_specs[SPEC_COORDINATOR], &cfg->coordinator);
    if (cfg->insecure_transport)
        fprintf(out, "# WARNING: agents connect without TLS (allow_insecure_transport = true)\n");
    fprintf(out, "\n");
    ini_print_section(out, &coordinator_specs[SPEC_STORAGE], &cfg->storage);
    if (cfg->storage.type == COORDINATOR_STORAGE_S3 && cfg->s3_access_key_id != NULL) {
        if (cfg->s3_credentials_from_env)
            fprintf(out,
                    "# S3 credentials: from the environment (AWS_ACCESS_KEY_ID = %s, "
                    "AWS_SECRET_ACCESS_KEY%s)\n",
                    cfg->s3_access_key_id, cfg->s3_session_token ? ", AWS_SESSION_TOKEN" : "");
        else
            fprintf(out,
                    "# S3 credentials: from this file (access_key_id, secret_access_key_file)\n");
    }
    fprintf(out, "\n");
    ini_print_section(out, &coordinator_specs[SPEC_POLICY], &cfg->policy);
    for (size_t i = 0; i < cfg->nagents; i++) {
        char id[KEY_ID_HEX_LEN + 1];
        fprintf(out, "\n");
        ini_print_section(out, &coordinator_specs[SPEC_AGENT], &cfg->agents[i]);
        key_id_hex(cfg->agents[i].key.id, id);
        fprintf(out, "# identity key id %s\n", id);
    }
    if (cfg->nagents == 0)
        fprintf(out, "\n# no [agent NAME] sections: no agent can connect\n");
}
