/*
 * Object storage for the coordinator: where backup archives and their sidecar manifests go.
 * Two backends sit behind this one interface, chosen by storage_config.type: "fs", a local
 * directory (the zero-setup default), and "s3", any S3-compatible service over libcurl with
 * SigV4. docs/storage.md describes the behaviour an operator sees.
 *
 * Keys are relative to the configured prefix and look like
 * "<environment>/<agent>/<database>/<backup-id>.pgship". Every operation checks its key the same
 * way for every backend (storage_key_check): 1..STORAGE_KEY_MAX bytes of printable ASCII without
 * space or backslash, segments separated by single "/", no leading or trailing "/", no segment
 * that starts with "." (so no "." or ".." and no clash with the fs backend's temporary files),
 * at most STORAGE_SEGMENT_MAX bytes per segment and STORAGE_DEPTH_MAX segments.
 *
 * Atomicity: an object becomes visible whole or not at all. An upload is visible only once
 * storage_upload_commit has returned 0; an aborted or failed upload leaves nothing visible. A
 * committed object replaces an older one under the same key.
 *
 * Threads: a storage handle may be used from several threads at once (each call has its own
 * connection); one upload must be driven from one thread at a time. The S3 backend runs its own
 * worker threads for parts in flight. Processes using the S3 backend should ignore SIGPIPE, as
 * daemons do: a TLS peer that goes away would otherwise kill the process.
 */
#ifndef PGSHIP_COORDINATOR_STORAGE_H
#define PGSHIP_COORDINATOR_STORAGE_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define STORAGE_KEY_MAX 1024    /* S3's own limit, and it applies to the key with its prefix */
#define STORAGE_SEGMENT_MAX 255 /* a file name on the fs backend */
#define STORAGE_DEPTH_MAX 16

#define STORAGE_PART_SIZE_MIB_DEFAULT 12
#define STORAGE_PART_SIZE_MIB_MIN 5    /* S3's minimum for every part but the last */
#define STORAGE_PART_SIZE_MIB_MAX 5120 /* S3's maximum part */
#define STORAGE_PARALLEL_PARTS_DEFAULT 1
#define STORAGE_PARALLEL_PARTS_MAX 64
#define STORAGE_MAX_PARTS 10000 /* S3's limit: part_size x 10000 is the largest object */

typedef struct storage storage;
typedef struct storage_upload storage_upload;

/*
 * Configuration. Strings are copied by storage_open; the caller keeps ownership of cfg. Zero or
 * NULL fields take the defaults named beside them.
 */
typedef struct storage_config {
    const char *type;   /* "fs" or "s3"; NULL means "fs" */
    const char *prefix; /* optional key prefix, checked like a key, e.g. "pgship" */

    /* fs */
    const char *path; /* root directory; created (mode 0700) when missing */

    /* s3 */
    const char *endpoint; /* "http://127.0.0.1:9000"; NULL: https://s3.<region>.amazonaws.com */
    const char *region;   /* default "us-east-1" */
    const char *bucket;
    int path_style;                /* 1: endpoint/bucket/key; 0: bucket.endpoint-host/key */
    const char *access_key_id;     /* required */
    const char *secret_access_key; /* required; read by the caller from a file or the
                                      environment; copied, never logged, wiped on close */
    const char *session_token;     /* optional (AWS_SESSION_TOKEN): sent as x-amz-security-token;
                                      copied, never logged, wiped on close */
    const char *ca_file;           /* optional CA bundle for https endpoints */
    unsigned part_size_mib;        /* default 12, within [5, 5120] */
    unsigned parallel_parts;       /* parts in flight per upload: default 1, within [1, 64] */
    unsigned connect_timeout_s;    /* default 10 */
    unsigned low_speed_time_s;     /* a request moving under 1 KiB/s this long fails: default 30 */
    unsigned request_timeout_s;    /* whole-request limit: default 0, none (parts can be big) */
    unsigned max_attempts;         /* tries per request, retries included: default 5 */
    unsigned retry_base_ms;        /* first back-off, doubled per retry (capped at 30 s): 500 */
} storage_config;

/* Opens a backend after checking cfg (nothing is contacted: the first request shows whether the
 * endpoint and credentials work). *out is freed with storage_close. */
int storage_open(storage **out, const storage_config *cfg, pgs_error *e);

/* Starts an upload to key. Nothing is visible under key until commit. Memory is bounded: the fs
 * backend writes through; the S3 backend holds at most part_size x (parallel_parts + 1). */
int storage_upload_begin(storage *s, const char *key, storage_upload **out, pgs_error *e);

/* Appends len bytes. S3 parts leave while data still arrives, up to parallel_parts in flight; a
 * write blocks while that many are in flight (backpressure for the sender). After a failure the
 * upload can only be aborted (commit does that too). */
int storage_upload_write(storage_upload *u, const void *buf, size_t len, pgs_error *e);

/* Makes the object visible and returns the SHA-256 and size of exactly the bytes stored
 * (sha256 and size may be NULL). Frees u whatever it returns; on failure nothing new is visible
 * under the key (the upload is aborted). */
int storage_upload_commit(storage_upload *u, uint8_t sha256[32], uint64_t *size, pgs_error *e);

/* Abandons the upload: the fs backend removes its temporary file; the S3 backend aborts the
 * multipart upload (a service without AbortMultipartUpload is logged once; its parts stay
 * invisible). Frees u; NULL is allowed. */
void storage_upload_abort(storage_upload *u);

/* Stores a small object in one request (fs: temporary file, fsync, rename, fsync of the
 * directory; S3: one PUT carrying the body's SHA-256). Replaces an existing object. */
int storage_put(storage *s, const char *key, const void *buf, size_t len, pgs_error *e);

/* Receives object bytes in order. Returns 0, or a negative PGS_E* code to stop the read. */
typedef int (*storage_sink_fn)(void *arg, const void *buf, size_t len);

/* Streams the object at key to sink. PGS_ENOTFOUND when there is no such object. A sink's
 * non-zero return stops the read and is returned as is (e then says the read was stopped). */
int storage_get(storage *s, const char *key, storage_sink_fn sink, void *arg, pgs_error *e);

/* Receives one object: its key (relative to the prefix; valid during the call) and size.
 * Returns 0 to go on, or a negative PGS_E* code to stop. */
typedef int (*storage_list_fn)(void *arg, const char *key, uint64_t size);

/* Calls cb for every object whose key starts with prefix ("" lists everything; "prod/" one
 * environment). S3 lists in key order, page by page; the fs backend in no particular order.
 * Objects whose names fail the key check (written by something else) are skipped with a
 * warning. A callback's non-zero return stops the listing and is returned as is. */
int storage_list(storage *s, const char *prefix, storage_list_fn cb, void *arg, pgs_error *e);

/* Removes the object at key. Removing an object that does not exist succeeds (as in S3). */
int storage_delete(storage *s, const char *key, pgs_error *e);

/* Removes what uploads to key left behind when the process that ran them died (a crash cannot
 * abort): the fs backend's temporary files beside key. On S3 such multipart uploads are invisible
 * and are left to the bucket's lifecycle rule (AbortIncompleteMultipartUpload; docs/storage.md):
 * 0 without a request. Run only when no upload to key can be running. */
int storage_forget_uploads(storage *s, const char *key, pgs_error *e);

/* Releases the handle; every upload must have been committed or aborted. NULL is allowed. */
void storage_close(storage *s);

/* Counters of the process's storage operations, for GET /metrics: failures the callers saw (not
 * a stop, not a missing object) and retries the S3 backend made, per operation. */
enum { STORAGE_OP_UPLOAD, STORAGE_OP_PUT, STORAGE_OP_GET, STORAGE_OP_LIST, STORAGE_OP_DELETE,
       STORAGE_OP_FORGET, STORAGE_OPS };
typedef struct storage_counts {
    unsigned long long errors[STORAGE_OPS], retries[STORAGE_OPS];
} storage_counts;
void storage_counts_get(storage_counts *out);
/* "upload", "put", "get", "list", "delete", "forget" */
const char *storage_op_name(int op);

/* Checks a key (or, with is_prefix, a listing prefix, which may be empty or end with "/")
 * against the rules above. 0 or PGS_EINVAL with a message naming what is wrong. */
int storage_key_check(const char *key, int is_prefix, pgs_error *e);

#endif
