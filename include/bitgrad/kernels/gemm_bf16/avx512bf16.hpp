#pragma once
// gemm_bf16's AVX512_BF16 variant (kernels/gemm_bf16.hpp describes it): the packed path of
// gemm_bf16/common.hpp with a 12 x 32 micro-kernel on vdpbf16ps.
#include <cstdint>

#include "bitgrad/core/precision.hpp"
#include "bitgrad/kernels/gemm_bf16/common.hpp"
#include "bitgrad/kernels/variant.hpp"

#if BITGRAD_KERNELS_X86
#include <immintrin.h>
#endif

namespace bitgrad::kernels::detail {

#if BITGRAD_KERNELS_X86

// The AVX512_BF16 micro-kernel: 24 accumulators (12 rows x 2 registers of 16 columns). Compiled for
// that ISA whatever -march says; called only when cpu_has_bf16().
// One macro line per register row: clearer than what the formatter makes of it.
// clang-format off
__attribute__((target("avx512f,avx512bf16"))) inline void bf16_microkernel_avx512(int64_t kp, const uint32_t* a,
                                                                                   const uint32_t* b, float* tile) {
#define BITGRAD_BF16_ROW(i)                                                                   \
    __m512 c##i##_lo = _mm512_setzero_ps(), c##i##_hi = _mm512_setzero_ps();
    BITGRAD_BF16_ROW(0) BITGRAD_BF16_ROW(1) BITGRAD_BF16_ROW(2) BITGRAD_BF16_ROW(3) BITGRAD_BF16_ROW(4) BITGRAD_BF16_ROW(5)
    BITGRAD_BF16_ROW(6) BITGRAD_BF16_ROW(7) BITGRAD_BF16_ROW(8) BITGRAD_BF16_ROW(9) BITGRAD_BF16_ROW(10) BITGRAD_BF16_ROW(11)
#undef BITGRAD_BF16_ROW
    for (int64_t p = 0; p < kp; ++p) {
        const __m512bh b0 = (__m512bh)_mm512_loadu_si512(b + p * kBf16NR);
        const __m512bh b1 = (__m512bh)_mm512_loadu_si512(b + p * kBf16NR + 16);
        const uint32_t* ap = a + p * kBf16MR;
#define BITGRAD_BF16_ROW(i)                                                                   \
    {                                                                                         \
        const __m512bh ai = (__m512bh)_mm512_set1_epi32(int(ap[i]));                         \
        c##i##_lo = _mm512_dpbf16_ps(c##i##_lo, ai, b0);                                          \
        c##i##_hi = _mm512_dpbf16_ps(c##i##_hi, ai, b1);                                          \
    }
        BITGRAD_BF16_ROW(0) BITGRAD_BF16_ROW(1) BITGRAD_BF16_ROW(2) BITGRAD_BF16_ROW(3) BITGRAD_BF16_ROW(4) BITGRAD_BF16_ROW(5)
        BITGRAD_BF16_ROW(6) BITGRAD_BF16_ROW(7) BITGRAD_BF16_ROW(8) BITGRAD_BF16_ROW(9) BITGRAD_BF16_ROW(10) BITGRAD_BF16_ROW(11)
#undef BITGRAD_BF16_ROW
    }
#define BITGRAD_BF16_ROW(i)                                                                   \
    _mm512_storeu_ps(tile + (i) * kBf16NR, c##i##_lo);                                          \
    _mm512_storeu_ps(tile + (i) * kBf16NR + 16, c##i##_hi);
    BITGRAD_BF16_ROW(0) BITGRAD_BF16_ROW(1) BITGRAD_BF16_ROW(2) BITGRAD_BF16_ROW(3) BITGRAD_BF16_ROW(4) BITGRAD_BF16_ROW(5)
    BITGRAD_BF16_ROW(6) BITGRAD_BF16_ROW(7) BITGRAD_BF16_ROW(8) BITGRAD_BF16_ROW(9) BITGRAD_BF16_ROW(10) BITGRAD_BF16_ROW(11)
#undef BITGRAD_BF16_ROW
}
// clang-format on

inline bool gemm_bf16_avx512bf16_supported() { return cpu_has_bf16(); }

inline void gemm_bf16_avx512bf16(int64_t M, int64_t N, int64_t K, float alpha, const Bf16Operand& A,
                                 const Bf16Operand& B, float beta, float* C, int64_t ldc) {
    gemm_bf16_packed(bf16_microkernel_avx512, M, N, K, alpha, A, B, beta, C, ldc);
}

#else

inline bool gemm_bf16_avx512bf16_supported() { return false; }
inline constexpr Bf16GemmFn gemm_bf16_avx512bf16 = nullptr;

#endif

}  // namespace bitgrad::kernels::detail
