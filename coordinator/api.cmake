# The admin HTTP API (coordinator/api.c): nng's HTTP server over the catalog, the live fleet and
# storage.
add_library(pgship_api STATIC ${CMAKE_CURRENT_LIST_DIR}/api.c ${CMAKE_CURRENT_LIST_DIR}/api_ops.c
            ${CMAKE_CURRENT_LIST_DIR}/api_verify.c ${CMAKE_CURRENT_LIST_DIR}/api_status.c
            ${CMAKE_CURRENT_LIST_DIR}/status.c)
target_link_libraries(pgship_api PUBLIC pgship_schedd pgship_prune pgship_metrics pgship_restore pgship_fleet pgship_catalog pgship_storage pgship_proto
                      nng::nng Threads::Threads)
target_link_libraries(pgship_api PUBLIC pgship_verify)
