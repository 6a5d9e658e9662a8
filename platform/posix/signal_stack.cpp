// The per-thread alternate signal stack, shared by thread interruption
// (interrupt_signal.cpp: SIGURG, SIGTRAP) and stack faults
// (stack_fault_signal.cpp: SIGSEGV, SIGBUS). A handler for a stack overflow
// cannot run on the exhausted stack, and an interrupt must not grow a
// goroutine's small stack, so both run with SA_ONSTACK here.
//
// Counted per thread: the first altstack_acquire sets one up unless the
// thread already has one (a sanitizer's, the application's: then that one
// is used, as Go does); the last altstack_release tears down only one we
// made.
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include "platform/os.h"
#include "platform/posix/posix_internal.h"

#if defined(__SANITIZE_THREAD__)
#define KEEL_TSAN_BUILD 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define KEEL_TSAN_BUILD 1
#endif
#endif
#if defined(KEEL_TSAN_BUILD)
#include <dlfcn.h>
#endif

namespace keel::os::posix {
namespace {

// initial-exec: signal handlers read these, and the general dynamic model
// may allocate on a thread's first access.
#define KEEL_TLS_IE __attribute__((tls_model("initial-exec")))
thread_local uintptr_t t_alt_lo KEEL_TLS_IE = 0;  // the alternate signal stack in use
thread_local uintptr_t t_alt_hi KEEL_TLS_IE = 0;
thread_local void* t_alt_mine KEEL_TLS_IE = nullptr;  // ours to free (mmap base), if we made it
thread_local size_t t_alt_map KEEL_TLS_IE = 0;
thread_local int t_alt_users KEEL_TLS_IE = 0;

// 64 KiB: the kernel's signal frame (XSAVE with AVX-512 ~3.5 KiB, arm64 SVE
// more), the handler, and whatever the core's handler needs, with room to
// spare for a nested foreign handler that also asked for SA_ONSTACK.
size_t altstack_size() noexcept {
  size_t size = 64 * 1024;
#if defined(_SC_MINSIGSTKSZ)
  long min = sysconf(_SC_MINSIGSTKSZ);
  if (min > 0 && size_t(min) * 4 > size) size = size_t(min) * 4;
#endif
  if (size_t(SIGSTKSZ) > size) size = SIGSTKSZ;
  return size;
}

bool setup() noexcept {
  stack_t cur = {};
  if (sigaltstack(nullptr, &cur) == 0 && (cur.ss_flags & SS_DISABLE) == 0 && cur.ss_size != 0) {
    t_alt_lo = reinterpret_cast<uintptr_t>(cur.ss_sp);
    t_alt_hi = t_alt_lo + cur.ss_size;
    return true;
  }
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  const size_t size = (altstack_size() + page - 1) / page * page;
  void* base = mmap(nullptr, size + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
  if (base == MAP_FAILED) return false;
  mprotect(base, page, PROT_NONE);  // guard: an overflow faults instead of corrupting
  stack_t ss = {};
  ss.ss_sp = static_cast<char*>(base) + page;
  ss.ss_size = size;
  if (sigaltstack(&ss, nullptr) != 0) {
    munmap(base, size + page);
    return false;
  }
  t_alt_mine = base;
  t_alt_map = size + page;
  t_alt_lo = reinterpret_cast<uintptr_t>(ss.ss_sp);
  t_alt_hi = t_alt_lo + size;
  return true;
}

void teardown() noexcept {
  if (t_alt_mine != nullptr) {
    stack_t ss = {};
    ss.ss_flags = SS_DISABLE;
    sigaltstack(&ss, nullptr);
    munmap(t_alt_mine, t_alt_map);
  }
  t_alt_mine = nullptr;
  t_alt_map = 0;
  t_alt_lo = t_alt_hi = 0;
}

}  // namespace

bool altstack_acquire() noexcept {
  if (t_alt_users == 0 && !setup()) return false;
  ++t_alt_users;
  return true;
}

void altstack_release() noexcept {
  if (t_alt_users == 0) return;
  if (--t_alt_users == 0) teardown();
}

KEEL_INTERRUPT_CONTEXT bool altstack_contains(uintptr_t sp) noexcept { return sp >= t_alt_lo && sp < t_alt_hi; }

// ThreadSanitizer defers asynchronous signals to its next interceptor call
// and then hands the handler a COPY of the ucontext: a thread spinning in
// registers would never be interrupted, and push_call would rewrite a copy.
// Under TSan, install through libc's own sigaction; the handler paths are
// uninstrumented (KEEL_INTERRUPT_CONTEXT) so they never re-enter TSan.
int install_action(int sig, const struct sigaction* sa, struct sigaction* old) noexcept {
#if defined(KEEL_TSAN_BUILD)
  using Fn = int (*)(int, const struct sigaction*, struct sigaction*);
  static const Fn real = [] {
    void* libc = dlopen("libc.so.6", RTLD_NOLOAD | RTLD_LAZY);
    void* sym = libc != nullptr ? dlsym(libc, "sigaction") : nullptr;
    return sym != nullptr ? reinterpret_cast<Fn>(sym) : &::sigaction;
  }();
  return real(sig, sa, old);
#else
  return ::sigaction(sig, sa, old);
#endif
}

}  // namespace keel::os::posix
