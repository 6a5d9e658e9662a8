// Semaphore family on POSIX sem_t (Linux). Waits use sem_clockwait on
// CLOCK_MONOTONIC (glibc 2.30+), so a wall-clock step cannot stretch or cut a
// timeout, and EINTR retries keep the same absolute deadline.
#include <errno.h>
#include <semaphore.h>
#include <time.h>

#include <new>

#include "platform/duration.h"
#include "platform/os.h"

namespace keel::os {

Error sema_create(Sema* out) noexcept {
  if (out == nullptr) return Error::invalid_argument;
  auto* s = new (std::nothrow) sem_t;
  if (s == nullptr) return Error::no_resources;
  if (sem_init(s, 0, 0) != 0) {
    delete s;
    return Error::no_resources;
  }
  out->handle = reinterpret_cast<uintptr_t>(s);
  return Error::ok;
}

void sema_destroy(Sema s) noexcept {
  if (!s.valid()) return;
  auto* p = reinterpret_cast<sem_t*>(s.handle);
  sem_destroy(p);
  delete p;
}

SemaResult sema_wait(Sema s, int64_t timeout_ns) noexcept {
  auto* p = reinterpret_cast<sem_t*>(s.handle);
  if (timeout_ns < 0) {
    while (sem_wait(p) != 0) {
      // EINTR: a signal is not a wake; wait again.
    }
    return SemaResult::acquired;
  }
  if (timeout_ns == 0) {
    while (sem_trywait(p) != 0) {
      if (errno != EINTR) return SemaResult::timed_out;
    }
    return SemaResult::acquired;
  }
  const int64_t deadline = deadline_after(nanotime(), timeout_ns);
  timespec ts;
  ts.tv_sec = time_t(deadline / 1'000'000'000);
  ts.tv_nsec = long(deadline % 1'000'000'000);
  for (;;) {
    if (sem_clockwait(p, CLOCK_MONOTONIC, &ts) == 0) return SemaResult::acquired;
    if (errno == ETIMEDOUT) {
      if (nanotime() >= deadline) return SemaResult::timed_out;
      continue;  // never report a timeout before our own deadline
    }
    // EINTR: retry against the same absolute deadline.
  }
}

void sema_post(Sema s) noexcept { sem_post(reinterpret_cast<sem_t*>(s.handle)); }

}  // namespace keel::os
