#include "helpers.hpp"

using namespace bitgrad;
using V = std::vector<Var<double>>;

// The surrogate function of an estimator as a differentiable op built from the test's own loop,
// so finite differences have something smooth to differentiate.
static Var<double> surrogate(const Var<double>& x, Ste ste) {
    Tensor<double> y = x.value().clone();
    for (auto& v : y) v = ste_surrogate(ste, v);
    return Var<double>(y);
}

TEST_CASE("sign forward: +1 for x >= 0 (sign(0) = +1) - -1 below") {
    Var<double> x(Tensor<double>::from({4}, {-2.0, -0.0, 0.0, 0.5}));
    auto y = sign(x);
    CHECK(y.value()[0] == -1);
    CHECK(y.value()[1] == 1);  // -0.0 >= 0
    CHECK(y.value()[2] == 1);
    CHECK(y.value()[3] == 1);
}

TEST_CASE("every straight-through estimator's gradient equals its surrogate's derivative") {
    // Inputs spread over [-2, 2] but kept away from the kinks at 0 and +-1 where the surrogate is
    // not differentiable.
    Tensor<double> x =
        Tensor<double>::from({2, 6}, {-1.9, -1.3, -0.8, -0.45, -0.1, 0.05, 0.2, 0.55, 0.9, 1.2, 1.7, -0.6});
    for (Ste ste : {Ste::Identity, Ste::Clipped, Ste::ApproxSign}) {
        CAPTURE(std::string(ste_name(ste)));
        CHECK_GRADCHECK([ste](const V& in) { return sign(in[0], ste); }, {x}, GradcheckOptions{},
                        [ste](const V& in) { return surrogate(in[0], ste); });
    }
}

TEST_CASE("the estimators differ where they should") {
    Var<double> x(Tensor<double>::from({3}, {0.5, 1.5, -3.0}), true);
    auto grads = [&](Ste ste) {
        x.clear_grad();
        Tape tape;
        backward(sum(sign(x, ste)));
        return x.grad().clone();
    };
    auto id = grads(Ste::Identity), cl = grads(Ste::Clipped), ap = grads(Ste::ApproxSign);
    CHECK(id[1] == 1.0);
    CHECK(cl[1] == 0.0);
    CHECK(cl[0] == 1.0);
    CHECK(ap[0] == doctest::Approx(1.0));  // 2 - 2 * 0.5
    CHECK(ap[2] == 0.0);
}
