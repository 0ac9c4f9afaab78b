#pragma once
// FrozenLlama: a full-precision LLaMA for inference only, its matrices frozen in bf16 (half the
// memory of float: 268 MB instead of 537 MB at the 130M shape), norms in float. It is the teacher
// of a bf16 distillation run: no tape, no gradients, buffers reused layer after layer.
//
//   infer::FrozenLlama teacher(dense_model);          // converts a trained nn::DenseLlama<float>
//   Tensor<float> h = teacher.hidden_states(ids);      // [B*T, C], after the final norm
//   teacher.logits(h.data(), rows, out);               // out [rows, V] = h lm_head^T
//   auto big = FrozenLlama::load(io::HfCheckpoint(dir), config);  // straight from a checkpoint's files
//
// Every product runs in kernels::gemm_bf16 with the bf16 weight as one operand: the same numbers
// as the nn model with its weights rounded to bf16 under Precision::BF16 (tested), up to the order
// of float sums. Attention, norms, RoPE and SwiGLU run in float.
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "bitgrad/core/bf16.hpp"
#include "bitgrad/core/tensor.hpp"
#include "bitgrad/io/hf_checkpoint.hpp"
#include "bitgrad/kernels/activation.hpp"
#include "bitgrad/kernels/attention.hpp"
#include "bitgrad/kernels/gemm_bf16.hpp"
#include "bitgrad/kernels/norm.hpp"
#include "bitgrad/kernels/rope.hpp"
#include "bitgrad/nn/config.hpp"

namespace bitgrad::infer {

// A linear layer's weight [out, in] in bf16: y = x W^T.
struct FrozenLinear {
    Tensor<bf16> weight;

    FrozenLinear() = default;
    explicit FrozenLinear(Tensor<bf16> w) : weight(std::move(w)) {}
    explicit FrozenLinear(const Tensor<float>& w) : weight(w.shape()) {
        const float* src = w.data();
        bf16* dst = weight.data();
        parallel_chunks(w.numel(), [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) dst[i] = to_bf16(src[i]);
        });
    }
    int64_t out() const { return weight.dim(0); }
    int64_t in() const { return weight.dim(1); }
    // y [rows, out] = x [rows, in] W^T (+ beta * y).
    void forward(const float* x, int64_t rows, float* y, float beta = 0.f) const {
        kernels::gemm_bf16(rows, out(), in(), 1.f, kernels::Bf16Operand::f32(x, in()),
                           kernels::Bf16Operand::bf16(weight.data(), in(), /*trans=*/true), beta, y, out());
    }
};

class FrozenLlama {
public:
    // From a dense nn::LlamaForCausalLM<float, nn::Linear<float>> (its float weights are copied).
    template <class Model>
    explicit FrozenLlama(const Model& m) : config_(m.config) {
        static_assert(!Model::binarized,
                      "FrozenLlama holds a full-precision model; the binarized one has its own packed form");
        config_.validate();
        embed_ = FrozenLinear(m.model.embed_tokens.weight.value());
        for (const auto& layer : m.model.layers) {
            const auto& a = layer->self_attn;
            const auto& f = layer->mlp;
            layers_.push_back({layer->input_layernorm.weight.value().clone(),
                               layer->post_attention_layernorm.weight.value().clone(),
                               FrozenLinear(a.q_proj.weight.value()), FrozenLinear(a.k_proj.weight.value()),
                               FrozenLinear(a.v_proj.weight.value()), FrozenLinear(a.o_proj.weight.value()),
                               FrozenLinear(f.gate_proj.weight.value()), FrozenLinear(f.up_proj.weight.value()),
                               FrozenLinear(f.down_proj.weight.value())});
        }
        norm_ = m.model.norm.weight.value().clone();
        lm_head_ = FrozenLinear(m.lm_head.weight.value());
    }

    // From a checkpoint's files (bitgrad's or Hugging Face's layout), one tensor at a time: a BF16
    // matrix is kept as stored, F32 / F64 / F16 ones are rounded to bf16, so a 1.1B teacher never
    // exists in float. Names and shapes are strict: every tensor of the config's LLaMA must be
    // there and no other (lm_head.weight may be absent when tie_word_embeddings is set: the
    // embedding then serves as the lm_head).
    static FrozenLlama load(const io::HfCheckpoint& checkpoint, const nn::LlamaConfig& config) {
        BITGRAD_CHECK(!config.binarized, checkpoint.dir().string()
                                             << ": a binarized model cannot be frozen in bf16 (pack it instead)");
        config.validate();
        const int64_t C = config.hidden_size, I = config.intermediate_size, V = config.vocab_size,
                      Q = config.num_attention_heads * config.head_dim(),
                      KV = config.num_key_value_heads * config.head_dim();
        std::set<std::string> used;
        auto matrix = [&](const std::string& name, Shape shape) {
            used.insert(name);
            return FrozenLinear(checkpoint.read_bf16(name, &shape));
        };
        auto vector = [&](const std::string& name) {
            used.insert(name);
            const Shape shape{C};
            return checkpoint.read<float>(name, &shape);
        };
        FrozenLlama m;
        m.config_ = config;
        m.embed_ = matrix("model.embed_tokens.weight", {V, C});
        for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
            const std::string p = "model.layers." + std::to_string(i) + ".";
            m.layers_.push_back(
                {vector(p + "input_layernorm.weight"), vector(p + "post_attention_layernorm.weight"),
                 matrix(p + "self_attn.q_proj.weight", {Q, C}), matrix(p + "self_attn.k_proj.weight", {KV, C}),
                 matrix(p + "self_attn.v_proj.weight", {KV, C}), matrix(p + "self_attn.o_proj.weight", {C, Q}),
                 matrix(p + "mlp.gate_proj.weight", {I, C}), matrix(p + "mlp.up_proj.weight", {I, C}),
                 matrix(p + "mlp.down_proj.weight", {C, I})});
        }
        m.norm_ = vector("model.norm.weight");
        if (config.tie_word_embeddings && !checkpoint.contains("lm_head.weight"))
            m.lm_head_ = m.embed_;  // shares the bf16 storage
        else
            m.lm_head_ = matrix("lm_head.weight", {V, C});
        for (const auto& name : checkpoint.names())
            BITGRAD_CHECK(used.count(name), checkpoint.dir().string()
                                                << ": tensor " << name << " is not part of a full-precision LLaMA with "
                                                << config.num_hidden_layers << " layers (config.json)");
        return m;
    }

    const nn::LlamaConfig& config() const { return config_; }
    const FrozenLinear& lm_head() const { return lm_head_; }
    // Bytes held by the weights.
    int64_t bytes() const {
        int64_t n = 2 * (embed_.weight.numel() + lm_head_.weight.numel()) + 4 * norm_.numel();
        for (const auto& l : layers_)
            for (const FrozenLinear* w : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) n += 2 * w->weight.numel();
        return n;
    }

    // ids [B, T] -> the final hidden states [B*T, C] (after the last RMSNorm); positions start at
    // pos_offset.
    Tensor<float> hidden_states(const Tensor<int32_t>& ids, int64_t pos_offset = 0) const {
        BITGRAD_CHECK(ids.ndim() == 2, "FrozenLlama: ids have shape " << ids.shape() << ", expected [batch, time]");
        const auto& c = config_;
        const int64_t B = ids.dim(0), T = ids.dim(1), N = B * T, C = c.hidden_size, D = c.head_dim();
        const int64_t H = c.num_attention_heads, Hkv = c.num_key_value_heads, I = c.intermediate_size;
        BITGRAD_CHECK(pos_offset >= 0 && pos_offset + T <= c.max_position_embeddings,
                      "FrozenLlama: positions up to " << pos_offset + T << " exceed max_position_embeddings "
                                                      << c.max_position_embeddings);
        for (int64_t i = 0; i < N; ++i)
            BITGRAD_CHECK(ids[i] >= 0 && ids[i] < c.vocab_size,
                          "FrozenLlama: token id " << ids[i] << " at index " << i << " is outside the vocabulary [0, "
                                                   << c.vocab_size << ")");
        Tensor<float> x({N, C}), h({N, C}), q({N, H * D}), k({N, Hkv * D}), v({N, Hkv * D}), o({N, H * D});
        Tensor<float> lse({B, H, T}), gate({N, I}), up({N, I});
        parallel_for(
            N,
            [&](int64_t n) {
                const bf16* row = embed_.weight.data() + int64_t(ids[n]) * C;
                for (int64_t j = 0; j < C; ++j) x[n * C + j] = to_float(row[j]);
            },
            C);
        Tensor<float> cos_t, sin_t;
        kernels::rope_table(T, D, c.rope_theta, pos_offset, cos_t, sin_t);
        const kernels::AttentionDims dims{B, T, T, H, Hkv, D, true};
        const float eps = float(c.rms_norm_eps);
        for (const auto& l : layers_) {
            kernels::rms_norm_rows(x.data(), l.n1.data(), eps, h.data(), (float*)nullptr, N, C);
            l.q.forward(h.data(), N, q.data());
            l.k.forward(h.data(), N, k.data());
            l.v.forward(h.data(), N, v.data());
            kernels::rope_apply(q.data(), q.data(), B, T, H, D, cos_t, sin_t, 1.f, false);
            kernels::rope_apply(k.data(), k.data(), B, T, Hkv, D, cos_t, sin_t, 1.f, false);
            kernels::attention_forward(dims, q.data(), k.data(), v.data(), o.data(), lse.data());
            l.o.forward(o.data(), N, x.data(), /*beta=*/1.f);  // residual
            kernels::rms_norm_rows(x.data(), l.n2.data(), eps, h.data(), (float*)nullptr, N, C);
            l.gate.forward(h.data(), N, gate.data());
            l.up.forward(h.data(), N, up.data());
            kernels::swiglu_rows(gate.data(), up.data(), gate.data(), gate.numel());
            l.down.forward(gate.data(), N, x.data(), /*beta=*/1.f);  // residual
        }
        kernels::rms_norm_rows(x.data(), norm_.data(), eps, h.data(), (float*)nullptr, N, C);
        return h;
    }

    // out [rows, V] = hidden [rows, C] lm_head^T.
    void logits(const float* hidden, int64_t rows, float* out) const { lm_head_.forward(hidden, rows, out); }

private:
    FrozenLlama() = default;
    struct Layer {
        Tensor<float> n1, n2;
        FrozenLinear q, k, v, o, gate, up, down;
    };
    nn::LlamaConfig config_;
    FrozenLinear embed_;  // [V, C], looked up by row
    std::vector<Layer> layers_;
    Tensor<float> norm_;
    FrozenLinear lm_head_;
};

}  // namespace bitgrad::infer
