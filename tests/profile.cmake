# The example sanitization profile (deploy/profiles/app-anonymize) on a real PostgreSQL 15 cluster
# with the application database (integration/sql/app.sql): every check query finds production
# data before and nothing after, counts and foreign keys intact, deterministic, nothing survives.
add_test(NAME integration_profile_check
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/profile_check.sh ${CMAKE_BINARY_DIR}/bin)
set_tests_properties(integration_profile_check PROPERTIES LABELS integration TIMEOUT 600)
