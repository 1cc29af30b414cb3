# The 30-agent fleet on a fast schedule, with the coordinator's cost per agent and per stream
# measured (tests/integration/fleet_scale.sh; issue 5, asks 7 and 8; figures in docs/scale.md).
add_test(NAME integration_fleet_scale
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/fleet_scale.sh ${CMAKE_BINARY_DIR}/bin)
set_tests_properties(integration_fleet_scale PROPERTIES LABELS integration TIMEOUT 600)
