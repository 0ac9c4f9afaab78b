#include "helpers.hpp"

#include <cmath>

using namespace bitgrad;

TEST_CASE("perplexity uses non-overlapping windows and equals exp(mean NLL) computed by hand") {
    testing::TempDir dir("ppl");
    std::vector<uint32_t> ids;
    for (uint32_t i = 0; i < 53; ++i) ids.push_back((i * 5 + 3) % 64);
    data::write_token_shard(dir / "v.bin", ids, 64);
    data::TokenShard shard((dir / "v.bin").string());
    Rng rng(1);
    nn::DenseLlama<double> model(nn::LlamaConfig::preset("tiny"), rng);
    const int64_t T = 8;  // (53 - 1) / 8 = 6 windows, 48 predicted tokens
    auto r = eval::perplexity(model, shard, T, /*batch=*/4);
    CHECK(r.tokens == 48);
    double nll = 0;
    for (int64_t w = 0; w < 6; ++w) {
        Tensor<int32_t> in({1, T});
        for (int64_t t = 0; t < T; ++t) in[t] = int32_t(ids[std::size_t(w * T + t)]);
        auto logits = model.forward(in).value();
        for (int64_t t = 0; t < T; ++t) {
            double m = -1e300, s = 0;
            for (int64_t c = 0; c < 64; ++c) m = std::max(m, logits[t * 64 + c]);
            for (int64_t c = 0; c < 64; ++c) s += std::exp(logits[t * 64 + c] - m);
            nll += m + std::log(s) - logits[t * 64 + ids[std::size_t(w * T + t + 1)]];
        }
    }
    CHECK(r.nll == doctest::Approx(nll / 48).epsilon(1e-12));
    CHECK(r.perplexity == doctest::Approx(std::exp(nll / 48)).epsilon(1e-12));
    CHECK(r.bits_per_byte(100.0) == doctest::Approx(nll / (std::log(2.0) * 100.0)).epsilon(1e-12));
}
