// Thread interruption on Windows: SuspendThread → GetThreadContext (which
// waits for the asynchronous suspend to complete) → handler →
// SetThreadContext (CONTEXT_CONTROL only: rip, rsp) → ResumeThread.
//
// Locking discipline (Go's preemptM, runtime/os_windows.go):
//  - One global suspend lock is held across every suspend/resume pair, so
//    two threads never suspend each other (each would wait for the other
//    forever).
//  - Nothing else is locked while a thread is suspended: it may hold any
//    lock — the heap's, the loader's, a CRT lock — so the handler and
//    push_call make no call that could take one (no allocation, no
//    RtlPcToFileHeader, no stdio; push_call reads stack limits from the
//    target's TEB and asks only VirtualQuery, a kernel call).
//  - The process exit path takes the lock and never releases it (Go
//    #35775): a thread suspended by a sender that ExitProcess then kills
//    would stay suspended inside ExitProcess forever.
//  - push_call refuses while the context shows the thread inside an
//    exception or a kernel service (Go #79249): that context is not safe to
//    modify. Where Windows cannot say (Wine), it refuses unless the thread
//    is executing a mapped image other than ntdll.
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>

#include <cstdlib>

#include "platform/arch/interrupt_arch.h"
#include "platform/interrupt_slots.h"
#include "platform/os.h"
#include "platform/windows/win_internal.h"

namespace keel::os {
namespace {

constexpr uint32_t kPushed = 1;  // InterruptContext::flags: push_call already done

InterruptHandler g_handler = nullptr;
uint32_t g_installed = 0;
uint32_t g_lock_owner = 0;  // the suspend lock: owning thread id, 0 = free
uint32_t g_lock_waiters = 0;  // threads spinning for it (a fairness hint)
uint32_t g_exiting = 0;     // the exit path began: no new interruptions
uint32_t g_exit_holds = 0;  // the exit path owns the suspend lock for good

// The registering thread's slot. (Never touched while a thread is
// suspended: mingw's thread_local is emutls, whose first access in a
// thread may allocate.)
thread_local islot::Slot* t_slot = nullptr;

// What InterruptContext::native points to during a handler run: the
// target's context and slot (push_call needs its handle and stack bounds).
struct Suspended {
  CONTEXT context;
  islot::Slot* slot;
};

// A registered thread's slot is released at its exit through FLS, handed
// the slot itself: a thread_local destructor would run after mingw's emutls
// freed t_slot (win::thread_exit_slot).
void release_slot(islot::Slot* s) noexcept;
void WINAPI release_slot_at_exit(void* s) noexcept {
  if (s != nullptr) release_slot(static_cast<islot::Slot*>(s));
}
unsigned long slot_exit_fls() noexcept {
  static const unsigned long slot = win::thread_exit_slot(&release_slot_at_exit);
  return slot;
}

void pause_round(int round) noexcept {
  if (round < 64) YieldProcessor();
  else if (round < 2000) SwitchToThread();
  else Sleep(1);
}

// A holder keeps the lock for one suspend/handler/resume: microseconds
// natively, ~0.25 ms (p99 ~4 ms) under Wine. Fails once the process exits.
bool lock_suspend() noexcept {
  const uint32_t me = GetCurrentThreadId();
  bool waiting = false;
  bool ok = false;
  for (int round = 0;; ++round) {
    if (islot::ld(&g_exiting) != 0) break;
    uint32_t free = 0;
    if (islot::cas(&g_lock_owner, &free, me)) {
      if (islot::ld(&g_exiting) == 0) {
        ok = true;
      } else {
        islot::st(&g_lock_owner, 0u);  // the exit path is waiting for it
      }
      break;
    }
    if (!waiting) {
      waiting = true;
      islot::add(&g_lock_waiters, 1u);
    }
    pause_round(round);
  }
  if (waiting) islot::sub(&g_lock_waiters, 1u);
  return ok;
}

// A sender that interrupts in a loop would otherwise take the lock again
// before a waiter wakes up (a CAS lock is not fair): give waiters a turn.
void unlock_suspend() noexcept {
  islot::st(&g_lock_owner, 0u);
  if (islot::ld(&g_lock_waiters) != 0) SwitchToThread();
}

// For deregistration: the lock, or nothing once the exit path holds it for
// good (no sender can run again, so none can race with us).
bool lock_for_release() noexcept {
  const uint32_t me = GetCurrentThreadId();
  for (int round = 0;; ++round) {
    uint32_t free = 0;
    if (islot::cas(&g_lock_owner, &free, me)) return true;
    if (islot::ld(&g_exit_holds) != 0) return false;
    pause_round(round);
  }
}

void release_slot(islot::Slot* s) noexcept {
  const bool locked = lock_for_release();
  const HANDLE h = reinterpret_cast<HANDLE>(s->os_handle);
  islot::release(s);
  if (locked) unlock_suspend();
  CloseHandle(h);
}

void exit_hook() { win::interrupt_lock_for_exit(); }

// GCC 12 warns about mingw's NtCurrentTeb (a gs-relative read it models as
// an out-of-bounds array access); the read itself is what Windows defines.
uintptr_t current_teb() noexcept {
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Warray-bounds"
#endif
  return reinterpret_cast<uintptr_t>(NtCurrentTeb());
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
}

struct Range {
  uintptr_t lo = 0, hi = 0;
};
Range g_ntdll;

Range module_range(const wchar_t* name) noexcept {
  Range r;
  auto base = reinterpret_cast<uintptr_t>(GetModuleHandleW(name));
  if (base == 0) return r;
  auto dos = reinterpret_cast<const IMAGE_DOS_HEADER*>(base);
  auto nt = reinterpret_cast<const IMAGE_NT_HEADERS*>(base + dos->e_lfanew);
  r.lo = base;
  r.hi = base + nt->OptionalHeader.SizeOfImage;
  return r;
}

// Redirect only a thread that is executing a mapped PE image other than
// ntdll: ntdll holds the system-call stubs (a thread stopped there is in, or
// entering, a kernel service), and code outside any image is either JIT
// code or, under Wine, its Unix side (the syscall dispatcher in ntdll.so):
// redirecting a thread stopped there crashed Wine 8 (docs/DECISIONS.md).
// VirtualQuery is safe while the target is suspended: a kernel call on
// Windows; under Wine its lock is only held with signals blocked, so a
// suspended thread never holds it.
bool injectable_pc(uintptr_t pc) noexcept {
  if (pc >= g_ntdll.lo && pc < g_ntdll.hi) return false;
  MEMORY_BASIC_INFORMATION mbi = {};
  if (VirtualQuery(reinterpret_cast<void*>(pc), &mbi, sizeof mbi) != sizeof mbi) return false;
  return mbi.State == MEM_COMMIT && mbi.Type == MEM_IMAGE;
}

#if defined(_M_X64) || defined(__x86_64__)
void read_context(const CONTEXT& c, InterruptContext& ctx) noexcept {
  ctx.pc = c.Rip;
  ctx.sp = c.Rsp;
  ctx.fp = c.Rbp;
  ctx.lr = 0;
}
constexpr DWORD kContextFlags = CONTEXT_CONTROL | CONTEXT_INTEGER;
#elif defined(_M_ARM64) || defined(__aarch64__)
void read_context(const CONTEXT& c, InterruptContext& ctx) noexcept {
  ctx.pc = c.Pc;
  ctx.sp = c.Sp;
  ctx.fp = c.Fp;
  ctx.lr = c.Lr;
}
constexpr DWORD kContextFlags = CONTEXT_CONTROL | CONTEXT_INTEGER;
#endif

// Suspend, run the handler, resume. Called with the suspend lock held.
Error deliver(uint64_t id, uint32_t* ticket) noexcept {
  islot::Slot* s = islot::find(id);
  if (s == nullptr || !islot::begin_send(s, id)) return Error::no_such_thread;
  const uint32_t gen = islot::new_request(s);
  if (ticket != nullptr) *ticket = gen;
  const HANDLE h = reinterpret_cast<HANDLE>(s->os_handle);
  Error err = Error::ok;
  if (islot::ld(&s->blocked) != 0) {
    islot::withdraw(s, gen);
  } else if (SuspendThread(h) == static_cast<DWORD>(-1)) {
    islot::withdraw(s, gen);
    err = Error::no_such_thread;
  } else {
    // CONTEXT must be 16-byte aligned. EXCEPTION_REQUEST asks Windows to say
    // whether the thread is in an exception or a kernel service.
    alignas(16) Suspended susp = {};
    CONTEXT& c = susp.context;
    susp.slot = s;
    c.ContextFlags = kContextFlags | CONTEXT_EXCEPTION_REQUEST;
    uint32_t claimed = 0;
    if (!GetThreadContext(h, &c) || WaitForSingleObject(h, 0) == WAIT_OBJECT_0) {
      islot::withdraw(s, gen);  // exited (only a thread killed without its TLS destructors gets here)
      err = Error::no_such_thread;
    } else if (islot::ld(&s->blocked) != 0) {
      // interrupt_block(true) returned before the suspend completed.
      islot::withdraw(s, gen);
    } else if (islot::claim_for_handler(s, &claimed)) {
      InterruptContext ctx;
      ctx.native = &susp;
      ctx.thread_id = id;
      read_context(c, ctx);
      InterruptHandler handler = islot::ld(&g_handler);
      if (handler != nullptr) handler(ctx);
      islot::handler_done(s, claimed);
    }
    ResumeThread(h);
  }
  islot::end_send(s);
  return err;
}

}  // namespace

namespace win {

const char* interrupt_mechanism() noexcept {
#if defined(KEEL_ARCH_X86_64)
  return "SuspendThread + Get/SetThreadContext; x86_64 Win64 trampoline (XSAVE)";
#else
  return "SuspendThread + Get/SetThreadContext";
#endif
}

const char* interrupt_absent() noexcept {
#if defined(KEEL_ARCH_X86_64)
  return "";
#elif defined(_MSC_VER) && !defined(__clang__)
  return "push_call needs the GNU-syntax Win64 trampoline; MSVC builds have no MASM port yet";
#else
  return "no push_call trampoline for this CPU";
#endif
}

bool interrupt_push_call_available() noexcept {
#if defined(KEEL_ARCH_X86_64)
  return true;
#else
  return false;
#endif
}

void interrupt_lock_for_exit() noexcept {
  islot::st(&g_exiting, 1u);
  const uint32_t me = GetCurrentThreadId();
  if (islot::ld(&g_lock_owner) == me) {  // a fatal error inside a handler
    islot::st(&g_exit_holds, 1u);
    return;
  }
  // Wait for a sender between its suspend and resume, then keep the lock.
  // A holder never blocks; still, never hang an exit on a bug: give up after 2 s.
  const ULONGLONG give_up = GetTickCount64() + 2000;
  for (int round = 0; GetTickCount64() < give_up; ++round) {
    uint32_t free = 0;
    if (islot::cas(&g_lock_owner, &free, me)) break;
    pause_round(round);
  }
  islot::st(&g_exit_holds, 1u);
}

}  // namespace win

Error interrupt_install(InterruptHandler handler) noexcept {
  if (handler == nullptr) return Error::invalid_argument;
  if (!caps().interrupt) return Error::not_supported;
  arch::init();
  g_ntdll = module_range(L"ntdll.dll");
  islot::st(&g_handler, handler);
  uint32_t no = 0;
  if (islot::cas(&g_installed, &no, 1u)) std::atexit(exit_hook);
  return Error::ok;
}

Error interrupt_thread_init() noexcept {
  if (t_slot != nullptr) return Error::ok;
  // The slot owns its own handle, with exactly the rights a sender needs; it
  // is closed only under the suspend lock, so a sender never uses a closed
  // (or recycled) handle value.
  HANDLE h = nullptr;
  if (!DuplicateHandle(GetCurrentProcess(), GetCurrentThread(), GetCurrentProcess(), &h,
                       THREAD_SUSPEND_RESUME | THREAD_GET_CONTEXT | THREAD_SET_CONTEXT |
                           THREAD_QUERY_LIMITED_INFORMATION | SYNCHRONIZE,
                       FALSE, 0)) {
    return Error::no_resources;
  }
  ULONG_PTR lo = 0, hi = 0;
  GetCurrentThreadStackLimits(&lo, &hi);
  islot::Slot* s = islot::claim(GetCurrentThreadId(), reinterpret_cast<uintptr_t>(h), current_teb(), lo, hi);
  if (s == nullptr) {
    CloseHandle(h);
    return Error::no_resources;
  }
  t_slot = s;
  win::thread_exit_set(slot_exit_fls(), s);
  return Error::ok;
}

void interrupt_thread_fini() noexcept {
  islot::Slot* s = t_slot;
  if (s == nullptr) return;
  win::thread_exit_set(slot_exit_fls(), nullptr);  // released here, not again at exit
  release_slot(s);
  t_slot = nullptr;
}

Error interrupt_block(bool blocked) noexcept {
  if (t_slot != nullptr) islot::st(&t_slot->blocked, blocked ? 1u : 0u);
  return Error::ok;
}

Error interrupt(const Thread& t, uint32_t* ticket) noexcept {
  if (!t.valid()) return Error::invalid_argument;
  if (!caps().interrupt) return Error::not_supported;
  if (islot::ld(&g_installed) == 0) return Error::invalid_argument;
  if (t.id == GetCurrentThreadId()) return Error::invalid_argument;  // SuspendThread(self) never returns
  if (!lock_suspend()) return Error::no_such_thread;                  // the process is exiting
  const Error err = deliver(t.id, ticket);
  unlock_suspend();
  return err;
}

Error InterruptContext::push_call(InterruptFn fn, void* arg) noexcept {
  if (fn == nullptr || native == nullptr || (flags & kPushed) != 0) return Error::invalid_argument;
#if defined(KEEL_ARCH_X86_64)
  Suspended& susp = *static_cast<Suspended*>(native);
  const islot::Slot* s = susp.slot;
  CONTEXT& c = susp.context;
  // Go #79249: inside an exception or a kernel service (a page fault being
  // served, a system call) the reported context is not safe to redirect.
  // Without CONTEXT_EXCEPTION_REPORTING (Wine 8 does not implement it;
  // Windows 7+ does) there is nothing to check: CoreCLR trusts such contexts
  // on x64 too (docs/DECISIONS.md).
  if ((c.ContextFlags & CONTEXT_EXCEPTION_REPORTING) != 0 &&
      (c.ContextFlags & (CONTEXT_EXCEPTION_ACTIVE | CONTEXT_SERVICE_ACTIVE)) != 0) {
    return Error::try_again;
  }
  const uintptr_t sp = c.Rsp;
  const uintptr_t pc = c.Rip;
  if (!injectable_pc(pc)) return Error::try_again;
  // The sender writes three words below the target's sp. They must be
  // committed, not the guard page: a fault here would be the sender's, and
  // only the owner's faults grow a stack. The owner's TEB has the committed
  // limit (kept current by the OS, and by keel's stack switches).
  const auto* tib = reinterpret_cast<const NT_TIB*>(s->os_aux);
  const uintptr_t committed = reinterpret_cast<uintptr_t>(tib->StackLimit);
  const uintptr_t base = reinterpret_cast<uintptr_t>(tib->StackBase);
  if (sp > base || sp < committed + 3 * sizeof(uintptr_t)) return Error::try_again;
  if (sp >= s->stack_lo && sp < s->stack_hi && sp - s->stack_lo < islot::kPushCallHeadroom) return Error::try_again;
  c.Rsp = arch::x86_64_push_call_frame(sp, pc, fn, arg, 0);
  c.Rip = reinterpret_cast<uintptr_t>(&keel_interrupt_trampoline);
  c.ContextFlags = CONTEXT_CONTROL;  // rip, rsp (and the unchanged eflags, cs, ss) only
  if (!SetThreadContext(reinterpret_cast<HANDLE>(s->os_handle), &c)) {
    c.Rsp = sp;  // the thread continues unchanged; the words written below sp are dead
    c.Rip = pc;
    return Error::unknown;
  }
  flags |= kPushed;
  return Error::ok;
#else
  (void)arg;
  return Error::not_supported;
#endif
}

}  // namespace keel::os
