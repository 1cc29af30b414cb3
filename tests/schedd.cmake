# The scheduler daemon with real agents, PostgreSQL and nng over TLS (tests/integration/schedd.sh).
add_test(NAME integration_schedd
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/schedd.sh ${CMAKE_BINARY_DIR}/bin)
set_tests_properties(integration_schedd PROPERTIES LABELS integration TIMEOUT 300)
