/*
 * Key files and key ids (see keys.h for the format). One parser and one writer serve the four
 * kinds of key line; the kind table says what each is called in messages, so that a user who gives
 * the wrong file is told which file it is and which one is needed.
 */
#include "common/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsutil.h"

enum key_kind { KK_RCPT_PUB, KK_RCPT_SEC, KK_ID_PUB, KK_ID_SEC, KK_COUNT };

static const struct {
    const char *tag;
    const char *alg;
    const char *what; /* in messages: "this is <what> file, <what> is needed here" */
    const char *noun; /* in the files' comment line */
} key_kinds[KK_COUNT] = {
    [KK_RCPT_PUB] = {"pgship-public-key-v1", "x25519", "a public key", "public key"},
    [KK_RCPT_SEC] = {"pgship-secret-key-v1", "x25519", "a secret key", "secret key"},
    [KK_ID_PUB] = {"pgship-identity-public-v1", "ed25519", "an identity public key",
                   "identity public key"},
    [KK_ID_SEC] = {"pgship-identity-secret-v1", "ed25519", "an identity secret key",
                   "identity secret key"},
};

/* The one rule for names in pgship (keys, agents, databases): they become parts of file names and
 * object keys, so no path separators, no leading dot or dash, nothing to quote. */
int key_name_valid(const char *name)
{
    if (name == NULL)
        return 0;
    size_t n = strnlen(name, KEY_NAME_MAX + 1);
    if (n == 0 || n > KEY_NAME_MAX || name[0] == '.' || name[0] == '-')
        return 0;
    return strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

static void key_id_compute_alg(const char *alg, const uint8_t pk[KEY_LEN],
                               uint8_t id[KEY_ID_LEN])
{
    static const char ctx[] = "pgship key id v1";
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, KEY_ID_LEN);
    crypto_generichash_update(&st, (const unsigned char *)ctx, sizeof(ctx) - 1);
    crypto_generichash_update(&st, (const unsigned char *)alg, strlen(alg));
    crypto_generichash_update(&st, pk, KEY_LEN);
    crypto_generichash_final(&st, id, KEY_ID_LEN);
}

void key_id_compute(const uint8_t pk[KEY_LEN], uint8_t id[KEY_ID_LEN])
{
    key_id_compute_alg(key_kinds[KK_RCPT_PUB].alg, pk, id);
}

void key_id_hex(const uint8_t id[KEY_ID_LEN], char *out)
{
    sodium_bin2hex(out, KEY_ID_HEX_LEN + 1, id, KEY_ID_LEN);
}

/*
 * Finds the single key line: comment ('#') and blank lines are skipped; anything else must be the
 * one key line of kind `want`, with exactly four space-separated fields.
 */
static int key_parse_line(const char *text, size_t len, enum key_kind want, uint8_t raw[KEY_LEN],
                          char name[KEY_NAME_MAX + 1], pgs_error *e)
{
    if (len > KEY_FILE_MAX)
        return pgs_fail(e, PGS_ELIMIT, "key file is larger than %d bytes", KEY_FILE_MAX);
    if (memchr(text, '\0', len) != NULL)
        return pgs_fail(e, PGS_EFORMAT, "key file contains a NUL byte");
    char line[KEY_FILE_MAX + 1];
    int found = 0, rc = 0;
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        size_t n = end - pos;
        if (n > 0 && text[pos + n - 1] == '\r')
            n--;
        if (n > 0 && text[pos] != '#') {
            if (found) {
                rc = pgs_fail(e, PGS_EFORMAT, "key file holds more than one key line");
                goto out;
            }
            memcpy(line, text + pos, n);
            line[n] = '\0';
            found = 1;
        }
        pos = end + 1;
    }
    if (!found) {
        rc = pgs_fail(e, PGS_EFORMAT, "no key line found (expected \"%s %s ...\")",
                      key_kinds[want].tag, key_kinds[want].alg);
        goto out;
    }

    char *fields[5] = {0};
    int nf = 0;
    char *save = NULL;
    for (char *t = strtok_r(line, " \t", &save); t != NULL; t = strtok_r(NULL, " \t", &save)) {
        if (nf == 5)
            break;
        fields[nf++] = t;
    }
    int have = -1;
    for (int k = 0; k < KK_COUNT && nf > 0; k++)
        if (strcmp(fields[0], key_kinds[k].tag) == 0)
            have = k;
    if (have < 0) {
        rc = pgs_fail(e, PGS_EFORMAT, "not a pgship key (expected a line starting with \"%s\")",
                      key_kinds[want].tag);
        goto out;
    }
    if (have != (int)want) {
        rc = pgs_fail(e, PGS_EINVAL, "this is %s file, %s is needed here",
                      key_kinds[have].what, key_kinds[want].what);
        goto out;
    }
    if (nf != 4) {
        rc = pgs_fail(e, PGS_EFORMAT, "key line must have 4 fields: tag, algorithm, key, name");
        goto out;
    }
    if (strcmp(fields[1], key_kinds[want].alg) != 0) {
        rc = pgs_fail(e, PGS_EFORMAT, "unsupported key algorithm \"%.32s\" (expected %s)",
                      fields[1], key_kinds[want].alg);
        goto out;
    }
    size_t binlen = 0;
    const char *b64_end = NULL;
    if (sodium_base642bin(raw, KEY_LEN, fields[2], strlen(fields[2]), NULL, &binlen, &b64_end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        binlen != KEY_LEN || *b64_end != '\0') {
        rc = pgs_fail(e, PGS_EFORMAT, "key material is not %d bytes of base64", KEY_LEN);
        goto out;
    }
    if (!key_name_valid(fields[3])) {
        rc = pgs_fail(e, PGS_EFORMAT, "key name is not valid (1-63 of A-Z a-z 0-9 . _ -)");
        goto out;
    }
    snprintf(name, KEY_NAME_MAX + 1, "%s", fields[3]);
out:
    sodium_memzero(line, sizeof(line));
    return rc;
}

int key_parse_public(const char *text, size_t len, pgs_pubkey *out, pgs_error *e)
{
    memset(out, 0, sizeof(*out));
    int rc = key_parse_line(text, len, KK_RCPT_PUB, out->pk, out->name, e);
    if (rc != 0)
        return rc;
    key_id_compute(out->pk, out->id);
    return 0;
}

int key_parse_secret(const char *text, size_t len, pgs_seckey *out, pgs_error *e)
{
    memset(out, 0, sizeof(*out));
    int rc = key_parse_line(text, len, KK_RCPT_SEC, out->sk, out->name, e);
    if (rc != 0) {
        key_secret_wipe(out);
        return rc;
    }
    crypto_scalarmult_base(out->pk, out->sk);
    key_id_compute(out->pk, out->id);
    return 0;
}

int identity_parse_public(const char *text, size_t len, pgs_identity_pub *out, pgs_error *e)
{
    memset(out, 0, sizeof(*out));
    int rc = key_parse_line(text, len, KK_ID_PUB, out->pk, out->name, e);
    if (rc != 0)
        return rc;
    key_id_compute_alg(key_kinds[KK_ID_PUB].alg, out->pk, out->id);
    return 0;
}

int identity_parse_secret(const char *text, size_t len, pgs_identity_sec *out, pgs_error *e)
{
    memset(out, 0, sizeof(*out));
    uint8_t seed[KEY_LEN];
    int rc = key_parse_line(text, len, KK_ID_SEC, seed, out->name, e);
    if (rc == 0) {
        crypto_sign_seed_keypair(out->pk, out->sk, seed);
        key_id_compute_alg(key_kinds[KK_ID_SEC].alg, out->pk, out->id);
    } else {
        identity_secret_wipe(out);
    }
    sodium_memzero(seed, sizeof(seed));
    return rc;
}

/* Reads a key file of at most KEY_FILE_MAX bytes; *mode gets its permission bits. */
static int key_read_file(const char *path, char *buf, size_t cap, size_t *len, mode_t *mode,
                         pgs_error *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return pgs_fail(e, PGS_EIO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return pgs_fail(e, PGS_EINVAL, "%s: not a regular file", path);
    }
    *mode = st.st_mode & 07777;
    ssize_t n = fs_read_full(fd, buf, cap);
    close(fd);
    if (n < 0)
        return pgs_fail(e, PGS_EIO, "%s: %s", path, strerror(errno));
    if ((size_t)n == cap)
        return pgs_fail(e, PGS_ELIMIT, "%s: larger than %d bytes, not a pgship key file", path,
                        KEY_FILE_MAX);
    *len = (size_t)n;
    return 0;
}

/*
 * Loads path with parse(); messages name the path. The kind is checked before the mode, so that
 * a public key given where a secret one belongs is called what it is; a secret key file that
 * group or others can read is refused (and wiped) after parsing.
 */
#define KEY_LOAD(path, out, e, secret, parse, wipe)                                               \
    do {                                                                                          \
        char buf_[KEY_FILE_MAX + 1];                                                              \
        size_t len_ = 0;                                                                          \
        mode_t mode_ = 0;                                                                         \
        int rc_ = key_read_file(path, buf_, sizeof(buf_), &len_, &mode_, e);                      \
        if (rc_ == 0 && (rc_ = parse(buf_, len_, out, e)) != 0)                                   \
            pgs_wrap(e, "%s", path);                                                              \
        if (rc_ == 0 && (secret) && (mode_ & 077) != 0) {                                         \
            wipe(out);                                                                            \
            rc_ = pgs_fail(e, PGS_EINVAL,                                                         \
                           "%s: secret key file is accessible by group or others (mode %04o); "  \
                           "chmod 600 it",                                                        \
                           path, (unsigned)mode_);                                                \
        }                                                                                         \
        sodium_memzero(buf_, sizeof(buf_));                                                       \
        return rc_;                                                                               \
    } while (0)

static void no_wipe(const void *p)
{
    (void)p;
}

int key_load_public(const char *path, pgs_pubkey *out, pgs_error *e)
{
    KEY_LOAD(path, out, e, 0, key_parse_public, no_wipe);
}

int key_load_secret(const char *path, pgs_seckey *out, pgs_error *e)
{
    KEY_LOAD(path, out, e, 1, key_parse_secret, key_secret_wipe);
}

int identity_load_public(const char *path, pgs_identity_pub *out, pgs_error *e)
{
    KEY_LOAD(path, out, e, 0, identity_parse_public, no_wipe);
}

int identity_load_secret(const char *path, pgs_identity_sec *out, pgs_error *e)
{
    KEY_LOAD(path, out, e, 1, identity_parse_secret, identity_secret_wipe);
}

static int key_format_line(enum key_kind kind, const uint8_t raw[KEY_LEN], const char *name,
                           char *out, size_t outlen)
{
    char b64[sodium_base64_ENCODED_LEN(KEY_LEN, sodium_base64_VARIANT_ORIGINAL)];
    sodium_bin2base64(b64, sizeof(b64), raw, KEY_LEN, sodium_base64_VARIANT_ORIGINAL);
    int n = snprintf(out, outlen, "%s %s %s %s\n", key_kinds[kind].tag, key_kinds[kind].alg, b64,
                     name);
    sodium_memzero(b64, sizeof(b64));
    return (n < 0 || (size_t)n >= outlen) ? PGS_ELIMIT : 0;
}

int key_format_public(const pgs_pubkey *k, char *out, size_t outlen)
{
    return key_format_line(KK_RCPT_PUB, k->pk, k->name, out, outlen);
}

int key_format_secret(const pgs_seckey *k, char *out, size_t outlen)
{
    return key_format_line(KK_RCPT_SEC, k->sk, k->name, out, outlen);
}

int identity_format_public(const pgs_identity_pub *k, char *out, size_t outlen)
{
    return key_format_line(KK_ID_PUB, k->pk, k->name, out, outlen);
}

void key_secret_wipe(pgs_seckey *k)
{
    sodium_memzero(k, sizeof(*k));
}

void identity_secret_wipe(pgs_identity_sec *k)
{
    sodium_memzero(k, sizeof(*k));
}

void identity_sign(const pgs_identity_sec *k, const void *msg, size_t len,
                   uint8_t sig[IDENTITY_SIG_LEN])
{
    crypto_sign_detached(sig, NULL, msg, len, k->sk);
}

int identity_verify(const pgs_identity_pub *k, const void *msg, size_t len,
                    const uint8_t sig[IDENTITY_SIG_LEN])
{
    return crypto_sign_verify_detached(sig, msg, len, k->pk) == 0 ? 0 : PGS_EAUTH;
}

/* The last path component of prefix, checked as a key name. */
static int key_prefix_name(const char *prefix, const char **name, pgs_error *e)
{
    const char *base = strrchr(prefix, '/');
    base = base ? base + 1 : prefix;
    if (!key_name_valid(base))
        return pgs_fail(e, PGS_EINVAL,
                        "key name \"%s\" is not valid: use 1-63 of A-Z a-z 0-9 . _ - "
                        "(not starting with . or -)",
                        base);
    *name = base;
    return 0;
}

/*
 * Writes PREFIX.key (0600) and PREFIX.pub (0644) with the given texts. Both are created with
 * O_EXCL before either is written, so a refusal leaves nothing half-made, and a failure removes
 * what was created.
 */
static int key_write_pair(const char *prefix, const char *sec_text, const char *pub_text,
                          pgs_error *e)
{
    char pub_path[4096], sec_path[4096];
    if (snprintf(pub_path, sizeof(pub_path), "%s.pub", prefix) >= (int)sizeof(pub_path) ||
        snprintf(sec_path, sizeof(sec_path), "%s.key", prefix) >= (int)sizeof(sec_path))
        return pgs_fail(e, PGS_ELIMIT, "key path is too long");
    int rc = 0, sec_fd = -1, pub_fd = -1;
    sec_fd = open(sec_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (sec_fd < 0) {
        rc = pgs_fail(e, errno == EEXIST ? PGS_EEXIST : PGS_EIO, "%s: %s", sec_path,
                      errno == EEXIST ? "exists, refusing to overwrite a key" : strerror(errno));
        goto out;
    }
    pub_fd = open(pub_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (pub_fd < 0) {
        rc = pgs_fail(e, errno == EEXIST ? PGS_EEXIST : PGS_EIO, "%s: %s", pub_path,
                      errno == EEXIST ? "exists, refusing to overwrite a key" : strerror(errno));
        goto out;
    }
    if (fs_write_all(sec_fd, sec_text, strlen(sec_text)) != 0 || fsync(sec_fd) != 0) {
        rc = pgs_fail(e, PGS_EIO, "%s: %s", sec_path, strerror(errno));
        goto out;
    }
    if (fs_write_all(pub_fd, pub_text, strlen(pub_text)) != 0 || fsync(pub_fd) != 0) {
        rc = pgs_fail(e, PGS_EIO, "%s: %s", pub_path, strerror(errno));
        goto out;
    }
out:
    if (sec_fd >= 0)
        close(sec_fd);
    if (pub_fd >= 0)
        close(pub_fd);
    if (rc != 0) {
        if (sec_fd >= 0)
            unlink(sec_path);
        if (pub_fd >= 0)
            unlink(pub_path);
    }
    return rc;
}

/* Formats both files' texts for kind pair (public, secret) and writes them. */
static int key_generate_pair(const char *prefix, const char *name, enum key_kind pub_kind,
                             enum key_kind sec_kind, const uint8_t pk[KEY_LEN],
                             const uint8_t secret[KEY_LEN], const uint8_t id[KEY_ID_LEN],
                             const char *warning, pgs_error *e)
{
    char idhex[KEY_ID_HEX_LEN + 1], line[256], sec_text[1024], pub_text[512];
    key_id_hex(id, idhex);
    key_format_line(sec_kind, secret, name, line, sizeof(line));
    snprintf(sec_text, sizeof(sec_text), "# pgship %s \"%s\", key id %s.\n# %s\n%s",
             key_kinds[sec_kind].noun, name, idhex, warning, line);
    key_format_line(pub_kind, pk, name, line, sizeof(line));
    snprintf(pub_text, sizeof(pub_text), "# pgship %s \"%s\", key id %s.\n%s",
             key_kinds[pub_kind].noun, name, idhex, line);
    int rc = key_write_pair(prefix, sec_text, pub_text, e);
    sodium_memzero(sec_text, sizeof(sec_text));
    sodium_memzero(line, sizeof(line));
    return rc;
}

int key_generate_files(const char *prefix, pgs_pubkey *pub_out, pgs_error *e)
{
    const char *name = NULL;
    int rc = key_prefix_name(prefix, &name, e);
    if (rc != 0)
        return rc;
    pgs_seckey sk;
    crypto_box_keypair(sk.pk, sk.sk);
    key_id_compute(sk.pk, sk.id);
    char warning[256];
    snprintf(warning, sizeof(warning),
             "Whoever holds this file can decrypt every archive sealed to %s.pub. Keep a copy "
             "offline.",
             name);
    rc = key_generate_pair(prefix, name, KK_RCPT_PUB, KK_RCPT_SEC, sk.pk, sk.sk, sk.id, warning,
                           e);
    if (rc == 0 && pub_out != NULL) {
        memset(pub_out, 0, sizeof(*pub_out));
        memcpy(pub_out->pk, sk.pk, KEY_LEN);
        memcpy(pub_out->id, sk.id, KEY_ID_LEN);
        snprintf(pub_out->name, sizeof(pub_out->name), "%s", name);
    }
    key_secret_wipe(&sk);
    return rc;
}

int identity_generate_files(const char *prefix, pgs_identity_pub *pub_out, pgs_error *e)
{
    const char *name = NULL;
    int rc = key_prefix_name(prefix, &name, e);
    if (rc != 0)
        return rc;
    uint8_t seed[KEY_LEN], pk[KEY_LEN], sk[64], id[KEY_ID_LEN];
    randombytes_buf(seed, sizeof(seed));
    crypto_sign_seed_keypair(pk, sk, seed);
    key_id_compute_alg(key_kinds[KK_ID_PUB].alg, pk, id);
    char warning[256];
    snprintf(warning, sizeof(warning),
             "Whoever holds this file can connect to the coordinator as agent %s.", name);
    rc = key_generate_pair(prefix, name, KK_ID_PUB, KK_ID_SEC, pk, seed, id, warning, e);
    if (rc == 0 && pub_out != NULL) {
        memset(pub_out, 0, sizeof(*pub_out));
        memcpy(pub_out->pk, pk, KEY_LEN);
        memcpy(pub_out->id, id, KEY_ID_LEN);
        snprintf(pub_out->name, sizeof(pub_out->name), "%s", name);
    }
    sodium_memzero(seed, sizeof(seed));
    sodium_memzero(sk, sizeof(sk));
    return rc;
}
