// Contract group 2: sleep_ns never returns early, and huge or negative
// durations block instead of wrapping into a short sleep.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <vector>

#include "conformance/harness.h"
#include "platform/os.h"

namespace kc = keel::conformance;
namespace os = keel::os;

namespace {

void check_never_early(int64_t d, int reps) {
  std::vector<int64_t> over;
  for (int i = 0; i < reps; ++i) {
    const int64_t t0 = os::nanotime();
    os::sleep_ns(d);
    const int64_t elapsed = os::nanotime() - t0;
    // Never early, with zero slack: sleep_ns is defined against nanotime().
    EXPECT_GE(elapsed, d) << "sleep_ns(" << d << ") returned after " << elapsed << " ns";
    // Gross failure bound only (a loaded 2-core machine, emulators).
    EXPECT_LT(elapsed, d + kc::scaled_ns(2 * kc::kSec)) << "sleep_ns(" << d << ") took " << elapsed << " ns";
    over.push_back(elapsed - d);
  }
  std::sort(over.begin(), over.end());
  kc::record_metric("overshoot_p50", double(over[over.size() / 2]) / 1e3, "us");
  kc::record_metric("overshoot_max", double(over.back()) / 1e3, "us");
}

}  // namespace

TEST(thread_sleep, never_early_0ms) { check_never_early(0, 50); }
TEST(thread_sleep, never_early_1ms) { check_never_early(1 * kc::kMs, 20); }
TEST(thread_sleep, never_early_10ms) { check_never_early(10 * kc::kMs, 10); }
TEST(thread_sleep, never_early_50ms) { check_never_early(50 * kc::kMs, 4); }
TEST(thread_sleep, never_early_sub_ms) { check_never_early(137'000, 20); }  // not a whole ms: rounding must go up

namespace {
struct Blocker {
  int64_t ns = 0;
  std::atomic<bool> returned{false};
};
void blocker_body(void* p) {
  auto* b = static_cast<Blocker*>(p);
  os::sleep_ns(b->ns);
  b->returned.store(true);
}
}  // namespace

// A huge timeout must block, not overflow into an immediate return. The
// sleepers are never joined: they are checked with a bounded wait from this
// thread and die with the test process.
TEST(thread_sleep, huge_and_negative_block) {
  static Blocker blockers[] = {
      {},  // INT64_MAX
      {},  // 2^32 ms + 5 ms: wraps to 5 ms in a 32-bit millisecond API (Sleep, WaitOnAddress)
      {},  // 2^32 us + 5 ms: wraps in a 32-bit microsecond API (__ulock_wait)
      {},  // 2^31 s + 1 s: overflows a 32-bit tv_sec
      {},  // negative: forever
  };
  blockers[0].ns = INT64_MAX;
  blockers[1].ns = (int64_t(1) << 32) * kc::kMs + 5 * kc::kMs;
  blockers[2].ns = (int64_t(1) << 32) * 1000 + 5 * kc::kMs;
  blockers[3].ns = ((int64_t(1) << 31) + 1) * kc::kSec;
  blockers[4].ns = -1;
  for (Blocker& b : blockers) {
    os::Thread t;
    ASSERT_EQ(os::thread_start(&t, blocker_body, &b), os::Error::ok);
  }
  os::sleep_ns(300 * kc::kMs);
  for (const Blocker& b : blockers) EXPECT_FALSE(b.returned.load()) << "sleep_ns(" << b.ns << ") returned early";
}
