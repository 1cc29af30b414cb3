# Tests of retention policies and the planner (coordinator/retention.c) and of database selectors
# (coordinator/select.c), and their fuzz targets.
foreach(name retention select)
  add_executable(${name}_test unit/${name}_test.c)
  target_link_libraries(${name}_test PRIVATE pgship_retention PkgConfig::CMOCKA)
  add_test(NAME unit_${name} COMMAND ${name}_test)
  set_tests_properties(unit_${name} PROPERTIES LABELS unit TIMEOUT 300)
endforeach()

if(PGSHIP_FUZZ)
  foreach(name retention select)
    add_executable(${name}_fuzz fuzz/${name}_fuzz.c)
    target_link_libraries(${name}_fuzz PRIVATE pgship_retention)
    target_compile_options(${name}_fuzz PRIVATE -fsanitize=fuzzer)
    target_link_options(${name}_fuzz PRIVATE -fsanitize=fuzzer)
  endforeach()
endif()
