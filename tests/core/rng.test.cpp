#include "helpers.hpp"

#include <cmath>

using namespace bitgrad;

TEST_CASE("Rng is reproducible from a seed and from a saved state") {
    Rng a(42), b(42), c(43);
    CHECK(a.next_u64() == b.next_u64());
    CHECK(a.next_u64() != c.next_u64());
    Rng::State s = a.state();
    std::vector<double> first;
    for (int i = 0; i < 10; ++i) first.push_back(a.normal());
    Rng d(7);
    d.set_state(s);
    for (int i = 0; i < 10; ++i) CHECK(d.normal() == first[i]);
    CHECK_THROWS_AS(d.set_state({0, 0, 0, 0}), Error);
}

TEST_CASE("Rng distributions have the right moments") {
    Rng r(1);
    const int n = 200000;
    double s = 0, s2 = 0, u = 0;
    for (int i = 0; i < n; ++i) {
        double x = r.normal();
        s += x;
        s2 += x * x;
        u += r.uniform();
    }
    CHECK(std::abs(s / n) < 0.01);
    CHECK(std::abs(s2 / n - 1.0) < 0.02);
    CHECK(std::abs(u / n - 0.5) < 0.01);
    std::vector<int> counts(7, 0);
    for (int i = 0; i < 70000; ++i) counts[r.uniform_int(7)]++;
    for (int c : counts) CHECK(std::abs(c - 10000) < 500);
}
