# Google Sheets input (issue 4): the Sheets API v4 client, A1 ranges,
# service-account tokens, row validation levels, /sheets/connect and the
# write-back. Included from coordinator/CMakeLists.txt.
#
# rf_sheets uses rows.c / csv.c / verr.c of rf_coord_core (the row table and
# the header mapping); when rf_coord_core starts calling into rf_sheets, CMake
# resolves the static-library cycle by repeating them on the link line, or
# these sources can simply join rf_coord_core's list.
if(NOT TARGET PkgConfig::JWT)
    pkg_check_modules(JWT REQUIRED IMPORTED_TARGET GLOBAL libjwt)
endif()

add_library(rf_sheets STATIC
    ${CMAKE_CURRENT_LIST_DIR}/a1.c
    ${CMAKE_CURRENT_LIST_DIR}/gauth.c
    ${CMAKE_CURRENT_LIST_DIR}/sheets.c
    ${CMAKE_CURRENT_LIST_DIR}/sheets_connect.c
    ${CMAKE_CURRENT_LIST_DIR}/validate.c
    ${CMAKE_CURRENT_LIST_DIR}/writeback.c
)
target_include_directories(rf_sheets PUBLIC ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(rf_sheets
    PUBLIC rf_coord_core rf_common PkgConfig::JANSSON PkgConfig::CURL
    PRIVATE PkgConfig::JWT Threads::Threads m)
