#pragma once
// Data parallelism as the Trainer sees it: which replica this process is, and three collectives.
// A default DataParallel is one process and needs none; dist/mpi.hpp fills them with MPI calls.
//
// The scheme (docs/distributed.md). world_size replicas hold the same weights and optimizer state.
// Each step, the global batch of world_size * batch windows is drawn from one sampler stream that
// every replica advances alike; replica r trains on draws [r * batch, (r + 1) * batch). Its
// backward is seeded with 1 / (grad_accum * world_size), so the sum of the replicas' gradients is
// the gradient of the mean loss over the global batch: what one process with batch
// world_size * batch computes, up to the order of the floating-point sums. After the sum
// (average_gradients, in place, small tensors packed into buckets) every replica takes the same
// AdamW step; a hash of the weights compared across replicas every log step turns a silent
// divergence into an error.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <type_traits>
#include <vector>

#include "bitgrad/autograd/var.hpp"
#include "bitgrad/core/error.hpp"

namespace bitgrad::train {

struct DataParallel {
    int rank = 0, world_size = 1;
    // In place: every replica's buffer becomes the element-wise sum over the replicas.
    std::function<void(float*, int64_t)> sum_floats;
    std::function<void(double*, int64_t)> sum_doubles;
    // Throws on every replica unless all passed the same value; `what` names it in the message.
    std::function<void(uint64_t value, const std::string& what)> check_equal;

    bool distributed() const { return world_size > 1; }
    template <class T>
    void sum(T* data, int64_t n) const {
        if constexpr (std::is_same_v<T, float>)
            sum_floats(data, n);
        else
            sum_doubles(data, n);
    }
};

// Sums every parameter's gradient across the replicas, in place. Gradients of at least
// bucket_bytes go to the collective directly; smaller ones are packed into a bucket of that size
// first (one call per bucket instead of one per norm weight or wscale vector). A parameter without
// a gradient (not used by the loss) counts as zeros, so every replica makes the same calls.
template <class T>
void average_gradients(const std::vector<Var<T>>& params, const DataParallel& dp,
                       int64_t bucket_bytes = int64_t(8) << 20) {
    if (!dp.distributed()) return;
    const int64_t bucket_len = std::max<int64_t>(1, bucket_bytes / int64_t(sizeof(T)));
    std::vector<T> bucket;
    std::vector<Var<T>> in_bucket;
    auto flush = [&] {
        if (in_bucket.empty()) return;
        dp.sum(bucket.data(), int64_t(bucket.size()));
        int64_t at = 0;
        for (auto& p : in_bucket) {
            std::memcpy(p.grad().data(), bucket.data() + at, sizeof(T) * std::size_t(p.numel()));
            at += p.numel();
        }
        bucket.clear();
        in_bucket.clear();
    };
    for (auto p : params) {
        if (!p.grad().defined()) p.grad() = Tensor<T>::zeros(p.shape());
        T* g = p.grad().data();
        if (p.numel() >= bucket_len) {
            dp.sum(g, p.numel());
            continue;
        }
        if (int64_t(bucket.size()) + p.numel() > bucket_len) flush();
        bucket.insert(bucket.end(), g, g + p.numel());
        in_bucket.push_back(p);
    }
    flush();
}

// A 64-bit hash of every parameter's bytes (FNV-1a's step over 8-byte words, then the tail bytes):
// equal weights give equal hashes. 8 bytes a step, so a 130M model hashes in a fraction of a second.
template <class T>
uint64_t weights_hash(const std::vector<Var<T>>& params) {
    uint64_t h = 1469598103934665603ull;
    for (const auto& p : params) {
        const auto* bytes = reinterpret_cast<const unsigned char*>(p.value().data());
        const std::size_t n = sizeof(T) * std::size_t(p.numel());
        std::size_t i = 0;
        for (; i + 8 <= n; i += 8) {
            uint64_t word;
            std::memcpy(&word, bytes + i, 8);
            h = (h ^ word) * 1099511628211ull;
        }
        for (; i < n; ++i) h = (h ^ bytes[i]) * 1099511628211ull;
    }
    return h;
}

}  // namespace bitgrad::train
