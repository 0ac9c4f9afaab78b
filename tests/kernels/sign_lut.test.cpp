// sign_lut: the table-look-up sign GEMV (kernels/sign_lut.hpp). Its sums are integers, so every
// variant must equal sign_matmul_q8's reference exactly: on odd sizes (partial groups, an odd group
// count, a partial last tile), on the int16 accumulators' worst cases (every q = 127 or -127 under
// all-+1 signs, over several int16 widening intervals), on any thread count. The repack
// is checked against the packed bits sign by sign, padding included.
#include "helpers.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "bitgrad/kernels/sign_lut.hpp"

using namespace bitgrad;
using kernels::LutSigns;
using kernels::PackedSigns;
using kernels::Q8Rows;
using kernels::SignLutKernel;

namespace sign_lut_test {

// Random signs (fill = 0: random, 1: all +1, -1: all -1), padding bits 0 as PackedSigns requires.
PackedSigns lut_test_signs(int64_t out, int64_t in, Rng& rng, int fill = 0) {
    const int64_t wpr = (in + 63) / 64;
    std::vector<uint64_t> words(std::size_t(out * wpr));
    for (int64_t i = 0; i < out; ++i)
        for (int64_t w = 0; w < wpr; ++w) {
            uint64_t word = fill == 0 ? rng.next_u64() : fill > 0 ? ~uint64_t(0) : 0;
            if (w == wpr - 1 && in % 64 != 0) word &= ~(~uint64_t(0) << (in % 64));
            words[std::size_t(i * wpr + w)] = word;
        }
    return PackedSigns(out, in, words);
}

// Int8 rows as quantize_rows_q8 lays them out, with q from value(j), and junk in the padding past
// in: a kernel must read q[0, in) only.
template <class F>
Q8Rows lut_test_rows(int64_t rows, int64_t in, F&& value) {
    Q8Rows X;
    X.rows = rows, X.in = in, X.stride = (in + 63) / 64 * 64;
    X.q = Tensor<int8_t>::full({rows, X.stride}, int8_t(99));
    X.scale.assign(std::size_t(rows), 1.f);
    X.sum.assign(std::size_t(rows), 0);
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < in; ++j) {
            X.q[r * X.stride + j] = value(j);
            X.sum[std::size_t(r)] += X.q[r * X.stride + j];
        }
    return X;
}

// Random q in [-127, 127] with the extremes every few columns.
Q8Rows lut_random_rows(int64_t rows, int64_t in, Rng& rng) {
    return lut_test_rows(rows, in, [&](int64_t j) {
        if (j % 7 == 3) return int8_t(127);
        if (j % 11 == 5) return int8_t(-127);
        return int8_t(int(rng.uniform_int(255)) - 127);
    });
}

std::vector<int32_t> q8_reference(const PackedSigns& S, const Q8Rows& X) {
    std::vector<int32_t> P(std::size_t(X.rows * S.out), -999999);
    kernels::detail::sign_q8_reference(S, X, P.data());
    return P;
}

std::vector<int32_t> lut_sums(const LutSigns& L, const Q8Rows& X, SignLutKernel k) {
    std::vector<int32_t> P(std::size_t(X.rows * L.out), -999999);  // every sum must be written
    kernels::sign_lut_sums(L, X, P.data(), k);
    return P;
}

// Sign bit of row i, column j as the layout of sign_lut.hpp places it (rows and columns past out and
// in read the padding).
int lut_sign_bit(const LutSigns& L, int64_t i, int64_t j) {
    const int64_t t = i / 32, b = i % 32, g = j / 4, p = g / 2, h = g % 2;
    const uint8_t byte = L.tile(t)[p * 32 + 16 * h + b % 16];
    const int nibble = b < 16 ? byte & 0xF : byte >> 4;
    return (nibble >> (j % 4)) & 1;
}

}  // namespace sign_lut_test
using namespace sign_lut_test;

TEST_CASE("lut_signs places every packed sign where the layout says and pads with zeros") {
    Rng rng(71);
    for (int64_t out : {1, 5, 31, 32, 33, 70})
        for (int64_t in : {1, 3, 4, 5, 63, 64, 65, 130}) {
            CAPTURE(out);
            CAPTURE(in);
            const PackedSigns S = lut_test_signs(out, in, rng);
            const LutSigns L = kernels::lut_signs(S);
            REQUIRE(L.tiles == (out + 31) / 32);
            REQUIRE(L.groups % 2 == 0);
            REQUIRE(L.groups * 4 >= in);
            REQUIRE(L.groups * 4 < in + 8);
            REQUIRE(L.nibbles.numel() == L.tiles * L.groups * 16);
            std::vector<float> s(std::size_t(out * in));
            kernels::unpack_signs(S, s.data());
            int wrong = 0, padding = 0;
            for (int64_t i = 0; i < L.tiles * 32; ++i)
                for (int64_t j = 0; j < L.groups * 4; ++j) {
                    const int bit = lut_sign_bit(L, i, j);
                    if (i < out && j < in)
                        wrong += bit != (s[std::size_t(i * in + j)] > 0.f ? 1 : 0);
                    else
                        padding += bit;
                }
            CHECK(wrong == 0);
            CHECK(padding == 0);
        }
}

TEST_CASE("sign_lut_sums equals the int8 sign reference exactly - every variant - odd sizes") {
    Rng rng(72);
    for (int64_t out : {1, 5, 31, 32, 33, 70})
        for (int64_t in : {1, 3, 4, 5, 63, 64, 65, 130, 257, 768}) {
            const PackedSigns S = lut_test_signs(out, in, rng);
            const LutSigns L = kernels::lut_signs(S);
            const Q8Rows X = lut_random_rows(1, in, rng);
            const auto want = q8_reference(S, X);
            for (const auto& v : kernels::kSignLutVariants) {
                if (!v.supported()) continue;  // the dispatch test below names what this CPU skips
                const std::string kernel = v.name;
                CAPTURE(kernel);
                CAPTURE(out);
                CAPTURE(in);
                CHECK(lut_sums(L, X, v.id) == want);
            }
        }
}

TEST_CASE("sign_lut_sums is exact at the int16 accumulators' extremes - q = +-127 and -128 under all-+1 signs") {
    Rng rng(73);
    for (int64_t in : {4096, 5632, 2048 + 8 * 64 + 3})
        for (int fill : {1, -1, 0}) {
            // Rows 0 .. 32 share the fill; a random row after them shares their tiles.
            const int64_t out = 35;
            PackedSigns S = lut_test_signs(out, in, rng, fill);
            const PackedSigns random = lut_test_signs(1, in, rng);
            std::copy(random.row(0), random.row(0) + S.words_per_row, S.bits.data() + 33 * S.words_per_row);
            const LutSigns L = kernels::lut_signs(S);
            for (int q : {127, -127, -128}) {
                const Q8Rows X = lut_test_rows(1, in, [&](int64_t) { return int8_t(q); });
                const auto want = q8_reference(S, X);
                if (fill == 1) REQUIRE(want[0] == q * in);
                for (const auto& v : kernels::kSignLutVariants) {
                    if (!v.supported()) continue;
                    const std::string kernel = v.name;
                    CAPTURE(kernel);
                    CAPTURE(in);
                    CAPTURE(fill);
                    CAPTURE(q);
                    CHECK(lut_sums(L, X, v.id) == want);
                }
            }
        }
}

TEST_CASE("sign_lut_sums with several rows runs them one by one - and sign_matmul_lut equals sign_matmul_q8") {
    Rng rng(74);
    const int64_t out = 45, in = 301, rows = 3;
    const PackedSigns S = lut_test_signs(out, in, rng);
    const LutSigns L = kernels::lut_signs(S);
    const Q8Rows X = lut_random_rows(rows, in, rng);
    const auto want = q8_reference(S, X);
    const auto xa = Tensor<float>::randn({rows, in}, rng);
    std::vector<float> y_q8(std::size_t(rows * out));
    kernels::sign_matmul_q8(S, xa.data(), rows, y_q8.data(), kernels::SignKernel::Reference);
    for (const auto& v : kernels::kSignLutVariants) {
        if (!v.supported()) continue;
        const std::string kernel = v.name;
        CAPTURE(kernel);
        CHECK(lut_sums(L, X, v.id) == want);
        std::vector<float> y(std::size_t(rows * out), 1e30f);
        kernels::sign_matmul_lut(L, xa.data(), rows, y.data(), v.id);
        CHECK(y == y_q8);
    }
}

TEST_CASE("sign_lut_sums with 2 threads equals 1 thread and the reference") {
    Rng rng(75);
    const int64_t out = 101, in = 2300;  // 4 tiles
    const PackedSigns S = lut_test_signs(out, in, rng);
    const LutSigns L = kernels::lut_signs(S);
    const Q8Rows X = lut_random_rows(1, in, rng);
    const auto want = q8_reference(S, X);
    ParallelMinWork fork_always(1);
    for (const auto& v : kernels::kSignLutVariants) {
        if (!v.supported()) continue;
        const std::string kernel = v.name;
        CAPTURE(kernel);
        std::vector<int32_t> one, two;
        {
            testing::ThreadCount t(1);
            one = lut_sums(L, X, v.id);
        }
        {
            testing::ThreadCount t(2);
            two = lut_sums(L, X, v.id);
        }
        CHECK(one == two);
        CHECK(one == want);
    }
}

TEST_CASE("sign_lut_sums: in = 0 and out = 0 - bad widths and unsupported kernels refused") {
    Rng rng(76);
    const LutSigns empty_in = kernels::lut_signs(PackedSigns(3, 0, std::vector<uint64_t>{}));
    const Q8Rows X0 = lut_test_rows(1, 0, [](int64_t) { return int8_t(0); });
    for (const auto& v : kernels::kSignLutVariants)
        if (v.supported()) CHECK(lut_sums(empty_in, X0, v.id) == std::vector<int32_t>{0, 0, 0});
    const LutSigns empty_out = kernels::lut_signs(PackedSigns(0, 10, std::vector<uint64_t>{}));
    kernels::sign_lut_sums(empty_out, lut_test_rows(1, 10, [](int64_t) { return int8_t(1); }), nullptr);

    const LutSigns L = kernels::lut_signs(lut_test_signs(4, 70, rng));
    std::vector<int32_t> P(4);
    CHECK_THROWS_WITH_AS(kernels::sign_lut_sums(L, lut_random_rows(1, 69, rng), P.data()),
                         doctest::Contains("sign_lut_sums: X.in = 69, expected L.in = 70"), Error);
    LutSigns cut = L;
    cut.groups -= 2;
    CHECK_THROWS_WITH_AS(kernels::sign_lut_sums(cut, lut_random_rows(1, 70, rng), P.data()),
                         doctest::Contains("expected the shape lut_signs gives"), Error);
    for (const auto& v : kernels::kSignLutVariants)
        if (!v.supported())
            CHECK_THROWS_WITH_AS(kernels::sign_lut_sums(L, lut_random_rows(1, 70, rng), P.data(), v.id),
                                 doctest::Contains("not supported by this CPU"), Error);
}

TEST_CASE("sign_lut_kernel picks the first supported variant and SignLutKernelScope overrides it") {
    const SignLutKernel best = kernels::sign_lut_kernel();
    CHECK(kernels::variant_of(kernels::kSignLutVariants, best).supported());
    for (const auto& v : kernels::kSignLutVariants)
        if (!v.supported())
            MESSAGE("this CPU cannot run the " << std::string(v.name) << " sign_lut kernel: not tested here");
    {
        kernels::SignLutKernelScope scope(SignLutKernel::Generic);
        CHECK(kernels::sign_lut_kernel() == SignLutKernel::Generic);
    }
    CHECK(kernels::sign_lut_kernel() == best);
}

TEST_CASE(
    "sign_lut_sums_many runs layers of different shapes in one call - each equals its reference on 1 and 2 threads") {
    Rng rng(77);
    // q, k, v of a decode step have one input; here the shapes differ too, with an empty layer, a
    // layer with no columns and tiles of several layers in each thread's range.
    const std::vector<std::pair<int64_t, int64_t>> shapes = {{70, 130}, {0, 130}, {33, 0}, {5, 257}, {96, 768}, {1, 3}};
    std::vector<PackedSigns> S;
    std::vector<LutSigns> L;
    std::vector<Q8Rows> X;
    std::vector<std::vector<int32_t>> want;
    for (const auto& [out, in] : shapes) {
        S.push_back(lut_test_signs(out, in, rng));
        L.push_back(kernels::lut_signs(S.back()));
        X.push_back(lut_random_rows(1, in, rng));
        want.push_back(in == 0 ? std::vector<int32_t>(std::size_t(out), 0) : q8_reference(S.back(), X.back()));
    }
    ParallelMinWork fork_always(1);
    for (const auto& v : kernels::kSignLutVariants) {
        if (!v.supported()) continue;
        const std::string kernel = v.name;
        CAPTURE(kernel);
        for (int threads : {1, 2}) {
            CAPTURE(threads);
            testing::ThreadCount t(threads);
            std::vector<std::vector<int32_t>> got;
            std::vector<kernels::LutProblem> problems;
            for (std::size_t i = 0; i < shapes.size(); ++i)
                got.emplace_back(std::size_t(shapes[i].first), -999999);  // every sum must be written
            for (std::size_t i = 0; i < shapes.size(); ++i) problems.push_back({&L[i], X[i].q.data(), got[i].data()});
            kernels::sign_lut_sums_many(problems.data(), int64_t(problems.size()), v.id);
            for (std::size_t i = 0; i < shapes.size(); ++i) {
                CAPTURE(i);
                CHECK(got[i] == want[i]);
            }
        }
    }
}
