#pragma once
// gemm: C = alpha * op(A) op(B) + beta * C on row-major blocks with leading dimensions.
//
// The one matrix-multiply entry point of bitgrad: every op and module goes through it. For float
// it follows the thread's matmul precision (core/precision.hpp): Precision::FP32 runs the full-
// precision GEMM (kernels/gemm_fp.hpp: Eigen, or OpenBLAS behind it), Precision::BF16 the mixed-
// precision one (kernels/gemm_bf16.hpp: operands rounded to bf16, float accumulation). double is
// always full precision (gradchecks). Ops with operands that are not plain float matrices (the
// sign of FBI-Linear's weights, bf16 weights) call gemm_bf16 directly.
#include <cstdint>
#include <type_traits>

#include "bitgrad/core/precision.hpp"
#include "bitgrad/kernels/gemm_bf16.hpp"
#include "bitgrad/kernels/gemm_fp.hpp"

namespace bitgrad::kernels {

// op(A) is [M, K] (A stored [M, K] with lda, or [K, M] when trans_a); op(B) is [K, N]; C is [M, N].
template <class T>
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc) {
    if constexpr (std::is_same_v<T, float>) {
        if (matmul_precision() == Precision::BF16) {
            gemm_bf16(M, N, K, alpha, Bf16Operand::f32(A, lda, trans_a), Bf16Operand::f32(B, ldb, trans_b), beta, C,
                      ldc);
            return;
        }
    }
    gemm_fp(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace bitgrad::kernels
