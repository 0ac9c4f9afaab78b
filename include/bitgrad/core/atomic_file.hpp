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

namespace bitgrad {

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

// Makes the data of renames and new files in dir durable. Errors are not ignored: a checkpoint
// that is not on disk must not be reported as saved.
inline void fsync_directory(const std::filesystem::path& dir) {
    const std::string name = dir.empty() ? "." : dir.string();
    const int fd = ::open(name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    BITGRAD_CHECK(fd >= 0, "cannot open directory " << name << " to fsync it: " << std::strerror(errno));
    const int rc = ::fsync(fd);
    const int saved_errno = errno;
    ::close(fd);
    BITGRAD_CHECK(rc == 0, "fsync of directory " << name << ": " << std::strerror(saved_errno));
}

// std::filesystem::create_directories with a bitgrad::Error that names the path (e.g. when a
// regular file is in the way) instead of std::filesystem_error.
inline void ensure_directory(const std::filesystem::path& dir) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    BITGRAD_CHECK(!ec, "cannot create directory " << dir.string() << ": " << ec.message());
    BITGRAD_CHECK(std::filesystem::is_directory(dir),
                  "cannot create directory " << dir.string() << ": a file that is not a directory is in the way");
}

// std::filesystem::remove_all with a bitgrad::Error naming the path.
inline void remove_tree(const std::filesystem::path& path) {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
    BITGRAD_CHECK(!ec, "cannot remove " << path.string() << ": " << ec.message());
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
        std::error_code ignored;  // already failing: report the first error, not the cleanup's
        std::filesystem::remove(tmp, ignored);
        throw;
    }
    // A failure from here on (e.g. path is a directory) also leaves no temporary file behind.
    std::error_code ec, ignored;
    if (::close(fd) != 0) {
        const int saved_errno = errno;
        std::filesystem::remove(tmp, ignored);
        BITGRAD_CHECK(false, "closing " << tmp << ": " << std::strerror(saved_errno));
    }
    std::filesystem::rename(tmp, path, ec);
    if (ec) {
        std::filesystem::remove(tmp, ignored);
        BITGRAD_CHECK(false, "cannot write "
                                 << path.string() << ": " << ec.message()
                                 << (std::filesystem::is_directory(path, ignored) ? " (it is a directory)" : ""));
    }
    fsync_directory(path.parent_path());
}

inline void write_text_atomic(const std::filesystem::path& path, const std::string& text) {
    write_file_atomic(path, [&](int fd, const std::string& tmp) { write_all(fd, text.data(), text.size(), tmp); });
}

}  // namespace bitgrad
