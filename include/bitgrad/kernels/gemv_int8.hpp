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
// float lanes per row (GCC vectorizes the int8 -> float widening and the FMA), the lanes added in a
// fixed order, then the scale; results do not depend on the thread count.
// gemv_int8_reference is the plain loop in double the tests compare with.
#include <algorithm>
#include <cmath>
#include <cstdint>

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
    for (int64_t j = 0; j < n; ++j) q[j] = int8_t(std::clamp<long>(std::lrint(w[j] * inv), -127, 127));  // w * inv may pass 127 by an ulp
    return absmax / 127.f;
}

inline void gemv_int8(const int8_t* Q, const float* scale, int64_t out, int64_t in, const float* x, float* y) {
    constexpr int kLanes = 16;
    parallel_for(out, [&](int64_t i) {
        const int8_t* q = Q + i * in;
        float acc[kLanes] = {};
        int64_t j = 0;
        for (; j + kLanes <= in; j += kLanes)
            for (int l = 0; l < kLanes; ++l) acc[l] += float(q[j + l]) * x[j + l];
        float tail = 0.f;
        for (; j < in; ++j) tail += float(q[j]) * x[j];
        float s = 0.f;
        for (int l = 0; l < kLanes; ++l) s += acc[l];
        y[i] = scale[i] * (s + tail);
    }, in / 2);  // a byte per weight: half gemv_bf16's memory traffic per product
}

inline void gemv_int8_reference(const int8_t* Q, const float* scale, int64_t out, int64_t in, const float* x, double* y) {
    for (int64_t i = 0; i < out; ++i) {
        double s = 0;
        for (int64_t j = 0; j < in; ++j) s += double(Q[i * in + j]) * double(x[j]);
        y[i] = double(scale[i]) * s;
    }
}

}  // namespace bitgrad::kernels
