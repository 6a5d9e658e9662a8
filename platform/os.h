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

#include <atomic>
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

// OS threads in the calling process now — every thread, keel's or not — or
// -1 when the OS cannot tell. The deadlock check compares it with the threads
// the runtime knows about: a thread it cannot account for might still wake a
// goroutine, so while one exists no deadlock is reported. A port counts
// threads that can run user code; it leaves out threads an emulator adds to
// every process (see thread_count's notes in docs/PORTING.md). Not cheap
// (it may read /proc or take a snapshot): never on a fast path.
int64_t thread_count() noexcept;

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
// CPU time (user + system) consumed so far by the whole process, all threads,
// in nanoseconds, or -1. Same granularity caveat. Used to check that an idle
// runtime really idles.
int64_t process_cpu_time_ns() noexcept;

// ---------------------------------------------------------------------------
// Group 3: parking, address-wait family (futex / WaitOnAddress / ulock)
// ---------------------------------------------------------------------------
enum class WaitResult : int32_t {
  woken,      // returned because of a wake — or spuriously: callers re-check
  timed_out,  // the deadline (now + timeout_ns at the call) passed by nanotime()
  mismatch,   // *addr != expected at the time of the call: returned at once
};
const char* wait_result_name(WaitResult r) noexcept;

// Block while *addr == expected, for at most timeout_ns (negative: forever,
// 0: check the value and return mismatch or timed_out without blocking).
// Spurious "woken" returns are allowed; an early "timed_out" is not — a port
// whose OS wait can end early loops for the remainder. The comparison and the
// sleep are atomic with respect to futex_wake on the same address.
WaitResult futex_wait(std::atomic<uint32_t>* addr, uint32_t expected, int64_t timeout_ns) noexcept;

// Wake up to n threads blocked in futex_wait on addr (n >= 1). n == 1 wakes
// at most one; a port without counted wakes (WaitOnAddress) wakes all for
// n > 1. Never wakes a waiter on another address.
constexpr int kWakeAll = 0x7fffffff;
void futex_wake(std::atomic<uint32_t>* addr, int n) noexcept;

// ---------------------------------------------------------------------------
// Group 4: parking, semaphore family (POSIX sem_t / Win32 / Mach)
// ---------------------------------------------------------------------------
// A counting semaphore, used one per thread by the semaphore flavour of the
// core. A post with no waiter is remembered (the count goes up).
struct Sema {
  uintptr_t handle = 0;
  bool valid() const noexcept { return handle != 0; }
};
enum class SemaResult : int32_t { acquired, timed_out };

Error sema_create(Sema* out) noexcept;
void sema_destroy(Sema s) noexcept;
// Decrement the count, waiting up to timeout_ns for it to become positive
// (negative: forever; 0: try). Signals and APCs never surface: the port
// retries them against the same deadline, and never reports timed_out early.
SemaResult sema_wait(Sema s, int64_t timeout_ns) noexcept;
void sema_post(Sema s) noexcept;

// ---------------------------------------------------------------------------
// Group 5: memory
// ---------------------------------------------------------------------------
size_t page_size() noexcept;           // the VM page size
size_t alloc_granularity() noexcept;   // alignment of mem_reserve (64 KiB on Windows, a page elsewhere)

// Reserve address space: no access, no commit charge, no resident pages.
// size is rounded up to the granularity. nullptr on failure.
void* mem_reserve(size_t size) noexcept;
// Make [p, p+size) (page-aligned, inside a reservation) readable and
// writable. Fresh or previously decommitted pages read as zero.
Error mem_commit(void* p, size_t size) noexcept;
// Return the pages to the reserved state: contents discarded, resident memory
// freed, any access faults until committed again.
Error mem_decommit(void* p, size_t size) noexcept;
// Drop the contents and resident memory of committed pages but keep them
// committed and accessible: the next touch reads zero. One cheap call, no
// change to the process's mappings (the stack pool scrubs free stacks with
// it, often).
Error mem_discard(void* p, size_t size) noexcept;
// Make pages inaccessible for good (a guard page): every access faults, not
// only the first (Windows PAGE_GUARD is one-shot, so ports use no-access).
Error mem_guard(void* p, size_t size) noexcept;
// Release a whole reservation: p and size exactly as reserved.
Error mem_release(void* p, size_t size) noexcept;
// The process's resident memory (RSS / working set) in bytes, or -1.
int64_t resident_memory_bytes() noexcept;
// How many separate memory mappings the OS lets this process have, or -1 when
// it sets no such limit (or cannot tell). Linux: vm.max_map_count. The core
// spends this budget on stack guard pages (each guarded stack costs two).
int64_t max_memory_mappings() noexcept;

// ---- Stack faults (group 5) ------------------------------------------------
// A goroutine that recurses into its stack's guard page faults with no stack
// left to run a handler on. These let core turn that fault into
// "fatal error: goroutine N stack overflow" instead of a bare crash.
struct StackFault {
  uintptr_t addr = 0;        // the faulting data address; 0 if the OS gave none
  uintptr_t sp = 0;          // the faulting thread's stack pointer; 0 if unknown
  uintptr_t stack_lo = 0;    // the lowest address of the reservation the OS believes the
                             // thread's stack is (Windows: TIB DeallocationStack); 0 if untracked
  bool os_overflow = false;  // the OS itself says the stack overflowed (STATUS_STACK_OVERFLOW)
};
// Runs on a thread whose memory access faulted, in signal / exception
// context (no allocation, no lock, async-signal-safe calls only), on a stack
// other than the faulting one. It never returns if the fault is a goroutine
// stack overflow (it reports and calls abort_process); it returns if not,
// and the port then lets the fault take its ordinary course (the previous
// handler, or the OS default: the process dies of the fault).
using StackFaultHandler = void (*)(const StackFault& f) noexcept;
// Install h process-wide (replaces an earlier one). null -> invalid_argument;
// not_supported where the target cannot run a handler after a stack overflow.
Error stack_fault_install(StackFaultHandler h) noexcept;
// Give the calling thread what the handler needs to run when the thread's
// current stack is exhausted (posix: an alternate signal stack, shared with
// thread interruption; Windows: a stack guarantee). Idempotent; ends at
// thread exit or with stack_fault_thread_fini. Only faults on threads that
// called it reach the handler as overflows with room to report.
Error stack_fault_thread_init() noexcept;
void stack_fault_thread_fini() noexcept;
// Prepare a goroutine stack so that running off its low end reaches the
// handler with room to run: [lo, lo+size) is the usable, committed range
// directly above the stack's guard page (mem_guard). Called by core once
// per guarded stack. *limit receives the lowest address frames may use
// before the OS counts it as an overflow — the stack limit a context on
// this stack must carry (the TIB StackLimit on Windows). posix: nothing to
// do, *limit = lo (the fault is delivered on the alternate signal stack).
// Windows: a one-shot PAGE_GUARD page a little above lo, which Windows
// turns into STATUS_STACK_OVERFLOW while the pages below it are still free
// for the exception dispatcher; *limit is the top of that page, so stack
// probes (__chkstk) touch it rather than skip it.
Error stack_fault_arm(void* lo, size_t size, void** limit) noexcept;
// Bytes at the low end of a guarded stack that stack_fault_arm takes from
// frames (*limit - lo at most): core adds them to the reservation so the
// stack keeps the usable size asked for. posix 0, Windows 16 KiB.
size_t stack_fault_headroom() noexcept;

// ---------------------------------------------------------------------------
// Group 6: poller
// ---------------------------------------------------------------------------
// The OS side of the netpoller: a set of I/O handles, each registered once
// with a 64-bit token, and a blocking poll that returns events carrying those
// tokens. Several mechanisms may be built into one binary (Linux: epoll and
// poll(2); Darwin: kqueue and poll(2); Windows: an IOCP with AFD readiness),
// so a poller is an object of a chosen kind. docs/PORTING.md ("Group 6")
// gives the event semantics every kind must provide.
enum class PollerKind : uint8_t { epoll, kqueue, iocp, poll };
inline constexpr PollerKind kAllPollerKinds[] = {PollerKind::epoll, PollerKind::kqueue, PollerKind::iocp,
                                                  PollerKind::poll};
const char* poller_kind_name(PollerKind k) noexcept;  // "epoll", "kqueue", "iocp", "poll"

// The kinds compiled in for this target, the default (KEEL_POLLER) first.
struct PollerKindList {
  const PollerKind* kinds;
  size_t count;
  const PollerKind* begin() const noexcept { return kinds; }
  const PollerKind* end() const noexcept { return kinds + count; }
};
PollerKindList pollers_built() noexcept;
bool poller_built(PollerKind k) noexcept;
PollerKind poller_default() noexcept;  // the runtime's choice, set at configure time by KEEL_POLLER

// What a kind's mechanism is like. Core reads these; it never asks which OS.
struct PollerTraits {
  bool edge_triggered = false;  // the OS reports transitions itself (epoll EPOLLET, kqueue EV_CLEAR)
  bool needs_arm = false;       // a direction stays quiet after an event until poller_arm (poll, AFD)
  bool completion_ops = false;  // poller_submit/poller_cancel work (Windows IOCP)
  const char* mechanism = "";   // one line for the platform banner
};
PollerTraits poller_traits(PollerKind k) noexcept;

// An I/O handle: a file descriptor (POSIX) or a SOCKET (Windows), widened.
using IoHandle = uintptr_t;
inline constexpr IoHandle kInvalidIoHandle = ~IoHandle(0);
inline constexpr IoHandle io_handle_from_fd(int fd) noexcept { return static_cast<IoHandle>(static_cast<intptr_t>(fd)); }

// Tokens. A backend returns, verbatim, all 64 bits of the token given to
// poller_open (UINT64_MAX is reserved). core packs a key (pollDesc index or
// pointer bits) and a sequence tag that it bumps every time the descriptor is
// opened or closed: an event whose tag is not the descriptor's current tag is
// stale — it was meant for a predecessor that used the same handle value — and
// is dropped (Go #59545). The layout is core's convention, kept here so tests
// and core agree; no backend looks inside a token.
inline constexpr int kPollTagBits = 20;
inline constexpr uint64_t kPollTagMask = (uint64_t(1) << kPollTagBits) - 1;
inline constexpr uint64_t kPollReservedToken = ~uint64_t(0);
constexpr uint64_t poll_token(uint64_t key, uint32_t tag) noexcept {
  return (key << kPollTagBits) | (uint64_t(tag) & kPollTagMask);
}
constexpr uint64_t poll_token_key(uint64_t token) noexcept { return token >> kPollTagBits; }
constexpr uint32_t poll_token_tag(uint64_t token) noexcept { return uint32_t(token & kPollTagMask); }

// Event bits. A backend maps the OS's bits one to one and adds none of its
// own: waking readers on error or hangup is core's decision, not the port's.
enum PollEventBits : uint32_t {
  poll_readable = 1u << 0,     // a read (or accept) is worth trying: data, a connection, or EOF
  poll_writable = 1u << 1,     // a write (or a finished connect) is worth trying
  poll_error = 1u << 2,        // the handle has a pending error (RST, failed connect)
  poll_hangup = 1u << 3,       // the connection is closed (both directions, or reset)
  poll_read_closed = 1u << 4,  // the peer shut down its sending side (FIN); buffered data is still readable
  poll_completed = 1u << 5,    // an operation from poller_submit finished (PollEvent::op says which)
};

struct IoOp;

struct PollEvent {
  uint64_t token = 0;    // the registration's token, or the IoOp's token for a completion
  uint32_t events = 0;   // PollEventBits
  IoOp* op = nullptr;    // the finished operation when events has poll_completed
};

enum class PollDir : uint8_t { read = 1, write = 2 };

namespace detail {
struct PollerOps;
}

// A poller. Plain data owned by whoever called poller_init; destroy it with
// poller_destroy. Not copyable in meaning: copies alias the same OS objects.
struct Poller {
  PollerKind kind = PollerKind::poll;
  const detail::PollerOps* ops = nullptr;  // the kind's backend
  void* state = nullptr;                   // backend-private
};

// Create a poller of the given kind: not_supported if that kind is not built
// for this target, no_resources if the OS refuses.
Error poller_init(Poller* p, PollerKind kind) noexcept;
// Release the poller's OS objects. No poll may be running; submitted
// operations must have completed (been returned by poller_poll) first.
void poller_destroy(Poller* p) noexcept;

// Register handle h once, for read and write readiness, edge-triggered, with
// token. Opening a handle value that is already registered replaces the token
// (the old handle was closed without poller_close and the value reused).
// Errors: invalid_argument for a bad or closed handle or the reserved token,
// not_supported for a handle this mechanism cannot poll (e.g. a regular file
// under epoll), no_resources.
Error poller_open(Poller* p, IoHandle h, uint64_t token) noexcept;
// Deregister h. Call it before closing h. invalid_argument if h is not
// registered. Closing a handle without poller_close is tolerated: no event is
// reported for it afterwards, except possibly stale ones (see the tag above).
Error poller_close(Poller* p, IoHandle h) noexcept;
// The caller saw "would block" in direction dir: report that direction's next
// readiness. A no-op on edge-triggered kinds; on kinds with needs_arm, a
// direction that produced an event stays quiet until it is armed again (the
// other direction is unaffected: arming read never produces a writable event).
Error poller_arm(Poller* p, IoHandle h, PollDir dir) noexcept;

// Wait up to timeout_ns (negative: forever, 0: do not block) for events and
// store at most max of them in out; *n is how many. Returns with *n == 0 when
// the timeout passed (never early, as nanotime() measures it) or after
// poller_wake. Each readiness transition is reported once. May run on several
// threads at once; each event goes to one of them.
Error poller_poll(Poller* p, int64_t timeout_ns, PollEvent* out, int max, int* n) noexcept;
// Make one running poller_poll return, or the next one if none is running.
// Callable from any thread; wakes that arrive before a poll returns coalesce
// into one return.
Error poller_wake(Poller* p) noexcept;

// Completion-model operations (PollerTraits::completion_ops; Windows IOCP).
// The caller owns the IoOp. After poller_submit returns ok, exactly one event
// with poll_completed and op == this IoOp is returned by poller_poll, even if
// the operation finished at once or was cancelled; until then the IoOp must
// stay alive and unmoved (the OS writes into it). On an error return no
// completion comes.
enum class IoOpKind : uint8_t { recv, send, accept, connect };
struct IoOp {
  // in
  IoOpKind kind = IoOpKind::recv;
  IoHandle handle = kInvalidIoHandle;         // the socket (accept: the listening socket)
  uint64_t token = 0;                         // returned in the completion event
  void* buf = nullptr;                        // recv/send data
  uint32_t len = 0;
  IoHandle accept_handle = kInvalidIoHandle;  // accept: a fresh socket of the listener's family
  unsigned char addr[32] = {};                // connect: a sockaddr (the socket must already be bound)
  uint32_t addr_len = 0;
  // out, valid once the completion has been returned
  uint32_t transferred = 0;  // bytes moved
  int32_t os_error = 0;      // 0, or the OS's error code (Windows: ERROR_OPERATION_ABORTED after a cancel)
  // backend-private: the OVERLAPPED and AcceptEx's address buffer
  alignas(16) unsigned char os_private[160] = {};
};
// Prepare h for completion-model operations on this poller (Windows: bind it
// to the completion port). Once per handle; not_supported on other kinds.
Error poller_associate(Poller* p, IoHandle h) noexcept;
Error poller_submit(Poller* p, IoOp* op) noexcept;
// Ask the OS to abandon op (CancelIoEx). Its completion still arrives, with
// os_error telling whether it finished or was aborted; ok if it already finished.
Error poller_cancel(Poller* p, IoOp* op) noexcept;

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
  bool futex = false;               // the address-wait family (group 3) is implemented
  bool sema = false;                // the semaphore family (group 4) is implemented
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
