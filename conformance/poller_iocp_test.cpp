// Completion-model operations of the Windows poller (IOCP): overlapped
// AcceptEx / ConnectEx / WSARecv / WSASend through the poller's port, and
// CancelIoEx. IDs poller.iocp.*; every other target skips them with the same
// reason as the rest of poller.iocp.
#include <gtest/gtest.h>

#include <cstring>
#include <deque>
#include <memory>
#include <vector>

#include "conformance/harness.h"
#include "conformance/net_helpers.h"
#include "platform/os.h"

namespace kc = keel::conformance;
namespace net = keel::conformance::net;
namespace os = keel::os;

namespace {

constexpr int32_t kErrorOperationAborted = 995;  // ERROR_OPERATION_ABORTED

class IocpOps : public ::testing::Test {
 protected:
  os::Poller p;
  bool ready = false;
  void SetUp() override {
    if (!os::poller_built(os::PollerKind::iocp) || !os::poller_traits(os::PollerKind::iocp).completion_ops)
      GTEST_SKIP() << "IOCP is Windows-only (not built for this target)";
    ASSERT_TRUE(net::init());
    ASSERT_EQ(os::poller_init(&p, os::PollerKind::iocp), os::Error::ok);
    ready = true;
  }
  void TearDown() override {
    if (ready) os::poller_destroy(&p);
  }
  // Poll until op's completion arrives (other completions go to others).
  bool wait_op(os::IoOp* op, int64_t timeout_ns, std::vector<os::IoOp*>* others = nullptr) {
    const int64_t end = os::nanotime() + timeout_ns;
    os::PollEvent evs[16];
    for (int64_t now = os::nanotime(); now < end; now = os::nanotime()) {
      int n = 0;
      if (os::poller_poll(&p, end - now, evs, 16, &n) != os::Error::ok) return false;
      bool found = false;
      for (int i = 0; i < n; ++i) {
        if (!(evs[i].events & os::poll_completed)) continue;
        if (evs[i].op == op) {
          found = true;
        } else if (others != nullptr) {
          others->push_back(evs[i].op);
        }
      }
      if (found) return true;
    }
    return false;
  }
};

}  // namespace

using poller_iocp = IocpOps;

TEST_F(poller_iocp, overlapped_read_cancel_aborted) {
  net::Pair pr;
  ASSERT_TRUE(net::tcp_pair(&pr, /*blocking=*/true)) << net::last_error_text();
  ASSERT_EQ(os::poller_associate(&p, pr.a), os::Error::ok);
  char buf[64];
  os::IoOp op;
  op.kind = os::IoOpKind::recv;
  op.handle = pr.a;
  op.buf = buf;
  op.len = sizeof buf;
  op.token = 77;
  ASSERT_EQ(os::poller_submit(&p, &op), os::Error::ok);
  EXPECT_FALSE(wait_op(&op, 50 * kc::kMs)) << "a read with nothing to read completed";
  const int64_t t0 = os::nanotime();
  ASSERT_EQ(os::poller_cancel(&p, &op), os::Error::ok);
  // The OVERLAPPED lives in op until this completion: only then may op go.
  ASSERT_TRUE(wait_op(&op, kc::scaled_ns(5 * kc::kSec))) << "the cancelled read never completed";
  kc::record_metric("cancel_to_completion", double(os::nanotime() - t0) / 1e3, "us");
  EXPECT_EQ(op.os_error, kErrorOperationAborted);
  EXPECT_EQ(op.transferred, 0u);
  EXPECT_EQ(op.token, 77u);
  // The port and the socket still work: a second read gets the data.
  os::IoOp op2;
  op2.kind = os::IoOpKind::recv;
  op2.handle = pr.a;
  op2.buf = buf;
  op2.len = sizeof buf;
  ASSERT_EQ(os::poller_submit(&p, &op2), os::Error::ok);
  ASSERT_EQ(net::send_some(pr.b, "data", 4), 4);
  ASSERT_TRUE(wait_op(&op2, kc::scaled_ns(5 * kc::kSec)));
  EXPECT_EQ(op2.os_error, 0);
  EXPECT_EQ(op2.transferred, 4u);
  EXPECT_EQ(std::memcmp(buf, "data", 4), 0);
  EXPECT_EQ(os::poller_cancel(&p, &op2), os::Error::ok) << "cancelling a finished operation is harmless";
}

namespace {
// Byte j of message i: a pattern that catches reordering, loss and duplication.
unsigned char pattern(uint32_t i, uint32_t j) { return static_cast<unsigned char>((i * 131u + j * 7u + (i >> 8)) & 0xFF); }
uint32_t msg_size(uint32_t i) { return 1 + (i * 7919u) % 512u; }
}  // namespace

TEST_F(poller_iocp, overlapped_echo_10000_exact) {
  constexpr uint32_t kMessages = 10'000;
  constexpr size_t kWindow = 8;  // client sends in flight
  // Accept and connect through the port.
  uint16_t port = 0;
  const os::IoHandle listener = net::tcp_listener(&port, /*blocking=*/true);
  ASSERT_NE(listener, os::kInvalidIoHandle);
  ASSERT_EQ(os::poller_associate(&p, listener), os::Error::ok);
  const os::IoHandle server = net::tcp_socket(true);
  const os::IoHandle client = net::tcp_socket(true);
  ASSERT_NE(server, os::kInvalidIoHandle);
  ASSERT_NE(client, os::kInvalidIoHandle);
  ASSERT_TRUE(net::bind_any(client));  // ConnectEx needs a bound socket
  ASSERT_EQ(os::poller_associate(&p, client), os::Error::ok);
  os::IoOp acc;
  acc.kind = os::IoOpKind::accept;
  acc.handle = listener;
  acc.accept_handle = server;
  ASSERT_EQ(os::poller_submit(&p, &acc), os::Error::ok) << acc.os_error;
  os::IoOp con;
  con.kind = os::IoOpKind::connect;
  con.handle = client;
  con.addr_len = net::loopback_sockaddr(port, con.addr, sizeof con.addr);
  ASSERT_EQ(os::poller_submit(&p, &con), os::Error::ok) << con.os_error;
  std::vector<os::IoOp*> early;
  ASSERT_TRUE(wait_op(&acc, kc::scaled_ns(5 * kc::kSec), &early));
  bool con_done = false;
  for (os::IoOp* o : early) con_done |= o == &con;
  if (!con_done) {
    ASSERT_TRUE(wait_op(&con, kc::scaled_ns(5 * kc::kSec)));
  }
  ASSERT_EQ(acc.os_error, 0);
  ASSERT_EQ(con.os_error, 0);
  ASSERT_EQ(os::poller_associate(&p, server), os::Error::ok);

  // The expected byte stream.
  std::vector<unsigned char> expect;
  std::vector<size_t> offset(kMessages + 1, 0);
  for (uint32_t i = 0; i < kMessages; ++i) {
    offset[i] = expect.size();
    for (uint32_t j = 0; j < msg_size(i); ++j) expect.push_back(pattern(i, j));
  }
  offset[kMessages] = expect.size();

  struct Op {
    os::IoOp io;
    std::vector<unsigned char> data;
    enum Role { client_send, client_recv, server_send, server_recv } role;
  };
  std::deque<std::unique_ptr<Op>> live;  // every op in flight is owned here until its completion
  auto start = [&](Op::Role role, os::IoHandle h, std::vector<unsigned char> data, os::IoOpKind kind) -> Op* {
    auto o = std::make_unique<Op>();
    o->role = role;
    o->data = std::move(data);
    o->io.kind = kind;
    o->io.handle = h;
    o->io.buf = o->data.data();
    o->io.len = static_cast<uint32_t>(o->data.size());
    o->io.token = reinterpret_cast<uintptr_t>(o.get());
    if (os::poller_submit(&p, &o->io) != os::Error::ok) {
      ADD_FAILURE() << "submit failed: os error " << o->io.os_error;
      return nullptr;
    }
    live.push_back(std::move(o));
    return live.back().get();
  };
  auto send_msg = [&](uint32_t i) {
    std::vector<unsigned char> d(expect.begin() + long(offset[i]), expect.begin() + long(offset[i + 1]));
    return start(Op::client_send, client, std::move(d), os::IoOpKind::send);
  };

  std::vector<unsigned char> received;
  received.reserve(expect.size());
  uint32_t next = 0;
  size_t sends_in_flight = 0;
  ASSERT_NE(start(Op::server_recv, server, std::vector<unsigned char>(8192), os::IoOpKind::recv), nullptr);
  ASSERT_NE(start(Op::client_recv, client, std::vector<unsigned char>(8192), os::IoOpKind::recv), nullptr);
  while (next < kMessages && sends_in_flight < kWindow) {
    ASSERT_NE(send_msg(next++), nullptr);
    ++sends_in_flight;
  }
  const int64_t t0 = os::nanotime();
  const int64_t end = t0 + kc::scaled_ns(60 * kc::kSec);
  os::PollEvent evs[64];
  bool failed = false;
  while (received.size() < expect.size() && os::nanotime() < end && !failed) {
    int n = 0;
    ASSERT_EQ(os::poller_poll(&p, kc::scaled_ns(kc::kSec), evs, 64, &n), os::Error::ok);
    for (int e = 0; e < n; ++e) {
      ASSERT_TRUE(evs[e].events & os::poll_completed);
      Op* o = reinterpret_cast<Op*>(static_cast<uintptr_t>(evs[e].token));
      ASSERT_EQ(&o->io, evs[e].op);
      if (o->io.os_error != 0) {
        ADD_FAILURE() << "operation role " << int(o->role) << " failed with os error " << o->io.os_error;
        failed = true;
      }
      const uint32_t got = o->io.transferred;
      switch (o->role) {
        case Op::server_recv:
          if (got == 0) break;  // EOF
          start(Op::server_send, server, std::vector<unsigned char>(o->data.begin(), o->data.begin() + got),
                os::IoOpKind::send);
          start(Op::server_recv, server, std::vector<unsigned char>(8192), os::IoOpKind::recv);
          break;
        case Op::server_send:
          EXPECT_EQ(got, o->io.len) << "short overlapped send";
          break;
        case Op::client_send:
          EXPECT_EQ(got, o->io.len) << "short overlapped send";
          --sends_in_flight;
          while (next < kMessages && sends_in_flight < kWindow) {
            send_msg(next++);
            ++sends_in_flight;
          }
          break;
        case Op::client_recv:
          received.insert(received.end(), o->data.begin(), o->data.begin() + got);
          if (got > 0) start(Op::client_recv, client, std::vector<unsigned char>(8192), os::IoOpKind::recv);
          break;
      }
      for (auto it = live.begin(); it != live.end(); ++it)
        if (it->get() == o) {
          live.erase(it);
          break;
        }
    }
  }
  const int64_t took = os::nanotime() - t0;
  kc::record_metric("echo_time", double(took) / 1e6, "ms");
  kc::record_metric("bytes", double(expect.size()), "");
  EXPECT_EQ(next, kMessages);
  ASSERT_EQ(received.size(), expect.size()) << "the echo did not finish";
  EXPECT_TRUE(received == expect) << "the echoed stream differs from what was sent";
  // Tear down: every op still in flight (the two reads) completes, aborted,
  // before its memory goes.
  for (auto& o : live) os::poller_cancel(&p, &o->io);
  const int64_t drain_end = os::nanotime() + kc::scaled_ns(5 * kc::kSec);
  while (!live.empty() && os::nanotime() < drain_end) {
    int n = 0;
    os::poller_poll(&p, 100 * kc::kMs, evs, 64, &n);
    for (int e = 0; e < n; ++e)
      for (auto it = live.begin(); it != live.end(); ++it)
        if (&(*it)->io == evs[e].op) {
          live.erase(it);
          break;
        }
  }
  EXPECT_TRUE(live.empty()) << live.size() << " operations never completed after cancel";
  for (auto& o : live) (void)o.release();  // never free memory the OS may still write
  net::close_handle(client);
  net::close_handle(server);
  net::close_handle(listener);
}
