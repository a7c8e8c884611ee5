# Runs Doxygen and prints its warnings whether it failed or not (WARN_AS_ERROR=FAIL_ON_WARNINGS
# makes a warning fail the build; the log says which). Called by the docs target:
#   cmake -DDOXYGEN=<exe> -DDOXYFILE=<Doxyfile> -DLOG=<warnings.log> -P run_doxygen.cmake
execute_process(COMMAND ${DOXYGEN} ${DOXYFILE} RESULT_VARIABLE status)
if(EXISTS ${LOG})
  file(READ ${LOG} warnings)
  if(warnings)
    message("${warnings}")
  endif()
endif()
if(NOT status EQUAL 0)
  message(FATAL_ERROR "Doxygen failed (${status}): the warnings above are errors")
endif()
