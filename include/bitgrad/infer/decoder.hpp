#pragma once
// Decoder<Linear>: the LLaMA decoder for inference, tape-free, generic over how its linear layers
// are stored (infer/linear.hpp). The block's forward is written here once:
//
//   h = x + o_proj(attention(rope(q_proj(n1(x))), rope(k_proj(n1(x))), v_proj(n1(x))))
//   y = h + down_proj(silu(gate_proj(n2(h))) * up_proj(n2(h)))
//   logits = lm_head(norm(blocks(embed_tokens(ids))))
//
// and serves every inference model (the training model, nn::LlamaForCausalLM, is its taped twin):
//   FloatLlama   = Decoder<FloatLinear>      a checkpoint's exact float numbers (evaluation; the dense
//                                            baseline of the packed model)
//   FrozenLlama  = Decoder<Bf16Linear>       a frozen full-precision teacher in bf16 (infer/frozen_llama.hpp)
//   PackedLlama  = Decoder<PackedFbiLinear>  the FBI-LLM student with 1-bit weights (infer/packed_llama.hpp)
// The token tables (embedding, lm_head) are infer::TokenTable: float, bf16 or int8.
//
// Two ways to run it:
//   forward(ids, n, cache, logits, rows)  one sequence continuing a KV cache (CausalLM: prefill,
//                                          decode, evaluation windows)
//   hidden_states(ids [B, T])             B sequences from position 0, no cache (a teacher's batch);
//                                          logits(h, rows, out) then applies the lm_head a block at a time
//
// The weights of a block are declared once (block_linears: the Hugging Face names and shapes of the
// seven linears), and every constructor, loader and writer reads them from that list.
#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "bitgrad/core/error.hpp"
#include "bitgrad/core/parallel.hpp"
#include "bitgrad/core/rng.hpp"
#include "bitgrad/core/tensor.hpp"
#include "bitgrad/infer/causal_lm.hpp"
#include "bitgrad/infer/kv_cache.hpp"
#include "bitgrad/infer/linear.hpp"
#include "bitgrad/infer/token_table.hpp"
#include "bitgrad/io/hf_checkpoint.hpp"
#include "bitgrad/kernels/activation.hpp"
#include "bitgrad/kernels/attention.hpp"
#include "bitgrad/kernels/norm.hpp"
#include "bitgrad/kernels/rope.hpp"
#include "bitgrad/nn/config.hpp"

namespace bitgrad::infer {

// The seven linears of a LLaMA block, by their names under model.layers.{l}. and their [out, in].
struct LinearSpec {
    const char* name;
    int64_t out, in;
};
inline std::array<LinearSpec, 7> block_linears(const nn::LlamaConfig& c) {
    const int64_t C = c.hidden_size, I = c.intermediate_size, Q = c.num_attention_heads * c.head_dim(),
                  KV = c.num_key_value_heads * c.head_dim();
    return {{{"self_attn.q_proj", Q, C},
             {"self_attn.k_proj", KV, C},
             {"self_attn.v_proj", KV, C},
             {"self_attn.o_proj", C, Q},
             {"mlp.gate_proj", I, C},
             {"mlp.up_proj", I, C},
             {"mlp.down_proj", C, I}}};
}
inline std::string block_prefix(int64_t layer) { return "model.layers." + std::to_string(layer) + "."; }

// One decoder block: its two RMSNorm weights and seven linears in block_linears' order.
template <class Linear>
struct Block {
    Tensor<float> n1, n2;  // input_layernorm, post_attention_layernorm [C]
    std::array<Linear, 7> linears;
    const Linear& q() const { return linears[0]; }
    const Linear& k() const { return linears[1]; }
    const Linear& v() const { return linears[2]; }
    const Linear& o() const { return linears[3]; }
    const Linear& gate() const { return linears[4]; }
    const Linear& up() const { return linears[5]; }
    const Linear& down() const { return linears[6]; }
};

template <class Linear>
class Decoder final : public CausalLM {
public:
    using LinearType = Linear;
    using BlockType = Block<Linear>;

    // From parts (the packed file's reader): every shape is checked against the config.
    Decoder(const nn::LlamaConfig& c, TokenTable embed, std::vector<BlockType> blocks, Tensor<float> norm,
            TokenTable lm_head)
        : config_(c),
          embed_(std::move(embed)),
          blocks_(std::move(blocks)),
          norm_(std::move(norm)),
          lm_head_(std::move(lm_head)) {
        config_.validate();
        const int64_t C = c.hidden_size, V = c.vocab_size;
        BITGRAD_CHECK(embed_.shape() == Shape({V, C}) && lm_head_.shape() == Shape({V, C}) &&
                          norm_.shape() == Shape({C}) && int64_t(blocks_.size()) == c.num_hidden_layers,
                      "Decoder: parts do not match the config");
        const auto specs = block_linears(c);
        for (const auto& b : blocks_) {
            BITGRAD_CHECK(b.n1.shape() == Shape({C}) && b.n2.shape() == Shape({C}),
                          "Decoder: norm weights do not match the config");
            for (std::size_t i = 0; i < specs.size(); ++i)
                BITGRAD_CHECK(b.linears[i].out() == specs[i].out && b.linears[i].in() == specs[i].in,
                              "Decoder: " << specs[i].name << " is [" << b.linears[i].out() << ", " << b.linears[i].in()
                                          << "], expected [" << specs[i].out << ", " << specs[i].in << "]");
        }
    }

    // From tensors by their Hugging Face names: get(name, shape) returns the float tensor, has(name)
    // whether it exists. The block linears of a binarized config are FBI-Linears (weight, wscale,
    // wbias), of a full-precision one plain ones (weight); a missing lm_head.weight with
    // tie_word_embeddings set is the embedding. The checkpoint loader and the constructor from a
    // trained model both come through here.
    template <class Get, class Has>
    static Decoder from_tensors(const nn::LlamaConfig& c, TableFormat tables, Get&& get, Has&& has,
                                const std::string& where = "Decoder") {
        c.validate();
        BITGRAD_CHECK(c.binarized ? Linear::holds_fbi : Linear::holds_dense,
                      where << ": a " << (c.binarized ? "binarized" : "full-precision") << " model cannot be held in "
                            << (c.binarized ? "this full-precision storage (pack it instead)"
                                            : "this 1-bit storage (only an FBI-LLM packs)"));
        const int64_t C = c.hidden_size, V = c.vocab_size;
        TokenTable embed(get("model.embed_tokens.weight", Shape{V, C}), tables);
        std::vector<BlockType> blocks;
        for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
            const std::string p = block_prefix(l);
            BlockType b{
                get(p + "input_layernorm.weight", Shape{C}), get(p + "post_attention_layernorm.weight", Shape{C}), {}};
            const auto specs = block_linears(c);
            for (std::size_t i = 0; i < specs.size(); ++i) {
                const std::string name = p + specs[i].name;
                const Tensor<float> W = get(name + ".weight", Shape{specs[i].out, specs[i].in});
                if (c.binarized) {
                    const Tensor<float> a = get(name + ".wscale", Shape{1, specs[i].in}).reshape(Shape{specs[i].in});
                    const Tensor<float> s = get(name + ".wbias", Shape{1, specs[i].in}).reshape(Shape{specs[i].in});
                    b.linears[i] = Linear::from_weights(W, &a, &s);
                } else {
                    b.linears[i] = Linear::from_weights(W, nullptr, nullptr);
                }
            }
            blocks.push_back(std::move(b));
        }
        Tensor<float> norm = get("model.norm.weight", Shape{C});
        TokenTable lm_head = c.tie_word_embeddings && !has("lm_head.weight")
                                 ? embed
                                 : TokenTable(get("lm_head.weight", Shape{V, C}), tables);
        return Decoder(c, std::move(embed), std::move(blocks), std::move(norm), std::move(lm_head));
    }

    // From a checkpoint's files (bitgrad's or Hugging Face's layout, io::HfCheckpoint), one tensor at
    // a time, so the float model never exists whole (a 1.1B teacher loads into bf16 directly). Names
    // and shapes are strict: every tensor of the config's LLaMA must be there and no other.
    static Decoder load(const io::HfCheckpoint& checkpoint, const nn::LlamaConfig& c,
                        TableFormat tables = Linear::default_tables) {
        std::set<std::string> used;
        auto get = [&](const std::string& name, const Shape& shape) {
            used.insert(name);
            return checkpoint.read<float>(name, &shape);
        };
        auto has = [&](const std::string& name) { return checkpoint.contains(name); };
        Decoder d = from_tensors(c, tables, get, has, checkpoint.dir().string());
        for (const auto& name : checkpoint.names())
            BITGRAD_CHECK(used.count(name), checkpoint.dir().string()
                                                << ": tensor " << name << " is not part of a "
                                                << (c.binarized ? "binarized" : "full-precision") << " LLaMA with "
                                                << c.num_hidden_layers << " layers (config.json)");
        return d;
    }

    // From a trained nn::LlamaForCausalLM (dense or binarized), read through its named parameters.
    template <class Model>
    explicit Decoder(const Model& m, TableFormat tables = Linear::default_tables) : Decoder(from_model(m, tables)) {}

    // Random weights of a trained model's order of magnitude, built layer by layer without a float
    // model (a 7B float model would not fit in memory): for benchmarks of the shapes.
    Decoder(const nn::LlamaConfig& c, Rng& rng, TableFormat tables = Linear::default_tables)
        : Decoder(random_parts(c, rng, tables)) {}

    const nn::LlamaConfig& config() const override { return config_; }
    const TokenTable& embed_tokens() const { return embed_; }
    const std::vector<BlockType>& layers() const { return blocks_; }
    const Tensor<float>& final_norm() const { return norm_; }
    const TokenTable& lm_head() const { return lm_head_; }

    // Bytes of the weights as stored: what a decode step reads.
    int64_t bytes() const override {
        int64_t n = embed_.bytes() + lm_head_.bytes() + 4 * norm_.numel();
        for (const auto& b : blocks_) {
            n += 4 * (b.n1.numel() + b.n2.numel());
            for (const auto& w : b.linears) n += w.bytes();
        }
        return n;
    }
    // Bytes read per decoded token: every weight once (the embedding only one row) and the cache
    // (in the format kv_format() gives).
    int64_t bytes_per_token(int64_t context) const {
        const int64_t element = kv_format() == KvFormat::Float ? 4 : 2;
        return bytes() - embed_.bytes() + embed_.bytes_per_row() +
               2 * element * context * config_.num_hidden_layers * config_.num_key_value_heads * config_.head_dim();
    }
    KvFormat kv_format() const override { return Linear::kv_format(); }

    void forward(const int32_t* ids, int64_t n, KvCache& cache, float* logits, int64_t logit_rows = 1) const override {
        BITGRAD_CHECK(n >= 1, "Decoder::forward: no tokens");
        BITGRAD_CHECK(logit_rows >= 1 && logit_rows <= n,
                      "Decoder::forward: logit_rows " << logit_rows << " must be in [1, " << n << "]");
        BITGRAD_CHECK(cache.layers() == config_.num_hidden_layers && cache.kv_heads == config_.num_key_value_heads &&
                          cache.head_dim == config_.head_dim(),
                      "Decoder::forward: the cache was made for another model");
        BITGRAD_CHECK(
            cache.length + n <= cache.capacity,
            "Decoder::forward: " << cache.length + n << " positions exceed the cache capacity " << cache.capacity);
        const int64_t C = config_.hidden_size;
        Tensor<float> x = run_blocks(ids, 1, n, &cache);
        Tensor<float> h({logit_rows, C});
        kernels::rms_norm_rows(x.data() + (n - logit_rows) * C, norm_.data(), float(config_.rms_norm_eps), h.data(),
                               (float*)nullptr, logit_rows, C);
        logits_of(h.data(), logit_rows, logits);
    }

    // ids [B, T] -> the final hidden states [B*T, C] (after the last RMSNorm); each sequence starts
    // at position pos_offset, no cache.
    Tensor<float> hidden_states(const Tensor<int32_t>& ids, int64_t pos_offset = 0) const {
        BITGRAD_CHECK(ids.ndim() == 2, "Decoder: ids have shape " << ids.shape() << ", expected [batch, time]");
        const int64_t B = ids.dim(0), T = ids.dim(1), C = config_.hidden_size;
        Tensor<float> x = run_blocks(ids.data(), B, T, nullptr, pos_offset);
        Tensor<float> h({B * T, C});
        kernels::rms_norm_rows(x.data(), norm_.data(), float(config_.rms_norm_eps), h.data(), (float*)nullptr, B * T,
                               C);
        return h;
    }
    // out [rows, V] = hidden [rows, C] lm_head^T.
    void logits(const float* hidden, int64_t rows, float* out) const { logits_of(hidden, rows, out); }

    // infer::generate on this model (infer/causal_lm.hpp).
    std::vector<int32_t> generate(std::vector<int32_t> ids, int64_t max_new, const SamplingOptions& o, Rng& rng,
                                  const std::function<void(int32_t)>& on_token = {}, GenerationStats* stats = nullptr,
                                  int32_t stop_id = -1) const {
        return infer::generate(*this, std::move(ids), max_new, o, rng, on_token, stats, stop_id);
    }

private:
    template <class Model>
    static Decoder from_model(const Model& m, TableFormat tables) {
        std::map<std::string, const Tensor<float>*> params;
        for (const auto& p : m.named_parameters()) params[p.name] = &p.var.value();
        auto get = [&](const std::string& name, const Shape& shape) {
            const auto it = params.find(name);
            BITGRAD_CHECK(it != params.end(), "Decoder: the model has no parameter " << name);
            BITGRAD_CHECK(it->second->shape() == shape,
                          "Decoder: " << name << " has shape " << it->second->shape() << ", expected " << shape);
            return it->second->clone();
        };
        auto has = [&](const std::string& name) { return params.count(name) > 0; };
        return from_tensors(m.config, tables, get, has);
    }

    static Decoder random_parts(const nn::LlamaConfig& c, Rng& rng, TableFormat tables) {
        c.validate();
        const int64_t C = c.hidden_size, V = c.vocab_size;
        TokenTable embed(Tensor<float>::randn({V, C}, rng, 0.02), tables);
        std::vector<BlockType> blocks;
        for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
            BlockType b{Tensor<float>::ones({C}), Tensor<float>::ones({C}), {}};
            const auto specs = block_linears(c);
            for (std::size_t i = 0; i < specs.size(); ++i)
                b.linears[i] = Linear::random(specs[i].out, specs[i].in, rng);
            blocks.push_back(std::move(b));
        }
        TokenTable lm_head(Tensor<float>::randn({V, C}, rng, 0.02), tables);
        return Decoder(c, std::move(embed), std::move(blocks), Tensor<float>::ones({C}), std::move(lm_head));
    }

    void logits_of(const float* hidden, int64_t rows, float* out) const {
        lm_head_.matmul(hidden, rows, out, Linear::bf16_products);
    }

    // The blocks over B sequences of T tokens. With a cache (B = 1) the positions continue it and
    // every block appends its keys and values; without one each sequence starts at pos_offset and
    // attends within itself. Returns the residual stream after the last block, [B*T, C].
    Tensor<float> run_blocks(const int32_t* ids, int64_t B, int64_t T, KvCache* cache, int64_t pos_offset = 0) const {
        const auto& c = config_;
        const int64_t C = c.hidden_size, D = c.head_dim(), H = c.num_attention_heads, Hkv = c.num_key_value_heads;
        const int64_t I = c.intermediate_size, N = B * T, pos = cache ? cache->length : pos_offset, S = pos + T;
        BITGRAD_CHECK(!cache || B == 1, "Decoder: a KV cache holds one sequence, got " << B);
        BITGRAD_CHECK(pos >= 0 && S <= c.max_position_embeddings, "Decoder: positions up to "
                                                                      << S << " exceed max_position_embeddings "
                                                                      << c.max_position_embeddings);
        for (int64_t i = 0; i < N; ++i)
            BITGRAD_CHECK(ids[i] >= 0 && ids[i] < c.vocab_size,
                          "Decoder: token id " << ids[i] << " at index " << i << " is outside the vocabulary [0, "
                                               << c.vocab_size << ")");
        Tensor<float> x({N, C}), h({N, C}), q({N, H * D}), o({N, H * D}), lse({B, H, T}), gate({N, I}), up({N, I});
        // This call's keys and values; with a cache they are stored in it and attention reads them there.
        Tensor<float> k_new({N, Hkv * D}), v_new({N, Hkv * D}), k_all, v_all;
        if (cache && T > 1) k_all = Tensor<float>({S, Hkv * D}), v_all = Tensor<float>({S, Hkv * D});
        parallel_for(
            N, [&](int64_t r) { embed_.row(ids[r], x.data() + r * C); }, C);
        Tensor<float> cos_t, sin_t;
        kernels::rope_table(T, D, c.rope_theta, pos, cos_t, sin_t);
        // With a cache the queries sit at the end of S positions; without, each batch row sees T.
        const kernels::AttentionDims dims{B, T, cache ? S : T, H, Hkv, D, true};
        const float eps = float(c.rms_norm_eps);
        for (std::size_t li = 0; li < blocks_.size(); ++li) {
            const BlockType& l = blocks_[li];
            kernels::rms_norm_rows(x.data(), l.n1.data(), eps, h.data(), (float*)nullptr, N, C);
            project<3>({&l.q(), &l.k(), &l.v()}, h.data(), N, {q.data(), k_new.data(), v_new.data()});
            kernels::rope_apply(q.data(), q.data(), B, T, H, D, cos_t, sin_t, 1.f, false);
            kernels::rope_apply(k_new.data(), k_new.data(), B, T, Hkv, D, cos_t, sin_t, 1.f, false);
            if (!cache) {
                kernels::attention_forward(dims, q.data(), k_new.data(), v_new.data(), o.data(), lse.data());
            } else {
                // The cache's values, as stored (fp16 rounds this call's keys too): a prompt's rows
                // see what the same tokens decoded one at a time see.
                cache->write(int64_t(li), pos, T, k_new.data(), v_new.data());
                if (T == 1) {
                    cache->attend(int64_t(li), S, H, q.data(), o.data());
                } else {
                    cache->read(int64_t(li), S, k_all.data(), v_all.data());
                    kernels::attention_forward(dims, q.data(), k_all.data(), v_all.data(), o.data(), lse.data());
                }
            }
            l.o().forward(o.data(), N, x.data(), true);  // residual
            kernels::rms_norm_rows(x.data(), l.n2.data(), eps, h.data(), (float*)nullptr, N, C);
            project<2>({&l.gate(), &l.up()}, h.data(), N, {gate.data(), up.data()});
            kernels::swiglu_rows(gate.data(), up.data(), gate.data(), gate.numel());
            l.down().forward(gate.data(), N, x.data(), true);  // residual
        }
        if (cache) cache->length = S;
        return x;
    }

    // ys[l] = x W_l^T for layers that read the same input: one call where the storage has a grouped
    // forward (PackedFbiLinear: one fork at decode), else layer by layer.
    template <std::size_t M>
    static void project(const std::array<const Linear*, M>& layers, const float* x, int64_t rows,
                        const std::array<float*, M>& ys) {
        if constexpr (requires { Linear::template forward_group<M>(layers, x, rows, ys); })
            Linear::template forward_group<M>(layers, x, rows, ys);
        else
            for (std::size_t l = 0; l < M; ++l) layers[l]->forward(x, rows, ys[l], false);
    }

    nn::LlamaConfig config_;
    TokenTable embed_;  // [V, C]
    std::vector<BlockType> blocks_;
    Tensor<float> norm_;
    TokenTable lm_head_;  // [V, C]
};

using FloatLlama = Decoder<FloatLinear>;

}  // namespace bitgrad::infer
