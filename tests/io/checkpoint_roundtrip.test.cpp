// A checkpoint holds every tensor exactly: each parameter and each AdamW moment of a trained tiny
// FbiLlama reloads bit for bit (compared with memcmp, so -0.0 and subnormals count too), the
// trainer state json comes back equal, and one more step from the reloaded state equals one more
// step of the original.
#include "helpers.hpp"

#include <nlohmann/json.hpp>

#include <cstring>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

using namespace bitgrad;

namespace checkpoint_roundtrip_test {

bool same_bits(const Tensor<float>& a, const Tensor<float>& b) {
    return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), std::size_t(a.numel()) * sizeof(float)) == 0;
}

Tensor<int32_t> ids(int64_t B, int64_t T, uint64_t seed) {
    Rng rng(seed);
    Tensor<int32_t> out({B, T});
    for (auto& v : out) v = int32_t(rng.uniform_int(64));
    return out;
}

// One real training step: CE loss of the model on random tokens, backward, AdamW step.
void train_step(nn::FbiLlama<float>& model, optim::AdamW<float>& opt, uint64_t seed, double lr) {
    auto inputs = ids(2, 9, seed);
    auto labels = ids(1, 18, seed + 1000).reshape({18});
    model.zero_grad();
    Tape tape;
    auto loss = cross_entropy(reshape(model.forward(inputs), Shape{18, 64}), labels);
    tape.backward(loss);
    opt.step(lr);
}

}  // namespace checkpoint_roundtrip_test

TEST_CASE("checkpoint round trip restores every parameter and every AdamW moment bit for bit") {
    using checkpoint_roundtrip_test::same_bits;
    testing::TempDir dir("ckpt-roundtrip");
    const auto c = nn::LlamaConfig::preset("tiny");
    Rng rng(1);
    nn::FbiLlama<float> model(c, rng);
    optim::AdamWOptions o;
    o.weight_decay = 0.1;
    optim::AdamW<float> opt(optim::param_groups(model.named_parameters(), o.weight_decay, false), o);
    checkpoint_roundtrip_test::train_step(model, opt, 10, 1e-2);
    checkpoint_roundtrip_test::train_step(model, opt, 11, 2e-2);
    // Values a lossy conversion would change: signed zero, a subnormal, the largest float.
    model.lm_head.weight.value()[0] = -0.0f;
    model.lm_head.weight.value()[1] = std::numeric_limits<float>::denorm_min();
    model.model.norm.weight.value()[2] = std::numeric_limits<float>::max();
    model.model.layers[1]->mlp.gate_proj.weight.value()[3] = -0.0f;

    const nlohmann::json state = {{"step", 2},
                                  {"optimizer_step", opt.step_count()},
                                  {"seed", 18446744073709551557ull},  // above 2^63: must stay unsigned
                                  {"threads", 2},
                                  {"loss", "ce"},
                                  {"losses", {4.1588830833596715, 1.0 / 3.0, 1e-300}},
                                  {"sampler_rng", {1ull, 18446744073709551615ull, 0ull, 12345678901234567ull}},
                                  {"note", "ünïcode \"quoted\"\n"}};
    const auto saved_dir = io::save_checkpoint(dir / "checkpoints", 2, model, c, opt, state, 2);

    Rng other(999);  // a different init: everything must come from the files
    nn::FbiLlama<float> fresh(c, other);
    optim::AdamW<float> fresh_opt(optim::param_groups(fresh.named_parameters(), o.weight_decay, false), o);
    const auto params = model.named_parameters(), fresh_params = fresh.named_parameters();
    REQUIRE(params.size() == fresh_params.size());
    int differing_before = 0;
    for (std::size_t k = 0; k < params.size(); ++k)
        differing_before += !same_bits(params[k].var.value(), fresh_params[k].var.value());
    CHECK(differing_before > 0);

    io::load_model_weights(saved_dir, fresh);
    io::load_optimizer_state(saved_dir, fresh_opt);
    for (std::size_t k = 0; k < params.size(); ++k) {
        CAPTURE(params[k].name);
        CHECK(fresh_params[k].name == params[k].name);
        CHECK(same_bits(fresh_params[k].var.value(), params[k].var.value()));
    }
    const auto moments = opt.state(), fresh_moments = fresh_opt.state();
    REQUIRE(moments.size() == 2 * params.size());
    REQUIRE(fresh_moments.size() == moments.size());
    int nonzero_moments = 0;
    for (std::size_t k = 0; k < moments.size(); ++k) {
        CAPTURE(moments[k].first);
        CHECK(fresh_moments[k].first == moments[k].first);
        CHECK(same_bits(fresh_moments[k].second, moments[k].second));
        for (float v : moments[k].second) nonzero_moments += v != 0.0f;
    }
    CHECK(nonzero_moments > 0);  // the moments were really trained, not zeros on both sides

    // trainer_state.json: the same json, every field and type.
    std::ifstream f(saved_dir / "trainer_state.json");
    REQUIRE(f);
    const nlohmann::json loaded = nlohmann::json::parse(f);
    CHECK(loaded == state);
    CHECK(loaded["seed"].get<uint64_t>() == 18446744073709551557ull);
    CHECK(loaded["losses"][1].get<double>() == 1.0 / 3.0);

    // Continuing: one more step from the reloaded state equals one more step of the original
    // (with the extreme test values replaced by ordinary ones in both).
    for (nn::FbiLlama<float>* m : {&model, &fresh}) {
        m->lm_head.weight.value()[0] = m->lm_head.weight.value()[1] = 0.01f;
        m->model.norm.weight.value()[2] = 1.0f;
    }
    fresh_opt.set_step_count(loaded["optimizer_step"].get<int64_t>());
    checkpoint_roundtrip_test::train_step(model, opt, 12, 3e-2);
    checkpoint_roundtrip_test::train_step(fresh, fresh_opt, 12, 3e-2);
    for (std::size_t k = 0; k < params.size(); ++k) {
        CAPTURE(params[k].name);
        CHECK(same_bits(fresh_params[k].var.value(), params[k].var.value()));
    }
}
