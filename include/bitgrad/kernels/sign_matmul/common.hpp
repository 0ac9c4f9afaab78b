#pragma once
// What sign_matmul's variants share (kernels/sign_matmul.hpp describes the family): the packed
// layout (PackedSigns, pack_signs, unpack_signs), the blocking of the SIMD variants (a micro-kernel
// of NI output rows x NR activation rows, templated on the ISA) and the prefill path on the float
// GEMM. Plain C++: no intrinsics here.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#include "bitgrad/core/error.hpp"
#include "bitgrad/core/parallel.hpp"
#include "bitgrad/core/tensor.hpp"
#include "bitgrad/kernels/gemm_fp.hpp"

namespace bitgrad::kernels {

struct PackedSigns {
    int64_t out = 0, in = 0, words_per_row = 0;
    Tensor<uint64_t> bits;  // [out, words_per_row], layout in the header comment

    PackedSigns() = default;
    // Adopts words read from elsewhere (a file): checks the count and that every padding bit is 0.
    PackedSigns(int64_t out_, int64_t in_, Tensor<uint64_t> words)
        : out(out_), in(in_), words_per_row((in_ + 63) / 64) {
        BITGRAD_CHECK(out >= 0 && in >= 0, "PackedSigns: negative size out = " << out << ", in = " << in);
        BITGRAD_CHECK(words.numel() == out * words_per_row,
                      "PackedSigns: " << words.numel() << " words for out = " << out << ", in = " << in << " (expected "
                                      << out << " rows x " << words_per_row << " words = " << out * words_per_row
                                      << ")");
        bits = words.reshape(Shape{out, words_per_row});
        if (in % 64 != 0) {
            const uint64_t pad = ~uint64_t(0) << (in % 64);  // bits past `in` in a row's last word
            for (int64_t i = 0; i < out; ++i) {
                const uint64_t last = bits[i * words_per_row + words_per_row - 1];
                BITGRAD_CHECK((last & pad) == 0, "PackedSigns: row "
                                                     << i << " has nonzero padding bits past in = " << in
                                                     << " (last word 0x" << std::hex << last << std::dec << ", bits "
                                                     << in % 64 << "..63 must be 0)");
            }
        }
    }
    PackedSigns(int64_t out_, int64_t in_, const std::vector<uint64_t>& words)
        : PackedSigns(out_, in_, Tensor<uint64_t>::from(Shape{int64_t(words.size())}, words)) {}

    const uint64_t* row(int64_t i) const { return bits.data() + i * words_per_row; }
    int64_t bytes() const { return out * words_per_row * 8; }
};

// Packs sign(W) of a row-major [out, in] float matrix (bit = W >= 0).
inline PackedSigns pack_signs(const float* W, int64_t out, int64_t in) {
    BITGRAD_CHECK(out >= 0 && in >= 0, "pack_signs: negative size out = " << out << ", in = " << in);
    const int64_t wpr = (in + 63) / 64;
    Tensor<uint64_t> words(Shape{out, wpr});
    uint64_t* b = words.data();
    parallel_for(
        out,
        [&](int64_t i) {
            const float* w = W + i * in;
            for (int64_t q = 0; q < wpr; ++q) {
                const int64_t j0 = q * 64, n = std::min<int64_t>(64, in - j0);
                uint64_t word = 0;
                for (int64_t k = 0; k < n; ++k) word |= uint64_t(w[j0 + k] >= 0.f) << k;
                b[i * wpr + q] = word;
            }
        },
        in);
    return PackedSigns(out, in, std::move(words));
}

// S [out, in] = +-1.f from the bits (tests, and a dense path).
inline void unpack_signs(const PackedSigns& P, float* S) {
    parallel_for(
        P.out,
        [&](int64_t i) {
            const uint64_t* b = P.row(i);
            float* s = S + i * P.in;
            for (int64_t j = 0; j < P.in; ++j) s[j] = (b[j / 64] >> (j % 64)) & 1 ? 1.f : -1.f;
        },
        P.in);
}

// One variant: y [rows, out] = xa [rows, in] S^T (sizes checked, rows, out and in > 0).
using SignFn = void (*)(const PackedSigns& S, const float* xa, int64_t rows, float* y);

namespace detail {

inline constexpr int64_t kSignKC = 512;         // prefill column chunk (a multiple of 64)
inline constexpr int64_t kSignPrefetch = 1024;  // bytes ahead (AVX2 kernel; prefetches never fault)

// Row byte pointers and the geometry of one micro-kernel call: NI output rows (bytes of row i at
// bits + i * row_bytes) against NR activation rows (x + r * ldx), over n columns; out[i * NR + r].
struct SignBlock {
    const uint8_t* bits;
    int64_t row_bytes;
    const float* x;
    int64_t ldx;
    int64_t n;
    float* out;
};

struct SignLut {
    alignas(64) float v[256 * 8];
};
// v[8 * b + k] = +1 if bit k of b is set, else -1: one byte of packed signs as eight float lanes.
inline constexpr SignLut kSignLut = [] {
    SignLut t{};
    for (int b = 0; b < 256; ++b)
        for (int k = 0; k < 8; ++k) t.v[8 * b + k] = (b >> k) & 1 ? 1.f : -1.f;
    return t;
}();

// The micro-kernel for (ni, nr) <= (NI, NR), chosen at run time among the template instances;
// Isa::block<NI, NR>(B) is one instruction set's micro-kernel (sign_matmul/<isa>.hpp takes a
// SignBlock, sign_matmul_q8/<isa>.hpp a Q8Block).
template <int NI, int NR, class Isa, class Block>
void block_dispatch(int ni, int nr, const Block& B) {
    if constexpr (NI > 1) {
        if (ni < NI) return block_dispatch<NI - 1, NR, Isa>(ni, nr, B);
    }
    if constexpr (NR > 1) {
        if (nr < NR) return block_dispatch<NI, NR - 1, Isa>(ni, nr, B);
    }
    Isa::template block<NI, NR>(B);
}

// The loop nest of every SIMD variant of sign_matmul and sign_matmul_q8: y [rows, out] (T = float
// or int32 sums). Threads own contiguous blocks of NI output rows. For each column chunk [k0, k0 + n)
// of width kc (rows == 1, decode: the whole row, NI = NIGemv, NR = 1; else NI = NIGemm, NR = NRGemm)
// and each block of NR activation rows, make_block(i0, r0, k0, n, sums) describes one micro-kernel
// call, which writes sums[i * NR + r]; the first chunk stores them in y, later chunks add. The order
// of the sums depends on rows == 1 or not, never on the threads. cost: work per output row (a unit
// about one flop), for the fork decision.
template <class Isa, int NIGemv, int NIGemm, int NRGemm, class T, class MakeBlock>
void sign_blocked(int64_t out, int64_t in, int64_t rows, int64_t kc, int64_t cost, T* y, MakeBlock make_block) {
    const bool gemv = rows == 1;
    const int NI = gemv ? NIGemv : NIGemm, NR = gemv ? 1 : NRGemm;
    if (gemv) kc = in;
    const int64_t blocks = (out + NI - 1) / NI;
    parallel_chunks(
        blocks,
        [&](int64_t b0, int64_t b1) {
            const int64_t i_begin = b0 * NI, i_end = std::min(out, b1 * NI);
            T sums[std::max(NIGemv, NIGemm * NRGemm)];
            for (int64_t k0 = 0; k0 < in; k0 += kc) {
                const int64_t n = std::min(kc, in - k0);
                for (int64_t i0 = i_begin; i0 < i_end; i0 += NI) {
                    const int ni = int(std::min<int64_t>(NI, i_end - i0));
                    for (int64_t r0 = 0; r0 < rows; r0 += NR) {
                        const int nr = int(std::min<int64_t>(NR, rows - r0));
                        const auto B = make_block(i0, r0, k0, n, sums);
                        if (gemv)
                            block_dispatch<NIGemv, 1, Isa>(ni, nr, B);
                        else
                            block_dispatch<NIGemm, NRGemm, Isa>(ni, nr, B);
                        for (int i = 0; i < ni; ++i)
                            for (int r = 0; r < nr; ++r) {
                                T& o = y[(r0 + r) * out + i0 + i];
                                o = k0 == 0 ? sums[i * nr + r] : o + sums[i * nr + r];
                            }
                    }
                }
            }
        },
        NI * cost);
}

// Prefill with many activation rows: the signs of a block of output rows are expanded to a +-1.f
// panel (one 32-byte table copy per byte of bits) and multiplied by the float GEMM. The expansion
// writes out * in floats once per call; the GEMM does 2 * rows * out * in flops at the tuned
// GEMM's rate, which from kSignGemmRows rows on beats the sign micro-kernel (decode_bench's
// prefill measures both). Products by +-1 are exact: only the order of the float sums differs.
inline constexpr int64_t kSignGemmRows = 32;

inline void sign_matmul_gemm(const PackedSigns& S, const float* xa, int64_t rows, float* y) {
    const int64_t ld = S.words_per_row * 64;  // panel rows padded like the bits; the GEMM reads in columns
    const int64_t chunk = std::max<int64_t>(16, (int64_t(1) << 19) / ld);  // a panel of <= 2 MiB stays in L2/L3
    Tensor<float> panel({std::min(chunk, S.out), ld});
    const uint8_t* bits = reinterpret_cast<const uint8_t*>(S.bits.data());
    for (int64_t i0 = 0; i0 < S.out; i0 += chunk) {
        const int64_t n = std::min(chunk, S.out - i0);
        float* P = panel.data();
        parallel_for(
            n,
            [&](int64_t i) {
                const uint8_t* b = bits + (i0 + i) * S.words_per_row * 8;
                float* p = P + i * ld;
                for (int64_t t = 0; t < ld / 8; ++t) std::memcpy(p + 8 * t, &kSignLut.v[8 * b[t]], 8 * sizeof(float));
            },
            ld);
        gemm_fp(false, true, rows, n, S.in, 1.f, xa, S.in, P, ld, 0.f, y + i0, S.out);
    }
}

// What every SIMD variant of sign_matmul runs (see kernels/sign_matmul.hpp): from kSignGemmRows
// rows on the float GEMM on +-1 panels, below that the blocked loop over Isa's micro-kernel.
template <class Isa>
void sign_matmul_simd(const PackedSigns& S, const float* xa, int64_t rows, float* y) {
    if (rows >= kSignGemmRows) return sign_matmul_gemm(S, xa, rows, y);
    const int64_t row_bytes = S.words_per_row * 8;
    const uint8_t* bits = reinterpret_cast<const uint8_t*>(S.bits.data());
    sign_blocked<Isa, 8, 4, 3>(
        S.out, S.in, rows, kSignKC, S.in * rows, y, [&](int64_t i0, int64_t r0, int64_t k0, int64_t n, float* sums) {
            return SignBlock{bits + i0 * row_bytes + k0 / 8, row_bytes, xa + r0 * S.in + k0, S.in, n, sums};
        });
}

}  // namespace detail
}  // namespace bitgrad::kernels
