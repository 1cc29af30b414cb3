# Fleet operations over the catalog and storage (issue 5): prune (coordinator/prune.c: retention
# policies applied to the catalog and the bucket) and catalog rebuild (coordinator/rebuild.c: the
# catalog made again from the bucket's sidecars).
add_library(pgship_prune STATIC ${CMAKE_CURRENT_LIST_DIR}/prune.c)
target_link_libraries(pgship_prune PUBLIC pgship_catalog pgship_storage pgship_retention)

add_library(pgship_rebuild STATIC ${CMAKE_CURRENT_LIST_DIR}/rebuild.c)
target_link_libraries(pgship_rebuild PUBLIC pgship_catalog pgship_storage pgship_proto)
