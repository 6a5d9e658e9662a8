// The per-ABI context-switch contract (platform/arch/context_<abi>.S).
//
// A Context is a suspended execution: its stack pointer, with everything else
// it needs to resume (the callee-saved registers, the FP control words and,
// on Win64, the TIB stack bounds) pushed on its own stack by the switch.
// Only callee-saved state is kept: keel_context_switch is an ordinary call,
// so the compiler has already saved anything caller-saved that it needs.
// docs/PORTING.md ("Context switching") says what each ABI saves and why.
#pragma once

#include <cstddef>

namespace keel::arch {

struct Context {
  void* sp = nullptr;  // the saved frame: valid only while the context is suspended
};

// The memory a new context runs on. [lo, hi) is usable and committed;
// reserved_lo <= lo is where the whole reservation (guard page included)
// starts. Win64 stores all three in the TIB (StackLimit, StackBase,
// DeallocationStack); other ABIs only use hi.
struct ContextStack {
  void* lo;
  void* hi;
  void* reserved_lo;
};

using ContextEntry = void (*)(void* arg);

}  // namespace keel::arch

extern "C" {
// Prepare *ctx so that the first keel_context_switch to it calls entry(arg) on
// the stack, with the stack aligned as the ABI requires at a call. entry must
// never return (it ends by switching away for good); if it does, the process
// traps. The new context starts with the caller's FP control words.
void keel_context_make(keel::arch::Context* ctx, const keel::arch::ContextStack* stack,
                       keel::arch::ContextEntry entry, void* arg) noexcept;

// Save the calling context into *from and resume *to. Returns when something
// switches back to *from. from == to is not allowed.
void keel_context_switch(keel::arch::Context* from, const keel::arch::Context* to) noexcept;
}
