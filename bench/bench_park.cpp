// Issue 3 benchmarks, each beside its floor in the same binary:
//  - Note ping-pong between two threads (futex and sema flavours) vs a raw
//    futex(2) ping-pong (Linux) and a std::mutex+condvar ping-pong;
//  - the runtime lock under contention (1, 2, 4, 8 threads) vs std::mutex.
// Numbers only: nothing here gates CI.
#include <benchmark/benchmark.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "core/lock.h"
#include "core/note.h"
#include "platform/os.h"

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace core = keel::core;

// ------------------------------------------------------------ ping-pong
template <class N>
static void BM_note_pingpong(benchmark::State& st) {
  N ping, pong;
  std::atomic<bool> stop{false};
  std::thread partner([&] {
    for (;;) {
      ping.sleep();
      ping.clear();
      if (stop.load(std::memory_order_acquire)) return;
      pong.wakeup();
    }
  });
  for (auto _ : st) {
    ping.wakeup();
    pong.sleep();
    pong.clear();
  }
  stop.store(true, std::memory_order_release);
  ping.wakeup();
  partner.join();
}
BENCHMARK_TEMPLATE(BM_note_pingpong, core::NoteFutex)->UseRealTime();
BENCHMARK_TEMPLATE(BM_note_pingpong, core::NoteSema)->UseRealTime();

#if defined(__linux__)
// The floor: two words, raw FUTEX_WAIT/FUTEX_WAKE, no protocol beyond the
// value check.
static void raw_wait(std::atomic<uint32_t>* w, uint32_t v) {
  while (w->load(std::memory_order_acquire) == v)
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(w), FUTEX_WAIT_PRIVATE, v, nullptr, nullptr, 0);
}
static void raw_wake(std::atomic<uint32_t>* w) {
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(w), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}
static void BM_floor_raw_futex_pingpong(benchmark::State& st) {
  std::atomic<uint32_t> a{0}, b{0};
  std::atomic<bool> stop{false};
  std::thread partner([&] {
    uint32_t seen = 0;
    for (;;) {
      raw_wait(&a, seen);
      seen = a.load(std::memory_order_acquire);
      if (stop.load(std::memory_order_acquire)) return;
      b.fetch_add(1, std::memory_order_release);
      raw_wake(&b);
    }
  });
  uint32_t seen = 0;
  for (auto _ : st) {
    a.fetch_add(1, std::memory_order_release);
    raw_wake(&a);
    raw_wait(&b, seen);
    seen = b.load(std::memory_order_acquire);
  }
  stop.store(true, std::memory_order_release);
  a.fetch_add(1, std::memory_order_release);
  raw_wake(&a);
  partner.join();
}
BENCHMARK(BM_floor_raw_futex_pingpong)->UseRealTime();
#endif

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

// ------------------------------------------------------------ contention
template <class L>
struct Shared {
  static L lock;
  static uint64_t counter;
};
template <class L>
L Shared<L>::lock;
template <class L>
uint64_t Shared<L>::counter;

template <class L>
static void BM_lock_contended(benchmark::State& st) {
  for (auto _ : st) {
    Shared<L>::lock.lock();
    ++Shared<L>::counter;
    Shared<L>::lock.unlock();
  }
}
BENCHMARK_TEMPLATE(BM_lock_contended, core::LockFutex)->ThreadRange(1, 8)->UseRealTime();
BENCHMARK_TEMPLATE(BM_lock_contended, core::LockSema)->ThreadRange(1, 8)->UseRealTime();
BENCHMARK_TEMPLATE(BM_lock_contended, std::mutex)->ThreadRange(1, 8)->UseRealTime();

