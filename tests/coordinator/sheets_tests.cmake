# Google Sheets tests (issue 4; the modules are part of rf_coord_core): C unit tests, the sheets_probe driver (not
# installed) and the Python integration tests against tests/integration/
# fake_google.py. Included from tests/coordinator/CMakeLists.txt.
if(NOT TARGET PkgConfig::JWT)
    pkg_check_modules(JWT REQUIRED IMPORTED_TARGET libjwt)
endif()
rf_add_test(NAME sheets_a1 SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_sheets_a1.c
            LIBS rf_coord_core TIMEOUT 60)
rf_add_test(NAME sheets_validate SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_sheets_validate.c
            LIBS rf_coord_core TIMEOUT 60)
rf_add_test(NAME sheets_parse SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_sheets_parse.c
            LIBS rf_coord_core PkgConfig::CRYPTO PkgConfig::JWT TIMEOUT 60)
# moderate validation == jobs.c's row planning, on the same messy rows
rf_add_test(NAME sheets_parity
            SOURCES ${CMAKE_CURRENT_LIST_DIR}/test_sheets_parity.c ${CMAKE_CURRENT_LIST_DIR}/testutil.c
            LIBS rf_coord_core TIMEOUT 60)

add_executable(sheets_probe ${CMAKE_CURRENT_LIST_DIR}/sheets_probe.c)
target_link_libraries(sheets_probe PRIVATE rf_coord_core PkgConfig::CURL Threads::Threads)

find_package(Python3 REQUIRED COMPONENTS Interpreter)
foreach(t sheets_read sheets_writeback sheets_job)
    add_test(NAME it_${t}
             COMMAND ${Python3_EXECUTABLE} ${CMAKE_SOURCE_DIR}/tests/integration/test_${t}.py
                     --build ${CMAKE_BINARY_DIR} --source ${CMAKE_SOURCE_DIR})
    set_tests_properties(it_${t} PROPERTIES TIMEOUT 120 SKIP_RETURN_CODE 77
                         LABELS integration)
endforeach()
# it_sheets_job runs agents that render: not beside the other rendering tests
set_tests_properties(it_sheets_job PROPERTIES RUN_SERIAL TRUE)

# libFuzzer target (RF_FUZZ=ON with clang): ranges, values answers, CSV
# exports and error bodies, compiled in so they carry the instrumentation.
if(RF_FUZZ)
    set(RF_SHEETS_DIR ${CMAKE_SOURCE_DIR}/coordinator)
    set(RF_SHEETS_COMMON ${CMAKE_SOURCE_DIR}/common)
    set(RF_SHEETS_FUZZ_FLAGS -fsanitize=fuzzer,address,undefined -fno-omit-frame-pointer
                             -fno-sanitize-recover=undefined)
    add_executable(fuzz_sheets
        ${CMAKE_CURRENT_LIST_DIR}/fuzz_sheets.c
        ${RF_SHEETS_DIR}/a1.c
        ${RF_SHEETS_DIR}/gauth.c
        ${RF_SHEETS_DIR}/sheets.c
        ${RF_SHEETS_DIR}/sheets_connect.c
        ${RF_SHEETS_DIR}/validate.c
        ${RF_SHEETS_DIR}/writeback.c
        ${RF_SHEETS_DIR}/rows.c
        ${RF_SHEETS_DIR}/csv.c
        ${RF_SHEETS_DIR}/verr.c
        ${RF_SHEETS_COMMON}/rf_util.c
        ${RF_SHEETS_COMMON}/rf_log.c
        ${RF_SHEETS_COMMON}/rf_err.c
    )
    target_include_directories(fuzz_sheets PRIVATE ${RF_SHEETS_DIR} ${RF_SHEETS_COMMON})
    target_compile_options(fuzz_sheets PRIVATE ${RF_SHEETS_FUZZ_FLAGS})
    target_link_options(fuzz_sheets PRIVATE ${RF_SHEETS_FUZZ_FLAGS})
    target_link_libraries(fuzz_sheets PRIVATE PkgConfig::JANSSON PkgConfig::CURL PkgConfig::JWT
                          PkgConfig::CRYPTO Threads::Threads m)
    add_test(NAME fuzz_sheets
             COMMAND sh ${CMAKE_SOURCE_DIR}/tests/fuzz/run_fuzz.sh $<TARGET_FILE:fuzz_sheets>
                     ${CMAKE_CURRENT_LIST_DIR}/corpus_sheets
                     ${CMAKE_CURRENT_BINARY_DIR}/corpus_sheets_work 20)
    set_tests_properties(fuzz_sheets PROPERTIES TIMEOUT 120 LABELS "fuzz")
endif()
