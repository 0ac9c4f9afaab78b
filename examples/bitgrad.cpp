// bitgrad: the command-line program. Subcommands:
//   prepare   text -> SentencePiece BPE tokenizer (or --tokenizer) + train/validation token shards
//   train     train a model with cross-entropy (full precision, or --binarized FBI-LLM)
//   distill   distill a binarized student from scratch from a teacher checkpoint (AD loss)
//   eval      validation perplexity and bits per byte
//   pack      a trained FBI-LLM checkpoint -> one packed file (1 bit per binarized weight)
//   generate  sample text (temperature / top-k / top-p / repetition penalty, seeded); from a packed
//             file it streams tokens and reports prefill and decode tokens/s
//   info      model summary (parameters, 1-bit share, storage)
//   export    a model in Hugging Face's layout (safetensors and/or pytorch_model.bin; float32, bf16, fp16)
//   convert   a PyTorch pytorch_model.bin (FBI-LLM's releases) -> model.safetensors, without running pickle code
//   zeroshot  multiple-choice accuracy as lm-evaluation-harness 0.4.2 computes it (acc, acc_norm)
// Run `bitgrad <command> --help` for the options. Bad options exit with code 2 before any work.
#include <unistd.h>

#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cxxopts.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <regex>
#include <sstream>

#include <bitgrad/bitgrad.hpp>
#include <bitgrad/data/sentencepiece.hpp>
#ifdef BITGRAD_WITH_MPI
#include <bitgrad/dist/mpi.hpp>
#endif

using namespace bitgrad;
namespace fs = std::filesystem;

struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// This process's place in an MPI job (`mpirun -np N bitgrad train|distill ...`): rank 0 of 1
// without MPI. Only rank 0 prints progress and writes files.
struct Job {
    train::DataParallel data_parallel;
    bool lead() const { return data_parallel.rank == 0; }
};
static Job& job() {
    static Job j;
    return j;
}

static std::string read_text(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    if (!f) throw UsageError("cannot read " + p.string());
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

// Paths named on the command line are checked before any work: a missing input or an output that
// is not a directory is a usage error (exit 2), not a failure half-way through.
static fs::path existing_dir(const cxxopts::ParseResult& r, const char* name) {
    const fs::path p = r[name].as<std::string>();
    std::error_code ec;
    if (!fs::is_directory(p, ec)) throw UsageError(std::string("--") + name + " " + p.string() + ": no such directory");
    return p;
}
static fs::path existing_file(const cxxopts::ParseResult& r, const char* name) {
    const fs::path p = r[name].as<std::string>();
    std::error_code ec;
    if (!fs::is_regular_file(p, ec)) throw UsageError(std::string("--") + name + " " + p.string() + ": no such file");
    return p;
}
static fs::path output_dir(const cxxopts::ParseResult& r, const char* name) {
    const fs::path p = r[name].as<std::string>();
    std::error_code ec;
    if (fs::exists(p, ec) && !fs::is_directory(p, ec))
        throw UsageError(std::string("--") + name + " " + p.string() + ": exists and is not a directory");
    return p;
}

// --activations of a packed model (generate, eval): what its 1-bit layers round activations to.
static kernels::SignActivations activations_option(const cxxopts::ParseResult& r) {
    const std::string a = r["activations"].as<std::string>();
    if (a != "float" && a != "int8") throw UsageError("--activations must be float or int8, not " + a);
    return a == "int8" ? kernels::SignActivations::Int8 : kernels::SignActivations::Float;
}

template <class V>
static V positive(const cxxopts::ParseResult& r, const char* name) {
    const V v = r[name].as<V>();
    if (!(v > 0)) throw UsageError(std::string("--") + name + " must be > 0, got " + std::to_string(v));
    return v;
}

// ---------------------------------------------------------------- prepare
static int cmd_prepare(int argc, char** argv) {
    cxxopts::Options o("bitgrad prepare",
                       "Split a text into training and validation parts, train a BPE tokenizer on the first (or take "
                       "--tokenizer) and write both as token shards");
    o.add_options()("text", "input text file (UTF-8)", cxxopts::value<std::string>())(
        "out", "output directory", cxxopts::value<std::string>())("vocab", "vocabulary size",
                                                                  cxxopts::value<int>()->default_value("4096"))(
        "holdout-every",
        "hold out every chapter whose number is a multiple of N (lines 'CHAPTER N.'); 0: last 10% of the text",
        cxxopts::value<int>()->default_value("10"))(
        "tokenizer",
        "an existing SentencePiece .model to use instead of training one (e.g. the LLaMA-2 tokenizer of "
        "scripts/fetch_llama2_tokenizer.sh); copied into --out",
        cxxopts::value<std::string>())("h,help", "help");
    auto r = o.parse(argc, argv);
    if (r.count("help")) {
        std::cout << o.help() << "\n";
        return 0;
    }
    if (!r.count("text") || !r.count("out")) throw UsageError("prepare needs --text and --out");
    const fs::path text_path = existing_file(r, "text"), out = output_dir(r, "out");
    const int vocab = positive<int>(r, "vocab"), every = r["holdout-every"].as<int>();
    if (r.count("tokenizer") && r.count("vocab"))
        throw UsageError("--vocab and --tokenizer exclude each other (the tokenizer's vocabulary is used)");
    const fs::path given_tokenizer = r.count("tokenizer") ? existing_file(r, "tokenizer") : fs::path();
    if (!given_tokenizer.empty()) data::Tokenizer{given_tokenizer.string()};  // not a SentencePiece model: stop here
    if (every < 0) throw UsageError("--holdout-every must be >= 0, got " + std::to_string(every));
    const std::string text = read_text(text_path);
    std::string train, val;
    int chapters = 0;
    if (every > 0) {
        static const std::regex heading(R"(^CHAPTER (\d+)\.)");
        std::istringstream in(text);
        std::string line;
        bool held = false;
        int64_t line_number = 0;
        while (std::getline(in, line)) {
            ++line_number;
            std::smatch m;
            if (std::regex_search(line, m, heading)) {
                const std::string digits = m[1];
                uint64_t number = 0;
                const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), number);
                BITGRAD_CHECK(ec == std::errc() && end == digits.data() + digits.size(),
                              text_path.string()
                                  << ":" << line_number << ": chapter number " << digits << " is out of range");
                held = number % uint64_t(every) == 0;
                ++chapters;
            }
            (held ? val : train) += line + "\n";
        }
        if (chapters == 0)
            throw UsageError("--holdout-every " + std::to_string(every) +
                             ": no 'CHAPTER N.' lines in the text; use --holdout-every 0");
    } else {
        const std::size_t cut = text.size() * 9 / 10;
        train = text.substr(0, cut);
        val = text.substr(cut);
    }
    ensure_directory(out);
    write_text_atomic(out / "train.txt", train);
    write_text_atomic(out / "val.txt", val);
    std::printf("prepare: %zu train bytes, %zu validation bytes (%d chapters seen)\n", train.size(), val.size(),
                chapters);
    if (given_tokenizer.empty()) {
        data::train_bpe_tokenizer((out / "train.txt").string(), (out / "tokenizer").string(), vocab, num_threads());
    } else {
        write_text_atomic(out / "tokenizer.model", read_text(given_tokenizer));
        std::printf("prepare: tokenizer %s\n", given_tokenizer.c_str());
    }
    data::Tokenizer tok((out / "tokenizer.model").string());
    for (auto [name, part] : {std::pair{"train", &train}, std::pair{"val", &val}}) {
        std::vector<uint32_t> ids;
        ids.push_back(uint32_t(tok.bos_id()));
        for (int id : tok.encode(*part)) ids.push_back(uint32_t(id));
        data::write_token_shard(out / (std::string(name) + ".bin"), ids, uint64_t(tok.vocab_size()));
        std::printf("prepare: %s.bin: %zu tokens (%.2f bytes/token)\n", name, ids.size(),
                    double(part->size()) / double(ids.size()));
    }
    data::save_dataset_info(out, {tok.vocab_size(), int64_t(train.size()), int64_t(val.size())});
    return 0;
}

// ---------------------------------------------------------------- model options shared by train/distill/info
static void add_model_options(cxxopts::Options& o) {
    o.add_options("model")("preset", "tiny, 130M, 1.3B, 7B, or custom (the size flags below)",
                           cxxopts::value<std::string>()->default_value("custom"))(
        "layers", "decoder layers", cxxopts::value<int64_t>()->default_value("4"))(
        "hidden", "hidden size", cxxopts::value<int64_t>()->default_value("128"))(
        "intermediate", "MLP size", cxxopts::value<int64_t>()->default_value("352"))(
        "heads", "attention heads", cxxopts::value<int64_t>()->default_value("4"))(
        "kv-heads", "key/value heads (GQA); 0: = heads", cxxopts::value<int64_t>()->default_value("0"))(
        "ste", "straight-through estimator: " + ste_choices(),
        cxxopts::value<std::string>()->default_value("identity"));
}

static nn::LlamaConfig model_config(const cxxopts::ParseResult& r, int64_t vocab, int64_t max_pos) {
    nn::LlamaConfig c;
    const std::string preset = r["preset"].as<std::string>();
    if (preset != "custom") {
        try {
            c = nn::LlamaConfig::preset(preset);
        } catch (const Error& e) { throw UsageError(std::string("--preset: ") + e.what()); }
    } else {
        c.num_hidden_layers = positive<int64_t>(r, "layers");
        c.hidden_size = positive<int64_t>(r, "hidden");
        c.intermediate_size = positive<int64_t>(r, "intermediate");
        c.num_attention_heads = positive<int64_t>(r, "heads");
        c.num_key_value_heads = r["kv-heads"].as<int64_t>() > 0 ? r["kv-heads"].as<int64_t>() : c.num_attention_heads;
    }
    if (vocab > 0) c.vocab_size = vocab;
    c.max_position_embeddings = std::max(max_pos, int64_t(16));
    const std::string ste = r["ste"].as<std::string>();
    const auto parsed = parse_ste(ste);
    if (!parsed) throw UsageError("--ste " + ste + ": expected " + ste_choices());
    c.ste = *parsed;
    try {
        c.validate();
    } catch (const Error& e) { throw UsageError(e.what()); }
    return c;
}

// ---------------------------------------------------------------- train / distill
static void on_sigint(int) { train::stop_requested() = true; }

template <class Student>
static int run_training(const cxxopts::ParseResult& r, nn::LlamaConfig config, train::Teacher<float> teacher,
                        train::Loss loss) {
    const fs::path data_dir = existing_dir(r, "data"), out = output_dir(r, "out");
    data::TokenShard shard((data_dir / "train.bin").string());
    BITGRAD_CHECK(int64_t(shard.vocab_size()) == config.vocab_size,
                  "model vocab " << config.vocab_size << " != data vocab " << shard.vocab_size());
    train::TrainOptions opt;
    opt.steps = positive<int64_t>(r, "steps");
    opt.batch = positive<int64_t>(r, "batch");
    opt.seq_len = positive<int64_t>(r, "seq");
    opt.grad_accum = positive<int64_t>(r, "accum");
    opt.adamw.lr = positive<double>(r, "lr");
    opt.adamw.weight_decay = r["wd"].as<double>();
    opt.min_lr = r["min-lr"].as<double>();
    opt.warmup_steps = r["warmup"].as<int64_t>();
    opt.clip_norm = r["clip"].as<double>();
    opt.log_every = positive<int64_t>(r, "log-every");
    opt.eval_every = r["eval-every"].as<int64_t>() > 0 ? r["eval-every"].as<int64_t>() : opt.steps;
    opt.save_every = r["save-every"].as<int64_t>();
    opt.keep_last = r["keep"].as<int>();
    opt.seed = r["seed"].as<uint64_t>();
    opt.loss = loss;
    opt.temperature = positive<double>(r, "temperature");
    const std::string precision = r["precision"].as<std::string>();
    if (precision == "auto")
        opt.precision = default_precision();
    else if (auto p = parse_precision(precision))
        opt.precision = *p;
    else
        throw UsageError("--precision " + precision + ": expected auto, bf16 or fp32");
    opt.out_dir = out.string();
    if (r["eval-every"].as<int64_t>() < 0 || r["eval-windows"].as<int64_t>() < 0)
        throw UsageError("--eval-every and --eval-windows must be >= 0");
    if (opt.save_every < 0 || opt.warmup_steps < 0 || opt.keep_last < 0 || opt.clip_norm < 0 ||
        opt.adamw.weight_decay < 0 || opt.min_lr < 0)
        throw UsageError("--save-every, --warmup, --keep, --clip, --wd and --min-lr must be >= 0");
    ensure_directory(out);

    Rng init(opt.seed);
    Student student(config, init);
    train::Trainer<float, Student> trainer(student, std::move(teacher), shard, opt);
    trainer.data_parallel = job().data_parallel;
    const bool lead = job().lead();
    std::optional<data::TokenShard> val;
    std::error_code ec;
    if (fs::exists(data_dir / "val.bin", ec)) val.emplace((data_dir / "val.bin").string());
    if (val && val->size() > 1 && lead) {  // replica 0 validates (the replicas hold the same weights)
        const int64_t val_seq = std::min<int64_t>(opt.seq_len, int64_t(val->size()) - 1),
                      windows = r["eval-windows"].as<int64_t>();
        trainer.validate = [&val, val_seq, windows](const Student& s) {
            return eval::perplexity(s, *val, val_seq, 8, windows).nll;
        };
    } else if (lead) {
        std::printf("no validation tokens in %s: no validation loss\n", (data_dir / "val.bin").c_str());
    }
    if (r.count("resume")) {
        auto last = io::latest_checkpoint(out / "checkpoints", [lead](const std::string& w) {
            if (lead) std::fprintf(stderr, "warning: %s\n", w.c_str());
        });
        if (last) {
            trainer.resume(*last);
            if (lead) std::printf("resumed from %s at step %lld\n", last->c_str(), (long long)trainer.step());
        } else if (lead) {
            std::printf("no checkpoint under %s; starting from scratch\n", (out / "checkpoints").c_str());
        }
    }
    const int world = job().data_parallel.world_size;
    std::signal(SIGINT, on_sigint);
    std::signal(SIGTERM, on_sigint);  // mpirun forwards SIGTERM when the job is stopped
    if (!lead) {                      // the other replicas train silently; replica 0 logs, checkpoints and saves final/
        trainer.run();
        return 0;
    }
    std::ofstream metrics(out / "metrics.jsonl", std::ios::app);
    const bool tty = isatty(STDOUT_FILENO);
    std::printf("%s: %s model, %s loss, %lld steps of %lld x %lld tokens, seed %llu, %d threads, %s matmuls\n",
                loss == train::Loss::CE ? "train" : "distill", Student::binarized ? "binarized" : "full-precision",
                train::loss_name(loss), (long long)opt.steps, (long long)opt.batch, (long long)opt.seq_len,
                (unsigned long long)opt.seed, num_threads(), precision_name(opt.precision));
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
        metrics << j.dump() << "\n";
        metrics.flush();
        char line[256];
        std::snprintf(line, sizeof line, "step %6lld/%lld  loss %.4f  lr %.2e  |g| %.3f  %.0f tok/s  ETA %4.0fs%s",
                      (long long)l.step, (long long)opt.steps, l.loss, l.lr, l.grad_norm, l.tokens_per_s, l.eta_s,
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
            std::printf("\r%s\033[K%s", s.c_str(), l.step == opt.steps ? "\n" : "");
        else
            std::printf("%s\n", s.c_str());
        std::fflush(stdout);
    };
    trainer.on_event = [&](const std::string& e) {
        if (tty) std::printf("\n");
        std::printf("%s\n", e.c_str());
    };
    const bool finished = trainer.run();
    io::save_model(out / "final", student, student.config);
    std::printf("%s model: %s\n", finished ? "final" : "interrupted; saved", (out / "final").c_str());
    return 0;
}

static void add_training_options(cxxopts::Options& o) {
    o.add_options()("data", "directory written by prepare", cxxopts::value<std::string>())(
        "out", "output directory (checkpoints/, final/, metrics.jsonl)", cxxopts::value<std::string>())(
        "steps", "optimizer steps", cxxopts::value<int64_t>()->default_value("300"))(
        "batch", "sequences per micro-batch", cxxopts::value<int64_t>()->default_value("16"))(
        "seq", "tokens per sequence", cxxopts::value<int64_t>()->default_value("128"))(
        "accum", "micro-batches per optimizer step", cxxopts::value<int64_t>()->default_value("1"))(
        "lr", "peak learning rate", cxxopts::value<double>()->default_value("3e-3"))(
        "min-lr", "final learning rate of the cosine decay", cxxopts::value<double>()->default_value("3e-4"))(
        "warmup", "warm-up steps", cxxopts::value<int64_t>()->default_value("30"))(
        "wd", "AdamW weight decay", cxxopts::value<double>()->default_value("0.1"))(
        "clip", "global gradient-norm clip (0: off)", cxxopts::value<double>()->default_value("1.0"))(
        "temperature", "distillation temperature", cxxopts::value<double>()->default_value("1.0"))(
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
        "resume", "continue from the newest checkpoint in --out")("h,help", "help");
    add_model_options(o);
}

static int cmd_train(int argc, char** argv) {
    cxxopts::Options o("bitgrad train", "Train with cross-entropy");
    add_training_options(o);
    o.add_options()("binarized", "FBI-Linear layers (from scratch)");
    auto r = o.parse(argc, argv);
    if (r.count("help")) {
        std::cout << o.help() << "\n";
        return 0;
    }
    if (!r.count("data") || !r.count("out")) throw UsageError("train needs --data and --out");
    auto config =
        model_config(r, data::load_dataset_info(existing_dir(r, "data")).vocab_size, positive<int64_t>(r, "seq"));
    if (r.count("binarized")) return run_training<nn::FbiLlama<float>>(r, config, nullptr, train::Loss::CE);
    return run_training<nn::DenseLlama<float>>(r, config, nullptr, train::Loss::CE);
}

static int cmd_distill(int argc, char** argv) {
    cxxopts::Options o("bitgrad distill", "Distill a binarized student from a teacher");
    add_training_options(o);
    o.add_options()("teacher",
                    "teacher model directory: config.json + model.safetensors, or Hugging Face's sharded layout "
                    "(model.safetensors.index.json; F32, F16 or BF16)",
                    cxxopts::value<std::string>())("loss",
                                                   "ad (soft cross-entropy to the teacher), mixed (0.5 CE + 0.5 AD)",
                                                   cxxopts::value<std::string>()->default_value("ad"))(
        "teacher-storage",
        "how the teacher is held: auto (bf16 when its files hold F16/BF16 tensors, else float), bf16 (2 bytes a "
        "weight, its products in bf16), float (4 bytes a weight)",
        cxxopts::value<std::string>()->default_value("auto"));
    auto r = o.parse(argc, argv);
    if (r.count("help")) {
        std::cout << o.help() << "\n";
        return 0;
    }
    if (!r.count("data") || !r.count("out") || !r.count("teacher"))
        throw UsageError("distill needs --data, --out and --teacher");
    const std::string l = r["loss"].as<std::string>(), storage = r["teacher-storage"].as<std::string>();
    if (l != "ad" && l != "mixed") throw UsageError("--loss " + l + ": expected ad or mixed");
    if (storage != "auto" && storage != "bf16" && storage != "float")
        throw UsageError("--teacher-storage " + storage + ": expected auto, bf16 or float");
    existing_dir(r, "data");
    const fs::path tdir = existing_dir(r, "teacher");
    auto tconfig = io::load_config(tdir / "config.json");
    BITGRAD_CHECK(!tconfig.binarized, tdir << ": the teacher must be a full-precision model");
    // bitgrad's layout or Hugging Face's; a half-precision teacher stays in half precision.
    const io::HfCheckpoint files(tdir);
    std::unique_ptr<infer::FrozenLlama> frozen;
    std::unique_ptr<nn::DenseLlama<float>> dense;
    train::Teacher<float> teacher;
    if (storage == "bf16" || (storage == "auto" && files.half_precision())) {
        frozen = std::make_unique<infer::FrozenLlama>(infer::FrozenLlama::load(files, tconfig));
        teacher = train::frozen_teacher(*frozen);
        if (job().lead())
            std::printf("teacher: %s, weights in bf16 (%.1f MB)\n", tdir.c_str(), double(frozen->bytes()) / 1e6);
    } else {
        Rng rng(0);
        dense = std::make_unique<nn::DenseLlama<float>>(tconfig, rng);
        io::load_hf_weights(files, *dense, tconfig.tie_word_embeddings);
        dense->eval();
        teacher = train::llama_teacher<float>(*dense);
        if (job().lead())
            std::printf("teacher: %s, weights in float (%.1f MB)\n", tdir.c_str(),
                        double(dense->num_parameters()) * 4e-6);
    }
    // The student takes the teacher's shape unless size flags say otherwise; --ste always applies.
    const bool own_shape = r["preset"].as<std::string>() != "custom" || r.count("layers") || r.count("hidden") ||
                           r.count("intermediate") || r.count("heads") || r.count("kv-heads");
    const nn::LlamaConfig flags = model_config(r, tconfig.vocab_size, r["seq"].as<int64_t>());
    nn::LlamaConfig config = own_shape ? flags : tconfig;
    config.max_position_embeddings = std::max(config.max_position_embeddings, r["seq"].as<int64_t>());
    config.ste = flags.ste;
    return run_training<nn::FbiLlama<float>>(r, config, std::move(teacher),
                                             l == "ad" ? train::Loss::AD : train::Loss::Mixed);
}

// ---------------------------------------------------------------- eval / generate / info
template <class F>
static int with_model(const fs::path& dir, F&& f) {
    auto config = io::load_config(dir / "config.json");
    Rng rng(0);
    // bitgrad's model directories and Hugging Face's (shards, F16 / BF16 exports) alike.
    if (config.binarized) {
        nn::FbiLlama<float> m(config, rng);
        io::load_hf_weights(dir, m, config.tie_word_embeddings);
        return f(m);
    }
    nn::DenseLlama<float> m(config, rng);
    io::load_hf_weights(dir, m, config.tie_word_embeddings);
    return f(m);
}

// eval --text: FBI-LLM's perplexity protocol (eval::paper_perplexity) on a text file, tokenized
// whole with a BOS first, as Hugging Face's tokenizer(text) does; a packed file runs packed.
static int eval_text(const cxxopts::ParseResult& r) {
    if (!r.count("model") || (!r.count("data") && !r.count("tokenizer")))
        throw UsageError("eval --text needs --model and a tokenizer (--data or --tokenizer)");
    const fs::path text_path = existing_file(r, "text");
    const fs::path tokenizer_path =
        r.count("tokenizer") ? existing_file(r, "tokenizer") : existing_dir(r, "data") / "tokenizer.model";
    const kernels::SignActivations activations = activations_option(r);
    const std::string text = read_text(text_path);
    const data::Tokenizer tok(tokenizer_path.string());
    std::vector<int32_t> tokens{tok.bos_id()};
    for (int id : tok.encode(text)) tokens.push_back(id);
    const bool tty = isatty(STDERR_FILENO);
    auto progress = [&](int64_t done, int64_t total) {
        if (tty)
            std::fprintf(stderr, "\rwindow %lld/%lld%s", (long long)done, (long long)total, done == total ? "\n" : "");
    };
    auto report = [&](const eval::PerplexityResult& res, int64_t seq, const char* how) {
        // The scored tokens stand for the whole text: bits per byte = nll * tokens of the text / (ln 2 * bytes).
        const double bpb = res.nll * double(tokens.size()) / (std::log(2.0) * double(text.size()));
        if (r.count("json"))
            std::printf("%s\n", nlohmann::json({{"model", r["model"].as<std::string>()},
                                                {"text", text_path.string()},
                                                {"protocol", "fbi-llm"},
                                                {"seq", seq},
                                                {"windows", res.tokens / (seq - 1)},
                                                {"tokens_in_text", tokens.size()},
                                                {"tokens_scored", res.tokens},
                                                {"perplexity", res.perplexity},
                                                {"bits_per_byte", bpb},
                                                {"run", how}})
                                    .dump()
                                    .c_str());
        else
            std::printf(
                "perplexity %.3f, bits per byte %.4f: %lld windows of %lld tokens, %lld of the text's %zu tokens "
                "scored (%s)\n",
                res.perplexity, bpb, (long long)(res.tokens / (seq - 1)), (long long)seq, (long long)res.tokens,
                tokens.size(), how);
    };
    std::error_code ec;
    if (fs::is_regular_file(r["model"].as<std::string>(), ec)) {
        const infer::PackedLlama m = infer::load_packed(r["model"].as<std::string>());
        const kernels::SignActivationsScope scope(activations);
        const int64_t seq = r.count("seq") ? positive<int64_t>(r, "seq") : m.config().max_position_embeddings;
        report(eval::decoder_paper_perplexity(m, tokens, seq, progress), seq,
               activations == kernels::SignActivations::Int8 ? "packed, int8 activations" : "packed");
        return 0;
    }
    return with_model(existing_dir(r, "model"), [&](auto& m) {
        const int64_t seq = r.count("seq") ? positive<int64_t>(r, "seq") : m.config.max_position_embeddings;
        report(eval::paper_perplexity(m, tokens, seq, 1, progress), seq, "float checkpoint");
        return 0;
    });
}

static int cmd_eval(int argc, char** argv) {
    cxxopts::Options o("bitgrad eval", "Validation perplexity and bits per byte");
    o.add_options()("model", "model directory, or a packed model file (bitgrad pack)", cxxopts::value<std::string>())(
        "data", "prepare's directory", cxxopts::value<std::string>())(
        "seq", "window length", cxxopts::value<int64_t>()->default_value("128"))("json", "print one JSON line")(
        "activations", "packed model: float or int8 (as generate)",
        cxxopts::value<std::string>()->default_value("float"))(
        "unigram", "instead of a model: the unigram baseline (add-one smoothed token frequencies of train.bin)")(
        "text",
        "instead of val.bin: any text file, with FBI-LLM's protocol (windows of --seq tokens, default the model's "
        "context; docs/evaluation.md)",
        cxxopts::value<std::string>())("tokenizer", "with --text: the SentencePiece model (default: --data's)",
                                       cxxopts::value<std::string>())("h,help", "help");
    auto r = o.parse(argc, argv);
    if (r.count("help")) {
        std::cout << o.help() << "\n";
        return 0;
    }
    if (r.count("text")) return eval_text(r);
    if ((!r.count("model") && !r.count("unigram")) || !r.count("data"))
        throw UsageError("eval needs --data and --model (or --unigram, or --text)");
    const fs::path data_dir = existing_dir(r, "data");
    const int64_t seq = positive<int64_t>(r, "seq");
    const kernels::SignActivations activations = activations_option(r);
    std::error_code ec;
    const bool packed_file = !r.count("unigram") && fs::is_regular_file(r["model"].as<std::string>(), ec);
    const fs::path model_dir = r.count("unigram") || packed_file ? fs::path() : existing_dir(r, "model");
    const double bytes = double(data::load_dataset_info(data_dir).val_bytes);
    data::TokenShard val((data_dir / "val.bin").string());
    if (packed_file) {
        const infer::PackedLlama m = infer::load_packed(r["model"].as<std::string>());
        const kernels::SignActivationsScope scope(activations);
        const auto res = eval::decoder_perplexity(m, val, std::min<int64_t>(seq, m.config().max_position_embeddings));
        const char* tables = infer::table_format_name(m.lm_head().format());
        if (r.count("json"))
            std::printf("%s\n", nlohmann::json({{"model", r["model"].as<std::string>()},
                                                {"perplexity", res.perplexity},
                                                {"bits_per_byte", res.bits_per_byte(bytes)},
                                                {"tokens", res.tokens},
                                                {"binarized", true},
                                                {"packed", true},
                                                {"tables", tables},
                                                {"activations", kernels::sign_activations_name(activations)},
                                                {"bytes_packed", m.bytes()}})
                                    .dump()
                                    .c_str());
        else
            std::printf("perplexity %.3f, bits per byte %.4f over %lld tokens (packed: %s tables, %s activations)\n",
                        res.perplexity, res.bits_per_byte(bytes), (long long)res.tokens, tables,
                        kernels::sign_activations_name(activations));
        return 0;
    }
    if (r.count("unigram")) {
        const auto res = eval::unigram_perplexity(data::TokenShard((data_dir / "train.bin").string()), val);
        if (r.count("json"))
            std::printf("%s\n", nlohmann::json({{"model", "unigram"},
                                                {"perplexity", res.perplexity},
                                                {"bits_per_byte", res.bits_per_byte(bytes)},
                                                {"tokens", res.tokens}})
                                    .dump()
                                    .c_str());
        else
            std::printf("unigram baseline: perplexity %.3f, bits per byte %.4f\n", res.perplexity,
                        res.bits_per_byte(bytes));
        return 0;
    }
    return with_model(model_dir, [&](auto& m) {
        auto res = eval::perplexity(m, val, std::min<int64_t>(seq, m.config.max_position_embeddings));
        const auto stats = nn::param_stats(m);
        if (r.count("json"))
            std::printf("%s\n", nlohmann::json({{"model", r["model"].as<std::string>()},
                                                {"perplexity", res.perplexity},
                                                {"bits_per_byte", res.bits_per_byte(bytes)},
                                                {"tokens", res.tokens},
                                                {"binarized", m.config.binarized},
                                                {"bytes_fp32", stats.bytes_fp32()},
                                                {"bytes_packed", stats.bytes_packed()}})
                                    .dump()
                                    .c_str());
        else
            std::printf("perplexity %.3f, bits per byte %.4f over %lld tokens\n", res.perplexity,
                        res.bits_per_byte(bytes), (long long)res.tokens);
        return 0;
    });
}

static int cmd_pack(int argc, char** argv) {
    cxxopts::Options o("bitgrad pack",
                       "Pack a trained FBI-LLM checkpoint into one file: sign bits, fp16 alpha/beta, bf16 or int8 "
                       "embedding and lm_head");
    o.add_options()("model", "checkpoint directory of a binarized model (config.json + model.safetensors)",
                    cxxopts::value<std::string>())("out", "packed file to write (e.g. model.packed.safetensors)",
                                                   cxxopts::value<std::string>())(
        "tables",
        "embedding and lm_head: bf16, or int8 with a scale per row (half the bytes; docs/inference.md measures the "
        "cost)",
        cxxopts::value<std::string>()->default_value("bf16"))("h,help", "help");
    auto r = o.parse(argc, argv);
    if (r.count("help")) {
        std::cout << o.help() << "\n";
        return 0;
    }
    if (!r.count("model") || !r.count("out")) throw UsageError("pack needs --model and --out");
    const std::string tables_name = r["tables"].as<std::string>();
    if (tables_name != "bf16" && tables_name != "int8")
        throw UsageError("--tables must be bf16 or int8, not " + tables_name);
    const infer::TableFormat tables = tables_name == "int8" ? infer::TableFormat::Int8 : infer::TableFormat::Bf16;
    const fs::path dir = existing_dir(r, "model"), out = r["out"].as<std::string>();
    std::error_code ec;
    if (fs::is_directory(out, ec))
        throw UsageError("--out " + out.string() + ": is a directory (name the file to write)");
    const auto config = io::load_config(dir / "config.json");
    BITGRAD_CHECK(config.binarized,
                  dir.string() << "/config.json: \"binarized\" is false; pack needs an FBI-LLM (binarized) model");
    Rng rng(0);
    nn::FbiLlama<float> model(config, rng);
    io::load_hf_weights(dir, model, config.tie_word_embeddings);
    const infer::PackedLlama packed(model, tables);
    infer::save_packed(out, packed, {{"source", dir.string()}});
    // The packed file is read back and run against the float model on a probe sequence, so a
    // user sees what packing changed (fp16 alpha/beta, the embedding and lm_head format).
    const infer::PackedLlama loaded = infer::load_packed(out.string());
    const int64_t n = std::min<int64_t>(32, config.max_position_embeddings), V = config.vocab_size;
    std::vector<int32_t> probe(static_cast<std::size_t>(n));
    Rng probe_rng(1);
    for (auto& id : probe) id = int32_t(probe_rng.uniform_int(uint64_t(V)));
    infer::KvCache cache(loaded.config(), n);
    std::vector<float> logits(static_cast<std::size_t>(V));
    loaded.forward(probe.data(), n, cache, logits.data());
    std::vector<float> logits_q8(static_cast<std::size_t>(V));
    {
        kernels::SignActivationsScope int8(kernels::SignActivations::Int8);
        cache.clear();
        loaded.forward(probe.data(), n, cache, logits_q8.data());
    }
    Tensor<int32_t> input({1, n});
    std::copy(probe.begin(), probe.end(), input.data());
    Tensor<float> ref;
    {
        NoGrad no_grad;
        ref = model.forward(input).value();
    }
    double diff = 0, diff_q8 = 0, scale = 0;
    for (int64_t v = 0; v < V; ++v) {
        diff = std::max(diff, std::abs(double(logits[std::size_t(v)]) - double(ref[(n - 1) * V + v])));
        diff_q8 = std::max(diff_q8, std::abs(double(logits_q8[std::size_t(v)]) - double(ref[(n - 1) * V + v])));
        scale = std::max(scale, std::abs(double(ref[(n - 1) * V + v])));
    }
    const auto stats = nn::param_stats(model);
    std::printf(
        "packed %s -> %s\n  float checkpoint %.2f MB, packed %.2f MB (%.1fx smaller)\n"
        "  logits of a %lld-token probe vs the float model: max |diff| %.3g (%.2g of max |logit|); "
        "with int8 activations (generate --activations int8) %.3g (%.2g)\n",
        dir.string().c_str(), out.string().c_str(), double(stats.bytes_fp32()) / 1e6, double(fs::file_size(out)) / 1e6,
        double(stats.bytes_fp32()) / double(fs::file_size(out)), (long long)n, diff, diff / std::max(scale, 1e-30),
        diff_q8, diff_q8 / std::max(scale, 1e-30));
    return 0;
}

// convert: PyTorch state dicts (FBI-LLM's released pytorch_model.bin) -> a safetensors model
// directory bitgrad reads, without running any of the pickle (io/torch_checkpoint.hpp).
static int cmd_convert(int argc, char** argv) {
    cxxopts::Options o(
        "bitgrad convert",
        "pytorch_model.bin (torch.save's zip + pickle) -> model.safetensors, never executing the pickle");
    o.add_options()("in",
                    "a .bin file, or a directory: every *.bin in it (shards, as FBI-LLM's eval.py loads them) and its "
                    "config.json",
                    cxxopts::value<std::string>())("out", "model directory to write", cxxopts::value<std::string>())(
        "h,help", "help");
    auto r = o.parse(argc, argv);
    if (r.count("help")) {
        std::cout << o.help() << "\n";
        return 0;
    }
    if (!r.count("in") || !r.count("out")) throw UsageError("convert needs --in and --out");
    const fs::path in = r["in"].as<std::string>(), out = output_dir(r, "out");
    std::error_code ec;
    std::vector<fs::path> inputs;
    std::optional<fs::path> config_path;
    if (fs::is_directory(in, ec)) {
        for (const auto& e : fs::directory_iterator(in))
            if (e.path().extension() == ".bin" && e.is_regular_file()) inputs.push_back(e.path());
        std::sort(inputs.begin(), inputs.end());
        if (inputs.empty()) throw UsageError("--in " + in.string() + ": no .bin files in this directory");
        if (fs::is_regular_file(in / "config.json", ec)) config_path = in / "config.json";
    } else if (fs::is_regular_file(in, ec)) {
        inputs.push_back(in);
    } else {
        throw UsageError("--in " + in.string() + ": no such file or directory");
    }
    ensure_directory(out);
    const std::vector<std::string> names = io::convert_torch_to_safetensors(inputs, out / "model.safetensors");
    std::printf("converted %zu file(s), %zu tensors -> %s (%.2f MB)\n", inputs.size(), names.size(),
                (out / "model.safetensors").c_str(), double(fs::file_size(out / "model.safetensors")) / 1e6);
    if (!config_path) {
        std::printf("no config.json next to the input: copy the model's into %s to use it\n", out.c_str());
        return 0;
    }
    // FBI-LLM's config.json is a plain LlamaConfig: the wscale tensors are what say it is binarized.
    auto config = load_json(*config_path);
    const bool wscale =
        std::any_of(names.begin(), names.end(), [](const std::string& n) { return n.ends_with(".wscale"); });
    if (wscale && !config.contains("bitgrad_binarized")) config["bitgrad_binarized"] = true;
    write_text_atomic(out / "config.json", config.dump(2) + "\n");
    return with_model(out, [&](const auto& m) {  // loads what was written, strictly
        const auto stats = nn::param_stats(m);
        std::printf("%s loads as a %s LLaMA: %lld layers, hidden %lld, %.1fM parameters\n", out.c_str(),
                    m.config.binarized ? "binarized (FBI-LLM)" : "full-precision",
                    (long long)m.config.num_hidden_layers, (long long)m.config.hidden_size, double(stats.total) / 1e6);
        return 0;
    });
}

// zeroshot: multiple-choice accuracy as lm-evaluation-harness 0.4.2 computes it
// (eval/multiple_choice.hpp); items from bitgrad's JSONL or converted from a task's official file.
static int cmd_zeroshot(int argc, char** argv) {
    cxxopts::Options o("bitgrad zeroshot",
                       "Zero-shot multiple choice (acc, acc_norm) as lm-evaluation-harness 0.4.2 scores it");
    o.add_options()("model", "model directory, or a packed model file (bitgrad pack)", cxxopts::value<std::string>())(
        "tokenizer", "SentencePiece model (default: --data's tokenizer.model)", cxxopts::value<std::string>())(
        "data", "prepare's directory (for its tokenizer)", cxxopts::value<std::string>())(
        "items", "items in bitgrad's JSONL ({context, choices, gold} or {contexts, continuation, gold} a line)",
        cxxopts::value<std::string>())("task",
                                       "with --in: piqa, hellaswag, winogrande, arc_easy, arc_challenge, boolq "
                                       "or openbookqa",
                                       cxxopts::value<std::string>())(
        "in", "the task's official JSONL file (e.g. PIQA's valid.jsonl)", cxxopts::value<std::string>())(
        "labels", "PIQA: the labels file (valid-labels.lst) when the records hold no label",
        cxxopts::value<std::string>())("write-items", "write the converted items to this JSONL file",
                                       cxxopts::value<std::string>())("limit", "score the first N items only (0: all)",
                                                                      cxxopts::value<int64_t>()->default_value("0"))(
        "batch", "requests a forward (float checkpoints)", cxxopts::value<int64_t>()->default_value("8"))(
        "activations", "packed model: float or int8 (as generate)",
        cxxopts::value<std::string>()->default_value("float"))("json", "print one JSON line")("h,help", "help");
    auto r = o.parse(argc, argv);
    if (r.count("help")) {
        std::cout << o.help() << "\n";
        return 0;
    }
    if (r.count("items") == r.count("in"))
        throw UsageError("zeroshot needs --items FILE, or --task NAME with --in OFFICIAL_FILE");
    if (r.count("in") && !r.count("task")) throw UsageError("--in needs --task (which layout the file has)");
    if (r.count("task")) try {
            eval::mc_task(r["task"].as<std::string>());  // known? (the message lists them)
        } catch (const Error& e) { throw UsageError(e.what()); }
    if (r["limit"].as<int64_t>() < 0) throw UsageError("--limit must be >= 0");
    const kernels::SignActivations activations = activations_option(r);
    std::vector<eval::MultipleChoiceItem> items =
        r.count("items") ? eval::read_mc_items(existing_file(r, "items").string())
                         : eval::convert_mc_task(r["task"].as<std::string>(), existing_file(r, "in").string(),
                                                 r.count("labels") ? existing_file(r, "labels").string() : "");
    if (r.count("write-items")) {
        eval::write_mc_items(r["write-items"].as<std::string>(), items);
        std::printf("wrote %zu items to %s\n", items.size(), r["write-items"].as<std::string>().c_str());
        if (!r.count("model")) return 0;  // a conversion only
    }
    if (!r.count("model") || (!r.count("data") && !r.count("tokenizer")))
        throw UsageError("zeroshot needs --model and a tokenizer (--data or --tokenizer)");
    if (r["limit"].as<int64_t>() > 0 && size_t(r["limit"].as<int64_t>()) < items.size())
        items.resize(size_t(r["limit"].as<int64_t>()));
    const fs::path tokenizer_path =
        r.count("tokenizer") ? existing_file(r, "tokenizer") : existing_dir(r, "data") / "tokenizer.model";
    const data::Tokenizer tok(tokenizer_path.string());
    const eval::Tokenizer encode = [&tok](const std::string& text) {
        const std::vector<int> ids = tok.encode(text);
        return std::vector<int32_t>(ids.begin(), ids.end());
    };
    eval::MultipleChoiceOptions options;
    options.prefix_token = tok.bos_id();  // before an empty context, as lm-eval does (none of the seven tasks has one)
    const bool tty = isatty(STDERR_FILENO);
    auto progress = [&](int64_t done, int64_t total) {
        if (tty)
            std::fprintf(stderr, "\ritem %lld/%lld%s", (long long)done, (long long)total, done == total ? "\n" : "");
    };
    const std::string task =
        r.count("task") ? r["task"].as<std::string>() : fs::path(r["items"].as<std::string>()).stem().string();
    const bool show_norm = !r.count("task") || eval::mc_task(task).acc_norm;
    auto report = [&](const eval::MultipleChoiceResult& res, const char* how, double seconds) {
        nlohmann::ordered_json j = {{"task", task},
                                    {"model", r["model"].as<std::string>()},
                                    {"n", res.n},
                                    {"acc", res.acc},
                                    {"acc_stderr", res.acc_stderr}};
        if (res.has_acc_norm && show_norm) {
            j["acc_norm"] = res.acc_norm;
            j["acc_norm_stderr"] = res.acc_norm_stderr;
        }
        j["run"] = how;
        j["seconds"] = seconds;
        if (r.count("json")) {
            std::printf("%s\n", j.dump().c_str());
            return;
        }
        std::printf("%s: acc %.4f +- %.4f", task.c_str(), res.acc, res.acc_stderr);
        if (res.has_acc_norm && show_norm) std::printf(", acc_norm %.4f +- %.4f", res.acc_norm, res.acc_norm_stderr);
        std::printf(" (%lld items, %s, %.1f s)\n", (long long)res.n, how, seconds);
    };
    const auto start = std::chrono::steady_clock::now();
    auto seconds = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
    std::error_code ec;
    if (fs::is_regular_file(r["model"].as<std::string>(), ec)) {
        const infer::PackedLlama m = infer::load_packed(r["model"].as<std::string>());
        const kernels::SignActivationsScope scope(activations);
        const auto res = eval::evaluate_multiple_choice(items, encode, eval::decoder_scorer(m), options, progress);
        report(res, activations == kernels::SignActivations::Int8 ? "packed, int8 activations" : "packed", seconds());
        return 0;
    }
    const int64_t batch = positive<int64_t>(r, "batch");
    return with_model(existing_dir(r, "model"), [&](auto& m) {
        const auto res = eval::evaluate_multiple_choice(items, encode, eval::nn_scorer(m, batch), options, progress);
        report(res, "float checkpoint", seconds());
        return 0;
    });
}

// export: a bitgrad model directory -> Hugging Face's layout, as FBI-LLM's reference code and
// transformers read it (docs/interop.md lists the tensor names).
static int cmd_export(int argc, char** argv) {
    cxxopts::Options o(
        "bitgrad export",
        "Write a model in Hugging Face's layout: config.json + model.safetensors and/or pytorch_model.bin");
    o.add_options()("model", "bitgrad model directory (final/ or checkpoints/step-N)", cxxopts::value<std::string>())(
        "out", "directory to write", cxxopts::value<std::string>())(
        "dtype", "float32 (the latent weights exactly, as FBI-LLM trains them), bfloat16 or float16",
        cxxopts::value<std::string>()->default_value("float32"))(
        "format", "safetensors, pytorch (pytorch_model.bin, torch.save's layout) or both",
        cxxopts::value<std::string>()->default_value("both"))(
        "tokenizer", "SentencePiece model to copy as tokenizer.model (e.g. prepare's DATA/tokenizer.model)",
        cxxopts::value<std::string>())("h,help", "help");
    auto r = o.parse(argc, argv);
    if (r.count("help")) {
        std::cout << o.help() << "\n";
        return 0;
    }
    if (!r.count("model") || !r.count("out")) throw UsageError("export needs --model and --out");
    const auto dtype = io::parse_hf_dtype(r["dtype"].as<std::string>());
    if (!dtype) throw UsageError("--dtype " + r["dtype"].as<std::string>() + ": expected float32, bfloat16 or float16");
    const auto format = io::parse_hf_format(r["format"].as<std::string>());
    if (!format)
        throw UsageError("--format " + r["format"].as<std::string>() + ": expected safetensors, pytorch or both");
    const fs::path dir = existing_dir(r, "model"), out = output_dir(r, "out");
    const std::optional<fs::path> tokenizer =
        r.count("tokenizer") ? std::optional(existing_file(r, "tokenizer")) : std::nullopt;
    return with_model(dir, [&](const auto& m) {
        io::save_hf_model(out, m, m.config, *dtype, *format);
        if (tokenizer) write_text_atomic(out / "tokenizer.model", read_text(*tokenizer));
        std::printf("exported %s -> %s (%s", dir.c_str(), out.c_str(), io::torch_dtype_name(*dtype));
        for (const char* f : {"config.json", "model.safetensors", "pytorch_model.bin", "tokenizer.model"}) {
            std::error_code ec;
            if (fs::exists(out / f, ec)) {
                const double bytes = double(fs::file_size(out / f));
                std::printf(", %s %.1f %s", f, bytes < 1e6 ? bytes / 1e3 : bytes / 1e6, bytes < 1e6 ? "kB" : "MB");
            }
        }
        std::printf(")\n");
        return 0;
    });
}

static int cmd_generate(int argc, char** argv) {
    cxxopts::Options o("bitgrad generate", "Sample text from a checkpoint directory or a packed file (bitgrad pack)");
    o.add_options()("model", "checkpoint directory, or a packed model file (KV cache, 1-bit kernels, streamed)",
                    cxxopts::value<std::string>())("data", "prepare's directory (tokenizer.model)",
                                                   cxxopts::value<std::string>())(
        "prompt", "prompt text", cxxopts::value<std::string>()->default_value("Call me Ishmael."))(
        "prompts", "file of prompts, one per line (instead of --prompt)", cxxopts::value<std::string>())(
        "tokens", "tokens to generate", cxxopts::value<int64_t>()->default_value("60"))(
        "temperature", "0: greedy", cxxopts::value<double>()->default_value("0.8"))(
        "top-k", "keep the k most likely (0: all)", cxxopts::value<int>()->default_value("40"))(
        "top-p", "nucleus mass", cxxopts::value<double>()->default_value("0.95"))(
        "repetition-penalty", "divide the logits of tokens among the last 64 by this (1: off)",
        cxxopts::value<double>()->default_value("1.0"))("threads", "threads (0: all cores)",
                                                        cxxopts::value<int>()->default_value("0"))(
        "activations",
        "packed model: float (the trained model's numbers) or int8 (rounded per token; faster, "
        "docs/inference.md measures the cost)",
        cxxopts::value<std::string>()->default_value("float"))(
        "seed", "sampling seed", cxxopts::value<uint64_t>()->default_value("7"))("h,help", "help");
    auto r = o.parse(argc, argv);
    if (r.count("help")) {
        std::cout << o.help() << "\n";
        return 0;
    }
    if (!r.count("model") || !r.count("data")) throw UsageError("generate needs --model and --data");
    const kernels::SignActivationsScope activations_scope(activations_option(r));
    const double top_p = r["top-p"].as<double>(), penalty = r["repetition-penalty"].as<double>();
    if (!(top_p > 0 && top_p <= 1)) throw UsageError("--top-p must be in (0, 1]");
    if (!(penalty > 0)) throw UsageError("--repetition-penalty must be > 0");
    if (r["threads"].as<int>() < 0) throw UsageError("--threads must be >= 0");
    if (r["threads"].as<int>() > 0) set_num_threads(r["threads"].as<int>());
    const fs::path model_path = r["model"].as<std::string>();
    std::error_code ec;
    const bool packed_file = fs::is_regular_file(model_path, ec);
    if (!packed_file && !fs::is_directory(model_path, ec))
        throw UsageError("--model " + model_path.string() + ": no such file or directory");
    data::Tokenizer tok((existing_dir(r, "data") / "tokenizer.model").string());
    std::vector<std::string> prompts;
    if (r.count("prompts")) {
        std::istringstream lines(read_text(existing_file(r, "prompts")));
        for (std::string line; std::getline(lines, line);)
            if (!line.empty()) prompts.push_back(line);
        if (prompts.empty()) throw UsageError("--prompts " + r["prompts"].as<std::string>() + ": no non-empty line");
    } else {
        prompts.push_back(r["prompt"].as<std::string>());
    }
    infer::SamplingOptions so{r["temperature"].as<double>(), r["top-k"].as<int>(), top_p, penalty};
    const int64_t max_new = positive<int64_t>(r, "tokens");
    auto encode = [&](const std::string& text) {
        std::vector<int32_t> ids{int32_t(tok.bos_id())};
        for (int id : tok.encode(text)) ids.push_back(id);
        return ids;
    };
    auto text_of = [&](const std::vector<int32_t>& ids, std::size_t from) {
        return tok.decode(std::vector<int>(ids.begin() + std::ptrdiff_t(from), ids.end()));
    };
    if (packed_file) {
        const infer::PackedLlama model = infer::load_packed(model_path.string());
        BITGRAD_CHECK(model.config().vocab_size >= tok.vocab_size(),
                      model_path.string() << ": vocabulary " << model.config().vocab_size
                                          << " is smaller than the tokenizer's " << tok.vocab_size());
        for (const auto& prompt : prompts) {
            Rng rng(r["seed"].as<uint64_t>());
            const std::vector<int32_t> ids = encode(prompt);
            // Streamed: the text decoded so far is re-decoded after each token and only what is
            // new is printed (a SentencePiece piece may change how the previous ones detokenize).
            std::vector<int32_t> sequence = ids;
            std::string shown = text_of(ids, 1);
            std::printf("%s", shown.c_str());
            std::fflush(stdout);
            infer::GenerationStats stats;
            model.generate(
                ids, max_new, so, rng,
                [&](int32_t id) {
                    sequence.push_back(id);
                    const std::string text = text_of(sequence, 1);
                    if (text.size() > shown.size() && text.compare(0, shown.size(), shown) == 0)
                        std::printf("%s", text.c_str() + shown.size());
                    shown = text;
                    std::fflush(stdout);
                },
                &stats);
            std::printf("\n");
            std::fprintf(
                stderr,
                "[prefill %lld tokens: %.1f tok/s, decode %lld tokens: %.1f tok/s, %d threads, %s activations]\n",
                (long long)stats.prompt_tokens, stats.prefill_tokens_per_second(), (long long)stats.new_tokens,
                stats.decode_tokens_per_second(), num_threads(),
                kernels::sign_activations_name(kernels::sign_activations()));
        }
        return 0;
    }
    return with_model(model_path, [&](auto& m) {
        for (const auto& prompt : prompts) {
            Rng rng(r["seed"].as<uint64_t>());
            auto out = infer::generate(m, encode(prompt), max_new, so, rng);
            std::printf("%s\n", text_of(out, 1).c_str());
        }
        return 0;
    });
}

static int cmd_info(int argc, char** argv) {
    cxxopts::Options o("bitgrad info", "Model summary");
    o.add_options()("model", "model directory (else --preset)", cxxopts::value<std::string>())(
        "binarized", "with --preset: the FBI student")("h,help", "help");
    add_model_options(o);
    auto r = o.parse(argc, argv);
    if (r.count("help")) {
        std::cout << o.help() << "\n";
        return 0;
    }
    if (r.count("model"))
        return with_model(existing_dir(r, "model"), [&](auto& m) {
            std::printf("%s", nn::model_summary(m, r["model"].as<std::string>()).c_str());
            return 0;
        });
    auto c = model_config(r, 0, 2048);
    Rng rng(0);
    if (r.count("binarized"))
        std::printf("%s", nn::model_summary(nn::FbiLlama<float>(c, rng), "FBI-LLM").c_str());
    else
        std::printf("%s", nn::model_summary(nn::DenseLlama<float>(c, rng), "LLaMA").c_str());
    return 0;
}

int main(int argc, char** argv) {
#ifdef BITGRAD_WITH_MPI
    // A world of one without mpirun. A rank that fails ends the whole job (MPI_Abort), so no rank
    // is left waiting in a collective for it.
    dist::MpiSession mpi(argc, argv);
    job().data_parallel = dist::mpi_data_parallel();
    auto fail = [&](const std::string& message) {
        if (mpi.size() > 1) mpi.abort(message);
    };
#else
    auto fail = [](const std::string&) {};
#endif
    const std::string usage =
        "usage: bitgrad {prepare|train|distill|eval|pack|generate|info|export|convert|zeroshot} [options]  (--help on "
        "each)\n";
    if (argc < 2) {
        std::fprintf(stderr, "%s", usage.c_str());
        return 2;
    }
    const std::string cmd = argv[1];
    try {
        if (cmd == "prepare") return cmd_prepare(argc - 1, argv + 1);
        if (cmd == "train") return cmd_train(argc - 1, argv + 1);
        if (cmd == "distill") return cmd_distill(argc - 1, argv + 1);
        if (cmd == "eval") return cmd_eval(argc - 1, argv + 1);
        if (cmd == "pack") return cmd_pack(argc - 1, argv + 1);
        if (cmd == "generate") return cmd_generate(argc - 1, argv + 1);
        if (cmd == "info") return cmd_info(argc - 1, argv + 1);
        if (cmd == "export") return cmd_export(argc - 1, argv + 1);
        if (cmd == "zeroshot") return cmd_zeroshot(argc - 1, argv + 1);
        if (cmd == "convert") return cmd_convert(argc - 1, argv + 1);
        std::fprintf(stderr, "unknown command '%s'\n%s", cmd.c_str(), usage.c_str());
        return 2;
    } catch (const UsageError& e) {
        std::fprintf(stderr, "bitgrad %s: %s\n", cmd.c_str(), e.what());
        return 2;
    } catch (const cxxopts::exceptions::exception& e) {
        std::fprintf(stderr, "bitgrad %s: %s\n", cmd.c_str(), e.what());
        return 2;
    } catch (const Error& e) {
        fail(std::string("bitgrad ") + cmd + ": error: " + e.what());
        std::fprintf(stderr, "bitgrad %s: error: %s\n", cmd.c_str(), e.what());
        return 1;
    } catch (const std::bad_alloc&) {
        fail("bitgrad " + cmd + ": error: out of memory");
        std::fprintf(
            stderr, "bitgrad %s: error: out of memory (a size check should have caught this first: please report it)\n",
            cmd.c_str());
        return 1;
    } catch (const std::exception& e) {
        fail("bitgrad " + cmd + ": internal error: " + e.what());
        // Last resort only: every expected failure is a bitgrad::Error naming the file and field.
        std::fprintf(stderr, "bitgrad %s: internal error: %s (please report it)\n", cmd.c_str(), e.what());
        return 1;
    }
}
