#pragma once
// The LLaMA decoder (Hugging Face LlamaForCausalLM layout), templated on its linear layer:
//   LlamaForCausalLM<T, nn::Linear<T>>     the full-precision teacher
//   LlamaForCausalLM<T, nn::FBILinear<T>>  the FBI-LLM student (every decoder linear binarized;
//                                          embedding, norms and lm_head full precision)
//
//   h = x + o_proj(attention(rope(q_proj(n1(x))), rope(k_proj(n1(x))), v_proj(n1(x))))
//   y = h + down_proj(silu(gate_proj(n2(h))) * up_proj(n2(h)))
//   logits = lm_head(norm(layers(embed_tokens(ids))))           (lm_head not tied to the embedding)
// Parameter names are the Hugging Face ones: model.layers.3.self_attn.q_proj.weight, ...wscale, ...
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "bitgrad/nn/config.hpp"
#include "bitgrad/nn/layers.hpp"
#include "bitgrad/nn/linear.hpp"
#include "bitgrad/ops/activation.hpp"
#include "bitgrad/ops/attention.hpp"
#include "bitgrad/ops/rope.hpp"
#include "bitgrad/ops/shape_ops.hpp"

namespace bitgrad::nn {

namespace detail {
template <class Lin, class T>
Lin make_linear(int64_t in, int64_t out, Rng& rng, const LlamaConfig& c) {
    if constexpr (std::is_same_v<Lin, FBILinear<T>>)
        return Lin(in, out, rng, c.initializer_range, c.ste);
    else
        return Lin(in, out, rng, c.initializer_range);
}
}  // namespace detail

template <class T, class Lin>
class LlamaAttention : public Module<T> {
public:
    LlamaAttention(const LlamaConfig& c, Rng& rng)
        : q_proj(detail::make_linear<Lin, T>(c.hidden_size, c.num_attention_heads * c.head_dim(), rng, c)),
          k_proj(detail::make_linear<Lin, T>(c.hidden_size, c.num_key_value_heads * c.head_dim(), rng, c)),
          v_proj(detail::make_linear<Lin, T>(c.hidden_size, c.num_key_value_heads * c.head_dim(), rng, c)),
          o_proj(detail::make_linear<Lin, T>(c.num_attention_heads * c.head_dim(), c.hidden_size, rng, c)),
          heads(c.num_attention_heads),
          kv_heads(c.num_key_value_heads),
          head_dim(c.head_dim()),
          rope_theta(c.rope_theta) {
        this->register_module("q_proj", q_proj);
        this->register_module("k_proj", k_proj);
        this->register_module("v_proj", v_proj);
        this->register_module("o_proj", o_proj);
    }

    // x: [B, T, C] -> [B, T, C]; positions start at pos_offset.
    Var<T> forward(const Var<T>& x, int64_t pos_offset = 0) const {
        const int64_t B = x.dim(0), Tn = x.dim(1);
        auto q = rope(reshape(q_proj.forward(x), Shape{B, Tn, heads, head_dim}), rope_theta, pos_offset);
        auto k = rope(reshape(k_proj.forward(x), Shape{B, Tn, kv_heads, head_dim}), rope_theta, pos_offset);
        auto v = reshape(v_proj.forward(x), Shape{B, Tn, kv_heads, head_dim});
        auto o = attention(q, k, v, /*causal=*/true);
        return o_proj.forward(reshape(o, Shape{B, Tn, heads * head_dim}));
    }

    Lin q_proj, k_proj, v_proj, o_proj;
    int64_t heads, kv_heads, head_dim;
    double rope_theta;
};

template <class T, class Lin>
class LlamaMLP : public Module<T> {
public:
    LlamaMLP(const LlamaConfig& c, Rng& rng)
        : gate_proj(detail::make_linear<Lin, T>(c.hidden_size, c.intermediate_size, rng, c)),
          up_proj(detail::make_linear<Lin, T>(c.hidden_size, c.intermediate_size, rng, c)),
          down_proj(detail::make_linear<Lin, T>(c.intermediate_size, c.hidden_size, rng, c)) {
        this->register_module("gate_proj", gate_proj);
        this->register_module("up_proj", up_proj);
        this->register_module("down_proj", down_proj);
    }
    Var<T> forward(const Var<T>& x) const {
        return down_proj.forward(swiglu(gate_proj.forward(x), up_proj.forward(x)));
    }

    Lin gate_proj, up_proj, down_proj;
};

template <class T, class Lin>
class LlamaDecoderLayer : public Module<T> {
public:
    LlamaDecoderLayer(const LlamaConfig& c, Rng& rng)
        : self_attn(c, rng),
          mlp(c, rng),
          input_layernorm(c.hidden_size, c.rms_norm_eps),
          post_attention_layernorm(c.hidden_size, c.rms_norm_eps) {
        this->register_module("self_attn", self_attn);
        this->register_module("mlp", mlp);
        this->register_module("input_layernorm", input_layernorm);
        this->register_module("post_attention_layernorm", post_attention_layernorm);
    }
    Var<T> forward(const Var<T>& x, int64_t pos_offset = 0) const {
        auto h = add(x, self_attn.forward(input_layernorm.forward(x), pos_offset));
        return add(h, mlp.forward(post_attention_layernorm.forward(h)));
    }

    LlamaAttention<T, Lin> self_attn;
    LlamaMLP<T, Lin> mlp;
    RMSNorm<T> input_layernorm, post_attention_layernorm;
};

template <class T, class Lin>
class LlamaModel : public Module<T> {
public:
    LlamaModel(const LlamaConfig& c, Rng& rng)
        : embed_tokens(c.vocab_size, c.hidden_size, rng, c.initializer_range), norm(c.hidden_size, c.rms_norm_eps) {
        this->register_module("embed_tokens", embed_tokens);
        for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
            layers.push_back(std::make_unique<LlamaDecoderLayer<T, Lin>>(c, rng));
            this->register_module("layers." + std::to_string(i), *layers.back());
        }
        this->register_module("norm", norm);
    }
    // ids [B, T] -> hidden states [B, T, C]
    Var<T> forward(const Tensor<int32_t>& ids, int64_t pos_offset = 0) const {
        auto h = embed_tokens.forward(ids);
        for (const auto& layer : layers) h = layer->forward(h, pos_offset);
        return norm.forward(h);
    }

    Embedding<T> embed_tokens;
    std::vector<std::unique_ptr<LlamaDecoderLayer<T, Lin>>> layers;
    RMSNorm<T> norm;
};

template <class T, class Lin>
class LlamaForCausalLM : public Module<T> {
public:
    using LinearType = Lin;
    static constexpr bool binarized = std::is_same_v<Lin, FBILinear<T>>;

    // Weights from rng (seeded by the caller): Normal(0, initializer_range), norms at 1, FBI-Linear
    // scales by xnor initialisation.
    LlamaForCausalLM(const LlamaConfig& c, Rng& rng)
        : config(checked(c)), model(config, rng), lm_head(c.hidden_size, c.vocab_size, rng, c.initializer_range) {
        this->register_module("model", model);
        this->register_module("lm_head", lm_head);
    }

    // ids [B, T] -> logits [B, T, vocab]
    Var<T> forward(const Tensor<int32_t>& ids, int64_t pos_offset = 0) const {
        BITGRAD_CHECK(ids.ndim() == 2,
                      "LlamaForCausalLM: ids have shape " << ids.shape() << ", expected [batch, time]");
        BITGRAD_CHECK(pos_offset + ids.dim(1) <= config.max_position_embeddings,
                      "LlamaForCausalLM: positions up to " << pos_offset + ids.dim(1)
                                                           << " exceed max_position_embeddings "
                                                           << config.max_position_embeddings);
        return lm_head.forward(model.forward(ids, pos_offset));
    }

    // The one way to change the estimator after construction: every binarized layer and
    // config.ste (assigning config.ste alone changes nothing the layers do).
    void set_ste(Ste s) {
        nn::set_ste(*this, s);
        config.ste = s;
    }
    // The estimator the layers hold (config.ste for a dense model); throws if they differ.
    Ste ste() const { return held_ste(*this).value_or(config.ste); }

    LlamaConfig config;
    LlamaModel<T, Lin> model;
    Linear<T> lm_head;

private:
    // Validates, then refuses a model that cannot fit in memory before any weight is allocated.
    static LlamaConfig checked(LlamaConfig c) {
        c.binarized = binarized;
        c.validate();
        c.require_memory_for_parameters(double(sizeof(T)), std::is_same_v<T, double> ? "in float64" : "in float32");
        return c;
    }
};

template <class T>
using FbiLlama = LlamaForCausalLM<T, FBILinear<T>>;  // the binarized student
template <class T>
using DenseLlama = LlamaForCausalLM<T, Linear<T>>;  // the full-precision teacher

}  // namespace bitgrad::nn
