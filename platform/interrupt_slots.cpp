// The request/acknowledge protocol of thread interruption (see
// interrupt_slots.h), and the two contract functions that only read it:
// interrupt_status and interrupt_wait.
#include "platform/interrupt_slots.h"

namespace keel::os {
namespace islot {
namespace {

constexpr uint32_t kSlots = 4096;  // registered threads at once; 256 KiB of zero pages until used
Slot g_slots[kSlots];

// Probe from a hash of the id. Released slots go back to tid 0, so a lookup
// cannot stop at the first free slot: it scans until found or wrapped.
inline uint32_t home(uint64_t tid) { return static_cast<uint32_t>((tid * 0x9E3779B97F4A7C15ull) >> 52) % kSlots; }

KEEL_INTERRUPT_CONTEXT void store_max(uint32_t* p, uint32_t v) noexcept {
  uint32_t cur = ld(p);
  while (before(cur, v) && !cas(p, &cur, v)) {
  }
}

}  // namespace

Slot* claim(uint64_t tid, uintptr_t os_handle, uintptr_t os_aux, uintptr_t stack_lo, uintptr_t stack_hi) noexcept {
  if (tid == 0) return nullptr;
  const uint32_t h = home(tid);
  for (uint32_t i = 0; i < kSlots; ++i) {
    Slot* s = &g_slots[(h + i) % kSlots];
    uint64_t free_tid = 0;
    if (ld(&s->tid) != 0 || !cas(&s->tid, &free_tid, tid)) continue;
    // Ours. open is 0 until the fields are ready: a sender that finds the id
    // meanwhile backs off as for a thread still starting.
    s->os_handle = os_handle;
    s->os_aux = os_aux;
    s->stack_lo = stack_lo;
    s->stack_hi = stack_hi;
    st(&s->pending, 0u);
    st(&s->blocked, 0u);
    // Generations continue from the previous owner's: its tickets were all
    // acknowledged at release, and nothing is outstanding now.
    st(&s->claimed, ld(&s->requested));
    st(&s->acked, ld(&s->requested));
    st(&s->open, 1u);
    return s;
  }
  return nullptr;
}

void release(Slot* s) noexcept {
  st(&s->open, 0u);
  // A sender that pinned the slot before closing finishes in microseconds
  // (it only sends a signal or suspends and resumes).
  for (int spins = 0; ld(&s->senders) != 0; ++spins) {
    if (spins < 100) thread_yield();
    else sleep_ns(50'000);
  }
  withdraw(s, ld(&s->requested));
  s->os_handle = 0;
  s->os_aux = 0;
  st(&s->tid, uint64_t{0});
}

Slot* find(uint64_t tid) noexcept {
  if (tid == 0) return nullptr;
  const uint32_t h = home(tid);
  for (uint32_t i = 0; i < kSlots; ++i) {
    Slot* s = &g_slots[(h + i) % kSlots];
    if (ld(&s->tid) == tid) return s;
  }
  return nullptr;
}

bool begin_send(Slot* s, uint64_t tid) noexcept {
  add(&s->senders, 1u);
  if (ld(&s->open) == 1 && ld(&s->tid) == tid) return true;
  sub(&s->senders, 1u);
  return false;
}

void end_send(Slot* s) noexcept { sub(&s->senders, 1u); }

uint32_t new_request(Slot* s) noexcept { return add(&s->requested, 1u); }

KEEL_INTERRUPT_CONTEXT bool claim_for_handler(Slot* s, uint32_t* gen) noexcept {
  // Clear pending before reading requested (both sequentially consistent): a
  // sender that increments requested after this read sees pending == 0 and
  // sends a fresh signal, so no request is left without one.
  xchg(&s->pending, 0u);
  const uint32_t g = ld(&s->requested);
  uint32_t c = ld(&s->claimed);
  while (before(c, g)) {
    if (cas(&s->claimed, &c, g)) {
      *gen = g;
      return true;
    }
  }
  return false;  // nothing outstanding: a coalesced duplicate or someone else's SIGURG
}

KEEL_INTERRUPT_CONTEXT void handler_done(Slot* s, uint32_t gen) noexcept {
  store_max(&s->handled, gen);
  store_max(&s->acked, gen);
}

KEEL_INTERRUPT_CONTEXT bool withdraw(Slot* s, uint32_t ticket) noexcept {
  uint32_t c = ld(&s->claimed);
  while (before(c, ticket)) {
    if (cas(&s->claimed, &c, ticket)) {
      store_max(&s->acked, ticket);
      return true;
    }
  }
  return false;
}

}  // namespace islot

namespace {

// The outcome of ticket for thread tid, re-checking the owner so a slot that
// was released (and maybe reused) meanwhile reads as impossible.
InterruptStatus status_of(uint64_t tid, uint32_t ticket) noexcept {
  islot::Slot* s = islot::find(tid);
  if (s == nullptr) return InterruptStatus::impossible;
  const uint32_t acked = islot::ld(&s->acked);
  const uint32_t handled = islot::ld(&s->handled);
  if (islot::ld(&s->tid) != tid) return InterruptStatus::impossible;
  if (islot::before(acked, ticket)) return InterruptStatus::pending;
  return islot::before(handled, ticket) ? InterruptStatus::impossible : InterruptStatus::handled;
}

// Back off while waiting. A handler usually acknowledges within tens of
// microseconds: poll without giving up the CPU for the first 50 µs (on a
// busy machine a yield can cost a whole time slice), then yield, then
// sleep in steps for emulated or descheduled targets.
void backoff(int round, int64_t waited, int64_t remaining) noexcept {
  if (waited < 50'000) return;
  if (round < 256) {
    thread_yield();
    return;
  }
  int64_t step = round < 512 ? 20'000 : 1'000'000;
  if (remaining >= 0 && step > remaining) step = remaining;
  if (step > 0) sleep_ns(step);
}

}  // namespace

InterruptStatus interrupt_status(const Thread& t, uint32_t ticket) noexcept {
  return status_of(t.id, ticket);
}

InterruptStatus interrupt_wait(const Thread& t, uint32_t ticket, int64_t timeout_ns) noexcept {
  const int64_t start = nanotime();
  const int64_t deadline = timeout_ns < 0 ? -1 : start + timeout_ns;
  for (int round = 0;; ++round) {
    InterruptStatus st = status_of(t.id, ticket);
    if (st != InterruptStatus::pending) return st;
    const int64_t now = nanotime();
    if (deadline >= 0 && now >= deadline) break;
    backoff(round, now - start, deadline < 0 ? -1 : deadline - now);
  }
  islot::Slot* s = islot::find(t.id);
  if (s == nullptr || islot::withdraw(s, ticket)) return InterruptStatus::impossible;
  // A handler claimed the request just before the bound: it is running and
  // never blocks, so its acknowledgement is imminent.
  const int64_t grace_start = nanotime();
  const int64_t grace = grace_start + 1'000'000'000;
  for (int round = 0; nanotime() < grace; ++round) {
    InterruptStatus st = status_of(t.id, ticket);
    if (st != InterruptStatus::pending) return st;
    const int64_t now = nanotime();
    backoff(round, now - grace_start, grace - now);
  }
  return status_of(t.id, ticket);
}

}  // namespace keel::os
