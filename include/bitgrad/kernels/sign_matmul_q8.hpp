#pragma once
// sign_matmul_q8: the sign part of an FBI-Linear layer with int8 activations, the fast inference path.
//
// sign_matmul (sign_matmul.hpp) computes y[r, i] = sum_j s[i, j] xa[r, j] in float. Here each row of
// xa is first rounded to int8 with a scale of its own (absmax per token, as BitNet b1.58 does for
// the activations of its ternary layers and llama.cpp's Q8 blocks do for TQ2_0):
//   d[r] = max_j |xa[r, j]| / 127,      q[r, j] = round(xa[r, j] / d[r])   in [-127, 127]
// (kernels::quantize_int8_row, gemv_int8.hpp)
// and the product is then exact integer arithmetic:
//   y[r, i] = d[r] * (2 P[r, i] - T[r]),   P[r, i] = sum_{j: s[i, j] = +1} q[r, j],   T[r] = sum_j q[r, j]
// (sum_j s q = sum_{+1} q - sum_{-1} q = 2 sum_{+1} q - sum q). The one error is the rounding of
// xa: at most d[r] / 2 per product, so |y - y_float| <= d[r] / 2 * in, and ~d[r] / 2 * sqrt(in / 3) for
// independent roundings. Every kernel computes the same integers P and T (|2P - T| <= 127 in < 2^24,
// exact in float), so all kernels give the same bits as the reference, on any thread count.
// docs/inference.md measures what this does to the logits of a trained model.
//
// Kernels (sign_q8_kernel() picks the widest this CPU runs; SignKernelScope's choice of family,
// Reference / Avx2 / Avx512, applies here too):
//   Reference    a plain loop over the bits, in int64.
//   Avx2         32 sign bits become 32 byte masks (vpshufb spreads each byte over 8 lanes, vpcmpeqb
//                against 1, 2, 4, .., 128); vpand keeps q where s = +1; vpmaddubsw (ones x q -> int16
//                pairs) and vpmaddwd (-> int32) sum them: 4 instructions per 32 products and row,
//                the mask's 4 shared by every activation row.
//   Avx512       (AVX512BW + AVX512_VNNI) 64 sign bits are a __mmask64: vmovdqu8 of ones under it
//                gives 64 bytes of 0 / 1, vpdpbusd multiplies them by 64 q and adds groups of four
//                into 16 int32 lanes: 1 instruction per 64 products and row, plus the mask's 1.
// Blocking as in sign_matmul: a micro-kernel takes NI output rows x NR activation rows (each mask
// serves NR rows, each q load NI outputs); decode (rows = 1) runs NI = 8 over whole rows, prefill
// NI = 4, NR = 4 over column chunks of kQ8KC so that chunk of q stays in L2. Threads own output rows.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#endif

#include "bitgrad/core/error.hpp"
#include "bitgrad/core/parallel.hpp"
#include "bitgrad/core/tensor.hpp"
#include "bitgrad/kernels/gemv_int8.hpp"
#include "bitgrad/kernels/sign_matmul.hpp"

namespace bitgrad::kernels {

// What the activations of a packed layer are rounded to before the sign product.
enum class SignActivations { Float, Int8 };

inline const char* sign_activations_name(SignActivations a) { return a == SignActivations::Float ? "float" : "int8"; }

namespace detail {
inline SignActivations& sign_activations_setting() {
    thread_local SignActivations a = SignActivations::Float;
    return a;
}
}  // namespace detail

// What this thread's packed layers (infer::PackedFbiLinear) round their activations to: Float
// (the default: the trained model's numbers, up to the fp16 alpha and beta) unless a
// SignActivationsScope says Int8.
inline SignActivations sign_activations() { return detail::sign_activations_setting(); }

// RAII: this thread's packed layers use `a` (bitgrad generate --activations, decode_bench).
class SignActivationsScope {
public:
    explicit SignActivationsScope(SignActivations a) : saved_(detail::sign_activations_setting()) {
        detail::sign_activations_setting() = a;
    }
    ~SignActivationsScope() { detail::sign_activations_setting() = saved_; }
    SignActivationsScope(const SignActivationsScope&) = delete;
    SignActivationsScope& operator=(const SignActivationsScope&) = delete;

private:
    SignActivations saved_;
};

// Whether this CPU runs kernel family k with int8 activations (Avx512 needs BW and VNNI on top of F).
inline bool sign_q8_kernel_supported(SignKernel k) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (k == SignKernel::Avx2) return __builtin_cpu_supports("avx2");
    if (k == SignKernel::Avx512)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vnni");
#endif
    return k == SignKernel::Reference;
}

// The dispatch: the kernel a SignKernelScope asks for, else the widest this CPU runs.
inline SignKernel sign_q8_kernel() {
    if (detail::sign_kernel_override() >= 0) return SignKernel(detail::sign_kernel_override());
    static const SignKernel best = sign_q8_kernel_supported(SignKernel::Avx512) ? SignKernel::Avx512
                                   : sign_q8_kernel_supported(SignKernel::Avx2) ? SignKernel::Avx2
                                                                                : SignKernel::Reference;
    return best;
}

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

// Obviously correct: one int64 sum per output, column by column, outside the blocking.
inline void sign_q8_reference(const PackedSigns& S, const Q8Rows& X, int32_t* P) {
    parallel_for(
        S.out,
        [&](int64_t i) {
            const uint64_t* b = S.row(i);
            for (int64_t r = 0; r < X.rows; ++r) {
                const int8_t* q = X.q.data() + r * X.stride;
                int64_t acc = 0;
                for (int64_t j = 0; j < S.in; ++j) acc += (b[j / 64] >> (j % 64)) & 1 ? q[j] : 0;
                P[r * S.out + i] = int32_t(acc);
            }
        },
        S.in * X.rows);
}

#if defined(__x86_64__) && defined(__GNUC__)

__attribute__((target("avx2"))) inline int32_t hsum_epi32_avx2(__m256i v) {
    alignas(32) int32_t t[8];
    _mm256_store_si256(reinterpret_cast<__m256i*>(t), v);
    return ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
}

template <int NI, int NR>
__attribute__((target("avx2"))) inline void q8_block_avx2(const Q8Block& B) {
    __m256i acc[NI][NR];
#pragma GCC unroll 8
    for (int i = 0; i < NI; ++i)
#pragma GCC unroll 4
        for (int r = 0; r < NR; ++r) acc[i][r] = _mm256_setzero_si256();
    // Byte k of the 32 lanes: which byte of the 32 bits it tests (vpshufb works within 128-bit
    // halves; the 32 bits are broadcast to both), and which bit of that byte.
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3,
                                            3, 3, 3, 3, 3, 3, 3);
    const __m256i select = _mm256_set1_epi64x(int64_t(0x8040201008040201ULL));
    const __m256i ones8 = _mm256_set1_epi8(1), ones16 = _mm256_set1_epi16(1);
    for (int64_t h = 0; h < 2 * B.words; ++h) {  // 32 columns a step
        __m256i qv[NR];
#pragma GCC unroll 4
        for (int r = 0; r < NR; ++r)
            qv[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(B.q + r * B.stride + 32 * h));
#pragma GCC unroll 8
        for (int i = 0; i < NI; ++i) {
            uint32_t half;
            std::memcpy(&half, reinterpret_cast<const uint8_t*>(B.bits + i * B.words_per_row) + 4 * h,
                        4);  // little-endian
            const __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(int32_t(half)), spread);
            const __m256i mask = _mm256_cmpeq_epi8(_mm256_and_si256(bytes, select), select);
#pragma GCC unroll 4
            for (int r = 0; r < NR; ++r) {
                const __m256i pairs = _mm256_maddubs_epi16(ones8, _mm256_and_si256(mask, qv[r]));  // |pair| <= 254
                acc[i][r] = _mm256_add_epi32(acc[i][r], _mm256_madd_epi16(pairs, ones16));
            }
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < NI; ++i)
#pragma GCC unroll 4
        for (int r = 0; r < NR; ++r) B.P[i * NR + r] = hsum_epi32_avx2(acc[i][r]);
}

__attribute__((target("avx512f"))) inline int32_t hsum_epi32_avx512(__m512i v) {
    alignas(64) int32_t t[16];
    _mm512_store_si512(t, v);
    int32_t s = 0;
    for (int k = 0; k < 16; ++k) s += t[k];
    return s;
}

template <int NI, int NR>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) inline void q8_block_avx512(const Q8Block& B) {
    __m512i acc[NI][NR];
#pragma GCC unroll 8
    for (int i = 0; i < NI; ++i)
#pragma GCC unroll 4
        for (int r = 0; r < NR; ++r) acc[i][r] = _mm512_setzero_si512();
    const __m512i ones = _mm512_set1_epi8(1);
    for (int64_t w = 0; w < B.words; ++w) {  // 64 columns a step
        __m512i qv[NR];
#pragma GCC unroll 4
        for (int r = 0; r < NR; ++r) qv[r] = _mm512_loadu_si512(B.q + r * B.stride + 64 * w);
#pragma GCC unroll 8
        for (int i = 0; i < NI; ++i) {
            const uint64_t* row = B.bits + i * B.words_per_row + w;
            // A line ahead in each row's stream (past a short row: into the next rows, which follow).
            if ((w & 7) == 0)
                _mm_prefetch(reinterpret_cast<const char*>(row) + kSignPrefetch, _MM_HINT_T0);  // never faults
            const __m512i s01 = _mm512_maskz_mov_epi8(__mmask64(*row), ones);                   // byte k = bit k
#pragma GCC unroll 4
            for (int r = 0; r < NR; ++r) acc[i][r] = _mm512_dpbusd_epi32(acc[i][r], s01, qv[r]);
        }
    }
#pragma GCC unroll 8
    for (int i = 0; i < NI; ++i)
#pragma GCC unroll 4
        for (int r = 0; r < NR; ++r) B.P[i * NR + r] = hsum_epi32_avx512(acc[i][r]);
}

// The micro-kernel for (ni, nr) <= (NI, NR), chosen at run time among the template instances.
template <int NI, int NR, bool Wide>
void q8_block_dispatch(int ni, int nr, const Q8Block& B) {
    if constexpr (NI > 1) {
        if (ni < NI) return q8_block_dispatch<NI - 1, NR, Wide>(ni, nr, B);
    }
    if constexpr (NR > 1) {
        if (nr < NR) return q8_block_dispatch<NI, NR - 1, Wide>(ni, nr, B);
    }
    if constexpr (Wide)
        q8_block_avx512<NI, NR>(B);
    else
        q8_block_avx2<NI, NR>(B);
}

// The blocked driver shared by both SIMD kernels (see the header comment).
template <bool Wide>
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
                            q8_block_dispatch<kNIGemv, 1, Wide>(ni, nr, B);
                        else
                            q8_block_dispatch<kNIGemm, kNRGemm, Wide>(ni, nr, B);
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

#endif  // x86-64

}  // namespace detail

// P [rows, out] (int32) = the integer part of the product: P[r, i] = sum of q[r, j] over s[i, j] = +1.
inline void sign_matmul_q8_sums(const PackedSigns& S, const Q8Rows& X, int32_t* P, SignKernel k = sign_q8_kernel()) {
    BITGRAD_CHECK(X.in == S.in && X.stride == S.words_per_row * 64,
                  "sign_matmul_q8: activations of width " << X.in << " for signs [" << S.out << ", " << S.in << "]");
    BITGRAD_CHECK(sign_q8_kernel_supported(k),
                  "sign_matmul_q8: the " << sign_kernel_name(k) << " kernel is not supported by this CPU");
    if (X.rows == 0 || S.out == 0) return;
    switch (k) {
        case SignKernel::Reference: detail::sign_q8_reference(S, X, P); return;
#if defined(__x86_64__) && defined(__GNUC__)
        case SignKernel::Avx2: detail::sign_q8_simd<false>(S, X, P); return;
        case SignKernel::Avx512: detail::sign_q8_simd<true>(S, X, P); return;
#else
        default: break;
#endif
    }
}

// y [rows, out] = xa [rows, in] S^T with xa rounded to int8 per row (header comment).
inline void sign_matmul_q8(const PackedSigns& S, const float* xa, int64_t rows, float* y,
                           SignKernel k = sign_q8_kernel()) {
    BITGRAD_CHECK(rows >= 0, "sign_matmul_q8: rows = " << rows << " must be >= 0");
    const Q8Rows X = quantize_rows_q8(xa, rows, S.in);
    std::vector<int32_t> P(std::size_t(rows * S.out));
    sign_matmul_q8_sums(S, X, P.data(), k);
    for (int64_t r = 0; r < rows; ++r) {
        const float d = X.scale[std::size_t(r)];
        const int32_t T = X.sum[std::size_t(r)];
        for (int64_t i = 0; i < S.out; ++i) y[r * S.out + i] = d * float(2 * P[std::size_t(r * S.out + i)] - T);
    }
}

}  // namespace bitgrad::kernels
