// Duration conversions shared by every backend. Pure arithmetic, no OS.
//
// The contract speaks int64_t nanoseconds (negative = forever, 0 = poll). OS
// calls take milliseconds (WaitOnAddress, poll, epoll_wait, Sleep), 100 ns
// ticks (waitable timers), microseconds (__ulock_wait) or timespecs. Every
// conversion here rounds UP — a 1 ns timeout must not become a 0 ms poll that
// returns at once — and saturates at the target's maximum instead of wrapping
// (2^32 ms truncated to a DWORD would turn a 50-day wait into a short one).
#pragma once

#include <cstdint>
#include <limits>

namespace keel::os {

// ceil(ns / unit) for ns >= 0, saturated to max_out. Callers handle ns < 0
// (forever) themselves, because each OS spells "forever" differently.
constexpr int64_t ceil_div_saturate(int64_t ns, int64_t unit, int64_t max_out) noexcept {
  if (ns <= 0) return 0;
  int64_t q = ns / unit + (ns % unit != 0 ? 1 : 0);
  return q > max_out ? max_out : q;
}

constexpr int64_t ns_to_ms_ceil(int64_t ns, int64_t max_ms) noexcept {
  return ceil_div_saturate(ns, 1'000'000, max_ms);
}
constexpr int64_t ns_to_us_ceil(int64_t ns, int64_t max_us) noexcept {
  return ceil_div_saturate(ns, 1'000, max_us);
}
constexpr int64_t ns_to_100ns_ceil(int64_t ns, int64_t max_ticks) noexcept {
  return ceil_div_saturate(ns, 100, max_ticks);
}

// base + delta, saturated at INT64_MAX (deadlines: "now + huge" must not wrap
// into the past). delta < 0 yields INT64_MAX (forever).
constexpr int64_t deadline_after(int64_t base, int64_t delta) noexcept {
  if (delta < 0) return std::numeric_limits<int64_t>::max();
  if (base > std::numeric_limits<int64_t>::max() - delta) return std::numeric_limits<int64_t>::max();
  return base + delta;
}

}  // namespace keel::os
