// Poller benchmarks beside their floor, in one binary (Linux host legs):
//  - wake latency: poller_wake from another thread until poller_poll returns,
//    for each built kind, beside a raw epoll + eventfd wake;
//  - a one-thread echo loop of 512-byte messages over loopback with 4 and 100
//    connections, driven only through the contract (open, poll, arm), beside
//    the same loop hand-written on raw epoll (EPOLLET). Both sides of every
//    connection live in the one thread, so each round trip is two reads and
//    two writes through the poller.
// Numbers only; never gates CI. Ratios are keel / floor from one run.
#include <benchmark/benchmark.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "platform/os.h"

namespace os = keel::os;

namespace {

constexpr size_t kMsg = 512;

[[noreturn]] void die(const char* what) {
  std::perror(what);
  std::exit(1);
}

void nonblocking_nodelay(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

// n connected loopback pairs: fds[2i] client, fds[2i+1] server.
std::vector<int> make_pairs(int n) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (bind(l, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(l, 128) != 0 ||
      getsockname(l, reinterpret_cast<sockaddr*>(&a), &len) != 0)
    die("listener");
  std::vector<int> fds;
  for (int i = 0; i < n; ++i) {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) die("connect");
    int s = accept(l, nullptr, nullptr);
    if (s < 0) die("accept");
    nonblocking_nodelay(c);
    nonblocking_nodelay(s);
    fds.push_back(c);
    fds.push_back(s);
  }
  close(l);
  return fds;
}

// The echo protocol shared by both loops. Returns true when the fd hit
// would-block on read (so the contract loop re-arms it).
struct Echo {
  std::vector<int> fds;
  std::vector<size_t> got;  // per client: bytes of the reply received
  char msg[kMsg];
  int done = 0;

  explicit Echo(int n) : fds(make_pairs(n)), got(size_t(n), 0) { std::memset(msg, 'e', sizeof msg); }
  ~Echo() {
    for (int fd : fds) close(fd);
  }
  void start_round() {
    done = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      got[i] = 0;
      if (write(fds[2 * i], msg, kMsg) != ssize_t(kMsg)) die("client write");
    }
  }
  // Handle readability of fds[idx]; true if it read until would-block.
  bool on_readable(size_t idx) {
    char buf[4096];
    for (;;) {
      const ssize_t r = read(fds[idx], buf, sizeof buf);
      if (r < 0) {
        if (errno == EAGAIN) return true;
        die("read");
      }
      if (r == 0) die("unexpected EOF");
      if (idx % 2 == 1) {  // server: echo what came
        if (write(fds[idx], buf, size_t(r)) != r) die("server write");
      } else if ((got[idx / 2] += size_t(r)) == kMsg) {
        ++done;
      }
    }
  }
};

// ------------------------------------------------------------ wake latency
struct WakeRig {
  std::atomic<uint64_t> request{0};
  std::atomic<int64_t> woke_at{0};
  std::atomic<bool> stop{false};
  std::thread t;
  template <class Wake>
  void start(Wake wake) {
    t = std::thread([this, wake] {
      uint64_t seen = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        const uint64_t r = request.load(std::memory_order_acquire);
        if (r == seen) continue;
        seen = r;
        woke_at.store(os::nanotime(), std::memory_order_release);
        wake();
      }
    });
  }
  ~WakeRig() {
    stop = true;
    if (t.joinable()) t.join();
  }
};

void BM_wake_latency(benchmark::State& st, os::PollerKind kind) {
  os::Poller p;
  if (os::poller_init(&p, kind) != os::Error::ok) {
    st.SkipWithError("kind not built");
    return;
  }
  {
    WakeRig rig;
    rig.start([&p] { os::poller_wake(&p); });
    os::PollEvent ev[4];
    for (auto _ : st) {
      rig.request.fetch_add(1, std::memory_order_acq_rel);
      int n = 0;
      os::poller_poll(&p, -1, ev, 4, &n);
      const int64_t back = os::nanotime();
      st.SetIterationTime(double(back - rig.woke_at.load(std::memory_order_acquire)) / 1e9);
    }
  }
  os::poller_destroy(&p);
}

void BM_floor_wake_latency_raw_epoll(benchmark::State& st) {
  const int ep = epoll_create1(0), efd = eventfd(0, EFD_NONBLOCK);
  epoll_event e{};
  e.events = EPOLLIN;
  epoll_ctl(ep, EPOLL_CTL_ADD, efd, &e);
  {
    WakeRig rig;
    rig.start([efd] {
      const uint64_t one = 1;
      if (write(efd, &one, sizeof one) < 0) die("eventfd write");
    });
    epoll_event out[4];
    for (auto _ : st) {
      rig.request.fetch_add(1, std::memory_order_acq_rel);
      while (epoll_wait(ep, out, 4, -1) < 1) {
      }
      uint64_t v;
      if (read(efd, &v, sizeof v) < 0) die("eventfd read");
      const int64_t back = os::nanotime();
      st.SetIterationTime(double(back - rig.woke_at.load(std::memory_order_acquire)) / 1e9);
    }
  }
  close(efd);
  close(ep);
}

// -------------------------------------------------------------------- echo
void BM_echo(benchmark::State& st, os::PollerKind kind) {
  const int conns = int(st.range(0));
  Echo echo(conns);
  os::Poller p;
  if (os::poller_init(&p, kind) != os::Error::ok) {
    st.SkipWithError("kind not built");
    return;
  }
  for (size_t i = 0; i < echo.fds.size(); ++i)
    if (os::poller_open(&p, os::io_handle_from_fd(echo.fds[i]), i) != os::Error::ok) die("poller_open");
  std::vector<os::PollEvent> evs(256);
  for (auto _ : st) {
    echo.start_round();
    while (echo.done < conns) {
      int n = 0;
      os::poller_poll(&p, -1, evs.data(), int(evs.size()), &n);
      for (int i = 0; i < n; ++i) {
        if (!(evs[size_t(i)].events & os::poll_readable)) continue;
        const size_t idx = size_t(evs[size_t(i)].token);
        if (echo.on_readable(idx)) os::poller_arm(&p, os::io_handle_from_fd(echo.fds[idx]), os::PollDir::read);
      }
    }
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * conns);  // round trips
  for (int fd : echo.fds) os::poller_close(&p, os::io_handle_from_fd(fd));
  os::poller_destroy(&p);
}

void BM_floor_echo_raw_epoll(benchmark::State& st) {
  const int conns = int(st.range(0));
  Echo echo(conns);
  const int ep = epoll_create1(0);
  for (size_t i = 0; i < echo.fds.size(); ++i) {
    epoll_event e{};
    e.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    e.data.u64 = i;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, echo.fds[i], &e) != 0) die("epoll_ctl");
  }
  std::vector<epoll_event> evs(256);
  for (auto _ : st) {
    echo.start_round();
    while (echo.done < conns) {
      const int n = epoll_wait(ep, evs.data(), int(evs.size()), -1);
      for (int i = 0; i < n; ++i)
        if (evs[size_t(i)].events & EPOLLIN) echo.on_readable(size_t(evs[size_t(i)].data.u64));
    }
  }
  st.SetItemsProcessed(int64_t(st.iterations()) * conns);
  close(ep);
}

}  // namespace

// keel and floor interleaved, so drift on a noisy machine hits both sides.
BENCHMARK_CAPTURE(BM_wake_latency, epoll, os::PollerKind::epoll)->UseManualTime();
BENCHMARK_CAPTURE(BM_wake_latency, poll, os::PollerKind::poll)->UseManualTime();
BENCHMARK(BM_floor_wake_latency_raw_epoll)->UseManualTime();
BENCHMARK_CAPTURE(BM_echo, epoll, os::PollerKind::epoll)->Arg(4)->Arg(100);
BENCHMARK_CAPTURE(BM_echo, poll, os::PollerKind::poll)->Arg(4)->Arg(100);
BENCHMARK(BM_floor_echo_raw_epoll)->Arg(4)->Arg(100);
BENCHMARK_MAIN();
