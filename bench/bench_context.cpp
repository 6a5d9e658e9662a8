// Issue 6 benchmarks: the cost of one context switch, beside its floors in
// the same binary:
//  - keel_context_switch alone (platform/arch: registers + FP control words);
//  - core::fiber_switch (adds the canary check, the C++ exception state swap
//    and, in sanitizer builds, the sanitizer hand-offs);
//  - ucontext swapcontext (Linux glibc: also a sigprocmask syscall per switch);
//  - a std::mutex + condition_variable hand-off between two OS threads, the
//    cost a goroutine switch replaces.
// Each iteration is one round trip (two switches). Numbers only.
#include <benchmark/benchmark.h>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "core/fiber.h"
#include "core/stack.h"
#include "platform/arch/context.h"

#if defined(__linux__) && defined(__GLIBC__)
#include <ucontext.h>
#endif

namespace core = keel::core;
namespace arch = keel::arch;

// ------------------------------------------------------------- raw arch
namespace {
arch::Context g_main_ctx, g_other_ctx;
void raw_entry(void*) {
  for (;;) keel_context_switch(&g_other_ctx, &g_main_ctx);
}
}  // namespace

static void BM_context_raw_arch_roundtrip(benchmark::State& st) {
  core::Stack s;
  if (!core::stack_alloc(&s)) {
    st.SkipWithError("no stack");
    return;
  }
  const arch::ContextStack cs{s.lo, s.hi, s.reserved_lo};
  keel_context_make(&g_other_ctx, &cs, raw_entry, nullptr);
  for (auto _ : st) keel_context_switch(&g_main_ctx, &g_other_ctx);
  // The other context stays parked in its loop; its stack goes away with it.
  core::stack_free(&s);
}
BENCHMARK(BM_context_raw_arch_roundtrip);

// ------------------------------------------------------------- core fiber
namespace {
struct Pair {
  core::Fiber main, other;
  bool stop = false;
};
void fiber_entry(void* p) {
  auto* pr = static_cast<Pair*>(p);
  while (!pr->stop) core::fiber_switch(&pr->other, &pr->main);
  core::fiber_exit(&pr->other, &pr->main);
}
}  // namespace

static void BM_context_fiber_roundtrip(benchmark::State& st) {
  Pair p;
  p.main.init_thread(0);
  if (!p.other.create(fiber_entry, &p, 1)) {
    st.SkipWithError("no stack");
    return;
  }
  for (auto _ : st) core::fiber_switch(&p.main, &p.other);
  p.stop = true;
  core::fiber_switch(&p.main, &p.other);
}
BENCHMARK(BM_context_fiber_roundtrip);

static void BM_context_create_run_destroy(benchmark::State& st) {
  core::Fiber main;
  main.init_thread(0);
  struct Once {
    core::Fiber f;
    core::Fiber* back;
  };
  for (auto _ : st) {
    Once o;
    o.back = &main;
    o.f.create([](void* p) {
      auto* x = static_cast<Once*>(p);
      core::fiber_exit(&x->f, x->back);
    }, &o, 1);
    core::fiber_switch(&main, &o.f);
  }
}
BENCHMARK(BM_context_create_run_destroy);

// ------------------------------------------------------------- floors
#if defined(__linux__) && defined(__GLIBC__)
namespace {
ucontext_t g_uc_main, g_uc_other;
void uc_entry() {
  for (;;) swapcontext(&g_uc_other, &g_uc_main);
}
}  // namespace

static void BM_floor_ucontext_swapcontext_roundtrip(benchmark::State& st) {
  static char stack[256 * 1024];
  getcontext(&g_uc_other);
  g_uc_other.uc_stack.ss_sp = stack;
  g_uc_other.uc_stack.ss_size = sizeof stack;
  g_uc_other.uc_link = nullptr;
  makecontext(&g_uc_other, uc_entry, 0);
  for (auto _ : st) swapcontext(&g_uc_main, &g_uc_other);
}
BENCHMARK(BM_floor_ucontext_swapcontext_roundtrip);
#endif

static void BM_floor_thread_handoff_roundtrip(benchmark::State& st) {
  std::mutex mu;
  std::condition_variable cv;
  int turn = 0;  // 0: main's, 1: partner's, 2: stop
  std::thread partner([&] {
    std::unique_lock<std::mutex> lk(mu);
    for (;;) {
      cv.wait(lk, [&] { return turn != 0; });
      if (turn == 2) return;
      turn = 0;
      cv.notify_all();
    }
  });
  {
    std::unique_lock<std::mutex> lk(mu);
    for (auto _ : st) {
      turn = 1;
      cv.notify_all();
      cv.wait(lk, [&] { return turn == 0; });
    }
    turn = 2;
    cv.notify_all();
  }
  partner.join();
}
BENCHMARK(BM_floor_thread_handoff_roundtrip)->UseRealTime();
