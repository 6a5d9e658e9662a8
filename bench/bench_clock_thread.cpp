// Contract slice 1: the clock, thread start/join, yield. Their floors
// (std::chrono, std::thread, std::this_thread::yield) are in
// bench/floor/floor_thread.cpp (keel-bench-floor).
#include <benchmark/benchmark.h>

#include "platform/os.h"

namespace os = keel::os;

static void BM_nanotime(benchmark::State& st) {
  for (auto _ : st) benchmark::DoNotOptimize(os::nanotime());
}
static void BM_walltime(benchmark::State& st) {
  for (auto _ : st) benchmark::DoNotOptimize(os::walltime());
}
static void BM_thread_yield(benchmark::State& st) {
  for (auto _ : st) os::thread_yield();
}
static void noop(void*) {}
static void BM_thread_start_join(benchmark::State& st) {
  for (auto _ : st) {
    os::Thread t;
    os::thread_start(&t, noop, nullptr);
    os::thread_join(t);
  }
}
static void BM_thread_cpu_time_self(benchmark::State& st) {
  const os::Thread me = os::thread_self();
  for (auto _ : st) benchmark::DoNotOptimize(os::thread_cpu_time_ns(me));
}

BENCHMARK(BM_nanotime);
BENCHMARK(BM_walltime);
BENCHMARK(BM_thread_yield);
BENCHMARK(BM_thread_start_join);
BENCHMARK(BM_thread_cpu_time_self);
