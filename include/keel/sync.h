// Goroutine-aware synchronisation: Mutex, RWMutex, WaitGroup, Cond, Once
// (Go's package sync; docs/SYNC.md).
//
// A goroutine that blocks on one of these parks: its thread runs other
// goroutines meanwhile. Every type also works from plain OS threads (which
// then block their thread), and the same object may be shared between
// goroutines and plain threads. None allocates; the zero state is ready to
// use (constexpr constructors, so globals need no dynamic initialisation).
// None may be copied or moved while in use: they are not copyable at all.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <utility>

namespace keel {

namespace detail {
// Cond's ticket-based notify list (core/sema.h). Its waiter list is protected
// by the runtime's semaphore-table lock for its address.
struct NotifyList {
  std::atomic<uint32_t> wait{0};    // the next ticket to hand out
  std::atomic<uint32_t> notify{0};  // the next ticket to notify
  void* head = nullptr;             // parked waiters, in arrival order
  void* tail = nullptr;
};
// What a blocked Mutex waiter shows as its wait reason in goroutine dumps.
enum class MutexUse : uint8_t { mutex, rwmutex_write, once };
}  // namespace detail

// A mutual exclusion lock (Go's sync.Mutex), usable with std::lock_guard,
// std::unique_lock and std::scoped_lock. Uncontended lock and unlock are one
// atomic operation each. Not recursive; it is not tied to the goroutine or
// thread that locked it, so another one may unlock it (as in Go).
//
// Fairness: normally a woken waiter competes with newly arriving lockers
// (which usually win: they are already running). A waiter that has waited
// more than 1 ms switches the mutex to starvation mode: unlock then hands it
// directly to the oldest waiter, until the queue drains or a waiter got it
// quickly.
//
// Unlocking an unlocked Mutex is a fatal error
// ("fatal error: sync: unlock of unlocked mutex").
class Mutex {
 public:
  constexpr Mutex() noexcept = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() noexcept {
    int32_t v = 0;
    if (state_.compare_exchange_strong(v, kLocked, std::memory_order_acquire, std::memory_order_relaxed)) return;
    lock_slow(detail::MutexUse::mutex);
  }
  // Lock if that needs no waiting. Rarely the right tool, as in Go.
  bool try_lock() noexcept {
    int32_t v = state_.load(std::memory_order_relaxed);
    // Not while starving: the mutex belongs to the waiter it is handed to.
    if (v & (kLocked | kStarving)) return false;
    return state_.compare_exchange_strong(v, v | kLocked, std::memory_order_acquire, std::memory_order_relaxed);
  }
  void unlock() noexcept {
    int32_t n = state_.fetch_sub(kLocked, std::memory_order_release) - kLocked;
    if (n != 0) unlock_slow(n);  // waiters to wake, or not locked at all
  }

 private:
  friend class RWMutex;
  friend class Once;
  // state_: bit 0 locked, bit 1 a waiter is awake (unlock need not wake
  // another), bit 2 starvation mode; the rest counts parked waiters.
  static constexpr int32_t kLocked = 1, kWoken = 2, kStarving = 4, kWaiterShift = 3;

  void lock_as(detail::MutexUse use) noexcept {
    int32_t v = 0;
    if (state_.compare_exchange_strong(v, kLocked, std::memory_order_acquire, std::memory_order_relaxed)) return;
    lock_slow(use);
  }
  void lock_slow(detail::MutexUse use) noexcept;
  void unlock_slow(int32_t new_state) noexcept;

  std::atomic<int32_t> state_{0};
  uint32_t sema_ = 0;  // the semaphore-table word; accessed atomically only
};

// A reader/writer lock (Go's sync.RWMutex): any number of readers or one
// writer. Meets SharedLockable, so std::shared_lock works too. A writer that
// is waiting blocks new readers, so a stream of readers cannot starve it
// (and, as in Go, a reader must not lock_shared recursively: a writer queued
// in between deadlocks it).
//
// Misuse is a fatal error: "sync: Unlock of unlocked RWMutex",
// "sync: RUnlock of unlocked RWMutex".
class RWMutex {
 public:
  constexpr RWMutex() noexcept = default;
  RWMutex(const RWMutex&) = delete;
  RWMutex& operator=(const RWMutex&) = delete;

  void lock() noexcept;
  bool try_lock() noexcept;
  void unlock() noexcept;

  void lock_shared() noexcept {
    // Negative while a writer holds or waits for the lock.
    if (reader_count_.fetch_add(1, std::memory_order_acquire) + 1 < 0) lock_shared_slow();
  }
  bool try_lock_shared() noexcept {
    int32_t c = reader_count_.load(std::memory_order_relaxed);
    while (c >= 0)
      if (reader_count_.compare_exchange_weak(c, c + 1, std::memory_order_acquire, std::memory_order_relaxed)) return true;
    return false;
  }
  void unlock_shared() noexcept {
    int32_t r = reader_count_.fetch_sub(1, std::memory_order_release) - 1;
    if (r < 0) unlock_shared_slow(r);  // a writer waits (or the lock was not held)
  }

 private:
  static constexpr int32_t kMaxReaders = 1 << 30;
  void lock_shared_slow() noexcept;
  void unlock_shared_slow(int32_t r) noexcept;

  Mutex w_;                              // held by a writer, excludes other writers
  uint32_t writer_sem_ = 0;              // a writer waits here for departing readers
  uint32_t reader_sem_ = 0;              // readers wait here for the writer
  std::atomic<int32_t> reader_count_{0};  // readers holding or waiting; - kMaxReaders while a writer is in
  std::atomic<int32_t> reader_wait_{0};   // readers the waiting writer still waits for
};

// Waits for a collection of goroutines to finish (Go's sync.WaitGroup):
// add(n) before starting them, each calls done() when finished, wait()
// blocks until the counter is zero.
//
// Fatal errors: the counter going negative ("sync: negative WaitGroup
// counter"); add with a positive delta racing with the wakeup of a previous
// wait (re-use must wait until every wait() has returned: "sync: WaitGroup is
// reused before previous Wait has returned").
class WaitGroup {
 public:
  constexpr WaitGroup() noexcept = default;
  WaitGroup(const WaitGroup&) = delete;
  WaitGroup& operator=(const WaitGroup&) = delete;

  void add(int delta) noexcept {
    uint64_t d = static_cast<uint64_t>(static_cast<int64_t>(delta)) << 32;
    uint64_t s = state_.fetch_add(d, std::memory_order_acq_rel) + d;
    // Common case: counter still positive and nobody waiting.
    if (static_cast<int32_t>(s >> 32) > 0 && static_cast<uint32_t>(s) == 0) return;
    add_slow(delta, s);
  }
  void done() noexcept { add(-1); }
  void wait() noexcept;

 private:
  void add_slow(int delta, uint64_t state) noexcept;
  // High 32 bits: the counter; low 32 bits: parked waiters.
  std::atomic<uint64_t> state_{0};
  uint32_t sema_ = 0;
};

// A condition variable (Go's sync.Cond) for any lock: wait(lock) atomically
// (with respect to signal/broadcast) unlocks it, waits, and relocks it before
// returning. As with any condition variable, re-check the condition in a loop
// (or use the predicate overload): another goroutine may have run between the
// wakeup and the relock. signal/broadcast need not hold the lock.
class Cond {
 public:
  constexpr Cond() noexcept = default;
  Cond(const Cond&) = delete;
  Cond& operator=(const Cond&) = delete;

  void wait(std::unique_lock<Mutex>& lock) noexcept;
  // Any BasicLockable (Mutex, RWMutex, std::shared_lock<RWMutex>, ...).
  template <class L>
  void wait(L& lock) {
    uint32_t t = add_waiter();
    lock.unlock();
    wait_ticket(t);
    lock.lock();
  }
  template <class L, class Pred>
  void wait(L& lock, Pred pred) {
    while (!pred()) wait(lock);
  }
  // Wake one waiter (the longest waiting), if any.
  void signal() noexcept;
  // Wake every current waiter.
  void broadcast() noexcept;

 private:
  uint32_t add_waiter() noexcept;
  void wait_ticket(uint32_t t) noexcept;
  detail::NotifyList list_;
};

// Runs a function exactly once (Go's sync.Once, with std::call_once's
// exception rule). Concurrent callers of call() wait until the first one's f
// has returned. If f throws, the exception reaches that caller and the Once
// is not done: the next caller runs its f. Calling call() from inside f on
// the same Once deadlocks (as in Go).
class Once {
 public:
  constexpr Once() noexcept = default;
  Once(const Once&) = delete;
  Once& operator=(const Once&) = delete;

  template <class F>
  void call(F&& f) {
    // acquire: pairs with the release below, so f's effects are visible.
    if (done_.load(std::memory_order_acquire)) return;
    call_slow(std::forward<F>(f));
  }
  bool done() const noexcept { return done_.load(std::memory_order_acquire); }

 private:
  template <class F>
  void call_slow(F&& f) {
    m_.lock_as(detail::MutexUse::once);
    std::unique_lock<Mutex> l(m_, std::adopt_lock);  // unlocked on the way out, also when f throws
    if (!done_.load(std::memory_order_relaxed)) {
      std::forward<F>(f)();
      done_.store(true, std::memory_order_release);
    }
  }
  std::atomic<bool> done_{false};
  Mutex m_;
};

}  // namespace keel
