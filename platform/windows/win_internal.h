// Declarations shared between the Windows backend's files.
#pragma once

namespace keel::os::win {

// Which timer sleep_ns settled on (high-resolution waitable timer, plain
// waitable timer or Sleep); reported in platform_info().
const char* sleep_backend_name() noexcept;

// Thread interruption (interrupt_suspend.cpp): what caps() reports, and the
// process exit path. interrupt_lock_for_exit takes the suspend lock for good
// so no thread is left suspended when the process ends (Go #35775); the
// atexit hook and abort_process() call it.
const char* interrupt_mechanism() noexcept;
const char* interrupt_absent() noexcept;
bool interrupt_push_call_available() noexcept;
void interrupt_lock_for_exit() noexcept;

// Per-thread cleanup at thread exit without thread_local destructors, which
// mingw-w64 runs after emutls has freed their storage (GCC PR 80816; see
// core/tls.h): a fiber-local storage slot whose callback is handed the value
// the exiting thread stored. keel never uses Windows fibers, so FLS is
// per-thread here. Returns FLS_OUT_OF_INDEXES (as a DWORD) when none is left.
using ThreadExitFn = void(__stdcall*)(void* value);
unsigned long thread_exit_slot(ThreadExitFn fn) noexcept;
// Store value for the callback of slot (ignored if the slot is invalid).
void thread_exit_set(unsigned long slot, void* value) noexcept;

}  // namespace keel::os::win
