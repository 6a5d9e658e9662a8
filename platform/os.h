// keel porting contract: every function a port provides.
//
// core/ reaches the operating system only through this header. A backend
// (platform/linux, platform/darwin, platform/windows, with shared code in
// platform/posix) translates each call to its OS; it does not decide policy.
// docs/PORTING.md documents every function here: semantics, units, what may
// be spurious, and what a port must never do.
//
// Conventions for the whole contract:
//  - Durations are int64_t nanoseconds. Negative means "forever", 0 means
//    "poll / do not block". Conversions to coarser OS units round UP and
//    saturate (platform/duration.h), so a wait never ends early because of
//    rounding and a huge value never wraps into a short one.
//  - Errors are values (os::Error), never exceptions. No function here throws.
//  - No OS type appears in this header: handles are integers a backend
//    interprets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace keel::os {

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------
enum class Error : int32_t {
  ok = 0,
  invalid_argument,  // null function, bad handle, nonsense size
  no_resources,      // the OS refused: out of memory, threads, handles
  not_supported,     // this target lacks the capability (see caps())
  no_such_thread,    // the thread has exited or was never started
  unknown,           // an OS failure keel has no better name for
  try_again,         // not possible in the target's current state; a later attempt may succeed
};
const char* error_name(Error e) noexcept;

// ---------------------------------------------------------------------------
// Group 1: clock
// ---------------------------------------------------------------------------
// Monotonic time in nanoseconds from an arbitrary origin. Never goes
// backwards, on one thread or across threads (a value read after another
// thread's read, in happens-before order, is >= it). Cheap: no syscall on
// targets that have a user-space clock (vDSO, QPC, mach_absolute_time).
int64_t nanotime() noexcept;

// Wall-clock time: nanoseconds since the Unix epoch (1970-01-01 UTC). May jump
// when the system clock is set; never use it to measure durations.
int64_t walltime() noexcept;

// The resolution the backend's monotonic clock claims, in nanoseconds (>= 1).
int64_t clock_resolution_ns() noexcept;

// ---------------------------------------------------------------------------
// Group 2: threads
// ---------------------------------------------------------------------------
// A handle to one OS thread. Plain data: copying it does not duplicate any OS
// resource. A handle from thread_start owns the OS thread until thread_join;
// a handle from thread_self stays valid while that thread lives.
struct Thread {
  uintptr_t native = 0;  // pthread_t (posix) or HANDLE (windows)
  uint64_t id = 0;       // kernel thread id (gettid / GetThreadId / pthread_threadid_np)
  uintptr_t aux = 0;     // backend-private (darwin: the Mach thread port)
  bool valid() const noexcept { return id != 0; }
};

using ThreadFn = void (*)(void* arg);

struct ThreadOptions {
  size_t stack_size = 0;        // 0 = the backend's default (at least 256 KiB)
  const char* name = nullptr;   // set on the new thread before fn runs; may be truncated
};

// Start an OS thread running fn(arg). When it returns Error::ok, *out is a
// valid handle and out->id is already the new thread's kernel id.
// fn == nullptr or out == nullptr → Error::invalid_argument.
Error thread_start(Thread* out, ThreadFn fn, void* arg, const ThreadOptions& opts = {}) noexcept;

// Wait for a started thread to finish and release its OS resources. Only
// handles from thread_start may be joined, once each; anything else is
// invalid_argument where the OS can tell (Windows can; a stale pthread_t
// cannot be detected). A port must never crash on a zero handle.
Error thread_join(Thread t) noexcept;

// The calling thread: handle and id. thread_id() is cheap and never 0.
Thread thread_self() noexcept;
uint64_t thread_id() noexcept;

// Give up the processor to another runnable thread, if any (osyield).
void thread_yield() noexcept;

// Block the calling thread for at least ns nanoseconds of nanotime(): never
// returns early, survives signals/APCs by sleeping again for the remainder.
// ns == 0 returns at once; ns < 0 sleeps forever (the contract's "negative
// means forever" rule, kept even here so no duration is special-cased).
void sleep_ns(int64_t ns) noexcept;

// Number of processors this process may run on (affinity-aware), >= 1.
int cpu_count() noexcept;

// Name the calling thread (debuggers, profilers, goroutine dumps). Names
// longer than caps().thread_name_max are truncated, not rejected.
Error thread_set_name(const char* name) noexcept;
// Read the calling thread's name into buf (NUL-terminated, truncated to cap).
Error thread_get_name(char* buf, size_t cap) noexcept;

// CPU time (user + system) consumed so far by thread t, in nanoseconds, or -1
// if the OS cannot tell. Granularity is the OS's (a scheduler tick on
// Windows); sysmon uses it to tell a thread blocked in the kernel from one
// computing.
int64_t thread_cpu_time_ns(const Thread& t) noexcept;

// ---------------------------------------------------------------------------
// Group 7: thread interruption
// ---------------------------------------------------------------------------
// interrupt(t) stops thread t at whatever instruction it is executing and runs
// the handler installed with interrupt_install, with an InterruptContext that
// describes t at that instruction; then t continues. Used by async
// preemption, the Windows profiler and dumps of running threads. The core
// decides *when* to interrupt; a backend only makes the mechanism exact.
//
//   linux, darwin: a directed SIGURG (tgkill / pthread_kill), handled on t's
//                  alternate signal stack; the handler runs ON t.
//   windows:       SuspendThread, GetThreadContext, handler, SetThreadContext,
//                  ResumeThread under one global suspend lock; the handler
//                  runs on the CALLER while t is suspended.
//
// Either way the handler runs in "interrupt context": it must not allocate,
// take a lock (t may hold any lock), throw, or block. On sanitizer builds,
// mark it (and the functions given to push_call) KEEL_INTERRUPT_CONTEXT.
// (TSan's runtime is not reentrant: code that runs at an arbitrary instruction
// of an instrumented thread must not call into it.)
#if defined(__SANITIZE_THREAD__)
#define KEEL_INTERRUPT_CONTEXT __attribute__((no_sanitize("thread")))
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define KEEL_INTERRUPT_CONTEXT __attribute__((no_sanitize("thread")))
#endif
#endif
#ifndef KEEL_INTERRUPT_CONTEXT
#define KEEL_INTERRUPT_CONTEXT
#endif

using InterruptFn = void (*)(void* arg);

// What the handler sees of the interrupted thread. Plain data plus push_call;
// valid only during the handler call.
struct InterruptContext {
  uintptr_t pc = 0;       // the next instruction t will execute
  uintptr_t sp = 0;       // t's stack pointer
  uintptr_t fp = 0;       // frame pointer register (rbp / x29), whatever it holds
  uintptr_t lr = 0;       // link register (aarch64 x30); 0 where the ABI has none
  uint64_t thread_id = 0; // t's kernel thread id (Thread::id)

  // Make t, when it continues, call fn(arg) on its own stack and then resume
  // exactly at pc with every register intact: general-purpose, flags,
  // floating-point/vector (x86_64: the XSAVE state incl. AVX/AVX-512; aarch64:
  // the whole signal context incl. FP/SIMD and SVE). At most once per handler
  // run. fn runs with the stack aligned as its ABI requires and with
  // whatever signal mask t had. Errors: not_supported (caps().interrupt_push_call
  // is false), try_again (t is in a state where injection is unsafe: inside a
  // kernel service or exception on Windows, on its signal stack, or without
  // stack headroom), invalid_argument (fn null, or already pushed).
  Error push_call(InterruptFn fn, void* arg) noexcept;

  void* native = nullptr;   // backend-private: ucontext_t* or CONTEXT*
  uint32_t flags = 0;       // backend-private
};

using InterruptHandler = void (*)(InterruptContext& ctx);

// The outcome of one request (a ticket from interrupt()).
enum class InterruptStatus : uint8_t {
  pending,     // neither handled nor known to be impossible yet
  handled,     // the handler has run on t since the request was made
  impossible,  // it has not and will not for this request: t exited, or the
               // request was withdrawn by interrupt_wait's bound (e.g. t has
               // the interrupt signal blocked)
};

// Install the process-wide handler (replacing an earlier one). The first call
// installs the OS machinery (signal handlers, exit hook). Null →
// invalid_argument; not_supported when caps().interrupt is false.
Error interrupt_install(InterruptHandler handler) noexcept;

// Register the calling thread as interruptible: claims its generation slot
// and, on posix, gives it an alternate signal stack (or keeps the one it has)
// and unblocks the interrupt signal. Only registered threads can be
// interrupted. Idempotent. The registration ends with interrupt_thread_fini()
// or at thread exit; from then on requests acknowledge as impossible.
Error interrupt_thread_init() noexcept;
void interrupt_thread_fini() noexcept;

// Block (true) or unblock (false) interruption of the calling thread. posix:
// exactly pthread_sigmask on SIGURG (so a sender cannot see it; requests stay
// pending until unblocked or withdrawn by interrupt_wait's bound). windows:
// a flag in the thread's slot; requests are acknowledged impossible at once.
Error interrupt_block(bool blocked) noexcept;

// Request an interruption of t. On ok, *ticket (if not null) identifies the
// request; its outcome is read with interrupt_status / interrupt_wait.
// Requests are coalesced: at most one is in flight per thread, and one
// handler run acknowledges every request made before it started.
// Errors: invalid_argument (t is the calling thread: self-interruption is
// rejected everywhere — Windows cannot suspend itself; or no handler is
// installed), no_such_thread (t is not registered: exited, still starting,
// never called interrupt_thread_init, or the process is exiting; if a ticket
// was issued it is already acknowledged impossible), not_supported.
// Windows is synchronous: the request is acknowledged before interrupt()
// returns. posix returns once the signal is sent.
Error interrupt(const Thread& t, uint32_t* ticket = nullptr) noexcept;

// The outcome of ticket on t, without waiting. A thread that is no longer
// registered reports impossible for requests it left unacknowledged.
InterruptStatus interrupt_status(const Thread& t, uint32_t ticket) noexcept;

// Wait until ticket is handled or impossible, at most timeout_ns (< 0:
// forever). When the bound passes first the request is withdrawn: it is
// acknowledged impossible and will never run the handler, even if t later
// unblocks the signal. Returns handled or impossible (pending only if a
// handler that already started never finishes, which the handler rules
// forbid).
InterruptStatus interrupt_wait(const Thread& t, uint32_t ticket, int64_t timeout_ns) noexcept;

// ---------------------------------------------------------------------------
// Process
// ---------------------------------------------------------------------------
// Write raw bytes to standard error: no allocation, no lock, async-signal-safe.
void write_err(const char* buf, size_t len) noexcept;
// Terminate the process at once with a crash status (no atexit handlers, no
// destructors). Used by core's fatal().
[[noreturn]] void abort_process() noexcept;

// ---------------------------------------------------------------------------
// Group 10: capabilities and platform description
// ---------------------------------------------------------------------------
struct Caps {
  bool thread_cpu_time = false;     // thread_cpu_time_ns works for any live thread
  bool thread_names = false;        // thread_set_name / thread_get_name work
  size_t thread_name_max = 0;       // longest name kept, in bytes, without the NUL
  int64_t timer_granularity_ns = 0; // how late a short sleep may typically wake (coarse-tick OSes)
  // Group 7. Each is false with the reason in interrupt_absent when missing.
  bool interrupt = false;           // interrupt()/interrupt_install deliver to the handler
  bool interrupt_context = false;   // InterruptContext carries pc, sp (and fp/lr)
  bool interrupt_push_call = false; // InterruptContext::push_call works
  const char* interrupt_absent = "";  // why one of the three is false ("" if none is)
  const char* interrupt_mechanism = ""; // e.g. "SIGURG via tgkill, x86_64 SysV trampoline"
};
const Caps& caps() noexcept;

struct PlatformInfo {
  std::string os;            // "Linux", "Windows", "Darwin"
  std::string os_version;    // distribution / product version
  std::string kernel;        // kernel release string
  std::string emulation;     // "Wine 8.0", "qemu-user", or empty on real hardware
  std::string arch;          // "x86_64", "aarch64"
  std::string cpu_model;
  int cpu_count = 0;
  int64_t clock_resolution_ns = 0;
  // Which backend implements each contract group, e.g. {"clock", "clock_gettime(CLOCK_MONOTONIC)"}.
  std::vector<std::pair<std::string, std::string>> backends;
};
PlatformInfo platform_info();

}  // namespace keel::os
