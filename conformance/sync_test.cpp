// Goroutine-aware synchronisation (issue 6): the semaphore table
// (core/sema.h) and keel::Mutex, RWMutex, WaitGroup, Cond, Once
// (include/keel/sync.h), on goroutines, on plain threads, and mixed.
//
// Timing: "never early" checks are exact; upper bounds are gross (seconds,
// scaled by kc::scaled_ns) and only there to turn a hang into a failure.
// Latencies are recorded as metrics, never asserted tightly.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <mutex>
#include <shared_mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include <keel/keel.h>

#include "conformance/harness.h"
#include "conformance/runtime_support.h"
#include "core/park.h"
#include "core/sema.h"
#include "platform/os.h"
#include "platform/tsan_annotations.h"

namespace kc = keel::conformance;
using kc::busy_for;
using kc::run_with_procs;
using kc::spin_until;
namespace core = keel::core;
namespace os = keel::os;

namespace {

// Under ThreadSanitizer every goroutine is a TSan fiber (a full thread state;
// GCC 12's runtime allows at most 8128 threads and fibers alive at once) and
// each synchronising operation costs microseconds: the counting tests scale
// down there, and record the count they used.
#if defined(KEEL_TSAN_ENABLED)
constexpr int kMutexIncrements = 20'000;
constexpr int kWaitGroupGoroutines = 2'000;
#else
constexpr int kMutexIncrements = 100'000;
constexpr int kWaitGroupGoroutines = 10'000;
#endif

void spin_ns(int64_t ns) {
  const int64_t end = os::nanotime() + ns;
  while (os::nanotime() < end) {
  }
}

}  // namespace

// ================================================================ sema

// Waiters on one address are woken in arrival order.
TEST(sync_sema, fifo_order) {
  constexpr int kWaiters = 8;
  static uint32_t sem = 0;
  std::atomic<int> woken_count{0};
  std::vector<int> order;
  keel::Mutex order_mu;
  bool ok = true;
  run_with_procs(2, [&] {
    keel::WaitGroup wg;
    for (int i = 0; i < kWaiters; ++i) {
      wg.add(1);
      keel::go([&, i] {
        core::semacquire(&sem, false, core::WaitReason::sema);
        {
          std::lock_guard<keel::Mutex> l(order_mu);
          order.push_back(i);
        }
        woken_count.fetch_add(1);
        wg.done();
      });
      // Wait until waiter i is parked before starting the next, so the
      // arrival order is known.
      ok = ok && spin_until([&] { return core::sema_bucket_waiters(&sem) == uint32_t(i + 1); }, kc::scaled_ns(5 * kc::kSec));
    }
    for (int i = 0; i < kWaiters && ok; ++i) {
      core::semrelease(&sem, false);
      ok = spin_until([&] { return woken_count.load() == i + 1; }, kc::scaled_ns(5 * kc::kSec));
    }
    wg.wait();
  });
  ASSERT_TRUE(ok) << "a waiter did not park or was not woken in time";
  ASSERT_EQ(order.size(), size_t(kWaiters));
  for (int i = 0; i < kWaiters; ++i) EXPECT_EQ(order[i], i) << "wake order differs from arrival order";
  EXPECT_EQ(sem, 0u);
}

// A lifo waiter (a Mutex waiter that already waited once) goes first.
TEST(sync_sema, lifo_goes_first) {
  static uint32_t sem = 0;
  std::atomic<int> first{-1};
  bool ok = true;
  run_with_procs(2, [&] {
    keel::WaitGroup wg;
    wg.add(3);
    for (int i = 0; i < 3; ++i) {
      keel::go([&, i] {
        core::semacquire(&sem, /*lifo=*/i == 2, core::WaitReason::sema);
        int expected = -1;
        first.compare_exchange_strong(expected, i);
        wg.done();
      });
      ok = ok && spin_until([&] { return core::sema_bucket_waiters(&sem) == uint32_t(i + 1); }, kc::scaled_ns(5 * kc::kSec));
    }
    core::semrelease(&sem, false);
    ok = ok && spin_until([&] { return first.load() != -1; }, kc::scaled_ns(5 * kc::kSec));
    core::semrelease(&sem, false);
    core::semrelease(&sem, false);
    wg.wait();
  });
  ASSERT_TRUE(ok);
  EXPECT_EQ(first.load(), 2) << "the lifo waiter queued last but must be woken first";
}

// Many addresses that hash to one bucket (the bucket index is
// (addr >> 3) % 251): each release wakes a waiter of its own address only,
// oldest first, whatever order the addresses are released in. This walks
// the bucket's treap through inserts, rotations and removals.
TEST(sync_sema, colliding_addresses_stay_independent) {
  constexpr int kAddrs = 32, kPerAddr = 2, kStride = 251 * 8 / sizeof(uint32_t);
  static uint32_t words[kAddrs * kStride];
  std::atomic<int> woke_at[kAddrs][kPerAddr];
  for (auto& a : woke_at)
    for (auto& w : a) w.store(-1);
  std::atomic<int> seq{0};    // wake order, taken by each woken waiter
  std::atomic<int> wakes{0};  // counted after woke_at is written, for the releaser to wait on
  bool ok = true;
  run_with_procs(2, [&] {
    keel::WaitGroup wg;
    int parked = 0;
    // Arrival order: address-major in a scrambled address order.
    for (int k = 0; k < kPerAddr; ++k) {
      for (int j = 0; j < kAddrs; ++j) {
        const int a = (j * 7 + 3) % kAddrs;
        wg.add(1);
        keel::go([&, a, k] {
          core::semacquire(&words[a * kStride], false, core::WaitReason::sema);
          woke_at[a][k].store(seq.fetch_add(1));
          wakes.fetch_add(1);
          wg.done();
        });
        ++parked;
        ok = ok && spin_until([&] { return core::sema_bucket_waiters(&words[0]) == uint32_t(parked); },
                              kc::scaled_ns(5 * kc::kSec));
      }
    }
    // Release in yet another order, one at a time.
    for (int k = 0; k < kPerAddr && ok; ++k) {
      for (int j = 0; j < kAddrs && ok; ++j) {
        const int a = (j * 13 + 5) % kAddrs;
        const int before = wakes.load();
        core::semrelease(&words[a * kStride], false);
        ok = spin_until([&] { return wakes.load() == before + 1; }, kc::scaled_ns(5 * kc::kSec));
        ok = ok && woke_at[a][k].load() == before;  // this address's oldest waiter, and only it
      }
    }
    if (!ok) {
      // Unblock everyone so the test ends with a clean failure.
      for (int a = 0; a < kAddrs; ++a)
        for (int k = 0; k < kPerAddr; ++k) core::semrelease(&words[a * kStride], false);
    }
    wg.wait();
  });
  EXPECT_TRUE(ok) << "a release woke the wrong waiter, or none";
  EXPECT_EQ(core::sema_bucket_waiters(&words[0]), 0u);
}

// semrelease(handoff=true) gives the unit to the woken waiter, which runs at
// once (the releaser yields to it); without handoff the releaser can take
// the unit right back (barging), and the woken waiter waits again.
TEST(sync_sema, handoff) {
  static uint32_t sem = 0;
  std::atomic<int> acquired{0};
  bool parked = true, barged = false, ran_before_return = false, parked_again = true, stolen_after_handoff = true;
  run_with_procs(1, [&] {
    keel::WaitGroup wg;
    wg.add(1);
    keel::go([&] {
      core::semacquire(&sem, false, core::WaitReason::sema);
      acquired.fetch_add(1);
      wg.done();
    });
    parked = spin_until([&] { return core::sema_bucket_waiters(&sem) == 1; }, kc::scaled_ns(5 * kc::kSec));

    // No handoff: with one P the waiter cannot run before we continue, and
    // the unit is there for anyone.
    core::semrelease(&sem, false);
    barged = core::semtryacquire(&sem);
    // Let the waiter run: it finds nothing and queues again.
    parked_again = spin_until([&] { return core::sema_bucket_waiters(&sem) == 1; }, kc::scaled_ns(5 * kc::kSec));
    parked_again = parked_again && acquired.load() == 0;

    // Handoff: the waiter owns the unit and has run by the time we return.
    core::semrelease(&sem, true);
    ran_before_return = acquired.load() == 1;
    stolen_after_handoff = core::semtryacquire(&sem);
    wg.wait();
  });
  ASSERT_TRUE(parked);
  EXPECT_TRUE(barged) << "without handoff the released unit must be available to a running caller";
  EXPECT_TRUE(parked_again) << "the waiter woken without handoff should have found no unit and parked again";
  EXPECT_TRUE(ran_before_return) << "after semrelease(handoff) the waiter must have run (the releaser yields to it)";
  EXPECT_FALSE(stolen_after_handoff) << "a handed-off unit must not be available to others";
  EXPECT_EQ(acquired.load(), 1);
  EXPECT_EQ(sem, 0u);
}

// ================================================================ Mutex

TEST(sync_mutex, mutual_exclusion) {
  constexpr int kGoroutines = 8;
  keel::Mutex m;
  uint64_t counter = 0;  // deliberately not atomic: the mutex must protect it
  int64_t elapsed = 0;
  run_with_procs(4, [&] {
    keel::WaitGroup wg;
    wg.add(kGoroutines);
    const int64_t t0 = os::nanotime();
    for (int g = 0; g < kGoroutines; ++g) {
      keel::go([&] {
        for (int i = 0; i < kMutexIncrements; ++i) {
          m.lock();
          ++counter;
          m.unlock();
        }
        wg.done();
      });
    }
    wg.wait();
    elapsed = os::nanotime() - t0;
  });
  EXPECT_EQ(counter, uint64_t(kGoroutines) * kMutexIncrements);
  kc::record_metric("increments", double(kGoroutines) * kMutexIncrements, "lock/unlock");
  kc::record_metric("per_op", double(elapsed) / (double(kGoroutines) * kMutexIncrements), "ns");
}

// A hog relocks in a tight loop; a waiter must still get the mutex: after it
// has waited 1 ms the mutex switches to starvation mode and is handed to it.
TEST(sync_mutex, starvation_mode_serves_waiter) {
  constexpr int kRounds = 10;
  keel::Mutex m;
  std::atomic<bool> stop{false};
  int64_t worst = 0, total = 0;
  int served = 0;
  run_with_procs(2, [&] {
    keel::WaitGroup wg;
    wg.add(1);
    keel::go([&] {
      while (!stop.load(std::memory_order_relaxed)) {
        m.lock();
        spin_ns(20'000);  // hold it most of the time
        m.unlock();
      }
      wg.done();
    });
    busy_for(5 * kc::kMs);  // the hog is running
    for (int r = 0; r < kRounds; ++r) {
      const int64_t t0 = os::nanotime();
      m.lock();
      const int64_t waited = os::nanotime() - t0;
      m.unlock();
      ++served;
      worst = std::max(worst, waited);
      total += waited;
      if (waited > kc::scaled_ns(1 * kc::kSec)) break;
      busy_for(200'000);
    }
    stop.store(true);
    wg.wait();
  });
  EXPECT_EQ(served, kRounds);
  EXPECT_LE(worst, kc::scaled_ns(1 * kc::kSec)) << "the waiter was starved by the hog";
  kc::record_metric("wait_max", double(worst) / 1e3, "us");
  kc::record_metric("wait_mean", double(total) / served / 1e3, "us");
}

TEST(sync_mutex, try_lock) {
  keel::Mutex m;
  bool other_got_it = true, other_got_it_after = false;
  run_with_procs(2, [&] {
    EXPECT_TRUE(m.try_lock());
    EXPECT_FALSE(m.try_lock()) << "not recursive";
    keel::WaitGroup wg;
    wg.add(1);
    keel::go([&] {
      other_got_it = m.try_lock();
      wg.done();
    });
    wg.wait();
    m.unlock();
    wg.add(1);
    keel::go([&] {
      other_got_it_after = m.try_lock();
      if (other_got_it_after) m.unlock();
      wg.done();
    });
    wg.wait();
  });
  EXPECT_FALSE(other_got_it);
  EXPECT_TRUE(other_got_it_after);
  // And from a plain thread without the runtime involved.
  EXPECT_TRUE(m.try_lock());
  m.unlock();
}

// Mutex and RWMutex meet Lockable / SharedLockable: the standard RAII types
// and std::scoped_lock (std::lock's deadlock avoidance uses try_lock) work.
TEST(sync_mutex, std_lockable) {
  keel::Mutex a, b;
  keel::RWMutex rw;
  int xa = 0, xb = 0, xrw = 0;  // protected by a, b and rw respectively
  run_with_procs(2, [&] {
    keel::WaitGroup wg;
    for (int g = 0; g < 4; ++g) {
      wg.add(1);
      keel::go([&, g] {
        for (int i = 0; i < 1000; ++i) {
          if (g % 2 == 0) {
            std::scoped_lock l(a, b);
            ++xa;
            ++xb;
          } else {
            std::scoped_lock l(b, a);  // opposite order: std::lock must avoid the deadlock
            ++xa;
            ++xb;
          }
          {
            std::lock_guard<keel::Mutex> l(a);
            ++xa;
          }
          {
            std::unique_lock<keel::Mutex> l(b, std::defer_lock);
            l.lock();
            ++xb;
            l.unlock();
            if (!l.try_lock()) l.lock();
            ++xb;
          }
          {
            std::unique_lock<keel::RWMutex> w(rw);
            ++xrw;
          }
          {
            std::shared_lock<keel::RWMutex> r(rw);
            (void)xrw;
          }
        }
        wg.done();
      });
    }
    wg.wait();
  });
  EXPECT_EQ(xa, 4 * 1000 * 2);
  EXPECT_EQ(xb, 4 * 1000 * 3);
  EXPECT_EQ(xrw, 4 * 1000);
}

TEST(sync_mutex, unlock_of_unlocked_is_fatal) {
  EXPECT_DEATH(
      {
        keel::Mutex m;
        m.unlock();
      },
      "fatal error: sync: unlock of unlocked mutex");
  EXPECT_DEATH(
      {
        keel::Mutex m;
        m.lock();
        m.unlock();
        m.unlock();
      },
      "fatal error: sync: unlock of unlocked mutex");
}

// The mutex works between plain threads with no goroutine anywhere (each
// thread blocks on its own thread G).
TEST(sync_mutex, plain_threads_without_runtime) {
  constexpr int kThreads = 4;
  keel::Mutex m;
  uint64_t counter = 0;
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&] {
      for (int i = 0; i < kMutexIncrements; ++i) {
        std::lock_guard<keel::Mutex> l(m);
        ++counter;
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(counter, uint64_t(kThreads) * kMutexIncrements);
  kc::record_metric("increments", double(kThreads) * kMutexIncrements, "lock/unlock");
}

// ================================================================ RWMutex

// Two readers hold the read lock at the same time: each waits, inside, until
// it sees the other inside.
TEST(sync_rwmutex, readers_in_parallel) {
  keel::RWMutex rw;
  std::atomic<int> inside{0};
  std::atomic<int> saw_other{0};
  run_with_procs(2, [&] {
    keel::WaitGroup wg;
    wg.add(2);
    for (int i = 0; i < 2; ++i) {
      keel::go([&] {
        rw.lock_shared();
        inside.fetch_add(1);
        if (spin_until([&] { return inside.load() == 2; }, kc::scaled_ns(5 * kc::kSec))) saw_other.fetch_add(1);
        rw.unlock_shared();
        wg.done();
      });
    }
    wg.wait();
  });
  EXPECT_EQ(saw_other.load(), 2) << "the second reader could not enter while the first held the read lock";
  // try_lock_shared succeeds beside a reader and fails beside a writer.
  rw.lock_shared();
  EXPECT_TRUE(rw.try_lock_shared());
  EXPECT_FALSE(rw.try_lock());
  rw.unlock_shared();
  rw.unlock_shared();
  rw.lock();
  EXPECT_FALSE(rw.try_lock_shared());
  EXPECT_FALSE(rw.try_lock());
  rw.unlock();
  EXPECT_TRUE(rw.try_lock());
  rw.unlock();
}

// A writer is alone: no reader and no other writer inside with it.
TEST(sync_rwmutex, writer_excludes) {
  constexpr int kWriters = 3, kReaders = 3, kIters = 3000;
  keel::RWMutex rw;
  std::atomic<int> readers{0}, writers{0}, violations{0};
  uint64_t a = 0, b = 0;  // a == b whenever no writer is inside
  run_with_procs(4, [&] {
    keel::WaitGroup wg;
    wg.add(kWriters + kReaders);
    for (int w = 0; w < kWriters; ++w)
      keel::go([&] {
        for (int i = 0; i < kIters; ++i) {
          rw.lock();
          if (writers.fetch_add(1) != 0 || readers.load() != 0) violations.fetch_add(1);
          ++a;
          if (i % 64 == 0) keel::gosched();  // give a broken lock a chance to let someone in
          ++b;
          writers.fetch_sub(1);
          rw.unlock();
        }
        wg.done();
      });
    for (int r = 0; r < kReaders; ++r)
      keel::go([&] {
        for (int i = 0; i < kIters; ++i) {
          rw.lock_shared();
          readers.fetch_add(1);
          if (writers.load() != 0 || a != b) violations.fetch_add(1);
          readers.fetch_sub(1);
          rw.unlock_shared();
        }
        wg.done();
      });
    wg.wait();
  });
  EXPECT_EQ(violations.load(), 0);
  EXPECT_EQ(a, uint64_t(kWriters) * kIters);
  EXPECT_EQ(b, a);
}

// Readers overlap continuously (each parks while holding the read lock, so
// some reader is nearly always inside); a writer still gets in: once it
// waits, new readers queue behind it.
TEST(sync_rwmutex, writer_not_starved) {
  constexpr int kReaders = 4, kWrites = 5;
  keel::RWMutex rw;
  std::atomic<bool> stop{false};
  std::atomic<int64_t> reads{0};
  int64_t worst = 0;
  int writes = 0;
  run_with_procs(2, [&] {
    keel::WaitGroup wg;
    wg.add(kReaders);
    for (int r = 0; r < kReaders; ++r)
      keel::go([&] {
        while (!stop.load(std::memory_order_relaxed)) {
          rw.lock_shared();
          spin_ns(5'000);
          keel::gosched();  // still holding it
          rw.unlock_shared();
          reads.fetch_add(1, std::memory_order_relaxed);
        }
        wg.done();
      });
    busy_for(10 * kc::kMs);
    for (int i = 0; i < kWrites; ++i) {
      const int64_t t0 = os::nanotime();
      rw.lock();
      const int64_t waited = os::nanotime() - t0;
      rw.unlock();
      ++writes;
      worst = std::max(worst, waited);
      if (waited > kc::scaled_ns(1 * kc::kSec)) break;
      busy_for(2 * kc::kMs);
    }
    stop.store(true);
    wg.wait();
  });
  EXPECT_EQ(writes, kWrites);
  EXPECT_LE(worst, kc::scaled_ns(1 * kc::kSec)) << "the writer was starved by readers";
  EXPECT_GT(reads.load(), 0);
  kc::record_metric("writer_wait_max", double(worst) / 1e3, "us");
  kc::record_metric("reads", double(reads.load()), "read locks");
}

TEST(sync_rwmutex, unlock_of_unlocked_is_fatal) {
  EXPECT_DEATH(
      {
        keel::RWMutex rw;
        rw.unlock();
      },
      "fatal error: sync: Unlock of unlocked RWMutex");
  EXPECT_DEATH(
      {
        keel::RWMutex rw;
        rw.unlock_shared();
      },
      "fatal error: sync: RUnlock of unlocked RWMutex");
  EXPECT_DEATH(
      {
        keel::RWMutex rw;
        rw.lock();
        rw.unlock_shared();
      },
      "fatal error: sync: RUnlock of unlocked RWMutex");
}

// ================================================================ WaitGroup

// 10^4 goroutines, each added before it starts and done when it ends; three
// goroutines wait, and none returns before the last done.
TEST(sync_waitgroup, many_adders) {
  keel::WaitGroup wg;
  std::atomic<int> finished{0}, early_returns{0}, waiters_back{0};
  int64_t elapsed = 0;
  run_with_procs(2, [&] {
    keel::WaitGroup waiters;
    wg.add(1);  // held until every worker is spawned, so the waiters cannot see zero early
    waiters.add(3);
    for (int w = 0; w < 3; ++w)
      keel::go([&] {
        wg.wait();
        if (finished.load() != kWaitGroupGoroutines) early_returns.fetch_add(1);
        waiters_back.fetch_add(1);
        waiters.done();
      });
    const int64_t t0 = os::nanotime();
    for (int i = 0; i < kWaitGroupGoroutines; ++i) {
      wg.add(1);
      keel::go([&] {
        finished.fetch_add(1);
        wg.done();
      });
    }
    wg.done();
    wg.wait();
    elapsed = os::nanotime() - t0;
    if (finished.load() != kWaitGroupGoroutines) early_returns.fetch_add(1);
    waiters.wait();
  });
  EXPECT_EQ(finished.load(), kWaitGroupGoroutines);
  EXPECT_EQ(early_returns.load(), 0) << "wait() returned before the counter reached zero";
  EXPECT_EQ(waiters_back.load(), 3);
  kc::record_metric("goroutines", kWaitGroupGoroutines, "");
  kc::record_metric("spawn_and_join", double(elapsed) / kWaitGroupGoroutines, "ns/goroutine");
}

TEST(sync_waitgroup, negative_counter_is_fatal) {
  EXPECT_DEATH(
      {
        keel::WaitGroup wg;
        wg.add(1);
        wg.done();
        wg.done();
      },
      "fatal error: sync: negative WaitGroup counter");
  EXPECT_DEATH(
      {
        keel::WaitGroup wg;
        wg.add(-1);
      },
      "fatal error: sync: negative WaitGroup counter");
}

// A waiter is woken by the last done(), but before it has returned from
// wait() the group is added to again: Go's misuse error. With one P the
// woken waiter cannot run between our done() and add(), so this is exact.
TEST(sync_waitgroup, reuse_before_wait_returned_is_fatal) {
  EXPECT_DEATH(
      {
        run_with_procs(1, [] {
          static keel::WaitGroup wg;
          static std::atomic<bool> waiting{false};
          wg.add(1);
          keel::go([] {
            waiting.store(true);
            wg.wait();
          });
          spin_until([] { return waiting.load(); }, kc::scaled_ns(5 * kc::kSec));
          keel::gosched();  // the waiter parks
          wg.done();
          wg.add(1);
          keel::gosched();  // the waiter runs and sees the reuse
          wg.done();
          busy_for(kc::scaled_ns(5 * kc::kSec));
        });
      },
      "fatal error: sync: WaitGroup is reused before previous Wait has returned");
}

// wait() on a plain thread, done() from goroutines; and the reverse.
TEST(sync_waitgroup, wait_from_plain_thread) {
  constexpr int kWorkers = 16;
  keel::WaitGroup work, thread_back;
  std::atomic<int> finished{0};
  int seen_by_thread = -1;
  std::thread waiter;
  run_with_procs(2, [&] {
    work.add(kWorkers);
    thread_back.add(1);
    waiter = std::thread([&] {
      work.wait();
      seen_by_thread = finished.load();
      thread_back.done();  // wakes the main goroutine
    });
    for (int i = 0; i < kWorkers; ++i)
      keel::go([&] {
        busy_for(10 * kc::kMs);  // let the thread reach wait() and block
        finished.fetch_add(1);
        work.done();
      });
    thread_back.wait();
  });
  waiter.join();
  EXPECT_EQ(seen_by_thread, kWorkers) << "wait() on the plain thread returned before the last done()";
}

// ================================================================ Cond

// Each signal wakes exactly one waiter, the one that has waited longest.
TEST(sync_cond, signal_wakes_one) {
  constexpr int kWaiters = 4;
  keel::Mutex m;
  keel::Cond c;
  std::vector<int> arrival, woken;  // under m
  std::atomic<int> wakeups{0};
  bool all_waiting = false, one_at_a_time = true;
  run_with_procs(2, [&] {
    keel::WaitGroup wg;
    wg.add(kWaiters);
    for (int i = 0; i < kWaiters; ++i)
      keel::go([&, i] {
        std::unique_lock<keel::Mutex> l(m);
        arrival.push_back(i);
        c.wait(l);
        woken.push_back(i);
        wakeups.fetch_add(1);
        l.unlock();  // before done(): the test may end, and m go away, once every waiter is done
        wg.done();
      });
    // Once a waiter is recorded under m it holds its ticket: a signal from
    // now on is not lost even if it has not parked yet.
    all_waiting = spin_until(
        [&] {
          std::lock_guard<keel::Mutex> l(m);
          return arrival.size() == size_t(kWaiters);
        },
        kc::scaled_ns(5 * kc::kSec));
    for (int i = 0; i < kWaiters && all_waiting; ++i) {
      c.signal();
      if (!spin_until([&] { return wakeups.load() == i + 1; }, kc::scaled_ns(5 * kc::kSec))) one_at_a_time = false;
      // Exactly one: nobody else wakes meanwhile.
      if (i == 0) busy_for(20 * kc::kMs);
      if (wakeups.load() != i + 1) one_at_a_time = false;
    }
    if (!all_waiting || !one_at_a_time) c.broadcast();
    wg.wait();
  });
  ASSERT_TRUE(all_waiting);
  EXPECT_TRUE(one_at_a_time) << "a signal woke no waiter or more than one";
  EXPECT_EQ(woken, arrival) << "signal must wake the longest waiting first";
  // Signal with no waiter does nothing (and is not remembered).
  c.signal();
  c.broadcast();
}

// broadcast wakes every waiter that was waiting, and only those.
TEST(sync_cond, broadcast_wakes_all) {
  constexpr int kWaiters = 16;
  keel::Mutex m;
  keel::Cond c;
  int waiting = 0;  // under m
  std::atomic<int> wakeups{0};
  std::atomic<bool> late_woke{false};
  bool all_waiting = false, all_woke = false, late_stayed = false, late_signalled = false;
  int64_t wake_all_ns = 0;
  run_with_procs(2, [&] {
    keel::WaitGroup wg;
    wg.add(kWaiters);
    for (int i = 0; i < kWaiters; ++i)
      keel::go([&] {
        std::unique_lock<keel::Mutex> l(m);
        ++waiting;
        c.wait(l);
        wakeups.fetch_add(1);
        l.unlock();
        wg.done();
      });
    all_waiting = spin_until(
        [&] {
          std::lock_guard<keel::Mutex> l(m);
          return waiting == kWaiters;
        },
        kc::scaled_ns(5 * kc::kSec));
    const int64_t t0 = os::nanotime();
    c.broadcast();
    all_woke = spin_until([&] { return wakeups.load() == kWaiters; }, kc::scaled_ns(5 * kc::kSec));
    wake_all_ns = os::nanotime() - t0;
    wg.wait();

    // A waiter that arrives after the broadcast is not woken by it.
    wg.add(1);
    keel::go([&] {
      std::unique_lock<keel::Mutex> l(m);
      ++waiting;
      c.wait(l);
      late_woke.store(true);
      l.unlock();
      wg.done();
    });
    spin_until(
        [&] {
          std::lock_guard<keel::Mutex> l(m);
          return waiting == kWaiters + 1;
        },
        kc::scaled_ns(5 * kc::kSec));
    busy_for(20 * kc::kMs);
    late_stayed = !late_woke.load();
    c.signal();
    late_signalled = spin_until([&] { return late_woke.load(); }, kc::scaled_ns(5 * kc::kSec));
    wg.wait();
  });
  ASSERT_TRUE(all_waiting);
  EXPECT_TRUE(all_woke) << "broadcast woke only " << wakeups.load() << " of " << kWaiters;
  EXPECT_TRUE(late_stayed) << "a waiter that arrived after the broadcast was woken by it";
  EXPECT_TRUE(late_signalled);
  kc::record_metric("wake_all", double(wake_all_ns) / 1e3, "us");
}

// ================================================================ Once

// Many callers at once: f runs once, and nobody returns before it finished.
TEST(sync_once, runs_once_under_contention) {
  constexpr int kCallers = 64;
  keel::Once once;
  std::atomic<int> runs{0}, returned_early{0}, returned{0};
  std::atomic<bool> finished{false};
  run_with_procs(4, [&] {
    keel::WaitGroup wg;
    wg.add(kCallers);
    std::atomic<bool> go_now{false};
    for (int i = 0; i < kCallers; ++i)
      keel::go([&] {
        spin_until([&] { return go_now.load(); }, kc::scaled_ns(5 * kc::kSec));
        once.call([&] {
          runs.fetch_add(1);
          busy_for(20 * kc::kMs);  // others arrive and must wait
          finished.store(true);
        });
        if (!finished.load()) returned_early.fetch_add(1);
        returned.fetch_add(1);
        wg.done();
      });
    go_now.store(true);
    wg.wait();
  });
  EXPECT_EQ(runs.load(), 1);
  EXPECT_EQ(returned_early.load(), 0) << "a caller returned before f had finished";
  EXPECT_EQ(returned.load(), kCallers);
  EXPECT_TRUE(once.done());
  // Later callers return at once without running f.
  once.call([&] { runs.fetch_add(1); });
  EXPECT_EQ(runs.load(), 1);
}

// If f throws, the exception reaches its caller and the Once is not done: a
// caller that was waiting meanwhile runs its own f.
TEST(sync_once, exception_allows_retry) {
  keel::Once once;
  std::atomic<bool> first_inside{false}, caught{false};
  std::atomic<int> second_runs{0};
  bool done_after_throw = true;
  run_with_procs(2, [&] {
    keel::WaitGroup wg;
    wg.add(2);
    keel::go([&] {
      try {
        once.call([&] {
          first_inside.store(true);
          busy_for(20 * kc::kMs);  // the second caller arrives and waits
          throw std::runtime_error("first f fails");
        });
      } catch (const std::runtime_error&) {
        caught.store(true);
      }
      wg.done();
    });
    keel::go([&] {
      spin_until([&] { return first_inside.load(); }, kc::scaled_ns(5 * kc::kSec));
      once.call([&] { second_runs.fetch_add(1); });
      wg.done();
    });
    wg.wait();
  });
  EXPECT_TRUE(caught.load()) << "the exception must propagate to the caller whose f threw";
  EXPECT_EQ(second_runs.load(), 1) << "after a throwing f, the next caller's f must run";
  EXPECT_TRUE(once.done());

  // The same on a plain thread, sequentially.
  keel::Once o2;
  EXPECT_THROW(o2.call([] { throw std::logic_error("no"); }), std::logic_error);
  done_after_throw = o2.done();
  EXPECT_FALSE(done_after_throw);
  int ran = 0;
  o2.call([&] { ++ran; });
  o2.call([&] { ++ran; });
  EXPECT_EQ(ran, 1);
}

// ================================================================ mixed

// The same Mutex, WaitGroup and Cond shared between plain std::threads and
// goroutines, blocking in both directions.
TEST(sync_mixed, plain_thread_and_goroutines) {
  constexpr int kThreads = 2, kGoroutines = 4, kIters = 20'000;
  keel::Mutex m;
  keel::Cond c;
  keel::WaitGroup all;
  uint64_t counter = 0;  // under m
  int turn = 0;          // under m: ping-pong between a thread and a goroutine
  constexpr int kPingPong = 200;
  std::vector<std::thread> threads;
  bool pingpong_ok = false;
  run_with_procs(2, [&] {
    all.add(kThreads + kGoroutines);
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&] {
        for (int i = 0; i < kIters; ++i) {
          std::lock_guard<keel::Mutex> l(m);
          ++counter;
        }
        all.done();
      });
    for (int g = 0; g < kGoroutines; ++g)
      keel::go([&] {
        for (int i = 0; i < kIters; ++i) {
          std::lock_guard<keel::Mutex> l(m);
          ++counter;
        }
        all.done();
      });
    all.wait();  // a goroutine waits for threads and goroutines

    // Cond ping-pong: a plain thread waits for the goroutine's signal and
    // the goroutine waits for the thread's.
    keel::WaitGroup thread_done;
    thread_done.add(1);
    threads.emplace_back([&] {
      std::unique_lock<keel::Mutex> l(m);
      for (int i = 0; i < kPingPong; ++i) {
        c.wait(l, [&] { return turn % 2 == 1; });
        ++turn;
        c.broadcast();
      }
      l.unlock();
      thread_done.done();
    });
    {
      std::unique_lock<keel::Mutex> l(m);
      for (int i = 0; i < kPingPong; ++i) {
        c.wait(l, [&] { return turn % 2 == 0; });
        ++turn;
        c.broadcast();
      }
    }
    thread_done.wait();
    std::lock_guard<keel::Mutex> l(m);
    pingpong_ok = turn == 2 * kPingPong;
  });
  for (auto& t : threads) t.join();
  EXPECT_EQ(counter, uint64_t(kThreads + kGoroutines) * kIters);
  EXPECT_TRUE(pingpong_ok);
}
