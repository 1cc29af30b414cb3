/*
 * Fuzzes the bounded XML extractor for S3 answers (coordinator/s3_xml.c) with the paths the S3
 * backend asks for. Besides memory safety (under ASan and UBSan), it checks the contract: a return
 * of 1, 0 or a negative code only; a found value always NUL-terminated within the buffer and empty
 * otherwise; every fragment handed to a callback inside the input; and any value found, escaped
 * with s3_xml_escape and put in a fresh document, extracted again unchanged.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "coordinator/s3_xml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *fuzz_doc;
static size_t fuzz_len;
static int fuzz_calls;

static void check_value(int rc, const char *out, size_t cap)
{
    if (rc < -20 || rc > 1)
        __builtin_trap();
    if (memchr(out, '\0', cap) == NULL)
        __builtin_trap();
    if (rc != 1) {
        if (out[0] != '\0')
            __builtin_trap();
        return;
    }
    /* What was decoded must survive being written back. */
    char esc[64 * 6 + 1], doc[64 * 6 + 32], again[64];
    pgs_error e;
    if (s3_xml_escape(out, esc, sizeof(esc)) != 0)
        __builtin_trap();
    size_t n = (size_t)snprintf(doc, sizeof(doc), "<R><V>%s</V></R>", esc);
    if (s3_xml_get(doc, n, "R/V", again, sizeof(again), &e) != 1 || strcmp(again, out) != 0)
        __builtin_trap();
}

static int each_cb(void *arg, const char *frag, size_t len)
{
    (void)arg;
    if (frag < fuzz_doc || frag + len > fuzz_doc + fuzz_len)
        __builtin_trap();
    fuzz_calls++;
    char key[64];
    uint64_t v;
    pgs_error e;
    check_value(s3_xml_get(frag, len, "Key", key, sizeof(key), &e), key, sizeof(key));
    int rc = s3_xml_get_u64(frag, len, "Size", &v, &e);
    if (rc < -20 || rc > 1)
        __builtin_trap();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *paths[] = {
        "Error/Code",
        "Error/Message",
        "InitiateMultipartUploadResult/UploadId",
        "ListBucketResult/IsTruncated",
        "ListBucketResult/NextContinuationToken",
        "a",
        "a/b",
    };
    const char *doc = (const char *)data;
    char out[64];
    pgs_error e;
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        memset(out, 'x', sizeof(out));
        check_value(s3_xml_get(doc, size, paths[i], out, sizeof(out), &e), out, sizeof(out));
    }
    fuzz_doc = doc;
    fuzz_len = size;
    fuzz_calls = 0;
    int n = s3_xml_each(doc, size, "ListBucketResult/Contents", each_cb, NULL, &e);
    if (n >= 0 && n != fuzz_calls)
        __builtin_trap();
    if (n < 0 && fuzz_calls != 0)
        __builtin_trap(); /* a bad document reaches no callback */
    return 0;
}
