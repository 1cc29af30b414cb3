/*
 * Fuzzes the sidecar decoder of catalog rebuild (rebuild_sidecar_decode). Whatever it accepts
 * must keep the promises rebuild relies on: a valid id and names, a storage key made of them, a
 * 64-hex digest, a size, times the catalog reads, and a manifest with recipients.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "coordinator/rebuild.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_time(const char *t, int optional)
{
    int64_t ms;
    if (optional && t[0] == '\0')
        return;
    if (catalog_time_parse(t, &ms) != 0)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rebuild_sidecar sc;
    pgs_error e;
    char want[CATALOG_STORAGE_KEY_MAX + 1];
    if (rebuild_sidecar_decode(data, size, &sc, &e) != 0) {
        if (sc.man.options != NULL) /* a failed decode leaves nothing to free */
            __builtin_trap();
        return 0;
    }
    snprintf(want, sizeof(want), "%s/%s/%s/%s.pgship", sc.environment, sc.agent, sc.database,
             sc.backup_id);
    if (!catalog_id_valid(sc.backup_id) || !catalog_name_valid(sc.agent) ||
        !catalog_name_valid(sc.database) || !catalog_name_valid(sc.environment) ||
        strcmp(sc.storage_key, want) != 0 || strlen(sc.sha256) != CATALOG_SHA256_HEX_LEN ||
        strspn(sc.sha256, "0123456789abcdef") != CATALOG_SHA256_HEX_LEN || sc.bytes == 0 ||
        (sc.scheduled[0] && !catalog_name_valid(sc.scheduled)) ||
        (sc.source_backup_id[0] && !catalog_id_valid(sc.source_backup_id)) ||
        strcmp(sc.source_backup_id, sc.backup_id) == 0 || sc.man.nrecipients < 1)
        __builtin_trap();
    check_time(sc.stored_at, 0);
    check_time(sc.created_at, 1);
    check_time(sc.started_at, 1);
    check_time(sc.finished_at, 1);
    rebuild_sidecar_clear(&sc);
    return 0;
}
