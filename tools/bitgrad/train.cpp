// train and distill: one training loop (train::Trainer) around a student built from the model
// options, with cross-entropy (train) or a teacher's logits (distill: AD or mixed loss).
#include <unistd.h>

#include <cmath>
#include <csignal>
#include <cstdio>
#include <optional>

#include <bitgrad/core/atomic_file.hpp>
#include <bitgrad/core/parallel.hpp>
#include <bitgrad/data/dataset_info.hpp>
#include <bitgrad/data/token_shard.hpp>
#include <bitgrad/eval/perplexity.hpp>
#include <bitgrad/infer/decoder.hpp>
#include <bitgrad/io/checkpoint.hpp>
#include <bitgrad/nn/llama.hpp>
#include <bitgrad/train/run_directory.hpp>
#include <bitgrad/train/teacher.hpp>
#include <bitgrad/train/trainer.hpp>

#include "commands.hpp"
#include "options.hpp"

namespace bitgrad::cli {

static void on_sigint(int) { train::stop_requested() = true; }

// --precision: auto (nullopt: bf16 where the CPU has AVX512_BF16), else the library's names.
static const EnumOption<std::optional<Precision>> kPrecision = [] {
    EnumOption<std::optional<Precision>> o{"precision", {{"auto", std::nullopt}}};
    for (Precision p : {Precision::BF16, Precision::FP32}) o.choices.emplace_back(precision_name(p), p);
    return o;
}();

// The training options as the Trainer takes them (the loss and its temperature aside).
static train::TrainOptions train_options_of(const cxxopts::ParseResult& r, const fs::path& out) {
    train::TrainOptions opt;
    opt.steps = positive<int64_t>(r, "steps");
    opt.batch = positive<int64_t>(r, "batch");
    opt.seq_len = positive<int64_t>(r, "seq");
    opt.grad_accum = positive<int64_t>(r, "accum");
    opt.adamw.lr = positive<double>(r, "lr");
    opt.adamw.weight_decay = non_negative<double>(r, "wd");
    opt.min_lr = non_negative<double>(r, "min-lr");
    opt.warmup_steps = non_negative<int64_t>(r, "warmup");
    opt.clip_norm = non_negative<double>(r, "clip");
    opt.log_every = positive<int64_t>(r, "log-every");
    opt.eval_every = r["eval-every"].as<int64_t>() > 0 ? r["eval-every"].as<int64_t>() : opt.steps;
    opt.save_every = non_negative<int64_t>(r, "save-every");
    opt.keep_last = non_negative<int>(r, "keep");
    opt.seed = r["seed"].as<uint64_t>();
    opt.step.precision = kPrecision(r).value_or(default_precision());
    opt.out_dir = out.string();
    return opt;
}

// One line of the log: the terminal's line is rewritten, a pipe gets one line a log step.
static void print_step(const train::StepLog& l, int64_t steps, bool tty) {
    char line[256];
    std::snprintf(line, sizeof line, "step %6lld/%lld  loss %.4f  lr %.2e  |g| %.3f  %.0f tok/s  ETA %4.0fs%s",
                  (long long)l.step, (long long)steps, l.loss, l.lr, l.grad_norm, l.tokens_per_s, l.eta_s,
                  l.skipped ? "  (skipped: non-finite)" : "");
    std::string s = line;
    if (l.has_val_loss) {
        char v[48];
        std::snprintf(v, sizeof v, "  val %.4f (ppl %.1f)", l.val_loss, std::exp(l.val_loss));
        s += v;
    }
    if (l.has_flips) {
        char f[48];
        std::snprintf(f, sizeof f, "  flips %.4f%%", 100 * l.flips.overall);
        s += f;
    }
    if (tty)
        std::printf("\r%s\033[K%s", s.c_str(), l.step == steps ? "\n" : "");
    else
        std::printf("%s\n", s.c_str());
    std::fflush(stdout);
}

template <class Student>
static int run_training(const cxxopts::ParseResult& r, nn::LlamaConfig config, train::Teacher<float> teacher,
                        train::Loss loss) {
    const fs::path data_dir = existing_dir(r, "data"), out = output_dir(r, "out");
    data::TokenShard shard((data_dir / "train.bin").string());
    BITGRAD_CHECK(int64_t(shard.vocab_size()) == config.vocab_size,
                  "model vocab " << config.vocab_size << " != data vocab " << shard.vocab_size());
    train::TrainOptions opt = train_options_of(r, out);
    opt.step.loss = loss;
    if (loss != train::Loss::CE) opt.step.temperature = positive<double>(r, "ad-temperature");
    if (r["eval-every"].as<int64_t>() < 0 || r["eval-windows"].as<int64_t>() < 0)
        throw UsageError("--eval-every and --eval-windows must be >= 0");
    if (r.count("resume") && r.count("overwrite")) throw UsageError("--resume and --overwrite exclude each other");
    const bool lead = job().lead();
    if (opt.warmup_steps > opt.steps && lead)
        std::fprintf(stderr,
                     "warning: --warmup %lld is longer than the run (--steps %lld): the learning rate never "
                     "reaches --lr\n",
                     (long long)opt.warmup_steps, (long long)opt.steps);
    // One run a directory (train/run_directory.hpp): refused before any work when it holds another.
    const train::RunStart start = r.count("resume")      ? train::RunStart::Resume
                                  : r.count("overwrite") ? train::RunStart::Overwrite
                                                         : train::RunStart::Fresh;
    const train::RunDirectory run_dir{out};
    bool holds_run = start == train::RunStart::Fresh && !run_dir.leftovers().empty();
    if (job().data_parallel.distributed()) {
        // Every replica checks before replica 0 writes anything, and all agree: a replica that looked
        // after replica 0 had started the run refused it on its own, and replica 0 waited for it.
        double flag = holds_run ? 1 : 0;
        job().data_parallel.sum(&flag, 1);
        holds_run = flag > 0;
    }
    if (holds_run) {
        std::string left;
        for (const auto& l : run_dir.leftovers()) left += (left.empty() ? "" : ", ") + l;
        if (left.empty()) left = "seen by another replica";
        throw UsageError("--out " + out.string() + " holds a training run (" + left +
                         "): continue it with --resume, or start over with --overwrite (deletes them)");
    }

    Rng init(opt.seed);
    Student student(config, init);
    train::Trainer<float, Student> trainer(student, std::move(teacher), shard, opt);
    trainer.data_parallel = job().data_parallel;
    std::optional<data::TokenShard> val;
    std::error_code ec;
    if (fs::exists(data_dir / "val.bin", ec)) val.emplace((data_dir / "val.bin").string());
    if (val && val->size() > 1 && lead) {  // replica 0 validates (the replicas hold the same weights)
        const int64_t val_seq = std::min<int64_t>(opt.seq_len, int64_t(val->size()) - 1),
                      windows = r["eval-windows"].as<int64_t>();
        trainer.validate = [&val, val_seq, windows](const Student& s) {
            return eval::perplexity(infer::FloatLlama(s), *val, val_seq, windows).nll;
        };
    } else if (lead) {
        std::printf("no validation tokens in %s: no validation loss\n", (data_dir / "val.bin").c_str());
    }
    // Only replica 0 changes the directory; the others read the checkpoint it names.
    auto warn = [lead](const std::string& w) {
        if (lead) std::fprintf(stderr, "warning: %s\n", w.c_str());
    };
    const train::OpenedRun opened =
        lead ? train::open_run_directory(out, start, warn)
             : train::OpenedRun{
                   run_dir,
                   start == train::RunStart::Resume ? io::latest_checkpoint(run_dir.checkpoints()) : std::nullopt,
                   {}};
    for (const auto& note : opened.notes) std::printf("%s\n", note.c_str());
    if (opened.checkpoint) {
        const train::ResumePolicy policy{r.count("allow-inexact-resume") > 0, r.count("change-schedule") > 0};
        const auto changes = trainer.resume(*opened.checkpoint, policy);
        if (lead) {
            std::printf("resumed from %s at step %lld\n", opened.checkpoint->c_str(), (long long)trainer.step());
            for (const auto& c : changes) std::printf("resume: %s\n", c.c_str());
        }
    }
    const int world = job().data_parallel.world_size;
    std::signal(SIGINT, on_sigint);
    std::signal(SIGTERM, on_sigint);  // mpirun forwards SIGTERM when the job is stopped
    if (!lead) {                      // the other replicas train silently; replica 0 logs, checkpoints and saves final/
        trainer.run();
        return 0;
    }
    train::MetricsLog metrics(run_dir.metrics());
    const bool tty = isatty(STDOUT_FILENO);
    std::printf("%s: %s model, %s loss, %lld steps of %lld x %lld tokens, seed %llu, %d threads, %s matmuls\n",
                loss == train::Loss::CE ? "train" : "distill", Student::binarized ? "binarized" : "full-precision",
                train::loss_name(loss), (long long)opt.steps, (long long)opt.batch, (long long)opt.seq_len,
                (unsigned long long)opt.seed, num_threads(), precision_name(opt.step.precision));
    if (world > 1)
        std::printf("data parallel: %d processes x %d threads, global batch %lld x %lld tokens a micro-batch\n", world,
                    num_threads(), (long long)(world * opt.batch), (long long)opt.seq_len);
    trainer.on_log = [&](const train::StepLog& l) {
        nlohmann::json j = {{"step", l.step},
                            {"tokens", l.step * opt.batch * opt.seq_len * opt.grad_accum * world},
                            {"loss", l.loss},
                            {"lr", l.lr},
                            {"grad_norm", l.grad_norm},
                            {"tokens_per_s", l.tokens_per_s},
                            {"skipped_total", l.skipped_total}};
        if (l.has_flips) {
            j["flip_rate"] = l.flips.overall;
            j["flip_steps"] = l.flip_steps;
            j["flip_rate_per_layer"] = l.flips.per_layer;
        }
        if (l.has_val_loss) j["val_loss"] = l.val_loss;
        metrics.write(j);
        print_step(l, opt.steps, tty);
    };
    trainer.on_event = [&](const std::string& e) {
        if (tty) std::printf("\n");
        std::printf("%s\n", e.c_str());
    };
    const bool finished = trainer.run();
    io::save_model(run_dir.final_model(), student, student.config);
    // The tokenizer goes with the model, so that pack, generate and eval need no --data.
    if (fs::is_regular_file(data_dir / "tokenizer.model", ec))
        write_text_atomic(run_dir.final_model() / "tokenizer.model", read_text(data_dir / "tokenizer.model"));
    std::printf("%s model: %s\n", finished ? "final" : "interrupted; saved", run_dir.final_model().c_str());
    return 0;
}

// The options train and distill share.
static cxxopts::Options training_options(const char* name, const char* description) {
    cxxopts::Options o(name, description);
    o.add_options()("data", "directory written by prepare", cxxopts::value<std::string>())(
        "out", "output directory (checkpoints/, final/, metrics.jsonl); one run a directory",
        cxxopts::value<std::string>())("steps", "optimizer steps", cxxopts::value<int64_t>()->default_value("300"))(
        "batch", "sequences per micro-batch", cxxopts::value<int64_t>()->default_value("16"))(
        "seq", "tokens per sequence", cxxopts::value<int64_t>()->default_value("128"))(
        "accum", "micro-batches per optimizer step", cxxopts::value<int64_t>()->default_value("1"))(
        "lr", "peak learning rate", cxxopts::value<double>()->default_value("3e-3"))(
        "min-lr", "final learning rate of the cosine decay", cxxopts::value<double>()->default_value("3e-4"))(
        "warmup", "warm-up steps", cxxopts::value<int64_t>()->default_value("30"))(
        "wd", "AdamW weight decay", cxxopts::value<double>()->default_value("0.1"))(
        "clip", "global gradient-norm clip (0: off)", cxxopts::value<double>()->default_value("1.0"))(
        "precision",
        "matrix products: bf16 (mixed precision: float weights, gradients and AdamW state; bf16 GEMM operands), "
        "fp32, or auto: bf16 where the CPU has AVX512_BF16, else fp32",
        cxxopts::value<std::string>()->default_value("auto"))("log-every", "steps between log lines",
                                                              cxxopts::value<int64_t>()->default_value("10"))(
        "eval-every", "steps between validation losses on val.bin, in metrics.jsonl (0: only after the last step)",
        cxxopts::value<int64_t>()->default_value("0"))("eval-windows",
                                                       "validation windows of --seq tokens (0: all of val.bin)",
                                                       cxxopts::value<int64_t>()->default_value("0"))(
        "save-every", "steps between checkpoints (0: only at the end)", cxxopts::value<int64_t>()->default_value("0"))(
        "keep", "checkpoints to keep", cxxopts::value<int>()->default_value("2"))(
        "seed", "random seed (init and data order)", cxxopts::value<uint64_t>()->default_value("1234"))(
        "resume", "continue the run in --out from its newest checkpoint (bit for bit, same settings)")(
        "overwrite", "delete the run in --out (checkpoints/, final/, metrics.jsonl) and start a new one")(
        "change-schedule",
        "with --resume: accept other --steps, --warmup, --lr, --min-lr, --wd, --clip (the learning rate of the next "
        "step is printed before and after)")(
        "allow-inexact-resume",
        "with --resume: accept another thread count (the run continues, but no longer bit for bit as an "
        "uninterrupted run would)")("h,help", "help");
    add_threads_option(o);
    add_model_options(o);
    return o;
}

cxxopts::Options train_options() {
    cxxopts::Options o = training_options("bitgrad train", "Train with cross-entropy");
    o.add_options()("binarized", "FBI-Linear layers (from scratch)");
    return o;
}

int run_train(const cxxopts::ParseResult& r) {
    require(r, "train", {"data", "out"});
    apply_threads(r);
    auto config =
        model_config(r, data::load_dataset_info(existing_dir(r, "data")).vocab_size, positive<int64_t>(r, "seq"));
    if (r.count("binarized")) return run_training<nn::FbiLlama<float>>(r, config, nullptr, train::Loss::CE);
    return run_training<nn::DenseLlama<float>>(r, config, nullptr, train::Loss::CE);
}

// --loss and --teacher-storage: the library's names (train/distill.hpp, train/teacher.hpp).
static const EnumOption<train::Loss> kLoss =
    enum_option("loss", {train::Loss::AD, train::Loss::Mixed}, train::loss_name);
static const EnumOption<train::TeacherStorage> kTeacherStorage = enum_option(
    "teacher-storage", {train::TeacherStorage::Auto, train::TeacherStorage::Bf16, train::TeacherStorage::Float},
    train::teacher_storage_name);

cxxopts::Options distill_options() {
    cxxopts::Options o = training_options("bitgrad distill", "Distill a binarized student from a teacher");
    o.add_options("distillation")("teacher",
                                  "teacher model directory: config.json + model.safetensors, or Hugging Face's "
                                  "sharded layout (model.safetensors.index.json; F32, F16 or BF16)",
                                  cxxopts::value<std::string>())(
        "loss", "ad (soft cross-entropy to the teacher), mixed (0.5 CE + 0.5 AD)",
        cxxopts::value<std::string>()->default_value(train::loss_name(train::Loss::AD)))(
        "ad-temperature", "temperature of the teacher's and the student's softmax in the AD loss",
        cxxopts::value<double>()->default_value("1.0"))(
        "teacher-storage",
        "how the teacher is held: auto (bf16 when its files hold F16/BF16 tensors, else float), bf16 (2 bytes a "
        "weight, its products in bf16), float (4 bytes a weight)",
        cxxopts::value<std::string>()->default_value("auto"));
    // The spelling before the rename (generate's --temperature is the sampling temperature); not in --help.
    o.add_options("renamed")("temperature", "now --ad-temperature", cxxopts::value<double>());
    return o;
}

int run_distill(const cxxopts::ParseResult& r) {
    if (r.count("temperature"))
        throw UsageError(
            "--temperature is now --ad-temperature (the AD loss's temperature; generate's --temperature "
            "is the sampling one)");
    require(r, "distill", {"data", "out", "teacher"});
    apply_threads(r);
    const train::Loss loss = kLoss(r);
    const train::TeacherStorage storage = kTeacherStorage(r);
    existing_dir(r, "data");
    std::error_code ec;
    const fs::path tpath = r["teacher"].as<std::string>();
    if (fs::is_regular_file(tpath, ec))
        throw UsageError("--teacher " + tpath.string() +
                         ": a file; a teacher is a full-precision model directory (config.json + model.safetensors "
                         "or shards), not a packed 1-bit model or a single tensor file");
    const fs::path tdir = existing_dir(r, "teacher");
    train::LoadedTeacher teacher = train::load_teacher(tdir, storage);
    if (job().lead())
        std::printf("teacher: %s, weights in %s (%.1f MB)\n", tdir.c_str(),
                    train::teacher_storage_name(teacher.storage), teacher.bytes() / 1e6);
    // The student takes the teacher's shape unless size flags say otherwise; --ste always applies.
    const bool own_shape = r["preset"].as<std::string>() != "custom" || r.count("layers") || r.count("hidden") ||
                           r.count("intermediate") || r.count("heads") || r.count("kv-heads");
    const nn::LlamaConfig flags = model_config(r, teacher.config.vocab_size, r["seq"].as<int64_t>());
    const nn::LlamaConfig config =
        own_shape ? flags : train::student_config(teacher.config, r["seq"].as<int64_t>(), flags.ste);
    return run_training<nn::FbiLlama<float>>(r, config, teacher.teacher, loss);
}

}  // namespace bitgrad::cli
