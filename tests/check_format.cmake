# Checks that every C++ source is laid out as .clang-format says (column limit 120).
#   cmake -DROOT=<source dir> -DCLANG_FORMAT=<clang-format> -P check_format.cmake
# Fix with: bash scripts/format.sh
file(GLOB_RECURSE sources ${ROOT}/include/*.hpp ${ROOT}/examples/*.cpp ${ROOT}/tools/*.hpp ${ROOT}/tools/*.cpp ${ROOT}/tests/*.hpp ${ROOT}/tests/*.cpp
     ${ROOT}/bench/*.hpp ${ROOT}/bench/*.cpp)
set(unformatted "")
foreach(source IN LISTS sources)
  execute_process(COMMAND ${CLANG_FORMAT} --style=file --dry-run --Werror ${source}
                  RESULT_VARIABLE rc OUTPUT_QUIET ERROR_QUIET)
  if(NOT rc EQUAL 0)
    file(RELATIVE_PATH rel ${ROOT} ${source})
    string(APPEND unformatted "  ${rel}\n")
  endif()
endforeach()
list(LENGTH sources count)
if(unformatted)
  message(FATAL_ERROR "not formatted as .clang-format says (run: bash scripts/format.sh):\n${unformatted}")
endif()
message(STATUS "${count} sources formatted")
