// Linux poller: epoll, edge-triggered (EPOLLET | EPOLLRDHUP), one
// registration per fd for both directions, an eventfd for poller_wake.
#include <errno.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <climits>
#include <new>

#include "platform/duration.h"
#include "platform/os.h"
#include "platform/poller_internal.h"

namespace keel::os {
namespace {

// The eventfd's registration carries the one token callers may not use.
constexpr uint64_t kWakeToken = kPollReservedToken;
// epoll_event is 12 bytes (packed) on x86_64, so events land in a local
// batch and are translated; a short batch only means more calls under load.
constexpr int kBatch = 128;

struct State {
  int epfd = -1;
  int evfd = -1;
};

State* st(Poller* p) noexcept { return static_cast<State*>(p->state); }

Error from_errno(int e) noexcept {
  switch (e) {
    case EBADF: case EINVAL: case ENOENT: case ELOOP: return Error::invalid_argument;
    case EPERM: return Error::not_supported;  // regular files and directories cannot be polled
    case ENOMEM: case ENOSPC: case EMFILE: case ENFILE: return Error::no_resources;
    default: return Error::unknown;
  }
}

Error init(Poller* p) noexcept {
  auto* s = new (std::nothrow) State;
  if (s == nullptr) return Error::no_resources;
  s->epfd = epoll_create1(EPOLL_CLOEXEC);
  s->evfd = s->epfd < 0 ? -1 : eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  epoll_event ev{};
  ev.events = EPOLLIN;  // level-triggered: it stays readable until poll reads it, so no wake is lost
  ev.data.u64 = kWakeToken;
  if (s->evfd < 0 || epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->evfd, &ev) != 0) {
    const int e = errno;
    if (s->evfd >= 0) close(s->evfd);
    if (s->epfd >= 0) close(s->epfd);
    delete s;
    return from_errno(e) == Error::unknown ? Error::no_resources : from_errno(e);
  }
  p->state = s;
  return Error::ok;
}

void destroy(Poller* p) noexcept {
  State* s = st(p);
  close(s->evfd);
  close(s->epfd);
  delete s;
}

Error open(Poller* p, IoHandle h, uint64_t token) noexcept {
  const int fd = static_cast<int>(static_cast<intptr_t>(h));
  if (fd < 0) return Error::invalid_argument;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
  ev.data.u64 = token;
  if (epoll_ctl(st(p)->epfd, EPOLL_CTL_ADD, fd, &ev) == 0) return Error::ok;
  // Same open file registered again (the contract's "replace the token").
  // A closed-and-reused fd number is a different open file, which ADD accepts.
  if (errno == EEXIST && epoll_ctl(st(p)->epfd, EPOLL_CTL_MOD, fd, &ev) == 0) return Error::ok;
  return from_errno(errno);
}

Error close_(Poller* p, IoHandle h) noexcept {
  const int fd = static_cast<int>(static_cast<intptr_t>(h));
  if (fd < 0) return Error::invalid_argument;
  epoll_event ev{};  // non-null for kernels before 2.6.9
  if (epoll_ctl(st(p)->epfd, EPOLL_CTL_DEL, fd, &ev) == 0) return Error::ok;
  return from_errno(errno);
}

// Edge-triggered: the next transition is reported without asking.
Error arm(Poller*, IoHandle, PollDir) noexcept { return Error::ok; }

uint32_t translate(uint32_t e) noexcept {
  uint32_t r = 0;
  if (e & EPOLLIN) r |= poll_readable;
  if (e & EPOLLOUT) r |= poll_writable;
  if (e & EPOLLERR) r |= poll_error;
  if (e & EPOLLHUP) r |= poll_hangup;
  if (e & EPOLLRDHUP) r |= poll_read_closed;
  return r;
}

Error poll(Poller* p, int64_t timeout_ns, PollEvent* out, int max, int* n) noexcept {
  State* s = st(p);
  const int64_t deadline = timeout_ns > 0 ? deadline_after(nanotime(), timeout_ns) : 0;
  epoll_event evs[kBatch];
  // Never ask for more than fits in out: with EPOLLET an event taken from the
  // kernel and dropped here would be lost for good.
  const int want = max < kBatch ? max : kBatch;
  int64_t left = timeout_ns;
  for (;;) {
    const int ms = static_cast<int>(poll_timeout_ms(left, INT_MAX, -1));
    const int r = epoll_wait(s->epfd, evs, want, ms);
    if (r < 0 && errno != EINTR) return from_errno(errno);
    bool woken = false;
    int k = 0;
    for (int i = 0; i < r; ++i) {
      if (evs[i].data.u64 == kWakeToken) {
        uint64_t v;
        while (read(s->evfd, &v, sizeof v) < 0 && errno == EINTR) {
        }
        woken = true;
        continue;
      }
      out[k].token = evs[i].data.u64;
      out[k].events = translate(evs[i].events);
      out[k].op = nullptr;
      ++k;
    }
    *n = k;
    if (k > 0 || woken || timeout_ns == 0) return Error::ok;
    // EINTR or a timeout epoll rounded differently from nanotime: wait for
    // the rest, so a timeout never ends early.
    if (timeout_ns < 0) continue;
    const int64_t now = nanotime();
    if (now >= deadline) return Error::ok;
    left = deadline - now;
  }
}

Error wake(Poller* p) noexcept {
  const uint64_t one = 1;
  for (;;) {
    if (write(st(p)->evfd, &one, sizeof one) == sizeof one) return Error::ok;
    if (errno == EINTR) continue;
    // EAGAIN: the counter is saturated, so a wake is already pending.
    return errno == EAGAIN ? Error::ok : from_errno(errno);
  }
}

}  // namespace

namespace detail {
const PollerOps kEpollOps = {
    {true, false, false, "epoll (EPOLLET|EPOLLRDHUP, eventfd wake)"},
    init, destroy, open, close_, arm, poll, wake, nullptr, nullptr, nullptr,
};
}  // namespace detail

}  // namespace keel::os
