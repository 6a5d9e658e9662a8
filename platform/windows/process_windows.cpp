// Windows process primitives used by fatal(): raw stderr, immediate death.
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>

#include "platform/os.h"
#include "platform/windows/win_internal.h"

namespace keel::os {

void write_err(const char* buf, size_t len) noexcept {
  // Straight to the OS handle: the CRT's stderr takes a lock that a crashing
  // thread may already hold. A console shows the bytes in its code page.
  HANDLE h = GetStdHandle(STD_ERROR_HANDLE);
  if (h == nullptr || h == INVALID_HANDLE_VALUE || buf == nullptr) return;
  while (len > 0) {
    const DWORD chunk = len > (1u << 30) ? (1u << 30) : static_cast<DWORD>(len);
    DWORD written = 0;
    // A pipe may take less than asked; 0 bytes accepted means give up, not spin.
    if (!WriteFile(h, buf, chunk, &written, nullptr) || written == 0) return;
    buf += written;
    len -= written;
  }
}

void abort_process() noexcept {
  // Not abort() or exit(): those run CRT/atexit handlers and may show a dialog.
  // Exit status 2 as Go's fatal errors and the posix backend (not the CRT
  // abort()'s 3), so every target reports a fatal error the same way.
  // First the suspend lock, for good: no thread may be left suspended by an
  // interruption in flight when the process ends (Go #35775).
  win::interrupt_lock_for_exit();
  TerminateProcess(GetCurrentProcess(), 2);
  // Termination of the calling process does not return; should it ever fail,
  // fail fast bypasses every exception handler.
  RaiseFailFastException(nullptr, nullptr, 0);
  for (;;) Sleep(INFINITE);
}

}  // namespace keel::os
