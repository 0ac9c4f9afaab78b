#pragma once
// sign_matmul_q8's AVX-512 (AVX512BW + AVX512_VNNI) variant (kernels/sign_matmul_q8.hpp describes it).
#include <cstdint>
#include <cstring>

#include "bitgrad/kernels/sign_matmul_q8/common.hpp"
#include "bitgrad/kernels/variant.hpp"

#if BITGRAD_KERNELS_X86
#include <immintrin.h>
#endif

namespace bitgrad::kernels::detail {

#if BITGRAD_KERNELS_X86

__attribute__((target("avx512f"))) inline int32_t hsum_epi32_avx512(__m512i v) {
    alignas(64) int32_t t[16];
    _mm512_store_si512(t, v);
    int32_t s = 0;
    for (int k = 0; k < 16; ++k) s += t[k];
    return s;
}

// The micro-kernel (block_dispatch in sign_matmul/common.hpp calls it for each NI x NR).
struct SignQ8Avx512 {
    template <int NI, int NR>
    __attribute__((target("avx512f,avx512bw,avx512vnni"))) static void block(const Q8Block& B) {
        __m512i acc[NI][NR];  // zeroed one by one: GCC 12 ran the kernel slower with = {} (decode_bench)
#pragma GCC unroll 8
        for (int i = 0; i < NI; ++i)
#pragma GCC unroll 4
            for (int r = 0; r < NR; ++r) acc[i][r] = _mm512_setzero_si512();
        const __m512i ones = _mm512_set1_epi8(1);
        for (int64_t w = 0; w < B.words; ++w) {  // 64 columns a step
            __m512i qv[NR];
#pragma GCC unroll 4
            for (int r = 0; r < NR; ++r) qv[r] = _mm512_loadu_si512(B.q + r * B.stride + 64 * w);
#pragma GCC unroll 8
            for (int i = 0; i < NI; ++i) {
                const uint64_t* row = B.bits + i * B.words_per_row + w;
                // A line ahead in each row's stream (past a short row: into the next rows, which follow).
                if ((w & 7) == 0)
                    _mm_prefetch(reinterpret_cast<const char*>(row) + kSignPrefetch, _MM_HINT_T0);  // never faults
                const __m512i s01 = _mm512_maskz_mov_epi8(__mmask64(*row), ones);                   // byte k = bit k
#pragma GCC unroll 4
                for (int r = 0; r < NR; ++r) acc[i][r] = _mm512_dpbusd_epi32(acc[i][r], s01, qv[r]);
            }
        }
#pragma GCC unroll 8
        for (int i = 0; i < NI; ++i)
#pragma GCC unroll 4
            for (int r = 0; r < NR; ++r) B.P[i * NR + r] = hsum_epi32_avx512(acc[i][r]);
    }
};

// Needs BW and VNNI on top of F.
inline bool sign_q8_avx512_supported() {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vnni");
}

inline void sign_q8_avx512(const PackedSigns& S, const Q8Rows& X, int32_t* P) { sign_q8_simd<SignQ8Avx512>(S, X, P); }

#else

inline bool sign_q8_avx512_supported() { return false; }
inline constexpr SignQ8Fn sign_q8_avx512 = nullptr;

#endif

}  // namespace bitgrad::kernels::detail
