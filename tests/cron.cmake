# Tests of the cron expressions (common/cron.c) and the TZif reader (common/tzfile.c): tables of
# expressions and their next runs (month ends, leap years, DST in real zones from
# /usr/share/zoneinfo), hostile expressions and zone files; and the fuzz targets of both parsers.
foreach(name cron tzfile)
  add_executable(${name}_test unit/${name}_test.c)
  target_link_libraries(${name}_test PRIVATE pgship_cron pgship_testutil PkgConfig::CMOCKA)
  add_test(NAME unit_${name} COMMAND ${name}_test)
  set_tests_properties(unit_${name} PROPERTIES LABELS unit TIMEOUT 300)
endforeach()

if(PGSHIP_FUZZ)
  foreach(t cron tzfile)
    add_executable(${t}_fuzz fuzz/${t}_fuzz.c)
    target_link_libraries(${t}_fuzz PRIVATE pgship_cron)
    target_compile_options(${t}_fuzz PRIVATE -fsanitize=fuzzer)
    target_link_options(${t}_fuzz PRIVATE -fsanitize=fuzzer)
  endforeach()
endif()
