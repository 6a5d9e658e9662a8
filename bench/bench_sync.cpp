// Issue 6 benchmarks for keel/sync.h, each the twin of a Go benchmark in
// bench/go/sync_test.go (same shape, same batch sizes), so the two can be run
// side by side:
//  - contended Mutex: a batch of 10,000 lock/++/unlock split over 1, 4 or 16
//    goroutines (items/s = lock/unlock pairs per second);
//  - WaitGroup fan-out: add(N), spawn N goroutines that each done(), wait();
//  - uncontended lock/unlock on one goroutine (and on a plain thread);
//  - contended Mutex between plain threads.
// The std::mutex floors are in bench/floor/floor_park.cpp (keel-bench-floor).
// Numbers only: nothing here gates CI. The Ps default to the CPU count
// (KEEL_MAXPROCS overrides), as Go's GOMAXPROCS.
#include <benchmark/benchmark.h>

#include <cstdint>

#include <keel/keel.h>

namespace {

constexpr int kBatch = 10'000;

// One keel::run per benchmark run; the batches run inside it.
template <class F>
void in_runtime(F&& f) {
  keel::run(std::forward<F>(f));
}

void BM_mutex_contended(benchmark::State& st) {
  const int n = static_cast<int>(st.range(0));
  keel::Mutex mu;
  uint64_t counter = 0;
  in_runtime([&] {
    for (auto _ : st) {
      keel::WaitGroup wg;
      wg.add(n);
      for (int g = 0; g < n; ++g)
        keel::go([&, per = kBatch / n] {
          for (int i = 0; i < per; ++i) {
            mu.lock();
            ++counter;
            mu.unlock();
          }
          wg.done();
        });
      wg.wait();
    }
  });
  benchmark::DoNotOptimize(counter);
  st.SetItemsProcessed(st.iterations() * (kBatch / n) * n);
}
BENCHMARK(BM_mutex_contended)->Arg(1)->Arg(4)->Arg(16)->UseRealTime();

void BM_waitgroup_fanout(benchmark::State& st) {
  const int n = static_cast<int>(st.range(0));
  in_runtime([&] {
    for (auto _ : st) {
      keel::WaitGroup wg;
      wg.add(n);
      for (int g = 0; g < n; ++g) keel::go([&wg] { wg.done(); });
      wg.wait();
    }
  });
  st.SetItemsProcessed(st.iterations() * n);  // goroutines per second
}
BENCHMARK(BM_waitgroup_fanout)->Arg(100)->Arg(1000)->UseRealTime();

void BM_mutex_uncontended_goroutine(benchmark::State& st) {
  keel::Mutex mu;
  in_runtime([&] {
    for (auto _ : st) {
      mu.lock();
      mu.unlock();
    }
  });
}
BENCHMARK(BM_mutex_uncontended_goroutine)->UseRealTime();

template <class M>
void BM_mutex_uncontended_thread(benchmark::State& st) {
  static M mu;
  for (auto _ : st) {
    mu.lock();
    mu.unlock();
  }
}
BENCHMARK_TEMPLATE(BM_mutex_uncontended_thread, keel::Mutex);

template <class M>
struct Shared {
  static M mu;
  static uint64_t counter;
};
template <class M>
M Shared<M>::mu;
template <class M>
uint64_t Shared<M>::counter;

template <class M>
void BM_mutex_contended_threads(benchmark::State& st) {
  for (auto _ : st) {
    Shared<M>::mu.lock();
    ++Shared<M>::counter;
    Shared<M>::mu.unlock();
  }
}
BENCHMARK_TEMPLATE(BM_mutex_contended_threads, keel::Mutex)->ThreadRange(1, 8)->UseRealTime();

}  // namespace
