// Issue 6 scheduler benchmarks, each the twin of a Go benchmark in
// bench/go/sched_test.go or bench/go/runtime_test.go (same shape), run side
// by side by ci/bench-compare.sh:
//  - spawn+join: go() one goroutine that calls done(), wait() for it — the
//    latency of creating, running, ending and joining one goroutine;
//  - gosched ping-pong: two goroutines each calling gosched() in a loop; one
//    iteration = one round (two gosched calls). Meant for one P
//    (KEEL_MAXPROCS=1, Go -cpu 1): then every gosched is a switch;
//  - cross-P wake latency (2 Ps): a goroutine parked on a WaitGroup on the
//    other P (its M asleep in the OS), the main goroutine stamps t0 and calls
//    done(), the woken goroutine stamps t1 when it runs; p50/p90 of t1 - t0
//    (its floor: BM_floor_wake_latency, two plain threads on a futex);
//  - 10^6 parked goroutines: spawn 10^6 goroutines that each park on one
//    WaitGroup; resident memory per goroutine while all are parked
//    (rss_per_goroutine, bytes), then release them. One iteration per process.
// ci/bench-compare.sh runs them beside their twins (docs/PERFORMANCE.md).
// Numbers only: nothing here gates CI.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <vector>

#include <keel/keel.h>

#include "platform/os.h"

namespace os = keel::os;

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

static void spin_for(int64_t ns) {
  const int64_t end = os::nanotime() + ns;
  while (os::nanotime() < end) {
  }
}

// One sample per iteration. The waiter is spawned and parks on a WaitGroup;
// main spins (never parks, so the waiter cannot run on main's P) until the
// waiter's P has been idle for 200 us, then stamps t0 and wakes it. goready
// puts the waiter in main's runnext and wakes an idle P, whose M steals it:
// t1 - t0 is the whole cross-thread wake (futex wake of the idle M, its
// steal, the switch to the goroutine). Same shape as Go's
// BenchmarkWakeLatencyCrossP and BM_floor_wake_latency. Needs 2 Ps.
static void BM_wake_latency_cross_p(benchmark::State& st) {
  std::vector<int64_t> samples;
  samples.reserve(size_t(st.max_iterations));
  keel::run([&] {
    for (auto _ : st) {
      keel::WaitGroup wg;
      wg.add(1);
      std::atomic<bool> waiting{false};
      std::atomic<int64_t> t1{0};
      keel::go([&] {
        waiting.store(true, std::memory_order_release);
        wg.wait();
        t1.store(os::nanotime(), std::memory_order_release);
      });
      while (!waiting.load(std::memory_order_acquire)) {
      }
      spin_for(200'000);
      const int64_t t0 = os::nanotime();
      wg.done();
      int64_t back;
      while ((back = t1.load(std::memory_order_acquire)) == 0) {
      }
      samples.push_back(back - t0);
      st.SetIterationTime(double(back - t0) / 1e9);
      while (keel::num_goroutine() > 1) keel::gosched();  // the waiter is gone before its frame goes
    }
  });
  std::sort(samples.begin(), samples.end());
  if (!samples.empty()) {
    st.counters["p50_ns"] = double(samples[samples.size() / 2]);
    st.counters["p90_ns"] = double(samples[samples.size() * 9 / 10]);
  }
  st.counters["procs"] = keel::maxprocs();
}
BENCHMARK(BM_wake_latency_cross_p)->UseManualTime()->Iterations(2000);

// 10^6 goroutines parked at once (the twin of Go's BenchmarkParked1M).
static void BM_parked_1m(benchmark::State& st) {
  constexpr int kN = 1'000'000;
  double per = 0;
  keel::run([&] {
    for (auto _ : st) {
      keel::WaitGroup parked, gate, ended;
      parked.add(kN);
      gate.add(1);
      ended.add(kN);
      const int64_t r0 = os::resident_memory_bytes();
      for (int i = 0; i < kN; i++) {
        keel::go([&] {
          parked.done();
          gate.wait();
          ended.done();
        });
      }
      parked.wait();
      keel::gosched();  // let the last ones finish switching away
      const int64_t r1 = os::resident_memory_bytes();
      per = double(r1 - r0) / kN;
      gate.done();
      ended.wait();
    }
  });
  st.counters["rss_per_goroutine"] = per;
}
BENCHMARK(BM_parked_1m)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);
