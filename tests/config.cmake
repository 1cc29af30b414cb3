# Tests of the configuration files: the INI layer (common/ini.c) and the two daemons' loaders
# (coordinator/config.c, agent/config.c), which also check docs/configuration.md and the example
# files in deploy/examples against the code. ini_fuzz runs the coordinator's spec over any input.

add_executable(ini_test unit/ini_test.c)
target_link_libraries(ini_test PRIVATE pgship_testutil pgship_common PkgConfig::CMOCKA)
add_test(NAME unit_ini COMMAND ini_test)
set_tests_properties(unit_ini PROPERTIES LABELS unit TIMEOUT 300)

add_executable(config_test unit/config_test.c)
target_link_libraries(config_test PRIVATE pgship_testutil pgship_coordinator_config
                      pgship_agent_lib PkgConfig::CMOCKA)
target_compile_definitions(config_test PRIVATE PGSHIP_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
add_test(NAME unit_config COMMAND config_test)
set_tests_properties(unit_config PROPERTIES LABELS unit TIMEOUT 300)

if(PGSHIP_FUZZ)
  add_executable(ini_fuzz fuzz/ini_fuzz.c)
  target_link_libraries(ini_fuzz PRIVATE pgship_testutil pgship_coordinator_config)
  target_compile_options(ini_fuzz PRIVATE -fsanitize=fuzzer)
  target_link_options(ini_fuzz PRIVATE -fsanitize=fuzzer)
endif()
