# Alerts (issue 5): the alerter's detection and posting (coordinator/alerter.c) against a real
# catalog file and an HTTP receiver inside the test, with the catalog queries it reads with; and
# the coordinator end to end with a python3 receiver, a failing backup and an overdue schedule
# (tests/integration/alerts.sh).
add_executable(alerter_test ${CMAKE_CURRENT_LIST_DIR}/unit/alerter_test.c)
target_link_libraries(alerter_test PRIVATE pgship_alerter pgship_testutil PkgConfig::CMOCKA)
add_test(NAME unit_alerter COMMAND alerter_test)
set_tests_properties(unit_alerter PROPERTIES LABELS unit TIMEOUT 300)

add_test(NAME integration_alerts
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/alerts.sh ${CMAKE_BINARY_DIR}/bin)
set_tests_properties(integration_alerts PROPERTIES LABELS integration TIMEOUT 180)
