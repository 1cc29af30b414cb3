/*
 * The coordinator's metrics: a registry of counters and gauges that the coordinator's threads
 * update as things happen and the HTTP API renders for GET /metrics in the Prometheus text
 * exposition format 0.0.4 (docs/monitoring.md lists every metric for operators).
 *
 * One mutex guards the registry: updates are a few per job, so a lock is cheaper to reason
 * about than per-series atomics, and a scrape sees one consistent state. Memory is bounded:
 * at most METRICS_SERIES_MAX series in all, label values cut to METRICS_LABEL_VALUE_MAX bytes.
 * Names come from the code (checked at declare time); label values come from agents and
 * databases, so they are treated as untrusted: cut at a UTF-8 character boundary, invalid
 * UTF-8 replaced by U+FFFD, and escaped on output.
 *
 * The metrics the coordinator uses (metrics_declare_standard declares all of them):
 *
 *   name                                          type     labels
 *   pgship_backup_last_success_timestamp_seconds  gauge    agent, database, environment
 *   pgship_backup_duration_seconds                gauge    agent, database, environment (last)
 *   pgship_backup_bytes                           gauge    agent, database, environment (last)
 *   pgship_backups_total                          counter  agent, database, result
 *   pgship_backup_failures_total                  counter  agent, database, reason
 *   pgship_backup_overdue                         gauge    agent, database (1 or 0)
 *   pgship_agents_connected                       gauge    -
 *   pgship_storage_errors_total                   counter  op
 *   pgship_storage_retries_total                  counter  op
 *   pgship_jobs_queued                            gauge    -
 *   pgship_jobs_running                           gauge    -
 *   pgship_restores_total                         counter  result
 *   pgship_verifications_total                    counter  result
 *   pgship_webhook_deliveries_total               counter  webhook, result (delivered, failed,
 *                                                          dropped)
 *   pgship_webhook_retries_total                  counter  webhook
 *
 * result is "success" or "failure"; reason and op are short lowercase words chosen by the
 * caller (docs/monitoring.md lists them).
 */
#ifndef PGSHIP_COORDINATOR_METRICS_H
#define PGSHIP_COORDINATOR_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define METRICS_SERIES_MAX 100000    /* series over all metrics */
#define METRICS_METRICS_MAX 256      /* declared metric names */
#define METRICS_LABELS_MAX 8         /* label names per metric */
#define METRICS_NAME_MAX 128         /* bytes of a metric or label name */
#define METRICS_HELP_MAX 1024        /* bytes of a help text */
#define METRICS_LABEL_VALUE_MAX 1024 /* bytes of a label value; longer ones are cut */
#define METRICS_RENDER_HOOKS_MAX 16

/* What GET /metrics answers with in Content-Type. */
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#define METRICS_BACKUP_LAST_SUCCESS "pgship_backup_last_success_timestamp_seconds"
#define METRICS_BACKUP_DURATION "pgship_backup_duration_seconds"
#define METRICS_BACKUP_BYTES "pgship_backup_bytes"
#define METRICS_BACKUPS "pgship_backups_total"
#define METRICS_BACKUP_FAILURES "pgship_backup_failures_total"
#define METRICS_BACKUP_OVERDUE "pgship_backup_overdue"
#define METRICS_AGENTS_CONNECTED "pgship_agents_connected"
#define METRICS_STORAGE_ERRORS "pgship_storage_errors_total"
#define METRICS_STORAGE_RETRIES "pgship_storage_retries_total"
#define METRICS_JOBS_QUEUED "pgship_jobs_queued"
#define METRICS_JOBS_RUNNING "pgship_jobs_running"
#define METRICS_RESTORES "pgship_restores_total"
#define METRICS_VERIFICATIONS "pgship_verifications_total"
#define METRICS_WEBHOOK_DELIVERIES "pgship_webhook_deliveries_total"
#define METRICS_WEBHOOK_RETRIES "pgship_webhook_retries_total"

typedef struct metrics metrics;

typedef enum metrics_type { METRICS_COUNTER = 0, METRICS_GAUGE = 1 } metrics_type;

/* A new empty registry. 0 or PGS_ENOMEM. */
int metrics_new(metrics **out);
/* Frees the registry; nothing may use it any more (NULL is fine). */
void metrics_free(metrics *m);

/*
 * Declares a metric: name matches [a-zA-Z_:][a-zA-Z0-9_:]*, help is any text (at most
 * METRICS_HELP_MAX bytes), label_names is a NULL-terminated list (NULL for none) of distinct
 * names matching [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__" and not "le" or "quantile".
 * A metric without labels starts with its one series at 0. Declaring the same name again with
 * the same type and labels is a no-op (0).
 * Returns 0, PGS_EINVAL (a bad name, label name or help), PGS_EEXIST (declared before
 * differently), PGS_ELIMIT (too many metrics or labels) or PGS_ENOMEM.
 */
int metrics_declare(metrics *m, const char *name, metrics_type type, const char *help,
                    const char *const *label_names);

/* Declares every metric of the table above. 0 or a code of metrics_declare. */
int metrics_declare_standard(metrics *m);

/*
 * Updates of one series, made if needed. label_values is a NULL-terminated list with exactly as
 * many values as the metric has label names, in the same order (NULL for a metric without
 * labels). These never fail the caller: an update of an undeclared metric, with the wrong number
 * of values, that would decrease a counter (a negative or NaN add), or that would make a new
 * series past METRICS_SERIES_MAX is left out and counted (metrics_rejected), and the first one
 * is logged as a warning.
 */
void metrics_add(metrics *m, const char *name, const char *const *label_values, double v);
/* Sets a gauge, or a counter that mirrors a count kept elsewhere (a counter must not go down
 * between scrapes: the caller's count only grows). */
void metrics_set(metrics *m, const char *name, const char *const *label_values, double v);
/* Removes one series (a database that no longer exists); no series is not an error. */
void metrics_remove_series(metrics *m, const char *name, const char *const *label_values);
/* Removes every series of a metric, so that a render hook can set the whole metric again from
 * the catalog without leaving series of things that went away. A metric without labels is set
 * back to 0 instead. */
void metrics_clear(metrics *m, const char *name);

/* Updates left out since metrics_new (see metrics_add). */
uint64_t metrics_rejected(metrics *m);
/* Series stored now, over all metrics. */
size_t metrics_series_count(metrics *m);

/*
 * Registers fn(arg, m) to run at the start of every metrics_render, in registration order,
 * before the text is made: a hook refreshes gauges computed from elsewhere (the catalog's last
 * success per database, the fleet's connected agents) with metrics_set and metrics_clear.
 * Renders are serialized, so a hook never runs twice at once, and a hook's updates are all
 * in the text of the render that ran it. A hook must not call metrics_render or metrics_on_render.
 * 0, or PGS_ELIMIT after METRICS_RENDER_HOOKS_MAX hooks.
 */
int metrics_on_render(metrics *m, void (*fn)(void *arg, metrics *m), void *arg);

/*
 * Runs the hooks and renders every metric in the text format 0.0.4: metrics sorted by name,
 * each with "# HELP" and "# TYPE" lines, then its series sorted by label values. *text is
 * malloc'd, NUL-terminated, *len bytes without the NUL; the caller frees it.
 * 0 or PGS_ENOMEM (*text NULL).
 */
int metrics_render(metrics *m, char **text, size_t *len);

/* Formats v as the text format writes a sample value: the shortest decimal that reads back as
 * the same double, or "+Inf", "-Inf", "NaN". out has at least 32 bytes; returns the length. */
size_t metrics_format_value(double v, char *out, size_t cap);

#endif
