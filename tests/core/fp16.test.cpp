// core/fp16.hpp: the array conversions (F16C where the CPU has it) give the scalar ones' values.
#include "helpers.hpp"

#include <cmath>
#include <cstring>
#include <vector>

#include "bitgrad/core/fp16.hpp"

using namespace bitgrad;

TEST_CASE("to_float_n equals to_float on every fp16 bit pattern") {
    std::vector<fp16> h(65536 + 3);  // + 3: a tail after the 8-wide steps
    for (std::size_t i = 0; i < h.size(); ++i) h[i].bits = uint16_t(i);
    std::vector<float> f(h.size());
    to_float_n(h.data(), f.data(), int64_t(h.size()));
    for (std::size_t i = 0; i < h.size(); ++i) {
        const float want = to_float(h[i]);
        if (std::isnan(want)) {
            CHECK(std::isnan(f[i]));
        } else {
            CHECK(std::memcmp(&f[i], &want, sizeof want) == 0);  // bits: -0 stays -0
        }
    }
}

TEST_CASE("to_fp16_n equals to_fp16 on ties and subnormals and overflow to inf and NaN") {
    std::vector<float> f = {
        0.f, -0.f,     1.f,      -2.5f,    65504.f, 65519.f,          65520.f,         1e6f, -1e6f, INFINITY, -INFINITY,
        NAN, 5.96e-8f, 2.98e-8f, 2.99e-8f, 6.1e-5f, 1.f + 1.f / 2048, 1.f + 3.f / 2048};  // ties round to even
    Rng rng(7);
    for (int i = 0; i < 20000; ++i) f.push_back(float(rng.normal() * std::pow(10.0, rng.uniform(-8, 5))));
    for (uint32_t u = 0x33000000u; u < 0x47800000u; u += 0x1001u) {  // every exponent, many mantissas
        float x;
        std::memcpy(&x, &u, sizeof x);
        f.push_back(x);
    }
    std::vector<fp16> h(f.size());
    to_fp16_n(f.data(), h.data(), int64_t(f.size()));
    for (std::size_t i = 0; i < f.size(); ++i) {
        CAPTURE(f[i]);
        if (std::isnan(f[i]))
            CHECK(std::isnan(to_float(h[i])));
        else
            CHECK(h[i].bits == to_fp16(f[i]).bits);
    }
}
