/*
 * libFuzzer target: pg_dump custom archives (agent/pgcustom.c) over any bytes. The reader gets
 * the input whole and then split in pieces whose size the first byte picks, with a small
 * toc_max (the last byte picks 512 or 8192 bytes); both runs must report the same blocks. The first
 * data block it finds (or, when none, the input itself) goes through the payload de-framer, whole
 * and byte by byte, which must agree. Anything may be refused; nothing may crash, leak, or disagree
 * with itself.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/pgcustom.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct seen {
    uint64_t sum; /* of what the hooks saw, to compare two runs */
    unsigned nevents;
    int data_found;
    uint64_t data_start, data_end;
    int cur_type;
    uint64_t cur_start;
    int int_size;
} seen;

static int on_toc(void *arg, const pgc_toc *toc, pgs_error *e)
{
    (void)e;
    seen *s = arg;
    s->int_size = toc->int_size;
    s->sum = s->sum * 31 + toc->toc_end + toc->nentries;
    for (size_t i = 0; i < toc->nentries; i++)
        if (pgc_toc_find(toc, toc->entries[i].dump_id) != &toc->entries[i])
            abort();
    s->nevents++;
    return 0;
}

static int on_block(void *arg, int type, int dump_id, uint64_t start, pgs_error *e)
{
    (void)e;
    seen *s = arg;
    s->sum = s->sum * 31 + (uint64_t)type * 7 + (uint64_t)dump_id + start;
    s->cur_type = type;
    s->cur_start = start;
    s->nevents++;
    return 0;
}

static int on_block_end(void *arg, int dump_id, uint64_t end, pgs_error *e)
{
    (void)e;
    seen *s = arg;
    s->sum = s->sum * 31 + (uint64_t)dump_id + end;
    if (s->cur_type == PGC_BLK_DATA && !s->data_found) {
        s->data_found = 1;
        s->data_start = s->cur_start;
        s->data_end = end;
    }
    s->nevents++;
    return 0;
}

static int read_all(const uint8_t *data, size_t size, size_t step, size_t toc_max, seen *s)
{
    pgc_hooks h = {on_toc, on_block, on_block_end, s};
    pgc_reader *r = NULL;
    pgs_error e = {0};
    if (pgc_reader_new(&r, toc_max, &h) != 0)
        return PGS_ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < size && rc == 0; i += step)
        rc = pgc_reader_feed(r, data + i, size - i < step ? size - i : step, &e);
    if (rc == 0)
        rc = pgc_reader_finish(r, &e);
    pgc_reader_free(r);
    return rc;
}

static int count_emit(void *arg, const void *data, size_t n, pgs_error *e)
{
    (void)e;
    uint64_t *sum = arg;
    const uint8_t *p = data;
    for (size_t i = 0; i < n; i++)
        *sum = *sum * 131 + p[i];
    return 0;
}

static int64_t deframe(const uint8_t *data, size_t size, int int_size, size_t step, uint64_t *sum,
                       int *done)
{
    pgc_payload p;
    pgs_error e = {0};
    pgc_payload_init(&p, int_size);
    size_t used = 0;
    while (used < size && !p.done) {
        size_t n = size - used < step ? size - used : step;
        int64_t got = pgc_payload_feed(&p, data + used, n, count_emit, sum, &e);
        if (got < 0)
            return got;
        used += (size_t)got;
    }
    *done = p.done;
    return (int64_t)used;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    seen whole, split;
    memset(&whole, 0, sizeof(whole));
    memset(&split, 0, sizeof(split));
    size_t step = size > 0 ? (size_t)(data[0] % 13) + 1 : 1;
    /* small bounds: the seeds' TOCs (under 4 KiB) fit in the larger one */
    size_t toc_max = size > 0 && (data[size - 1] & 1) ? 512 : 8192;
    int rc1 = read_all(data, size, size ? size : 1, toc_max, &whole);
    int rc2 = read_all(data, size, step, toc_max, &split);
    if (rc1 != rc2 || whole.sum != split.sum || whole.nevents != split.nevents)
        abort();

    const uint8_t *blk = data;
    size_t blen = size;
    int int_size = 4;
    if (whole.data_found) {
        blk = data + whole.data_start;
        blen = size - (size_t)whole.data_start;
        int_size = whole.int_size;
    } else if (size > 0) {
        int_size = data[0] % 10; /* 0 and 9 are refused */
    }
    uint64_t s1 = 0, s2 = 0;
    int d1 = 0, d2 = 0;
    int64_t u1 = deframe(blk, blen, int_size, blen ? blen : 1, &s1, &d1);
    int64_t u2 = deframe(blk, blen, int_size, 1, &s2, &d2);
    if (u1 != u2 || s1 != s2 || d1 != d2)
        abort();
    if (whole.data_found && (u1 != (int64_t)(whole.data_end - whole.data_start) || !d1))
        abort();
    return 0;
}
