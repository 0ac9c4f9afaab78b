// Two translation units include the umbrella header; they must link (inline and template
// definitions only, no duplicate symbols) and agree on results.
#include <bitgrad/bitgrad.hpp>

float unit_b_sum_of_squares();

int main() {
    bitgrad::Var<float> x(bitgrad::Tensor<float>::from({3}, {1, 2, 3}));
    const float a = bitgrad::sum(bitgrad::mul(x, x)).item();
    return a == 14.0f && unit_b_sum_of_squares() == 14.0f ? 0 : 1;
}
