/*
 * Strict JSON field access shared by pgship's decoders. Loaders bound the input size and refuse
 * duplicate keys; getters require the field with its type and bound its value.
 */
#ifndef PGSHIP_PROTO_JSONUTIL_H
#define PGSHIP_PROTO_JSONUTIL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* Parses at most max bytes of JSON that must be an object; NULL with e set otherwise. */
json_t *jsonu_load_object(const void *buf, size_t len, size_t max, const char *what, pgs_error *e);
/* Encodes root (and drops the reference) into a malloc'd text. */
int jsonu_dump(json_t *root, char **out, size_t *len, pgs_error *e);
/* Sets key to val, refusing text that is not UTF-8 with an error naming the field. */
int jsonu_set_str(json_t *o, const char *key, const char *val, pgs_error *e);
/* Copies a required string field of at most cap-1 bytes into dst. */
int jsonu_get_str(json_t *o, const char *key, char *dst, size_t cap, pgs_error *e);
/* A required non-negative integer field of at most max. */
int jsonu_get_uint(json_t *o, const char *key, uint64_t max, uint64_t *dst, pgs_error *e);
/* Refuses any key of o not in the NULL-terminated list allowed. */
int jsonu_only_keys(json_t *o, const char *const *allowed, pgs_error *e);

#endif
