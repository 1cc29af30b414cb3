/*
 * The coordinator's Prometheus metrics (GET /metrics; names and meanings in docs/monitoring.md).
 *
 * Everything that can be read from the catalog (each database's last good backup, its duration
 * and size, backups and restores by result, failures by reason, jobs queued and running) is
 * computed when the page is scraped, from a catalog handle of the monitor's own: the catalog is
 * the truth, and a restarted coordinator serves the same figures. Agents connected come from the
 * fleet, storage errors and retries from the storage layer's counters. A scrape costs one pass
 * over the catalog's backups and restores.
 */
#ifndef PGSHIP_COORDINATOR_MONITOR_H
#define PGSHIP_COORDINATOR_MONITOR_H

#include "common/error.h"
#include "coordinator/fleet.h"
#include "coordinator/metrics.h"

typedef struct monitor monitor;

/* Opens its catalog handle on catalog_path and declares the standard metrics. fleet (borrowed,
 * may be NULL) must outlive monitor_free. */
int monitor_new(monitor **out, const char *catalog_path, fleet *f, pgs_error *e);
/* The registry the API renders (owned by the monitor). */
metrics *monitor_metrics(monitor *m);
/* The reason label of a failure message: agent_lost, coordinator_stopped, storage, dump,
 * missed, refused or other. */
const char *monitor_failure_reason(const char *error);
void monitor_free(monitor *m);

#endif
