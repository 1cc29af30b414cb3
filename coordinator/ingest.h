/*
 * One backup stream arriving at the coordinator, from the first DATA frame to the catalog row
 * that says complete. Transport-free, so that its guarantees are tested on their own:
 *
 *   - DATA in order (seq 0, 1, 2, ...) goes straight into a storage upload; memory is the
 *     storage's (part size x parts in flight), never the backup's size;
 *   - END is checked against what arrived (count, size, and our own SHA-256 of the bytes) before
 *     the object is committed, so a mismatch never becomes a visible object;
 *   - after the commit, storage's digest of what it stored must equal ours; then the sidecar
 *     `<id>.manifest.json` is written, then the catalog row completes. A failure at any step
 *     aborts the upload or deletes what became visible, and fails the row with the reason.
 *
 * A crash between the commit and the catalog update leaves a running row whose storage key
 * catalog_recover hands back at the next start, so the object and its sidecar are deleted then.
 */
#ifndef PGSHIP_COORDINATOR_INGEST_H
#define PGSHIP_COORDINATOR_INGEST_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "common/sha256.h"
#include "coordinator/catalog.h"
#include "coordinator/storage.h"

typedef struct ingest ingest;

typedef struct ingest_backup {
    const char *id; /* a queued catalog backup */
    const char *agent;
    const char *database;
    const char *environment;
} ingest_backup;

/* Starts the backup in the catalog (queued -> running, with its planned storage key) and opens
 * the storage upload. */
int ingest_begin(ingest **out, storage *st, catalog *cat, const ingest_backup *b, pgs_error *e);
/* The next DATA frame. A seq other than the next one fails with PGS_EORDER. */
int ingest_data(ingest *g, uint64_t seq, const void *buf, size_t len, pgs_error *e);
/* END: chunks, bytes and sha256 as the agent counted them, and the archive's manifest. On success
 * the backup is complete and *key_out (if not NULL) names the object. */
int ingest_end(ingest *g, uint64_t chunks, uint64_t bytes, const uint8_t sha256[SHA256_LEN],
               json_t *man, const char **key_out, pgs_error *e);
/* Gives up: aborts the upload (nothing visible) and fails the backup with reason. Safe after a
 * failed ingest_data or ingest_end, which already did so. */
void ingest_abort(ingest *g, const char *reason);
/* The object key "<environment>/<agent>/<database>/<id>.pgship" (relative to storage's prefix). */
const char *ingest_key(const ingest *g);
uint64_t ingest_bytes(const ingest *g);
void ingest_free(ingest *g);

#endif
