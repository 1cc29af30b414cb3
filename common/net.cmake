# nng endpoints with pgship's TLS policy (common/net.c): its own target, so that only the daemons
# and their tests link nng.
find_package(nng CONFIG REQUIRED)
add_library(pgship_net STATIC ${CMAKE_CURRENT_LIST_DIR}/net.c)
target_link_libraries(pgship_net PUBLIC pgship_common nng::nng)
