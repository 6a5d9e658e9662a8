// Clock on Darwin.
#include <time.h>

#include "platform/os.h"

namespace keel::os {

int64_t nanotime() noexcept {
  // CLOCK_UPTIME_RAW is mach_absolute_time already scaled by the timebase
  // (125/3 on Apple silicon), the clock Go's nanotime uses on Darwin. It does
  // not advance while the machine sleeps, matching the kernel's wait timeouts.
  return int64_t(clock_gettime_nsec_np(CLOCK_UPTIME_RAW));
}

int64_t walltime() noexcept {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

int64_t clock_resolution_ns() noexcept {
  timespec ts;
  if (clock_getres(CLOCK_UPTIME_RAW, &ts) != 0) return 1;
  int64_t r = int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
  return r > 0 ? r : 1;
}

}  // namespace keel::os
