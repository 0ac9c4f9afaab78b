#pragma once
// embedding(ids, W): gathers rows of W [V, C] for integer ids [...] -> [..., C].
//   backward: scatter-add, dW[ids[n], :] += g[n, :]. Ids repeat, so threads split the C columns
//   (each owns a column range for all tokens): no races, and a fixed summation order.
#include <cstring>

#include "bitgrad/autograd/var.hpp"
#include "bitgrad/core/parallel.hpp"

namespace bitgrad {

template <class T>
Var<T> embedding(const Tensor<int32_t>& ids, const Var<T>& W) {
    BITGRAD_CHECK(W.shape().ndim() == 2, "embedding: W has shape " << W.shape() << ", expected [vocab, dim]");
    const int64_t V = W.dim(0), C = W.dim(1), n = ids.numel();
    for (int64_t i = 0; i < n; ++i)
        BITGRAD_CHECK(ids[i] >= 0 && ids[i] < V, "embedding: token id " << ids[i] << " at index " << i
                                                                        << " is outside the vocabulary [0, " << V
                                                                        << ")");
    Shape out = ids.shape();
    out.push_back(C);
    Tensor<T> y(out);
    const T* wp = W.value().data();
    parallel_for(
        n, [&](int64_t i) { std::memcpy(y.data() + i * C, wp + int64_t(ids[i]) * C, sizeof(T) * C); }, C);
    return record_op("embedding", std::move(y), {W}, [ids = ids.clone(), sw = W.slot(), n, C](const Tensor<T>& g) {
        auto* gw = grad_sink(sw);
        if (!gw) return;
        T* d = gw->data();
        const T* gp = g.data();
        parallel_chunks(
            C,
            [&](int64_t c0, int64_t c1) {
                for (int64_t i = 0; i < n; ++i) {
                    T* row = d + int64_t(ids[i]) * C;
                    const T* gr = gp + i * C;
                    for (int64_t c = c0; c < c1; ++c) row[c] += gr[c];
                }
            },
            n);
    });
}

}  // namespace bitgrad
