#pragma once
// Reductions.
//   sum(x, axis):  y[o, i] = sum_k x[o, k, i]      (x viewed as [outer, n, inner])   dx[o, k, i] += g[o, i]
//   mean(x, axis): sum / n                                                           dx += g / n
//   sum(x):        scalar total                                                      dx += g
//   keepdim keeps the reduced axis with extent 1.
#include "bitgrad/autograd/var.hpp"
#include "bitgrad/core/parallel.hpp"

namespace bitgrad {

namespace detail {
struct AxisSplit {
    int64_t outer = 1, n = 1, inner = 1;
    AxisSplit(const Shape& s, int axis) {
        for (int i = 0; i < axis; ++i) outer *= s[i];
        n = s[axis];
        for (int i = axis + 1; i < s.ndim(); ++i) inner *= s[i];
    }
};

template <class T>
Var<T> sum_axis_scaled(const char* op, const Var<T>& x, int axis_in, bool keepdim, T factor) {
    const int axis = x.shape().axis(axis_in);
    const AxisSplit sp(x.shape(), axis);
    Shape out_shape = x.shape();
    out_shape[axis] = 1;
    if (!keepdim) out_shape = out_shape.without(axis);
    Tensor<T> y = Tensor<T>::zeros(out_shape);
    const T* xp = x.value().data();
    T* yp = y.data();
    parallel_for(
        sp.outer,
        [&](int64_t o) {
            for (int64_t k = 0; k < sp.n; ++k)
                for (int64_t i = 0; i < sp.inner; ++i) yp[o * sp.inner + i] += xp[(o * sp.n + k) * sp.inner + i];
            for (int64_t i = 0; i < sp.inner; ++i) yp[o * sp.inner + i] *= factor;
        },
        sp.n * sp.inner);
    return record_op(op, std::move(y), {x}, [x, sp, factor](const Tensor<T>& g) {
        auto* gx = grad_sink(x);
        if (!gx) return;
        T* gp = gx->data();
        const T* gy = g.data();
        parallel_for(
            sp.outer,
            [&](int64_t o) {
                for (int64_t k = 0; k < sp.n; ++k)
                    for (int64_t i = 0; i < sp.inner; ++i)
                        gp[(o * sp.n + k) * sp.inner + i] += factor * gy[o * sp.inner + i];
            },
            sp.n * sp.inner);
    });
}
}  // namespace detail

template <class T>
Var<T> sum(const Var<T>& x, int axis, bool keepdim = false) {
    return detail::sum_axis_scaled("sum", x, axis, keepdim, T(1));
}

template <class T>
Var<T> mean(const Var<T>& x, int axis, bool keepdim = false) {
    const int64_t n = x.shape()[axis];
    BITGRAD_CHECK(n > 0, "mean: axis " << axis << " of shape " << x.shape() << " is empty");
    return detail::sum_axis_scaled("mean", x, axis, keepdim, T(1) / T(n));
}

// Sum of all elements, as a 0-dim (scalar) Var.
namespace detail {
// Plain loop (not Eigen's redux: GCC 12 warns falsely inside its AVX-512 reduction).
template <class T>
T total(const Tensor<T>& x) {
    T s = 0;
    for (T v : x) s += v;
    return s;
}
}  // namespace detail

template <class T>
Var<T> sum(const Var<T>& x) {
    Tensor<T> y = Tensor<T>::scalar(detail::total(x.value()));
    return record_op("sum_all", std::move(y), {x}, [x](const Tensor<T>& g) {
        if (auto* gx = grad_sink(x)) gx->flat() += g[0];
    });
}

template <class T>
Var<T> mean(const Var<T>& x) {
    BITGRAD_CHECK(x.numel() > 0, "mean: empty tensor of shape " << x.shape());
    Tensor<T> y = Tensor<T>::scalar(detail::total(x.value()) / T(x.numel()));
    return record_op("mean_all", std::move(y), {x}, [x](const Tensor<T>& g) {
        if (auto* gx = grad_sink(x)) gx->flat() += g[0] / T(x.numel());
    });
}

}  // namespace bitgrad
