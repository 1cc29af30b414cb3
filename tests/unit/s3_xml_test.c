/*
 * Tests of the bounded XML extractor for S3 answers (coordinator/s3_xml.c): the documents S3
 * really sends, and hostile ones: truncated at every byte, mismatched, nested too deep, values
 * and names too long, DOCTYPE and entity tricks, NUL and control bytes, markup where text is
 * expected, and documents over the size limit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "coordinator/s3_xml.h"
#include "tests/unit/testutil.h"

static const char initiate_doc[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<InitiateMultipartUploadResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\n"
    "  <Bucket>pgship</Bucket>\n"
    "  <Key>prod/a1/db/0001.pgship</Key>\n"
    "  <UploadId>VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA</UploadId>\n"
    "</InitiateMultipartUploadResult>\n";

static const char error_doc[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<Error><Code>SignatureDoesNotMatch</Code>"
    "<Message>a &amp; b &lt;c&gt; &quot;d&quot; &apos;e&apos; &#65;&#x42; caf&#xE9; &#x1F600;"
    "</Message><RequestId>4442587FB7D0A2F9</RequestId></Error>";

static const char list_doc[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
    "<Name>pgship</Name><Prefix>it/</Prefix><KeyCount>3</KeyCount><MaxKeys>1000</MaxKeys>"
    "<IsTruncated>true</IsTruncated>"
    "<Contents><Key>it/a/1.pgship</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified>"
    "<ETag>&quot;abc&quot;</ETag><Size>10</Size><StorageClass>STANDARD</StorageClass></Contents>"
    "<Contents><Key>it/a/2 &amp; more.pgship</Key><Size>20</Size></Contents>\n"
    "<Contents><Size>30</Size><Key>it/b/3.pgship</Key></Contents>"
    "<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>"
    "</ListBucketResult>";

static int get(const char *doc, const char *path, char *out, size_t cap, pgs_error *e)
{
    return s3_xml_get(doc, strlen(doc), path, out, cap, e);
}

/* ---- valid documents ---- */

static void test_s3_xml_get_upload_id(void **state)
{
    (void)state;
    char out[128];
    pgs_error e = {0};
    assert_int_equal(
        get(initiate_doc, "InitiateMultipartUploadResult/UploadId", out, sizeof(out), &e), 1);
    assert_string_equal(out, "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA");
    assert_int_equal(get(initiate_doc, "InitiateMultipartUploadResult/Key", out, sizeof(out), &e),
                     1);
    assert_string_equal(out, "prod/a1/db/0001.pgship");
}

static void test_s3_xml_get_error_decodes_entities(void **state)
{
    (void)state;
    char out[256];
    pgs_error e = {0};
    assert_int_equal(get(error_doc, "Error/Code", out, sizeof(out), &e), 1);
    assert_string_equal(out, "SignatureDoesNotMatch");
    assert_int_equal(get(error_doc, "Error/Message", out, sizeof(out), &e), 1);
    assert_string_equal(out, "a & b <c> \"d\" 'e' AB caf\xc3\xa9 \xf0\x9f\x98\x80");
}

static void test_s3_xml_get_missing_element(void **state)
{
    (void)state;
    char out[64] = "junk";
    pgs_error e = {0};
    /* Present elsewhere in the tree, but not at this path. */
    assert_int_equal(get(initiate_doc, "UploadId", out, sizeof(out), &e), 0);
    assert_string_equal(out, "");
    assert_int_equal(get(error_doc, "Error/Resource", out, sizeof(out), &e), 0);
    assert_int_equal(get(error_doc, "NotError/Code", out, sizeof(out), &e), 0);
    assert_int_equal(get("", "Error/Code", out, sizeof(out), &e), 0);
    assert_int_equal(get("  \n ", "Error/Code", out, sizeof(out), &e), 0);
}

static void test_s3_xml_get_first_match_and_empty(void **state)
{
    (void)state;
    char out[64];
    pgs_error e = {0};
    assert_int_equal(get("<E><C>one</C><C>two</C></E>", "E/C", out, sizeof(out), &e), 1);
    assert_string_equal(out, "one");
    assert_int_equal(get("<E><C/><C>two</C></E>", "E/C", out, sizeof(out), &e), 1);
    assert_string_equal(out, "");
    assert_int_equal(get("<E><C></C></E>", "E/C", out, sizeof(out), &e), 1);
    assert_string_equal(out, "");
    /* Comments inside a value are dropped; processing instructions are skipped. */
    assert_int_equal(get("<?xml version=\"1.0\"?><!-- x --><E><C>a<!-- <C>b</C> -->c</C></E>",
                         "E/C", out, sizeof(out), &e),
                     1);
    assert_string_equal(out, "ac");
    /* A quoted attribute value may hold '>' and '/'. */
    assert_int_equal(get("<E a='1>2' b=\"/>\"><C k = \"v\">x</C></E>", "E/C", out, sizeof(out), &e),
                     1);
    assert_string_equal(out, "x");
}

typedef struct list_seen {
    int n;
    char keys[4][64];
    uint64_t sizes[4];
    int stop_at;
} list_seen;

static int list_cb(void *arg, const char *frag, size_t len)
{
    list_seen *ls = arg;
    pgs_error e = {0};
    if (ls->stop_at > 0 && ls->n + 1 == ls->stop_at)
        return PGS_EINTR;
    assert_true(ls->n < 4);
    assert_int_equal(s3_xml_get(frag, len, "Key", ls->keys[ls->n], 64, &e), 1);
    assert_int_equal(s3_xml_get_u64(frag, len, "Size", &ls->sizes[ls->n], &e), 1);
    ls->n++;
    return 0;
}

static void test_s3_xml_each_list_page(void **state)
{
    (void)state;
    list_seen ls = {0};
    pgs_error e = {0};
    char out[128];
    assert_int_equal(
        s3_xml_each(list_doc, strlen(list_doc), "ListBucketResult/Contents", list_cb, &ls, &e), 3);
    assert_int_equal(ls.n, 3);
    assert_string_equal(ls.keys[0], "it/a/1.pgship");
    assert_string_equal(ls.keys[1], "it/a/2 & more.pgship");
    assert_string_equal(ls.keys[2], "it/b/3.pgship");
    assert_int_equal(ls.sizes[0], 10);
    assert_int_equal(ls.sizes[1], 20);
    assert_int_equal(ls.sizes[2], 30);
    assert_int_equal(get(list_doc, "ListBucketResult/IsTruncated", out, sizeof(out), &e), 1);
    assert_string_equal(out, "true");
    assert_int_equal(get(list_doc, "ListBucketResult/NextContinuationToken", out, sizeof(out), &e),
                     1);
    assert_string_equal(out, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
}

static void test_s3_xml_each_callback_stops(void **state)
{
    (void)state;
    list_seen ls = {0};
    ls.stop_at = 2;
    pgs_error e = {0};
    assert_int_equal(
        s3_xml_each(list_doc, strlen(list_doc), "ListBucketResult/Contents", list_cb, &ls, &e),
        PGS_EINTR);
    assert_int_equal(ls.n, 1);
}

static void test_s3_xml_each_bad_document_calls_nothing(void **state)
{
    (void)state;
    /* The first entry is fine, the document breaks after it: no callback at all. */
    const char *doc = "<L><Contents><Key>k</Key><Size>1</Size></Contents><Contents></L>";
    list_seen ls = {0};
    pgs_error e = {0};
    int rc = s3_xml_each(doc, strlen(doc), "L/Contents", list_cb, &ls, &e);
    TU_ASSERT_ERR(rc, e, PGS_EFORMAT, "does not match");
    assert_int_equal(ls.n, 0);
}

static void test_s3_xml_get_u64(void **state)
{
    (void)state;
    uint64_t v = 1;
    pgs_error e = {0};
    const char *max = "<S>18446744073709551615</S>";
    assert_int_equal(s3_xml_get_u64(max, strlen(max), "S", &v, &e), 1);
    assert_true(v == UINT64_MAX);
    const char *over = "<S>18446744073709551616</S>";
    TU_ASSERT_ERR(s3_xml_get_u64(over, strlen(over), "S", &v, &e), e, PGS_ELIMIT, "out of range");
    const char *neg = "<S>-1</S>";
    TU_ASSERT_ERR(s3_xml_get_u64(neg, strlen(neg), "S", &v, &e), e, PGS_EFORMAT, "not a decimal");
    const char *sp = "<S> 1</S>";
    TU_ASSERT_ERR(s3_xml_get_u64(sp, strlen(sp), "S", &v, &e), e, PGS_EFORMAT, "not a decimal");
    const char *empty = "<S></S>";
    TU_ASSERT_ERR(s3_xml_get_u64(empty, strlen(empty), "S", &v, &e), e, PGS_EFORMAT, "empty");
    const char *huge = "<S>000000000000000000000000000000001</S>";
    TU_ASSERT_ERR(s3_xml_get_u64(huge, strlen(huge), "S", &v, &e), e, PGS_ELIMIT, "longer");
    assert_int_equal(s3_xml_get_u64("<T>1</T>", 8, "S", &v, &e), 0);
}

/* ---- hostile documents ---- */

static void test_s3_xml_truncated_at_every_byte(void **state)
{
    (void)state;
    const char *docs[] = {initiate_doc, error_doc, list_doc};
    const char *roots[] = {"<InitiateMultipartUploadResult", "<Error>", "<ListBucketResult"};
    for (size_t d = 0; d < 3; d++) {
        size_t len = strlen(docs[d]);
        size_t whole = len;
        while (whole > 0 && docs[d][whole - 1] == '\n')
            whole--; /* trailing white space may go without harm */
        for (size_t n = 0; n < whole; n++) {
            char *copy = malloc(n + 1); /* exact size, so ASan sees any read past n */
            assert_non_null(copy);
            memcpy(copy, docs[d], n);
            copy[n] = '\0';
            char out[256];
            pgs_error e = {0};
            int rc = s3_xml_get(copy, n, "Error/Code", out, sizeof(out), &e);
            int rc2 =
                s3_xml_get(copy, n, "InitiateMultipartUploadResult/UploadId", out, sizeof(out), &e);
            /* Before the root element starts, the prefix is a declaration and white space:
             * well formed, with nothing in it. Once it has started, every cut must fail. */
            if (strstr(copy, roots[d]) == NULL) {
                assert_true(rc <= 0 && rc2 <= 0);
            } else {
                if (rc >= 0 || rc2 >= 0)
                    fail_msg("document %zu cut at %zu of %zu bytes was accepted (%d, %d)", d, n,
                             len, rc, rc2);
                assert_true(rc == PGS_ETRUNC || rc == PGS_EFORMAT);
            }
            assert_string_equal(out, "");
            free(copy);
        }
    }
}

static void expect_bad(const char *doc, const char *path, int code, const char *substr)
{
    char out[64];
    pgs_error e = {0};
    int rc = s3_xml_get(doc, strlen(doc), path, out, sizeof(out), &e);
    if (rc != code || (substr != NULL && strstr(e.msg, substr) == NULL))
        fail_msg("document \"%s\": expected %d (%s), got %d \"%s\"", doc, code,
                 substr ? substr : "", rc, e.msg);
    assert_string_equal(out, "");
}

static void test_s3_xml_mismatched_tags(void **state)
{
    (void)state;
    expect_bad("<a><b>x</a></b>", "a/b", PGS_EFORMAT, "does not match");
    expect_bad("<a>x</b>", "a", PGS_EFORMAT, "does not match");
    expect_bad("</a>", "a", PGS_EFORMAT, "without a start tag");
    expect_bad("<a>x</a></a>", "a", PGS_EFORMAT, "without a start tag");
    expect_bad("<a>x</a junk>", "a", PGS_EFORMAT, "junk in an end tag");
    expect_bad("<a><b>x</b>", "a/b", PGS_ETRUNC, "ends inside element a");
    expect_bad("<>x</>", "a", PGS_EFORMAT, "expected an element name");
    expect_bad("<1a>x</1a>", "a", PGS_EFORMAT, "expected an element name");
    expect_bad("<a/ >", "a", PGS_EFORMAT, "'/' not followed");
}

static void test_s3_xml_text_outside_root(void **state)
{
    (void)state;
    expect_bad("junk<a>x</a>", "a", PGS_EFORMAT, "text outside");
    expect_bad("<a>x</a>junk", "a", PGS_EFORMAT, "text outside");
    expect_bad("<a>x</a>&amp;", "a", PGS_EFORMAT, "text outside");
}

static void test_s3_xml_nesting_depth_limit(void **state)
{
    (void)state;
    char doc[1024] = "", path[256] = "";
    size_t o = 0, p = 0;
    for (int i = 0; i < S3_XML_MAX_DEPTH; i++) {
        o += (size_t)snprintf(doc + o, sizeof(doc) - o, "<e%d>", i);
        p += (size_t)snprintf(path + p, sizeof(path) - p, "%se%d", i ? "/" : "", i);
    }
    size_t mid = o;
    o += (size_t)snprintf(doc + o, sizeof(doc) - o, "deep");
    for (int i = S3_XML_MAX_DEPTH - 1; i >= 0; i--)
        o += (size_t)snprintf(doc + o, sizeof(doc) - o, "</e%d>", i);
    char out[64];
    pgs_error e = {0};
    assert_int_equal(s3_xml_get(doc, o, path, out, sizeof(out), &e), 1);
    assert_string_equal(out, "deep");

    /* One level more is refused, wherever the path points. */
    char deeper[1100];
    snprintf(deeper, sizeof(deeper), "%.*s<x>deep</x>%s", (int)mid, doc, doc + mid + 4);
    TU_ASSERT_ERR(s3_xml_get(deeper, strlen(deeper), "none", out, sizeof(out), &e), e, PGS_ELIMIT,
                  "nests deeper");

    /* A thousand levels: refused at the limit, without recursion or a large stack. */
    char *many = malloc(4000 * 3 + 1);
    assert_non_null(many);
    for (int i = 0; i < 4000; i++)
        memcpy(many + 3 * i, "<a>", 3);
    TU_ASSERT_ERR(s3_xml_get(many, 4000 * 3, "b", out, sizeof(out), &e), e, PGS_ELIMIT,
                  "nests deeper");
    free(many);
}

static void test_s3_xml_oversize_value_and_name(void **state)
{
    (void)state;
    char doc[512], out[16];
    pgs_error e = {0};
    /* 15 bytes fit a 16-byte buffer; 16 do not. */
    snprintf(doc, sizeof(doc), "<E><C>%s</C></E>", "123456789012345");
    assert_int_equal(s3_xml_get(doc, strlen(doc), "E/C", out, sizeof(out), &e), 1);
    assert_string_equal(out, "123456789012345");
    snprintf(doc, sizeof(doc), "<E><C>%s</C></E>", "1234567890123456");
    TU_ASSERT_ERR(s3_xml_get(doc, strlen(doc), "E/C", out, sizeof(out), &e), e, PGS_ELIMIT,
                  "longer than 15 bytes");
    assert_string_equal(out, "");
    /* An entity that would cross the bound is caught too (UTF-8 of U+1F600 is 4 bytes). */
    snprintf(doc, sizeof(doc), "<E><C>%s&#x1F600;</C></E>", "123456789012");
    TU_ASSERT_ERR(s3_xml_get(doc, strlen(doc), "E/C", out, sizeof(out), &e), e, PGS_ELIMIT,
                  "longer than");

    char name[S3_XML_MAX_NAME + 2];
    memset(name, 'n', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    snprintf(doc, sizeof(doc), "<%s>x</%s>", name, name);
    TU_ASSERT_ERR(s3_xml_get(doc, strlen(doc), "E", out, sizeof(out), &e), e, PGS_ELIMIT,
                  "name at byte 1 is longer than 64");
    name[S3_XML_MAX_NAME] = '\0';
    snprintf(doc, sizeof(doc), "<%s>x</%s>", name, name);
    assert_int_equal(s3_xml_get(doc, strlen(doc), name, out, sizeof(out), &e), 1);
}

static void test_s3_xml_refuses_doctype_and_entities(void **state)
{
    (void)state;
    /* The billion laughs: no declaration is read, so nothing can expand. */
    expect_bad("<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">"
               "<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">]>"
               "<Error><Code>&lol2;</Code></Error>",
               "Error/Code", PGS_EFORMAT, "DOCTYPE");
    expect_bad("<Error><Code><![CDATA[x]]></Code></Error>", "Error/Code", PGS_EFORMAT, "CDATA");
    expect_bad("<Error><Code>&lol;</Code></Error>", "Error/Code", PGS_EFORMAT, "unknown entity");
    expect_bad("<Error><Code>&xxe SYSTEM;</Code></Error>", "Error/Code", PGS_EFORMAT,
               "unknown entity");
    expect_bad("<Error><Code>&amp</Code></Error>", "Error/Code", PGS_EFORMAT, "unterminated");
    expect_bad("<Error><Code>&aaaaaaaaaaaaaaaaaaaaaaaa;</Code></Error>", "Error/Code", PGS_EFORMAT,
               "overlong");
    expect_bad("<Error><Code>&#0;</Code></Error>", "Error/Code", PGS_EFORMAT, "does not allow");
    expect_bad("<Error><Code>&#x1;</Code></Error>", "Error/Code", PGS_EFORMAT, "does not allow");
    expect_bad("<Error><Code>&#xD800;</Code></Error>", "Error/Code", PGS_EFORMAT, "does not allow");
    expect_bad("<Error><Code>&#x110000;</Code></Error>", "Error/Code", PGS_EFORMAT, "out of range");
    expect_bad("<Error><Code>&#99999999999999999999;</Code></Error>", "Error/Code", PGS_EFORMAT,
               NULL);
    expect_bad("<Error><Code>&#x;</Code></Error>", "Error/Code", PGS_EFORMAT, "empty");
    expect_bad("<Error><Code>&#1a;</Code></Error>", "Error/Code", PGS_EFORMAT, "bad digit");
    expect_bad("<Error><Code>x&", "Error/Code", PGS_ETRUNC, "inside an entity");
}

static void test_s3_xml_refuses_nul_and_control_bytes(void **state)
{
    (void)state;
    char out[64];
    pgs_error e = {0};
    const char doc[] = "<Error><Code>A\0B</Code></Error>";
    TU_ASSERT_ERR(s3_xml_get(doc, sizeof(doc) - 1, "Error/Code", out, sizeof(out), &e), e,
                  PGS_EFORMAT, "NUL byte");
    expect_bad("<Error><Code>A\x01"
               "B</Code></Error>",
               "Error/Code", PGS_EFORMAT, "control");
    expect_bad("<Error><Code>A\x1b[31mB</Code></Error>", "Error/Code", PGS_EFORMAT, "control");
    /* Tabs and line ends are text. */
    assert_int_equal(get("<E><C>a\tb\r\nc</C></E>", "E/C", out, sizeof(out), &e), 1);
    assert_string_equal(out, "a\tb\r\nc");
}

static void test_s3_xml_refuses_children_in_a_value(void **state)
{
    (void)state;
    expect_bad("<Error><Code><b>x</b></Code></Error>", "Error/Code", PGS_EFORMAT,
               "holds child elements");
    expect_bad("<Error><Code>x<b/></Code></Error>", "Error/Code", PGS_EFORMAT,
               "holds child elements");
}

static void test_s3_xml_refuses_bad_attributes(void **state)
{
    (void)state;
    expect_bad("<E a=1><C>x</C></E>", "E/C", PGS_EFORMAT, "without quotes");
    expect_bad("<E a><C>x</C></E>", "E/C", PGS_EFORMAT, "without '='");
    expect_bad("<E a=\"1\"b=\"2\"><C>x</C></E>", "E/C", PGS_EFORMAT, "not separated");
    expect_bad("<E a=\"<\"><C>x</C></E>", "E/C", PGS_EFORMAT, "'<'");
    expect_bad("<E a=\"1", "E/C", PGS_ETRUNC, "attribute value");
    expect_bad("<!-- never closed", "E", PGS_ETRUNC, "comment");
    expect_bad("<?xml never closed", "E", PGS_ETRUNC, "processing instruction");
}

static void test_s3_xml_refuses_oversize_document(void **state)
{
    (void)state;
    size_t n = (size_t)S3_XML_MAX_DOC + 1;
    char *doc = malloc(n);
    assert_non_null(doc);
    memset(doc, ' ', n);
    char out[8];
    pgs_error e = {0};
    TU_ASSERT_ERR(s3_xml_get(doc, n, "E", out, sizeof(out), &e), e, PGS_ELIMIT, "over the limit");
    free(doc);
}

static void test_s3_xml_bad_paths(void **state)
{
    (void)state;
    char out[8];
    pgs_error e = {0};
    TU_ASSERT_ERR(get("<a/>", "", out, sizeof(out), &e), e, PGS_EINVAL, "bad XML path");
    TU_ASSERT_ERR(get("<a/>", "a//b", out, sizeof(out), &e), e, PGS_EINVAL, "bad XML path");
    TU_ASSERT_ERR(get("<a/>", "a/", out, sizeof(out), &e), e, PGS_EINVAL, "bad XML path");
}

static void test_s3_xml_escape_round_trip(void **state)
{
    (void)state;
    const char *in = "\"etag\" & <tag> 'q' caf\xc3\xa9\ttab";
    char esc[256], doc[300], out[128];
    pgs_error e = {0};
    assert_int_equal(s3_xml_escape(in, esc, sizeof(esc)), 0);
    assert_string_equal(esc, "&quot;etag&quot; &amp; &lt;tag&gt; &apos;q&apos; caf\xc3\xa9\ttab");
    snprintf(doc, sizeof(doc), "<P><ETag>%s</ETag></P>", esc);
    assert_int_equal(get(doc, "P/ETag", out, sizeof(out), &e), 1);
    assert_string_equal(out, in);

    assert_int_equal(s3_xml_escape("a\x01"
                                   "b",
                                   esc, sizeof(esc)),
                     PGS_EINVAL);
    assert_int_equal(s3_xml_escape("&", esc, 5), PGS_ELIMIT); /* "&amp;" needs 6 bytes */
    assert_int_equal(s3_xml_escape("&", esc, 6), 0);
    assert_string_equal(esc, "&amp;");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_s3_xml_get_upload_id),
        cmocka_unit_test(test_s3_xml_get_error_decodes_entities),
        cmocka_unit_test(test_s3_xml_get_missing_element),
        cmocka_unit_test(test_s3_xml_get_first_match_and_empty),
        cmocka_unit_test(test_s3_xml_each_list_page),
        cmocka_unit_test(test_s3_xml_each_callback_stops),
        cmocka_unit_test(test_s3_xml_each_bad_document_calls_nothing),
        cmocka_unit_test(test_s3_xml_get_u64),
        cmocka_unit_test(test_s3_xml_truncated_at_every_byte),
        cmocka_unit_test(test_s3_xml_mismatched_tags),
        cmocka_unit_test(test_s3_xml_text_outside_root),
        cmocka_unit_test(test_s3_xml_nesting_depth_limit),
        cmocka_unit_test(test_s3_xml_oversize_value_and_name),
        cmocka_unit_test(test_s3_xml_refuses_doctype_and_entities),
        cmocka_unit_test(test_s3_xml_refuses_nul_and_control_bytes),
        cmocka_unit_test(test_s3_xml_refuses_children_in_a_value),
        cmocka_unit_test(test_s3_xml_refuses_bad_attributes),
        cmocka_unit_test(test_s3_xml_refuses_oversize_document),
        cmocka_unit_test(test_s3_xml_bad_paths),
        cmocka_unit_test(test_s3_xml_escape_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
