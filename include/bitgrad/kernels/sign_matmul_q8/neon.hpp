#pragma once
// sign_matmul_q8's ARM NEON variant (kernels/sign_matmul_q8.hpp describes it). 16 sign bits become
// 16 byte masks (vqtbl1q spreads two bytes of the word over 8 lanes each, vtst tests 1, 2, .., 128);
// then, built with the dot-product extension (__ARM_FEATURE_DOTPROD, e.g. -march=armv8.2-a+dotprod),
// the masks as 0 / 1 bytes times 16 q by vdotq_s32 (groups of four into 4 int32 lanes): 1 instruction
// per 16 products and row; without it, vand keeps q where s = +1 and vpaddl + vpadal widen and add
// (3 instructions). Exact integer sums either way, like the x86 variants.
#include <cstdint>
#include <cstring>

#include "bitgrad/kernels/sign_matmul_q8/common.hpp"
#include "bitgrad/kernels/variant.hpp"

#if BITGRAD_KERNELS_ARM
#include <arm_neon.h>
#if defined(__ARM_FEATURE_DOTPROD) && defined(__linux__)
#include <sys/auxv.h>
#endif
#endif

namespace bitgrad::kernels::detail {

#if BITGRAD_KERNELS_ARM

// The micro-kernel (block_dispatch in sign_matmul/common.hpp calls it for each NI x NR).
struct SignQ8Neon {
    template <int NI, int NR>
    static void block(const Q8Block& B) {
        int32x4_t acc[NI][NR] = {};  // zeros
        // Group g of a word (columns 16g .. 16g+15): lane k reads byte 2g + k / 8 and tests bit k % 8.
        alignas(16) static constexpr uint8_t kSpread[4][16] = {{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1},
                                                               {2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3},
                                                               {4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5},
                                                               {6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7}};
        alignas(16) static constexpr uint8_t kSelect[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
        const uint8x16_t select = vld1q_u8(kSelect);
        for (int64_t w = 0; w < B.words; ++w) {  // 64 columns a step
            uint8x16_t word[NI];                 // the 8 bytes of each row's word (the upper 8 lanes unused)
#pragma GCC unroll 8
            for (int i = 0; i < NI; ++i) word[i] = vreinterpretq_u8_u64(vdupq_n_u64(B.bits[i * B.words_per_row + w]));
#pragma GCC unroll 4
            for (int g = 0; g < 4; ++g) {
                const uint8x16_t spread = vld1q_u8(kSpread[g]);
                int8x16_t qv[NR];
#pragma GCC unroll 4
                for (int r = 0; r < NR; ++r) qv[r] = vld1q_s8(B.q + r * B.stride + 64 * w + 16 * g);
#pragma GCC unroll 8
                for (int i = 0; i < NI; ++i) {
                    const uint8x16_t mask = vtstq_u8(vqtbl1q_u8(word[i], spread), select);  // 0xff where s = +1
#if defined(__ARM_FEATURE_DOTPROD)
                    const int8x16_t s01 = vreinterpretq_s8_u8(vshrq_n_u8(mask, 7));
#pragma GCC unroll 4
                    for (int r = 0; r < NR; ++r) acc[i][r] = vdotq_s32(acc[i][r], s01, qv[r]);
#else
#pragma GCC unroll 4
                    for (int r = 0; r < NR; ++r)  // |pair| <= 254 fits int16
                        acc[i][r] = vpadalq_s16(acc[i][r], vpaddlq_s8(vandq_s8(vreinterpretq_s8_u8(mask), qv[r])));
#endif
                }
            }
        }
#pragma GCC unroll 8
        for (int i = 0; i < NI; ++i)
#pragma GCC unroll 4
            for (int r = 0; r < NR; ++r) B.P[i * NR + r] = vaddvq_s32(acc[i][r]);
    }
};

// Advanced SIMD is part of every AArch64 CPU; a build that uses the dot product asks the kernel
// whether this CPU has it (Linux; elsewhere the compiler's target is taken at its word).
inline bool sign_q8_neon_supported() {
#if defined(__ARM_FEATURE_DOTPROD) && defined(__linux__)
    return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#else
    return true;
#endif
}

inline void sign_q8_neon(const PackedSigns& S, const Q8Rows& X, int32_t* P) { sign_q8_simd<SignQ8Neon>(S, X, P); }

#else

inline bool sign_q8_neon_supported() { return false; }
inline constexpr SignQ8Fn sign_q8_neon = nullptr;

#endif

}  // namespace bitgrad::kernels::detail
