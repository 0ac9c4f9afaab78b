// generate: sample text from a model directory or a packed file (the same decoder, KV cache and
// sampling), streamed, with prefill and decode speeds.
#include <cstdio>
#include <sstream>

#include <bitgrad/core/parallel.hpp>
#include <bitgrad/infer/open_model.hpp>
#include <bitgrad/infer/sample.hpp>

#include "commands.hpp"
#include "options.hpp"

namespace bitgrad::cli {

cxxopts::Options generate_options() {
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
        "packed model: " + kActivations.names() +
            " (int8, the default: rounded per token, the fast path, docs/inference.md measures the cost; float: the "
            "trained model's numbers)",
        cxxopts::value<std::string>()->default_value(kernels::sign_activations_name(kernels::kDefaultSignActivations)))(
        "seed", "sampling seed", cxxopts::value<uint64_t>()->default_value("7"))(
        "tokenizer", "SentencePiece model (default: --data's, or the one the model carries)",
        cxxopts::value<std::string>())("h,help", "help");
    add_threads_option(o);
    return o;
}

// --prompts' non-empty lines, or --prompt.
static std::vector<std::string> prompts_of(const cxxopts::ParseResult& r) {
    if (!r.count("prompts")) return {r["prompt"].as<std::string>()};
    std::vector<std::string> prompts;
    std::istringstream lines(read_text(existing_file(r, "prompts")));
    for (std::string line; std::getline(lines, line);)
        if (!line.empty()) prompts.push_back(line);
    if (prompts.empty()) throw UsageError("--prompts " + r["prompts"].as<std::string>() + ": no non-empty line");
    return prompts;
}

int run_generate(const cxxopts::ParseResult& r) {
    require(r, "generate", {"model"});
    const kernels::SignActivationsScope activations_scope(kActivations(r));
    const double top_p = r["top-p"].as<double>(), penalty = r["repetition-penalty"].as<double>();
    if (!(top_p > 0 && top_p <= 1)) throw UsageError("--top-p must be in (0, 1]");
    if (!(penalty > 0)) throw UsageError("--repetition-penalty must be > 0");
    non_negative<double>(r, "temperature");
    non_negative<int>(r, "top-k");
    apply_threads(r);
    const fs::path model_path = existing_path(r, "model");
    const data::Tokenizer tok = *find_tokenizer(r, model_path, true);
    const std::vector<std::string> prompts = prompts_of(r);
    infer::SamplingOptions so{r["temperature"].as<double>(), r["top-k"].as<int>(), top_p, penalty};
    const int64_t max_new = positive<int64_t>(r, "tokens");
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
        std::vector<int32_t> ids{int32_t(tok.bos_id())};
        for (int id : tok.encode(prompt)) ids.push_back(id);
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

}  // namespace bitgrad::cli
