#include "helpers.hpp"

#include <cmath>
#include <cstring>
#include <functional>

using namespace bitgrad;

namespace packed_file_test {
nn::LlamaConfig config() {
    nn::LlamaConfig c;
    c.vocab_size = 61;
    c.hidden_size = 40;  // in = 40 and 72: partial sign words
    c.intermediate_size = 72;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.max_position_embeddings = 32;
    c.binarized = true;
    return c;
}

std::vector<float> logits_of(const infer::PackedLlama& m, const std::vector<int32_t>& ids) {
    infer::KvCache cache(m.config(), 32);
    std::vector<float> logits(std::size_t(m.config().vocab_size));
    m.forward(ids.data(), int64_t(ids.size()), cache, logits.data());
    return logits;
}

// Rewrites a packed file through `edit`, which may change the tensors (as raw bytes) and metadata.
struct RawTensor {
    std::string name, dtype;
    Shape shape;
    std::string bytes;
};
void rewrite(const std::filesystem::path& from, const std::filesystem::path& to,
             const std::function<void(std::vector<RawTensor>&, std::map<std::string, std::string>&)>& edit) {
    const io::SafetensorsReader r(from.string());
    std::vector<RawTensor> ts;
    for (const auto& e : r.entries())
        ts.push_back({e.name, e.dtype, e.shape,
                      std::string(reinterpret_cast<const char*>(r.bytes(e)), std::size_t(e.end - e.begin))});
    auto meta = r.metadata();
    edit(ts, meta);
    std::vector<io::SafetensorsBlob> blobs;
    for (const auto& t : ts) blobs.push_back({t.name, t.dtype, t.shape, t.bytes.data(), uint64_t(t.bytes.size())});
    io::save_safetensors_blobs(to, blobs, meta);
}
RawTensor& find(std::vector<RawTensor>& ts, const std::string& name) {
    for (auto& t : ts)
        if (t.name == name) return t;
    throw std::runtime_error("no tensor " + name);
}
}  // namespace packed_file_test

TEST_CASE("packed file: save and load give the same model bit for bit - and the documented layout") {
    using namespace packed_file_test;
    testing::TempDir dir("packed-file");
    Rng rng(3);
    nn::FbiLlama<float> student(config(), rng);
    const infer::PackedLlama packed(student, infer::TableFormat::Bf16);  // int8 tables: token_table.test.cpp
    infer::save_packed(dir / "m.safetensors", packed, {{"source", "test"}});
    const infer::PackedLlama loaded = infer::load_packed((dir / "m.safetensors").string());
    const std::vector<int32_t> ids = {1, 5, 60, 0, 33, 33, 7};
    CHECK(logits_of(loaded, ids) == logits_of(packed, ids));
    CHECK(loaded.bytes() == packed.bytes());

    // The layout, read independently of the loader: bit k of byte t of row i is W[i][8t + k] >= 0,
    // alpha and beta are the fp16 of the float values, padding bits are 0.
    const io::SafetensorsReader r((dir / "m.safetensors").string());
    CHECK(r.metadata().at("format") == "bitgrad.packed_fbi_llm");
    CHECK(r.metadata().at("source") == "test");
    CHECK(io::config_from_json(nlohmann::json::parse(r.metadata().at("config")), "test").hidden_size == 40);
    const auto& lin = student.model.layers[1]->mlp.down_proj;  // W [40, 72]
    const auto& e = r.at("model.layers.1.mlp.down_proj.weight_signs");
    CHECK(e.dtype == "U8");
    REQUIRE(e.shape == Shape{40, 16});  // 72 columns -> 2 words of 64 -> 16 bytes per row
    const uint8_t* bytes = r.bytes(e);
    int64_t mismatches = 0;
    for (int64_t i = 0; i < 40; ++i)
        for (int64_t j = 0; j < 128; ++j) {
            const bool bit = (bytes[i * 16 + j / 8] >> (j % 8)) & 1;
            const bool want = j < 72 && lin.weight.value()[i * 72 + j] >= 0.f;
            mismatches += bit != want;
        }
    CHECK(mismatches == 0);
    const Tensor<fp16> alpha = r.read<fp16>("model.layers.1.mlp.down_proj.wscale", Shape{72});
    for (int64_t j = 0; j < 72; ++j) CHECK(to_float(alpha[j]) == round_to_fp16(lin.wscale.value()[j]));
    CHECK(r.at("lm_head.weight").dtype == "BF16");
    CHECK(r.at("model.norm.weight").dtype == "F32");
}

TEST_CASE("packed file: damaged or foreign files are refused - naming the file and what is wrong") {
    using namespace packed_file_test;
    testing::TempDir dir("packed-file-bad");
    Rng rng(4);
    nn::FbiLlama<float> student(config(), rng);
    const auto good = dir / "good.safetensors";
    infer::save_packed(good, infer::PackedLlama(student));
    const auto bad = dir / "bad.safetensors";
    auto refused = [&](const std::function<void(std::vector<RawTensor>&, std::map<std::string, std::string>&)>& edit,
                       const std::string& what) {
        rewrite(good, bad, edit);
        CHECK_THROWS_WITH_AS(infer::load_packed(bad.string()), doctest::Contains(what.c_str()), Error);
        CHECK_THROWS_WITH_AS(infer::load_packed(bad.string()), doctest::Contains(bad.string().c_str()), Error);
    };
    using Ts = std::vector<RawTensor>;
    using Meta = std::map<std::string, std::string>;
    refused([](Ts&, Meta& m) { m.erase("format"); }, "__metadata__.format is missing");
    refused([](Ts&, Meta& m) { m["format"] = "pt"; }, "expected \"bitgrad.packed_fbi_llm\"");
    refused([](Ts&, Meta& m) { m.insert_or_assign("format_version", std::string("2")); }, "format_version is \"2\"");
    refused([](Ts&, Meta& m) { m["config"] = "{not json"; }, "__metadata__.config is not valid JSON");
    refused(
        [](Ts&, Meta& m) {
            auto j = nlohmann::json::parse(m["config"]);
            j["hidden_size"] = 48;
            m["config"] = j.dump();
        },
        "shape [61, 40], expected [61, 48]");
    refused(
        [](Ts&, Meta& m) {
            auto j = nlohmann::json::parse(m["config"]);
            j["num_hidden_layers"] = 3;
            m["config"] = j.dump();
        },
        "model.layers.2.input_layernorm.weight is missing");
    refused(
        [](Ts&, Meta& m) {
            auto j = nlohmann::json::parse(m["config"]);
            j["num_hidden_layers"] = 1;
            m["config"] = j.dump();
        },
        "unexpected tensor model.layers.1.");
    refused([](Ts& t, Meta&) { t.erase(t.begin() + 5); }, "is missing");
    refused(
        [](Ts& t, Meta&) {
            t.push_back({"extra", "F32", Shape{1}, std::string(4, '\0')});
        },
        "unexpected tensor extra");
    refused([](Ts& t, Meta&) { find(t, "model.layers.0.self_attn.q_proj.wscale").dtype = "BF16"; },
            "dtype BF16, expected F16");
    refused(
        [](Ts& t, Meta&) {
            auto& s =
                find(t, "model.layers.0.mlp.down_proj.weight_signs");  // in = 72: bits 8..63 of word 1 are padding
            s.bytes[8 + 2] = char(0x10);
        },
        "nonzero padding bits");
    refused(
        [](Ts& t, Meta&) {
            auto& a = find(t, "model.layers.1.mlp.up_proj.wbias");
            a.bytes[6] = char(0x00), a.bytes[7] = char(0x7c);  // fp16 +inf
        },
        "model.layers.1.mlp.up_proj.wbias has a non-finite value at index 3");
    refused(
        [](Ts& t, Meta&) {
            auto& n = find(t, "model.norm.weight");
            const float nan = std::nanf("");
            std::memcpy(n.bytes.data(), &nan, 4);
        },
        "model.norm.weight has a non-finite value");
    refused(
        [](Ts& t, Meta&) {
            auto& s = find(t, "model.layers.0.self_attn.k_proj.weight_signs");
            s.shape = Shape{s.shape[0] / 2, s.shape[1] * 2};
        },
        "weight_signs: shape");

    // A truncated file is caught by the container checks.
    const std::string bytes = testing::read_bytes(good);
    testing::write_bytes(bad, bytes.substr(0, bytes.size() - 3));
    CHECK_THROWS_WITH_AS(infer::load_packed(bad.string()), doctest::Contains("data section"), Error);
    // A float checkpoint is not a packed model.
    io::save_model(dir / "float", student, student.config);
    CHECK_THROWS_WITH_AS(infer::load_packed((dir / "float" / "model.safetensors").string()),
                         doctest::Contains("__metadata__.format"), Error);
}

TEST_CASE("safetensors: tensors of several dtypes round-trip through the raw reader and writer") {
    testing::TempDir dir("st-mixed");
    Tensor<bf16> b({2, 3});
    Tensor<fp16> h({3});
    Tensor<uint8_t> u({5});
    for (int64_t i = 0; i < 6; ++i) b[i] = to_bf16(float(i) - 2.5f);
    for (int64_t i = 0; i < 3; ++i) h[i] = to_fp16(0.1f * float(i));
    for (int64_t i = 0; i < 5; ++i) u[i] = uint8_t(250 + i);
    io::save_safetensors_blobs(
        dir / "m.safetensors",
        {io::safetensors_blob("b", b), io::safetensors_blob("h", h), io::safetensors_blob("u", u)}, {{"k", "v"}});
    const io::SafetensorsReader r((dir / "m.safetensors").string());
    REQUIRE(r.entries().size() == 3);
    CHECK(r.entries()[0].dtype == "BF16");
    CHECK(r.entries()[1].dtype == "F16");
    CHECK(r.entries()[2].dtype == "U8");
    const auto b2 = r.read<bf16>("b", Shape{2, 3});
    for (int64_t i = 0; i < 6; ++i) CHECK(to_float(b2[i]) == float(i) - 2.5f);
    const auto h2 = r.read<fp16>("h");
    for (int64_t i = 0; i < 3; ++i) CHECK(h2[i].bits == h[i].bits);
    CHECK(r.read<uint8_t>("u")[4] == 254);
    CHECK_THROWS_WITH_AS(r.read<float>("b"), doctest::Contains("tensor b: dtype BF16, expected F32"), Error);
    CHECK_THROWS_WITH_AS(r.read<bf16>("b", Shape{3, 2}), doctest::Contains("shape [2, 3], expected [3, 2]"), Error);
    CHECK_THROWS_WITH_AS(r.read<bf16>("nope"), doctest::Contains("tensor nope is missing"), Error);
    // The typed whole-file loader still refuses other dtypes, naming the tensor.
    CHECK_THROWS_WITH_AS(io::load_safetensors<float>((dir / "m.safetensors").string()),
                         doctest::Contains("tensor b: dtype BF16, expected F32"), Error);
}
