// The stack pool: per-P caches, a global pool of warm stacks, chunks of
// unguarded stacks. See core/stack_pool.h for the policy, docs/DECISIONS.md
// ("Stack pool") for why.
#include "core/stack_pool.h"

#include <bit>
#include <new>

#include "core/lock.h"
#include "platform/os.h"

namespace keel::core {
namespace {

// One reservation of kChunkStacks unguarded stacks of `slot` bytes each,
// committed as one mapping. free_mask: slots that are free and scrubbed
// (or never used) — the ones stack_get may carve. A chunk is on the
// `partial` list while it has any.
struct Chunk {
  char* base = nullptr;
  size_t bytes = 0;
  size_t slot = 0;
  uint64_t free_mask = 0;
  int nfree = 0;
  Chunk* prev = nullptr;
  Chunk* next = nullptr;
  bool listed = false;
};
static_assert(kChunkStacks == 64, "free_mask holds one bit per slot");

struct Global {
  Lock mu;
  // Warm free stacks, a ring: warm[head] is the oldest. stack_get takes the
  // newest (its pages are the likeliest to be resident); overflow evicts the
  // oldest.
  Stack warm[kWarmStacks];
  int head = 0;
  int n = 0;
  Chunk* partial = nullptr;
  int empty_chunks = 0;  // chunks with every slot free (at most one is kept)
  // Scrubbed guarded stacks (their own reservations, pages dropped) kept for
  // reuse: unmapping one and mapping + guarding the next costs three system
  // calls and two mapping splits; a scrubbed one costs nothing resident and
  // is reused as it is (measured: the 50k-goroutine timer storm spent a
  // quarter of its CPU in mmap/mprotect/munmap). Plain new[] storage, never
  // freed: g must stay usable during static destruction.
  Stack* cold = nullptr;
  int ncold = 0;
  int capcold = 0;
  StackPoolStats stats;
};
Global g;  // constant-initialized: usable before and after main

constexpr int kBatch = StackCache::kCapacity / 2;

// Whether s serves requests for `want` usable bytes. A stack in its own
// reservation may be up to a granule larger than asked (Windows: the
// guard page and rounding to 64 KiB leave 316 KiB usable for 256 KiB).
bool fits(const Stack& s, size_t want) noexcept {
  return s.size() >= want && s.size() - want < os::alloc_granularity();
}

void link(Chunk* c) noexcept {
  c->prev = nullptr;
  c->next = g.partial;
  if (g.partial != nullptr) g.partial->prev = c;
  g.partial = c;
  c->listed = true;
}

void unlink(Chunk* c) noexcept {
  if (c->prev != nullptr) c->prev->next = c->next;
  else g.partial = c->next;
  if (c->next != nullptr) c->next->prev = c->prev;
  c->prev = c->next = nullptr;
  c->listed = false;
}

// Under g.mu: carve up to max free slots of `size` bytes into out.
int carve(size_t size, Stack* out, int max) noexcept {
  int got = 0;
  for (Chunk* c = g.partial; c != nullptr && got < max;) {
    Chunk* next = c->next;
    if (c->slot == size) {
      if (c->nfree == kChunkStacks) --g.empty_chunks;
      while (c->free_mask != 0 && got < max) {
        const int i = std::countr_zero(c->free_mask);
        c->free_mask &= c->free_mask - 1;
        --c->nfree;
        --g.stats.chunk_free;
        Stack& s = out[got++];
        s.reserved_lo = s.lo = c->base + size_t(i) * size;
        s.hi = static_cast<char*>(s.lo) + size;
        s.reserved_size = size;
        s.guarded = false;
        s.chunk = c;
      }
      if (c->nfree == 0) unlink(c);
    }
    c = next;
  }
  return got;
}

// A new chunk of `size`-byte slots, listed; false if the OS refuses.
// Called without g.mu (two system calls); takes it to list the chunk.
bool grow(size_t size) noexcept {
  auto* c = new (std::nothrow) Chunk;
  if (c == nullptr) return false;
  c->slot = size;
  c->bytes = size * kChunkStacks;
  c->base = static_cast<char*>(os::mem_reserve(c->bytes));
  if (c->base == nullptr) {
    delete c;
    return false;
  }
  // One commit for the whole chunk: one mapping (Linux may even merge it
  // with the previous chunk). No commit charge on Unix (MAP_NORESERVE),
  // nothing resident anywhere until touched.
  if (os::mem_commit(c->base, c->bytes) != os::Error::ok) {
    os::mem_release(c->base, c->bytes);
    delete c;
    return false;
  }
  c->free_mask = ~uint64_t(0);
  c->nfree = kChunkStacks;
  LockGuard<Lock> l(g.mu);
  link(c);
  ++g.empty_chunks;
  ++g.stats.chunks;
  g.stats.chunk_bytes += int64_t(c->bytes);
  g.stats.chunk_free += kChunkStacks;
  return true;
}

void release_chunks(Chunk* list) noexcept {
  while (list != nullptr) {
    Chunk* next = list->next;
    os::mem_release(list->base, list->bytes);
    delete list;
    list = next;
  }
}

// Cold guarded stacks kept at most (a bound for targets with no mapping
// budget, where every stack is guarded; on Linux the budget is lower).
constexpr int kMaxCold = 16384;

// Under g.mu: keep a scrubbed guarded stack for reuse. False: no room.
bool put_cold(const Stack& s) noexcept {
  if (g.ncold == g.capcold) {
    if (g.capcold == kMaxCold) return false;
    const int cap = g.capcold == 0 ? 256 : (g.capcold * 2 < kMaxCold ? g.capcold * 2 : kMaxCold);
    auto* bigger = new (std::nothrow) Stack[size_t(cap)];
    if (bigger == nullptr) return false;
    for (int i = 0; i < g.ncold; ++i) bigger[i] = g.cold[i];
    delete[] g.cold;
    g.cold = bigger;
    g.capcold = cap;
  }
  g.cold[g.ncold++] = s;
  g.stats.cold = g.ncold;
  return true;
}

// Stacks leaving the warm pool (or put back with a size the pool no longer
// serves): guarded stacks of the default size are scrubbed and kept cold
// (others released); chunk slots are scrubbed — contiguous slots of one
// chunk with one discard — and marked free in their chunk. Called without
// g.mu.
void retire(Stack* v, int n) noexcept {
  int m = 0;
  for (int i = 0; i < n; ++i) {
    if (v[i].chunk != nullptr) {
      v[m++] = v[i];
      continue;
    }
    // From the stack limit up: below it, a Windows guarded stack keeps
    // PAGE_GUARD headroom for its overflow handler (os::stack_fault_arm),
    // which a discard (decommit + commit) would turn into plain pages.
    const size_t ps = os::page_size();
    const uintptr_t from = reinterpret_cast<uintptr_t>(v[i].limit != nullptr ? v[i].limit : v[i].lo);
    char* lo = reinterpret_cast<char*>((from + ps - 1) / ps * ps);
    char* hi = static_cast<char*>(v[i].hi);
    bool kept = false;
    if (fits(v[i], default_stack_size()) && lo < hi && os::mem_discard(lo, size_t(hi - lo)) == os::Error::ok) {
      LockGuard<Lock> l(g.mu);
      kept = put_cold(v[i]);
      if (kept) ++g.stats.scrubbed;
    }
    if (!kept) stack_free(&v[i]);
  }
  // Insertion sort by address (m <= StackCache::kCapacity).
  for (int i = 1; i < m; ++i) {
    Stack s = v[i];
    int j = i;
    for (; j > 0 && v[j - 1].lo > s.lo; --j) v[j] = v[j - 1];
    v[j] = s;
  }
  int scrubbed = 0;
  for (int i = 0; i < m;) {
    int j = i + 1;
    while (j < m && v[j].chunk == v[i].chunk && v[j].lo == v[j - 1].hi) ++j;
    char* lo = static_cast<char*>(v[i].lo);
    const size_t len = size_t(static_cast<char*>(v[j - 1].hi) - lo);
    // Discard frees the pages at once and leaves the range usable (zero on
    // touch) inside the chunk's one mapping. Should it fail, the slots are
    // simply reused with their pages.
    if (os::mem_discard(lo, len) == os::Error::ok) scrubbed += j - i;
    i = j;
  }
  if (m == 0) return;
  Chunk* dead = nullptr;
  {
    LockGuard<Lock> l(g.mu);
    g.stats.scrubbed += scrubbed;
    for (int i = 0; i < m; ++i) {
      auto* c = static_cast<Chunk*>(v[i].chunk);
      const size_t idx = size_t(static_cast<char*>(v[i].lo) - c->base) / c->slot;
      c->free_mask |= uint64_t(1) << idx;
      ++c->nfree;
      ++g.stats.chunk_free;
      if (!c->listed) link(c);
      if (c->nfree == kChunkStacks) {
        // Keep one empty chunk for the next burst; give the rest back.
        if (g.empty_chunks >= 1) {
          unlink(c);
          g.stats.chunk_free -= kChunkStacks;
          --g.stats.chunks;
          g.stats.chunk_bytes -= int64_t(c->bytes);
          ++g.stats.chunks_released;
          c->next = dead;
          dead = c;
        } else {
          ++g.empty_chunks;
        }
      }
    }
  }
  release_chunks(dead);
}

// Into the warm pool; the oldest beyond kWarmStacks are retired.
void put_global(const Stack* v, int n) noexcept {
  Stack out[StackCache::kCapacity];
  int k = 0;
  while (n > 0) {
    const int step = n < StackCache::kCapacity ? n : StackCache::kCapacity;
    {
      LockGuard<Lock> l(g.mu);
      for (int i = 0; i < step; ++i) {
        if (g.n < kWarmStacks) {
          g.warm[(g.head + g.n) % kWarmStacks] = v[i];
          ++g.n;
        } else {
          // Full: the oldest is out, and its slot becomes the newest.
          out[k++] = g.warm[g.head];
          g.warm[g.head] = v[i];
          g.head = (g.head + 1) % kWarmStacks;
        }
      }
      g.stats.warm = g.n;
    }
    if (k > 0) retire(out, k);
    k = 0;
    v += step;
    n -= step;
  }
}

// Under g.mu: up to max warm stacks of `size` into out, newest first;
// warm stacks of another size go to wrong[] (retired by the caller).
int take_warm(size_t size, Stack* out, int max, Stack* wrong, int* nwrong) noexcept {
  int got = 0;
  while (g.n > 0 && got < max && *nwrong < kBatch) {
    --g.n;
    const Stack& s = g.warm[(g.head + g.n) % kWarmStacks];
    if (fits(s, size)) out[got++] = s;
    else wrong[(*nwrong)++] = s;
  }
  g.stats.warm = g.n;
  return got;
}

// Fill out[0..max) from the global pool (max >= 1): warm stacks, else a new
// guarded stack while the budget allows, else free chunk slots, else a new
// chunk. Returns how many (0: out of memory).
int take_global(size_t size, Stack* out, int max) noexcept {
  Stack wrong[kBatch];
  int nwrong = 0;
  int got;
  {
    LockGuard<Lock> l(g.mu);
    got = take_warm(size, out, max, wrong, &nwrong);
  }
  if (nwrong > 0) retire(wrong, nwrong);
  nwrong = 0;
  if (got > 0) return got;
  {
    LockGuard<Lock> l(g.mu);
    while (g.ncold > 0 && got < max) {
      const Stack& s = g.cold[--g.ncold];
      if (fits(s, size)) out[got++] = s;
      else if (nwrong < kBatch) wrong[nwrong++] = s;
      else { ++g.ncold; break; }
    }
    g.stats.cold = g.ncold;
  }
  if (nwrong > 0) retire(wrong, nwrong);
  if (got > 0) return got;
  if (stack_alloc_guarded(&out[0], size)) return 1;
  for (;;) {  // another thread may empty a chunk we just made: make another
    {
      LockGuard<Lock> l(g.mu);
      got = carve(size, out, max);
    }
    if (got > 0) return got;
    if (!grow(size)) return 0;
  }
}

}  // namespace

bool stack_get(StackCache* c, size_t size, Stack* out) noexcept {
  const size_t want = stack_size_for(size);
  if (want != default_stack_size()) return stack_alloc(out, want);
  if (c != nullptr) {
    while (c->n > 0) {
      Stack s = c->stacks[--c->n];
      if (fits(s, want)) {
        *out = s;
        out->write_canary();
        return true;
      }
      retire(&s, 1);  // put when the default was another size
    }
    const int got = take_global(want, c->stacks, kBatch);
    if (got == 0) return false;
    c->n = got - 1;
    *out = c->stacks[got - 1];
  } else {
    if (take_global(want, out, 1) == 0) return false;
  }
  out->write_canary();
  return true;
}

void stack_put(StackCache* c, Stack* s) noexcept {
  if (!s->valid()) return;
  if (!fits(*s, default_stack_size())) {
    Stack t = *s;
    *s = Stack{};
    retire(&t, 1);
    return;
  }
  if (c == nullptr) {
    put_global(s, 1);
  } else {
    if (c->n == StackCache::kCapacity) {
      // Spill the older half; the newer half (likelier resident) stays.
      put_global(c->stacks, kBatch);
      for (int i = kBatch; i < c->n; ++i) c->stacks[i - kBatch] = c->stacks[i];
      c->n -= kBatch;
    }
    c->stacks[c->n++] = *s;
  }
  *s = Stack{};
}

void stack_cache_flush(StackCache* c) noexcept {
  put_global(c->stacks, c->n);
  c->n = 0;
}

StackPoolStats stack_pool_stats() noexcept {
  LockGuard<Lock> l(g.mu);
  return g.stats;
}

void stack_pool_trim() noexcept {
  for (;;) {
    Stack v[StackCache::kCapacity];
    int k = 0;
    {
      LockGuard<Lock> l(g.mu);
      while (g.n > 0 && k < StackCache::kCapacity) {
        v[k++] = g.warm[g.head];
        g.head = (g.head + 1) % kWarmStacks;
        --g.n;
      }
      g.stats.warm = g.n;
    }
    if (k == 0) break;
    retire(v, k);
  }
  // Cold guarded stacks go back to the OS too (their mapping budget with them).
  for (;;) {
    Stack s;
    {
      LockGuard<Lock> l(g.mu);
      if (g.ncold == 0) break;
      s = g.cold[--g.ncold];
      g.stats.cold = g.ncold;
    }
    stack_free(&s);
  }
  Chunk* dead = nullptr;
  {
    LockGuard<Lock> l(g.mu);
    for (Chunk* c = g.partial; c != nullptr;) {
      Chunk* next = c->next;
      if (c->nfree == kChunkStacks) {
        unlink(c);
        --g.empty_chunks;
        g.stats.chunk_free -= kChunkStacks;
        --g.stats.chunks;
        g.stats.chunk_bytes -= int64_t(c->bytes);
        ++g.stats.chunks_released;
        c->next = dead;
        dead = c;
      }
      c = next;
    }
  }
  release_chunks(dead);
}

}  // namespace keel::core
