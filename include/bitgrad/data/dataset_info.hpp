#pragma once
// data.json: what `bitgrad prepare` records next to the token shards, so evaluation can report
// bits per byte (the byte counts of the texts the shards were made from).
//   {"vocab_size": 4096, "train_bytes": 1113694, "val_bytes": 124015}
#include <cstdint>
#include <filesystem>

#include "bitgrad/core/atomic_file.hpp"
#include "bitgrad/core/json.hpp"
#include "bitgrad/data/token_shard.hpp"

namespace bitgrad::data {

struct DatasetInfo {
    int64_t vocab_size = 0;
    int64_t train_bytes = 0, val_bytes = 0;
};

inline void save_dataset_info(const std::filesystem::path& dir, const DatasetInfo& info) {
    const nlohmann::ordered_json j = {
        {"vocab_size", info.vocab_size}, {"train_bytes", info.train_bytes}, {"val_bytes", info.val_bytes}};
    write_text_atomic(dir / "data.json", j.dump(1) + "\n");
}

// Reads dir/data.json; every field must be present, an integer, vocab_size > 0, byte counts >= 0.
inline DatasetInfo load_dataset_info(const std::filesystem::path& dir) {
    const std::filesystem::path path = dir / "data.json";
    const std::string where = path.string();
    const auto j = load_json(path);
    DatasetInfo info;
    info.vocab_size = json_field<int64_t>(j, "vocab_size", where);
    info.train_bytes = json_field<int64_t>(j, "train_bytes", where);
    info.val_bytes = json_field<int64_t>(j, "val_bytes", where);
    BITGRAD_CHECK(info.vocab_size > 0 && info.vocab_size <= int64_t(kMaxShardVocab),
                  where << ": field \"vocab_size\" is " << info.vocab_size << ", expected 1 .. 2^31");
    BITGRAD_CHECK(info.train_bytes >= 0 && info.val_bytes >= 0, where << ": byte counts must be >= 0 (train_bytes "
                                                                      << info.train_bytes << ", val_bytes "
                                                                      << info.val_bytes << ")");
    return info;
}

}  // namespace bitgrad::data
