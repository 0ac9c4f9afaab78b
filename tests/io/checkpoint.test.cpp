#include "helpers.hpp"

using namespace bitgrad;

TEST_CASE("config.json round trip and errors naming the field") {
    testing::TempDir dir("config");
    auto c = nn::LlamaConfig::preset("tiny");
    c.binarized = true;
    c.ste = Ste::Clipped;
    c.num_key_value_heads = 2;
    io::save_config(dir / "config.json", c);
    auto d = io::load_config(dir / "config.json");
    CHECK(d.hidden_size == c.hidden_size);
    CHECK(d.num_key_value_heads == 2);
    CHECK(d.binarized);
    CHECK(d.ste == Ste::Clipped);
    auto j = io::config_to_json(c);
    j.erase("hidden_size");
    CHECK_THROWS_WITH_AS(io::config_from_json(j, "cfg"), doctest::Contains("missing field \"hidden_size\""), Error);
    j = io::config_to_json(c);
    j["num_attention_heads"] = "four";
    CHECK_THROWS_WITH_AS(io::config_from_json(j, "cfg"), doctest::Contains("\"num_attention_heads\" must be an integer"), Error);
    j = io::config_to_json(c);
    j["num_key_value_heads"] = 3;
    CHECK_THROWS_WITH_AS(io::config_from_json(j, "cfg"), doctest::Contains("does not divide"), Error);
    testing::write_bytes(dir / "bad.json", "{\"vocab_size\": ");
    CHECK_THROWS_WITH_AS(io::load_config(dir / "bad.json"), doctest::Contains("not valid JSON"), Error);
}

TEST_CASE("model weights round trip, and loading checks names and shapes") {
    testing::TempDir dir("weights");
    Rng rng(3);
    auto c = nn::LlamaConfig::preset("tiny");
    nn::FbiLlama<float> a(c, rng), b(c, rng);
    io::save_model(dir.path, a, a.config);
    io::load_model_weights(dir.path, b);
    CHECK(max_abs_diff(a.lm_head.weight.value(), b.lm_head.weight.value()) == 0);
    CHECK(max_abs_diff(a.model.layers[1]->mlp.down_proj.wscale.value(), b.model.layers[1]->mlp.down_proj.wscale.value()) == 0);
    nn::DenseLlama<float> dense(c, rng);  // no wscale/wbias: the file has extra tensors
    CHECK_THROWS_WITH_AS(io::load_model_weights(dir.path, dense), doctest::Contains("unexpected"), Error);
}

TEST_CASE("an interrupted checkpoint save leaves the previous checkpoint complete and loadable") {
    testing::TempDir dir("ckpt");
    Rng rng(4);
    auto c = nn::LlamaConfig::preset("tiny");
    nn::FbiLlama<float> model(c, rng);
    optim::AdamW<float> opt(optim::param_groups(model, 0.1), {});
    auto first = io::save_checkpoint(dir.path, 10, model, c, opt, {{"step", 10}}, 3);
    const auto saved = model.lm_head.weight.value().clone();
    model.lm_head.weight.value().fill(7.f);
    io::detail::checkpoint_fault_hook() = [] { throw Error("simulated crash before rename"); };
    CHECK_THROWS_AS(io::save_checkpoint(dir.path, 20, model, c, opt, {{"step", 20}}, 3), Error);
    io::detail::checkpoint_fault_hook() = nullptr;
    std::vector<std::string> warnings;
    auto latest = io::latest_checkpoint(dir.path, [&](const std::string& w) { warnings.push_back(w); });
    REQUIRE(latest);
    CHECK(*latest == first);
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].find("step-00000020.tmp") != std::string::npos);
    nn::FbiLlama<float> restored(c, rng);
    io::load_model_weights(*latest, restored);
    CHECK(max_abs_diff(restored.lm_head.weight.value(), saved) == 0);
}

TEST_CASE("checkpoints beyond keep_last are pruned, newest kept") {
    testing::TempDir dir("prune");
    Rng rng(5);
    auto c = nn::LlamaConfig::preset("tiny");
    nn::DenseLlama<float> model(c, rng);
    optim::AdamW<float> opt(optim::param_groups(model, 0.1), {});
    for (int s : {1, 2, 3, 4}) io::save_checkpoint(dir.path, s, model, c, opt, {{"step", s}}, 2);
    CHECK_FALSE(std::filesystem::exists(dir / "step-00000002"));
    CHECK(std::filesystem::exists(dir / "step-00000003"));
    CHECK(io::latest_checkpoint(dir.path)->filename() == "step-00000004");
}
