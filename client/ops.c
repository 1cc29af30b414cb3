/*
 * pgship schedules | prune | pin | unpin | stats | audit: fleet operations over the
 * coordinator's API (docs/cli.md, docs/api.md). Each is one request and a table (or, with
 * --json, the API's JSON); the shared machinery -- options, token, connection, tables, clean
 * text -- is client/remote.c's (remote_internal.h), so these fail and print like ls and show.
 *
 * Like everything the client shows, the coordinator's answers are untrusted: every field is
 * checked for its type where it matters (an array is an array before it is walked) and every
 * string goes through the table, which replaces control characters.
 */
#include "client/commands.h"
#include "client/remote_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/fsutil.h"
#include "common/log.h"

#define AUDIT_LIMIT_MAX 10000 /* as the API's API_AUDIT_MAX */

/* "agent/db" of an object with those fields. */
static void db_text(json_t *o, char *out, size_t cap)
{
    const char *a = jstr(o, "agent"), *d = jstr(o, "database");
    snprintf(out, cap, "%s/%s", a != NULL ? a : "?", d != NULL ? d : "?");
}

/* A JSON integer as a decimal, or "-". */
static void int_text(json_t *v, char *out, size_t cap)
{
    if (json_is_integer(v))
        snprintf(out, cap, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else
        snprintf(out, cap, "-");
}

/* The common part of each command: options (none of its own but what own handles), then one
 * request. Returns an exit status; *out the answer on success. */
static int one_request(const common *c, const char *method, const char *path, const char *body,
                       remote *r, json_t **out)
{
    int rc = remote_open(r, c);
    if (rc != 0)
        return rc;
    long st;
    rc = remote_json(r, method, path, body, out, &st);
    return rc;
}

/* ---- pgship schedules ---- */

static void schedules_usage(FILE *f)
{
    fprintf(f, "usage: pgship schedules [--json] [--url URL] [--token-file FILE]\n"
               "\n"
               "Lists, for every database a [schedule NAME] selects, its next scheduled backup:\n"
               "the schedule, its cron expression and time zone, when it runs next and whether\n"
               "it is due now, merged into another schedule's run, or never runs again.\n"
               "\n" COMMON_USAGE);
}

/* The "cron (zone)" of schedule name in the answer's schedules list. */
static void cron_text(json_t *schedules, const char *name, char *out, size_t cap)
{
    json_t *s;
    size_t i;
    snprintf(out, cap, "-");
    json_array_foreach(schedules, i, s)
    {
        const char *n = jstr(s, "name");
        if (n == NULL || name == NULL || strcmp(n, name) != 0)
            continue;
        const char *zone = jstr(s, "zone");
        snprintf(out, cap, "%s (%s)", jstr(s, "cron") ? jstr(s, "cron") : "?",
                 zone != NULL ? zone : "UTC");
        return;
    }
}

int cmd_schedules(int argc, char **argv)
{
    static const struct option lo[] = {COMMON_LONG_OPTIONS, {NULL, 0, NULL, 0}};
    common c = {0};
    int st0 = parse_args(argc, argv, "h", lo, schedules_usage, NULL, NULL, &c, 0, 0);
    if (st0 >= 0)
        return st0;
    remote r;
    json_t *j = NULL;
    int rc = one_request(&c, "GET", "/v1/schedules", NULL, &r, &j);
    if (rc != 0)
        goto out;
    json_t *schedules = json_object_get(j, "schedules"), *runs = json_object_get(j, "runs");
    if (!json_is_array(schedules) || !json_is_array(runs)) {
        log_error("%s answered without the schedules and their runs", r.base);
        rc = REMOTE_EXIT_REACH;
        goto out;
    }
    if (c.json) {
        print_json(j);
        goto out;
    }
    json_t *speed = json_object_get(j, "speed");
    if (json_is_integer(speed) && json_integer_value(speed) > 1)
        fprintf(stderr,
                "pgship: the scheduler's clock runs %" JSON_INTEGER_FORMAT
                " times faster than real time (a test setting)\n",
                json_integer_value(speed));
    table t = {.ncols = 5};
    const char *head[] = {"DATABASE", "SCHEDULE", "CRON", "NEXT RUN", "STATUS"};
    table_row(&t, head);
    json_t *x;
    size_t i;
    json_array_foreach(runs, i, x)
    {
        char db[200], cron[200], next[32], status[120];
        const char *env = jstr(x, "environment"), *merged = jstr(x, "merged_into");
        int n = snprintf(db, sizeof(db), "%s/%s", jstr(x, "agent") ? jstr(x, "agent") : "?",
                         jstr(x, "database") ? jstr(x, "database") : "?");
        if (env != NULL && n > 0 && (size_t)n < sizeof(db))
            snprintf(db + n, sizeof(db) - (size_t)n, " (%s)", env);
        cron_text(schedules, jstr(x, "schedule"), cron, sizeof(cron));
        short_time(jstr(x, "run_at"), next, sizeof(next));
        if (json_is_true(json_object_get(x, "due_now")))
            snprintf(status, sizeof(status), "due now");
        else if (merged != NULL)
            snprintf(status, sizeof(status), "merged into %s", merged);
        else if (jstr(x, "run_at") == NULL)
            snprintf(status, sizeof(status), "never");
        else
            snprintf(status, sizeof(status), "-");
        char sched[160];
        const char *act = jstr(x, "action");
        snprintf(sched, sizeof(sched), "%s%s%s%s", jstr(x, "schedule") ? jstr(x, "schedule") : "?",
                 act != NULL && strcmp(act, "backup") != 0 ? " (" : "",
                 act != NULL && strcmp(act, "backup") != 0 ? act : "",
                 act != NULL && strcmp(act, "backup") != 0 ? ")" : "");
        const char *row[] = {db, sched, cron, next, status};
        table_row(&t, row);
    }
    if (t.nrows == 1) {
        table_free(&t);
        if (json_array_size(schedules) == 0)
            fprintf(stderr, "pgship: the coordinator has no schedules ([schedule NAME] in its "
                            "configuration)\n");
        else
            fprintf(stderr, "pgship: no database the coordinator knows matches a schedule\n");
    } else {
        table_print(&t);
    }
out:
    json_decref(j);
    remote_close(&r);
    return rc;
}

/* ---- pgship prune ---- */

static void prune_usage(FILE *f)
{
    fprintf(f,
            "usage: pgship prune [--dry-run] [--json] [--url URL] [--token-file FILE]\n"
            "\n"
            "Applies the retention policies ([retention NAME]) to the catalog and storage: prints\n"
            "every backup of a database a policy covers with its fate (KEEP or DELETE) and the\n"
            "rules that decided it, then deletes the DELETE ones (object, sidecar, catalog row)\n"
            "and prints a summary. Pinned backups and the newest complete backup of each\n"
            "database are always kept. Needs a token with role admin. Exit status 1 when a\n"
            "deletion failed (the others are done).\n"
            "\n"
            "  -n, --dry-run         only print the plan; nothing is deleted\n" COMMON_USAGE);
}

static int prune_opt(void *ctx, int ch, const char *arg)
{
    (void)arg;
    if (ch != 'n')
        return -1;
    *(int *)ctx = 1;
    return 0;
}

/* 1 when id is among the answer's failures. */
static int prune_failed(json_t *failures, const char *id)
{
    json_t *f;
    size_t i;
    json_array_foreach(failures, i, f)
    {
        const char *fid = jstr(f, "id");
        if (fid != NULL && id != NULL && strcmp(fid, id) == 0)
            return 1;
    }
    return 0;
}

/* The reasons array as "a, b, c". */
static void reasons_text(json_t *reasons, char *out, size_t cap)
{
    json_t *x;
    size_t i, used = 0;
    out[0] = '\0';
    json_array_foreach(reasons, i, x)
    {
        const char *s = json_string_value(x);
        int n = snprintf(out + used, cap - used, "%s%s", used ? ", " : "", s != NULL ? s : "?");
        if (n < 0 || (size_t)n >= cap - used)
            break;
        used += (size_t)n;
    }
}

static uint64_t uint_of(json_t *v)
{
    return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

int cmd_prune(int argc, char **argv)
{
    static const struct option lo[] = {
        {"dry-run", no_argument, NULL, 'n'}, COMMON_LONG_OPTIONS, {NULL, 0, NULL, 0}};
    common c = {0};
    int dry = 0;
    int st0 = parse_args(argc, argv, "nh", lo, prune_usage, prune_opt, &dry, &c, 0, 0);
    if (st0 >= 0)
        return st0;
    remote r;
    json_t *j = NULL;
    int rc = one_request(&c, "POST", "/v1/prune",
                         dry ? "{\"dry_run\":true}" : "{\"dry_run\":false}", &r, &j);
    if (rc != 0)
        goto out;
    json_t *list = json_object_get(j, "backups"), *failures = json_object_get(j, "failures");
    if (!json_is_array(list) || (!dry && !json_is_array(failures))) {
        log_error("%s answered without a prune plan", r.base);
        rc = REMOTE_EXIT_REACH;
        goto out;
    }
    uint64_t nfailed = dry ? 0 : uint_of(json_object_get(j, "failed"));
    if (nfailed > 0)
        rc = REMOTE_EXIT_FAILED;
    if (c.json) {
        print_json(j);
        goto out;
    }
    table t = {.ncols = 8};
    const char *head[] = {"ID",   "AGENT/DATABASE", "ENV",    "TIME",
                          "SIZE", "FATE",           "POLICY", "REASONS"};
    table_row(&t, head);
    json_t *b;
    size_t i;
    json_array_foreach(list, i, b)
    {
        char db[160], when[32], size[32], reasons[512];
        const char *fate = jstr(b, "fate");
        int del = fate != NULL && strcmp(fate, "delete") == 0;
        db_text(b, db, sizeof(db));
        short_time(jstr(b, "time"), when, sizeof(when));
        size_text(json_object_get(b, "size_bytes"), size, sizeof(size));
        reasons_text(json_object_get(b, "reasons"), reasons, sizeof(reasons));
        if (del && reasons[0] == '\0')
            snprintf(reasons, sizeof(reasons), "no rule keeps it");
        const char *f = !del                                              ? "KEEP"
                        : (!dry && prune_failed(failures, jstr(b, "id"))) ? "FAILED"
                                                                          : "DELETE";
        const char *row[] = {jstr(b, "id"), db, jstr(b, "environment"), when,
                             size,          f,  jstr(b, "policy"),      reasons};
        table_row(&t, row);
    }
    if (t.nrows == 1) {
        table_free(&t);
        fprintf(stderr, "pgship: nothing to prune: no retention policy covers a backup\n");
        goto out;
    }
    table_print(&t);
    char bytes[32];
    uint64_t nkeep = uint_of(json_object_get(j, "keep")),
             ndel = uint_of(json_object_get(j, "delete"));
    uint64_t ndb = uint_of(json_object_get(j, "databases"));
    if (dry) {
        size_text(json_object_get(j, "delete_bytes"), bytes, sizeof(bytes));
        printf("dry run: %" PRIu64 " backups of %" PRIu64 " database%s: %" PRIu64
               " to keep, %" PRIu64 " to delete (%s); nothing was deleted\n",
               nkeep + ndel, ndb, ndb == 1 ? "" : "s", nkeep, ndel, bytes);
        goto out;
    }
    size_text(json_object_get(j, "bytes_deleted"), bytes, sizeof(bytes));
    printf("deleted %" PRIu64 " of %" PRIu64 " backups (%s freed); %" PRIu64 " skipped, %" PRIu64
           " failed; %" PRIu64 " kept\n",
           uint_of(json_object_get(j, "deleted")), ndel, bytes,
           uint_of(json_object_get(j, "skipped")), nfailed, nkeep);
    fflush(stdout);
    json_t *x;
    json_array_foreach(failures, i, x)
    {
        char *id = clean_text(jstr(x, "id")), *err = clean_text(jstr(x, "error"));
        log_error("backup %s was not deleted: %s", id, err);
        free(id);
        free(err);
    }
    if (nfailed > json_array_size(failures))
        log_error("%" PRIu64 " deletions failed in all (the coordinator's log has each)", nfailed);
out:
    json_decref(j);
    remote_close(&r);
    return rc;
}

/* ---- pgship pin, pgship unpin ---- */

static void pin_usage(FILE *f)
{
    fprintf(f, "usage: pgship pin ID [--json] [--url URL] [--token-file FILE]\n"
               "\n"
               "Pins backup ID: no prune deletes it, whatever the retention policy says, until\n"
               "it is unpinned. Needs a token with role operate.\n"
               "\n" COMMON_USAGE);
}

static void unpin_usage(FILE *f)
{
    fprintf(f, "usage: pgship unpin ID [--json] [--url URL] [--token-file FILE]\n"
               "\n"
               "Unpins backup ID: the retention policy decides its fate again at the next prune.\n"
               "Needs a token with role admin.\n"
               "\n" COMMON_USAGE);
}

static int pin_cmd(int argc, char **argv, int pin)
{
    static const struct option lo[] = {COMMON_LONG_OPTIONS, {NULL, 0, NULL, 0}};
    common c = {0};
    int st0 = parse_args(argc, argv, "h", lo, pin ? pin_usage : unpin_usage, NULL, NULL, &c, 1, 1);
    if (st0 >= 0)
        return st0;
    const char *id = argv[optind];
    if (!id_ok(id)) {
        log_error("\"%.80s\" is not a backup id", id);
        return REMOTE_EXIT_USAGE;
    }
    char path[96];
    snprintf(path, sizeof(path), "/v1/backups/%s/%s", id, pin ? "pin" : "unpin");
    remote r;
    json_t *j = NULL;
    int rc = one_request(&c, "POST", path, "{}", &r, &j);
    if (rc != 0)
        goto out;
    if (jstr(j, "id") == NULL) {
        log_error("%s answered without a backup", r.base);
        rc = REMOTE_EXIT_REACH;
        goto out;
    }
    if (c.json) {
        print_json(j);
        goto out;
    }
    char db[160], created[32];
    db_text(j, db, sizeof(db));
    short_time(jstr(j, "created_at"), created, sizeof(created));
    char *cid = clean_text(jstr(j, "id")), *cdb = clean_text(db);
    printf("backup %s (%s, %s) is %s\n", cid, cdb, created,
           pin ? "pinned: no prune deletes it" : "unpinned: its retention policy applies again");
    free(cid);
    free(cdb);
out:
    json_decref(j);
    remote_close(&r);
    return rc;
}

int cmd_pin(int argc, char **argv)
{
    return pin_cmd(argc, argv, 1);
}

int cmd_unpin(int argc, char **argv)
{
    return pin_cmd(argc, argv, 0);
}

/* ---- pgship stats ---- */

static void stats_usage(FILE *f)
{
    fprintf(f, "usage: pgship stats [--json] [--url URL] [--token-file FILE]\n"
               "\n"
               "Per database (agent, database, environment): the complete backups' count, total\n"
               "and average stored size, the newest and oldest (by the time the dump started),\n"
               "and the failed backups still in the catalog; then the fleet's total.\n"
               "\n" COMMON_USAGE);
}

/* One stats row: s is a database's object, or the total (first cell given). */
static void stats_row(table *t, json_t *s, const char *first, const char *env)
{
    char count[32], total[32], avg[32], newest[32], oldest[32], failed[32];
    int_text(json_object_get(s, "complete"), count, sizeof(count));
    size_text(json_object_get(s, "total_bytes"), total, sizeof(total));
    if (uint_of(json_object_get(s, "complete")) > 0)
        size_text(json_object_get(s, "average_bytes"), avg, sizeof(avg));
    else
        snprintf(avg, sizeof(avg), "-");
    short_time(jstr(s, "newest_complete"), newest, sizeof(newest));
    short_time(jstr(s, "oldest_complete"), oldest, sizeof(oldest));
    int_text(json_object_get(s, "failed"), failed, sizeof(failed));
    const char *row[] = {first, env, count, total, avg, newest, oldest, failed};
    table_row(t, row);
}

int cmd_stats(int argc, char **argv)
{
    static const struct option lo[] = {COMMON_LONG_OPTIONS, {NULL, 0, NULL, 0}};
    common c = {0};
    int st0 = parse_args(argc, argv, "h", lo, stats_usage, NULL, NULL, &c, 0, 0);
    if (st0 >= 0)
        return st0;
    remote r;
    json_t *j = NULL;
    int rc = one_request(&c, "GET", "/v1/stats", NULL, &r, &j);
    if (rc != 0)
        goto out;
    json_t *list = json_object_get(j, "databases"), *total = json_object_get(j, "total");
    if (!json_is_array(list) || !json_is_object(total)) {
        log_error("%s answered without statistics", r.base);
        rc = REMOTE_EXIT_REACH;
        goto out;
    }
    if (c.json) {
        print_json(j);
        goto out;
    }
    if (json_array_size(list) == 0) {
        fprintf(stderr, "pgship: the catalog has no backups\n");
        goto out;
    }
    table t = {.ncols = 8};
    const char *head[] = {"AGENT/DATABASE", "ENV",    "COUNT",  "TOTAL",
                          "AVERAGE",        "NEWEST", "OLDEST", "FAILED"};
    table_row(&t, head);
    json_t *s;
    size_t i;
    json_array_foreach(list, i, s)
    {
        char db[160];
        db_text(s, db, sizeof(db));
        stats_row(&t, s, db, jstr(s, "environment"));
    }
    char first[64];
    snprintf(first, sizeof(first), "total (%zu database%s)", json_array_size(list),
             json_array_size(list) == 1 ? "" : "s");
    stats_row(&t, total, first, "");
    table_print(&t);
out:
    json_decref(j);
    remote_close(&r);
    return rc;
}

/* ---- pgship audit ---- */

static void audit_usage(FILE *f)
{
    fprintf(f, "usage: pgship audit [--limit N] [--json] [--url URL] [--token-file FILE]\n"
               "\n"
               "The coordinator's audit log, newest first: every request that changed something\n"
               "(or tried to), with who asked, their role, the action, its target and the\n"
               "result (ok, denied, or the error). Needs a token with role admin.\n"
               "\n"
               "  -n, --limit N         at most N entries (1-10000; default 100)\n" COMMON_USAGE);
}

static int audit_opt(void *ctx, int ch, const char *arg)
{
    if (ch != 'n')
        return -1;
    if (parse_count(arg, 1, AUDIT_LIMIT_MAX, ctx) != 0) {
        log_error("--limit takes a number from 1 to %d", AUDIT_LIMIT_MAX);
        return REMOTE_EXIT_USAGE;
    }
    return 0;
}

int cmd_audit(int argc, char **argv)
{
    static const struct option lo[] = {
        {"limit", required_argument, NULL, 'n'}, COMMON_LONG_OPTIONS, {NULL, 0, NULL, 0}};
    common c = {0};
    unsigned long limit = 0;
    int st0 = parse_args(argc, argv, "n:h", lo, audit_usage, audit_opt, &limit, &c, 0, 0);
    if (st0 >= 0)
        return st0;
    char path[64];
    snprintf(path, sizeof(path), "/v1/audit?limit=%lu", limit ? limit : 100);
    remote r;
    json_t *j = NULL;
    int rc = one_request(&c, "GET", path, NULL, &r, &j);
    if (rc != 0)
        goto out;
    json_t *list = json_object_get(j, "entries");
    if (!json_is_array(list)) {
        log_error("%s answered without audit entries", r.base);
        rc = REMOTE_EXIT_REACH;
        goto out;
    }
    int more = json_is_true(json_object_get(j, "more"));
    if (c.json) { /* the array, as ls: scripts iterate it */
        print_json(list);
    } else if (json_array_size(list) == 0) {
        fprintf(stderr, "pgship: the audit log is empty\n");
    } else {
        table t = {.ncols = 6};
        const char *head[] = {"AT", "WHO", "ROLE", "ACTION", "TARGET", "RESULT"};
        table_row(&t, head);
        json_t *x;
        size_t i;
        json_array_foreach(list, i, x)
        {
            char at[32];
            short_time(jstr(x, "at"), at, sizeof(at));
            const char *row[] = {at,
                                 jstr(x, "who"),
                                 jstr(x, "role"),
                                 jstr(x, "action"),
                                 jstr(x, "target"),
                                 jstr(x, "result")};
            table_row(&t, row);
        }
        table_print(&t);
    }
    fflush(stdout);
    if (more)
        fprintf(stderr, "pgship: the log has older entries; --limit N shows more (up to %d)\n",
                AUDIT_LIMIT_MAX);
out:
    json_decref(j);
    remote_close(&r);
    return rc;
}
