// Per-P timer heaps (core/timer.h): the 4-ary heap, arming, stopping and
// running timers. Which P a timer goes to and how an idle runtime sleeps
// until the earliest one is the scheduler's business (core/sched.cpp).
#include "core/timer.h"

#include "core/fatal.h"
#include "core/sched.h"

namespace keel::core {
namespace {

// ------------------------------------------------------------ 4-ary heap
// A 4-ary heap is shallower than a binary one (log4 n levels). Each entry
// carries its deadline beside the pointer, so sifting compares within the
// array instead of chasing pointers to timers scattered over goroutine
// stacks (measured: the timer storm spent 11% in sift_down before). Go's
// heap does both for the same reasons. Every move keeps Timer::idx current
// so a timer can be removed from the middle in O(log n).
using Heap = std::vector<TimerHeap::Entry>;

void place(Heap& h, uint32_t i, TimerHeap::Entry e) noexcept {
  h[i] = e;
  e.t->idx = i;
}

void sift_up(Heap& h, uint32_t i) noexcept {
  const TimerHeap::Entry e = h[i];
  while (i > 0) {
    const uint32_t parent = (i - 1) / 4;
    if (h[parent].when <= e.when) break;
    place(h, i, h[parent]);
    i = parent;
  }
  place(h, i, e);
}

void sift_down(Heap& h, uint32_t i) noexcept {
  const uint32_t n = uint32_t(h.size());
  const TimerHeap::Entry e = h[i];
  for (;;) {
    const uint32_t first = 4 * i + 1;
    if (first >= n) break;
    uint32_t best = first;
    const uint32_t end = first + 4 < n ? first + 4 : n;
    for (uint32_t c = first + 1; c < end; c++)
      if (h[c].when < h[best].when) best = c;
    if (e.when <= h[best].when) break;
    place(h, i, h[best]);
    i = best;
  }
  place(h, i, e);
}

void heap_push(TimerHeap* th, Timer* t) noexcept {
  th->heap.push_back({t->when, t});
  sift_up(th->heap, uint32_t(th->heap.size() - 1));
}

void heap_remove(TimerHeap* th, Timer* t) noexcept {
  Heap& h = th->heap;
  const uint32_t i = t->idx;
  if (i >= h.size() || h[i].t != t) fatal("timer heap: a timer is not where its index says");
  const TimerHeap::Entry last = h.back();
  h.pop_back();
  if (last.t == t) return;
  place(h, i, last);
  sift_up(h, i);
  sift_down(h, last.t->idx);
}

void publish_min(TimerHeap* th) noexcept {
  th->min_when.store(th->heap.empty() ? 0 : th->heap[0].when, std::memory_order_seq_cst);
}

// Lock t together with the heap that holds it (if any) and, when `target`
// is given, that heap too — heaps first, lowest P id first, then t->mu.
// t->heap may change until both its heap's lock and mu are held, so read
// it, lock, and check it again. Returns the heap t is in (null: none).
P* lock_timer(Timer* t, P* target) noexcept {
  for (;;) {
    P* cur = t->heap.load(std::memory_order_acquire);
    P* a = cur;
    P* b = target == cur ? nullptr : target;
    if (a != nullptr && b != nullptr && b->id < a->id) std::swap(a, b);
    if (a != nullptr) a->timers.lock.lock();
    if (b != nullptr) b->timers.lock.lock();
    t->mu.lock();
    if (t->heap.load(std::memory_order_relaxed) == cur) return cur;
    t->mu.unlock();
    if (b != nullptr) b->timers.lock.unlock();
    if (a != nullptr) a->timers.lock.unlock();
  }
}

void unlock_heaps(P* cur, P* target) noexcept {
  if (cur != nullptr) cur->timers.lock.unlock();
  if (target != nullptr && target != cur) target->timers.lock.unlock();
}

}  // namespace

bool timer_reset(Timer* t, int64_t when, int64_t period) noexcept {
  if (when <= 0) when = 1;  // 0 means "not armed"
  P* target = timer_home();
  P* cur = lock_timer(t, target);
  bool pending = cur != nullptr;
  if (cur != nullptr) {
    heap_remove(&cur->timers, t);
    if (cur != target) publish_min(&cur->timers);
    // The heap's reference carries over to the new heap.
  } else {
    t->refs.fetch_add(1, std::memory_order_relaxed);
  }
  if (t->drain != nullptr && t->drain(t)) pending = true;
  t->when = when;
  t->period = period;
  heap_push(&target->timers, t);
  t->heap.store(target, std::memory_order_release);
  const bool earliest = target->timers.heap[0].t == t;
  publish_min(&target->timers);
  t->mu.unlock();
  unlock_heaps(cur, target);
  // A new earliest deadline on that P: an M sleeping until a later one must
  // wake now (Go's wakeNetPoller; #38860, #41699).
  if (earliest) timer_added(when);
  return pending;
}

bool timer_stop(Timer* t) noexcept {
  P* cur = lock_timer(t, nullptr);
  bool pending = cur != nullptr;
  if (cur != nullptr) {
    heap_remove(&cur->timers, t);
    publish_min(&cur->timers);
    t->heap.store(nullptr, std::memory_order_release);
    t->when = 0;
    // The heap's reference; the caller still holds its own.
    t->refs.fetch_sub(1, std::memory_order_acq_rel);
  }
  if (t->drain != nullptr && t->drain(t)) pending = true;
  t->mu.unlock();
  unlock_heaps(cur, nullptr);
  return pending;
}

void timer_release(Timer* t) noexcept {
  if (t->refs.fetch_sub(1, std::memory_order_acq_rel) == 1 && t->destroy != nullptr) t->destroy(t);
}

int64_t timers_run(P* p, int64_t now) noexcept {
  TimerHeap* th = &p->timers;
  const int64_t first = th->min_when.load(std::memory_order_acquire);
  if (first == 0 || first > now) return first;
  th->lock.lock();
  while (!th->heap.empty() && th->heap[0].when <= now) {
    Timer* t = th->heap[0].t;
    t->mu.lock();  // heap lock → mu: the documented order
    if (t->period > 0) {
      // Re-arm at the next multiple of the period after now: a slow
      // receiver misses ticks instead of getting a backlog (a Ticker
      // drops ticks, as Go's does).
      t->when += t->period * (1 + (now - t->when) / t->period);
      th->heap[0].when = t->when;
      sift_down(th->heap, 0);
      t->refs.fetch_add(1, std::memory_order_relaxed);  // the firing's own
    } else {
      heap_remove(th, t);  // the heap's reference passes to this firing
      t->heap.store(nullptr, std::memory_order_release);
      t->when = 0;
    }
    publish_min(th);
    const bool under_mu = t->drain != nullptr;
    if (!under_mu) t->mu.unlock();
    th->lock.unlock();
    // A channel timer sends with mu held, so a stop or reset either comes
    // first (and the send never happens) or waits and drains what it sent.
    // Any other timer's fn runs unlocked: a stop from now on reports "already
    // fired", which is true.
    t->fn(t, now);
    if (under_mu) t->mu.unlock();
    timer_release(t);
    th->lock.lock();
  }
  const int64_t next = th->heap.empty() ? 0 : th->heap[0].when;
  th->lock.unlock();
  return next;
}

}  // namespace keel::core
