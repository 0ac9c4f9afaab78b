#pragma once
// Rng: xoshiro256** seeded through splitmix64. The whole state is four 64-bit words, so it can be
// saved in a checkpoint and restored to continue the exact same stream (state()/set_state()).
// normal() uses Box-Muller without caching the second value, to keep the state just those words.
#include <array>
#include <cmath>
#include <cstdint>

#include "bitgrad/core/error.hpp"

namespace bitgrad {

class Rng {
public:
    using State = std::array<uint64_t, 4>;

    explicit Rng(uint64_t seed = 0) { reseed(seed); }

    void reseed(uint64_t seed) {
        seed_ = seed;
        uint64_t x = seed;
        for (auto& w : s_) w = splitmix64(x);
    }
    uint64_t seed() const { return seed_; }
    State state() const { return s_; }
    void set_state(const State& s) {
        BITGRAD_CHECK(s[0] | s[1] | s[2] | s[3], "Rng::set_state: the all-zero state is invalid for xoshiro256**");
        s_ = s;
    }

    uint64_t next_u64() {
        const uint64_t result = rotl(s_[1] * 5, 7) * 9;
        const uint64_t t = s_[1] << 17;
        s_[2] ^= s_[0];
        s_[3] ^= s_[1];
        s_[1] ^= s_[2];
        s_[0] ^= s_[3];
        s_[2] ^= t;
        s_[3] = rotl(s_[3], 45);
        return result;
    }
    // Uniform double in [0, 1) with 53 random bits.
    double uniform() { return double(next_u64() >> 11) * 0x1.0p-53; }
    double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
    // Uniform integer in [0, n), without modulo bias (Lemire's multiply-shift with rejection).
    uint64_t uniform_int(uint64_t n) {
        BITGRAD_CHECK(n > 0, "Rng::uniform_int: n must be positive");
        for (;;) {
            __uint128_t m = __uint128_t(next_u64()) * n;
            uint64_t low = uint64_t(m);
            if (low >= n || low >= (-n) % n) return uint64_t(m >> 64);
        }
    }
    double normal() {
        double u1 = uniform();
        double u2 = uniform();
        return std::sqrt(-2.0 * std::log1p(-u1)) * std::cos(6.283185307179586476925 * u2);
    }
    double normal(double mean, double stddev) { return mean + stddev * normal(); }

private:
    static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
    static uint64_t splitmix64(uint64_t& x) {
        uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    State s_{};
    uint64_t seed_ = 0;
};

}  // namespace bitgrad
