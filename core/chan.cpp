// Channels and select: see core/chan.h and docs/CHANNELS.md. The structure
// follows Go's runtime/chan.go (chansend, chanrecv, closechan, send, recv)
// and select.go (selectgo); the code is keel's own.
#include "core/chan.h"

#include <algorithm>
#include <type_traits>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <new>

#include "core/fatal.h"
#include "core/lock.h"
#include "core/park.h"

namespace keel::detail {

namespace {

using core::G;
using core::WaitReason;

// ------------------------------------------------------------ wait queues

}  // namespace

void WaitQ::enqueue(ChanWaiter* w) noexcept {
  w->next = nullptr;
  w->prev = last;
  if (last != nullptr) {
    last->next = w;
  } else {
    first = w;
  }
  last = w;
  w->queued = true;
  ++n;
}

void WaitQ::remove(ChanWaiter* w) noexcept {
  if (!w->queued) return;  // already taken off by a dequeue that skipped it
  if (w->prev != nullptr) {
    w->prev->next = w->next;
  } else {
    first = w->next;
  }
  if (w->next != nullptr) {
    w->next->prev = w->prev;
  } else {
    last = w->prev;
  }
  w->prev = w->next = nullptr;
  w->queued = false;
  --n;
}

// The race this handles: a select's waiters sit on several channels. Once
// one channel completes the select (claims sel->done), the selecting G is
// readied but only removes its other waiters after it has re-locked every
// channel. In that window another channel's dequeue can meet one of them: the
// CAS fails, so it drops that waiter (the select's own clean-up then finds it
// unqueued) and looks further. Without the claim two channels could both
// complete one select: a lost or duplicated value.
ChanWaiter* WaitQ::dequeue() noexcept {
  for (;;) {
    ChanWaiter* w = first;
    if (w == nullptr) return nullptr;
    remove(w);
    if (w->sel != nullptr) {
      uint32_t expected = 0;
      if (!w->sel->done.compare_exchange_strong(expected, 1, std::memory_order_acq_rel, std::memory_order_relaxed))
        continue;
      w->sel->winner = w;
    }
    return w;
  }
}

namespace {

// gopark's unlockf for a single channel: the G is off its stack and marked
// waiting before the lock that made its waiter visible is released, so a
// completer that dequeues it can goready it at once.
bool unlock_chan(G*, void* arg) noexcept {
  static_cast<hchan*>(arg)->lock.unlock();
  return true;
}

// Pass a value to a dequeued receiver straight from the sender's slot into
// the receiver's (Go's send): the buffer is empty whenever receivers wait.
// Returns the G to ready once the caller has unlocked.
G* send_direct(hchan* c, ChanWaiter* r, void* elem) noexcept {
  c->ops->move(r->elem, elem);
  r->success = true;
  return r->g;
}

// Take a value for the receiver from a dequeued sender (Go's recv).
// Unbuffered: straight from the sender's slot. Buffered (a sender waits, so
// the buffer is full): the receiver takes the oldest buffered value and the
// sender's value goes into the slot just freed, which is the ring's tail,
// so FIFO order holds.
G* recv_direct(hchan* c, ChanWaiter* s, void* dst) noexcept {
  if (c->dataqsiz == 0) {
    c->ops->move(dst, s->elem);
  } else {
    void* slot = c->slot(c->recvx);
    c->ops->move(dst, slot);
    c->ops->destroy(slot);
    c->ops->move(slot, s->elem);
    if (++c->recvx == c->dataqsiz) c->recvx = 0;
    c->sendx = c->recvx;
  }
  s->success = true;
  return s->g;
}

void buf_put(hchan* c, void* elem) noexcept {
  c->ops->move(c->slot(c->sendx), elem);
  if (++c->sendx == c->dataqsiz) c->sendx = 0;
  c->qcount.store(c->qcount.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
}

void buf_take(hchan* c, void* dst) noexcept {
  void* slot = c->slot(c->recvx);
  c->ops->move(dst, slot);
  c->ops->destroy(slot);
  if (++c->recvx == c->dataqsiz) c->recvx = 0;
  c->qcount.store(c->qcount.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
}

[[noreturn]] void park_forever(WaitReason reason) noexcept {
  core::gopark(nullptr, nullptr, reason);
  core::fatal("channel: a goroutine blocked forever was woken");
}

size_t round_up(size_t n, size_t a) noexcept { return (n + a - 1) / a * a; }

}  // namespace

// ------------------------------------------------------------ make / free

hchan* chan_make(const ElemOps* ops, size_t cap) {
  const size_t align = std::max(ops->align, alignof(hchan));
  const size_t stride = round_up(ops->size, ops->align);
  const size_t header = round_up(sizeof(hchan), align);
  if (cap != 0 && stride > (SIZE_MAX - header) / cap) throw std::bad_array_new_length();
  void* mem = ::operator new(header + stride * cap, std::align_val_t(align));
  auto* c = ::new (mem) hchan;
  c->ops = ops;
  c->stride = stride;
  c->dataqsiz = cap;
  c->buf = static_cast<unsigned char*>(mem) + header;
  return c;
}

void chan_retain(hchan* c) noexcept { c->refs.fetch_add(1, std::memory_order_relaxed); }

void chan_release(hchan* c) noexcept {
  if (c->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  // No handle is left, so no goroutine is blocked on c (a blocked operation
  // holds a handle) and no one else can reach it.
  for (size_t i = 0, at = c->recvx, n = c->qcount.load(std::memory_order_relaxed); i < n; ++i) {
    c->ops->destroy(c->slot(at));
    if (++at == c->dataqsiz) at = 0;
  }
  const size_t align = std::max(c->ops->align, alignof(hchan));
  c->~hchan();
  ::operator delete(static_cast<void*>(c), std::align_val_t(align));
}

size_t chan_len(const hchan* c) noexcept { return c->qcount.load(std::memory_order_relaxed); }
size_t chan_cap(const hchan* c) noexcept { return c->dataqsiz; }

// ------------------------------------------------------------ send / recv

ChanStatus chan_send(hchan* c, void* elem, bool block) noexcept {
  if (c == nullptr) {
    if (!block) return ChanStatus::would_block;
    park_forever(WaitReason::chan_send_nil);
  }
  c->lock.lock();
  if (c->closed) {
    c->lock.unlock();
    return ChanStatus::closed;
  }
  if (ChanWaiter* r = c->recvq.dequeue(); r != nullptr) {
    G* gp = send_direct(c, r, elem);
    c->lock.unlock();
    core::goready(gp);
    return ChanStatus::ok;
  }
  if (c->qcount.load(std::memory_order_relaxed) < c->dataqsiz) {
    buf_put(c, elem);
    c->lock.unlock();
    return ChanStatus::ok;
  }
  if (!block) {
    c->lock.unlock();
    return ChanStatus::would_block;
  }
  // Wait for a receiver to take the value from our frame, or for close.
  ChanWaiter w;
  w.g = core::getg();
  w.elem = elem;
  c->sendq.enqueue(&w);
  core::gopark(unlock_chan, c, WaitReason::chan_send);
  // Whoever dequeued us set success before readying us (goready orders it).
  return w.success ? ChanStatus::ok : ChanStatus::closed;
}

ChanStatus chan_recv(hchan* c, void* dst, bool block) noexcept {
  if (c == nullptr) {
    if (!block) return ChanStatus::would_block;
    park_forever(WaitReason::chan_recv_nil);
  }
  c->lock.lock();
  // A closed channel has no waiting senders (close woke them all), so the
  // only thing left to take is the buffer.
  if (c->closed && c->qcount.load(std::memory_order_relaxed) == 0) {
    c->lock.unlock();
    return ChanStatus::closed;
  }
  if (ChanWaiter* s = c->sendq.dequeue(); s != nullptr) {
    G* gp = recv_direct(c, s, dst);
    c->lock.unlock();
    core::goready(gp);
    return ChanStatus::ok;
  }
  if (c->qcount.load(std::memory_order_relaxed) > 0) {
    buf_take(c, dst);
    c->lock.unlock();
    return ChanStatus::ok;
  }
  if (!block) {
    c->lock.unlock();
    return ChanStatus::would_block;
  }
  ChanWaiter w;
  w.g = core::getg();
  w.elem = dst;
  c->recvq.enqueue(&w);
  core::gopark(unlock_chan, c, WaitReason::chan_recv);
  return w.success ? ChanStatus::ok : ChanStatus::closed;
}

bool chan_close(hchan* c) noexcept {
  c->lock.lock();
  if (c->closed) {
    c->lock.unlock();
    return false;
  }
  c->closed = true;
  // Collect every waiter (receivers get "closed", senders will throw), then
  // ready them after unlocking: readying under the lock would let them run
  // straight into the lock we hold. Each waiter stays valid until its
  // goready, since only we can wake it now.
  ChanWaiter* head = nullptr;
  ChanWaiter** tail = &head;
  for (WaitQ* q : {&c->recvq, &c->sendq}) {
    while (ChanWaiter* w = q->dequeue()) {
      w->success = false;
      w->wake_next = nullptr;
      *tail = w;
      tail = &w->wake_next;
    }
  }
  c->lock.unlock();
  while (head != nullptr) {
    ChanWaiter* next = head->wake_next;  // read before goready: head may vanish after
    core::goready(head->g);
    head = next;
  }
  return true;
}

// ------------------------------------------------------------ select

namespace {

static_assert(std::is_trivially_destructible_v<ChanWaiter>);

// Per-select scratch: up to kInline cases live in the selecting frame, more
// on the heap.
constexpr int kInline = 8;

struct SelectPark {
  const SelectCase* cases;
  const uint16_t* lockorder;
  int nlock;
};

void sellock(const SelectCase* cases, const uint16_t* lockorder, int n) noexcept {
  hchan* prev = nullptr;
  for (int k = 0; k < n; ++k) {
    hchan* c = cases[lockorder[k]].c;
    if (c != prev) c->lock.lock();  // duplicates are adjacent in lock order
    prev = c;
  }
}

void selunlock(const SelectCase* cases, const uint16_t* lockorder, int n) noexcept {
  // Each channel once, at its last occurrence in lock order.
  for (int k = 0; k < n; ++k) {
    hchan* c = cases[lockorder[k]].c;
    if (k + 1 < n && cases[lockorder[k + 1]].c == c) continue;
    c->lock.unlock();
  }
}

// gopark's unlockf for a select. Once the first channel is unlocked a
// completer may ready the G, which can run on another thread at once — but
// it then blocks re-locking the channels we still hold (select's pass 3 locks
// them all), so its frame (cases, lockorder) stays unchanged while we read
// it. We read nothing after the last unlock: the last occurrence in lock
// order is always at k == nlock - 1.
bool selparkcommit(G*, void* arg) noexcept {
  const auto* p = static_cast<const SelectPark*>(arg);
  const SelectCase* cases = p->cases;
  const uint16_t* lockorder = p->lockorder;
  const int n = p->nlock;
  selunlock(cases, lockorder, n);
  return true;
}

}  // namespace

[[noreturn]] void select_block_forever() noexcept { park_forever(WaitReason::select_no_cases); }

int chan_select(SelectCase* cases, int n, bool block, bool* ok) noexcept {
  if (n == 0) {
    if (!block) return -1;
    park_forever(WaitReason::select_no_cases);
  }
  if (n > 0xffff) core::fatal("select: too many cases");

  // Scratch for the orders; the waiters (pass 2 only) are constructed there,
  // so a select that finds a ready case pays nothing for them.
  uint16_t inline_order[2 * kInline];
  alignas(ChanWaiter) unsigned char inline_waiters[kInline * sizeof(ChanWaiter)];
  std::unique_ptr<uint16_t[]> heap_order;
  std::unique_ptr<unsigned char[]> heap_waiters;
  uint16_t* pollorder = inline_order;
  unsigned char* waiter_mem = inline_waiters;
  if (n > kInline) {
    heap_order.reset(new uint16_t[2 * static_cast<size_t>(n)]);
    // operator new[] of unsigned char is aligned for any fundamental type.
    heap_waiters.reset(new unsigned char[static_cast<size_t>(n) * sizeof(ChanWaiter)]);
    pollorder = heap_order.get();
    waiter_mem = heap_waiters.get();
  }
  uint16_t* lockorder = pollorder + n;

  // Poll order: a uniformly random permutation of the non-nil cases (inside-
  // out Fisher-Yates), so among ready cases each is equally likely to be the
  // first found. Nil channels are never ready and never waited on: left out.
  // One fastrand seeds a splitmix64 stream for the swaps (a call per case
  // was measurable), and a multiply-shift replaces the modulo (Lemire).
  uint64_t rng = core::fastrand();
  int norder = 0;
  for (int i = 0; i < n; ++i) {
    if (cases[i].c == nullptr) continue;
    rng += 0x9e3779b97f4a7c15ull;
    uint64_t z = rng;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    const int j = static_cast<int>(((z >> 32) * static_cast<uint64_t>(norder + 1)) >> 32);
    pollorder[norder] = pollorder[j];
    pollorder[j] = static_cast<uint16_t>(i);
    ++norder;
  }
  if (norder == 0) {
    if (!block) return -1;
    park_forever(WaitReason::select);  // only nil channels: blocks forever, as Go
  }

  // Lock order: by channel address, a global order every select and every
  // single-channel operation agree with, so two selects over the same
  // channels cannot deadlock. The same channel in several cases ends up
  // adjacent and is locked once. Insertion sort: selects are small.
  auto addr = [cases](uint16_t i) { return reinterpret_cast<uintptr_t>(cases[i].c); };
  for (int k = 0; k < norder; ++k) {
    const uint16_t v = pollorder[k];
    int m = k;
    for (; m > 0 && addr(lockorder[m - 1]) > addr(v); --m) lockorder[m] = lockorder[m - 1];
    lockorder[m] = v;
  }

  sellock(cases, lockorder, norder);

  // Pass 1: the first ready case in poll order.
  for (int k = 0; k < norder; ++k) {
    const int i = pollorder[k];
    hchan* c = cases[i].c;
    if (cases[i].send) {
      if (c->closed) {
        selunlock(cases, lockorder, norder);
        *ok = false;
        return i;
      }
      if (ChanWaiter* r = c->recvq.dequeue(); r != nullptr) {
        G* gp = send_direct(c, r, cases[i].elem);
        selunlock(cases, lockorder, norder);
        core::goready(gp);
        *ok = true;
        return i;
      }
      if (c->qcount.load(std::memory_order_relaxed) < c->dataqsiz) {
        buf_put(c, cases[i].elem);
        selunlock(cases, lockorder, norder);
        *ok = true;
        return i;
      }
    } else {
      if (ChanWaiter* s = c->sendq.dequeue(); s != nullptr) {
        G* gp = recv_direct(c, s, cases[i].elem);
        selunlock(cases, lockorder, norder);
        core::goready(gp);
        *ok = true;
        return i;
      }
      if (c->qcount.load(std::memory_order_relaxed) > 0) {
        buf_take(c, cases[i].elem);
        selunlock(cases, lockorder, norder);
        *ok = true;
        return i;
      }
      if (c->closed) {
        selunlock(cases, lockorder, norder);
        *ok = false;
        return i;
      }
    }
  }

  if (!block) {
    selunlock(cases, lockorder, norder);
    return -1;
  }

  // Pass 2: a waiter on every channel, then park once. All channels are
  // locked, so no completer sees a partial registration.
  SelectState st;
  G* self = core::getg();
  auto* waiters = reinterpret_cast<ChanWaiter*>(waiter_mem);
  for (int k = 0; k < norder; ++k) {
    const int i = lockorder[k];
    ChanWaiter* w = ::new (&waiters[i]) ChanWaiter;  // trivially destructible: never destroyed
    w->g = self;
    w->elem = cases[i].elem;
    w->sel = &st;
    (cases[i].send ? cases[i].c->sendq : cases[i].c->recvq).enqueue(w);
  }
  SelectPark park{cases, lockorder, norder};
  core::gopark(selparkcommit, &park, WaitReason::select);

  // Pass 3: woken by the case that claimed st.done. Re-lock everything and
  // take our other waiters off their queues (some may already have been
  // dropped by a dequeue whose claim failed: remove() checks).
  sellock(cases, lockorder, norder);
  ChanWaiter* winner = st.winner;
  int chosen = -1;
  for (int k = 0; k < norder; ++k) {
    const int i = lockorder[k];
    ChanWaiter* w = &waiters[i];
    if (w == winner) {
      chosen = i;
    } else {
      (cases[i].send ? cases[i].c->sendq : cases[i].c->recvq).remove(w);
    }
  }
  selunlock(cases, lockorder, norder);
  if (chosen < 0) core::fatal("select: woken without a winning case");
  *ok = winner->success;
  return chosen;
}

}  // namespace keel::detail

namespace keel::core {

ChanWaiterCounts chan_waiter_counts(hchan* c) noexcept {
  LockGuard<Lock> g(c->lock);
  return {c->sendq.n, c->recvq.n};
}

}  // namespace keel::core
