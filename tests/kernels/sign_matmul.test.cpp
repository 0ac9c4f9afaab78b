// Packed 1-bit signs and sign_matmul (kernels/sign_matmul.hpp).
//
// Every kernel the CPU runs is compared with a triple loop in double over the unpacked +-1 matrix.
// Tolerance: |y - exact| <= 1e-5 * sum_j |xa[r, j]| per output. The kernels accumulate in float
// (Avx2: 8 lanes then a horizontal sum; Avx512: 2 * sum(+1 columns) - sum(all), which cancels), so
// the error is a few ulps of sum |xa| (about 6e-8 each); a wrong bit, a missed tail column or a
// column counted twice moves an output by |xa_j|, far above 1e-5 of the sum at these sizes.
#include "helpers.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "bitgrad/kernels/sign_matmul.hpp"

using namespace bitgrad;
using kernels::PackedSigns;
using kernels::SignKernel;

namespace sign_matmul_test {

// The kernels this CPU runs, read from the family's list (Avx512 is skipped without AVX512F; the
// test that lists kernels says so).
std::vector<SignKernel> sign_runnable_kernels() {
    std::vector<SignKernel> ks;
    for (const auto& v : kernels::kSignVariants)
        if (v.supported()) ks.push_back(v.id);
    return ks;
}

// Random weights with exact zeros of both signs sprinkled in (sign(+-0) = +1).
Tensor<float> sign_weights(int64_t out, int64_t in, Rng& rng) {
    auto W = Tensor<float>::randn({out, in}, rng);
    for (int64_t i = 0; i < W.numel(); i += 7) W[i] = (i / 7) % 2 ? 0.f : -0.f;
    return W;
}

// y [rows, out] = xa S^T, exact up to double rounding.
std::vector<double> sign_exact(const Tensor<float>& S, const Tensor<float>& xa, int64_t rows, int64_t out, int64_t in) {
    std::vector<double> y(std::size_t(rows * out));
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t i = 0; i < out; ++i) {
            double acc = 0;
            for (int64_t j = 0; j < in; ++j) acc += double(S[i * in + j]) * double(xa[r * in + j]);
            y[std::size_t(r * out + i)] = acc;
        }
    return y;
}

const std::vector<int64_t> kSignOuts = {1, 3, 17, 100};
const std::vector<int64_t> kSignIns = {1, 63, 64, 65, 127, 200, 768 + 13};

}  // namespace sign_matmul_test
using namespace sign_matmul_test;

TEST_CASE("pack_signs - unpack_signs round trip with sign(+0) = sign(-0) = +1 and zero padding") {
    Rng rng(11);
    for (int64_t out : kSignOuts)
        for (int64_t in : kSignIns) {
            CAPTURE(out);
            CAPTURE(in);
            const auto W = sign_weights(out, in, rng);
            const PackedSigns P = kernels::pack_signs(W.data(), out, in);
            REQUIRE(P.out == out);
            REQUIRE(P.in == in);
            REQUIRE(P.words_per_row == (in + 63) / 64);
            REQUIRE(P.bits.numel() == out * P.words_per_row);
            CHECK(reinterpret_cast<uintptr_t>(P.bits.data()) % 64 == 0);
            Tensor<float> S({out, in});
            kernels::unpack_signs(P, S.data());
            int64_t wrong = 0, zeros = 0, bad_bit = 0;
            for (int64_t i = 0; i < out; ++i)
                for (int64_t j = 0; j < in; ++j) {
                    const float w = W[i * in + j];
                    zeros += w == 0.f;
                    wrong += S[i * in + j] != (w >= 0.f ? 1.f : -1.f);
                    // The documented layout: bit j % 64 of word i * wpr + j / 64.
                    const uint64_t bit = (P.bits[i * P.words_per_row + j / 64] >> (j % 64)) & 1;
                    bad_bit += bit != uint64_t(!std::signbit(w) || w == 0.f);
                }
            CHECK(wrong == 0);
            CHECK(bad_bit == 0);
            CHECK(zeros >= 1);
            int64_t padding = 0;
            for (int64_t i = 0; i < out; ++i)
                for (int64_t j = in; j < P.words_per_row * 64; ++j)
                    padding += (P.bits[i * P.words_per_row + j / 64] >> (j % 64)) & 1;
            CHECK(padding == 0);
        }
}

TEST_CASE("pack_signs writes the documented bits for a hand-made matrix") {
    // Row 0: +1 at columns 0, 3 (a -0.0) and 64; row 1: all +1 over 70 columns.
    std::vector<float> W(2 * 70, -1.f);
    W[0] = 2.f;
    W[3] = -0.f;
    W[64] = 0.f;
    for (int j = 0; j < 70; ++j) W[70 + j] = 0.5f;
    const PackedSigns P = kernels::pack_signs(W.data(), 2, 70);
    REQUIRE(P.words_per_row == 2);
    CHECK(P.bits[0] == 0x9u);
    CHECK(P.bits[1] == 0x1u);
    CHECK(P.bits[2] == ~uint64_t(0));
    CHECK(P.bits[3] == 0x3fu);  // 6 columns in the last word, the rest padding
}

TEST_CASE("PackedSigns from raw words checks the word count and the padding") {
    const std::vector<uint64_t> ok = {0x9u, 0x1u, ~uint64_t(0), 0x3fu};
    const PackedSigns P(2, 70, ok);
    CHECK(P.words_per_row == 2);
    CHECK(P.bits[3] == 0x3fu);
    CHECK_THROWS_WITH_AS(PackedSigns(2, 70, std::vector<uint64_t>{1, 2, 3}),
                         doctest::Contains("3 words for out = 2, in = 70 (expected 2 rows x 2 words = 4)"), Error);
    CHECK_THROWS_WITH_AS(PackedSigns(3, 64, std::vector<uint64_t>{1, 2}),
                         doctest::Contains("expected 3 rows x 1 words = 3"), Error);
    CHECK_THROWS_WITH_AS(PackedSigns(2, 70, std::vector<uint64_t>{0x9u, 0x1u, ~uint64_t(0), 0x7fu}),
                         doctest::Contains("row 1 has nonzero padding bits past in = 70"), Error);
    CHECK_THROWS_WITH_AS(PackedSigns(-1, 5, std::vector<uint64_t>{}), doctest::Contains("negative size"), Error);
    // in a multiple of 64: no padding, any bits are fine.
    CHECK_NOTHROW(PackedSigns(1, 128, std::vector<uint64_t>{~uint64_t(0), ~uint64_t(0)}));
    // A packed matrix survives a trip through its raw words.
    Rng rng(12);
    const auto W = sign_weights(5, 200, rng);
    const PackedSigns A = kernels::pack_signs(W.data(), 5, 200);
    const PackedSigns B(5, 200, std::vector<uint64_t>(A.bits.begin(), A.bits.end()));
    CHECK(std::equal(A.bits.begin(), A.bits.end(), B.bits.begin()));
}

TEST_CASE("sign_kernel picks a supported kernel and SignKernelScope overrides it") {
    const SignKernel best = kernels::sign_kernel();
    CHECK(kernels::sign_kernel_supported(best));
    CHECK(kernels::sign_kernel_supported(SignKernel::Reference));
    MESSAGE("sign kernel on this CPU: " << std::string(kernels::sign_kernel_name(best)));
    for (const auto& v : kernels::kSignVariants)
        if (!v.supported())
            MESSAGE("this CPU cannot run the " << std::string(v.name) << " sign kernel: not tested here");
    {
        kernels::SignKernelScope scope(SignKernel::Reference);
        CHECK(kernels::sign_kernel() == SignKernel::Reference);
    }
    CHECK(kernels::sign_kernel() == best);
    Rng rng(13);
    const auto W = sign_weights(3, 10, rng);
    const PackedSigns P = kernels::pack_signs(W.data(), 3, 10);
    std::vector<float> x(10, 1.f), y(3);
    for (const auto& v : kernels::kSignVariants)
        if (!v.supported())
            CHECK_THROWS_WITH_AS(kernels::sign_matmul(P, x.data(), 1, y.data(), v.id),
                                 doctest::Contains("not supported by this CPU"), Error);
}

TEST_CASE("sign_matmul equals the double triple loop for every kernel - odd sizes - rows 1 2 5 33") {
    Rng rng(14);
    for (int64_t out : kSignOuts)
        for (int64_t in : kSignIns) {
            const auto W = sign_weights(out, in, rng);
            const PackedSigns P = kernels::pack_signs(W.data(), out, in);
            Tensor<float> S({out, in});
            kernels::unpack_signs(P, S.data());
            for (int64_t rows : {1, 2, 5, 33}) {
                const auto xa = Tensor<float>::randn({rows, in}, rng);
                const std::vector<double> ref = sign_exact(S, xa, rows, out, in);
                for (SignKernel k : sign_runnable_kernels()) {
                    const std::string kernel = kernels::sign_kernel_name(k);
                    CAPTURE(kernel);
                    CAPTURE(out);
                    CAPTURE(in);
                    CAPTURE(rows);
                    auto y = Tensor<float>::full({rows, out}, 1e30f);  // every output must be written
                    kernels::sign_matmul(P, xa.data(), rows, y.data(), k);
                    double worst = 0;  // largest error in units of the row's sum |xa|
                    for (int64_t r = 0; r < rows; ++r) {
                        double l1 = 0;
                        for (int64_t j = 0; j < in; ++j) l1 += std::abs(double(xa[r * in + j]));
                        for (int64_t i = 0; i < out; ++i)
                            worst =
                                std::max(worst, std::abs(double(y[r * out + i]) - ref[std::size_t(r * out + i)]) / l1);
                    }
                    CHECK(worst <= 1e-5);
                }
            }
        }
}

TEST_CASE(
    "sign_matmul's prefill path (rows >= 32: +-1 panels and the float GEMM) over several panels equals the double "
    "loop") {
    Rng rng(17);
    const int64_t out = 130, in = 9000, rows = 32;  // a panel holds 2^19 / 9024 = 58 output rows: 3 panels
    const auto W = sign_weights(out, in, rng);
    const PackedSigns P = kernels::pack_signs(W.data(), out, in);
    Tensor<float> S({out, in});
    kernels::unpack_signs(P, S.data());
    const auto xa = Tensor<float>::randn({rows, in}, rng);
    const std::vector<double> ref = sign_exact(S, xa, rows, out, in);
    for (SignKernel k : sign_runnable_kernels()) {
        auto y = Tensor<float>::full({rows, out}, 1e30f);
        kernels::sign_matmul(P, xa.data(), rows, y.data(), k);
        double worst = 0;
        for (int64_t r = 0; r < rows; ++r) {
            double l1 = 0;
            for (int64_t j = 0; j < in; ++j) l1 += std::abs(double(xa[r * in + j]));
            for (int64_t i = 0; i < out; ++i)
                worst = std::max(worst, std::abs(double(y[r * out + i]) - ref[std::size_t(r * out + i)]) / l1);
        }
        CHECK(worst <= 1e-5);
    }
}

TEST_CASE("sign_matmul handles rows = 0 and in = 0 - the default kernel is sign_kernel()") {
    const PackedSigns P = kernels::pack_signs(nullptr, 4, 0);
    CHECK(P.words_per_row == 0);
    std::vector<float> y(8, 7.f);
    for (SignKernel k : sign_runnable_kernels()) {
        std::fill(y.begin(), y.end(), 7.f);
        kernels::sign_matmul(P, nullptr, 2, y.data(), k);
        CHECK(std::all_of(y.begin(), y.end(), [](float v) { return v == 0.f; }));
        kernels::sign_matmul(P, nullptr, 0, nullptr, k);
    }
    Rng rng(15);
    const auto W = sign_weights(9, 130, rng);
    const PackedSigns Q = kernels::pack_signs(W.data(), 9, 130);
    const auto xa = Tensor<float>::randn({3, 130}, rng);
    Tensor<float> a({3, 9}), b({3, 9});
    kernels::sign_matmul(Q, xa.data(), 3, a.data());
    kernels::sign_matmul(Q, xa.data(), 3, b.data(), kernels::sign_kernel());
    CHECK(std::equal(a.begin(), a.end(), b.begin()));
}

TEST_CASE("sign_matmul with 2 threads equals 1 thread bit for bit (within rounding on the GEMM prefill path)") {
    Rng rng(16);
    struct Dims {
        int64_t out, in, rows;
    };
    for (Dims d : {Dims{100, 781, 1}, Dims{100, 781, 33}, Dims{37, 1300, 5}, Dims{3, 64, 1}})
        for (SignKernel k : sign_runnable_kernels()) {
            const std::string kernel = kernels::sign_kernel_name(k);
            CAPTURE(kernel);
            CAPTURE(d.out);
            CAPTURE(d.in);
            CAPTURE(d.rows);
            const auto W = sign_weights(d.out, d.in, rng);
            const PackedSigns P = kernels::pack_signs(W.data(), d.out, d.in);
            const auto xa = Tensor<float>::randn({d.rows, d.in}, rng);
            Tensor<float> one({d.rows, d.out}), two({d.rows, d.out});
            ParallelMinWork fork_always(1);
            {
                testing::ThreadCount t(1);
                kernels::sign_matmul(P, xa.data(), d.rows, one.data(), k);
            }
            {
                testing::ThreadCount t(2);
                if (omp_get_max_threads() < 2)
                    MESSAGE("set_num_threads(2) gave fewer threads: the split is not exercised");
                kernels::sign_matmul(P, xa.data(), d.rows, two.data(), k);
            }
            if (d.rows < kernels::detail::kSignGemmRows || k == SignKernel::Reference) {
                CHECK(std::equal(one.begin(), one.end(), two.begin()));
            } else {
                // The prefill path runs the float GEMM, whose threads may split the sums
                // differently: equal within float rounding of the row's sum |xa|.
                double worst = 0;
                for (int64_t r = 0; r < d.rows; ++r) {
                    double l1 = 0;
                    for (int64_t j = 0; j < d.in; ++j) l1 += std::abs(double(xa[r * d.in + j]));
                    for (int64_t i = 0; i < d.out; ++i)
                        worst = std::max(worst, std::abs(double(one[r * d.out + i]) - double(two[r * d.out + i])) / l1);
                }
                CHECK(worst <= 1e-5);
            }
        }
}
