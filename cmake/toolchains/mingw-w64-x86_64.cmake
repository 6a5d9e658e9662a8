# Windows x86_64 cross build with mingw-w64 (Debian g++-mingw-w64-x86-64-posix:
# the posix thread model, so std::thread and std::mutex exist), run under Wine.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(CMAKE_C_COMPILER x86_64-w64-mingw32-gcc-posix)
set(CMAKE_CXX_COMPILER x86_64-w64-mingw32-g++-posix)
set(CMAKE_RC_COMPILER x86_64-w64-mingw32-windres)
set(CMAKE_FIND_ROOT_PATH /usr/x86_64-w64-mingw32)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
# Static: no libstdc++/libwinpthread DLLs to copy next to each test binary
# (-static-libgcc -static-libstdc++ alone still needs libwinpthread-1.dll).
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
# CMakeLists.txt points CMAKE_CROSSCOMPILING_EMULATOR at ci/wine-run.sh with a
# private prefix in the build directory.
set(KEEL_USE_WINE ON CACHE BOOL "Run Windows binaries under Wine")
