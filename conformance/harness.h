// Helpers every conformance test uses: scaled timeouts, metrics, bounded waits.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>

#include "platform/os.h"

namespace keel::conformance {

// Keep a function out of line (recursion and frame-shape tests need real
// frames). The macro name is the harness's; each compiler spells it its way.
#if defined(__GNUC__)
#define KC_NOINLINE __attribute__((noinline))
#elif defined(_MSC_VER)
#define KC_NOINLINE __declspec(noinline)
#else
#define KC_NOINLINE
#endif

// Recurse with a 512-byte frame until the stack runs out (stack-overflow
// tests). Defined in harness.cpp, out of line, so no caller can fold it.
int recurse_forever(int n);

// KEEL_TEST_TIMEOUT_MULTIPLIER (>= 1): emulators and sanitizers are slower,
// so every gross upper bound in a test is multiplied by it. Never scale a
// "never early" bound.
int64_t timeout_multiplier();
inline int64_t scaled_ns(int64_t ns) { return ns * timeout_multiplier(); }

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSec = 1'000'000'000;

// A measured value shown in the matrix cell of this test (e.g. overshoot).
// Metrics never gate: assert on properties, record numbers.
void record_metric(const std::string& name, double value, const std::string& unit);
// A descriptive value (platform description fields).
void record_info(const std::string& name, const std::string& value);

// Poll pred every ~1 ms until it holds or timeout_ns passes; true if it held.
bool wait_until(const std::function<bool()>& pred, int64_t timeout_ns);

// The stable ID of a test: "area_primitive.property" → "area.primitive.property";
// typed suites "area/Type.property" → "area.Type.property".
std::string test_id(const std::string& suite, const std::string& name);

// Run fn on a new OS thread (os::thread_start); join() waits for it. The
// object must outlive the thread.
struct Runner {
  std::function<void()> fn;
  os::Thread t;
  static void body(void* p) { static_cast<Runner*>(p)->fn(); }
  explicit Runner(std::function<void()> f);
  void join();
};

}  // namespace keel::conformance
