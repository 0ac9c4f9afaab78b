#pragma once
// config.json in Hugging Face LlamaConfig keys, plus "bitgrad_binarized" and "bitgrad_ste" for
// FBI-LLM students. Reading checks each field's type and the config's rules, naming the field.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <sstream>
#include <string>

#include "bitgrad/core/atomic_file.hpp"
#include "bitgrad/core/json.hpp"
#include "bitgrad/nn/config.hpp"

namespace bitgrad::io {

// torch_dtype: what the weights file holds ("float32" for bitgrad's float models, "float64" for double).
inline nlohmann::ordered_json config_to_json(const nn::LlamaConfig& c, const std::string& torch_dtype = "float32") {
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
            {"tie_word_embeddings", c.tie_word_embeddings},
            {"bos_token_id", c.bos_token_id},
            {"eos_token_id", c.eos_token_id},
            {"pad_token_id", c.pad_token_id},
            {"torch_dtype", torch_dtype},
            {"bitgrad_binarized", c.binarized},
            {"bitgrad_ste", ste_name(c.ste)}};
}

// The least memory a model of a config can take in bitgrad: 1 bit a parameter (a packed file's
// signs; alpha, beta and the tables take more).
inline constexpr double kLeastBytesPerParameter = 0.125;

// Absent optional keys take Hugging Face LlamaConfig's defaults (rms_norm_eps 1e-6, rope_theta
// 10000, num_key_value_heads = num_attention_heads, max_position_embeddings 2048,
// tie_word_embeddings false). What bitgrad cannot run is refused, naming the field: another
// architecture or model_type, an activation other than SiLU, rope_scaling, attention or MLP biases,
// and sizes whose model would not fit in the memory this process may use at bytes_per_parameter
// (by default at 1 bit a parameter: what no form of the model could hold; a caller about to build
// the float model passes 4), naming `where` and the size field most responsible.
inline nn::LlamaConfig config_from_json(const nlohmann::json& j, const std::string& where,
                                        double bytes_per_parameter = kLeastBytesPerParameter) {
    BITGRAD_CHECK(j.is_object(), where << ": expected a JSON object");
    if (j.contains("architectures") && !j["architectures"].is_null()) {
        const auto archs = json_field<std::vector<std::string>>(j, "architectures", where);
        BITGRAD_CHECK(archs.size() == 1 && archs[0] == "LlamaForCausalLM",
                      where << ": field \"architectures\" is " << j["architectures"].dump()
                            << ", expected [\"LlamaForCausalLM\"] (bitgrad runs LLaMA models only)");
    }
    const std::string model_type = json_field_or<std::string>(j, "model_type", "llama", where);
    BITGRAD_CHECK(model_type == "llama",
                  where << ": field \"model_type\" is \"" << model_type << "\", expected \"llama\"");
    const std::string act = json_field_or<std::string>(j, "hidden_act", "silu", where);
    BITGRAD_CHECK(act == "silu", where << ": field \"hidden_act\" is \"" << act << "\", expected \"silu\" (SwiGLU)");
    BITGRAD_CHECK(!j.contains("rope_scaling") || j["rope_scaling"].is_null(),
                  where << ": field \"rope_scaling\" is set; bitgrad implements plain RoPE only (rope_theta)");
    for (const char* key : {"attention_bias", "mlp_bias"})
        BITGRAD_CHECK(!json_field_or<bool>(j, key, false, where),
                      where << ": field \"" << key << "\" is true; bitgrad's LLaMA layers have no biases");
    nn::LlamaConfig c;
    c.tie_word_embeddings = json_field_or<bool>(j, "tie_word_embeddings", false, where);
    c.vocab_size = json_field<int64_t>(j, "vocab_size", where);
    c.hidden_size = json_field<int64_t>(j, "hidden_size", where);
    c.intermediate_size = json_field<int64_t>(j, "intermediate_size", where);
    c.num_hidden_layers = json_field<int64_t>(j, "num_hidden_layers", where);
    c.num_attention_heads = json_field<int64_t>(j, "num_attention_heads", where);
    c.num_key_value_heads = json_field_or<int64_t>(j, "num_key_value_heads", c.num_attention_heads, where);
    c.max_position_embeddings = json_field_or<int64_t>(j, "max_position_embeddings", 2048, where);
    c.rms_norm_eps = json_field_or<double>(j, "rms_norm_eps", 1e-6, where);
    c.rope_theta = json_field_or<double>(j, "rope_theta", 10000.0, where);
    c.initializer_range = json_field_or<double>(j, "initializer_range", 0.02, where);
    // Token ids: an integer, or null (Hugging Face writes "pad_token_id": null) for the default.
    for (auto [key, field] : {std::pair{"bos_token_id", &c.bos_token_id}, std::pair{"eos_token_id", &c.eos_token_id},
                              std::pair{"pad_token_id", &c.pad_token_id}})
        if (j.contains(key) && !j[key].is_null()) *field = json_field<int32_t>(j, key, where);
    c.binarized = json_field_or<bool>(j, "bitgrad_binarized", false, where);
    const std::string ste = json_field_or<std::string>(j, "bitgrad_ste", ste_name(c.ste), where);
    const auto parsed = parse_ste(ste);
    BITGRAD_CHECK(parsed, where << ": field \"bitgrad_ste\" is \"" << ste << "\", expected " << ste_choices());
    c.ste = *parsed;
    try {
        c.validate();
        std::ostringstream form;
        if (bytes_per_parameter == kLeastBytesPerParameter)
            form << "at 1 bit a parameter (the least bitgrad stores)";
        else
            form << "at " << bytes_per_parameter << " bytes a parameter";
        c.require_memory_for_parameters(bytes_per_parameter, form.str());
    } catch (const Error& e) { BITGRAD_CHECK(false, where << ": " << e.what()); }
    return c;
}

inline void save_config(const std::filesystem::path& path, const nn::LlamaConfig& c,
                        const std::string& torch_dtype = "float32") {
    write_text_atomic(path, config_to_json(c, torch_dtype).dump(2) + "\n");
}

// bytes_per_parameter: as config_from_json (sizeof(float) to refuse, naming this file, a config
// whose float model would not fit).
inline nn::LlamaConfig load_config(const std::filesystem::path& path,
                                   double bytes_per_parameter = kLeastBytesPerParameter) {
    return config_from_json(load_json(path), path.string(), bytes_per_parameter);
}

}  // namespace bitgrad::io
