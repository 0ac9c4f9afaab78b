#pragma once
// Rotary position embedding loops (ops/rope.hpp's forward and backward, and the inference models).
//   rope_table: cos/sin of p * theta^(-2i/D) for positions offset .. offset + T - 1, i < D/2
//   rope_apply: out (+)= x rotated by sign * angle, rotate-half pairs (i, i + D/2), x [B, T, H, D]
#include <cmath>
#include <cstdint>

#include "bitgrad/core/parallel.hpp"
#include "bitgrad/core/tensor.hpp"

namespace bitgrad::kernels {
// Cos/sin table [T, D/2] for positions offset .. offset + T - 1 (angles computed in double).
template <class T>
void rope_table(int64_t Tn, int64_t D, double theta, int64_t offset, Tensor<T>& cos_t, Tensor<T>& sin_t) {
    const int64_t half = D / 2;
    cos_t = Tensor<T>(Shape{Tn, half});
    sin_t = Tensor<T>(Shape{Tn, half});
    for (int64_t t = 0; t < Tn; ++t)
        for (int64_t i = 0; i < half; ++i) {
            const double a = double(offset + t) * std::pow(theta, -2.0 * double(i) / double(D));
            cos_t[t * half + i] = T(std::cos(a));
            sin_t[t * half + i] = T(std::sin(a));
        }
}

// out (+)= rotate(x, sign * angle) for x [B, T, H, D].
template <class T>
void rope_apply(const T* x, T* out, int64_t B, int64_t Tn, int64_t H, int64_t D, const Tensor<T>& cos_t,
                const Tensor<T>& sin_t, T sign, bool accumulate) {
    const int64_t half = D / 2;
    parallel_for(
        B * Tn,
        [&](int64_t bt) {
            const int64_t t = bt % Tn;
            const T *c = cos_t.data() + t * half, *s = sin_t.data() + t * half;
            for (int64_t h = 0; h < H; ++h) {
                const T* xr = x + (bt * H + h) * D;
                T* yr = out + (bt * H + h) * D;
                for (int64_t i = 0; i < half; ++i) {
                    const T x1 = xr[i], x2 = xr[i + half], sn = sign * s[i];
                    const T y1 = x1 * c[i] - x2 * sn, y2 = x2 * c[i] + x1 * sn;
                    if (accumulate) {
                        yr[i] += y1;
                        yr[i + half] += y2;
                    } else {
                        yr[i] = y1;
                        yr[i + half] = y2;
                    }
                }
            }
        },
        H * D);
}
}  // namespace bitgrad::kernels
