# Tests of the API's fleet operations (coordinator/api_ops.c): the decoders and the routes over
# real HTTP (unit_api_ops), their fuzz target, and the operator's commands end to end with a
# coordinator, an agent, PostgreSQL and local-directory storage (integration_ops).
if(NOT TARGET PkgConfig::CURL)
  pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)
endif()

add_executable(api_ops_test ${CMAKE_CURRENT_LIST_DIR}/unit/api_ops_test.c)
target_link_libraries(api_ops_test PRIVATE pgship_api pgship_coordinator_config pgship_testutil
                      PkgConfig::CURL PkgConfig::CMOCKA)
add_test(NAME unit_api_ops COMMAND api_ops_test)
set_tests_properties(unit_api_ops PROPERTIES LABELS unit TIMEOUT 300)

if(PGSHIP_FUZZ)
  add_executable(api_ops_fuzz ${CMAKE_CURRENT_LIST_DIR}/fuzz/api_ops_fuzz.c)
  target_link_libraries(api_ops_fuzz PRIVATE pgship_api)
  target_compile_options(api_ops_fuzz PRIVATE -fsanitize=fuzzer)
  target_link_options(api_ops_fuzz PRIVATE -fsanitize=fuzzer)
endif()

add_test(NAME integration_ops
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/integration/ops.sh ${CMAKE_BINARY_DIR}/bin)
set_tests_properties(integration_ops PROPERTIES LABELS integration TIMEOUT 180)
