/*
 * Tests of the scheduler's planning core (coordinator/scheduler.c), with real dates and no
 * sleeping: each test builds a small fleet, plans at chosen instants and, like the daemon will,
 * stores the decisions' last_due back as the next tick's state. Covered: the jitter (stable, in
 * range, spread), first sight, runs at due + offset, catch-up after downtime with and without
 * catch_up (and the grace), disconnected agents, the global and per-agent limits and their order
 * across ticks, two schedules on one database, the listing of next runs, one DST case, refused
 * inputs, and a property test that drives generated fleets through simulated days (with a
 * downtime) and checks the plan's invariants against a brute-force walk of the due times.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>

#include "common/cron.h"
#include "coordinator/scheduler.h"
#include "coordinator/select.h"
#include "tests/unit/testutil.h"

#define ZONEINFO "/usr/share/zoneinfo"
#define MAXS 8
#define MAXD 64
#define MAXST (MAXS * MAXD)

static int64_t utc(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    return (int64_t)timegm(&tm);
}

/* A fleet: schedules, databases, the stored states, and the input that points at them. */
typedef struct fleet {
    sched_schedule s[MAXS];
    cron_expr *cron[MAXS];
    db_select *sel[MAXS];
    size_t ns;
    sched_database d[MAXD];
    char names[MAXD][2][32];
    size_t nd;
    sched_state st[MAXST];
    size_t nst;
    sched_input in;
} fleet;

static fleet *fleet_new(void)
{
    fleet *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->in.limits = (sched_limits){.max_concurrent = 100,
                                  .max_per_agent = 100,
                                  .catch_up = 1,
                                  .grace_s = SCHED_GRACE_DEFAULT_S};
    return f;
}

static void fleet_free(fleet *f)
{
    for (size_t i = 0; i < f->ns; i++) {
        cron_free(f->cron[i]);
        select_free(f->sel[i]);
    }
    free(f);
}

static void add_schedule(fleet *f, const char *name, const char *cron, const char *sel,
                         int64_t jitter)
{
    assert_true(f->ns < MAXS);
    pgs_error e = {0};
    if (cron_parse_dir(cron, ZONEINFO, &f->cron[f->ns], &e) != 0)
        fail_msg("cron_parse \"%s\": %s", cron, e.msg);
    if (select_parse(sel, &f->sel[f->ns], &e) != 0)
        fail_msg("select_parse \"%s\": %s", sel, e.msg);
    f->s[f->ns] = (sched_schedule){name, f->cron[f->ns], f->sel[f->ns], jitter};
    f->ns++;
}

static sched_database *add_db(fleet *f, const char *agent, const char *db, const char *env)
{
    assert_true(f->nd < MAXD);
    snprintf(f->names[f->nd][0], sizeof(f->names[f->nd][0]), "%s", agent);
    snprintf(f->names[f->nd][1], sizeof(f->names[f->nd][1]), "%s", db);
    sched_database *d = &f->d[f->nd];
    *d = (sched_database){f->names[f->nd][0], f->names[f->nd][1], env, 1, 0, 0};
    f->nd++;
    return d;
}

static void set_state(fleet *f, const char *sched, const char *agent, const char *db,
                      int64_t last_due)
{
    for (size_t i = 0; i < f->nst; i++)
        if (strcmp(f->st[i].schedule, sched) == 0 && strcmp(f->st[i].agent, agent) == 0 &&
            strcmp(f->st[i].database, db) == 0) {
            f->st[i].last_due = last_due;
            return;
        }
    assert_true(f->nst < MAXST);
    /* Names that outlive the caller's strings: those of the fleet's own schedules and dbs. */
    const char *sn = NULL, *an = NULL, *dn = NULL;
    for (size_t i = 0; i < f->ns; i++)
        if (strcmp(f->s[i].name, sched) == 0)
            sn = f->s[i].name;
    for (size_t i = 0; i < f->nd; i++)
        if (strcmp(f->d[i].agent, agent) == 0 && strcmp(f->d[i].database, db) == 0)
            an = f->d[i].agent, dn = f->d[i].database;
    assert_non_null(sn);
    assert_non_null(an);
    f->st[f->nst++] = (sched_state){sn, an, dn, last_due};
}

static sched_decision *plan_at(fleet *f, int64_t now, int64_t up_since, size_t *n)
{
    f->in.schedules = f->s;
    f->in.nschedules = f->ns;
    f->in.databases = f->d;
    f->in.ndatabases = f->nd;
    f->in.states = f->st;
    f->in.nstates = f->nst;
    f->in.now = now;
    f->in.up_since = up_since;
    sched_decision *dec = NULL;
    pgs_error e = {0};
    if (sched_plan(&f->in, &dec, n, &e) != 0)
        fail_msg("sched_plan: %s", e.msg);
    return dec;
}

/* What the daemon does with a plan's states. */
static void store(fleet *f, const sched_decision *dec, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (dec[i].changed)
            set_state(f, dec[i].schedule, dec[i].agent, dec[i].database, dec[i].last_due);
}

static const sched_decision *find(const sched_decision *dec, size_t n, const char *sched,
                                  const char *agent, const char *db)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(dec[i].schedule, sched) == 0 && strcmp(dec[i].agent, agent) == 0 &&
            strcmp(dec[i].database, db) == 0)
            return &dec[i];
    fail_msg("no decision for %s %s/%s", sched, agent, db);
    return NULL;
}

static size_t count_action(const sched_decision *dec, size_t n, int action)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += dec[i].action == action;
    return c;
}

static int have_tzdata(void)
{
    struct stat st;
    if (stat(ZONEINFO "/Europe/Berlin", &st) != 0) {
        print_message("tzdata is missing: no " ZONEINFO "/Europe/Berlin; zone test skipped\n");
        return 0;
    }
    return 1;
}

/* ---- jitter ---- */

static void test_jitter_stable_in_range_and_spread(void **state)
{
    (void)state;
    assert_int_equal(sched_jitter("daily", "a", "db", 0), 0);
    assert_int_equal(sched_jitter("daily", "a", "db", 1), 0);
    int64_t seen[200];
    size_t distinct = 0;
    for (int i = 0; i < 200; i++) {
        char db[32];
        snprintf(db, sizeof(db), "app%d", i);
        int64_t o = sched_jitter("daily", "db-1", db, 3600);
        assert_true(o >= 0 && o < 3600);
        assert_int_equal(sched_jitter("daily", "db-1", db, 3600), o); /* stable */
        int dup = 0;
        for (size_t k = 0; k < distinct; k++)
            dup |= seen[k] == o;
        if (!dup)
            seen[distinct++] = o;
    }
    /* 200 draws from 3600 values: a handful of collisions at most. */
    assert_true(distinct >= 180);
    /* Each name counts, and the boundaries between names do too. */
    assert_int_not_equal(sched_jitter("daily", "db-1", "app1", 86400),
                         sched_jitter("weekly", "db-1", "app1", 86400));
    assert_int_not_equal(sched_jitter("daily", "db-1", "app1", 86400),
                         sched_jitter("daily", "db-2", "app1", 86400));
    assert_int_not_equal(sched_jitter("s", "ab", "c", 86400), sched_jitter("s", "a", "bc", 86400));
    /* A known value: the offset is part of the contract (a listing made today stays true). */
    int64_t o = sched_jitter("daily", "db-1", "app", 86400);
    assert_int_equal(sched_jitter("daily", "db-1", "app", 86400), o);
    assert_true(o >= 0 && o < 86400);
}

/* ---- first sight and jitter ---- */

static void test_first_sight_does_not_run_at_once(void **state)
{
    (void)state;
    fleet *f = fleet_new();
    add_schedule(f, "hourly", "0 * * * *", "*", 0);
    add_db(f, "a", "app", "prod");
    /* Seen exactly at a due time: still no run before the next one. */
    int64_t t0 = utc(2024, 5, 1, 10, 0, 0);
    size_t n;
    sched_decision *dec = plan_at(f, t0, t0, &n);
    assert_int_equal(n, 1);
    assert_int_equal(dec[0].action, SCHED_IDLE);
    assert_int_equal(dec[0].why, SCHED_WHY_FIRST_SEEN);
    assert_int_equal(dec[0].due, utc(2024, 5, 1, 11, 0, 0));
    assert_int_equal(dec[0].run_at, utc(2024, 5, 1, 11, 0, 0));
    assert_int_equal(dec[0].last_due, t0);
    assert_int_equal(dec[0].changed, 1);
    assert_int_equal(dec[0].merged_into, SCHED_NONE);
    assert_string_equal(sched_action_name(dec[0].action), "idle");
    store(f, dec, n);
    free(dec);

    /* Idle until 11:00, with nothing to store. */
    dec = plan_at(f, utc(2024, 5, 1, 10, 59, 59), t0, &n);
    assert_int_equal(dec[0].action, SCHED_IDLE);
    assert_int_equal(dec[0].why, SCHED_WHY_NONE);
    assert_int_equal(dec[0].changed, 0);
    free(dec);
    dec = plan_at(f, utc(2024, 5, 1, 11, 0, 0), t0, &n);
    assert_int_equal(dec[0].action, SCHED_START);
    assert_int_equal(dec[0].why, SCHED_WHY_NONE);
    assert_int_equal(dec[0].due, utc(2024, 5, 1, 11, 0, 0));
    assert_int_equal(dec[0].last_due, utc(2024, 5, 1, 11, 0, 0));
    assert_int_equal(dec[0].missed_first, 0);
    assert_int_equal(dec[0].changed, 1);
    store(f, dec, n);
    free(dec);
    /* The next tick: the run is dealt with, the next one is at 12:00. */
    f->d[0].busy = 1;
    f->d[0].running = 1;
    dec = plan_at(f, utc(2024, 5, 1, 11, 0, 30), t0, &n);
    assert_int_equal(dec[0].action, SCHED_IDLE);
    assert_int_equal(dec[0].due, utc(2024, 5, 1, 12, 0, 0));
    free(dec);
    fleet_free(f);
}

static void test_due_runs_at_due_plus_offset(void **state)
{
    (void)state;
    fleet *f = fleet_new();
    add_schedule(f, "daily", "30 1 * * *", "env=prod", 1800);
    add_db(f, "a", "app", "prod");
    add_db(f, "a", "other", "prod");
    add_db(f, "a", "test", "staging"); /* not selected */
    int64_t t0 = utc(2024, 5, 1, 12, 0, 0);
    size_t n;
    sched_decision *dec = plan_at(f, t0, t0, &n);
    assert_int_equal(n, 2);
    store(f, dec, n);
    free(dec);

    int64_t due = utc(2024, 5, 2, 1, 30, 0);
    int64_t o1 = sched_jitter("daily", "a", "app", 1800);
    int64_t o2 = sched_jitter("daily", "a", "other", 1800);
    assert_true(o1 > 0 && o2 > 0 && o1 != o2);
    int64_t first = o1 < o2 ? o1 : o2, second = o1 < o2 ? o2 : o1;
    const char *first_db = o1 < o2 ? "app" : "other";
    const char *second_db = o1 < o2 ? "other" : "app";

    dec = plan_at(f, due + first - 1, t0, &n);
    assert_int_equal(count_action(dec, n, SCHED_IDLE), 2);
    const sched_decision *d = find(dec, n, "daily", "a", "app");
    assert_int_equal(d->due, due);
    assert_int_equal(d->offset, o1);
    assert_int_equal(d->run_at, due + o1);
    free(dec);

    dec = plan_at(f, due + first, t0, &n);
    assert_int_equal(find(dec, n, "daily", "a", first_db)->action, SCHED_START);
    assert_int_equal(find(dec, n, "daily", "a", second_db)->action, SCHED_IDLE);
    store(f, dec, n);
    free(dec);
    dec = plan_at(f, due + second, t0, &n);
    assert_int_equal(find(dec, n, "daily", "a", first_db)->action, SCHED_IDLE);
    assert_int_equal(find(dec, n, "daily", "a", first_db)->due, due + 86400);
    assert_int_equal(find(dec, n, "daily", "a", second_db)->action, SCHED_START);
    free(dec);
    fleet_free(f);
}

/* ---- downtime ---- */

static void test_downtime_catch_up_runs_once(void **state)
{
    (void)state;
    fleet *f = fleet_new();
    add_schedule(f, "nightly", "0 2 * * *", "*", 0);
    add_db(f, "a", "app", NULL);
    set_state(f, "nightly", "a", "app", utc(2024, 5, 1, 2, 0, 0));
    /* Down from May 1 noon to May 4 10:00: due times on the 2nd, 3rd and 4th passed. */
    int64_t up = utc(2024, 5, 4, 10, 0, 0);
    size_t n;
    sched_decision *dec = plan_at(f, up, up, &n);
    assert_int_equal(dec[0].action, SCHED_START);
    assert_int_equal(dec[0].why, SCHED_WHY_CATCH_UP);
    assert_int_equal(dec[0].due, utc(2024, 5, 4, 2, 0, 0));
    assert_int_equal(dec[0].last_due, utc(2024, 5, 4, 2, 0, 0));
    assert_int_equal(dec[0].missed_first, 0);
    assert_int_equal(dec[0].missed_last, 0);
    store(f, dec, n);
    free(dec);
    /* No burst: the next tick has nothing due. */
    f->d[0].busy = 1;
    f->d[0].running = 1;
    dec = plan_at(f, up + 10, up, &n);
    assert_int_equal(dec[0].action, SCHED_IDLE);
    assert_int_equal(dec[0].due, utc(2024, 5, 5, 2, 0, 0));
    free(dec);
    fleet_free(f);
}

static void test_downtime_without_catch_up_is_missed(void **state)
{
    (void)state;
    fleet *f = fleet_new();
    f->in.limits.catch_up = 0;
    add_schedule(f, "nightly", "0 2 * * *", "*", 0);
    add_db(f, "a", "app", NULL);
    set_state(f, "nightly", "a", "app", utc(2024, 5, 1, 2, 0, 0));
    int64_t up = utc(2024, 5, 4, 10, 0, 0);
    size_t n;
    sched_decision *dec = plan_at(f, up, up, &n);
    assert_int_equal(dec[0].action, SCHED_MISSED);
    assert_int_equal(dec[0].why, SCHED_WHY_DOWN);
    assert_int_equal(dec[0].missed_first, utc(2024, 5, 2, 2, 0, 0));
    assert_int_equal(dec[0].missed_last, utc(2024, 5, 4, 2, 0, 0));
    assert_int_equal(dec[0].last_due, utc(2024, 5, 4, 2, 0, 0));
    assert_int_equal(dec[0].changed, 1);
    store(f, dec, n);
    free(dec);
    dec = plan_at(f, up + 60, up, &n);
    assert_int_equal(dec[0].action, SCHED_IDLE);
    assert_int_equal(dec[0].missed_first, 0);
    free(dec);

    /* Back within the grace of the latest due time: it still runs, the earlier ones are missed. */
    set_state(f, "nightly", "a", "app", utc(2024, 5, 1, 2, 0, 0));
    up = utc(2024, 5, 4, 2, 4, 0);
    dec = plan_at(f, up, up, &n);
    assert_int_equal(dec[0].action, SCHED_START);
    assert_int_equal(dec[0].why, SCHED_WHY_NONE);
    assert_int_equal(dec[0].due, utc(2024, 5, 4, 2, 0, 0));
    assert_int_equal(dec[0].missed_first, utc(2024, 5, 2, 2, 0, 0));
    assert_int_equal(dec[0].missed_last, utc(2024, 5, 3, 2, 0, 0));
    free(dec);
    /* Past the grace: missed too. */
    up = utc(2024, 5, 4, 2, 5, 1);
    dec = plan_at(f, up, up, &n);
    assert_int_equal(dec[0].action, SCHED_MISSED);
    free(dec);
    fleet_free(f);
}

static void test_downtime_long_and_dense(void **state)
{
    (void)state;
    /* Thirty days of a due time every 7 minutes: one catch-up run of the latest, found by the
     * binary search, not by walking 6000 due times. */
    fleet *f = fleet_new();
    f->in.limits.grace_s = 0;
    add_schedule(f, "often", "*/7 * * * *", "*", 600);
    add_db(f, "a", "app", NULL);
    set_state(f, "often", "a", "app", utc(2024, 1, 1, 0, 0, 0));
    int64_t up = utc(2024, 1, 31, 13, 17, 42);
    int64_t off = sched_jitter("often", "a", "app", 600);
    /* The latest minute m (of 0, 7, ..., 56 in each hour) with m + off <= now. */
    int64_t t = up - off, want = 0;
    for (int64_t h = (t / 3600) * 3600 - 3600; h <= t; h += 3600)
        for (int m = 0; m < 60; m += 7)
            if (h + m * 60 <= t)
                want = h + m * 60;
    assert_true(want + off < up); /* late, even without a grace */
    size_t n;
    sched_decision *dec = plan_at(f, up, up, &n);
    assert_int_equal(dec[0].action, SCHED_START);
    assert_int_equal(dec[0].why, SCHED_WHY_CATCH_UP);
    assert_int_equal(dec[0].due, want);
    assert_int_equal(dec[0].run_at, want + off);
    free(dec);

    f->in.limits.catch_up = 0;
    dec = plan_at(f, up, up, &n);
    assert_int_equal(dec[0].action, SCHED_MISSED);
    assert_int_equal(dec[0].missed_first, utc(2024, 1, 1, 0, 7, 0));
    assert_int_equal(dec[0].missed_last, want);
    free(dec);
    fleet_free(f);
}

/* ---- agents ---- */

static void test_disconnected_agent_waits_then_missed(void **state)
{
    (void)state;
    fleet *f = fleet_new();
    add_schedule(f, "nightly", "0 2 * * *", "*", 0);
    sched_database *db = add_db(f, "far", "app", NULL);
    db->connected = 0;
    int64_t up = utc(2024, 5, 1, 0, 0, 0);
    set_state(f, "nightly", "far", "app", utc(2024, 5, 1, 0, 0, 0) - 3600);
    int64_t due = utc(2024, 5, 1, 2, 0, 0);
    size_t n;
    sched_decision *dec = plan_at(f, due + 60, up, &n);
    assert_int_equal(dec[0].action, SCHED_WAIT);
    assert_int_equal(dec[0].why, SCHED_WHY_AGENT_WAIT);
    assert_int_equal(dec[0].last_due, utc(2024, 5, 1, 0, 0, 0) - 3600);
    assert_int_equal(dec[0].changed, 0);
    assert_int_equal(dec[0].missed_first, 0);
    free(dec);
    dec = plan_at(f, due + SCHED_GRACE_DEFAULT_S, up, &n);
    assert_int_equal(dec[0].action, SCHED_MISSED);
    assert_int_equal(dec[0].why, SCHED_WHY_AGENT_GONE);
    assert_string_equal(sched_why_text(dec[0].why), "agent not connected");
    assert_int_equal(dec[0].missed_first, due);
    assert_int_equal(dec[0].missed_last, due);
    assert_int_equal(dec[0].last_due, due);
    store(f, dec, n);
    free(dec);
    dec = plan_at(f, due + SCHED_GRACE_DEFAULT_S + 1, up, &n);
    assert_int_equal(dec[0].action, SCHED_IDLE);
    free(dec);

    /* Right after a restart agents have not reconnected yet: a catch-up run waits for them for
     * the grace, counted from the start. */
    set_state(f, "nightly", "far", "app", utc(2024, 4, 28, 2, 0, 0));
    up = utc(2024, 5, 1, 9, 0, 0);
    dec = plan_at(f, up + 10, up, &n);
    assert_int_equal(dec[0].action, SCHED_WAIT);
    assert_int_equal(dec[0].why, SCHED_WHY_AGENT_WAIT);
    free(dec);
    db->connected = 1;
    dec = plan_at(f, up + 20, up, &n);
    assert_int_equal(dec[0].action, SCHED_START);
    assert_int_equal(dec[0].why, SCHED_WHY_CATCH_UP);
    assert_int_equal(dec[0].due, utc(2024, 5, 1, 2, 0, 0));
    free(dec);
    fleet_free(f);
}

/* ---- limits ---- */

static void test_limits_global_and_per_agent(void **state)
{
    (void)state;
    fleet *f = fleet_new();
    f->in.limits.max_concurrent = 2;
    f->in.limits.max_per_agent = 1;
    add_schedule(f, "nightly", "0 2 * * *", "*", 0);
    add_schedule(f, "late", "5 2 * * *", "database=z", 0);
    const char *agents[] = {"c", "a", "b"}; /* input order must not matter */
    for (int i = 0; i < 3; i++) {
        add_db(f, agents[i], "y", NULL);
        add_db(f, agents[i], "x", NULL);
    }
    add_db(f, "d", "z", NULL);
    int64_t t0 = utc(2024, 5, 1, 0, 0, 0);
    size_t n;
    sched_decision *dec = plan_at(f, t0, t0, &n);
    assert_int_equal(n, 8);
    store(f, dec, n);
    free(dec);

    /* Equal run_at: by schedule, agent, database. a/x starts; a/y is held by its agent; b/x
     * starts and fills the global limit. */
    int64_t due = utc(2024, 5, 1, 2, 0, 0);
    dec = plan_at(f, due, t0, &n);
    assert_int_equal(count_action(dec, n, SCHED_START), 2);
    assert_int_equal(find(dec, n, "nightly", "a", "x")->action, SCHED_START);
    assert_int_equal(find(dec, n, "nightly", "b", "x")->action, SCHED_START);
    const sched_decision *w = find(dec, n, "nightly", "a", "y");
    assert_int_equal(w->action, SCHED_WAIT);
    assert_int_equal(w->why, SCHED_WHY_LIMIT_AGENT);
    assert_int_equal(w->last_due, t0);
    assert_int_equal(w->changed, 0);
    w = find(dec, n, "nightly", "c", "x");
    assert_int_equal(w->action, SCHED_WAIT);
    assert_int_equal(w->why, SCHED_WHY_LIMIT_TOTAL);
    assert_int_equal(find(dec, n, "late", "d", "z")->action, SCHED_IDLE);
    store(f, dec, n);
    free(dec);

    /* 02:10: a/x still runs, b/x finished. d/z fell due at 02:05, later than the waiting ones:
     * b/y goes first (oldest run_at; a/y's agent is still busy), and d/z waits. */
    for (size_t i = 0; i < f->nd; i++)
        if (strcmp(f->d[i].agent, "a") == 0 && strcmp(f->d[i].database, "x") == 0)
            f->d[i].busy = 1, f->d[i].running = 1;
    dec = plan_at(f, utc(2024, 5, 1, 2, 10, 0), t0, &n);
    assert_int_equal(count_action(dec, n, SCHED_START), 1);
    assert_int_equal(find(dec, n, "nightly", "b", "y")->action, SCHED_START);
    assert_int_equal(find(dec, n, "nightly", "a", "y")->why, SCHED_WHY_LIMIT_AGENT);
    assert_int_equal(find(dec, n, "nightly", "c", "x")->why, SCHED_WHY_LIMIT_TOTAL);
    w = find(dec, n, "late", "d", "z");
    assert_int_equal(w->action, SCHED_WAIT);
    assert_int_equal(w->why, SCHED_WHY_LIMIT_TOTAL);
    free(dec);

    /* A busy database waits whatever the limits. */
    f->in.limits.max_concurrent = 100;
    f->d[0].busy = 1; /* c/y, a manual backup */
    dec = plan_at(f, utc(2024, 5, 1, 2, 10, 0), t0, &n);
    assert_int_equal(find(dec, n, "nightly", "c", "y")->why, SCHED_WHY_BUSY);
    assert_int_equal(find(dec, n, "nightly", "c", "x")->action, SCHED_START);
    assert_int_equal(find(dec, n, "nightly", "d", "z")->action, SCHED_START);
    /* One scheduled backup of a database per plan. */
    w = find(dec, n, "late", "d", "z");
    assert_int_equal(w->action, SCHED_WAIT);
    assert_int_equal(w->why, SCHED_WHY_DB_STARTING);
    free(dec);
    fleet_free(f);
}

static void test_limits_oldest_run_first(void **state)
{
    (void)state;
    /* With jitter, the runs start in run_at order whatever the names. */
    fleet *f = fleet_new();
    f->in.limits.max_concurrent = 3;
    add_schedule(f, "nightly", "0 2 * * *", "*", 3600);
    char names[12][8];
    for (int i = 0; i < 12; i++) {
        snprintf(names[i], sizeof(names[i]), "db%02d", i);
        add_db(f, i % 2 ? "a" : "b", names[i], NULL);
    }
    int64_t t0 = utc(2024, 5, 1, 0, 0, 0);
    size_t n;
    sched_decision *dec = plan_at(f, t0, t0, &n);
    store(f, dec, n);
    free(dec);
    int64_t now = utc(2024, 5, 1, 3, 0, 0); /* all ripe */
    dec = plan_at(f, now, t0, &n);
    assert_int_equal(count_action(dec, n, SCHED_START), 3);
    int64_t max_started = 0, min_waiting = INT64_MAX;
    for (size_t i = 0; i < n; i++) {
        if (dec[i].action == SCHED_START && dec[i].run_at > max_started)
            max_started = dec[i].run_at;
        if (dec[i].action == SCHED_WAIT) {
            assert_int_equal(dec[i].why, SCHED_WHY_LIMIT_TOTAL);
            if (dec[i].run_at < min_waiting)
                min_waiting = dec[i].run_at;
        }
    }
    assert_true(max_started <= min_waiting);
    free(dec);
    fleet_free(f);
}

static void test_limits_held_back_keeps_its_place(void **state)
{
    (void)state;
    /* One backup at a time and a schedule that is due again every minute: the database held
     * back this minute must start next minute, ahead of the one that just ran, although both
     * are ripe for the new due time (else "db-a" would run every minute and "db-b" never). */
    fleet *f = fleet_new();
    f->in.limits.max_concurrent = 1;
    add_schedule(f, "often", "* * * * *", "*", 0);
    add_db(f, "a", "db-a", NULL);
    add_db(f, "a", "db-b", NULL);
    int64_t t0 = utc(2024, 5, 1, 0, 0, 30);
    size_t n;
    sched_decision *dec = plan_at(f, t0, t0, &n);
    store(f, dec, n);
    free(dec);
    int ran[2] = {0, 0};
    for (int minute = 1; minute <= 6; minute++) {
        dec = plan_at(f, t0 + minute * 60, t0, &n);
        assert_int_equal(count_action(dec, n, SCHED_START), 1);
        const sched_decision *a = find(dec, n, "often", "a", "db-a");
        ran[a->action == SCHED_START ? 0 : 1]++;
        store(f, dec, n); /* the backup ends before the next minute */
        free(dec);
    }
    assert_int_equal(ran[0], 3);
    assert_int_equal(ran[1], 3);
    fleet_free(f);
}

/* ---- two schedules on one database ---- */

static void test_two_schedules_same_due_merge(void **state)
{
    (void)state;
    fleet *f = fleet_new();
    add_schedule(f, "daily", "0 2 * * *", "*", 0);
    add_schedule(f, "weekly", "0 2 * * SUN", "*", 0);
    add_db(f, "a", "app", NULL);
    int64_t t0 = utc(2024, 1, 5, 12, 0, 0);
    size_t n;
    sched_decision *dec = plan_at(f, t0, t0, &n);
    assert_int_equal(n, 2);
    store(f, dec, n);
    free(dec);
    /* Saturday: the daily one alone. */
    dec = plan_at(f, utc(2024, 1, 6, 2, 0, 0), t0, &n);
    assert_int_equal(find(dec, n, "daily", "a", "app")->action, SCHED_START);
    assert_int_equal(find(dec, n, "weekly", "a", "app")->action, SCHED_IDLE);
    assert_int_equal(find(dec, n, "weekly", "a", "app")->merged_into, SCHED_NONE);
    store(f, dec, n);
    free(dec);
    /* Sunday 2024-01-07 02:00: one backup; the weekly follows the daily (first in order). */
    int64_t sun = utc(2024, 1, 7, 2, 0, 0);
    dec = plan_at(f, sun, t0, &n);
    assert_int_equal(count_action(dec, n, SCHED_START), 1);
    const sched_decision *d = find(dec, n, "daily", "a", "app");
    const sched_decision *w = find(dec, n, "weekly", "a", "app");
    assert_int_equal(d->action, SCHED_START);
    assert_int_equal(w->action, SCHED_MERGED);
    assert_int_equal(w->why, SCHED_WHY_MERGED);
    assert_ptr_equal(&dec[w->merged_into], d);
    assert_int_equal(w->last_due, sun);
    assert_int_equal(w->changed, 1);
    free(dec);

    /* The other configuration order: the weekly leads. */
    fleet *g = fleet_new();
    add_schedule(g, "weekly", "0 2 * * SUN", "*", 0);
    add_schedule(g, "daily", "0 2 * * *", "*", 0);
    add_db(g, "a", "app", NULL);
    set_state(g, "weekly", "a", "app", sun - 60);
    set_state(g, "daily", "a", "app", sun - 60);
    dec = plan_at(g, sun, t0, &n);
    assert_int_equal(find(dec, n, "weekly", "a", "app")->action, SCHED_START);
    assert_int_equal(find(dec, n, "daily", "a", "app")->action, SCHED_MERGED);
    free(dec);
    fleet_free(g);
    fleet_free(f);
}

static void test_two_schedules_merge_at_leader_time(void **state)
{
    (void)state;
    /* The follower's own offset is smaller, but the group runs at the leader's run_at. */
    fleet *f = fleet_new();
    add_schedule(f, "daily", "0 2 * * *", "*", 7200);
    add_schedule(f, "weekly", "0 2 * * SUN", "*", 0);
    add_db(f, "a", "app", NULL);
    int64_t sun = utc(2024, 1, 7, 2, 0, 0);
    int64_t off = sched_jitter("daily", "a", "app", 7200);
    assert_true(off > 0);
    set_state(f, "daily", "a", "app", sun - 60);
    set_state(f, "weekly", "a", "app", sun - 60);
    size_t n;
    sched_decision *dec = plan_at(f, sun, sun - 3600, &n);
    const sched_decision *w = find(dec, n, "weekly", "a", "app");
    assert_int_equal(w->action, SCHED_IDLE);
    assert_int_equal(w->why, SCHED_WHY_MERGED);
    assert_int_equal(w->run_at, sun + off);
    free(dec);

    sched_run *runs = NULL;
    pgs_error e = {0};
    assert_int_equal(sched_next_runs(&f->in, &runs, &n, &e), 0);
    assert_int_equal(n, 2);
    assert_string_equal(runs[0].schedule, "daily"); /* same run_at: configuration order */
    assert_null(runs[0].merged_into);
    assert_string_equal(runs[1].schedule, "weekly");
    assert_string_equal(runs[1].merged_into, "daily");
    assert_int_equal(runs[1].run_at, sun + off);
    assert_int_equal(runs[1].due_now, 0);
    free(runs);

    dec = plan_at(f, sun + off, sun - 3600, &n);
    assert_int_equal(find(dec, n, "daily", "a", "app")->action, SCHED_START);
    assert_int_equal(find(dec, n, "weekly", "a", "app")->action, SCHED_MERGED);
    free(dec);

    /* The leader held by a limit holds its follower. */
    f->in.limits.max_concurrent = 1;
    f->d[0].running = 0;
    sched_database *other = add_db(f, "b", "big", NULL);
    other->running = 1;
    other->busy = 1;
    dec = plan_at(f, sun + off, sun - 3600, &n);
    assert_int_equal(find(dec, n, "daily", "a", "app")->action, SCHED_WAIT);
    w = find(dec, n, "weekly", "a", "app");
    assert_int_equal(w->action, SCHED_WAIT);
    assert_int_equal(w->why, SCHED_WHY_LIMIT_TOTAL);
    assert_int_equal(w->changed, 0);
    free(dec);
    fleet_free(f);
}

static void test_two_schedules_different_due_one_start(void **state)
{
    (void)state;
    /* Both caught up after a restart at different due times: two runs, one after the other. */
    fleet *f = fleet_new();
    add_schedule(f, "early", "0 2 * * *", "*", 0);
    add_schedule(f, "later", "5 2 * * *", "*", 0);
    add_db(f, "a", "app", NULL);
    int64_t last = utc(2024, 5, 1, 3, 0, 0);
    set_state(f, "early", "a", "app", last);
    set_state(f, "later", "a", "app", last);
    int64_t up = utc(2024, 5, 2, 3, 0, 0);
    size_t n;
    sched_decision *dec = plan_at(f, up, up, &n);
    assert_int_equal(find(dec, n, "early", "a", "app")->action, SCHED_START);
    const sched_decision *l = find(dec, n, "later", "a", "app");
    assert_int_equal(l->action, SCHED_WAIT);
    assert_int_equal(l->why, SCHED_WHY_DB_STARTING);
    assert_int_equal(l->merged_into, SCHED_NONE);
    store(f, dec, n);
    free(dec);
    f->d[0].busy = 1;
    dec = plan_at(f, up + 30, up, &n);
    assert_int_equal(find(dec, n, "later", "a", "app")->why, SCHED_WHY_BUSY);
    free(dec);
    f->d[0].busy = 0;
    dec = plan_at(f, up + 600, up, &n);
    l = find(dec, n, "later", "a", "app");
    assert_int_equal(l->action, SCHED_START);
    assert_int_equal(l->why, SCHED_WHY_CATCH_UP);
    assert_int_equal(find(dec, n, "early", "a", "app")->action, SCHED_IDLE);
    free(dec);
    fleet_free(f);
}

/* ---- listing ---- */

static void test_next_runs_listing(void **state)
{
    (void)state;
    fleet *f = fleet_new();
    add_schedule(f, "nightly", "30 1 * * *", "env=prod", 0);
    add_schedule(f, "hourly", "@hourly", "database=app*", 0);
    add_db(f, "a", "app", "prod");
    add_db(f, "a", "crm", "prod");
    add_db(f, "b", "appx", NULL);
    int64_t now = utc(2024, 5, 1, 12, 10, 0);
    set_state(f, "nightly", "a", "crm", utc(2024, 4, 29, 1, 30, 0)); /* missed the 30th */
    f->in.schedules = f->s;
    f->in.nschedules = f->ns;
    f->in.databases = f->d;
    f->in.ndatabases = f->nd;
    f->in.states = f->st;
    f->in.nstates = f->nst;
    f->in.now = now;
    f->in.up_since = now;
    memset(&f->in.limits, 0, sizeof(f->in.limits)); /* not read */
    sched_run *r = NULL;
    size_t n = 0;
    pgs_error e = {0};
    assert_int_equal(sched_next_runs(&f->in, &r, &n, &e), 0);
    assert_int_equal(n, 4);
    /* a/crm is due now (its catch-up), then the hourly ones at 13:00, then a/app at 01:30. */
    assert_string_equal(r[0].schedule, "nightly");
    assert_string_equal(r[0].database, "crm");
    assert_int_equal(r[0].due, utc(2024, 5, 1, 1, 30, 0)); /* the latest of the two missed */
    assert_int_equal(r[0].due_now, 1);
    assert_string_equal(r[1].schedule, "hourly");
    assert_string_equal(r[1].agent, "a");
    assert_string_equal(r[1].cron_text, "@hourly");
    assert_string_equal(r[1].zone, "UTC");
    assert_int_equal(r[1].run_at, utc(2024, 5, 1, 13, 0, 0));
    assert_int_equal(r[1].due_now, 0);
    assert_string_equal(r[2].agent, "b");
    assert_string_equal(r[2].environment, "");
    assert_string_equal(r[3].database, "app");
    assert_string_equal(r[3].environment, "prod");
    assert_string_equal(r[3].cron_text, "30 1 * * *");
    assert_int_equal(r[3].due, utc(2024, 5, 2, 1, 30, 0));
    for (size_t i = 0; i < n; i++)
        assert_null(r[i].merged_into);
    free(r);

    /* Nothing matches: no rows, no allocation. */
    f->in.ndatabases = 0;
    assert_int_equal(sched_next_runs(&f->in, &r, &n, &e), 0);
    assert_null(r);
    assert_int_equal(n, 0);
    fleet_free(f);
}

/* ---- DST ---- */

static void test_dst_zone(void **state)
{
    (void)state;
    if (!have_tzdata())
        return;
    fleet *f = fleet_new();
    add_schedule(f, "berlin", "CRON_TZ=Europe/Berlin 30 2 * * *", "*", 0);
    add_db(f, "a", "app", NULL);
    /* 02:30 on 2024-03-31 does not exist in Berlin: it runs at the end of the gap, 01:00Z. */
    set_state(f, "berlin", "a", "app", utc(2024, 3, 30, 1, 30, 0));
    int64_t up = utc(2024, 3, 30, 12, 0, 0);
    size_t n;
    sched_decision *dec = plan_at(f, utc(2024, 3, 31, 0, 59, 59), up, &n);
    assert_int_equal(dec[0].action, SCHED_IDLE);
    assert_int_equal(dec[0].due, utc(2024, 3, 31, 1, 0, 0));
    free(dec);
    dec = plan_at(f, utc(2024, 3, 31, 1, 0, 0), up, &n);
    assert_int_equal(dec[0].action, SCHED_START);
    assert_int_equal(dec[0].due, utc(2024, 3, 31, 1, 0, 0));
    store(f, dec, n);
    free(dec);
    sched_run *r = NULL;
    pgs_error e = {0};
    assert_int_equal(sched_next_runs(&f->in, &r, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_string_equal(r[0].zone, "Europe/Berlin");
    assert_string_equal(r[0].cron_text, "CRON_TZ=Europe/Berlin 30 2 * * *");
    assert_int_equal(r[0].due, utc(2024, 4, 1, 0, 30, 0)); /* 02:30 CEST */
    free(r);
    fleet_free(f);
}

/* ---- refusals ---- */

static void expect_refused(fleet *f, int code, const char *substr)
{
    f->in.schedules = f->s;
    f->in.databases = f->d;
    f->in.states = f->st;
    sched_decision *dec = (sched_decision *)1;
    size_t n = 7;
    pgs_error e = {0};
    int rc = sched_plan(&f->in, &dec, &n, &e);
    TU_ASSERT_ERR(rc, e, code, substr);
    assert_null(dec);
    assert_int_equal(n, 0);
}

static void test_refusals(void **state)
{
    (void)state;
    fleet *f = fleet_new();
    add_schedule(f, "s", "@daily", "*", 0);
    add_schedule(f, "t", "@daily", "*", 0);
    add_db(f, "a", "app", NULL);
    add_db(f, "a", "crm", NULL);
    set_state(f, "s", "a", "app", 100);
    f->in.nschedules = f->ns;
    f->in.ndatabases = f->nd;
    f->in.nstates = f->nst;
    f->in.now = utc(2024, 1, 1, 0, 0, 0);
    f->in.up_since = f->in.now;
    size_t n;
    sched_decision *dec = plan_at(f, f->in.now, f->in.now, &n);
    assert_int_equal(n, 4);
    free(dec);

    f->in.limits.max_concurrent = 0;
    expect_refused(f, PGS_EINVAL, "max_concurrent 0");
    f->in.limits.max_concurrent = 1;
    f->in.limits.max_per_agent = -1;
    expect_refused(f, PGS_EINVAL, "max_per_agent -1");
    f->in.limits.max_per_agent = 1;
    f->in.limits.grace_s = SCHED_GRACE_MAX_S + 1;
    expect_refused(f, PGS_EINVAL, "grace");
    f->in.limits.grace_s = 0;

    f->in.up_since = f->in.now + 1;
    expect_refused(f, PGS_EINVAL, "up_since");
    f->in.up_since = f->in.now;
    int64_t now = f->in.now;
    f->in.now = CRON_TIME_MAX + 1;
    expect_refused(f, PGS_EINVAL, "now");
    f->in.now = -5;
    f->in.up_since = -5;
    expect_refused(f, PGS_EINVAL, "now");
    f->in.now = f->in.up_since = now;

    f->s[1].name = "s";
    expect_refused(f, PGS_EINVAL, "two schedules are named s");
    f->s[1].name = NULL;
    expect_refused(f, PGS_EINVAL, "schedule 2 has no name");
    f->s[1].name = "t";
    f->s[1].jitter_s = SCHED_JITTER_MAX_S + 1;
    expect_refused(f, PGS_EINVAL, "jitter");
    f->s[1].jitter_s = -1;
    expect_refused(f, PGS_EINVAL, "jitter");
    f->s[1].jitter_s = 0;
    f->s[1].cron = NULL;
    expect_refused(f, PGS_EINVAL, "no name, cron or select");
    f->s[1].cron = f->cron[1];

    f->d[1].database = "app";
    expect_refused(f, PGS_EINVAL, "database app on agent a is listed twice");
    f->d[1].database = NULL;
    expect_refused(f, PGS_EINVAL, "database 2 has no agent");
    f->d[1].database = f->names[1][1];
    f->d[1].running = -1;
    expect_refused(f, PGS_EINVAL, "running -1");
    f->d[1].running = 0;

    f->st[1] = f->st[0];
    f->in.nstates = 2;
    expect_refused(f, PGS_EINVAL, "two states of schedule s");
    f->st[1].last_due = -1;
    f->st[1].agent = "b";
    expect_refused(f, PGS_EINVAL, "last_due -1");
    f->st[1].last_due = CRON_TIME_MAX + 1;
    expect_refused(f, PGS_EINVAL, "out of range");
    f->st[1].last_due = 5;
    f->st[1].database = NULL;
    expect_refused(f, PGS_EINVAL, "NULL name");
    f->in.nstates = 1;

    f->in.nschedules = SCHED_SCHEDULES_MAX + 1;
    expect_refused(f, PGS_ELIMIT, "more than 4096");
    f->in.nschedules = f->ns;
    f->in.ndatabases = SCHED_DATABASES_MAX + 1;
    expect_refused(f, PGS_ELIMIT, "more than 100000");
    f->in.ndatabases = f->nd;
    f->in.nstates = SCHED_ENTRIES_MAX + 1;
    expect_refused(f, PGS_ELIMIT, "states");
    f->in.nstates = 1;
    f->in.states = NULL;
    {
        sched_decision *d2 = NULL;
        pgs_error e = {0};
        TU_ASSERT_ERR(sched_plan(&f->in, &d2, &n, &e), e, PGS_EINVAL, "NULL with a count");
        sched_run *r = NULL;
        TU_ASSERT_ERR(sched_next_runs(&f->in, &r, &n, &e), e, PGS_EINVAL, "NULL with a count");
        assert_null(r);
        TU_ASSERT_ERR(sched_plan(NULL, &d2, &n, &e), e, PGS_EINVAL, "no input");
    }
    f->in.states = f->st;

    /* States of unknown schedules or databases are ignored. */
    f->st[0] = (sched_state){"gone", "a", "app", 100};
    dec = plan_at(f, now, now, &n);
    assert_int_equal(n, 4);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(dec[i].action, SCHED_IDLE);
        assert_int_equal(dec[i].last_due, now);
        /* t follows s: both are @daily */
        assert_int_equal(dec[i].why, dec[i].isched == 0 ? SCHED_WHY_FIRST_SEEN : SCHED_WHY_MERGED);
    }
    free(dec);

    /* Nothing to plan. */
    f->in.nschedules = 0;
    f->in.states = f->st;
    dec = (sched_decision *)1;
    pgs_error e = {0};
    assert_int_equal(sched_plan(&f->in, &dec, &n, &e), 0);
    assert_null(dec);
    assert_int_equal(n, 0);
    assert_string_equal(sched_action_name(99), "unknown");
    assert_string_equal(sched_why_text(99), "unknown");
    fleet_free(f);
}

/* ---- properties ---- */

/* The latest due time of c in (after, t], by walking; 0 when none; -1 when too many to walk. */
static int64_t walk_latest(const cron_expr *c, int64_t after, int64_t t)
{
    int64_t cur = after, latest = 0;
    for (int i = 0; i < 20000; i++) {
        int64_t nx;
        pgs_error e = {0};
        if (cron_next(c, cur, &nx, &e) != 0 || nx > t)
            return latest;
        latest = cur = nx;
    }
    return -1;
}

static unsigned rnd(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (*s >> 8) & 0xffffff;
}

typedef struct running_job {
    size_t idb;
    int64_t until;
} running_job;

static void test_plan_properties(void **state)
{
    (void)state;
    static const char *const crons[] = {"*/5 * * * *",  "0 * * * *",    "17 */3 * * *",
                                        "0 2 * * *",    "30 1 * * 1-5", "*/2 * * * *",
                                        "0 0,12 * * *", "45 * * * *"};
    static const char *const sels[] = {"*", "agent=a*", "database=d1*,d2*", "env=prod", "agent=b?"};
    static const char *const envs[] = {"prod", "staging", NULL};
    char dbnames[MAXD][16], agentnames[MAXD][16];
    for (unsigned round = 0; round < 24; round++) {
        unsigned seed = 77 + round * 31;
        fleet *f = fleet_new();
        f->in.limits.max_concurrent = 1 + (int)(rnd(&seed) % 6);
        f->in.limits.max_per_agent = 1 + (int)(rnd(&seed) % 3);
        f->in.limits.catch_up = (int)(rnd(&seed) % 2);
        f->in.limits.grace_s = (int64_t)(rnd(&seed) % 900);
        size_t ns = 1 + rnd(&seed) % 4;
        static char snames[MAXS][16];
        for (size_t i = 0; i < ns; i++) {
            snprintf(snames[i], sizeof(snames[i]), "s%zu", i);
            int64_t jit = rnd(&seed) % 3 == 0 ? 0 : (int64_t)(rnd(&seed) % 7200);
            add_schedule(f, snames[i], crons[rnd(&seed) % 8], sels[rnd(&seed) % 5], jit);
        }
        size_t nd = 4 + rnd(&seed) % 20;
        for (size_t i = 0; i < nd; i++) {
            snprintf(agentnames[i], sizeof(agentnames[i]), "%c%u", "ab"[rnd(&seed) % 2],
                     rnd(&seed) % 4);
            snprintf(dbnames[i], sizeof(dbnames[i]), "d%zu", i);
            add_db(f, agentnames[i], dbnames[i], envs[rnd(&seed) % 3]);
        }
        running_job jobs[MAXD];
        size_t njobs = 0;
        int64_t t = utc(2024, 3, 1, 0, 0, 0) + (int64_t)(rnd(&seed) % 86400);
        int64_t up = t;
        for (int tick = 0; tick < 300; tick++) {
            /* Mostly a minute; sometimes a downtime of up to two days. */
            if (rnd(&seed) % 100 == 0) {
                t += 3600 + (int64_t)(rnd(&seed) % (2 * 86400));
                up = t;
                njobs = 0; /* a restart fails what was running */
            } else {
                t += 1 + (int64_t)(rnd(&seed) % 120);
            }
            /* Jobs finish; agents come and go. */
            size_t k = 0;
            for (size_t j = 0; j < njobs; j++)
                if (jobs[j].until > t)
                    jobs[k++] = jobs[j];
            njobs = k;
            for (size_t i = 0; i < nd; i++) {
                f->d[i].running = 0;
                f->d[i].busy = rnd(&seed) % 50 == 0;
                if (rnd(&seed) % 40 == 0)
                    f->d[i].connected = !f->d[i].connected;
            }
            for (size_t j = 0; j < njobs; j++) {
                f->d[jobs[j].idb].running++;
                f->d[jobs[j].idb].busy = 1;
            }
            int64_t total = 0, per_agent[MAXD] = {0};
            for (size_t i = 0; i < nd; i++) {
                total += f->d[i].running;
                for (size_t a = 0; a < nd; a++)
                    if (strcmp(f->d[a].agent, f->d[i].agent) == 0) {
                        per_agent[a] += f->d[i].running;
                        break;
                    }
            }
            sched_state before[MAXST];
            memcpy(before, f->st, sizeof(before));
            size_t nbefore = f->nst;
            size_t n;
            sched_decision *dec = plan_at(f, t, up, &n);
            int started_db[MAXD] = {0};
            for (size_t i = 0; i < n; i++) {
                const sched_decision *d = &dec[i];
                int64_t old = SCHED_NEVER;
                for (size_t s = 0; s < nbefore; s++)
                    if (strcmp(before[s].schedule, d->schedule) == 0 &&
                        strcmp(before[s].agent, d->agent) == 0 &&
                        strcmp(before[s].database, d->database) == 0)
                        old = before[s].last_due;
                const sched_database *db = &f->d[d->idb];
                assert_ptr_equal(d->agent, db->agent);
                assert_ptr_equal(d->schedule, f->s[d->isched].name);
                assert_true(d->offset >= 0 &&
                            (d->offset < f->s[d->isched].jitter_s || d->offset == 0));
                assert_true(d->last_due <= t);
                assert_int_equal(d->changed, d->last_due != old);
                if (old == SCHED_NEVER) {
                    assert_int_equal(d->action, SCHED_IDLE);
                    assert_int_equal(d->last_due, t);
                    assert_true(d->due > t);
                    continue;
                }
                assert_true(d->last_due >= old || old > t);
                if (d->missed_first != 0) {
                    assert_true(d->missed_first > old);
                    assert_true(d->missed_first <= d->missed_last);
                    assert_true(d->missed_last <= d->last_due);
                    assert_true(d->action != SCHED_IDLE && d->action != SCHED_WAIT);
                }
                switch (d->action) {
                case SCHED_IDLE:
                case SCHED_WAIT:
                    assert_int_equal(d->last_due, old);
                    break;
                default:
                    assert_int_equal(d->last_due, d->due);
                    assert_true(d->run_at <= t);
                    break;
                }
                if (d->action == SCHED_IDLE && d->merged_into == SCHED_NONE)
                    assert_true(d->run_at > t);
                if (d->action != SCHED_IDLE) {
                    /* The due time decided on is the latest ripe one, by walking. */
                    int64_t w = walk_latest(f->s[d->isched].cron, old, t - d->offset);
                    if (d->merged_into == SCHED_NONE && w >= 0)
                        assert_int_equal(d->due, w);
                    if (d->merged_into != SCHED_NONE)
                        assert_int_equal(dec[d->merged_into].due, d->due);
                }
                if (d->action == SCHED_MERGED)
                    assert_int_equal(dec[d->merged_into].action, SCHED_START);
                if (d->action == SCHED_START) {
                    assert_true(db->connected);
                    assert_false(db->busy);
                    assert_int_equal(started_db[d->idb], 0);
                    started_db[d->idb] = 1;
                    assert_int_equal(d->merged_into, SCHED_NONE);
                    total++;
                    for (size_t a = 0; a < nd; a++)
                        if (strcmp(f->d[a].agent, db->agent) == 0) {
                            per_agent[a]++;
                            assert_true(per_agent[a] <= f->in.limits.max_per_agent);
                            break;
                        }
                    assert_true(total <= f->in.limits.max_concurrent);
                    jobs[njobs++] = (running_job){d->idb, t + 60 + (int64_t)(rnd(&seed) % 3000)};
                }
            }
            /* A run held by a limit means the limit is full once the plan is done. */
            for (size_t i = 0; i < n; i++) {
                if (dec[i].action != SCHED_WAIT)
                    continue;
                if (dec[i].why == SCHED_WHY_LIMIT_TOTAL)
                    assert_true(total >= f->in.limits.max_concurrent);
                if (dec[i].why == SCHED_WHY_LIMIT_AGENT)
                    for (size_t a = 0; a < nd; a++)
                        if (strcmp(f->d[a].agent, dec[i].agent) == 0) {
                            assert_true(per_agent[a] >= f->in.limits.max_per_agent);
                            break;
                        }
            }
            store(f, dec, n);
            free(dec);
        }
        fleet_free(f);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_jitter_stable_in_range_and_spread),
        cmocka_unit_test(test_first_sight_does_not_run_at_once),
        cmocka_unit_test(test_due_runs_at_due_plus_offset),
        cmocka_unit_test(test_downtime_catch_up_runs_once),
        cmocka_unit_test(test_downtime_without_catch_up_is_missed),
        cmocka_unit_test(test_downtime_long_and_dense),
        cmocka_unit_test(test_disconnected_agent_waits_then_missed),
        cmocka_unit_test(test_limits_global_and_per_agent),
        cmocka_unit_test(test_limits_oldest_run_first),
        cmocka_unit_test(test_limits_held_back_keeps_its_place),
        cmocka_unit_test(test_two_schedules_same_due_merge),
        cmocka_unit_test(test_two_schedules_merge_at_leader_time),
        cmocka_unit_test(test_two_schedules_different_due_one_start),
        cmocka_unit_test(test_next_runs_listing),
        cmocka_unit_test(test_dst_zone),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_plan_properties),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
