#pragma once
// sign_matmul's ARM NEON variant (kernels/sign_matmul.hpp describes it): AVX2's table on 4-lane
// registers. A byte of bits is eight +-1.f lanes of kSignLut, loaded as two float32x4; two fmas per
// 8 products. (Bit masks from vtst and a select cost 2 more instructions per 4 products and row.)
#include <cstdint>
#include <cstring>

#include "bitgrad/kernels/sign_matmul/common.hpp"
#include "bitgrad/kernels/variant.hpp"

#if BITGRAD_KERNELS_ARM
#include <arm_neon.h>
#endif

namespace bitgrad::kernels::detail {

#if BITGRAD_KERNELS_ARM

// The micro-kernel (block_dispatch in sign_matmul/common.hpp calls it for each NI x NR). One float32x4
// accumulator per output: 4 x 3 of them and 6 x registers fit the 32 vector registers in prefill.
struct SignNeon {
    // One step of 8 columns (byte t of each output row) against NR x rows, split in halves lo, hi.
    template <int NI, int NR>
    static inline void step(float32x4_t (&acc)[NI][NR], const float32x4_t (&lo)[NR], const float32x4_t (&hi)[NR],
                            const SignBlock& B, int64_t t) {
#pragma GCC unroll 8
        for (int i = 0; i < NI; ++i) {
            const float* s = kSignLut.v + 8 * int64_t(B.bits[i * B.row_bytes + t]);
            const float32x4_t s_lo = vld1q_f32(s), s_hi = vld1q_f32(s + 4);
#pragma GCC unroll 4
            for (int r = 0; r < NR; ++r) acc[i][r] = vfmaq_f32(vfmaq_f32(acc[i][r], s_lo, lo[r]), s_hi, hi[r]);
        }
    }

    template <int NI, int NR>
    static void block(const SignBlock& B) {
        float32x4_t acc[NI][NR] = {};  // zeros
        const int64_t full = B.n / 8;
        float32x4_t lo[NR], hi[NR];
        for (int64_t t = 0; t < full; ++t) {
#pragma GCC unroll 4
            for (int r = 0; r < NR; ++r) {
                lo[r] = vld1q_f32(B.x + r * B.ldx + 8 * t);
                hi[r] = vld1q_f32(B.x + r * B.ldx + 8 * t + 4);
            }
            step<NI, NR>(acc, lo, hi, B, t);
        }
        if (const int64_t rem = B.n % 8) {
            // The last partial byte: columns past n count as 0 (the padding bits say -1; 0 * -1 adds
            // nothing). NEON has no masked load, so the live columns go through a zeroed buffer.
            for (int r = 0; r < NR; ++r) {
                float tail[8] = {};
                std::memcpy(tail, B.x + r * B.ldx + 8 * full, std::size_t(rem) * sizeof(float));
                lo[r] = vld1q_f32(tail);
                hi[r] = vld1q_f32(tail + 4);
            }
            step<NI, NR>(acc, lo, hi, B, full);
        }
#pragma GCC unroll 8
        for (int i = 0; i < NI; ++i)
#pragma GCC unroll 4
            for (int r = 0; r < NR; ++r) B.out[i * NR + r] = vaddvq_f32(acc[i][r]);  // a fixed pairwise order
    }
};

// Advanced SIMD is part of every AArch64 CPU.
inline bool sign_neon_supported() { return true; }

inline void sign_matmul_neon(const PackedSigns& S, const float* xa, int64_t rows, float* y) {
    sign_matmul_simd<SignNeon>(S, xa, rows, y);
}

#else

inline bool sign_neon_supported() { return false; }
inline constexpr SignFn sign_matmul_neon = nullptr;

#endif

}  // namespace bitgrad::kernels::detail
