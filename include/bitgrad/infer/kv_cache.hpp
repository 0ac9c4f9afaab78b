#pragma once
// Keys and values of every layer for one sequence, positions 0 .. length-1, so that a decode step
// runs one token through the model instead of the whole context.
//
// Layout: per layer [kv_heads, capacity, head_dim], head-major, so a decode step's attention reads
// each head's keys and values as one contiguous stream (kernels/attention_decode.hpp).
// Format: Float, or Fp16 (half the bytes, which at 130M are a quarter of what a decode step reads;
// what llama.cpp's default cache holds). A model says which it uses (CausalLM::kv_format(): fp16
// with a packed model's default int8 activations, else float); a cache made directly is float.
// An fp16 cache refuses a key or value beyond fp16's range (65504) instead of storing infinity.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "bitgrad/core/error.hpp"
#include "bitgrad/core/fp16.hpp"
#include "bitgrad/core/memory.hpp"
#include "bitgrad/core/tensor.hpp"
#include "bitgrad/kernels/attention_decode.hpp"
#include "bitgrad/nn/config.hpp"

namespace bitgrad::infer {

enum class KvFormat { Float, Fp16 };

inline const char* kv_format_name(KvFormat f) { return f == KvFormat::Float ? "float" : "fp16"; }

struct KvCache {
    KvFormat format = KvFormat::Float;
    int64_t length = 0, capacity = 0, kv_heads = 0, head_dim = 0;
    std::vector<Tensor<float>> k, v;     // Float: per layer [kv_heads, capacity, head_dim]
    std::vector<Tensor<fp16>> k16, v16;  // Fp16: the same in fp16

    KvCache() = default;
    // Refused before anything is allocated when capacity is outside [1, max_position_embeddings]
    // or the cache does not fit in memory (the message names the positions).
    KvCache(const nn::LlamaConfig& c, int64_t capacity_, KvFormat format_ = KvFormat::Float)
        : format(format_), capacity(capacity_), kv_heads(c.num_key_value_heads), head_dim(c.head_dim()) {
        BITGRAD_CHECK(capacity > 0 && capacity <= c.max_position_embeddings,
                      "KvCache: " << capacity << " positions, expected 1 to max_position_embeddings = "
                                  << c.max_position_embeddings);
        const int64_t width = kv_heads * head_dim;
        const std::string what = "KvCache: " + std::to_string(capacity) + " positions";
        require_memory(uint64_t(checked_mul(checked_mul(2 * element_bytes(), c.num_hidden_layers, what),
                                            checked_mul(capacity, width, what), what)),
                       "a KV cache of " + std::to_string(capacity) + " positions (" +
                           std::to_string(c.num_hidden_layers) + " layers x keys and values x " +
                           std::to_string(width) + (format == KvFormat::Float ? " floats)" : " fp16 values)"));
        const Shape shape{kv_heads, capacity, head_dim};
        for (int64_t l = 0; l < c.num_hidden_layers; ++l) {
            if (format == KvFormat::Float) {
                k.push_back(Tensor<float>(shape));
                v.push_back(Tensor<float>(shape));
            } else {
                k16.push_back(Tensor<fp16>(shape));
                v16.push_back(Tensor<fp16>(shape));
            }
        }
    }
    void clear() { length = 0; }
    int64_t layers() const { return int64_t(format == KvFormat::Float ? k.size() : k16.size()); }
    int64_t element_bytes() const { return format == KvFormat::Float ? 4 : 2; }
    int64_t bytes() const { return 2 * layers() * capacity * kv_heads * head_dim * element_bytes(); }

    // Stores rows [n, kv_heads * head_dim] of keys and values at positions pos .. pos + n - 1.
    void write(int64_t layer, int64_t pos, int64_t n, const float* keys, const float* values) {
        BITGRAD_CHECK(pos >= 0 && pos + n <= capacity,
                      "KvCache: positions " << pos << " .. " << pos + n - 1 << " beyond the capacity " << capacity);
        const std::size_t l = std::size_t(layer);
        for (const float* rows : {keys, values}) {
            const bool is_key = rows == keys;
            for (int64_t t = 0; t < n; ++t)
                for (int64_t h = 0; h < kv_heads; ++h) {
                    const float* src = rows + (t * kv_heads + h) * head_dim;
                    const int64_t at = (h * capacity + pos + t) * head_dim;
                    if (format == KvFormat::Float) {
                        std::copy_n(src, head_dim, (is_key ? k : v)[l].data() + at);
                        continue;
                    }
                    float largest = 0.f;
                    for (int64_t d = 0; d < head_dim; ++d) largest = std::max(largest, std::fabs(src[d]));
                    BITGRAD_CHECK(!(largest > 65504.f),
                                  "KvCache: a " << (is_key ? "key" : "value") << " of layer " << layer
                                                << " at position " << pos + t << " is " << largest
                                                << ", beyond fp16's range (65504): use a float cache (float "
                                                   "activations: --activations float)");
                    to_fp16_n(src, (is_key ? k16 : v16)[l].data() + at, head_dim);
                }
        }
    }
    // keys, values [S, kv_heads * head_dim] = positions 0 .. S - 1 in float (attention over many rows).
    void read(int64_t layer, int64_t S, float* keys, float* values) const {
        const std::size_t l = std::size_t(layer);
        for (int64_t t = 0; t < S; ++t)
            for (int64_t h = 0; h < kv_heads; ++h) {
                const int64_t at = (h * capacity + t) * head_dim, to = (t * kv_heads + h) * head_dim;
                if (format == KvFormat::Float) {
                    std::copy_n(k[l].data() + at, head_dim, keys + to);
                    std::copy_n(v[l].data() + at, head_dim, values + to);
                } else {
                    to_float_n(k16[l].data() + at, keys + to, head_dim);
                    to_float_n(v16[l].data() + at, values + to, head_dim);
                }
            }
    }
    // The attention of one query row q [H * head_dim] over positions 0 .. S - 1 into o.
    void attend(int64_t layer, int64_t S, int64_t H, const float* q, float* o) const {
        const bool f = format == KvFormat::Float;
        const std::size_t l = std::size_t(layer);
        kernels::attention_decode({S, capacity, H, kv_heads, head_dim,
                                   f ? kernels::KvElement::Float : kernels::KvElement::Fp16,
                                   f ? static_cast<const void*>(k[l].data()) : k16[l].data(),
                                   f ? static_cast<const void*>(v[l].data()) : v16[l].data(), q, o});
    }
};

}  // namespace bitgrad::infer
