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
#include <cmath>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>

#include "bitgrad/autograd/var.hpp"
#include "bitgrad/core/parallel.hpp"

namespace bitgrad {

enum class Ste { Identity, Clipped, ApproxSign };

// The one list of estimators: names for config.json, the CLI and logs. Adding an STE means a row
// here and a case in ste_surrogate / ste_derivative below.
struct SteName {
    Ste ste;
    const char* name;
};
inline constexpr SteName kSteNames[] = {
    {Ste::Identity, "identity"}, {Ste::Clipped, "clipped"}, {Ste::ApproxSign, "approx_sign"}};

inline const char* ste_name(Ste s) {
    for (const auto& e : kSteNames)
        if (e.ste == s) return e.name;
    return "?";
}
// The estimator called `name`, or nullopt.
inline std::optional<Ste> parse_ste(std::string_view name) {
    for (const auto& e : kSteNames)
        if (name == e.name) return e.ste;
    return std::nullopt;
}
// "identity, clipped or approx_sign" (for error messages and --help).
inline std::string ste_choices() {
    std::string s;
    const std::size_t n = std::size(kSteNames);
    for (std::size_t i = 0; i < n; ++i)
        s += std::string(i == 0 ? "" : (i + 1 == n ? " or " : ", ")) + kSteNames[i].name;
    return s;
}

template <class T>
inline T sign_value(T x) {
    return x >= T(0) ? T(1) : T(-1);
}

// The surrogate's value and derivative, for tests and for users studying the estimators.
template <class T>
T ste_surrogate(Ste s, T x) {
    switch (s) {
        case Ste::Identity: return x;
        case Ste::Clipped: return std::max(T(-1), std::min(T(1), x));
        case Ste::ApproxSign: return std::abs(x) >= T(1) ? sign_value(x) : T(2) * x - x * std::abs(x);
    }
    return x;
}
template <class T>
T ste_derivative(Ste s, T x) {
    switch (s) {
        case Ste::Identity: return T(1);
        case Ste::Clipped: return std::abs(x) <= T(1) ? T(1) : T(0);
        case Ste::ApproxSign: return std::max(T(0), T(2) - T(2) * std::abs(x));
    }
    return T(1);
}

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
