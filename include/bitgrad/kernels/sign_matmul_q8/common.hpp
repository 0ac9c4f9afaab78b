#pragma once
// What sign_matmul_q8's variants share (kernels/sign_matmul_q8.hpp describes the family): the int8
// activation rows (Q8Rows, quantize_rows_q8) and the blocking of the SIMD variants, templated on the
// ISA's micro-kernel. Plain C++: no intrinsics here.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "bitgrad/core/parallel.hpp"
#include "bitgrad/core/tensor.hpp"
#include "bitgrad/kernels/gemv_int8.hpp"
#include "bitgrad/kernels/sign_matmul/common.hpp"

namespace bitgrad::kernels {

// Activation rows rounded to int8: q [rows, 64 * words_per_row] (each row padded with zeros to whole
// 64-bit words of the signs, so the kernels never need a tail), scale d and integer sum T per row.
struct Q8Rows {
    int64_t rows = 0, in = 0, stride = 0;
    Tensor<int8_t> q;
    std::vector<float> scale;
    std::vector<int32_t> sum;
};

// A row holding a non-finite value gets scale NaN and q = 0: its outputs are NaN, as a float product
// would give, rather than a silent finite number.
inline Q8Rows quantize_rows_q8(const float* xa, int64_t rows, int64_t in) {
    Q8Rows X;
    X.rows = rows, X.in = in, X.stride = (in + 63) / 64 * 64;
    X.q = Tensor<int8_t>::zeros({rows, X.stride});  // the padding stays 0
    X.scale.resize(std::size_t(rows));
    X.sum.resize(std::size_t(rows));
    for (int64_t r = 0; r < rows; ++r) {
        const float* x = xa + r * in;
        int8_t* q = X.q.data() + r * X.stride;
        bool finite = true;
        for (int64_t j = 0; j < in; ++j) finite &= std::isfinite(x[j]);
        int32_t total = 0;
        if (finite) {
            X.scale[std::size_t(r)] = quantize_int8_row(x, in, q);
            for (int64_t j = 0; j < in; ++j) total += q[j];
        } else {
            X.scale[std::size_t(r)] = std::numeric_limits<float>::quiet_NaN();
        }
        X.sum[std::size_t(r)] = total;
    }
    return X;
}

// One variant: P [rows, out] = sum of q[r, j] over s[i, j] = +1 (sizes checked, rows and out > 0).
using SignQ8Fn = void (*)(const PackedSigns& S, const Q8Rows& X, int32_t* P);

namespace detail {

inline constexpr int64_t kQ8KC = 2048;  // prefill column chunk (a multiple of 64): 4 rows x 2 KiB of q per block

// NI output rows (row i's bits at bits + i * words_per_row) against NR rows of q (q + r * stride)
// over `words` 64-bit words; P[i * NR + r] = sum of q where the bit is 1.
struct Q8Block {
    const uint64_t* bits;
    int64_t words_per_row;
    const int8_t* q;
    int64_t stride;
    int64_t words;
    int32_t* P;
};

// The micro-kernel for (ni, nr) <= (NI, NR), chosen at run time among the template instances;
// Isa::block<NI, NR> is one instruction set's micro-kernel (sign_matmul_q8/avx2.hpp, avx512.hpp).
template <int NI, int NR, class Isa>
void q8_block_dispatch(int ni, int nr, const Q8Block& B) {
    if constexpr (NI > 1) {
        if (ni < NI) return q8_block_dispatch<NI - 1, NR, Isa>(ni, nr, B);
    }
    if constexpr (NR > 1) {
        if (nr < NR) return q8_block_dispatch<NI, NR - 1, Isa>(ni, nr, B);
    }
    Isa::template block<NI, NR>(B);
}

// The blocked driver shared by the SIMD variants (see kernels/sign_matmul_q8.hpp).
template <class Isa>
void sign_q8_simd(const PackedSigns& S, const Q8Rows& X, int32_t* P) {
    const bool gemv = X.rows == 1;
    constexpr int kNIGemv = 8, kNIGemm = 4, kNRGemm = 4;
    const int NI = gemv ? kNIGemv : kNIGemm, NR = gemv ? 1 : kNRGemm;
    const int64_t kc_words = gemv ? S.words_per_row : kQ8KC / 64;
    const int64_t blocks = (S.out + NI - 1) / NI;
    parallel_chunks(
        blocks,
        [&](int64_t b0, int64_t b1) {
            const int64_t i_begin = b0 * NI, i_end = std::min(S.out, b1 * NI);
            int32_t sums[kNIGemv * kNRGemm];
            for (int64_t w0 = 0; w0 < S.words_per_row; w0 += kc_words) {
                const int64_t words = std::min(kc_words, S.words_per_row - w0);
                for (int64_t i0 = i_begin; i0 < i_end; i0 += NI) {
                    const int ni = int(std::min<int64_t>(NI, i_end - i0));
                    for (int64_t r0 = 0; r0 < X.rows; r0 += NR) {
                        const int nr = int(std::min<int64_t>(NR, X.rows - r0));
                        const Q8Block B{S.bits.data() + i0 * S.words_per_row + w0,
                                        S.words_per_row,
                                        X.q.data() + r0 * X.stride + 64 * w0,
                                        X.stride,
                                        words,
                                        sums};
                        if (gemv)
                            q8_block_dispatch<kNIGemv, 1, Isa>(ni, nr, B);
                        else
                            q8_block_dispatch<kNIGemm, kNRGemm, Isa>(ni, nr, B);
                        for (int i = 0; i < ni; ++i)
                            for (int r = 0; r < nr; ++r) {
                                int32_t& out = P[(r0 + r) * S.out + i0 + i];
                                out = w0 == 0 ? sums[i * nr + r] : out + sums[i * nr + r];
                            }
                    }
                }
            }
        },
        NI * S.in * X.rows / 8);  // integer work: ~8x cheaper per product than sign_matmul's floats
}

}  // namespace detail
}  // namespace bitgrad::kernels
