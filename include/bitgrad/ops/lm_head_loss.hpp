#pragma once
// lm_head_loss(h, W, targets): the language-model head and the training loss as one op, computed a
// block of rows at a time so the [N, V] logits, probabilities and their gradient never exist whole
// (at the 130M shape with B*T = 1024 each would be 131 MB; a 256-row block is 33 MB).
//
//   h: [..., C] final hidden states (N rows), W: [V, C] (lm_head, y = h W^T), targets:
//   L = ce_weight * CE + ad_weight * AD                                         (a scalar)
//     CE = (1/M) sum_{n: label_n != ignore} (lse(s_n) - s_n[label_n])          M = rows with a label
//     AD = (1/N) sum_n (lse(s_n / tau) - sum_c p_nc s_nc / tau),  p_n = softmax(t_n / tau)
//   with s = h W^T (student logits) and t the teacher's logits (TeacherLogits, filled block by block).
// The loss is the last op of a step and its output a scalar, so the gradient is computed in the
// forward pass, per block, while the block's logits are at hand (kernels::loss_row gives dL/ds):
//   dh = dS W,   dW = dS^T h                                   (two GEMMs per block, as unfused)
// and backward only scales them by the incoming gradient. Same FLOPs as linear + loss, no
// recomputation; memory: dW [V, C] and dh [N, C] until backward instead of three [N, V] arrays,
// and not even dW when the caller promises the backward seed (eager_weight_grad_scale).
#include <functional>
#include <optional>
#include <vector>

#include "bitgrad/autograd/var.hpp"
#include "bitgrad/core/parallel.hpp"
#include "bitgrad/kernels/gemm.hpp"
#include "bitgrad/kernels/softmax.hpp"

namespace bitgrad {

// The teacher's next-token logits for N rows, produced a block of rows at a time:
// fill(r0, r1, out) writes rows [r0, r1) of the [N, V] logits into out ([r1 - r0, V]).
template <class T>
struct TeacherLogits {
    int64_t rows = 0, vocab = 0;
    std::function<void(int64_t r0, int64_t r1, T* out)> fill;

    // From logits computed in full (any teacher, cached logits).
    static TeacherLogits from_logits(Tensor<T> logits) {
        const int64_t V = logits.shape().last(), N = logits.shape().rows();
        return {N, V, [logits, V](int64_t r0, int64_t r1, T* out) {
                    std::copy(logits.data() + r0 * V, logits.data() + r1 * V, out);
                }};
    }
    // From final hidden states [N, C] and an lm_head [V, C]: one GEMM per block.
    static TeacherLogits from_hidden(Tensor<T> hidden, Tensor<T> weight) {
        const int64_t C = hidden.shape().last(), N = hidden.shape().rows(), V = weight.dim(0);
        BITGRAD_CHECK(weight.ndim() == 2 && weight.dim(1) == C,
                      "TeacherLogits: lm_head " << weight.shape() << " does not match hidden " << hidden.shape());
        return {N, V, [hidden, weight, C, V](int64_t r0, int64_t r1, T* out) {
                    kernels::gemm(false, true, r1 - r0, V, C, T(1), hidden.data() + r0 * C, C, weight.data(), C, T(0),
                                  out, V);
                }};
    }
};

template <class T>
struct LossTargets {
    Tensor<int32_t> labels;  // [N] next tokens (CE); may be undefined when ce_weight == 0
    double ce_weight = 1, ad_weight = 0, temperature = 1;
    int32_t ignore_index = -100;
    const TeacherLogits<T>* teacher = nullptr;  // needed when ad_weight != 0
    int64_t block_rows = 0;                     // 0: about 8M logits per block
    // Set by a caller that will run backward exactly once with this seed (train::distill_step):
    // W's gradient is then added into W.grad during the forward pass, scaled by it, instead of
    // kept in a [V, C] buffer until backward (98 MB at the 130M shape). backward checks the seed.
    std::optional<double> eager_weight_grad_scale;
};

template <class T>
Var<T> lm_head_loss(const Var<T>& h, const Var<T>& W, const LossTargets<T>& tg) {
    const Shape& hs = h.shape();
    BITGRAD_CHECK(W.shape().ndim() == 2 && hs.ndim() >= 1 && hs[-1] == W.dim(1),
                  "lm_head_loss: hidden " << hs << " and lm_head " << W.shape()
                                          << " do not match (expected [..., C] and [V, C])");
    const int64_t N = hs.rows(), C = W.dim(1), V = W.dim(0);
    const bool ce = tg.ce_weight != 0, ad = tg.ad_weight != 0;
    BITGRAD_CHECK(!ce || tg.labels.numel() == N,
                  "lm_head_loss: " << tg.labels.numel() << " labels for " << N << " rows");
    BITGRAD_CHECK(!ad || (tg.teacher && tg.teacher->rows == N && tg.teacher->vocab == V),
                  "lm_head_loss: the AD loss needs teacher logits of " << N << " rows x " << V << " classes");
    BITGRAD_CHECK(tg.temperature > 0, "lm_head_loss: temperature " << tg.temperature << " must be > 0");
    int64_t valid = 0;
    if (ce)
        for (int64_t n = 0; n < N; ++n) {
            const int32_t l = tg.labels[n];
            if (l == tg.ignore_index) continue;
            BITGRAD_CHECK(l >= 0 && l < V,
                          "lm_head_loss: label " << l << " at row " << n << " is outside [0, " << V << ")");
            ++valid;
        }
    kernels::LossRowWeights w;
    w.ce = ce && valid ? tg.ce_weight / double(valid) : 0.0;
    w.ad = ad && N ? tg.ad_weight / double(N) : 0.0;
    w.inv_tau = 1.0 / tg.temperature;
    const bool need_dh = grad_enabled() && h.requires_grad(), need_dW = grad_enabled() && W.requires_grad();
    const bool eager = need_dW && tg.eager_weight_grad_scale.has_value();
    Tensor<T> dh = need_dh ? Tensor<T>({N, C}) : Tensor<T>();
    Tensor<T> dW = need_dW && !eager ? Tensor<T>({V, C}) : Tensor<T>();
    T* dW_out = eager ? grad_sink(W)->data() : (need_dW ? dW.data() : nullptr);
    const int64_t rb = std::max<int64_t>(
        1, std::min(N, tg.block_rows > 0 ? tg.block_rows
                                         : std::max<int64_t>(64, (int64_t(1) << 23) / std::max<int64_t>(V, 1))));
    Tensor<T> S({rb, V}), Tt = ad ? Tensor<T>({rb, V}) : Tensor<T>();
    std::vector<T> row_loss(std::size_t(N), T(0));
    const T *hp = h.value().data(), *wp = W.value().data();
    for (int64_t r0 = 0; r0 < N; r0 += rb) {
        const int64_t r1 = std::min(N, r0 + rb), nb = r1 - r0;
        kernels::gemm(false, true, nb, V, C, T(1), hp + r0 * C, C, wp, C, T(0), S.data(), V);
        if (ad) tg.teacher->fill(r0, r1, Tt.data());
        T* sp = S.data();
        const T* tp = ad ? Tt.data() : nullptr;
        const bool grads = need_dh || need_dW;
        parallel_for(
            nb,
            [&](int64_t i) {
                const int32_t label = ce && tg.labels[r0 + i] != tg.ignore_index ? tg.labels[r0 + i] : -1;
                row_loss[std::size_t(r0 + i)] = kernels::loss_row(sp + i * V, tp ? tp + i * V : nullptr, V, label, w,
                                                                  grads ? sp + i * V : (T*)nullptr);
            },
            3 * V);
        if (need_dh) kernels::gemm(false, false, nb, C, V, T(1), sp, V, wp, C, T(0), dh.data() + r0 * C, C);
        if (need_dW) {
            const T alpha = eager ? T(*tg.eager_weight_grad_scale) : T(1), beta = eager || r0 > 0 ? T(1) : T(0);
            kernels::gemm(true, false, V, C, nb, alpha, sp, V, hp + r0 * C, C, beta, dW_out, C);
        }
    }
    T total = 0;
    for (T l : row_loss) total += l;  // fixed order: deterministic
    const std::optional<double> eager_scale = eager ? tg.eager_weight_grad_scale : std::nullopt;
    return record_op("lm_head_loss", Tensor<T>::scalar(total), {h, W},
                     [sh = h.slot(), sw = W.slot(), dh, dW, eager_scale](const Tensor<T>& g) {
                         const T s = g[0];
                         BITGRAD_CHECK(!eager_scale || s == T(*eager_scale),
                                       "lm_head_loss: backward seed " << s
                                                                      << ", but the weight gradient was added "
                                                                         "during the forward pass for seed "
                                                                      << *eager_scale);
                         if (auto* gh = grad_sink(sh); gh && dh.defined()) gh->flat() += s * dh.flat();
                         if (auto* gw = grad_sink(sw); gw && dW.defined()) {
                             T* d = gw->data();
                             const T* src = dW.data();
                             parallel_chunks(dW.numel(), [&](int64_t b, int64_t e) {
                                 for (int64_t i = b; i < e; ++i) d[i] += s * src[i];
                             });
                         }
                     });
}

}  // namespace bitgrad
