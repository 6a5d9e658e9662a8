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

// A poll-style timeout in milliseconds (poll, epoll_wait, WSAPoll,
// GetQueuedCompletionStatusEx): negative → forever_ms (the OS's "infinite"),
// 0 → 0, otherwise ceil(ns / 1 ms) saturated at max_ms, which must be below
// forever_ms so a long finite wait never turns into an infinite one.
constexpr int64_t poll_timeout_ms(int64_t ns, int64_t max_ms, int64_t forever_ms) noexcept {
  return ns < 0 ? forever_ms : ns_to_ms_ceil(ns, max_ms);
}

// A relative timespec for ns >= 0 with the seconds capped at max_sec (Darwin's
// kevent rejects tv_sec above 10^8 with EINVAL). A capped wait ends early on
// purpose; the caller loops until its deadline.
struct SecNsec {
  int64_t sec;
  int64_t nsec;
};
constexpr SecNsec ns_to_timespec_capped(int64_t ns, int64_t max_sec) noexcept {
  if (ns <= 0) return {0, 0};
  if (ns / 1'000'000'000 >= max_sec) return {max_sec, 0};
  return {ns / 1'000'000'000, ns % 1'000'000'000};
}

}  // namespace keel::os
