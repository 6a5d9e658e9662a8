// Windows sleep: a per-thread waitable timer, re-armed until nanotime()
// passes the deadline.
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>

#include "platform/duration.h"
#include "platform/os.h"
#include "platform/windows/win_internal.h"

// Windows 10 1803+. Older SDK headers lack the name.
#ifndef CREATE_WAITABLE_TIMER_HIGH_RESOLUTION
#define CREATE_WAITABLE_TIMER_HIGH_RESOLUTION 0x00000002
#endif

namespace keel::os {

namespace {

// A plain timer (and Sleep) fires on the system tick, 15.6 ms unless some
// process raised it with timeBeginPeriod; a high-resolution timer does not
// depend on the tick. Older Windows refuses the flag with
// ERROR_INVALID_PARAMETER, so probe once and remember what worked.
enum class TimerKind { high_resolution, plain, none };

HANDLE create_timer(TimerKind kind) noexcept {
  if (kind == TimerKind::none) return nullptr;
  const DWORD flags = kind == TimerKind::high_resolution ? CREATE_WAITABLE_TIMER_HIGH_RESOLUTION : 0;
  return CreateWaitableTimerExW(nullptr, nullptr, flags, TIMER_ALL_ACCESS);
}

TimerKind timer_kind() noexcept {
  static const TimerKind kind = [] {
    for (TimerKind k : {TimerKind::high_resolution, TimerKind::plain}) {
      if (HANDLE h = create_timer(k)) {
        CloseHandle(h);
        return k;
      }
    }
    return TimerKind::none;
  }();
  return kind;
}

// The thread's waitable timer, closed at thread exit through FLS (not a
// thread_local destructor: see win::thread_exit_slot).
struct ThreadTimer {
  HANDLE h = nullptr;
};
thread_local ThreadTimer thread_timer;

void WINAPI close_thread_timer(void* h) noexcept {
  if (h != nullptr) CloseHandle(static_cast<HANDLE>(h));
}

// Longest single wait. The loop in sleep_ns covers longer sleeps; this keeps
// "now + due time" far from overflow inside the OS (or Wine), where a wrapped
// sum would fire at once and turn a long sleep into a spin.
constexpr int64_t kMaxWait100ns = 24LL * 3600 * 10'000'000;  // one day

// Block for about ns (> 0). Never shorter than the OS allows, but the OS may
// still wake a little early relative to QPC: the caller re-checks nanotime().
void wait_once(int64_t ns) noexcept {
  if (thread_timer.h == nullptr) {
    thread_timer.h = create_timer(timer_kind());
    static const unsigned long slot = win::thread_exit_slot(&close_thread_timer);
    if (thread_timer.h != nullptr) win::thread_exit_set(slot, thread_timer.h);
  }
  if (HANDLE h = thread_timer.h) {
    LARGE_INTEGER due;
    due.QuadPart = -ns_to_100ns_ceil(ns, kMaxWait100ns);  // negative = relative
    // Not alertable: APCs queued to this thread must not cut the sleep short.
    if (SetWaitableTimer(h, &due, 0, nullptr, nullptr, FALSE) &&
        WaitForSingleObject(h, INFINITE) == WAIT_OBJECT_0) {
      return;
    }
  }
  // No timer (handle quota, pre-Vista): Sleep takes whole ms, rounded up.
  Sleep(static_cast<DWORD>(ns_to_ms_ceil(ns, kMaxWait100ns / 10'000)));
}

}  // namespace

const char* win::sleep_backend_name() noexcept {
  switch (timer_kind()) {
    case TimerKind::high_resolution: return "CreateWaitableTimerExW(HIGH_RESOLUTION)";
    case TimerKind::plain: return "CreateWaitableTimerExW";
    default: return "Sleep";
  }
}

void sleep_ns(int64_t ns) noexcept {
  if (ns == 0) return;
  if (ns < 0) {
    for (;;) Sleep(INFINITE);
  }
  const int64_t deadline = deadline_after(nanotime(), ns);
  for (;;) {
    const int64_t now = nanotime();
    if (now >= deadline) return;
    wait_once(deadline - now);
  }
}

}  // namespace keel::os
