#pragma once
// Sampling the next token from logits (generation itself: infer::generate, infer/causal_lm.hpp).
//   repetition_penalty r != 1 first divides the logit of every token among the last
//   repetition_window of `recent` (0: all of them) by r when it is positive and multiplies it by r
//   when negative, once per distinct token (the CTRL / Hugging Face rule; llama.cpp's window is 64).
//   temperature <= 0: greedy. Otherwise softmax(logits / temperature), then keep the top_k most
//   likely (top_k <= 0: all), then the smallest set whose mass reaches top_p (nucleus), renormalise
//   and draw with the seeded rng. Only the top_k candidates are sorted (a partial sort: a full
//   sort of 32000 logits would cost more than a 1-bit decode step).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "bitgrad/core/rng.hpp"
#include "bitgrad/core/tensor.hpp"

namespace bitgrad::infer {

struct SamplingOptions {
    double temperature = 0.8;
    int top_k = 40;
    double top_p = 0.95;
    double repetition_penalty = 1.0;
    int64_t repetition_window = 64;
};

template <class T>
int32_t sample_token(const T* logits, int64_t V, const SamplingOptions& o, Rng& rng,
                     const std::vector<int32_t>& recent = {}) {
    std::vector<T> penalized;
    if (o.repetition_penalty != 1.0 && !recent.empty()) {
        penalized.assign(logits, logits + V);
        std::vector<bool> done(std::size_t(V), false);
        const std::size_t window =
            o.repetition_window > 0 ? std::min(recent.size(), std::size_t(o.repetition_window)) : recent.size();
        for (std::size_t i = recent.size() - window; i < recent.size(); ++i) {
            const int32_t id = recent[i];
            if (id < 0 || id >= V || done[std::size_t(id)]) continue;
            done[std::size_t(id)] = true;
            T& l = penalized[std::size_t(id)];
            l = l > T(0) ? T(double(l) / o.repetition_penalty) : T(double(l) * o.repetition_penalty);
        }
        logits = penalized.data();
    }
    if (o.temperature <= 0) return int32_t(std::max_element(logits, logits + V) - logits);
    std::vector<int32_t> order = std::vector<int32_t>(std::size_t(V));
    std::iota(order.begin(), order.end(), 0);
    const std::size_t k = o.top_k > 0 ? std::min<std::size_t>(std::size_t(o.top_k), order.size()) : order.size();
    std::partial_sort(order.begin(), order.begin() + std::ptrdiff_t(k), order.end(),
                      [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
    std::vector<double> p(k);
    const double m = double(logits[order[0]]);
    double sum = 0;
    for (std::size_t i = 0; i < k; ++i) sum += p[i] = std::exp((double(logits[order[i]]) - m) / o.temperature);
    std::size_t keep = k;
    double mass = 0;
    for (std::size_t i = 0; i < k; ++i) {
        mass += p[i] / sum;
        if (mass >= o.top_p) {
            keep = i + 1;
            break;
        }
    }
    double kept = 0;
    for (std::size_t i = 0; i < keep; ++i) kept += p[i];
    double u = rng.uniform() * kept;
    for (std::size_t i = 0; i < keep; ++i) {
        u -= p[i];
        if (u <= 0) return order[i];
    }
    return order[keep - 1];
}

}  // namespace bitgrad::infer
