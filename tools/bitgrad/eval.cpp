// eval: perplexity and bits per byte of a model directory, a packed file or the unigram baseline,
// on prepare's validation shard or (--text) on any text with FBI-LLM's protocol.
#include <unistd.h>

#include <cmath>
#include <cstdio>

#include <bitgrad/data/dataset_info.hpp>
#include <bitgrad/data/token_shard.hpp>
#include <bitgrad/eval/perplexity.hpp>
#include <bitgrad/eval/unigram.hpp>
#include <bitgrad/infer/open_model.hpp>
#include <bitgrad/infer/packed_file.hpp>
#include <bitgrad/io/load_model.hpp>
#include <bitgrad/nn/summary.hpp>

#include "commands.hpp"
#include "options.hpp"

namespace bitgrad::cli {

cxxopts::Options eval_options() {
    cxxopts::Options o("bitgrad eval", "Validation perplexity and bits per byte");
    o.add_options()("model", "model directory, or a packed model file (bitgrad pack)", cxxopts::value<std::string>())(
        "data", "prepare's directory", cxxopts::value<std::string>())(
        "seq", "window length", cxxopts::value<int64_t>()->default_value("128"))("json", "print one JSON line")(
        "activations", "packed model: " + kActivations.names() + " (as generate)",
        cxxopts::value<std::string>()->default_value(kernels::sign_activations_name(kernels::kDefaultSignActivations)))(
        "unigram", "instead of a model: the unigram baseline (add-one smoothed token frequencies of train.bin)")(
        "text",
        "instead of val.bin: any text file, with FBI-LLM's protocol (windows of --seq tokens, default the model's "
        "context; docs/evaluation.md)",
        cxxopts::value<std::string>())(
        "tokenizer", "with --text: the SentencePiece model (default: --data's, or the one the model carries)",
        cxxopts::value<std::string>())("h,help", "help");
    add_threads_option(o);
    return o;
}

// One JSON line (--json) or one sentence.
static void print_result(const cxxopts::ParseResult& r, const nlohmann::json& j, const std::string& line) {
    std::printf("%s\n", r.count("json") ? j.dump().c_str() : line.c_str());
}

static std::string format(const char* fmt, auto... args) {
    char line[512];
    std::snprintf(line, sizeof line, fmt, args...);
    return line;
}

// eval --text: FBI-LLM's perplexity protocol (eval::paper_perplexity) on a text file,
// tokenized whole with a BOS first, as Hugging Face's tokenizer(text) does; a packed file runs packed.
static int eval_text(const cxxopts::ParseResult& r) {
    if (!r.count("model")) throw UsageError("eval --text needs --model");
    const fs::path text_path = existing_file(r, "text");
    const kernels::SignActivations activations = kActivations(r);
    const std::string text = read_text(text_path);
    const data::Tokenizer tok = *find_tokenizer(r, r["model"].as<std::string>(), true);
    std::vector<int32_t> tokens{tok.bos_id()};
    for (int id : tok.encode(text)) tokens.push_back(id);
    const bool tty = isatty(STDERR_FILENO);
    auto progress = [&](int64_t done, int64_t total) {
        if (tty)
            std::fprintf(stderr, "\rwindow %lld/%lld%s", (long long)done, (long long)total, done == total ? "\n" : "");
    };
    const infer::OpenedModel opened = infer::open_model(r["model"].as<std::string>());
    const kernels::SignActivationsScope scope(activations);
    const int64_t seq = r.count("seq") ? positive<int64_t>(r, "seq") : opened.model->config().max_position_embeddings;
    const std::string how = !opened.packed
                                ? "float checkpoint"
                                : std::string("packed, ") + kernels::sign_activations_name(activations) +
                                      " activations, " + infer::kv_format_name(opened.model->kv_format()) + " KV cache";
    const eval::PerplexityResult res = eval::paper_perplexity(*opened.model, tokens, seq, progress);
    // The scored tokens stand for the whole text: bits per byte = nll * tokens of the text / (ln 2 * bytes).
    const double bpb = res.nll * double(tokens.size()) / (std::log(2.0) * double(text.size()));
    print_result(r,
                 {{"model", r["model"].as<std::string>()},
                  {"text", text_path.string()},
                  {"protocol", "fbi-llm"},
                  {"seq", seq},
                  {"windows", res.tokens / (seq - 1)},
                  {"tokens_in_text", tokens.size()},
                  {"tokens_scored", res.tokens},
                  {"perplexity", res.perplexity},
                  {"bits_per_byte", bpb},
                  {"run", how}},
                 format("perplexity %.3f, bits per byte %.4f: %lld windows of %lld tokens, %lld of the text's %zu "
                        "tokens scored (%s)",
                        res.perplexity, bpb, (long long)(res.tokens / (seq - 1)), (long long)seq, (long long)res.tokens,
                        tokens.size(), how.c_str()));
    return 0;
}

int run_eval(const cxxopts::ParseResult& r) {
    apply_threads(r);
    if (r.count("text")) return eval_text(r);
    if ((!r.count("model") && !r.count("unigram")) || !r.count("data"))
        throw UsageError("eval needs --data and --model (or --unigram, or --text)");
    const fs::path data_dir = existing_dir(r, "data");
    const int64_t seq = positive<int64_t>(r, "seq");
    const kernels::SignActivations activations = kActivations(r);
    const fs::path model = r.count("unigram") ? fs::path() : existing_path(r, "model");
    const double bytes = double(data::load_dataset_info(data_dir).val_bytes);
    data::TokenShard val((data_dir / "val.bin").string());
    if (r.count("unigram")) {
        const auto res = eval::unigram_perplexity(data::TokenShard((data_dir / "train.bin").string()), val);
        print_result(
            r,
            {{"model", "unigram"},
             {"perplexity", res.perplexity},
             {"bits_per_byte", res.bits_per_byte(bytes)},
             {"tokens", res.tokens}},
            format("unigram baseline: perplexity %.3f, bits per byte %.4f", res.perplexity, res.bits_per_byte(bytes)));
        return 0;
    }
    // A packed file or a model directory, through the one evaluation interface (infer::CausalLM).
    const infer::OpenedModel opened = infer::open_model(model);
    const infer::CausalLM& m = *opened.model;
    const kernels::SignActivationsScope scope(activations);
    const auto res = eval::perplexity(m, val, std::min<int64_t>(seq, m.config().max_position_embeddings));
    nlohmann::json j = {{"model", model.string()},
                        {"perplexity", res.perplexity},
                        {"bits_per_byte", res.bits_per_byte(bytes)},
                        {"tokens", res.tokens},
                        {"binarized", m.config().binarized}};
    std::string how;
    if (opened.packed) {
        const char* acts = kernels::sign_activations_name(activations);
        j["packed"] = true;
        j["tables"] = infer::table_format_name(static_cast<const infer::PackedLlama&>(m).lm_head().format());
        j["activations"] = acts;
        j["kv_cache"] = infer::kv_format_name(m.kv_format());
        j["bytes_packed"] = m.bytes();
        how = " (" + opened.description + ", " + acts + " activations, " + infer::kv_format_name(m.kv_format()) +
              " KV cache)";
    } else {
        const auto stats = nn::param_stats(m.config());
        j["bytes_fp32"] = stats.bytes_fp32();
        j["bytes_packed"] = stats.bytes_packed();
    }
    print_result(r, j,
                 format("perplexity %.3f, bits per byte %.4f over %lld tokens%s", res.perplexity,
                        res.bits_per_byte(bytes), (long long)res.tokens, how.c_str()));
    return 0;
}

}  // namespace bitgrad::cli
