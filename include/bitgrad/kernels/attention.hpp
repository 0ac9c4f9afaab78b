#pragma once
// Fused multi-head attention kernels (no autograd), flash-attention style: the [T, S] probability
// matrix is never stored. Forward keeps one log-sum-exp per query row; backward recomputes the
// probabilities one block of query rows at a time from Q, K and that lse.
//
// Layout: q, o, dq [B, T, H, D]; k, v, dk, dv [B, S, Hkv, D]; lse [B, H, T]. H % Hkv == 0 and
// query head h reads kv head h / (H / Hkv) (grouped-query attention; Hkv == H is plain MHA).
// Causal: query t sits at absolute position S - T + t and sees keys 0 .. S - T + t (so a query
// block appended after a KV cache of S - T keys sees the whole cache).
//
// Math, per head, with P = softmax(scale * Q K^T) (masked):
//   O = P V;   dV = P^T dO;   dP = dO V^T;   dS = P * (dP - rowsum(dO * O));
//   dQ = scale * dS K;   dK = scale * dS^T Q.
#include <algorithm>
#include <cmath>
#include <limits>

#include "bitgrad/core/parallel.hpp"
#include "bitgrad/core/tensor.hpp"
#include "bitgrad/kernels/exp.hpp"
#include "bitgrad/kernels/gemm.hpp"

namespace bitgrad::kernels {

struct AttentionDims {
    int64_t B, T, S, H, Hkv, D;
    bool causal;
    int64_t visible_keys(int64_t t) const { return causal ? std::min(S, S - T + t + 1) : S; }
};

inline constexpr int64_t kAttentionBlock = 64;  // query rows per block

namespace detail {
// P (rows x L) = softmax over the visible part of scale * Qb K^T; entries beyond the mask are 0.
// When lse_in is given, uses it (backward); otherwise computes it into lse_out (forward).
template <class T, class QMap, class KMap>
void attention_probs(const AttentionDims& d, const QMap& Qb, const KMap& K, int64_t t0, int64_t L, T scale,
                     RowMatrix<T>& P, const T* lse_in, T* lse_out) {
    const int64_t rows = Qb.rows();
    P.resize(rows, L);
    P.noalias() = scale * Qb * K.topRows(L).transpose();
    for (int64_t i = 0; i < rows; ++i) {
        const int64_t n = d.visible_keys(t0 + i);
        T* p = P.data() + i * L;
        T lse;
        if (lse_in) {
            lse = lse_in[i];
        } else {
            T m = -std::numeric_limits<T>::infinity();
            for (int64_t j = 0; j < n; ++j) m = std::max(m, p[j]);
            T sum = 0;
#pragma omp simd reduction(+ : sum)
            for (int64_t j = 0; j < n; ++j) sum += exp(p[j] - m);
            lse = m + std::log(sum);
            lse_out[i] = lse;
        }
        for (int64_t j = 0; j < n; ++j) p[j] = exp(p[j] - lse);
        for (int64_t j = n; j < L; ++j) p[j] = T(0);
    }
}
}  // namespace detail

template <class T>
void attention_forward(const AttentionDims& d, const T* q, const T* k, const T* v, T* o, T* lse) {
    const T scale = T(1) / std::sqrt(T(d.D));
    const int64_t group = d.H / d.Hkv;
    parallel_for(
        d.B * d.H,
        [&](int64_t bh) {
            const int64_t b = bh / d.H, h = bh % d.H, kvh = h / group;
            ConstStridedMap<T> Q(q + (b * d.T * d.H + h) * d.D, d.T, d.D, Eigen::OuterStride<>(d.H * d.D));
            ConstStridedMap<T> K(k + (b * d.S * d.Hkv + kvh) * d.D, d.S, d.D, Eigen::OuterStride<>(d.Hkv * d.D));
            ConstStridedMap<T> V(v + (b * d.S * d.Hkv + kvh) * d.D, d.S, d.D, Eigen::OuterStride<>(d.Hkv * d.D));
            StridedMap<T> O(o + (b * d.T * d.H + h) * d.D, d.T, d.D, Eigen::OuterStride<>(d.H * d.D));
            thread_local RowMatrix<T> P;
            for (int64_t t0 = 0; t0 < d.T; t0 += kAttentionBlock) {
                const int64_t rows = std::min(kAttentionBlock, d.T - t0), L = d.visible_keys(t0 + rows - 1);
                detail::attention_probs(d, Q.middleRows(t0, rows), K, t0, L, scale, P, (const T*)nullptr,
                                        lse + bh * d.T + t0);
                O.middleRows(t0, rows).noalias() = P * V.topRows(L);
            }
        },
        d.T * d.S * d.D);
}

// Adds into dq, dk, dv (any may be nullptr when that gradient is not needed).
template <class T>
void attention_backward(const AttentionDims& d, const T* q, const T* k, const T* v, const T* o, const T* lse,
                        const T* dout, T* dq, T* dk, T* dv) {
    const T scale = T(1) / std::sqrt(T(d.D));
    const int64_t group = d.H / d.Hkv;
    // One task per (batch, kv head): it owns dk, dv of that head, and dq of its query heads.
    parallel_for(
        d.B * d.Hkv,
        [&](int64_t bk) {
            const int64_t b = bk / d.Hkv, kvh = bk % d.Hkv;
            const Eigen::OuterStride<> qs(d.H * d.D), ks(d.Hkv * d.D);
            ConstStridedMap<T> K(k + (b * d.S * d.Hkv + kvh) * d.D, d.S, d.D, ks);
            ConstStridedMap<T> V(v + (b * d.S * d.Hkv + kvh) * d.D, d.S, d.D, ks);
            thread_local RowMatrix<T> P, dS;
            thread_local Eigen::Matrix<T, Eigen::Dynamic, 1> Di;
            for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
                const int64_t qoff = (b * d.T * d.H + h) * d.D;
                ConstStridedMap<T> Q(q + qoff, d.T, d.D, qs), O(o + qoff, d.T, d.D, qs), dO(dout + qoff, d.T, d.D, qs);
                const T* lse_bh = lse + (b * d.H + h) * d.T;
                for (int64_t t0 = 0; t0 < d.T; t0 += kAttentionBlock) {
                    const int64_t rows = std::min(kAttentionBlock, d.T - t0), L = d.visible_keys(t0 + rows - 1);
                    auto Qb = Q.middleRows(t0, rows);
                    auto dOb = dO.middleRows(t0, rows);
                    detail::attention_probs(d, Qb, K, t0, L, scale, P, lse_bh + t0, (T*)nullptr);
                    if (dv) {
                        StridedMap<T> dV(dv + (b * d.S * d.Hkv + kvh) * d.D, L, d.D, ks);
                        dV.noalias() += P.transpose() * dOb;
                    }
                    if (!dq && !dk) continue;
                    Di.resize(rows);
                    for (int64_t i = 0; i < rows; ++i) Di[i] = dOb.row(i).dot(O.row(t0 + i));
                    dS.resize(rows, L);
                    dS.noalias() = dOb * V.topRows(L).transpose();
                    dS = (P.array() * (dS.array().colwise() - Di.array())).matrix();
                    if (dq) {
                        StridedMap<T> dQ(dq + qoff, d.T, d.D, qs);
                        dQ.middleRows(t0, rows).noalias() += scale * dS * K.topRows(L);
                    }
                    if (dk) {
                        StridedMap<T> dK(dk + (b * d.S * d.Hkv + kvh) * d.D, L, d.D, ks);
                        dK.noalias() += scale * dS.transpose() * Qb;
                    }
                }
            }
        },
        group * d.T * d.S * d.D);
}

}  // namespace bitgrad::kernels
