/*
 * Reaching a database from a conninfo that may hold a password, for the agent's libpq connections
 * and for the PostgreSQL programs it runs (pg_dump, pg_dumpall, pg_restore).
 *
 * The conninfo never reaches a child's argv (visible to every user of the host) or a log: each of
 * its parameters that libpq also reads from the environment (PGPASSWORD, PGHOST, ...) goes to the
 * child as that variable; the others, which hold no secret, go to --dbname as a conninfo string.
 * A database-name override (the restore's temporary database, the maintenance database) is the
 * same conninfo with only dbname changed.
 */
#ifndef PGSHIP_AGENT_PGCONN_H
#define PGSHIP_AGENT_PGCONN_H

#include <libpq-fe.h>
#include <stddef.h>

#include "common/error.h"

/* What a child program needs to connect. */
typedef struct pgconn_child {
    /* The full environment for spawn_opts.envp: ours, with the conninfo's parameters overriding
     * the PG* variables. Secret (PGPASSWORD may be among them); wiped by pgconn_child_free. */
    char **env;
    /* For the child's --dbname: the parameters without an environment variable, and dbname when
     * it was overridden (pg_restore needs its target there). NULL when there are none. */
    char *dbname_arg;
} pgconn_child;

/*
 * Builds the child's environment and --dbname from conninfo, with dbname (if not NULL) in place
 * of the conninfo's own. On failure c holds nothing and e says why (never quoting the conninfo).
 */
int pgconn_child_build(pgconn_child *c, const char *conninfo, const char *dbname, pgs_error *e);
/* Wipes and frees; safe on a zeroed or freed c. */
void pgconn_child_free(pgconn_child *c);

/*
 * Connects with conninfo, dbname (if not NULL) in place of its database. application_name is
 * "pgship-agent" and connect_timeout 10 s unless the conninfo sets its own; notices are dropped
 * (a one-shot command's stderr and the daemon's log are not the server's), client_encoding is
 * UTF8. Returns the connection, or NULL with e saying "cannot connect to database X: <libpq's
 * message>".
 */
PGconn *pgconn_connect(const char *conninfo, const char *dbname, pgs_error *e);

/* Connects to the maintenance database of conninfo's server: postgres, else template1. */
PGconn *pgconn_connect_maintenance(const char *conninfo, pgs_error *e);

/* The database conninfo names (dbname, else PGDATABASE), into out. PGS_EINVAL when neither is
 * set: the agent never guesses which database it would replace. */
int pgconn_dbname(const char *conninfo, char *out, size_t cap, pgs_error *e);

/* conninfo with its dbname replaced, as a keyword='value' string (secret: free with
 * pgconn_secret_free). NULL when conninfo does not parse or memory runs out. */
char *pgconn_with_dbname(const char *conninfo, const char *dbname);
void pgconn_secret_free(char *s);

/* Appends keyword='value' to *s (a conninfo string or NULL), quoting as libpq requires. */
int pgconn_conninfo_append(char **s, const char *kw, const char *val);

/* The first line of PQerrorMessage(conn), into out. */
void pgconn_error_line(const PGconn *conn, char *out, size_t cap);

#endif
