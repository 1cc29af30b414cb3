/*
 * The pgship client's commands that talk to a coordinator over its HTTP API (docs/api.md):
 * agents, backup, ls, show and fetch. Each returns the process exit status (docs/cli.md):
 */
#ifndef PGSHIP_CLIENT_REMOTE_H
#define PGSHIP_CLIENT_REMOTE_H

enum {
    REMOTE_EXIT_OK = 0,
    REMOTE_EXIT_FAILED = 1, /* the operation failed: a failed backup, a digest mismatch, 404 */
    REMOTE_EXIT_USAGE = 2,  /* bad command line, no token */
    REMOTE_EXIT_REACH = 3,  /* no coordinator at the URL, the token refused, not the API */
};

/* The coordinator's address when neither --url nor PGSHIP_URL is given. */
#define REMOTE_DEFAULT_URL "http://127.0.0.1:7434"

int cmd_agents(int argc, char **argv);
int cmd_backup(int argc, char **argv);
int cmd_ls(int argc, char **argv);
int cmd_show(int argc, char **argv);
int cmd_fetch(int argc, char **argv);

#endif
