// Issue 7 timer benchmark, the twin of BenchmarkTimerStorm in
// bench/go/time_test.go (Go #41699's shape): 50,000 goroutines, each doing
// ten rounds of Reset(10 s), Reset(10 s), sleep 20 ms on its own timer. The
// resets churn the per-P heaps (a removal and an insertion each); the sleeps
// make every M go idle and sleep until the earliest timer, then wake — the
// path that burned CPU in Go 1.14 (#41699, #38860).
//
// The figure is CPU time (the whole process's, user + system) per storm,
// reported as the manual time and as the counter cpu_ns (bench/rows.txt
// reads that); wall time is the counter wall_ms. Numbers only.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>

#include <keel/keel.h>
#include <keel/time.h>

#include "platform/os.h"

namespace {

constexpr int kGoroutines = 50'000;
constexpr int kRounds = 10;

void BM_timer_storm(benchmark::State& st) {
  using namespace std::chrono_literals;
  double wall_ms = 0, cpu_ns = 0;
  // One runtime for every storm, as Go's benchmark runs b.N storms in one
  // process.
  keel::run([&] {
    for (auto _ : st) {
      const int64_t c0 = keel::os::process_cpu_time_ns();
      const int64_t t0 = keel::os::nanotime();
      keel::WaitGroup wg;
      wg.add(kGoroutines);
      for (int g = 0; g < kGoroutines; g++) {
        keel::go([&wg] {
          keel::Timer t(10s);
          for (int r = 0; r < kRounds; r++) {
            t.reset(10s);
            t.reset(10s);
            keel::sleep_for(20ms);
          }
          t.stop();
          wg.done();
        });
      }
      wg.wait();
      const int64_t c1 = keel::os::process_cpu_time_ns();
      wall_ms += double(keel::os::nanotime() - t0) / 1e6;
      cpu_ns += double(c1 - c0);
      st.SetIterationTime(double(c1 - c0) / 1e9);
    }
  });
  st.counters["wall_ms"] = wall_ms / double(st.iterations());
  st.counters["cpu_ns"] = cpu_ns / double(st.iterations());
  st.counters["procs"] = keel::maxprocs();
}
BENCHMARK(BM_timer_storm)->UseManualTime()->Iterations(3)->Unit(benchmark::kMillisecond);

}  // namespace
