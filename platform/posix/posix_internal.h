// Hooks the shared pthread code (platform/posix) needs from each Unix port.
#pragma once

#include <pthread.h>

#include <cstdint>
#include <cstring>

namespace keel::os::posix {

// The calling thread's kernel thread id (Linux gettid, Darwin
// pthread_threadid_np). Never 0.
uint64_t kernel_tid_self() noexcept;

// Backend-private word stored in Thread::aux for thread t (Darwin: its Mach
// port, needed by thread_info; Linux: 0).
uintptr_t thread_aux(pthread_t t) noexcept;

// pthread_t is an integer on Linux and a pointer on Darwin; Thread::native
// stores it as a word either way.
static_assert(sizeof(pthread_t) <= sizeof(uintptr_t));
inline uintptr_t to_word(pthread_t t) noexcept {
  uintptr_t w = 0;
  std::memcpy(&w, &t, sizeof t);
  return w;
}
inline pthread_t to_pthread(uintptr_t w) noexcept {
  pthread_t t;
  std::memcpy(&t, &w, sizeof t);
  return t;
}

}  // namespace keel::os::posix
