#pragma once
// exp that the compiler can vectorize. std::exp on float is a call per element (glibc only offers
// its vector variants under -ffast-math), and the losses, softmax, attention and SiLU spend most of
// their non-GEMM time in it. For float this is a branch-free Cody-Waite range reduction and a
// degree-6 polynomial (relative error ~2e-7, i.e. about 1-2 ulp), which GCC turns into AVX-512 or
// AVX2 code in plain loops. double keeps std::exp: gradchecks need its full precision.
//   exp(x) = 2^n * e^r,  n = round(x / ln 2),  r = x - n ln 2 in [-ln2/2, ln2/2]
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace bitgrad::kernels {

// Always inlined: a call per element would stop the loops around it from vectorizing. Written
// without branches or float-to-int conversion: the clamp is min/max (vminps/vmaxps; a NaN stays
// NaN through them and the polynomial, so it is returned as NaN), and 2^n is built from the bits
// of x / ln2 + 1.5 * 2^23, whose low mantissa bits are round(x / ln2). (A ternary clamp here made
// GCC compute the polynomial twice and blend.)
[[gnu::always_inline]] inline float exp_fast(float x_in) {
    // Clamp so 2^n stays a normal float: below -87.3 the result is ~1e-38 instead of 0, above
    // 88.3 ~2e38 instead of inf.
    const float x = std::min(std::max(x_in, -87.3f), 88.3f);
    const float shifted = std::fma(x, 1.44269504088896341f, 12582912.f);  // 1.5 * 2^23: rounds to an integer
    const float n = shifted - 12582912.f;
    const float r =
        std::fma(n, -1.428606765330187045e-06f, std::fma(n, -0.693145751953125f, x));  // hi part first: exact
    // e^r by Horner: 1 + r + r^2/2 + ... + r^6/720
    float p = 1.f / 720.f;
    p = std::fma(p, r, 1.f / 120.f);
    p = std::fma(p, r, 1.f / 24.f);
    p = std::fma(p, r, 1.f / 6.f);
    p = std::fma(p, r, 0.5f);
    p = std::fma(p, r, 1.f);
    p = std::fma(p, r, 1.f);
    int32_t bits, magic;
    const float magic_f = 12582912.f;
    std::memcpy(&bits, &shifted, sizeof bits);
    std::memcpy(&magic, &magic_f, sizeof magic);
    const int32_t scale_bits = (bits - magic + 127) << 23;  // (n + 127) << 23: the float 2^n
    float scale;
    std::memcpy(&scale, &scale_bits, sizeof scale);
    return p * scale;
}

template <class T>
[[gnu::always_inline]] inline T exp(T x) {
    if constexpr (sizeof(T) == sizeof(float))
        return exp_fast(x);
    else
        return std::exp(x);
}

}  // namespace bitgrad::kernels
