// What the OS backends need from the per-ABI interruption code in this
// directory: the trampoline push_call points a thread at, and how a call
// frame is pushed on each ABI. Included only by backends.
//
//   x86_64 SysV  (trampoline_x86_64_sysv.S)  linux, darwin
//   x86_64 Win64 (trampoline_x86_64_win64.S) windows with a GNU assembler (mingw, clang)
//   aarch64      (trampoline_aarch64.S)      linux, darwin
//
// KEEL_ARCH_ASM is defined by platform/CMakeLists.txt when these .S files are
// part of the build (not under MSVC, which would need a MASM port).
#pragma once

#include <cstdint>

#include "platform/os.h"

#if defined(KEEL_ARCH_ASM) && (defined(__x86_64__) || defined(_M_X64))
#define KEEL_ARCH_X86_64 1
#elif defined(KEEL_ARCH_ASM) && defined(__aarch64__)
#define KEEL_ARCH_AARCH64 1
#endif

extern "C" {
// Entered (never called) with the frame push_call built; see the .S files.
void keel_interrupt_trampoline();
#if defined(KEEL_ARCH_AARCH64)
// The trampoline's brk: the trap handler recognises it by this address.
void keel_interrupt_trampoline_trap();
#endif
#if defined(KEEL_ARCH_X86_64)
// Which XSAVE components the trampoline saves (edx:eax) and the area's size;
// size 0 means no XSAVE: FXSAVE's 512 bytes. Defined in the .S, set once by
// arch::init() before any push_call.
extern uint64_t keel_xsave_mask;
extern uint64_t keel_xsave_size;
#endif
}

namespace keel::os::arch {

// One-time setup before the first push_call (x86_64: read the XSAVE layout
// with CPUID). Safe to call again.
void init() noexcept;

#if defined(KEEL_ARCH_X86_64)
// x86_64 push_call, both ABIs: below sp, skipping red_zone bytes (SysV: 128,
// the leaf code's scratch area; Win64: 0), write the resume pc, fn and arg
// and return the new sp. The trampoline finds them at [sp+16], [sp+8], [sp].
KEEL_INTERRUPT_CONTEXT inline uintptr_t x86_64_push_call_frame(uintptr_t sp, uintptr_t resume_pc, InterruptFn fn, void* arg,
                                                               uintptr_t red_zone) noexcept {
  auto* top = reinterpret_cast<uintptr_t*>(sp - red_zone);
  top[-1] = resume_pc;
  top[-2] = reinterpret_cast<uintptr_t>(fn);
  top[-3] = reinterpret_cast<uintptr_t>(arg);
  return sp - red_zone - 3 * sizeof(uintptr_t);
}
constexpr uintptr_t kSysvRedZone = 128;
#endif

#if defined(KEEL_ARCH_AARCH64)
// aarch64 push_call saves the whole interrupted context in a frame below sp
// (the OS file defines the frame: it holds that OS's mcontext), then enters
// the trampoline with x0 = arg, x1 = fn, x19 = frame, x30 = resume pc. The
// trampoline calls fn and traps; the trap handler copies the frame back.
constexpr uint64_t kA64FrameMagic = 0x6b65656c2d696e74ull;  // "keel-int"
// Darwin's arm64 ABI lets leaf code use 128 bytes below sp; Linux's does not,
// but skipping them costs nothing.
constexpr uintptr_t kA64RedZone = 128;
#endif

}  // namespace keel::os::arch
