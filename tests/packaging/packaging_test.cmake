# cmake -P driver for the packaging tests. Variables (-D):
#   MODE                install | subdirectory
#   FOREMAN_SOURCE_DIR  foreman's source tree
#   FOREMAN_BINARY_DIR  foreman's build tree (MODE=install: installed from, as `cmake --install` would)
#   WORK_DIR            scratch directory, wiped first
#   GENERATOR, MAKE_PROGRAM, CXX_COMPILER, CXX_FLAGS, BUILD_TYPE, CONFIG  how to build the consumer
#
# install:      cmake --install <foreman build> --prefix <WORK_DIR>/prefix, check the install tree,
#               then configure the consumer with find_package(foreman CONFIG REQUIRED) against it.
# subdirectory: configure the consumer with add_subdirectory(<foreman source>).
# Either way the consumer is built and its own tests (registered with foreman_add_mpi_test, 1 and 3
# ranks) are run with ctest.
cmake_minimum_required(VERSION 3.20)

foreach(var MODE FOREMAN_SOURCE_DIR WORK_DIR)
  if(NOT ${var})
    message(FATAL_ERROR "packaging_test: ${var} is not set")
  endif()
endforeach()

function(run_step what)
  message(STATUS "packaging_test [${MODE}]: ${what}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc TIMEOUT 400)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "packaging_test [${MODE}]: ${what} failed (${rc})")
  endif()
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
file(MAKE_DIRECTORY ${WORK_DIR})
set(consumer_src ${FOREMAN_SOURCE_DIR}/tests/packaging/consumer)
set(consumer_bin ${WORK_DIR}/consumer-build)

set(configure_args -S ${consumer_src} -B ${consumer_bin}
    # Only the prefix under test may provide foreman.
    -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF)
if(GENERATOR)
  list(APPEND configure_args -G ${GENERATOR})
endif()
if(MAKE_PROGRAM)
  list(APPEND configure_args -DCMAKE_MAKE_PROGRAM=${MAKE_PROGRAM})
endif()
if(CXX_COMPILER)
  list(APPEND configure_args -DCMAKE_CXX_COMPILER=${CXX_COMPILER})
endif()
if(BUILD_TYPE)
  list(APPEND configure_args -DCMAKE_BUILD_TYPE=${BUILD_TYPE})
endif()
list(APPEND configure_args "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}")
if(NOT CONFIG)
  set(CONFIG Release)
endif()

if(MODE STREQUAL "install")
  if(NOT FOREMAN_BINARY_DIR)
    message(FATAL_ERROR "packaging_test: FOREMAN_BINARY_DIR is not set")
  endif()
  set(prefix ${WORK_DIR}/prefix)
  run_step("cmake --install into ${prefix}"
           ${CMAKE_COMMAND} --install ${FOREMAN_BINARY_DIR} --prefix ${prefix} --config ${CONFIG})

  # Every header of the source tree is installed.
  file(GLOB_RECURSE source_headers RELATIVE ${FOREMAN_SOURCE_DIR}/include ${FOREMAN_SOURCE_DIR}/include/*.hpp)
  if(NOT source_headers)
    message(FATAL_ERROR "packaging_test: no headers found under ${FOREMAN_SOURCE_DIR}/include")
  endif()
  foreach(header IN LISTS source_headers)
    if(NOT EXISTS ${prefix}/include/${header})
      message(FATAL_ERROR "packaging_test: ${header} is not installed under ${prefix}/include")
    endif()
  endforeach()

  # The package files are there, and none of them points back into the source or build tree.
  file(GLOB lib_dirs LIST_DIRECTORIES true ${prefix}/lib*/cmake/foreman)
  list(LENGTH lib_dirs n)
  if(NOT n EQUAL 1)
    message(FATAL_ERROR "packaging_test: expected one <prefix>/lib*/cmake/foreman, found '${lib_dirs}'")
  endif()
  set(package_dir ${lib_dirs})
  foreach(file foremanConfig.cmake foremanConfigVersion.cmake foremanTargets.cmake foremanTesting.cmake)
    if(NOT EXISTS ${package_dir}/${file})
      message(FATAL_ERROR "packaging_test: ${file} is not installed in ${package_dir}")
    endif()
  endforeach()
  # The supervisor (bin/foreman-supervise) is installed as a program.
  if(NOT EXISTS ${prefix}/bin/foreman-supervise)
    message(FATAL_ERROR "packaging_test: bin/foreman-supervise is not installed under ${prefix}")
  endif()
  execute_process(COMMAND bash ${prefix}/bin/foreman-supervise --help RESULT_VARIABLE help_status
                  OUTPUT_QUIET ERROR_VARIABLE help_text)
  if(NOT help_status EQUAL 2 OR NOT help_text MATCHES "foreman-supervise")
    message(FATAL_ERROR "packaging_test: the installed foreman-supervise --help failed: ${help_text}")
  endif()
  file(GLOB_RECURSE installed LIST_DIRECTORIES false ${prefix}/include/* ${package_dir}/* ${prefix}/bin/*)
  foreach(file IN LISTS installed)
    file(READ ${file} text)
    foreach(tree ${FOREMAN_SOURCE_DIR} ${FOREMAN_BINARY_DIR})
      string(FIND "${text}" "${tree}" at)
      if(NOT at EQUAL -1)
        message(FATAL_ERROR "packaging_test: installed ${file} refers to ${tree}")
      endif()
    endforeach()
  endforeach()

  list(APPEND configure_args -DCMAKE_PREFIX_PATH=${prefix})
  run_step("configure the consumer with find_package(foreman)" ${CMAKE_COMMAND} ${configure_args})

  # find_package() took the package just installed, not another one.
  file(STRINGS ${consumer_bin}/CMakeCache.txt found_dir REGEX "^foreman_DIR:")
  string(REGEX REPLACE "^foreman_DIR:[A-Z]+=" "" found_dir "${found_dir}")
  file(REAL_PATH "${found_dir}" found_dir)
  file(REAL_PATH "${package_dir}" expected_dir)
  if(NOT found_dir STREQUAL expected_dir)
    message(FATAL_ERROR "packaging_test: find_package(foreman) used '${found_dir}', expected '${expected_dir}'")
  endif()
elseif(MODE STREQUAL "subdirectory")
  list(APPEND configure_args -DFOREMAN_SOURCE_DIR=${FOREMAN_SOURCE_DIR})
  run_step("configure the consumer with add_subdirectory(foreman)" ${CMAKE_COMMAND} ${configure_args})

  # As a subproject foreman builds neither its tests nor its examples, and installs nothing.
  file(STRINGS ${consumer_bin}/CMakeCache.txt options REGEX "^FOREMAN_(BUILD_TESTS|BUILD_EXAMPLES|INSTALL):")
  foreach(option IN LISTS options)
    if(NOT option MATCHES "=OFF$")
      message(FATAL_ERROR "packaging_test: as a subproject foreman must default to OFF: ${option}")
    endif()
  endforeach()
  list(LENGTH options n)
  if(NOT n EQUAL 3)
    message(FATAL_ERROR "packaging_test: FOREMAN_BUILD_TESTS/BUILD_EXAMPLES/INSTALL missing from the cache: '${options}'")
  endif()
else()
  message(FATAL_ERROR "packaging_test: MODE must be install or subdirectory, not '${MODE}'")
endif()

run_step("build the consumer" ${CMAKE_COMMAND} --build ${consumer_bin} --config ${CONFIG} --parallel 2)

# Exactly the consumer's own tests: consumer.1ranks, consumer.3ranks, readme_example.3ranks.
execute_process(COMMAND ${CMAKE_CTEST_COMMAND} -N -C ${CONFIG} WORKING_DIRECTORY ${consumer_bin}
                OUTPUT_VARIABLE listing RESULT_VARIABLE rc TIMEOUT 60)
string(REGEX MATCHALL "Test +#[0-9]+: [^\n]+" listed "${listing}")
list(LENGTH listed n)
if(NOT rc EQUAL 0 OR NOT n EQUAL 3 OR NOT listing MATCHES "consumer\\.3ranks")
  message(FATAL_ERROR "packaging_test [${MODE}]: unexpected consumer tests:\n${listing}")
endif()
run_step("run the consumer's tests (mpirun, 1 and 3 ranks)"
         ${CMAKE_CTEST_COMMAND} -C ${CONFIG} --output-on-failure --no-tests=error --test-dir ${consumer_bin})
message(STATUS "packaging_test [${MODE}]: passed")
