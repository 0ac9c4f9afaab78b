#pragma once
// A model for inference from a path, whatever it holds:
//   a file        a packed FBI-LLM (bitgrad pack; infer/packed_file.hpp) -> infer::PackedLlama
//   a directory   config.json + weights, bitgrad's or Hugging Face's layout (shards, F32/F16/BF16;
//                 io::HfCheckpoint) -> infer::FloatLlama, the checkpoint's float numbers exactly (an
//                 FBI-LLM's layers as W_hat = alpha * sign(W) + beta)
// The one place that tells the two apart, so every command that takes a model takes either.
#include <filesystem>
#include <memory>
#include <string>

#include "bitgrad/core/error.hpp"
#include "bitgrad/infer/causal_lm.hpp"
#include "bitgrad/infer/decoder.hpp"
#include "bitgrad/infer/packed_file.hpp"
#include "bitgrad/io/config_json.hpp"
#include "bitgrad/io/hf_checkpoint.hpp"

namespace bitgrad::infer {

struct OpenedModel {
    std::unique_ptr<CausalLM> model;
    bool packed = false;
    std::string description;  // "packed, bf16 tables" / "float checkpoint"
};

// True for a file (a packed model), false for a directory; an error naming the path otherwise.
inline bool is_packed_model(const std::filesystem::path& path) {
    std::error_code ec;
    if (std::filesystem::is_regular_file(path, ec)) return true;
    BITGRAD_CHECK(std::filesystem::is_directory(path, ec),
                  path.string() << ": no such file or directory (a packed model file or a model directory)");
    return false;
}

inline OpenedModel open_model(const std::filesystem::path& path) {
    if (is_packed_model(path)) {
        auto m = std::make_unique<PackedLlama>(load_packed(path.string()));
        const std::string tables = table_format_name(m->lm_head().format());
        return {std::move(m), true, "packed, " + tables + " tables"};
    }
    const nn::LlamaConfig config = io::load_config(path / "config.json", sizeof(float));
    return {std::make_unique<FloatLlama>(FloatLlama::load(io::HfCheckpoint(path), config)), false, "float checkpoint"};
}

}  // namespace bitgrad::infer
