#pragma once
// fbi_linear(x, W, alpha, beta, ste): the FBI-LLM binarized linear layer as one op.
//
//   W: [out, in] latent weights, alpha, beta: [1, in] (one scale and one shift per input column)
//   W_hat[i, j] = alpha[j] * sign(W[i, j]) + beta[j],     y = x W_hat^T        x: [..., in] -> [..., out]
//
// Computed in the folded form, with S = sign(W) (+-1) the only [out, in] operand:
//   y = (x * alpha) S^T + (x . beta)                         (x * alpha scales columns; x . beta per row)
// Backward, with u = g S ([rows, in]) and r = rowsum(g) ([rows]):
//   dx      += u * alpha + r beta                            (= g W_hat)
//   dalpha  += sum_n x[n, :] * u[n, :]                       (= sum_i G[i, :] * S[i, :],  G = g^T x)
//   dbeta   += sum_n x[n, :] * r[n]                          (= sum_i G[i, :])
//   dW      += (g^T (x * alpha)) * ste'(W)                   (= G * alpha * ste'(W), straight-through)
// so every gradient comes from three GEMMs (y, u, and g^T (x * alpha), which for the identity STE
// accumulates straight into dW) plus O(rows * (in + out)) work: no [out, in] pass over G, and no
// W_hat. Under Precision::BF16 the two GEMMs with S read it straight from the sign bits of W as
// exact +-1 bf16 operands (kernels::Bf16Operand::sign_of): S is never stored. In float, S is
// materialised for each GEMM (one O(out * in) pass) rather than kept between forward and
// backward: a copy of every layer's S would cost as much memory as the weights.
//
// nn::FBILinear also offers the same layer composed of primitive ops; the tests check both equal.
#include <type_traits>

#include "bitgrad/autograd/var.hpp"
#include "bitgrad/core/parallel.hpp"
#include "bitgrad/core/precision.hpp"
#include "bitgrad/kernels/fbi.hpp"
#include "bitgrad/kernels/gemm.hpp"
#include "bitgrad/ops/sign.hpp"

namespace bitgrad {

namespace detail {
// C [rows, n] = A [rows, k] op(S), S = sign(W) with W [out, in]: op(S) = S^T ([in, out]) when
// transposed (forward), S ([out, in]) when not (backward).
template <class T>
void sign_gemm(const T* A, int64_t rows, int64_t k, const T* W, int64_t out, int64_t in, bool transposed, T* C) {
    const int64_t n = transposed ? out : in;
    if constexpr (std::is_same_v<T, float>) {
        if (matmul_precision() == Precision::BF16) {
            kernels::gemm_bf16(rows, n, k, 1.f, kernels::Bf16Operand::f32(A, k),
                               kernels::Bf16Operand::sign_of(W, in, transposed), 0.f, C, n);
            return;
        }
    }
    Tensor<T> S({out, in});
    kernels::sign_matrix(W, S.data(), out * in);
    kernels::gemm(false, transposed, rows, n, k, T(1), A, k, S.data(), in, T(0), C, n);
}
}  // namespace detail

template <class T>
Var<T> fbi_linear(const Var<T>& x, const Var<T>& W, const Var<T>& alpha, const Var<T>& beta, Ste ste = Ste::Identity) {
    const Shape& xs = x.shape();
    BITGRAD_CHECK(W.shape().ndim() == 2, "fbi_linear: W has shape " << W.shape() << ", expected [out, in]");
    const int64_t out = W.dim(0), in = W.dim(1), rows = xs.rows();
    BITGRAD_CHECK(xs.ndim() >= 1 && xs[-1] == in,
                  "fbi_linear: x has shape " << xs << ", expected last dim " << in << " to match W " << W.shape());
    BITGRAD_CHECK(
        alpha.shape() == (Shape{1, in}) && beta.shape() == (Shape{1, in}),
        "fbi_linear: alpha " << alpha.shape() << " and beta " << beta.shape() << " must be [1, " << in << "]");
    const T *xp = x.value().data(), *a = alpha.value().data(), *b = beta.value().data();
    Tensor<T> xa({rows, in});
    kernels::scale_columns(xp, a, xa.data(), rows, in);
    Tensor<T> y(xs.with_last(out));
    detail::sign_gemm(xa.data(), rows, in, W.value().data(), out, in, /*transposed=*/true, y.data());
    T* yp = y.data();
    parallel_for(
        rows,
        [&](int64_t n) {
            T xb = 0;  // x[n, :] . beta
            for (int64_t j = 0; j < in; ++j) xb += xp[n * in + j] * b[j];
            for (int64_t i = 0; i < out; ++i) yp[n * out + i] += xb;
        },
        in + out);
    return record_op(
        "fbi_linear", std::move(y), {x, W, alpha, beta}, [x, W, alpha, beta, ste, rows, out, in](const Tensor<T>& g) {
            auto* gx = grad_sink(x);
            auto *gW = grad_sink(W), *ga = grad_sink(alpha), *gb = grad_sink(beta);
            const T *xp = x.value().data(), *a = alpha.value().data(), *b = beta.value().data(), *gp = g.data();
            Tensor<T> r(Shape{rows});  // rowsum(g)
            parallel_for(
                rows,
                [&](int64_t n) {
                    T s = 0;
                    for (int64_t i = 0; i < out; ++i) s += gp[n * out + i];
                    r[n] = s;
                },
                out);
            if (gx || ga) {
                Tensor<T> u({rows, in});
                detail::sign_gemm(gp, rows, out, W.value().data(), out, in, /*transposed=*/false, u.data());
                if (ga) kernels::column_dots(xp, u.data(), false, ga->data(), rows, in);
                if (gx) {
                    T* d = gx->data();
                    const T* up = u.data();
                    parallel_for(
                        rows,
                        [&](int64_t n) {
                            for (int64_t j = 0; j < in; ++j) d[n * in + j] += up[n * in + j] * a[j] + r[n] * b[j];
                        },
                        in);
                }
            }
            if (gb) kernels::column_dots(xp, r.data(), true, gb->data(), rows, in);
            if (!gW) return;
            Tensor<T> xa({rows, in});
            kernels::scale_columns(xp, a, xa.data(), rows, in);
            if (ste == Ste::Identity) {  // ste' = 1: accumulate the GEMM straight into dW
                kernels::gemm(true, false, out, in, rows, T(1), gp, out, xa.data(), in, T(1), gW->data(), in);
                return;
            }
            Tensor<T> Ga({out, in});  // G * alpha
            kernels::gemm(true, false, out, in, rows, T(1), gp, out, xa.data(), in, T(0), Ga.data(), in);
            const T *w = W.value().data(), *ga_p = Ga.data();
            T* dW = gW->data();
            parallel_chunks(
                out * in,
                [&](int64_t s, int64_t e) {
                    // One loop per STE with the STE a constant, so each inlines its derivative. No
                    // default: a new Ste is a -Wswitch warning here, not ApproxSign's derivative.
                    switch (ste) {
                        case Ste::Identity:  // handled above, without the Ga buffer
                            for (int64_t k = s; k < e; ++k) dW[k] += ga_p[k];
                            break;
                        case Ste::Clipped:
                            for (int64_t k = s; k < e; ++k) dW[k] += ste_derivative(Ste::Clipped, w[k]) * ga_p[k];
                            break;
                        case Ste::ApproxSign:
                            for (int64_t k = s; k < e; ++k) dW[k] += ste_derivative(Ste::ApproxSign, w[k]) * ga_p[k];
                            break;
                    }
                },
                4);
        });
}

}  // namespace bitgrad
