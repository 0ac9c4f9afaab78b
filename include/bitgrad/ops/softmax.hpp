#pragma once
// Softmax family over the last axis, numerically stable (the row max is subtracted first).
//   softmax(x) = y,  y_c = exp(x_c - lse(x))          dx = y * (g - sum_c g_c y_c)
//   log_softmax(x) = x - lse(x)                       dx = g - softmax(x) * sum_c g_c
#include <algorithm>
#include <cmath>
#include <limits>

#include "bitgrad/autograd/var.hpp"
#include "bitgrad/core/parallel.hpp"
#include "bitgrad/kernels/exp.hpp"
#include "bitgrad/kernels/softmax.hpp"

namespace bitgrad {

namespace detail {
// y_c = f(x_c - lse(x)) for every row of x (the forward both ops share).
template <class T, class F>
Tensor<T> minus_row_logsumexp(const Tensor<T>& x, F&& f) {
    const int64_t C = x.shape().last(), N = x.shape().rows();
    Tensor<T> y(x.shape());
    const T* xp = x.data();
    parallel_for(
        N,
        [&](int64_t n) {
            const T lse = kernels::logsumexp_row(xp + n * C, C);
            for (int64_t c = 0; c < C; ++c) y[n * C + c] = f(xp[n * C + c] - lse);
        },
        C);
    return y;
}
}  // namespace detail

template <class T>
Var<T> softmax(const Var<T>& x) {
    const int64_t C = x.shape().last(), N = x.shape().rows();
    Tensor<T> y = detail::minus_row_logsumexp(x.value(), [](T v) { return kernels::exp(v); });
    return record_op("softmax", y, {x}, [x, y, N, C](const Tensor<T>& g) {
        auto* gx = grad_sink(x);
        if (!gx) return;
        parallel_for(
            N,
            [&](int64_t n) {
                const T *yr = y.data() + n * C, *gr = g.data() + n * C;
                T dot = 0;
                for (int64_t c = 0; c < C; ++c) dot += gr[c] * yr[c];
                T* d = gx->data() + n * C;
                for (int64_t c = 0; c < C; ++c) d[c] += yr[c] * (gr[c] - dot);
            },
            C);
    });
}

template <class T>
Var<T> log_softmax(const Var<T>& x) {
    const int64_t C = x.shape().last(), N = x.shape().rows();
    Tensor<T> y = detail::minus_row_logsumexp(x.value(), [](T v) { return v; });
    return record_op("log_softmax", y, {x}, [x, y, N, C](const Tensor<T>& g) {
        auto* gx = grad_sink(x);
        if (!gx) return;
        parallel_for(
            N,
            [&](int64_t n) {
                const T *yr = y.data() + n * C, *gr = g.data() + n * C;
                T gsum = 0;
                for (int64_t c = 0; c < C; ++c) gsum += gr[c];
                T* d = gx->data() + n * C;
                for (int64_t c = 0; c < C; ++c) d[c] += gr[c] - kernels::exp(yr[c]) * gsum;
            },
            C);
    });
}

}  // namespace bitgrad
