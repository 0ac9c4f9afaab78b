#include "helpers.hpp"

using namespace bitgrad;
using V = std::vector<Var<double>>;

TEST_CASE("sum and mean over an axis and in total - gradcheck") {
    auto x = testing::randn({2, 3, 4}, 11);
    for (int axis : {0, 1, 2, -1}) {
        CAPTURE(axis);
        CHECK_GRADCHECK([axis](const V& in) { return sum(in[0], axis); }, {x});
        CHECK_GRADCHECK([axis](const V& in) { return mean(in[0], axis, true); }, {x});
    }
    CHECK_GRADCHECK([](const V& in) { return sum(in[0]); }, {x});
    CHECK_GRADCHECK([](const V& in) { return mean(in[0]); }, {x});
}

TEST_CASE("sum over an axis matches a loop") {
    Var<double> x(testing::randn({2, 3, 4}, 12));
    auto y = sum(x, 1);
    REQUIRE(y.shape() == Shape{2, 4});
    for (int i = 0; i < 2; ++i)
        for (int k = 0; k < 4; ++k) {
            double s = 0;
            for (int j = 0; j < 3; ++j) s += x.value().at({i, j, k});
            CHECK(y.value().at({i, k}) == doctest::Approx(s));
        }
    CHECK(mean(x, 2, true).shape() == Shape{2, 3, 1});
}

TEST_CASE("reshape and transpose gradcheck and values") {
    auto x = testing::randn({2, 3, 4}, 13);
    CHECK_GRADCHECK([](const V& in) { return reshape(in[0], Shape{4, 6}); }, {x});
    CHECK_GRADCHECK([](const V& in) { return transpose(in[0], 0, 2); }, {x});
    CHECK_GRADCHECK([](const V& in) { return transpose(in[0], 1, -1); }, {x});
    Var<double> v(x);
    auto t = transpose(v, 0, 2);
    REQUIRE(t.shape() == Shape{4, 3, 2});
    CHECK(t.value().at({3, 1, 0}) == x.at({0, 1, 3}));
    CHECK_THROWS_AS(reshape(v, Shape{5, 5}), Error);
}
