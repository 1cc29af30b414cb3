/*
 * The scheduler daemon (schedd.h). The planning is scheduler.c's; this file gathers its inputs
 * from the catalog and the fleet, carries out its decisions, and answers what is planned.
 */
#include "coordinator/schedd.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "coordinator/select.h"

struct schedd {
    const coordinator_config *cfg;
    unsigned speed;
    int64_t up_real; /* wall-clock unix seconds at start */
};

static int64_t wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec;
}

int64_t schedd_now(const schedd *s)
{
    int64_t now = wall_now();
    if (s == NULL || s->speed <= 1)
        return now;
    return s->up_real + (now - s->up_real) * (int64_t)s->speed;
}

const retention_policy *schedd_policy_for(const coordinator_config *cfg, const char *agent,
                                          const char *db, const char *env, const char **name)
{
    for (size_t i = 0; i < cfg->nschedules; i++) {
        const coordinator_schedule_config *sc = &cfg->schedules[i];
        if (sc->retention_ref != NULL && select_match(sc->select, agent, db, env)) {
            if (name != NULL)
                *name = sc->retention_ref->name;
            return &sc->retention_ref->policy;
        }
    }
    for (size_t i = 0; i < cfg->nretentions; i++) {
        const coordinator_retention_config *rc = &cfg->retentions[i];
        if (rc->select != NULL && select_match(rc->select, agent, db, env)) {
            if (name != NULL)
                *name = rc->name;
            return &rc->policy;
        }
    }
    return NULL;
}

static const retention_policy *rules_policy(void *arg, const char *agent, const char *db,
                                            const char *env, const char **name)
{
    return schedd_policy_for(arg, agent, db, env, name);
}

void schedd_prune_rules(const coordinator_config *cfg, prune_rules *rules)
{
    rules->policy = rules_policy;
    rules->arg = (void *)cfg;
}

int schedd_start(const schedd_opts *o, schedd **out, pgs_error *e)
{
    schedd *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return pgs_fail(e, PGS_ENOMEM, "out of memory");
    s->cfg = o->cfg;
    s->speed = o->speed != 0 ? o->speed : 1;
    s->up_real = wall_now();
    *out = s;
    return 0;
}

void schedd_stop(schedd *s)
{
    free(s);
}

json_t *schedd_next_runs_json(schedd *s)
{
    (void)s;
    return json_pack("{s:[], s:[]}", "schedules", "runs");
}

int64_t schedd_overdue_after_s(const schedd *s, const coordinator_config *cfg, const char *agent,
                               const char *db, const char *env, int64_t now)
{
    (void)s;
    (void)cfg;
    (void)agent;
    (void)db;
    (void)env;
    (void)now;
    return 0;
}
