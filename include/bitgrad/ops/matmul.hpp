#pragma once
// Matrix products, all through kernels::gemm.
//
//   matmul(a, b): a [..., M, K] x b [..., K, N] -> [..., M, N]; batch dims equal, or b 2-D (shared)
//                 da += g b^T,  db += a^T g  (summed over the batch when b is shared)
//   linear(x, W): x [..., in], W [out, in] -> y = x W^T [..., out]   (nn.Linear without bias)
//                 dx += g W,  dW += g^T x  (over all rows of x)
#include "bitgrad/autograd/var.hpp"
#include "bitgrad/kernels/gemm.hpp"

namespace bitgrad {

template <class T>
Var<T> matmul(const Var<T>& a, const Var<T>& b) {
    const Shape &as = a.shape(), &bs = b.shape();
    BITGRAD_CHECK(as.ndim() >= 2 && bs.ndim() >= 2, "matmul: a " << as << " and b " << bs << " need at least 2 dims");
    const int64_t M = as[-2], K = as[-1], N = bs[-1];
    BITGRAD_CHECK(bs[-2] == K,
                  "matmul: a " << as << " x b " << bs << ": inner dims " << K << " and " << bs[-2] << " must match");
    const bool shared_b = bs.ndim() == 2;
    BITGRAD_CHECK(shared_b || as.ndim() == bs.ndim(),
                  "matmul: batch dims of a " << as << " and b " << bs << " must match (or b must be 2-D)");
    int64_t batch = 1;
    Shape out;
    for (int i = 0; i < as.ndim() - 2; ++i) {
        BITGRAD_CHECK(shared_b || as[i] == bs[i], "matmul: batch dims of a " << as << " and b " << bs << " differ");
        batch *= as[i];
        out.push_back(as[i]);
    }
    out.push_back(M);
    out.push_back(N);
    Tensor<T> y(out);
    const int64_t sb = shared_b ? 0 : K * N;
    for (int64_t i = 0; i < batch; ++i)
        kernels::gemm(false, false, M, N, K, T(1), a.value().data() + i * M * K, K, b.value().data() + i * sb, N, T(0),
                      y.data() + i * M * N, N);
    return record_op("matmul", std::move(y), {a, b}, [a, b, M, N, K, batch, sb](const Tensor<T>& g) {
        if (auto* ga = grad_sink(a))
            for (int64_t i = 0; i < batch; ++i)
                kernels::gemm(false, true, M, K, N, T(1), g.data() + i * M * N, N, b.value().data() + i * sb, N, T(1),
                              ga->data() + i * M * K, K);
        if (auto* gb = grad_sink(b))
            for (int64_t i = 0; i < batch; ++i)
                kernels::gemm(true, false, K, N, M, T(1), a.value().data() + i * M * K, K, g.data() + i * M * N, N,
                              T(1), gb->data() + i * sb, N);
    });
}

template <class T>
Var<T> linear(const Var<T>& x, const Var<T>& W) {
    const Shape &xs = x.shape(), &ws = W.shape();
    BITGRAD_CHECK(ws.ndim() == 2, "linear: W has shape " << ws << ", expected [out, in]");
    BITGRAD_CHECK(xs.ndim() >= 1 && xs[-1] == ws[1],
                  "linear: x has shape " << xs << ", expected last dim " << ws[1] << " to match W " << ws);
    const int64_t rows = xs.rows(), in = ws[1], out = ws[0];
    Tensor<T> y(xs.with_last(out));
    kernels::gemm(false, true, rows, out, in, T(1), x.value().data(), in, W.value().data(), in, T(0), y.data(), out);
    return record_op("linear", std::move(y), {x, W}, [x, W, rows, in, out](const Tensor<T>& g) {
        if (auto* gx = grad_sink(x))
            kernels::gemm(false, false, rows, in, out, T(1), g.data(), out, W.value().data(), in, T(1), gx->data(), in);
        if (auto* gw = grad_sink(W))
            kernels::gemm(true, false, out, in, rows, T(1), g.data(), out, x.value().data(), in, T(1), gw->data(), in);
    });
}

}  // namespace bitgrad
