/*
 * The wire protocol between agents and the coordinator, version 3 (docs/wire-protocol.md).
 *
 * Transport: nng req/rep over tls+tcp. The agent's REQ socket dials; every message from the agent
 * is a request and the coordinator answers each with exactly one reply. Jobs reach an agent as the
 * reply to its long-poll (POLL); the agent keeps up to `window` DATA requests in flight, which
 * bounds the memory on both sides.
 *
 * A frame is an 8-byte header and a body:
 *   magic "PW" | version u8 (3) | type u8 | body length u32 (big-endian)
 * Control bodies are JSON objects with exactly the documented fields; a DATA body is binary:
 *   job id length u8 | job id | seq u64 | payload (1 .. WIRE_DATA_MAX bytes)
 * The decoder checks everything and consumes the frame exactly; a frame that fails it is a reason
 * to drop that peer, never to stop the daemon.
 */
#ifndef PGSHIP_PROTO_WIRE_H
#define PGSHIP_PROTO_WIRE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/keys.h"
#include "common/sha256.h"

#define WIRE_VERSION 3
#define WIRE_HEADER_LEN 8
#define WIRE_CONTROL_MAX (64u << 10)  /* control body */
#define WIRE_END_MAX (1u << 20)       /* END carries the archive's manifest */
#define WIRE_DATA_MAX (4u << 20)      /* DATA payload */
#define WIRE_NONCE_LEN 32
#define WIRE_JOB_ID_LEN 25            /* YYYYMMDDTHHMMSSZ-xxxxxxxx */
#define WIRE_DBS_MAX 256
#define WIRE_NAME_MAX 63
#define WIRE_ENV_MAX 31
#define WIRE_TEXT_MAX 1000            /* error messages */
#define WIRE_LABEL_MAX 128
#define WIRE_VERSION_STR_MAX 63
#define WIRE_KEY_MAX 512              /* storage keys */
#define WIRE_JOB_MAX (2u << 20)       /* JOB body: a restore job carries its profile's SQL */
#define WIRE_SQL_MAX (512u << 10)     /* sanitize.sql and check.sql, each */
#define WIRE_REPORT_MAX (1u << 20)    /* REPORT body: per-table row counts, step times */
#define WIRE_PATTERNS_MAX 64          /* --schema and --table values in one restore */
#define WIRE_PATTERN_MAX 127          /* one of them: UTF-8 without control characters */
#define WIRE_RECIPIENTS_MAX 32        /* as ENVELOPE_RECIPIENTS_MAX */
#define WIRE_PUBKEY_TEXT_MAX 160      /* a recipient public key in its text form */
#define WIRE_STEP_MAX 31              /* step names: [a-z_]{1,31} */
/* A verify job's scratch database: this prefix and 8 lowercase hex digits, nothing else, so
 * that an agent never creates or drops a database of any other name for a verification. */
#define WIRE_SCRATCH_PREFIX "pgship_verify_"
#define WIRE_SCRATCH_LEN (sizeof(WIRE_SCRATCH_PREFIX) - 1 + 8)

typedef enum wire_type {
    /* agent -> coordinator (requests) */
    WIRE_HELLO = 1,
    WIRE_AUTH = 2,
    WIRE_POLL = 3,
    WIRE_DATA = 4,
    WIRE_END = 5,
    WIRE_FAIL = 6,
    WIRE_FETCH = 7,  /* restore/sanitize/verify: the next piece of the job's source object */
    WIRE_STEP = 8,   /* restore/sanitize/verify: the step the job has reached (progress) */
    WIRE_REPORT = 9, /* restore/sanitize/verify: the job's outcome; always its last request */
    /* coordinator -> agent (replies) */
    WIRE_CHALLENGE = 64,
    WIRE_WELCOME = 65,
    WIRE_JOB = 66,
    WIRE_IDLE = 67,
    WIRE_ACK = 68,
    WIRE_RESULT = 69,
    WIRE_PIECE = 70, /* reply to FETCH: binary, laid out as DATA */
    WIRE_EOF = 71,   /* reply to FETCH past the last piece: totals of the source object */
    WIRE_ERROR = 127,
} wire_type;

typedef struct wire_db {
    char name[WIRE_NAME_MAX + 1];
    char environment[WIRE_ENV_MAX + 1];
    char server_version[WIRE_VERSION_STR_MAX + 1];
} wire_db;

/*
 * What a restore, sanitize or verify JOB asks for (JSON field "restore" of JOB;
 * docs/wire-protocol.md).
 *
 * restore:  fetch the source object (FETCH), unpack it, pg_restore it into a temporary database,
 *           run sanitize_sql (one transaction) and check_sql when given, ANALYZE, and swap it in
 *           for `database`.
 * sanitize: the same into a temporary database of `database` (the sanitizer's scratch database),
 *           then pg_dump that again, encrypted to `recipients` only, and send it as DATA/END: the
 *           new backup `output`. The temporary database is dropped; nothing is swapped.
 * verify:   fetch the source object and check it end to end (every chunk, the checksum list, its
 *           SHA-256) without keeping it; with restore_test, also restore it into the new database
 *           `scratch` on the server of `database`, count the rows of every table and drop it.
 *           Only source, source_bytes, jobs and no_owner mean anything; the other fields are
 *           their "none" values.
 */
typedef struct wire_restore_spec {
    char source[WIRE_JOB_ID_LEN + 1]; /* the backup being restored */
    uint64_t source_bytes;            /* its stored size (EOF says it again) */
    char profile[WIRE_NAME_MAX + 1];  /* "" when none */
    char *sanitize_sql;               /* owned; NULL when none; <= WIRE_SQL_MAX bytes of UTF-8 */
    char *check_sql;                  /* owned; NULL when none; <= WIRE_SQL_MAX */
    uint32_t jobs;                    /* pg_restore -j: 1..64 */
    int schema_only, data_only;       /* not both */
    int no_owner;
    int keep_old;                     /* restore: keep the replaced database */
    char role[WIRE_NAME_MAX + 1];     /* pg_restore --role; "" when none */
    size_t nschemas, ntables;         /* each <= WIRE_PATTERNS_MAX */
    char (*schemas)[WIRE_PATTERN_MAX + 1]; /* owned; pg_restore --schema, in order */
    char (*tables)[WIRE_PATTERN_MAX + 1];  /* owned; pg_restore --table, in order */
    /* sanitize only ("" and 0 otherwise): */
    char output[WIRE_JOB_ID_LEN + 1]; /* the id of the sanitized backup being made */
    size_t nrecipients;               /* 1..WIRE_RECIPIENTS_MAX for sanitize */
    char (*recipients)[WIRE_PUBKEY_TEXT_MAX + 1]; /* owned; public keys in their text form */
    /* verify only (0 and "" otherwise): */
    int restore_test;                  /* also restore into scratch, count its rows, drop it */
    char scratch[WIRE_NAME_MAX + 1];   /* with restore_test: WIRE_SCRATCH_PREFIX + 8 hex; else "" */
} wire_restore_spec;

typedef struct wire_msg {
    wire_type type;
    union {
        struct {
            char agent[WIRE_NAME_MAX + 1];
            char version[WIRE_VERSION_STR_MAX + 1]; /* "pgship-agent 0.1.0" */
            char key_id[KEY_ID_HEX_LEN + 1];        /* of the identity key */
        } hello;
        struct {
            uint8_t nonce[WIRE_NONCE_LEN];
            char version[WIRE_VERSION_STR_MAX + 1];
        } challenge;
        struct {
            uint8_t signature[IDENTITY_SIG_LEN];
            size_t ndbs;
            wire_db *dbs; /* owned; ndbs entries */
            /* The public halves of the agent's restore_keys, in their text form (0..32): what a
             * sanitized copy meant for this agent is encrypted to. */
            size_t nrestore_keys;
            char (*restore_keys)[WIRE_PUBKEY_TEXT_MAX + 1]; /* owned */
        } auth;
        struct {
            uint32_t heartbeat_ms;
            uint32_t window;
            uint32_t data_max;
        } welcome;
        struct {
            char job[WIRE_JOB_ID_LEN + 1];
            char kind[16]; /* "backup", "restore", "sanitize" or "verify" */
            /* the database backed up, or restored into; verify: the one whose server holds the
             * scratch database */
            char database[WIRE_NAME_MAX + 1];
            char label[WIRE_LABEL_MAX + 1]; /* backup only; "" otherwise */
            wire_restore_spec *restore;     /* owned; restore, sanitize and verify, else NULL */
        } job;
        struct {
            char job[WIRE_JOB_ID_LEN + 1];
            uint64_t seq;
            const uint8_t *payload; /* points into the decoded frame */
            size_t len;
        } data;
        struct {
            char job[WIRE_JOB_ID_LEN + 1];
            uint64_t seq;
        } ack;
        struct {
            char job[WIRE_JOB_ID_LEN + 1];
            uint64_t chunks;
            uint64_t bytes;
            uint8_t sha256[SHA256_LEN];
            json_t *manifest; /* owned; an object */
        } end;
        struct {
            char job[WIRE_JOB_ID_LEN + 1];
            char error[WIRE_TEXT_MAX + 1];
        } fail;
        struct {
            char job[WIRE_JOB_ID_LEN + 1];
            int complete;
            char error[WIRE_TEXT_MAX + 1];
            char storage_key[WIRE_KEY_MAX + 1];
        } result;
        struct {
            char code[32];
            char message[WIRE_TEXT_MAX + 1];
        } error;
        struct {
            char job[WIRE_JOB_ID_LEN + 1];
            uint64_t seq; /* pieces are numbered from 0 */
        } fetch;
        /* PIECE uses u.data (job, seq, payload, len): the same binary layout as DATA. */
        struct {
            char job[WIRE_JOB_ID_LEN + 1];
            uint64_t pieces; /* how many PIECEs the object was served in */
            uint64_t bytes;  /* the object's size */
            uint8_t sha256[SHA256_LEN]; /* the catalog's digest of the object */
        } eof;
        struct {
            char job[WIRE_JOB_ID_LEN + 1];
            char step[WIRE_STEP_MAX + 1];    /* fetch, pg_restore, sanitize, check, ... */
            char detail[WIRE_TEXT_MAX + 1]; /* free text for the operator; may be "" */
        } step;
        struct {
            char job[WIRE_JOB_ID_LEN + 1];
            int ok;
            char step[WIRE_STEP_MAX + 1];   /* the step that failed; "done" when ok */
            char error[WIRE_TEXT_MAX + 1];  /* "" when ok */
            json_t *report; /* owned; an object (docs/wire-protocol.md, "REPORT") */
        } report;
    } u;
} wire_msg;

/* Decodes one whole frame. For DATA and PIECE, m->u.data.payload points into buf. Release with
 * wire_msg_clear. */
int wire_decode(const void *buf, size_t len, wire_msg *m, pgs_error *e);
/* Encodes m into a malloc'd frame. DATA frames are better built with wire_data_header. */
int wire_encode(const wire_msg *m, uint8_t **out, size_t *len, pgs_error *e);
/* Writes the header and fixed part of a DATA frame of payload_len bytes into hdr (at least
 * WIRE_DATA_HDR_MAX bytes); the payload follows it on the wire. Returns the length written. */
#define WIRE_DATA_HDR_MAX (WIRE_HEADER_LEN + 1 + WIRE_JOB_ID_LEN + 8)
size_t wire_data_header(uint8_t *hdr, const char *job, uint64_t seq, size_t payload_len);
/* The same for a PIECE frame (the reply to FETCH). */
size_t wire_piece_header(uint8_t *hdr, const char *job, uint64_t seq, size_t payload_len);
/* Frees a restore spec and everything it owns; NULL is allowed. */
void wire_restore_spec_free(wire_restore_spec *r);
void wire_msg_clear(wire_msg *m);
const char *wire_type_name(wire_type t);

/* The bytes an agent signs to authenticate (and the coordinator verifies): a domain tag, the
 * connection's nonce, the agent's name and its identity key id. */
#define WIRE_AUTH_MSG_MAX (32 + WIRE_NONCE_LEN + 1 + WIRE_NAME_MAX + KEY_ID_LEN)
size_t wire_auth_message(const uint8_t nonce[WIRE_NONCE_LEN], const char *agent,
                         const uint8_t key_id[KEY_ID_LEN], uint8_t *out);

/* Checks a job id: YYYYMMDDTHHMMSSZ-xxxxxxxx (digits, then 8 lowercase hex). */
int wire_job_id_valid(const char *id);
/* Checks a verify job's scratch database name: WIRE_SCRATCH_PREFIX and 8 lowercase hex. */
int wire_scratch_name_valid(const char *name);

#endif
