// The core switch: canary, C++ exception state, sanitizer hand-offs around
// the arch switch. The order inside fiber_switch matters: everything that
// reads thread-local state (the exception globals) happens before the arch
// switch, because after it we may be on another thread.
#include "core/fiber.h"

#include "core/fatal.h"

// ---------------------------------------------------------------- sanitizers
// Declared here rather than through <sanitizer/*.h> (core/ includes no
// non-standard header); the signatures are the runtimes' public interface.
#if defined(__SANITIZE_ADDRESS__)
#define KEEL_ASAN 1
#elif defined(__SANITIZE_THREAD__)
#define KEEL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define KEEL_ASAN 1
#elif __has_feature(thread_sanitizer)
#define KEEL_TSAN 1
#endif
#endif

#if defined(KEEL_ASAN)
extern "C" void __sanitizer_start_switch_fiber(void** fake_stack_save, const void* bottom, size_t size);
extern "C" void __sanitizer_finish_switch_fiber(void* fake_stack_save, const void** bottom_old, size_t* size_old);
#endif
#if defined(KEEL_ASAN)
extern "C" void __asan_unpoison_memory_region(void const volatile* addr, size_t size);
#endif
#if defined(KEEL_TSAN)
extern "C" void* __tsan_get_current_fiber(void);
extern "C" void* __tsan_create_fiber(unsigned flags);
extern "C" void __tsan_destroy_fiber(void* fiber);
extern "C" void __tsan_switch_to_fiber(void* fiber, unsigned flags);
#endif

// ------------------------------------------------------- C++ exception state
// The Itanium C++ ABI keeps, per thread, { caughtExceptions, uncaughtExceptions }
// behind __cxa_get_globals() (libstdc++, libc++abi, libcxxrt alike). The
// MSVC runtime keeps its equivalent in an internal per-thread block with no
// public accessor, so there the state stays with the thread.
#if (defined(__GLIBCXX__) || defined(_LIBCPP_VERSION)) && !defined(_MSC_VER)
#define KEEL_CXA_GLOBALS 1
namespace __cxxabiv1 {
struct __cxa_eh_globals;
// Declared without <cxxabi.h>, whose declaration is __attribute__((const)):
// a compiler told that may reuse one thread's answer after a switch.
extern "C" __cxa_eh_globals* __cxa_get_globals() noexcept;
}  // namespace __cxxabiv1
#endif

#if defined(__GNUC__)
#define KEEL_NOINLINE __attribute__((noinline))
#elif defined(_MSC_VER)
#define KEEL_NOINLINE __declspec(noinline)
#else
#define KEEL_NOINLINE
#endif

namespace keel::core {

struct FiberAccess {
  static void start(void* self);
  static void after_switch(Fiber* self) noexcept;
};

namespace {

#if defined(KEEL_CXA_GLOBALS)
struct CxaGlobals {
  void* caught;
  unsigned int uncaught;
};
// Not inlined, so no caller can keep a thread's TLS address across a switch
// (llvm#98479): every switch asks the thread it is on now.
KEEL_NOINLINE CxaGlobals* cxa_globals() noexcept {
  return reinterpret_cast<CxaGlobals*>(__cxxabiv1::__cxa_get_globals());
}
#endif

inline void swap_eh(Fiber::EhState* save, const Fiber::EhState& load) noexcept {
#if defined(KEEL_CXA_GLOBALS)
  CxaGlobals* g = cxa_globals();
  save->caught = g->caught;
  save->uncaught = g->uncaught;
  g->caught = load.caught;
  g->uncaught = load.uncaught;
#else
  (void)save;
  (void)load;
#endif
}

// "goroutine <id> stack overflow" without allocating: we may be on a
// stack with no room left and a heap we can no longer trust.
[[noreturn]] void overflow(uint64_t id) noexcept {
  char buf[64] = "goroutine ";
  char digits[24];
  int n = 0;
  do {
    digits[n++] = char('0' + id % 10);
    id /= 10;
  } while (id != 0);
  int p = 10;
  while (n > 0) buf[p++] = digits[--n];
  const char tail[] = " stack overflow";
  for (char c : tail) buf[p++] = c;  // copies the NUL too
  fatal(buf);
}

}  // namespace

bool fiber_carries_exception_state() noexcept {
#if defined(KEEL_CXA_GLOBALS)
  return true;
#else
  return false;
#endif
}

void Fiber::init_thread(uint64_t id) noexcept {
  destroy();
  id_ = id;
  thread_ = true;
#if defined(KEEL_TSAN)
  tsan_ = __tsan_get_current_fiber();
#endif
}

bool Fiber::create(Fn fn, void* arg, uint64_t id, size_t stack_size) noexcept {
  destroy();
  if (!stack_alloc(&stack_, stack_size)) return false;
  fn_ = fn;
  arg_ = arg;
  id_ = id;
  thread_ = false;
  eh_ = EhState{};
  asan_fake_ = nullptr;
  asan_bottom_ = stack_.lo;
  asan_size_ = stack_.size();
  const arch::ContextStack cs{stack_.lo, stack_.hi, stack_.reserved_lo};
  keel_context_make(&ctx_, &cs, &FiberAccess::start, this);
#if defined(KEEL_TSAN)
  tsan_ = __tsan_create_fiber(0);
#endif
  return true;
}

void Fiber::restart(Fn fn, void* arg, uint64_t id) noexcept {
  fn_ = fn;
  arg_ = arg;
  id_ = id;
  eh_ = EhState{};
  asan_fake_ = nullptr;
#if defined(KEEL_ASAN)
  // The previous run ended by switching away from frames that never
  // returned; their redzones are still poisoned.
  __asan_unpoison_memory_region(stack_.lo, stack_.size());
#endif
  *static_cast<volatile uint64_t*>(stack_.lo) = kStackCanary;
  const arch::ContextStack cs{stack_.lo, stack_.hi, stack_.reserved_lo};
  keel_context_make(&ctx_, &cs, &FiberAccess::start, this);
}

void Fiber::destroy() noexcept {
#if defined(KEEL_TSAN)
  if (tsan_ != nullptr && !thread_) __tsan_destroy_fiber(tsan_);
#endif
  tsan_ = nullptr;
  stack_free(&stack_);
  thread_ = false;
  ctx_ = arch::Context{};
}

// Runs on the new stack, entered from keel_context_start.
void FiberAccess::start(void* p) {
  auto* self = static_cast<Fiber*>(p);
  after_switch(self);
  self->fn_(self->arg_);
  fatal("a fiber's entry function returned instead of ending with fiber_exit");
}

// First thing on the resumed side of every switch.
void FiberAccess::after_switch(Fiber* self) noexcept {
#if defined(KEEL_ASAN)
  const void* bottom = nullptr;
  size_t size = 0;
  __sanitizer_finish_switch_fiber(self->asan_fake_, &bottom, &size);
  // ASan tells us the bounds of the stack we came from: that is how an
  // adopted thread stack, whose bounds keel never knew, gets them.
  Fiber* from = self->from_;
  if (from != nullptr && from->thread_) {
    from->asan_bottom_ = bottom;
    from->asan_size_ = size;
  }
#else
  (void)self;
#endif
}

void fiber_switch(Fiber* from, Fiber* to) noexcept {
  if (!from->thread_ && !from->stack_.canary_ok()) overflow(from->id_);
  swap_eh(&from->eh_, to->eh_);
  to->from_ = from;
#if defined(KEEL_ASAN)
  __sanitizer_start_switch_fiber(&from->asan_fake_, to->asan_bottom_, to->asan_size_);
#endif
#if defined(KEEL_TSAN)
  __tsan_switch_to_fiber(to->tsan_, 0);
#endif
  keel_context_switch(&from->ctx_, &to->ctx_);
  FiberAccess::after_switch(from);
}

void fiber_exit(Fiber* from, Fiber* to) noexcept {
  if (!from->thread_ && !from->stack_.canary_ok()) overflow(from->id_);
  swap_eh(&from->eh_, to->eh_);
  to->from_ = from;
#if defined(KEEL_ASAN)
  // A null save slot tells ASan this stack is finished: it frees its fake
  // frames instead of keeping them for a resume that never comes.
  __sanitizer_start_switch_fiber(nullptr, to->asan_bottom_, to->asan_size_);
#endif
#if defined(KEEL_TSAN)
  __tsan_switch_to_fiber(to->tsan_, 0);
#endif
  keel_context_switch(&from->ctx_, &to->ctx_);
  fatal("a finished fiber was resumed");
}

}  // namespace keel::core
