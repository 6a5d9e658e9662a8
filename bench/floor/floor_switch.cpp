// The OS floor of a goroutine switch: what a switch costs with nothing but
// the switch. Each iteration is one round trip (two switches).
//  - the raw platform/arch switch (registers + FP control words, the same
//    keel_context_switch core::fiber_switch is built on): the floor of
//    gosched ping-pong on one P;
//  - the same switch without the FP control words (x86_64 SysV,
//    floor_switch_x86_64_sysv.S), as Go switches goroutines: what the FP
//    words cost;
//  - ucontext swapcontext (Linux glibc: also a sigprocmask syscall per switch);
//  - a std::mutex + condition_variable hand-off between two OS threads is
//    BM_floor_condvar_pingpong in floor_park.cpp.
// Numbers only: nothing here gates CI.
#include <benchmark/benchmark.h>

#include "core/stack.h"
#include "platform/arch/context.h"

#if defined(__linux__) && defined(__GLIBC__)
#include <ucontext.h>
#endif

namespace core = keel::core;
namespace arch = keel::arch;

namespace {
arch::Context g_main_ctx, g_other_ctx;
void raw_entry(void*) {
  for (;;) keel_context_switch(&g_other_ctx, &g_main_ctx);
}
}  // namespace

static void BM_floor_raw_switch_roundtrip(benchmark::State& st) {
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
BENCHMARK(BM_floor_raw_switch_roundtrip);

#if defined(__x86_64__) && !defined(_WIN32)
extern "C" void keel_floor_switch_nofp(arch::Context* from, const arch::Context* to) noexcept;
namespace {
using SwitchFn = void (*)(arch::Context*, const arch::Context*) noexcept;
arch::Context g_v_main, g_v_other;
SwitchFn g_v_switch;
void variant_entry(void*) {
  for (;;) g_v_switch(&g_v_other, &g_v_main);
}
template <SwitchFn Fn>
void switch_variant(benchmark::State& st) {
  core::Stack s;
  if (!core::stack_alloc(&s)) {
    st.SkipWithError("no stack");
    return;
  }
  g_v_switch = Fn;
  const arch::ContextStack cs{s.lo, s.hi, s.reserved_lo};
  keel_context_make(&g_v_other, &cs, variant_entry, nullptr);
  for (auto _ : st) Fn(&g_v_main, &g_v_other);
  core::stack_free(&s);
}
}  // namespace
static void BM_floor_raw_switch_nofp_roundtrip(benchmark::State& st) { switch_variant<keel_floor_switch_nofp>(st); }
BENCHMARK(BM_floor_raw_switch_nofp_roundtrip);
#endif

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
