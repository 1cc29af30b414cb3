/* Encoding and strict decoding of manifest.json and end.json (see manifest.h). */
#include "proto/manifest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/sha256.h"
#include "proto/jsonutil.h"
#include "proto/bundle.h"

void manifest_time(long long unix_seconds, char out[32])
{
    time_t t = (time_t)unix_seconds;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int manifest_encode(const manifest *m, char **out, size_t *len, pgs_error *e)
{
    json_t *root = json_object();
    json_t *rcpts = json_array();
    int rc = 0;
    if (root == NULL || rcpts == NULL) {
        json_decref(root);
        json_decref(rcpts);
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    }
    json_object_set_new(root, "pgship_archive", json_integer(MANIFEST_VERSION));
    if ((rc = jsonu_set_str(root, "created_by", m->created_by, e)) ||
        (rc = jsonu_set_str(root, "host", m->host, e)) ||
        (rc = jsonu_set_str(root, "database", m->database, e)) ||
        (rc = jsonu_set_str(root, "server_version", m->server_version, e)))
        goto fail;
    json_object_set_new(root, "server_version_num", json_integer(m->server_version_num));
    if ((rc = jsonu_set_str(root, "pg_dump_version", m->pg_dump_version, e)) ||
        (rc = jsonu_set_str(root, "format", m->format, e)) ||
        (rc = jsonu_set_str(root, "started_at", m->started_at, e)))
        goto fail;
    json_object_set_new(root, "estimated_bytes", json_integer((json_int_t)m->estimated_bytes));
    json_object_set_new(root, "part_size", json_integer((json_int_t)m->part_size));
    json_object_set_new(root, "globals", json_boolean(m->globals));
    for (size_t i = 0; i < m->nrecipients; i++) {
        json_t *r = json_object();
        if (r == NULL || json_array_append_new(rcpts, r) != 0) {
            rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
            goto fail;
        }
        if ((rc = jsonu_set_str(r, "key_id", m->recipients[i].key_id, e)) ||
            (rc = jsonu_set_str(r, "name", m->recipients[i].name, e)))
            goto fail;
    }
    json_object_set(root, "recipients", rcpts);
    json_object_set_new(root, "options", m->options ? json_incref(m->options) : json_object());
    json_decref(rcpts);
    return jsonu_dump(root, out, len, e);
fail:
    json_decref(rcpts);
    json_decref(root);
    return rc;
}

int manifest_decode(const void *buf, size_t len, manifest *m, pgs_error *e)
{
    memset(m, 0, sizeof(*m));
    json_t *root = jsonu_load_object(buf, len, BUNDLE_MANIFEST_MAX, BUNDLE_MANIFEST, e);
    if (root == NULL)
        return e ? e->code : PGS_EFORMAT;
    uint64_t v = 0;
    int rc;
    if ((rc = jsonu_get_uint(root, "pgship_archive", 1000, &v, e)) != 0)
        goto out;
    if (v != MANIFEST_VERSION) {
        rc = pgs_fail(e, PGS_EVERSION, "manifest version %llu is not supported (expected %d)",
                      (unsigned long long)v, MANIFEST_VERSION);
        goto out;
    }
    m->version = (int)v;
    if ((rc = jsonu_get_str(root, "created_by", m->created_by, sizeof(m->created_by), e)) ||
        (rc = jsonu_get_str(root, "host", m->host, sizeof(m->host), e)) ||
        (rc = jsonu_get_str(root, "database", m->database, sizeof(m->database), e)) ||
        (rc = jsonu_get_str(root, "server_version", m->server_version, sizeof(m->server_version), e)) ||
        (rc = jsonu_get_str(root, "pg_dump_version", m->pg_dump_version, sizeof(m->pg_dump_version),
                      e)) ||
        (rc = jsonu_get_str(root, "format", m->format, sizeof(m->format), e)) ||
        (rc = jsonu_get_str(root, "started_at", m->started_at, sizeof(m->started_at), e)))
        goto out;
    if (strcmp(m->format, "custom") != 0 && strcmp(m->format, "directory") != 0) {
        rc = pgs_fail(e, PGS_EFORMAT, "unknown dump format \"%s\"", m->format);
        goto out;
    }
    if ((rc = jsonu_get_uint(root, "server_version_num", 10000000, &v, e)) != 0)
        goto out;
    m->server_version_num = (int)v;
    if ((rc = jsonu_get_uint(root, "estimated_bytes", UINT64_MAX >> 1, &m->estimated_bytes, e)) != 0)
        goto out;
    if ((rc = jsonu_get_uint(root, "part_size", UINT32_MAX, &v, e)) != 0)
        goto out;
    m->part_size = (uint32_t)v;
    json_t *g = json_object_get(root, "globals");
    if (!json_is_boolean(g)) {
        rc = pgs_fail(e, PGS_EFORMAT, "field \"globals\" is missing or not a boolean");
        goto out;
    }
    m->globals = json_is_true(g);
    json_t *rcpts = json_object_get(root, "recipients");
    if (!json_is_array(rcpts) || json_array_size(rcpts) < 1 ||
        json_array_size(rcpts) > ENVELOPE_RECIPIENTS_MAX) {
        rc = pgs_fail(e, PGS_EFORMAT, "field \"recipients\" must list 1 to %d recipients",
                      ENVELOPE_RECIPIENTS_MAX);
        goto out;
    }
    for (size_t i = 0; i < json_array_size(rcpts); i++) {
        json_t *r = json_array_get(rcpts, i);
        if (!json_is_object(r)) {
            rc = pgs_fail(e, PGS_EFORMAT, "recipient %zu is not an object", i);
            goto out;
        }
        if ((rc = jsonu_get_str(r, "key_id", m->recipients[i].key_id, sizeof(m->recipients[i].key_id),
                          e)) ||
            (rc = jsonu_get_str(r, "name", m->recipients[i].name, sizeof(m->recipients[i].name), e)))
            goto out;
        uint8_t id[KEY_ID_LEN];
        if (strlen(m->recipients[i].key_id) != KEY_ID_HEX_LEN ||
            hex_decode(m->recipients[i].key_id, KEY_ID_HEX_LEN, id, KEY_ID_LEN) != 0) {
            rc = pgs_fail(e, PGS_EFORMAT, "recipient %zu: key_id is not %d hex digits", i,
                          KEY_ID_HEX_LEN);
            goto out;
        }
        if (!key_name_valid(m->recipients[i].name)) {
            rc = pgs_fail(e, PGS_EFORMAT, "recipient %zu: name is not a valid key name", i);
            goto out;
        }
    }
    m->nrecipients = json_array_size(rcpts);
    json_t *opts = json_object_get(root, "options");
    if (!json_is_object(opts)) {
        rc = pgs_fail(e, PGS_EFORMAT, "field \"options\" is missing or not an object");
        goto out;
    }
    m->options = json_incref(opts);
    rc = 0;
out:
    json_decref(root);
    if (rc != 0)
        manifest_clear(m);
    return rc;
}

void manifest_clear(manifest *m)
{
    json_decref(m->options);
    m->options = NULL;
}

int manifest_end_encode(const manifest_end *m, char **out, size_t *len, pgs_error *e)
{
    json_t *root = json_pack("{s:s, s:I, s:I}", "ended_at", m->ended_at, "dump_bytes",
                             (json_int_t)m->dump_bytes, "dump_members",
                             (json_int_t)m->dump_members);
    if (root == NULL)
        return pgs_fail(e, PGS_ENOMEM, "cannot encode %s", BUNDLE_END);
    return jsonu_dump(root, out, len, e);
}

int manifest_end_decode(const void *buf, size_t len, manifest_end *m, pgs_error *e)
{
    memset(m, 0, sizeof(*m));
    json_t *root = jsonu_load_object(buf, len, BUNDLE_END_MAX, BUNDLE_END, e);
    if (root == NULL)
        return e ? e->code : PGS_EFORMAT;
    int rc = jsonu_get_str(root, "ended_at", m->ended_at, sizeof(m->ended_at), e);
    if (rc == 0)
        rc = jsonu_get_uint(root, "dump_bytes", UINT64_MAX >> 1, &m->dump_bytes, e);
    if (rc == 0)
        rc = jsonu_get_uint(root, "dump_members", UINT64_MAX >> 1, &m->dump_members, e);
    json_decref(root);
    return rc;
}
