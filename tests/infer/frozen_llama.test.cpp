#include "helpers.hpp"

#include <cmath>

using namespace bitgrad;

namespace frozen_llama_test {
nn::LlamaConfig config() {
    nn::LlamaConfig c;
    c.vocab_size = 97;
    c.hidden_size = 48;
    c.intermediate_size = 80;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.max_position_embeddings = 40;
    return c;
}
}  // namespace frozen_llama_test

TEST_CASE(
    "FrozenLlama equals the nn model with bf16-rounded weights under bf16 matmuls and stays close to the float model") {
    using frozen_llama_test::config;
    Rng rng(31);
    nn::DenseLlama<float> model(config(), rng);
    infer::FrozenLlama frozen(model);
    // The same model with every weight rounded to bf16 (the norms stay float in FrozenLlama).
    Rng rng2(31);
    nn::DenseLlama<float> rounded(config(), rng2);
    for (auto& p : rounded.named_parameters())
        if (p.kind != ParamKind::Norm)
            for (float& w : p.var.value()) w = round_to_bf16(w);
    Tensor<int32_t> ids({3, 17});
    for (auto& v : ids) v = int32_t(rng.uniform_int(97));
    const Tensor<float> h = frozen.hidden_states(ids);
    Tensor<float> h_rounded, h_float;
    {
        NoGrad no_grad;
        PrecisionScope bf16_products(Precision::BF16);
        h_rounded = rounded.model.forward(ids).value().reshape({51, 48}).clone();
    }
    {
        NoGrad no_grad;
        h_float = model.model.forward(ids).value().reshape({51, 48}).clone();
    }
    double scale = 0;
    for (float v : h_float) scale = std::max(scale, double(std::abs(v)));
    CHECK(max_abs_diff(h, h_rounded) < 1e-4 * scale);  // same arithmetic, other float sum order
    CHECK(max_abs_diff(h, h_float) < 0.05 * scale);    // bf16 weights and products vs float
    CHECK(max_abs_diff(h, h_float) > 1e-5 * scale);    // (and it really is bf16)
    // Logits: lm_head in bf16.
    Tensor<float> logits({51, 97}), ref({51, 97});
    frozen.logits(h.data(), 51, logits.data());
    kernels::gemm_bf16_reference(51, 97, 48, 1.f, kernels::Bf16Operand::f32(h.data(), 48),
                                 kernels::Bf16Operand::f32(rounded.lm_head.weight.value().data(), 48, true), 0.f,
                                 ref.data(), 97);
    CHECK(max_abs_diff(logits, ref) < 1e-4);
    CHECK(frozen.bytes() < 0.51 * 4 * model.num_parameters());
}

TEST_CASE("FrozenLlama refuses ids outside the vocabulary and positions past the maximum") {
    Rng rng(32);
    nn::DenseLlama<float> model(frozen_llama_test::config(), rng);
    infer::FrozenLlama frozen(model);
    Tensor<int32_t> ids = Tensor<int32_t>::from({1, 3}, {1, 97, 2});
    CHECK_THROWS_WITH_AS(frozen.hidden_states(ids),
                         doctest::Contains("token id 97 at index 1 is outside the vocabulary [0, 97)"), Error);
    Tensor<int32_t> long_ids = Tensor<int32_t>::zeros({1, 41});
    CHECK_THROWS_WITH_AS(frozen.hidden_states(long_ids), doctest::Contains("exceed max_position_embeddings 40"), Error);
}
