# Install rules: headers, the exported target foreman::foreman, the package configuration and
# foreman_add_mpi_test() for downstream projects. Included by the top-level CMakeLists.txt when
# FOREMAN_INSTALL is on.
include(CMakePackageConfigHelpers)

set(FOREMAN_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/foreman
    CACHE STRING "Where foremanConfig.cmake is installed, relative to the prefix")
mark_as_advanced(FOREMAN_INSTALL_CMAKEDIR)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/foreman
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.hpp")

install(TARGETS foreman EXPORT foremanTargets)
install(EXPORT foremanTargets
        NAMESPACE foreman::
        FILE foremanTargets.cmake
        DESTINATION ${FOREMAN_INSTALL_CMAKEDIR})

configure_package_config_file(
  ${PROJECT_SOURCE_DIR}/cmake/foremanConfig.cmake.in
  ${PROJECT_BINARY_DIR}/foremanConfig.cmake
  INSTALL_DESTINATION ${FOREMAN_INSTALL_CMAKEDIR})
# A header-only library: one installed package serves every architecture.
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/foremanConfigVersion.cmake
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMajorVersion
  ARCH_INDEPENDENT)

install(FILES
          ${PROJECT_BINARY_DIR}/foremanConfig.cmake
          ${PROJECT_BINARY_DIR}/foremanConfigVersion.cmake
          ${PROJECT_SOURCE_DIR}/cmake/foremanTesting.cmake
        DESTINATION ${FOREMAN_INSTALL_CMAKEDIR})

# The launcher wrapper that runs a job again from its checkpoint journal (docs/reliability.md).
install(PROGRAMS ${PROJECT_SOURCE_DIR}/bin/foreman-supervise DESTINATION ${CMAKE_INSTALL_BINDIR})
