#include "helpers.hpp"

#include <cmath>

using namespace bitgrad;
using V = std::vector<Var<double>>;

// W_hat = alpha * surrogate(W) + beta, then x W_hat^T: the smooth function whose exact gradient
// is what the straight-through estimator claims for W (built from the test's own loops).
static Var<double> surrogate_fbi(const V& in, Ste ste) {
    const Tensor<double>&W = in[1].value(), &a = in[2].value(), &b = in[3].value();
    const int64_t out = W.dim(0), n = W.dim(1);
    Tensor<double> w_hat({out, n});
    for (int64_t i = 0; i < out; ++i)
        for (int64_t j = 0; j < n; ++j) w_hat[i * n + j] = a[j] * ste_surrogate(ste, W[i * n + j]) + b[j];
    return linear(in[0], Var<double>(w_hat));
}

// Latent weights away from 0 and from the STE kinks at +-1, so finite differences are smooth.
static Tensor<double> latent_weights(const Shape& s, uint64_t seed) {
    Tensor<double> w = testing::randn(s, seed, 0.5);
    for (auto& v : w) {
        if (std::abs(v) < 0.05) v = v < 0 ? -0.3 : 0.3;
        if (std::abs(std::abs(v) - 1) < 0.05) v *= 1.2;
    }
    return w;
}

TEST_CASE("fbi_linear gradcheck: x - alpha - beta exactly and W through each STE") {
    auto x = testing::randn({2, 3, 5}, 1), W = latent_weights({4, 5}, 2), a = testing::randn({1, 5}, 3),
         b = testing::randn({1, 5}, 4);
    // W only: the surrogate changes the forward, so alpha's gradient there is sum G * surrogate(W).
    GradcheckOptions only_W;
    only_W.check = {false, true, false, false};
    for (Ste ste : {Ste::Identity, Ste::Clipped, Ste::ApproxSign}) {
        CAPTURE(std::string(ste_name(ste)));
        CHECK_GRADCHECK([ste](const V& in) { return fbi_linear(in[0], in[1], in[2], in[3], ste); }, {x, W, a, b},
                        only_W, [ste](const V& in) { return surrogate_fbi(in, ste); });
    }
    // x, alpha, beta against the real (sign) forward: the STE plays no part for them.
    GradcheckOptions only_smooth;
    only_smooth.check = {true, false, true, true};
    CHECK_GRADCHECK([](const V& in) { return fbi_linear(in[0], in[1], in[2], in[3]); }, {x, W, a, b}, only_smooth);
}

TEST_CASE("fbi_linear gradients equal the spec's closed forms") {
    // G = g^T x; dx = g W_hat; dW = G * alpha; dalpha_j = sum_i G_ij sign(W_ij); dbeta_j = sum_i G_ij.
    const int64_t N = 6, in = 5, out = 3;
    Var<double> x(testing::randn({N, in}, 5), true), W(latent_weights({out, in}, 6), true),
        a(testing::randn({1, in}, 7), true), b(testing::randn({1, in}, 8), true);
    auto g = testing::randn({N, out}, 9);
    Tape tape;
    backward(fbi_linear(x, W, a, b), g);
    for (int64_t i = 0; i < out; ++i)
        for (int64_t j = 0; j < in; ++j) {
            double G = 0;
            for (int64_t n = 0; n < N; ++n) G += g[n * out + i] * x.value()[n * in + j];
            CHECK(W.grad()[i * in + j] == doctest::Approx(G * a.value()[j]));
        }
    for (int64_t j = 0; j < in; ++j) {
        double da = 0, db = 0;
        for (int64_t i = 0; i < out; ++i) {
            double G = 0;
            for (int64_t n = 0; n < N; ++n) G += g[n * out + i] * x.value()[n * in + j];
            da += G * sign_value(W.value()[i * in + j]);
            db += G;
        }
        CHECK(a.grad()[j] == doctest::Approx(da));
        CHECK(b.grad()[j] == doctest::Approx(db));
    }
    // dx = g W_hat, W_hat_ij = alpha_j sign(W_ij) + beta_j.
    for (int64_t n = 0; n < N; ++n)
        for (int64_t j = 0; j < in; ++j) {
            double dx = 0;
            for (int64_t i = 0; i < out; ++i)
                dx += g[n * out + i] * (a.value()[j] * sign_value(W.value()[i * in + j]) + b.value()[j]);
            CHECK(x.grad()[n * in + j] == doctest::Approx(dx));
        }
}
