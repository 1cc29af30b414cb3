# The scheduler's planning core (coordinator/scheduler.c): which scheduled backups start, wait or
# were missed, and when each database runs next. Pure like retention: no catalog, no clock, so
# the daemon links it and feeds it state.
add_library(pgship_scheduler STATIC ${CMAKE_CURRENT_LIST_DIR}/scheduler.c)
target_link_libraries(pgship_scheduler PUBLIC pgship_cron pgship_retention)
