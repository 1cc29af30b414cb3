/*
 * libFuzzer target for the verification routes' decoders (coordinator/api_verify.c): the body of
 * POST /v1/backups/ID/verify and the query of GET /v1/verifications, as a client could send them.
 * The first byte picks the decoder, the rest is the input. An accepted query holds only a valid
 * backup id, agent name, state and limit; a refusal always says why; decoding is a pure function.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator/api_verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    pgs_error e;
    const uint8_t *in = data + 1;
    size_t n = size - 1;
    if (data[0] & 1) {
        api_verify_body b, b2;
        int rc = api_verify_body_parse(in, n, &b, &e);
        if (rc != 0) {
            if (e.code != rc || e.msg[0] == '\0' || b.restore_test != 0)
                __builtin_trap();
            return 0;
        }
        if ((b.restore_test != 0 && b.restore_test != 1) ||
            api_verify_body_parse(in, n, &b2, &e) != 0 || b2.restore_test != b.restore_test)
            __builtin_trap();
        return 0;
    }
    /* A query string is text: stop at the first NUL as the HTTP server would. */
    char *q = malloc(n + 1);
    if (q == NULL)
        return 0;
    memcpy(q, in, n);
    q[n] = '\0';
    api_verify_query v, v2;
    int rc = api_verify_query_parse(q, &v, &e);
    if (rc != 0) {
        if (e.code != rc || e.msg[0] == '\0')
            __builtin_trap();
    } else {
        if ((v.backup[0] != '\0' && !catalog_id_valid(v.backup)) ||
            (v.agent[0] != '\0' && !catalog_name_valid(v.agent)) || v.limit < 1 ||
            v.limit > API_VERIFY_LIST_MAX || v.state > CATALOG_VERIFY_FAILED)
            __builtin_trap();
        if (api_verify_query_parse(q, &v2, &e) != 0 || memcmp(&v, &v2, sizeof(v)) != 0)
            __builtin_trap();
    }
    free(q);
    return 0;
}
