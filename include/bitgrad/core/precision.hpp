#pragma once
// The precision of matrix products, per thread (like torch.autocast for matmuls):
//   Precision::FP32  float operands, float accumulation (the default)
//   Precision::BF16  operands rounded to bfloat16, float accumulation (mixed precision: weights,
//                    gradients and optimizer state stay float; only GEMM inputs are rounded)
//   PrecisionScope bf16(Precision::BF16);   // matmuls on this thread use bf16 until it ends
// default_precision() picks BF16 where the CPU multiplies bf16 natively (AVX512_BF16), FP32
// elsewhere: without the instruction a bf16 product costs as much as a float one.
#include <optional>
#include <string_view>

#include "bitgrad/core/thread_override.hpp"

namespace bitgrad {

enum class Precision { FP32, BF16 };

inline const char* precision_name(Precision p) {
    switch (p) {  // no default: -Wswitch names a new value here
        case Precision::FP32: return "fp32";
        case Precision::BF16: return "bf16";
    }
    return "?";  // not reached: p is one of the values above
}
inline std::optional<Precision> parse_precision(std::string_view s) {
    if (s == "fp32") return Precision::FP32;
    if (s == "bf16") return Precision::BF16;
    return std::nullopt;
}

// RAII: this thread's matmuls use the given precision until the scope ends.
using PrecisionScope = ThreadOverride<Precision>;

inline Precision matmul_precision() { return PrecisionScope::current().value_or(Precision::FP32); }

// True when this CPU has AVX512_BF16 (vdpbf16ps): bf16 products at twice the float rate.
inline bool cpu_has_bf16() {
#if defined(__x86_64__) && defined(__GNUC__)
    return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512f");
#else
    return false;
#endif
}

inline Precision default_precision() { return cpu_has_bf16() ? Precision::BF16 : Precision::FP32; }

}  // namespace bitgrad
