/*
 * One dump of one database into one archive: the agent's core job, run by `pgship-agent dump`
 * (and later by the daemon for shipped backups).
 */
#ifndef PGSHIP_AGENT_DUMP_H
#define PGSHIP_AGENT_DUMP_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "proto/envelope.h"

#define DUMP_PART_SIZE_DEFAULT (4u << 20)
#define DUMP_PART_SIZE_MIN (64u << 10)
#define DUMP_PART_SIZE_MAX (1u << 30)
#define DUMP_PATTERNS_MAX 256

typedef struct strlist {
    const char *v[DUMP_PATTERNS_MAX];
    size_t n;
} strlist;

typedef struct dump_opts {
    const char *conninfo;   /* never logged: it may hold a password */
    strlist recipients;     /* public key files */
    const char *output;     /* a path, or "-" for stdout; or NULL with sink set */
    /* Instead of output: every byte of the archive goes to sink, in order (the agent daemon sends
     * them as DATA frames). A non-zero return stops the dump with that code. */
    envelope_sink_fn sink;
    void *sink_arg;
    int force;
    int directory;          /* 0: pg_dump -Fc streamed; 1: pg_dump -Fd -j N spooled */
    int jobs;
    strlist schemas, exclude_schemas, tables, exclude_tables;
    int globals;
    int compress_level;
    int compress_threads;   /* -1: one per CPU, at most 8 */
    uint32_t compress_job_size; /* zstd job size with threads; 0: the default (4 MiB) */
    uint32_t part_size;
    uint32_t chunk_size;
    const char *pg_bindir;
    const char *spool_dir;  /* for --format directory; default $TMPDIR or /tmp */
    int progress;           /* -1: when stderr is a terminal */
    int json;               /* summary as JSON on stdout */
} dump_opts;

/* What a finished dump produced; the caller frees manifest_json. */
typedef struct dump_result {
    uint64_t dump_bytes;    /* pg_dump's output, plus globals */
    uint64_t archive_bytes; /* the archive as written */
    uint8_t sha256[32];     /* of the archive as written */
    char *manifest_json;    /* the archive's manifest.json */
} dump_result;

void dump_opts_init(dump_opts *o);
/* result may be NULL. */
int dump_run(const dump_opts *o, dump_result *result, pgs_error *e);

#endif
