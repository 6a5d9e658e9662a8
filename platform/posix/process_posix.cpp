// Process-level helpers shared by Linux and Darwin.
#include <errno.h>
#include <unistd.h>

#include "platform/os.h"

namespace keel::os {

void write_err(const char* buf, size_t len) noexcept {
  // write(2) is async-signal-safe; loop over partial writes and EINTR so a
  // fatal message is never cut short by a signal.
  while (len > 0) {
    ssize_t n = ::write(2, buf, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    buf += n;
    len -= size_t(n);
  }
}

void abort_process() noexcept {
  // Exit status 2 as Go's fatal errors; _exit runs no atexit handlers or
  // destructors, which may be what is broken.
  _exit(2);
}

}  // namespace keel::os
