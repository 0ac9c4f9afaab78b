#include "helpers.hpp"

#include <cmath>

using namespace bitgrad;

namespace {
struct OneParam : nn::Module<double> {
    Var<double> w = register_parameter("w", Tensor<double>::from({2}, {1.0, -2.0}), nn::ParamKind::Dense);
};
}  // namespace

TEST_CASE("AdamW matches a step computed by hand") {
    OneParam m;
    optim::AdamWOptions o;
    o.lr = 0.1;
    o.beta1 = 0.9;
    o.beta2 = 0.95;
    o.eps = 1e-8;
    o.weight_decay = 0.1;
    optim::AdamW<double> opt(optim::param_groups(m, o.weight_decay), o);
    m.w.grad() = Tensor<double>::from({2}, {0.5, 0.25});
    opt.step(0.1);
    // Step 1: m = 0.1 g, v = 0.05 g^2, m_hat = g, v_hat = g^2 -> update = g/|g| = 1 (eps aside).
    // w = w (1 - lr wd) - lr * 1 = 1 * 0.99 - 0.1 = 0.89;   -2 * 0.99 - 0.1 = -2.08
    const double eps = 1e-8;
    CHECK(m.w.value()[0] == doctest::Approx(0.99 - 0.1 * 0.5 / (0.5 + eps)).epsilon(1e-12));
    CHECK(m.w.value()[1] == doctest::Approx(-1.98 - 0.1 * 0.25 / (0.25 + eps)).epsilon(1e-12));
    // Step 2 with g = (-0.5, 0.25): m = 0.9*0.05 + 0.1*(-0.5) = -0.005, v = 0.95*0.0125 + 0.05*0.25 = 0.024375
    // m_hat = -0.005/0.19, v_hat = 0.024375/0.0975 = 0.25 -> update = -0.0263158/0.5 = -0.0526316
    m.w.grad() = Tensor<double>::from({2}, {-0.5, 0.25});
    opt.step(0.1);
    const double w1 = 0.99 - 0.1 * 0.5 / (0.5 + eps);
    const double update = (-0.005 / 0.19) / (std::sqrt(0.024375 / 0.0975) + eps);
    CHECK(m.w.value()[0] == doctest::Approx(w1 * 0.99 - 0.1 * update).epsilon(1e-12));
    CHECK(opt.step_count() == 2);
}

TEST_CASE("parameter groups: no decay on norms and scales when asked") {
    Rng rng(1);
    nn::FbiLlama<float> model(nn::LlamaConfig::preset("tiny"), rng);
    auto groups = optim::param_groups(model, 0.1, /*decay_norms_and_scales=*/false);
    REQUIRE(groups.size() == 2);
    CHECK(groups[1].weight_decay == 0.0);
    for (auto& p : groups[1].params) CHECK((p.kind == nn::ParamKind::Norm || p.kind == nn::ParamKind::Scale));
    CHECK(optim::param_groups(model, 0.1).size() == 1);
}

TEST_CASE("cosine schedule: warm-up, peak, midpoint, floor") {
    optim::CosineSchedule s{1e-3, 1e-4, 10, 110};
    CHECK(s(1) == doctest::Approx(1e-4));
    CHECK(s(10) == doctest::Approx(1e-3));
    CHECK(s(60) == doctest::Approx(1e-4 + 0.9e-3 * 0.5));
    CHECK(s(110) == doctest::Approx(1e-4));
    CHECK(s(500) == doctest::Approx(1e-4));
    CHECK_THROWS_AS(s(0), Error);
}

TEST_CASE("clip_grad_norm scales to the max norm and reports the norm before") {
    Var<double> a(Tensor<double>::zeros({2}), true), b(Tensor<double>::zeros({1}), true);
    a.grad() = Tensor<double>::from({2}, {3.0, 0.0});
    b.grad() = Tensor<double>::from({1}, {4.0});
    CHECK(optim::clip_grad_norm<double>({a, b}, 1.0) == doctest::Approx(5.0));
    CHECK(a.grad()[0] == doctest::Approx(0.6).epsilon(1e-5));
    CHECK(b.grad()[0] == doctest::Approx(0.8).epsilon(1e-5));
    b.grad()[0] = std::nan("");
    CHECK(std::isnan(optim::clip_grad_norm<double>({a, b}, 1.0)));
}
