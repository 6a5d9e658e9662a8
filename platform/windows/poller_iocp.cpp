// Windows poller: one I/O completion port carries three kinds of packets:
//  - readiness for sockets through AFD poll (IOCTL_AFD_POLL issued on a
//    \Device\Afd helper handle for the socket's base handle, as wepoll, mio
//    and libuv do), made to look like the Unix pollers: one-shot per
//    direction, re-armed by poller_arm (PollerTraits::needs_arm);
//  - completions of overlapped AcceptEx / ConnectEx / WSARecv / WSASend
//    submitted by the caller (poller_submit), cancelled with CancelIoEx;
//  - poller_wake, a PostQueuedCompletionStatus de-duplicated by a flag so
//    many wakes coalesce into one return.
// Rule for every OVERLAPPED / IO_STATUS_BLOCK here: it stays alive and
// unmoved until its completion packet has been dequeued, cancelled or not.
#include <winsock2.h>
#include <ws2tcpip.h>
#include <mswsock.h>
#include <windows.h>
#include <winternl.h>

#include <atomic>
#include <cstddef>
#include <cstring>
#include <mutex>
#include <new>
#include <unordered_map>
#include <unordered_set>

#include "platform/duration.h"
#include "platform/os.h"
#include "platform/poller_internal.h"

namespace keel::os {
namespace {

// --------------------------------------------------------------- NT and AFD
// Not in the SDK headers (wepoll's afd.h and mio's sys/windows/afd.rs carry
// the same definitions).
constexpr LONG kStatusSuccess = 0;
constexpr LONG kStatusPending = 0x00000103;
constexpr LONG kStatusCancelled = static_cast<LONG>(0xC0000120);
constexpr ULONG kIoctlAfdPoll = 0x00012024;
#ifndef SIO_BASE_HANDLE
#define SIO_BASE_HANDLE _WSAIOR(IOC_WS2, 34)
#endif

constexpr ULONG kAfdReceive = 0x0001;
constexpr ULONG kAfdSend = 0x0004;
constexpr ULONG kAfdDisconnect = 0x0008;  // the peer's FIN
constexpr ULONG kAfdAbort = 0x0010;       // reset
constexpr ULONG kAfdLocalClose = 0x0020;  // the socket was closed in this process
constexpr ULONG kAfdAccept = 0x0080;
constexpr ULONG kAfdConnectFail = 0x0100;

struct AfdPollHandleInfo {
  HANDLE handle;
  ULONG events;
  LONG status;
};
struct AfdPollInfo {
  LARGE_INTEGER timeout;
  ULONG number_of_handles;
  ULONG exclusive;
  AfdPollHandleInfo handles[1];
};

using NtCreateFileFn = LONG(NTAPI*)(PHANDLE, ACCESS_MASK, POBJECT_ATTRIBUTES, PIO_STATUS_BLOCK, PLARGE_INTEGER, ULONG,
                                    ULONG, ULONG, ULONG, PVOID, ULONG);
using NtDeviceIoControlFileFn = LONG(NTAPI*)(HANDLE, HANDLE, PVOID, PVOID, PIO_STATUS_BLOCK, ULONG, PVOID, ULONG, PVOID,
                                             ULONG);
using RtlNtStatusToDosErrorFn = ULONG(NTAPI*)(LONG);

struct Nt {
  NtCreateFileFn create_file = nullptr;
  NtDeviceIoControlFileFn device_io_control_file = nullptr;
  RtlNtStatusToDosErrorFn status_to_dos_error = nullptr;
  bool ok() const noexcept { return create_file && device_io_control_file && status_to_dos_error; }
};

const Nt& nt() noexcept {
  static const Nt n = [] {
    Nt r;
    if (HMODULE m = GetModuleHandleW(L"ntdll.dll")) {
      r.create_file = reinterpret_cast<NtCreateFileFn>(reinterpret_cast<void*>(GetProcAddress(m, "NtCreateFile")));
      r.device_io_control_file = reinterpret_cast<NtDeviceIoControlFileFn>(
          reinterpret_cast<void*>(GetProcAddress(m, "NtDeviceIoControlFile")));
      r.status_to_dos_error = reinterpret_cast<RtlNtStatusToDosErrorFn>(
          reinterpret_cast<void*>(GetProcAddress(m, "RtlNtStatusToDosError")));
    }
    return r;
  }();
  return n;
}

// ------------------------------------------------------------------- state
constexpr ULONG_PTR kKeyAfd = 1;   // AFD poll completions (the helper handle)
constexpr ULONG_PTR kKeyOp = 2;    // overlapped operations (associated sockets)
constexpr ULONG_PTR kKeyWake = 3;  // poller_wake
constexpr uint8_t kRead = 1, kWrite = 2;
constexpr int kBatch = 128;
constexpr int64_t kMaxWaitMs = 24LL * 3600 * 1000;  // one day per wait; the loop covers longer timeouts

// One registered socket. The kernel owns iosb and info while pending.
struct SockReg {
  IO_STATUS_BLOCK iosb{};
  AfdPollInfo info{};
  SOCKET sock = INVALID_SOCKET;
  HANDLE base = nullptr;
  uint64_t token = 0;
  uint8_t armed = 0;       // directions that may still report
  ULONG pending_mask = 0;  // events of the poll in flight
  bool pending = false;    // an AFD poll is in flight
  bool cancelling = false; // CancelIoEx sent to widen the mask; resubmit when it returns
  bool dead = false;       // deregistered or replaced: freed when its poll comes back
  bool defunct = false;    // the socket was closed under us: no further polls
};

struct State {
  HANDLE port = nullptr;
  HANDLE afd = nullptr;
  std::mutex mu;
  std::unordered_map<SOCKET, SockReg*> regs;
  std::unordered_set<SockReg*> in_flight;  // every reg with pending == true, dead ones included
  std::atomic<bool> wake_pending{false};
};

State* st(Poller* p) noexcept { return static_cast<State*>(p->state); }

// Overlapped operations keep their OVERLAPPED (and AcceptEx's address
// buffer) inside the caller's IoOp.
constexpr DWORD kAcceptAddrLen = sizeof(sockaddr_in6) + 16;
struct OpPrivate {
  OVERLAPPED ov;
  char accept_addrs[2 * kAcceptAddrLen];
};
static_assert(sizeof(OpPrivate) <= sizeof(IoOp::os_private), "IoOp::os_private is too small");
OpPrivate* priv(IoOp* op) noexcept { return reinterpret_cast<OpPrivate*>(op->os_private); }
IoOp* op_from(OVERLAPPED* ov) noexcept {
  return reinterpret_cast<IoOp*>(reinterpret_cast<char*>(ov) - offsetof(IoOp, os_private));
}

Error from_wsa(int e) noexcept {
  switch (e) {
    case WSAENOTSOCK: case WSAEBADF: case WSAEINVAL: case WSAEFAULT: case ERROR_INVALID_HANDLE:
    case ERROR_INVALID_PARAMETER: return Error::invalid_argument;
    case WSAENOBUFS: case WSAEMFILE: case ERROR_NOT_ENOUGH_MEMORY: case ERROR_NO_SYSTEM_RESOURCES:
      return Error::no_resources;
    case WSAEOPNOTSUPP: return Error::not_supported;
    default: return Error::unknown;
  }
}

ULONG afd_mask(uint8_t armed) noexcept {
  ULONG m = 0;
  if (armed & kRead) m |= kAfdReceive | kAfdAccept | kAfdDisconnect;
  if (armed & kWrite) m |= kAfdSend;
  if (m != 0) m |= kAfdAbort | kAfdConnectFail | kAfdLocalClose;
  return m;
}

uint32_t translate(ULONG a) noexcept {
  uint32_t r = 0;
  if (a & (kAfdReceive | kAfdAccept)) r |= poll_readable;
  // After the peer's FIN a read returns 0 at once: readable, as epoll says too.
  if (a & kAfdDisconnect) r |= poll_readable | poll_read_closed;
  if (a & kAfdSend) r |= poll_writable;
  if (a & kAfdAbort) r |= poll_error | poll_hangup;
  if (a & kAfdConnectFail) r |= poll_error;
  return r;
}

// Issue an AFD poll for reg's armed directions. Caller holds mu.
void submit_poll(State* s, SockReg* reg) noexcept {
  const ULONG mask = afd_mask(reg->armed);
  reg->info.timeout.QuadPart = INT64_MAX;
  reg->info.number_of_handles = 1;
  reg->info.exclusive = FALSE;
  reg->info.handles[0].handle = reg->base;
  reg->info.handles[0].events = mask;
  reg->info.handles[0].status = 0;
  reg->iosb.Status = kStatusPending;
  // ApcContext = reg: it comes back as the packet's lpOverlapped.
  const LONG status = nt().device_io_control_file(s->afd, nullptr, nullptr, reg, &reg->iosb, kIoctlAfdPoll,
                                                  &reg->info, sizeof reg->info, &reg->info, sizeof reg->info);
  if (status == kStatusSuccess || status == kStatusPending) {
    // Even a poll satisfied at once queues its packet (no skip-on-success mode).
    reg->pending = true;
    reg->pending_mask = mask;
    s->in_flight.insert(reg);
  } else {
    reg->defunct = true;  // the socket is gone (closed without poller_close): nothing to poll
  }
}

// Bring the poll in flight in line with reg->armed. Caller holds mu.
void update(State* s, SockReg* reg) noexcept {
  if (reg->dead || reg->defunct) return;
  const ULONG want = afd_mask(reg->armed);
  if (reg->pending) {
    // armed only grows while a poll is in flight, so a poll that covers
    // every wanted event stays; otherwise cancel it and resubmit on return.
    if ((want & ~reg->pending_mask) != 0 && !reg->cancelling) {
      reg->cancelling = true;
      CancelIoEx(s->afd, reinterpret_cast<OVERLAPPED*>(&reg->iosb));
    }
    return;
  }
  if (want != 0) submit_poll(s, reg);
}

// Forget reg: free it now, or when its poll comes back. Caller holds mu.
void retire(State* s, SockReg* reg) noexcept {
  reg->dead = true;
  if (!reg->pending) {
    delete reg;
    return;
  }
  if (!reg->cancelling) {
    reg->cancelling = true;
    CancelIoEx(s->afd, reinterpret_cast<OVERLAPPED*>(&reg->iosb));
  }
}

// ----------------------------------------------------------------- contract
Error init(Poller* p) noexcept {
  if (!nt().ok()) return Error::not_supported;
  WSADATA wsa;
  if (WSAStartup(MAKEWORD(2, 2), &wsa) != 0) return Error::no_resources;
  auto* s = new (std::nothrow) State;
  if (s == nullptr) {
    WSACleanup();
    return Error::no_resources;
  }
  s->port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 0);
  // Any name under \Device\Afd opens the AFD driver; the suffix only labels
  // the handle for debugging tools.
  wchar_t name[] = L"\\Device\\Afd\\Keel";
  UNICODE_STRING us;
  us.Buffer = name;
  us.Length = static_cast<USHORT>((sizeof name) - sizeof(wchar_t));
  us.MaximumLength = static_cast<USHORT>(sizeof name);
  OBJECT_ATTRIBUTES attrs;
  std::memset(&attrs, 0, sizeof attrs);
  attrs.Length = sizeof attrs;
  attrs.ObjectName = &us;
  IO_STATUS_BLOCK iosb{};
  HANDLE afd = nullptr;
  const LONG status = s->port == nullptr ? -1
                                         : nt().create_file(&afd, SYNCHRONIZE, &attrs, &iosb, nullptr, 0,
                                                            FILE_SHARE_READ | FILE_SHARE_WRITE, 1 /* FILE_OPEN */, 0,
                                                            nullptr, 0);
  if (status != kStatusSuccess || CreateIoCompletionPort(afd, s->port, kKeyAfd, 0) == nullptr ||
      !SetFileCompletionNotificationModes(afd, FILE_SKIP_SET_EVENT_ON_HANDLE)) {
    if (status == kStatusSuccess) CloseHandle(afd);
    if (s->port != nullptr) CloseHandle(s->port);
    delete s;
    WSACleanup();
    return Error::no_resources;
  }
  s->afd = afd;
  p->state = s;
  return Error::ok;
}

void destroy(Poller* p) noexcept {
  State* s = st(p);
  {
    std::lock_guard<std::mutex> g(s->mu);
    for (auto& [sock, reg] : s->regs) retire(s, reg);
    s->regs.clear();
  }
  // Every AFD poll still in flight owns its SockReg until its packet comes
  // back: collect them (they were cancelled) before freeing anything.
  const int64_t give_up = nanotime() + 5 * 1'000'000'000LL;
  OVERLAPPED_ENTRY entries[64];
  while (!s->in_flight.empty() && nanotime() < give_up) {
    ULONG got = 0;
    if (!GetQueuedCompletionStatusEx(s->port, entries, 64, &got, 100, FALSE)) continue;
    std::lock_guard<std::mutex> g(s->mu);
    for (ULONG i = 0; i < got; ++i) {
      if (entries[i].lpCompletionKey != kKeyAfd) continue;
      auto* reg = reinterpret_cast<SockReg*>(entries[i].lpOverlapped);
      s->in_flight.erase(reg);
      delete reg;
    }
  }
  // Whatever did not come back is leaked on purpose: the kernel may still
  // write into it.
  CloseHandle(s->afd);
  CloseHandle(s->port);
  delete s;
  WSACleanup();
}

Error open(Poller* p, IoHandle h, uint64_t token) noexcept {
  const auto sock = static_cast<SOCKET>(h);
  // AFD polls the provider's base socket; a layered (LSP) socket handle is
  // not one. A non-socket handle fails here with WSAENOTSOCK.
  SOCKET base = INVALID_SOCKET;
  DWORD bytes = 0;
  if (WSAIoctl(sock, SIO_BASE_HANDLE, nullptr, 0, &base, sizeof base, &bytes, nullptr, nullptr) != 0) {
    const int e = WSAGetLastError();
    if (e == WSAENOTSOCK || e == WSAEBADF || e == WSAEINVAL) return Error::invalid_argument;
    base = sock;  // providers without SIO_BASE_HANDLE: the socket is its own base
  }
  auto* reg = new (std::nothrow) SockReg;
  if (reg == nullptr) return Error::no_resources;
  reg->sock = sock;
  reg->base = reinterpret_cast<HANDLE>(base);
  reg->token = token;
  reg->armed = kRead | kWrite;  // like epoll's ADD: report the current state once
  State* s = st(p);
  std::lock_guard<std::mutex> g(s->mu);
  if (auto it = s->regs.find(sock); it != s->regs.end()) {
    retire(s, it->second);  // closed without poller_close and the value reused: replace
    s->regs.erase(it);
  }
  submit_poll(s, reg);
  if (reg->defunct) {
    delete reg;
    return Error::invalid_argument;
  }
  s->regs.emplace(sock, reg);
  return Error::ok;
}

Error close_(Poller* p, IoHandle h) noexcept {
  State* s = st(p);
  std::lock_guard<std::mutex> g(s->mu);
  auto it = s->regs.find(static_cast<SOCKET>(h));
  if (it == s->regs.end()) return Error::invalid_argument;
  retire(s, it->second);
  s->regs.erase(it);
  return Error::ok;
}

Error arm(Poller* p, IoHandle h, PollDir dir) noexcept {
  State* s = st(p);
  std::lock_guard<std::mutex> g(s->mu);
  auto it = s->regs.find(static_cast<SOCKET>(h));
  if (it == s->regs.end()) return Error::invalid_argument;
  SockReg* reg = it->second;
  const uint8_t bit = dir == PollDir::read ? kRead : kWrite;
  if (reg->armed & bit) return Error::ok;
  reg->armed |= bit;
  update(s, reg);
  return Error::ok;
}

// One AFD packet: returns true and fills ev if it is an event for the caller.
// Caller holds mu.
bool afd_completion(State* s, SockReg* reg, PollEvent* ev) noexcept {
  reg->pending = false;
  reg->cancelling = false;
  s->in_flight.erase(reg);
  if (reg->dead) {
    delete reg;
    return false;
  }
  const LONG status = reg->iosb.Status;
  if (status == kStatusCancelled) {  // cancelled to change the mask
    update(s, reg);
    return false;
  }
  if (status < 0) {  // NT_ERROR: the socket handle went away under the poll
    reg->defunct = true;
    return false;
  }
  if (reg->info.number_of_handles < 1) {
    update(s, reg);
    return false;
  }
  const ULONG afd = reg->info.handles[0].events;
  if (afd & kAfdLocalClose) {  // closed without poller_close: nothing more to say about it
    reg->defunct = true;
    return false;
  }
  uint32_t r = translate(afd);
  if (!(reg->armed & kRead)) r &= ~uint32_t(poll_readable | poll_read_closed);
  if (!(reg->armed & kWrite)) r &= ~uint32_t(poll_writable);
  if (r & (poll_error | poll_hangup)) reg->armed = 0;  // stays true forever: quiet until armed
  if (r & (poll_readable | poll_read_closed)) reg->armed &= uint8_t(~kRead);
  if (r & poll_writable) reg->armed &= uint8_t(~kWrite);
  update(s, reg);
  if (r == 0) return false;
  ev->token = reg->token;
  ev->events = r;
  ev->op = nullptr;
  return true;
}

void op_completion(const OVERLAPPED_ENTRY& e, PollEvent* ev) noexcept {
  IoOp* op = op_from(e.lpOverlapped);
  const auto status = static_cast<LONG>(e.lpOverlapped->Internal);
  op->transferred = e.dwNumberOfBytesTransferred;
  op->os_error = status == kStatusSuccess ? 0 : static_cast<int32_t>(nt().status_to_dos_error(status));
  if (op->os_error == 0 && op->kind == IoOpKind::accept) {
    // Give the accepted socket the listener's properties (getpeername, shutdown).
    const auto listener = static_cast<SOCKET>(op->handle);
    setsockopt(static_cast<SOCKET>(op->accept_handle), SOL_SOCKET, SO_UPDATE_ACCEPT_CONTEXT,
               reinterpret_cast<const char*>(&listener), sizeof listener);
  } else if (op->os_error == 0 && op->kind == IoOpKind::connect) {
    setsockopt(static_cast<SOCKET>(op->handle), SOL_SOCKET, SO_UPDATE_CONNECT_CONTEXT, nullptr, 0);
  }
  ev->token = op->token;
  ev->events = poll_completed;
  ev->op = op;
}

Error poll(Poller* p, int64_t timeout_ns, PollEvent* out, int max, int* n) noexcept {
  State* s = st(p);
  const int64_t deadline = timeout_ns > 0 ? deadline_after(nanotime(), timeout_ns) : 0;
  OVERLAPPED_ENTRY entries[kBatch];
  // Each packet yields at most one event, so never dequeue more than fit.
  const ULONG want = static_cast<ULONG>(max < kBatch ? max : kBatch);
  int64_t left = timeout_ns;
  for (;;) {
    const auto ms = static_cast<DWORD>(poll_timeout_ms(left, kMaxWaitMs, INFINITE));
    ULONG got = 0;
    if (!GetQueuedCompletionStatusEx(s->port, entries, want, &got, ms, FALSE)) {
      const DWORD e = GetLastError();
      if (e != WAIT_TIMEOUT) return e == ERROR_INVALID_HANDLE ? Error::invalid_argument : Error::unknown;
      got = 0;
    }
    bool woken = false;
    int k = 0;
    for (ULONG i = 0; i < got; ++i) {
      const OVERLAPPED_ENTRY& e = entries[i];
      if (e.lpCompletionKey == kKeyWake) {
        s->wake_pending.store(false, std::memory_order_release);
        woken = true;
      } else if (e.lpCompletionKey == kKeyOp) {
        op_completion(e, &out[k++]);
      } else if (e.lpCompletionKey == kKeyAfd) {
        std::lock_guard<std::mutex> g(s->mu);
        if (afd_completion(s, reinterpret_cast<SockReg*>(e.lpOverlapped), &out[k])) ++k;
      }
    }
    *n = k;
    if (k > 0 || woken || timeout_ns == 0) return Error::ok;
    // Only internal packets (a cancelled poll re-armed), or a wait that the
    // tick-based timeout ended before QPC's deadline: wait for the rest.
    if (timeout_ns < 0) continue;
    const int64_t now = nanotime();
    if (now >= deadline) return Error::ok;
    left = deadline - now;
  }
}

Error wake(Poller* p) noexcept {
  State* s = st(p);
  if (s->wake_pending.exchange(true, std::memory_order_acq_rel)) return Error::ok;  // one is queued already
  if (PostQueuedCompletionStatus(s->port, 0, kKeyWake, nullptr)) return Error::ok;
  s->wake_pending.store(false, std::memory_order_release);
  return Error::no_resources;
}

// ---------------------------------------------------- completion operations
Error associate(Poller* p, IoHandle h) noexcept {
  const auto handle = reinterpret_cast<HANDLE>(h);
  if (CreateIoCompletionPort(handle, st(p)->port, kKeyOp, 0) == nullptr) return Error::invalid_argument;
  // The packet is the only notification anyone waits for.
  SetFileCompletionNotificationModes(handle, FILE_SKIP_SET_EVENT_ON_HANDLE);
  return Error::ok;
}

template <class Fn>
Fn extension(SOCKET s, GUID guid) noexcept {
  Fn fn = nullptr;
  DWORD bytes = 0;
  if (WSAIoctl(s, SIO_GET_EXTENSION_FUNCTION_POINTER, &guid, sizeof guid, &fn, sizeof fn, &bytes, nullptr,
               nullptr) != 0)
    return nullptr;
  return fn;
}

Error submit(Poller*, IoOp* op) noexcept {
  OpPrivate* pv = priv(op);
  std::memset(&pv->ov, 0, sizeof pv->ov);
  op->transferred = 0;
  op->os_error = 0;
  const auto sock = static_cast<SOCKET>(op->handle);
  WSABUF b;
  b.len = op->len;
  b.buf = static_cast<char*>(op->buf);
  bool started = false;
  int err = 0;
  switch (op->kind) {
    case IoOpKind::recv: {
      DWORD flags = 0;
      started = WSARecv(sock, &b, 1, nullptr, &flags, &pv->ov, nullptr) == 0;
      break;
    }
    case IoOpKind::send:
      started = WSASend(sock, &b, 1, nullptr, 0, &pv->ov, nullptr) == 0;
      break;
    case IoOpKind::accept: {
      static const auto accept_ex = extension<LPFN_ACCEPTEX>(sock, WSAID_ACCEPTEX);
      if (accept_ex == nullptr) return Error::not_supported;
      DWORD bytes = 0;
      started = accept_ex(sock, static_cast<SOCKET>(op->accept_handle), pv->accept_addrs, 0, kAcceptAddrLen,
                          kAcceptAddrLen, &bytes, &pv->ov) != FALSE;
      break;
    }
    case IoOpKind::connect: {
      static const auto connect_ex = extension<LPFN_CONNECTEX>(sock, WSAID_CONNECTEX);
      if (connect_ex == nullptr) return Error::not_supported;
      if (op->addr_len == 0 || op->addr_len > sizeof op->addr) return Error::invalid_argument;
      started = connect_ex(sock, reinterpret_cast<const sockaddr*>(op->addr), static_cast<int>(op->addr_len),
                           nullptr, 0, nullptr, &pv->ov) != FALSE;
      break;
    }
    default: return Error::invalid_argument;
  }
  if (started) return Error::ok;  // finished at once; its packet is queued all the same
  err = WSAGetLastError();
  if (err == WSA_IO_PENDING || err == ERROR_IO_PENDING) return Error::ok;
  op->os_error = err;  // failed at once: no packet will come
  return from_wsa(err);
}

Error cancel(Poller*, IoOp* op) noexcept {
  if (CancelIoEx(reinterpret_cast<HANDLE>(op->handle), &priv(op)->ov)) return Error::ok;
  // Already finished: its packet is (or will be) queued anyway.
  return GetLastError() == ERROR_NOT_FOUND ? Error::ok : Error::invalid_argument;
}

}  // namespace

namespace detail {
const PollerOps kIocpOps = {
    {false, true, true, "iocp (AFD poll readiness + overlapped AcceptEx/ConnectEx/WSARecv/WSASend)"},
    init, destroy, open, close_, arm, poll, wake, associate, submit, cancel,
};
}  // namespace detail

}  // namespace keel::os
