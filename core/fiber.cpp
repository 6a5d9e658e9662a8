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
// (llvm#98479): every switch asks the thread it is on now. The address is
// fixed for the thread's life, so it is looked up once per thread and then
// read from our own thread-local (a call through the PLT into the C++
// runtime on every switch cost ~4% of a gosched round trip).
KEEL_NOINLINE CxaGlobals* cxa_globals() noexcept {
  static thread_local CxaGlobals* cached = nullptr;
  CxaGlobals* g = cached;
  if (g == nullptr) {
    g = reinterpret_cast<CxaGlobals*>(__cxxabiv1::__cxa_get_globals());
    cached = g;
  }
  return g;
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

// The canary path of overflow reporting (a guard-page hit is reported by
// the fault handler in stack.cpp, with the same words).
[[noreturn]] void overflow(const Fiber* f) noexcept { stack_overflow_fatal(f->id(), f->site_file(), f->site_line()); }

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
  // Best effort: without it a guard-page hit is a plain crash, and the
  // canary still reports what the guard missed.
  (void)stack_fault_thread_init();
}

bool Fiber::create(Fn fn, void* arg, uint64_t id, size_t stack_size) noexcept {
  destroy();
  if (!stack_alloc(&stack_, stack_size)) return false;
  return start_on_stack(fn, arg, id);
}

bool Fiber::create_on(const Stack& s, Fn fn, void* arg, uint64_t id) noexcept {
  if (!s.valid() || s.size() < 2 * kStackOwnerBytes) return false;
  destroy();
  stack_ = s;
  stack_.write_canary();
  return start_on_stack(fn, arg, id);
}

bool Fiber::start_on_stack(Fn fn, void* arg, uint64_t id) noexcept {
  start_context(fn, arg, id);
#if defined(KEEL_TSAN)
  tsan_ = __tsan_create_fiber(0);
#endif
  return true;
}

void Fiber::start_context(Fn fn, void* arg, uint64_t id) noexcept {
  fn_ = fn;
  arg_ = arg;
  id_ = id;
  thread_ = false;
  eh_ = EhState{};
  asan_fake_ = nullptr;
  asan_bottom_ = stack_.lo;
  asan_size_ = stack_.size();
  write_owner();
  // The context starts below the owner record.
  const arch::ContextStack cs{stack_.limit != nullptr ? stack_.limit : stack_.lo,
                              static_cast<char*>(stack_.hi) - kStackOwnerBytes, stack_.reserved_lo};
  keel_context_make(&ctx_, &cs, &FiberAccess::start, this);
}

void Fiber::write_owner() noexcept {
  if (!stack_.valid()) return;
  StackOwner* o = stack_owner(stack_);
  o->id = id_;
  o->file = site_file_;
  o->line = site_line_;
  o->reserved = 0;
  o->magic = kStackOwnerMagic;
}

void Fiber::set_site(const char* file, uint32_t line) noexcept {
  site_file_ = file;
  site_line_ = line;
  if (!thread_) write_owner();
}

void Fiber::restart(Fn fn, void* arg, uint64_t id) noexcept {
  unpoison_dead_frames();
  stack_.write_canary();
  // Same stack, same TSan fiber: only the context starts over.
  start_context(fn, arg, id);
}

// Under ASan, frames that never returned (the ones a finished fiber left by
// switching away, all above its last saved sp) keep poisoned redzones; the
// next user of the stack must not inherit them. Below that sp, frames
// returned or were unwound (ASan clears those itself), so only [sp, hi) is
// cleared — clearing all 256 KiB would make 32 KiB of shadow resident per
// stack.
void Fiber::unpoison_dead_frames() noexcept {
#if defined(KEEL_ASAN)
  if (stack_.valid()) {
    char* lo = static_cast<char*>(stack_.lo);
    char* hi = static_cast<char*>(stack_.hi);
    char* sp = static_cast<char*>(ctx_.sp);
    if (sp == nullptr || sp < lo || sp > hi) sp = lo;
    __asan_unpoison_memory_region(sp, size_t(hi - sp));
  }
#endif
}

Stack Fiber::release_stack() noexcept {
#if defined(KEEL_TSAN)
  if (tsan_ != nullptr && !thread_) __tsan_destroy_fiber(tsan_);
#endif
  tsan_ = nullptr;
  unpoison_dead_frames();
  Stack s = stack_;
  stack_ = Stack{};
  thread_ = false;
  ctx_ = arch::Context{};
  return s;
}

void Fiber::destroy() noexcept {
  Stack s = release_stack();
  stack_free(&s);
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
  if (!from->thread_ && !from->stack_.canary_ok()) overflow(from);
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
  if (!from->thread_ && !from->stack_.canary_ok()) overflow(from);
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
