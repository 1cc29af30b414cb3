/*
 * libFuzzer target: a sanitization profile's settings file (profile.ini) and SQL text checks
 * (coordinator/profile.c) over any bytes. Anything may be refused; nothing may crash or leak.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "coordinator/profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    profile p;
    memset(&p, 0, sizeof(p));
    pgs_error e = {0};
    profile_parse_settings("fuzz.ini", (const char *)data, size, &p, &e);
    profile_sql_check("fuzz.sql", (const char *)data, size, &e);
    return 0;
}
