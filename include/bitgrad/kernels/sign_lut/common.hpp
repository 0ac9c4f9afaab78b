#pragma once
// What sign_lut's variants share (kernels/sign_lut.hpp describes the family and the layouts): the
// repacked signs (LutSigns, lut_signs), the tables of an activation row, the driver that splits the
// tiles across threads and the Generic variant. Plain C++: no intrinsics here.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "bitgrad/core/error.hpp"
#include "bitgrad/core/parallel.hpp"
#include "bitgrad/core/tensor.hpp"
#include "bitgrad/kernels/sign_matmul/common.hpp"

namespace bitgrad::kernels {

inline constexpr int64_t kLutTileRows = 32;    // output rows a tile
inline constexpr int64_t kLutPairBytes = 32;   // nibble bytes of a tile for one pair of groups
inline constexpr int64_t kLutTableBytes = 64;  // table bytes for one pair of groups

// Packed signs regrouped for the table kernels: [tiles, groups / 2, 32] bytes (sign_lut.hpp).
struct LutSigns {
    int64_t out = 0, in = 0;
    int64_t tiles = 0;        // ceil(out / 32); the last tile's rows past out are zero
    int64_t groups = 0;       // ceil(in / 4) rounded up to even; columns past in are zero
    Tensor<uint8_t> nibbles;  // [tiles, groups * 16]

    int64_t pairs() const { return groups / 2; }
    const uint8_t* tile(int64_t t) const { return nibbles.data() + t * groups * 16; }
    int64_t bytes() const { return tiles * groups * 16; }
};

// The repack (in memory; the packed file format stays PackedSigns).
inline LutSigns lut_signs(const PackedSigns& S) {
    BITGRAD_CHECK(S.bits.numel() == S.out * S.words_per_row && S.words_per_row == (S.in + 63) / 64,
                  "lut_signs: PackedSigns [" << S.out << ", " << S.in << "] holds " << S.bits.numel()
                                             << " words, expected " << S.out * ((S.in + 63) / 64));
    LutSigns L;
    L.out = S.out, L.in = S.in;
    L.tiles = (S.out + kLutTileRows - 1) / kLutTileRows;
    L.groups = ((S.in + 3) / 4 + 1) / 2 * 2;
    L.nibbles = Tensor<uint8_t>::zeros({L.tiles, L.groups * 16});
    // Column 4g + k is bit (4g + k) % 64 of word (4g + k) / 64: a nibble never straddles two words,
    // and the padding bits of PackedSigns are 0, so a partial last group needs no care.
    auto nibble = [&](int64_t i, int64_t g) -> uint8_t {
        if (i >= S.out || 4 * g >= S.in) return 0;
        return uint8_t((S.row(i)[4 * g / 64] >> (4 * g % 64)) & 0xF);
    };
    parallel_for(
        L.tiles,
        [&](int64_t t) {
            uint8_t* w = L.nibbles.data() + t * L.groups * 16;
            for (int64_t p = 0; p < L.pairs(); ++p)
                for (int64_t h = 0; h < 2; ++h)
                    for (int64_t b = 0; b < 16; ++b) {
                        const int64_t i = t * kLutTileRows + b, g = 2 * p + h;
                        w[p * kLutPairBytes + 16 * h + b] = uint8_t(nibble(i, g) | nibble(i + 16, g) << 4);
                    }
        },
        L.groups * 16);
    return L;
}

// One product of a call: signs, one activation row q [in] of int8 (reads q[0, in) only), and
// P [out] = sum of q[j] over the columns j < in whose sign is +1 (out and in > 0).
struct LutProblem {
    const LutSigns* signs;
    const int8_t* q;
    int32_t* P;
};

// One variant: the n products, the tiles of all of them split across the threads as one range
// (one fork for the q, k and v projections of a decode step instead of three). The variant builds
// every row's tables itself.
using SignLutFn = void (*)(const LutProblem* problems, int64_t n);

namespace detail {

// The tables of the row q [in] in the layout of sign_lut.hpp: pair p's 64 bytes hold the low bytes
// of T_{2p}[0..15] and T_{2p+1}[0..15], then their high bytes. Reads q[0, in) only.
inline void lut_tables_generic(const int8_t* q, int64_t in, int64_t groups, int64_t g0, uint8_t* tables) {
    for (int64_t g = g0; g < groups; ++g) {
        int16_t x[4];
        for (int k = 0; k < 4; ++k) x[k] = 4 * g + k < in ? q[4 * g + k] : 0;
        int16_t T[16];
        T[0] = 0;
        for (int n = 1; n < 16; ++n) T[n] = int16_t(T[n & (n - 1)] + x[__builtin_ctz(unsigned(n))]);
        uint8_t* t = tables + g / 2 * kLutTableBytes + 16 * (g % 2);
        for (int n = 0; n < 16; ++n) t[n] = uint8_t(uint16_t(T[n]) & 0xFF), t[32 + n] = uint8_t(uint16_t(T[n]) >> 8);
    }
}

// The Generic micro-kernel, also the layout's executable definition: tile w's sums over `pairs`
// pairs of groups into sums[32].
inline void lut_tile_generic(const uint8_t* w, const uint8_t* tables, int64_t pairs, int32_t* sums) {
    std::fill(sums, sums + kLutTileRows, 0);
    for (int64_t p = 0; p < pairs; ++p)
        for (int h = 0; h < 2; ++h) {
            const uint8_t* lo = tables + p * kLutTableBytes + 16 * h;
            auto T = [&](int n) { return int32_t(int16_t(uint16_t(lo[n] | lo[32 + n] << 8))); };
            for (int b = 0; b < 16; ++b) {
                const uint8_t byte = w[p * kLutPairBytes + 16 * h + b];
                sums[b] += T(byte & 0xF);
                sums[16 + b] += T(byte >> 4);
            }
        }
}

// The driver of every variant: Tables(q, in, groups, tables) builds each row's tables once, then the
// tiles of all problems, numbered one after the other, are split into contiguous ranges across the
// threads and Tile(w, tables, pairs, sums) sums each over all its columns.
// The tables (64 bytes per 8 columns: 88 KiB at in = 11008) are read from L2 then; column chunks that
// kept them in L1 while every tile passed were 4-6% slower on the 7B shapes (strided nibble reads).
// TilePair, where a variant has one, sums two tiles of one problem in one pass (sharing the table loads).
template <void (*Tables)(const int8_t*, int64_t, int64_t, uint8_t*),
          void (*Tile)(const uint8_t*, const uint8_t*, int64_t, int32_t*),
          void (*TilePair)(const uint8_t* const*, const uint8_t*, int64_t, int32_t* const*) = nullptr>
void sign_lut_run(const LutProblem* problems, int64_t n) {
    std::vector<int64_t> first_tile(std::size_t(n + 1), 0), table_offset(std::size_t(n), 0);
    int64_t table_bytes = 0, work = 0;
    for (int64_t i = 0; i < n; ++i) {
        const LutSigns& L = *problems[i].signs;
        first_tile[std::size_t(i + 1)] = first_tile[std::size_t(i)] + L.tiles;
        table_offset[std::size_t(i)] = table_bytes;
        table_bytes += L.pairs() * kLutTableBytes;
        work += L.tiles * L.in;
    }
    auto tables = Tensor<uint8_t>::empty({table_bytes});
    for (int64_t i = 0; i < n; ++i) {
        const LutSigns& L = *problems[i].signs;
        Tables(problems[i].q, L.in, L.groups, tables.data() + table_offset[std::size_t(i)]);
    }
    const int64_t tiles = first_tile[std::size_t(n)];
    parallel_chunks(
        tiles,
        [&](int64_t t0, int64_t t1) {
            int64_t i = std::upper_bound(first_tile.begin(), first_tile.end(), t0) - first_tile.begin() - 1;
            for (int64_t t = t0; t < t1;) {
                while (t >= first_tile[std::size_t(i + 1)]) ++i;
                const LutSigns& L = *problems[i].signs;
                const uint8_t* table = tables.data() + table_offset[std::size_t(i)];
                const int64_t tile = t - first_tile[std::size_t(i)], i0 = tile * kLutTileRows;
                alignas(32) int32_t sums[2][kLutTileRows];
                int64_t tiles_done = 1;
                if (TilePair && t + 1 < t1 && tile + 1 < L.tiles) {  // two tiles of this problem
                    const uint8_t* w[2] = {L.tile(tile), L.tile(tile + 1)};
                    int32_t* s[2] = {sums[0], sums[1]};
                    TilePair(w, table, L.pairs(), s);
                    tiles_done = 2;
                } else {
                    Tile(L.tile(tile), table, L.pairs(), sums[0]);
                }
                for (int64_t d = 0; d < tiles_done; ++d) {
                    const int64_t r0 = i0 + d * kLutTileRows;
                    std::copy(sums[d], sums[d] + std::min(kLutTileRows, L.out - r0), problems[i].P + r0);
                }
                t += tiles_done;
            }
        },
        // ~1 unit per column and tile: a lone 768 x 768 layer (a few microseconds) stays on one thread
        work / std::max<int64_t>(tiles, 1));
}

inline void lut_tables_all_generic(const int8_t* q, int64_t in, int64_t groups, uint8_t* tables) {
    lut_tables_generic(q, in, groups, 0, tables);
}

inline void sign_lut_generic(const LutProblem* problems, int64_t n) {
    sign_lut_run<lut_tables_all_generic, lut_tile_generic>(problems, n);
}

}  // namespace detail
}  // namespace bitgrad::kernels
