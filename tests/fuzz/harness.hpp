#pragma once
// What the fuzz targets share: the temp file a path-taking reader is given, and FUZZ_EXPECT for the
// properties a successful read must have. A broken property throws fuzz::BrokenInvariant, which is
// not a bitgrad::Error, so it escapes the target and the driver (or libFuzzer) reports the input.
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <string>

namespace fuzz {

struct BrokenInvariant : std::logic_error {
    using std::logic_error::logic_error;
};

#define FUZZ_EXPECT(cond, msg)                                    \
    do {                                                          \
        if (!(cond)) {                                            \
            std::ostringstream fuzz_expect_os_;                   \
            fuzz_expect_os_ << "broken invariant: " << msg;       \
            throw ::fuzz::BrokenInvariant(fuzz_expect_os_.str()); \
        }                                                         \
    } while (0)

// Where the temp file goes: $TMPDIR if set, else /dev/shm when there is one. Rewriting a file on a
// disk costs ~1 ms (ext4 mounted with discard frees and trims its blocks on every truncation):
// 17 times more than the read it feeds.
inline std::filesystem::path temp_dir() {
    std::error_code ec;
    if (const char* t = std::getenv("TMPDIR");
        (!t || !*t) && std::filesystem::is_directory("/dev/shm", ec) && ::access("/dev/shm", W_OK) == 0)
        return "/dev/shm";
    return std::filesystem::temp_directory_path();
}

// Removes the temp files of fuzzers that died (a crash skips the destructor); /dev/shm is memory.
inline void remove_stale_temp_files(const std::filesystem::path& dir) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
        const std::string name = e.path().filename().string();
        const auto dash = name.rfind('-');
        if (name.rfind("bitgrad-fuzz-", 0) != 0 || dash == std::string::npos || name.size() < 4 ||
            name.compare(name.size() - 4, 4, ".bin") != 0)
            continue;
        const long pid = std::strtol(name.c_str() + dash + 1, nullptr, 10);
        if (pid > 0 && ::kill(pid_t(pid), 0) != 0 && errno == ESRCH) std::filesystem::remove(e.path(), ec);
    }
}

// Writes the input to <temp_dir>/bitgrad-fuzz-<reader>-<pid>.bin, one path per process reused for
// every input, removed at exit.
inline const std::string& write_temp_file(const char* reader, const uint8_t* data, std::size_t size) {
    struct TempFile {
        std::string path;
        explicit TempFile(const std::filesystem::path& dir, const char* reader)
            : path((dir / ("bitgrad-fuzz-" + std::string(reader) + "-" + std::to_string(::getpid()) + ".bin"))
                       .string()) {
            remove_stale_temp_files(dir);
        }
        ~TempFile() { std::remove(path.c_str()); }
    };
    static const TempFile file(temp_dir(), reader);
    std::FILE* f = std::fopen(file.path.c_str(), "wb");
    const bool ok = f && std::fwrite(data, 1, size, f) == size;
    if (f && std::fclose(f) != 0) throw std::runtime_error("fuzz harness: cannot close " + file.path);
    if (!ok) throw std::runtime_error("fuzz harness: cannot write " + file.path);  // a harness fault, reported as one
    return file.path;
}

}  // namespace fuzz
