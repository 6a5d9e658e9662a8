// Poller dispatch: the contract's poller_* functions forward to the table of
// the kind a Poller was created with. Target-independent; the kinds built
// come from CMake (KEEL_POLLER_HAVE_*, KEEL_POLLER_DEFAULT_*).
#include <string>

#include "platform/os.h"
#include "platform/poller_internal.h"

namespace keel::os {

namespace {

constexpr PollerKind kBuilt[] = {
#if defined(KEEL_POLLER_DEFAULT_EPOLL)
    PollerKind::epoll,
#elif defined(KEEL_POLLER_DEFAULT_KQUEUE)
    PollerKind::kqueue,
#elif defined(KEEL_POLLER_DEFAULT_IOCP)
    PollerKind::iocp,
#elif defined(KEEL_POLLER_DEFAULT_POLL)
    PollerKind::poll,
#else
#error "CMake must define KEEL_POLLER_DEFAULT_<KIND>"
#endif
#if defined(KEEL_POLLER_HAVE_EPOLL) && !defined(KEEL_POLLER_DEFAULT_EPOLL)
    PollerKind::epoll,
#endif
#if defined(KEEL_POLLER_HAVE_KQUEUE) && !defined(KEEL_POLLER_DEFAULT_KQUEUE)
    PollerKind::kqueue,
#endif
#if defined(KEEL_POLLER_HAVE_IOCP) && !defined(KEEL_POLLER_DEFAULT_IOCP)
    PollerKind::iocp,
#endif
#if defined(KEEL_POLLER_HAVE_POLL) && !defined(KEEL_POLLER_DEFAULT_POLL)
    PollerKind::poll,
#endif
};

const detail::PollerOps* ops_for(PollerKind k) noexcept {
  switch (k) {
#if defined(KEEL_POLLER_HAVE_EPOLL)
    case PollerKind::epoll: return &detail::kEpollOps;
#endif
#if defined(KEEL_POLLER_HAVE_KQUEUE)
    case PollerKind::kqueue: return &detail::kKqueueOps;
#endif
#if defined(KEEL_POLLER_HAVE_IOCP)
    case PollerKind::iocp: return &detail::kIocpOps;
#endif
#if defined(KEEL_POLLER_HAVE_POLL)
    case PollerKind::poll: return &detail::kPollOps;
#endif
    default: return nullptr;
  }
}

bool usable(const Poller* p) noexcept { return p != nullptr && p->ops != nullptr && p->state != nullptr; }

}  // namespace

const char* poller_kind_name(PollerKind k) noexcept {
  switch (k) {
    case PollerKind::epoll: return "epoll";
    case PollerKind::kqueue: return "kqueue";
    case PollerKind::iocp: return "iocp";
    case PollerKind::poll: return "poll";
  }
  return "unknown";
}

PollerKindList pollers_built() noexcept { return {kBuilt, sizeof kBuilt / sizeof kBuilt[0]}; }
bool poller_built(PollerKind k) noexcept { return ops_for(k) != nullptr; }
PollerKind poller_default() noexcept { return kBuilt[0]; }

PollerTraits poller_traits(PollerKind k) noexcept {
  const detail::PollerOps* ops = ops_for(k);
  return ops != nullptr ? ops->traits : PollerTraits{};
}

Error poller_init(Poller* p, PollerKind kind) noexcept {
  if (p == nullptr) return Error::invalid_argument;
  const detail::PollerOps* ops = ops_for(kind);
  if (ops == nullptr) return Error::not_supported;
  p->kind = kind;
  p->ops = ops;
  p->state = nullptr;
  Error e = ops->init(p);
  if (e != Error::ok) {
    p->ops = nullptr;
    p->state = nullptr;
  }
  return e;
}

void poller_destroy(Poller* p) noexcept {
  if (!usable(p)) return;
  p->ops->destroy(p);
  p->ops = nullptr;
  p->state = nullptr;
}

Error poller_open(Poller* p, IoHandle h, uint64_t token) noexcept {
  if (!usable(p) || h == kInvalidIoHandle || token == kPollReservedToken) return Error::invalid_argument;
  return p->ops->open(p, h, token);
}

Error poller_close(Poller* p, IoHandle h) noexcept {
  if (!usable(p) || h == kInvalidIoHandle) return Error::invalid_argument;
  return p->ops->close(p, h);
}

Error poller_arm(Poller* p, IoHandle h, PollDir dir) noexcept {
  if (!usable(p) || h == kInvalidIoHandle || (dir != PollDir::read && dir != PollDir::write))
    return Error::invalid_argument;
  return p->ops->arm(p, h, dir);
}

Error poller_poll(Poller* p, int64_t timeout_ns, PollEvent* out, int max, int* n) noexcept {
  if (n != nullptr) *n = 0;
  if (!usable(p) || out == nullptr || max <= 0 || n == nullptr) return Error::invalid_argument;
  return p->ops->poll(p, timeout_ns, out, max, n);
}

Error poller_wake(Poller* p) noexcept {
  if (!usable(p)) return Error::invalid_argument;
  return p->ops->wake(p);
}

Error poller_associate(Poller* p, IoHandle h) noexcept {
  if (!usable(p) || h == kInvalidIoHandle) return Error::invalid_argument;
  return p->ops->associate != nullptr ? p->ops->associate(p, h) : Error::not_supported;
}

Error poller_submit(Poller* p, IoOp* op) noexcept {
  if (!usable(p) || op == nullptr || op->handle == kInvalidIoHandle) return Error::invalid_argument;
  return p->ops->submit != nullptr ? p->ops->submit(p, op) : Error::not_supported;
}

Error poller_cancel(Poller* p, IoOp* op) noexcept {
  if (!usable(p) || op == nullptr) return Error::invalid_argument;
  return p->ops->cancel != nullptr ? p->ops->cancel(p, op) : Error::not_supported;
}

namespace detail {
std::string poller_banner() {
  std::string s;
  for (PollerKind k : pollers_built()) {
    if (!s.empty()) s += "; ";
    s += poller_traits(k).mechanism;
    if (k == poller_default()) s += " [default]";
  }
  return s;
}
}  // namespace detail

}  // namespace keel::os
