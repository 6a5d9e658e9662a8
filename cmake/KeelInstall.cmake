# Install rules: `cmake --install <build> --prefix <p>` puts
#   <p>/include/keel/*.h                 the public headers
#   <p>/lib/libkeel.a, libkeel_platform.a (keel.lib, keel_platform.lib)
#   <p>/lib/cmake/keel/keelConfig.cmake, keelConfigVersion.cmake, keelTargets*.cmake
# so that find_package(keel) gives keel::keel (and keel::keel_platform, which
# keel::keel links: both are static).
include(CMakePackageConfigHelpers)

set(KEEL_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/keel" CACHE STRING "Where keelConfig.cmake is installed")

install(TARGETS keel keel_platform
  EXPORT keelTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/keel"
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.h")
install(EXPORT keelTargets
  NAMESPACE keel::
  FILE keelTargets.cmake
  DESTINATION ${KEEL_INSTALL_CMAKEDIR})

configure_package_config_file(
  "${PROJECT_SOURCE_DIR}/cmake/keelConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/keelConfig.cmake"
  INSTALL_DESTINATION ${KEEL_INSTALL_CMAKEDIR})
# 0.x: a minor version may break the API, so only the same minor matches.
write_basic_package_version_file(
  "${PROJECT_BINARY_DIR}/keelConfigVersion.cmake"
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMinorVersion)
install(FILES "${PROJECT_BINARY_DIR}/keelConfig.cmake" "${PROJECT_BINARY_DIR}/keelConfigVersion.cmake"
  DESTINATION ${KEEL_INSTALL_CMAKEDIR})
