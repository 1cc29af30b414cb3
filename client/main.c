/*
 * pgship: the operator's client. Offline commands (keygen, decrypt) work with files only; the
 * others talk to a coordinator's HTTP API (client/remote.c).
 */
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "client/commands.h"
#include "client/remote.h"
#include "common/log.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: pgship COMMAND [OPTIONS]\n"
               "\n"
               "offline commands:\n"
               "  keygen NAME        make a recipient key pair: NAME.pub and NAME.key (mode 0600)\n"
               "  decrypt            decrypt an archive: plain tar, --extract DIR, or --list\n"
               "\n"
               "coordinator commands (--url URL or PGSHIP_URL; --token-file FILE or PGSHIP_TOKEN):\n"
               "  agents             the agents, connected or not, with their databases\n"
               "  backup AGENT/DB    ask for a backup now (--wait to follow it to the end)\n"
               "  ls [AGENT[/DB]]    list backups, newest first\n"
               "  show ID            one backup in detail, with its progress while it runs\n"
               "  fetch ID -o FILE   download a backup's archive, verified against the catalog\n"
               "  restore SOURCE --to AGENT/DB\n"
               "                     replace a database with a backup (ID or AGENT/DB@latest),\n"
               "                     optionally sanitized (--sanitize PROFILE); safe: on any\n"
               "                     failure the target is untouched\n"
               "  sync AGENT/DB --to AGENT/DB\n"
               "                     a fresh backup of one database restored into another\n"
               "  restores [ID]      the history of restores and syncs, or one's report\n"
               "  verify ID          check a backup end to end on an agent (--restore-test to\n"
               "                     restore it into a scratch database too)\n"
               "  verifications [ID] the history of verifications, or one's result\n"
               "  schedules          each scheduled database's next run\n"
               "  prune [--dry-run]  apply the retention policies: each backup's fate and why\n"
               "  pin ID, unpin ID   keep a backup whatever the retention says, or stop keeping it\n"
               "  stats              per database: count, sizes, newest and oldest backup\n"
               "  audit              who changed what, and when\n"
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
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } remote_cmds[] = {{"agents", cmd_agents},
                       {"backup", cmd_backup},
                       {"ls", cmd_ls},
                       {"show", cmd_show},
                       {"fetch", cmd_fetch},
                       {"restore", cmd_restore},
                       {"sync", cmd_sync},
                       {"restores", cmd_restores},
                       {"verify", cmd_verify},
                       {"verifications", cmd_verifications},
                       {"schedules", cmd_schedules},
                       {"prune", cmd_prune},
                       {"pin", cmd_pin},
                       {"unpin", cmd_unpin},
                       {"stats", cmd_stats},
                       {"audit", cmd_audit}};
    for (size_t i = 0; i < sizeof(remote_cmds) / sizeof(remote_cmds[0]); i++) {
        if (strcmp(cmd, remote_cmds[i].name) == 0) {
            curl_global_init(CURL_GLOBAL_DEFAULT);
            int rc = remote_cmds[i].fn(argc - 1, argv + 1);
            curl_global_cleanup();
            return rc;
        }
    }
    log_error("unknown command \"%s\"", cmd);
    usage(stderr);
    return 2;
}
