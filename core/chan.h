// The runtime channel (Go's runtime/chan.go and select.go): the type-erased
// core behind keel::Chan<T> and keel::select (include/keel/chan.h declares
// the entry points in keel::detail; docs/CHANNELS.md has the algorithm).
//
// An hchan is a ring buffer of `cap` elements, a queue of blocked senders and
// one of blocked receivers, a closed flag and a runtime Lock protecting all
// of it. A blocked goroutine (or plain thread) is a ChanWaiter on its own
// stack (keel stacks never move), linked into one queue — or, for a select,
// one ChanWaiter per case, each in its channel's queue, sharing one
// SelectState whose `done` word the first completer claims.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "core/lock.h"
#include "core/park.h"
#include "keel/chan.h"

namespace keel::detail {

struct ChanWaiter;

// One blocked select: the first channel operation to CAS done 0 → 1 owns it
// and records itself as the winner; every other channel skips (and drops) its
// waiters for this select.
struct SelectState {
  std::atomic<uint32_t> done{0};
  ChanWaiter* winner = nullptr;  // written by the claimer under its channel's lock
};

// Go's sudog. All fields but g/elem/sel are protected by the lock of the
// channel whose queue holds (or held) it.
struct ChanWaiter {
  core::G* g = nullptr;
  // Sender: the value to move from. Receiver: raw storage to construct into.
  void* elem = nullptr;
  SelectState* sel = nullptr;  // null for a plain send/recv
  ChanWaiter* prev = nullptr;
  ChanWaiter* next = nullptr;
  ChanWaiter* wake_next = nullptr;  // close's list of waiters to ready after unlocking
  bool queued = false;              // in a queue now (a skipped select waiter is dropped early)
  // Set by whoever dequeued and completed this waiter: true = the value was
  // passed, false = the channel was closed.
  bool success = false;
};

struct WaitQ {
  ChanWaiter* first = nullptr;
  ChanWaiter* last = nullptr;
  size_t n = 0;

  void enqueue(ChanWaiter* w) noexcept;
  // The oldest waiter that can still complete (see dequeue in chan.cpp), or null.
  ChanWaiter* dequeue() noexcept;
  void remove(ChanWaiter* w) noexcept;
};

struct hchan {
  std::atomic<uint32_t> refs{1};
  core::Lock lock;
  const ElemOps* ops = nullptr;
  size_t stride = 0;   // element size rounded up to its alignment
  size_t dataqsiz = 0; // capacity
  // Buffered elements. Written under the lock; atomic so len() may read it
  // without the lock.
  std::atomic<size_t> qcount{0};
  size_t sendx = 0;  // next slot to fill
  size_t recvx = 0;  // next slot to take
  unsigned char* buf = nullptr;
  bool closed = false;
  WaitQ recvq;
  WaitQ sendq;

  void* slot(size_t i) noexcept { return buf + i * stride; }
};

}  // namespace keel::detail

namespace keel::core {

using hchan = keel::detail::hchan;

// For tests: the number of waiters queued on c now (read under its lock).
// A select that has completed leaves none behind on its other channels.
struct ChanWaiterCounts {
  size_t senders;
  size_t receivers;
};
ChanWaiterCounts chan_waiter_counts(hchan* c) noexcept;

}  // namespace keel::core
