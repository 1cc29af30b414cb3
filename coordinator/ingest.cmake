# The backup stream into storage and the catalog (coordinator/ingest.c).
add_library(pgship_ingest STATIC ${CMAKE_CURRENT_LIST_DIR}/ingest.c)
target_link_libraries(pgship_ingest PUBLIC pgship_storage pgship_catalog pgship_proto)
