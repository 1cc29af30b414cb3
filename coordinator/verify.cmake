# Verifications (coordinator/verify.c): backups checked end to end by an agent holding one of
# their keys, dispatched through the fleet like restores and recorded in the catalog. The API
# (api.cmake) and the daemon (daemon.cmake) link it.
add_library(pgship_verify STATIC ${CMAKE_CURRENT_LIST_DIR}/verify.c)
target_link_libraries(pgship_verify PUBLIC pgship_fleet pgship_catalog pgship_coordinator_config
                      pgship_proto Threads::Threads)
