// POSIX fallback poller: poll(2). Level-triggered underneath, so the contract's
// edge semantics are kept per direction: a direction that produced an event is
// disarmed until poller_arm (PollerTraits::needs_arm), as Go's level-triggered
// ports (AIX, Solaris event ports) re-arm after a would-block.
//
// poll(2) takes its array at call time, so registrations live in a table under
// a mutex and each poll works on a snapshot. A change made while a poll is
// blocked writes to the wake pipe so the poll re-snapshots; an event from a
// snapshot whose entry changed meanwhile is dropped, which is safe because the
// entry is level-triggered and still armed if it matters (it is reported again).
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <mutex>
#include <new>
#include <unordered_map>
#include <vector>

#include "platform/duration.h"
#include "platform/os.h"
#include "platform/poller_internal.h"

namespace keel::os {
namespace {

constexpr uint8_t kRead = 1, kWrite = 2;

#if defined(POLLRDHUP)
constexpr short kReadMask = POLLIN | POLLRDHUP;  // Linux: tells a peer FIN apart from data
#else
constexpr short kReadMask = POLLIN;
#endif

struct Entry {
  int fd = -1;
  uint64_t token = 0;
  uint8_t armed = 0;  // kRead | kWrite: directions that may still report
  uint32_t gen = 0;   // bumped on every change, to recognise outdated snapshots
  bool live = false;
};

struct State {
  std::mutex mu;
  std::vector<Entry> entries;
  std::vector<int> free_slots;
  std::unordered_map<int, int> slot_of_fd;
  int wake_r = -1, wake_w = -1;
  std::atomic<bool> user_wake{false};
  std::atomic<int> polling{0};
};

State* st(Poller* p) noexcept { return static_cast<State*>(p->state); }

bool set_flags(int fd) noexcept {
  const int fl = fcntl(fd, F_GETFL);
  return fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0 && fcntl(fd, F_SETFD, FD_CLOEXEC) == 0;
}

void nudge(State* s) noexcept {
  const char c = 0;
  while (write(s->wake_w, &c, 1) < 0 && errno == EINTR) {
  }  // EAGAIN: the pipe is full, a nudge is already pending
}

// A change from another thread while a poll is blocked: make it re-snapshot.
void changed(State* s) noexcept {
  if (s->polling.load(std::memory_order_acquire) > 0) nudge(s);
}

Error init(Poller* p) noexcept {
  auto* s = new (std::nothrow) State;
  if (s == nullptr) return Error::no_resources;
  int fds[2];
  if (pipe(fds) != 0) {
    delete s;
    return Error::no_resources;
  }
  s->wake_r = fds[0];
  s->wake_w = fds[1];
  if (!set_flags(s->wake_r) || !set_flags(s->wake_w)) {
    close(s->wake_r);
    close(s->wake_w);
    delete s;
    return Error::no_resources;
  }
  p->state = s;
  return Error::ok;
}

void destroy(Poller* p) noexcept {
  State* s = st(p);
  close(s->wake_r);
  close(s->wake_w);
  delete s;
}

Error open(Poller* p, IoHandle h, uint64_t token) noexcept {
  const int fd = static_cast<int>(static_cast<intptr_t>(h));
  if (fd < 0 || fcntl(fd, F_GETFD) < 0) return Error::invalid_argument;
  State* s = st(p);
  {
    std::lock_guard<std::mutex> g(s->mu);
    int slot;
    if (auto it = s->slot_of_fd.find(fd); it != s->slot_of_fd.end()) {
      slot = it->second;  // closed without poller_close and reused, or opened twice: replace
    } else {
      if (s->free_slots.empty()) {
        s->entries.emplace_back();
        s->free_slots.push_back(int(s->entries.size()) - 1);
      }
      slot = s->free_slots.back();
      s->free_slots.pop_back();
      s->slot_of_fd[fd] = slot;
    }
    Entry& e = s->entries[slot];
    e.fd = fd;
    e.token = token;
    e.armed = kRead | kWrite;  // like epoll's ADD: report the current state once
    e.live = true;
    ++e.gen;
  }
  changed(s);
  return Error::ok;
}

void drop_locked(State* s, int slot) noexcept {
  Entry& e = s->entries[slot];
  s->slot_of_fd.erase(e.fd);
  e.live = false;
  e.armed = 0;
  e.fd = -1;
  ++e.gen;
  s->free_slots.push_back(slot);
}

Error close_(Poller* p, IoHandle h) noexcept {
  const int fd = static_cast<int>(static_cast<intptr_t>(h));
  State* s = st(p);
  {
    std::lock_guard<std::mutex> g(s->mu);
    auto it = s->slot_of_fd.find(fd);
    if (fd < 0 || it == s->slot_of_fd.end()) return Error::invalid_argument;
    drop_locked(s, it->second);
  }
  changed(s);
  return Error::ok;
}

Error arm(Poller* p, IoHandle h, PollDir dir) noexcept {
  const int fd = static_cast<int>(static_cast<intptr_t>(h));
  State* s = st(p);
  {
    std::lock_guard<std::mutex> g(s->mu);
    auto it = s->slot_of_fd.find(fd);
    if (fd < 0 || it == s->slot_of_fd.end()) return Error::invalid_argument;
    Entry& e = s->entries[it->second];
    const uint8_t bit = dir == PollDir::read ? kRead : kWrite;
    if (e.armed & bit) return Error::ok;
    e.armed |= bit;
    ++e.gen;
  }
  changed(s);
  return Error::ok;
}

uint32_t translate(short r) noexcept {
  uint32_t ev = 0;
  if (r & POLLIN) ev |= poll_readable;
  if (r & POLLOUT) ev |= poll_writable;
  if (r & POLLERR) ev |= poll_error;
  if (r & POLLHUP) ev |= poll_hangup;
#if defined(POLLRDHUP)
  if (r & POLLRDHUP) ev |= poll_read_closed;
#endif
  return ev;
}

Error poll(Poller* p, int64_t timeout_ns, PollEvent* out, int max, int* n) noexcept {
  State* s = st(p);
  const int64_t deadline = timeout_ns > 0 ? deadline_after(nanotime(), timeout_ns) : 0;
  // Per thread, so a steady-state poll allocates nothing.
  thread_local std::vector<pollfd> pfds;
  thread_local std::vector<std::pair<int, uint32_t>> snap;  // slot, gen for pfds[i + 1]
  int64_t left = timeout_ns;
  for (;;) {
    pfds.clear();
    snap.clear();
    pfds.push_back({s->wake_r, POLLIN, 0});
    {
      std::lock_guard<std::mutex> g(s->mu);
      for (int i = 0; i < int(s->entries.size()); ++i) {
        const Entry& e = s->entries[i];
        // A fully disarmed entry is left out: poll reports POLLHUP/POLLERR
        // even for events == 0, which would spin on a dead connection.
        if (!e.live || e.armed == 0) continue;
        short want = 0;
        if (e.armed & kRead) want |= kReadMask;
        if (e.armed & kWrite) want |= POLLOUT;
        pfds.push_back({e.fd, want, 0});
        snap.emplace_back(i, e.gen);
      }
      s->polling.fetch_add(1, std::memory_order_acq_rel);
    }
    // A wake that arrived before this poll is still in the pipe: not lost.
    const int ms = static_cast<int>(poll_timeout_ms(left, INT_MAX, -1));
    const int r = ::poll(pfds.data(), nfds_t(pfds.size()), ms);
    const int err = errno;
    s->polling.fetch_sub(1, std::memory_order_acq_rel);
    if (r < 0 && err != EINTR && err != EAGAIN) return err == ENOMEM ? Error::no_resources : Error::unknown;
    if (r > 0 && pfds[0].revents != 0) {
      char buf[64];
      while (read(s->wake_r, buf, sizeof buf) > 0) {
      }
    }
    const bool woken = s->user_wake.exchange(false, std::memory_order_acq_rel);
    int k = 0;
    if (r > 0) {
      std::lock_guard<std::mutex> g(s->mu);
      for (size_t i = 1; i < pfds.size() && k < max; ++i) {
        const short rv = pfds[i].revents;
        if (rv == 0) continue;
        const auto [slot, gen] = snap[i - 1];
        Entry& e = s->entries[slot];
        if (!e.live || e.gen != gen) continue;  // changed meanwhile: re-polled next time
        if (rv & POLLNVAL) {
          // Closed without poller_close and not (yet) reused: drop it silently.
          drop_locked(s, slot);
          continue;
        }
        const uint32_t ev = translate(rv);
        if (ev & (poll_error | poll_hangup)) e.armed = 0;  // level-true forever: quiet until armed
        if (ev & (poll_readable | poll_read_closed)) e.armed &= uint8_t(~kRead);
        if (ev & poll_writable) e.armed &= uint8_t(~kWrite);
        ++e.gen;
        out[k].token = e.token;
        out[k].events = ev;
        out[k].op = nullptr;
        ++k;
      }
    }
    *n = k;
    if (k > 0 || woken || timeout_ns == 0) return Error::ok;
    // A nudge from a registration change, EINTR, or a rounding difference:
    // poll again for what is left, so a timeout never ends early.
    if (timeout_ns < 0) continue;
    const int64_t now = nanotime();
    if (now >= deadline) return Error::ok;
    left = deadline - now;
  }
}

Error wake(Poller* p) noexcept {
  State* s = st(p);
  // Flag first, then the pipe: a poll that sees the byte also sees the flag.
  if (!s->user_wake.exchange(true, std::memory_order_acq_rel)) nudge(s);
  return Error::ok;
}

}  // namespace

namespace detail {
const PollerOps kPollOps = {
    {false, true, false, "poll(2) (per-direction one-shot, pipe wake)"},
    init, destroy, open, close_, arm, poll, wake, nullptr, nullptr, nullptr,
};
}  // namespace detail

}  // namespace keel::os
