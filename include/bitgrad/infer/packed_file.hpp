#pragma once
// The packed model file: a PackedLlama in safetensors, so that any safetensors tool can list it.
//
//   infer::save_packed("model.packed.safetensors", packed);      // bitgrad pack does this
//   const infer::PackedLlama packed = infer::load_packed("model.packed.safetensors");
//
// Tensors (names as in the float checkpoint; C = hidden, V = vocabulary):
//   model.embed_tokens.weight                          BF16 [V, C]   (tables = "int8": I8 [V, C] and
//   model.embed_tokens.weight_scale                    F32  [V]       this one: row v = scale[v] * q[v])
//   model.layers.{l}.input_layernorm.weight            F32  [C]
//   model.layers.{l}.post_attention_layernorm.weight   F32  [C]
//   model.layers.{l}.{self_attn.q_proj, ..., mlp.down_proj}.weight_signs   U8 [out, 8 * ceil(in / 64)]
//   model.layers.{l}.{...}.wscale                      F16  [in]     alpha
//   model.layers.{l}.{...}.wbias                       F16  [in]     beta
//   model.norm.weight                                  F32  [C]
//   lm_head.weight                                     BF16 [V, C]   (tables = "int8": I8 [V, C] and
//   lm_head.weight_scale                               F32  [V]       this one)
//   tokenizer.model                                    U8   [n]      optional: the SentencePiece model's
//                                                                    bytes, so the file decodes text alone
// Metadata: format = "bitgrad.packed_fbi_llm", format_version = "1", config = the model's
// config.json as a string, sign_layout = the sentence below, tables = "bf16" or "int8" (absent:
// bf16, as in files written before the int8 option); with a tokenizer, tokenizer = "sentencepiece"
// and tokenizer_crc32 = its bytes' CRC-32 (8 hex digits); anything the caller adds (the source
// checkpoint, the seed).
//
// Sign bits, one row of W [out, in] after another, each row padded to a multiple of 64 columns:
//
//   byte:      0                   1                         8*ceil(in/64) - 1
//   row i:  [ b7 b6 b5 b4 b3 b2 b1 b0 ][ b15 ... b8 ]  ...  [ ... 0 0 0 ]   bit k of byte t = column 8t + k
//            `-- b0 = 1 if W[i][0] >= 0 (sign +1), 0 if W[i][0] < 0 (sign -1)        padding bits: 0
//
// which is kernels::PackedSigns' uint64 words in little-endian byte order (the kernels read the
// file's bytes as they are). The reader checks everything a hostile or damaged file could get wrong:
// the format and version, the config (io::config_from_json: field, type, range, memory), that every
// tensor is present with its dtype and shape and nothing else is, padding bits 0, and alpha, beta,
// norms, embedding and lm_head finite; all through io::SafetensorsReader's checks of the container.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "bitgrad/format/safetensors.hpp"
#include "bitgrad/format/zip.hpp"
#include "bitgrad/infer/packed_llama.hpp"
#include "bitgrad/io/config_json.hpp"

namespace bitgrad::infer {

inline constexpr const char* kPackedFormat = "bitgrad.packed_fbi_llm";
inline constexpr const char* kPackedFormatVersion = "1";
inline constexpr const char* kPackedSignLayout =
    "U8 [out, 8*ceil(in/64)]: bit k of byte t of row i is 1 if W[i][8t+k] >= 0 (sign +1), 0 if negative (sign -1); "
    "padding bits past in are 0";

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "the packed file's words are little-endian, as in memory here");

namespace detail {
inline std::string crc32_hex(const std::string& bytes) {
    char hex[9];
    std::snprintf(hex, sizeof hex, "%08x", io::detail::crc32(bytes.data(), bytes.size()));
    return hex;
}
}  // namespace detail

// tokenizer_model: a SentencePiece model's bytes to carry in the file (empty: none).
inline void save_packed(const std::filesystem::path& path, const PackedLlama& model,
                        std::map<std::string, std::string> metadata = {}, const std::string& tokenizer_model = {}) {
    metadata["format"] = kPackedFormat;
    metadata["format_version"] = kPackedFormatVersion;
    metadata["config"] = io::config_to_json(model.config()).dump();
    metadata["sign_layout"] = kPackedSignLayout;
    metadata["tables"] = table_format_name(model.lm_head().format());
    BITGRAD_CHECK(model.embed_tokens().format() == model.lm_head().format(),
                  "save_packed: the embedding and the lm_head must have the same table format");
    // alpha and beta are floats holding fp16 values: written as the fp16 they are.
    std::vector<Tensor<fp16>> halves;
    std::vector<io::SafetensorsBlob> blobs;
    auto add_table = [&](const std::string& name, const TokenTable& t) {
        if (t.format() == TableFormat::Bf16) {
            blobs.push_back(io::safetensors_blob(name, t.bf16_values()));
        } else {
            blobs.push_back(io::safetensors_blob(name, t.int8_values()));
            blobs.push_back(io::safetensors_blob(name + "_scale", t.int8_scales()));
        }
    };
    add_table("model.embed_tokens.weight", model.embed_tokens());
    auto to_half = [&](const Tensor<float>& t) -> const Tensor<fp16>& {
        Tensor<fp16> h(t.shape());
        for (int64_t i = 0; i < t.numel(); ++i) {
            h[i] = to_fp16(t[i]);
            BITGRAD_CHECK(to_float(h[i]) == t[i] || std::isnan(t[i]),
                          "save_packed: alpha/beta value " << t[i] << " is not an fp16 value");
        }
        halves.push_back(std::move(h));
        return halves.back();
    };
    const auto specs = block_linears(model.config());
    halves.reserve(2 * specs.size() * model.layers().size());  // blobs point into halves: no reallocation
    for (std::size_t li = 0; li < model.layers().size(); ++li) {
        const auto& l = model.layers()[li];
        const std::string prefix = block_prefix(int64_t(li));
        blobs.push_back(io::safetensors_blob(prefix + "input_layernorm.weight", l.n1));
        blobs.push_back(io::safetensors_blob(prefix + "post_attention_layernorm.weight", l.n2));
        for (std::size_t i = 0; i < specs.size(); ++i) {
            const std::string name = prefix + specs[i].name;
            const auto& s = l.linears[i].signs;
            blobs.push_back({name + ".weight_signs", "U8", Shape{s.out, 8 * s.words_per_row}, s.bits.data(),
                             uint64_t(s.out * s.words_per_row * 8)});
            blobs.push_back(io::safetensors_blob(name + ".wscale", to_half(l.linears[i].alpha)));
            blobs.push_back(io::safetensors_blob(name + ".wbias", to_half(l.linears[i].beta)));
        }
    }
    blobs.push_back(io::safetensors_blob("model.norm.weight", model.final_norm()));
    add_table("lm_head.weight", model.lm_head());
    if (!tokenizer_model.empty()) {
        metadata["tokenizer"] = "sentencepiece";
        metadata["tokenizer_crc32"] = detail::crc32_hex(tokenizer_model);
        blobs.push_back({"tokenizer.model", "U8", Shape{int64_t(tokenizer_model.size())}, tokenizer_model.data(),
                         uint64_t(tokenizer_model.size())});
    }
    io::save_safetensors_blobs(path, blobs, metadata);
}

namespace detail {
inline float as_float(float v) { return v; }
inline float as_float(bf16 v) { return to_float(v); }
inline float as_float(fp16 v) { return to_float(v); }
template <class T>
void check_finite(const Tensor<T>& t, const std::string& path, const std::string& name) {
    for (int64_t i = 0; i < t.numel(); ++i)
        BITGRAD_CHECK(std::isfinite(as_float(t[i])),
                      path << ": tensor " << name << " has a non-finite value at index " << i);
}
}  // namespace detail

inline PackedLlama load_packed(const std::string& path) {
    const io::SafetensorsReader file(path);
    const auto& meta = file.metadata();
    auto field = [&](const char* key) -> const std::string& {
        const auto it = meta.find(key);
        BITGRAD_CHECK(it != meta.end(),
                      path << ": __metadata__." << key << " is missing (not a bitgrad packed model?)");
        return it->second;
    };
    BITGRAD_CHECK(field("format") == kPackedFormat, path << ": __metadata__.format is \"" << field("format")
                                                         << "\", expected \"" << kPackedFormat << "\"");
    BITGRAD_CHECK(field("format_version") == kPackedFormatVersion,
                  path << ": __metadata__.format_version is \"" << field("format_version")
                       << "\", this bitgrad reads \"" << kPackedFormatVersion << "\"");
    nlohmann::json config_json;
    try {
        config_json = nlohmann::json::parse(field("config"));
    } catch (const nlohmann::json::exception& e) {
        BITGRAD_CHECK(false, path << ": __metadata__.config is not valid JSON: " << e.what());
    }
    const nn::LlamaConfig c = io::config_from_json(config_json, path + " (__metadata__.config)");
    BITGRAD_CHECK(c.binarized,
                  path << ": __metadata__.config describes a full-precision model; a packed file holds an FBI-LLM");

    const auto tables_it = meta.find("tables");
    const TableFormat tables = tables_it == meta.end()
                                   ? TableFormat::Bf16
                                   : parse_table_format(tables_it->second, path + ": __metadata__.tables");

    std::set<std::string> expected;
    auto table = [&](const std::string& name, const Shape& shape) {
        expected.insert(name);
        if (tables == TableFormat::Bf16) {
            Tensor<bf16> t = file.read<bf16>(name, shape);
            detail::check_finite(t, path, name);
            return TokenTable(std::move(t));
        }
        expected.insert(name + "_scale");
        Tensor<float> scale = file.read<float>(name + "_scale", Shape{shape[0]});
        for (int64_t v = 0; v < scale.numel(); ++v)
            BITGRAD_CHECK(std::isfinite(scale[v]) && scale[v] >= 0.f, path << ": tensor " << name << "_scale: row " << v
                                                                           << " has scale " << scale[v]
                                                                           << ", expected a finite value >= 0");
        return TokenTable(file.read<int8_t>(name, shape), std::move(scale));
    };
    auto floats = [&](const std::string& name, const Shape& shape) {
        expected.insert(name);
        Tensor<float> t = file.read<float>(name, shape);
        detail::check_finite(t, path, name);
        return t;
    };
    auto halves = [&](const std::string& name, int64_t n) {
        expected.insert(name);
        const Tensor<fp16> h = file.read<fp16>(name, Shape{n});
        detail::check_finite(h, path, name);
        Tensor<float> t({n});
        for (int64_t i = 0; i < n; ++i) t[i] = to_float(h[i]);
        return t;
    };
    auto linear = [&](const std::string& name, int64_t out, int64_t in) {
        const std::string signs = name + ".weight_signs";
        expected.insert(signs);
        const int64_t wpr = (in + 63) / 64;
        const Tensor<uint8_t> bytes = file.read<uint8_t>(signs, Shape{out, 8 * wpr});
        Tensor<uint64_t> words({out * wpr});
        std::memcpy(words.data(), bytes.data(), std::size_t(bytes.numel()));
        try {
            return PackedFbiLinear(kernels::PackedSigns(out, in, std::move(words)), halves(name + ".wscale", in),
                                   halves(name + ".wbias", in));
        } catch (const Error& e) { BITGRAD_CHECK(false, path << ": " << name << ": " << e.what()); }
        return PackedFbiLinear();
    };

    const int64_t C = c.hidden_size, V = c.vocab_size;
    TokenTable embed = table("model.embed_tokens.weight", Shape{V, C});
    std::vector<PackedLlama::BlockType> layers;
    const auto specs = block_linears(c);
    for (int64_t li = 0; li < c.num_hidden_layers; ++li) {
        const std::string p = block_prefix(li);
        PackedLlama::BlockType b{floats(p + "input_layernorm.weight", Shape{C}),
                                 floats(p + "post_attention_layernorm.weight", Shape{C}),
                                 {}};
        for (std::size_t i = 0; i < specs.size(); ++i)
            b.linears[i] = linear(p + specs[i].name, specs[i].out, specs[i].in);
        layers.push_back(std::move(b));
    }
    Tensor<float> norm = floats("model.norm.weight", Shape{C});
    TokenTable lm_head = table("lm_head.weight", Shape{V, C});
    if (meta.count("tokenizer")) expected.insert("tokenizer.model");  // read by load_packed_tokenizer
    for (const auto& e : file.entries())
        BITGRAD_CHECK(expected.count(e.name), path << ": unexpected tensor " << e.name << " (not part of a packed "
                                                   << c.num_hidden_layers << "-layer model)");
    return PackedLlama(c, std::move(embed), std::move(layers), std::move(norm), std::move(lm_head));
}

// The SentencePiece model a packed file carries (nullopt: it carries none), its size and CRC-32
// checked against the metadata. Whether the bytes are a valid model is SentencePiece's to say
// (data::Tokenizer::from_bytes).
inline std::optional<std::string> load_packed_tokenizer(const std::string& path) {
    const io::SafetensorsReader file(path);
    const auto& meta = file.metadata();
    const io::SafetensorsReader::Entry* e = file.find("tokenizer.model");
    const auto kind = meta.find("tokenizer");
    if (kind == meta.end()) {
        BITGRAD_CHECK(!e, path << ": tensor tokenizer.model without __metadata__.tokenizer");
        return std::nullopt;
    }
    BITGRAD_CHECK(kind->second == "sentencepiece",
                  path << ": __metadata__.tokenizer is \"" << kind->second << "\", expected \"sentencepiece\"");
    BITGRAD_CHECK(e, path << ": __metadata__.tokenizer is set but the tensor tokenizer.model is missing");
    BITGRAD_CHECK(e->dtype == "U8" && e->shape.ndim() == 1, path << ": tensor tokenizer.model: dtype " << e->dtype
                                                                 << ", shape " << e->shape << ", expected U8 [bytes]");
    std::string bytes(reinterpret_cast<const char*>(file.bytes(*e)), std::size_t(e->end - e->begin));
    const auto crc = meta.find("tokenizer_crc32");
    BITGRAD_CHECK(crc != meta.end(), path << ": __metadata__.tokenizer_crc32 is missing");
    BITGRAD_CHECK(crc->second == detail::crc32_hex(bytes), path << ": tokenizer.model has CRC-32 "
                                                                << detail::crc32_hex(bytes) << ", the metadata says "
                                                                << crc->second << " (a damaged file)");
    return bytes;
}

}  // namespace bitgrad::infer
