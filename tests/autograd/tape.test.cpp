#include "helpers.hpp"

using namespace bitgrad;

TEST_CASE("backward accumulates into an input used twice (micrograd's x*x)") {
    Var<double> x(Tensor<double>::from({1}, {3.0}), true);
    Tape tape;
    auto y = sum(mul(x, x));
    tape.backward(y);
    CHECK(x.grad()[0] == doctest::Approx(6.0));
}

TEST_CASE("parameters accumulate gradients across tapes until zero_grad") {
    Var<double> w(Tensor<double>::from({2}, {1.0, -2.0}), true);
    for (int i = 0; i < 3; ++i) {
        Tape tape;
        backward(sum(scale(w, 2.0)));
    }
    CHECK(w.grad()[0] == doctest::Approx(6.0));
    w.zero_grad();
    CHECK(w.grad()[1] == 0.0);
}

TEST_CASE("NoGrad and the absence of a tape record nothing") {
    Var<double> w(Tensor<double>::from({2}, {1.0, 2.0}), true);
    {
        Tape tape;
        NoGrad guard;
        auto y = sum(w);
        CHECK_FALSE(y.requires_grad());
        CHECK(tape.size() == 0);
        CHECK_THROWS_WITH_AS(backward(y), doctest::Contains("does not depend"), Error);
    }
    auto z = sum(w);  // no tape
    CHECK_FALSE(z.requires_grad());
}

TEST_CASE("misuse is reported clearly") {
    Var<double> w(Tensor<double>::from({2}, {1.0, 2.0}), true);
    SUBCASE("backward twice") {
        Tape tape;
        auto y = sum(mul(w, w));
        tape.backward(y);
        CHECK_THROWS_WITH_AS(tape.backward(y), doctest::Contains("twice"), Error);
    }
    SUBCASE("a Var from a dead tape") {
        Var<double> h;
        {
            Tape tape;
            h = scale(w, 2.0);
        }
        Tape tape2;
        CHECK_THROWS_WITH_AS(sum(h), doctest::Contains("no longer exists"), Error);
    }
    SUBCASE("seed gradient of the wrong shape, and a non-scalar loss without a seed") {
        Tape tape;
        auto y = scale(w, 2.0);
        CHECK_THROWS_WITH_AS(backward(y), doctest::Contains("expected a scalar"), Error);
        CHECK_THROWS_WITH_AS(backward(y, Tensor<double>::ones({3})), doctest::Contains("[2]"), Error);
    }
}

TEST_CASE("intermediate gradients are freed unless retained") {
    Var<double> w(Tensor<double>::from({2}, {1.0, 2.0}), true);
    Tape tape;
    auto h = scale(w, 3.0);
    auto kept = scale(w, 5.0).retain_grad();
    tape.backward(sum(add(h, kept)));
    CHECK_FALSE(h.grad().defined());
    REQUIRE(kept.grad().defined());
    CHECK(kept.grad()[0] == 1.0);
    CHECK(w.grad()[0] == doctest::Approx(8.0));
}

TEST_CASE("gradcheck catches a wrong backward") {
    // An op whose backward is deliberately off by a factor: gradcheck must fail on it.
    auto broken_square = [](const std::vector<Var<double>>& in) {
        const Var<double>& x = in[0];
        Tensor<double> y = x.value().clone();
        for (auto& v : y) v = v * v;
        return record_op("broken_square", std::move(y), {x}, [x](const Tensor<double>& g) {
            auto* gx = grad_sink(x);
            for (int64_t i = 0; i < g.numel(); ++i) (*gx)[i] += 3.0 * x.value()[i] * g[i];  // should be 2x
        });
    };
    auto r = gradcheck(broken_square, {testing::randn({5}, 1)});
    CHECK_FALSE(r.ok);
    CHECK(r.message.find("analytic") != std::string::npos);
}
