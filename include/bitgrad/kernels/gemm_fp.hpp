#pragma once
// gemm_fp: C = alpha * op(A) op(B) + beta * C on row-major float/double blocks with leading
// dimensions, in full precision. Ops call kernels::gemm (kernels/gemm.hpp), which routes here, or to
// the bf16 GEMM when the matmul precision is bf16.
// It maps the blocks into Eigen; when the build defines EIGEN_USE_BLAS (CMake option
// BITGRAD_USE_BLAS), Eigen forwards float/double products to OpenBLAS's OpenMP build, which shares
// OpenMP's thread pool with the rest of bitgrad. gemm_reference is the plain triple loop the tests
// compare against.
#include <Eigen/Core>
#include <cstdint>

namespace bitgrad::kernels {

template <class T>
using StridedMap =
    Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>, 0, Eigen::OuterStride<>>;
template <class T>
using ConstStridedMap =
    Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>, 0, Eigen::OuterStride<>>;

// op(A) is [M, K] (A stored [M, K] with lda, or [K, M] when trans_a); op(B) is [K, N]; C is [M, N].
template <class T>
void gemm_fp(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
             int64_t ldb, T beta, T* C, int64_t ldc) {
    StridedMap<T> c(C, M, N, Eigen::OuterStride<>(ldc));
    if (M == 0 || N == 0) return;
    if (K == 0) {
        if (beta == T(0))
            c.setZero();
        else
            c *= beta;
        return;
    }
    ConstStridedMap<T> a(A, trans_a ? K : M, trans_a ? M : K, Eigen::OuterStride<>(lda));
    ConstStridedMap<T> b(B, trans_b ? N : K, trans_b ? K : N, Eigen::OuterStride<>(ldb));
    auto run = [&](const auto& opa, const auto& opb) {
        if (beta == T(0)) {
            c.noalias() = alpha * opa * opb;
        } else {
            if (beta != T(1)) c *= beta;
            c.noalias() += alpha * opa * opb;
        }
    };
    if (!trans_a && !trans_b)
        run(a, b);
    else if (!trans_a && trans_b)
        run(a, b.transpose());
    else if (trans_a && !trans_b)
        run(a.transpose(), b);
    else
        run(a.transpose(), b.transpose());
}

template <class T>
void gemm_reference(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
                    const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
    for (int64_t i = 0; i < M; ++i)
        for (int64_t j = 0; j < N; ++j) {
            double acc = 0;
            for (int64_t k = 0; k < K; ++k) {
                double av = trans_a ? A[k * lda + i] : A[i * lda + k];
                double bv = trans_b ? B[j * ldb + k] : B[k * ldb + j];
                acc += av * bv;
            }
            T& cij = C[i * ldc + j];
            cij = T(double(alpha) * acc + (beta == T(0) ? 0.0 : double(beta) * double(cij)));
        }
}

}  // namespace bitgrad::kernels
