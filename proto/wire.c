/*
 * Encoding and strict decoding of wire frames (see wire.h and docs/wire-protocol.md). Control
 * bodies are JSON because they are small, rare and must evolve readably; DATA and PIECE are binary
 * because they carry every byte of every backup and of every restore.
 *
 * The rules a restore, sanitize or verify JOB, an AUTH's restore keys, an EOF or a REPORT must
 * satisfy are written once
 * (the *_check functions) and applied by both the encoder and the decoder: a coordinator cannot
 * build a job its agents would refuse, and the error shows up where the mistake was made.
 */
#include "proto/wire.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/jsonutil.h"

static const char WIRE_MAGIC[2] = {'P', 'W'};

/* Binary body: job id length, job id, seq; the payload follows. */
#define WIRE_BIN_FIXED (1 + WIRE_JOB_ID_LEN + 8)
#define WIRE_RESTORE_JOBS_MAX 64

const char *wire_type_name(wire_type t)
{
    switch (t) {
    case WIRE_HELLO: return "HELLO";
    case WIRE_AUTH: return "AUTH";
    case WIRE_POLL: return "POLL";
    case WIRE_DATA: return "DATA";
    case WIRE_END: return "END";
    case WIRE_FAIL: return "FAIL";
    case WIRE_CHALLENGE: return "CHALLENGE";
    case WIRE_WELCOME: return "WELCOME";
    case WIRE_JOB: return "JOB";
    case WIRE_IDLE: return "IDLE";
    case WIRE_ACK: return "ACK";
    case WIRE_RESULT: return "RESULT";
    case WIRE_ERROR: return "ERROR";
    case WIRE_FETCH: return "FETCH";
    case WIRE_STEP: return "STEP";
    case WIRE_REPORT: return "REPORT";
    case WIRE_PIECE: return "PIECE";
    case WIRE_EOF: return "EOF";
    }
    return NULL;
}

static int is_binary(wire_type t)
{
    return t == WIRE_DATA || t == WIRE_PIECE;
}

/* The largest body a frame of type t may carry. */
static size_t body_max(wire_type t)
{
    switch (t) {
    case WIRE_DATA:
    case WIRE_PIECE: return WIRE_BIN_FIXED + WIRE_DATA_MAX;
    case WIRE_END: return WIRE_END_MAX;
    case WIRE_JOB: return WIRE_JOB_MAX;
    /* The report itself, plus room for job, step and an error message however escaped. */
    case WIRE_REPORT: return WIRE_REPORT_MAX + WIRE_CONTROL_MAX;
    default: return WIRE_CONTROL_MAX;
    }
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void put_header(uint8_t *p, wire_type t, size_t body_len)
{
    p[0] = (uint8_t)WIRE_MAGIC[0];
    p[1] = (uint8_t)WIRE_MAGIC[1];
    p[2] = WIRE_VERSION;
    p[3] = (uint8_t)t;
    put_u32(p + 4, (uint32_t)body_len);
}

/* ---- field rules ---- */

int wire_job_id_valid(const char *id)
{
    if (strlen(id) != WIRE_JOB_ID_LEN)
        return 0;
    for (int i = 0; i < WIRE_JOB_ID_LEN; i++) {
        char c = id[i];
        int ok;
        if (i == 8)
            ok = c == 'T';
        else if (i == 15)
            ok = c == 'Z';
        else if (i == 16)
            ok = c == '-';
        else if (i > 16)
            ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
        else
            ok = c >= '0' && c <= '9';
        if (!ok)
            return 0;
    }
    return 1;
}

int wire_scratch_name_valid(const char *name)
{
    size_t pl = sizeof(WIRE_SCRATCH_PREFIX) - 1;
    if (strnlen(name, WIRE_SCRATCH_LEN + 1) != WIRE_SCRATCH_LEN ||
        strncmp(name, WIRE_SCRATCH_PREFIX, pl) != 0)
        return 0;
    return strspn(name + pl, "0123456789abcdef") == WIRE_SCRATCH_LEN - pl;
}

static int env_valid(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= WIRE_ENV_MAX && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

/* Printable ASCII, for versions, labels and codes. */
static int printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return 0;
    return 1;
}

/* Free text (error messages): UTF-8 (jansson checked it), no control characters but tab. */
static int text_ok(const char *s)
{
    for (; *s; s++)
        if (((unsigned char)*s < 0x20 && *s != '\t') || *s == 0x7f)
            return 0;
    return 1;
}

/* SQL (a profile's sanitize.sql and check.sql): UTF-8 text with its line ends and tabs, no other
 * control character; psql gets it as a file, so a stray escape or NUL has no business there. */
static int sql_ok(const char *s)
{
    for (; *s; s++)
        if (((unsigned char)*s < 0x20 && *s != '\t' && *s != '\n' && *s != '\r') || *s == 0x7f)
            return 0;
    return 1;
}

/* A --schema or --table value for pg_restore: 1..127 bytes of UTF-8, no control character. */
static int pattern_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > WIRE_PATTERN_MAX)
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

/* A step name: [a-z_]{1,31}. */
static int step_ok(const char *s)
{
    size_t n = strlen(s);
    return n >= 1 && n <= WIRE_STEP_MAX && strspn(s, "abcdefghijklmnopqrstuvwxyz_") == n;
}

/* A name by the name rule, or "" for none (profile, role). */
static int name_or_empty(const char *s)
{
    return *s == '\0' || key_name_valid(s);
}

/*
 * A recipient public key in its text form: exactly the line key_format_public writes, without its
 * newline. Only one spelling is accepted, so that two texts of the same key compare equal and no
 * comment or second line can ride along.
 */
static int pubkey_check(const char *s, const char *field, size_t i, pgs_error *e)
{
    size_t n = strnlen(s, WIRE_PUBKEY_TEXT_MAX + 1);
    pgs_pubkey k;
    char line[WIRE_PUBKEY_TEXT_MAX + 2];
    if (n > WIRE_PUBKEY_TEXT_MAX || !printable(s))
        return pgs_fail(e, PGS_EFORMAT,
                        "field \"%s\": entry %zu is not one line of printable text of at most %d "
                        "bytes",
                        field, i, WIRE_PUBKEY_TEXT_MAX);
    int rc = key_parse_public(s, n, &k, e);
    if (rc != 0)
        return pgs_wrap(e, "field \"%s\": entry %zu is not a public key", field, i);
    if (key_format_public(&k, line, sizeof(line)) != 0 || strlen(line) != n + 1 ||
        memcmp(line, s, n) != 0)
        return pgs_fail(e, PGS_EFORMAT,
                        "field \"%s\": entry %zu is not a public key in its text form (the key "
                        "line with single spaces, no newline)",
                        field, i);
    return 0;
}

static int pubkeys_check(const char (*keys)[WIRE_PUBKEY_TEXT_MAX + 1], size_t n, size_t lo,
                         const char *field, pgs_error *e)
{
    if (n < lo || n > WIRE_RECIPIENTS_MAX)
        return pgs_fail(e, PGS_ELIMIT, "field \"%s\" must list %zu to %d public keys", field, lo,
                        WIRE_RECIPIENTS_MAX);
    for (size_t i = 0; i < n; i++) {
        int rc = pubkey_check(keys[i], field, i, e);
        if (rc != 0)
            return rc;
    }
    return 0;
}

#define FIELD_CHECK(ok, name)                                                                     \
    do {                                                                                          \
        if (!(ok))                                                                                \
            return pgs_fail(e, PGS_EFORMAT, "field \"%s\" is not valid", name);                  \
    } while (0)

static int patterns_check(const char (*p)[WIRE_PATTERN_MAX + 1], size_t n, const char *field,
                          pgs_error *e)
{
    if (n > WIRE_PATTERNS_MAX)
        return pgs_fail(e, PGS_ELIMIT, "field \"%s\" must list at most %d patterns", field,
                        WIRE_PATTERNS_MAX);
    for (size_t i = 0; i < n; i++)
        if (!pattern_ok(p[i]))
            return pgs_fail(e, PGS_EFORMAT,
                            "field \"%s\": entry %zu is not 1-%d bytes without control characters",
                            field, i, WIRE_PATTERN_MAX);
    return 0;
}

static int sql_check(const char *sql, const char *field, pgs_error *e)
{
    if (sql == NULL)
        return 0;
    if (strnlen(sql, WIRE_SQL_MAX + 1) > WIRE_SQL_MAX)
        return pgs_fail(e, PGS_ELIMIT, "field \"%s\" is longer than %u bytes", field,
                        WIRE_SQL_MAX);
    if (!sql_ok(sql))
        return pgs_fail(e, PGS_EFORMAT,
                        "field \"%s\" holds a control character (only tab, newline and carriage "
                        "return are allowed)",
                        field);
    return 0;
}

/*
 * A verify job restores nothing the operator chose: no SQL, no filters, no role, nothing kept.
 * Refusing the other fields' non-"none" values keeps a verification from ever doing more than
 * its name says (a stray schema_only would make a restore test that proves nothing).
 */
static int verify_spec_check(const wire_restore_spec *r, pgs_error *e)
{
    if (r->profile[0] != '\0' || r->sanitize_sql != NULL || r->check_sql != NULL ||
        r->schema_only || r->data_only || r->keep_old || r->role[0] != '\0' || r->nschemas != 0 ||
        r->ntables != 0 || r->output[0] != '\0' || r->nrecipients != 0)
        return pgs_fail(e, PGS_EFORMAT,
                        "a verify job takes only \"source\", \"source_bytes\", \"jobs\", "
                        "\"no_owner\", \"restore_test\" and \"scratch\" (the other fields are "
                        "\"\", null, false or [])");
    if (r->restore_test && !wire_scratch_name_valid(r->scratch))
        return pgs_fail(e, PGS_EFORMAT,
                        "field \"scratch\" is not %s followed by 8 lowercase hex digits (a "
                        "restore test needs its scratch database)",
                        WIRE_SCRATCH_PREFIX);
    if (!r->restore_test && r->scratch[0] != '\0')
        return pgs_fail(e, PGS_EFORMAT, "field \"scratch\" is \"\" without \"restore_test\"");
    return 0;
}

/* Everything a restore spec of JOB kind `kind` must satisfy, for the encoder and the decoder. */
static int restore_spec_check(const char *kind, const wire_restore_spec *r, pgs_error *e)
{
    int rc;
    int sanitize = strcmp(kind, "sanitize") == 0;
    FIELD_CHECK(wire_job_id_valid(r->source), "source");
    if (r->source_bytes > INT64_MAX)
        return pgs_fail(e, PGS_ELIMIT, "field \"source_bytes\" is out of range");
    FIELD_CHECK(name_or_empty(r->profile), "profile");
    if ((rc = sql_check(r->sanitize_sql, "sanitize_sql", e)) ||
        (rc = sql_check(r->check_sql, "check_sql", e)))
        return rc;
    if (r->jobs < 1 || r->jobs > WIRE_RESTORE_JOBS_MAX)
        return pgs_fail(e, PGS_ELIMIT, "field \"jobs\" must be 1 to %d",
                        WIRE_RESTORE_JOBS_MAX);
    if (r->schema_only && r->data_only)
        return pgs_fail(e, PGS_EFORMAT, "fields \"schema_only\" and \"data_only\" are both true");
    FIELD_CHECK(name_or_empty(r->role), "role");
    if ((rc = patterns_check(r->schemas, r->nschemas, "schemas", e)) ||
        (rc = patterns_check(r->tables, r->ntables, "tables", e)))
        return rc;
    if (strcmp(kind, "verify") == 0)
        return verify_spec_check(r, e);
    if (r->restore_test || r->scratch[0] != '\0')
        return pgs_fail(e, PGS_EFORMAT,
                        "fields \"restore_test\" and \"scratch\" are for verify jobs only (false "
                        "and \"\" here)");
    if (sanitize) {
        if (!wire_job_id_valid(r->output))
            return pgs_fail(e, PGS_EFORMAT,
                            "field \"output\" is not a job id (a sanitize job makes a backup)");
        return pubkeys_check(r->recipients, r->nrecipients, 1, "recipients", e);
    }
    if (r->output[0] != '\0' || r->nrecipients != 0)
        return pgs_fail(e, PGS_EFORMAT,
                        "fields \"output\" and \"recipients\" are for sanitize jobs only (\"\" and "
                        "[] here)");
    return 0;
}

/* The job kinds and whether they carry a restore spec. */
static int job_kind_check(const char *kind, const wire_restore_spec *r, pgs_error *e)
{
    if (strcmp(kind, "backup") == 0) {
        if (r != NULL)
            return pgs_fail(e, PGS_EFORMAT, "a backup job carries no field \"restore\"");
        return 0;
    }
    if (strcmp(kind, "restore") != 0 && strcmp(kind, "sanitize") != 0 &&
        strcmp(kind, "verify") != 0)
        return pgs_fail(e, PGS_EFORMAT, "unknown job kind \"%.16s\"", kind);
    if (r == NULL)
        return pgs_fail(e, PGS_EFORMAT, "a %s job needs field \"restore\"", kind);
    int rc = restore_spec_check(kind, r, e);
    if (rc != 0)
        return pgs_wrap(e, "field \"restore\"");
    return 0;
}

/* A piece carries 1 byte or more: an object of n bytes takes between 1 and n pieces, 0 if empty. */
static int eof_check(uint64_t pieces, uint64_t bytes, pgs_error *e)
{
    if (pieces > bytes || (bytes > 0 && pieces == 0))
        return pgs_fail(e, PGS_EFORMAT, "%" PRIu64 " pieces cannot carry %" PRIu64 " bytes",
                        pieces, bytes);
    return 0;
}

static int report_check(int ok, const char *step, const char *error, pgs_error *e)
{
    FIELD_CHECK(step_ok(step), "step");
    FIELD_CHECK(text_ok(error), "error");
    if (ok && (strcmp(step, "done") != 0 || error[0] != '\0'))
        return pgs_fail(e, PGS_EFORMAT, "a successful report has step \"done\" and error \"\"");
    return 0;
}

static int get_hex(json_t *o, const char *key, uint8_t *dst, size_t n, pgs_error *e)
{
    char hex[2 * 64 + 1];
    int rc = jsonu_get_str(o, key, hex, 2 * n + 1, e);
    if (rc != 0)
        return rc;
    if (strlen(hex) != 2 * n || hex_decode(hex, 2 * n, dst, n) != 0)
        return pgs_fail(e, PGS_EFORMAT, "field \"%s\" is not %zu hex digits", key, 2 * n);
    return 0;
}

static int get_job(json_t *o, char job[WIRE_JOB_ID_LEN + 1], pgs_error *e)
{
    int rc = jsonu_get_str(o, "job", job, WIRE_JOB_ID_LEN + 1, e);
    if (rc != 0)
        return rc;
    FIELD_CHECK(wire_job_id_valid(job), "job");
    return 0;
}

/* A required string field of at most cap-1 bytes that must pass valid(). */
static int get_checked(json_t *o, const char *key, char *dst, size_t cap,
                       int (*valid)(const char *), pgs_error *e)
{
    int rc = jsonu_get_str(o, key, dst, cap, e);
    if (rc != 0)
        return rc;
    FIELD_CHECK(valid(dst), key);
    return 0;
}

static int get_name(json_t *o, const char *key, char dst[WIRE_NAME_MAX + 1], pgs_error *e)
{
    return get_checked(o, key, dst, WIRE_NAME_MAX + 1, key_name_valid, e);
}

static int get_printable(json_t *o, const char *key, char *dst, size_t cap, pgs_error *e)
{
    return get_checked(o, key, dst, cap, printable, e);
}

static int get_text(json_t *o, const char *key, char *dst, size_t cap, pgs_error *e)
{
    return get_checked(o, key, dst, cap, text_ok, e);
}

static int get_u32_range(json_t *o, const char *key, uint32_t lo, uint32_t hi, uint32_t *dst,
                         pgs_error *e)
{
    uint64_t v = 0;
    int rc = jsonu_get_uint(o, key, hi, &v, e);
    if (rc != 0)
        return rc;
    if (v < lo)
        return pgs_fail(e, PGS_ELIMIT, "field \"%s\" is below %u", key, lo);
    *dst = (uint32_t)v;
    return 0;
}

static int get_bool(json_t *o, const char *key, int *dst, pgs_error *e)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_boolean(v))
        return pgs_fail(e, PGS_EFORMAT, "field \"%s\" is missing or not a boolean", key);
    *dst = json_is_true(v);
    return 0;
}

/* A required field that is null (*dst stays NULL) or a string of at most max bytes (copied). */
static int get_opt_text(json_t *o, const char *key, size_t max, char **dst, pgs_error *e)
{
    json_t *v = json_object_get(o, key);
    if (json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return pgs_fail(e, PGS_EFORMAT, "field \"%s\" is missing or not a string or null", key);
    size_t n = json_string_length(v);
    if (n > max)
        return pgs_fail(e, PGS_ELIMIT, "field \"%s\" is longer than %zu bytes", key, max);
    if (strlen(json_string_value(v)) != n)
        return pgs_fail(e, PGS_EFORMAT, "field \"%s\" contains a NUL character", key);
    if ((*dst = malloc(n + 1)) == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    memcpy(*dst, json_string_value(v), n + 1);
    return 0;
}

/*
 * A required array of at most max strings, each shorter than stride bytes, copied into a new
 * array of n entries of stride bytes (*arr; the caller frees it even on failure). Their content
 * is checked by the caller.
 */
static int get_str_list(json_t *o, const char *key, size_t max, size_t stride, void *arr,
                        size_t *n, pgs_error *e)
{
    json_t *a = json_object_get(o, key);
    if (!json_is_array(a))
        return pgs_fail(e, PGS_EFORMAT, "field \"%s\" is missing or not an array", key);
    size_t len = json_array_size(a);
    if (len > max)
        return pgs_fail(e, PGS_ELIMIT, "field \"%s\" must list at most %zu entries", key, max);
    char *dst = calloc(len ? len : 1, stride);
    if (dst == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    *(char **)arr = dst;
    for (size_t i = 0; i < len; i++) {
        json_t *v = json_array_get(a, i);
        if (!json_is_string(v))
            return pgs_fail(e, PGS_EFORMAT, "field \"%s\": entry %zu is not a string", key, i);
        size_t sl = json_string_length(v);
        if (sl >= stride)
            return pgs_fail(e, PGS_ELIMIT, "field \"%s\": entry %zu is longer than %zu bytes",
                            key, i, stride - 1);
        if (strlen(json_string_value(v)) != sl)
            return pgs_fail(e, PGS_EFORMAT, "field \"%s\": entry %zu contains a NUL character",
                            key, i);
        memcpy(dst + i * stride, json_string_value(v), sl + 1);
    }
    *n = len;
    return 0;
}

/* ---- decode ---- */

static int decode_auth(json_t *o, wire_msg *m, pgs_error *e)
{
    static const char *const keys[] = {"signature", "databases", "restore_keys", NULL};
    static const char *const dbkeys[] = {"name", "environment", "server_version", NULL};
    int rc = jsonu_only_keys(o, keys, e);
    if (rc == 0)
        rc = get_hex(o, "signature", m->u.auth.signature, IDENTITY_SIG_LEN, e);
    if (rc != 0)
        return rc;
    json_t *dbs = json_object_get(o, "databases");
    if (!json_is_array(dbs) || json_array_size(dbs) > WIRE_DBS_MAX)
        return pgs_fail(e, PGS_ELIMIT, "field \"databases\" must list at most %d databases",
                        WIRE_DBS_MAX);
    size_t n = json_array_size(dbs);
    m->u.auth.dbs = calloc(n ? n : 1, sizeof(wire_db));
    if (m->u.auth.dbs == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *d = json_array_get(dbs, i);
        wire_db *w = &m->u.auth.dbs[i];
        if (!json_is_object(d))
            return pgs_fail(e, PGS_EFORMAT, "database %zu is not an object", i);
        if ((rc = jsonu_only_keys(d, dbkeys, e)) || (rc = get_name(d, "name", w->name, e)) ||
            (rc = jsonu_get_str(d, "environment", w->environment, sizeof(w->environment), e)) ||
            (rc = get_printable(d, "server_version", w->server_version, sizeof(w->server_version),
                                e)))
            return pgs_wrap(e, "database %zu", i);
        if (!env_valid(w->environment))
            return pgs_fail(e, PGS_EFORMAT, "database %zu: field \"environment\" is not valid",
                            i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(m->u.auth.dbs[j].name, w->name) == 0)
                return pgs_fail(e, PGS_EFORMAT, "database %s is listed twice", w->name);
        m->u.auth.ndbs = i + 1;
    }
    if ((rc = get_str_list(o, "restore_keys", WIRE_RECIPIENTS_MAX, WIRE_PUBKEY_TEXT_MAX + 1,
                           &m->u.auth.restore_keys, &m->u.auth.nrestore_keys, e)))
        return rc;
    return pubkeys_check(m->u.auth.restore_keys, m->u.auth.nrestore_keys, 0, "restore_keys", e);
}

static int decode_restore_spec(json_t *o, wire_restore_spec *r, pgs_error *e)
{
    static const char *const k[] = {"source",    "source_bytes", "profile",    "sanitize_sql",
                                    "check_sql", "jobs",         "schema_only", "data_only",
                                    "no_owner",  "keep_old",     "role",       "schemas",
                                    "tables",    "output",       "recipients", "restore_test",
                                    "scratch",   NULL};
    uint64_t jobs = 0;
    int rc;
    if (!json_is_object(o))
        return pgs_fail(e, PGS_EFORMAT, "field \"restore\" is not an object");
    if ((rc = jsonu_only_keys(o, k, e)) ||
        (rc = jsonu_get_str(o, "source", r->source, sizeof(r->source), e)) ||
        (rc = jsonu_get_uint(o, "source_bytes", INT64_MAX, &r->source_bytes, e)) ||
        (rc = jsonu_get_str(o, "profile", r->profile, sizeof(r->profile), e)) ||
        (rc = get_opt_text(o, "sanitize_sql", WIRE_SQL_MAX, &r->sanitize_sql, e)) ||
        (rc = get_opt_text(o, "check_sql", WIRE_SQL_MAX, &r->check_sql, e)) ||
        (rc = jsonu_get_uint(o, "jobs", WIRE_RESTORE_JOBS_MAX, &jobs, e)) ||
        (rc = get_bool(o, "schema_only", &r->schema_only, e)) ||
        (rc = get_bool(o, "data_only", &r->data_only, e)) ||
        (rc = get_bool(o, "no_owner", &r->no_owner, e)) ||
        (rc = get_bool(o, "keep_old", &r->keep_old, e)) ||
        (rc = jsonu_get_str(o, "role", r->role, sizeof(r->role), e)) ||
        (rc = get_str_list(o, "schemas", WIRE_PATTERNS_MAX, WIRE_PATTERN_MAX + 1, &r->schemas,
                           &r->nschemas, e)) ||
        (rc = get_str_list(o, "tables", WIRE_PATTERNS_MAX, WIRE_PATTERN_MAX + 1, &r->tables,
                           &r->ntables, e)) ||
        (rc = jsonu_get_str(o, "output", r->output, sizeof(r->output), e)) ||
        (rc = get_str_list(o, "recipients", WIRE_RECIPIENTS_MAX, WIRE_PUBKEY_TEXT_MAX + 1,
                           &r->recipients, &r->nrecipients, e)) ||
        (rc = get_bool(o, "restore_test", &r->restore_test, e)) ||
        (rc = jsonu_get_str(o, "scratch", r->scratch, sizeof(r->scratch), e)))
        return pgs_wrap(e, "field \"restore\"");
    r->jobs = (uint32_t)jobs;
    return 0;
}

static int decode_job(json_t *o, wire_msg *m, pgs_error *e)
{
    static const char *const k[] = {"job", "kind", "database", "label", "restore", NULL};
    int rc;
    if ((rc = jsonu_only_keys(o, k, e)) || (rc = get_job(o, m->u.job.job, e)) ||
        (rc = jsonu_get_str(o, "kind", m->u.job.kind, sizeof(m->u.job.kind), e)) ||
        (rc = get_name(o, "database", m->u.job.database, e)) ||
        (rc = get_printable(o, "label", m->u.job.label, sizeof(m->u.job.label), e)))
        return rc;
    json_t *spec = json_object_get(o, "restore");
    if (spec != NULL) {
        if ((m->u.job.restore = calloc(1, sizeof(wire_restore_spec))) == NULL)
            return pgs_fail(e, PGS_ENOMEM, "out of memory");
        if ((rc = decode_restore_spec(spec, m->u.job.restore, e)))
            return rc;
    }
    if ((rc = job_kind_check(m->u.job.kind, m->u.job.restore, e)))
        return rc;
    if (m->u.job.restore != NULL && m->u.job.label[0] != '\0')
        return pgs_fail(e, PGS_EFORMAT, "field \"label\" is for backup jobs only (\"\" here)");
    return 0;
}

static int decode_control(json_t *o, wire_msg *m, pgs_error *e)
{
    int rc = 0;
    switch (m->type) {
    case WIRE_HELLO: {
        static const char *const k[] = {"agent", "version", "key_id", NULL};
        uint8_t id[KEY_ID_LEN];
        if ((rc = jsonu_only_keys(o, k, e)) || (rc = get_name(o, "agent", m->u.hello.agent, e)) ||
            (rc = get_printable(o, "version", m->u.hello.version, sizeof(m->u.hello.version), e)) ||
            (rc = get_hex(o, "key_id", id, KEY_ID_LEN, e)))
            return rc;
        hex_encode(id, KEY_ID_LEN, m->u.hello.key_id);
        return 0;
    }
    case WIRE_CHALLENGE: {
        static const char *const k[] = {"nonce", "version", NULL};
        if ((rc = jsonu_only_keys(o, k, e)) ||
            (rc = get_hex(o, "nonce", m->u.challenge.nonce, WIRE_NONCE_LEN, e)))
            return rc;
        return get_printable(o, "version", m->u.challenge.version,
                             sizeof(m->u.challenge.version), e);
    }
    case WIRE_AUTH:
        return decode_auth(o, m, e);
    case WIRE_POLL:
    case WIRE_IDLE: {
        static const char *const k[] = {NULL};
        return jsonu_only_keys(o, k, e);
    }
    case WIRE_WELCOME: {
        static const char *const k[] = {"heartbeat_ms", "window", "data_max", NULL};
        if ((rc = jsonu_only_keys(o, k, e)) ||
            (rc = get_u32_range(o, "heartbeat_ms", 100, 600000, &m->u.welcome.heartbeat_ms, e)) ||
            (rc = get_u32_range(o, "window", 1, 64, &m->u.welcome.window, e)))
            return rc;
        return get_u32_range(o, "data_max", 4096, WIRE_DATA_MAX, &m->u.welcome.data_max, e);
    }
    case WIRE_JOB:
        return decode_job(o, m, e);
    case WIRE_ACK: {
        static const char *const k[] = {"job", "seq", NULL};
        if ((rc = jsonu_only_keys(o, k, e)) || (rc = get_job(o, m->u.ack.job, e)))
            return rc;
        return jsonu_get_uint(o, "seq", INT64_MAX, &m->u.ack.seq, e);
    }
    case WIRE_END: {
        static const char *const k[] = {"job", "chunks", "bytes", "sha256", "manifest", NULL};
        if ((rc = jsonu_only_keys(o, k, e)) || (rc = get_job(o, m->u.end.job, e)) ||
            (rc = jsonu_get_uint(o, "chunks", INT64_MAX, &m->u.end.chunks, e)) ||
            (rc = jsonu_get_uint(o, "bytes", INT64_MAX, &m->u.end.bytes, e)) ||
            (rc = get_hex(o, "sha256", m->u.end.sha256, SHA256_LEN, e)))
            return rc;
        json_t *man = json_object_get(o, "manifest");
        if (!json_is_object(man))
            return pgs_fail(e, PGS_EFORMAT, "field \"manifest\" is missing or not an object");
        m->u.end.manifest = json_incref(man);
        return 0;
    }
    case WIRE_FAIL: {
        static const char *const k[] = {"job", "error", NULL};
        if ((rc = jsonu_only_keys(o, k, e)) || (rc = get_job(o, m->u.fail.job, e)))
            return rc;
        return get_text(o, "error", m->u.fail.error, sizeof(m->u.fail.error), e);
    }
    case WIRE_RESULT: {
        static const char *const k[] = {"job", "state", "error", "storage_key", NULL};
        char state[16];
        if ((rc = jsonu_only_keys(o, k, e)) || (rc = get_job(o, m->u.result.job, e)) ||
            (rc = jsonu_get_str(o, "state", state, sizeof(state), e)) ||
            (rc = get_text(o, "error", m->u.result.error, sizeof(m->u.result.error), e)) ||
            (rc = get_printable(o, "storage_key", m->u.result.storage_key,
                                sizeof(m->u.result.storage_key), e)))
            return rc;
        if (strcmp(state, "complete") != 0 && strcmp(state, "failed") != 0)
            return pgs_fail(e, PGS_EFORMAT, "field \"state\" is not complete or failed");
        m->u.result.complete = strcmp(state, "complete") == 0;
        return 0;
    }
    case WIRE_ERROR: {
        static const char *const k[] = {"code", "message", NULL};
        if ((rc = jsonu_only_keys(o, k, e)) ||
            (rc = get_printable(o, "code", m->u.error.code, sizeof(m->u.error.code), e)))
            return rc;
        return get_text(o, "message", m->u.error.message, sizeof(m->u.error.message), e);
    }
    case WIRE_FETCH: {
        static const char *const k[] = {"job", "seq", NULL};
        if ((rc = jsonu_only_keys(o, k, e)) || (rc = get_job(o, m->u.fetch.job, e)))
            return rc;
        return jsonu_get_uint(o, "seq", INT64_MAX, &m->u.fetch.seq, e);
    }
    case WIRE_EOF: {
        static const char *const k[] = {"job", "pieces", "bytes", "sha256", NULL};
        if ((rc = jsonu_only_keys(o, k, e)) || (rc = get_job(o, m->u.eof.job, e)) ||
            (rc = jsonu_get_uint(o, "pieces", INT64_MAX, &m->u.eof.pieces, e)) ||
            (rc = jsonu_get_uint(o, "bytes", INT64_MAX, &m->u.eof.bytes, e)) ||
            (rc = get_hex(o, "sha256", m->u.eof.sha256, SHA256_LEN, e)))
            return rc;
        return eof_check(m->u.eof.pieces, m->u.eof.bytes, e);
    }
    case WIRE_STEP: {
        static const char *const k[] = {"job", "step", "detail", NULL};
        if ((rc = jsonu_only_keys(o, k, e)) || (rc = get_job(o, m->u.step.job, e)) ||
            (rc = get_checked(o, "step", m->u.step.step, sizeof(m->u.step.step), step_ok, e)))
            return rc;
        return get_text(o, "detail", m->u.step.detail, sizeof(m->u.step.detail), e);
    }
    case WIRE_REPORT: {
        static const char *const k[] = {"job", "ok", "step", "error", "report", NULL};
        if ((rc = jsonu_only_keys(o, k, e)) || (rc = get_job(o, m->u.report.job, e)) ||
            (rc = get_bool(o, "ok", &m->u.report.ok, e)) ||
            (rc = jsonu_get_str(o, "step", m->u.report.step, sizeof(m->u.report.step), e)) ||
            (rc = jsonu_get_str(o, "error", m->u.report.error, sizeof(m->u.report.error), e)) ||
            (rc = report_check(m->u.report.ok, m->u.report.step, m->u.report.error, e)))
            return rc;
        json_t *rep = json_object_get(o, "report");
        if (!json_is_object(rep))
            return pgs_fail(e, PGS_EFORMAT, "field \"report\" is missing or not an object");
        m->u.report.report = json_incref(rep);
        return 0;
    }
    case WIRE_DATA:
    case WIRE_PIECE:
        break;
    }
    return pgs_fail(e, PGS_EFORMAT, "not a control frame");
}

/* DATA and PIECE: the same binary layout. */
static int decode_binary(const uint8_t *b, size_t n, wire_msg *m, pgs_error *e)
{
    const char *what = wire_type_name(m->type);
    if (n < 1)
        return pgs_fail(e, PGS_ETRUNC, "%s frame has no body", what);
    size_t jl = b[0];
    if (jl != WIRE_JOB_ID_LEN)
        return pgs_fail(e, PGS_EFORMAT, "%s frame: job id length %zu is not %d", what, jl,
                        WIRE_JOB_ID_LEN);
    if (n < WIRE_BIN_FIXED)
        return pgs_fail(e, PGS_ETRUNC, "%s frame is shorter than its fixed part", what);
    memcpy(m->u.data.job, b + 1, jl);
    m->u.data.job[jl] = '\0';
    if (memchr(m->u.data.job, '\0', jl) != NULL || !wire_job_id_valid(m->u.data.job))
        return pgs_fail(e, PGS_EFORMAT, "%s frame: job id is not valid", what);
    m->u.data.seq = get_u64(b + 1 + jl);
    if (m->u.data.seq > INT64_MAX)
        return pgs_fail(e, PGS_ELIMIT, "%s frame: seq is out of range", what);
    m->u.data.payload = b + WIRE_BIN_FIXED;
    m->u.data.len = n - WIRE_BIN_FIXED;
    if (m->u.data.len == 0)
        return pgs_fail(e, PGS_EFORMAT, "%s frame has no payload", what);
    return 0;
}

int wire_decode(const void *buf, size_t len, wire_msg *m, pgs_error *e)
{
    memset(m, 0, sizeof(*m));
    const uint8_t *p = buf;
    if (len < WIRE_HEADER_LEN)
        return pgs_fail(e, PGS_ETRUNC, "frame of %zu bytes is shorter than its header", len);
    if (p[0] != (uint8_t)WIRE_MAGIC[0] || p[1] != (uint8_t)WIRE_MAGIC[1])
        return pgs_fail(e, PGS_EFORMAT, "not a pgship frame (bad magic)");
    /* Version 1 had no restore and version 2 no verify; an older peer would misread a newer
     * JOB, so nothing mixes. */
    if (p[2] >= 1 && p[2] < WIRE_VERSION)
        return pgs_fail(e, PGS_EVERSION,
                        "the peer speaks wire protocol %u and this side speaks %d: upgrade the "
                        "coordinator and its agents together",
                        p[2], WIRE_VERSION);
    if (p[2] != WIRE_VERSION)
        return pgs_fail(e, PGS_EVERSION, "wire protocol version %u is not supported (this is %d)",
                        p[2], WIRE_VERSION);
    wire_type t = (wire_type)p[3];
    if (wire_type_name(t) == NULL)
        return pgs_fail(e, PGS_EFORMAT, "unknown frame type %u", p[3]);
    uint32_t blen = (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 | (uint32_t)p[6] << 8 | p[7];
    if (blen > body_max(t))
        return pgs_fail(e, PGS_ELIMIT, "%s frame body of %u bytes exceeds %zu", wire_type_name(t),
                        blen, body_max(t));
    if ((size_t)blen != len - WIRE_HEADER_LEN)
        return pgs_fail(e, len - WIRE_HEADER_LEN < blen ? PGS_ETRUNC : PGS_ETRAIL,
                        "%s frame says %u body bytes but carries %zu", wire_type_name(t), blen,
                        len - WIRE_HEADER_LEN);
    m->type = t;
    int rc;
    if (is_binary(t)) {
        rc = decode_binary(p + WIRE_HEADER_LEN, blen, m, e);
    } else {
        json_t *o = jsonu_load_object(p + WIRE_HEADER_LEN, blen, body_max(t), wire_type_name(t), e);
        if (o == NULL)
            return e ? e->code : PGS_EFORMAT;
        rc = decode_control(o, m, e);
        json_decref(o);
        if (rc != 0)
            pgs_wrap(e, "%s frame", wire_type_name(t));
    }
    if (rc != 0)
        wire_msg_clear(m);
    return rc;
}

void wire_restore_spec_free(wire_restore_spec *r)
{
    if (r == NULL)
        return;
    free(r->sanitize_sql);
    free(r->check_sql);
    free(r->schemas);
    free(r->tables);
    free(r->recipients);
    free(r);
}

void wire_msg_clear(wire_msg *m)
{
    switch (m->type) {
    case WIRE_AUTH:
        free(m->u.auth.dbs);
        free(m->u.auth.restore_keys);
        break;
    case WIRE_JOB: wire_restore_spec_free(m->u.job.restore); break;
    case WIRE_END: json_decref(m->u.end.manifest); break;
    case WIRE_REPORT: json_decref(m->u.report.report); break;
    default: break;
    }
    memset(m, 0, sizeof(*m));
}

/* ---- encode ---- */

/* DATA and PIECE share one layout, so they share one writer. */
static size_t binary_header(uint8_t *hdr, wire_type t, const char *job, uint64_t seq,
                            size_t payload_len)
{
    put_header(hdr, t, WIRE_BIN_FIXED + payload_len);
    hdr[WIRE_HEADER_LEN] = WIRE_JOB_ID_LEN;
    memcpy(hdr + WIRE_HEADER_LEN + 1, job, WIRE_JOB_ID_LEN);
    put_u64(hdr + WIRE_HEADER_LEN + 1 + WIRE_JOB_ID_LEN, seq);
    return WIRE_DATA_HDR_MAX;
}

size_t wire_data_header(uint8_t *hdr, const char *job, uint64_t seq, size_t payload_len)
{
    return binary_header(hdr, WIRE_DATA, job, seq, payload_len);
}

size_t wire_piece_header(uint8_t *hdr, const char *job, uint64_t seq, size_t payload_len)
{
    return binary_header(hdr, WIRE_PIECE, job, seq, payload_len);
}

static int set_hex(json_t *o, const char *key, const uint8_t *b, size_t n)
{
    char hex[2 * 64 + 1];
    hex_encode(b, n, hex);
    return json_object_set_new(o, key, json_string(hex));
}

/* An array of n strings of stride bytes each, starting at base. */
static int set_str_list(json_t *o, const char *key, const void *base, size_t stride, size_t n,
                        pgs_error *e)
{
    json_t *a = json_array();
    if (a == NULL || json_object_set_new(o, key, a) != 0)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_string((const char *)base + i * stride);
        if (v == NULL)
            return pgs_fail(e, PGS_EINVAL, "field \"%s\": entry %zu is not valid UTF-8", key, i);
        json_array_append_new(a, v);
    }
    return 0;
}

static int set_opt_str(json_t *o, const char *key, const char *val, pgs_error *e)
{
    if (val == NULL)
        return json_object_set_new(o, key, json_null()) == 0
                   ? 0
                   : pgs_fail(e, PGS_ENOMEM, "out of memory");
    return jsonu_set_str(o, key, val, e);
}

static int encode_restore_spec(const wire_restore_spec *r, json_t *o, pgs_error *e)
{
    int rc;
    typedef char pattern[WIRE_PATTERN_MAX + 1];
    typedef char pubkey[WIRE_PUBKEY_TEXT_MAX + 1];
    json_object_set_new(o, "source", json_string(r->source));
    json_object_set_new(o, "source_bytes", json_integer((json_int_t)r->source_bytes));
    if ((rc = jsonu_set_str(o, "profile", r->profile, e)) ||
        (rc = set_opt_str(o, "sanitize_sql", r->sanitize_sql, e)) ||
        (rc = set_opt_str(o, "check_sql", r->check_sql, e)))
        return rc;
    json_object_set_new(o, "jobs", json_integer(r->jobs));
    json_object_set_new(o, "schema_only", json_boolean(r->schema_only));
    json_object_set_new(o, "data_only", json_boolean(r->data_only));
    json_object_set_new(o, "no_owner", json_boolean(r->no_owner));
    json_object_set_new(o, "keep_old", json_boolean(r->keep_old));
    if ((rc = jsonu_set_str(o, "role", r->role, e)) ||
        (rc = set_str_list(o, "schemas", r->schemas, sizeof(pattern), r->nschemas, e)) ||
        (rc = set_str_list(o, "tables", r->tables, sizeof(pattern), r->ntables, e)) ||
        (rc = jsonu_set_str(o, "output", r->output, e)) ||
        (rc = set_str_list(o, "recipients", r->recipients, sizeof(pubkey), r->nrecipients, e)))
        return rc;
    json_object_set_new(o, "restore_test", json_boolean(r->restore_test));
    return jsonu_set_str(o, "scratch", r->scratch, e);
}

static int encode_body(const wire_msg *m, json_t *o, pgs_error *e)
{
    int rc = 0;
    switch (m->type) {
    case WIRE_HELLO:
        if ((rc = jsonu_set_str(o, "agent", m->u.hello.agent, e)) ||
            (rc = jsonu_set_str(o, "version", m->u.hello.version, e)) ||
            (rc = jsonu_set_str(o, "key_id", m->u.hello.key_id, e)))
            return rc;
        return 0;
    case WIRE_CHALLENGE:
        set_hex(o, "nonce", m->u.challenge.nonce, WIRE_NONCE_LEN);
        return jsonu_set_str(o, "version", m->u.challenge.version, e);
    case WIRE_AUTH: {
        if ((rc = pubkeys_check(m->u.auth.restore_keys, m->u.auth.nrestore_keys, 0,
                                "restore_keys", e)))
            return rc;
        set_hex(o, "signature", m->u.auth.signature, IDENTITY_SIG_LEN);
        json_t *a = json_array();
        json_object_set_new(o, "databases", a);
        for (size_t i = 0; i < m->u.auth.ndbs; i++) {
            json_t *d = json_object();
            json_array_append_new(a, d);
            const wire_db *w = &m->u.auth.dbs[i];
            if ((rc = jsonu_set_str(d, "name", w->name, e)) ||
                (rc = jsonu_set_str(d, "environment", w->environment, e)) ||
                (rc = jsonu_set_str(d, "server_version", w->server_version, e)))
                return rc;
        }
        return set_str_list(o, "restore_keys", m->u.auth.restore_keys, WIRE_PUBKEY_TEXT_MAX + 1,
                            m->u.auth.nrestore_keys, e);
    }
    case WIRE_POLL:
    case WIRE_IDLE:
        return 0;
    case WIRE_WELCOME:
        json_object_set_new(o, "heartbeat_ms", json_integer(m->u.welcome.heartbeat_ms));
        json_object_set_new(o, "window", json_integer(m->u.welcome.window));
        json_object_set_new(o, "data_max", json_integer(m->u.welcome.data_max));
        return 0;
    case WIRE_JOB:
        if ((rc = job_kind_check(m->u.job.kind, m->u.job.restore, e)))
            return rc;
        if (m->u.job.restore != NULL && m->u.job.label[0] != '\0')
            return pgs_fail(e, PGS_EINVAL, "field \"label\" is for backup jobs only");
        if ((rc = jsonu_set_str(o, "job", m->u.job.job, e)) ||
            (rc = jsonu_set_str(o, "kind", m->u.job.kind, e)) ||
            (rc = jsonu_set_str(o, "database", m->u.job.database, e)) ||
            (rc = jsonu_set_str(o, "label", m->u.job.label, e)))
            return rc;
        if (m->u.job.restore != NULL) {
            json_t *r = json_object();
            if (r == NULL || json_object_set_new(o, "restore", r) != 0)
                return pgs_fail(e, PGS_ENOMEM, "out of memory");
            if ((rc = encode_restore_spec(m->u.job.restore, r, e)))
                return pgs_wrap(e, "field \"restore\"");
        }
        return 0;
    case WIRE_ACK:
        json_object_set_new(o, "job", json_string(m->u.ack.job));
        json_object_set_new(o, "seq", json_integer((json_int_t)m->u.ack.seq));
        return 0;
    case WIRE_END:
        json_object_set_new(o, "job", json_string(m->u.end.job));
        json_object_set_new(o, "chunks", json_integer((json_int_t)m->u.end.chunks));
        json_object_set_new(o, "bytes", json_integer((json_int_t)m->u.end.bytes));
        set_hex(o, "sha256", m->u.end.sha256, SHA256_LEN);
        json_object_set_new(o, "manifest",
                            m->u.end.manifest ? json_incref(m->u.end.manifest) : json_object());
        return 0;
    case WIRE_FAIL:
        json_object_set_new(o, "job", json_string(m->u.fail.job));
        return jsonu_set_str(o, "error", m->u.fail.error, e);
    case WIRE_RESULT:
        json_object_set_new(o, "job", json_string(m->u.result.job));
        json_object_set_new(o, "state", json_string(m->u.result.complete ? "complete" : "failed"));
        if ((rc = jsonu_set_str(o, "error", m->u.result.error, e)) ||
            (rc = jsonu_set_str(o, "storage_key", m->u.result.storage_key, e)))
            return rc;
        return 0;
    case WIRE_ERROR:
        if ((rc = jsonu_set_str(o, "code", m->u.error.code, e)) ||
            (rc = jsonu_set_str(o, "message", m->u.error.message, e)))
            return rc;
        return 0;
    case WIRE_FETCH:
        json_object_set_new(o, "job", json_string(m->u.fetch.job));
        json_object_set_new(o, "seq", json_integer((json_int_t)m->u.fetch.seq));
        return 0;
    case WIRE_EOF:
        if ((rc = eof_check(m->u.eof.pieces, m->u.eof.bytes, e)))
            return rc;
        json_object_set_new(o, "job", json_string(m->u.eof.job));
        json_object_set_new(o, "pieces", json_integer((json_int_t)m->u.eof.pieces));
        json_object_set_new(o, "bytes", json_integer((json_int_t)m->u.eof.bytes));
        set_hex(o, "sha256", m->u.eof.sha256, SHA256_LEN);
        return 0;
    case WIRE_STEP:
        FIELD_CHECK(step_ok(m->u.step.step), "step");
        json_object_set_new(o, "job", json_string(m->u.step.job));
        json_object_set_new(o, "step", json_string(m->u.step.step));
        return jsonu_set_str(o, "detail", m->u.step.detail, e);
    case WIRE_REPORT:
        if ((rc = report_check(m->u.report.ok, m->u.report.step, m->u.report.error, e)))
            return rc;
        if (m->u.report.report != NULL && !json_is_object(m->u.report.report))
            return pgs_fail(e, PGS_EINVAL, "field \"report\" is not an object");
        json_object_set_new(o, "job", json_string(m->u.report.job));
        json_object_set_new(o, "ok", json_boolean(m->u.report.ok));
        json_object_set_new(o, "step", json_string(m->u.report.step));
        if ((rc = jsonu_set_str(o, "error", m->u.report.error, e)))
            return rc;
        json_object_set_new(o, "report", m->u.report.report ? json_incref(m->u.report.report)
                                                            : json_object());
        return 0;
    case WIRE_DATA:
    case WIRE_PIECE:
        break;
    }
    return pgs_fail(e, PGS_EINVAL, "cannot encode frame type %d", (int)m->type);
}

int wire_encode(const wire_msg *m, uint8_t **out, size_t *len, pgs_error *e)
{
    *out = NULL;
    *len = 0;
    if (is_binary(m->type)) {
        if (m->u.data.len == 0 || m->u.data.len > WIRE_DATA_MAX ||
            !wire_job_id_valid(m->u.data.job))
            return pgs_fail(e, PGS_EINVAL, "%s frame: bad job id or payload size",
                            wire_type_name(m->type));
        uint8_t *f = malloc(WIRE_DATA_HDR_MAX + m->u.data.len);
        if (f == NULL)
            return pgs_fail(e, PGS_ENOMEM, "out of memory");
        size_t h = binary_header(f, m->type, m->u.data.job, m->u.data.seq, m->u.data.len);
        memcpy(f + h, m->u.data.payload, m->u.data.len);
        *out = f;
        *len = h + m->u.data.len;
        return 0;
    }
    if (wire_type_name(m->type) == NULL)
        return pgs_fail(e, PGS_EINVAL, "cannot encode frame type %d", (int)m->type);
    json_t *o = json_object();
    if (o == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    int rc = encode_body(m, o, e);
    char *text = NULL;
    if (rc == 0 && (text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL)
        rc = pgs_fail(e, PGS_ENOMEM, "cannot encode JSON");
    json_decref(o);
    if (rc != 0)
        return pgs_wrap(e, "%s frame", wire_type_name(m->type));
    size_t blen = strlen(text);
    if (blen > body_max(m->type)) {
        free(text);
        return pgs_fail(e, PGS_ELIMIT, "%s frame body of %zu bytes exceeds %zu",
                        wire_type_name(m->type), blen, body_max(m->type));
    }
    uint8_t *f = malloc(WIRE_HEADER_LEN + blen);
    if (f == NULL) {
        free(text);
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    }
    put_header(f, m->type, blen);
    memcpy(f + WIRE_HEADER_LEN, text, blen);
    free(text);
    *out = f;
    *len = WIRE_HEADER_LEN + blen;
    return 0;
}

size_t wire_auth_message(const uint8_t nonce[WIRE_NONCE_LEN], const char *agent,
                         const uint8_t key_id[KEY_ID_LEN], uint8_t *out)
{
    static const char tag[] = "pgship-auth-v1";
    size_t n = 0, al = strnlen(agent, WIRE_NAME_MAX);
    memcpy(out + n, tag, sizeof(tag)); /* with its NUL: the tag cannot run into the nonce */
    n += sizeof(tag);
    memcpy(out + n, nonce, WIRE_NONCE_LEN);
    n += WIRE_NONCE_LEN;
    out[n++] = (uint8_t)al;
    memcpy(out + n, agent, al);
    n += al;
    memcpy(out + n, key_id, KEY_ID_LEN);
    n += KEY_ID_LEN;
    return n;
}
