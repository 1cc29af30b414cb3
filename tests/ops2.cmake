# Tests of prune (coordinator/prune.c) and catalog rebuild (coordinator/rebuild.c) on a real
# catalog file and the local-directory storage backend in a fresh temporary directory; and the
# sidecar decoder's fuzz target.
add_executable(prune_test ${CMAKE_CURRENT_LIST_DIR}/unit/prune_test.c)
target_link_libraries(prune_test PRIVATE pgship_prune pgship_testutil PkgConfig::CMOCKA)
add_test(NAME unit_prune COMMAND prune_test)
set_tests_properties(unit_prune PROPERTIES LABELS unit TIMEOUT 300)

# Rebuild's test makes its backups through the real ingest path.
add_executable(rebuild_test ${CMAKE_CURRENT_LIST_DIR}/unit/rebuild_test.c)
target_link_libraries(rebuild_test PRIVATE pgship_rebuild pgship_prune pgship_ingest pgship_testutil
                                           PkgConfig::CMOCKA)
add_test(NAME unit_rebuild COMMAND rebuild_test)
set_tests_properties(unit_rebuild PROPERTIES LABELS unit TIMEOUT 300)

if(PGSHIP_FUZZ)
  add_executable(sidecar_fuzz ${CMAKE_CURRENT_LIST_DIR}/fuzz/sidecar_fuzz.c)
  target_link_libraries(sidecar_fuzz PRIVATE pgship_rebuild)
  target_compile_options(sidecar_fuzz PRIVATE -fsanitize=fuzzer)
  target_link_options(sidecar_fuzz PRIVATE -fsanitize=fuzzer)
endif()
