# Tests of the monitoring modules: the metrics registry (coordinator/metrics.c) and webhook
# delivery (coordinator/webhook.c, against an HTTP receiver inside the test); and the fuzz
# target of the label values that reach the /metrics text.
add_executable(metrics_test ${CMAKE_CURRENT_LIST_DIR}/unit/metrics_test.c)
target_link_libraries(metrics_test PRIVATE pgship_metrics PkgConfig::CMOCKA)
add_test(NAME unit_metrics COMMAND metrics_test)
set_tests_properties(unit_metrics PROPERTIES LABELS unit TIMEOUT 300)

add_executable(webhook_test ${CMAKE_CURRENT_LIST_DIR}/unit/webhook_test.c)
target_link_libraries(webhook_test PRIVATE pgship_webhook pgship_testutil PkgConfig::CMOCKA)
add_test(NAME unit_webhook COMMAND webhook_test)
set_tests_properties(unit_webhook PROPERTIES LABELS unit TIMEOUT 300)

if(PGSHIP_FUZZ)
  add_executable(metrics_fuzz ${CMAKE_CURRENT_LIST_DIR}/fuzz/metrics_fuzz.c)
  target_link_libraries(metrics_fuzz PRIVATE pgship_metrics PkgConfig::JANSSON)
  target_compile_options(metrics_fuzz PRIVATE -fsanitize=fuzzer)
  target_link_options(metrics_fuzz PRIVATE -fsanitize=fuzzer)
endif()
