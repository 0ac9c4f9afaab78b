// prepare: text -> SentencePiece BPE tokenizer (or --tokenizer) + train/validation token shards.
#include <cstdio>
#include <utility>

#include <bitgrad/core/atomic_file.hpp>
#include <bitgrad/core/parallel.hpp>
#include <bitgrad/data/dataset_info.hpp>
#include <bitgrad/data/sentencepiece.hpp>
#include <bitgrad/data/text_split.hpp>
#include <bitgrad/data/token_shard.hpp>

#include "commands.hpp"
#include "options.hpp"

namespace bitgrad::cli {

cxxopts::Options prepare_options() {
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
    return o;
}

// The split --holdout-every or --val-fraction asks for.
static data::TextSplit split_text(const cxxopts::ParseResult& r, const std::string& text, const fs::path& path) {
    const int every = r["holdout-every"].as<int>();
    if (r.count("val-fraction")) {
        const double f = r["val-fraction"].as<double>();
        if (!(f > 0 && f < 1)) throw UsageError("--val-fraction must be in (0, 1), got " + std::to_string(f));
        return data::split_tail(text, f, path.string());
    }
    if (every == 0) return data::split_tail(text, 0.1, path.string());  // the spelling before --val-fraction
    if (every < 2) throw UsageError("--holdout-every must be >= 2, got " + std::to_string(every));
    return data::split_every(text, every, path.string());
}

int run_prepare(const cxxopts::ParseResult& r) {
    require(r, "prepare", {"text", "out"});
    const fs::path text_path = existing_file(r, "text"), out = output_dir(r, "out");
    const int vocab = positive<int>(r, "vocab");
    if (r.count("tokenizer") && r.count("vocab"))
        throw UsageError("--vocab and --tokenizer exclude each other (the tokenizer's vocabulary is used)");
    if (r.count("val-fraction") && r.count("holdout-every"))
        throw UsageError("--holdout-every and --val-fraction exclude each other");
    const fs::path given_tokenizer = r.count("tokenizer") ? existing_file(r, "tokenizer") : fs::path();
    if (!given_tokenizer.empty()) data::Tokenizer{given_tokenizer.string()};  // not a SentencePiece model: stop here
    const std::string text = read_text(text_path);
    const data::TextSplit split = split_text(r, text, text_path);
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

}  // namespace bitgrad::cli
