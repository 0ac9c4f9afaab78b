#pragma once
// Perplexity with non-overlapping windows, each run from an empty context. Two protocols:
//   perplexity (bitgrad's, over a token shard): windows of seq_len + 1 tokens
//     advancing by seq_len, so every token after the first is predicted exactly once;
//   paper_perplexity (FBI-LLM's eval.py, after GPTQ and SparseGPT):
//     n = tokens / seq_len windows of seq_len tokens (the rest dropped), the seq_len - 1 next
//     tokens of each window scored. eval.py's exp(sum_w mean_w * seq_len / (n * seq_len)) is
//     exp of the mean over all scored tokens, since every window scores as many.
//   nll = mean over scored tokens of -log p(token | prefix in its window)
//   perplexity = exp(nll);   bits per byte = nll * tokens / (ln 2 * bytes of the text)
#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "bitgrad/data/token_shard.hpp"
#include "bitgrad/infer/causal_lm.hpp"
#include "bitgrad/infer/kv_cache.hpp"
#include "bitgrad/kernels/softmax.hpp"

namespace bitgrad::eval {

struct PerplexityResult {
    double nll = 0, perplexity = 0;
    int64_t tokens = 0;
    double bits_per_byte(double text_bytes) const {
        return text_bytes > 0 ? nll * double(tokens) / (std::log(2.0) * text_bytes) : 0;
    }
};

namespace detail {
// The number of windows of seq_len + 1 tokens in the shard (at most max_windows when > 0), after
// checking that the shard holds one and was tokenized with at most the model's vocabulary.
inline int64_t perplexity_windows(const data::TokenShard& shard, int64_t seq_len, int64_t vocab_size,
                                  int64_t max_windows) {
    BITGRAD_CHECK(seq_len > 0, "perplexity: seq_len " << seq_len << " must be > 0");
    BITGRAD_CHECK(shard.size() > uint64_t(seq_len),
                  shard.path() << ": " << shard.size() << " tokens, need more than seq_len " << seq_len);
    BITGRAD_CHECK(shard.vocab_size() <= uint64_t(vocab_size),
                  shard.path() << ": vocabulary of " << shard.vocab_size() << " tokens, larger than the model's "
                               << vocab_size << " (vocab_size in config.json): tokenized for another model?");
    const int64_t windows = int64_t((shard.size() - 1) / uint64_t(seq_len));
    return max_windows > 0 ? std::min(windows, max_windows) : windows;
}
}  // namespace detail

namespace detail {
// The number of paper-protocol windows, after checking there is one and every id is < vocab_size.
inline int64_t paper_windows(const std::vector<int32_t>& tokens, int64_t seq_len, int64_t vocab_size,
                             int64_t max_position_embeddings) {
    BITGRAD_CHECK(seq_len >= 2 && seq_len <= max_position_embeddings,
                  "perplexity: seq_len " << seq_len << " must be in [2, max_position_embeddings = "
                                         << max_position_embeddings << "]");
    BITGRAD_CHECK(int64_t(tokens.size()) >= seq_len,
                  "perplexity: " << tokens.size() << " tokens, fewer than one window of " << seq_len);
    for (std::size_t i = 0; i < tokens.size(); ++i)
        BITGRAD_CHECK(
            tokens[i] >= 0 && tokens[i] < vocab_size,
            "perplexity: token " << i << " is " << tokens[i] << ", outside the model's vocabulary of " << vocab_size);
    return int64_t(tokens.size()) / seq_len;
}
}  // namespace detail

// bitgrad's protocol on any inference model (infer::CausalLM: a float, bf16 or packed
// infer::Decoder; a model in training through infer::FloatLlama(model)): each window is one prefill
// on an empty KV cache that returns the logits of every position; the cross-entropy is summed in
// double. max_windows > 0 limits the number of windows (for quick checks).
inline PerplexityResult perplexity(const infer::CausalLM& decoder, const data::TokenShard& shard, int64_t seq_len,
                                   int64_t max_windows = 0,
                                   const std::function<void(int64_t, int64_t)>& progress = nullptr) {
    const auto& c = decoder.config();
    BITGRAD_CHECK(seq_len <= c.max_position_embeddings, "perplexity: seq_len "
                                                            << seq_len << " must be in [1, max_position_embeddings = "
                                                            << c.max_position_embeddings << "]");
    const int64_t windows = detail::perplexity_windows(shard, seq_len, c.vocab_size, max_windows);
    const int64_t V = c.vocab_size;
    infer::KvCache cache = decoder.new_cache(seq_len);
    std::vector<int32_t> window(std::size_t(seq_len + 1));
    std::vector<float> logits(std::size_t(seq_len * V));
    double total = 0;
    for (int64_t w = 0; w < windows; ++w) {
        shard.copy(uint64_t(w * seq_len), uint64_t(seq_len + 1), window.data());
        cache.clear();
        decoder.forward(window.data(), seq_len, cache, logits.data(), seq_len);
        for (int64_t t = 0; t < seq_len; ++t)
            total += kernels::nll_row<float, double>(logits.data() + t * V, V, window[std::size_t(t + 1)]);
        if (progress) progress(w + 1, windows);
    }
    PerplexityResult r;
    r.tokens = windows * seq_len;
    r.nll = r.tokens ? total / double(r.tokens) : 0;
    r.perplexity = std::exp(r.nll);
    return r;
}

// FBI-LLM's protocol: one prefill per window returning every position's logits.
inline PerplexityResult paper_perplexity(const infer::CausalLM& decoder, const std::vector<int32_t>& tokens,
                                         int64_t seq_len,
                                         const std::function<void(int64_t, int64_t)>& progress = nullptr) {
    const auto& c = decoder.config();
    const int64_t V = c.vocab_size;
    const int64_t windows = detail::paper_windows(tokens, seq_len, V, c.max_position_embeddings);
    infer::KvCache cache = decoder.new_cache(seq_len);
    std::vector<float> logits(std::size_t(seq_len * V));
    double total = 0;
    for (int64_t w = 0; w < windows; ++w) {
        const int32_t* window = tokens.data() + w * seq_len;
        cache.clear();
        decoder.forward(window, seq_len, cache, logits.data(), seq_len);
        for (int64_t t = 0; t + 1 < seq_len; ++t)
            total += kernels::nll_row<float, double>(logits.data() + t * V, V, window[t + 1]);
        if (progress) progress(w + 1, windows);
    }
    PerplexityResult r;
    r.tokens = windows * (seq_len - 1);
    r.nll = total / double(r.tokens);
    r.perplexity = std::exp(r.nll);
    return r;
}

}  // namespace bitgrad::eval
