#pragma once
// Loops of the FBI-Linear layer (ops/fbi_linear.hpp, nn::FBILinear), tape-free.
//
//   sign_matrix:      S = sign(W), +1 where W >= 0 (sign(0) = +1), else -1
//   fbi_materialize:  W_hat[i, j] = alpha[j] * sign(W[i, j]) + beta[j]
//   scale_columns:    out[n, j] = x[n, j] * alpha[j]
//   column_dots:      d[j] += sum_n a[n, j] * b[n, j]       (b may be a per-row vector: b[n])
// Written as plain loops that GCC vectorizes (the bitgrad CMake target adds -fno-trapping-math,
// which the selects need); threads own contiguous ranges, so results do not depend on timing.
#include <cstdint>

#include "bitgrad/core/parallel.hpp"

namespace bitgrad::kernels {

template <class T>
void sign_matrix(const T* W, T* S, int64_t n) {
    parallel_chunks(n, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) S[i] = W[i] >= T(0) ? T(1) : T(-1);
    });
}

template <class T>
void fbi_materialize(const T* W, const T* alpha, const T* beta, T* W_hat, int64_t out, int64_t in) {
    parallel_for(
        out,
        [&](int64_t i) {
            const T* w = W + i * in;
            T* wh = W_hat + i * in;
            for (int64_t j = 0; j < in; ++j) wh[j] = (w[j] >= T(0) ? alpha[j] : -alpha[j]) + beta[j];
        },
        in);
}

template <class T>
void scale_columns(const T* x, const T* alpha, T* out, int64_t rows, int64_t cols) {
    parallel_for(
        rows,
        [&](int64_t n) {
            const T* xr = x + n * cols;
            T* o = out + n * cols;
            for (int64_t j = 0; j < cols; ++j) o[j] = xr[j] * alpha[j];
        },
        cols);
}

// d[j] += sum_n a[n, j] * b[n, j] over rows n (b_per_row: b[n] instead of b[n, j]). Threads own
// column ranges and sum rows in order: the same bits for a given thread count.
template <class T>
void column_dots(const T* a, const T* b, bool b_per_row, T* d, int64_t rows, int64_t cols) {
    parallel_chunks(
        cols,
        [&](int64_t j0, int64_t j1) {
            for (int64_t n = 0; n < rows; ++n) {
                const T* ar = a + n * cols;
                if (b_per_row) {
                    const T bn = b[n];
                    for (int64_t j = j0; j < j1; ++j) d[j] += ar[j] * bn;
                } else {
                    const T* br = b + n * cols;
                    for (int64_t j = j0; j < j1; ++j) d[j] += ar[j] * br[j];
                }
            }
        },
        rows);
}

}  // namespace bitgrad::kernels
