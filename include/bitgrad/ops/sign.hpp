#pragma once
// sign with straight-through estimators (STE): the op at the heart of binarization.
//
// Forward: sign(x) = +1 if x >= 0, else -1. sign(0) = +1 everywhere in bitgrad (dense, packed,
//   flip-rate): a packed bit can only say + or -, so 0 must pick a side, and >= 0 is what one
//   comparison gives. (torch.sign maps 0 to 0; for a trained float weight exact 0 is rare.)
// Backward: sign has zero derivative almost everywhere, so the gradient is replaced by the
//   derivative of a surrogate function:
//   Ste::Identity   surrogate x,                     dx += g           (FBI-LLM's reference)
//   Ste::Clipped    surrogate clamp(x, -1, 1),       dx += g * [|x| <= 1]
//   Ste::ApproxSign surrogate 2x - x|x| on |x| <= 1, +-1 outside (Bi-Real Net's polynomial),
//                                                    dx += g * max(0, 2 - 2|x|)
// The estimators themselves (the Ste enum, names, surrogates and derivatives) are tape-free, in
// kernels/ste.hpp, so a config or an inference model can name one without the tape.
#include "bitgrad/autograd/var.hpp"
#include "bitgrad/core/parallel.hpp"
#include "bitgrad/kernels/ste.hpp"

namespace bitgrad {

template <class T>
Var<T> sign(const Var<T>& x, Ste ste = Ste::Identity) {
    Tensor<T> y(x.shape());
    const T* xp = x.value().data();
    T* yp = y.data();
    parallel_chunks(y.numel(), [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) yp[i] = sign_value(xp[i]);
    });
    return record_op("sign", std::move(y), {x}, [x, ste](const Tensor<T>& g) {
        auto* gx = grad_sink(x);
        if (!gx) return;
        const T *xp = x.value().data(), *gp = g.data();
        T* d = gx->data();
        parallel_chunks(g.numel(), [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) d[i] += gp[i] * ste_derivative(ste, xp[i]);
        });
    });
}

}  // namespace bitgrad
