/*
 * Fuzzes the key-file parsers. A key that parses must format back to a line that parses to the
 * same key, id and name.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pgs_error e;
    pgs_pubkey pk, pk2;
    pgs_seckey sk, sk2;
    char line[256];
    if (key_parse_public((const char *)data, size, &pk, &e) == 0) {
        if (key_format_public(&pk, line, sizeof(line)) != 0 ||
            key_parse_public(line, strlen(line), &pk2, &e) != 0 ||
            memcmp(&pk, &pk2, sizeof(pk)) != 0)
            __builtin_trap();
    }
    if (key_parse_secret((const char *)data, size, &sk, &e) == 0) {
        if (key_format_secret(&sk, line, sizeof(line)) != 0 ||
            key_parse_secret(line, strlen(line), &sk2, &e) != 0 ||
            memcmp(&sk, &sk2, sizeof(sk)) != 0)
            __builtin_trap();
        key_secret_wipe(&sk2);
    }
    key_secret_wipe(&sk);
    pgs_identity_pub ip, ip2;
    pgs_identity_sec is;
    if (identity_parse_public((const char *)data, size, &ip, &e) == 0) {
        if (identity_format_public(&ip, line, sizeof(line)) != 0 ||
            identity_parse_public(line, strlen(line), &ip2, &e) != 0 ||
            memcmp(&ip, &ip2, sizeof(ip)) != 0)
            __builtin_trap();
    }
    if (identity_parse_secret((const char *)data, size, &is, &e) == 0) {
        /* A parsed identity key signs, and its public half verifies. */
        uint8_t sig[IDENTITY_SIG_LEN];
        pgs_identity_pub pub;
        memset(&pub, 0, sizeof(pub));
        memcpy(pub.pk, is.pk, KEY_LEN);
        identity_sign(&is, data, size, sig);
        if (identity_verify(&pub, data, size, sig) != 0)
            __builtin_trap();
    }
    identity_secret_wipe(&is);
    return 0;
}
