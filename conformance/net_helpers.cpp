// Loopback socket helpers. See net_helpers.h.
#include "conformance/net_helpers.h"

#include <cstring>

#if defined(_WIN32)
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <winsock2.h>
#include <ws2tcpip.h>
#include <windows.h>
using sock_t = SOCKET;
#else
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
using sock_t = int;
#endif

namespace keel::conformance::net {

namespace {

thread_local int g_last_error = 0;

sock_t S(IoHandle h) { return static_cast<sock_t>(h); }
IoHandle H(sock_t s) {
#if defined(_WIN32)
  return s == INVALID_SOCKET ? kInvalidIoHandle : static_cast<IoHandle>(s);
#else
  return s < 0 ? kInvalidIoHandle : os::io_handle_from_fd(s);
#endif
}

int os_error() {
#if defined(_WIN32)
  return WSAGetLastError();
#else
  return errno;
#endif
}

bool would_block(int e) {
#if defined(_WIN32)
  return e == WSAEWOULDBLOCK;
#else
  return e == EAGAIN || e == EWOULDBLOCK;
#endif
}

bool set_blocking(sock_t s, bool blocking) {
#if defined(_WIN32)
  u_long nb = blocking ? 0 : 1;
  return ioctlsocket(s, FIONBIO, &nb) == 0;
#else
  const int fl = fcntl(s, F_GETFL);
  if (fl < 0) return false;
  return fcntl(s, F_SETFL, blocking ? (fl & ~O_NONBLOCK) : (fl | O_NONBLOCK)) == 0 &&
         fcntl(s, F_SETFD, FD_CLOEXEC) == 0;
#endif
}

sockaddr_in loopback(uint16_t port) {
  sockaddr_in a;
  std::memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

void no_delay(sock_t s) {
  int one = 1;
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, reinterpret_cast<const char*>(&one), sizeof one);
}

// One listener per thread makes pairs cheaply (the 1,000-socket test).
struct PairListener {
  sock_t s;
  uint16_t port = 0;
  PairListener() { s = S(tcp_listener(&port, true)); }
  ~PairListener() {
    if (H(s) != kInvalidIoHandle) close_handle(H(s));
  }
};

}  // namespace

bool init() {
#if defined(_WIN32)
  static const bool ok = [] {
    WSADATA d;
    return WSAStartup(MAKEWORD(2, 2), &d) == 0;
  }();
  return ok;
#else
  static const bool ok = [] {
    signal(SIGPIPE, SIG_IGN);
    rlimit r;
    if (getrlimit(RLIMIT_NOFILE, &r) == 0 && r.rlim_cur < 4096) {
      r.rlim_cur = r.rlim_max == RLIM_INFINITY || r.rlim_max > 4096 ? 4096 : r.rlim_max;
      setrlimit(RLIMIT_NOFILE, &r);
    }
    return true;
  }();
  return ok;
#endif
}

Pair& Pair::operator=(Pair&& o) noexcept {
  if (this != &o) {
    close_both();
    a = o.a;
    b = o.b;
    o.a = o.b = kInvalidIoHandle;
  }
  return *this;
}
Pair::~Pair() { close_both(); }
void Pair::close_both() {
  if (a != kInvalidIoHandle) close_handle(a);
  if (b != kInvalidIoHandle) close_handle(b);
  a = b = kInvalidIoHandle;
}

IoHandle tcp_socket(bool blocking) {
  init();
  sock_t s = ::socket(AF_INET, SOCK_STREAM, IPPROTO_TCP);
  if (H(s) == kInvalidIoHandle) {
    g_last_error = os_error();
    return kInvalidIoHandle;
  }
  set_blocking(s, blocking);
  return H(s);
}

bool bind_any(IoHandle h) {
  sockaddr_in a = loopback(0);
  if (::bind(S(h), reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0) return true;
  g_last_error = os_error();
  return false;
}

IoHandle tcp_listener(uint16_t* port, bool blocking) {
  IoHandle h = tcp_socket(true);
  if (h == kInvalidIoHandle) return h;
  sockaddr_in a = loopback(0);
  socklen_t len = sizeof a;
  if (::bind(S(h), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0 || ::listen(S(h), 128) != 0 ||
      ::getsockname(S(h), reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    g_last_error = os_error();
    close_handle(h);
    return kInvalidIoHandle;
  }
  if (port != nullptr) *port = ntohs(a.sin_port);
  set_blocking(S(h), blocking);
  return h;
}

bool tcp_pair(Pair* out, bool blocking) {
  thread_local PairListener l;
  if (H(l.s) == kInvalidIoHandle) return false;
  IoHandle c = tcp_socket(true);
  if (c == kInvalidIoHandle) return false;
  sockaddr_in a = loopback(l.port);
  if (::connect(S(c), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
    g_last_error = os_error();
    close_handle(c);
    return false;
  }
  sock_t s = ::accept(l.s, nullptr, nullptr);
  if (H(s) == kInvalidIoHandle) {
    g_last_error = os_error();
    close_handle(c);
    return false;
  }
  set_blocking(S(c), blocking);
  set_blocking(s, blocking);
  no_delay(S(c));
  no_delay(s);
  out->close_both();
  out->a = c;
  out->b = H(s);
  return true;
}

uint16_t closed_port() {
  uint16_t port = 0;
  IoHandle l = tcp_listener(&port, true);
  if (l != kInvalidIoHandle) close_handle(l);
  return port;
}

uint32_t loopback_sockaddr(uint16_t port, unsigned char* out, size_t cap) {
  sockaddr_in a = loopback(port);
  if (cap < sizeof a) return 0;
  std::memcpy(out, &a, sizeof a);
  return sizeof a;
}

ConnectResult connect_start(IoHandle h, uint16_t port) {
  sockaddr_in a = loopback(port);
  if (::connect(S(h), reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0) return ConnectResult::connected;
  const int e = g_last_error = os_error();
#if defined(_WIN32)
  if (e == WSAEWOULDBLOCK || e == WSAEINPROGRESS) return ConnectResult::in_progress;
#else
  if (e == EINPROGRESS || e == EINTR) return ConnectResult::in_progress;
#endif
  return is_refused(e) ? ConnectResult::refused : ConnectResult::failed;
}

bool is_refused(int e) {
#if defined(_WIN32)
  return e == WSAECONNREFUSED || e == 1225 /* ERROR_CONNECTION_REFUSED */;
#else
  return e == ECONNREFUSED;
#endif
}

int64_t send_some(IoHandle h, const void* buf, size_t len) {
#if defined(_WIN32)
  const int r = ::send(S(h), static_cast<const char*>(buf), static_cast<int>(len), 0);
#else
  ssize_t r;
#if defined(MSG_NOSIGNAL)
  constexpr int kFlags = MSG_NOSIGNAL;
#else
  constexpr int kFlags = 0;  // Darwin: SIGPIPE is ignored by init()
#endif
  do r = ::send(S(h), buf, len, kFlags);
  while (r < 0 && errno == EINTR);
#endif
  if (r >= 0) return r;
  g_last_error = os_error();
  return would_block(g_last_error) ? kWouldBlock : kFailed;
}

int64_t recv_some(IoHandle h, void* buf, size_t len) {
#if defined(_WIN32)
  const int r = ::recv(S(h), static_cast<char*>(buf), static_cast<int>(len), 0);
#else
  ssize_t r;
  do r = ::recv(S(h), buf, len, 0);
  while (r < 0 && errno == EINTR);
#endif
  if (r >= 0) return r;
  g_last_error = os_error();
  return would_block(g_last_error) ? kWouldBlock : kFailed;
}

int last_error() { return g_last_error; }
std::string last_error_text() { return "error " + std::to_string(g_last_error); }

size_t drain(IoHandle h, bool* eof) {
  if (eof != nullptr) *eof = false;
  char buf[16384];
  size_t total = 0;
  for (;;) {
    const int64_t r = recv_some(h, buf, sizeof buf);
    if (r > 0) {
      total += size_t(r);
      continue;
    }
    if (r == 0 && eof != nullptr) *eof = true;
    return total;
  }
}

size_t fill_send_buffer(IoHandle h) {
  static char chunk[65536];
  size_t total = 0;
  // Loopback moves data into the peer's receive buffer and may grow windows
  // after the first would-block: repeat until a pass writes nothing.
  for (int pass = 0; pass < 50; ++pass) {
    size_t this_pass = 0;
    for (;;) {
      const int64_t r = send_some(h, chunk, sizeof chunk);
      if (r <= 0) break;
      this_pass += size_t(r);
    }
    total += this_pass;
    if (this_pass == 0 && pass > 0) break;
    os::sleep_ns(20'000'000);
  }
  return total;
}

bool shutdown_write(IoHandle h) {
#if defined(_WIN32)
  return ::shutdown(S(h), SD_SEND) == 0;
#else
  return ::shutdown(S(h), SHUT_WR) == 0;
#endif
}

void close_handle(IoHandle h) {
  if (h == kInvalidIoHandle) return;
#if defined(_WIN32)
  ::closesocket(S(h));
#else
  ::close(S(h));
#endif
}

void reset_close(IoHandle h) {
  linger l;
  l.l_onoff = 1;
  l.l_linger = 0;
  setsockopt(S(h), SOL_SOCKET, SO_LINGER, reinterpret_cast<const char*>(&l), sizeof l);
  close_handle(h);
}

IoHandle dup_handle(IoHandle h) {
#if defined(_WIN32)
  (void)h;
  return kInvalidIoHandle;
#else
  return H(::dup(S(h)));
#endif
}

int pending_error(IoHandle h) {
  int e = 0;
  socklen_t len = sizeof e;
  if (getsockopt(S(h), SOL_SOCKET, SO_ERROR, reinterpret_cast<char*>(&e), &len) != 0) return os_error();
  return e;
}

}  // namespace keel::conformance::net
