// An execution context for a goroutine: the arch context (platform/arch),
// its stack (core/stack.h), the sanitizers' view of it, and the C++ runtime's
// per-thread exception state, which must travel with the context rather than
// stay with the thread. The scheduler builds goroutines on this; nothing here
// decides what runs next.
//
// A thread that switches to fibers first adopts its own stack as a Fiber
// (init_thread), so there is something to switch back to.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/stack.h"
#include "platform/arch/context.h"

namespace keel::core {

class Fiber;
void fiber_switch(Fiber* from, Fiber* to) noexcept;
[[noreturn]] void fiber_exit(Fiber* from, Fiber* to) noexcept;

class Fiber {
 public:
  using Fn = void (*)(void* arg);

  Fiber() = default;
  Fiber(const Fiber&) = delete;
  Fiber& operator=(const Fiber&) = delete;
  ~Fiber() { destroy(); }

  // The calling thread's own stack, as a switch target. `id` names it in
  // fatal errors.
  void init_thread(uint64_t id) noexcept;
  // A new context on a new stack of at least stack_size bytes (0: the
  // default) that runs fn(arg) when first switched to. fn must end with
  // fiber_exit; if it returns, the process dies with a fatal error. False if
  // memory for the stack was refused.
  bool create(Fn fn, void* arg, uint64_t id, size_t stack_size = 0) noexcept;
  // Start over on the stack of a fiber made by create() that has finished
  // (fiber_exit) or never started: cheaper than destroy + create (no
  // mapping calls), which is how the scheduler reuses dead goroutines.
  void restart(Fn fn, void* arg, uint64_t id) noexcept;
  // Free the stack and sanitizer state. The fiber must not be running, and
  // a created fiber must have finished (fiber_exit) or never started.
  void destroy() noexcept;

  uint64_t id() const noexcept { return id_; }
  const Stack& stack() const noexcept { return stack_; }

  // The C++ runtime's per-thread exception globals (libstdc++/libc++
  // __cxa_eh_globals): the chain of exceptions being handled (what `throw;`
  // rethrows) and std::uncaught_exceptions().
  struct EhState {
    void* caught = nullptr;
    unsigned int uncaught = 0;
  };

 private:
  friend void fiber_switch(Fiber* from, Fiber* to) noexcept;
  friend void fiber_exit(Fiber* from, Fiber* to) noexcept;  // [[noreturn]], declared above
  friend struct FiberAccess;

  arch::Context ctx_;
  Stack stack_;
  Fn fn_ = nullptr;
  void* arg_ = nullptr;
  uint64_t id_ = 0;
  bool thread_ = false;     // adopted thread stack (no Stack of ours)
  EhState eh_;
  Fiber* from_ = nullptr;   // who switched to us last (sanitizer bookkeeping)
  // ASan: this context's fake-stack handle while suspended, and its stack
  // bounds (learned from ASan itself for an adopted thread stack).
  void* asan_fake_ = nullptr;
  const void* asan_bottom_ = nullptr;
  size_t asan_size_ = 0;
  void* tsan_ = nullptr;    // TSan fiber handle
};

// Suspend `from` (the running context) and resume `to`. Checks from's stack
// canary first: an overwritten canary is a stack overflow, reported as
// "fatal error: goroutine <id> stack overflow". Returns when something
// switches back to `from`, possibly on another thread.
void fiber_switch(Fiber* from, Fiber* to) noexcept;
// The last switch of a finished fiber: `to` may then destroy `from`.
[[noreturn]] void fiber_exit(Fiber* from, Fiber* to) noexcept;

// Whether this build can carry the C++ exception state per context
// (libstdc++/libc++: yes; the MSVC runtime keeps it where keel cannot reach).
bool fiber_carries_exception_state() noexcept;

}  // namespace keel::core
