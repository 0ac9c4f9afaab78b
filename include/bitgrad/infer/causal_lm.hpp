#pragma once
// CausalLM: what evaluation and generation need of a model, whatever its storage: the logits of a
// window of tokens, continuing a KV cache. Every inference model (infer::Decoder<Linear>: float,
// bf16, packed 1-bit) is one, so perplexity, multiple-choice scoring and generation are written
// once, against this interface.
//
// generate: the prompt's prefill, then one decode step a token, sampled (infer/sample.hpp) and
// streamed to on_token; it stops at max_new tokens, at stop_id, or at the model's context
// (max_position_embeddings), and says which in GenerationStats.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "bitgrad/core/error.hpp"
#include "bitgrad/core/rng.hpp"
#include "bitgrad/infer/kv_cache.hpp"
#include "bitgrad/infer/sample.hpp"
#include "bitgrad/nn/config.hpp"

namespace bitgrad::infer {

class CausalLM {
public:
    virtual ~CausalLM() = default;
    virtual const nn::LlamaConfig& config() const = 0;
    // Runs ids[0..n) at positions cache.length .. cache.length + n - 1, appends their keys and values
    // to the cache, and writes the logits of the last logit_rows of them to logits [logit_rows, vocab]
    // (1: the next token's; n: every position's, for perplexity).
    virtual void forward(const int32_t* ids, int64_t n, KvCache& cache, float* logits,
                         int64_t logit_rows = 1) const = 0;
    // Bytes of the weights as stored.
    virtual int64_t bytes() const = 0;
    // What this model's KV cache holds (infer/kv_cache.hpp): float unless the model says otherwise.
    virtual KvFormat kv_format() const { return KvFormat::Float; }
    // A cache of this model's format for `capacity` positions.
    KvCache new_cache(int64_t capacity) const { return KvCache(config(), capacity, kv_format()); }
};

// Timing of one generate call: the prompt's prefill and the token-by-token decode.
struct GenerationStats {
    int64_t prompt_tokens = 0, new_tokens = 0;
    double prefill_seconds = 0, decode_seconds = 0;
    bool context_full = false;  // stopped at max_position_embeddings before max_new tokens
    double prefill_tokens_per_second() const {
        return prefill_seconds > 0 ? double(prompt_tokens) / prefill_seconds : 0;
    }
    // The first new token comes from the prefill's logits; each further one costs a decode step.
    double decode_tokens_per_second() const { return decode_seconds > 0 ? double(new_tokens - 1) / decode_seconds : 0; }
};

// Appends up to max_new sampled tokens to the prompt (stopping at max_position_embeddings or at
// stop_id, which is kept), calling on_token with each as soon as it is drawn. The repetition
// penalty sees the prompt and the tokens so far.
inline std::vector<int32_t> generate(const CausalLM& model, std::vector<int32_t> ids, int64_t max_new,
                                     const SamplingOptions& o, Rng& rng,
                                     const std::function<void(int32_t)>& on_token = {},
                                     GenerationStats* stats = nullptr, int32_t stop_id = -1) {
    using clock = std::chrono::steady_clock;
    const auto& c = model.config();
    BITGRAD_CHECK(!ids.empty(), "generate: the prompt is empty (start it with the BOS id)");
    const int64_t ctx = c.max_position_embeddings;
    BITGRAD_CHECK(int64_t(ids.size()) < ctx,
                  "generate: the prompt has " << ids.size() << " tokens, the model's context is " << ctx);
    const int64_t asked = max_new;
    max_new = std::min(max_new, ctx - int64_t(ids.size()));
    GenerationStats st;
    st.prompt_tokens = int64_t(ids.size());
    st.context_full = asked > max_new;
    if (max_new <= 0) {
        if (stats) *stats = st;
        return ids;
    }
    KvCache cache;
    try {
        cache = model.new_cache(int64_t(ids.size()) + max_new);
    } catch (const Error& e) {
        BITGRAD_CHECK(false, "generate: " << ids.size() << " prompt tokens + max_new " << max_new
                                          << (asked > max_new ? " (" + std::to_string(asked) +
                                                                    " capped by max_position_embeddings " +
                                                                    std::to_string(ctx) + ")"
                                                              : std::string())
                                          << " = " << int64_t(ids.size()) + max_new << " positions: " << e.what());
    }
    std::vector<float> logits(std::size_t(c.vocab_size));
    auto t0 = clock::now();
    model.forward(ids.data(), int64_t(ids.size()), cache, logits.data());
    st.prefill_seconds = std::chrono::duration<double>(clock::now() - t0).count();
    t0 = clock::now();
    for (int64_t n = 0; n < max_new; ++n) {
        if (n > 0) model.forward(&ids.back(), 1, cache, logits.data());
        ids.push_back(sample_token(logits.data(), c.vocab_size, o, rng, ids));
        ++st.new_tokens;
        if (on_token) on_token(ids.back());
        if (ids.back() == stop_id) {
            st.context_full = false;
            break;
        }
    }
    st.decode_seconds = std::chrono::duration<double>(clock::now() - t0).count();
    if (stats) *stats = st;
    return ids;
}

}  // namespace bitgrad::infer
