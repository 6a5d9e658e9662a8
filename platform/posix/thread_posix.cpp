// Thread lifecycle on pthreads, shared by Linux and Darwin.
#include <errno.h>
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <climits>
#include <new>

#include "platform/os.h"
#include "platform/posix/posix_internal.h"

namespace keel::os {
namespace {

constexpr size_t kDefaultStack = 256 * 1024;
constexpr size_t kStackRound = 16 * 1024;  // Darwin requires a page multiple; 16 KiB covers arm64 pages

struct StartBlock {
  ThreadFn fn;
  void* arg;
  const char* name;
  // The child publishes its kernel id last; after that it never touches the
  // block, so the parent may free it as soon as it reads a nonzero id.
  std::atomic<uint64_t> tid{0};
};

void* thread_entry(void* p) {
  auto* b = static_cast<StartBlock*>(p);
  ThreadFn fn = b->fn;
  void* arg = b->arg;
  if (b->name != nullptr) thread_set_name(b->name);
  b->tid.store(posix::kernel_tid_self(), std::memory_order_release);
  fn(arg);
  return nullptr;
}

thread_local uint64_t t_tid = 0;

}  // namespace

Error thread_start(Thread* out, ThreadFn fn, void* arg, const ThreadOptions& opts) noexcept {
  if (out == nullptr || fn == nullptr) return Error::invalid_argument;
  auto* b = new (std::nothrow) StartBlock{fn, arg, opts.name};
  if (b == nullptr) return Error::no_resources;

  size_t stack = opts.stack_size != 0 ? opts.stack_size : kDefaultStack;
  if (stack < size_t(PTHREAD_STACK_MIN)) stack = PTHREAD_STACK_MIN;
  stack = (stack + kStackRound - 1) / kStackRound * kStackRound;

  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, stack);
  pthread_t t;
  int rc = pthread_create(&t, &attr, thread_entry, b);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    delete b;
    return rc == EAGAIN ? Error::no_resources : Error::unknown;
  }
  // The kernel id is only knowable from inside the new thread on Linux; wait
  // for it so a caller can use the handle (CPU clock, signals) at once.
  uint64_t tid;
  for (int spins = 0; (tid = b->tid.load(std::memory_order_acquire)) == 0; ++spins) {
    if (spins < 64) sched_yield();
    else sleep_ns(20'000);
  }
  delete b;
  out->native = posix::to_word(t);
  out->id = tid;
  out->aux = posix::thread_aux(t);
  return Error::ok;
}

Error thread_join(Thread t) noexcept {
  // pthread_join on a stale pthread_t is undefined behaviour, so only the
  // zero handle can be rejected reliably; docs/PORTING.md says so.
  if (!t.valid() || t.native == 0) return Error::invalid_argument;
  int rc = pthread_join(posix::to_pthread(t.native), nullptr);
  if (rc == ESRCH) return Error::no_such_thread;
  if (rc != 0) return Error::invalid_argument;
  return Error::ok;
}

uint64_t thread_id() noexcept {
  // Cached: gettid is a syscall and goroutine dumps ask often.
  if (t_tid == 0) t_tid = posix::kernel_tid_self();
  return t_tid;
}

Thread thread_self() noexcept {
  pthread_t self = pthread_self();
  Thread t;
  t.native = posix::to_word(self);
  t.id = thread_id();
  t.aux = posix::thread_aux(self);
  return t;
}

void thread_yield() noexcept { sched_yield(); }

}  // namespace keel::os
