/*
 * Tests of the custom archive reader (agent/pgcustom.c) on real dumps of a PostgreSQL 15
 * database (tests/data/pgcustom/: pg_dump -Fc -Z0 through a pipe, the same to a file so that its
 * TOC holds data offsets, and -Fc with gzip; the database has two tables with rows, one of them
 * with newlines and tabs in its text, an empty table, a sequence, a large object, an index and a
 * view; the *.copy files are what COPY ... TO STDOUT gave for each table), and on archives built
 * here for the versions no installed pg_dump writes (1.12 to 1.16) and for hostile input: every
 * split of the stream, truncation at every byte, flipped bytes, forged lengths and counts, wrong
 * magic, unsupported versions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "agent/pgcustom.h"

#ifndef PGC_TEST_DATA
#error "PGC_TEST_DATA (the directory of the test dumps) must be defined"
#endif

/* ---- files ---- */

typedef struct blob {
    uint8_t *data;
    size_t len;
} blob;

static blob load(const char *name)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", PGC_TEST_DATA, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    blob b = {NULL, 0};
    size_t cap = 0;
    for (;;) {
        if (b.len == cap) {
            cap = cap ? cap * 2 : 8192;
            b.data = realloc(b.data, cap);
            assert_non_null(b.data);
        }
        size_t n = fread(b.data + b.len, 1, cap - b.len, f);
        if (n == 0)
            break;
        b.len += n;
    }
    fclose(f);
    return b;
}

/* ---- what the hooks saw ---- */

enum { EV_TOC, EV_BLOCK, EV_END };

typedef struct ev {
    int kind;
    int type;
    int dump_id;
    uint64_t off;
} ev;

typedef struct rec {
    ev v[256];
    size_t n;
    int stop_on; /* EV_* + 1: that hook returns stop_rc */
    int stop_rc;
} rec;

static int rec_add(rec *r, int kind, int type, int id, uint64_t off, pgs_error *e)
{
    if (r->n < sizeof(r->v) / sizeof(r->v[0]))
        r->v[r->n++] = (ev){kind, type, id, off};
    if (r->stop_on == kind + 1)
        return pgs_fail(e, r->stop_rc, "stopped by the test");
    return 0;
}

static int on_toc(void *arg, const pgc_toc *toc, pgs_error *e)
{
    return rec_add(arg, EV_TOC, 0, 0, toc->toc_end, e);
}

static int on_block(void *arg, int type, int dump_id, uint64_t start, pgs_error *e)
{
    return rec_add(arg, EV_BLOCK, type, dump_id, start, e);
}

static int on_block_end(void *arg, int dump_id, uint64_t end, pgs_error *e)
{
    return rec_add(arg, EV_END, 0, dump_id, end, e);
}

/* Feeds data in pieces of step bytes (0: whole) to a new reader; returns feed's first error or
 * finish's result. *out keeps the reader when out is not NULL. */
static int run(const uint8_t *data, size_t len, size_t step, size_t toc_max, rec *r,
               pgc_reader **out, pgs_error *e)
{
    pgc_hooks h = {on_toc, on_block, on_block_end, r};
    pgc_reader *rd = NULL;
    assert_int_equal(pgc_reader_new(&rd, toc_max, &h), 0);
    int rc = 0;
    if (step == 0)
        step = len ? len : 1;
    for (size_t i = 0; i < len && rc == 0; i += step)
        rc = pgc_reader_feed(rd, data + i, len - i < step ? len - i : step, e);
    if (rc == 0)
        rc = pgc_reader_finish(rd, e);
    if (out != NULL)
        *out = rd;
    else
        pgc_reader_free(rd);
    return rc;
}

static void assert_same_toc(const pgc_toc *a, const pgc_toc *b)
{
    assert_int_equal(a->vmaj, b->vmaj);
    assert_int_equal(a->vmin, b->vmin);
    assert_int_equal(a->compressed, b->compressed);
    assert_string_equal(a->dbname, b->dbname);
    assert_int_equal(a->nentries, b->nentries);
    assert_int_equal(a->toc_end, b->toc_end);
    for (size_t i = 0; i < a->nentries; i++) {
        const pgc_entry *x = &a->entries[i], *y = &b->entries[i];
        assert_int_equal(x->dump_id, y->dump_id);
        assert_int_equal(x->section, y->section);
        assert_int_equal(x->has_data, y->has_data);
        assert_string_equal(x->desc, y->desc);
        assert_string_equal(x->tag, y->tag);
        assert_string_equal(x->nspace, y->nspace);
        assert_string_equal(x->owner, y->owner);
        assert_string_equal(x->defn, y->defn);
        assert_string_equal(x->copy_stmt, y->copy_stmt);
    }
}

static const pgc_entry *find_desc(const pgc_toc *toc, const char *desc, const char *tag)
{
    for (size_t i = 0; i < toc->nentries; i++)
        if (strcmp(toc->entries[i].desc, desc) == 0 && strcmp(toc->entries[i].tag, tag) == 0)
            return &toc->entries[i];
    return NULL;
}

/* ---- the real dumps ---- */

static const struct {
    const char *desc, *tag;
    int section, has_data;
} known[] = {
    {"ENCODING", "ENCODING", PGC_SECTION_PRE_DATA, 0},
    {"STDSTRINGS", "STDSTRINGS", PGC_SECTION_PRE_DATA, 0},
    {"SEARCHPATH", "SEARCHPATH", PGC_SECTION_PRE_DATA, 0},
    {"DATABASE", "pgcdemo", PGC_SECTION_PRE_DATA, 0},
    {"TABLE", "items", PGC_SECTION_PRE_DATA, 0},
    {"TABLE", "measures", PGC_SECTION_PRE_DATA, 0},
    {"TABLE", "empty_one", PGC_SECTION_PRE_DATA, 0},
    {"SEQUENCE", "counter", PGC_SECTION_PRE_DATA, 0},
    {"VIEW", "big_measures", PGC_SECTION_PRE_DATA, 0},
    {"BLOB", "424242", PGC_SECTION_PRE_DATA, 0},
    {"TABLE DATA", "items", PGC_SECTION_DATA, 1},
    {"TABLE DATA", "measures", PGC_SECTION_DATA, 1},
    {"TABLE DATA", "empty_one", PGC_SECTION_DATA, 1},
    {"SEQUENCE SET", "counter", PGC_SECTION_DATA, 0},
    {"BLOBS", "BLOBS", PGC_SECTION_DATA, 1},
    {"CONSTRAINT", "items items_pkey", PGC_SECTION_POST_DATA, 0},
    {"INDEX", "measures_k_idx", PGC_SECTION_POST_DATA, 0},
};
#define NKNOWN (sizeof(known) / sizeof(known[0]))

static void check_real_toc(const pgc_toc *toc, int compressed)
{
    assert_int_equal(toc->vmaj, 1);
    assert_int_equal(toc->vmin, 14); /* pg_dump 15 */
    assert_int_equal(toc->int_size, 4);
    assert_int_equal(toc->off_size, 8);
    assert_int_equal(toc->compressed, compressed);
    assert_string_equal(toc->dbname, "pgcdemo");
    assert_memory_equal(toc->server_version, "15.", 3);
    assert_memory_equal(toc->dump_version, "15.", 3);
    assert_int_equal(toc->nentries, NKNOWN);
    for (size_t i = 0; i < NKNOWN; i++) {
        const pgc_entry *en = find_desc(toc, known[i].desc, known[i].tag);
        if (en == NULL)
            fail_msg("no toc entry %s %s", known[i].desc, known[i].tag);
        assert_int_equal(en->section, known[i].section);
        assert_int_equal(en->has_data, known[i].has_data);
        assert_ptr_equal(pgc_toc_find(toc, en->dump_id), en);
    }
    const pgc_entry *en = find_desc(toc, "TABLE DATA", "items");
    assert_int_equal(en->dump_id, 3355);
    assert_string_equal(en->nspace, "public");
    assert_string_equal(en->owner, "postgres");
    assert_string_equal(en->copy_stmt, "COPY public.items (id, name, note) FROM stdin;\n");
    assert_string_equal(en->defn, "");
    en = find_desc(toc, "ENCODING", "ENCODING");
    assert_string_equal(en->defn, "SET client_encoding = 'UTF8';\n");
    assert_string_equal(en->nspace, "");
    en = find_desc(toc, "TABLE", "items");
    assert_int_equal(en->dump_id, 214);
    assert_non_null(strstr(en->defn, "CREATE TABLE public.items"));
    assert_int_equal(find_desc(toc, "BLOBS", "BLOBS")->dump_id, 3360);
    assert_int_equal(find_desc(toc, "SEQUENCE SET", "counter")->dump_id, 3367);
    assert_null(pgc_toc_find(toc, 1));
    assert_null(pgc_toc_find(toc, 3358));
    assert_null(pgc_toc_find(toc, 100000));
    assert_null(pgc_toc_find(toc, -1));
}

/* Blocks follow each other from the TOC's end to the end of the file: one per entry with data,
 * each entry's block once, BLOBS as a blobs block. */
static void check_blocks(const rec *r, const pgc_toc *toc, size_t file_len)
{
    assert_true(r->n >= 1);
    assert_int_equal(r->v[0].kind, EV_TOC);
    assert_int_equal(r->v[0].off, toc->toc_end);
    uint64_t at = toc->toc_end;
    size_t nblocks = 0;
    for (size_t i = 1; i < r->n; i += 2) {
        assert_true(i + 1 < r->n);
        const ev *b = &r->v[i], *end = &r->v[i + 1];
        assert_int_equal(b->kind, EV_BLOCK);
        assert_int_equal(end->kind, EV_END);
        assert_int_equal(b->off, at);
        assert_int_equal(end->dump_id, b->dump_id);
        assert_true(end->off > b->off);
        const pgc_entry *en = pgc_toc_find(toc, b->dump_id);
        assert_non_null(en);
        assert_true(en->has_data);
        assert_int_equal(b->type, strcmp(en->desc, "BLOBS") == 0 ? PGC_BLK_BLOBS : PGC_BLK_DATA);
        for (size_t j = 1; j < i; j += 2)
            assert_int_not_equal(r->v[j].dump_id, b->dump_id);
        at = end->off;
        nblocks++;
    }
    assert_int_equal(at, file_len);
    size_t with_data = 0;
    for (size_t i = 0; i < toc->nentries; i++)
        with_data += toc->entries[i].has_data != 0;
    assert_int_equal(nblocks, with_data);
}

static void check_dump(const char *name, int compressed)
{
    blob d = load(name);
    static const size_t steps[] = {0, 1, 7, 4096};
    rec first;
    pgc_reader *r0 = NULL;
    pgs_error e = {0};
    memset(&first, 0, sizeof(first));
    assert_int_equal(run(d.data, d.len, 0, 1u << 20, &first, &r0, &e), 0);
    const pgc_toc *toc0 = pgc_reader_toc(r0);
    assert_non_null(toc0);
    check_real_toc(toc0, compressed);
    check_blocks(&first, toc0, d.len);
    for (size_t s = 1; s < sizeof(steps) / sizeof(steps[0]); s++) {
        rec other;
        pgc_reader *r = NULL;
        memset(&other, 0, sizeof(other));
        assert_int_equal(run(d.data, d.len, steps[s], 1u << 20, &other, &r, &e), 0);
        assert_int_equal(other.n, first.n);
        assert_memory_equal(other.v, first.v, first.n * sizeof(ev));
        assert_same_toc(pgc_reader_toc(r), toc0);
        pgc_reader_free(r);
    }
    pgc_reader_free(r0);
    free(d.data);
}

static void test_pipe_dump_toc_and_blocks(void **state)
{
    (void)state;
    check_dump("pipe_z0.dump", 0);
}

static void test_seekable_dump_toc_and_blocks(void **state)
{
    (void)state;
    check_dump("seek_z0.dump", 0);
}

static void test_gzip_dump_is_compressed(void **state)
{
    (void)state;
    check_dump("seek_gzip.dump", 1);
}

/* The two uncompressed dumps differ only in their TOC's data offsets: same TOC, same blocks. */
static void test_pipe_and_seekable_agree(void **state)
{
    (void)state;
    blob a = load("pipe_z0.dump"), b = load("seek_z0.dump");
    assert_int_equal(a.len, b.len);
    assert_memory_not_equal(a.data, b.data, a.len);
    rec ra, rb;
    memset(&ra, 0, sizeof(ra));
    memset(&rb, 0, sizeof(rb));
    pgc_reader *xa = NULL, *xb = NULL;
    pgs_error e = {0};
    assert_int_equal(run(a.data, a.len, 0, 1u << 20, &ra, &xa, &e), 0);
    assert_int_equal(run(b.data, b.len, 0, 1u << 20, &rb, &xb, &e), 0);
    assert_same_toc(pgc_reader_toc(xa), pgc_reader_toc(xb));
    assert_int_equal(ra.n, rb.n);
    assert_memory_equal(ra.v, rb.v, ra.n * sizeof(ev));
    pgc_reader_free(xa);
    pgc_reader_free(xb);
    free(a.data);
    free(b.data);
}

/* ---- payloads ---- */

typedef struct sink {
    uint8_t *data;
    size_t len, cap;
    int fail_at; /* > 0: the emit call number that fails */
    int calls;
} sink;

static int sink_emit(void *arg, const void *data, size_t n, pgs_error *e)
{
    sink *s = arg;
    assert_true(n > 0);
    if (++s->calls == s->fail_at)
        return pgs_fail(e, PGS_EIO, "sink full");
    if (s->len + n > s->cap) {
        s->cap = (s->len + n) * 2;
        s->data = realloc(s->data, s->cap);
        assert_non_null(s->data);
    }
    memcpy(s->data + s->len, data, n);
    s->len += n;
    return 0;
}

/* De-frames the block at buf (followed by trailing bytes) in pieces of step bytes; returns the
 * bytes consumed, checking the de-framer stops exactly at the block's end. */
static size_t deframe(const uint8_t *buf, size_t len, size_t step, int int_size, sink *s)
{
    pgc_payload p;
    pgc_payload_init(&p, int_size);
    assert_int_equal(p.dump_id, -1);
    pgs_error e = {0};
    size_t used = 0;
    while (used < len && !p.done) {
        size_t n = len - used < step ? len - used : step;
        int64_t got = pgc_payload_feed(&p, buf + used, n, sink_emit, s, &e);
        if (got < 0)
            fail_msg("payload: %s", e.msg);
        assert_true((size_t)got <= n);
        if (!p.done)
            assert_int_equal((size_t)got, n);
        used += (size_t)got;
    }
    assert_true(p.done);
    assert_int_equal(pgc_payload_feed(&p, buf + used, len - used, sink_emit, s, &e), 0);
    return used;
}

static void test_payload_is_copy_text(void **state)
{
    (void)state;
    blob d = load("pipe_z0.dump");
    rec r;
    memset(&r, 0, sizeof(r));
    pgc_reader *rd = NULL;
    pgs_error e = {0};
    assert_int_equal(run(d.data, d.len, 0, 1u << 20, &r, &rd, &e), 0);
    const pgc_toc *toc = pgc_reader_toc(rd);
    int tables = 0;
    for (size_t i = 1; i + 1 < r.n; i += 2) {
        const pgc_entry *en = pgc_toc_find(toc, r.v[i].dump_id);
        if (strcmp(en->desc, "TABLE DATA") != 0)
            continue;
        char name[128];
        snprintf(name, sizeof(name), "%s.copy", en->tag);
        blob want = load(name);
        static const size_t steps[] = {1, 7, SIZE_MAX};
        for (size_t s = 0; s < 3; s++) {
            sink out = {0};
            size_t used = deframe(d.data + r.v[i].off, d.len - r.v[i].off, steps[s], 4, &out);
            assert_int_equal(used, r.v[i + 1].off - r.v[i].off);
            /* pg_dump ends each table's COPY data with an end-of-data line and two blank
             * lines, which COPY ... TO STDOUT does not print */
            static const char eod[] = "\\.\n\n\n";
            assert_int_equal(out.len, want.len + sizeof(eod) - 1);
            if (want.len > 0)
                assert_memory_equal(out.data, want.data, want.len);
            assert_memory_equal(out.data + want.len, eod, sizeof(eod) - 1);
            free(out.data);
        }
        free(want.data);
        tables++;
    }
    assert_int_equal(tables, 3);
    pgc_reader_free(rd);
    free(d.data);
}

/* ---- archives built here ---- */

typedef struct sb {
    uint8_t *d;
    size_t n, cap;
    int isz, osz;
    size_t m_count, m_first_id, m_tag_len, m_section, m_state, m_blk, m_blk_id, m_chunk, m_oid;
    size_t m_entry2_id, m_alg;
} sb;

static void sb_raw(sb *b, const void *p, size_t n)
{
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2 + 64;
        b->d = realloc(b->d, b->cap);
        assert_non_null(b->d);
    }
    memcpy(b->d + b->n, p, n);
    b->n += n;
}

static void sb_byte(sb *b, int v)
{
    uint8_t c = (uint8_t)v;
    sb_raw(b, &c, 1);
}

static void put_int(uint8_t *at, int isz, int64_t v)
{
    uint64_t mag = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    at[0] = v < 0;
    for (int i = 0; i < isz; i++, mag >>= 8)
        at[1 + i] = (uint8_t)(mag & 0xff);
}

static void sb_int(sb *b, int64_t v)
{
    uint8_t tmp[9];
    put_int(tmp, b->isz, v);
    sb_raw(b, tmp, 1 + (size_t)b->isz);
}

static void sb_str(sb *b, const char *s)
{
    if (s == NULL) {
        sb_int(b, -1);
        return;
    }
    sb_int(b, (int64_t)strlen(s));
    sb_raw(b, s, strlen(s));
}

static void sb_patch_int(sb *b, size_t at, int64_t v)
{
    put_int(b->d + at, b->isz, v);
}

typedef struct sentry {
    int id;
    const char *desc, *tag;
    int section;
    int state;
    const char *copy;
    const char *dep;
} sentry;

static const sentry synth_entries[] = {
    {5, "ENCODING", "ENCODING", PGC_SECTION_PRE_DATA, 3, NULL, NULL},
    {7, "TABLE", "t", PGC_SECTION_PRE_DATA, 3, "", NULL},
    {9, "TABLE DATA", "t", PGC_SECTION_DATA, 1, "COPY public.t (a) FROM stdin;\n", "7"},
    {12, "BLOBS", "BLOBS", PGC_SECTION_DATA, 2, NULL, NULL},
};

/* An archive of version 1.vmin with int_size isz, off_size osz: a header (compression: the
 * level for < 1.15, the algorithm for >= 1.15), the four entries above, a data block (9) of two
 * chunks and a blobs block (12) with two large objects, one with an OID above 2^31. */
static void synth(sb *b, int vmin, int isz, int osz, int compression)
{
    memset(b, 0, sizeof(*b));
    b->isz = isz;
    b->osz = osz;
    sb_raw(b, "PGDMP", 5);
    sb_byte(b, 1);
    sb_byte(b, vmin);
    sb_byte(b, 0);
    sb_byte(b, isz);
    sb_byte(b, osz);
    sb_byte(b, 1);
    b->m_alg = b->n;
    if (vmin >= 15)
        sb_byte(b, compression);
    else
        sb_int(b, compression);
    for (int i = 0; i < 7; i++)
        sb_int(b, i + 1);
    sb_str(b, "synthdb");
    sb_str(b, "17.0");
    sb_str(b, NULL);
    b->m_count = b->n;
    sb_int(b, 4);
    for (size_t i = 0; i < 4; i++) {
        const sentry *s = &synth_entries[i];
        if (i == 0)
            b->m_first_id = b->n;
        if (i == 1)
            b->m_entry2_id = b->n;
        sb_int(b, s->id);
        sb_int(b, s->state != 3);
        sb_str(b, "1259");
        sb_str(b, "16385");
        if (i == 0)
            b->m_tag_len = b->n;
        sb_str(b, s->tag);
        sb_str(b, s->desc);
        if (i == 0)
            b->m_section = b->n;
        sb_int(b, s->section);
        sb_str(b, i == 0 ? "SET client_encoding = 'UTF8';\n" : "");
        sb_str(b, "");
        sb_str(b, s->copy);
        sb_str(b, i == 0 ? NULL : "public");
        sb_str(b, "");
        if (vmin >= 14)
            sb_str(b, i == 1 ? "heap" : NULL);
        if (vmin >= 16)
            sb_int(b, i == 1 ? 'r' : 0);
        sb_str(b, i == 0 ? NULL : "alice");
        sb_str(b, "false");
        if (s->dep != NULL)
            sb_str(b, s->dep);
        sb_str(b, NULL);
        if (i == 3)
            b->m_state = b->n;
        sb_byte(b, s->state);
        for (int k = 0; k < osz; k++)
            sb_byte(b, s->state == 2 ? 0x11 * (k + 1) : 0);
    }
    b->m_blk = b->n;
    sb_byte(b, PGC_BLK_DATA);
    b->m_blk_id = b->n;
    sb_int(b, 9);
    b->m_chunk = b->n;
    sb_str(b, "1\n");
    sb_str(b, "22\n");
    sb_int(b, 0);
    sb_byte(b, PGC_BLK_BLOBS);
    sb_int(b, 12);
    b->m_oid = b->n;
    sb_int(b, 424242);
    sb_str(b, "abc");
    sb_int(b, 0);
    sb_int(b, (int64_t)(int32_t)UINT32_C(3000000000));
    sb_str(b, "x");
    sb_str(b, "yz");
    sb_int(b, 0);
    sb_int(b, 0);
}

static void check_synth(const sb *b, int vmin, int compressed)
{
    static const size_t steps[] = {0, 1, 3};
    for (size_t s = 0; s < 3; s++) {
        rec r;
        memset(&r, 0, sizeof(r));
        pgc_reader *rd = NULL;
        pgs_error e = {0};
        int rc = run(b->d, b->n, steps[s], 1u << 16, &r, &rd, &e);
        if (rc != 0)
            fail_msg("1.%d: %s", vmin, e.msg);
        const pgc_toc *toc = pgc_reader_toc(rd);
        assert_int_equal(toc->vmin, vmin);
        assert_int_equal(toc->int_size, b->isz);
        assert_int_equal(toc->off_size, b->osz);
        assert_int_equal(toc->compressed, compressed);
        assert_string_equal(toc->dbname, "synthdb");
        assert_string_equal(toc->server_version, "17.0");
        assert_string_equal(toc->dump_version, "");
        assert_int_equal(toc->nentries, 4);
        assert_int_equal(toc->toc_end, b->m_blk);
        for (size_t i = 0; i < 4; i++) {
            const pgc_entry *en = &toc->entries[i];
            assert_int_equal(en->dump_id, synth_entries[i].id);
            assert_string_equal(en->desc, synth_entries[i].desc);
            assert_string_equal(en->tag, synth_entries[i].tag);
            assert_int_equal(en->section, synth_entries[i].section);
            assert_int_equal(en->has_data, synth_entries[i].state != 3);
            assert_string_equal(en->copy_stmt, synth_entries[i].copy ? synth_entries[i].copy : "");
            assert_string_equal(en->owner, i == 0 ? "" : "alice");
            assert_string_equal(en->nspace, i == 0 ? "" : "public");
            assert_ptr_equal(pgc_toc_find(toc, en->dump_id), en);
        }
        assert_null(pgc_toc_find(toc, 8));
        assert_int_equal(r.n, 5);
        assert_int_equal(r.v[1].kind, EV_BLOCK);
        assert_int_equal(r.v[1].type, PGC_BLK_DATA);
        assert_int_equal(r.v[1].dump_id, 9);
        assert_int_equal(r.v[1].off, b->m_blk);
        assert_int_equal(r.v[3].type, PGC_BLK_BLOBS);
        assert_int_equal(r.v[3].dump_id, 12);
        assert_int_equal(r.v[3].off, r.v[2].off);
        assert_int_equal(r.v[4].off, b->n);
        pgc_reader_free(rd);

        sink out = {0};
        size_t used =
            deframe(b->d + b->m_blk, b->n - b->m_blk, s == 0 ? SIZE_MAX : steps[s], b->isz, &out);
        assert_int_equal(used, r.v[2].off - b->m_blk);
        assert_int_equal(out.len, 5);
        assert_memory_equal(out.data, "1\n22\n", 5);
        free(out.data);
    }
}

static void test_versions_12_to_16(void **state)
{
    (void)state;
    for (int vmin = 12; vmin <= 16; vmin++) {
        sb b;
        synth(&b, vmin, 4, 8, 0);
        check_synth(&b, vmin, 0);
        free(b.d);
        /* compressed: gzip's default level -1 before 1.15, an algorithm after (gzip, lz4,
         * zstd) */
        synth(&b, vmin, 4, 8, vmin >= 15 ? 1 + vmin % 3 : -1);
        check_synth(&b, vmin, 1);
        free(b.d);
        synth(&b, vmin, 4, 8, vmin >= 15 ? 3 : 6);
        check_synth(&b, vmin, 1);
        free(b.d);
    }
}

static void test_int_and_offset_sizes(void **state)
{
    (void)state;
    static const int sizes[][2] = {{8, 4}, {4, 1}, {8, 8}, {4, 4}};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        sb b;
        synth(&b, 16, sizes[i][0], sizes[i][1], 0);
        check_synth(&b, 16, 0);
        free(b.d);
    }
}

static int expect_code(const uint8_t *d, size_t n, size_t toc_max, int code)
{
    rec r;
    memset(&r, 0, sizeof(r));
    pgs_error e = {0};
    int rc = run(d, n, 0, toc_max, &r, NULL, &e);
    if (rc != code)
        fail_msg("expected %d, got %d (%s)", code, rc, e.msg);
    if (rc != 0) {
        assert_int_equal(e.code, rc);
        assert_true(e.msg[0] != '\0');
    }
    /* the same split byte by byte */
    memset(&r, 0, sizeof(r));
    assert_int_equal(run(d, n, 1, toc_max, &r, NULL, &e), code);
    return rc;
}

static void test_unsupported_versions(void **state)
{
    (void)state;
    static const int bad[][2] = {{1, 11}, {1, 17}, {1, 0}, {0, 14}, {2, 14}, {1, 255}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sb b;
        synth(&b, 14, 4, 8, 0);
        b.d[5] = (uint8_t)bad[i][0];
        b.d[6] = (uint8_t)bad[i][1];
        expect_code(b.d, b.n, 1u << 16, PGS_EVERSION);
        /* refused as soon as the version arrives */
        expect_code(b.d, 7, 1u << 16, PGS_EVERSION);
        free(b.d);
    }
    blob d = load("pipe_z0.dump");
    d.data[6] = 17;
    expect_code(d.data, d.len, 1u << 20, PGS_EVERSION);
    d.data[6] = 11;
    expect_code(d.data, d.len, 1u << 20, PGS_EVERSION);
    free(d.data);
}

static void test_wrong_magic_and_format(void **state)
{
    (void)state;
    blob d = load("pipe_z0.dump");
    for (size_t i = 0; i < 5; i++) {
        d.data[i] ^= 0x20;
        expect_code(d.data, d.len, 1u << 20, PGS_EFORMAT);
        expect_code(d.data, i + 1, 1u << 20, PGS_EFORMAT);
        d.data[i] ^= 0x20;
    }
    static const char text[] = "--\n-- PostgreSQL database dump\n--\n";
    expect_code((const uint8_t *)text, sizeof(text) - 1, 1u << 20, PGS_EFORMAT);
    d.data[10] = 3; /* tar */
    expect_code(d.data, d.len, 1u << 20, PGS_EFORMAT);
    d.data[10] = 1;
    d.data[8] = 0; /* int_size */
    expect_code(d.data, d.len, 1u << 20, PGS_EFORMAT);
    d.data[8] = 9;
    expect_code(d.data, d.len, 1u << 20, PGS_EFORMAT);
    d.data[8] = 4;
    d.data[9] = 0; /* off_size */
    expect_code(d.data, d.len, 1u << 20, PGS_EFORMAT);
    d.data[9] = 8;
    expect_code(d.data, d.len, 1u << 20, 0);
    /* nothing at all, or only part of the header */
    expect_code(d.data, 0, 1u << 20, PGS_ETRUNC);
    expect_code(d.data, 11, 1u << 20, PGS_ETRUNC);
    free(d.data);
}

static void test_hostile_fields(void **state)
{
    (void)state;
    sb b;
    synth(&b, 16, 4, 8, 0);
    uint8_t *orig = malloc(b.n);
    assert_non_null(orig);
    memcpy(orig, b.d, b.n);
#define RESET() memcpy(b.d, orig, b.n)
    const size_t big = 1u << 16;

    /* TOC entry count */
    sb_patch_int(&b, b.m_count, (int64_t)PGC_ENTRIES_MAX + 1);
    expect_code(b.d, b.n, big, PGS_ELIMIT);
    sb_patch_int(&b, b.m_count, -1);
    expect_code(b.d, b.n, big, PGS_EFORMAT);
    /* as many entries as allowed, announced by a short stream: no allocation ahead */
    sb_patch_int(&b, b.m_count, PGC_ENTRIES_MAX);
    expect_code(b.d, b.m_blk, big, PGS_ETRUNC);
    RESET();
    /* a sign byte other than 0 or 1 */
    b.d[b.m_count] = 2;
    expect_code(b.d, b.n, big, PGS_EFORMAT);
    RESET();
    /* strings: too long, forged lengths, below -1 */
    sb_patch_int(&b, b.m_tag_len, (int64_t)PGC_STR_MAX + 1);
    expect_code(b.d, b.n, big, PGS_ELIMIT);
    sb_patch_int(&b, b.m_tag_len, INT32_MAX);
    expect_code(b.d, b.n, big, PGS_ELIMIT);
    sb_patch_int(&b, b.m_tag_len, PGC_STR_MAX);
    expect_code(b.d, b.n, (size_t)PGC_STR_MAX * 2, PGS_ETRUNC);
    expect_code(b.d, b.n, big, PGS_ELIMIT); /* past toc_max */
    sb_patch_int(&b, b.m_tag_len, -2);
    expect_code(b.d, b.n, big, PGS_EFORMAT);
    sb_patch_int(&b, b.m_tag_len, INT32_MIN + 1);
    expect_code(b.d, b.n, big, PGS_EFORMAT);
    RESET();
    /* dump ids must be > 0 and unique */
    sb_patch_int(&b, b.m_first_id, 0);
    expect_code(b.d, b.n, big, PGS_EFORMAT);
    sb_patch_int(&b, b.m_first_id, -5);
    expect_code(b.d, b.n, big, PGS_EFORMAT);
    sb_patch_int(&b, b.m_first_id, 7);
    expect_code(b.d, b.n, big, PGS_EFORMAT);
    RESET();
    sb_patch_int(&b, b.m_section, 5);
    expect_code(b.d, b.n, big, PGS_EFORMAT);
    sb_patch_int(&b, b.m_section, 0);
    expect_code(b.d, b.n, big, PGS_EFORMAT);
    RESET();
    for (int s = 0; s < 256; s++) {
        b.d[b.m_state] = (uint8_t)s;
        expect_code(b.d, b.n, big, s >= 1 && s <= 3 ? 0 : PGS_EFORMAT);
    }
    RESET();
    b.d[b.m_alg] = 4;
    expect_code(b.d, b.n, big, PGS_EFORMAT);
    RESET();
    /* blocks: types other than 1 and 3, bad ids, negative and huge chunk lengths */
    for (int t = 0; t < 256; t++) {
        if (t == PGC_BLK_DATA || t == PGC_BLK_BLOBS)
            continue;
        b.d[b.m_blk] = (uint8_t)t;
        expect_code(b.d, b.n, big, PGS_EFORMAT);
    }
    RESET();
    sb_patch_int(&b, b.m_blk_id, 0);
    expect_code(b.d, b.n, big, PGS_EFORMAT);
    sb_patch_int(&b, b.m_blk_id, -9);
    expect_code(b.d, b.n, big, PGS_EFORMAT);
    RESET();
    sb_patch_int(&b, b.m_chunk, -2);
    expect_code(b.d, b.n, big, PGS_EFORMAT);
    /* a row of any legal size is one chunk: long chunks are fine, only the stream is short */
    sb_patch_int(&b, b.m_chunk, (int64_t)PGC_STR_MAX + 1);
    expect_code(b.d, b.n, big, PGS_ETRUNC);
    sb_patch_int(&b, b.m_chunk, INT32_MAX);
    expect_code(b.d, b.n, big, PGS_ETRUNC);
    sb_patch_int(&b, b.m_chunk, (int64_t)INT32_MAX + 1);
    expect_code(b.d, b.n, big, PGS_ELIMIT);
    /* a chunk longer than what follows: the stream ends inside the block */
    sb_patch_int(&b, b.m_chunk, 1000);
    expect_code(b.d, b.n, big, PGS_ETRUNC);
    RESET();
    free(b.d);

    /* 1.14: the compression level */
    synth(&b, 14, 4, 8, 10);
    expect_code(b.d, b.n, big, PGS_EFORMAT);
    free(b.d);
    synth(&b, 14, 4, 8, -2);
    expect_code(b.d, b.n, big, PGS_EFORMAT);
    free(b.d);
    /* int_size 8: magnitudes above INT64_MAX */
    synth(&b, 16, 8, 8, 0);
    memset(b.d + b.m_count + 1, 0xff, 8);
    expect_code(b.d, b.n, big, PGS_EFORMAT);
    free(b.d);
    free(orig);
#undef RESET
}

static void test_toc_max(void **state)
{
    (void)state;
    blob d = load("pipe_z0.dump");
    rec r;
    memset(&r, 0, sizeof(r));
    pgc_reader *rd = NULL;
    pgs_error e = {0};
    assert_int_equal(run(d.data, d.len, 0, 1u << 20, &r, &rd, &e), 0);
    size_t toc_end = (size_t)pgc_reader_toc(rd)->toc_end;
    pgc_reader_free(rd);
    /* the TOC may use all of toc_max; the blocks after it do not count */
    expect_code(d.data, d.len, toc_end, 0);
    expect_code(d.data, d.len, toc_end - 1, PGS_ELIMIT);
    expect_code(d.data, d.len, 0, PGS_ELIMIT);
    free(d.data);
}

/* Truncated at every byte: an error, never a crash; finish says 0 only where the stream ends
 * between blocks (the format has no trailer), else PGS_ETRUNC. */
static void test_truncated_everywhere(void **state)
{
    (void)state;
    static const char *const names[] = {"pipe_z0.dump", "seek_gzip.dump"};
    for (size_t f = 0; f < 2; f++) {
        blob d = load(names[f]);
        rec full;
        memset(&full, 0, sizeof(full));
        pgs_error e = {0};
        assert_int_equal(run(d.data, d.len, 0, 1u << 20, &full, NULL, &e), 0);
        for (size_t k = 0; k < d.len; k++) {
            int boundary = 0;
            for (size_t i = 0; i < full.n; i++)
                if (full.v[i].kind != EV_BLOCK && full.v[i].off == k)
                    boundary = 1;
            rec r;
            memset(&r, 0, sizeof(r));
            int rc = run(d.data, k, 0, 1u << 20, &r, NULL, &e);
            if (rc != (boundary ? 0 : PGS_ETRUNC))
                fail_msg("%s cut at %zu: %d (%s)", names[f], k, rc, e.msg);
        }
        free(d.data);
    }
}

static void test_flipped_bytes(void **state)
{
    (void)state;
    blob d = load("pipe_z0.dump");
    static const int flips[] = {0xff, 0x01, 0x80};
    for (size_t k = 0; k < d.len; k++) {
        for (size_t f = 0; f < 3; f++) {
            d.data[k] ^= (uint8_t)flips[f];
            rec r;
            memset(&r, 0, sizeof(r));
            pgs_error e = {0};
            int rc = run(d.data, d.len, k % 2 ? 0 : 13, 1u << 20, &r, NULL, &e);
            assert_true(rc == 0 || rc == PGS_EFORMAT || rc == PGS_ETRUNC || rc == PGS_ELIMIT ||
                        rc == PGS_EVERSION);
            d.data[k] ^= (uint8_t)flips[f];
        }
    }
    free(d.data);
}

static void test_errors_are_sticky(void **state)
{
    (void)state;
    blob d = load("pipe_z0.dump");
    pgc_reader *rd = NULL;
    pgs_error e = {0};
    assert_int_equal(pgc_reader_new(&rd, 1u << 20, NULL), 0);
    assert_null(pgc_reader_toc(rd));
    d.data[0] = 'X';
    assert_int_equal(pgc_reader_feed(rd, d.data, d.len, &e), PGS_EFORMAT);
    char msg[sizeof(e.msg)];
    memcpy(msg, e.msg, sizeof(msg));
    memset(&e, 0, sizeof(e));
    d.data[0] = 'P';
    assert_int_equal(pgc_reader_feed(rd, d.data, d.len, &e), PGS_EFORMAT);
    assert_string_equal(e.msg, msg);
    assert_int_equal(pgc_reader_finish(rd, &e), PGS_EFORMAT);
    assert_int_equal(pgc_reader_feed(rd, NULL, 0, &e), PGS_EFORMAT);
    pgc_reader_free(rd);
    pgc_reader_free(NULL);
    free(d.data);
}

static void test_hook_stops_feed(void **state)
{
    (void)state;
    blob d = load("pipe_z0.dump");
    for (int kind = EV_TOC; kind <= EV_END; kind++) {
        rec r;
        memset(&r, 0, sizeof(r));
        r.stop_on = kind + 1;
        r.stop_rc = PGS_EINTR;
        pgc_reader *rd = NULL;
        pgs_error e = {0};
        assert_int_equal(run(d.data, d.len, 0, 1u << 20, &r, &rd, &e), PGS_EINTR);
        assert_string_equal(e.msg, "stopped by the test");
        assert_int_equal(r.n, (size_t)kind + 1);
        memset(&e, 0, sizeof(e));
        assert_int_equal(pgc_reader_feed(rd, d.data, 1, &e), PGS_EINTR);
        assert_string_equal(e.msg, "stopped by the test");
        pgc_reader_free(rd);
    }
    free(d.data);
}

/* A large TOC fed 3 bytes at a time: one pass over it (no re-parsing), every entry found. */
static void test_big_toc_is_linear(void **state)
{
    (void)state;
    enum { N = 100000 };
    sb b;
    memset(&b, 0, sizeof(b));
    b.isz = 4;
    b.osz = 8;
    sb_raw(&b, "PGDMP", 5);
    const uint8_t fixed[] = {1, 14, 0, 4, 8, 1};
    sb_raw(&b, fixed, sizeof(fixed));
    sb_int(&b, 0);
    for (int i = 0; i < 7; i++)
        sb_int(&b, 0);
    sb_str(&b, "db");
    sb_str(&b, "15");
    sb_str(&b, "15");
    sb_int(&b, N);
    for (int i = 0; i < N; i++) {
        /* ids sparse and out of order */
        sb_int(&b, (int64_t)((i * 7919) % N) * 3 + 1);
        sb_int(&b, 0);
        sb_str(&b, "0");
        sb_str(&b, "0");
        sb_str(&b, "tbl");
        sb_str(&b, "TABLE");
        sb_int(&b, PGC_SECTION_PRE_DATA);
        sb_str(&b, "CREATE TABLE tbl ();");
        sb_str(&b, "");
        sb_str(&b, "");
        sb_str(&b, "public");
        sb_str(&b, "");
        sb_str(&b, "heap");
        sb_str(&b, "owner");
        sb_str(&b, "false");
        for (int k = 0; k < 3; k++)
            sb_str(&b, "1");
        sb_str(&b, NULL);
        sb_byte(&b, 3);
        for (int k = 0; k < 8; k++)
            sb_byte(&b, 0);
    }
    rec r;
    memset(&r, 0, sizeof(r));
    pgc_reader *rd = NULL;
    pgs_error e = {0};
    clock_t t0 = clock();
    assert_int_equal(run(b.d, b.n, 3, b.n, &r, &rd, &e), 0);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    const pgc_toc *toc = pgc_reader_toc(rd);
    assert_int_equal(toc->nentries, N);
    for (int i = 0; i < N; i++) {
        const pgc_entry *en = pgc_toc_find(toc, i * 3 + 1);
        assert_non_null(en);
        assert_int_equal(en->dump_id, i * 3 + 1);
        assert_null(pgc_toc_find(toc, i * 3 + 2));
    }
    print_message("%d entries (%zu bytes) in 3-byte pieces: %.2f s\n", N, b.n, secs);
    assert_true(secs < 20.0);
    pgc_reader_free(rd);
    free(b.d);
}

static void test_payload_refusals(void **state)
{
    (void)state;
    sb b;
    synth(&b, 16, 4, 8, 0);
    const uint8_t *blk = b.d + b.m_blk;
    size_t n = b.n - b.m_blk;
    pgc_payload p;
    pgs_error e = {0};
    sink out = {0};

    /* a blobs block is not a payload */
    const uint8_t *blobs = b.d + (b.m_oid - 5 - 1);
    assert_int_equal(blobs[0], PGC_BLK_BLOBS);
    pgc_payload_init(&p, 4);
    assert_int_equal(pgc_payload_feed(&p, blobs, 10, sink_emit, &out, &e), PGS_EFORMAT);
    /* sticky */
    assert_int_equal(pgc_payload_feed(&p, blk, n, sink_emit, &out, &e), PGS_EFORMAT);

    uint8_t *copy = malloc(n);
    assert_non_null(copy);
    size_t chunk_at = b.m_chunk - b.m_blk, id_at = b.m_blk_id - b.m_blk;
    struct {
        size_t at;
        int64_t v;
        int code;
    } cases[] = {
        {chunk_at, -1, PGS_EFORMAT},
        {chunk_at, PGC_CHUNK_MAX + 1, PGS_ELIMIT},
        {id_at, 0, PGS_EFORMAT},
        {id_at, -3, PGS_EFORMAT},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memcpy(copy, blk, n);
        put_int(copy + cases[i].at, 4, cases[i].v);
        pgc_payload_init(&p, 4);
        assert_int_equal(pgc_payload_feed(&p, copy, n, sink_emit, &out, &e), cases[i].code);
        assert_false(p.done);
    }
    memcpy(copy, blk, n);
    copy[chunk_at] = 7; /* sign byte */
    pgc_payload_init(&p, 4);
    assert_int_equal(pgc_payload_feed(&p, copy, n, sink_emit, &out, &e), PGS_EFORMAT);
    /* a bad int_size */
    pgc_payload_init(&p, 0);
    assert_int_equal(pgc_payload_feed(&p, blk, n, sink_emit, &out, &e), PGS_EFORMAT);
    pgc_payload_init(&p, 9);
    assert_int_equal(pgc_payload_feed(&p, blk, n, sink_emit, &out, &e), PGS_EFORMAT);
    /* emit's error stops it */
    out.fail_at = 2;
    pgc_payload_init(&p, 4);
    assert_int_equal(pgc_payload_feed(&p, blk, n, sink_emit, &out, &e), PGS_EIO);
    assert_int_equal(out.len, 2);
    /* no emit: counts only */
    pgc_payload_init(&p, 4);
    int64_t got = pgc_payload_feed(&p, blk, n, NULL, NULL, &e);
    assert_true(p.done);
    assert_int_equal(p.dump_id, 9);
    assert_int_equal(got, b.m_oid - 5 - 1 - b.m_blk);
    /* empty input consumes nothing */
    pgc_payload_init(&p, 4);
    assert_int_equal(pgc_payload_feed(&p, NULL, 0, NULL, NULL, &e), 0);
    free(copy);
    free(out.data);
    free(b.d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipe_dump_toc_and_blocks),
        cmocka_unit_test(test_seekable_dump_toc_and_blocks),
        cmocka_unit_test(test_gzip_dump_is_compressed),
        cmocka_unit_test(test_pipe_and_seekable_agree),
        cmocka_unit_test(test_payload_is_copy_text),
        cmocka_unit_test(test_versions_12_to_16),
        cmocka_unit_test(test_int_and_offset_sizes),
        cmocka_unit_test(test_unsupported_versions),
        cmocka_unit_test(test_wrong_magic_and_format),
        cmocka_unit_test(test_hostile_fields),
        cmocka_unit_test(test_toc_max),
        cmocka_unit_test(test_truncated_everywhere),
        cmocka_unit_test(test_flipped_bytes),
        cmocka_unit_test(test_errors_are_sticky),
        cmocka_unit_test(test_hook_stops_feed),
        cmocka_unit_test(test_big_toc_is_linear),
        cmocka_unit_test(test_payload_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
