# Runs the failure example and checks what it promises (it has no golden file: the Python
# program it mirrors, mpi_fail.py, never finishes).
#
#   cmake -DMODE=throw -DWORKERS=<N-1> -DHANG_OUTPUT=<file> -P check_failure.cmake -- <command>
#   cmake -DMODE=crash -P check_failure.cmake -- <command>      (likewise hang)
#
# MODE throw, with N-1 >= 2 workers: exit status 1; stdout begins with the table lines that
# mpi_fail.py printed before it hung (HANG_OUTPUT, produced by regenerate.sh, without its
# "Master: Waiting ..." lines), then has one row for every other worker and
# none for worker 2; stderr names task 1, worker 2 and the exception's message.
# MODE crash or hang: exit status 2 and a message that task timeouts are not available yet.
cmake_minimum_required(VERSION 3.20)

include(${CMAKE_CURRENT_LIST_DIR}/command_line.cmake)
_foreman_example_command(command)

string(TIMESTAMP start "%s")
execute_process(COMMAND ${command} OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE status)
string(TIMESTAMP stop "%s")
math(EXPR seconds "${stop} - ${start}")
set(report "command: ${command}\nexit status ${status} after ${seconds} s\n--- stdout ---\n${out}--- stderr ---\n${err}")

set(problems)
if(MODE STREQUAL "throw")
  if(NOT status STREQUAL "1")
    list(APPEND problems "exit status is ${status}, expected 1")
  endif()

  # The table as far as the Python master got before it hung, without the lines about waiting
  # for one worker after the other.
  file(READ "${HANG_OUTPUT}" prefix)
  string(REGEX REPLACE "Master: Waiting for data from Worker [0-9]+\\.\\.\\.\n" "" prefix "${prefix}")
  string(FIND "${out}" "${prefix}" at)
  if(NOT at EQUAL 0)
    list(APPEND problems "stdout does not begin with the table mpi_fail.py printed before it hung:\n${prefix}")
  endif()

  foreach(worker RANGE 1 ${WORKERS})
    if(worker EQUAL 2)
      if(out MATCHES "(^|\n)Worker 2 ")
        list(APPEND problems "stdout has a row for worker 2, whose task failed")
      endif()
    elseif(NOT out MATCHES "(^|\n)Worker ${worker} +\\| [^\n]+\n")
      list(APPEND problems "stdout has no row for worker ${worker}")
    endif()
  endforeach()
  if(out MATCHES "Operation Complete")
    list(APPEND problems "stdout claims the operation completed")
  endif()

  set(error_line "task 1 failed on worker 2: std::runtime_error: fatal error while computing 20 / 2")
  string(FIND "${err}" "${error_line}" at)
  if(at EQUAL -1)
    list(APPEND problems "stderr does not contain \"${error_line}\"")
  endif()
elseif(MODE STREQUAL "crash" OR MODE STREQUAL "hang")
  if(NOT status STREQUAL "2")
    list(APPEND problems "exit status is ${status}, expected 2")
  endif()
  if(NOT err MATCHES "mode '${MODE}' needs foreman's task timeouts, which are not available yet")
    list(APPEND problems "stderr does not say that mode '${MODE}' needs task timeouts")
  endif()
else()
  message(FATAL_ERROR "check_failure.cmake: MODE must be throw, crash or hang, not '${MODE}'")
endif()

if(problems)
  list(JOIN problems "\n  " text)
  message(NOTICE "${report}") # verbatim; FATAL_ERROR would rewrap the outputs
  message(FATAL_ERROR "failure example, mode ${MODE}:\n  ${text}")
endif()
message(STATUS "failure example, mode ${MODE}: as expected (${seconds} s)")
