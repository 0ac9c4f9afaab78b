#pragma once
// Aligned buffers with a size-class cache for big blocks.
//
// Why: a training step frees and re-allocates the same large activation buffers every step. Handing
// them back to the OS and faulting them in again costs a third of a step in a VM (measured on
// PyTorch on this machine class). Blocks >= kCacheMinBytes are rounded up to a size class and kept
// on a free list when released; the next request of the same class reuses them without page faults.
// Small blocks go straight to aligned operator new. The cache is bounded (set_cache_limit).
//
// Blocks >= kMappedMinBytes are mapped from the system (mmap, transparent huge pages where enabled)
// rather than taken from malloc, so that a block the cache lets go really leaves the process: glibc
// keeps freed blocks below its mmap threshold (up to 32 MiB) in its heap. Storage that bypasses the
// cache (Tensor::uncached_zeros: parameter gradients, alive from the backward to the optimizer step)
// evicts cached blocks of the same total size when it is mapped. In a training step the backward
// frees activations while it creates gradients; without the eviction the process would hold both,
// and its peak would be activations + gradients rather than the larger of the two phases.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <new>
#include <vector>

#include <sys/mman.h>

namespace bitgrad {

inline constexpr std::size_t kAlignment = 64;

namespace detail {

inline constexpr std::size_t kMappedMinBytes = std::size_t(1) << 20;

// Anonymous memory straight from the system: zero-filled pages, 2 MiB pages where transparent huge
// pages are enabled for madvise (fewer faults and TLB misses); nullptr when the system refuses.
inline void* map_zeroed(std::size_t bytes) {
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return nullptr;
#ifdef MADV_HUGEPAGE
    ::madvise(p, bytes, MADV_HUGEPAGE);  // advice only: ignored where unsupported
#endif
    return p;
}
inline void unmap(void* p, std::size_t bytes) { ::munmap(p, bytes); }

class BufferCache {
public:
    static constexpr std::size_t kCacheMinBytes = std::size_t(1) << 16;  // 64 KiB

    static BufferCache& instance() {
        static BufferCache* cache = new BufferCache();  // leaked on purpose: outlives static tensors
        return *cache;
    }

    // Size classes: multiples of 64 KiB below 1 MiB, then 8 classes per power of two (<= 12.5% waste).
    static std::size_t size_class(std::size_t bytes) {
        if (bytes < kCacheMinBytes) return (bytes + kAlignment - 1) / kAlignment * kAlignment;
        if (bytes <= (std::size_t(1) << 20)) return (bytes + kCacheMinBytes - 1) / kCacheMinBytes * kCacheMinBytes;
        std::size_t top = std::size_t(1) << (63 - __builtin_clzll(bytes - 1));  // largest power of 2 < bytes
        std::size_t step = top / 8;
        return (bytes + step - 1) / step * step;
    }

    void* allocate(std::size_t bytes) {
        std::size_t cls = size_class(bytes == 0 ? 1 : bytes);
        if (cls >= kCacheMinBytes) {
            std::lock_guard<std::mutex> lock(mutex_);
            live_bytes_ += cls;
            peak_live_bytes_ = std::max(peak_live_bytes_, live_bytes_);
            auto it = free_.find(cls);
            if (it != free_.end() && !it->second.empty()) {
                void* p = it->second.back();
                it->second.pop_back();
                if (it->second.empty()) free_.erase(it);  // free_ holds only non-empty lists
                cached_bytes_ -= cls;
                return p;
            }
        }
        try {
            return fresh_block(cls);
        } catch (...) {
            if (cls >= kCacheMinBytes) {
                std::lock_guard<std::mutex> lock(mutex_);
                live_bytes_ -= cls;
            }
            throw;
        }
    }

    void release(void* p, std::size_t bytes) {
        std::size_t cls = size_class(bytes == 0 ? 1 : bytes);
        if (cls >= kCacheMinBytes) {
            std::lock_guard<std::mutex> lock(mutex_);
            live_bytes_ -= cls;
            if (cached_bytes_ + cls <= limit_) {
                free_[cls].push_back(p);
                cached_bytes_ += cls;
                return;
            }
        }
        free_block(p, cls);
    }

    // Storage allocated outside the cache (Tensor::uncached_zeros) is counted in live bytes too,
    // and makes room for itself: cached blocks of at least its size go back to the system.
    void add_external(std::size_t bytes) {
        std::lock_guard<std::mutex> lock(mutex_);
        live_bytes_ += bytes;
        peak_live_bytes_ = std::max(peak_live_bytes_, live_bytes_);
        std::size_t evicted = 0;
        while (evicted < bytes && !free_.empty()) {  // largest classes first: fewest system calls
            auto it = std::prev(free_.end());
            evicted += it->first;
            cached_bytes_ -= it->first;
            free_block(it->second.back(), it->first);
            it->second.pop_back();
            if (it->second.empty()) free_.erase(it);
        }
    }
    void remove_external(std::size_t bytes) {
        std::lock_guard<std::mutex> lock(mutex_);
        live_bytes_ -= bytes;
    }

    // Bytes in large blocks (>= 64 KiB) handed out and not yet released, and their high-water mark
    // since the last reset_peak(): what tensors need, apart from what the cache keeps for reuse.
    std::size_t live_bytes() {
        std::lock_guard<std::mutex> lock(mutex_);
        return live_bytes_;
    }
    std::size_t peak_live_bytes() {
        std::lock_guard<std::mutex> lock(mutex_);
        return peak_live_bytes_;
    }
    void reset_peak() {
        std::lock_guard<std::mutex> lock(mutex_);
        peak_live_bytes_ = live_bytes_;
    }

    // Returns every cached block to the system.
    void trim() {
        std::lock_guard<std::mutex> lock(mutex_);
        for (auto& [cls, blocks] : free_)
            for (void* p : blocks) free_block(p, cls);
        free_.clear();
        cached_bytes_ = 0;
    }
    void set_limit(std::size_t bytes) {
        { std::lock_guard<std::mutex> lock(mutex_); limit_ = bytes; }
        if (cached_bytes_ > bytes) trim();
    }
    std::size_t cached_bytes() {
        std::lock_guard<std::mutex> lock(mutex_);
        return cached_bytes_;
    }

private:
    BufferCache() = default;
    static void* fresh_block(std::size_t cls) {
        if (cls < kMappedMinBytes) return ::operator new(cls, std::align_val_t(kAlignment));
        void* p = map_zeroed(cls);
        if (!p) throw std::bad_alloc();
        return p;
    }
    static void free_block(void* p, std::size_t cls) {
        if (cls < kMappedMinBytes) ::operator delete(p, std::align_val_t(kAlignment));
        else unmap(p, cls);
    }
    std::mutex mutex_;
    std::map<std::size_t, std::vector<void*>> free_;
    std::size_t cached_bytes_ = 0, live_bytes_ = 0, peak_live_bytes_ = 0;
    std::size_t limit_ = std::size_t(4) << 30;
};

}  // namespace detail

// Upper bound on the memory held by the buffer cache (default 4 GiB); 0 disables caching.
inline void set_buffer_cache_limit(std::size_t bytes) { detail::BufferCache::instance().set_limit(bytes); }
inline void trim_buffer_cache() { detail::BufferCache::instance().trim(); }
inline std::size_t buffer_cache_bytes() { return detail::BufferCache::instance().cached_bytes(); }
// Bytes of large tensor storage in use now, and the most in use since reset_peak_tensor_bytes().
inline std::size_t tensor_bytes() { return detail::BufferCache::instance().live_bytes(); }
inline std::size_t peak_tensor_bytes() { return detail::BufferCache::instance().peak_live_bytes(); }
inline void reset_peak_tensor_bytes() { detail::BufferCache::instance().reset_peak(); }

}  // namespace bitgrad
