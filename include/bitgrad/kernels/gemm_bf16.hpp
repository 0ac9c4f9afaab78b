#pragma once
// gemm_bf16: C = alpha * op(A) op(B) + beta * C with the operands rounded to bfloat16 and the
// products accumulated in float (mixed precision: what kernels::gemm runs under Precision::BF16).
//
// An operand says where its values come from (Bf16Operand): float (rounded as it is packed), bf16
// (frozen weights), or the sign of a float matrix: +1 where W >= 0, else -1, exact in bf16. The
// last is FBI-Linear's S = sign(W), read straight from the latent weights and never stored.
//
// Kernels (kBf16Variants below, in preference order; bf16_gemm_kernel() runs the first this CPU
// supports, Bf16KernelScope overrides it). Files: this one holds the API, the reference, the list
// and the dispatch; gemm_bf16/common.hpp the operands, packing, blocking and the portable variants;
// gemm_bf16/avx512bf16.hpp the native micro-kernel.
//   Avx512Bf16    packed panels and a 12 x 32 micro-kernel on vdpbf16ps (AVX512_BF16, e.g. Zen 4,
//                 Sapphire Rapids): each instruction does two multiply-adds per float lane.
//   Emulated      the same packing, blocking and tiles, with the micro-kernel's arithmetic in plain
//                 C++. Slow; it is how the tests check the Avx512Bf16 path's logic on any CPU.
//   Fp32Fallback  operands rounded to bf16 in float copies, then the float GEMM (OpenBLAS or
//                 Eigen): on a CPU without AVX512_BF16 the fastest route to the same numbers.
// gemm_bf16_reference is a triple loop over the rounded operands, in double.
//
// Packed layout (vdpbf16ps multiplies the two bf16 halves of each 32-bit lane pairwise):
//   A panel of MR rows:    for each k pair p, MR words; word i = bf16(A[i][2p]) | bf16(A[i][2p+1]) << 16
//   B panel of NR columns: for each k pair p, NR words; word j = bf16(B[2p][j]) | bf16(B[2p+1][j]) << 16
// An odd K is padded with a zero, partial tiles with zero rows and columns (their results are
// dropped). The micro-kernel broadcasts row i's word of A against 32 words of B (two registers):
//   C[i][j] += A[i][2p] B[2p][j] + A[i][2p+1] B[2p+1][j].
// Blocking (KC x NC panel of B shared, MC x KC block of A per task) follows Goto's scheme.
#include <cstddef>
#include <cstdint>
#include <iterator>

#include "bitgrad/core/bf16.hpp"
#include "bitgrad/core/error.hpp"
#include "bitgrad/core/thread_override.hpp"
#include "bitgrad/kernels/gemm_bf16/avx512bf16.hpp"
#include "bitgrad/kernels/gemm_bf16/common.hpp"
#include "bitgrad/kernels/variant.hpp"

namespace bitgrad::kernels {

enum class Bf16Kernel { Avx512Bf16, Emulated, Fp32Fallback };

// The variants, in preference order (kernels/variant.hpp): the native kernel where the CPU has
// AVX512_BF16, else the float GEMM on rounded copies; Emulated only when asked for (tests).
inline constexpr KernelVariant<Bf16Kernel, Bf16GemmFn> kBf16Variants[] = {
    {Bf16Kernel::Avx512Bf16, "avx512bf16", detail::gemm_bf16_avx512bf16_supported, detail::gemm_bf16_avx512bf16},
    {Bf16Kernel::Fp32Fallback, "fp32-fallback", always_supported, detail::gemm_bf16_fp32_fallback},
    {Bf16Kernel::Emulated, "emulated", always_supported, detail::gemm_bf16_emulated},
};

// Every Bf16Kernel has an entry: a new value is a -Wswitch warning here (no default), and once
// counted, the static_assert asks for its entry in the list.
constexpr std::size_t bf16_kernel_count(Bf16Kernel k) {
    switch (k) {
        case Bf16Kernel::Avx512Bf16:
        case Bf16Kernel::Emulated:
        case Bf16Kernel::Fp32Fallback: return 3;
    }
    return 0;
}
static_assert(std::size(kBf16Variants) == bf16_kernel_count(Bf16Kernel::Emulated));

inline const char* bf16_kernel_name(Bf16Kernel k) { return variant_of(kBf16Variants, k).name; }

// RAII: this thread's bf16 GEMMs use the given kernel (tests run whole models through Emulated).
using Bf16KernelScope = ThreadOverride<Bf16Kernel>;

// The dispatch: the first variant this CPU runs (unless a Bf16KernelScope says otherwise).
inline Bf16Kernel bf16_gemm_kernel() {
    static const Bf16Kernel best = first_supported_variant(kBf16Variants);
    return Bf16KernelScope::current().value_or(best);
}

// C [M, N] = alpha * op(A) [M, K] op(B) [K, N] + beta * C, operands rounded to bf16, float
// accumulation, with the given kernel (tests pick each; everything else calls gemm_bf16 below).
inline void gemm_bf16_with(Bf16Kernel kernel, int64_t M, int64_t N, int64_t K, float alpha, const Bf16Operand& A,
                           const Bf16Operand& B, float beta, float* C, int64_t ldc) {
    if (M == 0 || N == 0) return;
    if (K == 0) {
        for (int64_t i = 0; i < M; ++i)
            for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.f ? 0.f : beta * C[i * ldc + j];
        return;
    }
    const auto& v = variant_of(kBf16Variants, kernel);
    BITGRAD_CHECK(v.supported(), "gemm_bf16: the " << v.name << " kernel is not supported by this CPU (or build)");
    v.run(M, N, K, alpha, A, B, beta, C, ldc);
}

inline void gemm_bf16(int64_t M, int64_t N, int64_t K, float alpha, const Bf16Operand& A, const Bf16Operand& B,
                      float beta, float* C, int64_t ldc) {
    gemm_bf16_with(bf16_gemm_kernel(), M, N, K, alpha, A, B, beta, C, ldc);
}

// The plain triple loop over the bf16-rounded operands, accumulated in double.
inline void gemm_bf16_reference(int64_t M, int64_t N, int64_t K, float alpha, const Bf16Operand& A,
                                const Bf16Operand& B, float beta, float* C, int64_t ldc) {
    for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) {
            double acc = 0;
            for (int64_t k = 0; k < K; ++k)
                acc += double(to_float(bitgrad::bf16{A.bits(i, k)})) * double(to_float(bitgrad::bf16{B.bits(k, j)}));
            float& c = C[i * ldc + j];
            c = float(double(alpha) * acc + (beta == 0.f ? 0.0 : double(beta) * double(c)));
        }
}

}  // namespace bitgrad::kernels