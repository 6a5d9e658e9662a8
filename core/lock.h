// The runtime lock (Go's runtime.mutex): bounded spin with a pause
// instruction, then a yield, then park. Never spins without bound.
//
// Anti-starvation: a waiter that has waited longer than 1 ms sets the
// "handoff" bit; the next unlock then keeps the lock held and hands it
// directly to a parked waiter instead of letting a running thread barge in.
// LockSema wakes the oldest waiter (tail of its waiter stack) and hands it
// the lock directly; LockFutex relies on the kernel's FIFO order for waiters
// on one futex word and lets any waiter that has already parked claim it.
//
// Two flavours as for Note; the runtime uses `Lock`, chosen by KEEL_PARK.
#pragma once

#include <atomic>
#include <cstdint>

namespace keel::core {

struct ThreadWaiter;

class LockFutex {
 public:
  void lock() noexcept {
    uint32_t v = 0;
    if (!key_.compare_exchange_strong(v, kLocked, std::memory_order_acquire, std::memory_order_relaxed)) lock_slow();
  }
  void unlock() noexcept;
  bool try_lock() noexcept {
    uint32_t v = key_.load(std::memory_order_relaxed);
    while (!(v & kLocked))
      if (key_.compare_exchange_weak(v, v | kLocked, std::memory_order_acquire, std::memory_order_relaxed)) return true;
    return false;
  }

 private:
  // kHandoff: a starving waiter asks the next unlock to hand the lock over.
  // kToken: unlock did so — the lock stays held (kLocked) for whichever
  // already-parked waiter claims the token. It lives in the futex word, so a
  // waiter about to park sees the change (a separate flag could be set
  // between that waiter's check and its futex_wait: a lost wakeup).
  static constexpr uint32_t kLocked = 1, kSleepers = 2, kHandoff = 4, kToken = 8;
  void lock_slow() noexcept;
  std::atomic<uint32_t> key_{0};
};

class LockSema {
 public:
  void lock() noexcept {
    uintptr_t v = 0;
    if (!key_.compare_exchange_strong(v, kLocked, std::memory_order_acquire, std::memory_order_relaxed)) lock_slow();
  }
  void unlock() noexcept;
  bool try_lock() noexcept {
    uintptr_t v = key_.load(std::memory_order_relaxed);
    while (!(v & kLocked))
      if (key_.compare_exchange_weak(v, v | kLocked, std::memory_order_acquire, std::memory_order_relaxed)) return true;
    return false;
  }

 private:
  // Low bits are flags; the rest points at the newest parked ThreadWaiter
  // (a stack linked through ThreadWaiter::next; the oldest is the tail).
  static constexpr uintptr_t kLocked = 1, kHandoff = 2, kFlags = 7;
  void lock_slow() noexcept;
  std::atomic<uintptr_t> key_{0};
};

#if defined(KEEL_PARK_SEMA)
using Lock = LockSema;
#else
using Lock = LockFutex;
#endif

// RAII guard for either flavour.
template <class L>
class LockGuard {
 public:
  explicit LockGuard(L& l) noexcept : l_(l) { l_.lock(); }
  ~LockGuard() { l_.unlock(); }
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;

 private:
  L& l_;
};

}  // namespace keel::core
