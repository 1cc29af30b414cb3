/* Prune: retention planned over the catalog, applied to storage and the catalog (see prune.h). */
#include "coordinator/prune.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"

/* One backup of the catalog while planning: the plan's entry, and whether it is in the plan (a
 * complete or failed backup of a database with a policy). Backups outside the plan still matter:
 * a derived copy kept by its own database's rules (or by none) keeps its source. */
typedef struct item {
    prune_entry e;
    int in_plan;
} item;

typedef struct items {
    item *v;
    size_t n, cap;
    int oom;
} items;

static int collect_cb(void *arg, const catalog_backup *b)
{
    items *it = arg;
    if (it->n == it->cap) {
        size_t ncap = it->cap ? it->cap * 2 : 64;
        if (ncap > RETENTION_ITEMS_MAX)
            ncap = RETENTION_ITEMS_MAX;
        if (it->n >= ncap)
            return PGS_ELIMIT;
        item *p = realloc(it->v, ncap * sizeof(*p));
        if (p == NULL) {
            it->oom = 1;
            return PGS_ENOMEM;
        }
        it->v = p;
        it->cap = ncap;
    }
    item *x = &it->v[it->n++];
    memset(x, 0, sizeof(*x));
    prune_entry *pe = &x->e;
    memcpy(pe->id, b->id, sizeof(pe->id));
    memcpy(pe->agent, b->agent, sizeof(pe->agent));
    memcpy(pe->database, b->database, sizeof(pe->database));
    memcpy(pe->environment, b->environment, sizeof(pe->environment));
    /* The time of the data: when the dump started. A backup that failed while queued never
     * started; its creation is the closest there is. */
    memcpy(pe->time, b->started_at[0] ? b->started_at : b->created_at, sizeof(pe->time));
    pe->state = b->state;
    pe->pinned = b->pinned;
    pe->keep = 1;
    pe->bytes = b->state == CATALOG_COMPLETE ? b->bytes : 0;
    memcpy(pe->source_backup_id, b->source_backup_id, sizeof(pe->source_backup_id));
    return 0;
}

/* Database, then newest first (time, then id, as the planner breaks ties). */
static int cmp_group(const void *pa, const void *pb)
{
    const prune_entry *a = &((const item *)pa)->e, *b = &((const item *)pb)->e;
    int c;
    if ((c = strcmp(a->agent, b->agent)) || (c = strcmp(a->database, b->database)) ||
        (c = strcmp(a->environment, b->environment)))
        return c;
    if ((c = strcmp(b->time, a->time)) != 0)
        return c;
    return strcmp(b->id, a->id);
}

static int same_group(const prune_entry *a, const prune_entry *b)
{
    return strcmp(a->agent, b->agent) == 0 && strcmp(a->database, b->database) == 0 &&
           strcmp(a->environment, b->environment) == 0;
}

static void add_reason(prune_entry *pe, const char *fmt, const char *arg)
{
    size_t n = strlen(pe->reasons);
    char r[96];
    snprintf(r, sizeof(r), fmt, arg);
    snprintf(pe->reasons + n, sizeof(pe->reasons) - n, "%s%s", n ? ", " : "", r);
}

/* Plans one database: it[0..n) share agent, database and environment. */
static int plan_group(const prune_rules *rules, item *it, size_t n, pgs_error *e)
{
    const char *name = NULL;
    const retention_policy *pol =
        rules->policy(rules->arg, it[0].e.agent, it[0].e.database, it[0].e.environment, &name);
    if (pol == NULL)
        return 0;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        m += it[i].e.state == CATALOG_COMPLETE || it[i].e.state == CATALOG_FAILED;
    if (m == 0)
        return 0;
    retention_item *ri = calloc(m, sizeof(*ri));
    if (ri == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    item **back = calloc(m, sizeof(*back));
    /* The planner counts in seconds and orders ties by id; backups made in the same second
     * must still come in the order they were made, so the id it sees starts with the time in
     * milliseconds ("0001795277129250-<id>"). */
    char(*keys)[CATALOG_ID_SIZE + 24] = calloc(m, sizeof(*keys));
    if (back == NULL || keys == NULL) {
        free(ri);
        free(back);
        free(keys);
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    }
    int rc = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        prune_entry *pe = &it[i].e;
        if (pe->state != CATALOG_COMPLETE && pe->state != CATALOG_FAILED)
            continue; /* in flight: neither planned nor touched */
        int64_t ms;
        if (catalog_time_parse(pe->time, &ms) != 0) {
            rc = pgs_fail(e, PGS_EFORMAT, "backup %s has an unreadable time", pe->id);
            goto out;
        }
        snprintf(keys[k], sizeof(keys[k]), "%016lld-%s", (long long)ms, pe->id);
        ri[k] = (retention_item){.id = keys[k],
                                 .time = ms / 1000,
                                 .complete = pe->state == CATALOG_COMPLETE,
                                 .pinned = pe->pinned};
        back[k++] = &it[i];
    }
    if ((rc = retention_plan(pol, ri, m, e)) != 0) {
        pgs_wrap(e, "database %s/%s in %s, policy %s", it[0].e.agent, it[0].e.database,
                 it[0].e.environment, name ? name : "(unnamed)");
        goto out;
    }
    for (size_t j = 0; j < m; j++) {
        prune_entry *pe = &back[j]->e;
        back[j]->in_plan = 1;
        pe->keep = ri[j].keep;
        snprintf(pe->reasons, sizeof(pe->reasons), "%s", ri[j].reasons);
        snprintf(pe->policy, sizeof(pe->policy), "%s", name ? name : "");
    }
out:
    free(ri);
    free(back);
    free(keys);
    return rc;
}

/* By id, for lookups. */
static int cmp_ptr_id(const void *pa, const void *pb)
{
    const item *a = *(item *const *)pa, *b = *(item *const *)pb;
    return strcmp(a->e.id, b->e.id);
}

static item *find(item **by_id, size_t n, const char *id)
{
    if (id == NULL || id[0] == '\0')
        return NULL;
    item key, *kp = &key;
    snprintf(key.e.id, sizeof(key.e.id), "%s", id);
    item **p = bsearch(&kp, by_id, n, sizeof(*by_id), cmp_ptr_id);
    return p ? *p : NULL;
}

static int to_delete(const item *x)
{
    return x != NULL && x->in_plan && !x->e.keep;
}

/* Backups named by restores and verifications still in flight: kept, with the user's id. */
typedef struct in_use {
    item **by_id;
    size_t n;
} in_use;

static void keep_used(in_use *u, const char *backup_id, const char *fmt, const char *user)
{
    item *x = find(u->by_id, u->n, backup_id);
    if (to_delete(x)) {
        x->e.keep = 1;
        add_reason(&x->e, fmt, user);
    }
}

static int restore_use_cb(void *arg, const catalog_restore *r)
{
    keep_used(arg, r->source_backup_id, "used by restore %s", r->id);
    keep_used(arg, r->sanitized_backup_id, "used by restore %s", r->id);
    keep_used(arg, r->safety_backup_id, "used by restore %s", r->id);
    return 0;
}

static int verify_use_cb(void *arg, const catalog_verification *v)
{
    keep_used(arg, v->backup_id, "used by verification %s", v->id);
    return 0;
}

/* Flips to "keep" what the catalog would refuse to delete; see prune.h. */
static int keep_needed(catalog *cat, item *all, size_t n, pgs_error *e)
{
    item **by_id = malloc((n ? n : 1) * sizeof(*by_id));
    if (by_id == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        by_id[i] = &all[i];
    qsort(by_id, n, sizeof(*by_id), cmp_ptr_id);
    in_use u = {by_id, n};
    int rc = 0;
    static const enum catalog_state live[] = {CATALOG_QUEUED, CATALOG_RUNNING};
    static const enum catalog_verify_state vlive[] = {CATALOG_VERIFY_QUEUED,
                                                      CATALOG_VERIFY_RUNNING};
    for (int i = 0; i < 2 && rc == 0; i++) {
        catalog_filter f = {.state = live[i]};
        catalog_verify_filter vf = {.state = vlive[i]};
        if ((rc = catalog_restore_list(cat, &f, restore_use_cb, &u, e)) == 0)
            rc = catalog_verify_list(cat, &vf, verify_use_cb, &u, e);
    }
    /* A source stays while a derived copy of it stays; keeping a source that is itself derived
     * keeps its own source in turn, hence the loop (it ends: each pass flips at least one of a
     * finite number of deletions, or stops). */
    for (int changed = 1; rc == 0 && changed;) {
        changed = 0;
        for (size_t i = 0; i < n; i++) {
            if (to_delete(&all[i]) || all[i].e.source_backup_id[0] == '\0')
                continue;
            item *src = find(by_id, n, all[i].e.source_backup_id);
            if (to_delete(src)) {
                src->e.keep = 1;
                add_reason(&src->e, "source of derived backup %s", all[i].e.id);
                changed = 1;
            }
        }
    }
    free(by_id);
    return rc;
}

int prune_plan(catalog *cat, const prune_rules *rules, prune_plan_t **out, pgs_error *e)
{
    items it = {0};
    prune_plan_t *plan = NULL;
    int rc;
    *out = NULL;
    if (rules == NULL || rules->policy == NULL)
        return pgs_fail(e, PGS_EINVAL, "prune: no retention rules");
    if ((rc = catalog_backup_list(cat, NULL, collect_cb, &it, e)) != 0) {
        if (rc == PGS_ENOMEM && it.oom)
            pgs_fail(e, PGS_ENOMEM, "out of memory");
        else if (rc == PGS_ELIMIT)
            pgs_fail(e, PGS_ELIMIT, "more than %u backups in the catalog", RETENTION_ITEMS_MAX);
        goto out;
    }
    qsort(it.v, it.n, sizeof(*it.v), cmp_group);
    for (size_t i = 0, j; i < it.n; i = j) {
        for (j = i + 1; j < it.n && same_group(&it.v[i].e, &it.v[j].e); j++)
            ;
        if ((rc = plan_group(rules, it.v + i, j - i, e)) != 0)
            goto out;
    }
    if ((rc = keep_needed(cat, it.v, it.n, e)) != 0)
        goto out;

    /* The plan: the planned items, compacted in place, in group order. */
    if ((plan = calloc(1, sizeof(*plan))) == NULL) {
        rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
        goto out;
    }
    size_t k = 0;
    for (size_t i = 0; i < it.n; i++) {
        if (!it.v[i].in_plan)
            continue;
        prune_entry pe = it.v[i].e;
        if (k == 0 || !same_group(&it.v[k - 1].e, &pe))
            plan->ndatabases++;
        if (!pe.keep) {
            plan->ndelete++;
            plan->delete_bytes += pe.bytes;
        }
        it.v[k++].e = pe;
    }
    plan->n = k;
    if ((plan->entries = calloc(k ? k : 1, sizeof(*plan->entries))) == NULL) {
        rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < k; i++)
        plan->entries[i] = it.v[i].e;
    *out = plan;
    plan = NULL;
out:
    prune_plan_free(plan);
    free(it.v);
    return rc;
}

void prune_plan_free(prune_plan_t *plan)
{
    if (plan == NULL)
        return;
    free(plan->entries);
    free(plan);
}

/* "a, b, c" as ["a", "b", "c"]; "" as []. */
static json_t *reasons_json(const char *text)
{
    json_t *a = json_array();
    const char *p = text;
    while (a != NULL && *p != '\0') {
        const char *end = strstr(p, ", ");
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (json_array_append_new(a, json_stringn(p, len)) != 0) {
            json_decref(a);
            return NULL;
        }
        p += len + (end ? 2 : 0);
    }
    return a;
}

json_t *prune_plan_to_json(const prune_plan_t *plan)
{
    json_t *o = json_object(), *arr = json_array();
    int bad = o == NULL || arr == NULL;
    size_t keep = 0;
    for (size_t i = 0; !bad && i < plan->n; i++) {
        const prune_entry *pe = &plan->entries[i];
        json_t *b = json_object();
        if (b == NULL || json_array_append_new(arr, b) != 0) {
            bad = 1;
            break;
        }
        keep += pe->keep != 0;
        bad |= json_object_set_new(b, "id", json_string(pe->id));
        bad |= json_object_set_new(b, "agent", json_string(pe->agent));
        bad |= json_object_set_new(b, "database", json_string(pe->database));
        bad |= json_object_set_new(b, "environment", json_string(pe->environment));
        bad |= json_object_set_new(b, "state", json_string(catalog_state_name(pe->state)));
        bad |= json_object_set_new(b, "time", json_string(pe->time));
        bad |= json_object_set_new(b, "size_bytes",
                                   pe->bytes ? json_integer((json_int_t)pe->bytes) : json_null());
        bad |= json_object_set_new(b, "pinned", json_boolean(pe->pinned));
        bad |= json_object_set_new(b, "fate", json_string(pe->keep ? "keep" : "delete"));
        json_t *r = reasons_json(pe->reasons);
        bad |= r == NULL || json_object_set_new(b, "reasons", r) != 0;
        bad |= json_object_set_new(b, "policy", json_string(pe->policy));
        bad |= json_object_set_new(b, "source_backup_id",
                                   pe->source_backup_id[0] ? json_string(pe->source_backup_id)
                                                           : json_null());
    }
    if (!bad) {
        bad |= json_object_set_new(o, "backups", arr);
        arr = NULL;
        bad |= json_object_set_new(o, "databases", json_integer((json_int_t)plan->ndatabases));
        bad |= json_object_set_new(o, "keep", json_integer((json_int_t)keep));
        bad |= json_object_set_new(o, "delete", json_integer((json_int_t)plan->ndelete));
        bad |= json_object_set_new(o, "delete_bytes", json_integer((json_int_t)plan->delete_bytes));
    }
    if (bad) {
        json_decref(arr);
        json_decref(o);
        return NULL;
    }
    return o;
}

/* "<...>/<id>.pgship" -> "<...>/<id><ext>" into out (cap bytes). */
static int beside_object(const char *object_key, const char *ext, char *out, size_t cap)
{
    static const char obj[] = ".pgship";
    size_t n = object_key ? strlen(object_key) : 0, ol = sizeof(obj) - 1, xl = strlen(ext);
    if (n <= ol || strcmp(object_key + n - ol, obj) != 0)
        return PGS_EINVAL;
    if (n - ol + xl + 1 > cap)
        return PGS_ELIMIT;
    memcpy(out, object_key, n - ol);
    memcpy(out + n - ol, ext, xl + 1);
    return 0;
}

int prune_sidecar_key(const char *object_key, char *out, size_t cap)
{
    return beside_object(object_key, ".manifest.json", out, cap);
}

int prune_pin_key(const char *object_key, char *out, size_t cap)
{
    return beside_object(object_key, ".pin", out, cap);
}

int prune_pin(catalog *cat, storage *st, const char *id, int pinned, const char *by, pgs_error *e)
{
    catalog_backup b;
    char key[STORAGE_KEY_MAX + 1];
    int rc = catalog_backup_get(cat, id, &b, e);
    if (rc != 0)
        return rc;
    int marker = st != NULL && b.storage_key[0] != '\0' &&
                 prune_pin_key(b.storage_key, key, sizeof(key)) == 0;
    if (pinned) {
        /* marker first: if the row's update fails, a rebuild pins it (the safe side) */
        if (marker) {
            char now[CATALOG_TIME_SIZE], body[256];
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            catalog_time_format((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, now);
            json_t *j = json_pack("{s:s, s:s, s:s}", "backup_id", b.id, "pinned_at", now,
                                  "pinned_by", by != NULL ? by : "");
            char *text = j != NULL ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
            json_decref(j);
            snprintf(body, sizeof(body), "%s\n", text != NULL ? text : "{}");
            free(text);
            if ((rc = storage_put(st, key, body, strlen(body), e)) != 0)
                return pgs_wrap(e, "backup %s: writing its pin marker", id);
        }
        return catalog_backup_pin(cat, id, 1, e);
    }
    /* row first: if the marker's deletion fails, a rebuild pins it again (the safe side) */
    if ((rc = catalog_backup_pin(cat, id, 0, e)) != 0)
        return rc;
    if (marker && (rc = storage_delete(st, key, e)) != 0)
        return pgs_wrap(e,
                        "backup %s: unpinned in the catalog, but its pin marker %s stays "
                        "(a catalog rebuild would pin it again)",
                        id, key);
    return 0;
}

/* Whether key is "<id>.pgship" or ends in "/<id>.pgship": prune deletes only a backup's own
 * object, whatever a (hand-edited) row says. */
static int key_names(const char *key, const char *id)
{
    char want[CATALOG_ID_SIZE + 16];
    snprintf(want, sizeof(want), "%s.pgship", id);
    size_t n = strlen(key), w = strlen(want);
    return n >= w && strcmp(key + n - w, want) == 0 && (n == w || key[n - w - 1] == '/');
}

enum try_result { TRY_DELETED, TRY_GONE, TRY_BLOCKED, TRY_FAILED };

/* One deletion: check, object, sidecar, row. */
static enum try_result try_delete(catalog *cat, storage *st, const prune_entry *pe, uint64_t *bytes,
                                  pgs_error *e)
{
    catalog_backup b;
    char side[STORAGE_KEY_MAX + 1];
    int rc = catalog_backup_delete_check(cat, pe->id, e);
    if (rc == PGS_ENOTFOUND)
        return TRY_GONE;
    if (rc == PGS_EORDER)
        return TRY_BLOCKED;
    if (rc != 0 || (rc = catalog_backup_get(cat, pe->id, &b, e)) != 0)
        return rc == PGS_ENOTFOUND ? TRY_GONE : TRY_FAILED;
    if (b.storage_key[0] != '\0') {
        if (!key_names(b.storage_key, b.id)) {
            pgs_fail(e, PGS_EINVAL,
                     "its storage key does not name it (expected .../%s.pgship): object kept",
                     b.id);
            return TRY_FAILED;
        }
        /* Object first, sidecar next, row last: whatever a crash leaves, the row is still there
         * for the next prune to finish. */
        if ((rc = storage_delete(st, b.storage_key, e)) != 0) {
            pgs_wrap(e, "deleting its object");
            return TRY_FAILED;
        }
        if (prune_sidecar_key(b.storage_key, side, sizeof(side)) == 0 &&
            (rc = storage_delete(st, side, e)) != 0) {
            pgs_wrap(e, "deleting its sidecar");
            return TRY_FAILED;
        }
        /* a stale pin marker (an unpin that could not delete it) goes too */
        if (prune_pin_key(b.storage_key, side, sizeof(side)) == 0 &&
            (rc = storage_delete(st, side, e)) != 0) {
            pgs_wrap(e, "deleting its pin marker");
            return TRY_FAILED;
        }
    }
    if ((rc = catalog_backup_delete(cat, b.id, e)) != 0)
        return rc == PGS_ENOTFOUND ? TRY_GONE : TRY_FAILED;
    *bytes = b.state == CATALOG_COMPLETE ? b.bytes : 0;
    return TRY_DELETED;
}

/* Newest first: a derived copy is made after its source, so it goes first. */
static int cmp_entry_newest(const void *pa, const void *pb)
{
    const prune_entry *a = *(const prune_entry *const *)pa, *b = *(const prune_entry *const *)pb;
    return strcmp(b->id, a->id);
}

int prune_apply(catalog *cat, storage *st, const prune_plan_t *plan, prune_counts *out,
                pgs_error *e)
{
    prune_counts c;
    memset(&c, 0, sizeof(c));
    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (plan == NULL)
        return pgs_fail(e, PGS_EINVAL, "prune: no plan");
    const prune_entry **todo = malloc((plan->ndelete ? plan->ndelete : 1) * sizeof(*todo));
    if (todo == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    size_t n = 0;
    for (size_t i = 0; i < plan->n; i++)
        if (!plan->entries[i].keep && n < plan->ndelete)
            todo[n++] = &plan->entries[i];
    qsort(todo, n, sizeof(*todo), cmp_entry_newest);
    c.planned = n;
    int first_rc = 0;
    pgs_error first = {0};

    /* Passes until one makes no progress: a deletion blocked by something another deletion of
     * this plan removes (a derived copy dated in the same second as its source) gets another try;
     * what stays blocked is skipped. */
    size_t pending = n;
    for (int progress = 1; pending > 0 && progress;) {
        progress = 0;
        for (size_t i = 0; i < n; i++) {
            if (todo[i] == NULL)
                continue;
            const prune_entry *pe = todo[i];
            pgs_error te = {0};
            uint64_t bytes = 0;
            enum try_result r = try_delete(cat, st, pe, &bytes, &te);
            if (r == TRY_BLOCKED)
                continue;
            todo[i] = NULL;
            pending--;
            progress = 1;
            if (r == TRY_DELETED) {
                c.deleted++;
                c.bytes_deleted += bytes;
                log_info("prune: backup %s of %s/%s in %s deleted (%s)", pe->id, pe->agent,
                         pe->database, pe->environment,
                         pe->state == CATALOG_FAILED ? "failed" : "no rule keeps it");
            } else if (r == TRY_GONE) {
                c.skipped++;
                log_info("prune: backup %s is no longer in the catalog", pe->id);
            } else {
                c.failed++;
                log_warn("prune: cannot delete backup %s of %s/%s in %s: %s", pe->id, pe->agent,
                         pe->database, pe->environment, te.msg);
                if (c.nfailures < PRUNE_FAILURES_MAX) {
                    prune_failure *f = &c.failures[c.nfailures++];
                    snprintf(f->id, sizeof(f->id), "%s", pe->id);
                    snprintf(f->error, sizeof(f->error), "%s", te.msg);
                }
                if (first_rc == 0) {
                    first_rc = te.code ? te.code : PGS_EIO;
                    first = te;
                }
            }
        }
    }
    for (size_t i = 0; i < n; i++) {
        if (todo[i] == NULL)
            continue;
        pgs_error te = {0};
        catalog_backup_delete_check(cat, todo[i]->id, &te);
        c.skipped++;
        log_info("prune: backup %s kept: %s", todo[i]->id, te.msg);
    }
    free(todo);
    if (out != NULL)
        *out = c;
    if (first_rc != 0)
        return pgs_fail(e, first_rc, "prune: %zu of %zu deletions failed; the first, backup %s: %s",
                        c.failed, c.planned, c.failures[0].id, first.msg);
    return 0;
}
