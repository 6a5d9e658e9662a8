// keel_context_switch (platform/arch/context_x86_64_sysv.S) without the FP
// control words, for the floor benchmark only (floor_switch.cpp): callee-
// saved registers only, as Go's gogo/mcall switch goroutines (they carry no
// MXCSR/x87 CW). Same 64-byte frame, so keel_context_make builds its
// contexts too. Measured: the FP words cost 1-2 ns per round trip on the
// EPYC box of docs/PERFORMANCE.md; a variant that loads them only when they
// differ was slower (the extra stores and compare), so it is not kept.
#if defined(__x86_64__) && !defined(_WIN32)
#if defined(__APPLE__)
#define SYM(x) _##x
#else
#define SYM(x) x
#endif
        .text
        .globl  SYM(keel_floor_switch_nofp)
        .p2align 4
SYM(keel_floor_switch_nofp):
        pushq   %rbp
        pushq   %rbx
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        subq    $8, %rsp
        movq    %rsp, (%rdi)
        movq    (%rsi), %rsp
        addq    $8, %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        popq    %rbp
        ret

#endif
#if defined(__linux__) && defined(__ELF__)
        .section .note.GNU-stack,"",@progbits
#endif
