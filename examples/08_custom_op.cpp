// 08_custom_op: write a differentiable op of your own, check its gradient, train with it.
//
// Every op in include/bitgrad/ops/ is written with three public calls (autograd/var.hpp), and an
// op of your own uses the same three:
//   record_op(name, output, {inputs...}, backward)   returns the output; on a tape, keeps backward
//   grad_sink(x)                                     x's gradient buffer to add into (nullptr: none needed)
//   accumulate_grad(x, g)                            adds a whole gradient tensor into x's
// and gradcheck() (autograd/gradcheck.hpp) compares its backward with finite differences.
//
// The op: a binarized weight with a learnable scale per output row (XNOR-Net's alpha * sign(W);
// FBI-LLM scales per input column instead), trained through an estimator that bitgrad's table
// (ops/sign.hpp) does not have: the derivative of tanh(k w), which fades for latent weights far
// from 0, as the clipped STE does, but smoothly.
//
// Build and run:  cmake --build build --target 08_custom_op && ./build/examples/08_custom_op
#include <algorithm>
#include <bitgrad/bitgrad.hpp>
#include <cmath>
#include <cstdio>
#include <vector>

using namespace bitgrad;

// scaled_sign(w, alpha, k): y[i, j] = alpha[i] * sign(w[i, j])      w: [out, in], alpha: [out] -> y: [out, in]
//   backward (straight-through in w: the surrogate is alpha[i] * tanh(k w[i, j])):
//     dalpha[i] += sum_j g[i, j] * sign(w[i, j])                       exact: y is linear in alpha
//     dw[i, j]  += g[i, j] * alpha[i] * k * (1 - tanh(k w[i, j])^2)    the surrogate's derivative
template <class T>
Var<T> scaled_sign(const Var<T>& w, const Var<T>& alpha, T k) {
    BITGRAD_CHECK(w.shape().ndim() == 2 && alpha.shape() == Shape{w.dim(0)},
                  "scaled_sign: w " << w.shape() << " and alpha " << alpha.shape() << " must be [out, in] and [out]");
    const int64_t out = w.dim(0), in = w.dim(1);
    Tensor<T> y({out, in});
    for (int64_t i = 0; i < out; ++i)
        for (int64_t j = 0; j < in; ++j) y[i * in + j] = alpha.value()[i] * sign_value(w.value()[i * in + j]);
    // The closure captures what backward reads (w and alpha: Vars are shared handles) and adds (+=)
    // into the gradients: an input used elsewhere too keeps the other contributions.
    return record_op("scaled_sign", std::move(y), {w, alpha}, [w, alpha, k, out, in](const Tensor<T>& g) {
        Tensor<T>* dw = grad_sink(w);  // nullptr when w needs no gradient
        Tensor<T>* dalpha = grad_sink(alpha);
        for (int64_t i = 0; i < out; ++i)
            for (int64_t j = 0; j < in; ++j) {
                const T wij = w.value()[i * in + j], gij = g[i * in + j];
                if (dalpha) (*dalpha)[i] += gij * sign_value(wij);
                if (dw) {
                    const T t = std::tanh(k * wij);
                    (*dw)[i * in + j] += gij * alpha.value()[i] * k * (T(1) - t * t);
                }
            }
    });
}

int main() {
    // 1. Check the backward in double. gradcheck seeds it with a random cotangent r and compares
    //    with central differences of sum(y * r) (never of sum(y): for a normalisation that sum is
    //    constant and the check would pass while testing nothing). alpha's gradient is exact, so it
    //    is checked against the op itself; w's is the estimator's, so against the surrogate
    //    alpha * tanh(k w) (numeric_f): the claim the straight-through estimator makes.
    const double k = 3.0;
    Rng rng(8);
    const Tensor<double> w0 = Tensor<double>::randn({4, 5}, rng, 0.5);
    const Tensor<double> alpha0 = Tensor<double>::uniform({4}, rng, 0.5, 2.0);
    auto op = [k](const std::vector<Var<double>>& in) { return scaled_sign(in[0], in[1], k); };
    auto surrogate = [k](const std::vector<Var<double>>& in) {  // values only: gradcheck runs it under NoGrad
        const Tensor<double>& w = in[0].value();
        const Tensor<double>& alpha = in[1].value();
        Tensor<double> y(w.shape());
        for (int64_t i = 0; i < y.numel(); ++i) y[i] = alpha[i / w.dim(1)] * std::tanh(k * w[i]);
        return Var<double>(y);
    };
    GradcheckOptions alpha_only, w_only;
    alpha_only.check = {false, true};
    w_only.check = {true, false};
    const GradcheckResult checks[] = {gradcheck(op, {w0, alpha0}, alpha_only),
                                      gradcheck(op, {w0, alpha0}, w_only, surrogate)};
    const char* names[] = {"d alpha (exact)", "d w (tanh STE, against its surrogate)"};
    for (int c = 0; c < 2; ++c) {
        if (!checks[c].ok) {
            std::fprintf(stderr, "gradcheck of %s failed: %s\n", names[c], checks[c].message.c_str());
            return 1;
        }
        std::printf("gradcheck passed: %-38s %lld elements, max |analytic - numeric| %.1e\n", names[c],
                    (long long)checks[c].elements, checks[c].max_abs_error);
    }

    // 2. Train with it, in float: recover a secret layer whose rows are c[i] * (+-1 pattern).
    const int64_t in = 48, out = 16, batch = 128;
    Tensor<float> secret = Tensor<float>::randn({out, in}, rng);
    for (float& s : secret) s = sign_value(s);
    const Tensor<float> secret_scale = Tensor<float>::uniform({out}, rng, 0.5f, 2.0f);
    for (int64_t i = 0; i < out; ++i)
        for (int64_t j = 0; j < in; ++j) secret[i * in + j] *= secret_scale[i];

    Var<float> W(Tensor<float>::randn({out, in}, rng, 0.1), /*requires_grad=*/true);
    Var<float> alpha(Tensor<float>::ones({out}), /*requires_grad=*/true);
    const float lr = 0.02f;
    int64_t agree = 0;
    float scale_error = 0;
    for (int step = 0; step <= 200; ++step) {
        Var<float> x(Tensor<float>::randn({batch, in}, rng));
        Var<float> y(Tensor<float>::zeros({batch, out}));
        {
            NoGrad no_grad;
            y = linear(x, Var<float>(secret));
        }
        Tape tape;
        Var<float> diff = sub(linear(x, scaled_sign(W, alpha, float(k))), y);
        Var<float> loss = mean(mul(diff, diff));
        tape.backward(loss);
        for (Var<float>* p : {&W, &alpha}) {  // SGD
            p->value().flat() -= lr * p->grad().flat();
            p->zero_grad();
        }
        agree = 0;
        for (int64_t i = 0; i < W.numel(); ++i) agree += sign_value(W.value()[i]) == sign_value(secret[i]);
        scale_error = 0;
        for (int64_t i = 0; i < out; ++i)
            scale_error = std::max(scale_error, std::abs(alpha.value()[i] - secret_scale[i]));
        if (step % 40 == 0)
            std::printf("step %3d  loss %9.5f  signs recovered %5.1f%%  max |alpha - scale| %.4f\n", step,
                        double(loss.item()), 100.0 * double(agree) / double(W.numel()), double(scale_error));
    }
    const bool learned = agree == W.numel() && scale_error < 0.01f;
    std::printf("%s\n", learned ? "the custom op learned the secret layer" : "the custom op did not learn the layer");
    return learned ? 0 : 1;
}
