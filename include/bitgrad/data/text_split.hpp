#pragma once
// Splitting a text into a training part and a held-out validation part, so that validation
// measures text the model never saw.
//
//   split_every(text, n)       every n-th chapter when the text has "CHAPTER N." heading lines
//                              (the chapters whose number is a multiple of n), else every n-th
//                              paragraph (paragraphs are separated by blank lines; the n-th, 2n-th, ...)
//   split_tail(text, fraction) the last `fraction` of the text, cut at a line break
//
// Held-out units are spread over the text, so validation sees every part of its style (a tail
// split of a novel validates on its ending only). Both parts keep the text's bytes unchanged:
// train + val holds every line once, in order within each part.
#include <charconv>
#include <cstdint>
#include <regex>
#include <sstream>
#include <string>

#include "bitgrad/core/error.hpp"

namespace bitgrad::data {

struct TextSplit {
    std::string train, val;
    std::string unit;        // "chapters", "paragraphs" or "tail"
    int64_t units = 0;       // chapters or paragraphs seen (tail: 0)
    int64_t held_units = 0;  // of which held out
};

namespace detail {
inline TextSplit split_chapters(const std::string& text, int64_t every, const std::string& where) {
    static const std::regex heading(R"(^CHAPTER (\d+)\.)");
    TextSplit s{"", "", "chapters", 0, 0};
    std::istringstream in(text);
    std::string line;
    bool held = false;
    int64_t line_number = 0;
    while (std::getline(in, line)) {
        ++line_number;
        std::smatch m;
        if (std::regex_search(line, m, heading)) {
            const std::string digits = m[1];
            uint64_t number = 0;
            const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), number);
            BITGRAD_CHECK(ec == std::errc() && end == digits.data() + digits.size(),
                          where << ":" << line_number << ": chapter number " << digits << " is out of range");
            held = number % uint64_t(every) == 0;
            ++s.units;
            s.held_units += held;
        }
        (held ? s.val : s.train) += line + "\n";
    }
    return s;
}

inline TextSplit split_paragraphs(const std::string& text, int64_t every) {
    TextSplit s{"", "", "paragraphs", 0, 0};
    std::istringstream in(text);
    std::string line;
    bool in_paragraph = false, held = false;
    while (std::getline(in, line)) {
        const bool blank = line.find_first_not_of(" \t\r") == std::string::npos;
        if (!blank && !in_paragraph) {  // a paragraph starts: blank lines before it go with the previous one
            ++s.units;
            held = s.units % every == 0;
            s.held_units += held;
        }
        in_paragraph = !blank;
        (held ? s.val : s.train) += line + "\n";
    }
    return s;
}
}  // namespace detail

// Every n-th chapter, or every n-th paragraph when the text has no chapter headings (n >= 2).
inline TextSplit split_every(const std::string& text, int64_t every, const std::string& where = "text") {
    BITGRAD_CHECK(every >= 2, where << ": holding out every " << every << "-th part leaves "
                                    << (every == 1 ? "nothing to train on" : "no valid split")
                                    << "; expected 2 or more");
    TextSplit s = detail::split_chapters(text, every, where);
    if (s.units == 0) s = detail::split_paragraphs(text, every);
    BITGRAD_CHECK(s.held_units > 0, where << ": " << s.units << " " << s.unit << ", fewer than " << every
                                          << ": nothing to hold out every " << every
                                          << "; hold out fewer (a smaller number) or a fraction of the text");
    BITGRAD_CHECK(!s.train.empty(), where << ": every part was held out; nothing is left to train on");
    return s;
}

// The last `fraction` of the text (0 < fraction < 1), cut after the line break at or past the cut
// point (or at the point itself in a text without one after it, moved back to a UTF-8 boundary).
inline TextSplit split_tail(const std::string& text, double fraction, const std::string& where = "text") {
    BITGRAD_CHECK(fraction > 0 && fraction < 1, where << ": validation fraction " << fraction << " must be in (0, 1)");
    std::size_t cut = std::size_t(double(text.size()) * (1 - fraction));
    const std::size_t nl = text.find('\n', cut);
    if (nl != std::string::npos && nl + 1 < text.size()) {
        cut = nl + 1;
    } else {
        while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;  // not inside a character
    }
    TextSplit s{text.substr(0, cut), text.substr(cut), "tail", 0, 0};
    BITGRAD_CHECK(!s.train.empty() && !s.val.empty(),
                  where << ": " << text.size() << " bytes cannot be split " << 1 - fraction << " / " << fraction);
    return s;
}

}  // namespace bitgrad::data
