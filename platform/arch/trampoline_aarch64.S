// aarch64 (Linux, macOS): the trampoline push_call enters.
//
// Why not Go's push_call (lr = resume pc, pc = fn)? aarch64 has no
// memory-indirect branch, so getting back to arbitrary code needs one free
// register to hold the target. Go reserves R27 for it; a C++ compiler may
// have every register live (x16/x17 included), so that cannot be exact here.
//
// Instead the kernel restores everything. push_call, in the SIGURG handler,
// copies the thread's whole signal context (x0-x30, sp, pc, pstate, FP/SIMD,
// FPSR/FPCR, SVE state, signal mask) into a frame below the interrupted sp,
// skipping 128 bytes (Darwin's red zone), and resumes the thread here with
//
//     x0 = arg, x1 = fn, x19 = the frame, x29 = interrupted fp,
//     x30 = interrupted pc, sp = the frame (16-byte aligned)
//
// We push a frame record {fp, pc} so frame-pointer backtraces taken inside
// fn continue into the interrupted function, call fn(arg), and trap with
// brk. The SIGTRAP handler checks that the trap is at
// keel_interrupt_trampoline_trap with x19 pointing at a live frame just
// above sp, copies the saved context over its own, and returns: sigreturn
// then restores every register exactly. A signal landing anywhere in here
// (qemu -singlestep delivers one at every instruction) just nests: each
// injection saves and restores its own complete context.
#if defined(__aarch64__)

#if defined(__APPLE__)
#define FUNC(x) .globl _##x; .p2align 2; _##x:
#define LABEL(x) .globl _##x; _##x:
#define ENDFUNC(x)
#else
#define FUNC(x) .globl x; .type x, %function; .p2align 2; x:
#define LABEL(x) .globl x; x:
#define ENDFUNC(x) .size x, .-x
#endif

        .text
FUNC(keel_interrupt_trampoline)
        hint    #38                     // bti jc: a landing pad if branch protection is on
        stp     x29, x30, [sp, #-16]!   // frame record {interrupted fp, interrupted pc}
        mov     x29, sp
        blr     x1                      // fn(arg); x19 (callee-saved) survives it
LABEL(keel_interrupt_trampoline_trap)
1:      brk     #0x4b4c                 // the SIGTRAP handler restores the saved context
        b       1b                      // never reached: the restore resumes elsewhere
ENDFUNC(keel_interrupt_trampoline)

#endif

#if defined(__ELF__)
        .section .note.GNU-stack, "", %progbits
#endif
