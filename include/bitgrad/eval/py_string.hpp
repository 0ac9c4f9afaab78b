#pragma once
// Python's str semantics on UTF-8 bytes, as far as lm-evaluation-harness's task preprocessing uses
// them (str.strip / lstrip / rstrip and their whitespace set, replace, capitalize, len), so the
// multiple-choice converters produce byte for byte the strings lm-eval builds in Python.
#include <cstdint>
#include <string>
#include <utility>

namespace bitgrad::eval {

namespace detail {
// The code point starting at s[i] and its length in bytes (a malformed byte reads as itself, length 1).
inline std::pair<uint32_t, std::size_t> utf8_at(const std::string& s, std::size_t i) {
    const auto b = [&](std::size_t k) { return uint32_t(uint8_t(s[k])); };
    const uint32_t c = b(i);
    const std::size_t n = c < 0x80 ? 1 : c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 && c < 0xE0 ? 2 : 0;
    if (n == 0 || i + n > s.size()) return {c, 1};
    uint32_t cp = n == 1 ? c : c & (0xFFu >> (n + 1));
    for (std::size_t k = 1; k < n; ++k) {
        if ((b(i + k) & 0xC0) != 0x80) return {c, 1};
        cp = (cp << 6) | (b(i + k) & 0x3F);
    }
    return {cp, n};
}
// The start of the code point that ends at byte `end` (> 0).
inline std::size_t utf8_prev(const std::string& s, std::size_t end) {
    std::size_t start = end - 1;
    while (start > 0 && end - start < 4 && (uint8_t(s[start]) & 0xC0) == 0x80) --start;
    return utf8_at(s, start).second == end - start ? start : end - 1;
}
inline void utf8_append(std::string& s, uint32_t cp) {
    if (cp < 0x80) {
        s += char(cp);
    } else if (cp < 0x800) {
        s += char(0xC0 | (cp >> 6));
        s += char(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        s += char(0xE0 | (cp >> 12));
        s += char(0x80 | ((cp >> 6) & 0x3F));
        s += char(0x80 | (cp & 0x3F));
    } else {
        s += char(0xF0 | (cp >> 18));
        s += char(0x80 | ((cp >> 12) & 0x3F));
        s += char(0x80 | ((cp >> 6) & 0x3F));
        s += char(0x80 | (cp & 0x3F));
    }
}
// str.isspace() of one character (Python 3: Unicode White_Space plus the separators 0x1C..0x1F).
inline bool py_isspace(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}
// Byte offsets of str.lstrip() and str.rstrip() (no argument).
inline std::size_t py_lstrip_begin(const std::string& s) {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto [cp, n] = utf8_at(s, i);
        if (!py_isspace(cp)) break;
        i += n;
    }
    return i;
}
inline std::size_t py_rstrip_end(const std::string& s) {
    std::size_t end = s.size();
    while (end > 0) {
        const std::size_t start = utf8_prev(s, end);
        if (!py_isspace(utf8_at(s, start).first)) break;
        end = start;
    }
    return end;
}
inline std::string py_strip(const std::string& s) {
    const std::size_t b = py_lstrip_begin(s), e = py_rstrip_end(s);
    return b < e ? s.substr(b, e - b) : std::string();
}
// str.replace(from, to): left to right, non-overlapping, one pass.
inline std::string py_replace(const std::string& s, const std::string& from, const std::string& to) {
    std::string out;
    std::size_t pos = 0;
    for (std::size_t hit; (hit = s.find(from, pos)) != std::string::npos; pos = hit + from.size())
        out.append(s, pos, hit - pos).append(to);
    return out.append(s, pos, std::string::npos);
}
// Python's case mappings for U+0000..U+017F, the Greek letters U+0386..U+03CE and Cyrillic
// U+0400..U+045F (checked against Python 3.11); other characters are left as they are, ΐ and ΰ are
// not expanded, and lower() of a final sigma gives σ, not ς.
inline bool latin_ext_a_upper(uint32_t c) {  // the upper case letter of a pair in U+0100..U+017F
    const bool even = c % 2 == 0;
    return (c >= 0x100 && c <= 0x12F && even) || (c >= 0x132 && c <= 0x137 && even) ||
           (c >= 0x139 && c <= 0x148 && !even) || (c >= 0x14A && c <= 0x177 && even) ||
           (c >= 0x179 && c <= 0x17E && !even);
}
inline uint32_t py_lower(uint32_t c) {
    if ((c >= 'A' && c <= 'Z') || (c >= 0xC0 && c <= 0xDE && c != 0xD7)) return c + 32;
    if (latin_ext_a_upper(c)) return c + 1;
    if (c == 0x178) return 0xFF;
    if (c == 0x386) return 0x3AC;
    if (c >= 0x388 && c <= 0x38A) return c + 37;
    if (c == 0x38C) return 0x3CC;
    if (c == 0x38E || c == 0x38F) return c + 63;
    if ((c >= 0x391 && c <= 0x3AB && c != 0x3A2)) return c + 32;
    if (c >= 0x400 && c <= 0x40F) return c + 80;
    if (c >= 0x410 && c <= 0x42F) return c + 32;
    return c;
}
inline uint32_t py_title(uint32_t c) {
    if ((c >= 'a' && c <= 'z') || (c >= 0xE0 && c <= 0xFE && c != 0xF7)) return c - 32;
    if (c == 0xB5) return 0x39C;
    if (c == 0xFF) return 0x178;
    if (c == 0x131) return 'I';
    if (c == 0x17F) return 'S';
    if (c >= 0x101 && c <= 0x17E && latin_ext_a_upper(c - 1)) return c - 1;
    if (c == 0x3AC) return 0x386;
    if (c >= 0x3AD && c <= 0x3AF) return c - 37;
    if (c == 0x3CC) return 0x38C;
    if (c == 0x3CD || c == 0x3CE) return c - 63;
    if (c == 0x3C2) return 0x3A3;
    if (c >= 0x3B1 && c <= 0x3CB) return c - 32;
    if (c >= 0x430 && c <= 0x44F) return c - 32;
    if (c >= 0x450 && c <= 0x45F) return c - 80;
    return c;
}
// str.capitalize(): the first character in title case, the rest in lower case.
inline std::string py_capitalize(const std::string& s) {
    std::string out;
    for (std::size_t i = 0; i < s.size();) {
        const auto [cp, n] = utf8_at(s, i);
        if (n == 1 && cp >= 0x80) {
            out += s[i];  // a malformed byte passes through
        } else if (i == 0 && cp == 0xDF) {
            out += "Ss";
        } else if (i == 0 && cp == 0x149) {
            out += "\xCA\xBCN";  // ŉ.title() is U+02BC N
        } else if (i > 0 && cp == 0x130) {
            out += "i\xCC\x87";  // İ.lower() is i + U+0307
        } else {
            utf8_append(out, i == 0 ? py_title(cp) : py_lower(cp));
        }
        i += n;
    }
    return out;
}
}  // namespace detail

// Python's len(): characters (code points) of a UTF-8 string.
inline int64_t utf8_length(const std::string& s) {
    int64_t n = 0;
    for (char c : s) n += (uint8_t(c) & 0xC0) != 0x80;
    return n;
}

}  // namespace bitgrad::eval
