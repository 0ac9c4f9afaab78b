#pragma once
// Sizes checked before anything is allocated: overflow-checked arithmetic, and a comparison of what
// a model or a batch will need with the memory the machine has available.
//
// Why: a config.json with hidden_size 10^12 or `--batch 1000000000` must be refused with a message
// that states the figure and the limit, not end in std::bad_alloc (or allocate for a minute first).
#include <unistd.h>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <string>

#include "bitgrad/core/error.hpp"

namespace bitgrad {

// a * b, or throws naming what overflowed (both operands must be >= 0).
inline int64_t checked_mul(int64_t a, int64_t b, const std::string& what) {
    int64_t r;
    BITGRAD_CHECK(a >= 0 && b >= 0 && !__builtin_mul_overflow(a, b, &r),
                  what << ": " << a << " x " << b << " overflows 64 bits");
    return r;
}
inline int64_t checked_add(int64_t a, int64_t b, const std::string& what) {
    int64_t r;
    BITGRAD_CHECK(a >= 0 && b >= 0 && !__builtin_add_overflow(a, b, &r),
                  what << ": " << a << " + " << b << " overflows 64 bits");
    return r;
}

// Bytes the system can hand out now without swapping: MemAvailable from /proc/meminfo, else the
// physical memory. BITGRAD_MEMORY_LIMIT (bytes) overrides both (tests, shared machines).
inline uint64_t available_memory_bytes() {
    if (const char* env = std::getenv("BITGRAD_MEMORY_LIMIT")) {
        char* end = nullptr;
        const unsigned long long v = std::strtoull(env, &end, 10);
        if (end != env && *end == '\0') return v;
    }
    std::ifstream f("/proc/meminfo");
    std::string key;
    uint64_t kb = 0;
    while (f >> key >> kb) {
        if (key == "MemAvailable:") return kb * 1024;
        std::string unit;
        std::getline(f, unit);
    }
    const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
    return pages > 0 && page > 0 ? uint64_t(pages) * uint64_t(page) : std::numeric_limits<uint64_t>::max();
}

inline std::string format_bytes(double bytes) {
    char buf[48];
    if (bytes >= 1e9)
        std::snprintf(buf, sizeof buf, "%.2f GB", bytes / 1e9);
    else
        std::snprintf(buf, sizeof buf, "%.1f MB", bytes / 1e6);
    return buf;
}

// Throws when `bytes` exceed the available memory, naming what needs them.
inline void require_memory(uint64_t bytes, const std::string& what) {
    const uint64_t available = available_memory_bytes();
    BITGRAD_CHECK(bytes <= available, what << " needs " << format_bytes(double(bytes)) << " but only "
                                           << format_bytes(double(available))
                                           << " of memory is available (MemAvailable; BITGRAD_MEMORY_LIMIT overrides)");
}

}  // namespace bitgrad
