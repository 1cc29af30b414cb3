/*
 * What the client's coordinator commands share (client/remote.c defines it): the common options,
 * the connection to the API, tables and the --wait loop. Commands in other files of client/
 * (ops.c, verify.c) build on these so that every command looks and fails the same way.
 */
#ifndef PGSHIP_CLIENT_REMOTE_INTERNAL_H
#define PGSHIP_CLIENT_REMOTE_INTERNAL_H

#include <getopt.h>
#include <stdint.h>
#include <stdio.h>

#include <curl/curl.h>
#include <jansson.h>

#include "client/remote.h"

#define URL_MAX 1024

enum { OPT_URL = 1000, OPT_TOKEN_FILE, OPT_TOKEN, OPT_JSON };

#define COMMON_LONG_OPTIONS                                                                        \
    {"url", required_argument, NULL, OPT_URL},                                                     \
        {"token-file", required_argument, NULL, OPT_TOKEN_FILE},                                   \
        {"token", required_argument, NULL, OPT_TOKEN}, {"json", no_argument, NULL, OPT_JSON},      \
    {                                                                                              \
        "help", no_argument, NULL, 'h'                                                             \
    }

#define COMMON_USAGE                                                                               \
    "      --url URL         the coordinator's API (default $PGSHIP_URL, else " REMOTE_DEFAULT_URL \
    ")\n"                                                                                          \
    "      --token-file FILE the API token (default $PGSHIP_TOKEN, else $PGSHIP_TOKEN_FILE)\n"     \
    "      --token TOKEN     the token itself: visible to other users in ps, so avoid it\n"        \
    "      --json            print the API's JSON on standard output\n"                            \
    "  -h, --help\n"

typedef struct common {
    const char *url;
    const char *token_file;
    const char *token_arg;
    int json;
} common;

/* 1 when ch was a common option (recorded in c). */
int common_opt(common *c, int ch, const char *arg);

typedef struct remote {
    char base[URL_MAX + 1]; /* without a trailing "/" */
    char *auth;             /* "Authorization: Bearer ..." (secret) */
    CURL *curl;
    int json;
    int quiet;        /* transport errors are only recorded (--wait's retries) */
    long last_status; /* of the last answer; 0 when none came */
    char last_err[CURL_ERROR_SIZE + 64];
} remote;

/* Resolves the URL and token (options, then environment) and prepares libcurl. Returns an exit
 * status: OK, or USAGE with the reason logged. */
int remote_open(remote *r, const common *c);
void remote_close(remote *r);
/* One request with an optional JSON body (json_body NULL: none); *out the answer's JSON object
 * on 2xx. Returns an exit status (errors logged, unless r->quiet); *status the HTTP status. */
int remote_json(remote *r, const char *method, const char *path, const char *json_body,
                json_t **out, long *status);

/* Text from the coordinator, safe for a terminal: control characters become '?'. NULL and ""
 * become "-". Returns a new string. */
char *clean_text(const char *s);
const char *jstr(json_t *o, const char *key);
/* "2026-11-21T16:05:29.123Z" -> "2026-11-21 16:05:29" (other text as it is). */
void short_time(const char *t, char *out, size_t cap);
void print_json(json_t *j);

/* A table: cells are copied; columns are as wide as their widest cell (in code points). */
#define TABLE_COLS 9
typedef struct table {
    size_t ncols;
    size_t nrows;
    size_t cap;
    char **cells; /* nrows x ncols */
} table;
void table_row(table *t, const char *const *cells);
void table_free(table *t);
/* Prints the rows, columns padded to their widest cell, and frees them. */
void table_print(table *t);
/* A size in bytes (a JSON integer) as "1.2 MiB", or "-". */
void size_text(json_t *v, char *out, size_t cap);
void elapsed_text(double s, char *out, size_t cap);

/* GET /v1/<collection>/<id> into *out: a job the API describes with at least "id" and
 * "state" (a backup, restore or verification; noun names it in messages). An exit status. */
int remote_get_job(remote *r, const char *collection, const char *noun, const char *id,
                   json_t **out);
/* "name           value" (value cleaned; "-" when NULL or empty): show's lines. */
void show_field(const char *name, const char *value);
/* A duration: "850 ms", "12.3 s", "4 min 05 s", "2 h 03 min"; "-" when negative (unknown). */
void ms_text(double ms, char *out, size_t cap);
/* Unix ms of the API's time text ("2026-11-21T16:05:29.123Z"), or -1. */
int64_t time_ms(const char *t);
/* A job's "report" object, or NULL. */
json_t *report_of(json_t *job);

/* Ids go into URL paths: letters, digits and '-' only, 1..31 characters. */
int id_ok(const char *id);
/* "AGENT/DB" (db_required) or "AGENT[/DB]" into the two buffers; 0 or -1 (logged). */
int split_target(const char *s, char *agent, char *db, size_t cap, int db_required);

/* A command's own option: 0 when ch was one (handled), -1 when it is not, or an exit status
 * (the reason already logged). */
typedef int (*own_opt_fn)(void *ctx, int ch, const char *arg);

/* The option loop every command shares: -h/--help, the common options, the command's own
 * (own may be NULL), then between min_args and max_args operands. Returns -1 to go on, or the
 * exit status to return. */
int parse_args(int argc, char **argv, const char *shortopts, const struct option *lo,
               void (*usage)(FILE *), own_opt_fn own, void *ctx, common *c, int min_args,
               int max_args);
/* A whole decimal number in [min, max] from an option's argument: 0, or -1. */
int parse_count(const char *arg, unsigned long min, unsigned long max, unsigned long *out);

void msleep(int ms);
/* What --wait keeps between polls of one job, for its progress lines on standard error. */
typedef struct wait_view {
    int tty;
    int drawn;        /* a line is on the terminal: end it before anything else is written */
    double last_line; /* without a terminal: when the last line was printed */
    char prev[96];    /* what the last poll showed (a backup's phase, a restore's step) */
} wait_view;

/* A kind of job --wait polls: a backup or a restore. */
typedef struct wait_kind {
    const char *noun;     /* in messages */
    const char *show_cmd; /* the command that shows it later */
    /* what ends a drawn line: a backup's one line is erased, a restore's steps stay */
    const char *end_line;
    int (*get)(remote *r, const char *id, json_t **out);
    void (*draw)(wait_view *v, const char *id, json_t *j, const char *state, double now);
} wait_kind;
/* Polls job id of kind k until its "state" is complete or failed. Returns the exit status
 * (0 complete, 1 failed or timed out); *last is the final answer. */
int wait_final(remote *r, const wait_kind *k, const char *id, unsigned long timeout_s,
               json_t **last);

#endif
