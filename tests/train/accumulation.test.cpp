// Gradient accumulation: grad_accum 2 x batch 2 is the same optimisation as grad_accum 1 x batch 4.
// With the same seed the window sampler draws the same 4 windows in the same order (the first
// micro-batch takes windows 0-1, the second 2-3), every micro-batch has the same token count, and
// each micro-batch's loss is scaled by 1/grad_accum before backward, so the mean loss, the gradient
// and hence the weights agree up to float summation order.
//
// Tolerances (float): losses and gradient norms rel 1e-5 (observed ~1e-7); weights, per tensor,
// max |a - b| <= 3e-4 * max |w_final - w_initial|, the distance training moved that tensor
// (observed up to 2e-5). AdamW's eps is raised to 1e-4 for these runs: with eps 1e-8 a gradient
// element that is ~0 up to rounding is divided by its own rounding noise, which turns float noise
// into weight differences of a sizeable fraction of lr; eps 1e-4 bounds that amplification, and
// also makes the update depend on the gradient's scale.
// A factor-2 gradient error (a dropped 1/grad_accum) doubles the logged pre-clip gradient norm,
// 1e5 times what the norm tolerance allows; with eps 1e-4 it also moves most tensors' weights far
// beyond their tolerance (checked by removing the scale from the trainer by hand).
#include "helpers.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

using namespace bitgrad;

namespace accumulation_test {

void write_corpus(const std::filesystem::path& path, uint64_t seed) {
    Rng rng(seed);
    std::vector<uint32_t> ids;
    for (int i = 0; i < 3000; ++i)
        ids.push_back(rng.uniform() < 0.2 ? uint32_t(rng.uniform_int(64)) : uint32_t((i * 5) % 64));
    data::write_token_shard(path, ids, 64);
}

train::TrainOptions options(const std::filesystem::path& out, train::Loss loss, int64_t batch, int64_t accum) {
    train::TrainOptions o;
    o.steps = 4;
    o.batch = batch;
    o.grad_accum = accum;
    o.seq_len = 12;
    o.adamw.lr = 1e-2;
    o.adamw.eps = 1e-4;  // see the tolerance note at the top
    o.min_lr = 1e-3;
    o.warmup_steps = 1;
    o.clip_norm = 0;  // no clipping: the update sees the raw accumulated gradient
    o.log_every = 1;
    o.step.loss = loss;
    o.out_dir = out.string();
    o.seed = 31;
    return o;
}

struct Run {
    std::vector<double> losses, grad_norms;
    std::vector<Tensor<float>> weights;
    std::vector<double> moved;  // max |w_final - w_initial| per tensor
};

Run run(const data::TokenShard& shard, const nn::DenseLlama<float>* teacher, const train::TrainOptions& o) {
    Rng rng(11);  // the same initial student in every run
    nn::FbiLlama<float> student(nn::LlamaConfig::preset("tiny"), rng);
    std::vector<Tensor<float>> initial;
    for (auto& p : student.named_parameters()) initial.push_back(p.var.value().clone());
    train::Trainer<float, nn::FbiLlama<float>> t(
        student, teacher ? train::llama_teacher<float>(*teacher) : train::Teacher<float>(), shard, o);
    Run r;
    t.on_log = [&](const train::StepLog& l) { r.grad_norms.push_back(l.grad_norm); };
    REQUIRE(t.run());
    r.losses = t.losses();
    for (auto& p : student.named_parameters()) {
        r.weights.push_back(p.var.value().clone());
        r.moved.push_back(max_abs_diff(p.var.value(), initial[r.weights.size() - 1]));
    }
    return r;
}

void check_same_run(const Run& accum, const Run& big) {
    REQUIRE(accum.losses.size() == 4);
    REQUIRE(big.losses.size() == 4);
    REQUIRE(accum.grad_norms.size() == 4);
    REQUIRE(big.grad_norms.size() == 4);
    for (std::size_t s = 0; s < 4; ++s) {
        CAPTURE(s);
        CHECK(accum.losses[s] == doctest::Approx(big.losses[s]).epsilon(1e-5));
        CHECK(big.grad_norms[s] > 0);
        CHECK(accum.grad_norms[s] == doctest::Approx(big.grad_norms[s]).epsilon(1e-5));
        // The alternatives a broken accumulation would produce are far outside that band.
        CHECK(std::abs(accum.grad_norms[s] / big.grad_norms[s] - 2.0) > 0.5);
        CHECK(std::abs(accum.grad_norms[s] / big.grad_norms[s] - 0.5) > 0.25);
    }
    CHECK(big.losses.back() != big.losses.front());  // the weights did change between steps
    REQUIRE(accum.weights.size() == big.weights.size());
    for (std::size_t k = 0; k < big.weights.size(); ++k) {
        CAPTURE(k);
        CHECK(big.moved[k] > 0);
        CHECK(max_abs_diff(accum.weights[k], big.weights[k]) <= 3e-4 * big.moved[k]);
    }
}

}  // namespace accumulation_test

TEST_CASE("grad_accum 2 x batch 2 equals grad_accum 1 x batch 4 with CE") {
    testing::TempDir dir("accum-ce");
    accumulation_test::write_corpus(dir / "train.bin", 1);
    data::TokenShard shard((dir / "train.bin").string());
    auto accum = accumulation_test::run(shard, nullptr, accumulation_test::options(dir / "a", train::Loss::CE, 2, 2));
    auto big = accumulation_test::run(shard, nullptr, accumulation_test::options(dir / "b", train::Loss::CE, 4, 1));
    accumulation_test::check_same_run(accum, big);

    // The first loss is the CE of the initial model on the sampler's first 4 windows, computed here
    // without the trainer: both runs really saw those windows.
    Rng rng(11);
    nn::FbiLlama<float> model(nn::LlamaConfig::preset("tiny"), rng);
    data::WindowSampler sampler(shard, 4, 13, 31);
    auto [inputs, labels] = data::split_inputs_labels(sampler.next());
    auto logits = model.forward(inputs).value();
    double expected = 0;
    for (int64_t n = 0; n < 4 * 12; ++n) {
        const float* row = logits.data() + n * 64;
        double m = row[0], s = 0;
        for (int64_t c = 0; c < 64; ++c) m = std::max(m, double(row[c]));
        for (int64_t c = 0; c < 64; ++c) s += std::exp(double(row[c]) - m);
        expected += (m + std::log(s) - double(row[labels[n]])) / 48.0;
    }
    CHECK(big.losses[0] == doctest::Approx(expected).epsilon(1e-5));
    CHECK(accum.losses[0] == doctest::Approx(expected).epsilon(1e-5));
}

TEST_CASE("grad_accum 2 x batch 2 equals grad_accum 1 x batch 4 with AD distillation") {
    testing::TempDir dir("accum-ad");
    accumulation_test::write_corpus(dir / "train.bin", 2);
    data::TokenShard shard((dir / "train.bin").string());
    Rng teacher_rng(5);
    auto tc = nn::LlamaConfig::preset("tiny");
    tc.initializer_range = 0.2;  // a teacher with a peaked, non-uniform distribution
    nn::DenseLlama<float> teacher(tc, teacher_rng);
    auto accum = accumulation_test::run(shard, &teacher, accumulation_test::options(dir / "a", train::Loss::AD, 2, 2));
    auto big = accumulation_test::run(shard, &teacher, accumulation_test::options(dir / "b", train::Loss::AD, 4, 1));
    accumulation_test::check_same_run(accum, big);
}
