# Tests of the status page (coordinator/status.c, GET /status in coordinator/api_status.c): the
# renderer and the Authorization header reader (unit and fuzz), and the page served by a real
# coordinator, read by headless Chromium (integration).
add_executable(status_test ${CMAKE_CURRENT_LIST_DIR}/unit/status_test.c)
target_link_libraries(status_test PRIVATE pgship_api PkgConfig::CMOCKA)
add_test(NAME unit_status COMMAND status_test)
set_tests_properties(unit_status PROPERTIES LABELS unit TIMEOUT 300)

if(PGSHIP_FUZZ)
  add_executable(status_fuzz ${CMAKE_CURRENT_LIST_DIR}/fuzz/status_fuzz.c)
  target_link_libraries(status_fuzz PRIVATE pgship_api)
  target_compile_options(status_fuzz PRIVATE -fsanitize=fuzzer)
  target_link_options(status_fuzz PRIVATE -fsanitize=fuzzer)
endif()

# A coordinator, one agent and PostgreSQL; the page through Chromium --headless and curl.
add_test(NAME integration_status_page
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/integration/status_page.sh ${CMAKE_BINARY_DIR}/bin)
set_tests_properties(integration_status_page PROPERTIES LABELS integration TIMEOUT 180 SKIP_RETURN_CODE 77)
