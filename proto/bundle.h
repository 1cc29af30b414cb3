/*
 * The archive's inner layer: a pax tar (written and read by libarchive), zstd-compressed, whose
 * bytes go into (or come out of) the envelope. Writing compresses with libzstd (for its job size,
 * see docs/decisions.md); reading decompresses with libarchive's zstd filter. The members, in order (docs/archive-format.md):
 *
 *   manifest.json        what was dumped, how, and for whom (bundle_name_kind: BUNDLE_MANIFEST)
 *   globals.sql          optional, pg_dumpall --globals-only
 *   dump/part-000001...  --format custom: pg_dump's stream cut into fixed-size members
 *   dump/<file>          --format directory: pg_dump's directory as it was written
 *   end.json             facts known only at the end (end time, sizes)
 *   SHA256SUMS           sha256sum(1)-compatible digests of every member above, in order
 *
 * The reader accepts exactly that shape, rejects anything else by name (paths, types, order,
 * duplicates, sizes), and checks every member against SHA256SUMS and the envelope against its
 * final tag. Both sides keep the running SHA256SUMS lines in an unlinked temporary file, so
 * memory does not grow with the number of members.
 */
#ifndef PGSHIP_PROTO_BUNDLE_H
#define PGSHIP_PROTO_BUNDLE_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "proto/envelope.h"

#define BUNDLE_MANIFEST "manifest.json"
#define BUNDLE_GLOBALS "globals.sql"
#define BUNDLE_END "end.json"
#define BUNDLE_SUMS "SHA256SUMS"
#define BUNDLE_PART_FMT "dump/part-%06u"
#define BUNDLE_MANIFEST_MAX (1u << 20)
#define BUNDLE_END_MAX (64u << 10)
#define BUNDLE_NAME_MAX 160
#define BUNDLE_PARTS_MAX 99999999u
#define BUNDLE_ZSTD_JOB_DEFAULT (4u << 20)
#define BUNDLE_ZSTD_JOB_MIN (512u << 10)
#define BUNDLE_ZSTD_JOB_MAX (64u << 20)
#define BUNDLE_SUMS_LINE_MAX (SHA256_HEX_LEN + 2 + BUNDLE_NAME_MAX + 1)

enum bundle_kind {
    BUNDLE_K_INVALID = 0,
    BUNDLE_K_MANIFEST,
    BUNDLE_K_GLOBALS,
    BUNDLE_K_PART,
    BUNDLE_K_DUMPFILE,
    BUNDLE_K_END,
    BUNDLE_K_SUMS,
};

/* Classifies a member name; for parts sets *part to its number. Pure; used by both sides. */
enum bundle_kind bundle_name_kind(const char *name, uint32_t *part);

typedef struct bundle_writer bundle_writer;

typedef struct bundle_writer_opts {
    const pgs_pubkey *rcpts;
    size_t nrcpts;
    uint32_t chunk_size;  /* envelope chunk size; 0 for the default */
    int zstd_level;       /* 1..19 */
    int zstd_threads;     /* 0 = compress in the calling thread */
    uint32_t zstd_job_size; /* with threads: bytes per zstd job; 0 for the default */
    envelope_sink_fn sink;
    void *sink_arg;
} bundle_writer_opts;

int bundle_writer_new(bundle_writer **out, const bundle_writer_opts *o, pgs_error *e);
/* A whole member from memory. */
int bundle_writer_add(bundle_writer *w, const char *name, const void *data, size_t len,
                      pgs_error *e);
/* A member streamed in pieces: begin with its exact size, then data, then end. */
int bundle_writer_begin(bundle_writer *w, const char *name, uint64_t size, pgs_error *e);
int bundle_writer_data(bundle_writer *w, const void *buf, size_t len, pgs_error *e);
int bundle_writer_end(bundle_writer *w, pgs_error *e);
/* Appends SHA256SUMS, ends the tar and the zstd frame, and writes the envelope's final chunk. */
int bundle_writer_finish(bundle_writer *w, pgs_error *e);
/* Member bytes given so far (before compression). */
uint64_t bundle_writer_input_bytes(const bundle_writer *w);
void bundle_writer_free(bundle_writer *w);

typedef struct bundle_reader bundle_reader;

typedef struct bundle_member {
    char name[BUNDLE_NAME_MAX + 1];
    enum bundle_kind kind;
    uint32_t part;
    uint64_t size;
} bundle_member;

/* Reads the archive behind an unlocked envelope reader (which stays owned by the caller). */
int bundle_reader_new(bundle_reader **out, envelope_reader *env, pgs_error *e);
/* 1 with *m set, or 0 after SHA256SUMS matched every member and the envelope ended cleanly.
 * Unread data of the previous member is read (and hashed) first. */
int bundle_reader_next(bundle_reader *r, bundle_member *m, pgs_error *e);
/* Data of the current member: the count (0 at its end) or a negative code. */
ssize_t bundle_reader_read(bundle_reader *r, void *buf, size_t len, pgs_error *e);
void bundle_reader_free(bundle_reader *r);

/* Writes the decompressed tar stream behind an unlocked envelope to sink (for `decrypt -o`). */
int bundle_decompress(envelope_reader *env, envelope_sink_fn sink, void *arg, pgs_error *e);

#endif
