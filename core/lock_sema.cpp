// Note and the runtime lock on per-thread semaphores (Go: lock_sema.go), for
// targets whose best parking primitive is a semaphore (Darwin's Mach
// semaphores). Built everywhere both families exist so Linux and Windows CI
// run this algorithm too.
#include "core/fatal.h"
#include "core/lock.h"
#include "core/note.h"
#include "core/spin.h"
#include "core/thread_waiter.h"
#include "core/tls.h"
#include "platform/os.h"

namespace keel::core {
namespace {
constexpr int kActiveSpin = 4;
constexpr int kActiveSpinCount = 30;
constexpr int64_t kStarveNs = 1'000'000;

// Destroyed with its thread, except on mingw (core/tls.h): there its
// destructor would run on freed storage, so the semaphore is leaked.
struct WaiterSlot {
  ThreadWaiter w;
  bool ready = false;
#if KEEL_TLS_DTORS
  ~WaiterSlot() {
    if (ready) os::sema_destroy(w.sema);
  }
#endif
};

void wait_forever(ThreadWaiter* w) noexcept {
  while (os::sema_wait(w->sema, -1) != os::SemaResult::acquired) {
  }
}
}  // namespace

#if defined(__GNUC__)
__attribute__((noinline))
#elif defined(_MSC_VER)
__declspec(noinline)
#endif
ThreadWaiter* this_thread_waiter() noexcept {
  static thread_local WaiterSlot slot;
  if (!slot.ready) {
    if (os::sema_create(&slot.w.sema) != os::Error::ok) fatal("cannot create a thread semaphore");
    slot.ready = true;
  }
  return &slot.w;
}

// ------------------------------------------------------------------- Note
void NoteSema::wakeup() noexcept {
  uintptr_t v = key_.load(std::memory_order_relaxed);
  for (;;) {
    if (v == kWoken) fatal("notewakeup - double wakeup");
    if (key_.compare_exchange_weak(v, kWoken, std::memory_order_acq_rel, std::memory_order_relaxed)) break;
  }
  if (v != 0) os::sema_post(reinterpret_cast<ThreadWaiter*>(v)->sema);  // a sleeper registered: wake it
}

void NoteSema::sleep() noexcept {
  ThreadWaiter* w = this_thread_waiter();
  uintptr_t v = 0;
  if (!key_.compare_exchange_strong(v, reinterpret_cast<uintptr_t>(w), std::memory_order_acq_rel)) {
    if (v != kWoken) fatal("notesleep - a second sleeper on one note");
    return;  // already woken
  }
  wait_forever(w);
}

bool NoteSema::sleep_for(int64_t ns) noexcept {
  ThreadWaiter* w = this_thread_waiter();
  uintptr_t v = 0;
  if (!key_.compare_exchange_strong(v, reinterpret_cast<uintptr_t>(w), std::memory_order_acq_rel)) {
    if (v != kWoken) fatal("notetsleep - a second sleeper on one note");
    return true;
  }
  if (ns < 0) {
    wait_forever(w);
    return true;
  }
  if (os::sema_wait(w->sema, ns) == os::SemaResult::acquired) return true;
  // Timed out: de-register. If a wakeup replaced our pointer first, it has
  // posted (or is about to post) our semaphore: consume that post so the
  // semaphore's count stays in step, and report woken.
  v = reinterpret_cast<uintptr_t>(w);
  if (key_.compare_exchange_strong(v, 0, std::memory_order_acq_rel)) return false;
  if (v != kWoken) fatal("notetsleep - waiter out of sync");
  wait_forever(w);
  return true;
}

// ------------------------------------------------------------------- Lock
void LockSema::lock_slow() noexcept {
  const int64_t start = os::nanotime();
  bool starving = false;
  const int spins = ncpu() > 1 ? kActiveSpin : 0;
  ThreadWaiter* w = this_thread_waiter();
  for (;;) {
    for (int i = 0; i <= spins; ++i) {
      uintptr_t v = key_.load(std::memory_order_relaxed);
      while (!(v & kLocked))
        if (key_.compare_exchange_weak(v, v | kLocked, std::memory_order_acquire, std::memory_order_relaxed)) return;
      if (i < spins)
        for (int j = 0; j < kActiveSpinCount; ++j) cpu_relax();
      else
        os::thread_yield();
    }
    // Push ourselves on the waiter stack (newest at the head) while locked.
    w->handed.store(0, std::memory_order_relaxed);
    uintptr_t v = key_.load(std::memory_order_relaxed);
    for (;;) {
      if (!(v & kLocked)) {
        if (key_.compare_exchange_weak(v, v | kLocked, std::memory_order_acquire, std::memory_order_relaxed)) return;
        continue;
      }
      w->next = reinterpret_cast<ThreadWaiter*>(v & ~kFlags);
      const uintptr_t want = reinterpret_cast<uintptr_t>(w) | (v & kFlags) | (starving ? kHandoff : 0);
      if (key_.compare_exchange_weak(v, want, std::memory_order_release, std::memory_order_relaxed)) break;
    }
    wait_forever(w);
    if (w->handed.load(std::memory_order_acquire) != 0) return;  // unlock kept the lock held for us
    if (!starving && os::nanotime() - start > kStarveNs) starving = true;
  }
}

void LockSema::unlock() noexcept {
  // Only the holder pops, so the stack has one consumer: nodes behind the
  // head (and their next links) are stable while we walk them; pushers only
  // ever replace the head.
  for (;;) {
    uintptr_t v = key_.load(std::memory_order_acquire);
    auto* head = reinterpret_cast<ThreadWaiter*>(v & ~kFlags);
    if (head == nullptr) {
      if (key_.compare_exchange_weak(v, 0, std::memory_order_release, std::memory_order_relaxed)) return;
      continue;
    }
    // Wake the oldest waiter (the tail), so no parked waiter starves.
    ThreadWaiter* prev = nullptr;
    ThreadWaiter* tail = head;
    while (tail->next != nullptr) {
      prev = tail;
      tail = tail->next;
    }
    bool handoff;
    if (prev == nullptr) {
      handoff = (v & kHandoff) != 0;
      // The tail is the head: unlink it with the same CAS that releases (or,
      // for a handoff, keeps) the lock. A racing push fails the CAS: retry.
      if (!key_.compare_exchange_weak(v, handoff ? kLocked : 0, std::memory_order_release, std::memory_order_relaxed))
        continue;
    } else {
      prev->next = nullptr;
      v = key_.load(std::memory_order_relaxed);
      for (;;) {
        handoff = (v & kHandoff) != 0;
        const uintptr_t want = handoff ? (v & ~kHandoff) : (v & ~kLocked);
        if (key_.compare_exchange_weak(v, want, std::memory_order_release, std::memory_order_relaxed)) break;
      }
    }
    if (handoff) tail->handed.store(1, std::memory_order_release);
    os::sema_post(tail->sema);
    return;
  }
}

}  // namespace keel::core
