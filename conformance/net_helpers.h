// Loopback sockets for the poller tests: 127.0.0.1 only, every call bounded.
// Handles are os::IoHandle (an fd or a SOCKET), so tests stay OS-neutral;
// this library is the one place the conformance suite touches socket APIs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "platform/os.h"

namespace keel::conformance::net {

using os::IoHandle;
using os::kInvalidIoHandle;

// Once per process: Winsock startup; on POSIX raise RLIMIT_NOFILE (the
// 1,000-socket test needs > 2,000 descriptors) and ignore SIGPIPE.
bool init();

// A connected TCP pair over 127.0.0.1. Non-blocking unless blocking is true
// (Windows overlapped operations need blocking-mode sockets: a non-blocking
// one fails WSARecv with WSAEWOULDBLOCK instead of going pending).
struct Pair {
  IoHandle a = kInvalidIoHandle;
  IoHandle b = kInvalidIoHandle;
  Pair() = default;
  Pair(const Pair&) = delete;
  Pair& operator=(const Pair&) = delete;
  Pair(Pair&& o) noexcept : a(o.a), b(o.b) { o.a = o.b = kInvalidIoHandle; }
  Pair& operator=(Pair&& o) noexcept;
  ~Pair();
  void close_both();
};
bool tcp_pair(Pair* out, bool blocking = false);

// A socket listening on 127.0.0.1 with an ephemeral port.
IoHandle tcp_listener(uint16_t* port, bool blocking = false);
// A fresh unconnected TCP socket (overlapped-capable on Windows).
IoHandle tcp_socket(bool blocking = false);
bool bind_any(IoHandle s);
// A 127.0.0.1 port with nothing listening (bound, then closed).
uint16_t closed_port();
// sockaddr_in for 127.0.0.1:port, as bytes (for IoOp::addr). Returns its length.
uint32_t loopback_sockaddr(uint16_t port, unsigned char* out, size_t cap);

enum class ConnectResult { connected, in_progress, refused, failed };
ConnectResult connect_start(IoHandle s, uint16_t port);

// >0: bytes moved; 0 from recv: EOF; kWouldBlock; kFailed (see last_error()).
constexpr int64_t kWouldBlock = -1;
constexpr int64_t kFailed = -2;
int64_t send_some(IoHandle s, const void* buf, size_t len);
int64_t recv_some(IoHandle s, void* buf, size_t len);
int last_error();  // errno / WSAGetLastError of the last failed call
std::string last_error_text();

// Read until would-block; returns the bytes read, sets *eof if EOF was seen.
size_t drain(IoHandle s, bool* eof = nullptr);
// Write until would-block, repeating until the kernel settles; returns bytes written.
size_t fill_send_buffer(IoHandle s);

bool shutdown_write(IoHandle s);
void close_handle(IoHandle s);
// Close with SO_LINGER {1, 0}: the peer sees a reset (RST), not a FIN.
void reset_close(IoHandle s);
// POSIX dup(); kInvalidIoHandle where sockets cannot be duplicated in-process (Windows).
IoHandle dup_handle(IoHandle s);
// SO_ERROR of s (0 if none).
int pending_error(IoHandle s);
bool is_refused(int err);

}  // namespace keel::conformance::net
