#include "helpers.hpp"

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
    CHECK_THROWS_WITH_AS(data::write_token_shard(dir / "b.bin", {1, 300}, 300), doctest::Contains("token 1 has id 300"), Error);
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

TEST_CASE("window sampler is seeded, resumable, and refuses a too-short shard") {
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
