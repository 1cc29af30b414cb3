/*
 * The metrics registry (see metrics.h).
 *
 * A metric ("family" below, as the exposition format calls it) keeps its series in a chained
 * hash table keyed by the label values joined with NUL bytes: a value cannot hold a NUL, so the
 * joined key is unambiguous, and comparing two keys bytewise orders the series exactly as
 * comparing their values one by one would (NUL sorts before every other byte). The text is
 * sorted only when rendered, so updates stay O(1).
 */
#include "coordinator/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "common/log.h"

typedef struct series {
    struct series *next; /* hash chain */
    uint64_t hash;
    double value;
    size_t keylen;
    char key[]; /* label values joined by NUL, keylen bytes, then a NUL */
} series;

typedef struct family {
    char *name;
    char *help;
    metrics_type type;
    size_t nlabels;
    char *labels[METRICS_LABELS_MAX];
    series **buckets;
    size_t nbuckets; /* a power of two */
    size_t count;
} family;

typedef struct hook {
    void (*fn)(void *arg, metrics *m);
    void *arg;
} hook;

struct metrics {
    pthread_mutex_t mu;                /* everything below but the hooks */
    pthread_mutex_t render_mu;         /* one render (hooks and text) at a time; taken before mu */
    family *fams[METRICS_METRICS_MAX]; /* sorted by name */
    size_t nfams;
    size_t nseries;
    uint64_t rejected;
    int warned;
    hook hooks[METRICS_RENDER_HOOKS_MAX];
    size_t nhooks;
};

/* The joined label values of one update, made before the lock is taken. */
typedef struct label_key {
    size_t nvalues;
    size_t len;
    char buf[METRICS_LABELS_MAX * (METRICS_LABEL_VALUE_MAX + 1)];
} label_key;

/* ---- names and values ---- */

static int name_valid(const char *s, int colon)
{
    size_t n = 0;
    for (const char *p = s; *p != '\0'; p++, n++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                 (colon && c == ':') || (n > 0 && c >= '0' && c <= '9');
        if (!ok || n >= METRICS_NAME_MAX)
            return 0;
    }
    return n > 0;
}

/* Length of the valid UTF-8 sequence at p (1 to 4), or 0 when p does not start one. Only reads
 * bytes up to the first that does not fit, so a NUL ends it. */
static size_t utf8_seq(const unsigned char *p)
{
    unsigned char c = p[0];
    size_t n;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        if (c == 0xe0)
            lo = 0xa0; /* overlong */
        else if (c == 0xed)
            hi = 0x9f; /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        if (c == 0xf0)
            lo = 0x90; /* overlong */
        else if (c == 0xf4)
            hi = 0x8f; /* past U+10FFFF */
    } else
        return 0;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return n;
}

/* Appends value to k: valid UTF-8 kept, each byte that does not start a valid sequence replaced
 * by U+FFFD (Prometheus refuses a whole scrape over one bad label value), and cut before the
 * first character that would take it past METRICS_LABEL_VALUE_MAX bytes. Reads no further
 * than it needs, however long the value is. */
static void key_append(label_key *k, const char *value)
{
    static const char repl[] = "\xef\xbf\xbd";
    const unsigned char *p = (const unsigned char *)value;
    size_t start = k->len;
    while (*p != '\0') {
        size_t n = utf8_seq(p);
        const char *src = n > 0 ? (const char *)p : repl;
        size_t out = n > 0 ? n : 3;
        if (k->len - start + out > METRICS_LABEL_VALUE_MAX)
            break;
        memcpy(k->buf + k->len, src, out);
        k->len += out;
        p += n > 0 ? n : 1;
    }
}

/* Joins label_values into k. 0, or -1 when there are more than METRICS_LABELS_MAX. */
static int key_make(label_key *k, const char *const *label_values)
{
    k->nvalues = 0;
    k->len = 0;
    if (label_values == NULL)
        return 0;
    for (size_t i = 0; label_values[i] != NULL; i++) {
        if (i >= METRICS_LABELS_MAX)
            return -1;
        if (i > 0)
            k->buf[k->len++] = '\0';
        key_append(k, label_values[i]);
        k->nvalues++;
    }
    return 0;
}

static uint64_t key_hash(const char *key, size_t len)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)key[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* ---- the registry (mu held) ---- */

static family *fam_find(metrics *m, const char *name, size_t *pos)
{
    size_t lo = 0, hi = m->nfams;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(m->fams[mid]->name, name);
        if (c == 0) {
            if (pos != NULL)
                *pos = mid;
            return m->fams[mid];
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (pos != NULL)
        *pos = lo;
    return NULL;
}

static series **series_slot(family *f, const char *key, size_t len, uint64_t h)
{
    series **s = &f->buckets[h & (f->nbuckets - 1)];
    for (; *s != NULL; s = &(*s)->next)
        if ((*s)->hash == h && (*s)->keylen == len && memcmp((*s)->key, key, len) == 0)
            break;
    return s;
}

/* Doubles the table when it holds as many series as buckets; a failed grow keeps the old one. */
static void fam_grow(family *f)
{
    if (f->count < f->nbuckets)
        return;
    size_t nb = f->nbuckets * 2;
    series **b = calloc(nb, sizeof(*b));
    if (b == NULL)
        return;
    for (size_t i = 0; i < f->nbuckets; i++) {
        series *s = f->buckets[i];
        while (s != NULL) {
            series *next = s->next;
            s->next = b[s->hash & (nb - 1)];
            b[s->hash & (nb - 1)] = s;
            s = next;
        }
    }
    free(f->buckets);
    f->buckets = b;
    f->nbuckets = nb;
}

/* The series for key, made at 0 when missing. NULL past the bound or out of memory. */
static series *series_get(metrics *m, family *f, const char *key, size_t len)
{
    uint64_t h = key_hash(key, len);
    series **slot = series_slot(f, key, len, h);
    if (*slot != NULL)
        return *slot;
    if (m->nseries >= METRICS_SERIES_MAX)
        return NULL;
    series *s = malloc(sizeof(*s) + len + 1);
    if (s == NULL)
        return NULL;
    s->next = NULL;
    s->hash = h;
    s->value = 0;
    s->keylen = len;
    memcpy(s->key, key, len);
    s->key[len] = '\0';
    *slot = s;
    f->count++;
    m->nseries++;
    fam_grow(f);
    return s;
}

static void fam_clear(metrics *m, family *f)
{
    for (size_t i = 0; i < f->nbuckets; i++) {
        series *s = f->buckets[i];
        while (s != NULL) {
            series *next = s->next;
            free(s);
            s = next;
        }
        f->buckets[i] = NULL;
    }
    m->nseries -= f->count;
    f->count = 0;
}

static void fam_free(metrics *m, family *f)
{
    if (f == NULL)
        return;
    if (f->buckets != NULL)
        fam_clear(m, f);
    free(f->buckets);
    for (size_t i = 0; i < f->nlabels; i++)
        free(f->labels[i]);
    free(f->name);
    free(f->help);
    free(f);
}

static void reject(metrics *m, const char *name, const char *why)
{
    m->rejected++;
    if (!m->warned) {
        m->warned = 1;
        log_warn("metrics: an update of %.*s was left out: %s (later ones are only counted)",
                 METRICS_NAME_MAX, name, why);
    }
}

/* ---- public ---- */

int metrics_new(metrics **out)
{
    *out = NULL;
    metrics *m = calloc(1, sizeof(*m));
    if (m == NULL)
        return PGS_ENOMEM;
    if (pthread_mutex_init(&m->mu, NULL) != 0) {
        free(m);
        return PGS_ENOMEM;
    }
    if (pthread_mutex_init(&m->render_mu, NULL) != 0) {
        pthread_mutex_destroy(&m->mu);
        free(m);
        return PGS_ENOMEM;
    }
    *out = m;
    return 0;
}

void metrics_free(metrics *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->nfams; i++)
        fam_free(m, m->fams[i]);
    pthread_mutex_destroy(&m->render_mu);
    pthread_mutex_destroy(&m->mu);
    free(m);
}

static int labels_same(const family *f, const char *const *label_names)
{
    size_t n = 0;
    if (label_names != NULL)
        for (; label_names[n] != NULL; n++)
            if (n >= f->nlabels || strcmp(f->labels[n], label_names[n]) != 0)
                return 0;
    return n == f->nlabels;
}

int metrics_declare(metrics *m, const char *name, metrics_type type, const char *help,
                    const char *const *label_names)
{
    size_t nlabels = 0;
    if (name == NULL || !name_valid(name, 1) || help == NULL || strlen(help) > METRICS_HELP_MAX ||
        (type != METRICS_COUNTER && type != METRICS_GAUGE))
        return PGS_EINVAL;
    if (label_names != NULL) {
        for (; label_names[nlabels] != NULL; nlabels++) {
            const char *l = label_names[nlabels];
            if (nlabels >= METRICS_LABELS_MAX)
                return PGS_ELIMIT;
            /* "__" is reserved to Prometheus; le and quantile belong to histograms and
             * summaries, which would read them as bucket bounds */
            if (!name_valid(l, 0) || strncmp(l, "__", 2) == 0 || strcmp(l, "le") == 0 ||
                strcmp(l, "quantile") == 0)
                return PGS_EINVAL;
            for (size_t j = 0; j < nlabels; j++)
                if (strcmp(label_names[j], l) == 0)
                    return PGS_EINVAL;
        }
    }

    int rc = 0;
    size_t pos;
    family *f = NULL;
    pthread_mutex_lock(&m->mu);
    family *old = fam_find(m, name, &pos);
    if (old != NULL) {
        rc = old->type == type && labels_same(old, label_names) ? 0 : PGS_EEXIST;
        goto out;
    }
    if (m->nfams >= METRICS_METRICS_MAX) {
        rc = PGS_ELIMIT;
        goto out;
    }
    if (nlabels == 0 && m->nseries >= METRICS_SERIES_MAX) {
        rc = PGS_ELIMIT;
        goto out;
    }
    rc = PGS_ENOMEM;
    if ((f = calloc(1, sizeof(*f))) == NULL)
        goto out;
    f->type = type;
    f->nbuckets = 16;
    if ((f->buckets = calloc(f->nbuckets, sizeof(*f->buckets))) == NULL ||
        (f->name = strdup(name)) == NULL || (f->help = strdup(help)) == NULL)
        goto out;
    for (; f->nlabels < nlabels; f->nlabels++)
        if ((f->labels[f->nlabels] = strdup(label_names[f->nlabels])) == NULL)
            goto out;
    /* the one series of an unlabelled metric exists from the start, as Prometheus clients
     * do, so that "0" is shown rather than nothing */
    if (nlabels == 0 && series_get(m, f, "", 0) == NULL)
        goto out;
    memmove(&m->fams[pos + 1], &m->fams[pos], (m->nfams - pos) * sizeof(m->fams[0]));
    m->fams[pos] = f;
    m->nfams++;
    f = NULL;
    rc = 0;
out:
    fam_free(m, f);
    pthread_mutex_unlock(&m->mu);
    return rc;
}

int metrics_declare_standard(metrics *m)
{
    static const char *const adb_env[] = {"agent", "database", "environment", NULL};
    static const char *const adb_result[] = {"agent", "database", "result", NULL};
    static const char *const adb_reason[] = {"agent", "database", "reason", NULL};
    static const char *const adb[] = {"agent", "database", NULL};
    static const char *const op[] = {"op", NULL};
    static const char *const result[] = {"result", NULL};
    static const char *const webhook_result[] = {"webhook", "result", NULL};
    static const char *const webhook[] = {"webhook", NULL};
    static const struct {
        const char *name;
        metrics_type type;
        const char *const *labels;
        const char *help;
    } std[] = {
        {METRICS_BACKUP_LAST_SUCCESS, METRICS_GAUGE, adb_env,
         "Completion time of the newest complete backup of the database (Unix seconds)."},
        {METRICS_BACKUP_DURATION, METRICS_GAUGE, adb_env,
         "Duration of the newest complete backup of the database (seconds)."},
        {METRICS_BACKUP_BYTES, METRICS_GAUGE, adb_env,
         "Stored size of the newest complete backup of the database (bytes, encrypted)."},
        {METRICS_BACKUPS, METRICS_COUNTER, adb_result,
         "Backups that ended, by result (complete or failed)."},
        {METRICS_BACKUP_FAILURES, METRICS_COUNTER, adb_reason, "Failed backups by reason."},
        {METRICS_BACKUP_OVERDUE, METRICS_GAUGE, adb,
         "1 when the database has no complete backup within its expected interval, else 0."},
        {METRICS_AGENTS_CONNECTED, METRICS_GAUGE, NULL, "Agents connected now."},
        {METRICS_STORAGE_ERRORS, METRICS_COUNTER, op,
         "Storage operations that failed after their retries, by operation."},
        {METRICS_STORAGE_RETRIES, METRICS_COUNTER, op,
         "Storage requests retried after a transient error, by operation."},
        {METRICS_JOBS_QUEUED, METRICS_GAUGE, NULL, "Jobs waiting to be dispatched."},
        {METRICS_JOBS_RUNNING, METRICS_GAUGE, NULL, "Jobs in progress."},
        {METRICS_RESTORES, METRICS_COUNTER, result,
         "Restores that ended, by result (complete or failed)."},
        {METRICS_VERIFICATIONS, METRICS_COUNTER, result,
         "Verifications that ended, by result (complete or failed)."},
        {METRICS_WEBHOOK_DELIVERIES, METRICS_COUNTER, webhook_result,
         "Webhook events by webhook and outcome: delivered, failed (refused or out of attempts), "
         "dropped (queue full or shutdown)."},
        {METRICS_WEBHOOK_RETRIES, METRICS_COUNTER, webhook,
         "Webhook delivery attempts after the first one of an event, by webhook."},
    };
    for (size_t i = 0; i < sizeof(std) / sizeof(std[0]); i++) {
        int rc = metrics_declare(m, std[i].name, std[i].type, std[i].help, std[i].labels);
        if (rc != 0)
            return rc;
    }
    return 0;
}

enum { OP_ADD, OP_SET };

static void update(metrics *m, int op, const char *name, const char *const *label_values, double v)
{
    label_key *k = malloc(sizeof(*k)); /* 8 KiB: kept off the callers' stacks */
    const char *why = NULL;
    if (name == NULL)
        name = "(null)";
    /* the values are checked and joined before the lock: the other threads need not wait */
    int too_many = k != NULL && key_make(k, label_values) != 0;
    pthread_mutex_lock(&m->mu);
    family *f = fam_find(m, name, NULL);
    if (k == NULL)
        why = "out of memory";
    else if (f == NULL)
        why = "not declared";
    else if (too_many || k->nvalues != f->nlabels)
        why = "wrong number of label values";
    else if (op == OP_ADD && f->type == METRICS_COUNTER && !(v >= 0))
        why = "a counter cannot go down";
    else {
        series *s = series_get(m, f, k->buf, k->len);
        if (s == NULL)
            why = m->nseries >= METRICS_SERIES_MAX ? "too many series" : "out of memory";
        else if (op == OP_ADD)
            s->value += v;
        else
            s->value = v;
    }
    if (why != NULL)
        reject(m, name, why);
    pthread_mutex_unlock(&m->mu);
    free(k);
}

void metrics_add(metrics *m, const char *name, const char *const *label_values, double v)
{
    update(m, OP_ADD, name, label_values, v);
}

void metrics_set(metrics *m, const char *name, const char *const *label_values, double v)
{
    update(m, OP_SET, name, label_values, v);
}

void metrics_remove_series(metrics *m, const char *name, const char *const *label_values)
{
    label_key *k = malloc(sizeof(*k));
    if (k == NULL || name == NULL || key_make(k, label_values) != 0) {
        free(k);
        return;
    }
    pthread_mutex_lock(&m->mu);
    family *f = fam_find(m, name, NULL);
    if (f != NULL && k->nvalues == f->nlabels) {
        series **slot = series_slot(f, k->buf, k->len, key_hash(k->buf, k->len));
        if (*slot != NULL) {
            series *s = *slot;
            *slot = s->next;
            free(s);
            f->count--;
            m->nseries--;
        }
    }
    pthread_mutex_unlock(&m->mu);
    free(k);
}

void metrics_clear(metrics *m, const char *name)
{
    if (name == NULL)
        return;
    pthread_mutex_lock(&m->mu);
    family *f = fam_find(m, name, NULL);
    if (f != NULL) {
        if (f->nlabels == 0) {
            series *s = series_get(m, f, "", 0);
            if (s != NULL)
                s->value = 0;
        } else {
            fam_clear(m, f);
        }
    }
    pthread_mutex_unlock(&m->mu);
}

uint64_t metrics_rejected(metrics *m)
{
    pthread_mutex_lock(&m->mu);
    uint64_t n = m->rejected;
    pthread_mutex_unlock(&m->mu);
    return n;
}

size_t metrics_series_count(metrics *m)
{
    pthread_mutex_lock(&m->mu);
    size_t n = m->nseries;
    pthread_mutex_unlock(&m->mu);
    return n;
}

int metrics_on_render(metrics *m, void (*fn)(void *arg, metrics *m), void *arg)
{
    int rc = 0;
    pthread_mutex_lock(&m->render_mu);
    if (m->nhooks >= METRICS_RENDER_HOOKS_MAX)
        rc = PGS_ELIMIT;
    else
        m->hooks[m->nhooks++] = (hook){fn, arg};
    pthread_mutex_unlock(&m->render_mu);
    return rc;
}

/* ---- rendering ---- */

size_t metrics_format_value(double v, char *out, size_t cap)
{
    int n;
    if (isnan(v))
        n = snprintf(out, cap, "NaN");
    else if (isinf(v))
        n = snprintf(out, cap, "%s", v > 0 ? "+Inf" : "-Inf");
    else {
        /* the shortest of 15, 16 or 17 significant digits that reads back as v: counts and
         * timestamps print as plain integers, 0.1 as 0.1 */
        for (int prec = 15;; prec++) {
            n = snprintf(out, cap, "%.*g", prec, v);
            if (prec == 17 || strtod(out, NULL) == v)
                break;
        }
    }
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

typedef struct textbuf {
    char *data;
    size_t len;
    size_t cap;
    int failed;
} textbuf;

static void tb_put(textbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap > 0 ? b->cap : 4096;
        while (b->len + n + 1 > cap)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (d == NULL) {
            b->failed = 1;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void tb_str(textbuf *b, const char *s)
{
    tb_put(b, s, strlen(s));
}

/* Writes s (n bytes) with backslash and newline escaped, and the double quote too when quote
 * (label values; HELP text leaves quotes as they are). */
static void tb_escaped(textbuf *b, const char *s, size_t n, int quote)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        const char *esc = s[i] == '\\'           ? "\\\\"
                          : s[i] == '\n'         ? "\\n"
                          : quote && s[i] == '"' ? "\\\""
                                                 : NULL;
        if (esc == NULL)
            continue;
        tb_put(b, s + run, i - run);
        tb_put(b, esc, 2);
        run = i + 1;
    }
    tb_put(b, s + run, n - run);
}

static int series_cmp(const void *a, const void *b)
{
    const series *x = *(series *const *)a, *y = *(series *const *)b;
    size_t n = x->keylen < y->keylen ? x->keylen : y->keylen;
    int c = memcmp(x->key, y->key, n);
    if (c != 0)
        return c;
    return x->keylen < y->keylen ? -1 : x->keylen > y->keylen;
}

static int render_family(textbuf *b, const family *f)
{
    char num[40];
    tb_str(b, "# HELP ");
    tb_str(b, f->name);
    tb_str(b, " ");
    tb_escaped(b, f->help, strlen(f->help), 0);
    tb_str(b, "\n# TYPE ");
    tb_str(b, f->name);
    tb_str(b, f->type == METRICS_COUNTER ? " counter\n" : " gauge\n");
    if (f->count == 0)
        return 0;

    series **v = malloc(f->count * sizeof(*v));
    if (v == NULL)
        return PGS_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < f->nbuckets; i++)
        for (series *s = f->buckets[i]; s != NULL; s = s->next)
            v[n++] = s;
    qsort(v, n, sizeof(*v), series_cmp);
    for (size_t i = 0; i < n; i++) {
        const series *s = v[i];
        tb_str(b, f->name);
        if (f->nlabels > 0) {
            const char *p = s->key;
            tb_str(b, "{");
            for (size_t l = 0; l < f->nlabels; l++) {
                size_t vl = strlen(p); /* each value ends at its NUL separator */
                if (l > 0)
                    tb_str(b, ",");
                tb_str(b, f->labels[l]);
                tb_str(b, "=\"");
                tb_escaped(b, p, vl, 1);
                tb_str(b, "\"");
                p += vl + 1;
            }
            tb_str(b, "}");
        }
        tb_str(b, " ");
        metrics_format_value(s->value, num, sizeof(num));
        tb_str(b, num);
        tb_str(b, "\n");
    }
    free(v);
    return 0;
}

int metrics_render(metrics *m, char **text, size_t *len)
{
    textbuf b = {0};
    int rc = 0;
    *text = NULL;
    *len = 0;
    pthread_mutex_lock(&m->render_mu);
    /* hooks run without mu: they update through the public calls, which take it */
    for (size_t i = 0; i < m->nhooks; i++)
        m->hooks[i].fn(m->hooks[i].arg, m);
    pthread_mutex_lock(&m->mu);
    tb_put(&b, "", 0); /* an empty registry is "" rather than NULL */
    for (size_t i = 0; i < m->nfams && rc == 0; i++)
        rc = render_family(&b, m->fams[i]);
    pthread_mutex_unlock(&m->mu);
    pthread_mutex_unlock(&m->render_mu);
    if (rc == 0 && b.failed)
        rc = PGS_ENOMEM;
    if (rc != 0) {
        free(b.data);
        return rc;
    }
    *text = b.data;
    *len = b.len;
    return 0;
}
