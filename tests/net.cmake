# Transport tests: real nng TLS on loopback with certificates made at test time.
add_executable(net_tls_test integration/net_tls_test.c)
target_link_libraries(net_tls_test PRIVATE pgship_net pgship_proto PkgConfig::CMOCKA)
add_test(NAME integration_net_tls
         COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/integration/net_tls.sh ${CMAKE_BINARY_DIR}/bin)
set_tests_properties(integration_net_tls PROPERTIES LABELS integration TIMEOUT 120)
