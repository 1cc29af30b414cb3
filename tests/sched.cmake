# Tests of the scheduler's planning core (coordinator/scheduler.c): jitter, first sight,
# catch-up and misses, disconnected agents, the limits and their order, merged schedules, the
# listing of next runs, and a property test of the plan's invariants over generated fleets.
add_executable(scheduler_test unit/scheduler_test.c)
target_link_libraries(scheduler_test PRIVATE pgship_scheduler pgship_testutil PkgConfig::CMOCKA)
add_test(NAME unit_scheduler COMMAND scheduler_test)
set_tests_properties(unit_scheduler PROPERTIES LABELS unit TIMEOUT 300)
