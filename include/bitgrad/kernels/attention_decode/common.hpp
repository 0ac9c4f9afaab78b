#pragma once
// What attention_decode's variants share (kernels/attention_decode.hpp describes the family): the
// problem, the softmax over the scores and the Generic variant. Plain C++: no intrinsics here.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "bitgrad/core/fp16.hpp"
#include "bitgrad/core/parallel.hpp"
#include "bitgrad/kernels/exp.hpp"

namespace bitgrad::kernels {

// What a cache stores its keys and values as.
enum class KvElement { Float, Fp16 };

// One decode step's attention: q and o [H * D]; k and v [Hkv, capacity, D] of `element`, the
// first S positions of each head in use.
struct DecodeAttention {
    int64_t S, capacity, H, Hkv, D;
    KvElement element;
    const void* k;
    const void* v;
    const float* q;
    float* o;
};

using AttentionDecodeFn = void (*)(const DecodeAttention& a);

namespace detail {

inline float kv_value(const DecodeAttention& a, const void* base, int64_t at) {
    return a.element == KvElement::Float ? static_cast<const float*>(base)[at]
                                         : to_float(static_cast<const fp16*>(base)[at]);
}

// p [S] = softmax(p) in place (the scores already scaled).
inline void softmax_scores(float* p, int64_t S) {
    float m = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < S; ++j) m = std::max(m, p[j]);
    float sum = 0.f;
#pragma omp simd reduction(+ : sum)
    for (int64_t j = 0; j < S; ++j) {
        p[j] = exp_fast(p[j] - m);
        sum += p[j];
    }
    const float inv = 1.f / sum;
    for (int64_t j = 0; j < S; ++j) p[j] *= inv;
}

// The driver: Head(a, h, p) computes head h's output with p [S] as scratch; threads own heads.
template <void (*Head)(const DecodeAttention& a, int64_t h, float* p)>
void attention_decode_heads(const DecodeAttention& a) {
    parallel_for(
        a.H,
        [&](int64_t h) {
            thread_local std::vector<float> p;
            if (int64_t(p.size()) < a.S) p.resize(std::size_t(a.S));
            Head(a, h, p.data());
        },
        2 * a.S * a.D);
}

// One head in plain loops: each key row widened to float, then its dot product; the values likewise.
inline void attention_head_generic(const DecodeAttention& a, int64_t h, float* p) {
    const int64_t kvh = h / (a.H / a.Hkv), base = kvh * a.capacity * a.D;
    const float scale = 1.f / std::sqrt(float(a.D));
    const float* q = a.q + h * a.D;
    float* o = a.o + h * a.D;
    for (int64_t j = 0; j < a.S; ++j) {
        float s = 0.f;
        for (int64_t c = 0; c < a.D; ++c) s += q[c] * kv_value(a, a.k, base + j * a.D + c);
        p[j] = s * scale;
    }
    softmax_scores(p, a.S);
    std::fill(o, o + a.D, 0.f);
    for (int64_t j = 0; j < a.S; ++j)
        for (int64_t c = 0; c < a.D; ++c) o[c] += p[j] * kv_value(a, a.v, base + j * a.D + c);
}

inline void attention_decode_generic(const DecodeAttention& a) { attention_decode_heads<attention_head_generic>(a); }

}  // namespace detail
}  // namespace bitgrad::kernels
