// Clock on Linux: clock_gettime through the vDSO (no syscall).
#include <time.h>

#include "platform/os.h"

namespace keel::os {

int64_t nanotime() noexcept {
  // CLOCK_MONOTONIC, not CLOCK_MONOTONIC_RAW: the futex and sleep deadlines
  // (clock_nanosleep, FUTEX_WAIT_BITSET) are measured on CLOCK_MONOTONIC, so
  // deadlines computed from nanotime() line up with the kernel's.
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

int64_t walltime() noexcept {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

int64_t clock_resolution_ns() noexcept {
  timespec ts;
  if (clock_getres(CLOCK_MONOTONIC, &ts) != 0) return 1;
  int64_t r = int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
  return r > 0 ? r : 1;
}

}  // namespace keel::os
