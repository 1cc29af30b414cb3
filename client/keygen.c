/* pgship keygen NAME: a recipient key pair (see common/keys.h for the file format). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "client/commands.h"
#include "common/keys.h"
#include "common/log.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: pgship keygen [--json] NAME\n"
               "\n"
               "Makes an X25519 recipient key pair: NAME.pub (give it to agents as a --recipient or\n"
               "in their recipients setting) and NAME.key (mode 0600: whoever holds it can decrypt\n"
               "every archive sealed to NAME.pub; keep a copy offline). NAME may include a\n"
               "directory; its last part (1-63 of A-Z a-z 0-9 . _ -) names the key. Existing\n"
               "files are never overwritten.\n");
}

int cmd_keygen(int argc, char **argv)
{
    static const struct option lo[] = {
        {"json", no_argument, NULL, 'J'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int json = 0, ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        if (ch == 'h') {
            usage(stdout);
            return 0;
        }
        if (ch != 'J') {
            usage(stderr);
            return 2;
        }
        json = 1;
    }
    if (argc - optind != 1) {
        usage(stderr);
        return 2;
    }
    if (sodium_init() < 0) {
        log_error("libsodium failed to initialize");
        return 1;
    }
    pgs_pubkey pk;
    pgs_error e = {0};
    if (key_generate_files(argv[optind], &pk, &e) != 0) {
        log_error("%s", e.msg);
        return 1;
    }
    char id[KEY_ID_HEX_LEN + 1];
    key_id_hex(pk.id, id);
    if (json) {
        char pub[4200], sec[4200];
        snprintf(pub, sizeof(pub), "%s.pub", argv[optind]);
        snprintf(sec, sizeof(sec), "%s.key", argv[optind]);
        json_t *j = json_pack("{s:s, s:s, s:s, s:s}", "name", pk.name, "key_id", id, "public",
                              pub, "secret", sec);
        json_dumpf(j, stdout, JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        json_decref(j);
    } else
        fprintf(stderr, "pgship: wrote %s.pub and %s.key (key id %s)\n", argv[optind],
                argv[optind], id);
    return 0;
}
