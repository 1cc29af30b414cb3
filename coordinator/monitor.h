/*
 * The coordinator's Prometheus metrics (GET /metrics; names and meanings in docs/monitoring.md).
 *
 * Everything that can be read from the catalog (each database's last good backup, its duration
 * and size, backups and restores by result, failures by reason, jobs queued and running) is
 * computed when the page is scraped, from a catalog handle of the monitor's own: the catalog is
 * the truth, and a restarted coordinator serves the same figures. Agents connected come from the
 * fleet, storage errors and retries from the storage layer's counters. A scrape costs one pass
 * over the catalog's backups, restores and verifications. What the catalog cannot say (which
 * databases are overdue, what the webhooks delivered) comes from a source the alerter registers
 * (monitor_set_source).
 */
#ifndef PGSHIP_COORDINATOR_MONITOR_H
#define PGSHIP_COORDINATOR_MONITOR_H

#include "common/error.h"
#include "coordinator/fleet.h"
#include "coordinator/metrics.h"

typedef struct monitor monitor;

/* Not in metrics_declare_standard: declared by monitor_new. Labels agent, database. */
#define MONITOR_LAST_VERIFICATION "pgship_last_verification_timestamp_seconds"

/* Opens its catalog handle on catalog_path and declares the standard metrics. fleet (borrowed,
 * may be NULL) must outlive monitor_free. */
int monitor_new(monitor **out, const char *catalog_path, fleet *f, pgs_error *e);
/* The registry the API renders (owned by the monitor). */
metrics *monitor_metrics(monitor *m);
/* The reason label of a failure message: missed, agent_lost, coordinator_stopped, database (the
 * agent could not connect to it), refused, storage, dump or other. */
const char *monitor_failure_reason(const char *error);
/*
 * Makes fn(arg, reg) part of every scrape, after the catalog's figures: the metrics another module
 * keeps in memory (the alerter's pgship_backup_overdue and webhook counts). One source at a time;
 * fn NULL removes it. Returns once no scrape is running the previous source any more, so its arg
 * may be freed after removing it.
 */
void monitor_set_source(monitor *m, void (*fn)(void *arg, metrics *reg), void *arg);
void monitor_free(monitor *m);

#endif
