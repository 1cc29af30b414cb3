/*
 * Fuzzes the envelope reader: the input is an archive, read with a fixed secret key (and a
 * stranger's key beside it) through header, unlock and every chunk until the end or the first
 * error. The seed corpus holds real envelopes for the fixed key, so mutations reach the frame
 * parser after a successful unlock. Whatever the bytes, the reader must fail cleanly.
 */
#include <stddef.h>
#include <stdint.h>

#include "proto/envelope.h"
#include "tests/unit/testutil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static pgs_seckey keys[2];
    static int ready;
    if (!ready) {
        tu_fixed_keypair(0x01, "stranger", NULL, &keys[0]);
        tu_fixed_keypair(TU_FUZZ_KEY_SEED, TU_FUZZ_KEY_NAME, NULL, &keys[1]);
        ready = 1;
    }
    tu_src src;
    tu_src_init(&src, data, size);
    envelope_reader *r = NULL;
    if (envelope_reader_new(&r, tu_src_read, &src) != 0)
        return 0;
    pgs_error e;
    if (envelope_reader_read_header(r, &e) == 0) {
        volatile uint8_t sink = 0;
        size_t n = envelope_reader_recipient_count(r);
        for (size_t i = 0; i <= n; i++) {
            const uint8_t *id = envelope_reader_recipient_id(r, i);
            if (id != NULL)
                sink ^= id[0];
        }
        (void)envelope_reader_chunk_size(r);
        if (envelope_reader_unlock(r, keys, 2, &e) == 0) {
            const uint8_t *d;
            size_t len;
            while (envelope_reader_next(r, &d, &len, &e) == 1)
                for (size_t i = 0; i < len; i++)
                    sink ^= d[i];
        }
        (void)sink;
    }
    (void)envelope_reader_offset(r);
    envelope_reader_free(r);
    return 0;
}
