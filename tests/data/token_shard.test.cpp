#include "helpers.hpp"

#include <cstring>
#include <vector>

using namespace bitgrad;

TEST_CASE("token shard round trip with 2- and 4-byte ids") {
    testing::TempDir dir("shard");
    for (uint64_t vocab : {300ull, 70000ull}) {
        std::vector<uint32_t> ids = {0, 1, 299, 5, 42};
        if (vocab > 65536) ids.push_back(69999);
        data::write_token_shard(dir / "a.bin", ids, vocab);
        data::TokenShard s((dir / "a.bin").string());
        REQUIRE(s.size() == ids.size());
        CHECK(s.vocab_size() == vocab);
        for (std::size_t i = 0; i < ids.size(); ++i) CHECK(s[i] == ids[i]);
    }
    CHECK_THROWS_WITH_AS(data::write_token_shard(dir / "b.bin", {1, 300}, 300), doctest::Contains("token 1 has id 300"),
                         Error);
}

TEST_CASE("corrupt token shards are refused with the file and offset") {
    testing::TempDir dir("shard-corrupt");
    data::write_token_shard(dir / "good.bin", {1, 2, 3, 4}, 10);
    const std::string good = testing::read_bytes(dir / "good.bin");
    auto expect_error = [&](std::string bytes, const char* what) {
        testing::write_bytes(dir / "bad.bin", bytes);
        CHECK_THROWS_WITH_AS(data::TokenShard((dir / "bad.bin").string()), doctest::Contains(what), Error);
    };
    std::string b = good;
    b[0] = 'X';
    expect_error(b, "bad magic");
    b = good;
    b[8] = 2;
    expect_error(b, "offset 8: version 2");
    b = good;
    b[12] = 3;
    expect_error(b, "token width 3");
    expect_error(good.substr(0, good.size() - 1), "truncated");
    expect_error(good + "xx", "truncated or padded");
    expect_error(good.substr(0, 10), "shorter than the 32-byte");
    b = good;
    b[32 + 2 * 2] = 11;  // token 2 := 11 >= vocab 10
    expect_error(b, "token 2 (byte offset 36) has id 11 >= vocab size 10");
    b = good;
    for (int i = 16; i < 24; ++i) b[std::size_t(i)] = char(0xff);  // count = 2^64 - 1
    expect_error(b, "header says");
    CHECK_THROWS_WITH_AS(data::TokenShard((dir / "missing.bin").string()), doctest::Contains("missing.bin"), Error);
}

TEST_CASE("window sampler is seeded and resumable and refuses a too-short shard") {
    testing::TempDir dir("sampler");
    std::vector<uint32_t> ids(100);
    for (uint32_t i = 0; i < 100; ++i) ids[i] = i;
    data::write_token_shard(dir / "s.bin", ids, 100);
    data::TokenShard shard((dir / "s.bin").string());
    data::WindowSampler a(shard, 3, 9, 42), b(shard, 3, 9, 42);
    auto first = a.next();
    CHECK(max_abs_diff(first.cast<double>(), b.next().cast<double>()) == 0);
    for (int64_t r = 0; r < 3; ++r)
        for (int64_t t = 1; t < 9; ++t) CHECK(first[r * 9 + t] == first[r * 9 + t - 1] + 1);  // contiguous windows
    auto state = a.state();
    auto expected = a.next();
    data::WindowSampler c(shard, 3, 9, 7);
    c.set_state(state);
    CHECK(max_abs_diff(c.next().cast<double>(), expected.cast<double>()) == 0);
    CHECK_THROWS_WITH_AS(data::WindowSampler(shard, 1, 101, 1), doctest::Contains("shorter than one window"), Error);
    auto [in, labels] = data::split_inputs_labels(first);
    CHECK(in.shape() == Shape{3, 8});
    CHECK(labels[0] == first[1]);
}

TEST_CASE("window sampler: the slices of N replicas are the batch of one process with N times the batch") {
    testing::TempDir dir("sampler-ranks");
    std::vector<uint32_t> ids(500);
    for (uint32_t i = 0; i < 500; ++i) ids[i] = i;
    data::write_token_shard(dir / "s.bin", ids, 500);
    data::TokenShard shard((dir / "s.bin").string());
    const int N = 3;
    data::WindowSampler whole(shard, 2 * N, 5, 11);
    std::vector<data::WindowSampler> ranks;
    for (int r = 0; r < N; ++r) ranks.emplace_back(shard, 2, 5, 11);
    for (int step = 0; step < 4; ++step) {
        const auto global = whole.next();
        for (int r = 0; r < N; ++r) {
            const auto part = ranks[std::size_t(r)].next(r, N);
            for (int64_t i = 0; i < part.numel(); ++i) REQUIRE(part[i] == global[r * part.numel() + i]);
            CHECK(ranks[std::size_t(r)].state() == whole.state());  // every replica's stream stays in step
        }
    }
    CHECK_THROWS_WITH_AS(ranks[0].next(3, 3), doctest::Contains("rank 3 of world 3 is out of range"), Error);
}

namespace token_shard_test {
// A shard written byte by byte (header as documented in data/token_shard.hpp), bypassing the writer.
std::string raw_shard(const std::vector<uint32_t>& ids, uint32_t width, uint64_t vocab) {
    std::string bytes(32, '\0');
    const uint32_t version = 1;
    const uint64_t count = ids.size();
    std::memcpy(&bytes[0], "BGTOKENS", 8);
    std::memcpy(&bytes[8], &version, 4);
    std::memcpy(&bytes[12], &width, 4);
    std::memcpy(&bytes[16], &count, 8);
    std::memcpy(&bytes[24], &vocab, 8);
    for (uint32_t id : ids) {
        char le[4];
        for (uint32_t b = 0; b < 4; ++b) le[b] = char((id >> (8 * b)) & 0xff);
        bytes.append(le, width);
    }
    return bytes;
}
}  // namespace token_shard_test

TEST_CASE("token ids at vocab_size - 1 are accepted and vocab_size is refused for 2- and 4-byte shards") {
    testing::TempDir dir("shard-boundary");
    // 65536 is the largest vocabulary stored with 2-byte ids (id 65535 is the largest uint16).
    struct Case {
        uint64_t vocab;
        uint32_t width;
    };
    for (Case c : {Case{300, 2}, Case{65536, 2}, Case{65537, 4}, Case{70000, 4}}) {
        CAPTURE(c.vocab);
        const uint32_t top = uint32_t(c.vocab - 1);
        // Writer: the top id round-trips, with the documented width (file size 32 + count * width).
        const std::vector<uint32_t> ok = {top, 0, top, 7};
        data::write_token_shard(dir / "ok.bin", ok, c.vocab);
        CHECK(std::filesystem::file_size(dir / "ok.bin") == 32 + ok.size() * c.width);
        data::TokenShard s((dir / "ok.bin").string());
        REQUIRE(s.size() == ok.size());
        for (std::size_t i = 0; i < ok.size(); ++i) CHECK(s[i] == ok[i]);
        // Writer: id == vocab at token 2 is refused, naming the token and the id.
        const uint32_t over = uint32_t(c.vocab);
        CHECK_THROWS_WITH_AS(
            data::write_token_shard(dir / "bad.bin", {1, top, over, 2}, c.vocab),
            doctest::Contains(
                ("token 2 has id " + std::to_string(over) + " >= vocab size " + std::to_string(c.vocab)).c_str()),
            Error);
        CHECK_FALSE(std::filesystem::exists(dir / "bad.bin"));
        // Reader, on files made by hand: the top id is accepted ...
        testing::write_bytes(dir / "raw-ok.bin", token_shard_test::raw_shard({0, top, top}, c.width, c.vocab));
        data::TokenShard raw((dir / "raw-ok.bin").string());
        CHECK(raw[1] == top);
        CHECK(raw[2] == top);
        // ... and id == vocab at token 3 is refused with its index and byte offset (32 + 3 * width).
        if (c.width == 2 && over > 65535) continue;  // not representable in 2 bytes
        testing::write_bytes(dir / "raw-bad.bin", token_shard_test::raw_shard({0, top, 5, over, 1}, c.width, c.vocab));
        const std::string what = "token 3 (byte offset " + std::to_string(32 + 3 * c.width) + ") has id " +
                                 std::to_string(over) + " >= vocab size " + std::to_string(c.vocab);
        CHECK_THROWS_WITH_AS(data::TokenShard((dir / "raw-bad.bin").string()), doctest::Contains(what.c_str()), Error);
        CHECK_THROWS_WITH_AS(data::TokenShard((dir / "raw-bad.bin").string()), doctest::Contains("raw-bad.bin"), Error);
    }
}
