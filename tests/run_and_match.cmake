# Runs the command given after `--` and fails unless it exits 0 AND its output matches MATCH.
# ctest's PASS_REGULAR_EXPRESSION alone ignores the exit code, so a program that printed the
# expected line and then crashed (e.g. a sanitizer report at exit) would pass.
#   cmake -DMATCH=<regex> -P run_and_match.cmake -- program args...
set(command "")
set(after_separator FALSE)
foreach(i RANGE 1 ${CMAKE_ARGC})
  if(i EQUAL CMAKE_ARGC)
    break()
  endif()
  if(after_separator)
    list(APPEND command "${CMAKE_ARGV${i}}")
  elseif(CMAKE_ARGV${i} STREQUAL "--")
    set(after_separator TRUE)
  endif()
endforeach()
execute_process(COMMAND ${command} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${command}: exit status ${rc}, expected 0")
endif()
if(DEFINED MATCH AND NOT out MATCHES "${MATCH}")
  message(FATAL_ERROR "${command}: output does not match ${MATCH}")
endif()
