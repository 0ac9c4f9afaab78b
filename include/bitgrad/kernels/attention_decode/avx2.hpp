#pragma once
// attention_decode's AVX2 variant (kernels/attention_decode.hpp describes it), for head_dim a
// multiple of 8 (other sizes take the Generic head). Scores four keys at a time: four dot products
// share each q load and end in one horizontal add (vhaddps twice, then the two halves), where one
// sum per key cost more than the products; fp16 rows widen 8 at a time (vcvtph2ps, F16C). The
// output keeps head_dim / 8 accumulators in registers while the values stream once.
#include <cstdint>

#include "bitgrad/kernels/attention_decode/common.hpp"
#include "bitgrad/kernels/variant.hpp"

#if BITGRAD_KERNELS_X86
#include <immintrin.h>
#endif

namespace bitgrad::kernels::detail {

#if BITGRAD_KERNELS_X86

__attribute__((target("avx2,fma,f16c"))) inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
__attribute__((target("avx2,fma,f16c"))) inline __m256 load8(const fp16* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

template <class E, int64_t D>
__attribute__((target("avx2,fma,f16c"))) void attention_head_avx2_d(const DecodeAttention& a, int64_t h, float* p) {
    constexpr int64_t NV = D / 8;
    const int64_t kvh = h / (a.H / a.Hkv), base = kvh * a.capacity * D;
    const E* K = static_cast<const E*>(a.k) + base;
    const E* V = static_cast<const E*>(a.v) + base;
    const float scale = 1.f / std::sqrt(float(D));
    __m256 q[NV];
    for (int64_t c = 0; c < NV; ++c) q[c] = _mm256_loadu_ps(a.q + h * D + 8 * c);
    int64_t j = 0;
    for (; j + 4 <= a.S; j += 4) {
        __m256 acc[4];
        for (int r = 0; r < 4; ++r) {
            acc[r] = _mm256_mul_ps(q[0], load8(K + (j + r) * D));
            for (int64_t c = 1; c < NV; ++c) acc[r] = _mm256_fmadd_ps(q[c], load8(K + (j + r) * D + 8 * c), acc[r]);
        }
        const __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(acc[0], acc[1]), _mm256_hadd_ps(acc[2], acc[3]));
        const __m128 s = _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
        _mm_storeu_ps(p + j, _mm_mul_ps(s, _mm_set1_ps(scale)));
    }
    for (; j < a.S; ++j) {
        __m256 acc = _mm256_mul_ps(q[0], load8(K + j * D));
        for (int64_t c = 1; c < NV; ++c) acc = _mm256_fmadd_ps(q[c], load8(K + j * D + 8 * c), acc);
        const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
        const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
        p[j] = _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2))) * scale;
    }
    softmax_scores(p, a.S);
    __m256 o[NV];
    for (int64_t c = 0; c < NV; ++c) o[c] = _mm256_setzero_ps();
    for (int64_t i = 0; i < a.S; ++i) {
        const __m256 pi = _mm256_set1_ps(p[i]);
        for (int64_t c = 0; c < NV; ++c) o[c] = _mm256_fmadd_ps(pi, load8(V + i * D + 8 * c), o[c]);
    }
    for (int64_t c = 0; c < NV; ++c) _mm256_storeu_ps(a.o + h * D + 8 * c, o[c]);
}

// The head dimensions of the LLaMA shapes get registers sized at compile time; others the Generic head.
template <class E>
void attention_head_avx2_elem(const DecodeAttention& a, int64_t h, float* p) {
    switch (a.D) {
        case 64: return attention_head_avx2_d<E, 64>(a, h, p);
        case 128: return attention_head_avx2_d<E, 128>(a, h, p);
        case 32: return attention_head_avx2_d<E, 32>(a, h, p);
        case 16: return attention_head_avx2_d<E, 16>(a, h, p);
        default: return attention_head_generic(a, h, p);
    }
}

inline void attention_head_avx2(const DecodeAttention& a, int64_t h, float* p) {
    if (a.element == KvElement::Float)
        attention_head_avx2_elem<float>(a, h, p);
    else
        attention_head_avx2_elem<fp16>(a, h, p);
}

inline bool attention_decode_avx2_supported() {
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
}

inline void attention_decode_avx2(const DecodeAttention& a) { attention_decode_heads<attention_head_avx2>(a); }

#else

inline bool attention_decode_avx2_supported() { return false; }
inline constexpr AttentionDecodeFn attention_decode_avx2 = nullptr;

#endif

}  // namespace bitgrad::kernels::detail
