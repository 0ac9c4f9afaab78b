// Fuzz target: data::TokenShard, then copy(), operator[] and WindowSampler on what it accepted.
// An accepted shard must hold size() ids below vocab_size() in the file, read the same through
// operator[] and copy(), refuse a copy past its end, and sample windows of valid ids.
#include <bitgrad/data/token_shard.hpp>

#include <algorithm>
#include <vector>

#include "harness.hpp"

namespace {

void open_and_check(const std::string& path, std::size_t size) {
    const bitgrad::data::TokenShard shard(path);
    const uint64_t n = shard.size(), vocab = shard.vocab_size();
    FUZZ_EXPECT(n <= (size - bitgrad::data::kShardHeaderBytes) / 2,
                n << " tokens claimed in a " << size << "-byte file");
    std::vector<int32_t> ids(n);
    shard.copy(0, n, ids.data());
    for (uint64_t i = 0; i < n; ++i)  // copy() gives int32: every accepted id must survive that
        FUZZ_EXPECT(shard[i] < vocab && ids[i] >= 0 && uint32_t(ids[i]) == shard[i],
                    "token " << i << ": [] gives " << shard[i] << ", copy gives " << ids[i] << ", vocab " << vocab);
    int32_t one = 0;
    bool refused = false;
    try {
        shard.copy(n, 1, &one);
    } catch (const bitgrad::Error&) { refused = true; }
    FUZZ_EXPECT(refused, "copy(" << n << ", 1) past the end of a " << n << "-token shard was accepted");
    if (n < 2) return;
    const int64_t window = int64_t(std::min<uint64_t>(n, 9));
    bitgrad::data::WindowSampler sampler(shard, 2, window, /*seed=*/n);
    for (int draw = 0; draw < 3; ++draw) {
        const auto batch = sampler.next();
        for (int64_t i = 0; i < batch.numel(); ++i)
            FUZZ_EXPECT(batch[i] >= 0 && uint64_t(batch[i]) < vocab,
                        "sampled id " << batch[i] << " >= vocab " << vocab);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
    const std::string& path = fuzz::write_temp_file("token_shard", data, size);
    try {
        open_and_check(path, size);
    } catch (const bitgrad::Error&) {  // a refusal: the expected outcome for most inputs
    }
    return 0;
}
