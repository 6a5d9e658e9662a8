// Darwin hooks of thread interruption (platform/posix/interrupt_signal.cpp):
// pthread_kill, the thread's stack bounds, and the ucontext layout per CPU.
// uc_mcontext is a pointer on Darwin (to _STRUCT_MCONTEXT64 inside the
// signal frame); sigreturn reads the registers back through it.
#include <pthread.h>
#include <signal.h>
#include <sys/ucontext.h>

#include <cstring>

#include "platform/arch/interrupt_arch.h"
#include "platform/os.h"
#include "platform/posix/posix_internal.h"

namespace keel::os::posix {

// Darwin has no tgkill: the pthread_t stored in the slot at registration is
// valid until the thread deregisters, and deregistration waits for senders.
int interrupt_send(uint64_t, uintptr_t os_handle) noexcept { return pthread_kill(to_pthread(os_handle), SIGURG); }

uintptr_t interrupt_handle_self() noexcept { return to_word(pthread_self()); }

void stack_bounds_self(uintptr_t* lo, uintptr_t* hi) noexcept {
  pthread_t self = pthread_self();
  *hi = reinterpret_cast<uintptr_t>(pthread_get_stackaddr_np(self));  // the top: stacks grow down
  *lo = *hi - pthread_get_stacksize_np(self);
}

#if defined(__x86_64__)

#if defined(KEEL_ARCH_X86_64)
constexpr InterruptArch kInterruptArch = {true, true, "SIGURG via pthread_kill; x86_64 SysV trampoline (XSAVE)", ""};
#else
constexpr InterruptArch kInterruptArch = {true, false, "SIGURG via pthread_kill", "built without the x86_64 trampoline"};
#endif

KEEL_INTERRUPT_CONTEXT void context_read(const void* p, InterruptContext& ctx) noexcept {
  const auto& ss = static_cast<const ucontext_t*>(p)->uc_mcontext->__ss;
  ctx.pc = uintptr_t(ss.__rip);
  ctx.sp = uintptr_t(ss.__rsp);
  ctx.fp = uintptr_t(ss.__rbp);
  ctx.lr = 0;
}

KEEL_INTERRUPT_CONTEXT Error context_push_call(void* p, InterruptFn fn, void* arg) noexcept {
#if defined(KEEL_ARCH_X86_64)
  auto& ss = static_cast<ucontext_t*>(p)->uc_mcontext->__ss;
  ss.__rsp = arch::x86_64_push_call_frame(uintptr_t(ss.__rsp), uintptr_t(ss.__rip), fn, arg, arch::kSysvRedZone);
  ss.__rip = reinterpret_cast<uintptr_t>(&keel_interrupt_trampoline);
  return Error::ok;
#else
  (void)p, (void)fn, (void)arg;
  return Error::not_supported;
#endif
}

bool context_trap_restore(void*) noexcept { return false; }

#elif defined(__aarch64__) || defined(__arm64__)

#if defined(KEEL_ARCH_AARCH64)
constexpr InterruptArch kInterruptArch = {
    true, true, "SIGURG via pthread_kill; aarch64 trampoline, full context restored through a brk trap", ""};
#else
constexpr InterruptArch kInterruptArch = {true, false, "SIGURG via pthread_kill", "built without the aarch64 trampoline"};
#endif

#if defined(KEEL_ARCH_AARCH64)
namespace {
// Everything sigreturn restores, saved below the interrupted sp by push_call
// and copied back by the trap handler (trampoline_aarch64.S explains why).
// Darwin's mcontext: exception state, x0-x28/fp/lr/sp/pc/cpsr, NEON v0-v31
// with FPSR/FPCR. (arm64e pointer authentication would sign pc/lr; keel is
// built for plain arm64, where the fields hold raw addresses.)
struct alignas(16) SavedContext {
  uint64_t magic;        // arch::kA64FrameMagic while live
  SavedContext* self;    // == this: a stray x19 is not mistaken for a frame
  sigset_t mask;         // the interrupted signal mask
  _STRUCT_MCONTEXT64 mc;
};
}  // namespace
#endif

KEEL_INTERRUPT_CONTEXT void context_read(const void* p, InterruptContext& ctx) noexcept {
  const auto& ss = static_cast<const ucontext_t*>(p)->uc_mcontext->__ss;
  ctx.pc = uintptr_t(ss.__pc);
  ctx.sp = uintptr_t(ss.__sp);
  ctx.fp = uintptr_t(ss.__fp);
  ctx.lr = uintptr_t(ss.__lr);
}

KEEL_INTERRUPT_CONTEXT Error context_push_call(void* p, InterruptFn fn, void* arg) noexcept {
#if defined(KEEL_ARCH_AARCH64)
  auto* uc = static_cast<ucontext_t*>(p);
  auto& ss = uc->uc_mcontext->__ss;
  // The trampoline ends in brk; a blocked SIGTRAP would kill the process.
  if (sigismember(&uc->uc_sigmask, SIGTRAP) == 1) return Error::try_again;
  const uintptr_t at = (uintptr_t(ss.__sp) - arch::kA64RedZone - sizeof(SavedContext)) & ~uintptr_t{15};
  auto* saved = reinterpret_cast<SavedContext*>(at);
  saved->magic = arch::kA64FrameMagic;
  saved->self = saved;
  saved->mask = uc->uc_sigmask;
  std::memcpy(&saved->mc, uc->uc_mcontext, sizeof saved->mc);
  ss.__x[0] = uintptr_t(arg);
  ss.__x[1] = reinterpret_cast<uintptr_t>(fn);
  ss.__x[19] = at;
  ss.__lr = ss.__pc;  // lr = resume pc: backtraces from fn reach the interrupted code
  ss.__sp = at;
  ss.__pc = reinterpret_cast<uintptr_t>(&keel_interrupt_trampoline);
  return Error::ok;
#else
  (void)p, (void)fn, (void)arg;
  return Error::not_supported;
#endif
}

KEEL_INTERRUPT_CONTEXT bool context_trap_restore(void* p) noexcept {
#if defined(KEEL_ARCH_AARCH64)
  auto* uc = static_cast<ucontext_t*>(p);
  auto& ss = uc->uc_mcontext->__ss;
  if (uintptr_t(ss.__pc) != reinterpret_cast<uintptr_t>(&keel_interrupt_trampoline_trap)) return false;
  auto* saved = reinterpret_cast<SavedContext*>(ss.__x[19]);
  if (saved == nullptr || uintptr_t(saved) != uintptr_t(ss.__sp) + 16 || saved->self != saved ||
      saved->magic != arch::kA64FrameMagic) {
    return false;
  }
  std::memcpy(uc->uc_mcontext, &saved->mc, sizeof saved->mc);
  uc->uc_sigmask = saved->mask;
  saved->magic = 0;
  return true;
#else
  (void)p;
  return false;
#endif
}

#else

constexpr InterruptArch kInterruptArch = {true, false, "SIGURG via pthread_kill",
                                          "no ucontext accessors or trampoline for this CPU"};
void context_read(const void*, InterruptContext&) noexcept {}
Error context_push_call(void*, InterruptFn, void*) noexcept { return Error::not_supported; }
bool context_trap_restore(void*) noexcept { return false; }

#endif

}  // namespace keel::os::posix
