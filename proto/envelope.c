/*
 * The envelope writer and its one reader (see envelope.h and docs/archive-format.md).
 *
 * Why a sequence number in clear beside secretstream's own ratchet: secretstream already rejects
 * any reordering, duplication or change, but only as "authentication failed". With seq in the
 * frame (and in the associated data, so it cannot be rewritten unnoticed) the reader can tell an
 * operator that a chunk is duplicated or missing, which points at the storage or copy step that
 * broke the file, rather than at tampering.
 */
#include "proto/envelope.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common/sha256.h"

#define KDF_CONTEXT "pgshipv1"
#define KDF_ID_STREAM 1
#define KDF_ID_HEADER_MAC 2
#define AD_LEN (ENVELOPE_MAC_LEN + 8)

_Static_assert(crypto_box_SEALBYTES + 32 == ENVELOPE_SEALED_LEN, "sealed key size");
_Static_assert(crypto_secretstream_xchacha20poly1305_HEADERBYTES == 24, "secretstream header");
_Static_assert(crypto_secretstream_xchacha20poly1305_ABYTES == ENVELOPE_ABYTES, "abytes");
_Static_assert(crypto_kdf_KEYBYTES == 32, "kdf key");

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint16_t get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static size_t header_len(size_t nrcpts)
{
    return ENVELOPE_FIXED_LEN + nrcpts * ENVELOPE_RECIPIENT_LEN + ENVELOPE_MAC_LEN;
}

static void derive_keys(const uint8_t data_key[32], uint8_t stream_key[32], uint8_t mac_key[32])
{
    crypto_kdf_derive_from_key(stream_key, 32, KDF_ID_STREAM, KDF_CONTEXT, data_key);
    crypto_kdf_derive_from_key(mac_key, 32, KDF_ID_HEADER_MAC, KDF_CONTEXT, data_key);
}

/* ---- writer ---- */

struct envelope_writer {
    crypto_secretstream_xchacha20poly1305_state st;
    envelope_sink_fn sink;
    void *arg;
    uint32_t chunk_size;
    uint8_t ad[AD_LEN];
    uint64_t seq;
    uint8_t *plain;
    size_t plain_len;
    uint8_t *frame;
    int finished;
    int failed;
};

int envelope_writer_new(envelope_writer **out, const pgs_pubkey *rcpts, size_t nrcpts,
                        uint32_t chunk_size, envelope_sink_fn sink, void *arg, pgs_error *e)
{
    *out = NULL;
    if (sodium_init() < 0)
        return pgs_fail(e, PGS_EIO, "libsodium failed to initialize");
    if (nrcpts < 1 || nrcpts > ENVELOPE_RECIPIENTS_MAX)
        return pgs_fail(e, PGS_EINVAL, "an archive needs 1 to %d recipients, got %zu",
                        ENVELOPE_RECIPIENTS_MAX, nrcpts);
    if (chunk_size < ENVELOPE_CHUNK_MIN || chunk_size > ENVELOPE_CHUNK_MAX)
        return pgs_fail(e, PGS_EINVAL, "chunk size %u is outside [%u, %u]", chunk_size,
                        ENVELOPE_CHUNK_MIN, ENVELOPE_CHUNK_MAX);
    for (size_t i = 0; i < nrcpts; i++)
        for (size_t j = 0; j < i; j++)
            if (memcmp(rcpts[i].id, rcpts[j].id, KEY_ID_LEN) == 0) {
                char id[KEY_ID_HEX_LEN + 1];
                key_id_hex(rcpts[i].id, id);
                return pgs_fail(e, PGS_EINVAL, "recipient key %s is given twice", id);
            }

    envelope_writer *w = calloc(1, sizeof(*w));
    size_t hlen = header_len(nrcpts);
    uint8_t *hdr = calloc(1, hlen);
    if (w == NULL || hdr == NULL) {
        free(w);
        free(hdr);
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    }
    w->sink = sink;
    w->arg = arg;
    w->chunk_size = chunk_size;
    w->plain = malloc(chunk_size);
    w->frame = malloc(ENVELOPE_FRAME_HDR + (size_t)chunk_size + ENVELOPE_ABYTES);
    if (w->plain == NULL || w->frame == NULL) {
        free(hdr);
        envelope_writer_free(w);
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    }

    uint8_t data_key[32], stream_key[32], mac_key[32];
    crypto_kdf_keygen(data_key);
    derive_keys(data_key, stream_key, mac_key);

    memcpy(hdr, ENVELOPE_MAGIC, ENVELOPE_MAGIC_LEN);
    put_u16(hdr + 8, ENVELOPE_VERSION);
    put_u16(hdr + 10, 0);
    put_u32(hdr + 12, chunk_size);
    put_u16(hdr + 16, (uint16_t)nrcpts);
    put_u16(hdr + 18, 0);
    crypto_secretstream_xchacha20poly1305_init_push(&w->st, hdr + 20, stream_key);
    uint8_t *rp = hdr + ENVELOPE_FIXED_LEN;
    int rc = 0;
    for (size_t i = 0; i < nrcpts; i++, rp += ENVELOPE_RECIPIENT_LEN) {
        memcpy(rp, rcpts[i].id, KEY_ID_LEN);
        if (crypto_box_seal(rp + KEY_ID_LEN, data_key, 32, rcpts[i].pk) != 0) {
            rc = pgs_fail(e, PGS_EINVAL, "cannot seal the data key to recipient %s",
                          rcpts[i].name);
            break;
        }
    }
    if (rc == 0) {
        crypto_generichash(rp, ENVELOPE_MAC_LEN, hdr, (size_t)(rp - hdr), mac_key, sizeof(mac_key));
        memcpy(w->ad, rp, ENVELOPE_MAC_LEN);
        rc = sink(arg, hdr, hlen);
        if (rc != 0)
            rc = pgs_fail(e, rc, "writing the archive header failed");
    }
    sodium_memzero(data_key, sizeof(data_key));
    sodium_memzero(stream_key, sizeof(stream_key));
    sodium_memzero(mac_key, sizeof(mac_key));
    free(hdr);
    if (rc != 0) {
        envelope_writer_free(w);
        return rc;
    }
    *out = w;
    return 0;
}

static int writer_emit(envelope_writer *w, unsigned char tag, pgs_error *e)
{
    put_u64(w->ad + ENVELOPE_MAC_LEN, w->seq);
    put_u64(w->frame, w->seq);
    put_u32(w->frame + 8, (uint32_t)(w->plain_len + ENVELOPE_ABYTES));
    unsigned long long clen = 0;
    crypto_secretstream_xchacha20poly1305_push(&w->st, w->frame + ENVELOPE_FRAME_HDR, &clen,
                                               w->plain, w->plain_len, w->ad, AD_LEN, tag);
    int rc = w->sink(w->arg, w->frame, ENVELOPE_FRAME_HDR + (size_t)clen);
    if (rc != 0) {
        w->failed = 1;
        return pgs_fail(e, rc, "writing archive chunk %llu failed", (unsigned long long)w->seq);
    }
    w->seq++;
    w->plain_len = 0;
    return 0;
}

int envelope_writer_write(envelope_writer *w, const void *buf, size_t len, pgs_error *e)
{
    if (w->finished || w->failed)
        return pgs_fail(e, PGS_EINVAL, "write after the archive was finished or failed");
    const uint8_t *p = buf;
    while (len > 0) {
        /* A full buffer is only sent once more data arrives, so the final chunk is never empty
         * unless the whole stream is. */
        if (w->plain_len == w->chunk_size) {
            int rc = writer_emit(w, crypto_secretstream_xchacha20poly1305_TAG_MESSAGE, e);
            if (rc != 0)
                return rc;
        }
        size_t n = w->chunk_size - w->plain_len;
        if (n > len)
            n = len;
        memcpy(w->plain + w->plain_len, p, n);
        w->plain_len += n;
        p += n;
        len -= n;
    }
    return 0;
}

int envelope_writer_finish(envelope_writer *w, pgs_error *e)
{
    if (w->finished || w->failed)
        return pgs_fail(e, PGS_EINVAL, "archive already finished or failed");
    int rc = writer_emit(w, crypto_secretstream_xchacha20poly1305_TAG_FINAL, e);
    if (rc == 0)
        w->finished = 1;
    return rc;
}

int envelope_writer_finished(const envelope_writer *w)
{
    return w != NULL && w->finished;
}

void envelope_writer_free(envelope_writer *w)
{
    if (w == NULL)
        return;
    if (w->plain != NULL) {
        sodium_memzero(w->plain, w->chunk_size);
        free(w->plain);
    }
    free(w->frame);
    sodium_memzero(&w->st, sizeof(w->st));
    free(w);
}

/* ---- reader ---- */

enum reader_state { R_NEW, R_HEADER, R_OPEN, R_DONE, R_FAILED };

struct envelope_reader {
    envelope_source_fn src;
    void *arg;
    enum reader_state state;
    uint64_t offset;
    uint32_t chunk_size;
    size_t nrcpts;
    uint8_t fixed[ENVELOPE_FIXED_LEN];
    uint8_t *rcpts; /* nrcpts * ENVELOPE_RECIPIENT_LEN */
    uint8_t mac[ENVELOPE_MAC_LEN];
    uint8_t ad[AD_LEN];
    crypto_secretstream_xchacha20poly1305_state st;
    uint64_t seq;
    uint8_t *frame;
    uint8_t *plain;
};

int envelope_reader_new(envelope_reader **out, envelope_source_fn src, void *arg)
{
    if (sodium_init() < 0)
        return PGS_EIO;
    envelope_reader *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return PGS_ENOMEM;
    r->src = src;
    r->arg = arg;
    *out = r;
    return 0;
}

/* Reads exactly len bytes unless the input ends; returns the count or -1 on a source error. */
static ssize_t reader_fill(envelope_reader *r, void *buf, size_t len)
{
    uint8_t *p = buf;
    size_t got = 0;
    while (got < len) {
        ssize_t n = r->src(r->arg, p + got, len - got);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        got += (size_t)n;
    }
    r->offset += got;
    return (ssize_t)got;
}

#define RFAIL(code, ...) (r->state = R_FAILED, pgs_fail(e, code, __VA_ARGS__))

int envelope_reader_read_header(envelope_reader *r, pgs_error *e)
{
    if (r->state != R_NEW)
        return pgs_fail(e, PGS_EINVAL, "archive header already read");
    ssize_t n = reader_fill(r, r->fixed, ENVELOPE_FIXED_LEN);
    if (n < 0)
        return RFAIL(PGS_EIO, "reading the archive failed");
    /* Compare what arrived, so that a short file of something else is called what it is. */
    size_t cmp = (size_t)n < ENVELOPE_MAGIC_LEN ? (size_t)n : ENVELOPE_MAGIC_LEN;
    if (memcmp(r->fixed, ENVELOPE_MAGIC, cmp) != 0)
        return RFAIL(PGS_EFORMAT, "not a pgship archive (bad magic)");
    if (n == 0)
        return RFAIL(PGS_ETRUNC, "truncated archive: the input is empty");
    if (n < ENVELOPE_FIXED_LEN)
        return RFAIL(PGS_ETRUNC, "truncated archive: the header is incomplete (%zd bytes)", n);
    uint16_t version = get_u16(r->fixed + 8);
    if (version != ENVELOPE_VERSION)
        return RFAIL(PGS_EVERSION,
                     "unsupported archive format version %u (this pgship reads version %d)",
                     version, ENVELOPE_VERSION);
    if (get_u16(r->fixed + 10) != 0 || get_u16(r->fixed + 18) != 0)
        return RFAIL(PGS_EFORMAT, "unsupported header flags 0x%04x/0x%04x",
                     get_u16(r->fixed + 10), get_u16(r->fixed + 18));
    r->chunk_size = get_u32(r->fixed + 12);
    if (r->chunk_size < ENVELOPE_CHUNK_MIN || r->chunk_size > ENVELOPE_CHUNK_MAX)
        return RFAIL(PGS_ELIMIT, "header field chunk_size %u is outside [%u, %u]", r->chunk_size,
                     ENVELOPE_CHUNK_MIN, ENVELOPE_CHUNK_MAX);
    r->nrcpts = get_u16(r->fixed + 16);
    if (r->nrcpts < 1 || r->nrcpts > ENVELOPE_RECIPIENTS_MAX)
        return RFAIL(PGS_ELIMIT, "header field recipient count %zu is outside [1, %d]", r->nrcpts,
                     ENVELOPE_RECIPIENTS_MAX);
    r->rcpts = malloc(r->nrcpts * ENVELOPE_RECIPIENT_LEN);
    if (r->rcpts == NULL)
        return RFAIL(PGS_ENOMEM, "out of memory");
    size_t want = r->nrcpts * ENVELOPE_RECIPIENT_LEN;
    n = reader_fill(r, r->rcpts, want);
    if (n < 0)
        return RFAIL(PGS_EIO, "reading the archive failed");
    if ((size_t)n < want)
        return RFAIL(PGS_ETRUNC, "truncated archive: the recipient list is incomplete");
    n = reader_fill(r, r->mac, ENVELOPE_MAC_LEN);
    if (n < 0)
        return RFAIL(PGS_EIO, "reading the archive failed");
    if (n < ENVELOPE_MAC_LEN)
        return RFAIL(PGS_ETRUNC, "truncated archive: the header MAC is incomplete");
    for (size_t i = 0; i < r->nrcpts; i++)
        for (size_t j = 0; j < i; j++)
            if (memcmp(r->rcpts + i * ENVELOPE_RECIPIENT_LEN, r->rcpts + j * ENVELOPE_RECIPIENT_LEN,
                       KEY_ID_LEN) == 0)
                return RFAIL(PGS_EFORMAT, "the header lists recipient %zu twice", i);
    r->state = R_HEADER;
    return 0;
}

size_t envelope_reader_recipient_count(const envelope_reader *r)
{
    return r->state == R_NEW ? 0 : r->nrcpts;
}

const uint8_t *envelope_reader_recipient_id(const envelope_reader *r, size_t i)
{
    return i < envelope_reader_recipient_count(r) ? r->rcpts + i * ENVELOPE_RECIPIENT_LEN : NULL;
}

uint32_t envelope_reader_chunk_size(const envelope_reader *r)
{
    return r->chunk_size;
}

uint64_t envelope_reader_offset(const envelope_reader *r)
{
    return r->offset;
}

uint64_t envelope_reader_chunks(const envelope_reader *r)
{
    return r->seq;
}

int envelope_reader_unlock(envelope_reader *r, const pgs_seckey *keys, size_t nkeys, pgs_error *e)
{
    if (r->state != R_HEADER)
        return pgs_fail(e, PGS_EINVAL, "read the archive header before unlocking it");
    const pgs_seckey *key = NULL;
    const uint8_t *entry = NULL;
    for (size_t k = 0; k < nkeys && key == NULL; k++)
        for (size_t i = 0; i < r->nrcpts; i++)
            if (memcmp(r->rcpts + i * ENVELOPE_RECIPIENT_LEN, keys[k].id, KEY_ID_LEN) == 0) {
                key = &keys[k];
                entry = r->rcpts + i * ENVELOPE_RECIPIENT_LEN;
                break;
            }
    if (key == NULL) {
        char have[ENVELOPE_RECIPIENTS_MAX * (KEY_ID_HEX_LEN + 2) + 1] = "";
        char given[256] = "";
        for (size_t i = 0; i < r->nrcpts; i++) {
            char id[KEY_ID_HEX_LEN + 1];
            key_id_hex(r->rcpts + i * ENVELOPE_RECIPIENT_LEN, id);
            strcat(have, i ? ", " : "");
            strcat(have, id);
        }
        for (size_t k = 0; k < nkeys && k < 8; k++) {
            char id[KEY_ID_HEX_LEN + 1];
            key_id_hex(keys[k].id, id);
            strcat(given, k ? ", " : "");
            strcat(given, id);
        }
        return RFAIL(PGS_ENOKEY,
                     "no key for this archive: it is sealed to key id%s %s; the key given is %s",
                     r->nrcpts > 1 ? "s" : "", have, nkeys ? given : "none");
    }
    uint8_t data_key[32], stream_key[32], mac_key[32], mac[ENVELOPE_MAC_LEN];
    int rc = 0;
    if (crypto_box_seal_open(data_key, entry + KEY_ID_LEN, ENVELOPE_SEALED_LEN, key->pk,
                             key->sk) != 0) {
        char id[KEY_ID_HEX_LEN + 1];
        key_id_hex(key->id, id);
        rc = RFAIL(PGS_EAUTH,
                   "the recipient entry for key %s does not open with that key: the archive "
                   "header was modified",
                   id);
        goto out;
    }
    derive_keys(data_key, stream_key, mac_key);
    /* The MAC covers the fixed part and the recipient list exactly as read. */
    crypto_generichash_state hs;
    crypto_generichash_init(&hs, mac_key, sizeof(mac_key), ENVELOPE_MAC_LEN);
    crypto_generichash_update(&hs, r->fixed, ENVELOPE_FIXED_LEN);
    crypto_generichash_update(&hs, r->rcpts, r->nrcpts * ENVELOPE_RECIPIENT_LEN);
    crypto_generichash_final(&hs, mac, ENVELOPE_MAC_LEN);
    if (sodium_memcmp(mac, r->mac, ENVELOPE_MAC_LEN) != 0) {
        rc = RFAIL(PGS_EAUTH, "header authentication failed: the archive header was modified");
        goto out;
    }
    if (crypto_secretstream_xchacha20poly1305_init_pull(&r->st, r->fixed + 20, stream_key) != 0) {
        rc = RFAIL(PGS_EAUTH, "header authentication failed: bad stream header");
        goto out;
    }
    memcpy(r->ad, r->mac, ENVELOPE_MAC_LEN);
    r->frame = malloc((size_t)r->chunk_size + ENVELOPE_ABYTES);
    r->plain = malloc(r->chunk_size);
    if (r->frame == NULL || r->plain == NULL) {
        rc = RFAIL(PGS_ENOMEM, "out of memory");
        goto out;
    }
    r->state = R_OPEN;
out:
    sodium_memzero(data_key, sizeof(data_key));
    sodium_memzero(stream_key, sizeof(stream_key));
    sodium_memzero(mac_key, sizeof(mac_key));
    return rc;
}

int envelope_reader_next(envelope_reader *r, const uint8_t **data, size_t *len, pgs_error *e)
{
    *data = NULL;
    *len = 0;
    if (r->state == R_DONE)
        return 0;
    if (r->state != R_OPEN)
        return pgs_fail(e, PGS_EINVAL, "archive is not open for reading");
    unsigned long long seqn = (unsigned long long)r->seq;
    uint8_t fh[ENVELOPE_FRAME_HDR];
    ssize_t n = reader_fill(r, fh, sizeof(fh));
    if (n < 0)
        return RFAIL(PGS_EIO, "reading the archive failed at chunk %llu", seqn);
    if (n == 0)
        return RFAIL(PGS_ETRUNC,
                     "truncated archive: it ends after %llu chunk%s without the final tag", seqn,
                     seqn == 1 ? "" : "s");
    if (n < ENVELOPE_FRAME_HDR)
        return RFAIL(PGS_ETRUNC, "truncated archive: it ends inside chunk %llu", seqn);
    uint64_t seq = get_u64(fh);
    uint32_t clen = get_u32(fh + 8);
    if (seq != r->seq) {
        if (seq < r->seq)
            return RFAIL(PGS_EORDER, "duplicated chunk: chunk %llu appears again at position %llu",
                         (unsigned long long)seq, seqn);
        return RFAIL(PGS_EORDER,
                     "chunks missing or reordered: expected chunk %llu, found chunk %llu", seqn,
                     (unsigned long long)seq);
    }
    if (clen < ENVELOPE_ABYTES || clen > r->chunk_size + ENVELOPE_ABYTES)
        return RFAIL(PGS_ELIMIT, "chunk %llu: length %u is outside [%d, %u]", seqn, clen,
                     ENVELOPE_ABYTES, r->chunk_size + ENVELOPE_ABYTES);
    n = reader_fill(r, r->frame, clen);
    if (n < 0)
        return RFAIL(PGS_EIO, "reading the archive failed at chunk %llu", seqn);
    if ((size_t)n < clen)
        return RFAIL(PGS_ETRUNC, "truncated archive: it ends inside chunk %llu", seqn);
    put_u64(r->ad + ENVELOPE_MAC_LEN, r->seq);
    unsigned long long plen = 0;
    unsigned char tag = 0;
    if (crypto_secretstream_xchacha20poly1305_pull(&r->st, r->plain, &plen, &tag, r->frame, clen,
                                                   r->ad, AD_LEN) != 0)
        return RFAIL(PGS_EAUTH, "chunk %llu failed authentication: the archive was modified",
                     seqn);
    r->seq++;
    if (tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL) {
        /* The writer sends a full chunk only when more data follows, so only an empty stream
         * ends with an empty chunk. */
        if (plen == 0 && seqn > 0)
            return RFAIL(PGS_EFORMAT, "chunk %llu is an empty final chunk after data", seqn);
        uint8_t extra;
        n = reader_fill(r, &extra, 1);
        if (n < 0)
            return RFAIL(PGS_EIO, "reading the archive failed after the final chunk");
        if (n > 0)
            return RFAIL(PGS_ETRAIL, "trailing data after the final chunk (chunk %llu)", seqn);
        r->state = R_DONE;
    } else if (tag != crypto_secretstream_xchacha20poly1305_TAG_MESSAGE) {
        return RFAIL(PGS_EFORMAT, "chunk %llu has an unexpected tag %u", seqn, tag);
    } else if (plen == 0) {
        return RFAIL(PGS_EFORMAT, "chunk %llu is empty but not final", seqn);
    }
    *data = r->plain;
    *len = (size_t)plen;
    return 1;
}

void envelope_reader_free(envelope_reader *r)
{
    if (r == NULL)
        return;
    if (r->plain != NULL) {
        sodium_memzero(r->plain, r->chunk_size);
        free(r->plain);
    }
    free(r->frame);
    free(r->rcpts);
    sodium_memzero(&r->st, sizeof(r->st));
    free(r);
}
