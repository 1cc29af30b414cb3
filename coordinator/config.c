/*
 * The coordinator's configuration (see config.h). The spec tables below are the whole list of
 * keys: docs/configuration.md documents each of them, and a unit test checks that it still does.
 * What one key cannot say alone (which keys TLS needs, which keys belong to which storage type,
 * the insecure-transport rule) is checked in coordinator_config_check, with the line of the key
 * that is wrong.
 *
 * The fleet-operations sections ([scheduler], [schedule NAME], [retention NAME], [token NAME],
 * [webhook NAME]) keep their values as written in the INI layer's string fields and are parsed by
 * the modules that use them (cron_parse, select_parse, retention_policy_set) right here, so that
 * a bad expression stops the daemon at start with the line that holds it rather than at 02:00
 * when the schedule would have run. Their parsed forms live beside the text in the same structs.
 */
#include "coordinator/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <sodium.h>

#include "common/fsutil.h"
#include "common/log.h"
#include "coordinator/webhook.h"

static const char *const listen_schemes[] = {"tls+tcp", "tcp", "ipc", NULL};
static const char *const api_schemes[] = {"http", NULL};
static const char *const endpoint_schemes[] = {"https", "http", NULL};
static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};
_Static_assert(LOG_ERROR == 0 && LOG_WARN == 1 && LOG_INFO == 2 && LOG_DEBUG == 3,
               "log_levels[] is indexed by enum log_level");
static const char *const storage_types[] = {"fs", "s3", NULL};
static const char *const roles[] = {"read", "operate", "admin", NULL};
static const char *const schedule_actions[] = {"backup", "verify", "restore-test", NULL};
_Static_assert(SCHEDULE_BACKUP == 0 && SCHEDULE_VERIFY == 1 && SCHEDULE_RESTORE_TEST == 2,
               "schedule_actions[] is indexed by enum coordinator_schedule_action");
_Static_assert(ROLE_READ == 1 && ROLE_OPERATE == 2 && ROLE_ADMIN == 3,
               "roles[] is indexed by enum coordinator_role - 1");
_Static_assert(COORDINATOR_TOKEN_HASH_LEN == crypto_generichash_BYTES, "token hashes");
_Static_assert(COORDINATOR_WEBHOOK_SECRET_MAX <= WEBHOOK_SECRET_MAX &&
                   COORDINATOR_WEBHOOK_URL_MAX <= WEBHOOK_URL_MAX,
               "what the file accepts, webhook_start must accept");
_Static_assert(COORDINATOR_TOKEN_MAX <= COORDINATOR_SECRET_MAX, "tokens are read as secrets");

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

#define SC(f) offsetof(coordinator_scheduler_config, f)

static const ini_key scheduler_keys[] = {
    {"max_concurrent", INI_UINT, 0, "4", 1, 1000, NULL, SC(max_concurrent)},
    {"max_per_agent", INI_UINT, 0, "1", 1, 64, NULL, SC(max_per_agent)},
    {"catch_up", INI_BOOL, 0, "true", 0, 0, NULL, SC(catch_up)},
    {"overdue_factor", INI_STRING, 0, "2.0", 0, 0, NULL, SC(overdue_factor_text)},
};

#define SD(f) offsetof(coordinator_schedule_config, f)

static const ini_key schedule_keys[] = {
    {"cron", INI_STRING, INI_REQUIRED, NULL, 0, 0, NULL, SD(cron_text)},
    {"select", INI_STRING, INI_REQUIRED, NULL, 0, 0, NULL, SD(select_text)},
    {"jitter", INI_STRING, 0, "0", 0, 0, NULL, SD(jitter_text)},
    {"retention", INI_STRING, 0, NULL, 0, 0, NULL, SD(retention)},
    {"action", INI_ENUM, 0, "backup", 0, 0, schedule_actions, SD(action)},
};

#define RT(f) offsetof(coordinator_retention_config, f)

/* The keep_* keys first: check_retentions hands each one to retention_policy_set by name. */
#define RETENTION_RULE_KEYS 7
static const ini_key retention_keys[] = {
    {"keep_last", INI_STRING, 0, NULL, 0, 0, NULL, RT(keep_last)},
    {"keep_within", INI_STRING, 0, NULL, 0, 0, NULL, RT(keep_within)},
    {"keep_hourly", INI_STRING, 0, NULL, 0, 0, NULL, RT(keep_hourly)},
    {"keep_daily", INI_STRING, 0, NULL, 0, 0, NULL, RT(keep_daily)},
    {"keep_weekly", INI_STRING, 0, NULL, 0, 0, NULL, RT(keep_weekly)},
    {"keep_monthly", INI_STRING, 0, NULL, 0, 0, NULL, RT(keep_monthly)},
    {"keep_yearly", INI_STRING, 0, NULL, 0, 0, NULL, RT(keep_yearly)},
    {"select", INI_STRING, 0, NULL, 0, 0, NULL, RT(select_text)},
};

#define TK(f) offsetof(coordinator_token_config, f)

static const ini_key token_keys[] = {
    {"file", INI_PATH, INI_REQUIRED | INI_PRIVATE, NULL, 0, 0, NULL, TK(file)},
    {"role", INI_ENUM, INI_REQUIRED, NULL, 0, 0, roles, TK(role_choice)},
};

#define WH(f) offsetof(coordinator_webhook_config, f)

/* url is INI_SECRET: chat services put their token in the path, so the printer and the INI
 * layer's messages never show it (the printer adds its scheme, host and port). */
static const ini_key webhook_keys[] = {
    {"url", INI_STRING, INI_REQUIRED | INI_SECRET, NULL, 0, 0, NULL, WH(url)},
    {"secret_file", INI_PATH, INI_PRIVATE, NULL, 0, 0, NULL, WH(secret_file)},
    {"events", INI_STRING, 0, "backup.failed, restore.failed, verify.failed, backup.overdue", 0, 0,
     NULL, WH(events_text)},
    {"timeout", INI_STRING, 0, "10s", 0, 0, NULL, WH(timeout_text)},
    {"max_attempts", INI_UINT, 0, "5", 1, 20, NULL, WH(max_attempts)},
};

enum {
    SPEC_COORDINATOR,
    SPEC_STORAGE,
    SPEC_POLICY,
    SPEC_AGENT,
    SPEC_SCHEDULER,
    SPEC_SCHEDULE,
    SPEC_RETENTION,
    SPEC_TOKEN,
    SPEC_WEBHOOK,
    SPEC_COUNT
};

#define NKEYS(k) (sizeof(k) / sizeof((k)[0]))

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
    [SPEC_SCHEDULER] = {"scheduler", 0, 0, scheduler_keys, NKEYS(scheduler_keys),
                        sizeof(coordinator_scheduler_config), 0, SC(src)},
    [SPEC_SCHEDULE] = {"schedule", 1, 0, schedule_keys, NKEYS(schedule_keys),
                       sizeof(coordinator_schedule_config), SD(name), SD(src)},
    [SPEC_RETENTION] = {"retention", 1, 0, retention_keys, NKEYS(retention_keys),
                        sizeof(coordinator_retention_config), RT(name), RT(src)},
    [SPEC_TOKEN] = {"token", 1, 0, token_keys, NKEYS(token_keys), sizeof(coordinator_token_config),
                    TK(name), TK(src)},
    [SPEC_WEBHOOK] = {"webhook", 1, 0, webhook_keys, NKEYS(webhook_keys),
                      sizeof(coordinator_webhook_config), WH(name), WH(src)},
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
    t[SPEC_SCHEDULER].one = &cfg->scheduler;
    t[SPEC_SCHEDULE].many = cfg->schedules;
    t[SPEC_SCHEDULE].count = cfg->nschedules;
    t[SPEC_RETENTION].many = cfg->retentions;
    t[SPEC_RETENTION].count = cfg->nretentions;
    t[SPEC_TOKEN].many = cfg->tokens;
    t[SPEC_TOKEN].count = cfg->ntokens;
    t[SPEC_WEBHOOK].many = cfg->webhooks;
    t[SPEC_WEBHOOK].count = cfg->nwebhooks;
}

static void coordinator_take_targets(coordinator_config *cfg, const ini_target t[SPEC_COUNT])
{
    cfg->agents = t[SPEC_AGENT].many;
    cfg->nagents = t[SPEC_AGENT].count;
    cfg->schedules = t[SPEC_SCHEDULE].many;
    cfg->nschedules = t[SPEC_SCHEDULE].count;
    cfg->retentions = t[SPEC_RETENTION].many;
    cfg->nretentions = t[SPEC_RETENTION].count;
    cfg->tokens = t[SPEC_TOKEN].many;
    cfg->ntokens = t[SPEC_TOKEN].count;
    cfg->webhooks = t[SPEC_WEBHOOK].many;
    cfg->nwebhooks = t[SPEC_WEBHOOK].count;
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

/* Fails with "file:line: [section NAME]: message" for what concerns a section as a whole, the
 * line being its header's (as the INI layer's "missing required key"). */
static int cfg_fail_section(pgs_error *e, const coordinator_config *cfg, int spec, const void *inst,
                            int code, const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static int cfg_fail_section(pgs_error *e, const coordinator_config *cfg, int spec, const void *inst,
                            int code, const char *fmt, ...)
{
    char msg[sizeof(e->msg)], label[INI_NAME_MAX + 80];
    const ini_section *s = &coordinator_specs[spec];
    const ini_src *src = (const ini_src *)((const char *)inst + s->src_offset);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return ini_fail_at(e, code, cfg->path, src->line, "%s: %s",
                       ini_section_label(s, inst, label, sizeof(label)), msg);
}

/* msg without a leading prefix ("cron: "), which our own message already says in its own way. */
static const char *unprefixed(const char *msg, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncmp(msg, prefix, n) == 0 ? msg + n : msg;
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
        return cfg_fail(e, cfg, SPEC_POLICY, p, "allow_unsanitized", PGS_ELIMIT, "at most %d pairs",
                        COORDINATOR_POLICY_PAIRS_MAX);
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

/* ---- durations and numbers of the fleet-operations sections ---- */

/* Writes s seconds as the file would ("24h", "1h30m", "10s", "0") into buf. */
static void duration_format(int64_t s, char *buf, size_t cap)
{
    int64_t h = s / 3600, m = s / 60 % 60, sec = s % 60;
    int n = 0;
    buf[0] = '\0';
    if (h > 0)
        n += snprintf(buf + n, cap - (size_t)n, "%" PRId64 "h", h);
    if (m > 0 && (size_t)n < cap)
        n += snprintf(buf + n, cap - (size_t)n, "%" PRId64 "m", m);
    if ((sec > 0 || s == 0) && (size_t)n < cap)
        snprintf(buf + n, cap - (size_t)n, s == 0 ? "0" : "%" PRId64 "s", sec);
}

#define DURATION_TEXT_MAX 32  /* characters of a duration */
#define DURATION_DIGITS_MAX 6 /* digits of one of its numbers */

int coordinator_duration_parse(const char *text, int64_t max_s, int64_t *out_s, pgs_error *e)
{
    static const char units[] = "hms";
    static const int64_t unit_s[] = {3600, 60, 1};
    if (text == NULL || *text == '\0')
        return pgs_fail(e, PGS_EINVAL, "empty duration (write e.g. 30s, 5m or 1h30m)");
    if (strnlen(text, DURATION_TEXT_MAX + 1) > DURATION_TEXT_MAX)
        return pgs_fail(e, PGS_EINVAL, "a duration is at most %d characters", DURATION_TEXT_MAX);
    if (strcmp(text, "0") == 0) {
        *out_s = 0;
        return 0;
    }
    int64_t total = 0;
    size_t next_unit = 0; /* units go h, m, s: the first one still allowed */
    for (const char *p = text; *p != '\0';) {
        int64_t v = 0;
        size_t nd = 0;
        for (; p[nd] >= '0' && p[nd] <= '9'; nd++) {
            if (nd == DURATION_DIGITS_MAX)
                return pgs_fail(e, PGS_EINVAL, "\"%s\": a number of more than %d digits", text,
                                DURATION_DIGITS_MAX);
            v = v * 10 + (p[nd] - '0');
        }
        if (nd == 0 && p != text && *p > 0x20 && *p < 0x7f)
            return pgs_fail(e, PGS_EINVAL,
                            "\"%s\": unexpected '%c' after \"%.*s\" (write e.g. "
                            "30s, 5m or 1h30m: whole seconds at most)",
                            text, *p, (int)(p - text), text);
        if (nd == 0)
            return pgs_fail(e, PGS_EINVAL,
                            "\"%s\" is not a duration (write e.g. 30s, 5m or 1h30m, or 0)", text);
        char u = p[nd];
        if (u == '\0')
            return pgs_fail(e, PGS_EINVAL,
                            "\"%s\": a number without a unit (use h, m or s; 0 alone is zero)",
                            text);
        const char *up = strchr(units, u);
        if (up == NULL)
            return pgs_fail(e, PGS_EINVAL, "\"%s\": unknown unit '%c' (use h, m or s)", text,
                            (u > 0x20 && u < 0x7f) ? u : '?');
        size_t ui = (size_t)(up - units);
        if (ui < next_unit)
            return pgs_fail(e, PGS_EINVAL,
                            "\"%s\": the units go in the order h, m, s, each at most once", text);
        next_unit = ui + 1;
        total += v * unit_s[ui]; /* at most 999999 x 3661: no overflow */
        p += nd + 1;
    }
    if (total > max_s) {
        char max[32];
        duration_format(max_s, max, sizeof(max));
        return pgs_fail(e, PGS_EINVAL, "\"%s\" is more than %s", text, max);
    }
    *out_s = total;
    return 0;
}

/* overdue_factor: 1 to 3 digits, optionally '.' and 1 to 6 more, from 1.0 to 100. Parsed by
 * hand in millionths: strtod would follow the locale and accept "1e2", "inf" and hex. */
static int factor_parse(const char *s, double *out)
{
    int64_t ip = 0, frac = 0, scale = 1;
    size_t i = 0;
    for (; s[i] >= '0' && s[i] <= '9'; i++) {
        if (i == 3)
            return -1;
        ip = ip * 10 + (s[i] - '0');
    }
    if (i == 0)
        return -1;
    if (s[i] == '.') {
        size_t nd = 0;
        for (i++; s[i] >= '0' && s[i] <= '9'; i++, nd++) {
            if (nd == 6)
                return -1;
            frac = frac * 10 + (s[i] - '0');
            scale *= 10;
        }
        if (nd == 0)
            return -1;
    }
    if (s[i] != '\0')
        return -1;
    int64_t micro = ip * 1000000 + frac * (1000000 / scale);
    if (micro < 1000000 || micro > 100000000)
        return -1;
    *out = (double)micro / 1e6;
    return 0;
}

/* ---- [scheduler], [retention NAME], [schedule NAME] ---- */

static int check_scheduler(coordinator_config *cfg, pgs_error *e)
{
    coordinator_scheduler_config *s = &cfg->scheduler;
    if (factor_parse(s->overdue_factor_text, &s->overdue_factor) != 0)
        return cfg_fail(e, cfg, SPEC_SCHEDULER, s, "overdue_factor", PGS_EINVAL,
                        "\"%.32s\" is not a number from 1.0 to 100 (e.g. 2, 1.5 or 3.25)",
                        s->overdue_factor_text);
    return 0;
}

static int check_retentions(coordinator_config *cfg, pgs_error *e)
{
    for (size_t i = 0; i < cfg->nretentions; i++) {
        coordinator_retention_config *r = &cfg->retentions[i];
        pgs_error re = {0};
        memset(&r->policy, 0, sizeof(r->policy));
        for (size_t ki = 0; ki < RETENTION_RULE_KEYS; ki++) {
            const ini_key *k = &retention_keys[ki];
            const char *v = *(char *const *)((const char *)r + k->offset);
            char prefix[32];
            if (v == NULL)
                continue;
            if (retention_policy_set(&r->policy, k->name, v, &re) != 0) {
                snprintf(prefix, sizeof(prefix), "%s: ", k->name);
                return cfg_fail(e, cfg, SPEC_RETENTION, r, k->name, re.code, "%s",
                                unprefixed(re.msg, prefix));
            }
        }
        if (retention_policy_check(r->name, &r->policy, &re) != 0) {
            char prefix[INI_NAME_MAX + 16];
            snprintf(prefix, sizeof(prefix), "retention %s: ", r->name);
            return cfg_fail_section(e, cfg, SPEC_RETENTION, r, re.code, "%s",
                                    unprefixed(re.msg, prefix));
        }
        if (r->select_text != NULL && select_parse(r->select_text, &r->select, &re) != 0)
            return cfg_fail(e, cfg, SPEC_RETENTION, r, "select", re.code, "%s",
                            unprefixed(re.msg, "select: "));
    }
    return 0;
}

static int check_schedules(coordinator_config *cfg, pgs_error *e)
{
    for (size_t i = 0; i < cfg->nschedules; i++) {
        coordinator_schedule_config *s = &cfg->schedules[i];
        pgs_error se = {0};
        if (cron_parse(s->cron_text, &s->cron, &se) != 0)
            return cfg_fail(e, cfg, SPEC_SCHEDULE, s, "cron", se.code, "%s",
                            unprefixed(se.msg, "cron: "));
        if (select_parse(s->select_text, &s->select, &se) != 0)
            return cfg_fail(e, cfg, SPEC_SCHEDULE, s, "select", se.code, "%s",
                            unprefixed(se.msg, "select: "));
        if (coordinator_duration_parse(s->jitter_text, COORDINATOR_JITTER_MAX_S, &s->jitter_s,
                                       &se) != 0)
            return cfg_fail(e, cfg, SPEC_SCHEDULE, s, "jitter", se.code, "%s", se.msg);
        if (s->retention == NULL)
            continue;
        if (s->action != SCHEDULE_BACKUP)
            return cfg_fail(e, cfg, SPEC_SCHEDULE, s, "retention", PGS_EINVAL,
                            "only a schedule of backups (action = backup) prunes; this one "
                            "verifies");
        /* NAMEs of one kind that differ only in case are the same NAME (as for duplicates). */
        for (size_t j = 0; j < cfg->nretentions && s->retention_ref == NULL; j++)
            if (strcasecmp(cfg->retentions[j].name, s->retention) == 0)
                s->retention_ref = &cfg->retentions[j];
        if (s->retention_ref == NULL)
            return cfg_fail(e, cfg, SPEC_SCHEDULE, s, "retention", PGS_EINVAL,
                            "there is no [retention %.64s] section in this file", s->retention);
    }
    return 0;
}

/* ---- [token NAME], [webhook NAME] ---- */

static int check_tokens(coordinator_config *cfg, pgs_error *e)
{
    for (size_t i = 0; i < cfg->ntokens; i++) {
        coordinator_token_config *t = &cfg->tokens[i];
        t->role = t->role_choice + 1;
        if (strcmp(cfg->coordinator.api_listen, "off") == 0)
            return cfg_fail_section(e, cfg, SPEC_TOKEN, t, PGS_EINVAL,
                                    "a token for the HTTP API, but api_listen = off");
    }
    return 0;
}

static const struct {
    const char *name;
    unsigned bit;
} webhook_events[] = {
    {WEBHOOK_EVENT_BACKUP_FAILED, COORDINATOR_EVENT_BACKUP_FAILED},
    {WEBHOOK_EVENT_RESTORE_FAILED, COORDINATOR_EVENT_RESTORE_FAILED},
    {WEBHOOK_EVENT_VERIFY_FAILED, COORDINATOR_EVENT_VERIFY_FAILED},
    {WEBHOOK_EVENT_BACKUP_OVERDUE, COORDINATOR_EVENT_BACKUP_OVERDUE},
};

unsigned coordinator_webhook_event_bit(const char *event)
{
    for (size_t i = 0; event != NULL && i < NKEYS(webhook_events); i++)
        if (strcmp(event, webhook_events[i].name) == 0)
            return webhook_events[i].bit;
    return 0;
}

struct events_arg {
    unsigned bits;
    char bad[40]; /* the item that failed, cut */
};

static int add_event(void *arg, const char *s, size_t n)
{
    struct events_arg *a = arg;
    snprintf(a->bad, sizeof(a->bad), "%.*s", (int)(n < 32 ? n : 32), s);
    for (size_t i = 0; i < NKEYS(webhook_events); i++) {
        if (strlen(webhook_events[i].name) != n || memcmp(webhook_events[i].name, s, n) != 0)
            continue;
        if (a->bits & webhook_events[i].bit)
            return 2;
        a->bits |= webhook_events[i].bit;
        return 0;
    }
    return 1;
}

/* The length of url's "scheme://host:port", the part that may be shown. */
static size_t url_origin_len(const char *url)
{
    const char *sep = strstr(url, "://");
    const char *auth = sep ? sep + 3 : url;
    return (size_t)(auth - url) + strcspn(auth, "/?#");
}

/*
 * A webhook URL: http:// or https://, a host as ini_url_parse takes it and an optional port, then
 * any path and query of printable ASCII without spaces, at most COORDINATOR_WEBHOOK_URL_MAX bytes.
 * The messages never quote past the host: the rest may be a token.
 */
static int webhook_url_check(const char *url, pgs_error *e)
{
    static const char *const schemes[] = {"https", "http", NULL};
    size_t n = strlen(url);
    if (n > COORDINATOR_WEBHOOK_URL_MAX)
        return pgs_fail(e, PGS_ELIMIT, "longer than %d bytes", COORDINATOR_WEBHOOK_URL_MAX);
    for (size_t i = 0; i < n; i++)
        if (url[i] < 0x21 || url[i] > 0x7e)
            return pgs_fail(e, PGS_EINVAL,
                            "must be printable ASCII without spaces (percent-encode the rest)");
    const char *sep = strstr(url, "://");
    const char *auth = sep ? sep + 3 : url;
    size_t origin = url_origin_len(url);
    if (memchr(auth, '@', origin - (size_t)(auth - url)) != NULL)
        return pgs_fail(e, PGS_EINVAL,
                        "user names and passwords do not belong in the URL (put a token in its "
                        "path, or sign requests with secret_file)");
    char head[320];
    if (origin >= sizeof(head))
        return pgs_fail(e, PGS_EINVAL, "host name is too long");
    memcpy(head, url, origin);
    head[origin] = '\0';
    ini_url u;
    return ini_url_parse(head, schemes, &u, e);
}

static int check_webhooks(coordinator_config *cfg, pgs_error *e)
{
    for (size_t i = 0; i < cfg->nwebhooks; i++) {
        coordinator_webhook_config *w = &cfg->webhooks[i];
        pgs_error we = {0};
        if (webhook_url_check(w->url, &we) != 0)
            return cfg_fail(e, cfg, SPEC_WEBHOOK, w, "url", we.code, "%s", we.msg);
        struct events_arg ea = {0};
        int rc = split_list(w->events_text, add_event, &ea);
        if (rc == 1)
            return cfg_fail(e, cfg, SPEC_WEBHOOK, w, "events", PGS_EINVAL,
                            "\"%s\" is not an event (use a comma-separated list of "
                            "backup.failed, restore.failed, verify.failed, backup.overdue)",
                            ea.bad);
        if (rc == 2)
            return cfg_fail(e, cfg, SPEC_WEBHOOK, w, "events", PGS_EINVAL, "%s is listed twice",
                            ea.bad);
        w->events = ea.bits;
        int64_t t = 0;
        if (coordinator_duration_parse(w->timeout_text, COORDINATOR_WEBHOOK_TIMEOUT_MAX_S, &t,
                                       &we) != 0)
            return cfg_fail(e, cfg, SPEC_WEBHOOK, w, "timeout", we.code, "%s", we.msg);
        if (t < COORDINATOR_WEBHOOK_TIMEOUT_MIN_S)
            return cfg_fail(e, cfg, SPEC_WEBHOOK, w, "timeout", PGS_EINVAL, "must be at least %ds",
                            COORDINATOR_WEBHOOK_TIMEOUT_MIN_S);
        w->timeout_ms = (int)(t * 1000);
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
    if (rc == 0)
        rc = check_scheduler(cfg, e);
    if (rc == 0)
        rc = check_retentions(cfg, e);
    if (rc == 0)
        rc = check_schedules(cfg, e);
    if (rc == 0)
        rc = check_tokens(cfg, e);
    if (rc == 0)
        rc = check_webhooks(cfg, e);
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
 * Reads a one-line secret (a token or a key): min to max (at most COORDINATOR_SECRET_MAX)
 * printable characters without spaces, one trailing newline allowed. The caller checked the
 * file's mode.
 */
static int read_secret_file(const char *path, size_t min, size_t max, char **out, pgs_error *e)
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
    if (len > max) {
        rc = pgs_fail(e, PGS_EINVAL, "%s: longer than %zu characters", path, max);
        goto out;
    }
    if ((*out = strdup(buf)) == NULL)
        rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
out:
    explicit_bzero(buf, sizeof(buf));
    return rc;
}

/*
 * Reads a binary secret (a webhook's HMAC key): the file's bytes less one trailing newline (LF or
 * CRLF), min to max bytes. The caller checked the file's mode.
 */
static int read_secret_bytes(const char *path, size_t min, size_t max, uint8_t **out,
                             size_t *out_len, pgs_error *e)
{
    uint8_t buf[COORDINATOR_WEBHOOK_SECRET_MAX + 3];
    ssize_t n = -1;
    int rc = 0;
    if (max > sizeof(buf) - 3)
        return pgs_fail(e, PGS_EINVAL, "internal error: secret limit");
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return pgs_fail(e, PGS_EIO, "%s: %s", path, strerror(errno));
    /* Up to max + 2 bytes may still be a secret with its CRLF; one more is too long for sure. */
    n = fs_read_full(fd, buf, max + 3);
    close(fd);
    if (n < 0) {
        rc = pgs_fail(e, PGS_EIO, "%s: %s", path, strerror(errno));
        n = 0;
        goto out;
    }
    size_t len = (size_t)n;
    if (len > 0 && buf[len - 1] == '\n') {
        len--;
        if (len > 0 && buf[len - 1] == '\r')
            len--;
    }
    if (len > max) {
        rc = pgs_fail(e, PGS_EINVAL, "%s: longer than %zu bytes", path, max);
        goto out;
    }
    if (len < min) {
        rc =
            pgs_fail(e, PGS_EINVAL,
                     "%s: shorter than %zu bytes (make one with: openssl rand -hex 32)", path, min);
        goto out;
    }
    if ((*out = malloc(len)) == NULL) {
        rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
        goto out;
    }
    memcpy(*out, buf, len);
    *out_len = len;
out:
    explicit_bzero(buf, sizeof(buf));
    return rc;
}

static void token_hash(const char *token, uint8_t out[COORDINATOR_TOKEN_HASH_LEN])
{
    crypto_generichash(out, COORDINATOR_TOKEN_HASH_LEN, (const unsigned char *)token, strlen(token),
                       NULL, 0);
}

/* Reads every [token NAME]'s file, and refuses two tokens (api_token_file's included) that are
 * the same: a token must name one role and one holder. */
static int load_tokens(coordinator_config *cfg, pgs_error *e)
{
    if (sodium_init() < 0)
        return pgs_fail(e, PGS_EIO, "libsodium cannot be initialized");
    if (cfg->api_token != NULL)
        token_hash(cfg->api_token, cfg->api_token_hash);
    for (size_t i = 0; i < cfg->ntokens; i++) {
        coordinator_token_config *t = &cfg->tokens[i];
        pgs_error se = {0};
        if (read_secret_file(t->file, COORDINATOR_TOKEN_MIN, COORDINATOR_TOKEN_MAX, &t->token,
                             &se) != 0)
            return cfg_fail(e, cfg, SPEC_TOKEN, t, "file", se.code, "%s", se.msg);
        token_hash(t->token, t->hash);
        if (cfg->api_token != NULL &&
            sodium_memcmp(t->hash, cfg->api_token_hash, COORDINATOR_TOKEN_HASH_LEN) == 0)
            return cfg_fail(e, cfg, SPEC_TOKEN, t, "file", PGS_EINVAL,
                            "%s holds the same token as [coordinator] api_token_file (line %d): "
                            "each token needs its own",
                            t->file,
                            ini_key_line(&coordinator_specs[SPEC_COORDINATOR], &cfg->coordinator,
                                         "api_token_file"));
        for (size_t j = 0; j < i; j++)
            if (sodium_memcmp(t->hash, cfg->tokens[j].hash, COORDINATOR_TOKEN_HASH_LEN) == 0)
                return cfg_fail(e, cfg, SPEC_TOKEN, t, "file", PGS_EINVAL,
                                "%s holds the same token as [token %s] (line %d): each token "
                                "needs its own",
                                t->file, cfg->tokens[j].name, cfg->tokens[j].src.line);
    }
    return 0;
}

static int load_webhook_secrets(coordinator_config *cfg, pgs_error *e)
{
    for (size_t i = 0; i < cfg->nwebhooks; i++) {
        coordinator_webhook_config *w = &cfg->webhooks[i];
        pgs_error se = {0};
        if (w->secret_file != NULL &&
            read_secret_bytes(w->secret_file, COORDINATOR_WEBHOOK_SECRET_MIN,
                              COORDINATOR_WEBHOOK_SECRET_MAX, &w->secret, &w->secret_len, &se) != 0)
            return cfg_fail(e, cfg, SPEC_WEBHOOK, w, "secret_file", se.code, "%s", se.msg);
    }
    return 0;
}

const coordinator_token_config *coordinator_config_token(const coordinator_config *cfg,
                                                         const char *presented)
{
    /* A name no [token NAME] can have: parentheses are not allowed in NAMEs. */
    static const coordinator_token_config api_token_entry = {.name = "(api_token_file)",
                                                             .role = ROLE_ADMIN};
    uint8_t h[COORDINATOR_TOKEN_HASH_LEN];
    const coordinator_token_config *found = NULL;
    if (cfg == NULL || presented == NULL)
        return NULL;
    size_t n = strnlen(presented, COORDINATOR_SECRET_MAX + 1);
    if (n == 0 || n > COORDINATOR_SECRET_MAX || sodium_init() < 0)
        return NULL;
    crypto_generichash(h, sizeof(h), (const unsigned char *)presented, n, NULL, 0);
    /* Every token is compared, so the time taken does not say which one matched either. */
    if (cfg->api_token != NULL && sodium_memcmp(h, cfg->api_token_hash, sizeof(h)) == 0)
        found = &api_token_entry;
    for (size_t i = 0; i < cfg->ntokens; i++)
        if (cfg->tokens[i].token != NULL && sodium_memcmp(h, cfg->tokens[i].hash, sizeof(h)) == 0)
            found = &cfg->tokens[i];
    sodium_memzero(h, sizeof(h));
    return found;
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
        if (read_secret_file(s->secret_access_key_file, 1, COORDINATOR_SECRET_MAX,
                             &cfg->s3_secret_access_key, &se) != 0)
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
                                   COORDINATOR_SECRET_MAX, &cfg->api_token, &se)) != 0) {
            rc = cfg_fail(e, cfg, SPEC_COORDINATOR, &cfg->coordinator, "api_token_file", se.code,
                          "%s", se.msg);
            goto out;
        }
    }
    if ((rc = load_tokens(cfg, e)) != 0 || (rc = load_webhook_secrets(cfg, e)) != 0)
        goto out;
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
    /* What the checks and the loader made beside the INI layer's fields, before ini_free
     * releases the arrays that hold them. */
    for (size_t i = 0; i < cfg->nschedules; i++) {
        cron_free(cfg->schedules[i].cron);
        select_free(cfg->schedules[i].select);
    }
    for (size_t i = 0; i < cfg->nretentions; i++)
        select_free(cfg->retentions[i].select);
    for (size_t i = 0; i < cfg->ntokens; i++) {
        free_secret(&cfg->tokens[i].token);
        explicit_bzero(cfg->tokens[i].hash, sizeof(cfg->tokens[i].hash));
    }
    for (size_t i = 0; i < cfg->nwebhooks; i++) {
        coordinator_webhook_config *w = &cfg->webhooks[i];
        if (w->secret != NULL)
            explicit_bzero(w->secret, w->secret_len);
        free(w->secret);
    }
    explicit_bzero(cfg->api_token_hash, sizeof(cfg->api_token_hash));
    coordinator_targets(cfg, t);
    ini_free(coordinator_specs, SPEC_COUNT, t);
    free_secret(&cfg->api_token);
    free_secret(&cfg->s3_secret_access_key);
    free_secret(&cfg->s3_session_token);
    free(cfg->s3_access_key_id);
    free(cfg->path);
    memset(cfg, 0, sizeof(*cfg));
}

/* 1 when a [schedule NAME] names r. */
static int retention_used(const coordinator_config *cfg, const coordinator_retention_config *r)
{
    for (size_t i = 0; i < cfg->nschedules; i++)
        if (cfg->schedules[i].retention_ref == r)
            return 1;
    return 0;
}

/* The sections of issue 5, each followed by what its values were parsed into. */
static void print_fleet_operations(FILE *out, const coordinator_config *cfg)
{
    const coordinator_section_config *c = &cfg->coordinator;
    fprintf(out, "\n");
    ini_print_section(out, &coordinator_specs[SPEC_SCHEDULER], &cfg->scheduler);
    for (size_t i = 0; i < cfg->nretentions; i++) {
        const coordinator_retention_config *r = &cfg->retentions[i];
        char text[320];
        fprintf(out, "\n");
        ini_print_section(out, &coordinator_specs[SPEC_RETENTION], r);
        retention_policy_text(&r->policy, text, sizeof(text));
        fprintf(out, "# the policy: %s\n", text);
        if (r->select != NULL)
            fprintf(out, "# applies to the databases it selects: %s\n", select_text(r->select));
        else if (!retention_used(cfg, r))
            fprintf(out, "# no schedule names it and it has no select: it applies to nothing\n");
    }
    for (size_t i = 0; i < cfg->nschedules; i++) {
        const coordinator_schedule_config *s = &cfg->schedules[i];
        fprintf(out, "\n");
        ini_print_section(out, &coordinator_specs[SPEC_SCHEDULE], s);
        if (s->cron != NULL && s->select != NULL)
            fprintf(out, "# runs at \"%s\" (time zone %s) for the databases %s\n",
                    cron_text(s->cron), cron_zone(s->cron), select_text(s->select));
    }
    if (cfg->nschedules == 0)
        fprintf(out, "\n# no [schedule NAME] sections: backups run only when asked for\n");
    for (size_t i = 0; i < cfg->ntokens; i++) {
        fprintf(out, "\n");
        ini_print_section(out, &coordinator_specs[SPEC_TOKEN], &cfg->tokens[i]);
    }
    if (c->api_token_file != NULL)
        fprintf(out, "\n# api_token_file's token has role admin%s\n",
                cfg->ntokens ? ", beside the [token NAME] sections" : "");
    for (size_t i = 0; i < cfg->nwebhooks; i++) {
        const coordinator_webhook_config *w = &cfg->webhooks[i];
        fprintf(out, "\n");
        ini_print_section(out, &coordinator_specs[SPEC_WEBHOOK], w);
        fprintf(out, "# url: %.*s (its path and query are not shown: they may hold a token)\n",
                (int)url_origin_len(w->url), w->url);
    }
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
    print_fleet_operations(out, cfg);
}
