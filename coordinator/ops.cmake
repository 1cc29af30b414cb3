# Monitoring (docs/monitoring.md): the metrics registry that GET /metrics renders, and webhook
# delivery to an operator's endpoint.
if(NOT TARGET PkgConfig::CURL)
  pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)
endif()

add_library(pgship_metrics STATIC ${CMAKE_CURRENT_LIST_DIR}/metrics.c)
target_link_libraries(pgship_metrics PUBLIC pgship_common Threads::Threads m)

add_library(pgship_webhook STATIC ${CMAKE_CURRENT_LIST_DIR}/webhook.c)
target_link_libraries(pgship_webhook PUBLIC pgship_common PkgConfig::CURL PkgConfig::JANSSON
                      PkgConfig::SODIUM Threads::Threads)

# What GET /metrics shows, computed at scrape time from the catalog, the fleet and storage.
add_library(pgship_monitor STATIC ${CMAKE_CURRENT_LIST_DIR}/monitor.c)
target_link_libraries(pgship_monitor PUBLIC pgship_metrics pgship_catalog pgship_fleet pgship_storage)
