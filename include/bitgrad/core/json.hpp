#pragma once
// JSON files bitgrad reads (config.json, trainer_state.json, data.json, safetensors headers):
// parsing with a nesting limit and a size cap, and typed field access whose errors name the file,
// the field, the expected type and what was found. No nlohmann exception escapes from here.
//
//   auto j = load_json(dir / "trainer_state.json");
//   int64_t step = json_field<int64_t>(j, "step", where);          // required
//   double eps = json_field_or<double>(j, "rms_norm_eps", 1e-6, where);
#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "bitgrad/core/error.hpp"

namespace bitgrad {

// Deeper nesting than any file of ours needs (config.json: 2) is refused: serde_json's limit is 128.
inline constexpr int kMaxJsonDepth = 64;
inline constexpr std::uintmax_t kMaxJsonFileBytes = 256u << 20;

namespace detail {
// A parser callback that refuses nesting deeper than kMaxJsonDepth (before the deep part is built).
inline bool json_depth_guard(int depth, nlohmann::json::parse_event_t event, const std::string& where) {
    using E = nlohmann::json::parse_event_t;
    BITGRAD_CHECK(!((event == E::object_start || event == E::array_start) && depth >= kMaxJsonDepth),
                  where << ": JSON nested deeper than " << kMaxJsonDepth << " levels");
    return true;
}

template <class V>
const char* json_type_name() {
    if constexpr (std::is_same_v<V, bool>)
        return "true or false";
    else if constexpr (std::is_same_v<V, std::string>)
        return "a string";
    else if constexpr (std::is_integral_v<V> && std::is_unsigned_v<V>)
        return "a non-negative integer";
    else if constexpr (std::is_integral_v<V>)
        return "an integer";
    else if constexpr (std::is_floating_point_v<V>)
        return "a number";
    else
        return "an array";
}

// What a value is, for error messages. Containers are described, not dumped: dump() recurses once
// per nesting level, and a caller may hand us a document that was not depth-limited.
inline std::string json_excerpt(const nlohmann::json& v) {
    if (v.is_array()) return "an array of " + std::to_string(v.size()) + " elements";
    if (v.is_object()) return "an object of " + std::to_string(v.size()) + " fields";
    std::string s = v.dump();
    return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

// Converts v to V if its JSON type fits exactly (no string -> number, no float -> int, in range).
template <class V>
bool json_convert(const nlohmann::json& v, V& out) {
    if constexpr (std::is_same_v<V, bool>) {
        if (!v.is_boolean()) return false;
        out = v.get<bool>();
    } else if constexpr (std::is_same_v<V, std::string>) {
        if (!v.is_string()) return false;
        out = v.get<std::string>();
    } else if constexpr (std::is_integral_v<V>) {
        if (!v.is_number_integer()) return false;
        if (v.is_number_unsigned()) {
            const uint64_t u = v.get<uint64_t>();
            if (u > uint64_t(std::numeric_limits<V>::max())) return false;
            out = V(u);
        } else {
            const int64_t i = v.get<int64_t>();
            if (i < int64_t(std::numeric_limits<V>::min()) ||
                (i > 0 && uint64_t(i) > uint64_t(std::numeric_limits<V>::max())))
                return false;
            out = V(i);
        }
    } else if constexpr (std::is_floating_point_v<V>) {
        if (!v.is_number()) return false;
        out = v.get<V>();
    } else {  // std::vector<E> or std::array<E, N>
        if (!v.is_array()) return false;
        using E = typename V::value_type;
        if constexpr (std::is_same_v<V, std::vector<E>>)
            out.resize(v.size());
        else if (v.size() != out.size())
            return false;
        for (std::size_t i = 0; i < v.size(); ++i)
            if (!json_convert(v[i], out[i])) return false;
    }
    return true;
}
}  // namespace detail

// Parses text; errors name `where` (the file) and what is wrong.
inline nlohmann::json parse_json(std::string_view text, const std::string& where) {
    try {
        return nlohmann::json::parse(text.begin(), text.end(),
                                     [&](int depth, nlohmann::json::parse_event_t e, nlohmann::json&) {
                                         return detail::json_depth_guard(depth, e, where);
                                     });
    } catch (const nlohmann::json::exception& e) { BITGRAD_CHECK(false, where << ": not valid JSON: " << e.what()); }
    return {};
}

inline nlohmann::json load_json(const std::filesystem::path& path) {
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    BITGRAD_CHECK(!ec, "cannot read " << path.string() << ": " << ec.message());
    BITGRAD_CHECK(size <= kMaxJsonFileBytes, path.string() << ": " << size << " bytes, larger than the "
                                                           << kMaxJsonFileBytes << "-byte limit for a JSON file");
    std::ifstream f(path, std::ios::binary);
    BITGRAD_CHECK(f, "cannot open " << path.string());
    std::string text(std::size_t(size), '\0');
    f.read(text.data(), std::streamsize(size));
    BITGRAD_CHECK(f.gcount() == std::streamsize(size), "cannot read " << path.string());
    return parse_json(text, path.string());
}

// The value of a required field, of type V (bool, integers, floating point, std::string, or a
// std::vector / std::array of those); throws naming where, the field and the expected type.
template <class V>
V json_field(const nlohmann::json& j, const char* key, const std::string& where) {
    BITGRAD_CHECK(j.is_object(), where << ": expected a JSON object, got " << detail::json_excerpt(j));
    auto it = j.find(key);
    BITGRAD_CHECK(it != j.end(), where << ": missing field \"" << key << "\"");
    V out{};
    BITGRAD_CHECK(detail::json_convert(*it, out), where << ": field \"" << key << "\" must be "
                                                        << detail::json_type_name<V>() << " (in range), got "
                                                        << detail::json_excerpt(*it));
    return out;
}

// The value of an optional field, or fallback when it is absent (a present field must be well typed).
template <class V>
V json_field_or(const nlohmann::json& j, const char* key, V fallback, const std::string& where) {
    return j.is_object() && j.contains(key) ? json_field<V>(j, key, where) : fallback;
}

}  // namespace bitgrad
