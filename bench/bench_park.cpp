// Issue 3 benchmarks:
//  - Note ping-pong between two threads (futex and sema flavours);
//  - the runtime lock under contention (1, 2, 4, 8 threads).
// Their floors (raw futex(2) and std::mutex+condvar ping-pong, contended
// std::mutex) are in bench/floor/floor_park.cpp (keel-bench-floor).
// Numbers only: nothing here gates CI.
#include <benchmark/benchmark.h>

#include <atomic>
#include <thread>

#include "core/lock.h"
#include "core/note.h"
#include "platform/os.h"

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

