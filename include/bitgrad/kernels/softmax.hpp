#pragma once
// Row kernels of softmax and the losses (tape-free; shared by ops/softmax.hpp, ops/loss.hpp and
// ops/lm_head_loss.hpp). Each keeps one log-sum-exp per row and never a probability row.
//
//   logsumexp_row(x, n, k)      = log sum_c exp(k x_c), stable (the row max is subtracted first),
//                                 accumulated in Acc (T by default; evaluation sums float logits in double)
//   nll_row(x, n, label)        = -log softmax(x)[label] = logsumexp_row(x, n) - x[label]
//   loss_row(s, t, label, w):   the per-row loss of the trainer, and optionally its gradient,
//     ce_w * (lse(s) - s[label])  +  ad_w * (lse(s/tau) - sum_c p_c s_c / tau),   p = softmax(t / tau)
//     d/ds_c = ce_w * (softmax(s)_c - [c == label])  +  (ad_w / tau) * (softmax(s/tau)_c - p_c)
//   (ce_w, ad_w already hold the 1/M and 1/N of the means; label < 0 or ce_w == 0: no CE part,
//   t == nullptr or ad_w == 0: no AD part.)
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "bitgrad/kernels/exp.hpp"

namespace bitgrad::kernels {

template <class T, class Acc = T>
Acc logsumexp_row(const T* x, int64_t n, std::type_identity_t<Acc> inv_temp = Acc(1)) {
    Acc m = -std::numeric_limits<Acc>::infinity();
#pragma omp simd reduction(max : m)
    for (int64_t c = 0; c < n; ++c) m = std::max(m, Acc(x[c]) * inv_temp);
    if (!std::isfinite(m)) return m;
    Acc s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t c = 0; c < n; ++c) s += exp(Acc(x[c]) * inv_temp - m);
    return m + std::log(s);
}

// The cross-entropy of one row of logits against its label, in Acc.
template <class T, class Acc = T>
Acc nll_row(const T* x, int64_t n, int32_t label) {
    return logsumexp_row<T, Acc>(x, n) - Acc(x[label]);
}

struct LossRowWeights {
    double ce = 0, ad = 0;  // weights of the two parts, including the 1/M and 1/N of their means
    double inv_tau = 1;     // 1 / temperature of the AD part
};

// Returns the row's loss; when grad != nullptr also writes d loss / d s into grad[0..n) (grad may
// be s itself: each s_c is read before grad_c is written).
template <class T>
T loss_row(const T* s, const T* t, int64_t n, int32_t label, const LossRowWeights& w, T* grad) {
    const bool ce = w.ce != 0 && label >= 0, ad = w.ad != 0 && t != nullptr;
    const T it = T(w.inv_tau);
    T loss = 0, lse_s = 0, lse_st = 0, lse_t = 0;
    if (ce) lse_s = logsumexp_row(s, n);
    if (ad) {
        lse_st = w.inv_tau == 1 && ce ? lse_s : logsumexp_row(s, n, it);
        lse_t = logsumexp_row(t, n, it);
        T cross = 0;  // sum_c p_c s_c
#pragma omp simd reduction(+ : cross)
        for (int64_t c = 0; c < n; ++c) cross += exp(t[c] * it - lse_t) * s[c];
        loss += T(w.ad) * (lse_st - cross * it);
    }
    if (ce) loss += T(w.ce) * (lse_s - s[label]);
    if (!grad) return loss;
    const T gc = T(w.ce), ga = T(w.ad * w.inv_tau);
    if (ce && ad && w.inv_tau == 1) {  // one softmax of s serves both parts
        for (int64_t c = 0; c < n; ++c) grad[c] = (gc + ga) * exp(s[c] - lse_s) - ga * exp(t[c] - lse_t);
    } else if (ce && ad) {
        for (int64_t c = 0; c < n; ++c)
            grad[c] = gc * exp(s[c] - lse_s) + ga * (exp(s[c] * it - lse_st) - exp(t[c] * it - lse_t));
    } else if (ce) {
        for (int64_t c = 0; c < n; ++c) grad[c] = gc * exp(s[c] - lse_s);
    } else if (ad) {
        for (int64_t c = 0; c < n; ++c) grad[c] = ga * (exp(s[c] * it - lse_st) - exp(t[c] * it - lse_t));
    } else {
        std::fill(grad, grad + n, T(0));
    }
    if (ce) grad[label] -= gc;
    return loss;
}

}  // namespace bitgrad::kernels
