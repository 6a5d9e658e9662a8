// The semaphore table: see core/sema.h and docs/SYNC.md.
#include "core/sema.h"

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "core/fatal.h"
#include "core/lock.h"
#include "core/park.h"

namespace keel::core {
namespace {

// One waiter of semacquire, on the parked G's own stack. The first waiter on
// an address is a node of its bucket's treap (ordered by address, heap-ordered
// by `priority`); later waiters on the same address hang off it through
// waitlink, and the tree node keeps the list's tail, so queueing at either end
// and dequeueing the head are O(1) once the address is found.
struct SemaWaiter {
  G* g = nullptr;
  const uint32_t* addr = nullptr;
  SemaWaiter* parent = nullptr;
  SemaWaiter* prev = nullptr;  // subtree of lower addresses
  SemaWaiter* next = nullptr;  // subtree of higher addresses
  SemaWaiter* waitlink = nullptr;  // the next waiter on the same address
  SemaWaiter* waittail = nullptr;  // tree node only: the last waiter on the address
  uint32_t priority = 0;           // tree node only: treap priority, never 0
  // Set by semrelease(handoff) before goready: the releaser already took the
  // unit for this waiter. Atomic so the hand-over is ordered even without
  // relying on goready's own synchronisation.
  std::atomic<bool> handed{false};
};

// The Cond waiter, also on the parked G's stack.
struct NotifyWaiter {
  G* g = nullptr;
  uint32_t ticket = 0;
  NotifyWaiter* next = nullptr;
};

#if defined(__aarch64__) || defined(_M_ARM64)
constexpr size_t kCacheLine = 128;  // what Go pads to on arm64 (adjacent-line prefetch)
#else
constexpr size_t kCacheLine = 64;
#endif

// One bucket. Padded so contention on one bucket's lock does not slow its
// neighbours (false sharing).
struct alignas(kCacheLine) SemaRoot {
  Lock lock;
  SemaWaiter* treap = nullptr;
  // Waiters in this bucket. Read without the lock so that a release with no
  // waiter anywhere in the bucket costs one atomic add on the user's word and
  // one load here, no lock.
  std::atomic<uint32_t> nwait{0};

  void queue(const uint32_t* addr, SemaWaiter* s, bool lifo) noexcept;
  SemaWaiter* dequeue(const uint32_t* addr) noexcept;
  void rotate_left(SemaWaiter* x) noexcept;
  void rotate_right(SemaWaiter* y) noexcept;
};

// A prime, as Go: addresses of objects in arrays would otherwise collide on
// a power-of-two table.
constexpr size_t kSemTabSize = 251;
SemaRoot g_semtable[kSemTabSize];

SemaRoot* root_for(const void* addr) noexcept {
  return &g_semtable[(reinterpret_cast<uintptr_t>(addr) >> 3) % kSemTabSize];
}

bool addr_less(const void* a, const void* b) noexcept {
  return reinterpret_cast<uintptr_t>(a) < reinterpret_cast<uintptr_t>(b);
}

bool cansemacquire(uint32_t* addr) noexcept {
  std::atomic_ref<uint32_t> a(*addr);
  uint32_t v = a.load(std::memory_order_relaxed);
  for (;;) {
    if (v == 0) return false;
    // acquire: what the releaser wrote before semrelease is visible to us.
    if (a.compare_exchange_weak(v, v - 1, std::memory_order_acquire, std::memory_order_relaxed)) return true;
  }
}

// gopark's unlockf: the G is marked waiting (and off its stack) before the
// bucket is unlocked, so a semrelease that dequeues it can goready it at once.
bool unlock_root(G*, void* arg) noexcept {
  static_cast<SemaRoot*>(arg)->lock.unlock();
  return true;
}

void SemaRoot::queue(const uint32_t* addr, SemaWaiter* s, bool lifo) noexcept {
  s->g = getg();
  s->addr = addr;
  s->parent = s->prev = s->next = nullptr;
  s->waitlink = s->waittail = nullptr;

  SemaWaiter* last = nullptr;
  SemaWaiter** pt = &treap;
  for (SemaWaiter* t = *pt; t != nullptr; t = *pt) {
    if (t->addr == addr) {
      if (lifo) {
        // s takes t's place in the tree and t becomes the first of s's list.
        *pt = s;
        s->priority = t->priority;
        s->parent = t->parent;
        s->prev = t->prev;
        s->next = t->next;
        if (s->prev != nullptr) s->prev->parent = s;
        if (s->next != nullptr) s->next->parent = s;
        s->waitlink = t;
        s->waittail = t->waittail != nullptr ? t->waittail : t;
        t->parent = t->prev = t->next = nullptr;
        t->waittail = nullptr;
      } else {
        if (t->waittail == nullptr) {
          t->waitlink = s;
        } else {
          t->waittail->waitlink = s;
        }
        t->waittail = s;
      }
      return;
    }
    last = t;
    pt = addr_less(addr, t->addr) ? &t->prev : &t->next;
  }

  // A new address: a leaf, then rotated up while its priority is below its
  // parent's, so the tree stays a heap on priority (a treap: balanced in
  // expectation whatever order addresses arrive in).
  s->priority = fastrand() | 1;
  s->parent = last;
  *pt = s;
  while (s->parent != nullptr && s->parent->priority > s->priority) {
    if (s->parent->prev == s) {
      rotate_right(s->parent);
    } else {
      if (s->parent->next != s) fatal("semaphore table: corrupted treap (queue)");
      rotate_left(s->parent);
    }
  }
}

SemaWaiter* SemaRoot::dequeue(const uint32_t* addr) noexcept {
  SemaWaiter** ps = &treap;
  SemaWaiter* s = *ps;
  while (s != nullptr && s->addr != addr) {
    ps = addr_less(addr, s->addr) ? &s->prev : &s->next;
    s = *ps;
  }
  if (s == nullptr) return nullptr;

  if (SemaWaiter* t = s->waitlink; t != nullptr) {
    // More waiters on addr: the next one takes s's place in the tree.
    *ps = t;
    t->priority = s->priority;
    t->parent = s->parent;
    t->prev = s->prev;
    if (t->prev != nullptr) t->prev->parent = t;
    t->next = s->next;
    if (t->next != nullptr) t->next->parent = t;
    t->waittail = t->waitlink != nullptr ? s->waittail : nullptr;
  } else {
    // The last waiter on addr: rotate s down to a leaf (keeping the heap
    // order: the child with the lower priority comes up), then cut it off.
    while (s->next != nullptr || s->prev != nullptr) {
      if (s->next == nullptr || (s->prev != nullptr && s->prev->priority < s->next->priority)) {
        rotate_right(s);
      } else {
        rotate_left(s);
      }
    }
    if (s->parent == nullptr) {
      treap = nullptr;
    } else if (s->parent->prev == s) {
      s->parent->prev = nullptr;
    } else {
      s->parent->next = nullptr;
    }
  }
  s->parent = s->prev = s->next = nullptr;
  s->waitlink = s->waittail = nullptr;
  return s;
}

// (x a (y b c)) → (y (x a b) c)
void SemaRoot::rotate_left(SemaWaiter* x) noexcept {
  SemaWaiter* p = x->parent;
  SemaWaiter* y = x->next;
  SemaWaiter* b = y->prev;
  y->prev = x;
  x->parent = y;
  x->next = b;
  if (b != nullptr) b->parent = x;
  y->parent = p;
  if (p == nullptr) {
    treap = y;
  } else if (p->prev == x) {
    p->prev = y;
  } else {
    if (p->next != x) fatal("semaphore table: corrupted treap (rotate_left)");
    p->next = y;
  }
}

// (y (x a b) c) → (x a (y b c))
void SemaRoot::rotate_right(SemaWaiter* y) noexcept {
  SemaWaiter* p = y->parent;
  SemaWaiter* x = y->prev;
  SemaWaiter* b = x->next;
  x->next = y;
  y->parent = x;
  y->prev = b;
  if (b != nullptr) b->parent = y;
  x->parent = p;
  if (p == nullptr) {
    treap = x;
  } else if (p->prev == y) {
    p->prev = x;
  } else {
    if (p->next != y) fatal("semaphore table: corrupted treap (rotate_right)");
    p->next = x;
  }
}

// Ticket counters wrap; their live difference stays far below 2^31 (it is
// bounded by the number of waiters).
bool ticket_less(uint32_t a, uint32_t b) noexcept { return static_cast<int32_t>(a - b) < 0; }

}  // namespace

bool semtryacquire(uint32_t* addr) noexcept { return cansemacquire(addr); }

void semacquire(uint32_t* addr, bool lifo, WaitReason reason) noexcept {
  if (cansemacquire(addr)) return;

  SemaRoot* root = root_for(addr);
  SemaWaiter s;
  for (;;) {
    root->lock.lock();
    // Counted before the re-check below: a semrelease whose increment we miss
    // there will see nwait != 0 and look for us (both sides are seq_cst: a
    // store-then-load on each side, the classic Dekker pattern).
    root->nwait.fetch_add(1, std::memory_order_seq_cst);
    if (cansemacquire(addr)) {
      root->nwait.fetch_sub(1, std::memory_order_relaxed);
      root->lock.unlock();
      return;
    }
    root->queue(addr, &s, lifo);
    gopark(unlock_root, root, reason);
    // Woken: either handed the unit directly, or told one is there — which a
    // running acquirer may have taken meanwhile; then wait again (at the
    // tail, or the head for lifo, as the caller asked).
    if (s.handed.load(std::memory_order_acquire) || cansemacquire(addr)) return;
  }
}

void semrelease(uint32_t* addr, bool handoff) noexcept {
  SemaRoot* root = root_for(addr);
  std::atomic_ref<uint32_t>(*addr).fetch_add(1, std::memory_order_seq_cst);

  // After the increment (see semacquire): no waiter in the bucket means any
  // acquirer that comes later will see the unit.
  if (root->nwait.load(std::memory_order_seq_cst) == 0) return;

  root->lock.lock();
  if (root->nwait.load(std::memory_order_relaxed) == 0) {
    // Another release already woke the waiter that would take our unit.
    root->lock.unlock();
    return;
  }
  SemaWaiter* s = root->dequeue(addr);
  if (s != nullptr) root->nwait.fetch_sub(1, std::memory_order_relaxed);
  root->lock.unlock();
  if (s == nullptr) return;  // the bucket's waiters wait on other addresses

  // s stays valid until goready: its G is parked and only we can wake it.
  // After goready it may run (and its frame, with s, may be gone) at once.
  G* gp = s->g;
  bool handed = false;
  if (handoff && cansemacquire(addr)) {
    s->handed.store(true, std::memory_order_release);
    handed = true;
  }
  goready(gp);
  if (handed) {
    // The waiter is in our P's runnext: yield so it runs now and inherits the
    // rest of our time slice, instead of us racing to the lock again (Go
    // issue 33747). Only when handing off: otherwise a third party could take
    // the unit while we yield, and the yield would be wasted.
    goyield();
  }
}

uint32_t sema_bucket_waiters(const void* addr) noexcept {
  return root_for(addr)->nwait.load(std::memory_order_acquire);
}

// ------------------------------------------------------------ notify list
//
// The list's head/tail are protected by the lock of the bucket the list's
// address hashes to, so a Cond needs no lock of its own (and its public type
// no runtime-internal member). `notify` is read without the lock on the fast
// path and written only under it.

uint32_t notify_list_add(NotifyList* l) noexcept {
  // Concurrent callers are possible (a Cond used with a shared lock).
  return l->wait.fetch_add(1, std::memory_order_seq_cst);
}

void notify_list_wait(NotifyList* l, uint32_t ticket) noexcept {
  SemaRoot* root = root_for(l);
  root->lock.lock();
  if (ticket_less(ticket, l->notify.load(std::memory_order_relaxed))) {
    // Notified between add and here.
    root->lock.unlock();
    return;
  }
  NotifyWaiter s;
  s.g = getg();
  s.ticket = ticket;
  auto* tail = static_cast<NotifyWaiter*>(l->tail);
  if (tail == nullptr) {
    l->head = &s;
  } else {
    tail->next = &s;
  }
  l->tail = &s;
  gopark(unlock_root, root, WaitReason::cond);
}

void notify_list_notify_one(NotifyList* l) noexcept {
  // Fast path: no ticket handed out since the last notification.
  if (l->wait.load(std::memory_order_seq_cst) == l->notify.load(std::memory_order_seq_cst)) return;

  SemaRoot* root = root_for(l);
  root->lock.lock();
  uint32_t t = l->notify.load(std::memory_order_relaxed);
  if (t == l->wait.load(std::memory_order_seq_cst)) {
    root->lock.unlock();
    return;
  }
  // Ticket t is notified from now on, whether or not its holder has queued:
  // if it has not, its notify_list_wait will see that and return at once.
  l->notify.store(t + 1, std::memory_order_seq_cst);
  // Waiters queue in the order they reach notify_list_wait, not ticket order.
  NotifyWaiter* prev = nullptr;
  for (auto* s = static_cast<NotifyWaiter*>(l->head); s != nullptr; prev = s, s = s->next) {
    if (s->ticket != t) continue;
    NotifyWaiter* next = s->next;
    if (prev == nullptr) {
      l->head = next;
    } else {
      prev->next = next;
    }
    if (l->tail == s) l->tail = prev;
    G* gp = s->g;
    root->lock.unlock();
    goready(gp);
    return;
  }
  root->lock.unlock();
}

void notify_list_notify_all(NotifyList* l) noexcept {
  if (l->wait.load(std::memory_order_seq_cst) == l->notify.load(std::memory_order_seq_cst)) return;

  SemaRoot* root = root_for(l);
  root->lock.lock();
  auto* s = static_cast<NotifyWaiter*>(l->head);
  l->head = l->tail = nullptr;
  l->notify.store(l->wait.load(std::memory_order_seq_cst), std::memory_order_seq_cst);
  root->lock.unlock();
  // Detached from the list, so no one else can reach these; read next before
  // goready, after which the node may be gone.
  while (s != nullptr) {
    NotifyWaiter* next = s->next;
    goready(s->g);
    s = next;
  }
}

}  // namespace keel::core
