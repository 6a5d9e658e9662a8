// Contract slice 1 beside its floor, in one binary: keel's clock against
// std::chrono, thread start/join against std::thread, yield against
// std::this_thread::yield. Report ratios from one run.
#include <benchmark/benchmark.h>

#include <chrono>
#include <thread>

#include "platform/os.h"

namespace os = keel::os;

static void BM_nanotime(benchmark::State& st) {
  for (auto _ : st) benchmark::DoNotOptimize(os::nanotime());
}
static void BM_floor_steady_clock_now(benchmark::State& st) {
  for (auto _ : st) benchmark::DoNotOptimize(std::chrono::steady_clock::now());
}
static void BM_walltime(benchmark::State& st) {
  for (auto _ : st) benchmark::DoNotOptimize(os::walltime());
}
static void BM_thread_yield(benchmark::State& st) {
  for (auto _ : st) os::thread_yield();
}
static void BM_floor_std_yield(benchmark::State& st) {
  for (auto _ : st) std::this_thread::yield();
}
static void noop(void*) {}
static void BM_thread_start_join(benchmark::State& st) {
  for (auto _ : st) {
    os::Thread t;
    os::thread_start(&t, noop, nullptr);
    os::thread_join(t);
  }
}
static void BM_floor_std_thread_start_join(benchmark::State& st) {
  for (auto _ : st) std::thread([] {}).join();
}
static void BM_thread_cpu_time_self(benchmark::State& st) {
  const os::Thread me = os::thread_self();
  for (auto _ : st) benchmark::DoNotOptimize(os::thread_cpu_time_ns(me));
}

// Interleaved keel/floor pairs so drift on a noisy machine hits both sides.
BENCHMARK(BM_nanotime);
BENCHMARK(BM_floor_steady_clock_now);
BENCHMARK(BM_walltime);
BENCHMARK(BM_thread_yield);
BENCHMARK(BM_floor_std_yield);
BENCHMARK(BM_thread_start_join);
BENCHMARK(BM_floor_std_thread_start_join);
BENCHMARK(BM_thread_cpu_time_self);
