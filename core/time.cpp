// keel/time.h on the per-P timer heaps (core/timer.h): sleeping goroutines,
// channel timers (Timer, Ticker, after) and function timers (after_func).
#include "keel/time.h"

#include <new>

#include "core/park.h"
#include "core/sched.h"
#include "core/timer.h"
#include "keel/go.h"
#include "platform/os.h"

namespace keel::detail {

// ------------------------------------------------------------------ sleep
namespace {
struct SleepArg {
  int64_t when;
};

bool arm_sleep(core::G* gp, void* arg) noexcept {
  // In gopark's unlockf: gp is off its stack and marked waiting, so the
  // timer may fire (and ready it) the moment it is armed.
  core::timer_reset(&gp->timer, static_cast<SleepArg*>(arg)->when, 0);
  return true;
}

void wake_sleeper(core::Timer* t, int64_t) noexcept { core::goready_timer(static_cast<core::G*>(t->arg)); }
}  // namespace

void sleep_ns(int64_t ns) noexcept {
  if (ns <= 0) return;
  if (!core::on_goroutine()) {
    // A plain thread has no P to keep a timer on: it simply sleeps (never
    // early, by the contract), and stays visible to the deadlock check as a
    // thread that may still act.
    os::sleep_ns(ns);
    return;
  }
  SleepArg a{os::nanotime() + ns};
  core::G* gp = core::getg();
  gp->timer.fn = &wake_sleeper;
  gp->timer.arg = gp;
  // Only this timer readies a G parked for sleep, and it fires once
  // nanotime() >= when (timers_run compares with a clock read it made after
  // the deadline): one park, no clock read after it.
  core::gopark(&arm_sleep, &a, core::WaitReason::sleep);
}

// ----------------------------------------------------------------- timers
struct TimerImpl {
  core::Timer t;                    // t.arg points back here
  Chan<Clock::time_point> ch;       // channel timers
  std::function<void()> f;          // after_func timers
};

namespace {
TimerImpl* impl_of(core::Timer* t) noexcept { return static_cast<TimerImpl*>(t->arg); }

void destroy_impl(core::Timer* t) noexcept { delete impl_of(t); }

// Runs in the scheduler (an M with a P, or a timer-stealing M) holding t->mu:
// a non-blocking send. Full — a Ticker's reader is behind — drops the tick.
void send_time(core::Timer* t, int64_t) noexcept {
  try {
    impl_of(t)->ch.try_send(Clock::now());
  } catch (...) {
    // Only a closed channel throws, and nobody can close a timer's channel
    // but keel: ignore rather than take the process down in a scheduler.
  }
}

bool drain_time(core::Timer* t) noexcept {
  // Only the timer sends here, under t->mu, which the caller holds: an
  // empty count (read without the channel's lock) is exact, and spares
  // every reset and stop a lock round trip (3% of the timer storm).
  if (impl_of(t)->ch.len() == 0) return false;
  bool any = false;
  while (impl_of(t)->ch.try_recv()) any = true;
  return any;
}

void start_func(core::Timer* t, int64_t) noexcept {
  // Its own goroutine, as Go's AfterFunc: the scheduler never runs user code.
  keel::go([f = impl_of(t)->f] { f(); });
}

TimerImpl* make_impl() {
  TimerImpl* impl = new TimerImpl;
  impl->t.arg = impl;
  impl->t.destroy = &destroy_impl;
  return impl;
}
}  // namespace

TimerImpl* timer_new_func(std::function<void()> f, int64_t ns) {
  TimerImpl* impl = make_impl();
  impl->f = std::move(f);
  impl->t.fn = &start_func;
  core::timer_reset(&impl->t, os::nanotime() + ns, 0);
  return impl;
}

TimerImpl* timer_new_chan(int64_t ns, int64_t period_ns, const Chan<Clock::time_point>& ch) {
  TimerImpl* impl = make_impl();
  impl->ch = ch;
  impl->t.fn = &send_time;
  impl->t.drain = &drain_time;
  core::timer_reset(&impl->t, os::nanotime() + ns, period_ns);
  return impl;
}

bool timer_stop(TimerImpl* t) noexcept { return core::timer_stop(&t->t); }

bool timer_reset(TimerImpl* t, int64_t ns, int64_t period_ns) noexcept {
  return core::timer_reset(&t->t, os::nanotime() + ns, period_ns);
}

void timer_drop(TimerImpl* t, bool stop) noexcept {
  if (stop) core::timer_stop(&t->t);
  core::timer_release(&t->t);
}

Chan<Clock::time_point> after_ns(int64_t ns) {
  Chan<Clock::time_point> ch(1);
  // Nobody can stop it: drop the owner's reference at once; the heap's keeps
  // it alive until it fires.
  TimerImpl* impl = timer_new_chan(ns, 0, ch);
  core::timer_release(&impl->t);
  return ch;
}

}  // namespace keel::detail
