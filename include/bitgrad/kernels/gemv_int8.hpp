#pragma once
// Int8 rows with one float scale each, and gemv_int8 over them.
//
// quantize_int8_row is the one definition of the format (the packed model's 8-bit embedding and
// lm_head, and the int8 activations of sign_matmul_q8):
//   scale = max_j |w[j]| / 127,   q[j] = round(w[j] / scale)  in [-127, 127],   w[j] ~ scale * q[j]
// (round half to even; a row of zeros gets scale 0). Each value moves by at most scale / 2.
//
// gemv_int8: y [out] = scale[i] * sum_j q[i, j] x[j], Q [out, in] int8, x and y float. The decode-time
// lm_head in 8 bits: half the bytes of bf16 (gemv_bf16), for a matrix that is most of what a small
// model reads per token. Same structure as gemv_bf16: rows split across threads, 16 independent
// float lanes per row (an AVX-512 row kernel where the CPU has it, else a loop GCC vectorizes), the
// lanes added in a fixed order, then the scale; results do not depend on the thread count.
// gemv_int8_reference is the plain loop in double the tests compare with.
#include <algorithm>
#include <cmath>
#include <cstdint>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include "bitgrad/core/parallel.hpp"

namespace bitgrad::kernels {

// Rounds w [n] (finite values) to q [n]; returns the scale.
inline float quantize_int8_row(const float* w, int64_t n, int8_t* q) {
    if (n <= 0) return 0.f;
    float absmax = 0.f;
    for (int64_t j = 0; j < n; ++j) absmax = std::max(absmax, std::fabs(w[j]));
    if (!(absmax > 0.f)) {
        std::fill(q, q + n, int8_t(0));
        return 0.f;
    }
    const float inv = 127.f / absmax;
    for (int64_t j = 0; j < n; ++j)
        q[j] = int8_t(std::clamp<long>(std::lrint(w[j] * inv), -127, 127));  // w * inv may pass 127 by an ulp
    return absmax / 127.f;
}

namespace detail {

// One row: the 16 lanes in plain C++ (any CPU).
inline float dot_int8_generic(const int8_t* q, const float* x, int64_t in) {
    constexpr int kLanes = 16;
    float acc[kLanes] = {};
    int64_t j = 0;
    for (; j + kLanes <= in; j += kLanes)
        for (int l = 0; l < kLanes; ++l) acc[l] += float(q[j + l]) * x[j + l];
    float tail = 0.f;
    for (; j < in; ++j) tail += float(q[j]) * x[j];
    float s = 0.f;
    for (int l = 0; l < kLanes; ++l) s += acc[l];
    return s + tail;
}

#if defined(__x86_64__) && defined(__GNUC__)
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
        alignas(64) float lanes[16];
        _mm512_store_ps(lanes, acc[r]);
        float tail = 0.f;
        for (int64_t t = j; t < in; ++t) tail += float(q[r * in + t]) * x[t];
        float s = 0.f;
        for (int l = 0; l < 16; ++l) s += lanes[l];
        out[r] = s + tail;
    }
}
#endif

inline bool gemv_int8_wide() {
#if defined(__x86_64__) && defined(__GNUC__)
    static const bool wide = __builtin_cpu_supports("avx512f");
    return wide;
#else
    return false;
#endif
}

}  // namespace detail

// `wide`: the AVX-512 row kernel where the CPU has it (the tests run both against the reference).
inline void gemv_int8(const int8_t* Q, const float* scale, int64_t out, int64_t in, const float* x, float* y,
                      bool wide = detail::gemv_int8_wide()) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (wide) {
        parallel_for((out + 3) / 4,
                     [&](int64_t g) {
                         const int64_t i0 = 4 * g;
                         if (i0 + 4 <= out) {
                             float d[4];
                             detail::dot4_int8_avx512(Q + i0 * in, in, x, d);
                             for (int r = 0; r < 4; ++r) y[i0 + r] = scale[i0 + r] * d[r];
                         } else {
                             for (int64_t i = i0; i < out; ++i)
                                 y[i] = scale[i] * detail::dot_int8_generic(Q + i * in, x, in);
                         }
                     },
                     2 * in);
        return;
    }
#endif
    (void)wide;
    // A byte per weight: half gemv_bf16's memory traffic per product.
    parallel_for(
        out, [&](int64_t i) { y[i] = scale[i] * detail::dot_int8_generic(Q + i * in, x, in); }, in / 2);
}

inline void gemv_int8_reference(const int8_t* Q, const float* scale, int64_t out, int64_t in, const float* x,
                                double* y) {
    for (int64_t i = 0; i < out; ++i) {
        double s = 0;
        for (int64_t j = 0; j < in; ++j) s += double(Q[i * in + j]) * double(x[j]);
        y[i] = double(scale[i]) * s;
    }
}

}  // namespace bitgrad::kernels
