# Runs a command and checks its exit code and, optionally, its output.
#
#   cmake -DEXPECT_EXIT=2 [-DEXPECT_STDOUT=regex] [-DEXPECT_STDERR=regex] [-DSTDERR_ONE_LINE=ON]
#         -P run_expect.cmake -- COMMAND [ARGS...]
#
# CTest's PASS_REGULAR_EXPRESSION would ignore the exit code, and WILL_FAIL accepts any failure;
# usage errors must exit with exactly 2.
set(cmd)
set(after_dashes OFF)
math(EXPR last "${CMAKE_ARGC} - 1")
foreach(i RANGE ${last})
  if(after_dashes)
    list(APPEND cmd "${CMAKE_ARGV${i}}")
  elseif("${CMAKE_ARGV${i}}" STREQUAL "--")
    set(after_dashes ON)
  endif()
endforeach()
if(NOT cmd)
  message(FATAL_ERROR "run_expect.cmake: no command after --")
endif()

execute_process(COMMAND ${cmd} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
string(JOIN " " shown ${cmd})
if(NOT "${rc}" STREQUAL "${EXPECT_EXIT}")
  message(FATAL_ERROR "${shown}: exit ${rc}, expected ${EXPECT_EXIT}\nstdout:\n${out}\nstderr:\n${err}")
endif()
if(DEFINED EXPECT_STDOUT AND NOT out MATCHES "${EXPECT_STDOUT}")
  message(FATAL_ERROR "${shown}: stdout does not match '${EXPECT_STDOUT}':\n${out}")
endif()
if(DEFINED EXPECT_STDERR AND NOT err MATCHES "${EXPECT_STDERR}")
  message(FATAL_ERROR "${shown}: stderr does not match '${EXPECT_STDERR}':\n${err}")
endif()
if(STDERR_ONE_LINE AND NOT err MATCHES "^[^\n]+\n$")
  message(FATAL_ERROR "${shown}: stderr is not exactly one line:\n${err}")
endif()
