/* The pgship client's commands; each returns the process exit status. */
#ifndef PGSHIP_CLIENT_COMMANDS_H
#define PGSHIP_CLIENT_COMMANDS_H

int cmd_keygen(int argc, char **argv);
int cmd_decrypt(int argc, char **argv);

/* Restores and syncs through the coordinator (client/remote.c, beside the commands remote.h
 * declares). */
int cmd_restore(int argc, char **argv);
int cmd_sync(int argc, char **argv);
int cmd_restores(int argc, char **argv);

/* Verifications (client/verify.c). */
int cmd_verify(int argc, char **argv);
int cmd_verifications(int argc, char **argv);

/* Fleet operations (client/ops.c). */
int cmd_schedules(int argc, char **argv);
int cmd_prune(int argc, char **argv);
int cmd_pin(int argc, char **argv);
int cmd_unpin(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_audit(int argc, char **argv);

#endif
