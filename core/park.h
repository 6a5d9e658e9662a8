// What blocking primitives need from the scheduler (Go's gopark/goready and
// friends). Everything here works both on a goroutine and on a plain OS
// thread: a plain thread that blocks gets a "thread G" — a G with no stack of
// its own that parks its OS thread on a per-thread Note — so the semaphore
// table, Mutex, WaitGroup, channels... never need to ask which one they are
// on (DESIGN.md §3, "Every blocking primitive works from a plain OS thread").
//
// Implemented in core/sched.cpp.
#pragma once

#include <cstdint>

namespace keel::core {

struct G;

// Why a G is parked: shown in goroutine dumps and the deadlock report.
enum class WaitReason : uint8_t {
  none,
  sema,           // semacquire on a bare address
  mutex,          // keel::Mutex::lock
  rwmutex_read,   // keel::RWMutex::lock_shared
  rwmutex_write,  // keel::RWMutex::lock
  waitgroup,      // keel::WaitGroup::wait
  cond,           // keel::Cond::wait
  once,           // keel::Once::call (another caller runs f)
  chan_send,
  chan_recv,
  chan_send_nil,  // a send on the nil channel: blocks forever
  chan_recv_nil,
  select,
  select_no_cases,
  sleep,
  io,
  lockedm,        // a G locked to its thread, waiting for a P
  park,           // a plain gopark from tests and later issues
};
const char* wait_reason_string(WaitReason r) noexcept;

// The calling goroutine, or the calling plain thread's thread G (created on
// first use, freed when the thread exits). Never null.
G* getg() noexcept;
// True when the caller is a goroutine (not a plain thread).
bool on_goroutine() noexcept;
uint64_t goid(const G* gp) noexcept;

// Park the calling G. After gp is marked waiting — and, for a goroutine,
// after its stack has been left, so another thread may goready it and run it
// at once — unlockf(gp, arg) runs (on the scheduler's side of the switch: it
// must not block or park). If it returns false the G does not sleep and
// gopark returns immediately; if true, gopark returns after someone calls
// goready(gp). unlockf may be null (always sleep). Typical use: release the
// lock protecting the queue the G was put on.
using UnlockFn = bool (*)(G* gp, void* arg) noexcept;
void gopark(UnlockFn unlockf, void* arg, WaitReason reason) noexcept;

// Make a G parked by gopark runnable. Callable from any goroutine, plain
// thread or runtime thread. Readying a G that is not parked is a fatal error.
// A goroutine readied by a goroutine goes to the readier's P's runnext slot
// (it runs next there, Go's ready(gp, next=true)).
void goready(G* gp) noexcept;

// Let other goroutines run; the caller goes to the tail of its P's local run
// queue (Go's goyield; Gosched uses the global queue). On a plain thread it
// yields the OS thread.
void goyield() noexcept;

// Whether spinning on a contended user-level lock may pay off now (Go's
// sync_runtime_canSpin): a multicore machine, more than one P, another P
// running, this P's run queue empty, and iter below a small bound.
bool can_spin(int iter) noexcept;
// A short busy wait (Go's procyield): n pause instructions.
void procyield(int n) noexcept;

// A cheap per-thread pseudo-random number (Go's cheaprand).
uint32_t fastrand() noexcept;

}  // namespace keel::core
