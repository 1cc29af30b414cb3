/*
 * pg_dump's custom archive format read as a stream (see pgcustom.h for the layout).
 *
 * The reader is a byte-level state machine: it never holds the stream, only the token being
 * read (an integer's at most 9 bytes, or a TOC string it keeps). Each call to pgc_reader_feed
 * carries on from the exact byte where the previous call stopped, so feeding a dump one byte at
 * a time costs the same as feeding it whole, and a TOC of many entries is never re-parsed.
 * Strings the caller does not need (drop statements, OIDs, tablespaces, dependencies) are
 * counted past without being stored; the kept ones grow with the bytes that actually arrive, so
 * a forged length cannot make us allocate before the stream delivers the bytes. Until the TOC
 * ends every byte counts against toc_max; after it, the reader only walks the blocks' framing
 * (type, dump id, chunk lengths) and skips their contents: its memory stays constant whatever
 * the dump's size.
 *
 * The format has no trailer: a stream cut exactly between two blocks looks complete here.
 * Whoever needs every block (the loader) compares the blocks seen with the TOC's has_data.
 */
#include "agent/pgcustom.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Archive versions read here: 1.12 (pg_dump 9.0) to 1.16 (pg_dump 17). The fields that depend
 * on the version inside that range: 1.14 added the table access method to TOC entries, 1.15
 * replaced the header's gzip level (an int) with a compression algorithm (one byte), 1.16 added
 * the relkind (an int) to TOC entries (and BLOB METADATA entries and several BLOBS blocks,
 * which need nothing new here). */
#define PGC_VMIN_LOW 12
#define PGC_VMIN_HIGH 16
#define PGC_FORMAT_CUSTOM 1
#define PGC_INT_MAX_SIZE 8 /* bytes of an integer's magnitude we accept (pg_dump writes 4) */
#define PGC_OFF_MAX_SIZE 8
#define PGC_COMPRESS_ALGO_MAX 3 /* none, gzip, lz4, zstd */

/* The custom format's data state of a TOC entry (the flag byte before its offset). */
enum { PGC_OFFSET_POS_NOT_SET = 1, PGC_OFFSET_POS_SET = 2, PGC_OFFSET_NO_DATA = 3 };

/* What the reader is reading. The header's first 11 bytes are read one by one (H_FIXED), the
 * rest field by field; each field is a byte, an integer, a string, or bytes skipped. */
enum field {
    H_FIXED,        /* "PGDMP" vmaj vmin vrev int_size off_size format */
    H_COMPRESS_ALG, /* >= 1.15: byte */
    H_COMPRESS_LVL, /* < 1.15: int */
    H_TIME,         /* 7 ints */
    H_DBNAME,
    H_SERVER_VERSION,
    H_DUMP_VERSION,
    T_COUNT,
    E_DUMP_ID,
    E_HAD_DUMPER,
    E_TABLEOID,
    E_OID,
    E_TAG,
    E_DESC,
    E_SECTION,
    E_DEFN,
    E_DROP,
    E_COPY,
    E_NSPACE,
    E_TABLESPACE,
    E_TABLEAM, /* >= 1.14 */
    E_RELKIND, /* >= 1.16: int */
    E_OWNER,
    E_WITH_OIDS,
    E_DEP, /* repeated until a NULL string */
    E_DATA_STATE,
    E_OFFSET,
    B_TYPE, /* between blocks */
    B_ID,
    B_LEN,    /* a data chunk's length */
    B_DATA,   /* its bytes, skipped */
    B_OID,    /* a large object's OID in a blobs block */
    B_LO_LEN, /* a chunk of that object */
    B_LO_DATA,
};

enum kind { K_RAW, K_BYTE, K_INT, K_STR, K_SKIP };

static enum kind field_kind(enum field f)
{
    switch (f) {
    case H_FIXED:
        return K_RAW;
    case H_COMPRESS_ALG:
    case E_DATA_STATE:
    case B_TYPE:
        return K_BYTE;
    case H_COMPRESS_LVL:
    case H_TIME:
    case T_COUNT:
    case E_DUMP_ID:
    case E_HAD_DUMPER:
    case E_SECTION:
    case E_RELKIND:
    case B_ID:
    case B_LEN:
    case B_OID:
    case B_LO_LEN:
        return K_INT;
    case E_OFFSET:
    case B_DATA:
    case B_LO_DATA:
        return K_SKIP;
    default:
        return K_STR;
    }
}

/* One line of the TOC's index by dump id. */
typedef struct pgc_byid {
    int dump_id;
    size_t index; /* in toc.entries */
} pgc_byid;

struct pgc_reader {
    pgc_toc toc;    /* pgc_toc_find finds the index below from a pointer to this */
    pgc_byid *byid; /* the entries sorted by dump id */
    pgc_hooks hooks;
    size_t toc_max;
    int toc_done;
    int err; /* sticky: the first error, returned again by every later call */
    char errmsg[sizeof(((pgs_error *)0)->msg)];

    uint64_t off; /* bytes consumed so far */
    enum field field;
    int counter; /* H_FIXED: bytes read; H_TIME: ints read */
    uint8_t fixed[11];
    int vmin;

    uint8_t ibuf[1 + PGC_INT_MAX_SIZE]; /* the integer being read: sign, magnitude */
    int ilen;

    int in_body;   /* K_STR: the length has been read, its bytes are coming */
    uint64_t left; /* K_STR body, K_SKIP: bytes still to come */
    char **dst;    /* where the string being read goes (NULL: skipped) */
    char *sbuf;
    size_t slen, scap;

    size_t count; /* entries the TOC announced */
    size_t cap;   /* of toc.entries */
    pgc_entry cur;

    int blk_type;
    int blk_id;
    uint64_t blk_start;
};

/* ---- integers ---- */

/*
 * One byte of an integer: a sign byte (0 or 1) then int_size bytes, least significant first.
 * Returns 0 while incomplete, 1 with *out set once complete, or PGS_EFORMAT. pg_dump writes a
 * C int, so magnitudes above INT64_MAX can only be forged; they are refused with the rest.
 */
static int int_byte(uint8_t *ibuf, int *ilen, int int_size, uint8_t b, int64_t *out)
{
    if (*ilen == 0 && b > 1)
        return PGS_EFORMAT;
    ibuf[(*ilen)++] = b;
    if (*ilen < 1 + int_size)
        return 0;
    uint64_t mag = 0;
    for (int i = int_size; i >= 1; i--)
        mag = (mag << 8) | ibuf[i];
    int neg = ibuf[0] == 1;
    *ilen = 0;
    if (mag > (uint64_t)INT64_MAX)
        return PGS_EFORMAT;
    *out = neg ? -(int64_t)mag : (int64_t)mag;
    return 1;
}

/* ---- the reader's errors ---- */

static int rfail(pgc_reader *r, pgs_error *e, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int rfail(pgc_reader *r, pgs_error *e, int code, const char *fmt, ...)
{
    char msg[sizeof(r->errmsg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(r->errmsg, sizeof(r->errmsg), "custom archive: %s (near byte %llu)", msg,
             (unsigned long long)r->off);
    r->err = code;
    return pgs_fail(e, code, "%s", r->errmsg);
}

/* A hook's nonzero return stops the reader for good: the caller cannot know how far into its
 * buffer we had got, so it cannot resume. */
static int hook_failed(pgc_reader *r, pgs_error *e, int rc)
{
    r->err = rc;
    if (e != NULL && e->msg[0] != '\0')
        snprintf(r->errmsg, sizeof(r->errmsg), "%s", e->msg);
    else
        snprintf(r->errmsg, sizeof(r->errmsg), "custom archive: stopped by its caller (%d)", rc);
    return rc;
}

/* ---- the TOC ---- */

static void entry_free(pgc_entry *en)
{
    free(en->desc);
    free(en->tag);
    free(en->nspace);
    free(en->owner);
    free(en->defn);
    free(en->copy_stmt);
    memset(en, 0, sizeof(*en));
}

static int cmp_by_id(const void *a, const void *b)
{
    int x = ((const pgc_byid *)a)->dump_id, y = ((const pgc_byid *)b)->dump_id;
    return (x > y) - (x < y);
}

/* The field after f in a TOC entry, skipping those this version does not have. */
static enum field entry_next(const pgc_reader *r, enum field f)
{
    enum field n = (enum field)(f + 1);
    if (n == E_TABLEAM && r->vmin < 14)
        n = E_RELKIND;
    if (n == E_RELKIND && r->vmin < 16)
        n = E_OWNER;
    return n;
}

/* Where entry field f's string goes, or NULL when it is skipped. */
static char **entry_slot(pgc_reader *r, enum field f)
{
    switch (f) {
    case H_DBNAME:
        return &r->toc.dbname;
    case H_SERVER_VERSION:
        return &r->toc.server_version;
    case H_DUMP_VERSION:
        return &r->toc.dump_version;
    case E_TAG:
        return &r->cur.tag;
    case E_DESC:
        return &r->cur.desc;
    case E_DEFN:
        return &r->cur.defn;
    case E_COPY:
        return &r->cur.copy_stmt;
    case E_NSPACE:
        return &r->cur.nspace;
    case E_OWNER:
        return &r->cur.owner;
    default:
        return NULL;
    }
}

static void set_field(pgc_reader *r, enum field f)
{
    r->field = f;
    r->in_body = 0;
    r->ilen = 0;
}

/* The TOC's last entry has been read: index it and tell the caller. */
static int toc_complete(pgc_reader *r, pgs_error *e)
{
    char **hs[] = {&r->toc.dbname, &r->toc.server_version, &r->toc.dump_version};
    for (size_t i = 0; i < sizeof(hs) / sizeof(hs[0]); i++)
        if (*hs[i] == NULL && (*hs[i] = calloc(1, 1)) == NULL)
            return rfail(r, e, PGS_ENOMEM, "no memory for the header");
    if (r->toc.nentries > 0) {
        r->byid = malloc(r->toc.nentries * sizeof(*r->byid));
        if (r->byid == NULL)
            return rfail(r, e, PGS_ENOMEM, "no memory for the toc's index");
        for (size_t i = 0; i < r->toc.nentries; i++)
            r->byid[i] = (pgc_byid){r->toc.entries[i].dump_id, i};
        qsort(r->byid, r->toc.nentries, sizeof(*r->byid), cmp_by_id);
        for (size_t i = 1; i < r->toc.nentries; i++)
            if (r->byid[i].dump_id == r->byid[i - 1].dump_id)
                return rfail(r, e, PGS_EFORMAT, "dump id %d appears twice in the toc",
                             r->byid[i].dump_id);
    }
    r->toc_done = 1;
    r->toc.toc_end = r->off;
    set_field(r, B_TYPE);
    if (r->hooks.on_toc != NULL) {
        int rc = r->hooks.on_toc(r->hooks.arg, &r->toc, e);
        if (rc != 0)
            return hook_failed(r, e, rc);
    }
    return 0;
}

/* The current entry is complete: move it into the TOC. */
static int entry_complete(pgc_reader *r, pgs_error *e)
{
    static const size_t s_off[] = {offsetof(pgc_entry, desc),   offsetof(pgc_entry, tag),
                                   offsetof(pgc_entry, nspace), offsetof(pgc_entry, owner),
                                   offsetof(pgc_entry, defn),   offsetof(pgc_entry, copy_stmt)};
    /* Strings that were NULL in the archive read as "" (the header's promise). */
    for (size_t i = 0; i < sizeof(s_off) / sizeof(s_off[0]); i++) {
        char **s = (char **)(void *)((char *)&r->cur + s_off[i]);
        if (*s == NULL && (*s = calloc(1, 1)) == NULL)
            return rfail(r, e, PGS_ENOMEM, "no memory for a toc entry");
    }
    if (r->toc.nentries == r->cap) {
        /* Grow with the entries that arrive, not with the count the TOC announces. */
        size_t ncap = r->cap ? r->cap * 2 : 64;
        if (ncap > r->count)
            ncap = r->count;
        pgc_entry *n = realloc(r->toc.entries, ncap * sizeof(*n));
        if (n == NULL)
            return rfail(r, e, PGS_ENOMEM, "no memory for %zu toc entries", ncap);
        r->toc.entries = n;
        r->cap = ncap;
    }
    r->toc.entries[r->toc.nentries++] = r->cur;
    memset(&r->cur, 0, sizeof(r->cur));
    if (r->toc.nentries == r->count)
        return toc_complete(r, e);
    set_field(r, E_DUMP_ID);
    return 0;
}

/* ---- fields ---- */

static int block_end(pgc_reader *r, pgs_error *e)
{
    set_field(r, B_TYPE);
    if (r->hooks.on_block_end != NULL) {
        int rc = r->hooks.on_block_end(r->hooks.arg, r->blk_id, r->off, e);
        if (rc != 0)
            return hook_failed(r, e, rc);
    }
    return 0;
}

/* The header's fixed bytes, checked as soon as each arrives so that a stream that is not a
 * custom archive is refused at its first wrong byte. */
static int fixed_byte(pgc_reader *r, uint8_t b, pgs_error *e)
{
    int i = r->counter++;
    r->fixed[i] = b;
    if (i < 5 && b != (uint8_t) "PGDMP"[i])
        return rfail(r, e, PGS_EFORMAT, "not a pg_dump custom archive (no PGDMP magic)");
    if (i == 6) {
        int vmaj = r->fixed[5], vmin = r->fixed[6];
        if (vmaj != 1 || vmin < PGC_VMIN_LOW || vmin > PGC_VMIN_HIGH)
            return rfail(r, e, PGS_EVERSION,
                         "archive version %d.%d is not supported (only 1.%d to 1.%d)", vmaj, vmin,
                         PGC_VMIN_LOW, PGC_VMIN_HIGH);
        r->vmin = vmin;
        r->toc.vmaj = vmaj;
        r->toc.vmin = vmin;
    } else if (i == 7) {
        r->toc.vrev = b;
    } else if (i == 8) {
        if (b < 1 || b > PGC_INT_MAX_SIZE)
            return rfail(r, e, PGS_EFORMAT, "integer size %d is not 1 to %d", b, PGC_INT_MAX_SIZE);
        r->toc.int_size = b;
    } else if (i == 9) {
        if (b < 1 || b > PGC_OFF_MAX_SIZE)
            return rfail(r, e, PGS_EFORMAT, "offset size %d is not 1 to %d", b, PGC_OFF_MAX_SIZE);
        r->toc.off_size = b;
    } else if (i == 10) {
        if (b != PGC_FORMAT_CUSTOM)
            return rfail(r, e, PGS_EFORMAT, "archive format %d is not custom (1)", b);
        set_field(r, r->vmin >= 15 ? H_COMPRESS_ALG : H_COMPRESS_LVL);
        r->counter = 0;
    }
    return 0;
}

static int byte_field(pgc_reader *r, uint8_t b, pgs_error *e)
{
    switch (r->field) {
    case H_COMPRESS_ALG:
        if (b > PGC_COMPRESS_ALGO_MAX)
            return rfail(r, e, PGS_EFORMAT, "unknown compression algorithm %d", b);
        r->toc.compressed = b != 0;
        set_field(r, H_TIME);
        return 0;
    case E_DATA_STATE:
        if (b != PGC_OFFSET_POS_NOT_SET && b != PGC_OFFSET_POS_SET && b != PGC_OFFSET_NO_DATA)
            return rfail(r, e, PGS_EFORMAT, "toc entry %d has a bad data state %d", r->cur.dump_id,
                         b);
        r->cur.has_data = b != PGC_OFFSET_NO_DATA;
        set_field(r, E_OFFSET);
        r->left = (uint64_t)r->toc.off_size;
        return 0;
    case B_TYPE:
        if (b != PGC_BLK_DATA && b != PGC_BLK_BLOBS)
            return rfail(r, e, PGS_EFORMAT, "bad data block type %d", b);
        r->blk_type = b;
        r->blk_start = r->off - 1;
        set_field(r, B_ID);
        return 0;
    default:
        abort(); /* field_kind and this switch disagree */
    }
}

/* A chunk's length in a data or blobs block: next is its bytes, or the end of the object. */
static int chunk_len(pgc_reader *r, int64_t v, enum field body, pgs_error *e)
{
    if (v < 0)
        return rfail(r, e, PGS_EFORMAT, "block %d has a negative chunk length", r->blk_id);
    if (v > (int64_t)PGC_CHUNK_MAX)
        return rfail(r, e, PGS_ELIMIT, "block %d has a chunk of %lld bytes (limit %lld)", r->blk_id,
                     (long long)v, (long long)PGC_CHUNK_MAX);
    set_field(r, body);
    r->left = (uint64_t)v;
    return 0;
}

static int int_field(pgc_reader *r, int64_t v, pgs_error *e)
{
    switch (r->field) {
    case H_COMPRESS_LVL:
        if (v < -1 || v > 9)
            return rfail(r, e, PGS_EFORMAT, "bad compression level %lld", (long long)v);
        r->toc.compressed = v != 0; /* -1 is zlib's default level */
        set_field(r, H_TIME);
        return 0;
    case H_TIME:
        if (++r->counter == 7)
            set_field(r, H_DBNAME);
        return 0;
    case T_COUNT:
        if (v < 0)
            return rfail(r, e, PGS_EFORMAT, "negative toc entry count");
        if (v > (int64_t)PGC_ENTRIES_MAX)
            return rfail(r, e, PGS_ELIMIT, "%lld toc entries (limit %u)", (long long)v,
                         PGC_ENTRIES_MAX);
        r->count = (size_t)v;
        if (r->count == 0)
            return toc_complete(r, e);
        set_field(r, E_DUMP_ID);
        return 0;
    case E_DUMP_ID:
        if (v <= 0 || v > INT_MAX)
            return rfail(r, e, PGS_EFORMAT, "toc entry %zu has a bad dump id %lld", r->toc.nentries,
                         (long long)v);
        r->cur.dump_id = (int)v;
        set_field(r, E_HAD_DUMPER);
        return 0;
    case E_HAD_DUMPER:
        set_field(r, E_TABLEOID);
        return 0;
    case E_SECTION:
        if (v < PGC_SECTION_NONE || v > PGC_SECTION_POST_DATA)
            return rfail(r, e, PGS_EFORMAT, "toc entry %d has a bad section %lld", r->cur.dump_id,
                         (long long)v);
        r->cur.section = (int)v;
        set_field(r, E_DEFN);
        return 0;
    case E_RELKIND:
        set_field(r, E_OWNER);
        return 0;
    case B_ID:
        if (v <= 0 || v > INT_MAX)
            return rfail(r, e, PGS_EFORMAT, "data block with a bad dump id %lld", (long long)v);
        r->blk_id = (int)v;
        set_field(r, r->blk_type == PGC_BLK_DATA ? B_LEN : B_OID);
        if (r->hooks.on_block != NULL) {
            int rc = r->hooks.on_block(r->hooks.arg, r->blk_type, r->blk_id, r->blk_start, e);
            if (rc != 0)
                return hook_failed(r, e, rc);
        }
        return 0;
    case B_LEN:
        if (v == 0)
            return block_end(r, e);
        return chunk_len(r, v, B_DATA, e);
    case B_OID:
        /* pg_dump writes an OID through a signed int: OIDs above 2^31 arrive negative. Only 0
         * (no large object has it) ends the block. */
        if (v == 0)
            return block_end(r, e);
        set_field(r, B_LO_LEN);
        return 0;
    case B_LO_LEN:
        if (v == 0) {
            set_field(r, B_OID);
            return 0;
        }
        return chunk_len(r, v, B_LO_DATA, e);
    default:
        abort();
    }
}

/* A string field is complete; is_null: it was a NULL string (length -1). */
static int str_done(pgc_reader *r, int is_null, pgs_error *e)
{
    enum field f = r->field;
    if (r->dst != NULL) {
        if (r->sbuf == NULL && (r->sbuf = calloc(1, 1)) == NULL)
            return rfail(r, e, PGS_ENOMEM, "no memory for a toc string");
        r->sbuf[r->slen] = '\0';
        free(*r->dst);
        *r->dst = r->sbuf;
        r->sbuf = NULL;
        r->slen = r->scap = 0;
        r->dst = NULL;
    }
    switch (f) {
    case H_DBNAME:
    case H_SERVER_VERSION:
        set_field(r, (enum field)(f + 1));
        return 0;
    case H_DUMP_VERSION:
        set_field(r, T_COUNT);
        return 0;
    case E_WITH_OIDS:
        set_field(r, E_DEP);
        return 0;
    case E_DEP:
        /* The dependency list ends with a NULL string. */
        set_field(r, is_null ? E_DATA_STATE : E_DEP);
        return 0;
    default:
        set_field(r, entry_next(r, f));
        return 0;
    }
}

/* A string's length has been read. A NULL string leaves its slot NULL here; the entry (or the
 * TOC, for the header's strings) turns it into "" when complete. */
static int str_len(pgc_reader *r, int64_t v, pgs_error *e)
{
    if (v < -1)
        return rfail(r, e, PGS_EFORMAT, "negative string length %lld", (long long)v);
    if (v > (int64_t)PGC_STR_MAX)
        return rfail(r, e, PGS_ELIMIT, "string of %lld bytes (limit %u)", (long long)v,
                     PGC_STR_MAX);
    /* Refused now rather than after toc_max bytes of it have arrived. */
    if (v > 0 && (uint64_t)v > r->toc_max - r->off)
        return rfail(r, e, PGS_ELIMIT, "a string of %lld bytes would take the toc past %zu bytes",
                     (long long)v, r->toc_max);
    char **slot = entry_slot(r, r->field);
    r->sbuf = NULL;
    r->slen = r->scap = 0;
    r->dst = NULL;
    if (v == -1)
        return str_done(r, 1, e);
    r->dst = slot;
    r->in_body = 1;
    r->left = (uint64_t)v;
    if (v == 0)
        return str_done(r, 0, e);
    return 0;
}

/* Body bytes of a string (kept or skipped) or of a skipped field. Returns bytes taken. */
static int64_t take_bytes(pgc_reader *r, const uint8_t *p, size_t n, pgs_error *e)
{
    size_t take = n < r->left ? n : (size_t)r->left;
    if (r->dst != NULL && take > 0) {
        /* Grow with the bytes that arrive (a forged length allocates nothing ahead). */
        size_t need = r->slen + take + 1;
        if (need > r->scap) {
            size_t ncap = r->scap ? r->scap : 64;
            while (ncap < need)
                ncap *= 2;
            if (ncap > r->slen + r->left + 1)
                ncap = r->slen + (size_t)r->left + 1;
            char *s = realloc(r->sbuf, ncap);
            if (s == NULL)
                return rfail(r, e, PGS_ENOMEM, "no memory for a toc string");
            r->sbuf = s;
            r->scap = ncap;
        }
        memcpy(r->sbuf + r->slen, p, take);
        r->slen += take;
    }
    r->left -= take;
    r->off += take;
    if (r->left > 0)
        return (int64_t)take;
    int rc;
    switch (r->field) {
    case E_OFFSET:
        rc = entry_complete(r, e);
        break;
    case B_DATA:
        set_field(r, B_LEN);
        rc = 0;
        break;
    case B_LO_DATA:
        set_field(r, B_LO_LEN);
        rc = 0;
        break;
    default:
        rc = str_done(r, 0, e);
        break;
    }
    return rc != 0 ? rc : (int64_t)take;
}

/* Consumes at most n (>= 1) bytes at p: one token's worth. Returns bytes taken or an error. */
static int64_t step(pgc_reader *r, const uint8_t *p, size_t n, pgs_error *e)
{
    enum kind k = field_kind(r->field);
    if (k == K_SKIP || (k == K_STR && r->in_body))
        return take_bytes(r, p, n, e);
    uint8_t b = p[0];
    r->off++;
    int rc;
    if (k == K_RAW) {
        rc = fixed_byte(r, b, e);
    } else if (k == K_BYTE) {
        rc = byte_field(r, b, e);
    } else {
        int64_t v = 0;
        rc = int_byte(r->ibuf, &r->ilen, r->toc.int_size, b, &v);
        if (rc < 0)
            return rfail(r, e, PGS_EFORMAT,
                         "bad integer (a sign byte other than 0 or 1, or out of range)");
        if (rc == 1)
            rc = k == K_STR ? str_len(r, v, e) : int_field(r, v, e);
    }
    return rc != 0 ? rc : 1;
}

/* ---- public ---- */

int pgc_reader_new(pgc_reader **out, size_t toc_max, const pgc_hooks *hooks)
{
    *out = NULL;
    pgc_reader *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return PGS_ENOMEM;
    r->toc_max = toc_max;
    if (hooks != NULL)
        r->hooks = *hooks;
    r->field = H_FIXED;
    *out = r;
    return 0;
}

int pgc_reader_feed(pgc_reader *r, const void *buf, size_t len, pgs_error *e)
{
    if (r->err != 0)
        return pgs_fail(e, r->err, "%s", r->errmsg);
    const uint8_t *p = buf;
    size_t i = 0;
    while (i < len) {
        size_t n = len - i;
        if (!r->toc_done) {
            uint64_t room = r->off < r->toc_max ? r->toc_max - r->off : 0;
            if (room == 0)
                return rfail(r, e, PGS_ELIMIT, "header and toc exceed %zu bytes", r->toc_max);
            if (n > room)
                n = (size_t)room;
        }
        int64_t got = step(r, p + i, n, e);
        if (got < 0 || r->err != 0)
            return r->err != 0 ? r->err : (int)got;
        i += (size_t)got;
    }
    return 0;
}

int pgc_reader_finish(pgc_reader *r, pgs_error *e)
{
    if (r->err != 0)
        return pgs_fail(e, r->err, "%s", r->errmsg);
    if (r->toc_done && r->field == B_TYPE)
        return 0;
    if (!r->toc_done)
        return pgs_fail(e, PGS_ETRUNC, "custom archive: ends inside its %s after %llu bytes",
                        r->field <= T_COUNT ? "header" : "toc", (unsigned long long)r->off);
    return pgs_fail(e, PGS_ETRUNC,
                    "custom archive: ends inside the data block of dump id %d after %llu bytes",
                    r->blk_id, (unsigned long long)r->off);
}

const pgc_toc *pgc_reader_toc(const pgc_reader *r)
{
    return r->toc_done ? &r->toc : NULL;
}

void pgc_reader_free(pgc_reader *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->toc.nentries; i++)
        entry_free(&r->toc.entries[i]);
    free(r->toc.entries);
    free(r->toc.dbname);
    free(r->toc.server_version);
    free(r->toc.dump_version);
    entry_free(&r->cur);
    free(r->sbuf);
    free(r->byid);
    free(r);
}

/* The TOC a reader hands out sits inside the reader, next to its index by dump id (the ids in
 * one archive are unique but sparse: pg_dump numbers every object it looked at, and the TOC
 * holds only those it dumped). So toc must be one pgc_reader_toc or on_toc gave. */
const pgc_entry *pgc_toc_find(const pgc_toc *toc, int dump_id)
{
    if (toc == NULL || toc->nentries == 0)
        return NULL;
    const pgc_reader *r =
        (const pgc_reader *)(const void *)((const char *)toc - offsetof(pgc_reader, toc));
    size_t lo = 0, hi = toc->nentries;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->byid[mid].dump_id == dump_id)
            return &toc->entries[r->byid[mid].index];
        if (r->byid[mid].dump_id < dump_id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* ---- one data block's payload ---- */

enum { P_TYPE, P_ID, P_LEN, P_DATA, P_DONE };

void pgc_payload_init(pgc_payload *p, int int_size)
{
    memset(p, 0, sizeof(*p));
    p->int_size = int_size;
    p->state = P_TYPE;
    p->dump_id = -1;
}

static int64_t payload_fail(pgc_payload *p, pgs_error *e, int code, const char *what)
{
    p->state = code; /* negative: sticky */
    return pgs_fail(e, code, "custom archive data block: %s", what);
}

int64_t pgc_payload_feed(pgc_payload *p, const void *buf, size_t len,
                         int (*emit)(void *arg, const void *data, size_t n, pgs_error *e),
                         void *arg, pgs_error *e)
{
    if (p->state < 0)
        return pgs_fail(e, p->state, "custom archive data block: failed before");
    if (p->int_size < 1 || p->int_size > PGC_INT_MAX_SIZE)
        return payload_fail(p, e, PGS_EFORMAT, "bad integer size");
    const uint8_t *b = buf;
    size_t i = 0;
    while (i < len && p->state != P_DONE) {
        if (p->state == P_TYPE) {
            if (b[i++] != PGC_BLK_DATA)
                return payload_fail(p, e, PGS_EFORMAT, "not a data block");
            p->state = P_ID;
            continue;
        }
        if (p->state == P_DATA) {
            size_t take = len - i < p->left ? len - i : (size_t)p->left;
            if (emit != NULL) {
                int rc = emit(arg, b + i, take, e);
                if (rc != 0) {
                    if (rc < 0)
                        p->state = rc;
                    return rc;
                }
            }
            i += take;
            p->left -= take;
            if (p->left == 0)
                p->state = P_LEN;
            continue;
        }
        int64_t v = 0;
        int rc = int_byte(p->ibuf, &p->ilen, p->int_size, b[i++], &v);
        if (rc < 0)
            return payload_fail(p, e, PGS_EFORMAT, "bad integer");
        if (rc == 0)
            continue;
        if (p->state == P_ID) {
            if (v <= 0 || v > INT_MAX)
                return payload_fail(p, e, PGS_EFORMAT, "bad dump id");
            p->dump_id = (int)v;
            p->state = P_LEN;
        } else if (v < 0) {
            return payload_fail(p, e, PGS_EFORMAT, "negative chunk length");
        } else if (v > (int64_t)PGC_CHUNK_MAX) {
            return payload_fail(p, e, PGS_ELIMIT, "chunk longer than the limit");
        } else if (v == 0) {
            p->state = P_DONE;
            p->done = 1;
        } else {
            p->left = (uint64_t)v;
            p->state = P_DATA;
        }
    }
    return (int64_t)i;
}
