// Hooks the shared pthread code (platform/posix) needs from each Unix port.
#pragma once

#include <pthread.h>
#include <signal.h>

#include <cstdint>
#include <cstring>

#include "platform/os.h"

namespace keel::os::posix {

// The calling thread's kernel thread id (Linux gettid, Darwin
// pthread_threadid_np). Never 0.
uint64_t kernel_tid_self() noexcept;

// Backend-private word stored in Thread::aux for thread t (Darwin: its Mach
// port, needed by thread_info; Linux: 0).
uintptr_t thread_aux(pthread_t t) noexcept;

// pthread_t is an integer on Linux and a pointer on Darwin; Thread::native
// stores it as a word either way.
static_assert(sizeof(pthread_t) <= sizeof(uintptr_t));
inline uintptr_t to_word(pthread_t t) noexcept {
  uintptr_t w = 0;
  std::memcpy(&w, &t, sizeof t);
  return w;
}
inline pthread_t to_pthread(uintptr_t w) noexcept {
  pthread_t t;
  std::memcpy(&t, &w, sizeof t);
  return t;
}

// ---- thread interruption (interrupt_signal.cpp), per-OS hooks ----------------
// Linux: platform/linux/interrupt_linux.cpp; Darwin: platform/darwin/interrupt_darwin.cpp.

// What this OS and CPU support (constant-initialized: read in signal handlers).
struct InterruptArch {
  bool context;           // context_read fills pc/sp/fp(/lr)
  bool push_call;         // context_push_call works
  const char* mechanism;  // for caps().interrupt_mechanism and platform_info
  const char* absent;     // why context or push_call is false, or ""
};
extern const InterruptArch kInterruptArch;

// Send the interrupt signal to thread tid (os_handle: what interrupt_handle_self
// returned on it). Returns 0 or an errno; ESRCH means the thread is gone.
int interrupt_send(uint64_t tid, uintptr_t os_handle) noexcept;
// The word interrupt_send needs besides the kernel id (Darwin: pthread_t; Linux: 0).
uintptr_t interrupt_handle_self() noexcept;
// The calling thread's stack as [*lo, *hi), or 0, 0 when unknown.
void stack_bounds_self(uintptr_t* lo, uintptr_t* hi) noexcept;

// ucontext accessors; async-signal-safe. uc is the handler's third argument.
void context_read(const void* uc, InterruptContext& ctx) noexcept;
// Rewrite uc so that, after sigreturn, the thread runs fn(arg) through the
// trampoline and then resumes where uc said, with every register intact.
Error context_push_call(void* uc, InterruptFn fn, void* arg) noexcept;
// aarch64: if this SIGTRAP is the trampoline's brk, copy the context saved by
// context_push_call back into uc and return true. Elsewhere: false.
bool context_trap_restore(void* uc) noexcept;

// ---- the alternate signal stack (signal_stack.cpp) ---------------------------
// One per thread, shared by thread interruption and stack faults, counted:
// the first acquire sets one up (or adopts the one the thread has), the last
// release tears down one we made.
bool altstack_acquire() noexcept;
void altstack_release() noexcept;
// Whether sp lies on the calling thread's alternate signal stack
// (async-signal-safe).
bool altstack_contains(uintptr_t sp) noexcept;
// sigaction, through libc's own under TSan (whose interceptor would defer
// the signal and hand the handler a copy of the ucontext).
int install_action(int sig, const struct sigaction* sa, struct sigaction* old) noexcept;

}  // namespace keel::os::posix
