// Context switch for x86_64 System V (Linux, macOS, BSDs). See context.h.
//
// Saved on the suspended context's own stack, lowest address first:
//   [sp+0]  MXCSR (4 bytes) and x87 control word (2 bytes): rounding modes and
//           exception masks are per context (fesetround in one goroutine must
//           not leak into another); status flags go along, harmlessly.
//   [sp+8]  r15 r14 r13 r12 rbx rbp   the SysV callee-saved registers
//   [sp+56] return address
// 64 bytes in all. Everything else is caller-saved and already dead here.
#if defined(__APPLE__)
#define SYM(x) _##x
#else
#define SYM(x) x
#endif

        .text
        .globl  SYM(keel_context_switch)
        .p2align 4
#if !defined(__APPLE__)
        .type   keel_context_switch, @function
#endif
// void keel_context_switch(Context* from /*rdi*/, const Context* to /*rsi*/)
SYM(keel_context_switch):
        .cfi_startproc
        pushq   %rbp
        pushq   %rbx
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        subq    $8, %rsp
        stmxcsr (%rsp)
        fnstcw  4(%rsp)
        movq    %rsp, (%rdi)            // from->sp
        movq    (%rsi), %rsp            // to->sp: now on the other stack
        ldmxcsr (%rsp)
        fldcw   4(%rsp)
        addq    $8, %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        popq    %rbp
        ret
        .cfi_endproc

// void keel_context_make(Context* ctx /*rdi*/, const ContextStack* s /*rsi*/,
//                        void (*entry)(void*) /*rdx*/, void* arg /*rcx*/)
// Builds a 64-byte switch frame whose return address is keel_context_start,
// with r12 = arg and r13 = entry. 16 zero bytes stay at the top of the stack
// (a null return address ends backtraces), so after the frame's `ret` rsp is
// top-16: 16-byte aligned at the `call` in keel_context_start, as SysV wants.
        .globl  SYM(keel_context_make)
        .p2align 4
#if !defined(__APPLE__)
        .type   keel_context_make, @function
#endif
SYM(keel_context_make):
        .cfi_startproc
        movq    8(%rsi), %rax           // s->hi
        andq    $-16, %rax              // top, 16-byte aligned
        movq    $0, -8(%rax)
        movq    $0, -16(%rax)
        leaq    -80(%rax), %r8          // frame = top - 16 - 64
        stmxcsr (%r8)                   // the new context inherits our FP control
        fnstcw  4(%r8)
        movq    $0, 8(%r8)              // r15
        movq    $0, 16(%r8)             // r14
        movq    %rdx, 24(%r8)           // r13 = entry
        movq    %rcx, 32(%r8)           // r12 = arg
        movq    $0, 40(%r8)             // rbx
        movq    $0, 48(%r8)             // rbp = 0: frame-pointer walks stop here
        leaq    SYM(keel_context_start)(%rip), %rax
        movq    %rax, 56(%r8)           // return address
        movq    %r8, (%rdi)
        ret
        .cfi_endproc

// First code of every context. rip is marked undefined so unwinders (C++
// exceptions, debuggers, sanitizers) see the bottom of the stack here.
        .p2align 4
SYM(keel_context_start):
        .cfi_startproc
        .cfi_undefined rip
        movq    %r12, %rdi
        callq   *%r13
        ud2                             // entry returned: a bug, trap
        .cfi_endproc

#if defined(__linux__) && defined(__ELF__)
        .section .note.GNU-stack,"",@progbits
#endif
