/*
 * Strict JSON fields for pgship's decoders (manifest.json, end.json, wire frames): every field
 * required with its type, every string bounded, duplicate keys refused.
 */
#include "proto/jsonutil.h"

#include <stdio.h>
#include <string.h>

int jsonu_dump(json_t *root, char **out, size_t *len, pgs_error *e)
{
    char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (s == NULL)
        return pgs_fail(e, PGS_ENOMEM, "cannot encode JSON");
    *out = s;
    *len = strlen(s);
    return 0;
}

/* Sets key to a string, refusing text that is not UTF-8 (a database name from an SQL_ASCII or
 * LATIN1 server may not be) with an error that names the field. */
int jsonu_set_str(json_t *o, const char *key, const char *val, pgs_error *e)
{
    json_t *v = json_string(val);
    if (v == NULL)
        return pgs_fail(e, PGS_EINVAL, "field \"%s\" is not valid UTF-8", key);
    json_object_set_new(o, key, v);
    return 0;
}

/* Copies a required string field of at most cap-1 bytes. */
int jsonu_get_str(json_t *o, const char *key, char *dst, size_t cap, pgs_error *e)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v))
        return pgs_fail(e, PGS_EFORMAT, "field \"%s\" is missing or not a string", key);
    size_t n = json_string_length(v);
    if (n >= cap)
        return pgs_fail(e, PGS_ELIMIT, "field \"%s\" is longer than %zu bytes", key, cap - 1);
    memcpy(dst, json_string_value(v), n + 1);
    return 0;
}

int jsonu_get_uint(json_t *o, const char *key, uint64_t max, uint64_t *dst, pgs_error *e)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v))
        return pgs_fail(e, PGS_EFORMAT, "field \"%s\" is missing or not an integer", key);
    json_int_t x = json_integer_value(v);
    if (x < 0 || (uint64_t)x > max)
        return pgs_fail(e, PGS_ELIMIT, "field \"%s\" is out of range", key);
    *dst = (uint64_t)x;
    return 0;
}

json_t *jsonu_load_object(const void *buf, size_t len, size_t max, const char *what,
                           pgs_error *e)
{
    if (len > max) {
        pgs_fail(e, PGS_ELIMIT, "%s is larger than %zu bytes", what, max);
        return NULL;
    }
    json_error_t jerr;
    json_t *root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        pgs_fail(e, PGS_EFORMAT, "%s is not valid JSON: %s (line %d)", what, jerr.text, jerr.line);
        return NULL;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        pgs_fail(e, PGS_EFORMAT, "%s is not a JSON object", what);
        return NULL;
    }
    return root;
}


int jsonu_only_keys(json_t *o, const char *const *allowed, pgs_error *e)
{
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        (void)v;
        int ok = 0;
        for (const char *const *a = allowed; *a != NULL && !ok; a++)
            ok = strcmp(*a, key) == 0;
        if (!ok)
            return pgs_fail(e, PGS_EFORMAT, "unexpected field \"%.64s\"", key);
    }
    return 0;
}
