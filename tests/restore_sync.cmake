# Restores and prod -> staging syncs end to end: two PostgreSQL clusters, the agents and the
# coordinator over nng TLS, s3rver, the pgship client (tests/integration/restore_sync.sh).
add_test(NAME integration_restore_sync
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/restore_sync.sh ${CMAKE_BINARY_DIR}/bin)
set_tests_properties(integration_restore_sync PROPERTIES LABELS integration TIMEOUT 900)
