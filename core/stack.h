// Goroutine stacks on the contract's memory group (DESIGN.md §3 "Stacks").
//
// A stack is either its own reservation (stack_alloc), laid out from low to
// high addresses:
//   [reserved_lo, lo)  guard page: every access faults (while the mapping
//                      budget allows one; see stack.cpp)
//   [lo, lo+8)         canary word, checked on every switch away
//   [lo, hi)           the usable stack, committed; it grows down from hi
// or a slot carved from a pool chunk (core/stack_pool.h): no guard page,
// reserved_lo == lo, and `chunk` names the chunk.
// "Lazily committed" means pages become resident only when first touched:
// the whole usable range is committed up front, and the OS's demand paging
// does the rest (docs/DECISIONS.md, "Stacks").
//
// Guarded stacks are registered (guard page -> stack top) so that a fault in
// a guard page can be reported as "goroutine N stack overflow" from a signal
// handler or a vectored exception handler (stack_fault_thread_init).
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
  void* chunk = nullptr;        // the pool chunk this stack was carved from; null: its own reservation
  void* limit = nullptr;        // the stack limit a context here carries (os::stack_fault_arm):
                                // above lo on Windows guarded stacks; null means lo

  size_t size() const noexcept { return size_t(static_cast<char*>(hi) - static_cast<char*>(lo)); }
  bool valid() const noexcept { return lo != nullptr; }
  bool canary_ok() const noexcept { return *static_cast<const volatile uint64_t*>(lo) == kStackCanary; }
  void write_canary() const noexcept { *static_cast<volatile uint64_t*>(lo) = kStackCanary; }
};

// Who runs on a stack: the top kStackOwnerBytes of every stack a Fiber runs
// on (the context starts below them). A fault handler reads it to name the
// goroutine; it lives at the top because an overflow runs off the bottom.
struct StackOwner {
  uint64_t magic;      // kStackOwnerMagic once a Fiber has written it
  uint64_t id;         // goroutine id
  const char* file;    // creation site (static string), or null
  uint32_t line;       // 0: print `file` alone
  uint32_t reserved;
};
constexpr size_t kStackOwnerBytes = 32;
static_assert(sizeof(StackOwner) == kStackOwnerBytes);
constexpr uint64_t kStackOwnerMagic = 0x6b65656c4f574e52ull;  // "RNWOleek"
inline StackOwner* stack_owner(const Stack& s) noexcept {
  return reinterpret_cast<StackOwner*>(static_cast<char*>(s.hi) - kStackOwnerBytes);
}

// Allocate a stack in its own reservation with at least `size` usable bytes
// (0: the default size), guarded if the budget allows. False when the OS
// refuses memory. The canary is written.
bool stack_alloc(Stack* s, size_t size = 0) noexcept;
// As stack_alloc, but only guarded: false (nothing allocated) when the
// guard budget is used up or the OS refuses.
bool stack_alloc_guarded(Stack* s, size_t size = 0) noexcept;
// Give a stack back: its own reservation is released (and its guard
// unregistered); a chunk slot goes back to the pool (stack_put(nullptr, s)).
// *s is reset.
void stack_free(Stack* s) noexcept;

// The size stack_alloc(s, 0) uses; settable (rounded up to whole pages,
// at least 16 KiB) before goroutines start.
size_t default_stack_size() noexcept;
void set_default_stack_size(size_t size) noexcept;
// A requested size as stacks are made: 0 -> the default, at least 16 KiB,
// rounded up to whole pages.
size_t stack_size_for(size_t size) noexcept;

// Guarded stacks alive now, and how many may be (-1: no limit). The budget
// defaults to a quarter of os::max_memory_mappings() (a guarded stack costs
// two mappings, so guards may use half of them); set_guarded_stack_budget
// overrides it (0: no new stack is guarded; -1: no limit), and
// reset_guarded_stack_budget restores the default. Stacks already guarded
// stay guarded.
int64_t guarded_stacks() noexcept;
int64_t guarded_stack_budget() noexcept;
void set_guarded_stack_budget(int64_t budget) noexcept;
void reset_guarded_stack_budget() noexcept;

// Make goroutine stack overflows that hit a guard page on the calling thread
// die with "fatal error: goroutine N stack overflow" (and the creation site)
// instead of a bare crash: installs the process-wide fault handler once and
// gives this thread what the handler needs to run when its stack is
// exhausted (an alternate signal stack on Unix). Idempotent; Fiber's
// init_thread calls it. False when the target cannot (the canary still
// catches overflows at the next switch).
bool stack_fault_thread_init() noexcept;

// For tests: the stack top registered for the guard page containing addr,
// or 0 (what the fault handler looks up).
uintptr_t guard_lookup(uintptr_t addr) noexcept;

// Print "fatal error: goroutine <id> stack overflow" and, when file is not
// null, "goroutine <id> was created at <file>:<line>", then end the
// process. Allocates nothing: it may run with no stack left or from a
// signal handler.
[[noreturn]] void stack_overflow_fatal(uint64_t id, const char* file, uint32_t line) noexcept;

}  // namespace keel::core
