# Object storage (coordinator/storage.h): the interface, the local directory and S3 backends,
# and the bounded XML extractor for S3's answers.
pkg_check_modules(CURL REQUIRED IMPORTED_TARGET libcurl)

add_library(pgship_storage STATIC
  ${CMAKE_CURRENT_LIST_DIR}/storage.c
  ${CMAKE_CURRENT_LIST_DIR}/storage_fs.c
  ${CMAKE_CURRENT_LIST_DIR}/storage_s3.c
  ${CMAKE_CURRENT_LIST_DIR}/s3_xml.c)
target_link_libraries(pgship_storage PUBLIC pgship_common PkgConfig::CURL Threads::Threads)
