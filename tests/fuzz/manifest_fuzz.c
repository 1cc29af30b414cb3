/*
 * Fuzzes the manifest.json and end.json decoders. What decodes must encode and decode again to
 * the same values.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_manifest_round_trip(const manifest *m)
{
    char *text = NULL;
    size_t len = 0;
    pgs_error e;
    manifest b;
    if (manifest_encode(m, &text, &len, &e) != 0 || manifest_decode(text, len, &b, &e) != 0)
        __builtin_trap();
    free(text);
    if (strcmp(m->format, b.format) != 0 || strcmp(m->database, b.database) != 0 ||
        strcmp(m->server_version, b.server_version) != 0 ||
        strcmp(m->pg_dump_version, b.pg_dump_version) != 0 ||
        strcmp(m->created_by, b.created_by) != 0 || strcmp(m->host, b.host) != 0 ||
        strcmp(m->started_at, b.started_at) != 0 || m->version != b.version ||
        m->server_version_num != b.server_version_num || m->estimated_bytes != b.estimated_bytes ||
        m->part_size != b.part_size || m->globals != b.globals || m->nrecipients != b.nrecipients ||
        !json_equal(m->options, b.options))
        __builtin_trap();
    for (size_t i = 0; i < m->nrecipients; i++)
        if (strcmp(m->recipients[i].key_id, b.recipients[i].key_id) != 0 ||
            strcmp(m->recipients[i].name, b.recipients[i].name) != 0)
            __builtin_trap();
    manifest_clear(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pgs_error e;
    manifest m;
    if (manifest_decode(data, size, &m, &e) == 0) {
        check_manifest_round_trip(&m);
        manifest_clear(&m);
    }
    manifest_end end, end2;
    if (manifest_end_decode(data, size, &end, &e) == 0) {
        char *text = NULL;
        size_t len = 0;
        if (manifest_end_encode(&end, &text, &len, &e) != 0 ||
            manifest_end_decode(text, len, &end2, &e) != 0 ||
            strcmp(end.ended_at, end2.ended_at) != 0 || end.dump_bytes != end2.dump_bytes ||
            end.dump_members != end2.dump_members)
            __builtin_trap();
        free(text);
    }
    return 0;
}
