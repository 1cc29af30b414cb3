/*
 * Tests of recipient keys (common/keys.c): key files as keygen writes them (modes, refusal to
 * overwrite, names), loading them back, the key id, and the strict parser's refusals. Every test
 * gets its own temporary directory.
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
#include <sodium.h>

#include "common/fsutil.h"
#include "common/keys.h"
#include "tests/unit/testutil.h"

#define PUB_TAG "pgship-public-key-v1"
#define SEC_TAG "pgship-secret-key-v1"
/* base64 of 32 bytes 0x00..0x1f. */
#define B64_32 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
/* The id of the public key 0x00..0x1f, computed once and pinned. */
#define GOLDEN_KEY_ID "36a7131a1baa09e0"


static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static size_t read_file(const char *path, char *buf, size_t cap)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
    return n;
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* ---- files ---- */

static void test_keys_generate_files_modes_and_content(void **state)
{
    char prefix[512], pub[600], sec[600];
    tu_path_in(state, "alice", prefix, sizeof(prefix));
    snprintf(pub, sizeof(pub), "%s.pub", prefix);
    snprintf(sec, sizeof(sec), "%s.key", prefix);
    pgs_pubkey pk;
    pgs_error e = {0};
    int rc = key_generate_files(prefix, &pk, &e);
    if (rc != 0)
        fail_msg("%s", e.msg);
    struct stat st;
    assert_int_equal(stat(pub, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0644);
    assert_int_equal(stat(sec, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    assert_string_equal(pk.name, "alice");

    char id[KEY_ID_HEX_LEN + 1], text[KEY_FILE_MAX + 1], want[128];
    key_id_hex(pk.id, id);
    read_file(pub, text, sizeof(text));
    snprintf(want, sizeof(want), "# pgship public key \"alice\", key id %s.\n" PUB_TAG " x25519 ",
             id);
    assert_int_equal(strncmp(text, want, strlen(want)), 0);
    assert_non_null(strstr(text, " alice\n"));
    read_file(sec, text, sizeof(text));
    assert_non_null(strstr(text, id));
    assert_non_null(strstr(text, "\n" SEC_TAG " x25519 "));

    /* Loading both gives the same key and id. */
    pgs_pubkey lp;
    pgs_seckey ls;
    assert_int_equal(key_load_public(pub, &lp, &e), 0);
    assert_int_equal(key_load_secret(sec, &ls, &e), 0);
    assert_memory_equal(lp.pk, pk.pk, KEY_LEN);
    assert_memory_equal(lp.id, pk.id, KEY_ID_LEN);
    assert_memory_equal(ls.pk, pk.pk, KEY_LEN);
    assert_memory_equal(ls.id, pk.id, KEY_ID_LEN);
    assert_string_equal(lp.name, "alice");
    assert_string_equal(ls.name, "alice");

    /* The pair works: what is sealed to the public key opens with the secret one. */
    uint8_t sealed[crypto_box_SEALBYTES + 4], opened[4];
    assert_int_equal(crypto_box_seal(sealed, (const uint8_t *)"ping", 4, lp.pk), 0);
    assert_int_equal(crypto_box_seal_open(opened, sealed, sizeof(sealed), ls.pk, ls.sk), 0);
    assert_memory_equal(opened, "ping", 4);
    key_secret_wipe(&ls);
    uint8_t zero[sizeof(ls)] = {0};
    assert_memory_equal(&ls, zero, sizeof(ls));

    /* A second pair is a different key. */
    pgs_pubkey pk2;
    tu_path_in(state, "bob", prefix, sizeof(prefix));
    assert_int_equal(key_generate_files(prefix, &pk2, &e), 0);
    assert_memory_not_equal(pk2.pk, pk.pk, KEY_LEN);
    assert_memory_not_equal(pk2.id, pk.id, KEY_ID_LEN);
    assert_int_equal(key_generate_files(prefix, NULL, &e), PGS_EEXIST);
}

static void test_keys_generate_refuses_to_overwrite(void **state)
{
    char prefix[512], pub[600], sec[600], text[KEY_FILE_MAX + 1], before_pub[KEY_FILE_MAX + 1],
        before_sec[KEY_FILE_MAX + 1];
    tu_path_in(state, "ops", prefix, sizeof(prefix));
    snprintf(pub, sizeof(pub), "%s.pub", prefix);
    snprintf(sec, sizeof(sec), "%s.key", prefix);
    pgs_error e = {0};

    /* Both exist. */
    assert_int_equal(key_generate_files(prefix, NULL, &e), 0);
    read_file(pub, before_pub, sizeof(before_pub));
    read_file(sec, before_sec, sizeof(before_sec));
    TU_ASSERT_ERR(key_generate_files(prefix, NULL, &e), e, PGS_EEXIST,
                  "exists, refusing to overwrite a key");
    assert_non_null(strstr(e.msg, sec));
    read_file(pub, text, sizeof(text));
    assert_string_equal(text, before_pub);
    read_file(sec, text, sizeof(text));
    assert_string_equal(text, before_sec);

    /* Only the public file exists: it stays as it was, and no secret file is left behind. */
    assert_int_equal(unlink(sec), 0);
    write_file(pub, "precious\n", 9, 0644);
    TU_ASSERT_ERR(key_generate_files(prefix, NULL, &e), e, PGS_EEXIST, "refusing to overwrite");
    assert_non_null(strstr(e.msg, pub));
    read_file(pub, text, sizeof(text));
    assert_string_equal(text, "precious\n");
    assert_false(exists(sec));

    /* Only the secret file exists: it stays, and no public file appears. */
    assert_int_equal(unlink(pub), 0);
    write_file(sec, "precious secret\n", 16, 0600);
    TU_ASSERT_ERR(key_generate_files(prefix, NULL, &e), e, PGS_EEXIST, "refusing to overwrite");
    read_file(sec, text, sizeof(text));
    assert_string_equal(text, "precious secret\n");
    assert_false(exists(pub));

    /* A symlink in the way is not followed. */
    assert_int_equal(unlink(sec), 0);
    char target[600];
    tu_path_in(state, "target", target, sizeof(target));
    assert_int_equal(symlink(target, sec), 0);
    assert_true(key_generate_files(prefix, NULL, &e) < 0);
    assert_false(exists(target));
    assert_false(exists(pub));
}

static void test_keys_generate_validates_names(void **state)
{
    static const char *bad[] = {".hidden", "-dash", "a b",         "tab\tname",
                                "sl\\ash", "",      "caf\xc3\xa9", "a:b"};
    pgs_error e = {0};
    char prefix[512];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tu_path_in(state, bad[i], prefix, sizeof(prefix));
        TU_ASSERT_ERR(key_generate_files(prefix, NULL, &e), e, PGS_EINVAL, "is not valid");
    }
    char *longname = malloc(KEY_NAME_MAX + 2);
    memset(longname, 'k', KEY_NAME_MAX + 1);
    longname[KEY_NAME_MAX + 1] = '\0';
    tu_path_in(state, longname, prefix, sizeof(prefix));
    TU_ASSERT_ERR(key_generate_files(prefix, NULL, &e), e, PGS_EINVAL, "is not valid");
    longname[KEY_NAME_MAX] = '\0'; /* 63 is fine */
    tu_path_in(state, longname, prefix, sizeof(prefix));
    assert_int_equal(key_generate_files(prefix, NULL, &e), 0);
    free(longname);
    /* Nothing was created for the refused names. */
    char check[600];
    snprintf(check, sizeof(check), "%s/.hidden.key", (const char *)*state);
    assert_false(exists(check));
    /* A bare name (no directory) is checked the same way. */
    TU_ASSERT_ERR(key_generate_files("bad name", NULL, &e), e, PGS_EINVAL, "bad name");

    /* key_name_valid directly. */
    assert_true(key_name_valid("a"));
    assert_true(key_name_valid("ops.2026_escrow-B"));
    assert_true(key_name_valid("9lives"));
    assert_false(key_name_valid(""));
    assert_false(key_name_valid(".a"));
    assert_false(key_name_valid("-a"));
    assert_false(key_name_valid("a/b"));
    assert_false(key_name_valid("a b"));
}

static void test_keys_secret_file_mode_refused(void **state)
{
    char prefix[512], sec[600];
    tu_path_in(state, "carol", prefix, sizeof(prefix));
    snprintf(sec, sizeof(sec), "%s.key", prefix);
    pgs_error e = {0};
    assert_int_equal(key_generate_files(prefix, NULL, &e), 0);
    pgs_seckey sk;
    static const mode_t bad[] = {0644, 0640, 0604, 0660, 0601};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(chmod(sec, bad[i]), 0);
        char mode[16];
        snprintf(mode, sizeof(mode), "mode %04o", (unsigned)bad[i]);
        TU_ASSERT_ERR(key_load_secret(sec, &sk, &e), e, PGS_EINVAL,
                      "secret key file is accessible by group or others");
        assert_non_null(strstr(e.msg, mode));
        assert_non_null(strstr(e.msg, sec));
        assert_non_null(strstr(e.msg, "chmod 600"));
    }
    assert_int_equal(chmod(sec, 0400), 0);
    assert_int_equal(key_load_secret(sec, &sk, &e), 0);
    key_secret_wipe(&sk);
}

static void test_keys_load_errors_name_the_file(void **state)
{
    char path[600];
    pgs_error e = {0};
    pgs_pubkey pk;
    pgs_seckey sk;
    tu_path_in(state, "missing.pub", path, sizeof(path));
    TU_ASSERT_ERR(key_load_public(path, &pk, &e), e, PGS_EIO, path);
    TU_ASSERT_ERR(key_load_public((const char *)*state, &pk, &e), e, PGS_EINVAL,
                  "not a regular file");

    /* A parse error is prefixed with the path. */
    tu_path_in(state, "junk.pub", path, sizeof(path));
    write_file(path, "hello\n", 6, 0644);
    TU_ASSERT_ERR(key_load_public(path, &pk, &e), e, PGS_EFORMAT, "not a pgship key");
    assert_int_equal(strncmp(e.msg, path, strlen(path)), 0);

    /* Larger than a key file can be. */
    char *big = malloc(KEY_FILE_MAX + 1);
    memset(big, '#', KEY_FILE_MAX + 1);
    write_file(path, big, KEY_FILE_MAX + 1, 0644);
    TU_ASSERT_ERR(key_load_public(path, &pk, &e), e, PGS_ELIMIT, "larger than 4096 bytes");
    tu_path_in(state, "big.key", path, sizeof(path));
    write_file(path, big, KEY_FILE_MAX + 1, 0600);
    TU_ASSERT_ERR(key_load_secret(path, &sk, &e), e, PGS_ELIMIT, "larger than 4096 bytes");
    free(big);

    /* A public key file given where the secret key is wanted. */
    char prefix[512], pub[600];
    tu_path_in(state, "dave", prefix, sizeof(prefix));
    snprintf(pub, sizeof(pub), "%s.pub", prefix);
    assert_int_equal(key_generate_files(prefix, NULL, &e), 0);
    assert_int_equal(chmod(pub, 0600), 0);
    TU_ASSERT_ERR(key_load_secret(pub, &sk, &e), e, PGS_EINVAL,
                  "this is a public key file, a secret key is needed here");
    assert_non_null(strstr(e.msg, pub));
}

/* ---- key ids ---- */

static void test_keys_id_is_16_hex_and_stable(void **state)
{
    (void)state;
    pgs_pubkey a, b;
    tu_fixed_keypair(1, "a", &a, NULL);
    tu_fixed_keypair(1, "b", &b, NULL);
    assert_memory_equal(a.id, b.id, KEY_ID_LEN);
    char hex[KEY_ID_HEX_LEN + 1];
    key_id_hex(a.id, hex);
    assert_int_equal(strlen(hex), KEY_ID_HEX_LEN);
    assert_int_equal(strspn(hex, "0123456789abcdef"), KEY_ID_HEX_LEN);

    /* As documented: BLAKE2b with an 8-byte output over the context, the algorithm name and
     * the public key. */
    uint8_t want[KEY_ID_LEN];
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, KEY_ID_LEN);
    crypto_generichash_update(&st, (const uint8_t *)"pgship key id v1x25519", 22);
    crypto_generichash_update(&st, a.pk, KEY_LEN);
    crypto_generichash_final(&st, want, KEY_ID_LEN);
    assert_memory_equal(a.id, want, KEY_ID_LEN);

    /* A golden value: this id is written into archives, so it must never change. */
    uint8_t pk[KEY_LEN], id[KEY_ID_LEN];
    for (int i = 0; i < KEY_LEN; i++)
        pk[i] = (uint8_t)i;
    key_id_compute(pk, id);
    key_id_hex(id, hex);
    assert_string_equal(hex, GOLDEN_KEY_ID);

    /* The example in docs/archive-format.md. */
    const char *doc_line = PUB_TAG " x25519 2AJBgY7sib8Xa71U7N1ayEqDlgmvTrEU8h5iTO05O2s= ops\n";
    pgs_pubkey doc;
    pgs_error e = {0};
    assert_int_equal(key_parse_public(doc_line, strlen(doc_line), &doc, &e), 0);
    key_id_hex(doc.id, hex);
    assert_string_equal(hex, "175f6e15cc3eedc7");

    /* Different keys, different ids; and the id follows the key, not the name. */
    pgs_pubkey c;
    tu_fixed_keypair(2, "a", &c, NULL);
    assert_memory_not_equal(a.id, c.id, KEY_ID_LEN);
}

/* ---- parsing ---- */

static int parse_pub(const char *text, pgs_error *e)
{
    pgs_pubkey k;
    return key_parse_public(text, strlen(text), &k, e);
}

static int parse_sec(const char *text, pgs_error *e)
{
    pgs_seckey k;
    int rc = key_parse_secret(text, strlen(text), &k, e);
    key_secret_wipe(&k);
    return rc;
}

static void test_keys_parse_accepts_valid_forms(void **state)
{
    (void)state;
    pgs_pubkey k;
    pgs_error e = {0};
    static const char *ok[] = {
        PUB_TAG " x25519 " B64_32 " ops\n",
        PUB_TAG " x25519 " B64_32 " ops",
        "# comment\n\n# another\n" PUB_TAG " x25519 " B64_32 " ops\n\n",
        PUB_TAG " x25519 " B64_32 " ops\r\n",
        PUB_TAG "\tx25519\t" B64_32 "\tops\n",
        PUB_TAG "  x25519  " B64_32 "  ops  \n",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int rc = key_parse_public(ok[i], strlen(ok[i]), &k, &e);
        if (rc != 0)
            fail_msg("case %zu: %s", i, e.msg);
        assert_string_equal(k.name, "ops");
        for (int j = 0; j < KEY_LEN; j++)
            assert_int_equal(k.pk[j], j);
    }
    /* Formatting and parsing are inverse. */
    pgs_pubkey pub;
    pgs_seckey sec, back;
    tu_fixed_keypair(9, "fmt-test", &pub, &sec);
    char line[256];
    assert_int_equal(key_format_public(&pub, line, sizeof(line)), 0);
    assert_int_equal(key_parse_public(line, strlen(line), &k, &e), 0);
    assert_memory_equal(k.pk, pub.pk, KEY_LEN);
    assert_memory_equal(k.id, pub.id, KEY_ID_LEN);
    assert_string_equal(k.name, "fmt-test");
    assert_int_equal(key_format_secret(&sec, line, sizeof(line)), 0);
    assert_int_equal(key_parse_secret(line, strlen(line), &back, &e), 0);
    assert_memory_equal(back.sk, sec.sk, KEY_LEN);
    assert_memory_equal(back.pk, sec.pk, KEY_LEN);
    assert_memory_equal(back.id, pub.id, KEY_ID_LEN);
    assert_int_equal(key_format_public(&pub, line, 20), PGS_ELIMIT);

    /* Exactly KEY_FILE_MAX bytes (comments first) is accepted. */
    char *full = malloc(KEY_FILE_MAX + 1);
    const char *kl = PUB_TAG " x25519 " B64_32 " ops\n";
    size_t pad = KEY_FILE_MAX - strlen(kl);
    memset(full, '#', pad);
    full[pad - 1] = '\n';
    memcpy(full + pad, kl, strlen(kl));
    assert_int_equal(key_parse_public(full, KEY_FILE_MAX, &k, &e), 0);
    free(full);
}

static void test_identity_generate_load_sign_verify(void **state)
{
    char prefix[512], pub_path[600], sec_path[600];
    tu_path_in(state, "agent1", prefix, sizeof(prefix));
    snprintf(pub_path, sizeof(pub_path), "%s.pub", prefix);
    snprintf(sec_path, sizeof(sec_path), "%s.key", prefix);
    pgs_error e = {0};
    pgs_identity_pub made, pub;
    pgs_identity_sec sec;
    assert_int_equal(identity_generate_files(prefix, &made, &e), 0);
    struct stat st;
    assert_int_equal(stat(sec_path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(identity_load_public(pub_path, &pub, &e), 0);
    assert_int_equal(identity_load_secret(sec_path, &sec, &e), 0);
    assert_memory_equal(pub.pk, made.pk, KEY_LEN);
    assert_memory_equal(sec.pk, pub.pk, KEY_LEN);
    assert_memory_equal(sec.id, pub.id, KEY_ID_LEN);
    assert_string_equal(pub.name, "agent1");

    /* A signature verifies with the public key, and not once message or signature change. */
    static const char msg[] = "pgship-auth-v1 nonce";
    uint8_t sig[IDENTITY_SIG_LEN];
    identity_sign(&sec, msg, sizeof(msg), sig);
    assert_int_equal(identity_verify(&pub, msg, sizeof(msg), sig), 0);
    assert_int_equal(identity_verify(&pub, msg, sizeof(msg) - 1, sig), PGS_EAUTH);
    sig[10] ^= 1;
    assert_int_equal(identity_verify(&pub, msg, sizeof(msg), sig), PGS_EAUTH);

    /* Identity and recipient keys are told apart by name, never mistaken for each other. */
    pgs_pubkey rpub;
    TU_ASSERT_ERR(key_load_public(pub_path, &rpub, &e), e, PGS_EINVAL,
                  "this is an identity public key file, a public key is needed here");
    char rprefix[512], rpub_path[600];
    tu_path_in(state, "ops", rprefix, sizeof(rprefix));
    assert_int_equal(key_generate_files(rprefix, NULL, &e), 0);
    snprintf(rpub_path, sizeof(rpub_path), "%s.pub", rprefix);
    TU_ASSERT_ERR(identity_load_public(rpub_path, &pub, &e), e, PGS_EINVAL,
                  "an identity public key is needed here");
    TU_ASSERT_ERR(identity_load_secret(pub_path, &sec, &e), e, PGS_EINVAL,
                  "an identity secret key is needed here");

    /* Same refusals as recipient keys: no overwrite, private secret file. */
    TU_ASSERT_ERR(identity_generate_files(prefix, NULL, &e), e, PGS_EEXIST, "refusing to overwrite");
    assert_int_equal(chmod(sec_path, 0640), 0);
    TU_ASSERT_ERR(identity_load_secret(sec_path, &sec, &e), e, PGS_EINVAL, "chmod 600");
    identity_secret_wipe(&sec);
}

static void test_keys_parse_rejects(void **state)
{
    (void)state;
    pgs_error e = {0};
    struct {
        const char *text;
        int code;
        const char *msg;
    } pub_cases[] = {
        {"", PGS_EFORMAT, "no key line found"},
        {"\n\n\r\n", PGS_EFORMAT, "no key line found"},
        {"# just a comment\n# and another\n", PGS_EFORMAT, "no key line found"},
        {"   \n", PGS_EFORMAT, "not a pgship key"},
        {PUB_TAG " x25519 " B64_32 " ops\n" PUB_TAG " x25519 " B64_32 " ops2\n", PGS_EFORMAT,
         "more than one key line"},
        {PUB_TAG " x25519 " B64_32 " ops\ntrailing words\n", PGS_EFORMAT, "more than one key line"},
        {"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI user@host\n", PGS_EFORMAT, "not a pgship key"},
        {"age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs\n", PGS_EFORMAT,
         "not a pgship key"},
        {"pgship-public-key-v2 x25519 " B64_32 " ops\n", PGS_EFORMAT, "not a pgship key"},
        {SEC_TAG " x25519 " B64_32 " ops\n", PGS_EINVAL,
         "this is a secret key file, a public key is needed here"},
        {PUB_TAG " ed25519 " B64_32 " ops\n", PGS_EFORMAT,
         "unsupported key algorithm \"ed25519\" (expected x25519)"},
        {PUB_TAG " X25519 " B64_32 " ops\n", PGS_EFORMAT, "unsupported key algorithm"},
        {PUB_TAG " x25519 !!!notbase64!!! ops\n", PGS_EFORMAT, "not 32 bytes of base64"},
        /* 31 and 33 bytes. */
        {PUB_TAG " x25519 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg== ops\n", PGS_EFORMAT,
         "not 32 bytes of base64"},
        {PUB_TAG " x25519 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g ops\n", PGS_EFORMAT,
         "not 32 bytes of base64"},
        /* Padding missing, URL-safe alphabet, trailing garbage. */
        {PUB_TAG " x25519 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8 ops\n", PGS_EFORMAT,
         "base64"},
        {PUB_TAG " x25519 AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh-_ ops\n", PGS_EFORMAT,
         "base64"},
        {PUB_TAG " x25519 " B64_32 "AA ops\n", PGS_EFORMAT, "base64"},
        {PUB_TAG " x25519 " B64_32 "\n", PGS_EFORMAT, "must have 4 fields"},
        {PUB_TAG " x25519 " B64_32 " ops extra\n", PGS_EFORMAT, "must have 4 fields"},
        {PUB_TAG "\n", PGS_EFORMAT, "must have 4 fields"},
        {PUB_TAG " x25519 " B64_32 " .ops\n", PGS_EFORMAT, "key name is not valid"},
        {PUB_TAG " x25519 " B64_32 " -ops\n", PGS_EFORMAT, "key name is not valid"},
        {PUB_TAG " x25519 " B64_32 " o/ps\n", PGS_EFORMAT, "key name is not valid"},
        {PUB_TAG " x25519 " B64_32
                 " kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk\n",
         PGS_EFORMAT, "key name is not valid"},
        {PUB_TAG " x25519 " B64_32 " caf\xc3\xa9\n", PGS_EFORMAT, "key name is not valid"},
    };
    for (size_t i = 0; i < sizeof(pub_cases) / sizeof(pub_cases[0]); i++)
        TU_ASSERT_ERR(parse_pub(pub_cases[i].text, &e), e, pub_cases[i].code, pub_cases[i].msg);

    TU_ASSERT_ERR(parse_sec(PUB_TAG " x25519 " B64_32 " ops\n", &e), e, PGS_EINVAL,
                  "this is a public key file, a secret key is needed here");
    TU_ASSERT_ERR(parse_sec("", &e), e, PGS_EFORMAT, "no key line found (expected \"" SEC_TAG);
    TU_ASSERT_ERR(parse_sec(SEC_TAG " x25519 AAAA ops\n", &e), e, PGS_EFORMAT, "base64");
    pgs_seckey sk;
    memset(&sk, 0xaa, sizeof(sk));
    assert_true(key_parse_secret("x", 1, &sk, &e) < 0);
    uint8_t zero[sizeof(sk)] = {0};
    assert_memory_equal(&sk, zero, sizeof(sk)); /* wiped on failure */

    /* A NUL byte anywhere, even after a valid line. */
    const char nul[] = PUB_TAG " x25519 " B64_32 " ops\n\0";
    pgs_pubkey pk;
    TU_ASSERT_ERR(key_parse_public(nul, sizeof(nul) - 1, &pk, &e), e, PGS_EFORMAT,
                  "contains a NUL byte");
    const char nul2[] = PUB_TAG " x25519 " B64_32 "\0 ops\n";
    TU_ASSERT_ERR(key_parse_public(nul2, sizeof(nul2) - 1, &pk, &e), e, PGS_EFORMAT, "NUL byte");

    /* Larger than a key file may be. */
    char *big = malloc(KEY_FILE_MAX + 1);
    memset(big, '#', KEY_FILE_MAX + 1);
    TU_ASSERT_ERR(key_parse_public(big, KEY_FILE_MAX + 1, &pk, &e), e, PGS_ELIMIT,
                  "larger than 4096 bytes");
    TU_ASSERT_ERR(key_parse_secret(big, KEY_FILE_MAX + 1, &sk, &e), e, PGS_ELIMIT,
                  "larger than 4096 bytes");
    free(big);
}

int main(void)
{
    umask(022);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_keys_generate_files_modes_and_content, tu_tmpdir_setup,
                                        tu_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_keys_generate_refuses_to_overwrite, tu_tmpdir_setup,
                                        tu_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_keys_generate_validates_names, tu_tmpdir_setup,
                                        tu_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_keys_secret_file_mode_refused, tu_tmpdir_setup,
                                        tu_tmpdir_teardown),
        cmocka_unit_test_setup_teardown(test_keys_load_errors_name_the_file, tu_tmpdir_setup,
                                        tu_tmpdir_teardown),
        cmocka_unit_test(test_keys_id_is_16_hex_and_stable),
        cmocka_unit_test(test_keys_parse_accepts_valid_forms),
        cmocka_unit_test(test_keys_parse_rejects),
        cmocka_unit_test_setup_teardown(test_identity_generate_load_sign_verify, tu_tmpdir_setup,
                                        tu_tmpdir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
