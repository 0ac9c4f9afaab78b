#pragma once
// Elementwise arithmetic with broadcasting.
//
//   add(a, b) = a + b      da += g,      db += g
//   sub(a, b) = a - b      da += g,      db -= g
//   mul(a, b) = a * b      da += g * b,  db += g * a
//   scale(x, s) = s * x    dx += s * g
// Gradients of broadcast inputs are summed over the axes they were broadcast along.
#include "bitgrad/autograd/var.hpp"
#include "bitgrad/ops/broadcast.hpp"

namespace bitgrad {

namespace detail {

// Adds sign * g (times the other operand when multiply) into the gradient of one input.
//   which = 0: input a, 1: input b.
template <class T>
void accumulate_binary_grad(const BroadcastPlan& plan, const Tensor<T>& g, Tensor<T>& sink, const Shape& in_shape,
                            int which, T sign, const T* other) {
    const T* gp = g.data();
    T* s = sink.data();
    if (in_shape == plan.out) {  // no broadcast: a flat loop, in parallel
        const int64_t n = g.numel();
        if (!other)
            parallel_chunks(n, [&](int64_t b, int64_t e) {
                for (int64_t i = b; i < e; ++i) s[i] += sign * gp[i];
            });
        else if (which == 0)  // other is b, possibly broadcast
            plan.for_each([&](int64_t o, int64_t, int64_t ib) { s[o] += gp[o] * other[ib]; }, true);
        else
            plan.for_each([&](int64_t o, int64_t ia, int64_t) { s[o] += gp[o] * other[ia]; }, true);
        return;
    }
    // Broadcast input: several outputs add into one entry, so sum serially (deterministic order).
    plan.for_each(
        [&](int64_t o, int64_t ia, int64_t ib) {
            int64_t mine = which == 0 ? ia : ib, theirs = which == 0 ? ib : ia;
            s[mine] += other ? gp[o] * other[theirs] : sign * gp[o];
        },
        false);
}

template <class T, class F>
Tensor<T> broadcast_apply(const BroadcastPlan& plan, const Tensor<T>& a, const Tensor<T>& b, F f) {
    Tensor<T> y(plan.out);
    const T *ap = a.data(), *bp = b.data();
    T* yp = y.data();
    if (a.shape() == b.shape())
        parallel_chunks(y.numel(), [&](int64_t s, int64_t e) {
            for (int64_t i = s; i < e; ++i) yp[i] = f(ap[i], bp[i]);
        });
    else
        plan.for_each([&](int64_t o, int64_t ia, int64_t ib) { yp[o] = f(ap[ia], bp[ib]); }, true);
    return y;
}

}  // namespace detail

template <class T>
Var<T> add(const Var<T>& a, const Var<T>& b) {
    detail::BroadcastPlan plan("add", a.shape(), b.shape());
    Tensor<T> y = detail::broadcast_apply(plan, a.value(), b.value(), [](T x, T z) { return x + z; });
    // Backward needs no value: it captures the inputs' gradient slots only.
    return record_op("add", std::move(y), {a, b}, [sa = a.slot(), sb = b.slot(), plan](const Tensor<T>& g) {
        // Without broadcasting the gradient passes through: the residual adds of a transformer
        // hand g to one input without a copy.
        if (sa->shape == plan.out)
            accumulate_grad(sa, g);
        else if (auto* ga = grad_sink(sa))
            detail::accumulate_binary_grad(plan, g, *ga, sa->shape, 0, T(1), (const T*)nullptr);
        if (sb->shape == plan.out)
            accumulate_grad(sb, g);
        else if (auto* gb = grad_sink(sb))
            detail::accumulate_binary_grad(plan, g, *gb, sb->shape, 1, T(1), (const T*)nullptr);
    });
}

template <class T>
Var<T> sub(const Var<T>& a, const Var<T>& b) {
    detail::BroadcastPlan plan("sub", a.shape(), b.shape());
    Tensor<T> y = detail::broadcast_apply(plan, a.value(), b.value(), [](T x, T z) { return x - z; });
    return record_op("sub", std::move(y), {a, b}, [sa = a.slot(), sb = b.slot(), plan](const Tensor<T>& g) {
        if (auto* ga = grad_sink(sa))
            detail::accumulate_binary_grad(plan, g, *ga, sa->shape, 0, T(1), (const T*)nullptr);
        if (auto* gb = grad_sink(sb))
            detail::accumulate_binary_grad(plan, g, *gb, sb->shape, 1, T(-1), (const T*)nullptr);
    });
}

template <class T>
Var<T> mul(const Var<T>& a, const Var<T>& b) {
    detail::BroadcastPlan plan("mul", a.shape(), b.shape());
    Tensor<T> y = detail::broadcast_apply(plan, a.value(), b.value(), [](T x, T z) { return x * z; });
    return record_op("mul", std::move(y), {a, b}, [a, b, plan](const Tensor<T>& g) {
        if (auto* ga = grad_sink(a)) detail::accumulate_binary_grad(plan, g, *ga, a.shape(), 0, T(1), b.value().data());
        if (auto* gb = grad_sink(b)) detail::accumulate_binary_grad(plan, g, *gb, b.shape(), 1, T(1), a.value().data());
    });
}

template <class T>
Var<T> scale(const Var<T>& x, T s) {
    Tensor<T> y(x.shape());
    y.flat() = x.value().flat() * s;
    return record_op("scale", std::move(y), {x}, [sx = x.slot(), s](const Tensor<T>& g) {
        if (auto* gx = grad_sink(sx)) gx->flat() += s * g.flat();
    });
}

template <class T>
Var<T> operator+(const Var<T>& a, const Var<T>& b) {
    return add(a, b);
}
template <class T>
Var<T> operator-(const Var<T>& a, const Var<T>& b) {
    return sub(a, b);
}
template <class T>
Var<T> operator*(const Var<T>& a, const Var<T>& b) {
    return mul(a, b);
}

}  // namespace bitgrad
