/*
 * pgship verify | verifications: backups checked end to end on an agent that holds one of their
 * keys (docs/cli.md, "Verifications"; the API's /v1/backups/ID/verify and /v1/verifications).
 *
 * A verification's states are queued, running, ok and failed; the shared --wait loop
 * (wait_final) knows a backup's and a restore's "complete", so the poll below hands it "ok" under
 * that name and the answer is put back before anything is printed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/commands.h"
#include "client/remote_internal.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/spawn.h"

#define VID_MAX 31      /* ids go into URL paths */
#define VLIST_MAX 10000 /* as the API's API_VERIFY_LIST_MAX */
#define VLIST_DEFAULT 100

/* ---- shared ---- */

static const char *jstr_or(json_t *o, const char *key, const char *dflt)
{
    const char *s = jstr(o, key);
    return s != NULL ? s : dflt;
}

static long long jint(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}

/* "ok", "failed", "running: verify" (the agent's step while it runs), "queued". */
static void result_text(json_t *v, char *out, size_t cap)
{
    const char *state = jstr_or(v, "state", "?");
    json_t *p = json_object_get(v, "progress");
    const char *step = json_is_object(p) ? jstr(p, "step") : NULL;
    const char *failed = jstr(report_of(v), "failed_step");
    if (strcmp(state, "running") == 0 && step != NULL)
        snprintf(out, cap, "running: %s", step);
    else if (strcmp(state, "failed") == 0 && failed != NULL)
        snprintf(out, cap, "failed in %s", failed);
    else
        snprintf(out, cap, "%s", state);
}

/* GET /v1/verifications/ID into *out. */
static int get_verification(remote *r, const char *id, json_t **out)
{
    return remote_get_job(r, "verifications", "verification", id, out);
}

/* The poll of --wait: "ok" is this command's "complete". */
static int get_for_wait(remote *r, const char *id, json_t **out)
{
    int rc = get_verification(r, id, out);
    if (rc == 0 && strcmp(jstr(*out, "state"), "ok") == 0)
        json_object_set_new(*out, "state", json_string("complete"));
    return rc;
}

/* A verification's --wait line: its state and the agent's step; a step keeps its line. */
static void wait_draw(wait_view *v, const char *id, json_t *j, const char *state, double now)
{
    char line[400], key[96];
    json_t *p = json_object_get(j, "progress");
    const char *step = json_is_object(p) ? jstr(p, "step") : NULL;
    const char *detail = json_is_object(p) ? jstr(p, "detail") : NULL;
    long long bytes = json_is_object(p) ? jint(p, "bytes") : -1;
    /* The catalog marks it running a moment after its agent took it: the agent's step says so
     * first. */
    if (strcmp(state, "queued") == 0 && step != NULL)
        state = "running";
    int n = snprintf(line, sizeof(line), "%s", state);
    if (step != NULL && n >= 0 && (size_t)n < sizeof(line))
        n += snprintf(line + n, sizeof(line) - (size_t)n, ", agent: %s", step);
    if (detail != NULL && n >= 0 && (size_t)n < sizeof(line))
        n += snprintf(line + n, sizeof(line) - (size_t)n, " (%s)", detail);
    if (step != NULL && strcmp(step, "fetch") == 0 && bytes > 0 && n >= 0 &&
        (size_t)n < sizeof(line)) {
        char b[32];
        fs_human_bytes((uint64_t)bytes, b, sizeof(b));
        snprintf(line + n, sizeof(line) - (size_t)n, ", %s received", b);
    }
    char *c = clean_text(line);
    snprintf(key, sizeof(key), "%s/%s", state, step ? step : "");
    int changed = strcmp(key, v->prev) != 0;
    if (v->tty) {
        if (changed && v->drawn)
            fprintf(stderr, "\n");
        fprintf(stderr, "\r\033[Kpgship: verification %s: %s", id, c);
        fflush(stderr);
        v->drawn = 1;
    } else if (changed || now - v->last_line >= 5) {
        fprintf(stderr, "pgship: verification %s: %s\n", id, c);
        v->last_line = now;
    }
    free(c);
    snprintf(v->prev, sizeof(v->prev), "%s", key);
}

static const wait_kind wait_verify_kind = {"verification", "verifications", "\n", get_for_wait,
                                           wait_draw};

/* The human report of one verification (the API's object). */
static void show_verification(json_t *v)
{
    char t[64], buf[600], res[96];
    json_t *rep = report_of(v);
    show_field("verification", jstr(v, "id"));
    show_field("backup", jstr(v, "backup_id"));
    snprintf(buf, sizeof(buf), "%s%s%s%s", jstr_or(v, "agent", "?"),
             jstr(rep, "database") ? " (beside database " : "", jstr_or(rep, "database", ""),
             jstr(rep, "database") ? ")" : "");
    show_field("agent", buf);
    show_field("kind", json_is_true(json_object_get(v, "restore_test"))
                      ? "checksums and a restore test"
                      : "checksums (every chunk, the checksum list, the object's SHA-256)");
    result_text(v, res, sizeof(res));
    show_field("state", res);
    if (jstr(v, "error") != NULL)
        show_field("error", jstr(v, "error"));
    if (rep != NULL && jstr(rep, "requested_by") != NULL)
        show_field("requested by", jstr(rep, "requested_by"));
    short_time(jstr(v, "created_at"), t, sizeof(t));
    show_field("created", t);
    short_time(jstr(v, "finished_at"), t, sizeof(t));
    show_field("finished", t);
    long long a = time_ms(jstr(v, "started_at")), b = time_ms(jstr(v, "finished_at"));
    ms_text(a >= 0 && b >= a ? b - a : -1, t, sizeof(t));
    show_field("took", t);
    if (rep == NULL)
        return;

    json_t *obj = json_object_get(rep, "object");
    if (json_is_object(obj)) {
        char size[32];
        fs_human_bytes((uint64_t)(jint(obj, "bytes") > 0 ? jint(obj, "bytes") : 0), size,
                       sizeof(size));
        snprintf(buf, sizeof(buf), "%s in %lld pieces, sha256 %s: matches the catalog", size,
                 jint(obj, "pieces"), jstr_or(obj, "sha256", "?"));
        show_field("object", buf);
    }
    json_t *ar = json_object_get(rep, "archive");
    if (json_is_object(ar)) {
        char dump[32], chunk[32];
        fs_human_bytes((uint64_t)(jint(ar, "dump_bytes") > 0 ? jint(ar, "dump_bytes") : 0), dump,
                       sizeof(dump));
        fs_human_bytes((uint64_t)(jint(ar, "chunk_size") > 0 ? jint(ar, "chunk_size") : 0), chunk,
                       sizeof(chunk));
        const char *fmt = jstr_or(ar, "format", "?");
        int custom = strcmp(fmt, "custom") == 0;
        snprintf(buf, sizeof(buf),
                 "%lld chunks (of %s) authenticated; %lld members checked against SHA256SUMS "
                 "(%s format, %lld %s, %s of dump)",
                 jint(ar, "chunks"), chunk, jint(ar, "members"), fmt,
                 custom ? jint(ar, "parts") : jint(ar, "files"), custom ? "parts" : "files", dump);
        show_field("archive", buf);
    }
    const char *scratch = jstr(rep, "scratch_database");
    if (scratch != NULL) {
        json_t *dropped = json_object_get(rep, "scratch_dropped");
        snprintf(buf, sizeof(buf), "%s: %s", scratch,
                 json_is_true(dropped)    ? "dropped"
                 : json_is_false(dropped) ? "NOT dropped (the agent's next start drops it)"
                                          : "never created");
        show_field("scratch", buf);
    }
    json_t *steps = json_object_get(rep, "steps"), *s;
    size_t i;
    if (json_array_size(steps) > 0) {
        printf("\nsteps on the agent\n");
        json_array_foreach(steps, i, s)
        {
            char ms[32];
            ms_text(jint(s, "ms"), ms, sizeof(ms));
            char *name = clean_text(jstr(s, "name"));
            printf("  %-12s %10s  %s\n", name, ms,
                   json_is_false(json_object_get(s, "ok")) ? "failed" : "ok");
            free(name);
        }
    }
    json_t *tables = json_object_get(rep, "tables"), *x;
    if (json_array_size(tables) > 0) {
        table tb = {.ncols = 2};
        const char *head[] = {"TABLE", "ROWS"};
        table_row(&tb, head);
        json_array_foreach(tables, i, x)
        {
            char name[300], n[32];
            snprintf(name, sizeof(name), "%s.%s", jstr_or(x, "schema", "?"),
                     jstr_or(x, "name", "?"));
            if (jint(x, "rows") >= 0)
                snprintf(n, sizeof(n), "%lld", jint(x, "rows"));
            else
                snprintf(n, sizeof(n), "-");
            const char *row[] = {name, n};
            table_row(&tb, row);
        }
        printf("\n");
        table_print(&tb);
        printf("(%lld tables, %lld rows)\n", jint(rep, "tables_total"), jint(rep, "rows_total"));
    }
    json_t *warns = json_object_get(rep, "warnings");
    json_array_foreach(warns, i, x)
    {
        char *w = clean_text(json_string_value(x));
        printf("warning: %s\n", w);
        free(w);
    }
}

/* ---- pgship verify ---- */

static void verify_usage(FILE *f)
{
    fprintf(f,
            "usage: pgship verify ID [--restore-test] [--wait [--timeout SECONDS]] [--json]\n"
            "                        [--url URL] [--token-file FILE]\n"
            "\n"
            "Checks backup ID end to end on an agent that holds one of its keys (the backup's\n"
            "own agent when it can, else another connected one): the stored object is streamed\n"
            "to it, every chunk is decrypted and authenticated, every file is checked against\n"
            "the archive's checksum list and the whole object against the catalog's SHA-256.\n"
            "Nothing is kept. The result is recorded with the backup (pgship ls, pgship show).\n"
            "Prints the verification's id on standard output (pgship verifications ID shows it).\n"
            "\n"
            "  -r, --restore-test    also restore it into a scratch database on that agent's\n"
            "                        server (pgship_verify_<8 hex>), count every table's rows,\n"
            "                        and drop it, whatever happens\n"
            "  -w, --wait            follow it to the end: progress on standard error, then what\n"
            "                        was checked and the row counts; exit 0 only when it is ok\n"
            "      --timeout SECONDS with --wait: stop waiting after this long (it goes on)\n"
            "" COMMON_USAGE "\n"
            "exit status: 0 ok (or queued, without --wait), 1 failed or timed out, 2 usage,\n"
            "3 the coordinator cannot be reached or refused the token\n"
            "\n"
            "example:\n"
            "  pgship verify 20261121T160529Z-0a1b2c3d --restore-test --wait\n");
}

enum { OPT_VTIMEOUT = 1200 };

typedef struct verify_opts {
    int restore_test, wait;
    unsigned long timeout_s;
} verify_opts;

static int verify_opt(void *ctx, int ch, const char *arg)
{
    verify_opts *o = ctx;
    if (ch == 'r')
        o->restore_test = 1;
    else if (ch == 'w')
        o->wait = 1;
    else if (ch != OPT_VTIMEOUT)
        return -1;
    else if (parse_count(arg, 0, 30L * 24 * 3600, &o->timeout_s) != 0) {
        log_error("--timeout takes a number of seconds");
        return REMOTE_EXIT_USAGE;
    }
    return 0;
}

int cmd_verify(int argc, char **argv)
{
    static const struct option lo[] = {{"restore-test", no_argument, NULL, 'r'},
                                       {"wait", no_argument, NULL, 'w'},
                                       {"timeout", required_argument, NULL, OPT_VTIMEOUT},
                                       COMMON_LONG_OPTIONS,
                                       {NULL, 0, NULL, 0}};
    common c = {0};
    verify_opts o = {0};
    int st0 = parse_args(argc, argv, "rwh", lo, verify_usage, verify_opt, &o, &c, 1, 1);
    if (st0 >= 0)
        return st0;
    const char *backup = argv[optind];
    if (!id_ok(backup)) {
        log_error("\"%.80s\" is not a backup id (pgship ls lists them)", backup);
        return REMOTE_EXIT_USAGE;
    }
    if (o.timeout_s > 0 && !o.wait) {
        log_error("--timeout goes with --wait");
        return REMOTE_EXIT_USAGE;
    }
    char body[64];
    snprintf(body, sizeof(body), "{\"restore_test\":%s}", o.restore_test ? "true" : "false");
    remote r;
    json_t *j = NULL;
    int rc = remote_open(&r, &c);
    if (rc != 0)
        return rc;
    if (o.wait && sig_catch_start() != 0) {
        log_error("cannot set up signal handling");
        rc = REMOTE_EXIT_FAILED;
        goto out;
    }
    char path[96];
    snprintf(path, sizeof(path), "/v1/backups/%s/verify", backup);
    long st;
    rc = remote_json(&r, "POST", path, body, &j, &st);
    if (rc != 0)
        goto out;
    const char *idp = jstr(j, "id");
    json_t *queued = json_object_get(j, "verification");
    char id[VID_MAX + 1];
    if (idp == NULL || !id_ok(idp) || !json_is_object(queued)) {
        log_error("%s answered without a verification", r.base);
        rc = REMOTE_EXIT_REACH;
        goto out;
    }
    snprintf(id, sizeof(id), "%s", idp);
    {
        char *agent = clean_text(jstr(queued, "agent"));
        fprintf(stderr, "pgship: verification %s of backup %s%s is queued on agent %s\n", id,
                backup, o.restore_test ? " (with a restore test)" : "", agent);
        free(agent);
    }
    if (!o.wait) {
        if (c.json)
            print_json(queued);
        else
            printf("%s\n", id);
        goto out;
    }
    rc = wait_final(&r, &wait_verify_kind, id, o.timeout_s, &j);
    if (rc > 128) {
        log_error("stopped waiting; verification %s goes on (pgship verifications %s)", id, id);
        goto out;
    }
    const char *state = jstr(j, "state");
    if (state == NULL || (strcmp(state, "complete") != 0 && strcmp(state, "failed") != 0))
        goto out; /* unreachable, or timed out: nothing final to print */
    if (strcmp(state, "complete") == 0)
        json_object_set_new(j, "state", json_string("ok"));
    if (c.json)
        print_json(j);
    else
        show_verification(j);
    fflush(stdout);
    if (rc == REMOTE_EXIT_OK) {
        json_t *rep = report_of(j);
        if (rep != NULL && jint(rep, "tables_total") >= 0)
            fprintf(stderr, "pgship: backup %s is verified: restored, %lld tables, %lld rows\n",
                    backup, jint(rep, "tables_total"), jint(rep, "rows_total"));
        else
            fprintf(stderr, "pgship: backup %s is verified\n", backup);
    } else {
        char *err = clean_text(jstr(j, "error"));
        log_error("verification %s of backup %s failed: %s", id, backup, err);
        free(err);
    }
out:
    json_decref(j);
    remote_close(&r);
    return rc;
}

/* ---- pgship verifications ---- */

static void verifications_usage(FILE *f)
{
    fprintf(
        f, "usage: pgship verifications [ID] [--backup ID] [--limit N] [--json]\n"
           "                            [--url URL] [--token-file FILE]\n"
           "\n"
           "Without ID: the history of verifications, newest first: which backup, on which\n"
           "agent, whether with a restore test, the result, how long it took and the rows the\n"
           "restore test counted. With ID: that one's report (what was checked, its steps, the\n"
           "row count of every table, the error), with its progress while it runs.\n"
           "\n"
           "  -b, --backup ID       only the verifications of this backup\n"
           "  -n, --limit N         at most N verifications (1-10000; default 100)\n" COMMON_USAGE);
}

typedef struct verifications_opts {
    const char *backup;
    unsigned long limit;
} verifications_opts;

static int verifications_opt(void *ctx, int ch, const char *arg)
{
    verifications_opts *o = ctx;
    if (ch == 'b') {
        if (!id_ok(arg)) {
            log_error("--backup takes a backup id");
            return REMOTE_EXIT_USAGE;
        }
        o->backup = arg;
        return 0;
    }
    if (ch != 'n')
        return -1;
    if (parse_count(arg, 1, VLIST_MAX, &o->limit) != 0) {
        log_error("--limit takes a number from 1 to %d", VLIST_MAX);
        return REMOTE_EXIT_USAGE;
    }
    return 0;
}

int cmd_verifications(int argc, char **argv)
{
    static const struct option lo[] = {{"backup", required_argument, NULL, 'b'},
                                       {"limit", required_argument, NULL, 'n'},
                                       COMMON_LONG_OPTIONS,
                                       {NULL, 0, NULL, 0}};
    common c = {0};
    verifications_opts o = {0};
    int st0 =
        parse_args(argc, argv, "b:n:h", lo, verifications_usage, verifications_opt, &o, &c, 0, 1);
    if (st0 >= 0)
        return st0;
    const char *id = optind < argc ? argv[optind] : NULL;
    if (id != NULL && !id_ok(id)) {
        log_error("\"%.80s\" is not a verification id", id);
        return REMOTE_EXIT_USAGE;
    }
    if (id != NULL && (o.backup != NULL || o.limit != 0)) {
        log_error("--backup and --limit are for the list; an ID shows one verification");
        return REMOTE_EXIT_USAGE;
    }
    remote r;
    int rc = remote_open(&r, &c);
    if (rc != 0)
        return rc;
    json_t *j = NULL;
    if (id != NULL) {
        rc = get_verification(&r, id, &j);
        if (rc == 0 && c.json)
            print_json(j);
        else if (rc == 0)
            show_verification(j);
        goto out;
    }
    char path[128];
    snprintf(path, sizeof(path), "/v1/verifications?limit=%lu%s%s",
             o.limit ? o.limit : VLIST_DEFAULT, o.backup ? "&backup=" : "",
             o.backup ? o.backup : "");
    long st;
    rc = remote_json(&r, "GET", path, NULL, &j, &st);
    if (rc != 0)
        goto out;
    json_t *list = json_object_get(j, "verifications");
    if (!json_is_array(list)) {
        log_error("%s answered without a verification list", r.base);
        rc = REMOTE_EXIT_REACH;
        goto out;
    }
    int more = json_is_true(json_object_get(j, "more"));
    if (c.json) {
        print_json(list);
    } else {
        table t = {.ncols = 8};
        const char *head[] = {"ID",      "CREATED", "BACKUP", "AGENT",
                              "RESTORE", "RESULT",  "TOOK",   "ROWS"};
        table_row(&t, head);
        json_t *x;
        size_t i;
        json_array_foreach(list, i, x)
        {
            char created[32], result[96], took[32], rows[32];
            short_time(jstr(x, "created_at"), created, sizeof(created));
            result_text(x, result, sizeof(result));
            long long a = time_ms(jstr(x, "started_at")), b = time_ms(jstr(x, "finished_at"));
            ms_text(a >= 0 && b >= a ? b - a : -1, took, sizeof(took));
            long long nr = jint(report_of(x), "rows_total");
            if (nr >= 0)
                snprintf(rows, sizeof(rows), "%lld", nr);
            else
                snprintf(rows, sizeof(rows), "-");
            const char *row[] = {jstr(x, "id"),
                                 created,
                                 jstr(x, "backup_id"),
                                 jstr(x, "agent"),
                                 json_is_true(json_object_get(x, "restore_test")) ? "yes" : "no",
                                 result,
                                 took,
                                 rows};
            table_row(&t, row);
        }
        if (t.nrows == 1) {
            table_free(&t);
            fprintf(stderr, "pgship: no verifications%s\n", o.backup ? " of that backup" : " yet");
        } else {
            table_print(&t);
        }
        fflush(stdout);
    }
    if (more)
        fprintf(stderr, "pgship: there are more verifications; --limit N shows more (up to %d)\n",
                VLIST_MAX);
out:
    json_decref(j);
    remote_close(&r);
    return rc;
}
