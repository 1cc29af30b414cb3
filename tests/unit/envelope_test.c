/*
 * Tests of the envelope (proto/envelope.c): round trips at the chunk boundaries, and one test per
 * way an archive can be damaged or forged, each asserting the error code and the words of the
 * message an operator would see. A small independent writer ("forge") built from the format
 * description makes frames the real writer never emits (an empty non-final chunk, other tags).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "common/keys.h"
#include "proto/envelope.h"
#include "tests/unit/testutil.h"

#define CHUNK 4096u
#define NKEYS 4 /* keys 0..2 are recipients in the tests; key 3 is a stranger */

static pgs_pubkey g_pub[NKEYS];
static pgs_seckey g_sec[NKEYS];

static size_t hdr_len(size_t nrcpts)
{
    return ENVELOPE_FIXED_LEN + nrcpts * ENVELOPE_RECIPIENT_LEN + ENVELOPE_MAC_LEN;
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static void wr64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

/* Fills offs with the start of each frame and offs[count] with the end; returns count. */
static size_t frame_offsets(const tu_buf *b, size_t nrcpts, size_t *offs, size_t max)
{
    size_t off = hdr_len(nrcpts), n = 0;
    while (off + ENVELOPE_FRAME_HDR <= b->len && n < max) {
        offs[n++] = off;
        off += ENVELOPE_FRAME_HDR + rd32(b->data + off + 8);
    }
    assert_int_equal(off, b->len);
    offs[n] = off;
    return n;
}

static void make_plain(uint8_t *p, size_t len)
{
    for (size_t i = 0; i < len; i++)
        p[i] = (uint8_t)(i * 7 + (i >> 8));
}

/* An archive of len pattern bytes for the first nrcpts test keys. */
static void make_env(size_t nrcpts, size_t len, tu_buf *out)
{
    uint8_t *plain = malloc(len ? len : 1);
    assert_non_null(plain);
    make_plain(plain, len);
    pgs_error e = {0};
    int rc = tu_encrypt(g_pub, nrcpts, CHUNK, plain, len, out, &e);
    if (rc != 0)
        fail_msg("encrypt: %s", e.msg);
    free(plain);
}

/* Decrypts b with key k (with its single-key list); returns the code. */
static int open_with(const void *data, size_t len, size_t k, pgs_error *e)
{
    tu_buf out = {0};
    int rc = tu_decrypt(data, len, &g_sec[k], 1, &out, NULL, e);
    tu_buf_free(&out);
    return rc;
}

/* Builds a new buffer: b with [from, to) replaced by ins. */
static void splice(const tu_buf *b, size_t from, size_t to, const void *ins, size_t inslen,
                   tu_buf *out)
{
    assert_int_equal(tu_buf_append(out, b->data, from), 0);
    assert_int_equal(tu_buf_append(out, ins, inslen), 0);
    assert_int_equal(tu_buf_append(out, b->data + to, b->len - to), 0);
}

/* ---- an independent writer, from the format description ---- */

typedef struct forge {
    crypto_secretstream_xchacha20poly1305_state st;
    uint8_t ad[ENVELOPE_MAC_LEN + 8];
    uint64_t seq;
    tu_buf out;
} forge;

static void forge_start(forge *f, const pgs_pubkey *rcpt, uint32_t chunk_size)
{
    memset(f, 0, sizeof(*f));
    uint8_t data_key[32], stream_key[32], mac_key[32];
    uint8_t hdr[ENVELOPE_FIXED_LEN + ENVELOPE_RECIPIENT_LEN + ENVELOPE_MAC_LEN];
    crypto_kdf_keygen(data_key);
    crypto_kdf_derive_from_key(stream_key, 32, 1, "pgshipv1", data_key);
    crypto_kdf_derive_from_key(mac_key, 32, 2, "pgshipv1", data_key);
    memcpy(hdr, ENVELOPE_MAGIC, ENVELOPE_MAGIC_LEN);
    wr16(hdr + 8, 1);
    wr16(hdr + 10, 0);
    wr32(hdr + 12, chunk_size);
    wr16(hdr + 16, 1);
    wr16(hdr + 18, 0);
    crypto_secretstream_xchacha20poly1305_init_push(&f->st, hdr + 20, stream_key);
    memcpy(hdr + ENVELOPE_FIXED_LEN, rcpt->id, KEY_ID_LEN);
    assert_int_equal(crypto_box_seal(hdr + ENVELOPE_FIXED_LEN + KEY_ID_LEN, data_key, 32, rcpt->pk),
                     0);
    uint8_t *mac = hdr + ENVELOPE_FIXED_LEN + ENVELOPE_RECIPIENT_LEN;
    crypto_generichash(mac, ENVELOPE_MAC_LEN, hdr, (size_t)(mac - hdr), mac_key, 32);
    memcpy(f->ad, mac, ENVELOPE_MAC_LEN);
    assert_int_equal(tu_buf_append(&f->out, hdr, sizeof(hdr)), 0);
}

static void forge_frame(forge *f, const void *plain, size_t len, uint8_t tag)
{
    uint8_t *frame = malloc(ENVELOPE_FRAME_HDR + len + ENVELOPE_ABYTES);
    assert_non_null(frame);
    wr64(f->ad + ENVELOPE_MAC_LEN, f->seq);
    wr64(frame, f->seq);
    wr32(frame + 8, (uint32_t)(len + ENVELOPE_ABYTES));
    crypto_secretstream_xchacha20poly1305_push(&f->st, frame + ENVELOPE_FRAME_HDR, NULL, plain, len,
                                               f->ad, sizeof(f->ad), tag);
    assert_int_equal(tu_buf_append(&f->out, frame, ENVELOPE_FRAME_HDR + len + ENVELOPE_ABYTES), 0);
    free(frame);
    f->seq++;
}

/* ---- round trips ---- */

static void test_envelope_round_trip_sizes(void **state)
{
    (void)state;
    static const size_t sizes[] = {0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK + 123};
    static const size_t frames[] = {1, 1, 1, 1, 2, 6};
    static const size_t nrcpts[] = {1, 3};
    for (size_t r = 0; r < 2; r++) {
        for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
            tu_buf env = {0};
            make_env(nrcpts[r], sizes[s], &env);
            /* Each frame carries 12 bytes of header and a 17-byte tag; the final one is never
             * empty unless the whole stream is. */
            assert_int_equal(env.len, hdr_len(nrcpts[r]) +
                                          frames[s] * (ENVELOPE_FRAME_HDR + ENVELOPE_ABYTES) +
                                          sizes[s]);
            uint8_t *want = malloc(sizes[s] + 1);
            make_plain(want, sizes[s]);
            for (size_t k = 0; k < nrcpts[r]; k++) {
                tu_buf out = {0};
                size_t chunks = 0;
                pgs_error e = {0};
                int rc = tu_decrypt(env.data, env.len, &g_sec[k], 1, &out, &chunks, &e);
                if (rc != 0)
                    fail_msg("size %zu, %zu recipients, key %zu: %s", sizes[s], nrcpts[r], k,
                             e.msg);
                assert_int_equal(out.len, sizes[s]);
                assert_int_equal(chunks, frames[s]);
                if (sizes[s] > 0)
                    assert_memory_equal(out.data, want, sizes[s]);
                tu_buf_free(&out);
            }
            free(want);
            tu_buf_free(&env);
        }
    }
}

static void test_envelope_round_trip_small_writes_and_reads(void **state)
{
    (void)state;
    size_t len = 3 * CHUNK + 7;
    uint8_t *plain = malloc(len);
    make_plain(plain, len);
    tu_buf env = {0};
    pgs_error e = {0};
    envelope_writer *w = NULL;
    assert_int_equal(envelope_writer_new(&w, g_pub, 2, CHUNK, tu_buf_sink, &env, &e), 0);
    for (size_t i = 0; i < len; i += 13)
        assert_int_equal(envelope_writer_write(w, plain + i, len - i < 13 ? len - i : 13, &e), 0);
    assert_int_equal(envelope_writer_finish(w, &e), 0);
    envelope_writer_free(w);

    static const size_t steps[] = {1, 7, 4113};
    for (size_t s = 0; s < 3; s++) {
        tu_src src;
        tu_src_init(&src, env.data, env.len);
        src.max_read = steps[s];
        envelope_reader *r = NULL;
        assert_int_equal(envelope_reader_new(&r, tu_src_read, &src), 0);
        assert_int_equal(envelope_reader_read_header(r, &e), 0);
        assert_int_equal(envelope_reader_unlock(r, &g_sec[1], 1, &e), 0);
        tu_buf out = {0};
        const uint8_t *d;
        size_t n;
        int rc;
        while ((rc = envelope_reader_next(r, &d, &n, &e)) == 1)
            tu_buf_append(&out, d, n);
        assert_int_equal(rc, 0);
        assert_int_equal(out.len, len);
        assert_memory_equal(out.data, plain, len);
        assert_int_equal(envelope_reader_offset(r), env.len);
        /* After the verified end, next keeps saying "end". */
        assert_int_equal(envelope_reader_next(r, &d, &n, &e), 0);
        tu_buf_free(&out);
        envelope_reader_free(r);
    }
    tu_buf_free(&env);
    free(plain);
}

static void test_envelope_header_accessors(void **state)
{
    (void)state;
    tu_buf env = {0};
    make_env(3, 10, &env);
    tu_src src;
    tu_src_init(&src, env.data, env.len);
    envelope_reader *r = NULL;
    pgs_error e = {0};
    assert_int_equal(envelope_reader_new(&r, tu_src_read, &src), 0);
    assert_int_equal(envelope_reader_recipient_count(r), 0);
    assert_null(envelope_reader_recipient_id(r, 0));
    assert_int_equal(envelope_reader_read_header(r, &e), 0);
    assert_int_equal(envelope_reader_recipient_count(r), 3);
    for (size_t i = 0; i < 3; i++)
        assert_memory_equal(envelope_reader_recipient_id(r, i), g_pub[i].id, KEY_ID_LEN);
    assert_null(envelope_reader_recipient_id(r, 3));
    assert_int_equal(envelope_reader_chunk_size(r), CHUNK);
    assert_int_equal(envelope_reader_offset(r), hdr_len(3));
    assert_memory_equal(env.data, ENVELOPE_MAGIC, ENVELOPE_MAGIC_LEN);
    envelope_reader_free(r);
    tu_buf_free(&env);
}

static void test_envelope_forged_from_spec_opens(void **state)
{
    (void)state;
    forge f;
    forge_start(&f, &g_pub[0], CHUNK);
    forge_frame(&f, "hello ", 6, crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
    forge_frame(&f, "world", 5, crypto_secretstream_xchacha20poly1305_TAG_FINAL);
    tu_buf out = {0};
    pgs_error e = {0};
    int rc = tu_decrypt(f.out.data, f.out.len, &g_sec[0], 1, &out, NULL, &e);
    if (rc != 0)
        fail_msg("%s", e.msg);
    assert_int_equal(out.len, 11);
    assert_memory_equal(out.data, "hello world", 11);
    tu_buf_free(&out);
    tu_buf_free(&f.out);
}

/* ---- damaged archives ---- */

static void test_envelope_truncated(void **state)
{
    (void)state;
    tu_buf env = {0};
    make_env(1, 2 * CHUNK + 100, &env); /* three frames */
    size_t offs[8];
    assert_int_equal(frame_offsets(&env, 1, offs, 7), 3);
    size_t h = hdr_len(1);
    struct {
        size_t cut;
        const char *msg;
    } cases[] = {
        {0, "the input is empty"},
        {5, "header is incomplete"},
        {20, "header is incomplete"},
        {ENVELOPE_FIXED_LEN + 10, "recipient list is incomplete"},
        {h - 1, "header MAC is incomplete"},
        {h, "ends after 0 chunks without the final tag"},
        {h + 5, "ends inside chunk 0"},
        {offs[1] - 1, "ends inside chunk 0"},
        {offs[1], "ends after 1 chunk without the final tag"},
        {offs[2], "ends after 2 chunks without the final tag"},
        {offs[2] + ENVELOPE_FRAME_HDR, "ends inside chunk 2"},
        {env.len - 1, "ends inside chunk 2"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        pgs_error e = {0};
        int rc = open_with(env.data, cases[i].cut, 0, &e);
        TU_ASSERT_ERR(rc, e, PGS_ETRUNC, cases[i].msg);
    }
    tu_buf_free(&env);
}

static void test_envelope_reordered_chunks(void **state)
{
    (void)state;
    tu_buf env = {0};
    make_env(1, 3 * CHUNK + 50, &env);
    size_t offs[8];
    assert_int_equal(frame_offsets(&env, 1, offs, 7), 4);
    size_t flen = offs[2] - offs[1];
    assert_int_equal(offs[3] - offs[2], flen);
    tu_buf bad = {0};
    assert_int_equal(tu_buf_append(&bad, env.data, env.len), 0);
    memcpy(bad.data + offs[1], env.data + offs[2], flen);
    memcpy(bad.data + offs[2], env.data + offs[1], flen);
    pgs_error e = {0};
    TU_ASSERT_ERR(open_with(bad.data, bad.len, 0, &e), e, PGS_EORDER,
                  "expected chunk 1, found chunk 2");

    /* The same swap with the seq fields rewritten to match the positions: the order check
     * passes, but seq is in the associated data, so authentication fails. */
    wr64(bad.data + offs[1], 1);
    wr64(bad.data + offs[2], 2);
    TU_ASSERT_ERR(open_with(bad.data, bad.len, 0, &e), e, PGS_EAUTH,
                  "chunk 1 failed authentication");
    tu_buf_free(&bad);
    tu_buf_free(&env);
}

static void test_envelope_missing_chunk(void **state)
{
    (void)state;
    tu_buf env = {0}, bad = {0};
    make_env(1, 3 * CHUNK + 50, &env);
    size_t offs[8];
    assert_int_equal(frame_offsets(&env, 1, offs, 7), 4);
    splice(&env, offs[1], offs[2], NULL, 0, &bad);
    pgs_error e = {0};
    TU_ASSERT_ERR(open_with(bad.data, bad.len, 0, &e), e, PGS_EORDER, "chunks missing");
    tu_buf_free(&bad);
    tu_buf_free(&env);
}

static void test_envelope_duplicated_chunk(void **state)
{
    (void)state;
    tu_buf env = {0}, bad = {0};
    make_env(1, 3 * CHUNK + 50, &env);
    size_t offs[8];
    assert_int_equal(frame_offsets(&env, 1, offs, 7), 4);
    /* Frame 1 twice in a row. */
    splice(&env, offs[2], offs[2], env.data + offs[1], offs[2] - offs[1], &bad);
    pgs_error e = {0};
    TU_ASSERT_ERR(open_with(bad.data, bad.len, 0, &e), e, PGS_EORDER,
                  "duplicated chunk: chunk 1 appears again at position 2");
    tu_buf_free(&bad);

    /* The final frame repeated after itself is data after the end. */
    tu_buf_append(&bad, env.data, env.len);
    tu_buf_append(&bad, env.data + offs[3], offs[4] - offs[3]);
    TU_ASSERT_ERR(open_with(bad.data, bad.len, 0, &e), e, PGS_ETRAIL, "trailing data");
    tu_buf_free(&bad);
    tu_buf_free(&env);
}

static void test_envelope_modified_ciphertext(void **state)
{
    (void)state;
    tu_buf env = {0};
    make_env(2, 2 * CHUNK + 10, &env);
    size_t offs[8];
    assert_int_equal(frame_offsets(&env, 2, offs, 7), 3);
    /* The first ciphertext byte of chunk 1, a middle byte, and the last byte (the final tag's
     * MAC). */
    size_t at[] = {offs[1] + ENVELOPE_FRAME_HDR, offs[1] + 2000, env.len - 1};
    const char *msg[] = {"chunk 1 failed authentication", "chunk 1 failed authentication",
                         "chunk 2 failed authentication"};
    for (size_t i = 0; i < 3; i++) {
        env.data[at[i]] ^= 0x01;
        for (size_t k = 0; k < 2; k++) {
            pgs_error e = {0};
            TU_ASSERT_ERR(open_with(env.data, env.len, k, &e), e, PGS_EAUTH, msg[i]);
        }
        env.data[at[i]] ^= 0x01;
    }
    pgs_error e = {0};
    assert_int_equal(open_with(env.data, env.len, 0, &e), 0);
    tu_buf_free(&env);
}

static void test_envelope_modified_frame_length(void **state)
{
    (void)state;
    tu_buf env = {0};
    make_env(1, CHUNK + 10, &env);
    size_t offs[8];
    assert_int_equal(frame_offsets(&env, 1, offs, 7), 2);
    uint8_t *len0 = env.data + offs[0] + 8, *len1 = env.data + offs[1] + 8;
    pgs_error e = {0};

    wr32(len0, CHUNK + ENVELOPE_ABYTES + 1);
    TU_ASSERT_ERR(open_with(env.data, env.len, 0, &e), e, PGS_ELIMIT,
                  "chunk 0: length 4114 is outside [17, 4113]");
    wr32(len0, 0x01000000u + CHUNK + ENVELOPE_ABYTES); /* a flipped high byte */
    TU_ASSERT_ERR(open_with(env.data, env.len, 0, &e), e, PGS_ELIMIT, "is outside");
    wr32(len0, ENVELOPE_ABYTES - 1);
    TU_ASSERT_ERR(open_with(env.data, env.len, 0, &e), e, PGS_ELIMIT, "length 16 is outside");
    wr32(len0, CHUNK + ENVELOPE_ABYTES - 1);
    TU_ASSERT_ERR(open_with(env.data, env.len, 0, &e), e, PGS_EAUTH,
                  "chunk 0 failed authentication");
    wr32(len0, CHUNK + ENVELOPE_ABYTES);

    /* The last frame claiming one byte more than the file holds. */
    wr32(len1, 10 + ENVELOPE_ABYTES + 1);
    TU_ASSERT_ERR(open_with(env.data, env.len, 0, &e), e, PGS_ETRUNC, "ends inside chunk 1");
    wr32(len1, 10 + ENVELOPE_ABYTES);
    assert_int_equal(open_with(env.data, env.len, 0, &e), 0);
    tu_buf_free(&env);
}

static void test_envelope_modified_header_fixed_part(void **state)
{
    (void)state;
    tu_buf env = {0};
    make_env(2, 100, &env);
    pgs_error e = {0};
    /* chunk_size 4096 -> 8192: still valid, so only the MAC catches it. */
    wr32(env.data + 12, 2 * CHUNK);
    TU_ASSERT_ERR(open_with(env.data, env.len, 0, &e), e, PGS_EAUTH,
                  "header authentication failed");
    wr32(env.data + 12, CHUNK);
    /* A byte of the secretstream header, and a byte of the MAC itself. */
    size_t at[] = {20, 43, hdr_len(2) - ENVELOPE_MAC_LEN, hdr_len(2) - 1};
    for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
        env.data[at[i]] ^= 0x80;
        for (size_t k = 0; k < 2; k++)
            TU_ASSERT_ERR(open_with(env.data, env.len, k, &e), e, PGS_EAUTH,
                          "header authentication failed");
        env.data[at[i]] ^= 0x80;
    }
    /* Flags and the reserved field must be zero. */
    env.data[11] = 1;
    TU_ASSERT_ERR(open_with(env.data, env.len, 0, &e), e, PGS_EFORMAT, "unsupported header flags");
    env.data[11] = 0;
    env.data[18] = 0x80;
    TU_ASSERT_ERR(open_with(env.data, env.len, 0, &e), e, PGS_EFORMAT, "unsupported header flags");
    env.data[18] = 0;
    assert_int_equal(open_with(env.data, env.len, 0, &e), 0);
    tu_buf_free(&env);
}

static void test_envelope_modified_recipient(void **state)
{
    (void)state;
    tu_buf env = {0};
    make_env(3, 100, &env);
    pgs_error e = {0};
    uint8_t *r0 = env.data + ENVELOPE_FIXED_LEN, *r1 = r0 + ENVELOPE_RECIPIENT_LEN;

    /* Recipient 0's sealed key: that key can no longer open it. */
    r0[KEY_ID_LEN + 40] ^= 0x04;
    TU_ASSERT_ERR(open_with(env.data, env.len, 0, &e), e, PGS_EAUTH, "does not open with that key");
    /* The other recipients still open their entry, and the MAC then covers the change. */
    TU_ASSERT_ERR(open_with(env.data, env.len, 1, &e), e, PGS_EAUTH,
                  "header authentication failed");
    r0[KEY_ID_LEN + 40] ^= 0x04;

    /* Recipient 1's key id: key 1 is no longer listed; key 0 sees the MAC fail. */
    r1[0] ^= 0xff;
    char id1[KEY_ID_HEX_LEN + 1];
    key_id_hex(g_pub[1].id, id1);
    TU_ASSERT_ERR(open_with(env.data, env.len, 1, &e), e, PGS_ENOKEY, id1);
    TU_ASSERT_ERR(open_with(env.data, env.len, 0, &e), e, PGS_EAUTH,
                  "header authentication failed");
    r1[0] ^= 0xff;

    /* The same key id listed twice is refused before any key is tried. */
    memcpy(r1, r0, KEY_ID_LEN);
    TU_ASSERT_ERR(open_with(env.data, env.len, 2, &e), e, PGS_EFORMAT, "twice");
    memcpy(r1, g_pub[1].id, KEY_ID_LEN);
    for (size_t k = 0; k < 3; k++)
        assert_int_equal(open_with(env.data, env.len, k, &e), 0);
    tu_buf_free(&env);
}

static void test_envelope_bad_version(void **state)
{
    (void)state;
    tu_buf env = {0};
    make_env(1, 10, &env);
    pgs_error e = {0};
    wr16(env.data + 8, 2);
    TU_ASSERT_ERR(open_with(env.data, env.len, 0, &e), e, PGS_EVERSION,
                  "unsupported archive format version 2");
    wr16(env.data + 8, 0);
    TU_ASSERT_ERR(open_with(env.data, env.len, 0, &e), e, PGS_EVERSION, "version 0");
    wr16(env.data + 8, 0x0100);
    TU_ASSERT_ERR(open_with(env.data, env.len, 0, &e), e, PGS_EVERSION, "version 256");
    tu_buf_free(&env);
}

static void test_envelope_bad_magic(void **state)
{
    (void)state;
    tu_buf env = {0};
    make_env(1, 10, &env);
    pgs_error e = {0};
    for (size_t i = 0; i < ENVELOPE_MAGIC_LEN; i++) {
        env.data[i] ^= 0x20;
        TU_ASSERT_ERR(open_with(env.data, env.len, 0, &e), e, PGS_EFORMAT, "bad magic");
        env.data[i] ^= 0x20;
    }
    /* Something else entirely, like a zip file or a plain tar. */
    uint8_t zip[200] = "PK\x03\x04";
    TU_ASSERT_ERR(open_with(zip, sizeof(zip), 0, &e), e, PGS_EFORMAT, "not a pgship archive");
    tu_buf_free(&env);
}

static void test_envelope_chunk_size_limits(void **state)
{
    (void)state;
    tu_buf env = {0};
    make_env(1, 10, &env);
    pgs_error e = {0};
    static const uint32_t bad[] = {0, ENVELOPE_CHUNK_MIN - 1, ENVELOPE_CHUNK_MAX + 1, 0xffffffffu};
    for (size_t i = 0; i < 4; i++) {
        wr32(env.data + 12, bad[i]);
        TU_ASSERT_ERR(open_with(env.data, env.len, 0, &e), e, PGS_ELIMIT,
                      "header field chunk_size");
    }
    tu_buf_free(&env);
}

static void test_envelope_recipient_count_limits(void **state)
{
    (void)state;
    tu_buf env = {0};
    make_env(1, 10, &env);
    pgs_error e = {0};
    wr16(env.data + 16, 0);
    TU_ASSERT_ERR(open_with(env.data, env.len, 0, &e), e, PGS_ELIMIT, "recipient count 0");
    wr16(env.data + 16, ENVELOPE_RECIPIENTS_MAX + 1);
    TU_ASSERT_ERR(open_with(env.data, env.len, 0, &e), e, PGS_ELIMIT, "recipient count 33");
    wr16(env.data + 16, 0xffff);
    TU_ASSERT_ERR(open_with(env.data, env.len, 0, &e), e, PGS_ELIMIT, "recipient count 65535");
    /* Two recipients claimed where one is written: the header no longer parses as written. */
    wr16(env.data + 16, 2);
    int rc = open_with(env.data, env.len, 0, &e);
    assert_true(rc < 0);
    tu_buf_free(&env);
}

static void test_envelope_wrong_key(void **state)
{
    (void)state;
    tu_buf env = {0};
    make_env(2, 10, &env);
    char id0[KEY_ID_HEX_LEN + 1], id1[KEY_ID_HEX_LEN + 1], id3[KEY_ID_HEX_LEN + 1];
    key_id_hex(g_pub[0].id, id0);
    key_id_hex(g_pub[1].id, id1);
    key_id_hex(g_pub[3].id, id3);
    assert_int_equal(strlen(id0), KEY_ID_HEX_LEN);
    pgs_error e = {0};
    TU_ASSERT_ERR(open_with(env.data, env.len, 3, &e), e, PGS_ENOKEY, "no key for this archive");
    assert_non_null(strstr(e.msg, id0));
    assert_non_null(strstr(e.msg, id1));
    assert_non_null(strstr(e.msg, id3));

    /* No key at all. */
    tu_src src;
    tu_src_init(&src, env.data, env.len);
    envelope_reader *r = NULL;
    assert_int_equal(envelope_reader_new(&r, tu_src_read, &src), 0);
    assert_int_equal(envelope_reader_read_header(r, &e), 0);
    TU_ASSERT_ERR(envelope_reader_unlock(r, NULL, 0, &e), e, PGS_ENOKEY, "the key given is none");
    envelope_reader_free(r);

    /* Several keys given: the one that is a recipient is used. */
    pgs_seckey keys[2] = {g_sec[3], g_sec[1]};
    tu_buf out = {0};
    assert_int_equal(tu_decrypt(env.data, env.len, keys, 2, &out, NULL, &e), 0);
    assert_int_equal(out.len, 10);
    tu_buf_free(&out);
    tu_buf_free(&env);
}

static void test_envelope_trailing_data(void **state)
{
    (void)state;
    tu_buf env = {0};
    make_env(1, CHUNK + 1, &env);
    assert_int_equal(tu_buf_append(&env, "x", 1), 0);
    pgs_error e = {0};
    TU_ASSERT_ERR(open_with(env.data, env.len, 0, &e), e, PGS_ETRAIL,
                  "trailing data after the final chunk (chunk 1)");
    tu_buf_free(&env);
}

static void test_envelope_forged_frames_rejected(void **state)
{
    (void)state;
    pgs_error e = {0};
    forge f;

    /* An empty chunk that is not the last one. */
    forge_start(&f, &g_pub[0], CHUNK);
    forge_frame(&f, NULL, 0, crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
    forge_frame(&f, "x", 1, crypto_secretstream_xchacha20poly1305_TAG_FINAL);
    TU_ASSERT_ERR(open_with(f.out.data, f.out.len, 0, &e), e, PGS_EFORMAT,
                  "chunk 0 is empty but not final");
    tu_buf_free(&f.out);

    /* secretstream tags pgship never writes. */
    uint8_t tags[] = {crypto_secretstream_xchacha20poly1305_TAG_PUSH,
                      crypto_secretstream_xchacha20poly1305_TAG_REKEY};
    for (size_t i = 0; i < 2; i++) {
        forge_start(&f, &g_pub[0], CHUNK);
        forge_frame(&f, "x", 1, tags[i]);
        forge_frame(&f, "y", 1, crypto_secretstream_xchacha20poly1305_TAG_FINAL);
        TU_ASSERT_ERR(open_with(f.out.data, f.out.len, 0, &e), e, PGS_EFORMAT,
                      "chunk 0 has an unexpected tag");
        tu_buf_free(&f.out);
    }

    /* An authentic chunk after the final one. */
    forge_start(&f, &g_pub[0], CHUNK);
    forge_frame(&f, "x", 1, crypto_secretstream_xchacha20poly1305_TAG_FINAL);
    forge_frame(&f, "y", 1, crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
    TU_ASSERT_ERR(open_with(f.out.data, f.out.len, 0, &e), e, PGS_ETRAIL, "trailing data");
    tu_buf_free(&f.out);

    /* An empty final chunk after data: docs/archive-format.md says the final chunk may be empty
     * only if the whole plaintext is. */
    forge_start(&f, &g_pub[0], CHUNK);
    forge_frame(&f, "x", 1, crypto_secretstream_xchacha20poly1305_TAG_MESSAGE);
    forge_frame(&f, NULL, 0, crypto_secretstream_xchacha20poly1305_TAG_FINAL);
    TU_ASSERT_ERR(open_with(f.out.data, f.out.len, 0, &e), e, PGS_EFORMAT, "empty");
    tu_buf_free(&f.out);

    /* A chunk larger than the header's chunk size, even though authentic. */
    uint8_t *big = calloc(1, CHUNK + 1);
    forge_start(&f, &g_pub[0], CHUNK);
    forge_frame(&f, big, CHUNK + 1, crypto_secretstream_xchacha20poly1305_TAG_FINAL);
    TU_ASSERT_ERR(open_with(f.out.data, f.out.len, 0, &e), e, PGS_ELIMIT, "chunk 0: length");
    tu_buf_free(&f.out);
    free(big);
}

/* ---- writer and reader API ---- */

static void test_envelope_writer_rejects_recipients(void **state)
{
    (void)state;
    tu_buf out = {0};
    envelope_writer *w = NULL;
    pgs_error e = {0};
    TU_ASSERT_ERR(envelope_writer_new(&w, g_pub, 0, CHUNK, tu_buf_sink, &out, &e), e, PGS_EINVAL,
                  "1 to 32 recipients, got 0");
    assert_null(w);

    pgs_pubkey many[ENVELOPE_RECIPIENTS_MAX + 1];
    for (size_t i = 0; i < ENVELOPE_RECIPIENTS_MAX + 1; i++)
        tu_fixed_keypair((uint8_t)(100 + i), "many", &many[i], NULL);
    TU_ASSERT_ERR(
        envelope_writer_new(&w, many, ENVELOPE_RECIPIENTS_MAX + 1, CHUNK, tu_buf_sink, &out, &e), e,
        PGS_EINVAL, "got 33");
    /* 32 is fine, and every one of them opens the archive. */
    assert_int_equal(tu_encrypt(many, ENVELOPE_RECIPIENTS_MAX, CHUNK, "abc", 3, &out, &e), 0);
    pgs_seckey sk;
    tu_fixed_keypair(100 + ENVELOPE_RECIPIENTS_MAX - 1, "many", NULL, &sk);
    tu_buf plain = {0};
    assert_int_equal(tu_decrypt(out.data, out.len, &sk, 1, &plain, NULL, &e), 0);
    assert_int_equal(plain.len, 3);
    tu_buf_free(&plain);

    pgs_pubkey dup[3] = {g_pub[0], g_pub[1], g_pub[0]};
    char id0[KEY_ID_HEX_LEN + 1];
    key_id_hex(g_pub[0].id, id0);
    TU_ASSERT_ERR(envelope_writer_new(&w, dup, 3, CHUNK, tu_buf_sink, &out, &e), e, PGS_EINVAL,
                  "given twice");
    assert_non_null(strstr(e.msg, id0));
    assert_null(w);
    tu_buf_free(&out);
}

static void test_envelope_writer_rejects_chunk_size(void **state)
{
    (void)state;
    tu_buf out = {0};
    envelope_writer *w = NULL;
    pgs_error e = {0};
    static const uint32_t bad[] = {0, ENVELOPE_CHUNK_MIN - 1, ENVELOPE_CHUNK_MAX + 1};
    for (size_t i = 0; i < 3; i++) {
        TU_ASSERT_ERR(envelope_writer_new(&w, g_pub, 1, bad[i], tu_buf_sink, &out, &e), e,
                      PGS_EINVAL, "chunk size");
        assert_null(w);
    }
    assert_int_equal(out.len, 0);
    /* Both limits themselves are accepted. */
    assert_int_equal(envelope_writer_new(&w, g_pub, 1, ENVELOPE_CHUNK_MIN, tu_buf_sink, &out, &e),
                     0);
    envelope_writer_free(w);
    assert_int_equal(envelope_writer_new(&w, g_pub, 1, ENVELOPE_CHUNK_MAX, tu_buf_sink, &out, &e),
                     0);
    envelope_writer_free(w);
    tu_buf_free(&out);
}

static void test_envelope_writer_sink_failure(void **state)
{
    (void)state;
    pgs_error e = {0};
    envelope_writer *w = NULL;
    tu_buf out = {0};
    out.fail_after = 10;
    TU_ASSERT_ERR(envelope_writer_new(&w, g_pub, 1, CHUNK, tu_buf_sink, &out, &e), e, PGS_EIO,
                  "writing the archive header failed");
    assert_null(w);

    out.fail_after = (int)hdr_len(1) + 100;
    uint8_t buf[2 * CHUNK] = {0};
    assert_int_equal(envelope_writer_new(&w, g_pub, 1, CHUNK, tu_buf_sink, &out, &e), 0);
    TU_ASSERT_ERR(envelope_writer_write(w, buf, sizeof(buf), &e), e, PGS_EIO,
                  "writing archive chunk 0 failed");
    /* A failed writer refuses more work. */
    TU_ASSERT_ERR(envelope_writer_write(w, buf, 1, &e), e, PGS_EINVAL, "failed");
    TU_ASSERT_ERR(envelope_writer_finish(w, &e), e, PGS_EINVAL, "failed");
    envelope_writer_free(w);
    tu_buf_free(&out);
}

static void test_envelope_writer_write_after_finish(void **state)
{
    (void)state;
    pgs_error e = {0};
    envelope_writer *w = NULL;
    tu_buf out = {0};
    assert_int_equal(envelope_writer_new(&w, g_pub, 1, CHUNK, tu_buf_sink, &out, &e), 0);
    assert_int_equal(envelope_writer_finish(w, &e), 0);
    size_t len = out.len;
    TU_ASSERT_ERR(envelope_writer_write(w, "x", 1, &e), e, PGS_EINVAL, "finished");
    TU_ASSERT_ERR(envelope_writer_finish(w, &e), e, PGS_EINVAL, "already finished");
    assert_int_equal(out.len, len);
    envelope_writer_free(w);
    /* Freeing an unfinished writer is fine too (the output is simply incomplete). */
    assert_int_equal(envelope_writer_new(&w, g_pub, 1, CHUNK, tu_buf_sink, &out, &e), 0);
    assert_int_equal(envelope_writer_write(w, "abc", 3, &e), 0);
    envelope_writer_free(w);
    envelope_writer_free(NULL);
    tu_buf_free(&out);
}

static void test_envelope_reader_source_error(void **state)
{
    (void)state;
    tu_buf env = {0};
    make_env(1, 2 * CHUNK, &env);
    size_t at[] = {1, hdr_len(1) - 3, hdr_len(1) + 3, hdr_len(1) + 100};
    for (size_t i = 0; i < 4; i++) {
        tu_src src;
        tu_src_init(&src, env.data, env.len);
        src.fail_at = (int)at[i];
        src.max_read = 1;
        envelope_reader *r = NULL;
        pgs_error e = {0};
        assert_int_equal(envelope_reader_new(&r, tu_src_read, &src), 0);
        int rc = envelope_reader_read_header(r, &e);
        if (rc == 0)
            rc = envelope_reader_unlock(r, &g_sec[0], 1, &e);
        const uint8_t *d;
        size_t n;
        while (rc == 0 && (rc = envelope_reader_next(r, &d, &n, &e)) == 1)
            rc = 0;
        TU_ASSERT_ERR(rc, e, PGS_EIO, "reading the archive failed");
        envelope_reader_free(r);
    }
    tu_buf_free(&env);
}

static void test_envelope_reader_call_order(void **state)
{
    (void)state;
    tu_buf env = {0};
    make_env(1, 10, &env);
    tu_src src;
    tu_src_init(&src, env.data, env.len);
    envelope_reader *r = NULL;
    pgs_error e = {0};
    const uint8_t *d;
    size_t n;
    assert_int_equal(envelope_reader_new(&r, tu_src_read, &src), 0);
    TU_ASSERT_ERR(envelope_reader_unlock(r, g_sec, 1, &e), e, PGS_EINVAL, "header");
    TU_ASSERT_ERR(envelope_reader_next(r, &d, &n, &e), e, PGS_EINVAL, "not open");
    assert_int_equal(envelope_reader_read_header(r, &e), 0);
    TU_ASSERT_ERR(envelope_reader_read_header(r, &e), e, PGS_EINVAL, "already read");
    TU_ASSERT_ERR(envelope_reader_next(r, &d, &n, &e), e, PGS_EINVAL, "not open");
    assert_int_equal(envelope_reader_unlock(r, g_sec, 1, &e), 0);
    TU_ASSERT_ERR(envelope_reader_unlock(r, g_sec, 1, &e), e, PGS_EINVAL, "header");
    assert_int_equal(envelope_reader_next(r, &d, &n, &e), 1);
    assert_int_equal(n, 10);
    assert_int_equal(envelope_reader_next(r, &d, &n, &e), 0);
    assert_null(d);
    assert_int_equal(n, 0);
    envelope_reader_free(r);

    /* After a failure, the reader stays failed. */
    env.data[env.len - 1] ^= 1;
    tu_src_init(&src, env.data, env.len);
    assert_int_equal(envelope_reader_new(&r, tu_src_read, &src), 0);
    assert_int_equal(envelope_reader_read_header(r, &e), 0);
    assert_int_equal(envelope_reader_unlock(r, g_sec, 1, &e), 0);
    TU_ASSERT_ERR(envelope_reader_next(r, &d, &n, &e), e, PGS_EAUTH, "chunk 0");
    TU_ASSERT_ERR(envelope_reader_next(r, &d, &n, &e), e, PGS_EINVAL, "not open");
    envelope_reader_free(r);
    envelope_reader_free(NULL);
    tu_buf_free(&env);
}

int main(void)
{
    static const char *names[NKEYS] = {"alice", "bob", "carol", "mallory"};
    for (size_t i = 0; i < NKEYS; i++)
        tu_fixed_keypair((uint8_t)(i + 1), names[i], &g_pub[i], &g_sec[i]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_envelope_round_trip_sizes),
        cmocka_unit_test(test_envelope_round_trip_small_writes_and_reads),
        cmocka_unit_test(test_envelope_header_accessors),
        cmocka_unit_test(test_envelope_forged_from_spec_opens),
        cmocka_unit_test(test_envelope_truncated),
        cmocka_unit_test(test_envelope_reordered_chunks),
        cmocka_unit_test(test_envelope_missing_chunk),
        cmocka_unit_test(test_envelope_duplicated_chunk),
        cmocka_unit_test(test_envelope_modified_ciphertext),
        cmocka_unit_test(test_envelope_modified_frame_length),
        cmocka_unit_test(test_envelope_modified_header_fixed_part),
        cmocka_unit_test(test_envelope_modified_recipient),
        cmocka_unit_test(test_envelope_bad_version),
        cmocka_unit_test(test_envelope_bad_magic),
        cmocka_unit_test(test_envelope_chunk_size_limits),
        cmocka_unit_test(test_envelope_recipient_count_limits),
        cmocka_unit_test(test_envelope_wrong_key),
        cmocka_unit_test(test_envelope_trailing_data),
        cmocka_unit_test(test_envelope_forged_frames_rejected),
        cmocka_unit_test(test_envelope_writer_rejects_recipients),
        cmocka_unit_test(test_envelope_writer_rejects_chunk_size),
        cmocka_unit_test(test_envelope_writer_sink_failure),
        cmocka_unit_test(test_envelope_writer_write_after_finish),
        cmocka_unit_test(test_envelope_reader_source_error),
        cmocka_unit_test(test_envelope_reader_call_order),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
