#pragma once
// AdamW (decoupled weight decay, Loshchilov & Hutter), parameter groups, global-norm clipping.
//
// For each parameter p with gradient g, at step t (1-based), learning rate lr:
//   m = b1 m + (1 - b1) g,   v = b2 v + (1 - b2) g^2
//   m_hat = m / (1 - b1^t),  v_hat = v / (1 - b2^t)
//   p -= lr * (m_hat / (sqrt(v_hat) + eps) + wd * p)       (wd from the parameter's group)
// This is torch.optim.AdamW's update (decay applied as p *= 1 - lr wd, before the Adam step).
// Moments are float/double tensors of the parameter's shape, created on the first step, and are
// part of the checkpoint (moments(), step()).
#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "bitgrad/autograd/parameter.hpp"
#include "bitgrad/autograd/var.hpp"
#include "bitgrad/core/parallel.hpp"

namespace bitgrad::optim {

struct AdamWOptions {
    double lr = 3e-4;
    double beta1 = 0.9, beta2 = 0.95;
    double eps = 1e-8;
    double weight_decay = 0.1;
};

template <class T>
struct ParamGroup {
    std::vector<NamedParameter<T>> params;
    double weight_decay;
};

// One group with the optimizer's weight decay for every parameter (the FBI-LLM reference), or,
// with decay_norms_and_scales = false, no decay on norms, alpha/beta and biases.
// Takes a model's named_parameters() (any nn::Module).
template <class T>
std::vector<ParamGroup<T>> param_groups(const std::vector<NamedParameter<T>>& params, double weight_decay,
                                        bool decay_norms_and_scales = true) {
    ParamGroup<T> decay{{}, weight_decay}, no_decay{{}, 0.0};
    for (auto& p : params) {
        const bool exempt = !decay_norms_and_scales && (p.kind == ParamKind::Norm || p.kind == ParamKind::Scale);
        (exempt ? no_decay : decay).params.push_back(p);
    }
    std::vector<ParamGroup<T>> groups{decay};
    if (!no_decay.params.empty()) groups.push_back(no_decay);
    return groups;
}

template <class T>
class AdamW {
public:
    AdamW(std::vector<ParamGroup<T>> groups, AdamWOptions options) : groups_(std::move(groups)), opt_(options) {
        BITGRAD_CHECK(options.lr > 0, "AdamW: lr = " << options.lr << ", expected > 0");
        BITGRAD_CHECK(options.beta1 >= 0 && options.beta1 < 1 && options.beta2 >= 0 && options.beta2 < 1,
                      "AdamW: betas (" << options.beta1 << ", " << options.beta2 << ") must be in [0, 1)");
        for (auto& g : groups_)
            for (auto& p : g.params) {
                m_.push_back(Tensor<T>::zeros(p.var.shape()));
                v_.push_back(Tensor<T>::zeros(p.var.shape()));
            }
    }

    // One update with learning rate lr (from the schedule), using grad_scale * gradient (the clip
    // factor of clip_grad_norm, applied here instead of in a separate pass over the gradients).
    // Parameters without a gradient are skipped.
    void step(double lr, double grad_scale = 1.0) {
        ++step_;
        const double bc1 = 1 - std::pow(opt_.beta1, double(step_)), bc2 = 1 - std::pow(opt_.beta2, double(step_));
        std::size_t k = 0;
        for (auto& g : groups_) {
            for (auto& p : g.params) {
                Tensor<T>&m = m_[k], &v = v_[k];
                ++k;
                if (!p.var.grad().defined()) continue;
                T* w = p.var.value().data();
                const T* gr = p.var.grad().data();
                T *mp = m.data(), *vp = v.data();
                const T b1 = T(opt_.beta1), b2 = T(opt_.beta2), eps = T(opt_.eps);
                const T step_size = T(lr / bc1), inv_sqrt_bc2 = T(1 / std::sqrt(bc2)),
                        decay = T(1 - lr * g.weight_decay);
                const T gs = T(grad_scale);
                parallel_chunks(
                    p.var.numel(),
                    [&](int64_t b, int64_t e) {
                        for (int64_t i = b; i < e; ++i) {
                            const T gi = gs * gr[i];
                            mp[i] = b1 * mp[i] + (T(1) - b1) * gi;
                            vp[i] = b2 * vp[i] + (T(1) - b2) * gi * gi;
                            w[i] = w[i] * decay - step_size * mp[i] / (std::sqrt(vp[i]) * inv_sqrt_bc2 + eps);
                        }
                    },
                    8);
            }
        }
    }

    int64_t step_count() const { return step_; }
    void set_step_count(int64_t s) { step_ = s; }
    // Moments in group/parameter order, named "<param>.exp_avg" / ".exp_avg_sq" (for checkpoints).
    std::vector<std::pair<std::string, Tensor<T>>> state() const {
        std::vector<std::pair<std::string, Tensor<T>>> out;
        std::size_t k = 0;
        for (auto& g : groups_)
            for (auto& p : g.params) {
                out.push_back({p.name + ".exp_avg", m_[k]});
                out.push_back({p.name + ".exp_avg_sq", v_[k]});
                ++k;
            }
        return out;
    }
    const AdamWOptions& options() const { return opt_; }

private:
    std::vector<ParamGroup<T>> groups_;
    AdamWOptions opt_;
    std::vector<Tensor<T>> m_, v_;
    int64_t step_ = 0;
};

// The global L2 norm of all gradients (NaN/Inf if any is non-finite), summed in double: per
// thread over contiguous ranges, then in thread order, so a given thread count gives the same bits.
template <class T>
double grad_norm(const std::vector<Var<T>>& params) {
    double total = 0;
    std::vector<double> partial(std::size_t(num_threads()), 0.0);
    for (auto& p : params) {
        if (!p.grad().defined()) continue;
        const T* g = p.grad().data();
        std::fill(partial.begin(), partial.end(), 0.0);
        parallel_chunks(p.grad().numel(), [&](int64_t b, int64_t e) {
            // Squares summed in float over blocks of 1024 (vectorized), the blocks in double.
            double s = 0;
            for (int64_t i0 = b; i0 < e; i0 += 1024) {
                const int64_t i1 = std::min(e, i0 + 1024);
                T block = 0;
#pragma omp simd reduction(+ : block)
                for (int64_t i = i0; i < i1; ++i) block += g[i] * g[i];
                s += double(block);
            }
            partial[std::size_t(thread_index())] = s;
        });
        for (double s : partial) total += s;
    }
    return std::sqrt(total);
}

// The factor that brings a gradient of norm `norm` down to max_norm (1 when it is below, or when
// max_norm <= 0 or the norm is not finite), as torch.nn.utils.clip_grad_norm_ computes it.
inline double clip_factor(double norm, double max_norm) {
    return max_norm > 0 && std::isfinite(norm) && norm > max_norm ? max_norm / (norm + 1e-6) : 1.0;
}

// Scales all gradients so their global L2 norm is at most max_norm (if max_norm > 0).
// Returns the norm before clipping (NaN/Inf if any gradient is non-finite; then nothing is scaled).
// The trainer instead passes clip_factor(...) to AdamW::step, saving a pass over the gradients.
template <class T>
double clip_grad_norm(const std::vector<Var<T>>& params, double max_norm) {
    const double norm = grad_norm(params);
    const double factor = clip_factor(norm, max_norm);
    if (factor != 1.0)
        for (Var<T> p : params)  // a handle copy: the gradient buffer is shared
            if (p.grad().defined()) {
                T* g = p.grad().data();
                const T f = T(factor);
                parallel_chunks(p.grad().numel(), [&](int64_t b, int64_t e) {
                    for (int64_t i = b; i < e; ++i) g[i] *= f;
                });
            }
    return norm;
}

}  // namespace bitgrad::optim
