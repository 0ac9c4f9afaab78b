#include "../core/child_process.hpp"
#include "helpers.hpp"

#include <cmath>

using namespace bitgrad;

namespace packed_llama_test {
nn::LlamaConfig config() {
    nn::LlamaConfig c;
    c.vocab_size = 97;
    c.hidden_size = 72;  // in = 72 and 136: neither is a multiple of 64 (partial sign words)
    c.intermediate_size = 136;
    c.num_hidden_layers = 2;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.max_position_embeddings = 48;
    return c;
}

// The student with exactly the values the packed form keeps: alpha and beta rounded to fp16, the
// embedding and lm_head to bf16 (norms and the latent W as they are: only sign(W) matters).
void round_like_packed(nn::FbiLlama<float>& m) {
    for (auto& p : m.named_parameters()) {
        const bool scale_or_shift =
            p.name.find("wscale") != std::string::npos || p.name.find("wbias") != std::string::npos;
        const bool table =
            p.name.find("embed_tokens") != std::string::npos || p.name.find("lm_head") != std::string::npos;
        for (float& w : p.var.value()) w = scale_or_shift ? round_to_fp16(w) : (table ? round_to_bf16(w) : w);
    }
}

std::vector<float> nn_logits_at(const nn::FbiLlama<float>& m, const std::vector<int32_t>& ids, int64_t t) {
    NoGrad no_grad;
    Tensor<int32_t> input({1, int64_t(ids.size())});
    std::copy(ids.begin(), ids.end(), input.data());
    const Tensor<float> logits = m.forward(input).value();
    const int64_t V = m.config.vocab_size;
    return std::vector<float>(logits.data() + t * V, logits.data() + (t + 1) * V);
}

double max_abs(const std::vector<float>& a) {
    double m = 0;
    for (float v : a) m = std::max(m, double(std::abs(v)));
    return m;
}
double max_diff(const std::vector<float>& a, const std::vector<float>& b) {
    double m = 0;
    for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(double(a[i]) - double(b[i])));
    return m;
}
}  // namespace packed_llama_test

TEST_CASE(
    "PackedLlama with float activations: prefill and token-by-token decode give the nn model's logits at every "
    "position") {
    using namespace packed_llama_test;
    Rng init(41);
    nn::FbiLlama<float> model(config(), init);
    round_like_packed(model);
    // The exact option: float activations and bf16 tables hold the trained numbers (rounded here).
    const kernels::SignActivationsScope exact(kernels::SignActivations::Float);
    const infer::PackedLlama packed(model, infer::TableFormat::Bf16);
    const infer::DenseFbiDecoder dense(model);
    Rng rng(7);
    std::vector<int32_t> ids(29);
    for (auto& v : ids) v = int32_t(rng.uniform_int(97));
    const int64_t V = 97;

    // Prefill of the whole sequence: the last position's logits.
    {
        infer::KvCache cache(packed.config(), 48);
        std::vector<float> logits(V);
        packed.forward(ids.data(), int64_t(ids.size()), cache, logits.data());
        CHECK(cache.length == 29);
        const auto ref = nn_logits_at(model, ids, 28);
        CHECK(max_diff(logits, ref) < 1e-4 * max_abs(ref));
    }
    // Prefill of 11 tokens, then one token at a time: each step's logits equal the nn model's at
    // that position, for the packed and the dense decoder.
    infer::KvCache cache(packed.config(), 48), dense_cache(dense.config(), 48);
    std::vector<float> logits(V), dense_logits(V);
    packed.forward(ids.data(), 11, cache, logits.data());
    dense.forward(ids.data(), 11, dense_cache, dense_logits.data());
    for (int64_t t = 11; t < int64_t(ids.size()); ++t) {
        packed.forward(&ids[std::size_t(t)], 1, cache, logits.data());
        dense.forward(&ids[std::size_t(t)], 1, dense_cache, dense_logits.data());
        const auto ref = nn_logits_at(model, std::vector<int32_t>(ids.begin(), ids.begin() + t + 1), t);
        CHECK(max_diff(logits, ref) < 1e-4 * max_abs(ref));
        CHECK(max_diff(logits, dense_logits) < 1e-4 * max_abs(ref));
    }
    // 1 bit per binarized weight: the packed weights are several times smaller than the dense ones.
    CHECK(packed.bytes() < dense.bytes() / 3);
}

TEST_CASE(
    "PackedLlama with float activations stays close to the float student and continues a prompt greedily as it "
    "does") {
    using namespace packed_llama_test;
    Rng rng(43);
    nn::FbiLlama<float> model(config(), rng);
    const kernels::SignActivationsScope exact(kernels::SignActivations::Float);
    const infer::PackedLlama packed(model, infer::TableFormat::Bf16);
    std::vector<int32_t> ids = {5, 17, 3, 88, 42, 42, 7};
    infer::KvCache cache(packed.config(), 48);
    std::vector<float> logits(97);
    packed.forward(ids.data(), int64_t(ids.size()), cache, logits.data());
    const auto ref = nn_logits_at(model, ids, int64_t(ids.size()) - 1);
    // fp16 alpha/beta and bf16 embedding/lm_head: relative error of a few 1e-3 at most.
    CHECK(max_diff(logits, ref) < 1e-2 * max_abs(ref));
    CHECK(max_diff(logits, ref) > 0);

    // Greedy continuation: the packed decode loop against the float decoder's, on the
    // model holding the packed values (random weights give near-ties that the fp16 rounding of
    // alpha/beta alone could flip).
    round_like_packed(model);
    const infer::PackedLlama rounded(model, infer::TableFormat::Bf16);
    infer::SamplingOptions greedy;
    greedy.temperature = 0;
    Rng r1(1), r2(1);
    const auto expected = infer::generate(infer::FloatLlama(model), ids, 12, greedy, r1);
    std::vector<int32_t> streamed;
    infer::GenerationStats stats;
    const auto got = rounded.generate(
        ids, 12, greedy, r2, [&](int32_t id) { streamed.push_back(id); }, &stats);
    CHECK(std::vector<int32_t>(got.begin() + 7, got.end()) == streamed);
    CHECK(stats.prompt_tokens == 7);
    CHECK(stats.new_tokens == 12);
    CHECK(got == expected);
    // At the context limit (48 positions) generation stops, for the float model as for the packed
    // one (one generate for both); stop_id ends it early and is kept.
    infer::GenerationStats full;
    CHECK(rounded.generate(ids, 100, greedy, r2, {}, &full).size() == 48);
    CHECK(full.context_full);
    CHECK(infer::generate(infer::FloatLlama(model), ids, 100, greedy, r1).size() == 48);
    const auto stopped = rounded.generate(ids, 12, greedy, r2, {}, nullptr, got[9]);
    std::size_t first = 7;
    while (got[first] != got[9]) ++first;  // the first generated occurrence of that id
    CHECK(stopped == std::vector<int32_t>(got.begin(), got.begin() + std::ptrdiff_t(first) + 1));
}

TEST_CASE(
    "PackedLlama with int8 activations: close to float activations - prefill equals decode - independent of threads") {
    using namespace packed_llama_test;
    Rng init(45);
    nn::FbiLlama<float> model(config(), init);
    const infer::PackedLlama packed(model);
    Rng rng(8);
    std::vector<int32_t> ids(20);
    for (auto& v : ids) v = int32_t(rng.uniform_int(97));
    auto last_logits = [&](kernels::SignActivations a, int64_t prefill) {
        kernels::SignActivationsScope scope(a);
        infer::KvCache cache(packed.config(), 48);
        std::vector<float> logits(97);
        packed.forward(ids.data(), prefill, cache, logits.data());
        for (int64_t t = prefill; t < int64_t(ids.size()); ++t)
            packed.forward(&ids[std::size_t(t)], 1, cache, logits.data());
        return logits;
    };
    const auto f = last_logits(kernels::SignActivations::Float, 20);
    const auto q = last_logits(kernels::SignActivations::Int8, 20);
    // Per-token int8 rounding of 72- and 136-wide activations: a few 1e-3 of the largest logit here.
    CHECK(max_diff(q, f) < 3e-2 * max_abs(f));
    CHECK(max_diff(q, f) > 0);  // the int8 path really ran
    // A row is rounded by itself, so a prefill of 20 and 1 + 19 decode steps round the same rows:
    // integer sums are exact and the rest is the float path, equal within float reordering.
    const auto q_decode = last_logits(kernels::SignActivations::Int8, 1);
    CHECK(max_diff(q_decode, q) < 1e-4 * max_abs(f));
}

TEST_CASE("PackedLlama refuses ids outside the vocabulary - a full cache and a cache of another model") {
    using namespace packed_llama_test;
    Rng init(44);
    const nn::FbiLlama<float> model(config(), init);
    const infer::PackedLlama packed(model);
    std::vector<float> logits(97);
    infer::KvCache cache(packed.config(), 8);
    const int32_t bad = 97;
    CHECK_THROWS_WITH_AS(packed.forward(&bad, 1, cache, logits.data()),
                         doctest::Contains("token id 97 at index 0 is outside the vocabulary [0, 97)"), Error);
    std::vector<int32_t> ids(9, 1);
    CHECK_THROWS_WITH_AS(packed.forward(ids.data(), 9, cache, logits.data()),
                         doctest::Contains("9 positions exceed the cache capacity 8"), Error);
    CHECK(cache.length == 0);
    CHECK_THROWS_WITH_AS(infer::KvCache(packed.config(), 49), doctest::Contains("max_position_embeddings = 48"), Error);
    nn::LlamaConfig other = config();
    other.num_hidden_layers = 3;
    infer::KvCache wrong(other, 8);
    CHECK_THROWS_WITH_AS(packed.forward(ids.data(), 2, wrong, logits.data()), doctest::Contains("another model"),
                         Error);
}

TEST_CASE(
    "PackedLlama: a KV cache that does not fit is refused before it is allocated - generate names the positions") {
    using namespace packed_llama_test;
    nn::LlamaConfig c = config();
    c.max_position_embeddings = int64_t(1) << 41;  // RoPE: no table grows with it
    Rng init(45);
    const infer::PackedLlama packed(nn::FbiLlama<float>(c, init));
    testing::ScopedEnv limit("BITGRAD_MEMORY_LIMIT", "1000000000");
    // 2 layers x keys and values x 2 kv heads x 18 dims, 4 bytes each: 576 bytes a position.
    CHECK_THROWS_WITH_AS(infer::KvCache(packed.config(), int64_t(1) << 40),
                         doctest::Contains("a KV cache of 1099511627776 positions (2 layers x keys and values x 36 "
                                           "floats) needs 633318.70 GB but only 1.00 GB"),
                         Error);
    Rng rng(1);
    const std::vector<int32_t> prompt = {1, 2, 3};
    CHECK_THROWS_WITH_AS(packed.generate(prompt, int64_t(1) << 40, {}, rng),
                         doctest::Contains("generate: 3 prompt tokens + max_new 1099511627776 = 1099511627779 "
                                           "positions: a KV cache of 1099511627779 positions"),
                         Error);
    CHECK_THROWS_WITH_AS(packed.generate(prompt, int64_t(1) << 42, {}, rng),
                         doctest::Contains("generate: 3 prompt tokens + max_new 2199023255549 (4398046511104 capped "
                                           "by max_position_embeddings 2199023255552) = 2199023255552 positions"),
                         Error);
    const auto out = packed.generate(prompt, 4, {}, rng);  // a cache that fits is made as before
    CHECK(out.size() == 7);
}

TEST_CASE("gemv_bf16 equals its reference on odd sizes") {
    Rng rng(45);
    for (int64_t in : {1, 15, 16, 17, 100, 769})
        for (int64_t out : {1, 3, 37}) {
            Tensor<bf16> W({out, in});
            for (auto& w : W) w = to_bf16(float(rng.normal()));
            std::vector<float> x(static_cast<std::size_t>(in)), y(static_cast<std::size_t>(out));
            for (auto& v : x) v = float(rng.normal());
            std::vector<double> ref(static_cast<std::size_t>(out));
            kernels::gemv_bf16(W.data(), out, in, x.data(), y.data());
            kernels::gemv_bf16_reference(W.data(), out, in, x.data(), ref.data());
            for (int64_t i = 0; i < out; ++i)
                CHECK(std::abs(y[std::size_t(i)] - ref[std::size_t(i)]) < 1e-5 * double(in));
        }
}

TEST_CASE("fp16 rounding: exact values - ties to even - subnormals - overflow and NaN") {
    CHECK(to_fp16(1.f).bits == 0x3c00);
    CHECK(to_fp16(-2.f).bits == 0xc000);
    CHECK(to_fp16(65504.f).bits == 0x7bff);
    CHECK(to_fp16(65520.f).bits == 0x7c00);  // halfway past the largest: rounds to inf
    CHECK(to_fp16(65519.f).bits == 0x7bff);
    CHECK(to_fp16(1.f + 1.f / 2048).bits == 0x3c00);      // tie: to even (down)
    CHECK(to_fp16(1.f + 3.f / 2048).bits == 0x3c02);      // tie: to even (up)
    CHECK(to_fp16(std::ldexp(1.f, -24)).bits == 0x0001);  // smallest subnormal
    CHECK(to_fp16(std::ldexp(1.f, -25)).bits == 0x0000);  // tie with zero: even
    CHECK(to_fp16(std::ldexp(1.5f, -25)).bits == 0x0001);
    CHECK(to_fp16(std::ldexp(1.f, -14)).bits == 0x0400);  // smallest normal
    CHECK(std::isnan(to_float(to_fp16(std::nanf("")))));
    CHECK(to_float(to_fp16(-0.f)) == 0.f);
    CHECK(std::signbit(to_float(to_fp16(-0.f))));
    // Every finite fp16 survives float and back.
    for (uint32_t b = 0; b < 0x10000; ++b) {
        const fp16 h{uint16_t(b)};
        if (((b >> 10) & 0x1f) == 0x1f) continue;  // inf / NaN
        REQUIRE(to_fp16(to_float(h)).bits == h.bits);
    }
    // Rounding is to the nearest: never further than half a step.
    Rng rng(46);
    for (int i = 0; i < 10000; ++i) {
        const float f = float(rng.normal() * 100);
        const float r = round_to_fp16(f);
        const float step = std::ldexp(1.f, std::ilogb(f) - 10);
        REQUIRE(std::abs(r - f) <= 0.5f * step);
    }
}

TEST_CASE("PackedFbiLinear::forward_group equals each layer's forward bit for bit - int8 decode and float") {
    // The decoder runs q, k, v (and gate, up) as one group: at an int8 decode step one call of the
    // table kernel for all three, which must not change a single output.
    Rng rng(46);
    const auto q = infer::PackedFbiLinear::random(70, 130, rng), k = infer::PackedFbiLinear::random(33, 130, rng),
               v = infer::PackedFbiLinear::random(5, 130, rng);
    for (int64_t rows : {1, 3}) {
        const auto x = Tensor<float>::randn({rows, 130}, rng);
        for (auto a : {kernels::SignActivations::Int8, kernels::SignActivations::Float}) {
            CAPTURE(rows);
            CAPTURE(kernels::sign_activations_name(a));
            kernels::SignActivationsScope scope(a);
            ParallelMinWork fork_always(1);
            std::vector<float> yq(std::size_t(rows * 70)), yk(std::size_t(rows * 33)), yv(std::size_t(rows * 5));
            infer::PackedFbiLinear::forward_group<3>({&q, &k, &v}, x.data(), rows, {yq.data(), yk.data(), yv.data()});
            for (const auto& [layer, got] : {std::pair{&q, &yq}, std::pair{&k, &yk}, std::pair{&v, &yv}}) {
                std::vector<float> want(got->size(), 7.f);
                layer->forward(x.data(), rows, want.data(), false);
                CHECK(*got == want);
            }
        }
    }
}
