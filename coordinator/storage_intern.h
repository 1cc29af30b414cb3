/*
 * The table of operations a storage backend fills (only backends and storage.c include this).
 * storage.c does what is common to every backend before calling in: it checks keys, joins the
 * configured prefix to them (backends see full keys and never check them again), strips it
 * from listed keys, and keeps the state of an upload (a failed upload takes no more writes).
 * A new backend is a new file with one of these tables, and one line in storage.c.
 */
#ifndef PGSHIP_COORDINATOR_STORAGE_INTERN_H
#define PGSHIP_COORDINATOR_STORAGE_INTERN_H

#include "coordinator/storage.h"

/* Full keys (prefix included) fit in this, NUL included. */
#define STORAGE_FULL_KEY_MAX (STORAGE_KEY_MAX + 1)

typedef struct storage_backend {
    const char *name;
    /* Checks the backend's part of cfg and allocates its state into *impl. */
    int (*open)(void **impl, const storage_config *cfg, pgs_error *e);
    void (*close)(void *impl);

    int (*upload_begin)(void *impl, const char *key, void **upload, pgs_error *e);
    int (*upload_write)(void *upload, const void *buf, size_t len, pgs_error *e);
    /* Makes the object visible, or fails having removed every trace; frees upload either way. */
    int (*upload_commit)(void *upload, uint8_t sha256[32], uint64_t *size, pgs_error *e);
    /* Removes every trace and frees upload. */
    void (*upload_abort)(void *upload);

    /* Optional: NULL means storage.c runs begin, write and commit. */
    int (*put)(void *impl, const char *key, const void *buf, size_t len, pgs_error *e);
    int (*get)(void *impl, const char *key, storage_sink_fn sink, void *arg, pgs_error *e);
    /* Lists full keys starting with prefix (full, possibly empty). */
    int (*list)(void *impl, const char *prefix, storage_list_fn cb, void *arg, pgs_error *e);
    int (*del)(void *impl, const char *key, pgs_error *e);
    /* Optional: removes what uploads to key interrupted by a crash left behind. */
    int (*forget)(void *impl, const char *key, pgs_error *e);
} storage_backend;

extern const storage_backend storage_backend_fs;
extern const storage_backend storage_backend_s3;

/* A backend's retry of a request made for operation op (STORAGE_OP_*), counted for metrics. */
void storage_note_retry(int op);

/* The message a stopped read or listing leaves in e: a callback's own code is passed through. */
int storage_stopped(pgs_error *e, int code, const char *what, const char *key);

#endif
