/*
 * pgship decrypt: the offline way back from an archive to pg_dump output. It writes the plain tar
 * (-o), unpacks it with every checksum verified (--extract), or shows the manifest (--list).
 * --extract (proto/extract.c, shared with the agent's restore) joins the custom format's parts
 * into one dump.pgdump that pg_restore reads, and never trusts a path from the archive: the member
 * names are checked (proto/bundle.c) and files are created with O_EXCL|O_NOFOLLOW under the target
 * directory only. On any failure what it created is removed.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/commands.h"
#include "common/fsutil.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/spawn.h"
#include "proto/bundle.h"
#include "proto/envelope.h"
#include "proto/extract.h"

#define MAX_KEYS 16

static void usage(FILE *f)
{
    fprintf(f,
            "usage: pgship decrypt --key FILE.key [INPUT|-] [-o OUT|- | --extract DIR | --list]\n"
            "\n"
            "Decrypts a pgship archive (INPUT, or standard input) with a recipient's secret key.\n"
            "\n"
            "  -k, --key FILE       a secret key from `pgship keygen` (repeatable: the one that\n"
            "                       opens the archive is used)\n"
            "  -o, --output OUT|-   write the plain (uncompressed) tar; default standard output\n"
            "  -x, --extract DIR    unpack into DIR (created; if it exists it must be empty),\n"
            "                       verifying every member's SHA-256: DIR/dump.pgdump (custom\n"
            "                       format) or DIR/dump/ (directory format), DIR/globals.sql when\n"
            "                       dumped, DIR/manifest.json and DIR/end.json\n"
            "  -l, --list           verify the whole archive and show its manifest and members\n"
            "      --json           with --list: JSON on standard output\n"
            "  -f, --force          overwrite an existing -o file\n"
            "  -h, --help\n"
            "\n"
            "Then: pg_restore -d DBNAME DIR/dump.pgdump (or DIR/dump). Exit status 0 only when\n"
            "the archive was complete and authentic; an -o file or DIR is removed otherwise.\n");
}

typedef struct fd_src {
    int fd;
    int err;
} fd_src;

static ssize_t fd_source(void *arg, void *buf, size_t len)
{
    fd_src *s = arg;
    for (;;) {
        ssize_t n = read(s->fd, buf, len);
        if (n < 0 && errno == EINTR && !sig_stop_requested())
            continue;
        if (n < 0)
            s->err = errno;
        return n;
    }
}

static int fd_sink(void *arg, const void *buf, size_t len)
{
    return fs_write_all(*(int *)arg, buf, len) == 0 ? 0 : PGS_EIO;
}

static void print_list(const extract_info *x, int json)
{
    if (json) {
        json_t *j = json_pack("{s:O, s:{s:s, s:I, s:I}, s:I, s:b}", "manifest",
                              x->manifest_json ? x->manifest_json : json_object(), "end",
                              "ended_at", x->end.ended_at, "dump_bytes",
                              (json_int_t)x->end.dump_bytes, "dump_members",
                              (json_int_t)x->end.dump_members, "members",
                              (json_int_t)x->members, "verified", 1);
        json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        json_decref(j);
        return;
    }
    char b[32];
    printf("database:        %s\n", x->man.database);
    printf("format:          %s\n", x->man.format);
    printf("server version:  %s\n", x->man.server_version);
    printf("pg_dump version: %s\n", x->man.pg_dump_version);
    printf("host:            %s\n", x->man.host);
    printf("created by:      %s\n", x->man.created_by);
    printf("started at:      %s\n", x->man.started_at);
    printf("ended at:        %s\n", x->end.ended_at);
    printf("globals:         %s\n", x->man.globals ? "yes" : "no");
    printf("dump size:       %s (%llu members)\n", fs_human_bytes(x->end.dump_bytes, b, sizeof(b)),
           (unsigned long long)x->end.dump_members);
    for (size_t i = 0; i < x->man.nrecipients; i++)
        printf("recipient:       %s (key id %s)\n", x->man.recipients[i].name,
               x->man.recipients[i].key_id);
    printf("verified:        every member matches SHA256SUMS; the archive is complete\n");
}

int cmd_decrypt(int argc, char **argv)
{
    static const struct option lo[] = {
        {"key", required_argument, NULL, 'k'},     {"output", required_argument, NULL, 'o'},
        {"extract", required_argument, NULL, 'x'}, {"list", no_argument, NULL, 'l'},
        {"json", no_argument, NULL, 'J'},          {"force", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0}};
    const char *keyfiles[MAX_KEYS];
    size_t nkeyfiles = 0;
    const char *output = NULL, *extract = NULL;
    int list = 0, json = 0, force = 0, ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "k:o:x:lfh", lo, NULL)) != -1) {
        switch (ch) {
        case 'k':
            if (nkeyfiles == MAX_KEYS) {
                log_error("at most %d --key options", MAX_KEYS);
                return 2;
            }
            keyfiles[nkeyfiles++] = optarg;
            break;
        case 'o': output = optarg; break;
        case 'x': extract = optarg; break;
        case 'l': list = 1; break;
        case 'J': json = 1; break;
        case 'f': force = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (nkeyfiles == 0) {
        log_error("--key FILE is required (the secret key of one of the archive's recipients)");
        return 2;
    }
    if ((output != NULL) + (extract != NULL) + list > 1) {
        log_error("choose one of -o, --extract and --list");
        return 2;
    }
    if (argc - optind > 1) {
        log_error("one INPUT at most (see pgship decrypt --help)");
        return 2;
    }
    const char *input = optind < argc ? argv[optind] : "-";
    if (!extract && !list && output == NULL)
        output = "-";

    pgs_seckey keys[MAX_KEYS];
    pgs_error e = {0};
    int rc = 0, status = 1;
    size_t nkeys = 0;
    envelope_reader *env = NULL;
    fs_outfile out = {.fd = -1};
    int out_open = 0;
    extract_info x;
    memset(&x, 0, sizeof(x));
    fd_src src = {.fd = -1};

    for (; nkeys < nkeyfiles; nkeys++)
        if ((rc = key_load_secret(keyfiles[nkeys], &keys[nkeys], &e)) != 0)
            goto out;
    if (strcmp(input, "-") == 0) {
        if (isatty(STDIN_FILENO)) {
            rc = pgs_fail(&e, PGS_EINVAL, "no INPUT given and standard input is a terminal");
            goto out;
        }
        src.fd = STDIN_FILENO;
    } else if ((src.fd = open(input, O_RDONLY | O_CLOEXEC)) < 0) {
        rc = pgs_fail(&e, PGS_EIO, "%s: %s", input, strerror(errno));
        goto out;
    }
    if (sig_catch_start() != 0) {
        rc = pgs_fail(&e, PGS_EIO, "cannot set up signal handling");
        goto out;
    }
    if ((rc = envelope_reader_new(&env, fd_source, &src)) != 0) {
        pgs_fail(&e, rc, "out of memory");
        goto out;
    }
    if ((rc = envelope_reader_read_header(env, &e)) != 0 ||
        (rc = envelope_reader_unlock(env, keys, nkeys, &e)) != 0)
        goto out;

    if (output != NULL) {
        if ((rc = fs_outfile_open(&out, output, force, &e)) != 0)
            goto out;
        out_open = 1;
        if (out.to_stdout && isatty(STDOUT_FILENO)) {
            rc = pgs_fail(&e, PGS_EINVAL,
                          "refusing to write a tar to a terminal; use -o FILE, --extract DIR or "
                          "--list");
            goto out;
        }
        if ((rc = bundle_decompress(env, fd_sink, &out.fd, &e)) != 0 ||
            (rc = fs_outfile_commit(&out, &e)) != 0)
            goto out;
        out_open = 0;
        status = 0;
        goto out;
    }
    /* With --extract, what was written is removed on any failure (a signal included). */
    if ((rc = extract_archive(env, extract, EXTRACT_DURABLE, &x, &e)) != 0)
        goto out;
    if (list) {
        print_list(&x, json);
    } else {
        char b[32];
        fprintf(stderr,
                "pgship: extracted %s (%s format, %s, every checksum verified) into %s\n"
                "pgship: restore with: pg_restore -d DBNAME %s/%s\n",
                x.man.database, x.man.format, fs_human_bytes(x.dump_bytes, b, sizeof(b)), extract,
                extract, extract_dump_name(&x));
    }
    status = 0;
out:
    if (rc != 0 && sig_stop_requested())
        rc = pgs_fail(&e, PGS_EINTR, "interrupted by signal %d", sig_stop_requested());
    if (rc != 0) {
        log_error("%s", e.msg);
        if (sig_stop_requested())
            status = 128 + sig_stop_requested();
    }
    if (out_open)
        fs_outfile_abort(&out);
    extract_info_clear(&x);
    envelope_reader_free(env);
    if (src.fd > STDIN_FILENO)
        close(src.fd);
    for (size_t i = 0; i < nkeys; i++)
        key_secret_wipe(&keys[i]);
    return status;
}
