// Goroutine stacks on the contract's memory group (DESIGN.md §3 "Stacks").
//
// One reservation per stack, laid out from low to high addresses:
//   [reserved_lo, lo)  guard page: every access faults (while the mapping
//                      budget allows one; see stack.cpp)
//   [lo, lo+8)         canary word, checked on every switch away
//   [lo, hi)           the usable stack, committed; it grows down from hi
// "Lazily committed" means pages become resident only when first touched:
// the whole usable range is committed up front, and the OS's demand paging
// does the rest (docs/DECISIONS.md, "Stacks").
#pragma once

#include <cstddef>
#include <cstdint>

namespace keel::core {

constexpr size_t kDefaultStackSize = 256 * 1024;
constexpr uint64_t kStackCanary = 0x6b65656c5f53544bull;  // "KTS_leek"

struct Stack {
  void* reserved_lo = nullptr;  // start of the reservation (guard page, if any)
  size_t reserved_size = 0;
  void* lo = nullptr;           // lowest usable byte: the canary lives here
  void* hi = nullptr;           // one past the highest usable byte
  bool guarded = false;

  size_t size() const noexcept { return size_t(static_cast<char*>(hi) - static_cast<char*>(lo)); }
  bool valid() const noexcept { return lo != nullptr; }
  bool canary_ok() const noexcept { return *static_cast<const volatile uint64_t*>(lo) == kStackCanary; }
};

// Allocate a stack with at least `size` usable bytes (0: the default size).
// False when the OS refuses memory. The canary is written.
bool stack_alloc(Stack* s, size_t size = 0) noexcept;
// Release a stack from stack_alloc; *s is reset.
void stack_free(Stack* s) noexcept;

// The size stack_alloc(s, 0) uses; settable (rounded up to whole pages,
// at least 16 KiB) before goroutines start.
size_t default_stack_size() noexcept;
void set_default_stack_size(size_t size) noexcept;

// Guarded stacks alive now, and how many may be (-1: no limit).
int64_t guarded_stacks() noexcept;
int64_t guarded_stack_budget() noexcept;

}  // namespace keel::core
