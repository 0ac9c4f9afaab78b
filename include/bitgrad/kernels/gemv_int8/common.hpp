#pragma once
// What gemv_int8's variants share (kernels/gemv_int8.hpp describes the family): the portable row
// dot and the Generic variant built on it. Plain C++: no intrinsics here.
#include <cstdint>

#include "bitgrad/core/parallel.hpp"

namespace bitgrad::kernels {

// One variant: y [out] = scale[i] * sum_j Q[i, j] x[j] (out and in > 0).
using GemvInt8Fn = void (*)(const int8_t* Q, const float* scale, int64_t out, int64_t in, const float* x, float* y);

namespace detail {

inline constexpr int kInt8Lanes = 16;

// The end of every variant's row dot: lane l holds the products of the columns j = l (mod 16) below
// j_tail (a multiple of 16); the lanes are added in order, then the columns [j_tail, in). Fixed, so
// results do not depend on the thread count.
inline float dot_int8_finish(const float (&lanes)[kInt8Lanes], const int8_t* q, const float* x, int64_t j_tail,
                             int64_t in) {
    float tail = 0.f;
    for (int64_t j = j_tail; j < in; ++j) tail += float(q[j]) * x[j];
    float s = 0.f;
    for (int l = 0; l < kInt8Lanes; ++l) s += lanes[l];
    return s + tail;
}

// One row: the 16 lanes in plain C++ (any CPU).
inline float dot_int8_generic(const int8_t* q, const float* x, int64_t in) {
    float acc[kInt8Lanes] = {};
    int64_t j = 0;
    for (; j + kInt8Lanes <= in; j += kInt8Lanes)
        for (int l = 0; l < kInt8Lanes; ++l) acc[l] += float(q[j + l]) * x[j + l];
    return dot_int8_finish(acc, q, x, j, in);
}

// A byte per weight: half gemv_bf16's memory traffic per product.
inline void gemv_int8_generic(const int8_t* Q, const float* scale, int64_t out, int64_t in, const float* x, float* y) {
    parallel_for(
        out, [&](int64_t i) { y[i] = scale[i] * dot_int8_generic(Q + i * in, x, in); }, in / 2);
}

// The driver of the SIMD variants: Dot4(q, in, x, d) computes the dots of the four rows at q (row
// stride in) in d; the rows are split across threads four at a time, the last out % 4 rows take
// dot_int8_generic.
template <void (*Dot4)(const int8_t* q, int64_t in, const float* x, float* d)>
void gemv_int8_by4(const int8_t* Q, const float* scale, int64_t out, int64_t in, const float* x, float* y) {
    parallel_for((out + 3) / 4,
                 [&](int64_t g) {
                     const int64_t i0 = 4 * g;
                     if (i0 + 4 <= out) {
                         float d[4];
                         Dot4(Q + i0 * in, in, x, d);
                         for (int r = 0; r < 4; ++r) y[i0 + r] = scale[i0 + r] * d[r];
                     } else {
                         for (int64_t i = i0; i < out; ++i) y[i] = scale[i] * dot_int8_generic(Q + i * in, x, in);
                     }
                 },
                 2 * in);
}

}  // namespace detail
}  // namespace bitgrad::kernels
