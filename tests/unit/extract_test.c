/*
 * Tests of proto/extract.c: archives written with the real bundle writer are unpacked into a
 * directory (custom parts joined into dump.pgdump, directory files under dump/), and every refusal
 * leaves nothing of ours behind: a directory we created is removed, an existing empty one is
 * emptied again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/fsutil.h"
#include "proto/bundle.h"
#include "proto/envelope.h"
#include "proto/extract.h"
#include "proto/manifest.h"
#include "tests/unit/testutil.h"

#define CHUNK 4096u

static pgs_pubkey g_pub;
static pgs_seckey g_sec;

static void fill(uint8_t *p, size_t len, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (uint8_t)((x >> 16) % 40 + 'A');
    }
}

static void add_manifest(bundle_writer *w, const char *format)
{
    manifest m;
    memset(&m, 0, sizeof(m));
    snprintf(m.format, sizeof(m.format), "%s", format);
    snprintf(m.database, sizeof(m.database), "appdb");
    snprintf(m.server_version, sizeof(m.server_version), "15.5");
    m.server_version_num = 150005;
    snprintf(m.pg_dump_version, sizeof(m.pg_dump_version), "15.5");
    snprintf(m.created_by, sizeof(m.created_by), "test");
    snprintf(m.host, sizeof(m.host), "host");
    snprintf(m.started_at, sizeof(m.started_at), "2026-01-01T00:00:00Z");
    m.part_size = strcmp(format, "custom") == 0 ? 65536 : 0;
    m.nrecipients = 1;
    key_id_hex(g_pub.id, m.recipients[0].key_id);
    snprintf(m.recipients[0].name, sizeof(m.recipients[0].name), "%s", g_pub.name);
    char *text = NULL;
    size_t len = 0;
    pgs_error e = {0};
    if (manifest_encode(&m, &text, &len, &e) != 0)
        fail_msg("manifest_encode: %s", e.msg);
    assert_int_equal(bundle_writer_add(w, BUNDLE_MANIFEST, text, len, &e), 0);
    free(text);
}

static void add_end(bundle_writer *w, uint64_t members)
{
    manifest_end m = {.dump_bytes = 0, .dump_members = members};
    snprintf(m.ended_at, sizeof(m.ended_at), "2026-01-01T00:00:01Z");
    char *text = NULL;
    size_t len = 0;
    pgs_error e = {0};
    assert_int_equal(manifest_end_encode(&m, &text, &len, &e), 0);
    assert_int_equal(bundle_writer_add(w, BUNDLE_END, text, len, &e), 0);
    free(text);
}

/* A custom-format archive of three parts whose concatenation is *joined (len total). */
static void make_custom(tu_buf *out, uint8_t **joined, size_t *total)
{
    bundle_writer *w = NULL;
    bundle_writer_opts o = {.rcpts = &g_pub,
                            .nrcpts = 1,
                            .chunk_size = CHUNK,
                            .zstd_level = 3,
                            .sink = tu_buf_sink,
                            .sink_arg = out};
    pgs_error e = {0};
    assert_int_equal(bundle_writer_new(&w, &o, &e), 0);
    add_manifest(w, "custom");
    size_t sizes[3] = {70000, 70000, 1234};
    *total = sizes[0] + sizes[1] + sizes[2];
    *joined = malloc(*total);
    assert_non_null(*joined);
    size_t off = 0;
    for (int i = 0; i < 3; i++) {
        char name[64];
        fill(*joined + off, sizes[i], (uint32_t)i + 7);
        snprintf(name, sizeof(name), BUNDLE_PART_FMT, (unsigned)i + 1);
        assert_int_equal(bundle_writer_add(w, name, *joined + off, sizes[i], &e), 0);
        off += sizes[i];
    }
    add_end(w, 3);
    assert_int_equal(bundle_writer_finish(w, &e), 0);
    bundle_writer_free(w);
}

static int run_extract(const tu_buf *archive, const char *dir, extract_info *info, pgs_error *e)
{
    tu_src src;
    tu_src_init(&src, archive->data, archive->len);
    envelope_reader *er = NULL;
    assert_int_equal(envelope_reader_new(&er, tu_src_read, &src), 0);
    int rc = envelope_reader_read_header(er, e);
    if (rc == 0)
        rc = envelope_reader_unlock(er, &g_sec, 1, e);
    if (rc == 0)
        rc = extract_archive(er, dir, EXTRACT_DURABLE, info, e);
    envelope_reader_free(er);
    return rc;
}

static void read_file(const char *path, tu_buf *out)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open %s", path);
    uint8_t buf[8192];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        assert_int_equal(tu_buf_append(out, buf, n), 0);
    fclose(f);
}

static int dir_is_empty(const char *path)
{
    char cmd[4200];
    snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A '%s')\"", path);
    return system(cmd) == 0;
}

static void test_extract_custom_parts_joined(void **state)
{
    tu_buf archive = {0}, got = {0};
    uint8_t *joined = NULL;
    size_t total = 0;
    make_custom(&archive, &joined, &total);
    char dir[4096], path[4200];
    tu_path_in(state, "custom", dir, sizeof(dir));
    extract_info info;
    pgs_error e = {0};
    int rc = run_extract(&archive, dir, &info, &e);
    if (rc != 0)
        fail_msg("extract: %s", e.msg);
    assert_string_equal(extract_dump_name(&info), "dump.pgdump");
    assert_int_equal(info.parts, 3);
    assert_int_equal(info.dump_bytes, total);
    assert_non_null(info.manifest_json);
    snprintf(path, sizeof(path), "%s/dump.pgdump", dir);
    read_file(path, &got);
    assert_int_equal(got.len, total);
    assert_memory_equal(got.data, joined, total);
    snprintf(path, sizeof(path), "%s/manifest.json", dir);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    snprintf(path, sizeof(path), "%s/end.json", dir);
    assert_int_equal(stat(path, &st), 0);
    extract_info_clear(&info);
    fs_rm_rf(dir);
    tu_buf_free(&got);
    tu_buf_free(&archive);
    free(joined);
}

static void test_extract_directory_layout(void **state)
{
    tu_buf archive = {0}, got = {0};
    bundle_writer *w = NULL;
    bundle_writer_opts o = {.rcpts = &g_pub,
                            .nrcpts = 1,
                            .chunk_size = CHUNK,
                            .zstd_level = 3,
                            .sink = tu_buf_sink,
                            .sink_arg = &archive};
    pgs_error e = {0};
    assert_int_equal(bundle_writer_new(&w, &o, &e), 0);
    add_manifest(w, "directory");
    assert_int_equal(bundle_writer_add(w, BUNDLE_GLOBALS, "CREATE ROLE app;\n", 17, &e), 0);
    assert_int_equal(bundle_writer_add(w, "dump/toc.dat", "TOC", 3, &e), 0);
    assert_int_equal(bundle_writer_add(w, "dump/3001.dat", "rows", 4, &e), 0);
    add_end(w, 2);
    assert_int_equal(bundle_writer_finish(w, &e), 0);
    bundle_writer_free(w);

    char dir[4096], path[4200];
    tu_path_in(state, "directory", dir, sizeof(dir));
    assert_int_equal(mkdir(dir, 0700), 0); /* an existing empty directory is accepted */
    extract_info info;
    int rc = run_extract(&archive, dir, &info, &e);
    if (rc != 0)
        fail_msg("extract: %s", e.msg);
    assert_string_equal(extract_dump_name(&info), "dump");
    assert_int_equal(info.files, 2);
    snprintf(path, sizeof(path), "%s/dump/3001.dat", dir);
    read_file(path, &got);
    assert_int_equal(got.len, 4);
    assert_memory_equal(got.data, "rows", 4);
    snprintf(path, sizeof(path), "%s/globals.sql", dir);
    assert_int_equal(access(path, F_OK), 0);
    extract_info_clear(&info);
    fs_rm_rf(dir);
    tu_buf_free(&got);
    tu_buf_free(&archive);
}

static void test_extract_verify_only_writes_nothing(void **state)
{
    (void)state;
    tu_buf archive = {0};
    uint8_t *joined = NULL;
    size_t total = 0;
    make_custom(&archive, &joined, &total);
    extract_info info;
    pgs_error e = {0};
    assert_int_equal(run_extract(&archive, NULL, &info, &e), 0);
    assert_int_equal(info.members, 5);
    assert_string_equal(info.man.database, "appdb");
    extract_info_clear(&info);
    tu_buf_free(&archive);
    free(joined);
}

static void test_extract_refuses_non_empty_directory(void **state)
{
    tu_buf archive = {0};
    uint8_t *joined = NULL;
    size_t total = 0;
    make_custom(&archive, &joined, &total);
    char dir[4096], path[4200];
    tu_path_in(state, "busy", dir, sizeof(dir));
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof(path), "%s/mine", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    extract_info info;
    pgs_error e = {0};
    TU_ASSERT_ERR(run_extract(&archive, dir, &info, &e), e, PGS_EEXIST, "not empty");
    assert_int_equal(access(path, F_OK), 0); /* not ours: kept */
    extract_info_clear(&info);
    fs_rm_rf(dir);
    tu_buf_free(&archive);
    free(joined);
}

static void test_extract_tampered_archive_leaves_nothing(void **state)
{
    tu_buf archive = {0};
    uint8_t *joined = NULL;
    size_t total = 0;
    make_custom(&archive, &joined, &total);
    archive.data[archive.len - 100] ^= 0x55; /* in the last chunk: after the parts were written */
    char created[4096], existing[4096];
    tu_path_in(state, "tampered_new", created, sizeof(created));
    tu_path_in(state, "tampered_old", existing, sizeof(existing));
    assert_int_equal(mkdir(existing, 0700), 0);
    extract_info info;
    pgs_error e = {0};
    TU_ASSERT_ERR(run_extract(&archive, created, &info, &e), e, PGS_EAUTH, "modified");
    extract_info_clear(&info);
    assert_int_equal(access(created, F_OK), -1);
    TU_ASSERT_ERR(run_extract(&archive, existing, &info, &e), e, PGS_EAUTH, "modified");
    extract_info_clear(&info);
    assert_true(dir_is_empty(existing));
    fs_rm_rf(existing);
    tu_buf_free(&archive);
    free(joined);
}

int main(void)
{
    tu_random_keypair("ops", &g_pub, &g_sec);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_extract_custom_parts_joined),
        cmocka_unit_test(test_extract_directory_layout),
        cmocka_unit_test(test_extract_verify_only_writes_nothing),
        cmocka_unit_test(test_extract_refuses_non_empty_directory),
        cmocka_unit_test(test_extract_tampered_archive_leaves_nothing),
    };
    return cmocka_run_group_tests(tests, tu_tmpdir_setup, tu_tmpdir_teardown);
}
