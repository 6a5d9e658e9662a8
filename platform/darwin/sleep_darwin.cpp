// sleep_ns on Darwin: there is no clock_nanosleep, so sleep relative
// intervals and re-check nanotime() until the absolute deadline passes.
#include <errno.h>
#include <time.h>

#include "platform/duration.h"
#include "platform/os.h"

namespace keel::os {

void sleep_ns(int64_t ns) noexcept {
  if (ns == 0) return;
  const int64_t deadline = deadline_after(nanotime(), ns);  // ns < 0: forever
  for (;;) {
    int64_t now = nanotime();
    if (now >= deadline) return;
    int64_t left = deadline - now;
    // nanosleep sleeps on a different clock than CLOCK_UPTIME_RAW; the loop
    // makes any difference (or an EINTR) harmless. Cap each step so tv_sec
    // stays far from any overflow in the kernel's conversion.
    constexpr int64_t kMaxStep = int64_t(1'000'000) * 1'000'000'000;  // 10^6 s
    if (left > kMaxStep) left = kMaxStep;
    timespec ts;
    ts.tv_sec = time_t(left / 1'000'000'000);
    ts.tv_nsec = long(left % 1'000'000'000);
    nanosleep(&ts, nullptr);
  }
}

}  // namespace keel::os
