# The scheduler's planning core (coordinator/scheduler.c): which scheduled backups start, wait or
# were missed, and when each database runs next. Pure like retention: no catalog, no clock, so
# the daemon links it and feeds it state.
add_library(pgship_scheduler STATIC ${CMAKE_CURRENT_LIST_DIR}/scheduler.c)
target_link_libraries(pgship_scheduler PUBLIC pgship_cron pgship_retention)

# The scheduler daemon (coordinator/schedd.c): the thread that carries out sched_plan's decisions
# through the fleet and the catalog, and prunes after schedules that name a retention.
add_library(pgship_schedd STATIC ${CMAKE_CURRENT_LIST_DIR}/schedd.c)
target_link_libraries(pgship_schedd PUBLIC pgship_scheduler pgship_prune pgship_fleet pgship_catalog
                      pgship_coordinator_config Threads::Threads)
