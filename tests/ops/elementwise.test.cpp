#include "helpers.hpp"

using namespace bitgrad;
using V = std::vector<Var<double>>;

TEST_CASE("add - sub - mul gradcheck - same shape and broadcast") {
    const std::vector<std::pair<Shape, Shape>> cases = {
        {{3, 4}, {3, 4}}, {{2, 3, 4}, {4}}, {{2, 3, 4}, {3, 1}}, {{2, 1, 4}, {1, 3, 1}}, {{5}, {}}};
    for (auto [sa, sb] : cases) {
        CAPTURE(sa);
        CAPTURE(sb);
        auto a = testing::randn(sa, 1), b = testing::randn(sb, 2);
        CHECK_GRADCHECK([](const V& in) { return add(in[0], in[1]); }, {a, b});
        CHECK_GRADCHECK([](const V& in) { return sub(in[0], in[1]); }, {a, b});
        CHECK_GRADCHECK([](const V& in) { return mul(in[0], in[1]); }, {a, b});
        CHECK_GRADCHECK([](const V& in) { return mul(in[1], in[0]); }, {a, b});
    }
}

TEST_CASE("broadcast values match an explicit loop") {
    Var<double> a(testing::randn({2, 3, 4}, 3)), b(testing::randn({3, 1}, 4));
    auto y = mul(a, b);
    REQUIRE(y.shape() == Shape{2, 3, 4});
    for (int i = 0; i < 2; ++i)
        for (int j = 0; j < 3; ++j)
            for (int k = 0; k < 4; ++k)
                CHECK(y.value().at({i, j, k}) == a.value().at({i, j, k}) * b.value().at({j, 0}));
    CHECK_THROWS_WITH_AS(add(a, Var<double>(testing::randn({5}, 1))), doctest::Contains("do not broadcast"), Error);
}

TEST_CASE("scale - silu - swiglu gradcheck") {
    auto x = testing::randn({3, 5}, 5, 2.0), y = testing::randn({3, 5}, 6);
    CHECK_GRADCHECK([](const V& in) { return scale(in[0], -0.7); }, {x});
    CHECK_GRADCHECK([](const V& in) { return silu(in[0]); }, {x});
    CHECK_GRADCHECK([](const V& in) { return swiglu(in[0], in[1]); }, {x, y});
}

TEST_CASE("fused swiglu equals silu(a) * b composed - values and gradients") {
    Var<double> a(testing::randn({4, 6}, 7), true), b(testing::randn({4, 6}, 8), true);
    Var<double> a2(a.value().clone(), true), b2(b.value().clone(), true);
    auto r = testing::randn({4, 6}, 9);
    Tape tape;
    auto fused = swiglu(a, b);
    auto composed = mul(silu(a2), b2);
    CHECK(max_abs_diff(fused.value(), composed.value()) < 1e-14);
    backward(sum(mul(add(fused, composed), Var<double>(r))));
    CHECK(max_abs_diff(a.grad(), a2.grad()) < 1e-13);
    CHECK(max_abs_diff(b.grad(), b2.grad()) < 1e-13);
}
