#pragma once
// Shape ops.
//   reshape(x, shape): a view of the same values (no copy)      dx += reshape(g, x.shape)  (no copy either)
//   transpose(x, a, b): swaps two axes (copies: tensors stay contiguous)   dx += transpose(g, a, b)
#include <utility>

#include "bitgrad/autograd/var.hpp"
#include "bitgrad/core/parallel.hpp"

namespace bitgrad {

template <class T>
Var<T> reshape(const Var<T>& x, const Shape& shape) {
    Tensor<T> y = x.value().reshape(shape);
    return record_op("reshape", std::move(y), {x}, [sx = x.slot()](const Tensor<T>& g) {
        accumulate_grad(sx, g);  // same element order; usually takes g's storage
    });
}

namespace kernels {
// out = x with axes a and b swapped (out must have the swapped shape). When accumulate, out += instead.
template <class T>
void transpose_axes(const Tensor<T>& x, int a, int b, Tensor<T>& out, bool accumulate) {
    const Shape& s = x.shape();
    const int nd = s.ndim();
    // Element strides of x, permuted into output axis order.
    std::array<int64_t, kMaxDims> xs{}, perm_stride{};
    int64_t st = 1;
    for (int i = nd - 1; i >= 0; --i) {
        xs[i] = st;
        st *= s[i];
    }
    for (int i = 0; i < nd; ++i) perm_stride[i] = xs[i == a ? b : (i == b ? a : i)];
    const Shape& os = out.shape();
    const int64_t L = nd ? os[nd - 1] : 1, R = out.numel() / std::max<int64_t>(L, 1);
    const T* xp = x.data();
    T* op = out.data();
    parallel_for(
        R,
        [&](int64_t r) {
            int64_t off = 0, rem = r;
            for (int i = nd - 2; i >= 0; --i) {
                off += (rem % os[i]) * perm_stride[i];
                rem /= os[i];
            }
            const int64_t inner = nd ? perm_stride[nd - 1] : 1;
            T* dst = op + r * L;
            if (accumulate)
                for (int64_t j = 0; j < L; ++j) dst[j] += xp[off + j * inner];
            else
                for (int64_t j = 0; j < L; ++j) dst[j] = xp[off + j * inner];
        },
        L);
}
}  // namespace kernels

template <class T>
Var<T> transpose(const Var<T>& x, int axis_a, int axis_b) {
    const int a = x.shape().axis(axis_a), b = x.shape().axis(axis_b);
    Shape os = x.shape();
    std::swap(os[a], os[b]);
    Tensor<T> y(os);
    kernels::transpose_axes(x.value(), a, b, y, false);
    return record_op("transpose", std::move(y), {x}, [sx = x.slot(), a, b](const Tensor<T>& g) {
        if (auto* gx = grad_sink(sx)) kernels::transpose_axes(g, a, b, *gx, true);
    });
}

}  // namespace bitgrad
