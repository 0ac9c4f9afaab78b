#pragma once
// Losses over logits [N, V] (N = B*T rows, V = vocabulary). Both fuse softmax with the loss and keep
// only one log-sum-exp per row for backward; neither materialises a probability matrix.
//
// cross_entropy(logits, labels, ignore_index): labels [N] integer class ids.
//   L = (1/M) sum_{n valid} (lse(x_n) - x_n[label_n]),  M = number of rows with label != ignore_index
//   dx_n = g/M * (softmax(x_n) - onehot(label_n)) for valid rows, 0 for ignored rows.
//   If every row is ignored, L = 0 and the gradient is 0.
//
// soft_cross_entropy(student, teacher, temperature): the autoregressive-distillation (AD) loss.
//   p = softmax(teacher / tau) (no gradient), q = softmax(student / tau):
//   L = -(1/N) sum_n sum_c p_nc log q_nc = (1/N) sum_n (lse(s_n/tau) - sum_c p_nc s_nc / tau)
//   dstudent_n = g/(N tau) * (q_n - p_n)
//   Equal to KL(p || q) + H(p), so its minimum over the student is H(p), reached at q = p.
//   Rows are processed one at a time and p, q are recomputed on the fly from the saved lse values,
//   so neither [N, V] probability matrix ever exists; the only [N, V] buffer is the gradient.
#include <cmath>
#include <vector>

#include "bitgrad/autograd/var.hpp"
#include "bitgrad/core/parallel.hpp"
#include "bitgrad/kernels/exp.hpp"
#include "bitgrad/ops/softmax.hpp"

namespace bitgrad {

template <class T>
Var<T> cross_entropy(const Var<T>& logits, const Tensor<int32_t>& labels, int32_t ignore_index = -100) {
    const Shape& s = logits.shape();
    BITGRAD_CHECK(s.ndim() >= 1, "cross_entropy: logits need a class axis");
    const int64_t V = s.last(), N = s.rows();
    BITGRAD_CHECK(labels.numel() == N, "cross_entropy: " << labels.numel() << " labels (shape " << labels.shape()
                                                         << ") for logits " << s << ", expected " << N);
    int64_t valid = 0;
    for (int64_t n = 0; n < N; ++n) {
        if (labels[n] == ignore_index) continue;
        BITGRAD_CHECK(labels[n] >= 0 && labels[n] < V,
                      "cross_entropy: label " << labels[n] << " at row " << n << " is outside [0, " << V << ")");
        ++valid;
    }
    Tensor<T> lse(Shape{N});
    const T* xp = logits.value().data();
    std::vector<T> row_loss(N, T(0));
    parallel_for(
        N,
        [&](int64_t n) {
            if (labels[n] == ignore_index) return;
            lse[n] = kernels::logsumexp_row(xp + n * V, V);
            row_loss[n] = lse[n] - xp[n * V + labels[n]];
        },
        V);
    T total = 0;
    for (T l : row_loss) total += l;  // fixed order: deterministic
    const T inv = valid ? T(1) / T(valid) : T(0);
    Tensor<T> y = Tensor<T>::scalar(total * inv);
    return record_op("cross_entropy", std::move(y), {logits},
                     [logits, labels = labels.clone(), lse, inv, ignore_index, N, V](const Tensor<T>& g) {
                         auto* gx = grad_sink(logits);
                         if (!gx) return;
                         const T scale = g[0] * inv;
                         const T* xp = logits.value().data();
                         parallel_for(
                             N,
                             [&](int64_t n) {
                                 if (labels[n] == ignore_index) return;
                                 T* d = gx->data() + n * V;
                                 const T* xr = xp + n * V;
                                 for (int64_t c = 0; c < V; ++c) d[c] += scale * kernels::exp(xr[c] - lse[n]);
                                 d[labels[n]] -= scale;
                             },
                             V);
                     });
}

template <class T>
Var<T> soft_cross_entropy(const Var<T>& student, const Tensor<T>& teacher, T temperature = T(1)) {
    const Shape& s = student.shape();
    BITGRAD_CHECK(teacher.shape() == s,
                  "soft_cross_entropy: teacher logits " << teacher.shape() << " must have the student's shape " << s);
    BITGRAD_CHECK(temperature > 0, "soft_cross_entropy: temperature " << temperature << " must be > 0");
    const int64_t V = s.last(), N = s.rows();
    const T inv_tau = T(1) / temperature;
    Tensor<T> lse_s(Shape{N}), lse_t(Shape{N});
    const T *sp = student.value().data(), *tp = teacher.data();
    std::vector<T> row_loss(N);
    parallel_for(
        N,
        [&](int64_t n) {
            const T *sr = sp + n * V, *tr = tp + n * V;
            lse_s[n] = kernels::logsumexp_row(sr, V, inv_tau);
            lse_t[n] = kernels::logsumexp_row(tr, V, inv_tau);
            T cross = 0;  // sum_c p_c * s_c / tau
#pragma omp simd reduction(+ : cross)
            for (int64_t c = 0; c < V; ++c) cross += kernels::exp(tr[c] * inv_tau - lse_t[n]) * sr[c];
            row_loss[n] = lse_s[n] - cross * inv_tau;
        },
        3 * V);
    T total = 0;
    for (T l : row_loss) total += l;
    Tensor<T> y = Tensor<T>::scalar(N ? total / T(N) : T(0));
    return record_op("soft_cross_entropy", std::move(y), {student},
                     [student, teacher, lse_s, lse_t, inv_tau, N, V](const Tensor<T>& g) {
                         auto* gs = grad_sink(student);
                         if (!gs) return;
                         const T scale = g[0] * inv_tau / T(N);
                         const T *sp = student.value().data(), *tp = teacher.data();
                         parallel_for(
                             N,
                             [&](int64_t n) {
                                 const T *sr = sp + n * V, *tr = tp + n * V;
                                 T* d = gs->data() + n * V;
                                 for (int64_t c = 0; c < V; ++c)
                                     d[c] += scale * (kernels::exp(sr[c] * inv_tau - lse_s[n]) -
                                                      kernels::exp(tr[c] * inv_tau - lse_t[n]));
                             },
                             2 * V);
                     });
}

}  // namespace bitgrad
