// The 8-bit table format (kernels/gemv_int8.hpp, infer/token_table.hpp), the packed file with int8
// tables, and eval::perplexity of a packed model against the tape model's.
#include "eval/tape_lm.hpp"
#include "helpers.hpp"

#include <cmath>
#include <cstring>
#include <limits>
#include <optional>

#include "bitgrad/eval/perplexity.hpp"
#include "bitgrad/infer/packed_file.hpp"

using namespace bitgrad;

namespace token_table_test {
nn::LlamaConfig table_config() {
    nn::LlamaConfig c;
    c.vocab_size = 53;
    c.hidden_size = 40;
    c.intermediate_size = 72;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.max_position_embeddings = 24;
    c.binarized = true;
    return c;
}
}  // namespace token_table_test
using namespace token_table_test;

TEST_CASE("quantize_int8_row: absmax scale - rounding to nearest - zero rows - every value within scale / 2") {
    const std::vector<float> w = {0.5f, -1.27f, 0.004f, 0.016f, 1.27f};  // scale 0.01: 50, -127, 0, 2, 127
    std::vector<int8_t> q(5);
    const float s = kernels::quantize_int8_row(w.data(), 5, q.data());
    CHECK(s == doctest::Approx(0.01f).epsilon(1e-6));
    CHECK(int(q[0]) == 50);
    CHECK(int(q[1]) == -127);
    CHECK(int(q[2]) == 0);
    CHECK(int(q[3]) == 2);
    CHECK(int(q[4]) == 127);
    const std::vector<float> zeros(7, 0.f);
    std::vector<int8_t> qz(7, 5);
    CHECK(kernels::quantize_int8_row(zeros.data(), 7, qz.data()) == 0.f);
    CHECK(std::all_of(qz.begin(), qz.end(), [](int8_t v) { return v == 0; }));
    Rng rng(61);
    const auto r = Tensor<float>::randn({1000}, rng);
    std::vector<int8_t> qr(1000);
    const float sr = kernels::quantize_int8_row(r.data(), 1000, qr.data());
    double worst = 0;
    for (int64_t j = 0; j < 1000; ++j)
        worst = std::max(worst, std::abs(double(r[j]) - double(sr) * qr[std::size_t(j)]));
    CHECK(worst <= 0.5 * sr * (1 + 1e-5));
}

TEST_CASE("TokenTable refuses a non-finite weight for int8 - naming the row and column") {
    auto w = Tensor<float>::full({3, 4}, 0.5f);
    w[2 * 4 + 1] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH_AS(infer::TokenTable(w, infer::TableFormat::Int8),
                         doctest::Contains("TokenTable: weight [2, 1] is nan, expected a finite value"), Error);
    w[2 * 4 + 1] = std::numeric_limits<float>::infinity();
    CHECK_THROWS_WITH_AS(infer::TokenTable(w, infer::TableFormat::Int8), doctest::Contains("weight [2, 1] is inf"),
                         Error);
    w[2 * 4 + 1] = 1.f;
    CHECK(infer::TokenTable(w, infer::TableFormat::Int8).int8_values()[2 * 4 + 1] == 127);
}

TEST_CASE("TokenTable: rows and products agree between gemv and matmul - int8 within its rounding of bf16") {
    Rng rng(63);
    const auto w = Tensor<float>::randn({37, 29}, rng, 0.05);
    const infer::TokenTable b(w, infer::TableFormat::Bf16), q(w, infer::TableFormat::Int8);
    CHECK(b.bytes() == 2 * 37 * 29);
    CHECK(q.bytes() == 37 * 29 + 4 * 37);
    std::vector<float> rb(29), rq(29);
    double worst_row = 0;
    for (int64_t v = 0; v < 37; ++v) {
        b.row(v, rb.data());
        q.row(v, rq.data());
        double absmax = 0;
        for (int64_t j = 0; j < 29; ++j) absmax = std::max(absmax, std::abs(double(w[v * 29 + j])));
        for (int64_t j = 0; j < 29; ++j) {
            CHECK(rb[std::size_t(j)] == round_to_bf16(w[v * 29 + j]));
            worst_row =
                std::max(worst_row, std::abs(double(rq[std::size_t(j)]) - double(w[v * 29 + j])) / (absmax / 127 / 2));
        }
    }
    CHECK(worst_row <= 1.0 + 1e-4);
    // matmul over 5 rows equals 5 gemvs (the GEMM path against the gemv path) within float rounding.
    const auto X = Tensor<float>::randn({5, 29}, rng);
    for (const infer::TokenTable* t : {&b, &q}) {
        std::vector<float> all(5 * 37), one(37);
        t->matmul(X.data(), 5, all.data());
        for (int64_t r = 0; r < 5; ++r) {
            t->gemv(X.data() + r * 29, one.data());
            for (int64_t v = 0; v < 37; ++v)
                CHECK(all[std::size_t(r * 37 + v)] == doctest::Approx(one[std::size_t(v)]).epsilon(1e-5).scale(1.0));
        }
    }
}

TEST_CASE("packed file with int8 tables: round trip bit for bit - half the table bytes - damaged scales refused") {
    testing::TempDir dir("token-table");
    Rng rng(64);
    nn::FbiLlama<float> student(table_config(), rng);
    const infer::PackedLlama bf(student, infer::TableFormat::Bf16), q8(student);  // int8 tables: the default
    CHECK(q8.lm_head().format() == infer::TableFormat::Int8);
    CHECK(q8.bytes() < bf.bytes());
    infer::save_packed(dir / "q8.safetensors", q8);
    const infer::PackedLlama loaded = infer::load_packed((dir / "q8.safetensors").string());
    REQUIRE(loaded.lm_head().format() == infer::TableFormat::Int8);
    REQUIRE(loaded.embed_tokens().format() == infer::TableFormat::Int8);
    CHECK(loaded.bytes() == q8.bytes());
    const std::vector<int32_t> ids = {1, 52, 7, 7, 30};
    auto logits_of = [&](const infer::PackedLlama& m) {
        infer::KvCache cache(m.config(), 24);
        std::vector<float> out(53);
        m.forward(ids.data(), 5, cache, out.data());
        return out;
    };
    CHECK(logits_of(loaded) == logits_of(q8));
    // int8 tables move the logits by a little more than bf16 ones, and stay close.
    const auto lb = logits_of(bf), lq = logits_of(q8);
    double diff = 0, scale = 0;
    for (std::size_t v = 0; v < 53; ++v) {
        diff = std::max(diff, std::abs(double(lb[v]) - double(lq[v])));
        scale = std::max(scale, std::abs(double(lb[v])));
    }
    CHECK(diff > 0);
    CHECK(diff < 5e-2 * scale);

    const io::SafetensorsReader r((dir / "q8.safetensors").string());
    CHECK(r.metadata().at("tables") == "int8");
    CHECK(r.at("lm_head.weight").dtype == "I8");
    CHECK(r.at("lm_head.weight_scale").dtype == "F32");
    CHECK(r.at("model.embed_tokens.weight_scale").shape == Shape{53});

    // A negative scale, and an unknown tables value, are refused naming the tensor or field.
    std::string file = testing::read_bytes(dir / "q8.safetensors");
    const auto& e = r.at("lm_head.weight_scale");
    uint64_t header = 0;
    std::memcpy(&header, file.data(), 8);
    const float minus = -1.f;
    std::memcpy(file.data() + 8 + header + e.begin + 4 * 3, &minus, 4);
    testing::write_bytes(dir / "bad-scale.safetensors", file);
    CHECK_THROWS_WITH_AS(infer::load_packed((dir / "bad-scale.safetensors").string()),
                         doctest::Contains("lm_head.weight_scale: row 3 has scale -1"), Error);
    std::string renamed = testing::read_bytes(dir / "q8.safetensors");
    const auto at = renamed.find("\"tables\":\"int8\"");
    REQUIRE(at != std::string::npos);
    renamed.replace(at, 15, "\"tables\":\"int4\"");
    testing::write_bytes(dir / "bad-tables.safetensors", renamed);
    CHECK_THROWS_WITH_AS(infer::load_packed((dir / "bad-tables.safetensors").string()),
                         doctest::Contains("__metadata__.tables is \"int4\", expected \"bf16\" or \"int8\""), Error);
}

TEST_CASE("perplexity of a packed model equals the tape model's when both hold the same values") {
    testing::TempDir dir("decoder-perplexity");
    Rng rng(65);
    nn::FbiLlama<float> student(table_config(), rng);
    // The values the packed form keeps (fp16 alpha/beta, bf16 tables): the two perplexities must
    // then agree up to float summation order.
    for (auto& p : student.named_parameters()) {
        const bool half = p.name.find("wscale") != std::string::npos || p.name.find("wbias") != std::string::npos;
        const bool table =
            p.name.find("embed_tokens") != std::string::npos || p.name.find("lm_head") != std::string::npos;
        for (float& w : p.var.value()) w = half ? round_to_fp16(w) : (table ? round_to_bf16(w) : w);
    }
    std::vector<uint32_t> ids(200);
    for (auto& v : ids) v = uint32_t(rng.uniform_int(53));
    data::write_token_shard(dir / "val.bin", ids, 53);
    const data::TokenShard shard((dir / "val.bin").string());
    const auto want = eval::perplexity(testing::TapeLM(student), shard, 16);
    const infer::PackedLlama packed(student, infer::TableFormat::Bf16);
    int64_t calls = 0;
    std::optional<kernels::SignActivationsScope> exact(kernels::SignActivations::Float);
    const auto got = eval::perplexity(packed, shard, 16, 0, [&](int64_t, int64_t) { ++calls; });
    CHECK(got.tokens == want.tokens);
    CHECK(got.tokens == 12 * 16);  // (200 - 1) / 16 windows
    CHECK(calls == 12);
    CHECK(got.nll == doctest::Approx(want.nll).epsilon(1e-5));
    // int8 activations (the default) cost a little and stay close on this random model.
    exact.reset();
    const auto q = eval::perplexity(packed, shard, 16);
    CHECK(q.nll != got.nll);
    CHECK(q.nll == doctest::Approx(got.nll).epsilon(1e-2));
    CHECK_THROWS_WITH_AS(eval::perplexity(packed, shard, 25), doctest::Contains("max_position_embeddings = 24"), Error);
}
