#include <bitgrad/bitgrad.hpp>

float unit_b_sum_of_squares() {
    bitgrad::Var<float> x(bitgrad::Tensor<float>::from({3}, {1, 2, 3}));
    return bitgrad::sum(bitgrad::mul(x, x)).item();
}
