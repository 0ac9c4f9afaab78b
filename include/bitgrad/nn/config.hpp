#pragma once
// LlamaConfig: the Hugging Face LlamaConfig fields bitgrad uses, the FBI-LLM presets, and checks.
#include <cmath>
#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <tuple>

#include "bitgrad/core/error.hpp"
#include "bitgrad/core/memory.hpp"
#include "bitgrad/kernels/ste.hpp"

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
    bool tie_word_embeddings = false;  // a checkpoint may omit lm_head.weight: it is the embedding
    bool binarized = false;            // FBI-Linear in every decoder linear layer (lm_head stays dense)
    Ste ste = Ste::Identity;           // straight-through estimator of the binarized layers

    int64_t head_dim() const { return hidden_size / num_attention_heads; }

    // Parameters of the model this config describes (binarized: + alpha and beta per FBI column),
    // overflow-checked: a config whose count does not fit in 64 bits is refused, naming the sizes.
    int64_t num_parameters() const {
        const std::string what = "LlamaConfig (hidden_size " + std::to_string(hidden_size) + ", intermediate_size " +
                                 std::to_string(intermediate_size) + ", num_hidden_layers " +
                                 std::to_string(num_hidden_layers) + ", vocab_size " + std::to_string(vocab_size) +
                                 "): parameter count";
        BITGRAD_CHECK(num_attention_heads > 0,
                      "LlamaConfig: num_attention_heads = " << num_attention_heads << ", expected > 0");
        const int64_t C = hidden_size, I = intermediate_size, q = num_attention_heads * (C / num_attention_heads),
                      kv = checked_mul(num_key_value_heads, C / num_attention_heads, what);
        // q, k, v, o, gate, up, down: [out, in]; FBI layers add 2 * in (alpha, beta).
        int64_t layer =
            checked_mul(C, checked_add(checked_add(q, checked_mul(2, kv, what), what), q, what), what);  // q, k, v, o
        layer = checked_add(layer, checked_mul(3, checked_mul(C, I, what), what), what);  // gate, up, down
        if (binarized)
            layer = checked_add(layer, checked_mul(2, checked_add(checked_mul(6, C, what), I, what), what), what);
        layer = checked_add(layer, checked_mul(2, C, what), what);  // the two norms
        int64_t total = checked_mul(num_hidden_layers, layer, what);
        total =
            checked_add(total, checked_mul(2, checked_mul(vocab_size, C, what), what), what);  // embed_tokens, lm_head
        return checked_add(total, C, what);                                                    // final norm
    }

    // The 1-bit weights among them: every block linear of a binarized model (none otherwise).
    int64_t num_binary_parameters() const {
        if (!binarized) return 0;
        const int64_t C = hidden_size, I = intermediate_size, q = num_attention_heads * head_dim(),
                      kv = num_key_value_heads * head_dim();
        return num_hidden_layers * (C * (2 * q + 2 * kv) + 3 * C * I);  // num_parameters() checked the sizes
    }

    // The size field that most inflates num_parameters(): of vocab_size, hidden_size,
    // intermediate_size and num_hidden_layers, the one which, brought down to the LLaMA-7B preset's
    // value, removes the most parameters (a typo of 10^12 shows up here). nullopt when none exceeds
    // the preset.
    struct SizeField {
        const char* name;
        int64_t value, preset_value, parameters_at_preset;
    };
    std::optional<SizeField> largest_size_field() const {
        const LlamaConfig big = preset("7B");
        std::optional<SizeField> best;
        int64_t best_cut = 0;
        const int64_t total = num_parameters();
        for (auto [name, field, preset_value] :
             {std::tuple{"vocab_size", &LlamaConfig::vocab_size, big.vocab_size},
              std::tuple{"hidden_size", &LlamaConfig::hidden_size, big.hidden_size},
              std::tuple{"intermediate_size", &LlamaConfig::intermediate_size, big.intermediate_size},
              std::tuple{"num_hidden_layers", &LlamaConfig::num_hidden_layers, big.num_hidden_layers}}) {
            if (this->*field <= preset_value) continue;
            LlamaConfig smaller = *this;
            smaller.*field = preset_value;  // only smaller: the count cannot overflow
            const int64_t at_preset = smaller.num_parameters();
            if (total - at_preset > best_cut) {
                best_cut = total - at_preset;
                best = SizeField{name, this->*field, preset_value, at_preset};
            }
        }
        return best;
    }

    // Refuses, before anything is allocated, a model of this config whose parameters take more
    // memory than this process may use at bytes_per_parameter each (`form` says which storage, e.g.
    // "in float32"). The message gives the count, the sizes, the bytes, the limit and, first, the
    // size field most responsible (largest_size_field). It names no file: callers that read the
    // config from one prefix it (io::config_from_json).
    void require_memory_for_parameters(double bytes_per_parameter, const std::string& form) const {
        const int64_t n = num_parameters();
        std::ostringstream what;
        if (const auto f = largest_size_field())
            what << "field \"" << f->name << "\" is " << f->value << " (LLaMA-7B's is " << f->preset_value
                 << "; with that, " << f->parameters_at_preset << " parameters): ";
        what << "a model of " << n << " parameters (hidden_size " << hidden_size << ", intermediate_size "
             << intermediate_size << ", " << num_hidden_layers << " layers, vocab_size " << vocab_size << ") " << form;
        const double bytes = double(n) * bytes_per_parameter;  // n < 2^63: a double is exact enough
        require_memory(bytes >= 0x1p64 ? UINT64_MAX : uint64_t(std::ceil(bytes)), what.str());
    }

    // Floats one token's activations keep alive for backward (an estimate for memory checks): per
    // layer the block input, two norm outputs, q/k/v, attention output, o_proj and residual
    // (~8 C + 2 kv), gate/up/swiglu (3 I); plus logits, their gradient and teacher logits (3 V).
    int64_t activation_floats_per_token() const {
        const std::string what = "LlamaConfig: activation size";
        BITGRAD_CHECK(num_attention_heads > 0,
                      "LlamaConfig: num_attention_heads = " << num_attention_heads << ", expected > 0");
        const int64_t kv = checked_mul(num_key_value_heads, hidden_size / num_attention_heads, what);
        const int64_t layer =
            checked_add(checked_add(checked_mul(8, hidden_size, what), checked_mul(2, kv, what), what),
                        checked_mul(3, intermediate_size, what), what);
        return checked_add(checked_mul(num_hidden_layers, layer, what), checked_mul(3, vocab_size, what), what);
    }

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
                      "LlamaConfig: num_key_value_heads "
                          << num_key_value_heads << " does not divide num_attention_heads " << num_attention_heads);
        BITGRAD_CHECK(head_dim() % 2 == 0, "LlamaConfig: head_dim " << head_dim() << " must be even for RoPE");
        BITGRAD_CHECK(rms_norm_eps > 0 && rope_theta > 0, "LlamaConfig: rms_norm_eps "
                                                              << rms_norm_eps << " and rope_theta " << rope_theta
                                                              << " must be > 0");
        (void)num_parameters();  // throws if the sizes overflow
        (void)activation_floats_per_token();
    }

    // Presets of the FBI-LLM paper (vocab 32000, LLaMA-2 tokenizer) and a tiny one for tests.
    static LlamaConfig preset(const std::string& name) {
        LlamaConfig c;
        if (name == "tiny") {
            c.vocab_size = 64;
            c.hidden_size = 16;
            c.intermediate_size = 32;
            c.num_hidden_layers = 2;
            c.num_attention_heads = 4;
            c.num_key_value_heads = 4;
            c.max_position_embeddings = 64;
        } else if (name == "130M") {
            c.hidden_size = 768;
            c.intermediate_size = 2048;
            c.num_hidden_layers = 12;
            c.num_attention_heads = c.num_key_value_heads = 12;
        } else if (name == "1.3B") {
            c.hidden_size = 2048;
            c.intermediate_size = 5632;
            c.num_hidden_layers = 24;
            c.num_attention_heads = c.num_key_value_heads = 32;
        } else if (name == "7B") {
            c.hidden_size = 4096;
            c.intermediate_size = 11008;
            c.num_hidden_layers = 32;
            c.num_attention_heads = c.num_key_value_heads = 32;
        } else {
            BITGRAD_CHECK(false, "LlamaConfig: unknown preset '" << name << "', expected tiny, 130M, 1.3B or 7B");
        }
        return c;
    }
};

}  // namespace bitgrad::nn
