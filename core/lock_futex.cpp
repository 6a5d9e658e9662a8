// Note and the runtime lock on the address-wait family (Go: lock_futex.go).
#include "core/fatal.h"
#include "core/lock.h"
#include "core/note.h"
#include "core/spin.h"
#include "platform/os.h"

namespace keel::core {
namespace {
constexpr int kActiveSpin = 4;        // rounds of kActiveSpinCount pauses (Go: active_spin)
constexpr int kActiveSpinCount = 30;  // pauses per round (Go: active_spin_cnt)
constexpr int64_t kStarveNs = 1'000'000;
}  // namespace

int ncpu() noexcept {
  static const int n = os::cpu_count();
  return n;
}

// ------------------------------------------------------------------- Note
void NoteFutex::wakeup() noexcept {
  const uint32_t old = key_.exchange(kWoken, std::memory_order_release);
  if (old == kWoken) fatal("notewakeup - double wakeup");
  if (old == kSleeping) os::futex_wake(&key_, 1);
}

void NoteFutex::sleep() noexcept { sleep_for(-1); }

bool NoteFutex::sleep_for(int64_t ns) noexcept {
  // Announce the sleeper (kClear -> kSleeping). kSleeping may already be set
  // by an earlier timed-out sleep on this note: that is us, keep waiting.
  uint32_t v = kClear;
  if (!key_.compare_exchange_strong(v, kSleeping, std::memory_order_acquire) && v == kWoken) return true;
  const int64_t deadline = ns < 0 ? -1 : os::nanotime() + ns;
  while (key_.load(std::memory_order_acquire) != kWoken) {
    int64_t left = -1;
    if (deadline >= 0) {
      left = deadline - os::nanotime();
      if (left <= 0) break;
    }
    os::futex_wait(&key_, kSleeping, left);
  }
  // Nothing to de-register: a wakeup landing after the timeout just leaves
  // the note woken (and costs one futex_wake) until the next clear().
  return key_.load(std::memory_order_acquire) == kWoken;
}

// ------------------------------------------------------------------- Lock
void LockFutex::lock_slow() noexcept {
  const int64_t start = os::nanotime();
  bool slept = false;  // only a waiter that has parked may claim a handoff token
  bool starving = false;
  const int spins = ncpu() > 1 ? kActiveSpin : 0;
  // Take the lock if it is free, or claim a handoff token; true on success.
  auto try_take = [&](uint32_t& v) {
    for (;;) {
      if (!(v & kLocked)) {
        // Once we have slept, others may be asleep too: keep kSleepers set.
        if (key_.compare_exchange_weak(v, v | kLocked | (slept ? kSleepers : 0), std::memory_order_acquire,
                                       std::memory_order_relaxed))
          return true;
      } else if (slept && (v & kToken)) {
        if (key_.compare_exchange_weak(v, v & ~kToken, std::memory_order_acquire, std::memory_order_relaxed))
          return true;
      } else {
        return false;
      }
    }
  };
  for (;;) {
    // Spin, then yield once.
    for (int i = 0; i <= spins; ++i) {
      uint32_t v = key_.load(std::memory_order_relaxed);
      if (try_take(v)) return;
      if (i < spins)
        for (int j = 0; j < kActiveSpinCount; ++j) cpu_relax();
      else
        os::thread_yield();
    }
    // Announce a sleeper (and, once starving, ask for a handoff), then park.
    uint32_t v = key_.load(std::memory_order_relaxed);
    for (;;) {
      if (try_take(v)) return;
      const uint32_t want = v | kSleepers | (starving ? kHandoff : 0);
      if (want == v ||
          key_.compare_exchange_weak(v, want, std::memory_order_relaxed, std::memory_order_relaxed)) {
        v = want;
        break;
      }
    }
    os::futex_wait(&key_, v, -1);
    slept = true;
    if (!starving && os::nanotime() - start > kStarveNs) starving = true;
  }
}

void LockFutex::unlock() noexcept {
  uint32_t v = key_.load(std::memory_order_relaxed);
  for (;;) {
    if (v & kHandoff) {
      // Keep kLocked; publish a token for a parked waiter and wake one. The
      // starving waiter that asked has parked, so it (or another parked
      // waiter) will claim the token.
      if (key_.compare_exchange_weak(v, (v & ~kHandoff) | kToken, std::memory_order_release,
                                     std::memory_order_relaxed)) {
        os::futex_wake(&key_, 1);
        return;
      }
      continue;
    }
    if (key_.compare_exchange_weak(v, 0, std::memory_order_release, std::memory_order_relaxed)) {
      if (v & kSleepers) os::futex_wake(&key_, 1);
      return;
    }
  }
}

}  // namespace keel::core
