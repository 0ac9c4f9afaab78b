#pragma once
// Sizes checked before anything is allocated: overflow-checked arithmetic, and a comparison of what
// a model or a batch will need with the memory this process may still use.
//
// Why: a config.json with hidden_size 10^12 or `--batch 1000000000` must be refused with a message
// that states the figure and the limit, not end in std::bad_alloc (or allocate for a minute first).
// The limit is the tightest of what the machine has free and what this process is allowed: under
// `ulimit -v` or in a container with a memory cap, MemAvailable alone overstates it.
#include <sys/resource.h>
#include <unistd.h>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <optional>
#include <sstream>
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

inline std::string format_bytes(double bytes) {
    char buf[48];
    if (bytes >= 1e9)
        std::snprintf(buf, sizeof buf, "%.2f GB", bytes / 1e9);
    else
        std::snprintf(buf, sizeof buf, "%.1f MB", bytes / 1e6);
    return buf;
}

// The bytes this process may still allocate, and which limit says so (for messages).
struct MemoryLimit {
    uint64_t bytes = std::numeric_limits<uint64_t>::max();
    std::string source;  // e.g. "MemAvailable", "RLIMIT_AS (ulimit -v) 4.10 GB, 1.20 GB of it in use (VmSize)"

    // Keeps the tighter of this limit and (bytes, source).
    void tighten(uint64_t b, const std::string& s) {
        if (b < bytes || source.empty()) {
            bytes = b;
            source = s;
        }
    }
};

namespace detail {

// "Key: N kB" of /proc/meminfo or /proc/self/status, in bytes; nullopt when absent.
inline std::optional<uint64_t> proc_kb_field(const char* file, const std::string& key) {
    std::ifstream f(file);
    std::string line;
    while (std::getline(f, line))
        if (line.compare(0, key.size(), key) == 0) {
            std::istringstream in(line.substr(key.size()));
            uint64_t kb = 0;
            if (in >> kb) return kb * 1024;
        }
    return std::nullopt;
}

// The first number in a file (cgroup's memory.max, memory.current, ...); nullopt when the file is
// missing or holds something else ("max": no limit).
inline std::optional<uint64_t> file_u64(const std::filesystem::path& p) {
    std::ifstream f(p);
    uint64_t v = 0;
    if (f >> v) return v;
    return std::nullopt;
}

// `key N` of a cgroup memory.stat; 0 when absent.
inline uint64_t memory_stat(const std::filesystem::path& p, const std::string& key) {
    std::ifstream f(p);
    std::string k;
    uint64_t v = 0;
    while (f >> k >> v)
        if (k == key) return v;
    return 0;
}

// A resource limit (RLIMIT_AS, RLIMIT_DATA) less what this process already holds of it (`held`:
// VmSize or VmData of /proc/self/status).
inline void rlimit_bound(int resource, const char* name, const std::string& held, MemoryLimit& limit) {
    rlimit r{};
    if (::getrlimit(resource, &r) != 0 || r.rlim_cur == RLIM_INFINITY) return;
    const uint64_t cap = r.rlim_cur, used = proc_kb_field("/proc/self/status", held + ":").value_or(0);
    limit.tighten(cap > used ? cap - used : 0, std::string(name) + " " + format_bytes(double(cap)) + ", " +
                                                   format_bytes(double(used)) + " of it in use (" + held + ")");
}

// The memory caps of the cgroups named in `proc_cgroup` (the text of /proc/self/cgroup) and of
// their ancestors, under the cgroup mount `root` (/sys/fs/cgroup): cgroup v2 ("0::<path>":
// <root>/<path>/memory.max, "max" meaning none, less memory.current) and v1 ("N:...memory...:<path>":
// <root>/memory/<path>/memory.limit_in_bytes less memory.usage_in_bytes). Usage does not count
// inactive file pages (memory.stat), which the kernel drops before it fails an allocation (the
// "working set" container tools report). Ancestors are walked because each one's cap applies, and
// because in a container the path may name a cgroup that is mounted as the root.
inline void cgroup_bound(const std::string& proc_cgroup, const std::filesystem::path& root, MemoryLimit& limit) {
    std::istringstream lines(proc_cgroup);
    std::string line;
    while (std::getline(lines, line)) {
        const auto a = line.find(':'), b = a == std::string::npos ? a : line.find(':', a + 1);
        if (b == std::string::npos) continue;
        // (appended, not "," + substr: GCC 12 warns falsely on const char* + std::string, -Wrestrict)
        std::string controllers = ",";
        controllers += line.substr(a + 1, b - a - 1);
        controllers += ",";
        const bool v2 = line.compare(0, a, "0") == 0 && controllers == ",,";
        if (!v2 && controllers.find(",memory,") == std::string::npos) continue;
        const char* cap_file = v2 ? "memory.max" : "memory.limit_in_bytes";
        const char* use_file = v2 ? "memory.current" : "memory.usage_in_bytes";
        const char* inactive = v2 ? "inactive_file" : "total_inactive_file";
        std::filesystem::path rel = std::filesystem::path(line.substr(b + 1)).relative_path();
        const std::filesystem::path base = v2 ? root : root / "memory";
        for (;;) {
            const std::filesystem::path dir = base / rel;
            if (const auto cap = file_u64(dir / cap_file)) {
                uint64_t used = file_u64(dir / use_file).value_or(0);
                const uint64_t idle = memory_stat(dir / "memory.stat", inactive);
                used = used > idle ? used - idle : 0;
                limit.tighten(*cap > used ? *cap - used : 0, "cgroup " + (dir / cap_file).string() + " " +
                                                                 format_bytes(double(*cap)) + ", " +
                                                                 format_bytes(double(used)) + " of it in use");
            }
            if (rel.empty()) break;
            rel = rel.parent_path();
        }
    }
}

}  // namespace detail

// What this process may still allocate: the tightest of MemAvailable (/proc/meminfo; else the
// physical memory), RLIMIT_AS and RLIMIT_DATA less what is in use of them, and the cgroup caps
// (cgroup v2 memory.max, v1 memory.limit_in_bytes) less their usage. BITGRAD_MEMORY_LIMIT (bytes)
// overrides them all (tests, shared machines).
inline MemoryLimit memory_limit() {
    MemoryLimit limit;
    if (const char* env = std::getenv("BITGRAD_MEMORY_LIMIT")) {
        char* end = nullptr;
        const unsigned long long v = std::strtoull(env, &end, 10);
        if (end != env && *end == '\0') {
            limit.tighten(v, "BITGRAD_MEMORY_LIMIT");
            return limit;
        }
    }
    if (const auto avail = detail::proc_kb_field("/proc/meminfo", "MemAvailable:")) {
        limit.tighten(*avail, "MemAvailable");
    } else {
        const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
        if (pages > 0 && page > 0) limit.tighten(uint64_t(pages) * uint64_t(page), "physical memory");
    }
    detail::rlimit_bound(RLIMIT_AS, "RLIMIT_AS (ulimit -v)", "VmSize", limit);
    detail::rlimit_bound(RLIMIT_DATA, "RLIMIT_DATA (ulimit -d)", "VmData", limit);
    std::ifstream f("/proc/self/cgroup");
    const std::string cgroups{std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
    detail::cgroup_bound(cgroups, "/sys/fs/cgroup", limit);
    return limit;
}

inline uint64_t available_memory_bytes() { return memory_limit().bytes; }

// Throws when `bytes` exceed what this process may allocate, naming what needs them and the limit.
inline void require_memory(uint64_t bytes, const std::string& what) {
    const MemoryLimit limit = memory_limit();
    const bool env = limit.source == "BITGRAD_MEMORY_LIMIT";
    BITGRAD_CHECK(bytes <= limit.bytes, what << " needs " << format_bytes(double(bytes)) << " but only "
                                             << format_bytes(double(limit.bytes))
                                             << " of memory is available (bound by " << limit.source
                                             << (env ? "" : "; BITGRAD_MEMORY_LIMIT overrides") << ")");
}

}  // namespace bitgrad
