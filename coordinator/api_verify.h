/*
 * The decoders of the API's verification routes (coordinator/api_verify.c, docs/api.md,
 * "Verifications"): POST /v1/backups/ID/verify's body and GET /v1/verifications' query. Exposed
 * for the unit tests and the fuzz target; the routes use nothing else of a request.
 */
#ifndef PGSHIP_COORDINATOR_API_VERIFY_H
#define PGSHIP_COORDINATOR_API_VERIFY_H

#include <stddef.h>

#include "common/error.h"
#include "coordinator/catalog.h"

/* GET /v1/verifications: rows when no limit is given, and the largest limit accepted. */
#define API_VERIFY_LIST_DEFAULT 100
#define API_VERIFY_LIST_MAX 10000
/* A query string longer than this is refused. */
#define API_VERIFY_QUERY_MAX 512

/* POST /v1/backups/ID/verify, decoded. */
typedef struct api_verify_body {
    int restore_test; /* 1: restore it into a scratch database too */
} api_verify_body;

/*
 * Decodes a POST /v1/backups/ID/verify body: nothing at all, or a JSON object of at most
 * API_BODY_MAX bytes with at most one field, "restore_test", true or false (absent: false). Any
 * other field, a duplicate key or another type is refused. 0, or PGS_EFORMAT / PGS_EINVAL /
 * PGS_ELIMIT with e saying why (values are not echoed); on failure *out is zeroed.
 */
int api_verify_body_parse(const void *body, size_t len, api_verify_body *out, pgs_error *e);

/* GET /v1/verifications, decoded. */
typedef struct api_verify_query {
    char backup[CATALOG_ID_SIZE];     /* "" for any */
    char agent[CATALOG_NAME_MAX + 1]; /* "" for any */
    enum catalog_verify_state state;  /* CATALOG_VERIFY_ANY for any */
    unsigned limit;                   /* 1..API_VERIFY_LIST_MAX */
} api_verify_query;

/*
 * Decodes GET /v1/verifications' query: NULL or "" (everything, the default limit), or
 * name=value pairs joined by '&', each name at most once: backup (a backup id), agent (a name),
 * state (queued, running, ok, failed or any) and limit (1..API_VERIFY_LIST_MAX, decimal digits
 * only). Values may be %-escaped. At most API_VERIFY_QUERY_MAX bytes. 0, or PGS_EINVAL /
 * PGS_ELIMIT with e saying which parameter (values are not echoed).
 */
int api_verify_query_parse(const char *query, api_verify_query *out, pgs_error *e);

#endif
