// Layout of keel_test_regs, the block shared by the register-check loops
// (conformance/arch/regs_*.S) and conformance/interrupt_test.cpp. Plain
// #defines so the assembler can use them; interrupt_test.cpp checks them
// against its struct with static_assert.
#pragma once

#define KT_STOP 0          // u8: the loop exits when nonzero
#define KT_IN_LOOP 1       // u8: the loop stores 1 here on every iteration
#define KT_LEVEL 8         // u64: x86_64 vector state to seed: 0 SSE, 1 AVX, 2 AVX-512
#define KT_SEED_GP 16      // u64[32]: GP register seeds (x86_64: see regs_x86_64.S; aarch64: x0..x30)
#define KT_OUT_GP 272      // u64[32]: GP registers when the loop ended
#define KT_SEED_FLAGS 528  // aarch64: NZCV seed (x86_64: the loop sets DF itself)
#define KT_OUT_FLAGS 536   // RFLAGS / NZCV when the loop ended
#define KT_SEED_FPCR 544   // MXCSR / FPCR seed
#define KT_OUT_FPCR 552
#define KT_SEED_FPSR 560   // aarch64 FPSR seed
#define KT_OUT_FPSR 568
#define KT_SP_BEFORE 576   // sp while looping (the loop never moves it)
#define KT_SP_AFTER 584    // sp when the loop ended
#define KT_SEED_K 640      // u64[8]: AVX-512 opmask seeds
#define KT_OUT_K 704
#define KT_SEED_VEC 768    // 32 x 64 bytes: vector register seeds (xmm/ymm/zmm or v0-v31)
#define KT_OUT_VEC 2816
#define KT_SIZE 4864

#if defined(__cplusplus)
#include <cstddef>
#include <cstdint>

struct alignas(64) KeelTestRegs {
  uint8_t stop;
  uint8_t in_loop;
  uint8_t pad0[6];
  uint64_t level;
  uint64_t seed_gp[32];
  uint64_t out_gp[32];
  uint64_t seed_flags, out_flags;
  uint64_t seed_fpcr, out_fpcr;
  uint64_t seed_fpsr, out_fpsr;
  uint64_t sp_before, sp_after;
  uint8_t pad1[KT_SEED_K - KT_SP_AFTER - 8];
  uint64_t seed_k[8];
  uint64_t out_k[8];
  uint8_t seed_vec[32][64];
  uint8_t out_vec[32][64];
};
static_assert(offsetof(KeelTestRegs, in_loop) == KT_IN_LOOP);
static_assert(offsetof(KeelTestRegs, level) == KT_LEVEL);
static_assert(offsetof(KeelTestRegs, seed_gp) == KT_SEED_GP);
static_assert(offsetof(KeelTestRegs, out_gp) == KT_OUT_GP);
static_assert(offsetof(KeelTestRegs, seed_flags) == KT_SEED_FLAGS);
static_assert(offsetof(KeelTestRegs, out_flags) == KT_OUT_FLAGS);
static_assert(offsetof(KeelTestRegs, seed_fpcr) == KT_SEED_FPCR);
static_assert(offsetof(KeelTestRegs, out_fpcr) == KT_OUT_FPCR);
static_assert(offsetof(KeelTestRegs, seed_fpsr) == KT_SEED_FPSR);
static_assert(offsetof(KeelTestRegs, out_fpsr) == KT_OUT_FPSR);
static_assert(offsetof(KeelTestRegs, sp_before) == KT_SP_BEFORE);
static_assert(offsetof(KeelTestRegs, sp_after) == KT_SP_AFTER);
static_assert(offsetof(KeelTestRegs, seed_k) == KT_SEED_K);
static_assert(offsetof(KeelTestRegs, out_k) == KT_OUT_K);
static_assert(offsetof(KeelTestRegs, seed_vec) == KT_SEED_VEC);
static_assert(offsetof(KeelTestRegs, out_vec) == KT_OUT_VEC);
static_assert(sizeof(KeelTestRegs) == KT_SIZE);

// Defined in conformance/arch/regs_*.S (or as stubs in interrupt_os.cpp
// where those are not built).
extern "C" {
extern KeelTestRegs keel_test_regs;
void keel_test_reg_loop();
void keel_test_loop_begin();  // labels: the loop's first instruction ...
void keel_test_loop_end();    // ... and the first one after it
void keel_test_clobber();
}
#endif
