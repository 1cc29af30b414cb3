/*
 * The local directory backend: an object is a file at <root>/<key>, directories made as needed.
 * An upload writes a temporary file beside its target, named ".<name>.tmp-<random>" (keys never
 * have a segment starting with ".", so no key can name one, and listings skip them), and commit
 * makes it visible with fsync, rename and an fsync of the directory: after a crash the object is
 * either absent or whole. Every path is opened relative to the root's descriptor; a key that
 * names a symbolic link is neither read nor removed, and listings do not descend into links.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "common/log.h"
#include "common/sha256.h"
#include "coordinator/storage_intern.h"

#define FS_READ_CHUNK (1u << 20)
#define FS_TMP_EXTRA 32 /* "/." + ".tmp-" + 12 random hex digits, with room to spare */

typedef struct fs_store {
    int rootfd;
    char root[4096];
} fs_store;

typedef struct fs_upload {
    fs_store *fs;
    int fd;
    sha256_ctx *sha;
    uint64_t size;
    char key[STORAGE_FULL_KEY_MAX];
    char tmp[STORAGE_FULL_KEY_MAX + FS_TMP_EXTRA];
} fs_upload;

/* Makes every directory of the relative path dir (len bytes) under dirfd. */
static int fs_mkdirs(int dirfd, const char *dir, size_t len, pgs_error *e)
{
    char path[STORAGE_FULL_KEY_MAX];
    if (len >= sizeof(path))
        return pgs_fail(e, PGS_ELIMIT, "path too long");
    memcpy(path, dir, len);
    path[len] = '\0';
    for (size_t i = 1; i <= len; i++) {
        if (i < len && path[i] != '/')
            continue;
        path[i] = '\0';
        if (mkdirat(dirfd, path, 0700) != 0 && errno != EEXIST) {
            int err = errno;
            return pgs_fail(e, PGS_EIO, "cannot create directory %s: %s", path, strerror(err));
        }
        if (i < len)
            path[i] = '/';
    }
    return 0;
}

static int fs_open(void **impl, const storage_config *cfg, pgs_error *e)
{
    fs_store *fs = NULL;
    int rc = 0;

    if (cfg->path == NULL || cfg->path[0] == '\0')
        return pgs_fail(e, PGS_EINVAL, "storage type fs needs a path");
    if (strlen(cfg->path) >= sizeof(fs->root))
        return pgs_fail(e, PGS_EINVAL, "storage path is too long");
    fs = calloc(1, sizeof(*fs));
    if (fs == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    fs->rootfd = -1;
    snprintf(fs->root, sizeof(fs->root), "%s", cfg->path);
    /* The zero-setup default: make the root when it is missing, readable by us only. */
    const char *rel = fs->root[0] == '/' ? fs->root + 1 : fs->root;
    int base = open(fs->root[0] == '/' ? "/" : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (base < 0) {
        rc = pgs_fail(e, PGS_EIO, "cannot open the directory above %s: %s", fs->root,
                      strerror(errno));
        goto out;
    }
    size_t rl = strlen(rel);
    while (rl > 0 && rel[rl - 1] == '/')
        rl--;
    if (rl > 0 && rl < STORAGE_FULL_KEY_MAX)
        rc = fs_mkdirs(base, rel, rl, e);
    close(base);
    if (rc != 0) {
        pgs_wrap(e, "storage path %s", fs->root);
        goto out;
    }
    fs->rootfd = open(fs->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fs->rootfd < 0) {
        rc =
            pgs_fail(e, PGS_EIO, "cannot open storage directory %s: %s", fs->root, strerror(errno));
        goto out;
    }
    *impl = fs;
    fs = NULL;
out:
    free(fs);
    return rc;
}

static void fs_close(void *impl)
{
    fs_store *fs = impl;
    if (fs == NULL)
        return;
    if (fs->rootfd >= 0)
        close(fs->rootfd);
    free(fs);
}

/* Length of the directory part of key ("a/b/c" -> 3), 0 when it has none. */
static size_t fs_dir_len(const char *key)
{
    const char *slash = strrchr(key, '/');
    return slash != NULL ? (size_t)(slash - key) : 0;
}

/* fsyncs the directory holding key, so that a rename or an unlink in it is durable. */
static int fs_sync_dir(fs_store *fs, const char *key)
{
    char dir[STORAGE_FULL_KEY_MAX];
    size_t dl = fs_dir_len(key);
    if (dl == 0)
        snprintf(dir, sizeof(dir), ".");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)dl, key);
    int fd = openat(fs->rootfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static void fs_upload_free(fs_upload *u)
{
    if (u == NULL)
        return;
    if (u->fd >= 0)
        close(u->fd);
    if (u->tmp[0] != '\0')
        unlinkat(u->fs->rootfd, u->tmp, 0);
    sha256_free(u->sha);
    free(u);
}

static int fs_upload_begin(void *impl, const char *key, void **out, pgs_error *e)
{
    fs_store *fs = impl;
    fs_upload *u = NULL;
    int rc = 0;

    u = calloc(1, sizeof(*u));
    if (u == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    u->fs = fs;
    u->fd = -1;
    snprintf(u->key, sizeof(u->key), "%s", key);
    if ((u->sha = sha256_new()) == NULL) {
        rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
        goto out;
    }
    size_t dl = fs_dir_len(key);
    if (dl > 0 && (rc = fs_mkdirs(fs->rootfd, key, dl, e)) != 0) {
        pgs_wrap(e, "storage %s", fs->root);
        goto out;
    }
    const char *base = dl > 0 ? key + dl + 1 : key;
    for (int attempt = 0; attempt < 8 && u->fd < 0; attempt++) {
        uint8_t rnd[6];
        char hex[13];
        if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
            rc = pgs_fail(e, PGS_EIO, "getrandom: %s", strerror(errno));
            goto out;
        }
        hex_encode(rnd, sizeof(rnd), hex);
        snprintf(u->tmp, sizeof(u->tmp), "%.*s%s.%s.tmp-%s", (int)dl, key, dl > 0 ? "/" : "", base,
                 hex);
        u->fd =
            openat(fs->rootfd, u->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (u->fd < 0 && errno != EEXIST) {
            int err = errno;
            u->tmp[0] = '\0';
            rc = pgs_fail(e, PGS_EIO, "cannot create a file in %s for %s: %s", fs->root, key,
                          strerror(err));
            goto out;
        }
    }
    if (u->fd < 0) {
        u->tmp[0] = '\0';
        rc = pgs_fail(e, PGS_EIO, "cannot find a free temporary name for %s", key);
        goto out;
    }
    *out = u;
    u = NULL;
out:
    fs_upload_free(u);
    return rc;
}

static int fs_upload_write(void *upload, const void *buf, size_t len, pgs_error *e)
{
    fs_upload *u = upload;
    if (fs_write_all(u->fd, buf, len) != 0)
        return pgs_fail(e, PGS_EIO, "writing %s in %s: %s", u->key, u->fs->root, strerror(errno));
    sha256_update(u->sha, buf, len);
    u->size += len;
    return 0;
}

static int fs_upload_commit(void *upload, uint8_t sha256[32], uint64_t *size, pgs_error *e)
{
    fs_upload *u = upload;
    int rc = 0;

    if (fsync(u->fd) != 0) {
        rc = pgs_fail(e, PGS_EIO, "fsync of %s in %s: %s", u->key, u->fs->root, strerror(errno));
        goto out;
    }
    if (close(u->fd) != 0) {
        u->fd = -1;
        rc = pgs_fail(e, PGS_EIO, "closing %s in %s: %s", u->key, u->fs->root, strerror(errno));
        goto out;
    }
    u->fd = -1;
    if (renameat(u->fs->rootfd, u->tmp, u->fs->rootfd, u->key) != 0) {
        rc = pgs_fail(e, PGS_EIO, "cannot move %s into place in %s: %s", u->key, u->fs->root,
                      strerror(errno));
        goto out;
    }
    u->tmp[0] = '\0';
    /* The object is in place; without this fsync a crash could still take the name away. */
    if (fs_sync_dir(u->fs, u->key) != 0) {
        rc = pgs_fail(e, PGS_EIO, "fsync of the directory of %s in %s: %s", u->key, u->fs->root,
                      strerror(errno));
        unlinkat(u->fs->rootfd, u->key, 0);
        goto out;
    }
    sha256_final(u->sha, sha256);
    *size = u->size;
out:
    fs_upload_free(u);
    return rc;
}

static void fs_upload_abort(void *upload)
{
    fs_upload_free(upload);
}

static int fs_get(void *impl, const char *key, storage_sink_fn sink, void *arg, pgs_error *e)
{
    fs_store *fs = impl;
    uint8_t *buf = NULL;
    int fd = -1, rc = 0;
    struct stat st;

    fd = openat(fs->rootfd, key, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        int err = errno;
        if (err == ENOENT || err == ENOTDIR)
            return pgs_fail(e, PGS_ENOTFOUND, "no object %s in %s", key, fs->root);
        return pgs_fail(e, PGS_EIO, "cannot open %s in %s: %s", key, fs->root, strerror(err));
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = pgs_fail(e, PGS_ENOTFOUND, "no object %s in %s (not a regular file)", key, fs->root);
        goto out;
    }
    buf = malloc(FS_READ_CHUNK);
    if (buf == NULL) {
        rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
        goto out;
    }
    for (;;) {
        ssize_t n = fs_read_full(fd, buf, FS_READ_CHUNK);
        if (n < 0) {
            rc = pgs_fail(e, PGS_EIO, "reading %s in %s: %s", key, fs->root, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        int src = sink(arg, buf, (size_t)n);
        if (src != 0) {
            rc = storage_stopped(e, src, "reading", key);
            goto out;
        }
    }
out:
    free(buf);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* Whether the directory path (with a "/" to follow) can hold keys starting with prefix. */
static int fs_dir_may_match(const char *path, size_t plen, const char *prefix, size_t pfxlen)
{
    size_t n = plen < pfxlen ? plen : pfxlen;
    if (memcmp(path, prefix, n) != 0)
        return 0;
    return plen >= pfxlen || prefix[plen] == '/';
}

typedef struct fs_walk {
    fs_store *fs;
    const char *prefix;
    size_t pfxlen;
    storage_list_fn cb;
    void *arg;
    char path[STORAGE_FULL_KEY_MAX];
} fs_walk;

/* Lists the directory w->path (plen bytes, "" for the root; depth segments) and below it. */
static int fs_walk_dir(fs_walk *w, size_t plen, int depth, pgs_error *e)
{
    int fd = openat(w->fs->rootfd, plen > 0 ? w->path : ".",
                    O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        int err = errno;
        if (err == ENOENT || err == ENOTDIR || err == ELOOP)
            return 0; /* nothing under this prefix */
        return pgs_fail(e, PGS_EIO, "cannot list %s in %s: %s", plen > 0 ? w->path : ".",
                        w->fs->root, strerror(err));
    }
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return pgs_fail(e, PGS_EIO, "cannot list %s in %s: %s", w->path, w->fs->root,
                        strerror(errno));
    }
    int rc = 0;
    struct dirent *de;
    for (;;) {
        errno = 0;
        if ((de = readdir(d)) == NULL) {
            if (errno != 0)
                rc = pgs_fail(e, PGS_EIO, "cannot list %s in %s: %s", w->path, w->fs->root,
                              strerror(errno));
            break;
        }
        /* ".", "..", temporary files, and anything else no key can name. */
        if (de->d_name[0] == '.')
            continue;
        size_t nl = strlen(de->d_name);
        size_t sep = plen > 0 ? 1 : 0;
        if (plen + sep + nl >= sizeof(w->path))
            continue;
        if (sep)
            w->path[plen] = '/';
        memcpy(w->path + plen + sep, de->d_name, nl + 1);
        size_t child = plen + sep + nl;
        struct stat st;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            w->path[plen] = '\0';
            continue; /* removed while we list */
        }
        if (S_ISDIR(st.st_mode)) {
            /* Files in this child have depth + 2 segments: no deeper than a key can be. */
            if (depth + 2 <= STORAGE_DEPTH_MAX &&
                fs_dir_may_match(w->path, child, w->prefix, w->pfxlen))
                rc = fs_walk_dir(w, child, depth + 1, e);
        } else if (S_ISREG(st.st_mode) && strncmp(w->path, w->prefix, w->pfxlen) == 0) {
            int crc = w->cb(w->arg, w->path, (uint64_t)st.st_size);
            if (crc != 0)
                rc = storage_stopped(e, crc, "listing", w->prefix);
        }
        w->path[plen] = '\0';
        if (rc != 0)
            break;
    }
    closedir(d);
    return rc;
}

static int fs_list(void *impl, const char *prefix, storage_list_fn cb, void *arg, pgs_error *e)
{
    fs_walk w;
    memset(&w, 0, sizeof(w));
    w.fs = impl;
    w.prefix = prefix;
    w.pfxlen = strlen(prefix);
    w.cb = cb;
    w.arg = arg;
    /* Start in the deepest directory the prefix names completely. */
    size_t dl = fs_dir_len(prefix);
    memcpy(w.path, prefix, dl);
    w.path[dl] = '\0';
    int depth = dl > 0 ? 1 : 0;
    for (size_t i = 0; i < dl; i++)
        depth += prefix[i] == '/';
    return fs_walk_dir(&w, dl, depth, e);
}

static int fs_del(void *impl, const char *key, pgs_error *e)
{
    fs_store *fs = impl;
    struct stat st;
    if (fstatat(fs->rootfd, key, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT || errno == ENOTDIR)
            return 0;
        return pgs_fail(e, PGS_EIO, "cannot remove %s in %s: %s", key, fs->root, strerror(errno));
    }
    if (!S_ISREG(st.st_mode))
        return pgs_fail(e, PGS_EINVAL, "%s in %s is not an object (not a regular file)", key,
                        fs->root);
    if (unlinkat(fs->rootfd, key, 0) != 0 && errno != ENOENT)
        return pgs_fail(e, PGS_EIO, "cannot remove %s in %s: %s", key, fs->root, strerror(errno));
    fs_sync_dir(fs, key);
    return 0;
}

/* Unlinks ".<base>.tmp-*" beside key: temporary files of uploads a crash interrupted. */
static int fs_forget(void *impl, const char *key, pgs_error *e)
{
    fs_store *fs = impl;
    const char *slash = strrchr(key, '/');
    const char *base = slash != NULL ? slash + 1 : key;
    char dir[STORAGE_FULL_KEY_MAX], prefix[STORAGE_SEGMENT_MAX + 8];
    snprintf(dir, sizeof(dir), "%.*s", slash != NULL ? (int)(slash - key) : 1,
             slash != NULL ? key : ".");
    snprintf(prefix, sizeof(prefix), ".%s.tmp-", base);
    int dfd = openat(fs->rootfd, dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    if (dfd < 0)
        return errno == ENOENT || errno == ENOTDIR
                   ? 0
                   : pgs_fail(e, PGS_EIO, "cannot open %s in %s: %s", dir, fs->root,
                              strerror(errno));
    DIR *d = fdopendir(dfd);
    if (d == NULL) {
        close(dfd);
        return pgs_fail(e, PGS_EIO, "cannot read %s in %s: %s", dir, fs->root, strerror(errno));
    }
    int rc = 0, removed = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, prefix, strlen(prefix)) != 0)
            continue;
        if (unlinkat(dirfd(d), de->d_name, 0) != 0 && errno != ENOENT)
            rc = pgs_fail(e, PGS_EIO, "cannot remove %s/%s in %s: %s", dir, de->d_name, fs->root,
                          strerror(errno));
        else
            removed++;
    }
    if (removed > 0)
        fsync(dirfd(d));
    closedir(d);
    return rc;
}

const storage_backend storage_backend_fs = {
    .name = "fs",
    .open = fs_open,
    .close = fs_close,
    .upload_begin = fs_upload_begin,
    .upload_write = fs_upload_write,
    .upload_commit = fs_upload_commit,
    .upload_abort = fs_upload_abort,
    .put = NULL,
    .get = fs_get,
    .list = fs_list,
    .del = fs_del,
    .forget = fs_forget,
};
