#pragma once
// rope(x, theta, offset): rotary position embedding, "rotate-half" convention (Hugging Face LLaMA).
//   x: [B, T, H, D] (D even). For position p = offset + t and i < D/2, with a = p * theta^(-2i/D):
//     y[i]       = x[i] cos a - x[i + D/2] sin a
//     y[i + D/2] = x[i + D/2] cos a + x[i] sin a
//   A rotation, so backward applies its transpose (the rotation by -a):
//     dx[i] += g[i] cos a + g[i + D/2] sin a,   dx[i + D/2] += g[i + D/2] cos a - g[i] sin a
//   offset shifts positions for incremental decoding with a KV cache.
#include <cmath>

#include "bitgrad/autograd/var.hpp"
#include "bitgrad/core/parallel.hpp"

namespace bitgrad {

namespace kernels {
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
    parallel_for(B * Tn, [&](int64_t bt) {
        const int64_t t = bt % Tn;
        const T *c = cos_t.data() + t * half, *s = sin_t.data() + t * half;
        for (int64_t h = 0; h < H; ++h) {
            const T* xr = x + (bt * H + h) * D;
            T* yr = out + (bt * H + h) * D;
            for (int64_t i = 0; i < half; ++i) {
                const T x1 = xr[i], x2 = xr[i + half], sn = sign * s[i];
                const T y1 = x1 * c[i] - x2 * sn, y2 = x2 * c[i] + x1 * sn;
                if (accumulate) { yr[i] += y1; yr[i + half] += y2; }
                else { yr[i] = y1; yr[i + half] = y2; }
            }
        }
    }, H * D);
}
}  // namespace kernels

template <class T>
Var<T> rope(const Var<T>& x, double theta = 10000.0, int64_t offset = 0) {
    const Shape& s = x.shape();
    BITGRAD_CHECK(s.ndim() == 4 && s[3] % 2 == 0,
                  "rope: x has shape " << s << ", expected [batch, time, heads, head_dim] with an even head_dim");
    BITGRAD_CHECK(theta > 0 && offset >= 0, "rope: theta " << theta << " must be > 0 and offset " << offset << " >= 0");
    const int64_t B = s[0], Tn = s[1], H = s[2], D = s[3];
    Tensor<T> cos_t, sin_t;
    kernels::rope_table(Tn, D, theta, offset, cos_t, sin_t);
    Tensor<T> y(s);
    kernels::rope_apply(x.value().data(), y.data(), B, Tn, H, D, cos_t, sin_t, T(1), false);
    return detail::record("rope", std::move(y), {x}, [x, cos_t, sin_t, B, Tn, H, D](const Tensor<T>& g) {
        if (auto* gx = detail::grad_sink(x))
            kernels::rope_apply(g.data(), gx->data(), B, Tn, H, D, cos_t, sin_t, T(-1), true);
    });
}

}  // namespace bitgrad
