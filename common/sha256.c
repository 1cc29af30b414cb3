/* SHA-256 over libcrypto's EVP interface (see sha256.h for why not libsodium's). */
#include "common/sha256.h"

#include <openssl/evp.h>
#include <stdlib.h>

struct sha256_ctx {
    EVP_MD_CTX *md;
};

sha256_ctx *sha256_new(void)
{
    sha256_ctx *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    c->md = EVP_MD_CTX_new();
    if (c->md == NULL || EVP_DigestInit_ex(c->md, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(c->md);
        free(c);
        return NULL;
    }
    return c;
}

void sha256_reset(sha256_ctx *c)
{
    if (EVP_DigestInit_ex(c->md, EVP_sha256(), NULL) != 1)
        abort(); /* cannot fail once the context exists: a broken libcrypto */
}

void sha256_update(sha256_ctx *c, const void *data, size_t len)
{
    if (len > 0 && EVP_DigestUpdate(c->md, data, len) != 1)
        abort();
}

void sha256_final(sha256_ctx *c, uint8_t out[SHA256_LEN])
{
    unsigned int n = 0;
    if (EVP_DigestFinal_ex(c->md, out, &n) != 1 || n != SHA256_LEN)
        abort();
    sha256_reset(c);
}

void sha256_free(sha256_ctx *c)
{
    if (c == NULL)
        return;
    EVP_MD_CTX_free(c->md);
    free(c);
}

void hex_encode(const uint8_t *in, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

int hex_digit(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int hex_decode(const char *in, size_t inlen, uint8_t *out, size_t outlen)
{
    if (inlen != 2 * outlen)
        return -1;
    for (size_t i = 0; i < outlen; i++) {
        int hi = hex_digit((unsigned char)in[2 * i]), lo = hex_digit((unsigned char)in[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}
