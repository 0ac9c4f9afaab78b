#include "helpers.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <vector>

using namespace bitgrad;

namespace sample_test {

// Draws n tokens and returns the empirical frequency of each id in [0, V).
std::vector<double> frequencies(const std::vector<float>& logits, const infer::SamplingOptions& o, int n,
                                uint64_t seed) {
    Rng rng(seed);
    std::vector<int> count(logits.size(), 0);
    int out_of_range = 0;
    for (int i = 0; i < n; ++i) {
        const int32_t t = infer::sample_token(logits.data(), int64_t(logits.size()), o, rng);
        if (t < 0 || t >= int32_t(logits.size()))
            ++out_of_range;
        else
            ++count[std::size_t(t)];
    }
    CHECK(out_of_range == 0);
    std::vector<double> f;
    for (int c : count) f.push_back(double(c) / n);
    return f;
}

// softmax(logits / temperature) restricted to the ids in keep (renormalised), in double.
std::vector<double> expected(const std::vector<float>& logits, double temperature, const std::vector<int>& keep) {
    std::vector<double> p(logits.size(), 0.0);
    double m = -1e300, z = 0;
    for (int i : keep) m = std::max(m, double(logits[std::size_t(i)]) / temperature);
    for (int i : keep) z += p[std::size_t(i)] = std::exp(double(logits[std::size_t(i)]) / temperature - m);
    for (double& v : p) v /= z;
    return p;
}

// Every frequency within 5 binomial standard deviations of its probability (n draws); a token of
// probability 0 must never appear. With a fixed seed the draw is deterministic, so this never flakes.
void check_matches(const std::vector<double>& freq, const std::vector<double>& p, int n) {
    for (std::size_t i = 0; i < p.size(); ++i) {
        CAPTURE(i);
        CAPTURE(p[i]);
        if (p[i] == 0.0)
            CHECK(freq[i] == 0.0);
        else
            CHECK(std::abs(freq[i] - p[i]) <= 5.0 * std::sqrt(p[i] * (1 - p[i]) / n));
    }
}

std::vector<int> all_ids(std::size_t V) {
    std::vector<int> ids(V);
    std::iota(ids.begin(), ids.end(), 0);
    return ids;
}

}  // namespace sample_test

TEST_CASE("sampling: greedy top-k top-p and seeded reproducibility") {
    const std::vector<float> logits = {0.1f, 3.0f, 2.9f, -1.0f, 2.0f};
    Rng rng(1);
    CHECK(infer::sample_token(logits.data(), 5, {0.0, 0, 1.0}, rng) == 1);  // greedy
    CHECK(infer::sample_token(logits.data(), 5, {1.0, 1, 1.0}, rng) == 1);  // top-k 1 = greedy
    std::map<int, int> seen;
    for (int i = 0; i < 2000; ++i) seen[infer::sample_token(logits.data(), 5, {1.0, 2, 1.0}, rng)]++;
    CHECK(seen.size() == 2);  // only the two most likely survive top-k 2
    CHECK(seen[1] > seen[2]);
    seen.clear();
    for (int i = 0; i < 2000; ++i) seen[infer::sample_token(logits.data(), 5, {1.0, 0, 0.3}, rng)]++;
    CHECK(seen.size() == 1);  // the top token alone holds >= 30% of the mass
    Rng a(9), b(9);
    for (int i = 0; i < 50; ++i)
        CHECK(infer::sample_token(logits.data(), 5, {0.8, 40, 0.95}, a) ==
              infer::sample_token(logits.data(), 5, {0.8, 40, 0.95}, b));
}

TEST_CASE("sampling: temperature divides the logits") {
    // softmax([2, 1, 0] / 2) = (0.506, 0.307, 0.186), softmax([2, 1, 0] / 0.5) = (0.867, 0.117, 0.016):
    // multiplying instead of dividing swaps the two, far outside the 5-sigma band (~0.017 at n = 20000).
    const std::vector<float> logits = {1.0f, 2.0f, 0.0f};  // the largest not first: order must not matter
    const int n = 20000;
    for (double temperature : {2.0, 0.5, 1.0}) {
        CAPTURE(temperature);
        auto freq = sample_test::frequencies(logits, {temperature, 0, 1.0}, n, 17);
        sample_test::check_matches(freq, sample_test::expected(logits, temperature, sample_test::all_ids(3)), n);
    }
}

TEST_CASE("sampling: top_k keeps exactly the k largest logits with renormalised probabilities") {
    const std::vector<float> logits = {0.3f, -1.2f, 1.1f, 0.9f, -0.4f, 1.0f, 0.2f};  // top 3: ids 2, 5, 3
    const int n = 20000;
    auto freq = sample_test::frequencies(logits, {1.3, 3, 1.0}, n, 5);
    sample_test::check_matches(freq, sample_test::expected(logits, 1.3, {2, 5, 3}), n);
    // k larger than the vocabulary keeps everything; k <= 0 means no limit.
    for (int k : {0, 100}) {
        CAPTURE(k);
        auto all = sample_test::frequencies(logits, {1.3, k, 1.0}, n, 6);
        sample_test::check_matches(all, sample_test::expected(logits, 1.3, sample_test::all_ids(7)), n);
    }
}

TEST_CASE("sampling: top_p keeps the smallest set of most likely tokens reaching the mass") {
    const std::vector<float> logits = {0.0f, 1.5f, -0.5f, 1.0f, 0.5f, -2.0f};
    const double temperature = 0.9;
    // Sorted probabilities and their running mass, computed here.
    auto p = sample_test::expected(logits, temperature, sample_test::all_ids(6));
    std::vector<int> order = sample_test::all_ids(6);
    std::sort(order.begin(), order.end(), [&](int a, int b) { return p[std::size_t(a)] > p[std::size_t(b)]; });
    std::vector<double> mass(6);
    for (std::size_t i = 0; i < 6; ++i) mass[i] = (i ? mass[i - 1] : 0.0) + p[std::size_t(order[i])];
    const int n = 20000;
    for (std::size_t keep = 1; keep <= 4; ++keep) {
        CAPTURE(keep);
        // A top_p strictly between the mass of keep - 1 and keep tokens keeps exactly keep tokens.
        const double lo = keep == 1 ? 0.0 : mass[keep - 2], top_p = 0.5 * (lo + mass[keep - 1]);
        const std::vector<int> kept(order.begin(), order.begin() + std::ptrdiff_t(keep));
        auto freq = sample_test::frequencies(logits, {temperature, 0, top_p}, n, 40 + keep);
        sample_test::check_matches(freq, sample_test::expected(logits, temperature, kept), n);
    }
    // With top_k, the mass is that of the renormalised top-k distribution (as Hugging Face's TopK
    // then TopP warpers): with top_k 3 and a top_p between the top-2 mass of the full distribution
    // and the top-2 mass within those 3, two tokens are kept (the full-distribution mass would keep 3).
    const std::vector<int> top3(order.begin(), order.begin() + 3), top2(order.begin(), order.begin() + 2);
    auto p3 = sample_test::expected(logits, temperature, top3);
    const double within = p3[std::size_t(order[0])] + p3[std::size_t(order[1])];
    REQUIRE(mass[1] < within - 0.02);
    REQUIRE(mass[2] > 0.5 * (mass[1] + within));
    auto freq = sample_test::frequencies(logits, {temperature, 3, 0.5 * (mass[1] + within)}, n, 50);
    sample_test::check_matches(freq, sample_test::expected(logits, temperature, top2), n);
}

TEST_CASE("sampling: temperature 0 is argmax") {
    Rng logit_rng(7), rng(8);
    for (int trial = 0; trial < 20; ++trial) {
        std::vector<float> logits(57);
        for (auto& v : logits) v = float(logit_rng.normal(0.0, 3.0));
        std::size_t best = 0;
        for (std::size_t i = 1; i < logits.size(); ++i)
            if (logits[i] > logits[best]) best = i;
        CHECK(infer::sample_token(logits.data(), 57, {0.0, 40, 0.95}, rng) == int32_t(best));
        CHECK(infer::sample_token(logits.data(), 57, {-1.0, 0, 1.0}, rng) == int32_t(best));
    }
}

TEST_CASE("sampling: the same seed gives the same sequence and another seed another") {
    std::vector<float> logits(31);
    Rng logit_rng(3);
    for (auto& v : logits) v = float(logit_rng.normal());
    auto draw = [&](uint64_t seed) {
        Rng rng(seed);
        std::vector<int32_t> out;
        for (int i = 0; i < 200; ++i) out.push_back(infer::sample_token(logits.data(), 31, {1.0, 0, 1.0}, rng));
        return out;
    };
    CHECK(draw(21) == draw(21));
    CHECK(draw(21) != draw(22));
}

TEST_CASE("sampling: the repetition penalty divides positive and multiplies negative logits of seen tokens") {
    const std::vector<float> logits = {2.0f, 1.5f, -1.0f, -1.2f};
    Rng rng(3);
    infer::SamplingOptions greedy{0.0, 0, 1.0};
    CHECK(infer::sample_token(logits.data(), 4, greedy, rng, {0}) == 0);  // no penalty: 2.0 wins
    greedy.repetition_penalty = 1.5;
    CHECK(infer::sample_token(logits.data(), 4, greedy, rng, {0}) == 1);      // 2.0 / 1.5 = 1.33 < 1.5
    CHECK(infer::sample_token(logits.data(), 4, greedy, rng, {5, -1}) == 0);  // ids outside [0, V) are ignored
    // Negative logits are multiplied: -1.0 * 3 = -3 falls below -1.2 (dividing would raise it).
    const std::vector<float> negative = {-1.0f, -1.2f};
    greedy.repetition_penalty = 3.0;
    CHECK(infer::sample_token(negative.data(), 2, greedy, rng, {0}) == 1);
    // Once per distinct token: 2.0 seen three times is divided once (2.0 / 1.5 = 1.33 still beats
    // 1.2; divided three times it would be 0.59).
    const std::vector<float> close = {2.0f, 1.2f};
    greedy.repetition_penalty = 1.5;
    CHECK(infer::sample_token(close.data(), 2, greedy, rng, {0, 0, 0}) == 0);
    // Only the last repetition_window tokens count: token 0 seen 3 tokens ago is outside a window of 2.
    greedy.repetition_window = 2;
    CHECK(infer::sample_token(logits.data(), 4, greedy, rng, {0, 3, 3}) == 0);
    CHECK(infer::sample_token(logits.data(), 4, greedy, rng, {3, 0, 3}) == 1);
    // With sampling: a penalised token's share drops by the expected factor. softmax([1, 1]) with
    // token 0 penalised by 2: p0 = e^0.5 / (e^0.5 + e^1) = 0.3775.
    const std::vector<float> even = {1.0f, 1.0f};
    infer::SamplingOptions o{1.0, 0, 1.0};
    o.repetition_penalty = 2.0;
    int zeros = 0;
    const int n = 20000;
    for (int i = 0; i < n; ++i) zeros += infer::sample_token(even.data(), 2, o, rng, {0}) == 0;
    CHECK(std::abs(double(zeros) / n - 0.3775) < 0.02);
}
