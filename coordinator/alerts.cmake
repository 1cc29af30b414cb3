# The alerter (coordinator/alerter.c): the thread that posts webhooks for the failures the catalog
# records and for databases overdue for a backup, and gives GET /metrics the overdue gauges and
# the webhooks' counts.
add_library(pgship_alerter STATIC ${CMAKE_CURRENT_LIST_DIR}/alerter.c)
target_link_libraries(pgship_alerter PUBLIC pgship_webhook pgship_monitor pgship_schedd
                      pgship_catalog pgship_coordinator_config Threads::Threads)
