# The coordinator's ingest core, on real fs storage and a real catalog file.
add_executable(ingest_test unit/ingest_test.c)
target_link_libraries(ingest_test PRIVATE pgship_ingest pgship_testutil PkgConfig::CMOCKA)
add_test(NAME unit_ingest COMMAND ingest_test)
set_tests_properties(unit_ingest PROPERTIES LABELS unit TIMEOUT 120)
