#pragma once
// gemv_int8's AVX2 variant (kernels/gemv_int8.hpp describes it): four rows at a time, as Avx512.
#include <cstdint>

#include "bitgrad/kernels/gemv_int8/common.hpp"
#include "bitgrad/kernels/variant.hpp"

#if BITGRAD_KERNELS_X86
#include <immintrin.h>
#endif

namespace bitgrad::kernels::detail {

#if BITGRAD_KERNELS_X86

// Four rows with AVX2 + FMA: vpmovsxbd widens 8 bytes straight from memory, vcvtdq2ps and one FMA
// per 8 products; the two x loads of 16 columns serve the four rows. A row's 16 lanes are two
// __m256 (columns j..j+7 and j+8..j+15), lane l summing the columns j = l (mod 16) as
// dot_int8_generic does, so dot_int8_finish ends it. The next four rows are prefetched: each row is
// a short stream (768 bytes at 130M), four of them interleaved, which the hardware prefetcher
// follows poorly; without the prefetch this variant made a 130M decode 12% slower than Generic
// (decode_bench, int8 tables), with it 12% faster.
__attribute__((target("avx2,fma"))) inline void dot4_int8_avx2(const int8_t* q, int64_t in, const float* x,
                                                               float* out) {
    __m256 lo[4], hi[4];
    for (int r = 0; r < 4; ++r) lo[r] = _mm256_setzero_ps(), hi[r] = _mm256_setzero_ps();
    int64_t j = 0;
    for (; j + kInt8Lanes <= in; j += kInt8Lanes) {
        const __m256 x_lo = _mm256_loadu_ps(x + j), x_hi = _mm256_loadu_ps(x + j + 8);
        for (int r = 0; r < 4; ++r) {
            const int8_t* row = q + r * in + j;
            _mm_prefetch(reinterpret_cast<const char*>(row + 4 * in), _MM_HINT_T0);  // the next four rows
            const __m256i w_lo = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(row)));
            const __m256i w_hi = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(row + 8)));
            lo[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(w_lo), x_lo, lo[r]);
            hi[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(w_hi), x_hi, hi[r]);
        }
    }
    for (int r = 0; r < 4; ++r) {
        alignas(32) float lanes[kInt8Lanes];
        _mm256_store_ps(lanes, lo[r]);
        _mm256_store_ps(lanes + 8, hi[r]);
        out[r] = dot_int8_finish(lanes, q + r * in, x, j, in);
    }
}

inline bool gemv_int8_avx2_supported() { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }

inline void gemv_int8_avx2(const int8_t* Q, const float* scale, int64_t out, int64_t in, const float* x, float* y) {
    gemv_int8_by4<dot4_int8_avx2>(Q, scale, out, in, x, y);
}

#else

inline bool gemv_int8_avx2_supported() { return false; }
inline constexpr GemvInt8Fn gemv_int8_avx2 = nullptr;

#endif

}  // namespace bitgrad::kernels::detail
