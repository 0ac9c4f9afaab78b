#pragma once
// gemv_bf16: y [out] = W [out, in] x [in], W in bf16, x and y in float, float accumulation.
// The decode-time product with a large bf16 matrix (the lm_head: 32000 x 768 at 130M, most of the
// bytes a 1-bit model reads per token), so it is written to stream W once at memory bandwidth:
// rows split across threads, each row's products summed in 16 independent lanes (a loop GCC turns
// into widen-shift-FMA vector code without reassociating a single sum), then the lanes added in a
// fixed order. Results do not depend on the thread count.
// gemv_bf16_reference is the plain loop in double the tests compare with.
#include <bit>
#include <cstdint>

#include "bitgrad/core/bf16.hpp"
#include "bitgrad/core/parallel.hpp"

namespace bitgrad::kernels {

inline void gemv_bf16(const bf16* W, int64_t out, int64_t in, const float* x, float* y) {
    constexpr int kLanes = 16;
    parallel_for(
        out,
        [&](int64_t i) {
            const uint16_t* w = &W[i * in].bits;
            float acc[kLanes] = {};
            int64_t j = 0;
            for (; j + kLanes <= in; j += kLanes)
                for (int l = 0; l < kLanes; ++l) acc[l] += std::bit_cast<float>(uint32_t(w[j + l]) << 16) * x[j + l];
            float tail = 0.f;
            for (; j < in; ++j) tail += std::bit_cast<float>(uint32_t(w[j]) << 16) * x[j];
            float s = 0.f;
            for (int l = 0; l < kLanes; ++l) s += acc[l];
            y[i] = s + tail;
        },
        in);
}

inline void gemv_bf16_reference(const bf16* W, int64_t out, int64_t in, const float* x, double* y) {
    for (int64_t i = 0; i < out; ++i) {
        double s = 0;
        for (int64_t j = 0; j < in; ++j) s += double(to_float(W[i * in + j])) * double(x[j]);
        y[i] = s;
    }
}

}  // namespace bitgrad::kernels
