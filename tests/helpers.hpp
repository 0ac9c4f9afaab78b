#pragma once
// Shared test helpers: random tensors and a gradcheck assertion that prints the worst element.
#include <doctest/doctest.h>

#include <unistd.h>
#include <bitgrad/bitgrad.hpp>

namespace testing {

inline bitgrad::Tensor<double> randn(const bitgrad::Shape& s, uint64_t seed, double stddev = 1.0) {
    bitgrad::Rng rng(seed);
    return bitgrad::Tensor<double>::randn(s, rng, stddev);
}

// bitgrad::gradcheck is public; this only adds doctest's reporting (and that something was compared).
#define CHECK_GRADCHECK(...)                                      \
    do {                                                          \
        auto gradcheck_result_ = bitgrad::gradcheck(__VA_ARGS__); \
        INFO(gradcheck_result_.message);                          \
        CHECK(gradcheck_result_.ok);                              \
        CHECK(gradcheck_result_.elements > 0);                    \
    } while (0)

}  // namespace testing

#include <filesystem>
#include <fstream>
#include <string>

namespace testing {

// A fresh directory under the system temp dir, removed when the object dies.
struct TempDir {
    std::filesystem::path path;
    explicit TempDir(const std::string& name) {
        path = std::filesystem::temp_directory_path() / ("bitgrad-test-" + name + "-" + std::to_string(::getpid()));
        std::filesystem::remove_all(path);
        std::filesystem::create_directories(path);
    }
    ~TempDir() { std::filesystem::remove_all(path); }
    std::filesystem::path operator/(const std::string& f) const { return path / f; }
};

// Sets the OpenMP thread count for a scope, then restores it.
struct ThreadCount {
    int saved;
    explicit ThreadCount(int n) : saved(bitgrad::num_threads()) { bitgrad::set_num_threads(n); }
    ~ThreadCount() { bitgrad::set_num_threads(saved); }
    ThreadCount(const ThreadCount&) = delete;
    ThreadCount& operator=(const ThreadCount&) = delete;
};

inline std::string read_bytes(const std::filesystem::path& p) {
    std::ifstream f(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}
inline void write_bytes(const std::filesystem::path& p, const std::string& bytes) {
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), std::streamsize(bytes.size()));
}

}  // namespace testing
