// Capabilities and platform description on Linux.
#include <sys/prctl.h>
#include <sys/utsname.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "platform/os.h"
#include "platform/poller_internal.h"
#include "platform/posix/posix_internal.h"

namespace keel::os {
namespace {

std::string trim(std::string s) {
  size_t b = s.find_first_not_of(" \t\"\n");
  size_t e = s.find_last_not_of(" \t\"\n");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

// First value of "key<sep>value" in a text file, or "".
std::string read_key(const char* path, const char* key, char sep) {
  std::string result;
  FILE* f = std::fopen(path, "r");
  if (f == nullptr) return result;
  char line[512];
  size_t klen = std::strlen(key);
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, key, klen) != 0) continue;
    const char* p = line + klen;
    while (*p == ' ' || *p == '\t') ++p;
    if (*p != sep) continue;
    result = trim(p + 1);
    break;
  }
  std::fclose(f);
  return result;
}

}  // namespace

const Caps& caps() noexcept {
  static const Caps c = [] {
    Caps k;
    k.futex = true;
    k.sema = true;
    k.thread_cpu_time = true;
    k.thread_names = true;
    k.thread_name_max = 15;
    // hrtimers wake within the thread's timer slack (50 µs by default).
    int slack = prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);
    k.timer_granularity_ns = slack > 0 ? slack : 50'000;
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
  p.os = "Linux";
  p.os_version = read_key("/etc/os-release", "PRETTY_NAME", '=');
  p.kernel = std::string(u.release) + " " + u.version;
  p.arch = u.machine;
  p.cpu_model = read_key("/proc/cpuinfo", "model name", ':');
  if (p.cpu_model.empty()) {
    // arm64 kernels print implementer/part ids instead of a model name.
    std::string impl = read_key("/proc/cpuinfo", "CPU implementer", ':');
    std::string part = read_key("/proc/cpuinfo", "CPU part", ':');
    if (!impl.empty()) p.cpu_model = "implementer " + impl + " part " + part;
  }
#if defined(__aarch64__)
  // qemu-user passes the host's /proc/cpuinfo through: an x86 model name seen
  // from an aarch64 binary means we are emulated.
  if (p.cpu_model.find("Intel") != std::string::npos || p.cpu_model.find("AMD") != std::string::npos)
    p.emulation = "qemu-user (host CPU shown)";
#endif
  p.cpu_count = cpu_count();
  p.clock_resolution_ns = clock_resolution_ns();
  p.backends = {
      {"clock", "clock_gettime(CLOCK_MONOTONIC), vDSO"},
      {"threads", "pthreads + gettid"},
      {"sleep", "clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)"},
      {"interrupt", posix::kInterruptArch.mechanism},
      {"thread_cpu_time", "per-thread CPU clock from tid"},
      {"park.address", "futex(2) private, FUTEX_WAIT_BITSET absolute CLOCK_MONOTONIC"},
      {"park.sema", "POSIX sem_t, sem_clockwait(CLOCK_MONOTONIC)"},
      {"memory", "mmap PROT_NONE|MAP_NORESERVE, mprotect, MAP_FIXED remap"},
      {"poller", detail::poller_banner()},
  };
  return p;
}

}  // namespace keel::os
