// x86_64 System V (Linux, macOS): the trampoline push_call enters.
//
// push_call (interrupt_arch.h) leaves, below the interrupted code's 128-byte
// red zone (leaf functions may keep data there without moving rsp):
//
//     [rsp]       arg
//     [rsp+8]     fn
//     [rsp+16]    resume pc: the instruction the thread was interrupted at
//     [rsp+24]    the red zone, 128 bytes, then the interrupted rsp
//
// Nothing here may disturb the interrupted code, which may have any register
// live: save the flags first (before any instruction that sets them), the 15
// general-purpose registers, then the x87/SSE/AVX/AVX-512 state with XSAVE
// (FXSAVE where the OS has not enabled XSAVE); call fn(arg) with DF clear and
// a 16-byte aligned stack; restore all of it and `ret $128`, which pops the
// resume pc and the red zone: rsp ends exactly where it was.
//
// The CFI describes the interrupted frame (CFA = interrupted rsp, every GP
// register saved here), so debuggers and unwinders walk through an injected
// call into the code it interrupted.
#if defined(__x86_64__) && !defined(_WIN32)

#if defined(__APPLE__)
#define SYM(x) _##x
#define PRIVATE(x) .private_extern _##x
#define FUNC(x) .globl _##x; .p2align 4; _##x:
#define ENDFUNC(x)
#else
#define SYM(x) x
#define PRIVATE(x) .hidden x
#define FUNC(x) .globl x; .type x, @function; .p2align 4; x:
#define ENDFUNC(x) .size x, .-x
#endif

#define PUSH(r) pushq %r; .cfi_adjust_cfa_offset 8; .cfi_rel_offset %r, 0
#define POP(r) popq %r; .cfi_adjust_cfa_offset -8; .cfi_restore %r

        .data
        .p2align 3
        .globl SYM(keel_xsave_mask)
        PRIVATE(keel_xsave_mask)
SYM(keel_xsave_mask):
        .quad 0         // XSAVE components (edx:eax), set by arch::init
        .globl SYM(keel_xsave_size)
        PRIVATE(keel_xsave_size)
SYM(keel_xsave_size):
        .quad 0         // XSAVE area bytes; 0 = use FXSAVE (512 bytes)

        .text
FUNC(keel_interrupt_trampoline)
        .cfi_startproc simple
        .cfi_signal_frame               // the "return address" is an exact pc, not after a call
        .cfi_def_cfa %rsp, 152          // CFA = interrupted rsp = rsp + 24 + 128
        .cfi_offset %rip, -136          // resume pc at rsp + 16
        pushfq
        .cfi_adjust_cfa_offset 8
        PUSH(rax)
        PUSH(rcx)
        PUSH(rdx)
        PUSH(rbx)
        PUSH(rbp)
        PUSH(rsi)
        PUSH(rdi)
        PUSH(r8)
        PUSH(r9)
        PUSH(r10)
        PUSH(r11)
        PUSH(r12)
        PUSH(r13)
        PUSH(r14)
        PUSH(r15)
        // rbx is callee-saved: it keeps the save area (and fn, arg) across the call.
        // [rbx+15*8] flags, [rbx+16*8] arg, [rbx+17*8] fn
        movq    %rsp, %rbx
        .cfi_def_cfa_register %rbx
        movq    SYM(keel_xsave_size)(%rip), %rax
        testq   %rax, %rax
        jz      1f
        subq    %rax, %rsp
        andq    $-64, %rsp              // XSAVE wants 64-byte alignment
        // XSAVE writes only XSTATE_BV of the 64-byte header; XRSTOR faults on
        // nonzero reserved bytes (stale stack data): clear the header.
        xorl    %ecx, %ecx
        movq    %rcx, 512(%rsp)
        movq    %rcx, 520(%rsp)
        movq    %rcx, 528(%rsp)
        movq    %rcx, 536(%rsp)
        movq    %rcx, 544(%rsp)
        movq    %rcx, 552(%rsp)
        movq    %rcx, 560(%rsp)
        movq    %rcx, 568(%rsp)
        movl    SYM(keel_xsave_mask)(%rip), %eax
        movl    SYM(keel_xsave_mask)+4(%rip), %edx
        xsave64 (%rsp)
        jmp     2f
1:      subq    $512, %rsp
        andq    $-16, %rsp
        fxsave64 (%rsp)
2:      cld                             // the ABI requires DF clear at a call
        movq    16*8(%rbx), %rdi        // arg
        call    *17*8(%rbx)             // fn(arg); rsp is 16-byte aligned
        movq    SYM(keel_xsave_size)(%rip), %rcx
        testq   %rcx, %rcx
        jz      3f
        movl    SYM(keel_xsave_mask)(%rip), %eax
        movl    SYM(keel_xsave_mask)+4(%rip), %edx
        xrstor64 (%rsp)
        jmp     4f
3:      fxrstor64 (%rsp)
4:      movq    %rbx, %rsp
        .cfi_def_cfa_register %rsp
        POP(r15)
        POP(r14)
        POP(r13)
        POP(r12)
        POP(r11)
        POP(r10)
        POP(r9)
        POP(r8)
        POP(rdi)
        POP(rsi)
        POP(rbp)
        POP(rbx)
        POP(rdx)
        POP(rcx)
        POP(rax)
        popfq                           // flags last: nothing after this sets them
        .cfi_adjust_cfa_offset -8
        leaq    16(%rsp), %rsp          // drop arg and fn (lea leaves the flags alone)
        .cfi_adjust_cfa_offset -16
        ret     $128                    // to the resume pc, popping the red zone too
        .cfi_endproc
ENDFUNC(keel_interrupt_trampoline)

#endif

#if defined(__ELF__)
        .section .note.GNU-stack, "", @progbits
#endif
