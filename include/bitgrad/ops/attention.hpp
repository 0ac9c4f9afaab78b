#pragma once
// attention(q, k, v, causal): fused scaled-dot-product multi-head attention with grouped-query
// support, the whole op (scores, mask, softmax, weighted sum) in one record.
//   q: [B, T, H, D], k, v: [B, S, Hkv, D] with H % Hkv == 0 -> out [B, T, H, D]
//   out = softmax(q k^T / sqrt(D) + causal mask) v, per head (query head h uses kv head h / (H/Hkv)).
//   Backward recomputes the probabilities (see kernels/attention.hpp for the gradient formulas).
// The [B, T, H, D] layout is what linear() produces, so no transposes are needed around it.
#include "bitgrad/autograd/var.hpp"
#include "bitgrad/kernels/attention.hpp"

namespace bitgrad {

template <class T>
Var<T> attention(const Var<T>& q, const Var<T>& k, const Var<T>& v, bool causal = true) {
    const Shape &qs = q.shape(), &ks = k.shape();
    BITGRAD_CHECK(qs.ndim() == 4 && ks.ndim() == 4,
                  "attention: q " << qs << " and k " << ks << " must be [batch, time, heads, head_dim]");
    BITGRAD_CHECK(v.shape() == ks, "attention: v " << v.shape() << " must have k's shape " << ks);
    BITGRAD_CHECK(qs[0] == ks[0] && qs[3] == ks[3],
                  "attention: q " << qs << " and k " << ks << " must agree on batch and head_dim");
    BITGRAD_CHECK(ks[2] > 0 && qs[2] % ks[2] == 0,
                  "attention: " << qs[2] << " query heads are not a multiple of " << ks[2] << " key/value heads");
    BITGRAD_CHECK(!causal || ks[1] >= qs[1], "attention: causal with " << ks[1] << " keys for " << qs[1]
                                                                       << " queries; expected at least as many keys");
    const kernels::AttentionDims d{qs[0], qs[1], ks[1], qs[2], ks[2], qs[3], causal};
    Tensor<T> out(qs);
    Tensor<T> lse(Shape{d.B, d.H, d.T});
    kernels::attention_forward(d, q.value().data(), k.value().data(), v.value().data(), out.data(), lse.data());
    return record_op("attention", out, {q, k, v}, [q, k, v, out, lse, d](const Tensor<T>& g) {
        auto *gq = grad_sink(q), *gk = grad_sink(k), *gv = grad_sink(v);
        kernels::attention_backward(d, q.value().data(), k.value().data(), v.value().data(), out.data(), lse.data(),
                                    g.data(), gq ? gq->data() : nullptr, gk ? gk->data() : nullptr,
                                    gv ? gv->data() : nullptr);
    });
}

}  // namespace bitgrad
