/*
 * libFuzzer target for the wire decoder (proto/wire.c): any bytes, as a peer could send them.
 * A frame that decodes must encode again (the encoder applies the decoder's rules, so a refusal
 * here means the two disagree), and that encoding must decode and encode to the very same bytes:
 * the round trip is exact for every type, restore jobs and reports included.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    wire_msg m, m2;
    pgs_error e;
    if (wire_decode(data, size, &m, &e) != 0)
        return 0;
    uint8_t *f = NULL, *f2 = NULL;
    size_t n = 0, n2 = 0;
    if (wire_encode(&m, &f, &n, &e) != 0)
        __builtin_trap();
    if (wire_decode(f, n, &m2, &e) != 0 || m2.type != m.type)
        __builtin_trap();
    if ((m.type == WIRE_DATA || m.type == WIRE_PIECE) &&
        (m2.u.data.len != m.u.data.len || m2.u.data.seq != m.u.data.seq ||
         strcmp(m2.u.data.job, m.u.data.job) != 0 ||
         memcmp(m2.u.data.payload, m.u.data.payload, m.u.data.len) != 0))
        __builtin_trap();
    if (wire_encode(&m2, &f2, &n2, &e) != 0 || n2 != n || memcmp(f, f2, n) != 0)
        __builtin_trap();
    wire_msg_clear(&m2);
    wire_msg_clear(&m);
    free(f);
    free(f2);
    return 0;
}
