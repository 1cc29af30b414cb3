/*
 * The coordinator's configuration file (docs/configuration.md has every key, its default and
 * meaning; deploy/examples/coordinator.conf is a complete example):
 *
 *   [coordinator]   where it listens for agents and for the HTTP API, TLS, catalog, limits
 *   [storage]       where archives go: a local directory (fs) or an S3-compatible bucket (s3)
 *   [agent NAME]    one per agent allowed to connect, with its Ed25519 identity public key
 *
 * Loading validates everything it can before the daemon starts: transport rules (plain tcp:// or
 * ipc:// only with allow_insecure_transport = true), that the files it names exist and can be
 * read, that secret files are private to their owner, that public keys parse. It also reads the
 * API token and the S3 credentials (from the file's secret_access_key_file, or from the AWS_*
 * environment when the file names no credentials), so the daemon never re-reads them.
 */
#ifndef PGSHIP_COORDINATOR_CONFIG_H
#define PGSHIP_COORDINATOR_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/error.h"
#include "common/ini.h"
#include "common/keys.h"

enum coordinator_storage_type { COORDINATOR_STORAGE_FS = 0, COORDINATOR_STORAGE_S3 = 1 };

/* Limits of the values below; docs/configuration.md states the same. */
#define COORDINATOR_API_TOKEN_MIN 16
#define COORDINATOR_SECRET_MAX 4096

typedef struct coordinator_section_config {
    char *listen;         /* tls+tcp://, or tcp:// / ipc:// with allow_insecure_transport */
    char *tls_cert;       /* required with tls+tcp:// */
    char *tls_key;        /* required with tls+tcp://; mode & 077 == 0 */
    char *tls_ca;         /* optional: when set, agents must present a certificate it signed */
    char *api_listen;     /* http://host:port, or "off" */
    char *api_token_file; /* required unless api_listen = off; mode & 077 == 0 */
    char *catalog;        /* SQLite file */
    int allow_insecure_transport;
    int log_level;        /* enum log_level */
    uint64_t max_streams; /* backup/restore streams served at once */
    uint64_t window;      /* unacknowledged chunks per stream */
    char *profiles_dir;   /* sanitization profiles: profiles_dir/NAME/sanitize.sql, ... */
    ini_src src;
} coordinator_section_config;

/* Limits of [policy]'s lists. */
#define COORDINATOR_POLICY_ENVS_MAX 16
#define COORDINATOR_POLICY_PAIRS_MAX 32
#define COORDINATOR_ENV_MAX 31

/* [policy]: what restores may do (checked on every request). */
typedef struct coordinator_policy_config {
    char *prod_environments; /* as written: "prod, production" */
    char *allow_unsanitized; /* as written: "prod:staging, prod:dev"; NULL: none */
    ini_src src;
    /* Parsed at load: */
    size_t nprod;
    char prod[COORDINATOR_POLICY_ENVS_MAX][COORDINATOR_ENV_MAX + 1];
    size_t npairs;
    char pair_from[COORDINATOR_POLICY_PAIRS_MAX][COORDINATOR_ENV_MAX + 1];
    char pair_to[COORDINATOR_POLICY_PAIRS_MAX][COORDINATOR_ENV_MAX + 1];
} coordinator_policy_config;

/* True when environment env counts as production under policy p. */
int coordinator_policy_is_prod(const coordinator_policy_config *p, const char *env);
/* True when p allows unsanitized copies from environment from into environment to. */
int coordinator_policy_allows_unsanitized(const coordinator_policy_config *p, const char *from,
                                          const char *to);

typedef struct coordinator_storage_config {
    int type;       /* enum coordinator_storage_type */
    char *path;     /* fs: the root directory */
    char *prefix;   /* both: first part of every object key; NULL for none */
    char *endpoint; /* s3: URL; when not in the file, AWS's for region */
    char *region;
    char *bucket;
    int path_style;
    char *access_key_id; /* as in the file (see coordinator_config.s3_* for the effective) */
    char *secret_access_key_file;
    uint64_t part_size_mib;
    uint64_t parallel_parts;
    ini_src src;
} coordinator_storage_config;

typedef struct coordinator_agent_config {
    char *name;           /* [agent NAME] */
    char *public_key;     /* the identity key line as written */
    pgs_identity_pub key; /* ... parsed */
    ini_src src;
} coordinator_agent_config;

typedef struct coordinator_config {
    char *path; /* of the file, for messages */
    coordinator_section_config coordinator;
    coordinator_storage_config storage;
    coordinator_policy_config policy;
    coordinator_agent_config *agents; /* in file order */
    size_t nagents;

    int insecure_transport; /* listen is tcp:// or ipc:// (allowed by the file) */

    /* Read at load (coordinator_config_load only; coordinator_config_parse leaves them NULL). */
    char *api_token;             /* secret: api_token_file's contents; NULL when the API is off */
    int s3_credentials_from_env; /* 1: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY */
    char *s3_access_key_id;      /* s3 only */
    char *s3_secret_access_key;  /* secret; s3 only */
    char *s3_session_token;      /* secret; AWS_SESSION_TOKEN, only with credentials from env */
} coordinator_config;

/*
 * Loads and validates path into cfg (which need not be initialized). On failure cfg holds
 * nothing to free, and e says "path:line: what is wrong".
 */
int coordinator_config_load(const char *path, coordinator_config *cfg, pgs_error *e);

/*
 * Parses and validates text without touching the file system or the environment: no file
 * checks, no secrets read (for tests and the fuzzer). name is used in messages.
 */
int coordinator_config_parse(const char *name, const char *text, size_t len,
                             coordinator_config *cfg, pgs_error *e);

/* Frees and wipes everything in cfg; safe on a zeroed or already freed cfg. */
void coordinator_config_free(coordinator_config *cfg);

/* The effective configuration, defaults marked, secrets never printed (--check-config). */
void coordinator_config_print(FILE *out, const coordinator_config *cfg);

/* The section specs, in file order: [coordinator], [storage], [policy], [agent NAME]. */
const ini_section *coordinator_config_spec(size_t *nspecs);

#endif
