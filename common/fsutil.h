/*
 * Small file-system helpers shared by every binary: full reads and writes, recursive removal of
 * our own temporary trees, and output files that appear atomically (a temporary name in the
 * same directory, fsync, rename, fsync of the directory) so that an interrupted command never
 * leaves a file that looks complete.
 */
#ifndef PGSHIP_COMMON_FSUTIL_H
#define PGSHIP_COMMON_FSUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/error.h"

/* Writes all of buf, retrying on EINTR and short writes. 0 or -1 (errno set). */
int fs_write_all(int fd, const void *buf, size_t len);
/* Reads until len bytes or end of file; returns the count or -1 (errno set). */
ssize_t fs_read_full(int fd, void *buf, size_t len);
/* Removes a tree we created (no symlinks are followed). 0 or -1. */
int fs_rm_rf(const char *path);
/* fsyncs the directory holding path. */
int fs_fsync_parent(const char *path);

typedef struct fs_outfile {
    int fd;
    int to_stdout;
    int force;
    char path[4096];
    char tmp[4096];
} fs_outfile;

/* Opens an output: "-" is stdout; otherwise a temporary file beside path. Refuses when path
 * exists and force is 0. */
int fs_outfile_open(fs_outfile *o, const char *path, int force, pgs_error *e);
/* fsync, rename into place (without replacing unless force), fsync the directory. */
int fs_outfile_commit(fs_outfile *o, pgs_error *e);
/* Removes the temporary file; safe to call after commit or twice. */
void fs_outfile_abort(fs_outfile *o);

/* "1.5 GiB" style, into out (at least 16 bytes). */
const char *fs_human_bytes(uint64_t n, char *out, size_t outlen);



/* An unlinked temporary file in $TMPDIR (or /tmp), opened read-write; -1 on error. */
int fs_tmpfd(void);
#endif
