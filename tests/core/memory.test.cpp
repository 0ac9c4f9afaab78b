// The memory limit (core/memory.hpp): what this process may allocate is bounded by RLIMIT_AS and
// the cgroup caps as well as MemAvailable, and a refusal names the limit that bound it.
#include <sys/resource.h>

#include <cstdlib>
#include <string>

#include "child_process.hpp"
#include "helpers.hpp"

using namespace bitgrad;

namespace {

void write_file(const std::filesystem::path& p, const std::string& text) {
    std::filesystem::create_directories(p.parent_path());
    testing::write_bytes(p, text);
}

}  // namespace

TEST_CASE("memory limit: a lowered RLIMIT_AS bounds what require_memory allows and is named") {
    // As `ulimit -v`: 1 GB of address space beyond what the process holds now. 2 GB is then
    // refused naming RLIMIT_AS, however much MemAvailable says the machine has free.
    const auto [code, text] = testing::in_child([](std::string& out) {
        ::unsetenv("BITGRAD_MEMORY_LIMIT");
        const uint64_t held = detail::proc_kb_field("/proc/self/status", "VmSize:").value_or(0);
        rlimit r{};
        if (held == 0 || ::getrlimit(RLIMIT_AS, &r) != 0) return 10;
        const uint64_t gb = uint64_t(1) << 30;
        if (r.rlim_max != RLIM_INFINITY && r.rlim_max < held + gb) return 11;  // cannot test here
        r.rlim_cur = held + gb;
        if (::setrlimit(RLIMIT_AS, &r) != 0) return 12;
        const MemoryLimit limit = memory_limit();
        out = limit.source;
        if (limit.bytes > gb + gb / 8) return 2;  // the rlimit was not taken into account (VmSize moves a little)
        try {
            require_memory(2 * gb, "a 2 GB thing");
        } catch (const Error& e) {
            out = e.what();
            return 0;
        }
        return 3;
    });
    INFO(text);
    REQUIRE(code != 11);
    CHECK(code == 0);
    CHECK(text.find("a 2 GB thing needs 2.15 GB but only") != std::string::npos);
    CHECK(text.find("RLIMIT_AS (ulimit -v)") != std::string::npos);
    CHECK(text.find("in use (VmSize)") != std::string::npos);
}

TEST_CASE("memory limit: cgroup v2 memory.max and v1 memory.limit_in_bytes less their usage - ancestors included") {
    testing::TempDir dir("cgroup");
    const auto root = dir.path;
    // v2: the process's own cgroup has no cap ("max"), its parent 1 GB with 600 MB in use, 100 MB of
    // which inactive file pages: 500 MB left.
    write_file(root / "a/b/memory.max", "max\n");
    write_file(root / "a/b/memory.current", "50000000\n");
    write_file(root / "a/memory.max", "1000000000\n");
    write_file(root / "a/memory.current", "600000000\n");
    write_file(root / "a/memory.stat", "anon 400000000\nfile 200000000\ninactive_file 100000000\n");
    MemoryLimit limit;
    limit.tighten(uint64_t(8) << 30, "MemAvailable");
    detail::cgroup_bound("0::/a/b\n", root, limit);
    CHECK(limit.bytes == 500000000);
    CHECK(limit.source == "cgroup " + (root / "a/memory.max").string() + " 1.00 GB, 500.0 MB of it in use");

    // v1 (a hybrid hierarchy: memory in its own mount): a cap of 300 MB on the mount's root, whose
    // own child (the path in /proc/self/cgroup) is absent, as in a container: 200 MB left.
    write_file(root / "memory/memory.limit_in_bytes", "300000000\n");
    write_file(root / "memory/memory.usage_in_bytes", "100000000\n");
    MemoryLimit v1;
    v1.tighten(uint64_t(8) << 30, "MemAvailable");
    detail::cgroup_bound("4:memory:/docker/0123\n3:cpu,cpuacct:/docker/0123\n0::/\n", root, v1);
    CHECK(v1.bytes == 200000000);
    CHECK(v1.source.find("memory/memory.limit_in_bytes 300.0 MB") != std::string::npos);

    // No cap anywhere: the limit stays.
    MemoryLimit none;
    none.tighten(123, "MemAvailable");
    detail::cgroup_bound("0::/x\n", root / "nothing", none);
    CHECK(none.bytes == 123);
    CHECK(none.source == "MemAvailable");
}

TEST_CASE("memory limit: BITGRAD_MEMORY_LIMIT overrides every other limit and is named") {
    testing::ScopedEnv env("BITGRAD_MEMORY_LIMIT", "1000000");
    CHECK(memory_limit().bytes == 1000000);
    CHECK_THROWS_WITH_AS(require_memory(2000000, "two megabytes"),
                         "two megabytes needs 2.0 MB but only 1.0 MB of memory is available (bound by "
                         "BITGRAD_MEMORY_LIMIT)",
                         Error);
    require_memory(1000000, "one megabyte");  // does not throw
}
