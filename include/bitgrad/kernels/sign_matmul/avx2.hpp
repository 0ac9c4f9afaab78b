#pragma once
// sign_matmul's AVX2 + FMA variant (kernels/sign_matmul.hpp describes it): a 256-entry table maps a
// byte of bits to eight +-1.f lanes; one fma per 8 products.
#include <cstdint>
#include <cstring>

#include "bitgrad/kernels/sign_matmul/common.hpp"
#include "bitgrad/kernels/variant.hpp"

#if BITGRAD_KERNELS_X86
#include <immintrin.h>
#endif

namespace bitgrad::kernels::detail {

#if BITGRAD_KERNELS_X86

__attribute__((target("avx2,fma"))) inline float hsum_avx2(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// One step of 8 columns (byte t of each output row) against NR loaded x vectors. (A helper, not a
// lambda: a lambda would not inherit the target attribute.)
template <int NI, int NR>
__attribute__((target("avx2,fma"), always_inline)) inline void sign_step_avx2(__m256 (&acc)[NI][NR],
                                                                              const __m256 (&xv)[NR],
                                                                              const SignBlock& B, int64_t t) {
#pragma GCC unroll 8
    for (int i = 0; i < NI; ++i) {
        const __m256 s = _mm256_load_ps(kSignLut.v + 8 * int64_t(B.bits[i * B.row_bytes + t]));
#pragma GCC unroll 4
        for (int r = 0; r < NR; ++r) acc[i][r] = _mm256_fmadd_ps(s, xv[r], acc[i][r]);
    }
}

// The micro-kernel (block_dispatch in sign_matmul/common.hpp calls it for each NI x NR).
struct SignAvx2 {
    template <int NI, int NR>
    __attribute__((target("avx2,fma"))) static void block(const SignBlock& B) {
        __m256 acc[NI][NR];  // zeroed one by one: GCC 12 ran the kernel slower with = {} (decode_bench)
#pragma GCC unroll 8
        for (int i = 0; i < NI; ++i)
#pragma GCC unroll 4
            for (int r = 0; r < NR; ++r) acc[i][r] = _mm256_setzero_ps();
        const int64_t full = B.n / 8;
        int64_t t0 = 0;
        // Whole words: one 64-bit load per output row, its bytes picked out in registers (10-15% faster
        // than a byte load per step here: the table and x loads are what limits the loop).
        for (; t0 + 8 <= full; t0 += 8) {
            uint64_t w[NI];
#pragma GCC unroll 8
            for (int i = 0; i < NI; ++i) {
                std::memcpy(&w[i], B.bits + i * B.row_bytes + t0, 8);
                // 16 lines ahead in each row's stream (past a short row: into the next block's rows, which
                // follow in memory). The hardware prefetcher alone left DRAM-resident bits at ~1.5 GB/s.
                const uintptr_t ahead =
                    reinterpret_cast<uintptr_t>(B.bits + i * B.row_bytes + t0) + kSignPrefetch;  // may pass the end
                _mm_prefetch(reinterpret_cast<const char*>(ahead), _MM_HINT_T0);
            }
#pragma GCC unroll 8
            for (int k = 0; k < 8; ++k) {
                __m256 xv[NR];
#pragma GCC unroll 4
                for (int r = 0; r < NR; ++r) xv[r] = _mm256_loadu_ps(B.x + r * B.ldx + 8 * (t0 + k));
#pragma GCC unroll 8
                for (int i = 0; i < NI; ++i) {
                    const __m256 s = _mm256_load_ps(kSignLut.v + 8 * ((w[i] >> (8 * k)) & 0xff));
#pragma GCC unroll 4
                    for (int r = 0; r < NR; ++r) acc[i][r] = _mm256_fmadd_ps(s, xv[r], acc[i][r]);
                }
            }
        }
        for (int64_t t = t0; t < full; ++t) {  // the bytes of a last partial word (same arithmetic)
            __m256 xv[NR];
#pragma GCC unroll 4
            for (int r = 0; r < NR; ++r) xv[r] = _mm256_loadu_ps(B.x + r * B.ldx + 8 * t);
            sign_step_avx2<NI, NR>(acc, xv, B, t);
        }
        if (const int64_t rem = B.n % 8) {
            // The last partial byte: lanes past n load as 0 (the padding bits say -1; 0 * -1 adds nothing).
            const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            const __m256i keep = _mm256_cmpgt_epi32(_mm256_set1_epi32(int(rem)), lane);
            __m256 xv[NR];
#pragma GCC unroll 4
            for (int r = 0; r < NR; ++r) xv[r] = _mm256_maskload_ps(B.x + r * B.ldx + 8 * full, keep);
            sign_step_avx2<NI, NR>(acc, xv, B, full);
        }
#pragma GCC unroll 8
        for (int i = 0; i < NI; ++i)
#pragma GCC unroll 4
            for (int r = 0; r < NR; ++r) B.out[i * NR + r] = hsum_avx2(acc[i][r]);
    }
};

inline bool sign_avx2_supported() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }

inline void sign_matmul_avx2(const PackedSigns& S, const float* xa, int64_t rows, float* y) {
    sign_matmul_simd<SignAvx2>(S, xa, rows, y);
}

#else

inline bool sign_avx2_supported() { return false; }
inline constexpr SignFn sign_matmul_avx2 = nullptr;

#endif

}  // namespace bitgrad::kernels::detail
