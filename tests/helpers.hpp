#pragma once
// Shared test helpers: random tensors and a gradcheck assertion that prints the worst element.
#include <doctest/doctest.h>

#include <bitgrad/bitgrad.hpp>

namespace testing {

inline bitgrad::Tensor<double> randn(const bitgrad::Shape& s, uint64_t seed, double stddev = 1.0) {
    bitgrad::Rng rng(seed);
    return bitgrad::Tensor<double>::randn(s, rng, stddev);
}

#define CHECK_GRADCHECK(...)                                            \
    do {                                                                \
        auto gradcheck_result_ = bitgrad::gradcheck(__VA_ARGS__);       \
        INFO(gradcheck_result_.message);                                \
        CHECK(gradcheck_result_.ok);                                    \
    } while (0)

}  // namespace testing
