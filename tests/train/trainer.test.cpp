#include "helpers.hpp"

#include <cmath>

using namespace bitgrad;

namespace {
// A small synthetic corpus with structure to learn: a noisy repeating sequence over 64 ids.
void write_corpus(const std::filesystem::path& path, uint64_t seed) {
    Rng rng(seed);
    std::vector<uint32_t> ids;
    for (int i = 0; i < 4000; ++i)
        ids.push_back(rng.uniform() < 0.1 ? uint32_t(rng.uniform_int(64)) : uint32_t((i * 7) % 64));
    data::write_token_shard(path, ids, 64);
}

train::TrainOptions tiny_options(const std::filesystem::path& out, train::Loss loss) {
    train::TrainOptions o;
    o.steps = 6;
    o.batch = 2;
    o.seq_len = 16;
    o.grad_accum = 2;
    o.adamw.lr = 1e-2;
    o.min_lr = 1e-3;
    o.warmup_steps = 2;
    o.log_every = 1;
    o.step.loss = loss;
    o.out_dir = out.string();
    o.seed = 99;
    return o;
}

template <class Model>
std::vector<Tensor<float>> weights(const Model& m) {
    std::vector<Tensor<float>> out;
    for (auto& p : m.named_parameters()) out.push_back(p.var.value().clone());
    return out;
}
}  // namespace

TEST_CASE("k steps + save + resume + (N - k) steps equals N steps - bit for bit") {
    testing::TempDir dir("resume");
    write_corpus(dir / "train.bin", 1);
    data::TokenShard shard((dir / "train.bin").string());
    auto c = nn::LlamaConfig::preset("tiny");
    Rng teacher_rng(5);
    nn::DenseLlama<float> teacher(c, teacher_rng);

    Rng r1(1);
    nn::FbiLlama<float> straight(c, r1);
    train::Trainer<float, nn::FbiLlama<float>> a(straight, train::llama_teacher<float>(teacher), shard,
                                                 tiny_options(dir / "a", train::Loss::Mixed));
    REQUIRE(a.run());

    Rng r2(1);
    nn::FbiLlama<float> first_half(c, r2);
    train::Trainer<float, nn::FbiLlama<float>> b(first_half, train::llama_teacher<float>(teacher), shard,
                                                 tiny_options(dir / "b", train::Loss::Mixed));
    b.on_log = [](const train::StepLog& l) {
        if (l.step == 3) train::stop_requested() = true;
    };
    CHECK_FALSE(b.run());  // stopped after step 3, with a checkpoint
    train::stop_requested() = false;

    Rng r3(777);  // a different init: everything must come from the checkpoint
    nn::FbiLlama<float> resumed(c, r3);
    train::Trainer<float, nn::FbiLlama<float>> b2(resumed, train::llama_teacher<float>(teacher), shard,
                                                  tiny_options(dir / "b", train::Loss::Mixed));
    auto latest = io::latest_checkpoint(dir / "b" / "checkpoints");
    REQUIRE(latest);
    b2.resume(*latest);
    CHECK(b2.step() == 3);
    REQUIRE(b2.run());
    REQUIRE(a.losses().size() == b2.losses().size());
    for (std::size_t i = 0; i < a.losses().size(); ++i) CHECK(a.losses()[i] == b2.losses()[i]);
    auto wa = weights(straight), wb = weights(resumed);
    for (std::size_t i = 0; i < wa.size(); ++i) CHECK(max_abs_diff(wa[i], wb[i]) == 0);
}

TEST_CASE("validation runs every eval_every steps and after the last one - without changing the training") {
    testing::TempDir dir("validate");
    write_corpus(dir / "train.bin", 8);
    write_corpus(dir / "val.bin", 9);
    data::TokenShard shard((dir / "train.bin").string()), val((dir / "val.bin").string());
    auto c = nn::LlamaConfig::preset("tiny");
    auto o = tiny_options(dir / "plain", train::Loss::CE);
    o.steps = 5;
    o.log_every = 3;
    o.eval_every = 2;

    Rng r1(11);
    nn::FbiLlama<float> plain(c, r1);
    train::Trainer<float, nn::FbiLlama<float>>(plain, nullptr, shard, o).run();

    Rng r2(11);
    nn::FbiLlama<float> validated(c, r2);
    o.out_dir = (dir / "validated").string();
    train::Trainer<float, nn::FbiLlama<float>> t(validated, nullptr, shard, o);
    t.validate = [&](const nn::FbiLlama<float>& m) { return eval::perplexity(infer::FloatLlama(m), val, 16).nll; };
    std::vector<int64_t> val_steps, flip_steps, flip_spans;
    double last_val = 0;
    t.on_log = [&](const train::StepLog& l) {
        if (l.has_val_loss) val_steps.push_back(l.step), last_val = l.val_loss;
        if (l.has_flips) flip_steps.push_back(l.step), flip_spans.push_back(l.flip_steps);
    };
    REQUIRE(t.run());
    CHECK(val_steps == std::vector<int64_t>{2, 4, 5});
    CHECK(flip_steps == std::vector<int64_t>{3, 5});  // log steps only: validation does not split a flip interval
    CHECK(flip_spans == std::vector<int64_t>{3, 2});
    // The last validation loss is that of the trained model, computed again here.
    CHECK(last_val == eval::perplexity(infer::FloatLlama(validated), val, 16).nll);
    CHECK(std::isfinite(last_val));
    auto wa = weights(plain), wb = weights(validated);
    for (std::size_t i = 0; i < wa.size(); ++i) CHECK(max_abs_diff(wa[i], wb[i]) == 0);
}

TEST_CASE("resume refuses a different configuration") {
    testing::TempDir dir("resume-mismatch");
    write_corpus(dir / "train.bin", 2);
    data::TokenShard shard((dir / "train.bin").string());
    auto c = nn::LlamaConfig::preset("tiny");
    Rng rng(1);
    nn::DenseLlama<float> model(c, rng);
    auto o = tiny_options(dir / "run", train::Loss::CE);
    o.steps = 2;
    train::Trainer<float, nn::DenseLlama<float>> t(model, nullptr, shard, o);
    t.run();
    o.batch = 3;
    train::Trainer<float, nn::DenseLlama<float>> t2(model, nullptr, shard, o);
    CHECK_THROWS_WITH_AS(t2.resume(*io::latest_checkpoint(dir / "run" / "checkpoints")),
                         doctest::Contains("saved with batch 2 x seq_len 16 x grad_accum 2, now 3 x 16 x 2"), Error);
}

TEST_CASE("distillation drives the AD loss well below its starting value" * doctest::test_suite("slow")) {
    testing::TempDir dir("distill");
    write_corpus(dir / "train.bin", 3);
    data::TokenShard shard((dir / "train.bin").string());
    auto c = nn::LlamaConfig::preset("tiny");
    // A teacher that knows the corpus: trained briefly with CE.
    Rng tr(4);
    nn::DenseLlama<float> teacher(c, tr);
    auto to = tiny_options(dir / "teacher", train::Loss::CE);
    to.steps = 80;
    train::Trainer<float, nn::DenseLlama<float>>(teacher, nullptr, shard, to).run();

    Rng sr(5);
    nn::FbiLlama<float> student(c, sr);
    auto so = tiny_options(dir / "student", train::Loss::AD);
    so.steps = 80;
    train::Trainer<float, nn::FbiLlama<float>> t(student, train::llama_teacher<float>(teacher), shard, so);
    double first_flips = -1;
    t.on_log = [&](const train::StepLog& l) {
        if (l.step == 1) first_flips = l.flips.overall;
    };
    t.run();
    const auto& losses = t.losses();
    double start = losses[0], end = 0;
    for (std::size_t i = losses.size() - 5; i < losses.size(); ++i) end += losses[i] / 5;
    INFO("AD loss " << start << " -> " << end);
    CHECK(end < 0.6 * start);
    CHECK(first_flips > 0.0);  // binarized weights do flip
}

TEST_CASE("non-finite steps are skipped - counted and stop training after N in a row") {
    testing::TempDir dir("nan");
    write_corpus(dir / "train.bin", 6);
    data::TokenShard shard((dir / "train.bin").string());
    auto c = nn::LlamaConfig::preset("tiny");
    Rng rng(7);
    nn::DenseLlama<float> teacher(c, rng);
    teacher.lm_head.weight.value()[0] = std::nanf("");  // poisons every teacher distribution
    nn::FbiLlama<float> student(c, rng);
    const auto before = student.lm_head.weight.value().clone();
    auto o = tiny_options(dir / "run", train::Loss::AD);
    o.max_nonfinite = 3;
    train::Trainer<float, nn::FbiLlama<float>> t(student, train::llama_teacher<float>(teacher), shard, o);
    int skipped_logs = 0;
    t.on_log = [&](const train::StepLog& l) { skipped_logs += l.skipped; };
    CHECK_THROWS_WITH_AS(t.run(), doctest::Contains("3 optimizer steps in a row had a non-finite loss"), Error);
    CHECK(skipped_logs == 2);
    CHECK(max_abs_diff(student.lm_head.weight.value(), before) == 0);  // no update was applied
}

TEST_CASE("resume refuses a different grad_accum and a trainer_state.json with wrongly typed fields") {
    testing::TempDir dir("resume-state");
    write_corpus(dir / "train.bin", 2);
    data::TokenShard shard((dir / "train.bin").string());
    auto c = nn::LlamaConfig::preset("tiny");
    Rng rng(1);
    nn::DenseLlama<float> model(c, rng);
    auto o = tiny_options(dir / "run", train::Loss::CE);
    o.steps = 2;
    train::Trainer<float, nn::DenseLlama<float>>(model, nullptr, shard, o).run();
    const auto ckpt = *io::latest_checkpoint(dir / "run" / "checkpoints");
    auto accum = o;
    accum.grad_accum = 3;
    train::Trainer<float, nn::DenseLlama<float>> t(model, nullptr, shard, accum);
    CHECK_THROWS_WITH_AS(t.resume(ckpt), doctest::Contains("x grad_accum 2, now 2 x 16 x 3"), Error);
    const auto state_path = ckpt / "trainer_state.json";
    const auto original = load_json(state_path);
    auto damaged = [&](const char* key, nlohmann::json value) {
        auto j = original;
        j[key] = value;
        write_text_atomic(state_path, j.dump());
        train::Trainer<float, nn::DenseLlama<float>> r(model, nullptr, shard, o);
        CHECK_THROWS_WITH_AS(
            r.resume(ckpt),
            doctest::Contains((std::string("trainer_state.json: field \"") + key + "\" must be").c_str()), Error);
    };
    damaged("threads", "two");
    damaged("losses", nlohmann::json::object());
    damaged("sampler_rng", nlohmann::json::array({1, 2, 3}));
    damaged("step", -1.5);
    auto j = original;
    j.erase("optimizer_step");
    write_text_atomic(state_path, j.dump());
    train::Trainer<float, nn::DenseLlama<float>> r(model, nullptr, shard, o);
    CHECK_THROWS_WITH_AS(r.resume(ckpt), doctest::Contains("missing field \"optimizer_step\""), Error);
}

TEST_CASE("resuming a finished run saves nothing again") {
    testing::TempDir dir("resume-finished");
    write_corpus(dir / "train.bin", 3);
    data::TokenShard shard((dir / "train.bin").string());
    auto c = nn::LlamaConfig::preset("tiny");
    Rng rng(1);
    nn::DenseLlama<float> model(c, rng);
    auto o = tiny_options(dir / "run", train::Loss::CE);
    o.steps = 2;
    train::Trainer<float, nn::DenseLlama<float>>(model, nullptr, shard, o).run();
    const auto ckpt = *io::latest_checkpoint(dir / "run" / "checkpoints");
    const auto written = std::filesystem::last_write_time(ckpt / "model.safetensors");
    train::Trainer<float, nn::DenseLlama<float>> t(model, nullptr, shard, o);
    t.resume(ckpt);
    int saves = 0;
    t.on_event = [&](const std::string& e) { saves += e.find("saved checkpoint") != std::string::npos; };
    CHECK(t.run());
    CHECK(saves == 0);
    CHECK(std::filesystem::last_write_time(ckpt / "model.safetensors") == written);
}

TEST_CASE("a batch that cannot fit in memory is refused before anything is allocated") {
    testing::TempDir dir("huge-batch");
    write_corpus(dir / "train.bin", 4);
    data::TokenShard shard((dir / "train.bin").string());
    auto c = nn::LlamaConfig::preset("tiny");
    Rng rng(1);
    nn::DenseLlama<float> model(c, rng);
    auto o = tiny_options(dir / "run", train::Loss::CE);
    o.batch = 1000000000;
    using Trainer = train::Trainer<float, nn::DenseLlama<float>>;
    CHECK_THROWS_WITH_AS(Trainer(model, nullptr, shard, o),
                         doctest::Contains("training with batch 1000000000 x seq_len 16"), Error);
    o.batch = int64_t(1) << 40;
    o.seq_len = int64_t(1) << 40;
    CHECK_THROWS_WITH_AS(Trainer(model, nullptr, shard, o), doctest::Contains("overflows 64 bits"), Error);
}

TEST_CASE("resume: another schedule or thread count is refused unless the policy allows it - and reported") {
    testing::TempDir dir("resume-policy");
    write_corpus(dir / "train.bin", 5);
    data::TokenShard shard((dir / "train.bin").string());
    auto c = nn::LlamaConfig::preset("tiny");
    Rng rng(1);
    nn::DenseLlama<float> model(c, rng);
    auto o = tiny_options(dir / "run", train::Loss::CE);
    o.steps = 2;
    {
        testing::ThreadCount one(1);
        train::Trainer<float, nn::DenseLlama<float>>(model, nullptr, shard, o).run();
    }
    const auto ckpt = *io::latest_checkpoint(dir / "run" / "checkpoints");
    using Trainer = train::Trainer<float, nn::DenseLlama<float>>;

    // Longer run, shorter warm-up: the schedule of the next step changes (warm-up 2 -> cosine).
    auto longer = o;
    longer.steps = 10;
    longer.warmup_steps = 1;
    testing::ThreadCount one(1);
    Trainer refused(model, nullptr, shard, longer);
    CHECK_THROWS_WITH_AS(refused.resume(ckpt),
                         doctest::Contains("saved with steps 2, now 10; warmup_steps 2, now 1; the learning rate of "
                                           "step 3 changes from"),
                         Error);
    Trainer allowed(model, nullptr, shard, longer);
    const auto notes = allowed.resume(ckpt, {.allow_schedule_change = true});
    REQUIRE(notes.size() == 1);
    // Hand computation: saved schedule (peak 1e-2, floor 1e-3, warm-up 2, 2 steps) at step 3 is past
    // the end: the floor, 0.001. New one (warm-up 1 of 10): p = 2/9, 1e-3 + 9e-3 * (1 + cos(2 pi / 9)) / 2.
    const double expected = 1e-3 + 9e-3 * 0.5 * (1 + std::cos(3.14159265358979323846 * 2.0 / 9.0));
    char want[96];
    std::snprintf(want, sizeof want, "changes from 0.001 to %.3g", expected);
    CHECK(notes[0].find(want) != std::string::npos);
    CHECK(allowed.step() == 2);

    testing::ThreadCount two(2);
    Trainer threads(model, nullptr, shard, o);
    CHECK_THROWS_WITH_AS(threads.resume(ckpt),
                         doctest::Contains("saved with 1 threads, now running with 2; results would differ"), Error);
    Trainer inexact(model, nullptr, shard, o);
    const auto thread_notes = inexact.resume(ckpt, {.allow_thread_change = true});
    REQUIRE(thread_notes.size() == 1);
    CHECK(thread_notes[0].find("threads 1 -> 2: the run continues, but not bit for bit") != std::string::npos);
}
