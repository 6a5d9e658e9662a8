// Context switching, goroutine stacks and the C++ hazards of switching
// (core/fiber.h over platform/arch): context.switch.*, context.stack.*,
// context.exceptions.* (DESIGN.md §3).
#include <gtest/gtest.h>

#include <cfenv>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "conformance/harness.h"
#include "core/fiber.h"
#include "core/stack.h"
#include "platform/os.h"

namespace kc = keel::conformance;
namespace os = keel::os;
namespace core = keel::core;

#define NOINLINE KC_NOINLINE

// Under ThreadSanitizer every context is also a TSan fiber: a full TSan
// thread state with a 1.2 MiB trace mapping, created and destroyed at ~0.6 ms
// each, and GCC 12's runtime allows at most 8128 threads and fibers alive.
// The counting tests scale down there (the count is recorded as a metric).
#include "platform/tsan_annotations.h"
#if defined(KEEL_TSAN_ENABLED)
#define KEEL_TEST_TSAN 1
#endif
#if defined(KEEL_TEST_TSAN)
constexpr int kCreateDestroyCycles = 5'000;
constexpr int kLiveContexts = 2'000;
#else
constexpr int kCreateDestroyCycles = 100'000;
constexpr int kLiveContexts = 10'000;
#endif

namespace {

// A context running body(*this) on its own stack, switching back to `back`
// whenever it parks, and for good when body returns.
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
  bool start(core::Fiber* main, std::function<void(Task&)> b, uint64_t id, size_t stack = 0) {
    back = main;
    body = std::move(b);
    return fiber.create(&Task::entry, this, id, stack);
  }
  void park() { core::fiber_switch(&fiber, back); }
  void resume() { core::fiber_switch(back, &fiber); }
};

// Recurses, ~1 KiB of stack per level (more under ASan), until a frame lies
// at or below `stop`, so a test can use a chosen share of a stack whatever
// the frame size. The sum keeps the calls from becoming a loop or a tail
// call; max_depth bounds it if locals ever live off the stack.
NOINLINE int recurse_until(const char* stop, int max_depth, const char** deepest) {
  volatile char buf[1024];
  buf[0] = char(max_depth);
  buf[sizeof buf - 1] = char(max_depth >> 8);
  const char* here = const_cast<const char*>(&buf[0]);
  if (here <= stop || max_depth == 0) {
    *deepest = here;
    return buf[0];
  }
  return recurse_until(stop, max_depth - 1, deepest) + buf[sizeof buf - 1];
}

// Use all of a stack but its lowest `spare` bytes.
int use_stack(const core::Stack& s, size_t spare, const char** deepest) {
  return recurse_until(static_cast<const char*>(s.lo) + spare, 100'000, deepest);
}

}  // namespace

// ============================================================ context.switch
TEST(context_switch, ping_pong) {
  core::Fiber main;
  main.init_thread(0);
  bool stop = false;
  int64_t seen = 0;
  Task t;
  ASSERT_TRUE(t.start(&main, [&](Task& self) {
    while (!stop) {
      ++seen;
      self.park();
    }
  }, 1));
  constexpr int64_t kRounds = 500'000;  // two switches each: 10^6 switches
  const int64_t t0 = os::nanotime();
  for (int64_t i = 0; i < kRounds; ++i) t.resume();
  const int64_t t1 = os::nanotime();
  stop = true;
  t.resume();
  EXPECT_TRUE(t.done);
  EXPECT_EQ(seen, kRounds);
  kc::record_metric("switch", double(t1 - t0) / double(2 * kRounds), "ns");
}

// Seed every callee-saved register with a known value, switch through
// core::fiber_switch from inside one asm block (so no compiler-generated
// save/restore can hide a missing one in the arch switch), and read them back
// bit for bit after something else has run with other values in them.
#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__aarch64__))
#define KEEL_SEEDED_SWITCH 1
namespace {
using SwitchFn = void (*)(core::Fiber*, core::Fiber*) noexcept;
#if defined(__x86_64__) && defined(_WIN32)
// Win64: rbx rbp rdi rsi r12-r15, xmm6-xmm15.
constexpr int kSeedWords = 8 + 20;
struct Seed {
  uint64_t v[kSeedWords];
  SwitchFn fn;
};
NOINLINE void seeded_switch(core::Fiber* from, core::Fiber* to, const Seed* seed, uint64_t* out) {
  register core::Fiber* a asm("rcx") = from;
  register core::Fiber* b asm("rdx") = to;
  register const Seed* s asm("r8") = seed;
  register uint64_t* o asm("r9") = out;
  asm volatile(
      "movq %%rsp, %%rax\n\t"
      "andq $-16, %%rsp\n\t"
      "pushq %%rax\n\t"
      "pushq %%rbp\n\t"
      "pushq %%r8\n\t"
      "pushq %%r9\n\t"
      "movq 0(%%r8), %%rbx\n\t"
      "movq 8(%%r8), %%rbp\n\t"
      "movq 16(%%r8), %%rdi\n\t"
      "movq 24(%%r8), %%rsi\n\t"
      "movq 32(%%r8), %%r12\n\t"
      "movq 40(%%r8), %%r13\n\t"
      "movq 48(%%r8), %%r14\n\t"
      "movq 56(%%r8), %%r15\n\t"
      "movdqu 64(%%r8), %%xmm6\n\t"
      "movdqu 80(%%r8), %%xmm7\n\t"
      "movdqu 96(%%r8), %%xmm8\n\t"
      "movdqu 112(%%r8), %%xmm9\n\t"
      "movdqu 128(%%r8), %%xmm10\n\t"
      "movdqu 144(%%r8), %%xmm11\n\t"
      "movdqu 160(%%r8), %%xmm12\n\t"
      "movdqu 176(%%r8), %%xmm13\n\t"
      "movdqu 192(%%r8), %%xmm14\n\t"
      "movdqu 208(%%r8), %%xmm15\n\t"
      "subq $32, %%rsp\n\t"
      "callq *224(%%r8)\n\t"
      "addq $32, %%rsp\n\t"
      "popq %%r9\n\t"
      "popq %%r8\n\t"
      "movq %%rbx, 0(%%r9)\n\t"
      "movq %%rbp, 8(%%r9)\n\t"
      "movq %%rdi, 16(%%r9)\n\t"
      "movq %%rsi, 24(%%r9)\n\t"
      "movq %%r12, 32(%%r9)\n\t"
      "movq %%r13, 40(%%r9)\n\t"
      "movq %%r14, 48(%%r9)\n\t"
      "movq %%r15, 56(%%r9)\n\t"
      "movdqu %%xmm6, 64(%%r9)\n\t"
      "movdqu %%xmm7, 80(%%r9)\n\t"
      "movdqu %%xmm8, 96(%%r9)\n\t"
      "movdqu %%xmm9, 112(%%r9)\n\t"
      "movdqu %%xmm10, 128(%%r9)\n\t"
      "movdqu %%xmm11, 144(%%r9)\n\t"
      "movdqu %%xmm12, 160(%%r9)\n\t"
      "movdqu %%xmm13, 176(%%r9)\n\t"
      "movdqu %%xmm14, 192(%%r9)\n\t"
      "movdqu %%xmm15, 208(%%r9)\n\t"
      "popq %%rbp\n\t"
      "popq %%rsp\n\t"
      : "+r"(a), "+r"(b), "+r"(s), "+r"(o)
      :
      : "rax", "r10", "r11", "rbx", "rdi", "rsi", "r12", "r13", "r14", "r15", "xmm0", "xmm1", "xmm2", "xmm3",
        "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15",
        "memory", "cc");
}
#elif defined(__x86_64__)
// SysV: rbx rbp r12-r15.
constexpr int kSeedWords = 6;
struct Seed {
  uint64_t v[kSeedWords];
  SwitchFn fn;
};
NOINLINE void seeded_switch(core::Fiber* from, core::Fiber* to, const Seed* seed, uint64_t* out) {
  asm volatile(
      "movq %%rsp, %%rax\n\t"
      "subq $128, %%rsp\n\t"  // step over the red zone
      "andq $-16, %%rsp\n\t"
      "pushq %%rax\n\t"
      "pushq %%rbp\n\t"
      "pushq %%rcx\n\t"
      "pushq %%rdx\n\t"
      "movq 0(%%rdx), %%rbx\n\t"
      "movq 8(%%rdx), %%rbp\n\t"
      "movq 16(%%rdx), %%r12\n\t"
      "movq 24(%%rdx), %%r13\n\t"
      "movq 32(%%rdx), %%r14\n\t"
      "movq 40(%%rdx), %%r15\n\t"
      "callq *48(%%rdx)\n\t"
      "popq %%rdx\n\t"
      "popq %%rcx\n\t"
      "movq %%rbx, 0(%%rcx)\n\t"
      "movq %%rbp, 8(%%rcx)\n\t"
      "movq %%r12, 16(%%rcx)\n\t"
      "movq %%r13, 24(%%rcx)\n\t"
      "movq %%r14, 32(%%rcx)\n\t"
      "movq %%r15, 40(%%rcx)\n\t"
      "popq %%rbp\n\t"
      "popq %%rsp\n\t"
      : "+D"(from), "+S"(to), "+d"(seed), "+c"(out)
      :
      : "rax", "r8", "r9", "r10", "r11", "rbx", "r12", "r13", "r14", "r15", "xmm0", "xmm1", "xmm2", "xmm3",
        "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15",
        "memory", "cc");
}
#else
// AAPCS64: x19-x29, d8-d15.
constexpr int kSeedWords = 11 + 8;
struct Seed {
  uint64_t v[kSeedWords];
  SwitchFn fn;
};
NOINLINE void seeded_switch(core::Fiber* from, core::Fiber* to, const Seed* seed, uint64_t* out) {
  register core::Fiber* a asm("x0") = from;
  register core::Fiber* b asm("x1") = to;
  register const Seed* s asm("x2") = seed;
  register uint64_t* o asm("x3") = out;
  asm volatile(
      "stp x2, x3, [sp, #-16]!\n\t"
      "stp x29, x30, [sp, #-16]!\n\t"
      "ldp x19, x20, [x2, #0]\n\t"
      "ldp x21, x22, [x2, #16]\n\t"
      "ldp x23, x24, [x2, #32]\n\t"
      "ldp x25, x26, [x2, #48]\n\t"
      "ldp x27, x28, [x2, #64]\n\t"
      "ldr x29, [x2, #80]\n\t"
      "ldp d8, d9, [x2, #88]\n\t"
      "ldp d10, d11, [x2, #104]\n\t"
      "ldp d12, d13, [x2, #120]\n\t"
      "ldp d14, d15, [x2, #136]\n\t"
      "ldr x9, [x2, #152]\n\t"
      "blr x9\n\t"
      "ldr x3, [sp, #24]\n\t"
      "stp x19, x20, [x3, #0]\n\t"
      "stp x21, x22, [x3, #16]\n\t"
      "stp x23, x24, [x3, #32]\n\t"
      "stp x25, x26, [x3, #48]\n\t"
      "stp x27, x28, [x3, #64]\n\t"
      "str x29, [x3, #80]\n\t"
      "stp d8, d9, [x3, #88]\n\t"
      "stp d10, d11, [x3, #104]\n\t"
      "stp d12, d13, [x3, #120]\n\t"
      "stp d14, d15, [x3, #136]\n\t"
      "ldp x29, x30, [sp], #16\n\t"
      "add sp, sp, #16\n\t"
      : "+r"(a), "+r"(b), "+r"(s), "+r"(o)
      :
      : "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13", "x14", "x15", "x16", "x17",
#if !defined(__APPLE__)
        "x18",
#endif
        "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28", "x30", "v0", "v1", "v2", "v3",
        "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12", "v13", "v14", "v15", "v16", "v17", "v18",
        "v19", "v20", "v21", "v22", "v23", "v24", "v25", "v26", "v27", "v28", "v29", "v30", "v31", "memory",
        "cc");
}
#endif

Seed make_seed(uint64_t salt) {
  Seed s{};
  for (int i = 0; i < kSeedWords; ++i) s.v[i] = 0x9e3779b97f4a7c15ull * uint64_t(i + 1) ^ salt;
  s.fn = &core::fiber_switch;
  return s;
}
}  // namespace
#endif

TEST(context_switch, callee_saved_preserved) {
#if !defined(KEEL_SEEDED_SWITCH)
  GTEST_SKIP() << "seeding registers needs GCC/Clang inline asm on x86_64 or aarch64 (MSVC x64 has none)";
#else
  core::Fiber main;
  main.init_thread(0);
  const Seed mine = make_seed(0x1111111111111111ull);
  const Seed theirs = make_seed(0xeeeeeeeeeeeeeeeeull);
  uint64_t mine_out[kSeedWords] = {};
  uint64_t theirs_out[kSeedWords] = {};
  Task t;
  ASSERT_TRUE(t.start(&main, [&](Task& self) { seeded_switch(&self.fiber, self.back, &theirs, theirs_out); }, 1));
  seeded_switch(&main, &t.fiber, &mine, mine_out);  // runs until the task's seeded switch back
  t.resume();                                       // the task reads its registers back and ends
  EXPECT_TRUE(t.done);
  for (int i = 0; i < kSeedWords; ++i) {
    EXPECT_EQ(mine_out[i], mine.v[i]) << "callee-saved slot " << i << " not preserved (switching thread side)";
    EXPECT_EQ(theirs_out[i], theirs.v[i]) << "callee-saved slot " << i << " not preserved (context side)";
  }
#endif
}

namespace {
NOINLINE double third() {
  volatile double a = 1.0, b = 3.0;
  return a / b;
}
uint64_t bits(double d) {
  uint64_t u;
  std::memcpy(&u, &d, sizeof u);
  return u;
}
}  // namespace

TEST(context_switch, fp_control_per_context) {
  ASSERT_EQ(std::fesetround(FE_TONEAREST), 0);
  const uint64_t nearest = bits(third());
  ASSERT_EQ(std::fesetround(FE_UPWARD), 0);
  const uint64_t upward = bits(third());
  ASSERT_EQ(std::fesetround(FE_TONEAREST), 0);
  ASSERT_NE(nearest, upward) << "rounding mode has no effect on this target";

  core::Fiber main;
  main.init_thread(0);
  int mode_before = -1, mode_after = -1;
  uint64_t q_after = 0;
  Task t;
  ASSERT_TRUE(t.start(&main, [&](Task& self) {
    std::fesetround(FE_UPWARD);
    mode_before = std::fegetround();
    self.park();
    mode_after = std::fegetround();
    q_after = bits(third());
  }, 1));
  t.resume();
  EXPECT_EQ(mode_before, FE_UPWARD);
  EXPECT_EQ(std::fegetround(), FE_TONEAREST) << "the context's rounding mode leaked into the thread";
  EXPECT_EQ(bits(third()), nearest) << "the context's SSE/FPCR rounding leaked into the thread";
  std::fesetround(FE_DOWNWARD);
  t.resume();
  EXPECT_TRUE(t.done);
  EXPECT_EQ(mode_after, FE_UPWARD) << "the context did not get its rounding mode back";
  EXPECT_EQ(q_after, upward);
  EXPECT_EQ(std::fegetround(), FE_DOWNWARD) << "the thread did not get its rounding mode back";
  std::fesetround(FE_TONEAREST);
}

// ======================================================== context.exceptions
namespace {
struct Counted {
  int* n;
  ~Counted() { ++*n; }
};
NOINLINE void throw_through(int depth, int* dtors) {
  Counted c{dtors};
  if (depth == 0) throw std::runtime_error("deep");
  throw_through(depth - 1, dtors);
}
}  // namespace

TEST(context_exceptions, throw_catch_on_context_stack) {
  core::Fiber main;
  main.init_thread(0);
  std::string what;
  int dtors = 0;
  Task t;
  ASSERT_TRUE(t.start(&main, [&](Task&) {
    try {
      throw_through(20, &dtors);
    } catch (const std::exception& e) {
      what = e.what();
    }
  }, 1));
  t.resume();
  EXPECT_TRUE(t.done);
  EXPECT_EQ(what, "deep");
  EXPECT_EQ(dtors, 21) << "unwinding skipped destructors";
}

TEST(context_exceptions, rethrow_after_park_in_catch) {
  if (!core::fiber_carries_exception_state())
    GTEST_SKIP() << "the MSVC runtime keeps exception state in a per-thread block with no public accessor";
  core::Fiber main;
  main.init_thread(0);
  std::string a_got, b_got, a_current;
  bool main_clean = false, main_caught = false;
  Task a, b;
  ASSERT_TRUE(a.start(&main, [&](Task& self) {
    try {
      throw std::runtime_error("from A");
    } catch (const std::exception&) {
      self.park();  // parked inside the catch block
      try {
        std::rethrow_exception(std::current_exception());
      } catch (const std::runtime_error& e) {
        a_current = e.what();
      }
      try {
        throw;
      } catch (const std::runtime_error& e) {
        a_got = e.what();
      }
    }
  }, 1));
  ASSERT_TRUE(b.start(&main, [&](Task&) {
    try {
      throw std::logic_error("from B");
    } catch (const std::exception& e) {
      b_got = e.what();
    }
  }, 2));
  a.resume();
  main_clean = std::current_exception() == nullptr && std::uncaught_exceptions() == 0;
  b.resume();
  try {
    throw std::out_of_range("from main");
  } catch (...) {
    main_caught = true;
  }
  a.resume();
  EXPECT_TRUE(a.done);
  EXPECT_TRUE(b.done);
  EXPECT_TRUE(main_clean) << "the parked context's caught exception leaked into the thread";
  EXPECT_TRUE(main_caught);
  EXPECT_EQ(b_got, "from B");
  EXPECT_EQ(a_current, "from A");
  EXPECT_EQ(a_got, "from A") << "throw; after resuming rethrew the wrong exception";
  EXPECT_EQ(std::current_exception(), nullptr);
}

namespace {
struct ParkInDestructor {
  Task* t;
  int* before;
  int* after;
  ~ParkInDestructor() {
    *before = std::uncaught_exceptions();
    t->park();  // parked in the middle of unwinding
    *after = std::uncaught_exceptions();
  }
};
}  // namespace

TEST(context_exceptions, uncaught_exceptions_per_context) {
  if (!core::fiber_carries_exception_state())
    GTEST_SKIP() << "the MSVC runtime keeps exception state in a per-thread block with no public accessor";
  core::Fiber main;
  main.init_thread(0);
  int before = -1, after = -1, in_main = -1, main_during_catch = -1;
  bool caught = false;
  Task a;
  ASSERT_TRUE(a.start(&main, [&](Task& self) {
    try {
      ParkInDestructor guard{&self, &before, &after};
      throw std::runtime_error("unwinding");
    } catch (const std::runtime_error&) {
      caught = true;
    }
  }, 1));
  a.resume();
  in_main = std::uncaught_exceptions();
  try {
    throw 1;
  } catch (int) {
    main_during_catch = std::uncaught_exceptions();
  }
  a.resume();
  EXPECT_TRUE(a.done);
  EXPECT_TRUE(caught);
  EXPECT_EQ(before, 1);
  EXPECT_EQ(after, 1) << "the context lost its in-flight exception count";
  EXPECT_EQ(in_main, 0) << "the context's in-flight exception counted on the thread";
  EXPECT_EQ(main_during_catch, 0);
  EXPECT_EQ(std::uncaught_exceptions(), 0);
}

// ============================================================= context.stack
TEST(context_stack, deep_recursion_uses_most_of_default) {
  core::Fiber main;
  main.init_thread(0);
  const char* deepest = nullptr;
  Task t;
  // Leave 48 KiB: enough below the deepest frame for the calls it makes and
  // the switch out; about 200 KiB of the 256 are used.
  ASSERT_TRUE(t.start(&main, [&](Task& self) { use_stack(self.fiber.stack(), 48 * 1024, &deepest); }, 1));
  const auto& s = t.fiber.stack();
  EXPECT_GE(s.size(), core::kDefaultStackSize);
  t.resume();
  EXPECT_TRUE(t.done);
  ASSERT_NE(deepest, nullptr);
  const auto* hi = static_cast<const char*>(s.hi);
  const auto* lo = static_cast<const char*>(s.lo);
  EXPECT_TRUE(deepest > lo && deepest < hi) << "recursion did not run on the context's stack";
  const double used = double(hi - deepest) / 1024;
  kc::record_metric("used", used, "KiB");
  EXPECT_GT(used, 180.0) << "expected to use most of the 256 KiB stack";
  EXPECT_TRUE(s.canary_ok());
}

TEST(context_stack, per_context_size_honoured) {
  core::Fiber main;
  main.init_thread(0);
  const char* deepest = nullptr;
  Task big, small;
  ASSERT_TRUE(big.start(&main, [&](Task& self) { use_stack(self.fiber.stack(), 64 * 1024, &deepest); }, 1, 1024 * 1024));
  ASSERT_TRUE(small.start(&main, [&](Task&) {}, 2, 64 * 1024));
  EXPECT_GE(big.fiber.stack().size(), size_t(1024 * 1024));
  EXPECT_LT(big.fiber.stack().size(), size_t(1024 * 1024) + 2 * os::alloc_granularity());
  EXPECT_GE(small.fiber.stack().size(), size_t(64 * 1024));
  EXPECT_LT(small.fiber.stack().size(), size_t(64 * 1024) + 2 * os::alloc_granularity());
  big.resume();
  small.resume();
  EXPECT_TRUE(big.done);
  EXPECT_TRUE(small.done);
  const double used = double(static_cast<const char*>(big.fiber.stack().hi) - deepest) / 1024;
  kc::record_metric("used_of_1MiB", used, "KiB");
  EXPECT_GT(used, 900.0);
}

TEST(context_stack, guard_page_faults) {
  core::Fiber probe;
  ASSERT_TRUE(probe.create([](void*) {}, nullptr, 1));
  ASSERT_TRUE(probe.stack().guarded) << "a fresh process should be within its mapping budget";
  probe.destroy();
  EXPECT_DEATH(
      {
        core::Fiber main;
        main.init_thread(0);
        Task t;
        if (!t.start(&main, [](Task&) { kc::recurse_forever(0); }, 7)) std::abort();
        t.resume();
      },
      "");
}

TEST(context_stack, canary_overwrite_is_fatal_on_switch) {
  EXPECT_DEATH(
      {
        core::Fiber main;
        main.init_thread(0);
        Task t;
        if (!t.start(&main, [](Task& self) {
              // What an overflow that skipped the guard page leaves behind.
              *static_cast<volatile uint64_t*>(self.fiber.stack().lo) = 0;
              self.park();
            }, 42))
          std::abort();
        t.resume();
      },
      "fatal error: goroutine 42 stack overflow");
}

TEST(context_stack, create_destroy_does_not_leak) {
  core::Fiber main;
  main.init_thread(0);
  auto cycle = [&] {
    Task t;
    if (!t.start(&main, [](Task& self) { const char* d; use_stack(self.fiber.stack(), 240 * 1024, &d); }, 1)) return false;
    t.resume();
    return t.done;
  };
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(cycle());
  const int64_t r0 = os::resident_memory_bytes();
  constexpr int kN = kCreateDestroyCycles;
  kc::record_metric("cycles", double(kN), "");
  const int64_t t0 = os::nanotime();
  for (int i = 0; i < kN; ++i) ASSERT_TRUE(cycle());
  const int64_t t1 = os::nanotime();
  const int64_t r1 = os::resident_memory_bytes();
  kc::record_metric("create_run_destroy", double(t1 - t0) / kN, "ns");
  if (r0 < 0 || r1 < 0) GTEST_SKIP() << "resident_memory_bytes() is unknown on this target";
  kc::record_metric("resident_growth", double(r1 - r0) / 1024, "KiB");
  EXPECT_LT(r1 - r0, int64_t(16) * 1024 * 1024) << kN << " contexts created and destroyed leaked memory";
}

TEST(context_stack, many_live_contexts) {
  core::Fiber main;
  main.init_thread(0);
  constexpr int kN = kLiveContexts;
  kc::record_metric("contexts", double(kN), "");
  std::vector<std::unique_ptr<Task>> tasks;
  tasks.reserve(kN);
  const int64_t r0 = os::resident_memory_bytes();
  for (int i = 0; i < kN; ++i) {
    tasks.push_back(std::make_unique<Task>());
    ASSERT_TRUE(tasks.back()->start(&main, [](Task& self) { self.park(); }, uint64_t(i + 1)));
    tasks.back()->resume();  // runs until it parks: every context has touched its stack
  }
  const int64_t r1 = os::resident_memory_bytes();
  int64_t guarded = 0;
  for (auto& t : tasks) guarded += t->fiber.stack().guarded ? 1 : 0;
  for (auto& t : tasks) {
    t->resume();
    EXPECT_TRUE(t->done);
  }
  kc::record_metric("guarded", double(guarded), "stacks");
  if (r0 < 0 || r1 < 0) GTEST_SKIP() << "resident_memory_bytes() is unknown on this target";
  const double per = double(r1 - r0) / kN / 1024;
  kc::record_metric("resident_per_context", per, "KiB");
#if !defined(KEEL_TEST_TSAN)
  // Not under TSan: its own per-fiber state (~870 KiB resident measured)
  // dwarfs the stack pages this bound is about.
  EXPECT_LT(per, 64.0) << "a parked context should cost a few pages, not its whole stack";
#endif
}
