#pragma once
// sign_matmul's AVX-512 variant (kernels/sign_matmul.hpp describes it): 16 bits are a __mmask16,
// acc += x on the lanes whose bit is 1, then y = 2 * acc - sum_j xa[j]. Needs AVX512F only.
#include <cstdint>
#include <cstring>

#include "bitgrad/kernels/sign_matmul/common.hpp"
#include "bitgrad/kernels/variant.hpp"

#if BITGRAD_KERNELS_X86
#include <immintrin.h>
#endif

namespace bitgrad::kernels::detail {

#if BITGRAD_KERNELS_X86

// Sum of the 16 lanes in a fixed order. (Not _mm512_reduce_add_ps, the unmasked shuffle or
// _mm512_castps512_ps128: GCC 12's headers build them on _mm*_undefined_ps and raise a false
// -Wuninitialized, GCC bug 105593.)
__attribute__((target("avx512f"))) inline float hsum_avx512(__m512 v) {
    v = _mm512_add_ps(v, _mm512_mask_shuffle_f32x4(v, 0xffff, v, v, _MM_SHUFFLE(1, 0, 3, 2)));
    v = _mm512_add_ps(v, _mm512_mask_shuffle_f32x4(v, 0xffff, v, v, _MM_SHUFFLE(2, 3, 0, 1)));
    alignas(64) float t[16];  // each 128-bit quarter now holds the same 4 partial sums
    _mm512_store_ps(t, v);
    return (t[0] + t[2]) + (t[1] + t[3]);
}

// One step of 16 columns (bits 16t .. 16t+15 of each output row, a __mmask16) against NR x vectors.
template <int NI, int NR>
__attribute__((target("avx512f"), always_inline)) inline void sign_step_avx512(__m512 (&acc)[NI][NR], __m512 (&tot)[NR],
                                                                               const __m512 (&xv)[NR],
                                                                               const SignBlock& B, int64_t t) {
#pragma GCC unroll 4
    for (int r = 0; r < NR; ++r) tot[r] = _mm512_add_ps(tot[r], xv[r]);
#pragma GCC unroll 8
    for (int i = 0; i < NI; ++i) {
        uint16_t m;
        std::memcpy(&m, B.bits + i * B.row_bytes + 2 * t, 2);  // little-endian: bit k = column 16t + k
        const __mmask16 k = __mmask16(m);
#pragma GCC unroll 4
        for (int r = 0; r < NR; ++r) acc[i][r] = _mm512_mask_add_ps(acc[i][r], k, acc[i][r], xv[r]);
    }
}

// The micro-kernel (block_dispatch in sign_matmul/common.hpp calls it for each NI x NR).
struct SignAvx512 {
    template <int NI, int NR>
    __attribute__((target("avx512f"))) static void block(const SignBlock& B) {
        __m512 acc[NI][NR] = {}, tot[NR] = {};  // zeros
        const int64_t full = B.n / 16;
        for (int64_t t = 0; t < full; ++t) {
            __m512 xv[NR];
#pragma GCC unroll 4
            for (int r = 0; r < NR; ++r) xv[r] = _mm512_loadu_ps(B.x + r * B.ldx + 16 * t);
            sign_step_avx512<NI, NR>(acc, tot, xv, B, t);
        }
        if (const int64_t rem = B.n % 16) {
            // Lanes past n load as 0; the 16-bit read stays inside the row (a row has whole 64-bit words).
            const __mmask16 keep = __mmask16((1u << rem) - 1u);
            __m512 xv[NR];
#pragma GCC unroll 4
            for (int r = 0; r < NR; ++r) xv[r] = _mm512_maskz_loadu_ps(keep, B.x + r * B.ldx + 16 * full);
            sign_step_avx512<NI, NR>(acc, tot, xv, B, full);
        }
#pragma GCC unroll 4
        for (int r = 0; r < NR; ++r) {
            const float total = hsum_avx512(tot[r]);
#pragma GCC unroll 8
            for (int i = 0; i < NI; ++i) B.out[i * NR + r] = 2.f * hsum_avx512(acc[i][r]) - total;
        }
    }
};

// Masked adds and loads only need F.
inline bool sign_avx512_supported() { return __builtin_cpu_supports("avx512f"); }

inline void sign_matmul_avx512(const PackedSigns& S, const float* xa, int64_t rows, float* y) {
    sign_matmul_simd<SignAvx512>(S, xa, rows, y);
}

#else

inline bool sign_avx512_supported() { return false; }
inline constexpr SignFn sign_matmul_avx512 = nullptr;

#endif

}  // namespace bitgrad::kernels::detail
