#pragma once
// Flip rate: the fraction of binarized weights whose sign changed since the previous measurement
// (FBI-LLM's training-dynamics analysis), per layer and overall. Signs are kept packed, one bit per
// weight (a 130M student needs 10 MB), never as a copy of the weights. sign(0) = +1 as everywhere.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "bitgrad/nn/module.hpp"
#include "bitgrad/ops/sign.hpp"

namespace bitgrad::train {

struct FlipRates {
    double overall = 0;
    std::map<std::string, double> per_layer;  // "model.layers.3" -> fraction
};

template <class T>
class FlipTracker {
public:
    explicit FlipTracker(const nn::Module<T>& model) {
        for (auto& p : model.named_parameters())
            if (p.kind == ParamKind::Binary) {
                entries_.push_back({layer_of(p.name), p.var, {}});
                pack(p.var.value(), entries_.back().bits);
            }
    }
    bool empty() const { return entries_.empty(); }

    // Fractions changed since the last call (or construction), then remembers the current signs.
    FlipRates update() {
        FlipRates r;
        std::map<std::string, std::pair<int64_t, int64_t>> layer;  // flips, total
        int64_t flips = 0, total = 0;
        std::vector<uint64_t> now;
        for (auto& e : entries_) {
            pack(e.var.value(), now);
            int64_t f = 0;
            for (std::size_t w = 0; w < now.size(); ++w) f += __builtin_popcountll(now[w] ^ e.bits[w]);
            e.bits.swap(now);
            auto& l = layer[e.layer];
            l.first += f;
            l.second += e.var.numel();
            flips += f;
            total += e.var.numel();
        }
        for (auto& [name, ft] : layer) r.per_layer[name] = double(ft.first) / double(ft.second);
        r.overall = total ? double(flips) / double(total) : 0.0;
        return r;
    }

private:
    struct Entry {
        std::string layer;
        Var<T> var;
        std::vector<uint64_t> bits;
    };
    static std::string layer_of(const std::string& name) {
        const std::string key = "layers.";
        auto at = name.find(key);
        if (at == std::string::npos) return name;
        auto end = name.find('.', at + key.size());
        return name.substr(0, end);
    }
    static void pack(const Tensor<T>& w, std::vector<uint64_t>& bits) {
        bits.assign(std::size_t((w.numel() + 63) / 64), 0);
        for (int64_t i = 0; i < w.numel(); ++i)
            if (w[i] >= T(0)) bits[std::size_t(i / 64)] |= uint64_t(1) << (i % 64);
    }
    std::vector<Entry> entries_;
};

}  // namespace bitgrad::train
