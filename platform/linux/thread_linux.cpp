// Linux specifics of the thread group: kernel ids, names, per-thread CPU
// clocks and affinity-aware CPU count.
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <dirent.h>

#include <cstdio>
#include <cstring>

#include "platform/os.h"
#include "platform/posix/posix_internal.h"

namespace keel::os {

namespace posix {
uint64_t kernel_tid_self() noexcept { return uint64_t(syscall(SYS_gettid)); }
uintptr_t thread_aux(pthread_t) noexcept { return 0; }
}  // namespace posix

int cpu_count() noexcept {
  // Affinity first: a container or taskset may give us fewer CPUs than are
  // online, and GOMAXPROCS-style defaults must respect that.
  for (size_t ncpu = 1024; ncpu <= 1 << 18; ncpu *= 4) {
    cpu_set_t* set = CPU_ALLOC(ncpu);
    if (set == nullptr) break;
    size_t size = CPU_ALLOC_SIZE(ncpu);
    CPU_ZERO_S(size, set);
    if (sched_getaffinity(0, size, set) == 0) {
      int n = CPU_COUNT_S(size, set);
      CPU_FREE(set);
      return n > 0 ? n : 1;
    }
    CPU_FREE(set);  // EINVAL: the kernel's mask is larger than ours; retry bigger
  }
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? int(n) : 1;
}

Error thread_set_name(const char* name) noexcept {
  if (name == nullptr) return Error::invalid_argument;
  // The kernel keeps 15 bytes + NUL; longer names make pthread_setname_np
  // fail with ERANGE, so truncate instead of rejecting.
  char buf[16];
  std::strncpy(buf, name, sizeof buf - 1);
  buf[sizeof buf - 1] = '\0';
  return pthread_setname_np(pthread_self(), buf) == 0 ? Error::ok : Error::unknown;
}

Error thread_get_name(char* buf, size_t cap) noexcept {
  if (buf == nullptr || cap == 0) return Error::invalid_argument;
  char tmp[16];  // pthread_getname_np needs >= 16 bytes
  if (pthread_getname_np(pthread_self(), tmp, sizeof tmp) != 0) return Error::unknown;
  std::strncpy(buf, tmp, cap - 1);
  buf[cap - 1] = '\0';
  return Error::ok;
}

int64_t thread_cpu_time_ns(const Thread& t) noexcept {
  if (!t.valid()) return -1;
  // The per-thread CPU clock id built from the kernel tid (the encoding
  // glibc's pthread_getcpuclockid uses). Unlike a pthread_t, a tid of an
  // exited thread just makes clock_gettime fail with EINVAL: no UB.
  const clockid_t cid = clockid_t((~unsigned(t.id) << 3) | 6);  // CPUCLOCK_PERTHREAD | CPUCLOCK_SCHED
  timespec ts;
  if (clock_gettime(cid, &ts) != 0) return -1;
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

namespace {
// qemu-user runs one helper thread of its own (its RCU thread) in every
// process, visible in /proc/self/task but never running guest code. It passes
// the host's /proc/cpuinfo through, so an x86 vendor seen from an aarch64
// binary means we are emulated (the same test platform_info uses).
int emulator_helper_threads() noexcept {
#if defined(__aarch64__)
  static const int n = [] {
    FILE* f = std::fopen("/proc/cpuinfo", "r");
    if (f == nullptr) return 0;
    char line[256];
    int found = 0;
    while (found == 0 && std::fgets(line, sizeof line, f) != nullptr)
      if (std::strstr(line, "GenuineIntel") != nullptr || std::strstr(line, "AuthenticAMD") != nullptr) found = 1;
    std::fclose(f);
    return found;
  }();
  return n;
#else
  return 0;
#endif
}
}  // namespace

int64_t thread_count() noexcept {
  // One entry per thread in /proc/self/task. (/proc/self/stat's num_threads
  // would be cheaper, but qemu-user fakes that file and reports 0 there.)
  DIR* d = opendir("/proc/self/task");
  if (d == nullptr) return -1;
  int64_t n = 0;
  while (dirent* e = readdir(d))
    if (e->d_name[0] != '.') n++;
  closedir(d);
  return n - emulator_helper_threads();
}

}  // namespace keel::os
