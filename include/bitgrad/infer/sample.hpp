#pragma once
// Sampling the next token from logits, and plain (dense, no KV cache) autoregressive generation.
//   temperature <= 0: greedy. Otherwise softmax(logits / temperature), then keep the top_k most
//   likely (top_k <= 0: all), then the smallest set whose mass reaches top_p (nucleus), renormalise
//   and draw with the seeded rng.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "bitgrad/autograd/tape.hpp"
#include "bitgrad/core/rng.hpp"
#include "bitgrad/core/tensor.hpp"

namespace bitgrad::infer {

struct SamplingOptions {
    double temperature = 0.8;
    int top_k = 40;
    double top_p = 0.95;
};

template <class T>
int32_t sample_token(const T* logits, int64_t V, const SamplingOptions& o, Rng& rng) {
    if (o.temperature <= 0) return int32_t(std::max_element(logits, logits + V) - logits);
    std::vector<int32_t> order = std::vector<int32_t>(std::size_t(V));
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
    const std::size_t k = o.top_k > 0 ? std::min<std::size_t>(std::size_t(o.top_k), order.size()) : order.size();
    std::vector<double> p(k);
    const double m = double(logits[order[0]]);
    double sum = 0;
    for (std::size_t i = 0; i < k; ++i) sum += p[i] = std::exp((double(logits[order[i]]) - m) / o.temperature);
    std::size_t keep = k;
    double mass = 0;
    for (std::size_t i = 0; i < k; ++i) {
        mass += p[i] / sum;
        if (mass >= o.top_p) { keep = i + 1; break; }
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

// Appends max_new tokens to prompt (ids), recomputing the whole (cropped) context each step.
template <class Model>
std::vector<int32_t> generate(const Model& model, std::vector<int32_t> ids, int64_t max_new, const SamplingOptions& o, Rng& rng) {
    NoGrad no_grad;
    const int64_t ctx = model.config.max_position_embeddings, V = model.config.vocab_size;
    for (int64_t n = 0; n < max_new; ++n) {
        const int64_t len = std::min<int64_t>(int64_t(ids.size()), ctx), start = int64_t(ids.size()) - len;
        Tensor<int32_t> input({1, len});
        std::copy(ids.begin() + start, ids.end(), input.data());
        auto logits = model.forward(input).value();
        ids.push_back(sample_token(logits.data() + (len - 1) * V, V, o, rng));
    }
    return ids;
}

}  // namespace bitgrad::infer
