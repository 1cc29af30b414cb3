/*
 * manifest.json (the first member of an archive) and end.json (the member before SHA256SUMS).
 * The manifest says what was dumped, by which pg_dump, with which options, and for which
 * recipients; end.json holds what is known only when the dump is over. Neither holds a secret:
 * the coordinator later stores the manifest beside the object as a sidecar.
 *
 * Decoders accept at most BUNDLE_MANIFEST_MAX / BUNDLE_END_MAX bytes, reject duplicate keys,
 * require every field with its type, bound every string, and ignore unknown fields so that a
 * newer agent's archive stays readable.
 */
#ifndef PGSHIP_PROTO_MANIFEST_H
#define PGSHIP_PROTO_MANIFEST_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/keys.h"
#include "proto/envelope.h"

#define MANIFEST_VERSION 1

typedef struct manifest_recipient {
    char key_id[KEY_ID_HEX_LEN + 1];
    char name[KEY_NAME_MAX + 1];
} manifest_recipient;

typedef struct manifest {
    int version;
    char format[16]; /* "custom" or "directory" */
    char database[256];
    char server_version[32];
    int server_version_num;
    char pg_dump_version[64];
    char created_by[64];
    char host[256];
    char started_at[32]; /* RFC 3339, UTC */
    uint64_t estimated_bytes;
    uint32_t part_size;
    int globals;
    size_t nrecipients;
    manifest_recipient recipients[ENVELOPE_RECIPIENTS_MAX];
    json_t *options; /* an object; owned; NULL means {} */
} manifest;

typedef struct manifest_end {
    char ended_at[32];
    uint64_t dump_bytes;
    uint64_t dump_members;
} manifest_end;

/* Returns a malloc'd JSON text in *out (caller frees). */
int manifest_encode(const manifest *m, char **out, size_t *len, pgs_error *e);
int manifest_decode(const void *buf, size_t len, manifest *m, pgs_error *e);
void manifest_clear(manifest *m);

int manifest_end_encode(const manifest_end *m, char **out, size_t *len, pgs_error *e);
int manifest_end_decode(const void *buf, size_t len, manifest_end *m, pgs_error *e);

/* Formats a UTC time as RFC 3339 with seconds ("2026-11-21T16:05:29Z"). */
void manifest_time(long long unix_seconds, char out[32]);

#endif
