/*
 * pgship-agent: runs next to a database. `pgship-agent -c FILE` (or `run -c FILE`) is the daemon
 * that dials the coordinator and ships backups (agent/daemon.c); `pgship-agent dump` makes one
 * archive without any daemon.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/config.h"
#include "agent/daemon.h"
#include "agent/dump.h"
#include "common/log.h"
#include "common/spawn.h"
#include "proto/bundle.h"

static void usage_main(FILE *f)
{
    fprintf(f, "usage: pgship-agent -c FILE [--check-config]\n"
               "       pgship-agent COMMAND [OPTIONS]\n"
               "\n"
               "commands:\n"
               "  run        the daemon (the default with -c): dial the coordinator, ship backups\n"
               "  dump       write an encrypted archive of one database (no daemon needed)\n"
               "\n"
               "pgship-agent COMMAND --help shows a command's options; pgship-agent --version.\n");
}

static void usage_run(FILE *f)
{
    fprintf(f,
            "usage: pgship-agent [run] -c FILE [--check-config]\n"
            "\n"
            "Runs the agent in the foreground: dials the coordinator named in FILE, authenticates\n"
            "with the identity key, takes backup jobs and streams each encrypted archive to it.\n"
            "Connection problems and failed jobs are logged and survived; it reconnects with a\n"
            "backoff. Logs go to standard error, one timestamped line per event.\n"
            "\n"
            "  -c, --config FILE      the agent's configuration (docs/configuration.md)\n"
            "      --check-config     validate FILE, print the effective configuration (never a\n"
            "                         conninfo or key) and exit: 0 when valid, 1 otherwise\n"
            "  -h, --help\n"
            "\n"
            "SIGTERM, SIGINT or SIGHUP stop it: a running dump is cancelled and reported to the\n"
            "coordinator as failed (\"agent stopping\") when the connection allows within 2 s.\n"
            "\n"
            "Exit status: 0 after a requested stop; 1 when the configuration is invalid or the\n"
            "agent cannot start; 2 on bad usage.\n");
}

static void usage_dump(FILE *f)
{
    fprintf(f,
            "usage: pgship-agent dump --dbname CONNINFO --recipient FILE.pub -o FILE|- [OPTIONS]\n"
            "\n"
            "Dumps a database with pg_dump into a compressed (zstd) archive encrypted to every\n"
            "--recipient. `pgship decrypt --key FILE.key` turns it back into pg_dump output.\n"
            "\n"
            "  -d, --dbname CONNINFO      libpq conninfo or URI; PG* variables, service files and\n"
            "                             .pgpass apply. Put passwords there, never on the command line\n"
            "  -r, --recipient FILE       a public key from `pgship keygen` (repeatable, at least one)\n"
            "  -o, --output FILE|-        the archive; - writes to standard output\n"
            "  -F, --format FORMAT        custom (default: streamed, nothing touches disk) or\n"
            "                             directory (parallel with --jobs, spooled in --spool-dir)\n"
            "  -j, --jobs N               parallel pg_dump jobs (directory format), default 1\n"
            "  -n, --schema PATTERN       dump only matching schemas (repeatable)\n"
            "  -N, --exclude-schema PATTERN\n"
            "  -t, --table PATTERN        dump only matching tables (repeatable)\n"
            "  -T, --exclude-table PATTERN\n"
            "      --globals              add roles and tablespaces (pg_dumpall --globals-only)\n"
            "  -Z, --compress-level N     zstd level 1-19, default 3\n"
            "      --compress-threads N   zstd worker threads, default one per CPU (at most 8);\n"
            "                             0 compresses in the main thread\n"
            "      --compress-job-size BYTES\n"
            "                             bytes per zstd job with threads, default 4M (512K-64M);\n"
            "                             memory is about 8 jobs, smaller jobs compress a little less\n"
            "      --part-size BYTES      size of the dump's tar members (custom format), default\n"
            "                             4 MiB; accepts K, M, G suffixes\n"
            "      --pg-bindir DIR        use pg_dump from DIR instead of searching\n"
            "      --spool-dir DIR        where --format directory spools (default $TMPDIR or /tmp)\n"
            "  -f, --force                overwrite an existing output file\n"
            "      --progress / --no-progress\n"
            "                             progress on stderr (default: when stderr is a terminal)\n"
            "      --json                 print a JSON summary on standard output\n"
            "  -q, --quiet                only errors\n"
            "  -h, --help\n"
            "\n"
            "Exit status: 0 when the archive is complete; 1 on error (nothing is left behind);\n"
            "2 on bad usage; 128+N when stopped by signal N.\n");
}

static int parse_size(const char *s, uint32_t *out)
{
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s)
        return -1;
    switch (*end) {
    case 'k': case 'K': v <<= 10; end++; break;
    case 'm': case 'M': v <<= 20; end++; break;
    case 'g': case 'G': v <<= 30; end++; break;
    default: break;
    }
    if (*end == 'i' || *end == 'B')
        end += (*end == 'i' && end[1] == 'B') ? 2 : 1;
    if (*end != '\0' || v > UINT32_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static int parse_int(const char *s, int lo, int hi, int *out)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

static int add_str(strlist *l, const char *v, const char *flag)
{
    if (l->n >= DUMP_PATTERNS_MAX) {
        log_error("%s given more than %d times", flag, DUMP_PATTERNS_MAX);
        return -1;
    }
    l->v[l->n++] = v;
    return 0;
}

enum { OPT_GLOBALS = 1000, OPT_THREADS, OPT_JOBSIZE, OPT_PART, OPT_BINDIR, OPT_SPOOL, OPT_PROGRESS,
       OPT_NOPROGRESS, OPT_JSON, OPT_CHUNK };

static int cmd_dump(int argc, char **argv)
{
    static const struct option lo[] = {
        {"dbname", required_argument, NULL, 'd'},
        {"recipient", required_argument, NULL, 'r'},
        {"output", required_argument, NULL, 'o'},
        {"format", required_argument, NULL, 'F'},
        {"jobs", required_argument, NULL, 'j'},
        {"schema", required_argument, NULL, 'n'},
        {"exclude-schema", required_argument, NULL, 'N'},
        {"table", required_argument, NULL, 't'},
        {"exclude-table", required_argument, NULL, 'T'},
        {"globals", no_argument, NULL, OPT_GLOBALS},
        {"compress-level", required_argument, NULL, 'Z'},
        {"compress-threads", required_argument, NULL, OPT_THREADS},
        {"compress-job-size", required_argument, NULL, OPT_JOBSIZE},
        {"part-size", required_argument, NULL, OPT_PART},
        {"chunk-size", required_argument, NULL, OPT_CHUNK},
        {"pg-bindir", required_argument, NULL, OPT_BINDIR},
        {"spool-dir", required_argument, NULL, OPT_SPOOL},
        {"force", no_argument, NULL, 'f'},
        {"progress", no_argument, NULL, OPT_PROGRESS},
        {"no-progress", no_argument, NULL, OPT_NOPROGRESS},
        {"json", no_argument, NULL, OPT_JSON},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    dump_opts o;
    dump_opts_init(&o);
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "d:r:o:F:j:n:N:t:T:Z:fqh", lo, NULL)) != -1) {
        int bad = 0;
        switch (ch) {
        case 'd': o.conninfo = optarg; break;
        case 'r': bad = add_str(&o.recipients, optarg, "--recipient"); break;
        case 'o': o.output = optarg; break;
        case 'F':
            if (strcmp(optarg, "custom") == 0 || strcmp(optarg, "c") == 0)
                o.directory = 0;
            else if (strcmp(optarg, "directory") == 0 || strcmp(optarg, "d") == 0)
                o.directory = 1;
            else {
                log_error("--format must be custom or directory, not \"%s\"", optarg);
                bad = 1;
            }
            break;
        case 'j':
            if (parse_int(optarg, 1, 64, &o.jobs) != 0) {
                log_error("--jobs must be a number from 1 to 64");
                bad = 1;
            }
            break;
        case 'n': bad = add_str(&o.schemas, optarg, "--schema"); break;
        case 'N': bad = add_str(&o.exclude_schemas, optarg, "--exclude-schema"); break;
        case 't': bad = add_str(&o.tables, optarg, "--table"); break;
        case 'T': bad = add_str(&o.exclude_tables, optarg, "--exclude-table"); break;
        case OPT_GLOBALS: o.globals = 1; break;
        case 'Z':
            if (parse_int(optarg, 1, 19, &o.compress_level) != 0) {
                log_error("--compress-level must be a number from 1 to 19");
                bad = 1;
            }
            break;
        case OPT_THREADS:
            if (parse_int(optarg, 0, 64, &o.compress_threads) != 0) {
                log_error("--compress-threads must be a number from 0 to 64");
                bad = 1;
            }
            break;
        case OPT_JOBSIZE:
            if (parse_size(optarg, &o.compress_job_size) != 0 ||
                o.compress_job_size < BUNDLE_ZSTD_JOB_MIN ||
                o.compress_job_size > BUNDLE_ZSTD_JOB_MAX) {
                log_error("--compress-job-size must be between 512K and 64M");
                bad = 1;
            }
            break;
        case OPT_PART:
            if (parse_size(optarg, &o.part_size) != 0) {
                log_error("--part-size must be a size like 4M");
                bad = 1;
            }
            break;
        case OPT_CHUNK:
            if (parse_size(optarg, &o.chunk_size) != 0 || o.chunk_size < ENVELOPE_CHUNK_MIN ||
                o.chunk_size > ENVELOPE_CHUNK_MAX) {
                log_error("--chunk-size must be between 4K and 16M");
                bad = 1;
            }
            break;
        case OPT_BINDIR: o.pg_bindir = optarg; break;
        case OPT_SPOOL: o.spool_dir = optarg; break;
        case 'f': o.force = 1; break;
        case OPT_PROGRESS: o.progress = 1; break;
        case OPT_NOPROGRESS: o.progress = 0; break;
        case OPT_JSON: o.json = 1; break;
        case 'q': log_set_level(LOG_ERROR); break;
        case 'h': usage_dump(stdout); return 0;
        default: usage_dump(stderr); return 2;
        }
        if (bad)
            return 2;
    }
    if (optind < argc) {
        log_error("unexpected argument \"%s\" (see pgship-agent dump --help)", argv[optind]);
        return 2;
    }
    if (sig_guard_start() != 0) {
        log_error("cannot set up signal handling");
        return 1;
    }
    pgs_error e = {0};
    int rc = dump_run(&o, NULL, &e);
    if (rc == 0)
        return 0;
    log_error("%s", e.msg);
    if (sig_stop_requested())
        return 128 + sig_stop_requested();
    return (rc == PGS_EINVAL && o.conninfo == NULL) ? 2 : 1;
}

enum { OPT_CHECK_CONFIG = 2000 };

static int cmd_run(int argc, char **argv)
{
    static const struct option lo[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, OPT_CHECK_CONFIG},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *path = NULL;
    int check = 0, ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:h", lo, NULL)) != -1) {
        switch (ch) {
        case 'c': path = optarg; break;
        case OPT_CHECK_CONFIG: check = 1; break;
        case 'h': usage_run(stdout); return 0;
        default: usage_run(stderr); return 2;
        }
    }
    if (optind < argc) {
        log_error("unexpected argument \"%s\" (see pgship-agent run --help)", argv[optind]);
        return 2;
    }
    if (path == NULL) {
        log_error("-c FILE is required (see pgship-agent run --help)");
        return 2;
    }
    agent_config cfg;
    pgs_error e = {0};
    if (agent_config_load(path, &cfg, &e) != 0) {
        log_error("%s", e.msg);
        return 1;
    }
    int rc = agent_daemon_check(&cfg, &e);
    if (rc != 0) {
        log_error("%s", e.msg);
    } else if (check) {
        agent_config_print(stdout, &cfg);
        if (fflush(stdout) != 0)
            rc = PGS_EIO;
    } else {
        log_set_level((enum log_level)cfg.agent.log_level);
        log_set_daemon(1);
        /* Before any nng thread exists, so that all of them leave the signals to its thread. */
        if (sig_guard_start() != 0) {
            log_error("cannot set up signal handling");
            rc = PGS_EIO;
        } else if ((rc = agent_daemon_run(&cfg, &e)) != 0) {
            log_error("%s", e.msg);
        }
    }
    agent_config_free(&cfg);
    return rc == 0 ? 0 : 1;
}

/* True for the options that mean `run`: pgship-agent -c FILE, --config, --check-config. */
static int is_run_option(const char *a)
{
    return strncmp(a, "-c", 2) == 0 || strncmp(a, "--config", 8) == 0 ||
           strcmp(a, "--check-config") == 0;
}

int main(int argc, char **argv)
{
    log_init("pgship-agent");
    if (argc < 2) {
        usage_main(stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage_main(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("pgship-agent %s\n", PGSHIP_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "dump") == 0)
        return cmd_dump(argc - 1, argv + 1);
    if (strcmp(argv[1], "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    if (is_run_option(argv[1]))
        return cmd_run(argc, argv);
    log_error("unknown command \"%s\"", argv[1]);
    usage_main(stderr);
    return 2;
}
