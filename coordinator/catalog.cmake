# The catalog (coordinator/catalog.c): SQLite, with JSON output through jansson.
# GLOBAL so that the tests' directory can link the catalog's sqlite3 dependency and use sqlite3
# directly (they write hand-made catalogs: a future schema version, a foreign database).
if(NOT TARGET PkgConfig::SQLITE3)
  pkg_check_modules(SQLITE3 REQUIRED IMPORTED_TARGET GLOBAL sqlite3)
endif()

add_library(pgship_catalog STATIC ${CMAKE_CURRENT_LIST_DIR}/catalog.c)
target_link_libraries(pgship_catalog PUBLIC pgship_common PkgConfig::JANSSON PkgConfig::SQLITE3)
