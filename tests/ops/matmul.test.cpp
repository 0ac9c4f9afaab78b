#include "helpers.hpp"

using namespace bitgrad;
using V = std::vector<Var<double>>;

TEST_CASE("matmul gradcheck: 2-D - batched and shared right operand") {
    CHECK_GRADCHECK([](const V& in) { return matmul(in[0], in[1]); },
                    {testing::randn({3, 4}, 1), testing::randn({4, 5}, 2)});
    CHECK_GRADCHECK([](const V& in) { return matmul(in[0], in[1]); },
                    {testing::randn({2, 3, 3, 4}, 3), testing::randn({2, 3, 4, 2}, 4)});
    CHECK_GRADCHECK([](const V& in) { return matmul(in[0], in[1]); },
                    {testing::randn({2, 3, 4}, 5), testing::randn({4, 2}, 6)});
}

TEST_CASE("linear gradcheck and value against a loop") {
    auto x = testing::randn({2, 3, 5}, 7), w = testing::randn({4, 5}, 8);
    CHECK_GRADCHECK([](const V& in) { return linear(in[0], in[1]); }, {x, w});
    auto y = linear(Var<double>(x), Var<double>(w));
    REQUIRE(y.shape() == Shape{2, 3, 4});
    double ref = 0;
    for (int k = 0; k < 5; ++k) ref += x.at({1, 2, k}) * w.at({3, k});
    CHECK(y.value().at({1, 2, 3}) == doctest::Approx(ref));
    CHECK_THROWS_WITH_AS(linear(Var<double>(x), Var<double>(testing::randn({4, 6}, 1))),
                         doctest::Contains("expected last dim 6"), Error);
    CHECK_THROWS_WITH_AS(matmul(Var<double>(x), Var<double>(w)), doctest::Contains("inner dims"), Error);
}
