/*
 * `pgship catalog rebuild`: a lost or damaged catalog made again from storage alone.
 *
 * The catalog is a cache of the bucket (docs/catalog.md): every stored backup is an object
 * "<environment>/<agent>/<database>/<id>.pgship" with a sidecar "<id>.manifest.json" beside it,
 * which ingest writes after the object and before the catalog says complete. The sidecar holds the
 * backup's id, agent, database, environment, storage key, SHA-256 and size, the time it was stored
 * and the archive's manifest (versions, recipients, when the dump started), and from the sidecar
 * version that carries them, the backup's catalog times, label, requester, schedule and source.
 *
 * rebuild_catalog lists the bucket, pairs objects with their sidecars, decodes each sidecar
 * strictly (bounded, every field checked with its type, the nested manifest by the archive's own
 * decoder) and checks it against where it was found (the key's id, agent, database and
 * environment, the listed object size). Each good pair becomes a complete backup with its own id
 * (catalog_backup_import; unknown agents and databases are created). An object without a sidecar,
 * a sidecar without an object and a sidecar that fails any check are counted and listed, never
 * imported; other keys (not in that layout) are counted as ignored. Objects are not read: their
 * digests are checked by verification, not here. A backup already in the catalog is left alone,
 * so a rebuild can be run again.
 *
 * What a rebuild cannot bring back is what only the catalog knew: failed backups, restores,
 * verifications and the audit log, pins, and schedule runs. From sidecars without the catalog
 * fields, the label, requester, schedule and derived-copy link are lost too, and the times are
 * approximations (see docs/storage.md, "Rebuilding the catalog").
 */
#ifndef PGSHIP_COORDINATOR_REBUILD_H
#define PGSHIP_COORDINATOR_REBUILD_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "coordinator/catalog.h"
#include "coordinator/storage.h"
#include "proto/bundle.h"
#include "proto/manifest.h"

#define REBUILD_SIDECAR_VERSION 1
/* The manifest's own bound and room for the fields around it. */
#define REBUILD_SIDECAR_MAX (BUNDLE_MANIFEST_MAX + (64u << 10))
#define REBUILD_PROBLEMS_MAX 10000 /* problems listed in rebuild_counts (all are counted) */
#define REBUILD_KEYS_MAX 10000000u /* pgship keys one rebuild handles */

/* A sidecar, decoded and checked. Optional fields are "" (or 0) when absent or null. */
typedef struct rebuild_sidecar {
    char backup_id[CATALOG_ID_SIZE];
    char agent[CATALOG_NAME_MAX + 1];
    char database[CATALOG_NAME_MAX + 1];
    char environment[CATALOG_NAME_MAX + 1];
    char storage_key[CATALOG_STORAGE_KEY_MAX + 1];
    char sha256[CATALOG_SHA256_HEX_LEN + 1];
    uint64_t bytes;
    char stored_at[CATALOG_TIME_SIZE]; /* in the catalog's form (".000Z": stored to the second) */
    /* optional: the catalog's own values, when the sidecar carries them */
    char created_at[CATALOG_TIME_SIZE];
    char started_at[CATALOG_TIME_SIZE];
    char finished_at[CATALOG_TIME_SIZE];
    char label[CATALOG_LABEL_MAX + 1];
    char requested_by[CATALOG_REQUESTED_BY_MAX + 1];
    char scheduled[CATALOG_NAME_MAX + 1];
    char source_backup_id[CATALOG_ID_SIZE];
    uint64_t dump_bytes;
    manifest man; /* the archive's manifest (rebuild_sidecar_clear frees its options) */
} rebuild_sidecar;

/*
 * Decodes a sidecar of len bytes (at most REBUILD_SIDECAR_MAX, PGS_ELIMIT otherwise): a JSON
 * object without duplicate keys, "pgship_sidecar" 1 (another version is PGS_EVERSION), every
 * required field present with its type and within its bounds (PGS_EFORMAT, PGS_ELIMIT), names,
 * ids, times and the digest in their formats, no NUL inside a string, "storage_key" equal to
 * "<environment>/<agent>/<database>/<backup_id>.pgship", and "manifest" an object the archive's
 * manifest decoder accepts. Unknown fields are ignored, as the manifest's decoder ignores them, so
 * that a newer coordinator's sidecars stay readable. On failure *out holds nothing to free.
 */
int rebuild_sidecar_decode(const void *buf, size_t len, rebuild_sidecar *out, pgs_error *e);
void rebuild_sidecar_clear(rebuild_sidecar *s);

typedef struct rebuild_problem {
    char key[STORAGE_KEY_MAX + 1];
    char why[256]; /* printable ASCII: anything else from a sidecar is shown as '?' */
} rebuild_problem;

typedef struct rebuild_counts {
    size_t objects;            /* "<id>.pgship" keys found */
    size_t sidecars;           /* "<id>.manifest.json" keys found */
    size_t imported;           /* backups inserted into the catalog */
    size_t existing;           /* already in the catalog (left as they are) */
    size_t orphan_objects;     /* objects without a sidecar: not imported */
    size_t orphan_sidecars;    /* sidecars without an object: not imported */
    size_t bad;                /* sidecars that failed a check, or that the catalog refused */
    size_t ignored;            /* other keys under the prefix (and pin markers whose backup
                                  is not in the catalog) */
    size_t pinned;             /* backups pinned from their "<id>.pin" markers */
    rebuild_problem *problems; /* malloc'd: the first REBUILD_PROBLEMS_MAX problems, as found
                                  (rebuild_counts_clear frees them) */
    size_t nproblems;
} rebuild_counts;

void rebuild_counts_clear(rebuild_counts *c);

/*
 * Rebuilds into fresh (normally a new, empty catalog) what storage holds under prefix, a listing
 * prefix relative to the storage's own ("" for everything, "prod/" for one environment). Fills
 * *out (rebuild_counts_clear it after, whatever the result). Problems with single backups are
 * counted, listed and logged, not errors; an error is returned only when storage cannot be listed
 * or the catalog cannot be written (then what was imported so far stays).
 */
int rebuild_catalog(storage *st, const char *prefix, catalog *fresh, rebuild_counts *out,
                    pgs_error *e);

#endif
