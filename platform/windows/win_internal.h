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

}  // namespace keel::os::win
