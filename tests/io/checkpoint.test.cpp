#include "helpers.hpp"

using namespace bitgrad;

TEST_CASE("config.json round trip and errors naming the field") {
    testing::TempDir dir("config");
    auto c = nn::LlamaConfig::preset("tiny");
    c.binarized = true;
    c.ste = Ste::Clipped;
    c.num_key_value_heads = 2;
    io::save_config(dir / "config.json", c);
    c.bos_token_id = 5;
    c.eos_token_id = 6;
    c.pad_token_id = 7;
    io::save_config(dir / "config.json", c);
    auto d = io::load_config(dir / "config.json");
    CHECK(d.hidden_size == c.hidden_size);
    CHECK(d.bos_token_id == 5);
    CHECK(d.eos_token_id == 6);
    CHECK(d.pad_token_id == 7);
    CHECK(d.num_key_value_heads == 2);
    CHECK(d.binarized);
    CHECK(d.ste == Ste::Clipped);
    auto j = io::config_to_json(c);
    j.erase("hidden_size");
    CHECK_THROWS_WITH_AS(io::config_from_json(j, "cfg"), doctest::Contains("missing field \"hidden_size\""), Error);
    j = io::config_to_json(c);
    j["num_attention_heads"] = "four";
    CHECK_THROWS_WITH_AS(io::config_from_json(j, "cfg"),
                         doctest::Contains("\"num_attention_heads\" must be an integer"), Error);
    j = io::config_to_json(c);
    j["num_key_value_heads"] = 3;
    CHECK_THROWS_WITH_AS(io::config_from_json(j, "cfg"), doctest::Contains("does not divide"), Error);
    testing::write_bytes(dir / "bad.json", "{\"vocab_size\": ");
    CHECK_THROWS_WITH_AS(io::load_config(dir / "bad.json"), doctest::Contains("not valid JSON"), Error);
}

TEST_CASE("model weights round trip and loading checks names and shapes") {
    testing::TempDir dir("weights");
    Rng rng(3);
    auto c = nn::LlamaConfig::preset("tiny");
    nn::FbiLlama<float> a(c, rng), b(c, rng);
    io::save_model(dir.path, a, a.config);
    io::load_model_weights(dir.path, b);
    CHECK(max_abs_diff(a.lm_head.weight.value(), b.lm_head.weight.value()) == 0);
    CHECK(max_abs_diff(a.model.layers[1]->mlp.down_proj.wscale.value(),
                       b.model.layers[1]->mlp.down_proj.wscale.value()) == 0);
    nn::DenseLlama<float> dense(c, rng);  // no wscale/wbias: the file has extra tensors
    CHECK_THROWS_WITH_AS(io::load_model_weights(dir.path, dense), doctest::Contains("unexpected"), Error);
}

TEST_CASE("an interrupted checkpoint save leaves the previous checkpoint complete and loadable") {
    testing::TempDir dir("ckpt");
    Rng rng(4);
    auto c = nn::LlamaConfig::preset("tiny");
    nn::FbiLlama<float> model(c, rng);
    optim::AdamW<float> opt(optim::param_groups(model.named_parameters(), 0.1), {});
    auto first = io::save_checkpoint(dir.path, 10, model, c, opt, {{"step", 10}}, 3);
    const auto saved = model.lm_head.weight.value().clone();
    model.lm_head.weight.value().fill(7.f);
    io::detail::checkpoint_fault_hook() = [](const char*) { throw Error("simulated crash before rename"); };
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

TEST_CASE("checkpoints beyond keep_last are pruned - newest kept") {
    testing::TempDir dir("prune");
    Rng rng(5);
    auto c = nn::LlamaConfig::preset("tiny");
    nn::DenseLlama<float> model(c, rng);
    optim::AdamW<float> opt(optim::param_groups(model.named_parameters(), 0.1), {});
    for (int s : {1, 2, 3, 4}) io::save_checkpoint(dir.path, s, model, c, opt, {{"step", s}}, 2);
    CHECK_FALSE(std::filesystem::exists(dir / "step-00000002"));
    CHECK(std::filesystem::exists(dir / "step-00000003"));
    CHECK(io::latest_checkpoint(dir.path)->filename() == "step-00000004");
}

namespace {
// The lm_head weight of the checkpoint's model file (to tell two saves of one step apart).
float saved_lm_head_value(const std::filesystem::path& dir) {
    return io::load_safetensors<float>((dir / "model.safetensors").string()).by_name().at("lm_head.weight")[0];
}
}  // namespace

TEST_CASE("re-saving a step that already has a checkpoint never loses it: a crash at every stage") {
    // Saving step 5 twice happens on --resume of a finished run and when Ctrl-C lands on a
    // --save-every step. Whatever stage the second save dies at, a complete step 5 remains.
    const std::vector<std::pair<const char*, float>> stages = {
        {"files_written", 1.f}, {"old_renamed", 1.f}, {"new_renamed", 2.f}, {"old_removed", 2.f}};
    for (auto [stage, expected] : stages) {
        CAPTURE(stage);
        testing::TempDir dir(std::string("resave-") + stage);
        Rng rng(6);
        auto c = nn::LlamaConfig::preset("tiny");
        nn::DenseLlama<float> model(c, rng);
        optim::AdamW<float> opt(optim::param_groups(model.named_parameters(), 0.1), {});
        model.lm_head.weight.value()[0] = 1.f;
        io::save_checkpoint(dir.path, 5, model, c, opt, {{"step", 5}}, 2);
        model.lm_head.weight.value()[0] = 2.f;
        io::detail::checkpoint_fault_hook() = [stage = std::string(stage)](const char* s) {
            if (stage == s) throw Error(std::string("simulated kill at ") + s);
        };
        CHECK_THROWS_WITH_AS(io::save_checkpoint(dir.path, 5, model, c, opt, {{"step", 5}}, 2),
                             doctest::Contains("simulated kill"), Error);
        io::detail::checkpoint_fault_hook() = nullptr;
        auto latest = io::latest_checkpoint(dir.path);
        REQUIRE(latest);
        CHECK(latest->filename().string().rfind("step-00000005", 0) == 0);
        CHECK(std::filesystem::exists(*latest / io::kCheckpointMarker));
        CHECK(saved_lm_head_value(*latest) == expected);
        nn::DenseLlama<float> restored(c, rng);
        io::load_model_weights(*latest, restored);  // every file of it is there and loads
        // The next save of the same step cleans up and leaves exactly one step-5 directory.
        io::save_checkpoint(dir.path, 5, model, c, opt, {{"step", 5}}, 2);
        int dirs = 0;
        for (auto& e : std::filesystem::directory_iterator(dir.path)) dirs += e.is_directory();
        CHECK(dirs == 1);
        CHECK(saved_lm_head_value(*io::latest_checkpoint(dir.path)) == 2.f);
    }
}

TEST_CASE("a checkpoint directory without its completion marker is never taken as complete") {
    testing::TempDir dir("half-deleted");
    Rng rng(7);
    auto c = nn::LlamaConfig::preset("tiny");
    nn::DenseLlama<float> model(c, rng);
    optim::AdamW<float> opt(optim::param_groups(model.named_parameters(), 0.1), {});
    io::save_checkpoint(dir.path, 3, model, c, opt, {{"step", 3}}, 5);
    auto four = io::save_checkpoint(dir.path, 4, model, c, opt, {{"step", 4}}, 5);
    // A deletion that died half-way: trainer_state.json is still there, the marker is not.
    std::filesystem::remove(four / io::kCheckpointMarker);
    std::filesystem::remove(four / "model.safetensors");
    std::vector<std::string> warnings;
    auto latest = io::latest_checkpoint(dir.path, [&](const std::string& w) { warnings.push_back(w); });
    REQUIRE(latest);
    CHECK(latest->filename() == "step-00000003");
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].find("step-00000004") != std::string::npos);
}

TEST_CASE("fsync of a directory that cannot be opened is an error - not ignored") {
    CHECK_THROWS_WITH_AS(fsync_directory("/nonexistent-bitgrad-dir"), doctest::Contains("/nonexistent-bitgrad-dir"),
                         Error);
}

TEST_CASE("weights that are not finite are refused at load - naming the tensor") {
    testing::TempDir dir("nan-weights");
    Rng rng(8);
    auto c = nn::LlamaConfig::preset("tiny");
    nn::FbiLlama<float> model(c, rng), other(c, rng);
    model.model.layers[1]->mlp.up_proj.wscale.value()[3] = std::numeric_limits<float>::infinity();
    io::save_model(dir.path, model, model.config);
    CHECK_THROWS_WITH_AS(io::load_model_weights(dir.path, other),
                         doctest::Contains("tensor model.layers.1.mlp.up_proj.wscale holds 1 non-finite values (NaN or "
                                           "Inf; the first at flat index 3"),
                         Error);
    io::load_model_weights(dir.path, other, /*allow_nonfinite=*/true);
    CHECK(std::isinf(other.model.layers[1]->mlp.up_proj.wscale.value()[3]));
}

TEST_CASE("config.json: nesting and sizes are bounded before anything is allocated") {
    std::string deep(100000, '[');
    deep += std::string(100000, ']');
    CHECK_THROWS_WITH_AS(parse_json(deep, "deep.json"),
                         doctest::Contains("deep.json: JSON nested deeper than 64 levels"), Error);
    auto j = io::config_to_json(nn::LlamaConfig::preset("tiny"));
    j["hidden_size"] = int64_t(1000000000000);
    j["num_attention_heads"] = 1;
    j["num_key_value_heads"] = 1;
    CHECK_THROWS_WITH_AS(io::config_from_json(j, "big.json"),
                         doctest::Contains("big.json: LlamaConfig (hidden_size 1000000000000"), Error);
    j = io::config_to_json(nn::LlamaConfig::preset("tiny"));
    j["num_hidden_layers"] = int64_t(1000000000);
    const auto c = io::config_from_json(j, "layers.json");  // representable...
    Rng rng(1);
    // ...but the model is refused before its first weight is allocated.
    CHECK_THROWS_WITH_AS(nn::DenseLlama<float>(c, rng), doctest::Contains("a model of"), Error);
    j = io::config_to_json(nn::LlamaConfig::preset("tiny"));
    j.erase("rms_norm_eps");  // absent: Hugging Face LlamaConfig's default
    CHECK(io::config_from_json(j, "eps.json").rms_norm_eps == 1e-6);
}

TEST_CASE("LlamaConfig::num_parameters counts what the model allocates") {
    for (bool binarized : {false, true}) {
        auto c = nn::LlamaConfig::preset("tiny");
        c.num_key_value_heads = 2;
        c.binarized = binarized;
        Rng rng(2);
        const int64_t actual =
            binarized ? nn::FbiLlama<float>(c, rng).num_parameters() : nn::DenseLlama<float>(c, rng).num_parameters();
        CHECK(c.num_parameters() == actual);
    }
}
