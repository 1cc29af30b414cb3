/* File-system helpers (see fsutil.h). */
#include "common/fsutil.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fs_write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

ssize_t fs_read_full(int fd, void *buf, size_t len)
{
    uint8_t *p = buf;
    size_t got = 0;
    while (got < len) {
        ssize_t n = read(fd, p + got, len - got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    return (ssize_t)got;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    int rc = (flag == FTW_DP) ? rmdir(path) : unlink(path);
    return (rc != 0 && errno != ENOENT) ? -1 : 0;
}

int fs_rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    return nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

int fs_fsync_parent(const char *path)
{
    char copy[4096];
    snprintf(copy, sizeof(copy), "%s", path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int fs_outfile_open(fs_outfile *o, const char *path, int force, pgs_error *e)
{
    memset(o, 0, sizeof(*o));
    o->fd = -1;
    o->force = force;
    if (strcmp(path, "-") == 0) {
        o->to_stdout = 1;
        o->fd = STDOUT_FILENO;
        return 0;
    }
    if (strlen(path) + 32 >= sizeof(o->path))
        return pgs_fail(e, PGS_ELIMIT, "output path is too long");
    struct stat st;
    if (!force && lstat(path, &st) == 0)
        return pgs_fail(e, PGS_EEXIST, "%s exists; use --force to overwrite it", path);
    snprintf(o->path, sizeof(o->path), "%s", path);
    char dir[4096], base[4096];
    snprintf(dir, sizeof(dir), "%s", path);
    snprintf(base, sizeof(base), "%s", path);
    snprintf(o->tmp, sizeof(o->tmp), "%s/.%s.tmp-XXXXXX", dirname(dir), basename(base));
    o->fd = mkostemp(o->tmp, O_CLOEXEC);
    if (o->fd < 0) {
        int err = errno;
        o->tmp[0] = '\0';
        return pgs_fail(e, PGS_EIO, "cannot create a file beside %s: %s", path, strerror(err));
    }
    fchmod(o->fd, 0600);
    return 0;
}

int fs_outfile_commit(fs_outfile *o, pgs_error *e)
{
    if (o->to_stdout)
        return 0;
    if (fsync(o->fd) != 0) {
        int err = errno;
        fs_outfile_abort(o);
        return pgs_fail(e, PGS_EIO, "%s: fsync: %s", o->path, strerror(err));
    }
    close(o->fd);
    o->fd = -1;
    int rc = o->force ? rename(o->tmp, o->path)
                      : renameat2(AT_FDCWD, o->tmp, AT_FDCWD, o->path, RENAME_NOREPLACE);
    if (rc != 0) {
        int err = errno;
        fs_outfile_abort(o);
        if (err == EEXIST)
            return pgs_fail(e, PGS_EEXIST, "%s appeared while writing; use --force to overwrite it",
                            o->path);
        return pgs_fail(e, PGS_EIO, "%s: rename: %s", o->path, strerror(err));
    }
    o->tmp[0] = '\0';
    fs_fsync_parent(o->path);
    return 0;
}

void fs_outfile_abort(fs_outfile *o)
{
    if (o->to_stdout)
        return;
    if (o->fd >= 0) {
        close(o->fd);
        o->fd = -1;
    }
    if (o->tmp[0] != '\0') {
        unlink(o->tmp);
        o->tmp[0] = '\0';
    }
}

const char *fs_human_bytes(uint64_t n, char *out, size_t outlen)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)n;
    int u = 0;
    while (v >= 1024.0 && u < 5) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(out, outlen, "%llu B", (unsigned long long)n);
    else
        snprintf(out, outlen, "%.1f %s", v, units[u]);
    return out;
}

int fs_tmpfd(void)
{
    const char *dir = getenv("TMPDIR");
    if (dir == NULL || dir[0] == '\0')
        dir = "/tmp";
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0)
        return fd;
    char path[4096];
    snprintf(path, sizeof(path), "%s/pgship-tmp-XXXXXX", dir);
    fd = mkostemp(path, O_CLOEXEC);
    if (fd >= 0)
        unlink(path);
    return fd;
}
