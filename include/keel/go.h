// Goroutines: keel::run, keel::go and the scheduler's public knobs
// (docs/SCHEDULER.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <source_location>
#include <type_traits>
#include <utility>

namespace keel {

// Options for one goroutine.
struct GoOptions {
  size_t stack_size = 0;  // usable stack bytes; 0: the default (256 KiB, see set_default_stack_size)
};

namespace detail {
// The type-erased entry: fn(arg) runs the callable, destroy(arg) frees it.
// `site` is where go() was called ("file:line"), a static string.
struct GoFn {
  void (*run)(void* arg);
  void (*destroy)(void* arg) noexcept;
  void* arg;
};
void go_start(GoFn fn, const GoOptions& opt, const char* file, uint32_t line);
int run_main(GoFn fn, int* result, const char* file, uint32_t line);

template <class F>
GoFn make_fn(F&& f) {
  using Fn = std::decay_t<F>;
  auto* p = new Fn(std::forward<F>(f));
  return GoFn{[](void* a) { (*static_cast<Fn*>(a))(); }, [](void* a) noexcept { delete static_cast<Fn*>(a); }, p};
}
}  // namespace detail

// Start f() as a new goroutine (Go's `go f()`). Any callable taking no
// arguments; it is moved (or copied) into the goroutine. Callable from a
// goroutine or from a plain thread; the first call starts the runtime. An
// exception escaping f is a fatal error naming the goroutine and this call's
// source location.
template <class F>
void go(F&& f, std::source_location loc = std::source_location::current()) {
  static_assert(std::is_invocable_v<std::decay_t<F>&>, "keel::go needs a callable taking no arguments");
  detail::go_start(detail::make_fn(std::forward<F>(f)), GoOptions{}, loc.file_name(), loc.line());
}
template <class F>
void go(const GoOptions& opt, F&& f, std::source_location loc = std::source_location::current()) {
  static_assert(std::is_invocable_v<std::decay_t<F>&>, "keel::go needs a callable taking no arguments");
  detail::go_start(detail::make_fn(std::forward<F>(f)), opt, loc.file_name(), loc.line());
}

// Run main() as the main goroutine, with the calling thread as one of the
// runtime's threads, and return when main returns: main's int, or 0 for a
// void main. As in Go, the other goroutines stop then: none is scheduled
// again until the next keel::run (goroutines already running finish their
// current stretch up to their next scheduling point). One keel::run at a
// time; calling it from a goroutine is a fatal error.
template <class F>
int run(F&& main, std::source_location loc = std::source_location::current()) {
  int result = 0;
  auto body = [&main, &result] {
    if constexpr (std::is_void_v<std::invoke_result_t<F&>>) {
      main();
    } else {
      result = static_cast<int>(main());
    }
  };
  detail::run_main(detail::GoFn{[](void* a) { (*static_cast<decltype(body)*>(a))(); }, [](void*) noexcept {}, &body},
                   &result, loc.file_name(), loc.line());
  return result;
}

// Yield the processor: the caller goes to the back of the global run queue
// and resumes later (Go's runtime.Gosched). On a plain thread: yields the
// OS thread.
void gosched() noexcept;

// End the calling goroutine after unwinding its stack, so destructors and
// scope guards of every frame run (Go's runtime.Goexit). It unwinds by
// throwing an exception no user type derives from: a catch (...) on the way
// must rethrow it (a handler that swallows it is a fatal error), and a
// noexcept frame on the way terminates the program. Calling goexit on a
// plain thread is a fatal error.
[[noreturn]] void goexit();

// Wire the calling goroutine to its current OS thread: until the matching
// number of unlock_os_thread calls, it runs only on that thread and no other
// goroutine runs there. Counted, like Go's LockOSThread. On a plain thread
// both are no-ops (it is its own thread already).
void lock_os_thread() noexcept;
void unlock_os_thread() noexcept;

// Goroutines that exist now (running, runnable or blocked; plain threads are
// not goroutines).
int64_t num_goroutine() noexcept;
// The calling goroutine's id (main goroutine 1, then increasing), 0 on a
// plain thread. For diagnostics: do not build goroutine-local storage on it.
uint64_t goroutine_id() noexcept;

// The number of Ps (processors running goroutines at once). Default: the
// KEEL_MAXPROCS environment variable, else the CPU count. set_maxprocs
// takes effect only before the runtime starts (first go() or run()); it
// returns false afterwards.
int maxprocs() noexcept;
bool set_maxprocs(int n) noexcept;

// Default usable stack size of new goroutines (rounded up to pages, at least
// 16 KiB).
void set_default_stack_size(size_t bytes) noexcept;

}  // namespace keel
