/*
 * Keys in pgship's text form, and their short ids: recipient keys (X25519), which archives are
 * sealed to, and identity keys (Ed25519), with which an agent proves its name to the coordinator.
 *
 * A key file holds one key line, optionally preceded by '#' comment lines:
 *   pgship-public-key-v1 x25519 <base64 of 32 bytes> <name>
 *   pgship-secret-key-v1 x25519 <base64 of 32 bytes> <name>
 *   pgship-identity-public-v1 ed25519 <base64 of the 32-byte public key> <name>
 *   pgship-identity-secret-v1 ed25519 <base64 of the 32-byte seed> <name>
 * The key id is BLAKE2b with an 8-byte digest of ("pgship key id v1" || algorithm || public key),
 * written as 16 hex digits. Archives record the ids of their recipients so that a wrong key can be
 * named. Parsers are bounded (a key file is at most KEY_FILE_MAX bytes) and strict.
 */
#ifndef PGSHIP_COMMON_KEYS_H
#define PGSHIP_COMMON_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define KEY_LEN 32
#define KEY_ID_LEN 8
#define KEY_ID_HEX_LEN 16
#define KEY_NAME_MAX 63
#define KEY_FILE_MAX 4096

typedef struct pgs_pubkey {
    uint8_t pk[KEY_LEN];
    uint8_t id[KEY_ID_LEN];
    char name[KEY_NAME_MAX + 1];
} pgs_pubkey;

typedef struct pgs_seckey {
    uint8_t sk[KEY_LEN];
    uint8_t pk[KEY_LEN];
    uint8_t id[KEY_ID_LEN];
    char name[KEY_NAME_MAX + 1];
} pgs_seckey;

/* True when name is 1..63 characters of [A-Za-z0-9._-] and does not start with '.' or '-'. */
int key_name_valid(const char *name);

void key_id_compute(const uint8_t pk[KEY_LEN], uint8_t id[KEY_ID_LEN]);
/* out must hold KEY_ID_HEX_LEN + 1 bytes. */
void key_id_hex(const uint8_t id[KEY_ID_LEN], char *out);

int key_parse_public(const char *text, size_t len, pgs_pubkey *out, pgs_error *e);
int key_parse_secret(const char *text, size_t len, pgs_seckey *out, pgs_error *e);

/* Load from a file; errors name the path. A secret key file readable by group or others is refused. */
int key_load_public(const char *path, pgs_pubkey *out, pgs_error *e);
int key_load_secret(const char *path, pgs_seckey *out, pgs_error *e);

/* Generates a pair and writes PREFIX.pub (0644) and PREFIX.key (0600), refusing to overwrite
 * either. The name recorded in the files is the last path component of prefix. */
int key_generate_files(const char *prefix, pgs_pubkey *pub_out, pgs_error *e);

/* Formats the key line of a public or secret key file (with a trailing newline). */
int key_format_public(const pgs_pubkey *k, char *out, size_t outlen);
int key_format_secret(const pgs_seckey *k, char *out, size_t outlen);

void key_secret_wipe(pgs_seckey *k);

/* ---- identity keys (Ed25519) ---- */

#define IDENTITY_SIG_LEN 64

typedef struct pgs_identity_pub {
    uint8_t pk[KEY_LEN];
    uint8_t id[KEY_ID_LEN];
    char name[KEY_NAME_MAX + 1];
} pgs_identity_pub;

typedef struct pgs_identity_sec {
    uint8_t sk[64]; /* libsodium's seed || public key */
    uint8_t pk[KEY_LEN];
    uint8_t id[KEY_ID_LEN];
    char name[KEY_NAME_MAX + 1];
} pgs_identity_sec;

int identity_parse_public(const char *text, size_t len, pgs_identity_pub *out, pgs_error *e);
int identity_parse_secret(const char *text, size_t len, pgs_identity_sec *out, pgs_error *e);
int identity_load_public(const char *path, pgs_identity_pub *out, pgs_error *e);
/* Refuses a file readable by group or others, like key_load_secret. */
int identity_load_secret(const char *path, pgs_identity_sec *out, pgs_error *e);
/* PREFIX.pub and PREFIX.key, as key_generate_files. */
int identity_generate_files(const char *prefix, pgs_identity_pub *pub_out, pgs_error *e);
int identity_format_public(const pgs_identity_pub *k, char *out, size_t outlen);
void identity_sign(const pgs_identity_sec *k, const void *msg, size_t len,
                   uint8_t sig[IDENTITY_SIG_LEN]);
/* 0 when sig is k's signature of msg, PGS_EAUTH otherwise. */
int identity_verify(const pgs_identity_pub *k, const void *msg, size_t len,
                    const uint8_t sig[IDENTITY_SIG_LEN]);
void identity_secret_wipe(pgs_identity_sec *k);

#endif
