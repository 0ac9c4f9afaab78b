#pragma once
// gemv_int8's AVX-512 variant (kernels/gemv_int8.hpp describes it): four rows at a time.
#include <cstdint>

#include "bitgrad/kernels/gemv_int8/common.hpp"
#include "bitgrad/kernels/variant.hpp"

#if BITGRAD_KERNELS_X86
#include <immintrin.h>
#endif

namespace bitgrad::kernels::detail {

#if BITGRAD_KERNELS_X86

// Four rows with AVX-512: vpmovsxbd widens 16 bytes straight from memory, vcvtdq2ps and one FMA per
// 16 products; four rows at once share each x load and keep four FMA chains in flight (one chain
// waits on the FMA latency). Lane l of a row's accumulator sums the products acc[l] sums above.
__attribute__((target("avx512f"))) inline void dot4_int8_avx512(const int8_t* q, int64_t in, const float* x,
                                                                float* out) {
    __m512 acc[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
    int64_t j = 0;
    for (; j + 16 <= in; j += 16) {
        const __m512 xv = _mm512_loadu_ps(x + j);
        for (int r = 0; r < 4; ++r) {
            const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q + r * in + j));
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(bytes)), xv, acc[r]);
        }
    }
    for (int r = 0; r < 4; ++r) {
        alignas(64) float lanes[kInt8Lanes];
        _mm512_store_ps(lanes, acc[r]);
        out[r] = dot_int8_finish(lanes, q + r * in, x, j, in);
    }
}

inline bool gemv_int8_avx512_supported() { return __builtin_cpu_supports("avx512f"); }

inline void gemv_int8_avx512(const int8_t* Q, const float* scale, int64_t out, int64_t in, const float* x, float* y) {
    gemv_int8_by4<dot4_int8_avx512>(Q, scale, out, in, x, y);
}

#else

inline bool gemv_int8_avx512_supported() { return false; }
inline constexpr GemvInt8Fn gemv_int8_avx512 = nullptr;

#endif

}  // namespace bitgrad::kernels::detail
