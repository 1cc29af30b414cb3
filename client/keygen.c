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
    fprintf(f, "usage: pgship keygen [--identity] [--json] NAME\n"
               "\n"
               "Makes an X25519 recipient key pair: NAME.pub (give it to agents as a --recipient or\n"
               "in their recipients setting) and NAME.key (mode 0600: whoever holds it can decrypt\n"
               "every archive sealed to NAME.pub; keep a copy offline). NAME may include a\n"
               "directory; its last part (1-63 of A-Z a-z 0-9 . _ -) names the key. Existing\n"
               "files are never overwritten.\n"
               "\n"
               "  --identity   an Ed25519 identity key pair instead, with which an agent proves its\n"
               "               name to the coordinator: NAME.key stays on the agent (identity_key),\n"
               "               NAME.pub goes into the coordinator's [agent NAME] public_key\n"
               "  --json       print name, key_id and the two paths as JSON on stdout\n");
}

int cmd_keygen(int argc, char **argv)
{
    static const struct option lo[] = {
        {"json", no_argument, NULL, 'J'},
        {"identity", no_argument, NULL, 'I'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int json = 0, identity = 0, ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        if (ch == 'h') {
            usage(stdout);
            return 0;
        }
        if (ch == 'I') {
            identity = 1;
            continue;
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
    pgs_error e = {0};
    char id[KEY_ID_HEX_LEN + 1], name[KEY_NAME_MAX + 1];
    int rc;
    if (identity) {
        pgs_identity_pub ipk;
        rc = identity_generate_files(argv[optind], &ipk, &e);
        key_id_hex(ipk.id, id);
        snprintf(name, sizeof(name), "%s", ipk.name);
    } else {
        pgs_pubkey pk;
        rc = key_generate_files(argv[optind], &pk, &e);
        key_id_hex(pk.id, id);
        snprintf(name, sizeof(name), "%s", pk.name);
    }
    if (rc != 0) {
        log_error("%s", e.msg);
        return 1;
    }
    if (json) {
        char pub[4200], sec[4200];
        snprintf(pub, sizeof(pub), "%s.pub", argv[optind]);
        snprintf(sec, sizeof(sec), "%s.key", argv[optind]);
        json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", name, "kind",
                              identity ? "identity" : "recipient", "key_id", id, "public", pub,
                              "secret", sec);
        json_dumpf(j, stdout, JSON_PRESERVE_ORDER);
        fputc('\n', stdout);
        json_decref(j);
    } else
        fprintf(stderr, "pgship: wrote %s.pub and %s.key (%s key id %s)\n", argv[optind],
                argv[optind], identity ? "identity" : "recipient", id);
    return 0;
}
