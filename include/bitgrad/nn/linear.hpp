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
//   sign(0) = +1 (ops/sign.hpp). The straight-through estimator is selectable (identity default).
#include <cmath>

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

}  // namespace bitgrad::nn
