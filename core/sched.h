// The scheduler's data structures: G (goroutine), M (OS thread), P
// (processor), and the global state (Go's runtime2.go). Internal to core/:
// users see include/keel/go.h, blocking primitives see core/park.h.
//
// Locking (Go's order): sched.lock protects the idle M and P lists, the
// global run queue, the global free-G list and the main-goroutine state. A
// P's local run queue is lock-free (single producer: the P's owner; many
// consumers: the owner and thieves). A G's status changes by CAS.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "core/fiber.h"
#include "core/lock.h"
#include "core/note.h"
#include "core/park.h"
#include "core/stack_pool.h"
#include "core/timer.h"
#include "keel/go.h"

namespace keel::core {

struct M;
struct P;

enum class GStatus : uint32_t {
  idle,      // just allocated, not yet initialised
  runnable,  // on a run queue
  running,   // owns an M (and, for a goroutine, a P)
  waiting,   // parked by gopark
  dead,      // finished; on a free list with its stack, ready for reuse
};

struct G {
  Fiber fiber;                 // context + stack (none for a thread G)
  std::atomic<GStatus> status{GStatus::idle};
  uint64_t id = 0;
  G* schedlink = nullptr;      // global run queue / free lists
  M* m = nullptr;              // the M running it, while running
  M* lockedm = nullptr;        // lock_os_thread: the only M it may run on
  uint32_t lockcount = 0;
  WaitReason waitreason = WaitReason::none;
  int64_t waitsince = 0;       // nanotime() when it parked
  UnlockFn parkfn = nullptr;   // gopark's unlockf, run on g0 after the switch
  void* parkarg = nullptr;
  detail::GoFn fn{};           // the callable; destroyed when it returns
  // Where the callable lives when it fits (most lambdas do): no allocation
  // per go().
  alignas(16) unsigned char fnbuf[detail::kInlineFn];
  const char* file = "";       // creation site (go()'s caller)
  uint32_t line = 0;
  size_t stack_size = 0;       // requested usable size (0: default)
  bool is_thread = false;      // a plain thread's stand-in (parks on `note`)
  bool is_main = false;        // keel::run's main goroutine
  bool goexiting = false;      // goexit's unwind is on its way
  Note note;                   // thread G only
  Timer timer;                 // keel::sleep_for's (a G sleeps at most once at a time)
  G* alllink = nullptr;        // allgs: every goroutine G ever made (never freed)
};

struct M {
  Fiber g0;                    // the thread's own stack: the scheduler runs here
  uint64_t id = 0;
  G* curg = nullptr;           // the goroutine running on it, if any
  P* p = nullptr;              // attached P while running Go code
  P* nextp = nullptr;          // P handed to it by startm / startlockedm
  bool spinning = false;       // looking for work with a P, no G
  bool is_m0 = false;          // the thread inside keel::run
  Note park;                   // idle M sleeps here
  M* schedlink = nullptr;      // idle M list
  G* lockedg = nullptr;        // lock_os_thread
  // What the G that just switched away asked for (Go's mcall(fn)), done by
  // whoever resumes on this M: g0, or — on a direct G-to-G switch — the next
  // goroutine, first thing after the switch. action_g is that G.
  enum class Action : uint8_t { none, park, gosched, yield, exit } action = Action::none;
  G* action_g = nullptr;
  uint64_t rand = 0;
};

constexpr uint32_t kRunqSize = 256;

struct alignas(64) P {
  int32_t id = 0;
  bool idle = true;
  M* m = nullptr;
  P* link = nullptr;           // idle P list
  uint32_t schedtick = 0;
  // Ring run queue: owner pushes at tail, owner and thieves pop at head.
  alignas(64) std::atomic<uint32_t> runqhead{0};
  std::atomic<uint32_t> runqtail{0};
  std::atomic<G*> runq[kRunqSize];
  std::atomic<G*> runnext{nullptr};
  // Dead Gs (with their stacks) for reuse, and free stacks.
  G* gfree = nullptr;
  int32_t gfreecnt = 0;
  StackCache stacks;
  TimerHeap timers;            // timers armed by goroutines running here
};

// Counters for tests and diagnostics (a snapshot; not all taken at once).
struct SchedStats {
  int32_t procs = 0;
  int32_t idle_procs = 0;
  int32_t ms = 0;             // threads the runtime created
  int32_t idle_ms = 0;
  uint64_t steals = 0;        // successful work steals so far
  int32_t blocked_threads = 0;  // plain threads parked in gopark
};
SchedStats sched_stats() noexcept;

// For core/timer.cpp. The P a timer armed now goes to: the caller's P, or
// for a plain thread any P (starting or resuming the runtime, so that some M
// will run it).
P* timer_home() noexcept;
// A timer became the earliest on its P at `when`: make sure some M will run
// it on time — wake the M sleeping until a later deadline, or start one
// (Go's wakeNetPoller).
void timer_added(int64_t when) noexcept;
// Ready a G from a timer: FIFO on the current P (timers that fire together
// run in deadline order), unlike goready's runnext.
void goready_timer(G* gp) noexcept;

}  // namespace keel::core
