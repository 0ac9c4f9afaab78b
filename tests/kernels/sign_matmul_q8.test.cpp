// sign_matmul_q8: packed signs times int8-rounded activations (kernels/sign_matmul_q8.hpp).
//
// Three independent checks: the rounding (quantize_rows_q8) against its definition; every kernel's
// integer sums against a loop over the unpacked +-1 matrix in int64 (they must be equal: integers);
// and the float result against the exact product in double, within the rounding bound the header
// states (|y - exact| <= d / 2 * sum over the row's columns, d = absmax / 127).
#include "helpers.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "bitgrad/kernels/sign_matmul_q8.hpp"

using namespace bitgrad;
using kernels::PackedSigns;
using kernels::SignKernel;

namespace sign_matmul_q8_test {

// The kernels this CPU runs, read from the family's list.
std::vector<SignKernel> q8_runnable_kernels() {
    std::vector<SignKernel> ks;
    for (const auto& v : kernels::kSignQ8Variants)
        if (v.supported()) ks.push_back(v.id);
    return ks;
}

Tensor<float> q8_weights(int64_t out, int64_t in, Rng& rng) {
    auto W = Tensor<float>::randn({out, in}, rng);
    for (int64_t i = 0; i < W.numel(); i += 5) W[i] = (i / 5) % 2 ? 0.f : -0.f;  // sign(+-0) = +1
    return W;
}

// Activations with a few large entries, as real ones have (the absmax sets the scale).
Tensor<float> q8_activations(int64_t rows, int64_t in, Rng& rng) {
    auto x = Tensor<float>::randn({rows, in}, rng);
    for (int64_t i = 0; i < x.numel(); i += 37) x[i] *= 9.f;
    return x;
}

const std::vector<int64_t> kQ8Outs = {1, 3, 9, 100};
const std::vector<int64_t> kQ8Ins = {1,  31, 32,  33,       63,
                                     64, 65, 200, 768 + 13, 2048 + 64 + 5};  // the last crosses a column chunk

}  // namespace sign_matmul_q8_test
using namespace sign_matmul_q8_test;

TEST_CASE("quantize_rows_q8 rounds each row by its absmax - pads with zeros - sums the integers") {
    const std::vector<float> x = {0.5f, -1.27f, 0.004f, 0.006f, 0.f, 1.27f,  // row 0: absmax 1.27 -> d = 0.01
                                  0.f,  0.f,    0.f,    0.f,    0.f, 0.f};   // row 1: all zero -> d = 0
    const kernels::Q8Rows X = kernels::quantize_rows_q8(x.data(), 2, 6);
    REQUIRE(X.stride == 64);
    CHECK(X.scale[0] == doctest::Approx(0.01f).epsilon(1e-6));
    CHECK(X.scale[1] == 0.f);
    const int8_t* q = X.q.data();
    CHECK(int(q[0]) == 50);
    CHECK(int(q[1]) == -127);
    CHECK(int(q[2]) == 0);  // 0.4 -> 0
    CHECK(int(q[3]) == 1);  // 0.6 -> 1
    CHECK(int(q[5]) == 127);
    CHECK(X.sum[0] == 50 - 127 + 0 + 1 + 0 + 127);
    CHECK(X.sum[1] == 0);
    int padding = 0;
    for (int64_t j = 6; j < 64; ++j) padding += q[j] != 0 || q[64 + j] != 0;
    CHECK(padding == 0);
    // Every |q| <= 127 and |x / d - q| <= 1/2 on random rows.
    Rng rng(21);
    const auto r = q8_activations(5, 301, rng);
    const kernels::Q8Rows R = kernels::quantize_rows_q8(r.data(), 5, 301);
    double worst = 0;
    int out_of_range = 0;
    for (int64_t i = 0; i < 5; ++i)
        for (int64_t j = 0; j < 301; ++j) {
            const int v = R.q[i * R.stride + j];
            out_of_range += v < -127 || v > 127;
            worst = std::max(worst, std::abs(double(r[i * 301 + j]) / double(R.scale[std::size_t(i)]) - v));
        }
    CHECK(out_of_range == 0);
    CHECK(worst <= 0.5 + 1e-4);
}

TEST_CASE(
    "sign_matmul_q8 integer sums equal the int64 loop over the unpacked signs for every kernel - odd sizes - rows 1 2 "
    "5 9 and 19 (the prefill panel from kQ8PanelRows)") {
    static_assert(kernels::detail::kQ8PanelRows <= 9, "rows 9 and 19 must reach the prefill panel");
    Rng rng(22);
    for (int64_t out : kQ8Outs)
        for (int64_t in : kQ8Ins) {
            const auto W = q8_weights(out, in, rng);
            const PackedSigns P = kernels::pack_signs(W.data(), out, in);
            for (int64_t rows : {1, 2, 5, 9, 19}) {
                const auto xa = q8_activations(rows, in, rng);
                const kernels::Q8Rows X = kernels::quantize_rows_q8(xa.data(), rows, in);
                std::vector<int32_t> want(std::size_t(rows * out));
                for (int64_t r = 0; r < rows; ++r)
                    for (int64_t i = 0; i < out; ++i) {
                        int64_t acc = 0;
                        for (int64_t j = 0; j < in; ++j) acc += W[i * in + j] >= 0.f ? X.q[r * X.stride + j] : 0;
                        want[std::size_t(r * out + i)] = int32_t(acc);
                    }
                for (SignKernel k : q8_runnable_kernels()) {
                    const std::string kernel = kernels::sign_kernel_name(k);
                    CAPTURE(kernel);
                    CAPTURE(out);
                    CAPTURE(in);
                    CAPTURE(rows);
                    std::vector<int32_t> got(std::size_t(rows * out), -999999);  // every sum must be written
                    kernels::sign_matmul_q8_sums(P, X, got.data(), k);
                    CHECK(got == want);
                }
            }
        }
}

TEST_CASE(
    "sign_matmul_q8 is within the int8 rounding bound of the exact product and every kernel gives the same bits") {
    Rng rng(23);
    for (int64_t in : {65, 781, 2048 + 64 + 5}) {
        const int64_t out = 37, rows = 6;
        const auto W = q8_weights(out, in, rng);
        const PackedSigns P = kernels::pack_signs(W.data(), out, in);
        const auto xa = q8_activations(rows, in, rng);
        std::vector<float> first;
        for (SignKernel k : q8_runnable_kernels()) {
            const std::string kernel = kernels::sign_kernel_name(k);
            CAPTURE(kernel);
            CAPTURE(in);
            std::vector<float> y(std::size_t(rows * out), 1e30f);
            kernels::sign_matmul_q8(P, xa.data(), rows, y.data(), k);
            double worst = 0, typical = 0;  // errors in units of the bound d / 2 * in
            for (int64_t r = 0; r < rows; ++r) {
                double absmax = 0;
                for (int64_t j = 0; j < in; ++j) absmax = std::max(absmax, std::abs(double(xa[r * in + j])));
                const double bound = absmax / 127 / 2 * double(in);
                for (int64_t i = 0; i < out; ++i) {
                    double exact = 0;
                    for (int64_t j = 0; j < in; ++j)
                        exact += (W[i * in + j] >= 0.f ? 1.0 : -1.0) * double(xa[r * in + j]);
                    const double e = std::abs(double(y[std::size_t(r * out + i)]) - exact) / bound;
                    worst = std::max(worst, e);
                    typical += e / double(rows * out);
                }
            }
            CHECK(worst <= 1.0 + 1e-6);
            // Independent roundings: ~sqrt(in / 3) / in of the bound on average; a wrong bit or a
            // missed column costs |q_j| d, which at these sizes is far above this.
            CHECK(typical <= 3.0 / std::sqrt(double(in)));
            if (first.empty())
                first = y;
            else
                CHECK(y == first);
        }
    }
}

TEST_CASE("sign_matmul_q8 with 2 threads equals 1 thread bit for bit") {
    Rng rng(24);
    for (int64_t rows : {1, 7, 19})
        for (SignKernel k : q8_runnable_kernels()) {
            const int64_t out = 101, in = 2300;
            const auto W = q8_weights(out, in, rng);
            const PackedSigns P = kernels::pack_signs(W.data(), out, in);
            const auto xa = q8_activations(rows, in, rng);
            std::vector<float> one(std::size_t(rows * out)), two(std::size_t(rows * out));
            ParallelMinWork fork_always(1);
            {
                testing::ThreadCount t(1);
                kernels::sign_matmul_q8(P, xa.data(), rows, one.data(), k);
            }
            {
                testing::ThreadCount t(2);
                kernels::sign_matmul_q8(P, xa.data(), rows, two.data(), k);
            }
            CHECK(one == two);
        }
}

// The prefill panel keeps its sums in 16-bit lanes through a column chunk: the largest sums there
// are (every q = +-127 under every bit set, over widths up to two whole chunks and a tail) must come
// out exact, as must the mixed ones of alternating bits.
TEST_CASE("sign_matmul_q8 sums of all q = +-127 over long rows are exact for every kernel - no 16-bit overflow") {
    for (int64_t in : {kernels::detail::kQ8PanelKC, 2 * kernels::detail::kQ8PanelKC + 64 + 5})
        for (float sign : {1.f, -1.f}) {
            const int64_t out = 5, rows = 2 * kernels::detail::kQ8PanelRows + 1;
            Tensor<float> W({out, in});
            for (int64_t i = 0; i < out; ++i)
                for (int64_t j = 0; j < in; ++j) W[i * in + j] = i == 1 ? float(j % 2 ? -1 : 1) : i == 2 ? -1.f : 1.f;
            const PackedSigns P = kernels::pack_signs(W.data(), out, in);
            std::vector<float> xa(std::size_t(rows * in), sign);  // rounds to q = +-127 everywhere
            const kernels::Q8Rows X = kernels::quantize_rows_q8(xa.data(), rows, in);
            const int32_t all = int32_t(sign) * 127 * int32_t(in), even = int32_t(sign) * 127 * int32_t((in + 1) / 2);
            for (SignKernel k : q8_runnable_kernels()) {
                const std::string kernel = kernels::sign_kernel_name(k);
                CAPTURE(kernel);
                CAPTURE(in);
                std::vector<int32_t> got(std::size_t(rows * out), -999999);
                kernels::sign_matmul_q8_sums(P, X, got.data(), k);
                for (int64_t r = 0; r < rows; ++r) {
                    CHECK(got[std::size_t(r * out + 0)] == all);   // every bit set
                    CHECK(got[std::size_t(r * out + 1)] == even);  // the even columns
                    CHECK(got[std::size_t(r * out + 2)] == 0);     // no bit set
                    CHECK(got[std::size_t(r * out + 4)] == all);
                }
            }
        }
}

TEST_CASE(
    "sign_matmul_q8: zero rows give zeros - a non-finite row gives NaN - rows = 0 - unsupported kernels refused") {
    Rng rng(25);
    const auto W = q8_weights(4, 70, rng);
    const PackedSigns P = kernels::pack_signs(W.data(), 4, 70);
    std::vector<float> x(3 * 70, 0.f);
    x[70 + 5] = std::numeric_limits<float>::infinity();
    x[140 + 9] = std::numeric_limits<float>::quiet_NaN();
    std::vector<float> y(12, 7.f);
    for (SignKernel k : q8_runnable_kernels()) {
        kernels::sign_matmul_q8(P, x.data(), 3, y.data(), k);
        for (int i = 0; i < 4; ++i) {
            CHECK(y[std::size_t(i)] == 0.f);
            CHECK(std::isnan(y[std::size_t(4 + i)]));
            CHECK(std::isnan(y[std::size_t(8 + i)]));
        }
        kernels::sign_matmul_q8(P, nullptr, 0, nullptr, k);
    }
    for (const auto& v : kernels::kSignQ8Variants) {
        if (v.supported()) continue;
        MESSAGE("this CPU cannot run the " << std::string(v.name) << " int8 sign kernel: not tested here");
        CHECK_THROWS_WITH_AS(kernels::sign_matmul_q8(P, x.data(), 1, y.data(), v.id),
                             doctest::Contains("not supported by this CPU"), Error);
    }
    CHECK(kernels::sign_q8_kernel_supported(kernels::sign_q8_kernel()));
}

TEST_CASE("packed layers default to int8 activations - SignActivationsScope switches a thread to float and back") {
    CHECK(kernels::sign_activations() == kernels::SignActivations::Int8);
    {
        kernels::SignActivationsScope scope(kernels::SignActivations::Float);
        CHECK(kernels::sign_activations() == kernels::SignActivations::Float);
    }
    CHECK(kernels::sign_activations() == kernels::SignActivations::Int8);
}
