/*
 * The API's verify routes (coordinator/api_internal.h). Not written yet: nothing here is routed.
 */
#include "coordinator/api_internal.h"

int api_verify_route(api *a, api_job *job, const char *method, const char *path, const char *query)
{
    (void)a;
    (void)job;
    (void)method;
    (void)path;
    (void)query;
    return 0;
}
