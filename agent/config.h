/*
 * The agent's configuration file (docs/configuration.md has every key, its default and meaning;
 * deploy/examples/agent.conf is a complete example):
 *
 *   [agent]           its name, the coordinator's URL, TLS, identity key, spool, recipients,
 *                     the secret keys it may restore with
 *   [database NAME]   one per database it backs up or restores into: conninfo, environment,
 *                     optionally its own recipients
 *
 * Loading validates what the agent would otherwise find out mid-job: the coordinator URL and
 * transport rule (tcp:// or ipc:// only with allow_insecure_transport = true), that the TLS files
 * can be read and the secret ones are private, that the identity key and every recipient key
 * parse. Recipient keys are loaded here, so a backup never starts with a key it cannot use; so are
 * the restore keys (secret: kept in memory for the daemon's life, wiped when the config is freed).
 * conninfo may hold a password: nothing here prints or logs it.
 */
#ifndef PGSHIP_AGENT_CONFIG_H
#define PGSHIP_AGENT_CONFIG_H

#include <stddef.h>
#include <stdio.h>

#include "common/error.h"
#include "common/ini.h"
#include "common/keys.h"

/* The wire protocol carries environments of at most 31 characters (WIRE_ENV_MAX). */
#define AGENT_ENVIRONMENT_MAX 31

typedef struct agent_section_config {
    char *name;            /* this agent's name, as the coordinator's [agent NAME] */
    char *coordinator;     /* tls+tcp://host:port, or tcp:// / ipc:// when insecure is allowed */
    char *tls_ca;          /* required with tls+tcp:// */
    char *tls_server_name; /* defaults to the coordinator URL's host */
    char *tls_cert;        /* optional client certificate ... */
    char *tls_key;         /* ... and its key (both or neither); mode & 077 == 0 */
    char *identity_key;    /* Ed25519 identity secret key file; mode & 077 == 0 */
    char *spool_dir;
    ini_list recipients;   /* recipient public key files: every archive is sealed to each */
    ini_list restore_keys; /* secret key files this agent may decrypt with; mode & 077 == 0 */
    int log_level;         /* enum log_level */
    int allow_insecure_transport;
    ini_src src;
} agent_section_config;

typedef struct agent_database_config {
    char *name;          /* [database NAME]: pgship's name for it (object keys, requests) */
    char *conninfo;      /* secret: may hold a password; never printed */
    char *environment;   /* prod, staging, dev, ...: [a-z0-9_-]{1,63} */
    ini_list recipients; /* as written here; empty: the agent's list applies */
    /* Effective recipients, loaded at load time (this section's list, else the agent's). */
    pgs_pubkey *keys;
    size_t nkeys;
    ini_src src;
} agent_database_config;

typedef struct agent_config {
    char *path; /* of the file, for messages */
    agent_section_config agent;
    agent_database_config *databases; /* in file order */
    size_t ndatabases;

    int insecure_transport; /* coordinator is tcp:// or ipc:// (allowed by the file) */
    /* Read at load (agent_config_load only): the public half of identity_key (the secret is
     * checked and not kept). */
    pgs_identity_pub identity;
    /* Read at load (agent_config_load only): the secret keys of [agent] restore_keys, in file
     * order, distinct; NULL and 0 when none. Wiped by agent_config_free. */
    pgs_seckey *restore_keys;
    size_t nrestore_keys;
} agent_config;

/*
 * Loads and validates path into cfg (which need not be initialized). On failure cfg holds
 * nothing to free, and e says "path:line: what is wrong".
 */
int agent_config_load(const char *path, agent_config *cfg, pgs_error *e);

/* Parses and validates text without touching the file system (no key files are read, so the
 * databases' keys stay empty); for tests and fuzzing. */
int agent_config_parse(const char *name, const char *text, size_t len, agent_config *cfg,
                       pgs_error *e);

/* Frees and wipes everything in cfg; safe on a zeroed or already freed cfg. */
void agent_config_free(agent_config *cfg);

/* The effective configuration for --check-config: defaults marked, conninfo printed as "(set)",
 * keys by their ids (never a secret). */
void agent_config_print(FILE *out, const agent_config *cfg);

/* The section specs, in file order: [agent], [database NAME]. */
const ini_section *agent_config_spec(size_t *nspecs);

#endif
