#pragma once
// The nn model a directory holds (config.json + weights, bitgrad's layout or Hugging Face's: shards,
// F32 / F16 / BF16), as the type its config.json says:
//
//   auto m = io::load_model<nn::FbiLlama<float>>(dir);   // refuses a full-precision checkpoint
//   io::with_model(dir, [](auto& m) { ... });             // nn::FbiLlama<float> when "binarized",
//                                                         // else nn::DenseLlama<float>
// Names and shapes are strict (io::load_hf_weights). Inference without a tape reads the same
// directories through infer::open_model.
#include <filesystem>
#include <memory>

#include "bitgrad/core/error.hpp"
#include "bitgrad/core/rng.hpp"
#include "bitgrad/io/config_json.hpp"
#include "bitgrad/io/hf_model.hpp"
#include "bitgrad/nn/llama.hpp"

namespace bitgrad::io {

// dir's model as Model (on the heap: a module's parameters are not moved). config.json's
// "binarized" must match Model's kind.
template <class Model>
std::unique_ptr<Model> load_model(const std::filesystem::path& dir) {
    const nn::LlamaConfig config = load_config(dir / "config.json", sizeof(float));
    BITGRAD_CHECK(config.binarized == Model::binarized,
                  (dir / "config.json").string() << ": \"binarized\" is " << (config.binarized ? "true" : "false")
                                                 << ", expected " << (Model::binarized ? "true" : "false")
                                                 << (Model::binarized ? " (an FBI-LLM)" : " (a full-precision model)"));
    Rng rng(0);
    auto model = std::make_unique<Model>(config, rng);
    load_hf_weights(dir, *model, config.tie_word_embeddings);
    return model;
}

// Loads dir's model as the type config.json says and returns f(model).
template <class F>
auto with_model(const std::filesystem::path& dir, F&& f) {
    if (load_config(dir / "config.json", sizeof(float)).binarized) return f(*load_model<nn::FbiLlama<float>>(dir));
    return f(*load_model<nn::DenseLlama<float>>(dir));
}

}  // namespace bitgrad::io
