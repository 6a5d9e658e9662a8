// Semaphore family on Mach semaphores (the card's choice; Go's lock_sema on
// Darwin uses the same). semaphore_timedwait takes a relative mach_timespec,
// so keep our own deadline and re-wait for the remainder after KERN_ABORTED
// (a signal) or an early timeout.
#include <mach/mach.h>
#include <mach/semaphore.h>
#include <mach/task.h>

#include "platform/duration.h"
#include "platform/os.h"
#include "platform/tsan_annotations.h"

namespace keel::os {

Error sema_create(Sema* out) noexcept {
  if (out == nullptr) return Error::invalid_argument;
  semaphore_t s;
  if (semaphore_create(mach_task_self(), &s, SYNC_POLICY_FIFO, 0) != KERN_SUCCESS) return Error::no_resources;
  out->handle = uintptr_t(s);
  return Error::ok;
}

void sema_destroy(Sema s) noexcept {
  if (s.valid()) semaphore_destroy(mach_task_self(), semaphore_t(s.handle));
}

SemaResult sema_wait(Sema s, int64_t timeout_ns) noexcept {
  const semaphore_t sem = semaphore_t(s.handle);
  if (timeout_ns < 0) {
    while (semaphore_wait(sem) != KERN_SUCCESS) {
      // KERN_ABORTED: interrupted by a signal; not a wake.
    }
    KEEL_TSAN_ACQUIRE(reinterpret_cast<void*>(s.handle));
    return SemaResult::acquired;
  }
  const int64_t deadline = deadline_after(nanotime(), timeout_ns);
  for (;;) {
    int64_t left = deadline - nanotime();
    if (left < 0) left = 0;
    mach_timespec_t ts;
    // tv_sec is an unsigned int: cap each step far below its range.
    constexpr int64_t kMaxStep = int64_t(1'000'000) * 1'000'000'000;
    if (left > kMaxStep) left = kMaxStep;
    ts.tv_sec = unsigned(left / 1'000'000'000);
    ts.tv_nsec = clock_res_t(left % 1'000'000'000);
    kern_return_t kr = semaphore_timedwait(sem, ts);
    if (kr == KERN_SUCCESS) {
      KEEL_TSAN_ACQUIRE(reinterpret_cast<void*>(s.handle));
      return SemaResult::acquired;
    }
    if (kr == KERN_OPERATION_TIMED_OUT && nanotime() >= deadline) return SemaResult::timed_out;
    // KERN_ABORTED or an early timeout: retry against the same deadline.
  }
}

void sema_post(Sema s) noexcept {
  KEEL_TSAN_RELEASE(reinterpret_cast<void*>(s.handle));
  semaphore_signal(semaphore_t(s.handle));
}

}  // namespace keel::os
