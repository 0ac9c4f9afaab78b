#pragma once
// Aligned buffers with a size-class cache for big blocks.
//
// Why: a training step frees and re-allocates the same large activation buffers every step. Handing
// them back to the OS and faulting them in again costs a third of a step in a VM (measured on
// PyTorch on this machine class). Blocks >= kCacheMinBytes are rounded up to a size class and kept
// on a free list when released; the next request of the same class reuses them without page faults.
// Small blocks go straight to aligned operator new. The cache is bounded (set_cache_limit).
//
// A request may also accept a larger cached block (up to max_oversize times its class). Parameter
// gradients do: they are created during the backward, exactly while the backward frees activations
// of other sizes, and freed after the optimizer step, just before the next forward wants those
// activation blocks back. Borrowing the freed blocks (and, when there is nothing to borrow, taking
// a fresh block that goes back to the system when released) brings the step's peak close to the
// larger of the two phases instead of their sum. A block keeps its own class for life.
//
// Blocks >= kMappedMinBytes are mapped from the system (mmap, transparent huge pages where enabled)
// rather than taken from malloc, so a block the cache lets go (trim, limit) really leaves the
// process: glibc keeps freed blocks below its mmap threshold (up to 32 MiB) in its heap.
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

inline constexpr std::size_t kHugePageBytes = std::size_t(2) << 20;

// Anonymous memory straight from the system: zero-filled pages, nullptr when the system refuses.
// Blocks of 2 MiB or more start on a 2 MiB boundary and are advised as transparent huge pages
// (where enabled for madvise): one fault per 2 MiB instead of 512, and fewer TLB misses.
inline void* map_zeroed(std::size_t bytes) {
    const bool huge = bytes >= kHugePageBytes;
    const std::size_t span = huge ? bytes + kHugePageBytes : bytes;
    void* p = ::mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return nullptr;
    if (!huge) return p;
    // Trim the unaligned head and the tail of the over-sized mapping.
    const auto base = reinterpret_cast<std::uintptr_t>(p);
    const std::uintptr_t aligned = (base + kHugePageBytes - 1) & ~(std::uintptr_t(kHugePageBytes) - 1);
    if (aligned > base) ::munmap(p, aligned - base);
    const std::size_t tail = (base + span) - (aligned + bytes);
    if (tail > 0) ::munmap(reinterpret_cast<void*>(aligned + bytes), tail);
#ifdef MADV_HUGEPAGE
    ::madvise(reinterpret_cast<void*>(aligned), bytes, MADV_HUGEPAGE);  // advice only
#endif
    return reinterpret_cast<void*>(aligned);
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

    struct Block {
        void* ptr = nullptr;
        std::size_t bytes = 0;  // the block's size class: what release() gives back
        bool cache_on_release = true;
    };

    // A block of at least `bytes`: a cached one of the same class or, for a borrower
    // (max_oversize > 1), of any class up to max_oversize times its own; else a fresh one.
    Block allocate(std::size_t bytes, double max_oversize = 1.0) {
        const std::size_t cls = size_class(bytes == 0 ? 1 : bytes);
        if (cls >= kCacheMinBytes) {
            std::lock_guard<std::mutex> lock(mutex_);
            auto it = free_.find(cls);
            if (max_oversize > 1.0) {
                // A borrower takes from the class with the most blocks cached in its range: the
                // blocks a phase has been freeing in bulk, not the few that other ops reuse.
                const double limit = double(cls) * max_oversize;
                for (auto j = free_.lower_bound(cls); j != free_.end() && double(j->first) <= limit; ++j)
                    if (it == free_.end() || j->second.size() * j->first > it->second.size() * it->first) it = j;
            }
            if (it != free_.end()) {
                const Block block{it->second.back(), it->first};
                it->second.pop_back();
                if (it->second.empty()) free_.erase(it);  // free_ holds only non-empty lists
                cached_bytes_ -= block.bytes;
                add_live(block.bytes);
                return block;
            }
        }
        // A borrower's own fresh block is not cached when released: it would sit in the cache
        // between backwards, and the next backward's gradients would find it instead of
        // borrowing what that backward frees.
        const Block block{fresh_block(cls), cls, /*cache_on_release=*/max_oversize <= 1.0};  // throws std::bad_alloc
        if (cls >= kCacheMinBytes) {
            std::lock_guard<std::mutex> lock(mutex_);
            add_live(cls);
        }
        return block;
    }

    void release(Block block) {
        if (block.bytes >= kCacheMinBytes) {
            std::lock_guard<std::mutex> lock(mutex_);
            live_bytes_ -= block.bytes;
            if (block.cache_on_release && cached_bytes_ + block.bytes <= limit_) {
                free_[block.bytes].push_back(block.ptr);
                cached_bytes_ += block.bytes;
                return;
            }
        }
        free_block(block.ptr, block.bytes);
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
        {
            std::lock_guard<std::mutex> lock(mutex_);
            limit_ = bytes;
        }
        if (cached_bytes_ > bytes) trim();
    }
    std::size_t cached_bytes() {
        std::lock_guard<std::mutex> lock(mutex_);
        return cached_bytes_;
    }

private:
    BufferCache() = default;
    void add_live(std::size_t bytes) {
        live_bytes_ += bytes;
        peak_live_bytes_ = std::max(peak_live_bytes_, live_bytes_);
    }
    static void* fresh_block(std::size_t cls) {
        if (cls < kMappedMinBytes) return ::operator new(cls, std::align_val_t(kAlignment));
        void* p = map_zeroed(cls);
        if (!p) throw std::bad_alloc();
        return p;
    }
    static void free_block(void* p, std::size_t cls) {
        if (cls < kMappedMinBytes)
            ::operator delete(p, std::align_val_t(kAlignment));
        else
            unmap(p, cls);
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
