/*
 * The agent's configuration (see config.h). The spec tables below are the whole list of keys:
 * docs/configuration.md documents each of them, and a unit test checks that it still does. Rules
 * that involve more than one key (TLS needs a CA, client certificate and key go together, every
 * database needs recipients) are checked in agent_config_check with the line of the key at fault.
 */
#include "agent/config.h"

#include <arpa/inet.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "proto/envelope.h"

static const char *const coordinator_schemes[] = {"tls+tcp", "tcp", "ipc", NULL};
static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};
_Static_assert(LOG_ERROR == 0 && LOG_WARN == 1 && LOG_INFO == 2 && LOG_DEBUG == 3,
               "log_levels[] is indexed by enum log_level");
_Static_assert(INI_LIST_MAX <= ENVELOPE_RECIPIENTS_MAX,
               "a recipients list must fit in an envelope");

#define AS(f) offsetof(agent_section_config, f)
#define DB(f) offsetof(agent_database_config, f)

static const ini_key agent_keys[] = {
    {"name", INI_STRING, INI_REQUIRED, NULL, 0, 0, NULL, AS(name)},
    {"coordinator", INI_URL, INI_REQUIRED, NULL, 0, 0, coordinator_schemes, AS(coordinator)},
    {"tls_ca", INI_PATH, INI_FILE, NULL, 0, 0, NULL, AS(tls_ca)},
    {"tls_server_name", INI_STRING, 0, NULL, 0, 0, NULL, AS(tls_server_name)},
    {"tls_cert", INI_PATH, INI_FILE, NULL, 0, 0, NULL, AS(tls_cert)},
    {"tls_key", INI_PATH, INI_PRIVATE, NULL, 0, 0, NULL, AS(tls_key)},
    {"identity_key", INI_PATH, INI_REQUIRED | INI_PRIVATE, NULL, 0, 0, NULL, AS(identity_key)},
    {"spool_dir", INI_PATH, 0, "/var/lib/pgship/spool", 0, 0, NULL, AS(spool_dir)},
    {"recipients", INI_PATHS, INI_FILE, NULL, 0, 0, NULL, AS(recipients)},
    {"restore_keys", INI_PATHS, INI_PRIVATE, NULL, 0, 0, NULL, AS(restore_keys)},
    {"log_level", INI_ENUM, 0, "info", 0, 0, log_levels, AS(log_level)},
    {"allow_insecure_transport", INI_BOOL, 0, "false", 0, 0, NULL, AS(allow_insecure_transport)},
};

static const ini_key database_keys[] = {
    {"conninfo", INI_STRING, INI_REQUIRED | INI_SECRET, NULL, 0, 0, NULL, DB(conninfo)},
    {"environment", INI_STRING, INI_REQUIRED, NULL, 0, 0, NULL, DB(environment)},
    {"recipients", INI_PATHS, INI_FILE, NULL, 0, 0, NULL, DB(recipients)},
};

enum { SPEC_AGENT, SPEC_DATABASE, SPEC_COUNT };

static const ini_section agent_specs[SPEC_COUNT] = {
    [SPEC_AGENT] = {"agent", 0, 1, agent_keys, sizeof(agent_keys) / sizeof(agent_keys[0]),
                    sizeof(agent_section_config), 0, AS(src)},
    [SPEC_DATABASE] = {"database", 1, 0, database_keys,
                       sizeof(database_keys) / sizeof(database_keys[0]),
                       sizeof(agent_database_config), DB(name), DB(src)},
};

const ini_section *agent_config_spec(size_t *nspecs)
{
    *nspecs = SPEC_COUNT;
    return agent_specs;
}

static void agent_targets(agent_config *cfg, ini_target t[SPEC_COUNT])
{
    memset(t, 0, sizeof(ini_target) * SPEC_COUNT);
    t[SPEC_AGENT].one = &cfg->agent;
    t[SPEC_DATABASE].many = cfg->databases;
    t[SPEC_DATABASE].count = cfg->ndatabases;
}

/* Fails with "file:line: [section] key: message", the line being the key's (or its section's). */
static int cfg_fail(pgs_error *e, const agent_config *cfg, int spec, const void *inst,
                    const char *key, int code, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

static int cfg_fail(pgs_error *e, const agent_config *cfg, int spec, const void *inst,
                    const char *key, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = ini_vfail_key(e, code, cfg->path, &agent_specs[spec], inst, key, fmt, ap);
    va_end(ap);
    return rc;
}

static int environment_valid(const char *env)
{
    size_t n = strlen(env);
    if (n == 0 || n > AGENT_ENVIRONMENT_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((env[i] >= 'a' && env[i] <= 'z') || (env[i] >= '0' && env[i] <= '9') ||
              env[i] == '_' || env[i] == '-'))
            return 0;
    return 1;
}

/* A TLS server name: a DNS name, since mbedTLS (under nng) matches only the DNS names of a
 * certificate, never its IP addresses. */
static int server_name_valid(const char *s)
{
    size_t n = strlen(s);
    unsigned char addr[sizeof(struct in6_addr)];
    if (n == 0 || n > 253 || inet_pton(AF_INET, s, addr) == 1 || inet_pton(AF_INET6, s, addr) == 1)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '-'))
            return 0;
    return 1;
}

static int check_agent_section(agent_config *cfg, pgs_error *e)
{
    agent_section_config *a = &cfg->agent;
    ini_url u;
    pgs_error ue = {0};
    if (!ini_name_valid(a->name))
        return cfg_fail(e, cfg, SPEC_AGENT, a, "name", PGS_EINVAL,
                        "\"%.64s\" is not a valid name: use 1-%d of A-Z a-z 0-9 . _ - (not "
                        "starting with . or -)",
                        a->name, INI_NAME_MAX);
    if (ini_url_parse(a->coordinator, coordinator_schemes, &u, &ue) != 0)
        return cfg_fail(e, cfg, SPEC_AGENT, a, "coordinator", ue.code, "%s", ue.msg);
    cfg->insecure_transport = strcmp(u.scheme, "tls+tcp") != 0;
    if (!cfg->insecure_transport) {
        if (a->tls_ca == NULL)
            return cfg_fail(e, cfg, SPEC_AGENT, a, "coordinator", PGS_EINVAL,
                            "tls+tcp:// needs tls_ca in [agent]: the CA certificate that signed "
                            "the coordinator's certificate");
        if (a->tls_server_name == NULL && (a->tls_server_name = strdup(u.host)) == NULL)
            return pgs_fail(e, PGS_ENOMEM, "out of memory");
        if (!server_name_valid(a->tls_server_name))
            return cfg_fail(e, cfg, SPEC_AGENT, a, "tls_server_name", PGS_EINVAL,
                            "\"%.64s\" is not a DNS name; the coordinator's certificate is "
                            "checked by DNS name only, so set tls_server_name to the name it "
                            "carries",
                            a->tls_server_name);
    } else {
        if (!a->allow_insecure_transport)
            return cfg_fail(e, cfg, SPEC_AGENT, a, "coordinator", PGS_EINVAL,
                            "%s:// is not encrypted; use tls+tcp:// or set "
                            "allow_insecure_transport = true",
                            u.scheme);
        static const char *const tls_keys[] = {"tls_ca", "tls_server_name", "tls_cert", "tls_key",
                                               NULL};
        for (size_t i = 0; tls_keys[i] != NULL; i++)
            if (ini_key_set(&agent_specs[SPEC_AGENT], a, tls_keys[i]))
                return cfg_fail(e, cfg, SPEC_AGENT, a, tls_keys[i], PGS_EINVAL,
                                "is set but coordinator is %s:// (no TLS); remove it or use "
                                "tls+tcp://",
                                u.scheme);
    }
    if ((a->tls_cert == NULL) != (a->tls_key == NULL))
        return cfg_fail(e, cfg, SPEC_AGENT, a, a->tls_cert ? "tls_cert" : "tls_key", PGS_EINVAL,
                        "tls_cert and tls_key go together: set both or neither");
    return 0;
}

static int check_databases(agent_config *cfg, pgs_error *e)
{
    for (size_t i = 0; i < cfg->ndatabases; i++) {
        agent_database_config *d = &cfg->databases[i];
        if (!environment_valid(d->environment))
            return cfg_fail(e, cfg, SPEC_DATABASE, d, "environment", PGS_EINVAL,
                            "\"%.64s\" is not valid: use 1-%d of a-z 0-9 _ - (e.g. prod, "
                            "staging, dev)",
                            d->environment, AGENT_ENVIRONMENT_MAX);
        if (d->recipients.n == 0 && cfg->agent.recipients.n == 0)
            return cfg_fail(e, cfg, SPEC_DATABASE, d, "recipients", PGS_EINVAL,
                            "no recipients: set recipients in [agent] or in this section, or "
                            "backups could be opened by nobody");
        /* libpq's own message is not shown: it may quote part of a password. */
        char *err = NULL;
        PQconninfoOption *opts = PQconninfoParse(d->conninfo, &err);
        PQconninfoFree(opts);
        if (opts == NULL) {
            int nomem = err == NULL;
            PQfreemem(err);
            return cfg_fail(e, cfg, SPEC_DATABASE, d, "conninfo", nomem ? PGS_ENOMEM : PGS_EINVAL,
                            "%s",
                            nomem ? "out of memory"
                                  : "is not a valid libpq connection string (key=value "
                                    "pairs or a postgresql:// URI); libpq's message is "
                                    "not shown because it may quote a password");
        }
    }
    return 0;
}

/* Parses text into a zeroed cfg and applies the checks that need no file system. */
static int agent_config_build(const char *name, const char *text, size_t len, agent_config *cfg,
                              pgs_error *e)
{
    ini_target t[SPEC_COUNT];
    memset(cfg, 0, sizeof(*cfg));
    if ((cfg->path = strdup(name)) == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    agent_targets(cfg, t);
    int rc = ini_parse_buffer(name, text, len, agent_specs, SPEC_COUNT, t, e);
    cfg->databases = t[SPEC_DATABASE].many;
    cfg->ndatabases = t[SPEC_DATABASE].count;
    if (rc == 0)
        rc = check_agent_section(cfg, e);
    if (rc == 0)
        rc = check_databases(cfg, e);
    return rc;
}

int agent_config_parse(const char *name, const char *text, size_t len, agent_config *cfg,
                       pgs_error *e)
{
    int rc = agent_config_build(name, text, len, cfg, e);
    if (rc != 0)
        agent_config_free(cfg);
    return rc;
}

/* Loads every key of a recipients list; the same key twice is refused (an envelope names each
 * recipient once). */
static int load_recipients(agent_config *cfg, int spec, const void *inst, const ini_list *list,
                           pgs_pubkey **out, size_t *nout, pgs_error *e)
{
    pgs_pubkey *keys = calloc(list->n ? list->n : 1, sizeof(*keys));
    if (keys == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    for (size_t i = 0; i < list->n; i++) {
        pgs_error ke = {0};
        if (key_load_public(list->items[i], &keys[i], &ke) != 0) {
            free(keys);
            return cfg_fail(e, cfg, spec, inst, "recipients", ke.code, "%s", ke.msg);
        }
        for (size_t j = 0; j < i; j++) {
            if (memcmp(keys[j].pk, keys[i].pk, KEY_LEN) == 0) {
                char id[KEY_ID_HEX_LEN + 1];
                key_id_hex(keys[i].id, id);
                free(keys);
                return cfg_fail(e, cfg, spec, inst, "recipients", PGS_EINVAL,
                                "%s and %s hold the same key (id %s)", list->items[j],
                                list->items[i], id);
            }
        }
    }
    *out = keys;
    *nout = list->n;
    return 0;
}

/* Loads the secret keys of [agent] restore_keys; the same key twice is refused. They stay in
 * memory for the daemon's life: a restore job must not depend on a file it could not read at
 * start, and agent_config_free wipes them. */
static int load_restore_keys(agent_config *cfg, pgs_error *e)
{
    const ini_list *list = &cfg->agent.restore_keys;
    if (list->n == 0)
        return 0;
    if ((cfg->restore_keys = calloc(list->n, sizeof(pgs_seckey))) == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    cfg->nrestore_keys = list->n; /* all of them wiped by agent_config_free, loaded or not */
    for (size_t i = 0; i < list->n; i++) {
        pgs_error ke = {0};
        if (key_load_secret(list->items[i], &cfg->restore_keys[i], &ke) != 0)
            return cfg_fail(e, cfg, SPEC_AGENT, &cfg->agent, "restore_keys", ke.code, "%s", ke.msg);
        for (size_t j = 0; j < i; j++) {
            if (memcmp(cfg->restore_keys[j].pk, cfg->restore_keys[i].pk, KEY_LEN) == 0) {
                char id[KEY_ID_HEX_LEN + 1];
                key_id_hex(cfg->restore_keys[i].id, id);
                return cfg_fail(e, cfg, SPEC_AGENT, &cfg->agent, "restore_keys", PGS_EINVAL,
                                "%s and %s hold the same key (id %s)", list->items[j],
                                list->items[i], id);
            }
        }
    }
    return 0;
}

int agent_config_load(const char *path, agent_config *cfg, pgs_error *e)
{
    char *text = NULL;
    size_t len = 0;
    ini_target t[SPEC_COUNT];
    pgs_pubkey *agent_keys_loaded = NULL;
    size_t nagent_keys = 0;
    memset(cfg, 0, sizeof(*cfg));
    int rc = ini_read_file(path, &text, &len, e);
    if (rc != 0)
        return rc;
    rc = agent_config_build(path, text, len, cfg, e);
    ini_text_free(text, len);
    if (rc != 0)
        goto out;
    agent_targets(cfg, t);
    if ((rc = ini_check_files(cfg->path, agent_specs, SPEC_COUNT, t, e)) != 0)
        goto out;

    /* The identity key is checked here and dropped: the connection code loads it when it signs,
     * so the secret does not sit in a struct that is passed around and printed. */
    pgs_identity_sec sec;
    pgs_error ke = {0};
    rc = identity_load_secret(cfg->agent.identity_key, &sec, &ke);
    if (rc == 0) {
        memcpy(cfg->identity.pk, sec.pk, KEY_LEN);
        memcpy(cfg->identity.id, sec.id, KEY_ID_LEN);
        memcpy(cfg->identity.name, sec.name, sizeof(cfg->identity.name));
    }
    identity_secret_wipe(&sec);
    if (rc != 0) {
        rc = cfg_fail(e, cfg, SPEC_AGENT, &cfg->agent, "identity_key", ke.code, "%s", ke.msg);
        goto out;
    }

    if ((rc = load_restore_keys(cfg, e)) != 0)
        goto out;
    if ((rc = load_recipients(cfg, SPEC_AGENT, &cfg->agent, &cfg->agent.recipients,
                              &agent_keys_loaded, &nagent_keys, e)) != 0)
        goto out;
    for (size_t i = 0; i < cfg->ndatabases; i++) {
        agent_database_config *d = &cfg->databases[i];
        if (d->recipients.n > 0) {
            rc = load_recipients(cfg, SPEC_DATABASE, d, &d->recipients, &d->keys, &d->nkeys, e);
            if (rc != 0)
                goto out;
            continue;
        }
        if ((d->keys = calloc(nagent_keys, sizeof(pgs_pubkey))) == NULL) {
            rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
            goto out;
        }
        memcpy(d->keys, agent_keys_loaded, nagent_keys * sizeof(pgs_pubkey));
        d->nkeys = nagent_keys;
    }
out:
    free(agent_keys_loaded);
    if (rc != 0)
        agent_config_free(cfg);
    return rc;
}

void agent_config_free(agent_config *cfg)
{
    ini_target t[SPEC_COUNT];
    for (size_t i = 0; i < cfg->ndatabases; i++) {
        free(cfg->databases[i].keys);
        cfg->databases[i].keys = NULL;
        cfg->databases[i].nkeys = 0;
    }
    for (size_t i = 0; i < cfg->nrestore_keys; i++)
        key_secret_wipe(&cfg->restore_keys[i]);
    free(cfg->restore_keys);
    cfg->restore_keys = NULL;
    cfg->nrestore_keys = 0;
    agent_targets(cfg, t);
    ini_free(agent_specs, SPEC_COUNT, t);
    free(cfg->path);
    memset(cfg, 0, sizeof(*cfg));
}

static void print_keys(FILE *out, const char *what, const pgs_pubkey *keys, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char id[KEY_ID_HEX_LEN + 1];
        key_id_hex(keys[i].id, id);
        fprintf(out, "# %s %s (%s)\n", what, id, keys[i].name);
    }
}

void agent_config_print(FILE *out, const agent_config *cfg)
{
    fprintf(out,
            "# pgship-agent configuration from %s\n"
            "# \"(default)\" marks values not written in the file; conninfo is not printed\n",
            cfg->path);
    ini_print_section(out, &agent_specs[SPEC_AGENT], &cfg->agent);
    if (cfg->insecure_transport)
        fprintf(out, "# WARNING: connects to the coordinator without TLS "
                     "(allow_insecure_transport = true)\n");
    char id[KEY_ID_HEX_LEN + 1];
    key_id_hex(cfg->identity.id, id);
    fprintf(out, "# identity key id %s (%s)\n", id, cfg->identity.name);
    for (size_t i = 0; i < cfg->nrestore_keys; i++) {
        key_id_hex(cfg->restore_keys[i].id, id);
        fprintf(out, "# restore key %s (%s)\n", id, cfg->restore_keys[i].name);
    }
    if (cfg->nrestore_keys == 0)
        fprintf(out, "# no restore_keys: this agent cannot restore\n");
    for (size_t i = 0; i < cfg->ndatabases; i++) {
        const agent_database_config *d = &cfg->databases[i];
        fprintf(out, "\n");
        ini_print_section(out, &agent_specs[SPEC_DATABASE], d);
        print_keys(out, d->recipients.n ? "recipient" : "recipient (from [agent])", d->keys,
                   d->nkeys);
    }
    if (cfg->ndatabases == 0)
        fprintf(out, "\n# no [database NAME] sections: this agent has nothing to back up\n");
}
