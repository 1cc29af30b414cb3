/*
 * The coordinator's configuration file (docs/configuration.md has every key, its default and
 * meaning; deploy/examples/coordinator.conf is a complete example):
 *
 *   [coordinator]      where it listens for agents and for the HTTP API, TLS, catalog, limits
 *   [storage]          where archives go: a local directory (fs) or an S3-compatible bucket (s3)
 *   [policy]           what restores may do across environments
 *   [agent NAME]       one per agent allowed to connect, with its Ed25519 identity public key
 *   [scheduler]        limits of the scheduled backups, catch-up and the overdue rule
 *   [schedule NAME]    when to back up which databases (a cron expression and a selector)
 *   [retention NAME]   which backups prune keeps (restic's keep_* rules), by schedule or selector
 *   [token NAME]       one more bearer token for the HTTP API, with its role
 *   [webhook NAME]     an endpoint told about failures and overdue backups
 *
 * Loading validates everything it can before the daemon starts: transport rules (plain tcp:// or
 * ipc:// only with allow_insecure_transport = true), that the files it names exist and can be
 * read, that secret files are private to their owner, that public keys, cron expressions,
 * selectors and retention rules parse, that a schedule's retention exists. It also reads the API
 * tokens, the webhook secrets and the S3 credentials (from the file's secret_access_key_file, or
 * from the AWS_* environment when the file names no credentials), so the daemon never re-reads
 * them.
 */
#ifndef PGSHIP_COORDINATOR_CONFIG_H
#define PGSHIP_COORDINATOR_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/cron.h"
#include "common/error.h"
#include "common/ini.h"
#include "common/keys.h"
#include "coordinator/retention.h"
#include "coordinator/select.h"

enum coordinator_storage_type { COORDINATOR_STORAGE_FS = 0, COORDINATOR_STORAGE_S3 = 1 };

/* Limits of the values below; docs/configuration.md states the same. */
#define COORDINATOR_API_TOKEN_MIN 16
#define COORDINATOR_SECRET_MAX 4096
#define COORDINATOR_TOKEN_MIN 32 /* [token NAME]: characters of a token */
#define COORDINATOR_TOKEN_MAX 512
#define COORDINATOR_TOKEN_HASH_LEN 32        /* BLAKE2b-256 of a token, for the lookup */
#define COORDINATOR_WEBHOOK_SECRET_MIN 16    /* bytes of a webhook's secret ... */
#define COORDINATOR_WEBHOOK_SECRET_MAX 1024  /* ... as webhook_start takes it */
#define COORDINATOR_WEBHOOK_URL_MAX 2048     /* as webhook_start takes it */
#define COORDINATOR_JITTER_MAX_S (24 * 3600) /* [schedule NAME] jitter */
#define COORDINATOR_WEBHOOK_TIMEOUT_MIN_S 1  /* [webhook NAME] timeout */
#define COORDINATOR_WEBHOOK_TIMEOUT_MAX_S 600

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

/* [scheduler]: one, optional; every key has a default. */
typedef struct coordinator_scheduler_config {
    uint64_t max_concurrent;   /* scheduled backups running at once, over all agents */
    uint64_t max_per_agent;    /* ... on one agent */
    int catch_up;              /* one run of each run missed while the coordinator was down */
    char *overdue_factor_text; /* as written: "2.0" */
    ini_src src;
    double overdue_factor; /* parsed: 1.0 .. 100.0 */
} coordinator_scheduler_config;

/* [retention NAME]: the keep_* values as written, the policy they make, and the optional
 * selector of the databases it applies to without a schedule naming it. */
typedef struct coordinator_retention_config {
    char *name;
    char *keep_last, *keep_within, *keep_hourly, *keep_daily; /* as written; NULL: not given */
    char *keep_weekly, *keep_monthly, *keep_yearly;
    char *select_text; /* as written; NULL: none */
    ini_src src;
    retention_policy policy; /* through retention_policy_set, retention_policy_check passed */
    db_select *select;       /* parsed select_text; NULL when select_text is */
} coordinator_retention_config;

/* What a schedule does at its due times. */
enum coordinator_schedule_action {
    SCHEDULE_BACKUP = 0,       /* a backup of each selected database */
    SCHEDULE_VERIFY = 1,       /* a verification of each one's newest complete backup */
    SCHEDULE_RESTORE_TEST = 2, /* ... with a test restore into a scratch database */
};

/* [schedule NAME]: when (cron), what (select), spread (jitter), and the retention it applies. */
typedef struct coordinator_schedule_config {
    char *name;
    char *cron_text;   /* as written */
    char *select_text; /* as written */
    char *jitter_text; /* as written, or the default "0" */
    char *retention;   /* NAME of a [retention NAME]; NULL: none */
    int action;        /* enum coordinator_schedule_action */
    ini_src src;
    cron_expr *cron;                             /* parsed cron_text */
    db_select *select;                           /* parsed select_text */
    int64_t jitter_s;                            /* 0 .. COORDINATOR_JITTER_MAX_S */
    coordinator_retention_config *retention_ref; /* into coordinator_config.retentions; NULL */
} coordinator_schedule_config;

/* What a bearer token may do; ordered, so that "at least operate" is role >= ROLE_OPERATE. */
enum coordinator_role { ROLE_READ = 1, ROLE_OPERATE = 2, ROLE_ADMIN = 3 };

/* [token NAME]: one more API token, read from file at load. */
typedef struct coordinator_token_config {
    char *name;
    char *file;      /* mode & 077 == 0 */
    int role_choice; /* the INI layer's index of role in "read, operate, admin": use role */
    ini_src src;
    int role;    /* enum coordinator_role */
    char *token; /* secret: the file's token (load only; NULL after coordinator_config_parse) */
    uint8_t hash[COORDINATOR_TOKEN_HASH_LEN]; /* of token, compared by coordinator_config_token */
} coordinator_token_config;

/* The events a webhook may be told about (coordinator_webhook_config.events is a set of them). */
#define COORDINATOR_EVENT_BACKUP_FAILED 0x1u  /* "backup.failed" */
#define COORDINATOR_EVENT_RESTORE_FAILED 0x2u /* "restore.failed" */
#define COORDINATOR_EVENT_VERIFY_FAILED 0x4u  /* "verify.failed" */
#define COORDINATOR_EVENT_BACKUP_OVERDUE 0x8u /* "backup.overdue" */
#define COORDINATOR_EVENTS_ALL 0xfu

/* [webhook NAME]: the options of webhook_start, checked. */
typedef struct coordinator_webhook_config {
    char *name;
    char *url;          /* secret as far as printing goes: its path may carry a token */
    char *secret_file;  /* NULL: requests are not signed */
    char *events_text;  /* as written, or the default (all four) */
    char *timeout_text; /* as written, or the default "10s" */
    uint64_t max_attempts;
    ini_src src;
    unsigned events;   /* COORDINATOR_EVENT_* bits */
    int timeout_ms;    /* 1 s .. 10 min */
    uint8_t *secret;   /* secret: secret_file's bytes less a trailing newline (load only) */
    size_t secret_len; /* 0 without secret_file */
} coordinator_webhook_config;

typedef struct coordinator_config {
    char *path; /* of the file, for messages */
    coordinator_section_config coordinator;
    coordinator_storage_config storage;
    coordinator_policy_config policy;
    coordinator_agent_config *agents; /* in file order */
    size_t nagents;
    coordinator_scheduler_config scheduler;
    coordinator_schedule_config *schedules; /* in file order */
    size_t nschedules;
    coordinator_retention_config *retentions; /* in file order */
    size_t nretentions;
    coordinator_token_config *tokens; /* in file order */
    size_t ntokens;
    coordinator_webhook_config *webhooks; /* in file order */
    size_t nwebhooks;

    int insecure_transport; /* listen is tcp:// or ipc:// (allowed by the file) */

    /* Read at load (coordinator_config_load only; coordinator_config_parse leaves them NULL). */
    char *api_token; /* secret: api_token_file's contents; NULL when the API is off */
    uint8_t api_token_hash[COORDINATOR_TOKEN_HASH_LEN]; /* of api_token */
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
 * checks, no secrets read (for tests and the fuzzer). name is used in messages. The one
 * exception: a cron expression's CRON_TZ= / TZ= zone is loaded by cron_parse from the zoneinfo
 * directory (PGSHIP_ZONEINFO or /usr/share/zoneinfo), which is system data, not the file's.
 */
int coordinator_config_parse(const char *name, const char *text, size_t len,
                             coordinator_config *cfg, pgs_error *e);

/* Frees and wipes everything in cfg; safe on a zeroed or already freed cfg. */
void coordinator_config_free(coordinator_config *cfg);

/* The effective configuration, defaults marked, secrets never printed (--check-config). */
void coordinator_config_print(FILE *out, const coordinator_config *cfg);

/* The section specs: [coordinator], [storage], [policy], [agent NAME], [scheduler],
 * [schedule NAME], [retention NAME], [token NAME], [webhook NAME], in this order. */
const ini_section *coordinator_config_spec(size_t *nspecs);

/*
 * The token that presented (a bearer token as a client sent it, NUL-terminated) is, or NULL when
 * it is none of them: one of the [token NAME] sections, or api_token_file's token, which is an
 * admin token and comes back as a static entry named "(api_token_file)" (a name no section can
 * have) with role ROLE_ADMIN and no file or token. The comparison hashes presented and compares
 * the hashes with every token's in constant time, so how long it takes says nothing about how
 * much of a token was right. Only a cfg from coordinator_config_load has tokens to find.
 */
const coordinator_token_config *coordinator_config_token(const coordinator_config *cfg,
                                                         const char *presented);

/* The COORDINATOR_EVENT_* bit of a webhook event name ("backup.failed" ...), 0 for others. */
unsigned coordinator_webhook_event_bit(const char *event);

/*
 * Parses a duration as the file writes them: "0", or one to three NUMBER UNIT parts with the
 * units h, m and s in that order, each at most once ("30s", "5m", "90m", "1h30m", "2h0m15s").
 * NUMBER is 1 to 6 decimal digits. The total must be at most max_s seconds. No spaces, no
 * fractions, no days (write 24h). PGS_EINVAL with e saying what is wrong (the caller adds file,
 * line, section and key).
 */
int coordinator_duration_parse(const char *text, int64_t max_s, int64_t *out_s, pgs_error *e);

#endif
