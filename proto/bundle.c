/*
 * The tar layer of an archive (see bundle.h). libarchive writes and reads the pax tar and its zstd
 * filter; this file decides what the members are and refuses everything else.
 */
#include "proto/bundle.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "common/fsutil.h"
#include "common/sha256.h"

enum bundle_kind bundle_name_kind(const char *name, uint32_t *part)
{
    size_t n = strnlen(name, BUNDLE_NAME_MAX + 1);
    if (n == 0 || n > BUNDLE_NAME_MAX)
        return BUNDLE_K_INVALID;
    if (strcmp(name, BUNDLE_MANIFEST) == 0)
        return BUNDLE_K_MANIFEST;
    if (strcmp(name, BUNDLE_GLOBALS) == 0)
        return BUNDLE_K_GLOBALS;
    if (strcmp(name, BUNDLE_END) == 0)
        return BUNDLE_K_END;
    if (strcmp(name, BUNDLE_SUMS) == 0)
        return BUNDLE_K_SUMS;
    if (strncmp(name, "dump/", 5) != 0)
        return BUNDLE_K_INVALID;
    const char *f = name + 5;
    if (strncmp(f, "part-", 5) == 0) {
        const char *d = f + 5;
        size_t nd = strlen(d);
        if (nd < 6 || nd > 8 || strspn(d, "0123456789") != nd)
            return BUNDLE_K_INVALID;
        unsigned long v = strtoul(d, NULL, 10);
        if (v == 0 || v > BUNDLE_PARTS_MAX)
            return BUNDLE_K_INVALID;
        /* One spelling per number: part-000001, never part-0000001. */
        char canon[32];
        snprintf(canon, sizeof(canon), "%06lu", v);
        if (strcmp(canon, d) != 0)
            return BUNDLE_K_INVALID;
        if (part)
            *part = (uint32_t)v;
        return BUNDLE_K_PART;
    }
    /* A file of pg_dump's directory format: a plain name, never a path or a dot file. */
    size_t nf = strlen(f);
    if (nf == 0 || nf > 128 || f[0] == '.' ||
        strspn(f, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != nf)
        return BUNDLE_K_INVALID;
    return BUNDLE_K_DUMPFILE;
}

static void sums_line(FILE *f, const uint8_t digest[SHA256_LEN], const char *name)
{
    char hex[SHA256_HEX_LEN + 1];
    hex_encode(digest, SHA256_LEN, hex);
    fprintf(f, "%s  %s\n", hex, name);
}

/* ---- writer ---- */

struct bundle_writer {
    struct archive *ar; /* pax tar, no filter: its bytes go to zc */
    ZSTD_CCtx *zc;
    uint8_t *zout;
    size_t zout_cap;
    envelope_writer *env;
    sha256_ctx *member_hash;
    FILE *sums;
    pgs_error cb_err;
    int cb_failed;
    int aborted;
    int in_member;
    char name[BUNDLE_NAME_MAX + 1];
    uint64_t size, written;
    uint64_t input_bytes;
    time_t now;
};

/* Compresses in (or, with ZSTD_e_end, ends the frame) and hands the output to the envelope. */
static int bw_zstd_push(bundle_writer *w, const void *buf, size_t len, ZSTD_EndDirective mode,
                        pgs_error *e)
{
    ZSTD_inBuffer in = {buf, len, 0};
    for (;;) {
        ZSTD_outBuffer out = {w->zout, w->zout_cap, 0};
        size_t left = ZSTD_compressStream2(w->zc, &out, &in, mode);
        if (ZSTD_isError(left))
            return pgs_fail(e, PGS_EIO, "zstd: %s", ZSTD_getErrorName(left));
        if (out.pos > 0) {
            int rc = envelope_writer_write(w->env, w->zout, out.pos, e);
            if (rc != 0)
                return rc;
        }
        if (mode == ZSTD_e_end ? left == 0 : in.pos == in.size)
            return 0;
    }
}

static la_ssize_t bw_write_cb(struct archive *a, void *ud, const void *buf, size_t len)
{
    (void)a;
    bundle_writer *w = ud;
    if (w->aborted)
        return -1;
    if (bw_zstd_push(w, buf, len, ZSTD_e_continue, &w->cb_err) != 0) {
        w->cb_failed = 1;
        return -1;
    }
    return (la_ssize_t)len;
}

static int bw_archive_fail(bundle_writer *w, pgs_error *e, const char *what)
{
    if (w->cb_failed) {
        *e = w->cb_err;
        return e->code;
    }
    return pgs_fail(e, PGS_EIO, "%s: %s", what, archive_error_string(w->ar));
}

int bundle_writer_new(bundle_writer **out, const bundle_writer_opts *o, pgs_error *e)
{
    *out = NULL;
    if (o->zstd_level < 1 || o->zstd_level > 19)
        return pgs_fail(e, PGS_EINVAL, "compression level %d is outside [1, 19]", o->zstd_level);
    if (o->zstd_threads < 0 || o->zstd_threads > 64)
        return pgs_fail(e, PGS_EINVAL, "compression threads %d is outside [0, 64]",
                        o->zstd_threads);
    if (o->zstd_job_size != 0 &&
        (o->zstd_job_size < BUNDLE_ZSTD_JOB_MIN || o->zstd_job_size > BUNDLE_ZSTD_JOB_MAX))
        return pgs_fail(e, PGS_EINVAL, "compression job size %u is outside [%u, %u]",
                        o->zstd_job_size, BUNDLE_ZSTD_JOB_MIN, BUNDLE_ZSTD_JOB_MAX);
    bundle_writer *w = calloc(1, sizeof(*w));
    if (w == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    w->now = time(NULL);
    int rc = envelope_writer_new(&w->env, o->rcpts, o->nrcpts,
                                 o->chunk_size ? o->chunk_size : ENVELOPE_CHUNK_DEFAULT, o->sink,
                                 o->sink_arg, e);
    if (rc != 0)
        goto fail;
    int fd = fs_tmpfd();
    if (fd < 0 || (w->sums = fdopen(fd, "w+")) == NULL) {
        if (fd >= 0)
            close(fd);
        rc = pgs_fail(e, PGS_EIO, "cannot create a temporary file: %s", strerror(errno));
        goto fail;
    }
    w->member_hash = sha256_new();
    w->ar = archive_write_new();
    if (w->member_hash == NULL || w->ar == NULL) {
        rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
        goto fail;
    }
    /* zstd through libzstd, not libarchive's filter: the filter cannot set the job size, and
     * libzstd's default jobs at level 3 (8 MiB, several in flight) cost ~60 MiB with two workers
     * where 4 MiB jobs cost ~33 MiB at the same speed and nearly the same ratio
     * (docs/decisions.md). The stream is the same zstd frame either way. */
    uint32_t job = o->zstd_job_size ? o->zstd_job_size : BUNDLE_ZSTD_JOB_DEFAULT;
    w->zc = ZSTD_createCCtx();
    w->zout_cap = ZSTD_CStreamOutSize();
    w->zout = malloc(w->zout_cap);
    if (w->zc == NULL || w->zout == NULL) {
        rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
        goto fail;
    }
    size_t zr = ZSTD_CCtx_setParameter(w->zc, ZSTD_c_compressionLevel, o->zstd_level);
    if (!ZSTD_isError(zr) && o->zstd_threads > 0) {
        zr = ZSTD_CCtx_setParameter(w->zc, ZSTD_c_nbWorkers, o->zstd_threads);
        if (!ZSTD_isError(zr))
            zr = ZSTD_CCtx_setParameter(w->zc, ZSTD_c_jobSize, (int)job);
    }
    if (ZSTD_isError(zr)) {
        rc = pgs_fail(e, PGS_EINVAL, "zstd: %s", ZSTD_getErrorName(zr));
        goto fail;
    }
    if (archive_write_set_format_pax_restricted(w->ar) != ARCHIVE_OK ||
        archive_write_set_bytes_per_block(w->ar, 64 * 1024) != ARCHIVE_OK ||
        archive_write_set_bytes_in_last_block(w->ar, 1) != ARCHIVE_OK) {
        rc = pgs_fail(e, PGS_EIO, "libarchive: %s", archive_error_string(w->ar));
        goto fail;
    }
    if (archive_write_open2(w->ar, w, NULL, bw_write_cb, NULL, NULL) != ARCHIVE_OK) {
        rc = bw_archive_fail(w, e, "starting the archive");
        goto fail;
    }
    *out = w;
    return 0;
fail:
    bundle_writer_free(w);
    return rc;
}

int bundle_writer_begin(bundle_writer *w, const char *name, uint64_t size, pgs_error *e)
{
    if (w->in_member)
        return pgs_fail(e, PGS_EINVAL, "member %s is still open", w->name);
    if (bundle_name_kind(name, NULL) == BUNDLE_K_INVALID || strcmp(name, BUNDLE_SUMS) == 0)
        return pgs_fail(e, PGS_EINVAL, "\"%s\" is not a valid member name", name);
    struct archive_entry *ent = archive_entry_new();
    if (ent == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    archive_entry_set_pathname(ent, name);
    archive_entry_set_size(ent, (la_int64_t)size);
    archive_entry_set_filetype(ent, AE_IFREG);
    archive_entry_set_perm(ent, 0600);
    archive_entry_set_mtime(ent, w->now, 0);
    int ar = archive_write_header(w->ar, ent);
    archive_entry_free(ent);
    if (ar != ARCHIVE_OK)
        return bw_archive_fail(w, e, "writing a member header");
    snprintf(w->name, sizeof(w->name), "%s", name);
    w->size = size;
    w->written = 0;
    w->in_member = 1;
    sha256_reset(w->member_hash);
    return 0;
}

int bundle_writer_data(bundle_writer *w, const void *buf, size_t len, pgs_error *e)
{
    if (!w->in_member)
        return pgs_fail(e, PGS_EINVAL, "no member is open");
    if (len > w->size - w->written)
        return pgs_fail(e, PGS_EINVAL, "member %s: more data than its declared size", w->name);
    sha256_update(w->member_hash, buf, len);
    const uint8_t *p = buf;
    while (len > 0) {
        la_ssize_t n = archive_write_data(w->ar, p, len);
        if (n <= 0)
            return bw_archive_fail(w, e, "writing member data");
        p += n;
        len -= (size_t)n;
        w->written += (uint64_t)n;
        w->input_bytes += (uint64_t)n;
    }
    return 0;
}

int bundle_writer_end(bundle_writer *w, pgs_error *e)
{
    if (!w->in_member)
        return pgs_fail(e, PGS_EINVAL, "no member is open");
    if (w->written != w->size)
        return pgs_fail(e, PGS_EINVAL, "member %s: %llu bytes written of %llu declared", w->name,
                        (unsigned long long)w->written, (unsigned long long)w->size);
    if (archive_write_finish_entry(w->ar) != ARCHIVE_OK)
        return bw_archive_fail(w, e, "finishing a member");
    uint8_t digest[SHA256_LEN];
    sha256_final(w->member_hash, digest);
    sums_line(w->sums, digest, w->name);
    if (ferror(w->sums))
        return pgs_fail(e, PGS_EIO, "writing the temporary checksum list failed");
    w->in_member = 0;
    return 0;
}

int bundle_writer_add(bundle_writer *w, const char *name, const void *data, size_t len,
                      pgs_error *e)
{
    int rc = bundle_writer_begin(w, name, len, e);
    if (rc == 0)
        rc = bundle_writer_data(w, data, len, e);
    if (rc == 0)
        rc = bundle_writer_end(w, e);
    return rc;
}

int bundle_writer_finish(bundle_writer *w, pgs_error *e)
{
    if (w->in_member)
        return pgs_fail(e, PGS_EINVAL, "member %s is still open", w->name);
    if (fflush(w->sums) != 0)
        return pgs_fail(e, PGS_EIO, "writing the temporary checksum list failed");
    long size = ftell(w->sums);
    if (size < 0 || fseek(w->sums, 0, SEEK_SET) != 0)
        return pgs_fail(e, PGS_EIO, "reading the temporary checksum list failed");
    struct archive_entry *ent = archive_entry_new();
    if (ent == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    archive_entry_set_pathname(ent, BUNDLE_SUMS);
    archive_entry_set_size(ent, size);
    archive_entry_set_filetype(ent, AE_IFREG);
    archive_entry_set_perm(ent, 0600);
    archive_entry_set_mtime(ent, w->now, 0);
    int ar = archive_write_header(w->ar, ent);
    archive_entry_free(ent);
    if (ar != ARCHIVE_OK)
        return bw_archive_fail(w, e, "writing the checksum list");
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), w->sums)) > 0)
        if (archive_write_data(w->ar, buf, n) != (la_ssize_t)n)
            return bw_archive_fail(w, e, "writing the checksum list");
    if (ferror(w->sums))
        return pgs_fail(e, PGS_EIO, "reading the temporary checksum list failed");
    if (archive_write_close(w->ar) != ARCHIVE_OK)
        return bw_archive_fail(w, e, "closing the archive");
    int rc = bw_zstd_push(w, NULL, 0, ZSTD_e_end, e);
    if (rc != 0)
        return rc;
    return envelope_writer_finish(w->env, e);
}

uint64_t bundle_writer_input_bytes(const bundle_writer *w)
{
    return w->input_bytes;
}

void bundle_writer_free(bundle_writer *w)
{
    if (w == NULL)
        return;
    if (w->ar != NULL) {
        /* Unfinished: freeing closes the zstd stream, whose last bytes must not reach a sink the
         * caller may have torn down. (archive_write_fail would do it, but then libarchive 3.6.2
         * leaks its block buffers.) */
        if (w->in_member || !envelope_writer_finished(w->env))
            w->aborted = 1;
        archive_write_free(w->ar);
    }
    ZSTD_freeCCtx(w->zc);
    free(w->zout);
    envelope_writer_free(w->env);
    sha256_free(w->member_hash);
    if (w->sums != NULL)
        fclose(w->sums);
    free(w);
}

/* ---- reader ---- */

/*
 * The envelope's plaintext, decompressed: one libarchive reader with only the zstd filter and the
 * "raw" format, handing out the decompressed stream block by block. Used by the tar reader below
 * and by bundle_decompress. Only zstd is accepted: libarchive always has a pass-through filter, so
 * uncompressed data would otherwise be read too.
 */
typedef struct zstream {
    struct archive *a;
    envelope_reader *env;
    pgs_error env_err;
    int env_failed;
    int started;
    uint64_t bytes; /* decompressed bytes handed out */
} zstream;

static la_ssize_t zstream_read_cb(struct archive *a, void *ud, const void **buf)
{
    zstream *z = ud;
    const uint8_t *d = NULL;
    size_t n = 0;
    int rc = envelope_reader_next(z->env, &d, &n, &z->env_err);
    if (rc < 0) {
        z->env_failed = 1;
        archive_set_error(a, EIO, "%s", z->env_err.msg);
        return -1;
    }
    *buf = d;
    return rc == 0 ? 0 : (la_ssize_t)n;
}

static int zstream_fail(zstream *z, pgs_error *e, const char *what)
{
    if (z->env_failed) {
        *e = z->env_err;
        return e->code;
    }
    return pgs_fail(e, PGS_EFORMAT, "%s: %s", what, archive_error_string(z->a));
}

static int zstream_open(zstream *z, envelope_reader *env, pgs_error *e)
{
    memset(z, 0, sizeof(*z));
    z->env = env;
    z->a = archive_read_new();
    if (z->a == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    if (archive_read_support_filter_zstd(z->a) != ARCHIVE_OK ||
        archive_read_support_format_raw(z->a) != ARCHIVE_OK)
        return pgs_fail(e, PGS_EIO, "libarchive: %s", archive_error_string(z->a));
    if (archive_read_open(z->a, z, NULL, zstream_read_cb, NULL) != ARCHIVE_OK)
        return zstream_fail(z, e, "opening the archive");
    return 0;
}

/* 1 with the next block (valid until the next call), 0 at the end, or a negative code. */
static int zstream_next(zstream *z, const void **buf, size_t *len, pgs_error *e)
{
    if (!z->started) {
        struct archive_entry *ent;
        if (archive_read_next_header(z->a, &ent) != ARCHIVE_OK)
            return zstream_fail(z, e, "opening the archive");
        if (archive_filter_code(z->a, 0) != ARCHIVE_FILTER_ZSTD)
            return pgs_fail(e, PGS_EFORMAT, "the archive's content is not zstd-compressed");
        z->started = 1;
    }
    la_int64_t off = 0;
    int ar = archive_read_data_block(z->a, buf, len, &off);
    if (ar == ARCHIVE_EOF)
        return 0;
    if (ar != ARCHIVE_OK)
        return zstream_fail(z, e, "decompressing");
    z->bytes += *len;
    return 1;
}

/* After the decompressed stream ended: the envelope must be at its verified end (final tag). */
static int zstream_finish(zstream *z, pgs_error *e)
{
    const uint8_t *d;
    size_t n;
    int rc;
    while ((rc = envelope_reader_next(z->env, &d, &n, e)) > 0)
        ;
    return rc;
}

static void zstream_close(zstream *z)
{
    if (z->a != NULL)
        archive_read_free(z->a);
    z->a = NULL;
}

enum br_stage { BR_START, BR_AFTER_MANIFEST, BR_DUMP, BR_AFTER_END, BR_DONE };

struct bundle_reader {
    zstream z;          /* the decompressed stream */
    struct archive *ar; /* tar over it, no filter */
    pgs_error z_err;
    int z_failed;
    sha256_ctx *hash;
    FILE *sums; /* the lines we computed, compared with SHA256SUMS at the end */
    enum br_stage stage;
    int have_member;
    bundle_member cur;
    uint64_t cur_read;
    uint32_t next_part;
    int dump_kind; /* BUNDLE_K_PART or BUNDLE_K_DUMPFILE, once known */
    uint64_t dump_members;
    int globals_seen;
};

static la_ssize_t br_tar_read_cb(struct archive *a, void *ud, const void **buf)
{
    bundle_reader *r = ud;
    size_t len = 0;
    int rc = zstream_next(&r->z, buf, &len, &r->z_err);
    if (rc < 0) {
        r->z_failed = 1;
        archive_set_error(a, EIO, "%s", r->z_err.msg);
        return -1;
    }
    return rc == 0 ? 0 : (la_ssize_t)len;
}

static int br_archive_fail(bundle_reader *r, pgs_error *e, const char *what)
{
    if (r->z_failed) {
        *e = r->z_err;
        return e->code;
    }
    return pgs_fail(e, PGS_EFORMAT, "%s: %s", what, archive_error_string(r->ar));
}

int bundle_reader_new(bundle_reader **out, envelope_reader *env, pgs_error *e)
{
    *out = NULL;
    bundle_reader *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    r->next_part = 1;
    int rc = 0;
    int fd = fs_tmpfd();
    if (fd < 0 || (r->sums = fdopen(fd, "w+")) == NULL) {
        if (fd >= 0)
            close(fd);
        rc = pgs_fail(e, PGS_EIO, "cannot create a temporary file: %s", strerror(errno));
        goto fail;
    }
    r->hash = sha256_new();
    r->ar = archive_read_new();
    if (r->hash == NULL || r->ar == NULL) {
        rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
        goto fail;
    }
    /* Only what pgship writes: fewer parsers, less to attack. */
    if (archive_read_support_format_tar(r->ar) != ARCHIVE_OK) {
        rc = pgs_fail(e, PGS_EIO, "libarchive: %s", archive_error_string(r->ar));
        goto fail;
    }
    if ((rc = zstream_open(&r->z, env, e)) != 0)
        goto fail;
    if (archive_read_open(r->ar, r, NULL, br_tar_read_cb, NULL) != ARCHIVE_OK) {
        rc = br_archive_fail(r, e, "opening the archive");
        goto fail;
    }
    *out = r;
    return 0;
fail:
    bundle_reader_free(r);
    return rc;
}

ssize_t bundle_reader_read(bundle_reader *r, void *buf, size_t len, pgs_error *e)
{
    if (!r->have_member)
        return 0;
    la_ssize_t n = archive_read_data(r->ar, buf, len);
    if (n < 0)
        return br_archive_fail(r, e, "reading member data");
    sha256_update(r->hash, buf, (size_t)n);
    r->cur_read += (uint64_t)n;
    if (r->cur_read > r->cur.size)
        return pgs_fail(e, PGS_EFORMAT, "member %s is longer than its header says", r->cur.name);
    return n;
}

/* Finishes the current member: reads what is left, records its digest. */
static int br_close_member(bundle_reader *r, pgs_error *e)
{
    if (!r->have_member)
        return 0;
    char buf[65536];
    ssize_t n;
    while ((n = bundle_reader_read(r, buf, sizeof(buf), e)) > 0)
        ;
    if (n < 0)
        return (int)n;
    if (r->cur_read != r->cur.size)
        return pgs_fail(e, PGS_ETRUNC, "member %s ends after %llu of %llu bytes", r->cur.name,
                        (unsigned long long)r->cur_read, (unsigned long long)r->cur.size);
    uint8_t digest[SHA256_LEN];
    sha256_final(r->hash, digest);
    if (r->cur.kind != BUNDLE_K_SUMS)
        sums_line(r->sums, digest, r->cur.name);
    r->have_member = 0;
    return 0;
}

/* Reads SHA256SUMS line by line and compares each line with the one we computed. */
static int br_check_sums(bundle_reader *r, pgs_error *e)
{
    if (fflush(r->sums) != 0 || fseek(r->sums, 0, SEEK_SET) != 0)
        return pgs_fail(e, PGS_EIO, "reading the temporary checksum list failed");
    char line[BUNDLE_SUMS_LINE_MAX + 2], want[BUNDLE_SUMS_LINE_MAX + 2];
    size_t ll = 0;
    uint64_t lineno = 0;
    char buf[65536];
    ssize_t n;
    for (;;) {
        n = bundle_reader_read(r, buf, sizeof(buf), e);
        if (n < 0)
            return (int)n;
        if (n == 0)
            break;
        for (ssize_t i = 0; i < n; i++) {
            if (ll >= BUNDLE_SUMS_LINE_MAX)
                return pgs_fail(e, PGS_ELIMIT, "SHA256SUMS line %llu is too long",
                                (unsigned long long)lineno + 1);
            line[ll++] = buf[i];
            if (buf[i] != '\n')
                continue;
            line[ll] = '\0';
            ll = 0;
            lineno++;
            if (fgets(want, sizeof(want), r->sums) == NULL)
                return pgs_fail(e, PGS_ESUM, "SHA256SUMS lists more members than the archive has");
            if (strcmp(line, want) != 0) {
                const char *name = want + SHA256_HEX_LEN + 2;
                want[strcspn(want, "\n")] = '\0';
                if (strlen(line) > SHA256_HEX_LEN + 2 &&
                    strncmp(line + SHA256_HEX_LEN + 2, name, strlen(name)) == 0)
                    return pgs_fail(e, PGS_ESUM, "checksum mismatch for member %s", name);
                return pgs_fail(e, PGS_ESUM, "SHA256SUMS line %llu does not match member %s",
                                (unsigned long long)lineno, name);
            }
        }
    }
    if (ll != 0)
        return pgs_fail(e, PGS_EFORMAT, "SHA256SUMS does not end with a newline");
    if (fgets(want, sizeof(want), r->sums) != NULL) {
        want[strcspn(want, "\n")] = '\0';
        return pgs_fail(e, PGS_ESUM, "SHA256SUMS does not list member %s",
                        want + SHA256_HEX_LEN + 2);
    }
    return 0;
}

/* Checks that a member may come next, given what came before. */
static int br_check_order(bundle_reader *r, bundle_member *m, pgs_error *e)
{
    if (r->stage == BR_START && m->kind != BUNDLE_K_MANIFEST && m->kind != BUNDLE_K_INVALID)
        return pgs_fail(e, PGS_EORDER, "the first member must be %s, not %s", BUNDLE_MANIFEST,
                        m->name);
    switch (m->kind) {
    case BUNDLE_K_MANIFEST:
        if (r->stage != BR_START)
            return pgs_fail(e, PGS_EORDER, "duplicate member %s", m->name);
        r->stage = BR_AFTER_MANIFEST;
        if (m->size > BUNDLE_MANIFEST_MAX)
            return pgs_fail(e, PGS_ELIMIT, "%s is larger than %u bytes", m->name,
                            BUNDLE_MANIFEST_MAX);
        return 0;
    case BUNDLE_K_GLOBALS:
        if (r->stage != BR_AFTER_MANIFEST || r->globals_seen)
            return pgs_fail(e, PGS_EORDER, "member %s is out of place", m->name);
        r->globals_seen = 1;
        return 0;
    case BUNDLE_K_PART:
    case BUNDLE_K_DUMPFILE:
        if (r->stage != BR_AFTER_MANIFEST && r->stage != BR_DUMP)
            return pgs_fail(e, PGS_EORDER, "member %s is out of place", m->name);
        if (r->dump_kind != 0 && r->dump_kind != (int)m->kind)
            return pgs_fail(e, PGS_EFORMAT, "member %s mixes the custom and directory layouts",
                            m->name);
        r->dump_kind = (int)m->kind;
        if (m->kind == BUNDLE_K_PART) {
            if (m->part < r->next_part)
                return pgs_fail(e, PGS_EORDER, "duplicate member %s", m->name);
            if (m->part > r->next_part)
                return pgs_fail(e, PGS_EORDER, "member %s follows part %u: parts are missing",
                                m->name, r->next_part - 1);
            r->next_part++;
        }
        r->dump_members++;
        r->stage = BR_DUMP;
        return 0;
    case BUNDLE_K_END:
        if (r->stage != BR_DUMP)
            return pgs_fail(e, PGS_EORDER,
                            r->stage == BR_AFTER_END ? "duplicate member %s"
                                                     : "member %s comes before any dump data",
                            m->name);
        if (m->size > BUNDLE_END_MAX)
            return pgs_fail(e, PGS_ELIMIT, "%s is larger than %u bytes", m->name, BUNDLE_END_MAX);
        r->stage = BR_AFTER_END;
        return 0;
    case BUNDLE_K_SUMS:
        if (r->stage != BR_AFTER_END)
            return pgs_fail(e, PGS_EORDER, "member %s is out of place", m->name);
        return 0;
    default:
        return pgs_fail(e, PGS_EFORMAT, "unexpected member \"%s\"", m->name);
    }
}

int bundle_reader_next(bundle_reader *r, bundle_member *m, pgs_error *e)
{
    memset(m, 0, sizeof(*m));
    if (r->stage == BR_DONE)
        return 0;
    int rc = br_close_member(r, e);
    if (rc != 0)
        return rc;
    struct archive_entry *ent = NULL;
    int ar = archive_read_next_header(r->ar, &ent);
    if (ar == ARCHIVE_EOF) {
        if (r->z_failed) {
            *e = r->z_err;
            return e->code;
        }
        if (r->stage == BR_START)
            return pgs_fail(e, PGS_EFORMAT, "the archive holds no members");
        return pgs_fail(e, PGS_ETRUNC, "the archive ends before its %s member", BUNDLE_SUMS);
    }
    if (ar != ARCHIVE_OK)
        return br_archive_fail(r, e, "reading a member header");
    const char *name = archive_entry_pathname(ent);
    if (name == NULL)
        return pgs_fail(e, PGS_EFORMAT, "a member has no name");
    if (strlen(name) > BUNDLE_NAME_MAX)
        return pgs_fail(e, PGS_ELIMIT, "a member name is longer than %d bytes", BUNDLE_NAME_MAX);
    snprintf(m->name, sizeof(m->name), "%s", name);
    if (archive_entry_filetype(ent) != AE_IFREG)
        return pgs_fail(e, PGS_EFORMAT, "member \"%s\" is not a regular file", m->name);
    if (!archive_entry_size_is_set(ent) || archive_entry_size(ent) < 0)
        return pgs_fail(e, PGS_EFORMAT, "member \"%s\" has no size", m->name);
    m->size = (uint64_t)archive_entry_size(ent);
    m->kind = bundle_name_kind(m->name, &m->part);
    rc = br_check_order(r, m, e);
    if (rc != 0)
        return rc;
    r->cur = *m;
    r->cur_read = 0;
    r->have_member = 1;
    sha256_reset(r->hash);
    if (m->kind != BUNDLE_K_SUMS)
        return 1;

    /* SHA256SUMS is last: check it, then the end of the tar, then the envelope's final tag. */
    if ((rc = br_check_sums(r, e)) != 0 || (rc = br_close_member(r, e)) != 0)
        return rc;
    ar = archive_read_next_header(r->ar, &ent);
    if (ar == ARCHIVE_OK)
        return pgs_fail(e, PGS_EFORMAT, "member \"%s\" follows %s", archive_entry_pathname(ent),
                        BUNDLE_SUMS);
    if (ar != ARCHIVE_EOF)
        return br_archive_fail(r, e, "reading the end of the archive");
    /* Nothing may hide after the tar's end-of-archive blocks: the writer ends the stream right
     * there, so the decompressed stream must end exactly where the tar reader stopped. */
    const void *blk;
    size_t blen;
    while ((rc = zstream_next(&r->z, &blk, &blen, e)) > 0)
        ;
    if (rc < 0)
        return rc;
    if ((uint64_t)archive_filter_bytes(r->ar, 0) != r->z.bytes)
        return pgs_fail(e, PGS_ETRAIL, "%llu bytes of data follow the end of the tar",
                        (unsigned long long)(r->z.bytes - (uint64_t)archive_filter_bytes(r->ar, 0)));
    if ((rc = zstream_finish(&r->z, e)) < 0)
        return rc;
    r->stage = BR_DONE;
    return 0;
}

void bundle_reader_free(bundle_reader *r)
{
    if (r == NULL)
        return;
    if (r->ar != NULL)
        archive_read_free(r->ar);
    zstream_close(&r->z);
    sha256_free(r->hash);
    if (r->sums != NULL)
        fclose(r->sums);
    free(r);
}

/* ---- plain tar out ---- */

int bundle_decompress(envelope_reader *env, envelope_sink_fn sink, void *arg, pgs_error *e)
{
    zstream z;
    int rc = zstream_open(&z, env, e);
    const void *blk;
    size_t len;
    while (rc == 0 && (rc = zstream_next(&z, &blk, &len, e)) > 0) {
        errno = 0;
        if ((rc = sink(arg, blk, len)) != 0) {
            rc = pgs_fail(e, rc, "writing the tar failed: %s",
                          errno ? strerror(errno) : "the output refused the data");
            break;
        }
    }
    if (rc == 0)
        rc = zstream_finish(&z, e);
    zstream_close(&z);
    return rc;
}
