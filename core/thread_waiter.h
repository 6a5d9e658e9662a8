// The per-thread parking record of the semaphore flavour (Go keeps one per M:
// m.waitsema and m.nextwaitm).
#pragma once

#include <atomic>
#include <cstdint>

#include "platform/os.h"

namespace keel::core {

struct alignas(8) ThreadWaiter {
  os::Sema sema;                     // the thread's own semaphore
  ThreadWaiter* next = nullptr;      // LockSema's waiter stack
  std::atomic<uint32_t> handed{0};   // LockSema: 1 = the lock was handed to this waiter
};

// The calling thread's record, created on first use and destroyed at thread
// exit. Not inlined on purpose: a goroutine may migrate between threads, and
// compilers cache thread-local addresses across calls (DESIGN.md §3).
ThreadWaiter* this_thread_waiter() noexcept;

}  // namespace keel::core
