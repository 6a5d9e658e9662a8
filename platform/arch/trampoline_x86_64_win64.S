// x86_64 Windows (Win64 ABI, GNU assembler: mingw-w64 gcc, clang): the
// trampoline push_call enters. MSVC builds do not assemble this file (it
// would need a MASM port); they report caps().interrupt_push_call false.
//
// push_call (interrupt_arch.h) leaves, directly below the interrupted rsp
// (Win64 has no red zone: anything below rsp may be overwritten at any time):
//
//     [rsp]       arg
//     [rsp+8]     fn
//     [rsp+16]    resume pc: the instruction the thread was suspended at
//     [rsp+24]    the interrupted rsp
//
// Same job as the SysV trampoline: flags first, the 15 general-purpose
// registers, XSAVE (or FXSAVE) state; call fn(arg) with DF clear, a 16-byte
// aligned stack and the 32 bytes of shadow space the callee may use; restore
// everything and return to the resume pc. The SEH unwind info describes the
// words push_call left and every push, with rbx as the frame register, so
// the exception dispatcher and stack walkers unwind through an injected call
// into the code it interrupted.
#if defined(__x86_64__) && defined(_WIN32)

        .data
        .p2align 3
        .globl keel_xsave_mask
keel_xsave_mask:
        .quad 0         // XSAVE components (edx:eax), set by arch::init
        .globl keel_xsave_size
keel_xsave_size:
        .quad 0         // XSAVE area bytes; 0 = use FXSAVE (512 bytes)

        .text
        .globl keel_interrupt_trampoline
        .def keel_interrupt_trampoline; .scl 2; .type 32; .endef
        .p2align 4
        .seh_proc keel_interrupt_trampoline
keel_interrupt_trampoline:
        .seh_stackalloc 16              // arg and fn, above which the unwinder finds the resume pc
        pushfq
        .seh_stackalloc 8
        pushq   %rax
        .seh_pushreg %rax
        pushq   %rcx
        .seh_pushreg %rcx
        pushq   %rdx
        .seh_pushreg %rdx
        pushq   %rbx
        .seh_pushreg %rbx
        pushq   %rbp
        .seh_pushreg %rbp
        pushq   %rsi
        .seh_pushreg %rsi
        pushq   %rdi
        .seh_pushreg %rdi
        pushq   %r8
        .seh_pushreg %r8
        pushq   %r9
        .seh_pushreg %r9
        pushq   %r10
        .seh_pushreg %r10
        pushq   %r11
        .seh_pushreg %r11
        pushq   %r12
        .seh_pushreg %r12
        pushq   %r13
        .seh_pushreg %r13
        pushq   %r14
        .seh_pushreg %r14
        pushq   %r15
        .seh_pushreg %r15
        // rbx is nonvolatile: it keeps the save area (and fn, arg) across the call.
        // [rbx+15*8] flags, [rbx+16*8] arg, [rbx+17*8] fn
        movq    %rsp, %rbx
        .seh_setframe %rbx, 0
        .seh_endprologue
        movq    keel_xsave_size(%rip), %rax
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
        movl    keel_xsave_mask(%rip), %eax
        movl    keel_xsave_mask+4(%rip), %edx
        xsave64 (%rsp)
        jmp     2f
1:      subq    $512, %rsp
        andq    $-16, %rsp
        fxsave64 (%rsp)
2:      cld                             // the ABI requires DF clear at a call
        movq    16*8(%rbx), %rcx        // arg
        subq    $32, %rsp               // shadow space for fn's register arguments
        call    *17*8(%rbx)             // fn(arg); rsp was 16-byte aligned before the call
        addq    $32, %rsp
        movq    keel_xsave_size(%rip), %rcx
        testq   %rcx, %rcx
        jz      3f
        movl    keel_xsave_mask(%rip), %eax
        movl    keel_xsave_mask+4(%rip), %edx
        xrstor64 (%rsp)
        jmp     4f
3:      fxrstor64 (%rsp)
4:      movq    %rbx, %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %r11
        popq    %r10
        popq    %r9
        popq    %r8
        popq    %rdi
        popq    %rsi
        popq    %rbp
        popq    %rbx
        popq    %rdx
        popq    %rcx
        popq    %rax
        popfq                           // flags last: nothing after this sets them
        leaq    16(%rsp), %rsp          // drop arg and fn (lea leaves the flags alone)
        ret                             // to the resume pc; rsp is the interrupted rsp
        .seh_endproc

#endif
