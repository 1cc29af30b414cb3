# The live fleet and its transport: connected agents, their jobs, the nng server
# (coordinator/fleet.c, coordinator/server.c).
add_library(pgship_fleet STATIC ${CMAKE_CURRENT_LIST_DIR}/fleet.c)
target_link_libraries(pgship_fleet PUBLIC pgship_ingest pgship_catalog pgship_storage pgship_net
                      pgship_proto nng::nng Threads::Threads)
