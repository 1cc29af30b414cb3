/*
 * Restores and syncs on the coordinator (see restore.h). Placeholder while the real one is
 * written: every request is refused.
 */
#include "coordinator/restore.h"

#include <stdlib.h>

struct restorer {
    restorer_opts o;
};

int restorer_start(const restorer_opts *o, restorer **out, pgs_error *e)
{
    restorer *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    r->o = *o;
    *out = r;
    return 0;
}

void restorer_stop(restorer *r)
{
    free(r);
}

int restorer_request(restorer *r, catalog *cat, const restore_request *req,
                     const char *requested_by, char id_out[CATALOG_ID_SIZE], pgs_error *e)
{
    (void)r, (void)cat, (void)req, (void)requested_by, (void)id_out;
    return pgs_fail(e, PGS_EINVAL, "restores are not available yet");
}

int restorer_progress_get(restorer *r, const char *id, restorer_progress *out)
{
    (void)r, (void)id, (void)out;
    return 0;
}
