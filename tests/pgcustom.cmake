# pg_dump's custom archive reader (agent/pgcustom.c): its unit test, over the small real dumps of
# PostgreSQL 15 in data/pgcustom/, and its fuzz target.
add_executable(pgcustom_test unit/pgcustom_test.c)
target_link_libraries(pgcustom_test PRIVATE pgship_agent_lib PkgConfig::CMOCKA)
target_compile_definitions(pgcustom_test
                           PRIVATE PGC_TEST_DATA="${CMAKE_CURRENT_SOURCE_DIR}/data/pgcustom")
add_test(NAME unit_pgcustom COMMAND pgcustom_test)
set_tests_properties(unit_pgcustom PROPERTIES LABELS unit TIMEOUT 300)

if(PGSHIP_FUZZ)
  add_executable(pgcustom_fuzz fuzz/pgcustom_fuzz.c)
  target_link_libraries(pgcustom_fuzz PRIVATE pgship_agent_lib)
  target_compile_options(pgcustom_fuzz PRIVATE -fsanitize=fuzzer)
  target_link_options(pgcustom_fuzz PRIVATE -fsanitize=fuzzer)
endif()
