// Context switch for x86_64 Windows (Microsoft x64 ABI), GAS syntax for
// mingw-w64. context_x86_64_win64.asm is the same code in MASM for MSVC; keep
// the two in step. See context.h.
//
// Saved on the suspended context's own stack, lowest address first (272 B):
//   [sp+0]   xmm6..xmm15       callee-saved in the x64 ABI (unlike SysV)
//   [sp+160] MXCSR, x87 CW     per-context rounding modes / exception masks
//   [sp+168] TIB StackBase (gs:0x08), StackLimit (gs:0x10),
//            DeallocationStack (gs:0x1478)
//   [sp+192] TIB ExceptionList (gs:0x00)
//   [sp+200] r15 r14 r13 r12 rsi rdi rbx rbp
//   [sp+264] return address
// The TIB bounds travel with the context because Windows reads them: the
// exception dispatcher rejects frames outside [StackLimit, StackBase] (a C++
// throw on a goroutine stack would otherwise terminate), stack probing
// (__chkstk) compares against StackLimit, and a fault between
// DeallocationStack and StackLimit is reported as a stack overflow.
// ExceptionList is unused by x64 Windows itself, but Wine chains its own
// internal handler frames there and calls every frame whose address is below
// the unwinding rsp: with the thread's chain left in place, a throw on a
// goroutine stack placed above the thread stack ran a thread-start handler
// first, which "continued execution", and std::terminate followed. Each
// context keeps its own chain, as the Fibers API does; a new one starts
// empty (-1, the end-of-chain marker).

        .text
        .globl  keel_context_switch
        .p2align 4
// void keel_context_switch(Context* from /*rcx*/, const Context* to /*rdx*/)
keel_context_switch:
        pushq   %rbp
        pushq   %rbx
        pushq   %rdi
        pushq   %rsi
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        subq    $200, %rsp              // rsp is now 16-byte aligned
        movaps  %xmm6, 0(%rsp)
        movaps  %xmm7, 16(%rsp)
        movaps  %xmm8, 32(%rsp)
        movaps  %xmm9, 48(%rsp)
        movaps  %xmm10, 64(%rsp)
        movaps  %xmm11, 80(%rsp)
        movaps  %xmm12, 96(%rsp)
        movaps  %xmm13, 112(%rsp)
        movaps  %xmm14, 128(%rsp)
        movaps  %xmm15, 144(%rsp)
        stmxcsr 160(%rsp)
        fnstcw  164(%rsp)
        movq    %gs:0x08, %rax
        movq    %rax, 168(%rsp)
        movq    %gs:0x10, %rax
        movq    %rax, 176(%rsp)
        movq    %gs:0x1478, %rax
        movq    %rax, 184(%rsp)
        movq    %gs:0x00, %rax
        movq    %rax, 192(%rsp)

        movq    %rsp, (%rcx)            // from->sp
        movq    (%rdx), %rsp            // to->sp: now on the other stack

        movaps  0(%rsp), %xmm6
        movaps  16(%rsp), %xmm7
        movaps  32(%rsp), %xmm8
        movaps  48(%rsp), %xmm9
        movaps  64(%rsp), %xmm10
        movaps  80(%rsp), %xmm11
        movaps  96(%rsp), %xmm12
        movaps  112(%rsp), %xmm13
        movaps  128(%rsp), %xmm14
        movaps  144(%rsp), %xmm15
        ldmxcsr 160(%rsp)
        fldcw   164(%rsp)
        movq    168(%rsp), %rax
        movq    %rax, %gs:0x08
        movq    176(%rsp), %rax
        movq    %rax, %gs:0x10
        movq    184(%rsp), %rax
        movq    %rax, %gs:0x1478
        movq    192(%rsp), %rax
        movq    %rax, %gs:0x00
        addq    $200, %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rsi
        popq    %rdi
        popq    %rbx
        popq    %rbp
        ret

// void keel_context_make(Context* ctx /*rcx*/, const ContextStack* s /*rdx*/,
//                        void (*entry)(void*) /*r8*/, void* arg /*r9*/)
// The top 48 bytes of the stack are zero: the 32-byte shadow space the call
// in keel_context_start owes its callee, then 16 bytes of padding. After the
// frame's `ret` rsp = top-48, 16-byte aligned at that call as the ABI wants,
// and [rsp] = 0 reads as a null return address, so a stack walk ends there.
        .globl  keel_context_make
        .p2align 4
keel_context_make:
        movq    8(%rdx), %rax           // s->hi
        andq    $-16, %rax              // top
        xorl    %r10d, %r10d
        movq    %r10, -8(%rax)
        movq    %r10, -16(%rax)
        movq    %r10, -24(%rax)
        movq    %r10, -32(%rax)
        movq    %r10, -40(%rax)
        movq    %r10, -48(%rax)
        leaq    -320(%rax), %r11        // frame = top - 48 - 272
        xorps   %xmm0, %xmm0
        movaps  %xmm0, 0(%r11)          // xmm6..xmm15 = 0
        movaps  %xmm0, 16(%r11)
        movaps  %xmm0, 32(%r11)
        movaps  %xmm0, 48(%r11)
        movaps  %xmm0, 64(%r11)
        movaps  %xmm0, 80(%r11)
        movaps  %xmm0, 96(%r11)
        movaps  %xmm0, 112(%r11)
        movaps  %xmm0, 128(%r11)
        movaps  %xmm0, 144(%r11)
        stmxcsr 160(%r11)               // the new context inherits our FP control
        fnstcw  164(%r11)
        movq    8(%rdx), %rax
        movq    %rax, 168(%r11)         // StackBase = hi
        movq    0(%rdx), %rax
        movq    %rax, 176(%r11)         // StackLimit = lo (all of [lo, hi) is committed)
        movq    16(%rdx), %rax
        movq    %rax, 184(%r11)         // DeallocationStack = reserved_lo
        movq    $-1, 192(%r11)          // ExceptionList: empty chain
        movq    %r10, 200(%r11)         // r15
        movq    %r10, 208(%r11)         // r14
        movq    %r8, 216(%r11)          // r13 = entry
        movq    %r9, 224(%r11)          // r12 = arg
        movq    %r10, 232(%r11)         // rsi
        movq    %r10, 240(%r11)         // rdi
        movq    %r10, 248(%r11)         // rbx
        movq    %r10, 256(%r11)         // rbp
        leaq    keel_context_start(%rip), %rax
        movq    %rax, 264(%r11)
        movq    %r11, (%rcx)
        ret

        .p2align 4
keel_context_start:
        movq    %r12, %rcx
        callq   *%r13
        ud2                             // entry returned: a bug, trap
