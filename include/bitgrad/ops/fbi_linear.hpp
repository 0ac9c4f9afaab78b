#pragma once
// fbi_linear(x, W, alpha, beta, ste): the FBI-LLM binarized linear layer as one op.
//
//   W: [out, in] latent weights, alpha, beta: [1, in] (one scale and one shift per input column)
//   W_hat[i, j] = alpha[j] * sign(W[i, j]) + beta[j],     y = x W_hat^T        x: [..., in] -> [..., out]
//
// Backward, with G = g^T x ([out, in], summed over all rows of x) and s = sign(W):
//   dx      += g W_hat
//   dW      += G * alpha * ste'(W)          (straight-through: see ops/sign.hpp)
//   dalpha  += sum_i G[i, :] * s[i, :]
//   dbeta   += sum_i G[i, :]
// The three W-side gradients come from one pass over G. W_hat is rebuilt in backward instead of
// being saved: O(out * in) work next to the O(rows * out * in) GEMMs, and no copy of every weight
// matrix lives across the step.
//
// The same layer in folded form, y = sign(W) (alpha * x) + (beta . x), is what a packed 1-bit
// kernel computes; nn::FBILinear offers it as a composition of primitive ops and tests it equal.
#include "bitgrad/autograd/var.hpp"
#include "bitgrad/core/parallel.hpp"
#include "bitgrad/kernels/gemm.hpp"
#include "bitgrad/ops/sign.hpp"

namespace bitgrad {

namespace kernels {
// W_hat = alpha * sign(W) + beta, row by row.
template <class T>
void fbi_materialize(const T* W, const T* alpha, const T* beta, T* W_hat, int64_t out, int64_t in) {
    parallel_for(out, [&](int64_t i) {
        const T* w = W + i * in;
        T* wh = W_hat + i * in;
        for (int64_t j = 0; j < in; ++j) wh[j] = alpha[j] * sign_value(w[j]) + beta[j];
    }, in);
}
}  // namespace kernels

template <class T>
Var<T> fbi_linear(const Var<T>& x, const Var<T>& W, const Var<T>& alpha, const Var<T>& beta, Ste ste = Ste::Identity) {
    const Shape& xs = x.shape();
    BITGRAD_CHECK(W.shape().ndim() == 2, "fbi_linear: W has shape " << W.shape() << ", expected [out, in]");
    const int64_t out = W.dim(0), in = W.dim(1), rows = xs.rows();
    BITGRAD_CHECK(xs.ndim() >= 1 && xs[-1] == in,
                  "fbi_linear: x has shape " << xs << ", expected last dim " << in << " to match W " << W.shape());
    BITGRAD_CHECK(alpha.shape() == (Shape{1, in}) && beta.shape() == (Shape{1, in}),
                  "fbi_linear: alpha " << alpha.shape() << " and beta " << beta.shape() << " must be [1, " << in << "]");
    Tensor<T> W_hat({out, in});
    kernels::fbi_materialize(W.value().data(), alpha.value().data(), beta.value().data(), W_hat.data(), out, in);
    Tensor<T> y(xs.with_last(out));
    kernels::gemm(false, true, rows, out, in, T(1), x.value().data(), in, W_hat.data(), in, T(0), y.data(), out);
    W_hat = Tensor<T>();  // released now; backward rebuilds it
    return detail::record("fbi_linear", std::move(y), {x, W, alpha, beta},
                          [x, W, alpha, beta, ste, rows, out, in](const Tensor<T>& g) {
        auto* gx = detail::grad_sink(x);
        auto *gW = detail::grad_sink(W), *ga = detail::grad_sink(alpha), *gb = detail::grad_sink(beta);
        const T *w = W.value().data(), *a = alpha.value().data();
        if (gx) {
            Tensor<T> W_hat({out, in});
            kernels::fbi_materialize(w, a, beta.value().data(), W_hat.data(), out, in);
            kernels::gemm(false, false, rows, in, out, T(1), g.data(), out, W_hat.data(), in, T(1), gx->data(), in);
        }
        if (!gW && !ga && !gb) return;
        Tensor<T> G({out, in});
        kernels::gemm(true, false, out, in, rows, T(1), g.data(), out, x.value().data(), in, T(0), G.data(), in);
        // Threads own column ranges: no races, fixed summation order over rows.
        parallel_chunks(in, [&](int64_t j0, int64_t j1) {
            for (int64_t i = 0; i < out; ++i) {
                const T *Gi = G.data() + i * in, *wi = w + i * in;
                if (gW) {
                    T* dWi = gW->data() + i * in;
                    for (int64_t j = j0; j < j1; ++j) dWi[j] += Gi[j] * a[j] * ste_derivative(ste, wi[j]);
                }
                if (ga) for (int64_t j = j0; j < j1; ++j) (*ga)[j] += Gi[j] * sign_value(wi[j]);
                if (gb) for (int64_t j = j0; j < j1; ++j) (*gb)[j] += Gi[j];
            }
        }, out);
    });
}

}  // namespace bitgrad
