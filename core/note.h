// Note: a one-shot event between threads (Go's runtime note).
//   clear() → sleep() / sleep_for(ns) by one thread → wakeup() by another.
// A timed-out sleeper de-registers; if a wakeup won the race, the sleeper
// consumes it and reports woken, so the note stays consistent. A second
// wakeup without a clear is a fatal error.
//
// Two flavours, as Go's lock_futex.go / lock_sema.go: NoteFutex parks on the
// address-wait family, NoteSema on the calling thread's semaphore. Both are
// built on every target that has both families; the runtime uses `Note`,
// chosen by KEEL_PARK at configure time.
#pragma once

#include <atomic>
#include <cstdint>

namespace keel::core {

class NoteFutex {
 public:
  void clear() noexcept { key_.store(0, std::memory_order_relaxed); }
  void wakeup() noexcept;
  void sleep() noexcept;
  // Wait at most ns (negative: forever). True if woken, false on timeout.
  bool sleep_for(int64_t ns) noexcept;
  bool woken() const noexcept { return key_.load(std::memory_order_acquire) == kWoken; }

 private:
  // kSleeping marks a (possible) sleeper, so a wakeup with nobody asleep
  // costs no system call — Go's futex note always makes one.
  static constexpr uint32_t kClear = 0, kWoken = 1, kSleeping = 2;
  std::atomic<uint32_t> key_{kClear};
};

class NoteSema {
 public:
  void clear() noexcept { key_.store(0, std::memory_order_relaxed); }
  void wakeup() noexcept;
  void sleep() noexcept;
  bool sleep_for(int64_t ns) noexcept;
  bool woken() const noexcept { return key_.load(std::memory_order_acquire) == kWoken; }

 private:
  static constexpr uintptr_t kWoken = 1;
  std::atomic<uintptr_t> key_{0};  // 0 clear, kWoken, or the sleeping thread's ThreadWaiter*
};

#if defined(KEEL_PARK_SEMA)
using Note = NoteSema;
inline constexpr const char* kParkFlavour = "sema";
#else
using Note = NoteFutex;
inline constexpr const char* kParkFlavour = "futex";
#endif

}  // namespace keel::core
