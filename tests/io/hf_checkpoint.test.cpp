// Hugging Face LLaMA checkpoints (io/hf_checkpoint.hpp): a tiny model written here the way
// transformers' save_pretrained lays it out (config.json, BF16 shards, model.safetensors.index.json),
// read back; then the damaged and the unsupported variants, each refused naming file and field.
#include "helpers.hpp"

#include <nlohmann/json.hpp>

#include <fstream>

using namespace bitgrad;

namespace {
// The model's tensors as BF16 blobs (the bits kept alive in `storage`), split over two shards.
void write_bf16_sharded(const std::filesystem::path& dir, const nn::Module<float>& model, bool drop_lm_head,
                        std::vector<std::vector<bf16>>& storage) {
    std::vector<io::SafetensorsBlob> shard[2];
    nlohmann::json weight_map = nlohmann::json::object();
    const auto params = model.named_parameters();
    storage.clear();
    storage.reserve(params.size());
    for (std::size_t i = 0; i < params.size(); ++i) {
        const auto& p = params[i];
        if (drop_lm_head && p.name == "lm_head.weight") continue;
        auto& bits = storage.emplace_back();
        for (int64_t k = 0; k < p.var.numel(); ++k) bits.push_back(to_bf16(p.var.value()[k]));
        const int s = i < params.size() / 2 ? 0 : 1;
        shard[s].push_back({p.name, "BF16", p.var.shape(), bits.data(), uint64_t(bits.size()) * 2});
        weight_map[p.name] = "model-0000" + std::to_string(s + 1) + "-of-00002.safetensors";
    }
    for (int s = 0; s < 2; ++s)
        io::save_safetensors_blobs(dir / ("model-0000" + std::to_string(s + 1) + "-of-00002.safetensors"), shard[s],
                                   {{"format", "pt"}});
    std::ofstream(dir / "model.safetensors.index.json")
        << nlohmann::json({{"metadata", {{"total_size", 0}}}, {"weight_map", weight_map}}).dump(2);
}

nlohmann::json hf_config(const nn::LlamaConfig& c) {
    return {{"architectures", {"LlamaForCausalLM"}},
            {"model_type", "llama"},
            {"hidden_act", "silu"},
            {"vocab_size", c.vocab_size},
            {"hidden_size", c.hidden_size},
            {"intermediate_size", c.intermediate_size},
            {"num_hidden_layers", c.num_hidden_layers},
            {"num_attention_heads", c.num_attention_heads},
            {"num_key_value_heads", c.num_key_value_heads},
            {"max_position_embeddings", c.max_position_embeddings},
            {"rope_scaling", nullptr},
            {"torch_dtype", "bfloat16"},
            {"tie_word_embeddings", false}};
}
}  // namespace

TEST_CASE("HF checkpoint: BF16 shards with an index load into a float model - every value the bf16 rounding") {
    testing::TempDir dir("hf-sharded");
    auto c = nn::LlamaConfig::preset("tiny");
    c.num_key_value_heads = 2;  // GQA, as TinyLlama
    Rng rng(3);
    nn::DenseLlama<float> source(c, rng);
    std::vector<std::vector<bf16>> storage;
    write_bf16_sharded(dir.path, source, false, storage);
    std::ofstream(dir / "config.json") << hf_config(c).dump(2);

    const auto config = io::load_config(dir / "config.json");
    CHECK(config.num_key_value_heads == 2);
    CHECK(config.rms_norm_eps == 1e-6);  // Hugging Face's default when the key is absent
    Rng other(99);
    nn::DenseLlama<float> loaded(config, other);
    io::load_hf_weights(dir.path, loaded, config.tie_word_embeddings);
    const auto a = source.named_parameters(), b = loaded.named_parameters();
    REQUIRE(a.size() == b.size());
    for (std::size_t i = 0; i < a.size(); ++i)
        for (int64_t k = 0; k < a[i].var.numel(); ++k)
            REQUIRE(b[i].var.value()[k] == round_to_bf16(a[i].var.value()[k]));
}

TEST_CASE("HF checkpoint: tie_word_embeddings without lm_head.weight - the lm_head is the embedding") {
    testing::TempDir dir("hf-tied");
    const auto c = nn::LlamaConfig::preset("tiny");
    Rng rng(4);
    nn::DenseLlama<float> source(c, rng);
    std::vector<std::vector<bf16>> storage;
    write_bf16_sharded(dir.path, source, /*drop_lm_head=*/true, storage);
    Rng other(5);
    nn::DenseLlama<float> loaded(c, other);
    CHECK_THROWS_WITH_AS(io::load_hf_weights(dir.path, loaded, false), doctest::Contains("lm_head.weight"), Error);
    io::load_hf_weights(dir.path, loaded, true);
    CHECK(max_abs_diff(loaded.lm_head.weight.value(), loaded.model.embed_tokens.weight.value()) == 0);
}

TEST_CASE("HF checkpoint: damaged indexes and shards are refused naming the file and the tensor") {
    testing::TempDir dir("hf-bad");
    const auto c = nn::LlamaConfig::preset("tiny");
    Rng rng(6);
    nn::DenseLlama<float> model(c, rng);
    CHECK_THROWS_WITH_AS(io::load_hf_weights(dir.path, model, false),
                         doctest::Contains("neither model.safetensors nor model.safetensors.index.json"), Error);
    std::vector<std::vector<bf16>> storage;
    write_bf16_sharded(dir.path, model, false, storage);
    const auto index_path = dir / "model.safetensors.index.json";
    auto index = load_json(index_path);
    auto write_index = [&](const nlohmann::json& j) { std::ofstream(index_path) << j.dump(); };

    auto escaping = index;
    escaping["weight_map"]["model.norm.weight"] = "../model-00001-of-00002.safetensors";
    write_index(escaping);
    CHECK_THROWS_WITH_AS(io::load_hf_weights(dir.path, model, false),
                         doctest::Contains("expected a file name in the same directory"), Error);

    auto missing_file = index;
    missing_file["weight_map"]["model.norm.weight"] = "model-00003-of-00002.safetensors";
    write_index(missing_file);
    CHECK_THROWS_WITH_AS(io::load_hf_weights(dir.path, model, false),
                         doctest::Contains("model-00003-of-00002.safetensors"), Error);

    auto wrong_shard = index;
    wrong_shard["weight_map"]["model.norm.weight"] = wrong_shard["weight_map"]["model.embed_tokens.weight"];
    if (wrong_shard["weight_map"]["model.norm.weight"] == index["weight_map"]["model.norm.weight"])
        wrong_shard["weight_map"]["model.norm.weight"] = wrong_shard["weight_map"]["lm_head.weight"];
    write_index(wrong_shard);
    CHECK_THROWS_WITH_AS(io::load_hf_weights(dir.path, model, false),
                         doctest::Contains("weight_map puts model.norm.weight in"), Error);

    auto not_object = index;
    not_object["weight_map"] = "model.safetensors";
    write_index(not_object);
    CHECK_THROWS_WITH_AS(io::load_hf_weights(dir.path, model, false),
                         doctest::Contains("field \"weight_map\" must be an object"), Error);

    // An integer dtype where a weight belongs (one-file layout: model.safetensors).
    testing::TempDir single("hf-i8");
    std::vector<io::SafetensorsBlob> blobs;
    std::vector<std::vector<bf16>> bits;
    std::vector<int8_t> ints;
    const auto params = model.named_parameters();
    bits.reserve(params.size());
    for (const auto& p : params) {
        if (p.name == "model.norm.weight") {
            ints.assign(std::size_t(p.var.numel()), 1);
            blobs.push_back({p.name, "I8", p.var.shape(), ints.data(), uint64_t(ints.size())});
            continue;
        }
        auto& b = bits.emplace_back();
        for (int64_t k = 0; k < p.var.numel(); ++k) b.push_back(to_bf16(p.var.value()[k]));
        blobs.push_back({p.name, "BF16", p.var.shape(), b.data(), uint64_t(b.size()) * 2});
    }
    io::save_safetensors_blobs(single / "model.safetensors", blobs);
    CHECK_THROWS_WITH_AS(io::load_hf_weights(single.path, model, false),
                         doctest::Contains("model.norm.weight: dtype I8, expected F32, F64, F16 or BF16"), Error);
}

TEST_CASE("HF config.json: what bitgrad cannot run is refused naming the field") {
    const auto c = nn::LlamaConfig::preset("tiny");
    auto refused = [&](const char* key, const nlohmann::json& value, const char* message) {
        auto j = hf_config(c);
        j[key] = value;
        CAPTURE(key);
        CHECK_THROWS_WITH_AS(io::config_from_json(j, "x/config.json"), doctest::Contains(message), Error);
    };
    refused("architectures", {"MistralForCausalLM"}, "field \"architectures\" is [\"MistralForCausalLM\"]");
    refused("model_type", "mistral", "field \"model_type\" is \"mistral\", expected \"llama\"");
    refused("hidden_act", "gelu", "field \"hidden_act\" is \"gelu\"");
    refused("rope_scaling", {{"type", "linear"}, {"factor", 2.0}}, "field \"rope_scaling\" is set");
    refused("attention_bias", true, "field \"attention_bias\" is true");
    auto tied = hf_config(c);
    tied["tie_word_embeddings"] = true;
    CHECK(io::config_from_json(tied, "x").tie_word_embeddings);
    // Round trip through bitgrad's writer keeps the flag, and names the weights' real dtype.
    const auto written = io::config_to_json(io::config_from_json(tied, "x"), "float64");
    CHECK(written["tie_word_embeddings"] == true);
    CHECK(written["torch_dtype"] == "float64");
}

TEST_CASE("HF checkpoint: a BF16 teacher loads into FrozenLlama with its stored bits - no float copy") {
    testing::TempDir dir("hf-frozen");
    auto c = nn::LlamaConfig::preset("tiny");
    c.num_key_value_heads = 2;
    Rng rng(11);
    nn::DenseLlama<float> source(c, rng);
    std::vector<std::vector<bf16>> storage;
    write_bf16_sharded(dir.path, source, false, storage);
    const io::HfCheckpoint checkpoint(dir.path);
    CHECK(checkpoint.half_precision());
    const auto frozen = infer::FrozenLlama::load(checkpoint, c);
    // The same model frozen from its float weights rounds each to the same bf16: equal bytes, equal outputs.
    const infer::FrozenLlama reference(source);
    CHECK(frozen.bytes() == reference.bytes());
    Tensor<int32_t> ids({2, 5});
    for (int64_t i = 0; i < ids.numel(); ++i) ids[i] = int32_t((7 * i + 3) % c.vocab_size);
    const auto h = frozen.hidden_states(ids), h_ref = reference.hidden_states(ids);
    CHECK(max_abs_diff(h, h_ref) == 0);
    Tensor<float> logits({10, c.vocab_size}), logits_ref({10, c.vocab_size});
    frozen.logits(h.data(), 10, logits.data());
    reference.logits(h_ref.data(), 10, logits_ref.data());
    CHECK(max_abs_diff(logits, logits_ref) == 0);
}

TEST_CASE("HF checkpoint: FrozenLlama::load is strict about names and ties the lm_head when told") {
    testing::TempDir dir("hf-frozen-strict");
    const auto c = nn::LlamaConfig::preset("tiny");
    Rng rng(12);
    nn::DenseLlama<float> source(c, rng);
    std::vector<std::vector<bf16>> storage;
    write_bf16_sharded(dir.path, source, /*drop_lm_head=*/true, storage);
    CHECK_THROWS_WITH_AS(infer::FrozenLlama::load(io::HfCheckpoint(dir.path), c),
                         doctest::Contains("tensor lm_head.weight is missing"), Error);
    auto tied = c;
    tied.tie_word_embeddings = true;
    const auto frozen = infer::FrozenLlama::load(io::HfCheckpoint(dir.path), tied);
    Tensor<int32_t> ids({1, 4});
    for (int64_t i = 0; i < 4; ++i) ids[i] = int32_t(i + 1);
    const auto h = frozen.hidden_states(ids);
    Tensor<float> logits({4, c.vocab_size});
    frozen.logits(h.data(), 4, logits.data());
    for (int64_t r = 0; r < 4; ++r)  // lm_head row v is the embedding row v, in bf16
        for (int64_t v = 0; v < c.vocab_size; v += 17) {
            double dot = 0;
            for (int64_t k = 0; k < c.hidden_size; ++k)
                dot += double(round_to_bf16(h[r * c.hidden_size + k])) *
                       double(round_to_bf16(source.model.embed_tokens.weight.value()[v * c.hidden_size + k]));
            CHECK(logits[r * c.vocab_size + v] == doctest::Approx(dot).epsilon(1e-4));
        }
    // A binarized student's files hold wscale / wbias: not a full-precision LLaMA.
    testing::TempDir fbi_dir("hf-frozen-fbi");
    auto fc = c;
    fc.binarized = true;
    nn::FbiLlama<float> student(fc, rng);
    io::save_hf_model(fbi_dir.path, student, fc);
    CHECK_THROWS_WITH_AS(infer::FrozenLlama::load(io::HfCheckpoint(fbi_dir.path), c),
                         doctest::Contains("wbias is not part of a full-precision LLaMA"), Error);
    // The float loader lists every tensor that does not fit, before reading any value.
    nn::DenseLlama<float> dense(c, rng);
    const std::string first_unexpected =
        "the tensors do not match the model\nunexpected:\n  "
        "model.layers.0.mlp.down_proj.wbias [1, " +
        std::to_string(c.intermediate_size) + "]";  // down_proj reads the MLP
    CHECK_THROWS_WITH_AS(io::load_hf_weights(fbi_dir.path, dense, false), doctest::Contains(first_unexpected.c_str()),
                         Error);
}

TEST_CASE("HF export: F32 BF16 and F16 files hold each weight rounded once and config.json says which") {
    const auto c = nn::LlamaConfig::preset("tiny");
    auto fc = c;
    fc.binarized = true;
    Rng rng(13);
    nn::FbiLlama<float> student(fc, rng);
    for (io::HfDtype dtype : {io::HfDtype::F32, io::HfDtype::BF16, io::HfDtype::F16}) {
        CAPTURE(io::torch_dtype_name(dtype));
        testing::TempDir dir("hf-export");
        io::save_hf_model(dir.path, student, fc, dtype);
        CHECK(load_json(dir / "config.json")["torch_dtype"] == io::torch_dtype_name(dtype));
        const io::SafetensorsReader reader((dir / "model.safetensors").string());
        const auto params = student.named_parameters();
        REQUIRE(reader.entries().size() == params.size());
        Rng other(14);
        nn::FbiLlama<float> loaded(io::load_config(dir / "config.json"), other);
        io::load_hf_weights(dir.path, loaded, false);
        const auto back = loaded.named_parameters();
        for (std::size_t i = 0; i < params.size(); ++i) {
            CHECK(reader.at(params[i].name).dtype == io::safetensors_dtype_name(dtype));
            for (int64_t k = 0; k < params[i].var.numel(); ++k) {
                const float x = params[i].var.value()[k];
                const float expected = dtype == io::HfDtype::F32    ? x
                                       : dtype == io::HfDtype::BF16 ? round_to_bf16(x)
                                                                    : to_float(to_fp16(x));
                REQUIRE(back[i].var.value()[k] == expected);
                if (x != 0) REQUIRE(std::signbit(back[i].var.value()[k]) == std::signbit(x));  // signs survive
            }
        }
    }
    // float16 cannot hold 1e5: refused by tensor name, nothing written.
    testing::TempDir dir("hf-export-f16");
    student.model.norm.weight.value()[3] = 1e5f;
    CHECK_THROWS_WITH_AS(io::save_hf_model(dir.path, student, fc, io::HfDtype::F16),
                         doctest::Contains("tensor model.norm.weight holds 100000 at flat index 3"), Error);
    CHECK(!std::filesystem::exists(dir / "model.safetensors"));
    CHECK(io::parse_hf_dtype("bf16") == io::HfDtype::BF16);
    CHECK(io::parse_hf_dtype("float16") == io::HfDtype::F16);
    CHECK(!io::parse_hf_dtype("int8"));
    CHECK(std::string(io::hf_format_name(io::HfFormat::Pytorch)) == "pytorch");
    CHECK(io::parse_hf_format("safetensors") == io::HfFormat::Safetensors);
    CHECK(io::parse_hf_format("both") == io::HfFormat::Both);
    CHECK(!io::parse_hf_format("onnx"));
}
