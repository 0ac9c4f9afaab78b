// io::load_model / io::with_model: a model directory as the nn type its config.json says.
#include "helpers.hpp"

#include <bitgrad/io/load_model.hpp>

using namespace bitgrad;

namespace load_model_test {
nn::LlamaConfig config(bool binarized) {
    nn::LlamaConfig c;
    c.vocab_size = 29;
    c.hidden_size = 16;
    c.intermediate_size = 24;
    c.num_hidden_layers = 1;
    c.num_attention_heads = 2;
    c.num_key_value_heads = 1;
    c.max_position_embeddings = 16;
    c.binarized = binarized;
    return c;
}
template <class A, class B>
bool same_weights(const A& a, const B& b) {
    const auto pa = a.named_parameters(), pb = b.named_parameters();
    if (pa.size() != pb.size()) return false;
    for (std::size_t i = 0; i < pa.size(); ++i) {
        if (pa[i].name != pb[i].name || pa[i].var.numel() != pb[i].var.numel()) return false;
        for (int64_t k = 0; k < pa[i].var.numel(); ++k)
            if (pa[i].var.value()[k] != pb[i].var.value()[k]) return false;
    }
    return true;
}
}  // namespace load_model_test

TEST_CASE("with_model hands f the model type config.json names - with the saved weights") {
    using namespace load_model_test;
    testing::TempDir dir("load-model");
    Rng rng(3);
    nn::FbiLlama<float> fbi(config(true), rng);
    nn::DenseLlama<float> dense(config(false), rng);
    io::save_model(dir / "fbi", fbi, fbi.config);
    io::save_model(dir / "dense", dense, dense.config);
    CHECK(io::with_model(dir / "fbi", [&](const auto& m) {
              using M = std::decay_t<decltype(m)>;
              if constexpr (std::is_same_v<M, nn::FbiLlama<float>>) return same_weights(m, fbi) ? 1 : 2;
              return 3;
          }) == 1);
    CHECK(io::with_model(dir / "dense", [&](const auto& m) {
              using M = std::decay_t<decltype(m)>;
              if constexpr (std::is_same_v<M, nn::DenseLlama<float>>) return same_weights(m, dense) ? 1 : 2;
              return 3;
          }) == 1);
    CHECK(same_weights(*io::load_model<nn::FbiLlama<float>>(dir / "fbi"), fbi));
}

TEST_CASE("load_model refuses the other kind of model - a missing directory - naming config.json") {
    using namespace load_model_test;
    testing::TempDir dir("load-model-kind");
    Rng rng(4);
    nn::DenseLlama<float> dense(config(false), rng);
    io::save_model(dir / "dense", dense, dense.config);
    CHECK_THROWS_WITH_AS(io::load_model<nn::FbiLlama<float>>(dir / "dense"),
                         doctest::Contains("dense/config.json: \"binarized\" is false, expected true (an FBI-LLM)"),
                         Error);
    CHECK_THROWS_WITH_AS(io::with_model(dir / "none", [](const auto&) { return 0; }),
                         doctest::Contains("none/config.json"), Error);
}
