#pragma once
// What gemv_int8's variants share (kernels/gemv_int8.hpp describes the family): the portable row
// dot and the Generic variant built on it. Plain C++: no intrinsics here.
#include <cstdint>

#include "bitgrad/core/parallel.hpp"

namespace bitgrad::kernels {

// One variant: y [out] = scale[i] * sum_j Q[i, j] x[j] (out and in > 0).
using GemvInt8Fn = void (*)(const int8_t* Q, const float* scale, int64_t out, int64_t in, const float* x, float* y);

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

// A byte per weight: half gemv_bf16's memory traffic per product.
inline void gemv_int8_generic(const int8_t* Q, const float* scale, int64_t out, int64_t in, const float* x, float* y) {
    parallel_for(
        out, [&](int64_t i) { y[i] = scale[i] * dot_int8_generic(Q + i * in, x, in); }, in / 2);
}

}  // namespace detail
}  // namespace bitgrad::kernels
