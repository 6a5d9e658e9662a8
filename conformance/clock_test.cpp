// Contract group 1: clock.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>

#include "conformance/harness.h"
#include "platform/os.h"

namespace kc = keel::conformance;
namespace os = keel::os;

namespace {

struct BackwardsCheck {
  std::atomic<int64_t> last{0};
  std::atomic<int64_t> violations{0};
  std::atomic<int64_t> worst{0};
  std::atomic<bool> go{false};
  int samples = 0;
};

// Each sample reads the latest value any thread published, then the clock: by
// happens-before the clock must not be behind it.
void sample_loop(void* p) {
  auto* c = static_cast<BackwardsCheck*>(p);
  while (!c->go.load(std::memory_order_acquire)) {
  }
  int64_t mine = 0;
  for (int i = 0; i < c->samples; ++i) {
    int64_t seen = c->last.load(std::memory_order_acquire);
    int64_t now = os::nanotime();
    int64_t back = std::max(seen - now, mine - now);
    if (back > 0) {
      c->violations.fetch_add(1, std::memory_order_relaxed);
      int64_t w = c->worst.load(std::memory_order_relaxed);
      while (back > w && !c->worst.compare_exchange_weak(w, back)) {
      }
    }
    mine = now;
    int64_t cur = c->last.load(std::memory_order_relaxed);
    while (now > cur && !c->last.compare_exchange_weak(cur, now, std::memory_order_acq_rel)) {
    }
  }
}

}  // namespace

TEST(clock_monotonic, never_backwards) {
  BackwardsCheck c;
  c.samples = 1'000'000;
  os::Thread t;
  ASSERT_EQ(os::thread_start(&t, sample_loop, &c), os::Error::ok);
  const int64_t t0 = os::nanotime();
  c.go.store(true, std::memory_order_release);
  sample_loop(&c);
  ASSERT_EQ(os::thread_join(t), os::Error::ok);
  const int64_t elapsed = os::nanotime() - t0;
  kc::record_metric("cost", double(elapsed) / (2.0 * c.samples), "ns/sample");
  EXPECT_EQ(c.violations.load(), 0) << "the clock went backwards by up to " << c.worst.load() << " ns";
}

TEST(clock_monotonic, resolution_recorded) {
  // The smallest nonzero step anyone can observe: a fine clock shows tens of
  // ns, a tick-based one milliseconds.
  int64_t smallest = INT64_MAX;
  int distinct = 0;
  int64_t prev = os::nanotime();
  const int64_t deadline = prev + 200 * kc::kMs;
  for (int i = 0; i < 1'000'000 && distinct < 1000; ++i) {
    int64_t now = os::nanotime();
    if (now != prev) {
      smallest = std::min(smallest, now - prev);
      ++distinct;
      prev = now;
    }
    if (now > deadline) break;
  }
  ASSERT_GT(distinct, 0) << "nanotime() never changed";
  kc::record_metric("observed_step", double(smallest), "ns");
  kc::record_metric("claimed", double(os::clock_resolution_ns()), "ns");
  EXPECT_GE(os::clock_resolution_ns(), 1);
  EXPECT_LT(smallest, 20 * kc::kMs) << "a monotonic clock this coarse breaks every timer";
}

TEST(clock_wall, matches_system_clock) {
  const int64_t sys = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
  const int64_t wall = os::walltime();
  EXPECT_GT(wall, int64_t(1'577'836'800) * kc::kSec) << "walltime is before 2020: not Unix-epoch nanoseconds";
  EXPECT_LT(std::llabs(wall - sys), 2 * kc::kSec) << "walltime disagrees with std::chrono::system_clock";
}

TEST(clock_monotonic, advances_with_real_time) {
  const int64_t m0 = os::nanotime();
  const auto s0 = std::chrono::steady_clock::now();
  os::sleep_ns(20 * kc::kMs);
  const int64_t m = os::nanotime() - m0;
  const int64_t s = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - s0).count();
  // Both clocks measured the same interval; nanotime must not run slow or fast
  // by more than a timer tick (guards against a wrong QPC/timebase scale).
  EXPECT_GE(m, 20 * kc::kMs);
  EXPECT_LT(std::llabs(m - s), 5 * kc::kMs + s / 10) << "nanotime " << m << " ns vs steady_clock " << s << " ns";
}
