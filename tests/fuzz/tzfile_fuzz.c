/*
 * Fuzzes the TZif reader: tz_load_bytes on arbitrary bytes, and for a zone that loads, its offset
 * at a few instants (far past, around the epoch, today, the footer's future, the extremes of
 * int64_t) and a walk through its next offset changes, which must increase and each change the
 * offset. Every failure must say why.
 */
#include <stddef.h>
#include <stdint.h>

#include "common/tzfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tz_zone *z = NULL;
    pgs_error e = {0};
    int rc = tz_load_bytes(data, size, &z, &e);
    if (rc != 0) {
        if (rc != e.code || e.msg[0] == '\0' || z != NULL)
            __builtin_trap();
        return 0;
    }
    static const int64_t at[] = {INT64_MIN,  -(INT64_C(1) << 59), -2208988800, -1,       0,
                                 1711846800, 4102444800,          TZ_TIME_MAX, INT64_MAX};
    for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
        int64_t off = tz_utc_offset(z, at[i]);
        if (off < -89999 || off > 93599)
            __builtin_trap();
    }
    int64_t t = -2208988800; /* 1900 */
    for (int i = 0; i < 64; i++) {
        int64_t c = tz_next_change(z, t);
        if (c == TZ_NEVER)
            break;
        if (c <= t || c > TZ_TIME_MAX || tz_utc_offset(z, c) == tz_utc_offset(z, c - 1))
            __builtin_trap();
        t = c;
    }
    tz_free(z);
    return 0;
}
