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
