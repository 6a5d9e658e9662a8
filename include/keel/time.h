// Time: sleeping, timers, tickers (Go's time package on keel's per-P timer
// heaps; docs/TIMERS.md).
//
//   keel::sleep_for(10ms);                      // parks the goroutine, not the thread
//   keel::Timer t(1s);                          // fires once into t.chan()
//   if (t.chan().recv()) { ... }
//   keel::Ticker tick(100ms);                   // fires every 100 ms; drops ticks for a slow reader
//   auto timeout = keel::after(50ms);           // a channel that receives once
//   keel::after_func(5s, [] { ... });           // runs in its own goroutine
//
// Durations are std::chrono durations; time points are keel::Clock
// (std::chrono::steady_clock). Everything works on goroutines and on plain
// threads (a plain thread's sleep blocks the thread).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <stdexcept>
#include <utility>

#include "keel/chan.h"

namespace keel {

using Clock = std::chrono::steady_clock;

namespace detail {
// Saturating conversion to nanoseconds: a duration too long for int64
// nanoseconds (hours::max()) means "practically never", not overflow.
template <class Rep, class Period>
int64_t to_ns(const std::chrono::duration<Rep, Period>& d) noexcept {
  using std::chrono::duration;
  using std::chrono::nanoseconds;
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max() / 4;  // ~73 years: far enough
  const duration<long double, std::nano> ns = d;
  if (ns.count() >= static_cast<long double>(kMax)) return kMax;
  if (ns.count() <= 0) return 0;
  const int64_t whole = std::chrono::duration_cast<nanoseconds>(d).count();
  // Round up: a sleep of 1.5 ns must not be 1 ns (never early).
  return static_cast<long double>(whole) < ns.count() ? whole + 1 : whole;
}
void sleep_ns(int64_t ns) noexcept;
struct TimerImpl;
TimerImpl* timer_new_func(std::function<void()> f, int64_t ns);
TimerImpl* timer_new_chan(int64_t ns, int64_t period_ns, const Chan<Clock::time_point>& ch);
bool timer_stop(TimerImpl* t) noexcept;
bool timer_reset(TimerImpl* t, int64_t ns, int64_t period_ns) noexcept;
void timer_drop(TimerImpl* t, bool stop) noexcept;
Chan<Clock::time_point> after_ns(int64_t ns);
}  // namespace detail

// Park the calling goroutine for at least d (a plain thread sleeps). Never
// returns early; d <= 0 returns at once (Go's time.Sleep).
template <class Rep, class Period>
void sleep_for(const std::chrono::duration<Rep, Period>& d) {
  detail::sleep_ns(detail::to_ns(d));
}

// Park until Clock::now() >= tp.
template <class Duration>
void sleep_until(const std::chrono::time_point<Clock, Duration>& tp) {
  for (;;) {
    const auto now = Clock::now();
    if (now >= tp) return;
    detail::sleep_ns(detail::to_ns(tp - now));
  }
}

// A one-shot timer (Go's time.Timer, with Go 1.23 semantics): after stop()
// or reset() returns, no value from before it is ever received from chan().
// Destroying a Timer stops it — except one made by after_func, which keeps
// going (Go code routinely drops AfterFunc's result).
class Timer {
 public:
  // Fires once, d from now, sending the time it fired into chan().
  template <class Rep, class Period>
  explicit Timer(const std::chrono::duration<Rep, Period>& d) : ch_(1) {
    impl_ = detail::timer_new_chan(detail::to_ns(d), 0, ch_);
  }
  Timer(Timer&& o) noexcept : impl_(std::exchange(o.impl_, nullptr)), ch_(std::move(o.ch_)), func_(o.func_) {}
  Timer& operator=(Timer&& o) noexcept {
    if (this != &o) {
      if (impl_ != nullptr) detail::timer_drop(impl_, !func_);
      impl_ = std::exchange(o.impl_, nullptr);
      ch_ = std::move(o.ch_);
      func_ = o.func_;
    }
    return *this;
  }
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;
  ~Timer() {
    if (impl_ != nullptr) detail::timer_drop(impl_, !func_);
  }

  // The channel the firing time arrives on (capacity 1). A nil channel for
  // an after_func timer, as Go's AfterFunc leaves C nil.
  const Chan<Clock::time_point>& chan() const noexcept { return ch_; }
  // Cancel the timer: true if that kept it from firing (or dropped a value
  // nobody had received), false if it had already fired or been stopped.
  bool stop() noexcept { return impl_ != nullptr && detail::timer_stop(impl_); }
  // Re-arm to fire d from now (an after_func timer runs its function again).
  // True if the timer was still pending.
  template <class Rep, class Period>
  bool reset(const std::chrono::duration<Rep, Period>& d) {
    if (impl_ == nullptr) throw std::logic_error("keel::Timer::reset on a moved-from timer");
    return detail::timer_reset(impl_, detail::to_ns(d), 0);
  }

 private:
  template <class F>
  friend Timer after_func_impl(int64_t ns, F&& f);
  Timer() = default;
  detail::TimerImpl* impl_ = nullptr;
  Chan<Clock::time_point> ch_;
  bool func_ = false;
};

template <class F>
Timer after_func_impl(int64_t ns, F&& f) {
  Timer t;
  t.func_ = true;
  t.impl_ = detail::timer_new_func(std::function<void()>(std::forward<F>(f)), ns);
  return t;
}

// Run f in its own goroutine once d has passed (Go's time.AfterFunc). The
// returned Timer can stop or reset it; dropping it does not cancel f. f must
// be copyable (a reset after it ran runs it again).
template <class Rep, class Period, class F>
Timer after_func(const std::chrono::duration<Rep, Period>& d, F&& f) {
  return after_func_impl(detail::to_ns(d), std::forward<F>(f));
}

// A channel that receives the time once, d from now (Go's time.After).
template <class Rep, class Period>
Chan<Clock::time_point> after(const std::chrono::duration<Rep, Period>& d) {
  return detail::after_ns(detail::to_ns(d));
}

// Sends the time every period into chan() (capacity 1): a receiver that
// falls behind misses ticks rather than getting a backlog (Go's Ticker).
class Ticker {
 public:
  // period must be > 0 (std::invalid_argument otherwise, as Go panics).
  template <class Rep, class Period>
  explicit Ticker(const std::chrono::duration<Rep, Period>& period) : ch_(1) {
    const int64_t ns = detail::to_ns(period);
    if (ns <= 0) throw std::invalid_argument("keel::Ticker: non-positive interval");
    impl_ = detail::timer_new_chan(ns, ns, ch_);
  }
  Ticker(Ticker&& o) noexcept : impl_(std::exchange(o.impl_, nullptr)), ch_(std::move(o.ch_)) {}
  Ticker& operator=(Ticker&& o) noexcept {
    if (this != &o) {
      if (impl_ != nullptr) detail::timer_drop(impl_, true);
      impl_ = std::exchange(o.impl_, nullptr);
      ch_ = std::move(o.ch_);
    }
    return *this;
  }
  Ticker(const Ticker&) = delete;
  Ticker& operator=(const Ticker&) = delete;
  ~Ticker() {
    if (impl_ != nullptr) detail::timer_drop(impl_, true);
  }
  const Chan<Clock::time_point>& chan() const noexcept { return ch_; }
  // No more ticks (an unreceived one is dropped too).
  void stop() noexcept {
    if (impl_ != nullptr) detail::timer_stop(impl_);
  }
  // Tick every period from now on.
  template <class Rep, class Period>
  void reset(const std::chrono::duration<Rep, Period>& period) {
    const int64_t ns = detail::to_ns(period);
    if (ns <= 0) throw std::invalid_argument("keel::Ticker::reset: non-positive interval");
    if (impl_ == nullptr) throw std::logic_error("keel::Ticker::reset on a moved-from ticker");
    detail::timer_reset(impl_, ns, ns);
  }

 private:
  detail::TimerImpl* impl_ = nullptr;
  Chan<Clock::time_point> ch_;
};

}  // namespace keel
