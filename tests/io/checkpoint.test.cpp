#include "../core/child_process.hpp"
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
    j.erase("rms_norm_eps");  // absent: Hugging Face LlamaConfig's default
    CHECK(io::config_from_json(j, "eps.json").rms_norm_eps == 1e-6);
}

TEST_CASE("config.json: a model that cannot fit is refused naming the file and the size field most responsible") {
    testing::TempDir dir("config-size");
    testing::ScopedEnv limit("BITGRAD_MEMORY_LIMIT", "1000000000");
    // tiny (vocab 64, hidden 16, 2 layers, 4 heads) with intermediate_size 10^12: per layer
    // 16 x 64 (q, k, v, o) + 3 x 16 x 10^12 (gate, up, down) + 32 (norms), plus 2 x 64 x 16 + 16:
    // 96000000004176 parameters, 12000 GB even at 1 bit each; at LLaMA-7B's 11008, 1060944.
    auto j = io::config_to_json(nn::LlamaConfig::preset("tiny"));
    j["intermediate_size"] = int64_t(1000000000000);
    testing::write_bytes(dir / "config.json", j.dump());
    const std::string path = (dir / "config.json").string();
    const std::string refusal =
        path +
        ": field \"intermediate_size\" is 1000000000000 (LLaMA-7B's is 11008; with that, 1060944 "
        "parameters): a model of 96000000004176 parameters (hidden_size 16, intermediate_size "
        "1000000000000, 2 layers, vocab_size 64) at 1 bit a parameter (the least bitgrad stores) needs "
        "12000.00 GB but only 1.00 GB of memory is available (bound by BITGRAD_MEMORY_LIMIT)";
    CHECK_THROWS_WITH_AS(io::load_config(dir / "config.json"), refusal.c_str(), Error);

    // 10^6 layers: 2592 parameters each + 2064 = 2592002064, 324 MB at 1 bit: the config loads...
    j = io::config_to_json(nn::LlamaConfig::preset("tiny"));
    j["num_hidden_layers"] = int64_t(1000000);
    testing::write_bytes(dir / "config.json", j.dump());
    const auto c = io::load_config(dir / "config.json");
    // ...but its float model (10.37 GB) is refused before its first weight is allocated, naming the
    // field; and by load_config, naming the file too, when asked for the float size.
    const std::string model =
        "field \"num_hidden_layers\" is 1000000 (LLaMA-7B's is 32; with that, 85008 "
        "parameters): a model of 2592002064 parameters";
    Rng rng(1);
    const std::string in_float =
        model + " (hidden_size 16, intermediate_size 32, 1000000 layers, vocab_size 64) in float32 needs 10.37 GB";
    CHECK_THROWS_WITH_AS(nn::DenseLlama<float>(c, rng), doctest::Contains(in_float.c_str()), Error);
    const std::string from_file = path + ": " + model;
    CHECK_THROWS_WITH_AS(io::load_config(dir / "config.json", sizeof(float)), doctest::Contains(from_file.c_str()),
                         Error);
    CHECK_THROWS_WITH_AS(io::load_config(dir / "config.json", sizeof(float)),
                         doctest::Contains("at 4 bytes a parameter needs 10.37 GB"), Error);
    // A config whose sizes are all within LLaMA-7B's names no field: the machine is what is small.
    try {
        nn::DenseLlama<float> big(nn::LlamaConfig::preset("1.3B"), rng);
        FAIL("a 1.3B float model was built under a 1 GB limit");
    } catch (const Error& e) { CHECK(std::string(e.what()).rfind("a model of ", 0) == 0); }
}

TEST_CASE("save_model writes the STE the binarized layers hold - not a config.ste assigned after the build") {
    testing::TempDir dir("ste");
    Rng rng(4);
    nn::FbiLlama<float> model(nn::LlamaConfig::preset("tiny"), rng);  // built with identity
    model.config.ste = Ste::Clipped;                                  // changes nothing the layers do...
    io::save_model(dir.path, model, model.config);
    CHECK(io::load_config(dir / "config.json").ste == Ste::Identity);  // ...so config.json says identity
    model.set_ste(Ste::ApproxSign);
    io::save_model(dir.path, model, model.config);
    CHECK(io::load_config(dir / "config.json").ste == Ste::ApproxSign);
    io::save_hf_model(dir / "hf", model, nn::LlamaConfig::preset("tiny"));  // a config passed separately too
    CHECK(io::load_config(dir / "hf" / "config.json").ste == Ste::ApproxSign);
    // Layers that disagree cannot be described by one config.json: refused, naming two of them.
    model.model.layers[1]->mlp.up_proj.ste = Ste::Clipped;
    CHECK_THROWS_WITH_AS(io::save_model(dir / "mixed", model, model.config),
                         doctest::Contains("the binarized layers hold different STEs: "
                                           "model.layers.0.self_attn.q_proj approx_sign, model.layers.1.mlp.up_proj "
                                           "clipped (set one for all with set_ste)"),
                         Error);
    CHECK_FALSE(std::filesystem::exists(dir / "mixed" / "config.json"));
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
