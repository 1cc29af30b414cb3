/*
 * Finding PostgreSQL client programs. A dump must be made by a pg_dump whose major version is at
 * least the server's; among those we take the lowest, because pg_restore refuses archives from a
 * newer pg_dump, so the lowest suitable version restores in the most places.
 */
#ifndef PGSHIP_AGENT_PGBIN_H
#define PGSHIP_AGENT_PGBIN_H

#include "common/error.h"

typedef struct pgbin {
    char dir[4096];      /* directory holding the chosen program */
    char path[4096];     /* full path of the chosen program */
    char version[64];    /* e.g. "15.20" */
    int major;
} pgbin;

/* Parses "pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)" into version and major. */
int pgbin_parse_version(const char *text, char *version, size_t cap, int *major);

/* Chooses PROG (e.g. "pg_dump") for a server of major version server_major. With bindir set,
 * looks only there; otherwise in /usr/lib/postgresql/N/bin and every PATH directory. The error
 * names what was looked for, where, and what was found. */
int pgbin_find(const char *prog, int server_major, const char *bindir, pgbin *out, pgs_error *e);

#endif
