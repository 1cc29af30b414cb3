/*
 * pgship schedules | prune | pin | unpin | stats | audit: fleet operations over the
 * coordinator's API (docs/cli.md). Not written yet: each says so.
 */
#include "client/commands.h"
#include "client/remote_internal.h"
#include "common/log.h"

static int not_yet(const char *what)
{
    log_error("pgship %s is not available in this build yet", what);
    return REMOTE_EXIT_USAGE;
}

int cmd_schedules(int argc, char **argv) { (void)argc; (void)argv; return not_yet("schedules"); }
int cmd_prune(int argc, char **argv) { (void)argc; (void)argv; return not_yet("prune"); }
int cmd_pin(int argc, char **argv) { (void)argc; (void)argv; return not_yet("pin"); }
int cmd_unpin(int argc, char **argv) { (void)argc; (void)argv; return not_yet("unpin"); }
int cmd_stats(int argc, char **argv) { (void)argc; (void)argv; return not_yet("stats"); }
int cmd_audit(int argc, char **argv) { (void)argc; (void)argv; return not_yet("audit"); }
