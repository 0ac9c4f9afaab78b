#pragma once
// sign_matmul_q8: the sign part of an FBI-Linear layer with int8 activations, the fast inference path.
//
// sign_matmul (sign_matmul.hpp) computes y[r, i] = sum_j s[i, j] xa[r, j] in float. Here each row of
// xa is first rounded to int8 with a scale of its own (absmax per token, as BitNet b1.58 does for
// the activations of its ternary layers and llama.cpp's Q8 blocks do for TQ2_0):
//   d[r] = max_j |xa[r, j]| / 127,      q[r, j] = round(xa[r, j] / d[r])   in [-127, 127]
// (kernels::quantize_int8_row, gemv_int8.hpp)
// and the product is then exact integer arithmetic:
//   y[r, i] = d[r] * (2 P[r, i] - T[r]),   P[r, i] = sum_{j: s[i, j] = +1} q[r, j],   T[r] = sum_j q[r, j]
// (sum_j s q = sum_{+1} q - sum_{-1} q = 2 sum_{+1} q - sum q). The one error is the rounding of
// xa: at most d[r] / 2 per product, so |y - y_float| <= d[r] / 2 * in, and ~d[r] / 2 * sqrt(in / 3) for
// independent roundings. Every kernel computes the same integers P and T (|2P - T| <= 127 in < 2^24,
// exact in float), so all kernels give the same bits as the reference, on any thread count.
// docs/inference.md measures what this does to the logits of a trained model.
//
// Kernels (kSignQ8Variants below, in preference order; sign_q8_kernel() runs the first this CPU
// supports; SignKernelScope's choice of a SignKernel applies here too). Files: this one
// holds the API, the reference, the list and the dispatch; sign_matmul_q8/common.hpp the int8 rows
// and the blocking; sign_matmul_q8/<isa>.hpp one ISA each.
//   Reference    a plain loop over the bits, in int64.
//   Avx2         32 sign bits become 32 byte masks (vpshufb spreads each byte over 8 lanes, vpcmpeqb
//                against 1, 2, 4, .., 128); vpand keeps q where s = +1; vpmaddubsw (ones x q -> int16
//                pairs) and vpmaddwd (-> int32) sum them: 4 instructions per 32 products and row,
//                the mask's 4 shared by every activation row. From kQ8PanelRows (2) activation rows
//                on (prefill) the bits of a few output rows are first expanded to a panel of bytes
//                0 / 1, which vpmaddubsw multiplies by q directly and vpaddw accumulates in int16
//                within a column chunk: 2 instructions per 32 products and row (common.hpp bounds
//                the 16-bit sums).
//   Avx512       (AVX512BW + AVX512_VNNI) 64 sign bits are a __mmask64: vmovdqu8 of ones under it
//                gives 64 bytes of 0 / 1, vpdpbusd multiplies them by 64 q and adds groups of four
//                into 16 int32 lanes: 1 instruction per 64 products and row, plus the mask's 1.
//   Neon         (AArch64) 16 bits become 16 byte masks (vqtbl1q, vtst); vdotq_s32 of the 0 / 1 bytes
//                and q with the dot-product extension, else vand + vpaddl + vpadal.
// Blocking as in sign_matmul: a micro-kernel takes NI output rows x NR activation rows (each mask
// serves NR rows, each q load NI outputs); decode (rows = 1) runs NI = 8 over whole rows, prefill
// NI = 4, NR = 4 over column chunks of kQ8KC so that chunk of q stays in L2 (AVX-512, NEON), the
// AVX2 panel NI = 2, NR = 4 (more accumulators spill on AVX2's 16 registers). Threads own output rows.
#include <cstdint>
#include <iterator>
#include <vector>

#include "bitgrad/core/error.hpp"
#include "bitgrad/core/parallel.hpp"
#include "bitgrad/core/thread_override.hpp"
#include "bitgrad/kernels/sign_matmul.hpp"
#include "bitgrad/kernels/sign_matmul_q8/avx2.hpp"
#include "bitgrad/kernels/sign_matmul_q8/avx512.hpp"
#include "bitgrad/kernels/sign_matmul_q8/common.hpp"
#include "bitgrad/kernels/sign_matmul_q8/neon.hpp"
#include "bitgrad/kernels/variant.hpp"

namespace bitgrad::kernels {

// What the activations of a packed layer are rounded to before the sign product.
enum class SignActivations { Float, Int8 };

inline const char* sign_activations_name(SignActivations a) {
    switch (a) {  // no default: -Wswitch names a new value here
        case SignActivations::Float: return "float";
        case SignActivations::Int8: return "int8";
    }
    return "?";  // not reached: a is one of the values above
}

// RAII: this thread's packed layers use the given activations (bitgrad generate --activations,
// decode_bench).
using SignActivationsScope = ThreadOverride<SignActivations>;

// What this thread's packed layers (infer::PackedFbiLinear) round their activations to: Int8 (the
// default: per-token absmax, the fast path, docs/inference.md measures its cost) unless a
// SignActivationsScope says Float (the trained model's numbers, up to the fp16 alpha and beta).
inline constexpr SignActivations kDefaultSignActivations = SignActivations::Int8;
inline SignActivations sign_activations() { return SignActivationsScope::current().value_or(kDefaultSignActivations); }

namespace detail {

// Obviously correct: one int64 sum per output, column by column, outside the blocking.
inline void sign_q8_reference(const PackedSigns& S, const Q8Rows& X, int32_t* P) {
    parallel_for(
        S.out,
        [&](int64_t i) {
            const uint64_t* b = S.row(i);
            for (int64_t r = 0; r < X.rows; ++r) {
                const int8_t* q = X.q.data() + r * X.stride;
                int64_t acc = 0;
                for (int64_t j = 0; j < S.in; ++j) acc += (b[j / 64] >> (j % 64)) & 1 ? q[j] : 0;
                P[r * S.out + i] = int32_t(acc);
            }
        },
        S.in * X.rows);
}

}  // namespace detail

// The variants, in preference order (kernels/variant.hpp): dispatch, names, tests and benches read this.
inline constexpr KernelVariant<SignKernel, SignQ8Fn> kSignQ8Variants[] = {
    {SignKernel::Avx512, "avx512", detail::sign_q8_avx512_supported, detail::sign_q8_avx512},
    {SignKernel::Avx2, "avx2", detail::sign_q8_avx2_supported, detail::sign_q8_avx2},
    {SignKernel::Neon, "neon", detail::sign_q8_neon_supported, detail::sign_q8_neon},
    {SignKernel::Reference, "reference", always_supported, detail::sign_q8_reference},
};

static_assert(std::size(kSignQ8Variants) == sign_kernel_count(SignKernel::Reference));  // one entry per SignKernel

// Whether this CPU runs kernel family k with int8 activations.
inline bool sign_q8_kernel_supported(SignKernel k) { return variant_of(kSignQ8Variants, k).supported(); }

// The dispatch: the kernel a SignKernelScope asks for, else the first this CPU runs.
inline SignKernel sign_q8_kernel() {
    static const SignKernel best = first_supported_variant(kSignQ8Variants);
    return SignKernelScope::current().value_or(best);
}

// P [rows, out] (int32) = the integer part of the product: P[r, i] = sum of q[r, j] over s[i, j] = +1.
inline void sign_matmul_q8_sums(const PackedSigns& S, const Q8Rows& X, int32_t* P, SignKernel k = sign_q8_kernel()) {
    BITGRAD_CHECK(X.in == S.in && X.stride == S.words_per_row * 64,
                  "sign_matmul_q8: activations of width " << X.in << " for signs [" << S.out << ", " << S.in << "]");
    const auto& v = variant_of(kSignQ8Variants, k);
    BITGRAD_CHECK(v.supported(), "sign_matmul_q8: the " << v.name << " kernel is not supported by this CPU");
    if (X.rows == 0 || S.out == 0) return;
    v.run(S, X, P);
}

// y [rows, out] = xa [rows, in] S^T with xa rounded to int8 per row (header comment).
inline void sign_matmul_q8(const PackedSigns& S, const float* xa, int64_t rows, float* y,
                           SignKernel k = sign_q8_kernel()) {
    BITGRAD_CHECK(rows >= 0, "sign_matmul_q8: rows = " << rows << " must be >= 0");
    const Q8Rows X = quantize_rows_q8(xa, rows, S.in);
    std::vector<int32_t> P(std::size_t(rows * S.out));
    sign_matmul_q8_sums(S, X, P.data(), k);
    dequantize_sign_sums(X, P.data(), S.out, y);
}

}  // namespace bitgrad::kernels