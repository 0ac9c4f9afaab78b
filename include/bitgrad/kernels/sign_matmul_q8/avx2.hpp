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

// Lane k of the result = the sum of v[k]'s eight lanes.
__attribute__((target("avx2"))) inline __m256i hsum8_epi32_avx2(const __m256i* v) {
    const __m256i t0 = _mm256_hadd_epi32(v[0], v[1]), t1 = _mm256_hadd_epi32(v[2], v[3]);
    const __m256i t2 = _mm256_hadd_epi32(v[4], v[5]), t3 = _mm256_hadd_epi32(v[6], v[7]);
    const __m256i u0 = _mm256_hadd_epi32(t0, t1), u1 = _mm256_hadd_epi32(t2, t3);  // halves of v[0..3], v[4..7]
    return _mm256_add_epi32(_mm256_permute2x128_si256(u0, u1, 0x20), _mm256_permute2x128_si256(u0, u1, 0x31));
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

// The prefill micro-kernel over a panel of bytes 0 / 1 (sign_q8_panel in common.hpp): vpmaddubsw
// multiplies 32 panel bytes (unsigned) by 32 q (signed) and adds pairs into 16 int16 lanes, vpaddw
// accumulates: 2 instructions per 32 products and row, against the mask kernel's 4 plus its mask.
struct SignQ8Avx2Panel {
    __attribute__((target("avx2"))) static void unpack(const uint64_t* bits, int64_t words, uint8_t* bytes) {
        const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2,
                                                3, 3, 3, 3, 3, 3, 3, 3);
        const __m256i select = _mm256_set1_epi64x(int64_t(0x8040201008040201ULL));
        const __m256i ones8 = _mm256_set1_epi8(1);
        for (int64_t h = 0; h < 2 * words; ++h) {
            uint32_t half;
            std::memcpy(&half, reinterpret_cast<const uint8_t*>(bits) + 4 * h, 4);  // little-endian
            const __m256i spread_bits = _mm256_shuffle_epi8(_mm256_set1_epi32(int32_t(half)), spread);
            const __m256i mask = _mm256_cmpeq_epi8(_mm256_and_si256(spread_bits, select), select);
            _mm256_store_si256(reinterpret_cast<__m256i*>(bytes + 32 * h), _mm256_and_si256(mask, ones8));
        }
    }

    template <int NI, int NR>
    __attribute__((target("avx2"))) static void block(const Q8PanelBlock& B) {
        __m256i acc[NI][NR];
#pragma GCC unroll 8
        for (int i = 0; i < NI; ++i)
#pragma GCC unroll 8
            for (int r = 0; r < NR; ++r) acc[i][r] = _mm256_setzero_si256();
        for (int64_t h = 0; h < B.steps; ++h) {
#pragma GCC unroll 8
            for (int i = 0; i < NI; ++i) {
                const __m256i b =
                    _mm256_load_si256(reinterpret_cast<const __m256i*>(B.panel + i * kQ8PanelKC + 32 * h));
#pragma GCC unroll 8
                for (int r = 0; r < NR; ++r) {
                    const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(B.q + r * B.stride + 32 * h));
                    acc[i][r] = _mm256_add_epi16(acc[i][r], _mm256_maddubs_epi16(b, q));
                }
            }
        }
        // Widen to int32 and add up eight accumulators at a time with one tree of vphaddd (one
        // horizontal sum each costs as much as a few steps at in = 768).
        const __m256i ones16 = _mm256_set1_epi16(1);
        constexpr int N = NI * NR, Groups = (N + 7) / 8;
        __m256i wide[8 * Groups];
#pragma GCC unroll 16
        for (int k = 0; k < 8 * Groups; ++k)
            wide[k] = k < N ? _mm256_madd_epi16(acc[k / NR][k % NR], ones16) : _mm256_setzero_si256();
#pragma GCC unroll 2
        for (int g = 0; g < Groups; ++g) {
            alignas(32) int32_t sums[8];
            _mm256_store_si256(reinterpret_cast<__m256i*>(sums), hsum8_epi32_avx2(wide + 8 * g));
            for (int k = 0; k < 8 && 8 * g + k < N; ++k) B.P[8 * g + k] = sums[k];
        }
    }
};

inline bool sign_q8_avx2_supported() { return __builtin_cpu_supports("avx2"); }

inline void sign_q8_avx2(const PackedSigns& S, const Q8Rows& X, int32_t* P) {
    if (X.rows >= kQ8PanelRows)
        sign_q8_panel<SignQ8Avx2Panel, 2, 4>(S, X, P);
    else
        sign_q8_simd<SignQ8Avx2>(S, X, P);
}

#else

inline bool sign_q8_avx2_supported() { return false; }
inline constexpr SignQ8Fn sign_q8_avx2 = nullptr;

#endif

}  // namespace bitgrad::kernels::detail
