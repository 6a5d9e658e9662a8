// Address-wait on Darwin. Preference order:
//  1. os_sync_wait_on_address (public API, macOS 14.4+), relative ns timeout;
//  2. __ulock_wait2 (private, macOS 11+), relative ns timeout (uint64);
//  3. __ulock_wait (private, older), relative µs timeout in a uint32 where 0
//     means FOREVER (zig#9545): round up to >= 1 µs and cap at UINT32_MAX,
//     re-waiting for the remainder (zig#6914: a large value must not wrap).
// Every path keeps our own nanotime() deadline and reports timed_out only
// once it has passed.
#include <errno.h>

#include <cstdint>

#include "platform/duration.h"
#include "platform/os.h"
#include "platform/tsan_annotations.h"

#if __has_include(<os/os_sync_wait_on_address.h>)
#include <os/clock.h>
#include <os/os_sync_wait_on_address.h>
#define KEEL_HAVE_OS_SYNC 1
#endif

extern "C" {
// From xnu's bsd/sys/ulock.h; weak so a missing symbol is a null pointer.
int __ulock_wait(uint32_t operation, void* addr, uint64_t value, uint32_t timeout_us) __attribute__((weak_import));
int __ulock_wait2(uint32_t operation, void* addr, uint64_t value, uint64_t timeout_ns, uint64_t value2)
    __attribute__((weak_import));
int __ulock_wake(uint32_t operation, void* addr, uint64_t wake_value) __attribute__((weak_import));
}

namespace keel::os {
namespace {

constexpr uint32_t UL_COMPARE_AND_WAIT = 1;
constexpr uint32_t ULF_WAKE_ALL = 0x00000100;
constexpr uint32_t ULF_NO_ERRNO = 0x01000000;  // return -errno instead of setting errno

// One OS wait of at most `left` ns (left < 0: forever). Returns 0 on a wake,
// else a positive errno (ETIMEDOUT, EINTR, EFAULT).
int wait_once(std::atomic<uint32_t>* addr, uint32_t expected, int64_t left) {
  void* a = reinterpret_cast<void*>(addr);
#if defined(KEEL_HAVE_OS_SYNC)
  if (__builtin_available(macOS 14.4, *)) {
    int rc = left < 0 ? os_sync_wait_on_address(a, expected, sizeof(uint32_t), OS_SYNC_WAIT_ON_ADDRESS_NONE)
                      : os_sync_wait_on_address_with_timeout(a, expected, sizeof(uint32_t),
                                                             OS_SYNC_WAIT_ON_ADDRESS_NONE,
                                                             OS_CLOCK_MACH_ABSOLUTE_TIME, uint64_t(left));
    return rc >= 0 ? 0 : errno;
  }
#endif
  if (__ulock_wait2 != nullptr) {
    // timeout 0 means forever here too.
    int rc = __ulock_wait2(UL_COMPARE_AND_WAIT | ULF_NO_ERRNO, a, expected, left < 0 ? 0 : uint64_t(left), 0);
    return rc >= 0 ? 0 : -rc;
  }
  uint32_t us = left < 0 ? 0 : uint32_t(ns_to_us_ceil(left, UINT32_MAX));
  int rc = __ulock_wait(UL_COMPARE_AND_WAIT | ULF_NO_ERRNO, a, expected, us);
  return rc >= 0 ? 0 : -rc;
}

}  // namespace

WaitResult futex_wait(std::atomic<uint32_t>* addr, uint32_t expected, int64_t timeout_ns) noexcept {
  if (addr->load(std::memory_order_acquire) != expected) return WaitResult::mismatch;
  if (timeout_ns == 0) return WaitResult::timed_out;
  const int64_t deadline = deadline_after(nanotime(), timeout_ns);
  for (;;) {
    int64_t left = -1;
    if (timeout_ns > 0) {
      int64_t now = nanotime();
      if (now >= deadline) return WaitResult::timed_out;
      left = deadline - now;
    }
    int err = wait_once(addr, expected, left);
    if (err == 0 || err == EINTR || err == EFAULT) {
      KEEL_TSAN_ACQUIRE(addr);
      return WaitResult::woken;  // EINTR/EFAULT: spurious, the caller re-checks
    }
    if (err == ETIMEDOUT) {
      if (nanotime() >= deadline) return WaitResult::timed_out;
      // The µs cap or a clock difference ended the wait early: wait again,
      // unless the value changed meanwhile.
      if (addr->load(std::memory_order_acquire) != expected) return WaitResult::woken;
      continue;
    }
    return WaitResult::woken;
  }
}

void futex_wake(std::atomic<uint32_t>* addr, int n) noexcept {
  KEEL_TSAN_RELEASE(addr);
  void* a = reinterpret_cast<void*>(addr);
#if defined(KEEL_HAVE_OS_SYNC)
  if (__builtin_available(macOS 14.4, *)) {
    if (n > 1) os_sync_wake_by_address_all(a, sizeof(uint32_t), OS_SYNC_WAKE_BY_ADDRESS_NONE);
    else os_sync_wake_by_address_any(a, sizeof(uint32_t), OS_SYNC_WAKE_BY_ADDRESS_NONE);
    return;
  }
#endif
  // -ENOENT (nobody waiting) is fine; -EINTR means retry.
  const uint32_t op = UL_COMPARE_AND_WAIT | ULF_NO_ERRNO | (n > 1 ? ULF_WAKE_ALL : 0);
  while (__ulock_wake(op, a, 0) == -EINTR) {
  }
}

}  // namespace keel::os
