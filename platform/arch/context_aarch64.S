// Context switch for aarch64 (AAPCS64: Linux, macOS). See context.h.
//
// Saved on the suspended context's own stack, lowest address first (176 B,
// a multiple of 16 so sp stays 16-byte aligned as AAPCS64 demands always):
//   [sp+0]   x19..x28          callee-saved general registers
//   [sp+80]  x29 (fp), x30 (lr: where the switch returns to)
//   [sp+96]  d8..d15           only the low 64 bits of v8..v15 are callee-saved
//   [sp+160] FPCR              rounding mode and traps, per context
//   [sp+168] padding
// sp itself is the Context. Nothing else is callee-saved. x18 is the platform
// register (reserved on Darwin and Windows): never touched.
#if defined(__APPLE__)
#define SYM(x) _##x
#else
#define SYM(x) x
#endif

        .text
        .globl  SYM(keel_context_switch)
        .p2align 4
#if !defined(__APPLE__)
        .type   keel_context_switch, %function
#endif
// void keel_context_switch(Context* from /*x0*/, const Context* to /*x1*/)
SYM(keel_context_switch):
        .cfi_startproc
        sub     sp, sp, #176
        stp     x19, x20, [sp, #0]
        stp     x21, x22, [sp, #16]
        stp     x23, x24, [sp, #32]
        stp     x25, x26, [sp, #48]
        stp     x27, x28, [sp, #64]
        stp     x29, x30, [sp, #80]
        stp     d8, d9, [sp, #96]
        stp     d10, d11, [sp, #112]
        stp     d12, d13, [sp, #128]
        stp     d14, d15, [sp, #144]
        mrs     x9, fpcr
        str     x9, [sp, #160]
        mov     x10, sp
        str     x10, [x0]               // from->sp
        ldr     x10, [x1]               // to->sp
        mov     sp, x10                 // now on the other stack
        ldp     x19, x20, [sp, #0]
        ldp     x21, x22, [sp, #16]
        ldp     x23, x24, [sp, #32]
        ldp     x25, x26, [sp, #48]
        ldp     x27, x28, [sp, #64]
        ldp     x29, x30, [sp, #80]
        ldp     d8, d9, [sp, #96]
        ldp     d10, d11, [sp, #112]
        ldp     d12, d13, [sp, #128]
        ldp     d14, d15, [sp, #144]
        ldr     x10, [sp, #160]
        // Writing FPCR can be slow (self-synchronising on some cores): only
        // when the two contexts differ, which is rare.
        cmp     x9, x10
        b.eq    1f
        msr     fpcr, x10
1:      add     sp, sp, #176
        ret
        .cfi_endproc

// void keel_context_make(Context* ctx /*x0*/, const ContextStack* s /*x1*/,
//                        void (*entry)(void*) /*x2*/, void* arg /*x3*/)
// Frame at top-176 with lr = keel_context_start, x19 = arg, x20 = entry,
// fp = 0 (frame-pointer walks stop). After the switch's `add`, sp = top.
        .globl  SYM(keel_context_make)
        .p2align 4
#if !defined(__APPLE__)
        .type   keel_context_make, %function
#endif
SYM(keel_context_make):
        .cfi_startproc
        ldr     x9, [x1, #8]            // s->hi
        and     x9, x9, #~15            // top
        sub     x9, x9, #176
        stp     x3, x2, [x9, #0]        // x19 = arg, x20 = entry
        stp     xzr, xzr, [x9, #16]
        stp     xzr, xzr, [x9, #32]
        stp     xzr, xzr, [x9, #48]
        stp     xzr, xzr, [x9, #64]
        adr     x10, SYM(keel_context_start)
        stp     xzr, x10, [x9, #80]     // fp = 0, lr = keel_context_start
        stp     xzr, xzr, [x9, #96]
        stp     xzr, xzr, [x9, #112]
        stp     xzr, xzr, [x9, #128]
        stp     xzr, xzr, [x9, #144]
        mrs     x10, fpcr               // the new context inherits our FP control
        stp     x10, xzr, [x9, #160]
        str     x9, [x0]
        ret
        .cfi_endproc

// First code of every context; the return address is marked undefined so
// unwinders see the bottom of the stack here.
        .p2align 4
SYM(keel_context_start):
        .cfi_startproc
        .cfi_undefined x30
        mov     x0, x19
        blr     x20
        brk     #0                      // entry returned: a bug, trap
        .cfi_endproc

#if defined(__linux__) && defined(__ELF__)
        .section .note.GNU-stack,"",%progbits
#endif
