#include "helpers.hpp"

#include <cmath>

using namespace bitgrad;
using V = std::vector<Var<double>>;

TEST_CASE("embedding gathers rows and scatter-adds repeated ids") {
    auto w = testing::randn({6, 3}, 1);
    Tensor<int32_t> ids = Tensor<int32_t>::from({2, 3}, {0, 5, 2, 5, 5, 1});
    CHECK_GRADCHECK([&](const V& in) { return embedding(ids, in[0]); }, {w});
    auto y = embedding(ids, Var<double>(w));
    REQUIRE(y.shape() == Shape{2, 3, 3});
    CHECK(y.value().at({1, 2, 1}) == w.at({1, 1}));
    Tensor<int32_t> bad = Tensor<int32_t>::from({2}, {1, 6});
    CHECK_THROWS_WITH_AS(embedding(bad, Var<double>(w)), doctest::Contains("token id 6 at index 1"), Error);
}

TEST_CASE("rms_norm gradcheck and value") {
    auto x = testing::randn({2, 3, 8}, 2), w = testing::randn({8}, 3);
    CHECK_GRADCHECK([](const V& in) { return rms_norm(in[0], in[1]); }, {x, w});
    auto y = rms_norm(Var<double>(x), Var<double>(w));
    double ss = 0;
    for (int c = 0; c < 8; ++c) ss += x.at({1, 2, c}) * x.at({1, 2, c});
    CHECK(y.value().at({1, 2, 4}) == doctest::Approx(x.at({1, 2, 4}) / std::sqrt(ss / 8 + 1e-5) * w[4]));
    CHECK_THROWS_AS(rms_norm(Var<double>(x), Var<double>(testing::randn({7}, 1))), Error);
}

TEST_CASE("rope gradcheck - rotate-half values and position offset") {
    auto x = testing::randn({2, 5, 3, 8}, 4);
    for (int64_t offset : {0, 7}) CHECK_GRADCHECK([offset](const V& in) { return rope(in[0], 10000.0, offset); }, {x});
    CHECK_GRADCHECK([](const V& in) { return rope(in[0], 500.0); }, {x});
    // Value check of one pair (i = 1, D = 8) at t = 3, b = 1, h = 2.
    Var<double> xv(x);
    auto y = rope(xv);
    const double a = 3 * std::pow(10000.0, -2.0 / 8);
    const double x1 = x.at({1, 3, 2, 1}), x2 = x.at({1, 3, 2, 5});
    CHECK(y.value().at({1, 3, 2, 1}) == doctest::Approx(x1 * std::cos(a) - x2 * std::sin(a)));
    CHECK(y.value().at({1, 3, 2, 5}) == doctest::Approx(x2 * std::cos(a) + x1 * std::sin(a)));
    // Offset p shifts positions: rope(x[:, t]) with offset 2 equals rope of a sequence at t + 2.
    auto shifted = rope(Var<double>(x.slice(0, 1)), 10000.0, 2);
    auto long_x = Tensor<double>::zeros({1, 7, 3, 8});
    for (int t = 0; t < 5; ++t)
        for (int j = 0; j < 24; ++j) long_x[(t + 2) * 24 + j] = x[t * 24 + j];
    auto full = rope(Var<double>(long_x));
    for (int t = 0; t < 5; ++t)
        for (int j = 0; j < 24; ++j)
            CHECK(shifted.value()[t * 24 + j] == doctest::Approx(full.value()[(t + 2) * 24 + j]));
}
