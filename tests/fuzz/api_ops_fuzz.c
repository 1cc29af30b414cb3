/*
 * libFuzzer target for the decoders of the API's fleet-operation routes (coordinator/api_ops.h):
 * POST /v1/prune's body, the empty body of pin and unpin, and GET /v1/audit's query, all fed
 * the same bytes as a client could send them. A refusal must carry its code and a message; an
 * accepted prune body is exactly true or false; an accepted audit limit is within its bounds;
 * and decoding is a pure function.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator/api_ops.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pgs_error e;
    api_prune_body b, b2;
    int rc = api_prune_body_parse(data, size, &b, &e);
    if (rc != 0) {
        if (e.code != rc || e.msg[0] == '\0' || b.dry_run != 0)
            __builtin_trap();
    } else {
        if (b.dry_run != 0 && b.dry_run != 1)
            __builtin_trap();
        if (api_prune_body_parse(data, size, &b2, &e) != 0 || b2.dry_run != b.dry_run)
            __builtin_trap();
    }

    rc = api_empty_body_parse(data, size, &e);
    if (rc != 0 && (e.code != rc || e.msg[0] == '\0'))
        __builtin_trap();
    if (rc == 0 && size > 0 && api_empty_body_parse(data, size, &e) != 0)
        __builtin_trap();

    /* The query is text: the bytes up to the first NUL, as a URI would end there. */
    char *q = malloc(size + 1);
    if (q == NULL)
        return 0;
    memcpy(q, data, size);
    q[size] = '\0';
    unsigned limit = 12345, limit2 = 54321;
    rc = api_audit_query_parse(q, &limit, &e);
    if (rc != 0) {
        if (e.code != rc || e.msg[0] == '\0' || limit != 12345)
            __builtin_trap();
    } else {
        if (limit < 1 || limit > API_AUDIT_MAX)
            __builtin_trap();
        if (api_audit_query_parse(q, &limit2, &e) != 0 || limit2 != limit)
            __builtin_trap();
    }
    free(q);
    return 0;
}
