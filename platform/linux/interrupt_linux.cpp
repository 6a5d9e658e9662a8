// Linux hooks of thread interruption (platform/posix/interrupt_signal.cpp):
// tgkill, the thread's stack bounds, and the ucontext layout per CPU.
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/ucontext.h>
#include <unistd.h>

#include <cstring>

#include "platform/arch/interrupt_arch.h"
#include "platform/os.h"
#include "platform/posix/posix_internal.h"

namespace keel::os::posix {

int interrupt_send(uint64_t tid, uintptr_t) noexcept {
  // tgkill, not tkill: the thread group check means a recycled tid in another
  // process is never hit (getpid() is re-read: a forked child has a new pid).
  if (syscall(SYS_tgkill, getpid(), pid_t(tid), SIGURG) == 0) return 0;
  return errno;
}

uintptr_t interrupt_handle_self() noexcept { return 0; }

void stack_bounds_self(uintptr_t* lo, uintptr_t* hi) noexcept {
  *lo = *hi = 0;
  pthread_attr_t attr;
  if (pthread_getattr_np(pthread_self(), &attr) != 0) return;
  void* addr = nullptr;
  size_t size = 0;
  if (pthread_attr_getstack(&attr, &addr, &size) == 0 && addr != nullptr) {
    *lo = reinterpret_cast<uintptr_t>(addr);
    *hi = *lo + size;
  }
  pthread_attr_destroy(&attr);
}

#if defined(__x86_64__)

#if defined(KEEL_ARCH_X86_64)
constexpr InterruptArch kInterruptArch = {true, true, "SIGURG via tgkill; x86_64 SysV trampoline (XSAVE)", ""};
#else
constexpr InterruptArch kInterruptArch = {true, false, "SIGURG via tgkill", "built without the x86_64 trampoline"};
#endif

KEEL_INTERRUPT_CONTEXT void context_read(const void* p, InterruptContext& ctx) noexcept {
  const greg_t* g = static_cast<const ucontext_t*>(p)->uc_mcontext.gregs;
  ctx.pc = uintptr_t(g[REG_RIP]);
  ctx.sp = uintptr_t(g[REG_RSP]);
  ctx.fp = uintptr_t(g[REG_RBP]);
  ctx.lr = 0;
}

KEEL_INTERRUPT_CONTEXT Error context_push_call(void* p, InterruptFn fn, void* arg) noexcept {
#if defined(KEEL_ARCH_X86_64)
  greg_t* g = static_cast<ucontext_t*>(p)->uc_mcontext.gregs;
  g[REG_RSP] = greg_t(arch::x86_64_push_call_frame(uintptr_t(g[REG_RSP]), uintptr_t(g[REG_RIP]), fn, arg,
                                                   arch::kSysvRedZone));
  g[REG_RIP] = greg_t(reinterpret_cast<uintptr_t>(&keel_interrupt_trampoline));
  return Error::ok;
#else
  (void)p, (void)fn, (void)arg;
  return Error::not_supported;
#endif
}

bool context_trap_restore(void*) noexcept { return false; }

#elif defined(__aarch64__)

#if defined(KEEL_ARCH_AARCH64)
constexpr InterruptArch kInterruptArch = {
    true, true, "SIGURG via tgkill; aarch64 trampoline, full context restored through a brk trap", ""};
#else
constexpr InterruptArch kInterruptArch = {true, false, "SIGURG via tgkill", "built without the aarch64 trampoline"};
#endif

#if defined(KEEL_ARCH_AARCH64)
namespace {
// Everything sigreturn restores, saved below the interrupted sp by push_call
// and copied back by the trap handler (trampoline_aarch64.S explains why).
struct alignas(16) SavedContext {
  uint64_t magic;        // arch::kA64FrameMagic while live
  SavedContext* self;    // == this: a stray x19 is not mistaken for a frame
  sigset_t mask;         // the interrupted signal mask
  mcontext_t mc;         // x0-x30, sp, pc, pstate, and the __reserved records
                         // (FP/SIMD, SVE, ...), verbatim
};

// Records whose payload lives outside the 4 KiB __reserved area (SVE state
// of vector lengths beyond 512 bits) cannot be carried by a verbatim copy.
KEEL_INTERRUPT_CONTEXT bool has_extra_context(const mcontext_t& mc) noexcept {
  size_t off = 0;
  while (off + sizeof(_aarch64_ctx) <= sizeof mc.__reserved) {
    const auto* head = reinterpret_cast<const _aarch64_ctx*>(mc.__reserved + off);
    if (head->magic == 0) return false;
    if (head->magic == EXTRA_MAGIC) return true;
    if (head->size < sizeof(_aarch64_ctx)) return false;
    off += head->size;
  }
  return false;
}
}  // namespace
#endif

KEEL_INTERRUPT_CONTEXT void context_read(const void* p, InterruptContext& ctx) noexcept {
  const mcontext_t& mc = static_cast<const ucontext_t*>(p)->uc_mcontext;
  ctx.pc = uintptr_t(mc.pc);
  ctx.sp = uintptr_t(mc.sp);
  ctx.fp = uintptr_t(mc.regs[29]);
  ctx.lr = uintptr_t(mc.regs[30]);
}

KEEL_INTERRUPT_CONTEXT Error context_push_call(void* p, InterruptFn fn, void* arg) noexcept {
#if defined(KEEL_ARCH_AARCH64)
  auto* uc = static_cast<ucontext_t*>(p);
  mcontext_t& mc = uc->uc_mcontext;
  if (has_extra_context(mc)) return Error::not_supported;
  // The trampoline ends in brk; a blocked SIGTRAP would be forced to its
  // default action by the kernel and kill the process.
  if (sigismember(&uc->uc_sigmask, SIGTRAP) == 1) return Error::try_again;
  const uintptr_t at = (uintptr_t(mc.sp) - arch::kA64RedZone - sizeof(SavedContext)) & ~uintptr_t{15};
  auto* saved = reinterpret_cast<SavedContext*>(at);
  saved->magic = arch::kA64FrameMagic;
  saved->self = saved;
  std::memcpy(&saved->mask, &uc->uc_sigmask, sizeof saved->mask);
  std::memcpy(&saved->mc, &mc, sizeof saved->mc);
  mc.regs[0] = uintptr_t(arg);
  mc.regs[1] = reinterpret_cast<uintptr_t>(fn);
  mc.regs[19] = at;
  mc.regs[30] = mc.pc;  // lr = resume pc: backtraces from fn reach the interrupted code
  mc.sp = at;
  mc.pc = reinterpret_cast<uintptr_t>(&keel_interrupt_trampoline);
  mc.pstate &= ~(uint64_t{3} << 10);  // BTYPE: the trampoline is not entered by a branch
  return Error::ok;
#else
  (void)p, (void)fn, (void)arg;
  return Error::not_supported;
#endif
}

KEEL_INTERRUPT_CONTEXT bool context_trap_restore(void* p) noexcept {
#if defined(KEEL_ARCH_AARCH64)
  auto* uc = static_cast<ucontext_t*>(p);
  mcontext_t& mc = uc->uc_mcontext;
  if (mc.pc != reinterpret_cast<uintptr_t>(&keel_interrupt_trampoline_trap)) return false;
  auto* saved = reinterpret_cast<SavedContext*>(mc.regs[19]);
  // The trampoline pushed one 16-byte frame record below the saved context.
  if (saved == nullptr || uintptr_t(saved) != mc.sp + 16 || saved->self != saved ||
      saved->magic != arch::kA64FrameMagic) {
    return false;
  }
  std::memcpy(&mc, &saved->mc, sizeof mc);
  std::memcpy(&uc->uc_sigmask, &saved->mask, sizeof saved->mask);
  saved->magic = 0;
  return true;
#else
  (void)p;
  return false;
#endif
}

#else  // another CPU: signals work, the context layout is not known here

constexpr InterruptArch kInterruptArch = {true, false, "SIGURG via tgkill",
                                          "no ucontext accessors or trampoline for this CPU"};
void context_read(const void*, InterruptContext&) noexcept {}
Error context_push_call(void*, InterruptFn, void*) noexcept { return Error::not_supported; }
bool context_trap_restore(void*) noexcept { return false; }

#endif

}  // namespace keel::os::posix
