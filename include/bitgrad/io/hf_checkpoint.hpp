#pragma once
// Hugging Face LLaMA checkpoints, read tensor by tensor (model-free: infer::Decoder::load reads them
// into inference storage, io/hf_model.hpp into a training model): the weights of a directory holding either
// model.safetensors or the shards listed in model.safetensors.index.json, whose "weight_map" maps
// every tensor name to its shard file:
//   {"metadata": {...}, "weight_map": {"model.embed_tokens.weight": "model-00001-of-00002.safetensors", ...}}
// Tensors of dtype F32, F64, F16 or BF16 are converted to the model's float type (values exact
// except F64 -> float rounding). Names and shapes are strict, as for bitgrad's own checkpoints,
// with two Hugging Face habits allowed: no lm_head.weight when config.json says
// "tie_word_embeddings": true (the lm_head is then the embedding), and the rotary inverse
// frequencies some older exports store ("...rotary_emb.inv_freq", recomputed here, so ignored).
// bitgrad's own model directories are read the same way (one F32 model.safetensors).
//
//   HfCheckpoint ckpt(dir);            every shard mapped and checked; tensors read one at a time
//   load_hf_weights(dir, model, tie)   into a float or double nn model
//   infer::FrozenLlama::load(ckpt, c)  into bf16 storage (a half-precision teacher stays half)
//   save_hf_model(dir, model, config, dtype, format)   the way back: F32 / BF16 / F16 weights in
//                                      model.safetensors and/or pytorch_model.bin, and config.json
// pytorch_model.bin files (FBI-LLM's releases) are read by io/torch_checkpoint.hpp (bitgrad convert).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "bitgrad/core/bf16.hpp"
#include "bitgrad/core/fp16.hpp"
#include "bitgrad/core/json.hpp"
#include "bitgrad/format/safetensors.hpp"
#include "bitgrad/format/torch_checkpoint.hpp"
#include "bitgrad/io/config_json.hpp"

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
inline bool is_rotary_inv_freq(const std::string& name) { return name.ends_with("rotary_emb.inv_freq"); }

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

// Refuses a tensor holding NaN or Inf: a NaN model only prints "perplexity nan" or garbage text.
template <class T>
void check_finite(const Tensor<T>& t, const std::string& file, const std::string& name) {
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; i < t.numel(); ++i)
        if (!std::isfinite(double(t[i])) && bad++ == 0) first = i;
    BITGRAD_CHECK(bad == 0, file << ": tensor " << name << " holds " << bad
                                 << " non-finite values (NaN or Inf; the first at flat index " << first << ", value "
                                 << double(t[first]) << "): the model diverged or the file is damaged");
}
}  // namespace detail

// An opened checkpoint directory (header comment): every shard mapped and validated, the index
// checked against the shards, each tensor in exactly one shard. Tensors are then read one at a
// time, so a loader holds at most one converted tensor beyond what it keeps.
class HfCheckpoint {
public:
    explicit HfCheckpoint(const std::filesystem::path& dir) : dir_(dir) {
        std::map<std::string, std::string> weight_map;
        for (const auto& f : detail::checkpoint_files(dir, weight_map))
            readers_[f] = std::make_unique<SafetensorsReader>((dir / f).string());
        for (const auto& [name, file] : weight_map)
            BITGRAD_CHECK(readers_.at(file)->find(name), (dir / "model.safetensors.index.json").string()
                                                             << ": weight_map puts " << name << " in " << file
                                                             << ", which has no such tensor");
        for (const auto& [file, reader] : readers_)
            for (const auto& e : reader->entries()) {
                if (detail::is_rotary_inv_freq(e.name)) continue;
                BITGRAD_CHECK(!tensors_.count(e.name), dir.string()
                                                           << ": tensor " << e.name << " is in two shard files");
                tensors_[e.name] = {reader.get(), &e};
            }
    }

    const std::filesystem::path& dir() const { return dir_; }
    // Tensor names, sorted (rotary inv_freq left out).
    std::vector<std::string> names() const {
        std::vector<std::string> out;
        for (const auto& kv : tensors_) out.push_back(kv.first);
        return out;
    }
    bool contains(const std::string& name) const { return tensors_.count(name) > 0; }
    const SafetensorsReader::Entry& entry(const std::string& name) const { return *located(name).second; }
    // True when some tensor is stored in F16 or BF16.
    bool half_precision() const {
        for (const auto& kv : tensors_)
            if (kv.second.second->dtype == "F16" || kv.second.second->dtype == "BF16") return true;
        return false;
    }

    // The tensor as T (float or double), its shape checked against `expected` when given; non-finite
    // values are refused.
    template <class T>
    Tensor<T> read(const std::string& name, const Shape* expected = nullptr) const {
        const auto [reader, e] = located(name);
        check_shape(*reader, *e, expected);
        Tensor<T> t = read_as_float<T>(*reader, *e);
        detail::check_finite(t, reader->path(), name);
        return t;
    }
    // The tensor in bf16: the stored bits when it is BF16, rounded to nearest even otherwise.
    Tensor<bf16> read_bf16(const std::string& name, const Shape* expected = nullptr) const {
        const auto [reader, e] = located(name);
        check_shape(*reader, *e, expected);
        if (e->dtype != "BF16") {
            const Tensor<float> f = read<float>(name);
            Tensor<bf16> t(f.shape());
            for (int64_t i = 0; i < f.numel(); ++i) t[i] = to_bf16(f[i]);
            return t;
        }
        Tensor<bf16> t(e->shape);
        if (e->end > e->begin) std::memcpy(t.data(), reader->bytes(*e), e->end - e->begin);
        for (int64_t i = 0; i < t.numel(); ++i)
            if ((t[i].bits & 0x7f80u) == 0x7f80u) {  // every exponent bit set: Inf or NaN
                Tensor<float> f({t.numel()});
                for (int64_t k = 0; k < t.numel(); ++k) f[k] = to_float(t[k]);
                detail::check_finite(f, reader->path(), name);  // throws, counting them
            }
        return t;
    }

private:
    std::pair<const SafetensorsReader*, const SafetensorsReader::Entry*> located(const std::string& name) const {
        const auto it = tensors_.find(name);
        BITGRAD_CHECK(it != tensors_.end(), dir_.string() << ": tensor " << name << " is missing");
        return it->second;
    }
    static void check_shape(const SafetensorsReader& reader, const SafetensorsReader::Entry& e, const Shape* expected) {
        if (expected)
            BITGRAD_CHECK(e.shape == *expected, reader.path() << ": tensor " << e.name << ": shape " << e.shape
                                                              << ", expected " << *expected);
    }

    std::filesystem::path dir_;
    std::map<std::string, std::unique_ptr<SafetensorsReader>> readers_;
    std::map<std::string, std::pair<const SafetensorsReader*, const SafetensorsReader::Entry*>> tensors_;
};

}  // namespace bitgrad::io
