// Contract groups 3 and 4: address-wait (park.futex.*) and the per-thread
// semaphore (park.sema.*).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "conformance/harness.h"
#include "conformance/support/poke.h"
#include "platform/os.h"

namespace kc = keel::conformance;
namespace os = keel::os;

namespace {

#define KEEL_NEED_FUTEX() \
  if (!os::caps().futex) GTEST_SKIP() << "this target has no address-wait family (caps().futex is false)"
#define KEEL_NEED_SEMA() \
  if (!os::caps().sema) GTEST_SKIP() << "this target has no semaphore family (caps().sema is false)"

using kc::Runner;

void record_overshoots(std::vector<int64_t> over) {
  if (over.empty()) return;
  std::sort(over.begin(), over.end());
  kc::record_metric("overshoot_p50", double(over[over.size() / 2]) / 1e3, "us");
  kc::record_metric("overshoot_max", double(over.back()) / 1e3, "us");
}

}  // namespace

// ------------------------------------------------------------ address-wait
TEST(park_futex, returns_at_once_on_mismatch) {
  KEEL_NEED_FUTEX();
  std::atomic<uint32_t> w{5};
  const int64_t t0 = os::nanotime();
  EXPECT_EQ(os::futex_wait(&w, 4, 10 * kc::kSec), os::WaitResult::mismatch);
  EXPECT_EQ(os::futex_wait(&w, 4, -1), os::WaitResult::mismatch);
  EXPECT_LT(os::nanotime() - t0, kc::scaled_ns(500 * kc::kMs));
}

TEST(park_futex, timeout_zero_does_not_block) {
  KEEL_NEED_FUTEX();
  std::atomic<uint32_t> w{5};
  const int64_t t0 = os::nanotime();
  for (int i = 0; i < 100; ++i) EXPECT_EQ(os::futex_wait(&w, 5, 0), os::WaitResult::timed_out);
  const int64_t per = (os::nanotime() - t0) / 100;
  kc::record_metric("cost", double(per), "ns/call");
  EXPECT_LT(per, kc::scaled_ns(5 * kc::kMs));
}

TEST(park_futex, timeout_never_early) {
  KEEL_NEED_FUTEX();
  std::atomic<uint32_t> w{0};
  std::vector<int64_t> over;
  for (int64_t d : {int64_t(137'000), 1 * kc::kMs, 10 * kc::kMs, 50 * kc::kMs, int64_t(1'500'001)}) {
    for (int rep = 0; rep < 3; ++rep) {
      const int64_t t0 = os::nanotime();
      os::WaitResult r = os::futex_wait(&w, 0, d);
      const int64_t elapsed = os::nanotime() - t0;
      if (r == os::WaitResult::woken) continue;  // spurious wakes are allowed; early timeouts are not
      ASSERT_EQ(r, os::WaitResult::timed_out);
      EXPECT_GE(elapsed, d) << "futex_wait(" << d << ") timed out after " << elapsed << " ns";
      EXPECT_LT(elapsed, d + kc::scaled_ns(2 * kc::kSec));
      over.push_back(elapsed - d);
    }
  }
  EXPECT_FALSE(over.empty()) << "every wait returned spuriously";
  record_overshoots(over);
}

TEST(park_futex, wake_before_wait_is_not_lost) {
  KEEL_NEED_FUTEX();
  // The value protocol: the waker changes the word, then wakes. A waiter that
  // arrives late sees the new value and does not sleep.
  for (int i = 0; i < 200; ++i) {
    std::atomic<uint32_t> w{0};
    Runner waker([&] {
      w.store(1, std::memory_order_release);
      os::futex_wake(&w, 1);
    });
    waker.join();
    const int64_t t0 = os::nanotime();
    os::WaitResult r = os::futex_wait(&w, 0, 5 * kc::kSec);
    EXPECT_EQ(r, os::WaitResult::mismatch);
    EXPECT_LT(os::nanotime() - t0, kc::scaled_ns(500 * kc::kMs));
  }
}

namespace {
// N threads each make exactly one futex_wait call on one word whose value
// never changes; returns how many came back (woken, not by timeout).
struct WaitCrowd {
  std::atomic<uint32_t> word{0};
  std::atomic<int> entered{0}, woken{0}, other{0};
  std::vector<std::unique_ptr<Runner>> threads;
  explicit WaitCrowd(int n) {
    for (int i = 0; i < n; ++i)
      threads.push_back(std::make_unique<Runner>([this] {
        entered.fetch_add(1);
        os::WaitResult r = os::futex_wait(&word, 0, kc::scaled_ns(30 * kc::kSec));
        (r == os::WaitResult::woken ? woken : other).fetch_add(1);
      }));
    // Everyone announced; give the last of them time to enter the kernel.
    kc::wait_until([&] { return entered.load() == n; }, kc::scaled_ns(10 * kc::kSec));
    os::sleep_ns(kc::scaled_ns(100 * kc::kMs));
  }
  void release_all() {
    word.store(1);
    os::futex_wake(&word, os::kWakeAll);
    for (auto& t : threads) t->join();
  }
};
}  // namespace

TEST(park_futex, wake_one_releases_exactly_one) {
  KEEL_NEED_FUTEX();
  WaitCrowd c(4);
  os::futex_wake(&c.word, 1);
  EXPECT_TRUE(kc::wait_until([&] { return c.woken.load() >= 1; }, kc::scaled_ns(5 * kc::kSec)));
  os::sleep_ns(kc::scaled_ns(100 * kc::kMs));
  EXPECT_EQ(c.woken.load(), 1) << "futex_wake(addr, 1) released " << c.woken.load() << " of 4 waiters";
  EXPECT_EQ(c.other.load(), 0);
  c.release_all();
}

TEST(park_futex, wake_all_releases_all) {
  KEEL_NEED_FUTEX();
  WaitCrowd c(4);
  os::futex_wake(&c.word, os::kWakeAll);
  EXPECT_TRUE(kc::wait_until([&] { return c.woken.load() == 4; }, kc::scaled_ns(5 * kc::kSec)))
      << "wake-all released " << c.woken.load() << " of 4 waiters";
  EXPECT_EQ(c.other.load(), 0);
  c.release_all();
}

TEST(park_futex, ping_pong_ring_of_4) {
  KEEL_NEED_FUTEX();
  // A token travels a ring of 4 threads, each parked on its own word:
  // 100,000 handoffs, every one a cross-thread wake.
  constexpr int kThreads = 4;
  constexpr uint32_t kHandoffs = 100'000;
  struct alignas(64) Slot {
    std::atomic<uint32_t> w{0};
  };
  Slot slots[kThreads];
  std::atomic<uint32_t> passed{0};
  std::vector<std::unique_ptr<Runner>> ring;
  const int64_t t0 = os::nanotime();
  for (int i = 0; i < kThreads; ++i)
    ring.push_back(std::make_unique<Runner>([&, i] {
      uint32_t seen = 0;
      for (;;) {
        uint32_t v;
        while ((v = slots[i].w.load(std::memory_order_acquire)) == seen) os::futex_wait(&slots[i].w, seen, -1);
        seen = v;
        if (v == UINT32_MAX) return;  // shutdown
        uint32_t n = passed.fetch_add(1) + 1;
        Slot& next = slots[(i + 1) % kThreads];
        next.w.store(n >= kHandoffs ? UINT32_MAX : next.w.load(std::memory_order_relaxed) + 1,
                     std::memory_order_release);
        os::futex_wake(&next.w, 1);
        if (n >= kHandoffs) {
          for (Slot& s : slots) {
            s.w.store(UINT32_MAX, std::memory_order_release);
            os::futex_wake(&s.w, 1);
          }
          return;
        }
      }
    }));
  slots[0].w.store(1, std::memory_order_release);
  os::futex_wake(&slots[0].w, 1);
  for (auto& t : ring) t->join();
  const int64_t elapsed = os::nanotime() - t0;
  EXPECT_GE(passed.load(), kHandoffs);
  kc::record_metric("handoff", double(elapsed) / kHandoffs / 1e3, "us");
}

TEST(park_futex, wake_never_crosses_addresses) {
  KEEL_NEED_FUTEX();
  // Waiters on B; wakes on many other addresses, near B (same cache line,
  // same page) and far (page multiples, which collide in hashed wait tables).
  constexpr size_t kWords = 64 * 1024;
  std::vector<std::atomic<uint32_t>> words(kWords);
  for (auto& w : words) w.store(0);
  std::atomic<uint32_t>& b = words[kWords / 2];
  std::atomic<int> returned{0};
  std::atomic<int> entered{0};
  std::vector<std::unique_ptr<Runner>> waiters;
  for (int i = 0; i < 2; ++i)
    waiters.push_back(std::make_unique<Runner>([&] {
      entered.fetch_add(1);
      while (b.load(std::memory_order_acquire) == 0) {
        os::futex_wait(&b, 0, -1);
        returned.fetch_add(1);
      }
    }));
  kc::wait_until([&] { return entered.load() == 2; }, kc::scaled_ns(10 * kc::kSec));
  os::sleep_ns(kc::scaled_ns(50 * kc::kMs));
  const size_t bi = kWords / 2;
  for (size_t stride : {size_t(1), size_t(16), size_t(1024), size_t(4096)})
    for (size_t k = 1; k * stride < kWords / 2; ++k) {
      os::futex_wake(&words[bi + k * stride], os::kWakeAll);
      os::futex_wake(&words[bi - k * stride], 1);
    }
  os::sleep_ns(kc::scaled_ns(100 * kc::kMs));
  EXPECT_EQ(returned.load(), 0) << "a wake on another address released a waiter on B";
  b.store(1, std::memory_order_release);
  os::futex_wake(&b, os::kWakeAll);
  for (auto& t : waiters) t->join();
}

TEST(park_futex, payload_visible_after_wait) {
  KEEL_NEED_FUTEX();
  // Plain (non-atomic) data published before the wake must be visible after
  // the wait: under TSan this also checks the acquire/release annotations.
  constexpr uint32_t kRounds = 20'000;
  std::atomic<uint32_t> to_b{0}, to_a{0};
  uint64_t payload[4] = {};
  std::atomic<int> bad{0};
  Runner b([&] {
    for (uint32_t i = 1; i <= kRounds; ++i) {
      while (to_b.load(std::memory_order_acquire) != i) os::futex_wait(&to_b, i - 1, -1);
      for (uint64_t& p : payload)
        if (p != i) bad.fetch_add(1);
      for (uint64_t& p : payload) p = uint64_t(i) << 32;
      to_a.store(i, std::memory_order_release);
      os::futex_wake(&to_a, 1);
    }
  });
  for (uint32_t i = 1; i <= kRounds; ++i) {
    for (uint64_t& p : payload) p = i;
    to_b.store(i, std::memory_order_release);
    os::futex_wake(&to_b, 1);
    while (to_a.load(std::memory_order_acquire) != i) os::futex_wait(&to_a, i - 1, -1);
    for (uint64_t& p : payload)
      if (p != uint64_t(i) << 32) bad.fetch_add(1);
  }
  b.join();
  EXPECT_EQ(bad.load(), 0);
}

TEST(park_futex, huge_timeouts_block) {
  KEEL_NEED_FUTEX();
  std::atomic<uint32_t> w{0};
  std::atomic<int> returned{0};
  std::vector<std::unique_ptr<Runner>> waiters;
  for (int64_t t : {INT64_MAX, (int64_t(1) << 32) * 1000 + 5 * kc::kMs, (int64_t(1) << 32) * kc::kMs + 5 * kc::kMs,
                    ((int64_t(1) << 31) + 1) * kc::kSec, int64_t(-1)})
    waiters.push_back(std::make_unique<Runner>([&, t] {
      while (w.load() == 0) {
        if (os::futex_wait(&w, 0, t) == os::WaitResult::timed_out) returned.fetch_add(1);
      }
    }));
  os::sleep_ns(300 * kc::kMs);
  EXPECT_EQ(returned.load(), 0) << "a huge timeout returned timed_out at once (overflow)";
  w.store(1);
  os::futex_wake(&w, os::kWakeAll);
  for (auto& t : waiters) t->join();
}

// ---------------------------------------------------------------- semaphore
namespace {
struct SemaHolder {
  os::Sema s;
  SemaHolder() { EXPECT_EQ(os::sema_create(&s), os::Error::ok); }
  ~SemaHolder() { os::sema_destroy(s); }
};
}  // namespace

TEST(park_sema, posts_are_counted) {
  KEEL_NEED_SEMA();
  SemaHolder h;
  for (int i = 0; i < 5; ++i) os::sema_post(h.s);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(os::sema_wait(h.s, 0), os::SemaResult::acquired) << "wait " << i;
  EXPECT_EQ(os::sema_wait(h.s, 0), os::SemaResult::timed_out) << "the 6th wait after 5 posts did not block";
  const int64_t t0 = os::nanotime();
  EXPECT_EQ(os::sema_wait(h.s, 20 * kc::kMs), os::SemaResult::timed_out);
  EXPECT_GE(os::nanotime() - t0, 20 * kc::kMs);
}

TEST(park_sema, post_then_expired_wait_acquires) {
  KEEL_NEED_SEMA();
  SemaHolder h;
  os::sema_post(h.s);
  EXPECT_EQ(os::sema_wait(h.s, 0), os::SemaResult::acquired);
  os::sema_post(h.s);
  EXPECT_EQ(os::sema_wait(h.s, 1), os::SemaResult::acquired);
  os::Sema bad;
  EXPECT_EQ(os::sema_create(nullptr), os::Error::invalid_argument);
  (void)bad;
}

TEST(park_sema, timeout_never_early) {
  KEEL_NEED_SEMA();
  SemaHolder h;
  std::vector<int64_t> over;
  for (int64_t d : {int64_t(137'000), 1 * kc::kMs, 10 * kc::kMs, 50 * kc::kMs})
    for (int rep = 0; rep < 3; ++rep) {
      const int64_t t0 = os::nanotime();
      ASSERT_EQ(os::sema_wait(h.s, d), os::SemaResult::timed_out);
      const int64_t elapsed = os::nanotime() - t0;
      EXPECT_GE(elapsed, d) << "sema_wait(" << d << ") timed out after " << elapsed << " ns";
      EXPECT_LT(elapsed, d + kc::scaled_ns(2 * kc::kSec));
      over.push_back(elapsed - d);
    }
  record_overshoots(over);
}

TEST(park_sema, cross_thread_post_wakes_waiter) {
  KEEL_NEED_SEMA();
  SemaHolder a, b;
  constexpr int kRounds = 10'000;
  Runner r([&] {
    for (int i = 0; i < kRounds; ++i) {
      ASSERT_EQ(os::sema_wait(a.s, -1), os::SemaResult::acquired);
      os::sema_post(b.s);
    }
  });
  const int64_t t0 = os::nanotime();
  for (int i = 0; i < kRounds; ++i) {
    os::sema_post(a.s);
    ASSERT_EQ(os::sema_wait(b.s, kc::scaled_ns(10 * kc::kSec)), os::SemaResult::acquired) << "round " << i;
  }
  r.join();
  kc::record_metric("round_trip", double(os::nanotime() - t0) / kRounds / 1e3, "us");
}

TEST(park_sema, interrupted_wait_never_false_timeout) {
  KEEL_NEED_SEMA();
  kc::poke_setup();
  SemaHolder h;
  std::atomic<int> phase{0};
  std::atomic<int64_t> elapsed{0};
  std::atomic<int> result1{-1}, result2{-1};
  const int64_t timeout = 400 * kc::kMs;
  Runner r([&] {
    phase.store(1);
    int64_t t0 = os::nanotime();
    result1.store(int(os::sema_wait(h.s, timeout)));  // nobody posts: must time out, not early
    elapsed.store(os::nanotime() - t0);
    phase.store(2);
    result2.store(int(os::sema_wait(h.s, kc::scaled_ns(30 * kc::kSec))));  // posted after pokes
  });
  kc::wait_until([&] { return phase.load() == 1; }, kc::scaled_ns(10 * kc::kSec));
  const int before = kc::pokes_delivered();
  while (phase.load() == 1) {
    EXPECT_TRUE(kc::poke(r.t));
    os::sleep_ns(10 * kc::kMs);
  }
  kc::wait_until([&] { return phase.load() == 2; }, kc::scaled_ns(10 * kc::kSec));
  for (int i = 0; i < 5; ++i) {
    kc::poke(r.t);
    os::sleep_ns(10 * kc::kMs);
  }
  os::sema_post(h.s);
  r.join();
  kc::record_metric("pokes", kc::pokes_delivered() - before, "");
  EXPECT_GT(kc::pokes_delivered(), before) << "no signal/APC reached the waiting thread: the test proved nothing";
  EXPECT_EQ(result1.load(), int(os::SemaResult::timed_out));
  EXPECT_GE(elapsed.load(), timeout) << "an interrupted wait reported a timeout early";
  EXPECT_EQ(result2.load(), int(os::SemaResult::acquired)) << "an interrupted wait lost a later post";
}
