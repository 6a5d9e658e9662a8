// Boost.Fiber twins of keel's benchmarks, where Boost.Fiber has the feature
// (docs/PERFORMANCE.md). Built only by ci/bench-compare.sh
// (-DKEEL_BENCH_FIBER=ON): no CI leg needs Boost. Boost.Fiber's default
// scheduler (round_robin) runs every fiber on the thread that made it, so
// these are all one-thread numbers: the twins of keel's 1-P rows.
//  - spawn+join: make one fiber (default stack) that does nothing, join it;
//  - yield ping-pong: two fibers each calling this_fiber::yield() in a loop;
//    one iteration = one round (two yields), as BM_gosched_pingpong_manual;
//  - channel ping-pong: a ping and a pong unbuffered_channel between two
//    fibers; one iteration = one round trip (two messages);
//  - producer/consumer over an unbuffered_channel (cap 0 only: a
//    buffered_channel's capacity must be a power of two, so 10 and 100 have
//    no exact twin); one iteration = one item;
//  - skynet 1M (the tree of 1,111,111 fibers, 10 children each, sums
//    0..999999 = 499999500000): wall time per tree and peak resident growth
//    per fiber (rss_per_goroutine, bytes). Stacks are 2 pages from the heap,
//    as in Boost.Fiber's own skynet (performance/fiber/skynet_*): the
//    default 128 KiB stacks would not fit a million in one address space map
//    budget.
#include <benchmark/benchmark.h>

#include <sys/resource.h>

#include <boost/fiber/all.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>

namespace fibers = boost::fibers;

namespace {

void BM_fiber_spawn_join(benchmark::State& st) {
  for (auto _ : st) {
    fibers::fiber f([] {});
    f.join();
  }
}
BENCHMARK(BM_fiber_spawn_join)->UseRealTime();

void BM_fiber_yield_pingpong(benchmark::State& st) {
  for (auto _ : st) {
    const int64_t rounds = 100'000;
    const auto t0 = std::chrono::steady_clock::now();
    auto body = [rounds] {
      for (int64_t i = 0; i < rounds; i++) boost::this_fiber::yield();
    };
    fibers::fiber a(body), b(body);
    a.join();
    b.join();
    const auto t1 = std::chrono::steady_clock::now();
    st.SetIterationTime(std::chrono::duration<double>(t1 - t0).count() / double(rounds));
  }
}
BENCHMARK(BM_fiber_yield_pingpong)->UseManualTime()->Iterations(20);

void BM_fiber_chan_pingpong(benchmark::State& st) {
  fibers::unbuffered_channel<int> ping, pong;
  fibers::fiber partner([&] {
    int v;
    while (ping.pop(v) == fibers::channel_op_status::success) pong.push(v);
  });
  int v = 0;
  for (auto _ : st) {
    ping.push(v);
    pong.pop(v);
  }
  ping.close();
  partner.join();
}
BENCHMARK(BM_fiber_chan_pingpong)->UseRealTime();

void BM_fiber_chan_prodcons_unbuffered(benchmark::State& st) {
  fibers::unbuffered_channel<int64_t> ch;
  const int64_t n = st.max_iterations;
  int64_t sum = 0;
  fibers::fiber consumer([&] {
    int64_t v;
    while (ch.pop(v) == fibers::channel_op_status::success) sum += v;
  });
  for (auto _ : st) ch.push(1);
  ch.close();
  consumer.join();
  if (sum != n) st.SkipWithError("lost items");
}
BENCHMARK(BM_fiber_chan_prodcons_unbuffered)->UseRealTime();

// ------------------------------------------------------------------ skynet
using Chan = fibers::buffered_channel<uint64_t>;

void skynet(fibers::fixedsize_stack salloc, Chan& c, uint64_t num, uint64_t size, uint64_t div) {
  if (size == 1) {
    c.push(num);
    return;
  }
  Chan rc{16};
  for (uint64_t i = 0; i < div; ++i) {
    const uint64_t sub = num + i * (size / div);
    fibers::fiber(std::allocator_arg, salloc, skynet, salloc, std::ref(rc), sub, size / div, div).detach();
  }
  uint64_t sum = 0;
  for (uint64_t i = 0; i < div; ++i) sum += rc.value_pop();
  c.push(sum);
}

int64_t resident_bytes() {
  std::ifstream f("/proc/self/statm");
  int64_t size = 0, rss = -1;
  f >> size >> rss;
  return rss < 0 ? -1 : rss * 4096;
}

void BM_fiber_skynet_1m(benchmark::State& st) {
  fibers::fixedsize_stack salloc{2 * fibers::fixedsize_stack::traits_type::page_size()};
  const int64_t r0 = resident_bytes();
  for (auto _ : st) {
    Chan c{2};
    fibers::fiber(std::allocator_arg, salloc, skynet, salloc, std::ref(c), 0, 1'000'000, 10).detach();
    const uint64_t r = c.value_pop();
    if (r != 499999500000ull) {
      st.SkipWithError("wrong skynet sum");
      return;
    }
  }
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  st.counters["rss_per_goroutine"] = double(ru.ru_maxrss * 1024 - r0) / 1'111'111.0;
  st.counters["peak_rss_MiB"] = double(ru.ru_maxrss) / 1024.0;  // as keel's and Go's skynet report it
}
BENCHMARK(BM_fiber_skynet_1m)->UseRealTime()->Unit(benchmark::kMillisecond)->Iterations(1);

}  // namespace

BENCHMARK_MAIN();
