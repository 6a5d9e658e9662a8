// Stack faults on Windows: a vectored exception handler, and goroutine
// stacks armed the way Windows arms thread stacks.
//
// A VEH runs on the faulting stack. A goroutine that runs into the
// no-access guard page below its stack faults with no room left for the
// exception dispatcher (which pushes ~1.5 KiB of CONTEXT and record), and
// the process dies silently (Wine: "stack overflow ... unrecoverable", then
// exit status 0). So each guarded goroutine stack also gets a one-shot
// PAGE_GUARD page kArmOffset above its low end, as Windows thread stacks
// have: touching it inside the TIB's stack bounds makes the kernel (Wine:
// grow_thread_stack) raise STATUS_STACK_OVERFLOW — the page lies within the
// thread's stack guarantee of the bottom — while the pages below are still
// committed and free, so the dispatcher and this handler have room. The
// context's StackLimit is the top of that page, so __chkstk probes touch it
// (MSVC's probes only below StackLimit) rather than stride past it.
//
// The handler asks core whether the stack the thread runs on (the TIB's
// DeallocationStack, which keel's switch keeps at the goroutine stack's
// guard page) is a registered goroutine stack; core reports and ends the
// process, or returns and the exception continues its ordinary course.
#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#ifndef NOMINMAX
#define NOMINMAX
#endif
#include <windows.h>

#include <intrin.h>

#include "platform/os.h"

namespace keel::os {
namespace {

// The stack guarantee: bytes Windows keeps usable below the point where it
// raises STATUS_STACK_OVERFLOW. The armed page lies inside it.
constexpr ULONG kGuarantee = 16 * 1024;
// Where the one-shot guard page goes: above 12 KiB of committed stack, room
// for the dispatcher and the handler's report.
constexpr size_t kArmOffset = 12 * 1024;

StackFaultHandler g_fault = nullptr;  // read in the handler (interlocked)
PVOID g_veh = nullptr;
SRWLOCK g_mu = SRWLOCK_INIT;

uintptr_t dealloc_stack() noexcept {
#if defined(_M_X64) || defined(__x86_64__)
  return uintptr_t(__readgsqword(0x1478));  // TEB DeallocationStack
#else
  return 0;
#endif
}

LONG CALLBACK keel_veh(EXCEPTION_POINTERS* ep) {
  const EXCEPTION_RECORD* r = ep->ExceptionRecord;
  StackFault f;
  switch (r->ExceptionCode) {
    case EXCEPTION_STACK_OVERFLOW:
      f.os_overflow = true;
      [[fallthrough]];
    case EXCEPTION_ACCESS_VIOLATION:
    case STATUS_GUARD_PAGE_VIOLATION:
      if (r->NumberParameters >= 2) f.addr = uintptr_t(r->ExceptionInformation[1]);
      break;
    default:
      return EXCEPTION_CONTINUE_SEARCH;
  }
  f.stack_lo = dealloc_stack();
#if defined(_M_X64) || defined(__x86_64__)
  f.sp = uintptr_t(ep->ContextRecord->Rsp);
#endif
  auto h = reinterpret_cast<StackFaultHandler>(InterlockedCompareExchangePointer(
      reinterpret_cast<PVOID volatile*>(&g_fault), nullptr, nullptr));
  if (h != nullptr) h(f);  // returns only when it is not a goroutine stack overflow
  return EXCEPTION_CONTINUE_SEARCH;
}

}  // namespace

Error stack_fault_install(StackFaultHandler h) noexcept {
  if (h == nullptr) return Error::invalid_argument;
  AcquireSRWLockExclusive(&g_mu);
  InterlockedExchangePointer(reinterpret_cast<PVOID volatile*>(&g_fault), reinterpret_cast<PVOID>(h));
  // First in the chain: before any handler that might itself need stack.
  if (g_veh == nullptr) g_veh = AddVectoredExceptionHandler(1, keel_veh);
  const bool ok = g_veh != nullptr;
  ReleaseSRWLockExclusive(&g_mu);
  return ok ? Error::ok : Error::no_resources;
}

Error stack_fault_thread_init() noexcept {
  // The guarantee lives in the TEB, so it holds for every stack the thread
  // switches to. A larger guarantee set by the application is kept.
  ULONG g = kGuarantee;
  if (!SetThreadStackGuarantee(&g)) {
    ULONG cur = 0;
    if (!SetThreadStackGuarantee(&cur) || cur < kGuarantee) return Error::no_resources;
  }
  return Error::ok;
}

void stack_fault_thread_fini() noexcept {}

size_t stack_fault_headroom() noexcept { return kArmOffset + page_size(); }

Error stack_fault_arm(void* lo, size_t size, void** limit) noexcept {
  if (lo == nullptr || size == 0 || limit == nullptr) return Error::invalid_argument;
  *limit = lo;
  const size_t ps = page_size();
  if (size < stack_fault_headroom() + 4 * ps) return Error::ok;  // too small: the guard page alone
  char* arm = static_cast<char*>(lo) + kArmOffset;
  DWORD old = 0;
  if (!VirtualProtect(arm, ps, PAGE_READWRITE | PAGE_GUARD, &old)) return Error::unknown;
  *limit = arm + ps;
  return Error::ok;
}

}  // namespace keel::os
