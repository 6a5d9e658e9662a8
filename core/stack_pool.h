// The goroutine stack pool (DESIGN.md §3 "Stacks"; policy in
// docs/DECISIONS.md, "Stack pool").
//
// 10^6 parked goroutines must fit in Linux's default vm.max_map_count
// (65530): one reservation per stack cannot do that. So stacks of the
// default size come from here:
//
//  - guarded stacks, each its own reservation with a guard page below it
//    (two mappings), while guarded_stack_budget() allows — as stack_alloc;
//  - beyond the budget, unguarded stacks carved from chunks: one
//    reservation of kChunkStacks stacks, committed as one mapping (on Unix a
//    MAP_NORESERVE region: no commit charge, nothing resident until
//    touched). They rely on the canary.
//
// Free stacks go to a per-P cache (StackCache: no lock, bounded), which
// spills and refills in batches from a global pool under a lock. The global
// pool keeps at most kWarmStacks free stacks as they are ("warm": their
// touched pages stay resident, so reuse is cheap); beyond that the oldest
// are scrubbed — their pages discarded (os::mem_discard), so they cost
// nothing resident — and go back to their chunk; guarded stacks are kept
// scrubbed on a cold list (up to 16384; beyond, released to the OS) and
// reused before a new one is mapped. A chunk whose stacks are all free and
// scrubbed is released; one spare is kept. stack_pool_trim releases the
// cold stacks too.
//
// A stack handed out has its canary written (one word at its lowest
// address): a parked goroutine costs about two resident pages, the canary
// page and the top of its stack.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/stack.h"

namespace keel::core {

// A per-P cache of free stacks. The scheduler embeds one in each P and only
// the P's owner touches it: no locking. Stacks in a cache are of the size
// that was the default when they were put.
struct StackCache {
  static constexpr int kCapacity = 32;  // a full cache spills kCapacity/2 to the global pool
  int n = 0;
  Stack stacks[kCapacity];
};

// Usable stacks per chunk, and free stacks the global pool keeps warm.
constexpr int kChunkStacks = 64;
constexpr int kWarmStacks = 256;

// A stack of at least `size` usable bytes (0: default_stack_size()). Sizes
// other than the default bypass the pool (stack_alloc). c may be null (no
// per-P cache: straight to the global pool). False when the OS refuses
// memory. The canary is written.
bool stack_get(StackCache* c, size_t size, Stack* out) noexcept;

// Give back a stack from stack_get (or stack_alloc); *s is reset. Its
// frames must be gone, and under ASan their redzones cleared
// (Fiber::release_stack does both). Stacks of other than the default size
// are freed at once.
void stack_put(StackCache* c, Stack* s) noexcept;

// Move every stack in c to the global pool (a P being destroyed).
void stack_cache_flush(StackCache* c) noexcept;

struct StackPoolStats {
  int64_t warm = 0;             // free stacks kept as they are in the global pool
  int64_t cold = 0;             // scrubbed guarded stacks kept for reuse
  int64_t chunks = 0;           // chunks reserved now
  int64_t chunk_bytes = 0;      // their reserved bytes
  int64_t chunk_free = 0;       // free (scrubbed) chunk slots
  int64_t scrubbed = 0;         // stacks scrubbed so far (pages dropped)
  int64_t chunks_released = 0;  // chunks given back to the OS so far
};
StackPoolStats stack_pool_stats() noexcept;

// Scrub and return to their chunks (or release) every warm stack of the
// global pool, and release every chunk left entirely free. For tests and
// for a program that wants its memory back after a peak.
void stack_pool_trim() noexcept;

}  // namespace keel::core
