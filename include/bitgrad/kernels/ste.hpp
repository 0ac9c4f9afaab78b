#pragma once
// The straight-through estimators of sign (ops/sign.hpp explains them), tape-free: their closed list
// with names (config.json, the CLI, logs), their surrogate functions and derivatives. The Ste type
// lives in namespace bitgrad (as it always has), not in kernels: it is the user-facing choice.
//   Ste::Identity   surrogate x,                                        derivative 1
//   Ste::Clipped    surrogate clamp(x, -1, 1),                          derivative [|x| <= 1]
//   Ste::ApproxSign surrogate 2x - x|x| on |x| <= 1, +-1 outside,       derivative max(0, 2 - 2|x|)
#include <algorithm>
#include <cmath>
#include <iterator>
#include <optional>
#include <string>
#include <string_view>

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

}  // namespace bitgrad
