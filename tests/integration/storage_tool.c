/*
 * storage_tool: a command-line driver over the storage API (coordinator/storage.h), so that
 * integration tests can drive both backends from a shell script with real files and pipes.
 *
 *   storage_tool [options] put FILE KEY            one request (storage_put)
 *   storage_tool [options] upload FILE KEY         streaming upload of a file
 *   storage_tool [options] upload-stream KEY       streaming upload of stdin
 *   storage_tool [options] upload-abort KEY        reads stdin into an upload, then aborts it
 *   storage_tool [options] get KEY FILE|-          streaming read
 *   storage_tool [options] list [PREFIX]           "SIZE KEY" lines
 *   storage_tool [options] delete KEY
 *
 * Uploads and reads into a file print "sha256 HEX size N" on stdout. The secret comes from
 * AWS_SECRET_ACCESS_KEY or --secret-file, never from the command line.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "common/log.h"
#include "common/sha256.h"
#include "coordinator/storage.h"

#define TOOL_CHUNK (1u << 20)

static void usage(void)
{
    fprintf(stderr,
            "usage: storage_tool [options] COMMAND ARGS\n"
            "commands: put FILE KEY | upload FILE KEY | upload-stream KEY | upload-abort KEY |\n"
            "          get KEY FILE|- | list [PREFIX] | delete KEY\n"
            "options:  --type fs|s3 --path DIR --endpoint URL --region R --bucket B\n"
            "          --prefix P --path-style --access-key-id ID --secret-file FILE\n"
            "          --part-size-mib N --parallel-parts N --max-attempts N\n"
            "          --retry-base-ms N --low-speed-time S --connect-timeout S --verbose\n"
            "the secret is read from --secret-file or AWS_SECRET_ACCESS_KEY\n");
}

static int read_secret(const char *path, char *out, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = fs_read_full(fd, out, cap - 1);
    close(fd);
    if (n < 0)
        return -1;
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
        n--;
    out[n] = '\0';
    return 0;
}

static void print_sum(const uint8_t sha[32], uint64_t size)
{
    char hex[SHA256_HEX_LEN + 1];
    hex_encode(sha, 32, hex);
    printf("sha256 %s size %llu\n", hex, (unsigned long long)size);
}

/* Streams fd into an upload; commits it, or aborts it when abort_at_end. */
static int upload_fd(storage *s, int fd, const char *key, int abort_at_end, pgs_error *e)
{
    storage_upload *u = NULL;
    uint8_t *buf = malloc(TOOL_CHUNK);
    int rc;
    if (buf == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    if ((rc = storage_upload_begin(s, key, &u, e)) != 0)
        goto out;
    for (;;) {
        ssize_t n = read(fd, buf, TOOL_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = pgs_fail(e, PGS_EIO, "reading input: %s", strerror(errno));
            break;
        }
        if (n == 0)
            break;
        if ((rc = storage_upload_write(u, buf, (size_t)n, e)) != 0)
            break;
    }
    if (rc != 0 || abort_at_end) {
        storage_upload_abort(u);
        u = NULL;
        goto out;
    }
    uint8_t sha[32];
    uint64_t size = 0;
    rc = storage_upload_commit(u, sha, &size, e);
    u = NULL;
    if (rc == 0)
        print_sum(sha, size);
out:
    storage_upload_abort(u);
    free(buf);
    return rc;
}

typedef struct get_sink {
    int fd;
    sha256_ctx *sha;
    uint64_t size;
} get_sink;

static int get_write(void *arg, const void *buf, size_t len)
{
    get_sink *g = arg;
    if (fs_write_all(g->fd, buf, len) != 0)
        return PGS_EIO;
    sha256_update(g->sha, buf, len);
    g->size += len;
    return 0;
}

static int list_print(void *arg, const char *key, uint64_t size)
{
    (void)arg;
    printf("%llu %s\n", (unsigned long long)size, key);
    return 0;
}

static int cmd_put(storage *s, const char *file, const char *key, pgs_error *e)
{
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return pgs_fail(e, PGS_EIO, "%s: %s", file, strerror(errno));
    off_t len = lseek(fd, 0, SEEK_END);
    if (len < 0 || len > (off_t)(64u << 20)) {
        close(fd);
        return pgs_fail(e, PGS_ELIMIT, "%s: put takes files up to 64 MiB", file);
    }
    lseek(fd, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)len + 1);
    if (buf == NULL || fs_read_full(fd, buf, (size_t)len) != (ssize_t)len) {
        free(buf);
        close(fd);
        return pgs_fail(e, PGS_EIO, "%s: cannot read", file);
    }
    close(fd);
    int rc = storage_put(s, key, buf, (size_t)len, e);
    if (rc == 0) {
        uint8_t sha[32];
        sha256_ctx *c = sha256_new();
        if (c != NULL) {
            sha256_update(c, buf, (size_t)len);
            sha256_final(c, sha);
            sha256_free(c);
            print_sum(sha, (uint64_t)len);
        }
    }
    free(buf);
    return rc;
}

static int cmd_get(storage *s, const char *key, const char *file, pgs_error *e)
{
    get_sink g = {STDOUT_FILENO, sha256_new(), 0};
    fs_outfile o;
    int to_file = strcmp(file, "-") != 0;
    int rc;
    if (g.sha == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    if (to_file) {
        if ((rc = fs_outfile_open(&o, file, 1, e)) != 0) {
            sha256_free(g.sha);
            return rc;
        }
        g.fd = o.fd;
    }
    rc = storage_get(s, key, get_write, &g, e);
    if (to_file) {
        if (rc == 0)
            rc = fs_outfile_commit(&o, e);
        else
            fs_outfile_abort(&o);
    }
    if (rc == 0 && to_file) {
        uint8_t sha[32];
        sha256_final(g.sha, sha);
        print_sum(sha, g.size);
    }
    sha256_free(g.sha);
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"type", required_argument, NULL, 't'},
        {"path", required_argument, NULL, 'd'},
        {"endpoint", required_argument, NULL, 'E'},
        {"region", required_argument, NULL, 'R'},
        {"bucket", required_argument, NULL, 'B'},
        {"prefix", required_argument, NULL, 'P'},
        {"path-style", no_argument, NULL, 'S'},
        {"access-key-id", required_argument, NULL, 'A'},
        {"secret-file", required_argument, NULL, 'F'},
        {"part-size-mib", required_argument, NULL, 'p'},
        {"parallel-parts", required_argument, NULL, 'j'},
        {"max-attempts", required_argument, NULL, 'a'},
        {"retry-base-ms", required_argument, NULL, 'r'},
        {"low-speed-time", required_argument, NULL, 'l'},
        {"connect-timeout", required_argument, NULL, 'c'},
        {"verbose", no_argument, NULL, 'v'},
        {NULL, 0, NULL, 0},
    };
    storage_config cfg;
    char secret[512] = "";
    const char *secret_file = NULL;
    storage *s = NULL;
    pgs_error e = {0};
    int c, rc = 0;

    memset(&cfg, 0, sizeof(cfg));
    log_init("storage_tool");
    signal(SIGPIPE, SIG_IGN);
    while ((c = getopt_long(argc, argv, "v", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            cfg.type = optarg;
            break;
        case 'd':
            cfg.path = optarg;
            break;
        case 'E':
            cfg.endpoint = optarg;
            break;
        case 'R':
            cfg.region = optarg;
            break;
        case 'B':
            cfg.bucket = optarg;
            break;
        case 'P':
            cfg.prefix = optarg;
            break;
        case 'S':
            cfg.path_style = 1;
            break;
        case 'A':
            cfg.access_key_id = optarg;
            break;
        case 'F':
            secret_file = optarg;
            break;
        case 'p':
            cfg.part_size_mib = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'j':
            cfg.parallel_parts = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'a':
            cfg.max_attempts = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'r':
            cfg.retry_base_ms = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'l':
            cfg.low_speed_time_s = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'c':
            cfg.connect_timeout_s = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'v':
            log_set_level(LOG_DEBUG);
            break;
        default:
            usage();
            return 2;
        }
    }
    if (optind >= argc) {
        usage();
        return 2;
    }
    if (secret_file != NULL) {
        if (read_secret(secret_file, secret, sizeof(secret)) != 0) {
            log_error("cannot read the secret file %s: %s", secret_file, strerror(errno));
            return 1;
        }
    } else if (getenv("AWS_SECRET_ACCESS_KEY") != NULL) {
        snprintf(secret, sizeof(secret), "%s", getenv("AWS_SECRET_ACCESS_KEY"));
    }
    cfg.secret_access_key = secret;

    const char *cmd = argv[optind];
    int nargs = argc - optind - 1;
    char **args = argv + optind + 1;
    if ((rc = storage_open(&s, &cfg, &e)) != 0)
        goto out;
    if (strcmp(cmd, "put") == 0 && nargs == 2) {
        rc = cmd_put(s, args[0], args[1], &e);
    } else if (strcmp(cmd, "upload") == 0 && nargs == 2) {
        int fd = open(args[0], O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            rc = pgs_fail(&e, PGS_EIO, "%s: %s", args[0], strerror(errno));
        } else {
            rc = upload_fd(s, fd, args[1], 0, &e);
            close(fd);
        }
    } else if (strcmp(cmd, "upload-stream") == 0 && nargs == 1) {
        rc = upload_fd(s, STDIN_FILENO, args[0], 0, &e);
    } else if (strcmp(cmd, "upload-abort") == 0 && nargs == 1) {
        rc = upload_fd(s, STDIN_FILENO, args[0], 1, &e);
    } else if (strcmp(cmd, "get") == 0 && nargs == 2) {
        rc = cmd_get(s, args[0], args[1], &e);
    } else if (strcmp(cmd, "list") == 0 && nargs <= 1) {
        rc = storage_list(s, nargs == 1 ? args[0] : "", list_print, NULL, &e);
    } else if (strcmp(cmd, "delete") == 0 && nargs == 1) {
        rc = storage_delete(s, args[0], &e);
    } else {
        usage();
        rc = 2;
    }
out:
    storage_close(s);
    explicit_bzero(secret, sizeof(secret));
    if (rc == 2)
        return 2;
    if (rc != 0) {
        log_error("%s (%s)", e.msg, pgs_strerror(rc));
        return 1;
    }
    return fflush(stdout) == 0 ? 0 : 1;
}
