// Stack faults on Unix (linux, darwin): SIGSEGV and SIGBUS on the thread's
// alternate signal stack.
//
// A goroutine that runs into its guard page faults with its stack pointer at
// the bottom of an exhausted stack; the kernel can deliver the signal only
// onto another stack, so every thread that runs goroutines registers one
// (stack_fault_thread_init; signal_stack.cpp, shared with interruption).
// The handler asks core (the StackFaultHandler) whether the address lies in
// a registered guard page; core reports and exits if so. Otherwise the fault
// is not ours: a handler that was installed before us (a sanitizer's, the
// application's) gets it, or the default action is restored so the process
// dies of the fault as it would have without keel — a faulting instruction
// repeats when the handler returns, a sent signal is raised again.
//
// Darwin raises SIGBUS for an access to a protected (guard) page and SIGSEGV
// for an unmapped one; Linux SIGSEGV for both. Both are handled everywhere.
#include <pthread.h>
#include <signal.h>

#include <mutex>

#include "platform/os.h"
#include "platform/posix/posix_internal.h"

namespace keel::os {
namespace {

StackFaultHandler g_fault = nullptr;  // __atomic: read in the signal handler
bool g_installed = false;             // under g_mu
std::mutex g_mu;
struct sigaction g_old_segv;  // chained to when a fault is not an overflow
struct sigaction g_old_bus;

#define KEEL_TLS_IE __attribute__((tls_model("initial-exec")))
thread_local bool t_registered KEEL_TLS_IE = false;

struct AutoFini {
  ~AutoFini() { stack_fault_thread_fini(); }
};
thread_local AutoFini t_auto_fini;

KEEL_INTERRUPT_CONTEXT bool is_handler(const struct sigaction& a) noexcept {
  if ((a.sa_flags & SA_SIGINFO) != 0) return a.sa_sigaction != nullptr;
  return a.sa_handler != SIG_DFL && a.sa_handler != SIG_IGN;
}

extern "C" KEEL_INTERRUPT_CONTEXT void keel_on_fault(int sig, siginfo_t* info, void* uc) {
  // si_code > 0: raised by the kernel for an access (SEGV_MAPERR,
  // SEGV_ACCERR, BUS_ADRERR...); <= 0: sent by someone (kill, raise).
  const bool from_access = info != nullptr && info->si_code > 0;
  StackFaultHandler h = __atomic_load_n(&g_fault, __ATOMIC_ACQUIRE);
  if (h != nullptr && from_access) {
    StackFault f;
    f.addr = reinterpret_cast<uintptr_t>(info->si_addr);
    if (posix::kInterruptArch.context && uc != nullptr) {
      InterruptContext ctx;
      posix::context_read(uc, ctx);
      f.sp = ctx.sp;
    }
    h(f);  // returns only when the fault is not a goroutine stack overflow
  }
  const struct sigaction& old = sig == SIGBUS ? g_old_bus : g_old_segv;
  if (is_handler(old)) {
    if ((old.sa_flags & SA_SIGINFO) != 0) old.sa_sigaction(sig, info, uc);
    else old.sa_handler(sig);
    return;
  }
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  posix::install_action(sig, &dfl, nullptr);
  if (!from_access) raise(sig);  // pending until we return, then fatal
}

}  // namespace

Error stack_fault_install(StackFaultHandler h) noexcept {
  if (h == nullptr) return Error::invalid_argument;
  std::lock_guard<std::mutex> lock(g_mu);
  __atomic_store_n(&g_fault, h, __ATOMIC_RELEASE);
  if (g_installed) return Error::ok;
  struct sigaction sa = {};
  sa.sa_sigaction = keel_on_fault;
  // No SA_NODEFER: a fault inside the handler itself then kills the process
  // with the original signal instead of recursing on the signal stack.
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  if (posix::install_action(SIGSEGV, &sa, &g_old_segv) != 0) return Error::unknown;
  if (posix::install_action(SIGBUS, &sa, &g_old_bus) != 0) {
    posix::install_action(SIGSEGV, &g_old_segv, nullptr);
    return Error::unknown;
  }
  g_installed = true;
  return Error::ok;
}

Error stack_fault_thread_init() noexcept {
  if (t_registered) return Error::ok;
  if (!posix::altstack_acquire()) return Error::no_resources;
  t_registered = true;
  (void)&t_auto_fini;  // odr-use: constructs it, so its destructor runs at thread exit
  return Error::ok;
}

Error stack_fault_arm(void* lo, size_t size, void** limit) noexcept {
  // The kernel delivers the fault on the alternate signal stack: the guard
  // page alone is enough.
  if (lo == nullptr || size == 0 || limit == nullptr) return Error::invalid_argument;
  *limit = lo;
  return Error::ok;
}

size_t stack_fault_headroom() noexcept { return 0; }

void stack_fault_thread_fini() noexcept {
  if (!t_registered) return;
  t_registered = false;
  posix::altstack_release();
}

}  // namespace keel::os
