// Helpers for tests that run keel's runtime (goroutines): keel::run with a
// chosen number of Ps, and waits that yield to other goroutines.
#pragma once

#include <cstdint>
#include <utility>

#include <keel/go.h>

#include "platform/os.h"

namespace keel::conformance {

// Run body as the main goroutine with n Ps. Each test is its own process, so
// the setting applies; a second keel::run in one process keeps the first's.
template <class F>
void run_with_procs(int n, F&& body) {
  keel::set_maxprocs(n);
  keel::run(std::forward<F>(body));
}

// Poll pred, letting other goroutines run between polls (on a plain thread,
// gosched yields the thread). False if timeout_ns passed first.
template <class P>
bool spin_until(P pred, int64_t timeout_ns) {
  const int64_t deadline = os::nanotime() + timeout_ns;
  while (!pred()) {
    if (os::nanotime() > deadline) return false;
    keel::gosched();
  }
  return true;
}

// Keep running (and yielding) for ns: the caller stays busy without blocking
// its thread, so other goroutines on other Ps can run meanwhile.
inline void busy_for(int64_t ns) {
  const int64_t end = os::nanotime() + ns;
  while (os::nanotime() < end) keel::gosched();
}

}  // namespace keel::conformance
