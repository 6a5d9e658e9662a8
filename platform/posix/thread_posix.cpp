// Thread lifecycle on pthreads, shared by Linux and Darwin.
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>

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
  std::atomic<uint64_t> tid{0};
  std::atomic<uint32_t> ready{0};  // futex word: 1 once tid is published
  std::atomic<int> refs{2};        // parent and child; the last one out frees the block
};

void release(StartBlock* b) {
  if (b->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete b;
}

void* thread_entry(void* p) {
  auto* b = static_cast<StartBlock*>(p);
  ThreadFn fn = b->fn;
  void* arg = b->arg;
  if (b->name != nullptr) thread_set_name(b->name);
  b->tid.store(posix::kernel_tid_self(), std::memory_order_relaxed);
  b->ready.store(1, std::memory_order_release);
  futex_wake(&b->ready, 1);
  release(b);
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
  // for it (parked, not spinning) so a caller can use the handle (CPU clock,
  // signals) at once.
  while (b->ready.load(std::memory_order_acquire) == 0) futex_wait(&b->ready, 0, -1);
  const uint64_t tid = b->tid.load(std::memory_order_relaxed);
  release(b);
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

int64_t process_cpu_time_ns() noexcept {
  timespec ts;
  if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) return -1;
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace keel::os
