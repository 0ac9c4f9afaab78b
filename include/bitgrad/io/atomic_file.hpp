#pragma once
// Crash-safe file writing: write to "<path>.tmp", fsync it, rename over path, fsync the directory.
// A crash or a full disk at any point leaves either the old file or the new one, never a mix,
// and never writes into a file that may be memory-mapped by a reader.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>

#include "bitgrad/core/error.hpp"

namespace bitgrad::io {

// Writes all of [data, data + n) to fd, or throws naming path (e.g. "No space left on device").
inline void write_all(int fd, const void* data, std::size_t n, const std::string& path) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
        const ssize_t w = ::write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        BITGRAD_CHECK(w > 0, "writing " << path << ": " << std::strerror(errno));
        p += w;
        n -= std::size_t(w);
    }
}

inline void fsync_directory(const std::filesystem::path& dir) {
    const int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        ::fsync(fd);
        ::close(fd);
    }
}

// Calls write(fd) on a temporary file, then atomically replaces path with it.
template <class Writer>
void write_file_atomic(const std::filesystem::path& path, Writer&& write) {
    const std::filesystem::path tmp = path.string() + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    BITGRAD_CHECK(fd >= 0, "cannot create " << tmp << ": " << std::strerror(errno));
    try {
        write(fd, tmp.string());
        BITGRAD_CHECK(::fsync(fd) == 0, "fsync " << tmp << ": " << std::strerror(errno));
    } catch (...) {
        ::close(fd);
        std::filesystem::remove(tmp);
        throw;
    }
    BITGRAD_CHECK(::close(fd) == 0, "closing " << tmp << ": " << std::strerror(errno));
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    BITGRAD_CHECK(!ec, "renaming " << tmp << " to " << path << ": " << ec.message());
    fsync_directory(path.parent_path());
}

inline void write_text_atomic(const std::filesystem::path& path, const std::string& text) {
    write_file_atomic(path, [&](int fd, const std::string& tmp) { write_all(fd, text.data(), text.size(), tmp); });
}

}  // namespace bitgrad::io
