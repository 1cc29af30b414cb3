# Tests of the coordinator's restore checks: sanitization profiles (coordinator/profile.c) and
# the [policy] section; and the fuzz target of the profile's settings file.
add_executable(restore_test unit/restore_test.c)
target_link_libraries(restore_test PRIVATE pgship_testutil pgship_restore PkgConfig::CMOCKA)
add_test(NAME unit_restore COMMAND restore_test)
set_tests_properties(unit_restore PROPERTIES LABELS unit TIMEOUT 300)

if(PGSHIP_FUZZ)
  add_executable(profile_fuzz fuzz/profile_fuzz.c)
  target_link_libraries(profile_fuzz PRIVATE pgship_restore)
  target_compile_options(profile_fuzz PRIVATE -fsanitize=fuzzer)
  target_link_options(profile_fuzz PRIVATE -fsanitize=fuzzer)
endif()
