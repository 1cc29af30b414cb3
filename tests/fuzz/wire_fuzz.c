/*
 * libFuzzer target for the wire decoder (proto/wire.c): any bytes, as a peer could send them.
 * A frame that decodes must encode again and decode to the same message.
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
    uint8_t *f = NULL;
    size_t n = 0;
    if (wire_encode(&m, &f, &n, &e) != 0)
        __builtin_trap();
    if (wire_decode(f, n, &m2, &e) != 0 || m2.type != m.type)
        __builtin_trap();
    if (m.type == WIRE_DATA &&
        (m2.u.data.len != m.u.data.len || m2.u.data.seq != m.u.data.seq ||
         memcmp(m2.u.data.payload, m.u.data.payload, m.u.data.len) != 0))
        __builtin_trap();
    wire_msg_clear(&m2);
    wire_msg_clear(&m);
    free(f);
    return 0;
}
