/*
 * The dump job: connect, choose a pg_dump, run it with argv (never a shell), and stream its
 * output through the archive writer (tar -> zstd -> envelope) into an output that appears only
 * when complete.
 *
 * --format custom streams: pg_dump -Fc -Z0 writes to a pipe; its bytes are cut into members of
 * part_size (a tar member needs its size before its data, so one part is the only buffer) and
 * nothing of the dump touches the disk. --format directory runs pg_dump -Fd -j N into a private
 * spool directory (parallel pg_dump needs files) that is removed afterwards in every case.
 *
 * The conninfo can hold a password, so it never reaches argv or a log: its parameters go to the
 * children through libpq's own PG* environment variables (agent/pgconn.c).
 */
#include "agent/dump.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "agent/pgbin.h"
#include "agent/pgconn.h"
#include "common/fsutil.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/progress.h"
#include "common/sha256.h"
#include "common/spawn.h"
#include "proto/bundle.h"
#include "proto/manifest.h"

void dump_opts_init(dump_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->output = NULL;
    o->jobs = 1;
    o->compress_level = 3;
    o->compress_threads = -1;
    o->part_size = DUMP_PART_SIZE_DEFAULT;
    o->chunk_size = ENVELOPE_CHUNK_DEFAULT;
    o->progress = -1;
}

typedef struct dump_ctx {
    const dump_opts *o;
    pgs_pubkey keys[ENVELOPE_RECIPIENTS_MAX];
    size_t nkeys;
    fs_outfile out;
    int out_open;
    sha256_ctx *out_hash;
    uint64_t out_bytes;
    int sink_errno;
    bundle_writer *bw;
    pgconn_child child; /* pg_dump's environment and --dbname, from the conninfo */
    pgbin pgdump;
    char dbname[256];
    char server_version[32];
    int server_version_num;
    int superuser;
    uint64_t db_size;
    char spool[4096];
    char *manifest_json;
    int globals_fd;
    uint64_t globals_bytes;
    uint64_t dump_bytes;
    uint64_t dump_members;
    progress prog;
    double t0;
} dump_ctx;

static int out_sink(void *arg, const void *buf, size_t len)
{
    dump_ctx *c = arg;
    if (c->o->sink != NULL) {
        int rc = c->o->sink(c->o->sink_arg, buf, len);
        if (rc != 0)
            return rc;
    } else if (fs_write_all(c->out.fd, buf, len) != 0) {
        c->sink_errno = errno;
        return PGS_EIO;
    }
    sha256_update(c->out_hash, buf, len);
    c->out_bytes += len;
    return 0;
}

/* Adds to e's message what the sink saw, when the failure came from the output. */
static int out_fail(dump_ctx *c, pgs_error *e, int rc)
{
    if (c->sink_errno != 0)
        return pgs_fail(e, PGS_EIO, "writing %s: %s",
                        c->out.to_stdout ? "standard output" : c->o->output,
                        strerror(c->sink_errno));
    return rc;
}

static int check_stop(pgs_error *e)
{
    int sig = sig_stop_requested();
    if (sig != 0)
        return pgs_fail(e, PGS_EINTR, "interrupted by signal %d", sig);
    return 0;
}

/* Connects once to learn the server's version, the database's name and size, and whether we are
 * a superuser (for --globals); the dump itself runs in pg_dump's own connection. */
static int probe_database(dump_ctx *c, pgs_error *e)
{
    /* Names go into manifest.json, which is UTF-8: pgconn_connect lets the server convert them.
     * (An SQL_ASCII database's name with high bytes cannot be converted; the manifest then refuses
     * it by name.) */
    PGconn *conn = pgconn_connect(c->o->conninfo, NULL, e);
    if (conn == NULL)
        return e->code;
    int rc = 0;
    PGresult *res = PQexec(conn, "SELECT current_database(), "
                                 "pg_database_size(current_database()), "
                                 "(SELECT rolsuper FROM pg_roles WHERE rolname = current_user), "
                                 "current_setting('server_version')");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        rc = pgs_fail(e, PGS_EIO, "querying the database failed: %s",
                      PQresultErrorMessage(res));
        PQclear(res);
        goto out;
    }
    snprintf(c->dbname, sizeof(c->dbname), "%s", PQgetvalue(res, 0, 0));
    c->db_size = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
    c->superuser = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
    snprintf(c->server_version, sizeof(c->server_version), "%s", PQgetvalue(res, 0, 3));
    c->server_version[strcspn(c->server_version, " ")] = '\0';
    c->server_version_num = PQserverVersion(conn);
    PQclear(res);
out:
    PQfinish(conn);
    return rc;
}

/* "pg_dump failed (exited with status 1):" and the end of what it said on stderr. */
static int child_failed(spawn_proc *p, const char *what, pgs_error *e)
{
    char how[sizeof(e->msg)];
    snprintf(how, sizeof(how), "%s", e->msg);
    const char *tail = spawn_stderr_tail(p);
    return pgs_fail(e, PGS_ECHILD, "%s failed (%s)%s%s", what, how, tail[0] ? ":\n" : "", tail);
}

/* pg_dumpall --globals-only into an unlinked temporary file, before the dump, so that a missing
 * right fails the command before any time is spent on the database. */
static int dump_globals(dump_ctx *c, pgs_error *e)
{
    char prog[4096 + 16];
    snprintf(prog, sizeof(prog), "%s/pg_dumpall", c->pgdump.dir);
    const char *argv[8];
    int n = 0;
    argv[n++] = prog;
    argv[n++] = "--globals-only";
    argv[n++] = "--no-password";
    if (!c->superuser) {
        /* Role passwords live in pg_authid, which only a superuser may read. */
        argv[n++] = "--no-role-passwords";
        log_warn("the role is not a superuser: globals are dumped without role passwords "
                 "(--no-role-passwords)");
    }
    argv[n++] = "-l";
    argv[n++] = c->dbname;
    argv[n] = NULL;
    c->globals_fd = fs_tmpfd();
    if (c->globals_fd < 0)
        return pgs_fail(e, PGS_EIO, "cannot create a temporary file: %s", strerror(errno));
    spawn_proc *p = NULL;
    spawn_opts so = {.argv = argv, .envp = c->child.env, .stdout_mode = SPAWN_OUT_FD,
                     .stdout_fd = c->globals_fd};
    int rc = spawn_start(&p, &so, e);
    if (rc != 0)
        return rc;
    rc = spawn_wait(p, e);
    if (rc != 0) {
        const char *tail = spawn_stderr_tail(p);
        if (strstr(tail, "permission denied") != NULL)
            rc = pgs_fail(e, PGS_ECHILD,
                          "pg_dumpall --globals-only failed: the role lacks the right to read "
                          "the cluster's roles and tablespaces; use a superuser, or drop "
                          "--globals\n%s",
                          tail);
        else
            rc = child_failed(p, "pg_dumpall --globals-only", e);
    }
    spawn_free(p);
    if (rc != 0)
        return rc;
    rc = check_stop(e);
    if (rc != 0)
        return rc;
    struct stat st;
    if (fstat(c->globals_fd, &st) != 0 || lseek(c->globals_fd, 0, SEEK_SET) != 0)
        return pgs_fail(e, PGS_EIO, "reading the globals failed: %s", strerror(errno));
    c->globals_bytes = (uint64_t)st.st_size;
    return 0;
}

/* Copies size bytes of fd into member name. */
static int add_fd_member(dump_ctx *c, const char *name, int fd, uint64_t size, uint8_t *buf,
                         size_t cap, pgs_error *e)
{
    int rc = bundle_writer_begin(c->bw, name, size, e);
    uint64_t left = size;
    while (rc == 0 && left > 0) {
        size_t want = left < cap ? (size_t)left : cap;
        ssize_t n = fs_read_full(fd, buf, want);
        if (n < 0)
            return pgs_fail(e, PGS_EIO, "reading %s: %s", name, strerror(errno));
        if ((size_t)n != want)
            return pgs_fail(e, PGS_EIO, "%s changed while being archived", name);
        rc = bundle_writer_data(c->bw, buf, want, e);
        left -= want;
        if (rc == 0)
            rc = check_stop(e);
        if (name[0] == 'd')
            progress_update(&c->prog, c->dump_bytes + (size - left), c->out_bytes);
    }
    if (rc == 0)
        rc = bundle_writer_end(c->bw, e);
    return rc;
}

static void add_patterns(const char **argv, int *n, const char *flag, const strlist *l,
                         char (*store)[1024], int *ns)
{
    for (size_t i = 0; i < l->n; i++) {
        snprintf(store[*ns], sizeof(store[*ns]), "%s=%s", flag, l->v[i]);
        argv[(*n)++] = store[(*ns)++];
    }
}

/* Builds pg_dump's argv into argv (room for 16 + 4 * DUMP_PATTERNS_MAX entries). */
static void pg_dump_argv(dump_ctx *c, const char **argv, char (*store)[1024], const char *dir)
{
    int n = 0, ns = 0;
    argv[n++] = c->pgdump.path;
    argv[n++] = c->o->directory ? "--format=directory" : "--format=custom";
    argv[n++] = "--compress=0";
    argv[n++] = "--no-password";
    if (c->o->directory) {
        snprintf(store[ns], sizeof(store[ns]), "--jobs=%d", c->o->jobs);
        argv[n++] = store[ns++];
        snprintf(store[ns], sizeof(store[ns]), "--file=%s", dir);
        argv[n++] = store[ns++];
    }
    add_patterns(argv, &n, "--schema", &c->o->schemas, store, &ns);
    add_patterns(argv, &n, "--exclude-schema", &c->o->exclude_schemas, store, &ns);
    add_patterns(argv, &n, "--table", &c->o->tables, store, &ns);
    add_patterns(argv, &n, "--exclude-table", &c->o->exclude_tables, store, &ns);
    if (c->child.dbname_arg != NULL) {
        argv[n++] = "--dbname";
        argv[n++] = c->child.dbname_arg;
    }
    argv[n] = NULL;
}

static int run_pg_dump_custom(dump_ctx *c, pgs_error *e)
{
    const char **argv = calloc(16 + 4 * DUMP_PATTERNS_MAX, sizeof(char *));
    char(*store)[1024] = calloc(8 + 4 * DUMP_PATTERNS_MAX, 1024);
    uint8_t *part = malloc(c->o->part_size);
    spawn_proc *p = NULL;
    int rc = 0;
    if (argv == NULL || store == NULL || part == NULL) {
        rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
        goto out;
    }
    pg_dump_argv(c, argv, store, NULL);
    spawn_opts so = {.argv = argv, .envp = c->child.env, .stdout_mode = SPAWN_OUT_PIPE};
    if ((rc = spawn_start(&p, &so, e)) != 0)
        goto out;
    int fd = spawn_stdout_fd(p);
    /* A larger pipe means fewer wake-ups on both sides; failure is harmless. */
    fcntl(fd, F_SETPIPE_SZ, 1 << 20);
    size_t fill = 0;
    uint32_t partno = 0;
    for (;;) {
        ssize_t n = read(fd, part + fill, c->o->part_size - fill);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = pgs_fail(e, PGS_EIO, "reading from pg_dump: %s", strerror(errno));
            break;
        }
        fill += (size_t)n;
        c->dump_bytes += (uint64_t)n;
        progress_update(&c->prog, c->dump_bytes, c->out_bytes);
        if ((fill == c->o->part_size || (n == 0 && fill > 0))) {
            char name[64];
            snprintf(name, sizeof(name), BUNDLE_PART_FMT, ++partno);
            if ((rc = bundle_writer_add(c->bw, name, part, fill, e)) != 0) {
                rc = out_fail(c, e, rc);
                break;
            }
            c->dump_members++;
            fill = 0;
        }
        if (n == 0)
            break;
        if ((rc = check_stop(e)) != 0)
            break;
    }
    if (rc != 0) {
        spawn_kill(p, SIGTERM);
        spawn_wait(p, NULL);
        goto out;
    }
    rc = spawn_wait(p, e);
    if (rc == 0)
        rc = check_stop(e);
    if (rc != 0 && e->code == PGS_ECHILD)
        rc = child_failed(p, "pg_dump", e);
    else if (rc == 0 && partno == 0)
        rc = pgs_fail(e, PGS_ECHILD, "pg_dump wrote nothing");
out:
    spawn_free(p);
    free(part);
    free(store);
    free(argv);
    return rc;
}

static uint64_t tree_bytes(const char *dir)
{
    uint64_t total = 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
            total += (uint64_t)st.st_size;
    }
    closedir(d);
    return total;
}

static int toc_first(const struct dirent **a, const struct dirent **b)
{
    int at = strcmp((*a)->d_name, "toc.dat") == 0, bt = strcmp((*b)->d_name, "toc.dat") == 0;
    if (at != bt)
        return bt - at;
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int not_dot(const struct dirent *d)
{
    return strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0;
}

static int run_pg_dump_directory(dump_ctx *c, pgs_error *e)
{
    const char **argv = calloc(16 + 4 * DUMP_PATTERNS_MAX, sizeof(char *));
    char(*store)[1024] = calloc(8 + 4 * DUMP_PATTERNS_MAX, 1024);
    size_t bufcap = 1 << 20;
    uint8_t *buf = malloc(bufcap);
    struct dirent **names = NULL;
    int nnames = 0;
    spawn_proc *p = NULL;
    int rc = 0, dfd = -1;
    char dir[4096 + 8];
    if (argv == NULL || store == NULL || buf == NULL) {
        rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
        goto out;
    }
    snprintf(dir, sizeof(dir), "%s/dump", c->spool);
    pg_dump_argv(c, argv, store, dir);
    spawn_opts so = {.argv = argv, .envp = c->child.env, .stdout_mode = SPAWN_OUT_NULL};
    if ((rc = spawn_start(&p, &so, e)) != 0)
        goto out;
    while (spawn_running(p)) {
        usleep(200 * 1000);
        progress_update(&c->prog, tree_bytes(dir), 0);
    }
    rc = spawn_wait(p, e);
    if (rc == 0)
        rc = check_stop(e);
    if (rc != 0) {
        if (e->code == PGS_ECHILD)
            rc = child_failed(p, "pg_dump", e);
        goto out;
    }
    nnames = scandir(dir, &names, not_dot, toc_first);
    if (nnames < 0) {
        nnames = 0;
        rc = pgs_fail(e, PGS_EIO, "reading the spool directory: %s", strerror(errno));
        goto out;
    }
    progress_end(&c->prog);
    progress_init(&c->prog, c->prog.enabled, "archiving", tree_bytes(dir));
    dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        rc = pgs_fail(e, PGS_EIO, "opening the spool directory: %s", strerror(errno));
        goto out;
    }
    for (int i = 0; i < nnames && rc == 0; i++) {
        char name[BUNDLE_NAME_MAX + 1];
        if (snprintf(name, sizeof(name), "dump/%s", names[i]->d_name) >= (int)sizeof(name)) {
            rc = pgs_fail(e, PGS_EFORMAT, "pg_dump wrote an unexpected file %s",
                          names[i]->d_name);
            break;
        }
        int fd = openat(dfd, names[i]->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            rc = pgs_fail(e, PGS_EFORMAT, "pg_dump wrote an unexpected entry %s",
                          names[i]->d_name);
            if (fd >= 0)
                close(fd);
            break;
        }
        if (bundle_name_kind(name, NULL) != BUNDLE_K_DUMPFILE) {
            close(fd);
            rc = pgs_fail(e, PGS_EFORMAT, "pg_dump wrote a file with an unexpected name: %s",
                          names[i]->d_name);
            break;
        }
        rc = add_fd_member(c, name, fd, (uint64_t)st.st_size, buf, bufcap, e);
        close(fd);
        if (rc != 0) {
            rc = out_fail(c, e, rc);
            break;
        }
        c->dump_bytes += (uint64_t)st.st_size;
        c->dump_members++;
        /* Give the space back as we go. */
        unlinkat(dfd, names[i]->d_name, 0);
    }
out:
    if (p != NULL && spawn_running(p)) {
        spawn_kill(p, SIGTERM);
        spawn_wait(p, NULL);
    }
    spawn_free(p);
    if (dfd >= 0)
        close(dfd);
    for (int i = 0; i < nnames; i++)
        free(names[i]);
    free(names);
    free(buf);
    free(store);
    free(argv);
    return rc;
}

static int write_manifest(dump_ctx *c, const char *started, pgs_error *e)
{
    manifest m;
    memset(&m, 0, sizeof(m));
    snprintf(m.format, sizeof(m.format), "%s", c->o->directory ? "directory" : "custom");
    snprintf(m.database, sizeof(m.database), "%s", c->dbname);
    snprintf(m.server_version, sizeof(m.server_version), "%s", c->server_version);
    m.server_version_num = c->server_version_num;
    snprintf(m.pg_dump_version, sizeof(m.pg_dump_version), "%s", c->pgdump.version);
    snprintf(m.created_by, sizeof(m.created_by), "pgship-agent %s", PGSHIP_VERSION);
    if (gethostname(m.host, sizeof(m.host) - 1) != 0)
        snprintf(m.host, sizeof(m.host), "unknown");
    snprintf(m.started_at, sizeof(m.started_at), "%s", started);
    m.estimated_bytes = c->db_size;
    m.part_size = c->o->directory ? 0 : c->o->part_size;
    m.globals = c->o->globals;
    m.nrecipients = c->nkeys;
    for (size_t i = 0; i < c->nkeys; i++) {
        key_id_hex(c->keys[i].id, m.recipients[i].key_id);
        snprintf(m.recipients[i].name, sizeof(m.recipients[i].name), "%s", c->keys[i].name);
    }
    json_t *opt = json_object();
    json_t *lists[4] = {json_array(), json_array(), json_array(), json_array()};
    const strlist *src[4] = {&c->o->schemas, &c->o->exclude_schemas, &c->o->tables,
                             &c->o->exclude_tables};
    for (int l = 0; l < 4; l++)
        for (size_t i = 0; i < src[l]->n; i++)
            json_array_append_new(lists[l], json_string(src[l]->v[i]));
    json_object_set_new(opt, "jobs", json_integer(c->o->jobs));
    json_object_set_new(opt, "compress_level", json_integer(c->o->compress_level));
    json_object_set_new(opt, "schemas", lists[0]);
    json_object_set_new(opt, "exclude_schemas", lists[1]);
    json_object_set_new(opt, "tables", lists[2]);
    json_object_set_new(opt, "exclude_tables", lists[3]);
    m.options = opt;
    char *text = NULL;
    size_t len = 0;
    int rc = manifest_encode(&m, &text, &len, e);
    manifest_clear(&m);
    if (rc == 0)
        rc = bundle_writer_add(c->bw, BUNDLE_MANIFEST, text, len, e);
    if (rc == 0)
        c->manifest_json = text; /* handed to the caller with the result */
    else
        free(text);
    return rc;
}

static int write_end(dump_ctx *c, pgs_error *e)
{
    manifest_end m;
    memset(&m, 0, sizeof(m));
    manifest_time(time(NULL), m.ended_at);
    m.dump_bytes = c->dump_bytes;
    m.dump_members = c->dump_members;
    char *text = NULL;
    size_t len = 0;
    int rc = manifest_end_encode(&m, &text, &len, e);
    if (rc == 0)
        rc = bundle_writer_add(c->bw, BUNDLE_END, text, len, e);
    free(text);
    return rc;
}

static const char *dump_dest(const dump_ctx *c)
{
    if (c->o->sink != NULL)
        return "the stream";
    return c->out.to_stdout ? "standard output" : c->o->output;
}

static void print_summary(dump_ctx *c, const uint8_t digest[SHA256_LEN])
{
    double el = progress_now() - c->t0;
    char hex[SHA256_HEX_LEN + 1], in[32], out[32], rate[32];
    hex_encode(digest, SHA256_LEN, hex);
    uint64_t raw = c->dump_bytes + c->globals_bytes;
    log_info("dumped %s (%s, pg_dump %s): %s -> %s (%.2fx) in %.1f s, %s/s; sha256 %s; wrote %s",
             c->dbname, c->o->directory ? "directory" : "custom", c->pgdump.version,
             fs_human_bytes(raw, in, sizeof(in)), fs_human_bytes(c->out_bytes, out, sizeof(out)),
             c->out_bytes ? (double)raw / (double)c->out_bytes : 0.0, el,
             fs_human_bytes(el > 0 ? (uint64_t)((double)raw / el) : 0, rate, sizeof(rate)), hex,
             dump_dest(c));
    if (c->o->json) {
        json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:f, s:s}", "database", c->dbname,
                              "format", c->o->directory ? "directory" : "custom", "pg_dump_version",
                              c->pgdump.version, "output", dump_dest(c), "dump_bytes",
                              (json_int_t)raw, "archive_bytes", (json_int_t)c->out_bytes, "seconds",
                              el, "sha256", hex);
        json_dumpf(j, stdout, JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        fflush(stdout);
        json_decref(j);
    }
}

static int validate_opts(const dump_opts *o, pgs_error *e)
{
    if (o->conninfo == NULL)
        return pgs_fail(e, PGS_EINVAL, "--dbname is required");
    if (o->recipients.n == 0)
        return pgs_fail(e, PGS_EINVAL,
                        "at least one --recipient public key is required (pgship keygen NAME "
                        "makes one)");
    if (o->recipients.n > ENVELOPE_RECIPIENTS_MAX)
        return pgs_fail(e, PGS_ELIMIT, "at most %d recipients", ENVELOPE_RECIPIENTS_MAX);
    if ((o->output == NULL) == (o->sink == NULL))
        return pgs_fail(e, PGS_EINVAL, "-o FILE (or -o - for standard output) is required");
    if (o->jobs < 1 || o->jobs > 64)
        return pgs_fail(e, PGS_EINVAL, "--jobs must be between 1 and 64");
    if (o->jobs > 1 && !o->directory)
        return pgs_fail(e, PGS_EINVAL, "--jobs needs --format directory (pg_dump -Fc is serial)");
    if (o->compress_level < 1 || o->compress_level > 19)
        return pgs_fail(e, PGS_EINVAL, "--compress-level must be between 1 and 19");
    if (o->part_size < DUMP_PART_SIZE_MIN || o->part_size > DUMP_PART_SIZE_MAX)
        return pgs_fail(e, PGS_EINVAL, "--part-size must be between 64 KiB and 1 GiB");
    if (o->json && o->output != NULL && strcmp(o->output, "-") == 0)
        return pgs_fail(e, PGS_EINVAL, "--json prints on standard output; it cannot be used with -o -");
    return 0;
}

int dump_run(const dump_opts *o, dump_result *result, pgs_error *e)
{
    dump_ctx cx;
    dump_ctx *c = &cx;
    memset(c, 0, sizeof(*c));
    c->o = o;
    c->globals_fd = -1;
    c->t0 = progress_now();
    int rc = validate_opts(o, e);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < o->recipients.n; i++) {
        if ((rc = key_load_public(o->recipients.v[i], &c->keys[i], e)) != 0)
            return pgs_wrap(e, "--recipient");
        for (size_t j = 0; j < i; j++)
            if (memcmp(c->keys[i].id, c->keys[j].id, KEY_ID_LEN) == 0)
                return pgs_fail(e, PGS_EINVAL, "--recipient %s is the same key as %s",
                                o->recipients.v[i], o->recipients.v[j]);
    }
    c->nkeys = o->recipients.n;
    if (o->sink == NULL) {
        if ((rc = fs_outfile_open(&c->out, o->output, o->force, e)) != 0)
            return rc;
        c->out_open = 1;
    }
    if (c->out_open && c->out.to_stdout && isatty(STDOUT_FILENO)) {
        rc = pgs_fail(e, PGS_EINVAL, "refusing to write an archive to a terminal; use -o FILE");
        goto out;
    }
    c->out_hash = sha256_new();
    if (c->out_hash == NULL) {
        rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
        goto out;
    }
    if ((rc = pgconn_child_build(&c->child, o->conninfo, NULL, e)) != 0) {
        pgs_wrap(e, "--dbname");
        goto out;
    }
    if ((rc = probe_database(c, e)) != 0)
        goto out;
    int server_major = c->server_version_num / 10000;
    if ((rc = pgbin_find("pg_dump", server_major, o->pg_bindir, &c->pgdump, e)) != 0)
        goto out;
    log_info("dumping database %s (server %s) with %s (%s)", c->dbname, c->server_version,
             c->pgdump.path, c->pgdump.version);
    if (o->globals && (rc = dump_globals(c, e)) != 0)
        goto out;
    if (o->directory) {
        const char *base = o->spool_dir ? o->spool_dir : getenv("TMPDIR");
        snprintf(c->spool, sizeof(c->spool), "%s/pgship-dump-XXXXXX",
                 base && base[0] ? base : "/tmp");
        if (mkdtemp(c->spool) == NULL) {
            rc = pgs_fail(e, PGS_EIO, "cannot create a spool directory in %s: %s",
                          base && base[0] ? base : "/tmp", strerror(errno));
            c->spool[0] = '\0';
            goto out;
        }
    }

    char started[32];
    manifest_time(time(NULL), started);
    int threads = o->compress_threads;
    if (threads < 0) {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        threads = ncpu < 1 ? 1 : ncpu > 8 ? 8 : (int)ncpu;
    }
    bundle_writer_opts bo = {.rcpts = c->keys,
                             .nrcpts = c->nkeys,
                             .chunk_size = o->chunk_size,
                             .zstd_level = o->compress_level,
                             .zstd_threads = threads,
                             .zstd_job_size = o->compress_job_size,
                             .sink = out_sink,
                             .sink_arg = c};
    if ((rc = bundle_writer_new(&c->bw, &bo, e)) != 0 || (rc = write_manifest(c, started, e)) != 0)
        goto out_io;
    if (o->globals) {
        uint8_t buf[65536];
        if ((rc = add_fd_member(c, BUNDLE_GLOBALS, c->globals_fd, c->globals_bytes, buf,
                                sizeof(buf), e)) != 0)
            goto out_io;
    }
    int tty = o->progress < 0 ? isatty(STDERR_FILENO) : o->progress;
    progress_init(&c->prog, tty, "dumping", c->db_size);
    rc = o->directory ? run_pg_dump_directory(c, e) : run_pg_dump_custom(c, e);
    progress_end(&c->prog);
    if (rc != 0)
        goto out;
    if ((rc = write_end(c, e)) != 0 || (rc = bundle_writer_finish(c->bw, e)) != 0)
        goto out_io;
    bundle_writer_free(c->bw);
    c->bw = NULL;
    if ((rc = check_stop(e)) != 0 || (c->out_open && (rc = fs_outfile_commit(&c->out, e)) != 0))
        goto out;
    c->out_open = 0;
    uint8_t digest[SHA256_LEN];
    sha256_final(c->out_hash, digest);
    print_summary(c, digest);
    if (result != NULL) {
        result->dump_bytes = c->dump_bytes + c->globals_bytes;
        result->archive_bytes = c->out_bytes;
        memcpy(result->sha256, digest, SHA256_LEN);
        result->manifest_json = c->manifest_json;
        c->manifest_json = NULL;
    }
    goto out;
out_io:
    rc = out_fail(c, e, rc);
out:
    /* A stop we were asked for explains whatever failed after it (pg_dump killed, a short read). */
    if (rc != 0 && sig_stop_requested())
        rc = pgs_fail(e, PGS_EINTR, "interrupted by signal %d; no archive was written",
                      sig_stop_requested());
    progress_end(&c->prog);
    bundle_writer_free(c->bw);
    if (c->out_open)
        fs_outfile_abort(&c->out);
    if (c->spool[0] != '\0' && fs_rm_rf(c->spool) != 0)
        log_warn("could not remove the spool directory %s: %s", c->spool, strerror(errno));
    if (c->globals_fd >= 0)
        close(c->globals_fd);
    sha256_free(c->out_hash);
    pgconn_child_free(&c->child);
    free(c->manifest_json);
    return rc;
}
