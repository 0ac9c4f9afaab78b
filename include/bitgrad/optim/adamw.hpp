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
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "bitgrad/autograd/var.hpp"
#include "bitgrad/core/parallel.hpp"
#include "bitgrad/nn/module.hpp"

namespace bitgrad::optim {

struct AdamWOptions {
    double lr = 3e-4;
    double beta1 = 0.9, beta2 = 0.95;
    double eps = 1e-8;
    double weight_decay = 0.1;
};

template <class T>
struct ParamGroup {
    std::vector<nn::NamedParameter<T>> params;
    double weight_decay;
};

// One group with the optimizer's weight decay for every parameter (the FBI-LLM reference), or,
// with decay_norms_and_scales = false, no decay on norms, alpha/beta and biases.
template <class T>
std::vector<ParamGroup<T>> param_groups(const nn::Module<T>& model, double weight_decay, bool decay_norms_and_scales = true) {
    ParamGroup<T> decay{{}, weight_decay}, no_decay{{}, 0.0};
    for (auto& p : model.named_parameters()) {
        const bool exempt = !decay_norms_and_scales && (p.kind == nn::ParamKind::Norm || p.kind == nn::ParamKind::Scale);
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

    // One update with learning rate lr (from the schedule). Parameters without a gradient are skipped.
    void step(double lr) {
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
                const T step_size = T(lr / bc1), inv_sqrt_bc2 = T(1 / std::sqrt(bc2)), decay = T(1 - lr * g.weight_decay);
                parallel_chunks(p.var.numel(), [&](int64_t b, int64_t e) {
                    for (int64_t i = b; i < e; ++i) {
                        mp[i] = b1 * mp[i] + (T(1) - b1) * gr[i];
                        vp[i] = b2 * vp[i] + (T(1) - b2) * gr[i] * gr[i];
                        w[i] = w[i] * decay - step_size * mp[i] / (std::sqrt(vp[i]) * inv_sqrt_bc2 + eps);
                    }
                }, 8);
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

// Scales all gradients so their global L2 norm is at most max_norm (if max_norm > 0).
// Returns the norm before clipping (NaN/Inf if any gradient is non-finite; then nothing is scaled).
template <class T>
double clip_grad_norm(const std::vector<Var<T>>& params, double max_norm) {
    double total = 0;
    for (auto& p : params) {
        if (!p.grad().defined()) continue;
        double s = 0;
        for (T g : p.grad()) s += double(g) * double(g);
        total += s;
    }
    const double norm = std::sqrt(total);
    if (max_norm > 0 && std::isfinite(norm) && norm > max_norm) {
        const T scale = T(max_norm / (norm + 1e-6));
        for (Var<T> p : params)  // a handle copy: the gradient buffer is shared
            if (p.grad().defined()) p.grad().flat() *= scale;
    }
    return norm;
}

}  // namespace bitgrad::optim
