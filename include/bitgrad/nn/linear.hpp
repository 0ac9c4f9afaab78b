#pragma once
// nn::Linear (full precision) and nn::FBILinear (binarized, FBI-LLM), with the same interface so
// the LLaMA blocks take either as a template parameter.
//
// Linear:    weight W [out, in];  y = x W^T  (no bias, as in LLaMA)
// FBILinear: weight W [out, in] (latent, full precision), wscale alpha [1, in], wbias beta [1, in]
//            W_hat = alpha * sign(W) + beta  (per input column),  y = x W_hat^T
//   "xnor" initialisation from W:  beta[j] = mean_i W[i, j],  alpha[j] = mean_i |W[i, j] - beta[j]|
//   Forward modes, equal up to float rounding (tested):
//     Materialized: one fused op (ops/fbi_linear.hpp), the fast training path
//     Folded:       y = sign(W) (alpha * x) + (beta . x), built from primitive ops: the identity
//                   that lets a packed 1-bit kernel read only sign bits
//   sign(0) = +1 (ops/sign.hpp). The straight-through estimator is selectable (identity default);
//   set_ste(model, ste) sets it in every FBILinear of a model, held_ste(model) reads it back.
#include <cmath>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bitgrad/nn/module.hpp"
#include "bitgrad/ops/elementwise.hpp"
#include "bitgrad/ops/fbi_linear.hpp"
#include "bitgrad/ops/matmul.hpp"

namespace bitgrad::nn {

template <class T>
class Linear : public Module<T> {
public:
    // Weights ~ Normal(0, init_std) (Hugging Face LLaMA's initializer_range).
    Linear(int64_t in, int64_t out, Rng& rng, double init_std = 0.02)
        : weight(this->register_parameter("weight", Tensor<T>::randn({out, in}, rng, init_std), ParamKind::Dense)) {}

    Var<T> forward(const Var<T>& x) const { return linear(x, weight); }
    int64_t in_features() const { return weight.dim(1); }
    int64_t out_features() const { return weight.dim(0); }

    Var<T> weight;
};

enum class FbiForward { Materialized, Folded };

template <class T>
class FBILinear : public Module<T> {
public:
    FBILinear(int64_t in, int64_t out, Rng& rng, double init_std = 0.02, Ste ste = Ste::Identity)
        : weight(this->register_parameter("weight", Tensor<T>::randn({out, in}, rng, init_std), ParamKind::Binary)),
          wscale(this->register_parameter("wscale", Tensor<T>::zeros({1, in}), ParamKind::Scale)),
          wbias(this->register_parameter("wbias", Tensor<T>::zeros({1, in}), ParamKind::Scale)),
          ste(ste) {
        xnor_init();
    }

    // beta = column mean of W, alpha = column mean of |W - beta|.
    void xnor_init() {
        const int64_t out = weight.dim(0), in = weight.dim(1);
        const T* w = weight.value().data();
        for (int64_t j = 0; j < in; ++j) {
            double mean = 0, dev = 0;
            for (int64_t i = 0; i < out; ++i) mean += w[i * in + j];
            mean /= double(out);
            for (int64_t i = 0; i < out; ++i) dev += std::abs(w[i * in + j] - mean);
            wbias.value()[j] = T(mean);
            wscale.value()[j] = T(dev / double(out));
        }
    }

    Var<T> forward(const Var<T>& x) const {
        if (mode == FbiForward::Materialized) return fbi_linear(x, weight, wscale, wbias, ste);
        // Folded: sign(W) (alpha * x) + (beta . x); beta [1, in] acts as a one-row weight matrix.
        return add(linear(mul(x, wscale), sign(weight, ste)), linear(x, wbias));
    }
    // The effective full-precision matrix W_hat = alpha * sign(W) + beta.
    Tensor<T> effective_weight() const {
        Tensor<T> w_hat(weight.shape());
        kernels::fbi_materialize(weight.value().data(), wscale.value().data(), wbias.value().data(), w_hat.data(),
                                 weight.dim(0), weight.dim(1));
        return w_hat;
    }
    int64_t in_features() const { return weight.dim(1); }
    int64_t out_features() const { return weight.dim(0); }

    Var<T> weight, wscale, wbias;
    Ste ste;
    FbiForward mode = FbiForward::Materialized;
};

// Every FBILinear in a module tree, with its full name, in registration order.
template <class T>
std::vector<std::pair<std::string, FBILinear<T>*>> fbi_layers(const Module<T>& m, const std::string& prefix = "") {
    std::vector<std::pair<std::string, FBILinear<T>*>> out;
    for (const auto& [name, child] : m.children()) {
        if (auto* fbi = dynamic_cast<FBILinear<T>*>(child)) out.push_back({prefix + name, fbi});
        for (auto& sub : fbi_layers(*child, prefix + name + ".")) out.push_back(std::move(sub));
    }
    return out;
}

// Sets the straight-through estimator of every binarized layer of a model (LlamaForCausalLM::set_ste
// also records it in its config).
template <class T>
void set_ste(Module<T>& model, Ste ste) {
    for (auto& [name, layer] : fbi_layers(model)) layer->ste = ste;
}

// The STE the binarized layers of a model hold (what its backward uses); nullopt when it has none.
// Layers holding different STEs are refused, naming two that differ: a config.json can record one.
template <class T>
std::optional<Ste> held_ste(const Module<T>& model) {
    const auto layers = fbi_layers(model);
    if (layers.empty()) return std::nullopt;
    for (const auto& [name, layer] : layers)
        BITGRAD_CHECK(layer->ste == layers.front().second->ste,
                      "the binarized layers hold different STEs: "
                          << layers.front().first << " " << ste_name(layers.front().second->ste) << ", " << name << " "
                          << ste_name(layer->ste) << " (set one for all with set_ste)");
    return layers.front().second->ste;
}

}  // namespace bitgrad::nn
