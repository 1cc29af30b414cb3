# The daemon: pgship-coordinator (coordinator/main.c).
add_executable(pgship-coordinator ${CMAKE_CURRENT_LIST_DIR}/main.c)
target_link_libraries(pgship-coordinator PRIVATE pgship_restore pgship_fleet pgship_monitor pgship_rebuild pgship_schedd
                      pgship_coordinator_config)
if(TARGET pgship_api)
  target_link_libraries(pgship-coordinator PRIVATE pgship_api)
  target_compile_definitions(pgship-coordinator PRIVATE PGSHIP_HAVE_API)
endif()
install(TARGETS pgship-coordinator RUNTIME DESTINATION bin)
target_link_libraries(pgship-coordinator PRIVATE pgship_alerter)
target_link_libraries(pgship-coordinator PRIVATE pgship_verify)
