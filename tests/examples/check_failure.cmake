# Runs the failure example and checks what it promises (it has no golden file: the Python
# program it mirrors, mpi_fail.py, never finishes).
#
#   cmake -DMODE=throw -DWORKERS=<N-1> -DHANG_OUTPUT=<file> -P check_failure.cmake -- <command>
#   cmake -DMODE=crash -DWORKERS=<N-1> -DTASK_TIMEOUT=<s> -P check_failure.cmake -- <command>
#   (likewise hang; the command runs mpirun with --enable-recovery)
#
# MODE throw, with N-1 >= 2 workers: exit status 1; stdout begins with the table lines that
# mpi_fail.py printed before it hung (HANG_OUTPUT, produced by regenerate.sh, without its
# "Master: Waiting ..." lines), then has one row for every other worker and
# none for worker 2; stderr names task 1, worker 2 and the exception's message.
# MODE crash or hang (worker 2's process dies, or never answers): every row is printed with its
# correct value, the row of task 1 by a worker other than 2; "Master: Operation Complete.";
# stderr names worker 2 as lost, and how late the master noticed it, as its own report measured
# (run_info::losses): crash within 1 s of the last sign of life (the master watches the process),
# hang within TASK_TIMEOUT + 1 s. That is what foreman controls; the whole mpirun (process start
# and teardown, slow on a loaded machine) is only bounded by TASK_TIMEOUT + 30 s against a hang.
# mpirun's exit status is not checked: under --enable-recovery Open MPI reports 0 whatever the
# ranks return.
cmake_minimum_required(VERSION 3.20)

include(${CMAKE_CURRENT_LIST_DIR}/command_line.cmake)
_foreman_example_command(command)

string(TIMESTAMP start "%s")
execute_process(COMMAND ${command} OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE status)
string(TIMESTAMP stop "%s")
math(EXPR seconds "${stop} - ${start}")
set(report "command: ${command}\nexit status ${status} after ${seconds} s\n--- stdout ---\n${out}--- stderr ---\n${err}")
# MPICH's launcher (Hydra) prints a banner on stdout after the job when one of its processes was
# killed (in mode hang, foreman ends the lost worker at MPI_Finalize): the launcher's text, not
# the program's, so it is left out of what the program printed.
string(REGEX REPLACE "\n*=+\n=   BAD TERMINATION OF ONE OF YOUR APPLICATION PROCESSES\n.*$" "\n" out "${out}")

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
  # Worker r's task is r*10 op 2 with op = "+-/*"[r % 4]; division prints two decimals.
  foreach(worker RANGE 1 ${WORKERS})
    math(EXPR a "${worker} * 10")
    math(EXPR which "${worker} % 4")
    if(which EQUAL 0)
      set(op "[+]")
      math(EXPR value "${a} + 2")
    elseif(which EQUAL 1)
      set(op "-")
      math(EXPR value "${a} - 2")
    elseif(which EQUAL 2)
      set(op "/")
      math(EXPR value "${a} / 2")
      set(value "${value}[.]00")
    else()
      set(op "[*]")
      math(EXPR value "${a} * 2")
    endif()
    if(NOT out MATCHES "(^|\n)Worker ([0-9]+) +\\| +${a} ${op} 2 +\\| +${value}\n")
      list(APPEND problems "stdout has no correct row for the task of worker ${worker} (${a} ${op} 2 = ${value})")
    elseif(worker EQUAL 2 AND CMAKE_MATCH_2 EQUAL 2)
      list(APPEND problems "the task of worker 2 is reported as computed by worker 2, which was ${MODE}ing")
    endif()
  endforeach()
  if(NOT out MATCHES "Master: Operation Complete[.]\n$")
    list(APPEND problems "stdout does not end with \"Master: Operation Complete.\"")
  endif()
  if(NOT err MATCHES "Master: worker 2 was lost \\(([^;]*); noticed ([0-9]+)[.]([0-9]+) s after")
    list(APPEND problems "stderr does not name worker 2 as lost, with when it was noticed")
  else()
    set(how "${CMAKE_MATCH_1}")
    set(whole "${CMAKE_MATCH_2}")
    set(hundredths "${CMAKE_MATCH_3}")
    math(EXPR noticed_cs "${whole} * 100 + ${hundredths}")
    if(MODE STREQUAL "crash")
      set(expected_how "its process ended")
      set(bound_cs 100)
    else()
      set(expected_how "no answer in time")
      math(EXPR bound_cs "(${TASK_TIMEOUT} + 1) * 100")
    endif()
    if(NOT how STREQUAL expected_how)
      list(APPEND problems "worker 2 was lost for '${how}', expected '${expected_how}'")
    endif()
    if(noticed_cs GREATER bound_cs)
      list(APPEND problems "worker 2 was noticed ${whole}.${hundredths} s after its last sign of life, more than ${bound_cs} hundredths")
    endif()
  endif()
  if(err MATCHES "Master: worker [013-9][0-9]* was lost")
    list(APPEND problems "stderr names a worker other than 2 as lost")
  endif()
  math(EXPR limit "${TASK_TIMEOUT} + 30")
  if(seconds GREATER limit)
    list(APPEND problems "the job took ${seconds} s, more than the task timeout (${TASK_TIMEOUT} s) + 30 s")
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
