#pragma once
// bfloat16: the upper 16 bits of an IEEE float (8-bit exponent, 7-bit mantissa). Same range as
// float, ~3 significant digits; +-1 (a binarized weight) is exact. bitgrad stores GEMM operands and
// frozen weights in it; arithmetic always accumulates in float.
//   to_bf16: round to nearest even (NaN stays a quiet NaN),  to_float: exact.
#include <cstdint>
#include <cstring>

namespace bitgrad {

struct bf16 {
    uint16_t bits = 0;
};

[[gnu::always_inline]] inline bf16 to_bf16(float f) {
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return bf16{uint16_t((u >> 16) | 0x40u)};  // NaN: keep it quiet
    u += 0x7fffu + ((u >> 16) & 1u);
    return bf16{uint16_t(u >> 16)};
}

[[gnu::always_inline]] inline float to_float(bf16 h) {
    const uint32_t u = uint32_t(h.bits) << 16;
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
}

// f rounded to the nearest bf16, as a float.
[[gnu::always_inline]] inline float round_to_bf16(float f) { return to_float(to_bf16(f)); }

inline constexpr bf16 kBf16One{0x3f80}, kBf16MinusOne{0xbf80};

}  // namespace bitgrad
