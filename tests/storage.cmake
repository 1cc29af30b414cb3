# Tests of coordinator storage: unit tests (cmocka), the storage_tool driver with the S3
# integration test (s3rver behind a SigV4-checking proxy), and the XML extractor's fuzz target.

foreach(name storage storage_fs s3_xml)
  add_executable(${name}_test ${CMAKE_CURRENT_LIST_DIR}/unit/${name}_test.c)
  target_link_libraries(${name}_test PRIVATE pgship_storage pgship_testutil PkgConfig::CMOCKA)
  add_test(NAME unit_${name} COMMAND ${name}_test)
  set_tests_properties(unit_${name} PROPERTIES LABELS unit TIMEOUT 300)
endforeach()

# A command-line driver over the storage API, for the integration tests.
add_executable(storage_tool ${CMAKE_CURRENT_LIST_DIR}/integration/storage_tool.c)
target_link_libraries(storage_tool PRIVATE pgship_storage)

add_test(NAME integration_storage_s3
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/integration/storage_s3.sh ${CMAKE_BINARY_DIR}/bin)
set_tests_properties(integration_storage_s3 PROPERTIES LABELS integration TIMEOUT 600)

if(PGSHIP_FUZZ)
  add_executable(s3_xml_fuzz ${CMAKE_CURRENT_LIST_DIR}/fuzz/s3_xml_fuzz.c)
  target_link_libraries(s3_xml_fuzz PRIVATE pgship_storage)
  target_compile_options(s3_xml_fuzz PRIVATE -fsanitize=fuzzer)
  target_link_options(s3_xml_fuzz PRIVATE -fsanitize=fuzzer)
endif()
