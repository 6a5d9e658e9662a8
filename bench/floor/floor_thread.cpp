// The OS floor of the thread primitives goroutines replace:
//  - std::thread spawn + join (the floor of keel's BM_spawn_join);
//  - std::this_thread::yield and std::chrono::steady_clock::now (the floors of
//    os::thread_yield and os::nanotime, bench_clock_thread.cpp).
// Numbers only: nothing here gates CI.
#include <benchmark/benchmark.h>

#include <chrono>
#include <thread>

static void BM_floor_std_thread_spawn_join(benchmark::State& st) {
  for (auto _ : st) std::thread([] {}).join();
}
BENCHMARK(BM_floor_std_thread_spawn_join)->UseRealTime();

static void BM_floor_std_yield(benchmark::State& st) {
  for (auto _ : st) std::this_thread::yield();
}
BENCHMARK(BM_floor_std_yield);

static void BM_floor_steady_clock_now(benchmark::State& st) {
  for (auto _ : st) benchmark::DoNotOptimize(std::chrono::steady_clock::now());
}
BENCHMARK(BM_floor_steady_clock_now);
