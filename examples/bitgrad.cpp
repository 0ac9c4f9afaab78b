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
#include <thread>

#include <bitgrad/bitgrad.hpp>
#include <bitgrad/data/sentencepiece.hpp>
#include <bitgrad/data/text_split.hpp>
#include <bitgrad/train/run_directory.hpp>
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
template <class V>
static V non_negative(const cxxopts::ParseResult& r, const char* name) {
    const V v = r[name].as<V>();
    if (!(v >= 0)) throw UsageError(std::string("--") + name + " must be >= 0, got " + std::to_string(v));
    return v;
}

// Every long option name of o, for "did you mean".
static std::vector<std::string> option_names(const cxxopts::Options& o) {
    std::vector<std::string> names;
    for (const auto& g : o.groups())
        for (const auto& d : o.group_help(g).options)
            for (const auto& l : d.l) names.push_back(l);
    return names;
}

// Levenshtein distance, for suggestions.
static std::size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<std::size_t> row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        std::size_t diag = row[0];
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
            diag = up;
        }
    }
    return row[b.size()];
}

// " (did you mean 'x'?)" for the closest of candidates within two edits (or a prefix), else "".
static std::string did_you_mean(const std::string& given, const std::vector<std::string>& candidates,
                                const std::string& prefix = "") {
    std::string best;
    std::size_t best_d = 3;
    for (const auto& c : candidates) {
        const std::size_t d = c.rfind(given, 0) == 0 && !given.empty() ? 1 : edit_distance(given, c);
        if (d < best_d) best_d = d, best = c;
    }
    return best.empty() ? "" : " (did you mean '" + prefix + best + "'?)";
}

// o.parse with errors that name the option: an unknown option gets a suggestion, a value that does
// not parse names its option (cxxopts only says "Argument 'abc' failed to parse").
static cxxopts::ParseResult parse_options(cxxopts::Options& o, int argc, char** argv) {
    try {
        return o.parse(argc, argv);
    } catch (const cxxopts::exceptions::no_such_option& e) {
        std::string given;
        for (int i = 1; i < argc; ++i) {
            std::string a = argv[i];
            if (a.rfind("--", 0) != 0) continue;
            a = a.substr(2, a.find('=') == std::string::npos ? std::string::npos : a.find('=') - 2);
            const auto names = option_names(o);
            if (std::find(names.begin(), names.end(), a) == names.end()) {
                given = a;
                break;
            }
        }
        throw UsageError(std::string(e.what()) + did_you_mean(given, option_names(o), "--") + "; see --help");
    } catch (const cxxopts::exceptions::incorrect_argument_type& e) {
        // The value is the argument after its option, or the part after '=' of --option=value.
        auto is_bad = [&](const std::string& value) {
            return std::string(cxxopts::exceptions::incorrect_argument_type(value).what()) == e.what();
        };
        for (int i = 1; i < argc; ++i) {
            const std::string a = argv[i];
            const auto eq = a.find('=');
            if (a.rfind("--", 0) == 0 && eq != std::string::npos && is_bad(a.substr(eq + 1)))
                throw UsageError(a.substr(0, eq) + " " + a.substr(eq + 1) + ": not a valid value (see --help)");
            if (i + 1 < argc && a.rfind("-", 0) == 0 && is_bad(argv[i + 1]))
                throw UsageError(a + " " + argv[i + 1] + ": not a valid value (see --help)");
        }
        throw UsageError(e.what());
    }
}

// --threads N (0: OpenMP's default, OMP_NUM_THREADS or every core). More threads than a few per core
// only wait for each other, and tens of thousands exhaust the process's stacks: bounded.
static int max_threads() { return 4 * std::max(1, int(std::thread::hardware_concurrency())); }
static void apply_threads(const cxxopts::ParseResult& r) {
    const int n = r["threads"].as<int>();
    if (n < 0) throw UsageError("--threads must be >= 0 (0: all cores), got " + std::to_string(n));
    if (n > max_threads())
        throw UsageError("--threads " + std::to_string(n) + ": at most " + std::to_string(max_threads()) +
                         " (4 x the " + std::to_string(std::thread::hardware_concurrency()) +
                         " hardware threads of this machine)");
    if (n > 0) set_num_threads(n);
}
static void add_threads_option(cxxopts::Options& o) {
    o.add_options()("threads", "threads (0: OMP_NUM_THREADS, else all cores)",
                    cxxopts::value<int>()->default_value("0"));
}

// The tokenizer for a model: --tokenizer, else --data's, else the one a packed file carries, else a
// model directory's tokenizer.model (train and distill copy it into final/).
static std::optional<data::Tokenizer> find_tokenizer(const cxxopts::ParseResult& r, const fs::path& model,
                                                     bool required) {
    std::error_code ec;
    if (r.count("tokenizer")) return data::Tokenizer(existing_file(r, "tokenizer").string());
    if (r.count("data")) return data::Tokenizer((existing_dir(r, "data") / "tokenizer.model").string());
    if (fs::is_regular_file(model, ec)) {
        if (auto bytes = infer::load_packed_tokenizer(model.string()))
            return data::Tokenizer::from_bytes(*bytes, model.string() + " (tokenizer.model)");
    } else if (fs::is_regular_file(model / "tokenizer.model", ec)) {
        return data::Tokenizer((model / "tokenizer.model").string());
    }
    if (required)
        throw UsageError("no tokenizer: " + model.string() + " carries none; give --data DIR or --tokenizer FILE");
    return std::nullopt;
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
        "hold out every N-th chapter (the chapters numbered by 'CHAPTER N.' lines that are multiples of N) or, in a "
        "text without such lines, every N-th paragraph (blank-line separated)",
        cxxopts::value<int>()->default_value("10"))(
        "val-fraction", "instead: hold out the last fraction of the text (e.g. 0.1), cut at a line break",
        cxxopts::value<double>())(
        "tokenizer",
        "an existing SentencePiece .model to use instead of training one (e.g. the LLaMA-2 tokenizer of "
        "scripts/fetch_llama2_tokenizer.sh); copied into --out",
        cxxopts::value<std::string>())("h,help", "help");
    auto r = parse_options(o, argc, argv);
    if (r.count("help")) {
        std::cout << o.help() << "\n";
        return 0;
    }
    if (!r.count("text") || !r.count("out")) throw UsageError("prepare needs --text and --out");
    const fs::path text_path = existing_file(r, "text"), out = output_dir(r, "out");
    const int vocab = positive<int>(r, "vocab"), every = r["holdout-every"].as<int>();
    if (r.count("tokenizer") && r.count("vocab"))
        throw UsageError("--vocab and --tokenizer exclude each other (the tokenizer's vocabulary is used)");
    if (r.count("val-fraction") && r.count("holdout-every"))
        throw UsageError("--holdout-every and --val-fraction exclude each other");
    const fs::path given_tokenizer = r.count("tokenizer") ? existing_file(r, "tokenizer") : fs::path();
    if (!given_tokenizer.empty()) data::Tokenizer{given_tokenizer.string()};  // not a SentencePiece model: stop here
    const std::string text = read_text(text_path);
    data::TextSplit split;
    if (r.count("val-fraction")) {
        const double f = r["val-fraction"].as<double>();
        if (!(f > 0 && f < 1)) throw UsageError("--val-fraction must be in (0, 1), got " + std::to_string(f));
        split = data::split_tail(text, f, text_path.string());
    } else if (every == 0) {  // the spelling of a tail split before --val-fraction
        split = data::split_tail(text, 0.1, text_path.string());
    } else {
        if (every < 2) throw UsageError("--holdout-every must be >= 2, got " + std::to_string(every));
        split = data::split_every(text, every, text_path.string());
    }
    // Everything is written into a staging directory and moved into --out at the end, so a failure
    // (a tokenizer that cannot be trained, a full disk) leaves no partial output behind.
    ensure_directory(out);
    const fs::path stage = out / ".prepare.tmp";
    remove_tree(stage);
    ensure_directory(stage);
    try {
        write_text_atomic(stage / "train.txt", split.train);
        write_text_atomic(stage / "val.txt", split.val);
        if (split.unit == "tail")
            std::printf("prepare: %zu train bytes, %zu validation bytes (the last %.0f%% of the text)\n",
                        split.train.size(), split.val.size(), 100.0 * double(split.val.size()) / double(text.size()));
        else
            std::printf("prepare: %zu train bytes, %zu validation bytes (%lld of %lld %s held out)\n",
                        split.train.size(), split.val.size(), (long long)split.held_units, (long long)split.units,
                        split.unit.c_str());
        if (given_tokenizer.empty()) {
            data::train_bpe_tokenizer((stage / "train.txt").string(), (stage / "tokenizer").string(), vocab,
                                      num_threads());
        } else {
            write_text_atomic(stage / "tokenizer.model", read_text(given_tokenizer));
            std::printf("prepare: tokenizer %s\n", given_tokenizer.c_str());
        }
        data::Tokenizer tok((stage / "tokenizer.model").string());
        for (auto [name, part] : {std::pair{"train", &split.train}, std::pair{"val", &split.val}}) {
            std::vector<uint32_t> ids;
            ids.push_back(uint32_t(tok.bos_id()));
            for (int id : tok.encode(*part)) ids.push_back(uint32_t(id));
            data::write_token_shard(stage / (std::string(name) + ".bin"), ids, uint64_t(tok.vocab_size()));
            std::printf("prepare: %s.bin: %zu tokens (%.2f bytes/token)\n", name, ids.size(),
                        double(part->size()) / double(ids.size()));
        }
        data::save_dataset_info(stage, {tok.vocab_size(), int64_t(split.train.size()), int64_t(split.val.size())});
        for (const auto& e : fs::directory_iterator(stage)) fs::rename(e.path(), out / e.path().filename());
        fsync_directory(out);
        remove_tree(stage);
    } catch (...) {
        std::error_code ignored;
        fs::remove_all(stage, ignored);
        throw;
    }
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
    opt.adamw.weight_decay = non_negative<double>(r, "wd");
    opt.min_lr = non_negative<double>(r, "min-lr");
    opt.warmup_steps = non_negative<int64_t>(r, "warmup");
    opt.clip_norm = non_negative<double>(r, "clip");
    opt.log_every = positive<int64_t>(r, "log-every");
    opt.eval_every = r["eval-every"].as<int64_t>() > 0 ? r["eval-every"].as<int64_t>() : opt.steps;
    opt.save_every = non_negative<int64_t>(r, "save-every");
    opt.keep_last = non_negative<int>(r, "keep");
    opt.seed = r["seed"].as<uint64_t>();
    opt.loss = loss;
    if (loss != train::Loss::CE) opt.temperature = positive<double>(r, "ad-temperature");
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
    if (start == train::RunStart::Fresh && !run_dir.leftovers().empty()) {
        std::string left;
        for (const auto& l : run_dir.leftovers()) left += (left.empty() ? "" : ", ") + l;
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
            return eval::perplexity(s, *val, val_seq, 8, windows).nll;
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
        metrics.write(j);
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
    io::save_model(run_dir.final_model(), student, student.config);
    // The tokenizer goes with the model, so that pack, generate and eval need no --data.
    if (fs::is_regular_file(data_dir / "tokenizer.model", ec))
        write_text_atomic(run_dir.final_model() / "tokenizer.model", read_text(data_dir / "tokenizer.model"));
    std::printf("%s model: %s\n", finished ? "final" : "interrupted; saved", run_dir.final_model().c_str());
    return 0;
}

static void add_training_options(cxxopts::Options& o) {
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
}

static int cmd_train(int argc, char** argv) {
    cxxopts::Options o("bitgrad train", "Train with cross-entropy");
    add_training_options(o);
    o.add_options()("binarized", "FBI-Linear layers (from scratch)");
    auto r = parse_options(o, argc, argv);
    if (r.count("help")) {
        std::cout << o.help() << "\n";
        return 0;
    }
    if (!r.count("data") || !r.count("out")) throw UsageError("train needs --data and --out");
    apply_threads(r);
    auto config =
        model_config(r, data::load_dataset_info(existing_dir(r, "data")).vocab_size, positive<int64_t>(r, "seq"));
    if (r.count("binarized")) return run_training<nn::FbiLlama<float>>(r, config, nullptr, train::Loss::CE);
    return run_training<nn::DenseLlama<float>>(r, config, nullptr, train::Loss::CE);
}

static int cmd_distill(int argc, char** argv) {
    cxxopts::Options o("bitgrad distill", "Distill a binarized student from a teacher");
    add_training_options(o);
    o.add_options("distillation")("teacher",
                                  "teacher model directory: config.json + model.safetensors, or Hugging Face's "
                                  "sharded layout (model.safetensors.index.json; F32, F16 or BF16)",
                                  cxxopts::value<std::string>())(
        "loss", "ad (soft cross-entropy to the teacher), mixed (0.5 CE + 0.5 AD)",
        cxxopts::value<std::string>()->default_value("ad"))(
        "ad-temperature", "temperature of the teacher's and the student's softmax in the AD loss",
        cxxopts::value<double>()->default_value("1.0"))(
        "teacher-storage",
        "how the teacher is held: auto (bf16 when its files hold F16/BF16 tensors, else float), bf16 (2 bytes a "
        "weight, its products in bf16), float (4 bytes a weight)",
        cxxopts::value<std::string>()->default_value("auto"));
    // The spelling before the rename (generate's --temperature is the sampling temperature).
    o.add_options("renamed")("temperature", "now --ad-temperature", cxxopts::value<double>());
    auto r = parse_options(o, argc, argv);
    if (r.count("help")) {
        std::cout << o.help({"", "model", "distillation"}) << "\n";
        return 0;
    }
    if (r.count("temperature"))
        throw UsageError(
            "--temperature is now --ad-temperature (the AD loss's temperature; generate's --temperature "
            "is the sampling one)");
    if (!r.count("data") || !r.count("out") || !r.count("teacher"))
        throw UsageError("distill needs --data, --out and --teacher");
    apply_threads(r);
    const std::string l = r["loss"].as<std::string>(), storage = r["teacher-storage"].as<std::string>();
    if (l != "ad" && l != "mixed") throw UsageError("--loss " + l + ": expected ad or mixed");
    if (storage != "auto" && storage != "bf16" && storage != "float")
        throw UsageError("--teacher-storage " + storage + ": expected auto, bf16 or float");
    existing_dir(r, "data");
    std::error_code ec;
    const fs::path tpath = r["teacher"].as<std::string>();
    if (fs::is_regular_file(tpath, ec))
        throw UsageError("--teacher " + tpath.string() +
                         ": a file; a teacher is a full-precision model directory (config.json + model.safetensors "
                         "or shards), not a packed 1-bit model or a single tensor file");
    const fs::path tdir = existing_dir(r, "teacher");
    auto tconfig = io::load_config(tdir / "config.json", sizeof(float));
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
    auto config = io::load_config(dir / "config.json", sizeof(float));
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
    if (!r.count("model")) throw UsageError("eval --text needs --model");
    const fs::path text_path = existing_file(r, "text");
    const kernels::SignActivations activations = activations_option(r);
    const std::string text = read_text(text_path);
    const data::Tokenizer tok = *find_tokenizer(r, r["model"].as<std::string>(), true);
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
    const infer::OpenedModel opened = infer::open_model(r["model"].as<std::string>());
    const kernels::SignActivationsScope scope(activations);
    const int64_t seq = r.count("seq") ? positive<int64_t>(r, "seq") : opened.model->config().max_position_embeddings;
    const std::string how = !opened.packed                                  ? "float checkpoint"
                            : activations == kernels::SignActivations::Int8 ? "packed, int8 activations"
                                                                            : "packed";
    report(eval::decoder_paper_perplexity(*opened.model, tokens, seq, progress), seq, how.c_str());
    return 0;
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
        cxxopts::value<std::string>())(
        "tokenizer", "with --text: the SentencePiece model (default: --data's, or the one the model carries)",
        cxxopts::value<std::string>())("h,help", "help");
    add_threads_option(o);
    auto r = parse_options(o, argc, argv);
    if (r.count("help")) {
        std::cout << o.help() << "\n";
        return 0;
    }
    apply_threads(r);
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
        cxxopts::value<std::string>()->default_value("bf16"))(
        "tokenizer",
        "SentencePiece model to carry in the file, so generate and eval need no --data (default: the model "
        "directory's tokenizer.model, which train and distill write)",
        cxxopts::value<std::string>())("data", "instead of --tokenizer: prepare's directory (its tokenizer.model)",
                                       cxxopts::value<std::string>())("h,help", "help");
    auto r = parse_options(o, argc, argv);
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
    const auto config = io::load_config(dir / "config.json", sizeof(float));
    BITGRAD_CHECK(config.binarized,
                  dir.string() << "/config.json: \"binarized\" is false; pack needs an FBI-LLM (binarized) model");
    Rng rng(0);
    nn::FbiLlama<float> model(config, rng);
    io::load_hf_weights(dir, model, config.tie_word_embeddings);
    const infer::PackedLlama packed(model, tables);
    const std::optional<data::Tokenizer> tok = find_tokenizer(r, dir, false);
    if (tok && tok->vocab_size() > config.vocab_size)
        throw UsageError("the tokenizer has " + std::to_string(tok->vocab_size()) + " tokens, more than the model's " +
                         std::to_string(config.vocab_size));
    infer::save_packed(out, packed, {{"source", dir.string()}}, tok ? tok->serialized() : std::string());
    if (!tok)
        std::fprintf(stderr,
                     "warning: no tokenizer found (--tokenizer, --data or %s/tokenizer.model): the packed "
                     "file carries none, generate and eval will need --data\n",
                     dir.c_str());
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
        "packed %s -> %s%s\n  float checkpoint %.2f MB, packed %.2f MB (%.1fx smaller)\n"
        "  logits of a %lld-token probe vs the float model: max |diff| %.3g (%.2g of max |logit|); "
        "with int8 activations (generate --activations int8) %.3g (%.2g)\n",
        dir.string().c_str(), out.string().c_str(), tok ? " (with its tokenizer)" : "",
        double(stats.bytes_fp32()) / 1e6, double(fs::file_size(out)) / 1e6,
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
    auto r = parse_options(o, argc, argv);
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
    // A view that repeats its storage (stride 0, as expand() makes) is written out whole: said first.
    const std::vector<std::string> names =
        io::convert_torch_to_safetensors(inputs, out / "model.safetensors", [](const io::TorchExpandedView& v) {
            std::fprintf(stderr, "note: %s is a view of %llu bytes of storage that expands to %s (%s)\n",
                         v.name.c_str(), (unsigned long long)v.storage_bytes, v.shape.str().c_str(),
                         format_bytes(double(v.bytes)).c_str());
        });
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
        cxxopts::value<std::string>())("task", "with --in: " + eval::mc_task_names(), cxxopts::value<std::string>())(
        "in", "the task's official JSONL file (e.g. PIQA's valid.jsonl)", cxxopts::value<std::string>())(
        "labels", "PIQA: the labels file (valid-labels.lst) when the records hold no label",
        cxxopts::value<std::string>())("write-items", "write the converted items to this JSONL file",
                                       cxxopts::value<std::string>())("limit", "score the first N items only (0: all)",
                                                                      cxxopts::value<int64_t>()->default_value("0"))(
        "batch", "requests a forward (float checkpoints)", cxxopts::value<int64_t>()->default_value("8"))(
        "activations", "packed model: float or int8 (as generate)",
        cxxopts::value<std::string>()->default_value("float"))("json", "print one JSON line")("h,help", "help");
    add_threads_option(o);
    auto r = parse_options(o, argc, argv);
    if (r.count("help")) {
        std::cout << o.help() << "\n";
        return 0;
    }
    apply_threads(r);
    if (r.count("items") == r.count("in"))
        throw UsageError("zeroshot needs --items FILE, or --task NAME with --in OFFICIAL_FILE");
    if (r.count("in") && !r.count("task")) throw UsageError("--in needs --task (which layout the file has)");
    if (r.count("task")) try {
            eval::mc_task(r["task"].as<std::string>());  // known? (the message lists them)
        } catch (const Error& e) { throw UsageError(e.what()); }
    if (r["limit"].as<int64_t>() < 0) throw UsageError("--limit must be >= 0");
    std::error_code ec;
    if (r.count("write-items") && fs::is_directory(r["write-items"].as<std::string>(), ec))
        throw UsageError("--write-items " + r["write-items"].as<std::string>() + ": is a directory (name the file)");
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
    if (!r.count("model")) throw UsageError("zeroshot needs --model (or --write-items alone, to convert)");
    if (r["limit"].as<int64_t>() > 0 && size_t(r["limit"].as<int64_t>()) < items.size())
        items.resize(size_t(r["limit"].as<int64_t>()));
    const data::Tokenizer tok = *find_tokenizer(r, r["model"].as<std::string>(), true);
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
    auto r = parse_options(o, argc, argv);
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
        cxxopts::value<double>()->default_value("1.0"))(
        "activations",
        "packed model: float (the trained model's numbers) or int8 (rounded per token; faster, "
        "docs/inference.md measures the cost)",
        cxxopts::value<std::string>()->default_value("float"))("seed", "sampling seed",
                                                               cxxopts::value<uint64_t>()->default_value("7"))(
        "tokenizer", "SentencePiece model (default: --data's, or the one the model carries)",
        cxxopts::value<std::string>())("h,help", "help");
    add_threads_option(o);
    auto r = parse_options(o, argc, argv);
    if (r.count("help")) {
        std::cout << o.help() << "\n";
        return 0;
    }
    if (!r.count("model")) throw UsageError("generate needs --model");
    const kernels::SignActivationsScope activations_scope(activations_option(r));
    const double top_p = r["top-p"].as<double>(), penalty = r["repetition-penalty"].as<double>();
    if (!(top_p > 0 && top_p <= 1)) throw UsageError("--top-p must be in (0, 1]");
    if (!(penalty > 0)) throw UsageError("--repetition-penalty must be > 0");
    non_negative<double>(r, "temperature");
    non_negative<int>(r, "top-k");
    apply_threads(r);
    const fs::path model_path = r["model"].as<std::string>();
    std::error_code ec;
    if (!fs::is_regular_file(model_path, ec) && !fs::is_directory(model_path, ec))
        throw UsageError("--model " + model_path.string() + ": no such file or directory");
    const data::Tokenizer tok = *find_tokenizer(r, model_path, true);
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
    // A packed file or a model directory: the same decoder code, the same KV cache and sampling.
    const infer::OpenedModel opened = infer::open_model(model_path);
    const infer::CausalLM& model = *opened.model;
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
        try {
            infer::generate(
                model, ids, max_new, so, rng,
                [&](int32_t id) {
                    sequence.push_back(id);
                    const std::string text = text_of(sequence, 1);
                    if (text.size() > shown.size() && text.compare(0, shown.size(), shown) == 0)
                        std::printf("%s", text.c_str() + shown.size());
                    shown = text;
                    std::fflush(stdout);
                },
                &stats);
        } catch (const Error& e) {  // the KV cache's size refusal: its positions come from --tokens
            std::printf("\n");
            const std::string what = e.what();
            if (what.rfind("generate: ", 0) == 0 && what.find("max_new") != std::string::npos)
                throw Error("--tokens " + std::to_string(max_new) + ": " + what);
            throw;
        }
        std::printf("\n");
        std::fflush(stdout);  // the text's line ends before the speed line starts (2>&1 into one pipe)
        const std::string how =
            opened.packed ? std::string(kernels::sign_activations_name(kernels::sign_activations())) + " activations"
                          : opened.description;
        std::fprintf(stderr, "[prefill %lld tokens: %.1f tok/s, decode %lld tokens: %.1f tok/s, %d threads, %s]\n",
                     (long long)stats.prompt_tokens, stats.prefill_tokens_per_second(), (long long)stats.new_tokens,
                     stats.decode_tokens_per_second(), num_threads(), how.c_str());
        if (stats.context_full)
            std::fprintf(stderr, "[stopped at the model's context of %lld positions (max_position_embeddings)]\n",
                         (long long)model.config().max_position_embeddings);
    }
    return 0;
}

static int cmd_info(int argc, char** argv) {
    cxxopts::Options o("bitgrad info", "Model summary");
    o.add_options()("model", "model directory (else --preset)", cxxopts::value<std::string>())(
        "binarized", "with --preset: the FBI student")("h,help", "help");
    add_model_options(o);
    auto r = parse_options(o, argc, argv);
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

// The commands: name, one line of help, and the function that runs it.
struct Command {
    const char* name;
    const char* summary;
    int (*run)(int, char**);
};
static const Command kCommands[] = {
    {"prepare", "text -> tokenizer + train/validation token shards", cmd_prepare},
    {"train", "train a model with cross-entropy (full precision, or --binarized FBI-LLM)", cmd_train},
    {"distill", "distill a binarized student from a full-precision teacher (AD loss)", cmd_distill},
    {"eval", "perplexity and bits per byte (validation shard, or a text with FBI-LLM's protocol)", cmd_eval},
    {"zeroshot", "multiple-choice accuracy as lm-evaluation-harness 0.4.2 scores it", cmd_zeroshot},
    {"pack", "a trained FBI-LLM -> one packed file (1 bit per binarized weight, its tokenizer)", cmd_pack},
    {"generate", "sample text from a model directory or a packed file", cmd_generate},
    {"info", "model summary: parameters, 1-bit share, storage", cmd_info},
    {"export", "a model in Hugging Face's layout (safetensors / pytorch_model.bin)", cmd_export},
    {"convert", "a PyTorch pytorch_model.bin -> model.safetensors, running no pickle code", cmd_convert},
};

static std::string usage() {
    std::string u = "usage: bitgrad <command> [options]   (bitgrad <command> --help for its options)\n\ncommands:\n";
    for (const auto& c : kCommands) {
        char line[160];
        std::snprintf(line, sizeof line, "  %-9s %s\n", c.name, c.summary);
        u += line;
    }
    return u + "\n  --version  print the version and build\n  --help     this list\n";
}

static std::string version() {
    std::string v = std::string("bitgrad ") + BITGRAD_VERSION + " (";
#ifdef BITGRAD_USE_BLAS
    v += "OpenBLAS GEMM";
#else
    v += "Eigen GEMM";
#endif
#ifdef BITGRAD_WITH_MPI
    v += ", MPI";
#endif
    v += ", sign kernel " + std::string(kernels::sign_kernel_name(kernels::sign_kernel())) + ", " +
         std::to_string(std::thread::hardware_concurrency()) + " hardware threads)";
    return v;
}

int main(int argc, char** argv) {
#ifdef BITGRAD_WITH_MPI
    // MPI only under mpirun (or another MPI launcher): a plain run initialising MPI would become a
    // singleton with an orted daemon of its own. A rank that fails ends the whole job (MPI_Abort),
    // so no rank is left waiting in a collective for it.
    std::optional<dist::MpiSession> mpi;
    if (dist::launched_by_mpi()) {
        mpi.emplace(argc, argv);
        job().data_parallel = dist::mpi_data_parallel();
    }
    auto fail = [&](const std::string& message) {
        if (mpi && mpi->size() > 1) mpi->abort(message);
    };
#else
    auto fail = [](const std::string&) {};
#endif
    if (argc < 2) {
        std::fprintf(stderr, "%s", usage().c_str());
        return 2;
    }
    const std::string cmd = argv[1];
    if (cmd == "--help" || cmd == "-h" || cmd == "help") {
        std::printf("%s", usage().c_str());
        return 0;
    }
    if (cmd == "--version") {
        std::printf("%s\n", version().c_str());
        return 0;
    }
    // OMP_NUM_THREADS is bounded like --threads: tens of thousands of threads exhaust the stacks.
    if (num_threads() > max_threads()) {
        std::fprintf(stderr, "warning: OMP_NUM_THREADS=%d is more than %d (4 x the hardware threads); using %d\n",
                     num_threads(), max_threads(), max_threads());
        set_num_threads(max_threads());
    }
    const Command* command = nullptr;
    for (const auto& c : kCommands)
        if (cmd == c.name) command = &c;
    if (!command) {
        std::vector<std::string> names;
        for (const auto& c : kCommands) names.push_back(c.name);
        std::fprintf(stderr, "bitgrad: unknown command '%s'%s\n\n%s", cmd.c_str(), did_you_mean(cmd, names).c_str(),
                     usage().c_str());
        return 2;
    }
    try {
        return command->run(argc - 1, argv + 1);
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
