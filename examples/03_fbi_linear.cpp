// 03_fbi_linear: inside an FBI-Linear layer.
//
// An FBI-Linear layer keeps a latent float matrix W [out, in] and two vectors per input column,
// alpha (wscale) and beta (wbias). The weight it actually multiplies by is
//     W_hat[i, j] = alpha[j] * sign(W[i, j]) + beta[j]
// so every column of W_hat holds only two values, beta + alpha and beta - alpha. This program
//   1. builds a layer and shows its "xnor" initialisation,
//   2. checks that the folded form  y = sign(W) (alpha * x) + (beta . x)  gives the same output,
//   3. trains it (AdamW-free: plain SGD) to imitate a full-precision layer, printing how many
//      signs flip per step: binarized training moves weights by flipping signs.
#include <bitgrad/bitgrad.hpp>
#include <cmath>
#include <cstdio>

using namespace bitgrad;

int main() {
    const int64_t in = 16, out = 8;
    Rng rng(7);

    // 1. A binarized layer, initialised from a Normal(0, 0.5) latent W.
    nn::FBILinear<float> layer(in, out, rng, /*init_std=*/0.5);
    std::printf("column 0 of W:     ");
    for (int64_t i = 0; i < out; ++i) std::printf("%+.2f ", double(layer.weight.value().at({i, 0})));
    std::printf("\nxnor init:         beta[0] = mean = %+.3f, alpha[0] = mean |W - beta| = %.3f\n",
                double(layer.wbias.value()[0]), double(layer.wscale.value()[0]));
    Tensor<float> w_hat = layer.effective_weight();
    std::printf("column 0 of W_hat: ");
    for (int64_t i = 0; i < out; ++i) std::printf("%+.2f ", double(w_hat.at({i, 0})));
    std::printf("  (two values: beta +- alpha)\n");

    // 2. Materialized and folded forward passes agree.
    Var<float> x(Tensor<float>::randn({4, in}, rng));
    layer.mode = nn::FbiForward::Materialized;
    Tensor<float> y_materialized = layer.forward(x).value();
    layer.mode = nn::FbiForward::Folded;
    Tensor<float> y_folded = layer.forward(x).value();
    std::printf("max |materialized - folded| = %.2e\n", max_abs_diff(y_materialized, y_folded));
    layer.mode = nn::FbiForward::Materialized;

    // 3. Imitate a full-precision layer.
    nn::Linear<float> target(in, out, rng, 0.5);
    const float lr = 0.05f;
    Tensor<float> previous_signs = layer.weight.value().clone();
    for (int step = 1; step <= 60; ++step) {
        Var<float> xb(Tensor<float>::randn({64, in}, rng));
        Tensor<float> yb;
        {
            NoGrad no_grad;
            yb = target.forward(xb).value();
        }
        Tape tape;
        Var<float> diff = sub(layer.forward(xb), Var<float>(yb));
        Var<float> loss = mean(mul(diff, diff));
        tape.backward(loss);
        for (auto* p : {&layer.weight, &layer.wscale, &layer.wbias}) {
            p->value().flat() -= lr * p->grad().flat();
            p->zero_grad();
        }
        if (step % 10 == 0) {
            int64_t flips = 0;
            for (int64_t i = 0; i < layer.weight.numel(); ++i)
                flips += sign_value(layer.weight.value()[i]) != sign_value(previous_signs[i]);
            previous_signs = layer.weight.value().clone();
            std::printf("step %2d  loss %.4f  sign flips since step %2d: %ld of %ld\n", step, double(loss.item()),
                        step - 10, long(flips), long(layer.weight.numel()));
        }
    }
    return 0;
}
