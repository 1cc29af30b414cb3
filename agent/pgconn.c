/* Connecting to PostgreSQL without exposing the conninfo (see pgconn.h). */
#include "agent/pgconn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

int pgconn_conninfo_append(char **s, const char *kw, const char *val)
{
    size_t old = *s ? strlen(*s) : 0;
    size_t need = old + strlen(kw) + 2 * strlen(val) + 8;
    char *n = realloc(*s, need);
    if (n == NULL)
        return -1;
    char *p = n + old;
    if (old)
        *p++ = ' ';
    p += sprintf(p, "%s='", kw);
    for (const char *v = val; *v; v++) {
        if (*v == '\'' || *v == '\\')
            *p++ = '\\';
        *p++ = *v;
    }
    *p++ = '\'';
    *p = '\0';
    *s = n;
    return 0;
}

static PQconninfoOption *parse(const char *conninfo, pgs_error *e)
{
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
    if (opts == NULL) {
        /* libpq's message names the syntax problem, never a value. */
        char msg[300];
        snprintf(msg, sizeof(msg), "%s", err ? err : "out of memory");
        msg[strcspn(msg, "\n")] = '\0';
        pgs_fail(e, err ? PGS_EINVAL : PGS_ENOMEM, "invalid conninfo: %s", msg);
        PQfreemem(err);
    }
    return opts;
}

void pgconn_secret_free(char *s)
{
    if (s == NULL)
        return;
    memset(s, 0, strlen(s));
    free(s);
}

int pgconn_child_build(pgconn_child *c, const char *conninfo, const char *dbname, pgs_error *e)
{
    memset(c, 0, sizeof(*c));
    PQconninfoOption *opts = parse(conninfo, e);
    if (opts == NULL)
        return e ? e->code : PGS_EINVAL;
    size_t nenv = 0, nopt = 0;
    while (environ[nenv])
        nenv++;
    for (PQconninfoOption *p = opts; p->keyword; p++)
        nopt++;
    c->env = calloc(nenv + nopt + 2, sizeof(char *));
    if (c->env == NULL) {
        PQconninfoFree(opts);
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    }
    size_t k = 0;
    int rc = 0;
    for (PQconninfoOption *p = opts; p->keyword && rc == 0; p++) {
        const char *val = p->val;
        int is_dbname = strcmp(p->keyword, "dbname") == 0;
        if (is_dbname && dbname != NULL)
            val = dbname;
        if (val == NULL || val[0] == '\0')
            continue;
        if (p->envvar == NULL && p->dispchar != NULL && p->dispchar[0] == '*') {
            /* A secret libpq reads from no variable (sslpassword) would land on the command
             * line; refuse it rather than show it to every user of the host. */
            rc = pgs_fail(e, PGS_EINVAL,
                          "the conninfo's %s cannot be given to a PostgreSQL program without "
                          "showing it on its command line; use a service file instead",
                          p->keyword);
            break;
        }
        if (p->envvar != NULL) {
            size_t len = strlen(p->envvar) + strlen(val) + 2;
            c->env[k] = malloc(len);
            if (c->env[k] == NULL) {
                rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
                break;
            }
            snprintf(c->env[k], len, "%s=%s", p->envvar, val);
            k++;
        }
        /* An overridden dbname also goes on the command line: it wins over a service file's, and
         * pg_restore takes its target only from there. A database name is no secret. */
        if ((p->envvar == NULL || (is_dbname && dbname != NULL)) &&
            pgconn_conninfo_append(&c->dbname_arg, p->keyword, val) != 0)
            rc = pgs_fail(e, PGS_ENOMEM, "out of memory");
    }
    PQconninfoFree(opts);
    if (rc != 0) {
        pgconn_child_free(c);
        return rc;
    }
    size_t ours = k;
    /* Inherited variables, unless a conninfo parameter overrides them. */
    for (size_t i = 0; i < nenv; i++) {
        size_t nl = strcspn(environ[i], "=");
        int overridden = 0;
        for (size_t j = 0; j < ours && !overridden; j++)
            overridden = strncmp(c->env[j], environ[i], nl + 1) == 0;
        if (!overridden && (c->env[k] = strdup(environ[i])) != NULL)
            k++;
    }
    c->env[k] = NULL;
    return 0;
}

void pgconn_child_free(pgconn_child *c)
{
    if (c->env != NULL) {
        for (char **p = c->env; *p; p++)
            pgconn_secret_free(*p); /* PGPASSWORD may be among them */
        free(c->env);
    }
    pgconn_secret_free(c->dbname_arg);
    memset(c, 0, sizeof(*c));
}

static void drop_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

void pgconn_error_line(const PGconn *conn, char *out, size_t cap)
{
    /* libpq's messages may span lines ("... failed: Connection refused\n\tIs the server
     * running ...?"): one line, each run of white space one space. */
    const char *m = conn ? PQerrorMessage(conn) : "out of memory";
    size_t o = 0;
    int space = 0;
    for (; *m && o + 1 < cap; m++) {
        if (*m == ' ' || *m == '\n' || *m == '\t' || *m == '\r') {
            space = o > 0;
            continue;
        }
        if (space && o + 2 < cap)
            out[o++] = ' ';
        space = 0;
        out[o++] = *m;
    }
    if (cap > 0)
        out[o] = '\0';
}

PGconn *pgconn_connect(const char *conninfo, const char *dbname, pgs_error *e)
{
    /* Processed in order, the last value of a keyword wins: our defaults first, then the
     * conninfo (the first dbname is expanded as a whole conninfo), then the override. */
    const char *kw[] = {"connect_timeout", "application_name", "dbname", NULL, NULL};
    const char *val[] = {"10", "pgship-agent", conninfo, NULL, NULL};
    if (dbname != NULL) {
        kw[3] = "dbname";
        val[3] = dbname;
    }
    PGconn *conn = PQconnectdbParams(kw, val, 1);
    if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
        char msg[400];
        pgconn_error_line(conn, msg, sizeof(msg));
        if (dbname != NULL)
            pgs_fail(e, PGS_EIO, "cannot connect to database %s: %s", dbname, msg);
        else
            pgs_fail(e, PGS_EIO, "cannot connect to the database: %s", msg);
        PQfinish(conn);
        return NULL;
    }
    PQsetNoticeProcessor(conn, drop_notice, NULL);
    PQsetClientEncoding(conn, "UTF8");
    return conn;
}

PGconn *pgconn_connect_maintenance(const char *conninfo, pgs_error *e)
{
    pgs_error first = {0};
    PGconn *conn = pgconn_connect(conninfo, "postgres", &first);
    if (conn != NULL)
        return conn;
    /* Only a missing postgres database is a reason to try template1; anything else (a refused
     * connection, a bad password) would fail there too, and the first message says why. */
    if (strstr(first.msg, "does not exist") != NULL &&
        (conn = pgconn_connect(conninfo, "template1", NULL)) != NULL)
        return conn;
    if (e != NULL)
        *e = first;
    return NULL;
}

int pgconn_dbname(const char *conninfo, char *out, size_t cap, pgs_error *e)
{
    PQconninfoOption *opts = parse(conninfo, e);
    if (opts == NULL)
        return e ? e->code : PGS_EINVAL;
    const char *v = NULL;
    for (PQconninfoOption *p = opts; p->keyword; p++)
        if (strcmp(p->keyword, "dbname") == 0 && p->val != NULL && p->val[0] != '\0')
            v = p->val;
    if (v == NULL && getenv("PGDATABASE") != NULL && getenv("PGDATABASE")[0] != '\0')
        v = getenv("PGDATABASE");
    int rc = 0;
    if (v == NULL)
        rc = pgs_fail(e, PGS_EINVAL, "the conninfo names no database (dbname)");
    else if (strlen(v) >= cap)
        rc = pgs_fail(e, PGS_ELIMIT, "the database name is longer than %zu bytes", cap - 1);
    else
        snprintf(out, cap, "%s", v);
    PQconninfoFree(opts);
    return rc;
}

char *pgconn_with_dbname(const char *conninfo, const char *dbname)
{
    PQconninfoOption *opts = parse(conninfo, NULL);
    if (opts == NULL)
        return NULL;
    char *s = NULL;
    int bad = 0, have_db = 0;
    for (PQconninfoOption *p = opts; p->keyword && !bad; p++) {
        const char *val = p->val;
        if (strcmp(p->keyword, "dbname") == 0) {
            val = dbname;
            have_db = 1;
        }
        if (val != NULL && val[0] != '\0')
            bad = pgconn_conninfo_append(&s, p->keyword, val) != 0;
    }
    if (!have_db && !bad)
        bad = pgconn_conninfo_append(&s, "dbname", dbname) != 0;
    PQconninfoFree(opts);
    if (bad) {
        pgconn_secret_free(s);
        return NULL;
    }
    return s;
}
