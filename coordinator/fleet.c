/* Stub: the real fleet arrives with the coordinator daemon. */
#include "coordinator/fleet.h"

json_t *fleet_agents_json(fleet *f)
{
    (void)f;
    return json_array();
}

int fleet_backup_request(fleet *f, catalog *cat, const char *agent, const char *db,
                         const char *label, const char *requested_by, char id_out[CATALOG_ID_SIZE],
                         pgs_error *e)
{
    (void)f, (void)cat, (void)db, (void)label, (void)requested_by;
    id_out[0] = 0;
    return pgs_fail(e, PGS_ENOTFOUND, "agent %s is not connected", agent);
}

const char *fleet_phase_name(enum fleet_phase p)
{
    switch (p) {
    case FLEET_QUEUED: return "queued";
    case FLEET_SENT: return "sent";
    case FLEET_STREAMING: return "streaming";
    case FLEET_FINISHING: return "finishing";
    }
    return "?";
}

int fleet_job_progress(fleet *f, const char *id, fleet_progress *out)
{
    (void)f, (void)id, (void)out;
    return 0;
}
