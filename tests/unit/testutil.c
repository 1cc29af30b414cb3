/* Shared test helpers (see testutil.h). */
#include "tests/unit/testutil.h"

#include "common/fsutil.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/envelope.h"

int tu_buf_append(tu_buf *b, const void *data, size_t len)
{
    if (len == 0)
        return 0;
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + len)
            cap *= 2;
        uint8_t *p = realloc(b->data, cap);
        if (p == NULL)
            return PGS_ENOMEM;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    return 0;
}

void tu_buf_free(tu_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int tu_buf_sink(void *arg, const void *buf, size_t len)
{
    tu_buf *b = arg;
    if (b->fail_after > 0 && b->len + len > (size_t)b->fail_after)
        return PGS_EIO;
    return tu_buf_append(b, buf, len);
}

void tu_src_init(tu_src *s, const void *data, size_t len)
{
    memset(s, 0, sizeof(*s));
    s->data = data;
    s->len = len;
}

ssize_t tu_src_read(void *arg, void *buf, size_t len)
{
    tu_src *s = arg;
    if (s->fail_at > 0 && s->pos >= (size_t)s->fail_at)
        return -1;
    size_t n = s->len - s->pos;
    if (n > len)
        n = len;
    if (s->max_read > 0 && n > s->max_read)
        n = s->max_read;
    if (n > 0)
        memcpy(buf, s->data + s->pos, n);
    s->pos += n;
    return (ssize_t)n;
}

static void fill_keys(const uint8_t pk[KEY_LEN], const uint8_t sk[KEY_LEN], const char *name,
                      pgs_pubkey *pub, pgs_seckey *sec)
{
    if (pub != NULL) {
        memset(pub, 0, sizeof(*pub));
        memcpy(pub->pk, pk, KEY_LEN);
        key_id_compute(pub->pk, pub->id);
        snprintf(pub->name, sizeof(pub->name), "%s", name);
    }
    if (sec != NULL) {
        memset(sec, 0, sizeof(*sec));
        memcpy(sec->pk, pk, KEY_LEN);
        memcpy(sec->sk, sk, KEY_LEN);
        key_id_compute(sec->pk, sec->id);
        snprintf(sec->name, sizeof(sec->name), "%s", name);
    }
}

void tu_fixed_keypair(uint8_t seed_byte, const char *name, pgs_pubkey *pub, pgs_seckey *sec)
{
    uint8_t seed[crypto_box_SEEDBYTES], pk[KEY_LEN], sk[KEY_LEN];
    if (sodium_init() < 0)
        abort();
    memset(seed, seed_byte, sizeof(seed));
    crypto_box_seed_keypair(pk, sk, seed);
    fill_keys(pk, sk, name, pub, sec);
}

void tu_random_keypair(const char *name, pgs_pubkey *pub, pgs_seckey *sec)
{
    uint8_t pk[KEY_LEN], sk[KEY_LEN];
    if (sodium_init() < 0)
        abort();
    crypto_box_keypair(pk, sk);
    fill_keys(pk, sk, name, pub, sec);
}

int tu_encrypt(const pgs_pubkey *rcpts, size_t nrcpts, uint32_t chunk_size, const void *plain,
               size_t len, tu_buf *out, pgs_error *e)
{
    envelope_writer *w = NULL;
    int rc = envelope_writer_new(&w, rcpts, nrcpts, chunk_size, tu_buf_sink, out, e);
    if (rc == 0)
        rc = envelope_writer_write(w, plain, len, e);
    if (rc == 0)
        rc = envelope_writer_finish(w, e);
    envelope_writer_free(w);
    return rc;
}

int tu_decrypt(const void *env, size_t len, const pgs_seckey *keys, size_t nkeys, tu_buf *out,
               size_t *chunks, pgs_error *e)
{
    tu_src src;
    tu_src_init(&src, env, len);
    envelope_reader *r = NULL;
    size_t count = 0;
    int rc = envelope_reader_new(&r, tu_src_read, &src);
    if (rc != 0)
        return pgs_fail(e, rc, "cannot create a reader");
    rc = envelope_reader_read_header(r, e);
    if (rc == 0)
        rc = envelope_reader_unlock(r, keys, nkeys, e);
    while (rc == 0) {
        const uint8_t *d = NULL;
        size_t n = 0;
        int got = envelope_reader_next(r, &d, &n, e);
        if (got <= 0) {
            rc = got;
            break;
        }
        count++;
        if (tu_buf_append(out, d, n) != 0)
            rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
    }
    envelope_reader_free(r);
    if (chunks != NULL)
        *chunks = count;
    return rc;
}

int tu_tmpdir_setup(void **state)
{
    char *dir = strdup("/tmp/pgship-unit-test-XXXXXX");
    if (dir == NULL || mkdtemp(dir) == NULL) {
        free(dir);
        return -1;
    }
    *state = dir;
    return 0;
}

int tu_tmpdir_teardown(void **state)
{
    char *dir = *state;
    int rc = fs_rm_rf(dir);
    free(dir);
    return rc;
}

void tu_path_in(void **state, const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", (const char *)*state, name);
}
