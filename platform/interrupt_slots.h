// Per-thread interruption slots and the request/acknowledge protocol, shared
// by every backend (platform/posix/interrupt_signal.cpp,
// platform/windows/interrupt_suspend.cpp). Target-independent: no OS header.
//
// Each registered thread owns one slot in a fixed table (no allocation, so a
// signal handler can use it). Generations are uint32_t counters compared with
// wrap-around:
//
//   requested  newest request (interrupt() increments it and returns it as the ticket)
//   claimed    newest generation claimed, by a handler run or by a withdrawal;
//              claiming is a CAS, so a request is either handled or withdrawn, never both
//   handled    newest generation claimed by a handler run
//   acked      newest generation whose claim has completed (handler returned,
//              or withdrawal recorded)
//
// A ticket g is pending while acked < g; then handled if handled >= g (a
// handler started after g was requested), otherwise impossible.
#pragma once

#include <cstdint>

#include "platform/os.h"

#if defined(_MSC_VER) && !defined(__clang__)
#include <atomic>
#endif

namespace keel::os::islot {

// Atomics on plain fields through compiler builtins: they expand inline, so
// signal-handler code marked KEEL_INTERRUPT_CONTEXT stays uninstrumented
// under TSan and calls nothing. MSVC has neither the builtins nor TSan.
#if defined(_MSC_VER) && !defined(__clang__)
template <class T> inline T ld(const T* p) { return std::atomic_ref<T>(*const_cast<T*>(p)).load(); }
template <class T> inline void st(T* p, T v) { std::atomic_ref<T>(*p).store(v); }
template <class T> inline T xchg(T* p, T v) { return std::atomic_ref<T>(*p).exchange(v); }
template <class T> inline bool cas(T* p, T* expected, T desired) {
  return std::atomic_ref<T>(*p).compare_exchange_weak(*expected, desired);
}
template <class T> inline T add(T* p, T v) { return std::atomic_ref<T>(*p).fetch_add(v) + v; }
template <class T> inline T sub(T* p, T v) { return std::atomic_ref<T>(*p).fetch_sub(v) - v; }
#else
#define KEEL_ISLOT_INLINE static inline __attribute__((always_inline))
template <class T> KEEL_ISLOT_INLINE T ld(const T* p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
template <class T> KEEL_ISLOT_INLINE void st(T* p, T v) { __atomic_store_n(p, v, __ATOMIC_SEQ_CST); }
template <class T> KEEL_ISLOT_INLINE T xchg(T* p, T v) { return __atomic_exchange_n(p, v, __ATOMIC_SEQ_CST); }
template <class T> KEEL_ISLOT_INLINE bool cas(T* p, T* expected, T desired) {
  return __atomic_compare_exchange_n(p, expected, desired, true, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}
template <class T> KEEL_ISLOT_INLINE T add(T* p, T v) { return __atomic_add_fetch(p, v, __ATOMIC_SEQ_CST); }
template <class T> KEEL_ISLOT_INLINE T sub(T* p, T v) { return __atomic_sub_fetch(p, v, __ATOMIC_SEQ_CST); }
#undef KEEL_ISLOT_INLINE
#endif

// a < b in generation order (wrap-around safe).
KEEL_INTERRUPT_CONTEXT inline bool before(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) < 0; }

struct alignas(64) Slot {
  uint64_t tid;         // the owner's kernel thread id; 0 = free
  uint32_t requested;
  uint32_t claimed;
  uint32_t handled;
  uint32_t acked;
  uint32_t pending;     // posix: a signal is in flight (Go #37741: at most one per thread)
  uint32_t senders;     // interrupt() calls between finding the slot and sending
  uint32_t open;        // 1 while the owner accepts requests (0 when free, starting or leaving)
  uint32_t blocked;     // windows: interrupt_block(true)
  uintptr_t os_handle;  // windows: the slot's own thread HANDLE; darwin: pthread_t
  uintptr_t os_aux;     // windows: the owner's TEB (its NT_TIB has the stack limits)
  uintptr_t stack_lo;   // the owner's thread stack, for push_call's headroom check
  uintptr_t stack_hi;   //   (0, 0 when unknown)
};

// Room push_call needs below the interrupted sp on a stack whose bounds are
// known: the pushed words or saved context (< 5 KiB), the trampoline's save
// area (XSAVE: < 3 KiB without AMX) and the injected function's own frames.
constexpr uintptr_t kPushCallHeadroom = 32 * 1024;

// Owner side. claim returns null when the table is full (no_resources).
Slot* claim(uint64_t tid, uintptr_t os_handle, uintptr_t os_aux, uintptr_t stack_lo, uintptr_t stack_hi) noexcept;
// Stop new requests, wait for senders in flight, withdraw what is left
// (acknowledged impossible), free the slot. The owner must already have made
// sure no handler can run for it any more (signal blocked / suspend lock held).
void release(Slot* s) noexcept;

// Sender side. find returns the slot registered for tid, or null.
Slot* find(uint64_t tid) noexcept;
// Pin s against release while sending; false if it is not (or no longer) tid's.
bool begin_send(Slot* s, uint64_t tid) noexcept;
void end_send(Slot* s) noexcept;
uint32_t new_request(Slot* s) noexcept;

// Handler side (async-signal-safe). claim_for_handler: true when a request
// is outstanding; *gen is the newest one, claimed for this run.
bool claim_for_handler(Slot* s, uint32_t* gen) noexcept;
void handler_done(Slot* s, uint32_t gen) noexcept;

// Withdraw every request up to ticket that nothing has claimed yet; true if
// this call claimed ticket (it is then acknowledged impossible).
bool withdraw(Slot* s, uint32_t ticket) noexcept;

}  // namespace keel::os::islot
