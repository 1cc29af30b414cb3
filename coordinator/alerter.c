/*
 * The alerter's thread: failures from the catalog to webhooks, and the overdue rule (see
 * alerter.h for what and why).
 */
#include "coordinator/alerter.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/timeutil.h"
#include "coordinator/catalog.h"
#include "coordinator/metrics.h"
#include "coordinator/webhook.h"

enum { KIND_BACKUP = 'b', KIND_RESTORE = 'r', KIND_VERIFY = 'v' };

/* A failure already posted (or handled), remembered while its end is inside the lookback. */
typedef struct posted {
    char kind;
    char id[CATALOG_ID_SIZE];
    int64_t fin_ms;
} posted;

/* One database the catalog knows, with its overdue state. */
typedef struct adb {
    char agent[CATALOG_NAME_MAX + 1];
    char name[CATALOG_NAME_MAX + 1];
    char env[CATALOG_NAME_MAX + 1];
    int64_t first_seen_ms;             /* 0 when unknown */
    int64_t newest_ms;                 /* finish of the newest complete backup; 0: none */
    char newest_id[CATALOG_ID_SIZE];   /* "" when none */
    char newest_at[CATALOG_TIME_SIZE]; /* its finished_at as the catalog writes it */
    int overdue;                       /* at the last poll */
    int episode;                       /* a backup.overdue was posted for base_ms */
    int64_t base_ms;                   /* the time the episode counted from */
} adb;

/* A failure found by a pass, waiting to be posted after the list returns. */
typedef struct pending {
    char kind;
    char id[CATALOG_ID_SIZE];
    int64_t fin_ms;
    json_t *data;           /* NULL for a verification until its backup is looked up */
    catalog_verification v; /* KIND_VERIFY only (report_json NULL) */
} pending;

typedef struct pending_list {
    alerter *a;
    pending *p;
    size_t n, cap;
    int oom;
} pending_list;

struct alerter {
    const coordinator_config *cfg;
    const schedd *sched;
    catalog *cat;
    monitor *mon;
    int64_t since_ms;
    unsigned poll_ms;
    int64_t (*overdue_after)(void *arg, const char *agent, const char *db, const char *env,
                             int64_t now);
    void *overdue_arg;

    webhook **hooks;
    char **hook_names;
    unsigned *hook_events;
    size_t nhooks;

    pthread_t thread;
    int thread_started;
    int registered;
    pthread_mutex_t mu; /* stop, counts, dbs (the metrics read them) */
    pthread_cond_t cv;
    int stop;
    alerter_counts counts;
    adb *dbs; /* by agent and name, as the catalog lists them */
    size_t ndbs;

    /* The thread's alone. */
    posted *seen; /* by kind and id */
    size_t nseen, seen_cap;
    int64_t version;
    int have_version;
};

/* ---- small helpers ---- */

static int64_t time_ms(const char *t)
{
    int64_t ms;
    return t[0] != '\0' && catalog_time_parse(t, &ms) == 0 ? ms : 0;
}

/* "" as NULL, for json_pack's "s?" (an unset value is null in the payload). */
static const char *nz(const char *s)
{
    return s != NULL && s[0] != '\0' ? s : NULL;
}

static int posted_cmp(const posted *p, char kind, const char *id)
{
    if (p->kind != kind)
        return p->kind < kind ? -1 : 1;
    return strcmp(p->id, id);
}

/* The index where (kind, id) is or would go; *found when it is there. */
static size_t seen_find(const alerter *a, char kind, const char *id, int *found)
{
    size_t lo = 0, hi = a->nseen;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = posted_cmp(&a->seen[mid], kind, id);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

static int seen_has(const alerter *a, char kind, const char *id)
{
    int found;
    seen_find(a, kind, id, &found);
    return found;
}

/* Remembers (kind, id); 0 or PGS_ENOMEM (then the failure may be posted again next poll, which
 * is better than losing it). */
static int seen_add(alerter *a, char kind, const char *id, int64_t fin_ms)
{
    int found;
    size_t i = seen_find(a, kind, id, &found);
    if (found)
        return 0;
    if (a->nseen == a->seen_cap) {
        size_t cap = a->seen_cap ? 2 * a->seen_cap : 64;
        posted *n = realloc(a->seen, cap * sizeof(*n));
        if (n == NULL)
            return PGS_ENOMEM;
        a->seen = n;
        a->seen_cap = cap;
    }
    memmove(&a->seen[i + 1], &a->seen[i], (a->nseen - i) * sizeof(*a->seen));
    a->seen[i].kind = kind;
    snprintf(a->seen[i].id, sizeof(a->seen[i].id), "%s", id);
    a->seen[i].fin_ms = fin_ms;
    a->nseen++;
    return 0;
}

/* Forgets what ended before lo: the next pass reads from lo, so it cannot return them. */
static void seen_prune(alerter *a, int64_t lo)
{
    size_t j = 0;
    for (size_t i = 0; i < a->nseen; i++)
        if (a->seen[i].fin_ms >= lo)
            a->seen[j++] = a->seen[i];
    a->nseen = j;
}

/* Posts event with data (its reference is taken) to every webhook subscribed to it; returns
 * how many accepted it. */
static size_t post(alerter *a, const char *event, json_t *data)
{
    unsigned bit = coordinator_webhook_event_bit(event);
    size_t n = 0;
    for (size_t i = 0; i < a->nhooks; i++) {
        if ((a->hook_events[i] & bit) == 0)
            continue;
        int rc = webhook_post(a->hooks[i], event, json_incref(data));
        if (rc == 0)
            n++;
        else
            log_warn("alert: %s not queued for webhook %s: %s", event, a->hook_names[i],
                     pgs_strerror(rc));
    }
    json_decref(data);
    return n;
}

/* ---- failures ---- */

static pending *pending_add(pending_list *l, char kind, const char *id, const char *finished_at)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        pending *n = realloc(l->p, cap * sizeof(*n));
        if (n == NULL) {
            l->oom = 1;
            return NULL;
        }
        l->p = n;
        l->cap = cap;
    }
    pending *p = &l->p[l->n++];
    memset(p, 0, sizeof(*p));
    p->kind = kind;
    snprintf(p->id, sizeof(p->id), "%s", id);
    p->fin_ms = time_ms(finished_at);
    return p;
}

static int on_failed_backup(void *arg, const catalog_backup *b)
{
    pending_list *l = arg;
    if (seen_has(l->a, KIND_BACKUP, b->id))
        return 0;
    pending *p = pending_add(l, KIND_BACKUP, b->id, b->finished_at);
    if (p == NULL)
        return 1;
    p->data = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s?, s:s?, s:s?, s:s, s:s?, s:s}", "agent",
                        b->agent, "database", b->database, "environment", b->environment,
                        "backup_id", b->id, "reason", monitor_failure_reason(b->error), "error",
                        b->error, "requested_by", nz(b->requested_by), "scheduled",
                        nz(b->scheduled), "label", nz(b->label), "created_at", b->created_at,
                        "started_at", nz(b->started_at), "finished_at", b->finished_at);
    return 0;
}

static int on_failed_restore(void *arg, const catalog_restore *r)
{
    pending_list *l = arg;
    if (seen_has(l->a, KIND_RESTORE, r->id))
        return 0;
    pending *p = pending_add(l, KIND_RESTORE, r->id, r->finished_at);
    if (p == NULL)
        return 1;
    p->data = json_pack(
        "{s:s, s:s, s:s, s:s, s:s, s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?, s:s, s:s, s:s?, s:s, "
        "s:s?, s:s}",
        "restore_id", r->id, "kind", r->kind, "agent", r->target_agent, "database",
        r->target_database, "environment", r->target_environment, "source", r->source,
        "source_backup_id", nz(r->source_backup_id), "source_agent", nz(r->source_agent),
        "source_database", nz(r->source_database), "source_environment", nz(r->source_environment),
        "profile", nz(r->profile), "step", nz(r->step), "reason", monitor_failure_reason(r->error),
        "error", r->error, "requested_by", nz(r->requested_by), "created_at", r->created_at,
        "started_at", nz(r->started_at), "finished_at", r->finished_at);
    return 0;
}

static int on_failed_verify(void *arg, const catalog_verification *v)
{
    pending_list *l = arg;
    if (seen_has(l->a, KIND_VERIFY, v->id))
        return 0;
    pending *p = pending_add(l, KIND_VERIFY, v->id, v->finished_at);
    if (p == NULL)
        return 1;
    p->v = *v;
    p->v.report_json = NULL; /* the list frees it after this returns */
    return 0;
}

/* The verification's event, naming the database of the backup it checked (null when that
 * backup has been pruned since). */
static json_t *verify_data(alerter *a, const catalog_verification *v)
{
    catalog_backup b;
    pgs_error e = {0};
    int rc = catalog_backup_get(a->cat, v->backup_id, &b, &e);
    if (rc != 0)
        memset(&b, 0, sizeof(b));
    if (rc != 0 && rc != PGS_ENOTFOUND)
        log_warn("alert: verification %s: %s", v->id, e.msg);
    return json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:s, s:b, s:s, s:s, s:s, s:s?, s:s}",
                     "verification_id", v->id, "backup_id", v->backup_id, "agent", nz(b.agent),
                     "database", nz(b.database), "environment", nz(b.environment), "verifier",
                     v->agent, "restore_test", v->restore_test, "reason",
                     monitor_failure_reason(v->error), "error", v->error, "created_at",
                     v->created_at, "started_at", nz(v->started_at), "finished_at", v->finished_at);
}

static const char *kind_event(char kind)
{
    return kind == KIND_BACKUP    ? WEBHOOK_EVENT_BACKUP_FAILED
           : kind == KIND_RESTORE ? WEBHOOK_EVENT_RESTORE_FAILED
                                  : WEBHOOK_EVENT_VERIFY_FAILED;
}

/* Posts one found failure and remembers it. */
static void post_failure(alerter *a, pending *p)
{
    const char *event = kind_event(p->kind);
    if (p->kind == KIND_VERIFY)
        p->data = verify_data(a, &p->v);
    if (seen_add(a, p->kind, p->id, p->fin_ms) != 0) {
        log_warn("alert: %s %s: out of memory, trying again at the next poll", event, p->id);
        json_decref(p->data);
        p->data = NULL;
        return;
    }
    if (p->data == NULL) {
        log_warn("alert: %s %s: cannot make the event (out of memory)", event, p->id);
        return;
    }
    json_t *d = p->data;
    p->data = NULL;
    const char *agent = json_string_value(json_object_get(d, "agent"));
    const char *db = json_string_value(json_object_get(d, "database"));
    const char *reason = json_string_value(json_object_get(d, "reason"));
    char who[2 * CATALOG_NAME_MAX + 2], why[32];
    snprintf(who, sizeof(who), "%s/%s", agent ? agent : "?", db ? db : "?");
    snprintf(why, sizeof(why), "%s", reason ? reason : "other");
    size_t n = post(a, event, d); /* d is gone after this */
    log_info("alert: %s %s %s (%s): posted to %zu webhook%s", event, who, p->id, why, n,
             n == 1 ? "" : "s");
    pthread_mutex_lock(&a->mu);
    if (p->kind == KIND_BACKUP)
        a->counts.backup_failed++;
    else if (p->kind == KIND_RESTORE)
        a->counts.restore_failed++;
    else
        a->counts.verify_failed++;
    pthread_mutex_unlock(&a->mu);
}

/* One pass over what failed since max(start, now - lookback). 0 or the catalog's error. */
static int failures(alerter *a, int64_t now)
{
    int64_t lo = now - ALERTER_LOOKBACK_MS;
    if (lo < a->since_ms)
        lo = a->since_ms;
    char since[CATALOG_TIME_SIZE];
    catalog_time_format(lo, since);
    pending_list l = {.a = a};
    pgs_error e = {0};
    int rc = catalog_backup_failed_since(a->cat, since, on_failed_backup, &l, &e);
    if (rc == 0)
        rc = catalog_restore_failed_since(a->cat, since, on_failed_restore, &l, &e);
    if (rc == 0)
        rc = catalog_verify_failed_since(a->cat, since, on_failed_verify, &l, &e);
    if (rc != 0)
        log_warn("alert: reading the catalog: %s", e.msg);
    if (l.oom) {
        log_warn("alert: out of memory listing failures, trying again at the next poll");
        rc = rc ? rc : PGS_ENOMEM;
    }
    /* What was found is posted even after an error: the next pass skips it by its id. */
    for (size_t i = 0; i < l.n; i++) {
        post_failure(a, &l.p[i]);
        json_decref(l.p[i].data);
    }
    free(l.p);
    if (rc == 0)
        seen_prune(a, lo);
    return rc;
}

/* ---- overdue ---- */

typedef struct db_list {
    adb *d;
    size_t n, cap;
    int oom;
} db_list;

static int on_database(void *arg, const catalog_database *d)
{
    db_list *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 32;
        adb *n = realloc(l->d, cap * sizeof(*n));
        if (n == NULL) {
            l->oom = 1;
            return 1;
        }
        l->d = n;
        l->cap = cap;
    }
    adb *x = &l->d[l->n++];
    memset(x, 0, sizeof(*x));
    snprintf(x->agent, sizeof(x->agent), "%s", d->agent);
    snprintf(x->name, sizeof(x->name), "%s", d->name);
    snprintf(x->env, sizeof(x->env), "%s", d->environment);
    x->first_seen_ms = time_ms(d->first_seen);
    return 0;
}

static int adb_cmp(const adb *x, const adb *y)
{
    int c = strcmp(x->agent, y->agent);
    return c != 0 ? c : strcmp(x->name, y->name);
}

/* Reads the databases and their newest complete backups again, keeping each one's episode.
 * 0 or the catalog's error (the old list stays). */
static int dbs_refresh(alerter *a)
{
    db_list l = {0};
    pgs_error e = {0};
    int rc = catalog_databases_list(a->cat, NULL, on_database, &l, &e);
    if (rc == 0 && l.oom)
        rc = pgs_fail(&e, PGS_ENOMEM, "out of memory");
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        catalog_backup b;
        int r = catalog_latest_complete(a->cat, l.d[i].agent, l.d[i].name, &b, &e);
        if (r == 0) {
            l.d[i].newest_ms = time_ms(b.finished_at);
            snprintf(l.d[i].newest_id, sizeof(l.d[i].newest_id), "%s", b.id);
            snprintf(l.d[i].newest_at, sizeof(l.d[i].newest_at), "%s", b.finished_at);
        } else if (r != PGS_ENOTFOUND) {
            rc = r;
        }
    }
    if (rc != 0) {
        log_warn("alert: reading the databases: %s", e.msg);
        free(l.d);
        return rc;
    }
    /* The catalog lists by agent and name, so the old and new lists merge in one pass. Its
     * order is SQLite's binary collation, which is strcmp's for these names. */
    pthread_mutex_lock(&a->mu);
    size_t j = 0;
    for (size_t i = 0; i < l.n; i++) {
        while (j < a->ndbs && adb_cmp(&a->dbs[j], &l.d[i]) < 0)
            j++;
        if (j < a->ndbs && adb_cmp(&a->dbs[j], &l.d[i]) == 0) {
            l.d[i].overdue = a->dbs[j].overdue;
            l.d[i].episode = a->dbs[j].episode;
            l.d[i].base_ms = a->dbs[j].base_ms;
        }
    }
    free(a->dbs);
    a->dbs = l.d;
    a->ndbs = l.n;
    pthread_mutex_unlock(&a->mu);
    return 0;
}

static int64_t overdue_limit_s(alerter *a, const adb *d, int64_t now_ms)
{
    if (a->overdue_after != NULL)
        return a->overdue_after(a->overdue_arg, d->agent, d->name, d->env, now_ms / 1000);
    return schedd_overdue_after_s(a->sched, a->cfg, d->agent, d->name, d->env, now_ms / 1000);
}

static void post_overdue(alerter *a, const adb *d, int64_t limit_s)
{
    char base[CATALOG_TIME_SIZE], due[CATALOG_TIME_SIZE];
    catalog_time_format(d->base_ms, base);
    catalog_time_format(d->base_ms + limit_s * 1000, due);
    json_t *data =
        json_pack("{s:s, s:s, s:s, s:I, s:s?, s:s?, s:s, s:s}", "agent", d->agent, "database",
                  d->name, "environment", d->env, "overdue_after_s", (json_int_t)limit_s,
                  "last_backup_id", nz(d->newest_id), "last_backup_at", nz(d->newest_at),
                  "counted_from", base, "overdue_since", due);
    if (data == NULL) {
        log_warn("alert: backup.overdue %s/%s: cannot make the event (out of memory)", d->agent,
                 d->name);
        return;
    }
    size_t n = post(a, WEBHOOK_EVENT_BACKUP_OVERDUE, data);
    log_info("alert: backup.overdue %s/%s: no complete backup since %s (allowed %llds): posted "
             "to %zu webhook%s",
             d->agent, d->name, base, (long long)limit_s, n, n == 1 ? "" : "s");
    a->counts.backup_overdue++;
}

/*
 * The overdue rule, every poll: a database is overdue when its limit is > 0 and the time counted
 * from -- its newest complete backup's end, or with none the later of when it was first seen and
 * the start point (a database just announced, or a schedule just configured, has had no chance
 * yet) -- is further back than the limit. One event per episode: an episode ends only when that
 * time moves, that is when a newer complete backup ends, not when the limit itself changes (the
 * gap between due times of "0 2 * * 1-5" varies over a week).
 */
static void overdue_check(alerter *a, int64_t now)
{
    pthread_mutex_lock(&a->mu);
    uint64_t over = 0;
    for (size_t i = 0; i < a->ndbs; i++) {
        adb *d = &a->dbs[i];
        int64_t base = d->newest_ms;
        if (base == 0)
            base = d->first_seen_ms > a->since_ms ? d->first_seen_ms : a->since_ms;
        if (d->episode && d->base_ms != base)
            d->episode = 0;
        int64_t limit = overdue_limit_s(a, d, now);
        d->overdue = limit > 0 && now - base > limit * 1000;
        if (d->overdue) {
            over++;
            if (!d->episode) {
                d->episode = 1;
                d->base_ms = base;
                post_overdue(a, d, limit);
            }
        }
    }
    a->counts.overdue_now = over;
    pthread_mutex_unlock(&a->mu);
}

/* ---- the thread ---- */

static void poll_once(alerter *a)
{
    int64_t now = time_now_ms();
    pgs_error e = {0};
    int64_t version = 0;
    int rc = catalog_data_version(a->cat, &version, &e);
    if (rc != 0)
        log_warn("alert: reading the catalog: %s", e.msg);
    /* Nothing committed since the last good pass: no new failure, no new backup. */
    int changed = rc != 0 || !a->have_version || version != a->version;
    if (changed) {
        int frc = failures(a, now);
        int drc = dbs_refresh(a);
        if (rc == 0 && frc == 0 && drc == 0) {
            a->version = version;
            a->have_version = 1;
        } else {
            a->have_version = 0;
        }
    }
    overdue_check(a, now);
    pthread_mutex_lock(&a->mu);
    if (!changed || a->have_version)
        a->counts.polls++;
    pthread_mutex_unlock(&a->mu);
}

static void *alerter_main(void *arg)
{
    alerter *a = arg;
    pthread_mutex_lock(&a->mu);
    while (!a->stop) {
        pthread_mutex_unlock(&a->mu);
        poll_once(a);
        pthread_mutex_lock(&a->mu);
        if (!a->stop)
            time_cond_wait_ms(&a->cv, &a->mu, (int)a->poll_ms);
    }
    pthread_mutex_unlock(&a->mu);
    return NULL;
}

/* ---- metrics ---- */

static void alerter_metrics(void *arg, metrics *m)
{
    alerter *a = arg;
    metrics_clear(m, METRICS_BACKUP_OVERDUE);
    pthread_mutex_lock(&a->mu);
    for (size_t i = 0; i < a->ndbs; i++) {
        const char *lv[] = {a->dbs[i].agent, a->dbs[i].name, NULL};
        metrics_set(m, METRICS_BACKUP_OVERDUE, lv, a->dbs[i].overdue ? 1 : 0);
    }
    pthread_mutex_unlock(&a->mu);
    for (size_t i = 0; i < a->nhooks; i++) {
        webhook_counts c;
        webhook_stats(a->hooks[i], &c);
        const char *name = a->hook_names[i];
        const char *del[] = {name, "delivered", NULL}, *fail[] = {name, "failed", NULL};
        const char *drop[] = {name, "dropped", NULL}, *retry[] = {name, NULL};
        metrics_set(m, METRICS_WEBHOOK_DELIVERIES, del, (double)c.delivered);
        metrics_set(m, METRICS_WEBHOOK_DELIVERIES, fail, (double)c.failed);
        metrics_set(m, METRICS_WEBHOOK_DELIVERIES, drop, (double)c.dropped);
        metrics_set(m, METRICS_WEBHOOK_RETRIES, retry, (double)c.retried);
    }
}

/* ---- start and stop ---- */

static void *stop_one(void *arg)
{
    webhook_stop(arg);
    return NULL;
}

/* Stops every webhook at once, so that shutdown waits one timeout, not one per webhook. */
static void hooks_stop(alerter *a)
{
    pthread_t *th = calloc(a->nhooks ? a->nhooks : 1, sizeof(*th));
    int *started = calloc(a->nhooks ? a->nhooks : 1, sizeof(*started));
    for (size_t i = 0; i < a->nhooks; i++) {
        if (a->hooks[i] == NULL)
            continue;
        if (th != NULL && started != NULL &&
            pthread_create(&th[i], NULL, stop_one, a->hooks[i]) == 0)
            started[i] = 1;
        else
            webhook_stop(a->hooks[i]);
    }
    for (size_t i = 0; th != NULL && started != NULL && i < a->nhooks; i++)
        if (started[i])
            pthread_join(th[i], NULL);
    free(th);
    free(started);
}

static void alerter_free(alerter *a)
{
    hooks_stop(a);
    for (size_t i = 0; i < a->nhooks; i++) {
        webhook_free(a->hooks[i]);
        free(a->hook_names[i]);
    }
    free(a->hooks);
    free(a->hook_names);
    free(a->hook_events);
    free(a->seen);
    free(a->dbs);
    catalog_close(a->cat);
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->mu);
    free(a);
}

/* The payload's "coordinator": this host's name, cut to what a webhook takes. */
static void host_name(char *out, size_t cap)
{
    if (gethostname(out, cap) != 0 || out[0] == '\0')
        snprintf(out, cap, "pgship-coordinator");
    out[cap - 1] = '\0';
    json_t *probe = json_string(out);
    if (probe == NULL)
        snprintf(out, cap, "pgship-coordinator");
    json_decref(probe);
}

int alerter_start(const alerter_opts *o, alerter **out, pgs_error *e)
{
    *out = NULL;
    if (o == NULL || o->cfg == NULL || o->catalog_path == NULL)
        return pgs_fail(e, PGS_EINVAL, "alerter: no configuration or catalog");
    const coordinator_config *cfg = o->cfg;
    alerter *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return pgs_fail(e, PGS_ENOMEM, "alerter: out of memory");
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    a->cfg = cfg;
    a->sched = o->sched;
    a->mon = o->monitor;
    a->since_ms = o->since_ms > 0 ? o->since_ms : time_now_ms();
    a->poll_ms = o->poll_ms ? o->poll_ms : ALERTER_POLL_MS;
    a->overdue_after = o->overdue_after;
    a->overdue_arg = o->overdue_arg;

    int rc = catalog_open(o->catalog_path, &a->cat, e);
    if (rc != 0)
        goto fail;
    size_t n = cfg->nwebhooks;
    if (n > 0 && ((a->hooks = calloc(n, sizeof(*a->hooks))) == NULL ||
                  (a->hook_names = calloc(n, sizeof(*a->hook_names))) == NULL ||
                  (a->hook_events = calloc(n, sizeof(*a->hook_events))) == NULL)) {
        rc = pgs_fail(e, PGS_ENOMEM, "alerter: out of memory");
        goto fail;
    }
    char host[WEBHOOK_NAME_MAX + 1];
    if (o->name == NULL)
        host_name(host, sizeof(host));
    for (size_t i = 0; i < n; i++) {
        const coordinator_webhook_config *wc = &cfg->webhooks[i];
        webhook_opts wo = {.name = o->name ? o->name : host,
                           .url = wc->url,
                           .secret = wc->secret,
                           .secret_len = wc->secret_len,
                           .timeout_ms = wc->timeout_ms,
                           .max_attempts = (int)wc->max_attempts,
                           .backoff_ms = o->webhook_backoff_ms};
        if ((a->hook_names[i] = strdup(wc->name)) == NULL) {
            rc = pgs_fail(e, PGS_ENOMEM, "alerter: out of memory");
            goto fail;
        }
        a->hook_events[i] = wc->events;
        if ((rc = webhook_start(&wo, &a->hooks[i], e)) != 0) {
            char msg[sizeof(e->msg)];
            snprintf(msg, sizeof(msg), "%s", e->msg);
            rc = pgs_fail(e, rc, "[webhook %s]: %s", wc->name, msg);
            a->nhooks = i + 1;
            goto fail;
        }
        a->nhooks = i + 1;
    }
    if (pthread_create(&a->thread, NULL, alerter_main, a) != 0) {
        rc = pgs_fail(e, PGS_EIO, "alerter: cannot start its thread");
        goto fail;
    }
    a->thread_started = 1;
    if (a->mon != NULL) {
        monitor_set_source(a->mon, alerter_metrics, a);
        a->registered = 1;
    }
    static const char *const events[] = {WEBHOOK_EVENT_BACKUP_FAILED, WEBHOOK_EVENT_RESTORE_FAILED,
                                         WEBHOOK_EVENT_VERIFY_FAILED, WEBHOOK_EVENT_BACKUP_OVERDUE};
    for (size_t i = 0; i < a->nhooks; i++) {
        char list[128] = "";
        for (size_t k = 0; k < sizeof(events) / sizeof(events[0]); k++)
            if (a->hook_events[i] & coordinator_webhook_event_bit(events[k]))
                snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
                         list[0] ? ", " : "", events[k]);
        log_info("webhook %s: sends %s", a->hook_names[i], list[0] ? list : "no event");
    }
    *out = a;
    return 0;
fail:
    alerter_free(a);
    return rc;
}

void alerter_counts_get(alerter *a, alerter_counts *out)
{
    memset(out, 0, sizeof(*out));
    if (a == NULL)
        return;
    pthread_mutex_lock(&a->mu);
    *out = a->counts;
    pthread_mutex_unlock(&a->mu);
}

void alerter_stop(alerter *a)
{
    if (a == NULL)
        return;
    pthread_mutex_lock(&a->mu);
    a->stop = 1;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
    if (a->thread_started)
        pthread_join(a->thread, NULL);
    if (a->registered)
        monitor_set_source(a->mon, NULL, NULL);
    alerter_free(a);
}
