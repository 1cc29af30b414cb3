/*
 * pg_dump's custom archive format (-Fc), read as a stream: the header and the table of contents
 * (TOC), then the data blocks in the order pg_dump wrote them. A dump written through a pipe (how
 * pgship dumps: pg_dump -Fc -Z0 | the archive) has no data offsets in its TOC, so pg_restore -j
 * cannot seek to a table's data and would load one table after another. The agent's restore
 * reads the blocks' boundaries here as the dump arrives and loads several tables at once
 * (agent/loader.c), each from its own block in the spool file.
 *
 * The format is pg_dump's (src/bin/pg_dump/pg_backup_archiver.c and pg_backup_custom.c in
 * PostgreSQL): only archive versions 1.12 to 1.16 (pg_dump 9.x to 17) are read; anything else is
 * PGS_EVERSION, and the caller falls back to pg_restore alone. Every length is bounded: a string
 * by PGC_STR_MAX, the TOC by the toc_max given to pgc_reader_new, an integer by its int_size (at
 * most 8 bytes). Nothing here executes or trusts what it reads; it only finds where things are.
 *
 *   header:  "PGDMP" vmaj vmin vrev int_size off_size format(1 = custom)
 *            compression (>= 1.15: one byte, the algorithm; else an int, the gzip level)
 *            creation time (7 ints), database name, server version, pg_dump version (strings)
 *   TOC:     count (int), then per entry: dump id (int), had dumper (int), table oid and oid
 *            (strings), tag, desc (strings), section (int), defn, drop statement, copy
 *            statement, namespace, tablespace, table access method (>= 1.14), relkind
 *            (>= 1.16, an int), owner, "with oids" (strings), dependencies (strings until a
 *            NULL string), then the custom format's data state (one byte) and offset
 *            (off_size bytes)
 *   blocks:  type (one byte: 1 data, 3 blobs), dump id (int), then
 *            data:  chunks of (length int, bytes) until a length of 0
 *            blobs: (oid int, chunks until a length of 0) until an oid of 0
 *   int:     a sign byte (0 or 1), then int_size bytes, least significant first
 *   string:  a length int (-1: NULL), then that many bytes
 */
#ifndef PGSHIP_AGENT_PGCUSTOM_H
#define PGSHIP_AGENT_PGCUSTOM_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define PGC_STR_MAX (64u << 20) /* one string of the TOC (a function's body can be large) */
#define PGC_ENTRIES_MAX 10000000u
/* A data chunk: pg_dump writes one per row (-Z0) with an int length, so a row of any legal size
 * (up to 1 GB a field) is one chunk. Chunks are streamed, never held. */
#define PGC_CHUNK_MAX ((int64_t)INT32_MAX)

/* teSection in pg_dump */
enum { PGC_SECTION_NONE = 1, PGC_SECTION_PRE_DATA = 2, PGC_SECTION_DATA = 3, PGC_SECTION_POST_DATA = 4 };
/* block types */
enum { PGC_BLK_DATA = 1, PGC_BLK_BLOBS = 3 };

typedef struct pgc_entry {
    int dump_id;
    int section;    /* PGC_SECTION_* */
    int has_data;   /* the data state is not "no data": a block with this dump id follows */
    char *desc;     /* "TABLE DATA", "SEQUENCE SET", "BLOBS", "ENCODING", "TABLE", ... */
    char *tag;      /* the object's name ("" when none) */
    char *nspace;   /* its schema ("" when none) */
    char *owner;    /* "" when none */
    char *defn;     /* e.g. "SET client_encoding = 'UTF8';\n" for ENCODING ("" when none) */
    char *copy_stmt; /* "COPY public.t (a, b) FROM stdin;\n" for TABLE DATA ("" when none) */
} pgc_entry;

typedef struct pgc_toc {
    int vmaj, vmin, vrev;
    int int_size, off_size;
    int compressed;          /* data chunks are compressed (not -Z0): not COPY text as they are */
    char *dbname, *server_version, *dump_version;
    size_t nentries;
    pgc_entry *entries;      /* in TOC order */
    uint64_t toc_end;        /* offset in the stream of the first byte after the TOC */
} pgc_toc;

/* The entry with this dump id, or NULL (binary search). Only for a toc handed out by a reader
 * (on_toc, pgc_reader_toc): the index lives in the reader. */
const pgc_entry *pgc_toc_find(const pgc_toc *toc, int dump_id);

/* What a pgc_reader reports; offsets count from the first byte of the stream. A nonzero return
 * from a hook stops pgc_reader_feed with that code (the hook sets e). Every hook may be NULL. */
typedef struct pgc_hooks {
    /* once, when the header and the whole TOC have been read; toc stays valid until
     * pgc_reader_free */
    int (*on_toc)(void *arg, const pgc_toc *toc, pgs_error *e);
    /* a block begins: start is the offset of its type byte */
    int (*on_block)(void *arg, int type, int dump_id, uint64_t start, pgs_error *e);
    /* the block's terminator has been read: end is the offset just past it */
    int (*on_block_end)(void *arg, int dump_id, uint64_t end, pgs_error *e);
    void *arg;
} pgc_hooks;

typedef struct pgc_reader pgc_reader;

/* A reader for one stream. toc_max bounds the bytes of header + TOC it holds (PGS_ELIMIT
 * past it). The hooks are copied. Returns 0 or PGS_ENOMEM. */
int pgc_reader_new(pgc_reader **out, size_t toc_max, const pgc_hooks *hooks);
/* The next len bytes of the stream, any split. Returns 0, a hook's code, or: PGS_EFORMAT (not a
 * custom archive, or malformed), PGS_EVERSION (an archive version outside 1.12..1.16),
 * PGS_ELIMIT (a bound above), PGS_ENOMEM. After an error every further call returns it again. */
int pgc_reader_feed(pgc_reader *r, const void *buf, size_t len, pgs_error *e);
/* The stream ended: 0 when it ended between blocks (after the TOC), else PGS_ETRUNC. */
int pgc_reader_finish(pgc_reader *r, pgs_error *e);
/* The TOC once read (NULL before). */
const pgc_toc *pgc_reader_toc(const pgc_reader *r);
void pgc_reader_free(pgc_reader *r);

/*
 * One data block's payload, its chunk framing taken off: the COPY text of a TABLE DATA block
 * when the archive is not compressed. Feed it the block's bytes from its type byte on (any
 * split); it calls emit for the payload bytes and stops at the terminator.
 */
typedef struct pgc_payload {
    int int_size;
    int state;       /* private */
    uint64_t left;   /* private: bytes left in the current chunk */
    uint8_t ibuf[9]; /* private: an int being read */
    int ilen;        /* private */
    int dump_id;     /* the block's dump id, once read (-1 before) */
    int done;        /* the terminator has been read */
} pgc_payload;

/* Only PGC_BLK_DATA blocks (blobs are left to pg_restore). */
void pgc_payload_init(pgc_payload *p, int int_size);
/* Consumes bytes of buf up to the block's end and returns how many (fewer than len only when the
 * block ended inside buf: p->done is then set), or a negative code: PGS_EFORMAT (not a data
 * block, a negative length), PGS_ELIMIT (a chunk longer than PGC_CHUNK_MAX), or emit's
 * return (emit returns 0 or a negative code). A TABLE DATA payload ends with pg_dump's own
 * end-of-data line "\\.", which COPY FROM STDIN accepts. */
int64_t pgc_payload_feed(pgc_payload *p, const void *buf, size_t len,
                         int (*emit)(void *arg, const void *data, size_t n, pgs_error *e),
                         void *arg, pgs_error *e);

#endif
