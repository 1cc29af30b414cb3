# Verifications (issue 5, ask 3): the decoders of the API's verification routes
# (coordinator/api_verify.c) with their fuzz target, and the whole path end to end
# (tests/integration/verify.sh: coordinator, agent, PostgreSQL, fs storage, the pgship client).
add_executable(api_verify_test ${CMAKE_CURRENT_LIST_DIR}/unit/api_verify_test.c)
target_link_libraries(api_verify_test PRIVATE pgship_api pgship_testutil PkgConfig::CMOCKA)
add_test(NAME unit_verify COMMAND api_verify_test)
set_tests_properties(unit_verify PROPERTIES LABELS unit TIMEOUT 300)

if(PGSHIP_FUZZ)
  add_executable(api_verify_fuzz ${CMAKE_CURRENT_LIST_DIR}/fuzz/api_verify_fuzz.c)
  target_link_libraries(api_verify_fuzz PRIVATE pgship_api)
  target_compile_options(api_verify_fuzz PRIVATE -fsanitize=fuzzer)
  target_link_options(api_verify_fuzz PRIVATE -fsanitize=fuzzer)
endif()

add_test(NAME integration_verify
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/integration/verify.sh ${CMAKE_BINARY_DIR}/bin)
set_tests_properties(integration_verify PROPERTIES LABELS integration TIMEOUT 180)
