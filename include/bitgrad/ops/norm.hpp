#pragma once
// rms_norm(x, w): y[n, :] = x[n, :] * r[n] * w,   r[n] = 1 / sqrt(mean_c x[n, c]^2 + eps)
//   x: [..., C], w: [C] -> y: [..., C]
//   backward, with xh = x * r and u = g * w:
//     dx = r * (u - xh * mean_c(u * xh)),   dw = sum_n g * xh
//   dw is summed per thread into its own buffer, then the buffers are added in thread order, so
//   the result is the same on every run with the same thread count.
#include <cmath>
#include <vector>

#include "bitgrad/autograd/var.hpp"
#include "bitgrad/core/parallel.hpp"
#include "bitgrad/kernels/norm.hpp"

namespace bitgrad {

template <class T>
Var<T> rms_norm(const Var<T>& x, const Var<T>& w, T eps = T(1e-5)) {
    const int64_t C = x.shape().last(), N = x.shape().rows();
    BITGRAD_CHECK(w.shape().ndim() == 1 && w.dim(0) == C,
                  "rms_norm: weight has shape " << w.shape() << ", expected [" << C << "] for x " << x.shape());
    Tensor<T> y(x.shape());
    Tensor<T> r(Shape{N});
    kernels::rms_norm_rows(x.value().data(), w.value().data(), eps, y.data(), r.data(), N, C);
    return record_op("rms_norm", std::move(y), {x, w}, [x, w, r, N, C](const Tensor<T>& g) {
        auto* gx = grad_sink(x);
        auto* gw = grad_sink(w);
        const T *xp = x.value().data(), *wp = w.value().data(), *gp = g.data();
        const int nt = num_threads();
        std::vector<Tensor<T>> dw_parts;
        if (gw)
            for (int t = 0; t < nt; ++t) dw_parts.push_back(Tensor<T>::zeros(Shape{C}));
        parallel_chunks(
            N,
            [&](int64_t n0, int64_t n1) {
                T* dw = gw ? dw_parts[thread_index()].data() : nullptr;
                for (int64_t n = n0; n < n1; ++n) {
                    const T *xr = xp + n * C, *gr = gp + n * C;
                    const T rn = r[n];
                    if (gx) {
                        T dot = 0;  // mean_c(u * xh)
                        for (int64_t c = 0; c < C; ++c) dot += gr[c] * wp[c] * xr[c] * rn;
                        dot /= T(C);
                        T* dx = gx->data() + n * C;
                        for (int64_t c = 0; c < C; ++c) dx[c] += rn * (gr[c] * wp[c] - xr[c] * rn * dot);
                    }
                    if (dw)
                        for (int64_t c = 0; c < C; ++c) dw[c] += gr[c] * xr[c] * rn;
                }
            },
            C);
        if (gw)
            for (const auto& part : dw_parts) gw->flat() += part.flat();
    });
}

}  // namespace bitgrad
