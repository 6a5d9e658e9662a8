// Busy-wait helpers for the runtime lock's bounded spin phase.
#pragma once

#if defined(_MSC_VER)
#include <intrin.h>  // compiler intrinsics, not an OS header
#endif

namespace keel::core {

// One pause: tells the CPU we are spinning (saves power, frees the sibling
// hyperthread, avoids a memory-order pipeline flush on exit from the loop).
inline void cpu_relax() noexcept {
#if defined(_MSC_VER) && (defined(_M_X64) || defined(_M_IX86))
  _mm_pause();
#elif defined(_MSC_VER) && defined(_M_ARM64)
  __yield();
#elif defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield" ::: "memory");
#endif
}

// Processors this process may use, read once (spinning only makes sense when
// another CPU can release the lock meanwhile).
int ncpu() noexcept;

}  // namespace keel::core
