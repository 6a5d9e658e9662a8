// Capabilities and platform description on Darwin.
#include <sys/sysctl.h>
#include <sys/utsname.h>

#include <cstring>
#include <string>

#include "platform/os.h"
#include "platform/poller_internal.h"
#include "platform/posix/posix_internal.h"

namespace keel::os {
namespace {

std::string sysctl_string(const char* name) {
  char buf[256];
  size_t len = sizeof buf;
  if (sysctlbyname(name, buf, &len, nullptr, 0) != 0 || len == 0) return {};
  return std::string(buf, strnlen(buf, len));
}

}  // namespace

const Caps& caps() noexcept {
  static const Caps c = [] {
    Caps k;
    k.futex = true;
    k.sema = true;
    k.thread_cpu_time = true;
    k.thread_names = true;
    k.thread_name_max = 63;
    // Timer coalescing may delay wakeups of background work by ~1 ms.
    k.timer_granularity_ns = 1'000'000;
    // Directed signals always work; context access and push_call need this
    // CPU's ucontext accessors and trampoline (posix::kInterruptArch).
    k.interrupt = true;
    k.interrupt_context = posix::kInterruptArch.context;
    k.interrupt_push_call = posix::kInterruptArch.push_call;
    k.interrupt_absent = posix::kInterruptArch.absent;
    k.interrupt_mechanism = posix::kInterruptArch.mechanism;
    return k;
  }();
  return c;
}

PlatformInfo platform_info() {
  PlatformInfo p;
  utsname u{};
  uname(&u);
  p.os = "Darwin";
  p.os_version = "macOS " + sysctl_string("kern.osproductversion");
  p.kernel = std::string(u.release) + " " + u.version;
  p.arch = u.machine;
  p.cpu_model = sysctl_string("machdep.cpu.brand_string");
  // Rosetta 2 runs x86_64 binaries translated on arm64.
  int translated = 0;
  size_t len = sizeof translated;
  if (sysctlbyname("sysctl.proc_translated", &translated, &len, nullptr, 0) == 0 && translated == 1)
    p.emulation = "Rosetta 2";
  p.cpu_count = cpu_count();
  p.clock_resolution_ns = clock_resolution_ns();
  p.backends = {
      {"clock", "clock_gettime_nsec_np(CLOCK_UPTIME_RAW)"},
      {"threads", "pthreads + pthread_threadid_np"},
      {"sleep", "nanosleep loop to a CLOCK_UPTIME_RAW deadline"},
      {"interrupt", posix::kInterruptArch.mechanism},
      {"thread_cpu_time", "thread_info(THREAD_BASIC_INFO), microseconds"},
      {"park.address", "os_sync_wait_on_address, else __ulock_wait2 / __ulock_wait"},
      {"park.sema", "Mach semaphore_timedwait"},
      {"memory", "mmap PROT_NONE, mprotect, MAP_FIXED remap"},
      {"poller", detail::poller_banner()},
  };
  return p;
}

}  // namespace keel::os
