#pragma once
// LlamaConfig: the Hugging Face LlamaConfig fields bitgrad uses, the FBI-LLM presets, and checks.
#include <string>

#include "bitgrad/core/error.hpp"
#include "bitgrad/ops/sign.hpp"

namespace bitgrad::nn {

struct LlamaConfig {
    int64_t vocab_size = 32000;
    int64_t hidden_size = 768;
    int64_t intermediate_size = 2048;
    int64_t num_hidden_layers = 12;
    int64_t num_attention_heads = 12;
    int64_t num_key_value_heads = 12;
    int64_t max_position_embeddings = 2048;
    double rms_norm_eps = 1e-5;
    double rope_theta = 10000.0;
    double initializer_range = 0.02;
    int32_t bos_token_id = 1, eos_token_id = 2, pad_token_id = 0;
    bool binarized = false;       // FBI-Linear in every decoder linear layer (lm_head stays dense)
    Ste ste = Ste::Identity;      // straight-through estimator of the binarized layers

    int64_t head_dim() const { return hidden_size / num_attention_heads; }

    // Throws naming the field and the rule it breaks.
    void validate() const {
        auto positive = [](const char* field, int64_t v) {
            BITGRAD_CHECK(v > 0, "LlamaConfig: " << field << " = " << v << ", expected > 0");
        };
        positive("vocab_size", vocab_size);
        positive("hidden_size", hidden_size);
        positive("intermediate_size", intermediate_size);
        positive("num_hidden_layers", num_hidden_layers);
        positive("num_attention_heads", num_attention_heads);
        positive("num_key_value_heads", num_key_value_heads);
        positive("max_position_embeddings", max_position_embeddings);
        BITGRAD_CHECK(hidden_size % num_attention_heads == 0,
                      "LlamaConfig: hidden_size " << hidden_size << " is not divisible by num_attention_heads "
                                                  << num_attention_heads);
        BITGRAD_CHECK(num_attention_heads % num_key_value_heads == 0,
                      "LlamaConfig: num_key_value_heads " << num_key_value_heads
                                                          << " does not divide num_attention_heads " << num_attention_heads);
        BITGRAD_CHECK(head_dim() % 2 == 0, "LlamaConfig: head_dim " << head_dim() << " must be even for RoPE");
        BITGRAD_CHECK(rms_norm_eps > 0 && rope_theta > 0,
                      "LlamaConfig: rms_norm_eps " << rms_norm_eps << " and rope_theta " << rope_theta << " must be > 0");
    }

    // Presets of the FBI-LLM paper (vocab 32000, LLaMA-2 tokenizer) and a tiny one for tests.
    static LlamaConfig preset(const std::string& name) {
        LlamaConfig c;
        if (name == "tiny") {
            c.vocab_size = 64; c.hidden_size = 16; c.intermediate_size = 32; c.num_hidden_layers = 2;
            c.num_attention_heads = 4; c.num_key_value_heads = 4; c.max_position_embeddings = 64;
        } else if (name == "130M") {
            c.hidden_size = 768; c.intermediate_size = 2048; c.num_hidden_layers = 12;
            c.num_attention_heads = c.num_key_value_heads = 12;
        } else if (name == "1.3B") {
            c.hidden_size = 2048; c.intermediate_size = 5632; c.num_hidden_layers = 24;
            c.num_attention_heads = c.num_key_value_heads = 32;
        } else if (name == "7B") {
            c.hidden_size = 4096; c.intermediate_size = 11008; c.num_hidden_layers = 32;
            c.num_attention_heads = c.num_key_value_heads = 32;
        } else {
            BITGRAD_CHECK(false, "LlamaConfig: unknown preset '" << name << "', expected tiny, 130M, 1.3B or 7B");
        }
        return c;
    }
};

}  // namespace bitgrad::nn
