/*
 * Unpacking an archive into a directory, every checksum verified: `pgship decrypt --extract` and
 * the agent's restore both use it, so there is one piece of code that writes what an archive
 * holds onto a disk.
 *
 * It never trusts a path from the archive: member names are checked by the bundle reader
 * (proto/bundle.c), and files are created with O_EXCL|O_NOFOLLOW under the directory only. The
 * custom format's parts are joined into one DIR/dump.pgdump, which pg_restore -j can seek in;
 * the directory format lands in DIR/dump/ as pg_dump wrote it. On any failure, what was created
 * is removed (the whole directory when extraction created it).
 *
 *   DIR/manifest.json, DIR/end.json         as in the archive
 *   DIR/globals.sql                         when dumped with --globals
 *   DIR/dump.pgdump  or  DIR/dump/...       the dump, ready for pg_restore
 */
#ifndef PGSHIP_PROTO_EXTRACT_H
#define PGSHIP_PROTO_EXTRACT_H

#include <jansson.h>
#include <stdint.h>

#include "common/error.h"
#include "proto/envelope.h"
#include "proto/manifest.h"

#define EXTRACT_CUSTOM_FILE "dump.pgdump"
#define EXTRACT_DIRECTORY "dump"

/* What an archive held; extract_info_clear releases it. */
typedef struct extract_info {
    manifest man;          /* manifest.json, decoded */
    json_t *manifest_json; /* manifest.json as JSON (owned), for reports */
    manifest_end end;      /* end.json, decoded */
    uint64_t members;      /* every member, SHA256SUMS excepted */
    uint64_t dump_bytes;   /* of the dump members and globals.sql */
    uint64_t parts, files; /* custom parts, directory files */
} extract_info;

/* flags of extract_archive */
#define EXTRACT_DURABLE 1 /* fsync every file and the directory before returning */

/*
 * Reads the archive behind env (unlocked; it stays the caller's) to its verified end. With dir
 * set, writes it out there: dir is created (mode 0700) or must be an empty directory. Returns 0
 * with *info filled, or a negative code with e saying why and nothing of ours left in dir. Stops
 * with PGS_EINTR when common/spawn.h's stop was requested. info is filled in both cases and must
 * be cleared. Without EXTRACT_DURABLE (a restore's spool, read at once and then removed) nothing
 * is fsynced: the bytes are read back from the page cache.
 */
int extract_archive(envelope_reader *env, const char *dir, int flags, extract_info *info,
                    pgs_error *e);

/*
 * For a reader that consumes the dump while it is being extracted (the agent's restore feeds a
 * custom-format dump to pg_restore as it arrives). Both calls come from inside
 * extract_archive_hooks, in its thread; a nonzero return stops the extraction with that code
 * (the hook sets e). The bytes given to on_dump are NOT verified yet: SHA256SUMS and end.json
 * come last. Whoever consumes them must be able to throw away everything it did with them when
 * extract_archive_hooks then fails.
 */
typedef struct extract_hooks {
    /* Once, when manifest.json is decoded (info->man is set), before any dump member. */
    int (*on_manifest)(void *arg, const extract_info *info, pgs_error *e);
    /* The custom format's dump, in order, as it is appended to EXTRACT_CUSTOM_FILE. */
    int (*on_dump)(void *arg, const char *buf, size_t len, pgs_error *e);
    void *arg;
} extract_hooks;

/* extract_archive with hooks (NULL: none). */
int extract_archive_hooks(envelope_reader *env, const char *dir, int flags,
                          const extract_hooks *hooks, extract_info *info, pgs_error *e);

/* The dump's name inside dir for pg_restore: EXTRACT_CUSTOM_FILE or EXTRACT_DIRECTORY. */
const char *extract_dump_name(const extract_info *info);

void extract_info_clear(extract_info *info);

#endif
