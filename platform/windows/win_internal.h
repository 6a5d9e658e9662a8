// Declarations shared between the Windows backend's files.
#pragma once

namespace keel::os::win {

// Which timer sleep_ns settled on (high-resolution waitable timer, plain
// waitable timer or Sleep); reported in platform_info().
const char* sleep_backend_name() noexcept;

}  // namespace keel::os::win
