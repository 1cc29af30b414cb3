/*
 * Tests of the strict INI layer (common/ini.c): every type and its refusals, defaults, named
 * sections in file order, each class of error with its file:line message, the file checks, and
 * hostile input (NULs, control characters, long lines, large files, many sections, CRLF, BOM,
 * odd whitespace, continuation lines, inih's 49-byte section names).
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

#include "common/ini.h"
#include "tests/unit/testutil.h"

typedef struct t_main {
    char *str;
    int flag;
    uint64_t num;
    uint64_t size;
    int color;
    char *path;
    ini_list paths;
    char *url;
    char *secret;
    char *req;
    char *file;
    char *private_file;
    ini_src src;
} t_main;

typedef struct t_item {
    char *name;
    char *value;
    uint64_t weight;
    ini_src src;
} t_item;

typedef struct t_other {
    char *note;
    ini_src src;
} t_other;

static const char *const colors[] = {"red", "green", "blue", NULL};
static const char *const schemes[] = {"tls+tcp", "tcp", "ipc", NULL};

#define M(f) offsetof(t_main, f)
static const ini_key main_keys[] = {
    {"str", INI_STRING, 0, "hello", 0, 0, NULL, M(str)},
    {"flag", INI_BOOL, 0, "false", 0, 0, NULL, M(flag)},
    {"num", INI_UINT, 0, "7", 1, 100, NULL, M(num)},
    {"size", INI_SIZE, 0, "1M", 1024, UINT64_C(1) << 40, NULL, M(size)},
    {"color", INI_ENUM, 0, "green", 0, 0, colors, M(color)},
    {"path", INI_PATH, 0, NULL, 0, 0, NULL, M(path)},
    {"paths", INI_PATHS, 0, NULL, 0, 0, NULL, M(paths)},
    {"url", INI_URL, INI_OFF, "tls+tcp://0.0.0.0:7433", 0, 0, schemes, M(url)},
    {"secret", INI_STRING, INI_SECRET, NULL, 0, 0, NULL, M(secret)},
    {"req", INI_STRING, INI_REQUIRED, NULL, 0, 0, NULL, M(req)},
    {"file", INI_PATH, INI_FILE, NULL, 0, 0, NULL, M(file)},
    {"private_file", INI_PATH, INI_PRIVATE, NULL, 0, 0, NULL, M(private_file)},
};
#define I(f) offsetof(t_item, f)
static const ini_key item_keys[] = {
    {"value", INI_STRING, INI_REQUIRED, NULL, 0, 0, NULL, I(value)},
    {"weight", INI_UINT, 0, "1", 0, 1000, NULL, I(weight)},
};
static const ini_key other_keys[] = {
    {"note", INI_STRING, 0, NULL, 0, 0, NULL, offsetof(t_other, note)},
};

static const ini_section specs[] = {
    {"main", 0, 1, main_keys, sizeof(main_keys) / sizeof(main_keys[0]), sizeof(t_main), 0, M(src)},
    {"item", 1, 0, item_keys, sizeof(item_keys) / sizeof(item_keys[0]), sizeof(t_item), I(name),
     I(src)},
    {"other", 0, 0, other_keys, 1, sizeof(t_other), 0, offsetof(t_other, src)},
};
#define NSPECS (sizeof(specs) / sizeof(specs[0]))

typedef struct doc {
    t_main main;
    t_other other;
    ini_target t[NSPECS];
    pgs_error e;
} doc;

static int parse_len(doc *d, const char *text, size_t len)
{
    memset(d, 0, sizeof(*d));
    d->t[0].one = &d->main;
    d->t[2].one = &d->other;
    return ini_parse_buffer("t.conf", text, len, specs, NSPECS, d->t, &d->e);
}

static int parse(doc *d, const char *text)
{
    return parse_len(d, text, strlen(text));
}

static void done(doc *d)
{
    ini_free(specs, NSPECS, d->t);
}

static t_item *item(doc *d, size_t i)
{
    assert_true(i < d->t[1].count);
    return (t_item *)d->t[1].many + i;
}

/* Parses text and expects failure with code and exactly message msg. */
static void expect_error(const char *text, int code, const char *msg)
{
    doc d;
    int rc = parse(&d, text);
    if (rc != code || d.e.code != code || strcmp(d.e.msg, msg) != 0)
        fail_msg("input:\n%s\nexpected %d \"%s\"\ngot      %d \"%s\"", text, code, msg, rc,
                 d.e.msg);
    done(&d);
}

static void expect_ok(doc *d, const char *text)
{
    if (parse(d, text) != 0)
        fail_msg("input:\n%s\nunexpected error: %s", text, d->e.msg);
}

/* ---- types and defaults ---- */

static void test_ini_every_type_parses(void **state)
{
    (void)state;
    doc d;
    expect_ok(&d, "# comment\n"
                  "; another\n"
                  "[main]\n"
                  "str = some text ; with # comment characters\n"
                  "flag = YES\n"
                  "num = 0042\n"
                  "size = 16 MiB\n"
                  "color = blue\n"
                  "path = /etc/pgship/x\n"
                  "paths = /a/one.pub ,/b/two.pub,  /c/three.pub\n"
                  "url = ipc:///run/pgship.sock\n"
                  "secret = password=hunter2\n"
                  "req = x=y=z\n");
    assert_string_equal(d.main.str, "some text ; with # comment characters");
    assert_int_equal(d.main.flag, 1);
    assert_int_equal(d.main.num, 42);
    assert_int_equal(d.main.size, 16u << 20);
    assert_int_equal(d.main.color, 2);
    assert_string_equal(d.main.path, "/etc/pgship/x");
    assert_int_equal(d.main.paths.n, 3);
    assert_string_equal(d.main.paths.items[0], "/a/one.pub");
    assert_string_equal(d.main.paths.items[1], "/b/two.pub");
    assert_string_equal(d.main.paths.items[2], "/c/three.pub");
    assert_string_equal(d.main.url, "ipc:///run/pgship.sock");
    assert_string_equal(d.main.secret, "password=hunter2");
    assert_string_equal(d.main.req, "x=y=z");
    assert_int_equal(d.main.src.line, 3);
    assert_int_equal(ini_key_line(&specs[0], &d.main, "str"), 4);
    assert_int_equal(ini_key_line(&specs[0], &d.main, "req"), 13);
    assert_true(ini_key_set(&specs[0], &d.main, "flag"));
    assert_false(ini_key_set(&specs[0], &d.main, "file"));
    assert_int_equal(ini_key_line(&specs[0], &d.main, "file"), 3);
    done(&d);
    assert_null(d.main.str);
    assert_null(d.main.paths.items);
}

static void test_ini_bool_spellings(void **state)
{
    (void)state;
    static const char *const yes[] = {"true", "TRUE", "yes", "on", "On", "1"};
    static const char *const no[] = {"false", "No", "off", "0"};
    char text[128];
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        doc d;
        snprintf(text, sizeof(text), "[main]\nreq=r\nflag=%s\n", yes[i]);
        expect_ok(&d, text);
        assert_int_equal(d.main.flag, 1);
        done(&d);
    }
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        doc d;
        snprintf(text, sizeof(text), "[main]\nreq=r\nflag=%s\n", no[i]);
        expect_ok(&d, text);
        assert_int_equal(d.main.flag, 0);
        done(&d);
    }
}

static void test_ini_sizes(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        uint64_t want;
    } ok[] = {{"1024", 1024},   {"2K", 2048},     {"2 KiB", 2048},
              {"3M", 3u << 20}, {"1G", 1u << 30}, {"1 TiB", UINT64_C(1) << 40},
              {"4096 B", 4096}};
    char text[128];
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        doc d;
        snprintf(text, sizeof(text), "[main]\nreq=r\nsize=%s\n", ok[i].text);
        expect_ok(&d, text);
        assert_int_equal(d.main.size, ok[i].want);
        done(&d);
    }
    expect_error("[main]\nreq=r\nsize=12 parsecs\n", PGS_EINVAL,
                 "t.conf:3: [main] size: \"12 parsecs\" is not a size (a whole number with an "
                 "optional unit: B, K, M, G, T or KiB, MiB, GiB, TiB)");
    expect_error("[main]\nreq=r\nsize=1023\n", PGS_EINVAL,
                 "t.conf:3: [main] size: 1023 is out of range (1024..1099511627776 bytes)");
    expect_error("[main]\nreq=r\nsize=2T\n", PGS_EINVAL,
                 "t.conf:3: [main] size: 2199023255552 is out of range (1024..1099511627776 "
                 "bytes)");
    expect_error("[main]\nreq=r\nsize=99999999999999999999T\n", PGS_EINVAL,
                 "t.conf:3: [main] size: \"99999999999999999999T\" is not a size (a whole number "
                 "with an optional unit: B, K, M, G, T or KiB, MiB, GiB, TiB)");
    expect_error("[main]\nreq=r\nsize=17179869184T\n", PGS_EINVAL,
                 "t.conf:3: [main] size: \"17179869184T\" is not a size (a whole number "
                 "with an optional unit: B, K, M, G, T or KiB, MiB, GiB, TiB)");
}

static void test_ini_defaults_applied(void **state)
{
    (void)state;
    doc d;
    expect_ok(&d, "[main]\nreq = r\n");
    assert_string_equal(d.main.str, "hello");
    assert_int_equal(d.main.flag, 0);
    assert_int_equal(d.main.num, 7);
    assert_int_equal(d.main.size, 1u << 20);
    assert_int_equal(d.main.color, 1);
    assert_string_equal(d.main.url, "tls+tcp://0.0.0.0:7433");
    assert_null(d.main.path);
    assert_null(d.main.secret);
    assert_int_equal(d.main.paths.n, 0);
    assert_int_equal(ini_key_line(&specs[0], &d.main, "str"), 1); /* the header's */
    /* An absent unnamed section still gets its struct, with line 0. */
    assert_int_equal(d.other.src.line, 0);
    assert_null(d.other.note);
    assert_int_equal(d.t[1].count, 0);
    assert_null(d.t[1].many);
    done(&d);
}

static void test_ini_named_sections_in_order(void **state)
{
    (void)state;
    doc d;
    expect_ok(&d, "[item zeta]\nvalue = z\n"
                  "[main]\nreq = r\n"
                  "[item alpha]\nvalue = a\nweight = 5\n"
                  "[other]\nnote = n\n"
                  "[item  Mid.dle_1-x ]\nvalue = m\n");
    assert_int_equal(d.t[1].count, 3);
    assert_string_equal(item(&d, 0)->name, "zeta");
    assert_string_equal(item(&d, 0)->value, "z");
    assert_int_equal(item(&d, 0)->weight, 1);
    assert_int_equal(item(&d, 0)->src.line, 1);
    assert_string_equal(item(&d, 1)->name, "alpha");
    assert_int_equal(item(&d, 1)->weight, 5);
    assert_int_equal(item(&d, 1)->src.line, 5);
    assert_string_equal(item(&d, 2)->name, "Mid.dle_1-x");
    assert_string_equal(item(&d, 2)->value, "m");
    assert_string_equal(d.other.note, "n");
    char label[128];
    assert_string_equal(ini_section_label(&specs[1], item(&d, 1), label, sizeof(label)),
                        "[item alpha]");
    done(&d);
}

/* inih r55 keeps only 49 bytes of a section name; ours must see all 63. */
static void test_ini_long_section_names_are_not_truncated(void **state)
{
    (void)state;
    char a[64], b[64], text[512];
    memset(a, 'a', 63);
    a[63] = '\0';
    memcpy(b, a, 64);
    b[62] = 'b';
    snprintf(text, sizeof(text), "[main]\nreq=r\n[item %s]\nvalue=1\n[item %s]\nvalue=2\n", a, b);
    doc d;
    expect_ok(&d, text);
    assert_int_equal(d.t[1].count, 2);
    assert_string_equal(item(&d, 0)->name, a);
    assert_string_equal(item(&d, 1)->name, b);
    done(&d);
    /* 64 characters is one too many. */
    snprintf(text, sizeof(text), "[main]\nreq=r\n[item %sx]\nvalue=1\n", a);
    expect_error(text, PGS_EINVAL, "t.conf:3: name of [item ...] is longer than 63 characters");
}

/* ---- each class of error ---- */

static void test_ini_unknown_section_and_key(void **state)
{
    (void)state;
    expect_error("[main]\nreq=r\n\n[nope]\n", PGS_EINVAL,
                 "t.conf:4: unknown section [nope] (expected [main], [item NAME], [other])");
    expect_error("[main]\nreq=r\nlisten = x\n", PGS_EINVAL,
                 "t.conf:3: unknown key \"listen\" in [main]");
    expect_error("[main]\nreq=r\nStr = x\n", PGS_EINVAL, "t.conf:3: unknown key \"Str\" in [main]");
    expect_error("[item a]\nvalue=1\nnote = n\n", PGS_EINVAL,
                 "t.conf:3: unknown key \"note\" in [item a]");
    expect_error("str = x\n[main]\n", PGS_EINVAL, "t.conf:1: key \"str\" before any [section]");
    expect_error("[main]\n = x\n", PGS_EFORMAT, "t.conf:2: missing key name before '='");
}

static void test_ini_duplicates_refused(void **state)
{
    (void)state;
    expect_error("[main]\nreq=r\nstr = a\n# again\nstr = b\n", PGS_EINVAL,
                 "t.conf:5: duplicate key str in [main] (first set on line 3)");
    expect_error("[main]\nreq=r\n[item a]\nvalue=1\n[item b]\nvalue=2\n[item a]\nvalue=3\n",
                 PGS_EINVAL, "t.conf:7: duplicate section [item a] (first on line 3)");
    expect_error("[main]\nreq=r\n[item Db]\nvalue=1\n[item dB]\nvalue=2\n", PGS_EINVAL,
                 "t.conf:5: duplicate section [item dB] (first on line 3, names differing only "
                 "in case are the same name)");
    expect_error("[main]\nreq=r\n[other]\n[main]\n", PGS_EINVAL,
                 "t.conf:4: section [main] appears twice (first on line 1); merge them");
}

static void test_ini_bad_values(void **state)
{
    (void)state;
    expect_error("[main]\nreq=r\nflag = maybe\n", PGS_EINVAL,
                 "t.conf:3: [main] flag: \"maybe\" is not a boolean (use true or false)");
    expect_error("[main]\nreq=r\nnum = -1\n", PGS_EINVAL,
                 "t.conf:3: [main] num: \"-1\" is not a whole number");
    expect_error("[main]\nreq=r\nnum = 0x10\n", PGS_EINVAL,
                 "t.conf:3: [main] num: \"0x10\" is not a whole number");
    expect_error("[main]\nreq=r\nnum = 1 2\n", PGS_EINVAL,
                 "t.conf:3: [main] num: \"1 2\" is not a whole number");
    expect_error("[main]\nreq=r\nnum = 101\n", PGS_EINVAL,
                 "t.conf:3: [main] num: 101 is out of range (1..100)");
    expect_error("[main]\nreq=r\nnum = 0\n", PGS_EINVAL,
                 "t.conf:3: [main] num: 0 is out of range (1..100)");
    expect_error("[main]\nreq=r\nnum = 18446744073709551616\n", PGS_EINVAL,
                 "t.conf:3: [main] num: \"18446744073709551616\" is not a whole number");
    expect_error("[main]\nreq=r\ncolor = Red\n", PGS_EINVAL,
                 "t.conf:3: [main] color: \"Red\" is not one of: red, green, blue");
    expect_error("[main]\nreq=r\npath = etc/x\n", PGS_EINVAL,
                 "t.conf:3: [main] path: \"etc/x\" is not an absolute path");
    expect_error("[main]\nreq=r\npaths = /a,,/b\n", PGS_EINVAL,
                 "t.conf:3: [main] paths: empty item in the list (items are separated by commas)");
    expect_error("[main]\nreq=r\npaths = /a,\n", PGS_EINVAL,
                 "t.conf:3: [main] paths: empty item in the list (items are separated by commas)");
    expect_error("[main]\nreq=r\npaths = /a, b\n", PGS_EINVAL,
                 "t.conf:3: [main] paths: \"b\" is not an absolute path");
    expect_error("[main]\nreq=r\nurl = http://x:1\n", PGS_EINVAL,
                 "t.conf:3: [main] url: scheme \"http\" is not allowed here (expected one of "
                 "tls+tcp://, tcp://, ipc://)");
    expect_error("[main]\nreq=r\nurl = tcp://host\n", PGS_EINVAL,
                 "t.conf:3: [main] url: tcp URL needs a port (tcp://host:port)");
    expect_error("[main]\nreq=r\nstr =\n", PGS_EINVAL,
                 "t.conf:3: [main] str: empty value (leave the key out to use its default)");
    expect_error("[main]\nreq=r\nstr =   \t \n", PGS_EINVAL,
                 "t.conf:3: [main] str: empty value (leave the key out to use its default)");

    char text[INI_LINE_MAX + 64];
    int n = snprintf(text, sizeof(text), "[main]\nreq=r\npaths = ");
    for (int i = 0; i < INI_LIST_MAX + 1; i++)
        n += snprintf(text + n, sizeof(text) - (size_t)n, "%s/k%d.pub", i ? "," : "", i);
    snprintf(text + n, sizeof(text) - (size_t)n, "\n");
    expect_error(text, PGS_ELIMIT, "t.conf:3: [main] paths: more than 32 items in the list");
}

/* A secret value is never quoted in a message. */
static void test_ini_secret_value_never_echoed(void **state)
{
    (void)state;
    doc d;
    char text[INI_VALUE_MAX + 64];
    int n = snprintf(text, sizeof(text), "[main]\nreq=r\nsecret = hunter2");
    memset(text + n, 'x', INI_VALUE_MAX);
    text[n + INI_VALUE_MAX] = '\0';
    strcat(text, "\n");
    assert_int_equal(parse(&d, text), PGS_ELIMIT);
    assert_string_equal(d.e.msg, "t.conf:3: [main] secret: value is longer than 4096 bytes");
    done(&d);
}

static void test_ini_missing_required(void **state)
{
    (void)state;
    expect_error("[main]\nstr = s\n", PGS_EINVAL, "t.conf:1: [main]: missing required key req");
    expect_error("[main]\nreq=r\n\n[item a]\nweight = 3\n", PGS_EINVAL,
                 "t.conf:4: [item a]: missing required key value");
    /* An empty named section exists (inih alone would not report it). */
    expect_error("[main]\nreq=r\n[item a]\n", PGS_EINVAL,
                 "t.conf:3: [item a]: missing required key value");
    expect_error("[other]\nnote = x\n", PGS_EINVAL, "t.conf: missing section [main]");
    expect_error("", PGS_EINVAL, "t.conf: missing section [main]");
}

static void test_ini_section_header_errors(void **state)
{
    (void)state;
    expect_error("[main\nreq=r\n", PGS_EFORMAT, "t.conf:1: section header without a closing ']'");
    expect_error("[main] ; comment\n", PGS_EFORMAT,
                 "t.conf:1: text after the ']' of a section header (comments go on their own "
                 "line)");
    expect_error("[main]]\n", PGS_EFORMAT,
                 "t.conf:1: text after the ']' of a section header (comments go on their own "
                 "line)");
    expect_error("[ ]\n", PGS_EFORMAT, "t.conf:1: empty section header");
    expect_error("[main]\nreq=r\n[item a b]\n", PGS_EFORMAT,
                 "t.conf:3: a section header holds a kind and at most one name");
    expect_error("[main]\nreq=r\n[item]\n", PGS_EINVAL,
                 "t.conf:3: section [item] needs a name: [item NAME]");
    expect_error("[main x]\n", PGS_EINVAL, "t.conf:1: section [main] takes no name");
    expect_error("[main]\nreq=r\n[item ../etc]\n", PGS_EINVAL,
                 "t.conf:3: section name \"../etc\" is not valid: use 1-63 of A-Z a-z 0-9 . _ - "
                 "(not starting with . or -)");
    expect_error("[main]\nreq=r\n[item -x]\n", PGS_EINVAL,
                 "t.conf:3: section name \"-x\" is not valid: use 1-63 of A-Z a-z 0-9 . _ - "
                 "(not starting with . or -)");
    expect_error("[main]\nreq=r\n[item a=b]\n", PGS_EINVAL,
                 "t.conf:3: section name \"a=b\" is not valid: use 1-63 of A-Z a-z 0-9 . _ - "
                 "(not starting with . or -)");
}

static void test_ini_syntax_errors(void **state)
{
    (void)state;
    expect_error("[main]\nreq=r\njust words\n", PGS_EFORMAT,
                 "t.conf:3: expected \"key = value\", a [section] or a comment (lines do not "
                 "continue on the next one)");
    expect_error("[main]\nreq = r\nstr: x\n", PGS_EFORMAT,
                 "t.conf:3: use '=' between key and value (not ':')");
    /* Continuation lines (configparser style) are refused, not glued to the value. */
    expect_error("[main]\nreq=r\nstr = first\n   second line\n", PGS_EFORMAT,
                 "t.conf:4: expected \"key = value\", a [section] or a comment (lines do not "
                 "continue on the next one)");
    /* An indented pair is an ordinary pair, so an indented repeat is a duplicate. */
    expect_error("[main]\nreq=r\nstr = first\n   str = second\n", PGS_EINVAL,
                 "t.conf:4: duplicate key str in [main] (first set on line 3)");
    /* The first error wins, even when a later line has another. */
    expect_error("[main]\nreq=r\nbogus\nnope = 1\n", PGS_EFORMAT,
                 "t.conf:3: expected \"key = value\", a [section] or a comment (lines do not "
                 "continue on the next one)");
    expect_error("[main]\nreq=r\nnope = 1\nbogus\n", PGS_EINVAL,
                 "t.conf:3: unknown key \"nope\" in [main]");
}

/* ---- hostile input ---- */

static void test_ini_nul_and_control_bytes(void **state)
{
    (void)state;
    doc d;
    static const char nul[] = "[main]\nreq=r\nstr = a\0b\n";
    assert_int_equal(parse_len(&d, nul, sizeof(nul) - 1), PGS_EFORMAT);
    assert_string_equal(d.e.msg, "t.conf:3: NUL byte in the file");
    done(&d);
    expect_error("[main]\nreq=r\nstr = a\x01"
                 "b\n",
                 PGS_EFORMAT, "t.conf:3: control character 0x01");
    expect_error("[main]\nreq=r\nstr = a\x7f\n", PGS_EFORMAT, "t.conf:3: control character 0x7f");
    expect_error("[main]\nreq=r\nstr = a\rb\n", PGS_EFORMAT,
                 "t.conf:3: carriage return inside a line (only CRLF line ends are accepted)");
    expect_error("[main]\nreq=r\nstr = a\r", PGS_EFORMAT,
                 "t.conf:3: carriage return inside a line (only CRLF line ends are accepted)");
    expect_error("[main]\nreq=r\nstr =\va\n", PGS_EFORMAT, "t.conf:3: control character 0x0b");
    expect_error("[main]\nreq=r\nstr = a\f\n", PGS_EFORMAT, "t.conf:3: control character 0x0c");
    expect_error("[main]\nreq=r\n\x1b[31m\n", PGS_EFORMAT, "t.conf:3: control character 0x1b");
}

static void test_ini_crlf_bom_and_whitespace(void **state)
{
    (void)state;
    doc d;
    expect_ok(&d, "\xEF\xBB\xBF[main]\r\nreq=r\r\n\tstr\t=\t tabbed value \t\r\n  # indented "
                  "comment\r\n\r\n[item a]\r\nvalue = 1\r\n");
    assert_string_equal(d.main.str, "tabbed value");
    assert_string_equal(d.main.req, "r");
    assert_string_equal(item(&d, 0)->value, "1");
    assert_int_equal(item(&d, 0)->src.line, 6);
    done(&d);
    /* No final newline. */
    expect_ok(&d, "[main]\nreq = last");
    assert_string_equal(d.main.req, "last");
    done(&d);
    /* A BOM anywhere else is just bytes: here it makes an unknown key. */
    expect_error("[main]\nreq=r\n\xEF\xBB\xBFstr = x\n", PGS_EINVAL,
                 "t.conf:3: unknown key \"\xEF\xBB\xBFstr\" in [main]");
    /* A no-break space is not whitespace. */
    expect_error("[main]\nreq=r\nstr\xC2\xA0= x\n", PGS_EINVAL,
                 "t.conf:3: unknown key \"str\xC2\xA0\" in [main]");
    /* UTF-8 in values is kept as is. */
    expect_ok(&d, "[main]\nreq = gr\xC3\xBC\xC3\x9F"
                  "e\n");
    assert_string_equal(d.main.req, "gr\xC3\xBC\xC3\x9F"
                                    "e");
    done(&d);
}

static void test_ini_long_lines_and_values(void **state)
{
    (void)state;
    doc d;
    size_t cap = INI_LINE_MAX + 128;
    char *text = malloc(cap);
    assert_non_null(text);

    /* A comment of exactly INI_LINE_MAX bytes passes; one more byte does not. */
    int n = snprintf(text, cap, "[main]\nreq=r\n#");
    memset(text + n, 'c', INI_LINE_MAX - 1);
    strcpy(text + n + INI_LINE_MAX - 1, "\r\nstr = after\n");
    expect_ok(&d, text);
    assert_string_equal(d.main.str, "after");
    done(&d);
    memset(text + n, 'c', INI_LINE_MAX);
    strcpy(text + n + INI_LINE_MAX, "\nstr = after\n");
    expect_error(text, PGS_ELIMIT, "t.conf:3: line is longer than 8192 bytes");

    /* A value of INI_VALUE_MAX bytes passes; one more does not. */
    n = snprintf(text, cap, "[main]\nreq=r\nstr = ");
    memset(text + n, 'v', INI_VALUE_MAX);
    strcpy(text + n + INI_VALUE_MAX, "\n");
    expect_ok(&d, text);
    assert_int_equal(strlen(d.main.str), INI_VALUE_MAX);
    done(&d);
    memset(text + n, 'v', INI_VALUE_MAX + 1);
    strcpy(text + n + INI_VALUE_MAX + 1, "\n");
    expect_error(text, PGS_ELIMIT, "t.conf:3: [main] str: value is longer than 4096 bytes");
    free(text);
}

static void test_ini_file_size_limit(void **state)
{
    doc d;
    size_t len = INI_FILE_MAX + 1;
    char *text = malloc(len);
    assert_non_null(text);
    /* Comment lines up to the limit, then one byte more. */
    memset(text, '#', len);
    for (size_t i = 100; i < len; i += 100)
        text[i] = '\n';
    memcpy(text, "[main]\nreq=r\n", 13);
    assert_int_equal(parse_len(&d, text, len - 1), 0);
    done(&d);
    assert_int_equal(parse_len(&d, text, len), PGS_ELIMIT);
    assert_string_equal(d.e.msg, "t.conf: larger than 1048576 bytes");
    done(&d);

    /* And from a file, where the size is checked before reading. */
    char path[512];
    tu_path_in(state, "big.conf", path, sizeof(path));
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    fclose(f);
    memset(&d, 0, sizeof(d));
    d.t[0].one = &d.main;
    d.t[2].one = &d.other;
    assert_int_equal(ini_load_file(path, specs, NSPECS, d.t, &d.e), PGS_ELIMIT);
    assert_non_null(strstr(d.e.msg, "big.conf: larger than 1048576 bytes"));
    done(&d);
    free(text);
}

static void test_ini_many_sections(void **state)
{
    (void)state;
    doc d;
    size_t cap = 64 * (INI_SECTIONS_MAX + 2);
    char *text = malloc(cap);
    assert_non_null(text);
    size_t n = (size_t)snprintf(text, cap, "[main]\nreq=r\n");
    for (int i = 0; i < INI_SECTIONS_MAX; i++)
        n += (size_t)snprintf(text + n, cap - n, "[item s%d]\nvalue = %d\n", i, i);
    expect_ok(&d, text);
    assert_int_equal(d.t[1].count, INI_SECTIONS_MAX);
    assert_string_equal(item(&d, INI_SECTIONS_MAX - 1)->name, "s4095");
    assert_int_equal(item(&d, INI_SECTIONS_MAX - 1)->src.line, 2 + 2 * INI_SECTIONS_MAX - 1);
    done(&d);
    snprintf(text + n, cap - n, "[item one-too-many]\nvalue = x\n");
    expect_error(text, PGS_ELIMIT, "t.conf:8195: more than 4096 named sections");
    free(text);
}

/* ---- files ---- */

static void write_mode(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static int load_text(void **state, doc *d, const char *text)
{
    char path[512];
    tu_path_in(state, "t.conf", path, sizeof(path));
    write_mode(path, text, 0644);
    memset(d, 0, sizeof(*d));
    d->t[0].one = &d->main;
    d->t[2].one = &d->other;
    return ini_load_file(path, specs, NSPECS, d->t, &d->e);
}

static void test_ini_file_checks(void **state)
{
    char dir[512], pub[512], key[512], text[2048], want[1024];
    tu_path_in(state, "", dir, sizeof(dir));
    tu_path_in(state, "some.pub", pub, sizeof(pub));
    tu_path_in(state, "some.key", key, sizeof(key));
    write_mode(pub, "public\n", 0644);
    write_mode(key, "secret\n", 0600);
    doc d;

    snprintf(text, sizeof(text), "[main]\nreq=r\nfile = %s\nprivate_file = %s\n", pub, key);
    assert_int_equal(load_text(state, &d, text), 0);
    done(&d);

    assert_int_equal(chmod(key, 0640), 0);
    assert_int_equal(load_text(state, &d, text), PGS_EINVAL);
    snprintf(want, sizeof(want),
             "t.conf:4: [main] private_file: %s holds a secret but is accessible by group or "
             "others (mode 0640); chmod 600 it",
             key);
    assert_non_null(strstr(d.e.msg, want));
    done(&d);
    assert_int_equal(chmod(key, 0604), 0);
    assert_int_equal(load_text(state, &d, text), PGS_EINVAL);
    assert_non_null(strstr(d.e.msg, "(mode 0604)"));
    done(&d);
    assert_int_equal(chmod(key, 0400), 0);
    assert_int_equal(load_text(state, &d, text), 0);
    done(&d);

    snprintf(text, sizeof(text), "[main]\nreq=r\n\nfile = %s/missing.pub\n", dir);
    assert_int_equal(load_text(state, &d, text), PGS_EIO);
    snprintf(want, sizeof(want), "t.conf:4: [main] file: %s/missing.pub: No such file or directory",
             dir);
    assert_non_null(strstr(d.e.msg, want));
    done(&d);

    snprintf(text, sizeof(text), "[main]\nreq=r\nfile = %s\n", dir);
    assert_int_equal(load_text(state, &d, text), PGS_EINVAL);
    assert_non_null(strstr(d.e.msg, ": not a regular file"));
    done(&d);

    /* Files are checked only once the whole text is valid, and not by ini_parse_buffer. */
    snprintf(text, sizeof(text), "[main]\nreq=r\nfile = /nonexistent/x\n");
    assert_int_equal(parse(&d, text), 0);
    done(&d);

    char missing[512];
    tu_path_in(state, "nope.conf", missing, sizeof(missing));
    memset(&d, 0, sizeof(d));
    d.t[0].one = &d.main;
    d.t[2].one = &d.other;
    assert_int_equal(ini_load_file(missing, specs, NSPECS, d.t, &d.e), PGS_EIO);
    assert_non_null(strstr(d.e.msg, "nope.conf: No such file or directory"));
    assert_int_equal(ini_load_file(dir, specs, NSPECS, d.t, &d.e), PGS_EINVAL);
    assert_non_null(strstr(d.e.msg, "not a regular file"));
    done(&d);
}

/* ---- URLs and names ---- */

static void test_ini_url_parse(void **state)
{
    (void)state;
    ini_url u;
    pgs_error e;
    assert_int_equal(ini_url_parse("tls+tcp://coord.example:7433", NULL, &u, &e), 0);
    assert_string_equal(u.scheme, "tls+tcp");
    assert_string_equal(u.host, "coord.example");
    assert_int_equal(u.port, 7433);
    assert_int_equal(ini_url_parse("tcp://[::1]:1", NULL, &u, &e), 0);
    assert_string_equal(u.host, "::1");
    assert_int_equal(u.port, 1);
    assert_int_equal(ini_url_parse("ipc:///run/x.sock", NULL, &u, &e), 0);
    assert_string_equal(u.path, "/run/x.sock");
    assert_int_equal(ini_url_parse("http://127.0.0.1:7434", NULL, &u, &e), 0);
    assert_int_equal(ini_url_parse("https://s3.example/", NULL, &u, &e), 0);
    assert_int_equal(u.port, 0);
    assert_int_equal(ini_url_parse("https://minio.local:9000", NULL, &u, &e), 0);

    static const struct {
        const char *url;
        const char *msg;
    } bad[] = {
        {"coord:7433", "not a URL (expected one of tls+tcp://, tcp://, ipc://, http://, https://)"},
        {"udp://x:1", "scheme \"udp\" is not allowed here"},
        {"tcp://:7433", "URL has no host"},
        {"tcp://x:0", "port must be a number from 1 to 65535"},
        {"tcp://x:65536", "port must be a number from 1 to 65535"},
        {"tcp://x:1234567", "port must be a number from 1 to 65535"},
        {"tcp://x:", "port must be a number from 1 to 65535"},
        {"tcp://x:1/path", "unexpected \"/path\" after the host and port"},
        {"http://user:pw@x", "port must be a number"},
        {"http://user@x", "user names and passwords do not belong in URLs"},
        {"https://x/path", "unexpected \"/path\" after the host"},
        {"tcp://[::1:1", "IPv6 address without ']'"},
        {"tcp://[zz]:1", "bad character in IPv6 address"},
        {"tcp://x y:1", "unexpected \" y:1\" after the host"},
        {"ipc://relative", "ipc URL needs an absolute socket path (ipc:///path)"},
        {"ipc://", "ipc URL needs an absolute socket path (ipc:///path)"},
        {"tls+tcp://x", "tls+tcp URL needs a port (tls+tcp://host:port)"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&e, 0, sizeof(e));
        int rc = ini_url_parse(bad[i].url, NULL, &u, &e);
        if (rc != PGS_EINVAL || strstr(e.msg, bad[i].msg) == NULL)
            fail_msg("%s: got %d \"%s\", want \"%s\"", bad[i].url, rc, e.msg, bad[i].msg);
    }
}

static void test_ini_name_valid(void **state)
{
    (void)state;
    assert_true(ini_name_valid("db1"));
    assert_true(ini_name_valid("A.b_c-d"));
    assert_false(ini_name_valid(""));
    assert_false(ini_name_valid(".hidden"));
    assert_false(ini_name_valid(".."));
    assert_false(ini_name_valid("-x"));
    assert_false(ini_name_valid("a/b"));
    assert_false(ini_name_valid("a b"));
    char n[80];
    memset(n, 'n', 63);
    n[63] = '\0';
    assert_true(ini_name_valid(n));
    n[63] = 'n';
    n[64] = '\0';
    assert_false(ini_name_valid(n));
}

/* ---- printing ---- */

static void test_ini_print_marks_defaults_and_hides_secrets(void **state)
{
    (void)state;
    doc d;
    expect_ok(&d, "[main]\nreq = r\nsecret = password=hunter2\nsize = 3072\n"
                  "paths = /a.pub, /b.pub\n[item one]\nvalue = v\n");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    assert_non_null(f);
    ini_print_section(f, &specs[0], &d.main);
    ini_print_section(f, &specs[1], item(&d, 0));
    fclose(f);
    assert_null(strstr(buf, "hunter2"));
    assert_non_null(strstr(buf, "[main]\n"));
    assert_non_null(strstr(buf, "\nsecret                   = (set)\n"));
    assert_non_null(strstr(buf, "\nstr                      = hello  (default)\n"));
    assert_non_null(strstr(buf, "\nreq                      = r\n"));
    assert_non_null(strstr(buf, "\npath                     = (not set)\n"));
    assert_non_null(strstr(buf, "\nsize                     = 3 KiB\n"));
    assert_non_null(strstr(buf, "\ncolor                    = green  (default)\n"));
    assert_non_null(strstr(buf, "\nflag                     = false  (default)\n"));
    assert_non_null(strstr(buf, "\npaths                    = /a.pub, /b.pub\n"));
    assert_non_null(strstr(buf, "[item one]\nvalue                    = v\n"));
    assert_non_null(strstr(buf, "\nweight                   = 1  (default)\n"));
    free(buf);
    done(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ini_every_type_parses),
        cmocka_unit_test(test_ini_bool_spellings),
        cmocka_unit_test(test_ini_sizes),
        cmocka_unit_test(test_ini_defaults_applied),
        cmocka_unit_test(test_ini_named_sections_in_order),
        cmocka_unit_test(test_ini_long_section_names_are_not_truncated),
        cmocka_unit_test(test_ini_unknown_section_and_key),
        cmocka_unit_test(test_ini_duplicates_refused),
        cmocka_unit_test(test_ini_bad_values),
        cmocka_unit_test(test_ini_secret_value_never_echoed),
        cmocka_unit_test(test_ini_missing_required),
        cmocka_unit_test(test_ini_section_header_errors),
        cmocka_unit_test(test_ini_syntax_errors),
        cmocka_unit_test(test_ini_nul_and_control_bytes),
        cmocka_unit_test(test_ini_crlf_bom_and_whitespace),
        cmocka_unit_test(test_ini_long_lines_and_values),
        cmocka_unit_test_setup_teardown(test_ini_file_size_limit, tu_tmpdir_setup,
                                        tu_tmpdir_teardown),
        cmocka_unit_test(test_ini_many_sections),
        cmocka_unit_test_setup_teardown(test_ini_file_checks, tu_tmpdir_setup, tu_tmpdir_teardown),
        cmocka_unit_test(test_ini_url_parse),
        cmocka_unit_test(test_ini_name_valid),
        cmocka_unit_test(test_ini_print_marks_defaults_and_hides_secrets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
