#pragma once
// Model summary in the style of larq's: parameters per layer, binarized vs full precision, bits
// per parameter and storage as fp32, fp16 and packed 1-bit (1 bit per binarized weight, fp16 for
// everything else: alpha, beta, embedding, norms, lm_head).
#include <cstdio>
#include <sstream>
#include <string>

#include "bitgrad/nn/config.hpp"
#include "bitgrad/nn/module.hpp"

namespace bitgrad::nn {

struct ParamStats {
    int64_t total = 0, binary = 0;
    int64_t full_precision() const { return total - binary; }
    double bytes_fp32() const { return 4.0 * double(total); }
    double bytes_fp16() const { return 2.0 * double(total); }
    double bytes_packed() const { return double(binary) / 8.0 + 2.0 * double(full_precision()); }
    double bits_per_param() const { return total ? 8.0 * bytes_packed() / double(total) : 0.0; }
    void add(const ParamStats& o) {
        total += o.total;
        binary += o.binary;
    }
};

// The same counts from a config alone (a model held in inference storage: infer::Decoder).
inline ParamStats param_stats(const LlamaConfig& c) {
    const int64_t total = c.num_parameters();
    return {total, c.num_binary_parameters()};
}

template <class T>
ParamStats param_stats(const Module<T>& m) {
    ParamStats s;
    for (auto& p : m.named_parameters()) {
        s.total += p.var.numel();
        if (p.kind == ParamKind::Binary) s.binary += p.var.numel();
    }
    return s;
}

namespace detail {
inline std::string with_commas(int64_t n) {
    const std::string digits = std::to_string(n);
    std::string out;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && digits[i - 1] != '-' && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return out;
}
inline std::string megabytes(double bytes) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.2f MB", bytes / 1e6);
    return buf;
}
template <class T>
void summary_rows(const Module<T>& m, const std::string& name, int depth, std::ostringstream& os) {
    if (!m.children().empty() && depth < 2 && !name.empty() && name.rfind("layers.", 0) != 0) {
        for (auto& [child_name, child] : m.children()) summary_rows(*child, name + "." + child_name, depth + 1, os);
        return;
    }
    if (name.empty()) {  // the root: one row per child
        for (auto& [child_name, child] : m.children()) summary_rows(*child, child_name, 1, os);
        return;
    }
    ParamStats s = param_stats(m);
    char line[160];
    std::snprintf(line, sizeof line, "%-28s %14s %14s %14s\n", name.c_str(), with_commas(s.total).c_str(),
                  with_commas(s.binary).c_str(), with_commas(s.full_precision()).c_str());
    os << line;
}
}  // namespace detail

template <class T>
std::string model_summary(const Module<T>& m, const std::string& title = "model") {
    std::ostringstream os;
    char line[160];
    std::snprintf(line, sizeof line, "%-28s %14s %14s %14s\n", title.c_str(), "params", "1-bit", "full precision");
    os << line << std::string(73, '-') << "\n";
    detail::summary_rows(m, "", 0, os);
    ParamStats s = param_stats(m);
    os << std::string(73, '-') << "\n";
    os << "Total params:            " << detail::with_commas(s.total) << "\n";
    std::snprintf(line, sizeof line, "Binarized (1-bit):       %s (%.1f%%)\n", detail::with_commas(s.binary).c_str(),
                  s.total ? 100.0 * double(s.binary) / double(s.total) : 0.0);
    os << line;
    os << "Full precision:          " << detail::with_commas(s.full_precision()) << "\n";
    std::snprintf(line, sizeof line, "Bits per parameter:      %.2f (packed)\n", s.bits_per_param());
    os << line;
    os << "Storage:                 fp32 " << detail::megabytes(s.bytes_fp32()) << ", fp16 "
       << detail::megabytes(s.bytes_fp16()) << ", packed 1-bit " << detail::megabytes(s.bytes_packed()) << "\n";
    return os.str();
}

}  // namespace bitgrad::nn
