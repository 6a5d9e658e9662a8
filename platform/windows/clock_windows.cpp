// Windows clock: QueryPerformanceCounter (monotonic, user-space on modern
// Windows) and GetSystemTimePreciseAsFileTime (wall clock, Windows 8+).
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>

#include "platform/os.h"

namespace keel::os {

namespace {

// QPF is fixed at boot and never fails on XP or later. A function-local
// static rather than a global so nanotime() works from other static
// initializers.
int64_t qpc_frequency() noexcept {
  static const int64_t freq = [] {
    LARGE_INTEGER f;
    QueryPerformanceFrequency(&f);
    return f.QuadPart > 0 ? f.QuadPart : int64_t{1};
  }();
  return freq;
}

// FILETIME counts 100 ns ticks since 1601-01-01; this many lie before 1970.
constexpr int64_t kUnixEpochIn100ns = 116'444'736'000'000'000;

}  // namespace

int64_t nanotime() noexcept {
  LARGE_INTEGER c;
  QueryPerformanceCounter(&c);
  const int64_t f = qpc_frequency();
  // counter * 1e9 overflows int64 after ~15 min at 10 MHz, so scale whole
  // seconds and the sub-second remainder separately (remainder < f, and
  // f * 1e9 fits for any f below 9.2 GHz). The result is still monotonic:
  // the remainder term stays below 1e9 and resets only as seconds step up.
  const int64_t sec = c.QuadPart / f;
  const int64_t rem = c.QuadPart % f;
  return sec * 1'000'000'000 + rem * 1'000'000'000 / f;
}

int64_t walltime() noexcept {
  FILETIME ft;
  GetSystemTimePreciseAsFileTime(&ft);
  const int64_t ticks =
      (static_cast<int64_t>(ft.dwHighDateTime) << 32) | static_cast<int64_t>(ft.dwLowDateTime);
  return (ticks - kUnixEpochIn100ns) * 100;
}

int64_t clock_resolution_ns() noexcept {
  const int64_t f = qpc_frequency();
  const int64_t r = (1'000'000'000 + f - 1) / f;
  return r < 1 ? 1 : r;
}

}  // namespace keel::os
