# Runs an example and compares its standard output byte for byte with a golden file.
#
#   cmake -DGOLDEN=<file> [-DACTUAL=<file>] -P compare.cmake -- <command> [<arg>...]
#
# The command is typically `mpiexec -n N [flags] <example>`. Only standard output is compared
# (it is what the seed programs print); standard error is shown when something goes wrong.
# The command must exit with status 0. On a mismatch the actual output is written to ACTUAL
# (default: <golden name>.actual in the working directory) and a unified diff is printed.
#
# In a golden file, `<figure>` stands for a figure that varies from run to run and between rank
# counts (a node count, a memory size): one or more digits, with a decimal point or not. The
# seeds' golden files have none; those of the examples that check their own answers
# (branch_and_bound, stream: the same file for every rank count) do.
cmake_minimum_required(VERSION 3.20)

include(${CMAKE_CURRENT_LIST_DIR}/command_line.cmake)
_foreman_example_command(command)

if(NOT GOLDEN OR NOT EXISTS "${GOLDEN}")
  message(FATAL_ERROR "compare.cmake: GOLDEN='${GOLDEN}' is not a file")
endif()
file(READ "${GOLDEN}" expected)

_foreman_example_run(actual errors ${command})

set(same FALSE)
if(expected MATCHES "<figure>")
  # The golden text as one regular expression of the whole output: its special characters
  # escaped, then each <figure> made a number.
  string(REGEX REPLACE "([][\\^$.|?*+(){}])" "\\\\\\1" pattern "${expected}")
  string(REPLACE "<figure>" "[0-9]+(\\.[0-9]+)?" pattern "${pattern}")
  if(actual MATCHES "^${pattern}$")
    set(same TRUE)
  endif()
elseif(actual STREQUAL expected)
  set(same TRUE)
endif()

if(NOT same)
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
