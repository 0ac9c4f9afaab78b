#pragma once
// Token shards: a 32-byte header and raw little-endian token ids, memory-mapped.
//
//   offset  size  field
//        0     8  magic "BGTOKENS"
//        8     4  version (1)
//       12     4  token width in bytes (2 or 4)
//       16     8  token count
//       24     8  vocab size (every id must be < vocab size)
//       32     -  count * width bytes of ids
// The file size must be exactly 32 + count * width. Opening a shard checks all of it, and every
// id, and names the file and byte offset of the first problem.
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "bitgrad/core/atomic_file.hpp"
#include "bitgrad/core/mapped_file.hpp"
#include "bitgrad/core/rng.hpp"
#include "bitgrad/core/tensor.hpp"

namespace bitgrad::data {

inline constexpr char kShardMagic[8] = {'B', 'G', 'T', 'O', 'K', 'E', 'N', 'S'};
inline constexpr uint32_t kShardVersion = 1;
inline constexpr std::size_t kShardHeaderBytes = 32;
// Ids go to models as int32, so a vocabulary may hold at most 2^31 ids (every id < vocab size).
inline constexpr uint64_t kMaxShardVocab = uint64_t(1) << 31;

// Writes ids atomically; width 2 when vocab_size <= 65536, else 4. Throws on an id >= vocab_size.
inline void write_token_shard(const std::filesystem::path& path, const std::vector<uint32_t>& ids,
                              uint64_t vocab_size) {
    BITGRAD_CHECK(vocab_size > 0 && vocab_size <= kMaxShardVocab, "write_token_shard "
                                                                      << path << ": vocab size " << vocab_size
                                                                      << " out of range (1 .. 2^31: ids are int32)");
    for (std::size_t i = 0; i < ids.size(); ++i)
        BITGRAD_CHECK(ids[i] < vocab_size, "write_token_shard " << path << ": token " << i << " has id " << ids[i]
                                                                << " >= vocab size " << vocab_size);
    const uint32_t width = vocab_size <= 65536 ? 2 : 4;
    write_file_atomic(path, [&](int fd, const std::string& tmp) {
        uint8_t header[kShardHeaderBytes] = {};
        std::memcpy(header, kShardMagic, 8);
        const uint64_t count = ids.size();
        std::memcpy(header + 8, &kShardVersion, 4);  // x86-64 and aarch64: little-endian
        std::memcpy(header + 12, &width, 4);
        std::memcpy(header + 16, &count, 8);
        std::memcpy(header + 24, &vocab_size, 8);
        write_all(fd, header, sizeof header, tmp);
        std::vector<uint8_t> body(ids.size() * width);
        for (std::size_t i = 0; i < ids.size(); ++i) {
            if (width == 2) {
                const uint16_t v = uint16_t(ids[i]);
                std::memcpy(&body[i * 2], &v, 2);
            } else
                std::memcpy(&body[i * 4], &ids[i], 4);
        }
        write_all(fd, body.data(), body.size(), tmp);
    });
}

class TokenShard {
public:
    explicit TokenShard(const std::string& path) : file_(std::make_shared<MappedFile>(path)) {
        const uint8_t* d = file_->data();
        const std::size_t size = file_->size();
        BITGRAD_CHECK(size >= kShardHeaderBytes, path << ": " << size << " bytes, shorter than the "
                                                      << kShardHeaderBytes << "-byte token shard header");
        BITGRAD_CHECK(std::memcmp(d, kShardMagic, 8) == 0,
                      path << ": offset 0: bad magic, expected \"BGTOKENS\" (not a bitgrad token shard)");
        uint32_t version, width;
        std::memcpy(&version, d + 8, 4);
        std::memcpy(&width, d + 12, 4);
        std::memcpy(&count_, d + 16, 8);
        std::memcpy(&vocab_, d + 24, 8);
        BITGRAD_CHECK(version == kShardVersion,
                      path << ": offset 8: version " << version << ", expected " << kShardVersion);
        BITGRAD_CHECK(width == 2 || width == 4, path << ": offset 12: token width " << width << ", expected 2 or 4");
        BITGRAD_CHECK(vocab_ > 0 && vocab_ <= kMaxShardVocab,
                      path << ": offset 24: vocab size " << vocab_ << " out of range (1 .. 2^31: ids are int32)");
        width_ = width;
        const uint64_t body = size - kShardHeaderBytes;
        BITGRAD_CHECK(count_ <= body / width_ && count_ * width_ == body,
                      path << ": header says " << count_ << " tokens ("
                           << (count_ <= UINT64_MAX / width_ ? count_ * width_ : 0) << " bytes) but the file holds "
                           << body << " bytes after the header (truncated or padded)");
        for (uint64_t i = 0; i < count_; ++i) {
            const uint32_t id = (*this)[i];
            BITGRAD_CHECK(id < vocab_, path << ": token " << i << " (byte offset " << kShardHeaderBytes + i * width_
                                            << ") has id " << id << " >= vocab size " << vocab_);
        }
    }

    uint64_t size() const { return count_; }
    uint64_t vocab_size() const { return vocab_; }
    const std::string& path() const { return file_->path(); }
    uint32_t operator[](uint64_t i) const {
        const uint8_t* p = file_->data() + kShardHeaderBytes + i * width_;
        if (width_ == 2) {
            uint16_t v;
            std::memcpy(&v, p, 2);
            return v;
        }
        uint32_t v;
        std::memcpy(&v, p, 4);
        return v;
    }
    // ids [begin, begin + n) as int32 into out.
    void copy(uint64_t begin, uint64_t n, int32_t* out) const {
        BITGRAD_CHECK(begin <= count_ && n <= count_ - begin, path() << ": window of " << n << " tokens at " << begin
                                                                     << " past the end (" << count_ << " tokens)");
        for (uint64_t i = 0; i < n; ++i) out[i] = int32_t((*this)[begin + i]);
    }

private:
    std::shared_ptr<MappedFile> file_;
    uint64_t count_ = 0, vocab_ = 0;
    uint32_t width_ = 2;
};

// Seeded sampler of [B, T + 1] windows at uniformly random offsets (inputs [0..T-1], labels [1..T]).
// Its position in the stream is the Rng state: save state() in a checkpoint, set_state() to resume.
class WindowSampler {
public:
    WindowSampler(const TokenShard& shard, int64_t batch, int64_t window, uint64_t seed)
        : shard_(shard), batch_(batch), window_(window), rng_(seed) {
        BITGRAD_CHECK(batch > 0 && window > 1, "WindowSampler: batch " << batch << " and window " << window
                                                                       << " must be positive (window >= 2)");
        BITGRAD_CHECK(shard.size() >= uint64_t(window),
                      shard.path() << ": " << shard.size() << " tokens, shorter than one window of " << window);
    }
    // The next batch of `batch` windows. For data parallelism, replica `rank` of `world`: the global
    // batch of world * batch windows is drawn from this one stream on every replica (so their
    // states stay equal), and replica r keeps draws [r * batch, (r + 1) * batch). One replica with
    // batch world * batch sees the same windows in the same order.
    Tensor<int32_t> next(int rank = 0, int world = 1) {
        BITGRAD_CHECK(world >= 1 && rank >= 0 && rank < world,
                      "WindowSampler: rank " << rank << " of world " << world << " is out of range");
        Tensor<int32_t> out({batch_, window_});
        const uint64_t positions = shard_.size() - uint64_t(window_) + 1;
        for (int r = 0; r < world; ++r)
            for (int64_t b = 0; b < batch_; ++b) {
                const uint64_t at = rng_.uniform_int(positions);
                if (r == rank) shard_.copy(at, uint64_t(window_), out.data() + b * window_);
            }
        return out;
    }
    Rng::State state() const { return rng_.state(); }
    void set_state(const Rng::State& s) { rng_.set_state(s); }

private:
    const TokenShard& shard_;
    int64_t batch_, window_;
    Rng rng_;
};

// Splits a [B, T + 1] window batch into inputs [B, T] and labels [B * T] (next tokens).
inline std::pair<Tensor<int32_t>, Tensor<int32_t>> split_inputs_labels(const Tensor<int32_t>& windows) {
    const int64_t B = windows.dim(0), W = windows.dim(1), T = W - 1;
    Tensor<int32_t> inputs({B, T}), labels({B * T});
    for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < T; ++t) {
            inputs[b * T + t] = windows[b * W + t];
            labels[b * T + t] = windows[b * W + t + 1];
        }
    return {inputs, labels};
}

}  // namespace bitgrad::data
