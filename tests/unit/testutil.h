/*
 * Helpers shared by the unit tests and the fuzz targets: a growable byte buffer that serves as an
 * envelope sink, a memory source for the envelope reader (optionally handing out a few bytes per
 * call, to exercise the reader's refill loops), deterministic keys, and one-call encryption and
 * decryption of a whole buffer. Nothing here depends on cmocka, so the fuzzers can link it; the
 * TU_ASSERT_ERR macro below is only expanded inside cmocka tests.
 */
#ifndef PGSHIP_TESTS_TESTUTIL_H
#define PGSHIP_TESTS_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"
#include "common/keys.h"

/* cmocka group fixtures: a fresh directory under /tmp in *state, removed with its contents. */
int tu_tmpdir_setup(void **state);
int tu_tmpdir_teardown(void **state);
/* out = "<the fixture's directory>/name". */
void tu_path_in(void **state, const char *name, char *out, size_t len);

/* A growable byte buffer. Starts zeroed ({0}); tu_buf_free releases it. */
typedef struct tu_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    int fail_after; /* when > 0, the sink fails once len would exceed this many bytes */
} tu_buf;

int tu_buf_append(tu_buf *b, const void *data, size_t len);
void tu_buf_free(tu_buf *b);
/* An envelope_sink_fn over a tu_buf (arg); returns PGS_EIO when fail_after is reached. */
int tu_buf_sink(void *arg, const void *buf, size_t len);

/* A memory source for envelope_reader. */
typedef struct tu_src {
    const uint8_t *data;
    size_t len;
    size_t pos;
    size_t max_read; /* 0: as much as asked; otherwise at most this many bytes per call */
    int fail_at;     /* when > 0, returns -1 once pos reaches fail_at */
} tu_src;

void tu_src_init(tu_src *s, const void *data, size_t len);
/* An envelope_source_fn over a tu_src (arg). */
ssize_t tu_src_read(void *arg, void *buf, size_t len);

/* The fuzz targets' fixed recipient: the seed byte for tu_fixed_keypair. Seed envelopes in
 * tests/fuzz/corpus were made for this key. */
#define TU_FUZZ_KEY_SEED 0x42
#define TU_FUZZ_KEY_NAME "fuzz"
#define TU_FUZZ_CHUNK 4096u

/* A key pair derived from a 32-byte seed filled with seed_byte, named name: the same every run. */
void tu_fixed_keypair(uint8_t seed_byte, const char *name, pgs_pubkey *pub, pgs_seckey *sec);
/* A fresh random key pair. */
void tu_random_keypair(const char *name, pgs_pubkey *pub, pgs_seckey *sec);

/* Encrypts plain into out (appended) for rcpts with chunk_size. Returns 0 or a PGS_E* code. */
int tu_encrypt(const pgs_pubkey *rcpts, size_t nrcpts, uint32_t chunk_size, const void *plain,
               size_t len, tu_buf *out, pgs_error *e);
/* Decrypts a whole envelope with keys into out (appended); *chunks counts the frames read.
 * Returns 0 after the verified end, or the first negative code. */
int tu_decrypt(const void *env, size_t len, const pgs_seckey *keys, size_t nkeys, tu_buf *out,
               size_t *chunks, pgs_error *e);

/*
 * Asserts that rc is the negative code want, that the error value carries the same code, and
 * that its message contains substr. On failure prints all of them. Needs cmocka.h.
 */
#define TU_ASSERT_ERR(rc, err, want, substr)                                                       \
    do {                                                                                           \
        int tu_rc_ = (int)(rc);                                                                    \
        const char *tu_sub_ = (substr);                                                            \
        if (tu_rc_ != (want) || (err).code != (want) ||                                            \
            (tu_sub_ != NULL && strstr((err).msg, tu_sub_) == NULL))                               \
            fail_msg("expected code %d (%s) with message containing \"%s\"; got rc %d, error "     \
                     "code %d, message \"%s\"",                                                    \
                     (want), pgs_strerror(want), tu_sub_ ? tu_sub_ : "", tu_rc_, (err).code,       \
                     (err).msg);                                                                   \
    } while (0)

#endif
