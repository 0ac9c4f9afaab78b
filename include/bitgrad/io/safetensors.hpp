#pragma once
// safetensors: an 8-byte little-endian header length N, N bytes of JSON
//   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ..., "__metadata__": {str: str}}
// then the tensor bytes (offsets relative to the end of the header). bitgrad writes F32 (and F64
// for double models), and reads them with every check of the format: header size cap (100 MB) and
// bounds, JSON validity, dtype, shape overflow, offsets in range, contiguous, non-overlapping,
// matching prod(shape) * dtype size, no bytes left over, no duplicate names. Nothing is executed.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <set>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "bitgrad/core/tensor.hpp"
#include "bitgrad/io/atomic_file.hpp"
#include "bitgrad/io/json.hpp"
#include "bitgrad/io/mapped_file.hpp"

namespace bitgrad::io {

inline constexpr uint64_t kSafetensorsMaxHeader = 100'000'000;

template <class T>
constexpr const char* safetensors_dtype() {
    if constexpr (std::is_same_v<T, float>) return "F32";
    else if constexpr (std::is_same_v<T, double>) return "F64";
    else static_assert(sizeof(T) == 0, "safetensors: only float and double tensors");
}

template <class T>
void save_safetensors(const std::filesystem::path& path, const std::vector<std::pair<std::string, Tensor<T>>>& tensors,
                      const std::map<std::string, std::string>& metadata = {}) {
    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    if (!metadata.empty()) header["__metadata__"] = metadata;
    uint64_t offset = 0;
    for (auto& [name, t] : tensors) {
        BITGRAD_CHECK(!header.contains(name), "save_safetensors " << path << ": duplicate tensor name " << name);
        const uint64_t bytes = uint64_t(t.numel()) * sizeof(T);
        header[name] = {{"dtype", safetensors_dtype<T>()}, {"shape", t.shape().vec()}, {"data_offsets", {offset, offset + bytes}}};
        offset += bytes;
    }
    std::string text = header.dump();
    while (text.size() % 8) text += ' ';  // the format pads the header with spaces to 8-byte alignment
    write_file_atomic(path, [&](int fd, const std::string& tmp) {
        const uint64_t n = text.size();
        write_all(fd, &n, 8, tmp);
        write_all(fd, text.data(), text.size(), tmp);
        for (auto& [name, t] : tensors) write_all(fd, t.data(), std::size_t(t.numel()) * sizeof(T), tmp);
    });
}

template <class T>
struct SafetensorsFile {
    std::vector<std::pair<std::string, Tensor<T>>> tensors;  // in file order
    std::map<std::string, std::string> metadata;
    std::map<std::string, Tensor<T>> by_name() const { return {tensors.begin(), tensors.end()}; }
};

template <class T>
SafetensorsFile<T> load_safetensors(const std::string& path) {
    MappedFile file(path);
    const uint8_t* d = file.data();
    const uint64_t size = file.size();
    BITGRAD_CHECK(size >= 8, path << ": " << size << " bytes, too short for a safetensors header length");
    uint64_t n;
    std::memcpy(&n, d, 8);
    BITGRAD_CHECK(n <= kSafetensorsMaxHeader, path << ": header length " << n << " exceeds the 100 MB cap (file is " << size << " bytes)");
    BITGRAD_CHECK(n <= size - 8, path << ": header length " << n << " is larger than the file (" << size << " bytes)");
    nlohmann::json header;
    std::set<std::string> seen;
    std::string duplicate;
    auto on_key = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
        if (event == nlohmann::json::parse_event_t::key && depth == 1 && !seen.insert(parsed.template get<std::string>()).second)
            duplicate = parsed.template get<std::string>();
        return detail::json_depth_guard(depth, event, path);
    };
    try {
        header = nlohmann::json::parse(d + 8, d + 8 + n, on_key);
    } catch (const nlohmann::json::exception& e) {
        BITGRAD_CHECK(false, path << ": header is not valid JSON: " << e.what());
    }
    BITGRAD_CHECK(duplicate.empty(), path << ": tensor " << duplicate << " appears twice in the header");
    BITGRAD_CHECK(header.is_object(), path << ": header is not a JSON object");
    const uint64_t data_begin = 8 + n, data_size = size - data_begin;
    SafetensorsFile<T> out;
    struct Entry { std::string name; Shape shape; uint64_t begin, end; };
    std::vector<Entry> entries;
    for (auto& [name, info] : header.items()) {
        if (name == "__metadata__") {
            BITGRAD_CHECK(info.is_object(), path << ": __metadata__ must be an object of strings");
            for (auto& [k, v] : info.items()) {
                BITGRAD_CHECK(v.is_string(), path << ": __metadata__." << k << " must be a string");
                out.metadata[k] = v.template get<std::string>();
            }
            continue;
        }
        BITGRAD_CHECK(info.is_object(), path << ": tensor " << name << ": entry is not an object");
        BITGRAD_CHECK(info.contains("dtype") && info["dtype"].is_string(), path << ": tensor " << name << ": missing dtype");
        const std::string dtype = info["dtype"].template get<std::string>();
        BITGRAD_CHECK(dtype == safetensors_dtype<T>(), path << ": tensor " << name << ": dtype " << dtype << ", expected "
                                                            << safetensors_dtype<T>());
        BITGRAD_CHECK(info.contains("shape") && info["shape"].is_array(), path << ": tensor " << name << ": missing shape");
        BITGRAD_CHECK(info.contains("data_offsets") && info["data_offsets"].is_array() && info["data_offsets"].size() == 2 &&
                          info["data_offsets"][0].is_number_unsigned() && info["data_offsets"][1].is_number_unsigned(),
                      path << ": tensor " << name << ": missing or malformed data_offsets (expected [begin, end])");
        BITGRAD_CHECK(info["shape"].size() <= std::size_t(kMaxDims), path << ": tensor " << name << ": more than " << kMaxDims << " dims");
        // Every extent and the byte count (numel * itemsize) are checked for overflow, zero extents
        // included: [0, 2^63] is as malformed as [2^63].
        Shape shape;
        uint64_t numel = 1, nonzero_numel = 1;
        for (auto& dim : info["shape"]) {
            BITGRAD_CHECK(dim.is_number_unsigned(), path << ": tensor " << name << ": shape entries must be non-negative integers, got "
                                                        << dim.dump());
            const uint64_t v = dim.template get<uint64_t>();
            BITGRAD_CHECK(v <= (uint64_t(1) << 62) && (v == 0 || nonzero_numel <= (uint64_t(1) << 62) / v),
                          path << ": tensor " << name << ": shape " << info["shape"].dump() << " has more than 2^62 elements");
            if (v != 0) nonzero_numel *= v;
            numel *= v;
            shape.push_back(int64_t(v));
        }
        BITGRAD_CHECK(nonzero_numel <= (uint64_t(1) << 62) / sizeof(T),
                      path << ": tensor " << name << ": shape " << shape << " needs more than 2^62 bytes");
        const uint64_t begin = info["data_offsets"][0].template get<uint64_t>(), end = info["data_offsets"][1].template get<uint64_t>();
        BITGRAD_CHECK(begin <= end && end <= data_size, path << ": tensor " << name << ": data_offsets [" << begin << ", " << end
                                                            << "] outside the " << data_size << "-byte data section");
        BITGRAD_CHECK(end - begin == numel * sizeof(T), path << ": tensor " << name << ": " << end - begin << " bytes for shape "
                                                            << shape << ", expected " << numel * sizeof(T));
        entries.push_back({name, shape, begin, end});
    }
    std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.begin < b.begin; });
    uint64_t expect = 0;
    for (auto& e : entries) {
        BITGRAD_CHECK(e.begin == expect, path << ": tensor " << e.name << " starts at byte " << e.begin << ", expected " << expect
                                              << " (tensors overlap or leave a hole)");
        expect = e.end;
    }
    BITGRAD_CHECK(expect == data_size, path << ": " << data_size - expect << " bytes left over after the last tensor");
    for (auto& e : entries) {
        Tensor<T> t(e.shape);
        if (e.end > e.begin) std::memcpy(t.data(), d + data_begin + e.begin, e.end - e.begin);
        out.tensors.push_back({e.name, t});
    }
    return out;
}

}  // namespace bitgrad::io
