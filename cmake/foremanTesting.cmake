# foreman_add_mpi_test(<name> TARGET <target> RANKS <n>... [TIMEOUT <seconds>] [RECOVERY]
#                      [RANK_DIES] [ARGS <arg>...] [MPIEXEC_FLAGS <flag>...] [LABELS <label>...])
#
# Registers one CTest test per rank count, named <name>.<n>ranks, that runs
#   ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} <n> <launcher flags> ${MPIEXEC_PREFLAGS}
#       [MPIEXEC_FLAGS] $<TARGET_FILE:<target>> ${MPIEXEC_POSTFLAGS} [ARGS]
# Every test gets a TIMEOUT (default 120 s, or FOREMAN_MPI_TEST_TIMEOUT) so that a hang fails
# instead of stalling.
#
# The launcher is recognised from `${MPIEXEC_EXECUTABLE} --version` (the same rules as
# scripts/launcher.sh):
#   openmpi  Open MPI's mpirun/mpiexec: adds --oversubscribe (more ranks than cores is normal on
#            a laptop or a CI runner) and, when CMake runs as root, --allow-run-as-root;
#   hydra    MPICH's mpiexec (also Intel MPI's and MVAPICH's): takes both cases as they are,
#            no flag added;
#   slurm    srun: adds --overcommit (more tasks than CPUs);
#   unknown  nothing added.
# RECOVERY is for tests in which a rank dies or hangs on purpose: it adds the flags that keep
# the other ranks going when one ends. Open MPI: `--enable-recovery --mca async_mpi_finalize 1`
# (without the second, the survivors' MPI_Finalize sometimes waits forever for the dead rank;
# docs/reliability.md); srun: --kill-on-bad-exit=0; Hydra: none, see RANK_DIES. Under
# --enable-recovery mpirun exits 0 even when a rank fails: judge such a test by its output
# (PASS_REGULAR_EXPRESSION).
# RANK_DIES (implies RECOVERY) marks a test whose job must go on after one of its ranks died
# before the master finished. Measured with MPICH 4.0.2, Hydra cannot do that: without flags it
# ends the whole job at the death; with -disable-auto-cleanup, in 5 runs, mpiexec exited at once
# in 3 (the survivors stuck in MPI_Finalize), hung in 1 and ended every rank in 1. Under Hydra
# such a test is registered as skipped: it prints the reason and CTest reports it as "Skipped"
# (what holds there is bin/foreman-supervise with a checkpoint journal: the job is run again and
# computes only what it lacks).
# Requires find_package(MPI) to have run (it sets MPIEXEC_EXECUTABLE).
include_guard(GLOBAL)

set(FOREMAN_MPI_TEST_TIMEOUT 120 CACHE STRING "Default TIMEOUT (seconds) of tests added by foreman_add_mpi_test")

# Sets <out> to openmpi, hydra, slurm or unknown: the kind of ${MPIEXEC_EXECUTABLE}.
function(foreman_mpiexec_kind out)
  if(NOT _FOREMAN_MPIEXEC_KIND_OF STREQUAL MPIEXEC_EXECUTABLE OR NOT DEFINED _FOREMAN_MPIEXEC_KIND)
    execute_process(COMMAND ${MPIEXEC_EXECUTABLE} --version OUTPUT_VARIABLE version ERROR_VARIABLE version
                    RESULT_VARIABLE ignored TIMEOUT 20)
    if(version MATCHES "Open MPI|OpenRTE")
      set(kind openmpi)
    elseif(version MATCHES "HYDRA|Intel\(R\) MPI")
      set(kind hydra)
    elseif(version MATCHES "slurm")
      set(kind slurm)
    else()
      set(kind unknown)
    endif()
    set(_FOREMAN_MPIEXEC_KIND ${kind} CACHE INTERNAL "")
    set(_FOREMAN_MPIEXEC_KIND_OF "${MPIEXEC_EXECUTABLE}" CACHE INTERNAL "")
  endif()
  set(${out} ${_FOREMAN_MPIEXEC_KIND} PARENT_SCOPE)
endfunction()

# The launcher flags every job needs here (oversubscription, root).
function(_foreman_mpiexec_flags out)
  foreman_mpiexec_kind(kind)
  set(flags)
  if(kind STREQUAL "openmpi")
    list(APPEND flags --oversubscribe)
    execute_process(COMMAND id -u OUTPUT_VARIABLE uid OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    if(uid STREQUAL "0")
      list(APPEND flags --allow-run-as-root)
    endif()
  elseif(kind STREQUAL "slurm")
    list(APPEND flags --overcommit)
  endif()
  set(${out} ${flags} PARENT_SCOPE)
endfunction()

# The launcher flags that keep a job going when one of its ranks ends (empty if none).
function(_foreman_mpiexec_recovery_flags out)
  foreman_mpiexec_kind(kind)
  if(kind STREQUAL "openmpi")
    set(${out} --enable-recovery --mca async_mpi_finalize 1 PARENT_SCOPE)
  elseif(kind STREQUAL "slurm")
    set(${out} --kill-on-bad-exit=0 PARENT_SCOPE)
  else()
    set(${out} "" PARENT_SCOPE)
  endif()
endfunction()

# Sets <out> to the reason why a job cannot go on after one of its ranks died under this
# launcher, or to "" when it can (or when that is not known).
function(foreman_mpiexec_cannot_survive_death out)
  foreman_mpiexec_kind(kind)
  if(kind STREQUAL "hydra")
    set(${out} "the launcher (Hydra: MPICH, Intel MPI) ends the whole job when a rank dies, and -disable-auto-cleanup does not keep it usable (mpiexec exits or hangs, measured with MPICH 4.0.2); under it a killed job is run again by bin/foreman-supervise from its checkpoint journal (test supervise.4ranks)" PARENT_SCOPE)
  else()
    set(${out} "" PARENT_SCOPE)
  endif()
endfunction()

# Registers <name> as a test that is skipped: it prints "skipped: <reason>" and CTest reports it
# as not run (SKIP_REGULAR_EXPRESSION), with the reason in its output.
function(foreman_add_skipped_test name reason)
  add_test(NAME ${name} COMMAND ${CMAKE_COMMAND} -E echo "skipped: ${reason}")
  set_tests_properties(${name} PROPERTIES SKIP_REGULAR_EXPRESSION "^skipped: " LABELS skipped)
endfunction()

function(foreman_add_mpi_test name)
  cmake_parse_arguments(PARSE_ARGV 1 arg "RECOVERY;RANK_DIES" "TARGET;TIMEOUT" "RANKS;ARGS;MPIEXEC_FLAGS;LABELS")
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
  set(cannot_survive "")
  if(arg_RANK_DIES)
    set(arg_RECOVERY TRUE)
    foreman_mpiexec_cannot_survive_death(cannot_survive)
  endif()
  _foreman_mpiexec_flags(launcher_flags)
  if(arg_RECOVERY)
    _foreman_mpiexec_recovery_flags(recovery_flags)
    list(APPEND launcher_flags ${recovery_flags})
  endif()
  foreach(ranks IN LISTS arg_RANKS)
    set(test_name ${name}.${ranks}ranks)
    if(cannot_survive)
      foreman_add_skipped_test(${test_name} "a rank of ${test_name} dies on purpose, and ${cannot_survive}")
      continue()
    endif()
    add_test(NAME ${test_name}
             COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${ranks} ${launcher_flags} ${MPIEXEC_PREFLAGS}
                     ${arg_MPIEXEC_FLAGS} $<TARGET_FILE:${arg_TARGET}> ${MPIEXEC_POSTFLAGS} ${arg_ARGS})
    set_tests_properties(${test_name} PROPERTIES TIMEOUT ${arg_TIMEOUT} PROCESSORS ${ranks})
    if(arg_LABELS)
      set_tests_properties(${test_name} PROPERTIES LABELS "${arg_LABELS}")
    endif()
  endforeach()
endfunction()
