// zeroshot: multiple-choice accuracy as lm-evaluation-harness 0.4.2 computes it
// (eval/multiple_choice.hpp); items from bitgrad's JSONL or converted from a task's official file.
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include <bitgrad/eval/mc_tasks.hpp>
#include <bitgrad/eval/multiple_choice.hpp>
#include <bitgrad/infer/open_model.hpp>
#include <bitgrad/io/load_model.hpp>

#include "commands.hpp"
#include "options.hpp"

namespace bitgrad::cli {

cxxopts::Options zeroshot_options() {
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
        "activations", "packed model: " + kActivations.names() + " (as generate)",
        cxxopts::value<std::string>()->default_value(kernels::sign_activations_name(kernels::kDefaultSignActivations)))(
        "json", "print one JSON line")("h,help", "help");
    add_threads_option(o);
    return o;
}

// The items --items names, or those converted from --task's official file --in.
static std::vector<eval::MultipleChoiceItem> read_items(const cxxopts::ParseResult& r) {
    if (r.count("items")) return eval::read_mc_items(existing_file(r, "items").string());
    return eval::convert_mc_task(r["task"].as<std::string>(), existing_file(r, "in").string(),
                                 r.count("labels") ? existing_file(r, "labels").string() : "");
}

int run_zeroshot(const cxxopts::ParseResult& r) {
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
    const kernels::SignActivations activations = kActivations(r);
    std::vector<eval::MultipleChoiceItem> items = read_items(r);
    if (r.count("write-items")) {
        eval::write_mc_items(r["write-items"].as<std::string>(), items);
        std::printf("wrote %zu items to %s\n", items.size(), r["write-items"].as<std::string>().c_str());
        if (!r.count("model")) return 0;  // a conversion only
    }
    if (!r.count("model")) throw UsageError("zeroshot needs --model (or --write-items alone, to convert)");
    if (r["limit"].as<int64_t>() > 0 && size_t(r["limit"].as<int64_t>()) < items.size())
        items.resize(size_t(r["limit"].as<int64_t>()));
    const fs::path model = existing_path(r, "model");
    const data::Tokenizer tok = *find_tokenizer(r, model, true);
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
    const auto start = std::chrono::steady_clock::now();
    auto report = [&](const eval::MultipleChoiceResult& res, const char* how) {
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        nlohmann::ordered_json j = {
            {"task", task}, {"model", model.string()}, {"n", res.n}, {"acc", res.acc}, {"acc_stderr", res.acc_stderr}};
        if (res.has_acc_norm && show_norm) {
            j["acc_norm"] = res.acc_norm;
            j["acc_norm_stderr"] = res.acc_norm_stderr;
        }
        j["run"] = how;
        j["seconds"] = seconds;
        if (r.count("json")) {
            std::printf("%s\n", j.dump().c_str());
            return 0;
        }
        std::printf("%s: acc %.4f +- %.4f", task.c_str(), res.acc, res.acc_stderr);
        if (res.has_acc_norm && show_norm) std::printf(", acc_norm %.4f +- %.4f", res.acc_norm, res.acc_norm_stderr);
        std::printf(" (%lld items, %s, %.1f s)\n", (long long)res.n, how, seconds);
        return 0;
    };
    // A packed file or a model directory, through the one scorer (eval::make_scorer on an infer::CausalLM).
    const infer::OpenedModel opened = infer::open_model(model);
    const kernels::SignActivationsScope scope(activations);
    const std::string how =
        opened.packed ? opened.description + ", " + kernels::sign_activations_name(activations) + " activations"
                      : opened.description;
    return report(eval::evaluate_multiple_choice(items, encode, eval::make_scorer(*opened.model), options, progress),
                  how.c_str());
}

}  // namespace bitgrad::cli
