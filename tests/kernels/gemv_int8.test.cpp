// gemv_int8 (kernels/gemv_int8.hpp): every variant in kGemvInt8Variants that this CPU runs, against
// the loop in double. Tolerance 1e-6 of sum_j |scale * q * x| per output: float lanes add a few ulps
// of that sum; a dropped tail column or a row mixed up moves an output by a whole product.
#include "helpers.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "bitgrad/kernels/gemv_int8.hpp"

using namespace bitgrad;

TEST_CASE("gemv_int8 equals its reference on odd sizes - every variant this CPU runs") {
    Rng rng(62);
    for (int64_t in : {1, 15, 16, 17, 100, 769})
        for (int64_t out : {1, 3, 37}) {
            std::vector<int8_t> Q(static_cast<std::size_t>(out * in));
            std::vector<float> scale(static_cast<std::size_t>(out)), x(static_cast<std::size_t>(in)),
                y(static_cast<std::size_t>(out));
            for (auto& q : Q) q = int8_t(int(rng.uniform_int(255)) - 127);
            for (auto& s : scale) s = float(rng.uniform(0.001, 0.1));
            for (auto& v : x) v = float(rng.normal());
            std::vector<double> ref(static_cast<std::size_t>(out));
            kernels::gemv_int8_reference(Q.data(), scale.data(), out, in, x.data(), ref.data());
            for (const auto& v : kernels::kGemvInt8Variants) {
                if (!v.supported()) continue;  // the test below names what this CPU skips
                const std::string kernel = v.name;
                CAPTURE(kernel);
                std::fill(y.begin(), y.end(), 1e30f);
                kernels::gemv_int8(Q.data(), scale.data(), out, in, x.data(), y.data(), v.id);
                for (int64_t i = 0; i < out; ++i) {
                    double l1 = 0;
                    for (int64_t j = 0; j < in; ++j)
                        l1 += std::abs(double(Q[std::size_t(i * in + j)]) * x[std::size_t(j)]) * scale[std::size_t(i)];
                    CHECK(std::abs(y[std::size_t(i)] - ref[std::size_t(i)]) <= 1e-6 * l1 + 1e-30);
                }
            }
        }
}

TEST_CASE("gemv_int8_kernel picks the first supported variant and GemvInt8KernelScope overrides it") {
    const kernels::GemvInt8Kernel best = kernels::gemv_int8_kernel();
    CHECK(kernels::variant_of(kernels::kGemvInt8Variants, best).supported());
    for (const auto& v : kernels::kGemvInt8Variants) {
        if (v.supported()) {
            CHECK(v.id == best);  // the list is in preference order: the first supported entry wins
            break;
        }
    }
    for (const auto& v : kernels::kGemvInt8Variants)
        if (!v.supported())
            MESSAGE("this CPU cannot run the " << std::string(v.name) << " gemv_int8 kernel: not tested here");
    {
        kernels::GemvInt8KernelScope scope(kernels::GemvInt8Kernel::Generic);
        CHECK(kernels::gemv_int8_kernel() == kernels::GemvInt8Kernel::Generic);
    }
    CHECK(kernels::gemv_int8_kernel() == best);
    const std::vector<int8_t> Q = {1, -2, 3};
    const std::vector<float> scale = {0.5f}, x = {1.f, 1.f, 1.f};
    std::vector<float> y(1);
    for (const auto& v : kernels::kGemvInt8Variants)
        if (!v.supported())
            CHECK_THROWS_WITH_AS(kernels::gemv_int8(Q.data(), scale.data(), 1, 3, x.data(), y.data(), v.id),
                                 doctest::Contains("not supported by this CPU"), Error);
}
