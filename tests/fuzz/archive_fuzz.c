/*
 * Fuzzes the tar layer behind a valid envelope. The first input byte picks the mode:
 *
 *   even:  the rest is the envelope's plaintext as is (what should be a zstd-compressed pax tar),
 *          which fuzzes the zstd reader and everything behind it;
 *   odd:   the rest is a tar, zstd-compressed here first, so that mutations land in tar headers
 *          and member data and reach pgship's member rules (names, order, SHA256SUMS) instead of
 *          dying in zstd's checks.
 *
 * The plaintext is sealed with the fixed key (chunk 4096), then read back through bundle_reader,
 * member by member, and once more through bundle_decompress.
 */
#include <archive.h>
#include <archive_entry.h>
#include <stddef.h>
#include <stdint.h>

#include "proto/bundle.h"
#include "proto/envelope.h"
#include "tests/unit/testutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static pgs_pubkey g_pub;
static pgs_seckey g_sec;

static envelope_reader *open_env(const tu_buf *env, tu_src *src)
{
    tu_src_init(src, env->data, env->len);
    envelope_reader *r = NULL;
    pgs_error e;
    if (envelope_reader_new(&r, tu_src_read, src) != 0)
        return NULL;
    if (envelope_reader_read_header(r, &e) != 0 || envelope_reader_unlock(r, &g_sec, 1, &e) != 0)
        __builtin_trap(); /* we just wrote it: it must open */
    return r;
}

static int null_sink(void *arg, const void *buf, size_t len)
{
    (void)buf;
    *(size_t *)arg += len;
    return 0;
}

static la_ssize_t buf_write_cb(struct archive *a, void *ud, const void *buf, size_t len)
{
    (void)a;
    return tu_buf_append(ud, buf, len) == 0 ? (la_ssize_t)len : -1;
}

/* One zstd frame of data, as libarchive's zstd filter writes it. */
static int zstd_compress(const uint8_t *data, size_t size, tu_buf *out)
{
    struct archive *a = archive_write_new();
    struct archive_entry *ent = archive_entry_new();
    int ok = a != NULL && ent != NULL && archive_write_set_format_raw(a) == ARCHIVE_OK &&
             archive_write_add_filter_zstd(a) == ARCHIVE_OK &&
             archive_write_set_filter_option(a, "zstd", "compression-level", "1") == ARCHIVE_OK &&
             archive_write_set_bytes_in_last_block(a, 1) == ARCHIVE_OK &&
             archive_write_open2(a, out, NULL, buf_write_cb, NULL, NULL) == ARCHIVE_OK;
    if (ok) {
        archive_entry_set_pathname(ent, "raw");
        archive_entry_set_filetype(ent, AE_IFREG);
        ok = archive_write_header(a, ent) == ARCHIVE_OK &&
             (size == 0 || archive_write_data(a, data, size) == (la_ssize_t)size) &&
             archive_write_close(a) == ARCHIVE_OK;
    }
    archive_entry_free(ent);
    archive_write_free(a);
    return ok ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        tu_fixed_keypair(TU_FUZZ_KEY_SEED, TU_FUZZ_KEY_NAME, &g_pub, &g_sec);
        ready = 1;
    }
    if (size < 1 || size > (1u << 20))
        return 0;
    int compress = data[0] & 1;
    data++;
    size--;
    tu_buf plain = {0}, env = {0};
    pgs_error e;
    if (compress) {
        if (zstd_compress(data, size, &plain) != 0)
            __builtin_trap();
        data = plain.data;
        size = plain.len;
    }
    if (tu_encrypt(&g_pub, 1, TU_FUZZ_CHUNK, data, size, &env, &e) != 0)
        __builtin_trap();
    tu_buf_free(&plain);

    tu_src src;
    envelope_reader *r = open_env(&env, &src);
    bundle_reader *br = NULL;
    if (r != NULL && bundle_reader_new(&br, r, &e) == 0) {
        bundle_member m;
        static uint8_t buf[4096];
        unsigned members = 0;
        while (bundle_reader_next(br, &m, &e) == 1) {
            /* Read every other member in full, leave the rest to next(). */
            if (members++ % 2 == 0)
                while (bundle_reader_read(br, buf, sizeof(buf), &e) > 0)
                    ;
        }
        bundle_reader_free(br);
    }
    envelope_reader_free(r);

    r = open_env(&env, &src);
    if (r != NULL) {
        size_t total = 0;
        (void)bundle_decompress(r, null_sink, &total, &e);
        envelope_reader_free(r);
    }
    tu_buf_free(&env);
    return 0;
}
