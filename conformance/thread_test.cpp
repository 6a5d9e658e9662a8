// Contract group 2: threads.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <set>
#include <string>

#include "conformance/harness.h"
#include "platform/os.h"

namespace kc = keel::conformance;
namespace os = keel::os;

namespace {

struct Slot {
  std::atomic<uint64_t> id{0};
  std::atomic<int> runs{0};
};

void record_self(void* p) {
  auto* s = static_cast<Slot*>(p);
  s->id.store(os::thread_id());
  s->runs.fetch_add(1);
}

}  // namespace

TEST(thread_lifecycle, start_run_join) {
  constexpr int kThreads = 8;
  Slot slots[kThreads];
  os::Thread ts[kThreads];
  for (int i = 0; i < kThreads; ++i) ASSERT_EQ(os::thread_start(&ts[i], record_self, &slots[i]), os::Error::ok);
  for (int i = 0; i < kThreads; ++i) ASSERT_EQ(os::thread_join(ts[i]), os::Error::ok);
  std::set<uint64_t> ids{os::thread_id()};
  for (int i = 0; i < kThreads; ++i) {
    EXPECT_EQ(slots[i].runs.load(), 1) << "thread " << i << " ran " << slots[i].runs.load() << " times";
    EXPECT_NE(slots[i].id.load(), 0u);
    EXPECT_EQ(slots[i].id.load(), ts[i].id) << "the handle's id differs from what the thread saw";
    ids.insert(slots[i].id.load());
  }
  EXPECT_EQ(ids.size(), size_t(kThreads + 1)) << "thread ids are not distinct";
}

TEST(thread_lifecycle, rejects_bad_input) {
  os::Thread t;
  EXPECT_EQ(os::thread_start(&t, nullptr, nullptr), os::Error::invalid_argument);
  EXPECT_EQ(os::thread_start(nullptr, record_self, nullptr), os::Error::invalid_argument);
  EXPECT_EQ(os::thread_join(os::Thread{}), os::Error::invalid_argument);
  EXPECT_STREQ(os::error_name(os::Error::invalid_argument), "invalid_argument");
}

namespace {
struct OptionsProbe {
  char name[64] = {};
  os::Error name_err = os::Error::unknown;
  std::atomic<bool> deep_ok{false};
};

// Uses ~512 KiB of stack: only survivable if stack_size was honoured (the
// default is 256 KiB).
#if defined(__GNUC__)
__attribute__((noinline))
#endif
int touch_stack(int depth) {
  volatile char frame[16 * 1024];
  std::memset(const_cast<char*>(frame), depth, sizeof frame);
  return depth == 0 ? frame[100] : touch_stack(depth - 1) + frame[200];
}

void options_body(void* p) {
  auto* o = static_cast<OptionsProbe*>(p);
  o->name_err = os::thread_get_name(o->name, sizeof o->name);
  touch_stack(32);
  o->deep_ok.store(true);
}
}  // namespace

TEST(thread_lifecycle, honours_name_and_stack_size) {
  OptionsProbe probe;
  os::ThreadOptions opts;
  opts.stack_size = 2 * 1024 * 1024;
  opts.name = "keel-options";
  os::Thread t;
  ASSERT_EQ(os::thread_start(&t, options_body, &probe, opts), os::Error::ok);
  ASSERT_EQ(os::thread_join(t), os::Error::ok);
  EXPECT_TRUE(probe.deep_ok.load()) << "a thread with a 2 MiB stack could not use 512 KiB of it";
  if (os::caps().thread_names) {
    EXPECT_EQ(probe.name_err, os::Error::ok);
    EXPECT_EQ(std::string(probe.name), std::string("keel-options").substr(0, os::caps().thread_name_max));
  }
}

TEST(thread_self, consistent_with_thread_id) {
  const os::Thread a = os::thread_self();
  const os::Thread b = os::thread_self();
  EXPECT_TRUE(a.valid());
  EXPECT_EQ(a.id, os::thread_id());
  EXPECT_EQ(a.id, b.id);
  EXPECT_NE(os::thread_id(), 0u);
}

TEST(thread_yield, returns) {
  const int64_t t0 = os::nanotime();
  for (int i = 0; i < 10'000; ++i) os::thread_yield();
  const int64_t per = (os::nanotime() - t0) / 10'000;
  kc::record_metric("cost", double(per), "ns/yield");
  EXPECT_LT(per, kc::scaled_ns(10 * kc::kMs)) << "thread_yield blocks instead of yielding";
}

TEST(thread_cpu_count, at_least_one) {
  const int n = os::cpu_count();
  kc::record_metric("cpus", n, "");
  EXPECT_GE(n, 1);
  EXPECT_LE(n, 1 << 16);
}

TEST(thread_name, round_trip_and_truncation) {
  if (!os::caps().thread_names) GTEST_SKIP() << "this target cannot name threads (caps().thread_names is false)";
  char buf[300];
  ASSERT_EQ(os::thread_set_name("keel-rt"), os::Error::ok);
  ASSERT_EQ(os::thread_get_name(buf, sizeof buf), os::Error::ok);
  EXPECT_STREQ(buf, "keel-rt");
  const std::string longname(200, 'x');
  ASSERT_EQ(os::thread_set_name(longname.c_str()), os::Error::ok) << "a long name must be truncated, not rejected";
  ASSERT_EQ(os::thread_get_name(buf, sizeof buf), os::Error::ok);
  EXPECT_EQ(std::string(buf), longname.substr(0, os::caps().thread_name_max));
  EXPECT_EQ(os::thread_set_name(nullptr), os::Error::invalid_argument);
}

namespace {
struct Spinner {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> iterations{0};
};
void spin_body(void* p) {
  auto* s = static_cast<Spinner*>(p);
  while (!s->stop.load(std::memory_order_relaxed)) s->iterations.fetch_add(1, std::memory_order_relaxed);
}
struct Sleeper {
  int64_t ns;
};
void sleep_body(void* p) { os::sleep_ns(static_cast<Sleeper*>(p)->ns); }
}  // namespace

TEST(thread_cpu_time, advances_when_spinning) {
  if (!os::caps().thread_cpu_time) GTEST_SKIP() << "caps().thread_cpu_time is false on this target";
  Spinner s;
  os::Thread t;
  ASSERT_EQ(os::thread_start(&t, spin_body, &s), os::Error::ok);
  const int64_t c0 = os::thread_cpu_time_ns(t);
  const int64_t w0 = os::nanotime();
  ASSERT_GE(c0, 0);
  // Wait for 50 ms of the spinner's CPU time; on a loaded machine this takes
  // longer in wall time, so only a gross bound applies.
  int64_t c1 = c0;
  const bool advanced = kc::wait_until([&] { return (c1 = os::thread_cpu_time_ns(t)) - c0 >= 50 * kc::kMs; },
                                       kc::scaled_ns(10 * kc::kSec));
  const int64_t wall = os::nanotime() - w0;
  s.stop.store(true);
  ASSERT_EQ(os::thread_join(t), os::Error::ok);
  kc::record_metric("cpu_per_wall", double(c1 - c0) / double(wall), "");
  EXPECT_TRUE(advanced) << "a spinning thread's CPU time advanced only " << (c1 - c0) << " ns in " << wall << " ns";
}

TEST(thread_cpu_time, flat_when_sleeping) {
  if (!os::caps().thread_cpu_time) GTEST_SKIP() << "caps().thread_cpu_time is false on this target";
  Sleeper sl{300 * kc::kMs};
  os::Thread t;
  ASSERT_EQ(os::thread_start(&t, sleep_body, &sl), os::Error::ok);
  os::sleep_ns(20 * kc::kMs);  // let it settle into its sleep
  const int64_t c0 = os::thread_cpu_time_ns(t);
  os::sleep_ns(200 * kc::kMs);
  const int64_t c1 = os::thread_cpu_time_ns(t);
  ASSERT_EQ(os::thread_join(t), os::Error::ok);
  ASSERT_GE(c0, 0);
  ASSERT_GE(c1, c0);
  kc::record_metric("cpu_while_asleep", double(c1 - c0) / 1e3, "us");
  // A sleeping thread burns (almost) nothing; one accounting tick of slack.
  EXPECT_LT(c1 - c0, 20 * kc::kMs + os::caps().timer_granularity_ns);
}

TEST(thread_cpu_time, of_self_handle) {
  if (!os::caps().thread_cpu_time) GTEST_SKIP() << "caps().thread_cpu_time is false on this target";
  const os::Thread me = os::thread_self();
  const int64_t c0 = os::thread_cpu_time_ns(me);
  ASSERT_GE(c0, 0);
  volatile uint64_t x = 0;
  int64_t c1 = c0;
  const bool advanced = kc::wait_until(
      [&] {
        for (int i = 0; i < 1'000'000; ++i) x = x + 1;
        return (c1 = os::thread_cpu_time_ns(me)) > c0;
      },
      kc::scaled_ns(10 * kc::kSec));
  EXPECT_TRUE(advanced) << "the calling thread's own CPU time never advanced";
  EXPECT_EQ(os::thread_cpu_time_ns(os::Thread{}), -1) << "an invalid handle must give -1, not a crash";
}
