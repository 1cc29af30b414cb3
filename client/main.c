/*
 * pgship: the operator's client. Offline commands (keygen, decrypt) work with files only; the
 * commands that talk to a coordinator come with the shipping work.
 */
#include <stdio.h>
#include <string.h>

#include "client/commands.h"
#include "common/log.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: pgship COMMAND [OPTIONS]\n"
               "\n"
               "offline commands:\n"
               "  keygen NAME        make a recipient key pair: NAME.pub and NAME.key (mode 0600)\n"
               "  decrypt            decrypt an archive: plain tar, --extract DIR, or --list\n"
               "\n"
               "pgship COMMAND --help shows a command's options; pgship --version.\n");
}

int main(int argc, char **argv)
{
    log_init("pgship");
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("pgship %s\n", PGSHIP_VERSION);
        return 0;
    }
    if (strcmp(cmd, "keygen") == 0)
        return cmd_keygen(argc - 1, argv + 1);
    if (strcmp(cmd, "decrypt") == 0)
        return cmd_decrypt(argc - 1, argv + 1);
    log_error("unknown command \"%s\"", cmd);
    usage(stderr);
    return 2;
}
