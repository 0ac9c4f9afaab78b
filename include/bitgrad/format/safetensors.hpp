#pragma once
// safetensors: an 8-byte little-endian header length N, N bytes of JSON
//   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ..., "__metadata__": {str: str}}
// then the tensor bytes (offsets relative to the end of the header).
//
// Two layers:
//   SafetensorsReader   maps a file and checks every rule of the format for any dtype it knows
//                       (F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL): header size cap (100 MB) and
//                       bounds, JSON validity, dtype, shape overflow, offsets in range, contiguous,
//                       non-overlapping, matching prod(shape) * dtype size, no bytes left over, no
//                       duplicate names. Tensors are then read by name with their dtype and shape
//                       checked. Nothing is executed.
//   save_safetensors_blobs  writes tensors of any dtype from raw bytes (atomically).
// load_safetensors<T> / save_safetensors<T> are the typed whole-file forms bitgrad's checkpoints use
// (F32, F64).
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "bitgrad/core/atomic_file.hpp"
#include "bitgrad/core/bf16.hpp"
#include "bitgrad/core/fp16.hpp"
#include "bitgrad/core/json.hpp"
#include "bitgrad/core/mapped_file.hpp"
#include "bitgrad/core/tensor.hpp"

namespace bitgrad::io {

inline constexpr uint64_t kSafetensorsMaxHeader = 100'000'000;

// Bytes per element of a safetensors dtype, 0 for a dtype bitgrad does not know.
inline uint64_t safetensors_dtype_size(const std::string& dtype) {
    static const std::map<std::string, uint64_t> sizes = {{"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8},
                                                          {"I32", 4}, {"I16", 2}, {"I8", 1},  {"U8", 1},   {"BOOL", 1}};
    const auto it = sizes.find(dtype);
    return it == sizes.end() ? 0 : it->second;
}

template <class T>
constexpr const char* safetensors_dtype() {
    if constexpr (std::is_same_v<T, float>)
        return "F32";
    else if constexpr (std::is_same_v<T, double>)
        return "F64";
    else if constexpr (std::is_same_v<T, fp16>)
        return "F16";
    else if constexpr (std::is_same_v<T, bf16>)
        return "BF16";
    else if constexpr (std::is_same_v<T, uint8_t>)
        return "U8";
    else if constexpr (std::is_same_v<T, int8_t>)
        return "I8";
    else if constexpr (std::is_same_v<T, int32_t>)
        return "I32";
    else
        static_assert(sizeof(T) == 0, "safetensors: no dtype for this element type");
}

// One tensor to write: its bytes are prod(shape) * safetensors_dtype_size(dtype), little-endian.
struct SafetensorsBlob {
    std::string name, dtype;
    Shape shape;
    const void* data = nullptr;
    uint64_t bytes = 0;
};

template <class T>
SafetensorsBlob safetensors_blob(std::string name, const Tensor<T>& t) {
    return {std::move(name), safetensors_dtype<T>(), t.shape(), t.data(), uint64_t(t.numel()) * sizeof(T)};
}

inline void save_safetensors_blobs(const std::filesystem::path& path, const std::vector<SafetensorsBlob>& tensors,
                                   const std::map<std::string, std::string>& metadata = {}) {
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!metadata.empty()) header["__metadata__"] = metadata;
    uint64_t offset = 0;
    for (const auto& t : tensors) {
        BITGRAD_CHECK(!header.contains(t.name), "save_safetensors " << path << ": duplicate tensor name " << t.name);
        const uint64_t item = safetensors_dtype_size(t.dtype);
        BITGRAD_CHECK(item > 0, "save_safetensors " << path << ": tensor " << t.name << ": unknown dtype " << t.dtype);
        BITGRAD_CHECK(t.bytes == uint64_t(t.shape.numel()) * item,
                      "save_safetensors " << path << ": tensor " << t.name << ": " << t.bytes << " bytes for shape "
                                          << t.shape << " of " << t.dtype);
        header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape.vec()}, {"data_offsets", {offset, offset + t.bytes}}};
        offset += t.bytes;
    }
    std::string text = header.dump();
    while (text.size() % 8) text += ' ';  // the format pads the header with spaces to 8-byte alignment
    write_file_atomic(path, [&](int fd, const std::string& tmp) {
        const uint64_t n = text.size();
        write_all(fd, &n, 8, tmp);
        write_all(fd, text.data(), text.size(), tmp);
        for (const auto& t : tensors) write_all(fd, t.data, std::size_t(t.bytes), tmp);
    });
}

template <class T>
void save_safetensors(const std::filesystem::path& path, const std::vector<std::pair<std::string, Tensor<T>>>& tensors,
                      const std::map<std::string, std::string>& metadata = {}) {
    std::vector<SafetensorsBlob> blobs;
    for (auto& [name, t] : tensors) blobs.push_back(safetensors_blob(name, t));
    save_safetensors_blobs(path, blobs, metadata);
}

// A validated, memory-mapped safetensors file.
class SafetensorsReader {
public:
    struct Entry {
        std::string name, dtype;
        Shape shape;
        uint64_t begin = 0, end = 0;  // within the data section
    };

    // only_dtype: when given, any other dtype is refused while the header is read (the typed loaders).
    explicit SafetensorsReader(const std::string& path, const char* only_dtype = nullptr);

    const std::string& path() const { return file_->path(); }
    const std::map<std::string, std::string>& metadata() const { return metadata_; }
    const std::vector<Entry>& entries() const { return entries_; }  // in file order
    const Entry* find(const std::string& name) const {
        for (const auto& e : entries_)
            if (e.name == name) return &e;
        return nullptr;
    }
    const Entry& at(const std::string& name) const {
        const Entry* e = find(name);
        BITGRAD_CHECK(e, path() << ": tensor " << name << " is missing");
        return *e;
    }
    const uint8_t* bytes(const Entry& e) const { return file_->data() + data_begin_ + e.begin; }

    // The tensor's values, its dtype checked against T's (and its shape against `expected`, if given).
    template <class T>
    Tensor<T> read(const std::string& name, const Shape* expected = nullptr) const {
        const Entry& e = at(name);
        BITGRAD_CHECK(e.dtype == safetensors_dtype<T>(), path() << ": tensor " << name << ": dtype " << e.dtype
                                                                << ", expected " << safetensors_dtype<T>());
        if (expected)
            BITGRAD_CHECK(e.shape == *expected,
                          path() << ": tensor " << name << ": shape " << e.shape << ", expected " << *expected);
        Tensor<T> t(e.shape);
        if (e.end > e.begin) std::memcpy(t.data(), bytes(e), e.end - e.begin);
        return t;
    }
    template <class T>
    Tensor<T> read(const std::string& name, const Shape& expected) const {
        return read<T>(name, &expected);
    }

private:
    std::shared_ptr<MappedFile> file_;
    uint64_t data_begin_ = 0;
    std::vector<Entry> entries_;
    std::map<std::string, std::string> metadata_;
};

inline SafetensorsReader::SafetensorsReader(const std::string& path, const char* only_dtype)
    : file_(std::make_shared<MappedFile>(path)) {
    const uint8_t* d = file_->data();
    const uint64_t size = file_->size();
    BITGRAD_CHECK(size >= 8, path << ": " << size << " bytes, too short for a safetensors header length");
    uint64_t n;
    std::memcpy(&n, d, 8);
    BITGRAD_CHECK(n <= kSafetensorsMaxHeader,
                  path << ": header length " << n << " exceeds the 100 MB cap (file is " << size << " bytes)");
    BITGRAD_CHECK(n <= size - 8, path << ": header length " << n << " is larger than the file (" << size << " bytes)");
    nlohmann::json header;
    std::set<std::string> seen;
    std::string duplicate;
    auto on_key = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
        if (event == nlohmann::json::parse_event_t::key && depth == 1 &&
            !seen.insert(parsed.template get<std::string>()).second)
            duplicate = parsed.template get<std::string>();
        return bitgrad::detail::json_depth_guard(depth, event, path);
    };
    try {
        header = nlohmann::json::parse(d + 8, d + 8 + n, on_key);
    } catch (const nlohmann::json::exception& e) {
        BITGRAD_CHECK(false, path << ": header is not valid JSON: " << e.what());
    }
    BITGRAD_CHECK(duplicate.empty(), path << ": tensor " << duplicate << " appears twice in the header");
    BITGRAD_CHECK(header.is_object(), path << ": header is not a JSON object");
    data_begin_ = 8 + n;
    const uint64_t data_size = size - data_begin_;
    for (auto& [name, info] : header.items()) {
        if (name == "__metadata__") {
            BITGRAD_CHECK(info.is_object(), path << ": __metadata__ must be an object of strings");
            for (auto& [k, v] : info.items()) {
                BITGRAD_CHECK(v.is_string(), path << ": __metadata__." << k << " must be a string");
                metadata_[k] = v.template get<std::string>();
            }
            continue;
        }
        BITGRAD_CHECK(info.is_object(), path << ": tensor " << name << ": entry is not an object");
        BITGRAD_CHECK(info.contains("dtype") && info["dtype"].is_string(),
                      path << ": tensor " << name << ": missing dtype");
        const std::string dtype = info["dtype"].template get<std::string>();
        if (only_dtype)
            BITGRAD_CHECK(dtype == only_dtype,
                          path << ": tensor " << name << ": dtype " << dtype << ", expected " << only_dtype);
        const uint64_t item = safetensors_dtype_size(dtype);
        BITGRAD_CHECK(item > 0, path << ": tensor " << name << ": unknown dtype " << dtype
                                     << " (expected one of F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL)");
        BITGRAD_CHECK(info.contains("shape") && info["shape"].is_array(),
                      path << ": tensor " << name << ": missing shape");
        BITGRAD_CHECK(info.contains("data_offsets") && info["data_offsets"].is_array() &&
                          info["data_offsets"].size() == 2 && info["data_offsets"][0].is_number_unsigned() &&
                          info["data_offsets"][1].is_number_unsigned(),
                      path << ": tensor " << name << ": missing or malformed data_offsets (expected [begin, end])");
        BITGRAD_CHECK(info["shape"].size() <= std::size_t(kMaxDims),
                      path << ": tensor " << name << ": more than " << kMaxDims << " dims");
        // Every extent and the byte count (numel * itemsize) are checked for overflow, zero extents
        // included: [0, 2^63] is as malformed as [2^63].
        Shape shape;
        uint64_t numel = 1, nonzero_numel = 1;
        for (auto& dim : info["shape"]) {
            BITGRAD_CHECK(dim.is_number_unsigned(), path << ": tensor " << name
                                                         << ": shape entries must be non-negative integers, got "
                                                         << dim.dump());
            const uint64_t v = dim.template get<uint64_t>();
            BITGRAD_CHECK(
                v <= (uint64_t(1) << 62) && (v == 0 || nonzero_numel <= (uint64_t(1) << 62) / v),
                path << ": tensor " << name << ": shape " << info["shape"].dump() << " has more than 2^62 elements");
            if (v != 0) nonzero_numel *= v;
            numel *= v;
            shape.push_back(int64_t(v));
        }
        BITGRAD_CHECK(nonzero_numel <= (uint64_t(1) << 62) / item,
                      path << ": tensor " << name << ": shape " << shape << " needs more than 2^62 bytes");
        const uint64_t begin = info["data_offsets"][0].template get<uint64_t>(),
                       end = info["data_offsets"][1].template get<uint64_t>();
        BITGRAD_CHECK(begin <= end && end <= data_size, path << ": tensor " << name << ": data_offsets [" << begin
                                                             << ", " << end << "] outside the " << data_size
                                                             << "-byte data section");
        BITGRAD_CHECK(end - begin == numel * item, path << ": tensor " << name << ": " << end - begin
                                                        << " bytes for shape " << shape << ", expected "
                                                        << numel * item);
        entries_.push_back({name, dtype, shape, begin, end});
    }
    std::vector<const Entry*> by_offset;
    for (const auto& e : entries_) by_offset.push_back(&e);
    std::sort(by_offset.begin(), by_offset.end(), [](const Entry* a, const Entry* b) { return a->begin < b->begin; });
    uint64_t expect = 0;
    for (const Entry* e : by_offset) {
        BITGRAD_CHECK(e->begin == expect, path << ": tensor " << e->name << " starts at byte " << e->begin
                                               << ", expected " << expect << " (tensors overlap or leave a hole)");
        expect = e->end;
    }
    BITGRAD_CHECK(expect == data_size, path << ": " << data_size - expect << " bytes left over after the last tensor");
    std::stable_sort(entries_.begin(), entries_.end(),
                     [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
}

template <class T>
struct SafetensorsFile {
    std::vector<std::pair<std::string, Tensor<T>>> tensors;  // in file order
    std::map<std::string, std::string> metadata;
    std::map<std::string, Tensor<T>> by_name() const { return {tensors.begin(), tensors.end()}; }
};

// The whole file, every tensor of dtype T (F32 or F64 for bitgrad's own files).
template <class T>
SafetensorsFile<T> load_safetensors(const std::string& path) {
    const SafetensorsReader reader(path, safetensors_dtype<T>());
    SafetensorsFile<T> out;
    out.metadata = reader.metadata();
    for (const auto& e : reader.entries()) out.tensors.push_back({e.name, reader.read<T>(e.name)});
    return out;
}

}  // namespace bitgrad::io
