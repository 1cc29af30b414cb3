# The coordinator's configuration file (config.c): parsing, validation and the --check-config
# printer, on the INI layer of pgship_common. It parses the schedules' cron expressions
# (pgship_cron) and the selectors and retention rules (pgship_retention) at load.
add_library(pgship_coordinator_config STATIC ${CMAKE_CURRENT_LIST_DIR}/config.c)
target_link_libraries(pgship_coordinator_config PUBLIC pgship_common pgship_cron pgship_retention)
