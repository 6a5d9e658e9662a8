// Address-wait on Linux: futex(2), private, with an absolute CLOCK_MONOTONIC
// deadline (FUTEX_WAIT_BITSET) so EINTR retries never stretch the wait.
#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "platform/duration.h"
#include "platform/os.h"
#include "platform/tsan_annotations.h"

namespace keel::os {

static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t), "futex word must be a plain 32-bit word");

WaitResult futex_wait(std::atomic<uint32_t>* addr, uint32_t expected, int64_t timeout_ns) noexcept {
  if (addr->load(std::memory_order_acquire) != expected) return WaitResult::mismatch;
  if (timeout_ns == 0) return WaitResult::timed_out;
  // nanotime() reads CLOCK_MONOTONIC too, so "deadline passed" means the same
  // thing to the kernel and to us.
  const int64_t deadline = deadline_after(nanotime(), timeout_ns);
  timespec ts;
  timespec* tsp = nullptr;
  if (timeout_ns > 0) {
    ts.tv_sec = time_t(deadline / 1'000'000'000);
    ts.tv_nsec = long(deadline % 1'000'000'000);
    tsp = &ts;
  }
  for (;;) {
    long rc = syscall(SYS_futex, reinterpret_cast<uint32_t*>(addr), FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG,
                      expected, tsp, nullptr, FUTEX_BITSET_MATCH_ANY);
    if (rc == 0) {
      KEEL_TSAN_ACQUIRE(addr);
      return WaitResult::woken;  // maybe spurious: the caller re-checks
    }
    switch (errno) {
      case EAGAIN: return WaitResult::mismatch;
      case ETIMEDOUT:
        if (nanotime() >= deadline) return WaitResult::timed_out;
        continue;  // cannot happen with an absolute deadline; never report early
      case EINTR:
        // A signal: report a spurious wake rather than re-arming, so a caller
        // that polls some other condition sees it promptly.
        return WaitResult::woken;
      default: return WaitResult::woken;
    }
  }
}

void futex_wake(std::atomic<uint32_t>* addr, int n) noexcept {
  KEEL_TSAN_RELEASE(addr);
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(addr), FUTEX_WAKE | FUTEX_PRIVATE_FLAG, n < 1 ? 1 : n, nullptr,
          nullptr, 0);
}

}  // namespace keel::os
