#include "core/stack.h"

#include <atomic>

#include "platform/os.h"

#if defined(__SANITIZE_ADDRESS__)
#define KEEL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KEEL_ASAN 1
#endif
#endif

#if defined(KEEL_ASAN)
extern "C" void __asan_unpoison_memory_region(void const volatile* addr, size_t size);
#endif

namespace keel::core {
namespace {

constexpr size_t kMinStack = 16 * 1024;

std::atomic<size_t> g_default{kDefaultStackSize};
std::atomic<int64_t> g_guarded{0};

size_t round_up(size_t n, size_t to) noexcept { return (n + to - 1) / to * to; }

}  // namespace

size_t default_stack_size() noexcept { return g_default.load(std::memory_order_relaxed); }

void set_default_stack_size(size_t size) noexcept {
  if (size < kMinStack) size = kMinStack;
  g_default.store(round_up(size, os::page_size()), std::memory_order_relaxed);
}

// A guarded stack splits its reservation into two mappings (the no-access
// guard and the read-write stack); an unguarded one is a single mapping that
// the kernel may even merge with its neighbours. Guards may use half of the
// process's mapping budget; the other half stays for everything else (heap,
// libraries, thread stacks). Beyond that, stacks rely on the canary alone.
int64_t guarded_stack_budget() noexcept {
  static const int64_t budget = [] {
    const int64_t maps = os::max_memory_mappings();
    return maps < 0 ? int64_t(-1) : maps / 4;
  }();
  return budget;
}

int64_t guarded_stacks() noexcept { return g_guarded.load(std::memory_order_relaxed); }

bool stack_alloc(Stack* s, size_t size) noexcept {
  const size_t ps = os::page_size();
  size = round_up(size == 0 ? default_stack_size() : (size < kMinStack ? kMinStack : size), ps);

  bool guard = false;
  const int64_t budget = guarded_stack_budget();
  if (budget < 0) {
    guard = true;
    g_guarded.fetch_add(1, std::memory_order_relaxed);
  } else {
    int64_t n = g_guarded.load(std::memory_order_relaxed);
    while (n < budget && !guard)
      guard = g_guarded.compare_exchange_weak(n, n + 1, std::memory_order_relaxed);
  }

  // Reservations come in granules (64 KiB on Windows): the guard page and
  // any rounding slack go below the stack, so the usable size is at least
  // what was asked for.
  const size_t total = round_up(size + (guard ? ps : 0), os::alloc_granularity());
  char* base = static_cast<char*>(os::mem_reserve(total));
  if (base == nullptr) {
    if (guard) g_guarded.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  char* hi = base + total;
  char* lo = guard ? base + ps : base;
  // Commit the whole usable range: on Unix this only flips the protection of
  // a MAP_NORESERVE mapping (no commit charge; a page becomes resident when
  // first touched); on Windows it is charged against the commit limit but
  // still made resident page by page on first touch.
  if (os::mem_commit(lo, size_t(hi - lo)) != os::Error::ok) {
    os::mem_release(base, total);
    if (guard) g_guarded.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  // Reserved memory is already inaccessible; mem_guard makes it a guard for
  // good (on Windows committed no-access rather than merely reserved).
  if (guard) os::mem_guard(base, ps);
  s->reserved_lo = base;
  s->reserved_size = total;
  s->lo = lo;
  s->hi = hi;
  s->guarded = guard;
  *static_cast<volatile uint64_t*>(s->lo) = kStackCanary;
  return true;
}

void stack_free(Stack* s) noexcept {
  if (s->reserved_lo == nullptr) return;
#if defined(KEEL_ASAN)
  // Frames that never returned (a context that ended by switching away) leave
  // poisoned redzones in the shadow; memory mapped here later must not
  // inherit them.
  __asan_unpoison_memory_region(s->lo, s->size());
#endif
  os::mem_release(s->reserved_lo, s->reserved_size);
  if (s->guarded) g_guarded.fetch_sub(1, std::memory_order_relaxed);
  *s = Stack{};
}

}  // namespace keel::core
