# Cron expressions and the TZif reader behind their time zones (the coordinator's schedules).
add_library(pgship_cron STATIC ${CMAKE_CURRENT_LIST_DIR}/cron.c ${CMAKE_CURRENT_LIST_DIR}/tzfile.c)
target_link_libraries(pgship_cron PUBLIC pgship_common)
