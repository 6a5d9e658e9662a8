// Address-wait on Windows: WaitOnAddress / WakeByAddressSingle / WakeByAddressAll
// (Windows 8+, link synchronization). The wait takes whole milliseconds and a
// relative timeout, so keep our own absolute deadline on nanotime() and wait
// again for the remainder whenever the OS gives up before it.
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>

#include "platform/duration.h"
#include "platform/os.h"
#include "platform/tsan_annotations.h"

namespace keel::os {

// WaitOnAddress compares AddressSize raw bytes at the address, so the atomic
// must be exactly the 32-bit word with nothing around it.
static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t), "futex word must be a plain 32-bit word");
static_assert(std::atomic<uint32_t>::is_always_lock_free, "futex word must not hide a lock");

namespace {

// INFINITE is 0xFFFFFFFF: a finite wait must saturate one below it, or a
// ~49.7-day timeout would silently become "forever".
constexpr int64_t kMaxFiniteMs = int64_t{INFINITE} - 1;

}  // namespace

WaitResult futex_wait(std::atomic<uint32_t>* addr, uint32_t expected, int64_t timeout_ns) noexcept {
  // No way to report bad input through WaitResult; returning at once is the
  // only answer that neither crashes nor hangs.
  if (addr == nullptr) return WaitResult::mismatch;
  if (addr->load(std::memory_order_acquire) != expected) return WaitResult::mismatch;
  if (timeout_ns == 0) return WaitResult::timed_out;
  const int64_t deadline = deadline_after(nanotime(), timeout_ns);
  for (;;) {
    DWORD ms = INFINITE;
    if (timeout_ns > 0) {
      const int64_t now = nanotime();
      if (now >= deadline) return WaitResult::timed_out;
      ms = static_cast<DWORD>(ns_to_ms_ceil(deadline - now, kMaxFiniteMs));
    }
    // WaitOnAddress compares against *CompareAddress itself, atomically with
    // respect to WakeByAddress*: a wake between our load above and the sleep
    // is not lost, because the value changed before the wake was issued.
    uint32_t cmp = expected;
    if (WaitOnAddress(addr, &cmp, sizeof cmp, ms)) {
      // TRUE also when the value already differed, or spuriously: callers re-check.
      KEEL_TSAN_ACQUIRE(addr);
      return WaitResult::woken;
    }
    if (GetLastError() != ERROR_TIMEOUT) return WaitResult::woken;  // report as spurious, never as a timeout
    // The kernel measures the timeout from the interrupt time of the last
    // clock tick, not from now, so it can expire up to a tick before our
    // deadline by QPC; a huge wait also ends at the saturated ~49.7 days.
    // Only nanotime() decides.
    if (nanotime() >= deadline) return WaitResult::timed_out;
    // A changed value means a wake is due or already happened; say so instead
    // of sleeping again (WaitOnAddress would return at once anyway).
    if (addr->load(std::memory_order_acquire) != expected) return WaitResult::woken;
  }
}

void futex_wake(std::atomic<uint32_t>* addr, int n) noexcept {
  if (addr == nullptr) return;
  KEEL_TSAN_RELEASE(addr);
  // No counted wake: anything above one wakes every waiter on the address
  // (the contract allows it; waiters re-check their condition).
  if (n <= 1) {
    WakeByAddressSingle(addr);
  } else {
    WakeByAddressAll(addr);
  }
}

}  // namespace keel::os
