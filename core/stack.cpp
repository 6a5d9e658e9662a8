#include "core/stack.h"

#include <atomic>
#include <new>

#include "core/lock.h"
#include "core/stack_pool.h"
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

#if defined(__SANITIZE_THREAD__)
#define KEEL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define KEEL_TSAN 1
#endif
#endif

namespace keel::core {
namespace {

constexpr size_t kMinStack = 16 * 1024;
constexpr int64_t kBudgetDefault = INT64_MIN;  // g_budget_override: use the computed budget

std::atomic<size_t> g_default{kDefaultStackSize};
std::atomic<int64_t> g_guarded{0};
std::atomic<int64_t> g_budget_override{kBudgetDefault};

size_t round_up(size_t n, size_t to) noexcept { return (n + to - 1) / to * to; }

// ------------------------------------------------------------ guard registry
// guard page address -> the stack's hi, for every guarded stack alive. Read
// from a fault handler on the faulting thread, so readers take no lock and
// allocate nothing: an open-addressing table (linear probing, load <= 1/2)
// whose slots are atomics, written under g_reg_mu. A slot's `hi` is written
// before its key is published (release) and re-checked after it is read.
// Growth publishes a new table; old tables are never freed (a handler may
// still be probing one) — they total less than the live one.
constexpr uintptr_t kEmpty = 0, kTomb = 1;

struct GuardSlot {
  std::atomic<uintptr_t> key{kEmpty};
  std::atomic<uintptr_t> hi{0};
};
struct GuardTable {
  size_t mask = 0;
  GuardSlot* slots = nullptr;
  GuardTable* older = nullptr;  // retired, kept for readers
};

Lock g_reg_mu;
std::atomic<GuardTable*> g_table{nullptr};
size_t g_reg_live = 0, g_reg_used = 0;  // under g_reg_mu: live keys; live + tombstones
// The page size, cached where a fault handler can read it without a call.
std::atomic<uintptr_t> g_page_mask{0};

KEEL_INTERRUPT_CONTEXT inline size_t guard_hash(uintptr_t key, size_t mask) noexcept {
  return size_t((uint64_t(key) >> 12) * 0x9e3779b97f4a7c15ull >> 20) & mask;
}

// Insert into t (no duplicates; a free slot exists).
void table_put(GuardTable* t, uintptr_t key, uintptr_t hi) noexcept {
  for (size_t i = guard_hash(key, t->mask);; i = (i + 1) & t->mask) {
    const uintptr_t k = t->slots[i].key.load(std::memory_order_relaxed);
    if (k == kEmpty || k == kTomb) {
      t->slots[i].hi.store(hi, std::memory_order_relaxed);
      t->slots[i].key.store(key, std::memory_order_release);
      return;
    }
  }
}

bool guard_register(uintptr_t key, uintptr_t hi) noexcept {
  g_page_mask.store(uintptr_t(os::page_size()) - 1, std::memory_order_relaxed);
  LockGuard<Lock> g(g_reg_mu);
  GuardTable* t = g_table.load(std::memory_order_relaxed);
  if (t == nullptr || (g_reg_used + 1) * 2 > t->mask + 1) {
    size_t cap = 1024;
    while (cap < (g_reg_live + 1) * 4) cap *= 2;
    auto* n = new (std::nothrow) GuardTable;
    GuardSlot* slots = new (std::nothrow) GuardSlot[cap];
    if (n == nullptr || slots == nullptr) {
      delete n;
      delete[] slots;
      return false;
    }
    n->mask = cap - 1;
    n->slots = slots;
    n->older = t;
    if (t != nullptr) {
      for (size_t i = 0; i <= t->mask; ++i) {
        const uintptr_t k = t->slots[i].key.load(std::memory_order_relaxed);
        if (k != kEmpty && k != kTomb) table_put(n, k, t->slots[i].hi.load(std::memory_order_relaxed));
      }
    }
    g_table.store(n, std::memory_order_release);
    t = n;
    g_reg_used = g_reg_live;
  }
  table_put(t, key, hi);
  ++g_reg_live;
  ++g_reg_used;
  return true;
}

void guard_unregister(uintptr_t key) noexcept {
  LockGuard<Lock> g(g_reg_mu);
  GuardTable* t = g_table.load(std::memory_order_relaxed);
  if (t == nullptr) return;
  for (size_t i = guard_hash(key, t->mask);; i = (i + 1) & t->mask) {
    const uintptr_t k = t->slots[i].key.load(std::memory_order_relaxed);
    if (k == kEmpty) return;
    if (k == key) {
      t->slots[i].key.store(kTomb, std::memory_order_release);
      --g_reg_live;
      return;
    }
  }
}

// ------------------------------------------------------------ fault handler
// Decimal digits of v into buf (no NUL); returns the count.
KEEL_INTERRUPT_CONTEXT size_t put_u64(char* buf, uint64_t v) noexcept {
  char d[20];
  size_t n = 0;
  do {
    d[n++] = char('0' + v % 10);
    v /= 10;
  } while (v != 0);
  for (size_t i = 0; i < n; ++i) buf[i] = d[n - 1 - i];
  return n;
}

KEEL_INTERRUPT_CONTEXT size_t put_str(char* buf, size_t at, size_t cap, const char* s) noexcept {
  while (s != nullptr && *s != 0 && at < cap) buf[at++] = *s++;
  return at;
}

// Called by the port on a memory fault of a thread that ran
// stack_fault_thread_init. Returns when the fault is not an overflow of a
// registered guarded stack; otherwise reports it and never returns.
KEEL_INTERRUPT_CONTEXT void on_stack_fault(const os::StackFault& f) noexcept {
  uintptr_t hi = 0;
  uintptr_t guard = 0;
  if (f.addr != 0) {
    guard = f.addr & ~g_page_mask.load(std::memory_order_relaxed);
    hi = guard_lookup(f.addr);
  }
  // Windows reports an exhausted stack (STATUS_STACK_OVERFLOW) without a
  // data address, naming the stack the thread runs on instead: keel's
  // switch keeps that (the TIB's DeallocationStack) at the guard page.
  if (hi == 0 && f.os_overflow && f.stack_lo != 0) {
    guard = f.stack_lo;
    hi = guard_lookup(f.stack_lo);
  }
  if (hi == 0) return;
  // The faulting thread must be running on that stack (or just below it,
  // where a frame larger than the guard page puts sp): a stray pointer from
  // other code into someone's guard page is an ordinary crash.
  constexpr uintptr_t kBelow = 1 << 20;
  if (f.sp != 0 && (f.sp >= hi || f.sp + kBelow < guard)) return;
  const auto* o = reinterpret_cast<const StackOwner*>(hi - kStackOwnerBytes);
  if (o->magic != kStackOwnerMagic) {
    static const char kMsg[] = "fatal error: stack overflow (a guarded stack no goroutine owns)\n";
    os::write_err(kMsg, sizeof kMsg - 1);
    os::abort_process();
  }
  stack_overflow_fatal(o->id, o->file, o->line);
}

}  // namespace

KEEL_INTERRUPT_CONTEXT uintptr_t guard_lookup(uintptr_t addr) noexcept {
  const GuardTable* t = g_table.load(std::memory_order_acquire);
  if (t == nullptr) return 0;
  const uintptr_t key = addr & ~g_page_mask.load(std::memory_order_relaxed);
  if (key <= kTomb) return 0;
  for (size_t i = guard_hash(key, t->mask), n = 0; n <= t->mask; i = (i + 1) & t->mask, ++n) {
    const uintptr_t k = t->slots[i].key.load(std::memory_order_acquire);
    if (k == kEmpty) return 0;
    if (k != key) continue;
    const uintptr_t hi = t->slots[i].hi.load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (t->slots[i].key.load(std::memory_order_relaxed) == key) return hi;
  }
  return 0;
}

KEEL_INTERRUPT_CONTEXT void stack_overflow_fatal(uint64_t id, const char* file, uint32_t line) noexcept {
  // One buffer, one write: the two lines stay together even if other
  // threads are printing. Sized for a long path; longer ones are cut.
  char buf[640];
  constexpr size_t cap = sizeof buf - 1;
  size_t n = put_str(buf, 0, cap, "fatal error: goroutine ");
  n += put_u64(buf + n, id);
  n = put_str(buf, n, cap, " stack overflow\n");
  if (file != nullptr) {
    n = put_str(buf, n, cap, "goroutine ");
    if (n + 20 < cap) n += put_u64(buf + n, id);
    n = put_str(buf, n, cap, " was created at ");
    n = put_str(buf, n, cap - 12, file);
    if (line != 0) {
      n = put_str(buf, n, cap, ":");
      if (n + 10 < cap) n += put_u64(buf + n, line);
    }
    n = put_str(buf, n, cap + 1, "\n");
  }
  os::write_err(buf, n);
  os::abort_process();
}

size_t default_stack_size() noexcept { return g_default.load(std::memory_order_relaxed); }

void set_default_stack_size(size_t size) noexcept {
  if (size < kMinStack) size = kMinStack;
  g_default.store(round_up(size, os::page_size()), std::memory_order_relaxed);
}

size_t stack_size_for(size_t size) noexcept {
  return round_up(size == 0 ? default_stack_size() : (size < kMinStack ? kMinStack : size), os::page_size());
}

// A guarded stack splits its reservation into two mappings (the no-access
// guard and the read-write stack); an unguarded one is a single mapping that
// the kernel may even merge with its neighbours. Guards may use half of the
// process's mapping budget; the other half stays for everything else (heap,
// libraries, thread stacks, pool chunks). Beyond that, stacks rely on the
// canary alone.
//
// Under ThreadSanitizer a mapping costs more: its mmap interceptor maps
// fresh shadow over the new range's shadow, splitting TSan's own shadow
// mapping, so a guarded stack measures four mappings, not two. Guards then
// get an eighth of the budget, which keeps them to the same half.
int64_t guarded_stack_budget() noexcept {
  const int64_t o = g_budget_override.load(std::memory_order_relaxed);
  if (o != kBudgetDefault) return o;
  static const int64_t budget = [] {
    const int64_t maps = os::max_memory_mappings();
#if defined(KEEL_TSAN)
    constexpr int64_t kMapsPerGuarded = 4;
#else
    constexpr int64_t kMapsPerGuarded = 2;
#endif
    return maps < 0 ? int64_t(-1) : maps / (2 * kMapsPerGuarded);
  }();
  return budget;
}

void set_guarded_stack_budget(int64_t budget) noexcept {
  g_budget_override.store(budget < 0 ? int64_t(-1) : budget, std::memory_order_relaxed);
}

void reset_guarded_stack_budget() noexcept { g_budget_override.store(kBudgetDefault, std::memory_order_relaxed); }

int64_t guarded_stacks() noexcept { return g_guarded.load(std::memory_order_relaxed); }

namespace {

bool claim_guard() noexcept {
  const int64_t budget = guarded_stack_budget();
  if (budget < 0) {
    g_guarded.fetch_add(1, std::memory_order_relaxed);
    return true;
  }
  int64_t n = g_guarded.load(std::memory_order_relaxed);
  while (n < budget)
    if (g_guarded.compare_exchange_weak(n, n + 1, std::memory_order_relaxed)) return true;
  return false;
}

bool alloc_own(Stack* s, size_t size, bool guard) noexcept {
  const size_t ps = os::page_size();
  size = stack_size_for(size);
  // Reservations come in granules (64 KiB on Windows): the guard page, the
  // port's overflow headroom (stack_fault_arm) and any rounding slack go
  // below the stack, so frames get at least the size asked for.
  const size_t total = round_up(size + (guard ? ps + os::stack_fault_headroom() : 0), os::alloc_granularity());
  char* base = static_cast<char*>(os::mem_reserve(total));
  if (base == nullptr) return false;
  char* hi = base + total;
  char* lo = guard ? base + ps : base;
  // Commit the whole usable range: on Unix this only flips the protection of
  // a MAP_NORESERVE mapping (no commit charge; a page becomes resident when
  // first touched); on Windows it is charged against the commit limit but
  // still made resident page by page on first touch.
  if (os::mem_commit(lo, size_t(hi - lo)) != os::Error::ok) {
    os::mem_release(base, total);
    return false;
  }
  // Reserved memory is already inaccessible; mem_guard makes it a guard for
  // good (on Windows committed no-access rather than merely reserved).
  void* limit = lo;
  if (guard) {
    os::mem_guard(base, ps);
    // Registered so the fault handler can name the goroutine; without room
    // in the registry the guard still faults, only as a plain crash.
    (void)guard_register(reinterpret_cast<uintptr_t>(base), reinterpret_cast<uintptr_t>(hi));
    if (os::stack_fault_arm(lo, size_t(hi - lo), &limit) != os::Error::ok) limit = lo;
  }
  s->reserved_lo = base;
  s->reserved_size = total;
  s->lo = lo;
  s->hi = hi;
  s->guarded = guard;
  s->chunk = nullptr;
  s->limit = limit == lo ? nullptr : limit;
  s->write_canary();
  return true;
}

}  // namespace

bool stack_alloc_guarded(Stack* s, size_t size) noexcept {
  if (!claim_guard()) return false;
  if (!alloc_own(s, size, true)) {
    g_guarded.fetch_sub(1, std::memory_order_relaxed);
    return false;
  }
  return true;
}

bool stack_alloc(Stack* s, size_t size) noexcept {
  if (stack_alloc_guarded(s, size)) return true;
  return alloc_own(s, size, false);
}

void stack_free(Stack* s) noexcept {
  if (s->reserved_lo == nullptr) return;
  if (s->chunk != nullptr) {
    stack_put(nullptr, s);
    *s = Stack{};
    return;
  }
#if defined(KEEL_ASAN)
  // Frames that never returned (a context that ended by switching away) leave
  // poisoned redzones in the shadow; memory mapped here later must not
  // inherit them.
  __asan_unpoison_memory_region(s->lo, s->size());
#endif
  if (s->guarded) guard_unregister(reinterpret_cast<uintptr_t>(s->reserved_lo));
  os::mem_release(s->reserved_lo, s->reserved_size);
  if (s->guarded) g_guarded.fetch_sub(1, std::memory_order_relaxed);
  *s = Stack{};
}

bool stack_fault_thread_init() noexcept {
  // Install once per process (a racing second install is harmless: the
  // contract replaces the handler with the same one).
  static std::atomic<int> installed{0};
  if (installed.load(std::memory_order_acquire) == 0) {
    if (os::stack_fault_install(&on_stack_fault) != os::Error::ok) return false;
    installed.store(1, std::memory_order_release);
  }
  return os::stack_fault_thread_init() == os::Error::ok;
}

}  // namespace keel::core
