#include "helpers.hpp"

#include <cmath>
#include <map>
#include <string>
#include <vector>

using namespace bitgrad;

namespace adamw_test {

struct OneParam : nn::Module<double> {
    Var<double> w = register_parameter("w", Tensor<double>::from({2}, {1.0, -2.0}), ParamKind::Dense);
};

// torch.optim.AdamW's update for one parameter, written out in double (its documented algorithm):
//   p *= 1 - lr * wd;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
struct Reference {
    std::vector<double> p, m, v;
    int t = 0;
    explicit Reference(const Tensor<double>& init) : p(init.begin(), init.end()), m(p.size(), 0.0), v(p.size(), 0.0) {}
    void step(const Tensor<double>& g, double lr, double wd, double b1, double b2, double eps) {
        ++t;
        const double bc1 = 1 - std::pow(b1, t), bc2 = 1 - std::pow(b2, t);
        for (std::size_t i = 0; i < p.size(); ++i) {
            p[i] *= 1 - lr * wd;
            m[i] = b1 * m[i] + (1 - b1) * g[int64_t(i)];
            v[i] = b2 * v[i] + (1 - b2) * g[int64_t(i)] * g[int64_t(i)];
            p[i] -= lr / bc1 * m[i] / (std::sqrt(v[i]) / std::sqrt(bc2) + eps);
        }
    }
};

// Largest |a - b| / (|b| + 1e-3) over a tensor and a reference vector.
double rel_error(const Tensor<double>& a, const std::vector<double>& b) {
    double worst = 0;
    for (int64_t i = 0; i < a.numel(); ++i)
        worst = std::max(worst, std::abs(a[i] - b[std::size_t(i)]) / (std::abs(b[std::size_t(i)]) + 1e-3));
    return worst;
}

}  // namespace adamw_test

TEST_CASE("AdamW matches a step computed by hand") {
    adamw_test::OneParam m;
    optim::AdamWOptions o;
    o.lr = 0.1;
    o.beta1 = 0.9;
    o.beta2 = 0.95;
    o.eps = 1e-8;
    o.weight_decay = 0.1;
    optim::AdamW<double> opt(optim::param_groups(m.named_parameters(), o.weight_decay), o);
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

TEST_CASE("AdamW uses the lr passed to step and the group's weight decay over 3 steps") {
    // The options carry an lr and a weight decay that must NOT be used: step(lr) comes from the
    // schedule and the decay from the parameter group.
    Rng rng(1);
    auto c = nn::LlamaConfig::preset("tiny");
    c.vocab_size = 13;
    nn::FbiLlama<double> model(c, rng);
    optim::AdamWOptions o;
    o.lr = 0.5;
    o.weight_decay = 0.9;
    o.beta1 = 0.8;
    o.beta2 = 0.99;
    o.eps = 1e-6;
    const double group_wd = 0.05;
    optim::AdamW<double> opt(optim::param_groups(model.named_parameters(), group_wd), o);
    auto params = model.named_parameters();
    std::vector<adamw_test::Reference> ref;
    for (auto& p : params) ref.emplace_back(p.var.value());
    const double lrs[3] = {1e-2, 3e-2, 2e-2};
    for (int s = 0; s < 3; ++s) {
        for (std::size_t k = 0; k < params.size(); ++k) {
            params[k].var.grad() = testing::randn(params[k].var.shape(), 100 * uint64_t(s) + k, 0.1);
            ref[k].step(params[k].var.grad(), lrs[s], group_wd, o.beta1, o.beta2, o.eps);
        }
        opt.step(lrs[s]);
    }
    CHECK(opt.step_count() == 3);
    for (std::size_t k = 0; k < params.size(); ++k) {
        CAPTURE(params[k].name);
        CHECK(adamw_test::rel_error(params[k].var.value(), ref[k].p) < 1e-12);
    }
    // The moments too, as state() names them.
    auto state = opt.state();
    REQUIRE(state.size() == 2 * params.size());
    for (std::size_t k = 0; k < params.size(); ++k) {
        CHECK(state[2 * k].first == params[k].name + ".exp_avg");
        CHECK(state[2 * k + 1].first == params[k].name + ".exp_avg_sq");
        CHECK(adamw_test::rel_error(state[2 * k].second, ref[k].m) < 1e-12);
        CHECK(adamw_test::rel_error(state[2 * k + 1].second, ref[k].v) < 1e-12);
    }
}

TEST_CASE("param_groups without norm decay exempts exactly Norm and Scale parameters") {
    Rng rng(2);
    auto c = nn::LlamaConfig::preset("tiny");
    c.vocab_size = 13;
    nn::FbiLlama<double> model(c, rng);
    const double wd = 0.3, lr = 2e-2;
    optim::AdamWOptions o;
    o.weight_decay = 0.0;  // unused: the groups carry their own
    auto params = model.named_parameters();
    for (bool decay_all : {false, true}) {
        CAPTURE(decay_all);
        // Fresh weights each round (the first round moved them).
        Rng init(3);
        for (auto& p : params) p.var.value().copy_from(testing::randn(p.var.shape(), init.next_u64(), 0.5));
        optim::AdamW<double> opt(optim::param_groups(model.named_parameters(), wd, decay_all), o);
        std::vector<adamw_test::Reference> decayed, plain;
        for (auto& p : params) {
            decayed.emplace_back(p.var.value());
            plain.emplace_back(p.var.value());
        }
        for (int s = 0; s < 3; ++s) {
            for (std::size_t k = 0; k < params.size(); ++k) {
                params[k].var.grad() = testing::randn(params[k].var.shape(), 1000 + 100 * uint64_t(s) + k, 0.1);
                decayed[k].step(params[k].var.grad(), lr, wd, o.beta1, o.beta2, o.eps);
                plain[k].step(params[k].var.grad(), lr, 0.0, o.beta1, o.beta2, o.eps);
            }
            opt.step(lr);
        }
        std::map<ParamKind, int> seen;
        for (std::size_t k = 0; k < params.size(); ++k) {
            CAPTURE(params[k].name);
            const ParamKind kind = params[k].kind;
            seen[kind]++;
            const bool exempt = !decay_all && (kind == ParamKind::Norm || kind == ParamKind::Scale);
            const auto& want = exempt ? plain[k].p : decayed[k].p;
            const auto& other = exempt ? decayed[k].p : plain[k].p;
            CHECK(adamw_test::rel_error(params[k].var.value(), want) < 1e-12);
            CHECK(adamw_test::rel_error(params[k].var.value(), other) > 1e-6);  // the two references differ clearly
        }
        // Every kind is present, so each rule above was exercised.
        for (auto kind : {ParamKind::Dense, ParamKind::Binary, ParamKind::Scale, ParamKind::Norm, ParamKind::Embedding})
            CHECK(seen[kind] > 0);
    }
}

TEST_CASE("AdamW skips a parameter without a gradient: no decay and no moment update") {
    adamw_test::OneParam a, b;
    optim::AdamWOptions o;
    std::vector<optim::ParamGroup<double>> groups = optim::param_groups(a.named_parameters(), 0.5),
                                           more = optim::param_groups(b.named_parameters(), 0.5);
    for (auto& p : more[0].params) groups[0].params.push_back(p);
    optim::AdamW<double> opt(groups, o);
    a.w.grad() = Tensor<double>::from({2}, {0.3, -0.2});
    opt.step(1e-2);
    CHECK(b.w.value()[0] == 1.0);
    CHECK(b.w.value()[1] == -2.0);
    CHECK(a.w.value()[0] != 1.0);
    auto state = opt.state();
    for (int64_t i = 0; i < 2; ++i) CHECK(state[2].second[i] == 0.0);
}

TEST_CASE("parameter groups: no decay on norms and scales when asked") {
    Rng rng(1);
    nn::FbiLlama<float> model(nn::LlamaConfig::preset("tiny"), rng);
    auto groups = optim::param_groups(model.named_parameters(), 0.1, /*decay_norms_and_scales=*/false);
    REQUIRE(groups.size() == 2);
    CHECK(groups[1].weight_decay == 0.0);
    for (auto& p : groups[1].params) CHECK((p.kind == ParamKind::Norm || p.kind == ParamKind::Scale));
    CHECK(optim::param_groups(model.named_parameters(), 0.1).size() == 1);
}

TEST_CASE("cosine schedule: warm-up peak midpoint and floor") {
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
