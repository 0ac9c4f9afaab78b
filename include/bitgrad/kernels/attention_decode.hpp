#pragma once
// attention_decode: one new query row per head against a KV cache, the attention of a decode step.
//
// The math is attention_forward's (kernels/attention.hpp) for T = 1, which sees every cached key:
//   s_j = scale * q . K_j  (j < S),   p = softmax(s),   o = sum_j p_j V_j,   scale = 1 / sqrt(D)
// with query head h reading kv head h / (H / Hkv). What differs is the storage it reads: the
// cache's own layout, head-major [Hkv, capacity, D] (infer/kv_cache.hpp), so each head's keys and
// values are one contiguous stream, in float or in fp16. attention_forward takes [S, Hkv, D] rows
// through Eigen's strided maps: one BLAS GEMV per head and product, each reading a strided set of
// 256-byte rows, which left a 130M decode step's attention at ~15 GB/s with its 12 MB of float
// cache (docs/inference.md).
//
// Variants (kAttentionDecodeVariants, in preference order; attention_decode_kernel() runs the first
// this CPU supports, AttentionDecodeKernelScope overrides it): Avx2 (attention_decode/avx2.hpp:
// F16C widens fp16 keys 8 at a time; four keys' dot products share the q loads and end in one
// horizontal add), Generic (plain loops, any CPU; fp16 through core/fp16.hpp's exact to_float).
// attention_decode_reference (the tests' comparison) widens the cache to float rows [S, Hkv, D] and
// runs attention_forward on them.
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <vector>

#include "bitgrad/core/error.hpp"
#include "bitgrad/core/fp16.hpp"
#include "bitgrad/core/thread_override.hpp"
#include "bitgrad/kernels/attention.hpp"
#include "bitgrad/kernels/attention_decode/avx2.hpp"
#include "bitgrad/kernels/attention_decode/common.hpp"
#include "bitgrad/kernels/variant.hpp"

namespace bitgrad::kernels {

enum class AttentionDecodeKernel { Generic, Avx2 };

// The variants, in preference order (kernels/variant.hpp): dispatch, names, tests and benches read this.
inline constexpr KernelVariant<AttentionDecodeKernel, AttentionDecodeFn> kAttentionDecodeVariants[] = {
    {AttentionDecodeKernel::Avx2, "avx2", detail::attention_decode_avx2_supported, detail::attention_decode_avx2},
    {AttentionDecodeKernel::Generic, "generic", always_supported, detail::attention_decode_generic},
};

// Every AttentionDecodeKernel has an entry: a new value is a -Wswitch warning here (no default), and
// once counted, the static_assert asks for its entry in the list.
constexpr std::size_t attention_decode_kernel_count(AttentionDecodeKernel k) {
    switch (k) {
        case AttentionDecodeKernel::Generic:
        case AttentionDecodeKernel::Avx2: return 2;
    }
    return 0;
}
static_assert(std::size(kAttentionDecodeVariants) == attention_decode_kernel_count(AttentionDecodeKernel::Generic));

// RAII: this thread's attention_decode calls use the given kernel.
using AttentionDecodeKernelScope = ThreadOverride<AttentionDecodeKernel>;

inline AttentionDecodeKernel attention_decode_kernel() {
    static const AttentionDecodeKernel best = first_supported_variant(kAttentionDecodeVariants);
    return AttentionDecodeKernelScope::current().value_or(best);
}

// o [H * D] = attention of q [H * D] over the first a.S positions of the cache (header comment).
inline void attention_decode(const DecodeAttention& a, AttentionDecodeKernel k = attention_decode_kernel()) {
    BITGRAD_CHECK(a.S >= 1 && a.S <= a.capacity && a.H > 0 && a.Hkv > 0 && a.H % a.Hkv == 0 && a.D > 0,
                  "attention_decode: S = " << a.S << " of capacity " << a.capacity << ", H = " << a.H
                                           << ", Hkv = " << a.Hkv << ", D = " << a.D);
    const auto& v = variant_of(kAttentionDecodeVariants, k);
    BITGRAD_CHECK(v.supported(), "attention_decode: the " << v.name << " kernel is not supported by this CPU");
    v.run(a);
}

// The tests' comparison: the cache widened to float rows [S, Hkv, D], then attention_forward.
inline void attention_decode_reference(const DecodeAttention& a) {
    const int64_t W = a.Hkv * a.D;
    std::vector<float> k(std::size_t(a.S * W)), v(std::size_t(a.S * W)), lse(std::size_t(a.H));
    for (int64_t h = 0; h < a.Hkv; ++h)
        for (int64_t j = 0; j < a.S; ++j)
            for (int64_t c = 0; c < a.D; ++c) {
                const int64_t at = (h * a.capacity + j) * a.D + c;
                k[std::size_t(j * W + h * a.D + c)] = detail::kv_value(a, a.k, at);
                v[std::size_t(j * W + h * a.D + c)] = detail::kv_value(a, a.v, at);
            }
    const AttentionDims dims{1, 1, a.S, a.H, a.Hkv, a.D, true};
    attention_forward(dims, a.q, k.data(), v.data(), a.o, lse.data());
}

}  // namespace bitgrad::kernels
