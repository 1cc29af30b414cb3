/*
 * pgship agents | backup | ls | show | fetch | restore | sync | restores: the operator's side of
 * the coordinator's HTTP API (docs/api.md), over libcurl.
 *
 * The token is a secret: it comes from a file (--token-file) or the environment (PGSHIP_TOKEN),
 * because argv is visible to every user of the host; --token exists for one-off use and says so.
 * It goes into exactly one header and is wiped from memory when the command ends.
 *
 * What the coordinator sends is treated as untrusted text: answers are bounded in size, every
 * field is checked for its type before use, and control characters are replaced before anything
 * reaches the terminal.
 *
 * fetch writes like every pgship output file: a temporary file beside the target, renamed into
 * place only when the bytes' SHA-256 (computed while writing) equals the catalog's, which the
 * coordinator sends as X-Pgship-Sha256; otherwise the temporary file is removed.
 */
#include "client/remote.h"
#include "client/remote_internal.h"
#include "client/commands.h"

#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>

#include "common/fsutil.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/progress.h"
#include "common/sha256.h"
#include "common/spawn.h"

#define TOKEN_MAX 4096
#define JSON_MAX (64u * 1024 * 1024) /* the largest listing is well under this */
#define ERROR_BODY_MAX (64u * 1024)
#define ID_MAX 31
#define WAIT_POLL_MS 1000
/* The first minute is asked about more often: short backups end sooner for scripts. */
#define WAIT_POLL_FAST_MS 200
#define WAIT_FAST_S 60
#define WAIT_LINE_S 5   /* --wait without a terminal: a progress line this often */
#define WAIT_RETRY_S 30 /* --wait keeps polling through an outage this long */
#define LIST_MAX 10000  /* as the API's API_LIST_MAX */
#define LABEL_MAX 128   /* as the catalog's CATALOG_LABEL_MAX */
#define VERIFY_TEXT_MAX 1100 /* a verify_result (up to 1008 bytes) and its time */
#define LS_NOTE_MAX 100 /* ls shows this much of a failure's reason (show has all of it) */

/* ---- common options ---- */


/* 1 when ch was a common option (recorded in c). */
int common_opt(common *c, int ch, const char *arg)
{
    switch (ch) {
    case OPT_URL:
        c->url = arg;
        return 1;
    case OPT_TOKEN_FILE:
        c->token_file = arg;
        return 1;
    case OPT_TOKEN:
        c->token_arg = arg;
        return 1;
    case OPT_JSON:
        c->json = 1;
        return 1;
    }
    return 0;
}

/* ---- the connection ---- */


static int token_ok(const char *t, size_t n)
{
    if (n == 0 || n > TOKEN_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (t[i] <= 0x20 || t[i] >= 0x7f) /* a CR or LF would end the header */
            return 0;
    return 1;
}

/* Reads the token from path into a malloc'd string (trailing whitespace dropped). */
static char *token_read_file(const char *path, pgs_error *e)
{
    char *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0) {
        pgs_fail(e, PGS_EIO, "cannot read the token file %s: %s", path, strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > TOKEN_MAX + 64) {
        pgs_fail(e, PGS_EINVAL, "the token file %s is not a small regular file", path);
        goto out;
    }
    if ((st.st_mode & 077) != 0)
        log_warn("the token file %s can be read by other users (chmod 600 %s)", path, path);
    buf = sodium_malloc(TOKEN_MAX + 65);
    if (buf == NULL) {
        pgs_fail(e, PGS_ENOMEM, "out of memory");
        goto out;
    }
    ssize_t n = fs_read_full(fd, buf, TOKEN_MAX + 64);
    if (n < 0) {
        pgs_fail(e, PGS_EIO, "cannot read the token file %s: %s", path, strerror(errno));
        goto fail;
    }
    while (n > 0 &&
           (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '\t'))
        n--;
    buf[n] = '\0';
    if (!token_ok(buf, (size_t)n)) {
        pgs_fail(e, PGS_EINVAL,
                 "the token file %s must hold one line of printable characters without spaces",
                 path);
        goto fail;
    }
    goto out;
fail:
    sodium_free(buf);
    buf = NULL;
out:
    close(fd);
    return buf;
}

void remote_close(remote *r)
{
    if (r->auth != NULL)
        sodium_free(r->auth);
    r->auth = NULL;
    if (r->curl != NULL)
        curl_easy_cleanup(r->curl);
    r->curl = NULL;
}

/* Resolves the URL and token (options, then environment) and prepares libcurl. Returns an exit
 * status: OK, or USAGE with the reason logged. */
int remote_open(remote *r, const common *c)
{
    memset(r, 0, sizeof(*r));
    r->json = c->json;
    pgs_error e = {0};
    if (sodium_init() < 0) {
        log_error("libsodium failed to initialize");
        return REMOTE_EXIT_FAILED;
    }
    const char *url = c->url;
    if (url == NULL)
        url = getenv("PGSHIP_URL");
    if (url == NULL || url[0] == '\0')
        url = REMOTE_DEFAULT_URL;
    size_t ul = strlen(url);
    int ok = ul <= URL_MAX && (strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0);
    for (size_t i = 0; ok && i < ul; i++)
        ok = url[i] > 0x20 && url[i] < 0x7f;
    if (!ok) {
        log_error("the coordinator's URL must be http://HOST:PORT or https://... (got \"%.100s\")",
                  url);
        return REMOTE_EXIT_USAGE;
    }
    while (ul > 0 && url[ul - 1] == '/')
        ul--;
    snprintf(r->base, sizeof(r->base), "%.*s", (int)ul, url);

    char *token = NULL;
    const char *env_file = getenv("PGSHIP_TOKEN_FILE"), *env_token = getenv("PGSHIP_TOKEN");
    if (c->token_file != NULL) {
        token = token_read_file(c->token_file, &e);
    } else if (c->token_arg != NULL || (env_token != NULL && env_token[0] != '\0')) {
        const char *t = c->token_arg != NULL ? c->token_arg : env_token;
        if (c->token_arg != NULL)
            log_warn("--token puts the token where every user of this host can read it (ps); "
                     "use --token-file FILE or PGSHIP_TOKEN instead");
        if (!token_ok(t, strlen(t))) {
            pgs_fail(&e, PGS_EINVAL, "the token must be printable characters without spaces");
        } else if ((token = sodium_malloc(strlen(t) + 1)) == NULL) {
            pgs_fail(&e, PGS_ENOMEM, "out of memory");
        } else {
            memcpy(token, t, strlen(t) + 1);
        }
    } else if (env_file != NULL && env_file[0] != '\0') {
        token = token_read_file(env_file, &e);
    } else {
        pgs_fail(&e, PGS_EINVAL,
                 "no API token: use --token-file FILE or set PGSHIP_TOKEN (or PGSHIP_TOKEN_FILE)");
    }
    if (token == NULL) {
        log_error("%s", e.msg);
        return REMOTE_EXIT_USAGE;
    }
    size_t alen = strlen(token) + 32;
    r->auth = sodium_malloc(alen);
    if (r->auth != NULL)
        snprintf(r->auth, alen, "Authorization: Bearer %s", token);
    sodium_free(token);
    r->curl = curl_easy_init();
    if (r->auth == NULL || r->curl == NULL) {
        log_error("out of memory");
        remote_close(r);
        return REMOTE_EXIT_FAILED;
    }
    return REMOTE_EXIT_OK;
}

/* A bounded response body. */
typedef struct resp_body {
    char *data;
    size_t len;
    size_t max;
    int over;
} resp_body;

static size_t body_write(char *p, size_t sz, size_t n, void *arg)
{
    resp_body *b = arg;
    size_t len = sz * n;
    if (b->len + len > b->max) {
        b->over = 1;
        return 0;
    }
    char *d = realloc(b->data, b->len + len + 1);
    if (d == NULL)
        return 0;
    memcpy(d + b->len, p, len);
    b->data = d;
    b->len += len;
    b->data[b->len] = '\0';
    return len;
}

static int progress_cb(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)arg, (void)dt, (void)dn, (void)ut, (void)un;
    return sig_stop_requested() != 0; /* non-zero aborts the transfer */
}

/* Options shared by every request: the header list must live until the transfer ends. */
static struct curl_slist *remote_prepare(remote *r, const char *method, const char *path,
                                         const char *json_body)
{
    char url[URL_MAX + 256];
    snprintf(url, sizeof(url), "%s%s", r->base, path);
    curl_easy_reset(r->curl);
    struct curl_slist *h = curl_slist_append(NULL, r->auth);
    if (h != NULL && json_body != NULL)
        h = curl_slist_append(h, "Content-Type: application/json");
    if (h != NULL)
        h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(r->curl, CURLOPT_URL, url);
    curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(r->curl, CURLOPT_USERAGENT, "pgship/" PGSHIP_VERSION);
    curl_easy_setopt(r->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(r->curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(r->curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(r->curl, CURLOPT_XFERINFOFUNCTION, progress_cb);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(r->curl, CURLOPT_POST, 1L);
        curl_easy_setopt(r->curl, CURLOPT_POSTFIELDS, json_body);
        curl_easy_setopt(r->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(json_body));
    }
    return h;
}

/* Wipes the header that holds the token before the list is freed. */
static void headers_free(struct curl_slist *h)
{
    for (struct curl_slist *p = h; p != NULL; p = p->next)
        sodium_memzero(p->data, strlen(p->data));
    curl_slist_free_all(h);
}

/* The exit status and message for a transfer that did not complete. */
static int transport_error(remote *r, CURLcode cc, const char *errbuf)
{
    if (cc == CURLE_ABORTED_BY_CALLBACK && sig_stop_requested())
        return 128 + sig_stop_requested();
    snprintf(r->last_err, sizeof(r->last_err), "cannot reach the coordinator at %s: %s", r->base,
             errbuf[0] != '\0' ? errbuf : curl_easy_strerror(cc));
    if (!r->quiet)
        log_error("%s", r->last_err);
    return REMOTE_EXIT_REACH;
}

/* Prints what an error answer says, and returns its exit status. */
static int http_error(const remote *r, long status, const resp_body *b)
{
    if (status == 401) {
        log_error("the coordinator refused the token (check --token-file or PGSHIP_TOKEN)");
        return REMOTE_EXIT_REACH;
    }
    json_t *j = b->data != NULL ? json_loadb(b->data, b->len, 0, NULL) : NULL;
    const char *msg = json_string_value(json_object_get(j, "error"));
    if (msg == NULL) {
        log_error("%s answered HTTP %ld, not as a pgship coordinator would", r->base, status);
        json_decref(j);
        return REMOTE_EXIT_REACH;
    }
    char clean[1024];
    size_t k = 0;
    for (size_t i = 0; msg[i] != '\0' && k + 1 < sizeof(clean); i++)
        clean[k++] = ((unsigned char)msg[i] < 0x20 || msg[i] == 0x7f) ? '?' : msg[i];
    clean[k] = '\0';
    log_error("%s", clean);
    json_decref(j);
    return REMOTE_EXIT_FAILED;
}

/* One JSON request. On 2xx *out is the answer (an object) and the status is in *status. */
int remote_json(remote *r, const char *method, const char *path, const char *json_body,
                       json_t **out, long *status)
{
    *out = NULL;
    resp_body b = {.max = JSON_MAX};
    char errbuf[CURL_ERROR_SIZE] = "";
    struct curl_slist *h = remote_prepare(r, method, path, json_body);
    curl_easy_setopt(r->curl, CURLOPT_WRITEFUNCTION, body_write);
    curl_easy_setopt(r->curl, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(r->curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(r->curl, CURLOPT_TIMEOUT, 120L);
    CURLcode cc = curl_easy_perform(r->curl);
    headers_free(h);
    int rc = REMOTE_EXIT_OK;
    long st = 0;
    r->last_status = 0;
    if (cc != CURLE_OK) {
        rc = b.over ? (log_error("the coordinator's answer is larger than %u bytes", JSON_MAX),
                       REMOTE_EXIT_REACH)
                    : transport_error(r, cc, errbuf);
        goto out;
    }
    curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &st);
    *status = st;
    r->last_status = st;
    if (st < 200 || st > 299) {
        rc = http_error(r, st, &b);
        goto out;
    }
    json_error_t je;
    *out = b.data != NULL ? json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES, &je) : NULL;
    if (!json_is_object(*out)) {
        json_decref(*out);
        *out = NULL;
        log_error("%s answered with something other than the API's JSON", r->base);
        rc = REMOTE_EXIT_REACH;
    }
out:
    free(b.data);
    return rc;
}

/* ---- output ---- */

/* Text from the coordinator, safe for a terminal: control characters become '?'. NULL and ""
 * become "-". Returns a new string. */
char *clean_text(const char *s)
{
    if (s == NULL || s[0] == '\0')
        return strdup("-");
    char *o = strdup(s);
    for (char *p = o; p != NULL && *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    return o;
}

const char *jstr(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

/* "2026-11-21T16:05:29.123Z" -> "2026-11-21 16:05:29" (other text as it is). */
void short_time(const char *t, char *out, size_t cap)
{
    if (t == NULL || t[0] == '\0') {
        snprintf(out, cap, "-");
        return;
    }
    if (strlen(t) >= 19 && t[10] == 'T') {
        snprintf(out, cap, "%.10s %.8s", t, t + 11);
        return;
    }
    snprintf(out, cap, "%s", t);
}

void print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s != NULL)
        printf("%s\n", s);
    free(s);
}


static size_t text_width(const char *s)
{
    size_t w = 0;
    for (; *s != '\0'; s++)
        w += ((unsigned char)*s & 0xc0) != 0x80;
    return w;
}

void table_row(table *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        char **c = realloc(t->cells, cap * t->ncols * sizeof(*c));
        if (c == NULL)
            return;
        t->cells = c;
        t->cap = cap;
    }
    for (size_t i = 0; i < t->ncols; i++)
        t->cells[t->nrows * t->ncols + i] = clean_text(cells[i]);
    t->nrows++;
}

void table_free(table *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    t->cells = NULL;
    t->nrows = t->cap = 0;
}

void table_print(table *t)
{
    size_t w[TABLE_COLS] = {0};
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r * t->ncols + c];
            size_t x = s != NULL ? text_width(s) : 0;
            if (x > w[c])
                w[c] = x;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *s = t->cells[r * t->ncols + c];
            if (s == NULL)
                s = "";
            if (c + 1 == t->ncols) {
                printf("%s\n", s);
            } else {
                printf("%s", s);
                for (size_t k = text_width(s); k < w[c] + 2; k++)
                    putchar(' ');
            }
        }
    }
    table_free(t);
}

void size_text(json_t *v, char *out, size_t cap)
{
    if (json_is_integer(v) && json_integer_value(v) >= 0)
        fs_human_bytes((uint64_t)json_integer_value(v), out, cap);
    else
        snprintf(out, cap, "-");
}

void elapsed_text(double s, char *out, size_t cap)
{
    long t = s > 0 ? (long)s : 0;
    if (t >= 3600)
        snprintf(out, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(out, cap, "%02ld:%02ld", t / 60, t % 60);
}

/* ---- argument checks ---- */

/* Backup ids go into URL paths: letters, digits and '-' only. */
int id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'z') ||
              (id[i] >= 'A' && id[i] <= 'Z') || id[i] == '-'))
            return 0;
    return 1;
}

/* "AGENT/DB" (db_required) or "AGENT[/DB]" into the two buffers; 0 or -1 (logged). */
int split_target(const char *s, char *agent, char *db, size_t cap, int db_required)
{
    const char *slash = strchr(s, '/');
    size_t al = slash != NULL ? (size_t)(slash - s) : strlen(s);
    if (al >= cap || (slash != NULL && strlen(slash + 1) >= cap)) {
        log_error("\"%.80s\": names are at most 63 characters", s);
        return -1;
    }
    snprintf(agent, cap, "%.*s", (int)al, s);
    snprintf(db, cap, "%s", slash != NULL ? slash + 1 : "");
    if (!key_name_valid(agent) || (slash != NULL && !key_name_valid(db)) ||
        (db_required && slash == NULL)) {
        log_error("\"%.80s\" is not %s (names: 1-63 of A-Z a-z 0-9 . _ -, not starting with . "
                  "or -)",
                  s, db_required ? "AGENT/DATABASE" : "AGENT or AGENT/DATABASE");
        return -1;
    }
    return 0;
}

/* ---- pgship agents ---- */

static void agents_usage(FILE *f)
{
    fprintf(f, "usage: pgship agents [--json] [--url URL] [--token-file FILE]\n"
               "\n"
               "Lists every agent the coordinator knows: whether it is connected now, its\n"
               "version, its databases (with environment and PostgreSQL version) and its jobs.\n"
               "\n" COMMON_USAGE);
}


/* The option loop every command shares: -h/--help, the common options, the command's own
 * (own may be NULL), then between min_args and max_args operands. Returns -1 to go on, or the
 * exit status to return. */
int parse_args(int argc, char **argv, const char *shortopts, const struct option *lo,
                      void (*usage)(FILE *), own_opt_fn own, void *ctx, common *c, int min_args,
                      int max_args)
{
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, shortopts, lo, NULL)) != -1) {
        if (ch == 'h') {
            usage(stdout);
            return REMOTE_EXIT_OK;
        }
        int rc = own != NULL ? own(ctx, ch, optarg) : -1;
        if (rc > 0)
            return rc;
        if (rc < 0 && !common_opt(c, ch, optarg)) {
            usage(stderr);
            return REMOTE_EXIT_USAGE;
        }
    }
    if (argc - optind < min_args || argc - optind > max_args) {
        usage(stderr);
        return REMOTE_EXIT_USAGE;
    }
    return -1;
}

/* A whole decimal number in [min, max] from an option's argument. */
int parse_count(const char *arg, unsigned long min, unsigned long max, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(arg, &end, 10);
    if (arg[0] < '0' || arg[0] > '9' || *end != '\0' || errno != 0 || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int cmd_agents(int argc, char **argv)
{
    static const struct option lo[] = {COMMON_LONG_OPTIONS, {NULL, 0, NULL, 0}};
    common c = {0};
    int st0 = parse_args(argc, argv, "h", lo, agents_usage, NULL, NULL, &c, 0, 0);
    if (st0 >= 0)
        return st0;
    remote r;
    int rc = remote_open(&r, &c);
    if (rc != 0)
        return rc;
    json_t *j = NULL;
    long st;
    rc = remote_json(&r, "GET", "/v1/agents", NULL, &j, &st);
    if (rc != 0)
        goto out;
    json_t *agents = json_object_get(j, "agents");
    if (!json_is_array(agents)) {
        log_error("%s answered without an agent list", r.base);
        rc = REMOTE_EXIT_REACH;
        goto out;
    }
    if (c.json) { /* the array: scripts iterate it */
        print_json(agents);
        goto out;
    }
    table t = {.ncols = 6};
    const char *head[] = {"NAME", "STATE", "VERSION", "SINCE", "JOBS", "DATABASES"};
    table_row(&t, head);
    json_t *a;
    size_t i;
    json_array_foreach(agents, i, a)
    {
        int conn = json_is_true(json_object_get(a, "connected"));
        char since[32], jobs[16], dbs[2048] = "";
        short_time(jstr(a, conn ? "connected_at" : "last_seen"), since, sizeof(since));
        snprintf(jobs, sizeof(jobs), "%zu", json_array_size(json_object_get(a, "jobs")));
        json_t *d;
        size_t k, used = 0;
        json_array_foreach(json_object_get(a, "databases"), k, d)
        {
            const char *env = jstr(d, "environment"), *ver = jstr(d, "server_version");
            int n = snprintf(dbs + used, sizeof(dbs) - used, "%s%s (%s%s%s)", k ? ", " : "",
                             jstr(d, "name") ? jstr(d, "name") : "?", env ? env : "?",
                             ver ? ", " : "", ver ? ver : "");
            if (n < 0 || (size_t)n >= sizeof(dbs) - used)
                break;
            used += (size_t)n;
        }
        const char *row[] = {
            jstr(a, "name"), conn ? "connected" : "offline", jstr(a, "version"), since, jobs, dbs};
        table_row(&t, row);
    }
    if (t.nrows == 1) {
        table_free(&t);
        fprintf(stderr, "pgship: the coordinator knows no agents yet\n");
    } else {
        table_print(&t);
    }
out:
    json_decref(j);
    remote_close(&r);
    return rc;
}

/* ---- pgship ls ---- */

static void ls_usage(FILE *f)
{
    fprintf(f, "usage: pgship ls [AGENT[/DATABASE]] [--state STATE] [--environment ENV]\n"
               "                 [--limit N] [--json] [--url URL] [--token-file FILE]\n"
               "\n"
               "Lists backups, newest first. FLAGS: P pinned (no prune deletes it), S taken by\n"
               "a schedule, V verified ok, X verification failed. NOTE: the label, and for a\n"
               "failed backup why it failed (\"missed: ...\" for a scheduled run that did not\n"
               "happen).\n"
               "\n"
               "  -s, --state STATE     queued, running, complete, failed or any (default any)\n"
               "  -e, --environment ENV only this environment's backups\n"
               "  -n, --limit N         at most N backups (1-10000; default 100)\n" COMMON_USAGE);
}

typedef struct ls_opts {
    const char *state, *envname;
    unsigned long limit;
} ls_opts;

static int ls_opt(void *ctx, int ch, const char *arg)
{
    ls_opts *o = ctx;
    if (ch == 's')
        o->state = arg;
    else if (ch == 'e')
        o->envname = arg;
    else if (ch != 'n')
        return -1;
    else if (parse_count(arg, 1, LIST_MAX, &o->limit) != 0) {
        log_error("--limit takes a number from 1 to %d", LIST_MAX);
        return REMOTE_EXIT_USAGE;
    }
    return 0;
}

/* The FLAGS cell of a backup: P pinned, S scheduled, V verified ok, X verification failed;
 * "-" for none. */
static void backup_flags(json_t *b, char *out, size_t cap)
{
    size_t n = 0;
    const char *vr = jstr(b, "verify_result");
    if (json_is_true(json_object_get(b, "pinned")) && n + 1 < cap)
        out[n++] = 'P';
    if (jstr(b, "scheduled") != NULL && n + 1 < cap)
        out[n++] = 'S';
    if (vr != NULL && n + 1 < cap)
        out[n++] = strcmp(vr, "ok") == 0 ? 'V' : 'X';
    if (n == 0 && n + 1 < cap)
        out[n++] = '-';
    out[n] = '\0';
}

/* The NOTE cell: the label; for a failed backup its reason, cut to LS_NOTE_MAX bytes (at a
 * character boundary), after the label when there is one. */
static void backup_note(json_t *b, char *out, size_t cap)
{
    const char *label = jstr(b, "label"), *err = jstr(b, "error"), *state = jstr(b, "state");
    if (err == NULL || state == NULL || strcmp(state, "failed") != 0) {
        snprintf(out, cap, "%s", label != NULL ? label : "");
        return;
    }
    size_t n = strlen(err);
    int cut = n > LS_NOTE_MAX;
    if (cut) {
        n = LS_NOTE_MAX;
        while (n > 0 && ((unsigned char)err[n] & 0xc0) == 0x80)
            n--;
    }
    snprintf(out, cap, "%s%s%.*s%s", label != NULL ? label : "", label != NULL ? ": " : "",
             (int)n, err, cut ? "..." : "");
}

int cmd_ls(int argc, char **argv)
{
    static const struct option lo[] = {{"state", required_argument, NULL, 's'},
                                       {"environment", required_argument, NULL, 'e'},
                                       {"limit", required_argument, NULL, 'n'},
                                       COMMON_LONG_OPTIONS,
                                       {NULL, 0, NULL, 0}};
    common c = {0};
    ls_opts o = {0};
    int st0 = parse_args(argc, argv, "s:e:n:h", lo, ls_usage, ls_opt, &o, &c, 0, 1);
    if (st0 >= 0)
        return st0;
    const char *state = o.state, *envname = o.envname;
    unsigned long limit = o.limit;
    static const char *const states[] = {"queued", "running", "complete", "failed", "any"};
    int state_ok = state == NULL;
    for (size_t i = 0; !state_ok && i < 5; i++)
        state_ok = strcmp(state, states[i]) == 0;
    if (!state_ok) {
        log_error("--state takes queued, running, complete, failed or any");
        return REMOTE_EXIT_USAGE;
    }
    if (envname != NULL && !key_name_valid(envname)) {
        log_error("\"%.80s\" is not an environment name", envname);
        return REMOTE_EXIT_USAGE;
    }
    char agent[64] = "", db[64] = "";
    if (optind < argc && split_target(argv[optind], agent, db, sizeof(agent), 0) != 0)
        return REMOTE_EXIT_USAGE;

    char path[512];
    int n = snprintf(path, sizeof(path), "/v1/backups?limit=%lu", limit ? limit : 100);
    if (agent[0])
        n += snprintf(path + n, sizeof(path) - (size_t)n, "&agent=%s", agent);
    if (db[0])
        n += snprintf(path + n, sizeof(path) - (size_t)n, "&database=%s", db);
    if (envname != NULL)
        n += snprintf(path + n, sizeof(path) - (size_t)n, "&environment=%s", envname);
    if (state != NULL)
        snprintf(path + n, sizeof(path) - (size_t)n, "&state=%s", state);

    remote r;
    int rc = remote_open(&r, &c);
    if (rc != 0)
        return rc;
    json_t *j = NULL;
    long st;
    rc = remote_json(&r, "GET", path, NULL, &j, &st);
    if (rc != 0)
        goto out;
    json_t *list = json_object_get(j, "backups");
    if (!json_is_array(list)) {
        log_error("%s answered without a backup list", r.base);
        rc = REMOTE_EXIT_REACH;
        goto out;
    }
    if (c.json) { /* the array: scripts iterate it; "more" is said on stderr */
        print_json(list);
        if (json_is_true(json_object_get(j, "more")))
            fprintf(stderr, "pgship: more backups match; --limit N shows more (up to %d)\n",
                    LIST_MAX);
        goto out;
    }
    table t = {.ncols = 8};
    const char *head[] = {"ID",   "AGENT/DATABASE", "ENV",   "STATE",
                          "SIZE", "CREATED",        "FLAGS", "NOTE"};
    table_row(&t, head);
    json_t *b;
    size_t i;
    json_array_foreach(list, i, b)
    {
        char target[160], size[32], created[32], flags[8], note[LS_NOTE_MAX + 160];
        snprintf(target, sizeof(target), "%s/%s", jstr(b, "agent") ? jstr(b, "agent") : "?",
                 jstr(b, "database") ? jstr(b, "database") : "?");
        size_text(json_object_get(b, "size_bytes"), size, sizeof(size));
        short_time(jstr(b, "created_at"), created, sizeof(created));
        backup_flags(b, flags, sizeof(flags));
        backup_note(b, note, sizeof(note));
        const char *row[] = {jstr(b, "id"), target,  jstr(b, "environment"), jstr(b, "state"),
                             size,          created, flags,                  note};
        table_row(&t, row);
    }
    if (t.nrows == 1) {
        table_free(&t);
        fprintf(stderr, "pgship: no backups match\n");
    } else {
        table_print(&t);
    }
    fflush(stdout);
    if (json_is_true(json_object_get(j, "more")))
        fprintf(stderr, "pgship: more backups match; --limit N shows more (up to %d)\n", LIST_MAX);
out:
    json_decref(j);
    remote_close(&r);
    return rc;
}

/* ---- pgship show ---- */

static void show_usage(FILE *f)
{
    fprintf(f, "usage: pgship show ID [--json] [--url URL] [--token-file FILE]\n"
               "\n"
               "Shows one backup: its state (and why it failed), times, size, digest, where it\n"
               "is stored, whether it is pinned, which schedule took it, its last verification\n"
               "and, while it runs, its progress.\n"
               "\n" COMMON_USAGE);
}

/* "streaming, 1.2 GiB, 35.0 MiB/s, 00:35 elapsed" from a progress object. */
static void progress_text(json_t *p, char *out, size_t cap)
{
    const char *phase = jstr(p, "phase");
    json_t *bv = json_object_get(p, "bytes"), *ev = json_object_get(p, "elapsed");
    uint64_t bytes =
        json_is_integer(bv) && json_integer_value(bv) > 0 ? (uint64_t)json_integer_value(bv) : 0;
    double el = json_is_number(ev) ? json_number_value(ev) : 0;
    char b[32], rate[32], e[32];
    fs_human_bytes(bytes, b, sizeof(b));
    fs_human_bytes(el > 0 ? (uint64_t)((double)bytes / el) : 0, rate, sizeof(rate));
    elapsed_text(el, e, sizeof(e));
    char *ph = clean_text(phase != NULL ? phase : "?");
    if (el > 0)
        snprintf(out, cap, "%s, %s, %s/s, %s elapsed", ph, b, rate, e);
    else
        snprintf(out, cap, "%s", ph);
    free(ph);
}

void show_field(const char *name, const char *value)
{
    char *v = clean_text(value);
    printf("%-14s %s\n", name, v);
    free(v);
}

static void show_backup(json_t *b)
{
    char t[64], size[96], dump[32];
    show_field("id", jstr(b, "id"));
    show_field("agent", jstr(b, "agent"));
    show_field("database", jstr(b, "database"));
    show_field("environment", jstr(b, "environment"));
    show_field("label", jstr(b, "label"));
    show_field("state", jstr(b, "state"));
    if (jstr(b, "error") != NULL)
        show_field("error", jstr(b, "error"));
    json_t *p = json_object_get(b, "progress");
    if (json_is_object(p)) {
        char pt[160];
        progress_text(p, pt, sizeof(pt));
        show_field("progress", pt);
    }
    show_field("requested by", jstr(b, "requested_by"));
    short_time(jstr(b, "created_at"), t, sizeof(t));
    show_field("created", t);
    short_time(jstr(b, "started_at"), t, sizeof(t));
    show_field("started", t);
    short_time(jstr(b, "finished_at"), t, sizeof(t));
    show_field("finished", t);
    json_t *sv = json_object_get(b, "size_bytes");
    size_text(sv, dump, sizeof(dump));
    if (json_is_integer(sv))
        snprintf(size, sizeof(size), "%s (%" JSON_INTEGER_FORMAT " bytes)", dump,
                 json_integer_value(sv));
    else
        snprintf(size, sizeof(size), "-");
    show_field("size", size);
    size_text(json_object_get(b, "dump_bytes"), dump, sizeof(dump));
    show_field("dump size", dump);
    show_field("sha256", jstr(b, "sha256"));
    show_field("storage key", jstr(b, "storage_key"));
    show_field("server", jstr(b, "server_version"));
    show_field("pg_dump", jstr(b, "pg_dump_version"));
    char rcpts[1024] = "";
    json_t *x;
    size_t i, used = 0;
    json_array_foreach(json_object_get(b, "recipients"), i, x)
    {
        int n = snprintf(rcpts + used, sizeof(rcpts) - used, "%s%s", i ? ", " : "",
                         json_string_value(x) ? json_string_value(x) : "?");
        if (n < 0 || (size_t)n >= sizeof(rcpts) - used)
            break;
        used += (size_t)n;
    }
    show_field("recipients", rcpts);
    if (jstr(b, "source_backup_id") != NULL)
        show_field("derived from", jstr(b, "source_backup_id"));
    show_field("pinned", json_is_true(json_object_get(b, "pinned"))
                             ? "yes (no prune deletes it)"
                             : "no");
    show_field("schedule", jstr(b, "scheduled"));
    const char *vr = jstr(b, "verify_result");
    if (vr != NULL) {
        char v[VERIFY_TEXT_MAX];
        short_time(jstr(b, "verified_at"), t, sizeof(t));
        snprintf(v, sizeof(v), "%s (%s)", vr, t);
        show_field("verified", v);
    } else {
        show_field("verified", "never");
    }
}

int remote_get_job(remote *r, const char *collection, const char *noun, const char *id,
                   json_t **out)
{
    char path[160];
    snprintf(path, sizeof(path), "/v1/%s/%s", collection, id);
    long st;
    int rc = remote_json(r, "GET", path, NULL, out, &st);
    if (rc == 0 && (jstr(*out, "id") == NULL || jstr(*out, "state") == NULL)) {
        log_error("%s answered without a %s", r->base, noun);
        json_decref(*out);
        *out = NULL;
        rc = REMOTE_EXIT_REACH;
    }
    return rc;
}

/* GET /v1/backups/ID into *out. */
static int get_backup(remote *r, const char *id, json_t **out)
{
    return remote_get_job(r, "backups", "backup", id, out);
}

int cmd_show(int argc, char **argv)
{
    static const struct option lo[] = {COMMON_LONG_OPTIONS, {NULL, 0, NULL, 0}};
    common c = {0};
    int st0 = parse_args(argc, argv, "h", lo, show_usage, NULL, NULL, &c, 1, 1);
    if (st0 >= 0)
        return st0;
    const char *id = argv[optind];
    if (!id_ok(id)) {
        log_error("\"%.80s\" is not a backup id", id);
        return REMOTE_EXIT_USAGE;
    }
    remote r;
    int rc = remote_open(&r, &c);
    if (rc != 0)
        return rc;
    json_t *j = NULL;
    rc = get_backup(&r, id, &j);
    if (rc == 0) {
        if (c.json)
            print_json(j);
        else
            show_backup(j);
    }
    json_decref(j);
    remote_close(&r);
    return rc;
}

/* ---- pgship backup ---- */

static void backup_usage(FILE *f)
{
    fprintf(f,
            "usage: pgship backup AGENT/DATABASE [--label TEXT] [--wait [--timeout SECONDS]]\n"
            "                     [--json] [--url URL] [--token-file FILE]\n"
            "\n"
            "Asks the coordinator for a backup of DATABASE now; AGENT must be connected. Prints\n"
            "the new backup's id on standard output.\n"
            "\n"
            "  -l, --label TEXT      a note kept with the backup (at most 128 bytes)\n"
            "  -w, --wait            wait until the backup is complete or failed, with progress\n"
            "                        on standard error; exit 0 only when it is complete\n"
            "      --timeout SECONDS with --wait: give up waiting after this long (the backup\n"
            "                        goes on); default 0, no limit\n" COMMON_USAGE);
}

void msleep(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL); /* a signal cuts it short: the caller checks */
}


/* Polls job id of kind k until it is final. Returns the exit status; *last is the final
 * answer. */
int wait_final(remote *r, const wait_kind *k, const char *id, unsigned long timeout_s,
                      json_t **last)
{
    wait_view v = {isatty(STDERR_FILENO), 0, 0, ""};
    double start = progress_now(), failing_since = 0;
    for (;;) {
        if (sig_stop_requested())
            break;
        json_t *j = NULL;
        r->quiet = 1;
        int rc = k->get(r, id, &j);
        r->quiet = 0;
        double now = progress_now();
        if (rc == REMOTE_EXIT_REACH && r->last_status == 0 && !sig_stop_requested()) {
            /* no answer: the coordinator may be restarting, so keep asking for a while */
            if (failing_since == 0)
                failing_since = now;
            if (now - failing_since < WAIT_RETRY_S) {
                msleep(WAIT_POLL_MS * 2);
                continue;
            }
            if (v.drawn)
                fputs(k->end_line, stderr);
            log_error("%s (for %d s)", r->last_err, WAIT_RETRY_S);
            return REMOTE_EXIT_REACH;
        }
        if (rc != 0) {
            if (v.drawn)
                fputs(k->end_line, stderr);
            return sig_stop_requested() ? 128 + sig_stop_requested() : rc;
        }
        failing_since = 0;
        const char *state = jstr(j, "state");
        if (strcmp(state, "complete") == 0 || strcmp(state, "failed") == 0) {
            if (v.drawn)
                fputs(k->end_line, stderr);
            json_decref(*last);
            *last = j;
            return strcmp(state, "complete") == 0 ? REMOTE_EXIT_OK : REMOTE_EXIT_FAILED;
        }
        k->draw(&v, id, j, state, now);
        json_decref(j);
        if (timeout_s > 0 && now - start >= (double)timeout_s) {
            if (v.drawn)
                fputs(k->end_line, stderr);
            log_error("gave up waiting after %lu s; %s %s goes on (pgship %s %s)", timeout_s,
                      k->noun, id, k->show_cmd, id);
            return REMOTE_EXIT_FAILED;
        }
        msleep(now - start < WAIT_FAST_S ? WAIT_POLL_FAST_MS : WAIT_POLL_MS);
    }
    if (v.drawn)
        fputs(k->end_line, stderr);
    return 128 + sig_stop_requested();
}

/* A backup's --wait line: its progress, or its state before there is any; redrawn in place. */
static void wait_draw_backup(wait_view *v, const char *id, json_t *j, const char *state,
                             double now)
{
    char line[256];
    json_t *p = json_object_get(j, "progress");
    if (json_is_object(p)) {
        char pt[200];
        progress_text(p, pt, sizeof(pt));
        snprintf(line, sizeof(line), "backup %s: %s", id, pt);
    } else {
        char *s = clean_text(state);
        snprintf(line, sizeof(line), "backup %s: %s", id, s);
        free(s);
    }
    const char *phase = json_is_object(p) && jstr(p, "phase") ? jstr(p, "phase") : state;
    if (v->tty) {
        fprintf(stderr, "\r\033[K%s", line);
        fflush(stderr);
        v->drawn = 1;
    } else if (now - v->last_line >= WAIT_LINE_S || strcmp(phase, v->prev) != 0) {
        fprintf(stderr, "pgship: %s\n", line);
        v->last_line = now;
    }
    snprintf(v->prev, sizeof(v->prev), "%s", phase);
}

static const wait_kind wait_backup_kind = {"backup", "show", "\r\033[K", get_backup,
                                           wait_draw_backup};

typedef struct backup_opts {
    const char *label;
    int wait;
    unsigned long timeout_s;
} backup_opts;

static int backup_opt(void *ctx, int ch, const char *arg)
{
    backup_opts *o = ctx;
    if (ch == 'l')
        o->label = arg;
    else if (ch == 'w')
        o->wait = 1;
    else if (ch != 'T')
        return -1;
    else if (parse_count(arg, 0, ULONG_MAX, &o->timeout_s) != 0) {
        log_error("--timeout takes a number of seconds");
        return REMOTE_EXIT_USAGE;
    }
    return 0;
}

int cmd_backup(int argc, char **argv)
{
    static const struct option lo[] = {{"label", required_argument, NULL, 'l'},
                                       {"wait", no_argument, NULL, 'w'},
                                       {"timeout", required_argument, NULL, 'T'},
                                       COMMON_LONG_OPTIONS,
                                       {NULL, 0, NULL, 0}};
    common c = {0};
    backup_opts o = {0};
    int st0 = parse_args(argc, argv, "l:wh", lo, backup_usage, backup_opt, &o, &c, 1, 1);
    if (st0 >= 0)
        return st0;
    const char *label = o.label;
    int wait = o.wait;
    unsigned long timeout_s = o.timeout_s;
    char agent[64], db[64];
    if (split_target(argv[optind], agent, db, sizeof(agent), 1) != 0)
        return REMOTE_EXIT_USAGE;
    if (label != NULL && strlen(label) > LABEL_MAX) {
        log_error("--label is longer than %d bytes", LABEL_MAX);
        return REMOTE_EXIT_USAGE;
    }
    json_t *req = json_object();
    json_object_set_new(req, "agent", json_string(agent));
    json_object_set_new(req, "database", json_string(db));
    if (label != NULL) {
        json_t *l = json_string(label);
        if (l == NULL) {
            json_decref(req);
            log_error("--label is not valid UTF-8");
            return REMOTE_EXIT_USAGE;
        }
        json_object_set_new(req, "label", l);
    }
    char *body = json_dumps(req, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(req);
    if (body == NULL) {
        log_error("out of memory");
        return REMOTE_EXIT_FAILED;
    }
    remote r;
    json_t *j = NULL;
    int rc = remote_open(&r, &c);
    if (rc != 0) {
        free(body);
        return rc;
    }
    if (wait && sig_catch_start() != 0) {
        log_error("cannot set up signal handling");
        rc = REMOTE_EXIT_FAILED;
        goto out;
    }
    long st;
    rc = remote_json(&r, "POST", "/v1/backups", body, &j, &st);
    if (rc != 0)
        goto out;
    const char *idp = jstr(j, "id");
    char id[ID_MAX + 1];
    if (idp == NULL || !id_ok(idp)) {
        log_error("%s answered without a backup id", r.base);
        rc = REMOTE_EXIT_REACH;
        goto out;
    }
    snprintf(id, sizeof(id), "%s", idp);
    fprintf(stderr, "pgship: backup %s of %s/%s is queued\n", id, agent, db);
    if (wait) {
        rc = wait_final(&r, &wait_backup_kind, id, timeout_s, &j);
        if (rc > 128) {
            log_error("stopped waiting; backup %s goes on (pgship show %s)", id, id);
        } else if (rc == REMOTE_EXIT_OK) {
            char size[32];
            size_text(json_object_get(j, "size_bytes"), size, sizeof(size));
            char *sha = clean_text(jstr(j, "sha256"));
            fprintf(stderr, "pgship: backup %s is complete: %s, sha256 %s\n", id, size, sha);
            free(sha);
        } else if (jstr(j, "state") != NULL && strcmp(jstr(j, "state"), "failed") == 0) {
            char *err = clean_text(jstr(j, "error"));
            log_error("backup %s failed: %s", id, err);
            free(err);
        }
        if (rc > 128 || (rc != REMOTE_EXIT_OK && rc != REMOTE_EXIT_FAILED))
            goto out;
        if (rc == REMOTE_EXIT_FAILED &&
            (jstr(j, "state") == NULL || strcmp(jstr(j, "state"), "failed") != 0))
            goto out; /* timed out: nothing final to print */
    }
    if (c.json)
        print_json(j);
    else
        printf("%s\n", id);
out:
    json_decref(j);
    free(body);
    remote_close(&r);
    return rc;
}

/* ---- pgship fetch ---- */

static void fetch_usage(FILE *f)
{
    fprintf(f, "usage: pgship fetch ID -o FILE|- [-f] [--json] [--url URL] [--token-file FILE]\n"
               "\n"
               "Downloads a complete backup's archive (still encrypted: pgship decrypt opens it).\n"
               "The file appears only once all of it has arrived and its SHA-256 equals the\n"
               "catalog's; otherwise nothing is left behind.\n"
               "\n"
               "  -o, --output FILE|-   where to write; - is standard output (not a terminal),\n"
               "                        verified at the end: check the exit status\n"
               "  -f, --force           replace FILE when it exists\n" COMMON_USAGE);
}

typedef struct fetch_state {
    remote *r;
    fs_outfile out;
    sha256_ctx *sha;
    uint64_t bytes;
    int ok_status; /* 1 once the answer is known to be 200 */
    int checked;   /* the status was looked at */
    int write_err; /* errno of a failed write */
    resp_body err; /* an error answer's body */
    char header_sha[SHA256_HEX_LEN + 1];
    int header_sha_bad;
    progress prog;
} fetch_state;

static size_t fetch_header_cb(char *p, size_t sz, size_t n, void *arg)
{
    fetch_state *s = arg;
    size_t len = sz * n;
    static const char name[] = "x-pgship-sha256:";
    if (len > sizeof(name) - 1 && strncasecmp(p, name, sizeof(name) - 1) == 0) {
        const char *v = p + sizeof(name) - 1;
        size_t vl = len - (sizeof(name) - 1);
        while (vl > 0 && (*v == ' ' || *v == '\t'))
            v++, vl--;
        while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
            vl--;
        uint8_t raw[SHA256_LEN];
        if (vl == SHA256_HEX_LEN && hex_decode(v, vl, raw, sizeof(raw)) == 0) {
            hex_encode(raw, sizeof(raw), s->header_sha);
        } else {
            s->header_sha_bad = 1;
        }
    }
    return len;
}

static size_t fetch_write_cb(char *p, size_t sz, size_t n, void *arg)
{
    fetch_state *s = arg;
    size_t len = sz * n;
    if (!s->checked) {
        long st = 0;
        curl_easy_getinfo(s->r->curl, CURLINFO_RESPONSE_CODE, &st);
        s->ok_status = st == 200;
        s->checked = 1;
    }
    if (!s->ok_status)
        return body_write(p, sz, n, &s->err);
    sha256_update(s->sha, p, len);
    if (fs_write_all(s->out.fd, p, len) != 0) {
        s->write_err = errno;
        return 0;
    }
    s->bytes += len;
    progress_update(&s->prog, s->bytes, 0);
    return len;
}

typedef struct fetch_opts {
    const char *output;
    int force;
} fetch_opts;

static int fetch_opt(void *ctx, int ch, const char *arg)
{
    fetch_opts *o = ctx;
    if (ch == 'o')
        o->output = arg;
    else if (ch == 'f')
        o->force = 1;
    else
        return -1;
    return 0;
}

int cmd_fetch(int argc, char **argv)
{
    static const struct option lo[] = {{"output", required_argument, NULL, 'o'},
                                       {"force", no_argument, NULL, 'f'},
                                       COMMON_LONG_OPTIONS,
                                       {NULL, 0, NULL, 0}};
    common c = {0};
    fetch_opts fo = {0};
    int st0 = parse_args(argc, argv, "o:fh", lo, fetch_usage, fetch_opt, &fo, &c, 1, 1);
    if (st0 >= 0)
        return st0;
    if (fo.output == NULL) {
        fetch_usage(stderr);
        return REMOTE_EXIT_USAGE;
    }
    const char *output = fo.output;
    int force = fo.force;
    const char *id = argv[optind];
    if (!id_ok(id)) {
        log_error("\"%.80s\" is not a backup id", id);
        return REMOTE_EXIT_USAGE;
    }
    if (strcmp(output, "-") == 0 && isatty(STDOUT_FILENO)) {
        log_error("refusing to write an archive to a terminal; use -o FILE or a pipe");
        return REMOTE_EXIT_USAGE;
    }
    if (strcmp(output, "-") == 0 && c.json) {
        log_error("--json needs standard output: use -o FILE with it");
        return REMOTE_EXIT_USAGE;
    }
    remote r;
    int rc = remote_open(&r, &c);
    if (rc != 0)
        return rc;
    fetch_state s;
    memset(&s, 0, sizeof(s));
    s.out.fd = -1;
    s.r = &r;
    s.err.max = ERROR_BODY_MAX;
    int out_open = 0;
    pgs_error e = {0};
    struct curl_slist *h = NULL;
    if (sig_catch_start() != 0) {
        log_error("cannot set up signal handling");
        rc = REMOTE_EXIT_FAILED;
        goto out;
    }
    if ((s.sha = sha256_new()) == NULL) {
        log_error("out of memory");
        rc = REMOTE_EXIT_FAILED;
        goto out;
    }
    if (fs_outfile_open(&s.out, output, force, &e) != 0) {
        if (e.code == PGS_EEXIST)
            log_error("%s exists; use -f to replace it", output);
        else
            log_error("%s", e.msg);
        rc = REMOTE_EXIT_FAILED;
        goto out;
    }
    out_open = 1;
    progress_init(&s.prog, isatty(STDERR_FILENO), "fetch", 0);

    char path[128], errbuf[CURL_ERROR_SIZE] = "";
    snprintf(path, sizeof(path), "/v1/backups/%s/object", id);
    h = remote_prepare(&r, "GET", path, NULL);
    curl_easy_setopt(r.curl, CURLOPT_WRITEFUNCTION, fetch_write_cb);
    curl_easy_setopt(r.curl, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(r.curl, CURLOPT_HEADERFUNCTION, fetch_header_cb);
    curl_easy_setopt(r.curl, CURLOPT_HEADERDATA, &s);
    curl_easy_setopt(r.curl, CURLOPT_ERRORBUFFER, errbuf);
    /* no overall limit (archives are big); a stall of two minutes ends it */
    curl_easy_setopt(r.curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(r.curl, CURLOPT_LOW_SPEED_TIME, 120L);
    double t0 = progress_now();
    CURLcode cc = curl_easy_perform(r.curl);
    progress_end(&s.prog);
    long st = 0;
    curl_easy_getinfo(r.curl, CURLINFO_RESPONSE_CODE, &st);
    if (cc != CURLE_OK) {
        if (s.write_err != 0) {
            log_error("writing %s: %s", s.out.to_stdout ? "standard output" : output,
                      strerror(s.write_err));
            rc = REMOTE_EXIT_FAILED;
        } else if (cc == CURLE_PARTIAL_FILE || (cc == CURLE_RECV_ERROR && s.bytes > 0)) {
            log_error("the download of backup %s ended after %" PRIu64
                      " bytes, before the whole archive arrived",
                      id, s.bytes);
            rc = REMOTE_EXIT_FAILED;
        } else {
            rc = transport_error(&r, cc, errbuf);
        }
        goto out;
    }
    if (st != 200) {
        rc = http_error(&r, st, &s.err);
        goto out;
    }
    if (s.header_sha[0] == '\0') {
        log_error("the coordinator sent backup %s without an %s X-Pgship-Sha256 header; "
                  "nothing can be verified",
                  id, s.header_sha_bad ? "intelligible" : "");
        rc = REMOTE_EXIT_FAILED;
        goto out;
    }
    uint8_t raw[SHA256_LEN];
    char got[SHA256_HEX_LEN + 1];
    sha256_final(s.sha, raw);
    hex_encode(raw, sizeof(raw), got);
    if (strcmp(got, s.header_sha) != 0) {
        log_error("backup %s: the SHA-256 of the %" PRIu64 " bytes received is %s, the catalog "
                  "says %s; %s",
                  id, s.bytes, got, s.header_sha,
                  s.out.to_stdout ? "what went to standard output is not the backup"
                                  : "nothing was written");
        rc = REMOTE_EXIT_FAILED;
        goto out;
    }
    if (!s.out.to_stdout) {
        if (fs_outfile_commit(&s.out, &e) != 0) {
            log_error("%s", e.msg);
            rc = REMOTE_EXIT_FAILED;
            goto out;
        }
    }
    out_open = 0;
    double secs = progress_now() - t0;
    char b[32], rate[32];
    fs_human_bytes(s.bytes, b, sizeof(b));
    fs_human_bytes(secs > 0 ? (uint64_t)((double)s.bytes / secs) : s.bytes, rate, sizeof(rate));
    fprintf(stderr, "pgship: fetched backup %s to %s: %s in %.1f s (%s/s), SHA-256 verified\n", id,
            s.out.to_stdout ? "standard output" : output, b, secs, rate);
    if (c.json) {
        json_t *o = json_pack("{s:s, s:s, s:I, s:s, s:f}", "id", id, "path", output, "bytes",
                              (json_int_t)s.bytes, "sha256", got, "seconds", secs);
        print_json(o);
        json_decref(o);
    }
    rc = REMOTE_EXIT_OK;
out:
    if (rc != REMOTE_EXIT_OK && sig_stop_requested()) {
        rc = 128 + sig_stop_requested();
        log_error("interrupted by signal %d; %s", sig_stop_requested(),
                  s.out.to_stdout ? "the output is incomplete" : "nothing was written");
    }
    if (out_open && !s.out.to_stdout)
        fs_outfile_abort(&s.out);
    headers_free(h);
    sha256_free(s.sha);
    free(s.err.data);
    remote_close(&r);
    return rc;
}

/* ---- pgship restore, sync, restores ---- */

#define RESTORE_PATTERNS 64 /* --schema and --table values, each (as the API's limit) */
#define RESTORE_PATTERN_MAX 127
#define RESTORE_JOBS 64
#define SOURCE_MAX 160 /* as the catalog's CATALOG_SOURCE_MAX */

#define RESTORE_USAGE_OPTIONS                                                                      \
    "  -s, --sanitize PROFILE   restore through the coordinator's profile PROFILE\n"               \
    "                           (profiles_dir/PROFILE: sanitize.sql, then the checks of\n"         \
    "                           check.sql); required to copy prod data into another\n"             \
    "                           environment unless the coordinator's policy allows it\n"           \
    "      --schema-only        restore the schema only (pg_restore --schema-only)\n"              \
    "      --data-only          restore the data only (pg_restore --data-only)\n"                  \
    "  -n, --schema S           only schema S (pg_restore --schema); repeatable, up to 64\n"       \
    "  -t, --table T            only table T (pg_restore --table); repeatable, up to 64\n"         \
    "      --no-owner           do not set owners (pg_restore --no-owner)\n"                       \
    "      --role R             restore as role R (pg_restore --role)\n"                           \
    "  -j, --jobs N             parallel pg_restore jobs, 1-64 (default: the coordinator's, 2)\n"  \
    "      --keep-old           keep the replaced database as DB__pgship_old_TIME instead\n"       \
    "                           of dropping it\n"                                                  \
    "      --safety-backup      first back up the target database (label \"safety\")\n"            \
    "      --overwrite-prod     allow replacing a database of a prod environment\n"                \
    "  -w, --wait               follow it to the end: progress on standard error, then the\n"      \
    "                           report (--json: the restore's JSON); exit 0 only when it is\n"     \
    "                           complete\n"                                                        \
    "      --timeout SECONDS    with --wait: stop waiting after this long (it goes on)\n"

static void restore_usage(FILE *f)
{
    fprintf(f,
            "usage: pgship restore SOURCE --to AGENT/DATABASE [--sanitize PROFILE] [--wait] [...]\n"
            "\n"
            "Restores a backup into a database of a connected agent, safely: the agent restores\n"
            "into a temporary database, sanitizes and checks it (with --sanitize), and only\n"
            "then swaps it for the target in one step. If anything fails, the target is exactly\n"
            "as it was, and the report says which step failed and why. Prints the restore's id\n"
            "on standard output (pgship restores ID shows it later).\n"
            "\n"
            "SOURCE is a backup id (pgship ls), or AGENT/DATABASE@latest: the newest complete\n"
            "backup of that database. To back it up first, use pgship sync.\n"
            "\n"
            "  --to AGENT/DATABASE      the database to replace (required)\n" RESTORE_USAGE_OPTIONS
                COMMON_USAGE "\n"
            "examples:\n"
            "  pgship restore 20261121T160529Z-0a1b2c3d --to staging-db1/appdb --wait\n"
            "  pgship restore prod-db1/appdb@latest --to staging-db1/appdb \\\n"
            "      --sanitize app-anonymize --wait\n");
}

static void sync_usage(FILE *f)
{
    fprintf(
        f, "usage: pgship sync AGENT/DATABASE --to AGENT/DATABASE [--from-latest]\n"
           "                   [--sanitize PROFILE] [--wait] [...]\n"
           "\n"
           "Copies one database into another in one command: a fresh backup of the source (or,\n"
           "with --from-latest, its newest complete backup), then a restore of it into the\n"
           "target, as pgship restore does. One restore, one report; with --wait, exit 0 only\n"
           "when all of it succeeded. Prints the restore's id on standard output.\n"
           "\n"
           "  --to AGENT/DATABASE      the database to replace (required)\n"
           "      --from-latest        restore the newest complete backup instead of making\n"
           "                           a new one\n" RESTORE_USAGE_OPTIONS COMMON_USAGE "\n"
           "example:\n"
           "  pgship sync prod-db1/appdb --to staging-db1/appdb --sanitize app-anonymize --wait\n");
}

static void restores_usage(FILE *f)
{
    fprintf(f, "usage: pgship restores [ID] [--limit N] [--json] [--url URL] [--token-file FILE]\n"
               "\n"
               "Without ID: the history of restores and syncs, newest first: who asked, what was\n"
               "restored where, through which profile, the result, how long it took and how many\n"
               "rows it restored. With ID: that one's report (its steps and their times, row\n"
               "counts per table, check failures, the error), with its progress while it runs.\n"
               "\n"
               "  -n, --limit N         at most N restores (1-10000; default 100)\n" COMMON_USAGE);
}

enum {
    OPT_TO = 1100,
    OPT_SANITIZE,
    OPT_SCHEMA_ONLY,
    OPT_DATA_ONLY,
    OPT_NO_OWNER,
    OPT_ROLE,
    OPT_KEEP_OLD,
    OPT_SAFETY,
    OPT_OVERWRITE_PROD,
    OPT_FROM_LATEST,
    OPT_TIMEOUT,
};

#define RESTORE_LONG_OPTIONS                                                                       \
    {"to", required_argument, NULL, OPT_TO}, {"sanitize", required_argument, NULL, 's'},           \
        {"schema-only", no_argument, NULL, OPT_SCHEMA_ONLY},                                       \
        {"data-only", no_argument, NULL, OPT_DATA_ONLY}, {"schema", required_argument, NULL, 'n'}, \
        {"table", required_argument, NULL, 't'}, {"no-owner", no_argument, NULL, OPT_NO_OWNER},    \
        {"role", required_argument, NULL, OPT_ROLE}, {"jobs", required_argument, NULL, 'j'},       \
        {"keep-old", no_argument, NULL, OPT_KEEP_OLD},                                             \
        {"safety-backup", no_argument, NULL, OPT_SAFETY},                                          \
        {"overwrite-prod", no_argument, NULL, OPT_OVERWRITE_PROD},                                 \
        {"wait", no_argument, NULL, 'w'},                                                          \
    {                                                                                              \
        "timeout", required_argument, NULL, OPT_TIMEOUT                                            \
    }

typedef struct restore_opts {
    const char *to, *profile, *role;
    int schema_only, data_only, no_owner, keep_old, safety_backup, overwrite_prod, from_latest;
    unsigned long jobs;
    const char *schemas[RESTORE_PATTERNS], *tables[RESTORE_PATTERNS];
    size_t nschemas, ntables;
    int wait;
    unsigned long timeout_s;
} restore_opts;

/* A --schema or --table value: 1-127 bytes without control characters. */
static int pattern_opt(const char *name, const char *arg, const char **list, size_t *n)
{
    size_t len = strlen(arg);
    int ok = len > 0 && len <= RESTORE_PATTERN_MAX;
    for (size_t i = 0; ok && i < len; i++)
        ok = (unsigned char)arg[i] >= 0x20 && arg[i] != 0x7f;
    if (!ok) {
        log_error("--%s takes 1-%d bytes without control characters", name, RESTORE_PATTERN_MAX);
        return REMOTE_EXIT_USAGE;
    }
    if (*n == RESTORE_PATTERNS) {
        log_error("at most %d --%s options", RESTORE_PATTERNS, name);
        return REMOTE_EXIT_USAGE;
    }
    list[(*n)++] = arg;
    return 0;
}

static int restore_opt(void *ctx, int ch, const char *arg)
{
    restore_opts *o = ctx;
    switch (ch) {
    case OPT_TO:
        o->to = arg;
        return 0;
    case 's':
        o->profile = arg;
        return 0;
    case OPT_SCHEMA_ONLY:
        o->schema_only = 1;
        return 0;
    case OPT_DATA_ONLY:
        o->data_only = 1;
        return 0;
    case 'n':
        return pattern_opt("schema", arg, o->schemas, &o->nschemas);
    case 't':
        return pattern_opt("table", arg, o->tables, &o->ntables);
    case OPT_NO_OWNER:
        o->no_owner = 1;
        return 0;
    case OPT_ROLE:
        o->role = arg;
        return 0;
    case 'j':
        if (parse_count(arg, 1, RESTORE_JOBS, &o->jobs) != 0) {
            log_error("--jobs takes a number from 1 to %d", RESTORE_JOBS);
            return REMOTE_EXIT_USAGE;
        }
        return 0;
    case OPT_KEEP_OLD:
        o->keep_old = 1;
        return 0;
    case OPT_SAFETY:
        o->safety_backup = 1;
        return 0;
    case OPT_OVERWRITE_PROD:
        o->overwrite_prod = 1;
        return 0;
    case OPT_FROM_LATEST:
        o->from_latest = 1;
        return 0;
    case 'w':
        o->wait = 1;
        return 0;
    case OPT_TIMEOUT:
        if (parse_count(arg, 0, ULONG_MAX, &o->timeout_s) != 0) {
            log_error("--timeout takes a number of seconds");
            return REMOTE_EXIT_USAGE;
        }
        return 0;
    }
    return -1;
}

/* Adds the array key of vals, refusing text that is not UTF-8; 0 or the usage status (logged). */
static int body_list(json_t *o, const char *key, const char *opt, const char *const *vals, size_t n)
{
    if (n == 0)
        return 0;
    json_t *arr = json_array();
    json_object_set_new(o, key, arr);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_string(vals[i]);
        if (v == NULL) {
            log_error("%s is not valid UTF-8", opt);
            return REMOTE_EXIT_USAGE;
        }
        json_array_append_new(arr, v);
    }
    return 0;
}

/* The POST /v1/restores body for source (as the API takes it) and the options; NULL with the
 * reason logged. */
static char *restore_body(const char *source, int fresh, const restore_opts *o)
{
    json_t *req = json_object();
    int rc = 0;
    json_object_set_new(req, "source", json_string(source));
    if (fresh)
        json_object_set_new(req, "fresh", json_true());
    json_object_set_new(req, "target", json_string(o->to));
    if (o->profile != NULL)
        json_object_set_new(req, "profile", json_string(o->profile));
    static const char *const flags[] = {"overwrite_prod", "safety_backup", "keep_old",
                                        "schema_only",    "data_only",     "no_owner"};
    const int set[] = {o->overwrite_prod, o->safety_backup, o->keep_old,
                       o->schema_only,    o->data_only,     o->no_owner};
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
        if (set[i])
            json_object_set_new(req, flags[i], json_true());
    if (o->role != NULL)
        json_object_set_new(req, "role", json_string(o->role));
    if (o->jobs > 0)
        json_object_set_new(req, "jobs", json_integer((json_int_t)o->jobs));
    if ((rc = body_list(req, "schemas", "--schema", o->schemas, o->nschemas)) != 0 ||
        (rc = body_list(req, "tables", "--table", o->tables, o->ntables)) != 0) {
        json_decref(req);
        return NULL;
    }
    char *body = json_dumps(req, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(req);
    if (body == NULL)
        log_error("out of memory");
    return body;
}

/* ms as "850 ms", "12.3 s", "4 min 05 s", "1 h 02 min". */
void ms_text(double ms, char *out, size_t cap)
{
    if (ms < 0)
        snprintf(out, cap, "-");
    else if (ms < 1000)
        snprintf(out, cap, "%.0f ms", ms);
    else if (ms < 60000)
        snprintf(out, cap, "%.1f s", ms / 1000);
    else if (ms < 3600000)
        snprintf(out, cap, "%ld min %02ld s", (long)(ms / 60000), (long)(ms / 1000) % 60);
    else
        snprintf(out, cap, "%ld h %02ld min", (long)(ms / 3600000), (long)(ms / 60000) % 60);
}

/* Unix ms of the API's time text ("2026-11-21T16:05:29.123Z"), or -1. */
int64_t time_ms(const char *t)
{
    struct tm tm;
    int ms = 0;
    memset(&tm, 0, sizeof(tm));
    if (t == NULL || sscanf(t, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                            &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) != 7)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

/* How long a restore took (or has been running): "-" when it has not started. */
static void took_text(json_t *r, char *out, size_t cap)
{
    int64_t a = time_ms(jstr(r, "started_at")), b = time_ms(jstr(r, "finished_at"));
    if (a < 0) {
        snprintf(out, cap, "-");
        return;
    }
    if (b < 0) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        b = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    }
    ms_text((double)(b - a), out, cap);
}

json_t *report_of(json_t *r)
{
    json_t *rep = json_object_get(r, "report");
    return json_is_object(rep) ? rep : NULL;
}

/* Rows restored, summed over the report's tables; -1 when it has none. */
static long long total_rows(json_t *r, size_t *ntables)
{
    json_t *tables = json_object_get(report_of(r), "tables"), *t;
    size_t i;
    long long sum = 0;
    *ntables = 0;
    if (!json_is_array(tables))
        return -1;
    json_array_foreach(tables, i, t)
    {
        json_t *n = json_object_get(t, "rows");
        if (json_is_integer(n) && json_integer_value(n) > 0)
            sum += json_integer_value(n);
    }
    *ntables = json_array_size(tables);
    return sum;
}

/* "complete", "failed in check", "running: pg_restore", "queued". */
static void result_text(json_t *r, char *out, size_t cap)
{
    const char *state = jstr(r, "state"), *step = jstr(r, "step");
    if (state == NULL)
        state = "?";
    if (strcmp(state, "failed") == 0 && step != NULL)
        snprintf(out, cap, "failed in %s", step);
    else if (strcmp(state, "running") == 0 && step != NULL)
        snprintf(out, cap, "running: %s", step);
    else
        snprintf(out, cap, "%s", state);
}

/* A JSON scalar of a check failure's row as text. */
static void value_text(json_t *v, char *out, size_t cap)
{
    if (json_is_string(v))
        snprintf(out, cap, "%s", json_string_value(v));
    else if (json_is_integer(v))
        snprintf(out, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else if (json_is_real(v))
        snprintf(out, cap, "%g", json_real_value(v));
    else if (json_is_boolean(v))
        snprintf(out, cap, "%s", json_is_true(v) ? "true" : "false");
    else if (json_is_null(v))
        snprintf(out, cap, "NULL");
    else {
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        snprintf(out, cap, "%s", s ? s : "?");
        free(s);
    }
}

/* One line per step of steps (a report's array): WHO NAME TIME ok|failed [backup ID]. */
static void print_steps(const char *who, json_t *steps)
{
    json_t *s;
    size_t i;
    json_array_foreach(steps, i, s)
    {
        char t[32];
        json_t *ms = json_object_get(s, "ms");
        if (json_is_number(ms))
            ms_text(json_number_value(ms), t, sizeof(t));
        else
            snprintf(t, sizeof(t), "-");
        char *name = clean_text(jstr(s, "name"));
        printf("  %-12s %-12s %10s  %s", who, name, t,
               json_is_false(json_object_get(s, "ok")) ? "failed" : "ok");
        if (jstr(s, "backup_id") != NULL) {
            char *b = clean_text(jstr(s, "backup_id"));
            printf("  backup %s", b);
            free(b);
        }
        printf("\n");
        free(name);
    }
}

static void print_check_failures(json_t *rep)
{
    json_t *fails = json_object_get(rep, "check_failures"), *f;
    size_t i;
    if (json_array_size(fails) == 0)
        return;
    json_t *tot = json_object_get(rep, "check_failures_total");
    long long total =
        json_is_integer(tot) ? json_integer_value(tot) : (long long)json_array_size(fails);
    printf("\ncheck failures (%zu shown of %lld): every row a check query returns\n",
           json_array_size(fails), total);
    json_array_foreach(fails, i, f)
    {
        char line[4096], v[512];
        size_t used = 0;
        json_t *q = json_object_get(f, "query"), *l = json_object_get(f, "line");
        int n = snprintf(line, sizeof(line), "  query %" JSON_INTEGER_FORMAT,
                         json_is_integer(q) ? json_integer_value(q) : 0);
        used = n > 0 ? (size_t)n : 0;
        if (json_is_integer(l))
            used += (size_t)snprintf(line + used, sizeof(line) - used,
                                     " (line %" JSON_INTEGER_FORMAT ")", json_integer_value(l));
        json_t *cols = json_object_get(f, "columns"), *row = json_object_get(f, "row"), *x;
        size_t k;
        json_array_foreach(row, k, x)
        {
            const char *col = json_string_value(json_array_get(cols, k));
            value_text(x, v, sizeof(v));
            n = snprintf(line + used, sizeof(line) - used, "%s%s%s%s", k ? ", " : ": ",
                         col ? col : "", col ? "=" : "", v);
            if (n < 0 || (size_t)n >= sizeof(line) - used)
                break;
            used += (size_t)n;
        }
        char *c = clean_text(line);
        printf("%s\n", c);
        free(c);
    }
}

/* The human report of a restore (the API's object). */
static void show_restore(json_t *r)
{
    char t[64], buf[512], res[96];
    show_field("restore", jstr(r, "id"));
    show_field("kind", jstr(r, "kind"));
    result_text(r, res, sizeof(res));
    show_field("state", res);
    if (jstr(r, "error") != NULL)
        show_field("error", jstr(r, "error"));
    json_t *p = json_object_get(r, "progress");
    if (json_is_object(p)) {
        const char *as = jstr(p, "agent_step");
        snprintf(buf, sizeof(buf), "%s%s%s", jstr(p, "step") ? jstr(p, "step") : "?",
                 as ? ", agent: " : "", as ? as : "");
        show_field("progress", buf);
    }
    show_field("requested by", jstr(r, "requested_by"));
    const char *sa = jstr(r, "source_agent"), *sd = jstr(r, "source_database"),
               *se = jstr(r, "source_environment"), *sid = jstr(r, "source_backup_id");
    snprintf(buf, sizeof(buf), "%s", jstr(r, "source") ? jstr(r, "source") : "?");
    if (sid != NULL && (jstr(r, "source") == NULL || strcmp(sid, jstr(r, "source")) != 0)) {
        size_t n = strlen(buf);
        snprintf(buf + n, sizeof(buf) - n, ": backup %s", sid);
    }
    if (sa != NULL && sd != NULL) {
        size_t n = strlen(buf);
        snprintf(buf + n, sizeof(buf) - n, " (%s/%s%s%s)", sa, sd, se ? ", " : "", se ? se : "");
    }
    show_field("source", buf);
    snprintf(buf, sizeof(buf), "%s/%s (%s)",
             jstr(r, "target_agent") ? jstr(r, "target_agent") : "?",
             jstr(r, "target_database") ? jstr(r, "target_database") : "?",
             jstr(r, "target_environment") ? jstr(r, "target_environment") : "?");
    show_field("target", buf);
    if (jstr(r, "profile") != NULL && jstr(r, "sanitizer_agent") != NULL) {
        snprintf(buf, sizeof(buf), "%s, sanitized at the source on %s", jstr(r, "profile"),
                 jstr(r, "sanitizer_agent"));
        show_field("profile", buf);
    } else {
        show_field("profile", jstr(r, "profile") ? jstr(r, "profile") : "none (not sanitized)");
    }
    if (jstr(r, "sanitized_backup_id") != NULL)
        show_field("sanitized", jstr(r, "sanitized_backup_id"));
    if (jstr(r, "safety_backup_id") != NULL)
        show_field("safety backup", jstr(r, "safety_backup_id"));
    short_time(jstr(r, "created_at"), t, sizeof(t));
    show_field("created", t);
    short_time(jstr(r, "started_at"), t, sizeof(t));
    show_field("started", t);
    short_time(jstr(r, "finished_at"), t, sizeof(t));
    show_field("finished", t);
    took_text(r, t, sizeof(t));
    show_field("took", t);
    json_t *rep = report_of(r);
    const char *old = jstr(rep, "old_database");
    if (old != NULL)
        show_field("old database", old);
    if (rep == NULL)
        return;

    json_t *cs = json_object_get(rep, "coordinator_steps"), *as = json_object_get(rep, "steps");
    json_t *san = json_object_get(json_object_get(rep, "sanitizer_report"), "steps");
    if (json_array_size(cs) + json_array_size(as) + json_array_size(san) > 0) {
        printf("\nsteps\n");
        print_steps("coordinator", cs);
        print_steps("sanitizer", san);
        print_steps("agent", as);
    }
    json_t *se_ = json_object_get(rep, "sanitize_error");
    if (json_is_object(se_)) {
        json_t *l = json_object_get(se_, "line");
        snprintf(buf, sizeof(buf), "line %" JSON_INTEGER_FORMAT ": %s",
                 json_is_integer(l) ? json_integer_value(l) : 0,
                 jstr(se_, "message") ? jstr(se_, "message") : "?");
        printf("\n");
        show_field("sanitize error", buf);
    }
    json_t *tables = json_object_get(rep, "tables"), *x;
    size_t i, ntables;
    long long rows = total_rows(r, &ntables);
    if (ntables > 0) {
        table tb = {.ncols = 2};
        const char *head[] = {"TABLE", "ROWS"};
        table_row(&tb, head);
        json_array_foreach(tables, i, x)
        {
            char name[300], n[32];
            snprintf(name, sizeof(name), "%s.%s", jstr(x, "schema") ? jstr(x, "schema") : "?",
                     jstr(x, "name") ? jstr(x, "name") : "?");
            json_t *nr = json_object_get(x, "rows");
            if (json_is_integer(nr))
                snprintf(n, sizeof(n), "%" JSON_INTEGER_FORMAT, json_integer_value(nr));
            else
                snprintf(n, sizeof(n), "-");
            const char *row[] = {name, n};
            table_row(&tb, row);
        }
        printf("\n");
        table_print(&tb);
        printf("(%zu tables, %lld rows)\n", ntables, rows);
    }
    print_check_failures(rep);
}

/* GET /v1/restores/ID into *out. */
static int get_restore_json(remote *r, const char *id, json_t **out)
{
    return remote_get_job(r, "restores", "restore", id, out);
}

/* Where a live restore is: "restore, agent: pg_restore (-j 2)", with bytes during fetch; key
 * names the step pair, to notice changes. */
static void restore_where(json_t *j, char *line, size_t cap, char *key, size_t kcap, int *fetching)
{
    json_t *p = json_object_get(j, "progress");
    const char *step = json_is_object(p) && jstr(p, "step") ? jstr(p, "step") : jstr(j, "step");
    const char *as = json_is_object(p) ? jstr(p, "agent_step") : NULL;
    const char *detail = json_is_object(p) ? jstr(p, "detail") : NULL;
    if (step == NULL)
        step = jstr(j, "state") ? jstr(j, "state") : "?";
    snprintf(key, kcap, "%s/%s", step, as ? as : "");
    *fetching = as != NULL && strcmp(as, "fetch") == 0;
    int n = snprintf(line, cap, "%s", step);
    if (as != NULL && n >= 0 && (size_t)n < cap)
        n += snprintf(line + n, cap - (size_t)n, ", agent: %s", as);
    if (detail != NULL && n >= 0 && (size_t)n < cap)
        n += snprintf(line + n, cap - (size_t)n, " (%s)", detail);
    json_t *bv = json_object_get(p, "bytes");
    if (*fetching && json_is_integer(bv) && n >= 0 && (size_t)n < cap) {
        char b[32];
        fs_human_bytes((uint64_t)json_integer_value(bv), b, sizeof(b));
        snprintf(line + n, cap - (size_t)n, ", %s received", b);
    }
    char *c = clean_text(line);
    snprintf(line, cap, "%s", c);
    free(c);
}

/* A restore's --wait line: each step as it starts; a finished step keeps its line. */
static void wait_draw_restore(wait_view *v, const char *id, json_t *j, const char *state,
                              double now)
{
    (void)state;
    char line[400], key[96];
    int fetching;
    restore_where(j, line, sizeof(line), key, sizeof(key), &fetching);
    int changed = strcmp(key, v->prev) != 0;
    if (v->tty) {
        /* a finished step keeps its line; the current one is redrawn in place */
        if (changed && v->drawn)
            fprintf(stderr, "\n");
        fprintf(stderr, "\r\033[Kpgship: restore %s: %s", id, line);
        fflush(stderr);
        v->drawn = 1;
    } else if (changed || (fetching && now - v->last_line >= WAIT_LINE_S)) {
        fprintf(stderr, "pgship: restore %s: %s\n", id, line);
        v->last_line = now;
    }
    snprintf(v->prev, sizeof(v->prev), "%s", key);
}

static const wait_kind wait_restore_kind = {"restore", "restores", "\n", get_restore_json,
                                            wait_draw_restore};

/* restore and sync: the options are parsed; source is what the API takes. */
static int restore_submit(const common *c, const restore_opts *o, const char *source, int fresh)
{
    char *body = restore_body(source, fresh, o);
    if (body == NULL)
        return REMOTE_EXIT_USAGE;
    remote r;
    json_t *j = NULL;
    int rc = remote_open(&r, c);
    if (rc != 0) {
        free(body);
        return rc;
    }
    if (o->wait && sig_catch_start() != 0) {
        log_error("cannot set up signal handling");
        rc = REMOTE_EXIT_FAILED;
        goto out;
    }
    long st;
    rc = remote_json(&r, "POST", "/v1/restores", body, &j, &st);
    if (rc != 0)
        goto out;
    const char *idp = jstr(j, "id");
    json_t *queued = json_object_get(j, "restore");
    char id[ID_MAX + 1];
    if (idp == NULL || !id_ok(idp) || !json_is_object(queued)) {
        log_error("%s answered without a restore", r.base);
        rc = REMOTE_EXIT_REACH;
        goto out;
    }
    snprintf(id, sizeof(id), "%s", idp);
    {
        char *src = clean_text(source);
        fprintf(stderr, "pgship: restore %s (%s%s -> %s) is queued\n", id, fresh ? "sync of " : "",
                src, o->to);
        free(src);
    }
    if (!o->wait) {
        if (c->json)
            print_json(queued);
        else
            printf("%s\n", id);
        goto out;
    }
    rc = wait_final(&r, &wait_restore_kind, id, o->timeout_s, &j);
    if (rc > 128) {
        log_error("stopped waiting; restore %s goes on (pgship restores %s)", id, id);
        goto out;
    }
    const char *state = jstr(j, "state");
    if (state == NULL || (strcmp(state, "complete") != 0 && strcmp(state, "failed") != 0))
        goto out; /* unreachable, or timed out: nothing final to print */
    if (c->json)
        print_json(j);
    else
        show_restore(j);
    fflush(stdout);
    if (rc == REMOTE_EXIT_OK) {
        fprintf(stderr, "pgship: restore %s is complete\n", id);
    } else {
        char *err = clean_text(jstr(j, "error")), *step = clean_text(jstr(j, "step"));
        log_error("restore %s failed in step %s: %s", id, step, err);
        free(err);
        free(step);
    }
out:
    json_decref(j);
    free(body);
    remote_close(&r);
    return rc;
}

/* Checks what restore and sync share; 0 or the usage status (logged). */
static int restore_check(const restore_opts *o, void (*usage)(FILE *))
{
    char agent[64], db[64];
    if (o->to == NULL) {
        log_error("--to AGENT/DATABASE is required: the database to replace");
        usage(stderr);
        return REMOTE_EXIT_USAGE;
    }
    if (split_target(o->to, agent, db, sizeof(agent), 1) != 0)
        return REMOTE_EXIT_USAGE;
    if (o->profile != NULL && !key_name_valid(o->profile)) {
        log_error("\"%.80s\" is not a profile name (1-63 of A-Z a-z 0-9 . _ -)", o->profile);
        return REMOTE_EXIT_USAGE;
    }
    if (o->role != NULL && !key_name_valid(o->role)) {
        log_error("\"%.80s\" is not a role name pgship passes on (1-63 of A-Z a-z 0-9 . _ -)",
                  o->role);
        return REMOTE_EXIT_USAGE;
    }
    if (o->schema_only && o->data_only) {
        log_error("--schema-only and --data-only exclude each other");
        return REMOTE_EXIT_USAGE;
    }
    return 0;
}

int cmd_restore(int argc, char **argv)
{
    static const struct option lo[] = {
        RESTORE_LONG_OPTIONS, COMMON_LONG_OPTIONS, {NULL, 0, NULL, 0}};
    common c = {0};
    restore_opts o;
    memset(&o, 0, sizeof(o));
    int st0 = parse_args(argc, argv, "s:n:t:j:wh", lo, restore_usage, restore_opt, &o, &c, 1, 1);
    if (st0 >= 0)
        return st0;
    if ((st0 = restore_check(&o, restore_usage)) != 0)
        return st0;
    const char *source = argv[optind];
    size_t n = strlen(source);
    char agent[64], db[64], prefix[SOURCE_MAX + 1];
    if (n > 7 && strcmp(source + n - 7, "@latest") == 0 && n - 7 <= SOURCE_MAX) {
        snprintf(prefix, sizeof(prefix), "%.*s", (int)(n - 7), source);
        if (split_target(prefix, agent, db, sizeof(agent), 1) != 0)
            return REMOTE_EXIT_USAGE;
    } else if (strchr(source, '/') != NULL) {
        log_error("\"%.80s\": name a backup id, or AGENT/DATABASE@latest for the newest complete "
                  "backup; to back the database up first, use pgship sync",
                  source);
        return REMOTE_EXIT_USAGE;
    } else if (!id_ok(source)) {
        log_error("\"%.80s\" is not a backup id or AGENT/DATABASE@latest", source);
        return REMOTE_EXIT_USAGE;
    }
    return restore_submit(&c, &o, source, 0);
}

int cmd_sync(int argc, char **argv)
{
    static const struct option lo[] = {RESTORE_LONG_OPTIONS,
                                       {"from-latest", no_argument, NULL, OPT_FROM_LATEST},
                                       COMMON_LONG_OPTIONS,
                                       {NULL, 0, NULL, 0}};
    common c = {0};
    restore_opts o;
    memset(&o, 0, sizeof(o));
    int st0 = parse_args(argc, argv, "s:n:t:j:wh", lo, sync_usage, restore_opt, &o, &c, 1, 1);
    if (st0 >= 0)
        return st0;
    if ((st0 = restore_check(&o, sync_usage)) != 0)
        return st0;
    const char *source = argv[optind];
    char agent[64], db[64], latest[SOURCE_MAX + 1];
    if (strchr(source, '@') != NULL) {
        log_error("\"%.80s\": pgship sync takes AGENT/DATABASE (add --from-latest to use its "
                  "newest backup); to restore a given backup, use pgship restore",
                  source);
        return REMOTE_EXIT_USAGE;
    }
    if (split_target(source, agent, db, sizeof(agent), 1) != 0)
        return REMOTE_EXIT_USAGE;
    if (o.from_latest) {
        snprintf(latest, sizeof(latest), "%s/%s@latest", agent, db);
        return restore_submit(&c, &o, latest, 0);
    }
    return restore_submit(&c, &o, source, 1);
}

typedef struct restores_opts {
    unsigned long limit;
} restores_opts;

static int restores_opt(void *ctx, int ch, const char *arg)
{
    restores_opts *o = ctx;
    if (ch != 'n')
        return -1;
    if (parse_count(arg, 1, LIST_MAX, &o->limit) != 0) {
        log_error("--limit takes a number from 1 to %d", LIST_MAX);
        return REMOTE_EXIT_USAGE;
    }
    return 0;
}

int cmd_restores(int argc, char **argv)
{
    static const struct option lo[] = {
        {"limit", required_argument, NULL, 'n'}, COMMON_LONG_OPTIONS, {NULL, 0, NULL, 0}};
    common c = {0};
    restores_opts o = {0};
    int st0 = parse_args(argc, argv, "n:h", lo, restores_usage, restores_opt, &o, &c, 0, 1);
    if (st0 >= 0)
        return st0;
    const char *id = optind < argc ? argv[optind] : NULL;
    if (id != NULL && !id_ok(id)) {
        log_error("\"%.80s\" is not a restore id", id);
        return REMOTE_EXIT_USAGE;
    }
    remote r;
    int rc = remote_open(&r, &c);
    if (rc != 0)
        return rc;
    json_t *j = NULL;
    if (id != NULL) {
        rc = get_restore_json(&r, id, &j);
        if (rc == 0 && c.json)
            print_json(j);
        else if (rc == 0)
            show_restore(j);
        goto out;
    }
    char path[64];
    snprintf(path, sizeof(path), "/v1/restores?limit=%lu", o.limit ? o.limit : 100);
    long st;
    rc = remote_json(&r, "GET", path, NULL, &j, &st);
    if (rc != 0)
        goto out;
    json_t *list = json_object_get(j, "restores");
    if (!json_is_array(list)) {
        log_error("%s answered without a restore list", r.base);
        rc = REMOTE_EXIT_REACH;
        goto out;
    }
    int more = json_is_true(json_object_get(j, "more"));
    if (c.json) {
        print_json(list);
    } else {
        table t = {.ncols = 9};
        const char *head[] = {"ID",      "CREATED", "BY",   "SOURCE", "TARGET",
                              "PROFILE", "RESULT",  "TOOK", "ROWS"};
        table_row(&t, head);
        json_t *x;
        size_t i;
        json_array_foreach(list, i, x)
        {
            char created[32], target[160], result[96], took[32], rows[32];
            short_time(jstr(x, "created_at"), created, sizeof(created));
            snprintf(target, sizeof(target), "%s/%s",
                     jstr(x, "target_agent") ? jstr(x, "target_agent") : "?",
                     jstr(x, "target_database") ? jstr(x, "target_database") : "?");
            result_text(x, result, sizeof(result));
            took_text(x, took, sizeof(took));
            size_t nt;
            long long nr = total_rows(x, &nt);
            if (nr >= 0)
                snprintf(rows, sizeof(rows), "%lld", nr);
            else
                snprintf(rows, sizeof(rows), "-");
            const char *row[] = {jstr(x, "id"),
                                 created,
                                 jstr(x, "requested_by"),
                                 jstr(x, "source"),
                                 target,
                                 jstr(x, "profile"),
                                 result,
                                 took,
                                 rows};
            table_row(&t, row);
        }
        if (t.nrows == 1) {
            table_free(&t);
            fprintf(stderr, "pgship: no restores yet\n");
        } else {
            table_print(&t);
        }
        fflush(stdout);
    }
    if (more)
        fprintf(stderr, "pgship: there are more restores; --limit N shows more (up to %d)\n",
                LIST_MAX);
out:
    json_decref(j);
    remote_close(&r);
    return rc;
}
