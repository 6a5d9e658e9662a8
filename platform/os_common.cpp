// Target-independent parts of the contract.
#include "platform/os.h"

namespace keel::os {

const char* error_name(Error e) noexcept {
  switch (e) {
    case Error::ok: return "ok";
    case Error::invalid_argument: return "invalid_argument";
    case Error::no_resources: return "no_resources";
    case Error::not_supported: return "not_supported";
    case Error::no_such_thread: return "no_such_thread";
    case Error::unknown: return "unknown";
    case Error::try_again: return "try_again";
  }
  return "unknown";
}

const char* wait_result_name(WaitResult r) noexcept {
  switch (r) {
    case WaitResult::woken: return "woken";
    case WaitResult::timed_out: return "timed_out";
    case WaitResult::mismatch: return "mismatch";
  }
  return "unknown";
}

}  // namespace keel::os
