// bitgrad: the command-line program. Subcommands:
//   prepare   text -> SentencePiece BPE tokenizer + train/validation token shards
//   train     train a model with cross-entropy (full precision, or --binarized FBI-LLM)
//   distill   distill a binarized student from scratch from a teacher checkpoint (AD loss)
//   eval      validation perplexity and bits per byte
//   generate  sample text (temperature / top-k / top-p, seeded)
//   info      model summary (parameters, 1-bit share, storage)
// Run `bitgrad <command> --help` for the options. Bad options exit with code 2 before any work.
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cxxopts.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <sstream>

#include <bitgrad/bitgrad.hpp>
#include <bitgrad/data/sentencepiece.hpp>

using namespace bitgrad;
namespace fs = std::filesystem;

struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

static std::string read_text(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    if (!f) throw UsageError("cannot read " + p.string());
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

template <class V>
static V positive(const cxxopts::ParseResult& r, const char* name) {
    const V v = r[name].as<V>();
    if (!(v > 0)) throw UsageError(std::string("--") + name + " must be > 0, got " + std::to_string(v));
    return v;
}

// ---------------------------------------------------------------- prepare
static int cmd_prepare(int argc, char** argv) {
    cxxopts::Options o("bitgrad prepare", "Train a BPE tokenizer and write token shards");
    o.add_options()("text", "input text file (UTF-8)", cxxopts::value<std::string>())
        ("out", "output directory", cxxopts::value<std::string>())
        ("vocab", "vocabulary size", cxxopts::value<int>()->default_value("4096"))
        ("holdout-every", "hold out every chapter whose number is a multiple of N (lines 'CHAPTER N.'); 0: last 10% of the text",
         cxxopts::value<int>()->default_value("10"))
        ("h,help", "help");
    auto r = o.parse(argc, argv);
    if (r.count("help")) { std::cout << o.help() << "\n"; return 0; }
    if (!r.count("text") || !r.count("out")) throw UsageError("prepare needs --text and --out");
    const std::string text = read_text(r["text"].as<std::string>());
    const int vocab = positive<int>(r, "vocab"), every = r["holdout-every"].as<int>();
    std::string train, val;
    int chapters = 0;
    if (every > 0) {
        static const std::regex heading(R"(^CHAPTER (\d+)\.)");
        std::istringstream in(text);
        std::string line;
        bool held = false;
        while (std::getline(in, line)) {
            std::smatch m;
            if (std::regex_search(line, m, heading)) {
                held = std::stoi(m[1]) % every == 0;
                ++chapters;
            }
            (held ? val : train) += line + "\n";
        }
        if (chapters == 0) throw UsageError("--holdout-every " + std::to_string(every) + ": no 'CHAPTER N.' lines in the text; use --holdout-every 0");
    } else {
        const std::size_t cut = text.size() * 9 / 10;
        train = text.substr(0, cut);
        val = text.substr(cut);
    }
    const fs::path out = r["out"].as<std::string>();
    fs::create_directories(out);
    io::write_text_atomic(out / "train.txt", train);
    io::write_text_atomic(out / "val.txt", val);
    std::printf("prepare: %zu train bytes, %zu validation bytes (%d chapters seen)\n", train.size(), val.size(), chapters);
    data::train_bpe_tokenizer((out / "train.txt").string(), (out / "tokenizer").string(), vocab, num_threads());
    data::Tokenizer tok((out / "tokenizer.model").string());
    for (auto [name, part] : {std::pair{"train", &train}, std::pair{"val", &val}}) {
        std::vector<uint32_t> ids;
        ids.push_back(uint32_t(tok.bos_id()));
        for (int id : tok.encode(*part)) ids.push_back(uint32_t(id));
        data::write_token_shard(out / (std::string(name) + ".bin"), ids, uint64_t(tok.vocab_size()));
        std::printf("prepare: %s.bin: %zu tokens (%.2f bytes/token)\n", name, ids.size(), double(part->size()) / double(ids.size()));
    }
    nlohmann::json meta = {{"vocab_size", tok.vocab_size()}, {"train_bytes", train.size()}, {"val_bytes", val.size()}};
    io::write_text_atomic(out / "data.json", meta.dump(1) + "\n");
    return 0;
}

// ---------------------------------------------------------------- model options shared by train/distill/info
static void add_model_options(cxxopts::Options& o) {
    o.add_options("model")("preset", "tiny, 130M, 1.3B, 7B, or custom (the size flags below)", cxxopts::value<std::string>()->default_value("custom"))
        ("layers", "decoder layers", cxxopts::value<int64_t>()->default_value("4"))
        ("hidden", "hidden size", cxxopts::value<int64_t>()->default_value("128"))
        ("intermediate", "MLP size", cxxopts::value<int64_t>()->default_value("352"))
        ("heads", "attention heads", cxxopts::value<int64_t>()->default_value("4"))
        ("kv-heads", "key/value heads (GQA); 0: = heads", cxxopts::value<int64_t>()->default_value("0"))
        ("ste", "straight-through estimator: identity, clipped, approx_sign", cxxopts::value<std::string>()->default_value("identity"));
}

static nn::LlamaConfig model_config(const cxxopts::ParseResult& r, int64_t vocab, int64_t max_pos) {
    nn::LlamaConfig c;
    const std::string preset = r["preset"].as<std::string>();
    if (preset != "custom") {
        c = nn::LlamaConfig::preset(preset);
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
    if (ste == "identity") c.ste = Ste::Identity;
    else if (ste == "clipped") c.ste = Ste::Clipped;
    else if (ste == "approx_sign") c.ste = Ste::ApproxSign;
    else throw UsageError("--ste " + ste + ": expected identity, clipped or approx_sign");
    c.validate();
    return c;
}

// ---------------------------------------------------------------- train / distill
static void on_sigint(int) { train::stop_requested() = true; }

template <class Student>
static int run_training(const cxxopts::ParseResult& r, nn::LlamaConfig config, const nn::DenseLlama<float>* teacher,
                        train::Loss loss) {
    const fs::path data_dir = r["data"].as<std::string>(), out = r["out"].as<std::string>();
    data::TokenShard shard((data_dir / "train.bin").string());
    BITGRAD_CHECK(int64_t(shard.vocab_size()) == config.vocab_size, "model vocab " << config.vocab_size << " != data vocab " << shard.vocab_size());
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
    opt.save_every = r["save-every"].as<int64_t>();
    opt.keep_last = r["keep"].as<int>();
    opt.seed = r["seed"].as<uint64_t>();
    opt.loss = loss;
    opt.temperature = positive<double>(r, "temperature");
    opt.out_dir = out.string();
    fs::create_directories(out);

    Rng init(opt.seed);
    Student student(config, init);
    train::Trainer<float, Student> trainer(student, teacher, shard, opt);
    if (r.count("resume")) {
        auto last = io::latest_checkpoint(out / "checkpoints", [](const std::string& w) { std::fprintf(stderr, "warning: %s\n", w.c_str()); });
        if (last) {
            trainer.resume(*last);
            std::printf("resumed from %s at step %lld\n", last->c_str(), (long long)trainer.step());
        } else {
            std::printf("no checkpoint under %s; starting from scratch\n", (out / "checkpoints").c_str());
        }
    }
    std::ofstream metrics(out / "metrics.jsonl", std::ios::app);
    const bool tty = isatty(STDOUT_FILENO);
    std::printf("%s: %s model, %s loss, %lld steps of %lld x %lld tokens, seed %llu, %d threads\n", loss == train::Loss::CE ? "train" : "distill",
                Student::binarized ? "binarized" : "full-precision", train::loss_name(loss), (long long)opt.steps,
                (long long)opt.batch, (long long)opt.seq_len, (unsigned long long)opt.seed, num_threads());
    trainer.on_log = [&](const train::StepLog& l) {
        nlohmann::json j = {{"step", l.step}, {"loss", l.loss}, {"lr", l.lr}, {"grad_norm", l.grad_norm},
                            {"tokens_per_s", l.tokens_per_s}, {"skipped_total", l.skipped_total}};
        if (l.has_flips) {
            j["flip_rate"] = l.flips.overall;
            j["flip_rate_per_layer"] = l.flips.per_layer;
        }
        metrics << j.dump() << "\n";
        metrics.flush();
        char line[256];
        std::snprintf(line, sizeof line, "step %6lld/%lld  loss %.4f  lr %.2e  |g| %.3f  %.0f tok/s  ETA %4.0fs%s", (long long)l.step,
                      (long long)opt.steps, l.loss, l.lr, l.grad_norm, l.tokens_per_s, l.eta_s, l.skipped ? "  (skipped: non-finite)" : "");
        std::string s = line;
        if (l.has_flips) {
            char f[48];
            std::snprintf(f, sizeof f, "  flips %.4f%%", 100 * l.flips.overall);
            s += f;
        }
        if (tty) std::printf("\r%s\033[K%s", s.c_str(), l.step == opt.steps ? "\n" : "");
        else std::printf("%s\n", s.c_str());
        std::fflush(stdout);
    };
    trainer.on_event = [&](const std::string& e) {
        if (tty) std::printf("\n");
        std::printf("%s\n", e.c_str());
    };
    std::signal(SIGINT, on_sigint);
    const bool finished = trainer.run();
    io::save_model(out / "final", student, student.config);
    std::printf("%s model: %s\n", finished ? "final" : "interrupted; saved", (out / "final").c_str());
    return 0;
}

static void add_training_options(cxxopts::Options& o) {
    o.add_options()("data", "directory written by prepare", cxxopts::value<std::string>())
        ("out", "output directory (checkpoints/, final/, metrics.jsonl)", cxxopts::value<std::string>())
        ("steps", "optimizer steps", cxxopts::value<int64_t>()->default_value("300"))
        ("batch", "sequences per micro-batch", cxxopts::value<int64_t>()->default_value("16"))
        ("seq", "tokens per sequence", cxxopts::value<int64_t>()->default_value("128"))
        ("accum", "micro-batches per optimizer step", cxxopts::value<int64_t>()->default_value("1"))
        ("lr", "peak learning rate", cxxopts::value<double>()->default_value("3e-3"))
        ("min-lr", "final learning rate of the cosine decay", cxxopts::value<double>()->default_value("3e-4"))
        ("warmup", "warm-up steps", cxxopts::value<int64_t>()->default_value("30"))
        ("wd", "AdamW weight decay", cxxopts::value<double>()->default_value("0.1"))
        ("clip", "global gradient-norm clip (0: off)", cxxopts::value<double>()->default_value("1.0"))
        ("temperature", "distillation temperature", cxxopts::value<double>()->default_value("1.0"))
        ("log-every", "steps between log lines", cxxopts::value<int64_t>()->default_value("10"))
        ("save-every", "steps between checkpoints (0: only at the end)", cxxopts::value<int64_t>()->default_value("0"))
        ("keep", "checkpoints to keep", cxxopts::value<int>()->default_value("2"))
        ("seed", "random seed (init and data order)", cxxopts::value<uint64_t>()->default_value("1234"))
        ("resume", "continue from the newest checkpoint in --out")
        ("h,help", "help");
    add_model_options(o);
}

static int64_t data_vocab(const fs::path& dir) {
    auto meta = io::load_json(dir / "data.json");
    return meta.at("vocab_size").get<int64_t>();
}

static int cmd_train(int argc, char** argv) {
    cxxopts::Options o("bitgrad train", "Train with cross-entropy");
    add_training_options(o);
    o.add_options()("binarized", "FBI-Linear layers (from scratch)");
    auto r = o.parse(argc, argv);
    if (r.count("help")) { std::cout << o.help() << "\n"; return 0; }
    if (!r.count("data") || !r.count("out")) throw UsageError("train needs --data and --out");
    auto config = model_config(r, data_vocab(r["data"].as<std::string>()), r["seq"].as<int64_t>());
    if (r.count("binarized")) return run_training<nn::FbiLlama<float>>(r, config, nullptr, train::Loss::CE);
    return run_training<nn::DenseLlama<float>>(r, config, nullptr, train::Loss::CE);
}

static int cmd_distill(int argc, char** argv) {
    cxxopts::Options o("bitgrad distill", "Distill a binarized student from a teacher");
    add_training_options(o);
    o.add_options()("teacher", "teacher model directory (config.json + model.safetensors)", cxxopts::value<std::string>())
        ("loss", "ad (soft cross-entropy to the teacher), mixed (0.5 CE + 0.5 AD)", cxxopts::value<std::string>()->default_value("ad"));
    auto r = o.parse(argc, argv);
    if (r.count("help")) { std::cout << o.help() << "\n"; return 0; }
    if (!r.count("data") || !r.count("out") || !r.count("teacher")) throw UsageError("distill needs --data, --out and --teacher");
    const std::string l = r["loss"].as<std::string>();
    if (l != "ad" && l != "mixed") throw UsageError("--loss " + l + ": expected ad or mixed");
    const fs::path tdir = r["teacher"].as<std::string>();
    auto tconfig = io::load_config(tdir / "config.json");
    BITGRAD_CHECK(!tconfig.binarized, tdir << ": the teacher must be a full-precision model");
    Rng rng(0);
    nn::DenseLlama<float> teacher(tconfig, rng);
    io::load_model_weights(tdir, teacher);
    teacher.eval();
    // The student takes the teacher's shape unless size flags say otherwise.
    nn::LlamaConfig config = r["preset"].as<std::string>() == "custom" && !r.count("layers") && !r.count("hidden") ? tconfig
                                                                                                               : model_config(r, tconfig.vocab_size, r["seq"].as<int64_t>());
    config.max_position_embeddings = std::max(config.max_position_embeddings, r["seq"].as<int64_t>());
    config.ste = model_config(r, tconfig.vocab_size, r["seq"].as<int64_t>()).ste;
    return run_training<nn::FbiLlama<float>>(r, config, &teacher, l == "ad" ? train::Loss::AD : train::Loss::Mixed);
}

// ---------------------------------------------------------------- eval / generate / info
template <class F>
static int with_model(const fs::path& dir, F&& f) {
    auto config = io::load_config(dir / "config.json");
    Rng rng(0);
    if (config.binarized) {
        nn::FbiLlama<float> m(config, rng);
        io::load_model_weights(dir, m);
        return f(m);
    }
    nn::DenseLlama<float> m(config, rng);
    io::load_model_weights(dir, m);
    return f(m);
}

static int cmd_eval(int argc, char** argv) {
    cxxopts::Options o("bitgrad eval", "Validation perplexity and bits per byte");
    o.add_options()("model", "model directory", cxxopts::value<std::string>())("data", "prepare's directory", cxxopts::value<std::string>())
        ("seq", "window length", cxxopts::value<int64_t>()->default_value("128"))("json", "print one JSON line")
        ("unigram", "instead of a model: the unigram baseline (add-one smoothed token frequencies of train.bin)")("h,help", "help");
    auto r = o.parse(argc, argv);
    if (r.count("help")) { std::cout << o.help() << "\n"; return 0; }
    if ((!r.count("model") && !r.count("unigram")) || !r.count("data")) throw UsageError("eval needs --data and --model (or --unigram)");
    const fs::path data_dir = r["data"].as<std::string>();
    data::TokenShard val((data_dir / "val.bin").string());
    const double bytes = io::load_json(data_dir / "data.json").at("val_bytes").get<double>();
    if (r.count("unigram")) {
        data::TokenShard train_shard((data_dir / "train.bin").string());
        std::vector<double> counts(train_shard.vocab_size(), 1.0);
        for (uint64_t i = 0; i < train_shard.size(); ++i) counts[train_shard[i]] += 1;
        const double total = double(train_shard.size()) + double(counts.size());
        double nll = 0;
        for (uint64_t i = 1; i < val.size(); ++i) nll -= std::log(counts[val[i]] / total);
        const double n = double(val.size() - 1), ppl = std::exp(nll / n), bpb = nll / (std::log(2.0) * bytes);
        if (r.count("json")) std::printf("%s\n", nlohmann::json({{"model", "unigram"}, {"perplexity", ppl}, {"bits_per_byte", bpb}}).dump().c_str());
        else std::printf("unigram baseline: perplexity %.3f, bits per byte %.4f\n", ppl, bpb);
        return 0;
    }
    const int64_t seq = positive<int64_t>(r, "seq");
    return with_model(r["model"].as<std::string>(), [&](auto& m) {
        auto res = eval::perplexity(m, val, std::min<int64_t>(seq, m.config.max_position_embeddings));
        const auto stats = nn::param_stats(m);
        if (r.count("json"))
            std::printf("%s\n", nlohmann::json({{"model", r["model"].as<std::string>()}, {"perplexity", res.perplexity},
                                                {"bits_per_byte", res.bits_per_byte(bytes)}, {"tokens", res.tokens},
                                                {"binarized", m.config.binarized}, {"bytes_fp32", stats.bytes_fp32()},
                                                {"bytes_packed", stats.bytes_packed()}}).dump().c_str());
        else
            std::printf("perplexity %.3f, bits per byte %.4f over %lld tokens\n", res.perplexity, res.bits_per_byte(bytes), (long long)res.tokens);
        return 0;
    });
}

static int cmd_generate(int argc, char** argv) {
    cxxopts::Options o("bitgrad generate", "Sample text");
    o.add_options()("model", "model directory", cxxopts::value<std::string>())("data", "prepare's directory (tokenizer.model)", cxxopts::value<std::string>())
        ("prompt", "prompt text", cxxopts::value<std::string>()->default_value("Call me Ishmael."))
        ("tokens", "tokens to generate", cxxopts::value<int64_t>()->default_value("60"))
        ("temperature", "0: greedy", cxxopts::value<double>()->default_value("0.8"))
        ("top-k", "keep the k most likely (0: all)", cxxopts::value<int>()->default_value("40"))
        ("top-p", "nucleus mass", cxxopts::value<double>()->default_value("0.95"))
        ("seed", "sampling seed", cxxopts::value<uint64_t>()->default_value("7"))("h,help", "help");
    auto r = o.parse(argc, argv);
    if (r.count("help")) { std::cout << o.help() << "\n"; return 0; }
    if (!r.count("model") || !r.count("data")) throw UsageError("generate needs --model and --data");
    const double top_p = r["top-p"].as<double>();
    if (!(top_p > 0 && top_p <= 1)) throw UsageError("--top-p must be in (0, 1]");
    data::Tokenizer tok((fs::path(r["data"].as<std::string>()) / "tokenizer.model").string());
    return with_model(r["model"].as<std::string>(), [&](auto& m) {
        std::vector<int32_t> ids{int32_t(tok.bos_id())};
        for (int id : tok.encode(r["prompt"].as<std::string>())) ids.push_back(id);
        Rng rng(r["seed"].as<uint64_t>());
        infer::SamplingOptions so{r["temperature"].as<double>(), r["top-k"].as<int>(), top_p};
        auto out = infer::generate(m, ids, positive<int64_t>(r, "tokens"), so, rng);
        std::printf("%s\n", tok.decode(std::vector<int>(out.begin() + 1, out.end())).c_str());
        return 0;
    });
}

static int cmd_info(int argc, char** argv) {
    cxxopts::Options o("bitgrad info", "Model summary");
    o.add_options()("model", "model directory (else --preset)", cxxopts::value<std::string>())("binarized", "with --preset: the FBI student")("h,help", "help");
    add_model_options(o);
    auto r = o.parse(argc, argv);
    if (r.count("help")) { std::cout << o.help() << "\n"; return 0; }
    if (r.count("model")) return with_model(r["model"].as<std::string>(), [&](auto& m) {
        std::printf("%s", nn::model_summary(m, r["model"].as<std::string>()).c_str());
        return 0;
    });
    auto c = model_config(r, 0, 2048);
    Rng rng(0);
    if (r.count("binarized")) std::printf("%s", nn::model_summary(nn::FbiLlama<float>(c, rng), "FBI-LLM").c_str());
    else std::printf("%s", nn::model_summary(nn::DenseLlama<float>(c, rng), "LLaMA").c_str());
    return 0;
}

int main(int argc, char** argv) {
    const std::string usage = "usage: bitgrad {prepare|train|distill|eval|generate|info} [options]  (--help on each)\n";
    if (argc < 2) { std::fprintf(stderr, "%s", usage.c_str()); return 2; }
    const std::string cmd = argv[1];
    try {
        if (cmd == "prepare") return cmd_prepare(argc - 1, argv + 1);
        if (cmd == "train") return cmd_train(argc - 1, argv + 1);
        if (cmd == "distill") return cmd_distill(argc - 1, argv + 1);
        if (cmd == "eval") return cmd_eval(argc - 1, argv + 1);
        if (cmd == "generate") return cmd_generate(argc - 1, argv + 1);
        if (cmd == "info") return cmd_info(argc - 1, argv + 1);
        std::fprintf(stderr, "unknown command '%s'\n%s", cmd.c_str(), usage.c_str());
        return 2;
    } catch (const UsageError& e) {
        std::fprintf(stderr, "bitgrad %s: %s\n", cmd.c_str(), e.what());
        return 2;
    } catch (const cxxopts::exceptions::exception& e) {
        std::fprintf(stderr, "bitgrad %s: %s\n", cmd.c_str(), e.what());
        return 2;
    } catch (const Error& e) {
        std::fprintf(stderr, "bitgrad %s: error: %s\n", cmd.c_str(), e.what());
        return 1;
    }
}
