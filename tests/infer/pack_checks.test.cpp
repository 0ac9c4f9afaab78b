// infer/pack_checks.hpp: what pack refuses, and the probe that reports what packing changed.
#include "helpers.hpp"

#include <bitgrad/infer/pack_checks.hpp>

using namespace bitgrad;

namespace pack_checks_test {
nn::LlamaConfig config() {
    nn::LlamaConfig c;
    c.vocab_size = 41;
    c.hidden_size = 32;
    c.intermediate_size = 48;
    c.num_hidden_layers = 1;
    c.num_attention_heads = 2;
    c.num_key_value_heads = 2;
    c.max_position_embeddings = 16;
    c.binarized = true;
    return c;
}
}  // namespace pack_checks_test

TEST_CASE("check_packable refuses a full-precision model - check_tokenizer_fits a larger vocabulary") {
    auto c = pack_checks_test::config();
    CHECK_NOTHROW(infer::check_packable(c, "run/final"));
    c.binarized = false;
    CHECK_THROWS_WITH_AS(infer::check_packable(c, "run/final"),
                         doctest::Contains("run/final/config.json: \"binarized\" is false; pack needs an FBI-LLM"),
                         Error);
    CHECK_NOTHROW(infer::check_tokenizer_fits(41, c));
    CHECK_THROWS_WITH_AS(infer::check_tokenizer_fits(42, c),
                         doctest::Contains("the tokenizer has 42 tokens, more than the model's 41"), Error);
}

TEST_CASE("probe_packed: zero against itself - the packed model's error against its float twin is small not zero") {
    Rng rng(9);
    nn::FbiLlama<float> student(pack_checks_test::config(), rng);
    const infer::PackedLlama packed(student, infer::TableFormat::Bf16);
    const infer::FloatLlama reference(student);
    const infer::PackProbe self = infer::probe_packed(reference, reference, 32);
    CHECK(self.tokens == 16);  // bounded by the context
    CHECK(self.max_diff == 0);
    CHECK(self.max_logit > 0);
    const infer::PackProbe p = infer::probe_packed(packed, reference, 8);
    CHECK(p.tokens == 8);
    CHECK(p.max_diff > 0);  // fp16 alpha/beta and bf16 tables round
    CHECK(p.relative(p.max_diff) < 0.05);
    CHECK(p.max_diff_int8 > 0);
    CHECK(p.relative(p.max_diff_int8) < 0.1);
    // The seed picks the probe: another seed, other logits compared.
    CHECK(infer::probe_packed(packed, reference, 8, 2).max_logit != p.max_logit);
}
