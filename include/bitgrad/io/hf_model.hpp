#pragma once
// Training models (nn::Module) to and from Hugging Face checkpoint directories:
//   load_hf_weights(dir, model, tie)   into a float or double nn model (io/hf_checkpoint.hpp reads)
//   save_hf_model(dir, model, config, dtype, format)   the way back: F32 / BF16 / F16 weights in
//                                      model.safetensors and/or pytorch_model.bin, and config.json
// saved_config: the config.json a saved model gets (the STE its layers hold).
#include <cmath>
#include <cstring>
#include <deque>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "bitgrad/core/bf16.hpp"
#include "bitgrad/core/fp16.hpp"
#include "bitgrad/format/safetensors.hpp"
#include "bitgrad/format/torch_checkpoint.hpp"
#include "bitgrad/io/config_json.hpp"
#include "bitgrad/io/hf_checkpoint.hpp"
#include "bitgrad/nn/linear.hpp"
#include "bitgrad/nn/module.hpp"

namespace bitgrad::io {

// What a saved model's config.json records: config with the STE its binarized layers hold
// (nn::held_ste), which is what training with it does; a config.ste assigned after the model was
// built changed nothing in the layers. Layers holding different STEs are refused (`where`: the save).
template <class T>
nn::LlamaConfig saved_config(const nn::Module<T>& model, nn::LlamaConfig config, const std::string& where) {
    try {
        if (const auto ste = nn::held_ste(model)) config.ste = *ste;
    } catch (const Error& e) { BITGRAD_CHECK(false, where << ": " << e.what()); }
    return config;
}

// Loads dir's weights (header comment) into model, one tensor at a time (the peak is the model
// plus one tensor, not two models). Names and shapes are checked before any value is read, and a
// mismatch lists every missing, mis-shaped and unexpected tensor; non-finite values are refused,
// naming the tensor.
template <class T>
void load_hf_weights(const HfCheckpoint& checkpoint, nn::Module<T>& model, bool tie_word_embeddings) {
    const std::filesystem::path& dir = checkpoint.dir();
    auto params = model.named_parameters();
    std::vector<std::string> sources;  // the checkpoint tensor that fills each parameter
    std::set<std::string> used;
    std::string missing, mismatched, unexpected;
    for (const auto& p : params) {
        std::string source = p.name;
        if (!checkpoint.contains(source) && tie_word_embeddings && p.name == "lm_head.weight")
            source = "model.embed_tokens.weight";
        if (!checkpoint.contains(source)) {
            missing += "\n  " + p.name + " " + p.var.shape().str();
            source.clear();
        } else if (checkpoint.entry(source).shape != p.var.shape()) {
            mismatched +=
                "\n  " + source + ": expected " + p.var.shape().str() + ", got " + checkpoint.entry(source).shape.str();
        }
        used.insert(source);
        sources.push_back(source);
    }
    for (const auto& name : checkpoint.names())
        if (!used.count(name)) unexpected += "\n  " + name + " " + checkpoint.entry(name).shape.str();
    BITGRAD_CHECK(missing.empty() && mismatched.empty() && unexpected.empty(),
                  dir.string() << ": the tensors do not match the model"
                               << (missing.empty() ? "" : "\nmissing:" + missing)
                               << (mismatched.empty() ? "" : "\nshape mismatch:" + mismatched)
                               << (unexpected.empty() ? "" : "\nunexpected:" + unexpected));
    for (std::size_t i = 0; i < params.size(); ++i) params[i].var.value().copy_from(checkpoint.read<T>(sources[i]));
}
template <class T>
void load_hf_weights(const std::filesystem::path& dir, nn::Module<T>& model, bool tie_word_embeddings) {
    load_hf_weights(HfCheckpoint(dir), model, tie_word_embeddings);
}

// ---------------------------------------------------------------- writing
// The element types a checkpoint is written in. F32 keeps the latent weights exactly (what the
// FBI-LLM reference code trains and loads); BF16 and F16 halve the file (a dense teacher, or a
// student whose signs survive any rounding: bf16 and fp16 keep the sign of every nonzero float).
enum class HfDtype { F32, BF16, F16 };

inline const char* torch_dtype_name(HfDtype d) {
    switch (d) {
        case HfDtype::F32: return "float32";
        case HfDtype::BF16: return "bfloat16";
        case HfDtype::F16: return "float16";
    }
    return "?";
}
inline const char* safetensors_dtype_name(HfDtype d) {
    switch (d) {
        case HfDtype::F32: return "F32";
        case HfDtype::BF16: return "BF16";
        case HfDtype::F16: return "F16";
    }
    return "?";
}
// "float32" / "bfloat16" / "float16" (torch's names) or "f32" / "bf16" / "f16".
inline std::optional<HfDtype> parse_hf_dtype(std::string_view s) {
    for (HfDtype d : {HfDtype::F32, HfDtype::BF16, HfDtype::F16}) {
        std::string shortname = safetensors_dtype_name(d);
        std::transform(shortname.begin(), shortname.end(), shortname.begin(), [](char c) { return char(c | 0x20); });
        if (s == torch_dtype_name(d) || s == shortname) return d;
    }
    return std::nullopt;
}

// A model's parameters as blobs of one dtype, in named_parameters() order; `storage` owns the
// converted bytes (F32 from a float model points at the weights themselves). Values that F16
// cannot hold (|x| > 65504) are refused, naming the tensor: they would become infinities.
template <class T>
std::vector<SafetensorsBlob> model_blobs(const nn::Module<T>& model, HfDtype dtype,
                                         std::vector<std::vector<uint16_t>>& half_storage,
                                         std::vector<Tensor<float>>& float_storage) {
    std::vector<SafetensorsBlob> blobs;
    const auto params = model.named_parameters();
    half_storage.reserve(params.size());
    float_storage.reserve(params.size());
    for (const auto& p : params) {
        const Tensor<T>& v = p.var.value();
        const int64_t n = v.numel();
        if (dtype == HfDtype::F32) {
            if constexpr (std::is_same_v<T, float>) {
                blobs.push_back(safetensors_blob(p.name, v));
            } else {
                auto& f = float_storage.emplace_back(v.shape());
                for (int64_t i = 0; i < n; ++i) f[i] = float(v[i]);
                blobs.push_back(safetensors_blob(p.name, f));
            }
            continue;
        }
        auto& bits = half_storage.emplace_back(std::size_t(n));
        for (int64_t i = 0; i < n; ++i) {
            const float x = float(v[i]);
            if (dtype == HfDtype::BF16) {
                bits[std::size_t(i)] = to_bf16(x).bits;
            } else {
                BITGRAD_CHECK(!(std::fabs(x) > 65504.f), "tensor " << p.name << " holds " << x << " at flat index " << i
                                                                   << ", beyond float16's range of +-65504: write it "
                                                                      "as bfloat16 or float32");
                bits[std::size_t(i)] = to_fp16(x).bits;
            }
        }
        blobs.push_back({p.name, safetensors_dtype_name(dtype), v.shape(), bits.data(), uint64_t(n) * 2});
    }
    return blobs;
}

// Which weight files an export writes: model.safetensors, pytorch_model.bin (torch.save's zip
// layout, for code that calls torch.load), or both (holding the same values).
enum class HfFormat { Safetensors, Pytorch, Both };

inline const char* hf_format_name(HfFormat f) {
    switch (f) {  // no default: -Wswitch names a new value here
        case HfFormat::Safetensors: return "safetensors";
        case HfFormat::Pytorch: return "pytorch";
        case HfFormat::Both: return "both";
    }
    return "?";  // not reached
}
inline std::optional<HfFormat> parse_hf_format(std::string_view s) {
    for (HfFormat f : {HfFormat::Safetensors, HfFormat::Pytorch, HfFormat::Both})
        if (s == hf_format_name(f)) return f;
    return std::nullopt;
}

// Writes dir/config.json (torch_dtype = dtype; the STE the layers hold: saved_config) and the
// weight files of `format` in Hugging Face's layout, each file atomically, config.json last. The
// tensor names are those of named_parameters(), which are the spec's
// (model.layers.{i}.self_attn.q_proj.{weight,wscale,wbias}, ...). A weight file of the other format
// already in dir is refused rather than left stale (transformers would prefer model.safetensors
// over a new pytorch_model.bin).
template <class T>
void save_hf_model(const std::filesystem::path& dir, const nn::Module<T>& model, const nn::LlamaConfig& config,
                   HfDtype dtype = HfDtype::F32, HfFormat format = HfFormat::Safetensors) {
    const bool safetensors = format != HfFormat::Pytorch, pytorch = format != HfFormat::Safetensors;
    std::error_code ec;
    for (const auto& [file, written] : {std::pair{"model.safetensors", safetensors}, {"pytorch_model.bin", pytorch}})
        BITGRAD_CHECK(written || !std::filesystem::exists(dir / file, ec),
                      (dir / file).string() << " exists and this export does not write it: remove it or write both "
                                               "formats, so the directory holds one model");
    const nn::LlamaConfig written = saved_config(model, config, "save_hf_model " + dir.string());
    std::vector<std::vector<uint16_t>> half;
    std::vector<Tensor<float>> floats;
    const auto blobs = model_blobs(model, dtype, half, floats);
    ensure_directory(dir);
    if (safetensors) save_safetensors_blobs(dir / "model.safetensors", blobs, {{"format", "pt"}});
    if (pytorch) save_torch_state_dict(dir / "pytorch_model.bin", blobs);
    save_config(dir / "config.json", written, torch_dtype_name(dtype));
}

// ---------------------------------------------------------------- PyTorch files
// The tensors of one or more torch.save files (pytorch_model.bin, or the shards
// pytorch_model-0000k-of-0000n.bin) as one safetensors file, each in the dtype it was stored in, in
// file order; rotary inv_freq buffers are dropped, as FBI-LLM's eval.py drops them. Nothing of the
// pickles is executed (io/torch_checkpoint.hpp). Contiguous tensors are written straight from the
// mapped inputs, so a 7B file is not copied into memory; strided views are gathered, all of them
// before the write. Before anything is gathered or written, on_expanded is called with every view
// that repeats its storage's elements (TorchExpandedView: a few bytes in the file, maybe gigabytes
// written), and the memory for all gathered views is checked, naming the view that does not fit.
// Returns the names written, in order.
inline std::vector<std::string> convert_torch_to_safetensors(
    const std::vector<std::filesystem::path>& inputs, const std::filesystem::path& out,
    const std::function<void(const TorchExpandedView&)>& on_expanded = {}) {
    BITGRAD_CHECK(!inputs.empty(), "convert: no pytorch_model.bin files given");
    std::vector<std::unique_ptr<TorchCheckpointReader>> readers;
    std::vector<std::pair<const TorchCheckpointReader*, const TorchCheckpointReader::Entry*>> tensors;
    std::map<std::string, std::string> seen;  // tensor -> file
    for (const auto& in : inputs) {
        readers.push_back(std::make_unique<TorchCheckpointReader>(in.string()));
        const TorchCheckpointReader& r = *readers.back();
        for (const auto& e : r.entries()) {
            if (detail::is_rotary_inv_freq(e.name)) continue;
            const auto [it, fresh] = seen.emplace(e.name, r.path());
            BITGRAD_CHECK(fresh, "convert: tensor " << e.name << " is in both " << it->second << " and " << r.path());
            tensors.push_back({&r, &e});
        }
    }
    if (on_expanded)
        for (const auto& [r, e] : tensors)
            if (const auto x = r->expanded_view(*e)) on_expanded(*x);
    // Every gathered view stays in memory until the write: their sum must fit.
    uint64_t gathered_bytes = 0;
    int64_t views = 0;
    for (const auto& [r, e] : tensors) {
        if (TorchCheckpointReader::contiguous(*e)) continue;
        gathered_bytes = std::min(gathered_bytes + e->bytes(), uint64_t(1) << 62);  // each <= 2^62
        const auto x = r->expanded_view(*e);
        require_memory(
            gathered_bytes,
            "convert: " + r->path() + ": " + (x ? x->describe() : "tensor " + e->name + " (a strided view)") +
                (views > 0 ? " with the " + std::to_string(views) + " views gathered before it" : std::string()));
        ++views;
    }
    std::vector<SafetensorsBlob> blobs;
    std::deque<std::vector<uint8_t>> gathered;  // strided views, made contiguous
    for (const auto& [r, e] : tensors)
        blobs.push_back({e->name, e->dtype, e->shape, r->data(*e, gathered.emplace_back()), e->bytes()});
    save_safetensors_blobs(out, blobs, {{"format", "pt"}});
    std::vector<std::string> names;
    for (const auto& b : blobs) names.push_back(b.name);
    return names;
}

}  // namespace bitgrad::io
