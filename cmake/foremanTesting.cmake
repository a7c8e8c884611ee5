# foreman_add_mpi_test(<name> TARGET <target> RANKS <n>... [TIMEOUT <seconds>] [RECOVERY]
#                      [ARGS <arg>...] [MPIEXEC_FLAGS <flag>...] [LABELS <label>...])
#
# Registers one CTest test per rank count, named <name>.<n>ranks, that runs
#   ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} <n> ${MPIEXEC_PREFLAGS} [MPIEXEC_FLAGS]
#       $<TARGET_FILE:<target>> ${MPIEXEC_POSTFLAGS} [ARGS]
# With Open MPI it adds --oversubscribe (more ranks than cores is normal on a laptop or a CI
# runner) and, when CMake runs as root, --allow-run-as-root. Every test gets a TIMEOUT
# (default 120 s, or FOREMAN_MPI_TEST_TIMEOUT) so that a hang fails instead of stalling.
# RECOVERY is for tests in which a rank dies on purpose: with Open MPI it adds
# `--enable-recovery` (the other ranks go on) and `--mca async_mpi_finalize 1` (without it the
# survivors' MPI_Finalize sometimes waits forever for the dead rank; see docs/reliability.md).
# Under --enable-recovery mpirun exits 0 even when a rank fails: judge such a test by its output
# (PASS_REGULAR_EXPRESSION).
# Requires find_package(MPI) to have run (it sets MPIEXEC_EXECUTABLE).
include_guard(GLOBAL)

set(FOREMAN_MPI_TEST_TIMEOUT 120 CACHE STRING "Default TIMEOUT (seconds) of tests added by foreman_add_mpi_test")

function(_foreman_mpiexec_flags out)
  set(flags)
  if(NOT DEFINED _FOREMAN_MPIEXEC_IS_OPENMPI)
    execute_process(COMMAND ${MPIEXEC_EXECUTABLE} --version OUTPUT_VARIABLE version ERROR_VARIABLE version
                    RESULT_VARIABLE ignored TIMEOUT 20)
    if(version MATCHES "Open MPI|OpenRTE")
      set(_FOREMAN_MPIEXEC_IS_OPENMPI TRUE CACHE INTERNAL "")
    else()
      set(_FOREMAN_MPIEXEC_IS_OPENMPI FALSE CACHE INTERNAL "")
    endif()
  endif()
  if(_FOREMAN_MPIEXEC_IS_OPENMPI)
    list(APPEND flags --oversubscribe)
    execute_process(COMMAND id -u OUTPUT_VARIABLE uid OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    if(uid STREQUAL "0")
      list(APPEND flags --allow-run-as-root)
    endif()
  endif()
  set(${out} ${flags} PARENT_SCOPE)
endfunction()

# The launcher flags that keep a job going when one of its ranks dies (empty if unknown).
function(_foreman_mpiexec_recovery_flags out)
  _foreman_mpiexec_flags(ignored) # finds out whether the launcher is Open MPI's
  if(_FOREMAN_MPIEXEC_IS_OPENMPI)
    set(${out} --enable-recovery --mca async_mpi_finalize 1 PARENT_SCOPE)
  else()
    set(${out} "" PARENT_SCOPE)
  endif()
endfunction()

function(foreman_add_mpi_test name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "RECOVERY" "TARGET;TIMEOUT" "RANKS;ARGS;MPIEXEC_FLAGS;LABELS")
  if(NOT arg_TARGET)
    message(FATAL_ERROR "foreman_add_mpi_test(${name}): TARGET is required")
  endif()
  if(NOT arg_RANKS)
    message(FATAL_ERROR "foreman_add_mpi_test(${name}): RANKS is required, e.g. RANKS 1 2 3 4")
  endif()
  if(NOT MPIEXEC_EXECUTABLE)
    message(FATAL_ERROR "foreman_add_mpi_test(${name}): MPIEXEC_EXECUTABLE is not set; call find_package(MPI) first")
  endif()
  if(NOT arg_TIMEOUT)
    set(arg_TIMEOUT ${FOREMAN_MPI_TEST_TIMEOUT})
  endif()
  _foreman_mpiexec_flags(launcher_flags)
  if(arg_RECOVERY)
    _foreman_mpiexec_recovery_flags(recovery_flags)
    list(APPEND launcher_flags ${recovery_flags})
  endif()
  foreach(ranks IN LISTS arg_RANKS)
    set(test_name ${name}.${ranks}ranks)
    add_test(NAME ${test_name}
             COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${ranks} ${launcher_flags} ${MPIEXEC_PREFLAGS}
                     ${arg_MPIEXEC_FLAGS} $<TARGET_FILE:${arg_TARGET}> ${MPIEXEC_POSTFLAGS} ${arg_ARGS})
    set_tests_properties(${test_name} PROPERTIES TIMEOUT ${arg_TIMEOUT} PROCESSORS ${ranks})
    if(arg_LABELS)
      set_tests_properties(${test_name} PROPERTIES LABELS "${arg_LABELS}")
    endif()
  endforeach()
endfunction()
