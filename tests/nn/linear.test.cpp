#include "helpers.hpp"

#include <cmath>

using namespace bitgrad;

TEST_CASE("FBILinear xnor initialisation: beta = column mean - alpha = mean |W - beta|") {
    Rng rng(1);
    nn::FBILinear<double> layer(5, 7, rng);
    const auto& W = layer.weight.value();
    for (int64_t j = 0; j < 5; ++j) {
        double mean = 0, dev = 0;
        for (int64_t i = 0; i < 7; ++i) mean += W.at({i, j}) / 7;
        for (int64_t i = 0; i < 7; ++i) dev += std::abs(W.at({i, j}) - mean) / 7;
        CHECK(layer.wbias.value()[j] == doctest::Approx(mean));
        CHECK(layer.wscale.value()[j] == doctest::Approx(dev));
    }
    CHECK(layer.wscale.shape() == Shape{1, 5});
}

TEST_CASE("FBILinear: folded form equals the materialized form - values and all gradients") {
    Rng rng(2);
    nn::FBILinear<double> layer(6, 4, rng, 0.5);
    Rng data(3);
    auto x = Tensor<double>::randn({2, 3, 6}, data);
    auto r = Tensor<double>::randn({2, 3, 4}, data);
    auto run = [&](nn::FbiForward mode) {
        layer.mode = mode;
        layer.zero_grad();
        Var<double> xv(x.clone(), true);
        Tape tape;
        auto y = layer.forward(xv);
        backward(y, r);
        return std::vector<Tensor<double>>{y.value(), xv.grad().clone(), layer.weight.grad().clone(),
                                           layer.wscale.grad().clone(), layer.wbias.grad().clone()};
    };
    auto m = run(nn::FbiForward::Materialized), f = run(nn::FbiForward::Folded);
    for (std::size_t i = 0; i < m.size(); ++i) {
        CAPTURE(i);
        CHECK(max_abs_diff(m[i], f[i]) < 1e-12);
    }
}

TEST_CASE("FBILinear equals a plain Linear holding W_hat") {
    Rng rng(4);
    nn::FBILinear<float> fbi(8, 5, rng);
    nn::Linear<float> dense(8, 5, rng);
    dense.weight.value().copy_from(fbi.effective_weight());
    Var<float> x(Tensor<float>::randn({3, 8}, rng));
    auto a = fbi.forward(x), b = dense.forward(x);
    CHECK(max_abs_diff(a.value(), b.value()) < 1e-6);
    // W_hat takes exactly two values per column: beta +- alpha.
    auto w_hat = fbi.effective_weight();
    for (int64_t i = 0; i < 5; ++i)
        for (int64_t j = 0; j < 8; ++j)
            CHECK(std::abs(std::abs(w_hat.at({i, j}) - fbi.wbias.value()[j]) - fbi.wscale.value()[j]) < 1e-6);
}

TEST_CASE("Module: names - kinds - state dict round trip and strict loading errors") {
    Rng rng(5);
    nn::FBILinear<float> a(4, 3, rng), b(4, 3, rng);
    auto names = a.named_parameters();
    REQUIRE(names.size() == 3);
    CHECK(names[0].name == "weight");
    CHECK(names[1].name == "wscale");
    CHECK(names[1].kind == ParamKind::Scale);
    b.load_state_dict(a.state_dict());
    CHECK(max_abs_diff(a.weight.value(), b.weight.value()) == 0);
    auto dict = a.state_dict();
    dict["extra"] = Tensor<float>::zeros({1});
    dict.erase("wbias");
    dict["weight"] = Tensor<float>::zeros({3, 5});
    try {
        b.load_state_dict(dict);
        FAIL("expected an error");
    } catch (const Error& e) {
        std::string msg = e.what();
        CHECK(msg.find("missing:\n  wbias [1, 4]") != std::string::npos);
        CHECK(msg.find("weight: expected [3, 4], got [3, 5]") != std::string::npos);
        CHECK(msg.find("extra") != std::string::npos);
    }
}
