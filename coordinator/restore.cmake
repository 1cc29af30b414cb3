# Restores and syncs (coordinator/restore.c): policy, sanitization profiles (profile.c), and the
# steps of each restore.
add_library(pgship_restore STATIC ${CMAKE_CURRENT_LIST_DIR}/restore.c
            ${CMAKE_CURRENT_LIST_DIR}/profile.c)
target_link_libraries(pgship_restore PUBLIC pgship_fleet pgship_catalog pgship_coordinator_config
                      pgship_proto Threads::Threads)
