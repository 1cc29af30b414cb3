/* Recipient key files and key ids (see keys.h for the format). */
#include "common/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsutil.h"

#define PUB_TAG "pgship-public-key-v1"
#define SEC_TAG "pgship-secret-key-v1"
#define ALG_X25519 "x25519"

int key_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > KEY_NAME_MAX || name[0] == '.' || name[0] == '-')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

void key_id_compute(const uint8_t pk[KEY_LEN], uint8_t id[KEY_ID_LEN])
{
    static const char ctx[] = "pgship key id v1" ALG_X25519;
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, KEY_ID_LEN);
    crypto_generichash_update(&st, (const unsigned char *)ctx, sizeof(ctx) - 1);
    crypto_generichash_update(&st, pk, KEY_LEN);
    crypto_generichash_final(&st, id, KEY_ID_LEN);
}

void key_id_hex(const uint8_t id[KEY_ID_LEN], char *out)
{
    sodium_bin2hex(out, KEY_ID_HEX_LEN + 1, id, KEY_ID_LEN);
}

/*
 * Finds the single key line: comment ('#') and blank lines are skipped; anything else must be the
 * one key line. Splits it into exactly four space-separated fields.
 */
static int key_parse_line(const char *text, size_t len, const char *want_tag, uint8_t raw[KEY_LEN],
                          char name[KEY_NAME_MAX + 1], pgs_error *e)
{
    if (len > KEY_FILE_MAX)
        return pgs_fail(e, PGS_ELIMIT, "key file is larger than %d bytes", KEY_FILE_MAX);
    if (memchr(text, '\0', len) != NULL)
        return pgs_fail(e, PGS_EFORMAT, "key file contains a NUL byte");
    char line[KEY_FILE_MAX + 1];
    int found = 0;
    size_t pos = 0;
    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - text) : len;
        size_t n = end - pos;
        if (n > 0 && text[pos + n - 1] == '\r')
            n--;
        if (n > 0 && text[pos] != '#') {
            if (found)
                return pgs_fail(e, PGS_EFORMAT, "key file holds more than one key line");
            memcpy(line, text + pos, n);
            line[n] = '\0';
            found = 1;
        }
        pos = end + 1;
    }
    if (!found)
        return pgs_fail(e, PGS_EFORMAT, "no key line found (expected \"%s %s ...\")", want_tag,
                        ALG_X25519);

    char *fields[5] = {0};
    int nf = 0;
    char *save = NULL;
    for (char *t = strtok_r(line, " \t", &save); t != NULL; t = strtok_r(NULL, " \t", &save)) {
        if (nf == 5)
            break;
        fields[nf++] = t;
    }
    if (nf < 1 || (strcmp(fields[0], PUB_TAG) != 0 && strcmp(fields[0], SEC_TAG) != 0))
        return pgs_fail(e, PGS_EFORMAT, "not a pgship key (expected a line starting with \"%s\")",
                        want_tag);
    if (strcmp(fields[0], want_tag) != 0)
        return pgs_fail(e, PGS_EINVAL, "this is a %s key file, a %s key is needed here",
                        strcmp(fields[0], PUB_TAG) == 0 ? "public" : "secret",
                        strcmp(want_tag, PUB_TAG) == 0 ? "public" : "secret");
    if (nf != 4)
        return pgs_fail(e, PGS_EFORMAT, "key line must have 4 fields: tag, algorithm, key, name");
    if (strcmp(fields[1], ALG_X25519) != 0)
        return pgs_fail(e, PGS_EFORMAT, "unsupported key algorithm \"%.32s\" (expected %s)",
                        fields[1], ALG_X25519);
    size_t binlen = 0;
    const char *b64_end = NULL;
    if (sodium_base642bin(raw, KEY_LEN, fields[2], strlen(fields[2]), NULL, &binlen, &b64_end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        binlen != KEY_LEN || *b64_end != '\0')
        return pgs_fail(e, PGS_EFORMAT, "key material is not %d bytes of base64", KEY_LEN);
    if (!key_name_valid(fields[3]))
        return pgs_fail(e, PGS_EFORMAT, "key name is not valid (1-63 of A-Z a-z 0-9 . _ -)");
    snprintf(name, KEY_NAME_MAX + 1, "%s", fields[3]);
    return 0;
}

int key_parse_public(const char *text, size_t len, pgs_pubkey *out, pgs_error *e)
{
    memset(out, 0, sizeof(*out));
    int rc = key_parse_line(text, len, PUB_TAG, out->pk, out->name, e);
    if (rc != 0)
        return rc;
    key_id_compute(out->pk, out->id);
    return 0;
}

int key_parse_secret(const char *text, size_t len, pgs_seckey *out, pgs_error *e)
{
    memset(out, 0, sizeof(*out));
    int rc = key_parse_line(text, len, SEC_TAG, out->sk, out->name, e);
    if (rc != 0) {
        key_secret_wipe(out);
        return rc;
    }
    crypto_scalarmult_base(out->pk, out->sk);
    key_id_compute(out->pk, out->id);
    return 0;
}

static int key_read_file(const char *path, char *buf, size_t cap, size_t *len, int secret,
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
    if (secret && (st.st_mode & 077) != 0) {
        close(fd);
        return pgs_fail(e, PGS_EINVAL,
                        "%s: secret key file is accessible by group or others (mode %04o); "
                        "chmod 600 it",
                        path, (unsigned)(st.st_mode & 07777));
    }
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

int key_load_public(const char *path, pgs_pubkey *out, pgs_error *e)
{
    char buf[KEY_FILE_MAX + 1];
    size_t len = 0;
    int rc = key_read_file(path, buf, sizeof(buf), &len, 0, e);
    if (rc == 0 && (rc = key_parse_public(buf, len, out, e)) != 0)
        pgs_wrap(e, "%s", path);
    return rc;
}

int key_load_secret(const char *path, pgs_seckey *out, pgs_error *e)
{
    char buf[KEY_FILE_MAX + 1];
    size_t len = 0;
    int rc = key_read_file(path, buf, sizeof(buf), &len, 1, e);
    if (rc == 0 && (rc = key_parse_secret(buf, len, out, e)) != 0)
        pgs_wrap(e, "%s", path);
    sodium_memzero(buf, sizeof(buf));
    return rc;
}

static int key_format_line(const char *tag, const uint8_t raw[KEY_LEN], const char *name, char *out,
                           size_t outlen)
{
    char b64[sodium_base64_ENCODED_LEN(KEY_LEN, sodium_base64_VARIANT_ORIGINAL)];
    sodium_bin2base64(b64, sizeof(b64), raw, KEY_LEN, sodium_base64_VARIANT_ORIGINAL);
    int n = snprintf(out, outlen, "%s %s %s %s\n", tag, ALG_X25519, b64, name);
    sodium_memzero(b64, sizeof(b64));
    return (n < 0 || (size_t)n >= outlen) ? PGS_ELIMIT : 0;
}

int key_format_public(const pgs_pubkey *k, char *out, size_t outlen)
{
    return key_format_line(PUB_TAG, k->pk, k->name, out, outlen);
}

int key_format_secret(const pgs_seckey *k, char *out, size_t outlen)
{
    return key_format_line(SEC_TAG, k->sk, k->name, out, outlen);
}

void key_secret_wipe(pgs_seckey *k)
{
    sodium_memzero(k, sizeof(*k));
}

int key_generate_files(const char *prefix, pgs_pubkey *pub_out, pgs_error *e)
{
    const char *base = strrchr(prefix, '/');
    base = base ? base + 1 : prefix;
    if (!key_name_valid(base))
        return pgs_fail(e, PGS_EINVAL,
                        "key name \"%s\" is not valid: use 1-63 of A-Z a-z 0-9 . _ - "
                        "(not starting with . or -)",
                        base);
    char pub_path[4096], sec_path[4096];
    if (snprintf(pub_path, sizeof(pub_path), "%s.pub", prefix) >= (int)sizeof(pub_path) ||
        snprintf(sec_path, sizeof(sec_path), "%s.key", prefix) >= (int)sizeof(sec_path))
        return pgs_fail(e, PGS_ELIMIT, "key path is too long");

    pgs_seckey sk;
    pgs_pubkey pk;
    memset(&pk, 0, sizeof(pk));
    crypto_box_keypair(sk.pk, sk.sk);
    key_id_compute(sk.pk, sk.id);
    snprintf(sk.name, sizeof(sk.name), "%s", base);
    memcpy(pk.pk, sk.pk, KEY_LEN);
    memcpy(pk.id, sk.id, KEY_ID_LEN);
    snprintf(pk.name, sizeof(pk.name), "%s", base);

    char idhex[KEY_ID_HEX_LEN + 1];
    key_id_hex(pk.id, idhex);
    char text[1024], line[256];
    int rc = 0, sec_fd = -1, pub_fd = -1;

    /* O_EXCL on both before writing either, so a refusal leaves nothing half-made. */
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
    key_format_secret(&sk, line, sizeof(line));
    snprintf(text, sizeof(text),
             "# pgship secret key \"%s\", key id %s.\n"
             "# Whoever holds this file can decrypt every archive sealed to %s.pub. Keep a copy "
             "offline.\n%s",
             base, idhex, base, line);
    if (fs_write_all(sec_fd, text, strlen(text)) != 0 || fsync(sec_fd) != 0) {
        rc = pgs_fail(e, PGS_EIO, "%s: %s", sec_path, strerror(errno));
        goto out;
    }
    key_format_public(&pk, line, sizeof(line));
    snprintf(text, sizeof(text), "# pgship public key \"%s\", key id %s.\n%s", base, idhex, line);
    if (fs_write_all(pub_fd, text, strlen(text)) != 0 || fsync(pub_fd) != 0) {
        rc = pgs_fail(e, PGS_EIO, "%s: %s", pub_path, strerror(errno));
        goto out;
    }
    if (pub_out != NULL)
        *pub_out = pk;
out:
    sodium_memzero(text, sizeof(text));
    sodium_memzero(line, sizeof(line));
    key_secret_wipe(&sk);
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
