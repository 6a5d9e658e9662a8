// The OS floor of parking and waking, between plain threads:
//  - address-wait ping-pong: raw futex(2) (Linux: two words, FUTEX_WAIT /
//    FUTEX_WAKE, no protocol beyond the value check) and the same through the
//    contract's address-wait (os::futex_wait / futex_wake: futex, WaitOnAddress
//    or __ulock on the other OSes); one iteration = one round trip;
//  - a std::mutex + condition_variable ping-pong (the cost a goroutine hand-off
//    replaces); one iteration = one round trip;
//  - cross-thread wake latency: a thread parked in the address-wait, another
//    thread wakes it; the time from just before the wake call until the woken
//    thread runs, reported as the p50 (and p90) over all samples — the floor
//    of keel's BM_wake_latency_cross_p;
//  - std::mutex contended by 1..16 threads (ns per lock/unlock pair, from
//    items/s), the floor of keel's BM_mutex_contended.
// Numbers only: nothing here gates CI.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "platform/os.h"

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace os = keel::os;

namespace {

// The two flavours of "wait while *w == v" / "wake one".
struct RawFutex {
#if defined(__linux__)
  static void wait(std::atomic<uint32_t>* w, uint32_t v) {
    while (w->load(std::memory_order_acquire) == v)
      syscall(SYS_futex, reinterpret_cast<uint32_t*>(w), FUTEX_WAIT_PRIVATE, v, nullptr, nullptr, 0);
  }
  static void wake(std::atomic<uint32_t>* w) {
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(w), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
  }
#endif
};
struct ContractFutex {
  static void wait(std::atomic<uint32_t>* w, uint32_t v) {
    while (w->load(std::memory_order_acquire) == v) os::futex_wait(w, v, -1);
  }
  static void wake(std::atomic<uint32_t>* w) { os::futex_wake(w, 1); }
};

template <class F>
void futex_pingpong(benchmark::State& st) {
  std::atomic<uint32_t> a{0}, b{0};
  std::atomic<bool> stop{false};
  std::thread partner([&] {
    uint32_t seen = 0;
    for (;;) {
      F::wait(&a, seen);
      seen = a.load(std::memory_order_acquire);
      if (stop.load(std::memory_order_acquire)) return;
      b.fetch_add(1, std::memory_order_release);
      F::wake(&b);
    }
  });
  uint32_t seen = 0;
  for (auto _ : st) {
    a.fetch_add(1, std::memory_order_release);
    F::wake(&a);
    F::wait(&b, seen);
    seen = b.load(std::memory_order_acquire);
  }
  stop.store(true, std::memory_order_release);
  a.fetch_add(1, std::memory_order_release);
  F::wake(&a);
  partner.join();
}

// Busy-wait about ns nanoseconds (long enough for a parked thread to be
// asleep in the kernel, without giving up the CPU ourselves).
void spin_for(int64_t ns) {
  const int64_t end = os::nanotime() + ns;
  while (os::nanotime() < end) {
  }
}

}  // namespace

// p50 / p90 of the samples, as benchmark counters (ns).
static void report_percentiles(benchmark::State& st, std::vector<int64_t>& ns) {
  if (ns.empty()) return;
  std::sort(ns.begin(), ns.end());
  st.counters["p50_ns"] = double(ns[ns.size() / 2]);
  st.counters["p90_ns"] = double(ns[ns.size() * 9 / 10]);
}

#if defined(__linux__)
static void BM_floor_raw_futex_pingpong(benchmark::State& st) { futex_pingpong<RawFutex>(st); }
BENCHMARK(BM_floor_raw_futex_pingpong)->UseRealTime();
#endif
static void BM_floor_futex_pingpong(benchmark::State& st) { futex_pingpong<ContractFutex>(st); }
BENCHMARK(BM_floor_futex_pingpong)->UseRealTime();

static void BM_floor_condvar_pingpong(benchmark::State& st) {
  std::mutex m;
  std::condition_variable cv;
  int turn = 0;  // 0: main's turn to serve, 1: partner's, 2: stop
  std::thread partner([&] {
    std::unique_lock<std::mutex> l(m);
    for (;;) {
      cv.wait(l, [&] { return turn != 0; });
      if (turn == 2) return;
      turn = 0;
      cv.notify_all();
    }
  });
  for (auto _ : st) {
    std::unique_lock<std::mutex> l(m);
    turn = 1;
    cv.notify_all();
    cv.wait(l, [&] { return turn == 0; });
  }
  {
    std::lock_guard<std::mutex> l(m);
    turn = 2;
  }
  cv.notify_all();
  partner.join();
}
BENCHMARK(BM_floor_condvar_pingpong)->UseRealTime();

// One sample per iteration: the partner parks on `word` (ContractFutex), we
// wait 200 us so it is asleep in the kernel, stamp t0 and wake it; it stamps
// t1 as soon as it runs. Same shape as keel's BM_wake_latency_cross_p and Go's
// BenchmarkWakeLatencyCrossP.
static void BM_floor_wake_latency(benchmark::State& st) {
  std::atomic<uint32_t> word{0};
  std::atomic<int64_t> t1{0};
  std::atomic<bool> stop{false};
  std::thread partner([&] {
    uint32_t seen = 0;
    for (;;) {
      ContractFutex::wait(&word, seen);
      seen = word.load(std::memory_order_acquire);
      t1.store(os::nanotime(), std::memory_order_release);
      if (stop.load(std::memory_order_acquire)) return;
    }
  });
  std::vector<int64_t> samples;
  samples.reserve(size_t(st.max_iterations));
  for (auto _ : st) {
    t1.store(0, std::memory_order_relaxed);
    spin_for(200'000);
    const int64_t t0 = os::nanotime();
    word.fetch_add(1, std::memory_order_release);
    ContractFutex::wake(&word);
    int64_t back;
    while ((back = t1.load(std::memory_order_acquire)) == 0) {
    }
    samples.push_back(back - t0);
    st.SetIterationTime(double(back - t0) / 1e9);
  }
  stop.store(true, std::memory_order_release);
  word.fetch_add(1, std::memory_order_release);
  ContractFutex::wake(&word);
  partner.join();
  report_percentiles(st, samples);
}
BENCHMARK(BM_floor_wake_latency)->UseManualTime()->Iterations(2000);

// Contended std::mutex: every thread does lock/++/unlock; ns per pair comes
// from items/s (all threads' items over the wall time).
static std::mutex g_mu;
static uint64_t g_counter;
static void BM_floor_std_mutex_contended(benchmark::State& st) {
  for (auto _ : st) {
    g_mu.lock();
    ++g_counter;
    g_mu.unlock();
  }
  st.SetItemsProcessed(st.iterations());
}
BENCHMARK(BM_floor_std_mutex_contended)->Threads(1)->Threads(2)->Threads(4)->Threads(8)->Threads(16)->UseRealTime();

// Uncontended std::mutex lock/unlock on one thread (the floor of
// BM_mutex_uncontended_goroutine / BM_mutex_uncontended_thread).
static void BM_floor_std_mutex_uncontended(benchmark::State& st) {
  static std::mutex mu;
  for (auto _ : st) {
    mu.lock();
    mu.unlock();
  }
}
BENCHMARK(BM_floor_std_mutex_uncontended);
