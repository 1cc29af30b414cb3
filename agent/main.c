/*
 * pgship-agent: runs next to a database. `pgship-agent -c FILE` (or `run -c FILE`) is the daemon
 * that dials the coordinator and ships backups (agent/daemon.c); `pgship-agent dump` makes one
 * archive without any daemon; `pgship-agent restore` restores one archive from a file into one of
 * the configured databases (agent/restore.c, as the daemon does for a restore job).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "agent/config.h"
#include "agent/daemon.h"
#include "agent/dump.h"
#include "agent/restore.h"
#include "common/fsutil.h"
#include "common/keys.h"
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
               "  restore    restore an archive file into a configured database (no daemon)\n"
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

/* ---- pgship-agent restore ---- */

#define RESTORE_KEYS_MAX 16
#define RESTORE_SQL_MAX (1u << 20)

static void usage_restore(FILE *f)
{
    fprintf(
        f,
        "usage: pgship-agent restore -c FILE --database NAME --from ARCHIVE|- [OPTIONS]\n"
        "       pgship-agent restore -c FILE --cleanup [--database NAME]\n"
        "\n"
        "Restores an archive into the database NAME of the agent's configuration, safely: into\n"
        "a temporary database beside it (NAME__pgship_tmp_ID), then sanitize and check SQL if\n"
        "given, ANALYZE, and a swap by renaming. On any failure the database is left exactly as\n"
        "it was. The report (steps and their times, per-table row counts, check failures) is\n"
        "printed on standard output.\n"
        "\n"
        "  -c, --config FILE      the agent's configuration (its [database NAME] and spool_dir)\n"
        "      --database NAME    the [database NAME] to restore into\n"
        "      --from ARCHIVE|-   the archive (from pgship-agent dump or the bucket)\n"
        "  -k, --key FILE         a secret key that may open it (repeatable); default the\n"
        "                         config's [agent] restore_keys\n"
        "      --sanitize-sql F   SQL run in one transaction after pg_restore; the first error\n"
        "                         fails the restore (the report names its line)\n"
        "      --check-sql F      queries run after it; every row they return is a failure\n"
        "      --profile NAME     the profile's name, for the report\n"
        "  -j, --jobs N           pg_restore -j N (1-64), default 1\n"
        "      --schema-only, --data-only, --no-owner\n"
        "  -n, --schema S         restore only schema S (repeatable)\n"
        "  -t, --table T          restore only table T (repeatable)\n"
        "      --role R           pg_restore --role R\n"
        "      --keep-old         keep the replaced database as NAME__pgship_old_TIME\n"
        "  -o, --output FILE      instead of replacing NAME, dump the restored (sanitized)\n"
        "                         temporary database into a new archive FILE, encrypted to\n"
        "  -r, --recipient FILE   these public keys (repeatable); NAME is untouched\n"
        "      --pg-bindir DIR    use pg_restore (and pg_dump) from DIR\n"
        "      --id ID            the restore's id (names the temporary database); default\n"
        "                         a new one like 20261121T160529Z-1a2b3c4d\n"
        "      --cleanup          drop the temporary databases restores that did not finish\n"
        "                         left on the configured databases' servers (and re-allow\n"
        "                         connections to a target one left closed), remove their spool\n"
        "                         directories, and exit\n"
        "      --json             the report as JSON: {\"ok\", \"step\", \"error\", \"report\"}\n"
        "  -q, --quiet            only errors\n"
        "  -h, --help\n"
        "\n"
        "Exit status: 0 when the database was restored (or, with --cleanup, cleaned); 1 when\n"
        "it failed (the database is as it was); 2 on bad usage; 128+N when stopped by\n"
        "signal N (the temporary database is dropped first).\n");
}

typedef struct file_src {
    int fd;
} file_src;

static ssize_t file_source(void *arg, void *buf, size_t len)
{
    file_src *s = arg;
    for (;;) {
        ssize_t n = read(s->fd, buf, len);
        if (n < 0 && errno == EINTR && !sig_stop_requested())
            continue;
        return n;
    }
}

/* Reads a whole text file of at most max bytes, NUL-terminated. */
static char *read_text(const char *path, size_t max, pgs_error *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        pgs_fail(e, PGS_EIO, "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
        pgs_fail(e, PGS_ELIMIT, "%s: not a regular file of at most %zu bytes", path, max);
        close(fd);
        return NULL;
    }
    char *text = malloc((size_t)st.st_size + 1);
    ssize_t n = text ? fs_read_full(fd, text, (size_t)st.st_size) : -1;
    close(fd);
    if (n != st.st_size) {
        free(text);
        pgs_fail(e, PGS_EIO, "%s: cannot read it", path);
        return NULL;
    }
    text[n] = '\0';
    if (strlen(text) != (size_t)n) {
        free(text);
        pgs_fail(e, PGS_EFORMAT, "%s holds a NUL byte", path);
        return NULL;
    }
    return text;
}

static int restore_step_log(void *arg, const char *step, const char *detail)
{
    (void)arg;
    log_info("step %s%s%s", step, detail[0] ? ": " : "", detail);
    return 0;
}

static void print_report(FILE *f, const json_t *rep, int ok, const char *step, const char *err)
{
    const char *target = json_string_value(json_object_get(rep, "target"));
    if (ok)
        fprintf(f, "restored %s\n", target ? target : "");
    else
        fprintf(f, "restore of %s FAILED in step %s: %s\n", target ? target : "",
                step[0] ? step : "(before any step)", err);
    const json_t *old = json_object_get(rep, "old_database");
    if (json_is_string(old))
        fprintf(f, "previous database kept as %s\n", json_string_value(old));
    size_t i;
    const json_t *v;
    fprintf(f, "steps:\n");
    json_array_foreach(json_object_get(rep, "steps"), i, v)
        fprintf(f, "  %-12s %8.1f s%s\n", json_string_value(json_object_get(v, "name")),
                (double)json_integer_value(json_object_get(v, "ms")) / 1000.0,
                json_is_true(json_object_get(v, "ok")) ? "" : "  FAILED");
    const json_t *se = json_object_get(rep, "sanitize_error");
    if (se != NULL)
        fprintf(f, "sanitize error at line %lld: %s\n",
                (long long)json_integer_value(json_object_get(se, "line")),
                json_string_value(json_object_get(se, "message")));
    json_int_t nfail = json_integer_value(json_object_get(rep, "check_failures_total"));
    if (nfail > 0) {
        fprintf(f, "check failures: %lld row%s\n", (long long)nfail, nfail == 1 ? "" : "s");
        json_array_foreach(json_object_get(rep, "check_failures"), i, v)
        {
            fprintf(f, "  query %lld (line %lld):",
                    (long long)json_integer_value(json_object_get(v, "query")),
                    (long long)json_integer_value(json_object_get(v, "line")));
            const json_t *cols = json_object_get(v, "columns"), *row = json_object_get(v, "row");
            for (size_t k = 0; k < json_array_size(cols); k++) {
                const json_t *cell = json_array_get(row, k);
                fprintf(f, " %s=%s", json_string_value(json_array_get(cols, k)),
                        json_is_null(cell) ? "NULL" : json_string_value(cell));
            }
            fputc('\n', f);
        }
        if ((size_t)nfail > json_array_size(json_object_get(rep, "check_failures")))
            fprintf(f, "  (the first %zu shown)\n",
                    json_array_size(json_object_get(rep, "check_failures")));
    }
    const json_t *tables = json_object_get(rep, "tables");
    if (json_array_size(tables) > 0) {
        fprintf(f, "tables: %lld, rows: %lld\n",
                (long long)json_integer_value(json_object_get(rep, "tables_total")),
                (long long)json_integer_value(json_object_get(rep, "rows_total")));
        json_array_foreach(tables, i, v) fprintf(
            f, "  %12lld  %s.%s\n", (long long)json_integer_value(json_object_get(v, "rows")),
            json_string_value(json_object_get(v, "schema")),
            json_string_value(json_object_get(v, "name")));
    }
    const json_t *dump = json_object_get(rep, "dump");
    if (dump != NULL)
        fprintf(f, "sanitized archive: %lld bytes, sha256 %s\n",
                (long long)json_integer_value(json_object_get(dump, "archive_bytes")),
                json_string_value(json_object_get(dump, "sha256")));
    json_array_foreach(json_object_get(rep, "warnings"), i, v)
        fprintf(f, "warning: %s\n", json_string_value(v));
}

static int restore_cleanup_all(const agent_config *cfg, const char *database)
{
    int status = 0, total = 0, found = 0;
    for (size_t i = 0; i < cfg->ndatabases; i++) {
        const agent_database_config *d = &cfg->databases[i];
        if (database != NULL && strcmp(d->name, database) != 0)
            continue;
        found = 1;
        pgs_error e = {0};
        int n = restore_cleanup(d->conninfo, &e);
        if (n < 0) {
            log_error("database %s: %s", d->name, e.msg);
            status = 1;
        } else {
            total += n;
        }
    }
    if (!found) {
        log_error("no [database %s] in the configuration", database);
        return 1;
    }
    int spools = restore_spool_cleanup(cfg->agent.spool_dir);
    log_info("cleanup: dropped %d temporary database%s, removed %d spool director%s", total,
             total == 1 ? "" : "s", spools, spools == 1 ? "y" : "ies");
    return status;
}

enum {
    OPT_R_DATABASE = 3000,
    OPT_R_FROM,
    OPT_R_SANITIZE,
    OPT_R_CHECK,
    OPT_R_PROFILE,
    OPT_R_SCHEMA_ONLY,
    OPT_R_DATA_ONLY,
    OPT_R_NO_OWNER,
    OPT_R_ROLE,
    OPT_R_KEEP_OLD,
    OPT_R_BINDIR,
    OPT_R_ID,
    OPT_R_CLEANUP,
    OPT_R_JSON
};

static int cmd_restore(int argc, char **argv)
{
    static const struct option lo[] = {
        {"config", required_argument, NULL, 'c'},
        {"database", required_argument, NULL, OPT_R_DATABASE},
        {"from", required_argument, NULL, OPT_R_FROM},
        {"key", required_argument, NULL, 'k'},
        {"sanitize-sql", required_argument, NULL, OPT_R_SANITIZE},
        {"check-sql", required_argument, NULL, OPT_R_CHECK},
        {"profile", required_argument, NULL, OPT_R_PROFILE},
        {"jobs", required_argument, NULL, 'j'},
        {"schema-only", no_argument, NULL, OPT_R_SCHEMA_ONLY},
        {"data-only", no_argument, NULL, OPT_R_DATA_ONLY},
        {"schema", required_argument, NULL, 'n'},
        {"table", required_argument, NULL, 't'},
        {"no-owner", no_argument, NULL, OPT_R_NO_OWNER},
        {"role", required_argument, NULL, OPT_R_ROLE},
        {"keep-old", no_argument, NULL, OPT_R_KEEP_OLD},
        {"output", required_argument, NULL, 'o'},
        {"recipient", required_argument, NULL, 'r'},
        {"pg-bindir", required_argument, NULL, OPT_R_BINDIR},
        {"id", required_argument, NULL, OPT_R_ID},
        {"cleanup", no_argument, NULL, OPT_R_CLEANUP},
        {"json", no_argument, NULL, OPT_R_JSON},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL, *database = NULL, *from = NULL, *sanitize = NULL, *check = NULL,
               *output = NULL, *id = NULL;
    const char *keyfiles[RESTORE_KEYS_MAX];
    size_t nkeyfiles = 0;
    strlist schemas = {.n = 0}, tables = {.n = 0}, recipients = {.n = 0};
    restore_opts o;
    memset(&o, 0, sizeof(o));
    o.jobs = 1;
    int cleanup = 0, json = 0, ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "c:k:j:n:t:o:r:qh", lo, NULL)) != -1) {
        int bad = 0;
        switch (ch) {
        case 'c':
            config = optarg;
            break;
        case OPT_R_DATABASE:
            database = optarg;
            break;
        case OPT_R_FROM:
            from = optarg;
            break;
        case 'k':
            if (nkeyfiles == RESTORE_KEYS_MAX) {
                log_error("at most %d --key options", RESTORE_KEYS_MAX);
                bad = 1;
            } else {
                keyfiles[nkeyfiles++] = optarg;
            }
            break;
        case OPT_R_SANITIZE:
            sanitize = optarg;
            break;
        case OPT_R_CHECK:
            check = optarg;
            break;
        case OPT_R_PROFILE:
            o.profile = optarg;
            break;
        case 'j':
            if (parse_int(optarg, 1, 64, &o.jobs) != 0) {
                log_error("--jobs must be a number from 1 to 64");
                bad = 1;
            }
            break;
        case OPT_R_SCHEMA_ONLY:
            o.schema_only = 1;
            break;
        case OPT_R_DATA_ONLY:
            o.data_only = 1;
            break;
        case 'n':
            bad = add_str(&schemas, optarg, "--schema");
            break;
        case 't':
            bad = add_str(&tables, optarg, "--table");
            break;
        case OPT_R_NO_OWNER:
            o.no_owner = 1;
            break;
        case OPT_R_ROLE:
            o.role = optarg;
            break;
        case OPT_R_KEEP_OLD:
            o.keep_old = 1;
            break;
        case 'o':
            output = optarg;
            break;
        case 'r':
            bad = add_str(&recipients, optarg, "--recipient");
            break;
        case OPT_R_BINDIR:
            o.pg_bindir = optarg;
            break;
        case OPT_R_ID:
            id = optarg;
            break;
        case OPT_R_CLEANUP:
            cleanup = 1;
            break;
        case OPT_R_JSON:
            json = 1;
            break;
        case 'q':
            log_set_level(LOG_ERROR);
            break;
        case 'h':
            usage_restore(stdout);
            return 0;
        default:
            usage_restore(stderr);
            return 2;
        }
        if (bad)
            return 2;
    }
    if (optind < argc) {
        log_error("unexpected argument \"%s\" (see pgship-agent restore --help)", argv[optind]);
        return 2;
    }
    if (config == NULL) {
        log_error("-c FILE is required (see pgship-agent restore --help)");
        return 2;
    }
    if (!cleanup && (database == NULL || from == NULL)) {
        log_error("--database NAME and --from ARCHIVE are required (see pgship-agent restore "
                  "--help)");
        return 2;
    }
    if (o.schema_only && o.data_only) {
        log_error("--schema-only and --data-only exclude each other");
        return 2;
    }
    if ((output == NULL) != (recipients.n == 0)) {
        log_error("-o FILE and --recipient go together");
        return 2;
    }
    if (output != NULL && o.keep_old) {
        log_error("--keep-old has no meaning with -o: the database is not replaced");
        return 2;
    }

    agent_config cfg;
    pgs_error e = {0};
    if (agent_config_load(config, &cfg, &e) != 0) {
        log_error("%s", e.msg);
        return 1;
    }
    if (cleanup) {
        int st = restore_cleanup_all(&cfg, database);
        agent_config_free(&cfg);
        return st;
    }
    const agent_database_config *d = NULL;
    for (size_t i = 0; i < cfg.ndatabases && d == NULL; i++)
        if (strcmp(cfg.databases[i].name, database) == 0)
            d = &cfg.databases[i];
    int status = 1;
    pgs_seckey keys[RESTORE_KEYS_MAX];
    size_t nkeys = 0;
    char *sanitize_sql = NULL, *check_sql = NULL;
    file_src src = {.fd = -1};
    json_t *report = NULL;
    char step[32] = "", idbuf[64];
    dump_opts redump;
    if (d == NULL) {
        log_error("no [database %s] in %s", database, config);
        goto out;
    }
    for (; nkeys < nkeyfiles; nkeys++)
        if (key_load_secret(keyfiles[nkeys], &keys[nkeys], &e) != 0) {
            log_error("--key: %s", e.msg);
            goto out;
        }
    if ((sanitize && (sanitize_sql = read_text(sanitize, RESTORE_SQL_MAX, &e)) == NULL) ||
        (check && (check_sql = read_text(check, RESTORE_SQL_MAX, &e)) == NULL)) {
        log_error("%s", e.msg);
        goto out;
    }
    if (strcmp(from, "-") == 0) {
        if (isatty(STDIN_FILENO)) {
            log_error("--from -: standard input is a terminal");
            goto out;
        }
        src.fd = STDIN_FILENO;
    } else if ((src.fd = open(from, O_RDONLY | O_CLOEXEC)) < 0) {
        log_error("%s: %s", from, strerror(errno));
        goto out;
    }
    if (id == NULL) {
        uint32_t rnd = 0;
        if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
            rnd = (uint32_t)getpid() ^ (uint32_t)time(NULL);
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        char stamp[32];
        strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
        snprintf(idbuf, sizeof(idbuf), "%s-%08x", stamp, rnd);
        id = idbuf;
    }
    o.id = id;
    o.conninfo = d->conninfo;
    o.target = d->name;
    o.src = file_source;
    o.src_arg = &src;
    o.keys = nkeyfiles ? keys : cfg.restore_keys;
    o.nkeys = nkeyfiles ? nkeys : cfg.nrestore_keys;
    o.spool_dir = cfg.agent.spool_dir;
    o.schemas = schemas.v;
    o.nschemas = schemas.n;
    o.tables = tables.v;
    o.ntables = tables.n;
    o.sanitize_sql = sanitize_sql;
    o.check_sql = check_sql;
    o.on_step = restore_step_log;
    if (output != NULL) {
        dump_opts_init(&redump);
        redump.recipients = recipients;
        redump.output = output;
        redump.spool_dir = cfg.agent.spool_dir;
        redump.pg_bindir = o.pg_bindir;
        redump.progress = 0;
        o.redump = &redump;
    }
    if (sig_guard_start() != 0) {
        log_error("cannot set up signal handling");
        goto out;
    }
    log_info("restore %s: %s into %s (temporary database named by the id)", id, from, d->name);
    int rc = restore_run(&o, &report, step, &e);
    if (rc == 0)
        status = 0;
    else
        log_error("%s%s%s", step[0] ? step : "", step[0] ? ": " : "", e.msg);
    if (json) {
        json_t *j = json_pack("{s:b, s:s, s:s, s:O}", "ok", rc == 0, "step", step, "error",
                              rc == 0 ? "" : e.msg, "report", report);
        json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        json_decref(j);
    } else {
        print_report(stdout, report, rc == 0, step, e.msg);
    }
    fflush(stdout);
    if (rc != 0 && sig_stop_requested())
        status = 128 + sig_stop_requested();
out:
    json_decref(report);
    if (src.fd > STDIN_FILENO)
        close(src.fd);
    free(sanitize_sql);
    free(check_sql);
    for (size_t i = 0; i < nkeys; i++)
        key_secret_wipe(&keys[i]);
    agent_config_free(&cfg);
    return status;
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
    if (strcmp(argv[1], "restore") == 0)
        return cmd_restore(argc - 1, argv + 1);
    if (strcmp(argv[1], "run") == 0)
        return cmd_run(argc - 1, argv + 1);
    if (is_run_option(argv[1]))
        return cmd_run(argc, argv);
    log_error("unknown command \"%s\"", argv[1]);
    usage_main(stderr);
    return 2;
}
