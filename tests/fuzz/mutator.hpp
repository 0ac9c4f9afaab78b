#pragma once
// The mutations of mutation_driver.cpp: seeded, deterministic, and aware of the formats a little:
// integer boundary values for binary headers, JSON-aware edits for JSON text (also for JSON behind
// an 8-byte length, as in safetensors). mutate() is the entry point.
#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace fuzz::mutator {

using Bytes = std::vector<uint8_t>;

// splitmix64: tiny, and the same stream on every platform (std distributions are not).
class Rand {
public:
    explicit Rand(uint64_t seed) : s_(seed) {}
    uint64_t next() {
        uint64_t z = (s_ += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    std::size_t below(std::size_t n) { return n ? std::size_t(next() % n) : 0; }
    bool one_in(std::size_t n) { return below(n) == 0; }
    template <class T, std::size_t N>
    const T& pick(const T (&a)[N]) {
        return a[below(N)];
    }

private:
    uint64_t s_;
};

// ---- binary mutations ----
inline constexpr uint64_t kBoundary[] = {0,
                                         1,
                                         2,
                                         3,
                                         4,
                                         7,
                                         8,
                                         16,
                                         0x7f,
                                         0x80,
                                         0xff,
                                         0x100,
                                         0x7fff,
                                         0x8000,
                                         0xffff,
                                         0x10000,
                                         0x7fffffff,
                                         0x80000000,
                                         0xffffffff,
                                         1ull << 32,
                                         (1ull << 32) + 1,
                                         1ull << 53,
                                         1ull << 61,
                                         1ull << 62,
                                         (1ull << 62) + 1,
                                         0x7fffffffffffffff,
                                         1ull << 63,
                                         ~0ull - 7,
                                         ~0ull};
inline constexpr uint8_t kInterestingBytes[] = {0,   0xff, 0x7f, 0x80, 1,   0xfe, 0x81, ' ', '"',
                                                '0', '9',  '[',  '{',  ']', '}',  ',',  ':', '\\'};

inline void put_le(uint8_t* p, uint64_t v, std::size_t width) {
    for (std::size_t i = 0; i < width; ++i) p[i] = uint8_t(v >> (8 * i));
}
inline uint64_t get_le(const uint8_t* p, std::size_t width) {
    uint64_t v = 0;
    for (std::size_t i = 0; i < width; ++i) v |= uint64_t(p[i]) << (8 * i);
    return v;
}

// A 1-, 2-, 4- or 8-byte little-endian field set to a boundary value, a value derived from the
// input's size (lengths and counts that almost fit), or nudged by a small amount.
inline void overwrite_integer(Bytes& b, Rand& r) {
    const std::size_t widths[] = {1, 2, 4, 8, 8, 8};
    const std::size_t w = r.pick(widths);
    if (b.size() < w) return;
    const std::size_t pos = r.one_in(2) ? r.below(b.size() / w) * w : r.below(b.size() - w + 1);
    uint64_t v;
    switch (r.below(4)) {
        case 0:
        case 1: v = r.pick(kBoundary); break;
        case 2: {
            const uint64_t n = b.size();
            const uint64_t sizes[] = {n, n - 8, n - 8 - pos, (n - 32) / 2, (n - 32) / 4, n - pos, n + 1, n * 2};
            v = r.pick(sizes) + uint64_t(int64_t(r.below(5)) - 2);
            break;
        }
        default: v = get_le(&b[pos], w) + uint64_t(int64_t(r.below(33)) - 16); break;
    }
    put_le(&b[pos], v, w);
}

inline void mutate_binary(Bytes& b, const std::vector<Bytes>& corpus, Rand& r, std::size_t max_len) {
    const std::size_t n = b.size();
    switch (r.below(11)) {
        case 0:  // bit flips
            if (n)
                for (std::size_t k = 1 + r.below(4); k; --k) b[r.below(n)] ^= uint8_t(1u << r.below(8));
            break;
        case 1:  // interesting byte values
            if (n)
                for (std::size_t k = 1 + r.below(3); k; --k) b[r.below(n)] = r.pick(kInterestingBytes);
            break;
        case 2:
            if (n) b[r.below(n)] = uint8_t(r.next());
            break;
        case 3:
        case 4: overwrite_integer(b, r); break;
        case 5: {  // insert random bytes or a run of one byte
            const std::size_t len = 1 + r.below(r.one_in(4) ? 256 : 8), pos = r.below(n + 1);
            Bytes ins(len, r.pick(kInterestingBytes));
            if (r.one_in(2))
                for (auto& c : ins) c = uint8_t(r.next());
            b.insert(b.begin() + std::ptrdiff_t(pos), ins.begin(), ins.end());
            break;
        }
        case 6:  // delete a range
            if (n) {
                const std::size_t pos = r.below(n),
                                  len = 1 + r.below(std::min<std::size_t>(n - pos, r.one_in(4) ? n : 16));
                b.erase(b.begin() + std::ptrdiff_t(pos), b.begin() + std::ptrdiff_t(pos + len));
            }
            break;
        case 7:  // duplicate a range somewhere else
            if (n) {
                const std::size_t from = r.below(n), len = 1 + r.below(std::min<std::size_t>(n - from, 64)),
                                  to = r.below(n + 1);
                const Bytes piece(b.begin() + std::ptrdiff_t(from), b.begin() + std::ptrdiff_t(from + len));
                b.insert(b.begin() + std::ptrdiff_t(to), piece.begin(), piece.end());
            }
            break;
        case 8: {  // splice: our head, another entry's tail
            const Bytes& other = corpus[r.below(corpus.size())];
            const std::size_t cut = r.below(n + 1), from = r.below(other.size() + 1);
            b.resize(cut);
            b.insert(b.end(), other.begin() + std::ptrdiff_t(from), other.end());
            break;
        }
        case 9:  // truncate
            b.resize(r.below(n + 1));
            break;
        default:  // append
            for (std::size_t k = 1 + r.below(16); k; --k) b.push_back(r.one_in(2) ? uint8_t(r.next()) : 0);
            break;
    }
    if (b.size() > max_len) b.resize(max_len);
}

// ---- JSON mutations ----
struct Token {
    std::size_t begin, end;
    char kind;  // 's' string, 'n' number, 'l' literal, 'c' container
    bool key;
};

// A forgiving scanner: finds strings, numbers, literals and bracketed values even in broken JSON.
inline std::vector<Token> scan_json(const std::string& s) {
    std::vector<Token> out;
    std::vector<std::size_t> open;
    for (std::size_t i = 0; i < s.size();) {
        const char c = s[i];
        if (c == '"') {
            std::size_t j = i + 1;
            while (j < s.size() && s[j] != '"') j += s[j] == '\\' ? 2 : 1;
            j = std::min(j + 1, s.size());
            std::size_t k = j;
            while (k < s.size() && std::isspace(uint8_t(s[k]))) ++k;
            out.push_back({i, j, 's', k < s.size() && s[k] == ':'});
            i = j;
        } else if (c == '-' || std::isdigit(uint8_t(c))) {
            std::size_t j = i + 1;
            while (j < s.size() && std::strchr("0123456789+-.eE", s[j]) && s[j]) ++j;
            out.push_back({i, j, 'n', false});
            i = j;
        } else if (std::isalpha(uint8_t(c))) {
            std::size_t j = i + 1;
            while (j < s.size() && std::isalpha(uint8_t(s[j]))) ++j;
            out.push_back({i, j, 'l', false});
            i = j;
        } else if (c == '[' || c == '{') {
            open.push_back(i++);
        } else if ((c == ']' || c == '}') && !open.empty()) {
            out.push_back({open.back(), i + 1, 'c', false});
            open.pop_back();
            ++i;
        } else {
            ++i;
        }
    }
    return out;
}

// The value after a key token, if the scanner found one.
inline const Token* value_of(const std::string& s, const std::vector<Token>& toks, const Token& key) {
    std::size_t p = key.end;
    while (p < s.size() && (std::isspace(uint8_t(s[p])) || s[p] == ':')) ++p;
    for (const Token& t : toks)
        if (t.begin == p && !t.key) return &t;
    return nullptr;
}

inline constexpr const char* kNumbers[] = {"0",
                                           "-0",
                                           "1",
                                           "-1",
                                           "2",
                                           "3",
                                           "7",
                                           "8",
                                           "255",
                                           "65536",
                                           "2147483647",
                                           "2147483648",
                                           "-2147483649",
                                           "4294967295",
                                           "4294967296",
                                           "9007199254740993",
                                           "4611686018427387904",
                                           "2305843009213693952",
                                           "9223372036854775807",
                                           "9223372036854775808",
                                           "-9223372036854775808",
                                           "18446744073709551615",
                                           "18446744073709551616",
                                           "123456789012345678901234567890",
                                           "0.5",
                                           "1.0",
                                           "-1.5",
                                           "1e308",
                                           "1e400",
                                           "-1e400",
                                           "1e-400",
                                           "4.9e-324",
                                           "1e2",
                                           "0e0"};
inline constexpr const char* kValues[] = {"\"x\"",       "\"\"",         "true",         "false",
                                          "null",        "[]",           "{}",           "[1]",
                                          "[0,0]",       "{\"a\":1}",    "-1",           "1.5",
                                          "0",           "\"F32\"",      "\"F64\"",      "\"I8\"",
                                          "\"BF16\"",    "\"identity\"", "\"clipped\"",  "\"approx_sign\"",
                                          "\"\\u0000\"", "\"\\ud800\"",  "\"\xff\xfe\"", "[[]]",
                                          "[-1]",        "[1,2,3]"};
// Nesting depths around common limits (64, 128) and one deep enough to overflow an 8 MB stack in a
// recursive walk (about 75000 levels for nlohmann's dump); that one is drawn rarely, as it is slow.
inline constexpr std::size_t kDepths[] = {2, 10, 63, 64, 65, 100, 127, 128, 129, 1000, 10000};
inline constexpr std::size_t kDeepest = 100000;

inline std::string nested(std::size_t depth, bool objects, bool close) {
    std::string s;
    s.reserve(depth * 6 + 1);
    for (std::size_t i = 0; i < depth; ++i) s += objects ? "{\"a\":" : "[";
    s += "1";
    if (close)
        for (std::size_t i = 0; i < depth; ++i) s += objects ? '}' : ']';
    return s;
}

inline bool mutate_json(std::string& s, const std::vector<Bytes>& corpus, Rand& r) {
    const std::vector<Token> toks = scan_json(s);
    if (toks.empty()) return false;
    std::vector<const Token*> numbers, strings, keys, values;
    for (const Token& t : toks) {
        (t.key ? keys : values).push_back(&t);
        if (t.kind == 'n') numbers.push_back(&t);
        if (t.kind == 's' && !t.key) strings.push_back(&t);
    }
    auto replace = [&](const Token& t, const std::string& with) { s.replace(t.begin, t.end - t.begin, with); };
    switch (r.below(10)) {
        case 0:
        case 1:
        case 9:  // numbers: boundary, huge, negative, fractional
            if (numbers.empty()) return false;
            replace(*numbers[r.below(numbers.size())], r.pick(kNumbers));
            return true;
        case 2: {  // a number nudged, so sizes and offsets almost agree
            if (numbers.empty()) return false;
            const Token& t = *numbers[r.below(numbers.size())];
            const unsigned long long v = std::strtoull(s.substr(t.begin, t.end - t.begin).c_str(), nullptr, 10);
            const unsigned long long deltas[] = {1, 2, 4, 8, ~0ull, ~0ull - 3, ~0ull - 7};
            replace(t, r.one_in(4) ? std::to_string(v * 2) : std::to_string(v + r.pick(deltas)));
            return true;
        }
        case 3: {  // deep nesting, closed or not
            if (values.empty()) return false;
            replace(*values[r.below(values.size())],
                    nested(r.one_in(16) ? kDeepest : r.pick(kDepths), r.one_in(3), !r.one_in(4)));
            return true;
        }
        case 4: {  // duplicate a key: value pair
            if (keys.empty()) return false;
            const Token& k = *keys[r.below(keys.size())];
            const Token* v = value_of(s, toks, k);
            if (!v) return false;
            const std::string pair = s.substr(k.begin, v->end - k.begin);
            s.insert(v->end, "," + pair);
            return true;
        }
        case 5: {  // delete a key: value pair (a missing field)
            if (keys.empty()) return false;
            const Token& k = *keys[r.below(keys.size())];
            const Token* v = value_of(s, toks, k);
            if (!v) return false;
            std::size_t b = k.begin, e = v->end;
            if (e < s.size() && s[e] == ',')
                ++e;
            else if (b > 0 && s[b - 1] == ',')
                --b;
            s.erase(b, e - b);
            return true;
        }
        case 6:  // wrong type
            if (values.empty()) return false;
            replace(*values[r.below(values.size())], r.pick(kValues));
            return true;
        case 7: {  // a key renamed to another key of this document (duplicates, swapped fields)
            if (keys.size() < 2) return false;
            const Token& a = *keys[r.below(keys.size())];
            const Token& b = *keys[r.below(keys.size())];
            replace(a, s.substr(b.begin, b.end - b.begin));
            return true;
        }
        case 8: {  // a value from another corpus entry
            if (values.empty()) return false;
            const Bytes& other = corpus[r.below(corpus.size())];
            const std::string o(other.begin(), other.end());
            const std::vector<Token> otoks = scan_json(o);
            if (otoks.empty()) return false;
            const Token& ov = otoks[r.below(otoks.size())];
            replace(*values[r.below(values.size())], o.substr(ov.begin, ov.end - ov.begin));
            return true;
        }
    }
    return false;
}

// Where the JSON text of an input is: after an 8-byte little-endian length (safetensors), or the
// whole input when it starts with '{' or '['. Returns false for inputs that do not look like JSON.
inline bool json_region(const Bytes& b, std::size_t& begin, std::size_t& end, bool& length_prefixed) {
    if (b.size() > 8 && b[8] == '{') {
        const uint64_t n = get_le(b.data(), 8);
        if (n <= b.size() - 8) {
            begin = 8, end = 8 + std::size_t(n), length_prefixed = true;
            return true;
        }
    }
    std::size_t i = 0;
    while (i < b.size() && std::isspace(b[i])) ++i;
    if (i == b.size() || (b[i] != '{' && b[i] != '[')) return false;
    begin = 0, end = b.size(), length_prefixed = false;
    return true;
}

inline Bytes mutate(const Bytes& base, const std::vector<Bytes>& corpus, Rand& r, std::size_t max_len) {
    Bytes b = base;
    std::size_t count = 1;  // 1, 2, 3, ... mutations with probability 1/2, 1/4, 1/8, ...: most mutants stay close
    while (count < 6 && r.one_in(2)) ++count;
    for (; count; --count) {
        std::size_t begin, end;
        bool prefixed;
        if (json_region(b, begin, end, prefixed) && !r.one_in(3)) {
            std::string text(b.begin() + std::ptrdiff_t(begin), b.begin() + std::ptrdiff_t(end));
            if (mutate_json(text, corpus, r)) {
                Bytes out(b.begin(), b.begin() + std::ptrdiff_t(begin));
                out.insert(out.end(), text.begin(), text.end());
                out.insert(out.end(), b.begin() + std::ptrdiff_t(end), b.end());
                if (prefixed && !r.one_in(8)) put_le(out.data(), text.size(), 8);  // keep the length right, mostly
                b = std::move(out);
                if (b.size() > max_len) b.resize(max_len);
                continue;
            }
        }
        mutate_binary(b, corpus, r, max_len);
    }
    return b;
}

}  // namespace fuzz::mutator
