#include "helpers.hpp"

#include <cmath>

using namespace bitgrad;
using V = std::vector<Var<double>>;

TEST_CASE("softmax and log_softmax gradcheck and stable for large logits") {
    auto x = testing::randn({3, 7}, 1, 3.0);
    CHECK_GRADCHECK([](const V& in) { return softmax(in[0]); }, {x});
    CHECK_GRADCHECK([](const V& in) { return log_softmax(in[0]); }, {x});
    Var<float> big(Tensor<float>::from({1, 3}, {1000.f, 999.f, -1000.f}));
    auto y = softmax(big);
    CHECK(std::isfinite(y.value()[0]));
    CHECK(y.value()[0] == doctest::Approx(1 / (1 + std::exp(-1.0))).epsilon(1e-4));  // lse ~ 1000 in fp32
    CHECK(std::isfinite(log_softmax(big).value()[2]));
}

TEST_CASE("cross_entropy gradcheck - ignore index and errors") {
    auto x = testing::randn({5, 6}, 2, 2.0);
    Tensor<int32_t> labels = Tensor<int32_t>::from({5}, {0, 5, -100, 3, 3});
    CHECK_GRADCHECK([&](const V& in) { return cross_entropy(in[0], labels); }, {x});
    Tensor<int32_t> bad = Tensor<int32_t>::from({5}, {0, 6, 1, 1, 1});
    CHECK_THROWS_WITH_AS(cross_entropy(Var<double>(x), bad), doctest::Contains("label 6 at row 1"), Error);
    Tensor<int32_t> all_ignored = Tensor<int32_t>::full({5}, -100);
    CHECK(cross_entropy(Var<double>(x), all_ignored).item() == 0.0);
}

TEST_CASE("cross_entropy equals -mean(log_softmax picked at the labels) - values and gradients") {
    auto x = testing::randn({4, 6}, 3, 2.0);
    Tensor<int32_t> labels = Tensor<int32_t>::from({4}, {1, -100, 5, 0});
    Tensor<double> onehot = Tensor<double>::zeros({4, 6});
    for (int n = 0; n < 4; ++n)
        if (labels[n] >= 0) onehot.at({n, labels[n]}) = 1;
    Var<double> a(x.clone(), true), b(x.clone(), true);
    Tape tape;
    auto fused = cross_entropy(a, labels);
    auto composed = scale(sum(mul(log_softmax(b), Var<double>(onehot))), -1.0 / 3.0);
    CHECK(fused.item() == doctest::Approx(composed.item()).epsilon(1e-12));
    backward(add(fused, composed));
    CHECK(max_abs_diff(a.grad(), b.grad()) < 1e-12);
}

TEST_CASE("soft_cross_entropy (AD loss) gradcheck and equality with its composition") {
    auto s = testing::randn({4, 9}, 4, 2.0), t = testing::randn({4, 9}, 5, 2.0);
    for (double tau : {1.0, 2.5}) {
        CAPTURE(tau);
        CHECK_GRADCHECK([&](const V& in) { return soft_cross_entropy(in[0], t, tau); }, {s});
        Var<double> a(s.clone(), true), b(s.clone(), true);
        Tape tape;
        auto fused = soft_cross_entropy(a, t, tau);
        Tensor<double> t_scaled = t.clone();
        t_scaled.flat() /= tau;
        auto p = softmax(Var<double>(t_scaled));
        auto composed = scale(sum(mul(p, log_softmax(scale(b, 1.0 / tau)))), -1.0 / 4.0);
        CHECK(fused.item() == doctest::Approx(composed.item()).epsilon(1e-12));
        backward(add(fused, composed));
        CHECK(max_abs_diff(a.grad(), b.grad()) < 1e-12);
    }
}

TEST_CASE("soft_cross_entropy is minimised at the teacher's distribution (value = teacher entropy)") {
    auto t = testing::randn({3, 5}, 6);
    Var<double> p = softmax(Var<double>(t));
    double entropy = 0;
    for (int64_t i = 0; i < p.numel(); ++i) entropy -= p.value()[i] * std::log(p.value()[i]);
    CHECK(soft_cross_entropy(Var<double>(t), t).item() == doctest::Approx(entropy / 3));
    CHECK(soft_cross_entropy(Var<double>(testing::randn({3, 5}, 7)), t).item() > entropy / 3);
}
