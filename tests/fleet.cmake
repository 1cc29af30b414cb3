# The coordinator daemon with real agents, PostgreSQL, s3rver and nng over TLS
# (tests/integration/fleet_*.sh), and the hand-driven peer they use to break the protocol.
add_executable(wire_peer integration/wire_peer.c)
target_link_libraries(wire_peer PRIVATE pgship_net pgship_proto)
add_test(NAME integration_fleet_refusals
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/fleet_refusals.sh ${CMAKE_BINARY_DIR}/bin)
set_tests_properties(integration_fleet_refusals PROPERTIES LABELS integration TIMEOUT 180)
add_test(NAME integration_fleet_ship
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/fleet_ship.sh ${CMAKE_BINARY_DIR}/bin)
set_tests_properties(integration_fleet_ship PROPERTIES LABELS integration TIMEOUT 900)
