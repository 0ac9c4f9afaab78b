#include "helpers.hpp"

#include <map>

using namespace bitgrad;

TEST_CASE("sampling: greedy, top-k, top-p and seeded reproducibility") {
    const std::vector<float> logits = {0.1f, 3.0f, 2.9f, -1.0f, 2.0f};
    Rng rng(1);
    CHECK(infer::sample_token(logits.data(), 5, {0.0, 0, 1.0}, rng) == 1);   // greedy
    CHECK(infer::sample_token(logits.data(), 5, {1.0, 1, 1.0}, rng) == 1);   // top-k 1 = greedy
    std::map<int, int> seen;
    for (int i = 0; i < 2000; ++i) seen[infer::sample_token(logits.data(), 5, {1.0, 2, 1.0}, rng)]++;
    CHECK(seen.size() == 2);  // only the two most likely survive top-k 2
    CHECK(seen[1] > seen[2]);
    seen.clear();
    for (int i = 0; i < 2000; ++i) seen[infer::sample_token(logits.data(), 5, {1.0, 0, 0.3}, rng)]++;
    CHECK(seen.size() == 1);  // the top token alone holds >= 30% of the mass
    Rng a(9), b(9);
    for (int i = 0; i < 50; ++i)
        CHECK(infer::sample_token(logits.data(), 5, {0.8, 40, 0.95}, a) == infer::sample_token(logits.data(), 5, {0.8, 40, 0.95}, b));
}
