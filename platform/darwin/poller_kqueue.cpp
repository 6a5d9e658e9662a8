// Darwin poller: kqueue. Each fd gets an EVFILT_READ and an EVFILT_WRITE
// knote with EV_CLEAR (edge-triggered: a knote reports again only after its
// state changes), the token in udata; poller_wake triggers an EVFILT_USER
// knote. Written against the contract and its tests; the macos leg runs them.
#include <errno.h>
#include <fcntl.h>
#include <sys/event.h>
#include <sys/time.h>
#include <unistd.h>

#include <new>

#include "platform/duration.h"
#include "platform/os.h"
#include "platform/poller_internal.h"

namespace keel::os {
namespace {

constexpr uintptr_t kWakeIdent = 0;  // EVFILT_USER idents are their own namespace
constexpr int64_t kMaxTimeoutSec = 100'000'000;  // kevent: EINVAL for tv_sec > 10^8
constexpr int kBatch = 128;

struct State {
  int kq = -1;
};

int kq_of(Poller* p) noexcept { return static_cast<State*>(p->state)->kq; }

Error from_errno(int e) noexcept {
  switch (e) {
    case EBADF: case EINVAL: case ENOENT: return Error::invalid_argument;
    case ENOMEM: case EMFILE: case ENFILE: return Error::no_resources;
    default: return Error::unknown;
  }
}

void* to_udata(uint64_t token) noexcept { return reinterpret_cast<void*>(static_cast<uintptr_t>(token)); }
static_assert(sizeof(void*) == 8, "tokens are 64 bits; kevent's udata must hold them");

Error init(Poller* p) noexcept {
  auto* s = new (std::nothrow) State;
  if (s == nullptr) return Error::no_resources;
  s->kq = kqueue();
  struct kevent ev;
  EV_SET(&ev, kWakeIdent, EVFILT_USER, EV_ADD | EV_CLEAR, 0, 0, nullptr);
  if (s->kq < 0 || fcntl(s->kq, F_SETFD, FD_CLOEXEC) != 0 || kevent(s->kq, &ev, 1, nullptr, 0, nullptr) != 0) {
    if (s->kq >= 0) close(s->kq);
    delete s;
    return Error::no_resources;
  }
  p->state = s;
  return Error::ok;
}

void destroy(Poller* p) noexcept {
  auto* s = static_cast<State*>(p->state);
  close(s->kq);
  delete s;
}

Error open(Poller* p, IoHandle h, uint64_t token) noexcept {
  const int fd = static_cast<int>(static_cast<intptr_t>(h));
  if (fd < 0) return Error::invalid_argument;
  // EV_ADD on an existing knote updates it: a reused fd number gets the new token.
  struct kevent ch[2];
  EV_SET(&ch[0], fd, EVFILT_READ, EV_ADD | EV_CLEAR, 0, 0, to_udata(token));
  EV_SET(&ch[1], fd, EVFILT_WRITE, EV_ADD | EV_CLEAR, 0, 0, to_udata(token));
  if (kevent(kq_of(p), ch, 2, nullptr, 0, nullptr) == 0) return Error::ok;
  return from_errno(errno);
}

Error close_(Poller* p, IoHandle h) noexcept {
  const int fd = static_cast<int>(static_cast<intptr_t>(h));
  if (fd < 0) return Error::invalid_argument;
  struct kevent ch[2];
  EV_SET(&ch[0], fd, EVFILT_READ, EV_DELETE, 0, 0, nullptr);
  EV_SET(&ch[1], fd, EVFILT_WRITE, EV_DELETE, 0, 0, nullptr);
  if (kevent(kq_of(p), ch, 2, nullptr, 0, nullptr) == 0) return Error::ok;
  return from_errno(errno);
}

Error arm(Poller*, IoHandle, PollDir) noexcept { return Error::ok; }  // EV_CLEAR reports transitions

uint32_t translate(const struct kevent& ev) noexcept {
  uint32_t r = 0;
  if (ev.flags & EV_ERROR) return poll_error;
  if (ev.filter == EVFILT_READ) {
    r |= poll_readable;
    // EOF on the read filter is the peer's FIN; fflags holds a socket error.
    if (ev.flags & EV_EOF) r |= poll_read_closed;
  } else if (ev.filter == EVFILT_WRITE) {
    // EOF on the write filter also follows a local shutdown(SHUT_WR), so it
    // is not a hangup by itself; only an error in fflags is reported.
    r |= poll_writable;
  }
  if ((ev.flags & EV_EOF) && ev.fflags != 0) r |= poll_error;
  return r;
}

Error poll(Poller* p, int64_t timeout_ns, PollEvent* out, int max, int* n) noexcept {
  const int kq = kq_of(p);
  const int64_t deadline = timeout_ns > 0 ? deadline_after(nanotime(), timeout_ns) : 0;
  struct kevent evs[kBatch];
  const int want = max < kBatch ? max : kBatch;  // never take events that do not fit in out
  int64_t left = timeout_ns;
  for (;;) {
    struct timespec ts;
    const struct timespec* tsp = nullptr;
    if (left >= 0) {
      const SecNsec t = ns_to_timespec_capped(left, kMaxTimeoutSec);
      ts.tv_sec = static_cast<time_t>(t.sec);
      ts.tv_nsec = static_cast<long>(t.nsec);
      tsp = &ts;
    }
    const int r = kevent(kq, nullptr, 0, evs, want, tsp);
    if (r < 0 && errno != EINTR) return from_errno(errno);
    bool woken = false;
    int k = 0;
    for (int i = 0; i < r; ++i) {
      if (evs[i].filter == EVFILT_USER) {
        woken = true;
        continue;
      }
      // The read and write knotes of one fd fire as two kevents; report one
      // event per registration per poll, as epoll does (a refused connect
      // raises EOF on both and must read as one error, not two).
      const uint64_t token = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(evs[i].udata));
      int j = 0;
      while (j < k && out[j].token != token) ++j;
      if (j == k) {
        out[k].token = token;
        out[k].events = 0;
        out[k].op = nullptr;
        ++k;
      }
      out[j].events |= translate(evs[i]);
    }
    *n = k;
    if (k > 0 || woken || timeout_ns == 0) return Error::ok;
    if (timeout_ns < 0) continue;
    const int64_t now = nanotime();
    if (now >= deadline) return Error::ok;  // a capped wait (10^8 s) or EINTR continues below
    left = deadline - now;
  }
}

Error wake(Poller* p) noexcept {
  struct kevent ev;
  EV_SET(&ev, kWakeIdent, EVFILT_USER, 0, NOTE_TRIGGER, 0, nullptr);
  for (;;) {
    if (kevent(kq_of(p), &ev, 1, nullptr, 0, nullptr) == 0) return Error::ok;
    if (errno != EINTR) return from_errno(errno);
  }
}

}  // namespace

namespace detail {
const PollerOps kKqueueOps = {
    {true, false, false, "kqueue (EV_CLEAR, EVFILT_USER wake)"},
    init, destroy, open, close_, arm, poll, wake, nullptr, nullptr, nullptr,
};
}  // namespace detail

}  // namespace keel::os
