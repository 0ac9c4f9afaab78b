// A program outside the bitgrad tree: it only sees the installed headers and the exported target.
#include <bitgrad/bitgrad.hpp>
#include <cstdio>
#include <vector>

// The package's BLAS choice reaches the consumer (run_consumer.cmake says what to expect).
#if defined(CONSUMER_EXPECT_BLAS) != defined(BITGRAD_USE_BLAS)
#error "BITGRAD_USE_BLAS from the installed package differs from what the package was installed with"
#endif

int main() {
    bitgrad::Var<float> w(bitgrad::Tensor<float>::from({2, 2}, {1, 2, 3, 4}), true);
    bitgrad::Var<float> x(bitgrad::Tensor<float>::from({1, 2}, {1, 1}));
    bitgrad::Tape tape;
    auto loss = bitgrad::sum(bitgrad::linear(x, w));
    tape.backward(loss);
    // d sum(x W^T) / dW = 1 x^T for each output row: all ones.
    for (float g : w.grad())
        if (g != 1.0f) return 1;
    // A product large enough for Eigen's GEMM path (OpenBLAS's sgemm when the package uses it):
    // x [8, 32] of ones, W [16, 32] with row o all o, so every y[r, o] = 32 * o.
    std::vector<float> wv(16 * 32);
    for (size_t i = 0; i < wv.size(); ++i) wv[i] = float(i / 32);
    auto y =
        bitgrad::linear(bitgrad::Var<float>(bitgrad::Tensor<float>::from({8, 32}, std::vector<float>(8 * 32, 1.0f))),
                        bitgrad::Var<float>(bitgrad::Tensor<float>::from({16, 32}, wv)));
    for (int64_t i = 0; i < 8 * 16; ++i)
        if (y.value()[i] != 32.0f * float(i % 16)) return 1;
    std::printf("consumer ok: loss %.1f\n", double(loss.item()));
    return loss.item() == 10.0f ? 0 : 1;
}
