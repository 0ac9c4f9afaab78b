#pragma once
// RMSNorm's forward rows (ops/norm.hpp, and the inference models):
//   y[n, :] = x[n, :] * r[n] * w,   r[n] = 1 / sqrt(mean_c x[n, c]^2 + eps)     (r optional)
#include <cmath>
#include <cstdint>

#include "bitgrad/core/parallel.hpp"

namespace bitgrad::kernels {

template <class T>
void rms_norm_rows(const T* x, const T* w, T eps, T* y, T* r, int64_t rows, int64_t C) {
    parallel_for(
        rows,
        [&](int64_t n) {
            const T* xr = x + n * C;
            T ss = 0;
            for (int64_t c = 0; c < C; ++c) ss += xr[c] * xr[c];
            const T rn = T(1) / std::sqrt(ss / T(C) + eps);
            if (r) r[n] = rn;
            T* yr = y + n * C;
            for (int64_t c = 0; c < C; ++c) yr[c] = xr[c] * rn * w[c];
        },
        C);
}

}  // namespace bitgrad::kernels
