/*
 * pgship verify | verifications: backups checked end to end on an agent (docs/cli.md). Not
 * written yet: each says so.
 */
#include "client/commands.h"
#include "client/remote_internal.h"
#include "common/log.h"

static int not_yet(const char *what)
{
    log_error("pgship %s is not available in this build yet", what);
    return REMOTE_EXIT_USAGE;
}

int cmd_verify(int argc, char **argv) { (void)argc; (void)argv; return not_yet("verify"); }
int cmd_verifications(int argc, char **argv) { (void)argc; (void)argv; return not_yet("verifications"); }
