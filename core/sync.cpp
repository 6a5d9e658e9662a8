// The slow paths of keel::Mutex, RWMutex, WaitGroup and Cond
// (include/keel/sync.h), on the semaphore table (core/sema.h). The state
// machines are Go's (sync/mutex.go, rwmutex.go, waitgroup.go); docs/SYNC.md.
#include <atomic>
#include <cstdint>

#include "core/fatal.h"
#include "core/park.h"
#include "core/sema.h"
#include "keel/sync.h"
#include "platform/os.h"

namespace keel {

namespace core_ = keel::core;

namespace {

// A waiter that has waited this long puts the mutex in starvation mode.
constexpr int64_t kStarvationThresholdNs = 1'000'000;
// Pause instructions per spin iteration (Go's active_spin_cnt).
constexpr int kSpinPauses = 30;

core_::WaitReason reason_for(detail::MutexUse use) noexcept {
  switch (use) {
    case detail::MutexUse::rwmutex_write: return core_::WaitReason::rwmutex_write;
    case detail::MutexUse::once: return core_::WaitReason::once;
    case detail::MutexUse::mutex: break;
  }
  return core_::WaitReason::mutex;
}

}  // namespace

// ------------------------------------------------------------------ Mutex
//
// Normal mode: waiters queue FIFO, but a woken waiter does not own the mutex;
// it competes with new arrivals, which have the advantage of already running
// on a CPU — good for throughput, since handing over to a parked waiter costs
// a wakeup. A waiter that loses is queued at the front (lifo), and once it has
// waited more than 1 ms it sets kStarving. Starvation mode: unlock hands the
// mutex directly to the front waiter (semrelease with handoff), arrivals
// neither take it nor spin, they queue at the tail. The waiter that receives
// it leaves starvation mode when it is the last waiter or waited < 1 ms.
void Mutex::lock_slow(detail::MutexUse use) noexcept {
  const core_::WaitReason reason = reason_for(use);
  int64_t wait_start = 0;
  bool starving = false;
  bool awoke = false;  // we were woken from the semaphore (and own kWoken)
  int iter = 0;
  int32_t old = state_.load(std::memory_order_relaxed);
  for (;;) {
    // Spin only while the mutex is held in normal mode: in starvation mode it
    // goes to a waiter, so spinning cannot win it.
    if ((old & (kLocked | kStarving)) == kLocked && core_::can_spin(iter)) {
      // Set kWoken so unlock does not wake a parked waiter while we are about
      // to take the mutex anyway.
      if (!awoke && (old & kWoken) == 0 && (old >> kWaiterShift) != 0 &&
          state_.compare_exchange_weak(old, old | kWoken, std::memory_order_relaxed, std::memory_order_relaxed)) {
        awoke = true;
      }
      core_::procyield(kSpinPauses);
      ++iter;
      old = state_.load(std::memory_order_relaxed);
      continue;
    }
    int32_t next = old;
    if ((old & kStarving) == 0) next |= kLocked;  // never grab a starving mutex
    if (old & (kLocked | kStarving)) next += 1 << kWaiterShift;
    // Switch to starvation mode only if the mutex is still held: otherwise
    // unlock would expect waiters that starvation mode hands it to while
    // there may be none.
    if (starving && (old & kLocked)) next |= kStarving;
    if (awoke) {
      if ((next & kWoken) == 0) core_::fatal("sync: inconsistent mutex state");
      next &= ~kWoken;  // we are awake no longer: the next unlock may wake someone
    }
    if (!state_.compare_exchange_weak(old, next, std::memory_order_acquire, std::memory_order_relaxed)) continue;
    if ((old & (kLocked | kStarving)) == 0) return;  // took it with the CAS

    // Queued: a waiter that already waited goes to the front.
    const bool lifo = wait_start != 0;
    if (wait_start == 0) wait_start = os::nanotime();
    core_::semacquire(&sema_, lifo, reason);
    starving = starving || os::nanotime() - wait_start > kStarvationThresholdNs;
    old = state_.load(std::memory_order_relaxed);
    if (old & kStarving) {
      // Handed to us directly: the state says unlocked with us counted as a
      // waiter (unlock left it that way so nobody else could take it).
      if ((old & (kLocked | kWoken)) != 0 || (old >> kWaiterShift) == 0)
        core_::fatal("sync: inconsistent mutex state");
      int32_t delta = kLocked - (1 << kWaiterShift);
      // Leave starvation mode when we did not starve or are the last waiter:
      // staying in it would make two goroutines ping-pong the mutex through
      // handoffs forever, slower than normal mode.
      if (!starving || (old >> kWaiterShift) == 1) delta -= kStarving;
      state_.fetch_add(delta, std::memory_order_acq_rel);  // acquire: the unlocker's release
      return;
    }
    awoke = true;
    iter = 0;
  }
}

void Mutex::unlock_slow(int32_t new_state) noexcept {
  if (((new_state + kLocked) & kLocked) == 0) core_::fatal("sync: unlock of unlocked mutex");
  if ((new_state & kStarving) == 0) {
    int32_t old = new_state;
    for (;;) {
      // Nobody to wake, or someone else already is (kWoken), or the mutex
      // was taken again meanwhile (its locker will wake them), or it turned
      // starving (then it is handed over, not woken for).
      if ((old >> kWaiterShift) == 0 || (old & (kLocked | kWoken | kStarving)) != 0) return;
      // One waiter fewer, and it is the woken one.
      int32_t next = (old - (1 << kWaiterShift)) | kWoken;
      if (state_.compare_exchange_weak(old, next, std::memory_order_release, std::memory_order_relaxed)) {
        core_::semrelease(&sema_, false);
        return;
      }
    }
  }
  // Starvation mode: hand the mutex to the front waiter and let it run now.
  // kLocked stays clear; the waiter sets it. While kStarving is set nobody
  // else takes it, so the waiter owns it.
  core_::semrelease(&sema_, true);
}

// ------------------------------------------------------------------ RWMutex
//
// reader_count_ counts readers; a writer subtracts kMaxReaders, so it is
// negative while a writer holds or waits for the lock and new readers queue
// on reader_sem_. The readers already inside when the writer came are moved
// to reader_wait_; the last of them to leave wakes the writer.

void RWMutex::lock_shared_slow() noexcept {
  core_::semacquire(&reader_sem_, false, core_::WaitReason::rwmutex_read);
}

void RWMutex::unlock_shared_slow(int32_t r) noexcept {
  if (r + 1 == 0 || r + 1 == -kMaxReaders) core_::fatal("sync: RUnlock of unlocked RWMutex");
  // A writer is waiting: the last reader it waits for wakes it.
  if (reader_wait_.fetch_sub(1, std::memory_order_acq_rel) - 1 == 0) core_::semrelease(&writer_sem_, false);
}

void RWMutex::lock() noexcept {
  w_.lock_as(detail::MutexUse::rwmutex_write);  // first exclude other writers
  // Announce the writer to readers; r = readers inside now.
  int32_t r = reader_count_.fetch_sub(kMaxReaders, std::memory_order_acq_rel);
  // Wait for them to leave (some may already have left since the sub: they
  // decremented reader_wait_ below zero, and adding r brings it back).
  if (r != 0 && reader_wait_.fetch_add(r, std::memory_order_acq_rel) + r != 0)
    core_::semacquire(&writer_sem_, false, core_::WaitReason::rwmutex_write);
}

bool RWMutex::try_lock() noexcept {
  if (!w_.try_lock()) return false;
  int32_t zero = 0;
  if (!reader_count_.compare_exchange_strong(zero, -kMaxReaders, std::memory_order_acquire,
                                             std::memory_order_relaxed)) {
    w_.unlock();
    return false;
  }
  return true;
}

void RWMutex::unlock() noexcept {
  // Let readers in again; r = readers that queued while the writer was in.
  int32_t r = reader_count_.fetch_add(kMaxReaders, std::memory_order_acq_rel) + kMaxReaders;
  if (r >= kMaxReaders) core_::fatal("sync: Unlock of unlocked RWMutex");
  for (int32_t i = 0; i < r; ++i) core_::semrelease(&reader_sem_, false);
  // Then other writers: readers released above go first.
  w_.unlock();
}

// ------------------------------------------------------------------ WaitGroup

void WaitGroup::add_slow(int delta, uint64_t state) noexcept {
  const int32_t v = static_cast<int32_t>(state >> 32);
  const uint32_t w = static_cast<uint32_t>(state);
  if (v < 0) core_::fatal("sync: negative WaitGroup counter");
  // Waiters registered, and this add brought the counter up from zero: the
  // counter had reached zero and the waiters are not yet released — the
  // group is being reused before the previous wait has returned.
  if (w != 0 && delta > 0 && v == delta) core_::fatal("sync: WaitGroup is reused before previous Wait has returned");
  if (v > 0 || w == 0) return;
  // Counter 0 with waiters: we release them. Nothing else may touch the state
  // now: wait() does not register while the counter is 0, and an add would
  // be the misuse above.
  if (state_.load(std::memory_order_relaxed) != state)
    core_::fatal("sync: WaitGroup misuse: add called concurrently with wait");
  // Reset the waiter count first, so the group is reusable once they return.
  state_.store(0, std::memory_order_release);
  for (uint32_t i = 0; i < w; ++i) core_::semrelease(&sema_, false);
}

void WaitGroup::wait() noexcept {
  uint64_t state = state_.load(std::memory_order_acquire);
  for (;;) {
    if ((state >> 32) == 0) return;  // counter zero: nothing to wait for
    // Register as a waiter (low half) and sleep.
    if (state_.compare_exchange_weak(state, state + 1, std::memory_order_acq_rel, std::memory_order_acquire)) {
      core_::semacquire(&sema_, false, core_::WaitReason::waitgroup);
      // The releaser reset the state to 0 before waking us; anything else
      // means an add started a new round before our wait returned.
      if (state_.load(std::memory_order_acquire) != 0)
        core_::fatal("sync: WaitGroup is reused before previous Wait has returned");
      return;
    }
  }
}

// ------------------------------------------------------------------ Cond

uint32_t Cond::add_waiter() noexcept { return core_::notify_list_add(&list_); }
void Cond::wait_ticket(uint32_t t) noexcept { core_::notify_list_wait(&list_, t); }
void Cond::signal() noexcept { core_::notify_list_notify_one(&list_); }
void Cond::broadcast() noexcept { core_::notify_list_notify_all(&list_); }

void Cond::wait(std::unique_lock<Mutex>& lock) noexcept {
  if (!lock.owns_lock()) core_::fatal("sync: Cond::wait with a unique_lock that does not own its mutex");
  // The ticket is taken while the lock is held: a signal after our unlock
  // (which the caller's condition check could not see) still wakes us.
  uint32_t t = add_waiter();
  lock.mutex()->unlock();
  wait_ticket(t);
  lock.mutex()->lock();
}

}  // namespace keel
