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
    parallel_for(
        rows,
        [&](int64_t r) {  // rows apart: the same numbers on any thread count
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
        },
        in);
    return X;
}

// One variant: P [rows, out] = sum of q[r, j] over s[i, j] = +1 (sizes checked, rows and out > 0).
// The floats back from the integer sums: y[r, i] (+)= d_r (2 P[r, i] - T_r) (+ add[r]) for out outputs
// a row, P[r, i] = sum of q[r, j] over s[i, j] = +1. The last step of every int8 sign product
// (sign_matmul_q8, sign_matmul_lut, the packed layers' decode), so all give the same bits.
inline void dequantize_sign_sums(const Q8Rows& X, const int32_t* P, int64_t out, float* y, bool accumulate = false,
                                 const float* add = nullptr) {
    parallel_for(
        X.rows,
        [&](int64_t r) {
            const float d = X.scale[std::size_t(r)], extra = add ? add[r] : 0.f;
            const int32_t T = X.sum[std::size_t(r)];
            const int32_t* p = P + r * out;
            float* yr = y + r * out;
            // the branches outside the loops, so each loop vectorizes (prefill dequantizes rows x out)
            if (add && accumulate)
                for (int64_t i = 0; i < out; ++i) yr[i] = yr[i] + d * float(2 * p[i] - T) + extra;
            else if (add)  // the packed layer's order: S xa + beta . x
                for (int64_t i = 0; i < out; ++i) yr[i] = 0.f + d * float(2 * p[i] - T) + extra;
            else if (accumulate)
                for (int64_t i = 0; i < out; ++i) yr[i] += d * float(2 * p[i] - T);
            else
                for (int64_t i = 0; i < out; ++i) yr[i] = d * float(2 * p[i] - T);
        },
        out);
}

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

// The blocked driver of the SIMD variants (see kernels/sign_matmul_q8.hpp): sign_blocked
// (sign_matmul/common.hpp) over the padded width of q, in chunks of whole 64-bit words.
template <class Isa>
void sign_q8_simd(const PackedSigns& S, const Q8Rows& X, int32_t* P) {
    sign_blocked<Isa, 8, 4, 4>(S.out, X.stride, X.rows, kQ8KC,
                               S.in * X.rows / 8,  // integer work: ~8x cheaper per product than floats
                               P, [&](int64_t i0, int64_t r0, int64_t k0, int64_t n, int32_t* sums) {
                                   return Q8Block{S.bits.data() + i0 * S.words_per_row + k0 / 64,
                                                  S.words_per_row,
                                                  X.q.data() + r0 * X.stride + k0,
                                                  X.stride,
                                                  n / 64,
                                                  sums};
                               });
}

// Prefill with many activation rows: the bits of NI output rows over a column chunk are first
// expanded to a panel of bytes 0 / 1 (once per chunk, shared by every activation row), so the inner
// loop is one multiply of 32 bytes by 32 q and one add per 32 products (Isa::block), with no mask
// work. Sums stay in 16-bit lanes within a chunk: a lane adds two products of |q| <= 127 a step,
// kQ8PanelKC / 32 = 64 steps, |sum| <= 64 * 254 < 2^15; each chunk's sums are then widened to int32.
// From 2 activation rows on: there the panel already ran 1.10-1.20x the mask kernel, at 8 rows
// 1.84-2.04x (one thread, 768 x 2048 and 2048 x 768); one row is decode's, with no reuse of a panel.
inline constexpr int64_t kQ8PanelRows = 2;
inline constexpr int64_t kQ8PanelKC = 2048;  // column chunk: 64 steps of 32; NI x 2 KiB of panel

// NI panel rows (row i's bytes at panel + i * kQ8PanelKC) against NR rows of q (q + r * stride)
// over `steps` groups of 32 columns; P[i * NR + r] = sum of q where the byte is 1.
struct Q8PanelBlock {
    const uint8_t* panel;
    const int8_t* q;
    int64_t stride;
    int64_t steps;
    int32_t* P;
};

// Isa::unpack(bits, words, bytes): 64 * words bits -> as many bytes 0 / 1; Isa::block<NI, NR> the
// micro-kernel. Threads own blocks of NI output rows; per block and chunk: expand, then every
// activation row. The sums are added chunk by chunk in a fixed order: the same bits on any thread
// count (integers in any case).
template <class Isa, int NI, int NR>
void sign_q8_panel(const PackedSigns& S, const Q8Rows& X, int32_t* P) {
    const int64_t out = S.out, rows = X.rows, blocks = (out + NI - 1) / NI;
    parallel_chunks(
        blocks,
        [&](int64_t b0, int64_t b1) {
            alignas(64) uint8_t panel[NI * kQ8PanelKC];
            int32_t sums[NI * NR];
            for (int64_t i0 = b0 * NI; i0 < std::min(out, b1 * NI); i0 += NI) {
                const int ni = int(std::min<int64_t>(NI, out - i0));
                for (int64_t k0 = 0; k0 < X.stride; k0 += kQ8PanelKC) {
                    const int64_t n = std::min(kQ8PanelKC, X.stride - k0);  // a multiple of 64
                    for (int i = 0; i < ni; ++i) Isa::unpack(S.row(i0 + i) + k0 / 64, n / 64, panel + i * kQ8PanelKC);
                    for (int64_t r0 = 0; r0 < rows; r0 += NR) {
                        const int nr = int(std::min<int64_t>(NR, rows - r0));
                        block_dispatch<NI, NR, Isa>(
                            ni, nr, Q8PanelBlock{panel, X.q.data() + r0 * X.stride + k0, X.stride, n / 32, sums});
                        for (int i = 0; i < ni; ++i)
                            for (int r = 0; r < nr; ++r) {
                                int32_t& o = P[(r0 + r) * out + i0 + i];
                                o = k0 == 0 ? sums[i * nr + r] : o + sums[i * nr + r];
                            }
                    }
                }
            }
        },
        NI * S.in * rows / 8);
}

}  // namespace detail
}  // namespace bitgrad::kernels
