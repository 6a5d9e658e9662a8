// Issue 7 channel benchmarks, each the twin of a Go benchmark in
// bench/go/chan_test.go (same shape):
//  - BM_chan_pingpong_same_p / _cross_p: one round trip per iteration over
//    two unbuffered channels between the main goroutine and a partner.
//    same_p needs KEEL_MAXPROCS=1, cross_p KEEL_MAXPROCS=2, each in a fresh
//    process (the Ps are fixed by the first keel::run); with other settings
//    they report an error instead of a mislabelled number. (Go's twins set
//    GOMAXPROCS themselves.)
//  - BM_chan_prodcons/<cap>: one producer goroutine, the main goroutine
//    consuming; time per message.
//  - BM_select4_one_ready: fill one of four capacity-1 channels, then a
//    select over the four receives (exactly one ready); per select.
//  - BM_skynet_1m: the skynet benchmark (a 10-ary tree of goroutines,
//    10^6 leaves, sums flowing up through unbuffered channels), wall time
//    per tree, peak RSS as a counter. Goroutines use the default stack
//    size on purpose: only default-size stacks come from the stack pool
//    (core/stack_pool.h); GoOptions{.stack_size = 64 KiB} costs an
//    mmap/mprotect/munmap per goroutine (measured 12.9 s instead of 2.8 s).
// Numbers only: nothing here gates CI.
#include <benchmark/benchmark.h>

#include <sys/resource.h>

#include <cstdint>
#include <cstdlib>
#include <optional>

#include <keel/keel.h>

namespace {

void pingpong(benchmark::State& st, int procs) {
  if (keel::maxprocs() != procs) {
    st.SkipWithError(procs == 1 ? "run with KEEL_MAXPROCS=1 in a fresh process" : "run with KEEL_MAXPROCS=2 in a fresh process");
    return;
  }
  keel::run([&] {
    keel::Chan<int64_t> ping(0), pong(0);
    keel::go([ping, pong] {
      for (int64_t v : ping) pong.send(v);
    });
    int64_t i = 0;
    for (auto _ : st) {
      ping.send(i++);
      benchmark::DoNotOptimize(pong.recv());
    }
    ping.close();
  });
  st.counters["procs"] = procs;
}

void BM_chan_pingpong_same_p(benchmark::State& st) { pingpong(st, 1); }
BENCHMARK(BM_chan_pingpong_same_p)->UseRealTime();

void BM_chan_pingpong_cross_p(benchmark::State& st) { pingpong(st, 2); }
BENCHMARK(BM_chan_pingpong_cross_p)->UseRealTime();

void BM_chan_prodcons(benchmark::State& st) {
  const size_t cap = static_cast<size_t>(st.range(0));
  const int64_t n = static_cast<int64_t>(st.max_iterations);  // the loop runs exactly this often
  int64_t sum = 0;
  keel::run([&] {
    keel::Chan<int64_t> ch(cap);
    keel::go([ch, n] {
      for (int64_t i = 0; i < n; ++i) ch.send(i);
    });
    for (auto _ : st) sum += *ch.recv();
  });
  benchmark::DoNotOptimize(sum);
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_chan_prodcons)->Arg(0)->Arg(10)->Arg(100)->UseRealTime();

void BM_select4_one_ready(benchmark::State& st) {
  int64_t sum = 0;
  keel::run([&] {
    keel::Chan<int64_t> c[4] = {keel::Chan<int64_t>(1), keel::Chan<int64_t>(1), keel::Chan<int64_t>(1),
                                keel::Chan<int64_t>(1)};
    int64_t i = 0;
    auto add = [&sum](std::optional<int64_t> v) { sum += *v; };
    for (auto _ : st) {
      c[i & 3].send(i);
      ++i;
      keel::select(keel::on_recv(c[0], add), keel::on_recv(c[1], add), keel::on_recv(c[2], add),
                   keel::on_recv(c[3], add));
    }
  });
  benchmark::DoNotOptimize(sum);
}
BENCHMARK(BM_select4_one_ready)->UseRealTime();

void skynet(const keel::Chan<int64_t>& out, int64_t num, int64_t size, int64_t div) {
  if (size == 1) {
    out.send(num);
    return;
  }
  keel::Chan<int64_t> rc(0);
  for (int64_t i = 0; i < div; ++i) {
    const int64_t sub = num + i * (size / div);
    keel::go([rc, sub, size, div] { skynet(rc, sub, size / div, div); });
  }
  int64_t sum = 0;
  for (int64_t i = 0; i < div; ++i) sum += *rc.recv();
  out.send(sum);
}

void BM_skynet_1m(benchmark::State& st) {
  int64_t result = 0;
  keel::run([&] {
    for (auto _ : st) {
      keel::Chan<int64_t> c(0);
      keel::go([c] { skynet(c, 0, 1'000'000, 10); });
      result = *c.recv();
      if (result != 499'999'500'000) {
        st.SkipWithError("skynet: wrong sum");
        break;
      }
    }
  });
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  st.counters["peak_rss_MiB"] = double(ru.ru_maxrss) / 1024.0;  // ru_maxrss is KiB on Linux
  st.counters["result"] = double(result);
}
BENCHMARK(BM_skynet_1m)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
