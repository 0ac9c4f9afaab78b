// infer/kv_cache.hpp: the head-major layout, the fp16 format, and the model's choice of format.
#include "helpers.hpp"

#include <cmath>
#include <vector>

#include "bitgrad/infer/packed_llama.hpp"

using namespace bitgrad;

namespace {

nn::LlamaConfig tiny() {
    nn::LlamaConfig c;
    c.vocab_size = 61, c.hidden_size = 32, c.intermediate_size = 48, c.num_hidden_layers = 2;
    c.num_attention_heads = 4, c.num_key_value_heads = 2, c.max_position_embeddings = 40;
    c.binarized = true;
    return c;
}

}  // namespace

TEST_CASE("KvCache: rows written at a position read back at it (in float exactly and in fp16 rounded)") {
    const nn::LlamaConfig c = tiny();
    const int64_t W = c.num_key_value_heads * c.head_dim();
    Rng rng(5);
    std::vector<float> k(std::size_t(3 * W)), v(k.size());
    for (auto& x : k) x = float(rng.normal());
    for (auto& x : v) x = float(rng.normal());
    for (auto f : {infer::KvFormat::Float, infer::KvFormat::Fp16}) {
        CAPTURE(infer::kv_format_name(f));
        infer::KvCache cache(c, 10, f);
        CHECK(cache.bytes() == 2 * 2 * 10 * W * (f == infer::KvFormat::Float ? 4 : 2));
        cache.write(1, 4, 3, k.data(), v.data());  // positions 4, 5, 6 of layer 1
        std::vector<float> kr(std::size_t(7 * W)), vr(kr.size());
        cache.read(1, 7, kr.data(), vr.data());
        for (int64_t i = 0; i < 3 * W; ++i) {
            const float want_k = f == infer::KvFormat::Float ? k[std::size_t(i)] : round_to_fp16(k[std::size_t(i)]);
            const float want_v = f == infer::KvFormat::Float ? v[std::size_t(i)] : round_to_fp16(v[std::size_t(i)]);
            CHECK(kr[std::size_t(4 * W + i)] == want_k);
            CHECK(vr[std::size_t(4 * W + i)] == want_v);
        }
        CHECK_THROWS_WITH_AS(cache.write(0, 8, 3, k.data(), v.data()), doctest::Contains("beyond the capacity 10"),
                             Error);
    }
}

TEST_CASE("KvCache: an fp16 cache refuses a value beyond fp16's range and names it instead of storing inf") {
    const nn::LlamaConfig c = tiny();
    const int64_t W = c.num_key_value_heads * c.head_dim();
    std::vector<float> k(std::size_t(W), 1.f), v(std::size_t(W), 1.f);
    v[3] = 70000.f;
    infer::KvCache cache(c, 4, infer::KvFormat::Fp16);
    CHECK_THROWS_WITH_AS(cache.write(1, 2, 1, k.data(), v.data()),
                         doctest::Contains("a value of layer 1 at position 2 is 70000, beyond fp16's range"), Error);
    infer::KvCache floats(c, 4);
    floats.write(1, 2, 1, k.data(), v.data());  // a float cache keeps it
}

TEST_CASE("a packed model's cache is fp16 with int8 activations and float with float ones - prefill equals decode") {
    const nn::LlamaConfig c = tiny();
    Rng rng(11);
    const infer::PackedLlama packed(c, rng);
    CHECK(packed.kv_format() == infer::KvFormat::Fp16);  // the default activations are int8
    CHECK(packed.new_cache(8).format == infer::KvFormat::Fp16);
    {
        kernels::SignActivationsScope exact(kernels::SignActivations::Float);
        CHECK(packed.kv_format() == infer::KvFormat::Float);
    }
    const infer::FloatLlama dense(c, rng);
    CHECK(dense.kv_format() == infer::KvFormat::Float);
    // The default: a prompt's last logits equal those of the same tokens decoded one by one (both
    // read the fp16 values the cache stored), and stay close to a float cache's.
    const std::vector<int32_t> ids = {3, 17, 42, 5, 60, 8, 29, 1, 33};
    const int64_t n = int64_t(ids.size()), V = c.vocab_size;
    std::vector<float> prefill(static_cast<std::size_t>(V)), decode(prefill.size()), floats(prefill.size());
    infer::KvCache a = packed.new_cache(n), b = packed.new_cache(n), f(c, n);
    packed.forward(ids.data(), n, a, prefill.data());
    for (int64_t i = 0; i < n; ++i) packed.forward(&ids[std::size_t(i)], 1, b, decode.data());
    packed.forward(ids.data(), n, f, floats.data());
    double largest = 0;
    for (int64_t i = 0; i < V; ++i) largest = std::max(largest, double(std::abs(floats[std::size_t(i)])));
    for (int64_t i = 0; i < V; ++i) {
        CHECK(decode[std::size_t(i)] == doctest::Approx(prefill[std::size_t(i)]).epsilon(1e-5).scale(largest));
        CHECK(std::abs(prefill[std::size_t(i)] - floats[std::size_t(i)]) <= 1e-2 * largest);
    }
}
