/*
 * Drives dump_run (agent/dump.c) with a sink instead of an output file, as the agent daemon does
 * when it streams DATA frames, against the real PostgreSQL of dump_roundtrip.sh. Checks that the
 * result describes exactly the bytes the sink received (size, SHA-256), that the returned manifest
 * is the archive's, and that those bytes decrypt and verify with the recipient's key.
 * usage: dump_sink_check CONNINFO RECIPIENT.pub RECIPIENT.key
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/dump.h"
#include "common/sha256.h"
#include "proto/bundle.h"
#include "proto/envelope.h"
#include "proto/manifest.h"

typedef struct membuf {
    uint8_t *data;
    size_t len, cap;
    size_t calls;
} membuf;

static int mem_sink(void *arg, const void *buf, size_t len)
{
    membuf *m = arg;
    if (m->len + len > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 1 << 20;
        while (cap < m->len + len)
            cap *= 2;
        uint8_t *d = realloc(m->data, cap);
        if (d == NULL)
            return PGS_ENOMEM;
        m->data = d;
        m->cap = cap;
    }
    memcpy(m->data + m->len, buf, len);
    m->len += len;
    m->calls++;
    return 0;
}

typedef struct memsrc {
    const uint8_t *p;
    size_t left;
} memsrc;

static ssize_t mem_source(void *arg, void *buf, size_t len)
{
    memsrc *s = arg;
    size_t n = len < s->left ? len : s->left;
    memcpy(buf, s->p, n);
    s->p += n;
    s->left -= n;
    return (ssize_t)n;
}

#define CHECK(cond, ...)                                                                          \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            fprintf(stderr, "dump_sink_check: " __VA_ARGS__);                                     \
            fputc('\n', stderr);                                                                  \
            return 1;                                                                             \
        }                                                                                         \
    } while (0)

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: dump_sink_check CONNINFO RECIPIENT.pub RECIPIENT.key\n");
        return 2;
    }
    dump_opts o;
    dump_opts_init(&o);
    o.conninfo = argv[1];
    o.recipients.v[o.recipients.n++] = argv[2];
    o.part_size = 1 << 20;
    membuf mb = {0};
    o.sink = mem_sink;
    o.sink_arg = &mb;
    dump_result r;
    memset(&r, 0, sizeof(r));
    pgs_error e = {0};
    CHECK(dump_run(&o, &r, &e) == 0, "dump_run: %s", e.msg);
    CHECK(mb.calls > 1, "the sink was called %zu times", mb.calls);
    CHECK(r.archive_bytes == mb.len, "result says %llu bytes, the sink got %zu",
          (unsigned long long)r.archive_bytes, mb.len);
    sha256_ctx *h = sha256_new();
    uint8_t d[SHA256_LEN];
    sha256_update(h, mb.data, mb.len);
    sha256_final(h, d);
    sha256_free(h);
    CHECK(memcmp(d, r.sha256, SHA256_LEN) == 0, "result sha256 differs from the bytes received");
    manifest m;
    CHECK(r.manifest_json != NULL &&
              manifest_decode(r.manifest_json, strlen(r.manifest_json), &m, &e) == 0,
          "manifest: %s", e.msg);
    CHECK(strcmp(m.database, "src") == 0, "manifest names database %s", m.database);
    manifest_clear(&m);

    /* The received bytes are a complete, authentic archive: read every member. */
    pgs_seckey key;
    CHECK(key_load_secret(argv[3], &key, &e) == 0, "%s", e.msg);
    memsrc src = {mb.data, mb.len};
    envelope_reader *er = NULL;
    bundle_reader *br = NULL;
    CHECK(envelope_reader_new(&er, mem_source, &src) == 0, "out of memory");
    CHECK(envelope_reader_read_header(er, &e) == 0 && envelope_reader_unlock(er, &key, 1, &e) == 0 &&
              bundle_reader_new(&br, er, &e) == 0,
          "%s", e.msg);
    bundle_member bm;
    int rc, members = 0;
    while ((rc = bundle_reader_next(br, &bm, &e)) == 1)
        members++;
    CHECK(rc == 0, "reading the archive back: %s", e.msg);
    printf("dump_sink_check: %zu sink calls, %zu bytes, %d members, sha256 and manifest match\n",
           mb.calls, mb.len, members);
    bundle_reader_free(br);
    envelope_reader_free(er);
    key_secret_wipe(&key);
    free(r.manifest_json);
    free(mb.data);
    return 0;
}
