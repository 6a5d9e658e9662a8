// x86_64, both ABIs: which register state the trampolines save. Read once
// with CPUID: the components the OS enabled in XCR0 that compiled code can
// touch (x87, SSE, AVX, AVX-512 opmask/upper ZMM/ZMM16-31), and the size of
// the standard-format XSAVE area that holds them.
//
// Left out on purpose: AMX tile data (8 KiB; no compiler generates tile
// instructions, and Linux arms it lazily per process) and PKRU, MPX, CET and
// other supervisor or rarely used state. An injected function must not use
// AMX or change PKRU.
#include "platform/arch/interrupt_arch.h"

#if defined(KEEL_ARCH_X86_64)

#if defined(_MSC_VER) && !defined(__clang__)
#include <immintrin.h>
#include <intrin.h>
#else
#include <cpuid.h>
#endif

namespace keel::os::arch {
namespace {

struct Regs {
  unsigned a, b, c, d;
};

Regs cpuid(unsigned leaf, unsigned sub) noexcept {
  Regs r{};
#if defined(_MSC_VER) && !defined(__clang__)
  int v[4];
  __cpuidex(v, static_cast<int>(leaf), static_cast<int>(sub));
  r = {unsigned(v[0]), unsigned(v[1]), unsigned(v[2]), unsigned(v[3])};
#else
  __cpuid_count(leaf, sub, r.a, r.b, r.c, r.d);
#endif
  return r;
}

uint64_t xcr0() noexcept {
#if defined(_MSC_VER) && !defined(__clang__)
  return _xgetbv(0);
#else
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t(hi) << 32) | lo;
#endif
}

// x87 (0), SSE (1), AVX (2), AVX-512 opmask (5), ZMM_Hi256 (6), Hi16_ZMM (7).
constexpr uint64_t kUserState = 0xE7;

}  // namespace

void init() noexcept {
  if (cpuid(0, 0).a < 0xD) return;                 // no XSAVE leaf: FXSAVE
  if (((cpuid(1, 0).c >> 27) & 1) == 0) return;    // OSXSAVE clear: the OS did not enable XSAVE
  const uint64_t mask = xcr0() & kUserState;
  // Standard format: each component at its fixed offset; the area ends after
  // the highest one saved (at least the 512-byte legacy area + 64-byte header).
  uint64_t size = 576;
  for (unsigned i = 2; i < 64; ++i) {
    if (((mask >> i) & 1) == 0) continue;
    const Regs r = cpuid(0xD, i);  // eax = size, ebx = offset
    if (uint64_t(r.b) + r.a > size) size = uint64_t(r.b) + r.a;
  }
  keel_xsave_mask = mask;
  keel_xsave_size = (size + 63) & ~uint64_t{63};
}

}  // namespace keel::os::arch

#else

namespace keel::os::arch {
void init() noexcept {}
}  // namespace keel::os::arch

#endif
