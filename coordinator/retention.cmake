# Retention (coordinator/retention.c: policies and the planner of `pgship prune`) and database
# selectors (coordinator/select.c: which databases a schedule or a policy applies to). Both are
# pure: no catalog, no storage, no clock.
add_library(pgship_retention STATIC ${CMAKE_CURRENT_LIST_DIR}/retention.c
            ${CMAKE_CURRENT_LIST_DIR}/select.c)
target_link_libraries(pgship_retention PUBLIC pgship_common)
