/*
 * The storage interface (storage.h): picks a backend by name and does what every backend needs
 * the same way, so that no backend can get it wrong on its own: the key check, the prefix, and
 * the state of an upload. Keys end up in file names and in URLs, so they are checked here once,
 * strictly, before any backend sees them.
 */
#include "coordinator/storage.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "coordinator/storage_intern.h"

static const storage_backend *const storage_backends[] = {
    &storage_backend_fs,
    &storage_backend_s3,
};

struct storage {
    const storage_backend *be;
    void *impl;
    char prefix[STORAGE_KEY_MAX + 1]; /* "" or the configured prefix with "/" appended */
    size_t prefix_len;
};

struct storage_upload {
    storage *s;
    void *impl;
    int failed;
    char key[STORAGE_FULL_KEY_MAX];
};

static int key_char_ok(char c)
{
    return c > ' ' && c <= '~' && c != '\\';
}

int storage_key_check(const char *key, int is_prefix, pgs_error *e)
{
    const char *what = is_prefix ? "prefix" : "key";
    if (key == NULL)
        return pgs_fail(e, PGS_EINVAL, "storage %s is missing", what);
    size_t len = strnlen(key, STORAGE_KEY_MAX + 1);
    if (len > STORAGE_KEY_MAX)
        return pgs_fail(e, PGS_EINVAL, "storage %s is longer than %d bytes", what, STORAGE_KEY_MAX);
    if (len == 0)
        return is_prefix ? 0 : pgs_fail(e, PGS_EINVAL, "storage key is empty");
    /* Characters first, so that the messages below can quote the key to an operator. */
    for (size_t i = 0; i < len; i++)
        if (!key_char_ok(key[i]))
            return pgs_fail(e, PGS_EINVAL,
                            "storage %s has a character other than printable ASCII at byte %zu "
                            "(spaces, control characters, backslashes and non-ASCII are refused)",
                            what, i);
    if (key[0] == '/')
        return pgs_fail(e, PGS_EINVAL, "storage %s \"%.200s\" starts with \"/\"", what, key);
    if (strstr(key, "..") != NULL)
        return pgs_fail(e, PGS_EINVAL, "storage %s \"%.200s\" contains \"..\"", what, key);
    size_t seg = 0, depth = 1;
    for (size_t i = 0; i < len; i++) {
        char c = key[i];
        if (c == '/') {
            if (seg == 0)
                return pgs_fail(e, PGS_EINVAL, "storage %s \"%.200s\" has an empty segment", what,
                                key);
            seg = 0;
            if (i + 1 < len && ++depth > STORAGE_DEPTH_MAX)
                return pgs_fail(e, PGS_EINVAL, "storage %s has more than %d segments", what,
                                STORAGE_DEPTH_MAX);
            continue;
        }
        if (seg == 0 && c == '.')
            return pgs_fail(e, PGS_EINVAL,
                            "storage %s \"%.200s\" has a segment starting with \".\"", what, key);
        if (++seg > STORAGE_SEGMENT_MAX)
            return pgs_fail(e, PGS_EINVAL, "storage %s has a segment longer than %d bytes", what,
                            STORAGE_SEGMENT_MAX);
    }
    if (key[len - 1] == '/' && !is_prefix)
        return pgs_fail(e, PGS_EINVAL, "storage key \"%.200s\" ends with \"/\"", key);
    return 0;
}

/* Checks key and writes prefix + key into full (STORAGE_FULL_KEY_MAX bytes). */
static int storage_full_key(const storage *s, const char *key, int is_prefix, char *full,
                            pgs_error *e)
{
    int rc = storage_key_check(key, is_prefix, e);
    if (rc != 0)
        return rc;
    size_t len = strlen(key);
    if (s->prefix_len + len > STORAGE_KEY_MAX)
        return pgs_fail(e, PGS_EINVAL,
                        "storage key \"%.200s\" with its prefix is longer than %d "
                        "bytes",
                        key, STORAGE_KEY_MAX);
    memcpy(full, s->prefix, s->prefix_len);
    memcpy(full + s->prefix_len, key, len + 1);
    return 0;
}

int storage_stopped(pgs_error *e, int code, const char *what, const char *key)
{
    return pgs_fail(e, code, "%s of \"%.300s\" was stopped by its receiver (%s)", what, key,
                    pgs_strerror(code));
}

int storage_open(storage **out, const storage_config *cfg, pgs_error *e)
{
    const char *type = cfg->type != NULL ? cfg->type : "fs";
    const storage_backend *be = NULL;
    storage *s = NULL;
    int rc;

    *out = NULL;
    for (size_t i = 0; i < sizeof(storage_backends) / sizeof(storage_backends[0]); i++)
        if (strcmp(storage_backends[i]->name, type) == 0)
            be = storage_backends[i];
    if (be == NULL)
        return pgs_fail(e, PGS_EINVAL, "unknown storage type \"%.64s\" (use \"fs\" or \"s3\")",
                        type);
    if (cfg->prefix != NULL && cfg->prefix[0] != '\0') {
        if ((rc = storage_key_check(cfg->prefix, 0, e)) != 0)
            return pgs_wrap(e, "storage prefix");
        if (strlen(cfg->prefix) + 2 > STORAGE_KEY_MAX)
            return pgs_fail(e, PGS_EINVAL, "storage prefix is too long");
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    s->be = be;
    if (cfg->prefix != NULL && cfg->prefix[0] != '\0')
        s->prefix_len = (size_t)snprintf(s->prefix, sizeof(s->prefix), "%s/", cfg->prefix);
    if ((rc = be->open(&s->impl, cfg, e)) != 0) {
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void storage_close(storage *s)
{
    if (s == NULL)
        return;
    s->be->close(s->impl);
    free(s);
}

/* ---- counters (GET /metrics) ---- */

static atomic_ullong storage_errors_n[STORAGE_OPS], storage_retries_n[STORAGE_OPS];
static const char *const storage_op_names[STORAGE_OPS] = {"upload", "put",    "get",
                                                           "list",   "delete", "forget"};

const char *storage_op_name(int op)
{
    return op >= 0 && op < STORAGE_OPS ? storage_op_names[op] : "other";
}

void storage_note_retry(int op)
{
    if (op >= 0 && op < STORAGE_OPS)
        atomic_fetch_add(&storage_retries_n[op], 1);
}

/* A failure the caller sees (a stop or a missing object is not an error of the storage). */
static int counted(int op, int rc)
{
    if (rc != 0 && rc != PGS_EINTR && rc != PGS_ENOTFOUND && op >= 0 && op < STORAGE_OPS)
        atomic_fetch_add(&storage_errors_n[op], 1);
    return rc;
}

void storage_counts_get(storage_counts *out)
{
    for (int i = 0; i < STORAGE_OPS; i++) {
        out->errors[i] = atomic_load(&storage_errors_n[i]);
        out->retries[i] = atomic_load(&storage_retries_n[i]);
    }
}

int storage_upload_begin(storage *s, const char *key, storage_upload **out, pgs_error *e)
{
    storage_upload *u = NULL;
    int rc;

    *out = NULL;
    u = calloc(1, sizeof(*u));
    if (u == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    u->s = s;
    if ((rc = storage_full_key(s, key, 0, u->key, e)) != 0 ||
        (rc = counted(STORAGE_OP_UPLOAD, s->be->upload_begin(s->impl, u->key, &u->impl, e))) != 0) {
        free(u);
        return rc;
    }
    *out = u;
    return 0;
}

int storage_upload_write(storage_upload *u, const void *buf, size_t len, pgs_error *e)
{
    if (u->failed)
        return pgs_fail(e, PGS_EINVAL, "upload of %s failed earlier and can only be aborted",
                        u->key);
    if (len == 0)
        return 0;
    int rc = counted(STORAGE_OP_UPLOAD, u->s->be->upload_write(u->impl, buf, len, e));
    if (rc != 0)
        u->failed = 1;
    return rc;
}

int storage_upload_commit(storage_upload *u, uint8_t sha256[32], uint64_t *size, pgs_error *e)
{
    int rc;
    uint8_t digest[32];
    uint64_t n = 0;

    if (u->failed) {
        u->s->be->upload_abort(u->impl);
        rc = pgs_fail(e, PGS_EINVAL, "upload of %s failed earlier; nothing was stored", u->key);
        goto out;
    }
    rc = counted(STORAGE_OP_UPLOAD, u->s->be->upload_commit(u->impl, digest, &n, e));
    if (rc == 0) {
        if (sha256 != NULL)
            memcpy(sha256, digest, sizeof(digest));
        if (size != NULL)
            *size = n;
        log_debug("storage: stored %s (%llu bytes)", u->key, (unsigned long long)n);
    }
out:
    free(u);
    return rc;
}

void storage_upload_abort(storage_upload *u)
{
    if (u == NULL)
        return;
    u->s->be->upload_abort(u->impl);
    free(u);
}

int storage_put(storage *s, const char *key, const void *buf, size_t len, pgs_error *e)
{
    char full[STORAGE_FULL_KEY_MAX];
    int rc = storage_full_key(s, key, 0, full, e);
    if (rc != 0)
        return rc;
    if (s->be->put != NULL)
        return counted(STORAGE_OP_PUT, s->be->put(s->impl, full, buf, len, e));

    storage_upload *u = NULL;
    if ((rc = storage_upload_begin(s, key, &u, e)) != 0)
        return rc;
    if ((rc = storage_upload_write(u, buf, len, e)) != 0) {
        storage_upload_abort(u);
        return rc;
    }
    return storage_upload_commit(u, NULL, NULL, e);
}

int storage_get(storage *s, const char *key, storage_sink_fn sink, void *arg, pgs_error *e)
{
    char full[STORAGE_FULL_KEY_MAX];
    int rc = storage_full_key(s, key, 0, full, e);
    if (rc != 0)
        return rc;
    return counted(STORAGE_OP_GET, s->be->get(s->impl, full, sink, arg, e));
}

typedef struct list_strip {
    const storage *s;
    storage_list_fn cb;
    void *arg;
} list_strip;

/* Gives the caller keys relative to the prefix, and only keys that pass the check. */
static int storage_list_strip(void *arg, const char *key, uint64_t size)
{
    list_strip *ls = arg;
    pgs_error ke = {0};
    if (strncmp(key, ls->s->prefix, ls->s->prefix_len) != 0)
        return 0; /* a backend gave more than asked: not ours */
    const char *rel = key + ls->s->prefix_len;
    if (storage_key_check(rel, 0, &ke) != 0) {
        log_warn("storage: skipping an object that pgship did not write: %s", ke.msg);
        return 0;
    }
    return ls->cb(ls->arg, rel, size);
}

int storage_list(storage *s, const char *prefix, storage_list_fn cb, void *arg, pgs_error *e)
{
    char full[STORAGE_FULL_KEY_MAX];
    int rc = storage_full_key(s, prefix != NULL ? prefix : "", 1, full, e);
    if (rc != 0)
        return rc;
    list_strip ls = {s, cb, arg};
    return counted(STORAGE_OP_LIST, s->be->list(s->impl, full, storage_list_strip, &ls, e));
}

int storage_delete(storage *s, const char *key, pgs_error *e)
{
    char full[STORAGE_FULL_KEY_MAX];
    int rc = storage_full_key(s, key, 0, full, e);
    if (rc != 0)
        return rc;
    return counted(STORAGE_OP_DELETE, s->be->del(s->impl, full, e));
}

int storage_forget_uploads(storage *s, const char *key, pgs_error *e)
{
    char full[STORAGE_FULL_KEY_MAX];
    int rc = storage_full_key(s, key, 0, full, e);
    if (rc != 0)
        return rc;
    return s->be->forget != NULL ? counted(STORAGE_OP_FORGET, s->be->forget(s->impl, full, e)) : 0;
}
