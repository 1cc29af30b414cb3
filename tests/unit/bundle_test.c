/*
 * Tests of the archive's tar layer (proto/bundle.c): round trips through bundle_writer and
 * bundle_reader for both dump layouts, the member-name rules, and hostile archives. The hostile
 * ones are tars made here with libarchive directly (pax, zstd) and sealed with the real envelope
 * writer, so they carry everything pgship's own writer refuses to produce: wrong digests, links,
 * paths outside the archive, members out of order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <archive.h>
#include <archive_entry.h>
#include <cmocka.h>

#include "common/sha256.h"
#include "proto/bundle.h"
#include "proto/envelope.h"
#include "proto/manifest.h"
#include "tests/unit/testutil.h"

#define CHUNK 4096u
#define MAX_MEMBERS 16

static pgs_pubkey g_pub;
static pgs_seckey g_sec;

/* ---- helpers ---- */

typedef struct read_member {
    bundle_member m;
    tu_buf data;
} read_member;

typedef struct read_result {
    read_member mem[MAX_MEMBERS];
    size_t n;
} read_result;

static void read_result_free(read_result *res)
{
    for (size_t i = 0; i < res->n; i++)
        tu_buf_free(&res->mem[i].data);
    res->n = 0;
}

/*
 * Opens env with the test key and reads the whole bundle. With read_data 0 the member data is
 * left for bundle_reader_next to skip. Returns 0 after a clean end or the first error.
 */
static int read_bundle(const tu_buf *env, int read_data, read_result *res, pgs_error *e)
{
    memset(res, 0, sizeof(*res));
    tu_src src;
    tu_src_init(&src, env->data, env->len);
    envelope_reader *er = NULL;
    bundle_reader *br = NULL;
    int rc = envelope_reader_new(&er, tu_src_read, &src);
    assert_int_equal(rc, 0);
    if ((rc = envelope_reader_read_header(er, e)) != 0 ||
        (rc = envelope_reader_unlock(er, &g_sec, 1, e)) != 0 ||
        (rc = bundle_reader_new(&br, er, e)) != 0)
        goto out;
    for (;;) {
        bundle_member m;
        rc = bundle_reader_next(br, &m, e);
        if (rc <= 0)
            break;
        assert_true(res->n < MAX_MEMBERS);
        read_member *rm = &res->mem[res->n++];
        rm->m = m;
        if (!read_data)
            continue;
        uint8_t buf[1000]; /* odd size, so reads end mid-block */
        ssize_t n;
        while ((n = bundle_reader_read(br, buf, sizeof(buf), e)) > 0)
            assert_int_equal(tu_buf_append(&rm->data, buf, (size_t)n), 0);
        if (n < 0) {
            rc = (int)n;
            break;
        }
    }
    if (rc == 0) {
        /* The end stays the end. */
        bundle_member m;
        assert_int_equal(bundle_reader_next(br, &m, e), 0);
    }
out:
    bundle_reader_free(br);
    envelope_reader_free(er);
    return rc;
}

static void make_data(uint8_t *p, size_t len, uint32_t seed)
{
    /* Compressible but not trivially so. */
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < len; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (uint8_t)((x >> 16) % 40 + 'A');
    }
}

static void new_writer(bundle_writer **w, tu_buf *out)
{
    bundle_writer_opts o = {
        .rcpts = &g_pub,
        .nrcpts = 1,
        .chunk_size = CHUNK,
        .zstd_level = 3,
        .zstd_threads = 0,
        .sink = tu_buf_sink,
        .sink_arg = out,
    };
    pgs_error e = {0};
    int rc = bundle_writer_new(w, &o, &e);
    if (rc != 0)
        fail_msg("bundle_writer_new: %s", e.msg);
}

/* A member of a hand-made tar. */
typedef struct member {
    const char *name;
    const void *data;
    size_t len;
    unsigned type;    /* AE_IFREG when 0 */
    const char *link; /* symlink target, or hardlink target with hardlink set */
    int hardlink;
} member;

static la_ssize_t tar_write_cb(struct archive *a, void *ud, const void *buf, size_t len)
{
    (void)a;
    if (tu_buf_append(ud, buf, len) != 0)
        return -1;
    return (la_ssize_t)len;
}

/* Writes exactly the given members as a pax tar, zstd-compressed unless plain is set. */
static void craft_tar(const member *m, size_t n, int plain, tu_buf *tar)
{
    struct archive *a = archive_write_new();
    assert_non_null(a);
    assert_int_equal(archive_write_set_format_pax_restricted(a), ARCHIVE_OK);
    if (!plain)
        assert_int_equal(archive_write_add_filter_zstd(a), ARCHIVE_OK);
    assert_int_equal(archive_write_set_bytes_in_last_block(a, 1), ARCHIVE_OK);
    assert_int_equal(archive_write_open2(a, tar, NULL, tar_write_cb, NULL, NULL), ARCHIVE_OK);
    for (size_t i = 0; i < n; i++) {
        struct archive_entry *ent = archive_entry_new();
        archive_entry_set_pathname(ent, m[i].name);
        archive_entry_set_filetype(ent, m[i].type ? m[i].type : AE_IFREG);
        archive_entry_set_perm(ent, 0600);
        archive_entry_set_mtime(ent, 1700000000, 0);
        if (m[i].link != NULL && m[i].hardlink)
            archive_entry_set_hardlink(ent, m[i].link);
        else if (m[i].link != NULL)
            archive_entry_set_symlink(ent, m[i].link);
        archive_entry_set_size(ent, (la_int64_t)m[i].len);
        if (archive_write_header(a, ent) != ARCHIVE_OK)
            fail_msg("libarchive header %s: %s", m[i].name, archive_error_string(a));
        if (m[i].len > 0)
            assert_int_equal(archive_write_data(a, m[i].data, m[i].len), (la_ssize_t)m[i].len);
        archive_entry_free(ent);
    }
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
}

/* The SHA256SUMS text for members[0..n), as pgship writes it. */
static void sums_text(const member *m, size_t n, tu_buf *out)
{
    sha256_ctx *c = sha256_new();
    assert_non_null(c);
    for (size_t i = 0; i < n; i++) {
        uint8_t d[SHA256_LEN];
        char hex[SHA256_HEX_LEN + 1], line[600];
        sha256_update(c, m[i].data, m[i].len);
        sha256_final(c, d);
        hex_encode(d, SHA256_LEN, hex);
        int len = snprintf(line, sizeof(line), "%s  %s\n", hex, m[i].name);
        assert_true(len > 0 && (size_t)len < sizeof(line));
        assert_int_equal(tu_buf_append(out, line, (size_t)len), 0);
    }
    sha256_free(c);
}

/* Seals a hand-made tar (or any bytes) into an envelope for the test key. */
static void seal(const tu_buf *plain, tu_buf *env)
{
    pgs_error e = {0};
    if (tu_encrypt(&g_pub, 1, CHUNK, plain->data, plain->len, env, &e) != 0)
        fail_msg("encrypt: %s", e.msg);
}

/* Crafts, seals and reads m; returns the reader's verdict. When sums is set, a correct
 * SHA256SUMS for the first nsums members is appended after them. */
static int try_members(const member *m, size_t n, int sums, size_t nsums, pgs_error *e)
{
    member all[MAX_MEMBERS];
    tu_buf s = {0}, tar = {0}, env = {0};
    assert_true(n < MAX_MEMBERS);
    memcpy(all, m, n * sizeof(*m));
    if (sums) {
        sums_text(m, nsums, &s);
        all[n++] = (member){.name = BUNDLE_SUMS, .data = s.data, .len = s.len};
    }
    craft_tar(all, n, 0, &tar);
    seal(&tar, &env);
    read_result res;
    int rc = read_bundle(&env, 1, &res, e);
    read_result_free(&res);
    tu_buf_free(&s);
    tu_buf_free(&tar);
    tu_buf_free(&env);
    return rc;
}

static const char MANIFEST_TEXT[] = "{\"pgship_archive\": 1}";
static const char GLOBALS_TEXT[] = "CREATE ROLE app;\n";
static const char PART_TEXT[] = "PGDMP part one";
static const char PART2_TEXT[] = "PGDMP part two";
static const char END_TEXT[] = "{\"ended_at\": \"2026-01-01T00:00:00Z\"}";

#define M(n, t) ((member){.name = (n), .data = (t), .len = sizeof(t) - 1})
#define M_MANIFEST M(BUNDLE_MANIFEST, MANIFEST_TEXT)
#define M_GLOBALS M(BUNDLE_GLOBALS, GLOBALS_TEXT)
#define M_PART1 M("dump/part-000001", PART_TEXT)
#define M_PART2 M("dump/part-000002", PART2_TEXT)
#define M_PART3 M("dump/part-000003", PART2_TEXT)
#define M_END M(BUNDLE_END, END_TEXT)

/* ---- round trips ---- */

static void test_bundle_round_trip_custom_layout(void **state)
{
    (void)state;
    manifest man;
    memset(&man, 0, sizeof(man));
    man.version = 1;
    snprintf(man.format, sizeof(man.format), "custom");
    snprintf(man.database, sizeof(man.database), "app");
    snprintf(man.server_version, sizeof(man.server_version), "16.2");
    man.server_version_num = 160002;
    snprintf(man.pg_dump_version, sizeof(man.pg_dump_version), "pg_dump (PostgreSQL) 16.2");
    snprintf(man.created_by, sizeof(man.created_by), "pgship-agent 0.1.0");
    snprintf(man.host, sizeof(man.host), "db1");
    snprintf(man.started_at, sizeof(man.started_at), "2026-01-01T00:00:00Z");
    man.part_size = 50000;
    man.globals = 1;
    man.nrecipients = 1;
    key_id_hex(g_pub.id, man.recipients[0].key_id);
    snprintf(man.recipients[0].name, sizeof(man.recipients[0].name), "%s", g_pub.name);
    char *mtext = NULL;
    size_t mlen = 0;
    pgs_error e = {0};
    assert_int_equal(manifest_encode(&man, &mtext, &mlen, &e), 0);

    size_t plen[3] = {50000, 50000, 1234};
    uint8_t *parts[3];
    for (int i = 0; i < 3; i++) {
        parts[i] = malloc(plen[i]);
        make_data(parts[i], plen[i], (uint32_t)i);
    }

    tu_buf env = {0};
    bundle_writer *w = NULL;
    new_writer(&w, &env);
    assert_int_equal(bundle_writer_add(w, BUNDLE_MANIFEST, mtext, mlen, &e), 0);
    assert_int_equal(bundle_writer_add(w, BUNDLE_GLOBALS, GLOBALS_TEXT, strlen(GLOBALS_TEXT), &e),
                     0);
    assert_int_equal(bundle_writer_add(w, "dump/part-000001", parts[0], plen[0], &e), 0);
    /* Part 2 streamed in uneven pieces. */
    assert_int_equal(bundle_writer_begin(w, "dump/part-000002", plen[1], &e), 0);
    for (size_t off = 0; off < plen[1]; off += 777) {
        size_t n = plen[1] - off < 777 ? plen[1] - off : 777;
        assert_int_equal(bundle_writer_data(w, parts[1] + off, n, &e), 0);
    }
    assert_int_equal(bundle_writer_end(w, &e), 0);
    assert_int_equal(bundle_writer_add(w, "dump/part-000003", parts[2], plen[2], &e), 0);
    assert_int_equal(bundle_writer_add(w, BUNDLE_END, END_TEXT, strlen(END_TEXT), &e), 0);
    uint64_t input = bundle_writer_input_bytes(w);
    assert_int_equal(bundle_writer_finish(w, &e), 0);
    bundle_writer_free(w);
    assert_int_equal(input,
                     mlen + strlen(GLOBALS_TEXT) + plen[0] + plen[1] + plen[2] + strlen(END_TEXT));

    read_result res;
    int rc = read_bundle(&env, 1, &res, &e);
    if (rc != 0)
        fail_msg("read: %s", e.msg);
    struct {
        const char *name;
        enum bundle_kind kind;
        uint32_t part;
        const void *data;
        size_t len;
    } want[] = {
        {BUNDLE_MANIFEST, BUNDLE_K_MANIFEST, 0, mtext, mlen},
        {BUNDLE_GLOBALS, BUNDLE_K_GLOBALS, 0, GLOBALS_TEXT, strlen(GLOBALS_TEXT)},
        {"dump/part-000001", BUNDLE_K_PART, 1, parts[0], plen[0]},
        {"dump/part-000002", BUNDLE_K_PART, 2, parts[1], plen[1]},
        {"dump/part-000003", BUNDLE_K_PART, 3, parts[2], plen[2]},
        {BUNDLE_END, BUNDLE_K_END, 0, END_TEXT, strlen(END_TEXT)},
    };
    /* SHA256SUMS is checked and consumed by the reader itself: next() returns 0 for it. */
    assert_int_equal(res.n, 6);
    for (size_t i = 0; i < 6; i++) {
        assert_string_equal(res.mem[i].m.name, want[i].name);
        assert_int_equal(res.mem[i].m.kind, want[i].kind);
        assert_int_equal(res.mem[i].m.part, want[i].part);
        assert_int_equal(res.mem[i].m.size, want[i].len);
        assert_int_equal(res.mem[i].data.len, want[i].len);
        assert_memory_equal(res.mem[i].data.data, want[i].data, want[i].len);
    }
    /* The manifest read back decodes to what was written. */
    manifest back;
    assert_int_equal(manifest_decode(res.mem[0].data.data, res.mem[0].data.len, &back, &e), 0);
    assert_string_equal(back.database, "app");
    assert_int_equal(back.part_size, 50000);
    manifest_clear(&back);
    read_result_free(&res);

    /* Reading without touching the data: next() reads and checks what is left. */
    rc = read_bundle(&env, 0, &res, &e);
    if (rc != 0)
        fail_msg("read without data: %s", e.msg);
    assert_int_equal(res.n, 6);
    read_result_free(&res);

    for (int i = 0; i < 3; i++)
        free(parts[i]);
    free(mtext);
    tu_buf_free(&env);
}

static void test_bundle_writer_free_unfinished_writes_nothing_more(void **state)
{
    (void)state;
    tu_buf out = {0};
    bundle_writer *w = NULL;
    new_writer(&w, &out);
    pgs_error e = {0};
    uint8_t data[300000];
    make_data(data, sizeof(data), 7);
    assert_int_equal(bundle_writer_add(w, BUNDLE_MANIFEST, MANIFEST_TEXT, strlen(MANIFEST_TEXT), &e),
                     0);
    assert_int_equal(bundle_writer_begin(w, "dump/part-000001", sizeof(data) * 2, &e), 0);
    assert_int_equal(bundle_writer_data(w, data, sizeof(data), &e), 0);
    size_t before = out.len;
    /* A failed dump frees its writer mid-member: the sink must not see another byte. */
    bundle_writer_free(w);
    assert_int_equal(out.len, before);
    tu_buf_free(&out);
}

static void test_bundle_writer_threaded_jobs_round_trip(void **state)
{
    (void)state;
    /* Two zstd workers with the smallest job size: several jobs in flight, one frame out. */
    tu_buf out = {0};
    bundle_writer *w = NULL;
    bundle_writer_opts o = {.rcpts = &g_pub, .nrcpts = 1, .chunk_size = CHUNK, .zstd_level = 3,
                            .zstd_threads = 2, .zstd_job_size = BUNDLE_ZSTD_JOB_MIN,
                            .sink = tu_buf_sink, .sink_arg = &out};
    pgs_error e = {0};
    assert_int_equal(bundle_writer_new(&w, &o, &e), 0);
    size_t len = 3 * BUNDLE_ZSTD_JOB_MIN + 12345;
    uint8_t *data = malloc(len);
    make_data(data, len, 11);
    assert_int_equal(
        bundle_writer_add(w, BUNDLE_MANIFEST, MANIFEST_TEXT, strlen(MANIFEST_TEXT), &e), 0);
    assert_int_equal(bundle_writer_add(w, "dump/part-000001", data, len, &e), 0);
    assert_int_equal(bundle_writer_add(w, BUNDLE_END, END_TEXT, strlen(END_TEXT), &e), 0);
    assert_int_equal(bundle_writer_finish(w, &e), 0);
    bundle_writer_free(w);
    read_result res;
    int rc = read_bundle(&out, 1, &res, &e);
    if (rc != 0)
        fail_msg("%s", e.msg);
    assert_int_equal(res.n, 3);
    assert_int_equal(res.mem[1].data.len, len);
    assert_memory_equal(res.mem[1].data.data, data, len);
    read_result_free(&res);
    free(data);
    tu_buf_free(&out);

    /* Job sizes outside the documented range are refused by name. */
    o.zstd_job_size = BUNDLE_ZSTD_JOB_MIN - 1;
    TU_ASSERT_ERR(bundle_writer_new(&w, &o, &e), e, PGS_EINVAL, "compression job size");
    o.zstd_job_size = BUNDLE_ZSTD_JOB_MAX + 1;
    TU_ASSERT_ERR(bundle_writer_new(&w, &o, &e), e, PGS_EINVAL, "compression job size");
}

static void test_bundle_round_trip_directory_layout(void **state)
{
    (void)state;
    static const char *names[] = {"dump/toc.dat", "dump/1234.dat", "dump/1235.dat.gz",
                                  "dump/blob_16384.dat"};
    uint8_t data[4][3000];
    size_t lens[4] = {3000, 0, 1, 2999};
    for (int i = 0; i < 4; i++)
        make_data(data[i], sizeof(data[i]), (uint32_t)(10 + i));
    tu_buf env = {0};
    bundle_writer *w = NULL;
    pgs_error e = {0};
    new_writer(&w, &env);
    assert_int_equal(
        bundle_writer_add(w, BUNDLE_MANIFEST, MANIFEST_TEXT, strlen(MANIFEST_TEXT), &e), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(bundle_writer_add(w, names[i], data[i], lens[i], &e), 0);
    assert_int_equal(bundle_writer_add(w, BUNDLE_END, END_TEXT, strlen(END_TEXT), &e), 0);
    assert_int_equal(bundle_writer_finish(w, &e), 0);
    bundle_writer_free(w);

    read_result res;
    int rc = read_bundle(&env, 1, &res, &e);
    if (rc != 0)
        fail_msg("read: %s", e.msg);
    assert_int_equal(res.n, 6);
    assert_string_equal(res.mem[0].m.name, BUNDLE_MANIFEST);
    for (int i = 0; i < 4; i++) {
        read_member *rm = &res.mem[1 + i];
        assert_string_equal(rm->m.name, names[i]);
        assert_int_equal(rm->m.kind, BUNDLE_K_DUMPFILE);
        assert_int_equal(rm->m.size, lens[i]);
        assert_int_equal(rm->data.len, lens[i]);
        if (lens[i] > 0)
            assert_memory_equal(rm->data.data, data[i], lens[i]);
    }
    assert_string_equal(res.mem[5].m.name, BUNDLE_END);
    read_result_free(&res);
    tu_buf_free(&env);
}

static void test_bundle_name_kind(void **state)
{
    (void)state;
    char long_name[200];
    memset(long_name, 'a', sizeof(long_name));
    memcpy(long_name, "dump/", 5);
    long_name[161] = '\0'; /* 161 bytes */
    char dump128[140], dump129[140];
    memset(dump128, 'b', sizeof(dump128));
    memcpy(dump128, "dump/", 5);
    memcpy(dump129, dump128, sizeof(dump129));
    dump128[5 + 128] = '\0';
    dump129[5 + 129] = '\0';
    struct {
        const char *name;
        enum bundle_kind kind;
        uint32_t part;
    } cases[] = {
        {"manifest.json", BUNDLE_K_MANIFEST, 0},
        {"globals.sql", BUNDLE_K_GLOBALS, 0},
        {"end.json", BUNDLE_K_END, 0},
        {"SHA256SUMS", BUNDLE_K_SUMS, 0},
        {"dump/part-000001", BUNDLE_K_PART, 1},
        {"dump/part-000042", BUNDLE_K_PART, 42},
        {"dump/part-999999", BUNDLE_K_PART, 999999},
        {"dump/part-1000000", BUNDLE_K_PART, 1000000},
        {"dump/part-99999999", BUNDLE_K_PART, 99999999},
        {"dump/toc.dat", BUNDLE_K_DUMPFILE, 0},
        {"dump/1234.dat", BUNDLE_K_DUMPFILE, 0},
        {"dump/1234.dat.gz", BUNDLE_K_DUMPFILE, 0},
        {"dump/blob_1-2.dat", BUNDLE_K_DUMPFILE, 0},
        {dump128, BUNDLE_K_DUMPFILE, 0},
        {"", BUNDLE_K_INVALID, 0},
        {"../x", BUNDLE_K_INVALID, 0},
        {"/abs", BUNDLE_K_INVALID, 0},
        {"/manifest.json", BUNDLE_K_INVALID, 0},
        {"./manifest.json", BUNDLE_K_INVALID, 0},
        {"manifest.json/", BUNDLE_K_INVALID, 0},
        {"MANIFEST.JSON", BUNDLE_K_INVALID, 0},
        {"dump", BUNDLE_K_INVALID, 0},
        {"dump/", BUNDLE_K_INVALID, 0},
        {"dump/../x", BUNDLE_K_INVALID, 0},
        {"dump/..", BUNDLE_K_INVALID, 0},
        {"dump/.", BUNDLE_K_INVALID, 0},
        {"dump/.hidden", BUNDLE_K_INVALID, 0},
        {"dump//x", BUNDLE_K_INVALID, 0},
        {"dump/a/b", BUNDLE_K_INVALID, 0},
        {"dump/a\\b", BUNDLE_K_INVALID, 0},
        {"dump/-x", BUNDLE_K_DUMPFILE, 0}, /* a plain name; only dot files are refused */
        {"dump/part-0", BUNDLE_K_INVALID, 0},
        {"dump/part-1", BUNDLE_K_INVALID, 0},
        {"dump/part-00001", BUNDLE_K_INVALID, 0},
        {"dump/part-0000001", BUNDLE_K_INVALID, 0},
        {"dump/part-000000", BUNDLE_K_INVALID, 0},
        {"dump/part-00000000", BUNDLE_K_INVALID, 0},
        {"dump/part-100000000", BUNDLE_K_INVALID, 0},
        {"dump/part-00000a", BUNDLE_K_INVALID, 0},
        {"dump/part-+00001", BUNDLE_K_INVALID, 0},
        {"dump/part- 00001", BUNDLE_K_INVALID, 0},
        {"dump/part-000001 ", BUNDLE_K_INVALID, 0},
        {"dump/part-000001.dat", BUNDLE_K_INVALID, 0},
        {"dump/my file.dat", BUNDLE_K_INVALID, 0},
        {"dump/tab\tfile", BUNDLE_K_INVALID, 0},
        {"dump/new\nline", BUNDLE_K_INVALID, 0},
        {"dump/\xc3\xa9t\xc3\xa9", BUNDLE_K_INVALID, 0},
        {"globals.sql ", BUNDLE_K_INVALID, 0},
        {" manifest.json", BUNDLE_K_INVALID, 0},
        {"other.txt", BUNDLE_K_INVALID, 0},
        {dump129, BUNDLE_K_INVALID, 0},
        {long_name, BUNDLE_K_INVALID, 0},
    };
    assert_int_equal(strlen(long_name), 161);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint32_t part = 0;
        enum bundle_kind k = bundle_name_kind(cases[i].name, &part);
        if (k != cases[i].kind)
            fail_msg("bundle_name_kind(\"%s\") = %d, expected %d", cases[i].name, k, cases[i].kind);
        if (k == BUNDLE_K_PART)
            assert_int_equal(part, cases[i].part);
        /* part may be NULL. */
        assert_int_equal(bundle_name_kind(cases[i].name, NULL), cases[i].kind);
    }
}

static void test_bundle_writer_rejects_bad_use(void **state)
{
    (void)state;
    tu_buf env = {0};
    bundle_writer *w = NULL;
    pgs_error e = {0};
    new_writer(&w, &env);
    static const char *bad[] = {"../x",        "/abs",       "dump/.hidden",
                                "dump/part-0", "SHA256SUMS", "dump/a b"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        TU_ASSERT_ERR(bundle_writer_add(w, bad[i], "x", 1, &e), e, PGS_EINVAL,
                      "is not a valid member name");
    TU_ASSERT_ERR(bundle_writer_data(w, "x", 1, &e), e, PGS_EINVAL, "no member is open");
    TU_ASSERT_ERR(bundle_writer_end(w, &e), e, PGS_EINVAL, "no member is open");
    assert_int_equal(bundle_writer_begin(w, BUNDLE_MANIFEST, 10, &e), 0);
    TU_ASSERT_ERR(bundle_writer_begin(w, BUNDLE_GLOBALS, 1, &e), e, PGS_EINVAL,
                  "member manifest.json is still open");
    assert_int_equal(bundle_writer_data(w, "12345", 5, &e), 0);
    TU_ASSERT_ERR(bundle_writer_data(w, "123456", 6, &e), e, PGS_EINVAL,
                  "more data than its declared size");
    TU_ASSERT_ERR(bundle_writer_end(w, &e), e, PGS_EINVAL, "5 bytes written of 10 declared");
    TU_ASSERT_ERR(bundle_writer_finish(w, &e), e, PGS_EINVAL, "still open");
    bundle_writer_free(w);
    bundle_writer_free(NULL);
    tu_buf_free(&env);
}

static void test_bundle_writer_rejects_options(void **state)
{
    (void)state;
    tu_buf out = {0};
    bundle_writer *w = NULL;
    pgs_error e = {0};
    bundle_writer_opts o = {.rcpts = &g_pub,
                            .nrcpts = 1,
                            .chunk_size = CHUNK,
                            .zstd_level = 3,
                            .sink = tu_buf_sink,
                            .sink_arg = &out};
    o.zstd_level = 0;
    TU_ASSERT_ERR(bundle_writer_new(&w, &o, &e), e, PGS_EINVAL, "compression level 0");
    o.zstd_level = 20;
    TU_ASSERT_ERR(bundle_writer_new(&w, &o, &e), e, PGS_EINVAL, "compression level 20");
    o.zstd_level = 3;
    o.zstd_threads = -1;
    TU_ASSERT_ERR(bundle_writer_new(&w, &o, &e), e, PGS_EINVAL, "compression threads");
    o.zstd_threads = 65;
    TU_ASSERT_ERR(bundle_writer_new(&w, &o, &e), e, PGS_EINVAL, "compression threads");
    o.zstd_threads = 0;
    o.nrcpts = 0;
    TU_ASSERT_ERR(bundle_writer_new(&w, &o, &e), e, PGS_EINVAL, "recipients");
    o.nrcpts = 1;
    o.chunk_size = 100;
    TU_ASSERT_ERR(bundle_writer_new(&w, &o, &e), e, PGS_EINVAL, "chunk size");
    assert_null(w);
    assert_int_equal(out.len, 0);
    tu_buf_free(&out);
}

static void test_bundle_writer_sink_failure(void **state)
{
    (void)state;
    tu_buf out = {0};
    out.fail_after = 300;
    bundle_writer *w = NULL;
    pgs_error e = {0};
    bundle_writer_opts o = {.rcpts = &g_pub,
                            .nrcpts = 1,
                            .chunk_size = CHUNK,
                            .zstd_level = 1,
                            .sink = tu_buf_sink,
                            .sink_arg = &out};
    assert_int_equal(bundle_writer_new(&w, &o, &e), 0);
    uint8_t *big = malloc(1 << 20);
    make_data(big, 1 << 20, 7);
    int rc = bundle_writer_add(w, BUNDLE_MANIFEST, big, 1 << 20, &e);
    if (rc == 0)
        rc = bundle_writer_finish(w, &e);
    /* The sink's code comes back, with a message naming the chunk. */
    TU_ASSERT_ERR(rc, e, PGS_EIO, "writing archive chunk 0 failed");
    bundle_writer_free(w);
    free(big);
    tu_buf_free(&out);
}

/* ---- hostile archives ---- */

static void test_bundle_crafted_archive_accepted(void **state)
{
    (void)state;
    /* The hand-made tars below differ from this one only in the fault they carry. */
    member m[] = {M_MANIFEST, M_GLOBALS, M_PART1, M_PART2, M_END};
    pgs_error e = {0};
    int rc = try_members(m, 5, 1, 5, &e);
    if (rc != 0)
        fail_msg("%s", e.msg);
    member d[] = {M_MANIFEST, M("dump/toc.dat", PART_TEXT), M_END};
    rc = try_members(d, 3, 1, 3, &e);
    if (rc != 0)
        fail_msg("%s", e.msg);
}

static void test_bundle_reader_first_member_not_manifest(void **state)
{
    (void)state;
    pgs_error e = {0};
    member g[] = {M_GLOBALS, M_MANIFEST, M_PART1, M_END};
    TU_ASSERT_ERR(try_members(g, 4, 1, 4, &e), e, PGS_EORDER,
                  "the first member must be manifest.json, not globals.sql");
    member p[] = {M_PART1, M_MANIFEST, M_END};
    TU_ASSERT_ERR(try_members(p, 3, 1, 3, &e), e, PGS_EORDER,
                  "the first member must be manifest.json, not dump/part-000001");
    member n[] = {M_END, M_MANIFEST};
    TU_ASSERT_ERR(try_members(n, 2, 1, 2, &e), e, PGS_EORDER,
                  "the first member must be manifest.json, not end.json");
    member s[] = {M_MANIFEST};
    TU_ASSERT_ERR(try_members(s, 0, 1, 0, &e), e, PGS_EORDER,
                  "the first member must be manifest.json, not SHA256SUMS");
    member o[] = {M("README", "hello"), M_MANIFEST};
    TU_ASSERT_ERR(try_members(o, 2, 1, 2, &e), e, PGS_EFORMAT, "unexpected member \"README\"");
}

static void test_bundle_reader_missing_part(void **state)
{
    (void)state;
    pgs_error e = {0};
    member m[] = {M_MANIFEST, M_PART1, M_PART3, M_END};
    TU_ASSERT_ERR(try_members(m, 4, 1, 4, &e), e, PGS_EORDER,
                  "member dump/part-000003 follows part 1: parts are missing");
    member f[] = {M_MANIFEST, M_PART2, M_END};
    TU_ASSERT_ERR(try_members(f, 3, 1, 3, &e), e, PGS_EORDER, "follows part 0");
}

static void test_bundle_reader_duplicate_members(void **state)
{
    (void)state;
    pgs_error e = {0};
    member man[] = {M_MANIFEST, M_MANIFEST, M_PART1, M_END};
    TU_ASSERT_ERR(try_members(man, 4, 1, 4, &e), e, PGS_EORDER, "duplicate member manifest.json");
    member part[] = {M_MANIFEST, M_PART1, M_PART1, M_END};
    TU_ASSERT_ERR(try_members(part, 4, 1, 4, &e), e, PGS_EORDER,
                  "duplicate member dump/part-000001");
    member back[] = {M_MANIFEST, M_PART1, M_PART2, M_PART1, M_END};
    TU_ASSERT_ERR(try_members(back, 5, 1, 5, &e), e, PGS_EORDER,
                  "duplicate member dump/part-000001");
    member glob[] = {M_MANIFEST, M_GLOBALS, M_GLOBALS, M_PART1, M_END};
    TU_ASSERT_ERR(try_members(glob, 5, 1, 5, &e), e, PGS_EORDER, "globals.sql is out of place");
    member end[] = {M_MANIFEST, M_PART1, M_END, M_END};
    TU_ASSERT_ERR(try_members(end, 4, 1, 4, &e), e, PGS_EORDER, "duplicate member end.json");
}

static void test_bundle_reader_members_out_of_order(void **state)
{
    (void)state;
    pgs_error e = {0};
    member glob[] = {M_MANIFEST, M_PART1, M_GLOBALS, M_END};
    TU_ASSERT_ERR(try_members(glob, 4, 1, 4, &e), e, PGS_EORDER, "globals.sql is out of place");
    member noend[] = {M_MANIFEST, M_END};
    TU_ASSERT_ERR(try_members(noend, 2, 1, 2, &e), e, PGS_EORDER,
                  "end.json comes before any dump data");
    member late[] = {M_MANIFEST, M_PART1, M_END, M_PART2};
    TU_ASSERT_ERR(try_members(late, 4, 1, 4, &e), e, PGS_EORDER,
                  "dump/part-000002 is out of place");
    member mixed[] = {M_MANIFEST, M_PART1, M("dump/toc.dat", PART_TEXT), M_END};
    TU_ASSERT_ERR(try_members(mixed, 4, 1, 4, &e), e, PGS_EFORMAT,
                  "dump/toc.dat mixes the custom and directory layouts");
}

static void test_bundle_reader_member_after_sums(void **state)
{
    (void)state;
    pgs_error e = {0};
    member m[] = {M_MANIFEST, M_PART1, M_END};
    tu_buf s = {0}, tar = {0}, env = {0};
    sums_text(m, 3, &s);
    member all[] = {
        M_MANIFEST, M_PART1, M_END, {.name = BUNDLE_SUMS, .data = s.data, .len = s.len}, M_PART2};
    craft_tar(all, 5, 0, &tar);
    seal(&tar, &env);
    read_result res;
    TU_ASSERT_ERR(read_bundle(&env, 1, &res, &e), e, PGS_EFORMAT,
                  "member \"dump/part-000002\" follows SHA256SUMS");
    read_result_free(&res);
    tu_buf_free(&env);
    tu_buf_free(&tar);

    /* A second SHA256SUMS. */
    all[4] = all[3];
    craft_tar(all, 5, 0, &tar);
    seal(&tar, &env);
    TU_ASSERT_ERR(read_bundle(&env, 1, &res, &e), e, PGS_EFORMAT, "follows SHA256SUMS");
    read_result_free(&res);
    tu_buf_free(&env);
    tu_buf_free(&tar);
    tu_buf_free(&s);
}

/* Reads manifest, part 1, end and the given SHA256SUMS text. */
static int try_sums(const char *sums, size_t len, pgs_error *e)
{
    member m[] = {M_MANIFEST, M_PART1, M_END, {.name = BUNDLE_SUMS, .data = sums, .len = len}};
    return try_members(m, 4, 0, 0, e);
}

static void test_bundle_reader_sums_mismatch(void **state)
{
    (void)state;
    pgs_error e = {0};
    member m[] = {M_MANIFEST, M_PART1, M_END};
    tu_buf good = {0};
    sums_text(m, 3, &good);
    assert_int_equal(try_sums((char *)good.data, good.len, &e), 0);
    char *s = malloc(good.len + 400);
    size_t line = SHA256_HEX_LEN + 2 + strlen(BUNDLE_MANIFEST) + 1; /* first line's length */

    /* A wrong digest for the part (second line, first hex digit). */
    memcpy(s, good.data, good.len);
    s[line] = s[line] == '0' ? '1' : '0';
    TU_ASSERT_ERR(try_sums(s, good.len, &e), e, PGS_ESUM,
                  "checksum mismatch for member dump/part-000001");
    /* Uppercase hex is not what pgship writes. */
    memcpy(s, good.data, good.len);
    for (size_t i = 0; i < SHA256_HEX_LEN; i++)
        if (s[i] >= 'a' && s[i] <= 'f')
            s[i] = (char)(s[i] - 'a' + 'A');
    TU_ASSERT_ERR(try_sums(s, good.len, &e), e, PGS_ESUM, "checksum mismatch for member manifest");
    /* A line missing (the last one). */
    size_t last = good.len - (SHA256_HEX_LEN + 2 + strlen(BUNDLE_END) + 1);
    TU_ASSERT_ERR(try_sums((char *)good.data, last, &e), e, PGS_ESUM,
                  "SHA256SUMS does not list member end.json");
    /* An extra line. */
    memcpy(s, good.data, good.len);
    memcpy(s + good.len, good.data, line);
    TU_ASSERT_ERR(try_sums(s, good.len + line, &e), e, PGS_ESUM,
                  "lists more members than the archive has");
    /* Lines in another order. */
    memcpy(s, good.data + line, good.len - line);
    memcpy(s + good.len - line, good.data, line);
    TU_ASSERT_ERR(try_sums(s, good.len, &e), e, PGS_ESUM,
                  "SHA256SUMS line 1 does not match member manifest.json");
    /* No final newline. */
    TU_ASSERT_ERR(try_sums((char *)good.data, good.len - 1, &e), e, PGS_EFORMAT,
                  "does not end with a newline");
    /* One space instead of two (sha256sum's text mode marker differs). */
    memcpy(s, good.data, good.len);
    memcpy(s + SHA256_HEX_LEN, " *", 2);
    TU_ASSERT_ERR(try_sums(s, good.len, &e), e, PGS_ESUM, "manifest.json");
    /* An empty SHA256SUMS. */
    TU_ASSERT_ERR(try_sums("", 0, &e), e, PGS_ESUM, "does not list member manifest.json");
    /* A line longer than any valid one. */
    char *longl = malloc(BUNDLE_SUMS_LINE_MAX + 10);
    memset(longl, 'a', BUNDLE_SUMS_LINE_MAX + 9);
    longl[BUNDLE_SUMS_LINE_MAX + 9] = '\n';
    TU_ASSERT_ERR(try_sums(longl, BUNDLE_SUMS_LINE_MAX + 10, &e), e, PGS_ELIMIT,
                  "SHA256SUMS line 1 is too long");
    free(longl);
    free(s);
    tu_buf_free(&good);
}

static void test_bundle_reader_hostile_members(void **state)
{
    (void)state;
    pgs_error e = {0};
    member sym[] = {
        M_MANIFEST, {.name = "dump/toc.dat", .type = AE_IFLNK, .link = "/etc/passwd"}, M_END};
    TU_ASSERT_ERR(try_members(sym, 3, 1, 3, &e), e, PGS_EFORMAT,
                  "member \"dump/toc.dat\" is not a regular file");
    member dir[] = {M_MANIFEST, {.name = "dump", .type = AE_IFDIR}, M_PART1, M_END};
    TU_ASSERT_ERR(try_members(dir, 4, 1, 4, &e), e, PGS_EFORMAT, "is not a regular file");
    member fifo[] = {M_MANIFEST, {.name = "dump/part-000001", .type = AE_IFIFO}, M_END};
    TU_ASSERT_ERR(try_members(fifo, 3, 1, 3, &e), e, PGS_EFORMAT, "is not a regular file");
    member evil[] = {M_MANIFEST, M("../evil", "owned"), M_END};
    TU_ASSERT_ERR(try_members(evil, 3, 1, 3, &e), e, PGS_EFORMAT, "unexpected member \"../evil\"");
    member abs[] = {M_MANIFEST, M("/etc/cron.d/evil", "owned"), M_END};
    TU_ASSERT_ERR(try_members(abs, 3, 1, 3, &e), e, PGS_EFORMAT, "unexpected member");
    member dot[] = {M_MANIFEST, M("dump/../evil", "owned"), M_END};
    TU_ASSERT_ERR(try_members(dot, 3, 1, 3, &e), e, PGS_EFORMAT, "unexpected member");
    member sub[] = {M_MANIFEST, M("dump/a/b.dat", "owned"), M_END};
    TU_ASSERT_ERR(try_members(sub, 3, 1, 3, &e), e, PGS_EFORMAT, "unexpected member");

    char longname[300];
    memset(longname, 'a', sizeof(longname));
    memcpy(longname, "dump/", 5);
    longname[250] = '\0';
    member lng[] = {M_MANIFEST, {.name = longname, .data = "x", .len = 1}, M_END};
    TU_ASSERT_ERR(try_members(lng, 3, 1, 3, &e), e, PGS_ELIMIT,
                  "a member name is longer than 160 bytes");
}

static void test_bundle_reader_hardlink_member(void **state)
{
    (void)state;
    pgs_error e = {0};
    member hl[] = {M_MANIFEST,
                   M_PART1,
                   {.name = "dump/part-000002", .link = "dump/part-000001", .hardlink = 1},
                   M_END};
    /* pgship never writes links; a hard link must not pass for a regular member. */
    TU_ASSERT_ERR(try_members(hl, 4, 1, 4, &e), e, PGS_EFORMAT,
                  "member \"dump/part-000002\" is not a regular file");
}

static void test_bundle_reader_oversize_members(void **state)
{
    (void)state;
    pgs_error e = {0};
    size_t big = BUNDLE_MANIFEST_MAX + 1;
    char *zeros = calloc(1, big);
    member man[] = {{.name = BUNDLE_MANIFEST, .data = zeros, .len = big}, M_PART1, M_END};
    TU_ASSERT_ERR(try_members(man, 3, 1, 3, &e), e, PGS_ELIMIT,
                  "manifest.json is larger than 1048576 bytes");
    member end[] = {
        M_MANIFEST, M_PART1, {.name = BUNDLE_END, .data = zeros, .len = BUNDLE_END_MAX + 1}};
    TU_ASSERT_ERR(try_members(end, 3, 1, 3, &e), e, PGS_ELIMIT,
                  "end.json is larger than 65536 bytes");
    /* Exactly at the limits is fine. */
    member ok[] = {{.name = BUNDLE_MANIFEST, .data = zeros, .len = BUNDLE_MANIFEST_MAX},
                   M_PART1,
                   {.name = BUNDLE_END, .data = zeros, .len = BUNDLE_END_MAX}};
    assert_int_equal(try_members(ok, 3, 1, 3, &e), 0);
    free(zeros);
}

static void test_bundle_reader_incomplete_archives(void **state)
{
    (void)state;
    pgs_error e = {0};
    member nosums[] = {M_MANIFEST, M_PART1, M_END};
    TU_ASSERT_ERR(try_members(nosums, 3, 0, 0, &e), e, PGS_ETRUNC,
                  "the archive ends before its SHA256SUMS member");
    TU_ASSERT_ERR(try_members(nosums, 1, 0, 0, &e), e, PGS_ETRUNC, "ends before");
    TU_ASSERT_ERR(try_members(nosums, 0, 0, 0, &e), e, PGS_EFORMAT, "the archive holds no members");
}

static void test_bundle_reader_not_an_archive(void **state)
{
    (void)state;
    pgs_error e = {0};
    tu_buf plain = {0}, env = {0};
    uint8_t junk[5000];
    make_data(junk, sizeof(junk), 3);
    tu_buf_append(&plain, junk, sizeof(junk));
    seal(&plain, &env);
    read_result res;
    int rc = read_bundle(&env, 1, &res, &e);
    TU_ASSERT_ERR(rc, e, PGS_EFORMAT, "");
    read_result_free(&res);
    tu_buf_free(&env);

    /* Nothing at all inside the envelope. */
    plain.len = 0;
    seal(&plain, &env);
    rc = read_bundle(&env, 1, &res, &e);
    assert_true(rc == PGS_EFORMAT || rc == PGS_ETRUNC);
    read_result_free(&res);
    tu_buf_free(&env);
    tu_buf_free(&plain);
}

static void test_bundle_reader_uncompressed_tar(void **state)
{
    (void)state;
    /* pgship always writes zstd; the reader says it takes only what pgship writes. */
    member m[] = {M_MANIFEST, M_PART1, M_END};
    tu_buf s = {0}, tar = {0}, env = {0};
    sums_text(m, 3, &s);
    member all[] = {
        M_MANIFEST, M_PART1, M_END, {.name = BUNDLE_SUMS, .data = s.data, .len = s.len}};
    craft_tar(all, 4, 1, &tar);
    seal(&tar, &env);
    pgs_error e = {0};
    read_result res;
    int rc = read_bundle(&env, 1, &res, &e);
    read_result_free(&res);
    TU_ASSERT_ERR(rc, e, PGS_EFORMAT, "");
    tu_buf_free(&s);
    tu_buf_free(&tar);
    tu_buf_free(&env);
}

/* zstd-compresses in (one frame) with libarchive's raw writer. */
static void zstd_wrap(const tu_buf *in, tu_buf *out)
{
    struct archive *a = archive_write_new();
    assert_non_null(a);
    assert_int_equal(archive_write_set_format_raw(a), ARCHIVE_OK);
    assert_int_equal(archive_write_add_filter_zstd(a), ARCHIVE_OK);
    assert_int_equal(archive_write_set_bytes_in_last_block(a, 1), ARCHIVE_OK);
    assert_int_equal(archive_write_open2(a, out, NULL, tar_write_cb, NULL, NULL), ARCHIVE_OK);
    struct archive_entry *ent = archive_entry_new();
    archive_entry_set_pathname(ent, "raw");
    archive_entry_set_filetype(ent, AE_IFREG);
    assert_int_equal(archive_write_header(a, ent), ARCHIVE_OK);
    archive_entry_free(ent);
    assert_int_equal(archive_write_data(a, in->data, in->len), (la_ssize_t)in->len);
    assert_int_equal(archive_write_close(a), ARCHIVE_OK);
    archive_write_free(a);
}

static void test_bundle_reader_data_after_tar_end(void **state)
{
    (void)state;
    member m[] = {M_MANIFEST, M_PART1, M_END};
    tu_buf s = {0}, tar = {0}, env = {0};
    sums_text(m, 3, &s);
    member all[] = {
        M_MANIFEST, M_PART1, M_END, {.name = BUNDLE_SUMS, .data = s.data, .len = s.len}};
    pgs_error e = {0};
    read_result res;

    /* Bytes after the end of the zstd frame, inside the authentic envelope. */
    craft_tar(all, 4, 0, &tar);
    tu_buf_append(&tar, "hidden data after the tar", 25);
    seal(&tar, &env);
    int rc = read_bundle(&env, 1, &res, &e);
    read_result_free(&res);
    TU_ASSERT_ERR(rc, e, PGS_EFORMAT, "");
    tu_buf_free(&tar);
    tu_buf_free(&env);

    /* Bytes after the tar's end-of-archive blocks, inside the zstd frame. */
    tu_buf plain = {0};
    craft_tar(all, 4, 1, &plain);
    tu_buf_append(&plain, "hidden data after the tar", 25);
    zstd_wrap(&plain, &tar);
    seal(&tar, &env);
    rc = read_bundle(&env, 1, &res, &e);
    read_result_free(&res);
    TU_ASSERT_ERR(rc, e, PGS_ETRAIL, "follow the end of the tar");
    tu_buf_free(&plain);
    tu_buf_free(&s);
    tu_buf_free(&tar);
    tu_buf_free(&env);
}

static void test_bundle_reader_envelope_errors_pass_through(void **state)
{
    (void)state;
    member m[] = {M_MANIFEST, M_PART1, M_END};
    tu_buf s = {0}, tar = {0}, env = {0};
    sums_text(m, 3, &s);
    uint8_t *big = malloc(20000);
    make_data(big, 20000, 5);
    member all[] = {M_MANIFEST,
                    {.name = "dump/part-000001", .data = big, .len = 20000},
                    M_END,
                    {.name = BUNDLE_SUMS, .data = s.data, .len = s.len}};
    craft_tar(all, 4, 0, &tar);
    seal(&tar, &env);
    pgs_error e = {0};
    read_result res;
    /* The envelope's own codes and messages reach the bundle reader's caller. */
    size_t full = env.len;
    env.len = full - 5;
    TU_ASSERT_ERR(read_bundle(&env, 1, &res, &e), e, PGS_ETRUNC, "truncated archive");
    read_result_free(&res);
    env.len = full;
    size_t h = ENVELOPE_FIXED_LEN + ENVELOPE_RECIPIENT_LEN + ENVELOPE_MAC_LEN;
    env.data[h + ENVELOPE_FRAME_HDR + 10] ^= 1;
    TU_ASSERT_ERR(read_bundle(&env, 1, &res, &e), e, PGS_EAUTH, "chunk 0 failed authentication");
    read_result_free(&res);
    env.data[h + ENVELOPE_FRAME_HDR + 10] ^= 1;
    tu_buf_append(&env, "!", 1);
    TU_ASSERT_ERR(read_bundle(&env, 1, &res, &e), e, PGS_ETRAIL, "trailing data");
    read_result_free(&res);
    free(big);
    tu_buf_free(&s);
    tu_buf_free(&tar);
    tu_buf_free(&env);
}

/* ---- plain tar out ---- */

static int decompress(const tu_buf *env, tu_buf *out, pgs_error *e)
{
    tu_src src;
    tu_src_init(&src, env->data, env->len);
    envelope_reader *er = NULL;
    assert_int_equal(envelope_reader_new(&er, tu_src_read, &src), 0);
    int rc = envelope_reader_read_header(er, e);
    if (rc == 0)
        rc = envelope_reader_unlock(er, &g_sec, 1, e);
    if (rc == 0)
        rc = bundle_decompress(er, tu_buf_sink, out, e);
    envelope_reader_free(er);
    return rc;
}

static void test_bundle_decompress_gives_a_plain_tar(void **state)
{
    (void)state;
    tu_buf env = {0}, tar = {0};
    bundle_writer *w = NULL;
    pgs_error e = {0};
    uint8_t part[30000];
    make_data(part, sizeof(part), 9);
    new_writer(&w, &env);
    assert_int_equal(
        bundle_writer_add(w, BUNDLE_MANIFEST, MANIFEST_TEXT, strlen(MANIFEST_TEXT), &e), 0);
    assert_int_equal(bundle_writer_add(w, "dump/part-000001", part, sizeof(part), &e), 0);
    assert_int_equal(bundle_writer_add(w, BUNDLE_END, END_TEXT, strlen(END_TEXT), &e), 0);
    assert_int_equal(bundle_writer_finish(w, &e), 0);
    bundle_writer_free(w);

    int rc = decompress(&env, &tar, &e);
    if (rc != 0)
        fail_msg("decompress: %s", e.msg);
    assert_true(tar.len > sizeof(part));
    assert_int_equal(tar.len % 512, 0);

    /* libarchive reads it as a plain tar, with no filter. */
    struct archive *a = archive_read_new();
    archive_read_support_format_tar(a);
    assert_int_equal(archive_read_open_memory(a, tar.data, tar.len), ARCHIVE_OK);
    static const char *names[] = {BUNDLE_MANIFEST, "dump/part-000001", BUNDLE_END, BUNDLE_SUMS};
    struct archive_entry *ent;
    for (int i = 0; i < 4; i++) {
        assert_int_equal(archive_read_next_header(a, &ent), ARCHIVE_OK);
        assert_string_equal(archive_entry_pathname(ent), names[i]);
        if (i == 1) {
            static uint8_t back[sizeof(part)];
            assert_int_equal(archive_entry_size(ent), sizeof(part));
            assert_int_equal(archive_read_data(a, back, sizeof(back)), sizeof(part));
            assert_memory_equal(back, part, sizeof(part));
        }
    }
    assert_int_equal(archive_read_next_header(a, &ent), ARCHIVE_EOF);
    assert_int_equal(archive_filter_code(a, 0), ARCHIVE_FILTER_NONE);
    archive_read_free(a);
    tu_buf_free(&tar);

    /* A damaged envelope fails the decompression with the envelope's code. */
    env.len -= 1;
    TU_ASSERT_ERR(decompress(&env, &tar, &e), e, PGS_ETRUNC, "truncated archive");
    tu_buf_free(&tar);
    env.len += 1;
    env.data[env.len - 3] ^= 1;
    rc = decompress(&env, &tar, &e);
    TU_ASSERT_ERR(rc, e, PGS_EAUTH, "failed authentication");
    tu_buf_free(&tar);

    /* An authentic envelope around an uncompressed tar: decompress takes only zstd. */
    {
        member m[] = {M_MANIFEST, M_PART1, M_END};
        tu_buf plain = {0}, sealed = {0};
        craft_tar(m, 3, 1, &plain);
        seal(&plain, &sealed);
        TU_ASSERT_ERR(decompress(&sealed, &tar, &e), e, PGS_EFORMAT, "not zstd-compressed");
        tu_buf_free(&tar);
        tu_buf_free(&plain);
        tu_buf_free(&sealed);
    }

    /* A sink error comes back with the sink's code. */
    env.data[env.len - 3] ^= 1;
    tar.fail_after = 100;
    TU_ASSERT_ERR(decompress(&env, &tar, &e), e, PGS_EIO, "writing the tar failed");
    tu_buf_free(&tar);
    tu_buf_free(&env);
}

int main(void)
{
    tu_fixed_keypair(7, "bundle-test", &g_pub, &g_sec);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bundle_round_trip_custom_layout),
        cmocka_unit_test(test_bundle_round_trip_directory_layout),
        cmocka_unit_test(test_bundle_name_kind),
        cmocka_unit_test(test_bundle_writer_rejects_bad_use),
        cmocka_unit_test(test_bundle_writer_rejects_options),
        cmocka_unit_test(test_bundle_writer_sink_failure),
        cmocka_unit_test(test_bundle_crafted_archive_accepted),
        cmocka_unit_test(test_bundle_reader_first_member_not_manifest),
        cmocka_unit_test(test_bundle_reader_missing_part),
        cmocka_unit_test(test_bundle_reader_duplicate_members),
        cmocka_unit_test(test_bundle_reader_members_out_of_order),
        cmocka_unit_test(test_bundle_reader_member_after_sums),
        cmocka_unit_test(test_bundle_reader_sums_mismatch),
        cmocka_unit_test(test_bundle_reader_hostile_members),
        cmocka_unit_test(test_bundle_reader_hardlink_member),
        cmocka_unit_test(test_bundle_reader_oversize_members),
        cmocka_unit_test(test_bundle_reader_incomplete_archives),
        cmocka_unit_test(test_bundle_reader_not_an_archive),
        cmocka_unit_test(test_bundle_reader_uncompressed_tar),
        cmocka_unit_test(test_bundle_reader_data_after_tar_end),
        cmocka_unit_test(test_bundle_reader_envelope_errors_pass_through),
        cmocka_unit_test(test_bundle_decompress_gives_a_plain_tar),
        cmocka_unit_test(test_bundle_writer_free_unfinished_writes_nothing_more),
        cmocka_unit_test(test_bundle_writer_threaded_jobs_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
