#pragma once
// The trained FBI-LLM student for inference: every binarized layer as packed sign bits, a KV cache,
// prefill and decode.
//
//   infer::PackedLlama packed(student);                 // from a trained nn::FbiLlama<float>
//   infer::KvCache cache(packed.config(), 512);          // room for 512 positions
//   std::vector<float> logits(V);
//   packed.forward(prompt.data(), n, cache, logits.data());   // prefill: logits of the last token
//   packed.forward(&next, 1, cache, logits.data());           // decode: one token at a time
//
// What is stored, per FBI layer (W [out, in], alpha and beta [in]):
//   sign bits of W      1 bit per weight (kernels::PackedSigns: layout in kernels/sign_matmul.hpp)
//   alpha, beta         rounded to fp16 (the packed file stores them in fp16; kept as float here)
// and for the rest of the model: the embedding and lm_head as TokenTables (bf16 by default, or int8
// with a scale per row: token_table.hpp), the RMSNorm weights in float.
// The layer computes the folded identity (never W_hat):
//   y = S (alpha * x) + (beta . x),     S = sign(W) in {+1, -1}
// Its results differ from the float model only by the fp16 rounding of alpha and beta, the bf16
// rounding of the embedding and lm_head, and the order of float sums (tests/infer/ state the
// tolerance); and, where chosen, by int8 tables and int8 activations (kernels::SignActivationsScope,
// kernels/sign_matmul_q8.hpp), whose cost docs/inference.md measures.
//
// FbiDecoder<Linear> is the whole decoder, generic over how the binarized layers are stored:
// PackedLlama uses PackedFbiLinear (1 bit per weight); DenseFbiDecoder uses DenseFbiLinear (W_hat
// in float, the baseline the bench compares with: same code, same cache, only the weights differ).
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <tuple>
#include <vector>

#include "bitgrad/core/bf16.hpp"
#include "bitgrad/core/error.hpp"
#include "bitgrad/core/fp16.hpp"
#include "bitgrad/core/memory.hpp"
#include "bitgrad/core/parallel.hpp"
#include "bitgrad/core/rng.hpp"
#include "bitgrad/core/tensor.hpp"
#include "bitgrad/infer/sample.hpp"
#include "bitgrad/infer/token_table.hpp"
#include "bitgrad/kernels/activation.hpp"
#include "bitgrad/kernels/attention.hpp"
#include "bitgrad/kernels/gemm.hpp"
#include "bitgrad/kernels/gemv_bf16.hpp"
#include "bitgrad/kernels/norm.hpp"
#include "bitgrad/kernels/rope.hpp"
#include "bitgrad/kernels/sign_matmul.hpp"
#include "bitgrad/kernels/sign_matmul_q8.hpp"
#include "bitgrad/nn/config.hpp"

namespace bitgrad::infer {

// Latent weights W [out, in] ~ N(0, 0.02), alpha [in] ~ |N(0, 0.02)|, beta [in] ~ N(0, 0.002).
inline std::tuple<Tensor<float>, Tensor<float>, Tensor<float>> random_fbi_weights(int64_t out, int64_t in, Rng& rng) {
    Tensor<float> W = Tensor<float>::randn({out, in}, rng, 0.02), a({in}), b({in});
    for (int64_t j = 0; j < in; ++j) {
        a[j] = float(std::abs(rng.normal()) * 0.02);
        b[j] = float(rng.normal() * 0.002);
    }
    return {std::move(W), std::move(a), std::move(b)};
}

// y [rows, out] = x [rows, in] W_hat^T (added to y when accumulate), with W_hat = alpha * S + beta.
struct PackedFbiLinear {
    kernels::PackedSigns signs;
    Tensor<float> alpha, beta;  // [in], values exactly representable in fp16

    PackedFbiLinear() = default;
    PackedFbiLinear(kernels::PackedSigns s, Tensor<float> a, Tensor<float> b)
        : signs(std::move(s)), alpha(std::move(a)), beta(std::move(b)) {
        BITGRAD_CHECK(alpha.numel() == signs.in && beta.numel() == signs.in,
                      "PackedFbiLinear: alpha has " << alpha.numel() << " and beta " << beta.numel()
                                                    << " values, expected " << signs.in);
    }
    // From a layer's latent weights W [out, in] and its alpha, beta: signs packed, alpha and beta
    // rounded to fp16.
    static PackedFbiLinear pack(const Tensor<float>& W, const Tensor<float>& alpha, const Tensor<float>& beta) {
        const int64_t in = W.dim(1);
        Tensor<float> a({in}), b({in});
        for (int64_t j = 0; j < in; ++j) {
            a[j] = round_to_fp16(alpha[j]);
            b[j] = round_to_fp16(beta[j]);
        }
        return PackedFbiLinear(kernels::pack_signs(W.data(), W.dim(0), in), std::move(a), std::move(b));
    }
    // Random signs, alpha and beta of a trained layer's order of magnitude (benchmarks).
    static PackedFbiLinear random(int64_t out, int64_t in, Rng& rng) {
        auto [W, a, b] = random_fbi_weights(out, in, rng);
        return pack(W, a, b);
    }
    int64_t out() const { return signs.out; }
    int64_t in() const { return signs.in; }
    int64_t bytes() const { return signs.bytes() + 2 * 2 * in(); }  // bits + fp16 alpha, beta

    void forward(const float* x, int64_t rows, float* y, bool accumulate) const {
        const int64_t n_in = in(), n_out = out();
        Tensor<float> xa({rows, n_in}), xb({rows}), s({rows, n_out});
        const float *a = alpha.data(), *b = beta.data();
        for (int64_t r = 0; r < rows; ++r) {  // O(rows * in): negligible next to the product
            float dot = 0;
            for (int64_t j = 0; j < n_in; ++j) {
                xa[r * n_in + j] = x[r * n_in + j] * a[j];
                dot += x[r * n_in + j] * b[j];
            }
            xb[r] = dot;
        }
        if (kernels::sign_activations() == kernels::SignActivations::Int8)
            kernels::sign_matmul_q8(signs, xa.data(), rows, s.data());
        else
            kernels::sign_matmul(signs, xa.data(), rows, s.data());
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t i = 0; i < n_out; ++i)
                y[r * n_out + i] = (accumulate ? y[r * n_out + i] : 0.f) + s[r * n_out + i] + xb[r];
    }
};

// The same layer with W_hat materialised in float: the dense baseline.
struct DenseFbiLinear {
    Tensor<float> w_hat;  // [out, in]

    static DenseFbiLinear pack(const Tensor<float>& W, const Tensor<float>& alpha, const Tensor<float>& beta) {
        DenseFbiLinear d;
        d.w_hat = Tensor<float>(W.shape());
        const int64_t out = W.dim(0), in = W.dim(1);
        for (int64_t i = 0; i < out; ++i)
            for (int64_t j = 0; j < in; ++j)
                d.w_hat[i * in + j] =
                    round_to_fp16(alpha[j]) * (W[i * in + j] >= 0.f ? 1.f : -1.f) + round_to_fp16(beta[j]);
        return d;
    }
    static DenseFbiLinear random(int64_t out, int64_t in, Rng& rng) {
        auto [W, a, b] = random_fbi_weights(out, in, rng);
        return pack(W, a, b);
    }
    int64_t out() const { return w_hat.dim(0); }
    int64_t in() const { return w_hat.dim(1); }
    int64_t bytes() const { return 4 * w_hat.numel(); }
    void forward(const float* x, int64_t rows, float* y, bool accumulate) const {
        kernels::gemm<float>(false, true, rows, out(), in(), 1.f, x, in(), w_hat.data(), in(), accumulate ? 1.f : 0.f,
                             y, out());
    }
};

// Keys and values of every layer for one sequence, positions 0 .. length-1.
struct KvCache {
    std::vector<Tensor<float>> k, v;  // per layer [capacity, kv_heads * head_dim]
    int64_t length = 0, capacity = 0;

    KvCache() = default;
    // Refused before anything is allocated when capacity is outside [1, max_position_embeddings]
    // or the cache does not fit in memory (the message names the positions).
    KvCache(const nn::LlamaConfig& c, int64_t capacity_) : capacity(capacity_) {
        BITGRAD_CHECK(capacity > 0 && capacity <= c.max_position_embeddings,
                      "KvCache: " << capacity << " positions, expected 1 to max_position_embeddings = "
                                  << c.max_position_embeddings);
        const int64_t width = c.num_key_value_heads * c.head_dim();
        const std::string what = "KvCache: " + std::to_string(capacity) + " positions";
        require_memory(uint64_t(checked_mul(checked_mul(2 * 4, c.num_hidden_layers, what),
                                            checked_mul(capacity, width, what), what)),
                       "a KV cache of " + std::to_string(capacity) + " positions (" +
                           std::to_string(c.num_hidden_layers) + " layers x keys and values x " +
                           std::to_string(width) + " floats)");
        for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
            k.push_back(Tensor<float>({capacity, width}));
            v.push_back(Tensor<float>({capacity, width}));
        }
    }
    void clear() { length = 0; }
    int64_t bytes() const { return k.empty() ? 0 : int64_t(2 * k.size()) * 4 * k[0].numel(); }
};

// Timing of one generate call: the prompt's prefill and the token-by-token decode.
struct GenerationStats {
    int64_t prompt_tokens = 0, new_tokens = 0;
    double prefill_seconds = 0, decode_seconds = 0;
    double prefill_tokens_per_second() const {
        return prefill_seconds > 0 ? double(prompt_tokens) / prefill_seconds : 0;
    }
    // The first new token comes from the prefill's logits; each further one costs a decode step.
    double decode_tokens_per_second() const { return decode_seconds > 0 ? double(new_tokens - 1) / decode_seconds : 0; }
};

template <class Linear>
class FbiDecoder {
public:
    // From a trained binarized nn::LlamaForCausalLM<float, nn::FBILinear<float>>.
    template <class Model>
    explicit FbiDecoder(const Model& m, TableFormat tables = TableFormat::Bf16) : config_(m.config) {
        static_assert(Model::binarized, "FbiDecoder packs a binarized (FBI-LLM) model");
        config_.validate();
        embed_ = TokenTable(m.model.embed_tokens.weight.value(), tables);
        auto pack = [](const auto& lin) {
            return Linear::pack(lin.weight.value(), lin.wscale.value(), lin.wbias.value());
        };
        for (const auto& layer : m.model.layers) {
            const auto& a = layer->self_attn;
            const auto& f = layer->mlp;
            layers_.push_back({layer->input_layernorm.weight.value().clone(),
                               layer->post_attention_layernorm.weight.value().clone(), pack(a.q_proj), pack(a.k_proj),
                               pack(a.v_proj), pack(a.o_proj), pack(f.gate_proj), pack(f.up_proj), pack(f.down_proj)});
        }
        norm_ = m.model.norm.weight.value().clone();
        lm_head_ = TokenTable(m.lm_head.weight.value(), tables);
    }

    // Random weights of a trained model's order of magnitude, built layer by layer without a float
    // model (a 7B float model would not fit in memory): for benchmarks of the shapes.
    FbiDecoder(const nn::LlamaConfig& c, Rng& rng, TableFormat tables = TableFormat::Bf16) : config_(c) {
        config_.validate();
        const int64_t C = c.hidden_size, I = c.intermediate_size, qd = c.num_attention_heads * c.head_dim();
        const int64_t kvd = c.num_key_value_heads * c.head_dim();
        embed_ = TokenTable(Tensor<float>::randn({c.vocab_size, C}, rng, 0.02), tables);
        for (int64_t l = 0; l < c.num_hidden_layers; ++l)
            layers_.push_back({Tensor<float>::ones({C}), Tensor<float>::ones({C}), Linear::random(qd, C, rng),
                               Linear::random(kvd, C, rng), Linear::random(kvd, C, rng), Linear::random(C, qd, rng),
                               Linear::random(I, C, rng), Linear::random(I, C, rng), Linear::random(C, I, rng)});
        norm_ = Tensor<float>::ones({C});
        lm_head_ = TokenTable(Tensor<float>::randn({c.vocab_size, C}, rng, 0.02), tables);
    }

    // One decoder block: its two RMSNorm weights and seven binarized layers.
    struct Layer {
        Tensor<float> n1, n2;  // input_layernorm, post_attention_layernorm [C]
        Linear q, k, v, o, gate, up, down;
        std::vector<std::pair<const char*, const Linear*>> linears() const {
            return {{"self_attn.q_proj", &q}, {"self_attn.k_proj", &k}, {"self_attn.v_proj", &v},
                    {"self_attn.o_proj", &o}, {"mlp.gate_proj", &gate}, {"mlp.up_proj", &up},
                    {"mlp.down_proj", &down}};
        }
    };

    // From parts (the packed file's reader): every shape is checked against the config.
    FbiDecoder(const nn::LlamaConfig& c, TokenTable embed, std::vector<Layer> layers, Tensor<float> norm,
               TokenTable lm_head)
        : config_(c),
          embed_(std::move(embed)),
          layers_(std::move(layers)),
          norm_(std::move(norm)),
          lm_head_(std::move(lm_head)) {
        config_.validate();
        const int64_t C = c.hidden_size, I = c.intermediate_size, qd = c.num_attention_heads * c.head_dim();
        const int64_t kvd = c.num_key_value_heads * c.head_dim();
        BITGRAD_CHECK(embed_.shape() == Shape({c.vocab_size, C}) && lm_head_.shape() == Shape({c.vocab_size, C}) &&
                          norm_.shape() == Shape({C}) && int64_t(layers_.size()) == c.num_hidden_layers,
                      "FbiDecoder: parts do not match the config");
        for (const auto& l : layers_) {
            BITGRAD_CHECK(l.n1.shape() == Shape({C}) && l.n2.shape() == Shape({C}),
                          "FbiDecoder: norm weights do not match the config");
            const int64_t want[7][2] = {{qd, C}, {kvd, C}, {kvd, C}, {C, qd}, {I, C}, {I, C}, {C, I}};
            const auto lin = l.linears();
            for (int i = 0; i < 7; ++i)
                BITGRAD_CHECK(
                    lin[std::size_t(i)].second->out() == want[i][0] && lin[std::size_t(i)].second->in() == want[i][1],
                    "FbiDecoder: " << lin[std::size_t(i)].first << " is [" << lin[std::size_t(i)].second->out() << ", "
                                   << lin[std::size_t(i)].second->in() << "], expected [" << want[i][0] << ", "
                                   << want[i][1] << "]");
        }
    }

    const nn::LlamaConfig& config() const { return config_; }
    const TokenTable& embed_tokens() const { return embed_; }
    const std::vector<Layer>& layers() const { return layers_; }
    const Tensor<float>& final_norm() const { return norm_; }
    const TokenTable& lm_head() const { return lm_head_; }

    // Bytes of the weights as stored: what a decode step reads.
    int64_t bytes() const {
        int64_t n = embed_.bytes() + lm_head_.bytes() + 4 * norm_.numel();
        for (const auto& l : layers_) {
            n += 4 * (l.n1.numel() + l.n2.numel());
            for (const Linear* w : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) n += w->bytes();
        }
        return n;
    }
    // Bytes read per decoded token: every weight once (the embedding only one row) and the cache.
    int64_t bytes_per_token(int64_t context) const {
        return bytes() - embed_.bytes() + embed_.bytes_per_row() +
               2 * 4 * context * config_.num_hidden_layers * config_.num_key_value_heads * config_.head_dim();
    }

    // Runs ids[0..n) at positions cache.length .. cache.length + n - 1, appends their keys and
    // values to the cache, and writes the logits of the last logit_rows of them to logits
    // [logit_rows, vocab] (1: the next token's; n: every position's, for perplexity).
    void forward(const int32_t* ids, int64_t n, KvCache& cache, float* logits, int64_t logit_rows = 1) const {
        const auto& c = config_;
        const int64_t C = c.hidden_size, D = c.head_dim(), H = c.num_attention_heads, Hkv = c.num_key_value_heads;
        const int64_t I = c.intermediate_size, pos = cache.length, S = pos + n;
        BITGRAD_CHECK(n >= 1, "FbiDecoder::forward: no tokens");
        BITGRAD_CHECK(logit_rows >= 1 && logit_rows <= n,
                      "FbiDecoder::forward: logit_rows " << logit_rows << " must be in [1, " << n << "]");
        BITGRAD_CHECK(int64_t(cache.k.size()) == c.num_hidden_layers,
                      "FbiDecoder::forward: the cache was made for another model");
        BITGRAD_CHECK(S <= cache.capacity,
                      "FbiDecoder::forward: " << S << " positions exceed the cache capacity " << cache.capacity);
        for (int64_t i = 0; i < n; ++i)
            BITGRAD_CHECK(ids[i] >= 0 && ids[i] < c.vocab_size, "FbiDecoder::forward: token id "
                                                                    << ids[i] << " is outside the vocabulary [0, "
                                                                    << c.vocab_size << ")");
        Tensor<float> x({n, C}), h({n, C}), q({n, H * D}), o({n, H * D}), lse({1, H, n}), gate({n, I}), up({n, I});
        for (int64_t r = 0; r < n; ++r) embed_.row(ids[r], x.data() + r * C);
        Tensor<float> cos_t, sin_t;
        kernels::rope_table(n, D, c.rope_theta, pos, cos_t, sin_t);
        const kernels::AttentionDims dims{1, n, S, H, Hkv, D, true};
        const float eps = float(c.rms_norm_eps);
        for (std::size_t li = 0; li < layers_.size(); ++li) {
            const Layer& l = layers_[li];
            float* k_new = cache.k[li].data() + pos * Hkv * D;
            float* v_new = cache.v[li].data() + pos * Hkv * D;
            kernels::rms_norm_rows(x.data(), l.n1.data(), eps, h.data(), (float*)nullptr, n, C);
            l.q.forward(h.data(), n, q.data(), false);
            l.k.forward(h.data(), n, k_new, false);
            l.v.forward(h.data(), n, v_new, false);
            kernels::rope_apply(q.data(), q.data(), 1, n, H, D, cos_t, sin_t, 1.f, false);
            kernels::rope_apply(k_new, k_new, 1, n, Hkv, D, cos_t, sin_t, 1.f, false);
            kernels::attention_forward(dims, q.data(), cache.k[li].data(), cache.v[li].data(), o.data(), lse.data());
            l.o.forward(o.data(), n, x.data(), true);  // residual
            kernels::rms_norm_rows(x.data(), l.n2.data(), eps, h.data(), (float*)nullptr, n, C);
            l.gate.forward(h.data(), n, gate.data(), false);
            l.up.forward(h.data(), n, up.data(), false);
            kernels::swiglu_rows(gate.data(), up.data(), gate.data(), gate.numel());
            l.down.forward(gate.data(), n, x.data(), true);  // residual
        }
        cache.length = S;
        kernels::rms_norm_rows(x.data() + (n - logit_rows) * C, norm_.data(), eps, h.data(), (float*)nullptr,
                               logit_rows, C);
        lm_head_.matmul(h.data(), logit_rows, logits);
    }

    // Appends up to max_new sampled tokens to the prompt (stopping at max_position_embeddings or
    // at stop_id, which is kept), calling on_token with each as soon as it is drawn. The repetition
    // penalty sees the prompt and the tokens so far.
    std::vector<int32_t> generate(std::vector<int32_t> ids, int64_t max_new, const SamplingOptions& o, Rng& rng,
                                  const std::function<void(int32_t)>& on_token = {}, GenerationStats* stats = nullptr,
                                  int32_t stop_id = -1) const {
        using clock = std::chrono::steady_clock;
        BITGRAD_CHECK(!ids.empty(), "generate: the prompt is empty (start it with the BOS id)");
        const int64_t ctx = config_.max_position_embeddings;
        BITGRAD_CHECK(int64_t(ids.size()) < ctx,
                      "generate: the prompt has " << ids.size() << " tokens, the model's context is " << ctx);
        const int64_t asked = max_new;
        max_new = std::min(max_new, ctx - int64_t(ids.size()));
        GenerationStats st;
        st.prompt_tokens = int64_t(ids.size());
        if (max_new <= 0) {
            if (stats) *stats = st;
            return ids;
        }
        KvCache cache;
        try {
            cache = KvCache(config_, int64_t(ids.size()) + max_new);
        } catch (const Error& e) {
            BITGRAD_CHECK(false, "generate: " << ids.size() << " prompt tokens + max_new " << max_new
                                              << (asked > max_new ? " (" + std::to_string(asked) +
                                                                        " capped by max_position_embeddings " +
                                                                        std::to_string(ctx) + ")"
                                                                  : std::string())
                                              << " = " << int64_t(ids.size()) + max_new << " positions: " << e.what());
        }
        std::vector<float> logits(std::size_t(config_.vocab_size));
        auto t0 = clock::now();
        forward(ids.data(), int64_t(ids.size()), cache, logits.data());
        st.prefill_seconds = std::chrono::duration<double>(clock::now() - t0).count();
        t0 = clock::now();
        for (int64_t n = 0; n < max_new; ++n) {
            if (n > 0) forward(&ids.back(), 1, cache, logits.data());
            ids.push_back(sample_token(logits.data(), config_.vocab_size, o, rng, ids));
            ++st.new_tokens;
            if (on_token) on_token(ids.back());
            if (ids.back() == stop_id) break;
        }
        st.decode_seconds = std::chrono::duration<double>(clock::now() - t0).count();
        if (stats) *stats = st;
        return ids;
    }

private:
    nn::LlamaConfig config_;
    TokenTable embed_;  // [V, C]
    std::vector<Layer> layers_;
    Tensor<float> norm_;
    TokenTable lm_head_;  // [V, C]
};

using PackedLlama = FbiDecoder<PackedFbiLinear>;
using DenseFbiDecoder = FbiDecoder<DenseFbiLinear>;

}  // namespace bitgrad::infer
