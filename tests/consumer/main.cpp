// A program outside the bitgrad tree: it only sees the installed headers and the exported target.
#include <bitgrad/bitgrad.hpp>
#include <cstdio>

int main() {
    bitgrad::Var<float> w(bitgrad::Tensor<float>::from({2, 2}, {1, 2, 3, 4}), true);
    bitgrad::Var<float> x(bitgrad::Tensor<float>::from({1, 2}, {1, 1}));
    bitgrad::Tape tape;
    auto loss = bitgrad::sum(bitgrad::linear(x, w));
    tape.backward(loss);
    // d sum(x W^T) / dW = 1 x^T for each output row: all ones.
    for (float g : w.grad())
        if (g != 1.0f) return 1;
    std::printf("consumer ok: loss %.1f\n", double(loss.item()));
    return loss.item() == 10.0f ? 0 : 1;
}
