/*
 * The decoders of the API's fleet-operation routes (coordinator/api_ops.c, docs/api.md):
 * POST /v1/prune's body, the empty bodies of POST /v1/backups/ID/pin and /unpin, and
 * GET /v1/audit's query. Exposed for the unit tests and the fuzz target; the routes use nothing
 * else of a request.
 */
#ifndef PGSHIP_COORDINATOR_API_OPS_H
#define PGSHIP_COORDINATOR_API_OPS_H

#include <stddef.h>

#include "common/error.h"

/* GET /v1/audit: entries when no limit is given, and the largest limit accepted. */
#define API_AUDIT_DEFAULT 100
#define API_AUDIT_MAX 10000
/* A query string longer than this is refused. */
#define API_OPS_QUERY_MAX 256

/* POST /v1/prune, decoded. */
typedef struct api_prune_body {
    int dry_run; /* 1: plan only */
} api_prune_body;

/*
 * Decodes a POST /v1/prune body: a JSON object of at most API_BODY_MAX bytes with exactly one
 * field, "dry_run", true or false. The field is required: a prune deletes backups, so an empty
 * body or {} never means "delete" by default. Any other field, a duplicate key or another type
 * is refused. 0, or PGS_EFORMAT / PGS_EINVAL / PGS_ELIMIT with e saying why; on failure *out
 * is zeroed.
 */
int api_prune_body_parse(const void *body, size_t len, api_prune_body *out, pgs_error *e);

/* The body of a POST that takes no parameters (pin, unpin): nothing, or a JSON object without
 * fields ({}), at most API_BODY_MAX bytes. 0, or PGS_EFORMAT / PGS_EINVAL / PGS_ELIMIT with e
 * saying why. */
int api_empty_body_parse(const void *body, size_t len, pgs_error *e);

/*
 * Decodes GET /v1/audit's query into *limit: NULL or "" (API_AUDIT_DEFAULT), or "limit=N" with N
 * one to five decimal digits (no sign, space or escape) worth 1 to API_AUDIT_MAX; the parameter
 * at most once, nothing else. 0, or PGS_EINVAL / PGS_ELIMIT with e saying why (the query is not
 * echoed); on failure *limit is left as it was.
 */
int api_audit_query_parse(const char *query, unsigned *limit, pgs_error *e);

#endif
