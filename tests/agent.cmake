# The agent daemon against a scripted coordinator (integration/agent_peer.c) and a real
# PostgreSQL cluster: handshake, a streamed backup, refusals, a dropped connection, a stop;
# restore and sanitize jobs served from a local archive (FETCH/PIECE/EOF, STEP, REPORT), their
# failures, kill -9 and SIGTERM mid-restore.
add_executable(agent_peer integration/agent_peer.c)
target_link_libraries(agent_peer PRIVATE pgship_net pgship_proto)
add_test(NAME integration_agent_daemon
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/agent_daemon.sh ${CMAKE_BINARY_DIR}/bin)
set_tests_properties(integration_agent_daemon PROPERTIES LABELS integration TIMEOUT 600)
