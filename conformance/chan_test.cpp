// Channels and select (issue 7): keel::Chan<T> and keel::select
// (include/keel/chan.h) over the runtime channel (core/chan.h), on
// goroutines, plain threads and mixed.
//
// Timing: "never early" checks are exact; upper bounds are gross (seconds,
// scaled by kc::scaled_ns) and only there to turn a hang into a failure.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <keel/keel.h>

#include "conformance/harness.h"
#include "conformance/runtime_support.h"
#include "core/chan.h"
#include "core/park.h"
#include "platform/os.h"
#include "platform/tsan_annotations.h"  // KEEL_TSAN_ENABLED

namespace kc = keel::conformance;
using kc::busy_for;
using kc::run_with_procs;
using kc::spin_until;
namespace core = keel::core;
namespace os = keel::os;

namespace {

// Under ThreadSanitizer every goroutine is a TSan fiber (at most 8128 alive)
// and each synchronising operation costs microseconds: counts scale down
// there and are recorded as metrics.
// (Single-goroutine selects are cheap even there: fairness keeps its 10^5.)
constexpr int kFairnessSelects = 100'000;
#if defined(KEEL_TSAN_ENABLED)
constexpr int kOrderedMessages = 2'000;
#else
constexpr int kOrderedMessages = 20'000;
#endif

template <class T>
core::ChanWaiterCounts waiters(const keel::Chan<T>& ch) {
  return core::chan_waiter_counts(keel::detail::raw_chan(ch));
}
template <class T>
bool wait_receivers(const keel::Chan<T>& ch, size_t n) {
  return spin_until([&] { return waiters(ch).receivers == n; }, kc::scaled_ns(5 * kc::kSec));
}
template <class T>
bool wait_senders(const keel::Chan<T>& ch, size_t n) {
  return spin_until([&] { return waiters(ch).senders == n; }, kc::scaled_ns(5 * kc::kSec));
}

// A value with no default constructor that counts live instances.
struct Counted {
  static std::atomic<int> live;
  int v;
  explicit Counted(int x) noexcept : v(x) { live.fetch_add(1); }
  Counted(const Counted& o) noexcept : v(o.v) { live.fetch_add(1); }
  Counted(Counted&& o) noexcept : v(o.v) { live.fetch_add(1); }
  Counted& operator=(const Counted&) = default;
  ~Counted() { live.fetch_sub(1); }
};
std::atomic<int> Counted::live{0};

}  // namespace

// ================================================================ unbuffered

// A send on an unbuffered channel completes only when a receiver takes the
// value: the sender is provably parked (its waiter is queued and it has not
// returned) until then.
TEST(chan_unbuffered, rendezvous) {
  std::atomic<bool> sent{false};
  bool parked = false, early = true, got_right = false, finished = false;
  run_with_procs(2, [&] {
    keel::Chan<int> ch(0);
    keel::go([ch, &sent] {
      ch.send(42);
      sent.store(true);
    });
    parked = wait_senders(ch, 1);
    busy_for(20 * kc::kMs);  // give a broken send every chance to return early
    early = sent.load();
    std::optional<int> v = ch.recv();
    got_right = v == 42;
    finished = spin_until([&] { return sent.load(); }, kc::scaled_ns(5 * kc::kSec));
  });
  ASSERT_TRUE(parked) << "the sender never blocked on the unbuffered channel";
  EXPECT_FALSE(early) << "send returned before any receiver took the value";
  EXPECT_TRUE(got_right);
  EXPECT_TRUE(finished) << "the sender was not released by the receive";
}

// A receiver that arrives first gets the value handed straight to it, and the
// sender does not block.
TEST(chan_unbuffered, receiver_first_sender_does_not_block) {
  std::optional<int> got;
  bool parked = false;
  run_with_procs(2, [&] {
    keel::Chan<int> ch(0);
    keel::WaitGroup wg;
    wg.add(1);
    keel::go([&, ch] {
      got = ch.recv();
      wg.done();
    });
    parked = wait_receivers(ch, 1);
    EXPECT_TRUE(ch.try_send(7)) << "a parked receiver must make a non-blocking send succeed";
    wg.wait();
  });
  ASSERT_TRUE(parked);
  EXPECT_EQ(got, 7);
}

// Ping-pong over two unbuffered channels, many rounds, values in order.
TEST(chan_unbuffered, pingpong_in_order) {
  const int rounds = kOrderedMessages;
  int bad = 0;
  run_with_procs(2, [&] {
    keel::Chan<int> ping(0), pong(0);
    keel::go([ping, pong] {
      for (auto v : ping) pong.send(v + 1);
      pong.close();
    });
    for (int i = 0; i < rounds; ++i) {
      ping.send(i);
      if (pong.recv() != i + 1) ++bad;
    }
    ping.close();
    if (pong.recv().has_value()) ++bad;
  });
  EXPECT_EQ(bad, 0);
  kc::record_metric("rounds", rounds, "");
}

// ================================================================ buffered

TEST(chan_buffered, fifo_order) {
  const int n = kOrderedMessages;
  int out_of_order = 0, received = 0;
  run_with_procs(2, [&] {
    // Fill and drain without blocking.
    keel::Chan<int> ch(100);
    for (int i = 0; i < 100; ++i) EXPECT_TRUE(ch.try_send(i));
    EXPECT_FALSE(ch.try_send(100)) << "a full buffer must refuse";
    for (int i = 0; i < 100; ++i) EXPECT_EQ(ch.recv(), i);
    // A producer far ahead of a slow consumer: the buffer stays full and
    // senders wait, so values pass through the "take the head, put the
    // waiting sender's value at the tail" path.
    keel::Chan<int> small(4);
    keel::go([small, n] {
      for (int i = 0; i < n; ++i) small.send(i);
      small.close();
    });
    int expect = 0;
    for (int v : small) {
      if (v != expect) ++out_of_order;
      ++expect;
      ++received;
      if ((received & 1023) == 0) busy_for(100'000);
    }
  });
  EXPECT_EQ(out_of_order, 0);
  EXPECT_EQ(received, n);
  kc::record_metric("messages", n, "");
}

// A send blocks exactly when the buffer is full.
TEST(chan_buffered, send_blocks_only_when_full) {
  std::atomic<int> sent{0};
  bool parked = false;
  int sent_while_full = -1;
  run_with_procs(2, [&] {
    keel::Chan<int> ch(2);
    keel::go([ch, &sent] {
      for (int i = 0; i < 3; ++i) {
        ch.send(i);
        sent.fetch_add(1);
      }
    });
    parked = wait_senders(ch, 1);
    busy_for(10 * kc::kMs);
    sent_while_full = sent.load();
    EXPECT_EQ(ch.len(), 2u);
    EXPECT_EQ(ch.recv(), 0);
    EXPECT_TRUE(spin_until([&] { return sent.load() == 3; }, kc::scaled_ns(5 * kc::kSec)));
    EXPECT_EQ(ch.recv(), 1);
    EXPECT_EQ(ch.recv(), 2);
  });
  ASSERT_TRUE(parked);
  EXPECT_EQ(sent_while_full, 2) << "the third send must wait for room";
}

TEST(chan_buffered, len_and_cap) {
  keel::Chan<int> nil;
  EXPECT_EQ(nil.len(), 0u);
  EXPECT_EQ(nil.cap(), 0u);
  keel::Chan<int> unbuf(0);
  EXPECT_EQ(unbuf.cap(), 0u);
  EXPECT_EQ(unbuf.len(), 0u);
  auto ch = keel::make_chan<int>(5);
  EXPECT_EQ(ch.cap(), 5u);
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(ch.len(), size_t(i));
    ch.send(i);  // from a plain thread, never blocks here
  }
  EXPECT_EQ(ch.len(), 5u);
  ch.close();
  EXPECT_EQ(ch.len(), 5u) << "closing keeps buffered values";
  ch.recv();
  EXPECT_EQ(ch.len(), 4u);
  EXPECT_EQ(ch.cap(), 5u);
}

// Values left in a buffer are destroyed with the last handle; none leak and
// none is destroyed twice, including through the ring's wrap-around.
TEST(chan_buffered, buffered_values_destroyed_with_last_handle) {
  Counted::live.store(0);
  {
    keel::Chan<Counted> ch(4);
    for (int i = 0; i < 3; ++i) ch.send(Counted(i));
    EXPECT_EQ(ch.recv()->v, 0);
    EXPECT_EQ(ch.recv()->v, 1);
    for (int i = 3; i < 6; ++i) ch.send(Counted(i));  // wraps
    EXPECT_EQ(Counted::live.load(), 4);
    keel::Chan<Counted> copy = ch;
    ch = keel::Chan<Counted>();
    EXPECT_EQ(Counted::live.load(), 4) << "a remaining handle keeps the channel";
  }
  EXPECT_EQ(Counted::live.load(), 0);
}

// ================================================================ close

TEST(chan_close, wakes_all_blocked_receivers_with_nullopt) {
  constexpr int kReceivers = 16;
  std::atomic<int> got_nullopt{0}, got_value{0};
  bool parked = false, all_woken = false;
  run_with_procs(2, [&] {
    keel::Chan<int> ch(0);
    for (int i = 0; i < kReceivers; ++i)
      keel::go([ch, &got_nullopt, &got_value] { (ch.recv() ? got_value : got_nullopt).fetch_add(1); });
    parked = wait_receivers(ch, kReceivers);
    ch.close();
    all_woken = spin_until([&] { return got_nullopt.load() + got_value.load() == kReceivers; }, kc::scaled_ns(5 * kc::kSec));
    EXPECT_EQ(waiters(ch).receivers, 0u);
  });
  ASSERT_TRUE(parked);
  EXPECT_TRUE(all_woken);
  EXPECT_EQ(got_nullopt.load(), kReceivers);
  EXPECT_EQ(got_value.load(), 0);
}

TEST(chan_close, blocked_senders_throw) {
  constexpr int kSenders = 16;
  std::atomic<int> threw{0}, returned{0};
  bool parked = false, all_woken = false;
  run_with_procs(2, [&] {
    keel::Chan<int> ch(1);
    ch.send(-1);  // full
    for (int i = 0; i < kSenders; ++i)
      keel::go([ch, i, &threw, &returned] {
        try {
          ch.send(i);
          returned.fetch_add(1);
        } catch (const keel::channel_closed& e) {
          if (std::string(e.what()) == "send on closed channel") threw.fetch_add(1);
        }
      });
    parked = wait_senders(ch, kSenders);
    ch.close();
    all_woken = spin_until([&] { return threw.load() + returned.load() == kSenders; }, kc::scaled_ns(5 * kc::kSec));
    // The value buffered before the close is still delivered, then nothing.
    EXPECT_EQ(ch.recv(), -1);
    EXPECT_EQ(ch.recv(), std::nullopt);
  });
  ASSERT_TRUE(parked);
  EXPECT_TRUE(all_woken);
  EXPECT_EQ(threw.load(), kSenders);
  EXPECT_EQ(returned.load(), 0);
}

TEST(chan_close, drains_buffer_then_reports_closed) {
  keel::Chan<int> ch(3);
  for (int i = 0; i < 3; ++i) ch.send(i);
  ch.close();
  bool closed = true;
  EXPECT_EQ(ch.try_recv(&closed), 0);
  EXPECT_FALSE(closed);
  EXPECT_EQ(ch.recv(), 1);
  EXPECT_EQ(ch.recv(), 2);
  EXPECT_EQ(ch.recv(), std::nullopt);
  EXPECT_EQ(ch.try_recv(&closed), std::nullopt);
  EXPECT_TRUE(closed) << "try_recv must tell closed-and-drained from would-block";
}

TEST(chan_close, misuse_throws) {
  keel::Chan<int> ch(1);
  ch.close();
  EXPECT_THROW(ch.close(), keel::channel_closed);
  EXPECT_THROW(ch.send(1), keel::channel_closed);
  EXPECT_THROW(ch.try_send(1), keel::channel_closed);
  keel::Chan<int> nil;
  try {
    nil.close();
    ADD_FAILURE() << "close of a nil channel must throw";
  } catch (const keel::channel_closed& e) {
    EXPECT_STREQ(e.what(), "close of nil channel");
  }
}

TEST(chan_close, range_for_ends_at_close) {
  std::vector<int> got;
  run_with_procs(2, [&] {
    keel::Chan<int> ch(0);
    keel::go([ch] {
      for (int i = 0; i < 100; ++i) ch.send(i);
      ch.close();
    });
    for (int v : ch) got.push_back(v);
  });
  ASSERT_EQ(got.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(got[i], i);
}

// close racing with running senders (plain and select) and receivers: a
// value whose send returned was received exactly once; a value whose send
// threw was never received. Several rounds, capacities 0 and 4.
TEST(chan_close, racing_senders_and_receivers_exactly_once) {
#if defined(KEEL_TSAN_ENABLED)
  constexpr int kRounds = 20;
#else
  constexpr int kRounds = 100;
#endif
  constexpr int kSenders = 8, kReceivers = 4, kPerSender = 1000;
  int64_t lost = 0, dup = 0, ghost = 0, sent_total = 0, threw_total = 0;
  run_with_procs(4, [&] {
    for (int round = 0; round < kRounds; ++round) {
      keel::Chan<int> ch(round % 2 == 0 ? 0 : 4), other(0);
      std::vector<std::atomic<int>> received(kSenders * kPerSender);
      std::vector<uint8_t> outcome(kSenders * kPerSender, 0);  // 1 sent, 2 threw
      keel::WaitGroup wg;
      wg.add(kSenders + kReceivers);
      for (int s = 0; s < kSenders; ++s)
        keel::go([&, s] {
          for (int i = 0; i < kPerSender; ++i) {
            const int v = s * kPerSender + i;
            try {
              if (s % 2 == 0) {
                ch.send(v);
              } else {
                keel::select(keel::on_send(ch, v), keel::on_recv(other));
              }
              outcome[v] = 1;
            } catch (const keel::channel_closed&) {
              for (int j = i; j < kPerSender; ++j) outcome[s * kPerSender + j] = 2;
              break;
            }
          }
          wg.done();
        });
      for (int r = 0; r < kReceivers; ++r)
        keel::go([&] {
          for (int v : ch) received[v].fetch_add(1);
          wg.done();
        });
      busy_for(int64_t(keel::core::fastrand() % 100) * 1000);  // close within 0-100 us
      ch.close();
      wg.wait();
      for (int v = 0; v < kSenders * kPerSender; ++v) {
        const int n = received[v].load();
        if (outcome[v] == 1) {
          ++sent_total;
          if (n == 0) ++lost;
          if (n > 1) ++dup;
        } else {
          ++threw_total;
          if (n != 0) ++ghost;
        }
      }
    }
  });
  EXPECT_EQ(lost, 0) << "sends that returned but were never received";
  EXPECT_EQ(dup, 0) << "values received twice";
  EXPECT_EQ(ghost, 0) << "values received although their send threw";
  EXPECT_GT(threw_total, 0) << "the close never raced a sender";
  kc::record_metric("rounds", kRounds, "");
  kc::record_metric("sent", double(sent_total), "");
  kc::record_metric("threw", double(threw_total), "");
}

// ================================================================ many to many

namespace {
// P producers each send M/P distinct values; C consumers receive until
// close. Every value must arrive exactly once.
void mpmc(size_t cap, int procs) {
  constexpr int kProducers = 100, kConsumers = 100, kMessages = 10'000;
  constexpr int kPer = kMessages / kProducers;
  std::vector<std::atomic<int>> seen(kMessages);
  std::atomic<int> total{0};
  run_with_procs(procs, [&] {
    keel::Chan<int> ch(cap);
    keel::WaitGroup producers, consumers;
    producers.add(kProducers);
    consumers.add(kConsumers);
    for (int c = 0; c < kConsumers; ++c)
      keel::go([&, ch] {
        for (int v : ch) {
          seen[v].fetch_add(1);
          total.fetch_add(1);
        }
        consumers.done();
      });
    for (int p = 0; p < kProducers; ++p)
      keel::go([&, ch, p] {
        for (int i = 0; i < kPer; ++i) ch.send(p * kPer + i);
        producers.done();
      });
    producers.wait();
    ch.close();
    consumers.wait();
  });
  int lost = 0, dup = 0;
  for (auto& s : seen) {
    if (s.load() == 0) ++lost;
    if (s.load() > 1) ++dup;
  }
  EXPECT_EQ(lost, 0) << "messages never delivered";
  EXPECT_EQ(dup, 0) << "messages delivered twice";
  EXPECT_EQ(total.load(), kMessages);
  kc::record_metric("messages", kMessages, "");
}
}  // namespace

TEST(chan_mpmc, unbuffered_100x100_exactly_once) { mpmc(0, 4); }
TEST(chan_mpmc, buffered_100x100_exactly_once) { mpmc(16, 4); }

// ================================================================ non-blocking

// try_send / try_recv return at once whatever the state, on goroutines and on
// plain threads (with nobody ever going to make them succeed).
TEST(chan_nonblocking, never_block) {
  auto check = [] {
    keel::Chan<int> unbuf(0), full(1), empty(1), nil;
    full.send(0);
    bool closed = true;
    const int64_t t0 = os::nanotime();
    for (int i = 0; i < 1000; ++i) {
      EXPECT_FALSE(unbuf.try_send(1)) << "no receiver waits";
      EXPECT_FALSE(full.try_send(1));
      EXPECT_FALSE(nil.try_send(1));
      EXPECT_EQ(unbuf.try_recv(&closed), std::nullopt);
      EXPECT_FALSE(closed);
      EXPECT_EQ(empty.try_recv(&closed), std::nullopt);
      EXPECT_FALSE(closed);
      EXPECT_EQ(nil.try_recv(&closed), std::nullopt);
      EXPECT_FALSE(closed) << "a nil channel is never closed";
    }
    return os::nanotime() - t0;
  };
  int64_t on_goroutine = 0;
  run_with_procs(1, [&] { on_goroutine = check(); });
  const int64_t on_thread = check();
  EXPECT_LT(on_goroutine, kc::scaled_ns(5 * kc::kSec));
  EXPECT_LT(on_thread, kc::scaled_ns(5 * kc::kSec));
  kc::record_metric("try_ops_goroutine", double(on_goroutine) / 6000, "ns/op");
  kc::record_metric("try_ops_thread", double(on_thread) / 6000, "ns/op");
}

// A move-only value offered to try_send is moved only if it is sent.
TEST(chan_nonblocking, failed_try_send_keeps_value) {
  keel::Chan<std::unique_ptr<int>> ch(1);
  auto a = std::make_unique<int>(1), b = std::make_unique<int>(2);
  EXPECT_TRUE(ch.try_send(std::move(a)));
  EXPECT_EQ(a, nullptr);
  EXPECT_FALSE(ch.try_send(std::move(b)));
  ASSERT_NE(b, nullptr) << "a failed try_send consumed the value";
  EXPECT_EQ(*b, 2);
  EXPECT_EQ(**ch.try_recv(), 1);
}

// The timer pattern (the lead's keel::after): a capacity-1 channel filled by
// try_send from outside any goroutine while a goroutine is parked receiving,
// and drained by try_recv until empty.
TEST(chan_nonblocking, plain_thread_try_send_wakes_parked_receiver) {
  constexpr int kRounds = 200;
  int delivered = 0;
  bool parked_every_time = true;
  run_with_procs(2, [&] {
    keel::Chan<int64_t> ch(1);
    for (int r = 0; r < kRounds; ++r) {
      keel::WaitGroup wg;
      wg.add(1);
      std::optional<int64_t> got;
      keel::go([&, ch] {
        got = ch.recv();
        wg.done();
      });
      parked_every_time = parked_every_time && wait_receivers(ch, 1);
      bool first_ok = false, second_ok = false;
      std::thread t([ch, r, &first_ok, &second_ok] {
        first_ok = ch.try_send(r);
        // The value went straight to the parked receiver: the slot is free.
        second_ok = ch.try_send(-1);
      });
      t.join();
      EXPECT_TRUE(first_ok) << "try_send failed with a parked receiver";
      EXPECT_TRUE(second_ok) << "the buffer slot should still be free";
      wg.wait();
      if (got == r) ++delivered;
      // Drain as Timer::stop will.
      int drained = 0;
      while (ch.try_recv()) ++drained;
      EXPECT_EQ(drained, 1);
    }
  });
  EXPECT_TRUE(parked_every_time);
  EXPECT_EQ(delivered, kRounds);
}

// ================================================================ payloads

TEST(chan_payload, move_only_everywhere) {
  int sum = 0;
  bool kept = false, moved = false;
  run_with_procs(2, [&] {
    keel::Chan<std::unique_ptr<int>> unbuf(0), buf(2);
    keel::go([unbuf] {
      for (int i = 1; i <= 10; ++i) unbuf.send(std::make_unique<int>(i));
      unbuf.close();
    });
    for (auto p : unbuf) sum += *p;  // range-for moves out
    EXPECT_TRUE(buf.try_send(std::make_unique<int>(100)));
    buf.send(std::make_unique<int>(200));
    sum += **buf.try_recv();
    // select: receive a unique_ptr; a losing send case keeps its value.
    auto mine = std::make_unique<int>(5);
    keel::Chan<std::unique_ptr<int>> nobody(0);
    keel::select(keel::on_recv(buf, [&](std::optional<std::unique_ptr<int>> v) {
                   if (v && *v) sum += **v;
                 }),
                 keel::on_send(nobody, std::move(mine)));
    kept = mine != nullptr && *mine == 5;
    // A winning send case moves the value out of the caller's object.
    keel::select(keel::on_send(buf, std::move(mine)), keel::on_send(nobody, std::make_unique<int>(0)));
    moved = mine == nullptr;
    sum += **buf.try_recv();
  });
  EXPECT_TRUE(moved) << "the chosen send case did not take the value";
  EXPECT_EQ(sum, 55 + 100 + 200 + 5);
  EXPECT_TRUE(kept);
}

TEST(chan_payload, not_default_constructible) {
  Counted::live.store(0);
  int sum = 0;
  run_with_procs(2, [&] {
    keel::Chan<Counted> ch(0), buf(3);
    keel::go([ch] {
      for (int i = 0; i < 10; ++i) ch.send(Counted(i));
      ch.close();
    });
    for (Counted c : ch) sum += c.v;
    buf.send(Counted(100));
    keel::select(keel::on_recv(buf, [&](std::optional<Counted> c) {
      if (c) sum += c->v;
    }));
  });
  EXPECT_EQ(sum, 145);
  EXPECT_EQ(Counted::live.load(), 0) << "a value was leaked or destroyed twice";
}

// ================================================================ plain threads

TEST(chan_plain_thread, thread_to_goroutine_and_back) {
  constexpr int kN = 2'000;
  int64_t sum_in_goroutine = 0, sum_in_thread = 0;
  run_with_procs(2, [&] {
    keel::Chan<int> to_g(0), to_t(0);
    keel::WaitGroup wg;
    wg.add(1);
    keel::go([&, to_g, to_t] {
      for (int v : to_g) sum_in_goroutine += v;
      for (int i = 0; i < kN; ++i) to_t.send(i);
      to_t.close();
      wg.done();
    });
    std::thread t([&, to_g, to_t] {
      for (int i = 0; i < kN; ++i) to_g.send(i);  // blocks the thread until the goroutine takes it
      to_g.close();
      for (int v : to_t) sum_in_thread += v;
    });
    wg.wait();
    t.join();
  });
  const int64_t expect = int64_t(kN) * (kN - 1) / 2;
  EXPECT_EQ(sum_in_goroutine, expect);
  EXPECT_EQ(sum_in_thread, expect);
}

// Channels work between plain threads with no goroutine anywhere.
// Plain threads that parked in keel (each gets a per-thread G) and then
// exit, many times: the per-thread state must go cleanly. On mingw-w64 a
// thread_local destructor runs on already freed storage (core/tls.h); before
// keel worked around it, this corrupted the heap under Wine. The heap churn
// afterwards makes a corruption crash here rather than somewhere later.
TEST(chan_plain_thread, threads_that_parked_then_exited_leave_heap_intact) {
  constexpr int kThreads = 64;
  int64_t sum = 0;
  run_with_procs(2, [&] {
    keel::Chan<int> ch(0);
    std::vector<std::thread> ts;
    std::atomic<int64_t> got{0};
    for (int i = 0; i < kThreads; ++i) {
      ts.emplace_back([ch, &got] {
        auto v = ch.recv();  // parks this thread on its note until a goroutine sends
        if (v) got.fetch_add(*v);
      });
    }
    for (int i = 1; i <= kThreads; ++i) ch.send(i);
    for (auto& t : ts) t.join();
    sum = got.load();
  });
  EXPECT_EQ(sum, int64_t(kThreads) * (kThreads + 1) / 2);
  std::vector<std::string> churn;
  for (int i = 0; i < 20'000; ++i) {
    churn.emplace_back(64 + i % 200, 'x');
    if (churn.size() > 500) churn.erase(churn.begin(), churn.begin() + 250);
  }
  EXPECT_FALSE(churn.empty());
}

TEST(chan_plain_thread, threads_without_runtime) {
  constexpr int kN = 2'000;
  keel::Chan<int> ch(0), done(0);
  int64_t sum = 0;
  std::thread consumer([&] {
    for (int v : ch) sum += v;
    done.send(1);
  });
  std::thread producer([&] {
    for (int i = 0; i < kN; ++i) ch.send(i);
    ch.close();
  });
  // A select on a plain thread too.
  int chosen = keel::select(keel::on_recv(done));
  producer.join();
  consumer.join();
  EXPECT_EQ(chosen, 0);
  EXPECT_EQ(sum, int64_t(kN) * (kN - 1) / 2);
}

// ================================================================ nil

TEST(chan_nil, try_ops_fail_and_close_throws) {
  keel::Chan<int> nil;
  EXPECT_FALSE(nil);
  EXPECT_TRUE(nil == keel::Chan<int>());
  keel::Chan<int> a(0), b = a, c(0);
  EXPECT_TRUE(a);
  EXPECT_TRUE(a == b);
  EXPECT_FALSE(a == c);
  EXPECT_FALSE(nil.try_send(1));
  bool closed = true;
  EXPECT_EQ(nil.try_recv(&closed), std::nullopt);
  EXPECT_FALSE(closed);
  EXPECT_THROW(nil.close(), keel::channel_closed);
}

// Receiving from a nil channel blocks forever: with nothing else alive, the
// deadlock detector reports it with the wait reason. Death-test patterns use
// only the regex subset every target has (no [] () {}).
TEST(chan_nil, recv_blocks_forever_deadlock) {
  EXPECT_EXIT(keel::run([] {
    keel::Chan<int> nil;
    nil.recv();
  }),
              ::testing::ExitedWithCode(2),
              "fatal error: all goroutines are asleep - deadlock!\n\n"
              "goroutine 1 .waiting, chan receive .nil chan., .* ms. created at .*chan_test.cpp:");
}

TEST(chan_nil, send_blocks_forever_deadlock) {
  EXPECT_EXIT(keel::run([] {
    keel::Chan<int> nil;
    nil.send(1);
  }),
              ::testing::ExitedWithCode(2),
              "fatal error: all goroutines are asleep - deadlock!\n\n"
              "goroutine 1 .waiting, chan send .nil chan., .* ms. created at .*chan_test.cpp:");
}

// ================================================================ select

// Two always-ready cases over many selects: each chosen half the time.
TEST(select_fairness, two_ready_cases_uniform) {
  const int n = kFairnessSelects;
  int first = 0, second = 0;
  run_with_procs(1, [&] {
    keel::Chan<int> a(1), b(1);
    a.send(0);
    b.send(0);
    for (int i = 0; i < n; ++i) {
      const int k = keel::select(keel::on_recv(a, [&](std::optional<int>) { a.send(0); }),
                                 keel::on_recv(b, [&](std::optional<int>) { b.send(0); }));
      (k == 0 ? first : second)++;
    }
  });
  EXPECT_EQ(first + second, n);
  const double share = double(first) / n;
  EXPECT_NEAR(share, 0.5, 0.02);
  kc::record_metric("selects", n, "");
  kc::record_metric("first_share", share, "");
}

// Four always-ready cases on four channels: a biased poll-order permutation
// would show up as an uneven share.
TEST(select_fairness, four_ready_cases_uniform) {
  const int n = kFairnessSelects;
  int counts[4] = {0, 0, 0, 0};
  run_with_procs(1, [&] {
    keel::Chan<int> c[4] = {keel::Chan<int>(1), keel::Chan<int>(1), keel::Chan<int>(1), keel::Chan<int>(1)};
    for (auto& ch : c) ch.send(0);
    auto refill = [&](int i) { return [&c, i](std::optional<int>) { c[i].send(0); }; };
    for (int i = 0; i < n; ++i) {
      const int k = keel::select(keel::on_recv(c[0], refill(0)), keel::on_recv(c[1], refill(1)),
                                 keel::on_recv(c[2], refill(2)), keel::on_recv(c[3], refill(3)));
      counts[k]++;
    }
  });
  for (int k = 0; k < 4; ++k) {
    EXPECT_NEAR(double(counts[k]) / n, 0.25, 0.02) << "case " << k;
    kc::record_metric("share_" + std::to_string(k), double(counts[k]) / n, "");
  }
}

TEST(select_default, never_blocks) {
  auto check = [] {
    keel::Chan<int> unbuf(0), full(1), empty(1), nil;
    full.send(0);
    int defaults = 0;
    for (int i = 0; i < 1000; ++i) {
      const int k = keel::select(keel::on_recv(unbuf), keel::on_recv(empty), keel::on_send(unbuf, 1),
                                 keel::on_send(full, 2), keel::on_recv(nil), keel::on_send(nil, 3),
                                 keel::on_default([&] { ++defaults; }));
      EXPECT_EQ(k, 6);
    }
    EXPECT_EQ(waiters(unbuf).senders + waiters(unbuf).receivers, 0u) << "a non-blocking select left a waiter";
    return defaults;
  };
  int on_goroutine = 0;
  run_with_procs(1, [&] { on_goroutine = check(); });
  EXPECT_EQ(on_goroutine, 1000);
  EXPECT_EQ(check(), 1000) << "on a plain thread";
  // Only a default: runs it.
  EXPECT_EQ(keel::select(keel::on_default()), 0);
}

TEST(select_default, ready_case_beats_default) {
  keel::Chan<int> ch(1);
  ch.send(9);
  std::optional<int> got;
  const int k = keel::select(keel::on_default(), keel::on_recv(ch, [&](std::optional<int> v) { got = v; }));
  EXPECT_EQ(k, 1);
  EXPECT_EQ(got, 9);
}

// Nil channels are never ready (the idiom for disabling a case); a closed
// channel's receive case is ready with nullopt; a send case on it throws.
TEST(select_nil_closed, as_go) {
  keel::Chan<int> nil, ready(1), closed(1);
  closed.close();
  ready.send(1);
  for (int i = 0; i < 100; ++i) {
    int k = keel::select(keel::on_recv(nil), keel::on_send(nil, 1), keel::on_recv(ready), keel::on_default());
    if (k == 2) ready.send(1);
    EXPECT_EQ(k, 2) << "a nil channel was chosen over a ready one";
  }
  std::optional<int> v = 0;
  bool ran = false;
  EXPECT_EQ(keel::select(keel::on_recv(nil), keel::on_recv(closed, [&](std::optional<int> x) {
                           v = x;
                           ran = true;
                         })),
            1);
  EXPECT_TRUE(ran);
  EXPECT_EQ(v, std::nullopt);
  bool send_ran = false;
  EXPECT_THROW(keel::select(keel::on_send(closed, 1, [&] { send_ran = true; })), keel::channel_closed);
  EXPECT_FALSE(send_ran);
  // A select whose only non-nil case is a blocked-forever one still waits
  // for it: woken here by another thread.
  keel::Chan<int> later(0);
  std::thread t([later] { later.send(5); });
  std::optional<int> got;
  EXPECT_EQ(keel::select(keel::on_recv(nil), keel::on_recv(later, [&](std::optional<int> x) { got = x; })), 1);
  t.join();
  EXPECT_EQ(got, 5);
}

TEST(select_block, woken_by_send_close_and_receiver) {
  bool ok = true;
  run_with_procs(2, [&] {
    keel::Chan<int> a(0), b(0), c(0);
    // Woken by a send on one of three.
    std::optional<int> got;
    keel::go([b, &ok] {
      ok = ok && wait_receivers(b, 1);
      b.send(11);
    });
    int k = keel::select(keel::on_recv(a), keel::on_recv(b, [&](std::optional<int> v) { got = v; }), keel::on_recv(c));
    EXPECT_EQ(k, 1);
    EXPECT_EQ(got, 11);
    // Woken by a close.
    keel::go([c, &ok] {
      ok = ok && wait_receivers(c, 1);
      c.close();
    });
    got = 0;
    k = keel::select(keel::on_recv(a), keel::on_recv(c, [&](std::optional<int> v) { got = v; }));
    EXPECT_EQ(k, 1);
    EXPECT_EQ(got, std::nullopt);
    // A blocked send case completed by a receiver.
    std::optional<int> received;
    keel::WaitGroup wg;
    wg.add(1);
    keel::go([a, &ok, &received, &wg] {
      ok = ok && wait_senders(a, 1);
      received = a.recv();
      wg.done();
    });
    bool sent = false;
    k = keel::select(keel::on_recv(b), keel::on_send(a, 77, [&] { sent = true; }));
    wg.wait();
    EXPECT_EQ(k, 1);
    EXPECT_TRUE(sent);
    EXPECT_EQ(received, 77);
  });
  EXPECT_TRUE(ok) << "a select never parked";
}

// A select blocked on a closed-while-waiting channel's send case throws.
TEST(select_block, send_case_throws_when_closed_while_waiting) {
  bool threw = false, ok = true;
  run_with_procs(2, [&] {
    keel::Chan<int> a(0), b(0);
    keel::go([a, &ok] {
      ok = wait_senders(a, 1);
      a.close();
    });
    try {
      keel::select(keel::on_send(a, 1), keel::on_recv(b));
    } catch (const keel::channel_closed&) {
      threw = true;
    }
    EXPECT_EQ(waiters(b).receivers, 0u);
  });
  EXPECT_TRUE(ok);
  EXPECT_TRUE(threw);
}

// After a select is completed by one case, it has no waiter left on the
// other channels: closing them wakes nobody, values sent there go to later
// receivers, and a non-blocking send there finds no receiver.
TEST(select_cleanup, no_registration_left_on_losing_channels) {
  bool ok = true;
  std::optional<int> later_got;
  run_with_procs(2, [&] {
    keel::Chan<int> a(0), b(0), c(0), d(0);
    std::atomic<int> chosen{-1};
    keel::WaitGroup wg;
    wg.add(1);
    keel::go([&, a, b, c, d] {
      chosen = keel::select(keel::on_recv(a), keel::on_recv(b), keel::on_send(c, 3), keel::on_recv(d), keel::on_recv(a));
      wg.done();
    });
    ok = wait_receivers(a, 2) && wait_receivers(b, 1) && wait_senders(c, 1) && wait_receivers(d, 1);
    b.send(1);
    wg.wait();
    EXPECT_EQ(chosen.load(), 1);
    for (auto* ch : {&a, &b, &d}) {
      EXPECT_EQ(waiters(*ch).receivers, 0u);
      EXPECT_EQ(waiters(*ch).senders, 0u);
    }
    EXPECT_EQ(waiters(c).senders, 0u) << "the losing send case is still queued";
    EXPECT_FALSE(a.try_send(1)) << "a stale select waiter took a value";
    EXPECT_EQ(c.try_recv(), std::nullopt) << "a stale select send case delivered";
    // A later receiver on d gets a later value (the select's waiter is not
    // in the way).
    keel::go([d] { d.send(9); });
    later_got = d.recv();
    a.close();
    c.close();
    d.close();
  });
  EXPECT_TRUE(ok);
  EXPECT_EQ(later_got, 9);
}

// The same channel in several cases of one select (locked once, waiters on
// both), blocking and non-blocking.
TEST(select_duplicate, same_channel_in_several_cases) {
  int counts[3] = {0, 0, 0};
  run_with_procs(2, [&] {
    keel::Chan<int> a(1), b(0);
    for (int i = 0; i < 1000; ++i) {
      a.send(i);
      const int k = keel::select(keel::on_recv(a), keel::on_recv(b), keel::on_recv(a));
      counts[k]++;
    }
    keel::go([a] {
      if (wait_receivers(a, 2)) a.send(1);
    });
    const int k = keel::select(keel::on_recv(a), keel::on_recv(b), keel::on_recv(a));
    EXPECT_TRUE(k == 0 || k == 2);
    EXPECT_EQ(waiters(a).receivers, 0u);
    EXPECT_EQ(waiters(b).receivers, 0u);
  });
  EXPECT_EQ(counts[1], 0);
  EXPECT_GT(counts[0], 350);
  EXPECT_GT(counts[2], 350);
}

// More cases than the select keeps inline (8): its scratch goes to the heap.
// Non-blocking over 12 ready cases (each chosen), then blocking, woken by
// the 11th, with no waiter left behind.
TEST(select_many, twelve_cases) {
  int counts[12] = {};
  int woken_by = -1;
  std::optional<int> got;
  bool parked = false;
  run_with_procs(2, [&] {
    std::vector<keel::Chan<int>> c;
    for (int i = 0; i < 12; ++i) c.emplace_back(1);
    auto on = [&](int i) { return keel::on_recv(c[i], [&got](std::optional<int> v) { got = v; }); };
    for (auto& ch : c) ch.send(0);
    for (int r = 0; r < 1200; ++r) {
      const int k = keel::select(on(0), on(1), on(2), on(3), on(4), on(5), on(6), on(7), on(8), on(9), on(10), on(11));
      counts[k]++;
      c[k].send(0);
    }
    for (auto& ch : c) ch.recv();  // all empty again
    keel::go([&parked, ch = c[10]] {
      parked = wait_receivers(ch, 1);
      ch.send(1011);
    });
    woken_by = keel::select(on(0), on(1), on(2), on(3), on(4), on(5), on(6), on(7), on(8), on(9), on(10), on(11));
    for (auto& ch : c) EXPECT_EQ(waiters(ch).receivers, 0u);
  });
  EXPECT_TRUE(parked);
  EXPECT_EQ(woken_by, 10);
  EXPECT_EQ(got, 1011);
  for (int k = 0; k < 12; ++k) EXPECT_GT(counts[k], 40) << "case " << k << " (expected ~100 of 1200)";
}

// No cases and no default: blocks forever; the deadlock report says so.
TEST(select_empty, blocks_forever_deadlock) {
  EXPECT_EXIT(keel::run([] { keel::select(); }), ::testing::ExitedWithCode(2),
              "fatal error: all goroutines are asleep - deadlock!\n\n"
              "goroutine 1 .waiting, select .no cases., .* ms. created at .*chan_test.cpp:");
}

// 8 channels of mixed capacity; 4 goroutines select-send over all 8, 4
// select-receive over all 8, for 1 s. Then the senders stop, the channels are
// closed and each receiver disables closed channels with the nil-channel
// trick until all are gone. Every value is received exactly once.
TEST(select_stress, eight_cases_eight_goroutines) {
  constexpr int kSenders = 4, kReceivers = 4, kChans = 8;
  constexpr size_t kCaps[kChans] = {0, 0, 0, 0, 1, 1, 4, 16};
  constexpr int kMaxPerSender = 1 << 22;
  std::vector<std::atomic<uint8_t>> seen(size_t(kSenders) * kMaxPerSender);
  int64_t sent_count[kSenders] = {};
  std::atomic<int64_t> received{0};
  std::atomic<int64_t> chosen_by_chan[kChans] = {};
  run_with_procs(4, [&] {
    std::vector<keel::Chan<int64_t>> chans;
    for (size_t cap : kCaps) chans.emplace_back(cap);
    std::atomic<bool> stop{false};
    keel::WaitGroup senders, receivers;
    senders.add(kSenders);
    receivers.add(kReceivers);
    for (int s = 0; s < kSenders; ++s)
      keel::go([&, s] {
        int64_t seq = 0;
        auto& c = chans;
        while (!stop.load(std::memory_order_relaxed) && seq < kMaxPerSender) {
          int64_t v = int64_t(s) * kMaxPerSender + seq;
          keel::select(keel::on_send(c[0], v), keel::on_send(c[1], v), keel::on_send(c[2], v), keel::on_send(c[3], v),
                       keel::on_send(c[4], v), keel::on_send(c[5], v), keel::on_send(c[6], v), keel::on_send(c[7], v));
          ++seq;
        }
        sent_count[s] = seq;
        senders.done();
      });
    for (int r = 0; r < kReceivers; ++r)
      keel::go([&] {
        std::vector<keel::Chan<int64_t>> c = chans;  // own handles, set to nil once closed
        int open = kChans;
        while (open > 0) {
          auto on = [&](int i) {
            return keel::on_recv(c[i], [&, i](std::optional<int64_t> v) {
              if (!v) {
                c[i] = keel::Chan<int64_t>();  // closed: never ready again
                --open;
                return;
              }
              seen[size_t(*v)].fetch_add(1, std::memory_order_relaxed);
              received.fetch_add(1, std::memory_order_relaxed);
              chosen_by_chan[i].fetch_add(1, std::memory_order_relaxed);
            });
          };
          keel::select(on(0), on(1), on(2), on(3), on(4), on(5), on(6), on(7));
        }
        receivers.done();
      });
    busy_for(1 * kc::kSec);
    stop.store(true);
    senders.wait();
    for (auto& ch : chans) ch.close();
    receivers.wait();
    for (auto& ch : chans) {
      EXPECT_EQ(waiters(ch).receivers, 0u);
      EXPECT_EQ(waiters(ch).senders, 0u);
    }
  });
  int64_t total_sent = 0, lost = 0, dup = 0;
  for (int s = 0; s < kSenders; ++s) {
    total_sent += sent_count[s];
    for (int64_t i = 0; i < kMaxPerSender; ++i) {
      const uint8_t n = seen[size_t(s) * kMaxPerSender + size_t(i)].load();
      if (i < sent_count[s] && n == 0) ++lost;
      if (n > 1 || (i >= sent_count[s] && n != 0)) ++dup;
    }
  }
  EXPECT_EQ(lost, 0) << "values sent but never received";
  EXPECT_EQ(dup, 0) << "values received twice (or never sent)";
  EXPECT_EQ(received.load(), total_sent);
  EXPECT_GT(total_sent, 1000) << "the stress barely ran";
  for (int i = 0; i < kChans; ++i) EXPECT_GT(chosen_by_chan[i].load(), 0) << "channel " << i << " never used";
  kc::record_metric("values", double(total_sent), "");
}
