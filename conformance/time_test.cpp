// Timers (issue 7): keel::sleep_for / sleep_until, Timer, Ticker, after,
// after_func (include/keel/time.h) and the per-P timer heaps under them
// (core/timer.h), including how an idle runtime sleeps until the earliest
// timer and is woken early for an earlier one.
//
// Timing: "never early" is exact; upper bounds are gross (scaled by
// kc::scaled_ns, capped below the far deadlines they must beat) and only turn
// a hang or a missed wakeup into a failure. Overshoots are metrics.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <keel/keel.h>
#include <keel/time.h>

#include "conformance/harness.h"
#include "conformance/runtime_support.h"
#include "core/sched.h"
#include "core/timer.h"
#include "platform/os.h"
#include "platform/tsan_annotations.h"  // KEEL_TSAN_ENABLED: the TSan scaling below

namespace kc = keel::conformance;
using kc::run_with_procs;
namespace core = keel::core;
namespace os = keel::os;
using namespace std::chrono_literals;

namespace {

#if defined(KEEL_TSAN_ENABLED)
constexpr int kHeapTimers = 20'000;
constexpr int kRaceRounds = 2'000;
constexpr int kSleepers = 1'000;
#else
constexpr int kHeapTimers = 100'000;
constexpr int kRaceRounds = 10'000;
constexpr int kSleepers = 5'000;
#endif

// min(scaled(ns), cap): a gross bound that must still come before `cap`
// (the far deadline a missed wakeup would wait for).
int64_t gross(int64_t ns, int64_t cap) { return std::min(kc::scaled_ns(ns), cap); }

struct Overshoots {
  std::vector<int64_t> v;
  void record(const char* name) {
    if (v.empty()) return;
    std::sort(v.begin(), v.end());
    kc::record_metric(std::string(name) + "_p50", double(v[v.size() / 2]) / 1e3, "us");
    kc::record_metric(std::string(name) + "_max", double(v.back()) / 1e3, "us");
  }
};

// ------------------------------------------------------------------ sleep
void check_sleeps(Overshoots* o) {
  for (int i = 0; i < 20; i++) {
    const auto d = std::chrono::microseconds(500 + (i * 977) % 15'000);
    const auto s0 = keel::Clock::now();
    const int64_t t0 = os::nanotime();
    keel::sleep_for(d);
    const int64_t t1 = os::nanotime();
    const auto s1 = keel::Clock::now();
    const int64_t want = std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
    ASSERT_GE(t1 - t0, want) << "sleep_for returned early by nanotime";
    ASSERT_GE(s1 - s0, d) << "sleep_for returned early by steady_clock";
    ASSERT_LT(t1 - t0, want + kc::scaled_ns(2 * kc::kSec));
    o->v.push_back(t1 - t0 - want);
  }
}

TEST(time_sleep, never_early_on_goroutine) {
  Overshoots o;
  run_with_procs(2, [&] { check_sleeps(&o); });
  o.record("overshoot");
}

TEST(time_sleep, never_early_on_plain_thread) {
  Overshoots o;
  check_sleeps(&o);
  o.record("overshoot");
}

TEST(time_sleep, sleep_until_never_early) {
  run_with_procs(2, [] {
    for (int i = 0; i < 10; i++) {
      const auto tp = keel::Clock::now() + std::chrono::microseconds(300 + i * 1'100);
      keel::sleep_until(tp);
      ASSERT_GE(keel::Clock::now(), tp);
    }
    keel::sleep_until(keel::Clock::now() - 1s);  // in the past: at once
    keel::sleep_for(-5ms);                        // negative: at once
    keel::sleep_for(0ns);
  });
}

// Sleeping parks goroutines, not threads: thousands sleeping at once finish
// together, on the runtime's few threads.
TEST(time_sleep, parks_goroutines_not_threads) {
  std::atomic<int> done{0};
  int64_t wall = 0, threads_during = 0;
  run_with_procs(2, [&] {
    const int64_t t0 = os::nanotime();
    keel::WaitGroup wg;
    for (int i = 0; i < kSleepers; i++) {
      wg.add(1);
      keel::go([&] {
        keel::sleep_for(200ms);
        done.fetch_add(1);
        wg.done();
      });
    }
    keel::sleep_for(100ms);
    threads_during = os::thread_count();
    wg.wait();
    wall = os::nanotime() - t0;
  });
  EXPECT_EQ(done.load(), kSleepers);
  EXPECT_GE(wall, 200 * kc::kMs);
  EXPECT_LT(wall, 200 * kc::kMs + kc::scaled_ns(3 * kc::kSec));
  if (threads_during >= 0) {
    EXPECT_LT(threads_during, 32) << "sleeping goroutines must not hold threads";
  }
  kc::record_metric("wall", double(wall) / 1e6, "ms");
  kc::record_metric("sleepers", kSleepers, "goroutines");
}

// ------------------------------------------------------------ the heaps
// 10^5 timers with random deadlines on one P fire in deadline order, none
// lost, none early. One P: its heap is the only one, and whoever holds the
// P runs it, so the firing order is the heap's order.
struct HeapOrder {
  std::mutex mu;
  std::vector<int64_t> fired_when;
  int64_t early = 0;
  int64_t max_late = 0;
  std::atomic<int> count{0};
};
HeapOrder* g_order = nullptr;

void record_fire(core::Timer* t, int64_t now) noexcept {
  std::lock_guard<std::mutex> l(g_order->mu);
  const int64_t when = static_cast<int64_t>(reinterpret_cast<intptr_t>(t->arg));
  g_order->fired_when.push_back(when);
  if (now < when) g_order->early++;
  g_order->max_late = std::max(g_order->max_late, now - when);
  g_order->count.fetch_add(1, std::memory_order_release);
}

TEST(time_heap, random_deadlines_fire_in_order_none_lost) {
  HeapOrder order;
  g_order = &order;
  std::vector<std::unique_ptr<core::Timer>> timers;
  timers.reserve(kHeapTimers);
  run_with_procs(1, [&] {
    const int64_t base = os::nanotime() + 20 * kc::kMs;
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < kHeapTimers; i++) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      auto t = std::make_unique<core::Timer>();
      const int64_t when = base + int64_t(x % uint64_t(300 * kc::kMs));
      t->fn = &record_fire;
      t->arg = reinterpret_cast<void*>(intptr_t(when));
      core::timer_reset(t.get(), when, 0);
      timers.push_back(std::move(t));
    }
    // Stop every tenth, re-arm every seventh elsewhere: removals from the
    // middle of the heap must keep it a heap.
    int stopped = 0;
    for (int i = 0; i < kHeapTimers; i += 10)
      if (core::timer_stop(timers[size_t(i)].get())) stopped++;
    EXPECT_EQ(stopped, (kHeapTimers + 9) / 10);
    const int expect = kHeapTimers - stopped;
    // Wait by sleeping (parked, so the one P runs the timers), not by
    // blocking the thread.
    const int64_t limit = os::nanotime() + kc::scaled_ns(20 * kc::kSec);
    while (order.count.load(std::memory_order_acquire) < expect && os::nanotime() < limit) keel::sleep_for(5ms);
    ASSERT_GE(order.count.load(), expect) << "timers lost";
    keel::sleep_for(50ms);  // nothing stopped may fire late
  });
  g_order = nullptr;
  std::lock_guard<std::mutex> l(order.mu);
  EXPECT_EQ(order.fired_when.size(), size_t(kHeapTimers - (kHeapTimers + 9) / 10));
  EXPECT_EQ(order.early, 0);
  EXPECT_TRUE(std::is_sorted(order.fired_when.begin(), order.fired_when.end())) << "timers fired out of deadline order";
  kc::record_metric("timers", kHeapTimers, "timers");
  kc::record_metric("max_late", double(order.max_late) / 1e3, "us");
}

// ------------------------------------------------------------------ Timer
TEST(time_timer, fires_once_never_early) {
  run_with_procs(2, [] {
    const auto t0 = keel::Clock::now();
    keel::Timer t(15ms);
    auto v = t.chan().recv();
    const auto t1 = keel::Clock::now();
    ASSERT_TRUE(v.has_value());
    EXPECT_GE(t1 - t0, 15ms);
    EXPECT_GE(*v - t0, 15ms);
    EXPECT_LE(*v, t1);
    EXPECT_FALSE(t.stop()) << "fired and received: nothing left to stop";
    keel::sleep_for(20ms);
    EXPECT_FALSE(t.chan().try_recv().has_value()) << "a one-shot timer sent twice";
  });
}

TEST(time_timer, works_from_plain_thread) {
  // No keel::run: the timer starts the runtime, whose Ms run it; the thread
  // parks on its note in recv.
  const auto t0 = keel::Clock::now();
  keel::Timer t(10ms);
  auto v = t.chan().recv();
  ASSERT_TRUE(v.has_value());
  EXPECT_GE(keel::Clock::now() - t0, 10ms);
  auto a = keel::after(5ms);
  EXPECT_TRUE(a.recv().has_value());
}

// Go 1.23: after stop() or reset() returns, no value from before it is ever
// received — even one the timer had already sent and nobody had taken.
TEST(time_timer, no_stale_value_after_stop_or_reset) {
  run_with_procs(2, [] {
    keel::Timer t(1ms);
    keel::sleep_for(20ms);  // fired; its value waits in the channel
    EXPECT_TRUE(t.stop()) << "dropping an unreceived value counts as stopping it";
    EXPECT_FALSE(t.chan().try_recv().has_value());
    EXPECT_FALSE(t.stop());

    keel::Timer u(1ms);
    keel::sleep_for(20ms);
    const auto r = keel::Clock::now();
    EXPECT_TRUE(u.reset(30ms));
    auto v = u.chan().recv();
    ASSERT_TRUE(v.has_value());
    EXPECT_GE(*v - r, 30ms) << "received the value from before reset";
  });
}

// stop() racing the expiry, 10^4 times: the timers are armed on main's P
// and come due within microseconds, while a churning goroutine on the other
// P keeps entering the scheduler, which runs other Ps' due timers — so the
// firing and the stop really race. Each time there must be exactly one
// outcome: stopped (and the channel never delivers) or fired (and it
// delivers exactly one value). Both counts are recorded.
struct Churn {
  std::atomic<bool> stop{false};
  keel::WaitGroup wg;
  void start() {
    wg.add(1);
    keel::go([this] {
      while (!stop.load(std::memory_order_relaxed)) keel::sleep_for(20us);
      wg.done();
    });
    keel::sleep_for(5ms);  // let another M steal it
  }
  void finish() {
    stop.store(true);
    wg.wait();
  }
};

void spin_a_little(int i) {
  for (int k = 0; k < (i * 37) % 400; k++) keel::core::procyield(1);
}

// For a channel timer "fired" means "its value was received": a value sent
// but not yet received is dropped by stop(), which then reports true (Go
// 1.23). So here a receiver on the other P polls the current timer's
// channel while main stops it: per timer, exactly one of "stop said true"
// and "the receiver got the value" — and nothing is left in the channel.
TEST(time_timer, stop_racing_expiry_has_one_outcome) {
  int stopped = 0, received = 0, bad = 0;
  run_with_procs(2, [&] {
    std::vector<keel::Chan<keel::Clock::time_point>> chans(static_cast<size_t>(kRaceRounds));
    std::vector<std::atomic<int>> got(static_cast<size_t>(kRaceRounds));
    std::atomic<int> cur{-1};
    std::atomic<bool> stop{false};
    keel::WaitGroup wg;
    wg.add(1);
    keel::go([&] {
      int spins = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        const int i = cur.load(std::memory_order_acquire);
        if (i >= 0 && chans[size_t(i)].try_recv().has_value()) got[size_t(i)].fetch_add(1);
        // Now and then through the scheduler, which also runs main's P's
        // due timers from here.
        if (++spins % 8 == 0) keel::sleep_for(1us);
      }
      wg.done();
    });
    keel::sleep_for(5ms);  // let the other M take the receiver
    std::vector<keel::Timer> ts;
    std::vector<bool> stop_said;
    ts.reserve(kRaceRounds);
    for (int i = 0; i < kRaceRounds; i++) {
      ts.emplace_back(std::chrono::microseconds(i % 30));
      chans[size_t(i)] = ts.back().chan();
      cur.store(i, std::memory_order_release);
      spin_a_little(i);
      stop_said.push_back(ts.back().stop());
    }
    stop.store(true);
    wg.wait();
    keel::sleep_for(20ms);  // anything still in flight lands
    for (int i = 0; i < kRaceRounds; i++) {
      const int r = got[size_t(i)].load();
      const bool left = ts[size_t(i)].chan().try_recv().has_value();
      if (stop_said[size_t(i)]) stopped++;
      received += r;
      if (left || (stop_said[size_t(i)] ? 1 : 0) + r != 1) bad++;
    }
  });
  EXPECT_EQ(bad, 0) << "stopped " << stopped << ", received " << received;
  kc::record_metric("stopped", stopped, "timers");
  kc::record_metric("received", received, "timers");
}

TEST(time_after_func, stop_racing_expiry_has_one_outcome) {
  std::vector<std::atomic<int>> ran(static_cast<size_t>(kRaceRounds));
  int bad = 0, stopped = 0;
  run_with_procs(2, [&] {
    Churn churn;
    churn.start();
    std::vector<keel::Timer> ts;
    std::vector<bool> stop_said;
    ts.reserve(kRaceRounds);
    for (int i = 0; i < kRaceRounds; i++) {
      ts.push_back(keel::after_func(std::chrono::microseconds(i % 30), [&ran, i] { ran[size_t(i)].fetch_add(1); }));
      spin_a_little(i);
      stop_said.push_back(ts.back().stop());
    }
    churn.finish();
    // Every f that will run has been started as a goroutine by now or soon.
    keel::sleep_for(100ms);
    for (int i = 0; i < kRaceRounds; i++) {
      const int r = ran[size_t(i)].load();
      if (stop_said[size_t(i)]) {
        stopped++;
        if (r != 0) bad++;
      } else if (r != 1) {
        bad++;
      }
    }
  });
  EXPECT_EQ(bad, 0);
  kc::record_metric("stopped", stopped, "timers");
  kc::record_metric("ran", kRaceRounds - stopped, "timers");
}

TEST(time_after_func, runs_in_its_own_goroutine_never_early) {
  run_with_procs(2, [] {
    std::atomic<uint64_t> gid{0};
    std::atomic<int64_t> at{0};
    const int64_t t0 = os::nanotime();
    const uint64_t me = keel::goroutine_id();
    keel::after_func(10ms, [&] {
      gid.store(keel::goroutine_id());
      at.store(os::nanotime());
    });  // the dropped Timer does not cancel it
    ASSERT_TRUE(kc::wait_until([&] { return at.load() != 0; }, kc::scaled_ns(5 * kc::kSec)));
    EXPECT_GE(at.load() - t0, 10 * kc::kMs);
    EXPECT_NE(gid.load(), 0u);
    EXPECT_NE(gid.load(), me);
  });
}

// The runtime sleeps until a far timer; a timer armed meanwhile for much
// sooner (from a goroutine's P or from a plain thread) must fire on time,
// not when the far one does (Go #38860, #41699).
void earlier_timer_wakes_sleeping_scheduler(bool from_plain_thread) {
  int64_t late = -1;
  run_with_procs(2, [&] {
    keel::go([] { keel::sleep_for(30s); });  // the far deadline every M sleeps for
    keel::sleep_for(50ms);                   // now every M is idle, one sleeping until +30 s
    auto arm = [&] {
      const int64_t t0 = os::nanotime();
      keel::Timer t(20ms);
      ASSERT_TRUE(t.chan().recv().has_value());
      late = os::nanotime() - t0 - 20 * kc::kMs;
    };
    if (from_plain_thread) {
      // main parks too, so no M may hold a P when the thread arms its timer.
      std::atomic<bool> done{false};
      std::thread th([&] {
        arm();
        done.store(true);
      });
      while (!done.load()) keel::sleep_for(5ms);
      th.join();
    } else {
      arm();
    }
  });
  ASSERT_GE(late, 0);
  EXPECT_LT(late, gross(kc::kSec, 10 * kc::kSec)) << "waited for the far timer";
  kc::record_metric("late", double(late) / 1e3, "us");
}

TEST(time_timer, reset_earlier_than_scheduler_sleep_fires_on_time) { earlier_timer_wakes_sleeping_scheduler(false); }
TEST(time_timer, plain_thread_timer_wakes_sleeping_scheduler) { earlier_timer_wakes_sleeping_scheduler(true); }

// A parked main waiting on a timer is not a deadlock.
TEST(time_timer, pending_timer_is_not_a_deadlock) {
  run_with_procs(1, [] {
    keel::Chan<int> never(0);
    keel::go([never]() mutable { (void)never.recv(); });  // blocked for good, as Go allows
    auto a = keel::after(100ms);
    EXPECT_TRUE(a.recv().has_value());
  });
}

// ----------------------------------------------------------------- Ticker
TEST(time_ticker, drops_ticks_for_slow_receiver) {
  run_with_procs(2, [] {
    keel::Ticker tick(2ms);
    keel::sleep_for(100ms);  // ~50 ticks come due; the channel holds one
    EXPECT_LE(tick.chan().len(), 1u);
    EXPECT_TRUE(tick.chan().try_recv().has_value());
    EXPECT_FALSE(tick.chan().try_recv().has_value()) << "a backlog of ticks queued";
    // Ticks keep coming, each at least a period after the previous one's due time.
    auto prev = tick.chan().recv();
    ASSERT_TRUE(prev.has_value());
    for (int i = 0; i < 10; i++) {
      auto v = tick.chan().recv();
      ASSERT_TRUE(v.has_value());
      EXPECT_GT(*v, *prev);
      prev = v;
    }
    tick.stop();
    keel::sleep_for(10ms);
    EXPECT_FALSE(tick.chan().try_recv().has_value()) << "ticked after stop";
    tick.reset(1ms);
    EXPECT_TRUE(tick.chan().recv().has_value());
  });
  EXPECT_THROW(keel::Ticker(0ms), std::invalid_argument);
}

// ------------------------------------------------------------- idle CPU
// An idle runtime with one timer a second away sleeps until it: under 2% CPU.
TEST(time_idle, one_far_timer_costs_no_cpu) {
  double pct = -1;
  run_with_procs(2, [&] {
    keel::sleep_for(20ms);  // let start-up settle
    const int64_t c0 = os::process_cpu_time_ns();
    const int64_t t0 = os::nanotime();
    keel::Timer t(1s);
    ASSERT_TRUE(t.chan().recv().has_value());
    const int64_t c1 = os::process_cpu_time_ns();
    const int64_t t1 = os::nanotime();
    if (c0 >= 0 && c1 >= 0) pct = 100.0 * double(c1 - c0) / double(t1 - t0);
  });
  if (pct < 0) GTEST_SKIP() << "the OS reports no process CPU time";
  kc::record_metric("cpu", pct, "%");
  EXPECT_LT(pct, 2.0);
}

}  // namespace
