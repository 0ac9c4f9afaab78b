#pragma once
// What gemm_bf16's variants share (kernels/gemm_bf16.hpp describes the family): the operands
// (Bf16Operand), the packed panels and Goto blocking that run any micro-kernel, and the two portable
// variants: Emulated (the packed path with the micro-kernel in plain C++) and Fp32Fallback (rounded
// float copies, then the float GEMM). Plain C++: no intrinsics here.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "bitgrad/core/bf16.hpp"
#include "bitgrad/core/parallel.hpp"
#include "bitgrad/core/tensor.hpp"
#include "bitgrad/kernels/gemm_fp.hpp"

namespace bitgrad::kernels {

struct Bf16Operand {
    enum class Source { F32, BF16, SignOfF32 };
    Source source = Source::F32;
    const void* data = nullptr;
    int64_t ld = 0;      // leading dimension of the stored matrix (row-major)
    bool trans = false;  // op(X) = X^T

    static Bf16Operand f32(const float* p, int64_t ld, bool trans = false) { return {Source::F32, p, ld, trans}; }
    static Bf16Operand bf16(const bitgrad::bf16* p, int64_t ld, bool trans = false) {
        return {Source::BF16, p, ld, trans};
    }
    static Bf16Operand sign_of(const float* W, int64_t ld, bool trans = false) {
        return {Source::SignOfF32, W, ld, trans};
    }

    // Element (r, c) of op(X), as bf16 bits (for the reference and the generic packers).
    uint16_t bits(int64_t r, int64_t c) const {
        const int64_t off = trans ? c * ld + r : r * ld + c;
        switch (source) {
            case Source::F32: return to_bf16(static_cast<const float*>(data)[off]).bits;
            case Source::BF16: return static_cast<const bitgrad::bf16*>(data)[off].bits;
            case Source::SignOfF32:
                return static_cast<const float*>(data)[off] >= 0.f ? kBf16One.bits : kBf16MinusOne.bits;
        }
        return 0;
    }
};

// One variant: C [M, N] = alpha * op(A) op(B) + beta * C (M, N and K > 0).
using Bf16GemmFn = void (*)(int64_t M, int64_t N, int64_t K, float alpha, const Bf16Operand& A, const Bf16Operand& B,
                            float beta, float* C, int64_t ldc);

namespace detail {

inline constexpr int64_t kBf16MR = 12, kBf16NR = 32, kBf16KC = 256, kBf16MC = 96, kBf16NC = 1024;

// tile[MR][NR] = sum over kp pairs of the packed A panel (MR words a pair) times the B panel.
using Bf16Microkernel = void (*)(int64_t kp, const uint32_t* a, const uint32_t* b, float* tile);

inline void bf16_microkernel_emulated(int64_t kp, const uint32_t* a, const uint32_t* b, float* tile) {
    float acc[kBf16MR][kBf16NR] = {};
    auto lo = [](uint32_t w) { return to_float(bitgrad::bf16{uint16_t(w & 0xffffu)}); };
    auto hi = [](uint32_t w) { return to_float(bitgrad::bf16{uint16_t(w >> 16)}); };
    for (int64_t p = 0; p < kp; ++p) {
        const uint32_t* ap = a + p * kBf16MR;
        const uint32_t* bp = b + p * kBf16NR;
        for (int64_t i = 0; i < kBf16MR; ++i) {
            const float a0 = lo(ap[i]), a1 = hi(ap[i]);
            for (int64_t j = 0; j < kBf16NR; ++j)
                acc[i][j] = std::fma(a0, lo(bp[j]), std::fma(a1, hi(bp[j]), acc[i][j]));
        }
    }
    std::memcpy(tile, acc, sizeof acc);
}

// Packs rows [r0, r0 + rows) x k in [k0, k0 + kc) of op(X) (rows < MR padded with zeros) into
// MR-word pairs: out[p * MR + i] = X[r0 + i][k0 + 2p] | X[r0 + i][k0 + 2p + 1] << 16.
// The B side is the same with X = op(B)^T (columns of op(B) as rows), so one packer serves both.
template <int64_t R>
void pack_pairs(const Bf16Operand& X, bool x_transposed, int64_t r0, int64_t rows, int64_t k0, int64_t kc,
                uint32_t* out) {
    const int64_t kp = (kc + 1) / 2;
    // (r, k) of the packed view; x_transposed: the view is op(X)^T.
    auto word = [&](auto get) {
        for (int64_t p = 0; p < kp; ++p) {
            const int64_t k = k0 + 2 * p;
            const bool has_odd = 2 * p + 1 < kc;
            uint32_t* o = out + p * R;
            for (int64_t i = 0; i < R; ++i) {
                if (i >= rows) {
                    o[i] = 0;
                    continue;
                }
                const uint32_t even = get(r0 + i, k), odd = has_odd ? get(r0 + i, k + 1) : 0u;
                o[i] = even | (odd << 16);
            }
        }
    };
    const int64_t ld = X.ld;
    // Element (r, k) of the view, stored at X[r][k] (row-major view) or X[k][r].
    const bool stored_rk = (!X.trans) != x_transposed;
    switch (X.source) {
        case Bf16Operand::Source::F32: {
            const float* d = static_cast<const float*>(X.data);
            if (stored_rk)
                word([&](int64_t r, int64_t k) -> uint32_t { return to_bf16(d[r * ld + k]).bits; });
            else
                word([&](int64_t r, int64_t k) -> uint32_t { return to_bf16(d[k * ld + r]).bits; });
            break;
        }
        case Bf16Operand::Source::BF16: {
            const bitgrad::bf16* d = static_cast<const bitgrad::bf16*>(X.data);
            if (stored_rk)
                word([&](int64_t r, int64_t k) -> uint32_t { return d[r * ld + k].bits; });
            else
                word([&](int64_t r, int64_t k) -> uint32_t { return d[k * ld + r].bits; });
            break;
        }
        case Bf16Operand::Source::SignOfF32: {
            const float* d = static_cast<const float*>(X.data);
            auto s = [](float w) -> uint32_t { return w >= 0.f ? kBf16One.bits : kBf16MinusOne.bits; };
            if (stored_rk)
                word([&](int64_t r, int64_t k) { return s(d[r * ld + k]); });
            else
                word([&](int64_t r, int64_t k) { return s(d[k * ld + r]); });
            break;
        }
    }
}

// C[i][j] (+)= alpha * tile[i][j] over the valid mr x nr corner; first: C = alpha tile + beta C.
inline void store_tile(const float* tile, int64_t mr, int64_t nr, float alpha, float beta, bool first, float* C,
                       int64_t ldc) {
    for (int64_t i = 0; i < mr; ++i) {
        float* c = C + i * ldc;
        const float* t = tile + i * kBf16NR;
        if (!first)
            for (int64_t j = 0; j < nr; ++j) c[j] += alpha * t[j];
        else if (beta == 0.f)
            for (int64_t j = 0; j < nr; ++j) c[j] = alpha * t[j];
        else
            for (int64_t j = 0; j < nr; ++j) c[j] = alpha * t[j] + beta * c[j];
    }
}

inline void gemm_bf16_packed(Bf16Microkernel kernel, int64_t M, int64_t N, int64_t K, float alpha, const Bf16Operand& A,
                             const Bf16Operand& B, float beta, float* C, int64_t ldc) {
    constexpr int64_t MR = kBf16MR, NR = kBf16NR;
    std::vector<uint32_t> b_pack;
    std::vector<uint32_t> a_shared;
    for (int64_t jc = 0; jc < N; jc += kBf16NC) {
        const int64_t nc = std::min(kBf16NC, N - jc), n_tiles = (nc + NR - 1) / NR;
        for (int64_t pc = 0; pc < K; pc += kBf16KC) {
            const int64_t kc = std::min(kBf16KC, K - pc), kp = (kc + 1) / 2;
            const bool first = pc == 0;
            b_pack.resize(std::size_t(n_tiles * kp * NR));
            parallel_for(
                n_tiles,
                [&](int64_t t) {
                    pack_pairs<NR>(B, /*x_transposed=*/true, jc + t * NR, std::min(NR, nc - t * NR), pc, kc,
                                   b_pack.data() + t * kp * NR);
                },
                kp * NR * 4);
            auto run_tiles = [&](const uint32_t* a_block, int64_t ic, int64_t mc, int64_t t0, int64_t t1) {
                alignas(64) float tile[MR * NR];
                for (int64_t mt = 0; mt * MR < mc; ++mt)
                    for (int64_t t = t0; t < t1; ++t) {
                        kernel(kp, a_block + mt * kp * MR, b_pack.data() + t * kp * NR, tile);
                        const int64_t i0 = ic + mt * MR, j0 = jc + t * NR;
                        store_tile(tile, std::min(MR, M - i0), std::min(NR, N - j0), alpha, beta, first,
                                   C + i0 * ldc + j0, ldc);
                    }
            };
            const int64_t m_blocks = (M + kBf16MC - 1) / kBf16MC;
            if (m_blocks >= 2 * int64_t(num_threads()) || num_threads() == 1) {
                // Enough row blocks for every thread: each packs its own A block.
                parallel_for(
                    m_blocks,
                    [&](int64_t mb) {
                        const int64_t ic = mb * kBf16MC, mc = std::min(kBf16MC, M - ic), m_tiles = (mc + MR - 1) / MR;
                        thread_local std::vector<uint32_t> a_pack;
                        a_pack.resize(std::size_t(m_tiles * kp * MR));
                        for (int64_t mt = 0; mt < m_tiles; ++mt)
                            pack_pairs<MR>(A, false, ic + mt * MR, std::min(MR, mc - mt * MR), pc, kc,
                                           a_pack.data() + mt * kp * MR);
                        run_tiles(a_pack.data(), ic, mc, 0, n_tiles);
                    },
                    2 * kBf16MC * nc * kc);
            } else {
                // Few rows (a small batch): pack each A block once, split its column tiles.
                for (int64_t ic = 0; ic < M; ic += kBf16MC) {
                    const int64_t mc = std::min(kBf16MC, M - ic), m_tiles = (mc + MR - 1) / MR;
                    a_shared.resize(std::size_t(m_tiles * kp * MR));
                    for (int64_t mt = 0; mt < m_tiles; ++mt)
                        pack_pairs<MR>(A, false, ic + mt * MR, std::min(MR, mc - mt * MR), pc, kc,
                                       a_shared.data() + mt * kp * MR);
                    parallel_chunks(
                        n_tiles, [&](int64_t t0, int64_t t1) { run_tiles(a_shared.data(), ic, mc, t0, t1); },
                        2 * mc * NR * kc);
                }
            }
        }
    }
}

// op(X) rounded to bf16, as a float copy in X's stored layout ([rows, cols] with ld = cols).
inline Tensor<float> rounded_copy(const Bf16Operand& X, int64_t rows, int64_t cols) {
    const int64_t sr = X.trans ? cols : rows, sc = X.trans ? rows : cols;  // stored shape
    Tensor<float> out({sr, sc});
    float* o = out.data();
    parallel_for(
        sr,
        [&](int64_t r) {
            for (int64_t c = 0; c < sc; ++c) {
                const int64_t off = r * X.ld + c;
                switch (X.source) {
                    case Bf16Operand::Source::F32:
                        o[r * sc + c] = round_to_bf16(static_cast<const float*>(X.data)[off]);
                        break;
                    case Bf16Operand::Source::BF16:
                        o[r * sc + c] = to_float(static_cast<const bitgrad::bf16*>(X.data)[off]);
                        break;
                    case Bf16Operand::Source::SignOfF32:
                        o[r * sc + c] = static_cast<const float*>(X.data)[off] >= 0.f ? 1.f : -1.f;
                        break;
                }
            }
        },
        sc);
    return out;
}

inline void gemm_bf16_emulated(int64_t M, int64_t N, int64_t K, float alpha, const Bf16Operand& A, const Bf16Operand& B,
                               float beta, float* C, int64_t ldc) {
    gemm_bf16_packed(bf16_microkernel_emulated, M, N, K, alpha, A, B, beta, C, ldc);
}

inline void gemm_bf16_fp32_fallback(int64_t M, int64_t N, int64_t K, float alpha, const Bf16Operand& A,
                                    const Bf16Operand& B, float beta, float* C, int64_t ldc) {
    const Tensor<float> a = rounded_copy(A, M, K), b = rounded_copy(B, K, N);
    gemm_fp<float>(A.trans, B.trans, M, N, K, alpha, a.data(), a.shape().last(), b.data(), b.shape().last(), beta, C,
                   ldc);
}

}  // namespace detail
}  // namespace bitgrad::kernels
