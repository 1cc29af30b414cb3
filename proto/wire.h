/*
 * The wire protocol between agents and the coordinator, version 1 (docs/wire-protocol.md).
 *
 * Transport: nng req/rep over tls+tcp. The agent's REQ socket dials; every message from the agent
 * is a request and the coordinator answers each with exactly one reply. Jobs reach an agent as the
 * reply to its long-poll (POLL); the agent keeps up to `window` DATA requests in flight, which
 * bounds the memory on both sides.
 *
 * A frame is an 8-byte header and a body:
 *   magic "PW" | version u8 (1) | type u8 | body length u32 (big-endian)
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

#define WIRE_VERSION 1
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

typedef enum wire_type {
    /* agent -> coordinator (requests) */
    WIRE_HELLO = 1,
    WIRE_AUTH = 2,
    WIRE_POLL = 3,
    WIRE_DATA = 4,
    WIRE_END = 5,
    WIRE_FAIL = 6,
    /* coordinator -> agent (replies) */
    WIRE_CHALLENGE = 64,
    WIRE_WELCOME = 65,
    WIRE_JOB = 66,
    WIRE_IDLE = 67,
    WIRE_ACK = 68,
    WIRE_RESULT = 69,
    WIRE_ERROR = 127,
} wire_type;

typedef struct wire_db {
    char name[WIRE_NAME_MAX + 1];
    char environment[WIRE_ENV_MAX + 1];
    char server_version[WIRE_VERSION_STR_MAX + 1];
} wire_db;

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
        } auth;
        struct {
            uint32_t heartbeat_ms;
            uint32_t window;
            uint32_t data_max;
        } welcome;
        struct {
            char job[WIRE_JOB_ID_LEN + 1];
            char kind[16]; /* "backup" */
            char database[WIRE_NAME_MAX + 1];
            char label[WIRE_LABEL_MAX + 1];
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
    } u;
} wire_msg;

/* Decodes one whole frame. For DATA, m->u.data.payload points into buf. Release with
 * wire_msg_clear. */
int wire_decode(const void *buf, size_t len, wire_msg *m, pgs_error *e);
/* Encodes m into a malloc'd frame. DATA frames are better built with wire_data_header. */
int wire_encode(const wire_msg *m, uint8_t **out, size_t *len, pgs_error *e);
/* Writes the header and fixed part of a DATA frame of payload_len bytes into hdr (at least
 * WIRE_DATA_HDR_MAX bytes); the payload follows it on the wire. Returns the length written. */
#define WIRE_DATA_HDR_MAX (WIRE_HEADER_LEN + 1 + WIRE_JOB_ID_LEN + 8)
size_t wire_data_header(uint8_t *hdr, const char *job, uint64_t seq, size_t payload_len);
void wire_msg_clear(wire_msg *m);
const char *wire_type_name(wire_type t);

/* The bytes an agent signs to authenticate (and the coordinator verifies): a domain tag, the
 * connection's nonce, the agent's name and its identity key id. */
#define WIRE_AUTH_MSG_MAX (32 + WIRE_NONCE_LEN + 1 + WIRE_NAME_MAX + KEY_ID_LEN)
size_t wire_auth_message(const uint8_t nonce[WIRE_NONCE_LEN], const char *agent,
                         const uint8_t key_id[KEY_ID_LEN], uint8_t *out);

/* Checks a job id: YYYYMMDDTHHMMSSZ-xxxxxxxx (digits, then 8 lowercase hex). */
int wire_job_id_valid(const char *id);

#endif
