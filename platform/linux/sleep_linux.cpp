// sleep_ns on Linux: an absolute CLOCK_MONOTONIC deadline, so a signal that
// interrupts the sleep (EINTR) does not stretch or shorten the total.
#include <errno.h>
#include <time.h>
#include <unistd.h>

#include "platform/duration.h"
#include "platform/os.h"

namespace keel::os {

void sleep_ns(int64_t ns) noexcept {
  if (ns == 0) return;
  const int64_t deadline = deadline_after(nanotime(), ns);  // ns < 0: INT64_MAX, forever
  for (;;) {
    if (nanotime() >= deadline) return;
    timespec ts;
    ts.tv_sec = time_t(deadline / 1'000'000'000);
    ts.tv_nsec = long(deadline % 1'000'000'000);
    // Returns 0, EINTR (signal) or EINVAL; in every case loop and re-check
    // against nanotime(), which reads the same clock.
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr);
  }
}

}  // namespace keel::os
