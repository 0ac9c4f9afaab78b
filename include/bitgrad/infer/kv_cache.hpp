#pragma once
// Keys and values of every layer for one sequence, positions 0 .. length-1, so that a decode step
// runs one token through the model instead of the whole context.
#include <cstdint>
#include <string>
#include <vector>

#include "bitgrad/core/error.hpp"
#include "bitgrad/core/memory.hpp"
#include "bitgrad/core/tensor.hpp"
#include "bitgrad/nn/config.hpp"

namespace bitgrad::infer {

struct KvCache {
    std::vector<Tensor<float>> k, v;  // per layer [capacity, kv_heads * head_dim]
    int64_t length = 0, capacity = 0;

    KvCache() = default;
    // Refused before anything is allocated when capacity is outside [1, max_position_embeddings]
    // or the cache does not fit in memory (the message names the positions).
    KvCache(const nn::LlamaConfig& c, int64_t capacity_) : capacity(capacity_) {
        BITGRAD_CHECK(capacity > 0 && capacity <= c.max_position_embeddings,
                      "KvCache: " << capacity << " positions, expected 1 to max_position_embeddings = "
                                  << c.max_position_embeddings);
        const int64_t width = c.num_key_value_heads * c.head_dim();
        const std::string what = "KvCache: " + std::to_string(capacity) + " positions";
        require_memory(uint64_t(checked_mul(checked_mul(2 * 4, c.num_hidden_layers, what),
                                            checked_mul(capacity, width, what), what)),
                       "a KV cache of " + std::to_string(capacity) + " positions (" +
                           std::to_string(c.num_hidden_layers) + " layers x keys and values x " +
                           std::to_string(width) + " floats)");
        for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
            k.push_back(Tensor<float>({capacity, width}));
            v.push_back(Tensor<float>({capacity, width}));
        }
    }
    void clear() { length = 0; }
    int64_t bytes() const { return k.empty() ? 0 : int64_t(2 * k.size()) * 4 * k[0].numel(); }
};

}  // namespace bitgrad::infer
