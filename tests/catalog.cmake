# Unit tests of the coordinator's catalog: real SQLite files in a fresh temporary directory.
add_executable(catalog_test ${CMAKE_CURRENT_LIST_DIR}/unit/catalog_test.c)
target_link_libraries(catalog_test PRIVATE pgship_catalog pgship_testutil PkgConfig::SQLITE3
                                           PkgConfig::CMOCKA)
add_test(NAME unit_catalog COMMAND catalog_test)
set_tests_properties(unit_catalog PROPERTIES LABELS unit TIMEOUT 300)
