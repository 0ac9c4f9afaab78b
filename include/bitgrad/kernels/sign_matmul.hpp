#pragma once
// sign_matmul: the sign part of an FBI-Linear layer at inference, on 1-bit packed weights.
//
// The layer computes y = x W_hat^T with W_hat[i, j] = alpha[j] * s[i, j] + beta[j], s = sign(W) in
// {+1, -1} (sign(0) = +1), which folds to
//   y[r, i] = sum_j s[i, j] xa[r, j]  +  sum_j beta[j] x[r, j],     xa = alpha .* x
// sign_matmul computes the first term; the caller prepares xa and adds the second (one dot per row).
//   y [rows, out] = xa [rows, in] S^T,   S [out, in] packed one bit per sign.
//
// Packed layout (PackedSigns; pack_signs / unpack_signs are the single source of truth):
//
//            word 0 of row i                      word 1 of row i            ...  word wpr-1
//   row i:  [ bit 0 = s[i,0] ... bit 63 = s[i,63] ][ bit 0 = s[i,64] ... ]  ...  [ ... s[i,in-1] 0 0 0 ]
//   row i+1 follows at word (i + 1) * wpr                                            `-- padding: 0
//
//   words_per_row (wpr) = ceil(in / 64); bit (j % 64) of word i * wpr + j / 64 is 1 when W[i][j] >= 0
//   (s = +1), 0 when s = -1. Words are little-endian uint64, so byte t of a row holds columns
//   8t .. 8t+7 (bit k = column 8t + k): the kernels read words split into bytes (AVX2) or 16-bit halves (AVX-512)
//   straight from this layout. -0.0 >= 0 is true, so -0.0 packs as +1 (like sign_matrix in fbi.hpp);
//   NaN >= 0 is false: -1. Padding bits past `in` are 0. The bit block is a 64-byte-aligned
//   Tensor<uint64_t> of shape [out, wpr] (1/32 of the float matrix).
//
// Kernels (kSignVariants below, in preference order; sign_kernel() runs the first this CPU supports,
// SignKernelScope overrides it). Files: this one holds the API, the reference, the list and the
// dispatch; sign_matmul/common.hpp the layout and the blocking; sign_matmul/<isa>.hpp one ISA each.
//   Reference  a plain loop per output, accumulated in double (any CPU).
//   Avx2       (AVX2 + FMA) a 256-entry table maps a byte of bits to eight +-1.f lanes (8 KiB, stays
//              in L1); one fma(table[byte], x, acc) per 8 products, instead of 3 vector ops (variable
//              shift, blend, add) to expand the bits in registers. Each row's bits are read a 64-bit
//              word at a time (bytes picked out with shifts) and software-prefetched 1 KiB ahead.
//   Avx512     (AVX512F) 16 bits are a __mmask16: acc += x on the lanes whose bit is 1 (one masked
//              add per 16 products), then y = 2 * acc - sum_j xa[j]: the +1 columns minus the rest.
//   Neon       (AArch64) Avx2's table read as two float32x4 per byte: two fmas per 8 products.
// The SIMD kernels run the same blocking: a micro-kernel takes NI output rows x NR activation rows
// and keeps NI * NR vector accumulators; each x load serves NI output rows, each bit expansion NR
// activation rows (the reuse that makes prefill faster than repeated GEMVs). rows = 1 (decode GEMV):
// NI = 8, NR = 1, whole rows in one pass, the bits read once. rows > 1 (prefill): NI = 4, NR = 3, over
// column chunks of kSignKC so the chunk of xa (rows x kSignKC floats) stays in L2 while every output
// row block passes over it. Threads own contiguous ranges of output rows.
//
// Numerics: float accumulation; each output's sum runs over lanes in a fixed order, then a fixed
// horizontal sum, then chunk by chunk. The order depends on the kernel and on rows == 1 or not,
// never on the thread count or on which block an output row falls in: 1 and 2 threads give the same
// bits. From kSignGemmRows activation rows on (prefill), the SIMD kernels hand the product to the
// float GEMM on +-1 panels (sign_matmul_gemm in sign_matmul/common.hpp): its sums follow the GEMM's order, which may
// change with the thread count (same bits for a given count). Against the exact sum, |error| is a few float ulps of sum_j |xa[r, j]| (tests allow 1e-5 of
// it); Avx512's 2 * acc - sum cancels, so its error is the same size relative to sum |xa|, not |y|.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>

#include "bitgrad/core/error.hpp"
#include "bitgrad/core/parallel.hpp"
#include "bitgrad/core/thread_override.hpp"
#include "bitgrad/kernels/sign_matmul/avx2.hpp"
#include "bitgrad/kernels/sign_matmul/avx512.hpp"
#include "bitgrad/kernels/sign_matmul/common.hpp"
#include "bitgrad/kernels/sign_matmul/neon.hpp"
#include "bitgrad/kernels/variant.hpp"

namespace bitgrad::kernels {

enum class SignKernel { Reference, Avx2, Avx512, Neon };

namespace detail {

// Obviously correct: one double sum per output.
inline void sign_matmul_reference(const PackedSigns& S, const float* xa, int64_t rows, float* y) {
    parallel_for(
        S.out,
        [&](int64_t i) {
            const uint64_t* b = S.row(i);
            for (int64_t r = 0; r < rows; ++r) {
                const float* x = xa + r * S.in;
                double acc = 0;
                for (int64_t j = 0; j < S.in; ++j) acc += (b[j / 64] >> (j % 64)) & 1 ? double(x[j]) : -double(x[j]);
                y[r * S.out + i] = float(acc);
            }
        },
        S.in * rows);
}

}  // namespace detail

// The variants, in preference order (kernels/variant.hpp): dispatch, names, tests and benches read this.
inline constexpr KernelVariant<SignKernel, SignFn> kSignVariants[] = {
    {SignKernel::Avx512, "avx512", detail::sign_avx512_supported, detail::sign_matmul_avx512},
    {SignKernel::Avx2, "avx2", detail::sign_avx2_supported, detail::sign_matmul_avx2},
    {SignKernel::Neon, "neon", detail::sign_neon_supported, detail::sign_matmul_neon},
    {SignKernel::Reference, "reference", always_supported, detail::sign_matmul_reference},
};

// Every SignKernel has an entry: a new value is a -Wswitch warning here (no default), and once
// counted, the static_assert asks for its entry in this list (and in kSignQ8Variants).
constexpr std::size_t sign_kernel_count(SignKernel k) {
    switch (k) {
        case SignKernel::Reference:
        case SignKernel::Avx2:
        case SignKernel::Avx512:
        case SignKernel::Neon: return 4;
    }
    return 0;
}
static_assert(std::size(kSignVariants) == sign_kernel_count(SignKernel::Reference));

inline const char* sign_kernel_name(SignKernel k) { return variant_of(kSignVariants, k).name; }

// Whether this CPU (and this build) can run kernel k.
inline bool sign_kernel_supported(SignKernel k) { return variant_of(kSignVariants, k).supported(); }

// RAII: this thread's sign_matmul and sign_matmul_q8 calls default to the given kernel (tests force
// each variant).
using SignKernelScope = ThreadOverride<SignKernel>;

// The dispatch: the first variant this CPU runs (unless a SignKernelScope says otherwise).
inline SignKernel sign_kernel() {
    static const SignKernel best = first_supported_variant(kSignVariants);
    return SignKernelScope::current().value_or(best);
}

// y [rows, out] = xa [rows, in] S^T, with xa and y row-major and contiguous.
inline void sign_matmul(const PackedSigns& S, const float* xa, int64_t rows, float* y, SignKernel k = sign_kernel()) {
    BITGRAD_CHECK(rows >= 0, "sign_matmul: rows = " << rows << " must be >= 0");
    BITGRAD_CHECK(S.bits.numel() == S.out * S.words_per_row && S.words_per_row == (S.in + 63) / 64,
                  "sign_matmul: PackedSigns [" << S.out << ", " << S.in << "] holds " << S.bits.numel()
                                               << " words, expected " << S.out * ((S.in + 63) / 64));
    const auto& v = variant_of(kSignVariants, k);
    BITGRAD_CHECK(v.supported(), "sign_matmul: the " << v.name << " kernel is not supported by this CPU");
    if (rows == 0 || S.out == 0) return;
    if (S.in == 0) {
        std::fill(y, y + rows * S.out, 0.f);
        return;
    }
    v.run(S, xa, rows, y);
}

}  // namespace bitgrad::kernels
