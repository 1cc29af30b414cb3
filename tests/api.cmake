# Tests of the coordinator's HTTP API (coordinator/api.c): real HTTP on loopback through libcurl,
# a real catalog file and local-directory storage; and the fuzz targets of its body decoders.
if(NOT TARGET PkgConfig::CURL)
  pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)
endif()

add_executable(api_test ${CMAKE_CURRENT_LIST_DIR}/unit/api_test.c)
target_link_libraries(api_test PRIVATE pgship_api pgship_testutil PkgConfig::CURL
                      PkgConfig::CMOCKA)
add_test(NAME unit_api COMMAND api_test)
set_tests_properties(unit_api PROPERTIES LABELS unit TIMEOUT 300)

if(PGSHIP_FUZZ)
  # The body decoders: POST /v1/backups and POST /v1/restores.
  foreach(t IN ITEMS api_body api_restore)
    add_executable(${t}_fuzz ${CMAKE_CURRENT_LIST_DIR}/fuzz/${t}_fuzz.c)
    target_link_libraries(${t}_fuzz PRIVATE pgship_api)
    target_compile_options(${t}_fuzz PRIVATE -fsanitize=fuzzer)
    target_link_options(${t}_fuzz PRIVATE -fsanitize=fuzzer)
  endforeach()
endif()

# The API over a fixture with a scripted fleet, driven by api_client.sh through the pgship client.
add_executable(api_serve ${CMAKE_CURRENT_LIST_DIR}/integration/api_serve.c)
target_link_libraries(api_serve PRIVATE pgship_api)
add_test(NAME integration_api_client
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/integration/api_client.sh ${CMAKE_BINARY_DIR}/bin)
set_tests_properties(integration_api_client PROPERTIES LABELS integration TIMEOUT 300)
