// 01_quickstart: recover a hidden binary weight matrix with a straight-through sign.
//
// A teacher layer y = x S^T uses a secret matrix S of +-1 entries. The student keeps a latent
// float matrix W and computes y_hat = x sign(W)^T. sign() has zero derivative almost everywhere,
// so its backward uses the straight-through estimator: the gradient passes to W as if sign were
// the identity. Plain SGD on W then flips the signs of W until they match S.
//
// Build and run:  cmake --build build --target 01_quickstart && ./build/examples/01_quickstart
#include <bitgrad/bitgrad.hpp>
#include <cstdio>

using namespace bitgrad;

int main() {
    const int64_t in = 64, out = 32, batch = 256;
    Rng rng(2024);  // every random draw in bitgrad comes from a seeded Rng

    // The secret +-1 matrix, and data generated from it.
    Tensor<float> secret = Tensor<float>::randn({out, in}, rng);
    for (float& s : secret) s = sign_value(s);

    // The student: a latent weight W, a leaf Var whose gradient accumulates across tapes.
    Var<float> W(Tensor<float>::randn({out, in}, rng, 0.1), /*requires_grad=*/true);

    const float lr = 0.05f;
    for (int step = 0; step <= 100; ++step) {
        Var<float> x(Tensor<float>::randn({batch, in}, rng));
        Var<float> y(Tensor<float>::zeros({batch, out}));
        {
            NoGrad no_grad;  // the target needs no gradient
            y = linear(x, Var<float>(secret));
        }

        Tape tape;  // ops record onto the tape while it lives
        Var<float> y_hat = linear(x, sign(W, Ste::Identity));
        Var<float> diff = sub(y_hat, y);
        Var<float> loss = mean(mul(diff, diff));  // mean squared error
        tape.backward(loss);                      // d loss / d W, through the STE

        // SGD: W -= lr * dW, then clear the gradient for the next step.
        W.value().flat() -= lr * W.grad().flat();
        W.zero_grad();

        if (step % 10 == 0) {
            int64_t agree = 0;
            for (int64_t i = 0; i < W.numel(); ++i) agree += sign_value(W.value()[i]) == secret[i];
            std::printf("step %3d  loss %9.4f  signs recovered %5.1f%%\n", step, double(loss.item()),
                        100.0 * double(agree) / double(W.numel()));
        }
    }
    return 0;
}
