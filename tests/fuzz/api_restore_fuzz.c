/*
 * libFuzzer target for the HTTP API's POST /v1/restores decoder (api_restore_body_parse in
 * coordinator/api.c): any bytes, as a client could POST them. An accepted body must hold what the
 * restorer may take without checking again: a source of one of the three shapes (AGENT/DB only
 * with fresh), valid names, jobs and pattern counts within their limits, patterns of text without
 * control characters; a refused one a code and a message, and a zeroed request. Decoding must be
 * a pure function.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator/api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int agent_db(const char *s, size_t n)
{
    const char *slash = memchr(s, '/', n);
    char a[CATALOG_NAME_MAX + 2], d[CATALOG_NAME_MAX + 2];
    if (slash == NULL || (size_t)(slash - s) > CATALOG_NAME_MAX ||
        n - (size_t)(slash - s) - 1 > CATALOG_NAME_MAX)
        return 0;
    memcpy(a, s, (size_t)(slash - s));
    a[slash - s] = '\0';
    memcpy(d, slash + 1, n - (size_t)(slash - s) - 1);
    d[n - (size_t)(slash - s) - 1] = '\0';
    return catalog_name_valid(a) && catalog_name_valid(d);
}

static int patterns_ok(const char (*p)[128], size_t n)
{
    if (n > RESTORE_PATTERNS_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = strnlen(p[i], 128);
        if (len == 0 || len > 127)
            return 0;
        for (size_t k = 0; k < len; k++)
            if ((unsigned char)p[i][k] < 0x20 || p[i][k] == 0x7f)
                return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static restore_request q, q2, zero;
    pgs_error e;
    int rc = api_restore_body_parse(data, size, &q, &e);
    if (rc != 0) {
        if (e.code != rc || e.msg[0] == '\0' || memcmp(&q, &zero, sizeof(q)) != 0)
            __builtin_trap();
        return 0;
    }
    size_t n = strnlen(q.source, sizeof(q.source));
    int latest = n > 7 && strcmp(q.source + n - 7, "@latest") == 0 && agent_db(q.source, n - 7);
    int shape = q.fresh ? agent_db(q.source, n) : (catalog_id_valid(q.source) || latest);
    if (n == 0 || n > CATALOG_SOURCE_MAX || !shape || !catalog_name_valid(q.target_agent) ||
        !catalog_name_valid(q.target_database) ||
        (q.profile[0] != '\0' && !catalog_name_valid(q.profile)) ||
        (q.role[0] != '\0' && !catalog_name_valid(q.role)) || q.jobs > RESTORE_JOBS_MAX ||
        (q.schema_only && q.data_only) || !patterns_ok(q.schemas, q.nschemas) ||
        !patterns_ok(q.tables, q.ntables))
        __builtin_trap();
    if (api_restore_body_parse(data, size, &q2, &e) != 0 || memcmp(&q, &q2, sizeof(q)) != 0)
        __builtin_trap();
    return 0;
}
