/*
 * Tests of the local directory storage backend (coordinator/storage_fs.c) through the storage
 * API, in a fresh directory per test: streamed uploads that appear only at commit with the right
 * SHA-256 and size, aborts and failures that leave no file behind, put/get/list/delete, the
 * prefix, listing that skips what pgship did not write, and the key checks every backend shares.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/fsutil.h"
#include "common/sha256.h"
#include "coordinator/storage.h"
#include "tests/unit/testutil.h"

static int setup_dir(void **state)
{
    return tu_tmpdir_setup(state);
}

static int teardown_dir(void **state)
{
    return tu_tmpdir_teardown(state);
}

static storage *open_fs(void **state, const char *prefix)
{
    storage_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.type = "fs";
    cfg.path = (const char *)*state;
    cfg.prefix = prefix;
    storage *s = NULL;
    pgs_error e = {0};
    if (storage_open(&s, &cfg, &e) != 0)
        fail_msg("storage_open: %s", e.msg);
    return s;
}

/* Regular files under dir, recursively; names starting with "." counted in *hidden. */
static int count_files(const char *dir, int *hidden)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        char path[2048];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        struct stat st;
        if (lstat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode)) {
            n += count_files(path, hidden);
        } else {
            n++;
            if (hidden != NULL && de->d_name[0] == '.')
                (*hidden)++;
        }
    }
    closedir(d);
    return n;
}

static void fill(uint8_t *buf, size_t len, uint32_t seed)
{
    for (size_t i = 0; i < len; i++) {
        seed = seed * 1103515245u + 12345u;
        buf[i] = (uint8_t)(seed >> 16);
    }
}

static void digest(const void *buf, size_t len, uint8_t out[32])
{
    sha256_ctx *c = sha256_new();
    assert_non_null(c);
    sha256_update(c, buf, len);
    sha256_final(c, out);
    sha256_free(c);
}

static int sink_buf(void *arg, const void *buf, size_t len)
{
    return tu_buf_append(arg, buf, len);
}

typedef struct listed {
    int n;
    char keys[16][128];
    uint64_t sizes[16];
    int stop_after;
} listed;

static int list_collect(void *arg, const char *key, uint64_t size)
{
    listed *l = arg;
    if (l->stop_after > 0 && l->n >= l->stop_after)
        return PGS_EINTR;
    assert_true(l->n < 16);
    snprintf(l->keys[l->n], sizeof(l->keys[0]), "%s", key);
    l->sizes[l->n] = size;
    l->n++;
    return 0;
}

static int listed_has(const listed *l, const char *key, uint64_t size)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->keys[i], key) == 0 && l->sizes[i] == size)
            return 1;
    return 0;
}

/* ---- uploads ---- */

static void test_storage_fs_upload_visible_only_at_commit(void **state)
{
    storage *s = open_fs(state, NULL);
    const char *key = "prod/agent1/db1/0001.pgship";
    size_t len = 3 * 1048576 + 17;
    uint8_t *data = malloc(len);
    assert_non_null(data);
    fill(data, len, 7);
    pgs_error e = {0};
    storage_upload *u = NULL;
    assert_int_equal(storage_upload_begin(s, key, &u, &e), 0);

    /* Many uneven writes, as frames arrive from an agent. */
    size_t off = 0, step = 1;
    while (off < len) {
        size_t n = step < len - off ? step : len - off;
        assert_int_equal(storage_upload_write(u, data + off, n, &e), 0);
        off += n;
        step = (step * 7 + 13) % 70001;
        if (off < 1048576) {
            /* Absent before commit: not readable, not listed; only a hidden temporary. */
            tu_buf got = {0};
            TU_ASSERT_ERR(storage_get(s, key, sink_buf, &got, &e), e, PGS_ENOTFOUND, "no object");
            listed l = {0};
            assert_int_equal(storage_list(s, "", list_collect, &l, &e), 0);
            assert_int_equal(l.n, 0);
            int hidden = 0;
            assert_int_equal(count_files((const char *)*state, &hidden), 1);
            assert_int_equal(hidden, 1);
        }
    }
    uint8_t sha[32], want[32];
    uint64_t size = 0;
    assert_int_equal(storage_upload_commit(u, sha, &size, &e), 0);
    digest(data, len, want);
    assert_memory_equal(sha, want, 32);
    assert_int_equal(size, len);

    tu_buf got = {0};
    assert_int_equal(storage_get(s, key, sink_buf, &got, &e), 0);
    assert_int_equal(got.len, len);
    assert_memory_equal(got.data, data, len);
    tu_buf_free(&got);
    listed l = {0};
    assert_int_equal(storage_list(s, "", list_collect, &l, &e), 0);
    assert_int_equal(l.n, 1);
    assert_true(listed_has(&l, key, len));
    int hidden = 0;
    assert_int_equal(count_files((const char *)*state, &hidden), 1);
    assert_int_equal(hidden, 0);
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", (const char *)*state, key);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, len);
    free(data);
    storage_close(s);
}

static void test_storage_fs_empty_object(void **state)
{
    storage *s = open_fs(state, NULL);
    pgs_error e = {0};
    storage_upload *u = NULL;
    assert_int_equal(storage_upload_begin(s, "e/empty.pgship", &u, &e), 0);
    uint8_t sha[32], want[32];
    uint64_t size = 99;
    assert_int_equal(storage_upload_commit(u, sha, &size, &e), 0);
    digest("", 0, want);
    assert_memory_equal(sha, want, 32);
    assert_int_equal(size, 0);
    listed l = {0};
    assert_int_equal(storage_list(s, "e/", list_collect, &l, &e), 0);
    assert_true(listed_has(&l, "e/empty.pgship", 0));
    storage_close(s);
}

static void test_storage_fs_abort_leaves_nothing(void **state)
{
    storage *s = open_fs(state, NULL);
    pgs_error e = {0};
    storage_upload *u = NULL;
    uint8_t buf[4096];
    fill(buf, sizeof(buf), 3);
    assert_int_equal(storage_upload_begin(s, "prod/a/db/0002.pgship", &u, &e), 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(storage_upload_write(u, buf, sizeof(buf), &e), 0);
    assert_int_equal(count_files((const char *)*state, NULL), 1);
    storage_upload_abort(u);
    assert_int_equal(count_files((const char *)*state, NULL), 0);
    tu_buf got = {0};
    TU_ASSERT_ERR(storage_get(s, "prod/a/db/0002.pgship", sink_buf, &got, &e), e, PGS_ENOTFOUND,
                  NULL);
    storage_upload_abort(NULL);
    storage_close(s);
}

/* What a crash leaves (an upload never committed nor aborted) is removed by
 * storage_forget_uploads, and only for that key. */
static void test_storage_fs_forget_uploads(void **state)
{
    storage *s = open_fs(state, "pfx");
    pgs_error e = {0};
    storage_upload *crashed = NULL, *other = NULL;
    uint8_t buf[4096];
    fill(buf, sizeof(buf), 5);
    assert_int_equal(storage_upload_begin(s, "prod/a/db/0003.pgship", &crashed, &e), 0);
    assert_int_equal(storage_upload_write(crashed, buf, sizeof(buf), &e), 0);
    assert_int_equal(storage_upload_begin(s, "prod/a/db/0004.pgship", &other, &e), 0);
    assert_int_equal(storage_put(s, "prod/a/db/0005.pgship", buf, 10, &e), 0);
    assert_int_equal(count_files((const char *)*state, NULL), 3);
    assert_int_equal(storage_forget_uploads(s, "prod/a/db/0003.pgship", &e), 0);
    assert_int_equal(count_files((const char *)*state, NULL), 2);
    /* nothing to forget: a key never written, a directory that does not exist */
    assert_int_equal(storage_forget_uploads(s, "prod/a/db/0009.pgship", &e), 0);
    assert_int_equal(storage_forget_uploads(s, "dev/x/y/0001.pgship", &e), 0);
    TU_ASSERT_ERR(storage_forget_uploads(s, "../escape", &e), e, PGS_EINVAL, NULL);
    assert_int_equal(count_files((const char *)*state, NULL), 2);
    storage_upload_abort(crashed); /* its file is already gone: no error, nothing else removed */
    assert_int_equal(count_files((const char *)*state, NULL), 2);
    storage_upload_abort(other);
    assert_int_equal(count_files((const char *)*state, NULL), 1);
    storage_close(s);
}

static void test_storage_fs_failed_write_leaves_nothing(void **state)
{
    /* A file size limit makes the write fail as a full disk would. */
    storage *s = open_fs(state, NULL);
    pgs_error e = {0};
    storage_upload *u = NULL;
    uint8_t buf[65536];
    fill(buf, sizeof(buf), 5);
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 100000;
    void (*oldsig)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    assert_int_equal(storage_upload_begin(s, "prod/a/db/0003.pgship", &u, &e), 0);
    assert_int_equal(storage_upload_write(u, buf, sizeof(buf), &e), 0);
    TU_ASSERT_ERR(storage_upload_write(u, buf, sizeof(buf), &e), e, PGS_EIO, "0003.pgship");
    /* A failed upload takes no more data, and commit refuses and cleans up. */
    TU_ASSERT_ERR(storage_upload_write(u, buf, 1, &e), e, PGS_EINVAL, "failed earlier");
    TU_ASSERT_ERR(storage_upload_commit(u, NULL, NULL, &e), e, PGS_EINVAL, "nothing was stored");
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, oldsig);
    assert_int_equal(count_files((const char *)*state, NULL), 0);
    storage_close(s);
}

static void test_storage_fs_commit_replaces(void **state)
{
    storage *s = open_fs(state, NULL);
    pgs_error e = {0};
    assert_int_equal(storage_put(s, "k/obj", "old contents", 12, &e), 0);
    storage_upload *u = NULL;
    assert_int_equal(storage_upload_begin(s, "k/obj", &u, &e), 0);
    assert_int_equal(storage_upload_write(u, "new", 3, &e), 0);
    /* The old object stays readable until the new one is committed. */
    tu_buf got = {0};
    assert_int_equal(storage_get(s, "k/obj", sink_buf, &got, &e), 0);
    assert_int_equal(got.len, 12);
    tu_buf_free(&got);
    assert_int_equal(storage_upload_commit(u, NULL, NULL, &e), 0);
    assert_int_equal(storage_get(s, "k/obj", sink_buf, &got, &e), 0);
    assert_int_equal(got.len, 3);
    assert_memory_equal(got.data, "new", 3);
    tu_buf_free(&got);
    storage_close(s);
}

/* ---- put, get, list, delete ---- */

static void test_storage_fs_put_get_list_delete(void **state)
{
    storage *s = open_fs(state, NULL);
    pgs_error e = {0};
    assert_int_equal(storage_put(s, "prod/a1/db1/1.pgship", "one", 3, &e), 0);
    assert_int_equal(storage_put(s, "prod/a1/db1/1.manifest.json", "{}", 2, &e), 0);
    assert_int_equal(storage_put(s, "prod/a2/db9/2.pgship", "twotwo", 6, &e), 0);
    assert_int_equal(storage_put(s, "staging/a1/db1/3.pgship", "3", 1, &e), 0);
    assert_int_equal(storage_put(s, "top", "t", 1, &e), 0);

    listed l = {0};
    assert_int_equal(storage_list(s, "", list_collect, &l, &e), 0);
    assert_int_equal(l.n, 5);
    assert_true(listed_has(&l, "prod/a1/db1/1.pgship", 3));
    assert_true(listed_has(&l, "prod/a1/db1/1.manifest.json", 2));
    assert_true(listed_has(&l, "prod/a2/db9/2.pgship", 6));
    assert_true(listed_has(&l, "staging/a1/db1/3.pgship", 1));
    assert_true(listed_has(&l, "top", 1));

    memset(&l, 0, sizeof(l));
    assert_int_equal(storage_list(s, "prod/", list_collect, &l, &e), 0);
    assert_int_equal(l.n, 3);
    memset(&l, 0, sizeof(l));
    assert_int_equal(storage_list(s, "prod/a1/db1/1.", list_collect, &l, &e), 0);
    assert_int_equal(l.n, 2);
    memset(&l, 0, sizeof(l));
    assert_int_equal(storage_list(s, "prod/a", list_collect, &l, &e), 0); /* a1 and a2 */
    assert_int_equal(l.n, 3);
    memset(&l, 0, sizeof(l));
    assert_int_equal(storage_list(s, "pro", list_collect, &l, &e), 0);
    assert_int_equal(l.n, 3);
    memset(&l, 0, sizeof(l));
    assert_int_equal(storage_list(s, "nothing/here/", list_collect, &l, &e), 0);
    assert_int_equal(l.n, 0);

    tu_buf got = {0};
    assert_int_equal(storage_get(s, "prod/a2/db9/2.pgship", sink_buf, &got, &e), 0);
    assert_int_equal(got.len, 6);
    assert_memory_equal(got.data, "twotwo", 6);
    tu_buf_free(&got);

    assert_int_equal(storage_delete(s, "prod/a2/db9/2.pgship", &e), 0);
    TU_ASSERT_ERR(storage_get(s, "prod/a2/db9/2.pgship", sink_buf, &got, &e), e, PGS_ENOTFOUND,
                  "no object prod/a2/db9/2.pgship");
    assert_int_equal(storage_delete(s, "prod/a2/db9/2.pgship", &e), 0); /* already gone: fine */
    assert_int_equal(storage_delete(s, "never/was/there", &e), 0);
    /* A directory is not an object. */
    TU_ASSERT_ERR(storage_delete(s, "prod/a1", &e), e, PGS_EINVAL, "not an object");
    TU_ASSERT_ERR(storage_get(s, "prod/a1", sink_buf, &got, &e), e, PGS_ENOTFOUND, NULL);
    memset(&l, 0, sizeof(l));
    assert_int_equal(storage_list(s, "prod/", list_collect, &l, &e), 0);
    assert_int_equal(l.n, 2);
    storage_close(s);
}

static void test_storage_fs_prefix(void **state)
{
    storage *s = open_fs(state, "pgship/backups");
    pgs_error e = {0};
    assert_int_equal(storage_put(s, "prod/a/d/1.pgship", "x", 1, &e), 0);
    char path[1024];
    snprintf(path, sizeof(path), "%s/pgship/backups/prod/a/d/1.pgship", (const char *)*state);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    /* Something beside the prefix is not listed. */
    snprintf(path, sizeof(path), "%s/pgshipX", (const char *)*state);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof(path), "%s/pgshipX/other", (const char *)*state);
    int fd = open(path, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    listed l = {0};
    assert_int_equal(storage_list(s, "", list_collect, &l, &e), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.keys[0], "prod/a/d/1.pgship");
    storage_close(s);

    storage_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.path = (const char *)*state;
    cfg.prefix = "../escape";
    storage *bad = NULL;
    TU_ASSERT_ERR(storage_open(&bad, &cfg, &e), e, PGS_EINVAL, "storage prefix");
    assert_null(bad);
}

static void test_storage_fs_list_skips_what_pgship_did_not_write(void **state)
{
    storage *s = open_fs(state, NULL);
    pgs_error e = {0};
    assert_int_equal(storage_put(s, "prod/a/d/1.pgship", "x", 1, &e), 0);
    const char *root = (const char *)*state;
    char path[1024], target[1024];
    /* A name no key can have, a leftover temporary, and links to a file and to a directory. */
    snprintf(path, sizeof(path), "%s/prod/a/d/with space", root);
    int fd = open(path, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    snprintf(path, sizeof(path), "%s/prod/a/d/.1.pgship.tmp-abcdef", root);
    fd = open(path, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    close(fd);
    snprintf(target, sizeof(target), "%s/prod/a/d/1.pgship", root);
    snprintf(path, sizeof(path), "%s/prod/a/d/link.pgship", root);
    assert_int_equal(symlink(target, path), 0);
    snprintf(target, sizeof(target), "%s/prod", root);
    snprintf(path, sizeof(path), "%s/loop", root);
    assert_int_equal(symlink(target, path), 0);

    listed l = {0};
    assert_int_equal(storage_list(s, "", list_collect, &l, &e), 0);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.keys[0], "prod/a/d/1.pgship");
    /* Links are not followed by reads or removals either. */
    tu_buf got = {0};
    assert_int_not_equal(storage_get(s, "prod/a/d/link.pgship", sink_buf, &got, &e), 0);
    TU_ASSERT_ERR(storage_delete(s, "prod/a/d/link.pgship", &e), e, PGS_EINVAL, "not an object");
    storage_close(s);
}

static int sink_fail_after_one(void *arg, const void *buf, size_t len)
{
    (void)buf;
    (void)len;
    int *calls = arg;
    return ++*calls > 1 ? PGS_EIO : 0;
}

static void test_storage_fs_callbacks_stop(void **state)
{
    storage *s = open_fs(state, NULL);
    pgs_error e = {0};
    size_t len = 3 * 1048576;
    uint8_t *data = calloc(1, len);
    assert_non_null(data);
    assert_int_equal(storage_put(s, "big/one", data, len, &e), 0);
    assert_int_equal(storage_put(s, "big/two", "2", 1, &e), 0);
    free(data);
    int calls = 0;
    TU_ASSERT_ERR(storage_get(s, "big/one", sink_fail_after_one, &calls, &e), e, PGS_EIO,
                  "stopped by its receiver");
    assert_int_equal(calls, 2);
    listed l = {0};
    l.stop_after = 1;
    TU_ASSERT_ERR(storage_list(s, "", list_collect, &l, &e), e, PGS_EINTR,
                  "stopped by its receiver");
    assert_int_equal(l.n, 1);
    storage_close(s);
}

/* ---- keys ---- */

static void test_storage_fs_key_refusals(void **state)
{
    storage *s = open_fs(state, NULL);
    pgs_error e = {0};
    char long_key[STORAGE_KEY_MAX + 2];
    memset(long_key, 'k', sizeof(long_key) - 1);
    long_key[sizeof(long_key) - 1] = '\0';
    char long_seg[STORAGE_SEGMENT_MAX + 8];
    memset(long_seg, 's', sizeof(long_seg) - 1);
    long_seg[sizeof(long_seg) - 1] = '\0';
    char deep[256] = "";
    for (int i = 0; i <= STORAGE_DEPTH_MAX; i++)
        strcat(deep, i ? "/d" : "d");
    static const struct {
        const char *key;
        const char *why;
    } bad[] = {
        {"", "empty"},
        {"../etc/passwd", "\"..\""},
        {"prod/../../x", "\"..\""},
        {"a..b", "\"..\""},
        {"/etc/passwd", "starts with \"/\""},
        {"a//b", "empty segment"},
        {"a/b/", "ends with \"/\""},
        {".hidden", "starting with \".\""},
        {"prod/.1.pgship.tmp-abc", "starting with \".\""},
        {"with space", "printable ASCII at byte 4"},
        {"back\\slash", "printable ASCII"},
        {"ctl\x01", "printable ASCII"},
        {"tab\there", "printable ASCII"},
        {"caf\xc3\xa9", "printable ASCII"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&e, 0, sizeof(e));
        int rc = storage_put(s, bad[i].key, "x", 1, &e);
        if (rc != PGS_EINVAL || strstr(e.msg, bad[i].why) == NULL)
            fail_msg("key \"%s\": expected EINVAL with \"%s\", got %d \"%s\"", bad[i].key,
                     bad[i].why, rc, e.msg);
    }
    TU_ASSERT_ERR(storage_put(s, long_key, "x", 1, &e), e, PGS_EINVAL, "longer than 1024");
    TU_ASSERT_ERR(storage_put(s, long_seg, "x", 1, &e), e, PGS_EINVAL, "segment longer");
    TU_ASSERT_ERR(storage_put(s, deep, "x", 1, &e), e, PGS_EINVAL, "more than 16 segments");
    /* Every operation checks, not only put. */
    storage_upload *u = NULL;
    TU_ASSERT_ERR(storage_upload_begin(s, "../x", &u, &e), e, PGS_EINVAL, "\"..\"");
    assert_null(u);
    tu_buf got = {0};
    TU_ASSERT_ERR(storage_get(s, "../x", sink_buf, &got, &e), e, PGS_EINVAL, "\"..\"");
    TU_ASSERT_ERR(storage_delete(s, "/x", &e), e, PGS_EINVAL, "starts with");
    listed l = {0};
    TU_ASSERT_ERR(storage_list(s, "../", list_collect, &l, &e), e, PGS_EINVAL, "\"..\"");
    TU_ASSERT_ERR(storage_list(s, "a//", list_collect, &l, &e), e, PGS_EINVAL, "empty segment");
    /* Nothing was created by any of them. */
    assert_int_equal(count_files((const char *)*state, NULL), 0);

    /* The largest key that fits is accepted. */
    char ok_key[STORAGE_KEY_MAX + 1];
    size_t o = 0;
    while (o + 200 < STORAGE_KEY_MAX) {
        memset(ok_key + o, 'a', 199);
        ok_key[o + 199] = '/';
        o += 200;
    }
    memset(ok_key + o, 'b', STORAGE_KEY_MAX - o);
    ok_key[STORAGE_KEY_MAX] = '\0';
    assert_int_equal(storage_put(s, ok_key, "x", 1, &e), 0);
    assert_int_equal(storage_put(s, "p-1_x.y+z=w@v,u:t~s/0001.pgship", "x", 1, &e), 0);
    storage_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_storage_fs_upload_visible_only_at_commit, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_storage_fs_empty_object, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_storage_fs_abort_leaves_nothing, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_storage_fs_forget_uploads, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_storage_fs_failed_write_leaves_nothing, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_storage_fs_commit_replaces, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_storage_fs_put_get_list_delete, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(test_storage_fs_prefix, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_storage_fs_list_skips_what_pgship_did_not_write,
                                        setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_storage_fs_callbacks_stop, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_storage_fs_key_refusals, setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
