/* The catalog rebuilt from storage's objects and sidecars (see rebuild.h). */
#include "coordinator/rebuild.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "proto/jsonutil.h"

/* ---- the sidecar decoder ---- */

/* A string field of at most cap - 1 bytes without NUL inside. required: absent is an error;
 * otherwise absent or null leaves dst "" and sets *present 0. */
static int get_str(json_t *o, const char *key, char *dst, size_t cap, int required, pgs_error *e)
{
    json_t *v = json_object_get(o, key);
    dst[0] = '\0';
    if (!required && (v == NULL || json_is_null(v)))
        return 0;
    if (!json_is_string(v))
        return pgs_fail(e, PGS_EFORMAT, "field \"%s\" is missing or not a string", key);
    size_t n = json_string_length(v);
    if (n >= cap)
        return pgs_fail(e, PGS_ELIMIT, "field \"%s\" is longer than %zu bytes", key, cap - 1);
    const char *s = json_string_value(v);
    if (strlen(s) != n)
        return pgs_fail(e, PGS_EFORMAT, "field \"%s\" contains a NUL character", key);
    memcpy(dst, s, n + 1);
    return 0;
}

static int get_name(json_t *o, const char *key, char *dst, size_t cap, int required, pgs_error *e)
{
    int rc = get_str(o, key, dst, cap, required, e);
    if (rc == 0 && (required || dst[0] != '\0') && !catalog_name_valid(dst))
        rc = pgs_fail(e, PGS_EFORMAT, "field \"%s\" is not a valid name", key);
    return rc;
}

static int get_id(json_t *o, const char *key, char *dst, int required, pgs_error *e)
{
    int rc = get_str(o, key, dst, CATALOG_ID_SIZE, required, e);
    if (rc == 0 && (required || dst[0] != '\0') && !catalog_id_valid(dst))
        rc = pgs_fail(e, PGS_EFORMAT, "field \"%s\" is not a backup id", key);
    return rc;
}

/* An optional catalog time ("YYYY-MM-DDTHH:MM:SS.mmmZ"). */
static int get_catalog_time(json_t *o, const char *key, char dst[CATALOG_TIME_SIZE], pgs_error *e)
{
    int64_t ms;
    int rc = get_str(o, key, dst, CATALOG_TIME_SIZE, 0, e);
    if (rc == 0 && dst[0] != '\0' && catalog_time_parse(dst, &ms) != 0)
        rc = pgs_fail(e, PGS_EFORMAT, "field \"%s\" is not a time (YYYY-MM-DDTHH:MM:SS.mmmZ)", key);
    return rc;
}

/* RFC 3339 to the second in UTC, as manifest_time writes it ("2026-11-21T16:05:29Z"), into the
 * catalog's form; -1 when it is not that. */
static int seconds_to_catalog_time(const char *s, char out[CATALOG_TIME_SIZE])
{
    int64_t ms;
    if (strlen(s) != 20 || s[19] != 'Z')
        return -1;
    snprintf(out, CATALOG_TIME_SIZE, "%.19s.000Z", s);
    return catalog_time_parse(out, &ms) == 0 ? 0 : -1;
}

void rebuild_sidecar_clear(rebuild_sidecar *s)
{
    if (s != NULL)
        manifest_clear(&s->man);
}

int rebuild_sidecar_decode(const void *buf, size_t len, rebuild_sidecar *out, pgs_error *e)
{
    char stored[32], want[CATALOG_STORAGE_KEY_MAX + 1];
    uint64_t version = 0;
    int rc;
    memset(out, 0, sizeof(*out));
    json_t *root = jsonu_load_object(buf, len, REBUILD_SIDECAR_MAX, "sidecar", e);
    if (root == NULL)
        return e && e->code ? e->code : PGS_EFORMAT;
    if ((rc = jsonu_get_uint(root, "pgship_sidecar", 1000, &version, e)) != 0)
        goto out;
    if (version != REBUILD_SIDECAR_VERSION) {
        rc = pgs_fail(e, PGS_EVERSION, "sidecar version %llu is not supported (expected %d)",
                      (unsigned long long)version, REBUILD_SIDECAR_VERSION);
        goto out;
    }
    if ((rc = get_id(root, "backup_id", out->backup_id, 1, e)) ||
        (rc = get_name(root, "agent", out->agent, sizeof(out->agent), 1, e)) ||
        (rc = get_name(root, "database", out->database, sizeof(out->database), 1, e)) ||
        (rc = get_name(root, "environment", out->environment, sizeof(out->environment), 1, e)) ||
        (rc = get_str(root, "storage_key", out->storage_key, sizeof(out->storage_key), 1, e)) ||
        (rc = get_str(root, "sha256", out->sha256, sizeof(out->sha256), 1, e)) ||
        (rc = jsonu_get_uint(root, "bytes", INT64_MAX, &out->bytes, e)) ||
        (rc = get_str(root, "stored_at", stored, sizeof(stored), 1, e)))
        goto out;
    if (strlen(out->sha256) != CATALOG_SHA256_HEX_LEN ||
        strspn(out->sha256, "0123456789abcdef") != CATALOG_SHA256_HEX_LEN) {
        rc = pgs_fail(e, PGS_EFORMAT, "field \"sha256\" is not 64 lowercase hex digits");
        goto out;
    }
    if (out->bytes == 0) {
        rc = pgs_fail(e, PGS_EFORMAT, "field \"bytes\" is 0: a stored backup is never empty");
        goto out;
    }
    if (seconds_to_catalog_time(stored, out->stored_at) != 0) {
        rc = pgs_fail(e, PGS_EFORMAT, "field \"stored_at\" is not a time (YYYY-MM-DDTHH:MM:SSZ)");
        goto out;
    }
    /* The sidecar describes the object beside it, under the key ingest gives it. */
    snprintf(want, sizeof(want), "%s/%s/%s/%s.pgship", out->environment, out->agent, out->database,
             out->backup_id);
    if (strcmp(out->storage_key, want) != 0) {
        rc = pgs_fail(e, PGS_EFORMAT,
                      "field \"storage_key\" is not <environment>/<agent>/<database>/<backup_id>"
                      ".pgship");
        goto out;
    }
    /* The catalog's own fields, when this sidecar carries them. */
    uint64_t dump = 0;
    json_t *dj = json_object_get(root, "dump_bytes");
    if ((rc = get_catalog_time(root, "created_at", out->created_at, e)) ||
        (rc = get_catalog_time(root, "started_at", out->started_at, e)) ||
        (rc = get_catalog_time(root, "finished_at", out->finished_at, e)) ||
        (rc = get_str(root, "label", out->label, sizeof(out->label), 0, e)) ||
        (rc = get_str(root, "requested_by", out->requested_by, sizeof(out->requested_by), 0, e)) ||
        (rc = get_name(root, "scheduled", out->scheduled, sizeof(out->scheduled), 0, e)) ||
        (rc = get_id(root, "source_backup_id", out->source_backup_id, 0, e)) ||
        (dj != NULL && !json_is_null(dj) &&
         (rc = jsonu_get_uint(root, "dump_bytes", INT64_MAX, &dump, e))))
        goto out;
    out->dump_bytes = dump;
    if (strcmp(out->source_backup_id, out->backup_id) == 0) {
        rc = pgs_fail(e, PGS_EFORMAT, "field \"source_backup_id\" names the backup itself");
        goto out;
    }
    /* The archive's manifest, through the archive's own decoder. */
    json_t *man = json_object_get(root, "manifest");
    if (!json_is_object(man)) {
        rc = pgs_fail(e, PGS_EFORMAT, "field \"manifest\" is missing or not an object");
        goto out;
    }
    char *text = json_dumps(man, JSON_COMPACT);
    if (text == NULL) {
        rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
        goto out;
    }
    rc = manifest_decode(text, strlen(text), &out->man, e);
    free(text);
    if (rc != 0)
        pgs_wrap(e, "field \"manifest\"");
out:
    json_decref(root);
    if (rc != 0)
        rebuild_sidecar_clear(out);
    return rc;
}

/* ---- the listing ---- */

enum key_kind { KEY_OBJECT = 0, KEY_SIDECAR = 1, KEY_PIN = 2 }; /* the sort order of a stem */

/* A pgship key: "<environment>/<agent>/<database>/<id>" (its stem) and its kind. */
typedef struct rkey {
    char *key;
    size_t stem_len;
    enum key_kind kind;
    uint64_t size;
    char id[CATALOG_ID_SIZE];
    char env[CATALOG_NAME_MAX + 1], agent[CATALOG_NAME_MAX + 1], db[CATALOG_NAME_MAX + 1];
} rkey;

typedef struct listing {
    rkey *v;
    size_t n, cap;
    rebuild_counts *c;
    int oom;
} listing;

static int ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n > k && memcmp(s + n - k, suffix, k) == 0;
}

/* Splits key into its four parts; 0 when it is a pgship object or sidecar key. */
static int parse_key(const char *key, rkey *k)
{
    size_t n = strlen(key);
    const char *segs[4];
    size_t lens[4];
    int nseg = 0;
    const char *p = key;
    for (;;) {
        const char *slash = strchr(p, '/');
        size_t len = slash ? (size_t)(slash - p) : strlen(p);
        if (nseg == 4)
            return -1;
        segs[nseg] = p;
        lens[nseg++] = len;
        if (slash == NULL)
            break;
        p = slash + 1;
    }
    if (nseg != 4)
        return -1;
    size_t idlen;
    if (ends_with(segs[3], lens[3], ".pgship")) {
        k->kind = KEY_OBJECT;
        idlen = lens[3] - strlen(".pgship");
    } else if (ends_with(segs[3], lens[3], ".manifest.json")) {
        k->kind = KEY_SIDECAR;
        idlen = lens[3] - strlen(".manifest.json");
    } else if (ends_with(segs[3], lens[3], ".pin")) {
        k->kind = KEY_PIN;
        idlen = lens[3] - strlen(".pin");
    } else {
        return -1;
    }
    if (idlen != CATALOG_ID_LEN || lens[0] > CATALOG_NAME_MAX || lens[1] > CATALOG_NAME_MAX ||
        lens[2] > CATALOG_NAME_MAX)
        return -1;
    memcpy(k->id, segs[3], idlen);
    k->id[idlen] = '\0';
    snprintf(k->env, sizeof(k->env), "%.*s", (int)lens[0], segs[0]);
    snprintf(k->agent, sizeof(k->agent), "%.*s", (int)lens[1], segs[1]);
    snprintf(k->db, sizeof(k->db), "%.*s", (int)lens[2], segs[2]);
    if (!catalog_id_valid(k->id) || !catalog_name_valid(k->env) || !catalog_name_valid(k->agent) ||
        !catalog_name_valid(k->db))
        return -1;
    k->stem_len = (size_t)(segs[3] - key) + idlen;
    (void)n;
    return 0;
}

static int list_cb(void *arg, const char *key, uint64_t size)
{
    listing *l = arg;
    rkey k;
    memset(&k, 0, sizeof(k));
    if (parse_key(key, &k) != 0) {
        l->c->ignored++;
        log_debug("rebuild: %s is not a backup or a sidecar: ignored", key);
        return 0;
    }
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 64;
        if (l->n >= REBUILD_KEYS_MAX)
            return PGS_ELIMIT;
        rkey *p = realloc(l->v, ncap * sizeof(*p));
        if (p == NULL) {
            l->oom = 1;
            return PGS_ENOMEM;
        }
        l->v = p;
        l->cap = ncap;
    }
    if ((k.key = strdup(key)) == NULL) {
        l->oom = 1;
        return PGS_ENOMEM;
    }
    k.size = size;
    if (k.kind == KEY_OBJECT)
        l->c->objects++;
    else if (k.kind == KEY_SIDECAR)
        l->c->sidecars++;
    l->v[l->n++] = k;
    return 0;
}

/* By stem, the object before its sidecar. */
static int cmp_rkey(const void *pa, const void *pb)
{
    const rkey *a = pa, *b = pb;
    size_t n = a->stem_len < b->stem_len ? a->stem_len : b->stem_len;
    int c = memcmp(a->key, b->key, n);
    if (c != 0)
        return c;
    if (a->stem_len != b->stem_len)
        return a->stem_len < b->stem_len ? -1 : 1;
    return (int)a->kind - (int)b->kind;
}

static int same_stem(const rkey *a, const rkey *b)
{
    return a->stem_len == b->stem_len && memcmp(a->key, b->key, a->stem_len) == 0;
}

/* ---- problems ---- */

static void problem(rebuild_counts *c, const char *key, const char *fmt, const char *detail)
{
    char why[256];
    snprintf(why, sizeof(why), fmt, detail);
    /* Sidecars are untrusted and parsers quote them: only printable ASCII reaches logs. */
    for (char *p = why; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            *p = '?';
    log_warn("rebuild: %s: %s", key, why);
    if (c->nproblems >= REBUILD_PROBLEMS_MAX)
        return;
    /* Grown by doubling up to the limit; out of memory, it is still counted and logged. */
    size_t n = c->nproblems;
    if ((n & (n - 1)) == 0) {
        size_t ncap = n ? n * 2 : 16;
        if (ncap > REBUILD_PROBLEMS_MAX)
            ncap = REBUILD_PROBLEMS_MAX;
        rebuild_problem *np = realloc(c->problems, ncap * sizeof(*np));
        if (np == NULL)
            return;
        c->problems = np;
    }
    rebuild_problem *p = &c->problems[c->nproblems++];
    snprintf(p->key, sizeof(p->key), "%s", key);
    snprintf(p->why, sizeof(p->why), "%s", why);
}

void rebuild_counts_clear(rebuild_counts *c)
{
    if (c == NULL)
        return;
    free(c->problems);
    c->problems = NULL;
    c->nproblems = 0;
}

/* ---- reading and importing ---- */

typedef struct bounded {
    char *buf;
    size_t len, cap;
} bounded;

static int bounded_sink(void *arg, const void *buf, size_t len)
{
    bounded *b = arg;
    if (len > b->cap - b->len)
        return PGS_ELIMIT;
    memcpy(b->buf + b->len, buf, len);
    b->len += len;
    return 0;
}

/* Reads and checks the sidecar of a pair: 0 when it describes the object beside it, otherwise a
 * code with e saying why (PGS_EIO and PGS_ENOMEM are storage's or memory's failures, not this
 * backup's). */
static int read_sidecar(storage *st, bounded *b, const rkey *obj, const rkey *side,
                        rebuild_sidecar *sc, pgs_error *e)
{
    if (side->size > REBUILD_SIDECAR_MAX)
        return pgs_fail(e, PGS_ELIMIT, "sidecar is larger than %u bytes", REBUILD_SIDECAR_MAX);
    b->len = 0;
    int rc = storage_get(st, side->key, bounded_sink, b, e);
    if (rc == PGS_ELIMIT)
        return pgs_fail(e, PGS_ELIMIT, "sidecar is larger than %u bytes", REBUILD_SIDECAR_MAX);
    if (rc != 0)
        return rc;
    if ((rc = rebuild_sidecar_decode(b->buf, b->len, sc, e)) != 0)
        return rc;
    if (strcmp(sc->backup_id, obj->id) != 0 || strcmp(sc->agent, obj->agent) != 0 ||
        strcmp(sc->database, obj->db) != 0 || strcmp(sc->environment, obj->env) != 0 ||
        strcmp(sc->storage_key, obj->key) != 0) {
        rebuild_sidecar_clear(sc);
        return pgs_fail(e, PGS_EFORMAT, "sidecar describes another object (%s)", sc->storage_key);
    }
    if (sc->bytes != obj->size) {
        char msg[96];
        snprintf(msg, sizeof(msg), "sidecar says %llu bytes, storage holds %llu",
                 (unsigned long long)sc->bytes, (unsigned long long)obj->size);
        rebuild_sidecar_clear(sc);
        return pgs_fail(e, PGS_ESUM, "%s", msg);
    }
    return 0;
}

/* created_at from the id (the catalog stamps both from one clock reading, to the second). */
static int created_from_id(const char *id, char out[CATALOG_TIME_SIZE])
{
    int64_t ms;
    snprintf(out, CATALOG_TIME_SIZE, "%.4s-%.2s-%.2sT%.2s:%.2s:%.2s.000Z", id, id + 4, id + 6,
             id + 9, id + 11, id + 13);
    return catalog_time_parse(out, &ms);
}

/* One import: the sidecar's fields, or the closest the older sidecar gives. */
static int import_one(catalog *cat, const rebuild_sidecar *sc, pgs_error *e)
{
    char created[CATALOG_TIME_SIZE], started[CATALOG_TIME_SIZE], finished[CATALOG_TIME_SIZE];
    const char *rcpts[ENVELOPE_RECIPIENTS_MAX];
    if (sc->created_at[0])
        snprintf(created, sizeof(created), "%s", sc->created_at);
    else if (created_from_id(sc->backup_id, created) != 0)
        return pgs_fail(e, PGS_EFORMAT, "backup id %s does not hold a valid date", sc->backup_id);
    /* Without the catalog's own: the dump's start as the agent's clock saw it. */
    if (sc->started_at[0])
        snprintf(started, sizeof(started), "%s", sc->started_at);
    else if (seconds_to_catalog_time(sc->man.started_at, started) != 0)
        snprintf(started, sizeof(started), "%s", created);
    snprintf(finished, sizeof(finished), "%s",
             sc->finished_at[0] ? sc->finished_at : sc->stored_at);
    for (size_t i = 0; i < sc->man.nrecipients; i++)
        rcpts[i] = sc->man.recipients[i].key_id;
    catalog_backup_import_req r = {.id = sc->backup_id,
                                   .agent = sc->agent,
                                   .database = sc->database,
                                   .environment = sc->environment,
                                   .label = sc->label,
                                   .requested_by = sc->requested_by,
                                   .scheduled = sc->scheduled,
                                   .source_backup_id = sc->source_backup_id,
                                   .created_at = created,
                                   .started_at = started,
                                   .finished_at = finished,
                                   .bytes = sc->bytes,
                                   .dump_bytes = sc->dump_bytes,
                                   .sha256 = sc->sha256,
                                   .storage_key = sc->storage_key,
                                   .server_version = sc->man.server_version,
                                   .pg_dump_version = sc->man.pg_dump_version,
                                   .recipients = rcpts,
                                   .nrecipients = sc->man.nrecipients};
    return catalog_backup_import(cat, &r, e);
}

/* Sidecars whose source backup was not in the catalog when they came: kept for another pass
 * (derived copies only, so few). */
typedef struct deferred {
    rebuild_sidecar *v;
    char (*keys)[STORAGE_KEY_MAX + 1];
    size_t n, cap;
} deferred;

static int defer(deferred *d, rebuild_sidecar *sc, const char *key)
{
    if (d->n == d->cap) {
        size_t ncap = d->cap ? d->cap * 2 : 8;
        rebuild_sidecar *v = realloc(d->v, ncap * sizeof(*v));
        if (v != NULL)
            d->v = v;
        char(*k)[STORAGE_KEY_MAX + 1] = realloc(d->keys, ncap * sizeof(*k));
        if (k != NULL)
            d->keys = k;
        if (v == NULL || k == NULL)
            return PGS_ENOMEM;
        d->cap = ncap;
    }
    d->v[d->n] = *sc; /* takes the manifest's options */
    memset(sc, 0, sizeof(*sc));
    snprintf(d->keys[d->n], sizeof(d->keys[d->n]), "%s", key);
    d->n++;
    return 0;
}

/* Imports sc (found at key); counts the outcome. *later is set when its source is not in the
 * catalog yet. Returns non-zero only for a failure of the catalog itself. */
static int import_counted(catalog *cat, const rebuild_sidecar *sc, const char *key,
                          rebuild_counts *c, int *later, pgs_error *e)
{
    pgs_error ie = {0};
    int r = import_one(cat, sc, &ie);
    *later = 0;
    if (r == 0) {
        c->imported++;
    } else if (r == PGS_EEXIST) {
        c->existing++;
    } else if (r == PGS_ENOTFOUND) {
        *later = 1;
    } else if (r == PGS_EINVAL || r == PGS_ELIMIT || r == PGS_EFORMAT) {
        c->bad++;
        problem(c, key, "not imported: %s", ie.msg);
    } else {
        *e = ie;
        return pgs_wrap(e, "rebuild: importing %s", key);
    }
    return 0;
}

int rebuild_catalog(storage *st, const char *prefix, catalog *fresh, rebuild_counts *out,
                    pgs_error *e)
{
    listing l = {0};
    deferred d = {0};
    bounded b = {0};
    rebuild_sidecar *sc = NULL;
    int rc, later;
    memset(out, 0, sizeof(*out));
    l.c = out;
    if (st == NULL || fresh == NULL)
        return pgs_fail(e, PGS_EINVAL, "rebuild: no storage or no catalog");
    if (prefix == NULL)
        prefix = "";
    if ((rc = storage_list(st, prefix, list_cb, &l, e)) != 0) {
        if (l.oom)
            rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
        else if (rc == PGS_ELIMIT)
            rc = pgs_fail(e, PGS_ELIMIT, "more than %u backup keys under \"%s\"", REBUILD_KEYS_MAX,
                          prefix);
        else
            pgs_wrap(e, "rebuild: listing storage");
        goto out;
    }
    /* Key order (S3 lists in it, the fs backend does not): pairs are neighbours, and within an
     * environment, agent and database, ids are in time order. */
    qsort(l.v, l.n, sizeof(*l.v), cmp_rkey);
    if ((sc = calloc(1, sizeof(*sc))) == NULL || (b.buf = malloc(REBUILD_SIDECAR_MAX)) == NULL) {
        rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
        goto out;
    }
    b.cap = REBUILD_SIDECAR_MAX;

    for (size_t i = 0; i < l.n;) {
        const rkey *k = &l.v[i];
        if (k->kind == KEY_PIN) { /* after the imports, below */
            i++;
            continue;
        }
        if (k->kind == KEY_SIDECAR) {
            out->orphan_sidecars++;
            problem(out, k->key, "%s", "sidecar without an object: not imported");
            i++;
            continue;
        }
        if (i + 1 >= l.n || !same_stem(k, &l.v[i + 1]) || l.v[i + 1].kind != KEY_SIDECAR) {
            out->orphan_objects++;
            problem(out, k->key, "%s", "object without a sidecar: not imported");
            i++;
            continue;
        }
        const rkey *side = &l.v[i + 1];
        i += 2;
        pgs_error pe = {0};
        int r = read_sidecar(st, &b, k, side, sc, &pe);
        if (r == PGS_EIO || r == PGS_ENOMEM) {
            *e = pe;
            rc = pgs_wrap(e, "rebuild: reading %s", side->key);
            goto out;
        }
        if (r != 0) {
            out->bad++;
            problem(out, side->key, "bad sidecar: %s", pe.msg);
            continue;
        }
        rc = import_counted(fresh, sc, side->key, out, &later, e);
        if (rc == 0 && later && defer(&d, sc, side->key) != 0)
            rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
        rebuild_sidecar_clear(sc);
        if (rc != 0)
            goto out;
    }

    /* Derived copies listed before their sources (another environment's directory may sort
     * first): passes until one imports nothing. */
    for (int progress = 1; d.n > 0 && progress;) {
        progress = 0;
        for (size_t i = 0; i < d.n;) {
            if ((rc = import_counted(fresh, &d.v[i], d.keys[i], out, &later, e)) != 0)
                goto out;
            if (later) {
                i++;
                continue;
            }
            progress = 1;
            rebuild_sidecar_clear(&d.v[i]);
            d.n--;
            d.v[i] = d.v[d.n];
            memcpy(d.keys[i], d.keys[d.n], sizeof(d.keys[i]));
        }
    }
    for (size_t i = 0; i < d.n; i++) {
        out->bad++;
        problem(out, d.keys[i],
                "not imported: its source backup %s is not in storage (a derived copy would lose "
                "its link)",
                d.v[i].source_backup_id);
    }
    /* Pins: the operator's intent outlives the catalog (prune.h, prune_pin). */
    for (size_t i = 0; i < l.n; i++) {
        if (l.v[i].kind != KEY_PIN)
            continue;
        pgs_error pe = {0};
        int r = catalog_backup_pin(fresh, l.v[i].id, 1, &pe);
        if (r == 0) {
            out->pinned++;
        } else if (r == PGS_ENOTFOUND) {
            out->ignored++;
            log_debug("rebuild: %s: its backup is not in the catalog: ignored", l.v[i].key);
        } else {
            *e = pe;
            rc = pgs_wrap(e, "rebuild: pinning %s", l.v[i].id);
            goto out;
        }
    }
    log_info("rebuild: %zu backups imported, %zu already in the catalog, %zu objects without a "
             "sidecar, %zu sidecars without an object, %zu bad, %zu pinned, %zu other keys "
             "ignored",
             out->imported, out->existing, out->orphan_objects, out->orphan_sidecars, out->bad,
             out->pinned, out->ignored);
out:
    for (size_t i = 0; i < d.n; i++)
        rebuild_sidecar_clear(&d.v[i]);
    free(d.v);
    free(d.keys);
    free(sc);
    for (size_t i = 0; i < l.n; i++)
        free(l.v[i].key);
    free(l.v);
    free(b.buf);
    return rc;
}
