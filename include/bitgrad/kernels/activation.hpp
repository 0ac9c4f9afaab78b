#pragma once
// Activation loops (ops/activation.hpp, and the inference models).
//   sigmoid(x) = 1 / (1 + exp(-x)),   swiglu_rows: y = a * sigmoid(a) * b   (silu(a) * b)
#include <cstdint>

#include "bitgrad/core/parallel.hpp"
#include "bitgrad/kernels/exp.hpp"

namespace bitgrad::kernels {

template <class T>
[[gnu::always_inline]] inline T sigmoid(T x) {
    return T(1) / (T(1) + exp(-x));
}

template <class T>
void swiglu_rows(const T* a, const T* b, T* y, int64_t n) {
    parallel_chunks(
        n,
        [&](int64_t s, int64_t e) {
            for (int64_t i = s; i < e; ++i) y[i] = a[i] * sigmoid(a[i]) * b[i];
        },
        8);
}

}  // namespace bitgrad::kernels
