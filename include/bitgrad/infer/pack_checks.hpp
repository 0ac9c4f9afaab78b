#pragma once
// What `bitgrad pack` checks around infer::PackedLlama and infer::save_packed:
//   check_packable(config, where)            only an FBI-LLM (binarized) model packs
//   check_tokenizer_fits(tokens, config)     a tokenizer carried in the file must fit the vocabulary
//   probe_packed(packed, reference, n, seed) what packing changed: the last logits of a random
//                                            n-token probe, packed (float and int8 activations) vs
//                                            the float model (e.g. infer::FloatLlama(student))
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "bitgrad/core/error.hpp"
#include "bitgrad/core/rng.hpp"
#include "bitgrad/infer/causal_lm.hpp"
#include "bitgrad/infer/kv_cache.hpp"
#include "bitgrad/kernels/sign_matmul_q8.hpp"
#include "bitgrad/nn/config.hpp"

namespace bitgrad::infer {

// `where` names the model (its config.json's directory).
inline void check_packable(const nn::LlamaConfig& config, const std::string& where) {
    BITGRAD_CHECK(config.binarized,
                  where << "/config.json: \"binarized\" is false; pack needs an FBI-LLM (binarized) model");
}

inline void check_tokenizer_fits(int64_t tokenizer_vocab, const nn::LlamaConfig& config) {
    BITGRAD_CHECK(tokenizer_vocab <= config.vocab_size,
                  "the tokenizer has " << tokenizer_vocab << " tokens, more than the model's " << config.vocab_size);
}

// max |packed - reference| over the probe's last logits, with float and with int8 activations,
// and max |reference| to put them in scale.
struct PackProbe {
    int64_t tokens = 0;
    double max_diff = 0, max_diff_int8 = 0, max_logit = 0;
    double relative(double diff) const { return diff / std::max(max_logit, 1e-30); }
};

inline PackProbe probe_packed(const CausalLM& packed, const CausalLM& reference, int64_t tokens = 32,
                              uint64_t seed = 1) {
    const nn::LlamaConfig& c = packed.config();
    BITGRAD_CHECK(c.vocab_size == reference.config().vocab_size,
                  "probe_packed: vocab_size " << c.vocab_size << " (packed) != " << reference.config().vocab_size
                                              << " (reference)");
    const int64_t n = std::min<int64_t>(tokens, c.max_position_embeddings), V = c.vocab_size;
    BITGRAD_CHECK(n > 0, "probe_packed: tokens must be > 0, got " << tokens);
    std::vector<int32_t> probe(static_cast<std::size_t>(n));
    Rng rng(seed);
    for (auto& id : probe) id = int32_t(rng.uniform_int(uint64_t(V)));
    auto last_logits = [&](const CausalLM& m) {
        KvCache cache = m.new_cache(n);
        std::vector<float> logits(static_cast<std::size_t>(V));
        m.forward(probe.data(), n, cache, logits.data());
        return logits;
    };
    auto packed_logits = [&](kernels::SignActivations a) {
        const kernels::SignActivationsScope scope(a);
        return last_logits(packed);
    };
    const std::vector<float> ref = last_logits(reference), f = packed_logits(kernels::SignActivations::Float),
                             q8 = packed_logits(kernels::SignActivations::Int8);
    PackProbe p;
    p.tokens = n;
    for (std::size_t v = 0; v < ref.size(); ++v) {
        p.max_diff = std::max(p.max_diff, std::abs(double(f[v]) - double(ref[v])));
        p.max_diff_int8 = std::max(p.max_diff_int8, std::abs(double(q8[v]) - double(ref[v])));
        p.max_logit = std::max(p.max_logit, std::abs(double(ref[v])));
    }
    return p;
}

}  // namespace bitgrad::infer
