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
#include "bitgrad/kernels/rope.hpp"

namespace bitgrad {

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
    return record_op("rope", std::move(y), {x}, [sx = x.slot(), cos_t, sin_t, B, Tn, H, D](const Tensor<T>& g) {
        if (auto* gx = grad_sink(sx)) kernels::rope_apply(g.data(), gx->data(), B, Tn, H, D, cos_t, sin_t, T(-1), true);
    });
}

}  // namespace bitgrad
