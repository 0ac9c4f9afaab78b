#pragma once
// sign_matmul_q8's AVX2 variant (kernels/sign_matmul_q8.hpp describes it).
#include <cstdint>
#include <cstring>

#include "bitgrad/kernels/sign_matmul_q8/common.hpp"
#include "bitgrad/kernels/variant.hpp"

#if BITGRAD_KERNELS_X86
#include <immintrin.h>
#endif

namespace bitgrad::kernels::detail {

#if BITGRAD_KERNELS_X86

__attribute__((target("avx2"))) inline int32_t hsum_epi32_avx2(__m256i v) {
    alignas(32) int32_t t[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(t), v);
    return ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
}

// The micro-kernel (block_dispatch in sign_matmul/common.hpp calls it for each NI x NR).
struct SignQ8Avx2 {
    template <int NI, int NR>
    __attribute__((target("avx2"))) static void block(const Q8Block& B) {
        __m256i acc[NI][NR];  // zeroed one by one: GCC 12 ran the kernel slower with = {} (decode_bench)
#pragma GCC unroll 8
        for (int i = 0; i < NI; ++i)
#pragma GCC unroll 4
            for (int r = 0; r < NR; ++r) acc[i][r] = _mm256_setzero_si256();
        // Byte k of the 32 lanes: which byte of the 32 bits it tests (vpshufb works within 128-bit
        // halves; the 32 bits are broadcast to both), and which bit of that byte.
        const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2,
                                                3, 3, 3, 3, 3, 3, 3, 3);
        const __m256i select = _mm256_set1_epi64x(int64_t(0x8040201008040201ULL));
        const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
        for (int64_t h = 0; h < 2 * B.words; ++h) {  // 32 columns a step
            __m256i qv[NR];
#pragma GCC unroll 4
            for (int r = 0; r < NR; ++r)
                qv[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(B.q + r * B.stride + 32 * h));
#pragma GCC unroll 8
            for (int i = 0; i < NI; ++i) {
                uint32_t half;
                std::memcpy(&half, reinterpret_cast<const uint8_t*>(B.bits + i * B.words_per_row) + 4 * h,
                            4);  // little-endian
                const __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(int32_t(half)), spread);
                const __m256i mask = _mm256_cmpeq_epi8(_mm256_and_si256(bytes, select), select);
#pragma GCC unroll 4
                for (int r = 0; r < NR; ++r) {
                    const __m256i pairs = _mm256_maddubs_epi16(ones8, _mm256_and_si256(mask, qv[r]));  // |pair| <= 254
                    acc[i][r] = _mm256_add_epi32(acc[i][r], _mm256_madd_epi16(pairs, ones16));
                }
            }
        }
#pragma GCC unroll 8
        for (int i = 0; i < NI; ++i)
#pragma GCC unroll 4
            for (int r = 0; r < NR; ++r) B.P[i * NR + r] = hsum_epi32_avx2(acc[i][r]);
    }
};

inline bool sign_q8_avx2_supported() { return __builtin_cpu_supports("avx2"); }

inline void sign_q8_avx2(const PackedSigns& S, const Q8Rows& X, int32_t* P) { sign_q8_simd<SignQ8Avx2>(S, X, P); }

#else

inline bool sign_q8_avx2_supported() { return false; }
inline constexpr SignQ8Fn sign_q8_avx2 = nullptr;

#endif

}  // namespace bitgrad::kernels::detail
