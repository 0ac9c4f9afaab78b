#include "helpers.hpp"

using namespace bitgrad;

TEST_CASE("Tensor storage is 64-byte aligned - row-major and views share it") {
    for (int64_t n : {1, 7, 63, 65, 100000}) {
        Tensor<float> t(Shape{n});
        CHECK(reinterpret_cast<uintptr_t>(t.data()) % 64 == 0);
    }
    Tensor<float> t = Tensor<float>::from({2, 3}, {0, 1, 2, 3, 4, 5});
    CHECK(t.at({1, 2}) == 5);
    Tensor<float> r = t.reshape({3, -1});
    CHECK(r.shape() == Shape{3, 2});
    CHECK(r.shares_storage(t));
    r.at({2, 1}) = 42;  // a view: writes show through
    CHECK(t.at({1, 2}) == 42);
    Tensor<float> row = t.select(1);
    CHECK(row.shape() == Shape{3});
    CHECK(row[0] == 3);
    Tensor<float> c = t.clone();
    c[0] = -1;
    CHECK(t[0] == 0);
    CHECK(t.matrix()(1, 0) == 3);
}

TEST_CASE("Tensor reports bad shapes and indices with the values involved") {
    Tensor<float> t = Tensor<float>::zeros({2, 3});
    CHECK_THROWS_WITH_AS(t.reshape({4, 2}), doctest::Contains("[2, 3]"), Error);
    CHECK_THROWS_AS(t.reshape({-1, -1}), Error);
    CHECK_THROWS_WITH_AS(t.at({2, 0}), doctest::Contains("out of range"), Error);
    CHECK_THROWS_AS(t.slice(1, 3), Error);
    CHECK_THROWS_AS(Tensor<float>::from({2}, {1, 2, 3}), Error);
    CHECK_THROWS_AS(t.item(), Error);
    CHECK_THROWS_AS((Shape{1, 2, 3, 4, 5, 6, 7}), Error);
}

TEST_CASE("Shape supports up to 6 dims and negative axes") {
    Shape s{2, 3, 4, 5, 6, 7};
    CHECK(s.numel() == 5040);
    CHECK(s[-1] == 7);
    CHECK(s.rows() == 720);
    CHECK(s.without(1) == Shape{2, 4, 5, 6, 7});
    CHECK(Shape{}.numel() == 1);
}

TEST_CASE("buffer cache reuses freed large blocks") {
    trim_buffer_cache();
    const float* first;
    {
        Tensor<float> a(Shape{1 << 20});
        first = a.data();
    }
    CHECK(buffer_cache_bytes() >= (std::size_t(4) << 20));
    Tensor<float> b(Shape{(1 << 20) - 5});  // same size class
    CHECK(b.data() == first);
    CHECK(detail::BufferCache::size_class((std::size_t(1) << 22) + 1) <= (std::size_t(1) << 22) * 9 / 8);
}

TEST_CASE("live tensor bytes are counted and a reused block may be larger than asked for") {
    trim_buffer_cache();
    const std::size_t live0 = tensor_bytes();
    const float* big_block;
    {
        Tensor<float> a(Shape{1 << 20}), b(Shape{1 << 19});  // 4 MiB + 2 MiB, both size classes exact
        big_block = a.data();
        CHECK(tensor_bytes() == live0 + (std::size_t(6) << 20));
        CHECK(peak_tensor_bytes() >= live0 + (std::size_t(6) << 20));
        a.fill(7.f);
    }
    CHECK(tensor_bytes() == live0);
    CHECK(buffer_cache_bytes() == (std::size_t(6) << 20));
    {
        // 3 MiB: no 3 MiB block cached; the 4 MiB one is within 1.5x, the 2 MiB one too small.
        auto g = Tensor<float>::zeros_in_reused_block(Shape{3 << 18});
        CHECK(g.data() == big_block);
        CHECK(tensor_bytes() == live0 + (std::size_t(4) << 20));  // counted at the block's size
        CHECK(buffer_cache_bytes() == (std::size_t(2) << 20));
        CHECK(g[0] == 0.f);
        CHECK(g[(3 << 18) - 1] == 0.f);
        // An ordinary tensor of 3 MiB does not take a larger block: a fresh one.
        Tensor<float> exact(Shape{3 << 18});
        CHECK(buffer_cache_bytes() == (std::size_t(2) << 20));
        // 1 MiB: the cached 2 MiB block is more than 1.5x, so it stays cached.
        auto small = Tensor<float>::zeros_in_reused_block(Shape{1 << 18});
        CHECK(buffer_cache_bytes() == (std::size_t(2) << 20));
    }
    CHECK(tensor_bytes() == live0);
    {
        Tensor<float> again(Shape{1 << 20});  // the 4 MiB block went back under its own class
        CHECK(again.data() == big_block);
    }
    reset_peak_tensor_bytes();
    CHECK(peak_tensor_bytes() == live0);
    trim_buffer_cache();
    CHECK(buffer_cache_bytes() == 0);
}

TEST_CASE("a tensor whose byte count overflows is refused before allocation") {
    const int64_t big = int64_t(1) << 40;
    CHECK_THROWS_WITH_AS(Tensor<float>(Shape{big, big}),
                         doctest::Contains("shape [1099511627776, 1099511627776] needs more than 2^63 bytes"), Error);
    CHECK_THROWS_WITH_AS(Tensor<double>(Shape{int64_t(1) << 61}), doctest::Contains("needs more than 2^63 bytes"),
                         Error);
}

TEST_CASE("checked arithmetic and the memory requirement name what does not fit") {
    CHECK(checked_mul(3, 5, "x") == 15);
    CHECK_THROWS_WITH_AS(checked_mul(int64_t(1) << 40, int64_t(1) << 40, "layers"),
                         doctest::Contains("layers: 1099511627776 x 1099511627776 overflows"), Error);
    CHECK_THROWS_WITH_AS(checked_add(INT64_MAX, 1, "sum"), doctest::Contains("sum:"), Error);
    CHECK(available_memory_bytes() > 0);
    CHECK_THROWS_WITH_AS(require_memory(UINT64_MAX, "a huge thing"), doctest::Contains("a huge thing needs"), Error);
    require_memory(1024, "a small thing");  // does not throw
}
