# Runs an example and compares its standard output byte for byte with a golden file.
#
#   cmake -DGOLDEN=<file> [-DACTUAL=<file>] -P compare.cmake -- <command> [<arg>...]
#
# The command is typically `mpiexec -n N [flags] <example>`. Only standard output is compared
# (it is what the seed programs print); standard error is shown when something goes wrong.
# The command must exit with status 0. On a mismatch the actual output is written to ACTUAL
# (default: <golden name>.actual in the working directory) and a unified diff is printed.
cmake_minimum_required(VERSION 3.20)

include(${CMAKE_CURRENT_LIST_DIR}/command_line.cmake)
_foreman_example_command(command)

if(NOT GOLDEN OR NOT EXISTS "${GOLDEN}")
  message(FATAL_ERROR "compare.cmake: GOLDEN='${GOLDEN}' is not a file")
endif()
file(READ "${GOLDEN}" expected)

execute_process(COMMAND ${command} OUTPUT_VARIABLE actual ERROR_VARIABLE errors RESULT_VARIABLE status)

# message(NOTICE) prints verbatim; FATAL_ERROR would rewrap the outputs being shown.
if(NOT status STREQUAL "0")
  message(NOTICE "--- stdout ---\n${actual}--- stderr ---\n${errors}")
  message(FATAL_ERROR "exit status ${status} (expected 0) from: ${command}")
endif()

if(NOT actual STREQUAL expected)
  if(NOT ACTUAL)
    get_filename_component(golden_name "${GOLDEN}" NAME)
    set(ACTUAL "${CMAKE_CURRENT_BINARY_DIR}/${golden_name}.actual")
  endif()
  file(WRITE "${ACTUAL}" "${actual}")
  find_program(diff_program diff)
  if(diff_program)
    execute_process(COMMAND ${diff_program} -u "${GOLDEN}" "${ACTUAL}" OUTPUT_VARIABLE diff_text)
  else()
    set(diff_text "--- expected ---\n${expected}--- actual ---\n${actual}")
  endif()
  message(NOTICE "${diff_text}--- stderr ---\n${errors}")
  message(FATAL_ERROR "stdout differs from ${GOLDEN} (diff above; actual output kept in ${ACTUAL})")
endif()

message(STATUS "stdout matches ${GOLDEN}")
