// Goroutine stacks at scale (core/stack_pool.h) and how their overflows are
// reported (core/stack.h, the contract's stack-fault functions):
// context.stack.* rows beside context_test.cpp's.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "conformance/harness.h"
#include "core/fiber.h"
#include "core/stack.h"
#include "core/stack_pool.h"
#include "platform/os.h"
#include "platform/tsan_annotations.h"

namespace kc = keel::conformance;
namespace os = keel::os;
namespace core = keel::core;

#define NOINLINE KC_NOINLINE

namespace {

constexpr const char* kSiteFile = "conformance/stack_test.cpp";

// A context running body(*this), parking back to `back` (as in context_test.cpp).
struct Task {
  core::Fiber fiber;
  core::Fiber* back = nullptr;
  std::function<void(Task&)> body;
  bool done = false;

  static void entry(void* p) {
    auto* t = static_cast<Task*>(p);
    t->body(*t);
    t->done = true;
    core::fiber_exit(&t->fiber, t->back);
  }
  bool start_on(core::Fiber* main, const core::Stack& s, std::function<void(Task&)> b, uint64_t id) {
    back = main;
    body = std::move(b);
    return fiber.create_on(s, &Task::entry, this, id);
  }
  void park() { core::fiber_switch(&fiber, back); }
  void resume() { core::fiber_switch(back, &fiber); }
};

// The death-test regex for both overflow paths: two lines, the second
// naming where the goroutine was created. Only literal characters and "\."
// so that GoogleTest's simple regex (Windows) and POSIX ERE read it alike.
std::string overflow_regex(uint64_t id, uint32_t line) {
  std::string site = std::string(kSiteFile) + ":" + std::to_string(line);
  std::string esc;
  for (char c : site) {
    if (c == '.') esc += "\\.";
    else esc += c;
  }
  const std::string g = "goroutine " + std::to_string(id);
  return "fatal error: " + g + " stack overflow\n" + g + " was created at " + esc;
}

// Recurses with `Frame`-byte frames, writing every byte of each (as real
// code with real locals does), until a frame lies at or below `stop`.
template <size_t Frame>
NOINLINE int scribble_down_to(const char* stop, int depth) {
  volatile char buf[Frame];
  for (size_t i = 0; i < Frame; ++i) buf[i] = char(depth + int(i));
  if (const_cast<const char*>(&buf[0]) <= stop || depth > 1'000'000) return buf[0];
  return scribble_down_to<Frame>(stop, depth + 1) + buf[Frame / 2];
}


}  // namespace

// ================================================ overflow reporting
// A guard-page hit is a fault, not a canary check: the handler
// (stack_fault_thread_init, run by init_thread) must name the goroutine and
// where it was created, and exit with status 2 like every fatal error.
TEST(context_stack, overflow_message_names_goroutine) {
  {
    core::Stack probe;
    ASSERT_TRUE(core::stack_get(nullptr, 0, &probe));
    ASSERT_TRUE(probe.guarded) << "a fresh process should be within its guard budget";
    core::stack_put(nullptr, &probe);
  }
  const uint32_t line = __LINE__;
  EXPECT_EXIT(
      {
        core::Fiber main;
        main.init_thread(0);
        core::Stack s;
        if (!core::stack_get(nullptr, 0, &s) || !s.guarded) std::abort();
        Task t;
        t.fiber.set_site(kSiteFile, line);
        if (!t.start_on(&main, s, [](Task&) { kc::recurse_forever(0); }, 7)) std::abort();
        t.resume();
      },
      ::testing::ExitedWithCode(2), overflow_regex(7, line));
}

// Beyond the guard budget, stacks are chunk slots with no guard page: a
// recursion that runs off the bottom writes into the neighbouring slot and
// nothing faults. The canary at the stack's lowest word is then found
// overwritten at the goroutine's next switch.
TEST(context_stack, overflow_unguarded_caught_by_canary) {
  const uint32_t line = __LINE__;
  EXPECT_EXIT(
      {
        core::stack_pool_trim();  // no warm (possibly guarded) stacks from before
        core::set_guarded_stack_budget(0);
        core::Fiber main;
        main.init_thread(0);
        // Two chunk slots, one directly below the other: the upper one's
        // overflow lands in the lower one (committed, unused), as it would
        // in a parked goroutine's stack.
        core::Stack a;
        core::Stack b;
        if (!core::stack_get(nullptr, 0, &a) || !core::stack_get(nullptr, 0, &b)) std::abort();
        if (a.guarded || b.guarded || a.chunk == nullptr || b.chunk == nullptr) std::abort();
        if (a.hi == b.lo) std::swap(a, b);
        if (b.hi != a.lo) std::abort();  // a is the upper one now
        Task t;
        t.fiber.set_site(kSiteFile, line);
        if (!t.start_on(&main, a, [](Task& self) {
              const core::Stack& s = self.fiber.stack();
              const char* stop = static_cast<const char*>(s.lo) - 8 * 1024;
              // Frame layouts leave a few unwritten bytes (return addresses
              // are written, alignment padding is not); should the canary
              // word fall into such a gap, overflow again with other frames.
              scribble_down_to<1024>(stop, 0);
              if (s.canary_ok()) scribble_down_to<1000>(stop, 0);
              if (s.canary_ok()) scribble_down_to<3000>(stop, 0);
              if (s.canary_ok()) {
                static const char kMsg[] = "test construction: no overflow reached the canary\n";
                os::write_err(kMsg, sizeof kMsg - 1);
                std::abort();
              }
              self.park();  // the switch away checks the canary
            }, 9))
          std::abort();
        t.resume();
      },
      ::testing::ExitedWithCode(2), overflow_regex(9, line));
}

// ================================================ the pool
TEST(context_stack, pool_reuses_stacks) {
  core::StackCache c;
  core::Stack s;
  ASSERT_TRUE(core::stack_get(&c, 0, &s));
  EXPECT_GE(s.size(), core::default_stack_size());
  EXPECT_TRUE(s.canary_ok());
  void* const first = s.lo;
  core::stack_put(&c, &s);
  EXPECT_FALSE(s.valid()) << "stack_put leaves the caller's copy empty";
  ASSERT_TRUE(core::stack_get(&c, 0, &s));
  EXPECT_EQ(s.lo, first) << "the per-P cache hands back the stack just put";

  // Through a fiber: create_on runs on the given stack, release_stack gives
  // the same stack back for the pool.
  core::Fiber main;
  main.init_thread(0);
  Task t;
  const void* ran_on = nullptr;
  ASSERT_TRUE(t.start_on(&main, s, [&](Task& self) {
    volatile char here = 0;
    ran_on = const_cast<const char*>(&here);
    (void)self;
  }, 3));
  t.resume();
  EXPECT_TRUE(t.done);
  EXPECT_TRUE(ran_on > s.lo && ran_on < s.hi) << "the fiber did not run on the stack it was given";
  core::Stack back = t.fiber.release_stack();
  EXPECT_EQ(back.lo, s.lo);
  EXPECT_FALSE(t.fiber.stack().valid());
  core::stack_put(&c, &back);

  // A full cache spills half to the global pool, which hands them out again.
  std::vector<core::Stack> v(core::StackCache::kCapacity + 1);
  for (auto& x : v) ASSERT_TRUE(core::stack_get(&c, 0, &x));
  const auto before = core::stack_pool_stats();
  for (auto& x : v) core::stack_put(&c, &x);
  const auto after = core::stack_pool_stats();
  EXPECT_LE(c.n, core::StackCache::kCapacity);
  EXPECT_EQ(after.warm - before.warm, int64_t(v.size()) - c.n) << "spilled stacks should be in the global pool";
  core::StackCache other;
  core::Stack y;
  ASSERT_TRUE(core::stack_get(&other, 0, &y));
  EXPECT_LT(core::stack_pool_stats().warm, after.warm) << "another P's cache refilled from the global pool";
  core::stack_put(&other, &y);
  core::stack_cache_flush(&other);
  EXPECT_EQ(other.n, 0);

  // Other sizes bypass the pool.
  core::Stack big;
  ASSERT_TRUE(core::stack_get(&c, 1024 * 1024, &big));
  EXPECT_GE(big.size(), size_t(1024 * 1024));
  EXPECT_EQ(big.chunk, nullptr);
  const int n_before = c.n;
  core::stack_put(&c, &big);
  EXPECT_EQ(c.n, n_before) << "a non-default stack must not enter the cache";
  core::stack_cache_flush(&c);
}

// Free stacks beyond the warm bound drop their pages: a burst of goroutines
// that each used 128 KiB of stack must not stay resident after they end.
TEST(context_stack, pool_drops_pages_of_excess_stacks) {
  core::stack_pool_trim();            // nothing warm left from before
  core::set_guarded_stack_budget(0);  // chunk slots: the path that decommits in place
  constexpr int kN = core::kWarmStacks + 400;
  constexpr size_t kUse = 128 * 1024;
  std::vector<core::Stack> v(kN);
  for (auto& s : v) {
    ASSERT_TRUE(core::stack_get(nullptr, 0, &s));
    ASSERT_NE(s.chunk, nullptr);
    auto* hi = static_cast<volatile char*>(s.hi);
    for (size_t off = 64; off <= kUse; off += os::page_size()) hi[-int64_t(off)] = 1;
  }
  const int64_t r1 = os::resident_memory_bytes();
  const auto s1 = core::stack_pool_stats();
  for (auto& s : v) core::stack_put(nullptr, &s);
  const int64_t r2 = os::resident_memory_bytes();
  const auto s2 = core::stack_pool_stats();
  EXPECT_GE(s2.scrubbed - s1.scrubbed, kN - core::kWarmStacks);
  EXPECT_EQ(s2.warm, core::kWarmStacks);
  core::stack_pool_trim();
  const int64_t r3 = os::resident_memory_bytes();
  const auto s3 = core::stack_pool_stats();
  EXPECT_EQ(s3.warm, 0);
  EXPECT_EQ(s3.chunks, 0) << "every chunk is free after a trim";
  core::reset_guarded_stack_budget();
  if (r1 < 0) GTEST_SKIP() << "resident_memory_bytes() is unknown on this target";
  const double mib = 1024.0 * 1024.0;
  kc::record_metric("resident_before_put", double(r1) / mib, "MiB");
  kc::record_metric("dropped_by_put", double(r1 - r2) / mib, "MiB");
  kc::record_metric("dropped_by_trim", double(r2 - r3) / mib, "MiB");
  const double excess = double(kN - core::kWarmStacks) * double(kUse);
  EXPECT_GT(double(r1 - r2), 0.75 * excess) << "scrubbed stacks kept their pages";
  EXPECT_GT(double(r1 - r3), 0.75 * double(kN) * double(kUse)) << "a trim kept pages resident";
}

// ================================================ scale
// 10^6 parked goroutines on a default Linux (vm.max_map_count 65530): one
// reservation per stack would need 10^6 mappings. Each stack is touched at
// its top, as a parked goroutine's is, and has its canary written.
#if defined(KEEL_TSAN_ENABLED)
// TSan maps 4 bytes of shadow per byte touched, page by page: each stack's
// two touched pages cost two more shadow pages, 16 GiB for 10^6.
constexpr int kMillion = 100'000;
#else
constexpr int kMillion = 1'000'000;
#endif

TEST(context_stack, million_stacks_within_map_budget) {
  const int n = kMillion;
  kc::record_metric("stacks", double(n), "");
  kc::record_metric("map_limit", double(os::max_memory_mappings()), "");
  std::vector<core::Stack> v(static_cast<size_t>(n));
  core::StackCache c;
  const int64_t r0 = os::resident_memory_bytes();
  const int64_t t0 = os::nanotime();
  for (int i = 0; i < n; ++i) {
    ASSERT_TRUE(core::stack_get(&c, 0, &v[size_t(i)])) << "stack " << i << " refused";
    static_cast<volatile char*>(v[size_t(i)].hi)[-64] = 1;  // the top frame of a parked goroutine
  }
  const int64_t t1 = os::nanotime();
  const int64_t r1 = os::resident_memory_bytes();
  // Where the process's mappings can be counted (Linux: the limit that
  // matters), show how many 10^6 stacks took. (Not through Wine: it opens
  // some other file under that name.)
  if (os::platform_info().emulation.rfind("Wine", 0) != 0) {
    std::ifstream maps("/proc/self/maps");
    std::string line;
    int64_t count = 0;
    while (std::getline(maps, line)) ++count;
    if (count > 0) kc::record_metric("mappings", double(count), "");
  }
  int64_t guarded = 0;
  for (const auto& s : v) guarded += s.guarded ? 1 : 0;
  const auto st = core::stack_pool_stats();
  const int64_t budget = core::guarded_stack_budget();
  if (budget >= 0) {
    EXPECT_LE(guarded, budget);
  }
  for (const auto& s : v) {
    if (!s.canary_ok()) {
      ADD_FAILURE() << "a stack came out without its canary";
      break;
    }
  }
  const int64_t t2 = os::nanotime();
  for (auto& s : v) core::stack_put(&c, &s);
  core::stack_cache_flush(&c);
  core::stack_pool_trim();
  const int64_t t3 = os::nanotime();
  const int64_t r3 = os::resident_memory_bytes();
  kc::record_metric("guarded", double(guarded), "");
  kc::record_metric("chunks", double(st.chunks), "");
  kc::record_metric("get_and_touch", double(t1 - t0) / 1e9, "s");
  kc::record_metric("put_and_trim", double(t3 - t2) / 1e9, "s");
  if (r0 < 0 || r1 < 0) GTEST_SKIP() << "resident_memory_bytes() is unknown on this target";
  const double per = double(r1 - r0) / n;
  kc::record_metric("resident_per_stack", per, "B");
  kc::record_metric("resident_after_trim", double(r3 - r0) / (1024.0 * 1024.0), "MiB");
  // About two pages (the canary page and the top page); bounded loosely.
  // Under TSan each touched page also makes a page of shadow resident (and
  // more: 17.8 KiB per stack measured).
#if defined(KEEL_TSAN_ENABLED)
  constexpr double kPages = 8;
#else
  constexpr double kPages = 4;
#endif
  EXPECT_LT(per, kPages * double(os::page_size())) << "a parked stack should cost about two pages";
  EXPECT_LT(r3 - r0, (r1 - r0) / 4) << "the pool kept the pages of 10^6 freed stacks";
}
