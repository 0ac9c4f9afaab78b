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
// Kernels; sign_kernel() is the one place that picks, at run time (SignKernelScope overrides it):
//   Reference  a plain loop per output, accumulated in double (any CPU).
//   Avx2       (AVX2 + FMA) a 256-entry table maps a byte of bits to eight +-1.f lanes (8 KiB, stays
//              in L1); one fma(table[byte], x, acc) per 8 products, instead of 3 vector ops (variable
//              shift, blend, add) to expand the bits in registers. Each row's bits are read a 64-bit
//              word at a time (bytes picked out with shifts) and software-prefetched 1 KiB ahead.
//   Avx512     (AVX512F) 16 bits are a __mmask16: acc += x on the lanes whose bit is 1 (one masked
//              add per 16 products), then y = 2 * acc - sum_j xa[j]: the +1 columns minus the rest.
// Both SIMD kernels run the same blocking: a micro-kernel takes NI output rows x NR activation rows
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
// float GEMM on +-1 panels (sign_matmul_gemm below): its sums follow the GEMM's order, which may
// change with the thread count (same bits for a given count). Against the exact sum, |error| is a few float ulps of sum_j |xa[r, j]| (tests allow 1e-5 of
// it); Avx512's 2 * acc - sum cancels, so its error is the same size relative to sum |xa|, not |y|.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <utility>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

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

enum class SignKernel { Reference, Avx2, Avx512 };

inline const char* sign_kernel_name(SignKernel k) {
    return k == SignKernel::Reference ? "reference" : (k == SignKernel::Avx2 ? "avx2" : "avx512");
}

// Whether this CPU (and this build) can run kernel k.
inline bool sign_kernel_supported(SignKernel k) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (k == SignKernel::Avx2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (k == SignKernel::Avx512) return __builtin_cpu_supports("avx512f");  // masked adds and loads only need F
#endif
    return k == SignKernel::Reference;
}

namespace detail {
inline int& sign_kernel_override() {
    thread_local int k = -1;  // -1: none
    return k;
}
}  // namespace detail

// The dispatch: the widest kernel this CPU runs (unless a SignKernelScope says otherwise).
inline SignKernel sign_kernel() {
    if (detail::sign_kernel_override() >= 0) return SignKernel(detail::sign_kernel_override());
    static const SignKernel best = sign_kernel_supported(SignKernel::Avx512) ? SignKernel::Avx512
                                   : sign_kernel_supported(SignKernel::Avx2) ? SignKernel::Avx2
                                                                             : SignKernel::Reference;
    return best;
}

// RAII: this thread's sign_matmul calls default to `kernel` (tests force each variant).
class SignKernelScope {
public:
    explicit SignKernelScope(SignKernel k) : saved_(detail::sign_kernel_override()) {
        detail::sign_kernel_override() = int(k);
    }
    ~SignKernelScope() { detail::sign_kernel_override() = saved_; }
    SignKernelScope(const SignKernelScope&) = delete;
    SignKernelScope& operator=(const SignKernelScope&) = delete;

private:
    int saved_;
};

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

#if defined(__x86_64__) && defined(__GNUC__)

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

__attribute__((target("avx2,fma"))) inline float hsum_avx2(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

// One step of 8 columns (byte t of each output row) against NR loaded x vectors. (A helper, not a
// lambda: a lambda would not inherit the target attribute.)
template <int NI, int NR>
__attribute__((target("avx2,fma"), always_inline)) inline void sign_step_avx2(__m256 (&acc)[NI][NR],
                                                                              const __m256 (&xv)[NR],
                                                                              const SignBlock& B, int64_t t) {
#pragma GCC unroll 8
    for (int i = 0; i < NI; ++i) {
        const __m256 s = _mm256_load_ps(kSignLut.v + 8 * int64_t(B.bits[i * B.row_bytes + t]));
#pragma GCC unroll 4
        for (int r = 0; r < NR; ++r) acc[i][r] = _mm256_fmadd_ps(s, xv[r], acc[i][r]);
    }
}

template <int NI, int NR>
__attribute__((target("avx2,fma"))) inline void sign_block_avx2(const SignBlock& B) {
    __m256 acc[NI][NR];
#pragma GCC unroll 8
    for (int i = 0; i < NI; ++i)
#pragma GCC unroll 4
        for (int r = 0; r < NR; ++r) acc[i][r] = _mm256_setzero_ps();
    const int64_t full = B.n / 8;
    int64_t t0 = 0;
    // Whole words: one 64-bit load per output row, its bytes picked out in registers (10-15% faster
    // than a byte load per step here: the table and x loads are what limits the loop).
    for (; t0 + 8 <= full; t0 += 8) {
        uint64_t w[NI];
#pragma GCC unroll 8
        for (int i = 0; i < NI; ++i) {
            std::memcpy(&w[i], B.bits + i * B.row_bytes + t0, 8);
            // 16 lines ahead in each row's stream (past a short row: into the next block's rows, which
            // follow in memory). The hardware prefetcher alone left DRAM-resident bits at ~1.5 GB/s.
            const uintptr_t ahead =
                reinterpret_cast<uintptr_t>(B.bits + i * B.row_bytes + t0) + kSignPrefetch;  // may pass the end
            _mm_prefetch(reinterpret_cast<const char*>(ahead), _MM_HINT_T0);
        }
#pragma GCC unroll 8
        for (int k = 0; k < 8; ++k) {
            __m256 xv[NR];
#pragma GCC unroll 4
            for (int r = 0; r < NR; ++r) xv[r] = _mm256_loadu_ps(B.x + r * B.ldx + 8 * (t0 + k));
#pragma GCC unroll 8
            for (int i = 0; i < NI; ++i) {
                const __m256 s = _mm256_load_ps(kSignLut.v + 8 * ((w[i] >> (8 * k)) & 0xff));
#pragma GCC unroll 4
                for (int r = 0; r < NR; ++r) acc[i][r] = _mm256_fmadd_ps(s, xv[r], acc[i][r]);
            }
        }
    }
    for (int64_t t = t0; t < full; ++t) {  // the bytes of a last partial word (same arithmetic)
        __m256 xv[NR];
#pragma GCC unroll 4
        for (int r = 0; r < NR; ++r) xv[r] = _mm256_loadu_ps(B.x + r * B.ldx + 8 * t);
        sign_step_avx2<NI, NR>(acc, xv, B, t);
    }
    if (const int64_t rem = B.n % 8) {
        // The last partial byte: lanes past n load as 0 (the padding bits say -1; 0 * -1 adds nothing).
        const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        const __m256i keep = _mm256_cmpgt_epi32(_mm256_set1_epi32(int(rem)), lane);
        __m256 xv[NR];
#pragma GCC unroll 4
        for (int r = 0; r < NR; ++r) xv[r] = _mm256_maskload_ps(B.x + r * B.ldx + 8 * full, keep);
        sign_step_avx2<NI, NR>(acc, xv, B, full);
    }
#pragma GCC unroll 8
    for (int i = 0; i < NI; ++i)
#pragma GCC unroll 4
        for (int r = 0; r < NR; ++r) B.out[i * NR + r] = hsum_avx2(acc[i][r]);
}

// Sum of the 16 lanes in a fixed order. (Not _mm512_reduce_add_ps, the unmasked shuffle or
// _mm512_castps512_ps128: GCC 12's headers build them on _mm*_undefined_ps and raise a false
// -Wuninitialized, GCC bug 105593.)
__attribute__((target("avx512f"))) inline float hsum_avx512(__m512 v) {
    v = _mm512_add_ps(v, _mm512_mask_shuffle_f32x4(v, 0xffff, v, v, _MM_SHUFFLE(1, 0, 3, 2)));
    v = _mm512_add_ps(v, _mm512_mask_shuffle_f32x4(v, 0xffff, v, v, _MM_SHUFFLE(2, 3, 0, 1)));
    alignas(64) float t[16];  // each 128-bit quarter now holds the same 4 partial sums
    _mm512_store_ps(t, v);
    return (t[0] + t[2]) + (t[1] + t[3]);
}

// One step of 16 columns (bits 16t .. 16t+15 of each output row, a __mmask16) against NR x vectors.
template <int NI, int NR>
__attribute__((target("avx512f"), always_inline)) inline void sign_step_avx512(__m512 (&acc)[NI][NR], __m512 (&tot)[NR],
                                                                               const __m512 (&xv)[NR],
                                                                               const SignBlock& B, int64_t t) {
#pragma GCC unroll 4
    for (int r = 0; r < NR; ++r) tot[r] = _mm512_add_ps(tot[r], xv[r]);
#pragma GCC unroll 8
    for (int i = 0; i < NI; ++i) {
        uint16_t m;
        std::memcpy(&m, B.bits + i * B.row_bytes + 2 * t, 2);  // little-endian: bit k = column 16t + k
        const __mmask16 k = __mmask16(m);
#pragma GCC unroll 4
        for (int r = 0; r < NR; ++r) acc[i][r] = _mm512_mask_add_ps(acc[i][r], k, acc[i][r], xv[r]);
    }
}

template <int NI, int NR>
__attribute__((target("avx512f"))) inline void sign_block_avx512(const SignBlock& B) {
    __m512 acc[NI][NR], tot[NR];
#pragma GCC unroll 4
    for (int r = 0; r < NR; ++r) {
        tot[r] = _mm512_setzero_ps();
#pragma GCC unroll 8
        for (int i = 0; i < NI; ++i) acc[i][r] = _mm512_setzero_ps();
    }
    const int64_t full = B.n / 16;
    for (int64_t t = 0; t < full; ++t) {
        __m512 xv[NR];
#pragma GCC unroll 4
        for (int r = 0; r < NR; ++r) xv[r] = _mm512_loadu_ps(B.x + r * B.ldx + 16 * t);
        sign_step_avx512<NI, NR>(acc, tot, xv, B, t);
    }
    if (const int64_t rem = B.n % 16) {
        // Lanes past n load as 0; the 16-bit read stays inside the row (a row has whole 64-bit words).
        const __mmask16 keep = __mmask16((1u << rem) - 1u);
        __m512 xv[NR];
#pragma GCC unroll 4
        for (int r = 0; r < NR; ++r) xv[r] = _mm512_maskz_loadu_ps(keep, B.x + r * B.ldx + 16 * full);
        sign_step_avx512<NI, NR>(acc, tot, xv, B, full);
    }
#pragma GCC unroll 4
    for (int r = 0; r < NR; ++r) {
        const float total = hsum_avx512(tot[r]);
#pragma GCC unroll 8
        for (int i = 0; i < NI; ++i) B.out[i * NR + r] = 2.f * hsum_avx512(acc[i][r]) - total;
    }
}

// The micro-kernel for (ni, nr) <= (NI, NR), chosen at run time among the template instances.
template <int NI, int NR, bool Wide>
void sign_block_dispatch(int ni, int nr, const SignBlock& B) {
    if constexpr (NI > 1) {
        if (ni < NI) return sign_block_dispatch<NI - 1, NR, Wide>(ni, nr, B);
    }
    if constexpr (NR > 1) {
        if (nr < NR) return sign_block_dispatch<NI, NR - 1, Wide>(ni, nr, B);
    }
    if constexpr (Wide)
        sign_block_avx512<NI, NR>(B);
    else
        sign_block_avx2<NI, NR>(B);
}

// The blocked driver shared by both SIMD kernels (see the header comment).
template <bool Wide>
void sign_matmul_simd(const PackedSigns& S, const float* xa, int64_t rows, float* y) {
    const bool gemv = rows == 1;
    constexpr int kNIGemv = 8, kNIGemm = 4, kNRGemm = 3;
    const int NI = gemv ? kNIGemv : kNIGemm, NR = gemv ? 1 : kNRGemm;
    const int64_t kc = gemv ? S.in : kSignKC, row_bytes = S.words_per_row * 8;
    const int64_t blocks = (S.out + NI - 1) / NI;
    const uint8_t* bits = reinterpret_cast<const uint8_t*>(S.bits.data());
    parallel_chunks(
        blocks,
        [&](int64_t b0, int64_t b1) {
            const int64_t i_begin = b0 * NI, i_end = std::min(S.out, b1 * NI);
            float sums[kNIGemv * kNRGemm];
            for (int64_t k0 = 0; k0 < S.in; k0 += kc) {
                const int64_t n = std::min(kc, S.in - k0);
                for (int64_t i0 = i_begin; i0 < i_end; i0 += NI) {
                    const int ni = int(std::min<int64_t>(NI, i_end - i0));
                    for (int64_t r0 = 0; r0 < rows; r0 += NR) {
                        const int nr = int(std::min<int64_t>(NR, rows - r0));
                        const SignBlock B{
                            bits + i0 * row_bytes + k0 / 8, row_bytes, xa + r0 * S.in + k0, S.in, n, sums};
                        if (gemv)
                            sign_block_dispatch<kNIGemv, 1, Wide>(ni, nr, B);
                        else
                            sign_block_dispatch<kNIGemm, kNRGemm, Wide>(ni, nr, B);
                        for (int i = 0; i < ni; ++i)
                            for (int r = 0; r < nr; ++r) {
                                float& out = y[(r0 + r) * S.out + i0 + i];
                                out = k0 == 0 ? sums[i * nr + r] : out + sums[i * nr + r];
                            }
                    }
                }
            }
        },
        NI * S.in * rows);
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

#endif  // x86-64

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

// y [rows, out] = xa [rows, in] S^T, with xa and y row-major and contiguous.
inline void sign_matmul(const PackedSigns& S, const float* xa, int64_t rows, float* y, SignKernel k = sign_kernel()) {
    BITGRAD_CHECK(rows >= 0, "sign_matmul: rows = " << rows << " must be >= 0");
    BITGRAD_CHECK(S.bits.numel() == S.out * S.words_per_row && S.words_per_row == (S.in + 63) / 64,
                  "sign_matmul: PackedSigns [" << S.out << ", " << S.in << "] holds " << S.bits.numel()
                                               << " words, expected " << S.out * ((S.in + 63) / 64));
    BITGRAD_CHECK(sign_kernel_supported(k),
                  "sign_matmul: the " << sign_kernel_name(k) << " kernel is not supported by this CPU");
    if (rows == 0 || S.out == 0) return;
    if (S.in == 0) {
        std::fill(y, y + rows * S.out, 0.f);
        return;
    }
    switch (k) {
        case SignKernel::Reference: detail::sign_matmul_reference(S, xa, rows, y); return;
#if defined(__x86_64__) && defined(__GNUC__)
        case SignKernel::Avx2:
            if (rows >= detail::kSignGemmRows)
                detail::sign_matmul_gemm(S, xa, rows, y);
            else
                detail::sign_matmul_simd<false>(S, xa, rows, y);
            return;
        case SignKernel::Avx512:
            if (rows >= detail::kSignGemmRows)
                detail::sign_matmul_gemm(S, xa, rows, y);
            else
                detail::sign_matmul_simd<true>(S, xa, rows, y);
            return;
#else
        default: break;
#endif
    }
}

}  // namespace bitgrad::kernels
