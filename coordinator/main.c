/*
 * pgship-coordinator: the daemon agents dial. Loads and checks its configuration, recovers what a
 * previous run left in flight, serves agents (coordinator/fleet.c) and the admin API
 * (coordinator/api.c) until SIGTERM or SIGINT, then stops in order: API, jobs in flight (failed
 * cleanly), storage, catalog.
 */
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/net.h"
#include "common/timeutil.h"
#include "coordinator/alerter.h"
#include "coordinator/catalog.h"
#include "coordinator/config.h"
#include "coordinator/fleet.h"
#include "coordinator/monitor.h"
#include "coordinator/prune.h"
#include "coordinator/rebuild.h"
#include "coordinator/restore.h"
#include "coordinator/schedd.h"
#include "coordinator/storage.h"
#include "coordinator/verify.h"
#ifdef PGSHIP_HAVE_API
#include "coordinator/api.h"
#endif

#define HEARTBEAT_MS 15000
#define DATA_MAX (1u << 20)

static void usage(FILE *f)
{
    fprintf(f, "usage: pgship-coordinator -c FILE [--check-config]\n"
               "       pgship-coordinator -c FILE catalog rebuild [--json]\n"
               "\n"
               "Runs the coordinator in the foreground: agents dial it and stream their backups\n"
               "through it into storage; the admin API (pgship agents, backup, ls, ...) is served\n"
               "on api_listen. Logs go to stderr, one line per event. SIGTERM or SIGINT stops it:\n"
               "backups in flight fail cleanly (nothing half-written stays in storage).\n"
               "\n"
               "  -c, --config FILE   the configuration (docs/configuration.md)\n"
               "      --check-config  validate FILE, print the effective configuration (secrets\n"
               "                      never printed) and exit: 0 when valid, 1 when not\n"
               "  -h, --help\n"
               "  -V, --version\n"
               "\n"
               "catalog rebuild: recreates the catalog (FILE's catalog path) from storage alone:\n"
               "every backup whose object and sidecar manifest are there is imported with its\n"
               "own id, times, sizes, checksum and recipients (docs/storage.md, \"Sidecars and\n"
               "rebuilding the catalog\"). Backups already in the catalog are left as they are,\n"
               "so it can run again; problems (an object without a sidecar, a sidecar that fails\n"
               "a check) are listed and counted, not imported. Run it with the coordinator\n"
               "stopped. --json prints the counts and problems as one JSON object. Exit 0 when\n"
               "everything found was imported or already there, 1 when something could not be.\n"
               "\n"
               "Exit status: 0 after a requested stop, 1 when it cannot start (the reason is\n"
               "logged), 2 for a usage error.\n");
}

static void storage_from_config(const coordinator_config *c, storage_config *s)
{
    memset(s, 0, sizeof(*s));
    const coordinator_storage_config *sc = &c->storage;
    s->type = sc->type == COORDINATOR_STORAGE_S3 ? "s3" : "fs";
    s->prefix = sc->prefix;
    s->path = sc->path;
    s->endpoint = sc->endpoint;
    s->region = sc->region;
    s->bucket = sc->bucket;
    s->path_style = sc->path_style;
    s->access_key_id = c->s3_access_key_id;
    s->secret_access_key = c->s3_secret_access_key;
    s->session_token = c->s3_session_token;
    s->part_size_mib = (unsigned)sc->part_size_mib;
    s->parallel_parts = (unsigned)sc->parallel_parts;
}

/* Fails what the previous run left in flight and removes what it may have left in storage. */
static int recover(catalog *cat, storage *st, pgs_error *e)
{
    catalog_recovered *rec = NULL;
    size_t n = 0;
    int rc = catalog_recover(cat, "the coordinator stopped while it was in flight", &rec, &n, e);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        log_warn("backup %s (%s/%s) was %s when the coordinator stopped: marked failed", rec[i].id,
                 rec[i].agent, rec[i].database, catalog_state_name(rec[i].was));
        if (rec[i].storage_key[0] == 0)
            continue;
        char side[CATALOG_STORAGE_KEY_MAX + 32];
        if (prune_sidecar_key(rec[i].storage_key, side, sizeof(side)) != 0)
            side[0] = '\0';
        pgs_error de = {0};
        if ((side[0] && storage_delete(st, side, &de) != 0) ||
            storage_delete(st, rec[i].storage_key, &de) != 0 ||
            storage_forget_uploads(st, rec[i].storage_key, &de) != 0)
            log_warn("backup %s: cannot remove what it left in storage: %s", rec[i].id, de.msg);
        else
            log_info("backup %s: removed anything it left in storage (%s)", rec[i].id,
                     rec[i].storage_key);
    }
    free(rec);
    return 0;
}

#ifdef PGSHIP_HAVE_API
/* api_token_lookup over the configuration's tokens: [token NAME] sections, and api_token_file's
 * (role admin, named "api" as before there were roles). */
static int token_lookup(void *arg, const char *presented, char *name, size_t cap)
{
    const coordinator_token_config *t = coordinator_config_token(arg, presented);
    if (t == NULL)
        return 0;
    snprintf(name, cap, "%s", t->file == NULL ? "api" : t->name);
    switch (t->role) {
    case ROLE_READ: return API_ROLE_READ;
    case ROLE_OPERATE: return API_ROLE_OPERATE;
    case ROLE_ADMIN: return API_ROLE_ADMIN;
    default: return 0;
    }
}
#endif

static int run(coordinator_config *cfg)
{
    pgs_error e = {0};
    catalog *cat = NULL;
    storage *st = NULL;
    fleet *fl = NULL;
    restorer *rs = NULL;
    verifier *vf = NULL;
    monitor *mon = NULL;
    schedd *sd = NULL;
    alerter *al = NULL;
#ifdef PGSHIP_HAVE_API
    api *ap = NULL;
#endif
    int status = 1;

    /* Signals go to the main thread only, which waits for them below. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (cfg->insecure_transport)
        log_warn("listening on %s without TLS (allow_insecure_transport = true): agents' "
                 "traffic and the coordinator's identity are not protected",
                 cfg->coordinator.listen);
    storage_config sc;
    storage_from_config(cfg, &sc);
    if (catalog_open(cfg->coordinator.catalog, &cat, &e) != 0 || storage_open(&st, &sc, &e) != 0 ||
        recover(cat, st, &e) != 0) {
        log_error("%s", e.msg);
        goto out;
    }
    catalog_close(cat); /* the fleet and the API open their own handles */
    cat = NULL;

    net_tls tls = {.ca_file = cfg->coordinator.tls_ca,
                   .cert_file = cfg->coordinator.tls_cert,
                   .key_file = cfg->coordinator.tls_key,
                   .allow_insecure = cfg->coordinator.allow_insecure_transport};
    fleet_opts fo = {.listen = cfg->coordinator.listen,
                     .tls = &tls,
                     .agents = cfg->agents,
                     .nagents = cfg->nagents,
                     .st = st,
                     .catalog_path = cfg->coordinator.catalog,
                     .window = (unsigned)cfg->coordinator.window,
                     .max_streams = (unsigned)cfg->coordinator.max_streams,
                     .heartbeat_ms = HEARTBEAT_MS,
                     .data_max = DATA_MAX};
    if (fleet_start(&fo, &fl, &e) != 0) {
        log_error("%s", e.msg);
        goto out;
    }
    restorer_opts ro = {.fleet = fl, .catalog_path = cfg->coordinator.catalog, .cfg = cfg};
    if (restorer_start(&ro, &rs, &e) != 0) {
        log_error("%s", e.msg);
        goto out;
    }
    verifier_opts vo = {.fleet = fl, .catalog_path = cfg->coordinator.catalog, .cfg = cfg};
    if (verifier_start(&vo, &vf, &e) != 0) {
        log_error("%s", e.msg);
        goto out;
    }
    if (monitor_new(&mon, cfg->coordinator.catalog, fl, &e) != 0) {
        log_error("%s", e.msg);
        goto out;
    }
    schedd_opts so = {.cfg = cfg, .fleet = fl, .st = st, .catalog_path = cfg->coordinator.catalog,
                      .verifier = vf,
                      .verify = verifier_request};
    int64_t alerts_since = time_now_ms(); /* before the scheduler records its first missed run */
    if (schedd_start(&so, &sd, &e) != 0) {
        log_error("%s", e.msg);
        goto out;
    }
    alerter_opts alo = {.cfg = cfg, .sched = sd, .catalog_path = cfg->coordinator.catalog,
                        .monitor = mon, .since_ms = alerts_since};
    if (alerter_start(&alo, &al, &e) != 0) {
        log_error("%s", e.msg);
        goto out;
    }
#ifdef PGSHIP_HAVE_API
    if (cfg->api_token != NULL) {
        api_opts ao = {.url = cfg->coordinator.api_listen,
                       .metrics = monitor_metrics(mon),
                       .cfg = cfg,
                       .sched = sd,
                       .lookup = token_lookup,
                       .lookup_arg = cfg,
                       .token = cfg->api_token,
                       .fleet = fl,
                       .restorer = rs,
                       .verifier = vf,
                       .storage = st,
                       .catalog_path = cfg->coordinator.catalog};
        if (api_start(&ao, &ap, &e) != 0) {
            log_error("admin API: %s", e.msg);
            goto out;
        }
        log_info("admin API on %s", cfg->coordinator.api_listen);
    } else {
        log_info("admin API off");
    }
#endif
    log_info("pgship-coordinator %s ready (storage: %s)", PGSHIP_VERSION, sc.type);

    int sig = 0;
    sigwait(&set, &sig);
    log_info("stopping (%s): backups and restores in flight will fail", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    status = 0;
out:
#ifdef PGSHIP_HAVE_API
    api_stop(ap);
#endif
    alerter_stop(al);  /* webhooks get one timeout to deliver; before the scheduler it asks */
    schedd_stop(sd);   /* no new scheduled backups; after the API, which asks it */
    verifier_stop(vf); /* verifications in flight fail; after the scheduler, which asks it */
    restorer_stop(rs); /* restores in flight fail */
    fleet_stop(fl);    /* which tells the restorer how their agents' jobs ended */
    verifier_free(vf);
    restorer_free(rs);
    monitor_free(mon); /* after the API, which renders its metrics */
    storage_close(st);
    catalog_close(cat);
    if (status == 0)
        log_info("stopped");
    return status;
}

/* pgship-coordinator catalog rebuild (see usage). */
static int catalog_rebuild(const coordinator_config *cfg, int as_json)
{
    pgs_error e = {0};
    storage *st = NULL;
    catalog *cat = NULL;
    rebuild_counts c;
    memset(&c, 0, sizeof(c));
    storage_config sc;
    storage_from_config(cfg, &sc);
    int rc = storage_open(&st, &sc, &e);
    if (rc == 0)
        rc = catalog_open(cfg->coordinator.catalog, &cat, &e);
    if (rc == 0)
        rc = rebuild_catalog(st, "", cat, &c, &e);
    if (rc != 0) {
        log_error("catalog rebuild: %s", e.msg);
    } else if (as_json) {
        json_t *probs = json_array();
        for (size_t i = 0; i < c.nproblems; i++)
            json_array_append_new(probs, json_pack("{s:s, s:s}", "key", c.problems[i].key, "why",
                                                   c.problems[i].why));
        json_t *j = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "objects",
                              (json_int_t)c.objects, "sidecars", (json_int_t)c.sidecars,
                              "imported", (json_int_t)c.imported, "existing",
                              (json_int_t)c.existing, "orphan_objects",
                              (json_int_t)c.orphan_objects, "orphan_sidecars",
                              (json_int_t)c.orphan_sidecars, "bad", (json_int_t)c.bad, "ignored",
                              (json_int_t)c.ignored, "pinned", (json_int_t)c.pinned,
                              "problems", probs);
        char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        if (text != NULL)
            printf("%s\n", text);
        free(text);
        json_decref(j);
    } else {
        printf("catalog rebuild of %s: %zu objects, %zu sidecars: %zu imported, %zu already "
               "there, %zu objects without a sidecar, %zu sidecars without an object, %zu bad, "
               "%zu pinned\n",
               cfg->coordinator.catalog, c.objects, c.sidecars, c.imported, c.existing,
               c.orphan_objects, c.orphan_sidecars, c.bad, c.pinned);
        for (size_t i = 0; i < c.nproblems; i++)
            printf("  %s: %s\n", c.problems[i].key, c.problems[i].why);
    }
    int status = rc != 0 || c.orphan_objects + c.orphan_sidecars + c.bad > 0 ? 1 : 0;
    rebuild_counts_clear(&c);
    catalog_close(cat);
    storage_close(st);
    return status;
}

int main(int argc, char **argv)
{
    log_init("pgship-coordinator");
    static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
                                         {"check-config", no_argument, NULL, 'C'},
                                         {"json", no_argument, NULL, 'J'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'V'},
                                         {NULL, 0, NULL, 0}};
    const char *path = NULL;
    int check = 0, as_json = 0, rebuild = 0, c;
    while ((c = getopt_long(argc, argv, "c:hV", opts, NULL)) != -1) {
        switch (c) {
        case 'c': path = optarg; break;
        case 'C': check = 1; break;
        case 'J': as_json = 1; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("pgship-coordinator %s\n", PGSHIP_VERSION); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc && strcmp(argv[optind], "run") == 0)
        optind++;
    else if (optind + 1 < argc && strcmp(argv[optind], "catalog") == 0 &&
             strcmp(argv[optind + 1], "rebuild") == 0) {
        /* getopt_long has moved the options after the subcommand before it */
        rebuild = 1;
        optind += 2;
    }
    if (path == NULL || optind != argc || (as_json && !rebuild) || (rebuild && check)) {
        usage(stderr);
        return 2;
    }
    coordinator_config cfg;
    pgs_error e = {0};
    if (coordinator_config_load(path, &cfg, &e) != 0) {
        log_error("%s", e.msg);
        return 1;
    }
    if (check) {
        coordinator_config_print(stdout, &cfg);
        coordinator_config_free(&cfg);
        return 0;
    }
    if (rebuild) {
        int st = catalog_rebuild(&cfg, as_json);
        coordinator_config_free(&cfg);
        return st;
    }
    /* Part buffers (MiBs each) come and go with every upload: a fixed mmap threshold returns
     * them to the system when freed (glibc would otherwise raise the threshold after the first
     * and keep later ones in its heaps, so the resident set would creep up run after run), and
     * a few arenas keep the many short-lived threads from each holding freed memory. */
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    mallopt(M_ARENA_MAX, 4);
    log_set_daemon(1);
    log_set_level((enum log_level)cfg.coordinator.log_level);
    int status = run(&cfg);
    coordinator_config_free(&cfg);
    return status;
}
