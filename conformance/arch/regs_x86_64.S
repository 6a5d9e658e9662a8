// x86_64 (SysV and Win64): the loop the interruption tests interrupt, and a
// function that clobbers every register its ABI lets it clobber.
//
// keel_test_reg_loop seeds all 15 general-purpose registers, the vector
// registers (xmm0-15; ymm0-15 at level 1; zmm0-31 and k0-7 at level 2),
// MXCSR and DF=1 from keel_test_regs, then spins in a call-free loop that
// touches no register: it addresses memory RIP-relative only. When `stop`
// is set it stores every register and RFLAGS back, so the test can compare
// them bit for bit with the seeds. A corrupted ZF between the cmp and the je
// would end the loop early: the test sees stop == 0 in that case.
#include "conformance/arch/test_regs.h"

#if defined(__x86_64__)

#if defined(__APPLE__)
#define SYM(x) _##x
#define FUNC(x) .globl _##x; .p2align 4; _##x:
#define LABEL(x) .globl _##x; _##x:
#define ENDFUNC(x)
#elif defined(_WIN32)
#define SYM(x) x
#define FUNC(x) .globl x; .def x; .scl 2; .type 32; .endef; .p2align 4; x:
#define LABEL(x) .globl x; x:
#define ENDFUNC(x)
#else
#define SYM(x) x
#define FUNC(x) .globl x; .type x, @function; .p2align 4; x:
#define LABEL(x) .globl x; x:
#define ENDFUNC(x) .size x, .-x
#endif

#define R(off) SYM(keel_test_regs)+(off)(%rip)

        .bss
        .p2align 6
        .globl SYM(keel_test_regs)
SYM(keel_test_regs):
        .zero KT_SIZE

        .text
FUNC(keel_test_reg_loop)
        pushq   %rbx
        pushq   %rbp
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
#if defined(_WIN32)
        pushq   %rdi                    // callee-saved on Win64, with xmm6-15
        pushq   %rsi
        subq    $168, %rsp
        movdqu  %xmm6, 0(%rsp)
        movdqu  %xmm7, 16(%rsp)
        movdqu  %xmm8, 32(%rsp)
        movdqu  %xmm9, 48(%rsp)
        movdqu  %xmm10, 64(%rsp)
        movdqu  %xmm11, 80(%rsp)
        movdqu  %xmm12, 96(%rsp)
        movdqu  %xmm13, 112(%rsp)
        movdqu  %xmm14, 128(%rsp)
        movdqu  %xmm15, 144(%rsp)
        stmxcsr 160(%rsp)
#else
        subq    $8, %rsp
        stmxcsr (%rsp)
#endif
        movq    %rsp, R(KT_SP_BEFORE)
        leaq    R(0), %rax
        movq    KT_LEVEL(%rax), %rcx
        cmpq    $2, %rcx
        je      .Lload_zmm
        cmpq    $1, %rcx
        je      .Lload_ymm
#define LX(i) movdqu KT_SEED_VEC+64*i(%rax), %xmm##i
        LX(0); LX(1); LX(2); LX(3); LX(4); LX(5); LX(6); LX(7)
        LX(8); LX(9); LX(10); LX(11); LX(12); LX(13); LX(14); LX(15)
        jmp     .Lloaded
.Lload_ymm:
#define LY(i) vmovdqu KT_SEED_VEC+64*i(%rax), %ymm##i
        LY(0); LY(1); LY(2); LY(3); LY(4); LY(5); LY(6); LY(7)
        LY(8); LY(9); LY(10); LY(11); LY(12); LY(13); LY(14); LY(15)
        jmp     .Lloaded
.Lload_zmm:
#define LZ(i) vmovdqu64 KT_SEED_VEC+64*i(%rax), %zmm##i
        LZ(0); LZ(1); LZ(2); LZ(3); LZ(4); LZ(5); LZ(6); LZ(7)
        LZ(8); LZ(9); LZ(10); LZ(11); LZ(12); LZ(13); LZ(14); LZ(15)
        LZ(16); LZ(17); LZ(18); LZ(19); LZ(20); LZ(21); LZ(22); LZ(23)
        LZ(24); LZ(25); LZ(26); LZ(27); LZ(28); LZ(29); LZ(30); LZ(31)
#define LK(i) kmovq KT_SEED_K+8*i(%rax), %k##i
        LK(0); LK(1); LK(2); LK(3); LK(4); LK(5); LK(6); LK(7)
.Lloaded:
        ldmxcsr KT_SEED_FPCR(%rax)
        // GP seed order: rax rbx rcx rdx rsi rdi rbp r8 .. r15
        movq    R(KT_SEED_GP+8*1), %rbx
        movq    R(KT_SEED_GP+8*2), %rcx
        movq    R(KT_SEED_GP+8*3), %rdx
        movq    R(KT_SEED_GP+8*4), %rsi
        movq    R(KT_SEED_GP+8*5), %rdi
        movq    R(KT_SEED_GP+8*6), %rbp
        movq    R(KT_SEED_GP+8*7), %r8
        movq    R(KT_SEED_GP+8*8), %r9
        movq    R(KT_SEED_GP+8*9), %r10
        movq    R(KT_SEED_GP+8*10), %r11
        movq    R(KT_SEED_GP+8*11), %r12
        movq    R(KT_SEED_GP+8*12), %r13
        movq    R(KT_SEED_GP+8*13), %r14
        movq    R(KT_SEED_GP+8*14), %r15
        movq    R(KT_SEED_GP+8*0), %rax
        std                             // DF=1: an injected call must see it clear and give it back set
LABEL(keel_test_loop_begin)
        movb    $1, R(KT_IN_LOOP)
        cmpb    $0, R(KT_STOP)
        je      SYM(keel_test_loop_begin)
LABEL(keel_test_loop_end)
        pushfq
        movq    %rax, R(KT_OUT_GP+8*0)
        movq    %rbx, R(KT_OUT_GP+8*1)
        movq    %rcx, R(KT_OUT_GP+8*2)
        movq    %rdx, R(KT_OUT_GP+8*3)
        movq    %rsi, R(KT_OUT_GP+8*4)
        movq    %rdi, R(KT_OUT_GP+8*5)
        movq    %rbp, R(KT_OUT_GP+8*6)
        movq    %r8, R(KT_OUT_GP+8*7)
        movq    %r9, R(KT_OUT_GP+8*8)
        movq    %r10, R(KT_OUT_GP+8*9)
        movq    %r11, R(KT_OUT_GP+8*10)
        movq    %r12, R(KT_OUT_GP+8*11)
        movq    %r13, R(KT_OUT_GP+8*12)
        movq    %r14, R(KT_OUT_GP+8*13)
        movq    %r15, R(KT_OUT_GP+8*14)
        popq    %rax
        movq    %rax, R(KT_OUT_FLAGS)
        cld
        movq    %rsp, R(KT_SP_AFTER)
        leaq    R(0), %rax
        stmxcsr KT_OUT_FPCR(%rax)
        movq    KT_LEVEL(%rax), %rcx
        cmpq    $2, %rcx
        je      .Lstore_zmm
        cmpq    $1, %rcx
        je      .Lstore_ymm
#define SX(i) movdqu %xmm##i, KT_OUT_VEC+64*i(%rax)
        SX(0); SX(1); SX(2); SX(3); SX(4); SX(5); SX(6); SX(7)
        SX(8); SX(9); SX(10); SX(11); SX(12); SX(13); SX(14); SX(15)
        jmp     .Lstored
.Lstore_ymm:
#define SY(i) vmovdqu %ymm##i, KT_OUT_VEC+64*i(%rax)
        SY(0); SY(1); SY(2); SY(3); SY(4); SY(5); SY(6); SY(7)
        SY(8); SY(9); SY(10); SY(11); SY(12); SY(13); SY(14); SY(15)
        vzeroupper
        jmp     .Lstored
.Lstore_zmm:
#define SZ(i) vmovdqu64 %zmm##i, KT_OUT_VEC+64*i(%rax)
        SZ(0); SZ(1); SZ(2); SZ(3); SZ(4); SZ(5); SZ(6); SZ(7)
        SZ(8); SZ(9); SZ(10); SZ(11); SZ(12); SZ(13); SZ(14); SZ(15)
        SZ(16); SZ(17); SZ(18); SZ(19); SZ(20); SZ(21); SZ(22); SZ(23)
        SZ(24); SZ(25); SZ(26); SZ(27); SZ(28); SZ(29); SZ(30); SZ(31)
#define SK(i) kmovq %k##i, KT_OUT_K+8*i(%rax)
        SK(0); SK(1); SK(2); SK(3); SK(4); SK(5); SK(6); SK(7)
        vzeroupper
.Lstored:
#if defined(_WIN32)
        ldmxcsr 160(%rsp)
        movdqu  0(%rsp), %xmm6
        movdqu  16(%rsp), %xmm7
        movdqu  32(%rsp), %xmm8
        movdqu  48(%rsp), %xmm9
        movdqu  64(%rsp), %xmm10
        movdqu  80(%rsp), %xmm11
        movdqu  96(%rsp), %xmm12
        movdqu  112(%rsp), %xmm13
        movdqu  128(%rsp), %xmm14
        movdqu  144(%rsp), %xmm15
        addq    $168, %rsp
        popq    %rsi
        popq    %rdi
#else
        ldmxcsr (%rsp)
        addq    $8, %rsp
#endif
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbp
        popq    %rbx
        ret
ENDFUNC(keel_test_reg_loop)

// Clobber what the ABI lets a callee clobber (SysV: every GP register but
// rbx/rbp/r12-15, every vector register; Win64 also keeps rsi/rdi/xmm6-15),
// set arithmetic flags and MXCSR's sticky exception bits, and use DF
// (restoring it clear, as the ABI requires at return).
FUNC(keel_test_clobber)
        movq    $0x5a5a5a5a5a5a5a5a, %rax
        movq    %rax, %rcx
        movq    %rax, %rdx
        movq    %rax, %r8
        movq    %rax, %r9
        movq    %rax, %r10
        movq    %rax, %r11
#if !defined(_WIN32)
        movq    %rax, %rsi
        movq    %rax, %rdi
#endif
        movq    %rax, %xmm0
        pshufd  $0x1b, %xmm0, %xmm0
        movdqa  %xmm0, %xmm1
        movdqa  %xmm0, %xmm2
        movdqa  %xmm0, %xmm3
        movdqa  %xmm0, %xmm4
        movdqa  %xmm0, %xmm5
#if !defined(_WIN32)
        movdqa  %xmm0, %xmm6
        movdqa  %xmm0, %xmm7
        movdqa  %xmm0, %xmm8
        movdqa  %xmm0, %xmm9
        movdqa  %xmm0, %xmm10
        movdqa  %xmm0, %xmm11
        movdqa  %xmm0, %xmm12
        movdqa  %xmm0, %xmm13
        movdqa  %xmm0, %xmm14
        movdqa  %xmm0, %xmm15
#endif
        movq    R(KT_LEVEL), %rax
        cmpq    $1, %rax
        jb      1f
        vpcmpeqb %ymm0, %ymm0, %ymm0    // all ones, upper half included
        vmovdqa %ymm0, %ymm1
        vmovdqa %ymm0, %ymm2
        vmovdqa %ymm0, %ymm3
        vmovdqa %ymm0, %ymm4
        vmovdqa %ymm0, %ymm5
        cmpq    $2, %rax
        jb      1f
        vpternlogd $0xff, %zmm16, %zmm16, %zmm16
        vmovdqa64 %zmm16, %zmm17
        vmovdqa64 %zmm16, %zmm24
        vmovdqa64 %zmm16, %zmm31
        vinserti64x4 $1, %ymm0, %zmm0, %zmm0
        movq    $-1, %rax
        kmovq   %rax, %k1
        kmovq   %rax, %k7
1:      subq    $8, %rsp
        stmxcsr (%rsp)
        orl     $0x3f, (%rsp)           // sticky exception flags: status, not control
        ldmxcsr (%rsp)
        addq    $8, %rsp
        std
        cld
        movq    $-1, %rax
        addq    $1, %rax                // CF=1 ZF=1
        ret
ENDFUNC(keel_test_clobber)

#endif

#if defined(__ELF__)
        .section .note.GNU-stack, "", @progbits
#endif
