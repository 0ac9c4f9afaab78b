#include "eval/tape_lm.hpp"
#include "helpers.hpp"

#include <cmath>

using namespace bitgrad;

namespace {
// By hand: the summed -log softmax of window w's first `scored` positions, each predicting the next
// token of ids (a window of T tokens from w * T, run alone through the 64-token tiny model).
template <class Id>
double hand_window_nll(const nn::DenseLlama<double>& model, const std::vector<Id>& ids, int64_t w, int64_t T,
                       int64_t scored) {
    Tensor<int32_t> in({1, T});
    for (int64_t t = 0; t < T; ++t) in[t] = int32_t(ids[std::size_t(w * T + t)]);
    NoGrad no_grad;
    const auto logits = model.forward(in).value();
    double nll = 0;
    for (int64_t t = 0; t < scored; ++t)
        nll += testing::hand_nll(logits.data() + t * 64, 64, ids[std::size_t(w * T + t + 1)]);
    return nll;
}
}  // namespace

TEST_CASE("perplexity uses non-overlapping windows and equals exp(mean NLL) computed by hand") {
    testing::TempDir dir("ppl");
    std::vector<uint32_t> ids;
    for (uint32_t i = 0; i < 53; ++i) ids.push_back((i * 5 + 3) % 64);
    data::write_token_shard(dir / "v.bin", ids, 64);
    data::TokenShard shard((dir / "v.bin").string());
    Rng rng(1);
    nn::DenseLlama<double> model(nn::LlamaConfig::preset("tiny"), rng);
    const int64_t T = 8;  // (53 - 1) / 8 = 6 windows, 48 predicted tokens
    const testing::TapeLM lm(model);
    auto r = eval::perplexity(lm, shard, T);
    CHECK(r.tokens == 48);
    CHECK(lm.calls == 6);  // one prefill a window
    double nll = 0;
    for (int64_t w = 0; w < 6; ++w) nll += hand_window_nll(model, ids, w, T, /*scored=*/T);  // T + 1 tokens a window
    CHECK(r.nll == doctest::Approx(nll / 48).epsilon(1e-12));
    CHECK(r.perplexity == doctest::Approx(std::exp(nll / 48)).epsilon(1e-12));
    CHECK(r.bits_per_byte(100.0) == doctest::Approx(nll / (std::log(2.0) * 100.0)).epsilon(1e-12));
}

TEST_CASE("paper protocol: windows of T tokens - the T - 1 next tokens of each scored - the rest dropped") {
    std::vector<int32_t> ids;
    for (int32_t i = 0; i < 53; ++i) ids.push_back((i * 7 + 1) % 64);
    Rng rng(2);
    nn::DenseLlama<double> model(nn::LlamaConfig::preset("tiny"), rng);
    const int64_t T = 8;  // 53 / 8 = 6 windows (5 tokens dropped), 7 scored in each
    const testing::TapeLM lm(model);
    const auto r = eval::paper_perplexity(lm, ids, T);
    CHECK(r.tokens == 42);
    CHECK(lm.calls == 6);
    double nll = 0;
    for (int64_t w = 0; w < 6; ++w) nll += hand_window_nll(model, ids, w, T, /*scored=*/T - 1);
    CHECK(r.nll == doctest::Approx(nll / 42).epsilon(1e-12));
    CHECK(r.perplexity == doctest::Approx(std::exp(nll / 42)).epsilon(1e-12));
    int64_t reported = 0;
    CHECK(eval::paper_perplexity(lm, ids, T, [&](int64_t done, int64_t of) { reported = done * 100 + of; }).nll ==
          r.nll);
    CHECK(reported == 606);  // the last call: 6 of 6 windows

    // Refusals name the problem.
    std::vector<int32_t> bad = ids;
    bad[17] = 64;
    CHECK_THROWS_WITH_AS(eval::paper_perplexity(lm, bad, T), doctest::Contains("token 17 is 64"), Error);
    CHECK_THROWS_WITH_AS(eval::paper_perplexity(lm, std::vector<int32_t>(5, 1), T),
                         doctest::Contains("fewer than one window of 8"), Error);
    CHECK_THROWS_WITH_AS(eval::paper_perplexity(lm, ids, 65), doctest::Contains("max_position_embeddings = 64"), Error);
}

TEST_CASE("paper protocol through the packed decoder matches the float model - and the float decoder the tape model") {
    std::vector<int32_t> ids;
    for (int32_t i = 0; i < 100; ++i) ids.push_back((i * 11 + 5) % 64);
    Rng rng(3);
    nn::FbiLlama<float> model(nn::LlamaConfig::preset("tiny"), rng);
    const infer::PackedLlama packed(model);
    const auto tape = eval::paper_perplexity(testing::TapeLM(model), ids, 16),
               dense = eval::paper_perplexity(infer::FloatLlama(model), ids, 16),
               fast = eval::paper_perplexity(packed, ids, 16);
    CHECK(dense.tokens == tape.tokens);
    // The inference decoder's kernels and the tape's ops: float rounding apart.
    CHECK(dense.nll == doctest::Approx(tape.nll).epsilon(1e-5));
    CHECK(fast.tokens == dense.tokens);
    CHECK(fast.tokens == 6 * 15);
    // fp16 alpha/beta, int8 tables and int8 activations (the packed defaults): close, not equal.
    CHECK(fast.nll == doctest::Approx(dense.nll).epsilon(2e-3));
}

TEST_CASE("perplexity refuses a shard tokenized with a larger vocabulary than the model's") {
    testing::TempDir dir("ppl-vocab");
    data::write_token_shard(dir / "v.bin", {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 65);
    data::TokenShard shard((dir / "v.bin").string());
    Rng rng(1);
    nn::DenseLlama<float> model(nn::LlamaConfig::preset("tiny"), rng);  // vocab 64
    CHECK_THROWS_WITH_AS(eval::perplexity(infer::FloatLlama(model), shard, 4),
                         doctest::Contains("v.bin: vocabulary of 65 tokens, larger than the model's 64"), Error);
}

TEST_CASE("unigram baseline equals add-one smoothed frequencies computed by hand") {
    testing::TempDir dir("unigram");
    data::write_token_shard(dir / "train.bin", {0, 1, 1, 2, 2, 2}, 4);
    data::write_token_shard(dir / "val.bin", {0, 2, 3, 1}, 4);
    data::TokenShard train((dir / "train.bin").string()), val((dir / "val.bin").string());
    // counts + 1: {2, 3, 4, 1} over 6 + 4 = 10; predicted tokens 2, 3, 1.
    const double nll = -(std::log(0.4) + std::log(0.1) + std::log(0.3)) / 3;
    auto r = eval::unigram_perplexity(train, val);
    CHECK(r.tokens == 3);
    CHECK(r.nll == doctest::Approx(nll).epsilon(1e-14));
    CHECK(r.perplexity == doctest::Approx(std::exp(nll)).epsilon(1e-14));
    for (std::vector<uint32_t> tiny : {std::vector<uint32_t>{}, std::vector<uint32_t>{1}}) {
        data::write_token_shard(dir / "tiny.bin", tiny, 4);
        data::TokenShard t((dir / "tiny.bin").string());
        CHECK_THROWS_WITH_AS(eval::unigram_perplexity(train, t),
                             doctest::Contains("the unigram baseline needs at least 2"), Error);
    }
}
