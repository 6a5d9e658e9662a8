// Contract group 6: the poller. One typed suite, instantiated for every
// poller kind on every target (IDs poller.<kind>.<property>); a kind that is
// not built for the target skips with the reason. Sockets come from
// net_helpers (127.0.0.1 only).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "conformance/harness.h"
#include "conformance/net_helpers.h"
#include "platform/duration.h"
#include "platform/os.h"

namespace kc = keel::conformance;
namespace net = keel::conformance::net;
namespace os = keel::os;

namespace {

const char* not_built_reason(os::PollerKind k) {
  switch (k) {
    case os::PollerKind::epoll: return "epoll is Linux-only (not built for this target)";
    case os::PollerKind::kqueue: return "kqueue is Darwin/BSD-only (not built for this target)";
    case os::PollerKind::iocp: return "IOCP is Windows-only (not built for this target)";
    case os::PollerKind::poll: return "the poll(2) fallback is POSIX-only (not built for this target)";
  }
  return "not built for this target";
}

std::string bits(uint32_t e) {
  std::string s;
  auto add = [&](uint32_t b, const char* n) {
    if (e & b) s += s.empty() ? n : std::string("|") + n;
  };
  add(os::poll_readable, "readable");
  add(os::poll_writable, "writable");
  add(os::poll_error, "error");
  add(os::poll_hangup, "hangup");
  add(os::poll_read_closed, "read_closed");
  add(os::poll_completed, "completed");
  return s.empty() ? "none" : s;
}

template <os::PollerKind K>
struct Kind {
  static constexpr os::PollerKind kind = K;
};

struct KindNames {
  template <class T>
  static std::string GetName(int) {
    return os::poller_kind_name(T::kind);
  }
};

using AllKinds = ::testing::Types<Kind<os::PollerKind::epoll>, Kind<os::PollerKind::kqueue>,
                                  Kind<os::PollerKind::iocp>, Kind<os::PollerKind::poll>>;

// Per-test state for one poller of the suite's kind.
class PollerFixture {
 public:
  os::Poller p;
  bool ready = false;

  std::vector<os::PollEvent> poll_once(int64_t timeout_ns, int max = 64) {
    std::vector<os::PollEvent> out(static_cast<size_t>(max));
    int n = -1;
    const os::Error e = os::poller_poll(&p, timeout_ns, out.data(), max, &n);
    EXPECT_EQ(e, os::Error::ok) << os::error_name(e);
    out.resize(n < 0 ? 0 : size_t(n));
    return out;
  }

  // Every event that arrives within window_ns.
  std::vector<os::PollEvent> collect(int64_t window_ns) {
    std::vector<os::PollEvent> all;
    const int64_t end = os::nanotime() + window_ns;
    for (int64_t now = os::nanotime(); now < end; now = os::nanotime()) {
      for (const os::PollEvent& e : poll_once(end - now)) all.push_back(e);
    }
    return all;
  }

  // Poll until a poll of quiet_ns returns nothing (initial events consumed).
  std::vector<os::PollEvent> settle(int64_t quiet_ns = 50 * kc::kMs) {
    std::vector<os::PollEvent> all;
    const int64_t give_up = os::nanotime() + kc::scaled_ns(2 * kc::kSec);
    while (os::nanotime() < give_up) {
      std::vector<os::PollEvent> got = poll_once(quiet_ns);
      if (got.empty()) break;
      all.insert(all.end(), got.begin(), got.end());
    }
    return all;
  }

  // Poll until an event for token carries any of want; every event for the
  // token seen on the way is appended to seen. When rearm is given, a
  // readable event that lacks want is followed by poller_arm(read), as core
  // would do after reading and finding more to come.
  bool wait_for(uint64_t token, uint32_t want, int64_t timeout_ns, std::vector<os::PollEvent>* seen,
                os::IoHandle rearm = os::kInvalidIoHandle) {
    const int64_t end = os::nanotime() + timeout_ns;
    for (int64_t now = os::nanotime(); now < end; now = os::nanotime()) {
      for (const os::PollEvent& e : poll_once(end - now)) {
        if (e.token != token) continue;
        if (seen != nullptr) seen->push_back(e);
        if (e.events & want) return true;
        if (rearm != os::kInvalidIoHandle) os::poller_arm(&p, rearm, os::PollDir::read);
      }
    }
    return false;
  }
};

}  // namespace

template <class T>
class poller : public ::testing::Test, public PollerFixture {
 protected:
  static constexpr os::PollerKind kKind = T::kind;
  void SetUp() override {
    if (!os::poller_built(kKind)) GTEST_SKIP() << not_built_reason(kKind);
    ASSERT_TRUE(net::init());
    ASSERT_EQ(os::poller_init(&p, kKind), os::Error::ok);
    ready = true;
  }
  void TearDown() override {
    if (ready) os::poller_destroy(&p);
  }
};
TYPED_TEST_SUITE(poller, AllKinds, KindNames);

using os::poll_token;

TYPED_TEST(poller, one_byte_one_readable_event) {
  net::Pair pr;
  ASSERT_TRUE(net::tcp_pair(&pr)) << net::last_error_text();
  const uint64_t tok = poll_token(1, 1);
  ASSERT_EQ(os::poller_open(&this->p, pr.a, tok), os::Error::ok);
  this->settle();
  const char c = 'x';
  const int64_t t0 = os::nanotime();
  ASSERT_EQ(net::send_some(pr.b, &c, 1), 1);
  std::vector<os::PollEvent> seen;
  ASSERT_TRUE(this->wait_for(tok, os::poll_readable, kc::scaled_ns(500 * kc::kMs), &seen))
      << "no readable event within 500 ms of a one-byte write";
  kc::record_metric("write_to_event", double(os::nanotime() - t0) / 1e3, "us");
  // The rest of the window: the same byte must not be reported again.
  for (const os::PollEvent& e : this->collect(50 * kc::kMs))
    if (e.token == tok) seen.push_back(e);
  int readable = 0;
  for (const os::PollEvent& e : seen) readable += (e.events & os::poll_readable) ? 1 : 0;
  EXPECT_EQ(readable, 1) << "one byte must give exactly one readable event";
  bool eof = false;
  EXPECT_EQ(net::drain(pr.a, &eof), 1u);
  EXPECT_FALSE(eof);
  ASSERT_EQ(os::poller_arm(&this->p, pr.a, os::PollDir::read), os::Error::ok);
  for (const os::PollEvent& e : this->collect(50 * kc::kMs))
    EXPECT_NE(e.token, tok) << "event after the byte was drained: " << bits(e.events);
}

// mio#1963: re-arming read after a would-block must not produce a writable
// event (a level-triggered backend that re-arms both directions livelocks a
// reader that treats every event as progress).
TYPED_TEST(poller, rearm_read_reports_no_writable) {
  net::Pair pr;
  ASSERT_TRUE(net::tcp_pair(&pr)) << net::last_error_text();
  const uint64_t tok = poll_token(2, 1);
  ASSERT_EQ(os::poller_open(&this->p, pr.a, tok), os::Error::ok);
  this->settle();
  char buf[16];
  for (int round = 0; round < 5; ++round) {
    ASSERT_EQ(net::recv_some(pr.a, buf, sizeof buf), net::kWouldBlock);
    ASSERT_EQ(os::poller_arm(&this->p, pr.a, os::PollDir::read), os::Error::ok);
    for (const os::PollEvent& e : this->collect(30 * kc::kMs)) {
      EXPECT_FALSE(e.token == tok && (e.events & os::poll_writable))
          << "round " << round << ": arming read produced " << bits(e.events);
    }
  }
  const char c = 'y';
  ASSERT_EQ(net::send_some(pr.b, &c, 1), 1);
  EXPECT_TRUE(this->wait_for(tok, os::poll_readable, kc::scaled_ns(500 * kc::kMs), nullptr))
      << "reading still works after the re-arms";
}

TYPED_TEST(poller, read_never_reports_writable_and_vice_versa) {
  net::Pair pr;
  ASSERT_TRUE(net::tcp_pair(&pr)) << net::last_error_text();
  const uint64_t tok = poll_token(3, 1);
  ASSERT_EQ(os::poller_open(&this->p, pr.a, tok), os::Error::ok);
  this->settle();
  // a cannot write: its send buffer and b's receive buffer are full.
  const size_t filled = net::fill_send_buffer(pr.a);
  ASSERT_GT(filled, 0u);
  kc::record_metric("buffered", double(filled) / 1024, "KiB");
  ASSERT_EQ(os::poller_arm(&this->p, pr.a, os::PollDir::write), os::Error::ok);
  this->settle();
  // Readable while not writable: the event must not say writable.
  const char c = 'z';
  ASSERT_EQ(net::send_some(pr.b, &c, 1), 1);
  std::vector<os::PollEvent> seen;
  ASSERT_TRUE(this->wait_for(tok, os::poll_readable, kc::scaled_ns(500 * kc::kMs), &seen));
  for (const os::PollEvent& e : seen)
    EXPECT_FALSE(e.events & os::poll_writable) << "a full socket reported " << bits(e.events);
  EXPECT_EQ(net::drain(pr.a), 1u);
  ASSERT_EQ(os::poller_arm(&this->p, pr.a, os::PollDir::read), os::Error::ok);
  // Writable while not readable: b drains everything a sent.
  size_t got = 0;
  const int64_t end = os::nanotime() + kc::scaled_ns(10 * kc::kSec);
  while (got < filled && os::nanotime() < end) {
    const size_t n = net::drain(pr.b);
    got += n;
    if (n == 0) os::sleep_ns(kc::kMs);
  }
  ASSERT_EQ(got, filled);
  seen.clear();
  ASSERT_TRUE(this->wait_for(tok, os::poll_writable, kc::scaled_ns(500 * kc::kMs), &seen))
      << "no writable event after the peer drained the buffers";
  for (const os::PollEvent& e : seen)
    EXPECT_FALSE(e.events & os::poll_readable) << "a socket with nothing to read reported " << bits(e.events);
}

TYPED_TEST(poller, peer_fin_read_closed_with_data_readable) {
  net::Pair pr;
  ASSERT_TRUE(net::tcp_pair(&pr)) << net::last_error_text();
  const uint64_t tok = poll_token(4, 1);
  ASSERT_EQ(os::poller_open(&this->p, pr.a, tok), os::Error::ok);
  this->settle();
  ASSERT_EQ(net::send_some(pr.b, "fin!", 4), 4);
  ASSERT_TRUE(net::shutdown_write(pr.b));
  std::vector<os::PollEvent> seen;
  EXPECT_TRUE(this->wait_for(tok, os::poll_read_closed | os::poll_hangup, kc::scaled_ns(500 * kc::kMs), &seen,
                             pr.a))
      << "the peer's FIN was not reported as read_closed or hangup; events: " << [&] {
           std::string all;
           for (size_t i = 0; i < seen.size() && i < 4; ++i) all += bits(seen[i].events) + " ";
           return all + "(" + std::to_string(seen.size()) + " events)";
         }();
  if (!seen.empty()) kc::record_info("fin_event", bits(seen.back().events));
  // The data sent before the FIN is still there, then EOF.
  char buf[16] = {};
  EXPECT_EQ(net::recv_some(pr.a, buf, sizeof buf), 4);
  EXPECT_EQ(std::string(buf, 4), "fin!");
  EXPECT_EQ(net::recv_some(pr.a, buf, sizeof buf), 0) << "EOF after the buffered data";
}

TYPED_TEST(poller, rst_reports_error) {
  net::Pair pr;
  ASSERT_TRUE(net::tcp_pair(&pr)) << net::last_error_text();
  const uint64_t tok = poll_token(5, 1);
  ASSERT_EQ(os::poller_open(&this->p, pr.a, tok), os::Error::ok);
  this->settle();
  net::reset_close(pr.b);
  pr.b = os::kInvalidIoHandle;
  std::vector<os::PollEvent> seen;
  EXPECT_TRUE(this->wait_for(tok, os::poll_error, kc::scaled_ns(500 * kc::kMs), &seen, pr.a))
      << "a reset connection was not reported as error";
  if (!seen.empty()) kc::record_info("rst_event", bits(seen.back().events));
}

TYPED_TEST(poller, failed_connect_error_once_then_quiet) {
  const uint16_t port = net::closed_port();
  ASSERT_NE(port, 0);
  // Loopback may refuse synchronously; the poller only sees the attempts
  // that go pending, so try a few times.
  os::IoHandle s = os::kInvalidIoHandle;
  int immediate = 0;
  for (int attempt = 0; attempt < 10 && s == os::kInvalidIoHandle; ++attempt) {
    os::IoHandle c = net::tcp_socket();
    ASSERT_NE(c, os::kInvalidIoHandle);
    const net::ConnectResult r = net::connect_start(c, port);
    if (r == net::ConnectResult::in_progress) {
      s = c;
      break;
    }
    EXPECT_EQ(r, net::ConnectResult::refused) << "connect to a closed port: " << net::last_error_text();
    net::close_handle(c);
    ++immediate;
  }
  kc::record_metric("refused_synchronously", immediate, "");
  if (s == os::kInvalidIoHandle) return;  // every attempt failed at once, as an error: nothing to poll
  const uint64_t tok = poll_token(6, 1);
  ASSERT_EQ(os::poller_open(&this->p, s, tok), os::Error::ok);
  std::vector<os::PollEvent> seen;
  // Windows retries a refused SYN for about a second.
  EXPECT_TRUE(this->wait_for(tok, os::poll_error, kc::scaled_ns(5 * kc::kSec), &seen))
      << "a refused connect was not reported as error";
  EXPECT_TRUE(net::is_refused(net::pending_error(s))) << "SO_ERROR " << net::pending_error(s);
  for (const os::PollEvent& e : this->collect(200 * kc::kMs))
    if (e.token == tok) seen.push_back(e);
  int errors = 0;
  for (const os::PollEvent& e : seen) errors += (e.events & os::poll_error) ? 1 : 0;
  EXPECT_EQ(errors, 1) << "the failure must be reported once, then the socket stays quiet";
  if (!seen.empty()) kc::record_info("failed_connect_event", bits(seen.front().events));
  EXPECT_EQ(os::poller_close(&this->p, s), os::Error::ok);
  net::close_handle(s);
}

TYPED_TEST(poller, local_shutdown_write_not_peer_hangup) {
  net::Pair pr;
  ASSERT_TRUE(net::tcp_pair(&pr)) << net::last_error_text();
  const uint64_t tok = poll_token(7, 1);
  ASSERT_EQ(os::poller_open(&this->p, pr.a, tok), os::Error::ok);
  this->settle();
  ASSERT_TRUE(net::shutdown_write(pr.a));
  for (const os::PollEvent& e : this->collect(100 * kc::kMs))
    EXPECT_FALSE(e.token == tok && (e.events & (os::poll_hangup | os::poll_read_closed)))
        << "our own shutdown(SHUT_WR) was reported as " << bits(e.events);
  bool eof = false;
  const int64_t end = os::nanotime() + kc::scaled_ns(kc::kSec);
  while (!eof && os::nanotime() < end) {
    net::drain(pr.b, &eof);
    if (!eof) os::sleep_ns(kc::kMs);
  }
  EXPECT_TRUE(eof) << "the peer did not see our FIN";
  // The read side is still open: data arrives as plain readable.
  ASSERT_EQ(net::send_some(pr.b, "k", 1), 1);
  std::vector<os::PollEvent> seen;
  EXPECT_TRUE(this->wait_for(tok, os::poll_readable, kc::scaled_ns(500 * kc::kMs), &seen, pr.a));
  for (const os::PollEvent& e : seen)
    EXPECT_FALSE(e.events & (os::poll_hangup | os::poll_read_closed))
        << "data after our shutdown(SHUT_WR) was reported as " << bits(e.events);
  char c = 0;
  EXPECT_EQ(net::recv_some(pr.a, &c, 1), 1);
}

TYPED_TEST(poller, close_without_deregister_no_stale_event) {
  net::Pair pr;
  ASSERT_TRUE(net::tcp_pair(&pr)) << net::last_error_text();
  const uint64_t tok = poll_token(8, 1);
  ASSERT_EQ(os::poller_open(&this->p, pr.a, tok), os::Error::ok);
  this->settle();
  net::close_handle(pr.a);  // no poller_close
  pr.a = os::kInvalidIoHandle;
  net::send_some(pr.b, "x", 1);  // the peer keeps talking to a closed socket
  for (const os::PollEvent& e : this->collect(100 * kc::kMs))
    ADD_FAILURE() << "event after close without deregistering: token " << e.token << " " << bits(e.events);
  // The poller still works for others.
  net::Pair other;
  ASSERT_TRUE(net::tcp_pair(&other));
  const uint64_t tok2 = poll_token(9, 1);
  ASSERT_EQ(os::poller_open(&this->p, other.a, tok2), os::Error::ok);
  EXPECT_TRUE(this->wait_for(tok2, os::poll_writable, kc::scaled_ns(500 * kc::kMs), nullptr));
}

// Go #59545: a descriptor closed without deregistering and its number reused.
// Events for the predecessor may still arrive (an open file kept alive by a
// dup, or a packet already queued), but always with the predecessor's token,
// whose tag core no longer accepts; the successor's token only ever describes
// the successor.
TYPED_TEST(poller, reused_handle_gets_no_predecessor_event) {
  net::Pair old;
  ASSERT_TRUE(net::tcp_pair(&old)) << net::last_error_text();
  const uint64_t tok_old = poll_token(10, 1), tok_new = poll_token(10, 2);
  ASSERT_EQ(os::poller_open(&this->p, old.a, tok_old), os::Error::ok);
  this->settle();
  ASSERT_EQ(net::send_some(old.b, "o", 1), 1);  // the predecessor becomes readable; nobody polls yet
  const os::IoHandle value = old.a;
  const os::IoHandle keep = net::dup_handle(old.a);  // POSIX: the open file outlives the descriptor
  net::close_handle(old.a);
  old.a = os::kInvalidIoHandle;
  // Find a successor with the same handle value (POSIX: the lowest free fd;
  // Windows recycles handle values quickly).
  std::vector<net::Pair> spare;
  net::Pair fresh;
  for (int i = 0; i < 64; ++i) {
    ASSERT_TRUE(net::tcp_pair(&fresh)) << net::last_error_text();
    if (fresh.a == value) break;
    spare.push_back(std::move(fresh));
  }
  const bool reused = fresh.a == value;
  kc::record_metric("value_reused", reused ? 1 : 0, "");
  ASSERT_EQ(os::poller_open(&this->p, fresh.a, tok_new), os::Error::ok);
  // More for the predecessor (fails where closing it with unread data reset
  // the connection, as Windows does without a dup to keep it open).
  net::send_some(old.b, "o", 1);
  int stale = 0;
  for (const os::PollEvent& e : this->collect(200 * kc::kMs)) {
    if (e.token == tok_old) {
      ++stale;  // recognisable: its tag is not the slot's current tag
    } else if (e.token == tok_new) {
      EXPECT_FALSE(e.events & (os::poll_readable | os::poll_read_closed | os::poll_error | os::poll_hangup))
          << "the successor, which has nothing to read, got " << bits(e.events);
    } else {
      ADD_FAILURE() << "unknown token " << e.token;
    }
  }
  kc::record_metric("stale_events", stale, "");
  ASSERT_EQ(net::send_some(fresh.b, "n", 1), 1);
  EXPECT_TRUE(this->wait_for(tok_new, os::poll_readable, kc::scaled_ns(500 * kc::kMs), nullptr))
      << "the successor's own data was not reported";
  if (keep != os::kInvalidIoHandle) net::close_handle(keep);
}

TYPED_TEST(poller, wake_before_poll_not_lost) {
  ASSERT_EQ(os::poller_wake(&this->p), os::Error::ok);
  const int64_t t0 = os::nanotime();
  std::vector<os::PollEvent> got = this->poll_once(kc::scaled_ns(5 * kc::kSec));
  const int64_t took = os::nanotime() - t0;
  EXPECT_TRUE(got.empty());
  EXPECT_LT(took, kc::scaled_ns(kc::kSec)) << "a wake before the poll was lost";
  kc::record_metric("return_after_early_wake", double(took) / 1e3, "us");
}

TYPED_TEST(poller, wakes_coalesce) {
  for (int i = 0; i < 100; ++i) ASSERT_EQ(os::poller_wake(&this->p), os::Error::ok);
  const int64_t t0 = os::nanotime();
  EXPECT_TRUE(this->poll_once(kc::scaled_ns(5 * kc::kSec)).empty());
  EXPECT_LT(os::nanotime() - t0, kc::scaled_ns(kc::kSec));
  // 100 wakes before one poll are one wake: the next poll times out.
  const int64_t t1 = os::nanotime();
  EXPECT_TRUE(this->poll_once(50 * kc::kMs).empty());
  EXPECT_GE(os::nanotime() - t1, 50 * kc::kMs) << "a second poll returned early: the wakes did not coalesce";
}

namespace {
struct Waker {
  os::Poller* p;
  int64_t delay_ns;
  std::atomic<int64_t> woke_at{0};
};
void waker_body(void* arg) {
  auto* w = static_cast<Waker*>(arg);
  os::sleep_ns(w->delay_ns);
  w->woke_at.store(os::nanotime());
  os::poller_wake(w->p);
}
}  // namespace

// Forever (negative) and the largest finite timeout both block until the
// wake: neither may turn into a short or zero wait.
TYPED_TEST(poller, wake_from_another_thread) {
  for (int64_t timeout : {int64_t(-1), INT64_MAX}) {
    Waker w{&this->p, 30 * kc::kMs};
    const int64_t t0 = os::nanotime();
    os::Thread t;
    ASSERT_EQ(os::thread_start(&t, waker_body, &w), os::Error::ok);
    std::vector<os::PollEvent> got = this->poll_once(timeout);
    const int64_t back = os::nanotime();
    ASSERT_EQ(os::thread_join(t), os::Error::ok);
    EXPECT_TRUE(got.empty());
    EXPECT_GE(back - t0, 30 * kc::kMs) << "poll(" << timeout << ") returned before the wake";
    EXPECT_GE(back, w.woke_at.load());
    kc::record_metric(timeout < 0 ? "wake_latency" : "wake_latency_max_timeout", double(back - w.woke_at.load()) / 1e3,
                      "us");
  }
}

TYPED_TEST(poller, timeout_never_early) {
  net::Pair pr;  // a registered, quiet socket, so the poll has something to watch
  ASSERT_TRUE(net::tcp_pair(&pr));
  ASSERT_EQ(os::poller_open(&this->p, pr.a, poll_token(11, 1)), os::Error::ok);
  this->settle();
  for (int64_t t : {int64_t(1), int64_t(1'000), kc::kMs, kc::kMs + 1, 5 * kc::kMs, 20 * kc::kMs}) {
    const int64_t t0 = os::nanotime();
    std::vector<os::PollEvent> got = this->poll_once(t);
    const int64_t took = os::nanotime() - t0;
    EXPECT_TRUE(got.empty());
    EXPECT_GE(took, t) << "poll(" << t << " ns) returned after " << took << " ns";
    EXPECT_LT(took, t + kc::scaled_ns(kc::kSec)) << "gross bound";
    if (t == kc::kMs || t == 20 * kc::kMs)
      kc::record_metric("overshoot_" + std::to_string(t / kc::kMs) + "ms", double(took - t) / 1e3, "us");
  }
}

TYPED_TEST(poller, zero_timeout_returns_ready_at_once) {
  int64_t t0 = os::nanotime();
  EXPECT_TRUE(this->poll_once(0).empty());
  EXPECT_LT(os::nanotime() - t0, kc::scaled_ns(50 * kc::kMs)) << "poll(0) with nothing ready blocked";
  net::Pair pr;
  ASSERT_TRUE(net::tcp_pair(&pr));
  const uint64_t tok = poll_token(12, 1);
  ASSERT_EQ(os::poller_open(&this->p, pr.a, tok), os::Error::ok);
  this->settle();
  ASSERT_EQ(net::send_some(pr.b, "r", 1), 1);
  // Wait until the byte has arrived and the OS has noticed (synchronous on
  // Linux loopback; Wine's server completes AFD polls asynchronously), then
  // every poll(0) must return at once, and one of the first must carry it.
  os::sleep_ns(50 * kc::kMs);
  bool readable = false;
  int attempts = 0;
  int64_t slowest = 0;
  while (!readable && attempts < 20) {
    if (attempts++ > 0) os::sleep_ns(10 * kc::kMs);
    t0 = os::nanotime();
    std::vector<os::PollEvent> got = this->poll_once(0);
    slowest = std::max(slowest, os::nanotime() - t0);
    for (const os::PollEvent& e : got) readable |= e.token == tok && (e.events & os::poll_readable);
  }
  EXPECT_TRUE(readable) << "poll(0) never returned the ready socket";
  EXPECT_LT(slowest, kc::scaled_ns(50 * kc::kMs)) << "poll(0) blocked";
  kc::record_metric("poll0_cost", double(slowest) / 1e3, "us");
  kc::record_metric("poll0_calls_until_event", attempts, "");
}

namespace {
struct LateOpen {
  os::Poller* p;
  os::IoHandle h;
  uint64_t token;
  std::atomic<int> result{-1};
};
void late_open_body(void* arg) {
  auto* l = static_cast<LateOpen*>(arg);
  os::sleep_ns(30 * kc::kMs);
  l->result.store(int(os::poller_open(l->p, l->h, l->token)));
}
}  // namespace

TYPED_TEST(poller, register_while_poll_blocked) {
  net::Pair pr;
  ASSERT_TRUE(net::tcp_pair(&pr));
  ASSERT_EQ(net::send_some(pr.b, "b", 1), 1);  // already readable when registered
  const uint64_t tok = poll_token(13, 1);
  LateOpen l{&this->p, pr.a, tok};
  os::Thread t;
  ASSERT_EQ(os::thread_start(&t, late_open_body, &l), os::Error::ok);
  const int64_t t0 = os::nanotime();
  std::vector<os::PollEvent> seen;
  const bool ok = this->wait_for(tok, os::poll_readable, kc::scaled_ns(5 * kc::kSec), &seen);
  const int64_t took = os::nanotime() - t0;
  ASSERT_EQ(os::thread_join(t), os::Error::ok);
  EXPECT_EQ(l.result.load(), int(os::Error::ok));
  EXPECT_TRUE(ok) << "a registration made while another thread was blocked in poll was not reported";
  kc::record_metric("blocked_poll_saw_new_fd_after", double(took) / 1e6, "ms");
}

TYPED_TEST(poller, thousand_sockets_each_event_once) {
  constexpr int kN = 1000;
  std::vector<net::Pair> pairs(kN);
  for (int i = 0; i < kN; ++i) {
    ASSERT_TRUE(net::tcp_pair(&pairs[size_t(i)])) << "pair " << i << ": " << net::last_error_text();
    ASSERT_EQ(os::poller_open(&this->p, pairs[size_t(i)].a, poll_token(uint64_t(i), 1)), os::Error::ok) << i;
  }
  this->settle();
  for (int i = 0; i < kN; ++i) ASSERT_EQ(net::send_some(pairs[size_t(i)].b, "t", 1), 1);
  std::vector<int> readable(kN, 0);
  int distinct = 0;
  const int64_t t0 = os::nanotime();
  const int64_t end = t0 + kc::scaled_ns(10 * kc::kSec);
  auto take = [&](const std::vector<os::PollEvent>& evs) {
    for (const os::PollEvent& e : evs) {
      const uint64_t i = os::poll_token_key(e.token);
      ASSERT_LT(i, uint64_t(kN));
      if (!(e.events & os::poll_readable)) continue;
      if (readable[i]++ == 0) ++distinct;
    }
  };
  while (distinct < kN && os::nanotime() < end) take(this->poll_once(100 * kc::kMs, 256));
  kc::record_metric("all_ready_after", double(os::nanotime() - t0) / 1e6, "ms");
  take(this->collect(100 * kc::kMs));
  EXPECT_EQ(distinct, kN) << "sockets whose readable event never came";
  int dup = 0;
  for (int i = 0; i < kN; ++i) dup += readable[size_t(i)] > 1 ? 1 : 0;
  EXPECT_EQ(dup, 0) << "sockets reported readable more than once for one byte";
}

TYPED_TEST(poller, invalid_handle_rejected) {
  EXPECT_EQ(os::poller_open(&this->p, os::kInvalidIoHandle, 1), os::Error::invalid_argument);
  EXPECT_EQ(os::poller_close(&this->p, os::kInvalidIoHandle), os::Error::invalid_argument);
  os::IoHandle s = net::tcp_socket();
  ASSERT_NE(s, os::kInvalidIoHandle);
  EXPECT_EQ(os::poller_close(&this->p, s), os::Error::invalid_argument) << "closing an unregistered handle";
  const os::Error arm = os::poller_arm(&this->p, s, os::PollDir::read);
  EXPECT_TRUE(arm == os::Error::ok || arm == os::Error::invalid_argument) << os::error_name(arm);
  EXPECT_EQ(os::poller_open(&this->p, s, os::kPollReservedToken), os::Error::invalid_argument);
  ASSERT_EQ(os::poller_open(&this->p, s, 1), os::Error::ok);
  EXPECT_EQ(os::poller_open(&this->p, s, 2), os::Error::ok) << "re-opening replaces the token";
  EXPECT_EQ(os::poller_close(&this->p, s), os::Error::ok);
  EXPECT_EQ(os::poller_close(&this->p, s), os::Error::invalid_argument) << "closing twice";
  net::close_handle(s);
  EXPECT_EQ(os::poller_open(&this->p, s, 1), os::Error::invalid_argument) << "a closed handle";
  os::PollEvent ev;
  int n = -1;
  EXPECT_EQ(os::poller_poll(&this->p, 0, nullptr, 1, &n), os::Error::invalid_argument);
  EXPECT_EQ(os::poller_poll(&this->p, 0, &ev, 0, &n), os::Error::invalid_argument);
  EXPECT_EQ(os::poller_poll(nullptr, 0, &ev, 1, &n), os::Error::invalid_argument);
  EXPECT_EQ(os::poller_wake(nullptr), os::Error::invalid_argument);
  EXPECT_EQ(os::poller_init(nullptr, os::PollerKind::poll), os::Error::invalid_argument);
  os::IoOp op;
  const os::Error sub = os::poller_submit(&this->p, &op);  // handle is invalid
  EXPECT_TRUE(sub == os::Error::invalid_argument) << os::error_name(sub);
}

// A few thousand random steps over 16 slots (fixed seed): register, close with
// and without deregistering (so handle values get reused under a stale
// registration), write, poll. Invariants: no token from the future or from
// nowhere, the current token of a slot never reports data its socket does not
// have, and every written byte is reported to the current registration.
TYPED_TEST(poller, randomized_add_close_reuse) {
  constexpr int kSlots = 16, kSteps = 3000;
  struct Slot {
    net::Pair pr;
    uint32_t seq = 0;
    bool live = false;
    int unread = 0;
    int written_at = -1;
  };
  std::vector<Slot> slots(kSlots);
  std::mt19937 rng(59545);
  int stale = 0, events = 0, closes_without_dereg = 0;
  std::vector<os::IoHandle> dups;
  auto handle = [&](const std::vector<os::PollEvent>& evs, int step) {
    for (const os::PollEvent& e : evs) {
      ++events;
      const uint64_t key = os::poll_token_key(e.token);
      const uint32_t tag = os::poll_token_tag(e.token);
      ASSERT_LT(key, uint64_t(kSlots)) << "token from nowhere at step " << step;
      Slot& s = slots[key];
      ASSERT_LE(tag, s.seq) << "token from the future at step " << step;
      if (tag != s.seq || !s.live) {
        ++stale;
        continue;
      }
      if (e.events & os::poll_readable) {
        bool eof = false;
        const size_t n = net::drain(s.pr.a, &eof);
        EXPECT_FALSE(eof) << "slot " << key << " step " << step;
        EXPECT_TRUE(n > 0 || s.unread == 0) << "slot " << key << " lost data";
        EXPECT_FALSE(n == 0 && s.unread == 0)
            << "slot " << key << " step " << step << ": readable with nothing to read (a predecessor's event?) "
            << bits(e.events);
        s.unread = 0;
        s.written_at = -1;
        os::poller_arm(&this->p, s.pr.a, os::PollDir::read);
      }
    }
  };
  auto settle_all = [&](int step) {
    const int64_t end = os::nanotime() + kc::scaled_ns(2 * kc::kSec);
    for (;;) {
      bool waiting = false;
      for (const Slot& s : slots) waiting |= s.live && s.unread > 0;
      if (!waiting) return;
      if (os::nanotime() > end) {
        for (int i = 0; i < kSlots; ++i)
          if (slots[size_t(i)].live && slots[size_t(i)].unread > 0)
            ADD_FAILURE() << "slot " << i << " written at step " << slots[size_t(i)].written_at
                          << " was never reported readable (checked at step " << step << ")";
        return;
      }
      handle(this->poll_once(10 * kc::kMs), step);
    }
  };
  for (int step = 0; step < kSteps && !::testing::Test::HasFatalFailure(); ++step) {
    Slot& s = slots[rng() % kSlots];
    const unsigned op = rng() % 100;
    const uint64_t key = uint64_t(&s - slots.data());
    if (op < 20) {  // open
      if (s.live) continue;
      ASSERT_TRUE(net::tcp_pair(&s.pr)) << net::last_error_text();
      ++s.seq;
      ASSERT_EQ(os::poller_open(&this->p, s.pr.a, poll_token(key, s.seq)), os::Error::ok) << "step " << step;
      s.live = true;
    } else if (op < 40) {  // close, with (20-29) or without (30-39) deregistering
      if (!s.live) continue;
      if (op < 30) {
        ASSERT_EQ(os::poller_close(&this->p, s.pr.a), os::Error::ok) << "step " << step;
      } else {
        ++closes_without_dereg;
        // Half of those keep a dup of the descriptor for a while (POSIX), so
        // the open file and an epoll registration outlive the number.
        if (op < 35) {
          const os::IoHandle d = net::dup_handle(s.pr.a);
          if (d != os::kInvalidIoHandle) dups.push_back(d);
        }
      }
      s.pr.close_both();
      ++s.seq;  // core bumps the tag at close
      s.live = false;
      s.unread = 0;
    } else if (op < 70) {  // write
      if (!s.live) continue;
      ASSERT_EQ(net::send_some(s.pr.b, "w", 1), 1);
      if (s.unread++ == 0) s.written_at = step;
    } else {
      handle(this->poll_once(0, 32), step);
    }
    if (step % 250 == 249) {
      settle_all(step);
      for (os::IoHandle d : dups) net::close_handle(d);
      dups.clear();
    }
  }
  for (os::IoHandle d : dups) net::close_handle(d);
  settle_all(kSteps);
  kc::record_metric("events", events, "");
  kc::record_metric("stale", stale, "");
  kc::record_metric("closes_without_deregister", closes_without_dereg, "");
  for (Slot& s : slots) {
    if (s.live) os::poller_close(&this->p, s.pr.a);
    s.pr.close_both();
  }
}

// ----------------------------------------------------------------- untyped

TEST(poller_kinds, built_and_default) {
  const os::PollerKindList built = os::pollers_built();
  ASSERT_GE(built.count, 1u);
  EXPECT_EQ(built.kinds[0], os::poller_default()) << "the default comes first";
  std::string names;
  for (os::PollerKind k : built) {
    EXPECT_TRUE(os::poller_built(k));
    EXPECT_STRNE(os::poller_traits(k).mechanism, "");
    names += std::string(names.empty() ? "" : ",") + os::poller_kind_name(k);
  }
  kc::record_info("built", names);
  kc::record_info("default", os::poller_kind_name(os::poller_default()));
  for (os::PollerKind k : os::kAllPollerKinds) {
    if (os::poller_built(k)) continue;
    os::Poller p;
    EXPECT_EQ(os::poller_init(&p, k), os::Error::not_supported) << os::poller_kind_name(k);
  }
  // Edge-triggered kinds need no arming; the others do.
  for (os::PollerKind k : built) EXPECT_NE(os::poller_traits(k).edge_triggered, os::poller_traits(k).needs_arm);
}

TEST(poller_timeout, conversions_round_up_and_saturate) {
  constexpr int64_t kIntMax = INT_MAX;
  EXPECT_EQ(os::poll_timeout_ms(-1, kIntMax, -1), -1);
  EXPECT_EQ(os::poll_timeout_ms(INT64_MIN, kIntMax, -1), -1);
  EXPECT_EQ(os::poll_timeout_ms(0, kIntMax, -1), 0);
  EXPECT_EQ(os::poll_timeout_ms(1, kIntMax, -1), 1) << "1 ns must not become a 0 ms poll";
  EXPECT_EQ(os::poll_timeout_ms(kc::kMs, kIntMax, -1), 1);
  EXPECT_EQ(os::poll_timeout_ms(kc::kMs + 1, kIntMax, -1), 2);
  EXPECT_EQ(os::poll_timeout_ms(INT64_MAX, kIntMax, -1), kIntMax) << "saturates instead of wrapping";
  EXPECT_EQ(os::poll_timeout_ms((int64_t(1) << 32) * kc::kMs + 5 * kc::kMs, 0xFFFFFFFE, 0xFFFFFFFF), 0xFFFFFFFE)
      << "2^32 ms must not truncate to a short DWORD wait, nor reach INFINITE";
  const os::SecNsec a = os::ns_to_timespec_capped(1, 100'000'000);
  EXPECT_EQ(a.sec, 0);
  EXPECT_EQ(a.nsec, 1);
  const os::SecNsec b = os::ns_to_timespec_capped(3 * kc::kSec + 7, 100'000'000);
  EXPECT_EQ(b.sec, 3);
  EXPECT_EQ(b.nsec, 7);
  const os::SecNsec c = os::ns_to_timespec_capped(INT64_MAX, 100'000'000);
  EXPECT_EQ(c.sec, 100'000'000) << "Darwin's kevent rejects tv_sec above 10^8";
  EXPECT_EQ(c.nsec, 0);
}

TEST(poller_token, tag_round_trip) {
  const uint64_t t = os::poll_token(123456789, 0xABCDE);
  EXPECT_EQ(os::poll_token_key(t), 123456789u);
  EXPECT_EQ(os::poll_token_tag(t), 0xABCDEu);
  EXPECT_EQ(os::poll_token_tag(os::poll_token(1, os::kPollTagMask + 1)), 0u) << "the tag wraps, the key is intact";
  EXPECT_EQ(os::poll_token_key(os::poll_token(1, os::kPollTagMask + 1)), 1u);
  EXPECT_NE(os::poll_token(1, 1), os::poll_token(1, 2));
}
