// What each poller backend provides to the dispatch in poller.cpp. One table
// per kind; CMake defines KEEL_POLLER_HAVE_<KIND> for the kinds it builds.
#pragma once

#include <string>

#include "platform/os.h"

namespace keel::os::detail {

struct PollerOps {
  PollerTraits traits;
  Error (*init)(Poller* p);
  void (*destroy)(Poller* p);
  Error (*open)(Poller* p, IoHandle h, uint64_t token);
  Error (*close)(Poller* p, IoHandle h);
  Error (*arm)(Poller* p, IoHandle h, PollDir dir);
  Error (*poll)(Poller* p, int64_t timeout_ns, PollEvent* out, int max, int* n);
  Error (*wake)(Poller* p);
  // Completion-model operations; null where the mechanism has none.
  Error (*associate)(Poller* p, IoHandle h);
  Error (*submit)(Poller* p, IoOp* op);
  Error (*cancel)(Poller* p, IoOp* op);
};

extern const PollerOps kEpollOps;   // platform/linux/poller_epoll.cpp
extern const PollerOps kKqueueOps;  // platform/darwin/poller_kqueue.cpp
extern const PollerOps kIocpOps;    // platform/windows/poller_iocp.cpp
extern const PollerOps kPollOps;    // platform/posix/poller_poll.cpp

// "epoll (...) [default]; poll (...)" for platform_info().backends.
std::string poller_banner();

}  // namespace keel::os::detail
