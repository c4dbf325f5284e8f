# rf_add_test(NAME name SOURCES a.c ... [LIBS lib ...] [TIMEOUT s] [LABELS l ...])
# One executable, one ctest entry. Exit code 77 means "skipped" (no GPU, ...).
function(rf_add_test)
    cmake_parse_arguments(T "" "NAME;TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
    if(NOT T_TIMEOUT)
        set(T_TIMEOUT 120)
    endif()
    if(NOT T_LABELS)
        set(T_LABELS unit)
    endif()
    add_executable(${T_NAME} ${T_SOURCES})
    target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} PkgConfig::CMOCKA)
    add_test(NAME ${T_NAME} COMMAND ${T_NAME})
    set_tests_properties(${T_NAME} PROPERTIES TIMEOUT ${T_TIMEOUT} SKIP_RETURN_CODE 77
                         LABELS "${T_LABELS}")
endfunction()

# rf_add_py_test(NAME name SCRIPT file.py [TIMEOUT s] [LABELS l ...])
# Integration tests written in Python (standard library only) that start the
# real binaries. They get the build directory and source root as arguments.
function(rf_add_py_test)
    cmake_parse_arguments(T "" "NAME;SCRIPT;TIMEOUT" "LABELS" ${ARGN})
    if(NOT T_TIMEOUT)
        set(T_TIMEOUT 600)
    endif()
    if(NOT T_LABELS)
        set(T_LABELS integration)
    endif()
    find_package(Python3 REQUIRED COMPONENTS Interpreter)
    add_test(NAME ${T_NAME}
             COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_SOURCE_DIR}/${T_SCRIPT}
                     --build ${CMAKE_BINARY_DIR} --source ${CMAKE_SOURCE_DIR})
    set_tests_properties(${T_NAME} PROPERTIES TIMEOUT ${T_TIMEOUT} SKIP_RETURN_CODE 77
                         LABELS "${T_LABELS}")
endfunction()
