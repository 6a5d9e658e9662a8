// keel — a Go-style runtime for C++20. Public headers live in include/keel/.
#pragma once

#define KEEL_VERSION_MAJOR 0
#define KEEL_VERSION_MINOR 1
#define KEEL_VERSION_PATCH 0

namespace keel {
constexpr const char* version() noexcept { return "0.1.0"; }
}  // namespace keel
