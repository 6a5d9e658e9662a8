// core Note and the runtime lock, each instantiated in both flavours:
// note.futex.*, note.sema.*, lock.futex.*, lock.sema.* (DESIGN.md §3).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "conformance/harness.h"
#include "core/lock.h"
#include "core/note.h"
#include "platform/os.h"

namespace kc = keel::conformance;
namespace os = keel::os;
namespace core = keel::core;

namespace {

using kc::Runner;

// A flavour needs its parking family; say which one is missing.
template <class T>
bool flavour_available(std::string* why);
template <>
bool flavour_available<core::NoteFutex>(std::string* why) {
  *why = "no address-wait family on this target (caps().futex)";
  return os::caps().futex;
}
template <>
bool flavour_available<core::NoteSema>(std::string* why) {
  *why = "no semaphore family on this target (caps().sema)";
  return os::caps().sema;
}
template <>
bool flavour_available<core::LockFutex>(std::string* why) {
  return flavour_available<core::NoteFutex>(why);
}
template <>
bool flavour_available<core::LockSema>(std::string* why) {
  return flavour_available<core::NoteSema>(why);
}

#define KEEL_NEED_FLAVOUR()                                            \
  do {                                                                 \
    std::string why_;                                                  \
    if (!flavour_available<TypeParam>(&why_)) GTEST_SKIP() << why_;    \
  } while (0)

struct FlavourNames {
  template <class T>
  static std::string GetName(int) {
    if (std::is_same_v<T, core::NoteFutex> || std::is_same_v<T, core::LockFutex>) return "futex";
    return "sema";
  }
};

}  // namespace

// ===================================================================== Note
template <class N>
class note : public ::testing::Test {};
using NoteFlavours = ::testing::Types<core::NoteFutex, core::NoteSema>;
TYPED_TEST_SUITE(note, NoteFlavours, FlavourNames);

TYPED_TEST(note, wakeup_before_sleep_returns_at_once) {
  KEEL_NEED_FLAVOUR();
  TypeParam n;
  n.clear();
  n.wakeup();
  const int64_t t0 = os::nanotime();
  n.sleep();
  EXPECT_TRUE(n.sleep_for(10 * kc::kSec));
  EXPECT_TRUE(n.woken());
  EXPECT_LT(os::nanotime() - t0, kc::scaled_ns(500 * kc::kMs));
}

TYPED_TEST(note, timed_sleep_never_early) {
  KEEL_NEED_FLAVOUR();
  TypeParam n;
  n.clear();
  std::vector<int64_t> over;
  for (int64_t d : {int64_t(0), int64_t(137'000), 1 * kc::kMs, 20 * kc::kMs}) {
    const int64_t t0 = os::nanotime();
    EXPECT_FALSE(n.sleep_for(d));
    const int64_t e = os::nanotime() - t0;
    EXPECT_GE(e, d);
    over.push_back(e - d);
  }
  kc::record_metric("overshoot_max", double(*std::max_element(over.begin(), over.end())) / 1e3, "us");
}

TYPED_TEST(note, wakeup_from_another_thread) {
  KEEL_NEED_FLAVOUR();
  TypeParam ping, pong;
  constexpr int kRounds = 10'000;
  Runner r([&] {
    for (int i = 0; i < kRounds; ++i) {
      ping.sleep();
      ping.clear();
      pong.wakeup();
    }
  });
  const int64_t t0 = os::nanotime();
  for (int i = 0; i < kRounds; ++i) {
    ping.wakeup();
    ASSERT_TRUE(pong.sleep_for(kc::scaled_ns(10 * kc::kSec))) << "round " << i << ": a wakeup was lost";
    pong.clear();
  }
  r.join();
  kc::record_metric("round_trip", double(os::nanotime() - t0) / kRounds / 1e3, "us");
}

TYPED_TEST(note, timed_sleep_racing_wakeup_is_consistent) {
  KEEL_NEED_FLAVOUR();
  // 100,000 rounds of a timed sleep racing a wakeup from another thread.
  // Whatever sleep_for returns, once the wakeup has happened the note is
  // woken, and nothing is left over for the next round: a stray semaphore
  // post would make the check sleep_for(0) on a clear note return true.
  constexpr int kRounds = 100'000;
  TypeParam n;
  std::atomic<int> go{0}, done{0};
  std::atomic<bool> stop{false};
  Runner waker([&] {
    for (int i = 1; i <= kRounds; ++i) {
      while (go.load(std::memory_order_acquire) != i) {
        if (stop.load()) return;
        os::thread_yield();
      }
      n.wakeup();
      done.store(i, std::memory_order_release);
    }
  });
  int woken = 0, timed_out = 0, inconsistent = 0, stray = 0;
  for (int i = 1; i <= kRounds; ++i) {
    n.clear();
    go.store(i, std::memory_order_release);
    // Mostly zero-length sleeps (a coarse-timer OS rounds any nonzero timeout
    // up to a tick), every 16th a short real one.
    (n.sleep_for(i % 16 == 0 ? 20'000 : 0) ? woken : timed_out)++;
    while (done.load(std::memory_order_acquire) != i) os::thread_yield();
    if (!n.woken()) ++inconsistent;
    n.clear();
    if (n.sleep_for(0)) ++stray;
  }
  stop.store(true);
  waker.join();
  kc::record_metric("woken", woken, "");
  kc::record_metric("timed_out", timed_out, "");
  EXPECT_EQ(inconsistent, 0) << "the note was not woken after its wakeup";
  EXPECT_EQ(stray, 0) << "a consumed wakeup leaked into the next cycle";
}

TYPED_TEST(note, double_wakeup_is_fatal) {
  KEEL_NEED_FLAVOUR();
  EXPECT_DEATH(
      {
        TypeParam n;
        n.clear();
        n.wakeup();
        n.wakeup();
      },
      "fatal error: notewakeup - double wakeup");
}

TYPED_TEST(note, million_cycles_reuse) {
  KEEL_NEED_FLAVOUR();
  TypeParam n;
  const int64_t t0 = os::nanotime();
  for (int i = 0; i < 1'000'000; ++i) {
    n.clear();
    n.wakeup();
    n.sleep();
  }
  kc::record_metric("cycle", double(os::nanotime() - t0) / 1e6, "ns");
  n.clear();
  EXPECT_FALSE(n.sleep_for(0));
}

// ===================================================================== Lock
template <class L>
class lock : public ::testing::Test {};
using LockFlavours = ::testing::Types<core::LockFutex, core::LockSema>;
TYPED_TEST_SUITE(lock, LockFlavours, FlavourNames);

TYPED_TEST(lock, mutual_exclusion_8x100k) {
  KEEL_NEED_FLAVOUR();
  TypeParam l;
  int64_t counter = 0;  // plain: only the lock protects it (TSan checks too)
  std::atomic<int> inside{0}, overlap{0};
  std::vector<std::unique_ptr<Runner>> ts;
  const int64_t t0 = os::nanotime();
  for (int i = 0; i < 8; ++i)
    ts.push_back(std::make_unique<Runner>([&] {
      for (int j = 0; j < 100'000; ++j) {
        l.lock();
        if (inside.fetch_add(1, std::memory_order_relaxed) != 0) overlap.fetch_add(1);
        ++counter;
        inside.fetch_sub(1, std::memory_order_relaxed);
        l.unlock();
      }
    }));
  for (auto& t : ts) t->join();
  kc::record_metric("op", double(os::nanotime() - t0) / 800'000, "ns");
  EXPECT_EQ(counter, 800'000);
  EXPECT_EQ(overlap.load(), 0);
}

TYPED_TEST(lock, no_waiter_starves) {
  KEEL_NEED_FLAVOUR();
  // A hog re-takes the lock in a tight loop; a second thread must still get
  // it, each wait bounded. Without the handoff an unfair lock lets the hog
  // barge in front of the woken waiter for the whole run.
  TypeParam l;
  const int64_t bound = kc::scaled_ns(100 * kc::kMs);
  const int64_t run = 3 * bound;
  std::atomic<bool> stop{false};
  volatile uint64_t sink = 0;
  Runner hog([&] {
    while (!stop.load(std::memory_order_relaxed)) {
      l.lock();
      for (int i = 0; i < 50; ++i) sink = sink + 1;
      l.unlock();
    }
  });
  os::sleep_ns(5 * kc::kMs);
  int64_t worst = 0;
  int acquired = 0;
  std::vector<int64_t> waits;
  const int64_t end = os::nanotime() + run;
  while (os::nanotime() < end) {
    const int64_t t0 = os::nanotime();
    l.lock();
    const int64_t w = os::nanotime() - t0;
    l.unlock();
    worst = std::max(worst, w);
    waits.push_back(w);
    ++acquired;
    os::sleep_ns(200'000);  // let the hog run in between
  }
  stop.store(true);
  hog.join();
  std::sort(waits.begin(), waits.end());
  kc::record_metric("wait_p99", double(waits[waits.size() * 99 / 100]) / 1e3, "us");
  kc::record_metric("wait_max", double(worst) / 1e3, "us");
  EXPECT_GE(acquired, 3);
  EXPECT_LT(worst, bound) << "a waiter waited " << worst << " ns behind a hog";
}

TYPED_TEST(lock, no_lost_wakeups_stress) {
  KEEL_NEED_FLAVOUR();
  // One second of 4 threads locking with random short holds (some sleep
  // while holding, forcing parks). A lost wakeup leaves a thread parked for
  // ever: every thread must finish within a gross bound.
  TypeParam l;
  std::atomic<int> finished{0};
  std::atomic<int64_t> ops{0};
  int64_t counter = 0;
  const int64_t end = os::nanotime() + kc::kSec;
  std::vector<std::unique_ptr<Runner>> ts;
  for (int i = 0; i < 4; ++i)
    ts.push_back(std::make_unique<Runner>([&, i] {
      uint32_t x = 0x9e3779b9u * uint32_t(i + 1);
      int64_t mine = 0;
      while (os::nanotime() < end) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        l.lock();
        ++counter;
        if (x % 64 == 0) os::sleep_ns(50'000);
        l.unlock();
        ++mine;
      }
      ops.fetch_add(mine);
      finished.fetch_add(1);
    }));
  const bool all = kc::wait_until([&] { return finished.load() == 4; }, kc::kSec + kc::scaled_ns(20 * kc::kSec));
  ASSERT_TRUE(all) << "a thread never came back from lock(): a lost wakeup";
  for (auto& t : ts) t->join();
  EXPECT_EQ(counter, ops.load());
  kc::record_metric("ops", double(ops.load()), "");
}

TYPED_TEST(lock, parked_waiter_uses_no_cpu) {
  KEEL_NEED_FLAVOUR();
  if (!os::caps().thread_cpu_time) GTEST_SKIP() << "caps().thread_cpu_time is false: cannot measure";
  TypeParam l;
  l.lock();
  std::atomic<bool> got{false};
  Runner waiter([&] {
    l.lock();
    got.store(true);
    l.unlock();
  });
  os::sleep_ns(50 * kc::kMs);  // past the bounded spin: parked by now
  const int64_t c0 = os::thread_cpu_time_ns(waiter.t);
  os::sleep_ns(300 * kc::kMs);
  const int64_t c1 = os::thread_cpu_time_ns(waiter.t);
  EXPECT_FALSE(got.load());
  l.unlock();
  waiter.join();
  EXPECT_TRUE(got.load());
  ASSERT_GE(c0, 0);
  kc::record_metric("cpu_while_parked", double(c1 - c0) / 1e3, "us");
  EXPECT_LT(c1 - c0, 20 * kc::kMs + os::caps().timer_granularity_ns) << "a parked waiter is spinning";
}
