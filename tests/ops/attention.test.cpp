#include "helpers.hpp"

using namespace bitgrad;
using V = std::vector<Var<double>>;

// Attention composed from primitive ops: transpose to [B, H, T, D], Q K^T / sqrt(D) + mask,
// softmax, times V, transpose back. k and v already have H heads (MHA).
static Var<double> composed_attention(const Var<double>& q, const Var<double>& k, const Var<double>& v) {
    const int64_t T = q.dim(1), S = k.dim(1), D = q.dim(3);
    Tensor<double> mask = Tensor<double>::zeros({T, S});
    for (int64_t t = 0; t < T; ++t)
        for (int64_t s = S - T + t + 1; s < S; ++s) mask.at({t, s}) = -1e30;
    auto qh = transpose(q, 1, 2), kh = transpose(k, 1, 2), vh = transpose(v, 1, 2);
    auto scores = add(scale(matmul(qh, transpose(kh, 2, 3)), 1.0 / std::sqrt(double(D))), Var<double>(mask));
    return transpose(matmul(softmax(scores), vh), 1, 2);
}

// k [B, S, Hkv, D] -> [B, S, H, D], each kv head repeated for its H/Hkv query heads.
static Tensor<double> repeat_kv(const Tensor<double>& k, int64_t H) {
    const int64_t B = k.dim(0), S = k.dim(1), Hkv = k.dim(2), D = k.dim(3);
    Tensor<double> out({B, S, H, D});
    for (int64_t b = 0; b < B; ++b)
        for (int64_t s = 0; s < S; ++s)
            for (int64_t h = 0; h < H; ++h)
                for (int64_t d = 0; d < D; ++d) out.at({b, s, h, d}) = k.at({b, s, h / (H / Hkv), d});
    return out;
}

TEST_CASE("fused attention gradcheck: MHA - GQA - non-causal and more keys than queries") {
    struct Case {
        int64_t B, T, S, H, Hkv, D;
        bool causal;
    };
    for (Case c : {Case{2, 5, 5, 2, 2, 4, true}, Case{1, 6, 6, 4, 2, 4, true}, Case{1, 4, 4, 3, 1, 2, true},
                   Case{2, 3, 5, 2, 1, 4, false}, Case{1, 3, 7, 2, 2, 4, true}, Case{2, 1, 6, 4, 2, 4, true}}) {
        CAPTURE(c.H);
        CAPTURE(c.Hkv);
        CAPTURE(c.S);
        auto q = testing::randn({c.B, c.T, c.H, c.D}, 1), k = testing::randn({c.B, c.S, c.Hkv, c.D}, 2),
             v = testing::randn({c.B, c.S, c.Hkv, c.D}, 3);
        CHECK_GRADCHECK([&](const V& in) { return attention(in[0], in[1], in[2], c.causal); }, {q, k, v});
    }
}

TEST_CASE("fused attention equals the composition of primitive ops - values and gradients - over block edges") {
    // T = 70 crosses the 64-row query block boundary of the kernel.
    for (int64_t T : {5, 70}) {
        CAPTURE(T);
        auto q = testing::randn({2, T, 2, 8}, 4), k = testing::randn({2, T, 2, 8}, 5),
             v = testing::randn({2, T, 2, 8}, 6);
        auto r = testing::randn({2, T, 2, 8}, 7);
        Var<double> q1(q.clone(), true), k1(k.clone(), true), v1(v.clone(), true);
        Var<double> q2(q.clone(), true), k2(k.clone(), true), v2(v.clone(), true);
        Tape tape;
        auto fused = attention(q1, k1, v1);
        auto composed = composed_attention(q2, k2, v2);
        CHECK(max_abs_diff(fused.value(), composed.value()) < 1e-12);
        backward(sum(mul(add(fused, composed), Var<double>(r))));
        CHECK(max_abs_diff(q1.grad(), q2.grad()) < 1e-11);
        CHECK(max_abs_diff(k1.grad(), k2.grad()) < 1e-11);
        CHECK(max_abs_diff(v1.grad(), v2.grad()) < 1e-11);
    }
}

TEST_CASE("one query row after a cache (the decode path) equals the composition of primitive ops - GQA") {
    // One query against S = 1 key, an odd count and more than a block (a decode step's shapes).
    for (int64_t S : {1, 9, 70}) {
        CAPTURE(S);
        auto q = testing::randn({2, 1, 4, 8}, 14), k = testing::randn({2, S, 2, 8}, 15),
             v = testing::randn({2, S, 2, 8}, 16);
        const auto fused = attention(Var<double>(q), Var<double>(k), Var<double>(v)).value();
        const auto composed =
            composed_attention(Var<double>(q), Var<double>(repeat_kv(k, 4)), Var<double>(repeat_kv(v, 4))).value();
        CHECK(max_abs_diff(fused, composed) < 1e-12);
    }
}

TEST_CASE("GQA equals MHA with each kv head repeated") {
    auto q = testing::randn({1, 6, 4, 4}, 8), k = testing::randn({1, 6, 2, 4}, 9), v = testing::randn({1, 6, 2, 4}, 10);
    auto gqa = attention(Var<double>(q), Var<double>(k), Var<double>(v));
    auto mha = attention(Var<double>(q), Var<double>(repeat_kv(k, 4)), Var<double>(repeat_kv(v, 4)));
    CHECK(max_abs_diff(gqa.value(), mha.value()) < 1e-13);
}

TEST_CASE("attention is causal and rejects bad shapes") {
    auto q = testing::randn({1, 6, 2, 4}, 11), k = testing::randn({1, 6, 2, 4}, 12),
         v = testing::randn({1, 6, 2, 4}, 13);
    auto before = attention(Var<double>(q), Var<double>(k), Var<double>(v)).value();
    for (int64_t j = 0; j < 8; ++j) {
        k[5 * 8 + j] += 1.0;
        v[5 * 8 + j] -= 2.0;
    }  // change the last position
    auto after = attention(Var<double>(q), Var<double>(k), Var<double>(v)).value();
    for (int64_t i = 0; i < 5 * 8; ++i) CHECK(before[i] == after[i]);
    CHECK(max_abs_diff(before, after) > 1e-3);
    CHECK_THROWS_WITH_AS(attention(Var<double>(q), Var<double>(testing::randn({1, 6, 3, 4}, 1)),
                                   Var<double>(testing::randn({1, 6, 3, 4}, 1))),
                         doctest::Contains("not a multiple"), Error);
}
