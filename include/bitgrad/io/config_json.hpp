#pragma once
// config.json in Hugging Face LlamaConfig keys, plus "bitgrad_binarized" and "bitgrad_ste" for
// FBI-LLM students. Reading checks each field's type and the config's rules, naming the field.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include "bitgrad/io/atomic_file.hpp"
#include "bitgrad/nn/config.hpp"

namespace bitgrad::io {

inline nlohmann::ordered_json config_to_json(const nn::LlamaConfig& c) {
    return {{"architectures", {"LlamaForCausalLM"}},
            {"model_type", "llama"},
            {"vocab_size", c.vocab_size},
            {"hidden_size", c.hidden_size},
            {"intermediate_size", c.intermediate_size},
            {"num_hidden_layers", c.num_hidden_layers},
            {"num_attention_heads", c.num_attention_heads},
            {"num_key_value_heads", c.num_key_value_heads},
            {"max_position_embeddings", c.max_position_embeddings},
            {"rms_norm_eps", c.rms_norm_eps},
            {"rope_theta", c.rope_theta},
            {"initializer_range", c.initializer_range},
            {"hidden_act", "silu"},
            {"tie_word_embeddings", false},
            {"bos_token_id", c.bos_token_id},
            {"eos_token_id", c.eos_token_id},
            {"pad_token_id", c.pad_token_id},
            {"torch_dtype", "float32"},
            {"bitgrad_binarized", c.binarized},
            {"bitgrad_ste", ste_name(c.ste)}};
}

inline nn::LlamaConfig config_from_json(const nlohmann::json& j, const std::string& where) {
    BITGRAD_CHECK(j.is_object(), where << ": expected a JSON object");
    nn::LlamaConfig c;
    auto integer = [&](const char* key, int64_t& field, bool required) {
        if (!j.contains(key)) {
            BITGRAD_CHECK(!required, where << ": missing field \"" << key << "\"");
            return;
        }
        BITGRAD_CHECK(j[key].is_number_integer(), where << ": field \"" << key << "\" must be an integer, got " << j[key].dump());
        field = j[key].get<int64_t>();
    };
    auto real = [&](const char* key, double& field) {
        if (!j.contains(key)) return;
        BITGRAD_CHECK(j[key].is_number(), where << ": field \"" << key << "\" must be a number, got " << j[key].dump());
        field = j[key].get<double>();
    };
    integer("vocab_size", c.vocab_size, true);
    integer("hidden_size", c.hidden_size, true);
    integer("intermediate_size", c.intermediate_size, true);
    integer("num_hidden_layers", c.num_hidden_layers, true);
    integer("num_attention_heads", c.num_attention_heads, true);
    c.num_key_value_heads = c.num_attention_heads;
    integer("num_key_value_heads", c.num_key_value_heads, false);
    integer("max_position_embeddings", c.max_position_embeddings, false);
    real("rms_norm_eps", c.rms_norm_eps);
    real("rope_theta", c.rope_theta);
    real("initializer_range", c.initializer_range);
    if (j.contains("bitgrad_binarized")) {
        BITGRAD_CHECK(j["bitgrad_binarized"].is_boolean(), where << ": field \"bitgrad_binarized\" must be true or false");
        c.binarized = j["bitgrad_binarized"].get<bool>();
    }
    if (j.contains("bitgrad_ste")) {
        const std::string s = j["bitgrad_ste"].is_string() ? j["bitgrad_ste"].get<std::string>() : "";
        bool found = false;
        for (Ste ste : {Ste::Identity, Ste::Clipped, Ste::ApproxSign})
            if (s == ste_name(ste)) { c.ste = ste; found = true; }
        BITGRAD_CHECK(found, where << ": field \"bitgrad_ste\" is " << j["bitgrad_ste"].dump()
                                   << ", expected \"identity\", \"clipped\" or \"approx_sign\"");
    }
    try {
        c.validate();
    } catch (const Error& e) {
        BITGRAD_CHECK(false, where << ": " << e.what());
    }
    return c;
}

inline void save_config(const std::filesystem::path& path, const nn::LlamaConfig& c) {
    write_text_atomic(path, config_to_json(c).dump(2) + "\n");
}

inline nn::LlamaConfig load_config(const std::filesystem::path& path) {
    std::ifstream f(path);
    BITGRAD_CHECK(f, "cannot open " << path);
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(f);
    } catch (const nlohmann::json::exception& e) {
        BITGRAD_CHECK(false, path.string() << ": not valid JSON: " << e.what());
    }
    return config_from_json(j, path.string());
}

}  // namespace bitgrad::io
