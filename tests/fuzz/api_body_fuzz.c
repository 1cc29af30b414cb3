/*
 * libFuzzer target for the HTTP API's request body decoder (api_backup_body_parse in
 * coordinator/api.c): any bytes, as a client could POST them. An accepted body must hold names
 * the catalog accepts and a label within its limit, and decoding must be a pure function.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator/api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    api_backup_body b, b2;
    pgs_error e;
    int rc = api_backup_body_parse(data, size, &b, &e);
    if (rc != 0) {
        if (e.code != rc || e.msg[0] == '\0')
            __builtin_trap();
        return 0;
    }
    if (!catalog_name_valid(b.agent) || !catalog_name_valid(b.database) ||
        strlen(b.label) > CATALOG_LABEL_MAX)
        __builtin_trap();
    if (api_backup_body_parse(data, size, &b2, &e) != 0 || memcmp(&b, &b2, sizeof(b)) != 0)
        __builtin_trap();
    return 0;
}
