# GoogleTest and Google Benchmark.
#
# Order of preference for GoogleTest:
#  1. cross and sanitizer legs build it from the distribution's source tree
#     (/usr/src/googletest, Debian package "googletest"): a prebuilt host
#     library cannot link into a mingw or aarch64 binary, and an
#     uninstrumented one hides its synchronisation from TSan;
#  2. an installed package (find_package);
#  3. FetchContent of a pinned release (GitHub runners without packages).
# Google Benchmark is only needed where benchmarks build (host legs).
include(FetchContent)

set(KEEL_GTEST_SOURCE_DIR "/usr/src/googletest" CACHE PATH "GoogleTest source tree used by cross/sanitizer legs")
set(_keel_gtest_from_source OFF)
if(CMAKE_CROSSCOMPILING OR KEEL_SANITIZE)
  set(_keel_gtest_from_source ON)
endif()

if(KEEL_BUILD_CONFORMANCE)
  if(_keel_gtest_from_source AND EXISTS "${KEEL_GTEST_SOURCE_DIR}/CMakeLists.txt")
    set(INSTALL_GTEST OFF CACHE BOOL "" FORCE)
    set(BUILD_GMOCK OFF CACHE BOOL "" FORCE)
    set(gtest_force_shared_crt ON CACHE BOOL "" FORCE)
    add_subdirectory("${KEEL_GTEST_SOURCE_DIR}" "${CMAKE_BINARY_DIR}/_deps/googletest-build" EXCLUDE_FROM_ALL SYSTEM)
  else()
    if(NOT _keel_gtest_from_source)
      find_package(GTest CONFIG QUIET)
    endif()
    if(NOT TARGET GTest::gtest)
      set(INSTALL_GTEST OFF CACHE BOOL "" FORCE)
      set(BUILD_GMOCK OFF CACHE BOOL "" FORCE)
      set(gtest_force_shared_crt ON CACHE BOOL "" FORCE)
      FetchContent_Declare(googletest
        URL https://github.com/google/googletest/archive/refs/tags/v1.14.0.tar.gz
        URL_HASH SHA256=8ad598c73ad796e0d8280b082cebd82a630d73e73cd3c70057938a6501bba5d7
        SYSTEM)
      FetchContent_MakeAvailable(googletest)
    endif()
  endif()
  if(NOT TARGET GTest::gtest)
    add_library(GTest::gtest ALIAS gtest)
  endif()
endif()

if(KEEL_BUILD_BENCH)
  find_package(benchmark CONFIG QUIET)
  if(NOT TARGET benchmark::benchmark)
    set(BENCHMARK_ENABLE_TESTING OFF CACHE BOOL "" FORCE)
    set(BENCHMARK_ENABLE_INSTALL OFF CACHE BOOL "" FORCE)
    set(BENCHMARK_ENABLE_GTEST_TESTS OFF CACHE BOOL "" FORCE)
    FetchContent_Declare(benchmark
      URL https://github.com/google/benchmark/archive/refs/tags/v1.8.3.tar.gz
      URL_HASH SHA256=6bc180a57d23d4d9515519f92b0c83d61b05b5bab188961f36ac7b06b0d9e9ce
      SYSTEM)
    FetchContent_MakeAvailable(benchmark)
  endif()
endif()
