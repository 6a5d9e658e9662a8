// Thread interruption on Unix (linux, darwin): a directed SIGURG.
//
// SIGURG, as Go (runtime/signal_unix.go): ignored by default, unused by libc
// and by programs that do not ask for out-of-band socket data, and harmless
// if it arrives spuriously. Sent with tgkill (linux) or pthread_kill (darwin)
// through posix::interrupt_send; handled with SA_SIGINFO | SA_ONSTACK |
// SA_RESTART on the thread's alternate signal stack. SA_RESTART makes the
// kernel restart what it can (read, write, an untimed futex wait) instead
// of failing it with EINTR; what it never restarts (poll, timed waits,
// nanosleep) returns EINTR, and every contract function that blocks must
// absorb that and resume with the remaining time.
//
// At most one signal is in flight per thread (Go #37741): a sender only
// signals when it flips the slot's pending flag, and one handler run
// acknowledges every request made before it (interrupt_slots.h). The handler
// allocates nothing and takes no lock; it finds its slot through an
// initial-exec thread-local, which never allocates.
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <mutex>

#include "platform/arch/interrupt_arch.h"
#include "platform/interrupt_slots.h"
#include "platform/os.h"
#include "platform/posix/posix_internal.h"

namespace keel::os {
namespace {

constexpr int kSignal = SIGURG;
constexpr uint32_t kPushed = 1;  // InterruptContext::flags: push_call already done

InterruptHandler g_handler = nullptr;  // islot::ld/st: read in the signal handler
uint32_t g_installed = 0;              // written under g_install_mu
std::mutex g_install_mu;
struct sigaction g_old_urg;   // chained to when a SIGURG is not ours
struct sigaction g_old_trap;  // aarch64: chained to when a SIGTRAP is not our brk

// Per-thread state. initial-exec: the handler reads it, and the general
// dynamic model may allocate on a thread's first access.
#define KEEL_TLS_IE __attribute__((tls_model("initial-exec")))
thread_local islot::Slot* t_slot KEEL_TLS_IE = nullptr;

// Registration ends at thread exit even without interrupt_thread_fini().
struct AutoFini {
  ~AutoFini() { interrupt_thread_fini(); }
};
thread_local AutoFini t_auto_fini;

using posix::install_action;

KEEL_INTERRUPT_CONTEXT void chain(const struct sigaction& old, int sig, siginfo_t* info, void* uc) {
  if ((old.sa_flags & SA_SIGINFO) != 0) {
    if (old.sa_sigaction != nullptr) old.sa_sigaction(sig, info, uc);
  } else if (old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN) {
    old.sa_handler(sig);
  }
}

extern "C" KEEL_INTERRUPT_CONTEXT void keel_on_sigurg(int sig, siginfo_t* info, void* uc) {
  const int saved_errno = errno;
  islot::Slot* s = t_slot;
  uint32_t gen = 0;
  if (s != nullptr && islot::claim_for_handler(s, &gen)) {
    InterruptContext ctx;
    ctx.native = uc;
    ctx.thread_id = islot::ld(&s->tid);
    posix::context_read(uc, ctx);
    InterruptHandler h = islot::ld(&g_handler);
    if (h != nullptr) h(ctx);
    islot::handler_done(s, gen);
  } else {
    // Someone else's SIGURG (out-of-band data, kill -URG), or a duplicate of
    // a request an earlier run already acknowledged.
    chain(g_old_urg, sig, info, uc);
  }
  errno = saved_errno;
}

extern "C" KEEL_INTERRUPT_CONTEXT void keel_on_sigtrap(int sig, siginfo_t* info, void* uc) {
  if (posix::context_trap_restore(uc)) return;  // sigreturn resumes the interrupted code
  if ((g_old_trap.sa_flags & SA_SIGINFO) != 0 ||
      (g_old_trap.sa_handler != SIG_DFL && g_old_trap.sa_handler != SIG_IGN)) {
    chain(g_old_trap, sig, info, uc);
    return;
  }
  // Not ours and nobody else's: die of it as if we had never been installed
  // (raise stays pending until this handler returns).
  struct sigaction dfl = {};
  dfl.sa_handler = SIG_DFL;
  install_action(SIGTRAP, &dfl, nullptr);
  raise(SIGTRAP);
}

void set_blocked(bool blocked) noexcept {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, kSignal);
  pthread_sigmask(blocked ? SIG_BLOCK : SIG_UNBLOCK, &set, nullptr);
}

}  // namespace

Error interrupt_install(InterruptHandler handler) noexcept {
  if (handler == nullptr) return Error::invalid_argument;
  if (!caps().interrupt) return Error::not_supported;
  std::lock_guard<std::mutex> lock(g_install_mu);
  arch::init();
  islot::st(&g_handler, handler);
  if (g_installed) return Error::ok;
  struct sigaction sa = {};
  sa.sa_sigaction = keel_on_sigurg;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  if (install_action(kSignal, &sa, &g_old_urg) != 0) return Error::unknown;
#if defined(KEEL_ARCH_AARCH64)
  // The trampoline's brk. SIGURG is blocked while restoring, so an interrupt
  // cannot land between the copy and sigreturn.
  struct sigaction trap = {};
  trap.sa_sigaction = keel_on_sigtrap;
  trap.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
  sigemptyset(&trap.sa_mask);
  sigaddset(&trap.sa_mask, kSignal);
  if (install_action(SIGTRAP, &trap, &g_old_trap) != 0) return Error::unknown;
#else
  (void)&keel_on_sigtrap;
#endif
  islot::st(&g_installed, 1u);
  return Error::ok;
}

Error interrupt_thread_init() noexcept {
  if (t_slot != nullptr) return Error::ok;
  if (!caps().interrupt) return Error::not_supported;
  // The handler runs on the alternate signal stack (signal_stack.cpp,
  // shared with the stack-fault handler).
  if (!posix::altstack_acquire()) return Error::no_resources;
  uintptr_t lo = 0, hi = 0;
  posix::stack_bounds_self(&lo, &hi);
  islot::Slot* s = islot::claim(thread_id(), posix::interrupt_handle_self(), 0, lo, hi);
  if (s == nullptr) {
    posix::altstack_release();
    return Error::no_resources;
  }
  t_slot = s;
  (void)&t_auto_fini;  // odr-use: constructs it, so its destructor runs at thread exit
  set_blocked(false);
  return Error::ok;
}

void interrupt_thread_fini() noexcept {
  islot::Slot* s = t_slot;
  if (s == nullptr) return;
  // Blocked first: from here no handler runs on this thread, so release may
  // withdraw whatever is outstanding. A signal already sent stays pending
  // and dies with the thread (or is discarded as a duplicate after a new init).
  set_blocked(true);
  islot::release(s);
  t_slot = nullptr;
  posix::altstack_release();
}

Error interrupt_block(bool blocked) noexcept {
  set_blocked(blocked);
  return Error::ok;
}

Error interrupt(const Thread& t, uint32_t* ticket) noexcept {
  if (!t.valid()) return Error::invalid_argument;
  if (!caps().interrupt) return Error::not_supported;
  if (islot::ld(&g_installed) == 0) return Error::invalid_argument;
  if (t.id == thread_id()) return Error::invalid_argument;  // self: rejected, as on Windows
  islot::Slot* s = islot::find(t.id);
  if (s == nullptr || !islot::begin_send(s, t.id)) return Error::no_such_thread;
  const uint32_t gen = islot::new_request(s);
  if (ticket != nullptr) *ticket = gen;
  Error err = Error::ok;
  if (islot::xchg(&s->pending, 1u) == 0) {
    const int rc = posix::interrupt_send(t.id, s->os_handle);
    if (rc != 0) {
      islot::st(&s->pending, 0u);
      islot::withdraw(s, gen);
      err = rc == ESRCH ? Error::no_such_thread : Error::unknown;
    }
  }
  islot::end_send(s);
  return err;
}

KEEL_INTERRUPT_CONTEXT Error InterruptContext::push_call(InterruptFn fn, void* arg) noexcept {
  if (fn == nullptr || native == nullptr || (flags & kPushed) != 0) return Error::invalid_argument;
  if (!posix::kInterruptArch.push_call) return Error::not_supported;
  // Interrupted inside another signal handler running on the signal stack:
  // the injected call would run there too, on a small stack the kernel may
  // reuse. Let the caller retry later.
  if (posix::altstack_contains(sp)) return Error::try_again;
  const islot::Slot* s = t_slot;
  if (s != nullptr && s->stack_lo != 0 && sp >= s->stack_lo && sp < s->stack_hi &&
      sp - s->stack_lo < islot::kPushCallHeadroom) {
    return Error::try_again;
  }
  const Error err = posix::context_push_call(native, fn, arg);
  if (err == Error::ok) flags |= kPushed;
  return err;
}

}  // namespace keel::os
