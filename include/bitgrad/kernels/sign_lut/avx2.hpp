#pragma once
// sign_lut's AVX2 variant (kernels/sign_lut.hpp describes it and the layouts).
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "bitgrad/kernels/sign_lut/common.hpp"
#include "bitgrad/kernels/variant.hpp"

#if BITGRAD_KERNELS_X86
#include <immintrin.h>
#endif

namespace bitgrad::kernels::detail {

#if BITGRAD_KERNELS_X86

// Steps between widenings of the int16 accumulators: a lane adds one table entry a step, |T| <= 4 * 128,
// and 64 * 512 = 32768 (exactly -32768 at worst, 32512 the other way): no int16 lane can overflow.
inline constexpr int64_t kLutFlush = 64;

// A pair of groups' tables from 8 q bytes, both groups at once (group 2p in the low 128-bit lane,
// 2p + 1 in the high one). int16 lane n (0..7) of X = T[n] = n0 q0 + n1 q1 + n2 q2 (vpmaddubsw of
// the 0 / 1 bits of n against q), Y = T[8 + n] = X + q3; vpackuswb of the low bytes and vpacksswb
// of the high bytes (in [-2, 1]) give the two byte tables, in-lane, in entry order.
__attribute__((target("avx2"))) inline void lut_tables_avx2(const int8_t* q, int64_t in, int64_t groups,
                                                            uint8_t* tables) {
    const __m256i idx01 = _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1,  //
                                           4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 5);
    const __m256i idx23 = _mm256_setr_epi8(2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3,  //
                                           6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7, 6, 7);
    // Bytes (bit 0 of n, bit 1 of n) for int16 lane n, then (bit 2 of n, 0) and (bit 2 of n, 1).
    const __m256i bits01 = _mm256_setr_epi8(0, 0, 1, 0, 0, 1, 1, 1, 0, 0, 1, 0, 0, 1, 1, 1,  //
                                            0, 0, 1, 0, 0, 1, 1, 1, 0, 0, 1, 0, 0, 1, 1, 1);
    const __m256i bits2 = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 1, 0, 1, 0,  //
                                           0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 1, 0, 1, 0);
    const __m256i bits23 = _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1,  //
                                            0, 1, 0, 1, 0, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1);
    const __m256i low = _mm256_set1_epi16(0xFF);
    const int64_t full = std::min(groups / 2, in / 8);  // pairs whose 8 columns are all below in
    for (int64_t p = 0; p < full; ++p) {
        int64_t eight;
        std::memcpy(&eight, q + 8 * p, 8);
        const __m256i v = _mm256_set1_epi64x(eight);
        const __m256i a01 = _mm256_shuffle_epi8(v, idx01), a23 = _mm256_shuffle_epi8(v, idx23);
        const __m256i t01 = _mm256_maddubs_epi16(bits01, a01);
        const __m256i X = _mm256_add_epi16(t01, _mm256_maddubs_epi16(bits2, a23));
        const __m256i Y = _mm256_add_epi16(t01, _mm256_maddubs_epi16(bits23, a23));
        const __m256i lo = _mm256_packus_epi16(_mm256_and_si256(X, low), _mm256_and_si256(Y, low));
        const __m256i hi = _mm256_packs_epi16(_mm256_srai_epi16(X, 8), _mm256_srai_epi16(Y, 8));
        _mm256_store_si256(reinterpret_cast<__m256i*>(tables + p * kLutTableBytes), lo);
        _mm256_store_si256(reinterpret_cast<__m256i*>(tables + p * kLutTableBytes + 32), hi);
    }
    lut_tables_generic(q, in, groups, 2 * full, tables);  // the last pair, if in % 8 != 0, and padding
}

// 32 rows x 8 columns a step, for NT tiles at once: the low and high nibbles of each tile's 32 bytes
// index both byte tables (vpshufb, in-lane: group 2p in the low lane, 2p + 1 in the high one);
// vpunpckl/hbw of the low and high bytes give the entries as int16 for rows 0-7, 8-15 (low nibbles)
// and 16-23, 24-31 (high nibbles). 18 instructions (3 loads) per 256 products for one tile; two
// tiles share the two table loads, which come from L2 once a row's tables pass 32 KiB (in > 4096):
// with one tile the table bytes read were twice the sign bytes. Every kLutFlush steps the int16
// sums widen to int32, and the two lanes (the two groups) are added.
template <int NT>
__attribute__((target("avx2"))) inline void lut_tiles_avx2(const uint8_t* const* w, const uint8_t* tables,
                                                           int64_t pairs, int32_t* const* sums) {
    const __m256i m0f = _mm256_set1_epi8(0x0F);
    __m256i a32[NT][4];
    for (int t = 0; t < NT; ++t)
        for (int k = 0; k < 4; ++k) a32[t][k] = _mm256_setzero_si256();
    for (int64_t p0 = 0; p0 < pairs; p0 += kLutFlush) {
        const int64_t p1 = std::min(pairs, p0 + kLutFlush);
        __m256i a16[NT][4];
        for (int t = 0; t < NT; ++t)
            for (int k = 0; k < 4; ++k) a16[t][k] = _mm256_setzero_si256();
        for (int64_t p = p0; p < p1; ++p) {
            const __m256i tl = _mm256_load_si256(reinterpret_cast<const __m256i*>(tables + p * kLutTableBytes));
            const __m256i th = _mm256_load_si256(reinterpret_cast<const __m256i*>(tables + p * kLutTableBytes + 32));
            for (int t = 0; t < NT; ++t) {
                const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w[t] + p * kLutPairBytes));
                const __m256i lo = _mm256_and_si256(b, m0f), hi = _mm256_and_si256(_mm256_srli_epi16(b, 4), m0f);
                const __m256i l0 = _mm256_shuffle_epi8(tl, lo), h0 = _mm256_shuffle_epi8(th, lo);
                const __m256i l1 = _mm256_shuffle_epi8(tl, hi), h1 = _mm256_shuffle_epi8(th, hi);
                a16[t][0] = _mm256_add_epi16(a16[t][0], _mm256_unpacklo_epi8(l0, h0));
                a16[t][1] = _mm256_add_epi16(a16[t][1], _mm256_unpackhi_epi8(l0, h0));
                a16[t][2] = _mm256_add_epi16(a16[t][2], _mm256_unpacklo_epi8(l1, h1));
                a16[t][3] = _mm256_add_epi16(a16[t][3], _mm256_unpackhi_epi8(l1, h1));
            }
        }
        for (int t = 0; t < NT; ++t)
            for (int k = 0; k < 4; ++k) {
                const __m256i g0 = _mm256_cvtepi16_epi32(_mm256_castsi256_si128(a16[t][k]));
                const __m256i g1 = _mm256_cvtepi16_epi32(_mm256_extracti128_si256(a16[t][k], 1));
                a32[t][k] = _mm256_add_epi32(a32[t][k], _mm256_add_epi32(g0, g1));
            }
    }
    for (int t = 0; t < NT; ++t)
        for (int k = 0; k < 4; ++k) _mm256_storeu_si256(reinterpret_cast<__m256i*>(sums[t] + 8 * k), a32[t][k]);
}
__attribute__((target("avx2"))) inline void lut_tile_avx2(const uint8_t* w, const uint8_t* tables, int64_t pairs,
                                                          int32_t* sums) {
    lut_tiles_avx2<1>(&w, tables, pairs, &sums);
}
__attribute__((target("avx2"))) inline void lut_tile_pair_avx2(const uint8_t* const* w, const uint8_t* tables,
                                                               int64_t pairs, int32_t* const* sums) {
    lut_tiles_avx2<2>(w, tables, pairs, sums);
}

inline bool sign_lut_avx2_supported() { return __builtin_cpu_supports("avx2"); }

inline void sign_lut_avx2(const LutProblem* problems, int64_t n) {
    sign_lut_run<lut_tables_avx2, lut_tile_avx2, lut_tile_pair_avx2>(problems, n);
}

#else

inline bool sign_lut_avx2_supported() { return false; }
inline constexpr SignLutFn sign_lut_avx2 = nullptr;

#endif

}  // namespace bitgrad::kernels::detail
