#pragma once
// sign_lut: the decode-time (one activation row) sign GEMV of sign_matmul_q8 by table look-ups, as
// T-MAC and bitnet.cpp's TL kernels do. It computes the same integers as sign_matmul_q8_sums:
//   P[i] = sum_{j < in: s[i, j] = +1} q[j]        (q: one Q8Rows row, kernels/sign_matmul_q8.hpp)
// exactly, so y[i] = d * (2 P[i] - T) gives the same bits as sign_matmul_q8 (sign_matmul_lut below).
//
// The math: cut the columns into groups of 4, g = 0 .. ceil(in / 4) - 1. Row i's four signs in group
// g are a nibble n = sum_k bit_k 2^k (bit k = 1 when s[i, 4g + k] = +1), and
//   P[i] = sum_g T_g[n(i, g)],      T_g[n] = sum_{k: bit k of n is 1} q[4g + k]   (n = 0 .. 15)
// (columns past in count as q = 0). One activation row gives the 16-entry tables once, in 4 adds per
// group; every output row then costs one look-up and one add per 4 columns instead of 4 products.
// |T_g[n]| <= 4 * 128 needs 10 bits: each table is stored as two byte tables, its low bytes and its
// high bytes (in [-2, 1]), the width of a vpshufb look-up; the int16 entry is lo | hi << 8.
//
// Signs (LutSigns, built from PackedSigns by lut_signs, in memory; the packed file is unchanged):
// output rows in tiles of 32 (the last tile padded with zero rows), groups padded to an even count
// with zero nibbles. Tile t is [groups / 2, 32] bytes, for each pair of groups (2p, 2p + 1):
//
//   byte b        0 .. 15                                   16 .. 31
//   low nibble    n(32t + b, 2p)       (rows 32t .. +15)     n(32t + b - 16, 2p + 1)
//   high nibble   n(32t + 16 + b, 2p)  (rows 32t+16 .. +31)  n(32t + b, 2p + 1)
//
// so 32 bytes are 32 rows x 8 columns, read in one load: one bit a sign, as in PackedSigns.
// Tables (per call, from the row): pair p's 64 bytes are lo(T_2p[0..15]), lo(T_2p+1[0..15]),
// hi(T_2p[0..15]), hi(T_2p+1[0..15]): a 256-bit register holds the even group's byte table in its low
// 128-bit lane and the odd group's in the high lane, as vpshufb (in-lane) reads them against the
// nibble bytes above. Threads own contiguous ranges of tiles, each tile summed over all columns.
// Integer sums: results do not depend on the thread count or the kernel.
//
// Kernels (kSignLutVariants below, in preference order; sign_lut_kernel() runs the first this CPU
// supports, SignLutKernelScope overrides it). Files: this one holds the API, the list and the
// dispatch; sign_lut/common.hpp the layout, the tables, the driver and Generic; sign_lut/avx2.hpp AVX2.
//   Avx2     the tables built 2 groups at a time (vpmaddubsw of n's bits against q, vpackuswb /
//            vpacksswb); per 32 rows x 8 columns one load, 2 table loads, 3 to split the nibbles,
//            4 vpshufb, 4 vpunpck to int16 and 4 adds: 18 instructions per 256 products, where the
//            int8 sign kernel needs ~9 per 32. int16 sums widen to int32 every 64 steps (avx2.hpp).
//            At decode on an AVX2 AMD EPYC (one thread) its sums take a third of the int8 kernel's
//            time (~110 against ~38 products per ns, 768 x 768 to 4096 x 11008).
//   Generic  the same layout, tables and driver in plain C++ (any CPU): the layout's definition.
// The reference they are tested against is sign_matmul_q8's (detail::sign_q8_reference).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <vector>

#include "bitgrad/core/error.hpp"
#include "bitgrad/core/thread_override.hpp"
#include "bitgrad/kernels/sign_lut/avx2.hpp"
#include "bitgrad/kernels/sign_lut/common.hpp"
#include "bitgrad/kernels/sign_matmul_q8.hpp"
#include "bitgrad/kernels/variant.hpp"

namespace bitgrad::kernels {

enum class SignLutKernel { Generic, Avx2 };

// The variants, in preference order (kernels/variant.hpp): dispatch, names, tests and benches read this.
inline constexpr KernelVariant<SignLutKernel, SignLutFn> kSignLutVariants[] = {
    {SignLutKernel::Avx2, "avx2", detail::sign_lut_avx2_supported, detail::sign_lut_avx2},
    {SignLutKernel::Generic, "generic", always_supported, detail::sign_lut_generic},
};

// Every SignLutKernel has an entry: a new value is a -Wswitch warning here (no default), and once
// counted, the static_assert asks for its entry in the list.
constexpr std::size_t sign_lut_kernel_count(SignLutKernel k) {
    switch (k) {
        case SignLutKernel::Generic:
        case SignLutKernel::Avx2: return 2;
    }
    return 0;
}
static_assert(std::size(kSignLutVariants) == sign_lut_kernel_count(SignLutKernel::Generic));

// RAII: this thread's sign_lut calls use the given kernel.
using SignLutKernelScope = ThreadOverride<SignLutKernel>;

// The dispatch: the first variant this CPU runs (unless a SignLutKernelScope says otherwise).
inline SignLutKernel sign_lut_kernel() {
    static const SignLutKernel best = first_supported_variant(kSignLutVariants);
    return SignLutKernelScope::current().value_or(best);
}

// The n products of `problems` (LutProblem, sign_lut/common.hpp) in one call: their tiles are split
// across the threads together, so several small layers that read the same input (q, k and v; gate
// and up) cost one fork. Problems with out = 0 are skipped; in = 0 gives P = 0.
inline void sign_lut_sums_many(const LutProblem* problems, int64_t n, SignLutKernel k = sign_lut_kernel()) {
    const auto& v = variant_of(kSignLutVariants, k);
    BITGRAD_CHECK(v.supported(), "sign_lut_sums: the " << v.name << " kernel is not supported by this CPU");
    std::vector<LutProblem> work;
    for (int64_t i = 0; i < n; ++i) {
        const LutSigns& L = *problems[i].signs;
        BITGRAD_CHECK(L.tiles == (L.out + kLutTileRows - 1) / kLutTileRows &&
                          L.groups == ((L.in + 3) / 4 + 1) / 2 * 2 && L.nibbles.numel() == L.bytes(),
                      "sign_lut_sums: LutSigns [" << L.out << ", " << L.in << "] with tiles = " << L.tiles
                                                  << ", groups = " << L.groups << ", " << L.nibbles.numel()
                                                  << " bytes; expected the shape lut_signs gives");
        if (L.out == 0) continue;
        if (L.in == 0)
            std::fill(problems[i].P, problems[i].P + L.out, 0);
        else
            work.push_back(problems[i]);
    }
    if (!work.empty()) v.run(work.data(), int64_t(work.size()));
}

// P [rows, out] (int32): P[r, i] = sum of q[r, j] over s[i, j] = +1, as sign_matmul_q8_sums. Made for
// rows = 1 (decode); more rows are that many problems of one call (correct, not faster than
// sign_matmul_q8).
inline void sign_lut_sums(const LutSigns& L, const Q8Rows& X, int32_t* P, SignLutKernel k = sign_lut_kernel()) {
    BITGRAD_CHECK(X.in == L.in, "sign_lut_sums: X.in = " << X.in << ", expected L.in = " << L.in << " (signs [" << L.out
                                                         << ", " << L.in << "])");
    BITGRAD_CHECK(X.rows >= 0 && X.q.numel() >= X.rows * X.stride && X.stride >= X.in,
                  "sign_lut_sums: X holds " << X.q.numel() << " bytes for rows = " << X.rows << " of stride "
                                            << X.stride << ", expected rows * stride with stride >= in = " << X.in);
    std::vector<LutProblem> problems;
    for (int64_t r = 0; r < X.rows; ++r) problems.push_back({&L, X.q.data() + r * X.stride, P + r * L.out});
    sign_lut_sums_many(problems.data(), int64_t(problems.size()), k);
}

// y [rows, out] = xa [rows, in] S^T with xa rounded to int8 per row: the same bits as sign_matmul_q8.
inline void sign_matmul_lut(const LutSigns& L, const float* xa, int64_t rows, float* y,
                            SignLutKernel k = sign_lut_kernel()) {
    BITGRAD_CHECK(rows >= 0, "sign_matmul_lut: rows = " << rows << ", expected >= 0");
    const Q8Rows X = quantize_rows_q8(xa, rows, L.in);
    std::vector<int32_t> P(std::size_t(rows * L.out));
    sign_lut_sums(L, X, P.data(), k);
    dequantize_sign_sums(X, P.data(), L.out, y);
}

}  // namespace bitgrad::kernels
