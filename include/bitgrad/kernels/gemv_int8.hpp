#pragma once
// Int8 rows with one float scale each, and gemv_int8 over them.
//
// quantize_int8_row is the one definition of the format (the packed model's 8-bit embedding and
// lm_head, and the int8 activations of sign_matmul_q8):
//   scale = max_j |w[j]| / 127,   q[j] = round(w[j] / scale)  in [-127, 127],   w[j] ~ scale * q[j]
// (round half to even; a row of zeros gets scale 0). Each value moves by at most scale / 2.
//
// gemv_int8: y [out] = scale[i] * sum_j q[i, j] x[j], Q [out, in] int8, x and y float. The decode-time
// lm_head in 8 bits: half the bytes of bf16 (gemv_bf16), for a matrix that is most of what a small
// model reads per token. Same structure as gemv_bf16: rows split across threads, 16 independent
// float lanes per row, the lanes added in a fixed order, then the scale; results do not depend on
// the thread count. Variants (kGemvInt8Variants, in preference order; gemv_int8_kernel() runs the
// first this CPU supports, GemvInt8KernelScope overrides it): Avx512 (four rows at a time,
// gemv_int8/avx512.hpp), Avx2 (the same with two 8-lane halves, gemv_int8/avx2.hpp), Neon (the same
// on AArch64, gemv_int8/neon.hpp) and Generic (a loop GCC vectorizes, gemv_int8/common.hpp).
// gemv_int8_reference is the plain loop in double the tests compare with.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iterator>

#include "bitgrad/core/thread_override.hpp"
#include "bitgrad/kernels/gemv_int8/avx2.hpp"
#include "bitgrad/kernels/gemv_int8/avx512.hpp"
#include "bitgrad/kernels/gemv_int8/common.hpp"
#include "bitgrad/kernels/gemv_int8/neon.hpp"
#include "bitgrad/kernels/variant.hpp"

namespace bitgrad::kernels {

// Rounds w [n] (finite values) to q [n]; returns the scale.
inline float quantize_int8_row(const float* w, int64_t n, int8_t* q) {
    if (n <= 0) return 0.f;
    float absmax = 0.f;
    for (int64_t j = 0; j < n; ++j) absmax = std::max(absmax, std::fabs(w[j]));
    if (!(absmax > 0.f)) {
        std::fill(q, q + n, int8_t(0));
        return 0.f;
    }
    const float inv = 127.f / absmax;
    // nearbyint rounds half to even as lrint does, but in float: GCC vectorizes it (vroundps), which
    // matters at decode, where every packed layer rounds its activation row (sign_matmul_q8, sign_lut).
    // Finite values only (a NaN would reach an undefined conversion): the callers check them.
    for (int64_t j = 0; j < n; ++j)
        q[j] = int8_t(std::clamp(std::nearbyint(w[j] * inv), -127.f, 127.f));  // w * inv may pass 127 by an ulp
    return absmax / 127.f;
}

enum class GemvInt8Kernel { Generic, Avx512, Avx2, Neon };

// The variants, in preference order (kernels/variant.hpp): dispatch, names, tests and benches read this.
inline constexpr KernelVariant<GemvInt8Kernel, GemvInt8Fn> kGemvInt8Variants[] = {
    {GemvInt8Kernel::Avx512, "avx512", detail::gemv_int8_avx512_supported, detail::gemv_int8_avx512},
    {GemvInt8Kernel::Avx2, "avx2", detail::gemv_int8_avx2_supported, detail::gemv_int8_avx2},
    {GemvInt8Kernel::Neon, "neon", detail::gemv_int8_neon_supported, detail::gemv_int8_neon},
    {GemvInt8Kernel::Generic, "generic", always_supported, detail::gemv_int8_generic},
};

// Every GemvInt8Kernel has an entry: a new value is a -Wswitch warning here (no default), and once
// counted, the static_assert asks for its entry in the list.
constexpr std::size_t gemv_int8_kernel_count(GemvInt8Kernel k) {
    switch (k) {
        case GemvInt8Kernel::Generic:
        case GemvInt8Kernel::Avx512:
        case GemvInt8Kernel::Avx2:
        case GemvInt8Kernel::Neon: return 4;
    }
    return 0;
}
static_assert(std::size(kGemvInt8Variants) == gemv_int8_kernel_count(GemvInt8Kernel::Generic));

// RAII: this thread's gemv_int8 calls use the given kernel.
using GemvInt8KernelScope = ThreadOverride<GemvInt8Kernel>;

// The dispatch: the first variant this CPU runs (unless a GemvInt8KernelScope says otherwise).
inline GemvInt8Kernel gemv_int8_kernel() {
    static const GemvInt8Kernel best = first_supported_variant(kGemvInt8Variants);
    return GemvInt8KernelScope::current().value_or(best);
}

inline void gemv_int8(const int8_t* Q, const float* scale, int64_t out, int64_t in, const float* x, float* y,
                      GemvInt8Kernel k = gemv_int8_kernel()) {
    const auto& v = variant_of(kGemvInt8Variants, k);
    BITGRAD_CHECK(v.supported(), "gemv_int8: the " << v.name << " kernel is not supported by this CPU");
    v.run(Q, scale, out, in, x, y);
}

inline void gemv_int8_reference(const int8_t* Q, const float* scale, int64_t out, int64_t in, const float* x,
                                double* y) {
    for (int64_t i = 0; i < out; ++i) {
        double s = 0;
        for (int64_t j = 0; j < in; ++j) s += double(Q[i * in + j]) * double(x[j]);
        y[i] = double(scale[i]) * s;
    }
}

}  // namespace bitgrad::kernels
