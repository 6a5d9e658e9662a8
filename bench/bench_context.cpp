// Issue 6 benchmarks: the cost of one goroutine context switch in the core:
//  - core::fiber_switch (the raw platform/arch switch plus the canary check,
//    the C++ exception state swap and, in sanitizer builds, the sanitizer
//    hand-offs);
//  - create + run + destroy of one fiber.
// Their floors (the raw arch switch alone, ucontext, a thread hand-off) are
// in bench/floor/ (keel-bench-floor); ci/bench-compare.sh runs them side by
// side. Each iteration is one round trip (two switches). Numbers only.
#include <benchmark/benchmark.h>

#include "core/fiber.h"
#include "core/stack.h"

namespace core = keel::core;

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
