// Issue 6 scheduler benchmarks, each the twin of a Go benchmark in
// bench/go/sched_test.go (same shape), run side by side by
// bench/compare_sched.sh:
//  - spawn+join: go() one goroutine that calls done(), wait() for it — the
//    latency of creating, running, ending and joining one goroutine;
//  - gosched ping-pong: two goroutines each calling gosched() in a loop; one
//    iteration = one round (two gosched calls). Meant for one P
//    (KEEL_MAXPROCS=1, Go -cpu 1): then every gosched is a switch.
// Numbers only: nothing here gates CI.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdint>

#include <keel/keel.h>

namespace {

void BM_spawn_join(benchmark::State& st) {
  keel::run([&] {
    for (auto _ : st) {
      keel::WaitGroup wg;
      wg.add(1);
      keel::go([&wg] { wg.done(); });
      wg.wait();
    }
  });
}
BENCHMARK(BM_spawn_join)->UseRealTime();

}  // namespace

// gosched ping-pong needs its own timing (the work is not inside the state
// loop), so it is measured manually: one iteration = one round.
static void BM_gosched_pingpong_manual(benchmark::State& st) {
  for (auto _ : st) {
    const int64_t rounds = 100'000;
    const auto t0 = std::chrono::steady_clock::now();
    keel::run([&] {
      keel::WaitGroup wg;
      wg.add(2);
      for (int g = 0; g < 2; g++) {
        keel::go([&wg, rounds] {
          for (int64_t i = 0; i < rounds; i++) keel::gosched();
          wg.done();
        });
      }
      wg.wait();
    });
    const auto t1 = std::chrono::steady_clock::now();
    st.SetIterationTime(std::chrono::duration<double>(t1 - t0).count() / double(rounds));
  }
  st.counters["procs"] = keel::maxprocs();
}
BENCHMARK(BM_gosched_pingpong_manual)->UseManualTime()->Iterations(20);
