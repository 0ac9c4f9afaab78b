#pragma once
// Activations.
//   silu(x) = x * s,  s = sigmoid(x)                    dx += g * s * (1 + x * (1 - s))
//   swiglu(a, b) = silu(a) * b   (the LLaMA MLP gate, fused: one pass, nothing saved but inputs)
//                                                       da += g * b * silu'(a),  db += g * silu(a)
#include <cmath>

#include "bitgrad/autograd/var.hpp"
#include "bitgrad/core/parallel.hpp"
#include "bitgrad/kernels/activation.hpp"
#include "bitgrad/kernels/exp.hpp"

namespace bitgrad {

template <class T>
Var<T> silu(const Var<T>& x) {
    Tensor<T> y(x.shape());
    const T* xp = x.value().data();
    T* yp = y.data();
    parallel_chunks(
        y.numel(),
        [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) yp[i] = xp[i] * kernels::sigmoid(xp[i]);
        },
        8);
    return record_op("silu", std::move(y), {x}, [x](const Tensor<T>& g) {
        auto* gx = grad_sink(x);
        if (!gx) return;
        const T* xp = x.value().data();
        const T* gp = g.data();
        T* d = gx->data();
        parallel_chunks(
            g.numel(),
            [&](int64_t b, int64_t e) {
                for (int64_t i = b; i < e; ++i) {
                    T s = kernels::sigmoid(xp[i]);
                    d[i] += gp[i] * s * (T(1) + xp[i] * (T(1) - s));
                }
            },
            8);
    });
}

template <class T>
Var<T> swiglu(const Var<T>& gate, const Var<T>& up) {
    BITGRAD_CHECK(gate.shape() == up.shape(),
                  "swiglu: gate " << gate.shape() << " and up " << up.shape() << " must have the same shape");
    Tensor<T> y(gate.shape());
    kernels::swiglu_rows(gate.value().data(), up.value().data(), y.data(), y.numel());
    return record_op("swiglu", std::move(y), {gate, up}, [gate, up](const Tensor<T>& g) {
        auto* ga = grad_sink(gate);
        auto* gb = grad_sink(up);
        const T *ap = gate.value().data(), *bp = up.value().data(), *gp = g.data();
        T* da = ga ? ga->data() : nullptr;
        T* db = gb ? gb->data() : nullptr;
        parallel_chunks(
            g.numel(),
            [&](int64_t b, int64_t e) {
                // Three loops rather than tests inside one: each vectorizes.
                if (da && db) {
                    for (int64_t i = b; i < e; ++i) {
                        const T s = kernels::sigmoid(ap[i]);
                        da[i] += gp[i] * bp[i] * s * (T(1) + ap[i] * (T(1) - s));
                        db[i] += gp[i] * ap[i] * s;
                    }
                } else if (da) {
                    for (int64_t i = b; i < e; ++i) {
                        const T s = kernels::sigmoid(ap[i]);
                        da[i] += gp[i] * bp[i] * s * (T(1) + ap[i] * (T(1) - s));
                    }
                } else if (db) {
                    for (int64_t i = b; i < e; ++i) db[i] += gp[i] * ap[i] * kernels::sigmoid(ap[i]);
                }
            },
            8);
    });
}

}  // namespace bitgrad
