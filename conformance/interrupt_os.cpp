// OS-specific helpers for the interruption tests; see interrupt_os.h. One
// section per OS family, each case commented in a line.
#include "conformance/interrupt_os.h"

#include "conformance/arch/test_regs.h"

#include <atomic>
#include <cstring>

#if defined(_WIN32)
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>
#else
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#endif
#if defined(__APPLE__)
#include <mach-o/dyld.h>
extern "C" int __ulock_wait(uint32_t operation, void* addr, uint64_t value, uint32_t timeout_us);
extern "C" int __ulock_wake(uint32_t operation, void* addr, uint64_t wake_value);
#endif
extern char** environ;
#endif

#include "platform/tsan_annotations.h"
#if defined(KEEL_TSAN_ENABLED)
#define KEEL_TEST_TSAN 1
#endif
#if defined(KEEL_TEST_TSAN)
#include <dlfcn.h>
#endif

#if !defined(KEEL_TEST_ASM)
// No GNU assembler (MSVC): the tests that need the register loop skip
// (have_test_loop() is false); these only satisfy the linker.
extern "C" {
KeelTestRegs keel_test_regs;
void keel_test_reg_loop() {}
void keel_test_loop_begin() {}
void keel_test_loop_end() {}
void keel_test_clobber() {}
}
#endif

namespace keel::conformance::ios {

namespace os = keel::os;

bool have_test_loop() {
#if defined(KEEL_TEST_ASM)
  return true;
#else
  return false;
#endif
}

int vector_level() {
#if defined(KEEL_TEST_ASM) && defined(__x86_64__)
  // libgcc checks OS support (XCR0) too, not just the CPUID bits.
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) return 2;  // kmovq needs BW
  if (__builtin_cpu_supports("avx")) return 1;
#endif
  return 0;
}

const char* vector_level_name() {
#if defined(__aarch64__)
  return "NEON v0-v31";
#else
  switch (vector_level()) {
    case 2: return "AVX-512 zmm0-31 + k0-7";
    case 1: return "AVX ymm0-15";
    default: return "SSE xmm0-15";
  }
#endif
}

KEEL_INTERRUPT_CONTEXT void clear_in_loop() {
#if defined(_MSC_VER) && !defined(__clang__)
  std::atomic_ref<uint8_t>(keel_test_regs.in_loop).store(0);
#else
  __atomic_store_n(&keel_test_regs.in_loop, uint8_t{0}, __ATOMIC_SEQ_CST);
#endif
}

namespace {
std::atomic<uint64_t> g_storm_events{0};

int64_t remaining(int64_t deadline) {
  const int64_t left = deadline - os::nanotime();
  return left > 0 ? left : 0;
}
}  // namespace

#if defined(_WIN32)
// ------------------------------------------------------------------ Windows

KEEL_INTERRUPT_CONTEXT int64_t raw_now_ns() {
  // No function-local static: its first-use guard takes a lock, and a
  // suspended target may hold it.
  LARGE_INTEGER f, c;
  QueryPerformanceFrequency(&f);
  QueryPerformanceCounter(&c);
  return c.QuadPart / f.QuadPart * 1'000'000'000 + c.QuadPart % f.QuadPart * 1'000'000'000 / f.QuadPart;
}

Blocked futex_wait_while_zero(uint32_t* word, int64_t timeout_ns) {
  Blocked b;
  const int64_t deadline = os::nanotime() + timeout_ns;
  uint32_t zero = 0;
  while (std::atomic_ref<uint32_t>(*word).load() == 0) {
    const int64_t left = remaining(deadline);
    if (left == 0) return b.result = 0, b;
    const DWORD ms = static_cast<DWORD>((left + 999'999) / 1'000'000);  // round up: never early
    if (!WaitOnAddress(word, &zero, sizeof zero, ms) && GetLastError() != ERROR_TIMEOUT) {
      b.error = "WaitOnAddress failed: " + std::to_string(GetLastError());
      return b;
    }
  }
  b.result = 1;
  return b;
}

void futex_wake_all(uint32_t* word) { WakeByAddressAll(word); }

Pipe::Pipe() {
  HANDLE r = nullptr, w = nullptr;
  if (!CreatePipe(&r, &w, nullptr, 0)) return;
  HANDLE port = CreateIoCompletionPort(INVALID_HANDLE_VALUE, nullptr, 0, 1);
  if (port == nullptr) return;
  r_ = reinterpret_cast<intptr_t>(r);
  w_ = reinterpret_cast<intptr_t>(w);
  port_ = reinterpret_cast<intptr_t>(port);
  ok_ = true;
}

Pipe::~Pipe() {
  if (r_ != -1) CloseHandle(reinterpret_cast<HANDLE>(r_));
  if (w_ != -1) CloseHandle(reinterpret_cast<HANDLE>(w_));
  if (port_ != 0) CloseHandle(reinterpret_cast<HANDLE>(port_));
}

Blocked Pipe::read_byte(char* out) {
  Blocked b;
  DWORD got = 0;
  if (!ReadFile(reinterpret_cast<HANDLE>(r_), out, 1, &got, nullptr) || got != 1) {
    b.error = "ReadFile failed: " + std::to_string(GetLastError());
    return b;
  }
  b.result = 1;
  return b;
}

Blocked Pipe::wait_readable(int64_t timeout_ns) {
  Blocked b;
  const int64_t deadline = os::nanotime() + timeout_ns;
  for (;;) {
    const int64_t left = remaining(deadline);
    const DWORD ms = static_cast<DWORD>((left + 999'999) / 1'000'000);
    OVERLAPPED_ENTRY entry;
    ULONG n = 0;
    if (GetQueuedCompletionStatusEx(reinterpret_cast<HANDLE>(port_), &entry, 1, &n, ms, FALSE) && n == 1) {
      b.result = 1;
      return b;
    }
    if (GetLastError() != WAIT_TIMEOUT) {
      b.error = "GetQueuedCompletionStatusEx failed: " + std::to_string(GetLastError());
      return b;
    }
    if (remaining(deadline) == 0) return b.result = 0, b;  // Wine's timeouts are ~1 ms coarse: re-check
  }
}

bool Pipe::write_byte(char c) {
  DWORD put = 0;
  if (!WriteFile(reinterpret_cast<HANDLE>(w_), &c, 1, &put, nullptr) || put != 1) return false;
  return PostQueuedCompletionStatus(reinterpret_cast<HANDLE>(port_), 1, 0, nullptr) != 0;
}

void storm_install() {}

void storm_hit(const os::Thread& t) {
  HANDLE h = reinterpret_cast<HANDLE>(t.native);
  if (SuspendThread(h) == static_cast<DWORD>(-1)) return;
  alignas(16) CONTEXT c = {};
  c.ContextFlags = CONTEXT_FULL;
  GetThreadContext(h, &c);
  ResumeThread(h);
  g_storm_events.fetch_add(1);
}

const char* storm_kind() { return "foreign SuspendThread/GetThreadContext/ResumeThread"; }

std::string self_exe() {
  char buf[MAX_PATH * 4];
  const DWORD n = GetModuleFileNameA(nullptr, buf, sizeof buf);
  return std::string(buf, n);
}

int run(const std::vector<std::string>&, const std::vector<std::string>&, const std::vector<std::string>&,
        std::string* output, int64_t) {
  if (output != nullptr) *output = "run() is not implemented on Windows (no test needs it there)";
  return -1;
}

#else
// ------------------------------------------------------------------ posix

KEEL_INTERRUPT_CONTEXT int64_t raw_now_ns() {
  timespec ts = {};
#if defined(__linux__)
  syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts);
#else
  clock_gettime(CLOCK_MONOTONIC, &ts);
#endif
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

Blocked futex_wait_while_zero(uint32_t* word, int64_t timeout_ns) {
  Blocked b;
  const int64_t deadline = os::nanotime() + timeout_ns;
  while (std::atomic_ref<uint32_t>(*word).load() == 0) {
    const int64_t left = remaining(deadline);
    if (left == 0) return b.result = 0, b;
#if defined(__linux__)
    // A timed FUTEX_WAIT interrupted by a handled signal fails with EINTR
    // even under SA_RESTART (the kernel cannot restart a relative timeout).
    timespec ts = {static_cast<time_t>(left / 1'000'000'000), static_cast<long>(left % 1'000'000'000)};
    const long r = syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, 0, &ts, nullptr, 0);
    const int err = r == 0 ? 0 : errno;
#else
    // Darwin: __ulock_wait, UL_COMPARE_AND_WAIT (1), timeout in µs rounded up.
    const int64_t us = (left + 999) / 1000;
    const int r = __ulock_wait(1, word, 0, us > 0xffffffffLL ? 0xffffffffu : static_cast<uint32_t>(us));
    const int err = r >= 0 ? 0 : errno;
#endif
    if (err == EINTR) {
      ++b.eintr;
    } else if (err != 0 && err != EAGAIN && err != ETIMEDOUT) {
      b.error = std::string("futex wait failed: ") + std::strerror(err);
      return b;
    }
  }
  b.result = 1;
  return b;
}

void futex_wake_all(uint32_t* word) {
#if defined(__linux__)
  syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 0x7fffffff, nullptr, nullptr, 0);
#else
  __ulock_wake(1 | 0x100, word, 0);  // UL_COMPARE_AND_WAIT | ULF_WAKE_ALL
#endif
}

Pipe::Pipe() {
  int fds[2];
  if (pipe(fds) != 0) return;
  r_ = fds[0];
  w_ = fds[1];
  ok_ = true;
}

Pipe::~Pipe() {
  if (r_ >= 0) close(static_cast<int>(r_));
  if (w_ >= 0) close(static_cast<int>(w_));
}

Blocked Pipe::read_byte(char* out) {
  Blocked b;
  for (;;) {
    const ssize_t n = read(static_cast<int>(r_), out, 1);
    if (n == 1) return b.result = 1, b;
    if (n < 0 && errno == EINTR) {
      ++b.eintr;  // should not happen: SA_RESTART restarts a pipe read
      continue;
    }
    b.error = n == 0 ? std::string("read: end of file") : std::string("read: ") + std::strerror(errno);
    return b;
  }
}

Blocked Pipe::wait_readable(int64_t timeout_ns) {
  Blocked b;
  const int64_t deadline = os::nanotime() + timeout_ns;
  for (;;) {
    const int64_t left = remaining(deadline);
    // poll(2) fails with EINTR on any handled signal, SA_RESTART or not.
    const int ms = static_cast<int>((left + 999'999) / 1'000'000);
    pollfd p = {static_cast<int>(r_), POLLIN, 0};
    const int n = poll(&p, 1, ms);
    if (n == 1) return b.result = (p.revents & POLLIN) != 0 ? 1 : -1, b;
    if (n < 0 && errno == EINTR) {
      ++b.eintr;
      continue;
    }
    if (n < 0) {
      b.error = std::string("poll: ") + std::strerror(errno);
      return b;
    }
    if (remaining(deadline) == 0) return b.result = 0, b;
  }
}

bool Pipe::write_byte(char c) { return write(static_cast<int>(w_), &c, 1) == 1; }

namespace {

std::atomic<uint64_t> g_usr1_runs{0}, g_chld_runs{0};

// Work that uses registers (integer, FP, whatever the compiler vectorizes),
// without calling libc: memset/memcpy are intercepted under TSan, and a
// signal may land inside TSan's runtime.
KEEL_INTERRUPT_CONTEXT void storm_work(unsigned seed) {
  volatile uint64_t buf[64];
  uint64_t x = seed;
  for (volatile uint64_t& b : buf) b = x = x * 6364136223846793005ull + 1442695040888963407ull;
  volatile double d = seed * 1.000001;
  d = d * d + 0.5;
}

extern "C" KEEL_INTERRUPT_CONTEXT void on_usr1(int) {
  const int e = errno;
  g_usr1_runs.fetch_add(1, std::memory_order_relaxed);  // always-inline: no TSan call
  storm_work(1);
  errno = e;
}

extern "C" KEEL_INTERRUPT_CONTEXT void on_chld(int) {
  const int e = errno;
  g_chld_runs.fetch_add(1, std::memory_order_relaxed);
  storm_work(2);
  errno = e;
}

// As in the backend: under TSan, libc's own sigaction, so the handlers run
// at the instruction the signal hits instead of at TSan's next interceptor.
int install(int sig, const struct sigaction* sa) {
#if defined(KEEL_TEST_TSAN)
  using Fn = int (*)(int, const struct sigaction*, struct sigaction*);
  void* libc = dlopen("libc.so.6", RTLD_NOLOAD | RTLD_LAZY);
  void* sym = libc != nullptr ? dlsym(libc, "sigaction") : nullptr;
  if (sym != nullptr) return reinterpret_cast<Fn>(sym)(sig, sa, nullptr);
#endif
  return sigaction(sig, sa, nullptr);
}

}  // namespace

void storm_install() {
  struct sigaction a = {};
  a.sa_handler = on_usr1;
  a.sa_flags = SA_RESTART;  // runs on the interrupted stack, below the red zone
  sigemptyset(&a.sa_mask);
  install(SIGUSR1, &a);
  struct sigaction c = {};
  c.sa_handler = on_chld;
  c.sa_flags = SA_RESTART | SA_ONSTACK;  // nests on the signal stack when it lands in keel's handler
  sigemptyset(&c.sa_mask);
  install(SIGCHLD, &c);
}

void storm_hit(const os::Thread& t) {
#if defined(__linux__)
  syscall(SYS_tgkill, getpid(), static_cast<pid_t>(t.id), SIGUSR1);
  syscall(SYS_tgkill, getpid(), static_cast<pid_t>(t.id), SIGCHLD);
#else
  pthread_t p;
  std::memcpy(&p, &t.native, sizeof p);
  pthread_kill(p, SIGUSR1);
  pthread_kill(p, SIGCHLD);
#endif
  g_storm_events.fetch_add(2);
}

const char* storm_kind() { return "SIGUSR1 (on the thread's stack) + SIGCHLD (SA_ONSTACK) with handlers"; }

std::string self_exe() {
#if defined(__APPLE__)
  char buf[4096];
  uint32_t size = sizeof buf;
  if (_NSGetExecutablePath(buf, &size) != 0) return {};
  return buf;
#else
  // Under qemu-user this is the emulated binary, not qemu (qemu rewrites it).
  char buf[4096];
  const ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, size_t(n)) : std::string();
#endif
}

int run(const std::vector<std::string>& argv, const std::vector<std::string>& env_set,
        const std::vector<std::string>& env_unset, std::string* output, int64_t timeout_ns) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string kv = *e;
    bool drop = false;
    for (const std::string& k : env_unset) drop = drop || kv.rfind(k + "=", 0) == 0;
    for (const std::string& s : env_set) drop = drop || kv.rfind(s.substr(0, s.find('=') + 1), 0) == 0;
    if (!drop) env.push_back(kv);
  }
  env.insert(env.end(), env_set.begin(), env_set.end());
  std::vector<char*> cargv, cenv;
  for (const std::string& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  for (const std::string& e : env) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);

  int out[2];
  if (pipe(out) != 0) return -1;
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, out[1], 2);
  posix_spawn_file_actions_addclose(&fa, out[0]);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, cargv[0], &fa, nullptr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&fa);
  close(out[1]);
  if (rc != 0) {
    close(out[0]);
    if (output != nullptr) *output = std::string("posix_spawn: ") + std::strerror(rc);
    return -1;
  }
  const int64_t deadline = os::nanotime() + timeout_ns;
  bool killed = false;
  char buf[4096];
  for (;;) {
    const int64_t left = remaining(deadline);
    if (left == 0 && !killed) {
      kill(pid, SIGKILL);
      killed = true;
    }
    pollfd p = {out[0], POLLIN, 0};
    const int n = poll(&p, 1, killed ? 1000 : static_cast<int>(left / 1'000'000 + 1));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (killed) break;
      continue;
    }
    const ssize_t got = read(out[0], buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    if (output != nullptr) output->append(buf, size_t(got));
  }
  close(out[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (killed || !WIFEXITED(status)) return -1;
  return WEXITSTATUS(status);
}

#endif

uint64_t storm_events() { return g_storm_events.load(); }

}  // namespace keel::conformance::ios
