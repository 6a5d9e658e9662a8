// Timers (Go's runtime/time.go): every P owns a 4-ary min-heap of timers,
// ordered by deadline. A timer is armed on the heap of the P that arms it;
// the M holding that P runs it when it comes due (in findrunnable), an M
// looking for work runs any P's overdue timers, and when every M is idle one
// of them sleeps exactly until the earliest deadline (core/sched.cpp,
// timer_sleep). docs/TIMERS.md explains the design.
//
// Locking. Order: heap locks (by P id, lowest first) → Timer::mu → a
// channel's lock → sched.lock. A timer's `heap` changes only with both its mu
// and that heap's lock held, so either lock makes it stable.
//
// Go 1.23 channel semantics: a channel timer (drain != null) sends while
// holding mu, and stop/reset drain the channel while holding mu. So once
// stop or reset returns, no value from before it is ever received, and stop
// reports true exactly when it kept a value from being received.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "core/lock.h"

namespace keel::core {

struct P;
struct Timer;

// Runs when the timer fires: now is the nanotime() that found it due.
using TimerFn = void (*)(Timer* t, int64_t now) noexcept;
// Channel timers: empty the channel; true if a value was removed.
using TimerDrainFn = bool (*)(Timer* t) noexcept;

struct Timer {
  Lock mu;
  int64_t when = 0;            // deadline (nanotime) while in a heap, else 0
  int64_t period = 0;          // > 0: periodic (re-armed when it fires)
  std::atomic<P*> heap{nullptr};  // the P whose heap holds it, if any
  uint32_t idx = 0;            // its slot in that heap
  TimerFn fn = nullptr;
  void* arg = nullptr;         // fn's: whatever the owner needs
  TimerDrainFn drain = nullptr;  // non-null: a channel timer (see above)
  // References: the owner's, plus one while the timer is in a heap or
  // firing. At zero, destroy (if any) frees it.
  std::atomic<int32_t> refs{1};
  void (*destroy)(Timer* t) noexcept = nullptr;
};

struct TimerHeap {
  struct Entry {
    int64_t when;  // == t->when, kept here so sifting never dereferences t
    Timer* t;
  };
  Lock lock;
  std::vector<Entry> heap;             // 4-ary min-heap by `when`
  std::atomic<int64_t> min_when{0};    // heap[0]->when, 0 when empty: read without the lock
};

// Arm t to fire at `when` (nanotime; in the past: as soon as possible), then
// every `period` ns if period > 0. A pending firing is cancelled first (and
// a channel timer's unreceived value dropped). True if the timer was pending
// (Go's Reset result). Callable from goroutines, plain threads and from a
// gopark unlockf (it never parks).
bool timer_reset(Timer* t, int64_t when, int64_t period) noexcept;
// Cancel t. True if that kept it from firing (or, for a channel timer,
// removed a value nobody had received), false if it had already fired or was
// stopped (Go's Stop result).
bool timer_stop(Timer* t) noexcept;
void timer_release(Timer* t) noexcept;

// Scheduler side (core/sched.cpp). Run p's timers that are due at `now`;
// the caller holds some P (goroutines readied land on it). Returns p's
// earliest remaining deadline, 0 if none.
int64_t timers_run(P* p, int64_t now) noexcept;
inline int64_t timers_next(const TimerHeap& h) noexcept { return h.min_when.load(std::memory_order_seq_cst); }

}  // namespace keel::core
