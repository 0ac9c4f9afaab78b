// kernels/softmax.hpp's row log-sum-exp and cross-entropy against plain loops in long double.
#include "helpers.hpp"

#include <cmath>

using namespace bitgrad;

namespace {
long double plain_logsumexp(const std::vector<float>& x, long double k = 1) {
    long double m = -INFINITY, s = 0;
    for (float v : x) m = std::max(m, k * v);
    for (float v : x) s += std::exp(k * v - m);
    return m + std::log(s);
}
}  // namespace

TEST_CASE("logsumexp_row and nll_row equal plain sums - in float and accumulated in double") {
    Rng rng(7);
    for (int64_t n : {1, 7, 64, 1000}) {
        std::vector<float> x(static_cast<std::size_t>(n));
        for (auto& v : x) v = float(rng.normal() * 8.0);
        x[0] = 300.f;  // exp(300) overflows float and double: the row max must come out first
        const long double want = plain_logsumexp(x);
        CHECK(double(kernels::logsumexp_row(x.data(), n)) == doctest::Approx(double(want)).epsilon(1e-6));
        CHECK(kernels::logsumexp_row<float, double>(x.data(), n) == doctest::Approx(double(want)).epsilon(1e-14));
        CHECK(kernels::logsumexp_row<float, double>(x.data(), n, 0.5) ==
              doctest::Approx(double(plain_logsumexp(x, 0.5L))).epsilon(1e-14));
        for (int32_t label : {int32_t(0), int32_t(n - 1)}) {
            const long double nll = want - x[std::size_t(label)];
            CHECK(kernels::nll_row<float, double>(x.data(), n, label) ==
                  doctest::Approx(double(nll)).epsilon(1e-12).scale(1.0));
        }
    }
    std::vector<float> inf_row = {1.f, INFINITY, 2.f};
    CHECK(std::isinf(kernels::logsumexp_row<float, double>(inf_row.data(), 3)));
}
