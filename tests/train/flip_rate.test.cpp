// FlipTracker against counts made by hand: a known set of latent weights changes sign, including
// the sign(0) = +1 edge (0 -> -0.5 flips, -0.5 -> 0 flips, 0.5 -> -0.0 does not), and the rates must
// be exactly flips / binarized weights, per decoder layer and overall.
#include "helpers.hpp"

#include <map>
#include <set>
#include <string>
#include <vector>

using namespace bitgrad;

namespace flip_rate_test {

// Number of binarized (ParamKind::Binary) weights per "model.layers.<i>" prefix, from the model.
std::map<std::string, int64_t> binary_counts(const nn::Module<float>& m) {
    std::map<std::string, int64_t> out;
    for (auto& p : m.named_parameters()) {
        if (p.kind != ParamKind::Binary) continue;
        for (int layer = 0; layer < 2; ++layer) {
            const std::string key = "model.layers." + std::to_string(layer);
            if (p.name.rfind(key + ".", 0) == 0) out[key] += p.var.numel();
        }
    }
    return out;
}

// Distinct random indices into a tensor of n elements.
std::vector<int64_t> pick(int64_t n, int count, uint64_t seed, const std::set<int64_t>& avoid) {
    Rng rng(seed);
    std::set<int64_t> chosen;
    while (int(chosen.size()) < count) {
        const int64_t i = int64_t(rng.uniform_int(uint64_t(n)));
        if (!avoid.count(i)) chosen.insert(i);
    }
    return {chosen.begin(), chosen.end()};
}

}  // namespace flip_rate_test

TEST_CASE("flip rate counts exactly the weights whose sign changed with sign(0) = +1") {
    Rng rng(3);
    nn::FbiLlama<float> model(nn::LlamaConfig::preset("tiny"), rng);
    auto& q0 = model.model.layers[0]->self_attn.q_proj.weight.value();  // [16, 16]
    auto& up0 = model.model.layers[0]->mlp.up_proj.weight.value();      // [32, 16]
    auto& down1 = model.model.layers[1]->mlp.down_proj.weight.value();  // [16, 32]

    // The sign(0) edge cases in q_proj of layer 0, set before the tracker takes its snapshot.
    // Deliberately not symmetric: sign(x) = (x > 0) or signbit-based signs would count 2 or 4, not 3.
    const int64_t zero_to_neg = 3, zero_to_neg2 = 9, neg_to_zero = 17, pos_to_negzero = 40, zero_to_pos = 41;
    q0[zero_to_neg] = 0.0f;
    q0[zero_to_neg2] = 0.0f;
    q0[neg_to_zero] = -0.5f;
    q0[pos_to_negzero] = 0.5f;
    q0[zero_to_pos] = 0.0f;
    const std::set<int64_t> edge = {zero_to_neg, zero_to_neg2, neg_to_zero, pos_to_negzero, zero_to_pos};
    // Plain sign flips (w -> -w) elsewhere, on weights known to be nonzero.
    auto flips_up0 = flip_rate_test::pick(up0.numel(), 7, 1, {});
    auto flips_down1 = flip_rate_test::pick(down1.numel(), 11, 2, {});
    for (int64_t i : flips_up0)
        if (up0[i] == 0.0f) up0[i] = 0.25f;
    for (int64_t i : flips_down1)
        if (down1[i] == 0.0f) down1[i] = -0.25f;

    train::FlipTracker<float> tracker(model);
    REQUIRE_FALSE(tracker.empty());

    q0[zero_to_neg] = -0.5f;     // +1 -> -1: a flip
    q0[zero_to_neg2] = -1e-30f;  // +1 -> -1: a flip
    q0[neg_to_zero] = 0.0f;      // -1 -> +1: a flip
    q0[pos_to_negzero] = -0.0f;  // +1 -> +1 (-0.0 >= 0): no flip
    q0[zero_to_pos] = 0.5f;      // +1 -> +1: no flip
    for (int64_t i : flips_up0) up0[i] = -up0[i];
    for (int64_t i : flips_down1) down1[i] = -down1[i];
    // Changes that are not sign changes of binarized weights: none may count.
    for (int64_t i = 0; i < q0.numel(); ++i)
        if (!edge.count(i)) q0[i] *= 3.0f;                               // magnitude only
    model.model.layers[1]->self_attn.q_proj.wscale.value()[0] *= -1.0f;  // a scale, not a latent weight
    model.model.embed_tokens.weight.value()[5] *= -1.0f;
    model.lm_head.weight.value()[7] *= -1.0f;  // lm_head is full precision

    const auto counts = flip_rate_test::binary_counts(model);
    REQUIRE(counts.size() == 2);
    const int64_t n0 = counts.at("model.layers.0"), n1 = counts.at("model.layers.1");
    // Tiny preset: per layer 4 attention [16, 16] + 3 MLP [32, 16] latent matrices.
    CHECK(n0 == 4 * 16 * 16 + 3 * 32 * 16);
    CHECK(n1 == n0);
    const int64_t f0 = 3 + 7, f1 = 11;

    auto r = tracker.update();
    std::set<std::string> keys;
    for (auto& [k, v] : r.per_layer) keys.insert(k);
    CHECK(keys == std::set<std::string>{"model.layers.0", "model.layers.1"});
    CHECK(r.per_layer["model.layers.0"] == double(f0) / double(n0));
    CHECK(r.per_layer["model.layers.1"] == double(f1) / double(n1));
    CHECK(r.overall == double(f0 + f1) / double(n0 + n1));

    // No change since the last update: every rate is 0, the keys stay.
    auto again = tracker.update();
    CHECK(again.overall == 0.0);
    REQUIRE(again.per_layer.size() == 2);
    for (auto& [k, v] : again.per_layer) CHECK(v == 0.0);

    // Flipping the plain set back counts again against the new snapshot.
    for (int64_t i : flips_down1) down1[i] = -down1[i];
    auto back = tracker.update();
    CHECK(back.per_layer["model.layers.0"] == 0.0);
    CHECK(back.per_layer["model.layers.1"] == double(f1) / double(n1));
    CHECK(back.overall == double(f1) / double(n0 + n1));
}

TEST_CASE("flip tracker of a dense model is empty") {
    Rng rng(4);
    nn::DenseLlama<float> model(nn::LlamaConfig::preset("tiny"), rng);
    train::FlipTracker<float> tracker(model);
    CHECK(tracker.empty());
    auto r = tracker.update();
    CHECK(r.overall == 0.0);
    CHECK(r.per_layer.empty());
}
