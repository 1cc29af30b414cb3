/* Unpacking a verified archive into a directory (see extract.h). */
#include "proto/extract.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "common/spawn.h"
#include "proto/bundle.h"

#define EXTRACT_BUF (1u << 20)

typedef struct extract_state {
    const char *dir;
    int dirfd;
    int created_dir;
    int dump_fd; /* dump.pgdump for the custom format */
    int made_dump_dir;
    int have_manifest, have_end;
    int durable;
    char *buf; /* EXTRACT_BUF bytes: one per run, so that two runs may share a process */
    extract_info *info;
    const extract_hooks *hooks; /* NULL: none */
} extract_state;

static int check_stop(pgs_error *e)
{
    if (sig_stop_requested())
        return pgs_fail(e, PGS_EINTR, "interrupted by signal %d", sig_stop_requested());
    return 0;
}

static int read_member_all(bundle_reader *br, const bundle_member *m, size_t max, char **out,
                           pgs_error *e)
{
    if (m->size > max)
        return pgs_fail(e, PGS_ELIMIT, "%s is larger than %zu bytes", m->name, max);
    char *buf = malloc((size_t)m->size + 1);
    if (buf == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    size_t got = 0;
    while (got < m->size) {
        ssize_t n = bundle_reader_read(br, buf + got, (size_t)m->size - got, e);
        if (n < 0) {
            free(buf);
            return (int)n;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    buf[got] = '\0';
    if (got != m->size) {
        free(buf);
        return pgs_fail(e, PGS_ETRUNC, "%s is shorter than its header says", m->name);
    }
    *out = buf;
    return 0;
}

static int create_file(extract_state *x, const char *rel, pgs_error *e)
{
    int fd = openat(x->dirfd, rel, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return pgs_fail(e, PGS_EIO, "%s/%s: %s", x->dir, rel, strerror(errno));
    return fd;
}

static int write_file(extract_state *x, const char *rel, const char *text, size_t len, pgs_error *e)
{
    int fd = create_file(x, rel, e);
    if (fd < 0)
        return fd;
    int rc = 0;
    if (fs_write_all(fd, text, len) != 0)
        rc = pgs_fail(e, PGS_EIO, "writing %s: %s", rel, strerror(errno));
    close(fd);
    return rc;
}

static int copy_member(extract_state *x, bundle_reader *br, int fd, const char *what, int tee,
                       pgs_error *e)
{
    for (;;) {
        ssize_t n = bundle_reader_read(br, x->buf, EXTRACT_BUF, e);
        if (n < 0)
            return (int)n;
        if (n == 0)
            return 0;
        if (fs_write_all(fd, x->buf, (size_t)n) != 0)
            return pgs_fail(e, PGS_EIO, "writing %s: %s", what, strerror(errno));
        if (tee && x->hooks != NULL && x->hooks->on_dump != NULL) {
            int rc = x->hooks->on_dump(x->hooks->arg, x->buf, (size_t)n, e);
            if (rc != 0)
                return rc;
        }
        int rc = check_stop(e);
        if (rc != 0)
            return rc;
    }
}

/* Reads every member; with x->dir set, writes them out. */
static int walk_archive(bundle_reader *br, extract_state *x, pgs_error *e)
{
    extract_info *in = x->info;
    bundle_member m;
    int rc;
    while ((rc = bundle_reader_next(br, &m, e)) == 1) {
        in->members++;
        char *text = NULL;
        switch (m.kind) {
        case BUNDLE_K_MANIFEST:
            if ((rc = read_member_all(br, &m, BUNDLE_MANIFEST_MAX, &text, e)) != 0)
                return rc;
            rc = manifest_decode(text, (size_t)m.size, &in->man, e);
            if (rc == 0) {
                x->have_manifest = 1;
                in->manifest_json = json_loadb(text, (size_t)m.size, 0, NULL);
            }
            if (rc == 0 && x->dir)
                rc = write_file(x, BUNDLE_MANIFEST, text, (size_t)m.size, e);
            free(text);
            if (rc == 0 && x->hooks != NULL && x->hooks->on_manifest != NULL)
                if ((rc = x->hooks->on_manifest(x->hooks->arg, in, e)) != 0)
                    return rc;
            if (rc != 0)
                return rc == PGS_EFORMAT ? pgs_wrap(e, "manifest.json") : rc;
            break;
        case BUNDLE_K_END:
            if ((rc = read_member_all(br, &m, BUNDLE_END_MAX, &text, e)) != 0)
                return rc;
            rc = manifest_end_decode(text, (size_t)m.size, &in->end, e);
            if (rc == 0 && x->dir)
                rc = write_file(x, BUNDLE_END, text, (size_t)m.size, e);
            free(text);
            if (rc != 0)
                return rc;
            x->have_end = 1;
            break;
        case BUNDLE_K_GLOBALS:
            in->dump_bytes += m.size;
            if (x->dir) {
                int fd = create_file(x, BUNDLE_GLOBALS, e);
                if (fd < 0)
                    return fd;
                rc = copy_member(x, br, fd, BUNDLE_GLOBALS, 0, e);
                close(fd);
                if (rc != 0)
                    return rc;
            }
            break;
        case BUNDLE_K_PART:
            if (strcmp(in->man.format, "custom") != 0)
                return pgs_fail(e, PGS_EFORMAT, "member %s in a %s-format archive", m.name,
                                in->man.format);
            in->parts++;
            in->dump_bytes += m.size;
            if (x->dir) {
                if (x->dump_fd < 0 && (x->dump_fd = create_file(x, EXTRACT_CUSTOM_FILE, e)) < 0)
                    return x->dump_fd;
                if ((rc = copy_member(x, br, x->dump_fd, EXTRACT_CUSTOM_FILE, 1, e)) != 0)
                    return rc;
            }
            break;
        case BUNDLE_K_DUMPFILE:
            if (strcmp(in->man.format, "directory") != 0)
                return pgs_fail(e, PGS_EFORMAT, "member %s in a %s-format archive", m.name,
                                in->man.format);
            in->files++;
            in->dump_bytes += m.size;
            if (x->dir) {
                if (!x->made_dump_dir) {
                    if (mkdirat(x->dirfd, EXTRACT_DIRECTORY, 0700) != 0)
                        return pgs_fail(e, PGS_EIO, "%s/%s: %s", x->dir, EXTRACT_DIRECTORY,
                                        strerror(errno));
                    x->made_dump_dir = 1;
                }
                int fd = create_file(x, m.name, e);
                if (fd < 0)
                    return fd;
                rc = copy_member(x, br, fd, m.name, 0, e);
                if (rc == 0 && x->durable && fsync(fd) != 0)
                    rc = pgs_fail(e, PGS_EIO, "writing %s: %s", m.name, strerror(errno));
                close(fd);
                if (rc != 0)
                    return rc;
            }
            break;
        default:
            return pgs_fail(e, PGS_EFORMAT, "unexpected member %s", m.name);
        }
    }
    if (rc < 0)
        return rc;
    if (!x->have_manifest || !x->have_end)
        return pgs_fail(e, PGS_EFORMAT, "the archive lacks manifest.json or end.json");
    if (in->end.dump_members != in->parts + in->files)
        return pgs_fail(e, PGS_EFORMAT, "end.json counts %llu dump members, the archive has %llu",
                        (unsigned long long)in->end.dump_members,
                        (unsigned long long)(in->parts + in->files));
    if (x->durable && x->dump_fd >= 0 && fsync(x->dump_fd) != 0)
        return pgs_fail(e, PGS_EIO, "writing %s: %s", EXTRACT_CUSTOM_FILE, strerror(errno));
    if (x->durable && x->dir && fsync(x->dirfd) != 0)
        return pgs_fail(e, PGS_EIO, "%s: %s", x->dir, strerror(errno));
    return 0;
}

static int prepare_dir(extract_state *x, pgs_error *e)
{
    if (mkdir(x->dir, 0700) == 0) {
        x->created_dir = 1;
    } else if (errno == EEXIST) {
        DIR *d = opendir(x->dir);
        if (d == NULL)
            return pgs_fail(e, PGS_EIO, "%s: %s", x->dir, strerror(errno));
        struct dirent *de;
        int empty = 1;
        while ((de = readdir(d)) != NULL)
            if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                empty = 0;
        closedir(d);
        if (!empty)
            return pgs_fail(e, PGS_EEXIST, "%s exists and is not empty", x->dir);
    } else {
        return pgs_fail(e, PGS_EIO, "%s: %s", x->dir, strerror(errno));
    }
    x->dirfd = open(x->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (x->dirfd < 0)
        return pgs_fail(e, PGS_EIO, "%s: %s", x->dir, strerror(errno));
    return 0;
}

/* Removes what extraction made: the whole directory if we created it, else our entries. */
static void undo_extract(extract_state *x)
{
    if (x->created_dir) {
        fs_rm_rf(x->dir);
        return;
    }
    static const char *ours[] = {BUNDLE_MANIFEST, BUNDLE_END, BUNDLE_GLOBALS, EXTRACT_CUSTOM_FILE};
    for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++)
        unlinkat(x->dirfd, ours[i], 0);
    if (x->made_dump_dir) {
        char p[4200];
        snprintf(p, sizeof(p), "%s/%s", x->dir, EXTRACT_DIRECTORY);
        fs_rm_rf(p);
    }
}

int extract_archive(envelope_reader *env, const char *dir, int flags, extract_info *info,
                    pgs_error *e)
{
    return extract_archive_hooks(env, dir, flags, NULL, info, e);
}

int extract_archive_hooks(envelope_reader *env, const char *dir, int flags,
                          const extract_hooks *hooks, extract_info *info, pgs_error *e)
{
    memset(info, 0, sizeof(*info));
    extract_state x = {.dir = dir,
                       .dirfd = -1,
                       .dump_fd = -1,
                       .info = info,
                       .hooks = hooks,
                       .durable = (flags & EXTRACT_DURABLE) != 0};
    bundle_reader *br = NULL;
    int rc = 0;
    if ((x.buf = malloc(EXTRACT_BUF)) == NULL) {
        rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
        goto out;
    }
    if (dir != NULL && (rc = prepare_dir(&x, e)) != 0)
        goto out;
    if ((rc = bundle_reader_new(&br, env, e)) != 0 || (rc = walk_archive(br, &x, e)) != 0)
        goto out;
out:
    /* A stop we were asked for explains whatever failed after it (a short read, EINTR). */
    if (rc != 0 && sig_stop_requested())
        rc = pgs_fail(e, PGS_EINTR, "interrupted by signal %d", sig_stop_requested());
    if (x.dump_fd >= 0)
        close(x.dump_fd);
    if (rc != 0 && x.dirfd >= 0)
        undo_extract(&x);
    if (x.dirfd >= 0)
        close(x.dirfd);
    bundle_reader_free(br);
    free(x.buf);
    return rc;
}

const char *extract_dump_name(const extract_info *info)
{
    return strcmp(info->man.format, "custom") == 0 ? EXTRACT_CUSTOM_FILE : EXTRACT_DIRECTORY;
}

void extract_info_clear(extract_info *info)
{
    manifest_clear(&info->man);
    json_decref(info->manifest_json);
    memset(info, 0, sizeof(*info));
}
