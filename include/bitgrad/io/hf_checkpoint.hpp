#pragma once
// Hugging Face LLaMA checkpoints as bitgrad models: the weights of a directory holding either
// model.safetensors or the shards listed in model.safetensors.index.json, whose "weight_map" maps
// every tensor name to its shard file:
//   {"metadata": {...}, "weight_map": {"model.embed_tokens.weight": "model-00001-of-00002.safetensors", ...}}
// Tensors of dtype F32, F64, F16 or BF16 are converted to the model's float type (values exact
// except F64 -> float rounding). Names and shapes are strict, as for bitgrad's own checkpoints,
// with two Hugging Face habits allowed: no lm_head.weight when config.json says
// "tie_word_embeddings": true (the lm_head is then the embedding), and the rotary inverse
// frequencies some older exports store ("...rotary_emb.inv_freq", recomputed here, so ignored).
// bitgrad's own model directories are read the same way (one F32 model.safetensors).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bitgrad/core/bf16.hpp"
#include "bitgrad/core/fp16.hpp"
#include "bitgrad/core/json.hpp"
#include "bitgrad/io/safetensors.hpp"
#include "bitgrad/nn/module.hpp"

namespace bitgrad::io {

// The tensor `e` of `reader` as T (float or double), converted from F32, F64, F16 or BF16.
template <class T>
Tensor<T> read_as_float(const SafetensorsReader& reader, const SafetensorsReader::Entry& e) {
    Tensor<T> t(e.shape);
    const uint8_t* src = reader.bytes(e);
    T* out = t.data();
    const int64_t n = t.numel();
    if (e.dtype == "F32") {
        for (int64_t i = 0; i < n; ++i) {
            float v;
            std::memcpy(&v, src + 4 * i, 4);  // the data section need not be aligned for 4-byte loads
            out[i] = T(v);
        }
    } else if (e.dtype == "F64") {
        for (int64_t i = 0; i < n; ++i) {
            double v;
            std::memcpy(&v, src + 8 * i, 8);
            out[i] = T(v);
        }
    } else if (e.dtype == "BF16" || e.dtype == "F16") {
        const bool brain = e.dtype == "BF16";
        for (int64_t i = 0; i < n; ++i) {
            uint16_t bits;
            std::memcpy(&bits, src + 2 * i, 2);
            out[i] = T(brain ? to_float(bf16{bits}) : to_float(fp16{bits}));
        }
    } else {
        BITGRAD_CHECK(false, reader.path() << ": tensor " << e.name << ": dtype " << e.dtype
                                           << ", expected F32, F64, F16 or BF16");
    }
    return t;
}

namespace detail {
inline bool is_rotary_inv_freq(const std::string& name) {
    const std::string suffix = "rotary_emb.inv_freq";
    return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The shard files of dir and, for a sharded checkpoint, which file holds each tensor.
inline std::vector<std::string> checkpoint_files(const std::filesystem::path& dir,
                                                 std::map<std::string, std::string>& weight_map) {
    std::error_code ec;
    if (std::filesystem::is_regular_file(dir / "model.safetensors", ec)) return {"model.safetensors"};
    const auto index_path = dir / "model.safetensors.index.json";
    BITGRAD_CHECK(std::filesystem::is_regular_file(index_path, ec),
                  dir.string() << ": neither model.safetensors nor model.safetensors.index.json");
    const std::string where = index_path.string();
    const auto index = load_json(index_path);
    BITGRAD_CHECK(index.is_object() && index.contains("weight_map") && index["weight_map"].is_object(),
                  where << ": field \"weight_map\" must be an object (tensor name -> shard file)");
    std::vector<std::string> files;
    for (const auto& [name, file] : index["weight_map"].items()) {
        BITGRAD_CHECK(file.is_string(), where << ": weight_map[\"" << name << "\"] must be a file name string");
        const std::string f = file.get<std::string>();
        // A shard is a file of this directory: no paths, so an index cannot point elsewhere.
        BITGRAD_CHECK(
            !f.empty() && f.find('/') == std::string::npos && f != "." && f != "..",
            where << ": weight_map[\"" << name << "\"] is \"" << f << "\", expected a file name in the same directory");
        weight_map[name] = f;
        if (std::find(files.begin(), files.end(), f) == files.end()) files.push_back(f);
    }
    BITGRAD_CHECK(!files.empty(), where << ": weight_map is empty");
    return files;
}
}  // namespace detail

// Loads dir's weights (header comment) into model. Non-finite values are refused, naming the tensor.
template <class T>
void load_hf_weights(const std::filesystem::path& dir, nn::Module<T>& model, bool tie_word_embeddings) {
    std::map<std::string, std::string> weight_map;
    const std::vector<std::string> files = detail::checkpoint_files(dir, weight_map);
    std::map<std::string, std::unique_ptr<SafetensorsReader>> readers;
    for (const auto& f : files) readers[f] = std::make_unique<SafetensorsReader>((dir / f).string());
    for (const auto& [name, file] : weight_map)
        BITGRAD_CHECK(readers.at(file)->find(name), (dir / "model.safetensors.index.json").string()
                                                        << ": weight_map puts " << name << " in " << file
                                                        << ", which has no such tensor");
    nn::StateDict<T> dict;
    for (const auto& [file, reader] : readers)
        for (const auto& e : reader->entries()) {
            if (detail::is_rotary_inv_freq(e.name)) continue;
            BITGRAD_CHECK(!dict.count(e.name), dir.string() << ": tensor " << e.name << " is in two shard files");
            Tensor<T> t = read_as_float<T>(*reader, e);
            for (int64_t i = 0; i < t.numel(); ++i)
                BITGRAD_CHECK(std::isfinite(double(t[i])), reader->path() << ": tensor " << e.name
                                                                          << " holds a non-finite value at flat index "
                                                                          << i << ": the file is damaged");
            dict.emplace(e.name, std::move(t));
        }
    if (tie_word_embeddings && !dict.count("lm_head.weight") && dict.count("model.embed_tokens.weight"))
        dict.emplace("lm_head.weight", dict.at("model.embed_tokens.weight").clone());
    try {
        model.load_state_dict(dict);
    } catch (const Error& e) { BITGRAD_CHECK(false, dir.string() << ": " << e.what()); }
}

}  // namespace bitgrad::io
