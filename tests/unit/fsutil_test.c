/*
 * Tests of the file-system helpers (common/fsutil.c) and of the hex and SHA-256 helpers
 * (common/sha256.c): output files that appear only when complete and never replace a file
 * without force, recursive removal that does not follow links, and the small formatters.
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
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/fsutil.h"
#include "common/sha256.h"
#include "tests/unit/testutil.h"


static void write_text(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(fs_write_all(fd, text, strlen(text)), 0);
    close(fd);
}

static void read_text(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    ssize_t n = fs_read_full(fd, buf, cap - 1);
    assert_true(n >= 0);
    buf[n] = '\0';
    close(fd);
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Number of entries in dir besides . and .. */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* ---- output files ---- */

static void test_fsutil_outfile_commit(void **state)
{
    char path[600], buf[64];
    tu_path_in(state, "out.tar", path, sizeof(path));
    fs_outfile o;
    pgs_error e = {0};
    assert_int_equal(fs_outfile_open(&o, path, 0, &e), 0);
    assert_false(o.to_stdout);
    assert_true(o.fd >= 0);
    /* Written under a temporary name beside the target, which does not exist yet. */
    assert_false(exists(path));
    assert_true(exists(o.tmp));
    assert_non_null(strstr(o.tmp, "/.out.tar.tmp-"));
    assert_int_equal(strncmp(o.tmp, (const char *)*state, strlen((const char *)*state)), 0);
    assert_int_equal(fs_write_all(o.fd, "complete", 8), 0);
    char tmp[sizeof(o.tmp)];
    memcpy(tmp, o.tmp, sizeof(tmp));
    assert_int_equal(fs_outfile_commit(&o, &e), 0);
    assert_false(exists(tmp));
    read_text(path, buf, sizeof(buf));
    assert_string_equal(buf, "complete");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    /* Abort after commit removes nothing. */
    fs_outfile_abort(&o);
    fs_outfile_abort(&o);
    assert_true(exists(path));
    assert_int_equal(count_entries((const char *)*state), 1);
}

static void test_fsutil_outfile_refuses_existing_without_force(void **state)
{
    char path[600], buf[64];
    tu_path_in(state, "out.tar", path, sizeof(path));
    write_text(path, "old");
    fs_outfile o;
    pgs_error e = {0};
    TU_ASSERT_ERR(fs_outfile_open(&o, path, 0, &e), e, PGS_EEXIST, "exists; use --force");
    assert_non_null(strstr(e.msg, path));
    read_text(path, buf, sizeof(buf));
    assert_string_equal(buf, "old");
    assert_int_equal(count_entries((const char *)*state), 1);
    fs_outfile_abort(&o); /* safe on a failed open */

    /* A dangling symlink counts as existing, and is not followed. */
    char link[600], target[600];
    tu_path_in(state, "link.tar", link, sizeof(link));
    tu_path_in(state, "target", target, sizeof(target));
    assert_int_equal(symlink(target, link), 0);
    TU_ASSERT_ERR(fs_outfile_open(&o, link, 0, &e), e, PGS_EEXIST, "exists");
    assert_false(exists(target));

    /* With force, the old file is replaced at commit, not before. */
    assert_int_equal(fs_outfile_open(&o, path, 1, &e), 0);
    assert_int_equal(fs_write_all(o.fd, "new", 3), 0);
    read_text(path, buf, sizeof(buf));
    assert_string_equal(buf, "old");
    assert_int_equal(fs_outfile_commit(&o, &e), 0);
    read_text(path, buf, sizeof(buf));
    assert_string_equal(buf, "new");
}

static void test_fsutil_outfile_refuses_file_appearing_while_writing(void **state)
{
    char path[600], buf[64];
    tu_path_in(state, "out.tar", path, sizeof(path));
    fs_outfile o;
    pgs_error e = {0};
    assert_int_equal(fs_outfile_open(&o, path, 0, &e), 0);
    assert_int_equal(fs_write_all(o.fd, "ours", 4), 0);
    write_text(path, "theirs");
    TU_ASSERT_ERR(fs_outfile_commit(&o, &e), e, PGS_EEXIST, "appeared while writing");
    read_text(path, buf, sizeof(buf));
    assert_string_equal(buf, "theirs");
    /* The temporary file is gone. */
    assert_int_equal(count_entries((const char *)*state), 1);
    fs_outfile_abort(&o);
}

static void test_fsutil_outfile_abort(void **state)
{
    char path[600];
    tu_path_in(state, "out.tar", path, sizeof(path));
    fs_outfile o;
    pgs_error e = {0};
    assert_int_equal(fs_outfile_open(&o, path, 0, &e), 0);
    assert_int_equal(fs_write_all(o.fd, "partial", 7), 0);
    fs_outfile_abort(&o);
    assert_int_equal(o.fd, -1);
    assert_false(exists(path));
    assert_int_equal(count_entries((const char *)*state), 0);
    fs_outfile_abort(&o);
}

static void test_fsutil_outfile_stdout_and_errors(void **state)
{
    fs_outfile o;
    pgs_error e = {0};
    assert_int_equal(fs_outfile_open(&o, "-", 0, &e), 0);
    assert_true(o.to_stdout);
    assert_int_equal(o.fd, STDOUT_FILENO);
    assert_int_equal(fs_outfile_commit(&o, &e), 0);
    fs_outfile_abort(&o);
    assert_true(fcntl(STDOUT_FILENO, F_GETFD) >= 0);

    char path[600];
    tu_path_in(state, "no/such/dir/out.tar", path, sizeof(path));
    TU_ASSERT_ERR(fs_outfile_open(&o, path, 0, &e), e, PGS_EIO, "cannot create a file beside");
    assert_non_null(strstr(e.msg, path));
    fs_outfile_abort(&o);

    char *longp = malloc(5000);
    memset(longp, 'a', 4999);
    longp[4999] = '\0';
    TU_ASSERT_ERR(fs_outfile_open(&o, longp, 0, &e), e, PGS_ELIMIT, "output path is too long");
    free(longp);
}

/* ---- removal ---- */

static void test_fsutil_rm_rf_does_not_follow_links(void **state)
{
    char root[600], p[700], outside[600], outside_file[700];
    tu_path_in(state, "tree", root, sizeof(root));
    tu_path_in(state, "outside", outside, sizeof(outside));
    snprintf(outside_file, sizeof(outside_file), "%s/keep", outside);
    assert_int_equal(mkdir(outside, 0700), 0);
    write_text(outside_file, "keep me");

    assert_int_equal(mkdir(root, 0700), 0);
    snprintf(p, sizeof(p), "%s/a", root);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof(p), "%s/a/b", root);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof(p), "%s/a/b/file", root);
    write_text(p, "x");
    snprintf(p, sizeof(p), "%s/.hidden", root);
    write_text(p, "x");
    snprintf(p, sizeof(p), "%s/a/link-dir", root);
    assert_int_equal(symlink(outside, p), 0);
    snprintf(p, sizeof(p), "%s/a/link-file", root);
    assert_int_equal(symlink(outside_file, p), 0);
    snprintf(p, sizeof(p), "%s/a/b/empty", root);
    assert_int_equal(mkdir(p, 0500), 0);

    assert_int_equal(fs_rm_rf(root), 0);
    assert_false(exists(root));
    char buf[32];
    read_text(outside_file, buf, sizeof(buf));
    assert_string_equal(buf, "keep me");

    /* A missing path is already removed; a single file or link is removed. */
    assert_int_equal(fs_rm_rf(root), 0);
    assert_int_equal(fs_rm_rf(outside_file), 0);
    assert_false(exists(outside_file));
    snprintf(p, sizeof(p), "%s/lonely-link", (const char *)*state);
    assert_int_equal(symlink(outside, p), 0);
    assert_int_equal(fs_rm_rf(p), 0);
    assert_false(exists(p));
    assert_true(exists(outside));
}

/* ---- small helpers ---- */

static void test_fsutil_read_write_full_and_tmpfd(void **state)
{
    (void)state;
    int fd = fs_tmpfd();
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_nlink, 0); /* unlinked: nothing to clean up */
    size_t len = 300000;
    uint8_t *data = malloc(len), *back = malloc(len + 10);
    for (size_t i = 0; i < len; i++)
        data[i] = (uint8_t)(i * 31);
    assert_int_equal(fs_write_all(fd, data, len), 0);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    assert_int_equal(fs_read_full(fd, back, len + 10), (ssize_t)len);
    assert_memory_equal(back, data, len);
    assert_int_equal(fs_read_full(fd, back, 10), 0);
    close(fd);
    assert_int_equal(fs_write_all(-1, data, 1), -1);
    assert_int_equal(fs_read_full(-1, back, 1), -1);
    free(data);
    free(back);
}

static void test_fsutil_human_bytes(void **state)
{
    (void)state;
    struct {
        uint64_t n;
        const char *want;
    } cases[] = {
        {0, "0 B"},
        {1, "1 B"},
        {1023, "1023 B"},
        {1024, "1.0 KiB"},
        {1536, "1.5 KiB"},
        {1048575, "1024.0 KiB"},
        {1048576, "1.0 MiB"},
        {1610612736ull, "1.5 GiB"},
        {1ull << 40, "1.0 TiB"},
        {1ull << 50, "1.0 PiB"},
        {1ull << 60, "1024.0 PiB"},
        {UINT64_MAX, "16384.0 PiB"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[16];
        assert_ptr_equal(fs_human_bytes(cases[i].n, out, sizeof(out)), out);
        assert_string_equal(out, cases[i].want);
    }
}

static void test_fsutil_hex_encode_decode(void **state)
{
    (void)state;
    const uint8_t bin[] = {0x00, 0xff, 0x10, 0xab, 0x7f, 0x80};
    char hex[2 * sizeof(bin) + 1];
    hex_encode(bin, sizeof(bin), hex);
    assert_string_equal(hex, "00ff10ab7f80");
    uint8_t back[sizeof(bin)];
    assert_int_equal(hex_decode(hex, strlen(hex), back, sizeof(back)), 0);
    assert_memory_equal(back, bin, sizeof(bin));
    assert_int_equal(hex_decode("00FF10AB7F80", 12, back, sizeof(back)), 0);
    assert_memory_equal(back, bin, sizeof(bin));
    hex_encode(bin, 0, hex);
    assert_string_equal(hex, "");

    /* Wrong lengths and non-hex characters. */
    assert_int_equal(hex_decode("00ff10ab7f8", 11, back, sizeof(back)), -1);
    assert_int_equal(hex_decode("00ff10ab7f8000", 14, back, sizeof(back)), -1);
    assert_int_equal(hex_decode("00ff10ab7f8g", 12, back, sizeof(back)), -1);
    assert_int_equal(hex_decode("0xff10ab7f80", 12, back, sizeof(back)), -1);
    assert_int_equal(hex_decode(" 0ff10ab7f80", 12, back, sizeof(back)), -1);
    static const char with_nul[12] = {'0', '0', 'f', 'f', '1', '0', 'a', 'b', '7', 'f', '\0', '0'};
    assert_int_equal(hex_decode(with_nul, sizeof(with_nul), back, sizeof(back)), -1);
    assert_int_equal(hex_decode("", 0, back, 0), 0);
}

static void sha256_hex_of(sha256_ctx *c, const void *data, size_t len, char *hex)
{
    uint8_t d[SHA256_LEN];
    sha256_update(c, data, len);
    sha256_final(c, d);
    hex_encode(d, SHA256_LEN, hex);
}

static void test_fsutil_sha256_known_vectors(void **state)
{
    (void)state;
    sha256_ctx *c = sha256_new();
    assert_non_null(c);
    char hex[SHA256_HEX_LEN + 1];
    /* FIPS 180-2 examples. */
    sha256_hex_of(c, "", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    sha256_hex_of(c, "abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha256_hex_of(c, two, strlen(two), hex);
    assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");

    /* One million 'a', in uneven pieces; final leaves the context ready for the next digest. */
    char *a = malloc(1000000);
    memset(a, 'a', 1000000);
    for (size_t off = 0; off < 1000000;) {
        size_t n = 1000000 - off < 4099 ? 1000000 - off : 4099;
        sha256_update(c, a + off, n);
        off += n;
    }
    sha256_hex_of(c, NULL, 0, hex);
    assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(a);

    /* reset drops what was fed before. */
    sha256_update(c, "junk", 4);
    sha256_reset(c);
    sha256_hex_of(c, "abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sha256_free(c);
    sha256_free(NULL);
}

int main(void)
{
    umask(022);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fsutil_outfile_commit, tu_tmpdir_setup, tu_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_fsutil_outfile_refuses_existing_without_force,
                                        tu_tmpdir_setup, tu_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_fsutil_outfile_refuses_file_appearing_while_writing,
                                        tu_tmpdir_setup, tu_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_fsutil_outfile_abort, tu_tmpdir_setup, tu_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_fsutil_outfile_stdout_and_errors, tu_tmpdir_setup,
                                        tu_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_fsutil_rm_rf_does_not_follow_links, tu_tmpdir_setup,
                                        tu_tmpdir_teardown),
        cmocka_unit_test(test_fsutil_read_write_full_and_tmpfd),
        cmocka_unit_test(test_fsutil_human_bytes),
        cmocka_unit_test(test_fsutil_hex_encode_decode),
        cmocka_unit_test(test_fsutil_sha256_known_vectors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
