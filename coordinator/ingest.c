/* A backup stream into storage and the catalog (see ingest.h for the guarantees and their order). */
#include "coordinator/ingest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "proto/jsonutil.h"
#include "proto/manifest.h"

struct ingest {
    storage *st;
    catalog *cat;
    storage_upload *up;
    sha256_ctx *hash;
    char id[CATALOG_ID_SIZE];
    char agent[CATALOG_NAME_MAX + 1];
    char database[CATALOG_NAME_MAX + 1];
    char environment[CATALOG_NAME_MAX + 1];
    char key[STORAGE_KEY_MAX + 1];
    char sidecar[STORAGE_KEY_MAX + 1];
    uint64_t next_seq;
    uint64_t bytes;
    int done; /* completed, or failed and recorded */
};

/* Records the failure once: aborts an open upload and fails the catalog row. */
static void ingest_fail(ingest *g, const char *reason)
{
    if (g->done)
        return;
    g->done = 1;
    if (g->up != NULL) {
        storage_upload_abort(g->up);
        g->up = NULL;
    }
    pgs_error ce = {0};
    catalog_backup_fail(g->cat, g->id, reason, &ce);
}

int ingest_begin(ingest **out, storage *st, catalog *cat, const ingest_backup *b, pgs_error *e)
{
    *out = NULL;
    ingest *g = calloc(1, sizeof(*g));
    if (g == NULL || (g->hash = sha256_new()) == NULL) {
        free(g);
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    }
    g->st = st;
    g->cat = cat;
    snprintf(g->id, sizeof(g->id), "%s", b->id);
    snprintf(g->agent, sizeof(g->agent), "%s", b->agent);
    snprintf(g->database, sizeof(g->database), "%s", b->database);
    snprintf(g->environment, sizeof(g->environment), "%s", b->environment);
    snprintf(g->key, sizeof(g->key), "%s/%s/%s/%s.pgship", b->environment, b->agent, b->database,
             b->id);
    snprintf(g->sidecar, sizeof(g->sidecar), "%s/%s/%s/%s.manifest.json", b->environment, b->agent,
             b->database, b->id);
    int rc = storage_key_check(g->key, 0, e);
    if (rc != 0)
        goto fail;
    catalog_backup_info info = {.storage_key = g->key};
    if ((rc = catalog_backup_start(cat, g->id, &info, e)) != 0)
        goto fail;
    if ((rc = storage_upload_begin(st, g->key, &g->up, e)) != 0) {
        g->up = NULL;
        ingest_fail(g, e->msg);
        goto fail;
    }
    *out = g;
    return 0;
fail:
    sha256_free(g->hash);
    free(g);
    return rc;
}

int ingest_data(ingest *g, uint64_t seq, const void *buf, size_t len, pgs_error *e)
{
    if (g->done)
        return pgs_fail(e, PGS_EINVAL, "backup %s is already finished", g->id);
    if (seq != g->next_seq) {
        int rc = pgs_fail(e, PGS_EORDER, "backup %s: DATA seq %llu where %llu was expected", g->id,
                          (unsigned long long)seq, (unsigned long long)g->next_seq);
        ingest_fail(g, e->msg);
        return rc;
    }
    int rc = storage_upload_write(g->up, buf, len, e);
    if (rc != 0) {
        pgs_wrap(e, "storing backup %s", g->id);
        ingest_fail(g, e->msg);
        return rc;
    }
    sha256_update(g->hash, buf, len);
    g->bytes += len;
    g->next_seq++;
    return 0;
}

/* What the manifest says about versions and recipients, for the catalog. */
static int record_manifest(ingest *g, json_t *man, pgs_error *e)
{
    char *text = json_dumps(man, JSON_COMPACT);
    if (text == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    manifest m;
    int rc = manifest_decode(text, strlen(text), &m, e);
    free(text);
    if (rc != 0)
        return pgs_wrap(e, "the archive's manifest");
    const char *ids[ENVELOPE_RECIPIENTS_MAX];
    for (size_t i = 0; i < m.nrecipients; i++)
        ids[i] = m.recipients[i].key_id;
    catalog_backup_info info = {.server_version = m.server_version,
                                .pg_dump_version = m.pg_dump_version,
                                .recipients = ids,
                                .nrecipients = m.nrecipients};
    rc = catalog_backup_update_info(g->cat, g->id, &info, e);
    manifest_clear(&m);
    return rc;
}

/* The sidecar: everything needed to rebuild this backup's catalog row from storage alone. */
static int write_sidecar(ingest *g, json_t *man, const char *sha_hex, pgs_error *e)
{
    char stored_at[32];
    manifest_time(time(NULL), stored_at);
    /* What only the catalog knows goes in too, so that `catalog rebuild` gives the same row back
     * (docs/storage.md): above all source_backup_id, without which a rebuilt sanitized copy would
     * look like a plain backup of its database. */
    catalog_backup row;
    int rc = catalog_backup_get(g->cat, g->id, &row, e);
    if (rc != 0)
        return rc;
    json_t *j = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s, s:O}", "pgship_sidecar", 1,
                          "backup_id", g->id, "agent", g->agent, "database", g->database,
                          "environment", g->environment, "storage_key", g->key, "sha256", sha_hex,
                          "bytes", (json_int_t)g->bytes, "stored_at", stored_at, "manifest",
                          man);
    if (j == NULL)
        return pgs_fail(e, PGS_ENOMEM, "cannot encode the sidecar");
    json_object_set_new(j, "created_at", json_string(row.created_at));
    json_object_set_new(j, "started_at", json_string(row.started_at));
    json_object_set_new(j, "label", json_string(row.label));
    json_object_set_new(j, "requested_by", json_string(row.requested_by));
    json_object_set_new(j, "scheduled", json_string(row.scheduled));
    json_object_set_new(j, "source_backup_id", json_string(row.source_backup_id));
    char *text = NULL;
    size_t len = 0;
    rc = jsonu_dump(j, &text, &len, e);
    if (rc == 0)
        rc = storage_put(g->st, g->sidecar, text, len, e);
    free(text);
    return rc;
}

int ingest_end(ingest *g, uint64_t chunks, uint64_t bytes, const uint8_t sha256[SHA256_LEN],
               json_t *man, const char **key_out, pgs_error *e)
{
    if (g->done)
        return pgs_fail(e, PGS_EINVAL, "backup %s is already finished", g->id);
    uint8_t ours[SHA256_LEN], stored[SHA256_LEN];
    char hex[SHA256_HEX_LEN + 1];
    uint64_t stored_size = 0;
    int rc = 0;
    sha256_final(g->hash, ours);
    /* Everything the agent claims is checked before anything becomes visible. */
    if (chunks != g->next_seq || bytes != g->bytes) {
        rc = pgs_fail(e, PGS_ETRUNC,
                      "backup %s: the agent sent %llu chunks / %llu bytes, %llu / %llu arrived",
                      g->id, (unsigned long long)chunks, (unsigned long long)bytes,
                      (unsigned long long)g->next_seq, (unsigned long long)g->bytes);
        goto fail;
    }
    if (memcmp(ours, sha256, SHA256_LEN) != 0) {
        rc = pgs_fail(e, PGS_ESUM, "backup %s: the SHA-256 of what arrived is not the agent's",
                      g->id);
        goto fail;
    }
    if (g->bytes == 0) {
        rc = pgs_fail(e, PGS_ETRUNC, "backup %s: no data arrived", g->id);
        goto fail;
    }
    if (!json_is_object(man)) {
        rc = pgs_fail(e, PGS_EFORMAT, "backup %s: END carries no manifest", g->id);
        goto fail;
    }
    if ((rc = record_manifest(g, man, e)) != 0)
        goto fail;

    storage_upload *up = g->up;
    g->up = NULL;
    if ((rc = storage_upload_commit(up, stored, &stored_size, e)) != 0) {
        pgs_wrap(e, "storing backup %s", g->id);
        goto fail;
    }
    /* From here the object is visible: undo means deleting it. */
    hex_encode(ours, SHA256_LEN, hex);
    if (stored_size != g->bytes || memcmp(stored, ours, SHA256_LEN) != 0) {
        rc = pgs_fail(e, PGS_ESUM, "backup %s: storage holds %llu bytes with another SHA-256",
                      g->id, (unsigned long long)stored_size);
        goto fail_visible;
    }
    if ((rc = write_sidecar(g, man, hex, e)) != 0) {
        pgs_wrap(e, "writing the sidecar of backup %s", g->id);
        goto fail_visible;
    }
    if ((rc = catalog_backup_complete(g->cat, g->id, g->bytes, 0, hex, g->key, e)) != 0)
        goto fail_visible;
    g->done = 1;
    if (key_out != NULL)
        *key_out = g->key;
    return 0;

fail_visible:;
    pgs_error de = {0};
    storage_delete(g->st, g->sidecar, &de);
    storage_delete(g->st, g->key, &de);
fail:
    ingest_fail(g, e->msg);
    return rc;
}

void ingest_abort(ingest *g, const char *reason)
{
    ingest_fail(g, reason);
}

const char *ingest_key(const ingest *g)
{
    return g->key;
}

uint64_t ingest_bytes(const ingest *g)
{
    return g->bytes;
}

void ingest_free(ingest *g)
{
    if (g == NULL)
        return;
    if (!g->done)
        ingest_fail(g, "the stream was dropped");
    sha256_free(g->hash);
    free(g);
}
