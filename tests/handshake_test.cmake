# Runs two different programs under one mpiexec (MPMD) and checks that every rank reported
# a foreman::handshake_error and exited 0. Called by CTest as
#   cmake -DMPIEXEC=... -DNUMPROC_FLAG=... -DFLAGS=<;-list> -DFIRST=<exe> -DFIRST_RANKS=<n>
#         [-DFIRST_ARGS=<;-list>] -DSECOND=<exe> -DSECOND_RANKS=<n> [-DSECOND_ARGS=<;-list>]
#         -P handshake_test.cmake
math(EXPR ranks "${FIRST_RANKS} + ${SECOND_RANKS}")
execute_process(
  COMMAND ${MPIEXEC} ${FLAGS} ${NUMPROC_FLAG} ${FIRST_RANKS} ${FIRST} ${FIRST_ARGS} : ${NUMPROC_FLAG} ${SECOND_RANKS}
          ${SECOND} ${SECOND_ARGS}
  RESULT_VARIABLE status OUTPUT_VARIABLE output ERROR_VARIABLE output TIMEOUT 50)
message("${output}")
if(NOT status EQUAL 0)
  message(FATAL_ERROR "handshake test: mpiexec exited with '${status}'; every rank must exit 0")
endif()
math(EXPR last "${ranks} - 1")
foreach(rank RANGE ${last})
  if(NOT output MATCHES "rank ${rank}: caught foreman::handshake_error: foreman: handshake failed")
    message(FATAL_ERROR "handshake test: rank ${rank} did not report a handshake_error")
  endif()
endforeach()
message("handshake test: all ${ranks} ranks caught foreman::handshake_error")
