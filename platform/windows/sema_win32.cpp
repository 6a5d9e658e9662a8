// Semaphore family on a Win32 semaphore. The wait is alertable, so a user APC
// queued to a parked thread runs now instead of whenever the thread next
// wakes; the wait then resumes against the same absolute deadline.
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>

#include <climits>

#include "platform/duration.h"
#include "platform/os.h"

namespace keel::os {

namespace {

// One below INFINITE (0xFFFFFFFF): a finite wait must never turn into forever.
constexpr int64_t kMaxFiniteMs = int64_t{INFINITE} - 1;

HANDLE handle_of(Sema s) noexcept { return reinterpret_cast<HANDLE>(s.handle); }

}  // namespace

Error sema_create(Sema* out) noexcept {
  if (out == nullptr) return Error::invalid_argument;
  // Count starts at 0; the maximum is as high as a LONG goes so posts are
  // never refused in practice (one waiter per semaphore keeps it near 0).
  HANDLE h = CreateSemaphoreW(nullptr, 0, LONG_MAX, nullptr);
  if (h == nullptr) return Error::no_resources;
  out->handle = reinterpret_cast<uintptr_t>(h);
  return Error::ok;
}

void sema_destroy(Sema s) noexcept {
  if (s.valid()) CloseHandle(handle_of(s));
}

SemaResult sema_wait(Sema s, int64_t timeout_ns) noexcept {
  // A zero handle would make WaitForSingleObjectEx fail at once; answer the
  // same without the call (SemaResult has no error to report).
  if (!s.valid()) return SemaResult::timed_out;
  const int64_t deadline = deadline_after(nanotime(), timeout_ns);
  for (;;) {
    DWORD ms = INFINITE;
    if (timeout_ns >= 0) {
      // timeout 0, or a deadline already passed after an APC: still poll once,
      // so a post made before the call is always taken.
      const int64_t now = nanotime();
      ms = now >= deadline ? 0 : static_cast<DWORD>(ns_to_ms_ceil(deadline - now, kMaxFiniteMs));
    }
    switch (WaitForSingleObjectEx(handle_of(s), ms, TRUE)) {
      case WAIT_OBJECT_0: return SemaResult::acquired;
      case WAIT_IO_COMPLETION:
        // An APC ran and cut the wait short: not a wake, not a timeout.
        continue;
      case WAIT_TIMEOUT:
        // The kernel measures from the last clock tick, so the wait can end up
        // to a tick before our deadline by QPC: only nanotime() decides.
        if (ms == 0 || nanotime() >= deadline) return SemaResult::timed_out;
        continue;
      default:
        // WAIT_FAILED: a closed or bogus handle. Looping would spin forever.
        return SemaResult::timed_out;
    }
  }
}

void sema_post(Sema s) noexcept {
  // Fails only at LONG_MAX pending posts or on a bad handle; neither has a
  // caller that could do anything about it.
  if (s.valid()) ReleaseSemaphore(handle_of(s), 1, nullptr);
}

}  // namespace keel::os
