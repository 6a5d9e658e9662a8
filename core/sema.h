// The semaphore table (Go's runtime/sema.go): sleep and wakeup keyed by the
// address of a 32-bit counter, for the contended paths of keel::Mutex,
// RWMutex, WaitGroup and Once, and the ticket-based notify list of keel::Cond.
//
// Think of these less as semaphores than as a futex that never loses a
// wakeup: every semacquire is paired with one semrelease even if the release
// comes first. A fixed table of buckets (docs/SYNC.md) holds, per bucket, a
// runtime lock, a treap of the distinct addresses that have waiters and, for
// each address, a FIFO of waiters. Nothing is allocated per object or per
// wait: a waiter's node lives on the parked G's own stack (keel stacks never
// move), and an uncontended release touches no lock.
//
// Everything parks through core/park.h, so it works alike on goroutines and
// plain OS threads.
#pragma once

#include <cstdint>

#include "core/park.h"
#include "keel/sync.h"  // keel::detail::NotifyList

namespace keel::core {

// Wait until *addr > 0, then decrement it. With lifo the caller queues at the
// head of addr's waiters instead of the tail (a Mutex waiter that has already
// waited once goes first). `reason` shows in goroutine dumps. *addr is only
// ever accessed atomically, here and by the callers.
void semacquire(uint32_t* addr, bool lifo, WaitReason reason) noexcept;

// Increment *addr and wake the oldest waiter on addr, if any. With handoff
// the unit is given to that waiter directly (it cannot be taken by a running
// caller of semacquire in between) and the caller yields so the waiter runs
// next: Mutex's starvation mode.
void semrelease(uint32_t* addr, bool handoff) noexcept;

// Try to take one unit without waiting.
bool semtryacquire(uint32_t* addr) noexcept;

// The notify list behind keel::Cond: each waiter takes a ticket
// (notify_list_add) before releasing the user's lock, then waits for it
// (notify_list_wait). notify_one wakes the holder of the oldest unnotified
// ticket; notify_all every ticket taken so far. A notification sent between
// add and wait is not lost: wait then returns at once.
using NotifyList = keel::detail::NotifyList;
uint32_t notify_list_add(NotifyList* l) noexcept;
void notify_list_wait(NotifyList* l, uint32_t ticket) noexcept;
void notify_list_notify_one(NotifyList* l) noexcept;
void notify_list_notify_all(NotifyList* l) noexcept;

// For tests: the number of goroutines/threads waiting in addr's bucket (all
// addresses that hash there), read without the lock.
uint32_t sema_bucket_waiters(const void* addr) noexcept;

}  // namespace keel::core
