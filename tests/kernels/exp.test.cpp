#include "helpers.hpp"

#include <cmath>
#include <limits>

using namespace bitgrad;

TEST_CASE("exp_fast matches std::exp to ~2 ulp over the float range and keeps NaN and limits sane") {
    double worst = 0;
    // Below about -87 the results are subnormal floats and lose relative precision.
    for (float x = -80.0f; x <= 88.0f; x += 0.0137f) {
        const double ref = std::exp(double(x));
        worst = std::max(worst, std::abs(double(kernels::exp_fast(x)) - ref) / ref);
    }
    CHECK(worst < 3e-7);
    CHECK(kernels::exp_fast(0.f) == 1.f);
    CHECK(std::isnan(kernels::exp_fast(std::numeric_limits<float>::quiet_NaN())));
    CHECK(kernels::exp_fast(-std::numeric_limits<float>::infinity()) < 1e-37f);
    CHECK(kernels::exp_fast(-1000.f) >= 0.f);
    CHECK(std::isfinite(kernels::exp_fast(1000.f)));
    CHECK(kernels::exp(1.0) == std::exp(1.0));  // double: the library's exp
}
