#pragma once
// Embedding and RMSNorm modules (full precision in FBI-LLM).
#include "bitgrad/nn/module.hpp"
#include "bitgrad/ops/embedding.hpp"
#include "bitgrad/ops/norm.hpp"

namespace bitgrad::nn {

template <class T>
class Embedding : public Module<T> {
public:
    Embedding(int64_t vocab, int64_t dim, Rng& rng, double init_std = 0.02)
        : weight(this->register_parameter("weight", Tensor<T>::randn({vocab, dim}, rng, init_std),
                                          ParamKind::Embedding)) {}
    Var<T> forward(const Tensor<int32_t>& ids) const { return embedding(ids, weight); }
    Var<T> weight;
};

template <class T>
class RMSNorm : public Module<T> {
public:
    RMSNorm(int64_t dim, double eps)
        : weight(this->register_parameter("weight", Tensor<T>::ones({dim}), ParamKind::Norm)), eps(T(eps)) {}
    Var<T> forward(const Var<T>& x) const { return rms_norm(x, weight, eps); }
    Var<T> weight;
    T eps;
};

}  // namespace bitgrad::nn
