#include "core/fatal.h"

#include <cstring>

#include "platform/os.h"

namespace keel::core {

void fatal(const char* msg) noexcept { fatal2(msg, nullptr); }

void fatal2(const char* msg, const char* extra) noexcept {
  static const char kPrefix[] = "fatal error: ";
  os::write_err(kPrefix, sizeof kPrefix - 1);
  if (msg != nullptr) os::write_err(msg, std::strlen(msg));
  os::write_err("\n", 1);
  if (extra != nullptr) {
    os::write_err(extra, std::strlen(extra));
    os::write_err("\n", 1);
  }
  os::abort_process();
}

}  // namespace keel::core
