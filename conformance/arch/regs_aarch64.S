// aarch64 (Linux, macOS): the loop the interruption tests interrupt, and a
// function that clobbers every register its ABI lets it clobber.
//
// keel_test_reg_loop seeds x0-x30 (not x18 on Darwin, where it is reserved
// for the OS), v0-v31, NZCV, FPCR and FPSR from keel_test_regs, then spins
// in a call-free loop. A load needs a register, so three of the seeds have
// meanings the test also sets: x15 = 1 (stored as in_loop), x16 = the
// address of keel_test_regs (the loop's base register), x17 = the last
// loaded stop byte (0 while looping, 1 at the end). When stop is set it
// stores every register back, so the test compares them bit for bit.
#include "conformance/arch/test_regs.h"

#if defined(__aarch64__)

#if defined(__APPLE__)
#define FUNC(x) .globl _##x; .p2align 2; _##x:
#define LABEL(x) .globl _##x; _##x:
#define ENDFUNC(x)
#define ADDR(reg, x) adrp reg, _##x@PAGE; add reg, reg, _##x@PAGEOFF
#define SYM(x) _##x
#else
#define FUNC(x) .globl x; .type x, %function; .p2align 2; x:
#define LABEL(x) .globl x; x:
#define ENDFUNC(x) .size x, .-x
#define ADDR(reg, x) adrp reg, x; add reg, reg, :lo12:x
#define SYM(x) x
#endif

        .bss
        .p2align 6
        .globl SYM(keel_test_regs)
SYM(keel_test_regs):
        .zero KT_SIZE

        .text
FUNC(keel_test_reg_loop)
        stp     x29, x30, [sp, #-176]!
        mov     x29, sp
        stp     x19, x20, [sp, #16]
        stp     x21, x22, [sp, #32]
        stp     x23, x24, [sp, #48]
        stp     x25, x26, [sp, #64]
        stp     x27, x28, [sp, #80]
        stp     d8, d9, [sp, #96]
        stp     d10, d11, [sp, #112]
        stp     d12, d13, [sp, #128]
        stp     d14, d15, [sp, #144]
        mrs     x9, fpcr
        str     x9, [sp, #160]
#if !defined(__APPLE__)
        str     x18, [sp, #168]
#endif
        ADDR(x16, keel_test_regs)
        mov     x9, sp
        str     x9, [x16, #KT_SP_BEFORE]
        add     x9, x16, #KT_SEED_VEC
        ldr q0, [x9, #0*64];   ldr q1, [x9, #1*64];   ldr q2, [x9, #2*64];   ldr q3, [x9, #3*64]
        ldr q4, [x9, #4*64];   ldr q5, [x9, #5*64];   ldr q6, [x9, #6*64];   ldr q7, [x9, #7*64]
        ldr q8, [x9, #8*64];   ldr q9, [x9, #9*64];   ldr q10, [x9, #10*64]; ldr q11, [x9, #11*64]
        ldr q12, [x9, #12*64]; ldr q13, [x9, #13*64]; ldr q14, [x9, #14*64]; ldr q15, [x9, #15*64]
        ldr q16, [x9, #16*64]; ldr q17, [x9, #17*64]; ldr q18, [x9, #18*64]; ldr q19, [x9, #19*64]
        ldr q20, [x9, #20*64]; ldr q21, [x9, #21*64]; ldr q22, [x9, #22*64]; ldr q23, [x9, #23*64]
        ldr q24, [x9, #24*64]; ldr q25, [x9, #25*64]; ldr q26, [x9, #26*64]; ldr q27, [x9, #27*64]
        ldr q28, [x9, #28*64]; ldr q29, [x9, #29*64]; ldr q30, [x9, #30*64]; ldr q31, [x9, #31*64]
        ldr     x9, [x16, #KT_SEED_FPCR]
        msr     fpcr, x9
        ldr     x9, [x16, #KT_SEED_FPSR]
        msr     fpsr, x9
        ldr     x9, [x16, #KT_SEED_FLAGS]
        msr     nzcv, x9
        add     x17, x16, #KT_SEED_GP
        ldp     x0, x1, [x17, #0*8]
        ldp     x2, x3, [x17, #2*8]
        ldp     x4, x5, [x17, #4*8]
        ldp     x6, x7, [x17, #6*8]
        ldp     x8, x9, [x17, #8*8]
        ldp     x10, x11, [x17, #10*8]
        ldp     x12, x13, [x17, #12*8]
        ldr     x14, [x17, #14*8]
        ldr     x15, [x17, #15*8]       // 1
#if !defined(__APPLE__)
        ldr     x18, [x17, #18*8]
#endif
        ldp     x19, x20, [x17, #19*8]
        ldp     x21, x22, [x17, #21*8]
        ldp     x23, x24, [x17, #23*8]
        ldp     x25, x26, [x17, #25*8]
        ldp     x27, x28, [x17, #27*8]
        ldp     x29, x30, [x17, #29*8]
        mov     x17, #0
LABEL(keel_test_loop_begin)
        strb    w15, [x16, #KT_IN_LOOP]
        ldrb    w17, [x16, #KT_STOP]
        cbz     w17, SYM(keel_test_loop_begin)
LABEL(keel_test_loop_end)
        add     x16, x16, #KT_OUT_GP    // x16 is checked as the address of keel_test_regs:
        stp     x0, x1, [x16, #0*8]     // store it back as it was below
        stp     x2, x3, [x16, #2*8]
        stp     x4, x5, [x16, #4*8]
        stp     x6, x7, [x16, #6*8]
        stp     x8, x9, [x16, #8*8]
        stp     x10, x11, [x16, #10*8]
        stp     x12, x13, [x16, #12*8]
        stp     x14, x15, [x16, #14*8]
        sub     x9, x16, #KT_OUT_GP
        stp     x9, x17, [x16, #16*8]
#if !defined(__APPLE__)
        str     x18, [x16, #18*8]
#endif
        stp     x19, x20, [x16, #19*8]
        stp     x21, x22, [x16, #21*8]
        stp     x23, x24, [x16, #23*8]
        stp     x25, x26, [x16, #25*8]
        stp     x27, x28, [x16, #27*8]
        stp     x29, x30, [x16, #29*8]
        sub     x16, x16, #KT_OUT_GP
        mrs     x9, nzcv
        str     x9, [x16, #KT_OUT_FLAGS]
        mrs     x9, fpcr
        str     x9, [x16, #KT_OUT_FPCR]
        mrs     x9, fpsr
        str     x9, [x16, #KT_OUT_FPSR]
        mov     x9, sp
        str     x9, [x16, #KT_SP_AFTER]
        add     x9, x16, #KT_OUT_VEC
        str q0, [x9, #0*64];   str q1, [x9, #1*64];   str q2, [x9, #2*64];   str q3, [x9, #3*64]
        str q4, [x9, #4*64];   str q5, [x9, #5*64];   str q6, [x9, #6*64];   str q7, [x9, #7*64]
        str q8, [x9, #8*64];   str q9, [x9, #9*64];   str q10, [x9, #10*64]; str q11, [x9, #11*64]
        str q12, [x9, #12*64]; str q13, [x9, #13*64]; str q14, [x9, #14*64]; str q15, [x9, #15*64]
        str q16, [x9, #16*64]; str q17, [x9, #17*64]; str q18, [x9, #18*64]; str q19, [x9, #19*64]
        str q20, [x9, #20*64]; str q21, [x9, #21*64]; str q22, [x9, #22*64]; str q23, [x9, #23*64]
        str q24, [x9, #24*64]; str q25, [x9, #25*64]; str q26, [x9, #26*64]; str q27, [x9, #27*64]
        str q28, [x9, #28*64]; str q29, [x9, #29*64]; str q30, [x9, #30*64]; str q31, [x9, #31*64]
        ldr     x9, [sp, #160]
        msr     fpcr, x9
        msr     fpsr, xzr
#if !defined(__APPLE__)
        ldr     x18, [sp, #168]
#endif
        ldp     d14, d15, [sp, #144]
        ldp     d12, d13, [sp, #128]
        ldp     d10, d11, [sp, #112]
        ldp     d8, d9, [sp, #96]
        ldp     x27, x28, [sp, #80]
        ldp     x25, x26, [sp, #64]
        ldp     x23, x24, [sp, #48]
        ldp     x21, x22, [sp, #32]
        ldp     x19, x20, [sp, #16]
        ldp     x29, x30, [sp], #176
        ret
ENDFUNC(keel_test_reg_loop)

// Clobber what AAPCS64 lets a callee clobber: x0-x17 (and x18 on Linux,
// where it is an ordinary temporary), v0-v7 and v16-v31 whole, the upper
// halves of v8-v15, NZCV and FPSR's sticky flags.
FUNC(keel_test_clobber)
        mov     x0, #0x5a5a
        movk    x0, #0xa5a5, lsl #16
        mov x1, x0;  mov x2, x0;  mov x3, x0;  mov x4, x0;  mov x5, x0;  mov x6, x0;  mov x7, x0
        mov x8, x0;  mov x9, x0;  mov x10, x0; mov x11, x0; mov x12, x0; mov x13, x0; mov x14, x0
        mov x15, x0; mov x16, x0; mov x17, x0
#if !defined(__APPLE__)
        mov     x18, x0
#endif
        dup     v0.2d, x0
        mov v1.16b, v0.16b;  mov v2.16b, v0.16b;  mov v3.16b, v0.16b;  mov v4.16b, v0.16b
        mov v5.16b, v0.16b;  mov v6.16b, v0.16b;  mov v7.16b, v0.16b
        mov v16.16b, v0.16b; mov v17.16b, v0.16b; mov v23.16b, v0.16b; mov v31.16b, v0.16b
        ins v8.d[1], x0;  ins v9.d[1], x0;  ins v10.d[1], x0; ins v11.d[1], x0
        ins v12.d[1], x0; ins v13.d[1], x0; ins v14.d[1], x0; ins v15.d[1], x0
        mov     x1, #0x9f
        msr     fpsr, x1
        mov     x1, #0xf0000000
        msr     nzcv, x1
        ret
ENDFUNC(keel_test_clobber)

#endif

#if defined(__ELF__)
        .section .note.GNU-stack, "", %progbits
#endif
