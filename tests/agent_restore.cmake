# The agent's restore: proto/extract.c's unit test, and pgship-agent restore against a real
# PostgreSQL 15 cluster (integration/agent_restore.sh): round trips in both dump formats into an
# existing target, pg_restore's options, sanitize and check failures that leave the target as it
# was, a wrong key, and the cleanup after a restore killed mid-way.
add_executable(extract_test unit/extract_test.c)
target_link_libraries(extract_test PRIVATE pgship_testutil pgship_proto PkgConfig::CMOCKA)
add_test(NAME unit_extract COMMAND extract_test)
set_tests_properties(unit_extract PROPERTIES LABELS unit TIMEOUT 300)

add_test(NAME integration_agent_restore
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/agent_restore.sh ${CMAKE_BINARY_DIR}/bin)
set_tests_properties(integration_agent_restore PROPERTIES LABELS integration TIMEOUT 600)
